/**
 * Percentiles and latency summaries for the fleet benchmark (pure, no I/O).
 *
 * Percentiles use the nearest-rank method: the p-th percentile of n sorted values is the value
 * at rank ⌈p/100 · n⌉ (1-based; rank 1 for p = 0). The result is always one of the measured
 * values (no interpolation), and at least p % of the values are ≤ it.
 */

export interface LatencySummary {
  readonly count: number;
  readonly min: number;
  readonly mean: number;
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
  readonly max: number;
}

/** The p-th percentile (0 ≤ p ≤ 100) of ascending `sorted` values; NaN for no values. */
export function percentile(sorted: readonly number[], p: number): number {
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile must be in 0..100, got ${p}`);
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  const rank = Math.max(1, Math.ceil((p / 100) * n));
  return sorted[Math.min(rank, n) - 1]!;
}

/** count, min, mean, p50, p95, p99, max of `values` (any order; not modified). */
export function summarize(values: readonly number[]): LatencySummary {
  const sorted = Float64Array.from(values).sort();
  const arr = Array.from(sorted);
  const n = arr.length;
  let sum = 0;
  for (const v of arr) sum += v;
  return {
    count: n,
    min: n > 0 ? arr[0]! : Number.NaN,
    mean: n > 0 ? sum / n : Number.NaN,
    p50: percentile(arr, 50),
    p95: percentile(arr, 95),
    p99: percentile(arr, 99),
    max: n > 0 ? arr[n - 1]! : Number.NaN,
  };
}

/** Events per second over a window; 0 for an empty or zero-length window. */
export function rate(count: number, firstMs: number | undefined, lastMs: number | undefined): number {
  if (count === 0 || firstMs === undefined || lastMs === undefined || !(lastMs > firstMs)) return 0;
  return (count * 1000) / (lastMs - firstMs);
}

/** Tracks the earliest start and the latest end of a set of operations. */
export class Window {
  first: number | undefined;
  last: number | undefined;
  count = 0;
  readonly latencies: number[] = [];

  start(at: number): void {
    if (this.first === undefined || at < this.first) this.first = at;
  }

  /** A completed operation that started at `startedAt` (its latency is recorded). */
  done(startedAt: number, at: number): void {
    this.start(startedAt);
    if (this.last === undefined || at > this.last) this.last = at;
    this.count++;
    this.latencies.push(at - startedAt);
  }

  perSec(): number {
    return rate(this.count, this.first, this.last);
  }
}
