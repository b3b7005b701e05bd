/**
 * One peer's DTLS association on the server: the PSK or ECDHE_ECDSA handshake after a valid
 * cookie, then the protected session. Created by server.ts once a ClientHello carried a valid
 * cookie (before that nothing is kept per peer).
 *
 * Handshake (RFC 6347 §4.2, RFC 4279): send flight 4 (ServerHello, ServerKeyExchange only when
 * an identity hint is configured, ServerHelloDone) and retransmit it on the timer until flight 5
 * (ClientKeyExchange, ChangeCipherSpec, Finished) is complete. The PSK is looked up
 * asynchronously by identity; records arriving meanwhile are queued (bounded). Unknown identity
 * → fatal unknown_psk_identity; a Finished that does not verify → fatal decrypt_error; a record
 * that fails authentication is dropped silently (RFC 6347 §4.1.2.7), as are replays, unknown
 * epochs and malformed records. Then flight 6 (ChangeCipherSpec, Finished in epoch 1) is sent
 * and kept: it is re-sent (rate-limited) whenever the client repeats flight 5, until the client's
 * first application data shows it arrived.
 *
 * Session: application data both ways in epoch 1; close_notify is answered with close_notify and
 * ends the association, a fatal alert ends it; a ClientHello inside the session (renegotiation)
 * is refused with a no_renegotiation warning. `close()` releases everything (timers, buffers,
 * keys); the owner (server.ts) also ends it on idle and handshake timeouts. Once established, a
 * session holds only what it needs (record keys, replay window, identity, session id, CIDs, and
 * flight 6 until the client's first data), each in a buffer of its own rather than a slice of
 * Node's 8 KiB Buffer pool (ownedCopy): ~5 KB per open session in all.
 *
 * ECDHE_ECDSA with raw public keys (RFC 8422, RFC 7250; mutual authentication, as LwM2M requires):
 * flight 4 is ServerHello (echoing client/server_certificate_type = RawPublicKey and
 * ec_point_formats), Certificate (our SPKI), ServerKeyExchange (ephemeral P-256 point signed with
 * ECDSA-SHA256 over client_random ‖ server_random ‖ params), CertificateRequest (ecdsa_sign,
 * ecdsa_secp256r1_sha256), ServerHelloDone. Flight 5 must be Certificate (the client's SPKI; none
 * → handshake_failure, not a P-256 key → bad_certificate), ClientKeyExchange (its ephemeral
 * point; invalid → illegal_parameter), CertificateVerify (ECDSA-SHA256 over the transcript so
 * far; wrong → decrypt_error), then CCS and Finished. Only after the signature verified is the
 * key looked up (`rpkLookup`, asynchronous like the PSK lookup); refused → certificate_unknown.
 *
 * X.509 (RFC 5246 §7.4.2, §7.4.6; chosen per direction by the certificate-type extensions, X.509
 * when the client sends none - server.ts negotiates): our Certificate is the configured chain
 * (the ServerHello echoes a certificate-type extension only when the client sent it), and the
 * client's Certificate is a chain that must verify against the trust anchors (x509.ts: unknown_ca,
 * certificate_expired, bad_certificate, unsupported_certificate; an empty one → handshake_failure).
 * CertificateVerify is checked with the leaf's key, then `x509Lookup(leaf)` decides (false →
 * certificate_unknown).
 *
 * Connection ID (RFC 9146): when the client sent connection_id, server.ts gives this connection
 * `connectionId = { own, peer }`; the ServerHello echoes `own` (the CID we receive, empty = we
 * want none). In epoch ≥ 1 records to the client use the tls12_cid format (type 25, inner
 * plaintext, CID additional data) when `peer` is non-empty, and records from it must use it when
 * `own` is non-empty (others are dropped). A tls12_cid record that authenticates, is newer than
 * every record so far and comes from another address moves the session there (`peer` changes and
 * the host is told, so it can re-key its maps): the NAT-rebinding case of RFC 9146 §6.
 *
 * Session resumption (RFC 5246 §7.3): a full handshake's ServerHello carries a fresh session_id
 * (when the server has a session cache) and the completed session is cached (session-cache.ts).
 * Given a cached session (`HandshakeStart.resume`, checked by server.ts), the connection runs the
 * abbreviated handshake instead: ServerHello with the same id + ChangeCipherSpec + Finished, keys
 * from the cached master secret and the new randoms, retransmitted until the client's
 * ChangeCipherSpec + Finished arrive; nothing is kept afterwards (the client sent the last flight).
 * A fatal alert, or a resumption that times out, removes the cache entry (RFC 5246 §7.2.2).
 *
 * Record limits: with max_fragment_length (RFC 6066) or record_size_limit (RFC 8449) negotiated,
 * every record we send - handshake fragments included - has at most `maxPlaintext` bytes of
 * plaintext, flights go in datagrams of one full record at most, and application data above the
 * limit is refused (RecordSizeLimitError). Our own record_size_limit bounds what we accept
 * (record_overflow above it).
 */
import { randomBytes, timingSafeEqual, type KeyObject } from 'node:crypto';
import { CHANGE_CIPHER_SPEC, isChangeCipherSpec, isCloseNotify, isFatal, parseAlert, serializeAlert } from './alert.js';
import {
  AlertDescription, AlertLevel, CertificateType, ClientCertificateTypeEcdsaSign, ContentType, DTLS_1_2, ECDSA_SHA256, ECPointFormat,
  ExtensionType, HandshakeType, MAX_PLAINTEXT_LENGTH, MAX_SEQUENCE_NUMBER, NamedGroup,
} from './constants.js';
import { MAX_FRAGMENT_LENGTHS } from './constants.js';
import { Flight, RetransmitTimer, type FlightEntry, type RecordWriter, type RetransmitOptions } from './flight.js';
import { fullMessage, parseHandshakeFragments, type HandshakeMessage } from './handshake.js';
import {
  EMPTY_RENEGOTIATION_INFO, parseCertificateVerify, parseEcdhClientKeyExchange, parseFinished, parsePskClientKeyExchange,
  parseCertificateList, parseRawPublicKeyCertificate, serializeCertificateList, serializeCertificateRequest, serializeEcdheServerKeyExchange, serializeEcdhParams,
  serializePskServerKeyExchange, serializeRawPublicKeyCertificate, serializeServerHello, type ClientHello, type Extension,
  serializeConnectionId,
} from './messages.js';
import { extendedMasterSecret, keyBlock, masterSecret, pskPremasterSecret, sha256, verifyData } from './prf.js';
import { ecdsaSign, ecdsaVerify, EphemeralEcdh, parseP256Spki, type ServerKeyMaterial } from './ecc.js';
import { createProtection, type RecordProtection } from './protection.js';
import { HandshakeReassembler, type ReassemblyLimits } from './reassembly.js';
import { innerPlaintext, parseInnerPlaintext, serializeRecord, type DtlsRecord } from './record.js';
import { ReplayWindow } from './replay.js';
import type { CipherSuite } from './suites.js';
import { verifyCertificateChain, type TrustAnchors } from './x509.js';
import { RECORD_HEADER_LENGTH } from './record.js';
import type { CachedSession, SessionCache } from './session-cache.js';

export interface PeerAddressInfo {
  readonly address: string;
  readonly port: number;
  readonly family: string;
}

/** Finds the PSK for an identity; undefined = unknown identity. Must not throw for "unknown". */
export type PskLookup = (identity: Buffer, peer: PeerAddressInfo) => Promise<Uint8Array | undefined>;

/**
 * Decides whether a client's raw public key (canonical SubjectPublicKeyInfo DER, uncompressed
 * point) may connect; called only after the client proved it holds the private key. false →
 * certificate_unknown.
 */
export type RpkLookup = (spkiDer: Buffer, peer: PeerAddressInfo) => Promise<boolean>;

/**
 * Decides whether a client's X.509 certificate (the leaf, DER) may connect - whether that device
 * is enrolled; called only after the chain verified against the trust anchors and the client
 * proved it holds the leaf's private key. false → certificate_unknown.
 */
export type X509Lookup = (leafDer: Buffer, peer: PeerAddressInfo) => Promise<boolean>;

/** Who the client proved to be (structurally a `PeerIdentity` of src/coap/endpoint.ts). */
export type DtlsPeerIdentity =
  | { readonly type: 'psk'; readonly identity: Buffer }
  | { readonly type: 'rpk'; readonly publicKey: Buffer }
  | { readonly type: 'x509'; readonly certificate: Buffer /* leaf, DER */; readonly chain?: readonly Buffer[] };

export interface ConnectionConfig {
  /** Undefined: no PSK suites are negotiated. */
  readonly pskLookup: PskLookup | undefined;
  /** ECDHE_ECDSA needs serverKey and a way to authenticate clients: rpkLookup (raw public keys) and/or x509Lookup with trustAnchors. */
  readonly rpkLookup: RpkLookup | undefined;
  readonly serverKey: ServerKeyMaterial | undefined;
  readonly x509Lookup: X509Lookup | undefined;
  readonly trustAnchors: TrustAnchors | undefined;
  /** Our X.509 chain (DER, leaf first; the leaf certifies serverKey); undefined: we only send a raw public key. */
  readonly serverCertificate: readonly Buffer[] | undefined;
  readonly pskIdentityHint: Buffer | undefined;
  readonly retransmit: RetransmitOptions;
  readonly handshakeTimeoutMs: number;
  /** Largest datagram sent. */
  readonly maxDatagram: number;
  readonly replayWindow: number;
  readonly reassembly: ReassemblyLimits;
  /** Least time between two re-sends triggered by the peer repeating its flight. */
  readonly minResendGapMs: number;
  /** Records held while the PSK lookup runs, and next-epoch records held before ChangeCipherSpec. */
  readonly maxQueuedRecords: number;
  readonly now: () => number;
  /** Wall clock (ms since the epoch) for certificate validity periods. */
  readonly certificateClock: () => number;
  /** Resumable sessions (RFC 5246 §7.3); undefined: resumption off, ServerHellos carry an empty session_id. */
  readonly sessionCache: SessionCache | undefined;
  /** The record_size_limit we announce (RFC 8449): the largest record plaintext we accept once it is negotiated. */
  readonly recordSizeLimit: number;
}

export type CloseReason =
  | 'close_notify' // the peer closed
  | 'alert_received' // the peer sent a fatal alert
  | 'alert_sent' // we failed the handshake or session with a fatal alert
  | 'handshake_timeout'
  | 'idle'
  | 'replaced' // a new handshake from the same address and port
  | 'shutdown'
  | 'sequence_exhausted';

export interface ConnectionHost {
  output(conn: ServerConnection, datagram: Buffer): void;
  data(conn: ServerConnection, plaintext: Buffer): void;
  established(conn: ServerConnection): void;
  /** Application data above the client's record limit (RFC 6066 / RFC 8449) was refused (not sent). */
  oversized?(conn: ServerConnection, length: number, limit: number): void;
  closed(conn: ServerConnection, reason: CloseReason, detail: string | undefined): void;
  /** RFC 9146: an authenticated, newest tls12_cid record came from a new address; `conn.peer` is already the new one. */
  moved(conn: ServerConnection, previous: PeerAddressInfo): void;
}

/** RFC 9146 CIDs of one association: `own` we receive (and echoed in ServerHello), `peer` the client's, put in records we send. Empty = none that way. */
export interface ConnectionIds {
  readonly own: Buffer;
  readonly peer: Buffer;
}

export interface HandshakeStart {
  readonly clientHello: ClientHello;
  /** The ClientHello (the one with the cookie) as an unfragmented handshake message: the transcript's first entry. */
  readonly clientHelloMessage: Buffer;
  readonly messageSeq: number;
  /** Record sequence number of that ClientHello: our epoch-0 numbering continues from it. */
  readonly recordSeq: number;
  readonly suite: CipherSuite;
  readonly extendedMasterSecret: boolean;
  readonly secureRenegotiation: boolean;
  /** ECDHE: the client sent ec_point_formats, so ServerHello echoes it (RFC 8422 §5.2). */
  readonly echoPointFormats?: boolean;
  /**
   * ECDHE: the certificate types negotiated (CertificateType; default RawPublicKey both ways), and
   * whether the client sent each extension - the ServerHello echoes only those (RFC 7250 §4.2).
   */
  readonly clientCertificateType?: number;
  readonly serverCertificateType?: number;
  readonly echoClientCertificateType?: boolean;
  readonly echoServerCertificateType?: boolean;
  /** RFC 9146: present when the client sent connection_id (the ServerHello then echoes `own`). */
  readonly connectionId?: ConnectionIds;
  /**
   * Resumption (RFC 5246 §7.3): the cached session this ClientHello resumes with the abbreviated
   * handshake - server.ts checked the suite, EMS and the identity; `suite`, `extendedMasterSecret`
   * and the certificate types given here are the session's.
   */
  readonly resume?: CachedSession;
  /** RFC 6066 max_fragment_length / RFC 8449 record_size_limit as the client sent it (validated by server.ts). */
  readonly recordLimit?: RecordLimitRequest;
}

/** What the client asked for; when both extensions came, server.ts keeps record_size_limit (RFC 8449 §5). */
export type RecordLimitRequest =
  | { readonly kind: 'max_fragment_length'; /** 1..4 = 2^9..2^12 */ readonly code: number }
  | { readonly kind: 'record_size_limit'; readonly limit: number };

/** Application data longer than the session's record limit: it is not sent (DTLS cannot split a datagram-based message). */
export class RecordSizeLimitError extends RangeError {
  constructor(readonly length: number, readonly limit: number) {
    super(`application data of ${length} bytes exceeds the record limit of ${limit} bytes for this session`);
    this.name = 'RecordSizeLimitError';
  }
}

/** Largest protection expansion of our suites (AES-CBC-SHA256: IV 16 + MAC 32 + padding ≤ 16). */
const MAX_RECORD_EXPANSION = 64;

export type ConnectionState =
  | 'awaiting_certificate' // ECDHE_ECDSA: the client's Certificate comes first in flight 5
  | 'awaiting_key_exchange'
  | 'awaiting_certificate_verify'
  | 'psk_lookup'
  | 'rpk_lookup'
  | 'x509_lookup'
  | 'awaiting_ccs'
  | 'awaiting_finished'
  | 'established'
  | 'closed';

export class ServerConnection {
  state: ConnectionState = 'awaiting_key_exchange';
  readonly createdAt: number;
  /** Last time an authenticated record (or, during the handshake, any accepted record) arrived. */
  lastActivity: number;
  /**
   * The PSK identity the client used (set at ClientKeyExchange), or with ECDHE_ECDSA the canonical
   * SPKI DER of its raw public key (set at Certificate); authenticated once established.
   */
  identity: Buffer | undefined;
  /** X.509: the client's whole chain as it sent it (leaf first, copies); set at Certificate. */
  certificateChain: Buffer[] | undefined;
  /** True once the handshake completed (stays true after close). */
  completed = false;
  readonly suite: CipherSuite;
  readonly extendedMasterSecret: boolean;
  /** The handshake's randoms; dropped once it completes (like everything only the handshake needs). */
  private clientRandom: Buffer | undefined;
  private serverRandom: Buffer | undefined = randomBytes(32);

  private readEpoch = 0;
  private readProtection: RecordProtection | undefined;
  private pendingRead: RecordProtection | undefined;
  private pendingWrite: RecordProtection | undefined;
  private writeEpoch = 0;
  private readonly writeProtections: (RecordProtection | undefined)[] = [undefined];
  private readonly writeSeq: number[];
  private readonly windows = new Map<number, ReplayWindow>();
  /** Until the handshake completes; afterwards only `peerNextSeq` (the client's next message_seq) is kept. */
  private reassembler: HandshakeReassembler | undefined;
  private peerNextSeq = 0;
  private transcript: Buffer[] = [];
  private master: Buffer | undefined;
  private serverSeq: number;
  private flight: Flight | undefined;
  private readonly timer: RetransmitTimer;
  private queue: DtlsRecord[] = [];
  private nextEpoch: DtlsRecord[] = [];
  private lastResend = Number.NEGATIVE_INFINITY;
  private peerSentData = false;
  /** A ChangeCipherSpec that overtook the ClientKeyExchange (reordering): applied once the keys exist. */
  private earlyCcs = false;
  private clientHelloMessage: Buffer | undefined;
  private readonly secureRenegotiation: boolean;
  private readonly echoPointFormats: boolean;
  /** ECDHE: our ephemeral key (until ClientKeyExchange) and the client's public key (until CertificateVerify). */
  private ecdh: EphemeralEcdh | undefined;
  private clientKey: KeyObject | undefined;
  readonly clientCertificateType: number;
  readonly serverCertificateType: number;
  private readonly echoClientCertificateType: boolean;
  private readonly echoServerCertificateType: boolean;
  /** RFC 9146 CIDs; undefined when the client did not ask for the extension. */
  readonly connectionId: ConnectionIds | undefined;
  /** The session_id in our ServerHello (empty: not resumable); a resumed session keeps its original one. */
  readonly sessionId: Buffer;
  /** True when this is an abbreviated handshake / a resumed session. */
  readonly resumed: boolean;
  /**
   * Largest record plaintext we send to this client: 2^14, or what max_fragment_length (RFC 6066)
   * or record_size_limit (RFC 8449) negotiated. Application data (one CoAP message per record) must
   * fit: the CoAP layer needs a block size below it.
   */
  readonly maxPlaintext: number;
  /** Largest record plaintext we accept (our record_size_limit when negotiated). */
  private readonly receiveLimit: number;
  private recordLimitExtension: Extension | undefined;
  /** Datagram size for our flights: with a small record limit, one full record at most (small clients have small receive buffers). */
  private readonly datagramLimit: number;
  /** PSK: the cache's check value of the key, kept from the lookup until the session is cached. */
  private pskCheck: Buffer | undefined;

  constructor(
    /** The client's address; changes when a tls12_cid record moves the session (RFC 9146 §6). */
    public peer: PeerAddressInfo,
    private readonly config: ConnectionConfig,
    private readonly host: ConnectionHost,
    hs: HandshakeStart,
  ) {
    this.createdAt = config.now();
    this.lastActivity = this.createdAt;
    this.suite = hs.suite;
    this.extendedMasterSecret = hs.extendedMasterSecret;
    this.clientRandom = Buffer.from(hs.clientHello.random);
    // Keep copies only: the ClientHello's fields are views into the datagram.
    this.clientHelloMessage = Buffer.from(hs.clientHelloMessage);
    this.secureRenegotiation = hs.secureRenegotiation;
    this.echoPointFormats = hs.echoPointFormats ?? false;
    this.clientCertificateType = hs.clientCertificateType ?? CertificateType.rawPublicKey;
    this.serverCertificateType = hs.serverCertificateType ?? CertificateType.rawPublicKey;
    this.echoClientCertificateType = hs.echoClientCertificateType ?? true;
    this.echoServerCertificateType = hs.echoServerCertificateType ?? true;
    // What the session keeps for its whole life is copied into buffers of its own (ownedCopy): a
    // small Buffer.from() copy is a slice of a shared 8 KiB pool slab and would keep all of it alive.
    this.connectionId = hs.connectionId === undefined ? undefined : { own: ownedCopy(hs.connectionId.own), peer: ownedCopy(hs.connectionId.peer) };
    this.resumed = hs.resume !== undefined;
    this.sessionId = hs.resume !== undefined ? ownedCopy(hs.resume.id) : config.sessionCache?.newId() ?? Buffer.alloc(0);
    if (hs.resume !== undefined) {
      // Copies: the cache zeroes its own when the entry goes.
      this.master = ownedCopy(hs.resume.masterSecret);
      this.identity = ownedCopy(hs.resume.identity);
      this.certificateChain = hs.resume.chain?.map((c) => ownedCopy(c));
    }
    const limits = recordLimits(hs.recordLimit, config.recordSizeLimit);
    this.maxPlaintext = limits.send;
    this.receiveLimit = limits.receive;
    this.recordLimitExtension = limits.extension;
    const cidBytes = this.connectionId !== undefined && this.connectionId.peer.length > 0 ? this.connectionId.peer.length + 1 : 0;
    this.datagramLimit = limits.send < MAX_PLAINTEXT_LENGTH
      ? Math.min(config.maxDatagram, limits.send + RECORD_HEADER_LENGTH + MAX_RECORD_EXPANSION + cidBytes)
      : config.maxDatagram;
    if (this.suite.keyExchange === 'ecdhe_ecdsa') {
      if (config.serverKey === undefined) throw new RangeError('ECDHE_ECDSA needs serverKey');
      if (this.clientCertificateType === CertificateType.x509 ? config.x509Lookup === undefined || config.trustAnchors === undefined : config.rpkLookup === undefined) {
        throw new RangeError('ECDHE_ECDSA: no way configured to authenticate this client certificate type');
      }
      if (this.serverCertificateType === CertificateType.x509 && config.serverCertificate === undefined) throw new RangeError('no server certificate configured');
      this.state = 'awaiting_certificate';
    } else if (config.pskLookup === undefined) {
      throw new RangeError('a PSK suite needs pskLookup');
    }
    this.writeSeq = [hs.recordSeq];
    this.peerNextSeq = hs.messageSeq + 1;
    this.serverSeq = hs.messageSeq;
    this.reassembler = new HandshakeReassembler(hs.messageSeq + 1, config.reassembly);
    this.windows.set(0, new ReplayWindow(config.replayWindow));
    this.windows.get(0)!.accept(hs.recordSeq);
    this.timer = new RetransmitTimer(config.retransmit, () => this.onTimer());
  }

  /** What the client authenticated as; undefined until established. */
  get peerIdentity(): DtlsPeerIdentity | undefined {
    if (!this.completed || this.identity === undefined) return undefined;
    const bytes = Buffer.from(this.identity);
    if (this.suite.keyExchange === 'psk') return { type: 'psk', identity: bytes };
    if (this.clientCertificateType === CertificateType.x509) {
      return { type: 'x509', certificate: bytes, chain: (this.certificateChain ?? [bytes]).map((c) => Buffer.from(c)) };
    }
    return { type: 'rpk', publicKey: bytes };
  }

  get established(): boolean {
    return this.state === 'established';
  }

  get closed(): boolean {
    return this.state === 'closed';
  }

  /** Sends flight 4 and starts the retransmission timer. */
  start(): void {
    const exts: Extension[] = [];
    if (this.secureRenegotiation) exts.push({ type: ExtensionType.renegotiationInfo, data: EMPTY_RENEGOTIATION_INFO });
    if (this.extendedMasterSecret) exts.push({ type: ExtensionType.extendedMasterSecret, data: Buffer.alloc(0) });
    if (this.connectionId) exts.push(this.connectionIdExtension());
    if (this.suite.keyExchange === 'ecdhe_ecdsa') {
      if (this.echoPointFormats) exts.push({ type: ExtensionType.ecPointFormats, data: Buffer.from([1, ECPointFormat.uncompressed]) });
      // RFC 7250 §4.2: the server's choice, one byte each, only for the extensions the client sent.
      if (this.echoClientCertificateType) exts.push({ type: ExtensionType.clientCertificateType, data: Buffer.from([this.clientCertificateType]) });
      if (this.echoServerCertificateType) exts.push({ type: ExtensionType.serverCertificateType, data: Buffer.from([this.serverCertificateType]) });
    }
    if (this.recordLimitExtension !== undefined) exts.push(this.recordLimitExtension);
    this.recordLimitExtension = undefined;
    if (this.resumed) {
      this.startAbbreviated(exts);
      return;
    }
    const entries: FlightEntry[] = [];
    const add = (msgType: number, body: Buffer): void => {
      const messageSeq = this.serverSeq++;
      entries.push({ kind: 'handshake', epoch: 0, msgType, messageSeq, body });
      this.transcript.push(fullMessage(msgType, messageSeq, body));
    };
    this.transcript.push(this.clientHelloMessage!);
    this.clientHelloMessage = undefined;
    add(HandshakeType.serverHello, serializeServerHello({
      serverVersion: DTLS_1_2, random: this.serverRandom!, sessionId: this.sessionId, cipherSuite: this.suite.id, compressionMethod: 0,
      extensions: exts.length > 0 ? exts : undefined,
    }));
    if (this.suite.keyExchange === 'ecdhe_ecdsa') {
      const key = this.config.serverKey!;
      this.ecdh = new EphemeralEcdh();
      const params = serializeEcdhParams(NamedGroup.secp256r1, this.ecdh.publicPoint);
      add(HandshakeType.certificate, this.serverCertificateType === CertificateType.x509
        ? serializeCertificateList(this.config.serverCertificate!)
        : serializeRawPublicKeyCertificate(key.spki));
      add(HandshakeType.serverKeyExchange, serializeEcdheServerKeyExchange({
        namedCurve: NamedGroup.secp256r1, publicPoint: this.ecdh.publicPoint, signatureAlgorithm: ECDSA_SHA256,
        signature: ecdsaSign(key.privateKey, this.clientRandom!, this.serverRandom!, params),
      }));
      add(HandshakeType.certificateRequest, serializeCertificateRequest({
        certificateTypes: [ClientCertificateTypeEcdsaSign], signatureAlgorithms: [ECDSA_SHA256], certificateAuthorities: Buffer.alloc(0),
      }));
    } else if (this.config.pskIdentityHint !== undefined) {
      add(HandshakeType.serverKeyExchange, serializePskServerKeyExchange(this.config.pskIdentityHint));
    }
    add(HandshakeType.serverHelloDone, Buffer.alloc(0));
    this.flight = new Flight(entries, this.datagramLimit, this.maxPlaintext);
    this.sendFlight();
    this.timer.start();
  }

  /** The ServerHello's connection_id extension (RFC 9146 §3): the CID we want to receive. */
  connectionIdExtension(): Extension {
    return { type: ExtensionType.connectionId, data: serializeConnectionId(this.connectionId!.own) };
  }

  /**
   * RFC 5246 §7.3 abbreviated handshake: ServerHello (the cached session_id), ChangeCipherSpec and
   * Finished in one flight, keys from the cached master secret and the new randoms. The flight is
   * retransmitted until the client's ChangeCipherSpec + Finished arrive (RFC 6347 §4.2.4); the
   * client sends the last flight, so afterwards we keep nothing to retransmit.
   */
  private startAbbreviated(exts: Extension[]): void {
    const hello = serializeServerHello({
      serverVersion: DTLS_1_2, random: this.serverRandom!, sessionId: this.sessionId, cipherSuite: this.suite.id, compressionMethod: 0,
      extensions: exts.length > 0 ? exts : undefined,
    });
    const helloSeq = this.serverSeq++;
    this.transcript.push(this.clientHelloMessage!, fullMessage(HandshakeType.serverHello, helloSeq, hello));
    this.clientHelloMessage = undefined;
    const kb = keyBlock(this.master!, this.clientRandom!, this.serverRandom!, this.suite);
    this.pendingRead = createProtection(this.suite, kb.client);
    this.writeProtections[1] = createProtection(this.suite, kb.server);
    this.writeSeq[1] = 0;
    const finSeq = this.serverSeq++;
    const ours = verifyData(this.master!, 'server', sha256(...this.transcript));
    this.transcript.push(fullMessage(HandshakeType.finished, finSeq, ours));
    this.flight = new Flight([
      { kind: 'handshake', epoch: 0, msgType: HandshakeType.serverHello, messageSeq: helloSeq, body: hello },
      { kind: 'ccs', epoch: 0 },
      { kind: 'handshake', epoch: 1, msgType: HandshakeType.finished, messageSeq: finSeq, body: ours },
    ], this.datagramLimit, this.maxPlaintext);
    this.writeEpoch = 1;
    this.state = 'awaiting_ccs';
    this.sendFlight();
    this.timer.start();
  }

  /** The client's Finished of an abbreviated handshake: covers ClientHello, ServerHello and our Finished. */
  private onResumedFinished(msg: HandshakeMessage): void {
    const received = parseFinished(msg.body);
    const expected = verifyData(this.master!, 'client', sha256(...this.transcript));
    if (received === undefined || !timingSafeEqual(received, expected)) {
      this.fail(AlertDescription.decryptError, 'client Finished does not verify (abbreviated handshake)');
      return;
    }
    this.timer.stop();
    this.flight = undefined;
    this.state = 'established';
    this.completed = true;
    this.handshakeDone();
    this.lastActivity = this.config.now();
    this.host.established(this);
  }

  /**
   * The handshake completed: drop what only it needed (transcript, randoms, master secret - wiped -,
   * reassembler, queued records). A session keeps its keys (in the protections), identity,
   * session id and CIDs, all in buffers of their own; the session cache has its own copies.
   */
  private handshakeDone(): void {
    this.transcript = [];
    this.master?.fill(0);
    this.master = undefined;
    this.pskCheck = undefined;
    this.clientRandom = this.serverRandom = undefined;
    this.clientHelloMessage = undefined;
    this.recordLimitExtension = undefined;
    this.peerNextSeq = this.reassembler?.next ?? this.peerNextSeq;
    this.reassembler = undefined;
    this.queue = [];
    this.nextEpoch = [];
    this.ecdh = undefined;
    this.clientKey = undefined;
    this.pendingRead = this.pendingWrite = undefined;
  }

  /** A completed full handshake goes into the session cache (when there is one) so the client can resume it. */
  private remember(): void {
    const cache = this.config.sessionCache;
    if (cache !== undefined && this.sessionId.length > 0 && this.master !== undefined && this.identity !== undefined) {
      cache.store({
        id: this.sessionId, suite: this.suite, masterSecret: this.master, extendedMasterSecret: this.extendedMasterSecret,
        clientCertificateType: this.clientCertificateType, serverCertificateType: this.serverCertificateType,
        identity: this.identity, chain: this.certificateChain, pskCheck: this.pskCheck,
      });
    }
    this.pskCheck = undefined;
  }

  /** True when this handshake is the one started by a ClientHello with `random`. */
  isHandshakeFor(random: Buffer): boolean {
    return this.state !== 'established' && this.state !== 'closed' && this.clientRandom !== undefined && this.clientRandom.equals(random);
  }

  /** The client repeated its (cookie) ClientHello: it did not get flight 4. */
  clientHelloRepeated(): void {
    if (this.awaitingFlight5) this.resend(false);
  }

  /** Nothing of flight 5 has been processed yet (flight 4 may not have arrived). */
  private get awaitingFlight5(): boolean {
    if (this.resumed) return this.state === 'awaiting_ccs'; // abbreviated: the client's CCS + Finished
    return this.suite.keyExchange === 'psk' ? this.state === 'awaiting_key_exchange' : this.state === 'awaiting_certificate';
  }

  private get lookingUp(): boolean {
    return this.state === 'psk_lookup' || this.state === 'rpk_lookup' || this.state === 'x509_lookup';
  }

  /** Encrypts and sends application data; false when there is no established session. Throws RangeError above 2^14 bytes. */
  sendApplicationData(plaintext: Buffer): boolean {
    if (this.state !== 'established') return false;
    if (plaintext.length > this.maxPlaintext) {
      this.host.oversized?.(this, plaintext.length, this.maxPlaintext);
      throw new RecordSizeLimitError(plaintext.length, this.maxPlaintext);
    }
    const rec = this.writeRecord(ContentType.applicationData, this.writeEpoch, plaintext);
    if (rec) this.host.output(this, rec);
    return rec !== undefined;
  }

  /** Ends the association; with `notify`, a close_notify alert goes out first (established sessions only). */
  close(reason: CloseReason, detail?: string, notify = false): void {
    if (this.state === 'closed') return;
    if (notify && this.state === 'established') this.sendAlert(AlertLevel.warning, AlertDescription.closeNotify);
    this.state = 'closed';
    this.timer.stop();
    this.flight = undefined;
    this.queue = [];
    this.nextEpoch = [];
    this.transcript = [];
    this.reassembler = undefined;
    this.clientRandom = this.serverRandom = undefined;
    this.clientHelloMessage = undefined;
    this.recordLimitExtension = undefined;
    if (this.sessionId.length > 0 && (reason === 'alert_sent' || reason === 'alert_received' || (this.resumed && !this.completed && reason === 'handshake_timeout'))) {
      this.config.sessionCache?.remove(this.sessionId); // RFC 5246 §7.2.2: a fatal alert or failed handshake ends resumability
    }
    this.master?.fill(0);
    this.pskCheck = undefined;
    this.master = undefined;
    this.ecdh = undefined;
    this.clientKey = undefined;
    this.readProtection = this.pendingRead = this.pendingWrite = undefined;
    this.writeProtections.length = 0;
    this.host.closed(this, reason, detail);
  }

  /**
   * Handles one record from this peer (any epoch, any type). `from`: where the datagram came from,
   * when it may differ from `peer` (a tls12_cid record found by its CID).
   */
  handleRecord(rec: DtlsRecord, from?: PeerAddressInfo): void {
    if (this.state === 'closed') return;
    if (this.lookingUp) {
      if (this.queue.length < this.config.maxQueuedRecords) this.queue.push(copyRecord(rec));
      return;
    }
    if (rec.epoch === this.readEpoch + 1 && this.state !== 'established' && this.readProtection === undefined) {
      if (this.nextEpoch.length < this.config.maxQueuedRecords) this.nextEpoch.push(copyRecord(rec));
      return;
    }
    if (rec.epoch < this.readEpoch) {
      this.oldEpochRecord(rec);
      return;
    }
    if (rec.epoch !== this.readEpoch) return;
    if (rec.epoch > 0 && rec.version !== DTLS_1_2) return;
    // RFC 9146 §4: with a CID of ours every protected record carries it (tls12_cid); without one, none does.
    const ownCid = this.connectionId !== undefined && this.connectionId.own.length > 0 ? this.connectionId.own : undefined;
    const cid = rec.type === ContentType.tls12Cid ? rec.cid : undefined;
    if (rec.epoch > 0 && (cid === undefined) !== (ownCid === undefined)) return;
    if (cid !== undefined && (rec.epoch === 0 || !cid.equals(ownCid!))) return;
    const window = this.windows.get(rec.epoch)!;
    if (!window.check(rec.seq)) return;
    let payload = rec.fragment;
    let type = rec.type;
    if (this.readProtection !== undefined) {
      const pt = this.readProtection.decrypt(rec.type, rec.version, rec.epoch, rec.seq, rec.fragment, cid);
      if (pt === undefined) return;
      const inner = cid === undefined ? { type, content: pt } : parseInnerPlaintext(pt);
      if (inner === undefined || inner.content.length > MAX_PLAINTEXT_LENGTH || inner.type === ContentType.tls12Cid) return;
      payload = inner.content;
      type = inner.type;
    }
    if (rec.epoch > 0 && payload.length > this.receiveLimit) {
      // RFC 8449 §4: above the record_size_limit we announced.
      this.fail(AlertDescription.recordOverflow, `record of ${payload.length} bytes above our record_size_limit ${this.receiveLimit}`);
      return;
    }
    const newest = rec.seq > window.highest;
    window.accept(rec.seq);
    if (cid !== undefined && newest && from !== undefined && this.state === 'established' && (from.address !== this.peer.address || from.port !== this.peer.port)) {
      // RFC 9146 §6: authenticated and newer than anything received - follow the client to its new address.
      const previous = this.peer;
      this.peer = { address: from.address, port: from.port, family: from.family };
      this.host.moved(this, previous);
    }
    if (rec.epoch > 0 || this.state !== 'established') this.lastActivity = this.config.now();
    switch (type) {
      case ContentType.handshake:
        this.onHandshake(payload);
        break;
      case ContentType.changeCipherSpec:
        this.onChangeCipherSpec(payload);
        break;
      case ContentType.alert:
        this.onAlert(payload);
        break;
      case ContentType.applicationData:
        if (this.state === 'established' && rec.epoch > 0) {
          if (!this.peerSentData) {
            this.peerSentData = true;
            this.flight = undefined; // flight 6 arrived: no need to keep it
          }
          this.host.data(this, payload);
        }
        break;
    }
  }

  // ---- receiving ---------------------------------------------------------------------------

  private oldEpochRecord(rec: DtlsRecord): void {
    // Epoch-0 records after our ChangeCipherSpec switch: only a repeated flight 5 matters (unauthenticated, so rate-limited).
    if (rec.type === ContentType.handshake && this.state === 'established') this.resend(true);
  }

  private onHandshake(payload: Buffer): void {
    const frags = parseHandshakeFragments(payload);
    if (frags === undefined) return;
    if (this.state === 'established') {
      for (const f of frags) {
        if (f.msgType === HandshakeType.clientHello) {
          this.sendAlert(AlertLevel.warning, AlertDescription.noRenegotiation);
        } else if (f.messageSeq < this.peerNextSeq) {
          this.resend(true);
        }
      }
      return;
    }
    for (const f of frags) {
      if (f.msgType === HandshakeType.clientHello) continue; // handled (statelessly) by the server
      this.reassembler?.add(f);
    }
    this.drainMessages();
  }

  private drainMessages(): void {
    for (;;) {
      if (this.state === 'closed' || this.lookingUp || this.state === 'established') return;
      const msg = this.reassembler?.take();
      if (msg === undefined) return;
      this.onMessage(msg);
    }
  }

  private onMessage(msg: HandshakeMessage): void {
    if (this.suite.keyExchange === 'ecdhe_ecdsa') {
      if (this.onEcdheMessage(msg)) return;
    } else if (this.state === 'awaiting_key_exchange' && msg.msgType === HandshakeType.clientKeyExchange) {
      const identity = parsePskClientKeyExchange(msg.body);
      if (identity === undefined) {
        this.fail(AlertDescription.decodeError, 'malformed ClientKeyExchange');
        return;
      }
      this.identity = ownedCopy(identity);
      this.transcript.push(fullMessage(msg.msgType, msg.messageSeq, msg.body));
      this.lookupPsk(this.identity);
      return;
    }
    if (this.state === 'awaiting_finished' && msg.msgType === HandshakeType.finished) {
      this.onFinished(msg);
      return;
    }
    this.fail(AlertDescription.unexpectedMessage, `unexpected handshake message type ${msg.msgType} in state ${this.state}`);
  }

  /** Flight 5 of ECDHE_ECDSA up to CertificateVerify; false when `msg` is not one of those messages in its place. */
  private onEcdheMessage(msg: HandshakeMessage): boolean {
    const full = (): Buffer => fullMessage(msg.msgType, msg.messageSeq, msg.body);
    if (this.state === 'awaiting_certificate' && msg.msgType === HandshakeType.certificate && this.clientCertificateType === CertificateType.x509) {
      const chain = parseCertificateList(msg.body);
      if (chain === undefined) {
        this.fail(AlertDescription.decodeError, 'malformed Certificate');
        return true;
      }
      const result = verifyCertificateChain(chain, this.config.trustAnchors!, this.config.certificateClock());
      if (!result.ok) {
        this.fail(result.alert, `client certificate refused: ${result.reason}`);
        return true;
      }
      this.certificateChain = chain.map((c) => ownedCopy(c));
      this.identity = this.certificateChain[0]!;
      this.clientKey = result.leafKey;
      this.transcript.push(full());
      this.state = 'awaiting_key_exchange';
      return true;
    }
    if (this.state === 'awaiting_certificate' && msg.msgType === HandshakeType.certificate) {
      const der = parseRawPublicKeyCertificate(msg.body);
      if (der === undefined) {
        this.fail(AlertDescription.decodeError, 'malformed Certificate');
      } else if (der.length === 0) {
        this.fail(AlertDescription.handshakeFailure, 'the client sent no raw public key');
      } else {
        const parsed = parseP256Spki(der);
        if (parsed === undefined) {
          this.fail(AlertDescription.badCertificate, 'the client raw public key is not a P-256 SubjectPublicKeyInfo');
        } else {
          this.identity = ownedCopy(parsed.spki);
          this.clientKey = parsed.key;
          this.transcript.push(full());
          this.state = 'awaiting_key_exchange';
        }
      }
      return true;
    }
    if (this.state === 'awaiting_key_exchange' && msg.msgType === HandshakeType.clientKeyExchange) {
      const point = parseEcdhClientKeyExchange(msg.body);
      if (point === undefined) {
        this.fail(AlertDescription.decodeError, 'malformed ClientKeyExchange');
        return true;
      }
      const pms = this.ecdh!.sharedSecret(point);
      this.ecdh = undefined;
      if (pms === undefined) {
        this.fail(AlertDescription.illegalParameter, 'the client ECDH point is not an uncompressed P-256 point');
        return true;
      }
      this.transcript.push(full());
      this.deriveKeys(pms);
      this.state = 'awaiting_certificate_verify';
      return true;
    }
    if (this.state === 'awaiting_certificate_verify' && msg.msgType === HandshakeType.certificateVerify) {
      const cv = parseCertificateVerify(msg.body);
      if (cv === undefined) {
        this.fail(AlertDescription.decodeError, 'malformed CertificateVerify');
      } else if (cv.signatureAlgorithm !== ECDSA_SHA256) {
        this.fail(AlertDescription.illegalParameter, `CertificateVerify with signature algorithm 0x${cv.signatureAlgorithm.toString(16)}`);
      } else if (!ecdsaVerify(this.clientKey!, cv.signature, ...this.transcript)) {
        this.fail(AlertDescription.decryptError, 'CertificateVerify does not verify');
      } else {
        this.clientKey = undefined;
        this.transcript.push(full());
        this.lookupClient(this.identity!);
      }
      return true;
    }
    return false;
  }

  /** Asks rpkLookup (SPKI) or x509Lookup (leaf certificate) whether this authenticated client may connect. */
  private lookupClient(identity: Buffer): void {
    const x509 = this.clientCertificateType === CertificateType.x509;
    const state = x509 ? 'x509_lookup' : 'rpk_lookup';
    const what = x509 ? 'certificate' : 'raw public key';
    this.state = state;
    let result: Promise<boolean>;
    try {
      result = x509 ? this.config.x509Lookup!(Buffer.from(identity), this.peer) : this.config.rpkLookup!(Buffer.from(identity), this.peer);
    } catch (err) {
      result = Promise.reject(err);
    }
    result.then(
      (ok) => {
        if (this.state !== state) return; // closed or replaced meanwhile
        if (ok !== true) {
          this.fail(AlertDescription.certificateUnknown, `${what} not accepted`);
          return;
        }
        this.keysReady();
      },
      (err: unknown) => {
        if (this.state !== state) return;
        this.fail(AlertDescription.internalError, `${what} lookup failed: ${err instanceof Error ? err.message : String(err)}`);
      },
    );
  }

  private lookupPsk(identity: Buffer): void {
    this.state = 'psk_lookup';
    let result: Promise<Uint8Array | undefined>;
    try {
      result = this.config.pskLookup!(Buffer.from(identity), this.peer);
    } catch (err) {
      result = Promise.reject(err);
    }
    result.then(
      (psk) => this.onPsk(psk),
      (err: unknown) => {
        if (this.state !== 'psk_lookup') return;
        this.fail(AlertDescription.internalError, `PSK lookup failed: ${err instanceof Error ? err.message : String(err)}`);
      },
    );
  }

  private onPsk(psk: Uint8Array | undefined): void {
    if (this.state !== 'psk_lookup') return; // closed or replaced meanwhile
    if (psk === undefined || psk.length === 0) {
      this.fail(AlertDescription.unknownPskIdentity, 'unknown PSK identity');
      return;
    }
    this.pskCheck = this.config.sessionCache?.pskCheck(psk);
    this.deriveKeys(pskPremasterSecret(psk));
    this.keysReady();
  }

  /** Master secret (extended when negotiated: the transcript ends with ClientKeyExchange) and the pending epoch-1 protections; wipes `pms`. */
  private deriveKeys(pms: Buffer): void {
    this.master = this.extendedMasterSecret
      ? extendedMasterSecret(pms, sha256(...this.transcript))
      : masterSecret(pms, this.clientRandom!, this.serverRandom!);
    pms.fill(0);
    const kb = keyBlock(this.master, this.clientRandom!, this.serverRandom!, this.suite);
    this.pendingRead = createProtection(this.suite, kb.client);
    this.pendingWrite = createProtection(this.suite, kb.server);
  }

  /** The client is authenticated as far as flight 5 goes before Finished: accept its ChangeCipherSpec and replay what waited. */
  private keysReady(): void {
    this.state = 'awaiting_ccs';
    if (this.earlyCcs) this.onChangeCipherSpec(CHANGE_CIPHER_SPEC);
    const queued = this.queue;
    this.queue = [];
    for (const r of queued) this.handleRecord(r);
    this.drainMessages();
  }

  private onChangeCipherSpec(payload: Buffer): void {
    if (!isChangeCipherSpec(payload)) return;
    if (this.state === 'awaiting_certificate' || this.state === 'awaiting_key_exchange' || this.state === 'awaiting_certificate_verify') {
      this.earlyCcs = true;
      return;
    }
    if (this.state !== 'awaiting_ccs') return;
    this.readEpoch = 1;
    this.readProtection = this.pendingRead;
    this.pendingRead = undefined;
    this.windows.set(1, new ReplayWindow(this.config.replayWindow));
    this.windows.delete(0);
    this.state = 'awaiting_finished';
    // Messages must not span epochs: anything half-assembled from epoch 0 is discarded.
    this.reassembler?.clear();
    const held = this.nextEpoch;
    this.nextEpoch = [];
    for (const r of held) this.handleRecord(r);
  }

  private onFinished(msg: HandshakeMessage): void {
    if (this.resumed) {
      this.onResumedFinished(msg);
      return;
    }
    const received = parseFinished(msg.body);
    const expected = verifyData(this.master!, 'client', sha256(...this.transcript));
    if (received === undefined || !timingSafeEqual(received, expected)) {
      this.fail(AlertDescription.decryptError, 'client Finished does not verify');
      return;
    }
    this.transcript.push(fullMessage(msg.msgType, msg.messageSeq, msg.body));
    const ours = verifyData(this.master!, 'server', sha256(...this.transcript));
    this.writeProtections[1] = this.pendingWrite;
    this.pendingWrite = undefined;
    this.writeSeq[1] = 0;
    this.timer.stop();
    this.flight = new Flight(
      // Kept until the client's first application data shows flight 6 arrived: its own copy, not a pool slice.
      [{ kind: 'ccs', epoch: 0 }, { kind: 'handshake', epoch: 1, msgType: HandshakeType.finished, messageSeq: this.serverSeq++, body: ownedCopy(ours) }],
      this.datagramLimit,
      this.maxPlaintext,
    );
    this.writeEpoch = 1;
    this.state = 'established';
    this.completed = true;
    this.remember();
    this.handshakeDone();
    this.lastActivity = this.config.now();
    this.sendFlight();
    this.host.established(this);
  }

  private onAlert(payload: Buffer): void {
    const alert = parseAlert(payload);
    if (alert === undefined) return;
    if (isCloseNotify(alert)) {
      this.close('close_notify', undefined, true);
    } else if (isFatal(alert)) {
      this.close('alert_received', `peer sent fatal alert ${alert.description}`);
    }
  }

  // ---- sending -----------------------------------------------------------------------------

  private readonly writer: RecordWriter = {
    overhead: (epoch) => (this.writeProtections[epoch]?.maxOverhead ?? 0) + this.cidOverhead(epoch),
    record: (type, epoch, payload) => {
      const r = this.writeRecord(type, epoch, payload);
      if (r === undefined) throw new SequenceExhausted();
      return r;
    },
  };

  private writeRecord(type: number, epoch: number, payload: Buffer): Buffer | undefined {
    const seq = this.writeSeq[epoch]!;
    if (seq > MAX_SEQUENCE_NUMBER) {
      this.close('sequence_exhausted');
      return undefined;
    }
    this.writeSeq[epoch] = seq + 1;
    const p = this.writeProtections[epoch];
    const cid = this.sendCid(epoch);
    if (p !== undefined && cid !== undefined) {
      // RFC 9146 §4: tls12_cid with the client's CID, the real type inside the protected DTLSInnerPlaintext.
      const fragment = p.encrypt(ContentType.tls12Cid, DTLS_1_2, epoch, seq, innerPlaintext(type, payload), cid);
      return serializeRecord({ type: ContentType.tls12Cid, version: DTLS_1_2, epoch, seq, cid, fragment });
    }
    const fragment = p === undefined ? payload : p.encrypt(type, DTLS_1_2, epoch, seq, payload);
    return serializeRecord({ type, version: DTLS_1_2, epoch, seq, fragment });
  }

  /** The client's CID when records of `epoch` carry one (protected epochs, non-empty CID). */
  private sendCid(epoch: number): Buffer | undefined {
    return epoch > 0 && this.connectionId !== undefined && this.connectionId.peer.length > 0 ? this.connectionId.peer : undefined;
  }

  /** Bytes a CID adds to a record of `epoch`: the CID in the header and the inner content type. */
  private cidOverhead(epoch: number): number {
    const cid = this.sendCid(epoch);
    return cid === undefined ? 0 : cid.length + 1;
  }

  private sendFlight(): void {
    if (this.flight === undefined) return;
    let datagrams: Buffer[];
    try {
      datagrams = this.flight.datagrams(this.writer);
    } catch (err) {
      if (err instanceof SequenceExhausted) return;
      throw err;
    }
    for (const d of datagrams) this.host.output(this, d);
  }

  /** Re-sends the kept flight; `peerTriggered` re-sends are rate-limited. */
  private resend(peerTriggered: boolean): void {
    if (this.flight === undefined) return;
    const now = this.config.now();
    if (peerTriggered || this.awaitingFlight5) {
      if (now - this.lastResend < this.config.minResendGapMs) return;
    }
    this.lastResend = now;
    this.sendFlight();
  }

  private onTimer(): void {
    if (this.state === 'closed' || this.state === 'established') return;
    if (this.config.now() - this.createdAt >= this.config.handshakeTimeoutMs) {
      this.close('handshake_timeout');
      return;
    }
    this.lastResend = this.config.now();
    this.sendFlight();
    this.timer.start();
  }

  private sendAlert(level: number, description: number): void {
    const rec = this.writeRecord(ContentType.alert, this.writeEpoch, serializeAlert({ level, description }));
    if (rec) this.host.output(this, rec);
  }

  private fail(description: number, detail: string): void {
    this.sendAlert(AlertLevel.fatal, description);
    this.close('alert_sent', detail);
  }
}

class SequenceExhausted extends Error {}

/**
 * Record limits from the client's request: max_fragment_length (RFC 6066 §4) is echoed and limits
 * what we send; record_size_limit (RFC 8449 §4) limits what we send to the client's value (at most
 * 2^14 in DTLS 1.2) and is answered with our own limit, which then bounds what we accept.
 */
function recordLimits(req: RecordLimitRequest | undefined, ours: number): { send: number; receive: number; extension: Extension | undefined } {
  if (req === undefined) return { send: MAX_PLAINTEXT_LENGTH, receive: MAX_PLAINTEXT_LENGTH, extension: undefined };
  if (req.kind === 'max_fragment_length') {
    const send = MAX_FRAGMENT_LENGTHS[req.code];
    if (send === undefined) throw new RangeError(`max_fragment_length code ${req.code}`);
    return { send, receive: MAX_PLAINTEXT_LENGTH, extension: { type: ExtensionType.maxFragmentLength, data: Buffer.from([req.code]) } };
  }
  const data = Buffer.alloc(2);
  data.writeUInt16BE(ours);
  return { send: Math.min(req.limit, MAX_PLAINTEXT_LENGTH), receive: ours, extension: { type: ExtensionType.recordSizeLimit, data } };
}

/**
 * A copy in an ArrayBuffer of its own. `Buffer.from(small)` copies into a slice of Node's shared
 * 8 KiB pool, and one long-lived slice keeps the whole slab alive: what a session keeps for its
 * life is copied with this instead.
 */
export function ownedCopy(b: Uint8Array): Buffer {
  const out = Buffer.allocUnsafeSlow(b.length);
  out.set(b);
  return out;
}

/** Records queued for later must not pin the whole datagram, nor see it reused. */
function copyRecord(r: DtlsRecord): DtlsRecord {
  return r.cid === undefined ? { ...r, fragment: Buffer.from(r.fragment) } : { ...r, fragment: Buffer.from(r.fragment), cid: Buffer.from(r.cid) };
}
