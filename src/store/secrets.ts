/**
 * Secrets at rest. PSK keys and private keys are stored encrypted with AES-256-GCM so that a copy
 * of the database file (a backup, a support bundle) does not leak device credentials.
 *
 * Sealed format, version 1:  0x01 || nonce (12 bytes, random) || ciphertext || tag (16 bytes).
 * The additional authenticated data is the version byte plus a "purpose" naming the table, the
 * column and the row (see `purpose()`), so a ciphertext copied into another row, or another
 * column, fails to decrypt instead of handing one device's key to another.
 *
 * The 32-byte key comes from `LWBS_SECRET_KEY` (64 hex digits) or from `<dataDir>/secret.key`
 * (64 hex digits and a newline), which is created with mode 0600 on first start.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, linkSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { StoreError } from './errors.js';

export const SECRET_KEY_ENV = 'LWBS_SECRET_KEY';
export const SECRET_KEY_FILE = 'secret.key';

const VERSION_1 = 0x01;
const NONCE_LEN = 12;
const TAG_LEN = 16;
const KEY_LEN = 32;
const HEX_KEY = /^[0-9a-fA-F]{64}$/;

/** AAD purpose for a secret: `table.column` and the row's stable key (endpoint bytes, row id...). */
export function purpose(table: string, column: string, rowKey: Uint8Array | string | number): Buffer {
  const head = Buffer.from(`lwbs|${table}.${column}|`, 'utf8');
  const key = typeof rowKey === 'number' ? Buffer.from(String(rowKey), 'utf8') : typeof rowKey === 'string' ? Buffer.from(rowKey, 'utf8') : rowKey;
  return Buffer.concat([head, key]);
}

export class SecretBox {
  readonly #key: Buffer;

  constructor(key: Uint8Array) {
    if (key.length !== KEY_LEN) throw new StoreError('key', `the secret key must be ${KEY_LEN} bytes, got ${key.length}`);
    this.#key = Buffer.from(key);
  }

  /** Encrypts `plaintext` bound to `aadPurpose` (see `purpose()`). */
  seal(plaintext: Uint8Array, aadPurpose: Uint8Array): Buffer {
    const nonce = randomBytes(NONCE_LEN);
    const cipher = createCipheriv('aes-256-gcm', this.#key, nonce, { authTagLength: TAG_LEN });
    cipher.setAAD(aad(VERSION_1, aadPurpose));
    const body = cipher.update(plaintext);
    const fin = cipher.final();
    const out = Buffer.allocUnsafe(1 + NONCE_LEN + body.length + fin.length + TAG_LEN);
    out[0] = VERSION_1;
    nonce.copy(out, 1);
    body.copy(out, 1 + NONCE_LEN);
    fin.copy(out, 1 + NONCE_LEN + body.length);
    cipher.getAuthTag().copy(out, out.length - TAG_LEN);
    return out;
  }

  /**
   * Decrypts a sealed value. `what` names the value in the error (e.g. `devices.psk_key of
   * "ep1"`); the error never includes any secret bytes.
   */
  open(sealed: Uint8Array, aadPurpose: Uint8Array, what: string): Buffer {
    if (sealed.length < 1 + NONCE_LEN + TAG_LEN) {
      throw new StoreError('secret', `cannot decrypt ${what}: the stored value is too short (${sealed.length} bytes)`);
    }
    if (sealed[0] !== VERSION_1) {
      throw new StoreError('secret', `cannot decrypt ${what}: unknown ciphertext format version ${sealed[0]}`);
    }
    const buf = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
    const nonce = buf.subarray(1, 1 + NONCE_LEN);
    const tag = buf.subarray(buf.length - TAG_LEN);
    const body = buf.subarray(1 + NONCE_LEN, buf.length - TAG_LEN);
    const decipher = createDecipheriv('aes-256-gcm', this.#key, nonce, { authTagLength: TAG_LEN });
    decipher.setAAD(aad(VERSION_1, aadPurpose));
    decipher.setAuthTag(tag);
    try {
      const head = decipher.update(body);
      const fin = decipher.final();
      return fin.length === 0 ? head : Buffer.concat([head, fin]);
    } catch (e) {
      throw new StoreError(
        'secret',
        `cannot decrypt ${what}: wrong secret key, or the stored value was altered or moved from another row`,
        undefined,
        undefined,
        { cause: e },
      );
    }
  }
}

/** The version byte is authenticated too, so a future format cannot be confused with this one. */
function aad(version: number, aadPurpose: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(1 + aadPurpose.length);
  out[0] = version;
  out.set(aadPurpose, 1);
  return out;
}

export type KeySource = 'env' | 'file' | 'created';

export interface LoadedKey {
  readonly key: Buffer;
  readonly source: KeySource;
  /** The key file used or created (undefined when the key came from the environment). */
  readonly file?: string;
}

/**
 * Finds the secret key: `LWBS_SECRET_KEY` first, then `<dataDir>/secret.key`. When neither
 * exists and `create` is true, a new random key file is created (mode 0600); when `create` is
 * false, returns undefined (the caller decides whether that is an error).
 */
export function loadSecretKey(dataDir: string, env: NodeJS.ProcessEnv, create: boolean): LoadedKey | undefined {
  const fromEnv = env[SECRET_KEY_ENV];
  if (fromEnv !== undefined && fromEnv !== '') {
    const v = fromEnv.trim();
    // Never echo the value: it is the key.
    if (!HEX_KEY.test(v)) {
      throw new StoreError('key', `${SECRET_KEY_ENV} must be 64 hex digits (a 32-byte AES-256 key); it has ${v.length} characters${/^[0-9a-fA-F]*$/.test(v) ? '' : ' including non-hex ones'}`);
    }
    return { key: Buffer.from(v, 'hex'), source: 'env' };
  }
  const file = join(dataDir, SECRET_KEY_FILE);
  const existing = readKeyFile(file);
  if (existing) return { key: existing, source: 'file', file };
  if (!create) return undefined;
  return createKeyFile(file);
}

/** Reads and checks a key file; undefined when it does not exist. */
export function readKeyFile(file: string): Buffer | undefined {
  let st;
  try {
    st = statSync(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new StoreError('key', `cannot read the secret key file ${file}: ${(e as Error).message}`);
  }
  if (!st.isFile()) throw new StoreError('key', `the secret key file ${file} is not a regular file`);
  // POSIX permissions are meaningless on Windows; everywhere else a key readable by other
  // users is refused rather than silently used.
  if (process.platform !== 'win32' && (st.mode & 0o077) !== 0) {
    throw new StoreError(
      'key',
      `the secret key file ${file} is accessible by group or others (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}); ` +
        `restrict it with: chmod 600 ${file}`,
    );
  }
  const text = readFileSync(file, 'utf8').trim();
  if (!HEX_KEY.test(text)) {
    throw new StoreError('key', `the secret key file ${file} must hold 64 hex digits (a 32-byte AES-256 key); it holds ${text.length} characters${/^[0-9a-fA-F]*$/.test(text) ? '' : ' including non-hex ones'}`);
  }
  return Buffer.from(text, 'hex');
}

/**
 * Creates the key file atomically: written and fsynced under a temporary name, then hard-linked
 * to the final name. link() fails if the name exists, so two processes starting at once can
 * never both create a key (the loser reads the winner's), and nobody ever reads a half-written
 * file.
 */
function createKeyFile(file: string): LoadedKey {
  const key = randomBytes(KEY_LEN);
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    writeSync(fd, `${key.toString('hex')}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(tmp, file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    const theirs = readKeyFile(file);
    if (!theirs) throw new StoreError('key', `the secret key file ${file} vanished while it was being created`);
    return { key: theirs, source: 'file', file };
  } finally {
    unlinkSync(tmp);
  }
  return { key, source: 'created', file };
}
