/**
 * The hand-off end to end over real UDP: the bootstrap server and the registration server on one
 * store; a scripted device bootstraps (nosec hand-off to the registration server's coap URI),
 * reads the URI, SSID, lifetime and binding it was given out of the writes, and registers with
 * them. Also: a device whose Finish answer was lost, and a re-bootstrap that rotates the
 * credential.
 */
import { expect } from 'chai';
import { BootstrapServer, type SessionEnd } from '../../src/bootstrap/server.js';
import { loadObjectRegistry } from '../../src/lwm2m/ddf.js';
import { codecFor } from '../../src/lwm2m/formats/index.js';
import type { ObjectRegistry } from '../../src/lwm2m/model.js';
import type { ObjectInstance } from '../../src/lwm2m/node.js';
import { parsePath } from '../../src/lwm2m/path.js';
import type { Value } from '../../src/lwm2m/value.js';
import { RegistrationServer } from '../../src/registration/server.js';
import type { SqliteStore } from '../../src/store/store.js';
import { memoryLogger } from '../../src/util/log.js';
import { FakeDevice, type ServerRequest } from '../bootstrap/fake-device.js';
import { open, removeDir, tempDir } from '../store/support.js';
import { IdentityEndpoint, locationPath, register, until } from './support.js';

const T = { ackTimeoutMs: 150, ackRandomFactor: 1, maxRetransmit: 1 };

const PROFILE = {
  name: 'meters',
  match: ['urn:imei:*'],
  delete: ['/0', '/1'],
  servers: [{ shortServerId: 7, handOff: true, lifetime: 90, binding: 'U', security: { mode: 'nosec' } }],
};
const PSK_PROFILE = {
  name: 'trackers',
  match: ['trk-*'],
  delete: ['/0', '/1'],
  servers: [{ shortServerId: 3, handOff: true, lifetime: 120, binding: 'U', security: { mode: 'psk' } }],
};

function value(inst: ObjectInstance, rid: number): Value['value'] {
  const r = inst.resources.get(rid);
  if (!r || r.kind !== 'resource') throw new Error(`resource ${rid} missing`);
  return r.value.value;
}

describe('hand-off: bootstrap, then register with what was provisioned', function () {
  this.timeout(20_000);
  let dir: string;
  let store: SqliteStore;
  let reg: RegistrationServer;
  let bs: BootstrapServer;
  let regPort: number;
  let securePort: number;
  let secure: IdentityEndpoint;
  let bsPort: number;
  let device: FakeDevice;
  let ended: SessionEnd[];
  let objects: ObjectRegistry;
  let log: ReturnType<typeof memoryLogger>;

  before(async () => {
    objects = await loadObjectRegistry([]);
  });
  beforeEach(async () => {
    dir = tempDir('lwbs-handoff-');
    store = await open(dir);
    for (const p of [PROFILE, PSK_PROFILE]) await store.profiles.put(p.name, JSON.stringify(p));
    log = memoryLogger();
    reg = new RegistrationServer({ store, log, serverUris: () => [`coap://127.0.0.1:${regPort}`, `coaps://127.0.0.1:${securePort}`] });
    regPort = (await reg.listen({ host: '127.0.0.1', port: 0, transmission: T })).address().port;
    // "DTLS" for the PSK hand-off: an endpoint that stamps the identity a test gives a source port.
    secure = await IdentityEndpoint.create();
    securePort = secure.address().port;
    reg.attach(secure, { transmission: T });
    ended = [];
    bs = new BootstrapServer({
      store,
      registration: { coap: `coap://127.0.0.1:${regPort}`, coaps: `coaps://127.0.0.1:${securePort}` },
      requestTimeoutMs: 1000,
      onSessionEnd: (e) => ended.push(e),
    });
    bsPort = (await bs.listen({ host: '127.0.0.1', port: 0, transmission: T })).address().port;
    device = await FakeDevice.open();
  });
  afterEach(async () => {
    await device.close();
    await bs.close();
    await reg.close();
    await store.close();
    removeDir(dir);
  });

  const decode = (r: ServerRequest): ObjectInstance => {
    const node = codecFor(r.contentFormat!).decode(parsePath(r.path), r.payload, objects);
    if (node.kind !== 'instance') throw new Error(`expected an instance write at ${r.path}`);
    return node;
  };

  /** Bootstraps the device and returns what it was given for its server account. */
  const bootstrap = async (ep: string, sessions: number): Promise<{ uri: string; ssid: number; lifetime: number; binding: string }> => {
    const from = device.requests.length;
    expect((await device.bootstrapRequest(bsPort, ep)).code).to.equal('2.04');
    await until(() => ended.length >= sessions, 'the bootstrap session to end');
    const writes = device.requests.slice(from).filter((r) => r.method === 'PUT');
    const security = writes.map(decode).find((i) => i.id !== undefined && value(i, 1) === false)!;
    const server = decode(writes.find((r) => r.path.startsWith('/1/'))!);
    expect(value(security, 10)).to.equal(value(server, 0));
    return { uri: value(security, 0) as string, ssid: Number(value(server, 0)), lifetime: Number(value(server, 1)), binding: value(server, 7) as string };
  };

  const registerWith = (given: { uri: string; lifetime: number; binding: string }, ep: string) => {
    const url = new URL(given.uri);
    expect(url.protocol).to.equal('coap:');
    return register(device, Number(url.port), [`ep=${ep}`, `lt=${given.lifetime}`, 'lwm2m=1.1', `b=${given.binding}`]);
  };

  it('a bootstrapped device registers with the provisioned URI; its credential is promoted', async () => {
    const given = await bootstrap('urn:imei:100', 1);
    expect(ended[0]!.outcome).to.equal('success');
    expect(given).to.deep.equal({ uri: `coap://127.0.0.1:${regPort}`, ssid: 7, lifetime: 90, binding: 'U' });
    const ans = await registerWith(given, 'urn:imei:100');
    expect(ans.code).to.equal('2.01');
    const id = locationPath(ans.packet)[1]!;
    const r = (await store.registry.get(id))!;
    expect(r.lifetime).to.equal(90);
    const [cred] = await store.credentials.listForDevice('urn:imei:100', { includeRetired: true });
    expect(cred).to.deep.include({ status: 'active', mode: 'nosec', shortServerId: 7, id: r.credentialId });
    expect((await store.registry.events('urn:imei:100'))[0]?.kind).to.equal('register');
    // Registering at the bootstrap server's port is not registering: nothing there for /rd.
    expect((await register(device, bsPort, ['ep=urn:imei:100', 'lt=90', 'lwm2m=1.1'])).code).to.equal('4.04');
  });

  it('a device whose Finish answer was lost still registers (PSK hand-off), and its pending credential becomes active', async () => {
    device.respond = (r) => (r.method === 'POST' && r.path === '/bs' ? 'silent' : r.method === 'DELETE' ? { code: '2.02' } : { code: '2.04' });
    expect((await device.bootstrapRequest(bsPort, 'trk-1')).code).to.equal('2.04');
    await until(() => ended.length >= 1, 'the bootstrap session to end');
    expect(ended[0]!.outcome).to.equal('failure');
    expect(device.requests.at(-1)).to.deep.include({ method: 'POST', path: '/bs' }); // Finish was sent, its answer lost
    expect((await store.credentials.listForDevice('trk-1')).map((c) => c.status)).to.deep.equal(['pending']);
    const sec = device.requests.filter((r) => r.method === 'PUT' && r.path.startsWith('/0/')).map(decode).find((i) => value(i, 1) === false)!;
    expect(value(sec, 0)).to.equal(`coaps://127.0.0.1:${securePort}`);
    // The device opens its DTLS session with the identity it was given, and registers (no ep: 1.1 allows it).
    secure.identities.set(device.port, { type: 'psk', identity: Buffer.from(value(sec, 3) as Uint8Array) });
    const ans = await register(device, securePort, ['lt=120', 'lwm2m=1.1']);
    expect(ans.code).to.equal('2.01');
    const r = (await store.registry.getByEndpoint('trk-1'))!;
    expect(r).to.deep.include({ security: 'psk', lifetime: 120 });
    expect(r.identity?.equals(Buffer.from(value(sec, 3) as Uint8Array))).to.equal(true);
    expect((await store.credentials.listForDevice('trk-1')).map((c) => [c.status, c.id === r.credentialId])).to.deep.equal([['active', true]]);
    // The registration server logged the Register, and never the key.
    const key = Buffer.from(value(sec, 5) as Uint8Array);
    expect(key).to.have.length(16);
    expect(log.lines.find((l) => l.msg === 'registered')).to.deep.include({ ep: '"trk-1"', security: 'psk', promoted: true });
    expect(log.text()).to.not.include(key.toString('hex'));
    expect(log.text()).to.not.include(key.toString('base64'));
  });

  it('a re-bootstrap hands out a new credential; the next Register promotes it and retires the old one', async () => {
    const first = await bootstrap('urn:imei:300', 1);
    expect((await registerWith(first, 'urn:imei:300')).code).to.equal('2.01');
    const [old] = await store.credentials.listForDevice('urn:imei:300');
    const second = await bootstrap('urn:imei:300', 2);
    expect(ended[1]!.outcome).to.equal('success');
    expect((await registerWith(second, 'urn:imei:300')).code).to.equal('2.01');
    const creds = await store.credentials.listForDevice('urn:imei:300', { includeRetired: true });
    expect(creds.map((c) => [c.id === old!.id ? 'old' : 'new', c.status])).to.deep.equal([
      ['new', 'active'],
      ['old', 'retired'],
    ]);
    expect((await store.registry.getByEndpoint('urn:imei:300'))?.credentialId).to.equal(creds[0]!.id);
  });

  it('an enrolled device that was never bootstrapped is refused', async () => {
    await store.devices.add({ endpoint: 'urn:imei:400', profile: 'meters' });
    const ans = await register(device, regPort, ['ep=urn:imei:400', 'lt=90', 'lwm2m=1.1']);
    expect(ans.code).to.equal('4.03');
    expect((await store.registry.events('urn:imei:400'))[0]?.detail).to.include('bootstrap it first');
  });
});
