/**
 * SenML JSON (`application/senml+json`, Content-Format 110) as LwM2M uses it (formats.md §5).
 *
 * The decoder is a small hand-written JSON reader specialised to a SenML pack (array of flat
 * objects) rather than `JSON.parse`: Integer and Unsigned Integer resources go up to 2^64-1, and
 * `JSON.parse` rounds every number to a double (Node 20 has no reviver `context.source`), so the
 * reader keeps integer literals exact (bigint beyond 15 digits). Reading straight into SenML
 * records also spares the intermediate object tree. Unknown fields are skipped with a depth cap.
 *
 * The encoder writes compact JSON in a fixed key order (`bn`, `n`, value, `t`), the byte-exact
 * form of the spec examples. Floats always carry a fraction or exponent (`2.0`, not `2`) so a
 * reader without the model still sees a float; integers are written exactly from the bigint.
 */
import { toBase64Url } from '../base64.js';
import { CodecError, type CodecErrorReason } from '../errors.js';
import type { ModelLookup } from '../model.js';
import { type LeafRecord, type LwM2MNode, recordsToNode } from '../node.js';
import type { Path } from '../path.js';
import { type Int, normInt, type Value } from '../value.js';
import {
  isMustUnderstand,
  pathNames,
  planNode,
  planRecords,
  resolveLeafRecords,
  resolvePaths,
  SENML_MAX_DEPTH,
  type SenmlCodec,
  type SenmlRecord,
  type SenmlSink,
} from './senml.js';

const FORMAT = 'senml-json';

/** Integer literals longer than this are refused before BigInt parsing (no double holds more). */
const MAX_INT_DIGITS = 310;

// ---------------------------------------------------------------------------------------------
// Decoder

const utf8Strict = new TextDecoder('utf-8', { fatal: true });

// Bits for duplicate-field detection within one record.
const F_BN = 1,
  F_BT = 2,
  F_BV = 4,
  F_N = 8,
  F_T = 16,
  F_V = 32,
  F_VS = 64,
  F_VB = 128,
  F_VD = 256,
  F_VLO = 512;

class SenmlJsonReader {
  pos = 0;
  /** Whether the last number read had a fraction or exponent. */
  lastFloat = false;
  private readonly len: number;

  constructor(private readonly s: string) {
    this.len = s.length;
  }

  fail(reason: CodecErrorReason, detail: string, at = this.pos): never {
    throw new CodecError(FORMAT, reason, detail, at);
  }

  ws(): void {
    const s = this.s;
    let p = this.pos;
    while (p < this.len) {
      const c = s.charCodeAt(p);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) p++;
      else break;
    }
    this.pos = p;
  }

  peek(): number {
    return this.pos < this.len ? this.s.charCodeAt(this.pos) : -1;
  }

  /** Fails with `truncated` at the end of input, else `invalid` naming what was expected. */
  unexpected(what: string): never {
    if (this.pos >= this.len) this.fail('truncated', `input ends where ${what} was expected`);
    return this.fail('invalid', `expected ${what}, found ${JSON.stringify(this.s.charAt(this.pos))}`);
  }

  pack(): SenmlRecord[] {
    this.ws();
    if (this.pos >= this.len) this.fail('truncated', 'empty payload');
    if (this.peek() !== 0x5b) this.fail('invalid', 'a SenML pack must be a JSON array');
    this.pos++;
    const out: SenmlRecord[] = [];
    this.ws();
    if (this.peek() === 0x5d) {
      this.pos++;
    } else {
      for (;;) {
        if (this.peek() !== 0x7b) this.unexpected(`record ${out.length} (a JSON object)`);
        out.push(this.record());
        this.ws();
        const c = this.peek();
        if (c === 0x2c) {
          this.pos++;
          this.ws();
          continue;
        }
        if (c === 0x5d) {
          this.pos++;
          break;
        }
        this.unexpected('"," or "]" after a record');
      }
    }
    this.ws();
    if (this.pos !== this.len) this.fail('trailing', `${this.len - this.pos} character(s) after the pack`);
    return out;
  }

  record(): SenmlRecord {
    const r: SenmlRecord = {};
    let seen = 0;
    this.pos++; // '{'
    this.ws();
    if (this.peek() === 0x7d) {
      this.pos++;
      return r;
    }
    for (;;) {
      if (this.peek() !== 0x22) this.unexpected('a field name');
      const keyAt = this.pos;
      const key = this.string();
      this.ws();
      if (this.peek() !== 0x3a) this.unexpected('":"');
      this.pos++;
      this.ws();
      let bit = 0;
      switch (key) {
        case 'bn':
          bit = F_BN;
          r.bn = this.stringField(key);
          break;
        case 'n':
          bit = F_N;
          r.n = this.stringField(key);
          break;
        case 'bt':
          bit = F_BT;
          r.bt = Number(this.numberField(key));
          break;
        case 't':
          bit = F_T;
          r.t = Number(this.numberField(key));
          break;
        case 'bv':
          bit = F_BV;
          r.bv = this.numberField(key);
          r.bvFloat = this.lastFloat;
          break;
        case 'v':
          bit = F_V;
          r.v = this.numberField(key);
          r.vFloat = this.lastFloat;
          break;
        case 'vs':
          bit = F_VS;
          r.vs = this.stringField(key);
          break;
        case 'vd':
          bit = F_VD;
          r.vd = this.stringField(key);
          break;
        case 'vlo':
          bit = F_VLO;
          r.vlo = this.stringField(key);
          break;
        case 'vb': {
          bit = F_VB;
          const c = this.peek();
          if (c === 0x74 && this.s.startsWith('true', this.pos)) {
            this.pos += 4;
            r.vb = true;
          } else if (c === 0x66 && this.s.startsWith('false', this.pos)) {
            this.pos += 5;
            r.vb = false;
          } else this.wrongType(key, 'true or false');
          break;
        }
        default:
          if (isMustUnderstand(key)) this.fail('invalid', `must-understand field ${JSON.stringify(key)} is not supported`, keyAt);
          this.skip(3); // unknown or unused field (bu, bver, u, s, ut, ...): ignored
      }
      if (bit !== 0) {
        if ((seen & bit) !== 0) this.fail('duplicate', `field ${JSON.stringify(key)} given twice in one record`, keyAt);
        seen |= bit;
      }
      this.ws();
      const c = this.peek();
      if (c === 0x2c) {
        this.pos++;
        this.ws();
        continue;
      }
      if (c === 0x7d) {
        this.pos++;
        return r;
      }
      this.unexpected('"," or "}" in a record');
    }
  }

  wrongType(key: string, want: string): never {
    if (this.pos >= this.len) this.fail('truncated', `input ends where the value of ${JSON.stringify(key)} was expected`);
    return this.fail('invalid', `field ${JSON.stringify(key)} must be ${want}`);
  }

  stringField(key: string): string {
    if (this.peek() !== 0x22) this.wrongType(key, 'a string');
    return this.string();
  }

  numberField(key: string): Int {
    const c = this.peek();
    if (c !== 0x2d && (c < 0x30 || c > 0x39)) this.wrongType(key, 'a number');
    return this.number();
  }

  /** Reads a JSON string at `pos` (which holds the opening quote). */
  string(): string {
    const s = this.s;
    const open = this.pos;
    let p = open + 1;
    // Fast path: no escapes, one slice.
    for (;;) {
      if (p >= this.len) this.fail('truncated', 'unterminated string', open);
      const c = s.charCodeAt(p);
      if (c === 0x22) {
        this.pos = p + 1;
        return s.slice(open + 1, p);
      }
      if (c === 0x5c) break;
      if (c < 0x20) this.fail('invalid', 'unescaped control character in a string', p);
      p++;
    }
    let out = s.slice(open + 1, p);
    for (;;) {
      if (p >= this.len) this.fail('truncated', 'unterminated string', open);
      const c = s.charCodeAt(p);
      if (c === 0x22) {
        this.pos = p + 1;
        return out;
      }
      if (c === 0x5c) {
        if (p + 1 >= this.len) this.fail('truncated', 'unterminated escape', p);
        const e = s.charCodeAt(p + 1);
        p += 2;
        switch (e) {
          case 0x22:
            out += '"';
            break;
          case 0x5c:
            out += '\\';
            break;
          case 0x2f:
            out += '/';
            break;
          case 0x62:
            out += '\b';
            break;
          case 0x66:
            out += '\f';
            break;
          case 0x6e:
            out += '\n';
            break;
          case 0x72:
            out += '\r';
            break;
          case 0x74:
            out += '\t';
            break;
          case 0x75: {
            if (p + 4 > this.len) this.fail('truncated', 'unterminated \\u escape', p - 2);
            let code = 0;
            for (let k = 0; k < 4; k++) {
              const h = hexDigit(s.charCodeAt(p + k));
              if (h < 0) this.fail('invalid', 'bad \\u escape', p - 2);
              code = (code << 4) | h;
            }
            p += 4;
            out += String.fromCharCode(code);
            break;
          }
          default:
            this.fail('invalid', `bad escape "\\${s.charAt(p - 1)}"`, p - 2);
        }
        continue;
      }
      if (c < 0x20) this.fail('invalid', 'unescaped control character in a string', p);
      const run = p;
      p++;
      while (p < this.len) {
        const d = s.charCodeAt(p);
        if (d === 0x22 || d === 0x5c || d < 0x20) break;
        p++;
      }
      out += s.slice(run, p);
    }
  }

  /**
   * Reads a JSON number. Integers stay exact: up to 15 digits accumulate in a double (exact),
   * longer ones go through BigInt. Fractions/exponents give a double and set `lastFloat`.
   */
  number(): Int {
    const s = this.s;
    const start = this.pos;
    let p = start;
    const neg = s.charCodeAt(p) === 0x2d;
    if (neg) p++;
    const intStart = p;
    let acc = 0;
    let c = p < this.len ? s.charCodeAt(p) : -1;
    if (c === 0x30) {
      p++;
    } else if (c >= 0x31 && c <= 0x39) {
      while (p < this.len) {
        c = s.charCodeAt(p);
        if (c < 0x30 || c > 0x39) break;
        acc = acc * 10 + (c - 0x30);
        p++;
      }
    } else {
      this.pos = p;
      this.unexpected('a digit');
    }
    const intDigits = p - intStart;
    let isFloat = false;
    if (p < this.len && s.charCodeAt(p) === 0x2e) {
      p++;
      const d = p;
      while (p < this.len && isDigit(s.charCodeAt(p))) p++;
      if (p === d) {
        this.pos = p;
        this.unexpected('a digit after "."');
      }
      isFloat = true;
    }
    if (p < this.len && (s.charCodeAt(p) | 0x20) === 0x65) {
      p++;
      if (p < this.len && (s.charCodeAt(p) === 0x2b || s.charCodeAt(p) === 0x2d)) p++;
      const d = p;
      while (p < this.len && isDigit(s.charCodeAt(p))) p++;
      if (p === d) {
        this.pos = p;
        this.unexpected('a digit in the exponent');
      }
      isFloat = true;
    }
    this.pos = p;
    this.lastFloat = isFloat;
    if (isFloat) {
      const x = Number(s.slice(start, p));
      if (!Number.isFinite(x)) this.fail('out_of_range', 'number is too large for a double', start);
      return x;
    }
    if (intDigits <= 15) return neg ? (acc === 0 ? 0 : -acc) : acc;
    if (intDigits > MAX_INT_DIGITS) this.fail('out_of_range', `integer with ${intDigits} digits`, start);
    return normInt(BigInt(s.slice(start, p)));
  }

  /** Skips any JSON value (unknown fields), refusing nesting beyond the cap. */
  skip(depth: number): void {
    const c = this.peek();
    switch (c) {
      case 0x22:
        this.string();
        return;
      case 0x74:
        return this.word('true');
      case 0x66:
        return this.word('false');
      case 0x6e:
        return this.word('null');
      case 0x5b:
      case 0x7b: {
        if (depth > SENML_MAX_DEPTH) this.fail('too_deep', `nesting deeper than ${SENML_MAX_DEPTH}`);
        const close = c === 0x5b ? 0x5d : 0x7d;
        this.pos++;
        this.ws();
        if (this.peek() === close) {
          this.pos++;
          return;
        }
        for (;;) {
          if (close === 0x7d) {
            if (this.peek() !== 0x22) this.unexpected('a field name');
            this.string();
            this.ws();
            if (this.peek() !== 0x3a) this.unexpected('":"');
            this.pos++;
            this.ws();
          }
          this.skip(depth + 1);
          this.ws();
          const d = this.peek();
          if (d === 0x2c) {
            this.pos++;
            this.ws();
            continue;
          }
          if (d === close) {
            this.pos++;
            return;
          }
          this.unexpected(`"," or "${String.fromCharCode(close)}"`);
        }
      }
      default:
        if (c === 0x2d || isDigit(c)) {
          this.number();
          return;
        }
        this.unexpected('a JSON value');
    }
  }

  word(w: string): void {
    if (!this.s.startsWith(w, this.pos)) this.unexpected(`"${w}"`);
    this.pos += w.length;
  }
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

function hexDigit(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const l = c | 0x20;
  if (l >= 0x61 && l <= 0x66) return l - 0x61 + 10;
  return -1;
}

/** Parses a SenML JSON payload into raw records (no resolution yet). */
export function parseSenmlJson(payload: Uint8Array): SenmlRecord[] {
  let text: string;
  try {
    text = utf8Strict.decode(payload);
  } catch {
    throw new CodecError(FORMAT, 'invalid', 'payload is not valid UTF-8');
  }
  return new SenmlJsonReader(text).pack();
}

// ---------------------------------------------------------------------------------------------
// Encoder

const utf8 = new TextEncoder();

/** A finite double as JSON text that reads back as a float: `2` → `2.0`, `-0` → `-0.0`. */
function floatText(x: number): string {
  if (Object.is(x, -0)) return '-0.0';
  const t = String(x);
  // String() uses exponent notation from 1e21 up and below 1e-6; both already read back as floats.
  return Number.isInteger(x) && x < 1e21 && x > -1e21 ? t + '.0' : t;
}

function valueText(v: Value): string {
  switch (v.type) {
    case 'string':
    case 'corelnk':
      return '"vs":' + JSON.stringify(v.value);
    case 'integer':
    case 'unsigned':
    case 'time':
      return '"v":' + String(v.value);
    case 'float':
      return '"v":' + floatText(v.value);
    case 'boolean':
      return v.value ? '"vb":true' : '"vb":false';
    case 'opaque':
      return '"vd":"' + toBase64Url(v.value) + '"';
    case 'objlnk':
      return `"vlo":"${v.value.objectId}:${v.value.instanceId}"`;
  }
}

/** Collects records into one string; names are digits and slashes, so they need no escaping. */
class JsonSink implements SenmlSink {
  out = '[';
  /** The base name in force, for error messages only. */
  private bn = '';

  record(bn: string | undefined, n: string | undefined, value: Value, time: number | undefined): void {
    if (bn !== undefined) this.bn = bn;
    if (value.type === 'float' && !Number.isFinite(value.value)) {
      throw new CodecError(FORMAT, 'unsupported', `float ${value.value} has no JSON representation`, undefined, this.bn + (n ?? ''));
    }
    if (time !== undefined && !Number.isFinite(time)) {
      throw new CodecError(FORMAT, 'unsupported', `time ${time} has no JSON representation`, undefined, this.bn + (n ?? ''));
    }
    let s = this.out.length === 1 ? '{' : ',{';
    if (bn !== undefined) s += '"bn":"' + bn + '",';
    if (n !== undefined) s += '"n":"' + n + '",';
    s += valueText(value);
    if (time !== undefined) s += ',"t":' + String(time);
    this.out += s + '}';
  }

  finish(): Uint8Array {
    return utf8.encode(this.out + ']');
  }
}

// ---------------------------------------------------------------------------------------------
// The codec

/** A Read-/Observe-Composite request body in SenML JSON: `[{"n":"/3/0/0"},{"n":"/1"}]`. */
export function encodeSenmlJsonPaths(paths: readonly Path[]): Uint8Array {
  const names = pathNames(FORMAT, paths);
  let s = '[';
  for (let i = 0; i < names.length; i++) s += (i === 0 ? '{"n":"' : ',{"n":"') + names[i] + '"}';
  return utf8.encode(s + ']');
}

/** The paths named by a SenML JSON Read-/Observe-Composite request body. */
export function decodeSenmlJsonPaths(payload: Uint8Array): Path[] {
  return resolvePaths(FORMAT, parseSenmlJson(payload));
}

export const senmlJsonCodec: SenmlCodec = {
  contentFormat: 110,
  name: FORMAT,
  mediaType: 'application/senml+json',
  composite: true,

  encode(path: Path, node: LwM2MNode): Uint8Array {
    const sink = new JsonSink();
    planNode(FORMAT, path, node, sink);
    return sink.finish();
  },

  decode(path: Path, payload: Uint8Array, models?: ModelLookup): LwM2MNode {
    const records = resolveLeafRecords(FORMAT, parseSenmlJson(payload), models);
    return recordsToNode(FORMAT, path, records, models ? (o, r) => models.resource(o, r) : undefined);
  },

  encodeRecords(records: readonly LeafRecord[]): Uint8Array {
    const sink = new JsonSink();
    planRecords(FORMAT, records, sink);
    return sink.finish();
  },

  decodeRecords(payload: Uint8Array, models?: ModelLookup): LeafRecord[] {
    return resolveLeafRecords(FORMAT, parseSenmlJson(payload), models);
  },

  encodePaths: encodeSenmlJsonPaths,
  decodePaths: decodeSenmlJsonPaths,
};
