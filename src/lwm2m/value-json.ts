/**
 * Typed LwM2M values as JSON, for the admin API, the CLI and the store's latest values:
 * `{type, value}` (opaque as `{type: 'opaque', hex}`, objlnk as `"3:0"`, 64-bit integers beyond
 * 2^53 as decimal strings), and back; plus loosely typed input (a string/number/boolean) converted
 * to a resource's type from the object model.
 */
import { CodecError } from './errors.js';
import { formatObjlnk, normInt, scanObjlnk, V, type Int, type Value, type ValueType } from './value.js';

export type ValueJson =
  | { readonly type: 'string' | 'corelnk'; readonly value: string }
  | { readonly type: 'integer' | 'unsigned' | 'time'; readonly value: number | string }
  | { readonly type: 'float'; readonly value: number }
  | { readonly type: 'boolean'; readonly value: boolean }
  | { readonly type: 'opaque'; readonly hex: string }
  | { readonly type: 'objlnk'; readonly value: string };

/** A value to write: loosely typed (converted with the model's type) or a `ValueJson`. */
export type LooseValue = string | number | boolean | ValueJson;

const VALUE_TYPES: readonly ValueType[] = ['string', 'integer', 'unsigned', 'float', 'boolean', 'opaque', 'time', 'objlnk', 'corelnk'];

export function valueToJson(v: Value): ValueJson {
  switch (v.type) {
    case 'opaque':
      return { type: 'opaque', hex: Buffer.from(v.value.buffer, v.value.byteOffset, v.value.byteLength).toString('hex') };
    case 'objlnk':
      return { type: 'objlnk', value: formatObjlnk(v.value) };
    case 'integer':
    case 'unsigned':
    case 'time':
      return { type: v.type, value: typeof v.value === 'bigint' ? v.value.toString() : v.value };
    default:
      return { type: v.type, value: v.value } as ValueJson;
  }
}

function bad(where: string, message: string): never {
  throw new CodecError('value', 'type_mismatch', `${where}: ${message}`);
}

function isValueJson(x: unknown): x is ValueJson {
  return typeof x === 'object' && x !== null && !Array.isArray(x) && typeof (x as { type?: unknown }).type === 'string';
}

/** A `ValueJson` back to a typed value; `where` names the value in errors (`/1/0/1`). */
export function jsonToValue(j: unknown, where: string): Value {
  if (!isValueJson(j)) bad(where, 'expected {"type": ..., "value": ...}');
  const t = j.type;
  if (!(VALUE_TYPES as readonly string[]).includes(t)) bad(where, `unknown type ${JSON.stringify(t)}`);
  if (t === 'opaque') {
    const hex = (j as { hex?: unknown }).hex;
    if (typeof hex !== 'string') bad(where, 'opaque needs "hex"');
    return looseToValue(hex, 'opaque', where);
  }
  const value = (j as { value?: unknown }).value;
  if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') bad(where, `${t} needs "value"`);
  return looseToValue(value, t as ValueType, where);
}

/**
 * Converts an input to `type` (the resource's, from the model). Strings are parsed as the CLI
 * takes them: integers in decimal, floats, booleans `true|false|1|0`, opaque as hex (`0x` optional),
 * objlnk `3:0`, time as seconds. A `ValueJson` must have the same type, except that its type wins
 * when the model does not know the resource (`type` undefined).
 */
export function looseToValue(input: LooseValue, type: ValueType | undefined, where: string): Value {
  if (typeof input === 'object') {
    if (type !== undefined && input.type !== type) bad(where, `the resource is ${type}, the value is ${input.type}`);
    return jsonToValue(input, where);
  }
  if (type === undefined) {
    if (typeof input === 'boolean') return V.boolean(input);
    if (typeof input === 'number') return Number.isInteger(input) ? V.integer(input) : V.float(input);
    return V.string(input);
  }
  const text = String(input);
  switch (type) {
    case 'string':
      return V.string(text);
    case 'corelnk':
      return V.corelnk(text);
    case 'integer':
    case 'unsigned':
    case 'time':
      return V[type](parseInteger(input, where));
    case 'float': {
      const n = typeof input === 'number' ? input : Number(text.trim());
      if (typeof input === 'boolean' || text.trim() === '' || Number.isNaN(n)) bad(where, `${JSON.stringify(text)} is not a number`);
      return V.float(n);
    }
    case 'boolean': {
      if (typeof input === 'boolean') return V.boolean(input);
      const t = text.trim().toLowerCase();
      if (t === 'true' || t === '1') return V.boolean(true);
      if (t === 'false' || t === '0') return V.boolean(false);
      return bad(where, `${JSON.stringify(text)} is not a boolean (true, false, 1, 0)`);
    }
    case 'opaque': {
      if (typeof input !== 'string') bad(where, 'opaque values are given as hex');
      const h = text.trim().replace(/^0x/i, '');
      if (h.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(h)) bad(where, 'opaque values are given as pairs of hex digits');
      return V.opaque(new Uint8Array(Buffer.from(h, 'hex')));
    }
    case 'objlnk': {
      const l = scanObjlnk(text);
      if (l === 'invalid' || l === 'out_of_range') bad(where, `${JSON.stringify(text)} is not an object link like 3:0`);
      return V.objlnk(l.objectId, l.instanceId);
    }
  }
}

function parseInteger(input: string | number | boolean, where: string): Int {
  if (typeof input === 'number') {
    if (!Number.isInteger(input)) bad(where, `${input} is not an integer`);
    return input;
  }
  const t = String(input).trim();
  if (!/^-?[0-9]+$/.test(t)) bad(where, `${JSON.stringify(String(input))} is not an integer`);
  return normInt(BigInt(t));
}
