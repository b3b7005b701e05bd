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
 * Connection ID (RFC 9146): a ClientHello with connection_id gets a ServerHello echoing a fresh
 * random CID of `connectionIdLength` bytes (default 6; fixed, so tls12_cid headers can be parsed;
 * 0 → a zero-length CID: we honour the client's CID but want none; false → the extension is
 * ignored). tls12_cid records (type 25) are routed by that CID, not by address, and one that
 * authenticates and is the newest so far from a new address moves the association there
 * (diagnostic `peer_moved`; `send` and `session` then answer to the new address, the old key is
 * gone). Records without a CID still go by address (and the association drops them in epoch ≥ 1
 * if it expects a CID); an unknown CID is dropped.
 *
 * Session resumption (RFC 5246 §7.3, RFC 6347): full handshakes hand out a random 32-byte
 * session_id and completed sessions go into a bounded cache (session-cache.ts; `sessionCache`). A
 * ClientHello (after the cookie exchange, as always) with a cached id, offering the session's suite
 * and extended_master_secret exactly when the session used it (RFC 7627 §5.3), and - for
 * ECDHE_ECDSA - giving the same certificate types, is resumed once the identity is still accepted:
 * pskLookup gives the same key, rpkLookup / x509Lookup (after the chain verifies again, validity
 * included) still say yes. That check is asynchronous; a repeated ClientHello meanwhile is dropped.
 * Anything else (unknown or expired id, mismatch, revoked identity) gets a full handshake and a
 * `resumption_refused` diagnostic. The resumed session carries the cached identity.
 *
 * Record limits: max_fragment_length (RFC 6066; codes 1..4) is echoed, record_size_limit (RFC 8449;
 * ≥ 64) answered with ours (`recordSizeLimit`); with both, record_size_limit wins (RFC 8449 §5);
 * bad values get illegal_parameter. The connection then keeps its records (handshake fragments
 * included) within the client's limit; `recordLimit(address, port)` tells the application the
 * largest application data it can send, and larger data is refused (`record_too_large`).
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
  type ConnectionIds,
} from './connection.js';
import { loadServerKey, type ServerKeyInput } from './ecc.js';
import { CookieJar } from './cookie.js';
import { DEFAULT_RETRANSMIT, type RetransmitOptions } from './flight.js';
import { fullMessage, isWhole, parseHandshakeFragments, type HandshakeFragment } from './handshake.js';
import { randomBytes } from 'node:crypto';
import {
  findExtension, parseConnectionId, parseClientHello, parseRenegotiationInfo, parseU16List, parseU8List, serializeHelloVerifyRequest, type ClientHello,
} from './messages.js';
import { parseDatagram, serializeRecord, type DtlsRecord } from './record.js';
import { ALL_SUITES, suiteById, type CipherSuite } from './suites.js';
import { loadServerCertificate, loadTrustAnchors } from './x509.js';
import { verifyCertificateChain } from './x509.js';
import { SessionCache, type CachedSession, type SessionCacheOptions } from './session-cache.js';
import type { HandshakeStart, RecordLimitRequest } from './connection.js';
import { MAX_FRAGMENT_LENGTHS, MAX_PLAINTEXT_LENGTH, MIN_RECORD_SIZE_LIMIT } from './constants.js';

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
  /**
   * Session resumption (RFC 5246 §7.3): the cache of resumable sessions - `entries` (default
   * 10 000) and `lifetimeMs` from the full handshake (default 24 h); false: no session ids, no
   * resumption.
   */
  readonly sessionCache?: SessionCacheOptions | false;
  /** The record_size_limit (RFC 8449) we announce to clients that send one: 64..16384, default 16384. */
  readonly recordSizeLimit?: number;
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
  /**
   * RFC 9146 Connection IDs, for clients that ask (connection_id in the ClientHello): the length of
   * the CIDs we hand out (1..255, default 6), 0 to answer with a zero-length CID (we use the
   * client's CID but want none: no address updates), false to ignore the extension.
   */
  readonly connectionIdLength?: number | false;
  readonly onDiagnostic?: (d: DtlsDiagnostic) => void;
}

/** What happened, for logs and tests. Never carries key material. */
export type DtlsDiagnostic =
  | { readonly kind: 'hello_verify_request'; readonly peer: PeerAddressInfo }
  | { readonly kind: 'handshake_started'; readonly peer: PeerAddressInfo; readonly suite: CipherSuite; readonly extendedMasterSecret: boolean; readonly resumed?: boolean }
  | { readonly kind: 'handshake_refused'; readonly peer: PeerAddressInfo; readonly alert: number; readonly reason: string }
  | {
    readonly kind: 'established'; readonly peer: PeerAddressInfo;
    /** The PSK identity, the SPKI DER of the client's raw public key, or its leaf certificate DER (`identityType` says which). */
    readonly identity: Buffer; readonly identityType: 'psk' | 'rpk' | 'x509';
    readonly suite: CipherSuite; readonly extendedMasterSecret: boolean;
    /** An abbreviated handshake (session resumption). */
    readonly resumed: boolean;
  }
  /** The ClientHello carried a session_id that is not resumed (unknown, expired, mismatched, identity refused): a full handshake follows. */
  | { readonly kind: 'resumption_refused'; readonly peer: PeerAddressInfo; readonly reason: string }
  /** Application data above the session's record limit (max_fragment_length / record_size_limit) was not sent. */
  | { readonly kind: 'record_too_large'; readonly peer: PeerAddressInfo; readonly length: number; readonly limit: number }
  | { readonly kind: 'closed'; readonly peer: PeerAddressInfo; readonly reason: CloseReason; readonly wasEstablished: boolean; readonly detail?: string }
  | { readonly kind: 'limit'; readonly peer: PeerAddressInfo; readonly what: 'handshakes' | 'sessions' }
  /** RFC 9146: an authenticated, newest tls12_cid record came from `peer`; the session moved there from `previous`. */
  | { readonly kind: 'peer_moved'; readonly peer: PeerAddressInfo; readonly previous: PeerAddressInfo };

export interface DtlsServerStats {
  datagrams: number;
  recordsDropped: number;
  helloVerifyRequests: number;
  handshakesStarted: number;
  handshakesCompleted: number;
  handshakesFailed: number;
  handshakesRefused: number;
  limited: number;
  /** Abbreviated handshakes completed; ClientHellos with a session_id answered with a full handshake instead. */
  handshakesResumed: number;
  resumptionsRefused: number;
  /** Sessions in the resumption cache. */
  cachedSessions: number;
  /** Sessions moved to a new address by a tls12_cid record (RFC 9146). */
  peerMoves: number;
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
  /** Resumable sessions; undefined when resumption is off. */
  private readonly sessionCache: SessionCache | undefined;
  /** Resumption identity checks running, by peer key: the ClientHello random each is for. */
  private readonly resumeChecks = new Map<string, Buffer>();
  /** RFC 9146: associations by the CID we gave them (hex). */
  private readonly byCid = new Map<string, ServerConnection>();
  private readonly cidLength: number | false;
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
    handshakesResumed: 0, resumptionsRefused: 0,
    handshakesRefused: 0, limited: 0, peerMoves: 0,
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
    this.sessionCache = opts.sessionCache === false ? undefined : new SessionCache(opts.sessionCache ?? {}, now);
    const recordSizeLimit = opts.recordSizeLimit ?? MAX_PLAINTEXT_LENGTH;
    if (!(Number.isInteger(recordSizeLimit) && recordSizeLimit >= MIN_RECORD_SIZE_LIMIT && recordSizeLimit <= MAX_PLAINTEXT_LENGTH)) {
      throw new RangeError(`recordSizeLimit: ${MIN_RECORD_SIZE_LIMIT}..${MAX_PLAINTEXT_LENGTH}`);
    }
    this.config = {
      sessionCache: this.sessionCache,
      recordSizeLimit,
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
    const cidLength = opts.connectionIdLength ?? 6;
    if (cidLength !== false && !(Number.isInteger(cidLength) && cidLength >= 0 && cidLength <= 255)) throw new RangeError('connectionIdLength: 0..255 or false');
    this.cidLength = cidLength;
    this.cookies = new CookieJar({ rotationMs: opts.cookieRotationMs, now });
    const sweepMs = opts.sweepIntervalMs ?? Math.min(10_000, Math.max(10, Math.min(handshakeTimeoutMs, this.idleTimeoutMs) / 4));
    this.sweepTimer = setInterval(() => this.sweep(), sweepMs);
    this.sweepTimer.unref();
  }

  stats(): DtlsServerStats {
    return { ...this.counters, handshaking: this.handshaking, sessions: this.conns.size - this.handshaking, cachedSessions: this.sessionCache?.size ?? 0 };
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

  /**
   * The largest application data (one record's plaintext) the session with (address, port) takes:
   * 2^14 unless max_fragment_length / record_size_limit lowered it; undefined without a session.
   * A CoAP layer needs messages (block size + header) within it.
   */
  recordLimit(address: string, port: number): number | undefined {
    return this.session(address, port)?.maxPlaintext;
  }

  handleDatagram(datagram: Buffer, from: PeerAddressInfo): void {
    if (this.isClosed) return;
    this.counters.datagrams++;
    const { records, dropped } = parseDatagram(datagram, this.cidLength || 0);
    this.counters.recordsDropped += dropped;
    const key = peerKeyOf(from.address, from.port);
    for (const rec of records) {
      if (rec.cid !== undefined) {
        // RFC 9146 §6: found by CID, whatever the address; the association decides whether it may move.
        const byCid = this.byCid.get(rec.cid.toString('hex'));
        if (byCid === undefined) this.counters.recordsDropped++;
        else byCid.handleRecord(rec, from);
        continue;
      }
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
    this.resumeChecks.clear();
    this.sessionCache?.clear();
    for (const c of [...this.conns.values()]) c.close('shutdown', undefined, true);
    this.isClosed = true;
  }

  // ---- ClientHello ---------------------------------------------------------------------------

  /** `verdict`: set when re-entered after the asynchronous resumption check (the session to resume, or none). */
  private onClientHello(rec: DtlsRecord, frags: HandshakeFragment[], from: PeerAddressInfo, key: string, verdict?: { session: CachedSession | undefined }): void {
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
      this.refuseHello(rec, from, refusal.alert, refusal.reason);
      return;
    }
    const limits = recordLimitRequest(ch);
    if ('alert' in limits) {
      this.refuseHello(rec, from, limits.alert, limits.reason);
      return;
    }
    let resume: CachedSession | undefined;
    if (verdict !== undefined) {
      // The entry may have left the cache (and been zeroed) during the check.
      resume = verdict.session !== undefined && this.sessionCache?.get(verdict.session.id) === verdict.session ? verdict.session : undefined;
    } else {
      const candidate = this.resumptionCandidate(ch, from);
      if (candidate !== undefined) {
        this.checkResumption(candidate, rec, from, key, ch.random);
        return;
      }
    }
    const replacing = existing !== undefined;
    const handshakesAfter = this.handshaking + 1 - (existing !== undefined && !existing.established ? 1 : 0);
    if (handshakesAfter > this.maxHandshakes || (!replacing && this.conns.size >= this.maxSessions)) {
      this.counters.limited++;
      this.diag({ kind: 'limit', peer: from, what: handshakesAfter > this.maxHandshakes ? 'handshakes' : 'sessions' });
      return;
    }
    existing?.close('replaced');
    if (verdict === undefined) this.resumeChecks.delete(key); // this newer ClientHello supersedes a running resumption check
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
      ...(resume !== undefined ? this.resumeStart(resume, ch) : {}),
      recordLimit: limits.request,
      ...this.connectionIdsFor(ch),
    });
    this.conns.set(key, conn);
    if (conn.connectionId !== undefined && conn.connectionId.own.length > 0) this.byCid.set(conn.connectionId.own.toString('hex'), conn);
    this.handshaking++;
    this.counters.handshakesStarted++;
    this.diag({ kind: 'handshake_started', peer: conn.peer, suite: conn.suite, extendedMasterSecret: refusal.ems, resumed: conn.resumed });
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
    const cidExt = this.cidLength === false ? undefined : findExtension(ch.extensions, ExtensionType.connectionId);
    if (cidExt !== undefined && parseConnectionId(cidExt.data) === undefined) return { alert: AlertDescription.decodeError, reason: 'malformed connection_id extension' };
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

  /**
   * RFC 9146 §3: when the client sent connection_id (checked well-formed by checkHello), its CID and
   * a fresh one of ours, unused by any other association (after a few unlucky draws with very
   * short CIDs: a zero-length one).
   */
  private connectionIdsFor(ch: ClientHello): { connectionId?: ConnectionIds } {
    if (this.cidLength === false) return {};
    const ext = findExtension(ch.extensions, ExtensionType.connectionId);
    const peer = ext === undefined ? undefined : parseConnectionId(ext.data);
    if (peer === undefined) return {};
    let own = Buffer.alloc(0);
    for (let i = 0; i < 8 && this.cidLength > 0; i++) {
      const c = randomBytes(this.cidLength);
      if (!this.byCid.has(c.toString('hex'))) {
        own = c;
        break;
      }
    }
    return { connectionId: { own, peer } }; // the connection keeps its own copies (ownedCopy)
  }

  /** A fatal alert for a ClientHello we will not answer, sent statelessly (epoch 0, the ClientHello's record number). */
  private refuseHello(rec: DtlsRecord, from: PeerAddressInfo, alert: number, reason: string): void {
    this.counters.handshakesRefused++;
    this.diag({ kind: 'handshake_refused', peer: from, alert, reason });
    this.io.send(serializeRecord({
      type: ContentType.alert, version: DTLS_1_2, epoch: 0, seq: rec.seq,
      fragment: serializeAlert({ level: AlertLevel.fatal, description: alert }),
    }), from);
  }

  // ---- resumption ------------------------------------------------------------------------------

  /**
   * The cached session this ClientHello may resume (the identity check still to come): known and
   * live, its suite offered (and still configured), extended_master_secret exactly as the session
   * had it (RFC 7627 §5.3), and for ECDHE_ECDSA the same certificate types. Otherwise undefined
   * (a full handshake), with a diagnostic when the client did ask for a session.
   */
  private resumptionCandidate(ch: ClientHello, from: PeerAddressInfo): CachedSession | undefined {
    if (this.sessionCache === undefined || ch.sessionId.length === 0) return undefined;
    const refuse = (reason: string): undefined => {
      this.counters.resumptionsRefused++;
      this.diag({ kind: 'resumption_refused', peer: from, reason });
      return undefined;
    };
    const s = this.sessionCache.get(ch.sessionId);
    if (s === undefined) return refuse('unknown or expired session');
    if (!ch.cipherSuites.includes(s.suite.id) || !this.suites.includes(s.suite)) return refuse(`the session's cipher suite ${s.suite.name} is not offered`);
    const ems = findExtension(ch.extensions, ExtensionType.extendedMasterSecret) !== undefined;
    if (ems !== s.extendedMasterSecret) {
      return refuse(s.extendedMasterSecret
        ? 'the session used extended_master_secret and the ClientHello does not offer it (RFC 7627 §5.3)'
        : 'the session was made without extended_master_secret and the ClientHello offers it (RFC 7627 §5.3)');
    }
    if (s.suite.keyExchange === 'ecdhe_ecdsa') {
      const ecc = checkEcdheEcdsa(ch, this.certificateTypesSupported);
      if (!ecc.ok || ecc.certificateTypes.clientCertificateType !== s.clientCertificateType || ecc.certificateTypes.serverCertificateType !== s.serverCertificateType) {
        return refuse('the ClientHello does not negotiate the session\'s certificate types');
      }
    }
    return s;
  }

  /** Asks the lookups whether the session's identity is still accepted, then handles the ClientHello again with the verdict. */
  private checkResumption(session: CachedSession, rec: DtlsRecord, from: PeerAddressInfo, key: string, random: Buffer): void {
    const running = this.resumeChecks.get(key);
    if (running !== undefined && running.equals(random)) return; // a repeated ClientHello: the check is under way
    if (this.resumeChecks.size >= this.maxHandshakes) {
      this.counters.limited++;
      this.diag({ kind: 'limit', peer: from, what: 'handshakes' });
      return;
    }
    const token = Buffer.from(random);
    this.resumeChecks.set(key, token);
    const hello: DtlsRecord = { ...rec, fragment: Buffer.from(rec.fragment) };
    const peer: PeerAddressInfo = { address: from.address, port: from.port, family: from.family };
    this.identityStillAccepted(session, peer).catch(() => false).then((accepted) => {
      if (this.resumeChecks.get(key) !== token) return; // superseded, or the server closed
      this.resumeChecks.delete(key);
      if (!accepted) {
        this.sessionCache?.remove(session.id);
        this.counters.resumptionsRefused++;
        this.diag({ kind: 'resumption_refused', peer, reason: 'the session\'s identity is no longer accepted' });
      }
      const frags = parseHandshakeFragments(hello.fragment);
      if (frags !== undefined) this.onClientHello(hello, frags, peer, key, { session: accepted ? session : undefined });
    });
  }

  /** PSK: pskLookup still gives the same key; RPK: rpkLookup still accepts the key; X.509: the chain still verifies (validity included) and x509Lookup accepts it. */
  private async identityStillAccepted(s: CachedSession, peer: PeerAddressInfo): Promise<boolean> {
    const c = this.config;
    const identity = Buffer.from(s.identity);
    if (s.suite.keyExchange === 'psk') {
      if (c.pskLookup === undefined) return false;
      const psk = await c.pskLookup(identity, peer);
      return psk !== undefined && psk.length > 0 && this.sessionCache !== undefined && this.sessionCache.samePsk(s, psk);
    }
    if (s.clientCertificateType === CertificateType.x509) {
      if (c.x509Lookup === undefined || c.trustAnchors === undefined || s.chain === undefined) return false;
      if (!verifyCertificateChain(s.chain, c.trustAnchors, c.certificateClock()).ok) return false;
      return (await c.x509Lookup(identity, peer)) === true;
    }
    if (c.rpkLookup === undefined) return false;
    return (await c.rpkLookup(identity, peer)) === true;
  }

  /** The HandshakeStart fields of a resumption: the session's suite and, for ECDHE_ECDSA, its certificate types as this ClientHello negotiates them. */
  private resumeStart(s: CachedSession, ch: ClientHello): Partial<HandshakeStart> {
    if (s.suite.keyExchange === 'psk') return { resume: s, suite: s.suite };
    const ecc = checkEcdheEcdsa(ch, this.certificateTypesSupported);
    return { resume: s, suite: s.suite, ...(ecc.ok ? { echoPointFormats: ecc.echoPointFormats, ...ecc.certificateTypes } : {}) };
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
      if (conn.resumed) this.counters.handshakesResumed++;
      this.diag({
        kind: 'established', peer: conn.peer, identity: Buffer.from(conn.identity!), identityType: conn.peerIdentity!.type,
        suite: conn.suite, extendedMasterSecret: conn.extendedMasterSecret, resumed: conn.resumed,
      });
    },
    closed: (conn, reason, detail) => {
      const key = peerKeyOf(conn.peer.address, conn.peer.port);
      const wasEstablished = conn.completed;
      if (this.conns.get(key) === conn) this.conns.delete(key);
      const cidKey = conn.connectionId?.own.toString('hex');
      if (cidKey !== undefined && this.byCid.get(cidKey) === conn) this.byCid.delete(cidKey);
      if (!wasEstablished) {
        this.handshaking--;
        this.counters.handshakesFailed++;
      }
      this.diag({ kind: 'closed', peer: conn.peer, reason, wasEstablished, ...(detail !== undefined ? { detail } : {}) });
    },
    moved: (conn, previous) => this.onMoved(conn, previous),
    oversized: (conn, length, limit) => this.diag({ kind: 'record_too_large', peer: conn.peer, length, limit }),
  };

  /** RFC 9146 §6: re-key a moved association; whatever held the new address before (a stale session, a handshake) ends. */
  private onMoved(conn: ServerConnection, previous: PeerAddressInfo): void {
    const oldKey = peerKeyOf(previous.address, previous.port);
    if (this.conns.get(oldKey) === conn) this.conns.delete(oldKey);
    const newKey = peerKeyOf(conn.peer.address, conn.peer.port);
    const other = this.conns.get(newKey);
    if (other !== undefined && other !== conn) other.close('replaced');
    this.conns.set(newKey, conn);
    this.counters.peerMoves++;
    this.diag({ kind: 'peer_moved', peer: conn.peer, previous });
  }

  private sweep(): void {
    const now = this.config.now();
    this.sessionCache?.sweep();
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

/**
 * The record limit the client asks for: record_size_limit (RFC 8449; a value below 64 →
 * illegal_parameter) wins over max_fragment_length, which is then ignored (RFC 8449 §5);
 * max_fragment_length must be one of the codes 1..4 (RFC 6066 §4: else illegal_parameter).
 */
function recordLimitRequest(ch: ClientHello): { request: RecordLimitRequest | undefined } | { alert: number; reason: string } {
  const rsl = findExtension(ch.extensions, ExtensionType.recordSizeLimit);
  if (rsl !== undefined) {
    if (rsl.data.length !== 2) return { alert: AlertDescription.decodeError, reason: 'malformed record_size_limit extension' };
    const limit = rsl.data.readUInt16BE(0);
    if (limit < MIN_RECORD_SIZE_LIMIT) return { alert: AlertDescription.illegalParameter, reason: `record_size_limit ${limit} is below ${MIN_RECORD_SIZE_LIMIT} (RFC 8449 §4)` };
    return { request: { kind: 'record_size_limit', limit } };
  }
  const mfl = findExtension(ch.extensions, ExtensionType.maxFragmentLength);
  if (mfl === undefined) return { request: undefined };
  if (mfl.data.length !== 1) return { alert: AlertDescription.decodeError, reason: 'malformed max_fragment_length extension' };
  const code = mfl.data[0]!;
  if (MAX_FRAGMENT_LENGTHS[code] === undefined) return { alert: AlertDescription.illegalParameter, reason: `max_fragment_length code ${code} (RFC 6066 §4: 1..4)` };
  return { request: { kind: 'max_fragment_length', code } };
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
 * client's list that we support (for our own, a raw public key to a raw-public-key client that
 * lists it anywhere); an absent extension means X.509. None → unsupported_certificate.
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
  // The client's type first. For ours the client's order counts, except that a client which
  // authenticates with a raw public key gets ours as a raw public key when it lists that at all:
  // GnuTLS lists X.509 first even in raw-key mode, where it has no trust anchor for a certificate.
  for (const [type, name] of [[ExtensionType.clientCertificateType, 'client'], [ExtensionType.serverCertificateType, 'server']] as const) {
    const ext = findExtension(ch.extensions, type);
    const offered = ext === undefined ? [CertificateType.x509] : parseU8List(ext.data) ?? [];
    const usable = offered.filter((t) => supported[name].includes(t));
    const rpkClient = name === 'server' && chosen.client.type === CertificateType.rawPublicKey && usable.includes(CertificateType.rawPublicKey);
    const pick = rpkClient ? CertificateType.rawPublicKey : usable[0];
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
