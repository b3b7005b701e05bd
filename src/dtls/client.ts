/**
 * `DtlsClientEndpoint`: the CLIENT side of DTLS 1.2 (RFC 6347) with pre-shared keys (RFC 4279)
 * or ECDHE_ECDSA (RFC 8422) with raw public keys (RFC 7250) or X.509 certificates both ways, as a
 * `CoapEndpoint` (src/coap/endpoint.ts) over its own datagram socket. It is what a device
 * (the simulator) uses to reach a `coaps://` server; a CoapNode runs over it unchanged:
 *
 * - the first `send()` to a peer starts a handshake with it: ClientHello, the cookie exchange
 *   (HelloVerifyRequest → ClientHello with the cookie), ServerHello … ServerHelloDone, then
 *   ClientKeyExchange (our PSK identity), ChangeCipherSpec, Finished; the server's
 *   ChangeCipherSpec + Finished complete it. We offer the extended master secret (RFC 7627) and
 *   the empty renegotiation_info (RFC 5746). Default suites: TLS_PSK_WITH_AES_128_CCM_8 with
 *   `psk`, TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8 with `rpk` (both with both);
 * - ECDHE_ECDSA (`rpk`: our P-256 key pair, optionally the server's expected public key): the
 *   ClientHello also carries supported_groups, ec_point_formats, signature_algorithms and
 *   client/server_certificate_type = RawPublicKey. Flight 4 must be ServerHello (RawPublicKey
 *   for both certificate types, else unsupported_certificate), Certificate (the server's SPKI:
 *   not P-256, or not `serverPublicKey` when given → bad_certificate), ServerKeyExchange (P-256
 *   point signed with ECDSA-SHA256 by that key, else decrypt_error), CertificateRequest
 *   (optional), ServerHelloDone. Flight 5 is Certificate (our SPKI, when requested),
 *   ClientKeyExchange (our ephemeral point), CertificateVerify (ECDSA-SHA256 over the
 *   transcript with our private key, when requested), ChangeCipherSpec, Finished;
 * - ECDHE_ECDSA with X.509 (`x509`: our chain and key, and the server's expected certificate or
 *   trust anchors, see client-x509.ts): the same, but without certificate type extensions (X.509
 *   both ways), with server_name when `x509.serverName` is a DNS name; the server's Certificate
 *   is a chain, leaf first, checked against `serverCertificate` (exact match: bad_certificate
 *   otherwise) or verified against `trustAnchors` (unknown_ca, certificate_expired,
 *   bad_certificate, ...); ours is sent as a chain when requested;
 * - our flights are retransmitted on the RFC 6347 §4.2.4 timer (1 s doubling up to 60 s by
 *   default) and at once when the server repeats its previous flight (rate-limited); the whole
 *   handshake is abandoned after `handshakeTimeoutMs`;
 * - application data sent meanwhile is queued (bounded; a repeat of a queued datagram - a CoAP
 *   retransmission - is coalesced with it) and encrypted once the session is up;
 *   each send's callback runs when the datagram left (null) or the handshake failed (an Error:
 *   `DtlsHandshakeError`, with the alert when the server sent one). A failed handshake leaves no
 *   state: the next send to that peer starts a new one. Nothing is emitted as 'error' for it;
 * - records from the server are decrypted and emitted as `message` with the server's address and
 *   `peer.identity = { type: 'psk', identity }` (the identity both sides proved to share),
 *   `{ type: 'rpk', publicKey }` (the SPKI DER of the key the server proved it holds) or
 *   `{ type: 'x509', certificate, chain }` (the server's leaf certificate and chain, DER);
 * - a close_notify from the server ends the session (the next send starts a new handshake);
 *   `close()` sends close_notify on every session, then closes the socket.
 *
 * Records that fail authentication, replays, unknown epochs and malformed input are dropped
 * silently (RFC 6347 §4.1.2.7).
 *
 * Connection ID (RFC 9146, option `connectionIdLength`): the ClientHello carries connection_id
 * with a random CID of that length for the server to put in its records (0: a zero-length one -
 * we want none but can send with the server's). When the server echoes the extension, protected
 * records use the tls12_cid format in each direction where a non-empty CID was chosen, and
 * `rebind()` moves the endpoint to a new local socket (a new port, as after a NAT rebinding)
 * without a new handshake: the server follows the session there on our next record.
 *
 * Not implemented: session resumption.
 */
import { randomBytes, timingSafeEqual, type KeyObject } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { isIPv6, type AddressInfo } from 'node:net';
import type { CoapEndpoint, CoapEndpointEvents, PeerIdentity, PeerInfo, SendCallback } from '../coap/endpoint.js';
import { UdpEndpoint, type UdpEndpointOptions } from '../coap/udp-endpoint.js';
import { alertName, isChangeCipherSpec, isCloseNotify, isFatal, parseAlert, serializeAlert } from './alert.js';
import {
  AlertDescription, AlertLevel, ClientCertificateTypeEcdsaSign, ContentType, DTLS_1_2, ECDSA_SHA256, ExtensionType, HandshakeType,
  MAX_PLAINTEXT_LENGTH, MAX_SEQUENCE_NUMBER, NamedGroup,
} from './constants.js';
import { checkServerCertificateTypes, ecdheHelloExtensions, resolveClientRpk, type DtlsClientRpk, type ResolvedRpk } from './client-rpk.js';
import { checkServerChain, resolveClientX509, serverNameExtension, type DtlsClientX509, type ResolvedX509 } from './client-x509.js';
import { ecdsaSign, ecdsaVerify, EphemeralEcdh, parseP256Spki } from './ecc.js';
import type { DatagramTransport } from './endpoint.js';
import { DEFAULT_RETRANSMIT, Flight, RetransmitTimer, type FlightEntry, type RecordWriter, type RetransmitOptions } from './flight.js';
import { fullMessage, parseHandshakeFragments, type HandshakeMessage } from './handshake.js';
import {
  EMPTY_RENEGOTIATION_INFO, findExtension, parseCertificateList, parseConnectionId, serializeCertificateList, serializeConnectionId, parseCertificateRequest, parseEcdheServerKeyExchange, parseFinished, parseHelloVerifyRequest,
  parsePskServerKeyExchange, parseRawPublicKeyCertificate, parseRenegotiationInfo, parseServerHello, serializeCertificateVerify,
  serializeClientHello, serializeEcdhClientKeyExchange, serializeEcdhParams, serializePskClientKeyExchange,
  serializeRawPublicKeyCertificate, type Extension,
} from './messages.js';
import { extendedMasterSecret, keyBlock, masterSecret, pskPremasterSecret, sha256, verifyData } from './prf.js';
import { createProtection, type RecordProtection } from './protection.js';
import { HandshakeReassembler } from './reassembly.js';
import { innerPlaintext, parseDatagram, parseInnerPlaintext, serializeRecord, type DtlsRecord } from './record.js';
import { ReplayWindow } from './replay.js';
import { suiteById, suiteHex, TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8, TLS_PSK_WITH_AES_128_CCM_8, type CipherSuite } from './suites.js';

export type { DtlsClientRpk } from './client-rpk.js';
export type { DtlsClientX509 } from './client-x509.js';
import { SendTracker } from './send-tracker.js';

export interface DtlsClientPsk {
  /** PSK identity (text is sent as UTF-8). */
  readonly identity: Uint8Array | string;
  readonly key: Uint8Array;
}

export interface DtlsClientOptions {
  /** Pre-shared key: enables the PSK suites. At least one of `psk`, `rpk` and `x509` is required. */
  readonly psk?: DtlsClientPsk;
  /** Raw public keys (ECDHE_ECDSA suites): our key pair and optionally the server's expected key. */
  readonly rpk?: DtlsClientRpk;
  /**
   * X.509 certificates (ECDHE_ECDSA suites; not with `rpk`): our chain and key, and the server's
   * expected certificate or the trust anchors its chain must lead to (client-x509.ts).
   */
  readonly x509?: DtlsClientX509;
  /**
   * Cipher suite ids offered, in order of preference (default: TLS_PSK_WITH_AES_128_CCM_8 with
   * `psk`, then TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8 with `rpk` or `x509`). PSK suites need `psk`,
   * ECDHE_ECDSA suites `rpk` or `x509`.
   */
  readonly cipherSuites?: readonly number[];
  /** Offer extended_master_secret (RFC 7627; default true). */
  readonly extendedMasterSecret?: boolean;
  /** Fail the handshake when the server does not agree to the extended master secret (default false). */
  readonly requireExtendedMasterSecret?: boolean;
  /** Flight retransmission timer (default 1 s doubling to 60 s, RFC 6347 §4.2.4). */
  readonly retransmit?: Partial<RetransmitOptions>;
  /** Give up a handshake not finished after this long (default 30 s). */
  readonly handshakeTimeoutMs?: number;
  /** Largest datagram sent (default 1232). */
  readonly maxDatagram?: number;
  /** Application datagrams held per peer while its handshake runs (default 32; beyond, the oldest fails). */
  readonly maxQueued?: number;
  /** Anti-replay window in records (multiple of 32, default 64). */
  readonly replayWindow?: number;
  /** Minimum gap between re-sends triggered by the server repeating its flight (default 250 ms). */
  readonly minResendGapMs?: number;
  /**
   * RFC 9146: ask for Connection IDs, offering a random CID of this many bytes (0..255) for the
   * server's records to us (0: a zero-length CID, none wanted). Default: no connection_id extension.
   */
  readonly connectionIdLength?: number;
  readonly onDiagnostic?: (d: DtlsClientDiagnostic) => void;
}

export interface DtlsPeer {
  readonly address: string;
  readonly port: number;
  readonly family: string;
}

/** What happened, for logs and tests. Never carries key material. */
export type DtlsClientDiagnostic =
  | { readonly kind: 'handshake_started'; readonly peer: DtlsPeer }
  | { readonly kind: 'hello_verify_request'; readonly peer: DtlsPeer }
  | { readonly kind: 'retransmit'; readonly peer: DtlsPeer; readonly flight: number }
  | { readonly kind: 'established'; readonly peer: DtlsPeer; readonly suite: CipherSuite; readonly extendedMasterSecret: boolean }
  | { readonly kind: 'handshake_failed'; readonly peer: DtlsPeer; readonly error: DtlsHandshakeError }
  | { readonly kind: 'closed'; readonly peer: DtlsPeer; readonly reason: 'close_notify' | 'alert' | 'shutdown' };

/** A handshake that did not complete: a fatal alert (sent or received), a protocol error, or a timeout. */
export class DtlsHandshakeError extends Error {
  override readonly name = 'DtlsHandshakeError';
  constructor(
    message: string,
    readonly peer: DtlsPeer,
    /** The alert description, when one was received from the server (`by: 'server'`) or sent by us. */
    readonly alert?: { readonly description: number; readonly by: 'server' | 'client' },
  ) {
    super(message);
  }
}

type State = 'hello' | 'key_exchange' | 'established' | 'closed';

interface Queued {
  readonly data: Buffer;
  readonly callback: SendCallback | undefined;
}

interface SessionHost {
  readonly opts: ResolvedOptions;
  send(datagram: Buffer, peer: DtlsPeer, callback?: SendCallback): void;
  deliver(plaintext: Buffer, session: ClientSession): void;
  ended(session: ClientSession): void;
  diag(d: DtlsClientDiagnostic): void;
}

interface ResolvedOptions {
  readonly psk: { readonly identity: Buffer; readonly key: Buffer } | undefined;
  readonly rpk: ResolvedRpk | undefined;
  readonly x509: ResolvedX509 | undefined;
  readonly suites: readonly CipherSuite[];
  readonly offerEms: boolean;
  readonly requireEms: boolean;
  readonly retransmit: RetransmitOptions;
  readonly handshakeTimeoutMs: number;
  readonly maxDatagram: number;
  readonly maxQueued: number;
  readonly replayWindow: number;
  readonly minResendGapMs: number;
  readonly connectionIdLength: number | undefined;
}

/**
 * Runs a send callback on the next tick. A callback that throws is contained: node-coap's sender
 * emits 'error' from its callback and throws when the request it belonged to has already ended
 * (no listener left) - which a handshake failing after the CoAP request gave up would trigger.
 */
function later(callback: SendCallback, err: Error | null): void {
  process.nextTick(() => {
    try {
      callback(err);
    } catch {
      // the caller's problem; a socket-like endpoint must not take the process down
    }
  });
}

function formatDtlsPeer(p: DtlsPeer): string {
  return p.address.includes(':') ? `[${p.address}]:${p.port}` : `${p.address}:${p.port}`;
}

/** Our association with one server. */
class ClientSession {
  state: State = 'hello';
  suite: CipherSuite | undefined;
  ems = false;
  private readonly random = randomBytes(32);
  private cookie = Buffer.alloc(0);
  private helloVerifyRequests = 0;
  private messageSeq = 0;
  private transcript: Buffer[] = [];
  private readonly reassembler = new HandshakeReassembler(0);
  private readonly writeSeq = [0, 0];
  private writeProtection: RecordProtection | undefined;
  private readProtection: RecordProtection | undefined;
  private pendingRead: RecordProtection | undefined;
  private readEpoch = 0;
  private readonly window: ReplayWindow;
  private serverRandom: Buffer | undefined;
  private master: Buffer | undefined;
  private flight: Flight | undefined;
  private flightNumber = 1;
  private lastResend = 0;
  private readonly timer: RetransmitTimer;
  private deadline: NodeJS.Timeout | undefined;
  private queue: Queued[] = [];
  /** ECDHE_ECDSA: the server's long-term key (its Certificate), its ephemeral point, whether it asked for our key. */
  private serverKey: KeyObject | undefined;
  private serverSpki: Buffer | undefined;
  /** X.509: the server's chain, leaf first (its Certificate message). */
  private serverChain: Buffer[] | undefined;
  private serverPoint: Buffer | undefined;
  private certificateRequested = false;
  /** Who the server proved to be (set when established). */
  peerIdentity: PeerIdentity | undefined;
  /** RFC 9146: the CID we offer for records to us (undefined: we do not ask for CIDs). */
  private readonly ownCid: Buffer | undefined;
  /** RFC 9146: the server's CID from its ServerHello (undefined: the server did not agree to CIDs). */
  private serverCid: Buffer | undefined;

  constructor(readonly peer: DtlsPeer, private readonly host: SessionHost) {
    this.window = new ReplayWindow(host.opts.replayWindow);
    const cidLength = host.opts.connectionIdLength;
    this.ownCid = cidLength === undefined ? undefined : randomBytes(cidLength);
    this.timer = new RetransmitTimer(host.opts.retransmit, () => this.onTimer());
  }

  get established(): boolean {
    return this.state === 'established';
  }

  start(): void {
    this.host.diag({ kind: 'handshake_started', peer: this.peer });
    this.deadline = setTimeout(() => {
      this.deadline = undefined;
      // A server that cannot authenticate our Finished (another key for our identity) drops it silently: only the timer tells.
      const hint = this.state === 'key_exchange' && this.suite?.keyExchange === 'psk' ? ' waiting for the server Finished (wrong PSK key?)'
        : this.state === 'key_exchange' ? ' waiting for the server Finished' : '';
      this.fail(new DtlsHandshakeError(`DTLS handshake with ${formatDtlsPeer(this.peer)} timed out after ${this.host.opts.handshakeTimeoutMs} ms${hint}`, this.peer));
    }, this.host.opts.handshakeTimeoutMs);
    this.deadline.unref();
    this.sendHello();
  }

  /** Queues (handshake running) or encrypts and sends application data. */
  sendApplicationData(data: Buffer, callback: SendCallback | undefined): void {
    if (this.state === 'established') {
      this.writeApplicationData(data, callback);
      return;
    }
    if (this.state === 'closed') {
      if (callback) later(callback, new Error(`DTLS session with ${formatDtlsPeer(this.peer)} is closed`));
      return;
    }
    if (data.length > MAX_PLAINTEXT_LENGTH) {
      if (callback) later(callback, new RangeError(`datagram of ${data.length} bytes is larger than a DTLS record`));
      return;
    }
    if (this.queue.some((q) => q.data.equals(data))) {
      // A CoAP retransmission of a message still queued: it leaves with the first copy. Coalescing
      // also means one error per message if the handshake fails (node-coap's sender has no
      // 'error' listener left after the first one).
      if (callback) later(callback, null);
      return;
    }
    this.queue.push({ data, callback });
    while (this.queue.length > this.host.opts.maxQueued) {
      const dropped = this.queue.shift()!;
      if (dropped.callback) later(dropped.callback, new Error(`DTLS handshake with ${formatDtlsPeer(this.peer)} still running: send queue full`));
    }
  }

  private writeApplicationData(data: Buffer, callback: SendCallback | undefined): void {
    if (data.length > MAX_PLAINTEXT_LENGTH) {
      if (callback) later(callback, new RangeError(`datagram of ${data.length} bytes is larger than a DTLS record`));
      return;
    }
    const rec = this.writeRecord(ContentType.applicationData, 1, data);
    if (rec === undefined) {
      if (callback) later(callback, new Error('DTLS sequence numbers exhausted'));
      return;
    }
    this.host.send(rec, this.peer, callback);
  }

  // ---- writing ---------------------------------------------------------------------------

  private readonly writer: RecordWriter = {
    overhead: (epoch) => (epoch > 0 ? (this.writeProtection?.maxOverhead ?? 0) + (this.sendCid === undefined ? 0 : this.sendCid.length + 1) : 0),
    record: (type, epoch, payload) => this.writeRecord(type, epoch, payload) ?? Buffer.alloc(0),
  };

  private writeRecord(type: number, epoch: number, payload: Buffer): Buffer | undefined {
    const seq = this.writeSeq[epoch]!;
    if (seq > MAX_SEQUENCE_NUMBER) return undefined;
    this.writeSeq[epoch] = seq + 1;
    let fragment = payload;
    if (epoch > 0) {
      if (this.writeProtection === undefined) return undefined;
      const cid = this.sendCid;
      if (cid !== undefined) {
        // RFC 9146 §4: tls12_cid with the server's CID, the real type inside the DTLSInnerPlaintext.
        fragment = this.writeProtection.encrypt(ContentType.tls12Cid, DTLS_1_2, epoch, seq, innerPlaintext(type, payload), cid);
        return serializeRecord({ type: ContentType.tls12Cid, version: DTLS_1_2, epoch, seq, cid, fragment });
      }
      fragment = this.writeProtection.encrypt(type, DTLS_1_2, epoch, seq, payload);
    }
    return serializeRecord({ type, version: DTLS_1_2, epoch, seq, fragment });
  }

  /** The server's CID when our protected records carry one (negotiated, non-empty). */
  private get sendCid(): Buffer | undefined {
    return this.serverCid !== undefined && this.serverCid.length > 0 ? this.serverCid : undefined;
  }

  /** Our CID when the server's protected records must carry it (negotiated, non-empty). */
  private get receiveCid(): Buffer | undefined {
    return this.serverCid !== undefined && this.ownCid !== undefined && this.ownCid.length > 0 ? this.ownCid : undefined;
  }

  /** The CIDs of an established session (for tests and diagnostics): ours and the server's. */
  get connectionIds(): { readonly own: Buffer; readonly peer: Buffer } | undefined {
    return this.serverCid === undefined || this.ownCid === undefined ? undefined : { own: Buffer.from(this.ownCid), peer: Buffer.from(this.serverCid) };
  }

  private sendFlight(): void {
    if (!this.flight) return;
    for (const d of this.flight.datagrams(this.writer)) if (d.length > 0) this.host.send(d, this.peer);
  }

  private sendAlert(level: number, description: number): void {
    const epoch = this.writeProtection !== undefined ? 1 : 0;
    const rec = this.writeRecord(ContentType.alert, epoch, serializeAlert({ level, description }));
    if (rec) this.host.send(rec, this.peer);
  }

  private clientHelloExtensions(): Extension[] {
    const exts: Extension[] = [];
    if (this.host.opts.offerEms) exts.push({ type: ExtensionType.extendedMasterSecret, data: Buffer.alloc(0) });
    exts.push({ type: ExtensionType.renegotiationInfo, data: EMPTY_RENEGOTIATION_INFO });
    if (this.host.opts.suites.some((s) => s.keyExchange === 'ecdhe_ecdsa')) {
      // With x509: no certificate type extensions (X.509 both ways), and SNI when we know the server's DNS name.
      exts.push(...ecdheHelloExtensions(this.host.opts.x509 === undefined));
      const sni = serverNameExtension(this.host.opts.x509?.serverName);
      if (sni !== undefined) exts.push(sni);
    }
    if (this.ownCid !== undefined) exts.push({ type: ExtensionType.connectionId, data: serializeConnectionId(this.ownCid) });
    return exts;
  }

  /** Flight 1, or flight 3 once the server gave a cookie. */
  private sendHello(): void {
    const body = serializeClientHello({
      clientVersion: DTLS_1_2, random: this.random, sessionId: Buffer.alloc(0), cookie: this.cookie,
      cipherSuites: this.host.opts.suites.map((s) => s.id), compressionMethods: [0], extensions: this.clientHelloExtensions(),
    });
    const seq = this.messageSeq++;
    // RFC 6347 §4.2.1: the transcript starts with the ClientHello that carries the cookie (or the only one).
    this.transcript = [fullMessage(HandshakeType.clientHello, seq, body)];
    this.newFlight([{ kind: 'handshake', epoch: 0, msgType: HandshakeType.clientHello, messageSeq: seq, body }], this.cookie.length > 0 ? 3 : 1);
  }

  private newFlight(entries: FlightEntry[], number: number): void {
    this.flight = new Flight(entries, this.host.opts.maxDatagram);
    this.flightNumber = number;
    this.timer.reset();
    this.sendFlight();
    this.timer.start();
  }

  private onTimer(): void {
    if (this.state === 'closed' || this.state === 'established') return;
    this.host.diag({ kind: 'retransmit', peer: this.peer, flight: this.flightNumber });
    this.sendFlight();
    this.timer.start();
  }

  /** The server repeated its previous flight: ours was probably lost. */
  private resendSoon(): void {
    const now = Date.now();
    if (now - this.lastResend < this.host.opts.minResendGapMs) return;
    this.lastResend = now;
    this.sendFlight();
  }

  // ---- reading ---------------------------------------------------------------------------

  handleRecord(rec: DtlsRecord): void {
    if (this.state === 'closed') return;
    if (rec.epoch !== this.readEpoch) return; // older epoch (retransmissions) or not yet readable
    let payload = rec.fragment;
    let type = rec.type;
    if (rec.epoch > 0) {
      if (rec.version !== DTLS_1_2 || this.readProtection === undefined) return;
      // RFC 9146 §4: with a CID of ours every protected record carries it; without one, none does.
      const own = this.receiveCid;
      const cid = rec.type === ContentType.tls12Cid ? rec.cid : undefined;
      if ((cid === undefined) !== (own === undefined) || (cid !== undefined && !cid.equals(own!))) return;
      if (!this.window.check(rec.seq)) return;
      const pt = this.readProtection.decrypt(rec.type, rec.version, rec.epoch, rec.seq, rec.fragment, cid);
      if (pt === undefined) return;
      const inner = cid === undefined ? { type, content: pt } : parseInnerPlaintext(pt);
      if (inner === undefined || inner.content.length > MAX_PLAINTEXT_LENGTH || inner.type === ContentType.tls12Cid) return;
      this.window.accept(rec.seq);
      payload = inner.content;
      type = inner.type;
    }
    switch (type) {
      case ContentType.alert:
        this.onAlert(payload);
        return;
      case ContentType.changeCipherSpec:
        if (isChangeCipherSpec(payload) && this.state === 'key_exchange' && this.pendingRead !== undefined) {
          this.readProtection = this.pendingRead;
          this.pendingRead = undefined;
          this.readEpoch = 1;
          this.reassembler.clear(); // handshake messages do not span epochs
        }
        return;
      case ContentType.applicationData:
        if (this.state === 'established' && rec.epoch > 0) this.host.deliver(payload, this);
        return;
      case ContentType.handshake:
        this.onHandshakeRecord(payload);
        return;
    }
  }

  private onHandshakeRecord(payload: Buffer): void {
    if (this.state === 'established') return; // a late server Finished, or a HelloRequest: ignored
    const frags = parseHandshakeFragments(payload);
    if (frags === undefined) return;
    let old = false;
    for (const f of frags) if (this.reassembler.add(f) === 'old') old = true;
    if (old && this.state === 'key_exchange') this.resendSoon();
    for (let m = this.reassembler.take(); m && this.state !== 'closed'; m = this.reassembler.take()) this.onMessage(m);
  }

  private onAlert(payload: Buffer): void {
    const alert = parseAlert(payload);
    if (alert === undefined) return;
    if (isCloseNotify(alert)) {
      if (this.state === 'established') this.sendAlert(AlertLevel.warning, AlertDescription.closeNotify);
      this.end('close_notify', new DtlsHandshakeError(`the server at ${formatDtlsPeer(this.peer)} closed the DTLS session`, this.peer, { description: alert.description, by: 'server' }));
    } else if (isFatal(alert)) {
      const err = new DtlsHandshakeError(
        this.state === 'established'
          ? `the server at ${formatDtlsPeer(this.peer)} ended the DTLS session with alert ${alertName(alert.description)}`
          : `DTLS handshake with ${formatDtlsPeer(this.peer)} failed: the server sent alert ${alertName(alert.description)}`,
        this.peer, { description: alert.description, by: 'server' },
      );
      if (this.state === 'established') this.end('alert', err);
      else this.fail(err);
    }
  }

  private refuse(description: number, detail: string): void {
    this.sendAlert(AlertLevel.fatal, description);
    this.fail(new DtlsHandshakeError(`DTLS handshake with ${formatDtlsPeer(this.peer)} failed: ${detail} (we sent alert ${alertName(description)})`, this.peer, { description, by: 'client' }));
  }

  private onMessage(m: HandshakeMessage): void {
    const full = fullMessage(m.msgType, m.messageSeq, m.body);
    if (this.state === 'hello') {
      switch (m.msgType) {
        case HandshakeType.helloVerifyRequest: {
          const hvr = parseHelloVerifyRequest(m.body);
          if (!hvr || hvr.cookie.length === 0) return this.refuse(AlertDescription.decodeError, 'malformed HelloVerifyRequest');
          if (++this.helloVerifyRequests > 4) return this.refuse(AlertDescription.handshakeFailure, 'too many HelloVerifyRequests');
          this.host.diag({ kind: 'hello_verify_request', peer: this.peer });
          this.cookie = Buffer.from(hvr.cookie);
          this.sendHello();
          return;
        }
        case HandshakeType.serverHello:
          return this.onServerHello(m.body, full);
        case HandshakeType.certificate:
          return this.onServerCertificate(m.body, full);
        case HandshakeType.serverKeyExchange:
          if (this.suite?.keyExchange === 'ecdhe_ecdsa') return this.onEcdheServerKeyExchange(m.body, full);
          if (this.serverRandom === undefined || parsePskServerKeyExchange(m.body) === undefined) {
            return this.refuse(AlertDescription.unexpectedMessage, 'unexpected ServerKeyExchange');
          }
          this.transcript.push(full); // the identity hint is not used: we have one identity
          return;
        case HandshakeType.certificateRequest:
          return this.onCertificateRequest(m.body, full);
        case HandshakeType.serverHelloDone:
          if (this.serverRandom === undefined || m.body.length !== 0) return this.refuse(AlertDescription.unexpectedMessage, 'unexpected ServerHelloDone');
          if (this.suite?.keyExchange === 'ecdhe_ecdsa' && this.serverPoint === undefined) {
            return this.refuse(AlertDescription.unexpectedMessage, 'ServerHelloDone before the server Certificate and ServerKeyExchange');
          }
          this.transcript.push(full);
          return this.keyExchange();
        default:
          return this.refuse(AlertDescription.unexpectedMessage, `unexpected handshake message type ${m.msgType}`);
      }
    }
    if (this.state === 'key_exchange' && m.msgType === HandshakeType.finished && this.readEpoch === 1) {
      const got = parseFinished(m.body);
      const expected = verifyData(this.master!, 'server', sha256(...this.transcript));
      if (got === undefined || !timingSafeEqual(expected, got)) return this.refuse(AlertDescription.decryptError, 'the server Finished does not verify');
      this.establish();
      return;
    }
    this.refuse(AlertDescription.unexpectedMessage, `unexpected handshake message type ${m.msgType}`);
  }

  private onServerHello(body: Buffer, full: Buffer): void {
    if (this.serverRandom !== undefined) return this.refuse(AlertDescription.unexpectedMessage, 'a second ServerHello');
    const sh = parseServerHello(body);
    if (!sh) return this.refuse(AlertDescription.decodeError, 'malformed ServerHello');
    if (sh.serverVersion !== DTLS_1_2) return this.refuse(AlertDescription.protocolVersion, `server version 0x${sh.serverVersion.toString(16)}`);
    const suite = this.host.opts.suites.find((s) => s.id === sh.cipherSuite);
    if (!suite) return this.refuse(AlertDescription.illegalParameter, `the server chose cipher suite ${suiteHex(sh.cipherSuite)}, which was not offered`);
    if (sh.compressionMethod !== 0) return this.refuse(AlertDescription.illegalParameter, 'the server chose compression');
    const offered = new Set(this.clientHelloExtensions().map((e) => e.type));
    for (const e of sh.extensions ?? []) {
      if (!offered.has(e.type)) return this.refuse(AlertDescription.unsupportedExtension, `the server sent extension ${e.type}, which was not offered`);
    }
    const reneg = findExtension(sh.extensions, ExtensionType.renegotiationInfo);
    if (reneg !== undefined && parseRenegotiationInfo(reneg.data)?.length !== 0) {
      return this.refuse(AlertDescription.handshakeFailure, 'non-empty renegotiation_info in the initial handshake');
    }
    this.ems = findExtension(sh.extensions, ExtensionType.extendedMasterSecret) !== undefined;
    if (!this.ems && this.host.opts.requireEms) return this.refuse(AlertDescription.handshakeFailure, 'the server does not support the extended master secret');
    if (suite.keyExchange === 'ecdhe_ecdsa' && this.host.opts.rpk !== undefined) {
      const bad = checkServerCertificateTypes(sh.extensions);
      if (bad !== undefined) return this.refuse(AlertDescription.unsupportedCertificate, bad);
    }
    const cidExt = findExtension(sh.extensions, ExtensionType.connectionId);
    if (cidExt !== undefined) {
      const cid = parseConnectionId(cidExt.data);
      if (cid === undefined) return this.refuse(AlertDescription.decodeError, 'malformed connection_id in the ServerHello');
      this.serverCid = Buffer.from(cid);
    }
    this.suite = suite;
    this.serverRandom = Buffer.from(sh.random);
    this.transcript.push(full);
  }

  /** ECDHE_ECDSA: the server's raw public key or X.509 chain; checked against the expected one (LwM2M /0/x/4) when configured. */
  private onServerCertificate(body: Buffer, full: Buffer): void {
    if (this.suite?.keyExchange !== 'ecdhe_ecdsa' || this.serverSpki !== undefined) return this.refuse(AlertDescription.unexpectedMessage, 'unexpected Certificate');
    const x509 = this.host.opts.x509;
    if (x509 !== undefined) {
      const chain = parseCertificateList(body);
      if (chain === undefined) return this.refuse(AlertDescription.decodeError, 'malformed server Certificate');
      const check = checkServerChain(chain, x509);
      if (!check.ok) return this.refuse(check.alert, check.reason);
      this.serverChain = chain.map((c) => Buffer.from(c));
      this.serverSpki = check.spki;
      this.serverKey = check.leafKey;
      this.transcript.push(full);
      return;
    }
    const der = parseRawPublicKeyCertificate(body);
    if (der === undefined) return this.refuse(AlertDescription.decodeError, 'malformed server Certificate');
    const parsed = der.length > 0 ? parseP256Spki(der) : undefined;
    if (parsed === undefined) return this.refuse(AlertDescription.badCertificate, 'the server raw public key is not a P-256 SubjectPublicKeyInfo');
    const expected = this.host.opts.rpk?.serverSpki;
    if (expected !== undefined && !expected.equals(parsed.spki)) {
      return this.refuse(AlertDescription.badCertificate, 'the server presented a raw public key other than the expected one (serverPublicKey, /0/x/4)');
    }
    this.serverSpki = parsed.spki;
    this.serverKey = parsed.key;
    this.transcript.push(full);
  }

  /** ECDHE_ECDSA: the server's ephemeral point, signed with the key of its Certificate. */
  private onEcdheServerKeyExchange(body: Buffer, full: Buffer): void {
    if (this.serverKey === undefined || this.serverPoint !== undefined) return this.refuse(AlertDescription.unexpectedMessage, 'unexpected ServerKeyExchange');
    const ske = parseEcdheServerKeyExchange(body);
    if (ske === undefined) return this.refuse(AlertDescription.decodeError, 'malformed ServerKeyExchange');
    if (ske.namedCurve !== NamedGroup.secp256r1) return this.refuse(AlertDescription.illegalParameter, `the server chose curve ${ske.namedCurve}, not secp256r1`);
    if (ske.signatureAlgorithm !== ECDSA_SHA256) {
      return this.refuse(AlertDescription.illegalParameter, `ServerKeyExchange signed with algorithm 0x${ske.signatureAlgorithm.toString(16)}`);
    }
    const params = serializeEcdhParams(ske.namedCurve, ske.publicPoint);
    if (!ecdsaVerify(this.serverKey, ske.signature, this.random, this.serverRandom!, params)) {
      return this.refuse(AlertDescription.decryptError, 'the ServerKeyExchange signature does not verify with the server raw public key');
    }
    this.serverPoint = Buffer.from(ske.publicPoint);
    this.transcript.push(full);
  }

  /** ECDHE_ECDSA: the server wants our raw public key (LwM2M servers always do). */
  private onCertificateRequest(body: Buffer, full: Buffer): void {
    if (this.serverPoint === undefined || this.certificateRequested) return this.refuse(AlertDescription.unexpectedMessage, 'unexpected CertificateRequest');
    const cr = parseCertificateRequest(body);
    if (cr === undefined) return this.refuse(AlertDescription.decodeError, 'malformed CertificateRequest');
    if (!cr.certificateTypes.includes(ClientCertificateTypeEcdsaSign) || !cr.signatureAlgorithms.includes(ECDSA_SHA256)) {
      return this.refuse(AlertDescription.handshakeFailure, 'the server does not accept an ecdsa_secp256r1_sha256 client key');
    }
    this.certificateRequested = true;
    this.transcript.push(full);
  }

  /**
   * Flight 5: ClientKeyExchange, ChangeCipherSpec, Finished; with ECDHE_ECDSA and a
   * CertificateRequest, Certificate first and CertificateVerify after the ClientKeyExchange.
   */
  private keyExchange(): void {
    const suite = this.suite!;
    const opts = this.host.opts;
    const entries: FlightEntry[] = [];
    const push = (msgType: number, body: Buffer): void => {
      const messageSeq = this.messageSeq++;
      this.transcript.push(fullMessage(msgType, messageSeq, body));
      entries.push({ kind: 'handshake', epoch: 0, msgType, messageSeq, body });
    };
    let pms: Buffer;
    if (suite.keyExchange === 'ecdhe_ecdsa') {
      const ecdh = new EphemeralEcdh();
      const shared = ecdh.sharedSecret(this.serverPoint!);
      if (shared === undefined) return this.refuse(AlertDescription.illegalParameter, 'the server ECDH point is not an uncompressed P-256 point');
      if (this.certificateRequested) {
        push(HandshakeType.certificate, opts.x509 !== undefined ? serializeCertificateList(opts.x509.chain) : serializeRawPublicKeyCertificate(opts.rpk!.spki));
      }
      push(HandshakeType.clientKeyExchange, serializeEcdhClientKeyExchange(ecdh.publicPoint));
      pms = shared;
    } else {
      push(HandshakeType.clientKeyExchange, serializePskClientKeyExchange(opts.psk!.identity));
      pms = pskPremasterSecret(opts.psk!.key);
    }
    // RFC 7627 §4: the session hash runs up to and including the ClientKeyExchange.
    this.master = this.ems ? extendedMasterSecret(pms, sha256(...this.transcript)) : masterSecret(pms, this.random, this.serverRandom!);
    pms.fill(0);
    const kb = keyBlock(this.master, this.random, this.serverRandom!, suite);
    this.writeProtection = createProtection(suite, kb.client);
    this.pendingRead = createProtection(suite, kb.server);
    if (suite.keyExchange === 'ecdhe_ecdsa' && this.certificateRequested) {
      const signature = ecdsaSign((opts.x509 ?? opts.rpk)!.privateKey, ...this.transcript);
      push(HandshakeType.certificateVerify, serializeCertificateVerify({ signatureAlgorithm: ECDSA_SHA256, signature }));
    }
    const finished = verifyData(this.master, 'client', sha256(...this.transcript));
    const finSeq = this.messageSeq++;
    this.transcript.push(fullMessage(HandshakeType.finished, finSeq, finished));
    this.state = 'key_exchange';
    this.newFlight([
      ...entries,
      { kind: 'ccs', epoch: 0 },
      { kind: 'handshake', epoch: 1, msgType: HandshakeType.finished, messageSeq: finSeq, body: finished },
    ], 5);
  }

  private establish(): void {
    this.state = 'established';
    this.peerIdentity = this.suite!.keyExchange === 'psk'
      ? { type: 'psk', identity: Buffer.from(this.host.opts.psk!.identity) }
      : this.serverChain !== undefined
        ? { type: 'x509', certificate: Buffer.from(this.serverChain[0]!), chain: this.serverChain }
        : { type: 'rpk', publicKey: Buffer.from(this.serverSpki!) };
    this.serverChain = undefined;
    this.serverKey = undefined;
    this.serverPoint = undefined;
    this.timer.stop();
    if (this.deadline) clearTimeout(this.deadline);
    this.deadline = undefined;
    this.transcript = [];
    this.host.diag({ kind: 'established', peer: this.peer, suite: this.suite!, extendedMasterSecret: this.ems });
    const queued = this.queue;
    this.queue = [];
    for (const q of queued) this.writeApplicationData(q.data, q.callback);
  }

  // ---- ending ----------------------------------------------------------------------------

  /** The handshake failed: queued sends get the error, the association is gone. */
  private fail(err: DtlsHandshakeError): void {
    if (this.state === 'closed') return;
    this.release();
    this.host.diag({ kind: 'handshake_failed', peer: this.peer, error: err });
    const queued = this.queue;
    this.queue = [];
    for (const q of queued) if (q.callback) later(q.callback, err);
    this.host.ended(this);
  }

  private end(reason: 'close_notify' | 'alert', err: DtlsHandshakeError): void {
    if (this.state === 'closed') return;
    if (this.state !== 'established') {
      this.fail(err);
      return;
    }
    this.release();
    this.host.diag({ kind: 'closed', peer: this.peer, reason });
    this.host.ended(this);
  }

  /** close(): close_notify when established; queued sends fail. */
  shutdown(): void {
    if (this.state === 'closed') return;
    const wasEstablished = this.state === 'established';
    if (wasEstablished) this.sendAlert(AlertLevel.warning, AlertDescription.closeNotify);
    this.release();
    const err = new Error('the DTLS endpoint is closed');
    for (const q of this.queue.splice(0)) if (q.callback) later(q.callback, err);
    if (wasEstablished) this.host.diag({ kind: 'closed', peer: this.peer, reason: 'shutdown' });
  }

  private release(): void {
    this.state = 'closed';
    this.timer.stop();
    if (this.deadline) clearTimeout(this.deadline);
    this.deadline = undefined;
    this.reassembler.clear();
    this.flight = undefined;
    this.transcript = [];
    this.master = undefined;
    this.serverKey = undefined;
    this.serverChain = undefined;
    this.serverPoint = undefined;
    this.writeProtection = undefined;
    this.readProtection = undefined;
    this.pendingRead = undefined;
  }
}

function resolvePsk(psk: DtlsClientPsk): { identity: Buffer; key: Buffer } {
  if (psk.identity === undefined || psk.key === undefined) throw new TypeError('psk: { identity, key } is required');
  const identity = typeof psk.identity === 'string' ? Buffer.from(psk.identity, 'utf8') : Buffer.from(psk.identity);
  const key = Buffer.from(psk.key);
  if (identity.length === 0 || identity.length > 0xffff) throw new RangeError('PSK identity: 1..65535 bytes');
  if (key.length === 0 || key.length > 0xffff) throw new RangeError('PSK key: 1..65535 bytes');
  return { identity, key };
}

function resolveOptions(opts: DtlsClientOptions): ResolvedOptions {
  if (!opts.psk && !opts.rpk && !opts.x509) throw new TypeError('psk: { identity, key } or rpk: { publicKey, privateKey } or x509: { certificate, privateKey } is required');
  if (opts.rpk && opts.x509) throw new RangeError('give rpk or x509, not both');
  const psk = opts.psk ? resolvePsk(opts.psk) : undefined;
  const rpk = opts.rpk ? resolveClientRpk(opts.rpk) : undefined;
  const x509 = opts.x509 ? resolveClientX509(opts.x509) : undefined;
  const ids = opts.cipherSuites ?? [...(psk ? [TLS_PSK_WITH_AES_128_CCM_8.id] : []), ...(rpk || x509 ? [TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8.id] : [])];
  if (ids.length === 0) throw new RangeError('no cipher suites offered');
  const suites = ids.map((id) => {
    const s = suiteById(id);
    if (s === undefined) throw new RangeError(`cipher suite ${suiteHex(id)} is not one this client implements`);
    if (s.keyExchange === 'psk' && !psk) throw new RangeError(`cipher suite ${s.name} needs psk`);
    if (s.keyExchange === 'ecdhe_ecdsa' && !rpk && !x509) throw new RangeError(`cipher suite ${s.name} needs rpk or x509`);
    return s;
  });
  const retransmit = { ...DEFAULT_RETRANSMIT, ...opts.retransmit };
  if (!(retransmit.initialMs > 0) || !(retransmit.maxMs >= retransmit.initialMs)) throw new RangeError('retransmit: 0 < initialMs <= maxMs');
  const handshakeTimeoutMs = opts.handshakeTimeoutMs ?? 30_000;
  if (!(handshakeTimeoutMs > 0)) throw new RangeError('handshakeTimeoutMs must be > 0');
  const maxDatagram = opts.maxDatagram ?? 1232;
  if (!(maxDatagram >= 256 && maxDatagram <= 65507)) throw new RangeError('maxDatagram: 256..65507');
  const connectionIdLength = opts.connectionIdLength;
  if (connectionIdLength !== undefined && !(Number.isInteger(connectionIdLength) && connectionIdLength >= 0 && connectionIdLength <= 255)) {
    throw new RangeError('connectionIdLength: 0..255');
  }
  const maxQueued = opts.maxQueued ?? 32;
  if (!(Number.isInteger(maxQueued) && maxQueued >= 1)) throw new RangeError('maxQueued must be a positive integer');
  return {
    psk, rpk, x509, suites,
    offerEms: opts.extendedMasterSecret ?? true,
    requireEms: opts.requireExtendedMasterSecret ?? false,
    retransmit, handshakeTimeoutMs, maxDatagram, maxQueued,
    replayWindow: opts.replayWindow ?? 64,
    minResendGapMs: opts.minResendGapMs ?? 250,
    connectionIdLength,
  };
}

function peerKeyOf(address: string, port: number): string {
  return `${address}|${port}`;
}

export type DtlsClientSessionState = 'handshaking' | 'established';

export class DtlsClientEndpoint extends EventEmitter<CoapEndpointEvents> implements CoapEndpoint {
  readonly type: 'udp4' | 'udp6';
  readonly secure = true;
  private readonly opts: ResolvedOptions;
  private readonly sessions = new Map<string, ClientSession>();
  private readonly host: SessionHost;
  private readonly onDiagnostic: DtlsClientOptions['onDiagnostic'];
  private closing: Promise<void> | undefined;
  /** Sends in flight, so close() lets the last records leave first. */
  private readonly sends: SendTracker;

  private transport: DatagramTransport;

  constructor(transport: DatagramTransport, options: DtlsClientOptions) {
    super();
    this.transport = transport;
    this.sends = new SendTracker(transport);
    this.opts = resolveOptions(options);
    this.onDiagnostic = options.onDiagnostic;
    this.type = transport.type;
    this.host = {
      opts: this.opts,
      send: (datagram, peer, callback) => this.sends.send(datagram, peer.port, peer.address, callback),
      deliver: (plaintext, session) => {
        const peer: PeerInfo = {
          address: session.peer.address,
          family: session.peer.family,
          port: session.peer.port,
          size: plaintext.length,
          identity: session.peerIdentity!,
        };
        this.emit('message', plaintext, peer);
      },
      ended: (session) => {
        const key = peerKeyOf(session.peer.address, session.peer.port);
        if (this.sessions.get(key) === session) this.sessions.delete(key);
      },
      diag: (d) => {
        if (!this.onDiagnostic) return;
        try {
          this.onDiagnostic(d);
        } catch {
          // a listener must not break the endpoint
        }
      },
    };
    this.listen(transport);
  }

  private listen(transport: DatagramTransport): void {
    transport.on('message', (msg, rinfo) => {
      if (this.closing || transport !== this.transport) return; // a socket we left (rebind) reads nothing more
      const session = this.sessions.get(peerKeyOf(rinfo.address, rinfo.port));
      if (!session) return; // nobody we talk to
      try {
        for (const rec of parseDatagram(msg, this.opts.connectionIdLength ?? 0).records) session.handleRecord(rec);
      } catch (err) {
        // Input never throws by design; a bug must not take the process down from a socket callback.
        if (this.listenerCount('error') > 0) this.emit('error', err instanceof Error ? err : new Error(String(err)));
      }
    });
    transport.on('error', (err) => {
      if (transport === this.transport && this.listenerCount('error') > 0) this.emit('error', err);
    });
  }

  /**
   * Moves every session to a new local socket - `transport`, or a fresh UDP socket on the same
   * local address and a port the OS picks - and closes the old one; sessions, keys and sequence
   * numbers stay (no new handshake). What a NAT rebinding does to a device: with Connection IDs
   * the server follows (RFC 9146 §6), without them it no longer recognises us. Resolves with the
   * new local address.
   */
  async rebind(transport?: DatagramTransport): Promise<AddressInfo> {
    if (this.closing) throw new Error('the DTLS endpoint is closed');
    const old = this.transport;
    const next = transport ?? (await UdpEndpoint.create({ host: old.address().address, port: 0, type: old.type }));
    if (this.closing) {
      await next.close();
      throw new Error('the DTLS endpoint is closed');
    }
    this.transport = next;
    this.listen(next);
    this.sends.use(next);
    await this.sends.drained();
    await old.close();
    return next.address();
  }

  /** RFC 9146: the CIDs of the established session with (address, port), ours and the server's; undefined without CIDs. */
  sessionConnectionIds(address: string, port: number): { readonly own: Buffer; readonly peer: Buffer } | undefined {
    const s = this.sessions.get(peerKeyOf(address, port));
    return s?.established ? s.connectionIds : undefined;
  }

  /** Binds a UDP socket (default 0.0.0.0, any port) and runs DTLS client sessions over it. */
  static async create(opts: DtlsClientOptions & UdpEndpointOptions): Promise<DtlsClientEndpoint> {
    resolveOptions(opts); // refuse bad options before binding
    const udp = await UdpEndpoint.create(opts);
    return new DtlsClientEndpoint(udp, opts);
  }

  /** The PSK identity this endpoint authenticates with (undefined without `psk`). */
  get identity(): Buffer | undefined {
    return this.opts.psk ? Buffer.from(this.opts.psk.identity) : undefined;
  }

  /** Our raw public key, SubjectPublicKeyInfo DER (undefined without `rpk`). */
  get publicKey(): Buffer | undefined {
    return this.opts.rpk ? Buffer.from(this.opts.rpk.spki) : undefined;
  }

  /** Our X.509 chain, leaf first, DER (undefined without `x509`). */
  get certificateChain(): Buffer[] | undefined {
    return this.opts.x509?.chain.map((c) => Buffer.from(c));
  }

  /** How the server of the established session with (address, port) authenticated (its PSK identity, raw public key or certificate). */
  sessionPeerIdentity(address: string, port: number): PeerIdentity | undefined {
    const s = this.sessions.get(peerKeyOf(address, port));
    return s?.established ? s.peerIdentity : undefined;
  }

  /** Where the session with (address, port) stands; undefined when there is none. */
  sessionState(address: string, port: number): DtlsClientSessionState | undefined {
    const s = this.sessions.get(peerKeyOf(address, port));
    if (!s) return undefined;
    return s.established ? 'established' : 'handshaking';
  }

  /** The negotiated cipher suite of the established session with (address, port). */
  sessionSuite(address: string, port: number): CipherSuite | undefined {
    const s = this.sessions.get(peerKeyOf(address, port));
    return s?.established ? s.suite : undefined;
  }

  send(msg: Uint8Array, port: number, address: string, callback?: SendCallback): void {
    if (this.closing) {
      if (callback) later(callback, null);
      return;
    }
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      if (callback) later(callback, new RangeError(`bad port ${port}`));
      return;
    }
    const data = Buffer.from(msg.buffer, msg.byteOffset, msg.byteLength);
    const key = peerKeyOf(address, port);
    let session = this.sessions.get(key);
    if (!session) {
      session = new ClientSession({ address, port, family: isIPv6(address) ? 'IPv6' : 'IPv4' }, this.host);
      this.sessions.set(key, session);
      session.sendApplicationData(Buffer.from(data), callback);
      session.start();
      return;
    }
    session.sendApplicationData(Buffer.from(data), callback);
  }

  address(): AddressInfo {
    return this.transport.address();
  }

  /** Sends close_notify on every established session, fails queued sends, then closes the socket. Idempotent. */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    for (const s of this.sessions.values()) s.shutdown();
    this.sessions.clear();
    this.closing = (async () => {
      await this.sends.drained(); // let the close_notify alerts leave first
      await this.transport.close();
      this.emit('close');
    })();
    return this.closing;
  }
}
