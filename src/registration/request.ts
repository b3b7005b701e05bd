/**
 * Parsing of the Register (`POST /rd?ep=…&lt=…&lwm2m=…&b=…&Q&sms=…&pid=…`, registration.md §2)
 * and Update (`POST /rd/{id}?lt=…&b=…&Q&sms=…&pid=…`, §3) queries and payloads. Pure; the server
 * maps a refusal to its CoAP code with the diagnostic as payload. Every diagnostic names the
 * parameter it is about.
 *
 * Two steps, so the server can follow the spec's order (§2.4: syntax 4.00 → endpoint →
 * authorization 4.03 → version 4.12 → object list 4.09):
 *  1. `parseRegistrationQuery` — syntax only: anything we would have to guess about is 4.00;
 *  2. `resolveRegister` / `resolveUpdate` — defaults, the version (4.12), and the checks that
 *     depend on it (binding letters, `Q`).
 *
 * Leniency (be liberal where clients differ, strict where a guess could go wrong):
 *
 * | input                                   | decision                                                  |
 * |-----------------------------------------|-----------------------------------------------------------|
 * | `lwm2m` absent                          | 1.0, the spec's default (Leshan and Wakaama refuse: 4.00)  |
 * | `lwm2m=1.1.1` (a patch release)         | accepted as 1.1; quotes (`lwm2m="1.1"`) are tolerated      |
 * | `lwm2m` a version other than 1.0–1.2    | 4.12 Precondition Failed                                   |
 * | `lwm2m` not a version (`abc`, empty)    | 4.00                                                       |
 * | `lt` absent                             | 86400, the 1.0 default (1.1+ requires it; tolerated)       |
 * | `lt=0`                                  | 1.2: never expires; 1.0/1.1: 86400 (as Wakaama)            |
 * | `lt` not a decimal integer, > 2^32-1    | 4.00                                                       |
 * | `b` absent                              | `U`                                                        |
 * | `b` letters the version does not know   | 4.00 (as Leshan): 1.0 U S Q (U or S required), 1.1 U T S N, 1.2 + M H; any order, no repeats |
 * | `Q` with a value (`Q=1`)                | 4.00 (as Leshan)                                           |
 * | `Q` in a 1.0 Register                   | 4.00 (as Leshan: 1.0 says `b=UQ`)                          |
 * | `ep` empty, longer than 255 bytes       | 4.00                                                       |
 * | a known parameter given twice           | 4.00                                                       |
 * | `sms` not an MSISDN (digits, optional +)| 4.00                                                       |
 * | `pid` malformed                         | 4.00; well-formed ones are recorded, not resolved          |
 * | unknown parameters (also without `=`)   | kept as attributes (as Leshan), first value wins           |
 * | Update with `ep` / `lwm2m`              | ignored when equal to the registration's, else 4.00        |
 * | payload Content-Format absent           | read as link-format; any other than 40 is 4.00             |
 */
import { CodecError } from '../lwm2m/errors.js';
import { parseRegisterLinks, type RegisterLinks } from '../lwm2m/linkformat.js';
import { MAX_ENDPOINT_BYTES } from '../bootstrap/request.js';
import { normaliseLwm2mVersion, type LwM2MVersion } from '../bootstrap/profile.js';
import { MAX_LIFETIME } from '../store/registry.js';
import type { RegisteredObjectEntry } from '../store/types.js';

export const DEFAULT_LIFETIME = 86400;
export const DEFAULT_LWM2M_VERSION: LwM2MVersion = '1.0';
export const DEFAULT_BINDING = 'U';
/** `lt` above this (an unsigned 32-bit number of seconds, 136 years) is refused. */
export { MAX_LIFETIME };
/** Content-Format of Register/Update payloads. */
export const LINK_FORMAT = 40;

export interface RegistrationQuery {
  /** `ep`, raw bytes (names may be binary). */
  readonly endpoint?: Buffer;
  /** `lt`, seconds as sent. */
  readonly lifetime?: number;
  /** `lwm2m` as sent (syntax checked: `major.minor[.patch]`). */
  readonly lwm2mVersion?: string;
  /** `b` as sent (letters checked in step 2, against the version). */
  readonly binding?: string;
  /** The `Q` flag was present. */
  readonly queueMode: boolean;
  readonly sms?: string;
  /** `pid` values (1.2), split. */
  readonly profileIds?: readonly string[];
  /** Every other parameter, in order; a parameter without `=` has the value ''. */
  readonly extra: ReadonlyMap<string, string>;
}

export type RegistrationRefusalCode = '4.00' | '4.12';

export interface RegistrationRefusal {
  readonly code: RegistrationRefusalCode;
  readonly diagnostic: string;
  /** The query parameter it is about, when there is one. */
  readonly parameter?: string;
}

export type Parsed<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly refusal: RegistrationRefusal };

function refuse<T>(diagnostic: string, parameter?: string, code: RegistrationRefusalCode = '4.00'): Parsed<T> {
  return { ok: false, refusal: { code, diagnostic, ...(parameter !== undefined ? { parameter } : {}) } };
}

const EQ = 0x3d;
const KNOWN = new Set(['ep', 'lt', 'lwm2m', 'b', 'Q', 'sms', 'pid']);
const VERSION_SYNTAX = /^([0-9]{1,3})\.([0-9]{1,3})(?:\.([0-9]{1,3}))?$/;
const MSISDN = /^\+?[0-9]{1,32}$/;
// RFC 6920 suite id ":" hex digits, or "oma"/"v" ":" name (registration.md §2.3).
const PROFILE_ID = /^(?:[0-9]{1,3}:[0-9a-f]+|(?:oma|v):[A-Za-z0-9-]+)$/;

/** Parses the Uri-Query options (raw bytes, one per parameter) of a Register or an Update: syntax only. */
export function parseRegistrationQuery(uriQuery: readonly Uint8Array[]): Parsed<RegistrationQuery> {
  let endpoint: Buffer | undefined;
  let lifetime: number | undefined;
  let lwm2mVersion: string | undefined;
  let binding: string | undefined;
  let queueMode = false;
  let sms: string | undefined;
  let profileIds: string[] | undefined;
  const seen = new Set<string>();
  const extra = new Map<string, string>();
  for (const raw of uriQuery) {
    const b = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
    const eq = b.indexOf(EQ);
    const name = (eq < 0 ? b : b.subarray(0, eq)).toString('latin1');
    const hasValue = eq >= 0;
    const bytes = hasValue ? b.subarray(eq + 1) : Buffer.alloc(0);
    const value = bytes.toString('utf8');
    if (!KNOWN.has(name)) {
      if (name.length > 0 && !extra.has(name)) extra.set(name, value);
      continue;
    }
    if (seen.has(name)) return refuse(`${name} given more than once`, name);
    seen.add(name);
    if (name === 'Q') {
      // registration.md §2.1: a flag without value; Leshan refuses `Q=1`.
      if (hasValue) return refuse('Q is a flag and takes no value', 'Q');
      queueMode = true;
      continue;
    }
    if (!hasValue || bytes.length === 0) return refuse(`${name} needs a value`, name);
    switch (name) {
      case 'ep':
        if (bytes.length > MAX_ENDPOINT_BYTES) return refuse(`ep is longer than ${MAX_ENDPOINT_BYTES} bytes`, 'ep');
        endpoint = Buffer.from(bytes);
        break;
      case 'lt': {
        if (!/^[0-9]{1,10}$/.test(value) || Number(value) > MAX_LIFETIME) {
          return refuse(`lt must be a lifetime in seconds (0..${MAX_LIFETIME}), got ${JSON.stringify(value)}`, 'lt');
        }
        lifetime = Number(value);
        break;
      }
      case 'lwm2m': {
        // Quotes are tolerated (`lwm2m="1.1"`, the link-format spelling of the same value).
        const v = value.length > 2 && value.startsWith('"') && value.endsWith('"') ? value.slice(1, -1) : value;
        if (!VERSION_SYNTAX.test(v)) return refuse(`lwm2m must be an enabler version such as 1.1, got ${JSON.stringify(value)}`, 'lwm2m');
        lwm2mVersion = v;
        break;
      }
      case 'b':
        if (!/^[A-Za-z]{1,8}$/.test(value)) return refuse(`b must be binding letters such as U or UQ, got ${JSON.stringify(value)}`, 'b');
        binding = value;
        break;
      case 'sms':
        if (!MSISDN.test(value)) return refuse(`sms must be an MSISDN (digits), got ${JSON.stringify(value)}`, 'sms');
        sms = value;
        break;
      case 'pid': {
        const ids = parseProfileIds(value);
        if (!ids) return refuse(`pid must be a profile ID or a quoted comma-separated list of them, got ${JSON.stringify(value)}`, 'pid');
        profileIds = ids;
        break;
      }
    }
  }
  return {
    ok: true,
    value: {
      ...(endpoint !== undefined ? { endpoint } : {}),
      ...(lifetime !== undefined ? { lifetime } : {}),
      ...(lwm2mVersion !== undefined ? { lwm2mVersion } : {}),
      ...(binding !== undefined ? { binding } : {}),
      queueMode,
      ...(sms !== undefined ? { sms } : {}),
      ...(profileIds !== undefined ? { profileIds } : {}),
      extra,
    },
  };
}

/** `pid` (registration.md §2.3): one profile ID, or a quoted comma-separated list. */
export function parseProfileIds(value: string): string[] | undefined {
  let v = value;
  if (v.startsWith('"')) {
    if (v.length < 2 || !v.endsWith('"')) return undefined;
    v = v.slice(1, -1);
  }
  const ids = v.split(',').map((s) => s.trim());
  if (ids.length === 0 || ids.some((s) => !PROFILE_ID.test(s))) return undefined;
  return ids;
}

/** The enabler version to use: 1.0 when absent, 4.12 when not 1.0, 1.1 or 1.2. */
export function resolveVersion(v: string | undefined): Parsed<LwM2MVersion> {
  if (v === undefined) return { ok: true, value: DEFAULT_LWM2M_VERSION };
  const n = normaliseLwm2mVersion(v);
  if (n === undefined) return refuse(`lwm2m ${v} is not supported (supported: 1.0, 1.1, 1.2)`, 'lwm2m', '4.12');
  return { ok: true, value: n };
}

const LETTERS: Readonly<Record<LwM2MVersion, string>> = { '1.0': 'USQ', '1.1': 'UTSN', '1.2': 'UTSNMH' };

/**
 * Checks binding letters for a version (objects.md §3.1): 1.0 allows U, UQ, S, SQ, US, UQS in
 * any letter order; 1.1 any combination of U T S N; 1.2 adds M and H; no letter twice.
 * Returns the binding as sent.
 */
export function checkBinding(binding: string, version: LwM2MVersion): Parsed<string> {
  const allowed = LETTERS[version];
  const seen = new Set<string>();
  for (const c of binding) {
    if (!allowed.includes(c)) {
      const hint = c === 'Q' ? ' (from 1.1 queue mode is the Q parameter)' : '';
      return refuse(`b=${binding}: ${JSON.stringify(c)} is not a LwM2M ${version} binding letter (${allowed.split('').join(', ')})${hint}`, 'b');
    }
    if (seen.has(c)) return refuse(`b=${binding} repeats ${JSON.stringify(c)}`, 'b');
    seen.add(c);
  }
  if (version === '1.0' && !seen.has('U') && !seen.has('S')) return refuse(`b=${binding}: a LwM2M 1.0 binding needs U or S`, 'b');
  return { ok: true, value: binding };
}

/**
 * The lifetime to store: `lt`, or 86400 when absent. `lt=0` means "never expires" in 1.2; for
 * 1.0/1.1 it has no such meaning and is replaced by 86400 (as Wakaama does).
 */
export function resolveLifetime(lt: number | undefined, version: LwM2MVersion): number {
  if (lt === undefined) return DEFAULT_LIFETIME;
  if (lt === 0 && version !== '1.2') return DEFAULT_LIFETIME;
  return lt;
}

export interface RegisterParams {
  readonly lwm2mVersion: LwM2MVersion;
  /** Seconds; 0 = never expires (1.2 only). */
  readonly lifetime: number;
  readonly binding: string;
  /** 1.0: `Q` in the binding; 1.1+: the `Q` flag. */
  readonly queueMode: boolean;
  readonly sms?: string;
  readonly profileIds?: readonly string[];
  readonly attributes: Readonly<Record<string, string>>;
  /** What was not sent and took its default (for the log and the event). */
  readonly defaulted: readonly ('lwm2m' | 'lt' | 'b')[];
}

/** Step 2 of a Register: defaults, the version (4.12) and the checks that depend on it. */
export function resolveRegister(q: RegistrationQuery): Parsed<RegisterParams> {
  const version = resolveVersion(q.lwm2mVersion);
  if (!version.ok) return version;
  const v = version.value;
  const binding = checkBinding(q.binding ?? DEFAULT_BINDING, v);
  if (!binding.ok) return binding;
  if (q.queueMode && v === '1.0') return refuse('Q is not a LwM2M 1.0 parameter: a 1.0 client asks for queue mode with b=UQ', 'Q');
  const defaulted: ('lwm2m' | 'lt' | 'b')[] = [];
  if (q.lwm2mVersion === undefined) defaulted.push('lwm2m');
  if (q.lifetime === undefined || (q.lifetime === 0 && v !== '1.2')) defaulted.push('lt');
  if (q.binding === undefined) defaulted.push('b');
  return {
    ok: true,
    value: {
      lwm2mVersion: v,
      lifetime: resolveLifetime(q.lifetime, v),
      binding: binding.value,
      queueMode: v === '1.0' ? binding.value.includes('Q') : q.queueMode,
      ...(q.sms !== undefined ? { sms: q.sms } : {}),
      ...(q.profileIds !== undefined ? { profileIds: q.profileIds } : {}),
      attributes: Object.fromEntries(q.extra),
      defaulted,
    },
  };
}

export interface UpdateParams {
  readonly lifetime?: number;
  readonly binding?: string;
  readonly queueMode?: boolean;
  readonly sms?: string;
  readonly profileIds?: readonly string[];
  /** Unknown parameters, merged into the registration's. */
  readonly attributes?: Readonly<Record<string, string>>;
}

/**
 * Step 2 of an Update (registration.md §3): only what changed is sent. `ep` and `lwm2m` cannot
 * change: equal values are ignored, others are 4.00. In 1.1+ the `Q` flag turns queue mode on
 * (its absence changes nothing: only changed parameters are sent); in 1.0 the binding decides.
 */
export function resolveUpdate(q: RegistrationQuery, current: { readonly endpoint: Uint8Array; readonly lwm2mVersion: string }): Parsed<UpdateParams> {
  if (q.endpoint !== undefined && !Buffer.from(current.endpoint).equals(q.endpoint)) return refuse('ep cannot change in an Update: Register again', 'ep');
  const v = normaliseLwm2mVersion(current.lwm2mVersion) ?? DEFAULT_LWM2M_VERSION;
  if (q.lwm2mVersion !== undefined && normaliseLwm2mVersion(q.lwm2mVersion) !== v) return refuse('lwm2m cannot change in an Update: Register again', 'lwm2m');
  let binding: string | undefined;
  if (q.binding !== undefined) {
    const b = checkBinding(q.binding, v);
    if (!b.ok) return b;
    binding = b.value;
  }
  if (q.queueMode && v === '1.0') return refuse('Q is not a LwM2M 1.0 parameter: a 1.0 client asks for queue mode with b=UQ', 'Q');
  const queueMode = v === '1.0' ? (binding === undefined ? undefined : binding.includes('Q')) : q.queueMode ? true : undefined;
  return {
    ok: true,
    value: {
      ...(q.lifetime !== undefined ? { lifetime: resolveLifetime(q.lifetime, v) } : {}),
      ...(binding !== undefined ? { binding } : {}),
      ...(queueMode !== undefined ? { queueMode } : {}),
      ...(q.sms !== undefined ? { sms: q.sms } : {}),
      ...(q.profileIds !== undefined ? { profileIds: q.profileIds } : {}),
      ...(q.extra.size > 0 ? { attributes: Object.fromEntries(q.extra) } : {}),
    },
  };
}

export interface RegisterPayload {
  readonly rootPath: string;
  readonly contentFormats?: readonly number[];
  /** In the order listed; Security (0) and OSCORE (21), which clients must not list, are left out. */
  readonly objects: readonly RegisteredObjectEntry[];
  /** Object IDs the client listed but must not have (0, 21): for the log. */
  readonly ignored: readonly number[];
}

/** Objects a client must never list (registration.md §2.2); a DM server cannot access them anyway. */
const NOT_LISTED = new Set([0, 21]);

/**
 * Reads a Register/Update payload (link-format, `parseRegisterLinks`). undefined for an empty
 * payload (the caller decides: 4.09 for a Register, "unchanged" for an Update). A payload that
 * names no object at all counts as empty.
 */
export function parseRegistrationPayload(payload: Uint8Array, contentFormat: number | undefined): Parsed<RegisterPayload | undefined> {
  if (payload.length === 0) return { ok: true, value: undefined };
  if (contentFormat !== undefined && contentFormat !== LINK_FORMAT) {
    return refuse(`the object list must be link-format (Content-Format 40), got Content-Format ${contentFormat}`);
  }
  let links: RegisterLinks;
  try {
    links = parseRegisterLinks(payload);
  } catch (e) {
    if (e instanceof CodecError) return refuse(`malformed object list: ${e.message}`);
    throw e;
  }
  const objects: RegisteredObjectEntry[] = [];
  const ignored: number[] = [];
  for (const [id, o] of links.objects) {
    if (NOT_LISTED.has(id)) {
      ignored.push(id);
      continue;
    }
    objects.push(o.version === undefined ? { id, instances: o.instances } : { id, version: o.version, instances: o.instances });
  }
  if (objects.length === 0) return { ok: true, value: undefined };
  return {
    ok: true,
    value: { rootPath: links.rootPath, ...(links.contentFormats ? { contentFormats: links.contentFormats } : {}), objects, ignored },
  };
}
