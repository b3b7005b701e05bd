/**
 * Who may bootstrap, and with which profile (bootstrap.md §2 steps 1–3, §13).
 *
 *  1. The endpoint: `ep`, else (LwM2M 1.1+) the DTLS identity — a PSK identity is the endpoint
 *     name; for RPK the device enrolled with that key is looked up; X.509: see below.
 *  2. A known device must arrive with the security it was enrolled with, and with exactly its
 *     identity (X.509: see below): a device enrolled with a PSK that calls over plain CoAP is refused, or anyone
 *     could claim its name and be handed its credentials.
 *  3. An unknown endpoint may enroll itself (zero-touch) through the profile whose `match`
 *     pattern fits it best, if that profile allows the security it arrived with. The most
 *     specific match decides; a refusal there does not fall back to a laxer, less specific one.
 *
 * Refusals are 4.00 on the wire with a deliberately generic diagnostic, so the bootstrap URI is
 * not an oracle for which endpoints are enrolled; the precise cause goes to the session record
 * and the log, where operators look.
 *
 * X.509 (dtls.md §1.3, bootstrap.md §2 and §13). The DTLS layer has already verified the client's
 * chain up to one of `bootstrap.x509.trustAnchors` (none configured: no X.509 client gets this
 * far) and its possession of the key; the trust anchors vouch for the names in the certificate.
 *  - Endpoint without `ep` (1.1+): the device enrolled with exactly this certificate, else the
 *    certificate's subject CN; neither → refused (`no_endpoint`).
 *  - Name check, always: the endpoint must equal the subject CN or a subjectAltName value (DNS,
 *    URI, email, IP as text), else `unauthorized` (the log names the endpoint and the names).
 *  - A device enrolled with x509 is admitted with its enrolled certificate or any other trusted
 *    certificate naming it (a certificate renewed by the CA); the enrolled certificate is not
 *    rewritten. A device enrolled with nosec, psk or rpk is refused over X.509.
 *  - An unknown endpoint enrolls itself (zero-touch) as above when its best-matching profile
 *    allows x509; the device is recorded with the certificate it arrived with.
 * `x509Admissible` is the same decision made early, in the handshake (the DTLS `x509Lookup`),
 * when no request and so no `ep` is known yet: see there.
 */
import { identityBytes, securityOf, type PeerIdentity } from '../coap/endpoint.js';
import { certificateNames, type CertificateNames } from '../dtls/x509.js';
import { StoreError } from '../store/errors.js';
import type { DeviceAuth, DeviceAuthInput, DeviceRecord, ProfileRepository, Store } from '../store/types.js';
import { bytesAsText, bytesEqual, describeBytes } from '../util/bytes.js';
import { enrollmentAllowed, parseProfileText, selectProfileByMatch, type Profile, type SecurityMode } from './profile.js';

export type RefusalCause =
  /** No `ep` and no identity to take it from. */
  | 'no_endpoint'
  /** Unknown endpoint and no profile matches it. */
  | 'unknown_endpoint'
  /** A matching profile does not allow enrolling with this security. */
  | 'enrollment_not_allowed'
  /** Known device, wrong security or wrong identity. */
  | 'unauthorized'
  /** The device's profile is missing or no longer valid. */
  | 'profile_unavailable';

export interface Refusal {
  readonly cause: RefusalCause;
  /** For the log and the session record (may name the endpoint, never a secret). */
  readonly detail: string;
  /** The CoAP diagnostic payload: generic on purpose. */
  readonly diagnostic: string;
}

export interface Admitted {
  readonly endpoint: Buffer;
  readonly device: DeviceRecord;
  readonly profile: Profile;
  /** True when this request enrolled the device (zero-touch). */
  readonly enrolled: boolean;
  readonly security: SecurityMode;
}

export type AdmissionResult = { readonly ok: true; readonly admitted: Admitted } | { readonly ok: false; readonly refusal: Refusal };

const GENERIC_REFUSAL = 'not authorized to bootstrap: unknown endpoint or wrong credentials';

function refused(cause: RefusalCause, detail: string, diagnostic = GENERIC_REFUSAL): AdmissionResult {
  return { ok: false, refusal: { cause, detail, diagnostic } };
}

/** Whether a device's enrollment accepts the identity the request arrived with. */
export function identityMatches(auth: DeviceAuth, identity: PeerIdentity | undefined): boolean {
  if (auth.kind === 'none' || identity === undefined) return auth.kind === 'none' && identity === undefined;
  if (auth.kind !== identity.type) return false;
  const enrolled = auth.kind === 'psk' ? auth.identity : auth.kind === 'rpk' ? auth.publicKey : auth.certificate;
  return bytesEqual(identityBytes(identity)!, enrolled);
}

/**
 * Parsed profiles, cached. A device's profile is fetched by name on every request (one indexed
 * read) and re-parsed only when its version changed, so `lwbs profile import` takes effect at
 * once. The list used for zero-touch matching is refreshed at most every `listTtlMs`.
 */
export class ProfileCache {
  readonly #repo: ProfileRepository;
  readonly #listTtlMs: number;
  readonly #now: () => number;
  readonly #parsed = new Map<string, { version: number; profile: Profile | Error }>();
  #list: { at: number; profiles: Profile[] } | undefined;

  constructor(repo: ProfileRepository, opts: { listTtlMs?: number; now?: () => number } = {}) {
    this.#repo = repo;
    this.#listTtlMs = opts.listTtlMs ?? 1000;
    this.#now = opts.now ?? Date.now;
  }

  #parse(name: string, version: number, document: string): Profile | Error {
    const hit = this.#parsed.get(name);
    if (hit && hit.version === version) return hit.profile;
    let profile: Profile | Error;
    try {
      profile = parseProfileText(document);
    } catch (e) {
      profile = e instanceof Error ? e : new Error(String(e));
    }
    this.#parsed.set(name, { version, profile });
    return profile;
  }

  /** The profile, undefined if there is none, an Error if the stored document no longer parses. */
  async get(name: string): Promise<Profile | Error | undefined> {
    const rec = await this.#repo.get(name);
    if (!rec) {
      this.#parsed.delete(name);
      return undefined;
    }
    return this.#parse(name, rec.version, rec.document);
  }

  /** Valid profiles that have `match` patterns. */
  async matchable(): Promise<Profile[]> {
    const now = this.#now();
    if (this.#list && now - this.#list.at < this.#listTtlMs) return this.#list.profiles;
    const all = await this.#repo.list();
    const profiles: Profile[] = [];
    for (const rec of all) {
      const p = this.#parse(rec.name, rec.version, rec.document);
      if (!(p instanceof Error) && p.match.length > 0) profiles.push(p);
    }
    this.#list = { at: now, profiles };
    return profiles;
  }

  /** Forget the match list (after this process changed profiles). */
  invalidate(): void {
    this.#list = undefined;
  }
}

/** Where the endpoint comes from when `ep` is absent (1.1+, bootstrap.md §2). */
async function endpointFromIdentity(store: Store, identity: PeerIdentity | undefined): Promise<{ endpoint: Buffer; device?: DeviceRecord } | undefined> {
  if (!identity) return undefined;
  switch (identity.type) {
    case 'psk': {
      const found = await store.devices.findByPskIdentity(identity.identity);
      return found ? { endpoint: found.device.endpoint, device: found.device } : { endpoint: Buffer.from(identity.identity) };
    }
    case 'rpk': {
      const device = await store.devices.findByRpk(identity.publicKey);
      return device ? { endpoint: device.endpoint, device } : undefined;
    }
    case 'x509': {
      const device = await store.devices.findByCertificate(identity.certificate);
      if (device) return { endpoint: device.endpoint, device };
      const cn = namesOf(identity.certificate)?.cn;
      return cn === undefined || cn === '' ? undefined : { endpoint: Buffer.from(cn, 'utf8') };
    }
  }
}

/** The certificate's CN and subjectAltName values; undefined when its DER does not parse. */
function namesOf(certificate: Uint8Array): CertificateNames | undefined {
  try {
    return certificateNames(certificate);
  } catch {
    return undefined;
  }
}

/** "CN \"a\", SAN \"b\", \"c\"" for the log. */
function describeNames(n: CertificateNames | undefined): string {
  if (n === undefined) return 'an unreadable certificate';
  const parts = [n.cn === undefined ? 'no CN' : `CN ${JSON.stringify(n.cn)}`];
  parts.push(n.sans.length === 0 ? 'no subjectAltName' : `subjectAltName ${n.sans.map((x) => JSON.stringify(x)).join(', ')}`);
  return parts.join(', ');
}

/** Whether an X.509 certificate names `endpoint` (its CN or a subjectAltName value equals it). */
export function certificateNamesEndpoint(certificate: Uint8Array, endpoint: Uint8Array): boolean {
  const name = bytesAsText(endpoint);
  const n = namesOf(certificate);
  return name !== undefined && n !== undefined && (n.cn === name || n.sans.includes(name));
}

/** identityMatches, and for X.509 any (trusted, name-checked) certificate of an x509 device. */
function accepts(auth: DeviceAuth, identity: PeerIdentity | undefined): boolean {
  return identityMatches(auth, identity) || (auth.kind === 'x509' && identity?.type === 'x509');
}

/** At most this many certificate names are looked up per handshake. */
const MAX_NAMES_LOOKED_UP = 16;

/**
 * The bootstrap listener's `x509Lookup`: whether a client whose chain verified against the trust
 * anchors may finish the handshake. True when its certificate is the exact one an enrolled device
 * has (admission then still checks the names), or when one of its names (CN first, then the
 * subjectAltName values, at most 16) could be admitted: the endpoint of a device enrolled with
 * x509, or an unknown endpoint whose best-matching profile allows x509 enrollment. False
 * otherwise (the client gets certificate_unknown and no request of it is read).
 */
export async function x509Admissible(store: Store, profiles: ProfileCache, certificate: Uint8Array): Promise<boolean> {
  if (await store.devices.findByCertificate(certificate)) return true;
  const n = namesOf(certificate);
  if (n === undefined) return false;
  const names = [...new Set([...(n.cn === undefined ? [] : [n.cn]), ...n.sans])].filter((x) => x !== '').slice(0, MAX_NAMES_LOOKED_UP);
  for (const name of names) {
    const device = await store.devices.get(Buffer.from(name, 'utf8'));
    if (device) {
      if (device.auth.kind === 'x509') return true;
      continue;
    }
    const match = selectProfileByMatch(await profiles.matchable(), name);
    if (match && enrollmentAllowed(match.profile, 'x509')) return true;
  }
  return false;
}

/** Decides whether a Bootstrap-(Pack-)Request may proceed, enrolling a zero-touch device. */
export async function admit(
  store: Store,
  profiles: ProfileCache,
  request: { readonly endpoint?: Buffer; readonly identity?: PeerIdentity },
): Promise<AdmissionResult> {
  const security = securityOf(request.identity);
  let endpoint = request.endpoint;
  let device: DeviceRecord | undefined;
  if (endpoint === undefined) {
    const derived = await endpointFromIdentity(store, request.identity);
    if (!derived) return refused('no_endpoint', 'no ep parameter and no authenticated identity to take the endpoint from', 'ep is required');
    endpoint = derived.endpoint;
    device = derived.device;
  }
  device ??= await store.devices.get(endpoint);
  const ep = describeBytes(endpoint);

  if (request.identity?.type === 'x509' && !certificateNamesEndpoint(request.identity.certificate, endpoint)) {
    return refused('unauthorized', `endpoint ${ep} is not named by the client certificate (${describeNames(namesOf(request.identity.certificate))}): its CN or a subjectAltName must equal the endpoint`);
  }

  if (device) {
    if (!accepts(device.auth, request.identity)) {
      return refused('unauthorized', `${ep} is enrolled with ${device.auth.kind === 'none' ? 'no bootstrap security (plain CoAP)' : device.auth.kind} but arrived with ${describeArrival(request.identity)}`);
    }
    const profile = await profiles.get(device.profile);
    if (profile === undefined) return refused('profile_unavailable', `${ep}: its profile ${JSON.stringify(device.profile)} does not exist`, 'no bootstrap configuration for this endpoint');
    if (profile instanceof Error) return refused('profile_unavailable', `${ep}: its profile ${JSON.stringify(device.profile)} is invalid: ${profile.message}`, 'no bootstrap configuration for this endpoint');
    return { ok: true, admitted: { endpoint, device, profile, enrolled: false, security } };
  }

  const name = bytesAsText(endpoint);
  const match = name === undefined ? undefined : selectProfileByMatch(await profiles.matchable(), name);
  if (!match) return refused('unknown_endpoint', `${ep} is not enrolled and no profile's match patterns fit it`);
  if (!enrollmentAllowed(match.profile, security)) {
    return refused(
      'enrollment_not_allowed',
      `${ep} matches ${JSON.stringify(match.pattern)} of profile ${match.profile.name}, which enrolls devices arriving with ${match.profile.enroll.allowSecurity.join(', ')}, not ${security}`,
    );
  }
  const auth = enrollmentAuth(request.identity);
  if (!auth) return refused('enrollment_not_allowed', `${ep}: a PSK device cannot enroll itself; add it with its key first`);
  try {
    device = await store.devices.add({ endpoint, profile: match.profile.name, auth, enrolledBy: 'zero-touch' });
  } catch (e) {
    // Two first requests of the same new device racing each other: the other one enrolled it.
    if (!(e instanceof StoreError && e.code === 'duplicate')) throw e;
    const again = await store.devices.get(endpoint);
    if (!again || !accepts(again.auth, request.identity)) {
      return refused('unauthorized', `${ep}: enrollment refused: ${e.message}`);
    }
    device = again;
  }
  return { ok: true, admitted: { endpoint, device, profile: match.profile, enrolled: true, security } };
}

/**
 * How a zero-touch device is recorded: by the identity it proved. A PSK cannot enroll itself: the
 * DTLS handshake needs the key before any request arrives, so a PSK device is always added with
 * its key first (`lwbs device add --psk-identity ... --psk-key ...`).
 */
function enrollmentAuth(identity: PeerIdentity | undefined): DeviceAuthInput | undefined {
  if (!identity) return { kind: 'none' };
  switch (identity.type) {
    case 'rpk':
      return { kind: 'rpk', publicKey: identity.publicKey };
    case 'x509':
      return { kind: 'x509', certificate: identity.certificate };
    case 'psk':
      return undefined;
  }
}

function describeArrival(identity: PeerIdentity | undefined): string {
  if (!identity) return 'plain CoAP';
  switch (identity.type) {
    case 'psk':
      return `PSK identity ${describeBytes(identity.identity)}`;
    case 'rpk':
      return 'a raw public key';
    case 'x509':
      return 'an X.509 certificate';
  }
}
