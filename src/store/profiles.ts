/**
 * Profiles: named JSON documents (validated by the profile module before they get here) with a
 * version counter and a full history of every create, update and delete.
 *
 * Documents are sealed at rest (migration 2): a profile may hold static secrets (PSK keys,
 * private keys, OSCORE master secrets), so the whole document is encrypted with the store's
 * SecretBox, in `profiles.document_enc` and `profile_history.document_enc`, and the plain
 * `document` column holds ''. The AAD binds each ciphertext to its table, profile name and
 * version, so a document cannot be moved to another profile, another version, or between the
 * current table and the history. Rows written before migration 2 are sealed by openStore
 * (`sealPlaintextProfiles`); until then they are read as they are.
 */
import type { Statement } from 'better-sqlite3';
import type { StoreContext } from './context.js';
import type { Db } from './db.js';
import { StoreError } from './errors.js';
import { purpose, type SecretBox } from './secrets.js';
import type { ProfileChange, ProfileHistoryEntry, ProfilePutResult, ProfileRecord, ProfileRepository, ProfileSummary } from './types.js';

export const MAX_PROFILE_NAME_LEN = 128;

type DocumentTable = 'profiles' | 'profile_history';

/**
 * AAD of a sealed profile document: the table, the name and the version. The version is the
 * part after the last `|` and is an integer, so `name|version` is unambiguous whatever the name.
 */
export function profileDocumentPurpose(table: DocumentTable, name: string, version: number): Buffer {
  return purpose(table, 'document', `${name}|${version}`);
}

/** The stored form of a document: plaintext (before sealing) or sealed. */
interface StoredDocument {
  name: string;
  version: number;
  document: string;
  document_enc: Buffer | null;
}

interface ProfileRow extends StoredDocument {
  created_at: number;
  updated_at: number;
}

interface HistoryRow extends StoredDocument {
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

function sealDocument(box: SecretBox, table: DocumentTable, name: string, version: number, doc: string): Buffer {
  return box.seal(Buffer.from(doc, 'utf8'), profileDocumentPurpose(table, name, version));
}

/** The plaintext of a row, whichever state it is in. Errors name the profile, never content. */
function openDocument(box: SecretBox, table: DocumentTable, row: StoredDocument): string {
  if (row.document_enc === null) return row.document;
  const what = `the document of profile ${JSON.stringify(row.name)} version ${row.version}${table === 'profile_history' ? ' in the history' : ''}`;
  return box.open(row.document_enc, profileDocumentPurpose(table, row.name, row.version), what).toString('utf8');
}

/**
 * Seals every profile and history row still in plaintext, in one IMMEDIATE transaction, and
 * returns how many rows it sealed. Idempotent (only rows with `document_enc IS NULL` are
 * touched, selected inside the transaction, so two processes opening at once do not both seal),
 * and all or nothing: a crash leaves every row either plaintext or sealed, both readable.
 *
 * The point is that the plaintext leaves the database file, so while sealing `secure_delete` is
 * on (SQLite zeroes the freed bytes of the old rows instead of leaving them in free space), and
 * afterwards the WAL is checkpointed and truncated so the main file's old pages are overwritten
 * and the log no longer holds old page images. The checkpoint is best effort: a reader in
 * another process can hold it back, and then the last connection to close completes it.
 */
export function sealPlaintextProfiles(db: Db, box: SecretBox): number {
  const pending = db
    .prepare<[], { n: number }>(
      `SELECT (SELECT count(*) FROM profiles WHERE document_enc IS NULL) +
              (SELECT count(*) FROM profile_history WHERE document_enc IS NULL) AS n`,
    )
    .get()!.n;
  if (pending === 0) return 0;
  const tables: readonly DocumentTable[] = ['profiles', 'profile_history'];
  const statements = tables.map((table) => ({
    table,
    find: db.prepare<[], StoredDocument & { id: number }>(`SELECT id, name, version, document, document_enc FROM ${table} WHERE document_enc IS NULL`),
    seal: db.prepare<[Buffer, number]>(`UPDATE ${table} SET document = '', document_enc = ? WHERE id = ? AND document_enc IS NULL`),
  }));
  const previous = Number(db.pragma('secure_delete', { simple: true }));
  db.pragma('secure_delete = ON');
  let sealed = 0;
  try {
    db.transaction(() => {
      for (const s of statements) {
        for (const row of s.find.all()) {
          sealed += s.seal.run(sealDocument(box, s.table, row.name, row.version, row.document), row.id).changes;
        }
      }
    }).immediate();
  } finally {
    db.pragma(`secure_delete = ${previous === 0 ? 'OFF' : previous === 2 ? 'FAST' : 'ON'}`);
  }
  if (sealed > 0) db.pragma('wal_checkpoint(TRUNCATE)');
  return sealed;
}

export class SqliteProfiles implements ProfileRepository {
  readonly #ctx: StoreContext;
  readonly #get: Statement<[string], ProfileRow>;
  readonly #list: Statement<[], ProfileRow & { devices: number }>;
  readonly #nextVersion: Statement<[string], { v: number }>;
  readonly #insert: Statement<[string, Buffer, number, number, number]>;
  readonly #update: Statement<[Buffer, number, number, string]>;
  readonly #delete: Statement<[string]>;
  readonly #addHistory: Statement<[string, number, Buffer, ProfileChange, number]>;
  readonly #history: Statement<[string], HistoryRow>;
  readonly #deviceCount: Statement<[string], { n: number }>;
  readonly #putTx: (name: string, doc: string) => ProfilePutResult;
  readonly #deleteTx: (name: string) => number;

  constructor(ctx: StoreContext) {
    this.#ctx = ctx;
    const db = ctx.db;
    this.#get = db.prepare('SELECT name, document, document_enc, version, created_at, updated_at FROM profiles WHERE name = ?');
    this.#list = db.prepare(
      `SELECT p.name, p.document, p.document_enc, p.version, p.created_at, p.updated_at,
              (SELECT count(*) FROM devices d WHERE d.profile = p.name) AS devices
         FROM profiles p ORDER BY p.name`,
    );
    this.#nextVersion = db.prepare('SELECT coalesce(max(version), 0) + 1 AS v FROM profile_history WHERE name = ?');
    this.#insert = db.prepare("INSERT INTO profiles (name, document, document_enc, version, created_at, updated_at) VALUES (?, '', ?, ?, ?, ?)");
    this.#update = db.prepare("UPDATE profiles SET document = '', document_enc = ?, version = ?, updated_at = ? WHERE name = ?");
    this.#delete = db.prepare('DELETE FROM profiles WHERE name = ?');
    this.#addHistory = db.prepare("INSERT INTO profile_history (name, version, document, document_enc, change, changed_at) VALUES (?, ?, '', ?, ?, ?)");
    this.#history = db.prepare('SELECT name, version, document, document_enc, change, changed_at FROM profile_history WHERE name = ? ORDER BY version');
    this.#deviceCount = db.prepare('SELECT count(*) AS n FROM devices WHERE profile = ?');

    const putTx = db.transaction((name: string, doc: string): ProfilePutResult => {
      const current = this.#get.get(name);
      if (current && this.#open('profiles', current) === doc) return { version: current.version, change: 'unchanged' };
      const version = this.#nextVersion.get(name)!.v;
      const now = ctx.now();
      const sealed = sealDocument(ctx.box, 'profiles', name, version, doc);
      if (current) this.#update.run(sealed, version, now, name);
      else this.#insert.run(name, sealed, version, now, now);
      const change = current ? 'update' : 'create';
      this.#addHistory.run(name, version, sealDocument(ctx.box, 'profile_history', name, version, doc), change, now);
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
      const doc = this.#open('profiles', current);
      this.#addHistory.run(name, version, sealDocument(ctx.box, 'profile_history', name, version, doc), 'delete', ctx.now());
      this.#delete.run(name);
      return version;
    });
    this.#deleteTx = (name) => deleteTx.immediate(name);
  }

  #open(table: DocumentTable, row: StoredDocument): string {
    return openDocument(this.#ctx.box, table, row);
  }

  #record(r: ProfileRow): ProfileRecord {
    return { name: r.name, document: this.#open('profiles', r), version: r.version, createdAt: r.created_at, updatedAt: r.updated_at };
  }

  async put(name: string, documentJson: string): Promise<ProfilePutResult> {
    this.#ctx.check();
    checkProfileName(name);
    if (typeof documentJson !== 'string') throw new StoreError('invalid', `profile ${JSON.stringify(name)}: the document must be JSON text`, 'document');
    try {
      JSON.parse(documentJson);
    } catch (e) {
      // V8 quotes a slice of the input in some messages ("Unexpected token ']', "[1,]" is not
      // valid JSON"); the document may hold secrets, so that slice is cut off.
      const reason = (e as Error).message.replace(/, ".*" is not valid JSON$/s, '');
      throw new StoreError('invalid', `profile ${JSON.stringify(name)}: the document is not valid JSON: ${reason}`, 'document');
    }
    return this.#putTx(name, documentJson);
  }

  async get(name: string): Promise<ProfileRecord | undefined> {
    this.#ctx.check();
    const row = this.#get.get(name);
    return row ? this.#record(row) : undefined;
  }

  async list(): Promise<ProfileSummary[]> {
    this.#ctx.check();
    return this.#list.all().map((r) => ({ ...this.#record(r), devices: r.devices }));
  }

  async delete(name: string): Promise<number> {
    this.#ctx.check();
    return this.#deleteTx(name);
  }

  async history(name: string): Promise<ProfileHistoryEntry[]> {
    this.#ctx.check();
    return this.#history.all(name).map((r) => ({
      name: r.name,
      version: r.version,
      document: this.#open('profile_history', r),
      change: r.change,
      changedAt: r.changed_at,
    }));
  }
}
