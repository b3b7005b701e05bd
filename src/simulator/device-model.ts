/**
 * The simulated device's data model and the client side of every bootstrap operation, without
 * any I/O: the simulator (simulator.ts) parses CoAP requests and calls these methods; tests can
 * call them directly. Section numbers (§n) refer to the spec digest /work/shared/spec/bootstrap.md.
 *
 * What the device keeps: objects 0 Security, 1 Server, 2 Access Control (unless ACL support is
 * off), 3 Device and, for LwM2M 1.1+, 21 OSCORE, plus any `extraObjects` (e.g. 4, 5, or an
 * object whose model was added to the registry) — instances as immutable LwM2M nodes. Object
 * versions default to those of the enabler release (objects.md §1.1); resources a version does
 * not have, and resources the object model does not know, are ignored on write (§7: "unknown /
 * unsupported optional resources in the payload are ignored").
 *
 * Device management (registration.md) is in dm.ts; it uses the helpers here that say which
 * resources the device implements (`implementsResource`, `implementedResources`), whether a value
 * fits (`valueProblem`) and which object versions a Register announces (`announcedVersion`).
 *
 * Decisions where the spec leaves room (each repeated where it is coded):
 *  - Bootstrap-Read on a 1.0 device → 4.00: LwM2M 1.0 has no Bootstrap-Read (§1 table), so a GET
 *    that is not a Bootstrap-Discover is a malformed bootstrap request; 4.00 is also what Leshan
 *    and Wakaama answer for a Read target they refuse (§6). (4.05 would claim GET itself is not
 *    allowed, but GET is Bootstrap-Discover.)
 *  - Read of an object other than 1 and 2 → 4.00 (Leshan, Wakaama; §6).
 *  - Explicit `DELETE /0/{bs}` (and the BS account's OSCORE instance, and `/3/0`) → 4.00 as the
 *    Leshan client does (§8); `DELETE /`, `/0`, `/3`, `/21` skip them and answer 2.02.
 *  - Unknown object (or object 2 without ACL support) → 4.04 for Write, Delete, Discover, Read.
 *  - A Write to a resource the device does not have, named by a resource path → 4.04; inside an
 *    instance or object payload it is ignored (§7).
 *  - Un-bootstrapping (§8, Transport 1.2): on a 1.2 device, deleting a Security instance also
 *    deletes the Server instance with its SSID and its OSCORE instance, and cleans up the ACLs
 *    that server had (its own instances are deleted with their ACL, shared ones change owner).
 *    1.0/1.1 devices do not do it (the rule is 1.2 text; Leshan and Wakaama clients do not).
 */
import { loadObjectRegistry } from '../lwm2m/ddf.js';
import { CodecError } from '../lwm2m/errors.js';
import { codecFor, findCodec } from '../lwm2m/formats/index.js';
import { formatLinkFormat, type Link, type LinkParam } from '../lwm2m/linkformat.js';
import type { ModelLookup, ObjectRegistry } from '../lwm2m/model.js';
import { N, type LwM2MObject, type ObjectInstance, type Resource } from '../lwm2m/node.js';
import { formatPath, type Path } from '../lwm2m/path.js';
import { toBigInt, V, type ObjLnk, type Value } from '../lwm2m/value.js';

export type SimLwM2MVersion = '1.0' | '1.1' | '1.2';
export const SIM_LWM2M_VERSIONS: readonly SimLwM2MVersion[] = ['1.0', '1.1', '1.2'];

/**
 * Object versions of an enabler release (objects.md §1.1; OSCORE as the planner assumes: 1.1
 * with String keys for LwM2M 1.1, 2.0 with Opaque keys for 1.2). Discover shows `ver=` only for
 * an object whose version differs from this table (§5.1 rule 2).
 */
export const ENABLER_OBJECT_VERSIONS: Readonly<Record<SimLwM2MVersion, Readonly<Record<number, string>>>> = {
  '1.0': { 0: '1.0', 1: '1.0', 2: '1.0', 3: '1.0' },
  '1.1': { 0: '1.1', 1: '1.1', 2: '1.0', 3: '1.1', 21: '1.1' },
  '1.2': { 0: '1.2', 1: '1.2', 2: '1.0', 3: '1.1', 21: '2.0' },
};

/** Highest resource ID per object version, where versions differ in their resources (objects.md §1.1). */
const RESOURCE_LIMITS: Readonly<Record<number, Readonly<Record<string, number>>>> = {
  0: { '1.0': 12, '1.1': 17, '1.2': 30 },
  1: { '1.0': 8, '1.1': 23, '1.2': 27 },
  21: { '1.0': 5, '1.1': 6 },
};

/** Instance-capable write formats per version (§7 table); the task's defaults. */
export const DEFAULT_ACCEPT_FORMATS: Readonly<Record<SimLwM2MVersion, readonly number[]>> = {
  '1.0': [11542, 11543],
  '1.1': [11542, 112, 110],
  '1.2': [11542, 112, 110, 11544],
};

/** Single-resource formats (§7 table): text/plain and octet-stream, plus CBOR 60 from 1.1. */
export const DEFAULT_RESOURCE_FORMATS: Readonly<Record<SimLwM2MVersion, readonly number[]>> = {
  '1.0': [0, 42],
  '1.1': [0, 42, 60],
  '1.2': [0, 42, 60],
};

let registryPromise: Promise<ObjectRegistry> | undefined;

/** The shipped object registry, loaded once per process and shared by every simulator. */
export function sharedRegistry(): Promise<ObjectRegistry> {
  registryPromise ??= loadObjectRegistry().catch((e: unknown) => {
    registryPromise = undefined;
    throw e;
  });
  return registryPromise;
}

/** What an operation answers: a CoAP response code, and a payload (errors: diagnostic text). */
export interface OpResult {
  readonly code: string;
  readonly contentFormat?: number;
  readonly payload?: Uint8Array | string;
  /** Paths of resources a write ignored (not in the device's object version). */
  readonly ignored?: readonly string[];
}

const fail = (code: string, diagnostic: string): OpResult => ({ code, payload: diagnostic });

export interface DeviceModelOptions {
  readonly lwm2mVersion: SimLwM2MVersion;
  readonly aclSupport: boolean;
  readonly oscoreSupport: boolean;
  /** Object versions that differ from the enabler's (shown with `ver=` in Discover). */
  readonly objectVersions?: Readonly<Record<number, string>>;
  /** Instance-capable formats the device decodes (others → 4.15). */
  readonly acceptFormats: readonly number[];
  /** Formats additionally accepted on resource paths. */
  readonly resourceFormats: readonly number[];
  /**
   * Objects beyond 0, 1, 2, 3 and 21 the device implements (e.g. 4, 5, or an object of a model
   * added to the registry), at the registry's latest version unless `objectVersions` names one.
   */
  readonly extraObjects?: readonly number[];
}

/** Settings shared by a model and its clones. */
interface Shape {
  readonly opts: DeviceModelOptions;
  readonly registry: ObjectRegistry;
  readonly versions: ReadonlyMap<number, string>;
  readonly models: ModelLookup;
  readonly supported: readonly number[];
}

/** A value problem found while sanitising written data; answered 4.00 (§7: values must be valid). */
class InvalidData extends Error {}

// ---- value helpers ---------------------------------------------------------------------------

export function single(inst: ObjectInstance | undefined, rid: number): Value | undefined {
  const r = inst?.resources.get(rid);
  return r?.kind === 'resource' ? r.value : undefined;
}

export function intOf(inst: ObjectInstance | undefined, rid: number): number | undefined {
  const v = single(inst, rid);
  if (v === undefined) return undefined;
  if (v.type === 'integer' || v.type === 'unsigned' || v.type === 'time') return Number(v.value);
  return undefined;
}

export function boolOf(inst: ObjectInstance | undefined, rid: number): boolean | undefined {
  const v = single(inst, rid);
  return v?.type === 'boolean' ? v.value : undefined;
}

export function stringOf(inst: ObjectInstance | undefined, rid: number): string | undefined {
  const v = single(inst, rid);
  return v?.type === 'string' ? v.value : undefined;
}

export function bytesOf(inst: ObjectInstance | undefined, rid: number): Uint8Array | undefined {
  const v = single(inst, rid);
  if (v?.type === 'opaque') return v.value;
  if (v?.type === 'string') return new TextEncoder().encode(v.value);
  return undefined;
}

export function objlnkOf(inst: ObjectInstance | undefined, rid: number): ObjLnk | undefined {
  const v = single(inst, rid);
  return v?.type === 'objlnk' ? v.value : undefined;
}

function isBsAccount(inst: ObjectInstance): boolean {
  return boolOf(inst, 1) === true;
}

// ---- the model -------------------------------------------------------------------------------

export class DeviceModel {
  private readonly shape: Shape;
  private readonly data: Map<number, Map<number, ObjectInstance>>;

  private constructor(shape: Shape, data: Map<number, Map<number, ObjectInstance>>) {
    this.shape = shape;
    this.data = data;
  }

  /** An empty device (no instances) implementing the objects and versions `opts` describe. */
  static create(registry: ObjectRegistry, opts: DeviceModelOptions): DeviceModel {
    const versions = new Map<number, string>(Object.entries(ENABLER_OBJECT_VERSIONS[opts.lwm2mVersion]).map(([k, v]) => [Number(k), v]));
    for (const [k, v] of Object.entries(opts.objectVersions ?? {})) versions.set(Number(k), v);
    const supported = [0, 1, 3];
    if (opts.aclSupport) supported.push(2);
    if (opts.oscoreSupport && opts.lwm2mVersion !== '1.0') supported.push(21);
    for (const oid of opts.extraObjects ?? []) {
      if (supported.includes(oid)) continue;
      if (!registry.get(oid)) throw new RangeError(`extraObjects: object ${oid} is not in the object registry`);
      supported.push(oid);
    }
    supported.sort((x, y) => x - y);
    const shape: Shape = { opts, registry, versions, models: registry.withVersions(versions), supported };
    return new DeviceModel(shape, new Map(supported.map((oid) => [oid, new Map<number, ObjectInstance>()])));
  }

  get lwm2mVersion(): SimLwM2MVersion {
    return this.shape.opts.lwm2mVersion;
  }

  get aclSupport(): boolean {
    return this.shape.opts.aclSupport;
  }

  /** Model lookup at the device's object versions (for codecs). */
  get models(): ModelLookup {
    return this.shape.models;
  }

  get acceptFormats(): readonly number[] {
    return this.shape.opts.acceptFormats;
  }

  /** Formats additionally accepted (and produced) on resource paths. */
  get resourceFormats(): readonly number[] {
    return this.shape.opts.resourceFormats;
  }

  /** Object IDs the device implements, ascending. */
  get supportedObjects(): readonly number[] {
    return this.shape.supported;
  }

  supports(oid: number): boolean {
    return this.data.has(oid);
  }

  objectVersion(oid: number): string | undefined {
    return this.shape.versions.get(oid);
  }

  /**
   * The `ver=` a Register announces for `oid` (registration.md §2.2), or undefined: core objects
   * carry it when their version differs from the enabler's default, other objects when it is
   * not 1.0.
   */
  announcedVersion(oid: number): string | undefined {
    const ver = this.objectVersion(oid) ?? this.shape.models.object(oid)?.version;
    if (ver === undefined) return undefined;
    const enabler = ENABLER_OBJECT_VERSIONS[this.lwm2mVersion][oid];
    if (enabler !== undefined || oid <= 3 || oid === 21) return ver !== enabler ? ver : undefined;
    return ver !== '1.0' ? ver : undefined;
  }

  /** A copy whose instance maps can change independently (instances are immutable nodes). */
  clone(): DeviceModel {
    return new DeviceModel(this.shape, new Map([...this.data].map(([oid, m]) => [oid, new Map(m)])));
  }

  /** Takes over the data of `other` (a clone of this model). */
  replaceWith(other: DeviceModel): void {
    this.data.clear();
    for (const [oid, m] of other.data) this.data.set(oid, new Map(m));
  }

  instances(oid: number): ReadonlyMap<number, ObjectInstance> {
    return this.data.get(oid) ?? new Map();
  }

  get(oid: number, iid: number): ObjectInstance | undefined {
    return this.data.get(oid)?.get(iid);
  }

  /** Puts an instance as is (no sanitising); for seeding. Unsupported objects are refused. */
  set(oid: number, inst: ObjectInstance): void {
    const m = this.data.get(oid);
    if (!m) throw new Error(`object ${oid} is not supported by this simulated device`);
    m.set(inst.id, inst);
  }

  remove(oid: number, iid: number): boolean {
    return this.data.get(oid)?.delete(iid) ?? false;
  }

  /** Every object with its instances (ascending IDs), as nodes. */
  snapshot(): Map<number, LwM2MObject> {
    const out = new Map<number, LwM2MObject>();
    for (const oid of this.shape.supported) {
      const m = this.data.get(oid)!;
      out.set(oid, N.object(oid, [...m.values()].sort((x, y) => x.id - y.id)));
    }
    return out;
  }

  /** The bootstrap account: the Security instance with Bootstrap-Server = true (the first one). */
  bootstrapAccount(): ObjectInstance | undefined {
    for (const inst of this.sortedInstances(0)) if (isBsAccount(inst)) return inst;
    return undefined;
  }

  private sortedInstances(oid: number): ObjectInstance[] {
    return [...this.instances(oid).values()].sort((x, y) => x.id - y.id);
  }

  /**
   * Instances no Delete removes (§8): the BS account's Security instance, from 1.1 the OSCORE
   * instance it links to (`/0/x/17`), and `/3/0`.
   */
  isProtected(oid: number, iid: number): boolean {
    if (oid === 3) return iid === 0;
    if (oid === 0) {
      const inst = this.get(0, iid);
      return inst !== undefined && isBsAccount(inst);
    }
    if (oid === 21 && this.lwm2mVersion !== '1.0') {
      for (const inst of this.instances(0).values()) {
        if (!isBsAccount(inst)) continue;
        const l = objlnkOf(inst, 17);
        if (l && l.objectId === 21 && l.instanceId === iid) return true;
      }
    }
    return false;
  }

  // ---- Bootstrap-Discover (§5) ---------------------------------------------------------------

  discover(path: Path): OpResult {
    // §5: the target is / or /{oid}; instance and resource paths are invalid → 4.00.
    if (path.length > 1) return fail('4.00', 'Bootstrap-Discover targets / or /{object ID} only');
    const oids = path.length === 0 ? this.shape.supported : [path[0]!];
    if (path.length === 1 && !this.supports(path[0]!)) return fail('4.04', `object ${path[0]} is not supported`);
    const links: Link[] = [];
    // §5.1 rule 1: `</>;lwm2m=1.x` first; a 1.0 client sends the bare `lwm2m="1.0"` header.
    if (this.lwm2mVersion === '1.0') links.push({ uri: '', bare: true, params: [{ name: 'lwm2m', value: '1.0', quoted: true }] });
    else links.push({ uri: '/', params: [{ name: 'lwm2m', value: this.lwm2mVersion }] });
    for (const oid of oids) {
      const insts = this.sortedInstances(oid);
      const ver = this.objectVersion(oid);
      const needsVer = ver !== undefined && ver !== ENABLER_OBJECT_VERSIONS[this.lwm2mVersion][oid];
      // §5.1 rule 2: an object link when the object has no instances or carries `ver`.
      if (insts.length === 0 || needsVer) links.push({ uri: `/${oid}`, params: needsVer ? [{ name: 'ver', value: ver }] : [] });
      for (const inst of insts) links.push({ uri: `/${oid}/${inst.id}`, params: this.discoverParams(oid, inst) });
    }
    return { code: '2.05', contentFormat: 40, payload: formatLinkFormat(links) };
  }

  /** §5.1 rule 3: `ssid` (+ quoted `uri` from 1.1) on DM Security instances, `ssid` on Server and OSCORE. */
  private discoverParams(oid: number, inst: ObjectInstance): LinkParam[] {
    const params: LinkParam[] = [];
    if (oid === 0 && !isBsAccount(inst)) {
      const ssid = intOf(inst, 10);
      if (ssid !== undefined) params.push({ name: 'ssid', value: String(ssid) });
      const uri = stringOf(inst, 0);
      if (uri !== undefined && this.lwm2mVersion !== '1.0') params.push({ name: 'uri', value: uri, quoted: true });
    } else if (oid === 1) {
      const ssid = intOf(inst, 0);
      if (ssid !== undefined) params.push({ name: 'ssid', value: String(ssid) });
    } else if (oid === 21) {
      for (const sec of this.sortedInstances(0)) {
        if (isBsAccount(sec)) continue;
        const l = objlnkOf(sec, 17);
        const ssid = intOf(sec, 10);
        if (l && l.objectId === 21 && l.instanceId === inst.id && ssid !== undefined) {
          params.push({ name: 'ssid', value: String(ssid) });
          break;
        }
      }
    }
    return params;
  }

  // ---- Bootstrap-Read (§6) -------------------------------------------------------------------

  read(path: Path, accept: number | undefined): OpResult {
    // Decision (module comment): 1.0 has no Bootstrap-Read; a GET that is not a Discover → 4.00.
    if (this.lwm2mVersion === '1.0') return fail('4.00', 'LwM2M 1.0 has no Bootstrap-Read; only Bootstrap-Discover (Accept: 40)');
    const oid = path[0];
    // §6: only /1, /1/x, /2, /2/x (Leshan and Wakaama answer 4.00 for other targets).
    if (oid === undefined || (oid !== 1 && oid !== 2) || path.length > 2) {
      return fail('4.00', 'Bootstrap-Read targets /1, /1/{iid}, /2 or /2/{iid} only');
    }
    if (!this.supports(oid)) return fail('4.04', `object ${oid} is not supported`);
    let node: LwM2MObject | ObjectInstance;
    if (path.length === 1) node = N.object(oid, this.sortedInstances(oid));
    else {
      const inst = this.get(oid, path[1]!);
      if (!inst) return fail('4.04', `${formatPath(path)} does not exist`);
      node = inst;
    }
    const cf = accept ?? this.acceptFormats[0];
    // §6 response codes: 4.06 when no acceptable format.
    if (cf === undefined || !this.acceptFormats.includes(cf) || !findCodec(cf)) {
      return fail('4.06', `cannot answer in Content-Format ${accept ?? '(none)'}; accepted: ${this.acceptFormats.join(', ')}`);
    }
    try {
      return { code: '2.05', contentFormat: cf, payload: codecFor(cf).encode(path, node) };
    } catch (e) {
      if (e instanceof CodecError) return fail('4.06', e.message);
      throw e;
    }
  }

  // ---- Bootstrap-Write (§7) ------------------------------------------------------------------

  write(path: Path, contentFormat: number | undefined, payload: Uint8Array): OpResult {
    // §7: not allowed on the root and on resource-instance paths (Anjay: 4.05).
    if (path.length === 0) return fail('4.05', 'Bootstrap-Write on / is not allowed');
    if (path.length > 3) return fail('4.05', 'Bootstrap-Write on a resource instance is not allowed');
    const oid = path[0]!;
    if (!this.supports(oid)) return fail('4.04', `object ${oid} is not supported`);
    if (contentFormat === undefined) return fail('4.00', 'Bootstrap-Write needs a Content-Format');
    const allowed = path.length === 3 ? [...this.acceptFormats, ...this.shape.opts.resourceFormats] : this.acceptFormats;
    // §7 response codes: 4.15 for a Content-Format the device does not support (here: for this target).
    if (!allowed.includes(contentFormat) || !findCodec(contentFormat)) {
      return fail('4.15', `Content-Format ${contentFormat} is not supported for ${formatPath(path)}`);
    }
    const model = this.shape.models.object(oid);
    if (path.length >= 2 && model && !model.multiple && path[1] !== 0) {
      return fail('4.00', `object ${oid} is single-instance`);
    }
    let node;
    try {
      node = codecFor(contentFormat).decode(path, payload, this.shape.models);
    } catch (e) {
      // §7: 4.00 when the data format or content is wrong.
      if (e instanceof CodecError) return fail('4.00', e.message);
      throw e;
    }
    const ignored: string[] = [];
    try {
      switch (node.kind) {
        case 'object': {
          // Whole-object write (bootstrap only): each instance given is created or replaced; all
          // are checked before any is stored, so a refused write changes nothing.
          const insts: ObjectInstance[] = [];
          for (const inst of node.instances.values()) {
            if (model && !model.multiple && inst.id !== 0) throw new InvalidData(`object ${oid} is single-instance`);
            insts.push(this.sanitize(oid, inst, ignored));
          }
          for (const inst of insts) this.data.get(oid)!.set(inst.id, inst);
          break;
        }
        case 'instance':
          // §7 semantics: the instance is created or REPLACED (Leshan: Write REPLACE).
          this.data.get(oid)!.set(node.id, this.sanitize(oid, node, ignored));
          break;
        case 'resource':
        case 'multiResource': {
          if (!this.supportsResource(oid, node.id)) return fail('4.04', `resource ${formatPath(path)} is not supported`);
          const res = this.sanitizeResource(oid, path[1]!, node);
          const iid = path[1]!;
          const old = this.get(oid, iid);
          const resources = new Map<number, Resource>(old?.resources ?? []);
          resources.set(res.id, res);
          // A resource write on a missing instance creates it (§7).
          this.data.get(oid)!.set(iid, N.instance(iid, [...resources.values()].sort((x, y) => x.id - y.id)));
          break;
        }
        default:
          return fail('4.05', 'Bootstrap-Write on a resource instance is not allowed');
      }
    } catch (e) {
      if (e instanceof InvalidData) return fail('4.00', e.message);
      throw e;
    }
    return ignored.length > 0 ? { code: '2.04', ignored } : { code: '2.04' };
  }

  /**
   * Does the device's version of object `oid` have resource `rid` at all (value-carrying or
   * executable)? Discover lists these; Execute needs one.
   */
  implementsResource(oid: number, rid: number): boolean {
    if (!this.supports(oid)) return false;
    const r = this.shape.models.resource(oid, rid);
    if (!r) return false;
    const ver = this.objectVersion(oid);
    const limit = ver !== undefined ? RESOURCE_LIMITS[oid]?.[ver] : undefined;
    return limit === undefined || rid <= limit;
  }

  /** Resource IDs of `oid` the device implements (values and executables), ascending. */
  implementedResources(oid: number): number[] {
    const m = this.shape.models.object(oid);
    if (!m || !this.supports(oid)) return [];
    return [...m.resources.keys()].filter((rid) => this.implementsResource(oid, rid)).sort((a, b) => a - b);
  }

  /**
   * Why `r` cannot be stored at `/oid/iid/r.id` (wrong multiplicity, type or range), or
   * undefined when it can. Used by device management writes (answered 4.00).
   */
  valueProblem(oid: number, iid: number, r: Resource): string | undefined {
    if (!this.supportsResource(oid, r.id)) return `${formatPath([oid, iid, r.id])} is not supported`;
    try {
      this.sanitizeResource(oid, iid, r);
      return undefined;
    } catch (e) {
      if (e instanceof InvalidData) return e.message;
      throw e;
    }
  }

  /** Does the device's version of object `oid` have resource `rid` (a value-carrying one)? */
  supportsResource(oid: number, rid: number): boolean {
    const r = this.shape.models.resource(oid, rid);
    if (!r || r.type === 'none') return false;
    const ver = this.objectVersion(oid);
    const limit = ver !== undefined ? RESOURCE_LIMITS[oid]?.[ver] : undefined;
    return limit === undefined || rid <= limit;
  }

  /** The instance with unsupported resources dropped (listed in `ignored`) and values checked. */
  private sanitize(oid: number, inst: ObjectInstance, ignored: string[]): ObjectInstance {
    const kept: Resource[] = [];
    for (const r of inst.resources.values()) {
      if (!this.supportsResource(oid, r.id)) {
        ignored.push(formatPath([oid, inst.id, r.id]));
        continue;
      }
      kept.push(this.sanitizeResource(oid, inst.id, r));
    }
    return N.instance(inst.id, kept.sort((x, y) => x.id - y.id));
  }

  private sanitizeResource(oid: number, iid: number, r: Resource): Resource {
    const m = this.shape.models.resource(oid, r.id)!;
    const where = formatPath([oid, iid, r.id]);
    if (m.multiple && r.kind === 'resource') throw new InvalidData(`${where} is a multiple-instance resource`);
    if (!m.multiple && r.kind === 'multiResource') throw new InvalidData(`${where} is a single-instance resource`);
    const values = r.kind === 'resource' ? [r.value] : [...r.instances.values()];
    for (const v of values) {
      if (v.type !== m.type) throw new InvalidData(`${where} holds ${m.type} values, got ${v.type}`);
      if (m.range && (v.type === 'integer' || v.type === 'unsigned' || v.type === 'time')) {
        const b = toBigInt(v.value);
        // Range limits come from the DDF as JS numbers; compare exactly as bigints when integral.
        const lo = Number.isInteger(m.range.min) ? BigInt(m.range.min) : undefined;
        const hi = Number.isInteger(m.range.max) ? BigInt(m.range.max) : undefined;
        if ((lo !== undefined && b < lo) || (hi !== undefined && b > hi)) {
          throw new InvalidData(`${where}: ${b} is outside ${m.rangeEnumeration}`);
        }
      }
    }
    return r;
  }

  // ---- Bootstrap-Delete (§8) -----------------------------------------------------------------

  delete(path: Path): OpResult {
    // §8: resource and resource-instance paths are invalid → 4.00.
    if (path.length > 2) return fail('4.00', 'Bootstrap-Delete targets /, /{oid} or /{oid}/{iid}');
    if (path.length === 0) {
      for (const oid of this.shape.supported) this.deleteObject(oid);
      return { code: '2.02' };
    }
    const oid = path[0]!;
    if (!this.supports(oid)) return fail('4.04', `object ${oid} is not supported`);
    if (path.length === 1) {
      this.deleteObject(oid);
      return { code: '2.02' };
    }
    const iid = path[1]!;
    if (!this.get(oid, iid)) return fail('4.04', `${formatPath(path)} does not exist`);
    // §8: an explicit delete of the BS account (or its OSCORE instance, or /3/0): Leshan's 4.00.
    if (this.isProtected(oid, iid)) return fail('4.00', `${formatPath(path)} cannot be deleted`);
    this.deleteInstance(oid, iid);
    return { code: '2.02' };
  }

  /** Deletes every instance of `oid` except the protected ones (§8: skipped, still 2.02). */
  private deleteObject(oid: number): void {
    for (const iid of [...this.instances(oid).keys()].sort((a, b) => a - b)) {
      if (this.get(oid, iid) && !this.isProtected(oid, iid)) this.deleteInstance(oid, iid);
    }
  }

  private deleteInstance(oid: number, iid: number): void {
    const inst = this.get(oid, iid);
    if (!inst) return;
    this.remove(oid, iid);
    if (oid === 0 && this.lwm2mVersion === '1.2' && !isBsAccount(inst)) this.unbootstrap(inst);
  }

  /**
   * §8 "Deleting a Security instance is un-bootstrapping" (Transport 1.2): (1) the Server instance
   * with the same SSID (and the OSCORE instance of the account); (2) instances only that server
   * could access (it owns the ACL, no other server has an entry) with their ACL instances;
   * (3) elsewhere its ACL entry goes, and when it owned the instance the server with the highest
   * score (W and D count 1 each; ties: lowest SSID) becomes the owner.
   */
  private unbootstrap(security: ObjectInstance): void {
    const ssid = intOf(security, 10);
    const oscore = objlnkOf(security, 17);
    if (oscore && oscore.objectId === 21 && this.get(21, oscore.instanceId) && !this.isProtected(21, oscore.instanceId)) {
      this.remove(21, oscore.instanceId);
    }
    if (ssid === undefined) return;
    for (const [iid, srv] of [...this.instances(1)]) if (intOf(srv, 0) === ssid) this.remove(1, iid);
    for (const [iid, acl] of [...this.instances(2)]) {
      const rightsRes = acl.resources.get(2);
      const rights = new Map(rightsRes?.kind === 'multiResource' ? rightsRes.instances : []);
      const owner = intOf(acl, 3);
      const others = [...rights.keys()].filter((s) => s !== ssid && s !== 0);
      if (owner === ssid && others.length === 0) {
        this.remove(2, iid);
        const target = [intOf(acl, 0), intOf(acl, 1)] as const;
        if (target[0] !== undefined && target[1] !== undefined && this.get(target[0], target[1]) && !this.isProtected(target[0], target[1]) && target[0] !== 2) {
          this.deleteInstance(target[0], target[1]);
        }
        continue;
      }
      if (!rights.has(ssid) && owner !== ssid) continue;
      rights.delete(ssid);
      const resources = new Map<number, Resource>(acl.resources);
      resources.set(2, N.multi(2, [...rights].sort((x, y) => x[0] - y[0])));
      if (owner === ssid) {
        const score = (s: number): number => {
          const v = rights.get(s);
          const mask = v && (v.type === 'integer' || v.type === 'unsigned') ? Number(v.value) : 0;
          return ((mask & 2) !== 0 ? 1 : 0) + ((mask & 8) !== 0 ? 1 : 0);
        };
        const best = [...others].sort((x, y) => score(y) - score(x) || x - y)[0]!;
        resources.set(3, N.resource(3, V.integer(best)));
      }
      this.data.get(2)!.set(iid, N.instance(iid, [...resources.values()].sort((x, y) => x.id - y.id)));
    }
  }

  // ---- Bootstrap-Finish consistency (§9) -----------------------------------------------------

  /**
   * Why the loaded configuration is unusable (§9, 4.06 "inconsistent loaded configuration"), or
   * an empty list: more than one BS account; a DM Security instance without SSID, URI or usable
   * key material (psk: identity and key; rpk/x509: own key, private key, server key); duplicate
   * SSIDs; a Security instance without a Server instance of its SSID or vice versa; a missing
   * mandatory resource; an OSCORE link to a missing instance; ACL instances on a device without
   * ACL support; no usable server account at all.
   */
  consistencyProblems(): string[] {
    const problems: string[] = [];
    const sec = this.sortedInstances(0);
    const bs = sec.filter(isBsAccount);
    if (bs.length > 1) problems.push(`more than one Bootstrap-Server account (${bs.map((i) => `/0/${i.id}`).join(', ')})`);
    for (const oid of [0, 1, 2, 21]) {
      for (const inst of this.sortedInstances(oid)) {
        const missing = this.missingMandatory(oid, inst);
        if (missing.length > 0) problems.push(`/${oid}/${inst.id} lacks mandatory resource(s) ${missing.join(', ')}`);
      }
    }
    const secBySsid = new Map<number, number>();
    for (const inst of sec) {
      if (isBsAccount(inst)) continue;
      const where = `Security /0/${inst.id}`;
      const ssid = intOf(inst, 10);
      if (ssid === undefined) problems.push(`${where} has no Short Server ID`);
      else if (secBySsid.has(ssid)) problems.push(`SSID ${ssid} is used by Security /0/${secBySsid.get(ssid)} and /0/${inst.id}`);
      else secBySsid.set(ssid, inst.id);
      if (!stringOf(inst, 0)) problems.push(`${where} has no server URI`);
      const mode = intOf(inst, 2);
      const empty = (rid: number): boolean => (bytesOf(inst, rid)?.length ?? 0) === 0;
      switch (mode) {
        case 0:
          if (empty(3) || empty(5)) problems.push(`${where} is a PSK account with an empty identity or key`);
          break;
        case 1:
        case 2:
          if (empty(3) || empty(5) || empty(4)) problems.push(`${where} (${mode === 1 ? 'RPK' : 'X.509'}) lacks its own key, private key or the server's key`);
          break;
        case 3:
          break;
        default:
          problems.push(`${where} has security mode ${mode ?? '(none)'}, which this device cannot use`);
      }
      const l = objlnkOf(inst, 17);
      if (l && !(l.objectId === 21 && this.get(21, l.instanceId))) problems.push(`${where} links to OSCORE ${l.objectId}:${l.instanceId}, which does not exist`);
    }
    const srvBySsid = new Map<number, number>();
    for (const inst of this.sortedInstances(1)) {
      const ssid = intOf(inst, 0);
      if (ssid === undefined) continue; // reported as a missing mandatory resource
      if (srvBySsid.has(ssid)) problems.push(`SSID ${ssid} is used by Server /1/${srvBySsid.get(ssid)} and /1/${inst.id}`);
      else srvBySsid.set(ssid, inst.id);
      if (!secBySsid.has(ssid)) problems.push(`Server /1/${inst.id} (SSID ${ssid}) has no Security instance`);
    }
    for (const [ssid, iid] of secBySsid) if (!srvBySsid.has(ssid)) problems.push(`Security /0/${iid} (SSID ${ssid}) has no Server instance`);
    if (!this.aclSupport && this.instances(2).size > 0) problems.push('ACL instances on a device without access control');
    const pairs = [...secBySsid.keys()].filter((s) => srvBySsid.has(s)).length;
    if (pairs === 0) problems.push('no usable LwM2M Server account');
    return problems;
  }

  private missingMandatory(oid: number, inst: ObjectInstance): number[] {
    const m = this.shape.models.object(oid);
    if (!m) return [];
    const out: number[] = [];
    for (const r of m.resources.values()) {
      if (r.mandatory && this.supportsResource(oid, r.id) && !inst.resources.has(r.id)) out.push(r.id);
    }
    return out;
  }

  // ---- Bootstrap-Pack (§3) -------------------------------------------------------------------

  /**
   * Applies a Bootstrap-Pack (§3): for every object in the pack the existing instances go (the BS
   * account, its OSCORE instance and /3/0 stay) and the pack's instances are created or replace
   * same-ID ones; unknown optional resources are ignored. Applied only when the result is
   * consistent (else "C MUST retry with Bootstrap-Request"); returns the problems, if any.
   */
  applyPack(objects: readonly LwM2MObject[]): { problems: string[]; ignored: string[] } {
    const next = this.clone();
    const problems: string[] = [];
    const ignored: string[] = [];
    for (const obj of objects) {
      if (!next.supports(obj.id)) {
        problems.push(obj.id === 2 ? 'ACL instances on a device without access control' : `object ${obj.id} is not supported`);
        continue;
      }
      for (const iid of [...next.instances(obj.id).keys()]) if (!next.isProtected(obj.id, iid)) next.remove(obj.id, iid);
      const model = this.shape.models.object(obj.id);
      for (const inst of obj.instances.values()) {
        if (model && !model.multiple && inst.id !== 0) {
          problems.push(`object ${obj.id} is single-instance`);
          continue;
        }
        try {
          next.data.get(obj.id)!.set(inst.id, next.sanitize(obj.id, inst, ignored));
        } catch (e) {
          if (e instanceof InvalidData) problems.push(e.message);
          else throw e;
        }
      }
    }
    if (problems.length === 0) problems.push(...next.consistencyProblems());
    if (problems.length === 0) this.replaceWith(next);
    return { problems, ignored };
  }
}
