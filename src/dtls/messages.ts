/**
 * Handshake message bodies used by the PSK handshake (RFC 5246 §7.4, RFC 6347 §4.2.1, RFC 4279
 * §2): ClientHello (with the DTLS cookie), HelloVerifyRequest, ServerHello, ServerKeyExchange
 * (PSK identity hint), ServerHelloDone, ClientKeyExchange (PSK identity), Finished, and the hello
 * extensions. Parsers return undefined for malformed input and never throw; serializers throw
 * RangeError only for values that cannot be encoded (programming errors).
 */
import { DecodeError, Reader, u16, vec16, vec8 } from './reader.js';

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
