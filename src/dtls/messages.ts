/**
 * Handshake message bodies used by the PSK handshake (RFC 5246 §7.4, RFC 6347 §4.2.1, RFC 4279
 * §2), the ECDHE_ECDSA messages (RFC 8422) and RPK certificates (RFC 7250): ClientHello (with the DTLS cookie), HelloVerifyRequest, ServerHello, ServerKeyExchange
 * (PSK identity hint), ServerHelloDone, ClientKeyExchange (PSK identity), Finished, and the hello
 * extensions, and X.509 certificate lists (RFC 5246 §7.4.2). Parsers return undefined for malformed input and never throw; serializers throw
 * RangeError only for values that cannot be encoded (programming errors).
 */
import { DecodeError, Reader, u16, vec16, vec24, vec8 } from './reader.js';

export interface Extension {
  readonly type: number;
  readonly data: Buffer;
}

export interface ClientHello {
  readonly clientVersion: number;
  readonly random: Buffer;
  readonly sessionId: Buffer;
  readonly cookie: Buffer;
  readonly cipherSuites: readonly number[];
  readonly compressionMethods: readonly number[];
  /** undefined when the message has no extensions block at all. */
  readonly extensions: readonly Extension[] | undefined;
}

export interface ServerHello {
  readonly serverVersion: number;
  readonly random: Buffer;
  readonly sessionId: Buffer;
  readonly cipherSuite: number;
  readonly compressionMethod: number;
  readonly extensions: readonly Extension[] | undefined;
}

export interface HelloVerifyRequest {
  readonly serverVersion: number;
  readonly cookie: Buffer;
}

function parse<T>(body: Buffer, read: (r: Reader) => T): T | undefined {
  const r = new Reader(body);
  try {
    const v = read(r);
    r.end();
    return v;
  } catch (err) {
    if (err instanceof DecodeError) return undefined;
    throw err;
  }
}

/** The extensions block (2-byte total length, then type(2) + data<0..2^16-1> each); rejects duplicates (RFC 5246 §7.4.1.4). */
function readExtensions(r: Reader): Extension[] | undefined {
  if (r.remaining === 0) return undefined;
  const block = new Reader(r.vec16());
  const out: Extension[] = [];
  const seen = new Set<number>();
  while (block.remaining > 0) {
    const type = block.u16();
    const data = block.vec16();
    if (seen.has(type)) throw new DecodeError(`duplicate extension ${type}`);
    seen.add(type);
    out.push({ type, data });
  }
  return out;
}

function writeExtensions(exts: readonly Extension[] | undefined): Buffer {
  if (exts === undefined) return Buffer.alloc(0);
  return vec16(Buffer.concat(exts.map((e) => Buffer.concat([u16(e.type), vec16(e.data)]))));
}

export function findExtension(exts: readonly Extension[] | undefined, type: number): Extension | undefined {
  return exts?.find((e) => e.type === type);
}

export function parseClientHello(body: Buffer): ClientHello | undefined {
  return parse(body, (r) => {
    const clientVersion = r.u16();
    const random = r.bytes(32);
    const sessionId = r.vec8();
    if (sessionId.length > 32) throw new DecodeError('session_id longer than 32');
    const cookie = r.vec8();
    const suites = r.vec16();
    if (suites.length < 2 || suites.length % 2 !== 0) throw new DecodeError('cipher_suites');
    const cipherSuites: number[] = [];
    for (let i = 0; i < suites.length; i += 2) cipherSuites.push(suites.readUInt16BE(i));
    const comp = r.vec8();
    if (comp.length < 1) throw new DecodeError('compression_methods');
    const extensions = readExtensions(r);
    return { clientVersion, random, sessionId, cookie, cipherSuites, compressionMethods: [...comp], extensions };
  });
}

export function serializeClientHello(ch: ClientHello): Buffer {
  if (ch.random.length !== 32) throw new RangeError('random must be 32 bytes');
  const suites = Buffer.alloc(ch.cipherSuites.length * 2);
  ch.cipherSuites.forEach((s, i) => suites.writeUInt16BE(s, i * 2));
  return Buffer.concat([
    u16(ch.clientVersion), ch.random, vec8(ch.sessionId), vec8(ch.cookie), vec16(suites),
    vec8(Buffer.from(ch.compressionMethods)), writeExtensions(ch.extensions),
  ]);
}

export function parseHelloVerifyRequest(body: Buffer): HelloVerifyRequest | undefined {
  return parse(body, (r) => ({ serverVersion: r.u16(), cookie: r.vec8() }));
}

export function serializeHelloVerifyRequest(hvr: HelloVerifyRequest): Buffer {
  return Buffer.concat([u16(hvr.serverVersion), vec8(hvr.cookie)]);
}

export function parseServerHello(body: Buffer): ServerHello | undefined {
  return parse(body, (r) => {
    const serverVersion = r.u16();
    const random = r.bytes(32);
    const sessionId = r.vec8();
    if (sessionId.length > 32) throw new DecodeError('session_id longer than 32');
    const cipherSuite = r.u16();
    const compressionMethod = r.u8();
    const extensions = readExtensions(r);
    return { serverVersion, random, sessionId, cipherSuite, compressionMethod, extensions };
  });
}

export function serializeServerHello(sh: ServerHello): Buffer {
  if (sh.random.length !== 32) throw new RangeError('random must be 32 bytes');
  return Buffer.concat([
    u16(sh.serverVersion), sh.random, vec8(sh.sessionId), u16(sh.cipherSuite), Buffer.from([sh.compressionMethod]),
    writeExtensions(sh.extensions),
  ]);
}

/** PSK ServerKeyExchange: `psk_identity_hint<0..2^16-1>` (RFC 4279 §2). */
export function serializePskServerKeyExchange(hint: Uint8Array): Buffer {
  return vec16(hint);
}

export function parsePskServerKeyExchange(body: Buffer): Buffer | undefined {
  return parse(body, (r) => r.vec16());
}

/** PSK ClientKeyExchange: `psk_identity<0..2^16-1>` (RFC 4279 §2). */
export function serializePskClientKeyExchange(identity: Uint8Array): Buffer {
  return vec16(identity);
}

export function parsePskClientKeyExchange(body: Buffer): Buffer | undefined {
  return parse(body, (r) => r.vec16());
}

export const VERIFY_DATA_LENGTH = 12;

export function parseFinished(body: Buffer): Buffer | undefined {
  return body.length === VERIFY_DATA_LENGTH ? body : undefined;
}

/** renegotiation_info (RFC 5746 §3.2): `renegotiated_connection<0..255>`; undefined when malformed. */
export function parseRenegotiationInfo(data: Buffer): Buffer | undefined {
  return parse(data, (r) => r.vec8());
}

/** The empty renegotiation_info extension body of an initial handshake. */
export const EMPTY_RENEGOTIATION_INFO = Buffer.from([0]);

// ---- ECDHE_ECDSA and raw public keys (RFC 8422, RFC 7250) --------------------------------------

/** A `list<2>` of uint16 (supported_groups, signature_algorithms); undefined when malformed or empty. */
export function parseU16List(data: Buffer): number[] | undefined {
  return parse(data, (r) => {
    const list = r.vec16();
    if (list.length < 2 || list.length % 2 !== 0) throw new DecodeError('uint16 list');
    const out: number[] = [];
    for (let i = 0; i < list.length; i += 2) out.push(list.readUInt16BE(i));
    return out;
  });
}

/** A `list<1>` of uint8 (ec_point_formats, a ClientHello's certificate types); undefined when malformed or empty. */
export function parseU8List(data: Buffer): number[] | undefined {
  return parse(data, (r) => {
    const list = r.vec8();
    if (list.length < 1) throw new DecodeError('uint8 list');
    return [...list];
  });
}

/** The server's signed ECDHE parameters (RFC 8422 §5.4): named curve, point, signature. */
export interface EcdheServerKeyExchange {
  readonly namedCurve: number;
  /** The ephemeral public point (65 bytes, `04 ‖ X ‖ Y`). */
  readonly publicPoint: Buffer;
  readonly signatureAlgorithm: number;
  readonly signature: Buffer;
}

/** `curve_type(1)=named_curve ‖ namedcurve(2) ‖ public<1..255>`: the ServerECDHParams, which are also the signed data's tail. */
export function serializeEcdhParams(namedCurve: number, publicPoint: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from([3]), u16(namedCurve), vec8(publicPoint)]);
}

export function serializeEcdheServerKeyExchange(ske: EcdheServerKeyExchange): Buffer {
  return Buffer.concat([serializeEcdhParams(ske.namedCurve, ske.publicPoint), u16(ske.signatureAlgorithm), vec16(ske.signature)]);
}

export function parseEcdheServerKeyExchange(body: Buffer): EcdheServerKeyExchange | undefined {
  return parse(body, (r) => {
    if (r.u8() !== 3) throw new DecodeError('curve_type is not named_curve');
    const namedCurve = r.u16();
    const publicPoint = r.vec8();
    if (publicPoint.length === 0) throw new DecodeError('empty point');
    const signatureAlgorithm = r.u16();
    const signature = r.vec16();
    return { namedCurve, publicPoint, signatureAlgorithm, signature };
  });
}

/** CertificateRequest (RFC 5246 §7.4.4): certificate types, signature algorithms, CA names. */
export interface CertificateRequest {
  readonly certificateTypes: readonly number[];
  readonly signatureAlgorithms: readonly number[];
  readonly certificateAuthorities: Buffer;
}

export function serializeCertificateRequest(cr: CertificateRequest): Buffer {
  const algs = Buffer.alloc(cr.signatureAlgorithms.length * 2);
  cr.signatureAlgorithms.forEach((a, i) => algs.writeUInt16BE(a, i * 2));
  return Buffer.concat([vec8(Buffer.from(cr.certificateTypes)), vec16(algs), vec16(cr.certificateAuthorities)]);
}

export function parseCertificateRequest(body: Buffer): CertificateRequest | undefined {
  return parse(body, (r) => {
    const types = r.vec8();
    if (types.length < 1) throw new DecodeError('certificate_types');
    const algs = r.vec16();
    if (algs.length < 2 || algs.length % 2 !== 0) throw new DecodeError('supported_signature_algorithms');
    const signatureAlgorithms: number[] = [];
    for (let i = 0; i < algs.length; i += 2) signatureAlgorithms.push(algs.readUInt16BE(i));
    return { certificateTypes: [...types], signatureAlgorithms, certificateAuthorities: r.vec16() };
  });
}

/** RFC 7250 Certificate with RawPublicKey: one `subjectPublicKeyInfo<1..2^24-1>`. */
export function serializeRawPublicKeyCertificate(spki: Uint8Array): Buffer {
  if (spki.length === 0) throw new RangeError('empty SubjectPublicKeyInfo');
  return vec24(spki);
}

/** The SPKI of an RPK Certificate; an empty Buffer when the client sent none (`00 00 00`); undefined when malformed. */
export function parseRawPublicKeyCertificate(body: Buffer): Buffer | undefined {
  return parse(body, (r) => r.vec24());
}

/** X.509 Certificate (RFC 5246 §7.4.2): `certificate_list<0..2^24-1>` of `ASN.1Cert<1..2^24-1>`, leaf first. */
export function serializeCertificateList(chain: readonly Uint8Array[]): Buffer {
  if (chain.some((c) => c.length === 0)) throw new RangeError('empty certificate in a chain');
  return vec24(Buffer.concat(chain.map((c) => vec24(c))));
}

/** The certificates (DER, views into `body`) of an X.509 Certificate message; [] when the client sent none; undefined when malformed. */
export function parseCertificateList(body: Buffer): Buffer[] | undefined {
  return parse(body, (r) => {
    const list = new Reader(r.vec24());
    const out: Buffer[] = [];
    while (list.remaining > 0) {
      const c = list.vec24();
      if (c.length === 0) throw new DecodeError('empty ASN.1Cert');
      out.push(c);
    }
    return out;
  });
}

/** ECDHE ClientKeyExchange (RFC 8422 §5.7): `ecdh_Yc<1..255>`. */
export function serializeEcdhClientKeyExchange(point: Uint8Array): Buffer {
  return vec8(point);
}

export function parseEcdhClientKeyExchange(body: Buffer): Buffer | undefined {
  return parse(body, (r) => {
    const p = r.vec8();
    if (p.length === 0) throw new DecodeError('empty point');
    return p;
  });
}

/** CertificateVerify (RFC 5246 §7.4.8): SignatureAndHashAlgorithm ‖ signature<0..2^16-1>. */
export interface CertificateVerify {
  readonly signatureAlgorithm: number;
  readonly signature: Buffer;
}

export function serializeCertificateVerify(cv: CertificateVerify): Buffer {
  return Buffer.concat([u16(cv.signatureAlgorithm), vec16(cv.signature)]);
}

export function parseCertificateVerify(body: Buffer): CertificateVerify | undefined {
  return parse(body, (r) => ({ signatureAlgorithm: r.u16(), signature: r.vec16() }));
}

// ---- Connection ID (RFC 9146 §3) ---------------------------------------------------------------

/** connection_id extension body: `opaque cid<0..2^8-1>`; undefined when malformed. */
export function parseConnectionId(data: Buffer): Buffer | undefined {
  return parse(data, (r) => r.vec8());
}

export function serializeConnectionId(cid: Uint8Array): Buffer {
  return vec8(cid);
}
