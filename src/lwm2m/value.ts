/**
 * Typed LwM2M values. Every value carries its data type, so encoders never need the object model;
 * decoders use the model to pick the type and fall back to `opaque` when they have none.
 *
 * Integers (Integer, Unsigned Integer, Time) are JavaScript numbers while they are safe integers
 * and bigints beyond that, so the common case stays fast and 64-bit values stay exact.
 */
import { CodecError } from './errors.js';

export type ResourceType =
  | 'string'
  | 'integer'
  | 'unsigned'
  | 'float'
  | 'boolean'
  | 'opaque'
  | 'time'
  | 'objlnk'
  | 'corelnk'
  | 'none'; // executable resources: no value

/** A value-carrying type (everything but `none`). */
export type ValueType = Exclude<ResourceType, 'none'>;

export type Int = number | bigint;

export interface ObjLnk {
  readonly objectId: number;
  readonly instanceId: number;
}

export type Value =
  | { readonly type: 'string'; readonly value: string }
  | { readonly type: 'integer'; readonly value: Int }
  | { readonly type: 'unsigned'; readonly value: Int }
  | { readonly type: 'float'; readonly value: number }
  | { readonly type: 'boolean'; readonly value: boolean }
  | { readonly type: 'opaque'; readonly value: Uint8Array }
  | { readonly type: 'time'; readonly value: Int }
  | { readonly type: 'objlnk'; readonly value: ObjLnk }
  | { readonly type: 'corelnk'; readonly value: string };

export const INT64_MIN = -(2n ** 63n);
export const INT64_MAX = 2n ** 63n - 1n;
export const UINT64_MAX = 2n ** 64n - 1n;

/** The null object link `65535:65535` (`FF FF FF FF` in TLV). */
export const NULL_OBJLNK: ObjLnk = Object.freeze({ objectId: 65535, instanceId: 65535 });

/** Returns a number when `v` is a safe integer, else the bigint. */
export function normInt(v: bigint): Int {
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

export function toBigInt(v: Int): bigint {
  return typeof v === 'bigint' ? v : BigInt(v);
}

function checkInt(type: 'integer' | 'unsigned' | 'time', v: Int): Int {
  if (typeof v === 'number' && !Number.isInteger(v)) {
    throw new CodecError('value', 'type_mismatch', `${type} value ${v} is not an integer`);
  }
  const b = toBigInt(v);
  const [min, max] = type === 'unsigned' ? [0n, UINT64_MAX] : [INT64_MIN, INT64_MAX];
  if (b < min || b > max) throw new CodecError('value', 'out_of_range', `${type} value ${b} is outside ${min}..${max}`);
  return typeof v === 'bigint' ? normInt(v) : v;
}

function checkObjlnk(l: ObjLnk): ObjLnk {
  for (const id of [l.objectId, l.instanceId]) {
    if (!Number.isInteger(id) || id < 0 || id > 65535) {
      throw new CodecError('value', 'out_of_range', `objlnk ID ${id} is not in 0..65535`);
    }
  }
  return l;
}

/** Value constructors; they validate ranges and normalise integers. */
export const V = {
  string: (value: string): Value => ({ type: 'string', value }),
  integer: (value: Int): Value => ({ type: 'integer', value: checkInt('integer', value) }),
  unsigned: (value: Int): Value => ({ type: 'unsigned', value: checkInt('unsigned', value) }),
  float: (value: number): Value => ({ type: 'float', value }),
  boolean: (value: boolean): Value => ({ type: 'boolean', value }),
  opaque: (value: Uint8Array): Value => ({ type: 'opaque', value }),
  time: (value: Int): Value => ({ type: 'time', value: checkInt('time', value) }),
  objlnk: (objectId: number, instanceId: number): Value => ({ type: 'objlnk', value: checkObjlnk({ objectId, instanceId }) }),
  corelnk: (value: string): Value => ({ type: 'corelnk', value }),
};

/**
 * Reads an object link `objectId:instanceId` without throwing: the link, or why the text is not
 * one — `'invalid'` for the syntax, `'out_of_range'` for a well-formed ID beyond 65535, so each
 * codec can report it in its own words. Lenient where clients are: whitespace around either ID
 * (`" 21 : 1 "`), and the hex null form `FFFF:FFFF` one spec example uses. Hand-written (no regex,
 * no allocation) because the JSON and CBOR codecs call it once per link.
 */
export function scanObjlnk(text: string): ObjLnk | 'invalid' | 'out_of_range' {
  const colon = text.indexOf(':');
  if (colon >= 0) {
    const o = scanId(text, 0, colon);
    const i = scanId(text, colon + 1, text.length);
    if (o >= 0 && i >= 0) {
      if (o > 65535 || i > 65535) return 'out_of_range';
      return o === 65535 && i === 65535 ? NULL_OBJLNK : { objectId: o, instanceId: i };
    }
  }
  return isHexNullLink(text) ? NULL_OBJLNK : 'invalid';
}

/** Like scanObjlnk, but undefined for anything that is not a valid link. */
export function tryParseObjlnk(text: string): ObjLnk | undefined {
  const l = scanObjlnk(text);
  return typeof l === 'string' ? undefined : l;
}

/**
 * `21:1` → {21, 1}; throws CodecError `invalid` or `out_of_range` (see scanObjlnk), reported
 * under the caller's format name and LwM2M path when given.
 */
export function parseObjlnk(text: string, format = 'value', path?: string): ObjLnk {
  const l = scanObjlnk(text);
  if (typeof l !== 'string') return l;
  const detail = l === 'invalid' ? 'is not "objectId:instanceId"' : 'has an ID beyond 65535';
  throw new CodecError(format, l, `object link ${JSON.stringify(text.length > 40 ? text.slice(0, 40) + '…' : text)} ${detail}`, undefined, path);
}

/** The decimal ID in s[start, end) without surrounding whitespace: 1..5 digits, else -1. */
function scanId(s: string, start: number, end: number): number {
  while (start < end && isJsSpace(s.charCodeAt(start))) start++;
  while (end > start && isJsSpace(s.charCodeAt(end - 1))) end--;
  if (start === end || end - start > 5) return -1;
  let v = 0;
  for (let k = start; k < end; k++) {
    const c = s.charCodeAt(k);
    if (c < 0x30 || c > 0x39) return -1;
    v = v * 10 + (c - 0x30);
  }
  return v;
}

/** `ffff:ffff` in any case, with whitespace around it. */
function isHexNullLink(s: string): boolean {
  let start = 0;
  let end = s.length;
  while (start < end && isJsSpace(s.charCodeAt(start))) start++;
  while (end > start && isJsSpace(s.charCodeAt(end - 1))) end--;
  if (end - start !== 9) return false;
  for (let k = 0; k < 9; k++) {
    const c = s.charCodeAt(start + k);
    if (k === 4 ? c !== 0x3a : (c | 0x20) !== 0x66) return false;
  }
  return true;
}

/** The characters String.prototype.trim removes (and `\s` matches). */
function isJsSpace(c: number): boolean {
  return (
    c === 0x20 || (c >= 0x09 && c <= 0x0d) || c === 0xa0 || c === 0x1680 || (c >= 0x2000 && c <= 0x200a) ||
    c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x3000 || c === 0xfeff
  );
}

export function formatObjlnk(l: ObjLnk): string {
  return `${l.objectId}:${l.instanceId}`;
}

/** Deep equality of two values (same type, same content). Floats compare with Object.is. */
export function valueEquals(a: Value, b: Value): boolean {
  if (a.type !== b.type) return false;
  switch (a.type) {
    case 'opaque': {
      const bv = b.value as Uint8Array;
      return a.value.length === bv.length && a.value.every((x, i) => x === bv[i]);
    }
    case 'objlnk': {
      const bv = b.value as ObjLnk;
      return a.value.objectId === bv.objectId && a.value.instanceId === bv.instanceId;
    }
    case 'integer':
    case 'unsigned':
    case 'time':
      return toBigInt(a.value) === toBigInt(b.value as Int);
    case 'float':
      return Object.is(a.value, b.value) || a.value === b.value;
    default:
      return a.value === b.value;
  }
}

/** A human-readable rendering for logs and the CLI (opaque as hex). Never use for secrets. */
export function valueToString(v: Value): string {
  switch (v.type) {
    case 'opaque':
      return '0x' + Buffer.from(v.value.buffer, v.value.byteOffset, v.value.byteLength).toString('hex');
    case 'objlnk':
      return formatObjlnk(v.value);
    default:
      return String(v.value);
  }
}
