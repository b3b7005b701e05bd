/**
 * Output helpers shared by the admin commands (profile, device, sessions): byte display, masking,
 * times, tables, JSON, and the small parsers for option values.
 *
 * Conventions for `--json` output (stable; documented in each command's `--help`):
 * - bytes that may be text (endpoints, PSK identities) are `{ "text"?: string, "hex": string }`:
 *   `text` only when the bytes are printable UTF-8;
 * - DER material (public keys, certificates) is a hex string, with a `fingerprint` beside it;
 * - times are ISO 8601 strings (UTC), durations integer milliseconds; absent values are `null`;
 * - secrets are the string `"[secret]"` unless `--show-secrets`, then hex.
 */
import { readFileSync } from 'node:fs';
import { bytesAsText, hexToBytes } from '../util/bytes.js';
import { UsageError, UserError } from './errors.js';

/** Appended to the `--json` field lists in help texts. */
export const JSON_CONVENTIONS = `Times are ISO 8601 strings (UTC), durations milliseconds, absent values null; bytes are
{ "text", "hex" } with "text" only when they are printable UTF-8.`;

/** What a masked secret looks like, in text and JSON alike. */
export const SECRET_MASK = '[secret]';

/** Bytes in `--json` output. */
export interface BytesJson {
  readonly text?: string;
  readonly hex: string;
}

export function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

/** `{ text, hex }` when printable UTF-8, `{ hex }` otherwise. */
export function bytesJson(b: Uint8Array): BytesJson {
  const text = bytesAsText(b);
  return text !== undefined && text.length > 0 ? { text, hex: hex(b) } : { hex: hex(b) };
}

/** For tables and summaries: the text itself when printable UTF-8, else `0x` and hex (never shortened). */
export function showBytes(b: Uint8Array): string {
  const text = bytesAsText(b);
  return text !== undefined && text.length > 0 ? text : `0x${hex(b)}`;
}

/** A secret for display: hex when revealed, the mask otherwise; null when there is none. */
export function secretHex(b: Uint8Array | null | undefined, reveal: boolean): string | null {
  if (b === null || b === undefined) return null;
  return reveal ? hex(b) : SECRET_MASK;
}

/** ISO 8601 (UTC, milliseconds) or null. */
export function isoTime(ms: number | null | undefined): string | null {
  return ms === null || ms === undefined ? null : new Date(ms).toISOString();
}

/** `2024-05-01 12:00:00Z`, for tables. */
export function shortTime(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '-';
  return new Date(ms).toISOString().replace('T', ' ').replace(/\.\d{3}Z$/, 'Z');
}

/** `850 ms`, `12.3 s`, `4 min 5 s`. */
export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '-';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)} min ${s % 60} s`;
}

export function plural(n: number, word: string, many = `${word}s`): string {
  return `${n} ${n === 1 ? word : many}`;
}

/**
 * Aligns rows under headers; columns listed in `right` are right-aligned. Cells are used as
 * given (no truncation: endpoints and ids must stay copyable); the last column is not padded.
 */
export function table(headers: readonly string[], rows: readonly (readonly string[])[], right: readonly number[] = []): string[] {
  const widths = headers.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? '').length)));
  const fmt = (cells: readonly string[]): string =>
    cells
      .map((cell, c) => {
        if (c === cells.length - 1 && !right.includes(c)) return cell;
        return right.includes(c) ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!);
      })
      .join('  ')
      .trimEnd();
  return [fmt(headers), ...rows.map((r) => fmt(headers.map((_, c) => r[c] ?? '')))];
}

/** `label:` padded to `width`, then the value. */
export function field(label: string, value: string, width = 18, indent = '  '): string {
  return `${indent}${`${label}:`.padEnd(width)} ${value}`;
}

export function printLines(lines: readonly string[]): void {
  if (lines.length > 0) process.stdout.write(lines.join('\n') + '\n');
}

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

/** One line to stderr, prefixed like the CLI's other messages. */
export function note(message: string): void {
  process.stderr.write(`lwbs: ${message}\n`);
}

/** `--limit N`: a positive integer, else a usage error. */
export function parseLimit(text: string | undefined, option = '--limit'): number | undefined {
  if (text === undefined) return undefined;
  if (!/^[0-9]+$/.test(text.trim()) || Number(text) < 1 || !Number.isSafeInteger(Number(text))) {
    throw new UsageError(`${option} must be a positive integer, got ${JSON.stringify(text)}`);
  }
  return Number(text);
}

/** An endpoint (or identity) argument: UTF-8 text, or hex digits when `isHex`. */
export function parseBytesArg(text: string, isHex: boolean, what: string): Uint8Array {
  if (isHex) {
    const b = hexToBytes(text);
    if (b === undefined) throw new UsageError(`${what} must be pairs of hex digits, got ${JSON.stringify(text)}`);
    if (b.length === 0) throw new UsageError(`${what} must not be empty`);
    return b;
  }
  if (text.length === 0) throw new UsageError(`${what} must not be empty`);
  return new Uint8Array(Buffer.from(text, 'utf8'));
}

/** Reads a whole file (`-` = standard input); a missing file is a failure (exit 1), not a usage error. */
export function readInputBytes(file: string): Buffer {
  try {
    return readFileSync(file === '-' ? 0 : file);
  } catch (e) {
    throw new UserError(`cannot read ${file === '-' ? 'standard input' : file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

/** A text file as UTF-8, without a byte order mark. */
export function readInputText(file: string): string {
  const text = readInputBytes(file).toString('utf8');
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

/**
 * DER bytes from PEM text (the first block with one of `labels`) or, when `allowBase64`, from
 * bare base64. Returns an error message instead of throwing, so callers can attach a location.
 */
export function derFromText(text: string, labels: readonly string[], allowBase64: boolean): Uint8Array | string {
  if (text.includes('-----BEGIN')) {
    const re = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;
    const found: string[] = [];
    for (let m = re.exec(text); m; m = re.exec(text)) {
      if (!labels.includes(m[1]!)) {
        found.push(m[1]!);
        continue;
      }
      const der = base64Der(m[2]!);
      return der ?? `the PEM block "${m[1]}" has no valid base64 body`;
    }
    const want = labels.map((l) => `"${l}"`).join(' or ');
    return found.length > 0 ? `expected a PEM ${want} block, found ${found.map((l) => `"${l}"`).join(', ')}` : `no complete PEM ${want} block`;
  }
  if (!allowBase64) return 'not PEM';
  return base64Der(text) ?? 'must be PEM or base64 DER';
}

function base64Der(s: string): Uint8Array | undefined {
  const clean = s.replace(/\s/g, '');
  if (clean.length === 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(clean) || clean.replace(/=+$/, '').length % 4 === 1) return undefined;
  const der = new Uint8Array(Buffer.from(clean, 'base64'));
  return der.length > 0 ? der : undefined;
}

/**
 * Key or certificate material from a file: PEM (a block with one of `labels`) or raw DER. Bytes
 * that are neither are passed through as DER: the store checks them and names the problem.
 */
export function readDerFile(file: string, labels: readonly string[]): Uint8Array {
  const bytes = readInputBytes(file);
  const head = bytes.subarray(0, Math.min(bytes.length, 4096)).toString('latin1');
  if (!head.includes('-----BEGIN')) return new Uint8Array(bytes);
  const der = derFromText(bytes.toString('latin1'), labels, false);
  if (typeof der === 'string') throw new UserError(`${file}: ${der}`);
  return der;
}
