/**
 * The simulated device's transport: one `CoapEndpoint` for its CoapNode that sends plain CoAP
 * over the device's UDP socket, except to the servers it reaches over DTLS (`coaps://`): for
 * each of those a `DtlsClientEndpoint` (its own socket, as a device opens one per secure
 * server) with the credentials of that server's Security instance. Everything above - the
 * demux, the bootstrap and registration clients, observations - sees one endpoint: requests and
 * answers are routed by the server's (address, port), and what arrives on any socket comes out
 * of `message`, decrypted, with the server's address.
 *
 * A route is kept while its credentials stay the same (one DTLS session for bootstrap, Register,
 * Updates, DM); new credentials for the same server (after a re-bootstrap) replace it: the old
 * session is closed with close_notify and the next message starts a new handshake.
 */
import { EventEmitter } from 'node:events';
import type { AddressInfo } from 'node:net';
import { peerKey, type CoapEndpoint, type CoapEndpointEvents, type PeerAddress, type PeerInfo, type SendCallback } from '../coap/endpoint.js';
import type { UdpEndpoint } from '../coap/udp-endpoint.js';
import { DtlsClientEndpoint, type DtlsClientDiagnostic } from '../dtls/client.js';
import type { RetransmitOptions } from '../dtls/flight.js';
import type { ObjectInstance } from '../lwm2m/node.js';
import { bytesOf, intOf } from './device-model.js';
import { DtlsNotSupportedError } from './target.js';

/** DTLS knobs for the simulator (tests use short timers). */
export interface SimDtlsOptions {
  /** PSK cipher suites offered (default TLS_PSK_WITH_AES_128_CCM_8). */
  readonly cipherSuites?: readonly number[];
  readonly retransmit?: Partial<RetransmitOptions>;
  /** Give up a handshake after this long (default 30 s). */
  readonly handshakeTimeoutMs?: number;
  readonly onDiagnostic?: (d: DtlsClientDiagnostic) => void;
}

export interface PskCredentials {
  readonly identity: Uint8Array;
  readonly key: Uint8Array;
}

const MODE_NAMES: Readonly<Record<number, string>> = { 0: 'PSK', 1: 'RPK (raw public key)', 2: 'certificate', 3: 'NoSec', 4: 'certificate with EST' };

/**
 * The DTLS credentials a Security instance (`/0/x`) gives for its `coaps://` URI: PSK (`/0/x/2`
 * = 0) with identity `/0/x/3` and key `/0/x/5`. RPK and certificate modes throw
 * `DtlsNotSupportedError` (not implemented by the simulator yet); NoSec or missing values throw
 * an Error. `what` names the server in the message ("bootstrap server", "LwM2M server (SSID 3)").
 */
export function pskCredentialsOf(sec: ObjectInstance | undefined, uri: string, what: string): PskCredentials {
  const mode = intOf(sec, 2);
  if (mode === 0) {
    const identity = bytesOf(sec, 3);
    const key = bytesOf(sec, 5);
    if (!identity || identity.length === 0 || !key || key.length === 0) {
      throw new Error(`the ${what} is ${uri} with security mode PSK but ${!identity || identity.length === 0 ? 'no PSK identity (/0/x/3)' : 'no PSK key (/0/x/5)'}`);
    }
    return { identity, key };
  }
  const name = mode === undefined ? 'no security mode' : `security mode ${MODE_NAMES[mode] ?? mode}`;
  if (mode === 1 || mode === 2 || mode === 4) {
    throw new DtlsNotSupportedError(`DTLS with ${name} is not supported by the simulator yet (PSK only): the ${what} is ${uri}`);
  }
  throw new Error(`the ${what} is ${uri} (DTLS) but its Security instance has ${name}: it needs PSK credentials`);
}

interface Route {
  readonly endpoint: DtlsClientEndpoint;
  readonly psk: PskCredentials;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

export class SimTransport extends EventEmitter<CoapEndpointEvents> implements CoapEndpoint {
  readonly type: 'udp4' | 'udp6';
  /** Mixed: plain to some servers, DTLS to others. */
  readonly secure = false;
  private readonly routes = new Map<string, Route>();
  private closing: Promise<void> | undefined;

  constructor(private readonly udp: UdpEndpoint, private readonly host: string, private readonly dtls: SimDtlsOptions = {}) {
    super();
    this.type = udp.type;
    udp.on('message', (msg, peer) => {
      // A server reached over DTLS does not talk plain CoAP to us from the same address.
      if (!this.routes.has(peerKey(peer))) this.emit('message', msg, peer);
    });
    udp.on('error', (err) => this.forwardError(err));
  }

  private forwardError(err: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }

  /** True when messages to `peer` go over DTLS. */
  isSecure(peer: PeerAddress): boolean {
    return this.routes.has(peerKey(peer));
  }

  /** The DTLS endpoint used for `peer`, if any (for tests and diagnostics). */
  dtlsEndpoint(peer: PeerAddress): DtlsClientEndpoint | undefined {
    return this.routes.get(peerKey(peer))?.endpoint;
  }

  /**
   * From now on, messages to `peer` go over DTLS with `psk` (a new socket and session unless
   * the route exists with the same credentials).
   */
  async secureRoute(peer: PeerAddress, psk: PskCredentials): Promise<void> {
    if (this.closing) throw new Error('the simulator is closed');
    const key = peerKey(peer);
    const old = this.routes.get(key);
    if (old && sameBytes(old.psk.identity, psk.identity) && sameBytes(old.psk.key, psk.key)) return;
    const endpoint = await DtlsClientEndpoint.create({
      host: this.host,
      port: 0,
      type: this.type,
      psk: { identity: Buffer.from(psk.identity), key: Buffer.from(psk.key) },
      ...(this.dtls.cipherSuites ? { cipherSuites: this.dtls.cipherSuites } : {}),
      ...(this.dtls.retransmit ? { retransmit: this.dtls.retransmit } : {}),
      ...(this.dtls.handshakeTimeoutMs !== undefined ? { handshakeTimeoutMs: this.dtls.handshakeTimeoutMs } : {}),
      ...(this.dtls.onDiagnostic ? { onDiagnostic: this.dtls.onDiagnostic } : {}),
    });
    if (this.closing) {
      await endpoint.close();
      throw new Error('the simulator is closed');
    }
    endpoint.on('message', (msg: Buffer, p: PeerInfo) => {
      if (this.routes.get(peerKey(p))?.endpoint === endpoint) this.emit('message', msg, p);
    });
    endpoint.on('error', (err) => this.forwardError(err));
    const current = this.routes.get(key);
    this.routes.set(key, { endpoint, psk: { identity: Buffer.from(psk.identity), key: Buffer.from(psk.key) } });
    if (current) await current.endpoint.close();
  }

  /** Messages to `peer` go plain again; its DTLS session is closed. */
  async plainRoute(peer: PeerAddress): Promise<void> {
    const key = peerKey(peer);
    const r = this.routes.get(key);
    if (!r) return;
    this.routes.delete(key);
    await r.endpoint.close();
  }

  send(msg: Uint8Array, port: number, address: string, callback?: SendCallback): void {
    const r = this.routes.get(peerKey({ address, port }));
    if (r) r.endpoint.send(msg, port, address, callback);
    else this.udp.send(msg, port, address, callback);
  }

  /** The device's plain UDP address (each DTLS route has its own socket). */
  address(): AddressInfo {
    return this.udp.address();
  }

  close(): Promise<void> {
    if (this.closing) return this.closing;
    const routes = [...this.routes.values()];
    this.routes.clear();
    this.closing = (async () => {
      await Promise.all(routes.map((r) => r.endpoint.close()));
      await this.udp.close();
      this.emit('close');
    })();
    return this.closing;
  }
}
