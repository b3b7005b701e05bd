/**
 * SenML CBOR (`application/senml+cbor`, Content-Format 112) as LwM2M uses it (formats.md §5).
 *
 * Records are CBOR maps keyed by the RFC 8428 integer labels (bn -2, bt -3, bv -5, n 0, v 2,
 * vs 3, vb 4, t 6, vd 8) plus LwM2M's object-link field under the text key "vlo". The encoder
 * writes straight into one `CborWriter` buffer with preferred serialization (shortest heads,
 * smallest exact float); the decoder reads the generic CBOR tree and maps it onto SenML records.
 */
import { CborFloat, CborMap, CborTag, CborWriter, cborKind, decodeCbor, type CborItem } from '../cbor.js';
import { CodecError } from '../errors.js';
import type { ModelLookup } from '../model.js';
import { type LeafRecord, type LwM2MNode, recordsToNode } from '../node.js';
import type { Path } from '../path.js';
import type { Int, Value } from '../value.js';
import {
  countNodeRecords,
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

const FORMAT = 'senml-cbor';

/** RFC 8428 §6 labels. */
const L_BN = -2,
  L_BT = -3,
  L_BV = -5,
  L_N = 0,
  L_V = 2,
  L_VS = 3,
  L_VB = 4,
  L_T = 6,
  L_VD = 8;

// ---------------------------------------------------------------------------------------------
// Decoder

function fieldError(index: number, field: string, want: string, got: CborItem): CodecError {
  return new CodecError(FORMAT, 'invalid', `record ${index}: field ${field} must be ${want}, got ${cborKind(got)}`);
}

function textField(index: number, field: string, x: CborItem): string {
  if (typeof x !== 'string') throw fieldError(index, field, 'a text string', x);
  return x;
}

/** A numeric field: integer, float, or (leniently) an epoch-time tag 1 around one. */
function numberField(index: number, field: string, x: CborItem): { n: Int; float: boolean } {
  const item = x instanceof CborTag && x.tag === 1 ? x.value : x;
  if (typeof item === 'number' || typeof item === 'bigint') return { n: item, float: false };
  if (item instanceof CborFloat) return { n: item.value, float: true };
  throw fieldError(index, field, 'a number', x);
}

function timeField(index: number, field: string, x: CborItem): number {
  const t = Number(numberField(index, field, x).n);
  if (Number.isNaN(t)) throw new CodecError(FORMAT, 'invalid', `record ${index}: field ${field} is NaN`);
  return t;
}

function toRecord(index: number, m: CborItem): SenmlRecord {
  if (!(m instanceof CborMap)) throw new CodecError(FORMAT, 'invalid', `record ${index} must be a CBOR map, got ${cborKind(m)}`);
  const r: SenmlRecord = {};
  let seen = 0;
  for (const [k, x] of m.entries) {
    let bit = 0;
    if (typeof k === 'number') {
      switch (k) {
        case L_BN:
          bit = SenmlField.bn;
          r.bn = textField(index, 'bn (-2)', x);
          break;
        case L_N:
          bit = SenmlField.n;
          r.n = textField(index, 'n (0)', x);
          break;
        case L_BT:
          bit = SenmlField.bt;
          r.bt = timeField(index, 'bt (-3)', x);
          break;
        case L_T:
          bit = SenmlField.t;
          r.t = timeField(index, 't (6)', x);
          break;
        case L_BV: {
          bit = SenmlField.bv;
          const { n, float } = numberField(index, 'bv (-5)', x);
          r.bv = n;
          r.bvFloat = float;
          break;
        }
        case L_V: {
          bit = SenmlField.v;
          const { n, float } = numberField(index, 'v (2)', x);
          r.v = n;
          r.vFloat = float;
          break;
        }
        case L_VS:
          bit = SenmlField.vs;
          r.vs = textField(index, 'vs (3)', x);
          break;
        case L_VB:
          bit = SenmlField.vb;
          if (typeof x !== 'boolean') throw fieldError(index, 'vb (4)', 'true or false', x);
          r.vb = x;
          break;
        case L_VD:
          bit = SenmlField.vd;
          if (!(x instanceof Uint8Array)) throw fieldError(index, 'vd (8)', 'a byte string', x);
          r.vd = x;
          break;
        default:
        // other labels (bu, bs, bver, u, s, ut, registered extensions): not used by LwM2M
      }
    } else if (typeof k === 'string') {
      if (k === 'vlo') {
        bit = SenmlField.vlo;
        r.vlo = textField(index, '"vlo"', x);
      } else if (isMustUnderstand(k)) {
        throw new CodecError(FORMAT, 'invalid', `record ${index}: must-understand field ${JSON.stringify(k)} is not supported`);
      }
    } else if (typeof k !== 'bigint') {
      // bigint labels are valid CBOR integers, just not ones we know: ignored like the others
      throw new CodecError(FORMAT, 'invalid', `record ${index}: map key must be an integer label or a text string, got ${cborKind(k)}`);
    }
    if (bit !== 0) {
      if ((seen & bit) !== 0) throw new CodecError(FORMAT, 'duplicate', `record ${index}: field ${typeof k === 'string' ? JSON.stringify(k) : k} given twice`);
      seen |= bit;
    }
  }
  return r;
}

/** Parses a SenML CBOR payload into raw records (no resolution yet). */
export function parseSenmlCbor(payload: Uint8Array): SenmlRecord[] {
  const item = decodeCbor(payload, { format: FORMAT, maxDepth: SENML_MAX_DEPTH });
  if (!Array.isArray(item)) throw new CodecError(FORMAT, 'invalid', `a SenML pack must be a CBOR array, got ${cborKind(item)}`, 0);
  const list = item as readonly CborItem[];
  const out = new Array<SenmlRecord>(list.length);
  for (let i = 0; i < list.length; i++) out[i] = toRecord(i, list[i] as CborItem);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Encoder

class CborSink implements SenmlSink {
  constructor(private readonly w: CborWriter) {}

  record(bn: string | undefined, n: string | undefined, value: Value, time: number | undefined): void {
    const w = this.w;
    w.head(5, 1 + (bn !== undefined ? 1 : 0) + (n !== undefined ? 1 : 0) + (time !== undefined ? 1 : 0));
    if (bn !== undefined) {
      w.integer(L_BN);
      w.text(bn);
    }
    if (n !== undefined) {
      w.integer(L_N);
      w.text(n);
    }
    switch (value.type) {
      case 'string':
      case 'corelnk':
        w.integer(L_VS);
        w.text(value.value);
        break;
      case 'integer':
      case 'unsigned':
      case 'time':
        w.integer(L_V);
        w.integer(value.value);
        break;
      case 'float':
        w.integer(L_V);
        w.float(value.value);
        break;
      case 'boolean':
        w.integer(L_VB);
        w.simple(value.value ? 21 : 20);
        break;
      case 'opaque':
        w.integer(L_VD);
        w.bytes(value.value);
        break;
      case 'objlnk':
        w.text('vlo');
        w.text(`${value.value.objectId}:${value.value.instanceId}`);
        break;
    }
    if (time !== undefined) {
      w.integer(L_T);
      if (Number.isSafeInteger(time)) w.integer(time);
      else w.float(time);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The codec

/** A Read-/Observe-Composite request body in SenML CBOR: `[{0: "/3/0/0"}, {0: "/1"}]`. */
export function encodeSenmlCborPaths(paths: readonly Path[]): Uint8Array {
  const names = pathNames(FORMAT, paths);
  const w = new CborWriter(16 + names.length * 12);
  w.head(4, names.length);
  for (const name of names) {
    w.head(5, 1);
    w.integer(L_N);
    w.text(name);
  }
  return w.finish();
}

/** The paths named by a SenML CBOR Read-/Observe-Composite request body. */
export function decodeSenmlCborPaths(payload: Uint8Array): Path[] {
  return resolvePaths(FORMAT, parseSenmlCbor(payload));
}

export const senmlCborCodec: SenmlCodec = {
  contentFormat: 112,
  name: FORMAT,
  mediaType: 'application/senml+cbor',
  composite: true,

  encode(path: Path, node: LwM2MNode): Uint8Array {
    const count = countNodeRecords(node);
    const w = new CborWriter(32 + count * 16);
    w.head(4, count);
    planNode(FORMAT, path, node, new CborSink(w));
    return w.finish();
  },

  decode(path: Path, payload: Uint8Array, models?: ModelLookup): LwM2MNode {
    const records = resolveLeafRecords(FORMAT, parseSenmlCbor(payload), models);
    return recordsToNode(FORMAT, path, records, models ? (o, r) => models.resource(o, r) : undefined);
  },

  encodeRecords(records: readonly LeafRecord[]): Uint8Array {
    const w = new CborWriter(32 + records.length * 16);
    w.head(4, records.length);
    planRecords(FORMAT, records, new CborSink(w));
    return w.finish();
  },

  decodeRecords(payload: Uint8Array, models?: ModelLookup): LeafRecord[] {
    return resolveLeafRecords(FORMAT, parseSenmlCbor(payload), models);
  },

  encodePaths: encodeSenmlCborPaths,
  decodePaths: decodeSenmlCborPaths,
};
