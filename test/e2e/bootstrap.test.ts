/**
 * End to end over real UDP on 127.0.0.1: the bootstrap server (src/bootstrap/server.ts) on a real
 * SQLite store, and simulated devices (src/simulator/) that hold objects 0/1/2/3(/21) and answer
 * per the spec. Each test checks what the device ended up holding against what the store says it
 * was given, so the hand-off's two sides agree byte for byte.
 */
import { expect } from 'chai';
import { generateServerKeyPair } from '../../src/bootstrap/credentials.js';
import { BootstrapServer, type SessionEnd } from '../../src/bootstrap/server.js';
import { N } from '../../src/lwm2m/node.js';
import { V } from '../../src/lwm2m/value.js';
import { DeviceSimulator, type SimulatorOptions } from '../../src/simulator/simulator.js';
import type { ServerAccount } from '../../src/simulator/report.js';
import type { SqliteStore } from '../../src/store/store.js';
import { open, removeDir, tempDir } from '../store/support.js';

const FAST = { ackTimeoutMs: 200, ackRandomFactor: 1, maxRetransmit: 2 };
const REG_KEY = generateServerKeyPair();
const REG = { coap: 'coap://127.0.0.1:5783', coaps: 'coaps://127.0.0.1:5784', publicKey: REG_KEY.publicKey };

const PROFILES = {
  meters: {
    name: 'meters',
    match: ['urn:imei:35*'],
    delete: ['/0', '/1'],
    contentFormat: 'auto',
    discoverBootstrapAccount: false,
    servers: [
      { shortServerId: 1, handOff: true, lifetime: 300, binding: 'U', defaultMinPeriod: 1, defaultMaxPeriod: 60, notificationStoring: true, security: { mode: 'nosec' } },
    ],
  },
  // Every feature at once: Discover, a new bootstrap account with generated credentials, a
  // generated-PSK hand-off server with 1.1 resources, a second external server with a static
  // PSK, an ACL, extra deletes, Bootstrap-Read, accepted versions.
  fleet: {
    name: 'fleet',
    match: ['fleet-*'],
    delete: ['/0', '/1', '/2'],
    discoverBootstrapAccount: true,
    bootstrapRead: true,
    lwm2mVersions: ['1.1', '1.2'],
    bootstrapAccount: { uri: 'coaps://127.0.0.1:5684', security: { mode: 'psk', generate: true, identityTemplate: 'bs-{endpoint}' }, clientHoldOffTime: 5 },
    servers: [
      {
        shortServerId: 1,
        handOff: true,
        lifetime: 600,
        binding: 'U',
        notificationStoring: false,
        communicationRetryCount: 3,
        bootstrapOnRegistrationFailure: true,
        security: { mode: 'psk', identityTemplate: '{endpoint}-{ssid}' },
      },
      { shortServerId: 2, uri: 'coaps://dm.example.com:5684', lifetime: 86400, binding: 'U', security: { mode: 'psk', identity: 'fleet-shared', key: '00112233445566778899aabbccddeeff' } },
    ],
    acl: [{ objectId: 3, instanceId: 0, rights: { '1': 'RWE', '2': 'R' }, owner: 1 }],
  },
  keys: {
    name: 'keys',
    match: ['rpk-*'],
    lwm2mVersions: ['1.2'],
    servers: [{ shortServerId: 5, handOff: true, lifetime: 120, binding: 'U', security: { mode: 'rpk' } }],
  },
  legacy: { name: 'legacy', match: ['old-*'], contentFormat: 'lwm2m-json', lwm2mVersions: ['1.0'], servers: [{ shortServerId: 1, handOff: true, lifetime: 300, binding: 'UQ', security: { mode: 'nosec' } }] },
  // Forgets to delete /1: a device with an old server account ends up with a Server instance
  // whose Security is gone, and answers Finish with 4.06.
  sloppy: { name: 'sloppy', match: ['sloppy-*'], delete: ['/0'], servers: [{ shortServerId: 1, handOff: true, lifetime: 300, binding: 'U', security: { mode: 'nosec' } }] },
};

describe('e2e: bootstrap server and simulated devices over UDP', function () {
  this.timeout(60_000);
  let dir: string;
  let store: SqliteStore;
  let server: BootstrapServer;
  let port: number;
  let ended: SessionEnd[];
  const sims: DeviceSimulator[] = [];

  const device = async (endpoint: string, o: Partial<SimulatorOptions> = {}): Promise<DeviceSimulator> => {
    const s = await DeviceSimulator.start({ endpoint, transmission: FAST, ...o });
    sims.push(s);
    return s;
  };
  const target = (): { address: string; port: number } => ({ address: '127.0.0.1', port });
  const account = (servers: readonly ServerAccount[], ssid: number): ServerAccount => {
    const a = servers.find((s) => s.ssid === ssid);
    if (!a) throw new Error(`no account for SSID ${ssid}; got ${servers.map((s) => s.ssid).join(', ')}`);
    return a;
  };
  /** The device's PSK for `ssid` equals the key the store holds for it (active), and the identity too. */
  const expectStoredPsk = async (endpoint: string, a: ServerAccount, identity: string): Promise<void> => {
    const creds = (await store.credentials.listForDevice(endpoint)).filter((c) => c.shortServerId === a.ssid);
    expect(creds.map((c) => c.status)).to.deep.equal(['active']);
    expect(creds[0]!.pskIdentity?.toString()).to.equal(identity);
    expect(Buffer.from(a.pskIdentity!).toString()).to.equal(identity);
    const key = (await store.credentials.revealSecrets(creds[0]!.id)).pskKey!;
    expect(key).to.have.length(16);
    expect(Buffer.from(a.pskKey!.reveal()).equals(key)).to.equal(true);
  };

  beforeEach(async () => {
    dir = tempDir('lwbs-e2e-');
    store = await open(dir);
    for (const p of Object.values(PROFILES)) await store.profiles.put(p.name, JSON.stringify(p));
    ended = [];
    server = new BootstrapServer({ store, registration: REG, requestTimeoutMs: 2000, onSessionEnd: (e) => ended.push(e) });
    port = (await server.listen({ host: '127.0.0.1', port: 0, transmission: FAST })).address().port;
  });
  afterEach(async () => {
    await Promise.all(sims.splice(0).map((s) => s.close()));
    await server.close();
    await store.close();
    removeDir(dir);
  });

  it("provisions the issue's example profile: a 1.0 device over TLV", async () => {
    const sim = await device('urn:imei:350000000000001', { lwm2mVersion: '1.0' });
    const r = await sim.bootstrap(target());
    await server.idle(); // the device has its answer to Finish; let the server record the outcome
    expect(r.outcome, r.diagnostic).to.equal('success');
    const a = account(r.servers, 1);
    expect([a.uri, a.mode, a.lifetime, a.binding, a.notificationStoring, a.defaultMinPeriod, a.defaultMaxPeriod]).to.deep.equal([REG.coap, 'nosec', 300, 'U', true, 1, 60]);
    expect(r.requests.filter((q) => q.operation === 'write').every((q) => q.contentFormat === 11542)).to.equal(true);
    expect(r.bootstrapAccount?.uri).to.equal(`coap://127.0.0.1:${port}`); // untouched
    const [s] = await store.sessions.list({ endpoint: 'urn:imei:350000000000001' });
    expect(s?.outcome).to.equal('success');
  });

  for (const [label, pct, cf] of [
    ['TLV (no pct)', undefined, 11542],
    ['SenML CBOR (pct 112)', 112, 112],
    ['SenML JSON (pct 110)', 110, 110],
  ] as const) {
    it(`provisions every profile feature in ${label}`, async () => {
      const ep = `fleet-${cf}`;
      const sim = await device(ep, { lwm2mVersion: '1.1', ...(pct !== undefined ? { pct } : {}) });
      const r = await sim.bootstrap(target());
    await server.idle(); // the device has its answer to Finish; let the server record the outcome
      expect(r.outcome, r.diagnostic).to.equal('success');
      expect(r.requests[0]).to.include({ operation: 'discover', path: '/' });
      expect(r.requests.filter((q) => q.operation === 'write').map((q) => q.contentFormat)).to.satisfy((xs: number[]) => xs.length >= 4 && xs.every((x) => x === cf));
      expect(r.requests.filter((q) => q.operation === 'read').map((q) => q.path)).to.deep.equal(['/1', '/2']);
      expect(r.requests.at(-1)).to.include({ operation: 'finish', code: '2.04' });

      const own = account(r.servers, 1);
      expect([own.uri, own.mode, own.lifetime, own.notificationStoring]).to.deep.equal([REG.coaps, 'psk', 600, false]);
      await expectStoredPsk(ep, own, `${ep}-1`);
      const ext = account(r.servers, 2);
      expect([ext.uri, ext.mode, Buffer.from(ext.pskIdentity!).toString(), Buffer.from(ext.pskKey!.reveal()).toString('hex')]).to.deep.equal([
        'coaps://dm.example.com:5684',
        'psk',
        'fleet-shared',
        '00112233445566778899aabbccddeeff',
      ]);
      const srv1 = own.serverNode!;
      expect(srv1.resources.get(17)).to.deep.include({ value: V.unsigned(3) });
      expect(srv1.resources.get(16)).to.deep.include({ value: V.boolean(true) });
      expect(r.acl.map((x) => [x.objectId, x.instanceId, [...x.rights], x.owner])).to.deep.equal([[3, 0, [[1, 7], [2, 1]], 1]]);

      // The new bootstrap account, and the device now has to prove it to us.
      const bs = r.bootstrapAccount!;
      expect([bs.uri, bs.mode, Buffer.from(bs.pskIdentity!).toString(), bs.clientHoldOffTime]).to.deep.equal(['coaps://127.0.0.1:5684', 'psk', `bs-${ep}`, 5]);
      const dev = await store.devices.get(ep);
      expect(dev?.auth).to.deep.include({ kind: 'psk' });
      expect((await store.devices.revealPskKey(ep))?.equals(Buffer.from(bs.pskKey!.reveal()))).to.equal(true);
      const s = await store.sessions.get(ended[0]!.sessionId);
      expect([s?.contentFormat, s?.lwm2mVersion, s?.outcome]).to.deep.equal([cf, '1.1', 'success']);
    });
  }

  it('hands off with a fresh P-256 key pair to a 1.2 device in LwM2M CBOR', async () => {
    const sim = await device('rpk-1', { lwm2mVersion: '1.2', pct: 11544 });
    const r = await sim.bootstrap(target());
    await server.idle(); // the device has its answer to Finish; let the server record the outcome
    expect(r.outcome, r.diagnostic).to.equal('success');
    expect(r.requests.filter((q) => q.operation === 'write').every((q) => q.contentFormat === 11544)).to.equal(true);
    const a = account(r.servers, 5);
    expect(a.mode).to.equal('rpk');
    expect(Buffer.from(a.serverPublicKey!).equals(Buffer.from(REG.publicKey))).to.equal(true);
    const [cred] = await store.credentials.listForDevice('rpk-1');
    expect(cred?.status).to.equal('active');
    expect(cred?.publicKey?.equals(Buffer.from(a.publicKey!))).to.equal(true);
    expect((await store.credentials.revealSecrets(cred!.id)).privateKey?.equals(Buffer.from(a.privateKey!.reveal()))).to.equal(true);
  });

  it('writes LwM2M JSON when a 1.0 profile forces it, with the 1.0 binding', async () => {
    const sim = await device('old-1', { lwm2mVersion: '1.0' });
    const r = await sim.bootstrap(target());
    await server.idle(); // the device has its answer to Finish; let the server record the outcome
    expect(r.outcome, r.diagnostic).to.equal('success');
    expect(r.requests.filter((q) => q.operation === 'write').map((q) => q.contentFormat)).to.deep.equal([11543, 11543]);
    expect(account(r.servers, 1).binding).to.equal('UQ');
  });

  it('serves a Bootstrap-Pack in SenML CBOR; the device installs it without Finish', async () => {
    const sim = await device('rpk-2', { lwm2mVersion: '1.2' });
    const r = await sim.bootstrapPack(target(), { accept: 112 });
    await server.idle(); // the device has its answer to Finish; let the server record the outcome
    expect(r.outcome, r.diagnostic).to.equal('success');
    expect(r.requests).to.have.length(0);
    const a = account(r.servers, 5);
    const [cred] = await store.credentials.listForDevice('rpk-2');
    expect(cred?.status).to.equal('pending'); // active once the device registers with it
    expect(cred?.publicKey?.equals(Buffer.from(a.publicKey!))).to.equal(true);
  });

  it('falls back from TLV and SenML CBOR to SenML JSON for a device that only takes SenML JSON', async () => {
    const sim = await device('urn:imei:350000000000002', { lwm2mVersion: '1.1', acceptFormats: [110] });
    const r = await sim.bootstrap(target());
    await server.idle(); // the device has its answer to Finish; let the server record the outcome
    expect(r.outcome, r.diagnostic).to.equal('success');
    const writes = r.requests.filter((q) => q.operation === 'write').map((q) => `${q.contentFormat} ${q.code}`);
    expect(writes).to.deep.equal(['11542 4.15', '112 4.15', '110 2.04', '110 2.04']);
    expect((await store.sessions.list({ endpoint: 'urn:imei:350000000000002' }))[0]?.contentFormat).to.equal(110);
  });

  it('records the 4.06 of a device left with a Server instance without Security', async () => {
    const sim = await device('sloppy-1', {
      lwm2mVersion: '1.1',
      seed: [N.object(1, [N.instance(4, [N.resource(0, V.integer(9)), N.resource(1, V.integer(60)), N.resource(6, V.boolean(false)), N.resource(7, V.string('U'))])])],
    });
    const r = await sim.bootstrap(target());
    await server.idle(); // the device has its answer to Finish; let the server record the outcome
    expect(r.outcome).to.equal('inconsistent');
    expect(ended[0]).to.include({ outcome: 'failure', cause: 'inconsistent_configuration' });
  });

  it('fails the session with timeout when the device stops answering, and keeps serving others', async () => {
    const mute = await device('urn:imei:350000000000003', { fault: (q) => (q.operation === 'write' ? { silent: true } : undefined) });
    const ok = await device('urn:imei:350000000000004');
    const [r1, r2] = await Promise.all([mute.bootstrap(target(), { timeoutMs: 3000 }), ok.bootstrap(target())]);
    await server.idle();
    expect(r2.outcome).to.equal('success');
    expect(r1.outcome).to.equal('timeout');
    const [s] = await store.sessions.list({ endpoint: 'urn:imei:350000000000003' });
    expect([s?.outcome, s?.failureCause]).to.deep.equal(['failure', 'timeout']);
  });

  it('bootstraps 200 devices at once', async function () {
    this.timeout(120_000);
    const n = 200;
    const devices = await Promise.all(Array.from({ length: n }, (_, i) => device(`fleet-${String(i).padStart(4, '0')}`, { lwm2mVersion: i % 2 ? '1.1' : '1.2', pct: i % 3 === 0 ? 112 : 110 })));
    const started = Date.now();
    const reports = await Promise.all(devices.map((d) => d.bootstrap(target())));
    const ms = Date.now() - started;
    expect(reports.filter((r) => r.outcome !== 'success').map((r) => `${r.endpoint}: ${r.outcome} ${r.diagnostic ?? ''}`)).to.deep.equal([]);
    await server.idle();
    expect(ended.filter((e) => e.outcome === 'success')).to.have.length(n);
    expect(await store.devices.count({ profile: 'fleet' })).to.equal(n);
    // Every device got its own key, and the store holds exactly that key.
    const keys = new Set(reports.map((r) => Buffer.from(account(r.servers, 1).pskKey!.reveal()).toString('hex')));
    expect(keys.size).to.equal(n);
    for (const r of reports.slice(0, 10)) await expectStoredPsk(r.endpoint, account(r.servers, 1), `${r.endpoint}-1`);
    console.log(`      200 concurrent bootstraps (Discover, 3 deletes, 5 writes, 2 reads, Finish) in ${ms} ms`);
  });
});
