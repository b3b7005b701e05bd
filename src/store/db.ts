/**
 * Opens (or creates) `<dataDir>/lwbs.db` and brings its schema up to date.
 *
 * Crash consistency. The database runs in WAL mode with `synchronous = NORMAL`:
 * - every transaction is appended to the write-ahead log and becomes visible atomically when its
 *   commit frame is written; readers never see half a transaction;
 * - a process killed at any moment (kill -9, OOM, crash) loses nothing that was committed, because
 *   committed frames are already in the OS page cache and the file; an uncommitted tail of the log
 *   (a transaction cut off half way) is ignored on the next open, since WAL frames carry checksums
 *   and only frames up to the last valid commit frame count;
 * - only a power loss or OS crash can lose the last few commits (NORMAL does not fsync the log on
 *   every commit, FULL does), and even then the database rolls back to an earlier consistent state:
 *   the log is fsynced before every checkpoint copies it into the main file. Pass
 *   `synchronous: 'FULL'` to trade throughput for durability of every commit across power loss.
 * Foreign keys are enforced, so no credential can point at a device that does not exist.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { StoreError } from './errors.js';
import { MIGRATIONS, type Migration } from './migrations.js';

export type Db = Database.Database;

export const DB_FILE = 'lwbs.db';

export interface OpenDatabaseOptions {
  /** How long a writer waits for another process's write lock before failing; default 5000 ms. */
  readonly busyTimeoutMs?: number;
  /** `NORMAL` (default, see above) or `FULL`. */
  readonly synchronous?: 'NORMAL' | 'FULL';
  /** For tests: the migrations to apply instead of the shipped ones. */
  readonly migrations?: readonly Migration[];
}

/** Creates the data folder (0700 when new), opens the database, applies pending migrations. */
export function openDatabase(dataDir: string, options: OpenDatabaseOptions = {}): Db {
  const migrations = options.migrations ?? MIGRATIONS;
  checkMigrations(migrations);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const file = join(dataDir, DB_FILE);
  const db = new Database(file);
  try {
    db.pragma(`busy_timeout = ${Math.max(0, Math.trunc(options.busyTimeoutMs ?? 5000))}`);
    const mode = db.pragma('journal_mode = WAL', { simple: true });
    if (String(mode).toLowerCase() !== 'wal') throw new StoreError('schema', `cannot switch ${file} to WAL mode (got ${String(mode)})`);
    db.pragma(`synchronous = ${options.synchronous ?? 'NORMAL'}`);
    db.pragma('foreign_keys = ON');
    migrate(db, migrations, file);
  } catch (e) {
    db.close();
    throw e;
  }
  return db;
}

/** The schema version recorded in the database file (0 for a new, empty one). */
export function schemaVersion(db: Db): number {
  return Number(db.pragma('user_version', { simple: true }));
}

/**
 * Applies every migration newer than the database's `user_version`, each in its own IMMEDIATE
 * transaction (taken before reading the version again, so two processes starting on the same
 * new database never both apply one). Refuses a database newer than the code.
 */
export function migrate(db: Db, migrations: readonly Migration[], file: string): void {
  const known = migrations.length === 0 ? 0 : migrations[migrations.length - 1]!.version;
  const current = schemaVersion(db);
  if (current > known) {
    throw new StoreError(
      'schema',
      `the database ${file} has schema version ${current}, but this lwbs only knows versions up to ${known}: ` +
        'it was written by a newer lwbs. Upgrade lwbs, or point --data at another folder.',
    );
  }
  for (const m of migrations) {
    if (m.version <= current) continue;
    const apply = db.transaction(() => {
      if (schemaVersion(db) >= m.version) return; // another process got there first
      db.exec(m.sql);
      db.pragma(`user_version = ${m.version}`);
    });
    try {
      apply.immediate();
    } catch (e) {
      throw new StoreError('schema', `migration ${m.version} (${m.name}) failed on ${file}: ${(e as Error).message}`, undefined, undefined, { cause: e });
    }
  }
}

/** Migrations must be numbered 1, 2, 3... without gaps: a programming error otherwise. */
function checkMigrations(migrations: readonly Migration[]): void {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`migration #${i} has version ${m.version}, expected ${i + 1}`);
  });
}

/** Lets SQLite refresh its planner statistics, then closes (checkpointing the WAL). */
export function closeDatabase(db: Db): void {
  if (!db.open) return;
  try {
    db.pragma('optimize');
  } finally {
    db.close();
  }
}
