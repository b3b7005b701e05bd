import { expect } from 'chai';
import Database from 'better-sqlite3';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { closeDatabase, DB_FILE, openDatabase, schemaVersion } from '../../src/store/db.js';
import { MIGRATIONS, SCHEMA_VERSION, type Migration } from '../../src/store/migrations.js';
import { expectStoreError, open, PROFILE_DOC, removeDir, tempDir } from './support.js';

describe('store/db: opening, pragmas, migrations', () => {
  let dir: string;
  beforeEach(() => {
    dir = tempDir();
  });
  afterEach(() => removeDir(dir));

  it('creates the data folder (mkdir -p) and migrates an empty database to the latest version', () => {
    const dataDir = join(dir, 'a', 'b', 'data');
    const db = openDatabase(dataDir);
    try {
      expect(existsSync(join(dataDir, DB_FILE))).to.equal(true);
      expect(statSync(dataDir).mode & 0o777).to.equal(0o700);
      expect(schemaVersion(db)).to.equal(SCHEMA_VERSION);
      const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").pluck().all();
      expect(tables).to.include.members(['profiles', 'profile_history', 'devices', 'credentials', 'sessions', 'session_requests', 'meta']);
      expect(db.pragma('journal_mode', { simple: true })).to.equal('wal');
      expect(db.pragma('foreign_keys', { simple: true })).to.equal(1);
      expect(db.pragma('synchronous', { simple: true })).to.equal(1); // NORMAL
      expect(db.pragma('busy_timeout', { simple: true })).to.equal(5000);
    } finally {
      closeDatabase(db);
    }
  });

  it('honours synchronous FULL and a custom busy timeout', () => {
    const db = openDatabase(dir, { synchronous: 'FULL', busyTimeoutMs: 250 });
    try {
      expect(db.pragma('synchronous', { simple: true })).to.equal(2);
      expect(db.pragma('busy_timeout', { simple: true })).to.equal(250);
    } finally {
      closeDatabase(db);
    }
  });

  it('applies only the migrations that are new, each recorded in user_version', () => {
    const m1: Migration = { version: 1, name: 'one', sql: 'CREATE TABLE t1 (x INTEGER);' };
    const m2: Migration = { version: 2, name: 'two', sql: 'CREATE TABLE t2 (y INTEGER); INSERT INTO t1 VALUES (42);' };
    let db = openDatabase(dir, { migrations: [m1] });
    expect(schemaVersion(db)).to.equal(1);
    db.prepare('INSERT INTO t1 VALUES (1)').run();
    closeDatabase(db);
    db = openDatabase(dir, { migrations: [m1, m2] });
    expect(schemaVersion(db)).to.equal(2);
    expect(db.prepare('SELECT x FROM t1 ORDER BY x').pluck().all()).to.deep.equal([1, 42]);
    closeDatabase(db);
    // Opening again applies nothing (m2's INSERT would add a second 42).
    db = openDatabase(dir, { migrations: [m1, m2] });
    expect(db.prepare('SELECT count(*) FROM t1').pluck().get()).to.equal(2);
    closeDatabase(db);
  });

  it('rolls a failed migration back entirely and reports which one failed', async () => {
    const m1: Migration = { version: 1, name: 'one', sql: 'CREATE TABLE t1 (x INTEGER);' };
    const bad: Migration = { version: 2, name: 'broken', sql: 'CREATE TABLE t2 (y INTEGER); THIS IS NOT SQL;' };
    await expectStoreError(() => openDatabase(dir, { migrations: [m1, bad] }), 'schema', /migration 2 \(broken\) failed/);
    const raw = new Database(join(dir, DB_FILE));
    try {
      expect(raw.pragma('user_version', { simple: true })).to.equal(1);
      expect(raw.prepare("SELECT count(*) FROM sqlite_master WHERE name = 't2'").pluck().get()).to.equal(0);
    } finally {
      raw.close();
    }
  });

  it('refuses a database written by a newer lwbs, with a message naming both versions', async () => {
    const raw = new Database(join(dir, DB_FILE));
    raw.pragma(`user_version = ${SCHEMA_VERSION + 5}`);
    raw.close();
    await expectStoreError(() => openDatabase(dir), 'schema', new RegExp(`schema version ${SCHEMA_VERSION + 5}.*up to ${SCHEMA_VERSION}.*newer lwbs`));
    await expectStoreError(open(dir), 'schema', /newer lwbs/);
  });

  it('rejects a migration list with a gap (programming error)', () => {
    expect(() => openDatabase(dir, { migrations: [{ version: 2, name: 'x', sql: '' }] })).to.throw(/version 2, expected 1/);
  });

  it('the shipped migrations are numbered 1..n', () => {
    MIGRATIONS.forEach((m, i) => expect(m.version).to.equal(i + 1));
    expect(SCHEMA_VERSION).to.equal(MIGRATIONS.length);
  });

  it('keeps data across close and reopen', async () => {
    let store = await open(dir);
    await store.profiles.put('meters', PROFILE_DOC);
    await store.devices.add({ endpoint: 'ep-1', profile: 'meters', auth: { kind: 'psk', identity: 'id-1', key: Buffer.alloc(16, 9) } });
    await store.close();
    store = await open(dir);
    try {
      expect((await store.profiles.get('meters'))?.document).to.equal(PROFILE_DOC);
      expect((await store.devices.findByPskIdentity('id-1'))?.key).to.deep.equal(Buffer.alloc(16, 9));
    } finally {
      await store.close();
    }
  });

  it('a closed store refuses calls with a StoreError', async () => {
    const store = await open(dir);
    await store.close();
    await expectStoreError(store.profiles.list(), 'closed');
    await expectStoreError(store.devices.count(), 'closed');
    await store.close(); // idempotent
  });
});
