import { expect } from 'chai';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { formatReport, formatTable } from '../../scripts/fleet/report.js';
import { summarize } from '../../scripts/fleet/stats.js';
import { escapeXml, renderSvg } from '../../scripts/fleet/svg.js';
import type { FleetReport, GeneratorResult, ScenarioResult } from '../../scripts/fleet/types.js';

function gen(over: Partial<GeneratorResult> = {}): GeneratorResult {
  return {
    kind: 'storm', devices: 20, durationS: 2,
    bootstraps: { ok: 20, perSec: 10 }, registrations: { ok: 20, perSec: 10 }, updates: { ok: 0, perSec: 0 }, handshakes: { ok: 0, perSec: 0 }, registeredDevices: 20,
    roundTrips: 140, roundTripsPerSec: 70,
    latency: { finishMs: summarize([10, 20, 30]), registeredMs: summarize([15, 25, 35]) },
    failures: {}, generator: { cpuSeconds: 0.5, peakRssBytes: 1 << 26 },
    ...over,
  };
}

function scenario(name: string, ratio: number, over: Partial<GeneratorResult> = {}): ScenarioResult {
  return { name, description: 'd', params: {}, generator: gen(over), ratio, server: { cpuSeconds: 1, peakRssBytes: 1 << 27, rssReadyBytes: 1 << 26, rssEndBytes: 1 << 27, registered: 20, dbBytes: 4096, udpRcvbufErrors: 0, bytesPerRegisteredDevice: 1000 } };
}

function report(scenarios: ScenarioResult[]): FleetReport {
  return { date: '2026-01-01T00:00:00.000Z', node: 'v20', cpus: 2, quick: true, baseline: { roundTripsPerSec: 1000, sockets: 8 }, scenarios };
}

describe('fleet report and chart', () => {
  it('renders well-formed SVG with one bar per scenario and escaped names', () => {
    const svg = renderSvg(report([scenario('a<b & "c"', 0.07), scenario('no-latency', Number.NaN, { latency: {} }), scenario('zero', 0)]));
    expect(XMLValidator.validate(svg)).to.equal(true);
    const doc = new XMLParser({ ignoreAttributes: false }).parse(svg) as { svg: { rect: unknown[]; text: Array<string | { '#text': string }> } };
    expect(doc.svg).to.be.an('object');
    expect(svg).to.include('a&lt;b &amp; &quot;c&quot;');
    expect(svg).not.to.include('a<b');
    // background + per scenario: 1 throughput bar + 3 latency bars when it has latencies
    expect(doc.svg.rect.length).to.equal(1 + 4 + 1 + 4);
  });

  it('renders an empty report as valid SVG', () => {
    expect(XMLValidator.validate(renderSvg(report([])))).to.equal(true);
  });

  it('escapes every XML special character', () => {
    expect(escapeXml(`<>&"'`)).to.equal('&lt;&gt;&amp;&quot;&apos;');
  });

  it('aligns table columns', () => {
    const t = formatTable(['name', 'n'], [['x', '1'], ['longer', '12345']]).split('\n');
    expect(t).to.have.length(4);
    expect(new Set(t.map((l) => l.length)).size).to.equal(1);
    expect(t[3]).to.match(/^longer\s+12345$/);
  });

  it('lists failures by cause and the impairment counts', () => {
    const text = formatReport(report([scenario('lossy', 0.01, { failures: { deadline: 3, 'bootstrap timeout': 1 }, impairment: { outgoing: { seen: 10, dropped: 1, duplicated: 0, delayed: 0 }, incoming: { seen: 9, dropped: 2, duplicated: 0, delayed: 0 } } })]));
    expect(text).to.include('deadline ×3');
    expect(text).to.include('bootstrap timeout ×1');
    expect(text).to.include('to server 1/10 dropped');
    expect(text).to.include('from server 2/9 dropped');
  });

  it('lists retries apart from failures, the store audit and where unfinished devices stood', () => {
    const base = scenario('lossy', 0.01, {
      failures: { deadline: 1 },
      retries: { 'Register timed out → sent again': 2 },
      stragglers: [{ endpoint: 'dev-7', phase: 'bootstrap', cause: 'deadline', elapsedMs: 25_000, requestCode: '2.04', requests: ['DELETE /0 2.02 @95'] }],
    });
    const text = formatReport(report([{ ...base, audit: { devices: 20, registered: 19, devicesWithSeveralCredentials: 0, bootstrapSessions: { success: 19, other: 2 }, devicesBootstrappedTwice: 0 } }]));
    expect(text).to.match(/retries \(.*\): Register timed out → sent again ×2/);
    expect(text).to.include('store audit: 19/20 devices registered, 0 with more than one usable credential, bootstrap sessions 19 successful + 2 superseded/failed, 0 devices bootstrapped twice');
    expect(text).to.include('not completed: dev-7 in bootstrap (deadline) after 25,000 ms, /bs 2.04; received DELETE /0 2.02 @95');
  });
});
