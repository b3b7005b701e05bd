/**
 * The bootstrap server over real UDP on 127.0.0.1, against a scripted device on a raw socket
 * (fake-device.ts): request handling, refusals, the order of requests, formats, 4.15 fallback,
 * 4.06, timeouts, cancellation, deadlines, Bootstrap-Pack. End-to-end runs with the full device
 * simulator are in test/e2e/.
 */
import { expect } from 'chai';
import { BootstrapServer, type SessionEnd } from '../../src/bootstrap/server.js';
import type { CoapNode } from '../../src/coap/coap-node.js';
import { loadObjectRegistry } from '../../src/lwm2m/ddf.js';
import { codecFor, compositeCodecFor } from '../../src/lwm2m/formats/index.js';
import type { ObjectRegistry } from '../../src/lwm2m/model.js';
import type { ObjectInstance } from '../../src/lwm2m/node.js';
import { parsePath } from '../../src/lwm2m/path.js';
import type { Value } from '../../src/lwm2m/value.js';
import type { SqliteStore } from '../../src/store/store.js';
import { memoryLogger } from '../../src/util/log.js';
import { sleep } from '../coap/raw-device.js';
import { open, removeDir, tempDir } from '../store/support.js';
import { toHex } from '../support/arbitraries.js';
import { PSK_SECURITY_0_1_TLV, PSK_SERVER_1_0_TLV } from '../support/fixtures.js';
import { FakeDevice, type ServerRequest } from './fake-device.js';

const REG = { coap: 'coap://127.0.0.1:5783', coaps: 'coaps://127.0.0.1:5784' };

const METERS = {
  name: 'meters',
  match: ['urn:imei:35*'],
  delete: ['/0', '/1'],
  contentFormat: 'auto',
  discoverBootstrapAccount: false,
  servers: [
    { shortServerId: 1, handOff: true, lifetime: 300, binding: 'U', defaultMinPeriod: 1, defaultMaxPeriod: 60, notificationStoring: true, security: { mode: 'nosec' } },
  ],
};
const TRACKERS = {
  name: 'trackers',
  match: ['trk-*'],
  delete: ['/0', '/1'],
  servers: [{ shortServerId: 7, handOff: true, lifetime: 600, binding: 'U', security: { mode: 'psk' } }],
};
/** The digest's worked Bootstrap-Write (formats.md 3.5(d)/(e)) as a profile: a 1.0 client, a static PSK server. */
const SPEC_EXAMPLE = {
  name: 'spec-example',
  match: ['urn:imei:490154203237518'],
  lwm2mVersions: ['1.0'],
  servers: [
    {
      shortServerId: 101,
      uri: 'coaps://lwm2m.example.com:5684',
      lifetime: 86400,
      binding: 'U',
      notificationStoring: true,
      security: { mode: 'psk', identity: 'urn:imei:490154203237518', key: '000102030405060708090a0b0c0d0e0f' },
    },
  ],
};
const DISCOVERING = {
  name: 'discovering',
  match: ['disc-*'],
  delete: ['/0', '/1'],
  discoverBootstrapAccount: true,
  servers: [{ shortServerId: 3, handOff: true, lifetime: 300, binding: 'U', security: { mode: 'nosec' } }],
};

function value(inst: ObjectInstance, rid: number): Value['value'] {
  const r = inst.resources.get(rid);
  if (!r || r.kind !== 'resource') throw new Error(`resource ${rid} missing`);
  return r.value.value;
}

describe('bootstrap server (scripted device over UDP)', function () {
  this.timeout(20_000);
  let dir: string;
  let store: SqliteStore;
  let server: BootstrapServer;
  let node: CoapNode;
  let port: number;
  let device: FakeDevice;
  let registry: ObjectRegistry;
  let ended: SessionEnd[];
  let log: ReturnType<typeof memoryLogger>;

  const start = async (o: { requestTimeoutMs?: number; sessionTimeoutMs?: number } = {}): Promise<void> => {
    ended = [];
    log = memoryLogger();
    server = new BootstrapServer({ store, registration: REG, log, requestTimeoutMs: o.requestTimeoutMs ?? 1500, sessionTimeoutMs: o.sessionTimeoutMs ?? 10_000, onSessionEnd: (e) => ended.push(e) });
    node = await server.listen({ host: '127.0.0.1', port: 0, transmission: { ackTimeoutMs: 150, ackRandomFactor: 1, maxRetransmit: 1 } });
    port = node.address().port;
  };
  const waitEnded = async (n = 1, timeoutMs = 8000): Promise<SessionEnd[]> => {
    const until = Date.now() + timeoutMs;
    while (ended.length < n) {
      if (Date.now() > until) throw new Error(`only ${ended.length} of ${n} sessions ended`);
      await sleep(5);
    }
    return ended;
  };
  const decodeWrite = (r: ServerRequest): ObjectInstance => {
    const node = codecFor(r.contentFormat!).decode(parsePath(r.path), r.payload, registry);
    if (node.kind !== 'instance') throw new Error(`expected an instance write at ${r.path}`);
    return node;
  };

  before(async () => {
    registry = await loadObjectRegistry([]);
  });
  beforeEach(async () => {
    dir = tempDir('lwbs-bs-');
    store = await open(dir);
    for (const p of [METERS, TRACKERS, DISCOVERING, SPEC_EXAMPLE]) await store.profiles.put(p.name, JSON.stringify(p));
    await start();
    device = await FakeDevice.open();
  });
  afterEach(async () => {
    await device.close();
    await server.close();
    await store.close();
    removeDir(dir);
  });

  it('provisions a zero-touch device with the issue\'s example profile, 2.04 first, one request at a time', async () => {
    const ans = await device.bootstrapRequest(port, 'urn:imei:351234');
    expect(ans.code).to.equal('2.04');
    const [end] = await waitEnded();
    expect(end!.outcome).to.equal('success');
    expect(device.requests.map((r) => `${r.method} ${r.path}`)).to.deep.equal(['DELETE /0', 'DELETE /1', 'PUT /0/1', 'PUT /1/0', 'POST /bs']);
    // bootstrap.md §2 step 5: the answer to /bs reached the device before the first request.
    expect(ans.index).to.be.lessThan(device.requests[0]!.index);
    // No format asked for: TLV, OMA's fallback.
    expect(device.requests.filter((r) => r.method === 'PUT').map((r) => r.contentFormat)).to.deep.equal([11542, 11542]);
    const sec = decodeWrite(device.requests[2]!);
    expect(value(sec, 0)).to.equal(REG.coap);
    expect(value(sec, 1)).to.equal(false);
    expect(value(sec, 2)).to.equal(3);
    expect(value(sec, 10)).to.equal(1);
    const srv = decodeWrite(device.requests[3]!);
    expect([value(srv, 0), value(srv, 1), value(srv, 2), value(srv, 3), value(srv, 6), value(srv, 7)]).to.deep.equal([1, 300, 1, 60, true, 'U']);

    const dev = await store.devices.get('urn:imei:351234');
    expect(dev?.profile).to.equal('meters');
    expect(dev?.enrolledBy).to.equal('zero-touch');
    // The registration server will admit it over plain CoAP: a nosec credential, active after Finish.
    const creds = await store.credentials.listForDevice('urn:imei:351234');
    expect(creds.map((c) => [c.mode, c.status, c.shortServerId, c.serverUri])).to.deep.equal([['nosec', 'active', 1, REG.coap]]);
    const s = await store.sessions.get(end!.sessionId);
    expect(s?.outcome).to.equal('success');
    expect(s?.requests.map((r) => `${r.method} ${r.path} ${r.responseCode}`)).to.deep.equal(['DELETE /0 2.02', 'DELETE /1 2.02', 'WRITE /0/1 2.04', 'WRITE /1/0 2.04', 'FINISH /bs 2.04']);
    expect(s?.contentFormat).to.equal(11542);
  });

  it("puts the digest's worked Bootstrap-Write on the wire byte for byte", async () => {
    await device.bootstrapRequest(port, 'urn:imei:490154203237518');
    const [end] = await waitEnded();
    expect(end!.outcome).to.equal('success');
    const put = (path: string): string => toHex(device.requests.find((r) => r.method === 'PUT' && r.path === path)!.payload);
    expect(put('/0/1')).to.equal(toHex(PSK_SECURITY_0_1_TLV));
    expect(put('/1/0')).to.equal(toHex(PSK_SERVER_1_0_TLV));
  });

  it('writes in the pct format, and generates, stores and activates a per-device PSK', async () => {
    const ans = await device.bootstrapRequest(port, 'trk-0001', ['pct=112']);
    expect(ans.code).to.equal('2.04');
    const [end] = await waitEnded();
    expect(end!.outcome).to.equal('success');
    const sec = device.requests.find((r) => r.method === 'PUT' && r.path === '/0/1')!;
    expect(sec.contentFormat).to.equal(112);
    const inst = decodeWrite(sec);
    expect(value(inst, 0)).to.equal(REG.coaps);
    expect(value(inst, 2)).to.equal(0);
    expect(Buffer.from(value(inst, 3) as Uint8Array).toString()).to.equal('trk-0001');
    const key = Buffer.from(value(inst, 5) as Uint8Array);
    expect(key).to.have.length(16);

    const [cred] = await store.credentials.listForDevice('trk-0001');
    expect(cred?.status).to.equal('active');
    expect(cred?.shortServerId).to.equal(7);
    expect(cred?.serverUri).to.equal(REG.coaps);
    expect(cred?.pskIdentity?.toString()).to.equal('trk-0001');
    expect((await store.credentials.revealSecrets(cred!.id)).pskKey?.equals(key)).to.equal(true);
    // The key never reaches the log.
    expect(log.text()).not.to.include(key.toString('hex'));
    expect(log.text()).not.to.include(key.toString('base64'));
  });

  it('retries a write refused with 4.15 in the next format, and keeps that format', async () => {
    device.respond = (r) => (r.method === 'PUT' && r.contentFormat === 11542 ? { code: '4.15' } : r.method === 'DELETE' ? { code: '2.02' } : { code: '2.04' });
    await device.bootstrapRequest(port, 'urn:imei:352');
    const [end] = await waitEnded();
    expect(end!.outcome).to.equal('success');
    const puts = device.requests.filter((r) => r.method === 'PUT').map((r) => `${r.path} ${r.contentFormat}`);
    expect(puts).to.deep.equal(['/0/1 11542', '/0/1 112', '/1/0 112']);
    expect((await store.sessions.get(end!.sessionId))?.contentFormat).to.equal(112);
  });

  it('records 4.06 on Finish as an inconsistent configuration; the credentials stay pending', async () => {
    device.respond = (r) => (r.method === 'POST' ? { code: '4.06', payload: 'no server' } : r.method === 'DELETE' ? { code: '2.02' } : { code: '2.04' });
    await device.bootstrapRequest(port, 'trk-0002');
    const [end] = await waitEnded();
    expect(end!.outcome).to.equal('failure');
    expect(end!.cause).to.equal('inconsistent_configuration');
    const s = await store.sessions.get(end!.sessionId);
    expect(s?.failureCause).to.equal('inconsistent_configuration');
    expect(s?.failureDetail).to.include('no server');
    expect((await store.credentials.listForDevice('trk-0002')).map((c) => c.status)).to.deep.equal(['pending']);
  });

  it('keeps the nosec hand-off credential pending when the Finish answer is lost, so the device can still register', async () => {
    device.respond = (r) => (r.method === 'POST' ? 'silent' : r.method === 'DELETE' ? { code: '2.02' } : { code: '2.04' });
    await device.bootstrapRequest(port, 'urn:imei:359');
    const [end] = await waitEnded();
    expect(end!.cause).to.equal('timeout');
    expect((await store.credentials.listForDevice('urn:imei:359')).map((c) => [c.mode, c.status])).to.deep.equal([['nosec', 'pending']]);
  });

  it('stops without Finish when a write is refused', async () => {
    device.respond = (r) => (r.method === 'PUT' && r.path === '/1/0' ? { code: '4.00' } : r.method === 'DELETE' ? { code: '2.02' } : { code: '2.04' });
    await device.bootstrapRequest(port, 'urn:imei:353');
    const [end] = await waitEnded();
    expect(end!.cause).to.equal('write_refused');
    expect(end!.detail).to.include('/1/0');
    expect(device.requests.some((r) => r.method === 'POST')).to.equal(false);
  });

  it('carries on after a Delete the device refuses', async () => {
    device.respond = (r) => (r.method === 'DELETE' ? { code: '4.04' } : { code: '2.04' });
    await device.bootstrapRequest(port, 'urn:imei:354');
    const [end] = await waitEnded();
    expect(end!.outcome).to.equal('success');
  });

  it('fails with timeout when the device goes silent, and retires credentials it never got', async () => {
    device.respond = (r) => (r.method === 'DELETE' && r.path === '/1' ? 'silent' : r.method === 'DELETE' ? { code: '2.02' } : { code: '2.04' });
    await device.bootstrapRequest(port, 'trk-0003');
    const [end] = await waitEnded();
    expect(end!.outcome).to.equal('failure');
    expect(end!.cause).to.equal('timeout');
    expect((await store.credentials.listForDevice('trk-0003', { includeRetired: true })).map((c) => c.status)).to.deep.equal(['retired']);
    const s = await store.sessions.get(end!.sessionId);
    expect(s?.requests.at(-1)?.error).to.equal('timeout');
  });

  it('cancels the running session when the device asks again, then serves the new one', async () => {
    let silent = true;
    device.respond = (r) => (silent && r.method === 'DELETE' && r.path === '/1' ? 'silent' : r.method === 'DELETE' ? { code: '2.02' } : { code: '2.04' });
    await device.bootstrapRequest(port, 'trk-0004');
    await device.waitForRequest((r) => r.path === '/1');
    silent = false;
    const again = await device.bootstrapRequest(port, 'trk-0004');
    expect(again.code).to.equal('2.04');
    const [first, second] = await waitEnded(2);
    expect(first!.outcome).to.equal('cancelled');
    expect(first!.cause).to.equal('superseded');
    expect(second!.outcome).to.equal('success');
    const creds = await store.credentials.listForDevice('trk-0004', { includeRetired: true });
    expect(creds.map((c) => `${c.sessionId === first!.sessionId ? 'first' : 'second'} ${c.status}`).sort()).to.deep.equal(['first retired', 'second active']);
    // Never two requests in flight: every request after the restart came after its predecessor was answered.
    const after = device.requests.filter((r) => r.index > again.index);
    expect(after.map((r) => `${r.method} ${r.path}`)).to.deep.equal(['DELETE /0', 'DELETE /1', 'PUT /0/1', 'PUT /1/0', 'POST /bs']);
  });

  it('ends a session that overruns its deadline', async () => {
    await server.close();
    await start({ sessionTimeoutMs: 300, requestTimeoutMs: 5000 });
    device.respond = (r) => (r.method === 'DELETE' && r.path === '/1' ? 'silent' : r.method === 'DELETE' ? { code: '2.02' } : { code: '2.04' });
    await device.bootstrapRequest(port, 'urn:imei:355');
    const [end] = await waitEnded();
    expect(end!.cause).to.equal('deadline');
  });

  it('discovers the bootstrap account and writes around it', async () => {
    device.respond = (r) =>
      r.method === 'GET'
        ? { code: '2.05', contentFormat: 40, payload: '</>;lwm2m=1.1,</0/1>,</0/4>;ssid=9;uri="coap://old",</1/0>;ssid=9,</3/0>' }
        : r.method === 'DELETE'
          ? { code: '2.02' }
          : { code: '2.04' };
    await device.bootstrapRequest(port, 'disc-1');
    const [end] = await waitEnded();
    expect(end!.outcome).to.equal('success');
    expect(device.requests[0]).to.include({ method: 'GET', path: '/', accept: 40 });
    const secWrite = device.requests.find((r) => r.method === 'PUT' && r.path.startsWith('/0/'))!;
    expect(secWrite.path).not.to.equal('/0/1'); // the bootstrap account lives there
    expect(device.requests.some((r) => r.method === 'DELETE' && r.path === '/0/1')).to.equal(false);
    expect((await store.sessions.get(end!.sessionId))?.lwm2mVersion).to.equal('1.1');
  });

  it('answers a Bootstrap-Pack-Request with the whole configuration in the Accept format', async () => {
    const ans = await device.request(port, { method: 'GET', path: ['bspack'], query: ['ep=trk-0005'], accept: 110 });
    expect(ans.code).to.equal('2.05');
    expect(ans.contentFormat).to.equal(110);
    const records = compositeCodecFor(110).decodeRecords(ans.payload, registry);
    const byPath = new Map(records.map((r) => [r.path.join('/'), r.value.value]));
    expect(byPath.get('0/1/0')).to.equal(REG.coaps);
    expect(byPath.get('0/1/10')).to.equal(7);
    expect(byPath.get('1/0/0')).to.equal(7);
    expect(byPath.get('1/0/1')).to.equal(600);
    const [cred] = await store.credentials.listForDevice('trk-0005');
    expect(cred?.status).to.equal('pending');
    expect(Buffer.from(byPath.get('0/1/5') as Uint8Array).equals((await store.credentials.revealSecrets(cred!.id)).pskKey!)).to.equal(true);
    const [s] = await store.sessions.list({ endpoint: 'trk-0005' });
    expect(s?.outcome).to.equal('success');
    expect(device.requests).to.have.length(0);

    const bad = await device.request(port, { method: 'GET', path: ['bspack'], query: ['ep=trk-0006'], accept: 11542 });
    expect(bad.code).to.equal('4.06');
  });

  describe('refusals', () => {
    it('answers 4.00 to an unknown endpoint and records why', async () => {
      const ans = await device.bootstrapRequest(port, 'stranger');
      expect(ans.code).to.equal('4.00');
      expect(ans.payload.toString()).to.match(/not authorized/);
      const [s] = await store.sessions.list({ endpoint: 'stranger' });
      expect(s?.outcome).to.equal('failure');
      expect(s?.failureCause).to.equal('unknown_endpoint');
      expect(await store.devices.get('stranger')).to.equal(undefined);
      expect(device.requests).to.have.length(0);
    });

    it('refuses a PSK-enrolled device arriving over plain CoAP, with the same answer as a stranger', async () => {
      await store.devices.add({ endpoint: 'dev-psk', profile: 'trackers', auth: { kind: 'psk', identity: 'dev-psk', key: new Uint8Array(16).fill(7) } });
      const ans = await device.bootstrapRequest(port, 'dev-psk');
      expect(ans.code).to.equal('4.00');
      expect(ans.payload.toString()).to.match(/not authorized/);
      const [s] = await store.sessions.list({ endpoint: 'dev-psk' });
      expect(s?.failureCause).to.equal('unauthorized');
    });

    it('answers NON requests, bad queries, wrong methods and paths', async () => {
      expect((await device.request(port, { query: ['ep=urn:imei:356'], confirmable: false })).code).to.equal('4.00');
      expect((await device.request(port, { query: [] })).code).to.equal('4.00');
      expect((await device.request(port, { query: ['ep=urn:imei:356', 'ep=x'] })).code).to.equal('4.00');
      expect((await device.request(port, { query: ['ep=urn:imei:356', 'pct=abc'] })).code).to.equal('4.00');
      const pct60 = await device.request(port, { query: ['ep=urn:imei:356', 'pct=60'] });
      expect(pct60.code).to.equal('4.15');
      expect(pct60.payload.toString()).to.include('pct 60');
      expect((await device.request(port, { method: 'GET', query: ['ep=urn:imei:356'] })).code).to.equal('4.05');
      expect((await device.request(port, { path: ['rd'], query: ['ep=urn:imei:356'] })).code).to.equal('4.04');
      expect(device.requests).to.have.length(0);
      // Still serving after all that, and after garbage.
      device.raw.send(Buffer.from([0xff, 0x00, 0x13]), port);
      expect((await device.bootstrapRequest(port, 'urn:imei:356')).code).to.equal('2.04');
      expect((await waitEnded())[0]!.outcome).to.equal('success');
    });

    it('answers a retransmitted /bs from the cache, without a second session', async () => {
      const a = await device.request(port, { query: ['ep=urn:imei:357'], messageId: 4242 });
      const b = await device.request(port, { query: ['ep=urn:imei:357'], messageId: 4242 });
      expect([a.code, b.code]).to.deep.equal(['2.04', '2.04']);
      await waitEnded();
      await sleep(100);
      expect(ended).to.have.length(1);
      expect(ended[0]!.outcome).to.equal('success');
    });

    it('is not confused by a device that answers every request twice', async () => {
      device.duplicateAnswers = true;
      await device.bootstrapRequest(port, 'urn:imei:358');
      const [end] = await waitEnded();
      expect(end!.outcome).to.equal('success');
      expect(device.requests.map((r) => r.method)).to.deep.equal(['DELETE', 'DELETE', 'PUT', 'PUT', 'POST']);
      expect((await store.sessions.get(end!.sessionId))?.requestCount).to.equal(5);
    });

    it('takes the endpoint as bytes: a binary name is refused, recorded and shown as hex', async () => {
      const ans = await device.bootstrapRequest(port, Buffer.from([0x01, 0xff, 0x80]));
      expect(ans.code).to.equal('4.00');
      const [s] = await store.sessions.list({ endpoint: Buffer.from([0x01, 0xff, 0x80]) });
      expect(s?.failureCause).to.equal('unknown_endpoint');
      expect(log.text()).to.include('0x01ff80');
    });
  });
});
