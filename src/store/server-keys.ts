/**
 * The server's own key pairs, by name (role): `registration` is the registration server's pair,
 * whose public key an rpk hand-off writes into each device's Security instance (res 4) and whose
 * private key the DTLS server signs with. The private key is sealed like every `_enc` column;
 * the AAD binds it to the name and to its public key, so a private key copied to another name,
 * or left behind when the public key column is changed, fails to decrypt.
 *
 * The store does not generate keys (it stays free of @noble): callers pass a generator.
 */
import { createPrivateKey, createPublicKey } from 'node:crypto';
import type { Statement } from 'better-sqlite3';
import type { StoreContext } from './context.js';
import { StoreError } from './errors.js';
import { checkPkcs8, fingerprint, normalizeSpki } from './material.js';
import { purpose } from './secrets.js';
import type { ServerKeyPairInput, ServerKeyRecord, ServerKeyRepository } from './types.js';

/** The registration server's pair: the one rpk hand-offs give devices, and `lwbs keys show` shows. */
export const REGISTRATION_SERVER_KEY = 'registration';
/** The bootstrap server's key pair: its DTLS raw public key (devices enrolled with rpk hold it in /0/x/4 of their bootstrap account). */
export const BOOTSTRAP_SERVER_KEY = 'bootstrap';

export const MAX_SERVER_KEY_NAME_LEN = 64;

interface ServerKeyRow {
  name: string;
  public_key: Buffer;
  created_at: number;
}

/** Names are typed on command lines (`lwbs keys show NAME`): printable, trimmed, bounded. */
export function checkServerKeyName(name: unknown): string {
  if (typeof name !== 'string' || name.length === 0) throw new StoreError('invalid', 'a server key name must be a non-empty string', 'name');
  if (name.length > MAX_SERVER_KEY_NAME_LEN) {
    throw new StoreError('invalid', `server key name is ${name.length} characters long; the limit is ${MAX_SERVER_KEY_NAME_LEN}`, 'name');
  }
  if (name.trim() !== name || /[\u0000-\u001f\u007f]/.test(name)) {
    throw new StoreError('invalid', `server key name ${JSON.stringify(name)} has surrounding spaces or control characters`, 'name');
  }
  return name;
}

/** AAD of a sealed server private key: the name, a NUL (never in a name), the normalized SPKI. */
export function serverKeyPurpose(name: string, publicKey: Uint8Array): Buffer {
  return purpose('server_keys', 'private_key', Buffer.concat([Buffer.from(name, 'utf8'), Buffer.of(0), publicKey]));
}

/**
 * Checks a pair: SPKI and PKCS#8 DER that parse, and a private key that belongs to the public
 * key. Returns the normalized SPKI and the PKCS#8 as given. Messages never carry key bytes.
 */
export function checkServerKeyPair(pair: ServerKeyPairInput, name: string): { publicKey: Buffer; privateKey: Buffer } {
  if (typeof pair !== 'object' || pair === null || !(pair.publicKey instanceof Uint8Array) || !(pair.privateKey instanceof Uint8Array)) {
    throw new StoreError('invalid', `server key ${JSON.stringify(name)}: a key pair needs publicKey and privateKey bytes`, 'publicKey');
  }
  const publicKey = normalizeSpki(pair.publicKey, 'publicKey');
  const privateKey = checkPkcs8(pair.privateKey, 'privateKey');
  let derived: Buffer;
  try {
    const spki = createPublicKey(createPrivateKey({ key: privateKey, format: 'der', type: 'pkcs8' })).export({ format: 'der', type: 'spki' });
    derived = normalizeSpki(spki, 'privateKey');
  } catch (e) {
    throw new StoreError('invalid', `server key ${JSON.stringify(name)}: cannot derive the public key of privateKey`, 'privateKey', undefined, { cause: e });
  }
  if (!derived.equals(publicKey)) {
    throw new StoreError('invalid', `server key ${JSON.stringify(name)}: privateKey does not belong to publicKey ${fingerprint(publicKey)}`, 'privateKey');
  }
  return { publicKey, privateKey };
}

const toRecord = (r: ServerKeyRow): ServerKeyRecord => ({ name: r.name, publicKey: r.public_key, createdAt: r.created_at });

export class SqliteServerKeys implements ServerKeyRepository {
  readonly #ctx: StoreContext;
  readonly #get: Statement<[string], ServerKeyRow>;
  readonly #list: Statement<[], ServerKeyRow>;
  readonly #secret: Statement<[string], { public_key: Buffer; private_key_enc: Buffer }>;
  readonly #insertOrIgnore: Statement<[string, Buffer, Buffer, number]>;
  readonly #update: Statement<[Buffer, Buffer, number, string]>;
  readonly #replaceTx: (name: string, publicKey: Buffer, sealed: Buffer) => ServerKeyRecord;

  constructor(ctx: StoreContext) {
    this.#ctx = ctx;
    const db = ctx.db;
    this.#get = db.prepare('SELECT name, public_key, created_at FROM server_keys WHERE name = ?');
    this.#list = db.prepare('SELECT name, public_key, created_at FROM server_keys ORDER BY name');
    this.#secret = db.prepare('SELECT public_key, private_key_enc FROM server_keys WHERE name = ?');
    this.#insertOrIgnore = db.prepare('INSERT OR IGNORE INTO server_keys (name, public_key, private_key_enc, created_at) VALUES (?, ?, ?, ?)');
    this.#update = db.prepare('UPDATE server_keys SET public_key = ?, private_key_enc = ?, created_at = ? WHERE name = ?');

    const replaceTx = db.transaction((name: string, publicKey: Buffer, sealed: Buffer): ServerKeyRecord => {
      if (this.#update.run(publicKey, sealed, ctx.now(), name).changes === 0) {
        throw new StoreError('not_found', `there is no server key pair named ${JSON.stringify(name)}`, 'name');
      }
      return toRecord(this.#get.get(name)!);
    });
    this.#replaceTx = (name, publicKey, sealed) => replaceTx.immediate(name, publicKey, sealed);
  }

  async getOrCreate(name: string, generate: () => ServerKeyPairInput): Promise<ServerKeyRecord & { readonly created: boolean }> {
    this.#ctx.check();
    checkServerKeyName(name);
    const existing = this.#get.get(name);
    if (existing) return { ...toRecord(existing), created: false };
    const pair = checkServerKeyPair(generate(), name);
    const sealed = this.#ctx.box.seal(pair.privateKey, serverKeyPurpose(name, pair.publicKey));
    // Another process may have stored a pair since the read above: its pair wins, ours is dropped.
    const inserted = this.#insertOrIgnore.run(name, pair.publicKey, sealed, this.#ctx.now()).changes === 1;
    return { ...toRecord(this.#get.get(name)!), created: inserted };
  }

  async get(name: string): Promise<ServerKeyRecord | undefined> {
    this.#ctx.check();
    const row = this.#get.get(name);
    return row ? toRecord(row) : undefined;
  }

  async list(): Promise<ServerKeyRecord[]> {
    this.#ctx.check();
    return this.#list.all().map(toRecord);
  }

  async revealPrivateKey(name: string): Promise<Buffer | undefined> {
    this.#ctx.check();
    const row = this.#secret.get(name);
    if (!row) return undefined;
    return this.#ctx.box.open(row.private_key_enc, serverKeyPurpose(name, row.public_key), `the private key of server key pair ${JSON.stringify(name)}`);
  }

  async replace(name: string, pair: ServerKeyPairInput): Promise<ServerKeyRecord> {
    this.#ctx.check();
    checkServerKeyName(name);
    const checked = checkServerKeyPair(pair, name);
    const sealed = this.#ctx.box.seal(checked.privateKey, serverKeyPurpose(name, checked.publicKey));
    return this.#replaceTx(name, checked.publicKey, sealed);
  }
}
