/**
 * Anti-replay sliding window (RFC 6347 §4.1.2.6), one per epoch. `check(seq)` says whether a
 * record may be processed; `accept(seq)` marks it received and must only be called after the
 * record authenticated, so forged records cannot move the window.
 *
 * The window is a ring of bits indexed by `seq mod size`, anchored at the highest sequence number
 * accepted so far; records more than `size - 1` below it are rejected.
 */

export class ReplayWindow {
  private readonly bits: Uint32Array;
  /** Highest accepted sequence number; -1 before the first. */
  private top = -1;

  /** `size`: a multiple of 32, at least 32 (RFC 6347 minimum); default 64. */
  constructor(readonly size = 64) {
    if (!Number.isInteger(size) || size < 32 || size % 32 !== 0 || size > 1 << 20) {
      throw new RangeError(`replay window size ${size}: a multiple of 32 in 32..2^20`);
    }
    this.bits = new Uint32Array(size / 32);
  }

  /** Highest sequence number accepted so far (-1 if none). */
  get highest(): number {
    return this.top;
  }

  /** True when `seq` is new: right of the window, or inside it and not yet seen. */
  check(seq: number): boolean {
    if (seq > this.top) return true;
    if (this.top - seq >= this.size) return false;
    return !this.get(seq % this.size);
  }

  /** Marks `seq` as received (call after authenticating the record; `check` must have been true). */
  accept(seq: number): void {
    if (seq > this.top) {
      const advance = seq - this.top;
      if (advance >= this.size) {
        this.bits.fill(0);
      } else {
        for (let s = this.top + 1; s < seq; s++) this.clear(s % this.size);
      }
      this.top = seq;
    } else if (this.top - seq >= this.size) {
      return;
    }
    this.set(seq % this.size);
  }

  private get(i: number): boolean {
    return ((this.bits[i >>> 5] >>> (i & 31)) & 1) === 1;
  }

  private set(i: number): void {
    this.bits[i >>> 5] |= 1 << (i & 31);
  }

  private clear(i: number): void {
    this.bits[i >>> 5] &= ~(1 << (i & 31));
  }
}
