/**
 * SenML JSON (`application/senml+json`, Content-Format 110) as LwM2M uses it (formats.md §5).
 *
 * The decoder pulls the pack (an array of flat objects) straight into SenML records with the
 * shared exact JSON reader (../json.ts): Integer and Unsigned Integer resources go up to 2^64-1,
 * which `JSON.parse` would round, and reading the fixed shape directly spares an intermediate
 * tree and gives errors that name the record and field. Unknown fields are skipped, with the
 * nesting capped at SENML_MAX_DEPTH.
 *
 * The encoder writes compact JSON in a fixed key order (`bn`, `n`, value, `t`), the byte-exact
 * form of the spec examples. Floats always carry a fraction or exponent (`2.0`, not `2`) so a
 * reader without the model still sees a float; integers are written exactly from the bigint.
 */
import { toBase64Url } from '../base64.js';
import { CodecError } from '../errors.js';
import { isNumberStart, jsonFloat, jsonString, JsonReader } from '../json.js';
import type { ModelLookup } from '../model.js';
import { type LeafRecord, type LwM2MNode, recordsToNode } from '../node.js';
import type { Path } from '../path.js';
import type { Int, Value } from '../value.js';
import {
  isMustUnderstand,
  pathNames,
  planNode,
  planRecords,
  resolveLeafRecords,
  resolvePaths,
  SENML_MAX_DEPTH,
  SenmlField,
  type SenmlCodec,
  type SenmlRecord,
  type SenmlSink,
} from './senml.js';

const FORMAT = 'senml-json';

// ---------------------------------------------------------------------------------------------
// Decoder

// Bits for duplicate-field detection within one record.
/** Parses a SenML JSON payload into raw records (no resolution yet). */
export function parseSenmlJson(payload: Uint8Array): SenmlRecord[] {
  const r: JsonReader = JsonReader.fromBytes(FORMAT, payload, SENML_MAX_DEPTH);
  const c = r.peek();
  if (c !== 0x5b) {
    if (c === -1) r.fail('truncated', 'empty payload');
    r.fail('invalid', 'a SenML pack must be a JSON array');
  }
  const out: SenmlRecord[] = [];
  if (r.open()) {
    do {
      if (r.peek() !== 0x7b) r.unexpected(`record ${out.length} (a JSON object)`);
      out.push(readRecord(r));
    } while (r.more(0x5d, 'after a record'));
  }
  r.end('the pack');
  return out;
}

/** Reads one record; the cursor is on its `{`. */
function readRecord(r: JsonReader): SenmlRecord {
  const rec: SenmlRecord = {};
  if (!r.open()) return rec;
  let seen = 0;
  do {
    const key = r.key('a field name');
    let bit = 0;
    switch (key) {
      case 'bn':
        bit = SenmlField.bn;
        rec.bn = stringField(r, key);
        break;
      case 'n':
        bit = SenmlField.n;
        rec.n = stringField(r, key);
        break;
      case 'bt':
        bit = SenmlField.bt;
        rec.bt = Number(numberField(r, key));
        break;
      case 't':
        bit = SenmlField.t;
        rec.t = Number(numberField(r, key));
        break;
      case 'bv':
        bit = SenmlField.bv;
        rec.bv = numberField(r, key);
        rec.bvFloat = r.fraction;
        break;
      case 'v':
        bit = SenmlField.v;
        rec.v = numberField(r, key);
        rec.vFloat = r.fraction;
        break;
      case 'vs':
        bit = SenmlField.vs;
        rec.vs = stringField(r, key);
        break;
      case 'vd':
        bit = SenmlField.vd;
        rec.vd = stringField(r, key);
        break;
      case 'vlo':
        bit = SenmlField.vlo;
        rec.vlo = stringField(r, key);
        break;
      case 'vb': {
        bit = SenmlField.vb;
        const b = r.boolean();
        if (b === undefined) wrongType(r, key, 'true or false');
        rec.vb = b;
        break;
      }
      default:
        if (isMustUnderstand(key)) r.fail('invalid', `must-understand field ${JSON.stringify(key)} is not supported`, r.keyAt);
        r.skip(); // unknown or unused field (bu, bver, u, s, ut, ...): ignored
    }
    if (bit !== 0) {
      if ((seen & bit) !== 0) r.fail('duplicate', `field ${JSON.stringify(key)} given twice in one record`, r.keyAt);
      seen |= bit;
    }
  } while (r.more(0x7d, 'in a record'));
  return rec;
}

function wrongType(r: JsonReader, key: string, want: string): never {
  if (r.atEnd()) r.fail('truncated', `input ends where the value of ${JSON.stringify(key)} was expected`);
  return r.fail('invalid', `field ${JSON.stringify(key)} must be ${want}`);
}

function stringField(r: JsonReader, key: string): string {
  if (r.peek() !== 0x22) wrongType(r, key, 'a string');
  return r.string();
}

function numberField(r: JsonReader, key: string): Int {
  if (!isNumberStart(r.peek())) wrongType(r, key, 'a number');
  return r.number();
}

// ---------------------------------------------------------------------------------------------
// Encoder

const utf8 = new TextEncoder();

function valueText(v: Value): string {
  switch (v.type) {
    case 'string':
    case 'corelnk':
      return '"vs":' + jsonString(v.value);
    case 'integer':
    case 'unsigned':
    case 'time':
      return '"v":' + String(v.value);
    case 'float':
      return '"v":' + jsonFloat(v.value);
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
