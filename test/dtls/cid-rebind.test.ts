/**
 * RFC 9146 Connection IDs over real UDP: DtlsClientEndpoint (connectionIdLength) against
 * DtlsEndpoint. The client rebinds to a new port (a NAT rebinding) and the server follows the
 * session without a new handshake; forged, replayed, out-of-date and unknown-CID records from
 * other addresses do not move it.
 */
import { expect } from 'chai';
import { createSocket, type Socket } from 'node:dgram';
import type { AddressInfo } from 'node:net';
import type { PeerInfo, SendCallback } from '../../src/coap/endpoint.js';
import { UdpEndpoint } from '../../src/coap/udp-endpoint.js';
import { DtlsClientEndpoint, type DtlsClientDiagnostic, type DtlsClientOptions } from '../../src/dtls/client.js';
import { ContentType } from '../../src/dtls/constants.js';
import { DtlsEndpoint, DtlsNoSessionError, type DatagramTransport } from '../../src/dtls/endpoint.js';
import type { DtlsDiagnostic, DtlsServerOptions } from '../../src/dtls/server.js';
import { TLS_PSK_WITH_AES_128_CBC_SHA256 } from '../../src/dtls/suites.js';
import { eventually } from './harness.js';

const LOCAL = '127.0.0.1';
const KEY = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
const FAST = { initialMs: 100, maxMs: 400 };

/** Keeps a copy of every datagram sent; `hold()` keeps the next one back instead of sending it. */
class RecordingTransport implements DatagramTransport {
  readonly type = 'udp4' as const;
  readonly sent: Buffer[] = [];
  readonly held: Buffer[] = [];
  private holdNext = false;
  constructor(private readonly inner: UdpEndpoint) {}
  on(event: 'message', listener: (msg: Buffer, peer: PeerInfo) => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
  on(event: 'message' | 'error', listener: ((msg: Buffer, peer: PeerInfo) => void) | ((err: Error) => void)): unknown {
    return this.inner.on(event, listener as (msg: Buffer, peer: PeerInfo) => void);
  }
  hold(): void {
    this.holdNext = true;
  }
  send(msg: Uint8Array, port: number, address: string, callback?: SendCallback): void {
    const d = Buffer.from(msg);
    if (this.holdNext) {
      this.holdNext = false;
      this.held.push(d);
      if (callback) process.nextTick(callback, null);
      return;
    }
    this.sent.push(d);
    this.inner.send(msg, port, address, callback);
  }
  address(): AddressInfo {
    return this.inner.address();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

interface Got {
  readonly text: string;
  readonly peer: PeerInfo;
}

describe('dtls/Connection ID (RFC 9146): NAT rebinding over UDP', function () {
  this.timeout(15000);
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const f of cleanup.splice(0).reverse()) await f();
  });

  /** A DTLS server that answers every datagram with "echo:" + it, and records what it got. */
  async function echoServer(opts: Partial<DtlsServerOptions> = {}): Promise<{ ep: DtlsEndpoint; got: Got[]; diags: DtlsDiagnostic[] }> {
    const got: Got[] = [];
    const diags: DtlsDiagnostic[] = [];
    const ep = await DtlsEndpoint.create({
      host: LOCAL, port: 0, retransmit: FAST,
      pskLookup: async (id) => (id.toString() === 'dev-1' ? KEY : undefined),
      onDiagnostic: (d) => diags.push(d),
      ...opts,
    });
    ep.on('message', (m, peer) => {
      got.push({ text: m.toString(), peer });
      ep.send(Buffer.concat([Buffer.from('echo:'), m]), peer.port, peer.address);
    });
    cleanup.push(() => ep.close());
    return { ep, got, diags };
  }

  async function cidClient(opts: Partial<DtlsClientOptions> = {}): Promise<{ ep: DtlsClientEndpoint; rec: RecordingTransport; replies: string[]; diags: DtlsClientDiagnostic[] }> {
    const rec = new RecordingTransport(await UdpEndpoint.create({ host: LOCAL }));
    const diags: DtlsClientDiagnostic[] = [];
    const ep = new DtlsClientEndpoint(rec, { psk: { identity: 'dev-1', key: KEY }, retransmit: FAST, connectionIdLength: 4, onDiagnostic: (d) => diags.push(d), ...opts });
    const replies: string[] = [];
    ep.on('message', (m) => replies.push(m.toString()));
    cleanup.push(() => ep.close());
    return { ep, rec, replies, diags };
  }

  async function rawSocket(): Promise<Socket> {
    const s = createSocket('udp4');
    await new Promise<void>((resolve) => s.bind(0, LOCAL, resolve));
    cleanup.push(() => new Promise<void>((resolve) => s.close(() => resolve())));
    return s;
  }

  /** Sends `d` from `s` and waits until the server has read that many more datagrams. */
  async function inject(server: DtlsEndpoint, s: Socket, datagrams: Buffer[]): Promise<void> {
    const before = server.stats().datagrams;
    for (const d of datagrams) s.send(d, server.address().port, LOCAL);
    await eventually(() => server.stats().datagrams >= before + datagrams.length);
  }

  async function exchange(c: { ep: DtlsClientEndpoint; replies: string[] }, port: number, text: string): Promise<void> {
    const n = c.replies.length;
    c.ep.send(Buffer.from(text), port, LOCAL);
    await eventually(() => c.replies.length > n);
    expect(c.replies[n]).to.equal(`echo:${text}`);
  }

  it('the client changes port: data from the new port reaches the app with the new address, answers go there, no new handshake', async () => {
    const s = await echoServer();
    const c = await cidClient();
    const sport = s.ep.address().port;
    await exchange(c, sport, 'one');
    const oldPort = c.ep.address().port;
    expect(s.got[0]!.peer.port).to.equal(oldPort);
    const ids = c.ep.sessionConnectionIds(LOCAL, sport)!;
    expect(ids.own.length).to.equal(4);
    expect(ids.peer.length).to.equal(6);
    // Our application data went out as tls12_cid with the server's CID in the header.
    const appRecord = c.rec.sent[c.rec.sent.length - 1]!;
    expect(appRecord[0]).to.equal(ContentType.tls12Cid);
    expect(appRecord.subarray(11, 17).equals(ids.peer)).to.equal(true);

    const moves: [PeerInfo, number][] = [];
    s.ep.onPeerMoved((peer, previous) => moves.push([peer, previous.port]));
    const moved = await c.ep.rebind();
    expect(moved.port).to.not.equal(oldPort);
    expect(c.ep.address().port).to.equal(moved.port);
    await exchange(c, sport, 'two');
    expect(s.got[1]!.text).to.equal('two');
    expect(s.got[1]!.peer.port).to.equal(moved.port);
    expect(s.got[1]!.peer.identity).to.deep.equal({ type: 'psk', identity: Buffer.from('dev-1') });
    const move = s.diags.find((d) => d.kind === 'peer_moved');
    expect(move?.kind === 'peer_moved' && [move.previous.port, move.peer.port]).to.deep.equal([oldPort, moved.port]);
    const st = s.ep.stats();
    expect([st.handshakesStarted, st.handshakesCompleted, st.peerMoves, st.sessions]).to.deep.equal([1, 1, 1, 1]);
    expect(c.diags.filter((d) => d.kind === 'handshake_started')).to.have.length(1);
    expect(moves.map(([p, from]) => [p.port, from, p.identity])).to.deep.equal([[moved.port, oldPort, { type: 'psk', identity: Buffer.from('dev-1') }]]);
    expect(s.ep.server.session(LOCAL, oldPort)).to.equal(undefined);
    expect(s.ep.server.session(LOCAL, moved.port)?.established).to.equal(true);

    // The server reaches the device at its new address (a DM request would), and no longer at the old one.
    const n = c.replies.length;
    const sent = await new Promise<Error | null>((resolve) => s.ep.send(Buffer.from('push'), moved.port, LOCAL, resolve));
    expect(sent).to.equal(null);
    await eventually(() => c.replies.length > n);
    expect(c.replies[n]).to.equal('push');
    const stale = await new Promise<Error | null>((resolve) => s.ep.send(Buffer.from('push'), oldPort, LOCAL, resolve));
    expect(stale).to.be.instanceOf(DtlsNoSessionError);

    // And a second rebinding works the same way.
    const again = await c.ep.rebind();
    await exchange(c, sport, 'three');
    expect(s.got[2]!.peer.port).to.equal(again.port);
    expect(s.ep.stats().peerMoves).to.equal(2);
    expect(s.ep.stats().handshakesStarted).to.equal(1);
  });

  it('replayed, forged and unknown-CID records from another address do not move the session', async () => {
    const s = await echoServer();
    const c = await cidClient();
    const sport = s.ep.address().port;
    await exchange(c, sport, 'one');
    const port = c.ep.address().port;
    const captured = c.rec.sent[c.rec.sent.length - 1]!;
    expect(captured[0]).to.equal(ContentType.tls12Cid);
    const attacker = await rawSocket();
    const droppedBefore = s.ep.stats().recordsDropped;

    // 1. The genuine record again, from elsewhere: a replay, dropped by the window.
    // 2. Forged: a newer sequence number (so "newest" if it authenticated) with the genuine body: the AAD covers the seq.
    const forged = Buffer.from(captured);
    forged.writeUIntBE(1000, 5, 6);
    // 3. A tampered ciphertext byte.
    const tampered = Buffer.from(captured);
    tampered[tampered.length - 1] ^= 1;
    // 4. An unknown CID (routed nowhere).
    const unknown = Buffer.from(captured);
    for (let i = 11; i < 17; i++) unknown[i] ^= 0xff;
    await inject(s.ep, attacker, [captured, forged, tampered, unknown]);

    expect(s.got.map((g) => g.text)).to.deep.equal(['one']);
    expect(s.ep.stats().peerMoves).to.equal(0);
    expect(s.diags.some((d) => d.kind === 'peer_moved')).to.equal(false);
    expect(s.ep.stats().recordsDropped).to.equal(droppedBefore + 1); // the unknown CID; the others reached the session and were dropped there
    expect(s.ep.server.session(LOCAL, port)?.established).to.equal(true);
    await exchange(c, sport, 'two');
    expect(s.got[1]!.peer.port).to.equal(port);
  });

  it('an authentic record that is not the newest, from another address, is accepted but does not move the session', async () => {
    const s = await echoServer();
    const c = await cidClient();
    const sport = s.ep.address().port;
    await exchange(c, sport, 'one');
    const port = c.ep.address().port;
    c.rec.hold(); // 'late' is kept back...
    c.ep.send(Buffer.from('late'), sport, LOCAL);
    await eventually(() => c.rec.held.length === 1);
    await exchange(c, sport, 'newer'); // ...a newer record arrives first
    const elsewhere = await rawSocket();
    await inject(s.ep, elsewhere, [c.rec.held[0]!]);
    await eventually(() => s.got.length === 3);
    expect(s.got[2]!.text).to.equal('late');
    expect(s.got[2]!.peer.port).to.equal(port); // delivered for the session where it is
    expect(s.ep.stats().peerMoves).to.equal(0);
    expect(s.ep.server.session(LOCAL, port)?.established).to.equal(true);
  });

  it('CBC-SHA256 with a zero-length client CID: plain records to the client, tls12_cid to the server, and the server still follows', async () => {
    const s = await echoServer();
    const c = await cidClient({ connectionIdLength: 0, cipherSuites: [TLS_PSK_WITH_AES_128_CBC_SHA256.id] });
    const sport = s.ep.address().port;
    await exchange(c, sport, 'one');
    const ids = c.ep.sessionConnectionIds(LOCAL, sport)!;
    expect([ids.own.length, ids.peer.length]).to.deep.equal([0, 6]);
    expect(c.ep.sessionSuite(LOCAL, sport)?.id).to.equal(TLS_PSK_WITH_AES_128_CBC_SHA256.id);
    expect(c.rec.sent[c.rec.sent.length - 1]![0]).to.equal(ContentType.tls12Cid);
    const moved = await c.ep.rebind();
    await exchange(c, sport, 'two');
    expect(s.got[1]!.peer.port).to.equal(moved.port);
    expect(s.ep.stats().handshakesStarted).to.equal(1);
  });

  it('a server with CIDs off: the session works without them, and after a rebinding the server does not know the client', async () => {
    const s = await echoServer({ connectionIdLength: false });
    const c = await cidClient();
    const sport = s.ep.address().port;
    await exchange(c, sport, 'one');
    expect(c.ep.sessionConnectionIds(LOCAL, sport)).to.equal(undefined);
    expect(c.rec.sent[c.rec.sent.length - 1]![0]).to.equal(ContentType.applicationData);
    await c.ep.rebind();
    const before = s.ep.stats().datagrams;
    c.ep.send(Buffer.from('two'), sport, LOCAL);
    await eventually(() => s.ep.stats().datagrams > before);
    expect(s.got).to.have.length(1);
    expect(s.ep.stats().peerMoves).to.equal(0);
  });

  it('rebind refuses after close', async () => {
    const c = await cidClient();
    await c.ep.close();
    let err: unknown;
    try {
      await c.ep.rebind();
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(Error);
  });
});
