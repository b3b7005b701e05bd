/**
 * DeviceManager over real UDP on 127.0.0.1: a real RegistrationServer on a real SQLite store, and
 * scripted devices on raw sockets (test/bootstrap/fake-device.ts, coap-packet — independent of
 * src/coap) that register, answer, notify and go to sleep. Checks what reaches the device (method,
 * path, format, payload bytes, query, Observe, token), one request at a time, queue mode, the 4.15
 * ladder, observations and their re-establishment after a Register, and a restart.
 */
import { expect } from 'chai';
import type { CoapNode } from '../../../src/coap/coap-node.js';
import { loadObjectRegistry } from '../../../src/lwm2m/ddf.js';
import type { ObjectRegistry } from '../../../src/lwm2m/model.js';
import { DeviceManager } from '../../../src/registration/management/manager.js';
import { DmError, type DmResult } from '../../../src/registration/management/types.js';
import { RegistrationServer } from '../../../src/registration/server.js';
import type { SqliteStore } from '../../../src/store/store.js';
import { FakeDevice, type Answer, type ServerRequest } from '../../bootstrap/fake-device.js';
import { sleep } from '../../coap/raw-device.js';
import { open, PROFILE_DOC, removeDir, tempDir } from '../../store/support.js';
import { locationPath, register, until } from '../support.js';

const URI = 'coap://lwbs.test:5783';
const T = { ackTimeoutMs: 100, ackRandomFactor: 1, maxRetransmit: 1 };
const OBJECTS = '</>;rt="oma.lwm2m";ct="60 110 112 11542",</1/0>,</3/0>,</4/0>,</5>';
/** TLV of /3/0: resource 0 "Acme" (C4 00 41 63 6D 65), resource 9 battery = 95 (C1 09 5F). */
const DEVICE_TLV = Buffer.from('c40041636d65c1095f', 'hex');

describe('device management (scripted devices over UDP)', function () {
  this.timeout(20_000);
  let objects: ObjectRegistry;
  let dir: string;
  let store: SqliteStore;
  let server: RegistrationServer;
  let node: CoapNode;
  let port: number;
  let dm: DeviceManager;
  const devices: FakeDevice[] = [];

  before(async () => {
    objects = await loadObjectRegistry();
  });

  const start = async (awakeMs = 5000): Promise<void> => {
    server = new RegistrationServer({ store, serverUris: [URI] });
    dm = new DeviceManager({ store, server, objects, awakeMs, requestTimeoutMs: 600 });
    node = await server.listen({ host: '127.0.0.1', port: 0, transmission: T });
    port = node.address().port;
    await dm.start();
  };
  const stop = async (): Promise<void> => {
    await dm.close();
    await server.close();
  };

  beforeEach(async () => {
    dir = tempDir('lwbs-dm-');
    store = await open(dir);
    await store.profiles.put('p', PROFILE_DOC);
    await start();
  });
  afterEach(async () => {
    await stop();
    for (const d of devices.splice(0)) await d.close();
    await store.close();
    removeDir(dir);
  });

  /** Enrolls `ep` for this server over plain CoAP and registers a scripted device as it. */
  const registered = async (ep = 'dev', query: string[] = [], payload = OBJECTS): Promise<{ device: FakeDevice; location: string[] }> => {
    if (!(await store.devices.get(ep))) {
      await store.devices.add({ endpoint: ep, profile: 'p' });
      const c = await store.credentials.addPending({ endpoint: ep, shortServerId: 1, serverUri: URI, mode: 'nosec' });
      await store.credentials.promote(c.id);
    }
    const device = await FakeDevice.open();
    devices.push(device);
    const res = await register(device, port, [`ep=${ep}`, 'lt=300', 'lwm2m=1.1', 'b=U', ...query], payload);
    expect(res.code).to.equal('2.01');
    return { device, location: locationPath(res.packet) };
  };
  const run = (request: Parameters<DeviceManager['run']>[1], ep = 'dev'): Promise<DmResult> => dm.run(Buffer.from(ep), request);
  const answering = (device: FakeDevice, f: (r: ServerRequest) => Answer | undefined): void => {
    const fallback = device.respond;
    device.respond = (r) => f(r) ?? fallback(r);
  };

  it('reads: GET at the path, values decoded and kept as the latest values', async () => {
    const { device } = await registered();
    answering(device, (r) => (r.method === 'GET' && r.path === '/3/0' ? { code: '2.05', contentFormat: 11542, payload: DEVICE_TLV } : undefined));
    const r = await run({ op: 'read', path: '/3/0' });
    expect(r).to.deep.include({ state: 'done', code: '2.05', success: true, contentFormat: 11542, endpoint: 'dev', path: '/3/0' });
    expect(r.values).to.deep.equal([
      { path: '/3/0/0', type: 'string', value: 'Acme' },
      { path: '/3/0/9', type: 'integer', value: 95 },
    ]);
    const seen = device.requests.find((q) => q.path === '/3/0')!;
    expect(seen).to.deep.include({ method: 'GET', accept: undefined, observe: undefined });
    const latest = await until(async () => {
      const v = await dm.latestValues(Buffer.from('dev'));
      return v.length === 2 ? v : undefined;
    }, 'latest values');
    expect(latest.map((v) => [v.path, v.source])).to.deep.equal([['/3/0/0', 'read'], ['/3/0/9', 'read']]);
  });

  it('writes a single value as text/plain to a 1.1 client; 4.15 moves to the next announced format', async () => {
    const { device } = await registered();
    const r = await run({ op: 'write', path: '/1/0/1', value: 300 });
    expect(r).to.deep.include({ state: 'done', code: '2.04', success: true });
    const put = device.requests.find((q) => q.method === 'PUT' && q.path === '/1/0/1')!;
    expect(put.contentFormat).to.equal(0);
    expect(put.payload.toString()).to.equal('300');

    answering(device, (q) => (q.method === 'PUT' && q.contentFormat === 0 ? { code: '4.15' } : undefined));
    const before = device.requests.length;
    const r2 = await run({ op: 'write', path: '/1/0/1', value: 600 });
    expect(r2).to.deep.include({ code: '2.04', success: true });
    const tried = device.requests.slice(before).map((q) => q.contentFormat);
    // ct="60 110 112 11542": after text, the announced formats that carry values, in order.
    expect(tried).to.deep.equal([0, 110]);
  });

  it('execute, delete, discover, create, write-attributes and the update trigger reach the device as the spec says', async () => {
    const { device } = await registered();
    answering(device, (q) => {
      if (q.method === 'GET' && q.accept === 40) return { code: '2.05', contentFormat: 40, payload: '</3/0>,</3/0/0>,</3/0/9>' };
      if (q.method === 'POST' && q.path === '/1') return { code: '2.01', location: ['1', '7'] };
      return undefined;
    });
    expect(await run({ op: 'execute', path: '/3/0/4', args: "0='1'" })).to.deep.include({ code: '2.04', success: true });
    expect(await run({ op: 'delete', path: '/1/1' })).to.deep.include({ code: '2.02' });
    const d = await run({ op: 'discover', path: '/3/0' });
    expect(d.links).to.equal('</3/0>,</3/0/0>,</3/0/9>');
    const c = await run({ op: 'create', path: '/1', values: { '/1/7/0': 7, '/1/7/1': 60, '/1/7/6': false, '/1/7/7': 'U' } });
    expect(c).to.deep.include({ code: '2.01', location: '/1/7' });
    expect(await run({ op: 'write-attributes', path: '/3/0/9', attributes: { pmin: 10, pmax: 60 } })).to.deep.include({ code: '2.04' });
    const t = await run({ op: 'trigger-update' });
    expect(t).to.deep.include({ code: '2.04', path: '/1/0/8' });

    const seen = device.requests.filter((q) => q.path !== '/rd').map((q) => ({ m: q.method, p: q.path, cf: q.contentFormat, accept: q.accept, q: q.query, body: q.payload.toString('latin1') }));
    expect(seen[0]).to.deep.equal({ m: 'POST', p: '/3/0/4', cf: 0, accept: undefined, q: [], body: "0='1'" });
    expect(seen[1]).to.deep.include({ m: 'DELETE', p: '/1/1', cf: undefined });
    expect(seen[2]).to.deep.include({ m: 'GET', p: '/3/0', accept: 40 });
    expect(seen[3]).to.deep.include({ m: 'POST', p: '/1', cf: 110 });
    expect(seen[4]).to.deep.equal({ m: 'PUT', p: '/3/0/9', cf: undefined, accept: undefined, q: ['pmin=10', 'pmax=60'], body: '' });
    expect(seen[5]).to.deep.include({ m: 'POST', p: '/1/0/8', cf: undefined, body: '' });
  });

  it('sends under the alternate root path the client registered with', async () => {
    const { device } = await registered('dev', [], '</lwm2m>;rt="oma.lwm2m",</lwm2m/1/0>,</lwm2m/3/0>');
    await run({ op: 'execute', path: '/3/0/4' });
    expect(device.requests.map((q) => q.path)).to.include('/lwm2m/3/0/4');
  });

  it("reports the device's error code and diagnostic, and a silent device as a timeout", async () => {
    const { device } = await registered();
    answering(device, (q) => (q.path === '/4/0' ? { code: '4.04', payload: 'no such instance' } : q.path === '/3/0/13' ? 'silent' : undefined));
    expect(await run({ op: 'read', path: '/4/0' })).to.deep.include({ state: 'done', code: '4.04', success: false, message: 'no such instance' });
    const r = await run({ op: 'read', path: '/3/0/13' });
    expect(r).to.deep.include({ state: 'failed', failure: 'timeout' });
  });

  it('sends one request at a time per device, in order', async () => {
    const { device } = await registered();
    answering(device, (q) => (q.path === '/3/0/13' ? 'silent' : undefined));
    const a = await dm.submit(Buffer.from('dev'), { op: 'read', path: '/3/0/13' });
    const b = await dm.submit(Buffer.from('dev'), { op: 'execute', path: '/3/0/4' });
    await sleep(150);
    // The first is unanswered: the second must not be on the wire yet.
    expect(device.requests.filter((q) => q.path === '/3/0/4')).to.have.length(0);
    expect(dm.ticket(b.id)!.state).to.equal('queued');
    const [ra, rb] = await Promise.all([a.done, b.done]);
    expect(ra.failure).to.equal('timeout');
    expect(rb.code).to.equal('2.04');
    expect(rb.sentAt!).to.be.at.least(ra.finishedAt!);
  });

  it('refuses bad requests and unregistered endpoints before queueing anything', async () => {
    await registered();
    const refusal = async (p: Promise<unknown>): Promise<DmError> => {
      try {
        await p;
      } catch (e) {
        expect(e).to.be.instanceOf(DmError);
        return e as DmError;
      }
      throw new Error('expected a DmError');
    };
    expect((await refusal(dm.submit(Buffer.from('nobody'), { op: 'read', path: '/3/0' }))).code).to.equal('not_registered');
    expect((await refusal(dm.submit(Buffer.from('dev'), { op: 'write', path: '/3/0/0', value: 'x' }))).message).to.match(/not writable/);
  });

  describe('queue mode', () => {
    beforeEach(async () => {
      await stop();
      await start(300);
    });

    it('holds requests while the client sleeps and sends them when it sends an Update', async () => {
      const { device, location } = await registered('q', ['Q']);
      await sleep(400); // awake window (300 ms) over
      expect(dm.isAwake(Buffer.from('q'))).to.equal(false);
      const t = await dm.submit(Buffer.from('q'), { op: 'execute', path: '/3/0/4' });
      await sleep(150);
      expect(dm.ticket(t.id)!.state).to.equal('queued');
      expect(device.requests.filter((q) => q.path === '/3/0/4')).to.have.length(0);
      const u = await device.request(port, { path: location, query: [] });
      expect(u.code).to.equal('2.04');
      const r = await t.done;
      expect(r).to.deep.include({ state: 'done', code: '2.04' });
      expect(r.sentAt!).to.be.greaterThan(r.submittedAt + 100);
    });

    it('fails what is queued when the client de-registers', async () => {
      const { device, location } = await registered('q', ['Q']);
      await sleep(400);
      const t = await dm.submit(Buffer.from('q'), { op: 'read', path: '/3/0' });
      expect((await device.request(port, { method: 'DELETE', path: location })).code).to.equal('2.02');
      expect(await t.done).to.deep.include({ state: 'failed', failure: 'deregistered' });
    });
  });

  describe('observations', () => {
    const observeAnswer = (device: FakeDevice, seq = 1): void =>
      answering(device, (q) => (q.method === 'GET' && q.observe === 0 ? { code: '2.05', contentFormat: 11542, payload: DEVICE_TLV, observe: seq } : q.observe === 1 ? { code: '2.05', contentFormat: 11542, payload: DEVICE_TLV } : undefined));

    it('observes, stores notifications as latest values, and cancels with the same token', async () => {
      const { device } = await registered();
      observeAnswer(device);
      const r = await run({ op: 'observe', path: '/3/0' });
      expect(r).to.deep.include({ state: 'done', code: '2.05', success: true });
      const obsReq = device.requests.find((q) => q.observe === 0)!;
      expect(obsReq).to.deep.include({ method: 'GET', path: '/3/0' });
      const [info] = await dm.observations(Buffer.from('dev'));
      expect(info).to.deep.include({ path: '/3/0', state: 'active' });

      // A notification: battery 94 (C1 09 5E).
      device.notify(port, obsReq.token, { observe: 2, contentFormat: 11542, payload: Buffer.from('c40041636d65c1095e', 'hex') });
      const v = await until(async () => (await dm.latestValues(Buffer.from('dev'), '/3/0/9')).find((x) => 'value' in x && x.value === 94), 'the notified value');
      expect(v.source).to.equal('notify');
      await until(async () => (await dm.observations(Buffer.from('dev')))[0]!.notifications === 1, 'the notification count');

      const c = await run({ op: 'cancel-observation', path: '/3/0' });
      expect(c).to.deep.include({ state: 'done', success: true });
      const cancel = device.requests.find((q) => q.observe === 1)!;
      expect(cancel.token).to.deep.equal(obsReq.token);
      expect(await dm.observations(Buffer.from('dev'))).to.deep.equal([]);
      // A late CON notification for the cancelled observation is rejected with RST and changes nothing.
      const mid = device.notify(port, obsReq.token, { observe: 3, contentFormat: 11542, payload: Buffer.from('c40041636d65c10901', 'hex'), confirmable: true });
      const rst = await device.raw.waitFor((rx) => rx.packet !== undefined && rx.packet.messageId === mid && (rx.packet.ack || rx.packet.reset));
      expect(rst.packet!.reset).to.equal(true);
      await sleep(50);
      expect((await dm.latestValues(Buffer.from('dev'), '/3/0/9')).map((x) => ('value' in x ? x.value : undefined))).to.deep.equal([94]);
    });

    it('re-establishes observations after the client registers again', async () => {
      const { device } = await registered();
      observeAnswer(device);
      await run({ op: 'observe', path: '/3/0' });
      expect(device.requests.filter((q) => q.observe === 0)).to.have.length(1);
      // The client reboots and registers again (a new Register, same socket).
      const res = await register(device, port, ['ep=dev', 'lt=300', 'lwm2m=1.1', 'b=U'], OBJECTS);
      expect(res.code).to.equal('2.01');
      await device.waitForRequest((q) => q.observe === 0 && q.index > device.requests.find((x) => x.observe === 0)!.index);
      await until(async () => (await dm.observations(Buffer.from('dev')))[0]!.state === 'active', 'the re-established observation');
    });

    it('an error notification ends the CoAP observation; the intent waits for the next Register', async () => {
      const { device } = await registered();
      observeAnswer(device);
      await run({ op: 'observe', path: '/3/0' });
      const token = device.requests.find((q) => q.observe === 0)!.token;
      device.notify(port, token, { observe: 2, code: '4.04', payload: '' });
      const [o] = await until(async () => {
        const list = await dm.observations(Buffer.from('dev'));
        return list[0]?.state === 'pending' ? list : undefined;
      }, 'the observation to become pending');
      expect(o!.registrationId).to.equal(null);
    });

    it('a refused observation is not kept', async () => {
      const { device } = await registered();
      answering(device, (q) => (q.observe === 0 ? { code: '4.04' } : undefined));
      expect(await run({ op: 'observe', path: '/4/0' })).to.deep.include({ code: '4.04', success: false });
      expect(await dm.observations(Buffer.from('dev'))).to.deep.equal([]);
    });

    it('listens for notifications again after a restart, without asking the client', async () => {
      const { device } = await registered();
      observeAnswer(device);
      await run({ op: 'observe', path: '/3/0' });
      const token = device.requests.find((q) => q.observe === 0)!.token;
      const oldPort = port;
      await stop();
      // Same store, new server and manager on the same port (as `lwbs serve` restarts).
      server = new RegistrationServer({ store, serverUris: [URI] });
      dm = new DeviceManager({ store, server, objects, requestTimeoutMs: 600 });
      node = await server.listen({ host: '127.0.0.1', port: oldPort, transmission: T });
      await dm.start();
      const requestsBefore = device.requests.length;
      const mid = device.notify(port, token, { observe: 5, contentFormat: 11542, payload: Buffer.from('c40041636d65c10932', 'hex'), confirmable: true });
      // A CON notification is ACKed (not RST) and stored.
      const ack = await device.raw.waitFor((rx) => rx.packet !== undefined && rx.packet.messageId === mid && (rx.packet.ack || rx.packet.reset));
      expect(ack.packet!.ack).to.equal(true);
      await until(async () => (await dm.latestValues(Buffer.from('dev'), '/3/0/9')).find((x) => 'value' in x && x.value === 50), 'the value notified after the restart');
      expect(device.requests.length).to.equal(requestsBefore);
    });
  });
});
