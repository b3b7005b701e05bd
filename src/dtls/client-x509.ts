/**
 * The X.509 side of the DTLS client (client.ts) for the ECDHE_ECDSA suites, as LwM2M security
 * mode 2 keeps it: our certificate (or chain, leaf first - DER, possibly several concatenated as
 * /0/x/3 holds them in 1.1) and PKCS#8 private key (/0/x/5), and what the server must present
 * (/0/x/4, its meaning given by /0/x/15 Certificate Usage):
 *
 * - `serverCertificate` (usage 3 "domain-issued certificate", the LwM2M default; also usage 1):
 *   the server's leaf must be exactly this certificate (DANE-EE: no path or validity checks);
 * - `trustAnchors` (usage 2 "trust anchor assertion"; also usage 0): the server's chain must
 *   verify against them (x509.ts `verifyCertificateChain`: signatures, validity, CA basic
 *   constraints, P-256 leaf) and, with `serverName`, the leaf's CN or a subjectAltName must name
 *   the server (RFC 6125, simplified: exact match, case-insensitive for DNS names, a `*.` wildcard
 *   for the left-most label, IP addresses compared as addresses);
 * - neither: any P-256 certificate whose key the server proves it holds (a test set-up).
 *
 * No certificate type extensions are sent (RFC 7250 §4.1: absent means X.509 both ways), which is
 * what lwbs's server and OpenSSL 3.0 (no RFC 7250) expect. The server_name extension (RFC 6066 §3,
 * SNI) carries `serverName` when it is a DNS name (IP literals are not allowed there).
 * Nothing here quotes key or certificate bytes in an error.
 */
import { X509Certificate, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import { AlertDescription, ExtensionType } from './constants.js';
import { loadP256PrivateKey } from './client-rpk.js';
import { parseP256Spki } from './ecc.js';
import type { Extension } from './messages.js';
import { certificateNames, loadTrustAnchors, MAX_CHAIN_LENGTH, verifyCertificateChain, type TrustAnchors } from './x509.js';

export interface DtlsClientX509 {
  /**
   * Our certificate chain, leaf first (DER): a list, or one buffer holding one or more
   * concatenated DER certificates (as LwM2M 1.1 allows in /0/x/3). The leaf's key is P-256.
   */
  readonly certificate: Uint8Array | readonly Uint8Array[];
  /** Our private key: PKCS#8 DER (or a KeyObject); it must belong to the leaf certificate. */
  readonly privateKey: Uint8Array | KeyObject;
  /** The server's certificate, DER: its leaf must be exactly this one (/0/x/4 with certificate usage 3, or 1). */
  readonly serverCertificate?: Uint8Array;
  /** Certificates (DER) the server's chain must lead to (/0/x/4 with certificate usage 2, or 0). */
  readonly trustAnchors?: readonly Uint8Array[];
  /** With `trustAnchors`: the name (host of the server URI) the server certificate must carry; also sent as SNI when a DNS name. */
  readonly serverName?: string;
  /** Wall clock for validity periods, ms since the epoch (default Date.now). */
  readonly certificateClock?: () => number;
}

export interface ResolvedX509 {
  /** Our chain, leaf first. */
  readonly chain: readonly Buffer[];
  readonly privateKey: KeyObject;
  /** Canonical SPKI DER of our leaf's key. */
  readonly spki: Buffer;
  readonly serverCertificate: Buffer | undefined;
  readonly anchors: TrustAnchors | undefined;
  readonly serverName: string | undefined;
  readonly now: () => number;
}

/** Splits concatenated DER certificates (each a definite-length SEQUENCE); RangeError when the bytes are not that. */
export function splitDerCertificates(bytes: Uint8Array): Buffer[] {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: Buffer[] = [];
  let off = 0;
  while (off < buf.length) {
    if (off + 2 > buf.length || buf[off] !== 0x30) throw new RangeError('not DER certificates');
    let len = buf[off + 1]!;
    let p = off + 2;
    if (len & 0x80) {
      const n = len & 0x7f;
      if (n === 0 || n > 3 || p + n > buf.length) throw new RangeError('not DER certificates');
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + buf[p + i]!;
      p += n;
    }
    if (p + len > buf.length) throw new RangeError('not DER certificates');
    out.push(Buffer.from(buf.subarray(off, p + len)));
    off = p + len;
    if (out.length > MAX_CHAIN_LENGTH) throw new RangeError(`more than ${MAX_CHAIN_LENGTH} certificates`);
  }
  if (out.length === 0) throw new RangeError('no certificate');
  return out;
}

function certificateList(c: Uint8Array | readonly Uint8Array[], what: string): Buffer[] {
  try {
    const list = c instanceof Uint8Array ? splitDerCertificates(c) : c.map((d) => Buffer.from(d));
    if (list.length === 0 || list.length > MAX_CHAIN_LENGTH) throw new RangeError('length');
    for (const d of list) void new X509Certificate(d); // throws when it does not parse
    return list;
  } catch {
    throw new RangeError(`${what} must be 1..${MAX_CHAIN_LENGTH} DER X.509 certificates`);
  }
}

/** Checks and loads `x509`; RangeError (never quoting key bytes) when something does not parse or the key is not the leaf's. */
export function resolveClientX509(x: DtlsClientX509): ResolvedX509 {
  if (x.certificate === undefined || x.privateKey === undefined) throw new TypeError('x509: { certificate, privateKey } is required');
  const chain = certificateList(x.certificate, 'x509.certificate');
  const leaf = parseP256Spki(new X509Certificate(chain[0]!).publicKey.export({ format: 'der', type: 'spki' }));
  if (leaf === undefined) throw new RangeError('x509.certificate: the leaf key must be P-256 (secp256r1)');
  const privateKey = loadP256PrivateKey(x.privateKey, 'x509.privateKey', leaf.spki, 'the leaf certificate');
  let serverCertificate: Buffer | undefined;
  if (x.serverCertificate !== undefined && x.serverCertificate.length > 0) {
    serverCertificate = certificateList(x.serverCertificate, 'x509.serverCertificate')[0];
  }
  let anchors: TrustAnchors | undefined;
  if (x.trustAnchors !== undefined && x.trustAnchors.length > 0) {
    if (serverCertificate !== undefined) throw new RangeError('x509: give serverCertificate or trustAnchors, not both');
    anchors = loadTrustAnchors(x.trustAnchors.map((a, i) => certificateList(a, `x509.trustAnchors[${i}]`)).flat());
  }
  const serverName = x.serverName !== undefined && x.serverName !== '' ? x.serverName : undefined;
  return { chain, privateKey, spki: leaf.spki, serverCertificate, anchors, serverName, now: x.certificateClock ?? Date.now };
}

export type ServerChainCheck =
  | { readonly ok: true; readonly leafKey: KeyObject; readonly spki: Buffer }
  | { readonly ok: false; readonly alert: number; readonly reason: string };

/** Is the server's chain (leaf first, from its Certificate message) acceptable under `x`? Never throws. */
export function checkServerChain(chain: readonly Buffer[], x: ResolvedX509): ServerChainCheck {
  const fail = (alert: number, reason: string): ServerChainCheck => ({ ok: false, alert, reason });
  if (chain.length === 0) return fail(AlertDescription.badCertificate, 'the server sent no certificate');
  let leafSpki: ReturnType<typeof parseP256Spki>;
  try {
    leafSpki = parseP256Spki(new X509Certificate(chain[0]!).publicKey.export({ format: 'der', type: 'spki' }));
  } catch {
    return fail(AlertDescription.badCertificate, 'the server certificate does not parse');
  }
  if (leafSpki === undefined) return fail(AlertDescription.unsupportedCertificate, 'the server certificate key is not on P-256');
  const ok: ServerChainCheck = { ok: true, leafKey: leafSpki.key, spki: leafSpki.spki };
  if (x.serverCertificate !== undefined) {
    if (!x.serverCertificate.equals(chain[0]!)) {
      return fail(AlertDescription.badCertificate, 'the server presented a certificate other than the expected one (serverCertificate, /0/x/4)');
    }
    return ok;
  }
  if (x.anchors === undefined) return ok;
  const v = verifyCertificateChain(chain, x.anchors, x.now());
  if (!v.ok) return fail(v.alert, `server certificate chain refused: ${v.reason.replace(/client certificate/g, 'server certificate')}`);
  if (x.serverName !== undefined && !certificateNamesHost(chain[0]!, x.serverName)) {
    return fail(AlertDescription.badCertificate, `the server certificate does not name ${JSON.stringify(x.serverName)} (CN / subjectAltName)`);
  }
  return ok;
}

/** A canonical form for comparing host names: IP addresses as the URL parser writes them, DNS names lower case without a final dot. */
function canonicalHost(h: string): string {
  const bare = h.startsWith('[') && h.endsWith(']') ? h.slice(1, -1) : h;
  if (isIP(bare) === 6) return new URL(`http://[${bare}]/`).hostname;
  if (isIP(bare) === 4) return bare;
  return bare.toLowerCase().replace(/\.$/, '');
}

/** True when the certificate's CN or a subjectAltName matches `host` (a `*.` wildcard covers one left-most DNS label). */
export function certificateNamesHost(der: Uint8Array, host: string): boolean {
  let names: string[];
  try {
    const n = certificateNames(der);
    names = [...(n.cn !== undefined ? [n.cn] : []), ...n.sans];
  } catch {
    return false;
  }
  const want = canonicalHost(host);
  return names.some((raw) => {
    const name = canonicalHost(raw);
    if (name === want) return true;
    if (!name.startsWith('*.') || isIP(want) !== 0) return false;
    const dot = want.indexOf('.');
    return dot > 0 && want.slice(dot) === name.slice(1);
  });
}

/** RFC 6066 §3 server_name with one host_name; undefined for an IP address (not allowed there) or a name that does not fit. */
export function serverNameExtension(name: string | undefined): Extension | undefined {
  if (name === undefined || isIP(name.replace(/^\[|\]$/g, '')) !== 0) return undefined;
  const host = Buffer.from(name.replace(/\.$/, ''), 'ascii');
  if (host.length === 0 || host.length > 255) return undefined;
  const entry = Buffer.concat([Buffer.from([0]), Buffer.from([host.length >> 8, host.length & 0xff]), host]);
  return { type: ExtensionType.serverName, data: Buffer.concat([Buffer.from([entry.length >> 8, entry.length & 0xff]), entry]) };
}
