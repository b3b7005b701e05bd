import { expect } from 'chai';
import fc from 'fast-check';
import type { Packet, ParsedPacket } from 'coap-packet';
import {
  CoapNode, CoapRequestError, isNewerNotification, NOTIFICATION_REORDER_WINDOW_MS,
  type CoapNodeDiagnostic, type CoapNotification, type ObservationEnd, type ObservationHandle,
} from '../../src/coap/coap-node.js';
import { isRequest, opt, RawDevice, sleep, type Received } from './raw-device.js';

/**
 * Client-side Observe (RFC 7641) of CoapNode against a raw-socket device that speaks CoAP through
 * coap-packet. Expected bytes come from registration.md §7.5 / RFC 7252, not from our encoder.
 */

const LOCAL = '127.0.0.1';
const SEQ_MOD = 2 ** 24;

/** Minimal big-endian uint, written independently of src/coap/message.ts. */
function uint(n: number): Buffer {
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v % 256);
  return Buffer.from(bytes);
}

/** Block option value: NUM << 4 | M << 3 | SZX. */
function block(num: number, more: boolean, szx: number): Buffer {
  return uint(num * 16 + (more ? 8 : 0) + szx);
}

/** Reference for RFC 7641 §3.4 (modular arithmetic instead of the RFC's case analysis). */
function refNewer(v1: number, t1: number, v2: number, t2: number): boolean {
  const d = (((v2 - v1) % SEQ_MOD) + SEQ_MOD) % SEQ_MOD;
  return (d >= 1 && d < 2 ** 23) || t2 - t1 > 128_000;
}

/** The sequence numbers the reference keeps (all within 128 s of each other). */
function refDelivered(initial: number | undefined, seqs: readonly number[]): number[] {
  let last = initial;
  const out: number[] = [];
  for (const v of seqs) {
    if (last === undefined || refNewer(last, 0, v, 0)) {
      out.push(v);
      last = v;
    }
  }
  return out;
}

describe('coap/CoapNode Observe (RFC 7641, client side)', function () {
  this.timeout(15000);
  const nodes: CoapNode[] = [];
  const devices: RawDevice[] = [];
  let diagnostics: CoapNodeDiagnostic[] = [];

  async function startNode(): Promise<CoapNode> {
    const node = await CoapNode.listen({
      host: LOCAL,
      port: 0,
      handler: (_req, res) => res.send('4.04'),
      transmission: { ackTimeoutMs: 200, maxRetransmit: 2 },
      onDiagnostic: (d) => diagnostics.push(d),
    });
    nodes.push(node);
    return node;
  }
  async function device(): Promise<RawDevice> {
    const d = await RawDevice.open();
    devices.push(d);
    return d;
  }

  afterEach(async () => {
    await Promise.all(nodes.splice(0).map((n) => n.close()));
    await Promise.all(devices.splice(0).map((d) => d.close()));
    diagnostics = [];
  });

  /** Waits until at least `n` received datagrams match. */
  async function waitCount(dev: RawDevice, pred: (rx: Received) => boolean, n: number, timeoutMs = 3000): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (dev.count(pred) < n) {
      if (Date.now() > until) throw new Error(`expected ${n} matching datagrams, got ${dev.count(pred)}`);
      await sleep(5);
    }
  }
  const isAck = (mid: number) => (rx: Received): boolean => rx.packet?.ack === true && rx.packet.code === '0.00' && rx.packet.messageId === mid;
  const isRst = (mid: number) => (rx: Received): boolean => rx.packet?.reset === true && rx.packet.messageId === mid;

  interface Notify {
    seq?: number;
    con?: boolean;
    mid: number;
    code?: string;
    payload?: string | Buffer;
    options?: Packet['options'];
  }
  function notification(token: Buffer, n: Notify): Packet {
    const options: NonNullable<Packet['options']> = [...(n.options ?? [])];
    if (n.seq !== undefined) options.push({ name: 'Observe', value: uint(n.seq) });
    return {
      confirmable: n.con === true,
      code: n.code ?? '2.05',
      messageId: n.mid,
      token,
      options,
      payload: typeof n.payload === 'string' ? Buffer.from(n.payload) : (n.payload ?? Buffer.alloc(0)),
    };
  }

  /** Sends a CON notification and waits for its ACK (the node processes it before the ACK arrives). */
  async function notifyCon(dev: RawDevice, port: number, token: Buffer, n: Omit<Notify, 'con'>): Promise<Received> {
    const before = dev.count(isAck(n.mid));
    dev.send(notification(token, { ...n, con: true }), port);
    await waitCount(dev, isAck(n.mid), before + 1);
    return dev.received.filter(isAck(n.mid))[before]!;
  }

  interface Observed {
    handle: ObservationHandle;
    token: Buffer;
    notes: CoapNotification[];
    request: Received;
  }

  /** observe() answered piggybacked with 2.05 + Observe `seq`. */
  async function observed(node: CoapNode, dev: RawDevice, seq = 1, path: string | (string | number)[] = '/3/0/9'): Promise<Observed> {
    const notes: CoapNotification[] = [];
    const p = node.observe(
      dev.address,
      { path: typeof path === 'string' ? path : (path as number[]), timeoutMs: 3000 },
      (n) => { notes.push(n); },
    );
    const request = await dev.waitFor((rx) => isRequest(rx, '0.01'));
    const q = request.packet!;
    dev.reply(request, {
      ack: true, code: '2.05', messageId: q.messageId, token: q.token,
      options: [{ name: 'Observe', value: uint(seq) }, { name: 'Content-Format', value: Buffer.of(0) }],
      payload: Buffer.from('v0'),
    });
    const r = await p;
    expect(r.observation).to.not.equal(undefined);
    return { handle: r.observation!, token: q.token, notes, request };
  }

  it('sends the Observe request exactly as registration.md §7.5 shows and starts an observation', async () => {
    const node = await startNode();
    const dev = await device();
    const notes: CoapNotification[] = [];
    const p = node.observe(dev.address, { path: [3, 0, 9], token: Buffer.of(0x01, 0x03), timeoutMs: 3000 }, (n) => { notes.push(n); });
    const rx = await dev.waitFor((r) => isRequest(r, '0.01'));
    // 42 01 <MID> 01 03 60 51 33 01 30 01 39: CON GET, TKL 2, token 0103, Observe (empty = 0),
    // Uri-Path "3", "0", "9". The MID is the node's; everything else is fixed.
    const expected = Buffer.from('42010102010360513301300139', 'hex');
    expect(rx.raw.length).to.equal(expected.length);
    expect(rx.raw.subarray(0, 2)).to.deep.equal(expected.subarray(0, 2));
    expect(rx.raw.subarray(4)).to.deep.equal(expected.subarray(4));
    const q = rx.packet!;
    dev.reply(rx, {
      ack: true, code: '2.05', messageId: q.messageId, token: q.token,
      options: [{ name: 'Observe', value: uint(1234) }, { name: 'Content-Format', value: Buffer.of(0) }],
      payload: Buffer.from('21.5'),
    });
    const r = await p;
    expect(r.response.code).to.equal('2.05');
    expect(r.response.payload.toString()).to.equal('21.5');
    expect(r.response.token).to.deep.equal(Buffer.of(0x01, 0x03));
    expect(r.sequence).to.equal(1234);
    const h = r.observation!;
    expect(h.token).to.deep.equal(Buffer.of(0x01, 0x03));
    expect(h.peer).to.deep.equal(dev.address);
    expect(h.closed).to.equal(false);
    expect(h.lastSequence).to.equal(1234);
    expect(notes).to.have.length(0); // the initial response is not a notification
    expect(node.stats().observations).to.equal(1);
    expect(node.stats().pending).to.equal(0);
  });

  it('delivers NON and CON notifications in order, ACKs CON ones, re-ACKs a retransmission once, drops older ones, ends on 4.04', async () => {
    const node = await startNode();
    const dev = await device();
    const port = node.address().port;
    const { handle, token, notes } = await observed(node, dev, 10);
    const ends: ObservationEnd[] = [];
    handle.onClose((r) => ends.push(r));

    dev.send(notification(token, { seq: 11, mid: 0x5001, payload: 'a' }), port); // NON
    const ack = await notifyCon(dev, port, token, { seq: 12, mid: 0x5002, payload: 'b' });
    // The ACK: exactly the 4-byte empty ACK with the notification's MID.
    expect(ack.raw).to.deep.equal(Buffer.of(0x60, 0x00, 0x50, 0x02));
    expect(notes.map((n) => [n.observe, n.payload.toString(), n.confirmable])).to.deep.equal([[11, 'a', false], [12, 'b', true]]);

    // Retransmission of the CON (same MID, same token): ACKed again, not delivered again.
    await notifyCon(dev, port, token, { seq: 12, mid: 0x5002, payload: 'b' });
    expect(dev.count(isAck(0x5002))).to.equal(2);
    expect(notes).to.have.length(2);

    // An older notification (new MID) arriving late: ACKed (it is a valid message) but dropped.
    await notifyCon(dev, port, token, { seq: 11, mid: 0x5003, payload: 'old' });
    dev.send(notification(token, { seq: 9, mid: 0x5004, payload: 'older' }), port); // NON, older than the initial 10
    await notifyCon(dev, port, token, { seq: 13, mid: 0x5005, payload: 'c' });
    expect(notes.map((n) => n.payload.toString())).to.deep.equal(['a', 'b', 'c']);
    expect(handle.lastSequence).to.equal(13);
    expect(diagnostics.filter((d) => d.kind === 'notification_dropped')).to.have.length(2);

    // 4.04 ends it: delivered (final), then closed.
    await notifyCon(dev, port, token, { code: '4.04', mid: 0x5006, payload: 'gone' });
    expect(notes).to.have.length(4);
    const last = notes[3]!;
    expect(last).to.include({ code: '4.04', final: true, observe: undefined });
    expect(handle.closed).to.equal(true);
    expect(handle.closeReason).to.equal('error_response');
    expect(await handle.done).to.equal('error_response');
    expect(ends).to.deep.equal(['error_response']);
    const s = node.stats();
    expect(s.notifications).to.equal(4);
    expect(s.droppedNotifications).to.equal(2);
    expect(s.observations).to.equal(0);

    // Closed: the next CON notification is refused with RST.
    dev.send(notification(token, { seq: 14, mid: 0x5007, con: true }), port);
    await dev.waitFor(isRst(0x5007));
    expect(notes).to.have.length(4);
  });

  it('ends the observation on a 2.05 notification without an Observe option (delivered first)', async () => {
    const node = await startNode();
    const dev = await device();
    const port = node.address().port;
    const { handle, token, notes } = await observed(node, dev, 1);
    dev.send(notification(token, { mid: 0x6001, payload: 'plain' }), port);
    expect(await handle.done).to.equal('not_observed');
    expect(notes).to.have.length(1);
    expect(notes[0]).to.include({ code: '2.05', final: true, observe: undefined });
    expect(notes[0]!.payload.toString()).to.equal('plain');
  });

  it('gives no handle when the initial response has no Observe option; later notifications get RST', async () => {
    const node = await startNode();
    const dev = await device();
    const port = node.address().port;
    let calls = 0;
    const p = node.observe(dev.address, { path: '/3/0/9', timeoutMs: 3000 }, () => { calls++; });
    const rx = await dev.waitFor((r) => isRequest(r, '0.01'));
    const q = rx.packet!;
    expect(opt(q, 'Observe')).to.deep.equal([Buffer.alloc(0)]);
    dev.reply(rx, { ack: true, code: '2.05', messageId: q.messageId, token: q.token, payload: Buffer.from('once') });
    const r = await p;
    expect(r.observation).to.equal(undefined);
    expect(r.sequence).to.equal(undefined);
    expect(r.response.payload.toString()).to.equal('once');
    dev.send(notification(q.token, { seq: 2, mid: 0x7001, con: true }), port);
    await dev.waitFor(isRst(0x7001));
    dev.send(notification(q.token, { seq: 3, mid: 0x7002 }), port); // NON with Observe: RST too
    await dev.waitFor(isRst(0x7002));
    expect(calls).to.equal(0);
    expect(node.stats().observations).to.equal(0);
  });

  it('gives no handle for a 4.04 answer that carries an Observe option', async () => {
    const node = await startNode();
    const dev = await device();
    const p = node.observe(dev.address, { path: '/9/9', timeoutMs: 3000 }, () => undefined);
    const rx = await dev.waitFor((r) => isRequest(r, '0.01'));
    dev.reply(rx, {
      ack: true, code: '4.04', messageId: rx.packet!.messageId, token: rx.packet!.token,
      options: [{ name: 'Observe', value: uint(5) }],
    });
    const r = await p;
    expect(r.response.code).to.equal('4.04');
    expect(r.observation).to.equal(undefined);
  });

  it('cancels actively: GET with Observe=1, same token and path; late notifications meanwhile get RST', async () => {
    const node = await startNode();
    const dev = await device();
    const port = node.address().port;
    const notes: CoapNotification[] = [];
    const p = node.observe(dev.address, { path: '/3/0/9', token: Buffer.of(0x01, 0x03), timeoutMs: 3000 }, (n) => { notes.push(n); });
    const first = await dev.waitFor((r) => isRequest(r, '0.01'));
    dev.reply(first, {
      ack: true, code: '2.05', messageId: first.packet!.messageId, token: first.packet!.token,
      options: [{ name: 'Observe', value: uint(7) }],
    });
    const h = (await p).observation!;

    const cancelled = h.cancel({ active: true, timeoutMs: 3000 });
    expect(h.closed).to.equal(true);
    const rx = await dev.waitFor((r) => isRequest(r, '0.01') && r !== first);
    // 42 01 <MID> 01 03 61 01 51 33 01 30 01 39: Observe = 1 (one byte), same token and path.
    const expected = Buffer.from('4201000001036101513301300139', 'hex');
    expect(rx.raw.length).to.equal(expected.length);
    expect(rx.raw.subarray(0, 2)).to.deep.equal(expected.subarray(0, 2));
    expect(rx.raw.subarray(4)).to.deep.equal(expected.subarray(4));
    // The device still sends a notification before it processes the cancel: refused, not the answer.
    dev.send(notification(Buffer.of(0x01, 0x03), { seq: 8, mid: 0x7101, con: true }), port);
    await dev.waitFor(isRst(0x7101));
    dev.reply(rx, { ack: true, code: '2.05', messageId: rx.packet!.messageId, token: rx.packet!.token, payload: Buffer.from('final') });
    const res = await cancelled;
    expect(res).to.not.equal(undefined);
    expect(res!.code).to.equal('2.05');
    expect(res!.payload.toString()).to.equal('final');
    expect(res!.token).to.deep.equal(Buffer.of(0x01, 0x03));
    expect(h.closeReason).to.equal('cancelled');
    expect(notes).to.have.length(0);
    // Cancelling again does nothing.
    expect(await h.cancel({ active: true })).to.equal(undefined);
    expect(dev.count((r) => isRequest(r, '0.01'))).to.equal(2);
  });

  it('active cancel rejects like request() when the device does not answer, and the observation stays closed', async () => {
    const node = await startNode();
    const dev = await device();
    const { handle } = await observed(node, dev, 1);
    const err = await handle.cancel({ active: true, timeoutMs: 300 }).then(() => undefined, (e: unknown) => e);
    expect(err).to.be.instanceOf(CoapRequestError);
    expect((err as CoapRequestError).reason).to.equal('timeout');
    expect(handle.closed).to.equal(true);
  });

  it('cancels passively: nothing is sent; the next CON and NON notifications get RST with their MIDs', async () => {
    const node = await startNode();
    const dev = await device();
    const port = node.address().port;
    const { handle, token, notes } = await observed(node, dev, 1);
    const before = dev.count();
    expect(await handle.cancel()).to.equal(undefined);
    expect(handle.closeReason).to.equal('cancelled');
    dev.send(notification(token, { seq: 2, mid: 0x7201, con: true }), port);
    const rst = await dev.waitFor(isRst(0x7201));
    expect(rst.raw).to.deep.equal(Buffer.of(0x70, 0x00, 0x72, 0x01));
    dev.send(notification(token, { seq: 3, mid: 0x7202 }), port);
    const rst2 = await dev.waitFor(isRst(0x7202));
    expect(rst2.raw).to.deep.equal(Buffer.of(0x70, 0x00, 0x72, 0x02));
    expect(dev.count()).to.equal(before + 2); // the two RSTs, nothing else
    expect(notes).to.have.length(0);
  });

  it('resumeObservation receives notifications on a token it never sent, and refuses tokens in use', async () => {
    const node = await startNode();
    const dev = await device();
    const port = node.address().port;
    const token = Buffer.from('cafe0001', 'hex');
    const notes: CoapNotification[] = [];
    const h = node.resumeObservation(dev.address, token, (n) => { notes.push(n); }, { lastSequence: 100 });
    expect(dev.count()).to.equal(0);
    expect(h.lastSequence).to.equal(100);
    await notifyCon(dev, port, token, { seq: 99, mid: 0x7301, payload: 'stale' });
    await notifyCon(dev, port, token, { seq: 101, mid: 0x7302, payload: 'fresh' });
    dev.send(notification(token, { seq: 102, mid: 0x7303, payload: 'non' }), port);
    await notifyCon(dev, port, token, { seq: 103, mid: 0x7304, payload: 'con' });
    expect(notes.map((n) => n.payload.toString())).to.deep.equal(['fresh', 'non', 'con']);
    expect(notes.every((n) => n.token.equals(token) && n.peer.port === dev.port)).to.equal(true);
    expect(dev.count((r) => r.packet?.reset === true)).to.equal(0);

    // The token is taken for this peer: by observations and by requests alike.
    expect(() => node.resumeObservation(dev.address, token, () => undefined)).to.throw(CoapRequestError).with.property('reason', 'token_in_use');
    const err = await node.request(dev.address, { method: 'GET', path: '/1', token, timeoutMs: 500 }).then(() => undefined, (e: unknown) => e);
    expect(err).to.be.instanceOf(CoapRequestError);
    expect((err as CoapRequestError).reason).to.equal('token_in_use');
    expect(() => node.resumeObservation(dev.address, Buffer.alloc(0), () => undefined)).to.throw(RangeError);
    expect(() => node.resumeObservation(dev.address, Buffer.alloc(9), () => undefined)).to.throw(RangeError);
    // Another peer may use the same token.
    const other = node.resumeObservation({ address: LOCAL, port: dev.port + 1 === port ? dev.port + 2 : dev.port + 1 }, token, () => undefined);
    expect(other.closed).to.equal(false);
    // Without the original request there is no active cancel.
    const e2 = await h.cancel({ active: true }).then(() => undefined, (e: unknown) => e);
    expect(e2).to.be.instanceOf(TypeError);
    expect(h.closed).to.equal(false);
    expect(dev.count((r) => isRequest(r))).to.equal(0);
  });

  it('request() sends the token it is given, returns it, and refuses tokens of 0 or 9 bytes', async () => {
    const node = await startNode();
    const dev = await device();
    dev.onPacket = (rx) => {
      const q = rx.packet;
      if (q && isRequest(rx)) dev.reply(rx, { ack: true, code: '2.05', messageId: q.messageId, token: q.token, payload: Buffer.from('x') });
    };
    const r = await node.request(dev.address, { method: 'GET', path: '/3/0', token: Buffer.of(0xab), timeoutMs: 2000 });
    expect(r.token).to.deep.equal(Buffer.of(0xab));
    expect(dev.received[0]!.raw[0]).to.equal(0x41); // CON, TKL 1
    expect(dev.received[0]!.raw[4]).to.equal(0xab);
    const auto = await node.request(dev.address, { method: 'GET', path: '/3/0', timeoutMs: 2000 });
    expect(auto.token.length).to.equal(8);
    expect(dev.received[1]!.packet!.token).to.deep.equal(auto.token);
    for (const token of [Buffer.alloc(0), Buffer.alloc(9)]) {
      const err = await node.request(dev.address, { method: 'GET', path: '/', token }).then(() => undefined, (e: unknown) => e);
      expect(err).to.be.instanceOf(RangeError);
    }
    expect(dev.count()).to.equal(2);
  });

  it('matches notifications per peer: another address is refused until movePeer', async () => {
    const node = await startNode();
    const dev = await device();
    const moved = await device();
    const port = node.address().port;
    const { handle, token, notes } = await observed(node, dev, 1);
    moved.send(notification(token, { seq: 2, mid: 0x7401, con: true }), port);
    await moved.waitFor(isRst(0x7401));
    expect(notes).to.have.length(0);
    handle.movePeer(moved.address);
    expect(handle.peer).to.deep.equal(moved.address);
    await notifyCon(moved, port, token, { seq: 3, mid: 0x7402, payload: 'moved' });
    expect(notes.map((n) => n.payload.toString())).to.deep.equal(['moved']);
    expect(notes[0]!.peer.port).to.equal(moved.port);
    dev.send(notification(token, { seq: 4, mid: 0x7403, con: true }), port);
    await dev.waitFor(isRst(0x7403));
    expect(notes).to.have.length(1);
  });

  it('node.close() closes every observation and later notifications reach nobody', async () => {
    const node = await startNode();
    const dev = await device();
    const a = await observed(node, dev, 1, '/3/0/9');
    dev.received.length = 0;
    const b = await observed(node, dev, 1, '/3/0/13');
    const resumed = node.resumeObservation(dev.address, Buffer.of(9, 9, 9), () => undefined);
    const ends: ObservationEnd[] = [];
    resumed.onClose((r) => ends.push(r));
    expect(node.stats().observations).to.equal(3);
    await node.close();
    expect(await a.handle.done).to.equal('node_closed');
    expect(await b.handle.done).to.equal('node_closed');
    expect(resumed.closeReason).to.equal('node_closed');
    expect(ends).to.deep.equal(['node_closed']);
    expect(node.stats().observations).to.equal(0);
    // onClose after the fact still reports (on a microtask).
    const late = await new Promise<ObservationEnd>((resolve) => a.handle.onClose(resolve));
    expect(late).to.equal('node_closed');
    expect(() => a.handle.movePeer(dev.address)).to.throw(Error);
    expect(() => node.resumeObservation(dev.address, Buffer.of(1), () => undefined)).to.throw(CoapRequestError);
  });

  it('survives garbage, bad Observe/Block2 values and a throwing listener', async () => {
    const node = await startNode();
    const dev = await device();
    const attacker = await device();
    const port = node.address().port;
    const notes: CoapNotification[] = [];
    let throwNext = true;
    const p = node.observe(dev.address, { path: '/3/0/9', timeoutMs: 3000 }, (n) => {
      notes.push(n);
      if (throwNext) {
        throwNext = false;
        throw new Error('listener bug');
      }
    });
    const rx = await dev.waitFor((r) => isRequest(r, '0.01'));
    const token = rx.packet!.token;
    dev.reply(rx, { ack: true, code: '2.05', messageId: rx.packet!.messageId, token, options: [{ name: 'Observe', value: uint(1) }] });
    const h = (await p).observation!;

    // Truncated option, 4-byte Observe, 4-byte Block2, token-only junk, random bytes with our token.
    const tkl = token.length;
    const head = (type: number, mid: number): number[] => [0x40 | (type << 4) | tkl, 0x45, mid >> 8, mid & 0xff, ...token];
    const crafted: Buffer[] = [
      Buffer.from([...head(0, 0x7501), 0x65, 1, 2]), // Observe claims 5 bytes, has 2 (malformed: RST)
      Buffer.from([...head(0, 0x7502), 0x64, 0, 0, 0, 9, 0xff, 0x41]), // Observe of 4 bytes: ACKed, dropped
      Buffer.from([...head(1, 0x7503), 0x61, 0x05, 0xff]), // payload marker without payload (malformed)
      Buffer.from([...head(1, 0x7504), 0x0f]), // reserved length nibble
    ];
    for (const b of crafted) dev.send(b, port);
    const junks = fc.sample(fc.uint8Array({ minLength: 0, maxLength: 60 }), { numRuns: 200, seed: 7 });
    for (let i = 0; i < junks.length; i++) {
      const junk = junks[i]!;
      attacker.send(Buffer.concat([Buffer.from(head(junk[0] === undefined ? 0 : junk[0] & 1, 0x7600)), junk]), port);
      attacker.send(junk, port);
      if (i % 20 === 19) await sleep(5); // do not overflow the node's socket buffer
    }
    // A 4-byte Block2 value is not a block option: delivered as is (with Observe 2).
    await notifyCon(dev, port, token, { seq: 2, mid: 0x7505, payload: 'blk', options: [{ name: 'Block2', value: Buffer.of(0, 0, 0, 0x0a) }] });
    await notifyCon(dev, port, token, { seq: 3, mid: 0x7506, payload: 'ok' });
    expect(notes.map((n) => n.payload.toString())).to.deep.equal(['blk', 'ok']);
    expect(notes[0]!.truncated).to.equal(false);
    expect(h.closed).to.equal(false);
    expect(diagnostics.some((d) => d.kind === 'handler_error' && String(d.error).includes('listener bug'))).to.equal(true);
    expect(diagnostics.some((d) => d.kind === 'notification_dropped' && /4 bytes/.test(d.reason))).to.equal(true);
    await dev.waitFor(isRst(0x7501));
    await dev.waitFor(isAck(0x7502));
    expect(node.stats().malformed).to.be.greaterThanOrEqual(3);
  });

  it('completes a block-wise notification with a plain GET for Block2 1.. (no Observe option) and delivers it whole', async () => {
    const node = await startNode();
    const dev = await device();
    const port = node.address().port;
    const { handle, token, notes } = await observed(node, dev, 1, '/3/0/9');
    const body = Buffer.alloc(150);
    for (let i = 0; i < body.length; i++) body[i] = (i * 7) & 0xff;
    const etag = Buffer.from('e1');
    const follow: ParsedPacket[] = [];
    dev.onPacket = (rx) => {
      const q = rx.packet;
      if (!q || !isRequest(rx, '0.01')) return;
      follow.push(q);
      const b = opt(q, 'Block2')[0]!;
      const num = b[0]! >> 4;
      const more = (num + 1) * 64 < body.length;
      dev.reply(rx, {
        ack: true, code: '2.05', messageId: q.messageId, token: q.token,
        options: [{ name: 'ETag', value: etag }, { name: 'Block2', value: block(num, more, 2) }],
        payload: body.subarray(num * 64, (num + 1) * 64),
      });
    };
    await notifyCon(dev, port, token, {
      seq: 5, mid: 0x7701, payload: body.subarray(0, 64),
      options: [{ name: 'ETag', value: etag }, { name: 'Block2', value: block(0, true, 2) }],
    });
    const until = Date.now() + 3000;
    while (notes.length === 0 && Date.now() < until) await sleep(5);
    expect(notes).to.have.length(1);
    expect(notes[0]!.payload).to.deep.equal(body);
    expect(notes[0]!).to.include({ truncated: false, observe: 5, final: false });
    expect(follow.map((q) => opt(q, 'Block2')[0]![0]! >> 4)).to.deep.equal([1, 2]);
    for (const q of follow) {
      expect(opt(q, 'Observe')).to.have.length(0);
      expect(q.token).to.not.deep.equal(token);
      expect(opt(q, 'Uri-Path').map((s) => s.toString())).to.deep.equal(['3', '0', '9']);
    }
    expect(handle.closed).to.equal(false);
  });

  it('delivers the first block with truncated: true when the rest cannot be fetched', async () => {
    const node = await startNode();
    const dev = await device();
    const port = node.address().port;
    const { token, notes } = await observed(node, dev, 1);
    dev.onPacket = (rx) => {
      const q = rx.packet;
      if (q && isRequest(rx, '0.01')) dev.reply(rx, { ack: true, code: '4.04', messageId: q.messageId, token: q.token });
    };
    await notifyCon(dev, port, token, { seq: 2, mid: 0x7801, payload: Buffer.alloc(16, 1), options: [{ name: 'Block2', value: block(0, true, 0) }] });
    const until = Date.now() + 3000;
    while (notes.length === 0 && Date.now() < until) await sleep(5);
    expect(notes).to.have.length(1);
    expect(notes[0]!.truncated).to.equal(true);
    expect(notes[0]!.payload).to.deep.equal(Buffer.alloc(16, 1));
  });

  it('observes a block-wise initial response: follow-ups carry no Observe, a notification meanwhile is held and delivered after', async () => {
    const node = await startNode();
    const dev = await device();
    const port = node.address().port;
    const body = Buffer.alloc(100, 0x5a);
    const notes: CoapNotification[] = [];
    const p = node.observe(dev.address, { path: '/5/0/0', timeoutMs: 3000 }, (n) => { notes.push(n); });
    const rx = await dev.waitFor((r) => isRequest(r, '0.01'));
    const token = rx.packet!.token;
    dev.onPacket = (r) => {
      const q = r.packet;
      if (!q || !isRequest(r, '0.01')) return;
      // Follow-up for block 1: first a notification arrives on the same token, then the block.
      dev.send(notification(token, { seq: 4, mid: 0x7901, payload: 'newer' }), port);
      setTimeout(() => dev.reply(r, {
        ack: true, code: '2.05', messageId: q.messageId, token: q.token,
        options: [{ name: 'Block2', value: block(1, false, 2) }], payload: body.subarray(64),
      }), 20);
    };
    dev.reply(rx, {
      ack: true, code: '2.05', messageId: rx.packet!.messageId, token,
      options: [{ name: 'Observe', value: uint(3) }, { name: 'Block2', value: block(0, true, 2) }], payload: body.subarray(0, 64),
    });
    const r = await p;
    expect(r.response.payload).to.deep.equal(body);
    expect(r.sequence).to.equal(3);
    const h = r.observation!;
    expect(h).to.not.equal(undefined);
    const followUp = dev.received.filter((x) => isRequest(x, '0.01'))[1]!.packet!;
    expect(opt(followUp, 'Observe')).to.have.length(0);
    expect(followUp.token).to.deep.equal(token);
    expect(opt(followUp, 'Block2')[0]![0]! >> 4).to.equal(1);
    expect(notes.map((n) => [n.observe, n.payload.toString()])).to.deep.equal([[4, 'newer']]);
    expect(h.lastSequence).to.equal(4);
  });

  it('property: isNewerNotification agrees with a modular-arithmetic reference (RFC 7641 §3.4)', () => {
    const seq = fc.oneof(
      fc.integer({ min: 0, max: SEQ_MOD - 1 }),
      fc.constantFrom(0, 1, 2 ** 23 - 1, 2 ** 23, 2 ** 23 + 1, SEQ_MOD - 1),
    );
    const time = fc.oneof(fc.integer({ min: 0, max: 400_000 }), fc.constantFrom(0, 128_000, 128_001));
    fc.assert(
      fc.property(seq, seq, time, time, (v1, v2, t1, t2) => {
        const got = isNewerNotification({ sequence: v1, receivedAt: t1 }, { sequence: v2, receivedAt: t2 });
        expect(got).to.equal(refNewer(v1, t1, v2, t2));
      }),
      { numRuns: 5000 },
    );
    expect(NOTIFICATION_REORDER_WINDOW_MS).to.equal(128_000);
    // Spot checks from the RFC's wording.
    expect(isNewerNotification({ sequence: SEQ_MOD - 1, receivedAt: 0 }, { sequence: 0, receivedAt: 0 })).to.equal(true);
    expect(isNewerNotification({ sequence: 5, receivedAt: 0 }, { sequence: 5, receivedAt: 0 })).to.equal(false);
    expect(isNewerNotification({ sequence: 5, receivedAt: 0 }, { sequence: 5, receivedAt: 128_001 })).to.equal(true);
  });

  it('property: over UDP the node delivers exactly the notifications the reference keeps', async () => {
    const node = await startNode();
    const dev = await device();
    const port = node.address().port;
    let run = 0;
    const seq = fc.oneof(
      fc.integer({ min: 0, max: SEQ_MOD - 1 }),
      fc.integer({ min: 2 ** 23 - 3, max: 2 ** 23 + 3 }),
      fc.integer({ min: 0, max: 20 }),
      fc.integer({ min: SEQ_MOD - 20, max: SEQ_MOD - 1 }),
    );
    await fc.assert(
      fc.asyncProperty(fc.option(seq, { nil: undefined }), fc.array(seq, { maxLength: 12 }), async (initial, seqs) => {
        run++;
        const token = Buffer.of(0xf0, run >> 8, run & 0xff);
        const got: number[] = [];
        const h = node.resumeObservation(dev.address, token, (n) => { got.push(n.observe!); }, initial === undefined ? {} : { lastSequence: initial });
        try {
          for (let i = 0; i < seqs.length; i++) {
            await notifyCon(dev, port, token, { seq: seqs[i]!, mid: ((run * 16 + i) & 0xffff) });
          }
          expect(got).to.deep.equal(refDelivered(initial, seqs));
        } finally {
          await h.cancel();
        }
      }),
      { numRuns: 25 },
    );
    expect(node.stats().observations).to.equal(0);
  });
});
