/**
 * The format-neutral half of SenML (RFC 8428) as LwM2M uses it, shared by SenML JSON (110) and
 * SenML CBOR (112): the raw record the two parsers fill, name and time resolution, typing values
 * with the object model, and the plan of records the encoders emit.
 *
 * Encoding choices (see also formats.md §5):
 * - `encode(path, node)`: the first record carries `bn` = the request path, with a trailing slash
 *   when the records have relative names (`{"bn":"/3/0/","n":"0",...}`, `{"bn":"/3/0/6/","n":"0"}`),
 *   and without one when the request path is itself the only value (`[{"bn":"/3/0/9","v":100}]`,
 *   what Leshan emits). Later records carry only the relative `n`.
 * - `encodeRecords(records)` (Write-Composite, Bootstrap-Pack, Send): no `bn`, an absolute `n` on
 *   every record, exactly the form of the spec's composite examples; it is the form every SenML
 *   decoder handles, since it needs no base-name state. A record's `time` becomes `t`.
 * - Read-Composite request bodies: one record per path, absolute `n`, no value.
 *
 * Decoding is lenient where clients differ (`bn`/`n` with or without slashes around them, `vs`
 * for an object link as early Leshan wrote it, any base64 alphabet in JSON `vd`, the base value
 * `bv` applied to `v`) and strict about the shape: exactly one value field per record, a name
 * that resolves to a resource or resource instance, no must-understand (`..._`) fields.
 */
import { CodecError } from '../errors.js';
import type { CompositeCodec } from '../codec.js';
import type { ModelLookup } from '../model.js';
import { checkNodeAtPath, type LeafRecord, type LwM2MNode, type Resource } from '../node.js';
import { isValidId, MAX_ID, type Path } from '../path.js';
import { fromBase64Any } from '../base64.js';
import { INT64_MAX, INT64_MIN, type Int, normInt, tryParseObjlnk, UINT64_MAX, V, type Value, type ValueType } from '../value.js';
import { intValue, modelType, typeMismatch } from './common.js';

/** A SenML codec: a composite codec that also writes and reads Read-Composite request bodies. */
export interface SenmlCodec extends CompositeCodec {
  /** A Read-/Observe-Composite request body naming `paths` (absolute names, no values). */
  encodePaths(paths: readonly Path[]): Uint8Array;
  /** The paths a Read-/Observe-Composite request body names (`/` gives the empty path). */
  decodePaths(payload: Uint8Array): Path[];
}

// ---------------------------------------------------------------------------------------------
// The raw record

/**
 * One SenML record as a parser read it, before resolution. Fields are absent when the record
 * does not carry them. `v` keeps integers exact (bigint beyond 2^53); `vFloat` says whether the
 * wire form was a float (JSON fraction/exponent, CBOR major type 7), which decides the type when
 * there is no model. `vd` is base64 text from JSON or bytes from CBOR.
 */
export interface SenmlRecord {
  bn?: string;
  bt?: number;
  bv?: Int;
  bvFloat?: boolean;
  n?: string;
  t?: number;
  v?: Int;
  vFloat?: boolean;
  vs?: string;
  vb?: boolean;
  vd?: string | Uint8Array;
  vlo?: string;
}

/** How many of the value fields (`v`, `vs`, `vb`, `vd`, `vlo`) a record carries. */
export function valueFieldCount(r: SenmlRecord): number {
  return (
    (r.v !== undefined ? 1 : 0) +
    (r.vs !== undefined ? 1 : 0) +
    (r.vb !== undefined ? 1 : 0) +
    (r.vd !== undefined ? 1 : 0) +
    (r.vlo !== undefined ? 1 : 0)
  );
}

/** SenML marks fields a parser must understand with a trailing underscore (RFC 8428 §4.4). */
export function isMustUnderstand(key: string): boolean {
  return key.length > 0 && key.charCodeAt(key.length - 1) === 0x5f;
}

/** Deepest nesting the parsers accept: SenML needs 2 (pack → record); unknown fields get some room. */
/**
 * One bit per SenML field a record may carry, used by both readers to refuse a field given twice
 * in one record (duplicate JSON keys, or the same CBOR label twice).
 */
export const SenmlField = { bn: 1, bt: 2, bv: 4, n: 8, t: 16, v: 32, vs: 64, vb: 128, vd: 256, vlo: 512 } as const;

export const SENML_MAX_DEPTH = 16;

// ---------------------------------------------------------------------------------------------
// Name resolution

/**
 * Parses a resolved SenML name into a path. Lenient about what clients do around the edges
 * (missing leading slash, trailing slash, surrounding whitespace), strict about the IDs.
 * Hand-written (no regex, no split) because it runs once per record.
 */
export function parseSenmlName(format: string, name: string, index: number): Path {
  let start = 0;
  let end = name.length;
  while (start < end && isSpace(name.charCodeAt(start))) start++;
  while (end > start && isSpace(name.charCodeAt(end - 1))) end--;
  if (start === end) throw new CodecError(format, 'bad_path', `record ${index}: empty name (no bn and no n)`);
  if (name.charCodeAt(start) === 0x2f) start++;
  if (end > start && name.charCodeAt(end - 1) === 0x2f) end--;
  const out: number[] = [];
  if (start === end) return out; // "/" — the root, only meaningful in Read-Composite requests
  let id = 0;
  let digits = 0;
  let bad = false;
  // A virtual "/" after the last character closes the last segment.
  for (let i = start; i <= end; i++) {
    const c = i < end ? name.charCodeAt(i) : 0x2f;
    if (c === 0x2f) {
      if (digits === 0 || out.length === 4) {
        bad = true; // empty segment or a fifth ID
        break;
      }
      out.push(id);
      id = 0;
      digits = 0;
      continue;
    }
    // not a digit, a leading zero, or beyond the largest ID (also bounds `id` for long input)
    if (c < 0x30 || c > 0x39 || (digits === 1 && id === 0)) {
      bad = true;
      break;
    }
    id = id * 10 + (c - 0x30);
    digits++;
    if (id > MAX_ID) {
      bad = true;
      break;
    }
  }
  if (bad) throw new CodecError(format, 'bad_path', `record ${index}: name ${JSON.stringify(name.length > 60 ? name.slice(0, 60) + '…' : name)} is not an LwM2M path`);
  return out;
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}

/** Formats a path with a trailing slash unless it is the root. */
function pathText(path: Path): string {
  return path.length === 0 ? '/' : '/' + path.join('/');
}

// ---------------------------------------------------------------------------------------------
// Decoding: resolution and typing

/** Base fields stay in force from the record that sets them to the next one that changes them. */
class BaseState {
  bn = '';
  bt: number | undefined;
  bv: Int | undefined;
  bvFloat = false;

  apply(r: SenmlRecord): void {
    if (r.bn !== undefined) this.bn = r.bn;
    if (r.bt !== undefined) this.bt = r.bt;
    if (r.bv !== undefined) {
      this.bv = r.bv;
      this.bvFloat = r.bvFloat === true;
    }
  }

  name(r: SenmlRecord): string {
    return r.n === undefined ? this.bn : this.bn + r.n;
  }
}

/**
 * Resolves a pack into leaf records: names via `bn`+`n`, time via `bt`+`t`, values typed with
 * the model. A path may appear several times only with different times (historical data).
 * The time is kept as resolved: RFC 8428 reads values below 2^28 as relative to "now", which a
 * pure codec does not know, so callers that need absolute times add the reception time.
 */
export function resolveLeafRecords(format: string, records: readonly SenmlRecord[], models?: ModelLookup): LeafRecord[] {
  const base = new BaseState();
  const out: LeafRecord[] = new Array<LeafRecord>(records.length);
  let dups: DuplicateTracker | undefined;
  for (let i = 0; i < records.length; i++) {
    const r = records[i] as SenmlRecord;
    base.apply(r);
    const path = parseSenmlName(format, base.name(r), i);
    if (path.length < 3) {
      throw new CodecError(format, 'bad_path', `record ${i}: a value must sit at a resource or resource instance`, undefined, pathText(path));
    }
    const count = valueFieldCount(r);
    if (count !== 1) {
      throw new CodecError(format, 'invalid', `record ${i}: ${count === 0 ? 'no value field' : `${count} value fields`} (exactly one of v, vs, vb, vd, vlo)`, undefined, pathText(path));
    }
    const value = typeValue(format, r, base, path, models);
    let time: number | undefined;
    if (base.bt !== undefined || r.t !== undefined) {
      time = (base.bt ?? 0) + (r.t ?? 0);
      if (!Number.isFinite(time)) throw new CodecError(format, 'out_of_range', `record ${i}: time is not finite`, undefined, pathText(path));
    }
    if (records.length > 1 && (dups ??= new DuplicateTracker()).seen(path, time)) {
      throw new CodecError(format, 'duplicate', `record ${i}: the same path${time === undefined ? '' : ' and time'} given twice`, undefined, pathText(path));
    }
    out[i] = time === undefined ? { path, value } : { path, value, time };
  }
  return out;
}

/**
 * Remembers the (path, time) pairs of a pack. Numeric keys for the common case: `/o/i/r` fits in
 * 48 bits; a resource instance adds a per-resource set; timed records (historical data, rare)
 * use text keys. Avoids building a path string per record.
 */
class DuplicateTracker {
  private readonly leaves = new Set<number>();
  private readonly instances = new Map<number, Set<number>>();
  private timed: Set<string> | undefined;

  /** True when this pair was seen before; records it otherwise. */
  seen(path: Path, time: number | undefined): boolean {
    const key = ((path[0] as number) * 0x10000 + (path[1] as number)) * 0x10000 + (path[2] as number);
    if (time !== undefined) {
      const t = `${key}/${path.length === 4 ? (path[3] as number) : ''}@${time}`;
      this.timed ??= new Set();
      if (this.timed.has(t)) return true;
      this.timed.add(t);
      return false;
    }
    if (path.length === 3) {
      if (this.leaves.has(key)) return true;
      this.leaves.add(key);
      return false;
    }
    let set = this.instances.get(key);
    if (!set) this.instances.set(key, (set = new Set()));
    const ri = path[3] as number;
    if (set.has(ri)) return true;
    set.add(ri);
    return false;
  }
}

/** Resolves a Read-/Observe-Composite request body: names only, any level from `/` down. */
export function resolvePaths(format: string, records: readonly SenmlRecord[]): Path[] {
  const base = new BaseState();
  const out: Path[] = new Array<Path>(records.length);
  for (let i = 0; i < records.length; i++) {
    const r = records[i] as SenmlRecord;
    base.apply(r);
    const path = parseSenmlName(format, base.name(r), i);
    if (valueFieldCount(r) !== 0) {
      throw new CodecError(format, 'invalid', `record ${i}: a composite request names paths and carries no value`, undefined, pathText(path));
    }
    out[i] = path;
  }
  return out;
}

/** The typed value of a record that has exactly one value field. */
function typeValue(format: string, r: SenmlRecord, base: BaseState, path: Path, models: ModelLookup | undefined): Value {
  const type = modelType(models, path);
  if (r.v !== undefined) {
    let n: Int = r.v;
    let isFloat = r.vFloat === true;
    if (base.bv !== undefined) {
      isFloat ||= base.bvFloat;
      n = addNumbers(base.bv, n, isFloat);
    }
    return numericValue(format, type, n, isFloat, path);
  }
  if (r.vs !== undefined) {
    switch (type) {
      case undefined:
      case 'string':
        return V.string(r.vs);
      case 'corelnk':
        return V.corelnk(r.vs);
      case 'objlnk':
        // Early Leshan 1.1 code wrote object links as `vs`; the model tells us what it means.
        return objlnkValue(format, r.vs, path);
      default:
        throw typeMismatch(format, type, 'a string (vs)', path);
    }
  }
  if (r.vb !== undefined) {
    if (type !== undefined && type !== 'boolean') throw typeMismatch(format, type, 'a boolean (vb)', path);
    return V.boolean(r.vb);
  }
  if (r.vd !== undefined) {
    if (type !== undefined && type !== 'opaque') throw typeMismatch(format, type, 'opaque data (vd)', path);
    return V.opaque(typeof r.vd === 'string' ? fromBase64Any(r.vd, format, pathText(path)) : r.vd);
  }
  const lo = r.vlo as string;
  if (type !== undefined && type !== 'objlnk') throw typeMismatch(format, type, 'an object link (vlo)', path);
  return objlnkValue(format, lo, path);
}

/** `bv + v`, exact for integers, in doubles once either side is a float. */
function addNumbers(a: Int, b: Int, isFloat: boolean): Int {
  if (isFloat) return Number(a) + Number(b);
  if (typeof a === 'number' && typeof b === 'number') {
    const s = a + b;
    if (Number.isSafeInteger(s)) return s;
  }
  return normInt(BigInt(a) + BigInt(b));
}

/**
 * A `v` number as a value. With a model: its numeric type (integers must be integral and in
 * range; a float resource takes any number). Without one: a float when the wire said float, an
 * integer in the int64 range, unsigned up to 2^64-1, a float beyond that.
 */
function numericValue(format: string, type: ValueType | undefined, n: Int, isFloat: boolean, path: Path): Value {
  switch (type) {
    case undefined: {
      if (isFloat) return V.float(Number(n));
      if (typeof n === 'number') return { type: 'integer', value: n + 0 }; // parsers give safe integers here
      if (n <= INT64_MAX && n >= INT64_MIN) return V.integer(n);
      if (n > 0n && n <= UINT64_MAX) return V.unsigned(n);
      return V.float(Number(n));
    }
    case 'float':
      return V.float(Number(n));
    case 'integer':
    case 'unsigned':
    case 'time':
      // Fast path for the common case: a safe integer is within int64, so no BigInt range check.
      if (typeof n === 'number' && Number.isSafeInteger(n) && (type !== 'unsigned' || n >= 0)) {
        return { type, value: n + 0 }; // `+ 0` turns -0 into 0
      }
      if (typeof n === 'number' && !Number.isFinite(n)) {
        throw new CodecError(format, 'out_of_range', `${type} value ${n} is not finite`, undefined, pathText(path));
      }
      return intValue(format, type, n, path);
    default:
      throw typeMismatch(format, type, 'a number (v)', path);
  }
}

function objlnkValue(format: string, text: string, path: Path): Value {
  const l = tryParseObjlnk(text);
  if (l === undefined) {
    throw new CodecError(format, 'invalid', `object link ${JSON.stringify(text.length > 40 ? text.slice(0, 40) + '…' : text)} is not "objectId:instanceId"`, undefined, pathText(path));
  }
  return { type: 'objlnk', value: l };
}

// ---------------------------------------------------------------------------------------------
// Encoding: the record plan

/** Receives the records an encoder must write, in order. `bn`/`n`/`time` undefined = omit. */
export interface SenmlSink {
  record(bn: string | undefined, n: string | undefined, value: Value, time: number | undefined): void;
}

function checkId(format: string, id: number, what: string): void {
  if (!isValidId(id)) throw new CodecError(format, 'bad_path', `${what} ID ${id} is not an integer in 0..${MAX_ID}`);
}

/** Number of records `planNode` will emit for `node` (CBOR needs the array length up front). */
export function countNodeRecords(node: LwM2MNode): number {
  switch (node.kind) {
    case 'resource':
    case 'resourceInstance':
      return 1;
    case 'multiResource':
      return node.instances.size;
    case 'instance': {
      let n = 0;
      for (const r of node.resources.values()) n += r.kind === 'resource' ? 1 : r.instances.size;
      return n;
    }
    case 'object': {
      let n = 0;
      for (const inst of node.instances.values()) n += countNodeRecords(inst);
      return n;
    }
  }
}

/**
 * Emits the records of `node` found at `path`: `bn` = the request path on the first record
 * (trailing slash when names follow), relative `n` on every record below the request path.
 */
export function planNode(format: string, path: Path, node: LwM2MNode, sink: SenmlSink): void {
  checkNodeAtPath(format, path, node);
  for (const id of path) checkId(format, id, 'path');
  const prefix = pathText(path);
  let first = true;
  const emit = (n: string | undefined, value: Value): void => {
    const bn = first ? (n === undefined ? prefix : prefix + '/') : undefined;
    first = false;
    sink.record(bn, n, value, undefined);
  };
  const resource = (r: Resource, rel: string | undefined): void => {
    checkId(format, r.id, 'resource');
    const name = rel === undefined ? String(r.id) : `${rel}/${r.id}`;
    if (r.kind === 'resource') {
      emit(name, r.value);
      return;
    }
    for (const [ri, v] of r.instances) {
      checkId(format, ri, 'resource instance');
      emit(`${name}/${ri}`, v);
    }
  };
  switch (node.kind) {
    case 'resourceInstance':
    case 'resource':
      emit(undefined, node.value);
      return;
    case 'multiResource':
      for (const [ri, v] of node.instances) {
        checkId(format, ri, 'resource instance');
        emit(String(ri), v);
      }
      return;
    case 'instance':
      for (const r of node.resources.values()) resource(r, undefined);
      return;
    case 'object':
      for (const inst of node.instances.values()) {
        checkId(format, inst.id, 'instance');
        const rel = String(inst.id);
        for (const r of inst.resources.values()) resource(r, rel);
      }
      return;
  }
}

/** Emits leaf records of any objects with absolute names and no `bn`; `time` becomes `t`. */
export function planRecords(format: string, records: readonly LeafRecord[], sink: SenmlSink): void {
  for (const rec of records) {
    const p = rec.path;
    if (p.length < 3 || p.length > 4) {
      throw new CodecError(format, 'bad_path', 'a value must sit at a resource or resource instance', undefined, pathText(p));
    }
    for (const id of p) checkId(format, id, 'path');
    sink.record(undefined, pathText(p), rec.value, rec.time);
  }
}

/** Absolute names for a Read-/Observe-Composite request body, validated. */
export function pathNames(format: string, paths: readonly Path[]): string[] {
  return paths.map((p) => {
    if (p.length > 4) throw new CodecError(format, 'bad_path', `a path has at most 4 IDs, got ${p.length}`);
    for (const id of p) checkId(format, id, 'path');
    return pathText(p);
  });
}
