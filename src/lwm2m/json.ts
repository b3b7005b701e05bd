/**
 * The one exact, bounded JSON reader of the data layer (RFC 8259), shared by SenML JSON and
 * LwM2M JSON, plus the few JSON writing helpers they share.
 *
 * Why not `JSON.parse`: it rounds every number to a double (Node 20 has no reviver
 * `context.source`), and Integer / Unsigned Integer resources go up to 2^64-1. It also cannot say
 * whether `1.0` was written with a fraction, which decides the type when there is no model, and
 * its errors carry no reason a codec can map to a CodecError.
 *
 * Why a cursor and not a tree: the codecs read fixed shapes (an array of flat records, an object
 * with an entry array), so they pull exactly the members they want straight into their own
 * records, with errors that name the record and member, and skip the rest. A generic tree
 * (`parseJson` below) costs an object per number and per member: building it for the Read /3/0
 * SenML example took longer than the cursor's whole parse into records, before any conversion.
 * The tree is kept for callers that want arbitrary JSON and for the tests.
 *
 * Strictness: UTF-8 is decoded strictly, the grammar is RFC 8259 exactly (no comments, trailing
 * commas, leading zeros, `NaN`, single quotes or raw control characters in strings), `\u`
 * escapes must pair surrogates, integers are exact (numbers while safe, bigints beyond; more
 * than MAX_INT_DIGITS digits is refused rather than fed to BigInt), fractions and exponents give
 * doubles and must be finite, and nesting is capped. Every fault is a CodecError in the caller's
 * format name with the character offset where it is.
 */
import { CodecError, type CodecErrorReason } from './errors.js';
import { type Int, normInt } from './value.js';

/** Integer literals with more digits than this are refused: no double, let alone int64, holds one. */
export const MAX_INT_DIGITS = 310;

/** Default nesting cap: containers open at once. */
export const DEFAULT_MAX_DEPTH = 32;

const enum Ch {
  Tab = 0x09,
  Lf = 0x0a,
  Cr = 0x0d,
  Space = 0x20,
  Quote = 0x22,
  Plus = 0x2b,
  Comma = 0x2c,
  Minus = 0x2d,
  Dot = 0x2e,
  Zero = 0x30,
  One = 0x31,
  Nine = 0x39,
  Colon = 0x3a,
  UpperE = 0x45,
  LBracket = 0x5b,
  Backslash = 0x5c,
  RBracket = 0x5d,
  LowerE = 0x65,
  LowerF = 0x66,
  LowerN = 0x6e,
  LowerT = 0x74,
  LBrace = 0x7b,
  RBrace = 0x7d,
}

export function isDigit(c: number): boolean {
  return c >= Ch.Zero && c <= Ch.Nine;
}

/** Can a JSON number start with code unit `c`? */
export function isNumberStart(c: number): boolean {
  return c === Ch.Minus || (c >= Ch.Zero && c <= Ch.Nine);
}

function hexDigit(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const l = c | 0x20;
  return l >= 0x61 && l <= 0x66 ? l - 0x57 : -1;
}

const utf8Strict = new TextDecoder('utf-8', { fatal: true });

/**
 * Decodes a payload as strict UTF-8 (overlong forms, encoded surrogates and truncated sequences
 * are refused). A leading byte-order mark is dropped, as TextDecoder does: it carries nothing.
 */
export function decodeUtf8Strict(format: string, payload: Uint8Array): string {
  try {
    return utf8Strict.decode(payload);
  } catch {
    throw new CodecError(format, 'invalid', 'payload is not valid UTF-8');
  }
}

/**
 * A cursor over JSON text. The caller drives it by the shape it expects:
 *
 * ```ts
 * if (r.peek() !== 0x7b) r.unexpected('an object');
 * if (r.open()) {
 *   do {
 *     const key = r.key();
 *     ...read or r.skip() the value...
 *   } while (r.more(0x7d)); // '}'
 * }
 * r.end();
 * ```
 *
 * `peek()` skips whitespace and returns the code unit at the cursor (-1 at the end); callers
 * peek to choose what to read or to word their own error. The readers (`open`, `key`, `string`,
 * `number`, `boolean`, `null`, `skip`) skip whitespace too, and `open`/`string`/`number` refuse
 * a value of another kind with a generic "expected ..." error. Offsets are character offsets
 * into the decoded text. The text must be well-formed UTF-16 (`fromBytes`
 * guarantees it; raw lone surrogates in a string given to the constructor pass through).
 */
export class JsonReader {
  pos = 0;
  /** Containers opened and not yet closed. */
  depth = 0;
  /** Whether the last number read had a fraction or an exponent (`1.0`, `1e0`): a float literal. */
  fraction = false;
  /** Offset of the opening quote of the last member name `key()` read. */
  keyAt = 0;
  private readonly len: number;

  constructor(
    /** The codec's name, the `format` of every CodecError. */
    readonly format: string,
    readonly text: string,
    readonly maxDepth: number = DEFAULT_MAX_DEPTH,
  ) {
    this.len = text.length;
  }

  /** A reader over a UTF-8 payload (strictly decoded). */
  static fromBytes(format: string, payload: Uint8Array, maxDepth?: number): JsonReader {
    return new JsonReader(format, decodeUtf8Strict(format, payload), maxDepth);
  }

  fail(reason: CodecErrorReason, detail: string, at: number = this.pos): never {
    throw new CodecError(this.format, reason, detail, at);
  }

  atEnd(): boolean {
    return this.pos >= this.len;
  }

  /** Skips whitespace; the code unit at the cursor, or -1 at the end. */
  peek(): number {
    // Kept tiny so V8 inlines it into the codecs' loops: compact JSON has no whitespace to skip.
    const c = this.text.charCodeAt(this.pos); // NaN past the end, which goes the slow way
    return c > Ch.Space ? c : this.skipSpace();
  }

  private skipSpace(): number {
    const s = this.text;
    let p = this.pos;
    let c = s.charCodeAt(p);
    while (c === Ch.Space || c === Ch.Lf || c === Ch.Cr || c === Ch.Tab) c = s.charCodeAt(++p);
    this.pos = p;
    return p < this.len ? c : -1;
  }

  /** The character at the cursor for a message: quoted when printable, U+XXXX otherwise. */
  describeHere(): string {
    if (this.pos >= this.len) return 'end of input';
    const c = this.text.charCodeAt(this.pos);
    return c >= 0x20 && c < 0x7f ? JSON.stringify(this.text.charAt(this.pos)) : `U+${c.toString(16).toUpperCase().padStart(4, '0')}`;
  }

  /** "Wanted `what` here": `truncated` at the end of input, `invalid` elsewhere. */
  unexpected(what: string): never {
    if (this.pos >= this.len) this.fail('truncated', `input ends where ${what} was expected`);
    return this.fail('invalid', `expected ${what}, found ${this.describeHere()}`);
  }

  /**
   * Enters an array or object. Returns false when it is empty (and already
   * closed), true when an element or member follows. Refuses nesting beyond `maxDepth`.
   */
  open(): boolean {
    let c = this.text.charCodeAt(this.pos);
    if (c !== Ch.LBracket && c !== Ch.LBrace) {
      c = this.peek();
      if (c !== Ch.LBracket && c !== Ch.LBrace) this.unexpected('an array or object');
    }
    const close = c + 2; // '[' + 2 = ']', '{' + 2 = '}'
    if (++this.depth > this.maxDepth) this.fail('too_deep', `JSON nested deeper than ${this.maxDepth} levels`);
    this.pos++;
    if (this.peek() !== close) return true;
    this.pos++;
    this.depth--;
    return false;
  }

  /**
   * After an element or member: true when a `,` announces another (consumed), false when the
   * container ends with `close` (consumed). `where` completes the error message.
   */
  more(close: 0x5d | 0x7d, where = ''): boolean {
    const c = this.peek();
    if (c === Ch.Comma) {
      this.pos++;
      return true;
    }
    if (c === close) {
      this.pos++;
      this.depth--;
      return false;
    }
    return this.unexpected(`"," or "${close === Ch.RBrace ? '}' : ']'}"${where && ' ' + where}`);
  }

  /** Reads a member name and its `:`; `peek()` then finds the value. Sets `keyAt`. */
  key(what = 'a member name'): string {
    if (this.peek() !== Ch.Quote) this.unexpected(what);
    this.keyAt = this.pos;
    const k = this.string();
    if (this.peek() !== Ch.Colon) this.unexpected('":"');
    this.pos++;
    return k;
  }

  /** After the top-level value: only whitespace may follow. */
  end(what = 'the JSON value'): void {
    if (this.peek() !== -1) this.fail('trailing', `${this.len - this.pos} character(s) after ${what}`);
  }

  /** Reads a string (after whitespace), unescaping it. */
  string(): string {
    // The caller has usually peeked already; whitespace and misuse take the slow branch.
    if (this.text.charCodeAt(this.pos) !== Ch.Quote && this.peek() !== Ch.Quote) this.unexpected('a string');
    const s = this.text;
    const open = this.pos;
    let p = open + 1;
    // Fast path: no escape, one slice.
    for (;;) {
      if (p >= this.len) this.fail('truncated', 'unterminated string', open);
      const c = s.charCodeAt(p);
      if (c === Ch.Quote) {
        this.pos = p + 1;
        return s.slice(open + 1, p);
      }
      if (c === Ch.Backslash) break;
      if (c < 0x20) this.fail('invalid', 'unescaped control character in a string', p);
      p++;
    }
    let out = s.slice(open + 1, p);
    let run = p;
    for (;;) {
      if (p >= this.len) this.fail('truncated', 'unterminated string', open);
      const c = s.charCodeAt(p);
      if (c === Ch.Quote) {
        this.pos = p + 1;
        return out + s.slice(run, p);
      }
      if (c < 0x20) this.fail('invalid', 'unescaped control character in a string', p);
      if (c !== Ch.Backslash) {
        p++;
        continue;
      }
      out += s.slice(run, p);
      if (p + 1 >= this.len) this.fail('truncated', 'unterminated escape in a string', p);
      const e = s.charCodeAt(p + 1);
      switch (e) {
        case 0x22: out += '"'; break;
        case 0x5c: out += '\\'; break;
        case 0x2f: out += '/'; break;
        case 0x62: out += '\b'; break;
        case 0x66: out += '\f'; break;
        case 0x6e: out += '\n'; break;
        case 0x72: out += '\r'; break;
        case 0x74: out += '\t'; break;
        case 0x75: {
          const code = this.hex4(p);
          if (code >= 0xd800 && code <= 0xdfff) {
            // A surrogate must come as a high-low pair of escapes; alone it is no character.
            const low = code <= 0xdbff && s.charCodeAt(p + 6) === Ch.Backslash && s.charCodeAt(p + 7) === 0x75 ? this.hex4(p + 6) : -1;
            if (low < 0xdc00 || low > 0xdfff) this.fail('invalid', 'lone surrogate in a \\u escape', p);
            out += String.fromCharCode(code, low);
            p += 6;
          } else out += String.fromCharCode(code);
          p += 4;
          break;
        }
        default:
          this.fail('invalid', `bad escape "\\${s.charAt(p + 1)}" in a string`, p);
      }
      p += 2;
      run = p;
    }
  }

  /** The code unit of the `\uXXXX` escape at `at`. */
  private hex4(at: number): number {
    let code = 0;
    for (let k = at + 2; k < at + 6; k++) {
      if (k >= this.len) this.fail('truncated', 'unterminated \\u escape in a string', at);
      const h = hexDigit(this.text.charCodeAt(k));
      if (h < 0) this.fail('invalid', 'bad \\u escape in a string (needs 4 hex digits)', at);
      code = (code << 4) | h;
    }
    return code;
  }

  /**
   * Reads a number (after whitespace). Integer literals are exact: a number while safe, a bigint
   * beyond (up to 15 digits accumulate in a double, which is exact; longer go through BigInt).
   * A fraction or exponent gives a double and sets `fraction`; one that overflows is refused.
   */
  number(): Int {
    if (!isNumberStart(this.text.charCodeAt(this.pos)) && !isNumberStart(this.peek())) this.unexpected('a number');
    const s = this.text;
    const start = this.pos;
    let p = start;
    const neg = s.charCodeAt(p) === Ch.Minus;
    if (neg) p++;
    const intStart = p;
    let c = s.charCodeAt(p);
    let acc = 0;
    if (c === Ch.Zero) {
      c = s.charCodeAt(++p);
      if (isDigit(c)) this.fail('invalid', 'number with a leading zero', start);
    } else if (c >= Ch.One && c <= Ch.Nine) {
      do {
        acc = acc * 10 + (c - Ch.Zero);
        c = s.charCodeAt(++p);
      } while (c >= Ch.Zero && c <= Ch.Nine);
    } else {
      this.pos = p;
      this.unexpected('a digit');
    }
    const intDigits = p - intStart;
    let fraction = false;
    if (c === Ch.Dot) {
      if (!isDigit(s.charCodeAt(++p))) {
        this.pos = p;
        this.unexpected('a digit after the decimal point');
      }
      do c = s.charCodeAt(++p);
      while (isDigit(c));
      fraction = true;
    }
    if (c === Ch.LowerE || c === Ch.UpperE) {
      c = s.charCodeAt(++p);
      if (c === Ch.Plus || c === Ch.Minus) c = s.charCodeAt(++p);
      if (!isDigit(c)) {
        this.pos = p;
        this.unexpected('a digit in the exponent');
      }
      do c = s.charCodeAt(++p);
      while (isDigit(c));
      fraction = true;
    }
    this.pos = p;
    this.fraction = fraction;
    if (fraction) {
      const x = Number(s.slice(start, p));
      if (!Number.isFinite(x)) this.fail('out_of_range', 'number is too large for a double', start);
      return x;
    }
    if (intDigits <= 15) return neg ? (acc === 0 ? 0 : -acc) : acc;
    if (intDigits > MAX_INT_DIGITS) this.fail('out_of_range', `integer with ${intDigits} digits`, start);
    return normInt(BigInt(s.slice(start, p)));
  }

  /** Reads `true` or `false` (after whitespace); undefined (cursor on the value) for anything else. */
  boolean(): boolean | undefined {
    const c = this.peek();
    const s = this.text;
    const p = this.pos;
    if (c === Ch.LowerT && s.startsWith('true', p)) {
      this.pos = p + 4;
      return true;
    }
    if (c === Ch.LowerF && s.startsWith('false', p)) {
      this.pos = p + 5;
      return false;
    }
    return undefined;
  }

  /** Reads `null` (after whitespace); false (cursor on the value) for anything else. */
  null(): boolean {
    if (this.peek() !== Ch.LowerN || !this.text.startsWith('null', this.pos)) return false;
    this.pos += 4;
    return true;
  }

  /** Skips any value (a member the caller does not use), validating it all the same. */
  skip(): void {
    const c = this.peek();
    switch (c) {
      case Ch.Quote:
        this.string();
        return;
      case Ch.LBracket:
        if (this.open()) {
          do this.skip();
          while (this.more(Ch.RBracket));
        }
        return;
      case Ch.LBrace:
        if (this.open()) {
          do {
            this.key();
            this.skip();
          } while (this.more(Ch.RBrace));
        }
        return;
      default:
        if (isNumberStart(c)) this.number();
        else if (this.boolean() === undefined && !this.null()) this.unexpected('a JSON value');
    }
  }
}

// ---------------------------------------------------------------------------------------------
// A generic tree, for callers that want any JSON

/** A number as written: exact value, and whether the literal had a fraction or exponent. */
export class JsonNumber {
  constructor(
    readonly value: Int,
    readonly fraction: boolean,
  ) {}
}

/** An object with its members in document order, duplicates included (the caller decides). */
export class JsonObject {
  constructor(readonly members: ReadonlyArray<readonly [string, JsonValue]>) {}

  /** The value of the first member named `key`. */
  get(key: string): JsonValue | undefined {
    for (const [k, v] of this.members) if (k === key) return v;
    return undefined;
  }

  /** The first member name that occurs twice, if any. */
  duplicateKey(): string | undefined {
    const seen = new Set<string>();
    for (const [k] of this.members) {
      if (seen.has(k)) return k;
      seen.add(k);
    }
    return undefined;
  }
}

export type JsonValue = null | boolean | string | JsonNumber | JsonValue[] | JsonObject;

/** Reads the value at the cursor (after whitespace) as a tree. */
export function readJsonValue(r: JsonReader): JsonValue {
  const c = r.peek();
  switch (c) {
    case Ch.Quote:
      return r.string();
    case Ch.LBracket: {
      const out: JsonValue[] = [];
      if (r.open()) {
        do out.push(readJsonValue(r));
        while (r.more(Ch.RBracket));
      }
      return out;
    }
    case Ch.LBrace: {
      const members: Array<readonly [string, JsonValue]> = [];
      if (r.open()) {
        do members.push([r.key(), readJsonValue(r)]);
        while (r.more(Ch.RBrace));
      }
      return new JsonObject(members);
    }
    default: {
      if (isNumberStart(c)) {
        const value = r.number();
        return new JsonNumber(value, r.fraction);
      }
      const b = r.boolean();
      if (b !== undefined) return b;
      if (r.null()) return null;
      return r.unexpected('a JSON value');
    }
  }
}

/** Parses a whole UTF-8 JSON document into a tree; errors are CodecErrors of `format`. */
export function parseJson(format: string, payload: Uint8Array, maxDepth?: number): JsonValue {
  const r: JsonReader = JsonReader.fromBytes(format, payload, maxDepth);
  if (r.peek() === -1) r.fail('truncated', 'empty payload');
  const v = readJsonValue(r);
  r.end();
  return v;
}

// ---------------------------------------------------------------------------------------------
// Writing

/**
 * A finite double as JSON text that reads back as a float: `2` → `2.0`, `-0` → `-0.0`. String()
 * gives bare digits only for integral values below 1e21 (exponent notation from there and below
 * 1e-6 already reads as a float). The caller refuses non-finite values in its own words.
 */
export function jsonFloat(x: number): string {
  if (Object.is(x, -0)) return '-0.0';
  const t = String(x);
  return Number.isInteger(x) && x < 1e21 && x > -1e21 ? t + '.0' : t;
}

/** A string as a JSON string literal. Lone surrogates come out as `\uD800` escapes, which this
 * reader refuses: such strings have no UTF-8 form either. */
export function jsonString(s: string): string {
  return JSON.stringify(s);
}
