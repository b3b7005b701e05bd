/**
 * The store's interface: records, inputs, and one repository per table group. Every method is
 * async so that another backend (PostgreSQL for multi-node deployments) can implement the same
 * interface; the SQLite implementation answers synchronously under the hood.
 *
 * Conventions:
 * - Endpoints and identities are given as `string` (UTF-8) or bytes, and returned as `Buffer`.
 *   Use `bytesAsText` / `describeBytes` (bytes.ts) to show them.
 * - Times are integer milliseconds since the epoch.
 * - Listing and lookups never return secret material; secrets come only from methods that say
 *   so (`findByPskIdentity`, `revealPskKey`, `credentials.revealSecrets`, `serverKeys.revealPrivateKey`).
 * - Errors a caller can act on are `StoreError` (errors.ts) with a code and a message naming the
 *   field and value.
 */

import type { DeviceDataRepository } from './device-data.js';

export type Bytes = string | Uint8Array;

// ---------------------------------------------------------------- profiles

export interface ProfileRecord {
  readonly name: string;
  /** The profile JSON text exactly as stored. */
  readonly document: string;
  /** 1 on creation, +1 on every change (counting on across delete and re-create). */
  readonly version: number;
  readonly createdAt: number;
  readonly updatedAt: number;
}

export interface ProfileSummary extends ProfileRecord {
  /** How many devices use the profile. */
  readonly devices: number;
}

export type ProfileChange = 'create' | 'update' | 'delete';

export interface ProfileHistoryEntry {
  readonly name: string;
  readonly version: number;
  readonly document: string;
  readonly change: ProfileChange;
  readonly changedAt: number;
}

export interface ProfilePutResult {
  readonly version: number;
  /** `unchanged` when the document is identical to the stored one (no new version). */
  readonly change: 'create' | 'update' | 'unchanged';
}

export interface ProfileRepository {
  /** Creates or updates (document must be JSON text; validated elsewhere) and appends history. */
  put(name: string, documentJson: string): Promise<ProfilePutResult>;
  get(name: string): Promise<ProfileRecord | undefined>;
  /** All profiles by name, with their device counts. */
  list(): Promise<ProfileSummary[]>;
  /** Refused with `in_use` while devices use it; `not_found` if unknown. Returns the history version. */
  delete(name: string): Promise<number>;
  /** Oldest first; empty for a name never stored. */
  history(name: string): Promise<ProfileHistoryEntry[]>;
}

// ---------------------------------------------------------------- devices

export type EnrolledBy = 'cli' | 'import' | 'zero-touch';

/** How a device authenticates to the bootstrap server (input form, secrets in clear). */
export type DeviceAuthInput =
  | { readonly kind: 'none' }
  | { readonly kind: 'psk'; readonly identity: Bytes; readonly key: Uint8Array }
  /** SubjectPublicKeyInfo DER (any valid encoding; stored normalized). */
  | { readonly kind: 'rpk'; readonly publicKey: Uint8Array }
  /** Certificate DER. */
  | { readonly kind: 'x509'; readonly certificate: Uint8Array };

/** How a device authenticates (output form: no secret). */
export type DeviceAuth =
  | { readonly kind: 'none' }
  | { readonly kind: 'psk'; readonly identity: Buffer }
  | { readonly kind: 'rpk'; readonly publicKey: Buffer }
  | {
      readonly kind: 'x509';
      readonly certificate: Buffer;
      /** Subject common name, if the certificate has one. */
      readonly subjectCn: string | null;
      /** subjectAltName entries as `TYPE:value` (e.g. `DNS:dev1.example`, `URI:urn:dev:1`). */
      readonly subjectAltNames: readonly string[];
    };

export interface NewDevice {
  readonly endpoint: Bytes;
  readonly profile: string;
  /** Default `{ kind: 'none' }`: the device bootstraps over plain CoAP. */
  readonly auth?: DeviceAuthInput;
  /** Default `cli` for `add`, `import` for `addMany`. */
  readonly enrolledBy?: EnrolledBy;
}

export interface DeviceRecord {
  readonly endpoint: Buffer;
  readonly profile: string;
  readonly auth: DeviceAuth;
  readonly enrolledBy: EnrolledBy;
  readonly createdAt: number;
}

export interface DeviceListOptions {
  readonly profile?: string;
  /** Default: no limit. */
  readonly limit?: number;
  readonly offset?: number;
}

export interface AddManyOptions {
  /** Called synchronously every `progressEvery` rows (default 500) and at the end. */
  readonly onProgress?: (done: number, total: number) => void;
  readonly progressEvery?: number;
}

export interface DeviceRepository {
  /** `duplicate` naming the field (endpoint, pskIdentity, rpkPublicKey, x509Certificate); `not_found` for an unknown profile. */
  add(device: NewDevice): Promise<DeviceRecord>;
  /** All or nothing, in one transaction; errors carry the failing item's `index`. Returns the count. */
  addMany(devices: readonly NewDevice[], options?: AddManyOptions): Promise<number>;
  get(endpoint: Bytes): Promise<DeviceRecord | undefined>;
  /** For the DTLS layer: the device and its decrypted bootstrap PSK key. */
  findByPskIdentity(identity: Bytes): Promise<{ device: DeviceRecord; key: Buffer } | undefined>;
  /** By SubjectPublicKeyInfo DER (normalized before lookup). */
  findByRpk(publicKey: Uint8Array): Promise<DeviceRecord | undefined>;
  /** By exact certificate DER. */
  findByCertificate(certificate: Uint8Array): Promise<DeviceRecord | undefined>;
  /** x509 devices whose certificate has this subject CN or subjectAltName value (`TYPE:value` or bare value). */
  findByCertificateName(name: string): Promise<DeviceRecord[]>;
  /** Sorted by endpoint bytes. */
  list(options?: DeviceListOptions): Promise<DeviceRecord[]>;
  count(options?: { readonly profile?: string }): Promise<number>;
  /** The decrypted bootstrap PSK key (CLI `--show-secrets`); undefined if not a PSK device. */
  revealPskKey(endpoint: Bytes): Promise<Buffer | undefined>;
  /**
   * Replaces how the device authenticates to the bootstrap server (after a session wrote it a new
   * bootstrap account with generated credentials). `duplicate` / `not_found` as for `add`.
   */
  setAuth(endpoint: Bytes, auth: DeviceAuthInput): Promise<DeviceRecord>;
  /** Removes the device and its credentials (sessions are kept). `not_found` if unknown. */
  remove(endpoint: Bytes): Promise<void>;
}

// ---------------------------------------------------------------- credentials

export type SecurityMode = 'psk' | 'rpk' | 'x509' | 'nosec';
export type CredentialStatus = 'pending' | 'active' | 'retired';

export interface NewCredential {
  readonly endpoint: Bytes;
  readonly shortServerId: number;
  readonly serverUri: string;
  readonly mode: SecurityMode;
  /** psk: both required. */
  readonly pskIdentity?: Bytes;
  readonly pskKey?: Uint8Array;
  /** rpk: client SubjectPublicKeyInfo DER (required); x509: client certificate DER (required). */
  readonly publicKey?: Uint8Array;
  /** rpk/x509: client private key, PKCS#8 DER (optional: the device may hold its own). */
  readonly privateKey?: Uint8Array;
  /** rpk: server SubjectPublicKeyInfo DER; x509: server certificate DER. */
  readonly serverPublicKey?: Uint8Array;
  /** The bootstrap session that generated it (must exist). */
  readonly sessionId?: string;
}

export interface CredentialRecord {
  readonly id: number;
  readonly endpoint: Buffer;
  readonly shortServerId: number;
  readonly serverUri: string;
  readonly mode: SecurityMode;
  readonly pskIdentity: Buffer | null;
  readonly hasPskKey: boolean;
  readonly publicKey: Buffer | null;
  readonly hasPrivateKey: boolean;
  readonly serverPublicKey: Buffer | null;
  readonly status: CredentialStatus;
  readonly createdAt: number;
  readonly activatedAt: number | null;
  readonly retiredAt: number | null;
  readonly sessionId: string | null;
}

export interface CredentialSecrets {
  readonly pskKey: Buffer | null;
  readonly privateKey: Buffer | null;
}

/** How the registration server knows the device: by `ep`, or by its DTLS identity. */
export type RegistrationLookup =
  | { readonly endpoint: Bytes }
  | { readonly pskIdentity: Bytes }
  | { readonly publicKey: Uint8Array };

export interface RegistrationLookupOptions {
  /** Only credentials for these server URIs (the registration server's own public URIs). */
  readonly serverUris?: readonly string[];
  readonly shortServerId?: number;
}

export interface PromoteResult {
  readonly credential: CredentialRecord;
  /** How many other credentials of the device for the same short server ID were retired. */
  readonly retired: number;
}

export interface CredentialRepository {
  /**
   * Stores generated credentials as `pending` (call before the first Write that carries them).
   * A PSK identity or public key in use (non-retired) by another device for the same server URI
   * is refused with `duplicate`.
   */
  addPending(credential: NewCredential): Promise<CredentialRecord>;
  /** After Finish answered 2.04: the session's pending credentials become active. Returns the count. */
  activateForSession(sessionId: string): Promise<number>;
  /**
   * Retires the still-pending credentials a session generated. For a session the device itself
   * abandoned (cancelled by a new Bootstrap-Request): the new session hands out fresh ones. Not
   * for a session whose Finish went unanswered: the device may have applied them. Returns the count.
   */
  retirePendingForSession(sessionId: string): Promise<number>;
  /**
   * On the first Register with this credential: it becomes active (if pending) and the device's
   * other credentials for the same short server ID are retired, in one transaction. A retired
   * credential is refused (`invalid`).
   */
  promote(credentialId: number): Promise<PromoteResult>;
  /** Pending and active candidates; active first, newest first. */
  findForRegistration(by: RegistrationLookup, options?: RegistrationLookupOptions): Promise<CredentialRecord[]>;
  get(credentialId: number): Promise<CredentialRecord | undefined>;
  /** Newest first; retired ones only when asked. `not_found` for an unknown device. */
  listForDevice(endpoint: Bytes, options?: { readonly includeRetired?: boolean }): Promise<CredentialRecord[]>;
  /** The decrypted secret material of one credential. `not_found` if unknown. */
  revealSecrets(credentialId: number): Promise<CredentialSecrets>;
}

// ---------------------------------------------------------------- sessions

export type SessionSecurity = 'nosec' | 'psk' | 'rpk' | 'x509';
export type SessionOutcome = 'running' | 'success' | 'failure' | 'cancelled';

export interface NewSession {
  /** Default: 16 random hex digits. */
  readonly id?: string;
  /** Absent when the request named no endpoint (recorded refusals). */
  readonly endpoint?: Bytes;
  /** `address:port` of the client. */
  readonly peer: string;
  readonly security: SessionSecurity;
  readonly profile?: string;
  readonly lwm2mVersion?: string;
  /** `pct=` of the Bootstrap-Request. */
  readonly preferredFormat?: number;
  /** Content format chosen for the writes. */
  readonly contentFormat?: number;
  /** Default: now. */
  readonly startedAt?: number;
}

export interface SessionUpdate {
  readonly profile?: string;
  readonly lwm2mVersion?: string;
  readonly contentFormat?: number;
}

export interface SessionRecord {
  readonly id: string;
  readonly endpoint: Buffer | null;
  readonly peer: string;
  readonly security: SessionSecurity;
  readonly profile: string | null;
  readonly lwm2mVersion: string | null;
  readonly preferredFormat: number | null;
  readonly contentFormat: number | null;
  readonly startedAt: number;
  readonly endedAt: number | null;
  readonly outcome: SessionOutcome;
  readonly failureCause: string | null;
  readonly failureDetail: string | null;
  /** Number of recorded requests. */
  readonly requestCount: number;
}

/** One request sent to the device. There is deliberately no payload field: it carries secrets. */
export interface NewSessionRequest {
  /** Operation, e.g. `DISCOVER`, `READ`, `WRITE`, `DELETE`, `FINISH`, `PACK`. */
  readonly method: string;
  readonly path: string;
  readonly contentFormat?: number;
  readonly payloadSize: number;
  /** `2.04` etc.; absent when no answer came. */
  readonly responseCode?: string;
  readonly responseSize?: number;
  /** Default: now. */
  readonly startedAt?: number;
  readonly durationMs?: number;
  /** Short description of a transport failure, e.g. `timeout`. */
  readonly error?: string;
}

export interface SessionRequestRecord {
  readonly seq: number;
  readonly method: string;
  readonly path: string;
  readonly contentFormat: number | null;
  readonly payloadSize: number;
  readonly responseCode: string | null;
  readonly responseSize: number | null;
  readonly startedAt: number;
  readonly durationMs: number | null;
  readonly error: string | null;
}

export interface SessionDetail extends SessionRecord {
  readonly requests: readonly SessionRequestRecord[];
}

export interface SessionListOptions {
  readonly endpoint?: Bytes;
  readonly outcome?: SessionOutcome;
  /** Default 100. */
  readonly limit?: number;
  readonly offset?: number;
}

export interface SessionRepository {
  start(session: NewSession): Promise<SessionRecord>;
  update(id: string, patch: SessionUpdate): Promise<void>;
  /** Appends a request record; returns its sequence number (1, 2, ...). */
  addRequest(sessionId: string, request: NewSessionRequest): Promise<number>;
  /**
   * Ends a running session. Returns false (changing nothing) if it had already ended, so a
   * timeout racing a cancellation cannot overwrite the first outcome. `not_found` if unknown.
   */
  finish(id: string, outcome: Exclude<SessionOutcome, 'running'>, cause?: string, detail?: string): Promise<boolean>;
  get(id: string): Promise<SessionDetail | undefined>;
  /** Newest first. */
  list(options?: SessionListOptions): Promise<SessionRecord[]>;
  /**
   * At server start: sessions still `running` that started before `before` (default now) were
   * cut off by the previous process; they become `failure` with cause `interrupted`. Returns the
   * count. Only the bootstrap server calls this, never the CLI (a server may be running).
   */
  markInterrupted(before?: number): Promise<number>;
  /** Deletes ended sessions (and their requests) that started before `before`. Returns the count. */
  prune(before: number): Promise<number>;
}

// ---------------------------------------------------------------- server keys

/** A key pair of the server itself (input form; the private key in clear). */
export interface ServerKeyPairInput {
  /** SubjectPublicKeyInfo DER (any valid encoding; stored normalized). */
  readonly publicKey: Uint8Array;
  /** PKCS#8 DER; must belong to `publicKey`. */
  readonly privateKey: Uint8Array;
}

/** A server key pair as listed: never the private key. */
export interface ServerKeyRecord {
  /** The role, e.g. `registration`. */
  readonly name: string;
  /** SubjectPublicKeyInfo DER, normalized (an EC point uncompressed). */
  readonly publicKey: Buffer;
  /** When this pair was stored (a rotation sets it anew). */
  readonly createdAt: number;
}

export interface ServerKeyRepository {
  /**
   * The pair named `name`, created with `generate()` when there is none yet (`created: true`).
   * Race-safe across processes: when two create at once, both get the one that was stored first
   * (the other's `generate()` result is dropped). The store does not generate keys itself;
   * pass e.g. a wrapper of `generateRpkKeyPair` (bootstrap/credentials.ts).
   */
  getOrCreate(name: string, generate: () => ServerKeyPairInput): Promise<ServerKeyRecord & { readonly created: boolean }>;
  get(name: string): Promise<ServerKeyRecord | undefined>;
  /** Sorted by name. */
  list(): Promise<ServerKeyRecord[]>;
  /** The decrypted PKCS#8 DER private key (for the DTLS server, or `--show-secrets`); undefined if unknown. */
  revealPrivateKey(name: string): Promise<Buffer | undefined>;
  /**
   * Rotation: replaces the pair of an existing name (`not_found` otherwise) and returns the new
   * record. Devices holding the old public key must be bootstrapped again.
   */
  replace(name: string, pair: ServerKeyPairInput): Promise<ServerKeyRecord>;
}

// ---------------------------------------------------------------- registry

/** How a registered client authenticated: `nosec` over plain CoAP, else the kind of its DTLS identity. */
export type RegistrationSecurity = 'nosec' | 'psk' | 'rpk' | 'x509';

/** One object a client announced in its Register/Update payload. */
export interface RegisteredObjectEntry {
  readonly id: number;
  /** `ver=` of the object link, when the client sent one. */
  readonly version?: string;
  /** Instance IDs, ascending; empty for an object listed without instances (`</5>`). */
  readonly instances: readonly number[];
}

export interface NewRegistration {
  /** Default: 11 random URL-safe characters (64 bits). The Location-Path is `rd/{id}`. */
  readonly id?: string;
  readonly endpoint: Bytes;
  /**
   * The credential the client registered with (the hand-off). In the same transaction it is
   * promoted: active if it was pending, and the device's other credentials for the same short
   * server ID are retired (as `credentials.promote`). Refused (`invalid`) if it is retired or
   * belongs to another endpoint, `not_found` if unknown. Absent: nothing is promoted.
   */
  readonly credentialId?: number;
  /** Where requests to the client go (the source of the Register). */
  readonly address: string;
  readonly port: number;
  readonly security: RegistrationSecurity;
  /** The DTLS identity: PSK identity, SubjectPublicKeyInfo DER, or certificate DER; absent for nosec. */
  readonly identity?: Uint8Array;
  /** Enabler version, `1.0`, `1.1`, `1.2`. */
  readonly lwm2mVersion: string;
  readonly binding: string;
  readonly queueMode: boolean;
  readonly sms?: string;
  /** Seconds; 0 = the registration never expires (LwM2M 1.2). */
  readonly lifetime: number;
  /** `/` (default) or the alternate root path (`/lwm2m`). */
  readonly rootPath?: string;
  /** `ct` of the root link; absent when the client announced none. */
  readonly contentFormats?: readonly number[];
  readonly objects: readonly RegisteredObjectEntry[];
  /** `pid` values (LwM2M 1.2), recorded as sent. */
  readonly profileIds?: readonly string[];
  /** Query parameters the server does not know, kept as sent (Leshan's "additional attributes"). */
  readonly attributes?: Readonly<Record<string, string>>;
  /** Free text for the `register` event (e.g. what was defaulted). */
  readonly detail?: string;
}

export interface RegistrationRecord {
  readonly id: string;
  readonly endpoint: Buffer;
  readonly credentialId: number | null;
  readonly address: string;
  readonly port: number;
  readonly security: RegistrationSecurity;
  readonly identity: Buffer | null;
  readonly lwm2mVersion: string;
  readonly binding: string;
  readonly queueMode: boolean;
  readonly sms: string | null;
  /** Seconds; 0 = never expires. */
  readonly lifetime: number;
  readonly rootPath: string;
  readonly contentFormats: readonly number[] | null;
  /** In the order the client listed them. */
  readonly objects: readonly RegisteredObjectEntry[];
  readonly profileIds: readonly string[] | null;
  readonly attributes: Readonly<Record<string, string>>;
  readonly registeredAt: number;
  /** Last Register or Update. */
  readonly updatedAt: number;
  /** `updatedAt + lifetime`; null when the lifetime is 0. */
  readonly expiresAt: number | null;
}

/** What an Update changes; every Update also moves `updatedAt` to now and recomputes `expiresAt`. */
export interface RegistrationPatch {
  /** The address the Update came from (it changes when the client moved). */
  readonly address?: string;
  readonly port?: number;
  readonly lifetime?: number;
  readonly binding?: string;
  readonly queueMode?: boolean;
  readonly sms?: string | null;
  readonly rootPath?: string;
  readonly contentFormats?: readonly number[] | null;
  readonly objects?: readonly RegisteredObjectEntry[];
  readonly profileIds?: readonly string[] | null;
  /** Merged into the stored ones. */
  readonly attributes?: Readonly<Record<string, string>>;
  /** Free text for the `update` event. */
  readonly detail?: string;
  /**
   * false: the lifetime is not renewed (updatedAt and expiresAt stay) - the client did not send
   * an Update; only its DTLS session moved to a new address (RFC 9146). Default true.
   */
  readonly renew?: boolean;
}

export interface RegisterResult {
  readonly registration: RegistrationRecord;
  /** The endpoint's previous registration, removed by this one (event `replace`). */
  readonly replaced?: RegistrationRecord;
  /** Set when `credentialId` was given. */
  readonly promoted?: {
    readonly credentialId: number;
    /** True when the credential was pending and became active now. */
    readonly activated: boolean;
    /** How many other credentials of the device for the same short server ID were retired. */
    readonly retired: number;
  };
}

export type RegistrationEventKind = 'register' | 'update' | 'deregister' | 'expire' | 'replace' | 'refused';

export interface NewRegistrationEvent {
  readonly kind: RegistrationEventKind;
  /** Absent when the request named no endpoint (a refused request). */
  readonly endpoint?: Bytes;
  readonly registrationId?: string;
  /** `address:port` of the client. */
  readonly peer?: string;
  /** Free text (clipped to 1000 characters); never a secret. */
  readonly detail?: string;
  /** Default: now. */
  readonly at?: number;
}

export interface RegistrationEventRecord {
  /** Increasing: the order events happened in. */
  readonly seq: number;
  readonly kind: RegistrationEventKind;
  readonly endpoint: Buffer | null;
  readonly registrationId: string | null;
  readonly peer: string | null;
  readonly detail: string | null;
  readonly at: number;
}

export interface RegistrationListOptions {
  readonly security?: RegistrationSecurity;
  /** Default: no limit. */
  readonly limit?: number;
  readonly offset?: number;
}

export interface RegistryRepository {
  /**
   * Stores a registration in one transaction: the endpoint's previous registration, if any, is
   * removed (event `replace`), the credential is promoted (see `NewRegistration.credentialId`),
   * the new row is inserted (event `register`). `invalid` names a bad field; `duplicate` for an
   * explicit `id` already in use.
   */
  register(registration: NewRegistration): Promise<RegisterResult>;
  /** Applies an Update (event `update`); undefined when there is no registration `id`. */
  update(id: string, patch?: RegistrationPatch): Promise<RegistrationRecord | undefined>;
  /** De-register: removes it (event `deregister`) and returns it; undefined if unknown. */
  deregister(id: string, options?: { readonly peer?: string; readonly detail?: string }): Promise<RegistrationRecord | undefined>;
  get(id: string): Promise<RegistrationRecord | undefined>;
  getByEndpoint(endpoint: Bytes): Promise<RegistrationRecord | undefined>;
  /** Sorted by endpoint bytes. */
  list(options?: RegistrationListOptions): Promise<RegistrationRecord[]>;
  count(): Promise<number>;
  /**
   * Removes up to `limit` (default 500) registrations with `expiresAt <= now`, earliest first,
   * each with an `expire` event, in one transaction; returns them. Walks the expiry index only.
   */
  expireDue(now: number, limit?: number): Promise<RegistrationRecord[]>;
  /** The earliest `expiresAt` of all registrations, undefined when none expires. */
  nextExpiry(): Promise<number | undefined>;
  /** Records an event that changes no registration (a refused request). Returns its `seq`. */
  recordEvent(event: NewRegistrationEvent): Promise<number>;
  /** Newest first: the endpoint's events, or everybody's when `endpoint` is undefined. Default limit 100. */
  events(endpoint?: Bytes, limit?: number): Promise<RegistrationEventRecord[]>;
  /** Deletes events older than `before`. Returns the count. */
  pruneEvents(before: number): Promise<number>;
}

// ---------------------------------------------------------------- the facade

export interface Store {
  readonly profiles: ProfileRepository;
  readonly devices: DeviceRepository;
  readonly credentials: CredentialRepository;
  readonly sessions: SessionRepository;
  readonly serverKeys: ServerKeyRepository;
  /** The registration server's registry (registrations and their events). */
  readonly registry: RegistryRepository;
  /** Device management data: observations and the devices' latest values (device-data.ts). */
  readonly deviceData: DeviceDataRepository;
  /** Where the data lives (for messages). */
  readonly location: string;
  close(): Promise<void>;
}
