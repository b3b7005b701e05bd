/**
 * Helpers shared by the codecs: resolving a resource's type from the model, and turning the
 * scalars that JSON/CBOR formats carry into typed values with precise errors.
 */
import { CodecError } from '../errors.js';
import type { ModelLookup } from '../model.js';
import { formatPath, type Path } from '../path.js';
import { type Int, normInt, type Value, type ValueType, V, INT64_MAX, INT64_MIN, UINT64_MAX, toBigInt } from '../value.js';

/** The model's type for the resource at `path` (length ≥ 3), or undefined when unknown/executable. */
export function modelType(models: ModelLookup | undefined, path: Path): ValueType | undefined {
  if (!models || path.length < 3) return undefined;
  const t = models.resource(path[0] as number, path[2] as number)?.type;
  return t === undefined || t === 'none' ? undefined : t;
}

/** Is the resource at `path` declared multiple-instance by the model? */
export function modelMultiple(models: ModelLookup | undefined, path: Path): boolean | undefined {
  if (!models || path.length < 3) return undefined;
  return models.resource(path[0] as number, path[2] as number)?.multiple;
}

/** Builds an integer-family value from a number or bigint, with range checks naming the path. */
export function intValue(format: string, type: 'integer' | 'unsigned' | 'time', n: Int, path: Path): Value {
  if (typeof n === 'number' && !Number.isInteger(n)) {
    throw new CodecError(format, 'type_mismatch', `${type} resource got non-integer ${n}`, undefined, formatPath(path));
  }
  const b = toBigInt(n);
  const [min, max] = type === 'unsigned' ? [0n, UINT64_MAX] : [INT64_MIN, INT64_MAX];
  if (b < min || b > max) throw new CodecError(format, 'out_of_range', `${type} value ${b} out of range`, undefined, formatPath(path));
  const v = typeof n === 'bigint' ? normInt(n) : n;
  return type === 'integer' ? V.integer(v) : type === 'unsigned' ? V.unsigned(v) : V.time(v);
}

/** A numeric field (SenML `v`, LwM2M JSON `v`) as a value of `type` (or inferred when undefined). */
export function numberValue(format: string, type: ValueType | undefined, n: number | bigint, path: Path): Value {
  switch (type) {
    case undefined:
      return typeof n === 'bigint' || Number.isInteger(n) ? intValue(format, 'integer', n, path) : V.float(n);
    case 'float':
      return V.float(Number(n));
    case 'integer':
    case 'unsigned':
    case 'time':
      return intValue(format, type, n, path);
    default:
      throw typeMismatch(format, type, 'a number', path);
  }
}

export function typeMismatch(format: string, type: ValueType, got: string, path: Path): CodecError {
  return new CodecError(format, 'type_mismatch', `${type} resource got ${got}`, undefined, formatPath(path));
}
