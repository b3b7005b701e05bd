/**
 * The Store facade: one SQLite connection, the secret key, and the repositories.
 *
 *   const store = await openStore({ dataDir: cfg.dataDir });
 *   await store.profiles.put('meters', json);
 *   ...
 *   await store.close();
 *
 * The secret key is checked against a value sealed in the database when it was first opened, so
 * starting with the wrong key (or a lost key file) fails at once with a clear message rather
 * than at the first device that needs its PSK.
 */
import { join } from 'node:path';
import { SqliteCredentials } from './credentials.js';
import { StoreContext } from './context.js';
import { closeDatabase, DB_FILE, openDatabase, type Db, type OpenDatabaseOptions } from './db.js';
import { SqliteDeviceData } from './device-data.js';
import { SqliteDevices } from './devices.js';
import { StoreError } from './errors.js';
import { sealPlaintextProfiles, SqliteProfiles } from './profiles.js';
import { SqliteRegistry } from './registry.js';
import { loadSecretKey, purpose, SecretBox, SECRET_KEY_ENV, SECRET_KEY_FILE, type KeySource } from './secrets.js';
import { SqliteServerKeys } from './server-keys.js';
import { SqliteSessions } from './sessions.js';
import type { Store } from './types.js';

export interface OpenStoreOptions extends OpenDatabaseOptions {
  readonly dataDir: string;
  /** Where `LWBS_SECRET_KEY` is read from; default `process.env`. */
  readonly env?: NodeJS.ProcessEnv;
  /** An explicit 32-byte key (e.g. from a KMS); overrides the environment and the key file. */
  readonly secretKey?: Uint8Array;
  /** Clock, for tests; default `Date.now`. */
  readonly now?: () => number;
}

const KEY_CHECK = 'key_check';
const KEY_CHECK_PLAIN = Buffer.from('lwbs secret key check v1', 'utf8');
const keyCheckPurpose = purpose('meta', 'value', KEY_CHECK);

export class SqliteStore implements Store {
  readonly profiles: SqliteProfiles;
  readonly devices: SqliteDevices;
  readonly credentials: SqliteCredentials;
  readonly sessions: SqliteSessions;
  readonly serverKeys: SqliteServerKeys;
  readonly registry: SqliteRegistry;
  readonly deviceData: SqliteDeviceData;
  readonly location: string;
  /** Where the secret key came from: `env`, `file`, `created` (a new key file), or `option`. */
  readonly keySource: KeySource | 'option';
  readonly #ctx: StoreContext;

  constructor(db: Db, box: SecretBox, location: string, keySource: KeySource | 'option', now: () => number) {
    this.#ctx = new StoreContext(db, box, now);
    this.location = location;
    this.keySource = keySource;
    this.profiles = new SqliteProfiles(this.#ctx);
    this.devices = new SqliteDevices(this.#ctx);
    this.credentials = new SqliteCredentials(this.#ctx);
    this.sessions = new SqliteSessions(this.#ctx);
    this.serverKeys = new SqliteServerKeys(this.#ctx);
    this.registry = new SqliteRegistry(this.#ctx, (id, now) => this.credentials.promoteStep(id, now));
    this.deviceData = new SqliteDeviceData(this.#ctx);
  }

  async close(): Promise<void> {
    this.#ctx.markClosed();
    closeDatabase(this.#ctx.db);
  }
}

/** Opens or creates `<dataDir>/lwbs.db`, migrates it, and loads and verifies the secret key. */
export async function openStore(options: OpenStoreOptions): Promise<SqliteStore> {
  const location = join(options.dataDir, DB_FILE);
  const db = openDatabase(options.dataDir, options);
  try {
    const getCheck = db.prepare<[string], { value: Buffer }>('SELECT value FROM meta WHERE key = ?');
    const check = getCheck.get(KEY_CHECK)?.value;
    let key: Buffer;
    let source: KeySource | 'option';
    let describe: string;
    if (options.secretKey) {
      key = Buffer.from(options.secretKey);
      source = 'option';
      describe = 'the secret key given';
    } else {
      // A key file is created only for a database that has never had one: creating a fresh key
      // next to a database sealed with a lost key would make its secrets silently unreadable.
      const loaded = loadSecretKey(options.dataDir, options.env ?? process.env, check === undefined);
      if (!loaded) {
        throw new StoreError(
          'key',
          `the database ${location} holds encrypted secrets but no secret key was found: set ${SECRET_KEY_ENV} ` +
            `or restore ${join(options.dataDir, SECRET_KEY_FILE)}`,
        );
      }
      key = loaded.key;
      source = loaded.source;
      describe = loaded.source === 'env' ? `the key in ${SECRET_KEY_ENV}` : `the key in ${loaded.file}`;
    }
    const box = new SecretBox(key);
    if (check === undefined) {
      // INSERT OR IGNORE: if another process raced us here, its check value wins and is verified below.
      db.prepare('INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)').run(KEY_CHECK, box.seal(KEY_CHECK_PLAIN, keyCheckPurpose));
    }
    const stored = getCheck.get(KEY_CHECK)!.value;
    try {
      box.open(stored, keyCheckPurpose, 'the key check value');
    } catch (e) {
      throw new StoreError(
        'key',
        `${describe} does not match the database ${location}: its secrets were encrypted with another key ` +
          `(check ${SECRET_KEY_ENV} and ${join(options.dataDir, SECRET_KEY_FILE)})`,
        undefined,
        undefined,
        { cause: e },
      );
    }
    // Profiles stored before migration 2 are still plaintext: seal them now that the key is known
    // to be the right one (see migrations.ts, migration 2). A no-op once done.
    try {
      sealPlaintextProfiles(db, box);
    } catch (e) {
      if (e instanceof StoreError) throw e;
      // Rolled back as a whole: every profile is still readable, and the next open tries again.
      throw new StoreError('schema', `cannot seal the plaintext profile documents in ${location}: ${(e as Error).message}`, undefined, undefined, { cause: e });
    }
    return new SqliteStore(db, box, location, source, options.now ?? Date.now);
  } catch (e) {
    closeDatabase(db);
    throw e;
  }
}
