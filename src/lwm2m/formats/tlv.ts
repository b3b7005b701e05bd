/**
 * OMA LwM2M TLV (Content-Format 11542, and the pre-IANA 1542 that early 1.0 clients still send).
 *
 * Layout of one record: type byte (kind in bits 7–6, 16-bit ID flag in bit 5, length-field size
 * in bits 4–3, inline length in bits 2–0), 1–2 ID bytes, 0–3 length bytes, then the value. Kinds
 * nest at most three deep: Object Instance → Multiple Resource → Resource Instance, so both the
 * encoder and the decoder are written level by level, without recursion.
 *
 * The encoder works in two passes over the node: a measuring pass records the value length of
 * every record in pre-order (containers need their content length before their children are
 * written), then a writing pass fills one exactly sized buffer.
 *
 * TLV carries no types: the decoder takes them from the model and keeps unknown resources opaque.
 */
import type { NodeCodec } from '../codec.js';
import { CodecError, type CodecErrorReason } from '../errors.js';
import type { ModelLookup } from '../model.js';
import type { LwM2MNode, LwM2MObject, MultiResource, ObjectInstance, Resource, ResourceInstance, SingleResource } from '../node.js';
import { checkNodeAtPath } from '../node.js';
import { formatPath, MAX_ID, type Path, validatePath } from '../path.js';
import { type Int, INT64_MAX, INT64_MIN, normInt, type ObjLnk, UINT64_MAX, type Value, type ValueType } from '../value.js';

export const TLV_CONTENT_FORMAT = 11542;
export const TLV_LEGACY_CONTENT_FORMAT = 1542;
export const TLV_MEDIA_TYPE = 'application/vnd.oma.lwm2m+tlv';

/** Largest value a record can carry: the length field is at most 24 bits. */
export const TLV_MAX_LENGTH = 0xffffff;

/** The identifier kind in bits 7–6 of the type byte. */
export type TlvKind = 'objectInstance' | 'resourceInstance' | 'multipleResource' | 'resource';

/** Numeric kinds, as they appear in the type byte (`type >> 6`). */
const K_OBJECT_INSTANCE = 0;
const K_RESOURCE_INSTANCE = 1;
const K_MULTIPLE_RESOURCE = 2;
const K_RESOURCE = 3;

const KIND_NAMES: readonly TlvKind[] = ['objectInstance', 'resourceInstance', 'multipleResource', 'resource'];
const KIND_LABELS: readonly string[] = ['an Object Instance TLV', 'a Resource Instance TLV', 'a Multiple Resource TLV', 'a Resource TLV'];

// ---------------------------------------------------------------------------------------------
// Raw record reader
// ---------------------------------------------------------------------------------------------

/** One TLV record as read from the wire; `value` is a view into the input, not a copy. */
export interface TlvRecord {
  readonly kind: TlvKind;
  readonly id: number;
  /** Absolute offset of the type byte. */
  readonly offset: number;
  /** Absolute offset of the first value byte. */
  readonly valueOffset: number;
  readonly value: Uint8Array;
}

/**
 * Mutable header scratch filled by `readHeader`; the decoder keeps one per nesting level so that
 * walking a payload allocates nothing but the resulting nodes.
 */
interface Header {
  kind: number;
  id: number;
  /** Offset (index into the buffer) of the type byte. */
  start: number;
  valueStart: number;
  valueEnd: number;
}

const newHeader = (): Header => ({ kind: 0, id: 0, start: 0, valueStart: 0, valueEnd: 0 });

/**
 * Parses the record header at `pos` (which must be < `end`) into `h`. `end` is the end of the
 * enclosing value (or payload): a record running past it is truncated. `base` converts buffer
 * indexes into offsets for error messages.
 */
function readHeader(format: string, b: Uint8Array, pos: number, end: number, base: number, h: Header): void {
  const type = b[pos] as number;
  const idLen = type & 0x20 ? 2 : 1;
  const lenLen = (type >> 3) & 3;
  const valueStart = pos + 1 + idLen + lenLen;
  if (valueStart > end) {
    throw new CodecError(format, 'truncated', `incomplete TLV header: needs ${1 + idLen + lenLen} bytes, ${end - pos} left`, base + pos);
  }
  const id = idLen === 1 ? (b[pos + 1] as number) : ((b[pos + 1] as number) << 8) | (b[pos + 2] as number);
  let len: number;
  const p = pos + 1 + idLen;
  // With a length field, bits 2–0 must be ignored (the spec says so; some encoders leave junk).
  switch (lenLen) {
    case 0:
      len = type & 7;
      break;
    case 1:
      len = b[p] as number;
      break;
    case 2:
      len = ((b[p] as number) << 8) | (b[p + 1] as number);
      break;
    default:
      len = ((b[p] as number) << 16) | ((b[p + 1] as number) << 8) | (b[p + 2] as number);
  }
  const valueEnd = valueStart + len;
  if (valueEnd > end) {
    throw new CodecError(format, 'truncated', `TLV value of ${len} bytes runs past the end (${end - valueStart} bytes left)`, base + pos);
  }
  h.kind = type >> 6;
  h.id = id;
  h.start = pos;
  h.valueStart = valueStart;
  h.valueEnd = valueEnd;
}

/**
 * Reads the sibling records that fill `bytes` exactly (no nesting: call `readTlvChildren` on a
 * container record to go one level down). `base` is the absolute offset of `bytes[0]`, used in
 * the records and in error offsets.
 */
export function readTlv(bytes: Uint8Array, base = 0, format = 'tlv'): TlvRecord[] {
  const out: TlvRecord[] = [];
  const h = newHeader();
  let pos = 0;
  while (pos < bytes.length) {
    readHeader(format, bytes, pos, bytes.length, base, h);
    out.push({
      kind: KIND_NAMES[h.kind] as TlvKind,
      id: h.id,
      offset: base + h.start,
      valueOffset: base + h.valueStart,
      value: bytes.subarray(h.valueStart, h.valueEnd),
    });
    pos = h.valueEnd;
  }
  return out;
}

/** The records nested in an Object Instance or Multiple Resource record. */
export function readTlvChildren(record: TlvRecord, format = 'tlv'): TlvRecord[] {
  if (record.kind === 'resource' || record.kind === 'resourceInstance') {
    throw new CodecError(format, 'invalid', `a ${record.kind} TLV holds a value, not nested TLVs`, record.offset);
  }
  return readTlv(record.value, record.valueOffset, format);
}

// ---------------------------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------------------------

const TWO32 = 4294967296;

/** Bytes needed for a signed integer: smallest of 1/2/4/8 that holds it in two's complement. */
function signedWidth(v: Int): number {
  if (typeof v === 'number') {
    if (v >= -0x80 && v <= 0x7f) return 1;
    if (v >= -0x8000 && v <= 0x7fff) return 2;
    if (v >= -0x80000000 && v <= 0x7fffffff) return 4;
    return 8;
  }
  if (v >= -0x80n && v <= 0x7fn) return 1;
  if (v >= -0x8000n && v <= 0x7fffn) return 2;
  if (v >= -0x80000000n && v <= 0x7fffffffn) return 4;
  return 8;
}

/**
 * Bytes for an unsigned integer. The top bit is kept clear while possible (200 → `00 C8`) because
 * Leshan reads unsigned values with its signed decoder; 2^63 and above can only be 8 bytes.
 */
function unsignedWidth(v: Int): number {
  if (typeof v === 'number') {
    if (v <= 0x7f) return 1;
    if (v <= 0x7fff) return 2;
    if (v <= 0x7fffffff) return 4;
    return 8;
  }
  if (v <= 0x7fn) return 1;
  if (v <= 0x7fffn) return 2;
  if (v <= 0x7fffffffn) return 4;
  return 8;
}

/**
 * A value the encoder cannot write. Thrown by the value checks (which do not know where the value
 * sits) and turned into a CodecError naming the path by the caller; never escapes this module.
 */
class Fault {
  constructor(
    readonly reason: CodecErrorReason,
    readonly detail: string,
  ) {}
}

function checkIntForEncode(v: Value & { type: 'integer' | 'unsigned' | 'time' }): void {
  const n = v.value;
  if (typeof n === 'number') {
    if (!Number.isInteger(n)) throw new Fault('type_mismatch', `${v.type} value ${n} is not an integer`);
    // Doubles beyond 2^53 are still exact integers: accept them within the 64-bit range.
    const ok = v.type === 'unsigned' ? n >= 0 && n < 2 ** 64 : n >= -(2 ** 63) && n < 2 ** 63;
    if (!ok) throw new Fault('out_of_range', `${v.type} value ${n} is outside the 64-bit range`);
    return;
  }
  const [min, max] = v.type === 'unsigned' ? [0n, UINT64_MAX] : [INT64_MIN, INT64_MAX];
  if (n < min || n > max) throw new Fault('out_of_range', `${v.type} value ${n} is outside ${min}..${max}`);
}

/** Float width: 4 bytes when binary32 holds the value exactly, else 8. */
function floatWidth(x: number, float64: boolean): number {
  return float64 || !Object.is(Math.fround(x), x) ? 8 : 4;
}

/**
 * UTF-8 length of a string; a lone surrogate cannot be written as UTF-8, so it is refused
 * rather than silently replaced by U+FFFD.
 */
function utf8Length(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) {
      n += 1;
    } else if (c >= 0xd800 && c <= 0xdfff) {
      const d = s.charCodeAt(i + 1);
      if (c > 0xdbff || !(d >= 0xdc00 && d <= 0xdfff)) {
        throw new Fault('invalid', `string has a lone surrogate at index ${i}; it cannot be encoded as UTF-8`);
      }
      n += 2; // the pair takes 4 bytes for 2 UTF-16 units
      i++;
    } else {
      n += 2;
    }
  }
  return n;
}

function checkObjlnk(l: ObjLnk): void {
  for (const x of [l.objectId, l.instanceId]) {
    if (!Number.isInteger(x) || x < 0 || x > 0xffff) throw new Fault('out_of_range', `objlnk ID ${x} is not in 0..65535`);
  }
}

/** Length in bytes of a value's TLV encoding (also validates it). */
function valueLength(v: Value, float64: boolean): number {
  switch (v.type) {
    case 'integer':
    case 'time':
      checkIntForEncode(v);
      return signedWidth(v.value);
    case 'unsigned':
      checkIntForEncode(v);
      return unsignedWidth(v.value);
    case 'float': {
      const x: unknown = v.value;
      if (typeof x !== 'number') throw new Fault('type_mismatch', `float value is a ${typeof x}`);
      return floatWidth(x, float64);
    }
    case 'boolean':
      return 1;
    case 'objlnk':
      checkObjlnk(v.value);
      return 4;
    case 'string':
    case 'corelnk':
      return utf8Length(v.value);
    case 'opaque':
      return v.value.length;
    default:
      throw new Fault('unsupported', `value type ${(v as { type: string }).type} cannot be written as TLV`);
  }
}

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Writes `v` (whose encoded length `len` was computed by `valueLength`) at `pos`. */
function writeValue(out: Uint8Array, view: DataView, pos: number, v: Value, len: number): void {
  switch (v.type) {
    case 'integer':
    case 'time':
    case 'unsigned': {
      const n = v.value;
      if (len === 8) {
        if (typeof n === 'bigint' || !Number.isSafeInteger(n)) view.setBigUint64(pos, BigInt.asUintN(64, BigInt(n)));
        else {
          // Safe integers split exactly into a signed high word and an unsigned low word.
          const hi = Math.floor(n / TWO32);
          view.setInt32(pos, hi);
          view.setUint32(pos + 4, n - hi * TWO32);
        }
      } else {
        const x = Number(n);
        if (len === 1) out[pos] = x & 0xff;
        else if (len === 2) view.setInt16(pos, x);
        else view.setInt32(pos, x | 0);
      }
      return;
    }
    case 'float':
      if (len === 4) view.setFloat32(pos, v.value);
      else view.setFloat64(pos, v.value);
      return;
    case 'boolean':
      out[pos] = v.value ? 1 : 0;
      return;
    case 'objlnk':
      view.setUint16(pos, v.value.objectId);
      view.setUint16(pos + 2, v.value.instanceId);
      return;
    case 'string':
    case 'corelnk': {
      const s = v.value;
      if (len === s.length) {
        // UTF-8 length equals UTF-16 length only for pure ASCII: copy the code units directly.
        for (let i = 0; i < len; i++) out[pos + i] = s.charCodeAt(i);
      } else {
        utf8Encoder.encodeInto(s, out.subarray(pos, pos + len));
      }
      return;
    }
    case 'opaque':
      out.set(v.value, pos);
      return;
  }
}

/** Options for encoding. */
export interface TlvEncodeOptions {
  /**
   * For an instance path `/o/i`, wrap the resources in an Object Instance TLV (as Wakaama and the
   * spec's own examples do). Default false: bare resource TLVs, as Leshan sends them.
   */
  readonly wrapInstance?: boolean;
  /** Always write floats as 8 bytes (Leshan's habit for doubles). Default: 4 when exact. */
  readonly float64?: boolean;
}

/** The TLV value bytes of one value (no header): integers minimal, unsigned with top bit clear. */
export function encodeTlvValue(v: Value, opts: TlvEncodeOptions = {}): Uint8Array {
  let len: number;
  try {
    len = valueLength(v, opts.float64 === true);
  } catch (err) {
    if (err instanceof Fault) throw new CodecError('tlv', err.reason, err.detail);
    throw err;
  }
  if (len > TLV_MAX_LENGTH) throw new CodecError('tlv', 'too_large', `value of ${len} bytes exceeds the TLV maximum ${TLV_MAX_LENGTH}`);
  const out = new Uint8Array(len);
  writeValue(out, new DataView(out.buffer), 0, v, len);
  return out;
}

/** Reads a big-endian signed integer of 1–8 bytes. */
function readSigned(b: Uint8Array, p: number, len: number): Int {
  if (len <= 6) {
    // Up to 48 bits: exact in a double, no BigInt needed.
    let n = (((b[p] as number) << 24) >> 24) as number;
    for (let i = 1; i < len; i++) n = n * 256 + (b[p + i] as number);
    return n;
  }
  if (len === 8) {
    const hi = (((b[p] as number) << 24) | ((b[p + 1] as number) << 16) | ((b[p + 2] as number) << 8) | (b[p + 3] as number)) | 0;
    const lo = (((b[p + 4] as number) << 24) | ((b[p + 5] as number) << 16) | ((b[p + 6] as number) << 8) | (b[p + 7] as number)) >>> 0;
    if (hi >= -0x1fffff && hi <= 0x1fffff) return hi * TWO32 + lo;
    // Just below -2^53 + 2^32 some values are still safe: normalise.
    return normInt((BigInt(hi) << 32n) | BigInt(lo));
  }
  // 7 bytes: rare; go through BigInt, then back to a number when it is safe.
  let n = BigInt(((b[p] as number) << 24) >> 24);
  for (let i = 1; i < len; i++) n = (n << 8n) | BigInt(b[p + i] as number);
  return normInt(n);
}

/** Reads a big-endian unsigned integer of 1–8 bytes. */
function readUnsigned(b: Uint8Array, p: number, len: number): Int {
  if (len <= 6) {
    let n = 0;
    for (let i = 0; i < len; i++) n = n * 256 + (b[p + i] as number);
    return n;
  }
  let hi = 0;
  const hiLen = len - 4;
  for (let i = 0; i < hiLen; i++) hi = hi * 256 + (b[p + i] as number);
  const lo = (((b[p + hiLen] as number) << 24) | ((b[p + hiLen + 1] as number) << 16) | ((b[p + hiLen + 2] as number) << 8) | (b[p + hiLen + 3] as number)) >>> 0;
  if (hi <= 0x1fffff) return hi * TWO32 + lo;
  return (BigInt(hi) << 32n) | BigInt(lo);
}

function readUtf8(b: Uint8Array, start: number, end: number): string | undefined {
  const len = end - start;
  if (len <= 32) {
    // Short ASCII strings (the common case: URIs, bindings, versions) skip the decoder call.
    let ascii = true;
    for (let i = start; i < end; i++) {
      if ((b[i] as number) >= 0x80) {
        ascii = false;
        break;
      }
    }
    if (ascii) return String.fromCharCode.apply(null, b.subarray(start, end) as unknown as number[]);
  }
  try {
    return utf8Decoder.decode(b.subarray(start, end));
  } catch {
    return undefined;
  }
}

const floatScratch = new Uint8Array(8);
const floatView = new DataView(floatScratch.buffer);

/**
 * Decodes one value from `b[start..end)` as `type`. Returns a detail message instead of throwing
 * so that the caller can attach the path and offset of the record.
 */
function readValue(b: Uint8Array, start: number, end: number, type: ValueType): Value | string {
  const len = end - start;
  switch (type) {
    case 'integer':
    case 'time':
      if (len < 1 || len > 8) return `${type} value must be 1 to 8 bytes, got ${len}`;
      return { type, value: readSigned(b, start, len) };
    case 'unsigned':
      if (len < 1 || len > 8) return `unsigned value must be 1 to 8 bytes, got ${len}`;
      return { type, value: readUnsigned(b, start, len) };
    case 'float': {
      if (len !== 4 && len !== 8) return `float value must be 4 or 8 bytes, got ${len}`;
      // Copy into a scratch word instead of allocating a DataView per value.
      for (let k = 0; k < len; k++) floatScratch[k] = b[start + k] as number;
      return { type, value: len === 4 ? floatView.getFloat32(0) : floatView.getFloat64(0) };
    }
    case 'boolean': {
      if (len !== 1) return `boolean value must be 1 byte, got ${len}`;
      const x = b[start] as number;
      if (x > 1) return `boolean value must be 0 or 1, got ${x}`;
      return { type, value: x === 1 };
    }
    case 'objlnk':
      if (len !== 4) return `objlnk value must be 4 bytes, got ${len}`;
      return {
        type,
        value: {
          objectId: ((b[start] as number) << 8) | (b[start + 1] as number),
          instanceId: ((b[start + 2] as number) << 8) | (b[start + 3] as number),
        },
      };
    case 'string':
    case 'corelnk': {
      const s = readUtf8(b, start, end);
      if (s === undefined) return `${type} value is not valid UTF-8`;
      return { type, value: s };
    }
    case 'opaque': {
      // Copy: the payload buffer may be reused by the transport after decoding.
      const out = new Uint8Array(len);
      out.set(b.subarray(start, end));
      return { type, value: out };
    }
  }
}

/** Decodes a whole byte array as one TLV value of `type` (no header). */
export function decodeTlvValue(bytes: Uint8Array, type: ValueType, format = 'tlv'): Value {
  const v = readValue(bytes, 0, bytes.length, type);
  if (typeof v === 'string') throw new CodecError(format, 'invalid', v, 0);
  return v;
}

// ---------------------------------------------------------------------------------------------
// Encoder
// ---------------------------------------------------------------------------------------------

function headerLength(id: number, len: number): number {
  return (id > 0xff ? 3 : 2) + (len <= 7 ? 0 : len <= 0xff ? 1 : len <= 0xffff ? 2 : 3);
}

interface Encoder {
  readonly format: string;
  readonly float64: boolean;
  /** Value length of every record, in pre-order (measuring pass fills, writing pass reads). */
  readonly sizes: number[];
  k: number;
  out: Uint8Array;
  view: DataView;
  pos: number;
  /** IDs of the enclosing object / instance / resource while measuring, for error paths. */
  readonly o: number;
  i: number;
  r: number;
}

/** Path of the record being measured: `depth` 2 = instance, 3 = resource, 4 = resource instance. */
function encPath(e: Encoder, depth: number, id: number): string {
  const ids = depth === 2 ? [e.o, id] : depth === 3 ? [e.o, e.i, id] : [e.o, e.i, e.r, id];
  return formatPath(ids);
}

const DEPTH_NAMES = ['', '', 'object instance', 'resource', 'resource instance'];

function checkId(e: Encoder, depth: number, id: number): void {
  if (!Number.isInteger(id) || id < 0 || id > MAX_ID) {
    const at = Number.isInteger(id) && id >= 0 ? encPath(e, depth, id) : undefined;
    throw new CodecError(e.format, 'bad_path', `${DEPTH_NAMES[depth]} ID ${id} is not an integer in 0..${MAX_ID}`, undefined, at);
  }
}

function checkLength(e: Encoder, depth: number, id: number, len: number): void {
  if (len > TLV_MAX_LENGTH) {
    throw new CodecError(e.format, 'too_large', `value of ${len} bytes exceeds the TLV maximum ${TLV_MAX_LENGTH}`, undefined, encPath(e, depth, id));
  }
}

/** Measuring pass for a leaf (Resource at depth 3, Resource Instance at 4): full record size. */
function measureLeaf(e: Encoder, depth: number, id: number, v: Value): number {
  checkId(e, depth, id);
  let len: number;
  try {
    len = valueLength(v, e.float64);
  } catch (err) {
    if (err instanceof Fault) throw new CodecError(e.format, err.reason, err.detail, undefined, encPath(e, depth, id));
    throw err;
  }
  checkLength(e, depth, id, len);
  e.sizes.push(len);
  return headerLength(id, len) + len;
}

function measureResource(e: Encoder, r: Resource): number {
  if (r.kind === 'resource') return measureLeaf(e, 3, r.id, r.value);
  checkId(e, 3, r.id);
  e.r = r.id;
  const slot = e.sizes.length;
  e.sizes.push(0);
  let len = 0;
  for (const [ri, v] of r.instances) len += measureLeaf(e, 4, ri, v);
  checkLength(e, 3, r.id, len);
  e.sizes[slot] = len;
  return headerLength(r.id, len) + len;
}

function measureInstanceContent(e: Encoder, inst: ObjectInstance): number {
  e.i = inst.id;
  let len = 0;
  for (const r of inst.resources.values()) len += measureResource(e, r);
  return len;
}

function measureInstance(e: Encoder, inst: ObjectInstance): number {
  checkId(e, 2, inst.id);
  const slot = e.sizes.length;
  e.sizes.push(0);
  const len = measureInstanceContent(e, inst);
  checkLength(e, 2, inst.id, len);
  e.sizes[slot] = len;
  return headerLength(inst.id, len) + len;
}

/** Writes a record header; returns the value length taken from the measuring pass. */
function writeHeader(e: Encoder, kind: number, id: number): number {
  const len = e.sizes[e.k++] as number;
  const out = e.out;
  let pos = e.pos;
  let type = kind << 6;
  if (id > 0xff) type |= 0x20;
  const lenLen = len <= 7 ? 0 : len <= 0xff ? 1 : len <= 0xffff ? 2 : 3;
  type |= lenLen === 0 ? len : lenLen << 3;
  out[pos++] = type;
  if (id > 0xff) out[pos++] = id >> 8;
  out[pos++] = id & 0xff;
  if (lenLen === 3) out[pos++] = len >> 16;
  if (lenLen >= 2) out[pos++] = (len >> 8) & 0xff;
  if (lenLen >= 1) out[pos++] = len & 0xff;
  e.pos = pos;
  return len;
}

function writeLeaf(e: Encoder, kind: number, id: number, v: Value): void {
  const len = writeHeader(e, kind, id);
  writeValue(e.out, e.view, e.pos, v, len);
  e.pos += len;
}

function writeResource(e: Encoder, r: Resource): void {
  if (r.kind === 'resource') {
    writeLeaf(e, K_RESOURCE, r.id, r.value);
    return;
  }
  writeHeader(e, K_MULTIPLE_RESOURCE, r.id);
  for (const [ri, v] of r.instances) writeLeaf(e, K_RESOURCE_INSTANCE, ri, v);
}

function writeInstanceContent(e: Encoder, inst: ObjectInstance): void {
  for (const r of inst.resources.values()) writeResource(e, r);
}

function writeInstance(e: Encoder, inst: ObjectInstance): void {
  writeHeader(e, K_OBJECT_INSTANCE, inst.id);
  writeInstanceContent(e, inst);
}

/**
 * Encodes `node` found at `path`: `/o` → one Object Instance TLV per instance; `/o/i` → the bare
 * resource TLVs (or wrapped, see options); `/o/i/r` → one Resource or Multiple Resource TLV;
 * `/o/i/r/ri` → one Resource Instance TLV. The root path cannot be carried by TLV.
 */
export function encodeTlv(path: Path, node: LwM2MNode, opts: TlvEncodeOptions = {}, format = 'tlv'): Uint8Array {
  validatePath(path);
  if (path.length === 0) throw new CodecError(format, 'unsupported', 'TLV cannot carry the root path (several objects)', undefined, '/');
  checkNodeAtPath(format, path, node);
  const e: Encoder = {
    format,
    float64: opts.float64 === true,
    sizes: [],
    k: 0,
    out: EMPTY,
    view: EMPTY_VIEW,
    pos: 0,
    o: path[0] as number,
    i: path[1] ?? 0,
    r: path[2] ?? 0,
  };
  let total = 0;
  switch (node.kind) {
    case 'object':
      for (const inst of node.instances.values()) total += measureInstance(e, inst);
      break;
    case 'instance':
      total = opts.wrapInstance ? measureInstance(e, node) : measureInstanceContent(e, node);
      break;
    case 'resource':
    case 'multiResource':
      total = measureResource(e, node);
      break;
    case 'resourceInstance':
      total = measureLeaf(e, 4, node.id, node.value);
      break;
  }
  e.out = new Uint8Array(total);
  e.view = new DataView(e.out.buffer);
  switch (node.kind) {
    case 'object':
      for (const inst of node.instances.values()) writeInstance(e, inst);
      break;
    case 'instance':
      if (opts.wrapInstance) writeInstance(e, node);
      else writeInstanceContent(e, node);
      break;
    case 'resource':
    case 'multiResource':
      writeResource(e, node);
      break;
    case 'resourceInstance':
      writeLeaf(e, K_RESOURCE_INSTANCE, node.id, node.value);
      break;
  }
  return e.out;
}

const EMPTY = new Uint8Array(0);
const EMPTY_VIEW = new DataView(EMPTY.buffer);

// ---------------------------------------------------------------------------------------------
// Decoder
// ---------------------------------------------------------------------------------------------

interface Decoder {
  readonly format: string;
  readonly b: Uint8Array;
  readonly models: ModelLookup | undefined;
  /** One header scratch per nesting level. */
  readonly h0: Header;
  readonly h1: Header;
  readonly h2: Header;
}

/** The path `/o/i/r/ri`, leaving out trailing IDs given as -1; built only for error messages. */
function where(o: number, i = -1, r = -1, ri = -1): string {
  return formatPath(ri >= 0 ? [o, i, r, ri] : r >= 0 ? [o, i, r] : i >= 0 ? [o, i] : [o]);
}

/** Refuses the reserved ID 65535, which no path can carry. */
function checkWireId(d: Decoder, h: Header, o: number, i: number, r = -1, ri = -1): void {
  if (h.id > MAX_ID) throw new CodecError(d.format, 'bad_path', `ID ${h.id} is reserved`, h.start, where(o, i, r, ri));
}

function resourceType(d: Decoder, o: number, r: number): ValueType {
  const t = d.models?.resource(o, r)?.type;
  return t === undefined || t === 'none' ? 'opaque' : t;
}

/** Decodes the value of the leaf record in `h`, at `/o/i/r` or (ri ≥ 0) `/o/i/r/ri`. */
function decodeLeafValue(d: Decoder, h: Header, type: ValueType, o: number, i: number, r: number, ri: number): Value {
  const v = readValue(d.b, h.valueStart, h.valueEnd, type);
  if (typeof v === 'string') throw new CodecError(d.format, 'invalid', v, h.start, where(o, i, r, ri));
  return v;
}

/** Decodes the Resource Instance TLVs in `b[start..end)` into a multiple resource `r`. */
function decodeMultiContent(d: Decoder, start: number, end: number, o: number, i: number, r: number): MultiResource {
  const h = d.h2;
  const type = resourceType(d, o, r);
  const instances = new Map<number, Value>();
  for (let pos = start; pos < end; pos = h.valueEnd) {
    readHeader(d.format, d.b, pos, end, 0, h);
    const ri = h.id;
    if (h.kind !== K_RESOURCE_INSTANCE) {
      throw new CodecError(d.format, 'invalid', `${KIND_LABELS[h.kind]} inside a multiple resource; only Resource Instance TLVs may appear there`, pos, where(o, i, r, ri));
    }
    checkWireId(d, h, o, i, r, ri);
    if (instances.has(ri)) throw new CodecError(d.format, 'duplicate', `resource instance ${ri} appears twice`, pos, where(o, i, r, ri));
    instances.set(ri, decodeLeafValue(d, h, type, o, i, r, ri));
  }
  return { kind: 'multiResource', id: r, instances };
}

/** Decodes a Resource or Multiple Resource TLV whose header is in `h` (level 1). */
function decodeResource(d: Decoder, h: Header, o: number, i: number): Resource {
  const r = h.id;
  if (h.kind === K_MULTIPLE_RESOURCE) return decodeMultiContent(d, h.valueStart, h.valueEnd, o, i, r);
  const res: SingleResource = { kind: 'resource', id: r, value: decodeLeafValue(d, h, resourceType(d, o, r), o, i, r, -1) };
  return res;
}

/** Decodes the resource TLVs in `b[start..end)` as the content of instance `i`. */
function decodeInstanceContent(d: Decoder, start: number, end: number, o: number, i: number): ObjectInstance {
  const h = d.h1;
  const resources = new Map<number, Resource>();
  for (let pos = start; pos < end; pos = h.valueEnd) {
    readHeader(d.format, d.b, pos, end, 0, h);
    const r = h.id;
    if (h.kind === K_OBJECT_INSTANCE || h.kind === K_RESOURCE_INSTANCE) {
      throw new CodecError(d.format, 'invalid', `${KIND_LABELS[h.kind]} (ID ${r}) directly in an object instance; expected Resource or Multiple Resource TLVs`, pos, where(o, i));
    }
    checkWireId(d, h, o, i, r);
    if (resources.has(r)) throw new CodecError(d.format, 'duplicate', `resource ${r} appears twice`, pos, where(o, i, r));
    resources.set(r, decodeResource(d, h, o, i));
  }
  return { kind: 'instance', id: i, resources };
}

function decodeObject(d: Decoder, o: number): LwM2MObject {
  const h = d.h0;
  const end = d.b.length;
  const instances = new Map<number, ObjectInstance>();
  for (let pos = 0; pos < end; pos = h.valueEnd) {
    readHeader(d.format, d.b, pos, end, 0, h);
    const i = h.id;
    if (h.kind !== K_OBJECT_INSTANCE) {
      throw new CodecError(d.format, 'invalid', `${KIND_LABELS[h.kind]} (ID ${i}) at the top of an object payload; Object Instance TLVs are required when the path has no instance ID`, pos, where(o));
    }
    checkWireId(d, h, o, i);
    if (instances.has(i)) throw new CodecError(d.format, 'duplicate', `object instance ${i} appears twice`, pos, where(o, i));
    instances.set(i, decodeInstanceContent(d, h.valueStart, h.valueEnd, o, i));
  }
  return { kind: 'object', id: o, instances };
}

/**
 * Checks that the record after the one expected at a single-node path is not there: a second
 * record with the same ID is a duplicate, any other is a value outside the request path.
 */
function refuseSecond(d: Decoder, pos: number, h: Header, firstId: number, firstKind: number, path: string): never {
  readHeader(d.format, d.b, pos, d.b.length, 0, h);
  if (h.kind !== firstKind) {
    throw new CodecError(d.format, 'invalid', `${KIND_LABELS[h.kind]} after ${KIND_LABELS[firstKind]}; the payload for this path holds a single record`, pos, path);
  }
  if (h.id === firstId) throw new CodecError(d.format, 'duplicate', `ID ${firstId} appears twice`, pos, path);
  throw new CodecError(d.format, 'bad_path', `record ID ${h.id} lies outside the request path`, pos, path);
}

function decodeAtInstance(d: Decoder, o: number, i: number): ObjectInstance {
  const b = d.b;
  if (b.length === 0) return { kind: 'instance', id: i, resources: new Map() };
  const h = d.h0;
  readHeader(d.format, b, 0, b.length, 0, h);
  if (h.kind === K_OBJECT_INSTANCE) {
    // Wrapped form: exactly one Object Instance TLV whose ID is the path's.
    if (h.id !== i) throw new CodecError(d.format, 'bad_path', `Object Instance TLV ${h.id} does not match the request path`, 0, where(o, i));
    const inst = decodeInstanceContent(d, h.valueStart, h.valueEnd, o, i);
    if (h.valueEnd < b.length) refuseSecond(d, h.valueEnd, d.h1, i, K_OBJECT_INSTANCE, where(o, i));
    return inst;
  }
  // Bare form: the resource TLVs themselves (Leshan).
  return decodeInstanceContent(d, 0, b.length, o, i);
}

function decodeAtResource(d: Decoder, o: number, i: number, r: number): Resource {
  const b = d.b;
  const path = where(o, i, r);
  if (b.length === 0) {
    // No record at all: only an empty multiple resource can be written as nothing.
    if (d.models?.resource(o, r)?.multiple) return { kind: 'multiResource', id: r, instances: new Map() };
    throw new CodecError(d.format, 'invalid', 'empty payload for a single resource', 0, path);
  }
  const h = d.h1;
  readHeader(d.format, b, 0, b.length, 0, h);
  switch (h.kind) {
    case K_RESOURCE_INSTANCE:
      // A bare list of Resource Instance TLVs (accepted alongside the `10` wrapper).
      return decodeMultiContent(d, 0, b.length, o, i, r);
    case K_OBJECT_INSTANCE:
      throw new CodecError(d.format, 'invalid', `an Object Instance TLV where a resource was expected`, 0, path);
    default: {
      if (h.id !== r) throw new CodecError(d.format, 'bad_path', `resource TLV ${h.id} does not match the request path`, 0, path);
      const kind = h.kind;
      const res = decodeResource(d, h, o, i);
      if (h.valueEnd < b.length) refuseSecond(d, h.valueEnd, d.h0, r, kind, path);
      return res;
    }
  }
}

function decodeAtResourceInstance(d: Decoder, o: number, i: number, r: number, ri: number): ResourceInstance {
  const b = d.b;
  const path = where(o, i, r, ri);
  if (b.length === 0) throw new CodecError(d.format, 'invalid', 'empty payload for a resource instance', 0, path);
  const h = d.h2;
  readHeader(d.format, b, 0, b.length, 0, h);
  if (h.kind !== K_RESOURCE_INSTANCE) {
    throw new CodecError(d.format, 'invalid', `${KIND_LABELS[h.kind]} where a Resource Instance TLV was expected`, 0, path);
  }
  if (h.id !== ri) throw new CodecError(d.format, 'bad_path', `Resource Instance TLV ${h.id} does not match the request path`, 0, path);
  const value = decodeLeafValue(d, h, resourceType(d, o, r), o, i, r, ri);
  if (h.valueEnd < b.length) refuseSecond(d, h.valueEnd, d.h0, ri, K_RESOURCE_INSTANCE, path);
  return { kind: 'resourceInstance', id: ri, value };
}

/** Decodes a TLV payload sent to or read from `path`; types come from `models` (else opaque). */
export function decodeTlv(path: Path, payload: Uint8Array, models?: ModelLookup, format = 'tlv'): LwM2MNode {
  validatePath(path);
  const d: Decoder = { format, b: payload, models, h0: newHeader(), h1: newHeader(), h2: newHeader() };
  const [o, i, r, ri] = path as [number, number, number, number];
  switch (path.length) {
    case 0:
      throw new CodecError(format, 'unsupported', 'TLV cannot carry the root path (several objects)', undefined, '/');
    case 1:
      return decodeObject(d, o);
    case 2:
      return decodeAtInstance(d, o, i);
    case 3:
      return decodeAtResource(d, o, i, r);
    default:
      return decodeAtResourceInstance(d, o, i, r, ri);
  }
}

// ---------------------------------------------------------------------------------------------
// Codecs
// ---------------------------------------------------------------------------------------------

function makeCodec(contentFormat: number, name: string): NodeCodec {
  return Object.freeze({
    contentFormat,
    name,
    mediaType: TLV_MEDIA_TYPE,
    composite: false,
    encode: (path: Path, node: LwM2MNode): Uint8Array => encodeTlv(path, node, {}, name),
    decode: (path: Path, payload: Uint8Array, models?: ModelLookup): LwM2MNode => decodeTlv(path, payload, models, name),
  });
}

/** TLV, Content-Format 11542. */
export const tlvCodec: NodeCodec = makeCodec(TLV_CONTENT_FORMAT, 'tlv');

/** The same TLV under the pre-IANA number 1542 that very early 1.0 clients use. */
export const tlvLegacyCodec: NodeCodec = makeCodec(TLV_LEGACY_CONTENT_FORMAT, 'tlv-legacy');
