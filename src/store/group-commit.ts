/**
 * Group commit for one store connection: writes asked for in the same turn of the event loop (a
 * burst of datagrams read together) run in ONE transaction on the next turn. Under load most of a
 * small write's cost is its transaction (BEGIN IMMEDIATE, COMMIT of the WAL frames, the odd
 * checkpoint), not its statements, so a storm of Registers or Updates pays it once per batch.
 *
 * Each write is a function that must be atomic on its own: a single statement, or a better-sqlite3
 * transaction function (nested in the batch's transaction it runs in a SAVEPOINT, so a write that
 * throws rolls back alone and the others still commit). Each caller gets its own result or error,
 * and only after the batch committed; when BEGIN or COMMIT fails every write of the batch fails
 * with that error, nothing of it having been written. Closing the store writes the pending batch
 * first (StoreContext.beforeClose), so a graceful stop loses no acknowledged-to-be write.
 */
import type { Db } from './db.js';
import type { StoreContext } from './context.js';

interface Pending {
  readonly write: () => unknown;
  readonly resolve: (v: unknown) => void;
  readonly reject: (e: unknown) => void;
  ok?: boolean;
  value?: unknown;
}

/** One GroupCommit per store connection: every repository's batched writes share its transaction. */
const shared = new WeakMap<StoreContext, GroupCommit>();

export class GroupCommit {
  /** The connection's GroupCommit (created on first use), shared by its repositories. */
  static for(ctx: StoreContext): GroupCommit {
    let g = shared.get(ctx);
    if (!g) {
      g = new GroupCommit(ctx, ctx.db);
      shared.set(ctx, g);
    }
    return g;
  }

  #queue: Pending[] = [];
  readonly #batch: (items: Pending[]) => void;

  constructor(private readonly ctx: StoreContext, db: Db) {
    const tx = db.transaction((items: Pending[]): void => {
      for (const it of items) {
        try {
          it.value = it.write();
          it.ok = true;
        } catch (e) {
          it.value = e;
          it.ok = false;
        }
      }
    });
    this.#batch = (items) => tx.immediate(items);
    ctx.beforeClose(() => this.#flush());
  }

  /** Queues `write` for the next batch; resolves with its result once the batch committed. */
  run<T>(write: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ write, resolve: resolve as (v: unknown) => void, reject });
      if (this.#queue.length === 1) setImmediate(() => this.#flush());
    });
  }

  #flush(): void {
    const items = this.#queue;
    if (items.length === 0) return; // written already, by a close
    this.#queue = [];
    try {
      this.ctx.check();
      this.#batch(items);
    } catch (e) {
      for (const it of items) it.reject(e);
      return;
    }
    for (const it of items) {
      if (it.ok) it.resolve(it.value);
      else it.reject(it.value);
    }
  }
}
