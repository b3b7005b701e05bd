/**
 * Checks and normalizes key material before it is stored, so that lookups by public key match
 * however the key was encoded, and garbage is refused at enrollment rather than at handshake.
 */
import { createHash, createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { toBytes } from '../util/bytes.js';
import { StoreError } from './errors.js';
import type { Bytes } from './types.js';

export const MAX_ENDPOINT_LEN = 1024;
export const MAX_IDENTITY_LEN = 1024;
/** DTLS stacks commonly cap PSKs at 64 bytes (mbedTLS, tinydtls). */
export const MAX_PSK_LEN = 64;

/** Endpoint bytes: 1..1024 bytes. */
export function endpointBytes(v: Bytes, field = 'endpoint'): Buffer {
  const b = toBytes(v);
  if (b.length === 0) throw new StoreError('invalid', `${field} must not be empty`, field);
  if (b.length > MAX_ENDPOINT_LEN) throw new StoreError('invalid', `${field} is ${b.length} bytes long; the limit is ${MAX_ENDPOINT_LEN}`, field);
  return b;
}

export function pskIdentityBytes(v: Bytes, field = 'pskIdentity'): Buffer {
  const b = toBytes(v);
  if (b.length === 0) throw new StoreError('invalid', `${field} must not be empty`, field);
  if (b.length > MAX_IDENTITY_LEN) throw new StoreError('invalid', `${field} is ${b.length} bytes long; the limit is ${MAX_IDENTITY_LEN}`, field);
  return b;
}

/** The key's length only is ever named, never its bytes. */
export function pskKeyBytes(v: Uint8Array | undefined, field = 'pskKey'): Buffer {
  if (v === undefined || v.length === 0) throw new StoreError('invalid', `${field} is required and must not be empty`, field);
  if (v.length > MAX_PSK_LEN) throw new StoreError('invalid', `${field} is ${v.length} bytes long; the limit is ${MAX_PSK_LEN}`, field);
  return toBytes(v);
}

/**
 * SubjectPublicKeyInfo DER, re-exported by node:crypto so equal keys get equal bytes (e.g. a
 * compressed P-256 point becomes the uncompressed form). The DTLS layer must pass the peer's
 * SPKI through here too (`findByRpk` does it).
 */
export function normalizeSpki(der: Uint8Array, field = 'publicKey'): Buffer {
  try {
    const key = createPublicKey({ key: Buffer.from(der), format: 'der', type: 'spki' });
    // OpenSSL re-exports an EC key in the point form it was given; a round trip through JWK
    // (x and y coordinates) always yields the uncompressed form.
    const canonical = key.asymmetricKeyType === 'ec' ? createPublicKey({ key: key.export({ format: 'jwk' }), format: 'jwk' }) : key;
    return canonical.export({ format: 'der', type: 'spki' });
  } catch (e) {
    throw new StoreError('invalid', `${field} is not a SubjectPublicKeyInfo DER public key (${der.length} bytes): ${(e as Error).message}`, field, undefined, { cause: e });
  }
}

/** PKCS#8 DER private key: checked to parse, stored as given (it is encrypted anyway). */
export function checkPkcs8(der: Uint8Array, field = 'privateKey'): Buffer {
  try {
    createPrivateKey({ key: Buffer.from(der), format: 'der', type: 'pkcs8' });
  } catch (e) {
    // The OpenSSL message names the ASN.1 problem, never the key bytes.
    throw new StoreError('invalid', `${field} is not a PKCS#8 DER private key (${der.length} bytes)`, field, undefined, { cause: e });
  }
  return toBytes(der);
}

export interface CertificateInfo {
  readonly der: Buffer;
  readonly subjectCn: string | null;
  readonly subjectAltNames: string[];
}

export function parseCertificate(der: Uint8Array, field = 'certificate'): CertificateInfo {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(Buffer.from(der));
  } catch (e) {
    throw new StoreError('invalid', `${field} is not a DER X.509 certificate (${der.length} bytes): ${(e as Error).message}`, field, undefined, { cause: e });
  }
  return { der: toBytes(der), subjectCn: commonName(cert.subject), subjectAltNames: splitAltNames(cert.subjectAltName ?? '') };
}

/** Node renders the subject as `key=value` lines; values with special characters are JSON-quoted. */
function commonName(subject: string): string | null {
  for (const line of subject.split('\n')) {
    if (line.startsWith('CN=')) return unquote(line.slice(3));
  }
  return null;
}

/** `DNS:a, URI:"b, c"` → [`DNS:a`, `URI:b, c`]: entries are `, `-separated, values maybe JSON-quoted. */
export function splitAltNames(san: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < san.length) {
    const colon = san.indexOf(':', i);
    if (colon < 0) break;
    const type = san.slice(i, colon).trim();
    let j = colon + 1;
    let value: string;
    if (san[j] === '"') {
      let k = j + 1;
      while (k < san.length && san[k] !== '"') k += san[k] === '\\' ? 2 : 1;
      value = unquote(san.slice(j, k + 1));
      j = k + 1;
    } else {
      const comma = san.indexOf(', ', j);
      const end = comma < 0 ? san.length : comma;
      value = san.slice(j, end);
      j = end;
    }
    out.push(`${type}:${value}`);
    i = san.startsWith(', ', j) ? j + 2 : j + 1;
  }
  return out;
}

function unquote(v: string): string {
  if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) {
    try {
      return JSON.parse(v) as string;
    } catch {
      return v.slice(1, -1);
    }
  }
  return v;
}

/** For messages about public keys and certificates: a short SHA-256 fingerprint (DER headers all look alike). */
export function fingerprint(b: Uint8Array): string {
  return `sha256:${createHash('sha256').update(b).digest('hex').slice(0, 16)}`;
}
