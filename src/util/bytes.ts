/**
 * Byte helpers shared by the store, the bootstrap modules and the CLI. Endpoint names and
 * identities may be text or binary (design.md): they are kept as bytes, and shown as text when
 * they are printable UTF-8, as hex otherwise.
 */

/** Text input is UTF-8 encoded; byte input is copied into a Buffer (sqlite binds Buffers as BLOBs). */
export function toBytes(v: string | Uint8Array): Buffer {
  return typeof v === 'string' ? Buffer.from(v, 'utf8') : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}

const decoder = new TextDecoder('utf-8', { fatal: true });

/** True when `b` is well-formed UTF-8. */
export function isUtf8(b: Uint8Array): boolean {
  try {
    decoder.decode(b);
    return true;
  } catch {
    return false;
  }
}

/** Hex digits to bytes, allowing whitespace and `:` between them (`C8 00 14`, `c8:00:14`); undefined if malformed. */
export function hexToBytes(s: string): Uint8Array | undefined {
  const clean = s.replace(/[\s:]/g, '');
  if (clean.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(clean)) return undefined;
  return new Uint8Array(Buffer.from(clean, 'hex'));
}

/** Byte-wise equality. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The bytes as text if they are valid UTF-8 without control characters, else undefined. */
export function bytesAsText(b: Uint8Array): string | undefined {
  let text: string;
  try {
    text = decoder.decode(b);
  } catch {
    return undefined;
  }
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c === 0x7f || (c >= 0x80 && c < 0xa0)) return undefined;
  }
  return text;
}

/** For messages: `"urn:imei:35..."` when printable, `0x01ff...` otherwise (long values shortened). */
export function describeBytes(b: Uint8Array): string {
  const text = bytesAsText(b);
  if (text !== undefined) return JSON.stringify(text.length > 80 ? `${text.slice(0, 77)}...` : text);
  const hex = Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
  return `0x${hex.length > 80 ? `${hex.slice(0, 77)}...` : hex}`;
}
