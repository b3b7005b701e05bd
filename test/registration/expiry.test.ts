/**
 * The expiry scheduler (src/registration/expiry.ts) against an in-memory registry that counts
 * its calls: it sweeps in batches, arms one timer for the earliest expiry, re-arms on an earlier
 * `notify` only (no query per Update), retries after a failure, and stops on close.
 */
import { expect } from 'chai';
import { ExpiryScheduler } from '../../src/registration/expiry.js';
import type { RegistrationRecord, RegistryRepository } from '../../src/store/types.js';
import { sleep } from '../coap/raw-device.js';
import { until } from './support.js';

/** Only what the scheduler uses: expireDue and nextExpiry. */
class FakeRegistry {
  rows: { id: string; expiresAt: number }[] = [];
  dueCalls = 0;
  nextCalls = 0;
  failNext = 0;

  async expireDue(now: number, limit: number): Promise<RegistrationRecord[]> {
    this.dueCalls++;
    if (this.failNext > 0) {
      this.failNext--;
      throw new Error('database is locked');
    }
    const due = this.rows.filter((r) => r.expiresAt <= now).sort((a, b) => a.expiresAt - b.expiresAt).slice(0, limit);
    this.rows = this.rows.filter((r) => !due.includes(r));
    return due.map((r) => ({ id: r.id, expiresAt: r.expiresAt }) as unknown as RegistrationRecord);
  }

  async nextExpiry(): Promise<number | undefined> {
    this.nextCalls++;
    return this.rows.length === 0 ? undefined : Math.min(...this.rows.map((r) => r.expiresAt));
  }

  asRepository(): RegistryRepository {
    return this as unknown as RegistryRepository;
  }
}

describe('registration/expiry', () => {
  let registry: FakeRegistry;
  let batches: string[][];
  let errors: unknown[];
  let scheduler: ExpiryScheduler;

  const make = (o: { graceMs?: number; batchSize?: number; retryMs?: number; now?: () => number } = {}): ExpiryScheduler =>
    (scheduler = new ExpiryScheduler({
      registry: registry.asRepository(),
      onExpired: (expired) => batches.push(expired.map((r) => r.id)),
      onError: (e) => errors.push(e),
      ...o,
    }));

  beforeEach(() => {
    registry = new FakeRegistry();
    batches = [];
    errors = [];
  });
  afterEach(() => scheduler?.close());

  it('expires what is already due at start, in batches, earliest first, then arms for the next', async () => {
    const now = Date.now();
    registry.rows = [5, 1, 4, 2, 3].map((i) => ({ id: `r${i}`, expiresAt: now - 1000 + i }));
    registry.rows.push({ id: 'later', expiresAt: now + 60_000 });
    make({ batchSize: 2, graceMs: 500 });
    await scheduler.start();
    expect(batches).to.deep.equal([['r1', 'r2'], ['r3', 'r4'], ['r5']]);
    expect(scheduler.nextRun).to.equal(now + 60_000 + 500);
    expect(registry.rows.map((r) => r.id)).to.deep.equal(['later']);
  });

  it('fires when the earliest registration is due, and re-arms from the index', async () => {
    const now = Date.now();
    registry.rows = [
      { id: 'soon', expiresAt: now + 40 },
      { id: 'after', expiresAt: now + 300 },
      { id: 'much later', expiresAt: now + 3_600_000 },
    ];
    make();
    await scheduler.start();
    expect(batches).to.deep.equal([]);
    await until(() => batches.flat().length >= 2, 'two expiries', 3000);
    // Normally two timer runs; a heavily loaded machine may fold them into one.
    expect(batches.flat()).to.deep.equal(['soon', 'after']);
    expect(scheduler.nextRun).to.equal(now + 3_600_000);
  });

  it('notify re-arms only for an earlier expiry, without asking the registry', async () => {
    const now = Date.now();
    registry.rows = [{ id: 'far', expiresAt: now + 3_600_000 }];
    make();
    await scheduler.start();
    const calls = registry.nextCalls + registry.dueCalls;
    scheduler.notify(now + 7_200_000);
    scheduler.notify(null);
    expect(scheduler.nextRun).to.equal(now + 3_600_000);
    registry.rows.push({ id: 'near', expiresAt: now + 30 });
    scheduler.notify(now + 30);
    expect(scheduler.nextRun).to.equal(now + 30);
    expect(registry.nextCalls + registry.dueCalls).to.equal(calls);
    await until(() => batches.length >= 1, 'the notified expiry', 3000);
    expect(batches).to.deep.equal([['near']]);
    expect(scheduler.nextRun).to.equal(now + 3_600_000);
  });

  it('arms on notify when nothing was armed (an empty registry gets its first registration)', async () => {
    make();
    await scheduler.start();
    expect(scheduler.nextRun).to.equal(undefined);
    const t = Date.now() + 20;
    registry.rows.push({ id: 'first', expiresAt: t });
    scheduler.notify(t);
    await until(() => batches.length >= 1, 'the expiry', 3000);
    expect(batches).to.deep.equal([['first']]);
  });

  it('reports a failed sweep and tries again', async () => {
    registry.rows = [{ id: 'due', expiresAt: Date.now() - 1 }];
    registry.failNext = 1;
    make({ retryMs: 20 });
    await scheduler.start();
    expect(errors).to.have.length(1);
    expect(String(errors[0])).to.include('locked');
    await until(() => batches.length >= 1, 'the retry', 3000);
    expect(batches).to.deep.equal([['due']]);
  });

  it('isExpired honours the grace period; nothing runs after close', async () => {
    let now = 1_000_000;
    make({ graceMs: 100, now: () => now });
    expect(scheduler.isExpired(null)).to.equal(false);
    expect(scheduler.isExpired(now - 99)).to.equal(false);
    expect(scheduler.isExpired(now - 100)).to.equal(true);
    await scheduler.start();
    registry.rows.push({ id: 'x', expiresAt: now - 200 });
    scheduler.close();
    now += 1;
    expect(await scheduler.sweep()).to.deep.equal([]);
    await sleep(30);
    expect(batches).to.deep.equal([]);
    expect(registry.rows).to.have.length(1);
    expect(() => new ExpiryScheduler({ registry: registry.asRepository(), onExpired: () => undefined, onError: () => undefined, batchSize: 0 })).to.throw(RangeError);
  });
});
