/**
 * CBOR (Content-Format 60, `application/cbor`): exactly one CBOR data item carrying the value of
 * a single resource (`/o/i/r`) or of one resource instance (`/o/i/r/ri`); no map, no IDs.
 *
 * This module also holds the value mapping shared with LwM2M CBOR (11544): how each LwM2M type
 * is written as a CBOR item (formats.md §2) and how a decoded item becomes a typed value.
 *
 * Encoding: String/Corelnk → text string, Integer/Unsigned/Time → integer (major 0/1, Time without
 * a tag), Float → the shortest of half/single/double that is exact, Boolean → F4/F5, Opaque → byte
 * string, Objlnk → text `"oid:iid"`.
 *
 * Decoding is lenient where the representation is unambiguous: Time also as tag 1 (epoch seconds,
 * integer or float, fractions dropped toward −∞) or tag 0 (RFC 3339 date-time text); integral
 * floats for integer types; integers for Float resources; tag 55799 (self-described CBOR) is
 * skipped. `null` is refused: no LwM2M value is null.
 */
import { CborFloat, type CborItem, CborTag, CborWriter, cborKind, decodeCbor } from '../cbor.js';
import type { NodeCodec } from '../codec.js';
import { CodecError } from '../errors.js';
import type { ModelLookup } from '../model.js';
import { checkNodeAtPath, type LwM2MNode } from '../node.js';
import { formatPath, isValidId, type Path } from '../path.js';
import { INT64_MAX, formatObjlnk, parseObjlnk, type Value, type ValueType, V } from '../value.js';
import { intValue, modelMultiple, modelType, typeMismatch } from './common.js';

const FORMAT = 'cbor';

// ---------------------------------------------------------------------------------------------
// Shared value mapping (also used by LwM2M CBOR)

/** Writes `v` as one CBOR item, per the type table of formats.md §2. */
export function writeCborValue(w: CborWriter, v: Value): void {
  switch (v.type) {
    case 'string':
    case 'corelnk':
      w.text(v.value);
      return;
    case 'integer':
    case 'unsigned':
    case 'time':
      w.integer(v.value);
      return;
    case 'float':
      w.float(v.value);
      return;
    case 'boolean':
      w.simple(v.value ? 21 : 20);
      return;
    case 'opaque':
      w.bytes(v.value);
      return;
    case 'objlnk':
      w.text(formatObjlnk(v.value));
      return;
  }
}

/**
 * Converts a decoded CBOR item to a value of `type` (the model's type), or infers the type from
 * the item when there is no model: text → string, bytes → opaque, integer → integer (unsigned
 * above the int64 range), float → float, boolean → boolean, tag 0/1 → time.
 */
export function cborToValue(format: string, item: CborItem, type: ValueType | undefined, path: Path): Value {
  if (item instanceof CborTag) return taggedValue(format, item, type, path);
  switch (type) {
    case undefined:
      return inferValue(format, item, path);
    case 'string':
      if (typeof item === 'string') return V.string(item);
      break;
    case 'corelnk':
      if (typeof item === 'string') return V.corelnk(item);
      break;
    case 'integer':
    case 'unsigned':
    case 'time':
      if (typeof item === 'number' || typeof item === 'bigint') return intValue(format, type, item, path);
      // an integral float is the same number; intValue refuses fractions, NaN and infinities
      if (item instanceof CborFloat) return intValue(format, type, item.value, path);
      break;
    case 'float':
      if (item instanceof CborFloat) return V.float(item.value);
      if (typeof item === 'number' || typeof item === 'bigint') return V.float(Number(item));
      break;
    case 'boolean':
      if (typeof item === 'boolean') return V.boolean(item);
      break;
    case 'opaque':
      if (item instanceof Uint8Array) return V.opaque(item);
      break;
    case 'objlnk':
      if (typeof item === 'string') return objlnkValue(format, item, path);
      break;
  }
  if (item === null) throw nullValue(format, path);
  throw typeMismatch(format, type, `a CBOR ${cborKind(item)}`, path);
}

function inferValue(format: string, item: CborItem, path: Path): Value {
  switch (typeof item) {
    case 'string':
      return V.string(item);
    case 'boolean':
      return V.boolean(item);
    case 'number':
      return V.integer(item);
    case 'bigint':
      // major 0 beyond int64 only fits Unsigned; below int64 intValue reports out_of_range
      return intValue(format, item > INT64_MAX ? 'unsigned' : 'integer', item, path);
  }
  if (item instanceof Uint8Array) return V.opaque(item);
  if (item instanceof CborFloat) return V.float(item.value);
  if (item === null) throw nullValue(format, path);
  throw new CodecError(format, 'invalid', `a CBOR ${cborKind(item)} is not a resource value`, undefined, formatPath(path));
}

function nullValue(format: string, path: Path): CodecError {
  return new CodecError(format, 'invalid', 'null is not a resource value', undefined, formatPath(path));
}

function objlnkValue(format: string, text: string, path: Path): Value {
  return { type: 'objlnk', value: parseObjlnk(text, format, formatPath(path)) };
}

function taggedValue(format: string, item: CborTag, type: ValueType | undefined, path: Path): Value {
  // 55799 only marks "this is CBOR" (RFC 8949 §3.4.6); it changes nothing about the value
  if (item.tag === 55799) return cborToValue(format, item.value, type, path);
  if (item.tag !== 0 && item.tag !== 1) {
    throw new CodecError(format, 'invalid', `CBOR tag ${item.tag} is not supported for a resource value`, undefined, formatPath(path));
  }
  if (type !== undefined && type !== 'time') throw typeMismatch(format, type, `a tag ${item.tag} date/time`, path);
  const inner = item.value;
  if (item.tag === 1) {
    if (typeof inner === 'number' || typeof inner === 'bigint') return intValue(format, 'time', inner, path);
    if (inner instanceof CborFloat && Number.isFinite(inner.value)) return intValue(format, 'time', Math.floor(inner.value), path);
    throw new CodecError(format, 'invalid', `tag 1 (epoch time) must wrap a finite number, got a ${cborKind(inner)}`, undefined, formatPath(path));
  }
  if (typeof inner !== 'string') {
    throw new CodecError(format, 'invalid', `tag 0 (date-time) must wrap a text string, got a ${cborKind(inner)}`, undefined, formatPath(path));
  }
  const secs = parseDateTime(inner);
  if (secs === undefined) {
    throw new CodecError(format, 'invalid', `tag 0 text ${JSON.stringify(inner)} is not an RFC 3339 date-time`, undefined, formatPath(path));
  }
  return V.time(secs);
}

const DATE_TIME = /^([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.[0-9]+)?(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))$/;

/**
 * Seconds since the epoch of an RFC 3339 date-time (`2013-05-02T10:40:15Z`, `…+02:00`); a
 * fraction of a second is dropped (floor, since the fraction is always positive). Returns
 * undefined for malformed text or impossible fields (month 13, 31 April, hour 24 ...).
 */
export function parseDateTime(text: string): number | undefined {
  const m = DATE_TIME.exec(text);
  if (!m) return undefined;
  const [y, mo, d, h, mi, s] = [m[1], m[2], m[3], m[4], m[5], m[6]].map(Number) as [number, number, number, number, number, number];
  // second 60 is a leap second (RFC 3339 §5.7); it rolls into the next minute
  if (mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || s > 60) return undefined;
  const day = new Date(Date.UTC(y, mo - 1, d));
  if (day.getUTCMonth() !== mo - 1) return undefined; // day past the end of the month
  let ms = Date.UTC(y, mo - 1, d, h, mi, s);
  if (m[7] === undefined) {
    const oh = Number(m[9]);
    const om = Number(m[10]);
    if (oh > 23 || om > 59) return undefined;
    const off = (oh * 60 + om) * 60_000;
    ms += m[8] === '+' ? -off : off;
  }
  return Math.floor(ms / 1000);
}

// ---------------------------------------------------------------------------------------------
// The codec

function valuePathCheck(path: Path, op: string): void {
  if (path.length !== 3 && path.length !== 4) {
    throw new CodecError(FORMAT, 'unsupported', `CBOR (60) carries one resource or resource-instance value, cannot ${op} ${formatPath(path)}`, undefined, formatPath(path));
  }
  for (const id of path) {
    if (!isValidId(id)) throw new CodecError(FORMAT, 'bad_path', `ID ${id} is not in 0..65534`, undefined, formatPath(path));
  }
}

export const cborValueCodec: NodeCodec = {
  contentFormat: 60,
  name: FORMAT,
  mediaType: 'application/cbor',
  composite: false,

  encode(path: Path, node: LwM2MNode): Uint8Array {
    valuePathCheck(path, 'encode');
    checkNodeAtPath(FORMAT, path, node);
    if (node.kind !== 'resource' && node.kind !== 'resourceInstance') {
      throw new CodecError(FORMAT, 'unsupported', 'CBOR (60) cannot carry a multiple-instance resource', undefined, formatPath(path));
    }
    const w = new CborWriter(16);
    writeCborValue(w, node.value);
    return w.finish();
  },

  decode(path: Path, payload: Uint8Array, models?: ModelLookup): LwM2MNode {
    valuePathCheck(path, 'decode');
    if (path.length === 3 && modelMultiple(models, path) === true) {
      throw new CodecError(FORMAT, 'unsupported', 'CBOR (60) cannot carry a multiple-instance resource', undefined, formatPath(path));
    }
    const item = decodeCbor(payload, { format: FORMAT, maxDepth: 4 });
    const value = cborToValue(FORMAT, item, modelType(models, path), path);
    const id = path[path.length - 1] as number;
    return path.length === 3 ? { kind: 'resource', id, value } : { kind: 'resourceInstance', id, value };
  },
};
