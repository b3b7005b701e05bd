/**
 * DTLS handshake message framing (RFC 6347 §4.2.2): the 12-byte header
 * `msg_type(1) length(3) message_seq(2) fragment_offset(3) fragment_length(3)` before each
 * fragment. A handshake record may carry several fragments; a message larger than the path MTU is
 * sent as several fragments with the same `message_seq` and `length`.
 *
 * The transcript (Finished, extended master secret) hashes each message as if it had been sent in
 * one fragment: `fullMessage()` rebuilds that form.
 */
import { DecodeError, Reader } from './reader.js';

export const HANDSHAKE_HEADER_LENGTH = 12;

export interface HandshakeFragment {
  readonly msgType: number;
  /** Length of the whole message body. */
  readonly length: number;
  readonly messageSeq: number;
  readonly fragmentOffset: number;
  /** This fragment's bytes (length = fragment_length), a view into the record. */
  readonly body: Buffer;
}

/** A complete (reassembled) handshake message. */
export interface HandshakeMessage {
  readonly msgType: number;
  readonly messageSeq: number;
  readonly body: Buffer;
}

/**
 * Splits a handshake record's fragment into handshake fragments. Undefined when malformed
 * (header cut short, fragment overruns its message or the record): the caller drops the record.
 */
export function parseHandshakeFragments(recordFragment: Buffer): HandshakeFragment[] | undefined {
  const out: HandshakeFragment[] = [];
  const r = new Reader(recordFragment);
  try {
    while (r.remaining > 0) {
      const msgType = r.u8();
      const length = r.u24();
      const messageSeq = r.u16();
      const fragmentOffset = r.u24();
      const fragmentLength = r.u24();
      if (fragmentOffset + fragmentLength > length) return undefined;
      out.push({ msgType, length, messageSeq, fragmentOffset, body: r.bytes(fragmentLength) });
    }
  } catch (err) {
    if (err instanceof DecodeError) return undefined;
    throw err;
  }
  return out.length > 0 ? out : undefined;
}

/** True when the fragment holds the whole message. */
export function isWhole(f: HandshakeFragment): boolean {
  return f.fragmentOffset === 0 && f.body.length === f.length;
}

function header(msgType: number, length: number, messageSeq: number, offset: number, fragmentLength: number): Buffer {
  const h = Buffer.allocUnsafe(HANDSHAKE_HEADER_LENGTH);
  h[0] = msgType;
  h.writeUIntBE(length, 1, 3);
  h.writeUInt16BE(messageSeq, 4);
  h.writeUIntBE(offset, 6, 3);
  h.writeUIntBE(fragmentLength, 9, 3);
  return h;
}

/** The message as one fragment (offset 0, fragment_length = length): the form sent unfragmented and hashed into the transcript. */
export function fullMessage(msgType: number, messageSeq: number, body: Buffer): Buffer {
  if (body.length > 0xffffff) throw new RangeError('handshake message too long');
  if (!Number.isInteger(messageSeq) || messageSeq < 0 || messageSeq > 0xffff) throw new RangeError(`message_seq ${messageSeq}`);
  return Buffer.concat([header(msgType, body.length, messageSeq, 0, body.length), body]);
}

/**
 * The message split into fragments (each with its 12-byte header) of at most `maxFragmentBody`
 * body bytes. An empty body gives one fragment.
 */
export function fragmentMessage(msgType: number, messageSeq: number, body: Buffer, maxFragmentBody: number): Buffer[] {
  if (!(maxFragmentBody >= 1)) throw new RangeError(`maxFragmentBody ${maxFragmentBody}`);
  if (body.length <= maxFragmentBody) return [fullMessage(msgType, messageSeq, body)];
  const out: Buffer[] = [];
  for (let off = 0; off < body.length; off += maxFragmentBody) {
    const part = body.subarray(off, Math.min(body.length, off + maxFragmentBody));
    out.push(Buffer.concat([header(msgType, body.length, messageSeq, off, part.length), part]));
  }
  return out;
}
