import { expect } from 'chai';
import type { SqliteStore } from '../../src/store/store.js';
import { Clock, expectStoreError, open, removeDir, tempDir } from './support.js';

describe('store/profiles', () => {
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

  const doc = (n: number): string => JSON.stringify({ name: 'meters', lifetime: n });

  it('put creates version 1, updates bump the version, an identical put changes nothing', async () => {
    const t0 = clock.tick();
    expect(await store.profiles.put('meters', doc(1))).to.deep.equal({ version: 1, change: 'create' });
    const t1 = clock.tick(10);
    expect(await store.profiles.put('meters', doc(2))).to.deep.equal({ version: 2, change: 'update' });
    clock.tick(10);
    expect(await store.profiles.put('meters', doc(2))).to.deep.equal({ version: 2, change: 'unchanged' });
    expect(await store.profiles.get('meters')).to.deep.equal({ name: 'meters', document: doc(2), version: 2, createdAt: t0, updatedAt: t1 });
  });

  it('get of an unknown name is undefined; list is sorted by name with device counts', async () => {
    expect(await store.profiles.get('nope')).to.equal(undefined);
    await store.profiles.put('zeta', doc(1));
    await store.profiles.put('alpha', doc(1));
    await store.devices.add({ endpoint: 'e1', profile: 'zeta' });
    await store.devices.add({ endpoint: 'e2', profile: 'zeta' });
    const list = await store.profiles.list();
    expect(list.map((p) => [p.name, p.devices])).to.deep.equal([
      ['alpha', 0],
      ['zeta', 2],
    ]);
  });

  it('keeps every create, update and delete in the history, counting versions on after re-create', async () => {
    const t = [clock.tick()];
    await store.profiles.put('meters', doc(1));
    t.push(clock.tick());
    await store.profiles.put('meters', doc(2));
    t.push(clock.tick());
    expect(await store.profiles.delete('meters')).to.equal(3);
    expect(await store.profiles.get('meters')).to.equal(undefined);
    t.push(clock.tick());
    expect(await store.profiles.put('meters', doc(3))).to.deep.equal({ version: 4, change: 'create' });
    expect(await store.profiles.history('meters')).to.deep.equal([
      { name: 'meters', version: 1, document: doc(1), change: 'create', changedAt: t[0] },
      { name: 'meters', version: 2, document: doc(2), change: 'update', changedAt: t[1] },
      { name: 'meters', version: 3, document: doc(2), change: 'delete', changedAt: t[2] },
      { name: 'meters', version: 4, document: doc(3), change: 'create', changedAt: t[3] },
    ]);
    expect(await store.profiles.history('never')).to.deep.equal([]);
  });

  it('refuses to delete a profile that devices use, saying how many', async () => {
    await store.profiles.put('meters', doc(1));
    await store.devices.add({ endpoint: 'e1', profile: 'meters' });
    await store.devices.add({ endpoint: 'e2', profile: 'meters' });
    await expectStoreError(store.profiles.delete('meters'), 'in_use', /profile "meters" is used by 2 devices/, 'profile');
    expect((await store.profiles.history('meters')).length).to.equal(1);
    await store.devices.remove('e1');
    await expectStoreError(store.profiles.delete('meters'), 'in_use', /used by 1 device;/);
    await store.devices.remove('e2');
    expect(await store.profiles.delete('meters')).to.equal(2);
  });

  it('refuses to delete an unknown profile', async () => {
    await expectStoreError(store.profiles.delete('ghost'), 'not_found', /profile "ghost" does not exist/, 'profile');
  });

  it('refuses bad names and documents that are not JSON', async () => {
    await expectStoreError(store.profiles.put('', doc(1)), 'invalid', /non-empty/, 'profile');
    await expectStoreError(store.profiles.put(' meters', doc(1)), 'invalid', /surrounding spaces/);
    await expectStoreError(store.profiles.put('a\nb', doc(1)), 'invalid', /control characters/);
    await expectStoreError(store.profiles.put('x'.repeat(129), doc(1)), 'invalid', /129 characters/);
    await expectStoreError(store.profiles.put('meters', '{nope'), 'invalid', /profile "meters": the document is not valid JSON/, 'document');
    expect(await store.profiles.list()).to.deep.equal([]);
  });
});
