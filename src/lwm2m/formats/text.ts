/**
 * Plain text (`text/plain;charset=utf-8`, Content-Format 0): the value of one single-instance
 * resource `/o/i/r` or one resource instance `/o/i/r/ri`, written as formats.md §2 says:
 * String/Corelnk as UTF-8, Integer/Unsigned/Time as ASCII decimal, Float as decimal, Boolean
 * `0`/`1`, Opaque as standard base64 with padding, Objlnk as `oid:iid`. No trailing newline.
 *
 * Text carries no type, so decoding needs the model; a resource the model does not know (or an
 * executable one) decodes to an `opaque` value holding the raw bytes, which loses nothing.
 *
 * Encoding choices:
 * - Float: the shortest text that reads back to the same double, written as a plain decimal
 *   (`0.00000000006667`, like the spec's example) while the decimal exponent is within ±30, and
 *   in exponent form (`1e-31`, `1.5e+300`) beyond, where the plain form would be dozens of zeros.
 *   `-0` keeps its sign. NaN and infinities have no LwM2M text form: `unsupported`.
 *
 * Decoding choices (lenient where it costs nothing, strict otherwise):
 * - Numbers, booleans, links and base64 may be surrounded by whitespace (a trailing newline from
 *   a shell client); inside the value nothing extra is allowed (no `+` sign, no inner spaces).
 * - Integers are exact to 64 bits (bigint beyond 2^53); leading zeros are accepted.
 * - Floats accept an exponent (`6.667e-11`, `1.0E5`), `5.` and `.5`; not `NaN`, `Infinity`, hex.
 * - Booleans: `0`/`1` as the spec says, and also `true`/`false` — some 1.0 implementations
 *   printed booleans that way and the meaning is unambiguous.
 * - Opaque: base64 of either alphabet, with or without padding.
 * - Objlnk: `oid:iid`, and the hex null link `FFFF:FFFF` of one spec example.
 * - Strings are kept byte-exact (a leading BOM stays part of the value); invalid UTF-8 is refused.
 */
import { fromBase64Any, toBase64 } from '../base64.js';
import type { NodeCodec } from '../codec.js';
import { CodecError } from '../errors.js';
import type { ModelLookup } from '../model.js';
import { checkNodeAtPath, type LwM2MNode, N } from '../node.js';
import { formatPath, type Path } from '../path.js';
import { formatObjlnk, normInt, parseObjlnk, V, type Value, type ValueType } from '../value.js';
import { intValue, modelMultiple, modelType } from './common.js';

const FORMAT = 'text';

/** Plain decimal for floats whose decimal exponent lies within ±PLAIN_EXPONENT_LIMIT. */
const PLAIN_EXPONENT_LIMIT = 30;

const utf8Encoder = new TextEncoder();
// `ignoreBOM`: a string value is returned exactly as sent.
const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

// ---------------------------------------------------------------------------------------------
// Encoding

/** Writes a double as plain decimal when reasonable; exact (shortest round-trip digits). */
export function formatFloatText(x: number): string {
  if (Object.is(x, -0)) return '-0';
  const s = String(x);
  const e = s.indexOf('e');
  if (e < 0) return s; // String() is already plain for 1e-7 <= |x| < 1e21
  const exp = Number(s.slice(e + 1));
  if (exp < -PLAIN_EXPONENT_LIMIT || exp > PLAIN_EXPONENT_LIMIT) return s;
  const negative = s.charCodeAt(0) === 0x2d;
  // Mantissa digits without sign and point: `-6.667e-11` → `6667`, value = 0.6667 × 10^(exp+1).
  const digits = s.slice(negative ? 1 : 0, e).replace('.', '');
  let plain: string;
  if (exp < 0) plain = '0.' + '0'.repeat(-exp - 1) + digits;
  else if (digits.length <= exp + 1) plain = digits + '0'.repeat(exp + 1 - digits.length);
  else plain = digits.slice(0, exp + 1) + '.' + digits.slice(exp + 1);
  return negative ? '-' + plain : plain;
}

function valueText(v: Value, path: Path): string {
  switch (v.type) {
    case 'string':
    case 'corelnk':
      return v.value;
    case 'integer':
    case 'unsigned':
    case 'time':
      return v.value.toString();
    case 'float':
      if (!Number.isFinite(v.value)) {
        throw new CodecError(FORMAT, 'unsupported', `float ${v.value} has no text representation`, undefined, formatPath(path));
      }
      return formatFloatText(v.value);
    case 'boolean':
      return v.value ? '1' : '0';
    case 'opaque':
      return toBase64(v.value);
    case 'objlnk':
      return formatObjlnk(v.value);
  }
}

function encode(path: Path, node: LwM2MNode): Uint8Array {
  checkNodeAtPath(FORMAT, path, node);
  if (node.kind !== 'resource' && node.kind !== 'resourceInstance') {
    throw new CodecError(FORMAT, 'unsupported', `text/plain carries one value, not a ${node.kind}`, undefined, formatPath(path));
  }
  return utf8Encoder.encode(valueText(node.value, path));
}

// ---------------------------------------------------------------------------------------------
// Decoding

function quote(s: string): string {
  return JSON.stringify(s.length > 40 ? s.slice(0, 40) + '…' : s);
}

function decodeUtf8(payload: Uint8Array, path: Path): string {
  try {
    return utf8Decoder.decode(payload);
  } catch {
    throw new CodecError(FORMAT, 'invalid', 'payload is not valid UTF-8', undefined, formatPath(path));
  }
}

function isDigits(s: string, from: number): boolean {
  if (from >= s.length) return false;
  for (let i = from; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return false;
  }
  return true;
}

function parseInteger(type: 'integer' | 'unsigned' | 'time', text: string, path: Path): Value {
  const s = text.trim();
  const start = s.charCodeAt(0) === 0x2d ? 1 : 0;
  if (!isDigits(s, start)) {
    throw new CodecError(FORMAT, 'invalid', `${type} text ${quote(s)} is not a decimal integer`, undefined, formatPath(path));
  }
  // Count significant digits first, so an absurdly long number never reaches BigInt.
  let i = start;
  while (i < s.length - 1 && s.charCodeAt(i) === 0x30) i++;
  if (s.length - i > 20) throw new CodecError(FORMAT, 'out_of_range', `${type} value ${quote(s)} has more than 20 digits`, undefined, formatPath(path));
  const n = s.length - i <= 15 ? Number(s) : normInt(BigInt(s));
  return intValue(FORMAT, type, n, path);
}

/** `-`? (digits [`.` digits?] | `.` digits) ([eE] [+-]? digits)? — what C, Java and JS print. */
function isDecimalFloat(s: string): boolean {
  let p = s.charCodeAt(0) === 0x2d ? 1 : 0;
  let digits = 0;
  const skipDigits = (): void => {
    while (p < s.length && s.charCodeAt(p) >= 0x30 && s.charCodeAt(p) <= 0x39) {
      p++;
      digits++;
    }
  };
  skipDigits();
  if (p < s.length && s.charCodeAt(p) === 0x2e) {
    p++;
    skipDigits();
  }
  if (digits === 0) return false;
  if (p < s.length && (s.charCodeAt(p) === 0x65 || s.charCodeAt(p) === 0x45)) {
    p++;
    if (p < s.length && (s.charCodeAt(p) === 0x2b || s.charCodeAt(p) === 0x2d)) p++;
    return isDigits(s, p);
  }
  return p === s.length;
}

function parseFloatText(text: string, path: Path): Value {
  const s = text.trim();
  if (!isDecimalFloat(s)) throw new CodecError(FORMAT, 'invalid', `float text ${quote(s)} is not a decimal number`, undefined, formatPath(path));
  const x = Number(s);
  if (!Number.isFinite(x)) throw new CodecError(FORMAT, 'out_of_range', `float ${quote(s)} overflows a double`, undefined, formatPath(path));
  return V.float(x);
}

function parseBoolean(text: string, path: Path): Value {
  switch (text.trim()) {
    case '1':
    case 'true':
      return V.boolean(true);
    case '0':
    case 'false':
      return V.boolean(false);
    default:
      throw new CodecError(FORMAT, 'invalid', `boolean text ${quote(text)} is not 0 or 1`, undefined, formatPath(path));
  }
}

function parseValue(type: ValueType, payload: Uint8Array, path: Path): Value {
  if (type === 'opaque') return V.opaque(fromBase64Any(decodeUtf8(payload, path), FORMAT, formatPath(path)));
  const text = decodeUtf8(payload, path);
  switch (type) {
    case 'string':
      return V.string(text);
    case 'corelnk':
      return V.corelnk(text);
    case 'integer':
    case 'unsigned':
    case 'time':
      return parseInteger(type, text, path);
    case 'float':
      return parseFloatText(text, path);
    case 'boolean':
      return parseBoolean(text, path);
    case 'objlnk':
      return { type: 'objlnk', value: parseObjlnk(text, FORMAT, formatPath(path)) };
  }
}

function decode(path: Path, payload: Uint8Array, models?: ModelLookup): LwM2MNode {
  if (path.length !== 3 && path.length !== 4) {
    throw new CodecError(FORMAT, 'unsupported', 'text/plain carries one resource or resource instance value', undefined, formatPath(path));
  }
  if (path.length === 3 && modelMultiple(models, path)) {
    throw new CodecError(FORMAT, 'unsupported', 'text/plain cannot carry a multiple-instance resource', undefined, formatPath(path));
  }
  const type = modelType(models, path);
  // Unknown type: keep the bytes (copied, so the value does not alias a reused receive buffer).
  const value = type === undefined ? V.opaque(payload.slice()) : parseValue(type, payload, path);
  return path.length === 3 ? N.resource(path[2] as number, value) : N.resourceInstance(path[3] as number, value);
}

export const textCodec: NodeCodec = {
  contentFormat: 0,
  name: FORMAT,
  mediaType: 'text/plain;charset=utf-8',
  composite: false,
  encode,
  decode,
};
