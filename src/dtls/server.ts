/**
 * The DTLS server core, independent of sockets: `handleDatagram(bytes, from)` in, `io.send` and
 * `io.deliver` out. It owns the per-peer associations (connection.ts), keyed by address and port,
 * and everything that happens before one exists:
 *
 * - a ClientHello (epoch 0, one unfragmented record) without a valid cookie gets a
 *   HelloVerifyRequest built from the request alone (cookie.ts) - no state is kept, so spoofed
 *   source addresses cost the server nothing but that answer, which is smaller than the request;
 * - a ClientHello with a valid cookie is checked (version, compression, renegotiation_info,
 *   cipher suite, extended master secret; for ECDHE_ECDSA suites also secp256r1 in
 *   supported_groups, uncompressed points, ecdsa_secp256r1_sha256 in signature_algorithms and
 *   a certificate type we can do in each direction: the first of the client's
 *   client_certificate_type / server_certificate_type list that is configured - RawPublicKey
 *   (serverKey; rpkLookup) or X.509 (serverCertificate; trustAnchors and x509Lookup) - and X.509
 *   when the client sends no such extension, RFC 7250 §4.1) and answered with a fatal alert, still
 *   statelessly, if unacceptable (unsupported_certificate when only the certificate type was
 *   missing, else handshake_failure); otherwise a new association starts and replaces any old one for that address
 *   (RFC 6347 §4.2.8: the cookie showed the client is reachable there);
 * - a repeated ClientHello of a running handshake makes it resend flight 4;
 * - every other record goes to the peer's association, or is dropped if there is none.
 *
 * Limits: at most `maxHandshakes` associations still in the handshake and `maxSessions` in all;
 * beyond them new handshakes are not started (the ClientHello is dropped; the client retries).
 * A sweep ends handshakes older than `handshakeTimeoutMs` and sessions idle for `idleTimeoutMs`.
 * Nothing here throws on input: malformed data is counted and dropped.
 */
import { serializeAlert } from './alert.js';
import {
  AlertDescription, AlertLevel, CertificateType, ContentType, DTLS_1_0, DTLS_1_2, ECDSA_SHA256, ECPointFormat, EMPTY_RENEGOTIATION_INFO_SCSV,
  ExtensionType, HandshakeType, NamedGroup,
} from './constants.js';
import {
  ServerConnection, type CloseReason, type ConnectionConfig, type ConnectionHost, type PeerAddressInfo, type PskLookup, type RpkLookup, type X509Lookup,
} from './connection.js';
import { loadServerKey, type ServerKeyInput } from './ecc.js';
import { CookieJar } from './cookie.js';
import { DEFAULT_RETRANSMIT, type RetransmitOptions } from './flight.js';
import { fullMessage, isWhole, parseHandshakeFragments, type HandshakeFragment } from './handshake.js';
import {
  findExtension, parseClientHello, parseRenegotiationInfo, parseU16List, parseU8List, serializeHelloVerifyRequest, type ClientHello,
} from './messages.js';
import { parseDatagram, serializeRecord, type DtlsRecord } from './record.js';
import { ALL_SUITES, suiteById, type CipherSuite } from './suites.js';
import { loadServerCertificate, loadTrustAnchors } from './x509.js';

export interface DtlsServerOptions {
  /** Identity → PSK; undefined for an unknown identity (answered with unknown_psk_identity). Without it no PSK suite is offered. */
  readonly pskLookup?: PskLookup;
  /**
   * The server's P-256 key pair for the ECDHE_ECDSA suites (SPKI DER + PKCS#8 DER, as lwbs stores
   * it): signs ServerKeyExchange, and its SPKI is the raw public key sent to clients. Needs
   * `rpkLookup` and/or `x509Lookup` (clients must authenticate).
   */
  readonly serverKey?: ServerKeyInput;
  /** Accepts or refuses a client's raw public key (canonical SPKI DER) once it proved possession; false → certificate_unknown. Without it clients cannot use raw public keys. */
  readonly rpkLookup?: RpkLookup;
  /**
   * The server's X.509 chain (DER, leaf first; the leaf certifies `serverKey`), sent to clients
   * that want a certificate (no server_certificate_type extension, or X.509 offered). Without it
   * such clients get unsupported_certificate.
   */
  readonly serverCertificate?: { readonly chain: readonly Uint8Array[] };
  /** CA (or directly trusted) certificates, DER, that client X.509 chains must lead to. Needed with `x509Lookup`. */
  readonly trustAnchors?: readonly Uint8Array[];
  /**
   * Accepts or refuses a client's certificate (the leaf, DER) once its chain verified and the
   * client proved possession of the key: the store decides whether that device is enrolled;
   * false → certificate_unknown. Without it clients cannot use X.509.
   */
  readonly x509Lookup?: X509Lookup;
  /** Wall clock for certificate validity periods, ms since the epoch (default Date.now). */
  readonly certificateClock?: () => number;
  /** Cipher suite ids in order of preference (default: all implemented whose credentials are configured, PSK CCM_8 first). */
  readonly cipherSuites?: readonly number[];
  /** Sent in a ServerKeyExchange when set. Default: none (some clients fail on a hint). */
  readonly pskIdentityHint?: Uint8Array;
  /** Refuse clients that do not offer extended_master_secret (RFC 7627). Default false. */
  readonly requireExtendedMasterSecret?: boolean;
  /** Flight retransmission timer (default 1 s doubling to 60 s, RFC 6347 §4.2.4). */
  readonly retransmit?: Partial<RetransmitOptions>;
  /** A handshake not finished after this long is dropped (default 60 s). */
  readonly handshakeTimeoutMs?: number;
  /** A session with no authenticated record from the peer for this long is dropped (default 24 h). */
  readonly idleTimeoutMs?: number;
  /** Concurrent handshakes (after the cookie) at most (default 5000). */
  readonly maxHandshakes?: number;
  /** Associations (handshakes + sessions) at most (default 100 000). */
  readonly maxSessions?: number;
  /** Cookie secret rotation period (default 5 min). */
  readonly cookieRotationMs?: number;
  /** Largest datagram sent, in bytes of UDP payload (default 1280 - 48 = 1232: fits IPv6's minimum MTU). */
  readonly maxDatagram?: number;
  /** Anti-replay window size in records (multiple of 32, default 64). */
  readonly replayWindow?: number;
  /** Largest handshake message accepted (default 16 KiB) and bytes buffered per handshake (default 32 KiB). */
  readonly maxHandshakeMessage?: number;
  readonly maxHandshakeBuffer?: number;
  /** Minimum gap between re-sends triggered by the peer repeating a flight (default 250 ms). */
  readonly minResendGapMs?: number;
  /** Period of the idle/handshake-timeout sweep (default: a quarter of the smaller timeout, 10 ms..10 s). */
  readonly sweepIntervalMs?: number;
  /** Clock for timeouts (default Date.now). */
  readonly now?: () => number;
  readonly onDiagnostic?: (d: DtlsDiagnostic) => void;
}

/** What happened, for logs and tests. Never carries key material. */
export type DtlsDiagnostic =
  | { readonly kind: 'hello_verify_request'; readonly peer: PeerAddressInfo }
  | { readonly kind: 'handshake_started'; readonly peer: PeerAddressInfo; readonly suite: CipherSuite; readonly extendedMasterSecret: boolean }
  | { readonly kind: 'handshake_refused'; readonly peer: PeerAddressInfo; readonly alert: number; readonly reason: string }
  | {
    readonly kind: 'established'; readonly peer: PeerAddressInfo;
    /** The PSK identity, the SPKI DER of the client's raw public key, or its leaf certificate DER (`identityType` says which). */
    readonly identity: Buffer; readonly identityType: 'psk' | 'rpk' | 'x509';
    readonly suite: CipherSuite; readonly extendedMasterSecret: boolean;
  }
  | { readonly kind: 'closed'; readonly peer: PeerAddressInfo; readonly reason: CloseReason; readonly wasEstablished: boolean; readonly detail?: string }
  | { readonly kind: 'limit'; readonly peer: PeerAddressInfo; readonly what: 'handshakes' | 'sessions' };

export interface DtlsServerStats {
  datagrams: number;
  recordsDropped: number;
  helloVerifyRequests: number;
  handshakesStarted: number;
  handshakesCompleted: number;
  handshakesFailed: number;
  handshakesRefused: number;
  limited: number;
  /** Current associations in the handshake / established. */
  handshaking: number;
  sessions: number;
}

export interface DtlsServerIo {
  /** Send a datagram to a peer. */
  send(datagram: Buffer, peer: PeerAddressInfo): void;
  /** Decrypted application data from an established session. */
  deliver(plaintext: Buffer, conn: ServerConnection): void;
}

export function peerKeyOf(address: string, port: number): string {
  return `${address}|${port}`;
}

export class DtlsServer {
  private readonly conns = new Map<string, ServerConnection>();
  private readonly cookies: CookieJar;
  private readonly suites: readonly CipherSuite[];
  private readonly config: ConnectionConfig;
  private readonly requireEms: boolean;
  private readonly idleTimeoutMs: number;
  private readonly maxHandshakes: number;
  private readonly maxSessions: number;
  private readonly onDiagnostic: ((d: DtlsDiagnostic) => void) | undefined;
  private readonly sweepTimer: NodeJS.Timeout;
  private handshaking = 0;
  private isClosed = false;
  private readonly counters = {
    datagrams: 0, recordsDropped: 0, helloVerifyRequests: 0, handshakesStarted: 0, handshakesCompleted: 0, handshakesFailed: 0,
    handshakesRefused: 0, limited: 0,
  };

  constructor(opts: DtlsServerOptions, private readonly io: DtlsServerIo) {
    const now = opts.now ?? Date.now;
    if (opts.serverKey !== undefined && opts.rpkLookup === undefined && opts.x509Lookup === undefined) {
      throw new RangeError('serverKey needs rpkLookup or x509Lookup (clients must authenticate)');
    }
    if (opts.rpkLookup !== undefined && opts.serverKey === undefined) throw new RangeError('rpkLookup needs serverKey');
    if (opts.x509Lookup !== undefined && opts.serverKey === undefined) throw new RangeError('x509Lookup needs serverKey');
    if (opts.serverCertificate !== undefined && opts.serverKey === undefined) throw new RangeError('serverCertificate needs serverKey');
    if (opts.x509Lookup !== undefined && (opts.trustAnchors === undefined || opts.trustAnchors.length === 0)) throw new RangeError('x509Lookup needs trustAnchors');
    const serverKey = opts.serverKey === undefined ? undefined : loadServerKey(opts.serverKey);
    const serverCertificate = opts.serverCertificate === undefined ? undefined : loadServerCertificate(opts.serverCertificate.chain, serverKey!.spki);
    const trustAnchors = opts.trustAnchors === undefined || opts.x509Lookup === undefined ? undefined : loadTrustAnchors(opts.trustAnchors);
    const usable = (s: CipherSuite): boolean => (s.keyExchange === 'psk' ? opts.pskLookup !== undefined : serverKey !== undefined);
    const ids = opts.cipherSuites ?? ALL_SUITES.filter(usable).map((s) => s.id);
    this.suites = ids.map((id) => {
      const s = suiteById(id);
      if (s === undefined) throw new RangeError(`unsupported cipher suite 0x${id.toString(16)}`);
      if (!usable(s)) throw new RangeError(`cipher suite ${s.name} needs ${s.keyExchange === 'psk' ? 'pskLookup' : 'serverKey'}`);
      return s;
    });
    if (this.suites.length === 0) throw new RangeError('no cipher suites configured (give pskLookup, or serverKey with rpkLookup or x509Lookup)');
    const retransmit = { ...DEFAULT_RETRANSMIT, ...opts.retransmit };
    if (!(retransmit.initialMs > 0) || !(retransmit.maxMs >= retransmit.initialMs)) throw new RangeError('retransmit: 0 < initialMs <= maxMs');
    const handshakeTimeoutMs = opts.handshakeTimeoutMs ?? 60_000;
    this.idleTimeoutMs = opts.idleTimeoutMs ?? 24 * 3600_000;
    if (!(handshakeTimeoutMs > 0) || !(this.idleTimeoutMs > 0)) throw new RangeError('timeouts must be > 0');
    const maxDatagram = opts.maxDatagram ?? 1232;
    if (!(maxDatagram >= 256 && maxDatagram <= 65507)) throw new RangeError('maxDatagram: 256..65507');
    this.config = {
      pskLookup: opts.pskLookup,
      rpkLookup: opts.rpkLookup,
      serverKey,
      x509Lookup: opts.x509Lookup,
      trustAnchors,
      serverCertificate,
      certificateClock: opts.certificateClock ?? Date.now,
      pskIdentityHint: opts.pskIdentityHint === undefined ? undefined : Buffer.from(opts.pskIdentityHint),
      retransmit,
      handshakeTimeoutMs,
      maxDatagram,
      replayWindow: opts.replayWindow ?? 64,
      reassembly: { maxMessageLength: opts.maxHandshakeMessage ?? 16 * 1024, maxBufferedBytes: opts.maxHandshakeBuffer ?? 32 * 1024 },
      minResendGapMs: opts.minResendGapMs ?? 250,
      maxQueuedRecords: 32,
      now,
    };
    this.requireEms = opts.requireExtendedMasterSecret ?? false;
    this.maxHandshakes = opts.maxHandshakes ?? 5000;
    this.maxSessions = opts.maxSessions ?? 100_000;
    this.onDiagnostic = opts.onDiagnostic;
    this.cookies = new CookieJar({ rotationMs: opts.cookieRotationMs, now });
    const sweepMs = opts.sweepIntervalMs ?? Math.min(10_000, Math.max(10, Math.min(handshakeTimeoutMs, this.idleTimeoutMs) / 4));
    this.sweepTimer = setInterval(() => this.sweep(), sweepMs);
    this.sweepTimer.unref();
  }

  stats(): DtlsServerStats {
    return { ...this.counters, handshaking: this.handshaking, sessions: this.conns.size - this.handshaking };
  }

  /** The established session with (address, port), if any. */
  session(address: string, port: number): ServerConnection | undefined {
    const c = this.conns.get(peerKeyOf(address, port));
    return c?.established ? c : undefined;
  }

  /** Encrypts `plaintext` to the session with (address, port); false when there is none. */
  send(plaintext: Buffer, address: string, port: number): boolean {
    const c = this.conns.get(peerKeyOf(address, port));
    return c !== undefined && c.sendApplicationData(plaintext);
  }

  handleDatagram(datagram: Buffer, from: PeerAddressInfo): void {
    if (this.isClosed) return;
    this.counters.datagrams++;
    const { records, dropped } = parseDatagram(datagram);
    this.counters.recordsDropped += dropped;
    const key = peerKeyOf(from.address, from.port);
    for (const rec of records) {
      if (rec.epoch === 0 && rec.type === ContentType.handshake) {
        const frags = parseHandshakeFragments(rec.fragment);
        if (frags !== undefined && frags[0]!.msgType === HandshakeType.clientHello) {
          this.onClientHello(rec, frags, from, key);
          continue;
        }
      }
      const conn = this.conns.get(key);
      if (conn === undefined) {
        this.counters.recordsDropped++;
        continue;
      }
      conn.handleRecord(rec);
    }
  }

  /** Sends close_notify to every established session and drops all state. */
  close(): void {
    if (this.isClosed) return;
    clearInterval(this.sweepTimer);
    for (const c of [...this.conns.values()]) c.close('shutdown', undefined, true);
    this.isClosed = true;
  }

  // ---- ClientHello ---------------------------------------------------------------------------

  private onClientHello(rec: DtlsRecord, frags: HandshakeFragment[], from: PeerAddressInfo, key: string): void {
    const frag = frags[0]!;
    // A ClientHello must come whole and alone in its record: without state there is nothing to reassemble into.
    const ch = frags.length === 1 && isWhole(frag) ? parseClientHello(frag.body) : undefined;
    if (ch === undefined) {
      this.counters.recordsDropped++;
      return;
    }
    if (ch.cookie.length === 0 || !this.cookies.verify(from.address, from.port, ch)) {
      this.sendHelloVerifyRequest(rec, frag, ch, from);
      return;
    }
    const existing = this.conns.get(key);
    if (existing !== undefined && existing.isHandshakeFor(ch.random)) {
      existing.clientHelloRepeated();
      return;
    }
    const refusal = this.checkHello(ch);
    if (typeof refusal === 'object' && 'alert' in refusal) {
      this.counters.handshakesRefused++;
      this.diag({ kind: 'handshake_refused', peer: from, alert: refusal.alert, reason: refusal.reason });
      this.io.send(serializeRecord({
        type: ContentType.alert, version: DTLS_1_2, epoch: 0, seq: rec.seq,
        fragment: serializeAlert({ level: AlertLevel.fatal, description: refusal.alert }),
      }), from);
      return;
    }
    const replacing = existing !== undefined;
    const handshakesAfter = this.handshaking + 1 - (existing !== undefined && !existing.established ? 1 : 0);
    if (handshakesAfter > this.maxHandshakes || (!replacing && this.conns.size >= this.maxSessions)) {
      this.counters.limited++;
      this.diag({ kind: 'limit', peer: from, what: handshakesAfter > this.maxHandshakes ? 'handshakes' : 'sessions' });
      return;
    }
    existing?.close('replaced');
    const conn = new ServerConnection({ address: from.address, port: from.port, family: from.family }, this.config, this.host, {
      clientHello: ch,
      clientHelloMessage: fullMessage(HandshakeType.clientHello, frag.messageSeq, Buffer.from(frag.body)),
      messageSeq: frag.messageSeq,
      recordSeq: rec.seq,
      suite: refusal.suite,
      extendedMasterSecret: refusal.ems,
      secureRenegotiation: refusal.secureRenegotiation,
      echoPointFormats: refusal.echoPointFormats,
      ...refusal.certificateTypes,
    });
    this.conns.set(key, conn);
    this.handshaking++;
    this.counters.handshakesStarted++;
    this.diag({ kind: 'handshake_started', peer: conn.peer, suite: refusal.suite, extendedMasterSecret: refusal.ems });
    conn.start();
  }

  private checkHello(ch: ClientHello):
    | { alert: number; reason: string }
    | { suite: CipherSuite; ems: boolean; secureRenegotiation: boolean; echoPointFormats: boolean; certificateTypes?: CertificateTypes } {
    // DTLS versions count down: FEFD (1.2) < FEFF (1.0). A client must offer 1.2 or later.
    if (ch.clientVersion > DTLS_1_2) return { alert: AlertDescription.protocolVersion, reason: `client offers only version 0x${ch.clientVersion.toString(16)}` };
    if (!ch.compressionMethods.includes(0)) return { alert: AlertDescription.illegalParameter, reason: 'null compression not offered' };
    const reneg = findExtension(ch.extensions, ExtensionType.renegotiationInfo);
    if (reneg !== undefined) {
      const v = parseRenegotiationInfo(reneg.data);
      if (v === undefined || v.length !== 0) return { alert: AlertDescription.handshakeFailure, reason: 'non-empty renegotiation_info in an initial handshake' };
    }
    const secureRenegotiation = reneg !== undefined || ch.cipherSuites.includes(EMPTY_RENEGOTIATION_INFO_SCSV);
    const ems = findExtension(ch.extensions, ExtensionType.extendedMasterSecret) !== undefined;
    if (!ems && this.requireEms) return { alert: AlertDescription.handshakeFailure, reason: 'extended_master_secret required' };
    const ecc = checkEcdheEcdsa(ch, this.certificateTypesSupported);
    const suite = this.suites.find((s) => ch.cipherSuites.includes(s.id) && (s.keyExchange === 'psk' || ecc.ok));
    if (suite === undefined) {
      const eccOffered = this.suites.some((s) => s.keyExchange === 'ecdhe_ecdsa' && ch.cipherSuites.includes(s.id));
      if (eccOffered && !ecc.ok) return { alert: ecc.alert, reason: ecc.reason };
      return { alert: AlertDescription.handshakeFailure, reason: 'no common cipher suite' };
    }
    if (suite.keyExchange === 'psk' || !ecc.ok) return { suite, ems, secureRenegotiation, echoPointFormats: false };
    return { suite, ems, secureRenegotiation, echoPointFormats: ecc.echoPointFormats, certificateTypes: ecc.certificateTypes };
  }

  /** Which certificate types we can do, per direction (RawPublicKey / X.509). */
  private get certificateTypesSupported(): SupportedCertificateTypes {
    const server: number[] = [];
    const client: number[] = [];
    if (this.config.serverKey !== undefined) server.push(CertificateType.rawPublicKey);
    if (this.config.serverCertificate !== undefined) server.push(CertificateType.x509);
    if (this.config.rpkLookup !== undefined) client.push(CertificateType.rawPublicKey);
    if (this.config.x509Lookup !== undefined && this.config.trustAnchors !== undefined) client.push(CertificateType.x509);
    return { server, client };
  }

  private sendHelloVerifyRequest(rec: DtlsRecord, frag: HandshakeFragment, ch: ClientHello, from: PeerAddressInfo): void {
    const cookie = this.cookies.create(from.address, from.port, ch);
    const body = serializeHelloVerifyRequest({ serverVersion: DTLS_1_0, cookie });
    // RFC 6347 §4.2.1: same record sequence number and message_seq as the ClientHello.
    this.io.send(serializeRecord({
      type: ContentType.handshake, version: DTLS_1_0, epoch: 0, seq: rec.seq,
      fragment: fullMessage(HandshakeType.helloVerifyRequest, frag.messageSeq, body),
    }), from);
    this.counters.helloVerifyRequests++;
    this.diag({ kind: 'hello_verify_request', peer: from });
  }

  // ---- associations ----------------------------------------------------------------------------

  private readonly host: ConnectionHost = {
    output: (conn, datagram) => this.io.send(datagram, conn.peer),
    data: (conn, plaintext) => this.io.deliver(plaintext, conn),
    established: (conn) => {
      this.handshaking--;
      this.counters.handshakesCompleted++;
      this.diag({
        kind: 'established', peer: conn.peer, identity: Buffer.from(conn.identity!), identityType: conn.peerIdentity!.type,
        suite: conn.suite, extendedMasterSecret: conn.extendedMasterSecret,
      });
    },
    closed: (conn, reason, detail) => {
      const key = peerKeyOf(conn.peer.address, conn.peer.port);
      const wasEstablished = conn.completed;
      if (this.conns.get(key) === conn) this.conns.delete(key);
      if (!wasEstablished) {
        this.handshaking--;
        this.counters.handshakesFailed++;
      }
      this.diag({ kind: 'closed', peer: conn.peer, reason, wasEstablished, ...(detail !== undefined ? { detail } : {}) });
    },
  };

  private sweep(): void {
    const now = this.config.now();
    for (const c of [...this.conns.values()]) {
      if (c.established) {
        if (now - c.lastActivity >= this.idleTimeoutMs) c.close('idle');
      } else if (now - c.createdAt >= this.config.handshakeTimeoutMs) {
        c.close('handshake_timeout');
      }
    }
  }

  private diag(d: DtlsDiagnostic): void {
    if (this.onDiagnostic === undefined) return;
    try {
      this.onDiagnostic(d);
    } catch {
      /* a diagnostic sink must not break the protocol */
    }
  }
}

interface SupportedCertificateTypes {
  readonly server: readonly number[];
  readonly client: readonly number[];
}

/** The certificate types negotiated, and which extensions the ServerHello echoes. */
interface CertificateTypes {
  readonly clientCertificateType: number;
  readonly serverCertificateType: number;
  readonly echoClientCertificateType: boolean;
  readonly echoServerCertificateType: boolean;
}

/**
 * Whether an ECDHE_ECDSA suite can be negotiated with this ClientHello (RFC 8422 §4-5, RFC 7250
 * §4.1): a client that sends supported_groups / ec_point_formats / signature_algorithms must list
 * secp256r1 / uncompressed / ecdsa_secp256r1_sha256 (absent extensions are taken as "anything",
 * as RFC 8422 §4 allows for the first two; for the third we still sign with SHA-256, which every
 * ECDSA client supports). For each certificate type extension we take the first type in the
 * client's list that we support; an absent extension means X.509. None → unsupported_certificate.
 */
function checkEcdheEcdsa(ch: ClientHello, supported: SupportedCertificateTypes):
  | { ok: true; echoPointFormats: boolean; certificateTypes: CertificateTypes }
  | { ok: false; alert: number; reason: string } {
  const fail = (alert: number, reason: string): { ok: false; alert: number; reason: string } => ({ ok: false, alert, reason });
  const groups = findExtension(ch.extensions, ExtensionType.supportedGroups);
  if (groups !== undefined && !(parseU16List(groups.data) ?? []).includes(NamedGroup.secp256r1)) {
    return fail(AlertDescription.handshakeFailure, 'secp256r1 not in supported_groups');
  }
  const formats = findExtension(ch.extensions, ExtensionType.ecPointFormats);
  if (formats !== undefined && !(parseU8List(formats.data) ?? []).includes(ECPointFormat.uncompressed)) {
    return fail(AlertDescription.handshakeFailure, 'uncompressed points not in ec_point_formats');
  }
  const sigs = findExtension(ch.extensions, ExtensionType.signatureAlgorithms);
  if (sigs !== undefined && !(parseU16List(sigs.data) ?? []).includes(ECDSA_SHA256)) {
    return fail(AlertDescription.handshakeFailure, 'ecdsa_secp256r1_sha256 not in signature_algorithms');
  }
  const chosen: Record<'server' | 'client', { type: number; echo: boolean }> = { server: { type: 0, echo: false }, client: { type: 0, echo: false } };
  for (const [type, name] of [[ExtensionType.serverCertificateType, 'server'], [ExtensionType.clientCertificateType, 'client']] as const) {
    const ext = findExtension(ch.extensions, type);
    const offered = ext === undefined ? [CertificateType.x509] : parseU8List(ext.data) ?? [];
    const pick = offered.find((t) => supported[name].includes(t));
    if (pick === undefined) {
      const what = ext === undefined ? `no ${name}_certificate_type extension (X.509)` : `${name}_certificate_type [${offered.join(',')}]`;
      return fail(AlertDescription.unsupportedCertificate, `${what}: none of the certificate types configured for the ${name}`);
    }
    chosen[name] = { type: pick, echo: ext !== undefined };
  }
  return {
    ok: true, echoPointFormats: formats !== undefined,
    certificateTypes: {
      clientCertificateType: chosen.client.type, serverCertificateType: chosen.server.type,
      echoClientCertificateType: chosen.client.echo, echoServerCertificateType: chosen.server.echo,
    },
  };
}
