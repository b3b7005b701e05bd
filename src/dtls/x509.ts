/**
 * X.509 certificates for the ECDHE_ECDSA suites (RFC 5246 §7.4.2, §7.4.6; RFC 7925 §4.4):
 *
 * - `loadTrustAnchors(ders)`: the CA (or directly trusted device) certificates client chains must
 *   lead to;
 * - `verifyCertificateChain(chain, anchors, now)`: the client's chain, leaf first, each
 *   certificate signed by the next and the last one by a trust anchor (or being one); every
 *   certificate within its validity period; intermediates marked CA by basic constraints; the
 *   leaf's key on P-256 (it signs CertificateVerify with ECDSA-SHA256). The result carries the
 *   TLS alert to send when it fails: unknown_ca (no anchor issued the last certificate),
 *   certificate_expired, bad_certificate (unparseable, broken chain or signature, intermediate
 *   not a CA), unsupported_certificate (leaf key not P-256);
 * - `loadServerCertificate(chain, spki)`: the server's own chain, checked against its key pair;
 * - `certificateNames(der)`: the subject CN and subjectAltName values, which LwM2M compares with
 *   the endpoint name (the bootstrap admission and the registration hand-off do that; dtls/ only
 *   authenticates).
 *
 * Signatures and issuer matching are node:crypto's `X509Certificate` (OpenSSL); names and the
 * validity period are read from the DER here (a small reader, not a general ASN.1 library).
 * Not checked (yet): key usage / extended key usage, path length and name constraints,
 * revocation (CRL/OCSP), critical extensions we do not know.
 */
import { X509Certificate, type KeyObject } from 'node:crypto';
import { AlertDescription } from './constants.js';
import { parseP256Spki } from './ecc.js';

/** At most this many certificates in a client's chain (RFC 7925 §4.4.2: devices send short chains). */
export const MAX_CHAIN_LENGTH = 8;

export interface TrustAnchors {
  readonly certificates: readonly X509Certificate[];
  /** The anchors' DER, to recognise an anchor sent inside a chain. */
  readonly ders: readonly Buffer[];
}

/** Parses the trust anchors (DER). Throws RangeError naming the index of one that does not parse. */
export function loadTrustAnchors(ders: readonly Uint8Array[]): TrustAnchors {
  const certificates = ders.map((d, i) => {
    try {
      return new X509Certificate(Buffer.from(d));
    } catch {
      throw new RangeError(`trustAnchors[${i}] is not a DER X.509 certificate`);
    }
  });
  return { certificates, ders: ders.map((d) => Buffer.from(d)) };
}

/** The server's certificate chain (leaf first, DER), checked to parse and to match its key pair. */
export function loadServerCertificate(chain: readonly Uint8Array[], serverSpki: Buffer): Buffer[] {
  if (chain.length === 0) throw new RangeError('serverCertificate.chain is empty');
  const certs = chain.map((d, i) => {
    try {
      return new X509Certificate(Buffer.from(d));
    } catch {
      throw new RangeError(`serverCertificate.chain[${i}] is not a DER X.509 certificate`);
    }
  });
  const leafSpki = parseP256Spki(certs[0]!.publicKey.export({ format: 'der', type: 'spki' }));
  if (leafSpki === undefined || !leafSpki.spki.equals(serverSpki)) {
    throw new RangeError('serverCertificate: the leaf certificate does not certify serverKey');
  }
  return chain.map((d) => Buffer.from(d));
}

export type ChainVerification =
  | { readonly ok: true; readonly leafKey: KeyObject }
  | { readonly ok: false; readonly alert: number; readonly reason: string };

/**
 * Verifies a client's certificate chain (leaf first, as the Certificate message carries it) at
 * time `now` (ms since the epoch). Never throws.
 */
export function verifyCertificateChain(chain: readonly Buffer[], anchors: TrustAnchors, now: number): ChainVerification {
  const fail = (alert: number, reason: string): ChainVerification => ({ ok: false, alert, reason });
  if (chain.length === 0) return fail(AlertDescription.handshakeFailure, 'no client certificate');
  if (chain.length > MAX_CHAIN_LENGTH) return fail(AlertDescription.badCertificate, `certificate chain longer than ${MAX_CHAIN_LENGTH}`);
  const certs: X509Certificate[] = [];
  const validity: Validity[] = [];
  for (let i = 0; i < chain.length; i++) {
    let v: Validity;
    try {
      certs.push(new X509Certificate(chain[i]!));
      v = certificateValidity(chain[i]!);
    } catch {
      return fail(AlertDescription.badCertificate, `certificate ${i} of the chain does not parse`);
    }
    validity.push(v);
  }
  const leafKey = parseP256Spki(certs[0]!.publicKey.export({ format: 'der', type: 'spki' }));
  if (leafKey === undefined) return fail(AlertDescription.unsupportedCertificate, 'the client certificate key is not on P-256');
  const current = (v: Validity): boolean => now >= v.notBefore && now <= v.notAfter;
  for (let i = 0; i < certs.length; i++) {
    const cert = certs[i]!;
    if (!current(validity[i]!)) return fail(AlertDescription.certificateExpired, `certificate ${i} of the chain is outside its validity period`);
    if (anchors.ders.some((d) => d.equals(chain[i]!))) return { ok: true, leafKey: leafKey.key };
    if (i + 1 < certs.length) {
      const issuer = certs[i + 1]!;
      if (!safeCheckIssued(cert, issuer)) return fail(AlertDescription.badCertificate, `certificate ${i} is not issued by certificate ${i + 1}`);
      if (!safeVerify(cert, issuer)) return fail(AlertDescription.badCertificate, `certificate ${i} has a bad signature`);
      if (!issuer.ca) return fail(AlertDescription.badCertificate, `certificate ${i + 1} is not a CA (basic constraints)`);
      continue;
    }
    const candidates = anchors.certificates.filter((a) => safeCheckIssued(cert, a));
    if (candidates.length === 0) return fail(AlertDescription.unknownCa, 'the chain does not lead to a trust anchor');
    const signer = candidates.find((a) => safeVerify(cert, a));
    if (signer === undefined) return fail(AlertDescription.badCertificate, `certificate ${i} has a bad signature`);
    let anchorValidity: Validity;
    try {
      anchorValidity = certificateValidity(signer.raw);
    } catch {
      return fail(AlertDescription.badCertificate, 'trust anchor validity does not parse');
    }
    if (!current(anchorValidity)) return fail(AlertDescription.certificateExpired, 'the trust anchor is outside its validity period');
    return { ok: true, leafKey: leafKey.key };
  }
  return fail(AlertDescription.unknownCa, 'the chain does not lead to a trust anchor');
}

function safeCheckIssued(cert: X509Certificate, issuer: X509Certificate): boolean {
  try {
    return cert.checkIssued(issuer);
  } catch {
    return false;
  }
}

function safeVerify(cert: X509Certificate, issuer: X509Certificate): boolean {
  try {
    return cert.verify(issuer.publicKey);
  } catch {
    return false;
  }
}

// ---- names and validity from the DER ----------------------------------------------------------------

export interface CertificateNames {
  /** The subject's commonName (the last one when there are several: the most specific RDN). */
  readonly cn?: string;
  /** subjectAltName values: dNSName, uniformResourceIdentifier and rfc822Name as text, iPAddress as an address. */
  readonly sans: string[];
}

export interface Validity {
  /** ms since the epoch. */
  readonly notBefore: number;
  readonly notAfter: number;
}

interface Tlv {
  readonly tag: number;
  readonly value: Buffer;
  /** Offset just past this element in the buffer it was read from. */
  readonly end: number;
}

function readTlv(buf: Buffer, off: number): Tlv {
  if (off + 2 > buf.length) throw new RangeError('DER: truncated');
  const tag = buf[off]!;
  if ((tag & 0x1f) === 0x1f) throw new RangeError('DER: multi-byte tags are not supported');
  let len = buf[off + 1]!;
  let p = off + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || p + n > buf.length) throw new RangeError('DER: bad length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[p + i]!;
    p += n;
  }
  if (p + len > buf.length) throw new RangeError('DER: truncated');
  return { tag, value: buf.subarray(p, p + len), end: p + len };
}

function children(value: Buffer): Tlv[] {
  const out: Tlv[] = [];
  for (let off = 0; off < value.length;) {
    const t = readTlv(value, off);
    out.push(t);
    off = t.end;
  }
  return out;
}

const SEQUENCE = 0x30;
const SET = 0x31;
const OID_CN = Buffer.from('550403', 'hex'); // 2.5.4.3
const OID_SAN = Buffer.from('551d11', 'hex'); // 2.5.29.17

/** The TBSCertificate fields from serialNumber on: [serial, signature, issuer, validity, subject, spki, ...optional]. */
function tbsFields(der: Uint8Array): Tlv[] {
  const buf = Buffer.from(der.buffer, der.byteOffset, der.byteLength);
  const cert = readTlv(buf, 0);
  if (cert.tag !== SEQUENCE) throw new RangeError('DER: not a certificate');
  const tbs = children(cert.value)[0];
  if (tbs === undefined || tbs.tag !== SEQUENCE) throw new RangeError('DER: no TBSCertificate');
  const fields = children(tbs.value);
  if (fields[0]?.tag === 0xa0) fields.shift(); // [0] version
  if (fields.length < 6) throw new RangeError('DER: TBSCertificate too short');
  return fields;
}

function decodeTime(t: Tlv): number {
  const s = t.value.toString('latin1');
  let m: RegExpMatchArray | null;
  let year: number;
  if (t.tag === 0x17) { // UTCTime YYMMDDHHMMSSZ
    m = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s);
    if (m === null) throw new RangeError('DER: bad UTCTime');
    const yy = Number(m[1]);
    year = yy >= 50 ? 1900 + yy : 2000 + yy; // RFC 5280 §4.1.2.5.1
  } else if (t.tag === 0x18) { // GeneralizedTime YYYYMMDDHHMMSSZ
    m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s);
    if (m === null) throw new RangeError('DER: bad GeneralizedTime');
    year = Number(m[1]);
  } else {
    throw new RangeError('DER: validity is not a time');
  }
  return Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
}

/** notBefore / notAfter of a certificate (DER). Throws RangeError when malformed. */
export function certificateValidity(der: Uint8Array): Validity {
  const v = tbsFields(der)[3]!;
  if (v.tag !== SEQUENCE) throw new RangeError('DER: bad validity');
  const [nb, na] = children(v.value);
  if (nb === undefined || na === undefined) throw new RangeError('DER: bad validity');
  return { notBefore: decodeTime(nb), notAfter: decodeTime(na) };
}

function decodeString(t: Tlv): string | undefined {
  switch (t.tag) {
    case 0x0c: // UTF8String
      return t.value.toString('utf8');
    case 0x13: // PrintableString
    case 0x16: // IA5String
    case 0x1a: // VisibleString
    case 0x14: // TeletexString (taken as Latin-1, as OpenSSL does)
      return t.value.toString('latin1');
    case 0x1e: { // BMPString: UCS-2 big-endian
      if (t.value.length % 2 !== 0) return undefined;
      const le = Buffer.from(t.value);
      le.swap16();
      return le.toString('utf16le');
    }
    case 0x1c: { // UniversalString: UCS-4 big-endian
      if (t.value.length % 4 !== 0) return undefined;
      let s = '';
      for (let i = 0; i < t.value.length; i += 4) s += String.fromCodePoint(t.value.readUInt32BE(i));
      return s;
    }
    default:
      return undefined;
  }
}

function formatIp(b: Buffer): string | undefined {
  if (b.length === 4) return [...b].join('.');
  if (b.length === 16) {
    const groups: string[] = [];
    for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16));
    return groups.join(':');
  }
  return undefined;
}

/**
 * The subject CN and subjectAltName entries of a certificate (DER), for comparing with an LwM2M
 * endpoint name. Throws RangeError when the DER is malformed.
 */
export function certificateNames(der: Uint8Array): CertificateNames {
  const fields = tbsFields(der);
  let cn: string | undefined;
  const subject = fields[4]!;
  if (subject.tag !== SEQUENCE) throw new RangeError('DER: bad subject');
  for (const rdn of children(subject.value)) {
    if (rdn.tag !== SET) throw new RangeError('DER: bad RDN');
    for (const atv of children(rdn.value)) {
      const [oid, value] = children(atv.value);
      if (oid?.tag === 0x06 && oid.value.equals(OID_CN) && value !== undefined) cn = decodeString(value) ?? cn;
    }
  }
  const sans: string[] = [];
  const exts = fields.slice(6).find((f) => f.tag === 0xa3);
  if (exts !== undefined) {
    const list = children(exts.value)[0];
    for (const ext of list === undefined ? [] : children(list.value)) {
      const parts = children(ext.value);
      if (parts[0]?.tag !== 0x06 || !parts[0].value.equals(OID_SAN)) continue;
      const octets = parts[parts.length - 1]!;
      if (octets.tag !== 0x04) throw new RangeError('DER: bad extension');
      const names = readTlv(octets.value, 0);
      for (const gn of children(names.value)) {
        if (gn.tag === 0x81 || gn.tag === 0x82 || gn.tag === 0x86) sans.push(gn.value.toString('latin1')); // IA5String
        else if (gn.tag === 0x87) {
          const ip = formatIp(gn.value);
          if (ip !== undefined) sans.push(ip);
        }
      }
    }
  }
  return cn === undefined ? { sans } : { cn, sans };
}

/** True when the certificate's CN or one of its subjectAltName values equals `endpoint` (LwM2M's check in X.509 mode). */
export function certificateMatchesEndpoint(der: Uint8Array, endpoint: string): boolean {
  const n = certificateNames(der);
  return n.cn === endpoint || n.sans.includes(endpoint);
}
