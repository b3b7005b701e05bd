/**
 * The registration server's registry (registration.md §2–§5): one row per registered endpoint
 * and the history of what happened to it (Register, Update, De-register, expiry, replacement,
 * refused requests).
 *
 * - `register` replaces the endpoint's previous registration and promotes the credential the
 *   client registered with, in one IMMEDIATE transaction: nothing is half done if the process
 *   dies, and two servers (or a CLI) on the same database never interleave.
 * - Expiry is driven by the caller (registration/expiry.ts): `nextExpiry` and `expireDue` walk
 *   the partial index on `expires_at` only, so a timer armed for the next expiry costs one
 *   index probe however large the registry is.
 * - Times come from the store clock (`now`), except `expireDue(now)`, which the caller passes
 *   (the expiry timer's clock, minus any grace period).
 */
import { randomBytes } from 'node:crypto';
import type { Statement } from 'better-sqlite3';
import { formatPeer } from '../coap/endpoint.js';
import { describeBytes, toBytes } from '../util/bytes.js';
import type { StoreContext } from './context.js';
import { paging } from './context.js';
import { GroupCommit } from './group-commit.js';
import { sqliteCode, StoreError } from './errors.js';
import { endpointBytes, MAX_IDENTITY_LEN } from './material.js';
import type {
  PromoteResult,
  Bytes,
  NewRegistration,
  NewRegistrationEvent,
  RegisteredObjectEntry,
  RegisterResult,
  RegistrationEventKind,
  RegistrationEventRecord,
  RegistrationListOptions,
  RegistrationPatch,
  RegistrationRecord,
  RegistrationSecurity,
  RegistryRepository,
} from './types.js';

const SECURITIES: readonly RegistrationSecurity[] = ['nosec', 'psk', 'rpk', 'x509'];
const EVENT_KINDS: readonly RegistrationEventKind[] = ['register', 'update', 'deregister', 'expire', 'replace', 'refused'];
/** Registration ids: URL-safe, short enough for a Uri-Path option and a log line. */
const ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
/** Lifetimes beyond an unsigned 32-bit number of seconds (136 years) are nonsense. */
export const MAX_LIFETIME = 0xffff_ffff;
const MAX_DETAIL = 1000;
const MAX_ID = 65534;
export const DEFAULT_EXPIRY_BATCH = 500;

/** A fresh registration id: 64 random bits as 11 base64url characters. */
export function newRegistrationId(): string {
  return randomToken(8).toString('base64url');
}

const RANDOM_POOL = 4096;
let randomPool = Buffer.alloc(0);
let randomUsed = 0;

/**
 * `n` fresh random bytes (n ≤ 256) from the CSPRNG, drawn 4 KiB at a time: one randomBytes call
 * costs ~10 µs whatever its size, and a storm takes one id per Register and per bootstrap
 * session. For identifiers, not for keys (the pool's bytes stay in memory until used).
 */
export function randomToken(n: number): Buffer {
  if (n > 256) return randomBytes(n);
  if (randomUsed + n > randomPool.length) {
    randomPool = randomBytes(RANDOM_POOL);
    randomUsed = 0;
  }
  const out = randomPool.subarray(randomUsed, randomUsed + n);
  randomUsed += n;
  return out;
}

/** True for a string that can be a registration id (so a Uri-Path segment that cannot is a 4.04 without a lookup). */
export function isRegistrationId(s: string): boolean {
  return ID_PATTERN.test(s);
}

interface RegistrationRow {
  id: string;
  endpoint: Buffer;
  credential_id: number | null;
  address: string;
  port: number;
  security: RegistrationSecurity;
  identity: Buffer | null;
  lwm2m_version: string;
  binding: string;
  queue_mode: number;
  sms: string | null;
  lifetime: number;
  root_path: string;
  content_formats: string | null;
  objects: string;
  profile_ids: string | null;
  attributes: string | null;
  registered_at: number;
  updated_at: number;
  expires_at: number | null;
}

interface EventRow {
  id: number;
  kind: RegistrationEventKind;
  endpoint: Buffer | null;
  registration_id: string | null;
  peer: string | null;
  detail: string | null;
  at: number;
}

const COLUMNS = `id, endpoint, credential_id, address, port, security, identity, lwm2m_version, binding, queue_mode, sms, lifetime,
  root_path, content_formats, objects, profile_ids, attributes, registered_at, updated_at, expires_at`;
const SELECT = `SELECT ${COLUMNS} FROM registrations`;

type RowParams = [
  id: string,
  endpoint: Buffer,
  credentialId: number | null,
  address: string,
  port: number,
  security: RegistrationSecurity,
  identity: Buffer | null,
  lwm2mVersion: string,
  binding: string,
  queueMode: number,
  sms: string | null,
  lifetime: number,
  rootPath: string,
  contentFormats: string | null,
  objects: string,
  profileIds: string | null,
  attributes: string | null,
  registeredAt: number,
  updatedAt: number,
  expiresAt: number | null,
];

function toRecord(r: RegistrationRow): RegistrationRecord {
  return {
    id: r.id,
    endpoint: r.endpoint,
    credentialId: r.credential_id,
    address: r.address,
    port: r.port,
    security: r.security,
    identity: r.identity,
    lwm2mVersion: r.lwm2m_version,
    binding: r.binding,
    queueMode: r.queue_mode === 1,
    sms: r.sms,
    lifetime: r.lifetime,
    rootPath: r.root_path,
    contentFormats: r.content_formats === null ? null : (JSON.parse(r.content_formats) as number[]),
    objects: JSON.parse(r.objects) as RegisteredObjectEntry[],
    profileIds: r.profile_ids === null ? null : (JSON.parse(r.profile_ids) as string[]),
    attributes: r.attributes === null ? {} : (JSON.parse(r.attributes) as Record<string, string>),
    registeredAt: r.registered_at,
    updatedAt: r.updated_at,
    expiresAt: r.expires_at,
  };
}

function toParams(r: RegistrationRecord): RowParams {
  const attrs = Object.keys(r.attributes).length === 0 ? null : JSON.stringify(r.attributes);
  return [
    r.id,
    r.endpoint,
    r.credentialId,
    r.address,
    r.port,
    r.security,
    r.identity,
    r.lwm2mVersion,
    r.binding,
    r.queueMode ? 1 : 0,
    r.sms,
    r.lifetime,
    r.rootPath,
    r.contentFormats === null ? null : JSON.stringify(r.contentFormats),
    JSON.stringify(r.objects),
    r.profileIds === null ? null : JSON.stringify(r.profileIds),
    attrs,
    r.registeredAt,
    r.updatedAt,
    r.expiresAt,
  ];
}

type UpdateParams = [
  address: string,
  port: number,
  binding: string,
  queueMode: number,
  sms: string | null,
  lifetime: number,
  rootPath: string,
  contentFormats: string | null,
  objects: string,
  profileIds: string | null,
  attributes: string | null,
  updatedAt: number,
  expiresAt: number | null,
  id: string,
];

const toEvent = (r: EventRow): RegistrationEventRecord => ({
  seq: r.id,
  kind: r.kind,
  endpoint: r.endpoint,
  registrationId: r.registration_id,
  peer: r.peer,
  detail: r.detail,
  at: r.at,
});

// ---- validation (messages name the field; the server has checked the wire input already) ----

function invalid(field: string, message: string): never {
  throw new StoreError('invalid', `${field} ${message}`, field);
}

function text(field: string, v: unknown, max: number): string {
  if (typeof v !== 'string' || v === '') invalid(field, 'must be a non-empty string');
  if (v.length > max) invalid(field, `is longer than ${max} characters`);
  return v;
}

function checkId(v: unknown): string {
  if (typeof v !== 'string' || !ID_PATTERN.test(v)) invalid('id', `must be 1..64 characters A-Z a-z 0-9 _ -, got ${JSON.stringify(v)}`);
  return v;
}

function checkPort(v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 65535) invalid('port', `must be an integer in 0..65535, got ${String(v)}`);
  return v;
}

function checkLifetime(v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > MAX_LIFETIME) invalid('lifetime', `must be an integer number of seconds in 0..${MAX_LIFETIME}, got ${String(v)}`);
  return v;
}

function checkRootPath(v: unknown): string {
  if (typeof v !== 'string' || !v.startsWith('/') || v.length > 255) invalid('rootPath', `must be "/" or an absolute path, got ${JSON.stringify(v)}`);
  return v;
}

function checkFormats(v: readonly number[] | null | undefined): number[] | null {
  if (v === undefined || v === null) return null;
  if (!Array.isArray(v)) invalid('contentFormats', 'must be an array of Content-Format numbers');
  for (const cf of v) if (!Number.isInteger(cf) || cf < 0 || cf > 0xffff) invalid('contentFormats', `must hold Content-Format numbers 0..65535, got ${String(cf)}`);
  return [...v];
}

function checkObjects(v: readonly RegisteredObjectEntry[]): RegisteredObjectEntry[] {
  if (!Array.isArray(v)) invalid('objects', 'must be an array');
  const seen = new Set<number>();
  return v.map((o, i) => {
    const at = `objects[${i}]`;
    if (!Number.isInteger(o.id) || o.id < 0 || o.id > MAX_ID) invalid(at, `id must be an object ID in 0..${MAX_ID}, got ${String(o.id)}`);
    if (seen.has(o.id)) invalid(at, `lists object ${o.id} a second time`);
    seen.add(o.id);
    if (!Array.isArray(o.instances)) invalid(at, 'instances must be an array');
    for (const iid of o.instances) if (!Number.isInteger(iid) || iid < 0 || iid > MAX_ID) invalid(at, `instance IDs must be in 0..${MAX_ID}, got ${String(iid)}`);
    if (o.version !== undefined) text(`${at}.version`, o.version, 32);
    return o.version === undefined ? { id: o.id, instances: [...o.instances] } : { id: o.id, version: o.version, instances: [...o.instances] };
  });
}

function checkStrings(field: string, v: readonly string[] | null | undefined): string[] | null {
  if (v === undefined || v === null) return null;
  if (!Array.isArray(v)) invalid(field, 'must be an array of strings');
  for (const s of v) text(field, s, 255);
  return [...v];
}

function checkAttributes(v: Readonly<Record<string, string>> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (v === undefined) return out;
  for (const [k, val] of Object.entries(v)) {
    if (k === '' || typeof val !== 'string') invalid('attributes', 'must map non-empty names to strings');
    out[k] = val;
  }
  return out;
}

function checkSms(v: string | null | undefined): string | null {
  if (v === undefined || v === null) return null;
  return text('sms', v, 64);
}

function checkSecurity(security: unknown, identity: Uint8Array | undefined): { security: RegistrationSecurity; identity: Buffer | null } {
  if (!SECURITIES.includes(security as RegistrationSecurity)) invalid('security', `must be one of ${SECURITIES.join(', ')}, got ${JSON.stringify(security)}`);
  const s = security as RegistrationSecurity;
  if (s === 'nosec') {
    if (identity !== undefined) invalid('identity', 'is not used with security nosec');
    return { security: s, identity: null };
  }
  if (!(identity instanceof Uint8Array) || identity.length === 0) invalid('identity', `is required with security ${s}`);
  if (s === 'psk' && identity.length > MAX_IDENTITY_LEN) invalid('identity', `is longer than ${MAX_IDENTITY_LEN} bytes`);
  return { security: s, identity: Buffer.from(identity) };
}

function clip(v: string | undefined): string | null {
  if (v === undefined || v === '') return null;
  return v.length > MAX_DETAIL ? `${v.slice(0, MAX_DETAIL - 3)}...` : v;
}

function expiry(updatedAt: number, lifetime: number): number | null {
  return lifetime === 0 ? null : updatedAt + lifetime * 1000;
}

const iso = (t: number): string => new Date(t).toISOString();

type EventParams = [endpoint: Buffer | null, registrationId: string | null, kind: RegistrationEventKind, at: number, peer: string | null, detail: string | null];

interface CredentialRow {
  id: number;
  status: 'pending' | 'active' | 'retired';
  device_id: number;
  short_server_id: number;
  endpoint: Buffer;
}

export class SqliteRegistry implements RegistryRepository {
  readonly #ctx: StoreContext;
  readonly #get: Statement<[string], RegistrationRow>;
  readonly #byEndpoint: Statement<[Buffer], RegistrationRow>;
  readonly #list: Statement<[string | null, string | null, number, number], RegistrationRow>;
  readonly #count: Statement<[], { n: number }>;
  readonly #insert: Statement<RowParams>;
  readonly #updateRow: Statement<UpdateParams>;
  readonly #delete: Statement<[string]>;
  readonly #due: Statement<[number, number], RegistrationRow>;
  readonly #next: Statement<[], { expires_at: number }>;
  readonly #event: Statement<EventParams>;
  readonly #events: Statement<[number], EventRow>;
  readonly #eventsFor: Statement<[Buffer, number], EventRow>;
  readonly #prune: Statement<[number]>;
  readonly #credential: Statement<[number], CredentialRow>;
  readonly #promote: (credentialId: number, now: number) => PromoteResult;
  /** Registers and Updates are group-committed (group-commit.ts). */
  readonly #group: GroupCommit;
  readonly #registerOne: (r: RegistrationRecord, generatedId: boolean, detail: string | undefined) => RegisterResult;
  readonly #updateOne: (id: string, patch: RegistrationPatch) => RegistrationRecord | undefined;
  readonly #deregisterTx: (id: string, peer: string | undefined, detail: string | undefined) => RegistrationRecord | undefined;
  readonly #expireTx: (now: number, limit: number) => RegistrationRecord[];

  constructor(ctx: StoreContext, promote: (credentialId: number, now: number) => PromoteResult) {
    this.#promote = promote;
    this.#ctx = ctx;
    const db = ctx.db;
    this.#get = db.prepare(`${SELECT} WHERE id = ?`);
    this.#byEndpoint = db.prepare(`${SELECT} WHERE endpoint = ?`);
    this.#list = db.prepare(`${SELECT} WHERE (? IS NULL OR security = ?) ORDER BY endpoint LIMIT ? OFFSET ?`);
    this.#count = db.prepare('SELECT count(*) AS n FROM registrations');
    this.#insert = db.prepare(`INSERT INTO registrations (${COLUMNS}) VALUES (${Array(20).fill('?').join(', ')})`);
    // An Update: everything but the id, the endpoint, the credential and the identity may change.
    this.#updateRow = db.prepare(
      `UPDATE registrations SET address = ?, port = ?, binding = ?, queue_mode = ?, sms = ?, lifetime = ?, root_path = ?,
              content_formats = ?, objects = ?, profile_ids = ?, attributes = ?, updated_at = ?, expires_at = ?
        WHERE id = ?`,
    );
    this.#delete = db.prepare('DELETE FROM registrations WHERE id = ?');
    this.#due = db.prepare(`${SELECT} WHERE expires_at IS NOT NULL AND expires_at <= ? ORDER BY expires_at LIMIT ?`);
    this.#next = db.prepare('SELECT expires_at FROM registrations WHERE expires_at IS NOT NULL ORDER BY expires_at LIMIT 1');
    this.#event = db.prepare('INSERT INTO registration_events (endpoint, registration_id, kind, at, peer, detail) VALUES (?, ?, ?, ?, ?, ?)');
    this.#events = db.prepare('SELECT id, kind, endpoint, registration_id, peer, detail, at FROM registration_events ORDER BY id DESC LIMIT ?');
    this.#eventsFor = db.prepare('SELECT id, kind, endpoint, registration_id, peer, detail, at FROM registration_events WHERE endpoint = ? ORDER BY id DESC LIMIT ?');
    this.#prune = db.prepare('DELETE FROM registration_events WHERE at < ?');
    this.#credential = db.prepare(
      'SELECT c.id, c.status, c.device_id, c.short_server_id, d.endpoint FROM credentials c JOIN devices d ON d.id = c.device_id WHERE c.id = ?',
    );
    const registerTx = db.transaction((rec: RegistrationRecord, generatedId: boolean, detail: string | undefined): RegisterResult => {
      const at = rec.registeredAt;
      const peer = formatPeer(rec);
      let promoted: RegisterResult['promoted'];
      if (rec.credentialId !== null) {
        const c = this.#credential.get(rec.credentialId);
        if (!c) throw new StoreError('not_found', `credential ${rec.credentialId} does not exist`, 'credentialId');
        if (!c.endpoint.equals(rec.endpoint)) {
          throw new StoreError('invalid', `credential ${c.id} belongs to device ${describeBytes(c.endpoint)}, not ${describeBytes(rec.endpoint)}`, 'credentialId');
        }
        // credentials.promote's step, inside this transaction: the registration and the
        // credential change commit together or not at all. It refuses a retired credential.
        const { retired } = this.#promote(c.id, at);
        promoted = { credentialId: c.id, activated: c.status === 'pending', retired };
      }
      const old = this.#byEndpoint.get(rec.endpoint);
      let replaced: RegistrationRecord | undefined;
      if (old) {
        replaced = toRecord(old);
        this.#delete.run(old.id);
      }
      let row = rec;
      for (let attempt = 0; ; attempt++) {
        try {
          this.#insert.run(...toParams(row));
          break;
        } catch (e) {
          if (sqliteCode(e) !== 'SQLITE_CONSTRAINT_PRIMARYKEY') throw e;
          if (!generatedId || attempt >= 3) throw new StoreError('duplicate', `registration id ${JSON.stringify(row.id)} is already in use`, 'id');
          row = { ...row, id: newRegistrationId() };
        }
      }
      if (replaced) this.#event.run(rec.endpoint, replaced.id, 'replace', at, peer, clip(`replaced by a new Register (registration ${row.id})`));
      const notes = [
        detail,
        promoted ? `credential ${promoted.credentialId}${promoted.activated ? ' promoted from pending to active' : ''}${promoted.retired > 0 ? `, ${promoted.retired} older retired` : ''}` : undefined,
      ].filter((s): s is string => s !== undefined && s !== '');
      this.#event.run(rec.endpoint, row.id, 'register', at, peer, clip(notes.join('; ')));
      return { registration: row, ...(replaced ? { replaced } : {}), ...(promoted ? { promoted } : {}) };
    });
    this.#registerOne = registerTx;

    const updateTx = db.transaction((id: string, p: RegistrationPatch): RegistrationRecord | undefined => {
      const row = this.#get.get(id);
      if (!row) return undefined;
      const old = toRecord(row);
      const now = ctx.now();
      const lifetime = p.lifetime === undefined ? old.lifetime : checkLifetime(p.lifetime);
      const renew = p.renew !== false;
      const rec: RegistrationRecord = {
        ...old,
        address: p.address === undefined ? old.address : text('address', p.address, 255),
        port: p.port === undefined ? old.port : checkPort(p.port),
        lifetime,
        binding: p.binding === undefined ? old.binding : text('binding', p.binding, 16),
        queueMode: p.queueMode === undefined ? old.queueMode : p.queueMode === true,
        sms: p.sms === undefined ? old.sms : checkSms(p.sms),
        rootPath: p.rootPath === undefined ? old.rootPath : checkRootPath(p.rootPath),
        contentFormats: p.contentFormats === undefined ? old.contentFormats : checkFormats(p.contentFormats),
        objects: p.objects === undefined ? old.objects : checkObjects(p.objects),
        profileIds: p.profileIds === undefined ? old.profileIds : checkStrings('profileIds', p.profileIds),
        attributes: p.attributes === undefined ? old.attributes : { ...old.attributes, ...checkAttributes(p.attributes) },
        updatedAt: renew ? now : old.updatedAt,
        expiresAt: renew ? expiry(now, lifetime) : old.expiresAt,
      };
      const [, , , address, port, , , , binding, queueMode, sms, lt, rootPath, formats, objects, pids, attrs, , updatedAt, expiresAt] = toParams(rec);
      this.#updateRow.run(address, port, binding, queueMode, sms, lt, rootPath, formats, objects, pids, attrs, updatedAt, expiresAt, id);
      this.#event.run(rec.endpoint, id, 'update', now, formatPeer(rec), clip(p.detail));
      return rec;
    });
    this.#updateOne = updateTx;
    this.#group = GroupCommit.for(ctx);

    const deregisterTx = db.transaction((id: string, peer: string | undefined, detail: string | undefined): RegistrationRecord | undefined => {
      const row = this.#get.get(id);
      if (!row) return undefined;
      this.#delete.run(id);
      this.#event.run(row.endpoint, id, 'deregister', ctx.now(), peer ?? formatPeer(row), clip(detail));
      return toRecord(row);
    });
    this.#deregisterTx = (id, peer, detail) => deregisterTx.immediate(id, peer, detail);

    const expireTx = db.transaction((now: number, limit: number): RegistrationRecord[] => {
      const rows = this.#due.all(now, limit);
      const at = ctx.now();
      for (const r of rows) {
        this.#delete.run(r.id);
        this.#event.run(r.endpoint, r.id, 'expire', at, formatPeer(r), `lifetime ${r.lifetime} s; no Update since ${iso(r.updated_at)}; expired at ${iso(r.expires_at!)}`);
      }
      return rows.map(toRecord);
    });
    this.#expireTx = (now, limit) => expireTx.immediate(now, limit);
  }

  async register(r: NewRegistration): Promise<RegisterResult> {
    this.#ctx.check();
    const generatedId = r.id === undefined;
    const id = generatedId ? newRegistrationId() : checkId(r.id);
    const endpoint = endpointBytes(r.endpoint);
    if (r.credentialId !== undefined && (!Number.isInteger(r.credentialId) || r.credentialId < 1)) {
      invalid('credentialId', `must be a positive integer, got ${String(r.credentialId)}`);
    }
    const { security, identity } = checkSecurity(r.security, r.identity);
    const lifetime = checkLifetime(r.lifetime);
    const now = this.#ctx.now();
    const rec: RegistrationRecord = {
      id,
      endpoint,
      credentialId: r.credentialId ?? null,
      address: text('address', r.address, 255),
      port: checkPort(r.port),
      security,
      identity,
      lwm2mVersion: text('lwm2mVersion', r.lwm2mVersion, 16),
      binding: text('binding', r.binding, 16),
      queueMode: r.queueMode === true,
      sms: checkSms(r.sms),
      lifetime,
      rootPath: checkRootPath(r.rootPath ?? '/'),
      contentFormats: checkFormats(r.contentFormats),
      objects: checkObjects(r.objects),
      profileIds: checkStrings('profileIds', r.profileIds),
      attributes: checkAttributes(r.attributes),
      registeredAt: now,
      updatedAt: now,
      expiresAt: expiry(now, lifetime),
    };
    return this.#group.run(() => this.#registerOne(rec, generatedId, r.detail));
  }

  /** Group-committed with the other Registers and Updates of this turn (group-commit.ts). */
  async update(id: string, patch: RegistrationPatch = {}): Promise<RegistrationRecord | undefined> {
    this.#ctx.check();
    if (typeof id !== 'string' || !ID_PATTERN.test(id)) return undefined;
    return this.#group.run(() => this.#updateOne(id, patch));
  }

  async deregister(id: string, options: { readonly peer?: string; readonly detail?: string } = {}): Promise<RegistrationRecord | undefined> {
    this.#ctx.check();
    if (typeof id !== 'string' || !ID_PATTERN.test(id)) return undefined;
    return this.#deregisterTx(id, options.peer, options.detail);
  }

  async get(id: string): Promise<RegistrationRecord | undefined> {
    this.#ctx.check();
    if (typeof id !== 'string' || !ID_PATTERN.test(id)) return undefined;
    const row = this.#get.get(id);
    return row ? toRecord(row) : undefined;
  }

  async getByEndpoint(endpoint: Bytes): Promise<RegistrationRecord | undefined> {
    this.#ctx.check();
    const row = this.#byEndpoint.get(toBytes(endpoint));
    return row ? toRecord(row) : undefined;
  }

  async list(options: RegistrationListOptions = {}): Promise<RegistrationRecord[]> {
    this.#ctx.check();
    const { limit, offset } = paging(options.limit, options.offset, -1);
    const security = options.security ?? null;
    if (security !== null && !SECURITIES.includes(security)) invalid('security', `must be one of ${SECURITIES.join(', ')}, got ${JSON.stringify(security)}`);
    return this.#list.all(security, security, limit, offset).map(toRecord);
  }

  async count(): Promise<number> {
    this.#ctx.check();
    return this.#count.get()!.n;
  }

  async expireDue(now: number, limit: number = DEFAULT_EXPIRY_BATCH): Promise<RegistrationRecord[]> {
    this.#ctx.check();
    if (!Number.isFinite(now)) invalid('now', `must be a time in milliseconds, got ${String(now)}`);
    if (!Number.isInteger(limit) || limit < 1) invalid('limit', `must be a positive integer, got ${String(limit)}`);
    return this.#expireTx(now, limit);
  }

  async nextExpiry(): Promise<number | undefined> {
    this.#ctx.check();
    return this.#next.get()?.expires_at;
  }

  async recordEvent(e: NewRegistrationEvent): Promise<number> {
    this.#ctx.check();
    if (!EVENT_KINDS.includes(e.kind)) invalid('kind', `must be one of ${EVENT_KINDS.join(', ')}, got ${JSON.stringify(e.kind)}`);
    const endpoint = e.endpoint === undefined ? null : toBytes(e.endpoint);
    const registrationId = e.registrationId === undefined ? null : text('registrationId', e.registrationId, 255);
    const peer = e.peer === undefined ? null : text('peer', e.peer, 255);
    const at = e.at ?? this.#ctx.now();
    if (!Number.isInteger(at)) invalid('at', `must be an integer time in milliseconds, got ${String(at)}`);
    return Number(this.#event.run(endpoint, registrationId, e.kind, at, peer, clip(e.detail)).lastInsertRowid);
  }

  async events(endpoint?: Bytes, limit = 100): Promise<RegistrationEventRecord[]> {
    this.#ctx.check();
    const l = paging(limit, 0, 100).limit;
    const rows = endpoint === undefined ? this.#events.all(l) : this.#eventsFor.all(toBytes(endpoint), l);
    return rows.map(toEvent);
  }

  async pruneEvents(before: number): Promise<number> {
    this.#ctx.check();
    if (!Number.isFinite(before)) invalid('before', `must be a time in milliseconds, got ${String(before)}`);
    return this.#prune.run(before).changes;
  }
}
