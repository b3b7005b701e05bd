/**
 * Base64 as LwM2M formats need it: emit base64url without padding (SenML `vd`, RFC 8428 §4.3) or
 * standard base64 with padding (text/plain, LwM2M JSON); accept either alphabet, with or without
 * padding, and refuse anything else with a clear error.
 */
import { CodecError } from './errors.js';

const VALID = /^[A-Za-z0-9+/_-]*={0,2}$/;

export function toBase64Url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}

export function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

/** Decodes standard or url-safe base64, padded or not. `format` names the caller for errors. */
export function fromBase64Any(text: string, format: string, path?: string): Uint8Array {
  const s = text.trim();
  if (!VALID.test(s) || s.replace(/=+$/, '').length % 4 === 1) {
    throw new CodecError(format, 'invalid', `not valid base64: ${JSON.stringify(text.length > 40 ? text.slice(0, 40) + '…' : text)}`, undefined, path);
  }
  const padIdx = s.indexOf('=');
  if (padIdx >= 0 && s.length % 4 !== 0) {
    throw new CodecError(format, 'invalid', 'base64 padding is malformed', undefined, path);
  }
  return new Uint8Array(Buffer.from(s.replace(/-/g, '+').replace(/_/g, '/'), 'base64'));
}
