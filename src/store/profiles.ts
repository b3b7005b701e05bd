/**
 * Profiles: named JSON documents (validated by the profile module before they get here) with a
 * version counter and a full history of every create, update and delete.
 */
import type { Statement } from 'better-sqlite3';
import type { StoreContext } from './context.js';
import { StoreError } from './errors.js';
import type { ProfileChange, ProfileHistoryEntry, ProfilePutResult, ProfileRecord, ProfileRepository, ProfileSummary } from './types.js';

export const MAX_PROFILE_NAME_LEN = 128;

interface ProfileRow {
  name: string;
  document: string;
  version: number;
  created_at: number;
  updated_at: number;
}

interface HistoryRow {
  name: string;
  version: number;
  document: string;
  change: ProfileChange;
  changed_at: number;
}

/** Names are shown in lists and typed on command lines: printable, trimmed, bounded. */
export function checkProfileName(name: unknown, field = 'profile'): string {
  if (typeof name !== 'string' || name.length === 0) throw new StoreError('invalid', `${field} name must be a non-empty string`, field);
  if (name.length > MAX_PROFILE_NAME_LEN) throw new StoreError('invalid', `${field} name is ${name.length} characters long; the limit is ${MAX_PROFILE_NAME_LEN}`, field);
  if (name.trim() !== name || /[\u0000-\u001f\u007f]/.test(name)) {
    throw new StoreError('invalid', `${field} name ${JSON.stringify(name)} has surrounding spaces or control characters`, field);
  }
  return name;
}

const toRecord = (r: ProfileRow): ProfileRecord => ({
  name: r.name,
  document: r.document,
  version: r.version,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

export class SqliteProfiles implements ProfileRepository {
  readonly #ctx: StoreContext;
  readonly #get: Statement<[string], ProfileRow>;
  readonly #list: Statement<[], ProfileRow & { devices: number }>;
  readonly #nextVersion: Statement<[string], { v: number }>;
  readonly #insert: Statement<[string, string, number, number, number]>;
  readonly #update: Statement<[string, number, number, string]>;
  readonly #delete: Statement<[string]>;
  readonly #addHistory: Statement<[string, number, string, ProfileChange, number]>;
  readonly #history: Statement<[string], HistoryRow>;
  readonly #deviceCount: Statement<[string], { n: number }>;
  readonly #putTx: (name: string, doc: string) => ProfilePutResult;
  readonly #deleteTx: (name: string) => number;

  constructor(ctx: StoreContext) {
    this.#ctx = ctx;
    const db = ctx.db;
    this.#get = db.prepare('SELECT name, document, version, created_at, updated_at FROM profiles WHERE name = ?');
    this.#list = db.prepare(
      `SELECT p.name, p.document, p.version, p.created_at, p.updated_at,
              (SELECT count(*) FROM devices d WHERE d.profile = p.name) AS devices
         FROM profiles p ORDER BY p.name`,
    );
    this.#nextVersion = db.prepare('SELECT coalesce(max(version), 0) + 1 AS v FROM profile_history WHERE name = ?');
    this.#insert = db.prepare('INSERT INTO profiles (name, document, version, created_at, updated_at) VALUES (?, ?, ?, ?, ?)');
    this.#update = db.prepare('UPDATE profiles SET document = ?, version = ?, updated_at = ? WHERE name = ?');
    this.#delete = db.prepare('DELETE FROM profiles WHERE name = ?');
    this.#addHistory = db.prepare('INSERT INTO profile_history (name, version, document, change, changed_at) VALUES (?, ?, ?, ?, ?)');
    this.#history = db.prepare('SELECT name, version, document, change, changed_at FROM profile_history WHERE name = ? ORDER BY version');
    this.#deviceCount = db.prepare('SELECT count(*) AS n FROM devices WHERE profile = ?');

    const putTx = db.transaction((name: string, doc: string): ProfilePutResult => {
      const current = this.#get.get(name);
      if (current && current.document === doc) return { version: current.version, change: 'unchanged' };
      const version = this.#nextVersion.get(name)!.v;
      const now = ctx.now();
      if (current) this.#update.run(doc, version, now, name);
      else this.#insert.run(name, doc, version, now, now);
      const change = current ? 'update' : 'create';
      this.#addHistory.run(name, version, doc, change, now);
      return { version, change };
    });
    this.#putTx = (name, doc) => putTx.immediate(name, doc);

    const deleteTx = db.transaction((name: string): number => {
      const current = this.#get.get(name);
      if (!current) throw new StoreError('not_found', `profile ${JSON.stringify(name)} does not exist`, 'profile');
      const n = this.#deviceCount.get(name)!.n;
      if (n > 0) {
        throw new StoreError(
          'in_use',
          `profile ${JSON.stringify(name)} is used by ${n} device${n === 1 ? '' : 's'}; move them to another profile or remove them first`,
          'profile',
        );
      }
      const version = this.#nextVersion.get(name)!.v;
      this.#addHistory.run(name, version, current.document, 'delete', ctx.now());
      this.#delete.run(name);
      return version;
    });
    this.#deleteTx = (name) => deleteTx.immediate(name);
  }

  async put(name: string, documentJson: string): Promise<ProfilePutResult> {
    this.#ctx.check();
    checkProfileName(name);
    if (typeof documentJson !== 'string') throw new StoreError('invalid', `profile ${JSON.stringify(name)}: the document must be JSON text`, 'document');
    try {
      JSON.parse(documentJson);
    } catch (e) {
      throw new StoreError('invalid', `profile ${JSON.stringify(name)}: the document is not valid JSON: ${(e as Error).message}`, 'document');
    }
    return this.#putTx(name, documentJson);
  }

  async get(name: string): Promise<ProfileRecord | undefined> {
    this.#ctx.check();
    const row = this.#get.get(name);
    return row ? toRecord(row) : undefined;
  }

  async list(): Promise<ProfileSummary[]> {
    this.#ctx.check();
    return this.#list.all().map((r) => ({ ...toRecord(r), devices: r.devices }));
  }

  async delete(name: string): Promise<number> {
    this.#ctx.check();
    return this.#deleteTx(name);
  }

  async history(name: string): Promise<ProfileHistoryEntry[]> {
    this.#ctx.check();
    return this.#history.all(name).map((r) => ({ name: r.name, version: r.version, document: r.document, change: r.change, changedAt: r.changed_at }));
  }
}
