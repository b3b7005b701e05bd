/**
 * The whole path over real UDP on 127.0.0.1, through the composition root `startApp` (what
 * `lwbs serve` runs): simulated devices bootstrap, register with exactly what they were given,
 * are managed through the admin HTTP API (bearer token from the data directory), notify observed
 * values, expire when they stop updating, re-bootstrap through /1/x/9, and a thousand of them
 * bootstrap and register at once.
 */
import { expect } from 'chai';
import { AdminClient } from '../../src/admin/client.js';
import { readAdminToken } from '../../src/admin/token.js';
import { startApp, type App } from '../../src/app.js';
import type { Config } from '../../src/config/config.js';
import { DeviceSimulator, type SimulatorOptions } from '../../src/simulator/simulator.js';
import { open, removeDir, tempDir, TEST_KEY_HEX } from '../store/support.js';
import { until } from '../registration/support.js';
import { freePort } from '../simulator/dtls-app.js';

const FAST = { ackTimeoutMs: 300, ackRandomFactor: 1, maxRetransmit: 2 };
const PROFILE = {
  name: 'meters',
  match: ['urn:imei:*'],
  delete: ['/0', '/1'],
  servers: [{ shortServerId: 3, handOff: true, lifetime: 300, binding: 'U', security: { mode: 'nosec' } }],
};

describe('e2e: bootstrap, registration and device management (lwbs app and simulated devices over UDP)', function () {
  this.timeout(90_000);
  let dir: string;
  let app: App;
  let bsUri: string;
  const sims: DeviceSimulator[] = [];

  const startAt = async (transmission = FAST): Promise<void> => {
    const regPort = await freePort();
    const config: Config = {
      dataDir: dir,
      objectDirs: [],
      bootstrap: { coap: { host: '127.0.0.1', port: 0 }, coaps: { host: '127.0.0.1', port: 0 }, requestTimeoutSeconds: 10, sessionTimeoutSeconds: 60 },
      registration: {
        coap: { host: '127.0.0.1', port: regPort },
        coaps: { host: '127.0.0.1', port: 0 },
        publicUri: { coap: `coap://127.0.0.1:${regPort}`, coaps: 'coaps://127.0.0.1:5784' },
        requestTimeoutSeconds: 5,
        queueAwakeSeconds: 93,
      },
      log: { level: 'info' },
      admin: { listen: { host: '127.0.0.1', port: 0 } },
    };
    app = await startApp(config, { transmission, env: { LWBS_SECRET_KEY: TEST_KEY_HEX } });
    bsUri = `coap://127.0.0.1:${app.addresses.get('bootstrap.coap')!.port}`;
    // The DTLS listeners are up too (PSK and RPK; the simulator's DTLS side is tested in test/dtls and test/simulator).
    expect(app.addresses.get('bootstrap.coaps')!.port).to.be.greaterThan(0);
    expect(app.addresses.get('registration.coaps')!.port).to.be.greaterThan(0);
  };
  const sim = async (endpoint: string, o: Partial<SimulatorOptions> = {}): Promise<DeviceSimulator> => {
    const s = await DeviceSimulator.start({ endpoint, transmission: FAST, lwm2mVersion: '1.1', ...o });
    sims.push(s);
    return s;
  };
  const admin = (): AdminClient => new AdminClient(`http://127.0.0.1:${app.addresses.get('admin')!.port}`, readAdminToken(dir));

  beforeEach(async () => {
    dir = tempDir('lwbs-e2e-reg-');
    const store = await open(dir);
    await store.profiles.put(PROFILE.name, JSON.stringify(PROFILE));
    await store.close();
    await startAt();
  });
  afterEach(async () => {
    await Promise.all(sims.splice(0).map((s) => s.close({ deregister: false })));
    await app.close();
    removeDir(dir);
  });

  it('a device bootstraps, registers with what it was given, and is managed through the admin API', async () => {
    const d = await sim('urn:imei:100');
    expect((await d.bootstrap(bsUri)).outcome).to.equal('success');
    const r = await d.register();
    expect(r).to.deep.include({ outcome: 'success', code: '2.01', shortServerId: 3 });
    const reg = await app.store.registry.getByEndpoint('urn:imei:100');
    expect(reg).to.deep.include({ lwm2mVersion: '1.1', lifetime: 300, security: 'nosec', address: '127.0.0.1', port: d.address().port });
    // The credential the session provisioned is the one the registration holds, now active.
    const [cred] = await app.store.credentials.listForDevice('urn:imei:100');
    expect(cred).to.deep.include({ id: reg!.credentialId, status: 'active', shortServerId: 3 });

    const api = admin();
    const ep = Buffer.from('urn:imei:100');
    const read = await api.submit(ep, { op: 'read', path: '/3/0' }, 10);
    expect(read.status).to.equal(200);
    expect(read.result).to.deep.include({ state: 'done', code: '2.05', success: true });
    const manufacturer = read.result.values!.find((v) => v.path === '/3/0/0');
    expect(manufacturer && 'value' in manufacturer ? manufacturer.value : undefined).to.equal(d.value('/3/0/0')?.value);

    const write = await api.submit(ep, { op: 'write', path: '/1/0/1', value: 600 }, 10);
    expect(write.result).to.deep.include({ code: '2.04', success: true });
    expect(d.value('/1/0/1')?.value).to.equal(600);
    // Writing the lifetime makes the client send an Update with lt=600 (§6).
    await until(async () => (await app.store.registry.getByEndpoint('urn:imei:100'))?.lifetime === 600, 'the Update with the new lifetime');

    const observe = await api.submit(ep, { op: 'observe', path: '/3/0/9' }, 10);
    expect(observe.result).to.deep.include({ code: '2.05', success: true });
    d.setValue('/3/0/9', 42);
    const latest = await until(async () => (await api.values(ep, '/3/0/9')).find((v) => 'value' in v && v.value === 42), 'the notified battery level');
    expect(latest.source).to.equal('notify');
    expect((await api.observations(ep))[0]).to.deep.include({ path: '/3/0/9', state: 'active' });
  });

  it('expires a device that stops updating; its next Update gets 4.04 and it registers again', async () => {
    const d = await sim('urn:imei:200');
    await d.bootstrap(bsUri);
    await d.register({ lifetime: 1, autoUpdate: false });
    const id = (await app.store.registry.getByEndpoint('urn:imei:200'))!.id;
    await until(async () => (await app.store.registry.getByEndpoint('urn:imei:200')) === undefined, 'the expiry', 5000);
    const events = await app.store.registry.events('urn:imei:200');
    expect(events.map((e) => e.kind)).to.include('expire');
    const u = await d.update();
    expect(u.code).to.equal('4.04');
    const again = await until(async () => app.store.registry.getByEndpoint('urn:imei:200'), 'the new Register');
    expect(again.id).not.to.equal(id);
  });

  it('re-bootstraps through /1/x/9: new session, new credential, a new registration that retires the old one', async () => {
    const d = await sim('urn:imei:300');
    await d.bootstrap(bsUri);
    await d.register();
    const first = (await app.store.registry.getByEndpoint('urn:imei:300'))!;
    const r = await app.management.run(Buffer.from('urn:imei:300'), { op: 'trigger-bootstrap' });
    expect(r).to.deep.include({ state: 'done', code: '2.04', path: '/1/0/9' });
    await d.settled();
    const second = await until(async () => {
      const x = await app.store.registry.getByEndpoint('urn:imei:300');
      return x && x.id !== first.id ? x : undefined;
    }, 'the registration after the re-bootstrap');
    // The outcome of the second session is written right after its Finish was answered; the
    // device may register in the same moment.
    const sessions = await until(async () => {
      const l = await app.store.sessions.list({ endpoint: 'urn:imei:300' });
      return l.length === 2 && l.every((x) => x.outcome !== 'running') ? l : undefined;
    }, 'both bootstrap sessions ended');
    expect(sessions.map((s) => s.outcome)).to.deep.equal(['success', 'success']);
    const creds = await app.store.credentials.listForDevice('urn:imei:300', { includeRetired: true });
    expect(creds.map((c) => c.status).sort()).to.deep.equal(['active', 'retired']);
    expect(creds.find((c) => c.status === 'active')!.id).to.equal(second.credentialId);
    expect(second.credentialId).not.to.equal(first.credentialId);
  });

  it('a thousand simulated devices bootstrap and register at once', async () => {
    // Unhurried CoAP timers: under this load a 300 ms ACK timeout only adds retransmissions.
    await app.close();
    await startAt({ ackTimeoutMs: 2000, ackRandomFactor: 1.5, maxRetransmit: 4 });
    const N = 1000;
    const devices = await Promise.all(Array.from({ length: N }, (_, i) => sim(`urn:imei:9${String(i).padStart(5, '0')}`, { transmission: { ackTimeoutMs: 2000, ackRandomFactor: 1.5, maxRetransmit: 4 } })));
    const t0 = Date.now();
    const boots = await Promise.all(devices.map((s) => s.bootstrap(bsUri, { timeoutMs: 60_000 })));
    const t1 = Date.now();
    expect(boots.filter((b) => b.outcome !== 'success')).to.deep.equal([]);
    const regs = await Promise.all(devices.map((s) => s.register({ autoUpdate: false })));
    const t2 = Date.now();
    expect(regs.filter((r) => r.outcome !== 'success').map((r) => `${r.endpoint}: ${r.code ?? r.diagnostic}`)).to.deep.equal([]);
    expect(await app.store.registry.count()).to.equal(N);
    const all = await app.store.registry.list();
    expect(new Set(all.map((r) => r.id)).size).to.equal(N);
    expect(new Set(all.map((r) => r.port)).size).to.equal(N);
    // Printed for the record; not asserted (timing depends on the machine).
    console.log(`      1000 devices: bootstrap ${t1 - t0} ms, register ${t2 - t1} ms`);
  });
});
