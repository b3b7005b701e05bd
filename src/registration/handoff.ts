/**
 * The hand-off (design.md, "The hand-off"; issue 4 part 2): a client may register only if it is
 * a known device and only with credentials provisioned for THIS registration server.
 *
 *  - Plain CoAP: the endpoint (`ep`) must have a `nosec` credential for one of this server's
 *    public URIs (the bootstrap server records one for every nosec hand-off).
 *  - DTLS (when the DTLS endpoint arrives; the code path is here already): the credential is
 *    found by the identity the peer proved — PSK identity, raw public key (SPKI) or certificate —
 *    in the mode it proved it with; the endpoint is the credential's. An `ep` that names another
 *    endpoint is refused (registration.md §2.4 step 4).
 *  - X.509 (mode x509, the client certificate DER as the credential's public key, e.g. from
 *    `lwbs device credential add EP --mode x509 --certificate FILE`): the certificate must be the
 *    credential's exactly (the DTLS layer verified its chain to `registration.x509.trustAnchors`)
 *    and must name the credential's endpoint in its subject CN or a subjectAltName value
 *    (registration.md §2.4 step 4); otherwise `identity_mismatch`.
 *  - Pending and active credentials are candidates (a Finish response can be lost). Of several,
 *    the newest is taken: over plain CoAP they cannot be told apart, and the newest is the one
 *    the latest bootstrap gave the device — promoting it retires the older ones.
 *
 * Refusals are 4.03 Forbidden (as Leshan) with one generic diagnostic, so the registration URI
 * is no oracle for which endpoints exist; the precise cause goes to the log and the event. The
 * spec allows 4.00 for an `ep` that does not match the identity; 4.03 is used for that too.
 */
import { identityBytes, securityOf, type PeerIdentity } from '../coap/endpoint.js';
import type { CredentialRecord, RegistrationSecurity, SecurityMode, Store } from '../store/types.js';
import { certificateNames } from '../dtls/x509.js';
import { bytesAsText, describeBytes } from '../util/bytes.js';

export type HandOffRefusalCause =
  /** Plain CoAP without `ep`: nothing names the endpoint (4.00). */
  | 'no_endpoint'
  /** The endpoint is not an enrolled device. */
  | 'unknown_endpoint'
  /** A known device without a usable credential for this server and this security. */
  | 'not_provisioned'
  /** `ep` names another endpoint than the DTLS identity's credential. */
  | 'identity_mismatch';

export interface HandOffRefusal {
  readonly code: '4.00' | '4.03';
  readonly cause: HandOffRefusalCause;
  /** For the log and the event (names the endpoint, never a secret). */
  readonly detail: string;
  /** The CoAP diagnostic payload: generic on purpose. */
  readonly diagnostic: string;
}

export interface HandOff {
  readonly endpoint: Buffer;
  readonly credential: CredentialRecord;
  readonly security: RegistrationSecurity;
  /** The DTLS identity's bytes (PSK identity, SPKI DER, certificate DER); undefined for nosec. */
  readonly identity?: Buffer;
}

export type HandOffResult = { readonly ok: true; readonly handOff: HandOff } | { readonly ok: false; readonly refusal: HandOffRefusal };

export const GENERIC_REFUSAL = 'registration not allowed: unknown endpoint or not provisioned for this server';

function refused(cause: HandOffRefusalCause, detail: string): HandOffResult {
  return cause === 'no_endpoint'
    ? { ok: false, refusal: { code: '4.00', cause, detail, diagnostic: 'ep is required' } }
    : { ok: false, refusal: { code: '4.03', cause, detail, diagnostic: GENERIC_REFUSAL } };
}

const normalized = new Map<string, string>();

/**
 * A server URI in a comparable form: scheme and host lower-cased, the default port (5683 for
 * coap, 5684 for coaps) made explicit, a trailing `/` dropped. Unparsable text is only trimmed.
 */
export function normalizeServerUri(uri: string): string {
  let n = normalized.get(uri);
  if (n === undefined) {
    n = normalizeUncached(uri);
    // Few distinct URIs (this server's, and those of the servers profiles hand over to): a
    // Register costs no URL parse. Bounded, in case credentials name many servers.
    if (normalized.size >= 1024) normalized.clear();
    normalized.set(uri, n);
  }
  return n;
}

function normalizeUncached(uri: string): string {
  const t = uri.trim();
  let u: URL;
  try {
    u = new URL(t);
  } catch {
    return t;
  }
  const scheme = u.protocol.toLowerCase();
  const port = u.port !== '' ? u.port : scheme === 'coap:' || scheme === 'coap+tcp:' ? '5683' : scheme === 'coaps:' || scheme === 'coaps+tcp:' ? '5684' : '';
  const path = u.pathname === '/' ? '' : u.pathname.replace(/\/$/, '');
  return `${scheme}//${u.hostname.toLowerCase()}${port ? `:${port}` : ''}${path}${u.search}`;
}

/** Decides whether a Register may proceed and with which credential (see the header). */
export async function authorizeRegistration(
  store: Store,
  request: { readonly endpoint?: Buffer; readonly identity?: PeerIdentity },
  serverUris: readonly string[],
): Promise<HandOffResult> {
  const ours = new Set(serverUris.map(normalizeServerUri));
  const forUs = (c: CredentialRecord): boolean => ours.has(normalizeServerUri(c.serverUri));
  const identity = request.identity;
  const security = securityOf(identity);

  if (identity === undefined) {
    const ep = request.endpoint;
    if (ep === undefined) return refused('no_endpoint', 'no ep parameter and no DTLS identity to take the endpoint from');
    const all = await store.credentials.findForRegistration({ endpoint: ep });
    const usable = newestFirst(all.filter((c) => c.mode === 'nosec' && forUs(c)));
    if (usable.length > 0) return { ok: true, handOff: { endpoint: ep, credential: usable[0]!, security } };
    return refused(...(await explain(store, ep, all, forUs)));
  }

  const key = identityBytes(identity)!;
  const all = await store.credentials.findForRegistration(identity.type === 'psk' ? { pskIdentity: key } : { publicKey: key });
  const usable = newestFirst(all.filter((c) => c.mode === identity.type && forUs(c)));
  const what = identity.type === 'psk' ? `PSK identity ${describeBytes(key)}` : identity.type === 'rpk' ? 'its raw public key' : 'its certificate';
  if (usable.length === 0) {
    const ep = request.endpoint ? `${describeBytes(request.endpoint)} ` : '';
    return refused('not_provisioned', `${ep}(${security}) has no pending or active ${security} credential for this server with ${what}`);
  }
  const credential = usable[0]!;
  if (request.endpoint !== undefined && !request.endpoint.equals(credential.endpoint)) {
    return refused('identity_mismatch', `ep ${describeBytes(request.endpoint)} does not match ${what}, which belongs to ${describeBytes(credential.endpoint)}`);
  }
  if (identity.type === 'x509') {
    const names = certificateNamesOf(key);
    const name = bytesAsText(credential.endpoint);
    if (names === undefined || name === undefined || (names.cn !== name && !names.sans.includes(name))) {
      const shown = names === undefined ? 'unreadable' : `CN ${names.cn === undefined ? '(none)' : JSON.stringify(names.cn)}, subjectAltName ${names.sans.length === 0 ? '(none)' : names.sans.map((n) => JSON.stringify(n)).join(', ')}`;
      return refused('identity_mismatch', `endpoint ${describeBytes(credential.endpoint)} is not named by its certificate (${shown}): the CN or a subjectAltName must equal the endpoint`);
    }
  }
  return { ok: true, handOff: { endpoint: credential.endpoint, credential, security, identity: key } };
}

function certificateNamesOf(der: Uint8Array): { cn?: string; sans: string[] } | undefined {
  try {
    return certificateNames(der);
  } catch {
    return undefined;
  }
}

function newestFirst(list: CredentialRecord[]): CredentialRecord[] {
  return list.sort((a, b) => b.id - a.id);
}

/** Why a plain-CoAP endpoint was refused, for the log (never on the wire). */
async function explain(
  store: Store,
  ep: Buffer,
  credentials: readonly CredentialRecord[],
  forUs: (c: CredentialRecord) => boolean,
): Promise<[HandOffRefusalCause, string]> {
  const name = describeBytes(ep);
  if (!(await store.devices.get(ep))) return ['unknown_endpoint', `${name} is not an enrolled device`];
  const mine = credentials.filter(forUs);
  if (mine.length > 0) {
    const modes = [...new Set(mine.map((c) => c.mode))] as SecurityMode[];
    return ['not_provisioned', `${name} is provisioned for this server with ${modes.join(', ')}, not plain CoAP`];
  }
  if (credentials.length > 0) {
    const uris = [...new Set(credentials.map((c) => c.serverUri))];
    return ['not_provisioned', `${name} has credentials only for other servers (${uris.join(', ')})`];
  }
  return ['not_provisioned', `${name} has no pending or active credential for this server: bootstrap it first`];
}

/**
 * The key a DTLS client proving PSK `identity` must hold to reach this registration server: the
 * newest pending or active psk credential with that identity for one of `serverUris` (what
 * `authorizeRegistration` will then accept). Undefined for an identity provisioned for no such
 * credential, so the handshake fails with unknown_psk_identity before any CoAP is read.
 */
export async function registrationPskKey(store: Store, identity: Uint8Array, serverUris: readonly string[]): Promise<Uint8Array | undefined> {
  const ours = new Set(serverUris.map(normalizeServerUri));
  const all = await store.credentials.findForRegistration({ pskIdentity: identity });
  const credential = newestFirst(all.filter((c) => c.mode === 'psk' && ours.has(normalizeServerUri(c.serverUri))))[0];
  if (!credential) return undefined;
  return (await store.credentials.revealSecrets(credential.id)).pskKey ?? undefined;
}

/**
 * Whether a DTLS client proving raw public key `spki` may reach this registration server: a
 * pending or active rpk credential with that key for one of `serverUris` exists.
 */
export async function registrationRpkKnown(store: Store, spki: Uint8Array, serverUris: readonly string[]): Promise<boolean> {
  const ours = new Set(serverUris.map(normalizeServerUri));
  const all = await store.credentials.findForRegistration({ publicKey: spki });
  return all.some((c) => c.mode === 'rpk' && ours.has(normalizeServerUri(c.serverUri)));
}

/**
 * The registration listener's `x509Lookup`: whether a DTLS client whose certificate chain
 * verified against the trust anchors may reach this registration server - a pending or active
 * x509 credential with exactly that certificate (DER) for one of `serverUris` exists. The name
 * check (CN/SAN = endpoint) follows at Register, where it can be logged.
 */
export async function registrationX509Known(store: Store, certificate: Uint8Array, serverUris: readonly string[]): Promise<boolean> {
  const ours = new Set(serverUris.map(normalizeServerUri));
  const all = await store.credentials.findForRegistration({ publicKey: certificate });
  return all.some((c) => c.mode === 'x509' && ours.has(normalizeServerUri(c.serverUri)));
}
