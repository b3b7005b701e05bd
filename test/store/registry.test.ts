/**
 * The registry repository on a real SQLite file: registrations, replacement, the credential
 * promotion of the hand-off in the same transaction, Updates, De-registers, expiry through the
 * index, events, the migration from a version-2 database, and a thousand registrations.
 */
import { expect } from 'chai';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { closeDatabase, DB_FILE, openDatabase, schemaVersion } from '../../src/store/db.js';
import { MIGRATIONS, SCHEMA_VERSION } from '../../src/store/migrations.js';
import { isRegistrationId, newRegistrationId } from '../../src/store/registry.js';
import type { SqliteStore } from '../../src/store/store.js';
import type { NewRegistration } from '../../src/store/types.js';
import { Clock, expectStoreError, open, PROFILE_DOC, removeDir, tempDir } from './support.js';

const URI = 'coap://127.0.0.1:5783';

describe('store/registry', () => {
  let dir: string;
  let store: SqliteStore;
  let clock: Clock;

  beforeEach(async () => {
    dir = tempDir('lwbs-registry-');
    clock = new Clock();
    store = await open(dir, { now: clock.now });
    await store.profiles.put('p', PROFILE_DOC);
    await store.devices.add({ endpoint: 'dev', profile: 'p' });
    await store.devices.add({ endpoint: 'other', profile: 'p' });
  });
  afterEach(async () => {
    await store.close();
    removeDir(dir);
  });

  const reg = (extra: Partial<NewRegistration> = {}): NewRegistration => ({
    endpoint: 'dev',
    address: '127.0.0.1',
    port: 40000,
    security: 'nosec',
    lwm2mVersion: '1.1',
    binding: 'U',
    queueMode: false,
    lifetime: 300,
    objects: [
      { id: 1, instances: [0] },
      { id: 3, version: '1.1', instances: [0] },
      { id: 5, instances: [] },
    ],
    ...extra,
  });

  const nosec = (endpoint = 'dev', shortServerId = 1) => store.credentials.addPending({ endpoint, shortServerId, serverUri: URI, mode: 'nosec' });

  it('stores a registration and reads it back by id, by endpoint and in the list', async () => {
    const t = clock.tick();
    const { registration: r, replaced, promoted } = await store.registry.register(
      reg({ sms: '4915112345', rootPath: '/lwm2m', contentFormats: [60, 110, 112], profileIds: ['oma:x'], attributes: { foo: 'bar', flag: '' }, queueMode: true }),
    );
    expect(replaced).to.equal(undefined);
    expect(promoted).to.equal(undefined);
    expect(isRegistrationId(r.id)).to.equal(true);
    expect(r).to.deep.equal({
      id: r.id,
      endpoint: Buffer.from('dev'),
      credentialId: null,
      address: '127.0.0.1',
      port: 40000,
      security: 'nosec',
      identity: null,
      lwm2mVersion: '1.1',
      binding: 'U',
      queueMode: true,
      sms: '4915112345',
      lifetime: 300,
      rootPath: '/lwm2m',
      contentFormats: [60, 110, 112],
      objects: [
        { id: 1, instances: [0] },
        { id: 3, version: '1.1', instances: [0] },
        { id: 5, instances: [] },
      ],
      profileIds: ['oma:x'],
      attributes: { foo: 'bar', flag: '' },
      registeredAt: t,
      updatedAt: t,
      expiresAt: t + 300_000,
    });
    expect(await store.registry.get(r.id)).to.deep.equal(r);
    expect(await store.registry.getByEndpoint('dev')).to.deep.equal(r);
    expect(await store.registry.list()).to.deep.equal([r]);
    expect(await store.registry.count()).to.equal(1);
    expect(await store.registry.get('nope')).to.equal(undefined);
    expect(await store.registry.get('not/an id')).to.equal(undefined);
    const [e] = await store.registry.events('dev');
    expect(e).to.deep.include({ kind: 'register', registrationId: r.id, peer: '127.0.0.1:40000', at: t });
  });

  it('keeps binary endpoints and DTLS identities as bytes', async () => {
    const ep = Buffer.from([0x00, 0xff, 0x80, 0x41]);
    await store.devices.add({ endpoint: ep, profile: 'p' });
    const identity = Buffer.from([1, 2, 3, 0xfe]);
    const { registration: r } = await store.registry.register(reg({ endpoint: ep, security: 'psk', identity }));
    expect(r.endpoint.equals(ep)).to.equal(true);
    expect((await store.registry.getByEndpoint(ep))?.identity?.equals(identity)).to.equal(true);
    expect((await store.registry.events(ep)).map((x) => x.kind)).to.deep.equal(['register']);
    await store.registry.register(reg());
    expect((await store.registry.list({ security: 'psk' })).map((x) => x.endpoint)).to.deep.equal([ep]);
    expect((await store.registry.list({ security: 'nosec' })).map((x) => x.endpoint.toString())).to.deep.equal(['dev']);
    expect(await store.registry.list({ security: 'rpk' })).to.deep.equal([]);
  });

  it('a lifetime of 0 never expires and is not in the expiry index', async () => {
    const { registration: r } = await store.registry.register(reg({ lifetime: 0, lwm2mVersion: '1.2' }));
    expect(r.expiresAt).to.equal(null);
    expect(await store.registry.nextExpiry()).to.equal(undefined);
    clock.tick(10 ** 12);
    expect(await store.registry.expireDue(clock.t)).to.deep.equal([]);
    expect(await store.registry.count()).to.equal(1);
  });

  it('a new Register of the endpoint replaces the old registration, with a replace event', async () => {
    const first = (await store.registry.register(reg())).registration;
    clock.tick(1000);
    const second = await store.registry.register(reg({ port: 40001, lifetime: 60 }));
    expect(second.replaced).to.deep.equal(first);
    expect(second.registration.id).to.not.equal(first.id);
    expect(await store.registry.get(first.id)).to.equal(undefined);
    expect(await store.registry.count()).to.equal(1);
    expect((await store.registry.getByEndpoint('dev'))?.port).to.equal(40001);
    const events = await store.registry.events('dev');
    expect(events.map((e) => [e.kind, e.registrationId])).to.deep.equal([
      ['register', second.registration.id],
      ['replace', first.id],
      ['register', first.id],
    ]);
    expect(events[1]!.detail).to.include(second.registration.id);
    // The replaced registration's expiry is gone from the index too.
    expect(await store.registry.nextExpiry()).to.equal(second.registration.expiresAt);
  });

  it('promotes the pending credential it registered with and retires the older ones, in the same transaction', async () => {
    const old = await nosec();
    await store.credentials.promote(old.id); // the old one is active
    const otherServer = await nosec('dev', 2);
    const fresh = await nosec();
    const t = clock.tick();
    const { promoted, registration } = await store.registry.register(reg({ credentialId: fresh.id }));
    expect(promoted).to.deep.equal({ credentialId: fresh.id, activated: true, retired: 1 });
    expect(registration.credentialId).to.equal(fresh.id);
    const byId = new Map((await store.credentials.listForDevice('dev', { includeRetired: true })).map((c) => [c.id, c]));
    expect(byId.get(fresh.id)).to.deep.include({ status: 'active', activatedAt: t });
    expect(byId.get(old.id)).to.deep.include({ status: 'retired', retiredAt: t });
    expect(byId.get(otherServer.id)?.status).to.equal('pending'); // another short server ID
    expect((await store.registry.events('dev'))[0]!.detail).to.match(new RegExp(`credential ${fresh.id} promoted from pending to active, 1 older retired`));
    // Registering again with the (now active) credential changes nothing more.
    const again = await store.registry.register(reg({ credentialId: fresh.id }));
    expect(again.promoted).to.deep.equal({ credentialId: fresh.id, activated: false, retired: 0 });
  });

  it('refuses a retired, unknown or foreign credential and leaves everything as it was', async () => {
    const live = (await store.registry.register(reg())).registration;
    const a = await nosec();
    const b = await nosec();
    await store.credentials.promote(b.id); // a is retired
    await expectStoreError(store.registry.register(reg({ credentialId: a.id, port: 1 })), 'invalid', /retired/, 'credentialId');
    await expectStoreError(store.registry.register(reg({ credentialId: 9999 })), 'not_found', /credential 9999/, 'credentialId');
    const foreign = await nosec('other');
    await expectStoreError(store.registry.register(reg({ credentialId: foreign.id })), 'invalid', /belongs to device "other"/, 'credentialId');
    expect(await store.registry.getByEndpoint('dev')).to.deep.equal(live);
    expect((await store.credentials.get(foreign.id))?.status).to.equal('pending');
    expect((await store.registry.events('dev')).map((e) => e.kind)).to.deep.equal(['register']);
  });

  it('an Update patches what it names, moves updatedAt and the expiry, and merges attributes', async () => {
    const { registration: r } = await store.registry.register(reg({ attributes: { a: '1' } }));
    const t = clock.tick(5000);
    const u = await store.registry.update(r.id, {
      address: '10.0.0.9',
      port: 5,
      lifetime: 60,
      binding: 'UT',
      queueMode: true,
      sms: '123',
      objects: [{ id: 3, instances: [0, 1] }],
      contentFormats: [112],
      rootPath: '/',
      attributes: { b: '2' },
      detail: 'lt 300 → 60',
    });
    expect(u).to.deep.equal({
      ...r,
      address: '10.0.0.9',
      port: 5,
      lifetime: 60,
      binding: 'UT',
      queueMode: true,
      sms: '123',
      objects: [{ id: 3, instances: [0, 1] }],
      contentFormats: [112],
      attributes: { a: '1', b: '2' },
      updatedAt: t,
      expiresAt: t + 60_000,
    });
    expect(await store.registry.get(r.id)).to.deep.equal(u);
    const t2 = clock.tick(1000);
    const touched = await store.registry.update(r.id);
    expect(touched).to.deep.equal({ ...u, updatedAt: t2, expiresAt: t2 + 60_000 });
    const events = await store.registry.events('dev');
    expect(events.map((e) => [e.kind, e.detail, e.peer])).to.deep.equal([
      ['update', null, '10.0.0.9:5'],
      ['update', 'lt 300 → 60', '10.0.0.9:5'],
      ['register', null, '127.0.0.1:40000'],
    ]);
    expect(await store.registry.update(newRegistrationId())).to.equal(undefined);
    await expectStoreError(store.registry.update(r.id, { lifetime: -1 }), 'invalid', /lifetime/, 'lifetime');
    expect(await store.registry.get(r.id)).to.deep.equal(touched);
  });

  it('an Update to lifetime 0 leaves the index; back to a lifetime puts it in again', async () => {
    const { registration: r } = await store.registry.register(reg());
    expect((await store.registry.update(r.id, { lifetime: 0 }))?.expiresAt).to.equal(null);
    expect(await store.registry.nextExpiry()).to.equal(undefined);
    const t = clock.tick();
    expect((await store.registry.update(r.id, { lifetime: 10 }))?.expiresAt).to.equal(t + 10_000);
    expect(await store.registry.nextExpiry()).to.equal(t + 10_000);
  });

  it('de-registers: the row goes, the event stays', async () => {
    const { registration: r } = await store.registry.register(reg());
    const t = clock.tick();
    expect(await store.registry.deregister(r.id, { peer: '127.0.0.1:9', detail: 'bye' })).to.deep.equal(r);
    expect(await store.registry.get(r.id)).to.equal(undefined);
    expect(await store.registry.deregister(r.id)).to.equal(undefined);
    expect(await store.registry.nextExpiry()).to.equal(undefined);
    const [e] = await store.registry.events('dev');
    expect(e).to.deep.include({ kind: 'deregister', registrationId: r.id, peer: '127.0.0.1:9', detail: 'bye', at: t });
  });

  it('expires what is due, earliest first, in batches, with expire events', async () => {
    const t0 = clock.t;
    const lifetimes: Record<string, number> = { a: 30, b: 10, c: 20, d: 0, e: 40 };
    for (const [ep, lt] of Object.entries(lifetimes)) {
      await store.devices.add({ endpoint: ep, profile: 'p' });
      await store.registry.register(reg({ endpoint: ep, lifetime: lt, lwm2mVersion: '1.2' }));
    }
    expect(await store.registry.nextExpiry()).to.equal(t0 + 10_000);
    expect(await store.registry.expireDue(t0 + 9_999)).to.deep.equal([]);
    clock.t = t0 + 35_000;
    const first = await store.registry.expireDue(clock.t, 2);
    expect(first.map((r) => r.endpoint.toString())).to.deep.equal(['b', 'c']);
    expect(await store.registry.nextExpiry()).to.equal(t0 + 30_000);
    const rest = await store.registry.expireDue(clock.t, 2);
    expect(rest.map((r) => r.endpoint.toString())).to.deep.equal(['a']);
    expect(await store.registry.expireDue(clock.t, 2)).to.deep.equal([]);
    expect((await store.registry.list()).map((r) => r.endpoint.toString())).to.deep.equal(['d', 'e']);
    const [ev] = await store.registry.events('b');
    expect(ev).to.deep.include({ kind: 'expire', at: clock.t });
    expect(ev!.detail).to.include('lifetime 10 s');
    await expectStoreError(store.registry.expireDue(clock.t, 0), 'invalid', /limit/, 'limit');
  });

  it('finds due registrations and the next expiry through the expiry index, not a table scan', async () => {
    const raw = new Database(join(dir, DB_FILE), { readonly: true });
    try {
      const plan = (sql: string): string =>
        (raw.prepare(`EXPLAIN QUERY PLAN ${sql}`).all() as { detail: string }[]).map((r) => r.detail).join(' | ');
      const due = plan('SELECT id FROM registrations WHERE expires_at IS NOT NULL AND expires_at <= 5 ORDER BY expires_at LIMIT 10');
      const next = plan('SELECT expires_at FROM registrations WHERE expires_at IS NOT NULL ORDER BY expires_at LIMIT 1');
      for (const p of [due, next]) {
        expect(p).to.include('registrations_expires');
        expect(p).to.not.match(/SCAN registrations(?! USING)/);
        expect(p).to.not.include('TEMP B-TREE');
      }
    } finally {
      raw.close();
    }
  });

  it('records refused requests, lists events newest first, and prunes old ones', async () => {
    const t1 = clock.tick();
    await store.registry.recordEvent({ kind: 'refused', peer: '10.1.1.1:5683', detail: 'register 4.00 bad_request: ep is required' });
    const t2 = clock.tick(10);
    const seq = await store.registry.recordEvent({ kind: 'refused', endpoint: 'stranger', peer: '10.1.1.1:5683', detail: 'x'.repeat(5000) });
    const all = await store.registry.events();
    expect(all.map((e) => [e.seq, e.endpoint?.toString() ?? null, e.at])).to.deep.equal([
      [seq, 'stranger', t2],
      [seq - 1, null, t1],
    ]);
    expect(all[0]!.detail!.length).to.be.at.most(1000);
    expect(await store.registry.events(undefined, 1)).to.have.length(1);
    expect(await store.registry.events('stranger')).to.have.length(1);
    expect(await store.registry.pruneEvents(t2)).to.equal(1);
    expect((await store.registry.events()).map((e) => e.seq)).to.deep.equal([seq]);
    await expectStoreError(store.registry.recordEvent({ kind: 'bogus' as 'refused' }), 'invalid', /kind/, 'kind');
  });

  it('refuses malformed input naming the field', async () => {
    await expectStoreError(store.registry.register(reg({ port: 70000 })), 'invalid', /port/, 'port');
    await expectStoreError(store.registry.register(reg({ lifetime: 1.5 })), 'invalid', /lifetime/, 'lifetime');
    await expectStoreError(store.registry.register(reg({ lifetime: 2 ** 32 })), 'invalid', /lifetime/, 'lifetime');
    await expectStoreError(store.registry.register(reg({ security: 'psk' })), 'invalid', /identity is required/, 'identity');
    await expectStoreError(store.registry.register(reg({ identity: Buffer.from('x') })), 'invalid', /not used with security nosec/, 'identity');
    await expectStoreError(store.registry.register(reg({ id: 'a/b' })), 'invalid', /id/, 'id');
    await expectStoreError(store.registry.register(reg({ endpoint: '' })), 'invalid', /endpoint/, 'endpoint');
    await expectStoreError(store.registry.register(reg({ objects: [{ id: 70000, instances: [] }] })), 'invalid', /object ID/, 'objects[0]');
    await expectStoreError(store.registry.register(reg({ objects: [{ id: 3, instances: [] }, { id: 3, instances: [0] }] })), 'invalid', /second time/, 'objects[1]');
    await expectStoreError(store.registry.register(reg({ rootPath: 'lwm2m' })), 'invalid', /rootPath/, 'rootPath');
    await expectStoreError(store.registry.register(reg({ contentFormats: [70000] })), 'invalid', /Content-Format/, 'contentFormats');
    expect(await store.registry.count()).to.equal(0);
  });

  it('refuses an explicit id that is taken; a device removal takes its registration with it', async () => {
    const { registration: r } = await store.registry.register(reg({ id: 'fixed-1', credentialId: (await nosec()).id }));
    expect(r.id).to.equal('fixed-1');
    await expectStoreError(store.registry.register(reg({ endpoint: 'other', id: 'fixed-1' })), 'duplicate', /fixed-1/, 'id');
    await store.devices.remove('dev');
    expect(await store.registry.get('fixed-1')).to.equal(undefined);
    expect(await store.registry.count()).to.equal(0);
  });

  it('migrates a version-2 database to the registry schema', async () => {
    await store.close();
    removeDir(dir);
    dir = tempDir('lwbs-registry-mig-');
    const db = openDatabase(dir, { migrations: MIGRATIONS.slice(0, 2) });
    expect(schemaVersion(db)).to.equal(2);
    closeDatabase(db);
    store = await open(dir, { now: clock.now });
    expect(SCHEMA_VERSION).to.be.at.least(3);
    await store.profiles.put('p', PROFILE_DOC);
    await store.devices.add({ endpoint: 'dev', profile: 'p' });
    const { registration } = await store.registry.register(reg());
    expect(await store.registry.get(registration.id)).to.deep.equal(registration);
  });

  it('holds a thousand registrations with their hand-off, and expires them all', async function () {
    this.timeout(30_000);
    const n = 1000;
    const started = Date.now();
    await store.devices.addMany(Array.from({ length: n }, (_, i) => ({ endpoint: `urn:dev:${i}`, profile: 'p' })));
    const creds = [];
    for (let i = 0; i < n; i++) creds.push(await store.credentials.addPending({ endpoint: `urn:dev:${i}`, shortServerId: 1, serverUri: URI, mode: 'nosec' }));
    for (let i = 0; i < n; i++) {
      const r = await store.registry.register(reg({ endpoint: `urn:dev:${i}`, port: 20000 + i, lifetime: 60 + (i % 7), credentialId: creds[i]!.id }));
      expect(r.promoted?.activated).to.equal(true);
    }
    const elapsed = Date.now() - started;
    // A generous bound: this is a few hundred milliseconds on a laptop.
    expect(elapsed, `${n} registrations took ${elapsed} ms`).to.be.below(20_000);
    expect(await store.registry.count()).to.equal(n);
    expect((await store.registry.list({ limit: 10, offset: 5 })).map((r) => r.endpoint.toString())).to.deep.equal(
      Array.from({ length: n }, (_, i) => `urn:dev:${i}`).sort().slice(5, 15),
    );
    expect((await store.credentials.findForRegistration({ endpoint: 'urn:dev:7' }))[0]?.status).to.equal('active');
    clock.tick(61_000);
    const first = await store.registry.expireDue(clock.t, 500);
    expect(first).to.have.length(Array.from({ length: n }, (_, i) => 60 + (i % 7)).filter((lt) => lt <= 61).length);
    expect(first.every((r) => r.lifetime <= 61)).to.equal(true);
    let total = first.length;
    clock.tick(10_000);
    for (;;) {
      const batch = await store.registry.expireDue(clock.t, 500);
      total += batch.length;
      if (batch.length < 500) break;
    }
    expect(total).to.equal(n);
    expect(await store.registry.count()).to.equal(0);
    expect(await store.registry.nextExpiry()).to.equal(undefined);
  });
});
