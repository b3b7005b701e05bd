/**
 * A small CoAP message codec (RFC 7252 §3). node-coap parses with `coap-packet`, which is lenient
 * in ways a server facing the Internet cannot be: it silently truncates option values that overrun
 * the datagram, accepts reserved token lengths 9..12 and throws plain TypeErrors/RangeErrors on
 * short input. The demultiplexer (demux.ts) therefore validates every datagram with
 * `decodeMessage` first, so node-coap only ever sees well-formed messages, and it uses
 * `encodeMessage` for the few messages it answers itself (RST, ACK, 4.13). Also handy for tests
 * and diagnostics (`describeMessage`). Never throws on input bytes.
 */

export const CON = 0;
export const NON = 1;
export const ACK = 2;
export const RST = 3;
export type MessageType = 0 | 1 | 2 | 3;
export const TYPE_NAMES: readonly string[] = ['CON', 'NON', 'ACK', 'RST'];

/** Option numbers used by LwM2M (digest §9.1). */
export const Opt = {
  IfMatch: 1,
  UriHost: 3,
  ETag: 4,
  IfNoneMatch: 5,
  Observe: 6,
  UriPort: 7,
  LocationPath: 8,
  Oscore: 9,
  UriPath: 11,
  ContentFormat: 12,
  MaxAge: 14,
  UriQuery: 15,
  Accept: 17,
  LocationQuery: 20,
  Block2: 23,
  Block1: 27,
  Size2: 28,
  ProxyUri: 35,
  ProxyScheme: 39,
  Size1: 60,
  Echo: 252,
  NoResponse: 258,
  RequestTag: 292,
} as const;

export type CoapMethod = 'GET' | 'POST' | 'PUT' | 'DELETE' | 'FETCH' | 'PATCH' | 'iPATCH';
export const METHOD_CODES: Readonly<Record<CoapMethod, number>> = {
  GET: 1, POST: 2, PUT: 3, DELETE: 4, FETCH: 5, PATCH: 6, iPATCH: 7,
};
const METHOD_NAMES: readonly (CoapMethod | undefined)[] = [undefined, 'GET', 'POST', 'PUT', 'DELETE', 'FETCH', 'PATCH', 'iPATCH'];

export interface CoapOption {
  readonly number: number;
  readonly value: Buffer;
}

export interface CoapMessage {
  readonly type: MessageType;
  /** The code byte: class << 5 | detail (2.05 = 0x45). */
  readonly code: number;
  readonly messageId: number;
  readonly token: Buffer;
  /** In wire order (ascending numbers; repeated options keep their order). */
  readonly options: readonly CoapOption[];
  readonly payload: Buffer;
}

export interface MessageInit {
  readonly type: MessageType;
  readonly code: number;
  readonly messageId: number;
  readonly token?: Uint8Array;
  /** Any order; sorted stably by number on encode (so repeated options keep their order). */
  readonly options?: readonly CoapOption[];
  readonly payload?: Uint8Array;
}

export type DecodeResult =
  | { readonly ok: true; readonly message: CoapMessage }
  | {
      readonly ok: false;
      readonly reason: string;
      /** Present when the 4-byte header was readable (a CON with a format error gets a RST). */
      readonly header?: { readonly type: MessageType; readonly code: number; readonly messageId: number };
    };

const EMPTY = Buffer.alloc(0);

/** `2.05` for 0x45. */
export function codeToString(code: number): string {
  const detail = code & 31;
  return `${code >> 5}.${detail < 10 ? '0' : ''}${detail}`;
}

/** 0x45 for `2.05` (also accepts 205). Throws RangeError for anything that is not a code. */
export function parseCode(code: string | number): number {
  let cls: number;
  let detail: number;
  if (typeof code === 'number') {
    cls = Math.floor(code / 100);
    detail = code % 100;
  } else {
    const m = /^([0-7])\.([0-9]{2})$/.exec(code);
    if (!m) throw new RangeError(`not a CoAP code: ${JSON.stringify(code)}`);
    cls = Number(m[1]);
    detail = Number(m[2]);
  }
  if (!Number.isInteger(cls) || !Number.isInteger(detail) || cls < 0 || cls > 7 || detail < 0 || detail > 31) {
    throw new RangeError(`not a CoAP code: ${JSON.stringify(code)}`);
  }
  return (cls << 5) | detail;
}

export function methodName(code: number): CoapMethod | undefined {
  return code < 8 ? METHOD_NAMES[code] : undefined;
}

/** Minimal big-endian uint (RFC 7252 §3.2): 0 is the empty value. Up to 32 bits. */
export function encodeUint(n: number): Buffer {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`not a uint32: ${n}`);
  if (n === 0) return EMPTY;
  if (n < 0x100) return Buffer.of(n);
  if (n < 0x10000) return Buffer.of(n >> 8, n & 0xff);
  if (n < 0x1000000) return Buffer.of(n >> 16, (n >> 8) & 0xff, n & 0xff);
  return Buffer.of(n >>> 24, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff);
}

/** Decodes a uint option value (leading zero bytes tolerated); undefined if longer than 4 bytes. */
export function decodeUint(value: Uint8Array): number | undefined {
  if (value.length > 4) return undefined;
  let n = 0;
  for (let i = 0; i < value.length; i++) n = n * 256 + value[i]!;
  return n;
}

export function optionValue(options: readonly CoapOption[], number: number): Buffer | undefined {
  for (const o of options) if (o.number === number) return o.value;
  return undefined;
}

export function optionValues(options: readonly CoapOption[], number: number): Buffer[] {
  const out: Buffer[] = [];
  for (const o of options) if (o.number === number) out.push(o.value);
  return out;
}

export function uintOption(options: readonly CoapOption[], number: number): number | undefined {
  const v = optionValue(options, number);
  return v === undefined ? undefined : decodeUint(v);
}

/** Block1/Block2 value (RFC 7959 §2.2). undefined when longer than 3 bytes. SZX 7 is BERT. */
export function decodeBlock(value: Uint8Array): { num: number; more: boolean; szx: number } | undefined {
  if (value.length > 3) return undefined;
  const v = decodeUint(value)!;
  return { num: Math.floor(v / 16), more: (v & 8) !== 0, szx: v & 7 };
}

export function encodeBlock(num: number, more: boolean, szx: number): Buffer {
  return encodeUint(num * 16 + (more ? 8 : 0) + szx);
}

/**
 * Validates and decodes one datagram. Strict on structure (RFC 7252 §3, §4.1): version 1, token
 * length ≤ 8, reserved nibble 15 only as the payload marker, no option overrunning the datagram,
 * no payload marker without payload, empty messages exactly 4 bytes. Values are views into `buf`.
 */
export function decodeMessage(buf: Buffer): DecodeResult {
  if (buf.length < 4) return { ok: false, reason: `${buf.length} bytes is shorter than the 4-byte header` };
  const b0 = buf[0]!;
  if (b0 >> 6 !== 1) return { ok: false, reason: `unsupported CoAP version ${b0 >> 6}` };
  const type = ((b0 >> 4) & 3) as MessageType;
  const tkl = b0 & 15;
  const code = buf[1]!;
  const messageId = (buf[2]! << 8) | buf[3]!;
  const header = { type, code, messageId };
  const bad = (reason: string): DecodeResult => ({ ok: false, reason, header });
  if (code === 0) {
    if (buf.length !== 4 || tkl !== 0) return bad('an empty message (0.00) must be exactly the 4-byte header');
    return { ok: true, message: { type, code, messageId, token: EMPTY, options: [], payload: EMPTY } };
  }
  if (tkl > 8) return bad(`token length ${tkl} is reserved`);
  let pos = 4 + tkl;
  if (pos > buf.length) return bad(`token of ${tkl} bytes is truncated`);
  const token = buf.subarray(4, pos);
  const options: CoapOption[] = [];
  let number = 0;
  let payload: Buffer = EMPTY;
  const end = buf.length;
  while (pos < end) {
    const byte = buf[pos++]!;
    if (byte === 0xff) {
      if (pos === end) return bad('payload marker without payload');
      payload = buf.subarray(pos);
      break;
    }
    let delta = byte >> 4;
    let len = byte & 15;
    if (delta === 13) {
      if (pos >= end) return bad('option delta is truncated');
      delta = buf[pos++]! + 13;
    } else if (delta === 14) {
      if (pos + 2 > end) return bad('option delta is truncated');
      delta = ((buf[pos]! << 8) | buf[pos + 1]!) + 269;
      pos += 2;
    } else if (delta === 15) {
      return bad('option delta nibble 15 is reserved');
    }
    if (len === 13) {
      if (pos >= end) return bad('option length is truncated');
      len = buf[pos++]! + 13;
    } else if (len === 14) {
      if (pos + 2 > end) return bad('option length is truncated');
      len = ((buf[pos]! << 8) | buf[pos + 1]!) + 269;
      pos += 2;
    } else if (len === 15) {
      return bad('option length nibble 15 is reserved');
    }
    number += delta;
    if (number > 0xffff) return bad(`option number ${number} is out of range`);
    if (pos + len > end) return bad(`option ${number} (${len} bytes) overruns the datagram`);
    options.push({ number, value: buf.subarray(pos, pos + len) });
    pos += len;
  }
  return { ok: true, message: { type, code, messageId, token, options, payload } };
}

function extLen(n: number): number {
  return n < 13 ? 0 : n < 269 ? 1 : 2;
}

/** Encodes a message into one buffer. Throws RangeError for impossible field values. */
export function encodeMessage(m: MessageInit): Buffer {
  const token = m.token ?? EMPTY;
  const payload = m.payload ?? EMPTY;
  if (token.length > 8) throw new RangeError(`token of ${token.length} bytes (max 8)`);
  if (!Number.isInteger(m.messageId) || m.messageId < 0 || m.messageId > 0xffff) throw new RangeError(`message ID ${m.messageId}`);
  if (!Number.isInteger(m.code) || m.code < 0 || m.code > 0xff) throw new RangeError(`code ${m.code}`);
  const options = m.options && m.options.length > 1 ? [...m.options].sort((a, b) => a.number - b.number) : (m.options ?? []);
  let size = 4 + token.length;
  let prev = 0;
  for (const o of options) {
    const delta = o.number - prev;
    if (!Number.isInteger(o.number) || delta < 0 || o.number > 0xffff) throw new RangeError(`option number ${o.number}`);
    if (o.value.length > 0xffff + 269) throw new RangeError(`option ${o.number} value too long`);
    size += 1 + extLen(delta) + extLen(o.value.length) + o.value.length;
    prev = o.number;
  }
  if (payload.length > 0) size += 1 + payload.length;
  const out = Buffer.allocUnsafe(size);
  out[0] = 0x40 | (m.type << 4) | token.length;
  out[1] = m.code;
  out[2] = m.messageId >> 8;
  out[3] = m.messageId & 0xff;
  let pos = 4;
  out.set(token, pos);
  pos += token.length;
  prev = 0;
  for (const o of options) {
    const delta = o.number - prev;
    const len = o.value.length;
    const head = pos++;
    let nibbles = 0;
    if (delta < 13) nibbles = delta << 4;
    else if (delta < 269) { nibbles = 13 << 4; out[pos++] = delta - 13; }
    else { nibbles = 14 << 4; out.writeUInt16BE(delta - 269, pos); pos += 2; }
    if (len < 13) nibbles |= len;
    else if (len < 269) { nibbles |= 13; out[pos++] = len - 13; }
    else { nibbles |= 14; out.writeUInt16BE(len - 269, pos); pos += 2; }
    out[head] = nibbles;
    out.set(o.value, pos);
    pos += len;
    prev = o.number;
  }
  if (payload.length > 0) {
    out[pos++] = 0xff;
    out.set(payload, pos);
  }
  return out;
}

/** A 4-byte empty message (ACK, RST or ping). */
export function encodeEmpty(type: MessageType, messageId: number): Buffer {
  return Buffer.of(0x40 | (type << 4), 0, messageId >> 8, messageId & 0xff);
}

/**
 * Reads just the header of a datagram we are about to send (the demultiplexer watches node-coap's
 * outgoing traffic to learn message IDs and tokens). undefined if it is not a CoAP header.
 */
export function peekHeader(buf: Uint8Array): { type: MessageType; code: number; messageId: number; tokenHex: string } | undefined {
  if (buf.length < 4 || buf[0]! >> 6 !== 1) return undefined;
  const tkl = buf[0]! & 15;
  if (tkl > 8 || 4 + tkl > buf.length) return undefined;
  return {
    type: ((buf[0]! >> 4) & 3) as MessageType,
    code: buf[1]!,
    messageId: (buf[2]! << 8) | buf[3]!,
    tokenHex: Buffer.from(buf.buffer, buf.byteOffset + 4, tkl).toString('hex'),
  };
}

const OPTION_NAMES: ReadonlyMap<number, string> = new Map(Object.entries(Opt).map(([k, v]) => [v, k]));

/** One line for logs: `CON 0.02 mid=1 token=11 /bs?ep=dev1 [7 options] 0 bytes`. No payload bytes. */
export function describeMessage(buf: Buffer): string {
  const r = decodeMessage(buf);
  if (!r.ok) return `malformed (${r.reason}), ${buf.length} bytes`;
  const m = r.message;
  let s = `${TYPE_NAMES[m.type]} ${codeToString(m.code)} mid=${m.messageId}`;
  if (m.token.length > 0) s += ` token=${m.token.toString('hex')}`;
  const path = optionValues(m.options, Opt.UriPath);
  const query = optionValues(m.options, Opt.UriQuery);
  if (m.code > 0 && m.code < 32) s += ` /${path.map((p) => p.toString('utf8')).join('/')}`;
  if (query.length > 0) s += `?${query.map((q) => q.toString('utf8')).join('&')}`;
  const others = m.options.filter((o) => o.number !== Opt.UriPath && o.number !== Opt.UriQuery);
  for (const o of others) {
    const name = OPTION_NAMES.get(o.number) ?? String(o.number);
    const isUint = o.number === Opt.ContentFormat || o.number === Opt.Accept || o.number === Opt.Observe
      || o.number === Opt.Size1 || o.number === Opt.Size2 || o.number === Opt.MaxAge;
    s += ` ${name}=${isUint ? String(decodeUint(o.value)) : o.value.toString('hex')}`;
  }
  s += `, ${m.payload.length} bytes payload`;
  return s;
}
