/**
 * The simulated device's registration (registration.md §2–§6, cited as §n) over real UDP:
 *  - against lwbs itself: the bootstrap server and the registration server on one SQLite store,
 *    a nosec profile handing the device off to the registration server; the registry row is
 *    checked against what the device holds, and a Bootstrap-Request Trigger sent by the
 *    registration server's own node leads to a second bootstrap session and a new Register;
 *  - against `RawServer` (support.ts) for the exact messages: the Register of the spec's
 *    example (§2.4), queue mode per version, Update contents, 4.04 and silence handling.
 */
import { expect } from 'chai';
import { BootstrapServer, type SessionEnd } from '../../src/bootstrap/server.js';
import { codeToString } from '../../src/coap/message.js';
import { codecFor } from '../../src/lwm2m/formats/index.js';
import { parseRegisterLinks } from '../../src/lwm2m/linkformat.js';
import { N } from '../../src/lwm2m/node.js';
import { V } from '../../src/lwm2m/value.js';
import { RegistrationServer } from '../../src/registration/server.js';
import { DEFAULT_ACCEPT_FORMATS, DEFAULT_RESOURCE_FORMATS, sharedRegistry } from '../../src/simulator/device-model.js';
import { DtlsNotSupportedError } from '../../src/simulator/registration.js';
import { DeviceSimulator, type SimulatorOptions } from '../../src/simulator/simulator.js';
import type { RegistrationReport } from '../../src/simulator/report.js';
import type { SqliteStore } from '../../src/store/store.js';
import { open, removeDir, tempDir } from '../store/support.js';
import { until } from '../registration/support.js';
import { FAST, nosecSecurity, pskSecurity, RawServer, serverInstance } from './support.js';

const PROFILE = {
  name: 'meters',
  match: ['urn:imei:*'],
  delete: ['/0', '/1'],
  servers: [{ shortServerId: 7, handOff: true, lifetime: 90, binding: 'U', security: { mode: 'nosec' } }],
};


describe('simulator: registration with lwbs (bootstrap, hand-off, Register, Update, De-register)', function () {
  this.timeout(30_000);
  let dir: string;
  let store: SqliteStore;
  let reg: RegistrationServer;
  let bs: BootstrapServer;
  let regPort: number;
  let bsPort: number;
  let ended: SessionEnd[];
  const sims: DeviceSimulator[] = [];

  beforeEach(async () => {
    dir = tempDir('lwbs-simreg-');
    store = await open(dir);
    await store.profiles.put(PROFILE.name, JSON.stringify(PROFILE));
    reg = new RegistrationServer({ store, serverUris: () => [`coap://127.0.0.1:${regPort}`] });
    regPort = (await reg.listen({ host: '127.0.0.1', port: 0, transmission: FAST })).address().port;
    ended = [];
    bs = new BootstrapServer({
      store,
      registration: { coap: `coap://127.0.0.1:${regPort}`, coaps: 'coaps://127.0.0.1:5784' },
      requestTimeoutMs: 2000,
      onSessionEnd: (e) => ended.push(e),
    });
    bsPort = (await bs.listen({ host: '127.0.0.1', port: 0, transmission: FAST })).address().port;
  });
  afterEach(async () => {
    await Promise.all(sims.splice(0).map((s) => s.close({ timeoutMs: 500 })));
    await bs.close();
    await reg.close();
    await store.close();
    removeDir(dir);
  });

  const device = async (endpoint: string, o: Partial<SimulatorOptions> = {}): Promise<DeviceSimulator> => {
    const s = await DeviceSimulator.start({ endpoint, transmission: FAST, ...o });
    sims.push(s);
    const r = await s.bootstrap({ address: '127.0.0.1', port: bsPort }, { timeoutMs: 5000 });
    expect(r.outcome, r.diagnostic).to.equal('success');
    await bs.idle();
    return s;
  };

  /** The objects a device announces, from what it holds (§2.2: without /0 and /21). */
  const announced = (sim: DeviceSimulator): { id: number; instances: number[] }[] =>
    [...sim.objects.values()].filter((o) => o.id !== 0 && o.id !== 21).map((o) => ({ id: o.id, instances: [...o.instances.keys()] }));

  it('registers with the URI, SSID, lifetime and binding it was given, from its bootstrap socket; the registry row matches', async () => {
    const sim = await device('urn:imei:1');
    const r = await sim.register({ timeoutMs: 2000 });
    expect(r).to.include({ operation: 'register', outcome: 'success', code: '2.01', trigger: 'call', server: `coap://127.0.0.1:${regPort}`, shortServerId: 7, lifetime: 90, binding: 'U', queueMode: false });
    const row = await store.registry.getByEndpoint('urn:imei:1');
    expect(row, 'registry row').to.not.equal(undefined);
    expect(r.location).to.equal(`/rd/${row!.id}`);
    expect([row!.lifetime, row!.lwm2mVersion, row!.binding, row!.queueMode, row!.security, row!.rootPath]).to.deep.equal([90, '1.1', 'U', false, 'nosec', '/']);
    expect(row!.objects.map((o) => ({ id: o.id, instances: [...o.instances] }))).to.deep.equal(announced(sim));
    const formats = [...new Set([...DEFAULT_ACCEPT_FORMATS['1.1'], ...DEFAULT_RESOURCE_FORMATS['1.1']])].filter((cf) => cf !== 0 && cf !== 42);
    expect(row!.contentFormats).to.deep.equal(formats);
    // §1: the server talks to the 5-tuple the Register came from, which is the device's only socket.
    expect([row!.address, row!.port]).to.deep.equal(['127.0.0.1', sim.address().port]);
    expect(sim.registration).to.include({ status: 'registered', location: r.location, shortServerId: 7 });
    // The hand-off promoted the credential the bootstrap created.
    const [cred] = await store.credentials.listForDevice('urn:imei:1');
    expect([cred?.status, cred?.id]).to.deep.equal(['active', row!.credentialId]);
  });

  it('a 1.0 device registers without the root link; a 1.2 device in queue mode with the Q flag', async () => {
    const old = await device('urn:imei:10', { lwm2mVersion: '1.0' });
    expect((await old.register({ timeoutMs: 2000 })).outcome).to.equal('success');
    const oldRow = (await store.registry.getByEndpoint('urn:imei:10'))!;
    expect([oldRow.lwm2mVersion, oldRow.contentFormats]).to.deep.equal(['1.0', null]);
    expect(oldRow.objects.map((o) => o.id)).to.deep.equal(announced(old).map((o) => o.id));

    const queued = await device('urn:imei:12', { lwm2mVersion: '1.2' });
    const r = await queued.register({ queueMode: true, lifetime: 600, timeoutMs: 2000 });
    expect(r.query).to.deep.equal(['ep=urn:imei:12', 'lt=600', 'lwm2m=1.2', 'b=U', 'Q']);
    const row = (await store.registry.getByEndpoint('urn:imei:12'))!;
    expect([row.lwm2mVersion, row.queueMode, row.binding, row.lifetime]).to.deep.equal(['1.2', true, 'U', 600]);
  });

  it('Updates on its timer (updatedAt moves), Registers again after a 4.04, and De-registers (the row goes)', async () => {
    const sim = await device('urn:imei:2');
    expect((await sim.register({ updateIntervalMs: 250, timeoutMs: 2000 })).outcome).to.equal('success');
    const first = (await store.registry.getByEndpoint('urn:imei:2'))!;
    const updated = await until(async () => {
      const row = await store.registry.getByEndpoint('urn:imei:2');
      return row && row.updatedAt > first.updatedAt ? row : undefined;
    }, 'a timer Update to reach the registry');
    expect(updated.id).to.equal(first.id);
    expect(sim.registrations.filter((x) => x.operation === 'update').every((x) => x.trigger === 'timer' && x.code === '2.04')).to.equal(true);

    // The registration vanishes at the server (as after an expiry): the next Update gets 4.04 → Register (§3).
    await store.registry.deregister(first.id);
    const again = await until(async () => {
      const row = await store.registry.getByEndpoint('urn:imei:2');
      return row && row.id !== first.id ? row : undefined;
    }, 'a new registration');
    // The row is committed before the 2.01 reaches the device: wait for the device's own record of it too.
    const reports = await until(() => {
      const r = sim.registrations;
      const i = r.findIndex((x) => x.operation === 'update' && x.code === '4.04');
      return i >= 0 && r[i + 1] !== undefined ? r : undefined;
    }, "the device's record of the new Register");
    const notFound = reports.findIndex((x) => x.operation === 'update' && x.code === '4.04');
    expect(reports[notFound + 1]).to.include({ operation: 'register', trigger: 'reregister', outcome: 'success', location: `/rd/${again.id}` });

    const d = await sim.deregister({ timeoutMs: 2000 });
    expect(d).to.include({ operation: 'deregister', outcome: 'success', code: '2.02' });
    expect(await store.registry.getByEndpoint('urn:imei:2')).to.equal(undefined);
    expect(sim.registration?.status).to.equal('unregistered');
    expect(await sim.deregister()).to.equal(undefined);
  });

  it('close() de-registers first', async () => {
    const sim = await device('urn:imei:3');
    expect((await sim.register({ timeoutMs: 2000 })).outcome).to.equal('success');
    expect(await store.registry.getByEndpoint('urn:imei:3')).to.not.equal(undefined);
    await sim.close();
    expect(await store.registry.getByEndpoint('urn:imei:3')).to.equal(undefined);
    expect(sim.registrations.at(-1)).to.include({ operation: 'deregister', trigger: 'close', code: '2.02' });
  });

  it('answers device management from lwbs’ registration server node (Read /3/0 in its format)', async () => {
    const sim = await device('urn:imei:4', { pct: 112 });
    expect((await sim.register({ timeoutMs: 2000 })).outcome).to.equal('success');
    const row = (await store.registry.getByEndpoint('urn:imei:4'))!;
    const node = reg.nodeFor(row)!;
    const read = await node.request({ address: row.address, port: row.port }, { method: 'GET', path: [3, 0], accept: 112, timeoutMs: 2000 });
    expect(read.code).to.equal('2.05');
    const inst = codecFor(112).decode([3, 0], read.payload, await sharedRegistry());
    expect(inst.kind === 'instance' && inst.resources.get(2)).to.deep.equal(N.resource(2, V.string('urn:imei:4')));
  });

  it('200 devices bootstrap and register at once; all rows are there, each from its own socket', async function () {
    const n = 200;
    const started = Date.now();
    const devices = await Promise.all(Array.from({ length: n }, (_, i) => device(`urn:imei:9${String(i).padStart(4, '0')}`)));
    const reports = await Promise.all(devices.map((d) => d.register({ timeoutMs: 5000 })));
    const ms = Date.now() - started;
    expect(reports.filter((r) => r.outcome !== 'success').map((r) => `${r.endpoint}: ${r.outcome} ${r.code ?? ''} ${r.diagnostic ?? ''}`)).to.deep.equal([]);
    const rows = await store.registry.list();
    expect(rows).to.have.length(n);
    expect(new Set(rows.map((r) => r.port))).to.deep.equal(new Set(devices.map((d) => d.address().port)));
    this.test!.title += ` (${ms} ms)`;
  });

  it('Bootstrap-Request Trigger (/1/x/9): 2.04, a second bootstrap session, then a new Register with the new account', async () => {
    const sim = await device('urn:imei:5');
    expect((await sim.register({ timeoutMs: 2000 })).outcome).to.equal('success');
    const row = (await store.registry.getByEndpoint('urn:imei:5'))!;
    const x = sim.registration!.serverInstance;
    const node = reg.nodeFor(row)!;
    const trigger = await node.request({ address: row.address, port: row.port }, { method: 'POST', path: [1, x, 9], timeoutMs: 2000 });
    expect(trigger.code).to.equal('2.04');
    await sim.settled();
    const sessions = await until(async () => {
      const list = await store.sessions.list({ endpoint: 'urn:imei:5' });
      return list.length >= 2 && list.every((x) => x.outcome !== 'running') ? list : undefined;
    }, 'the second bootstrap session, ended');
    expect(sessions.every((s) => s.outcome === 'success')).to.equal(true);
    const again = (await store.registry.getByEndpoint('urn:imei:5'))!;
    expect(again.id).to.not.equal(row.id);
    const tail = sim.registrations.slice(-2).map((r) => [r.operation, r.trigger, r.outcome]);
    expect(tail).to.deep.equal([['deregister', 'rebootstrap', 'success'], ['register', 'rebootstrap', 'success']]);
    expect(sim.executions.map((e) => e.path)).to.deep.equal([`/1/${x}/9`]);
  });
});

describe('simulator: registration messages (raw server)', function () {
  this.timeout(20_000);
  let srv: RawServer;
  const sims: DeviceSimulator[] = [];
  beforeEach(async () => {
    srv = await RawServer.start();
  });
  afterEach(async () => {
    await Promise.all(sims.splice(0).map((s) => s.close({ timeoutMs: 300 })));
    await srv.close();
  });

  const device = async (o: Partial<SimulatorOptions> & { lifetime?: number; binding?: string } = {}): Promise<DeviceSimulator> => {
    const { lifetime, binding, ...rest } = o;
    const s = await DeviceSimulator.start({
      endpoint: 'dev1',
      transmission: FAST,
      seed: [N.object(0, [nosecSecurity(1, 1, srv.uri)]), N.object(1, [serverInstance(0, 1, lifetime ?? 300, binding ?? 'U')])],
      ...rest,
    });
    sims.push(s);
    return s;
  };

  it('sends the spec’s example Register (§2.4) byte for byte after the token, and keeps the Location-Path', async () => {
    const sim = await device({ lwm2mVersion: '1.0', aclSupport: false });
    srv.location = ['rd', '5a3f'];
    const r = await sim.register({ timeoutMs: 2000 });
    expect([r.outcome, r.location]).to.deep.equal(['success', '/rd/5a3f']);
    // §2.4 with lwm2m=1.1 (31 2E 31) as a 1.0 device says 1.0 (31 2E 30):
    // B2 72 64 | 11 28 | 37 ep=dev1 | 06 lt=300 | 09 lwm2m=1.0 | 03 b=U | FF </1/0>,</3/0>
    const spec = Buffer.from('B27264 1128 376570 3D64657631 066C743D333030 096C776D326D3D312E30 03623D55 FF3C2F312F303E2C3C2F332F303E'.replace(/ /g, ''), 'hex');
    const sent = srv.received.find((x) => x.message.code === 2)!;
    const tkl = sent.bytes[0]! & 0x0f;
    expect(sent.bytes[0]! >> 4).to.equal(0x4); // version 1, CON
    expect(codeToString(sent.bytes[1]!)).to.equal('0.02');
    expect(sent.bytes.subarray(4 + tkl).toString('hex')).to.equal(spec.toString('hex'));
  });

  it('1.0 queue mode is b=UQ; a 1.1 device sends a Q flag and never a Q letter in b; ct on the root link', async () => {
    const old = await device({ lwm2mVersion: '1.0' });
    expect((await old.register({ queueMode: true, timeoutMs: 2000 })).query).to.deep.equal(['ep=dev1', 'lt=300', 'lwm2m=1.0', 'b=UQ']);
    const uq = await device({ binding: 'UQ' }); // a 1.0-style binding in /1/0/7 of a 1.1 device
    const r = await uq.register({ timeoutMs: 2000 });
    expect(r.query).to.deep.equal(['ep=dev1', 'lt=300', 'lwm2m=1.1', 'b=U', 'Q']);
    const links = parseRegisterLinks(srv.rd.at(-1)!.payload);
    expect(links.rootPath).to.equal('/');
    expect(links.contentFormats).to.deep.equal([11542, 112, 110, 60]);
    expect([...links.objects.keys()]).to.deep.equal([1, 2, 3]); // never 0 or 21 (§2.2)
    expect(links.objects.get(2)!.instances).to.deep.equal([]);
  });

  it('announces ver= for objects whose version differs from the enabler’s', async () => {
    const sim = await device({ objectVersions: { 3: '1.2' } });
    await sim.register({ timeoutMs: 2000 });
    const links = parseRegisterLinks(srv.rd.at(-1)!.payload);
    expect([links.objects.get(3)?.version, links.objects.get(1)?.version]).to.deep.equal(['1.2', undefined]);
  });

  it('Update: nothing when nothing changed, lt when it changed; 4.04 → Register', async () => {
    const sim = await device();
    expect((await sim.register({ autoUpdate: false, timeoutMs: 2000 })).outcome).to.equal('success');
    const plain = await sim.update();
    expect([plain.code, plain.query, plain.objects]).to.deep.equal(['2.04', [], undefined]);
    expect(srv.rd.at(-1)).to.deep.include({ method: 'POST', path: '/rd/sim1', query: [], payload: Buffer.alloc(0) });

    sim.setValue('/1/0/1', 120); // as if the server had written it
    const lt = await sim.update();
    expect(lt.query).to.deep.equal(['lt=120']);

    srv.updateCodes = ['4.04'];
    srv.location = ['rd', 'again'];
    const gone = await sim.update();
    expect([gone.outcome, gone.code]).to.deep.equal(['rejected', '4.04']);
    expect(sim.registration).to.include({ status: 'registered', location: '/rd/again' });
    expect(srv.rd.at(-1)).to.deep.include({ method: 'POST', path: '/rd' });
  });

  it('an Update nobody answers is followed by a Register, retried until the server is back', async () => {
    const sim = await device();
    expect((await sim.register({ updateIntervalMs: 200, timeoutMs: 400 })).outcome).to.equal('success');
    const port = srv.port;
    await srv.close();
    await until(() => sim.registrations.some((r) => r.operation === 'register' && r.trigger !== 'call' && r.outcome === 'timeout'), 'a failed re-Register');
    expect(sim.registration?.status).to.not.equal('registered');
    // The server comes back on the same port.
    srv = await RawServer.start(port);
    await until(() => sim.registration?.status === 'registered', 'the device to register again');
    const last = sim.registrations.filter((r) => r.operation === 'register').at(-1)!;
    expect([last.trigger, last.outcome]).to.deep.equal(['retry', 'success']);
  });

  it('a refused Register is reported with the server’s code and diagnostic', async () => {
    const sim = await device();
    srv.registerCode = '4.03';
    const r: RegistrationReport = await sim.register({ timeoutMs: 2000 });
    expect([r.outcome, r.code]).to.deep.equal(['rejected', '4.03']);
    expect(sim.registration?.status).to.equal('unregistered');
  });

  it('refuses to register without a usable account: none (bootstrap first), coaps:// with EST certificates (not supported), coaps:// PSK without a key', async () => {
    const bare = await DeviceSimulator.start({ endpoint: 'nothing', transmission: FAST });
    sims.push(bare);
    let e1: unknown;
    try {
      await bare.register();
    } catch (e) {
      e1 = e;
    }
    expect(String(e1)).to.match(/no LwM2M server account.*bootstrap first/);
    // Security mode 4 (certificate with EST): the simulator speaks DTLS with PSK, RPK and certificates only, and says so before any name lookup.
    const est = N.instance(1, [N.resource(0, V.string('coaps://dm3.example.com:5684')), N.resource(1, V.boolean(false)), N.resource(2, V.integer(4)), N.resource(10, V.integer(3))]);
    const secure = await DeviceSimulator.start({ endpoint: 'secure', transmission: FAST, seed: [N.object(0, [est]), N.object(1, [serverInstance(0, 3)])] });
    sims.push(secure);
    let e2: unknown;
    try {
      await secure.register();
    } catch (e) {
      e2 = e;
    }
    expect(e2).to.be.instanceOf(DtlsNotSupportedError);
    expect(String(e2)).to.match(/DTLS with security mode certificate with EST is not supported by the simulator \(PSK, RPK and certificates only\): the LwM2M server \(SSID 3\) is coaps:\/\/dm3\.example\.com:5684/);
    // PSK mode without a key: a plain Error naming what is missing.
    const keyless = await DeviceSimulator.start({ endpoint: 'keyless', transmission: FAST, seed: [N.object(0, [pskSecurity(1, 3, 'coaps://dm3.example.com:5684', 'id-3', new Uint8Array(0))]), N.object(1, [serverInstance(0, 3)])] });
    sims.push(keyless);
    let e3: unknown;
    try {
      await keyless.register();
    } catch (e) {
      e3 = e;
    }
    expect(e3).to.be.instanceOf(Error).and.not.instanceOf(DtlsNotSupportedError);
    expect(String(e3)).to.contain('no PSK key (/0/x/5)');
  });

  it('refuses bootstrap() while registered', async () => {
    const sim = await device();
    expect((await sim.register({ autoUpdate: false, timeoutMs: 2000 })).outcome).to.equal('success');
    let err: unknown;
    try {
      await sim.bootstrap(srv.uri);
    } catch (e) {
      err = e;
    }
    expect(String(err)).to.match(/deregister\(\) first/);
  });
});
