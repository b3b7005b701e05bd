/** Shared helpers for the store tests: temp data folders, a fixed key, a settable clock. */
import { expect } from 'chai';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StoreError, type StoreErrorCode } from '../../src/store/errors.js';
import { openStore, type OpenStoreOptions, type SqliteStore } from '../../src/store/store.js';

export const TEST_KEY_HEX = '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f';
export const OTHER_KEY_HEX = 'f0'.repeat(32);

export function tempDir(prefix = 'lwbs-store-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** A clock the test moves by hand: `clock.now()`, `clock.t = ...`. */
export class Clock {
  t = 1_700_000_000_000;
  readonly now = (): number => this.t;
  tick(ms = 1): number {
    this.t += ms;
    return this.t;
  }
}

export function open(dir: string, extra: Partial<OpenStoreOptions> = {}): Promise<SqliteStore> {
  return openStore({ dataDir: dir, env: { LWBS_SECRET_KEY: TEST_KEY_HEX }, ...extra });
}

/** Awaits a promise (or runs a function) and checks it fails with a StoreError of that code. */
export async function expectStoreError(
  action: Promise<unknown> | (() => unknown),
  code: StoreErrorCode,
  message?: RegExp,
  field?: string,
): Promise<StoreError> {
  let error: unknown;
  try {
    await (typeof action === 'function' ? action() : action);
  } catch (e) {
    error = e;
  }
  expect(error, 'expected a StoreError').to.be.instanceOf(StoreError);
  const se = error as StoreError;
  expect(se.code, se.message).to.equal(code);
  if (message) expect(se.message).to.match(message);
  if (field !== undefined) expect(se.field).to.equal(field);
  return se;
}

export interface EcKeys {
  readonly spki: Buffer;
  readonly pkcs8: Buffer;
  /** The private scalar alone (PKCS#8 DER also embeds the public point). */
  readonly d: Buffer;
}

export function ecKeys(): EcKeys {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return {
    spki: publicKey.export({ type: 'spki', format: 'der' }),
    pkcs8: privateKey.export({ type: 'pkcs8', format: 'der' }),
    d: Buffer.from(privateKey.export({ format: 'jwk' }).d!, 'base64url'),
  };
}

export const PROFILE_DOC = JSON.stringify({ name: 'meters', servers: [{ shortServerId: 1, handOff: true, security: { mode: 'nosec' } }] });
