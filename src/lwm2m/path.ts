/**
 * LwM2M paths: `/`, `/o`, `/o/i`, `/o/i/r`, `/o/i/r/ri`. A path is a read-only array of 0..4 IDs.
 * Each ID is a 16-bit unsigned integer; 65535 is reserved by the spec (MAX_ID) and refused.
 */
import { CodecError } from './errors.js';

export type Path = readonly number[];

export const MAX_ID = 65534;

export type PathLevel = 'root' | 'object' | 'instance' | 'resource' | 'resourceInstance';

const LEVELS: readonly PathLevel[] = ['root', 'object', 'instance', 'resource', 'resourceInstance'];

export function pathLevel(path: Path): PathLevel {
  const level = LEVELS[path.length];
  if (level === undefined) throw new CodecError('path', 'bad_path', `a path has at most 4 IDs, got ${path.length}`);
  return level;
}

export function isValidId(id: number): boolean {
  return Number.isInteger(id) && id >= 0 && id <= MAX_ID;
}

/** Throws a CodecError unless `path` has 0..4 IDs, each an integer 0..65534. */
export function validatePath(path: Path): Path {
  if (path.length > 4) throw new CodecError('path', 'bad_path', `a path has at most 4 IDs, got ${path.length}`);
  for (const id of path) {
    if (!isValidId(id)) throw new CodecError('path', 'bad_path', `ID ${id} is not an integer in 0..${MAX_ID}`, undefined, formatPath(path));
  }
  return path;
}

/**
 * Parses `/3/0/1`. Strict by default: leading slash required, no empty segments, decimal IDs
 * without sign or leading zeros. `{ lenient: true }` also accepts a missing leading slash and a
 * trailing slash (`3/0/`), which real clients produce in link-format and SenML names.
 */
export function parsePath(text: string, opts: { lenient?: boolean } = {}): Path {
  let s = text;
  if (opts.lenient) {
    s = s.trim();
    if (!s.startsWith('/')) s = '/' + s;
    if (s.length > 1 && s.endsWith('/')) s = s.slice(0, -1);
  }
  if (!s.startsWith('/')) throw new CodecError('path', 'bad_path', `path must start with "/": ${JSON.stringify(text)}`);
  if (s === '/') return [];
  const parts = s.slice(1).split('/');
  if (parts.length > 4) throw new CodecError('path', 'bad_path', `path has more than 4 segments: ${JSON.stringify(text)}`);
  const out: number[] = [];
  for (const p of parts) {
    if (!/^(0|[1-9][0-9]{0,4})$/.test(p)) {
      throw new CodecError('path', 'bad_path', `segment ${JSON.stringify(p)} is not a decimal ID in ${JSON.stringify(text)}`);
    }
    const id = Number(p);
    if (id > MAX_ID) throw new CodecError('path', 'bad_path', `ID ${id} exceeds ${MAX_ID} in ${JSON.stringify(text)}`);
    out.push(id);
  }
  return out;
}

export function formatPath(path: Path): string {
  return path.length === 0 ? '/' : '/' + path.join('/');
}

/** True when `prefix` is `path` itself or one of its ancestors. */
export function isPrefixOf(prefix: Path, path: Path): boolean {
  if (prefix.length > path.length) return false;
  for (let i = 0; i < prefix.length; i++) if (prefix[i] !== path[i]) return false;
  return true;
}

export function pathEquals(a: Path, b: Path): boolean {
  return a.length === b.length && isPrefixOf(a, b);
}

/** Orders paths as the spec lists them: by object, then instance, resource, resource instance. */
export function comparePaths(a: Path, b: Path): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (a[i] as number) - (b[i] as number);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}
