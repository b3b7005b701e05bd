/**
 * Outgoing flights and their retransmission (RFC 6347 §4.2.4). A flight is the list of messages
 * one side sends before waiting for the other (e.g. ServerHello + ServerHelloDone). It is kept
 * so the whole of it can be sent again - with new record sequence numbers, same message_seq -
 * when the retransmission timer fires or the peer repeats its previous flight.
 *
 * `Flight.datagrams` fragments handshake messages to fit the datagram size, wraps each fragment
 * in a record through the caller's `RecordWriter` (which numbers and protects it), and packs the
 * records into as few datagrams as fit. `RetransmitTimer` is the RFC's timer: initial value,
 * doubled after each expiry up to a maximum.
 */
import { ContentType, MAX_PLAINTEXT_LENGTH } from './constants.js';
import { fragmentMessage, HANDSHAKE_HEADER_LENGTH } from './handshake.js';
import { RECORD_HEADER_LENGTH } from './record.js';
import { CHANGE_CIPHER_SPEC } from './alert.js';

export type FlightEntry =
  | { readonly kind: 'handshake'; readonly epoch: number; readonly msgType: number; readonly messageSeq: number; readonly body: Buffer }
  | { readonly kind: 'ccs'; readonly epoch: number };

export interface RecordWriter {
  /** Bytes protection adds to a record's payload in `epoch` (0 for epoch 0). */
  overhead(epoch: number): number;
  /** A complete record (header included) for `payload`, numbered with the next sequence number of `epoch`. */
  record(type: number, epoch: number, payload: Buffer): Buffer;
}

export class Flight {
  constructor(
    readonly entries: readonly FlightEntry[],
    /** Largest datagram to send (bytes of UDP payload). */
    private readonly maxDatagram: number,
    /**
     * Largest record plaintext (RFC 6066 max_fragment_length / RFC 8449 record_size_limit): handshake
     * messages are fragmented so no record's payload exceeds it. Default 2^14.
     */
    private readonly maxPlaintext: number = MAX_PLAINTEXT_LENGTH,
  ) {}

  datagrams(writer: RecordWriter): Buffer[] {
    const records: Buffer[] = [];
    for (const e of this.entries) {
      if (e.kind === 'ccs') {
        records.push(writer.record(ContentType.changeCipherSpec, e.epoch, CHANGE_CIPHER_SPEC));
        continue;
      }
      const room = Math.min(
        this.maxDatagram - RECORD_HEADER_LENGTH - writer.overhead(e.epoch) - HANDSHAKE_HEADER_LENGTH,
        this.maxPlaintext - HANDSHAKE_HEADER_LENGTH,
      );
      for (const frag of fragmentMessage(e.msgType, e.messageSeq, e.body, Math.max(1, room))) {
        records.push(writer.record(ContentType.handshake, e.epoch, frag));
      }
    }
    return packRecords(records, this.maxDatagram);
  }
}

/** Greedy packing of whole records into datagrams of at most `maxDatagram` bytes (a bigger record goes alone). */
export function packRecords(records: readonly Buffer[], maxDatagram: number): Buffer[] {
  const out: Buffer[] = [];
  let current: Buffer[] = [];
  let size = 0;
  for (const r of records) {
    if (current.length > 0 && size + r.length > maxDatagram) {
      out.push(Buffer.concat(current));
      current = [];
      size = 0;
    }
    current.push(r);
    size += r.length;
  }
  if (current.length > 0) out.push(Buffer.concat(current));
  return out;
}

export interface RetransmitOptions {
  /** First timeout (RFC 6347: 1 s). */
  readonly initialMs: number;
  /** Ceiling of the doubling (RFC 6347: at least 60 s). */
  readonly maxMs: number;
}

export const DEFAULT_RETRANSMIT: RetransmitOptions = { initialMs: 1000, maxMs: 60_000 };

export class RetransmitTimer {
  private timer: NodeJS.Timeout | undefined;
  private currentMs: number;

  constructor(private readonly opts: RetransmitOptions, private readonly onExpiry: () => void) {
    this.currentMs = opts.initialMs;
  }

  /** The timeout the next start() uses. */
  get timeoutMs(): number {
    return this.currentMs;
  }

  get running(): boolean {
    return this.timer !== undefined;
  }

  /** Starts (or restarts) the timer with the current timeout. */
  start(): void {
    this.stop();
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.currentMs = Math.min(this.opts.maxMs, this.currentMs * 2);
      this.onExpiry();
    }, this.currentMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Back to the initial timeout (a new flight). */
  reset(): void {
    this.stop();
    this.currentMs = this.opts.initialMs;
  }
}
