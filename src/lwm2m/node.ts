/**
 * The LwM2M node tree: objects hold instances, instances hold resources, a resource is single
 * (one value) or multiple (resource instances keyed by ID). Maps keep wire order: encoders emit
 * children in map order, decoders insert them in the order they arrive.
 *
 * Composite formats (SenML, LwM2M CBOR) think in flat records, one value per resource or resource
 * instance; `nodeToRecords` and `recordsToNode` convert between the two views.
 */
import { CodecError } from './errors.js';
import type { ResourceModel } from './model.js';
import { formatPath, isPrefixOf, type Path, pathLevel } from './path.js';
import { type Value, valueEquals } from './value.js';

export interface SingleResource {
  readonly kind: 'resource';
  readonly id: number;
  readonly value: Value;
}

export interface MultiResource {
  readonly kind: 'multiResource';
  readonly id: number;
  readonly instances: ReadonlyMap<number, Value>;
}

export interface ResourceInstance {
  readonly kind: 'resourceInstance';
  readonly id: number;
  readonly value: Value;
}

export type Resource = SingleResource | MultiResource;

export interface ObjectInstance {
  readonly kind: 'instance';
  readonly id: number;
  readonly resources: ReadonlyMap<number, Resource>;
}

export interface LwM2MObject {
  readonly kind: 'object';
  readonly id: number;
  readonly instances: ReadonlyMap<number, ObjectInstance>;
}

export type LwM2MNode = LwM2MObject | ObjectInstance | Resource | ResourceInstance;

/** One value at a full resource (`/o/i/r`) or resource-instance (`/o/i/r/ri`) path. */
export interface LeafRecord {
  readonly path: Path;
  readonly value: Value;
  /** SenML resolved time (`bt` + `t`), seconds; only in historical notifications. */
  readonly time?: number;
}

/** Node builders. Children may be given as arrays (wire order) or maps. */
export const N = {
  resource: (id: number, value: Value): SingleResource => ({ kind: 'resource', id, value }),
  multi: (id: number, instances: Iterable<readonly [number, Value]>): MultiResource => ({
    kind: 'multiResource',
    id,
    instances: new Map(instances),
  }),
  resourceInstance: (id: number, value: Value): ResourceInstance => ({ kind: 'resourceInstance', id, value }),
  instance: (id: number, resources: Iterable<Resource>): ObjectInstance => ({
    kind: 'instance',
    id,
    resources: new Map([...resources].map((r) => [r.id, r] as const)),
  }),
  object: (id: number, instances: Iterable<ObjectInstance>): LwM2MObject => ({
    kind: 'object',
    id,
    instances: new Map([...instances].map((i) => [i.id, i] as const)),
  }),
};

/** The node kind that a path of this length addresses (`root` has no single node). */
export function kindForPath(path: Path): LwM2MNode['kind'] | 'root' {
  switch (pathLevel(path)) {
    case 'root':
      return 'root';
    case 'object':
      return 'object';
    case 'instance':
      return 'instance';
    case 'resource':
      return 'resource'; // or multiResource
    case 'resourceInstance':
      return 'resourceInstance';
  }
}

/** Throws unless `node` is the kind of node `path` addresses and carries the path's last ID. */
export function checkNodeAtPath(format: string, path: Path, node: LwM2MNode): void {
  const want = kindForPath(path);
  const ok =
    want === node.kind || (want === 'resource' && node.kind === 'multiResource');
  if (!ok) {
    throw new CodecError(format, 'bad_path', `a ${node.kind} node cannot be encoded at ${formatPath(path)}`, undefined, formatPath(path));
  }
  if (path[path.length - 1] !== node.id) {
    throw new CodecError(format, 'bad_path', `node ID ${node.id} does not match the path`, undefined, formatPath(path));
  }
}

/** Flattens a node found at `path` into leaf records, in tree order. */
export function nodeToRecords(path: Path, node: LwM2MNode): LeafRecord[] {
  const out: LeafRecord[] = [];
  const pushResource = (base: Path, r: Resource): void => {
    if (r.kind === 'resource') out.push({ path: [...base, r.id], value: r.value });
    else for (const [ri, v] of r.instances) out.push({ path: [...base, r.id, ri], value: v });
  };
  const pushInstance = (base: Path, inst: ObjectInstance): void => {
    for (const r of inst.resources.values()) pushResource([...base, inst.id], r);
  };
  const parent = path.slice(0, -1);
  switch (node.kind) {
    case 'object':
      for (const inst of node.instances.values()) pushInstance([node.id], inst);
      break;
    case 'instance':
      pushInstance(parent, node);
      break;
    case 'resource':
    case 'multiResource':
      pushResource(parent, node);
      break;
    case 'resourceInstance':
      out.push({ path: [...parent, node.id], value: node.value });
      break;
  }
  return out;
}

/** Throws for a record; the path text is built only here, off the decode hot path. */
function failAt(format: string, p: Path, reason: 'bad_path' | 'duplicate', detail: string): never {
  throw new CodecError(format, reason, detail, undefined, formatPath(p));
}

/** Optional model lookup for `recordsToNode`: tells whether a resource is multiple-instance. */
export type ResourceModelLookup = (objectId: number, resourceId: number) => ResourceModel | undefined;

/**
 * Builds the node at `path` from leaf records that all lie under it. A resource is multiple when
 * its records carry resource-instance IDs, or when the model says so; a single resource given
 * twice, or a resource given both ways, is refused.
 */
export function recordsToNode(
  format: string,
  path: Path,
  records: readonly LeafRecord[],
  lookup?: ResourceModelLookup,
): LwM2MNode {
  if (path.length === 0) throw new CodecError(format, 'bad_path', 'the root path has no single node; use the records');
  // object id -> instance id -> resource id -> value | Map(ri -> value)
  const tree = new Map<number, Map<number, Map<number, Value | Map<number, Value>>>>();
  for (const rec of records) {
    const p = rec.path;
    if (p.length < 3 || p.length > 4) failAt(format, p, 'bad_path', 'a value must sit at a resource or resource instance');
    if (!isPrefixOf(path, p)) failAt(format, p, 'bad_path', `value lies outside the request path ${formatPath(path)}`);
    const [o, i, r, ri] = p as [number, number, number, number | undefined];
    let insts = tree.get(o);
    if (!insts) tree.set(o, (insts = new Map()));
    let res = insts.get(i);
    if (!res) insts.set(i, (res = new Map()));
    const existing = res.get(r);
    if (ri === undefined) {
      if (existing !== undefined) failAt(format, p, 'duplicate', existing instanceof Map ? 'resource given both as single and multiple' : 'resource given twice');
      res.set(r, rec.value);
    } else {
      if (existing !== undefined && !(existing instanceof Map)) failAt(format, p, 'duplicate', 'resource given both as single and multiple');
      let m = existing;
      if (!m) res.set(r, (m = new Map()));
      if (m.has(ri)) failAt(format, p, 'duplicate', 'resource instance given twice');
      m.set(ri, rec.value);
    }
  }
  const buildResource = (r: number, v: Value | Map<number, Value>): Resource =>
    v instanceof Map ? { kind: 'multiResource', id: r, instances: v } : { kind: 'resource', id: r, value: v };
  const buildInstance = (i: number, res: Map<number, Value | Map<number, Value>>): ObjectInstance => {
    const resources = new Map<number, Resource>();
    for (const [r, v] of res) resources.set(r, buildResource(r, v));
    return { kind: 'instance', id: i, resources };
  };
  const [o, i, r, ri] = path as [number, number | undefined, number | undefined, number | undefined];
  const insts = tree.get(o) ?? new Map<number, Map<number, Value | Map<number, Value>>>();
  if (i === undefined) {
    const instances = new Map<number, ObjectInstance>();
    for (const [iid, res] of insts) instances.set(iid, buildInstance(iid, res));
    return { kind: 'object', id: o, instances };
  }
  const res = insts.get(i) ?? new Map<number, Value | Map<number, Value>>();
  if (r === undefined) return buildInstance(i, res);
  const v = res.get(r);
  if (ri === undefined) {
    if (v === undefined) {
      if (lookup?.(o, r)?.multiple) return { kind: 'multiResource', id: r, instances: new Map() };
      throw new CodecError(format, 'invalid', 'no value for the requested resource', undefined, formatPath(path));
    }
    return buildResource(r, v);
  }
  const one = v instanceof Map ? v.get(ri) : undefined;
  if (one === undefined) throw new CodecError(format, 'invalid', 'no value for the requested resource instance', undefined, formatPath(path));
  return { kind: 'resourceInstance', id: ri, value: one };
}

/** Groups leaf records (any objects) into object nodes, in first-seen order. */
export function recordsToObjects(format: string, records: readonly LeafRecord[], lookup?: ResourceModelLookup): LwM2MObject[] {
  const byObject = new Map<number, LeafRecord[]>();
  for (const rec of records) {
    const o = rec.path[0];
    if (o === undefined) throw new CodecError(format, 'bad_path', 'a value must sit at a resource or resource instance', undefined, '/');
    let list = byObject.get(o);
    if (!list) byObject.set(o, (list = []));
    list.push(rec);
  }
  return [...byObject].map(([o, recs]) => recordsToNode(format, [o], recs, lookup) as LwM2MObject);
}

/** Structural equality of two nodes; child order does not matter. */
export function nodeEquals(a: LwM2MNode, b: LwM2MNode): boolean {
  if (a.kind !== b.kind || a.id !== b.id) return false;
  switch (a.kind) {
    case 'resource':
    case 'resourceInstance':
      return valueEquals(a.value, (b as SingleResource | ResourceInstance).value);
    case 'multiResource': {
      const bm = (b as MultiResource).instances;
      if (a.instances.size !== bm.size) return false;
      for (const [k, v] of a.instances) {
        const w = bm.get(k);
        if (!w || !valueEquals(v, w)) return false;
      }
      return true;
    }
    case 'instance': {
      const bm = (b as ObjectInstance).resources;
      if (a.resources.size !== bm.size) return false;
      for (const [k, v] of a.resources) {
        const w = bm.get(k);
        if (!w || !nodeEquals(v, w)) return false;
      }
      return true;
    }
    case 'object': {
      const bm = (b as LwM2MObject).instances;
      if (a.instances.size !== bm.size) return false;
      for (const [k, v] of a.instances) {
        const w = bm.get(k);
        if (!w || !nodeEquals(v, w)) return false;
      }
      return true;
    }
  }
}
