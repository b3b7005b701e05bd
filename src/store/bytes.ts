/**
 * Endpoint names and identities may be text or binary (design.md): the store keeps bytes, and
 * shows them as text when they are printable UTF-8, as hex otherwise.
 */

/** Text input is UTF-8 encoded; byte input is copied into a Buffer (sqlite binds Buffers as BLOBs). */
export function toBytes(v: string | Uint8Array): Buffer {
  return typeof v === 'string' ? Buffer.from(v, 'utf8') : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}

const decoder = new TextDecoder('utf-8', { fatal: true });

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
