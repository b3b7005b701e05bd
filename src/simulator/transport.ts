/**
 * The simulated device's transport: one `CoapEndpoint` for its CoapNode that sends plain CoAP
 * over the device's UDP socket, except to the servers it reaches over DTLS (`coaps://`): for
 * each of those a `DtlsClientEndpoint` (its own socket, as a device opens one per secure
 * server) with the credentials of that server's Security instance: PSK (mode 0), raw public
 * keys (mode 1: own SPKI in /0/x/3, own PKCS#8 private key in /0/x/5, the server's SPKI in
 * /0/x/4, checked against what the server presents when not empty) or X.509 certificates
 * (mode 2: own certificate - or chain, leaf first, concatenated DER - in /0/x/3, own PKCS#8
 * private key in /0/x/5, and /0/x/4 read as /0/x/15 Certificate Usage says: 3 "domain-issued
 * certificate" (the default) or 1, the server's certificate, matched exactly; 2 "trust anchor
 * assertion" or 0, the trust anchor(s) its chain must lead to, the certificate naming the host
 * of the server URI or /0/x/14 SNI when set; empty /0/x/4 with usage 1 or 3: any certificate
 * the server proves).
 * Everything above - the
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
import { DtlsClientEndpoint, type DtlsClientDiagnostic, type DtlsClientOptions, type DtlsClientX509 } from '../dtls/client.js';
import { splitDerCertificates } from '../dtls/client-x509.js';
import type { RetransmitOptions } from '../dtls/flight.js';
import type { ObjectInstance } from '../lwm2m/node.js';
import { bytesOf, intOf, stringOf } from './device-model.js';
import { DtlsNotSupportedError } from './target.js';

/** DTLS knobs for the simulator (tests use short timers). */
export interface SimDtlsOptions {
  /** PSK cipher suites offered (default TLS_PSK_WITH_AES_128_CCM_8). */
  readonly cipherSuites?: readonly number[];
  /** ECDHE_ECDSA cipher suites offered with raw public keys and certificates (default TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8). */
  readonly rpkCipherSuites?: readonly number[];
  readonly retransmit?: Partial<RetransmitOptions>;
  /** Give up a handshake after this long (default 30 s). */
  readonly handshakeTimeoutMs?: number;
  /** RFC 9146: ask servers for Connection IDs, offering a CID of this many bytes (0: zero-length). Default: no CIDs. */
  readonly connectionIdLength?: number;
  readonly onDiagnostic?: (d: DtlsClientDiagnostic) => void;
}

export interface PskCredentials {
  readonly identity: Uint8Array;
  readonly key: Uint8Array;
}

/** Raw public keys as LwM2M security mode 1 keeps them. */
export interface RpkCredentials {
  /** Own public key, SubjectPublicKeyInfo DER (/0/x/3). */
  readonly publicKey: Uint8Array;
  /** Own private key, PKCS#8 DER (/0/x/5). */
  readonly privateKey: Uint8Array;
  /** The server's public key, SubjectPublicKeyInfo DER (/0/x/4); absent: any key the server proves it holds. */
  readonly serverPublicKey?: Uint8Array;
}

/** X.509 certificates as LwM2M security mode 2 keeps them. */
export interface X509Credentials {
  /** Own certificate, or chain leaf first as concatenated DER (/0/x/3). */
  readonly certificate: Uint8Array;
  /** Own private key, PKCS#8 DER (/0/x/5). */
  readonly privateKey: Uint8Array;
  /** /0/x/4: the server's certificate (usage 1, 3) or trust anchor certificate(s), concatenated DER (usage 0, 2). */
  readonly serverCertificate?: Uint8Array;
  /** /0/x/15 Certificate Usage, 0..3 (default 3, domain-issued certificate). */
  readonly certificateUsage?: number;
  /** The host of the server URI: the name a trust-anchored server certificate must carry (and SNI when a DNS name). */
  readonly serverName?: string;
}

/** What a `coaps://` server is reached with. */
export type DtlsCredentials = ({ readonly kind: 'psk' } & PskCredentials) | ({ readonly kind: 'rpk' } & RpkCredentials) | ({ readonly kind: 'x509' } & X509Credentials);

const MODE_NAMES: Readonly<Record<number, string>> = { 0: 'PSK', 1: 'RPK (raw public key)', 2: 'certificate', 3: 'NoSec', 4: 'certificate with EST' };

/**
 * The DTLS credentials a Security instance (`/0/x`) gives for its `coaps://` URI: PSK (`/0/x/2`
 * = 0) with identity `/0/x/3` and key `/0/x/5`, RPK (mode 1) with own public key `/0/x/3`,
 * private key `/0/x/5` and the server's public key `/0/x/4` (optional), or X.509 (mode 2) with
 * own certificate (chain) `/0/x/3`, private key `/0/x/5`, the server's certificate or trust
 * anchor `/0/x/4` and its Certificate Usage `/0/x/15`. Certificates with EST (mode 4) throw
 * `DtlsNotSupportedError` (not implemented by the simulator); NoSec or missing values throw an
 * Error. `what` names the server in the message ("bootstrap server", "LwM2M server (SSID 3)").
 * Key checks (do the keys parse, belong together) happen when the DTLS endpoint is created.
 */
export function dtlsCredentialsOf(sec: ObjectInstance | undefined, uri: string, what: string): DtlsCredentials {
  const mode = intOf(sec, 2);
  if (mode === 0) {
    const identity = bytesOf(sec, 3);
    const key = bytesOf(sec, 5);
    if (!identity || identity.length === 0 || !key || key.length === 0) {
      throw new Error(`the ${what} is ${uri} with security mode PSK but ${!identity || identity.length === 0 ? 'no PSK identity (/0/x/3)' : 'no PSK key (/0/x/5)'}`);
    }
    return { kind: 'psk', identity, key };
  }
  if (mode === 1) {
    const publicKey = bytesOf(sec, 3);
    const privateKey = bytesOf(sec, 5);
    const serverPublicKey = bytesOf(sec, 4);
    if (!publicKey || publicKey.length === 0 || !privateKey || privateKey.length === 0) {
      throw new Error(`the ${what} is ${uri} with security mode RPK but ${!publicKey || publicKey.length === 0 ? 'no public key (/0/x/3)' : 'no private key (/0/x/5)'}`);
    }
    return { kind: 'rpk', publicKey, privateKey, ...(serverPublicKey && serverPublicKey.length > 0 ? { serverPublicKey } : {}) };
  }
  if (mode === 2) {
    const certificate = bytesOf(sec, 3);
    const privateKey = bytesOf(sec, 5);
    const serverCertificate = bytesOf(sec, 4);
    const usage = intOf(sec, 15) ?? 3;
    if (!certificate || certificate.length === 0 || !privateKey || privateKey.length === 0) {
      throw new Error(`the ${what} is ${uri} with security mode certificate but ${!certificate || certificate.length === 0 ? 'no certificate (/0/x/3)' : 'no private key (/0/x/5)'}`);
    }
    if (usage < 0 || usage > 3) throw new Error(`the ${what} is ${uri} with certificate usage ${usage} (/0/x/15): 0..3 are defined`);
    if ((usage === 0 || usage === 2) && (!serverCertificate || serverCertificate.length === 0)) {
      throw new Error(`the ${what} is ${uri} with certificate usage ${usage} (trust anchor) but no trust anchor certificate (/0/x/4)`);
    }
    // /0/x/14 SNI, when set, names the server instead of the URI host.
    const sni = stringOf(sec, 14);
    const serverName = sni !== undefined && sni !== '' ? sni : hostOf(uri);
    return {
      kind: 'x509', certificate, privateKey, certificateUsage: usage,
      ...(serverCertificate && serverCertificate.length > 0 ? { serverCertificate } : {}),
      ...(serverName !== undefined ? { serverName } : {}),
    };
  }
  const name = mode === undefined ? 'no security mode' : `security mode ${MODE_NAMES[mode] ?? mode}`;
  if (mode === 4) {
    throw new DtlsNotSupportedError(`DTLS with ${name} is not supported by the simulator (PSK, RPK and certificates only): the ${what} is ${uri}`);
  }
  throw new Error(`the ${what} is ${uri} (DTLS) but its Security instance has ${name}: it needs PSK, RPK or certificate credentials`);
}

/** The host of a URI, without IPv6 brackets; undefined when it does not parse. */
function hostOf(uri: string): string | undefined {
  try {
    const h = new URL(uri).hostname;
    return h.startsWith('[') && h.endsWith(']') ? h.slice(1, -1) : h || undefined;
  } catch {
    return undefined;
  }
}

/** PSK only (kept for callers that need a PSK): `dtlsCredentialsOf`, refusing RPK and certificates with DtlsNotSupportedError. */
export function pskCredentialsOf(sec: ObjectInstance | undefined, uri: string, what: string): PskCredentials {
  const c = dtlsCredentialsOf(sec, uri, what);
  if (c.kind !== 'psk') throw new DtlsNotSupportedError(`the ${what} is ${uri} with security mode ${c.kind === 'rpk' ? 'RPK (raw public key)' : 'certificate'}, but PSK credentials are needed here`);
  return { identity: c.identity, key: c.key };
}

interface Route {
  readonly endpoint: DtlsClientEndpoint;
  readonly creds: DtlsCredentials;
}

function sameBytes(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

function sameCredentials(a: DtlsCredentials, b: DtlsCredentials): boolean {
  if (a.kind === 'psk' && b.kind === 'psk') return sameBytes(a.identity, b.identity) && sameBytes(a.key, b.key);
  if (a.kind === 'rpk' && b.kind === 'rpk') {
    return sameBytes(a.publicKey, b.publicKey) && sameBytes(a.privateKey, b.privateKey) && sameBytes(a.serverPublicKey, b.serverPublicKey);
  }
  if (a.kind === 'x509' && b.kind === 'x509') {
    return sameBytes(a.certificate, b.certificate) && sameBytes(a.privateKey, b.privateKey) && sameBytes(a.serverCertificate, b.serverCertificate)
      && (a.certificateUsage ?? 3) === (b.certificateUsage ?? 3) && a.serverName === b.serverName;
  }
  return false;
}

/** A private copy (the Security instance may change under us). */
function copyCredentials(c: DtlsCredentials): DtlsCredentials {
  const cp = (b: Uint8Array): Uint8Array => Uint8Array.from(b);
  switch (c.kind) {
    case 'psk':
      return { kind: 'psk', identity: cp(c.identity), key: cp(c.key) };
    case 'rpk':
      return { kind: 'rpk', publicKey: cp(c.publicKey), privateKey: cp(c.privateKey), ...(c.serverPublicKey ? { serverPublicKey: cp(c.serverPublicKey) } : {}) };
    case 'x509':
      return {
        kind: 'x509', certificate: cp(c.certificate), privateKey: cp(c.privateKey),
        ...(c.serverCertificate ? { serverCertificate: cp(c.serverCertificate) } : {}),
        ...(c.certificateUsage !== undefined ? { certificateUsage: c.certificateUsage } : {}),
        ...(c.serverName !== undefined ? { serverName: c.serverName } : {}),
      };
  }
}

/**
 * The DTLS client's x509 option for mode-2 credentials: usage 0 / 2 → the /0/x/4 certificates
 * are trust anchors and the server certificate must name the URI host; 1 / 3 → /0/x/4 is the
 * server's certificate, matched exactly (LwM2M's default; empty: any certificate).
 */
export function clientX509Of(c: X509Credentials): DtlsClientX509 {
  const usage = c.certificateUsage ?? 3;
  const server = c.serverCertificate !== undefined && c.serverCertificate.length > 0 ? c.serverCertificate : undefined;
  if (usage === 0 || usage === 2) {
    if (server === undefined) throw new RangeError(`certificate usage ${usage} needs a trust anchor certificate (/0/x/4)`);
    return { certificate: c.certificate, privateKey: c.privateKey, trustAnchors: splitDerCertificates(server), ...(c.serverName !== undefined ? { serverName: c.serverName } : {}) };
  }
  return { certificate: c.certificate, privateKey: c.privateKey, ...(server !== undefined ? { serverCertificate: server } : {}) };
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
   * From now on, messages to `peer` go over DTLS with `creds` (a new socket and session unless
   * the route exists with the same credentials). A `PskCredentials` without `kind` is PSK.
   * Rejects (RangeError, no key bytes quoted) when RPK keys or certificates do not parse or the
   * key does not belong to them.
   */
  async secureRoute(peer: PeerAddress, credentials: DtlsCredentials | PskCredentials): Promise<void> {
    if (this.closing) throw new Error('the simulator is closed');
    const creds = copyCredentials('kind' in credentials ? credentials : { kind: 'psk', identity: credentials.identity, key: credentials.key });
    const key = peerKey(peer);
    const old = this.routes.get(key);
    if (old && sameCredentials(old.creds, creds)) return;
    const ecdheSuites = this.dtls.rpkCipherSuites ? { cipherSuites: this.dtls.rpkCipherSuites } : {};
    const auth: Pick<DtlsClientOptions, 'psk' | 'rpk' | 'x509' | 'cipherSuites'> = creds.kind === 'psk'
      ? { psk: { identity: Buffer.from(creds.identity), key: Buffer.from(creds.key) }, ...(this.dtls.cipherSuites ? { cipherSuites: this.dtls.cipherSuites } : {}) }
      : creds.kind === 'rpk'
        ? { rpk: { publicKey: creds.publicKey, privateKey: creds.privateKey, ...(creds.serverPublicKey ? { serverPublicKey: creds.serverPublicKey } : {}) }, ...ecdheSuites }
        : { x509: clientX509Of(creds), ...ecdheSuites };
    const endpoint = await DtlsClientEndpoint.create({
      host: this.host,
      port: 0,
      type: this.type,
      ...auth,
      ...(this.dtls.retransmit ? { retransmit: this.dtls.retransmit } : {}),
      ...(this.dtls.handshakeTimeoutMs !== undefined ? { handshakeTimeoutMs: this.dtls.handshakeTimeoutMs } : {}),
      ...(this.dtls.connectionIdLength !== undefined ? { connectionIdLength: this.dtls.connectionIdLength } : {}),
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
    this.routes.set(key, { endpoint, creds });
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
