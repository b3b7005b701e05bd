/**
 * Device management data on a real SQLite file (migration 4): observation intents that outlive a
 * registration (the foreign key makes them pending when the registration goes), latest values
 * replaced per answer, and everything removed with the device.
 */
import { expect } from 'chai';
import type { SqliteStore } from '../../src/store/store.js';
import type { NewRegistration } from '../../src/store/types.js';
import { Clock, expectStoreError, open, PROFILE_DOC, removeDir, tempDir } from './support.js';

describe('store/device-data', () => {
  let dir: string;
  let store: SqliteStore;
  let clock: Clock;

  beforeEach(async () => {
    dir = tempDir('lwbs-devdata-');
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

  const reg = (endpoint = 'dev'): NewRegistration => ({
    endpoint,
    address: '127.0.0.1',
    port: 40000,
    security: 'nosec',
    lwm2mVersion: '1.1',
    binding: 'U',
    queueMode: false,
    lifetime: 300,
    objects: [{ id: 3, instances: [0] }],
  });

  it('keeps an observation intent, activates it under a registration, and makes it pending when that registration goes', async () => {
    const o = await store.deviceData.saveObservation('dev', '/3/0/9', { accept: 112 });
    expect(o).to.deep.include({ path: '/3/0/9', accept: 112, registrationId: null, token: null, notifications: 0 });
    const { registration: r } = await store.registry.register(reg());
    await store.deviceData.activateObservation(o.id, r.id, Buffer.from('0102', 'hex'), 112);
    const active = await store.deviceData.observation('dev', '/3/0/9');
    expect(active).to.deep.include({ registrationId: r.id, contentFormat: 112 });
    expect(active!.token).to.deep.equal(Buffer.from('0102', 'hex'));
    expect((await store.deviceData.activeObservations()).map((x) => x.id)).to.deep.equal([o.id]);
    expect((await store.deviceData.observationsOfRegistration(r.id)).map((x) => x.path)).to.deep.equal(['/3/0/9']);

    // A new Register replaces the registration: the intent stays, pending.
    await store.registry.register(reg());
    const pending = await store.deviceData.observation('dev', '/3/0/9');
    expect(pending).to.deep.include({ registrationId: null, accept: 112 });
    expect(await store.deviceData.activeObservations()).to.deep.equal([]);
  });

  it('an observation activated for a registration that is already gone stays pending', async () => {
    const o = await store.deviceData.saveObservation('dev', '/3/0');
    await store.deviceData.activateObservation(o.id, 'no-such-reg', Buffer.from('01', 'hex'), undefined);
    expect((await store.deviceData.observation('dev', '/3/0'))!.registrationId).to.equal(null);
  });

  it('saving again updates accept and attributes; remove returns the removed one', async () => {
    await store.deviceData.saveObservation('dev', '/3/0/9');
    const again = await store.deviceData.saveObservation('dev', '/3/0/9', { attributes: { pmax: '60' } });
    expect(again.attributes).to.deep.equal({ pmax: '60' });
    expect((await store.deviceData.observations('dev')).length).to.equal(1);
    expect((await store.deviceData.removeObservation('dev', '/3/0/9'))!.path).to.equal('/3/0/9');
    expect(await store.deviceData.removeObservation('dev', '/3/0/9')).to.equal(undefined);
  });

  it('refuses bad paths and unknown devices', async () => {
    await expectStoreError(() => store.deviceData.saveObservation('dev', '3/0'), 'invalid', /path/);
    await expectStoreError(() => store.deviceData.saveObservation('nobody', '/3/0'), 'not_found', /nobody/);
    await expectStoreError(() => store.deviceData.storeValues('dev', '/3/0', [{ path: '/4/0/1', value: { type: 'integer', value: 1 } }], 'read'), 'invalid', /not at or below/);
    expect(await store.deviceData.storeValues('nobody', '/3/0', [], 'read')).to.equal(0);
  });

  it('replaces the values at and below a path per answer, and counts notifications', async () => {
    const o = await store.deviceData.saveObservation('dev', '/3/0');
    clock.t = 1000;
    await store.deviceData.storeValues('dev', '/3/0', [
      { path: '/3/0/0', value: { type: 'string', value: 'Acme' } },
      { path: '/3/0/9', value: { type: 'integer', value: 95 } },
      { path: '/3/0/10', value: { type: 'integer', value: 1 } },
    ], 'read');
    await store.deviceData.storeValues('other', '/3/0', [{ path: '/3/0/9', value: { type: 'integer', value: 5 } }], 'read');
    clock.t = 2000;
    // A notification of /3/0 without resource 10: it is gone from the device's values.
    await store.deviceData.storeValues('dev', '/3/0', [
      { path: '/3/0/0', value: { type: 'string', value: 'Acme' } },
      { path: '/3/0/9', value: { type: 'integer', value: 94 } },
    ], 'notify', { observationId: o.id, contentFormat: 112 });
    expect(await store.deviceData.latestValues('dev')).to.deep.equal([
      { path: '/3/0/0', value: { type: 'string', value: 'Acme' }, at: 2000, source: 'notify' },
      { path: '/3/0/9', value: { type: 'integer', value: 94 }, at: 2000, source: 'notify' },
    ]);
    // A read of one resource replaces only it; values of /3/0/1x are not "below" /3/0/1.
    await store.deviceData.storeValues('dev', '/3/0/10', [{ path: '/3/0/10', value: { type: 'integer', value: 7 } }], 'read', { at: 3000 });
    await store.deviceData.storeValues('dev', '/3/0/1', [], 'read', { at: 3000 });
    expect((await store.deviceData.latestValues('dev', '/3/0/10')).map((v) => v.value)).to.deep.equal([{ type: 'integer', value: 7 }]);
    expect((await store.deviceData.latestValues('dev')).map((v) => v.path)).to.deep.equal(['/3/0/0', '/3/0/9', '/3/0/10']);
    const counted = await store.deviceData.observation('dev', '/3/0');
    expect(counted).to.deep.include({ notifications: 1, lastAt: 2000, contentFormat: 112 });
    expect((await store.deviceData.latestValues('other')).length).to.equal(1);
  });

  it('goes with the device', async () => {
    await store.deviceData.saveObservation('dev', '/3/0');
    await store.deviceData.storeValues('dev', '/3/0', [{ path: '/3/0/9', value: { type: 'integer', value: 1 } }], 'read');
    await store.devices.remove('dev');
    expect(await store.deviceData.observations('dev')).to.deep.equal([]);
    expect(await store.deviceData.latestValues('dev')).to.deep.equal([]);
  });
});
