/**
 * The shape check of a `DmRequest` arriving as JSON at `POST /v1/devices/{ep}/requests`: the
 * operation is known, every field has the right JSON type, no field is unknown (a typo such as
 * `"vaule"` is refused instead of silently ignored). What the fields mean (a path that exists,
 * a value that fits the resource, attribute names) is the DeviceManager's to check.
 */
import type { DmOperation, DmRequest, ValueJson, WriteValue } from '../registration/management/types.js';

export const DM_OPERATIONS: readonly DmOperation[] = [
  'read',
  'discover',
  'write',
  'execute',
  'create',
  'delete',
  'write-attributes',
  'observe',
  'cancel-observation',
  'trigger-update',
  'trigger-bootstrap',
];

/** The fields each operation takes besides `op` (`path` is required where listed). */
const FIELDS: Readonly<Record<DmOperation, readonly string[]>> = {
  read: ['path', 'accept'],
  discover: ['path', 'depth'],
  write: ['path', 'value', 'values', 'partial', 'format'],
  execute: ['path', 'args'],
  create: ['path', 'values', 'format'],
  delete: ['path'],
  'write-attributes': ['path', 'attributes'],
  observe: ['path', 'accept', 'attributes'],
  'cancel-observation': ['path'],
  'trigger-update': [],
  'trigger-bootstrap': [],
};

/** Thrown for a malformed request body; the message names the field. */
export class RequestShapeError extends Error {
  override readonly name = 'RequestShapeError';
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function fail(message: string): never {
  throw new RequestShapeError(message);
}

function contentFormat(field: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 65535) fail(`${field} must be a Content-Format number 0..65535, got ${JSON.stringify(v)}`);
  return v;
}

const INT_TEXT = /^-?[0-9]+$/;

/** A `ValueJson`, checked key by key. */
function valueJson(field: string, v: Record<string, unknown>): ValueJson {
  const type = v.type;
  const keys = Object.keys(v);
  const only = (allowed: readonly string[]): void => {
    for (const k of keys) if (!allowed.includes(k)) fail(`${field}: unknown field "${k}" for type ${JSON.stringify(type)}`);
  };
  switch (type) {
    case 'string':
    case 'corelnk':
    case 'objlnk':
      only(['type', 'value']);
      if (typeof v.value !== 'string') fail(`${field}.value must be a string for type ${type}`);
      return { type, value: v.value };
    case 'integer':
    case 'unsigned':
    case 'time':
      only(['type', 'value']);
      if (typeof v.value === 'number' ? !Number.isInteger(v.value) : typeof v.value !== 'string' || !INT_TEXT.test(v.value)) {
        fail(`${field}.value must be an integer (or a decimal string for 64-bit values) for type ${type}`);
      }
      return { type, value: v.value as number | string };
    case 'float':
      only(['type', 'value']);
      if (typeof v.value !== 'number') fail(`${field}.value must be a number for type float`);
      return { type, value: v.value };
    case 'boolean':
      only(['type', 'value']);
      if (typeof v.value !== 'boolean') fail(`${field}.value must be true or false for type boolean`);
      return { type, value: v.value };
    case 'opaque':
      only(['type', 'hex']);
      if (typeof v.hex !== 'string' || v.hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(v.hex)) fail(`${field}.hex must be pairs of hex digits for type opaque`);
      return { type, hex: v.hex };
    default:
      return fail(`${field}.type must be one of string, integer, unsigned, float, boolean, opaque, time, objlnk, corelnk; got ${JSON.stringify(type)}`);
  }
}

function writeValue(field: string, v: unknown): WriteValue {
  if (typeof v === 'string' || typeof v === 'boolean') return v;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) fail(`${field} must be a finite number`);
    return v;
  }
  if (isRecord(v)) return valueJson(field, v);
  return fail(`${field} must be a string, number, boolean or {"type", "value"} object, got ${JSON.stringify(v)}`);
}

function writeValues(field: string, v: unknown): Record<string, WriteValue> {
  if (!isRecord(v)) fail(`${field} must be an object mapping paths to values`);
  // fromEntries defines own properties, so a "__proto__" key stays a key (and is refused as a path later)
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, writeValue(`${field}[${JSON.stringify(k)}]`, x)]));
}

function attributes(field: string, v: unknown, allowNull: boolean): Record<string, string | number | null> {
  if (!isRecord(v)) fail(`${field} must be an object of attribute names to values`);
  return Object.fromEntries(
    Object.entries(v).map(([k, x]) => {
      if (typeof x === 'string' || (typeof x === 'number' && Number.isFinite(x)) || (allowNull && x === null)) return [k, x];
      return fail(`${field}.${k} must be a string${allowNull ? ', a number or null (unset)' : ' or a number'}, got ${JSON.stringify(x)}`);
    }),
  );
}

/** Checks a parsed JSON body and returns it as a `DmRequest`; throws RequestShapeError. */
export function parseDmRequest(body: unknown): DmRequest {
  if (!isRecord(body)) fail('the body must be a JSON object with an "op"');
  const op = body.op;
  if (typeof op !== 'string' || !(DM_OPERATIONS as readonly string[]).includes(op)) {
    fail(`"op" must be one of ${DM_OPERATIONS.join(', ')}; got ${JSON.stringify(op)}`);
  }
  const operation = op as DmOperation;
  const allowed = FIELDS[operation];
  for (const k of Object.keys(body)) if (k !== 'op' && !allowed.includes(k)) fail(`unknown field "${k}" for op ${operation}`);
  if (allowed.includes('path') && typeof body.path !== 'string') fail(`"path" (a string such as "/3/0") is required for op ${operation}`);
  const path = body.path as string;
  const opt = <T>(key: string, check: (field: string, v: unknown) => T): { [k: string]: T } => (body[key] === undefined ? {} : { [key]: check(key, body[key]) });
  switch (operation) {
    case 'read':
      return { op: operation, path, ...opt('accept', contentFormat) };
    case 'discover':
      return {
        op: operation,
        path,
        ...opt('depth', (f, v) => {
          if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 3) fail(`${f} must be an integer 0..3`);
          return v;
        }),
      };
    case 'write': {
      const hasValue = body.value !== undefined;
      const hasValues = body.values !== undefined;
      if (hasValue === hasValues) fail('op write needs exactly one of "value" (one resource) and "values" (paths to values)');
      return {
        op: operation,
        path,
        ...opt('value', writeValue),
        ...opt('values', writeValues),
        ...opt('partial', (f, v) => {
          if (typeof v !== 'boolean') fail(`${f} must be true or false`);
          return v;
        }),
        ...opt('format', contentFormat),
      };
    }
    case 'execute':
      return {
        op: operation,
        path,
        ...opt('args', (f, v) => {
          if (typeof v !== 'string') fail(`${f} must be a string (the text/plain argument list)`);
          return v;
        }),
      };
    case 'create':
      return { op: operation, path, ...opt('values', writeValues), ...opt('format', contentFormat) };
    case 'delete':
    case 'cancel-observation':
      return { op: operation, path };
    case 'write-attributes':
      if (body.attributes === undefined) fail('op write-attributes needs "attributes", e.g. {"pmin": 10, "gt": null}');
      return { op: operation, path, attributes: attributes('attributes', body.attributes, true) };
    case 'observe':
      return {
        op: operation,
        path,
        ...opt('accept', contentFormat),
        ...opt('attributes', (f, v) => attributes(f, v, false) as Record<string, string | number>),
      };
    case 'trigger-update':
    case 'trigger-bootstrap':
      return { op: operation };
  }
}
