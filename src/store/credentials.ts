/**
 * Per-device credentials for each LwM2M server (design.md, "The hand-off"):
 *   addPending (before the first Write) → activateForSession (Finish answered 2.04)
 *   → promote (first Register with it: the device's other credentials for that server retire).
 * The registration server accepts pending and active ones, since a Finish response can be lost.
 * PSK keys and private keys are sealed with the credential id and endpoint in their AAD.
 */
import type { Statement } from 'better-sqlite3';
import { describeBytes, toBytes } from '../util/bytes.js';
import type { StoreContext } from './context.js';
import { StoreError } from './errors.js';
import { GroupCommit } from './group-commit.js';
import { checkPkcs8, endpointBytes, fingerprint, normalizeSpki, parseCertificate, pskIdentityBytes, pskKeyBytes } from './material.js';
import { purpose } from './secrets.js';
import type {
  Bytes,
  CredentialRecord,
  CredentialRepository,
  CredentialSecrets,
  CredentialStatus,
  NewCredential,
  PromoteResult,
  RegistrationLookup,
  RegistrationLookupOptions,
  SecurityMode,
} from './types.js';

const MODES: readonly SecurityMode[] = ['psk', 'rpk', 'x509', 'nosec'];

/** AAD of a credential's secret: table, column, the row id (never reused: AUTOINCREMENT) and the endpoint. */
export function credentialPurpose(column: 'psk_key' | 'private_key', id: number, endpoint: Uint8Array): Buffer {
  return purpose('credentials', column, Buffer.concat([Buffer.from(`${id}|`, 'utf8'), endpoint]));
}

interface CredentialRow {
  id: number;
  endpoint: Buffer;
  short_server_id: number;
  server_uri: string;
  mode: SecurityMode;
  psk_identity: Buffer | null;
  has_psk_key: number;
  public_key: Buffer | null;
  has_private_key: number;
  server_public_key: Buffer | null;
  status: CredentialStatus;
  created_at: number;
  activated_at: number | null;
  retired_at: number | null;
  session_id: string | null;
  device_id: number;
}

// Selecting `x IS NOT NULL` rather than the sealed column itself: listing never even reads secrets.
const SELECT = `SELECT c.id, d.endpoint, c.short_server_id, c.server_uri, c.mode, c.psk_identity,
       c.psk_key_enc IS NOT NULL AS has_psk_key, c.public_key, c.private_key_enc IS NOT NULL AS has_private_key,
       c.server_public_key, c.status, c.created_at, c.activated_at, c.retired_at, c.session_id, c.device_id
  FROM credentials c JOIN devices d ON d.id = c.device_id`;

// Active before pending, then newest first.
const ORDER = "ORDER BY (c.status = 'active') DESC, c.id DESC";

const toCredential = (r: CredentialRow): CredentialRecord => ({
  id: r.id,
  endpoint: r.endpoint,
  shortServerId: r.short_server_id,
  serverUri: r.server_uri,
  mode: r.mode,
  pskIdentity: r.psk_identity,
  hasPskKey: r.has_psk_key === 1,
  publicKey: r.public_key,
  hasPrivateKey: r.has_private_key === 1,
  serverPublicKey: r.server_public_key,
  status: r.status,
  createdAt: r.created_at,
  activatedAt: r.activated_at,
  retiredAt: r.retired_at,
  sessionId: r.session_id,
});

type InsertParams = [
  id: number,
  deviceId: number,
  ssid: number,
  uri: string,
  mode: SecurityMode,
  pskIdentity: Buffer | null,
  pskKeyEnc: Buffer | null,
  publicKey: Buffer | null,
  privateKeyEnc: Buffer | null,
  serverPublicKey: Buffer | null,
  createdAt: number,
  sessionId: string | null,
];

interface Prepared {
  readonly endpoint: Buffer;
  readonly ssid: number;
  readonly uri: string;
  readonly mode: SecurityMode;
  readonly pskIdentity: Buffer | null;
  readonly pskKey: Buffer | null;
  readonly publicKey: Buffer | null;
  readonly privateKey: Buffer | null;
  readonly serverPublicKey: Buffer | null;
  readonly sessionId: string | null;
}

/** Mode/field combinations checked up front, so the message names the field. */
function prepare(c: NewCredential): Prepared {
  const endpoint = endpointBytes(c.endpoint);
  if (!Number.isInteger(c.shortServerId) || c.shortServerId < 1 || c.shortServerId > 65534) {
    throw new StoreError('invalid', `shortServerId must be an integer in 1..65534, got ${String(c.shortServerId)}`, 'shortServerId');
  }
  if (typeof c.serverUri !== 'string' || c.serverUri.trim() === '') throw new StoreError('invalid', 'serverUri must be a non-empty string', 'serverUri');
  if (!MODES.includes(c.mode)) throw new StoreError('invalid', `mode must be one of ${MODES.join(', ')}, got ${JSON.stringify(c.mode)}`, 'mode');
  const unused = (field: keyof NewCredential): void => {
    if (c[field] !== undefined) throw new StoreError('invalid', `${field} is not used with security mode ${c.mode}`, field);
  };
  let pskIdentity: Buffer | null = null;
  let pskKey: Buffer | null = null;
  let publicKey: Buffer | null = null;
  let privateKey: Buffer | null = null;
  let serverPublicKey: Buffer | null = null;
  switch (c.mode) {
    case 'nosec':
      (['pskIdentity', 'pskKey', 'publicKey', 'privateKey', 'serverPublicKey'] as const).forEach(unused);
      break;
    case 'psk':
      (['publicKey', 'privateKey', 'serverPublicKey'] as const).forEach(unused);
      if (c.pskIdentity === undefined) throw new StoreError('invalid', 'pskIdentity is required with security mode psk', 'pskIdentity');
      pskIdentity = pskIdentityBytes(c.pskIdentity);
      pskKey = pskKeyBytes(c.pskKey);
      break;
    case 'rpk':
      (['pskIdentity', 'pskKey'] as const).forEach(unused);
      if (c.publicKey === undefined) throw new StoreError('invalid', 'publicKey is required with security mode rpk', 'publicKey');
      publicKey = normalizeSpki(c.publicKey, 'publicKey');
      if (c.privateKey !== undefined) privateKey = checkPkcs8(c.privateKey, 'privateKey');
      if (c.serverPublicKey !== undefined) serverPublicKey = normalizeSpki(c.serverPublicKey, 'serverPublicKey');
      break;
    case 'x509':
      (['pskIdentity', 'pskKey'] as const).forEach(unused);
      if (c.publicKey === undefined) throw new StoreError('invalid', 'publicKey (the client certificate) is required with security mode x509', 'publicKey');
      publicKey = parseCertificate(c.publicKey, 'publicKey').der;
      if (c.privateKey !== undefined) privateKey = checkPkcs8(c.privateKey, 'privateKey');
      if (c.serverPublicKey !== undefined) serverPublicKey = parseCertificate(c.serverPublicKey, 'serverPublicKey').der;
      break;
  }
  if (c.sessionId !== undefined && (typeof c.sessionId !== 'string' || c.sessionId === '')) {
    throw new StoreError('invalid', 'sessionId must be a non-empty string', 'sessionId');
  }
  return { endpoint, ssid: c.shortServerId, uri: c.serverUri, mode: c.mode, pskIdentity, pskKey, publicKey, privateKey, serverPublicKey, sessionId: c.sessionId ?? null };
}

export class SqliteCredentials implements CredentialRepository {
  readonly #ctx: StoreContext;
  readonly #deviceId: Statement<[Buffer], { id: number }>;
  readonly #sessionExists: Statement<[string], { one: number }>;
  readonly #nextId: Statement<[], { id: number }>;
  readonly #insert: Statement<InsertParams>;
  readonly #pskOwner: Statement<[Buffer, string, number], { endpoint: Buffer }>;
  readonly #keyOwner: Statement<[Buffer, string, number], { endpoint: Buffer }>;
  readonly #get: Statement<[number], CredentialRow>;
  readonly #secrets: Statement<[number], { endpoint: Buffer; psk_key_enc: Buffer | null; private_key_enc: Buffer | null }>;
  readonly #activate: Statement<[number, string]>;
  readonly #retireSession: Statement<[number, string]>;
  readonly #makeActive: Statement<[number, number]>;
  readonly #retireOthers: Statement<[number, number, number, number]>;
  readonly #byEndpoint: Statement<[Buffer], CredentialRow>;
  readonly #byPskIdentity: Statement<[Buffer], CredentialRow>;
  readonly #byPublicKey: Statement<[Buffer], CredentialRow>;
  readonly #forDevice: Statement<[number], CredentialRow>;
  readonly #forDeviceAll: Statement<[number], CredentialRow>;
  readonly #addTx: (p: Prepared) => number;
  readonly #promoteTx: (id: number) => PromoteResult;

  constructor(ctx: StoreContext) {
    this.#ctx = ctx;
    const db = ctx.db;
    this.#deviceId = db.prepare('SELECT id FROM devices WHERE endpoint = ?');
    this.#sessionExists = db.prepare('SELECT 1 AS one FROM sessions WHERE id = ?');
    this.#nextId = db.prepare(
      "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'credentials'), 0), coalesce((SELECT max(id) FROM credentials), 0)) + 1 AS id",
    );
    this.#insert = db.prepare(
      `INSERT INTO credentials (id, device_id, short_server_id, server_uri, mode, psk_identity, psk_key_enc, public_key,
                                private_key_enc, server_public_key, status, created_at, session_id)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?)`,
    );
    this.#pskOwner = db.prepare(
      `SELECT d.endpoint FROM credentials c JOIN devices d ON d.id = c.device_id
        WHERE c.psk_identity = ? AND c.status <> 'retired' AND c.server_uri = ? AND c.device_id <> ? LIMIT 1`,
    );
    this.#keyOwner = db.prepare(
      `SELECT d.endpoint FROM credentials c JOIN devices d ON d.id = c.device_id
        WHERE c.public_key = ? AND c.status <> 'retired' AND c.server_uri = ? AND c.device_id <> ? LIMIT 1`,
    );
    this.#get = db.prepare(`${SELECT} WHERE c.id = ?`);
    this.#secrets = db.prepare('SELECT d.endpoint, c.psk_key_enc, c.private_key_enc FROM credentials c JOIN devices d ON d.id = c.device_id WHERE c.id = ?');
    this.#activate = db.prepare("UPDATE credentials SET status = 'active', activated_at = ? WHERE session_id = ? AND status = 'pending'");
    this.#retireSession = db.prepare("UPDATE credentials SET status = 'retired', retired_at = ? WHERE session_id = ? AND status = 'pending'");
    this.#makeActive = db.prepare("UPDATE credentials SET status = 'active', activated_at = coalesce(activated_at, ?) WHERE id = ?");
    this.#retireOthers = db.prepare(
      `UPDATE credentials SET status = 'retired', retired_at = ?
        WHERE device_id = ? AND short_server_id = ? AND id <> ? AND status <> 'retired'`,
    );
    this.#byEndpoint = db.prepare(`${SELECT} WHERE d.endpoint = ? AND c.status <> 'retired' ${ORDER}`);
    this.#byPskIdentity = db.prepare(`${SELECT} WHERE c.psk_identity = ? AND c.status <> 'retired' ${ORDER}`);
    this.#byPublicKey = db.prepare(`${SELECT} WHERE c.public_key = ? AND c.status <> 'retired' ${ORDER}`);
    this.#forDevice = db.prepare(`${SELECT} WHERE c.device_id = ? AND c.status <> 'retired' ORDER BY c.id DESC`);
    this.#forDeviceAll = db.prepare(`${SELECT} WHERE c.device_id = ? ORDER BY c.id DESC`);

    const addTx = db.transaction((p: Prepared): number => {
      const device = this.#deviceId.get(p.endpoint);
      if (!device) throw new StoreError('not_found', `device ${describeBytes(p.endpoint)} is not enrolled`, 'endpoint');
      if (p.sessionId !== null && !this.#sessionExists.get(p.sessionId)) {
        throw new StoreError('not_found', `bootstrap session ${JSON.stringify(p.sessionId)} does not exist`, 'sessionId');
      }
      // One identity / key must lead the registration server to exactly one device.
      if (p.pskIdentity) {
        const other = this.#pskOwner.get(p.pskIdentity, p.uri, device.id);
        if (other) {
          throw new StoreError(
            'duplicate',
            `PSK identity ${describeBytes(p.pskIdentity)} for ${p.uri} is already held by device ${describeBytes(other.endpoint)}`,
            'pskIdentity',
          );
        }
      }
      if (p.publicKey) {
        const other = this.#keyOwner.get(p.publicKey, p.uri, device.id);
        if (other) {
          throw new StoreError('duplicate', `public key ${fingerprint(p.publicKey)} for ${p.uri} is already held by device ${describeBytes(other.endpoint)}`, 'publicKey');
        }
      }
      // The id is chosen before the insert because it is part of the secrets' AAD; the IMMEDIATE
      // transaction holds the write lock, so no other process can take the same id meanwhile.
      const id = this.#nextId.get()!.id;
      const box = ctx.box;
      const pskKeyEnc = p.pskKey ? box.seal(p.pskKey, credentialPurpose('psk_key', id, p.endpoint)) : null;
      const privateKeyEnc = p.privateKey ? box.seal(p.privateKey, credentialPurpose('private_key', id, p.endpoint)) : null;
      this.#insert.run(id, device.id, p.ssid, p.uri, p.mode, p.pskIdentity, pskKeyEnc, p.publicKey, privateKeyEnc, p.serverPublicKey, ctx.now(), p.sessionId);
      return id;
    });
    this.#addTx = (p) => addTx.immediate(p);

    const promoteTx = db.transaction((id: number): PromoteResult => this.promoteStep(id, ctx.now()));
    this.#promoteTx = (id) => promoteTx.immediate(id);
  }

  /**
   * The promotion itself, synchronous, for a caller that runs it inside its own transaction (the
   * registry's Register, so the registration and the credential change commit together).
   */
  promoteStep(id: number, now: number): PromoteResult {
    const row = this.#get.get(id);
    if (!row) throw new StoreError('not_found', `credential ${id} does not exist`, 'credentialId');
    if (row.status === 'retired') {
      throw new StoreError('invalid', `credential ${id} of device ${describeBytes(row.endpoint)} is retired and cannot be promoted`, 'credentialId');
    }
    this.#makeActive.run(now, id);
    const retired = this.#retireOthers.run(now, row.device_id, row.short_server_id, id).changes;
    return { credential: toCredential(this.#get.get(id)!), retired };
  }

  /** Group-committed (group-commit.ts) with the other writes of this turn; resolves once written. */
  async addPending(credential: NewCredential): Promise<CredentialRecord> {
    this.#ctx.check();
    const p = prepare(credential);
    const id = await GroupCommit.for(this.#ctx).run(() => this.#addTx(p));
    return toCredential(this.#get.get(id)!);
  }

  /** Group-committed, as addPending. */
  async activateForSession(sessionId: string): Promise<number> {
    this.#ctx.check();
    return GroupCommit.for(this.#ctx).run(() => this.#activate.run(this.#ctx.now(), sessionId).changes);
  }

  /** Group-committed, as addPending. */
  async retirePendingForSession(sessionId: string): Promise<number> {
    this.#ctx.check();
    return GroupCommit.for(this.#ctx).run(() => this.#retireSession.run(this.#ctx.now(), sessionId).changes);
  }

  async promote(credentialId: number): Promise<PromoteResult> {
    this.#ctx.check();
    return this.#promoteTx(credentialId);
  }

  async findForRegistration(by: RegistrationLookup, options: RegistrationLookupOptions = {}): Promise<CredentialRecord[]> {
    this.#ctx.check();
    let rows: CredentialRow[];
    if ('endpoint' in by) rows = this.#byEndpoint.all(toBytes(by.endpoint));
    else if ('pskIdentity' in by) rows = this.#byPskIdentity.all(toBytes(by.pskIdentity));
    else {
      // rpk keys are stored normalized; x509 certificates as given.
      let key: Buffer;
      try {
        key = normalizeSpki(by.publicKey);
      } catch {
        key = toBytes(by.publicKey);
      }
      rows = this.#byPublicKey.all(key);
    }
    const uris = options.serverUris;
    return rows
      .filter((r) => (uris === undefined || uris.includes(r.server_uri)) && (options.shortServerId === undefined || r.short_server_id === options.shortServerId))
      .map(toCredential);
  }

  async get(credentialId: number): Promise<CredentialRecord | undefined> {
    this.#ctx.check();
    const row = this.#get.get(credentialId);
    return row ? toCredential(row) : undefined;
  }

  async listForDevice(endpoint: Bytes, options: { readonly includeRetired?: boolean } = {}): Promise<CredentialRecord[]> {
    this.#ctx.check();
    const ep = toBytes(endpoint);
    const device = this.#deviceId.get(ep);
    if (!device) throw new StoreError('not_found', `device ${describeBytes(ep)} is not enrolled`, 'endpoint');
    return (options.includeRetired ? this.#forDeviceAll : this.#forDevice).all(device.id).map(toCredential);
  }

  async revealSecrets(credentialId: number): Promise<CredentialSecrets> {
    this.#ctx.check();
    const row = this.#secrets.get(credentialId);
    if (!row) throw new StoreError('not_found', `credential ${credentialId} does not exist`, 'credentialId');
    const what = (name: string): string => `the ${name} of credential ${credentialId} (device ${describeBytes(row.endpoint)})`;
    const box = this.#ctx.box;
    return {
      pskKey: row.psk_key_enc ? box.open(row.psk_key_enc, credentialPurpose('psk_key', credentialId, row.endpoint), what('PSK key')) : null,
      privateKey: row.private_key_enc ? box.open(row.private_key_enc, credentialPurpose('private_key', credentialId, row.endpoint), what('private key')) : null,
    };
  }
}
