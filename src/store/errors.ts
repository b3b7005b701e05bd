/**
 * The one error type the store throws for anything a caller or a user can act on. `code` lets the
 * CLI and the session engine branch without parsing messages; the message names the field and
 * the value (never a secret) so it can be shown to a user as is.
 */
export type StoreErrorCode =
  /** No row with that name / endpoint / id. */
  | 'not_found'
  /** A unique value (endpoint, PSK identity, public key, profile name...) is already taken. */
  | 'duplicate'
  /** The row is still referenced (a profile used by devices). */
  | 'in_use'
  /** The input is malformed (bad key material, empty name, wrong mode/field combination...). */
  | 'invalid'
  /** The database schema is newer than this code, or a migration failed. */
  | 'schema'
  /** The secret key is missing, malformed, unsafe, or does not match the database. */
  | 'key'
  /** A stored secret failed to decrypt (wrong key, or a ciphertext moved to another row). */
  | 'secret'
  /** The store was closed. */
  | 'closed';

export class StoreError extends Error {
  override readonly name = 'StoreError';
  constructor(
    readonly code: StoreErrorCode,
    message: string,
    /** The input field the error is about (`endpoint`, `pskIdentity`, `profile`...), when there is one. */
    readonly field?: string,
    /** In a batch (`devices.addMany`), the 0-based index of the offending item. */
    readonly index?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** better-sqlite3's error carries the extended result code, e.g. `SQLITE_CONSTRAINT_UNIQUE`. */
export function sqliteCode(e: unknown): string | undefined {
  const code = e instanceof Error ? (e as { code?: unknown }).code : undefined;
  return typeof code === 'string' ? code : undefined;
}
