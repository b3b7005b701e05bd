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

/** DER of SEQUENCE { AlgorithmIdentifier { id-ecPublicKey, prime256v1 }, BIT STRING (66 bytes) } up to the point. */
const P256_SPKI_PREFIX = Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex');
/** The prefix and an uncompressed point `04 ‖ X ‖ Y`: 91 bytes. */
const P256_SPKI_LENGTH = P256_SPKI_PREFIX.length + 65;
// P-256 (SEC 2 §2.4.2, FIPS 186-4 D.1.2.3): y² = x³ - 3x + b over the prime p.
const P256_P = 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn;
const P256_B = 0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604bn;

/**
 * True when `der` is already the canonical SPKI of an uncompressed P-256 point (the 91-byte DER
 * prefix + 04 ‖ X ‖ Y) and that point is on the curve. Such a key is what normalization would
 * return anyway, so it needs no import: the on-curve check is two BigInt multiplications (~2 µs)
 * where node:crypto's import takes ~50-100 µs. (P-256 has cofactor 1: every point on the curve
 * other than infinity, which this encoding cannot express, is a valid public key.)
 */
export function isCanonicalP256Spki(der: Uint8Array): boolean {
  if (der.length !== P256_SPKI_LENGTH || der[P256_SPKI_PREFIX.length] !== 0x04) return false;
  const b = Buffer.from(der.buffer, der.byteOffset, der.byteLength);
  if (!b.subarray(0, P256_SPKI_PREFIX.length).equals(P256_SPKI_PREFIX)) return false;
  const n = P256_SPKI_PREFIX.length + 1;
  const x = BigInt(`0x${b.toString('hex', n, n + 32)}`);
  const y = BigInt(`0x${b.toString('hex', n + 32, n + 64)}`);
  if (x >= P256_P || y >= P256_P) return false;
  return (y * y - (x * x * x - 3n * x + P256_B)) % P256_P === 0n;
}

/**
 * SubjectPublicKeyInfo DER, re-exported by node:crypto so equal keys get equal bytes (e.g. a
 * compressed P-256 point becomes the uncompressed form). The DTLS layer must pass the peer's
 * SPKI through here too (`findByRpk` does it). An already canonical P-256 SPKI with its point on
 * the curve (the usual case, and every lookup from a handshake) is returned as a copy without
 * importing it; an off-curve point falls through to node:crypto, which refuses it as before.
 */
export function normalizeSpki(der: Uint8Array, field = 'publicKey'): Buffer {
  if (isCanonicalP256Spki(der)) return Buffer.from(der);
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

/**
 * PKCS#8 keys this process generated itself (bootstrap/credentials.ts), each with the SHA-256 of
 * its bytes as generated (a digest, not a second copy of the private key). Keyed by the very
 * object: bytes from anywhere else - an operator, the admin API, a file - are never in here,
 * however they look, and are checked in full.
 */
const generatedPkcs8 = new WeakMap<Uint8Array, Buffer>();
const digestOf = (der: Uint8Array): Buffer => createHash('sha256').update(der).digest();

/**
 * Marks a PKCS#8 key lwbs has just generated and encoded itself, so that `checkPkcs8` need not
 * parse it again (~5 % of the server's CPU in an RPK bootstrap storm). Only for keys built by our
 * own code from a freshly generated key pair; the mark is the object, and holds only while its
 * bytes are unchanged.
 */
export function markGeneratedPkcs8(der: Uint8Array): void {
  generatedPkcs8.set(der, digestOf(der));
}

/** PKCS#8 DER private key: checked to parse, stored as given (it is encrypted anyway). A key marked by markGeneratedPkcs8 is not parsed again. */
export function checkPkcs8(der: Uint8Array, field = 'privateKey'): Buffer {
  const mark = generatedPkcs8.get(der);
  if (mark !== undefined && mark.equals(digestOf(der))) return toBytes(der);
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
