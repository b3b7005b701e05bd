/** scripts/profile-top.ts: self time per function and per source from a V8 CPU profile. */
import { expect } from 'chai';
import { groupOf, summarizeProfile } from '../../scripts/profile-top.js';

const frame = (functionName: string, url: string, lineNumber = 0): { functionName: string; url: string; lineNumber: number } => ({ functionName, url, lineNumber });

describe('profile-top', () => {
  it('groups frames by package, node module, lwbs folder and V8 pseudo-frames', () => {
    expect(groupOf('file:///w/node_modules/better-sqlite3/lib/methods/transaction.js', 'sqliteTransaction')).to.equal('better-sqlite3');
    expect(groupOf('file:///w/node_modules/@noble/curves/nist.js', 'x')).to.equal('@noble/curves');
    expect(groupOf('node:internal/dgram', 'doSend')).to.equal('node:dgram');
    expect(groupOf('file:///w/dist/src/store/registry.js', 'get')).to.equal('src/store');
    expect(groupOf('', '(garbage collector)')).to.equal('GC');
    expect(groupOf('', 'writeBuffer')).to.equal('native');
  });

  it('adds up self time from samples and time deltas, leaving idle out', () => {
    // root → a (2 samples: 10 µs + 30 µs) → b (1 sample: 20 µs); idle 1000 µs
    const profile = {
      nodes: [
        { id: 1, callFrame: frame('(root)', ''), children: [2, 4] },
        { id: 2, callFrame: frame('a', 'file:///w/dist/src/coap/demux.js', 9), children: [3] },
        { id: 3, callFrame: frame('b', 'file:///w/node_modules/coap/dist/lib/server.js', 4) },
        { id: 4, callFrame: frame('(idle)', '') },
      ],
      startTime: 0,
      endTime: 1100,
      samples: [2, 3, 4, 2],
      // timeDeltas[i + 1] is the time spent in samples[i]
      timeDeltas: [0, 10, 20, 1000, 30],
    };
    const s = summarizeProfile(profile);
    expect(s.totalMs).to.be.closeTo(0.06, 1e-9);
    expect(s.functions.map((f) => [f.name, f.ms])).to.deep.equal([['a demux.js:10', 0.04], ['b server.js:5', 0.02]]);
    expect(s.groups.map((g) => [g.name, Math.round(g.pct)])).to.deep.equal([['src/coap', 67], ['coap', 33]]);
  });
});
