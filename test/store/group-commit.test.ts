/**
 * Group commit (src/store/group-commit.ts): the registry's Registers and Updates (and session
 * request records) asked for in one event-loop turn commit in one transaction, each write with its
 * own result or error; a failing one is rolled back alone; closing the store writes what is pending.
 */
import { expect } from 'chai';
import { newRegistrationId } from '../../src/store/registry.js';
import type { SqliteStore } from '../../src/store/store.js';
import { open, removeDir, tempDir } from './support.js';

describe('store: group commit of registry, session and device writes', function () {
  this.timeout(20_000);
  let dir: string;
  let store: SqliteStore;
  beforeEach(async () => {
    dir = tempDir('lwbs-group-');
    store = await open(dir);
  });
  afterEach(async () => {
    await store.close();
    removeDir(dir);
  });

  const reg = (ep: string): Promise<{ registration: { id: string } }> =>
    store.registry.register({ endpoint: ep, address: '127.0.0.1', port: 5683, security: 'nosec', lwm2mVersion: '1.1', binding: 'U', queueMode: false, lifetime: 60, objects: [{ id: 3, instances: [0] }] });

  it('gives each of several concurrent Updates its own result; an invalid one changes nothing', async () => {
    const [a, b, c] = await Promise.all([reg('ep-a'), reg('ep-b'), reg('ep-c')]);
    const results = await Promise.allSettled([
      store.registry.update(a.registration.id, { lifetime: 100 }),
      store.registry.update(b.registration.id, { lifetime: -1 }),
      store.registry.update(c.registration.id, { lifetime: 300, binding: 'UQ' }),
      store.registry.update(newRegistrationId()),
    ]);
    expect(results.map((r) => r.status)).to.deep.equal(['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    expect(results[0]!.status === 'fulfilled' && results[0]!.value?.lifetime).to.equal(100);
    expect(results[2]!.status === 'fulfilled' && results[2]!.value?.binding).to.equal('UQ');
    expect(results[3]!.status === 'fulfilled' && results[3]!.value).to.equal(undefined);
    expect(results[1]!.status === 'rejected' && String(results[1]!.reason)).to.match(/lifetime/);
    expect((await store.registry.get(a.registration.id))?.lifetime).to.equal(100);
    expect((await store.registry.get(b.registration.id))?.lifetime).to.equal(60);
    expect(await store.registry.get(c.registration.id)).to.deep.include({ lifetime: 300, binding: 'UQ' });
    const updates = async (ep: string): Promise<number> => (await store.registry.events(Buffer.from(ep))).filter((e) => e.kind === 'update').length;
    expect([await updates('ep-a'), await updates('ep-b'), await updates('ep-c')]).to.deep.equal([1, 0, 1]);
  });

  it('closing the store writes the pending batch first: nothing asked for is lost, every caller gets its result', async () => {
    const a = await reg('ep-a');
    const pending = [store.registry.update(a.registration.id, { lifetime: 90 }), store.registry.update(a.registration.id, { lifetime: 91 })];
    await store.close();
    const results = await Promise.allSettled(pending);
    expect(results.map((r) => r.status)).to.deep.equal(['fulfilled', 'fulfilled']);
    store = await open(dir);
    expect((await store.registry.get(a.registration.id))?.lifetime).to.equal(91);
    expect((await store.registry.events(Buffer.from('ep-a'))).filter((e) => e.kind === 'update')).to.have.length(2);
  });

  it('closing the store writes what every repository queued in the turn: enrollment, session, requests, Register', async () => {
    await store.profiles.put('p', '{}');
    const device = store.devices.add({ endpoint: 'ep-z', profile: 'p' });
    const session = store.sessions.start({ id: 's-z', endpoint: 'ep-z', peer: '127.0.0.1:1', security: 'nosec', profile: 'p' });
    const request = store.sessions.addRequest('s-z', { method: 'FINISH', path: '/bs', payloadSize: 0, responseCode: '2.04' });
    const finish = store.sessions.finish('s-z', 'success');
    const registered = reg('ep-z');
    await store.close(); // writes the pending batch: all of it, in the order asked
    const results = await Promise.allSettled([device, session, request, finish, registered]);
    expect(results.map((r) => r.status)).to.deep.equal(['fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'fulfilled']);
    store = await open(dir);
    expect((await store.devices.get('ep-z'))?.profile).to.equal('p');
    expect(await store.sessions.get('s-z')).to.deep.include({ outcome: 'success', requestCount: 1 });
    expect((await store.registry.getByEndpoint('ep-z'))?.endpoint).to.deep.equal(Buffer.from('ep-z'));
  });

  it('writes after close fail with a closed StoreError', async () => {
    const a = await reg('ep-a');
    await store.close();
    const err = await store.registry.update(a.registration.id, { lifetime: 90 }).catch((e: unknown) => e);
    expect(err).to.have.property('code', 'closed');
    store = await open(dir);
  });
});
