/**
 * Lifetime expiry (registration.md §5): a registration without an Update by `expiresAt` is a
 * de-registration. One timer, armed for the earliest `expiresAt` in the registry (one probe of
 * the expiry index); when it fires, everything due is expired in batches of `batchSize` (each one
 * transaction, the event loop is yielded between them), and the timer is armed again for the
 * next one. A Register or Update calls `notify(expiresAt)`, which re-arms only when the new
 * expiry is earlier than the armed one: no query per Update, and never a scan of all rows.
 *
 * `graceMs` (default 0, as Wakaama) lets a registration live that long past its expiry, for
 * Updates that are on their way when the lifetime ends.
 */
import type { RegistrationRecord, RegistryRepository } from '../store/types.js';

export interface ExpirySchedulerOptions {
  readonly registry: RegistryRepository;
  /** Called after each batch is committed. */
  readonly onExpired: (expired: readonly RegistrationRecord[]) => void;
  readonly onError: (error: unknown) => void;
  readonly graceMs?: number;
  /** Default 500. */
  readonly batchSize?: number;
  readonly now?: () => number;
  /** After a failed sweep (a busy database), try again after this long; default 5 s. */
  readonly retryMs?: number;
}

/** setTimeout's limit; a later expiry is re-checked when this timer fires. */
const MAX_DELAY = 2 ** 31 - 1;

export class ExpiryScheduler {
  readonly #registry: RegistryRepository;
  readonly #onExpired: (expired: readonly RegistrationRecord[]) => void;
  readonly #onError: (error: unknown) => void;
  readonly #graceMs: number;
  readonly #batchSize: number;
  readonly #now: () => number;
  readonly #retryMs: number;
  #timer: NodeJS.Timeout | undefined;
  /** The expiresAt the timer is armed for. */
  #armedFor: number | undefined;
  /** Sweeps run one after another. */
  #chain: Promise<unknown> = Promise.resolve();
  #started = false;
  #closed = false;

  constructor(opts: ExpirySchedulerOptions) {
    this.#registry = opts.registry;
    this.#onExpired = opts.onExpired;
    this.#onError = opts.onError;
    this.#graceMs = opts.graceMs ?? 0;
    this.#batchSize = opts.batchSize ?? 500;
    this.#now = opts.now ?? Date.now;
    this.#retryMs = opts.retryMs ?? 5000;
    if (!(this.#graceMs >= 0)) throw new RangeError(`graceMs must be >= 0, got ${this.#graceMs}`);
    if (!Number.isInteger(this.#batchSize) || this.#batchSize < 1) throw new RangeError(`batchSize must be a positive integer, got ${this.#batchSize}`);
  }

  get graceMs(): number {
    return this.#graceMs;
  }

  /** When the timer will fire next (expiresAt + grace), undefined when nothing expires. */
  get nextRun(): number | undefined {
    return this.#armedFor === undefined ? undefined : this.#armedFor + this.#graceMs;
  }

  /** Whether a registration with this `expiresAt` is over now. */
  isExpired(expiresAt: number | null): boolean {
    return expiresAt !== null && expiresAt + this.#graceMs <= this.#now();
  }

  /** Expires what is already due (registrations that ran out while the server was down), then arms the timer. Idempotent. */
  start(): Promise<void> {
    if (this.#started) return this.#chain.then(() => undefined);
    this.#started = true;
    return this.sweep().then(() => undefined);
  }

  /** A registration now expires at `expiresAt` (null: never): re-arm if that is earlier than the armed time. */
  notify(expiresAt: number | null): void {
    if (!this.#started || this.#closed || expiresAt === null) return;
    // A retry timer (armed for no expiresAt) is left alone: its sweep re-arms from the index.
    if (this.#timer !== undefined && (this.#armedFor === undefined || this.#armedFor <= expiresAt)) return;
    this.#arm(expiresAt);
  }

  /**
   * Expires everything due now (in batches) and re-arms the timer. Queued behind a running
   * sweep. Resolves with what this sweep expired; errors go to `onError`.
   */
  sweep(): Promise<RegistrationRecord[]> {
    const run = this.#chain.then(() => this.#sweep());
    this.#chain = run.catch(() => undefined);
    return run;
  }

  close(): void {
    this.#closed = true;
    this.#disarm();
  }

  async #sweep(): Promise<RegistrationRecord[]> {
    if (this.#closed) return [];
    this.#disarm();
    const all: RegistrationRecord[] = [];
    try {
      for (;;) {
        const batch = await this.#registry.expireDue(this.#now() - this.#graceMs, this.#batchSize);
        if (batch.length > 0) {
          all.push(...batch);
          try {
            this.#onExpired(batch);
          } catch (e) {
            this.#onError(e);
          }
        }
        if (batch.length < this.#batchSize || this.#closed) break;
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      if (this.#closed) return all;
      const next = await this.#registry.nextExpiry();
      if (next !== undefined) this.#arm(next);
    } catch (e) {
      this.#onError(e);
      if (!this.#closed) this.#schedule(this.#retryMs, undefined);
    }
    return all;
  }

  #arm(expiresAt: number): void {
    const delay = Math.max(0, expiresAt + this.#graceMs - this.#now());
    this.#schedule(delay, expiresAt);
  }

  #schedule(delay: number, armedFor: number | undefined): void {
    this.#disarm();
    this.#armedFor = armedFor;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#armedFor = undefined;
      void this.sweep();
    }, Math.min(delay, MAX_DELAY));
    // The server's sockets keep the process alive; this timer alone must not.
    this.#timer.unref();
  }

  #disarm(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#armedFor = undefined;
  }
}
