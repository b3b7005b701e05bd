/**
 * Device management on the simulated device (registration.md §7), without any I/O: the
 * simulator (simulator.ts) routes a request from its registration server here and sends the
 * answer; tests can call these functions on a `DeviceModel` directly. Section numbers (§n) refer
 * to /work/shared/spec/registration.md.
 *
 * Decisions where the spec leaves room (each repeated where it is coded):
 *  - Paths the operation does not take (Read/Write-Attributes of `/`, Discover of `/` or of a
 *    resource instance, Write on `/o`, Delete of `/`, `/o` or `/o/i/r`, Execute off a resource)
 *    → 4.05 (§7.1 notes: "requests violating path rules → 4.05").
 *  - Any operation on Security (0) or OSCORE (21) → 4.01, even Discover (§7.1 notes).
 *  - A resource-instance path under a single-instance resource → 4.00 (the path is malformed
 *    for that resource); a resource the device's object version does not have → 4.04.
 *  - Write: a resource without W in the payload or path → 4.05 (as the Leshan client); a
 *    resource the device does not implement → 4.04. Replace (PUT `/o/i`) keeps the read-only
 *    resources and replaces every writable one; a mandatory writable resource missing from the
 *    payload → 4.00 (the instance would be incomplete). Partial update (POST) of a
 *    multiple-instance resource adds/overwrites the instances given (§7.1, 1.2 example), also
 *    when it comes inside an instance payload.
 *  - Create: the instance ID comes from the payload (an object payload with one instance) or
 *    the device picks the lowest free one (a bare instance payload, e.g. TLV resources without
 *    an Object Instance TLV, or no payload) and answers with Location-Path `/o/i`; read-only
 *    and unknown resources in the payload are ignored (§7.1 notes); read-only mandatory
 *    resources are created with a neutral value (0, "", false). No ACL instance is created (the
 *    simulator does not enforce access control).
 *  - Delete of `/3/0` → 4.05 (it can never be deleted; §7.1 notes); of a resource instance
 *    (1.1+) → 2.02; a 1.0 device answers 4.05 for that path.
 *  - Discover: resources listed are the instantiated ones plus the executable ones of the
 *    object version; `dim` on multiple-instance resources; attributes of each level; `ver` on
 *    the object link by the Register rule. `depth` is honoured on 1.2 devices (0..3, else 4.00)
 *    and ignored before 1.2 (1.0/1.1 depths: `/o` → 2, `/o/i` → 1, `/o/i/r` → 0).
 *  - Write-Attributes: an unknown attribute, a malformed value, an attribute not valid at the
 *    level (gt/lt/st/edge above resource level, gt/lt/st on non-numeric and edge on non-boolean
 *    resources), one the device's version lacks (epmin/epmax from 1.1, edge/con/hqmax from 1.2),
 *    a repeated one, a negative st, `lt ≥ gt`, `lt + 2·st ≥ gt`, or `epmax ≤ epmin` → 4.00.
 *  - Execute arguments (§7.3) are checked leniently (digits, optional `='…'`, spaces around
 *    commas); anything else → 4.00.
 */
import { Opt, type CoapOption } from '../coap/message.js';
import { CodecError } from '../lwm2m/errors.js';
import { codecFor, findCodec } from '../lwm2m/formats/index.js';
import { formatLinkFormat, type Link, type LinkParam } from '../lwm2m/linkformat.js';
import type { ResourceModel } from '../lwm2m/model.js';
import { N, type LwM2MNode, type ObjectInstance, type Resource } from '../lwm2m/node.js';
import { formatPath, isPrefixOf, parsePath, type Path } from '../lwm2m/path.js';
import { NULL_OBJLNK, parseObjlnk, V, type Value } from '../lwm2m/value.js';
import type { DeviceModel, OpResult } from './device-model.js';

/** A device-management answer, and what it changed. */
export interface DmAnswer extends OpResult {
  /** Response options (Location-Path of a Create). */
  readonly options?: readonly CoapOption[];
  /** Paths whose values changed (observations at, above or below them are re-evaluated). */
  readonly changed?: readonly Path[];
  /** An instance was created or deleted: the object list changed (the next Update carries it). */
  readonly objectsChanged?: boolean;
  /** Create: the new instance. */
  readonly created?: Path;
}

const fail = (code: string, diagnostic: string): DmAnswer => ({ code, payload: diagnostic });

const SECURITY_OBJECTS: ReadonlySet<number> = new Set([0, 21]);

function refuseSecurity(oid: number): DmAnswer | undefined {
  return SECURITY_OBJECTS.has(oid) ? fail('4.01', `object ${oid} is not accessible to an LwM2M server`) : undefined;
}

/** The formats the device reads and writes, in its order of preference (first = default). */
export function deviceFormats(model: DeviceModel): number[] {
  const out: number[] = [];
  for (const cf of [...model.acceptFormats, ...model.resourceFormats]) if (!out.includes(cf)) out.push(cf);
  return out;
}

/** The formats a Register announces with `ct`: the device's formats minus text and octet-stream (always supported). */
export function announcedFormats(model: DeviceModel): number[] {
  return deviceFormats(model).filter((cf) => cf !== 0 && cf !== 42);
}

function resourceModel(model: DeviceModel, oid: number, rid: number): ResourceModel | undefined {
  return model.models.resource(oid, rid);
}

function readable(model: DeviceModel, oid: number, rid: number): boolean {
  return resourceModel(model, oid, rid)?.operations.includes('R') === true;
}

function writable(model: DeviceModel, oid: number, rid: number): boolean {
  return resourceModel(model, oid, rid)?.operations.includes('W') === true;
}

function executable(model: DeviceModel, oid: number, rid: number): boolean {
  return resourceModel(model, oid, rid)?.operations === 'E';
}

function sortedResources(resources: Iterable<Resource>): Resource[] {
  return [...resources].sort((a, b) => a.id - b.id);
}

function sortedInstances(model: DeviceModel, oid: number): ObjectInstance[] {
  return [...model.instances(oid).values()].sort((a, b) => a.id - b.id);
}

/** The instance as a Read returns it: readable resources only (§7.1 notes). */
function readableView(model: DeviceModel, oid: number, inst: ObjectInstance): ObjectInstance {
  const kept = [...inst.resources.values()].filter((r) => readable(model, oid, r.id));
  return kept.length === inst.resources.size ? inst : N.instance(inst.id, kept);
}

// ---- Read (§7.1) -----------------------------------------------------------------------------

/** The node a Read of `path` returns, or the refusal. */
export function readNode(model: DeviceModel, path: Path): { readonly node: LwM2MNode } | { readonly refusal: DmAnswer } {
  const refuse = (code: string, text: string): { refusal: DmAnswer } => ({ refusal: fail(code, text) });
  if (path.length === 0) return refuse('4.05', 'Read targets an object, instance, resource or resource instance');
  const oid = path[0]!;
  const sec = refuseSecurity(oid);
  if (sec) return { refusal: sec };
  if (!model.supports(oid)) return refuse('4.04', `object ${oid} is not supported`);
  if (path.length === 1) return { node: N.object(oid, sortedInstances(model, oid).map((i) => readableView(model, oid, i))) };
  const inst = model.get(oid, path[1]!);
  if (!inst) return refuse('4.04', `${formatPath(path.slice(0, 2))} does not exist`);
  if (path.length === 2) return { node: readableView(model, oid, inst) };
  const rid = path[2]!;
  if (!model.implementsResource(oid, rid)) return refuse('4.04', `resource ${formatPath(path.slice(0, 3))} is not supported`);
  if (!readable(model, oid, rid)) return refuse('4.05', `resource ${formatPath(path.slice(0, 3))} is not readable`);
  const r = inst.resources.get(rid);
  if (!r) return refuse('4.04', `${formatPath(path.slice(0, 3))} has no value`);
  if (path.length === 3) return { node: r };
  // Decision (module comment): a resource-instance path under a single resource is malformed.
  if (r.kind !== 'multiResource') return refuse('4.00', `${formatPath(path.slice(0, 3))} is a single-instance resource`);
  const v = r.instances.get(path[3]!);
  if (v === undefined) return refuse('4.04', `${formatPath(path)} does not exist`);
  return { node: N.resourceInstance(path[3]!, v) };
}

/**
 * Encodes `node` found at `path`: in `accept` when given (4.06 when the device does not
 * produce it or it cannot carry the node), else in the first of the device's formats that can.
 */
export function encodeAnswer(model: DeviceModel, path: Path, node: LwM2MNode, accept: number | undefined): DmAnswer {
  const formats = deviceFormats(model);
  if (accept !== undefined) {
    if (!formats.includes(accept) || !findCodec(accept)) return fail('4.06', `cannot answer in Content-Format ${accept}; supported: ${formats.join(', ')}`);
    try {
      return { code: '2.05', contentFormat: accept, payload: codecFor(accept).encode(path, node) };
    } catch (e) {
      if (e instanceof CodecError) return fail('4.06', e.message);
      throw e;
    }
  }
  for (const cf of formats) {
    const codec = findCodec(cf);
    if (!codec) continue;
    try {
      return { code: '2.05', contentFormat: cf, payload: codec.encode(path, node) };
    } catch (e) {
      if (!(e instanceof CodecError)) throw e;
    }
  }
  return fail('5.00', `none of the device's formats (${formats.join(', ')}) can carry ${formatPath(path)}`);
}

export function dmRead(model: DeviceModel, path: Path, accept: number | undefined): DmAnswer {
  const r = readNode(model, path);
  if ('refusal' in r) return r.refusal;
  return encodeAnswer(model, path, r.node, accept);
}

// ---- Write (§7.1) ----------------------------------------------------------------------------

function mergeMulti(old: Resource | undefined, add: Resource): Resource {
  if (add.kind !== 'multiResource' || old?.kind !== 'multiResource') return add;
  const merged = new Map(old.instances);
  for (const [ri, v] of add.instances) merged.set(ri, v);
  return N.multi(add.id, [...merged].sort((a, b) => a[0] - b[0]));
}

/** 4.04 / 4.05 / 4.00 for a resource a write would store, or undefined when it is fine. */
function checkWritten(model: DeviceModel, oid: number, iid: number, r: Resource): DmAnswer | undefined {
  const where = formatPath([oid, iid, r.id]);
  if (!model.implementsResource(oid, r.id)) return fail('4.04', `resource ${where} is not supported`);
  if (!writable(model, oid, r.id)) return fail('4.05', `resource ${where} is not writable`);
  const problem = model.valueProblem(oid, iid, r);
  return problem !== undefined ? fail('4.00', problem) : undefined;
}

/**
 * Write: `replace` (PUT) or partial update (POST) of `/o/i`, `/o/i/r` or `/o/i/r/ri`, with the
 * payload in `contentFormat`. See the module comment for the semantics.
 */
export function dmWrite(model: DeviceModel, path: Path, replace: boolean, contentFormat: number | undefined, payload: Uint8Array): DmAnswer {
  if (path.length === 0) return fail('4.05', 'Write on / is not allowed');
  const oid = path[0]!;
  const sec = refuseSecurity(oid);
  if (sec) return sec;
  if (path.length === 1) return fail('4.05', 'Write on an object is not allowed');
  if (!model.supports(oid)) return fail('4.04', `object ${oid} is not supported`);
  const iid = path[1]!;
  const inst = model.get(oid, iid);
  if (!inst) return fail('4.04', `${formatPath(path.slice(0, 2))} does not exist`);
  if (path.length >= 3) {
    const rid = path[2]!;
    const where = formatPath(path.slice(0, 3));
    if (!model.implementsResource(oid, rid)) return fail('4.04', `resource ${where} is not supported`);
    if (!writable(model, oid, rid)) return fail('4.05', `resource ${where} is not writable`);
    const multiple = resourceModel(model, oid, rid)?.multiple === true;
    if (path.length === 4 && !multiple) return fail('4.00', `${where} is a single-instance resource`);
    if (!replace && path.length === 3 && !multiple) return fail('4.05', `partial update of ${where}: only multiple-instance resources`);
    if (!replace && path.length === 4) return fail('4.05', 'partial update of a resource instance is not allowed');
  }
  if (contentFormat === undefined) return fail('4.00', 'Write needs a Content-Format');
  const allowed = path.length >= 3 ? deviceFormats(model) : model.acceptFormats;
  if (!allowed.includes(contentFormat) || !findCodec(contentFormat)) {
    return fail('4.15', `Content-Format ${contentFormat} is not supported for ${formatPath(path)}`);
  }
  let node: LwM2MNode;
  try {
    node = codecFor(contentFormat).decode(path, payload, model.models);
  } catch (e) {
    if (e instanceof CodecError) return fail(e.reason === 'unsupported' ? '4.15' : '4.00', e.message);
    throw e;
  }
  const resources = new Map<number, Resource>(inst.resources);
  switch (node.kind) {
    case 'instance': {
      for (const r of node.resources.values()) {
        const bad = checkWritten(model, oid, iid, r);
        if (bad) return bad;
      }
      if (replace) {
        // Replace: the read-only resources stay, every writable one comes from the payload.
        for (const rid of [...resources.keys()]) if (writable(model, oid, rid)) resources.delete(rid);
        for (const r of node.resources.values()) resources.set(r.id, r);
        const objModel = model.models.object(oid);
        const missing = [...(objModel?.resources.values() ?? [])]
          .filter((m) => m.mandatory && m.operations.includes('W') && model.supportsResource(oid, m.id) && !resources.has(m.id))
          .map((m) => m.id);
        if (missing.length > 0) return fail('4.00', `replacing ${formatPath(path)} would leave mandatory resource(s) ${missing.join(', ')} without a value`);
      } else {
        for (const r of node.resources.values()) resources.set(r.id, mergeMulti(resources.get(r.id), r));
      }
      break;
    }
    case 'resource':
    case 'multiResource': {
      const r = replace ? node : mergeMulti(resources.get(node.id), node);
      const bad = checkWritten(model, oid, iid, r);
      if (bad) return bad;
      resources.set(r.id, r);
      break;
    }
    case 'resourceInstance': {
      const rid = path[2]!;
      const old = resources.get(rid);
      const r = mergeMulti(old?.kind === 'multiResource' ? old : N.multi(rid, []), N.multi(rid, [[node.id, node.value]]));
      const bad = checkWritten(model, oid, iid, r);
      if (bad) return bad;
      resources.set(rid, r);
      break;
    }
    default:
      return fail('4.05', `Write of an object at ${formatPath(path)} is not allowed`);
  }
  model.set(oid, N.instance(iid, sortedResources(resources.values())));
  return { code: '2.04', changed: [path] };
}

// ---- Execute (§7.1, §7.3) --------------------------------------------------------------------

// §7.3: arg = DIGIT / DIGIT "=" "'" *CHAR "'"; leniently: spaces around commas, any character but ' inside quotes.
const EXECUTE_ARGS = /^\s*[0-9](='[^']*')?\s*(,\s*[0-9](='[^']*')?\s*)*$/;

/** Are these Execute arguments well-formed (§7.3)? An empty payload is. */
export function validExecuteArguments(text: string): boolean {
  return text.length === 0 || EXECUTE_ARGS.test(text);
}

export function dmExecute(model: DeviceModel, path: Path, payload: Uint8Array): DmAnswer {
  if (path.length !== 3) return fail('4.05', 'Execute targets a resource');
  const oid = path[0]!;
  const sec = refuseSecurity(oid);
  if (sec) return sec;
  if (!model.supports(oid)) return fail('4.04', `object ${oid} is not supported`);
  if (!model.get(oid, path[1]!)) return fail('4.04', `${formatPath(path.slice(0, 2))} does not exist`);
  if (!model.implementsResource(oid, path[2]!)) return fail('4.04', `resource ${formatPath(path)} is not supported`);
  if (!executable(model, oid, path[2]!)) return fail('4.05', `resource ${formatPath(path)} is not executable`);
  const args = Buffer.from(payload).toString('utf8');
  if (!validExecuteArguments(args)) return fail('4.00', `Execute arguments ${JSON.stringify(args)} are not an argument list (§7.3)`);
  return { code: '2.04' };
}

// ---- Create (§7.1) ---------------------------------------------------------------------------

/** A neutral value of a type, for read-only mandatory resources a Create cannot set. */
function neutralValue(m: ResourceModel): Value | undefined {
  switch (m.type) {
    case 'string':
      return V.string('');
    case 'integer':
      return V.integer(0);
    case 'unsigned':
      return V.unsigned(0);
    case 'float':
      return V.float(0);
    case 'boolean':
      return V.boolean(false);
    case 'opaque':
      return V.opaque(new Uint8Array(0));
    case 'time':
      return V.time(0);
    case 'objlnk':
      return V.objlnk(NULL_OBJLNK.objectId, NULL_OBJLNK.instanceId);
    case 'corelnk':
      return V.corelnk('');
    case 'none':
      return undefined;
  }
}

function lowestFreeId(model: DeviceModel, oid: number): number {
  const used = model.instances(oid);
  let id = 0;
  while (used.has(id)) id++;
  return id;
}

export function dmCreate(model: DeviceModel, path: Path, contentFormat: number | undefined, payload: Uint8Array): DmAnswer {
  if (path.length !== 1) return fail('4.05', 'Create targets an object');
  const oid = path[0]!;
  const sec = refuseSecurity(oid);
  if (sec) return sec;
  if (!model.supports(oid)) return fail('4.04', `object ${oid} is not supported`);
  const objModel = model.models.object(oid);
  const single = objModel !== undefined && !objModel.multiple;
  if (payload.length > 0 && contentFormat === undefined) return fail('4.00', 'Create needs a Content-Format');
  if (contentFormat !== undefined && (!model.acceptFormats.includes(contentFormat) || !findCodec(contentFormat))) {
    return fail('4.15', `Content-Format ${contentFormat} is not supported for Create`);
  }
  const free = single ? 0 : lowestFreeId(model, oid);
  let given: ObjectInstance | undefined;
  let clientPicked = false;
  if (payload.length === 0) {
    given = N.instance(free, []);
    clientPicked = true;
  } else {
    const codec = codecFor(contentFormat!);
    let firstError: CodecError | undefined;
    try {
      const node = codec.decode(path, payload, model.models);
      if (node.kind === 'object') {
        if (node.instances.size !== 1) return fail('4.00', `Create carries ${node.instances.size} instances; one is expected`);
        given = [...node.instances.values()][0]!;
      }
    } catch (e) {
      if (!(e instanceof CodecError)) throw e;
      firstError = e;
    }
    if (!given) {
      // Decision (module comment): a bare instance payload → the device picks the ID.
      try {
        const node = codec.decode([oid, free], payload, model.models);
        if (node.kind === 'instance') {
          given = node;
          clientPicked = true;
        }
      } catch (e) {
        if (!(e instanceof CodecError)) throw e;
      }
    }
    if (!given) return fail('4.00', firstError?.message ?? 'the payload is not an object instance');
  }
  const iid = clientPicked ? free : given.id;
  if (single && iid !== 0) return fail('4.00', `object ${oid} is single-instance`);
  if (model.get(oid, iid)) return fail('4.00', `${formatPath([oid, iid])} already exists`);
  const kept: Resource[] = [];
  const ignored: string[] = [];
  for (const r of given.resources.values()) {
    // §7.1 notes: read-only (and unknown) resources in the payload are ignored.
    if (!model.supportsResource(oid, r.id) || !writable(model, oid, r.id)) {
      ignored.push(formatPath([oid, iid, r.id]));
      continue;
    }
    const problem = model.valueProblem(oid, iid, r);
    if (problem !== undefined) return fail('4.00', problem);
    kept.push(r);
  }
  const have = new Set(kept.map((r) => r.id));
  const missing: number[] = [];
  for (const m of objModel?.resources.values() ?? []) {
    if (!m.mandatory || have.has(m.id) || !model.supportsResource(oid, m.id)) continue;
    if (m.operations.includes('W')) {
      missing.push(m.id);
      continue;
    }
    const v = neutralValue(m);
    if (v !== undefined) kept.push(m.multiple ? N.multi(m.id, []) : N.resource(m.id, v));
  }
  if (missing.length > 0) return fail('4.00', `Create of ${formatPath([oid, iid])} lacks mandatory resource(s) ${missing.join(', ')}`);
  model.set(oid, N.instance(iid, sortedResources(kept)));
  return {
    code: '2.01',
    ...(clientPicked ? { options: [{ number: Opt.LocationPath, value: Buffer.from(String(oid)) }, { number: Opt.LocationPath, value: Buffer.from(String(iid)) }] } : {}),
    ...(ignored.length > 0 ? { ignored } : {}),
    created: [oid, iid],
    changed: [[oid, iid]],
    objectsChanged: true,
  };
}

// ---- Delete (§7.1) ---------------------------------------------------------------------------

export function dmDelete(model: DeviceModel, path: Path): DmAnswer {
  if (path.length !== 2 && path.length !== 4) return fail('4.05', 'Delete targets an object instance or a resource instance');
  const oid = path[0]!;
  const sec = refuseSecurity(oid);
  if (sec) return sec;
  if (path.length === 4 && model.lwm2mVersion === '1.0') return fail('4.05', 'LwM2M 1.0 has no Delete of a resource instance');
  if (!model.supports(oid)) return fail('4.04', `object ${oid} is not supported`);
  const iid = path[1]!;
  const inst = model.get(oid, iid);
  if (!inst) return fail('4.04', `${formatPath(path.slice(0, 2))} does not exist`);
  if (path.length === 2) {
    if (oid === 3 && iid === 0) return fail('4.05', '/3/0 cannot be deleted');
    model.remove(oid, iid);
    return { code: '2.02', changed: [path], objectsChanged: true };
  }
  const rid = path[2]!;
  const r = inst.resources.get(rid);
  if (!model.implementsResource(oid, rid) || !r) return fail('4.04', `${formatPath(path.slice(0, 3))} does not exist`);
  if (r.kind !== 'multiResource') return fail('4.00', `${formatPath(path.slice(0, 3))} is a single-instance resource`);
  if (!writable(model, oid, rid)) return fail('4.05', `resource ${formatPath(path.slice(0, 3))} is not writable`);
  if (!r.instances.has(path[3]!)) return fail('4.04', `${formatPath(path)} does not exist`);
  const rest = [...r.instances].filter(([ri]) => ri !== path[3]);
  const resources = new Map<number, Resource>(inst.resources);
  resources.set(rid, N.multi(rid, rest));
  model.set(oid, N.instance(iid, sortedResources(resources.values())));
  return { code: '2.02', changed: [path.slice(0, 3)] };
}

// ---- notification attributes (§7.4) ---------------------------------------------------------

export interface NotificationAttributes {
  readonly pmin?: number;
  readonly pmax?: number;
  readonly gt?: number;
  readonly lt?: number;
  readonly st?: number;
  readonly epmin?: number;
  readonly epmax?: number;
  readonly edge?: 0 | 1;
  readonly con?: 0 | 1;
  readonly hqmax?: number;
}

export type AttributeName = keyof NotificationAttributes;

/** Discover and storage order. */
export const ATTRIBUTE_NAMES: readonly AttributeName[] = ['pmin', 'pmax', 'gt', 'lt', 'st', 'epmin', 'epmax', 'edge', 'con', 'hqmax'];

type AttrKind = 'int' | 'float' | 'bit';
const ATTRS: Readonly<Record<AttributeName, { readonly kind: AttrKind; readonly since: '1.0' | '1.1' | '1.2'; readonly resourceLevel: boolean }>> = {
  pmin: { kind: 'int', since: '1.0', resourceLevel: false },
  pmax: { kind: 'int', since: '1.0', resourceLevel: false },
  gt: { kind: 'float', since: '1.0', resourceLevel: true },
  lt: { kind: 'float', since: '1.0', resourceLevel: true },
  st: { kind: 'float', since: '1.0', resourceLevel: true },
  epmin: { kind: 'int', since: '1.1', resourceLevel: false },
  epmax: { kind: 'int', since: '1.1', resourceLevel: false },
  edge: { kind: 'bit', since: '1.2', resourceLevel: true },
  con: { kind: 'bit', since: '1.2', resourceLevel: false },
  hqmax: { kind: 'int', since: '1.2', resourceLevel: false },
};

const INT = /^[0-9]{1,9}$/;
const FLOAT = /^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$/;

/** What an attribute query sets and unsets (`?pmin` without a value unsets, §7.4). */
export interface AttributeChange {
  readonly set: NotificationAttributes;
  readonly unset: readonly AttributeName[];
}

export interface AttributeTarget {
  /** Path length of the target (1 object … 4 resource instance). */
  readonly level: number;
  readonly lwm2mVersion: '1.0' | '1.1' | '1.2';
  /** Type of the target resource, for resource-level attributes. */
  readonly resourceType?: string;
}

const NUMERIC = new Set(['integer', 'unsigned', 'float', 'time']);

/** Parses Write-Attributes (or 1.2 Observe) query options; a string is the 4.00 diagnostic. */
export function parseAttributeQuery(query: readonly string[], target: AttributeTarget): AttributeChange | string {
  const set: { -readonly [K in AttributeName]?: NotificationAttributes[K] } = {};
  const unset: AttributeName[] = [];
  const seen = new Set<string>();
  for (const q of query) {
    const eq = q.indexOf('=');
    const name = eq < 0 ? q : q.slice(0, eq);
    const def = Object.hasOwn(ATTRS, name) ? ATTRS[name as AttributeName] : undefined;
    if (!def) return `unknown attribute ${JSON.stringify(name)}`;
    const attr = name as AttributeName;
    if (seen.has(attr)) return `attribute ${attr} given twice`;
    seen.add(attr);
    if (def.since > target.lwm2mVersion) return `attribute ${attr} needs LwM2M ${def.since}`;
    if (def.resourceLevel && target.level < 3) return `attribute ${attr} applies to resources only`;
    if ((attr === 'gt' || attr === 'lt' || attr === 'st') && target.resourceType !== undefined && !NUMERIC.has(target.resourceType)) {
      return `attribute ${attr} applies to numeric resources only`;
    }
    if (attr === 'edge' && target.resourceType !== undefined && target.resourceType !== 'boolean') return 'attribute edge applies to boolean resources only';
    if (eq < 0) {
      unset.push(attr);
      continue;
    }
    const text = q.slice(eq + 1);
    switch (def.kind) {
      case 'int':
        if (!INT.test(text)) return `attribute ${attr}=${JSON.stringify(text)} is not a non-negative integer`;
        (set as Record<string, number>)[attr] = Number(text);
        break;
      case 'float': {
        if (!FLOAT.test(text) || !Number.isFinite(Number(text))) return `attribute ${attr}=${JSON.stringify(text)} is not a number`;
        const x = Number(text);
        if (attr === 'st' && x < 0) return 'attribute st must not be negative';
        (set as Record<string, number>)[attr] = x;
        break;
      }
      case 'bit':
        if (text !== '0' && text !== '1') return `attribute ${attr}=${JSON.stringify(text)} must be 0 or 1`;
        (set as Record<string, number>)[attr] = Number(text);
        break;
    }
  }
  return { set, unset };
}

export function applyAttributeChange(old: NotificationAttributes | undefined, change: AttributeChange): NotificationAttributes {
  const out: Record<string, number> = { ...(old ?? {}) };
  for (const n of change.unset) delete out[n];
  for (const [k, v] of Object.entries(change.set)) if (v !== undefined) out[k] = v;
  return out as NotificationAttributes;
}

/** §7.4 consistency: lt < gt, lt + 2·st < gt, epmin < epmax. A string is the 4.00 diagnostic. */
export function attributeProblem(a: NotificationAttributes): string | undefined {
  if (a.lt !== undefined && a.gt !== undefined) {
    if (!(a.lt < a.gt)) return `lt (${a.lt}) must be less than gt (${a.gt})`;
    if (a.st !== undefined && !(a.lt + 2 * a.st < a.gt)) return `lt + 2·st (${a.lt} + 2·${a.st}) must be less than gt (${a.gt})`;
  }
  if (a.epmin !== undefined && a.epmax !== undefined && !(a.epmax > a.epmin)) return `epmax (${a.epmax}) must be greater than epmin (${a.epmin})`;
  return undefined;
}

export function attributeParams(a: NotificationAttributes | undefined): LinkParam[] {
  if (!a) return [];
  const out: LinkParam[] = [];
  for (const n of ATTRIBUTE_NAMES) {
    const v = a[n];
    if (v !== undefined) out.push({ name: n, value: String(v) });
  }
  return out;
}

/** Attributes written with Write-Attributes, per path (one server: no per-server sets). */
export class AttributeStore {
  private readonly byPath = new Map<string, NotificationAttributes>();

  get(path: Path): NotificationAttributes | undefined {
    return this.byPath.get(formatPath(path));
  }

  set(path: Path, attrs: NotificationAttributes): void {
    if (Object.keys(attrs).length === 0) this.byPath.delete(formatPath(path));
    else this.byPath.set(formatPath(path), attrs);
  }

  /** Forgets the attributes at and below `path` (a deleted instance). */
  removeUnder(path: Path): void {
    for (const key of [...this.byPath.keys()]) if (isPrefixOf(path, parsePath(key))) this.byPath.delete(key);
  }

  clear(): void {
    this.byPath.clear();
  }

  /** §7.4 precedence: the deepest level wins (object < instance < resource < resource instance). */
  effective(path: Path): NotificationAttributes {
    let out: NotificationAttributes = {};
    for (let n = 1; n <= path.length; n++) {
      const a = this.byPath.get(formatPath(path.slice(0, n)));
      if (a) out = { ...out, ...a };
    }
    return out;
  }

  entries(): [string, NotificationAttributes][] {
    return [...this.byPath];
  }
}

/** Does `path` name something Write-Attributes and Observe can target? Returns the refusal or the resource type. */
export function attributeTarget(model: DeviceModel, path: Path): { readonly refusal: DmAnswer } | { readonly resourceType?: string } {
  const r = readNode(model, path);
  if ('refusal' in r) return r;
  if (path.length < 3) return {};
  const m = resourceModel(model, path[0]!, path[2]!);
  return m ? { resourceType: m.type } : {};
}

export function dmWriteAttributes(model: DeviceModel, attrs: AttributeStore, path: Path, query: readonly string[]): DmAnswer {
  if (path.length === 0) return fail('4.05', 'Write-Attributes targets an object, instance, resource or resource instance');
  const t = attributeTarget(model, path);
  if ('refusal' in t) return t.refusal;
  const change = parseAttributeQuery(query, { level: path.length, lwm2mVersion: model.lwm2mVersion, ...(t.resourceType !== undefined ? { resourceType: t.resourceType } : {}) });
  if (typeof change === 'string') return fail('4.00', change);
  const next = applyAttributeChange(attrs.get(path), change);
  const problem = attributeProblem(next);
  if (problem !== undefined) return fail('4.00', problem);
  attrs.set(path, next);
  return { code: '2.04' };
}

// ---- Discover (§7.2) -------------------------------------------------------------------------

export function dmDiscover(model: DeviceModel, attrs: AttributeStore, path: Path, depthText: string | undefined): DmAnswer {
  if (path.length === 0 || path.length > 3) return fail('4.05', 'Discover targets an object, instance or resource');
  const oid = path[0]!;
  const sec = refuseSecurity(oid);
  if (sec) return sec;
  if (!model.supports(oid)) return fail('4.04', `object ${oid} is not supported`);
  let depth: number;
  if (model.lwm2mVersion === '1.2') {
    if (depthText !== undefined) {
      if (!/^[0-3]$/.test(depthText)) return fail('4.00', `depth=${JSON.stringify(depthText)} is not 0..3`);
      depth = Number(depthText);
    } else depth = path.length === 1 ? 2 : 1;
  } else depth = path.length === 1 ? 2 : path.length === 2 ? 1 : 0;
  const maxLevel = path.length + depth;
  let insts = sortedInstances(model, oid);
  if (path.length >= 2) {
    const inst = model.get(oid, path[1]!);
    if (!inst) return fail('4.04', `${formatPath(path.slice(0, 2))} does not exist`);
    insts = [inst];
  }
  const listed = (inst: ObjectInstance): number[] =>
    model.implementedResources(oid).filter((rid) => inst.resources.has(rid) || executable(model, oid, rid));
  if (path.length === 3) {
    const rid = path[2]!;
    if (!model.implementsResource(oid, rid) || !listed(insts[0]!).includes(rid)) return fail('4.04', `${formatPath(path)} does not exist`);
  }
  const links: Link[] = [];
  if (path.length === 1) {
    const ver = model.announcedVersion(oid);
    links.push({ uri: `/${oid}`, params: [...(ver !== undefined ? [{ name: 'ver', value: ver }] : []), ...attributeParams(attrs.get([oid]))] });
  }
  for (const inst of insts) {
    if (path.length <= 2 && maxLevel >= 2) links.push({ uri: `/${oid}/${inst.id}`, params: attributeParams(attrs.get([oid, inst.id])) });
    if (maxLevel < 3) continue;
    const rids = path.length === 3 ? [path[2]!] : listed(inst);
    for (const rid of rids) {
      const r = inst.resources.get(rid);
      const rp: Path = [oid, inst.id, rid];
      const dim: LinkParam[] = r?.kind === 'multiResource' ? [{ name: 'dim', value: String(r.instances.size) }] : [];
      links.push({ uri: formatPath(rp), params: [...dim, ...attributeParams(attrs.get(rp))] });
      if (maxLevel >= 4 && r?.kind === 'multiResource') {
        for (const ri of [...r.instances.keys()].sort((a, b) => a - b)) {
          links.push({ uri: formatPath([...rp, ri]), params: attributeParams(attrs.get([...rp, ri])) });
        }
      }
    }
  }
  return { code: '2.05', contentFormat: 40, payload: formatLinkFormat(links) };
}

// ---- values set by the simulator itself --------------------------------------------------------

/** A value for `setValue`: typed, or plain and converted to the resource's type. */
export type SimValue = Value | string | number | bigint | boolean | Uint8Array;

function isValue(v: SimValue): v is Value {
  return typeof v === 'object' && !(v instanceof Uint8Array) && v !== null && 'type' in v;
}

/** Converts a plain value to the type of `/oid/x/rid`; throws RangeError when it cannot. */
export function coerceValue(model: DeviceModel, oid: number, rid: number, v: SimValue): Value {
  if (isValue(v)) return v;
  const m = resourceModel(model, oid, rid);
  if (!m || m.type === 'none') throw new RangeError(`resource /${oid}/x/${rid} holds no value`);
  const bad = (): never => {
    throw new RangeError(`${typeof v} ${String(v)} is not a ${m.type} value for /${oid}/x/${rid}`);
  };
  try {
    switch (m.type) {
      case 'string':
        return typeof v === 'string' ? V.string(v) : bad();
      case 'integer':
      case 'unsigned':
      case 'time': {
        const n = typeof v === 'string' && /^-?[0-9]+$/.test(v) ? BigInt(v) : typeof v === 'number' || typeof v === 'bigint' ? v : bad();
        return m.type === 'integer' ? V.integer(n) : m.type === 'unsigned' ? V.unsigned(n) : V.time(n);
      }
      case 'float': {
        const x = typeof v === 'number' ? v : typeof v === 'string' && FLOAT.test(v) ? Number(v) : bad();
        return V.float(x);
      }
      case 'boolean':
        return typeof v === 'boolean' ? V.boolean(v) : v === 'true' || v === 'false' ? V.boolean(v === 'true') : bad();
      case 'opaque':
        return v instanceof Uint8Array ? V.opaque(v) : bad();
      case 'objlnk':
        if (typeof v !== 'string') return bad();
        {
          const l = parseObjlnk(v);
          return V.objlnk(l.objectId, l.instanceId);
        }
      case 'corelnk':
        return typeof v === 'string' ? V.corelnk(v) : bad();
    }
  } catch (e) {
    if (e instanceof CodecError) throw new RangeError(e.message);
    throw e;
  }
}
