/** What every SQLite repository of one Store shares: the connection, the cipher, the clock. */
import type { Db } from './db.js';
import { StoreError } from './errors.js';
import type { SecretBox } from './secrets.js';

export class StoreContext {
  #open = true;
  readonly #beforeClose: (() => void)[] = [];
  constructor(
    readonly db: Db,
    readonly box: SecretBox,
    readonly now: () => number,
  ) {}

  /** Every repository method starts with this, so use after close() is a clear StoreError. */
  check(): void {
    if (!this.#open) throw new StoreError('closed', 'the store is closed');
  }

  /** Runs `flush` (synchronously, the connection still open) when the store closes: pending batched writes go in. */
  beforeClose(flush: () => void): void {
    this.#beforeClose.push(flush);
  }

  markClosed(): void {
    if (this.#open) for (const flush of this.#beforeClose) flush();
    this.#open = false;
  }
}

/** LIMIT/OFFSET from optional inputs (-1 = no limit in SQLite); refuses nonsense. */
export function paging(limit: number | undefined, offset: number | undefined, defaultLimit: number): { limit: number; offset: number } {
  const l = limit ?? defaultLimit;
  const o = offset ?? 0;
  if (!Number.isInteger(l) || l < -1) throw new StoreError('invalid', `limit must be a non-negative integer, got ${l}`, 'limit');
  if (!Number.isInteger(o) || o < 0) throw new StoreError('invalid', `offset must be a non-negative integer, got ${o}`, 'offset');
  return { limit: l, offset: o };
}
