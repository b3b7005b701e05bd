/**
 * The generator end to end: 20 simulated devices (own sockets, separate process) against a real
 * `lwbs serve` process on a fresh data directory, as `npm run bench` runs them.
 */
import { expect } from 'chai';
import { existsSync } from 'node:fs';
import { parseArgs, runScenario, SCENARIOS } from '../../scripts/fleet/bench-fleet.js';

describe('fleet benchmark end to end (20 devices)', function () {
  this.timeout(40_000);
  const opts = { ...parseArgs(['--quick', '--devices', '20', '--silent']) };

  it('runs a nosec bootstrap storm through Register, with server metrics', async () => {
    const sc = SCENARIOS.find((s) => s.name === 'nosec-storm')!;
    const r = await runScenario(opts, sc, 1000);
    const g = r.generator;
    expect(g.failures).to.deep.equal({});
    expect(g.bootstraps.ok).to.equal(20);
    expect(g.registrations.ok).to.equal(20);
    expect(g.bootstraps.perSec).to.be.greaterThan(0);
    // each session: /bs + at least a Write and the Finish, then the Register
    expect(g.roundTrips).to.be.at.least(20 * 4);
    expect(r.ratio).to.be.closeTo(g.roundTripsPerSec / 1000, 1e-9);
    const f = g.latency.finishMs!;
    const reg = g.latency.registeredMs!;
    expect(f.count).to.equal(20);
    expect(f.p50).to.be.at.most(f.p95).and.at.most(f.p99);
    expect(reg.p50).to.be.at.least(f.min);
    expect(r.server!.registered).to.equal(20);
    expect(r.server!.dbBytes).to.be.greaterThan(0);
    if (existsSync('/proc/self/stat')) {
      expect(r.server!.peakRssBytes).to.be.greaterThan(0);
      expect(r.server!.cpuSecondsPerBootstrap).to.be.greaterThan(0);
    }
  });

  it('runs a psk storm with a full DTLS handshake per device and server', async () => {
    const sc = SCENARIOS.find((s) => s.name === 'psk-storm')!;
    const r = await runScenario({ ...opts, devices: 5 }, sc, 1000);
    expect(r.generator.failures).to.deep.equal({});
    expect(r.generator.bootstraps.ok).to.equal(5);
    expect(r.generator.registrations.ok).to.equal(5);
    expect(r.generator.handshakes.ok).to.equal(10);
  });

  it('runs an rpk storm: devices with their own P-256 keys, ECDHE_ECDSA to both servers, audited', async () => {
    const sc = SCENARIOS.find((s) => s.name === 'rpk-storm')!;
    const r = await runScenario({ ...opts, devices: 4 }, sc, 1000);
    expect(r.generator.failures).to.deep.equal({});
    expect(r.generator.bootstraps.ok).to.equal(4);
    expect(r.generator.registrations.ok).to.equal(4);
    expect(r.generator.handshakes.ok).to.equal(8);
    expect(r.audit).to.deep.include({ devices: 4, registered: 4, devicesWithSeveralCredentials: 0, devicesBootstrappedTwice: 0 });
  });
});
