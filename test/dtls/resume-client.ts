/**
 * A scripted DTLS 1.2 PSK client for the resumption tests, built from src/dtls primitives and the
 * key schedule of RFC 5246 (prf.ts is checked against the RFC vectors): a full handshake that
 * remembers the session_id and master secret it computed itself, and the abbreviated handshake
 * (RFC 5246 §7.3) offering them again. Pure state machine: `hello()` gives the first datagrams,
 * `receive(d)` what to send back. `flights` keeps every record the server sent, decrypted, so a test
 * can check the exact contents of a flight.
 */
import { timingSafeEqual, randomBytes } from 'node:crypto';
import { isChangeCipherSpec, parseAlert, serializeAlert, type Alert } from '../../src/dtls/alert.js';
import { AlertLevel, ContentType, DTLS_1_2, ExtensionType, HandshakeType } from '../../src/dtls/constants.js';
import { Flight, type FlightEntry, type RecordWriter } from '../../src/dtls/flight.js';
import { fullMessage, parseHandshakeFragments, type HandshakeMessage } from '../../src/dtls/handshake.js';
import {
  findExtension, parseHelloVerifyRequest, parseServerHello, serializeClientHello, serializePskClientKeyExchange, type Extension, type ServerHello,
} from '../../src/dtls/messages.js';
import { extendedMasterSecret, keyBlock, masterSecret, pskPremasterSecret, sha256, verifyData } from '../../src/dtls/prf.js';
import { createProtection, type RecordProtection } from '../../src/dtls/protection.js';
import { HandshakeReassembler } from '../../src/dtls/reassembly.js';
import { parseDatagram, serializeRecord } from '../../src/dtls/record.js';
import { suiteById, type CipherSuite } from '../../src/dtls/suites.js';

export interface ResumeClientOptions {
  readonly identity: Uint8Array;
  readonly psk: Uint8Array;
  /** Offer extended_master_secret (default true). */
  readonly extendedMasterSecret?: boolean;
  readonly cipherSuites?: readonly number[];
  /** Resume this session: its id and the master secret we computed when it was made. */
  readonly session?: { readonly id: Buffer; readonly master: Buffer };
  readonly extraExtensions?: readonly Extension[];
  /** Corrupt our Finished of the abbreviated handshake. */
  readonly badFinished?: boolean;
}

/** A record the server sent, after decryption. */
export interface SeenRecord {
  readonly type: number;
  readonly epoch: number;
  readonly seq: number;
  readonly payload: Buffer;
}

export class ResumeClient {
  state: 'start' | 'hello_sent' | 'finished_sent' | 'established' | 'closed' = 'start';
  readonly alerts: Alert[] = [];
  readonly received: Buffer[] = [];
  /** Every record the server sent us (decrypted once we have keys), in order. */
  readonly seen: SeenRecord[] = [];
  serverHello: ServerHello | undefined;
  /** True when the server answered our session_id with the abbreviated handshake. */
  abbreviated = false;
  /** The server's Finished verified (both kinds of handshake). */
  serverFinishedValid = false;
  /** Session id (from the ServerHello) and the master secret we derived: what a later resumption needs. */
  session: { id: Buffer; master: Buffer } | undefined;

  readonly random = randomBytes(32);
  /** Our last ClientHello as a handshake message (the transcript's first entry). */
  helloMessage: Buffer | undefined;
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
  private suite: CipherSuite | undefined;
  private ems = false;
  private flight: Flight | undefined;

  constructor(readonly options: ResumeClientOptions) {}

  private readonly writer: RecordWriter = {
    overhead: (epoch) => (epoch > 0 ? this.writeProt!.maxOverhead : 0),
    record: (type, epoch, payload) => this.record(type, epoch, payload),
  };

  private record(type: number, epoch: number, payload: Buffer): Buffer {
    const seq = this.writeSeq[epoch]!++;
    const fragment = epoch > 0 ? this.writeProt!.encrypt(type, DTLS_1_2, epoch, seq, payload) : payload;
    return serializeRecord({ type, version: DTLS_1_2, epoch, seq, fragment });
  }

  hello(): Buffer[] {
    const exts: Extension[] = [{ type: ExtensionType.renegotiationInfo, data: Buffer.from([0]) }];
    if (this.options.extendedMasterSecret ?? true) exts.push({ type: ExtensionType.extendedMasterSecret, data: Buffer.alloc(0) });
    exts.push(...(this.options.extraExtensions ?? []));
    const body = serializeClientHello({
      clientVersion: DTLS_1_2, random: this.random, sessionId: this.options.session?.id ?? Buffer.alloc(0), cookie: this.cookie,
      cipherSuites: this.options.cipherSuites ?? [0xc0a8], compressionMethods: [0], extensions: exts,
    });
    const seq = this.messageSeq++;
    this.helloMessage = fullMessage(HandshakeType.clientHello, seq, body);
    this.transcript = [this.helloMessage];
    this.flight = new Flight([{ kind: 'handshake', epoch: 0, msgType: HandshakeType.clientHello, messageSeq: seq, body }], 1400);
    this.state = 'hello_sent';
    return this.flight.datagrams(this.writer);
  }

  /** Our last flight again (new record numbers). */
  repeatLastFlight(): Buffer[] {
    return this.flight ? this.flight.datagrams(this.writer) : [];
  }

  receive(datagram: Buffer): Buffer[] {
    const out: Buffer[] = [];
    for (const rec of parseDatagram(datagram).records) {
      if (this.state === 'closed') break;
      if (rec.epoch !== this.readEpoch) continue;
      let payload = rec.fragment;
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
            if (a.level === AlertLevel.fatal) this.state = 'closed';
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
          if (this.state === 'established') {
            // The server repeats its abbreviated flight: our Finished was lost.
            if (this.abbreviated) out.push(...this.repeatLastFlight());
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
        this.cookie = Buffer.from(hvr.cookie);
        return this.hello();
      }
      case HandshakeType.serverHello: {
        const sh = parseServerHello(m.body);
        if (!sh) throw new Error('bad ServerHello');
        this.serverHello = { ...sh, random: Buffer.from(sh.random), sessionId: Buffer.from(sh.sessionId) };
        this.suite = suiteById(sh.cipherSuite);
        this.ems = findExtension(sh.extensions, ExtensionType.extendedMasterSecret) !== undefined;
        this.transcript.push(full);
        const offered = this.options.session;
        if (offered !== undefined && offered.id.equals(sh.sessionId)) {
          // RFC 5246 §7.3: the server resumes; keys from the cached master secret and the new randoms.
          this.abbreviated = true;
          this.master = Buffer.from(offered.master);
          this.deriveKeys();
        }
        return [];
      }
      case HandshakeType.serverHelloDone:
        this.transcript.push(full);
        return this.keyExchange();
      case HandshakeType.finished: {
        const expected = verifyData(this.master!, 'server', sha256(...this.transcript));
        this.serverFinishedValid = timingSafeEqual(expected, m.body);
        if (!this.serverFinishedValid) throw new Error('server Finished does not verify');
        this.transcript.push(full);
        if (!this.abbreviated) {
          this.state = 'established';
          this.session = { id: Buffer.from(this.serverHello!.sessionId), master: Buffer.from(this.master!) };
          return [];
        }
        return this.finish([]);
      }
      default:
        this.transcript.push(full);
        return [];
    }
  }

  private deriveKeys(): void {
    const kb = keyBlock(this.master!, this.random, this.serverHello!.random, this.suite!);
    this.writeProt = createProtection(this.suite!, kb.client);
    this.pendingRead = createProtection(this.suite!, kb.server);
  }

  private keyExchange(): Buffer[] {
    const entries: FlightEntry[] = [];
    const seq = this.messageSeq++;
    const cke = serializePskClientKeyExchange(this.options.identity);
    this.transcript.push(fullMessage(HandshakeType.clientKeyExchange, seq, cke));
    entries.push({ kind: 'handshake', epoch: 0, msgType: HandshakeType.clientKeyExchange, messageSeq: seq, body: cke });
    const pms = pskPremasterSecret(this.options.psk);
    this.master = this.ems ? extendedMasterSecret(pms, sha256(...this.transcript)) : masterSecret(pms, this.random, this.serverHello!.random);
    this.deriveKeys();
    return this.finish(entries);
  }

  /** CCS + our Finished (after `entries`): flight 5 of a full handshake, flight 3 of an abbreviated one. */
  private finish(entries: FlightEntry[]): Buffer[] {
    const fin = verifyData(this.master!, 'client', sha256(...this.transcript));
    if (this.options.badFinished && this.abbreviated) fin[0]! ^= 0xff;
    const seq = this.messageSeq++;
    this.transcript.push(fullMessage(HandshakeType.finished, seq, fin));
    entries.push({ kind: 'ccs', epoch: 0 }, { kind: 'handshake', epoch: 1, msgType: HandshakeType.finished, messageSeq: seq, body: fin });
    this.flight = new Flight(entries, 1400);
    if (this.abbreviated) {
      this.state = 'established';
      this.session = { id: Buffer.from(this.serverHello!.sessionId), master: Buffer.from(this.master!) };
    } else {
      this.state = 'finished_sent';
    }
    return this.flight.datagrams(this.writer);
  }

  send(data: Uint8Array): Buffer {
    if (this.state !== 'established') throw new Error(`cannot send in state ${this.state}`);
    return this.record(ContentType.applicationData, 1, Buffer.from(data));
  }

  alert(level: number, description: number): Buffer {
    return this.record(ContentType.alert, this.writeProt ? 1 : 0, serializeAlert({ level, description }));
  }
}
