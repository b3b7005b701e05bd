/**
 * `DtlsEndpoint`: a `CoapEndpoint` (src/coap/endpoint.ts) that speaks DTLS 1.2 (server side) over a
 * datagram transport - by default a `UdpEndpoint` it creates. CoapNode, the demux and node-coap
 * run over it unchanged:
 *
 * - `message` events carry the *decrypted* application data of an established session, with
 *   `peer.identity = { type: 'psk', identity }` (the PSK identity the client proved it holds) or
 *   `{ type: 'rpk', publicKey }` (the SPKI DER of the raw public key it proved it holds) or
 *   `{ type: 'x509', certificate, chain }` (its leaf certificate DER and the chain it sent);
 * - `send(plaintext, port, address, cb)` encrypts to the established session with (address, port).
 *   With no session there the datagram is dropped and `cb` gets an Error (`DtlsNoSessionError`):
 *   only a client can start a DTLS session, so the server cannot reach a peer without one;
 * - `close()` sends close_notify to every session, then closes the transport;
 * - `onPeerMoved(listener)` (RFC 9146 Connection ID): a session followed its client to a new
 *   address (NAT rebinding); from then on `message` carries the new address and `send` must use
 *   it - the old one has no session any more. Listeners get the new peer (with its identity) and
 *   the old address, so upper layers that keep addresses (registrations) can follow at once.
 *
 * Handshakes, cookies, retransmission and timeouts are in server.ts / connection.ts.
 */
import { EventEmitter } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { CoapEndpoint, CoapEndpointEvents, PeerInfo, SendCallback } from '../coap/endpoint.js';
import { UdpEndpoint, type UdpEndpointOptions } from '../coap/udp-endpoint.js';
import type { PeerAddressInfo, ServerConnection } from './connection.js';
import { DtlsServer, type DtlsServerOptions, type DtlsServerStats } from './server.js';
import { SendTracker } from './send-tracker.js';

/** What DtlsEndpoint needs from the socket under it (a UdpEndpoint fits). */
export interface DatagramTransport {
  readonly type: 'udp4' | 'udp6';
  on(event: 'message', listener: (msg: Buffer, peer: PeerInfo) => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
  send(msg: Uint8Array, port: number, address: string, callback?: SendCallback): void;
  address(): AddressInfo;
  close(): Promise<void>;
}

export class DtlsNoSessionError extends Error {
  constructor(readonly address: string, readonly port: number) {
    super(`no DTLS session with ${address.includes(':') ? `[${address}]` : address}:${port}`);
    this.name = 'DtlsNoSessionError';
  }
}

export type DtlsEndpointOptions = DtlsServerOptions;

/** A session moved (RFC 9146): `peer` is the new address with the session's identity, `previous` the old address. */
export type PeerMovedListener = (peer: PeerInfo, previous: PeerAddressInfo) => void;

/** The CoAP layer's view of an established session's peer: its current address and proven identity. */
function peerInfo(conn: ServerConnection, size: number): PeerInfo {
  return { address: conn.peer.address, family: conn.peer.family, port: conn.peer.port, size, identity: conn.peerIdentity! };
}

export class DtlsEndpoint extends EventEmitter<CoapEndpointEvents> implements CoapEndpoint {
  readonly type: 'udp4' | 'udp6';
  readonly secure = true;
  readonly server: DtlsServer;
  private closing: Promise<void> | undefined;
  /** Sends in flight, so close() lets the last records leave first. */
  private readonly sends: SendTracker;

  constructor(private readonly transport: DatagramTransport, opts: DtlsEndpointOptions) {
    super();
    this.sends = new SendTracker(transport);
    this.type = transport.type;
    const onDiagnostic = opts.onDiagnostic;
    this.server = new DtlsServer({
      ...opts,
      onDiagnostic: (d) => {
        if (d.kind === 'peer_moved') this.peerMoved(d.peer, d.previous);
        onDiagnostic?.(d);
      },
    }, {
      send: (datagram, peer) => this.sends.send(datagram, peer.port, peer.address),
      deliver: (plaintext, conn) => this.emit('message', plaintext, peerInfo(conn, plaintext.length)),
    });
    transport.on('message', (msg, rinfo) => {
      const from: PeerAddressInfo = { address: rinfo.address, port: rinfo.port, family: rinfo.family };
      try {
        this.server.handleDatagram(msg, from);
      } catch (err) {
        // Input never throws by design; a bug must not take the process down from a socket callback.
        this.reportError(err);
      }
    });
    transport.on('error', (err) => this.reportError(err));
  }

  private readonly movedListeners = new Set<PeerMovedListener>();

  /** Calls `listener` whenever a session moves to a new address (RFC 9146); returns the unsubscribe function. */
  onPeerMoved(listener: PeerMovedListener): () => void {
    this.movedListeners.add(listener);
    return () => this.movedListeners.delete(listener);
  }

  private peerMoved(to: PeerAddressInfo, previous: PeerAddressInfo): void {
    const conn = this.server.session(to.address, to.port);
    if (conn === undefined) return;
    const peer = peerInfo(conn, 0);
    for (const l of [...this.movedListeners]) {
      try {
        l(peer, { ...previous });
      } catch (err) {
        this.reportError(err); // a listener's bug must not break the protocol
      }
    }
  }

  /** An 'error' event when someone listens (an unheard 'error' would throw from a socket callback). */
  private reportError(err: unknown): void {
    if (this.listenerCount('error') > 0) this.emit('error', err instanceof Error ? err : new Error(String(err)));
  }

  /** Binds a UDP socket and serves DTLS on it. */
  static async create(opts: DtlsEndpointOptions & UdpEndpointOptions): Promise<DtlsEndpoint> {
    const udp = await UdpEndpoint.create(opts);
    return new DtlsEndpoint(udp, opts);
  }

  send(msg: Uint8Array, port: number, address: string, callback?: SendCallback): void {
    if (this.closing) {
      if (callback) process.nextTick(callback, null);
      return;
    }
    let ok: boolean;
    try {
      ok = this.server.send(Buffer.from(msg.buffer, msg.byteOffset, msg.byteLength), address, port);
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      if (callback) process.nextTick(callback, e);
      return;
    }
    if (callback) process.nextTick(callback, ok ? null : new DtlsNoSessionError(address, port));
  }

  address(): AddressInfo {
    return this.transport.address();
  }

  stats(): DtlsServerStats {
    return this.server.stats();
  }

  /**
   * The largest datagram (one record's plaintext) `send` can deliver to the session with
   * (address, port): 2^14 unless the client asked for less (max_fragment_length /
   * record_size_limit); undefined without a session. Larger sends fail with RecordSizeLimitError.
   */
  recordLimit(address: string, port: number): number | undefined {
    return this.server.recordLimit(address, port);
  }

  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.server.close(); // close_notify to every session
    this.closing = (async () => {
      await this.sends.drained(); // let the close_notify alerts leave first
      await this.transport.close();
      this.emit('close');
    })();
    return this.closing;
  }
}
