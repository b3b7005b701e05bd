/**
 * A small CBOR (RFC 8949) encoder and decoder, the base of SenML CBOR, LwM2M CBOR and CBOR (60).
 *
 * Encoding uses preferred serialization: shortest integer heads, definite lengths, and floats in
 * the smallest of half/single/double precision that holds the value exactly. Decoding accepts any
 * valid CBOR (indefinite lengths, non-minimal heads, tags) within depth and size limits, keeps map
 * entries in order with keys of any type, and marks floats (`CborFloat`) so `1.0` is not mistaken
 * for the integer `1`.
 */
import { CodecError } from './errors.js';

export class CborMap {
  constructor(readonly entries: Array<readonly [CborItem, CborItem]>) {}
  /** Value of the first entry whose key is this integer or text string. */
  get(key: number | string): CborItem | undefined {
    for (const [k, v] of this.entries) if (k === key) return v;
    return undefined;
  }
}

export class CborTag {
  constructor(
    readonly tag: number,
    readonly value: CborItem,
  ) {}
}

/** A floating-point number; decoders return these for major type 7 floats. */
export class CborFloat {
  constructor(readonly value: number) {}
}

/** Simple values other than false/true/null/undefined. */
export class CborSimple {
  constructor(readonly value: number) {}
}

export type CborItem =
  | number
  | bigint
  | string
  | Uint8Array
  | boolean
  | null
  | undefined
  | readonly CborItem[]
  | CborMap
  | CborTag
  | CborFloat
  | CborSimple;

// ---------------------------------------------------------------------------------------------
// Encoder

const utf8 = new TextEncoder();

export class CborWriter {
  private buf: Buffer;
  private len = 0;

  constructor(initial = 256) {
    this.buf = Buffer.allocUnsafe(initial);
  }

  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }

  /** Writes a head: major type and argument, in the shortest form. */
  head(major: number, arg: number | bigint): void {
    const m = major << 5;
    if (typeof arg === 'bigint') {
      if (arg <= 0xffffffffn) return this.head(major, Number(arg));
      this.reserve(9);
      this.buf[this.len++] = m | 27;
      this.buf.writeBigUInt64BE(arg, this.len);
      this.len += 8;
      return;
    }
    if (arg < 24) {
      this.reserve(1);
      this.buf[this.len++] = m | arg;
    } else if (arg < 0x100) {
      this.reserve(2);
      this.buf[this.len++] = m | 24;
      this.buf[this.len++] = arg;
    } else if (arg < 0x10000) {
      this.reserve(3);
      this.buf[this.len++] = m | 25;
      this.buf.writeUInt16BE(arg, this.len);
      this.len += 2;
    } else if (arg < 0x100000000) {
      this.reserve(5);
      this.buf[this.len++] = m | 26;
      this.buf.writeUInt32BE(arg, this.len);
      this.len += 4;
    } else {
      this.head(major, BigInt(arg));
    }
  }

  integer(v: number | bigint): void {
    if (typeof v === 'number') {
      // unsafe or fractional numbers would reach Buffer writers and throw a RangeError
      if (!Number.isSafeInteger(v)) {
        if (!Number.isInteger(v)) throw new CodecError('cbor', 'invalid', `integer ${v} is not an integer`);
        return this.integer(BigInt(v));
      }
      if (v >= 0) this.head(0, v);
      else this.head(1, -1 - v);
      return;
    }
    if (v >= 0n) {
      if (v > 0xffffffffffffffffn) throw new CodecError('cbor', 'out_of_range', `integer ${v} needs more than 64 bits`);
      this.head(0, v);
    } else {
      const n = -1n - v;
      if (n > 0xffffffffffffffffn) throw new CodecError('cbor', 'out_of_range', `integer ${v} needs more than 64 bits`);
      this.head(1, n);
    }
  }

  bytes(b: Uint8Array): void {
    this.head(2, b.length);
    this.reserve(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }

  text(s: string): void {
    // ASCII fast path avoids a TextEncoder allocation for the common case.
    let ascii = true;
    for (let i = 0; i < s.length; i++) {
      if (s.charCodeAt(i) > 0x7f) {
        ascii = false;
        break;
      }
    }
    if (ascii) {
      this.head(3, s.length);
      this.reserve(s.length);
      this.buf.write(s, this.len, 'latin1');
      this.len += s.length;
      return;
    }
    const b = utf8.encode(s);
    this.head(3, b.length);
    this.reserve(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }

  /** Writes a float in the smallest precision that represents it exactly. */
  float(v: number): void {
    const half = toHalf(v);
    if (half !== undefined) {
      this.reserve(3);
      this.buf[this.len++] = 0xf9;
      this.buf.writeUInt16BE(half, this.len);
      this.len += 2;
    } else if (Math.fround(v) === v) {
      this.reserve(5);
      this.buf[this.len++] = 0xfa;
      this.buf.writeFloatBE(v, this.len);
      this.len += 4;
    } else {
      this.reserve(9);
      this.buf[this.len++] = 0xfb;
      this.buf.writeDoubleBE(v, this.len);
      this.len += 8;
    }
  }

  simple(v: number): void {
    if (v < 24) this.head(7, v);
    else {
      this.reserve(2);
      this.buf[this.len++] = 0xf8;
      this.buf[this.len++] = v;
    }
  }

  item(v: CborItem): void {
    switch (typeof v) {
      case 'number':
        if (Number.isSafeInteger(v) && !Object.is(v, -0)) this.integer(v);
        else this.float(v);
        return;
      case 'bigint':
        this.integer(v);
        return;
      case 'string':
        this.text(v);
        return;
      case 'boolean':
        this.simple(v ? 21 : 20);
        return;
      case 'undefined':
        this.simple(23);
        return;
    }
    if (v === null) return this.simple(22);
    if (v instanceof Uint8Array) return this.bytes(v);
    if (Array.isArray(v)) {
      this.head(4, v.length);
      for (const x of v as readonly CborItem[]) this.item(x);
      return;
    }
    if (v instanceof CborMap) {
      this.head(5, v.entries.length);
      for (const [k, x] of v.entries) {
        this.item(k);
        this.item(x);
      }
      return;
    }
    if (v instanceof CborFloat) return this.float(v.value);
    if (v instanceof CborTag) {
      this.head(6, v.tag);
      this.item(v.value);
      return;
    }
    if (v instanceof CborSimple) return this.simple(v.value);
    throw new CodecError('cbor', 'unsupported', `cannot encode a ${Object.prototype.toString.call(v)}`);
  }

  /** A copy of the bytes written so far. */
  finish(): Uint8Array {
    return new Uint8Array(this.buf.subarray(0, this.len));
  }
}

export function encodeCbor(v: CborItem): Uint8Array {
  const w = new CborWriter(64);
  w.item(v);
  return w.finish();
}

/** IEEE 754 half-precision bits of `v` when it is exactly representable, else undefined. */
export function toHalf(v: number): number | undefined {
  if (Number.isNaN(v)) return 0x7e00;
  if (v === Infinity) return 0x7c00;
  if (v === -Infinity) return 0xfc00;
  const sign = v < 0 || Object.is(v, -0) ? 0x8000 : 0;
  const a = Math.abs(v);
  if (a === 0) return sign;
  if (Math.fround(a) !== a) return undefined;
  // subnormal halves: m * 2^-24 with m in 1..1023
  const sub = a * 2 ** 24;
  if (sub < 1024) return Number.isInteger(sub) ? sign | sub : undefined;
  const e = Math.floor(Math.log2(a));
  // guard against log2 rounding at exact powers of two
  const exp = 2 ** e > a ? e - 1 : 2 ** (e + 1) <= a ? e + 1 : e;
  if (exp < -14 || exp > 15) return undefined;
  const mant = (a / 2 ** exp - 1) * 1024;
  if (!Number.isInteger(mant)) return undefined;
  return sign | ((exp + 15) << 10) | mant;
}

export function fromHalf(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 31) return mant === 0 ? sign * Infinity : NaN;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

// ---------------------------------------------------------------------------------------------
// Decoder

export interface CborDecodeOptions {
  /** Name used in errors (`senml-cbor`, `lwm2m-cbor`, ...). */
  format?: string;
  /** Maximum nesting of arrays, maps and tags. */
  maxDepth?: number;
}

// ignoreBOM: a leading U+FEFF is content in a CBOR text string, not a byte-order mark to drop
const utf8Strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

const BREAK = Symbol('break');

class CborReader {
  pos = 0;
  constructor(
    private readonly b: Uint8Array,
    private readonly view: DataView,
    private readonly format: string,
    private readonly maxDepth: number,
  ) {}

  fail(reason: 'truncated' | 'invalid' | 'too_deep' | 'too_large', detail: string, at = this.pos): never {
    throw new CodecError(this.format, reason, detail, at);
  }

  need(n: number): void {
    if (this.pos + n > this.b.length) this.fail('truncated', `needs ${n} more byte(s), ${this.b.length - this.pos} left`);
  }

  /** Reads the argument of a head; returns -1 for indefinite length (info 31). */
  arg(info: number, start: number): number | bigint {
    if (info < 24) return info;
    switch (info) {
      case 24:
        this.need(1);
        return this.b[this.pos++] as number;
      case 25: {
        this.need(2);
        const v = this.view.getUint16(this.pos);
        this.pos += 2;
        return v;
      }
      case 26: {
        this.need(4);
        const v = this.view.getUint32(this.pos);
        this.pos += 4;
        return v;
      }
      case 27: {
        this.need(8);
        const v = this.view.getBigUint64(this.pos);
        this.pos += 8;
        return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
      }
      case 31:
        return -1;
      default:
        return this.fail('invalid', `reserved additional information ${info}`, start);
    }
  }

  length(v: number | bigint, start: number): number {
    if (typeof v === 'bigint' || v > this.b.length - this.pos) {
      // every element takes at least one byte, so a count beyond the bytes left is a lie
      this.fail('truncated', `declared length ${v} exceeds the ${this.b.length - this.pos} byte(s) left`, start);
    }
    return v;
  }

  item(depth: number): CborItem | typeof BREAK {
    const start = this.pos;
    this.need(1);
    const ib = this.b[this.pos++] as number;
    const major = ib >> 5;
    const info = ib & 0x1f;
    if (major === 7) return this.simpleOrFloat(info, start);
    const a = this.arg(info, start);
    switch (major) {
      case 0:
        if (a === -1) this.fail('invalid', 'indefinite length on an integer', start);
        return a;
      case 1:
        if (a === -1) this.fail('invalid', 'indefinite length on an integer', start);
        return typeof a === 'bigint' || a > Number.MAX_SAFE_INTEGER - 1 ? normBig(-1n - BigInt(a)) : -1 - a;
      case 2:
      case 3: {
        let bytes: Uint8Array;
        if (a === -1) {
          const chunks: Uint8Array[] = [];
          for (;;) {
            this.need(1);
            if (this.b[this.pos] === 0xff) {
              this.pos++;
              break;
            }
            const cstart = this.pos;
            const cib = this.b[this.pos++] as number;
            if (cib >> 5 !== major || (cib & 0x1f) === 31) this.fail('invalid', 'bad chunk in an indefinite-length string', cstart);
            const n = this.length(this.arg(cib & 0x1f, cstart), cstart);
            chunks.push(this.b.subarray(this.pos, this.pos + n));
            this.pos += n;
          }
          bytes = Buffer.concat(chunks);
        } else {
          const n = this.length(a, start);
          bytes = this.b.subarray(this.pos, this.pos + n);
          this.pos += n;
        }
        if (major === 2) return new Uint8Array(bytes);
        try {
          return utf8Strict.decode(bytes);
        } catch {
          return this.fail('invalid', 'text string is not valid UTF-8', start);
        }
      }
      case 4: {
        if (depth >= this.maxDepth) this.fail('too_deep', `nesting deeper than ${this.maxDepth}`, start);
        const out: CborItem[] = [];
        if (a === -1) {
          for (;;) {
            const x = this.item(depth + 1);
            if (x === BREAK) break;
            out.push(x);
          }
        } else {
          const n = this.length(a, start);
          for (let i = 0; i < n; i++) out.push(this.notBreak(this.item(depth + 1)));
        }
        return out;
      }
      case 5: {
        if (depth >= this.maxDepth) this.fail('too_deep', `nesting deeper than ${this.maxDepth}`, start);
        const entries: Array<readonly [CborItem, CborItem]> = [];
        if (a === -1) {
          for (;;) {
            const k = this.item(depth + 1);
            if (k === BREAK) break;
            entries.push([k, this.notBreak(this.item(depth + 1))]);
          }
        } else {
          const n = this.length(a, start);
          for (let i = 0; i < n; i++) {
            const k = this.notBreak(this.item(depth + 1));
            entries.push([k, this.notBreak(this.item(depth + 1))]);
          }
        }
        return new CborMap(entries);
      }
      case 6: {
        if (a === -1) this.fail('invalid', 'indefinite length on a tag', start);
        if (depth >= this.maxDepth) this.fail('too_deep', `nesting deeper than ${this.maxDepth}`, start);
        const tag = typeof a === 'bigint' ? Number(a) : a;
        return new CborTag(tag, this.notBreak(this.item(depth + 1)));
      }
    }
    return this.fail('invalid', `unknown major type ${major}`, start);
  }

  notBreak(x: CborItem | typeof BREAK): CborItem {
    if (x === BREAK) this.fail('invalid', 'unexpected "break" outside an indefinite-length item', this.pos - 1);
    return x;
  }

  simpleOrFloat(info: number, start: number): CborItem | typeof BREAK {
    switch (info) {
      case 20:
        return false;
      case 21:
        return true;
      case 22:
        return null;
      case 23:
        return undefined;
      case 24: {
        this.need(1);
        const v = this.b[this.pos++] as number;
        if (v < 32) this.fail('invalid', `simple value ${v} must use the one-byte form`, start);
        return new CborSimple(v);
      }
      case 25: {
        this.need(2);
        const v = fromHalf(this.view.getUint16(this.pos));
        this.pos += 2;
        return new CborFloat(v);
      }
      case 26: {
        this.need(4);
        const v = this.view.getFloat32(this.pos);
        this.pos += 4;
        return new CborFloat(v);
      }
      case 27: {
        this.need(8);
        const v = this.view.getFloat64(this.pos);
        this.pos += 8;
        return new CborFloat(v);
      }
      case 31:
        return BREAK;
      default:
        if (info < 20) return new CborSimple(info);
        return this.fail('invalid', `reserved additional information ${info} in major type 7`, start);
    }
  }
}

function normBig(v: bigint): number | bigint {
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

/** Decodes exactly one CBOR item that fills `bytes`; trailing bytes are an error. */
export function decodeCbor(bytes: Uint8Array, opts: CborDecodeOptions = {}): CborItem {
  const format = opts.format ?? 'cbor';
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const r = new CborReader(bytes, view, format, opts.maxDepth ?? 32);
  if (bytes.length === 0) throw new CodecError(format, 'truncated', 'empty payload', 0);
  const item = r.notBreak(r.item(0));
  if (r.pos !== bytes.length) throw new CodecError(format, 'trailing', `${bytes.length - r.pos} byte(s) after the CBOR item`, r.pos);
  return item;
}

/** Human-readable name of a decoded item's kind, for error messages. */
export function cborKind(v: CborItem): string {
  if (v === null) return 'null';
  if (v === undefined) return 'undefined';
  if (v instanceof Uint8Array) return 'byte string';
  if (Array.isArray(v)) return 'array';
  if (v instanceof CborMap) return 'map';
  if (v instanceof CborTag) return `tag ${v.tag}`;
  if (v instanceof CborFloat) return 'float';
  if (v instanceof CborSimple) return `simple(${v.value})`;
  if (typeof v === 'string') return 'text string';
  if (typeof v === 'number' || typeof v === 'bigint') return 'integer';
  return typeof v;
}
