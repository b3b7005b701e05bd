/**
 * A small DTLS 1.2 PSK and ECDHE_ECDSA/RPK *client* for tests, built from src/dtls primitives (records, handshake
 * framing, messages, key schedule, record protection, flights). It is a pure state machine:
 * `hello()` gives the first datagrams, `receive(datagram)` returns what to send back, `send()`
 * encrypts application data. `UdpPskClient` runs it over a real socket with a simple
 * retransmission loop. Deliberately lenient knobs (`options`) let tests misbehave on purpose.
 * Session resumption (RFC 5246 §7.3): after a full handshake `session` holds the session_id and
 * the master secret we computed ourselves; `options.session` offers them again, and a ServerHello
 * echoing the id leads to the abbreviated handshake (server CCS + Finished, then ours). `seen`
 * keeps every record the server sent, decrypted, so a test can check a flight's exact contents.
 */
import { createSocket, type Socket } from 'node:dgram';
import { randomBytes, timingSafeEqual, X509Certificate, type KeyObject } from 'node:crypto';
import { ecdsaSign, ecdsaVerify, EphemeralEcdh, parseP256Spki } from '../../src/dtls/ecc.js';
import { isChangeCipherSpec, parseAlert, serializeAlert, type Alert } from '../../src/dtls/alert.js';
import {
  AlertDescription, AlertLevel, CertificateType, ContentType, DTLS_1_2, ECDSA_SHA256, ExtensionType, HandshakeType, NamedGroup,
} from '../../src/dtls/constants.js';
import { Flight, type FlightEntry, type RecordWriter } from '../../src/dtls/flight.js';
import { fullMessage, parseHandshakeFragments, type HandshakeMessage } from '../../src/dtls/handshake.js';
import {
  findExtension, parseCertificateList, parseCertificateRequest, parseEcdheServerKeyExchange, parseHelloVerifyRequest, parsePskServerKeyExchange,
  parseRawPublicKeyCertificate, parseServerHello, serializeCertificateVerify, serializeClientHello, serializeEcdhClientKeyExchange,
  serializeCertificateList, serializeEcdhParams, serializePskClientKeyExchange, serializeRawPublicKeyCertificate, type CertificateRequest, type ClientHello,
  type EcdheServerKeyExchange, type Extension, type ServerHello,
} from '../../src/dtls/messages.js';
import { extendedMasterSecret, keyBlock, masterSecret, pskPremasterSecret, sha256, verifyData } from '../../src/dtls/prf.js';
import { createProtection, type RecordProtection } from '../../src/dtls/protection.js';
import { HandshakeReassembler } from '../../src/dtls/reassembly.js';
import { parseDatagram, serializeRecord } from '../../src/dtls/record.js';
import { suiteById, type CipherSuite } from '../../src/dtls/suites.js';

export interface RpkClientKey {
  /** SubjectPublicKeyInfo DER. */
  readonly publicKey: Uint8Array;
  readonly privateKey: KeyObject;
}

export interface PskClientOptions {
  /** PSK suites: our identity and key. */
  readonly identity?: Uint8Array;
  readonly psk?: Uint8Array;
  /**
   * ECDHE_ECDSA suites: our raw public key pair. With it the ClientHello carries supported_groups,
   * ec_point_formats, signature_algorithms and both certificate-type extensions (RawPublicKey).
   */
  readonly rpk?: RpkClientKey;
  /**
   * ECDHE_ECDSA suites with X.509: our chain (DER, leaf first) and the leaf's private key. With it
   * (and no `rpk`) the ClientHello carries the ECC extensions but no certificate-type extensions
   * (X.509 both ways) unless `clientCertificateTypes` / `serverCertificateTypes` say otherwise.
   */
  readonly x509?: { readonly chain: readonly Uint8Array[]; readonly privateKey: KeyObject };
  /** Override the ECC hello extensions: `null` leaves one out. */
  readonly groups?: readonly number[] | null;
  readonly pointFormats?: readonly number[] | null;
  readonly signatureAlgorithms?: readonly number[] | null;
  readonly clientCertificateTypes?: readonly number[] | null;
  readonly serverCertificateTypes?: readonly number[] | null;
  /** Misbehave in flight 5 (ECDHE): send an empty Certificate, a corrupted signature, or this ECDH point. */
  readonly noCertificate?: boolean;
  readonly badCertificateVerify?: boolean;
  readonly ecdhPoint?: Buffer;
  /** Prove possession of this key while presenting `rpk.publicKey` (a stolen public key). */
  readonly signWith?: KeyObject;
  readonly cipherSuites?: readonly number[];
  /** Offer extended_master_secret (default true). */
  readonly extendedMasterSecret?: boolean;
  /** Send the empty renegotiation_info extension (default true). */
  readonly renegotiationInfo?: boolean;
  /** Extra extensions for the ClientHello (e.g. unknown ones). */
  readonly extraExtensions?: readonly Extension[];
  readonly clientVersion?: number;
  /** Largest datagram (default 1400); small values force fragmentation of our flights. */
  readonly maxDatagram?: number;
  /** Corrupt our Finished verify_data (tests decrypt_error); in an abbreviated handshake too. */
  readonly badFinished?: boolean;
  /** Resume this session: its id and the master secret we computed when it was made. */
  readonly session?: { readonly id: Buffer; readonly master: Buffer };
}

/** A record the server sent, after decryption. */
export interface SeenRecord {
  readonly type: number;
  readonly epoch: number;
  readonly seq: number;
  readonly payload: Buffer;
}

export type ClientState = 'start' | 'hello_sent' | 'key_exchange_sent' | 'established' | 'closed';

export class PskClient {
  state: ClientState = 'start';
  readonly alerts: Alert[] = [];
  readonly received: Buffer[] = [];
  /** Every record the server sent us (decrypted once we have keys), in order. */
  readonly seen: SeenRecord[] = [];
  helloVerifyRequests = 0;
  serverHello: ServerHello | undefined;
  /** True when the server answered our offered session_id with the abbreviated handshake. */
  abbreviated = false;
  /** The server's Finished verified (both kinds of handshake). */
  serverFinishedValid = false;
  /** Session id (from the ServerHello) and the master secret we derived: what a later resumption needs. */
  session: { id: Buffer; master: Buffer } | undefined;
  /** Our last ClientHello as a handshake message (the transcript's first entry). */
  helloMessage: Buffer | undefined;
  suite: CipherSuite | undefined;
  ems = false;
  serverHint: Buffer | undefined;
  serverExtensions: readonly Extension[] | undefined;
  /** ECDHE: what the server sent. */
  serverSpki: Buffer | undefined;
  serverKeyExchange: EcdheServerKeyExchange | undefined;
  /** Whether the ServerKeyExchange signature verified with the server's raw public key. */
  serverSignatureValid: boolean | undefined;
  certificateRequest: CertificateRequest | undefined;
  /** X.509: the server's chain (DER, leaf first) when it sent a certificate. */
  serverChain: Buffer[] | undefined;

  private readonly random = randomBytes(32);
  private cookie = Buffer.alloc(0);
  private messageSeq = 0;
  private transcript: Buffer[] = [];
  private readonly reassembler = new HandshakeReassembler(0);
  private readonly writeSeq = [0, 0];
  private writeProt: RecordProtection | undefined;
  private readProt: RecordProtection | undefined;
  private pendingRead: RecordProtection | undefined;
  private readEpoch = 0;
  private master: Buffer | undefined;
  private flight: Flight | undefined;
  /** Largest datagram for the flights built from now on. */
  maxDatagram: number;

  constructor(readonly options: PskClientOptions) {
    this.maxDatagram = options.maxDatagram ?? 1400;
  }

  private readonly writer: RecordWriter = {
    overhead: (epoch) => (epoch > 0 ? this.writeProt!.maxOverhead : 0),
    record: (type, epoch, payload) => this.record(type, epoch, payload),
  };

  private record(type: number, epoch: number, payload: Buffer): Buffer {
    const seq = this.writeSeq[epoch]!++;
    const fragment = epoch > 0 ? this.writeProt!.encrypt(type, DTLS_1_2, epoch, seq, payload) : payload;
    return serializeRecord({ type, version: DTLS_1_2, epoch, seq, fragment });
  }

  clientHello(): ClientHello {
    const exts: Extension[] = [];
    if (this.options.extendedMasterSecret ?? true) exts.push({ type: ExtensionType.extendedMasterSecret, data: Buffer.alloc(0) });
    if (this.options.renegotiationInfo ?? true) exts.push({ type: ExtensionType.renegotiationInfo, data: Buffer.from([0]) });
    const o = this.options;
    if (o.rpk !== undefined || o.x509 !== undefined) {
      const u16list = (v: readonly number[]): Buffer => {
        const b = Buffer.alloc(2 + v.length * 2);
        b.writeUInt16BE(v.length * 2, 0);
        v.forEach((x, i) => b.writeUInt16BE(x, 2 + i * 2));
        return b;
      };
      const u8list = (v: readonly number[]): Buffer => Buffer.from([v.length, ...v]);
      const add = (type: number, v: readonly number[] | null | undefined, dflt: readonly number[] | null, enc: (v: readonly number[]) => Buffer): void => {
        const list = v === undefined ? dflt : v;
        if (list !== null) exts.push({ type, data: enc(list) });
      };
      const certTypes = o.rpk !== undefined ? [CertificateType.rawPublicKey] : null;
      add(ExtensionType.supportedGroups, o.groups, [NamedGroup.secp256r1], u16list);
      add(ExtensionType.ecPointFormats, o.pointFormats, [0], u8list);
      add(ExtensionType.signatureAlgorithms, o.signatureAlgorithms, [ECDSA_SHA256], u16list);
      add(ExtensionType.clientCertificateType, o.clientCertificateTypes, certTypes, u8list);
      add(ExtensionType.serverCertificateType, o.serverCertificateTypes, certTypes, u8list);
    }
    exts.push(...(this.options.extraExtensions ?? []));
    return {
      clientVersion: this.options.clientVersion ?? DTLS_1_2, random: this.random, sessionId: this.options.session?.id ?? Buffer.alloc(0), cookie: this.cookie,
      cipherSuites: this.options.cipherSuites ?? [0xc0a8], compressionMethods: [0], extensions: exts,
    };
  }

  /** Flight 1 (or 3 once a cookie is known). */
  hello(): Buffer[] {
    const body = serializeClientHello(this.clientHello());
    const seq = this.messageSeq++;
    this.helloMessage = fullMessage(HandshakeType.clientHello, seq, body);
    this.transcript = [this.helloMessage];
    this.flight = new Flight([{ kind: 'handshake', epoch: 0, msgType: HandshakeType.clientHello, messageSeq: seq, body }], this.maxDatagram);
    this.state = 'hello_sent';
    return this.flight.datagrams(this.writer);
  }

  /** Our last flight again, with new record sequence numbers. */
  retransmit(): Buffer[] {
    return this.flight && this.state !== 'established' && this.state !== 'closed' ? this.flight.datagrams(this.writer) : [];
  }

  /** The last flight kept even when established (to replay flight 5 on purpose). */
  repeatLastFlight(): Buffer[] {
    return this.flight ? this.flight.datagrams(this.writer) : [];
  }

  receive(datagram: Buffer): Buffer[] {
    const out: Buffer[] = [];
    for (const rec of parseDatagram(datagram).records) {
      if (this.state === 'closed') break;
      let payload = rec.fragment;
      if (rec.epoch !== this.readEpoch) continue;
      if (rec.epoch > 0) {
        const pt = this.readProt!.decrypt(rec.type, rec.version, rec.epoch, rec.seq, rec.fragment);
        if (pt === undefined) continue;
        payload = pt;
      }
      this.seen.push({ type: rec.type, epoch: rec.epoch, seq: rec.seq, payload: Buffer.from(payload) });
      switch (rec.type) {
        case ContentType.alert: {
          const a = parseAlert(payload);
          if (a) {
            this.alerts.push(a);
            if (a.level === AlertLevel.fatal || a.description === AlertDescription.closeNotify) this.state = 'closed';
          }
          break;
        }
        case ContentType.changeCipherSpec:
          if (isChangeCipherSpec(payload) && this.pendingRead) {
            this.readProt = this.pendingRead;
            this.readEpoch = 1;
          }
          break;
        case ContentType.applicationData:
          if (this.state === 'established') this.received.push(Buffer.from(payload));
          break;
        case ContentType.handshake:
          if (this.state === 'established' && this.abbreviated) {
            // The server repeats its abbreviated flight: our Finished was lost.
            out.push(...this.repeatLastFlight());
            break;
          }
          for (const f of parseHandshakeFragments(payload) ?? []) this.reassembler.add(f);
          for (let m = this.reassembler.take(); m; m = this.reassembler.take()) out.push(...this.onMessage(m));
          break;
      }
    }
    return out;
  }

  private onMessage(m: HandshakeMessage): Buffer[] {
    const full = fullMessage(m.msgType, m.messageSeq, m.body);
    switch (m.msgType) {
      case HandshakeType.helloVerifyRequest: {
        const hvr = parseHelloVerifyRequest(m.body);
        if (!hvr) return [];
        this.helloVerifyRequests++;
        this.cookie = Buffer.from(hvr.cookie);
        return this.hello();
      }
      case HandshakeType.serverHello: {
        const sh = parseServerHello(m.body);
        if (!sh) throw new Error('bad ServerHello');
        this.serverHello = { ...sh, random: Buffer.from(sh.random), sessionId: Buffer.from(sh.sessionId) };
        this.suite = suiteById(sh.cipherSuite);
        this.ems = findExtension(sh.extensions, ExtensionType.extendedMasterSecret) !== undefined;
        this.serverExtensions = sh.extensions;
        this.serverRandom = Buffer.from(sh.random);
        this.transcript.push(full);
        const offered = this.options.session;
        if (offered !== undefined && offered.id.length > 0 && offered.id.equals(sh.sessionId)) {
          // RFC 5246 §7.3: the server resumes; keys from the cached master secret and the new randoms.
          this.abbreviated = true;
          this.master = Buffer.from(offered.master);
          this.deriveKeys();
        }
        return [];
      }
      case HandshakeType.certificate:
        if (this.negotiatedType(ExtensionType.serverCertificateType) === CertificateType.x509) {
          this.serverChain = parseCertificateList(m.body)?.map((c) => Buffer.from(c));
          const leaf = this.serverChain?.[0];
          this.serverSpki = leaf === undefined ? undefined : new X509Certificate(leaf).publicKey.export({ format: 'der', type: 'spki' });
        } else {
          this.serverSpki = parseRawPublicKeyCertificate(m.body);
        }
        this.transcript.push(full);
        return [];
      case HandshakeType.serverKeyExchange:
        if (this.suite?.keyExchange === 'ecdhe_ecdsa') {
          const ske = parseEcdheServerKeyExchange(m.body);
          if (!ske) throw new Error('bad ServerKeyExchange');
          this.serverKeyExchange = ske;
          const key = this.serverSpki && parseP256Spki(this.serverSpki);
          const params = serializeEcdhParams(ske.namedCurve, ske.publicPoint);
          this.serverSignatureValid = key !== undefined && ske.signatureAlgorithm === ECDSA_SHA256
            && ecdsaVerify(key.key, ske.signature, this.random, this.serverRandom, params);
        } else {
          this.serverHint = parsePskServerKeyExchange(m.body);
        }
        this.transcript.push(full);
        return [];
      case HandshakeType.certificateRequest:
        this.certificateRequest = parseCertificateRequest(m.body);
        this.transcript.push(full);
        return [];
      case HandshakeType.serverHelloDone:
        this.transcript.push(full);
        return this.keyExchange();
      case HandshakeType.finished: {
        const expected = verifyData(this.master!, 'server', sha256(...this.transcript));
        this.serverFinishedValid = expected.length === m.body.length && timingSafeEqual(expected, m.body);
        if (!this.serverFinishedValid) throw new Error('server Finished does not verify');
        this.transcript.push(full);
        if (this.abbreviated) return this.finish([]);
        this.markEstablished();
        return [];
      }
      default:
        return [];
    }
  }

  private serverRandom = Buffer.alloc(32);

  /** The certificate type the ServerHello chose (RFC 7250: an absent extension means X.509). */
  negotiatedType(ext: number): number {
    return findExtension(this.serverExtensions, ext)?.data[0] ?? CertificateType.x509;
  }

  get serverRandomBytes(): Buffer {
    return this.serverRandom;
  }

  private keyExchange(): Buffer[] {
    const suite = this.suite!;
    const entries: FlightEntry[] = [];
    const push = (msgType: number, body: Buffer): void => {
      const messageSeq = this.messageSeq++;
      this.transcript.push(fullMessage(msgType, messageSeq, body));
      entries.push({ kind: 'handshake', epoch: 0, msgType, messageSeq, body });
    };
    let pms: Buffer;
    if (suite.keyExchange === 'ecdhe_ecdsa') {
      const x509 = this.negotiatedType(ExtensionType.clientCertificateType) === CertificateType.x509;
      if (this.certificateRequest) {
        push(HandshakeType.certificate, this.options.noCertificate ? Buffer.alloc(3)
          : x509 ? serializeCertificateList(this.options.x509!.chain) : serializeRawPublicKeyCertificate(this.options.rpk!.publicKey));
      }
      const ecdh = new EphemeralEcdh();
      push(HandshakeType.clientKeyExchange, serializeEcdhClientKeyExchange(this.options.ecdhPoint ?? ecdh.publicPoint));
      pms = ecdh.sharedSecret(this.serverKeyExchange!.publicPoint) ?? Buffer.alloc(32);
    } else {
      push(HandshakeType.clientKeyExchange, serializePskClientKeyExchange(this.options.identity!));
      pms = pskPremasterSecret(this.options.psk!);
    }
    this.master = this.ems ? extendedMasterSecret(pms, sha256(...this.transcript)) : masterSecret(pms, this.random, this.serverRandom);
    this.deriveKeys();
    if (suite.keyExchange === 'ecdhe_ecdsa' && this.certificateRequest && !this.options.noCertificate) {
      const own = this.negotiatedType(ExtensionType.clientCertificateType) === CertificateType.x509 ? this.options.x509!.privateKey : this.options.rpk!.privateKey;
      const sig = ecdsaSign(this.options.signWith ?? own, ...this.transcript);
      if (this.options.badCertificateVerify) sig[sig.length - 1]! ^= 0x01;
      push(HandshakeType.certificateVerify, serializeCertificateVerify({ signatureAlgorithm: ECDSA_SHA256, signature: sig }));
    }
    return this.finish(entries);
  }

  /** Record protection both ways from the master secret and both randoms (reading switches at the server's CCS). */
  private deriveKeys(): void {
    const kb = keyBlock(this.master!, this.random, this.serverRandom, this.suite!);
    this.writeProt = createProtection(this.suite!, kb.client);
    this.pendingRead = createProtection(this.suite!, kb.server);
  }

  /** CCS + our Finished (after `entries`): flight 5 of a full handshake, flight 3 of an abbreviated one. */
  private finish(entries: FlightEntry[]): Buffer[] {
    const finished = verifyData(this.master!, 'client', sha256(...this.transcript));
    if (this.options.badFinished) finished[0]! ^= 0xff;
    const finSeq = this.messageSeq++;
    this.transcript.push(fullMessage(HandshakeType.finished, finSeq, finished));
    entries.push(
      { kind: 'ccs', epoch: 0 },
      { kind: 'handshake', epoch: 1, msgType: HandshakeType.finished, messageSeq: finSeq, body: finished },
    );
    this.flight = new Flight(entries, this.maxDatagram);
    if (this.abbreviated) this.markEstablished();
    else this.state = 'key_exchange_sent';
    return this.flight.datagrams(this.writer);
  }

  private markEstablished(): void {
    this.state = 'established';
    this.session = { id: Buffer.from(this.serverHello!.sessionId), master: Buffer.from(this.master!) };
  }

  /** One application-data record in epoch 1. */
  send(data: Uint8Array): Buffer {
    if (this.state !== 'established') throw new Error(`cannot send in state ${this.state}`);
    return this.record(ContentType.applicationData, 1, Buffer.from(data));
  }

  /** An arbitrary record in epoch 1 (e.g. a ClientHello to try renegotiation). */
  sendRaw(type: number, payload: Buffer): Buffer {
    return this.record(type, 1, payload);
  }

  /** An alert record: protected once established, plain before. */
  alert(level: number, description: number): Buffer {
    return this.record(ContentType.alert, this.state === 'established' ? 1 : 0, serializeAlert({ level, description }));
  }

  closeNotify(): Buffer {
    return this.alert(AlertLevel.warning, AlertDescription.closeNotify);
  }
}

/** The PSK client over a real UDP socket, with a simple retransmission loop for the handshake. */
export class UdpPskClient {
  readonly client: PskClient;
  private readonly socket: Socket;
  private waiters: (() => void)[] = [];

  private constructor(socket: Socket, options: PskClientOptions, private readonly port: number, private readonly host: string) {
    this.socket = socket;
    this.client = new PskClient(options);
    socket.on('message', (msg) => {
      let out: Buffer[] = [];
      try {
        out = this.client.receive(msg);
      } catch {
        /* a test will see the state */
      }
      for (const d of out) this.socket.send(d, this.port, this.host);
      for (const w of this.waiters.splice(0)) w();
    });
  }

  static async open(port: number, options: PskClientOptions, host = '127.0.0.1'): Promise<UdpPskClient> {
    const socket = createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
    return new UdpPskClient(socket, options, port, host);
  }

  get localPort(): number {
    return this.socket.address().port;
  }

  /** Waits until `pred()` holds (re-checked on every datagram and every `retransmitMs`), retransmitting the handshake flight meanwhile. */
  async until(pred: () => boolean, timeoutMs = 5000, retransmitMs = 300): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pred()) {
      if (Date.now() > deadline) throw new Error(`timed out in client state ${this.client.state}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          for (const d of this.client.retransmit()) this.socket.send(d, this.port, this.host);
          resolve();
        }, retransmitMs);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  async handshake(timeoutMs = 5000): Promise<void> {
    for (const d of this.client.hello()) this.socket.send(d, this.port, this.host);
    await this.until(() => this.client.state === 'established' || this.client.state === 'closed', timeoutMs);
    if (this.client.state !== 'established') throw new Error(`handshake failed: alerts ${JSON.stringify(this.client.alerts)}`);
  }

  sendDatagram(d: Buffer): void {
    this.socket.send(d, this.port, this.host);
  }

  send(data: Uint8Array): void {
    this.sendDatagram(this.client.send(data));
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}
