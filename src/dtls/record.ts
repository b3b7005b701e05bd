/**
 * DTLS record layer framing (RFC 6347 §4.1): the 13-byte header `type(1) version(2) epoch(2)
 * sequence_number(6) length(2)` followed by `length` bytes. Several records may share a datagram;
 * a record never spans datagrams.
 *
 * `parseDatagram` never throws: a record with an unknown content type, a version that is not
 * DTLS (major byte FE), or a length above the limit for its epoch is dropped and parsing goes on
 * with the next record; a header or fragment cut short by the end of the datagram drops the rest
 * of the datagram (the next record boundary is unknown).
 *
 * `tls12_cid` records (type 25, RFC 9146 §4) carry a Connection ID between the sequence number
 * and the length, and its length is not on the wire: the receiver knows it because it chose its
 * CIDs with one fixed length (`cidLength`). Without a `cidLength` (or with 0: we receive no CIDs)
 * they are dropped (read as if they had no CID), as are type-25 records in epoch 0 (CIDs are only
 * used once protected).
 * `innerPlaintext` / `parseInnerPlaintext` build and read the DTLSInnerPlaintext such a record
 * protects: content ‖ real_type ‖ zero padding.
 */
import { ContentType, MAX_CIPHERTEXT_LENGTH, MAX_PLAINTEXT_LENGTH, MAX_SEQUENCE_NUMBER } from './constants.js';

export const RECORD_HEADER_LENGTH = 13;

/** RFC 9146 §3: a CID is `opaque cid<0..2^8-1>`. */
export const MAX_CID_LENGTH = 255;

export interface DtlsRecord {
  readonly type: number;
  readonly version: number;
  readonly epoch: number;
  /** 48-bit sequence number (exact in a JS number: < 2^53). */
  readonly seq: number;
  /** The record body as a view into the datagram. */
  readonly fragment: Buffer;
  /** tls12_cid records only (type 25): the Connection ID from the header (a view into the datagram). */
  readonly cid?: Buffer;
}

export interface ParsedDatagram {
  readonly records: DtlsRecord[];
  /** Records (or a trailing fragment of the datagram) that were dropped. */
  readonly dropped: number;
}

const KNOWN_TYPES: ReadonlySet<number> = new Set([
  ContentType.changeCipherSpec, ContentType.alert, ContentType.handshake, ContentType.applicationData, ContentType.tls12Cid,
]);

/**
 * Splits a datagram into records. `cidLength`: the length of the Connection IDs we receive in
 * tls12_cid records (0 or absent: such records are dropped). With a CID the next record boundary
 * is only known when that length is right; a type-25 record whose header does not fit the
 * datagram ends the parse like any truncated header.
 */
export function parseDatagram(datagram: Buffer, cidLength = 0): ParsedDatagram {
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
    // Without CIDs of our own a type-25 record is read as if it had none, and dropped below.
    const cidBytes = type === ContentType.tls12Cid ? cidLength : 0;
    if (datagram.length - pos < RECORD_HEADER_LENGTH + cidBytes) {
      dropped++;
      break;
    }
    const length = datagram.readUInt16BE(pos + 11 + cidBytes);
    const start = pos + RECORD_HEADER_LENGTH + cidBytes;
    if (start + length > datagram.length) {
      dropped++;
      break;
    }
    const cidStart = pos + 11;
    pos = start + length;
    const limit = epoch === 0 ? MAX_PLAINTEXT_LENGTH : MAX_CIPHERTEXT_LENGTH;
    if (!KNOWN_TYPES.has(type) || version >> 8 !== 0xfe || length > limit || (type === ContentType.tls12Cid && (cidBytes === 0 || epoch === 0))) {
      dropped++;
      continue;
    }
    const fragment = datagram.subarray(start, pos);
    records.push(cidBytes > 0
      ? { type, version, epoch, seq, fragment, cid: datagram.subarray(cidStart, cidStart + cidBytes) }
      : { type, version, epoch, seq, fragment });
  }
  return { records, dropped };
}

/**
 * The 13-byte header followed by `fragment`; a record with `cid` (it must have type 25) gets the
 * CID between the sequence number and the length. Throws RangeError on out-of-range fields (a
 * programming error).
 */
export function serializeRecord(r: DtlsRecord): Buffer {
  if (!Number.isInteger(r.seq) || r.seq < 0 || r.seq > MAX_SEQUENCE_NUMBER) throw new RangeError(`sequence number ${r.seq}`);
  if (r.fragment.length > MAX_CIPHERTEXT_LENGTH) throw new RangeError(`record fragment of ${r.fragment.length} bytes`);
  const cid = r.cid ?? EMPTY;
  if ((r.cid !== undefined) !== (r.type === ContentType.tls12Cid) || cid.length > MAX_CID_LENGTH) {
    throw new RangeError(`a record of type ${r.type} with ${r.cid === undefined ? 'no' : `a ${cid.length}-byte`} connection id`);
  }
  const out = Buffer.allocUnsafe(RECORD_HEADER_LENGTH + cid.length + r.fragment.length);
  out[0] = r.type;
  out.writeUInt16BE(r.version, 1);
  out.writeUInt16BE(r.epoch, 3);
  out.writeUIntBE(r.seq, 5, 6);
  cid.copy(out, 11);
  out.writeUInt16BE(r.fragment.length, 11 + cid.length);
  r.fragment.copy(out, RECORD_HEADER_LENGTH + cid.length);
  return out;
}

const EMPTY = Buffer.alloc(0);

/** RFC 9146 §4 DTLSInnerPlaintext without padding: content ‖ real_type. */
export function innerPlaintext(type: number, content: Buffer): Buffer {
  const out = Buffer.allocUnsafe(content.length + 1);
  content.copy(out, 0);
  out[content.length] = type;
  return out;
}

/**
 * Reads a DTLSInnerPlaintext: the last non-zero byte is the real content type, what precedes it
 * the content, the zeros after it padding. undefined when it is all zeros (RFC 9146 §4: the
 * record is then invalid).
 */
export function parseInnerPlaintext(inner: Buffer): { type: number; content: Buffer } | undefined {
  let i = inner.length - 1;
  while (i >= 0 && inner[i] === 0) i--;
  if (i < 0) return undefined;
  return { type: inner[i]!, content: inner.subarray(0, i) };
}
