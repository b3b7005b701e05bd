/**
 * LwM2M CBOR (Content-Format 11544, `application/vnd.oma.lwm2m+cbor`, LwM2M 1.2).
 *
 * A payload is a CBOR map whose keys are IDs (unsigned integers) or path fragments (arrays of
 * IDs, `[3,0,6]`), and whose values are either a resource value or another such map for the next
 * level(s). See formats.md §6.
 *
 * Encoding always writes absolute paths starting with the Object ID (Anjay, the one client that
 * implements the format, refuses Write payloads whose paths are not absolute):
 *
 * - `encode(path, node)`: one top-level entry whose key is the request path (a plain integer for
 *   `/o`, an array otherwise) and whose value is the node: `{[3,0,0]: "…"}`, `{[3,0,6]: {0:1}}`,
 *   `{[0,1]: {0: …, 1: …}}`, `{1: {0: {…}, 1: {…}}}`. Empty instances and empty multiple
 *   resources stay visible as empty maps.
 * - `encodeRecords(records)`: the records form a tree (object → instance → resource → resource
 *   instance, children in first-seen order); every run of levels that has a single child and no
 *   value is folded into one array key, so a lone value carries its full path and siblings share
 *   their common prefix: `/3/0/0, /3/0/9, /1/0/1` → `{[3,0]: {0: …, 9: …}, [1,0,1]: …}`. A key of
 *   a single ID is written as a plain integer.
 *
 * Decoding accepts any mix of integer and array keys, nested or flat, with definite or
 * indefinite lengths, and merged or split maps; a path given twice is an error. `decode(path)`
 * reads keys as absolute paths; when the first key does not start with the request's Object ID
 * (a Write/Create payload relative to the URI, which the spec wording leaves open), or when the
 * absolute reading fails, the keys are read relative to the request path instead.
 * Values follow cbor-value.ts (types from the model, else from the CBOR major type); `null` is
 * refused as `invalid`: formats.md §2 lists F6 only for executable resources, which carry no value.
 */
import { CborMap, type CborItem, CborWriter, cborKind, decodeCbor } from '../cbor.js';
import type { CompositeCodec } from '../codec.js';
import { CodecError } from '../errors.js';
import type { ModelLookup } from '../model.js';
import {
  checkNodeAtPath,
  type LeafRecord,
  type LwM2MNode,
  type MultiResource,
  type ObjectInstance,
  recordsToNode,
  type Resource,
  type ResourceModelLookup,
} from '../node.js';
import { formatPath, isValidId, type Path } from '../path.js';
import type { Value } from '../value.js';
import { cborToValue, writeCborValue } from './cbor-value.js';
import { modelType } from './common.js';

const FORMAT = 'lwm2m-cbor';

/**
 * Nesting needed by a valid payload: up to 4 maps, an array key inside the deepest, and a tag
 * around a value. Anything deeper is refused by the CBOR reader before we walk it.
 */
const MAX_DEPTH = 8;

function badPath(detail: string, path: Path): CodecError {
  return new CodecError(FORMAT, 'bad_path', detail, undefined, formatPath(path));
}

function checkId(id: number, path: Path): void {
  if (!isValidId(id)) throw badPath(`ID ${id} is not in 0..65534`, path);
}

// ---------------------------------------------------------------------------------------------
// Encoding

function writeKey(w: CborWriter, ids: readonly number[]): void {
  if (ids.length === 1) {
    w.head(0, ids[0] as number);
    return;
  }
  w.head(4, ids.length);
  for (const id of ids) w.head(0, id);
}

function writeResource(w: CborWriter, o: number, i: number, r: Resource): void {
  if (r.kind === 'resource') {
    writeCborValue(w, r.value);
    return;
  }
  w.head(5, r.instances.size);
  for (const [ri, v] of r.instances) {
    if (!isValidId(ri)) checkId(ri, [o, i, r.id, ri]);
    w.head(0, ri);
    writeCborValue(w, v);
  }
}

function writeInstance(w: CborWriter, o: number, inst: ObjectInstance): void {
  w.head(5, inst.resources.size);
  for (const r of inst.resources.values()) {
    // the path array is only built for the error message
    if (!isValidId(r.id)) checkId(r.id, [o, inst.id, r.id]);
    w.head(0, r.id);
    writeResource(w, o, inst.id, r);
  }
}

function writeNode(w: CborWriter, path: Path, node: LwM2MNode): void {
  const [o, i] = path as [number, number];
  switch (node.kind) {
    case 'object':
      w.head(5, node.instances.size);
      for (const inst of node.instances.values()) {
        if (!isValidId(inst.id)) checkId(inst.id, [o, inst.id]);
        w.head(0, inst.id);
        writeInstance(w, o, inst);
      }
      return;
    case 'instance':
      writeInstance(w, o, node);
      return;
    case 'resource':
    case 'multiResource':
      writeResource(w, o, i, node);
      return;
    case 'resourceInstance':
      writeCborValue(w, node.value);
      return;
  }
}

/** A node of the record tree built by encodeRecords: either a value or children, never both. */
interface Trie {
  value?: Value;
  readonly children: Map<number, Trie>;
}

function buildTrie(records: readonly LeafRecord[]): Trie {
  const root: Trie = { children: new Map() };
  for (const rec of records) {
    const p = rec.path;
    if (p.length < 3 || p.length > 4) throw badPath('a value must sit at a resource or resource instance', p);
    let node = root;
    for (let level = 0; level < p.length; level++) {
      const id = p[level] as number;
      checkId(id, p);
      if (node.value !== undefined) throw new CodecError(FORMAT, 'duplicate', 'resource given both as single and multiple', undefined, formatPath(p));
      let next = node.children.get(id);
      if (!next) node.children.set(id, (next = { children: new Map() }));
      node = next;
    }
    if (node.value !== undefined) throw new CodecError(FORMAT, 'duplicate', 'path given twice', undefined, formatPath(p));
    if (node.children.size > 0) throw new CodecError(FORMAT, 'duplicate', 'resource given both as single and multiple', undefined, formatPath(p));
    node.value = rec.value;
  }
  return root;
}

function writeTrie(w: CborWriter, node: Trie): void {
  w.head(5, node.children.size);
  const ids: number[] = [];
  for (const [id, first] of node.children) {
    // fold the single-child chain below this entry into one path-fragment key
    ids.length = 0;
    ids.push(id);
    let cur = first;
    while (cur.value === undefined && cur.children.size === 1) {
      const [nid, next] = cur.children.entries().next().value as [number, Trie];
      ids.push(nid);
      cur = next;
    }
    writeKey(w, ids);
    if (cur.value !== undefined) writeCborValue(w, cur.value);
    else writeTrie(w, cur);
  }
}

// ---------------------------------------------------------------------------------------------
// Decoding

/** Per resource: `null` once it holds a single value, a set of resource-instance IDs when multiple. */
type ResourceSlot = Set<number> | null;
type Tree = Map<number, Map<number, Map<number, ResourceSlot>>>;

/**
 * Walks the map structure, producing leaf records in wire order and a skeleton of every object,
 * instance and resource seen, which catches duplicates and remembers empty maps.
 */
class Walker {
  readonly records: LeafRecord[] = [];
  readonly tree: Tree = new Map();

  constructor(
    /** Paths must lie on the way to or below this path (the request path; `[]` for composite). */
    private readonly scope: Path,
    private readonly models: ModelLookup | undefined,
  ) {}

  walk(map: CborMap, prefix: Path): void {
    for (const [key, item] of map.entries) {
      const path = extendPath(prefix, key);
      this.inScope(path);
      if (item instanceof CborMap) {
        if (path.length === 4) throw new CodecError(FORMAT, 'invalid', 'a resource instance needs a value, got a map', undefined, formatPath(path));
        this.container(path);
        this.walk(item, path);
      } else {
        if (path.length < 3) {
          throw new CodecError(FORMAT, 'invalid', `a value (CBOR ${cborKind(item)}) needs a resource or resource-instance path, not an ${path.length === 1 ? 'object' : 'object instance'}`, undefined, formatPath(path));
        }
        this.leaf(path, cborToValue(FORMAT, item, modelType(this.models, path), path));
      }
    }
  }

  private inScope(path: Path): void {
    const n = Math.min(path.length, this.scope.length);
    for (let i = 0; i < n; i++) {
      if (path[i] !== this.scope[i]) throw badPath(`lies outside the request path ${formatPath(this.scope)}`, path);
    }
  }

  private resources(path: Path): Map<number, ResourceSlot> {
    const [o, i] = path as [number, number];
    let insts = this.tree.get(o);
    if (!insts) this.tree.set(o, (insts = new Map()));
    let res = insts.get(i);
    if (!res) insts.set(i, (res = new Map()));
    return res;
  }

  /** Registers the object, instance or (multiple) resource a nested map stands for. */
  private container(path: Path): void {
    if (path.length === 1) {
      if (!this.tree.has(path[0] as number)) this.tree.set(path[0] as number, new Map());
      return;
    }
    const res = this.resources(path);
    if (path.length === 2) return;
    const r = path[2] as number;
    const slot = res.get(r);
    if (slot === null) throw new CodecError(FORMAT, 'duplicate', 'resource given both as single and multiple', undefined, formatPath(path));
    if (slot === undefined) res.set(r, new Set());
  }

  private leaf(path: Path, value: Value): void {
    const res = this.resources(path);
    const r = path[2] as number;
    const slot = res.get(r);
    if (path.length === 3) {
      if (slot !== undefined) {
        throw new CodecError(FORMAT, 'duplicate', slot === null ? 'resource given twice' : 'resource given both as single and multiple', undefined, formatPath(path));
      }
      res.set(r, null);
    } else {
      if (slot === null) throw new CodecError(FORMAT, 'duplicate', 'resource given both as single and multiple', undefined, formatPath(path));
      const ri = path[3] as number;
      if (slot === undefined) res.set(r, new Set([ri]));
      else if (slot.has(ri)) throw new CodecError(FORMAT, 'duplicate', 'resource instance given twice', undefined, formatPath(path));
      else slot.add(ri);
    }
    this.records.push({ path, value });
  }
}

function describeKey(k: CborItem): string {
  if (typeof k === 'number' || typeof k === 'bigint') return String(k);
  if (typeof k === 'string') return JSON.stringify(k);
  return `a CBOR ${cborKind(k)}`;
}

function pushId(out: number[], k: CborItem): void {
  if (typeof k !== 'number' || !isValidId(k)) throw badPath(`key ${describeKey(k)} is not an ID (unsigned integer 0..65534)`, out);
  if (out.length === 4) throw badPath(`path longer than 4 IDs (next ID ${k})`, out);
  out.push(k);
}

/** The prefix extended by a key: one ID or a non-empty array of IDs. */
function extendPath(prefix: Path, key: CborItem): number[] {
  const out = prefix.slice();
  if (Array.isArray(key)) {
    const ids = key as readonly CborItem[];
    if (ids.length === 0) throw badPath('empty array as a map key', out);
    for (const k of ids) pushId(out, k);
  } else {
    pushId(out, key);
  }
  return out;
}

function decodeTop(payload: Uint8Array): CborMap {
  const item = decodeCbor(payload, { format: FORMAT, maxDepth: MAX_DEPTH });
  if (!(item instanceof CborMap)) throw new CodecError(FORMAT, 'invalid', `payload must be a CBOR map, got a ${cborKind(item)}`, 0);
  return item;
}

/** The first ID of the first key, when it is one. */
function firstId(map: CborMap): number | undefined {
  const e = map.entries[0];
  if (!e) return undefined;
  const k = e[0];
  const id = Array.isArray(k) ? (k as readonly CborItem[])[0] : k;
  return typeof id === 'number' ? id : undefined;
}

const emptyMulti = (id: number): MultiResource => ({ kind: 'multiResource', id, instances: new Map() });

/** Adds the empty multiple resources the payload gave as `{}` (records cannot carry them). */
function fillInstance(inst: ObjectInstance, res: Map<number, ResourceSlot> | undefined): ObjectInstance {
  if (!res) return inst;
  let out: Map<number, Resource> | undefined;
  for (const [r, slot] of res) {
    if (slot !== null && slot.size === 0 && !inst.resources.has(r)) {
      out ??= new Map(inst.resources);
      out.set(r, emptyMulti(r));
    }
  }
  return out ? { kind: 'instance', id: inst.id, resources: out } : inst;
}

/** Adds empty instances and empty multiple resources under `node` that `recordsToNode` cannot see. */
function fillEmpties(node: LwM2MNode, path: Path, tree: Tree): LwM2MNode {
  const insts = tree.get(path[0] as number);
  if (!insts) return node;
  if (node.kind === 'instance') return fillInstance(node, insts.get(node.id));
  if (node.kind !== 'object') return node;
  let out: Map<number, ObjectInstance> | undefined;
  for (const [i, res] of insts) {
    const cur = node.instances.get(i);
    const filled = fillInstance(cur ?? { kind: 'instance', id: i, resources: new Map() }, res);
    if (filled !== cur) {
      out ??= new Map(node.instances);
      out.set(i, filled);
    }
  }
  return out ? { kind: 'object', id: node.id, instances: out } : node;
}

function buildNode(root: CborMap, prefix: Path, path: Path, models: ModelLookup | undefined): LwM2MNode {
  const walker = new Walker(path, models);
  walker.walk(root, prefix);
  if (path.length === 3 && walker.records.length === 0) {
    const slot = walker.tree.get(path[0] as number)?.get(path[1] as number)?.get(path[2] as number);
    if (slot instanceof Set) return emptyMulti(path[2] as number);
  }
  const lookup: ResourceModelLookup | undefined = models ? (o, r) => models.resource(o, r) : undefined;
  const node = recordsToNode(FORMAT, path, walker.records, lookup);
  return path.length <= 2 ? fillEmpties(node, path, walker.tree) : node;
}

function checkRequestPath(path: Path): void {
  if (path.length === 0) throw badPath('the root path has no single node; use decodeRecords', path);
  if (path.length > 4) throw badPath(`a path has at most 4 IDs, got ${path.length}`, path);
  for (const id of path) checkId(id, path);
}

// ---------------------------------------------------------------------------------------------
// The codec

export const lwm2mCborCodec: CompositeCodec = {
  contentFormat: 11544,
  name: FORMAT,
  mediaType: 'application/vnd.oma.lwm2m+cbor',
  composite: true,

  encode(path: Path, node: LwM2MNode): Uint8Array {
    checkRequestPath(path);
    checkNodeAtPath(FORMAT, path, node);
    const w = new CborWriter(256);
    w.head(5, 1);
    writeKey(w, path);
    writeNode(w, path, node);
    return w.finish();
  },

  decode(path: Path, payload: Uint8Array, models?: ModelLookup): LwM2MNode {
    checkRequestPath(path);
    const root = decodeTop(payload);
    const first = firstId(root);
    // a first key naming another object can only be relative to the request URI
    const relativeFirst = first !== undefined && first !== path[0];
    try {
      return buildNode(root, relativeFirst ? path : [], path, models);
    } catch (e) {
      if (!(e instanceof CodecError)) throw e;
      try {
        return buildNode(root, relativeFirst ? [] : path, path, models);
      } catch {
        throw e; // the preferred reading's error says more
      }
    }
  },

  encodeRecords(records: readonly LeafRecord[]): Uint8Array {
    const w = new CborWriter(256);
    writeTrie(w, buildTrie(records));
    return w.finish();
  },

  decodeRecords(payload: Uint8Array, models?: ModelLookup): LeafRecord[] {
    const walker = new Walker([], models);
    walker.walk(decodeTop(payload), []);
    return walker.records;
  },
};
