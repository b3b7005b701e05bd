/**
 * The server's own X.509 certificate when the operator configures none: a self-signed
 * certificate over the server's stored P-256 key pair (RFC 5280 profile, ECDSA with SHA-256),
 * written here with a minimal DER writer (only the types a certificate needs) and signed with
 * node:crypto. It is kept in the data directory as PEM and made again when it no longer fits:
 * another key pair, other names, or less than `RENEW_BEFORE_MS` of validity left.
 *
 * Layout (RFC 5280 §4.1):
 *   Certificate  = SEQUENCE { tbsCertificate, AlgorithmIdentifier ecdsa-with-SHA256, BIT STRING signature }
 *   TBS          = SEQUENCE { [0] { INTEGER 2 }, INTEGER serial (16 random bytes, positive),
 *                             ecdsa-with-SHA256, issuer = subject, Validity, subject = { CN },
 *                             SubjectPublicKeyInfo (the stored DER as is),
 *                             [3] { basicConstraints (critical, cA FALSE), keyUsage (critical,
 *                                   digitalSignature), extKeyUsage serverAuth, subjectAltName
 *                                   (dNSName / iPAddress), subjectKeyIdentifier (SHA-1 of the key bits) } }
 * Times are UTCTime up to 2049 and GeneralizedTime from 2050 (§4.1.2.5). A device that holds this
 * certificate as its /0/x/5 (certificate usage 3, "domain-issued", the LwM2M default) matches it
 * exactly; one that checks the name finds the host of the server's URI in CN and subjectAltName.
 */
import { createHash, createPrivateKey, createPublicKey, randomBytes, sign, X509Certificate } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { certificateNames, certificateValidity } from './x509.js';

// ---- a minimal DER writer ----------------------------------------------------------------------

function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** One TLV: tag byte, definite length, contents. */
export function der(tag: number, ...content: readonly Uint8Array[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), derLength(body.length), body]);
}

const seq = (...c: readonly Uint8Array[]): Buffer => der(0x30, ...c);
const set = (...c: readonly Uint8Array[]): Buffer => der(0x31, ...c);
const explicit = (n: number, ...c: readonly Uint8Array[]): Buffer => der(0xa0 | n, ...c);
const octets = (b: Uint8Array): Buffer => der(0x04, b);
const bool = (v: boolean): Buffer => der(0x01, Buffer.from([v ? 0xff : 0x00]));
/** BIT STRING with no unused bits. */
const bits = (b: Uint8Array): Buffer => der(0x03, Buffer.from([0]), b);

/** A non-negative INTEGER from big-endian magnitude bytes (minimal, with a 0x00 pad when the top bit is set). */
export function derUnsigned(magnitude: Uint8Array): Buffer {
  let i = 0;
  while (i < magnitude.length - 1 && magnitude[i] === 0) i++;
  const m = Buffer.from(magnitude.subarray(i));
  return der(0x02, m.length === 0 ? Buffer.from([0]) : m[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), m]) : m);
}

/** OBJECT IDENTIFIER from dotted text. */
export function derOid(dotted: string): Buffer {
  const arcs = dotted.split('.').map((s) => {
    if (!/^\d+$/.test(s)) throw new RangeError(`bad OID ${dotted}`);
    return BigInt(s);
  });
  if (arcs.length < 2) throw new RangeError(`bad OID ${dotted}`);
  const out: number[] = [];
  const push = (v: bigint): void => {
    const groups: number[] = [Number(v & 0x7fn)];
    for (let x = v >> 7n; x > 0n; x >>= 7n) groups.unshift(Number(x & 0x7fn) | 0x80);
    out.push(...groups);
  };
  push(arcs[0]! * 40n + arcs[1]!);
  for (const a of arcs.slice(2)) push(a);
  return der(0x06, Buffer.from(out));
}

/** UTCTime (years 1950..2049) or GeneralizedTime, whole seconds, `Z` (RFC 5280 §4.1.2.5). */
export function derTime(ms: number): Buffer {
  const iso = new Date(Math.floor(ms / 1000) * 1000).toISOString(); // 2026-01-02T03:04:05.000Z
  const year = Number(iso.slice(0, 4));
  const digits = iso.slice(0, 19).replace(/[-:T]/g, ''); // YYYYMMDDHHMMSS
  if (year >= 1950 && year <= 2049) return der(0x17, Buffer.from(`${digits.slice(2)}Z`, 'latin1'));
  if (year < 0 || year > 9999) throw new RangeError('certificate time out of range');
  return der(0x18, Buffer.from(`${digits}Z`, 'latin1'));
}

// ---- certificates ------------------------------------------------------------------------------

const OID_ECDSA_SHA256 = '1.2.840.10045.4.3.2';
const OID_CN = '2.5.4.3';
const OID_BASIC_CONSTRAINTS = '2.5.29.19';
const OID_KEY_USAGE = '2.5.29.15';
const OID_EXT_KEY_USAGE = '2.5.29.37';
const OID_SUBJECT_ALT_NAME = '2.5.29.17';
const OID_SUBJECT_KEY_ID = '2.5.29.14';
const OID_SERVER_AUTH = '1.3.6.1.5.5.7.3.1';

/** What the certificate names: CN, and subjectAltName entries (DNS names and IP addresses). */
export interface CertificateSubject {
  readonly commonName: string;
  readonly dnsNames: readonly string[];
  readonly ipAddresses: readonly string[];
}

export interface SelfSignedOptions {
  /** SubjectPublicKeyInfo DER of a P-256 key. */
  readonly publicKey: Uint8Array;
  /** PKCS#8 DER of the matching private key. */
  readonly privateKey: Uint8Array;
  readonly subject: CertificateSubject;
  /** ms since the epoch. */
  readonly notBefore: number;
  readonly notAfter: number;
  /** Positive serial number bytes (default: 16 random bytes). */
  readonly serialNumber?: Uint8Array;
}

/** IPv4 or IPv6 text → 4 or 16 bytes (RFC 5280 §4.2.1.6 iPAddress). */
export function ipBytes(text: string): Buffer {
  const v = isIP(text);
  if (v === 4) return Buffer.from(text.split('.').map(Number));
  if (v !== 6) throw new RangeError(`not an IP address: ${JSON.stringify(text)}`);
  let s = text;
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(s);
  if (dotted) {
    const b = dotted.slice(1, 5).map(Number) as [number, number, number, number];
    s = `${s.slice(0, dotted.index)}${((b[0] << 8) | b[1]).toString(16)}:${((b[2] << 8) | b[3]).toString(16)}`;
  }
  const halves = s.split('::');
  const groupsOf = (p: string | undefined): string[] => (p === undefined || p === '' ? [] : p.split(':'));
  const head = groupsOf(halves[0]);
  const tail = groupsOf(halves[1]);
  const groups = halves.length === 2 ? [...head, ...new Array<string>(8 - head.length - tail.length).fill('0'), ...tail] : head;
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

function extension(oid: string, critical: boolean, value: Uint8Array): Buffer {
  return seq(derOid(oid), ...(critical ? [bool(true)] : []), octets(value));
}

/** The SPKI of a P-256 key with the point uncompressed, and that point (04 || x || y). */
function canonicalP256(spki: Uint8Array): { spki: Buffer; point: Buffer } {
  const pub = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
  if (pub.asymmetricKeyType !== 'ec' || pub.asymmetricKeyDetails?.namedCurve !== 'prime256v1') throw new RangeError('publicKey is not a P-256 key');
  const jwk = pub.export({ format: 'jwk' });
  const point = Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url')]);
  return { spki: createPublicKey({ key: jwk, format: 'jwk' }).export({ format: 'der', type: 'spki' }), point };
}

/** A self-signed X.509 v3 certificate (DER) for the server's key pair. Throws RangeError on bad input. */
export function issueSelfSignedCertificate(o: SelfSignedOptions): Buffer {
  const { spki, point } = canonicalP256(o.publicKey);
  const priv = createPrivateKey({ key: Buffer.from(o.privateKey), format: 'der', type: 'pkcs8' });
  if (!canonicalP256(createPublicKey(priv).export({ format: 'der', type: 'spki' })).spki.equals(spki)) {
    throw new RangeError('privateKey does not belong to publicKey');
  }
  if (o.subject.commonName === '') throw new RangeError('the common name is empty');
  if (!(o.notAfter > o.notBefore)) throw new RangeError('notAfter must be after notBefore');
  const serial = o.serialNumber === undefined ? randomBytes(16) : Buffer.from(o.serialNumber);
  if (o.serialNumber === undefined) serial[0] = (serial[0]! & 0x7f) | 0x40; // positive, 16 significant bytes
  if (serial.every((b) => b === 0) || serial[0]! & 0x80) throw new RangeError('the serial number must be positive (top bit clear)');

  const algorithm = seq(derOid(OID_ECDSA_SHA256));
  const name = seq(set(seq(derOid(OID_CN), der(0x0c, Buffer.from(o.subject.commonName, 'utf8')))));
  const altNames = [
    ...o.subject.dnsNames.map((d) => der(0x82, Buffer.from(d, 'latin1'))),
    ...o.subject.ipAddresses.map((ip) => der(0x87, ipBytes(ip))),
  ];
  const extensions = [
    extension(OID_BASIC_CONSTRAINTS, true, seq()),
    extension(OID_KEY_USAGE, true, der(0x03, Buffer.from([0x07, 0x80]))), // digitalSignature (bit 0), 7 unused bits
    extension(OID_EXT_KEY_USAGE, false, seq(derOid(OID_SERVER_AUTH))),
    ...(altNames.length > 0 ? [extension(OID_SUBJECT_ALT_NAME, false, seq(...altNames))] : []),
    extension(OID_SUBJECT_KEY_ID, false, octets(createHash('sha1').update(point).digest())),
  ];
  const tbs = seq(
    explicit(0, derUnsigned(Buffer.from([2]))),
    derUnsigned(serial),
    algorithm,
    name,
    seq(derTime(o.notBefore), derTime(o.notAfter)),
    name,
    spki,
    explicit(3, seq(...extensions)),
  );
  const signature = sign('sha256', tbs, { key: priv, dsaEncoding: 'der' });
  return seq(tbs, algorithm, bits(signature));
}

// ---- PEM ---------------------------------------------------------------------------------------

export function certificatePem(ders: readonly Uint8Array[]): string {
  return ders
    .map((d) => `-----BEGIN CERTIFICATE-----\n${Buffer.from(d).toString('base64').replace(/.{64}/g, '$&\n').replace(/\n?$/, '\n')}-----END CERTIFICATE-----\n`)
    .join('');
}

/**
 * The certificates in a file's bytes: every `CERTIFICATE` PEM block in order, or the bytes
 * themselves as one DER certificate when there is no PEM. Throws RangeError saying what is wrong.
 */
export function parseCertificateFile(bytes: Buffer): Buffer[] {
  const text = bytes.toString('latin1');
  if (text.includes('-----BEGIN')) {
    const out: Buffer[] = [];
    const re = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;
    for (let m = re.exec(text); m !== null; m = re.exec(text)) {
      if (m[1] !== 'CERTIFICATE' && m[1] !== 'X509 CERTIFICATE') continue;
      out.push(Buffer.from(m[2]!.replace(/\s+/g, ''), 'base64'));
    }
    if (out.length === 0) throw new RangeError('no CERTIFICATE PEM block');
    out.forEach((d, i) => checkCertificate(d, `certificate ${i + 1} of the file`));
    return out;
  }
  if (bytes.length === 0) throw new RangeError('the file is empty');
  checkCertificate(bytes, 'the file');
  return [Buffer.from(bytes)];
}

function checkCertificate(d: Buffer, what: string): void {
  try {
    new X509Certificate(d);
  } catch {
    throw new RangeError(`${what} is not an X.509 certificate`);
  }
}

// ---- the server's certificate in the data directory ---------------------------------------------

/** A certificate with less validity left than this is made again (30 days). */
export const RENEW_BEFORE_MS = 30 * 24 * 3600_000;
/** Validity of a generated certificate (10 years; it is pinned by devices, not checked by a CA). */
export const SELF_SIGNED_VALIDITY_MS = 10 * 365 * 24 * 3600_000;
/** notBefore lies this far back, for devices whose clocks are behind (1 day). */
export const BACKDATE_MS = 24 * 3600_000;

export interface ServerCertificateFileOptions {
  /** The PEM file in the data directory. */
  readonly file: string;
  readonly publicKey: Uint8Array;
  readonly privateKey: Uint8Array;
  readonly subject: CertificateSubject;
  /** ms since the epoch (default Date.now()). */
  readonly now?: number;
}

export interface ServerCertificateFile {
  readonly der: Buffer;
  /** Why it was written now: undefined when the stored one was kept. */
  readonly created?: 'missing' | 'unreadable' | 'other key' | 'other names' | 'expiring';
}

/** Why the certificate in `der` does not fit (key, names, validity); undefined when it does. */
function unfit(der: Buffer, o: ServerCertificateFileOptions, now: number): ServerCertificateFile['created'] {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(der);
  } catch {
    return 'unreadable';
  }
  try {
    if (!canonicalP256(cert.publicKey.export({ format: 'der', type: 'spki' })).spki.equals(canonicalP256(o.publicKey).spki)) return 'other key';
    if (!cert.verify(cert.publicKey)) return 'unreadable';
    const names = certificateNames(der);
    const want = [...o.subject.dnsNames, ...o.subject.ipAddresses.map((ip) => formatIpBytes(ipBytes(ip)))];
    if (names.cn !== o.subject.commonName || names.sans.length !== want.length || want.some((w) => !names.sans.includes(w))) return 'other names';
    const v = certificateValidity(der);
    if (v.notBefore > now || v.notAfter - now < RENEW_BEFORE_MS) return 'expiring';
  } catch {
    return 'unreadable';
  }
  return undefined;
}

/** Bytes → text as x509.ts's certificateNames renders iPAddress entries. */
function formatIpBytes(b: Buffer): string {
  if (b.length === 4) return [...b].join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16));
  return groups.join(':');
}

/**
 * The server's self-signed certificate from `file`, made (and written, atomically) when the file
 * is missing or its certificate does not fit the key pair, the names or the clock any more.
 */
export function loadOrCreateServerCertificate(o: ServerCertificateFileOptions): ServerCertificateFile {
  const now = o.now ?? Date.now();
  let created: ServerCertificateFile['created'] = 'missing';
  let bytes: Buffer | undefined;
  try {
    bytes = readFileSync(o.file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  if (bytes !== undefined) {
    let der: Buffer | undefined;
    try {
      der = parseCertificateFile(bytes)[0];
    } catch {
      der = undefined;
    }
    created = der === undefined ? 'unreadable' : unfit(der, o, now);
    if (created === undefined) return { der: der! };
  }
  const der = issueSelfSignedCertificate({
    publicKey: o.publicKey,
    privateKey: o.privateKey,
    subject: o.subject,
    notBefore: now - BACKDATE_MS,
    notAfter: now - BACKDATE_MS + SELF_SIGNED_VALIDITY_MS,
  });
  const tmp = `${o.file}.${process.pid}.tmp`;
  writeFileSync(tmp, certificatePem([der]), { mode: 0o644 });
  renameSync(tmp, o.file);
  return { der, created };
}

/**
 * The names for a server reachable at `host` (a URI's host: DNS name or IP literal, IPv6 with or
 * without brackets): CN = the host, and the host again as a dNSName or iPAddress subjectAltName.
 */
export function subjectForHost(host: string): CertificateSubject {
  const h = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  if (h === '') throw new RangeError('empty host');
  return isIP(h) !== 0 ? { commonName: h, dnsNames: [], ipAddresses: [h] } : { commonName: h, dnsNames: [h.toLowerCase()], ipAddresses: [] };
}
