/**
 * Profile documents sealed at rest (migration 2): new rows are written sealed, a schema-1
 * database with plaintext profiles is upgraded and sealed by openStore, and afterwards no byte
 * of a profile's secrets is left in the database file or its WAL.
 */
import { expect } from 'chai';
import Database from 'better-sqlite3';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { closeDatabase, DB_FILE, openDatabase, schemaVersion } from '../../src/store/db.js';
import { MIGRATIONS, SCHEMA_VERSION } from '../../src/store/migrations.js';
import { sealPlaintextProfiles } from '../../src/store/profiles.js';
import { SecretBox } from '../../src/store/secrets.js';
import { Clock, ecKeys, expectStoreError, open, removeDir, tempDir, TEST_KEY_HEX } from './support.js';

/** Secrets as they appear inside profile JSON: PSK key in hex, private key in base64 DER. */
const PSK_HEX = 'a1b2c3d4e5f60718293a4b5c6d7e8f90';
const PRIVATE_B64 = ecKeys().pkcs8.toString('base64');

function profileDoc(name: string, lifetime: number, pskHex = PSK_HEX): string {
  return JSON.stringify({
    name,
    servers: [
      { shortServerId: 1, uri: 'coaps://lwm2m.example:5684', lifetime, security: { mode: 'psk', identity: `${name}-id`, key: pskHex } },
      { shortServerId: 2, uri: 'coaps://other.example:5684', security: { mode: 'rpk', privateKey: PRIVATE_B64 } },
    ],
  });
}

function fileBytes(dir: string): Buffer {
  return Buffer.concat([DB_FILE, `${DB_FILE}-wal`].filter((f) => existsSync(join(dir, f))).map((f) => readFileSync(join(dir, f))));
}

function expectNoSecrets(dir: string, stillThere: string): void {
  const raw = fileBytes(dir);
  // The scan works: something stored in clear (a profile name) is found.
  expect(raw.includes(Buffer.from(stillThere, 'utf8')), 'the scan finds a plain value').to.equal(true);
  expect(raw.includes(Buffer.from(PSK_HEX, 'ascii')), 'PSK key hex in the file').to.equal(false);
  expect(raw.includes(Buffer.from(PRIVATE_B64.slice(40, 100), 'ascii')), 'private key base64 in the file').to.equal(false);
}

interface RawRow {
  name: string;
  version: number;
  document: string;
  document_enc: Buffer | null;
}

function rawRows(dir: string, table: 'profiles' | 'profile_history'): RawRow[] {
  const raw = new Database(join(dir, DB_FILE), { readonly: true });
  try {
    return raw.prepare<[], RawRow>(`SELECT name, version, document, document_enc FROM ${table} ORDER BY name, version`).all();
  } finally {
    raw.close();
  }
}

/**
 * A database as lwbs left it at schema version 1: only migration 1 applied, profiles and their
 * history in plaintext, a device using one of them, a deleted profile in the history.
 */
function createSchema1Database(dir: string): void {
  const db = openDatabase(dir, { migrations: MIGRATIONS.slice(0, 1) });
  try {
    expect(schemaVersion(db)).to.equal(1);
    const addProfile = db.prepare('INSERT INTO profiles (name, document, version, created_at, updated_at) VALUES (?, ?, ?, ?, ?)');
    const addHistory = db.prepare('INSERT INTO profile_history (name, version, document, change, changed_at) VALUES (?, ?, ?, ?, ?)');
    db.transaction(() => {
      addProfile.run('meters', profileDoc('meters', 600), 2, 1000, 2000);
      addHistory.run('meters', 1, profileDoc('meters', 300), 'create', 1000);
      addHistory.run('meters', 2, profileDoc('meters', 600), 'update', 2000);
      addProfile.run('lights', profileDoc('lights', 60), 1, 3000, 3000);
      addHistory.run('lights', 1, profileDoc('lights', 60), 'create', 3000);
      addHistory.run('gone', 1, profileDoc('gone', 10), 'create', 4000);
      addHistory.run('gone', 2, profileDoc('gone', 10), 'delete', 5000);
      db.prepare("INSERT INTO devices (endpoint, profile, auth, enrolled_by, created_at) VALUES (CAST('ep-1' AS BLOB), 'meters', 'none', 'cli', 6000)").run();
    })();
  } finally {
    closeDatabase(db);
  }
}

describe('store/profiles sealed at rest', () => {
  let dir: string;
  beforeEach(() => {
    dir = tempDir('lwbs-sealed-');
  });
  afterEach(() => removeDir(dir));

  it('writes new documents sealed in both tables and returns them in clear', async () => {
    const clock = new Clock();
    const store = await open(dir, { now: clock.now });
    try {
      const t1 = clock.tick();
      await store.profiles.put('meters', profileDoc('meters', 300));
      const t2 = clock.tick();
      await store.profiles.put('meters', profileDoc('meters', 600));
      expect(await store.profiles.get('meters')).to.deep.equal({ name: 'meters', document: profileDoc('meters', 600), version: 2, createdAt: t1, updatedAt: t2 });
      expect((await store.profiles.list()).map((p) => p.document)).to.deep.equal([profileDoc('meters', 600)]);
      expect((await store.profiles.history('meters')).map((h) => h.document)).to.deep.equal([profileDoc('meters', 300), profileDoc('meters', 600)]);
      // The identical document is still recognised as unchanged through the seal.
      expect(await store.profiles.put('meters', profileDoc('meters', 600))).to.deep.equal({ version: 2, change: 'unchanged' });
      expectNoSecrets(dir, 'meters');
    } finally {
      await store.close();
    }
    for (const table of ['profiles', 'profile_history'] as const) {
      for (const r of rawRows(dir, table)) {
        expect(r.document, `${table} ${r.name} v${r.version}`).to.equal('');
        expect(r.document_enc?.[0], `${table} ${r.name} v${r.version}`).to.equal(0x01);
      }
    }
    expectNoSecrets(dir, 'meters');
  });

  it('a delete keeps the deleted document in the history, sealed', async () => {
    const store = await open(dir);
    try {
      await store.profiles.put('p', profileDoc('p', 1));
      expect(await store.profiles.delete('p')).to.equal(2);
      expect(await store.profiles.history('p')).to.have.deep.nested.property('[1].document', profileDoc('p', 1));
    } finally {
      await store.close();
    }
    expect(rawRows(dir, 'profile_history').map((r) => [r.version, r.document, r.document_enc !== null])).to.deep.equal([
      [1, '', true],
      [2, '', true],
    ]);
    expectNoSecrets(dir, 'p');
  });

  it('upgrades a schema-1 database with plaintext profiles: migrated, sealed, every document intact', async () => {
    createSchema1Database(dir);
    // Before: the secrets are in the file (so the scan below would see them if they stayed).
    expect(fileBytes(dir).includes(Buffer.from(PSK_HEX, 'ascii'))).to.equal(true);

    const store = await open(dir);
    try {
      expect(await store.profiles.get('meters')).to.deep.equal({ name: 'meters', document: profileDoc('meters', 600), version: 2, createdAt: 1000, updatedAt: 2000 });
      expect((await store.profiles.list()).map((p) => [p.name, p.version, p.devices, p.document])).to.deep.equal([
        ['lights', 1, 0, profileDoc('lights', 60)],
        ['meters', 2, 1, profileDoc('meters', 600)],
      ]);
      expect(await store.profiles.history('meters')).to.deep.equal([
        { name: 'meters', version: 1, document: profileDoc('meters', 300), change: 'create', changedAt: 1000 },
        { name: 'meters', version: 2, document: profileDoc('meters', 600), change: 'update', changedAt: 2000 },
      ]);
      expect((await store.profiles.history('gone')).map((h) => [h.version, h.change, h.document])).to.deep.equal([
        [1, 'create', profileDoc('gone', 10)],
        [2, 'delete', profileDoc('gone', 10)],
      ]);
      expect((await store.devices.get('ep-1'))?.profile).to.equal('meters');
      // Versions count on after the upgrade.
      expect(await store.profiles.put('gone', profileDoc('gone', 11))).to.deep.equal({ version: 3, change: 'create' });
      // Already gone from the file while the store is open (secure_delete + WAL checkpoint).
      expectNoSecrets(dir, 'lights');
    } finally {
      await store.close();
    }
    const raw = new Database(join(dir, DB_FILE), { readonly: true });
    try {
      expect(raw.pragma('user_version', { simple: true })).to.equal(SCHEMA_VERSION);
      expect(raw.pragma('integrity_check', { simple: true })).to.equal('ok');
      expect(raw.prepare("SELECT count(*) FROM profiles WHERE document_enc IS NULL OR document <> ''").pluck().get()).to.equal(0);
      expect(raw.prepare("SELECT count(*) FROM profile_history WHERE document_enc IS NULL OR document <> ''").pluck().get()).to.equal(0);
    } finally {
      raw.close();
    }
    expectNoSecrets(dir, 'lights');
  });

  it('sealing is idempotent: a second open changes no ciphertext', async () => {
    createSchema1Database(dir);
    await (await open(dir)).close();
    const before = rawRows(dir, 'profile_history').map((r) => r.document_enc!.toString('hex'));
    await (await open(dir)).close();
    expect(rawRows(dir, 'profile_history').map((r) => r.document_enc!.toString('hex'))).to.deep.equal(before);
    const db = openDatabase(dir);
    try {
      expect(sealPlaintextProfiles(db, new SecretBox(Buffer.from(TEST_KEY_HEX, 'hex')))).to.equal(0);
    } finally {
      closeDatabase(db);
    }
  });

  it('is all or nothing: a failure half way leaves every row plaintext and readable; the next open seals', async () => {
    createSchema1Database(dir);
    // Migrate without sealing (as a crash right after the migration would), then make the
    // sealing fail on the history table, after the profiles table was already done.
    let db = openDatabase(dir);
    db.exec("CREATE TRIGGER fail_seal BEFORE UPDATE ON profile_history WHEN NEW.name = 'gone' BEGIN SELECT RAISE(ABORT, 'injected failure'); END");
    closeDatabase(db);
    await expectStoreError(
      open(dir).then((s) => s.close()),
      'schema',
      /cannot seal the plaintext profile documents .*injected failure/,
    );
    expect(rawRows(dir, 'profiles').map((r) => r.document_enc)).to.deep.equal([null, null]);
    expect(rawRows(dir, 'profile_history').every((r) => r.document_enc === null && r.document !== '')).to.equal(true);
    // Plaintext rows are served as they are by a store that has not sealed them.
    db = openDatabase(dir);
    db.exec('DROP TRIGGER fail_seal');
    closeDatabase(db);
    const store = await open(dir);
    try {
      expect((await store.profiles.get('lights'))?.document).to.equal(profileDoc('lights', 60));
      expect((await store.profiles.history('gone')).map((h) => h.document)).to.deep.equal([profileDoc('gone', 10), profileDoc('gone', 10)]);
    } finally {
      await store.close();
    }
    expect(rawRows(dir, 'profile_history').every((r) => r.document_enc !== null && r.document === '')).to.equal(true);
    expectNoSecrets(dir, 'lights');
  });

  it('reads a row in either state (a plaintext row among sealed ones)', async () => {
    let store = await open(dir);
    await store.profiles.put('a', profileDoc('a', 1));
    await store.profiles.put('b', profileDoc('b', 2));
    await store.close();
    const db = openDatabase(dir);
    db.prepare("UPDATE profiles SET document = ?, document_enc = NULL WHERE name = 'b'").run(profileDoc('b', 2));
    // The schema refuses a row that is both, or neither.
    expect(() => db.prepare("UPDATE profiles SET document = '{}' WHERE name = 'a'").run()).to.throw(/CHECK constraint failed/);
    expect(() => db.prepare("UPDATE profiles SET document = '', document_enc = NULL WHERE name = 'a'").run()).to.throw(/CHECK constraint failed/);
    closeDatabase(db);
    store = await open(dir);
    try {
      expect((await store.profiles.list()).map((p) => p.document)).to.deep.equal([profileDoc('a', 1), profileDoc('b', 2)]);
    } finally {
      await store.close();
    }
    expect(rawRows(dir, 'profiles').map((r) => r.document)).to.deep.equal(['', '']);
  });

  it('binds a ciphertext to its table, name and version: moved, it fails with an error naming the profile only', async () => {
    let store = await open(dir);
    await store.profiles.put('a', profileDoc('a', 1));
    await store.profiles.put('b', profileDoc('b', 1, 'ffeeddccbbaa99887766554433221100'));
    await store.profiles.put('c', profileDoc('c', 1));
    await store.profiles.put('c', profileDoc('c', 2));
    await store.close();
    const db = openDatabase(dir);
    // b gets a's document; c's current row (version 2) gets its own version-1 history document.
    db.prepare("UPDATE profiles SET document_enc = (SELECT document_enc FROM profiles WHERE name = 'a') WHERE name = 'b'").run();
    db.prepare("UPDATE profiles SET document_enc = (SELECT document_enc FROM profile_history WHERE name = 'c' AND version = 1) WHERE name = 'c'").run();
    closeDatabase(db);
    store = await open(dir);
    try {
      expect((await store.profiles.get('a'))?.document).to.equal(profileDoc('a', 1));
      const e = await expectStoreError(store.profiles.get('b'), 'secret', /document of profile "b" version 1/);
      expect(e.message).to.not.include(PSK_HEX);
      await expectStoreError(store.profiles.get('c'), 'secret', /document of profile "c" version 2/);
      await expectStoreError(store.profiles.list(), 'secret');
      expect((await store.profiles.history('c')).map((h) => h.document)).to.deep.equal([profileDoc('c', 1), profileDoc('c', 2)]);
    } finally {
      await store.close();
    }
  });

  it('a document that is not JSON is refused without quoting it', async () => {
    const store = await open(dir);
    try {
      const e = await expectStoreError(store.profiles.put('x', `[1,"${PSK_HEX}",]`), 'invalid', /the document is not valid JSON/, 'document');
      expect(e.message).to.not.include(PSK_HEX);
    } finally {
      await store.close();
    }
  });
});
