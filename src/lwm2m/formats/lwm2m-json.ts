/**
 * LwM2M JSON 1.0 (`application/vnd.oma.lwm2m+json`, Content-Format 11543, and the pre-IANA 1543):
 * one JSON object `{"bn":"/3/0/","bt":…,"e":[{"n":"0","sv":"…"},…]}`, built on an early SenML
 * draft. 1.1+ clients must not use it, but servers must still read it from 1.0 clients.
 *
 * Encoding choices (formats.md §7):
 * - `bn` is the path the entries hang under, always with a trailing slash, and every entry has a
 *   relative `n`: an object `/3` → `bn "/3/"`, `n "0/6/1"`; an instance `/3/0` → `bn "/3/0/"`,
 *   `n "6/1"` (the spec's Read /3/0 example byte for byte); a multiple resource `/3/0/6` →
 *   `bn "/3/0/6/"`, `n "1"`.
 * - A single resource `/3/0/9` is written `bn "/3/0/"`, `n "9"`, and a resource instance
 *   `/3/0/6/1` as `bn "/3/0/6/"`, `n "1"`: the ID of the value itself is always in `n`. Wakaama
 *   (the usual 1.0 client stack with JSON) writes this form and its parser reads `n` as IDs below
 *   the `bn` URI, so a `bn "/3/0/9"` without `n` (Leshan's encoding) would not land on resource 9
 *   there; Leshan's decoder simply concatenates `bn` + `n`, so it reads this form too.
 * - Numbers in `v` (integers exact, bigints included; floats as JS shortest round-trip text with a
 *   `.0` added to integral floats so they still read as floats without a model), booleans in
 *   `bv`, strings and core links in `sv`, opaque as standard base64 with padding in `sv` (what
 *   Leshan and Wakaama write), object links in `ov` as the spec says (Leshan writes `sv`).
 *
 * Decoding is lenient where implementations differ and strict on structure:
 * - members may come in any order (`bn` after `e`), unknown members are skipped;
 * - names resolve as `bn` + `n` with one `/` between them whether either side has it or not
 *   (`"/3/0/"`+`"9"`, `"/3/0/9"` alone, `"/3/0/6"`+`"0"` as Wakaama reads it); without `bn`, an
 *   `n` starting with `/` is absolute and any other `n` is relative to the request path;
 * - object links in `ov`, or in `sv` for a resource the model types Objlnk (Leshan);
 * - opaque in `sv` as base64 of either alphabet, padded or not;
 * - without a model, types come from the field: `sv` string, `bv` boolean, `ov` objlnk, `v`
 *   integer when the literal has no fraction or exponent (unsigned beyond 2^63-1), else float —
 *   the literal, not the value, decides, so `1.0` stays a float;
 * - a time (`bt` + `t`) goes to `LeafRecord.time`; when a payload carries the same resource at
 *   several times (a historical notification) the node keeps the most recent value, as Leshan does.
 *
 * The document is pulled with the shared exact JSON reader (../json.ts): `JSON.parse` rounds
 * integers beyond 2^53, and reading the fixed shape directly gives errors that say which entry
 * and which member is wrong.
 */
import { fromBase64Any, toBase64 } from '../base64.js';
import type { NodeCodec } from '../codec.js';
import { CodecError } from '../errors.js';
import { isDigit, isNumberStart, jsonFloat, jsonString, JsonReader } from '../json.js';
import type { ModelLookup } from '../model.js';
import { checkNodeAtPath, type LeafRecord, type LwM2MNode, nodeToRecords, recordsToNode, type ResourceModelLookup } from '../node.js';
import { formatPath, MAX_ID, type Path } from '../path.js';
import { formatObjlnk, INT64_MAX, INT64_MIN, normInt, parseObjlnk, UINT64_MAX, V, type Value, type ValueType } from '../value.js';
import { intValue, modelType, numberValue, typeMismatch } from './common.js';

const MEDIA_TYPE = 'application/vnd.oma.lwm2m+json';

/** LwM2M JSON codec; besides the node API it reads and writes flat records (linked instances). */
export interface Lwm2mJsonCodec extends NodeCodec {
  readonly composite: false;
  /**
   * Writes records of any objects with `bn "/"` and absolute-but-slashless names
   * (`"65/0/0/0"`), the form of the spec's linked-instance example; `time` becomes `t`.
   */
  encodeRecords(records: readonly LeafRecord[]): Uint8Array;
  /**
   * Reads every entry as a record, without requiring them to lie under `path` (linked-instance
   * responses carry other objects). `path` is the base for names when there is no `bn`.
   */
  decodeRecords(payload: Uint8Array, models?: ModelLookup, path?: Path): LeafRecord[];
}

// ---------------------------------------------------------------------------------------------
// Encoding

const utf8Encoder = new TextEncoder();

function encodeNode(format: string, path: Path, node: LwM2MNode): Uint8Array {
  checkNodeAtPath(format, path, node);
  // The value's own ID goes into `n`; every container level goes into `bn`.
  const base = node.kind === 'resource' || node.kind === 'resourceInstance' ? path.slice(0, -1) : path;
  return utf8Encoder.encode(writeDocument(format, base, nodeToRecords(path, node)));
}

function encodeRecordList(format: string, records: readonly LeafRecord[]): Uint8Array {
  for (const rec of records) {
    if (rec.path.length < 3 || rec.path.length > 4) {
      throw new CodecError(format, 'bad_path', 'a value must sit at a resource or resource instance', undefined, formatPath(rec.path));
    }
  }
  return utf8Encoder.encode(writeDocument(format, [], records));
}

function writeDocument(format: string, base: Path, records: readonly LeafRecord[]): string {
  let out = '{"bn":"' + (base.length === 0 ? '/' : formatPath(base) + '/') + '","e":[';
  for (let k = 0; k < records.length; k++) {
    const rec = records[k] as LeafRecord;
    const p = rec.path;
    out += k === 0 ? '{"n":"' : ',{"n":"';
    for (let j = base.length; j < p.length; j++) out += j === base.length ? String(p[j]) : '/' + String(p[j]);
    out += '",' + valueMember(format, rec.value, p);
    if (rec.time !== undefined) out += ',"t":' + jsonNumber(format, rec.time, p);
    out += '}';
  }
  return out + ']}';
}

function valueMember(format: string, v: Value, path: Path): string {
  switch (v.type) {
    case 'string':
    case 'corelnk':
      return '"sv":' + jsonString(v.value);
    case 'integer':
    case 'unsigned':
    case 'time':
      return '"v":' + v.value.toString();
    case 'float':
      return '"v":' + floatText(format, v.value, path);
    case 'boolean':
      return v.value ? '"bv":true' : '"bv":false';
    case 'opaque':
      return '"sv":"' + toBase64(v.value) + '"';
    case 'objlnk':
      return '"ov":"' + formatObjlnk(v.value) + '"';
  }
}

/** A float as a JSON number that still reads as a float: `1` → `1.0`, `-0` → `-0.0`. */
function floatText(format: string, x: number, path: Path): string {
  if (!Number.isFinite(x)) {
    throw new CodecError(format, 'unsupported', `float ${x} has no JSON representation`, undefined, formatPath(path));
  }
  return jsonFloat(x);
}

function jsonNumber(format: string, x: number, path: Path): string {
  if (!Number.isFinite(x)) throw new CodecError(format, 'unsupported', `time ${x} has no JSON representation`, undefined, formatPath(path));
  return String(x);
}

// ---------------------------------------------------------------------------------------------
// Reading the JSON text

/** The value member of an entry as read, before the model gives it a type. */
type RawValue =
  | { readonly field: 'v'; readonly num: number | bigint; readonly literalFloat: boolean }
  | { readonly field: 'bv'; readonly bool: boolean }
  | { readonly field: 'sv' | 'ov'; readonly str: string };

interface RawEntry {
  readonly index: number;
  /** Character offset of the entry's `{`. */
  readonly at: number;
  readonly n: string | undefined;
  readonly t: number | undefined;
  readonly value: RawValue;
}

interface RawDocument {
  readonly bn: string | undefined;
  readonly bnAt: number;
  readonly bt: number | undefined;
  readonly entries: readonly RawEntry[];
}

/** Nesting allowed in the document (members we skip included); the parts we read use three. */
const MAX_DEPTH = 32;

const enum Ch {
  Quote = 0x22,
  Slash = 0x2f,
  Zero = 0x30,
  LBracket = 0x5b,
  RBracket = 0x5d,
  LBrace = 0x7b,
  RBrace = 0x7d,
  Bom = 0xfeff,
}

function readDocument(format: string, payload: Uint8Array): RawDocument {
  const r: JsonReader = JsonReader.fromBytes(format, payload, MAX_DEPTH); // typed: lets r.fail() narrow
  let c = r.peek();
  if (c === Ch.Bom) {
    // TextDecoder drops a leading BOM; one after whitespace (or a second one) carries nothing either.
    r.pos++;
    c = r.peek();
  }
  if (c !== Ch.LBrace) {
    if (c === -1) r.fail('truncated', 'empty payload');
    if (c === Ch.LBracket) r.fail('invalid', 'payload is a JSON array (SenML?); LwM2M JSON is an object {"bn":…,"e":[…]}');
    r.fail('invalid', `payload is not a JSON object (starts with ${r.describeHere()})`);
  }
  let bn: string | undefined;
  let bnAt = 0;
  let bt: number | undefined;
  let entries: RawEntry[] | undefined;
  if (r.open()) {
    do {
      const key = r.key();
      switch (key) {
        case 'bn':
          if (bn !== undefined) r.fail('duplicate', 'member "bn" given twice', r.keyAt);
          if (r.peek() !== Ch.Quote) r.fail('invalid', `"bn" must be a string, found ${r.describeHere()}`);
          bnAt = r.pos;
          bn = r.string();
          break;
        case 'bt':
          if (bt !== undefined) r.fail('duplicate', 'member "bt" given twice', r.keyAt);
          if (!isNumberStart(r.peek())) r.fail('invalid', `"bt" must be a number, found ${r.describeHere()}`);
          bt = Number(r.number());
          break;
        case 'e':
          if (entries !== undefined) r.fail('duplicate', 'member "e" given twice', r.keyAt);
          if (r.peek() !== Ch.LBracket) r.fail('invalid', `"e" must be an array, found ${r.describeHere()}`);
          entries = readEntries(r);
          break;
        default:
          // Members of later drafts (`bu`, `ver`, ...) carry nothing LwM2M uses.
          r.skip();
      }
    } while (r.more(Ch.RBrace));
  }
  r.end('the JSON object');
  if (entries === undefined) r.fail('invalid', 'missing member "e" (the entry array)', 0);
  return { bn, bnAt, bt, entries };
}

function readEntries(r: JsonReader): RawEntry[] {
  const out: RawEntry[] = [];
  if (!r.open()) return out;
  do {
    if (r.peek() !== Ch.LBrace) {
      if (r.atEnd()) r.unexpected(`entry e[${out.length}]`);
      r.fail('invalid', `entry e[${out.length}] is not an object (found ${r.describeHere()})`);
    }
    out.push(readEntry(r, out.length));
  } while (r.more(Ch.RBracket, 'in "e"'));
  return out;
}

function readEntry(r: JsonReader, index: number): RawEntry {
  const at = r.pos;
  const where = `e[${index}]`;
  let n: string | undefined;
  let t: number | undefined;
  let value: RawValue | undefined;
  let valueKey = '';
  if (r.open()) {
    do {
      const key = r.key(`a member name in ${where}`);
      const keyAt = r.keyAt;
      const c = r.peek();
      switch (key) {
        case 'n':
          if (n !== undefined) r.fail('duplicate', `${where}: member "n" given twice`, keyAt);
          if (c !== Ch.Quote) r.fail('invalid', `${where}: "n" must be a string, found ${r.describeHere()}`);
          n = r.string();
          break;
        case 't':
          if (t !== undefined) r.fail('duplicate', `${where}: member "t" given twice`, keyAt);
          if (!isNumberStart(c)) r.fail('invalid', `${where}: "t" must be a number, found ${r.describeHere()}`);
          t = Number(r.number());
          break;
        case 'v':
        case 'bv':
        case 'sv':
        case 'ov':
          if (value !== undefined) {
            const detail = valueKey === key ? `member "${key}" given twice` : `two value members ("${valueKey}" and "${key}")`;
            r.fail(valueKey === key ? 'duplicate' : 'invalid', `${where}: ${detail}`, keyAt);
          }
          valueKey = key;
          value = readValueMember(r, key, where, c);
          break;
        default:
          r.skip();
      }
    } while (r.more(Ch.RBrace, `in ${where}`));
  }
  if (value === undefined) r.fail('invalid', `${where} has no value member ("v", "bv", "sv" or "ov")`, at);
  return { index, at, n, t, value };
}

function readValueMember(r: JsonReader, key: 'v' | 'bv' | 'sv' | 'ov', where: string, c: number): RawValue {
  switch (key) {
    case 'v': {
      if (!isNumberStart(c)) r.fail('invalid', `${where}: "v" must be a number, found ${r.describeHere()}`);
      const num = r.number();
      return { field: 'v', num, literalFloat: r.fraction };
    }
    case 'bv': {
      const bool = r.boolean();
      if (bool === undefined) r.fail('invalid', `${where}: "bv" must be true or false, found ${r.describeHere()}`);
      return { field: 'bv', bool };
    }
    case 'sv':
    case 'ov':
      if (c !== Ch.Quote) r.fail('invalid', `${where}: "${key}" must be a string, found ${r.describeHere()}`);
      return { field: key, str: r.string() };
  }
}

// ---------------------------------------------------------------------------------------------
// From entries to records

/**
 * Appends the IDs of a `bn` or `n` text to `out`. One leading and one trailing slash are
 * optional; IDs are decimal without sign or leading zeros, 0..65534.
 */
function appendIds(format: string, text: string, out: number[], what: string, at: number): void {
  let p = 0;
  let end = text.length;
  if (p < end && text.charCodeAt(p) === Ch.Slash) p++;
  if (end > p && text.charCodeAt(end - 1) === Ch.Slash) end--;
  if (p >= end) return;
  let id = 0;
  let digits = 0;
  const bad = (why: string): never => {
    throw new CodecError(format, 'bad_path', `${what} ${JSON.stringify(text.length > 40 ? text.slice(0, 40) + '…' : text)}: ${why}`, at);
  };
  for (let i = p; i <= end; i++) {
    const c = i < end ? text.charCodeAt(i) : Ch.Slash;
    if (c === Ch.Slash) {
      if (digits === 0) bad('empty path segment');
      if (out.length === 4) bad('more than 4 path levels');
      out.push(id);
      id = 0;
      digits = 0;
    } else if (isDigit(c)) {
      if (digits === 1 && id === 0) bad('ID with a leading zero');
      id = id * 10 + (c - Ch.Zero);
      digits++;
      if (id > MAX_ID) bad(`ID exceeds ${MAX_ID}`);
    } else bad('not a path of decimal IDs');
  }
}

/** The path an entry names: `bn` + `n`, or the request path + `n` when there is no `bn`. */
function resolvePath(format: string, base: readonly number[], hasBn: boolean, e: RawEntry): Path {
  const ids = hasBn || e.n === undefined || e.n.charCodeAt(0) !== Ch.Slash ? base.slice() : [];
  if (e.n !== undefined) appendIds(format, e.n, ids, `e[${e.index}]: name`, e.at);
  if (ids.length < 3) {
    throw new CodecError(format, 'bad_path', `e[${e.index}] names ${formatPath(ids)}, not a resource or resource instance`, e.at, formatPath(ids));
  }
  return ids;
}

function objlnkValue(format: string, text: string, path: Path): Value {
  return { type: 'objlnk', value: parseObjlnk(text, format, formatPath(path)) };
}

/** Integer literal without a model: Integer while it fits int64, Unsigned up to 2^64-1. */
function inferInteger(format: string, n: number | bigint, path: Path): Value {
  if (typeof n === 'number' && Number.isSafeInteger(n)) return V.integer(n);
  const b = typeof n === 'bigint' ? n : BigInt(n);
  if (b >= INT64_MIN && b <= INT64_MAX) return V.integer(normInt(b));
  if (b > INT64_MAX && b <= UINT64_MAX) return V.unsigned(normInt(b));
  return intValue(format, 'integer', b, path); // throws out_of_range
}

function entryValue(format: string, raw: RawValue, type: ValueType | undefined, path: Path): Value {
  switch (raw.field) {
    case 'v': {
      const n = raw.num;
      if (typeof n === 'number' && !Number.isFinite(n)) {
        throw new CodecError(format, 'out_of_range', 'number overflows a double', undefined, formatPath(path));
      }
      if (type !== undefined) return numberValue(format, type, n, path);
      return raw.literalFloat ? V.float(Number(n)) : inferInteger(format, n, path);
    }
    case 'bv':
      if (type === undefined || type === 'boolean') return V.boolean(raw.bool);
      throw typeMismatch(format, type, 'a boolean ("bv")', path);
    case 'ov':
      if (type === undefined || type === 'objlnk') return objlnkValue(format, raw.str, path);
      throw typeMismatch(format, type, 'an object link ("ov")', path);
    case 'sv':
      switch (type) {
        case undefined:
        case 'string':
          return V.string(raw.str);
        case 'corelnk':
          return V.corelnk(raw.str);
        case 'opaque':
          return V.opaque(fromBase64Any(raw.str, format, formatPath(path)));
        case 'objlnk':
          return objlnkValue(format, raw.str, path); // Leshan writes links as strings
        default:
          throw typeMismatch(format, type, 'a string ("sv")', path);
      }
  }
}

function decodeRecordList(format: string, payload: Uint8Array, models: ModelLookup | undefined, path: Path): LeafRecord[] {
  const doc = readDocument(format, payload);
  const hasBn = doc.bn !== undefined;
  const base: number[] = [];
  if (doc.bn !== undefined) appendIds(format, doc.bn, base, 'base name "bn"', doc.bnAt);
  else base.push(...path);
  const out: LeafRecord[] = [];
  for (const e of doc.entries) {
    const p = resolvePath(format, base, hasBn, e);
    const value = entryValue(format, e.value, modelType(models, p), p);
    if (doc.bt === undefined && e.t === undefined) out.push({ path: p, value });
    else out.push({ path: p, value, time: (doc.bt ?? 0) + (e.t ?? 0) });
  }
  return out;
}

/** "No time" means "now", later than any stated time. */
function isLater(a: number | undefined, b: number | undefined): boolean {
  return (a ?? Infinity) > (b ?? Infinity);
}

/**
 * For a payload with times, keeps one record per path: the most recent. The same path twice at
 * the same time is still a duplicate.
 */
function keepLatest(format: string, records: readonly LeafRecord[]): readonly LeafRecord[] {
  if (!records.some((r) => r.time !== undefined)) return records;
  const slot = new Map<string, number>();
  const out: LeafRecord[] = [];
  for (const rec of records) {
    const key = rec.path.join('/');
    const k = slot.get(key);
    if (k === undefined) {
      slot.set(key, out.length);
      out.push(rec);
      continue;
    }
    const prev = out[k] as LeafRecord;
    if ((prev.time ?? Infinity) === (rec.time ?? Infinity)) {
      throw new CodecError(format, 'duplicate', 'value given twice for the same time', undefined, formatPath(rec.path));
    }
    if (isLater(rec.time, prev.time)) out[k] = rec;
  }
  return out;
}

function decodeNode(format: string, path: Path, payload: Uint8Array, models: ModelLookup | undefined): LwM2MNode {
  const records = keepLatest(format, decodeRecordList(format, payload, models, path));
  const lookup: ResourceModelLookup | undefined = models ? (o, r) => models.resource(o, r) : undefined;
  return recordsToNode(format, path, records, lookup);
}

function makeCodec(contentFormat: number, name: string): Lwm2mJsonCodec {
  return {
    contentFormat,
    name,
    mediaType: MEDIA_TYPE,
    composite: false,
    encode: (path, node) => encodeNode(name, path, node),
    decode: (path, payload, models) => decodeNode(name, path, payload, models),
    encodeRecords: (records) => encodeRecordList(name, records),
    decodeRecords: (payload, models, path = []) => decodeRecordList(name, payload, models, path),
  };
}

/** Content-Format 11543, as registered with IANA. */
export const lwm2mJsonCodec: Lwm2mJsonCodec = makeCodec(11543, 'lwm2m-json');

/** Content-Format 1543, the pre-IANA number very early 1.0 clients use; same format. */
export const lwm2mJsonLegacyCodec: Lwm2mJsonCodec = makeCodec(1543, 'lwm2m-json-legacy');
