/**
 * Devices: the enrollment of an endpoint, its profile, and how it authenticates to the
 * bootstrap server. The bootstrap PSK key is sealed (secrets.ts) with the endpoint in its AAD.
 */
import type { Statement } from 'better-sqlite3';
import { describeBytes, toBytes } from '../util/bytes.js';
import type { StoreContext } from './context.js';
import { paging } from './context.js';
import { sqliteCode, StoreError } from './errors.js';
import { GroupCommit } from './group-commit.js';
import { endpointBytes, fingerprint, normalizeSpki, parseCertificate, pskIdentityBytes, pskKeyBytes } from './material.js';
import { checkProfileName } from './profiles.js';
import { purpose } from './secrets.js';
import type { AddManyOptions, Bytes, DeviceAuth, DeviceAuthInput, DeviceListOptions, DeviceRecord, DeviceRepository, EnrolledBy, NewDevice } from './types.js';

const ENROLLED_BY: readonly EnrolledBy[] = ['cli', 'import', 'zero-touch'];

/** AAD of a device's bootstrap PSK key: bound to the table, the column and the endpoint. */
export const devicePskPurpose = (endpoint: Uint8Array): Buffer => purpose('devices', 'psk_key', endpoint);

interface DeviceRow {
  endpoint: Buffer;
  profile: string;
  auth: 'none' | 'psk' | 'rpk' | 'x509';
  psk_identity: Buffer | null;
  rpk_public_key: Buffer | null;
  x509_cert: Buffer | null;
  x509_cn: string | null;
  x509_san: string | null;
  enrolled_by: EnrolledBy;
  created_at: number;
}

type InsertParams = [
  endpoint: Buffer,
  profile: string,
  auth: DeviceRow['auth'],
  pskIdentity: Buffer | null,
  pskKeyEnc: Buffer | null,
  rpk: Buffer | null,
  cert: Buffer | null,
  cn: string | null,
  san: string | null,
  enrolledBy: EnrolledBy,
  createdAt: number,
];

const COLUMNS = 'endpoint, profile, auth, psk_identity, rpk_public_key, x509_cert, x509_cn, x509_san, enrolled_by, created_at';

function toAuth(r: DeviceRow): DeviceAuth {
  switch (r.auth) {
    case 'psk':
      return { kind: 'psk', identity: r.psk_identity! };
    case 'rpk':
      return { kind: 'rpk', publicKey: r.rpk_public_key! };
    case 'x509':
      return { kind: 'x509', certificate: r.x509_cert!, subjectCn: r.x509_cn, subjectAltNames: r.x509_san ? r.x509_san.split('\n') : [] };
    default:
      return { kind: 'none' };
  }
}

export const toDevice = (r: DeviceRow): DeviceRecord => ({
  endpoint: r.endpoint,
  profile: r.profile,
  auth: toAuth(r),
  enrolledBy: r.enrolled_by,
  createdAt: r.created_at,
});

export class SqliteDevices implements DeviceRepository {
  readonly #ctx: StoreContext;
  readonly #insert: Statement<InsertParams>;
  readonly #profileExists: Statement<[string], { one: number }>;
  readonly #byEndpoint: Statement<[Buffer], DeviceRow>;
  readonly #byPskIdentity: Statement<[Buffer], DeviceRow & { psk_key_enc: Buffer }>;
  readonly #pskKey: Statement<[Buffer], { psk_key_enc: Buffer | null }>;
  readonly #byRpk: Statement<[Buffer], DeviceRow>;
  readonly #byCert: Statement<[Buffer], DeviceRow>;
  readonly #byCertName: Statement<[string, string], DeviceRow>;
  readonly #list: Statement<[number, number], DeviceRow>;
  readonly #listByProfile: Statement<[string, number, number], DeviceRow>;
  readonly #count: Statement<[], { n: number }>;
  readonly #countByProfile: Statement<[string], { n: number }>;
  readonly #delete: Statement<[Buffer]>;
  readonly #setAuth: Statement<[DeviceRow['auth'], Buffer | null, Buffer | null, Buffer | null, Buffer | null, string | null, string | null, Buffer]>;
  readonly #endpointOfPsk: Statement<[Buffer], { endpoint: Buffer }>;
  readonly #endpointOfRpk: Statement<[Buffer], { endpoint: Buffer }>;
  readonly #endpointOfCert: Statement<[Buffer], { endpoint: Buffer }>;
  readonly #addManyTx: (devices: readonly NewDevice[], options: AddManyOptions) => number;
  readonly #group: GroupCommit;

  constructor(ctx: StoreContext) {
    this.#ctx = ctx;
    const db = ctx.db;
    this.#group = GroupCommit.for(ctx);
    this.#insert = db.prepare(
      `INSERT INTO devices (endpoint, profile, auth, psk_identity, psk_key_enc, rpk_public_key, x509_cert, x509_cn, x509_san, enrolled_by, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.#profileExists = db.prepare('SELECT 1 AS one FROM profiles WHERE name = ?');
    this.#byEndpoint = db.prepare(`SELECT ${COLUMNS} FROM devices WHERE endpoint = ?`);
    this.#byPskIdentity = db.prepare(`SELECT ${COLUMNS}, psk_key_enc FROM devices WHERE psk_identity = ?`);
    this.#pskKey = db.prepare('SELECT psk_key_enc FROM devices WHERE endpoint = ?');
    this.#byRpk = db.prepare(`SELECT ${COLUMNS} FROM devices WHERE rpk_public_key = ?`);
    this.#byCert = db.prepare(`SELECT ${COLUMNS} FROM devices WHERE x509_cert = ?`);
    // CN through its index; SAN entries by substring first, then exactly in code.
    this.#byCertName = db.prepare(
      `SELECT ${COLUMNS} FROM devices WHERE x509_cn = ?
       UNION SELECT ${COLUMNS} FROM devices WHERE x509_san IS NOT NULL AND instr(x509_san, ?) > 0
       ORDER BY endpoint`,
    );
    this.#list = db.prepare(`SELECT ${COLUMNS} FROM devices ORDER BY endpoint LIMIT ? OFFSET ?`);
    this.#listByProfile = db.prepare(`SELECT ${COLUMNS} FROM devices WHERE profile = ? ORDER BY endpoint LIMIT ? OFFSET ?`);
    this.#count = db.prepare('SELECT count(*) AS n FROM devices');
    this.#countByProfile = db.prepare('SELECT count(*) AS n FROM devices WHERE profile = ?');
    this.#delete = db.prepare('DELETE FROM devices WHERE endpoint = ?');
    this.#setAuth = db.prepare(
      'UPDATE devices SET auth = ?, psk_identity = ?, psk_key_enc = ?, rpk_public_key = ?, x509_cert = ?, x509_cn = ?, x509_san = ? WHERE endpoint = ?',
    );
    this.#endpointOfPsk = db.prepare('SELECT endpoint FROM devices WHERE psk_identity = ?');
    this.#endpointOfRpk = db.prepare('SELECT endpoint FROM devices WHERE rpk_public_key = ?');
    this.#endpointOfCert = db.prepare('SELECT endpoint FROM devices WHERE x509_cert = ?');

    const addManyTx = db.transaction((devices: readonly NewDevice[], options: AddManyOptions): number => {
      const known = new Set<string>();
      const every = Math.max(1, options.progressEvery ?? 500);
      const now = ctx.now();
      devices.forEach((d, i) => {
        try {
          this.#insertOne(d, 'import', now, known);
        } catch (e) {
          throw e instanceof StoreError ? new StoreError(e.code, e.message, e.field, i, { cause: e.cause }) : e;
        }
        if (options.onProgress && ((i + 1) % every === 0 || i + 1 === devices.length)) options.onProgress(i + 1, devices.length);
      });
      return devices.length;
    });
    this.#addManyTx = (devices, options) => addManyTx.immediate(devices, options);
  }

  /** Validates, seals and inserts one device; maps constraint failures to messages naming the value. */
  #insertOne(d: NewDevice, defaultEnrolledBy: EnrolledBy, now: number, knownProfiles?: Set<string>): Buffer {
    const endpoint = endpointBytes(d.endpoint);
    const profile = checkProfileName(d.profile);
    const enrolledBy = d.enrolledBy ?? defaultEnrolledBy;
    if (!ENROLLED_BY.includes(enrolledBy)) {
      throw new StoreError('invalid', `enrolledBy must be one of ${ENROLLED_BY.join(', ')}, got ${JSON.stringify(enrolledBy)}`, 'enrolledBy');
    }
    if (!knownProfiles?.has(profile)) {
      if (!this.#profileExists.get(profile)) {
        throw new StoreError('not_found', `profile ${JSON.stringify(profile)} does not exist (device ${describeBytes(endpoint)})`, 'profile');
      }
      knownProfiles?.add(profile);
    }
    const { auth, pskIdentity, pskKeyEnc, rpk, cert, cn, san } = this.#authColumns(endpoint, d.auth ?? { kind: 'none' });
    try {
      this.#insert.run(endpoint, profile, auth.kind, pskIdentity, pskKeyEnc, rpk, cert, cn, san, enrolledBy, now);
    } catch (e) {
      throw this.#explain(e, endpoint, pskIdentity, rpk, cert);
    }
    return endpoint;
  }

  /** The auth columns of a device: validated, normalized, the PSK key sealed to the endpoint. */
  #authColumns(endpoint: Buffer, auth: DeviceAuthInput) {
    let pskIdentity: Buffer | null = null;
    let pskKeyEnc: Buffer | null = null;
    let rpk: Buffer | null = null;
    let cert: Buffer | null = null;
    let cn: string | null = null;
    let san: string | null = null;
    switch (auth.kind) {
      case 'none':
        break;
      case 'psk':
        pskIdentity = pskIdentityBytes(auth.identity);
        pskKeyEnc = this.#ctx.box.seal(pskKeyBytes(auth.key), devicePskPurpose(endpoint));
        break;
      case 'rpk':
        rpk = normalizeSpki(auth.publicKey, 'rpkPublicKey');
        break;
      case 'x509': {
        const info = parseCertificate(auth.certificate, 'x509Certificate');
        cert = info.der;
        cn = info.subjectCn;
        san = info.subjectAltNames.length > 0 ? info.subjectAltNames.join('\n') : null;
        break;
      }
      default:
        throw new StoreError('invalid', `auth.kind must be none, psk, rpk or x509, got ${JSON.stringify((auth as { kind: unknown }).kind)}`, 'auth');
    }
    return { auth, pskIdentity, pskKeyEnc, rpk, cert, cn, san };
  }

  /** SQLite names the column of a failed UNIQUE constraint; turn that into a sentence. */
  #explain(e: unknown, endpoint: Buffer, pskIdentity: Buffer | null, rpk: Buffer | null, cert: Buffer | null): unknown {
    const code = sqliteCode(e);
    const msg = e instanceof Error ? e.message : '';
    const dev = describeBytes(endpoint);
    if (code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
      if (msg.includes('devices.endpoint')) return new StoreError('duplicate', `device ${dev} is already enrolled`, 'endpoint', undefined, { cause: e });
      if (msg.includes('devices.psk_identity') && pskIdentity) {
        const other = this.#endpointOfPsk.get(pskIdentity)?.endpoint;
        return new StoreError('duplicate', `PSK identity ${describeBytes(pskIdentity)} of device ${dev} is already used by device ${other ? describeBytes(other) : '?'}`, 'pskIdentity', undefined, { cause: e });
      }
      if (msg.includes('devices.rpk_public_key') && rpk) {
        const other = this.#endpointOfRpk.get(rpk)?.endpoint;
        return new StoreError('duplicate', `the RPK public key (${fingerprint(rpk)}) of device ${dev} is already used by device ${other ? describeBytes(other) : '?'}`, 'rpkPublicKey', undefined, { cause: e });
      }
      if (msg.includes('devices.x509_cert') && cert) {
        const other = this.#endpointOfCert.get(cert)?.endpoint;
        return new StoreError('duplicate', `the certificate (${fingerprint(cert)}) of device ${dev} is already used by device ${other ? describeBytes(other) : '?'}`, 'x509Certificate', undefined, { cause: e });
      }
    }
    if (code === 'SQLITE_CONSTRAINT_FOREIGNKEY') {
      return new StoreError('not_found', `the profile of device ${dev} does not exist`, 'profile', undefined, { cause: e });
    }
    return e;
  }

  /** Group-committed with the other writes of this turn (group-commit.ts): a zero-touch storm enrolls many devices at once. */
  async add(device: NewDevice): Promise<DeviceRecord> {
    this.#ctx.check();
    const now = this.#ctx.now();
    return this.#group.run(() => toDevice(this.#byEndpoint.get(this.#insertOne(device, 'cli', now))!));
  }

  async addMany(devices: readonly NewDevice[], options: AddManyOptions = {}): Promise<number> {
    this.#ctx.check();
    if (devices.length === 0) return 0;
    return this.#addManyTx(devices, options);
  }

  async setAuth(endpoint: Bytes, auth: DeviceAuthInput): Promise<DeviceRecord> {
    this.#ctx.check();
    const ep = endpointBytes(endpoint);
    const c = this.#authColumns(ep, auth);
    let changes: number;
    try {
      changes = this.#setAuth.run(c.auth.kind, c.pskIdentity, c.pskKeyEnc, c.rpk, c.cert, c.cn, c.san, ep).changes;
    } catch (e) {
      throw this.#explain(e, ep, c.pskIdentity, c.rpk, c.cert);
    }
    if (changes === 0) throw new StoreError('not_found', `device ${describeBytes(ep)} is not enrolled`, 'endpoint');
    return toDevice(this.#byEndpoint.get(ep)!);
  }

  async get(endpoint: Bytes): Promise<DeviceRecord | undefined> {
    this.#ctx.check();
    const row = this.#byEndpoint.get(toBytes(endpoint));
    return row ? toDevice(row) : undefined;
  }

  async findByPskIdentity(identity: Bytes): Promise<{ device: DeviceRecord; key: Buffer } | undefined> {
    this.#ctx.check();
    const row = this.#byPskIdentity.get(toBytes(identity));
    if (!row) return undefined;
    const key = this.#ctx.box.open(row.psk_key_enc, devicePskPurpose(row.endpoint), `the bootstrap PSK key of device ${describeBytes(row.endpoint)}`);
    return { device: toDevice(row), key };
  }

  async findByRpk(publicKey: Uint8Array): Promise<DeviceRecord | undefined> {
    this.#ctx.check();
    let spki: Buffer;
    try {
      spki = normalizeSpki(publicKey);
    } catch {
      return undefined; // not a key we could have stored
    }
    const row = this.#byRpk.get(spki);
    return row ? toDevice(row) : undefined;
  }

  async findByCertificate(certificate: Uint8Array): Promise<DeviceRecord | undefined> {
    this.#ctx.check();
    const row = this.#byCert.get(toBytes(certificate));
    return row ? toDevice(row) : undefined;
  }

  async findByCertificateName(name: string): Promise<DeviceRecord[]> {
    this.#ctx.check();
    if (name === '') return [];
    return this.#byCertName
      .all(name, name)
      .filter((r) => r.x509_cn === name || (r.x509_san ?? '').split('\n').some((s) => s === name || s.slice(s.indexOf(':') + 1) === name))
      .map(toDevice);
  }

  async list(options: DeviceListOptions = {}): Promise<DeviceRecord[]> {
    this.#ctx.check();
    const { limit, offset } = paging(options.limit, options.offset, -1);
    const rows = options.profile === undefined ? this.#list.all(limit, offset) : this.#listByProfile.all(options.profile, limit, offset);
    return rows.map(toDevice);
  }

  async count(options: { readonly profile?: string } = {}): Promise<number> {
    this.#ctx.check();
    return (options.profile === undefined ? this.#count.get() : this.#countByProfile.get(options.profile))!.n;
  }

  async revealPskKey(endpoint: Bytes): Promise<Buffer | undefined> {
    this.#ctx.check();
    const ep = toBytes(endpoint);
    const row = this.#pskKey.get(ep);
    if (!row) throw new StoreError('not_found', `device ${describeBytes(ep)} is not enrolled`, 'endpoint');
    if (!row.psk_key_enc) return undefined;
    return this.#ctx.box.open(row.psk_key_enc, devicePskPurpose(ep), `the bootstrap PSK key of device ${describeBytes(ep)}`);
  }

  async remove(endpoint: Bytes): Promise<void> {
    this.#ctx.check();
    const ep = toBytes(endpoint);
    if (this.#delete.run(ep).changes === 0) throw new StoreError('not_found', `device ${describeBytes(ep)} is not enrolled`, 'endpoint');
  }
}
