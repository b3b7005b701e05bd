/**
 * DTLS record layer framing (RFC 6347 §4.1): the 13-byte header `type(1) version(2) epoch(2)
 * sequence_number(6) length(2)` followed by `length` bytes. Several records may share a datagram;
 * a record never spans datagrams.
 *
 * `parseDatagram` never throws: a record with an unknown content type, a version that is not
 * DTLS (major byte FE), or a length above the limit for its epoch is dropped and parsing goes on
 * with the next record; a header or fragment cut short by the end of the datagram drops the rest
 * of the datagram (the next record boundary is unknown). `tls12_cid` records (type 25) are
 * dropped: their header carries a Connection ID of a negotiated length this slice does not know.
 */
import { ContentType, MAX_CIPHERTEXT_LENGTH, MAX_PLAINTEXT_LENGTH, MAX_SEQUENCE_NUMBER } from './constants.js';

export const RECORD_HEADER_LENGTH = 13;

export interface DtlsRecord {
  readonly type: number;
  readonly version: number;
  readonly epoch: number;
  /** 48-bit sequence number (exact in a JS number: < 2^53). */
  readonly seq: number;
  /** The record body as a view into the datagram. */
  readonly fragment: Buffer;
}

export interface ParsedDatagram {
  readonly records: DtlsRecord[];
  /** Records (or a trailing fragment of the datagram) that were dropped. */
  readonly dropped: number;
}

const KNOWN_TYPES: ReadonlySet<number> = new Set([
  ContentType.changeCipherSpec, ContentType.alert, ContentType.handshake, ContentType.applicationData,
]);

export function parseDatagram(datagram: Buffer): ParsedDatagram {
  const records: DtlsRecord[] = [];
  let dropped = 0;
  let pos = 0;
  while (pos < datagram.length) {
    if (datagram.length - pos < RECORD_HEADER_LENGTH) {
      dropped++;
      break;
    }
    const type = datagram[pos]!;
    const version = datagram.readUInt16BE(pos + 1);
    const epoch = datagram.readUInt16BE(pos + 3);
    const seq = datagram.readUIntBE(pos + 5, 6);
    const length = datagram.readUInt16BE(pos + 11);
    const start = pos + RECORD_HEADER_LENGTH;
    if (start + length > datagram.length) {
      dropped++;
      break;
    }
    pos = start + length;
    const limit = epoch === 0 ? MAX_PLAINTEXT_LENGTH : MAX_CIPHERTEXT_LENGTH;
    if (!KNOWN_TYPES.has(type) || version >> 8 !== 0xfe || length > limit) {
      dropped++;
      continue;
    }
    records.push({ type, version, epoch, seq, fragment: datagram.subarray(start, pos) });
  }
  return { records, dropped };
}

/** The 13-byte header followed by `fragment`. Throws RangeError on out-of-range fields (a programming error). */
export function serializeRecord(r: DtlsRecord): Buffer {
  if (!Number.isInteger(r.seq) || r.seq < 0 || r.seq > MAX_SEQUENCE_NUMBER) throw new RangeError(`sequence number ${r.seq}`);
  if (r.fragment.length > MAX_CIPHERTEXT_LENGTH) throw new RangeError(`record fragment of ${r.fragment.length} bytes`);
  const out = Buffer.allocUnsafe(RECORD_HEADER_LENGTH + r.fragment.length);
  out[0] = r.type;
  out.writeUInt16BE(r.version, 1);
  out.writeUInt16BE(r.epoch, 3);
  out.writeUIntBE(r.seq, 5, 6);
  out.writeUInt16BE(r.fragment.length, 11);
  r.fragment.copy(out, RECORD_HEADER_LENGTH);
  return out;
}
