import { expect } from 'chai';
import type { SqliteStore } from '../../src/store/store.js';
import { Clock, expectStoreError, open, removeDir, tempDir } from './support.js';

describe('store/sessions', () => {
  let dir: string;
  let store: SqliteStore;
  const clock = new Clock();
  beforeEach(async () => {
    dir = tempDir();
    store = await open(dir, { now: clock.now });
  });
  afterEach(async () => {
    await store.close();
    removeDir(dir);
  });

  it('start records a running session (endpoint not required to be enrolled)', async () => {
    const t = clock.tick();
    const s = await store.sessions.start({ endpoint: 'unknown-ep', peer: '127.0.0.1:40000', security: 'nosec', preferredFormat: 112, lwm2mVersion: '1.1' });
    expect(s.id).to.match(/^[0-9a-f]{16}$/);
    expect(s).to.deep.equal({
      id: s.id,
      endpoint: Buffer.from('unknown-ep'),
      peer: '127.0.0.1:40000',
      security: 'nosec',
      profile: null,
      lwm2mVersion: '1.1',
      preferredFormat: 112,
      contentFormat: null,
      startedAt: t,
      endedAt: null,
      outcome: 'running',
      failureCause: null,
      failureDetail: null,
      requestCount: 0,
    });
    const anon = await store.sessions.start({ id: 'mine', peer: '[::1]:5', security: 'psk' });
    expect(anon).to.deep.include({ id: 'mine', endpoint: null });
    await expectStoreError(store.sessions.start({ id: 'mine', peer: 'x', security: 'nosec' }), 'duplicate', /session "mine" already exists/, 'id');
    await expectStoreError(store.sessions.start({ peer: 'x', security: 'tls' as 'psk' }), 'invalid', /security must be one of/, 'security');
    await expectStoreError(store.sessions.start({ peer: '', security: 'nosec' }), 'invalid', /peer/, 'peer');
    await expectStoreError(store.sessions.start({ peer: 'x', security: 'nosec', contentFormat: -1 }), 'invalid', /contentFormat/, 'contentFormat');
  });

  it('records requests in order with sizes and answers, never a payload', async () => {
    const s = await store.sessions.start({ endpoint: 'ep', peer: 'p', security: 'nosec' });
    const t1 = clock.tick();
    expect(await store.sessions.addRequest(s.id, { method: 'DISCOVER', path: '/', payloadSize: 0, responseCode: '2.05', responseSize: 120, durationMs: 4 })).to.equal(1);
    expect(await store.sessions.addRequest(s.id, { method: 'WRITE', path: '/0/1', contentFormat: 11542, payloadSize: 87, responseCode: '4.15', startedAt: 5, durationMs: 3 })).to.equal(2);
    expect(await store.sessions.addRequest(s.id, { method: 'FINISH', path: '/bs', payloadSize: 0, error: 'timeout', durationMs: 2000 })).to.equal(3);
    await store.sessions.update(s.id, { profile: 'meters', contentFormat: 110 });
    await store.sessions.update(s.id, { lwm2mVersion: '1.0' }); // others unchanged
    const d = await store.sessions.get(s.id);
    expect(d).to.deep.include({ profile: 'meters', contentFormat: 110, lwm2mVersion: '1.0', requestCount: 3 });
    expect(d?.requests).to.deep.equal([
      { seq: 1, method: 'DISCOVER', path: '/', contentFormat: null, payloadSize: 0, responseCode: '2.05', responseSize: 120, startedAt: t1, durationMs: 4, error: null },
      { seq: 2, method: 'WRITE', path: '/0/1', contentFormat: 11542, payloadSize: 87, responseCode: '4.15', responseSize: null, startedAt: 5, durationMs: 3, error: null },
      { seq: 3, method: 'FINISH', path: '/bs', contentFormat: null, payloadSize: 0, responseCode: null, responseSize: null, startedAt: t1, durationMs: 2000, error: 'timeout' },
    ]);
    await expectStoreError(store.sessions.addRequest('nope', { method: 'WRITE', path: '/0', payloadSize: 1 }), 'not_found', /session "nope" does not exist/, 'sessionId');
    await expectStoreError(store.sessions.addRequest(s.id, { method: '', path: '/0', payloadSize: 1 }), 'invalid', /method/, 'method');
    await expectStoreError(store.sessions.addRequest(s.id, { method: 'W', path: '/0', payloadSize: -1 }), 'invalid', /payloadSize/, 'payloadSize');
    await expectStoreError(store.sessions.update('nope', { profile: 'x' }), 'not_found', /nope/);
    expect(await store.sessions.get('nope')).to.equal(undefined);
  });

  it('finish ends a running session once; a later finish changes nothing', async () => {
    const s = await store.sessions.start({ endpoint: 'ep', peer: 'p', security: 'nosec' });
    const t = clock.tick(50);
    expect(await store.sessions.finish(s.id, 'failure', 'finish_rejected', 'Finish answered 4.06')).to.equal(true);
    clock.tick();
    expect(await store.sessions.finish(s.id, 'cancelled', 'superseded')).to.equal(false);
    expect(await store.sessions.get(s.id)).to.deep.include({ outcome: 'failure', endedAt: t, failureCause: 'finish_rejected', failureDetail: 'Finish answered 4.06' });
    await expectStoreError(store.sessions.finish('nope', 'success'), 'not_found', /nope/, 'sessionId');
    await expectStoreError(store.sessions.finish(s.id, 'running' as 'success'), 'invalid', /outcome/, 'outcome');
    const long = await store.sessions.start({ peer: 'p', security: 'nosec' });
    await store.sessions.finish(long.id, 'failure', 'bad', 'x'.repeat(5000));
    expect((await store.sessions.get(long.id))?.failureDetail?.length).to.equal(1000);
  });

  it('lists newest first, by endpoint and outcome, with paging', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      clock.tick(10);
      const s = await store.sessions.start({ id: `s${i}`, endpoint: i % 2 ? 'odd' : 'even', peer: 'p', security: 'nosec' });
      ids.push(s.id);
      if (i < 4) await store.sessions.finish(s.id, i === 0 ? 'failure' : 'success');
    }
    const idsOf = (l: { id: string }[]): string[] => l.map((s) => s.id);
    expect(idsOf(await store.sessions.list())).to.deep.equal(['s5', 's4', 's3', 's2', 's1', 's0']);
    expect(idsOf(await store.sessions.list({ endpoint: 'odd' }))).to.deep.equal(['s5', 's3', 's1']);
    expect(idsOf(await store.sessions.list({ endpoint: Buffer.from('even'), outcome: 'success' }))).to.deep.equal(['s2']);
    expect(idsOf(await store.sessions.list({ outcome: 'running' }))).to.deep.equal(['s5', 's4']);
    expect(idsOf(await store.sessions.list({ outcome: 'failure' }))).to.deep.equal(['s0']);
    expect(idsOf(await store.sessions.list({ limit: 2, offset: 1 }))).to.deep.equal(['s4', 's3']);
    expect(idsOf(await store.sessions.list({ endpoint: 'none' }))).to.deep.equal([]);
    await expectStoreError(store.sessions.list({ outcome: 'lost' as 'success' }), 'invalid', /outcome/);
  });

  it('markInterrupted fails sessions left running by a previous process, across a reopen', async () => {
    const a = await store.sessions.start({ id: 'a', peer: 'p', security: 'nosec', startedAt: 100 });
    const b = await store.sessions.start({ id: 'b', peer: 'p', security: 'nosec', startedAt: 200 });
    const done = await store.sessions.start({ id: 'c', peer: 'p', security: 'nosec', startedAt: 50 });
    await store.sessions.finish(done.id, 'success');
    await store.close();
    store = await open(dir, { now: clock.now });
    expect(await store.sessions.markInterrupted(150)).to.equal(1);
    expect(await store.sessions.get(a.id)).to.deep.include({ outcome: 'failure', failureCause: 'interrupted', endedAt: clock.t });
    expect((await store.sessions.get(b.id))?.outcome).to.equal('running');
    expect(await store.sessions.markInterrupted()).to.equal(1);
    expect((await store.sessions.get(b.id))?.failureCause).to.equal('interrupted');
    expect((await store.sessions.get(done.id))?.outcome).to.equal('success');
    expect(await store.sessions.markInterrupted()).to.equal(0);
  });

  it('prune deletes ended sessions before a time, with their requests, and unlinks credentials', async () => {
    await store.profiles.put('p', '{}');
    await store.devices.add({ endpoint: 'ep', profile: 'p' });
    const old = await store.sessions.start({ id: 'old', endpoint: 'ep', peer: 'p', security: 'nosec', startedAt: 10 });
    await store.sessions.addRequest(old.id, { method: 'FINISH', path: '/bs', payloadSize: 0 });
    const cred = await store.credentials.addPending({ endpoint: 'ep', shortServerId: 1, serverUri: 'coap://r', mode: 'nosec', sessionId: old.id });
    await store.sessions.finish(old.id, 'success');
    await store.sessions.start({ id: 'running-old', peer: 'p', security: 'nosec', startedAt: 10 });
    await store.sessions.start({ id: 'new', peer: 'p', security: 'nosec', startedAt: 1000 });
    expect(await store.sessions.prune(500)).to.equal(1);
    expect(await store.sessions.get('old')).to.equal(undefined);
    expect((await store.sessions.list()).map((s) => s.id).sort()).to.deep.equal(['new', 'running-old']);
    expect((await store.credentials.get(cred.id))?.sessionId).to.equal(null);
  });

  it('generates ids in creation order (one after the other or in one turn), each the record get() returns', async () => {
    const one: string[] = [];
    for (let i = 0; i < 5; i++) one.push((await store.sessions.start({ peer: 'p', security: 'nosec' })).id);
    const started = await Promise.all(Array.from({ length: 20 }, (_, i) => store.sessions.start({ endpoint: `ep-${i}`, peer: 'p', security: 'nosec', profile: 'x' })));
    const ids = [...one, ...started.map((s) => s.id)];
    for (const id of ids) expect(id).to.match(/^[0-9a-f]{16}$/);
    expect(new Set(ids).size).to.equal(ids.length);
    expect([...ids].sort()).to.deep.equal(ids);
    for (const s of started) expect(await store.sessions.get(s.id)).to.deep.equal({ ...s, requests: [] });
  });

  it('numbers requests asked for in one turn in call order, and after requests another connection recorded', async () => {
    const s = await store.sessions.start({ endpoint: 'ep', peer: 'p', security: 'nosec' });
    const req = (path: string) => store.sessions.addRequest(s.id, { method: 'WRITE', path, payloadSize: 1, responseCode: '2.04' });
    expect(await Promise.all([req('/0/0'), req('/0/1'), req('/1/0')])).to.deep.equal([1, 2, 3]);
    const other = await open(dir, { now: clock.now });
    try {
      expect(await other.sessions.addRequest(s.id, { method: 'READ', path: '/1', payloadSize: 0 })).to.equal(4);
    } finally {
      await other.close();
    }
    expect(await Promise.all([req('/2/0'), req('/2/1')])).to.deep.equal([5, 6]);
    // A request of a session that does not exist is refused.
    const early = store.sessions.addRequest('nope', { method: 'READ', path: '/', payloadSize: 0 });
    await expectStoreError(early, 'not_found', /session "nope" does not exist/, 'sessionId');
    const d = await store.sessions.get(s.id);
    expect(d?.requests.map((r) => `${r.seq} ${r.path}`)).to.deep.equal(['1 /0/0', '2 /0/1', '3 /1/0', '4 /1', '5 /2/0', '6 /2/1']);
  });
});
