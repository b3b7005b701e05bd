/**
 * Credential material for bootstrap: the `Secret` wrapper that keeps keys out of logs, per-device
 * PSK and RPK generation for the hand-off (design.md "The hand-off"), and the two fixed DER
 * layouts the Security object carries for P-256 raw public keys (objects.md §2.1):
 *  - res 3 / res 4: `SubjectPublicKeyInfo`, 91 bytes for an uncompressed P-256 point;
 *  - res 5: PKCS#8 `PrivateKeyInfo` (RFC 5958 OneAsymmetricKey v1) wrapping a SEC1
 *    `ECPrivateKey` with the public key, 138 bytes.
 *
 * Pure apart from randomness (crypto.randomBytes, OpenSSL's key generation): no I/O. Errors never
 * contain key bytes.
 */
import { createECDH, randomBytes, timingSafeEqual } from 'node:crypto';
import { inspect } from 'node:util';
import { p256 } from '@noble/curves/nist.js';
import { markGeneratedPkcs8 } from '../store/material.js';
import { bytesEqual, toBytes } from '../util/bytes.js';
import type { Profile, SecuritySpec } from './profile.js';

// ---------------------------------------------------------------------------------------------
// Secret

const MASK = '[secret]';

/**
 * A value that must never be printed: `String(s)`, `${s}`, `JSON.stringify`, `util.inspect`
 * and `console.log` all show `[secret]`. The value sits in a private field, so it is not an own
 * enumerable property either (spread, Object.entries and structuredClone do not copy it).
 * Call `reveal()` only where the bytes go on the wire or into the encrypted store.
 */
export class Secret<T = Uint8Array> {
  readonly #value: T;

  constructor(value: T) {
    this.#value = value;
  }

  reveal(): T {
    return this.#value;
  }

  toString(): string {
    return MASK;
  }

  toJSON(): string {
    return MASK;
  }

  [Symbol.toPrimitive](): string {
    return MASK;
  }

  [inspect.custom](): string {
    return MASK;
  }
}

/** Byte length of a secret without revealing it to the caller's logs. */
export function secretLength(s: Secret): number {
  return s.reveal().length;
}

/** Constant-time equality of two byte secrets (different lengths are simply unequal). */
export function secretEquals(a: Secret, b: Secret): boolean {
  const x = a.reveal();
  const y = b.reveal();
  return x.length === y.length && timingSafeEqual(x, y);
}

// ---------------------------------------------------------------------------------------------
// Errors

/** Bad key material or an identity that cannot be built. The message never holds secret bytes. */
export class CredentialError extends Error {
  override readonly name = 'CredentialError';
}

// ---------------------------------------------------------------------------------------------
// Generated credentials (what the session engine stores as pending, per server SSID)

export interface PskCredential {
  readonly mode: 'psk';
  /** PSK identity bytes (res 3), usually the UTF-8 endpoint name. */
  readonly identity: Uint8Array;
  /** The pre-shared key (res 5). */
  readonly key: Secret;
}

export interface RpkCredential {
  readonly mode: 'rpk';
  /** Client public key, DER SubjectPublicKeyInfo (res 3), 91 bytes for P-256. */
  readonly publicKey: Uint8Array;
  /** Client private key, PKCS#8 DER (res 5), 138 bytes for P-256. */
  readonly privateKey: Secret;
}

export type GeneratedCredential = PskCredential | RpkCredential;

/** Credentials generated for one device: per server SSID, and for the bootstrap account. */
export interface ProfileCredentials {
  readonly servers: ReadonlyMap<number, GeneratedCredential>;
  readonly bootstrap?: GeneratedCredential;
}

/** Length of generated PSKs: 16 bytes (128 bit), the spec's recommended minimum. */
export const PSK_KEY_LENGTH = 16;
/** Identities up to 128 bytes must be supported by every client (objects.md §2.1). */
export const MAX_PSK_IDENTITY = 128;
/** Keys up to 64 bytes must be supported by every client. */
export const MAX_PSK_KEY = 64;

// ---------------------------------------------------------------------------------------------
// PSK identity templates

/**
 * One piece of an identity template: literal text, or a placeholder. Placeholders:
 * `{endpoint}` the endpoint name (its bytes as received), `{ssid}` the server's Short Server ID,
 * `{random}` 16 random hex digits (8 bytes). `{{` and `}}` stand for literal braces.
 */
export type TemplatePart =
  | { readonly kind: 'text'; readonly text: string }
  | { readonly kind: 'endpoint' | 'ssid' | 'random' };

const PLACEHOLDERS = new Set(['endpoint', 'ssid', 'random']);

/** Parses an identity template; throws CredentialError naming the problem. */
export function parseIdentityTemplate(template: string): TemplatePart[] {
  const parts: TemplatePart[] = [];
  let text = '';
  for (let i = 0; i < template.length; i++) {
    const c = template[i];
    if (c === '{' && template[i + 1] === '{') {
      text += '{';
      i++;
    } else if (c === '}' && template[i + 1] === '}') {
      text += '}';
      i++;
    } else if (c === '{') {
      const end = template.indexOf('}', i);
      if (end < 0) throw new CredentialError(`unclosed "{" at position ${i} (write "{{" for a literal brace)`);
      const name = template.slice(i + 1, end);
      if (!PLACEHOLDERS.has(name)) {
        throw new CredentialError(`unknown placeholder {${name}}; use {endpoint}, {ssid} or {random}`);
      }
      if (text) parts.push({ kind: 'text', text });
      text = '';
      parts.push({ kind: name as 'endpoint' | 'ssid' | 'random' });
      i = end;
    } else if (c === '}') {
      throw new CredentialError(`stray "}" at position ${i} (write "}}" for a literal brace)`);
    } else {
      text += c;
    }
  }
  if (text) parts.push({ kind: 'text', text });
  if (parts.length === 0) throw new CredentialError('the template is empty');
  return parts;
}

const utf8 = new TextEncoder();

/** Expands an identity template to bytes. Throws CredentialError when the result is empty or too long. */
export function expandIdentityTemplate(template: string, endpoint: string | Uint8Array, ssid?: number): Uint8Array {
  const chunks: Uint8Array[] = [];
  for (const p of parseIdentityTemplate(template)) {
    switch (p.kind) {
      case 'text':
        chunks.push(utf8.encode(p.text));
        break;
      case 'endpoint':
        chunks.push(toBytes(endpoint));
        break;
      case 'ssid':
        if (ssid === undefined) throw new CredentialError('the template uses {ssid} but no Short Server ID was given');
        chunks.push(utf8.encode(String(ssid)));
        break;
      case 'random':
        chunks.push(utf8.encode(randomBytes(8).toString('hex')));
        break;
    }
  }
  const identity: Uint8Array = Buffer.concat(chunks);
  if (identity.length === 0) throw new CredentialError('the PSK identity is empty (empty endpoint name?)');
  if (identity.length > MAX_PSK_IDENTITY) {
    throw new CredentialError(`the PSK identity is ${identity.length} bytes; clients need only support ${MAX_PSK_IDENTITY}`);
  }
  return identity;
}

/** A fresh PSK: identity from the template (default: the endpoint name), random 16-byte key. */
export function generatePsk(endpoint: string | Uint8Array, template = '{endpoint}', ssid?: number): PskCredential {
  const identity = expandIdentityTemplate(template, endpoint, ssid);
  return { mode: 'psk', identity, key: new Secret(new Uint8Array(randomBytes(PSK_KEY_LENGTH))) };
}

/** Builds a PSK credential from stored bytes (e.g. a pending one re-used), checking sizes. */
export function pskCredential(identity: Uint8Array, key: Uint8Array): PskCredential {
  if (identity.length === 0 || identity.length > MAX_PSK_IDENTITY) {
    throw new CredentialError(`a PSK identity must be 1..${MAX_PSK_IDENTITY} bytes, got ${identity.length}`);
  }
  if (key.length === 0 || key.length > MAX_PSK_KEY) throw new CredentialError(`a PSK must be 1..${MAX_PSK_KEY} bytes, got ${key.length}`);
  return { mode: 'psk', identity, key: new Secret(key) };
}

// ---------------------------------------------------------------------------------------------
// P-256 raw public keys

/** SubjectPublicKeyInfo up to the BIT STRING contents: SEQ{SEQ{ecPublicKey, prime256v1}, BIT STRING(66) 00}. */
export const P256_SPKI_PREFIX: Uint8Array = fromHex('3059301306072a8648ce3d020106082a8648ce3d030107034200');
/** PKCS#8 up to the private scalar: SEQ{0, SEQ{ecPublicKey, prime256v1}, OCTET STRING{SEQ{1, OCTET STRING(32)}}}. */
export const P256_PKCS8_PREFIX: Uint8Array = fromHex('308187020100301306072a8648ce3d020106082a8648ce3d030107046d306b0201010420');
/** Between scalar and public point in the PKCS#8 layout: `[1] { BIT STRING(66) 00 }`. */
export const P256_PKCS8_PUBLIC_TAG: Uint8Array = fromHex('a144034200');
export const P256_SPKI_LENGTH = 91;
export const P256_PKCS8_LENGTH = 138;

const OID_EC_PUBLIC_KEY = fromHex('2a8648ce3d0201'); // 1.2.840.10045.2.1
const OID_PRIME256V1 = fromHex('2a8648ce3d030107'); // 1.2.840.10045.3.1.7

export interface P256KeyPair {
  /** The 32-byte private scalar. */
  readonly scalar: Secret;
  /** The uncompressed public point, `04 || X || Y` (65 bytes). */
  readonly publicPoint: Uint8Array;
  /** SubjectPublicKeyInfo DER (91 bytes): Security res 3 (client) / res 4 (server). */
  readonly spki: Uint8Array;
  /** PKCS#8 DER (138 bytes): Security res 5. */
  readonly pkcs8: Secret;
}

/**
 * A fresh P-256 key pair, generated by node:crypto (OpenSSL: ~20 µs, where @noble/curves takes
 * ~650 µs for the scalar multiplication - 7 % of the server's CPU in an RPK bootstrap storm). The
 * PKCS#8 is marked as ours, so the store does not parse it again (store/material.ts).
 */
export function generateRpkKeyPair(): P256KeyPair {
  const ecdh = createECDH('prime256v1');
  const publicPoint = new Uint8Array(ecdh.generateKeys());
  const d = ecdh.getPrivateKey();
  // 1 ≤ d < n (OpenSSL's generation); left-padded to 32 bytes should the encoding be shorter.
  const scalar = new Uint8Array(32);
  scalar.set(d, 32 - d.length);
  d.fill(0);
  const pkcs8 = encodeP256Pkcs8(scalar, publicPoint);
  markGeneratedPkcs8(pkcs8);
  return { scalar: new Secret(scalar), publicPoint, spki: encodeP256Spki(publicPoint), pkcs8: new Secret(pkcs8) };
}

/** The key pair of a private scalar (validated: 1 ≤ d < n). */
export function keyPairFromScalar(scalar: Uint8Array): P256KeyPair {
  if (scalar.length !== 32 || !p256.utils.isValidSecretKey(scalar)) throw new CredentialError('not a valid P-256 private scalar');
  const publicPoint = new Uint8Array(p256.getPublicKey(scalar, false));
  return {
    scalar: new Secret(new Uint8Array(scalar)),
    publicPoint,
    spki: encodeP256Spki(publicPoint),
    pkcs8: new Secret(encodeP256Pkcs8(scalar, publicPoint)),
  };
}

/** A generated RPK credential for the Security object. */
/**
 * A fresh P-256 key pair for one of this lwbs's own servers, in the form the store keeps
 * (`store.serverKeys.getOrCreate(name, generateServerKeyPair)`).
 */
export function generateServerKeyPair(): { publicKey: Uint8Array; privateKey: Uint8Array } {
  const kp = generateRpkKeyPair();
  return { publicKey: kp.spki, privateKey: kp.pkcs8.reveal() };
}

export function generateRpk(): RpkCredential {
  const kp = generateRpkKeyPair();
  return { mode: 'rpk', publicKey: kp.spki, privateKey: kp.pkcs8 };
}

/** Builds an RPK credential from stored DER (SPKI + PKCS#8 or SEC1), checking they belong together. */
export function rpkCredential(publicKeyDer: Uint8Array, privateKeyDer: Uint8Array): RpkCredential {
  const pub = parseP256PublicKey(publicKeyDer);
  const priv = parseP256PrivateKey(privateKeyDer);
  if (!bytesEqual(pub, priv.publicPoint)) throw new CredentialError('the public key does not belong to the private key');
  return { mode: 'rpk', publicKey: encodeP256Spki(pub), privateKey: priv.pkcs8 };
}

/** SubjectPublicKeyInfo DER of an uncompressed P-256 point (65 bytes, `04 || X || Y`). */
export function encodeP256Spki(point: Uint8Array): Uint8Array {
  checkPoint(point);
  const out = new Uint8Array(P256_SPKI_LENGTH);
  out.set(P256_SPKI_PREFIX, 0);
  out.set(point, P256_SPKI_PREFIX.length);
  return out;
}

/** PKCS#8 DER of a P-256 private scalar with its public point (the layout OpenSSL and node emit). */
export function encodeP256Pkcs8(scalar: Uint8Array, point: Uint8Array): Uint8Array {
  if (scalar.length !== 32) throw new CredentialError('a P-256 private scalar is 32 bytes');
  checkPoint(point);
  const out = new Uint8Array(P256_PKCS8_LENGTH);
  let o = 0;
  out.set(P256_PKCS8_PREFIX, o);
  o += P256_PKCS8_PREFIX.length;
  out.set(scalar, o);
  o += 32;
  out.set(P256_PKCS8_PUBLIC_TAG, o);
  o += P256_PKCS8_PUBLIC_TAG.length;
  out.set(point, o);
  return out;
}

function checkPoint(point: Uint8Array): void {
  if (point.length !== 65 || point[0] !== 0x04) throw new CredentialError('a P-256 public point must be 65 bytes starting with 04');
}

/**
 * The uncompressed public point (65 bytes) of a P-256 public key given as SubjectPublicKeyInfo
 * DER (uncompressed or compressed point) or as a bare SEC1 point. Checks the point is on the curve.
 */
export function parseP256PublicKey(der: Uint8Array): Uint8Array {
  let point: Uint8Array;
  if ((der.length === 65 && der[0] === 0x04) || (der.length === 33 && (der[0] === 0x02 || der[0] === 0x03))) {
    point = der;
  } else {
    const r = new DerReader(der, 'public key');
    const spki = r.enter(0x30);
    r.end();
    const alg = spki.enter(0x30);
    checkEcAlgorithm(alg, true);
    const bits = spki.read(0x03);
    spki.end();
    if (bits.length < 2 || bits[0] !== 0) throw new CredentialError('public key: the BIT STRING must have 0 unused bits');
    point = bits.subarray(1);
  }
  return normalisePoint(point, 'public key');
}

function normalisePoint(point: Uint8Array, what: string): Uint8Array {
  try {
    return new Uint8Array(p256.Point.fromBytes(point).toBytes(false));
  } catch {
    throw new CredentialError(`${what}: not a valid P-256 point`);
  }
}

export interface ParsedPrivateKey {
  readonly scalar: Secret;
  readonly publicPoint: Uint8Array;
  /** Canonical PKCS#8 (138 bytes), whatever layout was given. */
  readonly pkcs8: Secret;
}

/**
 * Reads a P-256 private key in PKCS#8 DER or SEC1 `ECPrivateKey` DER (the Core 1.2 pack example
 * uses SEC1). The embedded public key is optional; when present it must match the scalar.
 */
export function parseP256PrivateKey(der: Uint8Array): ParsedPrivateKey {
  const r = new DerReader(der, 'private key');
  const outer = r.enter(0x30);
  r.end();
  const version = outer.read(0x02);
  let ec: DerReader;
  if (version.length === 1 && version[0] === 0) {
    // PKCS#8: version 0, AlgorithmIdentifier, OCTET STRING { ECPrivateKey }, [attributes]
    checkEcAlgorithm(outer.enter(0x30), false);
    const inner = new DerReader(outer.read(0x04), 'private key');
    ec = inner.enter(0x30);
    inner.end();
    if (!bytesEqual(ec.read(0x02), Uint8Array.of(1))) throw new CredentialError('private key: ECPrivateKey version must be 1');
  } else if (version.length === 1 && version[0] === 1) {
    ec = outer; // SEC1 ECPrivateKey
  } else {
    throw new CredentialError('private key: neither PKCS#8 (version 0) nor SEC1 (version 1)');
  }
  let scalar = ec.read(0x04);
  // Some encoders strip leading zero bytes of the scalar; left-pad to 32.
  if (scalar.length > 32) throw new CredentialError('private key: the scalar is longer than 32 bytes (not P-256?)');
  if (scalar.length < 32) {
    const padded = new Uint8Array(32);
    padded.set(scalar, 32 - scalar.length);
    scalar = padded;
  }
  let embedded: Uint8Array | undefined;
  if (ec.peek() === 0xa0) {
    const params = ec.enter(0xa0);
    if (!bytesEqual(params.read(0x06), OID_PRIME256V1)) throw new CredentialError('private key: the curve is not P-256');
  }
  if (ec.peek() === 0xa1) {
    const pub = ec.enter(0xa1);
    const bits = pub.read(0x03);
    if (bits.length < 2 || bits[0] !== 0) throw new CredentialError('private key: bad public key BIT STRING');
    embedded = normalisePoint(bits.subarray(1), 'private key');
  }
  let kp: P256KeyPair;
  try {
    kp = keyPairFromScalar(scalar);
  } catch {
    throw new CredentialError('private key: not a valid P-256 private scalar');
  }
  if (embedded !== undefined && !bytesEqual(embedded, kp.publicPoint)) {
    throw new CredentialError('private key: the embedded public key does not match the private scalar');
  }
  return { scalar: kp.scalar, publicPoint: kp.publicPoint, pkcs8: kp.pkcs8 };
}

/** AlgorithmIdentifier { id-ecPublicKey, prime256v1 }. */
function checkEcAlgorithm(alg: DerReader, isPublic: boolean): void {
  const what = isPublic ? 'public key' : 'private key';
  if (!bytesEqual(alg.read(0x06), OID_EC_PUBLIC_KEY)) throw new CredentialError(`${what}: not an EC key (id-ecPublicKey)`);
  if (!bytesEqual(alg.read(0x06), OID_PRIME256V1)) throw new CredentialError(`${what}: the curve is not P-256 (prime256v1)`);
  alg.end();
}

/** A minimal DER reader over one level of a structure (definite lengths up to 3 bytes). */
class DerReader {
  private pos = 0;

  constructor(
    private readonly buf: Uint8Array,
    private readonly what: string,
  ) {}

  peek(): number | undefined {
    return this.pos < this.buf.length ? this.buf[this.pos] : undefined;
  }

  /** Reads one element with the given tag and returns its contents. */
  read(tag: number): Uint8Array {
    const b = this.buf;
    if (this.pos >= b.length) throw new CredentialError(`${this.what}: truncated DER (expected tag 0x${hex2(tag)})`);
    if (b[this.pos] !== tag) throw new CredentialError(`${this.what}: expected DER tag 0x${hex2(tag)}, found 0x${hex2(b[this.pos]!)}`);
    let p = this.pos + 1;
    if (p >= b.length) throw new CredentialError(`${this.what}: truncated DER length`);
    let len = b[p++]!;
    if (len & 0x80) {
      const n = len & 0x7f;
      if (n === 0 || n > 3) throw new CredentialError(`${this.what}: unsupported DER length form`);
      if (p + n > b.length) throw new CredentialError(`${this.what}: truncated DER length`);
      len = 0;
      for (let k = 0; k < n; k++) len = len * 256 + b[p++]!;
    }
    if (p + len > b.length) throw new CredentialError(`${this.what}: truncated DER element`);
    this.pos = p + len;
    return b.subarray(p, p + len);
  }

  /** Reads the next element of any tag, returning it whole (tag and length included). */
  readWhole(): Uint8Array {
    const start = this.pos;
    const tag = this.peek();
    if (tag === undefined) throw new CredentialError(`${this.what}: truncated DER`);
    this.read(tag);
    return this.buf.subarray(start, this.pos);
  }

  enter(tag: number): DerReader {
    return new DerReader(this.read(tag), this.what);
  }

  /** Throws unless every byte was consumed. */
  end(): void {
    if (this.pos !== this.buf.length) throw new CredentialError(`${this.what}: unexpected bytes after the DER structure`);
  }
}

/**
 * Splits concatenated DER elements (a certificate chain given as one blob) into elements.
 * Throws CredentialError when the bytes are not a sequence of complete DER elements.
 */
export function splitDer(bytes: Uint8Array, what: string): Uint8Array[] {
  const out: Uint8Array[] = [];
  const r = new DerReader(bytes, what);
  while (r.peek() !== undefined) out.push(r.readWhole());
  if (out.length === 0) throw new CredentialError(`${what}: empty`);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Generation for a whole profile

/** True when the security spec asks for per-device credentials. */
export function isGenerated(security: SecuritySpec): security is Extract<SecuritySpec, { generate: true }> {
  return (security.mode === 'psk' || security.mode === 'rpk') && security.generate;
}

/**
 * Generates every per-device credential a profile needs for `endpoint`: one per server whose
 * security says `generate` (all hand-off servers with psk/rpk), and the bootstrap account's when
 * it says so. The session engine stores them as pending, then passes them to the planner.
 */
export function generateCredentials(profile: Profile, endpoint: string | Uint8Array): ProfileCredentials {
  const servers = new Map<number, GeneratedCredential>();
  for (const s of profile.servers) {
    const c = generateFor(s.security, endpoint, s.shortServerId);
    if (c) servers.set(s.shortServerId, c);
  }
  const bs = profile.bootstrapAccount ? generateFor(profile.bootstrapAccount.security, endpoint, undefined) : undefined;
  return bs ? { servers, bootstrap: bs } : { servers };
}

function generateFor(security: SecuritySpec, endpoint: string | Uint8Array, ssid: number | undefined): GeneratedCredential | undefined {
  if (security.mode === 'psk' && security.generate) return generatePsk(endpoint, security.identityTemplate, ssid);
  if (security.mode === 'rpk' && security.generate) return generateRpk();
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Small helpers

function fromHex(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, 'hex'));
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0');
}
