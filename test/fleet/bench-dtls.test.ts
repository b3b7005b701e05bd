/**
 * scripts/bench-dtls.ts: the in-memory DTLS handshake benchmark really completes full handshakes
 * (each one delivers an application record to the server) for both suites, and the session
 * memory measurement leaves exactly the sessions it opened.
 */
import { expect } from 'chai';
import { benchHandshakes, ECDHE_ECDSA_CCM_8, PSK_CCM_8, sessionMemory } from '../../scripts/bench-dtls.js';

describe('in-memory DTLS handshake benchmark', function () {
  this.timeout(60_000);

  for (const suite of [PSK_CCM_8, ECDHE_ECDSA_CCM_8]) {
    it(`completes full handshakes with suite 0x${suite.toString(16)}`, async () => {
      const r = await benchHandshakes(suite, { ms: 100, lanes: 2 });
      expect(r.suite).to.equal(suite);
      expect(r.handshakes).to.be.at.least(64);
      expect(r.perSec).to.be.greaterThan(0);
    });
  }

  it('counts the server sessions it leaves open', async () => {
    const m = await sessionMemory(PSK_CCM_8, 60);
    // 20 warm-up sessions are open before the first reading, then 60 more
    expect(m.sessions).to.equal(80);
    expect(Number.isFinite(m.heapBytesPerSession)).to.equal(true);
  });
});
