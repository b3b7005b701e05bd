/**
 * From a device-management request (types.ts) to the CoAP request for one registered client, and
 * from the client's answer back to values: pure functions, no I/O (registration.md §7).
 *
 * Validation happens here, before anything is queued, so an operator's mistake is a clear error
 * naming the field instead of a 4.xx from the device minutes later (a queue-mode device may be
 * asleep): path levels per operation (§7.1), the Security (/0) and OSCORE (/21) objects that a
 * client never lets a management server touch (4.01), values against the resource's type and
 * operations from the object model, attribute syntax and the `lt < gt`, `lt + 2*st < gt` rule
 * (§7.4), Execute arguments (§7.3, printable ASCII).
 *
 * Formats (formats.md §1: "honour what the client announced, otherwise TLV for 1.0 clients and
 * SenML CBOR/JSON for 1.1+"): a single value goes as text/plain (opaque as octet-stream) to 1.1+
 * clients, which must support both, and as TLV to 1.0 clients, which must support TLV; values of
 * several resources go in the first format of the client's `ct=` list that can carry them, then in
 * the version's defaults. The caller walks the list: a 4.15 answer moves to the next format.
 */
import { isComposite } from '../../lwm2m/codec.js';
import { CodecError } from '../../lwm2m/errors.js';
import { ContentFormat, findCodec } from '../../lwm2m/formats/index.js';
import { compareVersions, type ModelLookup } from '../../lwm2m/model.js';
import { nodeToRecords, recordsToNode, type LeafRecord, type LwM2MNode } from '../../lwm2m/node.js';
import { formatPath, isPrefixOf, parsePath, type Path } from '../../lwm2m/path.js';
import { looseToValue, valueToJson, type LooseValue } from '../../lwm2m/value-json.js';
import type { CoapMethod } from '../../coap/message.js';
import { DmError, type DmRequest, type PathValue } from './types.js';

/** What a request needs to know about the client it goes to. */
export interface ClientInfo {
  readonly lwm2mVersion: string;
  /** `ct=` of the root link in the Register payload; null when none was announced. */
  readonly contentFormats: readonly number[] | null;
  /** Types and operations of the client's objects (at the versions it registered). */
  readonly models: ModelLookup;
}

/** A payload in one Content-Format. */
export interface Body {
  readonly contentFormat: number;
  readonly payload: Uint8Array;
}

export interface PreparedRequest {
  readonly path: Path;
  readonly method: CoapMethod;
  /** Uri-Query options, one per entry. */
  readonly query: readonly string[];
  readonly accept?: number;
  /** 0 (register) or 1 (deregister) for Observe; absent otherwise. */
  readonly observe?: 0 | 1;
  /** Payloads to try in order (a 4.15 answer moves to the next); empty: no payload. */
  readonly bodies: readonly Body[];
}

/** Formats able to carry several values, best first, per LwM2M version (when the client announced none). */
const RICH_DEFAULTS: Readonly<Record<string, readonly number[]>> = {
  '1.0': [ContentFormat.TLV, ContentFormat.LWM2M_JSON],
  '1.1': [ContentFormat.SENML_CBOR, ContentFormat.SENML_JSON, ContentFormat.TLV],
  '1.2': [ContentFormat.SENML_CBOR, ContentFormat.LWM2M_CBOR, ContentFormat.SENML_JSON, ContentFormat.TLV],
};
const RICH = new Set<number>([ContentFormat.TLV, ContentFormat.SENML_CBOR, ContentFormat.SENML_JSON, ContentFormat.LWM2M_CBOR, ContentFormat.LWM2M_JSON]);

/** Notification and Write-Attributes attributes (§7.4), with the LwM2M version that introduced each. */
const ATTRIBUTES: Readonly<Record<string, { readonly kind: 'int' | 'float' | 'bit'; readonly since: string }>> = {
  pmin: { kind: 'int', since: '1.0' },
  pmax: { kind: 'int', since: '1.0' },
  gt: { kind: 'float', since: '1.0' },
  lt: { kind: 'float', since: '1.0' },
  st: { kind: 'float', since: '1.0' },
  epmin: { kind: 'int', since: '1.1' },
  epmax: { kind: 'int', since: '1.1' },
  edge: { kind: 'bit', since: '1.2' },
  con: { kind: 'bit', since: '1.2' },
  hqmax: { kind: 'int', since: '1.2' },
};

const invalid = (message: string): never => {
  throw new DmError('invalid', message);
};

/** Parses an absolute LwM2M path (`/3/0/1`) for a request; `field` names it in errors. */
export function parseRequestPath(text: unknown, field = 'path'): Path {
  if (typeof text !== 'string') return invalid(`${field} must be a string like /3/0/1`);
  try {
    return parsePath(text);
  } catch (e) {
    return invalid(`${field} ${JSON.stringify(text)} is not an LwM2M path like /3/0/1${e instanceof Error ? `: ${e.message}` : ''}`);
  }
}

function levels(op: string, path: Path, min: number, max: number, what: string): void {
  if (path.length < min || path.length > max) invalid(`${op} targets ${what}, not ${formatPath(path)}`);
}

function refuseSecurityObjects(op: string, path: Path): void {
  if (path[0] === 0 || path[0] === 21) {
    invalid(`${op} ${formatPath(path)}: clients refuse the ${path[0] === 0 ? 'Security' : 'OSCORE'} object to a management server (4.01); change it through a bootstrap profile`);
  }
}

const atLeast = (version: string, min: string): boolean => compareVersions(version, min) >= 0;

/** The formats to try for a write of `node` at `path`, best first. */
export function writeFormats(client: ClientInfo, node: LwM2MNode, forced: number | undefined): number[] {
  if (forced !== undefined) {
    if (findCodec(forced) === undefined) invalid(`format ${forced} is not a Content-Format lwbs can encode`);
    return [forced];
  }
  const single = node.kind === 'resource' || node.kind === 'resourceInstance';
  const v11 = atLeast(client.lwm2mVersion, '1.1');
  const out: number[] = [];
  if (single && v11) {
    // 1.1+ clients must support text/plain and octet-stream (formats.md §1).
    out.push(node.value.type === 'opaque' ? ContentFormat.OPAQUE : ContentFormat.TEXT);
  }
  const announced = (client.contentFormats ?? []).filter((cf) => RICH.has(cf));
  const defaults = RICH_DEFAULTS[client.lwm2mVersion] ?? RICH_DEFAULTS['1.1']!;
  for (const cf of [...announced, ...defaults]) if (!out.includes(cf)) out.push(cf);
  if (single && !v11) out.push(node.value.type === 'opaque' ? ContentFormat.OPAQUE : ContentFormat.TEXT);
  return out;
}

/** Encodes `node` in each format that can carry it (formats that cannot are skipped). */
function encodeAll(path: Path, node: LwM2MNode, formats: readonly number[]): Body[] {
  const bodies: Body[] = [];
  let lastError: unknown;
  for (const cf of formats) {
    const codec = findCodec(cf);
    if (!codec) continue;
    try {
      bodies.push({ contentFormat: cf, payload: codec.encode(path, node) });
    } catch (e) {
      if (!(e instanceof CodecError)) throw e;
      lastError = e;
    }
  }
  if (bodies.length === 0) invalid(`cannot encode the value for ${formatPath(path)}${lastError instanceof Error ? `: ${lastError.message}` : ''}`);
  return bodies;
}

/** Typed leaf records from `values` (absolute paths under `under`), checked against the model. */
function valueRecords(op: string, under: Path, values: Readonly<Record<string, LooseValue>>, models: ModelLookup): LeafRecord[] {
  const entries = Object.entries(values);
  if (entries.length === 0) invalid(`${op}: values is empty`);
  return entries.map(([key, v]) => {
    const p = parseRequestPath(key, `values key`);
    if (p.length < 3) invalid(`values key ${key} must name a resource (/o/i/r) or resource instance (/o/i/r/ri)`);
    if (!isPrefixOf(under, p)) invalid(`values key ${key} is not at or below ${formatPath(under)}`);
    return { path: p, value: typedValue(op, p, v, models) };
  });
}

function typedValue(op: string, p: Path, v: LooseValue, models: ModelLookup): LeafRecord['value'] {
  const where = formatPath(p);
  const model = models.resource(p[0]!, p[2]!);
  if (model) {
    if (model.type === 'none' || model.operations === 'E') invalid(`${where} is executable: execute it, it holds no value`);
    if (p.length === 4 && !model.multiple) invalid(`${where}: resource ${p[2]} of object ${p[0]} is single-instance, it has no resource instances`);
    if (p.length === 3 && model.multiple) invalid(`${where} is a multiple-instance resource: give its instances, e.g. {"${where}/0": ...}`);
    if (op === 'write' && model.operations !== 'W' && model.operations !== 'RW') invalid(`${where} (${model.name}) is not writable`);
  }
  // Without a model, a plain JSON value's own type decides (string, integer, float, boolean).
  try {
    return looseToValue(v, model ? (model.type === 'none' ? undefined : model.type) : undefined, where);
  } catch (e) {
    if (e instanceof CodecError) return invalid(e.message.replace(/^value: /, ''));
    throw e;
  }
}

function attributeQuery(attrs: Readonly<Record<string, string | number | null>>, client: ClientInfo, allowUnset: boolean, path: Path): string[] {
  const out: string[] = [];
  const nums: Record<string, number> = {};
  for (const [name, raw] of Object.entries(attrs)) {
    const spec = ATTRIBUTES[name];
    if (!spec) invalid(`unknown attribute ${JSON.stringify(name)} (known: ${Object.keys(ATTRIBUTES).join(', ')})`);
    if (!atLeast(client.lwm2mVersion, spec!.since)) invalid(`attribute ${name} needs LwM2M ${spec!.since}; the client registered with ${client.lwm2mVersion}`);
    if ((name === 'gt' || name === 'lt' || name === 'st' || name === 'edge') && path.length < 3) invalid(`attribute ${name} applies to resources only, not ${formatPath(path)}`);
    if (raw === null) {
      if (!allowUnset) invalid(`attribute ${name} needs a value`);
      out.push(name);
      continue;
    }
    const text = String(raw).trim();
    let ok: boolean;
    if (spec!.kind === 'int') ok = /^[0-9]{1,10}$/.test(text);
    else if (spec!.kind === 'bit') ok = text === '0' || text === '1';
    else ok = /^-?[0-9]+(\.[0-9]+)?$/.test(text);
    if (!ok) invalid(`attribute ${name}=${JSON.stringify(String(raw))}: expected ${spec!.kind === 'int' ? 'a non-negative integer' : spec!.kind === 'bit' ? '0 or 1' : 'a decimal number'}`);
    nums[name] = Number(text);
    out.push(`${name}=${text}`);
  }
  const { lt, gt, st } = nums;
  if (lt !== undefined && gt !== undefined && !(lt < gt)) invalid(`attributes must satisfy lt < gt (registration.md §7.4), got lt=${lt} gt=${gt}`);
  if (lt !== undefined && gt !== undefined && st !== undefined && !(lt + 2 * st < gt)) invalid(`attributes must satisfy lt + 2*st < gt, got lt=${lt} st=${st} gt=${gt}`);
  if (nums['epmin'] !== undefined && nums['epmax'] !== undefined && !(nums['epmax']! > nums['epmin']!)) invalid('attributes must satisfy epmax > epmin');
  return out;
}

/** Execute arguments (§7.3): printable ASCII, at most 1024 bytes; sent as is. */
function checkArgs(args: string): void {
  if (args.length > 1024) invalid('execute arguments are longer than 1024 characters');
  if (!/^[\x20-\x7e]*$/.test(args)) invalid('execute arguments must be printable ASCII, e.g. 0=\'10.3\',1');
}

/**
 * Validates `req` for `client` and builds the CoAP request. Throws `DmError('invalid')` naming
 * the problem. Triggers (`trigger-update|bootstrap`) need the Server instance and are built by
 * `triggerRequest`.
 */
export function prepareRequest(req: DmRequest, client: ClientInfo): PreparedRequest {
  if (req.op === 'trigger-update' || req.op === 'trigger-bootstrap') return invalid(`${req.op} is built with triggerRequest`);
  const path = parseRequestPath(req.path);
  const op = req.op;
  const models = client.models;
  switch (op) {
    case 'read': {
      levels(op, path, 1, 4, 'an object, instance, resource or resource instance');
      refuseSecurityObjects(op, path);
      if (req.accept !== undefined && (findCodec(req.accept) === undefined || !Number.isInteger(req.accept))) invalid(`accept ${req.accept} is not a format lwbs can decode`);
      return { path, method: 'GET', query: [], ...(req.accept !== undefined ? { accept: req.accept } : {}), bodies: [] };
    }
    case 'discover': {
      levels(op, path, 1, 3, 'an object, instance or resource');
      refuseSecurityObjects(op, path);
      const query: string[] = [];
      if (req.depth !== undefined) {
        if (!Number.isInteger(req.depth) || req.depth < 0 || req.depth > 3) invalid(`depth must be 0..3, got ${String(req.depth)}`);
        if (!atLeast(client.lwm2mVersion, '1.2')) invalid(`depth needs LwM2M 1.2; the client registered with ${client.lwm2mVersion}`);
        query.push(`depth=${req.depth}`);
      }
      return { path, method: 'GET', query, accept: ContentFormat.LINK_FORMAT, bodies: [] };
    }
    case 'write': {
      levels(op, path, 2, 4, 'an instance, resource or resource instance');
      refuseSecurityObjects(op, path);
      if (req.partial && path.length !== 2 && !(path.length === 3 && models.resource(path[0]!, path[2]!)?.multiple)) {
        invalid('a partial update (POST) targets an instance or a multiple-instance resource');
      }
      if ((req.value === undefined) === (req.values === undefined)) invalid('write needs exactly one of value (for a resource) or values (a map of paths to values)');
      let records: LeafRecord[];
      if (req.value !== undefined) {
        if (path.length < 3) invalid(`value writes one resource; for ${formatPath(path)} give values {"${formatPath(path)}/1": ...}`);
        records = [{ path, value: typedValue(op, path, req.value, models) }];
      } else {
        records = valueRecords(op, path, req.values!, models);
      }
      const node = toNode(path, records, models);
      const bodies = encodeAll(path, node, writeFormats(client, node, req.format));
      return { path, method: req.partial ? 'POST' : 'PUT', query: [], bodies };
    }
    case 'execute': {
      levels(op, path, 3, 3, 'a resource');
      refuseSecurityObjects(op, path);
      const model = models.resource(path[0]!, path[2]!);
      if (model && model.operations !== 'E') invalid(`${formatPath(path)} (${model.name}) is not executable`);
      const args = req.args ?? '';
      checkArgs(args);
      return { path, method: 'POST', query: [], bodies: args === '' ? [] : [{ contentFormat: ContentFormat.TEXT, payload: new Uint8Array(Buffer.from(args, 'ascii')) }] };
    }
    case 'create': {
      // `/o`: the values name the instance (`/o/i/r`), or, without values, the client picks the ID
      // and the defaults; `/o/i`: that instance, with the values given (or none).
      levels(op, path, 1, 2, 'an object (or /o/i to pick the instance ID)');
      refuseSecurityObjects(op, path);
      const values = req.values ?? {};
      if (Object.keys(values).length === 0) {
        if (path.length === 1) return { path, method: 'POST', query: [], bodies: [] };
        const empty = { kind: 'object' as const, id: path[0]!, instances: new Map([[path[1]!, { kind: 'instance' as const, id: path[1]!, resources: new Map() }]]) };
        return { path: [path[0]!], method: 'POST', query: [], bodies: encodeAll([path[0]!], empty, writeFormats(client, empty, req.format)) };
      }
      const records = valueRecords(op, path, values, models);
      const instances = new Set(records.map((r) => r.path[1]));
      if (instances.size !== 1) invalid('create makes one instance: every values key must name the same instance /o/i/...');
      const objectPath: Path = [path[0]!];
      const node = toNode(objectPath, records, models);
      return { path: objectPath, method: 'POST', query: [], bodies: encodeAll(objectPath, node, writeFormats(client, node, req.format)) };
    }
    case 'delete': {
      if (path.length !== 2 && !(path.length === 4 && atLeast(client.lwm2mVersion, '1.1'))) {
        invalid(`delete targets an instance${atLeast(client.lwm2mVersion, '1.1') ? ' or a resource instance' : ''}, not ${formatPath(path)}`);
      }
      refuseSecurityObjects(op, path);
      if (path[0] === 3 && path.length === 2) invalid('the Device instance /3/0 can never be deleted');
      return { path, method: 'DELETE', query: [], bodies: [] };
    }
    case 'write-attributes': {
      levels(op, path, 1, 4, 'an object, instance, resource or resource instance');
      refuseSecurityObjects(op, path);
      if (typeof req.attributes !== 'object' || req.attributes === null || Object.keys(req.attributes).length === 0) invalid('write-attributes needs at least one attribute');
      return { path, method: 'PUT', query: attributeQuery(req.attributes, client, true, path), bodies: [] };
    }
    case 'observe': {
      levels(op, path, 1, 4, 'an object, instance, resource or resource instance');
      refuseSecurityObjects(op, path);
      if (req.accept !== undefined && findCodec(req.accept) === undefined) invalid(`accept ${req.accept} is not a format lwbs can decode`);
      let query: string[] = [];
      if (req.attributes && Object.keys(req.attributes).length > 0) {
        if (!atLeast(client.lwm2mVersion, '1.2')) invalid(`attributes on Observe need LwM2M 1.2; use write-attributes for a ${client.lwm2mVersion} client`);
        query = attributeQuery(req.attributes, client, false, path);
      }
      return { path, method: 'GET', query, observe: 0, ...(req.accept !== undefined ? { accept: req.accept } : {}), bodies: [] };
    }
    case 'cancel-observation': {
      levels(op, path, 1, 4, 'an object, instance, resource or resource instance');
      return { path, method: 'GET', query: [], observe: 1, bodies: [] };
    }
  }
}

/** Execute of /1/x/8 (update) or /1/x/9 (bootstrap) on Server instance `x`. */
export function triggerRequest(kind: 'trigger-update' | 'trigger-bootstrap', serverInstance: number): PreparedRequest {
  return { path: [1, serverInstance, kind === 'trigger-update' ? 8 : 9], method: 'POST', query: [], bodies: [] };
}

function toNode(path: Path, records: LeafRecord[], models: ModelLookup): LwM2MNode {
  try {
    return recordsToNode('value', path, records, (o, r) => models.resource(o, r));
  } catch (e) {
    if (e instanceof CodecError) return invalid(e.message);
    throw e;
  }
}

/**
 * Decodes a 2.05 payload read from `path` into leaf values. No Content-Format: text/plain for a
 * resource path (what most clients mean), TLV otherwise. Throws `CodecError` on a bad payload.
 */
export function decodeValues(path: Path, contentFormat: number | undefined, payload: Uint8Array, models: ModelLookup): PathValue[] {
  if (payload.length === 0) return [];
  const cf = contentFormat ?? (path.length >= 3 ? ContentFormat.TEXT : ContentFormat.TLV);
  const codec = findCodec(cf);
  if (!codec) throw new CodecError(String(cf), 'unsupported', `Content-Format ${cf} is not one lwbs decodes`);
  const records = path.length === 0 && isComposite(codec) ? codec.decodeRecords(payload, models) : nodeToRecords(path, codec.decode(path, payload, models));
  return records.map((r) => ({ path: formatPath(r.path), ...valueToJson(r.value) }));
}
