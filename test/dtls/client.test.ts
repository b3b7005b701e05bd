import { expect } from 'chai';
import type { AddressInfo } from 'node:net';
import { CoapNode, CoapRequestError } from '../../src/coap/coap-node.js';
import type { PeerInfo, SendCallback } from '../../src/coap/endpoint.js';
import { UdpEndpoint } from '../../src/coap/udp-endpoint.js';
import { DtlsClientEndpoint, DtlsHandshakeError, type DtlsClientDiagnostic, type DtlsClientOptions } from '../../src/dtls/client.js';
import { AlertDescription, ContentType, HandshakeType } from '../../src/dtls/constants.js';
import { DtlsEndpoint, type DatagramTransport } from '../../src/dtls/endpoint.js';
import type { DtlsDiagnostic } from '../../src/dtls/server.js';
import { TLS_PSK_WITH_AES_128_CBC_SHA256, TLS_PSK_WITH_AES_128_CCM_8 } from '../../src/dtls/suites.js';
import { answeringNode } from './coap-support.js';

const LOCAL = '127.0.0.1';
const KEY = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
const BINARY_ID = Buffer.from([0x00, 0xff, 0x10, 0x80]);
const FAST = { initialMs: 100, maxMs: 400 };

/** A transport that drops the outgoing datagrams `drop` picks (by position and content). */
class LossyTransport implements DatagramTransport {
  readonly type = 'udp4' as const;
  sent = 0;
  readonly dropped: Buffer[] = [];
  constructor(private readonly inner: UdpEndpoint, private readonly drop: (index: number, d: Buffer) => boolean) {}
  on(event: 'message', listener: (msg: Buffer, peer: PeerInfo) => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
  on(event: 'message' | 'error', listener: ((msg: Buffer, peer: PeerInfo) => void) | ((err: Error) => void)): unknown {
    return this.inner.on(event, listener as (msg: Buffer, peer: PeerInfo) => void);
  }
  send(msg: Uint8Array, port: number, address: string, callback?: SendCallback): void {
    const d = Buffer.from(msg);
    if (this.drop(this.sent++, d)) {
      this.dropped.push(d);
      if (callback) process.nextTick(callback, null);
      return;
    }
    this.inner.send(msg, port, address, callback);
  }
  address(): AddressInfo {
    return this.inner.address();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

/** The first record's content type and, for a handshake record, its first message type. */
function firstRecord(d: Buffer): { type: number; msgType?: number; epoch: number } {
  const type = d[0]!;
  const epoch = d.readUInt16BE(3);
  return type === ContentType.handshake && epoch === 0 ? { type, epoch, msgType: d[13]! } : { type, epoch };
}

describe('dtls/DtlsClientEndpoint (PSK client) against DtlsEndpoint', function () {
  this.timeout(15000);
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const f of cleanup.splice(0).reverse()) await f();
  });

  async function server(diags: DtlsDiagnostic[] = [], keys: [Buffer, Buffer][] = [[Buffer.from('dev-1'), KEY], [BINARY_ID, KEY]]): Promise<DtlsEndpoint> {
    const ep = await DtlsEndpoint.create({
      host: LOCAL,
      port: 0,
      pskLookup: async (id) => keys.find(([k]) => k.equals(id))?.[1],
      retransmit: FAST,
      onDiagnostic: (d) => diags.push(d),
    });
    cleanup.push(() => ep.close());
    return ep;
  }

  async function client(opts: Partial<DtlsClientOptions> = {}, diags: DtlsClientDiagnostic[] = []): Promise<DtlsClientEndpoint> {
    const ep = await DtlsClientEndpoint.create({
      host: LOCAL,
      psk: { identity: 'dev-1', key: KEY },
      retransmit: FAST,
      onDiagnostic: (d) => diags.push(d),
      ...opts,
    });
    cleanup.push(() => ep.close());
    return ep;
  }

  const node = (ep: DtlsEndpoint | DtlsClientEndpoint, handler: Parameters<typeof answeringNode>[1]): CoapNode => answeringNode(ep, handler, cleanup);

  it('CoapNode on both sides: the request reaches the server handler with the PSK identity, the answer comes back, and the server can request back', async () => {
    const sdiags: DtlsDiagnostic[] = [];
    const cdiags: DtlsClientDiagnostic[] = [];
    const sep = await server(sdiags);
    const seen: PeerInfo[] = [];
    const serverNode = node(sep, (req, peer) => {
      seen.push(peer);
      return ['2.04', `hello ${req.path} ${req.query.join('&')}`];
    });
    const cep = await client({ psk: { identity: BINARY_ID, key: KEY } }, cdiags);
    expect(cep.secure).to.equal(true);
    expect(cep.type).to.equal('udp4');
    const fromServer: PeerInfo[] = [];
    const clientNode = node(cep, (req, peer) => {
      fromServer.push(peer);
      return ['2.05', `device ${req.path}`];
    });
    const target = { address: LOCAL, port: sep.address().port };
    const res = await clientNode.request(target, { method: 'POST', path: '/bs', query: ['ep=dev-1'], timeoutMs: 5000 });
    expect(res.code).to.equal('2.04');
    expect(res.payload.toString()).to.equal('hello /bs ep=dev-1');
    expect(res.peer.port).to.equal(target.port);
    expect(seen).to.have.length(1);
    expect(seen[0]!.identity).to.deep.equal({ type: 'psk', identity: BINARY_ID });
    expect(seen[0]!.port).to.equal(cep.address().port);
    expect(cep.sessionState(LOCAL, target.port)).to.equal('established');
    expect(cep.sessionSuite(LOCAL, target.port)?.id).to.equal(TLS_PSK_WITH_AES_128_CCM_8.id);
    // The cookie exchange ran, and the extended master secret was agreed on both sides.
    expect(cdiags.map((d) => d.kind)).to.include.members(['handshake_started', 'hello_verify_request', 'established']);
    const est = cdiags.find((d) => d.kind === 'established');
    expect(est?.kind === 'established' && est.extendedMasterSecret).to.equal(true);
    const sest = sdiags.find((d) => d.kind === 'established');
    expect(sest?.kind === 'established' && sest.extendedMasterSecret).to.equal(true);

    // Server → device over the same session.
    const back = await serverNode.request(seen[0]!, { method: 'GET', path: [3, 0], timeoutMs: 5000 });
    expect(back.code).to.equal('2.05');
    expect(back.payload.toString()).to.equal('device /3/0');
    expect(fromServer).to.have.length(1);
    expect(fromServer[0]!.port).to.equal(target.port);
    expect(fromServer[0]!.identity).to.deep.equal({ type: 'psk', identity: BINARY_ID });
    // One handshake for all of it.
    expect(cdiags.filter((d) => d.kind === 'handshake_started')).to.have.length(1);
  });

  it('negotiates another PSK suite when asked (AES_128_CBC_SHA256)', async () => {
    const sep = await server();
    node(sep, () => ['2.05', 'ok']);
    const cep = await client({ cipherSuites: [TLS_PSK_WITH_AES_128_CBC_SHA256.id] });
    const clientNode = node(cep, () => ['4.04', '']);
    const res = await clientNode.request({ address: LOCAL, port: sep.address().port }, { method: 'GET', path: '/x', timeoutMs: 5000 });
    expect(res.payload.toString()).to.equal('ok');
    expect(cep.sessionSuite(LOCAL, sep.address().port)?.name).to.equal('TLS_PSK_WITH_AES_128_CBC_SHA256');
  });

  it('refuses non-PSK or unknown suites in its options', async () => {
    let err: unknown;
    try {
      await DtlsClientEndpoint.create({ host: LOCAL, psk: { identity: 'a', key: KEY }, cipherSuites: [0x1234] });
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(RangeError);
    expect(String(err)).to.contain('0x1234');
  });

  it('a wrong key fails cleanly: the server drops our Finished, the handshake times out, the send callback and the CoAP request get the error, no error event', async () => {
    const sdiags: DtlsDiagnostic[] = [];
    const sep = await server(sdiags);
    node(sep, () => ['2.05', 'never']);
    const cdiags: DtlsClientDiagnostic[] = [];
    const wrong = Buffer.from(KEY);
    wrong[0]! ^= 0x01;
    const cep = await client({ psk: { identity: 'dev-1', key: wrong }, handshakeTimeoutMs: 800 }, cdiags);
    const errors: Error[] = [];
    cep.on('error', (e) => errors.push(e));
    const target = { address: LOCAL, port: sep.address().port };
    const cbErr = await new Promise<Error | null>((resolve) => cep.send(Buffer.from([0x40, 0x01, 0x00, 0x01]), target.port, target.address, resolve));
    expect(cbErr).to.be.instanceOf(DtlsHandshakeError);
    expect(cbErr!.message).to.contain('wrong PSK key?');
    expect(cbErr!.message).to.not.contain(wrong.toString('hex'));
    expect(cep.sessionState(target.address, target.port)).to.equal(undefined);
    expect(sdiags.filter((d) => d.kind === 'established')).to.deep.equal([]);
    // Through a CoapNode: a send_failed CoapRequestError when the handshake gives up, before the request timeout.
    const clientNode = node(cep, () => ['4.04', '']);
    const reqErr = await clientNode.request(target, { method: 'GET', path: '/x', timeoutMs: 10000 }).then(() => undefined, (e: unknown) => e);
    expect(reqErr).to.be.instanceOf(CoapRequestError);
    expect((reqErr as CoapRequestError).reason).to.equal('send_failed');
    expect((reqErr as CoapRequestError).message).to.contain('wrong PSK key?');
    expect(errors).to.deep.equal([]);
    expect(cdiags.filter((d) => d.kind === 'handshake_failed')).to.have.length(2);
  });

  it('an unknown identity fails with unknown_psk_identity', async () => {
    const sep = await server();
    const cep = await client({ psk: { identity: 'nobody', key: KEY } });
    const err = await new Promise<Error | null>((resolve) => cep.send(Buffer.from('x'), sep.address().port, LOCAL, resolve));
    expect(err).to.be.instanceOf(DtlsHandshakeError);
    expect((err as DtlsHandshakeError).alert?.description).to.equal(AlertDescription.unknownPskIdentity);
  });

  it('a server that never answers: the handshake times out and queued sends get the error', async () => {
    const silent = await UdpEndpoint.create({ host: LOCAL, port: 0 });
    cleanup.push(() => silent.close());
    let heard = 0;
    silent.on('message', () => heard++);
    const cdiags: DtlsClientDiagnostic[] = [];
    const cep = await client({ handshakeTimeoutMs: 600 }, cdiags);
    const results = await Promise.all([1, 2].map((i) => new Promise<Error | null>((resolve) => cep.send(Buffer.from([i]), silent.address().port, LOCAL, resolve))));
    for (const r of results) {
      expect(r).to.be.instanceOf(DtlsHandshakeError);
      expect(r!.message).to.contain('timed out');
    }
    // The ClientHello was retransmitted on the timer meanwhile.
    expect(heard).to.be.greaterThan(1);
    expect(cdiags.filter((d) => d.kind === 'retransmit').length).to.equal(heard - 1);
  });

  it('a handshake failing after the CoAP request gave up does not crash the process (late send errors are contained)', async () => {
    const silent = await UdpEndpoint.create({ host: LOCAL, port: 0 });
    cleanup.push(() => silent.close());
    const cdiags: DtlsClientDiagnostic[] = [];
    const cep = await client({ handshakeTimeoutMs: 700 }, cdiags);
    const clientNode = node(cep, () => ['4.04', '']);
    const err = await clientNode.request({ address: LOCAL, port: silent.address().port }, { method: 'GET', path: '/x', timeoutMs: 200 }).then(() => undefined, (e: unknown) => e);
    expect((err as CoapRequestError).reason).to.equal('timeout');
    // The handshake gives up later; its error reaches node-coap's sender, which has no listener any more.
    const deadline = Date.now() + 3000;
    while (!cdiags.some((d) => d.kind === 'handshake_failed') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 50));
    expect(cdiags.filter((d) => d.kind === 'handshake_failed')).to.have.length(1);
  });

  it('retransmits its flights when datagrams are lost (ClientHello and flight 5 dropped once)', async () => {
    const sdiags: DtlsDiagnostic[] = [];
    const sep = await server(sdiags);
    node(sep, (req) => ['2.05', `got ${req.path}`]);
    const udp = await UdpEndpoint.create({ host: LOCAL, port: 0 });
    const seenKinds = new Set<string>();
    const lossy = new LossyTransport(udp, (_i, d) => {
      const r = firstRecord(d);
      const kind = r.msgType === HandshakeType.clientHello ? 'hello' : r.msgType === HandshakeType.clientKeyExchange ? 'cke' : 'other';
      if (kind === 'other' || seenKinds.has(kind)) return false;
      seenKinds.add(kind);
      return true; // the first ClientHello and the first flight 5 vanish
    });
    const cdiags: DtlsClientDiagnostic[] = [];
    const cep = new DtlsClientEndpoint(lossy, { psk: { identity: 'dev-1', key: KEY }, retransmit: FAST, onDiagnostic: (d) => cdiags.push(d) });
    cleanup.push(() => cep.close());
    const clientNode = node(cep, () => ['4.04', '']);
    const res = await clientNode.request({ address: LOCAL, port: sep.address().port }, { method: 'GET', path: '/lossy', timeoutMs: 8000 });
    expect(res.payload.toString()).to.equal('got /lossy');
    expect(lossy.dropped.map((d) => firstRecord(d).msgType)).to.deep.equal([HandshakeType.clientHello, HandshakeType.clientKeyExchange]);
    const flights = cdiags.flatMap((d) => (d.kind === 'retransmit' ? [d.flight] : []));
    expect(flights).to.include(1);
    expect(flights).to.include(5);
    expect(sdiags.filter((d) => d.kind === 'established')).to.have.length(1);
  });

  it('close() sends close_notify: the server ends the session', async () => {
    const sdiags: DtlsDiagnostic[] = [];
    const sep = await server(sdiags);
    node(sep, () => ['2.05', 'ok']);
    const cep = await DtlsClientEndpoint.create({ host: LOCAL, psk: { identity: 'dev-1', key: KEY }, retransmit: FAST });
    const clientNode = new CoapNode(cep, { handler: (_r, res) => res.send('4.04') });
    await clientNode.request({ address: LOCAL, port: sep.address().port }, { method: 'GET', path: '/a', timeoutMs: 5000 });
    await clientNode.close();
    const deadline = Date.now() + 3000;
    while (!sdiags.some((d) => d.kind === 'closed') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const closed = sdiags.find((d) => d.kind === 'closed');
    expect(closed?.kind === 'closed' && closed.reason).to.equal('close_notify');
  });

  it('a close_notify from the server ends the session; the next send starts a new handshake', async () => {
    const sep = await server();
    node(sep, () => ['2.05', 'ok']);
    const cdiags: DtlsClientDiagnostic[] = [];
    const cep = await client({}, cdiags);
    const clientNode = node(cep, () => ['4.04', '']);
    const target = { address: LOCAL, port: sep.address().port };
    await clientNode.request(target, { method: 'GET', path: '/a', timeoutMs: 5000 });
    // The server's DtlsServer ends every session with close_notify (as on shutdown) but keeps serving.
    sep.server.close();
    const deadline = Date.now() + 3000;
    while (cep.sessionState(target.address, target.port) !== undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(cep.sessionState(target.address, target.port)).to.equal(undefined);
    expect(cdiags.some((d) => d.kind === 'closed' && d.reason === 'close_notify')).to.equal(true);
    cep.send(Buffer.from([0x50, 0x00, 0x00, 0x01]), target.port, target.address);
    expect(cep.sessionState(target.address, target.port)).to.equal('handshaking');
    expect(cdiags.filter((d) => d.kind === 'handshake_started')).to.have.length(2);
  });
});
