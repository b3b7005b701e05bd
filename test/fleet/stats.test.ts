import { expect } from 'chai';
import fc from 'fast-check';
import { percentile, rate, summarize, Window } from '../../scripts/fleet/stats.js';

describe('fleet stats', () => {
  it('takes the nearest rank: ⌈p/100·n⌉-th smallest value', () => {
    const values = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    expect(percentile(values, 0)).to.equal(1);
    expect(percentile(values, 50)).to.equal(5); // rank 5
    expect(percentile(values, 95)).to.equal(10); // rank ⌈9.5⌉ = 10
    expect(percentile(values, 100)).to.equal(10);
    expect(percentile([7], 99)).to.equal(7);
    expect(percentile([], 50)).to.be.NaN;
    expect(() => percentile(values, 101)).to.throw(RangeError);
    expect(() => percentile(values, -1)).to.throw(RangeError);
  });

  it('returns a measured value with at least p % of the values at or below it', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: -1e6, max: 1e6 }), { minLength: 1, maxLength: 200 }), fc.integer({ min: 0, max: 100 }), (raw, p) => {
        const sorted = [...raw].sort((a, b) => a - b);
        const v = percentile(sorted, p);
        expect(sorted).to.include(v);
        const atOrBelow = sorted.filter((x) => x <= v).length;
        const below = sorted.filter((x) => x < v).length;
        const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
        expect(atOrBelow).to.be.at.least(rank);
        expect(below).to.be.below(rank);
      }),
    );
  });

  it('is monotonic in p', () => {
    fc.assert(
      fc.property(fc.array(fc.double({ noNaN: true, min: -1e9, max: 1e9 }), { minLength: 1, maxLength: 100 }), fc.integer({ min: 0, max: 100 }), fc.integer({ min: 0, max: 100 }), (raw, a, b) => {
        const sorted = [...raw].sort((x, y) => x - y);
        const [lo, hi] = a <= b ? [a, b] : [b, a];
        expect(percentile(sorted, lo)).to.be.at.most(percentile(sorted, hi));
      }),
    );
  });

  it('summarizes unsorted values without changing them', () => {
    const values = [30, 10, 20, 40];
    const s = summarize(values);
    expect(values).to.deep.equal([30, 10, 20, 40]);
    expect(s).to.include({ count: 4, min: 10, max: 40, mean: 25, p50: 20, p95: 40, p99: 40 });
    expect(summarize([]).count).to.equal(0);
  });

  it('computes rates over a window of completions', () => {
    expect(rate(10, 0, 2000)).to.equal(5);
    expect(rate(0, 0, 2000)).to.equal(0);
    expect(rate(3, 100, 100)).to.equal(0);
    const w = new Window();
    w.start(1000);
    w.done(1000, 1500);
    w.done(1200, 3000);
    expect(w.count).to.equal(2);
    expect(w.latencies).to.deep.equal([500, 1800]);
    expect(w.perSec()).to.equal(1); // 2 in 2 s
  });
});
