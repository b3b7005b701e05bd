/**
 * CoRE Link Format (RFC 6690, Content-Format 40) as LwM2M uses it: Register/Update payloads,
 * Discover and Bootstrap-Discover responses.
 *
 * Two layers:
 *  - a generic one (`parseLinkFormat` / `formatLinkFormat`) that turns text into ordered links
 *    with ordered parameters and back;
 *  - an LwM2M one that reads what the servers need from those links: the object list of a
 *    Register (`parseRegisterLinks`), the accounts of a Bootstrap-Discover
 *    (`parseBootstrapDiscover`, `findBootstrapAccount`), typed notification attributes of a
 *    Discover (`linkAttributes`), plus `formatRegisterLinks` for the device simulator.
 *
 * This is not a `NodeCodec`: link-format carries links, not resource values.
 *
 * Parsing is one left-to-right pass over the text with a character-class table (no regular
 * expressions, no backtracking), so adversarial input costs time linear in its length, and the
 * length itself is capped. The parser is lenient where real clients deviate from RFC 6690:
 *  - whitespace (SP, HTAB, CR, LF) around links, parameters, `,`, `;` and `=` (spec 1.2
 *    examples put a space after commas);
 *  - empty elements: leading, repeated and trailing commas, and empty parameters (`;;`, a
 *    trailing `;`);
 *  - the LwM2M 1.0 Bootstrap-Discover header: the payload may start with parameters that belong
 *    to no link (`lwm2m="1.0",</0/0>,...`). It is returned as the first link with `uri: ''` and
 *    `bare: true` (an explicit empty target `<>` gives `uri: ''` without `bare`). Only the first
 *    element may be bare, and its first parameter must have a value, so stray text elsewhere is
 *    still an error;
 *  - unquoted values wherever RFC 6690 wants quotes (`rt=oma.lwm2m`), quoted values wherever it
 *    allows tokens (`lwm2m="1.0"`), and any character inside a quoted string (`\x` stands for x);
 *  - parameter names are case-insensitive (RFC 8288 §3) and are returned in lower case.
 * It is strict on structure: an unterminated `<` or quoted string, a character that cannot be
 * in a link target, a parameter without a name, `name=` without a value, or anything other than
 * `,` after a link is a `CodecError` with the character offset of the fault. Offsets count
 * UTF-16 code units of the decoded text (equal to byte offsets for ASCII payloads).
 */
import { CodecError } from './errors.js';
import { MAX_ID, isValidId, type Path } from './path.js';

const FORMAT = 'link-format';

// ---------------------------------------------------------------------------------------------
// Generic layer
// ---------------------------------------------------------------------------------------------

/** One parameter of a link, in the order it appeared. */
export interface LinkParam {
  /** Parameter name, lower case. */
  readonly name: string;
  /** The value with quotes and escapes removed; absent for a bare flag parameter (`;obs`). */
  readonly value?: string;
  /**
   * Set (true) when the value was written as a quoted string. The formatter quotes a value when
   * this is true, and otherwise decides by itself (see `formatLinkFormat`).
   */
  readonly quoted?: boolean;
}

/** One link: the target between `<` and `>` and its parameters, in order. */
export interface Link {
  /** Link target as written (`/3/0`, `/`, `/lwm2m`, `coap://h/x`); '' for `<>` and bare headers. */
  readonly uri: string;
  readonly params: readonly LinkParam[];
  /**
   * True only for the LwM2M 1.0 Bootstrap-Discover header: parameters written before the first
   * link without any `<…>` (`lwm2m="1.0",</0/0>`). Such a link is always the first one.
   */
  readonly bare?: boolean;
}

/** Limits that keep a hostile payload cheap. */
export interface LinkFormatLimits {
  /** Maximum payload size: bytes for a `Uint8Array`, UTF-16 code units for a string. */
  readonly maxLength?: number;
  /** Maximum number of links. */
  readonly maxLinks?: number;
  /** Maximum number of parameters on one link. */
  readonly maxParams?: number;
}

/**
 * Defaults: 64 KiB is far above a real Register (a link like `</3303/12>` is ~11 bytes, so a
 * client with a thousand instances sends ~12 KiB, already over many Block1 transfers) and the
 * link count can never exceed what 64 KiB holds anyway; 64 parameters per link leave room for
 * every LwM2M attribute (12) plus vendor extras.
 */
export const DEFAULT_LINK_FORMAT_LIMITS: Required<LinkFormatLimits> = Object.freeze({
  maxLength: 65536,
  maxLinks: 10000,
  maxParams: 64,
});

// Character classes for the scanner (ASCII only; see the functions below for non-ASCII).
const C_NAME = 1; // parmname (RFC 8288): ALPHA DIGIT ! # $ & + - . ^ _ ` | ~, plus * for title*
const C_TOKEN = 2; // ptokenchar (RFC 6690): printable ASCII except " , ; \ and space
const C_URI = 4; // characters of a URI-reference (RFC 3986), including % for escapes
const C_WS = 8; // SP HTAB CR LF

const CLASS = (() => {
  const t = new Uint8Array(128);
  const set = (chars: string, bit: number): void => {
    for (let i = 0; i < chars.length; i++) t[chars.charCodeAt(i)] |= bit;
  };
  const alnum = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  set(alnum + "!#$&+-.^_`|~*", C_NAME);
  for (let c = 0x21; c < 0x7f; c++) if (c !== 0x22 && c !== 0x2c && c !== 0x3b && c !== 0x5c) t[c] |= C_TOKEN;
  set(alnum + "-._~:/?#[]@!$&'()*+,;=%", C_URI);
  set(' \t\r\n', C_WS);
  return t;
})();

const CH_QUOTE = 0x22; // "
const CH_COMMA = 0x2c; // ,
const CH_SEMI = 0x3b; // ;
const CH_LT = 0x3c; // <
const CH_EQ = 0x3d; // =
const CH_GT = 0x3e; // >
const CH_BACKSLASH = 0x5c; // \

const isWs = (c: number): boolean => c < 128 && (CLASS[c]! & C_WS) !== 0;
const isName = (c: number): boolean => c < 128 && (CLASS[c]! & C_NAME) !== 0;
/** Unquoted value character. Non-ASCII is accepted leniently (UTF-8 in tokens is seen). */
const isToken = (c: number): boolean => (c < 128 ? (CLASS[c]! & C_TOKEN) !== 0 : true);
/** Link target character. Non-ASCII is accepted leniently (IRIs). */
const isUri = (c: number): boolean => (c < 128 ? (CLASS[c]! & C_URI) !== 0 : true);

/** `'x'` for printable ASCII, `U+XXXX` otherwise: keeps error messages readable and safe. */
function describe(c: number): string {
  return c > 0x20 && c < 0x7f ? `'${String.fromCharCode(c)}'` : `U+${c.toString(16).toUpperCase().padStart(4, '0')}`;
}

function fail(reason: 'invalid' | 'truncated' | 'too_large', detail: string, offset?: number): never {
  throw new CodecError(FORMAT, reason, detail, offset);
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

function toText(input: string | Uint8Array, maxLength: number): string {
  if (typeof input === 'string') {
    if (input.length > maxLength) fail('too_large', `payload of ${input.length} characters exceeds the limit of ${maxLength}`, maxLength);
    return input;
  }
  if (input.byteLength > maxLength) fail('too_large', `payload of ${input.byteLength} bytes exceeds the limit of ${maxLength}`, maxLength);
  try {
    return UTF8.decode(input);
  } catch {
    return fail('invalid', 'payload is not valid UTF-8');
  }
}

/** The scanner state: one cursor over the text. */
class Scanner {
  pos = 0;
  readonly n: number;

  constructor(
    readonly s: string,
    readonly maxParams: number,
  ) {
    this.n = s.length;
  }

  skipWs(): void {
    const { s, n } = this;
    let p = this.pos;
    while (p < n && isWs(s.charCodeAt(p))) p++;
    this.pos = p;
  }

  /** At `<`: reads the target up to `>` and returns it. */
  target(): string {
    const { s, n } = this;
    const open = this.pos;
    let p = open + 1;
    for (; p < n; p++) {
      const c = s.charCodeAt(p);
      if (c === CH_GT) break;
      if (!isUri(c)) {
        if (c === CH_LT) fail('invalid', `'<' inside the link target opened at offset ${open} (missing '>')`, p);
        fail('invalid', `character ${describe(c)} is not allowed in a link target`, p);
      }
    }
    if (p >= n) fail('truncated', `unterminated link target: '<' at offset ${open} has no matching '>'`, open);
    this.pos = p + 1;
    return s.slice(open + 1, p);
  }

  /** At `"`: reads a quoted string and returns its content with `\x` escapes resolved. */
  quoted(): string {
    const { s, n } = this;
    const open = this.pos;
    let p = open + 1;
    let seg = p;
    let out = '';
    while (p < n) {
      const c = s.charCodeAt(p);
      if (c === CH_QUOTE) {
        this.pos = p + 1;
        return out + s.slice(seg, p);
      }
      if (c === CH_BACKSLASH) {
        if (p + 1 >= n) break;
        out += s.slice(seg, p);
        seg = p + 1; // the escaped character starts the next literal segment
        p += 2;
        continue;
      }
      p++;
    }
    return fail('truncated', `unterminated quoted string opened at offset ${open}`, open);
  }

  /** At a parameter name: reads `name`, `name=token` or `name="quoted"`. */
  param(): LinkParam {
    const { s, n } = this;
    const start = this.pos;
    let p = start;
    let upper = false;
    while (p < n) {
      const c = s.charCodeAt(p);
      if (!isName(c)) break;
      if (c >= 0x41 && c <= 0x5a) upper = true;
      p++;
    }
    if (p === start) {
      fail('invalid', p < n ? `expected a parameter name, found ${describe(s.charCodeAt(p))}` : 'expected a parameter name', p);
    }
    let name = s.slice(start, p);
    if (upper) name = name.toLowerCase();
    this.pos = p;
    this.skipWs();
    if (this.pos >= n || s.charCodeAt(this.pos) !== CH_EQ) {
      this.pos = p; // a flag parameter; whitespace after it is the caller's business
      return { name };
    }
    this.pos++;
    this.skipWs();
    if (this.pos >= n) fail('truncated', `parameter "${name}" has '=' but no value`, this.pos);
    if (s.charCodeAt(this.pos) === CH_QUOTE) return { name, value: this.quoted(), quoted: true };
    const vstart = this.pos;
    let q = vstart;
    while (q < n && isToken(s.charCodeAt(q))) q++;
    if (q === vstart) fail('invalid', `parameter "${name}" has '=' but no value (found ${describe(s.charCodeAt(q))})`, q);
    this.pos = q;
    return { name, value: s.slice(vstart, q) };
  }

  /** Reads any number of `;param` (empty ones skipped) into `into`. */
  params(into: LinkParam[]): void {
    const { s, n } = this;
    for (;;) {
      const save = this.pos;
      this.skipWs();
      if (this.pos >= n || s.charCodeAt(this.pos) !== CH_SEMI) {
        this.pos = save;
        return;
      }
      this.pos++;
      this.skipWs();
      if (this.pos >= n) return; // trailing ';'
      const c = s.charCodeAt(this.pos);
      if (c === CH_SEMI || c === CH_COMMA) continue; // empty parameter
      if (into.length >= this.maxParams) fail('too_large', `more than ${this.maxParams} parameters on one link`, this.pos);
      into.push(this.param());
    }
  }
}

/**
 * Parses a link-format payload into links, keeping the order of links and of parameters.
 * Empty (or whitespace-only) payload → []. See the module comment for what is tolerated.
 * Throws `CodecError` (`invalid`, `truncated` when the text ends inside a link or quoted string,
 * `too_large` beyond the limits).
 */
export function parseLinkFormat(input: string | Uint8Array, limits?: LinkFormatLimits): Link[] {
  const maxLength = limits?.maxLength ?? DEFAULT_LINK_FORMAT_LIMITS.maxLength;
  const maxLinks = limits?.maxLinks ?? DEFAULT_LINK_FORMAT_LIMITS.maxLinks;
  const maxParams = limits?.maxParams ?? DEFAULT_LINK_FORMAT_LIMITS.maxParams;
  const s = toText(input, maxLength);
  const sc = new Scanner(s, maxParams);
  const n = s.length;
  const links: Link[] = [];
  for (;;) {
    sc.skipWs();
    if (sc.pos >= n) break;
    const c = s.charCodeAt(sc.pos);
    if (c === CH_COMMA) {
      sc.pos++; // empty element: leading, doubled or trailing comma
      continue;
    }
    if (links.length >= maxLinks) fail('too_large', `more than ${maxLinks} links`, sc.pos);
    const params: LinkParam[] = [];
    if (c === CH_LT) {
      const uri = sc.target();
      sc.params(params);
      links.push({ uri, params });
    } else if (links.length === 0 && isName(c)) {
      // LwM2M 1.0 Bootstrap-Discover header (`lwm2m="1.0",</0/0>…`): parameters without a link.
      const start = sc.pos;
      const first = sc.param();
      if (first.value === undefined) fail('invalid', `expected '<' at the start of a link, found ${describe(c)}`, start);
      params.push(first);
      sc.params(params);
      links.push({ uri: '', params, bare: true });
    } else {
      fail('invalid', `expected '<' at the start of a link, found ${describe(c)}`, sc.pos);
    }
    sc.skipWs();
    if (sc.pos < n && s.charCodeAt(sc.pos) !== CH_COMMA) {
      fail('invalid', `unexpected ${describe(s.charCodeAt(sc.pos))} after a link (links are separated by ',', parameters by ';')`, sc.pos);
    }
  }
  return links;
}

/**
 * Parameters whose values LwM2M and RFC 6690 conventionally write quoted even when a token would
 * do (`rt="oma.lwm2m"`, `uri="coaps://…"`); everything else is quoted only when it must be.
 */
const ALWAYS_QUOTED: ReadonlySet<string> = new Set(['rt', 'if', 'uri', 'anchor', 'title']);

function isPlainToken(v: string): boolean {
  if (v.length === 0) return false;
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c >= 128 || (CLASS[c]! & C_TOKEN) === 0) return false;
  }
  return true;
}

function quote(v: string): string {
  let out = '"';
  let seg = 0;
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c === CH_QUOTE || c === CH_BACKSLASH) {
      out += v.slice(seg, i) + '\\';
      seg = i;
    }
  }
  return out + v.slice(seg) + '"';
}

function formatParam(p: LinkParam): string {
  const { name, value } = p;
  if (name.length === 0) fail('invalid', 'cannot format a parameter with an empty name');
  for (let i = 0; i < name.length; i++) {
    if (!isName(name.charCodeAt(i))) fail('invalid', `cannot format parameter name ${JSON.stringify(name)}`);
  }
  if (value === undefined) return name;
  const q = p.quoted === true || ALWAYS_QUOTED.has(name) || !isPlainToken(value);
  return name + '=' + (q ? quote(value) : value);
}

/**
 * Formats links as link-format text (no whitespace). Values are written as tokens unless they
 * need quotes (empty, or containing space, `,`, `;`, `"`, `\`, control or non-ASCII characters —
 * so a multi-value `ct="60 110"` is quoted), the parameter is one LwM2M conventionally quotes
 * (`rt`, `uri`, `if`, `anchor`, `title`), or the param says `quoted: true`. Numbers therefore come
 * out unquoted (`ssid=101`, `ver=1.1`, `pmin=10`). A `bare` link (1.0 Bootstrap-Discover header)
 * must be first and is written without `<…>`. Throws `CodecError('link-format', 'invalid')` for
 * a target or name that cannot be written.
 */
export function formatLinkFormat(links: readonly Link[]): string {
  let out = '';
  for (let i = 0; i < links.length; i++) {
    const link = links[i]!;
    if (i > 0) out += ',';
    if (link.bare === true) {
      if (i !== 0) fail('invalid', 'only the first link may be a bare parameter header');
      if (link.uri !== '') fail('invalid', 'a bare parameter header has no target');
      const first = link.params[0];
      if (first === undefined || first.value === undefined) fail('invalid', 'a bare parameter header must start with a name=value parameter');
      for (let j = 0; j < link.params.length; j++) out += (j > 0 ? ';' : '') + formatParam(link.params[j]!);
      continue;
    }
    const uri = link.uri;
    for (let j = 0; j < uri.length; j++) {
      const c = uri.charCodeAt(j);
      if (!isUri(c)) fail('invalid', `cannot format link target ${JSON.stringify(uri)}: character ${describe(c)}`);
    }
    out += '<' + uri + '>';
    for (const p of link.params) out += ';' + formatParam(p);
  }
  return out;
}

/** The registry entry for Content-Format 40 (a plain object: link-format is not a NodeCodec). */
export interface LinkFormatCodec {
  readonly contentFormat: 40;
  readonly name: 'link-format';
  readonly mediaType: 'application/link-format';
  readonly parse: (input: string | Uint8Array, limits?: LinkFormatLimits) => Link[];
  readonly format: (links: readonly Link[]) => string;
}

export const linkFormatCodec: LinkFormatCodec = Object.freeze({
  contentFormat: 40,
  name: 'link-format',
  mediaType: 'application/link-format',
  parse: parseLinkFormat,
  format: formatLinkFormat,
});

/** Value of the first parameter called `name` (lower case), or undefined. Flags give ''. */
export function linkParam(link: Link, name: string): string | undefined {
  for (const p of link.params) if (p.name === name) return p.value ?? '';
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// LwM2M layer
// ---------------------------------------------------------------------------------------------

function badPath(detail: string, uri?: string): never {
  throw new CodecError(FORMAT, 'bad_path', detail, undefined, uri);
}

/**
 * The LwM2M path a link target names relative to `rootPath` (`/` or an alternate path such as
 * `/lwm2m`), or undefined when the target is not an LwM2M path (not under the root, or a segment
 * that is not all digits: `/.well-known/core`, `/lwm2m/ext`). One trailing slash is tolerated
 * (`</0/1/>`, seen in OMA examples); leading zeros are accepted (`/03` is object 3). A target
 * made only of numeric segments that is still not a valid path — an ID above 65534 or more than
 * four IDs — throws `CodecError` `bad_path`: that is a broken client, not a foreign link.
 * `rootPath` is compared literally (a trailing slash on it is ignored).
 */
export function lwm2mPathOf(uri: string, rootPath = '/'): number[] | undefined {
  if (rootPath.length > 1 && rootPath.charCodeAt(rootPath.length - 1) === 0x2f) rootPath = rootPath.slice(0, -1);
  let start: number;
  if (rootPath === '/' || rootPath === '') {
    if (uri.charCodeAt(0) !== 0x2f) return undefined;
    start = 1;
  } else {
    if (!uri.startsWith(rootPath)) return undefined;
    start = rootPath.length;
    if (start === uri.length) return [];
    if (uri.charCodeAt(start) !== 0x2f) return undefined; // `/lwm2mfoo` is not under `/lwm2m`
    start++;
  }
  let end = uri.length;
  if (end > start && uri.charCodeAt(end - 1) === 0x2f) end--;
  if (end <= start) return [];
  const ids: number[] = [];
  let value = 0;
  let digits = 0;
  let tooBig = false;
  for (let i = start; i <= end; i++) {
    const c = i < end ? uri.charCodeAt(i) : 0x2f;
    if (c === 0x2f) {
      if (digits === 0) return undefined; // empty segment
      if (value > MAX_ID) tooBig = true;
      ids.push(value);
      value = 0;
      digits = 0;
    } else if (c >= 0x30 && c <= 0x39) {
      // Stop accumulating past 6 digits so the number stays small; it is too big either way.
      if (++digits <= 6) value = value * 10 + (c - 0x30);
      else value = MAX_ID + 1;
    } else {
      return undefined;
    }
  }
  if (tooBig) badPath(`link target ${uri} has an ID above ${MAX_ID}`, uri);
  if (ids.length > 4) badPath(`link target ${uri} has more than 4 IDs`, uri);
  return ids;
}

/** True when `value` (space-separated list, as `rt` may be) contains `token`. */
function hasToken(value: string, token: string): boolean {
  let i = 0;
  const n = value.length;
  while (i < n) {
    while (i < n && value.charCodeAt(i) === 0x20) i++;
    let j = i;
    while (j < n && value.charCodeAt(j) !== 0x20) j++;
    if (j - i === token.length && value.startsWith(token, i)) return true;
    i = j;
  }
  return false;
}

function isDigits(v: string, from: number, to: number): boolean {
  if (to <= from) return false;
  for (let i = from; i < to; i++) {
    const c = v.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return false;
  }
  return true;
}

/** `major.minor` as LwM2M writes object and enabler versions. */
function checkVersion(v: string, what: string, uri: string): string {
  const dot = v.indexOf('.');
  if (dot < 0 || !isDigits(v, 0, dot) || !isDigits(v, dot + 1, v.length) || v.length > 11) {
    fail('invalid', `${what} ${JSON.stringify(v)} on <${uri}> is not a major.minor version`);
  }
  return v;
}

/** A non-negative decimal integer of at most 15 digits (always a safe integer). */
function parseUint(v: string): number | undefined {
  return v.length <= 15 && isDigits(v, 0, v.length) ? Number(v) : undefined;
}

/** `ct` value: one or more space-separated Content-Format numbers (0..65535). */
function parseContentFormats(v: string, uri: string): number[] {
  const out: number[] = [];
  let i = 0;
  const n = v.length;
  while (i < n) {
    while (i < n && isWs(v.charCodeAt(i))) i++;
    if (i >= n) break;
    let j = i;
    while (j < n && !isWs(v.charCodeAt(j))) j++;
    const cf = parseUint(v.slice(i, j));
    if (cf === undefined || cf > 65535) fail('invalid', `ct=${JSON.stringify(v)} on <${uri}>: ${JSON.stringify(v.slice(i, j))} is not a Content-Format number`);
    out.push(cf);
    i = j;
  }
  if (out.length === 0) fail('invalid', `ct on <${uri}> lists no Content-Format`);
  return out;
}

/**
 * Normalises the target of the `rt="oma.lwm2m"` link into a root path: `/` or an absolute path
 * without trailing slash. The spec forbids numeric segments in an alternate path (they would be
 * indistinguishable from object IDs), so those are `bad_path`.
 */
function normalizeRootPath(uri: string): string {
  if (uri === '' || uri === '/') return '/';
  if (uri.charCodeAt(0) !== 0x2f) badPath(`alternate root path ${JSON.stringify(uri)} must start with '/'`, uri);
  let end = uri.length;
  if (uri.charCodeAt(end - 1) === 0x2f) end--;
  let segStart = 1;
  for (let i = 1; i <= end; i++) {
    const c = i < end ? uri.charCodeAt(i) : 0x2f;
    if (c === 0x3f || c === 0x23) badPath(`alternate root path ${JSON.stringify(uri)} must not have a query or fragment`, uri);
    if (c === 0x2f) {
      if (i === segStart) badPath(`alternate root path ${JSON.stringify(uri)} has an empty segment`, uri);
      if (isDigits(uri, segStart, i)) badPath(`alternate root path ${JSON.stringify(uri)} must not contain a numeric segment`, uri);
      segStart = i + 1;
    }
  }
  return uri.slice(0, end);
}

/** An object announced in a Register/Update payload. */
export interface RegisteredObject {
  /** `ver` of the object link (or, failing that, of one of its instance links). */
  version?: string;
  /** Instance IDs, ascending, without duplicates; empty for `</5>`-style links. */
  instances: number[];
}

export interface RegisterLinks {
  /** `/` or the alternate root path (`/lwm2m`) announced with `rt="oma.lwm2m"`. */
  rootPath: string;
  /** `ct` of the root link, in the order given; absent when the client did not announce any. */
  contentFormats?: number[];
  /** Every object the client listed, by object ID, in order of first appearance. */
  objects: Map<number, RegisteredObject>;
}

/**
 * Reads a Register (or Update) payload.
 *
 * - Root: the link whose `rt` contains `oma.lwm2m` gives the root path (`</>` or an alternate
 *   path such as `</lwm2m>`, which must not have numeric segments); without one the root is `/`.
 *   Two such links are `duplicate`. `ct` is read from the root link (or from `</>` when no link
 *   has the `rt`).
 * - Objects: each link under the root with all-numeric segments is an object (`</5>`) or
 *   instance (`</3/0>`) link; objects listed both ways merge, duplicate instances are dropped.
 *   `ver` is taken from the object link; a `ver` on an instance link is tolerated (a spec example
 *   does it) and used when the object link has none.
 * - Ignored: unknown parameters, links outside the root or with non-numeric segments. Security
 *   (0) and OSCORE (21), which clients must not list, are reported as given; the server decides.
 * - Refused (the Register fails with `bad_path`): numeric paths that are not valid object or
 *   instance paths — IDs above 65534, or resource-level links (`</3/0/1>`). Unknown but valid
 *   object IDs are fine. Malformed `ct` or `ver` values are `invalid`.
 */
export function parseRegisterLinks(input: string | Uint8Array, limits?: LinkFormatLimits): RegisterLinks {
  const links = parseLinkFormat(input, limits);

  let root: Link | undefined;
  for (const link of links) {
    if (link.bare === true) continue;
    const rt = linkParam(link, 'rt');
    if (rt !== undefined && hasToken(rt, 'oma.lwm2m')) {
      if (root !== undefined) {
        throw new CodecError(FORMAT, 'duplicate', `two links carry rt="oma.lwm2m": <${root.uri}> and <${link.uri}>`, undefined, link.uri);
      }
      root = link;
    }
  }
  const rootPath = root === undefined ? '/' : normalizeRootPath(root.uri);

  const objects = new Map<number, RegisteredObject>();
  let instanceVersions: Map<number, string> | undefined;
  let contentFormats: number[] | undefined;
  for (const link of links) {
    if (link.bare === true) continue;
    const path = link === root ? [] : lwm2mPathOf(link.uri, rootPath);
    if (path === undefined) continue;
    if (path.length === 0) {
      // The root link itself, or `</>` when no link carries the rt.
      if ((root === undefined || link === root) && contentFormats === undefined) {
        const ct = linkParam(link, 'ct');
        if (ct !== undefined) contentFormats = parseContentFormats(ct, link.uri);
      }
      continue;
    }
    if (path.length > 2) badPath(`<${link.uri}>: a Register lists only objects and object instances`, link.uri);
    const oid = path[0]!;
    let obj = objects.get(oid);
    if (obj === undefined) {
      obj = { instances: [] };
      objects.set(oid, obj);
    }
    const ver = linkParam(link, 'ver');
    if (path.length === 1) {
      if (ver !== undefined && obj.version === undefined) obj.version = checkVersion(ver, 'ver', link.uri);
    } else {
      obj.instances.push(path[1]!);
      if (ver !== undefined) {
        checkVersion(ver, 'ver', link.uri);
        instanceVersions ??= new Map();
        if (!instanceVersions.has(oid)) instanceVersions.set(oid, ver);
      }
    }
  }
  for (const [oid, obj] of objects) {
    sortUnique(obj.instances);
    if (obj.version === undefined) {
      const v = instanceVersions?.get(oid);
      if (v !== undefined) obj.version = v;
    }
  }
  const result: RegisterLinks = { rootPath, objects };
  if (contentFormats !== undefined) result.contentFormats = contentFormats;
  return result;
}

/** Sorts ascending and removes duplicates in place; skips the sort for already sorted input. */
function sortUnique(a: number[]): void {
  let sorted = true;
  for (let i = 1; i < a.length; i++) {
    if (a[i]! <= a[i - 1]!) {
      sorted = false;
      break;
    }
  }
  if (sorted) return;
  a.sort((x, y) => x - y);
  let w = 1;
  for (let i = 1; i < a.length; i++) if (a[i] !== a[w - 1]) a[w++] = a[i]!;
  a.length = w;
}

export interface FormatRegisterOptions {
  /** `/` (default) or an alternate root path such as `/lwm2m`. */
  readonly rootPath?: string;
  /** Content-Formats to announce with `ct` on the root link. */
  readonly contentFormats?: readonly number[];
  /** Objects in the order to list them (a `Map` works), each with its version and instances. */
  readonly objects: Iterable<readonly [number, { readonly version?: string; readonly instances: readonly number[] }]>;
}

/**
 * Builds a Register payload, for the device simulator. Root link: `<root>;rt="oma.lwm2m"`
 * (plus `;ct=…`) when the root is alternate or formats are announced — Leshan-style, and some
 * servers refuse a root link without the `rt`; none otherwise. Then per object: `</o>` (with
 * `;ver=…`) when it has a version or no instances, followed by one `</o/i>` per instance in the
 * given order.
 */
export function formatRegisterLinks(opts: FormatRegisterOptions): string {
  const rootPath = opts.rootPath === undefined ? '/' : normalizeRootPath(opts.rootPath);
  const links: Link[] = [];
  const cts = opts.contentFormats;
  if (rootPath !== '/' || (cts !== undefined && cts.length > 0)) {
    const params: LinkParam[] = [{ name: 'rt', value: 'oma.lwm2m' }];
    if (cts !== undefined && cts.length > 0) {
      for (const cf of cts) {
        if (!Number.isInteger(cf) || cf < 0 || cf > 65535) fail('invalid', `Content-Format ${cf} is not in 0..65535`);
      }
      params.push({ name: 'ct', value: cts.join(' ') });
    }
    links.push({ uri: rootPath, params });
  }
  const prefix = rootPath === '/' ? '/' : rootPath + '/';
  for (const [oid, obj] of opts.objects) {
    if (!isValidId(oid)) badPath(`object ID ${oid} is not in 0..${MAX_ID}`);
    if (obj.version !== undefined || obj.instances.length === 0) {
      const params: LinkParam[] = obj.version === undefined ? [] : [{ name: 'ver', value: checkVersion(obj.version, 'ver', `${prefix}${oid}`) }];
      links.push({ uri: `${prefix}${oid}`, params });
    }
    for (const iid of obj.instances) {
      if (!isValidId(iid)) badPath(`instance ID ${iid} of object ${oid} is not in 0..${MAX_ID}`);
      links.push({ uri: `${prefix}${oid}/${iid}`, params: [] });
    }
  }
  return formatLinkFormat(links);
}

/** An object listed in a Bootstrap-Discover response. */
export interface DiscoveredObject {
  /** `ver` of the object link (or, failing that, of one of its instance links). */
  version?: string;
}

/** An object instance listed in a Bootstrap-Discover response, with its account attributes. */
export interface DiscoveredInstance {
  path: Path;
  /** Short Server ID (Security, Server, OSCORE and 1.2.1 objects 23/24 of a DM server). */
  ssid?: number;
  /** LwM2M Server URI (1.1+, Security instances). */
  uri?: string;
}

export interface BootstrapDiscover {
  /** Enabler version from `</>;lwm2m=…` or the 1.0 bare header `lwm2m="1.0"`. */
  lwm2mVersion?: string;
  /** Every object mentioned (by an object or an instance link), in order of first appearance. */
  objects: Map<number, DiscoveredObject>;
  /** Every instance link, in payload order. */
  instances: DiscoveredInstance[];
}

function parseSsid(v: string, uri: string): number {
  const n = parseUint(v);
  if (n === undefined) fail('invalid', `ssid=${JSON.stringify(v)} on <${uri}> is not a number`);
  if (n > 65535) throw new CodecError(FORMAT, 'out_of_range', `ssid=${v} on <${uri}> is above 65535`, undefined, uri);
  return n;
}

/**
 * Reads a Bootstrap-Discover response: both the 1.1+ form (`</>;lwm2m=1.1,…`) and the 1.0 form
 * with a bare `lwm2m="1.0"` header, quoted or unquoted values, trailing slashes, `uri` on the
 * bootstrap account (Leshan client). Links that are not LwM2M paths are ignored; numeric paths
 * deeper than an instance or with IDs above 65534 are `bad_path` (the operation lists objects and
 * instances only). Malformed `ssid` → `invalid` / `out_of_range`.
 */
export function parseBootstrapDiscover(input: string | Uint8Array, limits?: LinkFormatLimits): BootstrapDiscover {
  const links = parseLinkFormat(input, limits);
  const result: BootstrapDiscover = { objects: new Map(), instances: [] };
  let instanceVersions: Map<number, string> | undefined;
  for (const link of links) {
    const path = link.bare === true ? [] : lwm2mPathOf(link.uri);
    if (path === undefined) continue;
    if (path.length === 0) {
      const v = linkParam(link, 'lwm2m');
      if (v !== undefined && result.lwm2mVersion === undefined) result.lwm2mVersion = v;
      continue;
    }
    if (path.length > 2) badPath(`<${link.uri}>: Bootstrap-Discover lists only objects and object instances`, link.uri);
    const oid = path[0]!;
    let obj = result.objects.get(oid);
    if (obj === undefined) {
      obj = {};
      result.objects.set(oid, obj);
    }
    const ver = linkParam(link, 'ver');
    if (path.length === 1) {
      if (ver !== undefined && obj.version === undefined) obj.version = checkVersion(ver, 'ver', link.uri);
      continue;
    }
    if (ver !== undefined) {
      checkVersion(ver, 'ver', link.uri);
      instanceVersions ??= new Map();
      if (!instanceVersions.has(oid)) instanceVersions.set(oid, ver);
    }
    const inst: DiscoveredInstance = { path };
    const ssid = linkParam(link, 'ssid');
    if (ssid !== undefined) inst.ssid = parseSsid(ssid, link.uri);
    const uri = linkParam(link, 'uri');
    if (uri !== undefined) inst.uri = uri;
    result.instances.push(inst);
  }
  if (instanceVersions !== undefined) {
    for (const [oid, v] of instanceVersions) {
      const obj = result.objects.get(oid)!;
      if (obj.version === undefined) obj.version = v;
    }
  }
  return result;
}

/**
 * The Bootstrap-Server account among the discovered instances: the first Security (`/0/x`)
 * instance without `ssid` (a DM server's Security instance always carries its SSID). Undefined
 * when the client has none.
 */
export function findBootstrapAccount(result: BootstrapDiscover): DiscoveredInstance | undefined {
  for (const inst of result.instances) if (inst.path[0] === 0 && inst.ssid === undefined) return inst;
  return undefined;
}

/** Typed attributes of a Discover link (registration.md §7.4), plus `dim` and `ver`. */
export interface LinkAttributes {
  pmin?: number;
  pmax?: number;
  gt?: number;
  lt?: number;
  st?: number;
  epmin?: number;
  epmax?: number;
  edge?: 0 | 1;
  con?: 0 | 1;
  hqmax?: number;
  /** Number of instances of a multi-instance resource (0..255). */
  dim?: number;
  /** Object version (`major.minor`), on object links. */
  ver?: string;
}

type IntAttr = 'pmin' | 'pmax' | 'epmin' | 'epmax' | 'hqmax' | 'dim';
type FloatAttr = 'gt' | 'lt' | 'st';

const ATTR_KIND: ReadonlyMap<string, 'int' | 'float' | 'bit' | 'ver'> = new Map([
  ['pmin', 'int'],
  ['pmax', 'int'],
  ['epmin', 'int'],
  ['epmax', 'int'],
  ['hqmax', 'int'],
  ['dim', 'int'],
  ['gt', 'float'],
  ['lt', 'float'],
  ['st', 'float'],
  ['edge', 'bit'],
  ['con', 'bit'],
  ['ver', 'ver'],
]);

const isDigitAt = (v: string, i: number): boolean => {
  const c = v.charCodeAt(i);
  return c >= 0x30 && c <= 0x39;
};

/** Decimal float as attributes carry it: `[+-]digits[.digits][e[+-]digits]`, also `.5` / `5.`. */
function parseDecimal(v: string): number | undefined {
  const n = v.length;
  let i = 0;
  if (i < n && (v.charCodeAt(i) === 0x2b || v.charCodeAt(i) === 0x2d)) i++;
  const intStart = i;
  while (i < n && isDigitAt(v, i)) i++;
  let mantissa = i - intStart;
  if (i < n && v.charCodeAt(i) === 0x2e) {
    const fracStart = ++i;
    while (i < n && isDigitAt(v, i)) i++;
    mantissa += i - fracStart;
  }
  if (mantissa === 0) return undefined;
  if (i < n && (v.charCodeAt(i) === 0x65 || v.charCodeAt(i) === 0x45)) {
    i++;
    if (i < n && (v.charCodeAt(i) === 0x2b || v.charCodeAt(i) === 0x2d)) i++;
    if (!isDigits(v, i, n)) return undefined;
    i = n;
  }
  if (i !== n) return undefined;
  const x = Number(v);
  return Number.isFinite(x) ? x : undefined;
}

/**
 * The notification attributes, `dim` and `ver` of a link, typed. Unknown parameters are
 * ignored; for a repeated attribute the first wins. A known attribute without a value or with a
 * malformed one is `invalid`; `dim` above 255 is `out_of_range`.
 */
export function linkAttributes(link: Link): LinkAttributes {
  const out: LinkAttributes = {};
  for (const p of link.params) {
    const kind = ATTR_KIND.get(p.name);
    if (kind === undefined) continue;
    const name = p.name as keyof LinkAttributes;
    if (out[name] !== undefined) continue;
    const v = p.value;
    if (v === undefined) fail('invalid', `attribute ${name} on <${link.uri}> has no value`);
    switch (kind) {
      case 'int': {
        const x = parseUint(v);
        if (x === undefined) fail('invalid', `attribute ${name}=${JSON.stringify(v)} on <${link.uri}> is not a non-negative integer`);
        if (name === 'dim' && x > 255) throw new CodecError(FORMAT, 'out_of_range', `dim=${v} on <${link.uri}> is above 255`, undefined, link.uri);
        out[name as IntAttr] = x;
        break;
      }
      case 'float': {
        const x = parseDecimal(v);
        if (x === undefined) fail('invalid', `attribute ${name}=${JSON.stringify(v)} on <${link.uri}> is not a number`);
        out[name as FloatAttr] = x;
        break;
      }
      case 'bit':
        if (v !== '0' && v !== '1') fail('invalid', `attribute ${name}=${JSON.stringify(v)} on <${link.uri}> must be 0 or 1`);
        out[name as 'edge' | 'con'] = v === '1' ? 1 : 0;
        break;
      case 'ver':
        out.ver = checkVersion(v, 'ver', link.uri);
        break;
    }
  }
  return out;
}
