/**
 * Device management data (migration 4): the observations an operator asked for, and each device's
 * latest known values. See migrations.ts for why observations outlive registrations.
 *
 * Values are replaced per answer: a Read or notification of `/3/0` replaces every stored value
 * under `/3/0` (a resource that vanished from the device vanishes here too), in one transaction
 * with the observation's counters, so a crash never leaves half an answer.
 */
import type { Statement } from 'better-sqlite3';
import type { ValueJson } from '../lwm2m/value-json.js';
import { describeBytes } from '../util/bytes.js';
import type { StoreContext } from './context.js';
import { StoreError } from './errors.js';
import { endpointBytes } from './material.js';
import type { Bytes } from './types.js';

export interface ObservationRecord {
  readonly id: number;
  readonly endpoint: Buffer;
  readonly path: string;
  readonly accept: number | null;
  readonly attributes: Readonly<Record<string, string>>;
  /** Where the device holds it now; null: pending (to be re-established after the next Register). */
  readonly registrationId: string | null;
  readonly token: Buffer | null;
  readonly contentFormat: number | null;
  readonly createdAt: number;
  readonly notifications: number;
  readonly lastAt: number | null;
}

export interface StoredValue {
  readonly path: string;
  readonly value: ValueJson;
  readonly at: number;
  readonly source: 'read' | 'notify';
}

export interface DeviceDataRepository {
  /** Records the intent to observe `path` (pending); an existing one keeps its state but takes the new accept/attributes. */
  saveObservation(endpoint: Bytes, path: string, options?: { readonly accept?: number; readonly attributes?: Readonly<Record<string, string>> }): Promise<ObservationRecord>;
  /** The device holds it under this registration and token now. */
  activateObservation(id: number, registrationId: string, token: Uint8Array, contentFormat: number | undefined): Promise<void>;
  /** Back to pending (the device refused it, or the registration it was made under ended). */
  deactivateObservation(id: number): Promise<void>;
  removeObservation(endpoint: Bytes, path: string): Promise<ObservationRecord | undefined>;
  observation(endpoint: Bytes, path: string): Promise<ObservationRecord | undefined>;
  /** Sorted by path. */
  observations(endpoint: Bytes): Promise<ObservationRecord[]>;
  /** Observations held under this registration. */
  observationsOfRegistration(registrationId: string): Promise<ObservationRecord[]>;
  /** Every observation held under some registration (to resume listening after a restart). */
  activeObservations(): Promise<ObservationRecord[]>;
  /**
   * Replaces the values at and below `path` with `values` (leaf paths at or below `path`); with
   * `observationId`, counts a notification on it, in the same transaction. Unknown devices are
   * ignored (0).
   */
  storeValues(endpoint: Bytes, path: string, values: readonly { readonly path: string; readonly value: ValueJson }[], source: 'read' | 'notify', options?: { readonly observationId?: number; readonly contentFormat?: number; readonly at?: number }): Promise<number>;
  /** Sorted by path; with `prefix`, only values at or below it. */
  latestValues(endpoint: Bytes, prefix?: string): Promise<StoredValue[]>;
}

interface ObservationRow {
  id: number;
  endpoint: Buffer;
  path: string;
  accept: number | null;
  attributes: string | null;
  registration_id: string | null;
  token: Buffer | null;
  content_format: number | null;
  created_at: number;
  notifications: number;
  last_at: number | null;
}

interface ValueRow {
  path: string;
  value: string;
  at: number;
  source: 'read' | 'notify';
}

const OBS_SELECT = `SELECT o.id, d.endpoint, o.path, o.accept, o.attributes, o.registration_id, o.token, o.content_format,
  o.created_at, o.notifications, o.last_at FROM observations o JOIN devices d ON d.id = o.device_id`;

const PATH_PATTERN = /^(\/[0-9]{1,5}){1,4}$/;

function checkPath(path: string): string {
  if (!PATH_PATTERN.test(path)) throw new StoreError('invalid', `path must be an LwM2M path like /3/0/1, got ${JSON.stringify(path)}`, 'path');
  return path;
}

function toObservation(r: ObservationRow): ObservationRecord {
  return {
    id: r.id,
    endpoint: r.endpoint,
    path: r.path,
    accept: r.accept,
    attributes: r.attributes === null ? {} : (JSON.parse(r.attributes) as Record<string, string>),
    registrationId: r.registration_id,
    token: r.token,
    contentFormat: r.content_format,
    createdAt: r.created_at,
    notifications: r.notifications,
    lastAt: r.last_at,
  };
}

/** `/3/0` → the LIKE pattern of paths below it (digits and slashes need no escaping). */
const below = (path: string): string => `${path}/%`;

export class SqliteDeviceData implements DeviceDataRepository {
  readonly #ctx: StoreContext;
  readonly #deviceId: Statement<[Buffer], { id: number }>;
  readonly #upsertObs: Statement<[number, string, number | null, string | null, number]>;
  readonly #obs: Statement<[Buffer, string], ObservationRow>;
  readonly #obsList: Statement<[Buffer], ObservationRow>;
  readonly #obsOfReg: Statement<[string], ObservationRow>;
  readonly #obsActive: Statement<[], ObservationRow>;
  readonly #activate: Statement<[string, Buffer, number | null, number, number]>;
  readonly #deactivate: Statement<[number]>;
  readonly #removeObs: Statement<[number]>;
  readonly #countNotify: Statement<[number | null, number, number]>;
  readonly #deleteValues: Statement<[number, string, string]>;
  readonly #insertValue: Statement<[number, string, string, number, string]>;
  readonly #values: Statement<[Buffer], ValueRow>;
  readonly #valuesUnder: Statement<[Buffer, string, string], ValueRow>;
  readonly #storeTx: (deviceId: number, path: string, values: readonly { path: string; value: ValueJson }[], source: string, at: number, obsId: number | undefined, cf: number | undefined) => number;

  constructor(ctx: StoreContext) {
    this.#ctx = ctx;
    const db = ctx.db;
    this.#deviceId = db.prepare('SELECT id FROM devices WHERE endpoint = ?');
    this.#upsertObs = db.prepare(`INSERT INTO observations (device_id, path, accept, attributes, created_at) VALUES (?, ?, ?, ?, ?)
      ON CONFLICT (device_id, path) DO UPDATE SET accept = excluded.accept, attributes = excluded.attributes`);
    this.#obs = db.prepare(`${OBS_SELECT} WHERE d.endpoint = ? AND o.path = ?`);
    this.#obsList = db.prepare(`${OBS_SELECT} WHERE d.endpoint = ? ORDER BY o.path`);
    this.#obsOfReg = db.prepare(`${OBS_SELECT} WHERE o.registration_id = ? ORDER BY o.path`);
    this.#obsActive = db.prepare(`${OBS_SELECT} WHERE o.registration_id IS NOT NULL ORDER BY o.id`);
    this.#activate = db.prepare('UPDATE observations SET registration_id = ?, token = ?, content_format = ?, last_at = ? WHERE id = ?');
    this.#deactivate = db.prepare('UPDATE observations SET registration_id = NULL, token = NULL WHERE id = ?');
    this.#removeObs = db.prepare('DELETE FROM observations WHERE id = ?');
    this.#countNotify = db.prepare('UPDATE observations SET notifications = notifications + 1, content_format = coalesce(?, content_format), last_at = ? WHERE id = ?');
    this.#deleteValues = db.prepare('DELETE FROM latest_values WHERE device_id = ? AND (path = ? OR path LIKE ?)');
    this.#insertValue = db.prepare('INSERT OR REPLACE INTO latest_values (device_id, path, value, at, source) VALUES (?, ?, ?, ?, ?)');
    this.#values = db.prepare('SELECT l.path, l.value, l.at, l.source FROM latest_values l JOIN devices d ON d.id = l.device_id WHERE d.endpoint = ?');
    this.#valuesUnder = db.prepare(
      'SELECT l.path, l.value, l.at, l.source FROM latest_values l JOIN devices d ON d.id = l.device_id WHERE d.endpoint = ? AND (l.path = ? OR l.path LIKE ?)',
    );
    this.#storeTx = db.transaction((deviceId, path, values, source, at, obsId, cf) => {
      this.#deleteValues.run(deviceId, path, below(path));
      for (const v of values) this.#insertValue.run(deviceId, v.path, JSON.stringify(v.value), at, source);
      if (obsId !== undefined) this.#countNotify.run(cf ?? null, at, obsId);
      return values.length;
    });
  }

  #device(endpoint: Bytes): { ep: Buffer; id: number | undefined } {
    this.#ctx.check();
    const ep = endpointBytes(endpoint);
    return { ep, id: this.#deviceId.get(ep)?.id };
  }

  async saveObservation(endpoint: Bytes, path: string, options: { readonly accept?: number; readonly attributes?: Readonly<Record<string, string>> } = {}): Promise<ObservationRecord> {
    const { ep, id } = this.#device(endpoint);
    checkPath(path);
    if (id === undefined) throw new StoreError('not_found', `no device ${describeBytes(ep)}`, 'endpoint');
    const attrs = options.attributes && Object.keys(options.attributes).length > 0 ? JSON.stringify(options.attributes) : null;
    this.#upsertObs.run(id, path, options.accept ?? null, attrs, this.#ctx.now());
    return toObservation(this.#obs.get(ep, path)!);
  }

  async activateObservation(id: number, registrationId: string, token: Uint8Array, contentFormat: number | undefined): Promise<void> {
    this.#ctx.check();
    try {
      this.#activate.run(registrationId, Buffer.from(token), contentFormat ?? null, this.#ctx.now(), id);
    } catch (e) {
      // The registration is gone already (FOREIGN KEY): the observation stays pending.
      if (e instanceof Error && /FOREIGN KEY/.test(e.message)) return;
      throw e;
    }
  }

  async deactivateObservation(id: number): Promise<void> {
    this.#ctx.check();
    this.#deactivate.run(id);
  }

  async removeObservation(endpoint: Bytes, path: string): Promise<ObservationRecord | undefined> {
    this.#ctx.check();
    const row = this.#obs.get(endpointBytes(endpoint), path);
    if (!row) return undefined;
    this.#removeObs.run(row.id);
    return toObservation(row);
  }

  async observation(endpoint: Bytes, path: string): Promise<ObservationRecord | undefined> {
    this.#ctx.check();
    const row = this.#obs.get(endpointBytes(endpoint), path);
    return row ? toObservation(row) : undefined;
  }

  async observations(endpoint: Bytes): Promise<ObservationRecord[]> {
    this.#ctx.check();
    return this.#obsList.all(endpointBytes(endpoint)).map(toObservation);
  }

  async observationsOfRegistration(registrationId: string): Promise<ObservationRecord[]> {
    this.#ctx.check();
    return this.#obsOfReg.all(registrationId).map(toObservation);
  }

  async activeObservations(): Promise<ObservationRecord[]> {
    this.#ctx.check();
    return this.#obsActive.all().map(toObservation);
  }

  async storeValues(
    endpoint: Bytes,
    path: string,
    values: readonly { readonly path: string; readonly value: ValueJson }[],
    source: 'read' | 'notify',
    options: { readonly observationId?: number; readonly contentFormat?: number; readonly at?: number } = {},
  ): Promise<number> {
    const { id } = this.#device(endpoint);
    checkPath(path);
    for (const v of values) {
      checkPath(v.path);
      if (v.path !== path && !v.path.startsWith(`${path}/`)) throw new StoreError('invalid', `value path ${v.path} is not at or below ${path}`, 'path');
    }
    if (id === undefined) return 0;
    return this.#storeTx(id, path, values, source, options.at ?? this.#ctx.now(), options.observationId, options.contentFormat);
  }

  async latestValues(endpoint: Bytes, prefix?: string): Promise<StoredValue[]> {
    this.#ctx.check();
    const ep = endpointBytes(endpoint);
    const rows = prefix === undefined ? this.#values.all(ep) : this.#valuesUnder.all(ep, checkPath(prefix), below(prefix));
    return rows
      .map((r) => ({ path: r.path, value: JSON.parse(r.value) as ValueJson, at: r.at, source: r.source }))
      .sort((a, b) => comparePathText(a.path, b.path));
  }
}

/** Numeric order of `/3/0/10` after `/3/0/9`. */
export function comparePathText(a: string, b: string): number {
  const pa = a.split('/');
  const pb = b.split('/');
  for (let i = 1; i < Math.min(pa.length, pb.length); i++) {
    const d = Number(pa[i]) - Number(pb[i]);
    if (d !== 0) return d;
  }
  return pa.length - pb.length;
}
