/**
 * Handshake reassembly (RFC 6347 §4.2.3): fragments of the peer's messages arrive split,
 * reordered, duplicated or overlapping; messages must be processed in `message_seq` order.
 *
 * The reassembler expects `next` (the next message_seq to process). Fragments of earlier
 * messages are reported as `old` (a retransmission of the peer's previous flight: the caller may
 * resend its own last flight); fragments of messages too far ahead, too long, or inconsistent
 * with what was already buffered for that message (other type or length) are dropped. Buffered
 * bytes are capped in total, so a peer cannot make the server hold more than `maxBufferedBytes`.
 */
import type { HandshakeFragment, HandshakeMessage } from './handshake.js';

export interface ReassemblyLimits {
  /** Largest message body accepted (default 16 KiB). */
  readonly maxMessageLength?: number;
  /** Total bytes held for incomplete or future messages (default 32 KiB). */
  readonly maxBufferedBytes?: number;
  /** How far past `next` a message_seq may be and still be buffered (default 8). */
  readonly maxAhead?: number;
}

export type FragmentResult = 'buffered' | 'old' | 'dropped';

interface Pending {
  readonly msgType: number;
  readonly body: Buffer;
  /** Sorted, disjoint, non-adjacent [start, end) ranges received. */
  ranges: [number, number][];
}

export class HandshakeReassembler {
  private readonly pending = new Map<number, Pending>();
  private buffered = 0;
  private readonly maxMessageLength: number;
  private readonly maxBufferedBytes: number;
  private readonly maxAhead: number;

  constructor(
    /** The next message_seq to deliver. */
    private nextSeq: number,
    limits: ReassemblyLimits = {},
  ) {
    this.maxMessageLength = limits.maxMessageLength ?? 16 * 1024;
    this.maxBufferedBytes = limits.maxBufferedBytes ?? 32 * 1024;
    this.maxAhead = limits.maxAhead ?? 8;
  }

  get next(): number {
    return this.nextSeq;
  }

  /** Bytes currently held. */
  get bufferedBytes(): number {
    return this.buffered;
  }

  add(f: HandshakeFragment): FragmentResult {
    if (f.messageSeq < this.nextSeq) return 'old';
    if (f.messageSeq > this.nextSeq + this.maxAhead) return 'dropped';
    if (f.length > this.maxMessageLength) return 'dropped';
    if (f.fragmentOffset + f.body.length > f.length) return 'dropped';
    let p = this.pending.get(f.messageSeq);
    if (p === undefined) {
      if (this.buffered + f.length > this.maxBufferedBytes) return 'dropped';
      p = { msgType: f.msgType, body: Buffer.alloc(f.length), ranges: [] };
      this.pending.set(f.messageSeq, p);
      this.buffered += f.length;
    } else if (p.msgType !== f.msgType || p.body.length !== f.length) {
      return 'dropped';
    }
    if (f.body.length === 0 && f.length > 0) return 'buffered';
    f.body.copy(p.body, f.fragmentOffset);
    p.ranges = addRange(p.ranges, f.fragmentOffset, f.fragmentOffset + f.body.length);
    return 'buffered';
  }

  /** Removes and returns the next complete message in order, if any. */
  take(): HandshakeMessage | undefined {
    const p = this.pending.get(this.nextSeq);
    if (p === undefined) return undefined;
    const complete = p.body.length === 0 || (p.ranges.length === 1 && p.ranges[0]![0] === 0 && p.ranges[0]![1] === p.body.length);
    if (!complete) return undefined;
    this.pending.delete(this.nextSeq);
    this.buffered -= p.body.length;
    const msg: HandshakeMessage = { msgType: p.msgType, messageSeq: this.nextSeq, body: p.body };
    this.nextSeq++;
    return msg;
  }

  /** Drops everything buffered. */
  clear(): void {
    this.pending.clear();
    this.buffered = 0;
  }
}

function addRange(ranges: [number, number][], start: number, end: number): [number, number][] {
  if (end <= start) return ranges;
  const out: [number, number][] = [];
  let s = start;
  let e = end;
  let placed = false;
  for (const [a, b] of ranges) {
    if (b < s) {
      out.push([a, b]);
    } else if (a > e) {
      if (!placed) {
        out.push([s, e]);
        placed = true;
      }
      out.push([a, b]);
    } else {
      s = Math.min(s, a);
      e = Math.max(e, b);
    }
  }
  if (!placed) out.push([s, e]);
  return out;
}
