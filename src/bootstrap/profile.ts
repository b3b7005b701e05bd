/**
 * Bootstrap profiles: the JSON document that says what a device gets (servers, credentials,
 * ACLs, deletes, formats), validated on import with errors that name the field
 * (`servers[1].security.mode: must be one of nosec, psk, rpk, x509`). Every problem in a
 * document is reported in one `ProfileError`, not just the first, so a user fixes a file in one go.
 *
 * `parseProfile` fills the defaults, so the rest of lwbs never sees an optional that has a
 * default. Binary fields become bytes, secret fields become `Secret`s. Consistency rules that
 * would otherwise surface as a 4.06 on Bootstrap-Finish (a server without security, duplicate
 * Short Server IDs, an ACL for an unknown server, a URI whose scheme does not fit the security
 * mode, ...) are refused here. `profileWarnings` lists things that are legal but probably not
 * what the author meant.
 *
 * Pure: no I/O. node:crypto is used only to check static X.509 material.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { CodecError } from '../lwm2m/errors.js';
import { formatPath, parsePath, type Path } from '../lwm2m/path.js';
import {
  CredentialError,
  MAX_PSK_IDENTITY,
  MAX_PSK_KEY,
  parseIdentityTemplate,
  parseP256PrivateKey,
  parseP256PublicKey,
  encodeP256Spki,
  Secret,
  splitDer,
} from './credentials.js';
import { bytesEqual, hexToBytes as hexBytes, isUtf8 } from '../util/bytes.js';

// ---------------------------------------------------------------------------------------------
// Types

/** Security modes, for the server accounts we write and for the bootstrap channel itself. */
export type SecurityMode = 'nosec' | 'psk' | 'rpk' | 'x509';
export const SECURITY_MODES: readonly SecurityMode[] = ['nosec', 'psk', 'rpk', 'x509'];
/** Security object res 2 values (objects.md §2). */
export const SECURITY_MODE_NUMBER: Readonly<Record<SecurityMode, number>> = { psk: 0, rpk: 1, x509: 2, nosec: 3 };

export type LwM2MVersion = '1.0' | '1.1' | '1.2';
export const LWM2M_VERSIONS: readonly LwM2MVersion[] = ['1.0', '1.1', '1.2'];

/** Content formats a Bootstrap-Write of an instance can use (bootstrap.md §7). */
export type BootstrapWriteFormat = 11542 | 11543 | 110 | 112 | 11544;
export const FORMAT_NAMES: Readonly<Record<string, BootstrapWriteFormat>> = {
  tlv: 11542,
  'lwm2m-json': 11543,
  'senml-json': 110,
  'senml-cbor': 112,
  'lwm2m-cbor': 11544,
};
/** The LwM2M versions whose Bootstrap-Write accepts each format. */
export const FORMAT_VERSIONS: Readonly<Record<BootstrapWriteFormat, readonly LwM2MVersion[]>> = {
  11542: ['1.0', '1.1', '1.2'],
  11543: ['1.0'],
  110: ['1.1', '1.2'],
  112: ['1.1', '1.2'],
  11544: ['1.2'],
};

export function isBootstrapWriteFormat(cf: number): cf is BootstrapWriteFormat {
  return Object.prototype.hasOwnProperty.call(FORMAT_VERSIONS, cf);
}

interface SecurityOptions {
  /** /0/x/16 (1.1+): IANA cipher suite numbers the client must offer. */
  readonly ciphersuites?: readonly number[];
  /** /0/x/14 (1.1+): Server Name Indication. */
  readonly sni?: string;
  /** /0/x/13 (1.1+): 0 exact, 1 SHA-256, 2 SHA-384, 3 SHA-512 of res 4 (rpk, x509). */
  readonly matchingType?: number;
  /** /0/x/15 (1.1+): certificate usage 0..3 (x509). */
  readonly certificateUsage?: number;
}

export type SecuritySpec = SecurityOptions &
  (
    | { readonly mode: 'nosec' }
    /** Per-device PSK: random 16-byte key, identity from the template. */
    | { readonly mode: 'psk'; readonly generate: true; readonly identityTemplate: string }
    | { readonly mode: 'psk'; readonly generate: false; readonly identity: Uint8Array; readonly key: Secret }
    /** Per-device P-256 key pair; `serverPublicKey` is absent for hand-off (it comes from the config). */
    | { readonly mode: 'rpk'; readonly generate: true; readonly serverPublicKey?: Uint8Array }
    | {
        readonly mode: 'rpk';
        readonly generate: false;
        /** SubjectPublicKeyInfo DER. */
        readonly publicKey: Uint8Array;
        /** PKCS#8 DER. */
        readonly privateKey: Secret;
        readonly serverPublicKey: Uint8Array;
      }
    | {
        readonly mode: 'x509';
        /** Client certificate DER; a chain (leaf first) is the concatenation of DER certificates. */
        readonly certificate: Uint8Array;
        /** PKCS#8 DER. */
        readonly privateKey: Secret;
        /** Server certificate or trust anchor DER (res 4). */
        readonly serverCertificate: Uint8Array;
      }
  );

export interface OscoreSpec {
  readonly masterSecret: Secret;
  readonly senderId: Uint8Array;
  readonly recipientId: Uint8Array;
  /** COSE AEAD algorithm (res 3); the client default is 10 (AES-CCM-16-64-128). */
  readonly aeadAlgorithm?: number;
  /** HKDF algorithm (res 4); clients use -10 or 5 for HKDF SHA-256. */
  readonly hmacAlgorithm?: number;
  readonly masterSalt?: Uint8Array;
  /** res 6, OSCORE object 1.1+. */
  readonly idContext?: Uint8Array;
}

export interface ServerSpec {
  readonly shortServerId: number;
  /** This lwbs's own registration server: URI from the config, credentials generated per device. */
  readonly handOff: boolean;
  /** Present exactly when `handOff` is false. */
  readonly uri?: string;
  readonly lifetime: number;
  /** Binding letters as written in the profile (adapted per client version by `bindingFor`). */
  readonly binding: string;
  readonly notificationStoring: boolean;
  readonly defaultMinPeriod?: number;
  readonly defaultMaxPeriod?: number;
  readonly disableTimeout?: number;
  // LwM2M 1.1 Server resources
  readonly registrationPriorityOrder?: number;
  readonly initialRegistrationDelayTimer?: number;
  readonly registrationFailureBlock?: boolean;
  readonly bootstrapOnRegistrationFailure?: boolean;
  readonly communicationRetryCount?: number;
  readonly communicationRetryTimer?: number;
  readonly communicationSequenceDelayTimer?: number;
  readonly communicationSequenceRetryCount?: number;
  readonly trigger?: boolean;
  readonly preferredTransport?: string;
  readonly muteSend?: boolean;
  // LwM2M 1.2 Server resources
  readonly supportedServerVersions?: readonly string[];
  /** 0 = NON notifications, 1 = CON. */
  readonly defaultNotificationMode?: number;
  readonly profileIdHashAlgorithm?: number;
  readonly security: SecuritySpec;
  readonly oscore?: OscoreSpec;
}

export interface BootstrapAccountSpec {
  readonly uri: string;
  readonly security: SecuritySpec;
  /** /0/x/11 Client Hold Off Time, seconds. */
  readonly clientHoldOffTime?: number;
  /** /0/x/12 Bootstrap-Server Account Timeout, seconds (0 = never purge). */
  readonly accountTimeout?: number;
}

export const ACL_OBJECT_LEVEL = 65535;
export const ACL_OWNER_BOOTSTRAP = 65535;

export interface AclSpec {
  readonly objectId: number;
  /** 65535 = object-level ACL (governs Create). */
  readonly instanceId: number;
  /** SSID → rights bitmask (R=1 W=2 E=4 D=8 C=16); SSID 0 = default rights. Ascending SSID order. */
  readonly rights: ReadonlyMap<number, number>;
  /** SSID of the owner, or 65535 = managed by the bootstrap server only. */
  readonly owner: number;
}

export interface Profile {
  readonly name: string;
  readonly description?: string;
  /** Endpoint glob patterns (`*`, `?`, `\` escapes) for zero-touch enrollment. */
  readonly match: readonly string[];
  readonly enroll: {
    /** Bootstrap-channel security an unknown, matching endpoint may arrive with. */
    readonly allowSecurity: readonly SecurityMode[];
  };
  /** Bootstrap-Delete targets in order: `/`, `/o` or `/o/i`. */
  readonly delete: readonly Path[];
  readonly contentFormat: 'auto' | BootstrapWriteFormat;
  readonly discoverBootstrapAccount: boolean;
  /** Ascending. */
  readonly lwm2mVersions: readonly LwM2MVersion[];
  readonly bootstrapRead: boolean;
  readonly bootstrapAccount?: BootstrapAccountSpec;
  readonly servers: readonly ServerSpec[];
  readonly acl: readonly AclSpec[];
}

// ---------------------------------------------------------------------------------------------
// Errors

export interface ProfileIssue {
  /** Field path, e.g. `servers[1].security.mode`; `profile` for the document itself. */
  readonly path: string;
  readonly message: string;
}

export class ProfileError extends Error {
  override readonly name = 'ProfileError';
  constructor(readonly issues: readonly ProfileIssue[]) {
    super(
      issues.length === 1
        ? `invalid profile: ${issues[0]!.path}: ${issues[0]!.message}`
        : `invalid profile (${issues.length} problems):\n` + issues.map((i) => `  ${i.path}: ${i.message}`).join('\n'),
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Server resources: one table drives validation, defaults and the planner

export interface ServerResourceDef {
  readonly field: keyof ServerSpec & string;
  readonly rid: number;
  readonly type: 'integer' | 'unsigned' | 'boolean' | 'string';
  /** First Server object version with the resource. */
  readonly since: LwM2MVersion;
  readonly min?: number;
  readonly max?: number;
}

const INT32_MAX = 2147483647;
const UINT32_MAX = 4294967295;

/**
 * The optional Server resources a profile may set, besides 0 (SSID), 1 (lifetime), 6
 * (notification storing) and 7 (binding) which every instance carries. Ranges are what we accept
 * at import; 32-bit so that every client's integer type holds them.
 */
export const SERVER_RESOURCES: readonly ServerResourceDef[] = [
  { field: 'defaultMinPeriod', rid: 2, type: 'integer', since: '1.0', min: 0, max: INT32_MAX },
  { field: 'defaultMaxPeriod', rid: 3, type: 'integer', since: '1.0', min: 0, max: INT32_MAX },
  { field: 'disableTimeout', rid: 5, type: 'integer', since: '1.0', min: 0, max: INT32_MAX },
  { field: 'registrationPriorityOrder', rid: 13, type: 'unsigned', since: '1.1', min: 0, max: UINT32_MAX },
  { field: 'initialRegistrationDelayTimer', rid: 14, type: 'unsigned', since: '1.1', min: 0, max: UINT32_MAX },
  { field: 'registrationFailureBlock', rid: 15, type: 'boolean', since: '1.1' },
  { field: 'bootstrapOnRegistrationFailure', rid: 16, type: 'boolean', since: '1.1' },
  { field: 'communicationRetryCount', rid: 17, type: 'unsigned', since: '1.1', min: 0, max: UINT32_MAX },
  { field: 'communicationRetryTimer', rid: 18, type: 'unsigned', since: '1.1', min: 0, max: UINT32_MAX },
  { field: 'communicationSequenceDelayTimer', rid: 19, type: 'unsigned', since: '1.1', min: 0, max: UINT32_MAX },
  { field: 'communicationSequenceRetryCount', rid: 20, type: 'unsigned', since: '1.1', min: 0, max: UINT32_MAX },
  { field: 'trigger', rid: 21, type: 'boolean', since: '1.1' },
  { field: 'preferredTransport', rid: 22, type: 'string', since: '1.1' },
  { field: 'muteSend', rid: 23, type: 'boolean', since: '1.1' },
  { field: 'defaultNotificationMode', rid: 26, type: 'integer', since: '1.2', min: 0, max: 1 },
  { field: 'profileIdHashAlgorithm', rid: 27, type: 'unsigned', since: '1.2', min: 0, max: 255 },
];
// supportedServerVersions (rid 25, 1.2, multiple String) is handled separately.

// ---------------------------------------------------------------------------------------------
// Bindings (objects.md §3.1)

const BINDING_LETTERS = 'UTSNMHQ';
const BINDING_LETTERS_BY_VERSION: Readonly<Record<LwM2MVersion, string>> = { '1.0': 'USQ', '1.1': 'UTSN', '1.2': 'UTSNMH' };

/**
 * The binding to write for a client of `version`: 1.0 knows only U, UQ, S, SQ, US, UQS (Q =
 * queue mode); 1.1 removed Q (queue mode became a Register parameter) and added T and N; 1.2
 * added M and H. Letters the version does not know are dropped; undefined when nothing is left.
 */
export function bindingFor(binding: string, version: LwM2MVersion): string | undefined {
  const has = (c: string): boolean => binding.includes(c);
  if (version === '1.0') {
    const u = has('U');
    const s = has('S');
    const q = has('Q');
    if (!u && !s) return undefined;
    if (u && s) return q ? 'UQS' : 'US';
    return (u ? 'U' : 'S') + (q ? 'Q' : '');
  }
  let out = '';
  for (const c of BINDING_LETTERS_BY_VERSION[version]) if (has(c)) out += c;
  return out === '' ? undefined : out;
}

// ---------------------------------------------------------------------------------------------
// Endpoint patterns

/**
 * Glob match: `*` any run of characters (also empty), `?` exactly one character, `\x` the
 * literal x. Iterative with one backtrack point, so time is O(pattern × text) at worst and there
 * is no recursion.
 */
export function globMatch(pattern: string, text: string): boolean {
  const toks = compileGlob(pattern);
  let t = 0;
  let p = 0;
  let starP = -1;
  let starT = 0;
  while (t < text.length) {
    const tok = toks[p];
    if (tok !== undefined && tok !== STAR && (tok === ANY || tok === text[t])) {
      p++;
      t++;
    } else if (tok === STAR) {
      starP = p++;
      starT = t;
    } else if (starP >= 0) {
      p = starP + 1;
      t = ++starT;
    } else {
      return false;
    }
  }
  while (toks[p] === STAR) p++;
  return p === toks.length;
}

const STAR = Symbol('*');
const ANY = Symbol('?');
type GlobToken = string | typeof STAR | typeof ANY;

function compileGlob(pattern: string): GlobToken[] {
  const out: GlobToken[] = [];
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '\\' && i + 1 < pattern.length) out.push(pattern[++i]!);
    else if (c === '*') {
      if (out[out.length - 1] !== STAR) out.push(STAR);
    } else if (c === '?') out.push(ANY);
    else out.push(c);
  }
  return out;
}

/** Literal characters in a pattern: the more, the more specific. */
export function patternSpecificity(pattern: string): number {
  return compileGlob(pattern).filter((t) => typeof t === 'string').length;
}

/** The first pattern of the profile that matches the endpoint, or undefined. */
export function matchingPattern(profile: Profile, endpoint: string): string | undefined {
  return profile.match.find((p) => globMatch(p, endpoint));
}

/**
 * Zero-touch resolution for an endpoint that has no device record: the profile whose matching
 * pattern is most specific (most literal characters); ties go to the profile name that sorts
 * first, so the choice is deterministic. Undefined when no profile matches.
 */
export function selectProfileByMatch(
  profiles: Iterable<Profile>,
  endpoint: string,
): { readonly profile: Profile; readonly pattern: string } | undefined {
  let best: { profile: Profile; pattern: string; score: number } | undefined;
  for (const profile of profiles) {
    for (const pattern of profile.match) {
      if (!globMatch(pattern, endpoint)) continue;
      const score = patternSpecificity(pattern);
      if (!best || score > best.score || (score === best.score && profile.name < best.profile.name)) best = { profile, pattern, score };
    }
  }
  return best && { profile: best.profile, pattern: best.pattern };
}

/** The server that hands off to this lwbs's registration server, if the profile has one. */
export function handOffServer(profile: Profile): ServerSpec | undefined {
  return profile.servers.find((s) => s.handOff);
}

/** Whether an unknown endpoint matched by this profile may enroll with this bootstrap security. */
export function enrollmentAllowed(profile: Profile, security: SecurityMode): boolean {
  return profile.enroll.allowSecurity.includes(security);
}

/** Whether the profile accepts a client of this enabler version (`1.1`, `1.1.1`, `1.2`...). */
export function acceptsVersion(profile: Profile, version: string): boolean {
  const v = normaliseLwm2mVersion(version);
  return v !== undefined && profile.lwm2mVersions.includes(v);
}

/** `1.1.2` → `1.1`; undefined for anything that is not 1.0, 1.1 or 1.2. */
export function normaliseLwm2mVersion(version: string): LwM2MVersion | undefined {
  const m = /^\s*"?(\d+)(?:\.(\d+))?(?:\.\d+)*"?\s*$/.exec(version);
  if (!m) return undefined;
  const v = `${Number(m[1])}.${Number(m[2] ?? 0)}`;
  return (LWM2M_VERSIONS as readonly string[]).includes(v) ? (v as LwM2MVersion) : undefined;
}

// ---------------------------------------------------------------------------------------------
// Parsing

/** Parses profile text (JSON). Syntax errors become a ProfileError too. */
export function parseProfileText(text: string): Profile {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ProfileError([{ path: 'profile', message: `not valid JSON: ${(e as Error).message}` }]);
  }
  return parseProfile(json);
}

/** Validates a profile document and fills its defaults. Throws ProfileError listing every problem. */
export function parseProfile(json: unknown): Profile {
  const ctx = new Ctx();
  const profile = readProfile(ctx, json);
  if (ctx.issues.length > 0 || profile === undefined) {
    throw new ProfileError(ctx.issues.length > 0 ? ctx.issues : [{ path: 'profile', message: 'invalid' }]);
  }
  return profile;
}

class Ctx {
  readonly issues: ProfileIssue[] = [];
  error(path: string, message: string): undefined {
    this.issues.push({ path, message });
    return undefined;
  }
  get count(): number {
    return this.issues.length;
  }
}

type Obj = Record<string, unknown>;

const key = (path: string, k: string): string => (path === '' ? k : `${path}.${k}`);
const idx = (path: string, i: number): string => `${path}[${i}]`;

/** A short rendering of a (non-secret) value for messages. */
function show(v: unknown): string {
  if (v === undefined) return 'nothing';
  let s: string;
  try {
    s = JSON.stringify(v) ?? String(v);
  } catch {
    s = String(v);
  }
  return s.length > 60 ? s.slice(0, 57) + '...' : s;
}

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Reads an object and reports fields it does not know (typos are the usual cause). */
function readObj(ctx: Ctx, path: string, v: unknown, known: readonly string[]): Obj | undefined {
  if (!isObj(v)) return ctx.error(path || 'profile', `must be an object, got ${show(v)}`);
  for (const k of Object.keys(v)) {
    if (!known.includes(k)) {
      const near = known.find((n) => editDistance(n.toLowerCase(), k.toLowerCase()) <= 2);
      ctx.error(key(path, k), `unknown field${near ? ` (did you mean "${near}"?)` : ''}`);
    }
  }
  return v;
}

function readInt(ctx: Ctx, path: string, v: unknown, min: number, max: number): number | undefined {
  if (typeof v !== 'number' || !Number.isInteger(v)) return ctx.error(path, `must be an integer, got ${show(v)}`);
  if (v < min || v > max) return ctx.error(path, `must be in ${min}..${max}, got ${v}`);
  return v;
}

function readBool(ctx: Ctx, path: string, v: unknown): boolean | undefined {
  if (typeof v !== 'boolean') return ctx.error(path, `must be true or false, got ${show(v)}`);
  return v;
}

function readStr(ctx: Ctx, path: string, v: unknown, opts: { min?: number; maxBytes?: number } = {}): string | undefined {
  if (typeof v !== 'string') return ctx.error(path, `must be a string, got ${show(v)}`);
  const min = opts.min ?? 1;
  if (v.length < min) return ctx.error(path, min === 1 ? 'must not be empty' : `must have at least ${min} characters`);
  if (opts.maxBytes !== undefined && Buffer.byteLength(v, 'utf8') > opts.maxBytes) {
    return ctx.error(path, `must be at most ${opts.maxBytes} bytes (UTF-8)`);
  }
  return v;
}

function readArray(ctx: Ctx, path: string, v: unknown, max: number): unknown[] | undefined {
  if (!Array.isArray(v)) return ctx.error(path, `must be an array, got ${show(v)}`);
  if (v.length > max) return ctx.error(path, `must have at most ${max} entries, got ${v.length}`);
  return v;
}

const TOP_FIELDS = [
  'name',
  'description',
  'match',
  'enroll',
  'delete',
  'contentFormat',
  'discoverBootstrapAccount',
  'lwm2mVersions',
  'bootstrapRead',
  'bootstrapAccount',
  'servers',
  'acl',
] as const;

const MAX_SERVERS = 32;
const MAX_ACL = 1024;
const MAX_PATTERNS = 256;
const SLUG = /^[a-z0-9][a-z0-9_-]{0,63}$/;

function readProfile(ctx: Ctx, json: unknown): Profile | undefined {
  const o = readObj(ctx, '', json, TOP_FIELDS);
  if (!o) return undefined;

  let name: string | undefined;
  if (o.name === undefined) ctx.error('name', 'required');
  else if (typeof o.name !== 'string' || !SLUG.test(o.name)) {
    ctx.error('name', `must be a slug (a-z, 0-9, "-" and "_", starting with a letter or digit, at most 64 characters), got ${show(o.name)}`);
  } else name = o.name;

  const description = o.description === undefined ? undefined : readStr(ctx, 'description', o.description, { min: 0, maxBytes: 4096 });

  const match = readMatch(ctx, o.match);
  const enroll = readEnroll(ctx, o.enroll);
  const lwm2mVersions = readVersions(ctx, o.lwm2mVersions);
  const contentFormat = readContentFormat(ctx, o.contentFormat, lwm2mVersions);
  const bootstrapRead = o.bootstrapRead === undefined ? false : readBool(ctx, 'bootstrapRead', o.bootstrapRead);
  if (bootstrapRead === true && lwm2mVersions !== undefined && !lwm2mVersions.some((v) => v !== '1.0')) {
    ctx.error('bootstrapRead', 'Bootstrap-Read exists from LwM2M 1.1 on, but lwm2mVersions accepts only 1.0');
  }

  const bootstrapAccount = o.bootstrapAccount === undefined ? undefined : readBootstrapAccount(ctx, o.bootstrapAccount);
  const discoverBootstrapAccount =
    o.discoverBootstrapAccount === undefined ? o.bootstrapAccount !== undefined : readBool(ctx, 'discoverBootstrapAccount', o.discoverBootstrapAccount);

  const servers = readServers(ctx, o.servers, lwm2mVersions);
  const ssids = new Set((servers ?? []).map((s) => s.shortServerId));
  const acl = o.acl === undefined ? [] : readAcls(ctx, o.acl, ssids);
  const usesOscore = (servers ?? []).some((s) => s.oscore !== undefined);
  const del = o.delete === undefined ? defaultDeletes(acl !== undefined && acl.length > 0, usesOscore) : readDeletes(ctx, o.delete);

  if (ctx.count > 0) return undefined;
  return {
    name: name!,
    ...(description !== undefined && description !== '' ? { description } : {}),
    match: match!,
    enroll: enroll!,
    delete: del!,
    contentFormat: contentFormat!,
    discoverBootstrapAccount: discoverBootstrapAccount!,
    lwm2mVersions: lwm2mVersions!,
    bootstrapRead: bootstrapRead!,
    ...(bootstrapAccount ? { bootstrapAccount } : {}),
    servers: servers!,
    acl: acl!,
  };
}

function readMatch(ctx: Ctx, v: unknown): string[] | undefined {
  if (v === undefined) return [];
  const arr = readArray(ctx, 'match', v, MAX_PATTERNS);
  if (!arr) return undefined;
  const out: string[] = [];
  arr.forEach((p, i) => {
    const path = idx('match', i);
    const s = readStr(ctx, path, p, { maxBytes: 255 });
    if (s === undefined) return;
    if (/(^|[^\\])(\\\\)*\\$/.test(s)) {
      ctx.error(path, 'ends with a lone "\\" (escape a literal backslash as "\\\\")');
      return;
    }
    if (out.includes(s)) ctx.error(path, `duplicate pattern ${show(s)}`);
    else out.push(s);
  });
  return out;
}

function readEnroll(ctx: Ctx, v: unknown): Profile['enroll'] | undefined {
  if (v === undefined) return { allowSecurity: [...SECURITY_MODES] };
  const o = readObj(ctx, 'enroll', v, ['allowSecurity']);
  if (!o) return undefined;
  if (o.allowSecurity === undefined) return { allowSecurity: [...SECURITY_MODES] };
  const arr = readArray(ctx, 'enroll.allowSecurity', o.allowSecurity, 4);
  if (!arr) return undefined;
  const modes: SecurityMode[] = [];
  arr.forEach((m, i) => {
    const path = idx('enroll.allowSecurity', i);
    if (typeof m !== 'string' || !(SECURITY_MODES as readonly string[]).includes(m)) {
      ctx.error(path, `must be one of ${SECURITY_MODES.join(', ')}, got ${show(m)}`);
    } else if (modes.includes(m as SecurityMode)) ctx.error(path, `duplicate ${show(m)}`);
    else modes.push(m as SecurityMode);
  });
  return { allowSecurity: SECURITY_MODES.filter((m) => modes.includes(m)) };
}

function readVersions(ctx: Ctx, v: unknown): LwM2MVersion[] | undefined {
  if (v === undefined) return [...LWM2M_VERSIONS];
  const arr = readArray(ctx, 'lwm2mVersions', v, 8);
  if (!arr) return undefined;
  if (arr.length === 0) return ctx.error('lwm2mVersions', 'must list at least one version');
  const out = new Set<LwM2MVersion>();
  let ok = true;
  arr.forEach((x, i) => {
    // JSON numbers are tolerated: 1.1 → "1.1", 1 → "1.0".
    const s = typeof x === 'number' ? (Number.isInteger(x) ? `${x}.0` : String(x)) : x;
    if (typeof s !== 'string' || !(LWM2M_VERSIONS as readonly string[]).includes(s)) {
      ok = false;
      ctx.error(idx('lwm2mVersions', i), `must be one of ${LWM2M_VERSIONS.map((x) => `"${x}"`).join(', ')}, got ${show(x)}`);
    } else if (out.has(s as LwM2MVersion)) {
      ok = false;
      ctx.error(idx('lwm2mVersions', i), `duplicate ${show(x)}`);
    } else out.add(s as LwM2MVersion);
  });
  return ok ? LWM2M_VERSIONS.filter((x) => out.has(x)) : undefined;
}

function readContentFormat(ctx: Ctx, v: unknown, versions: readonly LwM2MVersion[] | undefined): Profile['contentFormat'] | undefined {
  if (v === undefined || v === 'auto') return 'auto';
  let cf: BootstrapWriteFormat | undefined;
  if (typeof v === 'string' && Object.prototype.hasOwnProperty.call(FORMAT_NAMES, v)) cf = FORMAT_NAMES[v];
  else if (typeof v === 'number' && isBootstrapWriteFormat(v)) cf = v;
  if (cf === undefined) {
    const names = ['auto', ...Object.keys(FORMAT_NAMES)].join(', ');
    return ctx.error('contentFormat', `must be one of ${names} or one of the numbers ${Object.values(FORMAT_NAMES).join(', ')}, got ${show(v)}`);
  }
  const bad = versions?.filter((x) => !FORMAT_VERSIONS[cf].includes(x)) ?? [];
  if (bad.length > 0) {
    return ctx.error(
      'contentFormat',
      `${show(v)} is not a Bootstrap-Write format of LwM2M ${bad.join(', ')} (only ${FORMAT_VERSIONS[cf].join(', ')}), but lwm2mVersions accepts ${bad.length > 1 ? 'them' : 'it'}; use "auto" or narrow lwm2mVersions`,
    );
  }
  return cf;
}

/** Default deletes: server accounts always; ACLs and OSCORE contexts when the profile writes them. */
function defaultDeletes(hasAcl: boolean, hasOscore: boolean): Path[] {
  const out: Path[] = [[0], [1]];
  if (hasAcl) out.push([2]);
  if (hasOscore) out.push([21]);
  return out;
}

function readDeletes(ctx: Ctx, v: unknown): Path[] | undefined {
  const arr = readArray(ctx, 'delete', v, 64);
  if (!arr) return undefined;
  const out: Path[] = [];
  let ok = true;
  arr.forEach((x, i) => {
    const path = idx('delete', i);
    if (typeof x !== 'string') {
      ok = false;
      ctx.error(path, `must be a path string like "/1" or "/5/0", got ${show(x)}`);
      return;
    }
    let p: Path;
    try {
      p = parsePath(x.trim());
    } catch (e) {
      ok = false;
      ctx.error(path, `${show(x)} is not a path: ${e instanceof CodecError ? e.message.replace(/^path: /, '') : String(e)}`);
      return;
    }
    const msg = deletePathProblem(p);
    if (msg) {
      ok = false;
      ctx.error(path, msg);
      return;
    }
    // Drop duplicates and paths an earlier delete already covers ("/" covers everything).
    if (!out.some((q) => q.length <= p.length && q.every((id, k) => p[k] === id))) out.push(p);
  });
  return ok ? out : undefined;
}

function deletePathProblem(p: Path): string | undefined {
  if (p.length > 2) return `Bootstrap-Delete targets "/", "/object" or "/object/instance", not ${formatPath(p)}`;
  if (p[0] === 0 && p.length === 2) {
    return `explicit Security instance deletes are refused: the bootstrap account's instance ID is not known in advance and deleting it locks the device out; use "/0" (the client keeps its bootstrap account)`;
  }
  if (p[0] === 21 && p.length === 2) {
    return `explicit OSCORE instance deletes are refused: one may belong to the bootstrap account; use "/21" (the client keeps that one)`;
  }
  if (p[0] === 3) return 'the Device object (/3) cannot be deleted';
  return undefined;
}

// --- URIs

const URI_RE = /^(coaps?(?:\+tcp)?):\/\/(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~%!$&'()*+,;=-]+)(?::([0-9]{1,5}))?(\/[^\s?#]*)?$/;

/** Why `uri` cannot be a server URI for this security mode, or undefined when it can. */
export function serverUriProblem(uri: string, mode: SecurityMode): string | undefined {
  if (Buffer.byteLength(uri, 'utf8') > 255) return 'must be at most 255 bytes';
  const m = URI_RE.exec(uri);
  if (!m) return `must be a coap:// or coaps:// URI with a host (and optional port), got ${show(uri)}`;
  if (m[3] !== undefined) {
    const port = Number(m[3]);
    if (port < 1 || port > 65535) return `port ${port} is not in 1..65535`;
  }
  const secure = m[1]!.startsWith('coaps');
  if (mode === 'nosec' && secure) return `mode nosec needs a coap:// URI (no DTLS), got ${show(uri)}`;
  if (mode !== 'nosec' && !secure) return `mode ${mode} needs a coaps:// URI (DTLS), got ${show(uri)}`;
  return undefined;
}

// --- Binary input

function base64Bytes(s: string): Uint8Array | undefined {
  const clean = s.replace(/\s/g, '');
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(clean) || clean.replace(/=+$/, '').length % 4 === 1) return undefined;
  return new Uint8Array(Buffer.from(clean.replace(/-/g, '+').replace(/_/g, '/'), 'base64'));
}

/** PEM blocks with one of the labels, or base64 DER; several PEM blocks are concatenated. */
function derInput(s: string, labels: readonly string[]): Uint8Array | string {
  if (s.includes('-----BEGIN')) {
    const blocks: Uint8Array[] = [];
    const re = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;
    for (let m = re.exec(s); m; m = re.exec(s)) {
      if (!labels.includes(m[1]!)) return `PEM block "${m[1]}" is not one of ${labels.map((l) => `"${l}"`).join(', ')}`;
      const der = base64Bytes(m[2]!);
      if (!der || der.length === 0) return 'a PEM block has no valid base64 body';
      blocks.push(der);
    }
    if (blocks.length === 0) return 'no complete PEM block';
    return Buffer.concat(blocks);
  }
  const der = base64Bytes(s);
  if (!der || der.length === 0) return 'must be PEM or base64 DER';
  return der;
}

/** The masked placeholder `profileToJson` writes; re-importing it is a mistake worth naming. */
function maskedSecret(ctx: Ctx, path: string, v: unknown): boolean {
  if (v === '[secret]') {
    ctx.error(path, 'holds the "[secret]" placeholder of a masked export; export with secrets shown to re-import');
    return true;
  }
  return false;
}

// --- Security

const SECURITY_FIELDS = [
  'mode',
  'generate',
  'identityTemplate',
  'identity',
  'identityHex',
  'key',
  'publicKey',
  'privateKey',
  'serverPublicKey',
  'certificate',
  'serverCertificate',
  'ciphersuites',
  'sni',
  'matchingType',
  'certificateUsage',
] as const;

const MODE_FIELDS: Readonly<Record<SecurityMode, readonly string[]>> = {
  nosec: [],
  psk: ['generate', 'identityTemplate', 'identity', 'identityHex', 'key'],
  rpk: ['generate', 'publicKey', 'privateKey', 'serverPublicKey', 'matchingType'],
  x509: ['certificate', 'privateKey', 'serverCertificate', 'matchingType', 'certificateUsage'],
};
const COMMON_FIELDS = ['mode', 'ciphersuites', 'sni'];

interface SecurityContext {
  /** Hand-off server: generated credentials, URI and server key from the config. */
  readonly handOff: boolean;
  /** The bootstrap account: `{ssid}` cannot be used in identity templates. */
  readonly bootstrap: boolean;
}

function readSecurity(ctx: Ctx, path: string, v: unknown, sc: SecurityContext): SecuritySpec | undefined {
  const o = readObj(ctx, path, v, SECURITY_FIELDS);
  if (!o) return undefined;
  const before = ctx.count;
  const mode = o.mode;
  if (mode === undefined) return ctx.error(key(path, 'mode'), `required: one of ${SECURITY_MODES.join(', ')}`);
  if (typeof mode !== 'string' || !(SECURITY_MODES as readonly string[]).includes(mode)) {
    return ctx.error(key(path, 'mode'), `must be one of ${SECURITY_MODES.join(', ')}, got ${show(mode)}`);
  }
  const m = mode as SecurityMode;
  for (const k of Object.keys(o)) {
    if ((SECURITY_FIELDS as readonly string[]).includes(k) && !COMMON_FIELDS.includes(k) && !MODE_FIELDS[m].includes(k)) {
      ctx.error(key(path, k), `not used with mode ${m}`);
    }
  }
  const opts = readSecurityOptions(ctx, path, o);
  let spec: SecuritySpec | undefined;
  switch (m) {
    case 'nosec':
      spec = { mode: 'nosec', ...opts };
      break;
    case 'psk':
      spec = readPsk(ctx, path, o, sc, opts);
      break;
    case 'rpk':
      spec = readRpk(ctx, path, o, sc, opts);
      break;
    case 'x509':
      if (sc.handOff) {
        return ctx.error(key(path, 'mode'), 'x509 is not available for hand-off servers (per-device certificates need a CA); give a uri and a static certificate instead');
      }
      spec = readX509(ctx, path, o, opts);
      break;
  }
  return ctx.count === before ? spec : undefined;
}

function readSecurityOptions(ctx: Ctx, path: string, o: Obj): SecurityOptions {
  const out: { ciphersuites?: number[]; sni?: string; matchingType?: number; certificateUsage?: number } = {};
  if (o.ciphersuites !== undefined) {
    const arr = readArray(ctx, key(path, 'ciphersuites'), o.ciphersuites, 64);
    if (arr) {
      if (arr.length === 0) ctx.error(key(path, 'ciphersuites'), 'must not be empty (leave it out to let the client choose)');
      const list: number[] = [];
      arr.forEach((c, i) => {
        const n = readInt(ctx, idx(key(path, 'ciphersuites'), i), c, 0, 65535);
        if (n === undefined) return;
        if (list.includes(n)) ctx.error(idx(key(path, 'ciphersuites'), i), `duplicate cipher suite ${n}`);
        else list.push(n);
      });
      out.ciphersuites = list;
    }
  }
  if (o.sni !== undefined) {
    const s = readStr(ctx, key(path, 'sni'), o.sni, { maxBytes: 255 });
    if (s !== undefined) out.sni = s;
  }
  if (o.matchingType !== undefined) {
    const n = readInt(ctx, key(path, 'matchingType'), o.matchingType, 0, 3);
    if (n !== undefined) out.matchingType = n;
  }
  if (o.certificateUsage !== undefined) {
    const n = readInt(ctx, key(path, 'certificateUsage'), o.certificateUsage, 0, 3);
    if (n !== undefined) out.certificateUsage = n;
  }
  return out;
}

function readGenerate(ctx: Ctx, path: string, o: Obj, sc: SecurityContext, staticFields: readonly string[]): boolean | undefined {
  const given = staticFields.filter((f) => o[f] !== undefined);
  if (o.generate !== undefined) {
    const g = readBool(ctx, key(path, 'generate'), o.generate);
    if (g === undefined) return undefined;
    if (sc.handOff && !g) return ctx.error(key(path, 'generate'), 'hand-off servers always get per-device generated credentials');
    if (g && given.length > 0) {
      for (const f of given) ctx.error(key(path, f), 'not used with generate: true');
      return undefined;
    }
    return g;
  }
  if (sc.handOff) {
    for (const f of given) ctx.error(key(path, f), 'hand-off servers get per-device generated credentials; remove it');
    return given.length > 0 ? undefined : true;
  }
  return given.length > 0 ? false : undefined;
}

function readPsk(ctx: Ctx, path: string, o: Obj, sc: SecurityContext, opts: SecurityOptions): SecuritySpec | undefined {
  const gen = readGenerate(ctx, path, o, sc, ['identity', 'identityHex', 'key']);
  if (gen === undefined) {
    if (o.generate === undefined && !sc.handOff && o.identity === undefined && o.identityHex === undefined && o.key === undefined) {
      ctx.error(path, 'psk needs either generate: true or a static identity (or identityHex) and key');
    }
    return undefined;
  }
  if (gen) {
    let template = '{endpoint}';
    if (o.identityTemplate !== undefined) {
      const t = readStr(ctx, key(path, 'identityTemplate'), o.identityTemplate, { maxBytes: 255 });
      if (t === undefined) return undefined;
      try {
        const parts = parseIdentityTemplate(t);
        if (sc.bootstrap && parts.some((p) => p.kind === 'ssid')) {
          return ctx.error(key(path, 'identityTemplate'), 'the bootstrap account has no Short Server ID; {ssid} cannot be used here');
        }
      } catch (e) {
        return ctx.error(key(path, 'identityTemplate'), (e as CredentialError).message);
      }
      template = t;
    }
    return { mode: 'psk', generate: true, identityTemplate: template, ...opts };
  }
  if (o.identityTemplate !== undefined) ctx.error(key(path, 'identityTemplate'), 'only used with generate: true');
  let identity: Uint8Array | undefined;
  if (o.identity !== undefined && o.identityHex !== undefined) ctx.error(key(path, 'identityHex'), 'give identity or identityHex, not both');
  else if (o.identity !== undefined) {
    const s = readStr(ctx, key(path, 'identity'), o.identity, { maxBytes: MAX_PSK_IDENTITY });
    if (s !== undefined) identity = new TextEncoder().encode(s);
  } else if (o.identityHex !== undefined) {
    const b = typeof o.identityHex === 'string' ? hexBytes(o.identityHex) : undefined;
    if (!b || b.length === 0 || b.length > MAX_PSK_IDENTITY) ctx.error(key(path, 'identityHex'), `must be 1..${MAX_PSK_IDENTITY} bytes of hex`);
    else identity = b;
  } else ctx.error(key(path, 'identity'), 'required for a static psk (or identityHex, or generate: true)');
  let k: Uint8Array | undefined;
  if (o.key === undefined) ctx.error(key(path, 'key'), 'required for a static psk: 1..64 bytes of hex');
  else if (!maskedSecret(ctx, key(path, 'key'), o.key)) {
    // The value is secret: never echo it.
    const b = typeof o.key === 'string' ? hexBytes(o.key) : undefined;
    if (!b || b.length === 0 || b.length > MAX_PSK_KEY) ctx.error(key(path, 'key'), `must be 1..${MAX_PSK_KEY} bytes of hex`);
    else k = b;
  }
  if (identity === undefined || k === undefined) return undefined;
  return { mode: 'psk', generate: false, identity, key: new Secret(k), ...opts };
}

function readP256Public(ctx: Ctx, path: string, v: unknown): Uint8Array | undefined {
  if (typeof v !== 'string') return ctx.error(path, `must be a PEM or base64 DER public key, got ${show(v)}`);
  const der = derInput(v, ['PUBLIC KEY']);
  if (typeof der === 'string') return ctx.error(path, der);
  try {
    return encodeP256Spki(parseP256PublicKey(der));
  } catch (e) {
    return ctx.error(path, `${(e as Error).message} (raw public keys must be P-256)`);
  }
}

function readRpk(ctx: Ctx, path: string, o: Obj, sc: SecurityContext, opts: SecurityOptions): SecuritySpec | undefined {
  if (sc.handOff && o.serverPublicKey !== undefined) {
    ctx.error(key(path, 'serverPublicKey'), "hand-off servers use the registration server's own key from the config; remove it");
  }
  const gen = readGenerate(ctx, path, o, sc, ['publicKey', 'privateKey']);
  if (gen === undefined) {
    if (o.generate === undefined && !sc.handOff && o.publicKey === undefined && o.privateKey === undefined) {
      ctx.error(path, 'rpk needs either generate: true or a static publicKey and privateKey');
    }
    return undefined;
  }
  let serverPublicKey: Uint8Array | undefined;
  if (!sc.handOff) {
    if (o.serverPublicKey === undefined) ctx.error(key(path, 'serverPublicKey'), "required: the server's public key (PEM or base64 DER)");
    else serverPublicKey = readP256Public(ctx, key(path, 'serverPublicKey'), o.serverPublicKey);
  }
  if (gen) {
    if (sc.handOff) return { mode: 'rpk', generate: true, ...opts };
    return serverPublicKey ? { mode: 'rpk', generate: true, serverPublicKey, ...opts } : undefined;
  }
  let publicKey: Uint8Array | undefined;
  if (o.publicKey === undefined) ctx.error(key(path, 'publicKey'), 'required for a static rpk (or generate: true)');
  else publicKey = readP256Public(ctx, key(path, 'publicKey'), o.publicKey);
  let privateKey: Secret | undefined;
  let privatePoint: Uint8Array | undefined;
  if (o.privateKey === undefined) ctx.error(key(path, 'privateKey'), 'required for a static rpk: PKCS#8 or SEC1, PEM or base64 DER');
  else if (!maskedSecret(ctx, key(path, 'privateKey'), o.privateKey)) {
    if (typeof o.privateKey !== 'string') ctx.error(key(path, 'privateKey'), 'must be a PEM or base64 DER private key');
    else {
      const der = derInput(o.privateKey, ['PRIVATE KEY', 'EC PRIVATE KEY']);
      if (typeof der === 'string') ctx.error(key(path, 'privateKey'), der);
      else {
        try {
          const k = parseP256PrivateKey(der);
          privateKey = k.pkcs8;
          privatePoint = k.publicPoint;
        } catch (e) {
          ctx.error(key(path, 'privateKey'), `${(e as Error).message} (raw public keys must be P-256)`);
        }
      }
    }
  }
  if (publicKey && privatePoint && !bytesEqual(publicKey.subarray(26), privatePoint)) {
    ctx.error(key(path, 'publicKey'), 'does not belong to privateKey');
    return undefined;
  }
  if (!publicKey || !privateKey || !serverPublicKey) return undefined;
  return { mode: 'rpk', generate: false, publicKey, privateKey, serverPublicKey, ...opts };
}

function readCertificates(ctx: Ctx, path: string, v: unknown): { der: Uint8Array; leaf: X509Certificate } | undefined {
  if (typeof v !== 'string') return ctx.error(path, `must be a PEM or base64 DER certificate, got ${show(v)}`);
  const der = derInput(v, ['CERTIFICATE']);
  if (typeof der === 'string') return ctx.error(path, der);
  try {
    const certs = splitDer(der, 'certificate').map((c) => new X509Certificate(c));
    return { der, leaf: certs[0]! };
  } catch (e) {
    return ctx.error(path, `not a valid X.509 certificate: ${(e as Error).message}`);
  }
}

function readX509(ctx: Ctx, path: string, o: Obj, opts: SecurityOptions): SecuritySpec | undefined {
  if (o.generate !== undefined) return ctx.error(key(path, 'generate'), 'x509 credentials cannot be generated; give certificate and privateKey');
  const cert = o.certificate === undefined ? ctx.error(key(path, 'certificate'), 'required: the client certificate (PEM or base64 DER)') : readCertificates(ctx, key(path, 'certificate'), o.certificate);
  const server =
    o.serverCertificate === undefined
      ? ctx.error(key(path, 'serverCertificate'), 'required: the server certificate or trust anchor (PEM or base64 DER)')
      : readCertificates(ctx, key(path, 'serverCertificate'), o.serverCertificate);
  let privateKey: Secret | undefined;
  if (o.privateKey === undefined) ctx.error(key(path, 'privateKey'), 'required: the client private key (PKCS#8 or SEC1, PEM or base64 DER)');
  else if (!maskedSecret(ctx, key(path, 'privateKey'), o.privateKey)) {
    const der = typeof o.privateKey === 'string' ? derInput(o.privateKey, ['PRIVATE KEY', 'EC PRIVATE KEY']) : 'must be a PEM or base64 DER private key';
    if (typeof der === 'string') ctx.error(key(path, 'privateKey'), der);
    else {
      const keyObj = (() => {
        for (const type of ['pkcs8', 'sec1'] as const) {
          try {
            return createPrivateKey({ key: Buffer.from(der), format: 'der', type });
          } catch {
            // try the next layout
          }
        }
        return undefined;
      })();
      if (!keyObj) ctx.error(key(path, 'privateKey'), 'not a PKCS#8 or SEC1 private key');
      else {
        privateKey = new Secret(new Uint8Array(keyObj.export({ format: 'der', type: 'pkcs8' })));
        if (cert && !cert.leaf.checkPrivateKey(keyObj)) ctx.error(key(path, 'privateKey'), 'does not belong to the (first) certificate');
      }
    }
  }
  if (!cert || !server || !privateKey) return undefined;
  return { mode: 'x509', certificate: cert.der, privateKey, serverCertificate: server.der, ...opts };
}

// --- Bootstrap account

function readBootstrapAccount(ctx: Ctx, v: unknown): BootstrapAccountSpec | undefined {
  const path = 'bootstrapAccount';
  const o = readObj(ctx, path, v, ['uri', 'security', 'clientHoldOffTime', 'accountTimeout']);
  if (!o) return undefined;
  const before = ctx.count;
  const security = o.security === undefined ? ctx.error(key(path, 'security'), 'required') : readSecurity(ctx, key(path, 'security'), o.security, { handOff: false, bootstrap: true });
  let uri: string | undefined;
  if (o.uri === undefined) ctx.error(key(path, 'uri'), 'required: the bootstrap server URI the device will use');
  else {
    uri = readStr(ctx, key(path, 'uri'), o.uri);
    if (uri !== undefined && security) {
      const p = serverUriProblem(uri, security.mode);
      if (p) ctx.error(key(path, 'uri'), p);
    }
  }
  const hold = o.clientHoldOffTime === undefined ? undefined : readInt(ctx, key(path, 'clientHoldOffTime'), o.clientHoldOffTime, 0, INT32_MAX);
  const timeout = o.accountTimeout === undefined ? undefined : readInt(ctx, key(path, 'accountTimeout'), o.accountTimeout, 0, INT32_MAX);
  if (ctx.count > before || !security || uri === undefined) return undefined;
  return {
    uri,
    security,
    ...(hold !== undefined ? { clientHoldOffTime: hold } : {}),
    ...(timeout !== undefined ? { accountTimeout: timeout } : {}),
  };
}

// --- Servers

const SERVER_FIELDS = [
  'shortServerId',
  'handOff',
  'uri',
  'lifetime',
  'binding',
  'notificationStoring',
  ...SERVER_RESOURCES.map((r) => r.field),
  'supportedServerVersions',
  'security',
  'oscore',
] as const;

function readServers(ctx: Ctx, v: unknown, versions: readonly LwM2MVersion[] | undefined): ServerSpec[] | undefined {
  if (v === undefined) return ctx.error('servers', 'required: at least one server');
  const arr = readArray(ctx, 'servers', v, MAX_SERVERS);
  if (!arr) return undefined;
  if (arr.length === 0) return ctx.error('servers', 'must list at least one server');
  const out: ServerSpec[] = [];
  const seen = new Map<number, number>();
  let handOffAt: number | undefined;
  let ok = true;
  arr.forEach((s, i) => {
    const path = idx('servers', i);
    const spec = readServer(ctx, path, s, versions);
    if (!spec) {
      ok = false;
      return;
    }
    const prev = seen.get(spec.shortServerId);
    if (prev !== undefined) {
      ok = false;
      ctx.error(key(path, 'shortServerId'), `${spec.shortServerId} is already used by servers[${prev}]; Short Server IDs must be unique`);
    } else seen.set(spec.shortServerId, i);
    if (spec.handOff) {
      if (handOffAt !== undefined) {
        ok = false;
        ctx.error(key(path, 'handOff'), `servers[${handOffAt}] already hands off to this lwbs; only one server may`);
      } else handOffAt = i;
    }
    out.push(spec);
  });
  return ok ? out : undefined;
}

function readServer(ctx: Ctx, path: string, v: unknown, versions: readonly LwM2MVersion[] | undefined): ServerSpec | undefined {
  const o = readObj(ctx, path, v, SERVER_FIELDS);
  if (!o) return undefined;
  const before = ctx.count;
  const ssid = o.shortServerId === undefined ? ctx.error(key(path, 'shortServerId'), 'required: 1..65534') : readInt(ctx, key(path, 'shortServerId'), o.shortServerId, 1, 65534);
  const handOff = o.handOff === undefined ? false : readBool(ctx, key(path, 'handOff'), o.handOff);
  const security =
    o.security === undefined
      ? ctx.error(key(path, 'security'), 'required: every server needs a Security instance, e.g. { "mode": "nosec" }')
      : handOff === undefined
        ? undefined
        : readSecurity(ctx, key(path, 'security'), o.security, { handOff, bootstrap: false });

  let uri: string | undefined;
  if (handOff === true && o.uri !== undefined) ctx.error(key(path, 'uri'), 'hand-off servers take their URI from the config; remove uri or set handOff: false');
  else if (handOff === false) {
    if (o.uri === undefined) ctx.error(key(path, 'uri'), 'required unless handOff: true');
    else {
      uri = readStr(ctx, key(path, 'uri'), o.uri);
      if (uri !== undefined && security) {
        const p = serverUriProblem(uri, security.mode);
        if (p) ctx.error(key(path, 'uri'), p);
      }
    }
  }

  const lifetime = o.lifetime === undefined ? 86400 : readInt(ctx, key(path, 'lifetime'), o.lifetime, 1, INT32_MAX);
  const binding = readBinding(ctx, key(path, 'binding'), o.binding, versions);
  const notificationStoring = o.notificationStoring === undefined ? true : readBool(ctx, key(path, 'notificationStoring'), o.notificationStoring);

  const extra: Record<string, number | boolean | string | readonly string[]> = {};
  for (const def of SERVER_RESOURCES) {
    const raw = o[def.field];
    if (raw === undefined) continue;
    const p = key(path, def.field);
    let val: number | boolean | string | undefined;
    if (def.field === 'defaultNotificationMode' && typeof raw === 'string') {
      val = raw === 'non' ? 0 : raw === 'con' ? 1 : ctx.error(p, `must be "non", "con", 0 or 1, got ${show(raw)}`);
    } else if (def.field === 'preferredTransport') {
      if (typeof raw !== 'string' || raw.length !== 1 || !'UTSNMH'.includes(raw)) val = ctx.error(p, `must be one binding letter: U, T, S, N, M or H, got ${show(raw)}`);
      else val = raw;
    } else if (def.type === 'boolean') val = readBool(ctx, p, raw);
    else if (def.type === 'string') val = readStr(ctx, p, raw);
    else val = readInt(ctx, p, raw, def.min!, def.max!);
    if (val !== undefined) extra[def.field] = val;
  }
  if (o.supportedServerVersions !== undefined) {
    const p = key(path, 'supportedServerVersions');
    const arr = readArray(ctx, p, o.supportedServerVersions, 16);
    if (arr) {
      const list: string[] = [];
      arr.forEach((x, i) => {
        if (typeof x !== 'string' || !/^\d+\.\d+(\.\d+)?$/.test(x)) ctx.error(idx(p, i), `must be a version like "1.2" or "1.1.1", got ${show(x)}`);
        else list.push(x);
      });
      if (list.length === 0 && arr.length === 0) ctx.error(p, 'must not be empty');
      extra.supportedServerVersions = list;
    }
  }
  const pmin = extra.defaultMinPeriod as number | undefined;
  const pmax = extra.defaultMaxPeriod as number | undefined;
  if (pmin !== undefined && pmax !== undefined && pmax > 0 && pmin > pmax) {
    ctx.error(key(path, 'defaultMaxPeriod'), `must not be below defaultMinPeriod (${pmin})`);
  }

  let oscore: OscoreSpec | undefined;
  if (o.oscore !== undefined) {
    oscore = readOscore(ctx, key(path, 'oscore'), o.oscore);
    if (versions?.includes('1.0')) {
      ctx.error(key(path, 'oscore'), 'OSCORE needs LwM2M 1.1 or later, but lwm2mVersions accepts 1.0; set lwm2mVersions to ["1.1", "1.2"]');
    }
  }

  if (ctx.count > before || ssid === undefined || handOff === undefined || !security || lifetime === undefined || binding === undefined || notificationStoring === undefined) {
    return undefined;
  }
  return {
    shortServerId: ssid,
    handOff,
    ...(uri !== undefined ? { uri } : {}),
    lifetime,
    binding,
    notificationStoring,
    ...extra,
    security,
    ...(oscore ? { oscore } : {}),
  } as ServerSpec;
}

function readBinding(ctx: Ctx, path: string, v: unknown, versions: readonly LwM2MVersion[] | undefined): string | undefined {
  if (v === undefined) return 'U';
  if (typeof v !== 'string' || v.length === 0) return ctx.error(path, `must be binding letters such as "U" or "UQ", got ${show(v)}`);
  for (const c of v) {
    if (!BINDING_LETTERS.includes(c)) return ctx.error(path, `"${c}" is not a binding letter (U, T, S, N, M, H, Q)`);
  }
  if (new Set(v).size !== v.length) return ctx.error(path, `repeats a letter: ${show(v)}`);
  for (const ver of versions ?? []) {
    if (bindingFor(v, ver) === undefined) {
      return ctx.error(path, `${show(v)} leaves nothing a LwM2M ${ver} client understands (${ver} knows ${BINDING_LETTERS_BY_VERSION[ver].split('').join(', ')}); add U or narrow lwm2mVersions`);
    }
  }
  return v;
}

// --- OSCORE

const OSCORE_FIELDS = ['masterSecret', 'senderId', 'recipientId', 'aeadAlgorithm', 'hmacAlgorithm', 'masterSalt', 'idContext'] as const;

/** Hex, or `{ "text": "..." }` for the UTF-8 bytes of a text. */
function readBytesField(ctx: Ctx, path: string, v: unknown, secret: boolean, maxLen: number, minLen = 0): Uint8Array | undefined {
  if (secret && maskedSecret(ctx, path, v)) return undefined;
  let b: Uint8Array | undefined;
  if (typeof v === 'string') b = hexBytes(v);
  else if (isObj(v) && Object.keys(v).length === 1 && typeof v.text === 'string') b = new TextEncoder().encode(v.text);
  const what = `${minLen}..${maxLen} bytes as hex, or { "text": "..." }`;
  if (!b) return ctx.error(path, secret ? `must be ${what}` : `must be ${what}, got ${show(v)}`);
  if (b.length < minLen || b.length > maxLen) return ctx.error(path, `must be ${what}, got ${b.length} bytes`);
  return b;
}

function readOscore(ctx: Ctx, path: string, v: unknown): OscoreSpec | undefined {
  const o = readObj(ctx, path, v, OSCORE_FIELDS);
  if (!o) return undefined;
  const before = ctx.count;
  const req = (f: string): undefined => ctx.error(key(path, f), 'required');
  const master = o.masterSecret === undefined ? req('masterSecret') : readBytesField(ctx, key(path, 'masterSecret'), o.masterSecret, true, 256, 1);
  const sender = o.senderId === undefined ? req('senderId') : readBytesField(ctx, key(path, 'senderId'), o.senderId, false, 32);
  const recipient = o.recipientId === undefined ? req('recipientId') : readBytesField(ctx, key(path, 'recipientId'), o.recipientId, false, 32);
  if (sender && recipient && bytesEqual(sender, recipient)) ctx.error(key(path, 'recipientId'), 'must differ from senderId');
  const aead = o.aeadAlgorithm === undefined ? undefined : readInt(ctx, key(path, 'aeadAlgorithm'), o.aeadAlgorithm, -65536, 65535);
  const hmac = o.hmacAlgorithm === undefined ? undefined : readInt(ctx, key(path, 'hmacAlgorithm'), o.hmacAlgorithm, -65536, 65535);
  const salt = o.masterSalt === undefined ? undefined : readBytesField(ctx, key(path, 'masterSalt'), o.masterSalt, false, 256);
  const idContext = o.idContext === undefined ? undefined : readBytesField(ctx, key(path, 'idContext'), o.idContext, false, 256);
  if (ctx.count > before || !master || !sender || !recipient) return undefined;
  return {
    masterSecret: new Secret(master),
    senderId: sender,
    recipientId: recipient,
    ...(aead !== undefined ? { aeadAlgorithm: aead } : {}),
    ...(hmac !== undefined ? { hmacAlgorithm: hmac } : {}),
    ...(salt !== undefined ? { masterSalt: salt } : {}),
    ...(idContext !== undefined ? { idContext } : {}),
  };
}

// --- ACL

const RIGHT_BITS: Readonly<Record<string, number>> = { R: 1, W: 2, E: 4, D: 8, C: 16 };

/** `"RWE"` → 7; `""` → 0. Undefined when a letter is unknown or repeated. */
export function parseRights(letters: string): number | undefined {
  let mask = 0;
  for (const c of letters.toUpperCase()) {
    const bit = RIGHT_BITS[c];
    if (bit === undefined || mask & bit) return undefined;
    mask |= bit;
  }
  return mask;
}

/** 7 → `"RWE"`. */
export function formatRights(mask: number): string {
  return Object.entries(RIGHT_BITS)
    .filter(([, b]) => mask & b)
    .map(([c]) => c)
    .join('');
}

function readAcls(ctx: Ctx, v: unknown, ssids: ReadonlySet<number>): AclSpec[] | undefined {
  const arr = readArray(ctx, 'acl', v, MAX_ACL);
  if (!arr) return undefined;
  const out: AclSpec[] = [];
  const seen = new Map<string, number>();
  let ok = true;
  arr.forEach((a, i) => {
    const spec = readAcl(ctx, idx('acl', i), a, ssids);
    if (!spec) {
      ok = false;
      return;
    }
    const k = `${spec.objectId}/${spec.instanceId}`;
    const prev = seen.get(k);
    if (prev !== undefined) {
      ok = false;
      ctx.error(idx('acl', i), `acl[${prev}] already covers object ${spec.objectId} instance ${spec.instanceId}; merge them`);
    } else seen.set(k, i);
    out.push(spec);
  });
  return ok ? out : undefined;
}

function readAcl(ctx: Ctx, path: string, v: unknown, ssids: ReadonlySet<number>): AclSpec | undefined {
  const o = readObj(ctx, path, v, ['objectId', 'instanceId', 'rights', 'owner']);
  if (!o) return undefined;
  const before = ctx.count;
  const objectId = o.objectId === undefined ? ctx.error(key(path, 'objectId'), 'required: 1..65534') : readInt(ctx, key(path, 'objectId'), o.objectId, 1, 65534);
  const instanceId =
    o.instanceId === undefined ? ctx.error(key(path, 'instanceId'), 'required: 0..65534, or 65535 for the object-level ACL') : readInt(ctx, key(path, 'instanceId'), o.instanceId, 0, 65535);
  const rights = new Map<number, number>();
  if (o.rights !== undefined) {
    const rp = key(path, 'rights');
    if (!isObj(o.rights)) ctx.error(rp, `must be an object of Short Server ID → rights, e.g. { "1": "RWE", "default": "R" }, got ${show(o.rights)}`);
    else {
      for (const [k, r] of Object.entries(o.rights)) {
        const p = key(rp, k);
        const ssid = k === 'default' ? 0 : /^(0|[1-9][0-9]{0,4})$/.test(k) ? Number(k) : undefined;
        if (ssid === undefined || ssid > 65534) {
          ctx.error(p, 'keys must be a Short Server ID (1..65534), or "default" / "0" for the default rights');
          continue;
        }
        if (ssid !== 0 && !ssids.has(ssid)) {
          ctx.error(p, `no server with shortServerId ${ssid} in this profile`);
          continue;
        }
        if (rights.has(ssid)) {
          ctx.error(p, `rights for ${ssid === 0 ? 'default' : `server ${ssid}`} given twice`);
          continue;
        }
        let mask: number | undefined;
        if (typeof r === 'string') mask = parseRights(r);
        else if (typeof r === 'number' && Number.isInteger(r) && r >= 0 && r <= 31) mask = r;
        if (mask === undefined) {
          ctx.error(p, `must be letters from "RWEDC" (each once) or a bitmask 0..31, got ${show(r)}`);
          continue;
        }
        if (mask & RIGHT_BITS.C! && instanceId !== undefined && instanceId !== ACL_OBJECT_LEVEL) {
          ctx.error(p, 'C (Create) applies only to the object-level ACL (instanceId 65535)');
          continue;
        }
        rights.set(ssid, mask);
      }
    }
  }
  let owner = ACL_OWNER_BOOTSTRAP;
  if (o.owner !== undefined) {
    const p = key(path, 'owner');
    if (o.owner === 'bootstrap') owner = ACL_OWNER_BOOTSTRAP;
    else {
      const n = readInt(ctx, p, o.owner, 1, 65535);
      if (n !== undefined && n !== ACL_OWNER_BOOTSTRAP && !ssids.has(n)) ctx.error(p, `no server with shortServerId ${n} in this profile (use 65535 or "bootstrap" for bootstrap-only)`);
      else if (n !== undefined) owner = n;
    }
  }
  if (ctx.count > before || objectId === undefined || instanceId === undefined) return undefined;
  return { objectId, instanceId, rights: new Map([...rights].sort((a, b) => a[0] - b[0])), owner };
}

// ---------------------------------------------------------------------------------------------
// Warnings

/** Legal but probably unintended choices, one line each, for `profile import/validate` to show. */
export function profileWarnings(p: Profile): string[] {
  const w: string[] = [];
  const deletes = (oid: number): boolean => p.delete.some((d) => d.length === 0 || (d.length === 1 && d[0] === oid));
  if (p.match.some((m) => compileGlob(m).every((t) => t === STAR))) w.push('match: a pattern matches every endpoint');
  const carriesSecrets = p.servers.some((s) => s.security.mode !== 'nosec' || s.oscore) || (p.bootstrapAccount?.security.mode ?? 'nosec') !== 'nosec';
  if (p.match.length > 0 && p.enroll.allowSecurity.includes('nosec') && carriesSecrets) {
    w.push('enroll.allowSecurity: unknown endpoints may enroll over plain CoAP (nosec) and then receive keys in clear text');
  }
  if (!deletes(0)) w.push('delete: neither "/" nor "/0": Security instances already on the device stay, and writes may replace some of them');
  if (!deletes(1)) w.push('delete: neither "/" nor "/1": Server instances already on the device stay');
  if (p.acl.length > 0 && !deletes(2)) w.push('delete: neither "/" nor "/2": old ACL instances may conflict with the new ones');
  if (p.bootstrapAccount && !p.discoverBootstrapAccount) {
    w.push('bootstrapAccount without discoverBootstrapAccount: it is written to /0/0, which creates a second bootstrap account if the device keeps its own elsewhere');
  }
  if (p.servers.some((s) => s.oscore) && !p.discoverBootstrapAccount) {
    w.push("oscore without discoverBootstrapAccount: /21 instance IDs are allocated from 0 and may overwrite the bootstrap account's own OSCORE context");
  }
  if (p.servers.length > 1 && p.acl.length === 0) {
    w.push('several servers and no acl: clients with access control give servers no rights on instances they did not create');
  }
  const versionKnowable = p.discoverBootstrapAccount || !p.lwm2mVersions.includes('1.0');
  p.servers.forEach((s, i) => {
    const at = `servers[${i}]`;
    if (!versionKnowable) {
      const newer: string[] = SERVER_RESOURCES.filter((d) => d.since !== '1.0' && s[d.field] !== undefined).map((d) => d.field);
      const sec = s.security;
      if (sec.ciphersuites || sec.sni !== undefined || sec.matchingType !== undefined || sec.certificateUsage !== undefined) newer.push('security options');
      if (newer.length > 0) {
        w.push(`${at}: ${newer.join(', ')}: written only to clients known to be LwM2M 1.1+ (they sent pct); enable discoverBootstrapAccount to learn every client's version`);
      }
    }
    if (s.binding.includes('Q') && p.lwm2mVersions.some((v) => v !== '1.0')) w.push(`${at}.binding: Q is dropped for LwM2M 1.1+ clients (queue mode is a Register parameter there)`);
    if (s.preferredTransport !== undefined && !s.binding.includes(s.preferredTransport)) w.push(`${at}.preferredTransport: ${s.preferredTransport} is not in the binding ${s.binding}`);
    if (s.security.mode === 'psk' && !s.security.generate && s.security.key.reveal().length < 16) w.push(`${at}.security.key: shorter than the recommended 16 bytes`);
    if (s.oscore && p.lwm2mVersions.includes('1.1')) {
      const texts: [string, Uint8Array | undefined][] = [
        ['masterSecret', s.oscore.masterSecret.reveal()],
        ['senderId', s.oscore.senderId],
        ['recipientId', s.oscore.recipientId],
        ['masterSalt', s.oscore.masterSalt],
        ['idContext', s.oscore.idContext],
      ];
      for (const [f, b] of texts) {
        if (b && !isUtf8(b)) w.push(`${at}.oscore.${f}: not valid UTF-8, so it cannot be written to LwM2M 1.1 clients (their OSCORE object holds Strings); such sessions fail`);
      }
    }
  });
  p.acl.forEach((a, i) => {
    if (a.instanceId === ACL_OBJECT_LEVEL && a.owner !== ACL_OWNER_BOOTSTRAP) w.push(`acl[${i}].owner: object-level ACLs are normally owned by the bootstrap server (65535)`);
  });
  if (p.bootstrapRead && !versionKnowable) w.push('bootstrapRead: sent only to clients known to be LwM2M 1.1+ (they sent pct); enable discoverBootstrapAccount to learn every client\'s version');
  return w;
}

// ---------------------------------------------------------------------------------------------
// Export

/**
 * The profile as a normalised JSON document (defaults filled in), for `profile export/show`.
 * Secrets appear as `"[secret]"` unless `revealSecrets`; a revealed export parses back to an
 * equal profile.
 */
export function profileToJson(p: Profile, opts: { revealSecrets?: boolean } = {}): Record<string, unknown> {
  const reveal = opts.revealSecrets === true;
  const secretHex = (s: Secret): string => (reveal ? hex(s.reveal()) : '[secret]');
  const secretB64 = (s: Secret): string => (reveal ? b64(s.reveal()) : '[secret]');
  const security = (s: SecuritySpec): Record<string, unknown> => {
    const out: Record<string, unknown> = { mode: s.mode };
    switch (s.mode) {
      case 'psk':
        if (s.generate) Object.assign(out, { generate: true, identityTemplate: s.identityTemplate });
        else {
          if (isPrintableUtf8(s.identity)) out.identity = new TextDecoder().decode(s.identity);
          else out.identityHex = hex(s.identity);
          out.key = secretHex(s.key);
        }
        break;
      case 'rpk':
        if (s.generate) {
          out.generate = true;
          if (s.serverPublicKey) out.serverPublicKey = b64(s.serverPublicKey);
        } else Object.assign(out, { publicKey: b64(s.publicKey), privateKey: secretB64(s.privateKey), serverPublicKey: b64(s.serverPublicKey) });
        break;
      case 'x509':
        Object.assign(out, { certificate: b64(s.certificate), privateKey: secretB64(s.privateKey), serverCertificate: b64(s.serverCertificate) });
        break;
      case 'nosec':
        break;
    }
    if (s.ciphersuites) out.ciphersuites = [...s.ciphersuites];
    if (s.sni !== undefined) out.sni = s.sni;
    if (s.matchingType !== undefined) out.matchingType = s.matchingType;
    if (s.certificateUsage !== undefined) out.certificateUsage = s.certificateUsage;
    return out;
  };
  const server = (s: ServerSpec): Record<string, unknown> => {
    const out: Record<string, unknown> = { shortServerId: s.shortServerId, handOff: s.handOff };
    if (s.uri !== undefined) out.uri = s.uri;
    Object.assign(out, { lifetime: s.lifetime, binding: s.binding, notificationStoring: s.notificationStoring });
    for (const d of SERVER_RESOURCES) if (s[d.field] !== undefined) out[d.field] = s[d.field];
    if (s.supportedServerVersions) out.supportedServerVersions = [...s.supportedServerVersions];
    out.security = security(s.security);
    if (s.oscore) {
      const o = s.oscore;
      out.oscore = {
        masterSecret: secretHex(o.masterSecret),
        senderId: hex(o.senderId),
        recipientId: hex(o.recipientId),
        ...(o.aeadAlgorithm !== undefined ? { aeadAlgorithm: o.aeadAlgorithm } : {}),
        ...(o.hmacAlgorithm !== undefined ? { hmacAlgorithm: o.hmacAlgorithm } : {}),
        ...(o.masterSalt ? { masterSalt: hex(o.masterSalt) } : {}),
        ...(o.idContext ? { idContext: hex(o.idContext) } : {}),
      };
    }
    return out;
  };
  const cfName = Object.entries(FORMAT_NAMES).find(([, n]) => n === p.contentFormat)?.[0];
  return {
    name: p.name,
    ...(p.description !== undefined ? { description: p.description } : {}),
    match: [...p.match],
    enroll: { allowSecurity: [...p.enroll.allowSecurity] },
    delete: p.delete.map(formatPath),
    contentFormat: p.contentFormat === 'auto' ? 'auto' : cfName,
    discoverBootstrapAccount: p.discoverBootstrapAccount,
    lwm2mVersions: [...p.lwm2mVersions],
    bootstrapRead: p.bootstrapRead,
    ...(p.bootstrapAccount
      ? {
          bootstrapAccount: {
            uri: p.bootstrapAccount.uri,
            security: security(p.bootstrapAccount.security),
            ...(p.bootstrapAccount.clientHoldOffTime !== undefined ? { clientHoldOffTime: p.bootstrapAccount.clientHoldOffTime } : {}),
            ...(p.bootstrapAccount.accountTimeout !== undefined ? { accountTimeout: p.bootstrapAccount.accountTimeout } : {}),
          },
        }
      : {}),
    servers: p.servers.map(server),
    acl: p.acl.map((a) => ({
      objectId: a.objectId,
      instanceId: a.instanceId,
      rights: Object.fromEntries([...a.rights].map(([ssid, m]) => [ssid === 0 ? 'default' : String(ssid), formatRights(m)])),
      owner: a.owner,
    })),
  };
}

function hex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

function b64(b: Uint8Array): string {
  return Buffer.from(b).toString('base64');
}

function isPrintableUtf8(b: Uint8Array): boolean {
  if (!isUtf8(b)) return false;
  const s = new TextDecoder().decode(b);
  return s.length > 0 && !/[\u0000-\u001f\u007f]/.test(s);
}

/** Levenshtein distance, for "did you mean" hints on short field names. */
function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 2) return 3;
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length]!;
}
