/**
 * A Map whose entries expire `ttlMs` after they were last set, with a hard size cap. Entries are
 * re-inserted on set, so Map iteration order is age order and expiry only ever looks at the front:
 * amortised O(1), no timers (nothing to unref or clear on shutdown).
 */
export class TtlMap<V> {
  private readonly map = new Map<string, { at: number; value: V }>();

  constructor(
    private readonly ttlMs: number,
    private readonly maxSize: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  get size(): number {
    return this.map.size;
  }

  get(key: string): V | undefined {
    const e = this.map.get(key);
    if (e === undefined) return undefined;
    if (this.now() - e.at > this.ttlMs) {
      this.map.delete(key);
      return undefined;
    }
    return e.value;
  }

  set(key: string, value: V): void {
    const now = this.now();
    this.map.delete(key);
    this.map.set(key, { at: now, value });
    this.prune(now);
  }

  delete(key: string): boolean {
    return this.map.delete(key);
  }

  clear(): void {
    this.map.clear();
  }

  private prune(now: number): void {
    for (const [key, e] of this.map) {
      if (this.map.size <= this.maxSize && now - e.at <= this.ttlMs) break;
      this.map.delete(key);
    }
  }
}
