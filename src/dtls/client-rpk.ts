/**
 * The raw-public-key side of the DTLS client (client.ts): loading the device's P-256 key pair
 * (RFC 7250 RawPublicKey, as LwM2M security mode 1 keeps it: SPKI DER in /0/x/3, PKCS#8 DER in
 * /0/x/5, the server's SPKI in /0/x/4), the ClientHello extensions an ECDHE_ECDSA offer needs
 * (RFC 8422 §5.1, RFC 7250 §3), and the checks of the server's half of the negotiation.
 * Nothing here ever quotes key bytes in an error.
 */
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { CertificateType, ECDSA_SHA256, ECPointFormat, ExtensionType, NamedGroup } from './constants.js';
import { parseP256Spki } from './ecc.js';
import type { Extension } from './messages.js';

export interface DtlsClientRpk {
  /** Our public key: SubjectPublicKeyInfo DER (P-256). */
  readonly publicKey: Uint8Array;
  /** Our private key: PKCS#8 DER (or a KeyObject). */
  readonly privateKey: Uint8Array | KeyObject;
  /**
   * The server's public key, SubjectPublicKeyInfo DER (LwM2M /0/x/4). When given, the handshake
   * fails with bad_certificate unless the server presents exactly this key; when absent, any
   * P-256 key the server proves it holds is accepted.
   */
  readonly serverPublicKey?: Uint8Array;
}

export interface ResolvedRpk {
  /** Canonical SPKI DER (uncompressed point) of our key. */
  readonly spki: Buffer;
  readonly privateKey: KeyObject;
  /** Canonical SPKI DER of the expected server key. */
  readonly serverSpki: Buffer | undefined;
}

/**
 * A P-256 private key (PKCS#8 DER or a KeyObject) that must belong to the public key `spki`;
 * RangeError naming `field` (never quoting key bytes) otherwise. Shared by the RPK and X.509 clients.
 */
export function loadP256PrivateKey(key: Uint8Array | KeyObject, field: string, spki: Buffer, owner: string): KeyObject {
  let privateKey: KeyObject;
  try {
    privateKey = key instanceof Uint8Array ? createPrivateKey({ key: Buffer.from(key), format: 'der', type: 'pkcs8' }) : key;
  } catch {
    throw new RangeError(`${field} must be a PKCS#8 DER private key`);
  }
  if (privateKey.type !== 'private' || privateKey.asymmetricKeyType !== 'ec' || privateKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new RangeError(`${field} must be a P-256 (secp256r1) private key`);
  }
  const derived = parseP256Spki(createPublicKey(privateKey).export({ format: 'der', type: 'spki' }));
  if (derived === undefined || !derived.spki.equals(spki)) throw new RangeError(`${field} does not belong to ${owner}`);
  return privateKey;
}

/** Checks and loads `rpk`; RangeError (never quoting key bytes) when it does not parse or the halves do not belong together. */
export function resolveClientRpk(rpk: DtlsClientRpk): ResolvedRpk {
  if (rpk.publicKey === undefined || rpk.privateKey === undefined) throw new TypeError('rpk: { publicKey, privateKey } is required');
  const pub = parseP256Spki(rpk.publicKey);
  if (pub === undefined) throw new RangeError('rpk.publicKey must be a P-256 SubjectPublicKeyInfo (DER)');
  const privateKey = loadP256PrivateKey(rpk.privateKey, 'rpk.privateKey', pub.spki, 'rpk.publicKey');
  let serverSpki: Buffer | undefined;
  if (rpk.serverPublicKey !== undefined && rpk.serverPublicKey.length > 0) {
    const s = parseP256Spki(rpk.serverPublicKey);
    if (s === undefined) throw new RangeError('rpk.serverPublicKey must be a P-256 SubjectPublicKeyInfo (DER)');
    serverSpki = s.spki;
  }
  return { spki: pub.spki, privateKey, serverSpki };
}

/** The P-256 public key (canonical SPKI DER) of a PKCS#8 DER private key; RangeError when it is not one. */
export function publicKeyOfPrivate(pkcs8: Uint8Array): Buffer {
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: Buffer.from(pkcs8), format: 'der', type: 'pkcs8' });
  } catch {
    throw new RangeError('not a PKCS#8 DER private key');
  }
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') throw new RangeError('not a P-256 (secp256r1) private key');
  const spki = parseP256Spki(createPublicKey(key).export({ format: 'der', type: 'spki' }));
  if (spki === undefined) throw new RangeError('not a P-256 (secp256r1) private key');
  return spki.spki;
}

const u16list = (v: readonly number[]): Buffer => {
  const b = Buffer.alloc(2 + v.length * 2);
  b.writeUInt16BE(v.length * 2, 0);
  v.forEach((x, i) => b.writeUInt16BE(x, 2 + i * 2));
  return b;
};
const u8list = (v: readonly number[]): Buffer => Buffer.from([v.length, ...v]);

/**
 * supported_groups (secp256r1), ec_point_formats (uncompressed), signature_algorithms
 * (ecdsa_secp256r1_sha256), and with `rawPublicKeys` both certificate types RawPublicKey (without:
 * no certificate type extensions, which means X.509 both ways, RFC 7250 §4.1).
 */
export function ecdheHelloExtensions(rawPublicKeys = true): Extension[] {
  return [
    { type: ExtensionType.supportedGroups, data: u16list([NamedGroup.secp256r1]) },
    { type: ExtensionType.ecPointFormats, data: u8list([ECPointFormat.uncompressed]) },
    { type: ExtensionType.signatureAlgorithms, data: u16list([ECDSA_SHA256]) },
    ...(rawPublicKeys ? [
      { type: ExtensionType.clientCertificateType, data: u8list([CertificateType.rawPublicKey]) },
      { type: ExtensionType.serverCertificateType, data: u8list([CertificateType.rawPublicKey]) },
    ] : []),
  ];
}

/**
 * RFC 7250 §4.2: a ServerHello choosing an ECDHE_ECDSA suite names the certificate types in one
 * byte each; an absent extension means X.509, which a raw-public-key client (`rpk`) does not do.
 * Undefined when fine, else why not.
 */
export function checkServerCertificateTypes(exts: readonly Extension[] | undefined): string | undefined {
  for (const [type, name] of [[ExtensionType.serverCertificateType, 'server'], [ExtensionType.clientCertificateType, 'client']] as const) {
    const e = exts?.find((x) => x.type === type);
    if (e === undefined) return `the server did not agree to RawPublicKey for the ${name} certificate (X.509 needs the x509 option)`;
    if (e.data.length !== 1 || e.data[0] !== CertificateType.rawPublicKey) return `the server chose ${name}_certificate_type ${e.data.length === 1 ? e.data[0] : '(malformed)'}, not RawPublicKey`;
  }
  return undefined;
}
