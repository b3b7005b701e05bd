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
 * - `close()` sends close_notify to every session, then closes the transport.
 *
 * Handshakes, cookies, retransmission and timeouts are in server.ts / connection.ts.
 */
import { EventEmitter } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { CoapEndpoint, CoapEndpointEvents, PeerInfo, SendCallback } from '../coap/endpoint.js';
import { UdpEndpoint, type UdpEndpointOptions } from '../coap/udp-endpoint.js';
import type { PeerAddressInfo } from './connection.js';
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
    this.server = new DtlsServer(opts, {
      send: (datagram, peer) => this.sends.send(datagram, peer.port, peer.address),
      deliver: (plaintext, conn) => {
        const peer: PeerInfo = {
          address: conn.peer.address,
          family: conn.peer.family,
          port: conn.peer.port,
          size: plaintext.length,
          identity: conn.peerIdentity!,
        };
        this.emit('message', plaintext, peer);
      },
    });
    transport.on('message', (msg, rinfo) => {
      const from: PeerAddressInfo = { address: rinfo.address, port: rinfo.port, family: rinfo.family };
      try {
        this.server.handleDatagram(msg, from);
      } catch (err) {
        // Input never throws by design; a bug must not take the process down from a socket callback.
        if (this.listenerCount('error') > 0) this.emit('error', err instanceof Error ? err : new Error(String(err)));
      }
    });
    transport.on('error', (err) => {
      if (this.listenerCount('error') > 0) this.emit('error', err);
    });
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
