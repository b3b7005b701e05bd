/** The fleet benchmark's text table (pure). */
import type { LatencySummary } from './stats.js';
import type { FleetReport, ScenarioResult, StoreAudit } from './types.js';

function num(n: number | undefined, digits = 0): string {
  if (n === undefined || !Number.isFinite(n)) return '-';
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function lat(s: LatencySummary | undefined): string {
  return s ? `${num(s.p50)}/${num(s.p95)}/${num(s.p99)}` : '-';
}

export function mib(bytes: number | undefined): string {
  return bytes === undefined || !Number.isFinite(bytes) ? '-' : `${(bytes / 1048576).toFixed(0)} MiB`;
}

export function auditLine(a: StoreAudit): string {
  const parts = [`${num(a.registered)}/${num(a.devices)} devices registered`, `${num(a.devicesWithSeveralCredentials)} with more than one usable credential`];
  if (a.bootstrapSessions) parts.push(`bootstrap sessions ${num(a.bootstrapSessions.success)} successful + ${num(a.bootstrapSessions.other)} superseded/failed`, `${num(a.devicesBootstrappedTwice)} devices bootstrapped twice`);
  return parts.join(', ');
}

const COLUMNS = ['scenario', 'devices', 'BS/s', 'reg/s', 'upd/s', 'DTLS hs/s', 'RT/s', '× base', 'BS→Finish ms p50/95/99', '→registered (updates: Update) ms p50/95/99', 'failed', 'CPU ms/BS', 'server peak RSS', 'B/dev'];

export function scenarioRow(s: ScenarioResult): string[] {
  const g = s.generator;
  const failed = Object.values(g.failures).reduce((a, b) => a + b, 0);
  const rssPerDev = s.server?.bytesPerRegisteredDevice;
  return [
    s.name,
    num(g.devices),
    g.bootstraps.ok > 0 ? num(g.bootstraps.perSec) : '-',
    g.registrations.ok > 0 ? num(g.registrations.perSec) : '-',
    g.updates.ok > 0 ? num(g.updates.perSec) : '-',
    g.handshakes.ok > 0 ? num(g.handshakes.perSec) : '-',
    num(g.roundTripsPerSec),
    num(s.ratio, 3),
    lat(g.latency.finishMs),
    lat(g.latency.registeredMs ?? g.latency.updateMs),
    num(failed),
    s.server?.cpuSecondsPerBootstrap !== undefined ? num(s.server.cpuSecondsPerBootstrap * 1000, 2) : '-',
    mib(s.server?.peakRssBytes),
    rssPerDev !== undefined ? num(rssPerDev) : '-',
  ];
}

/** Left-aligned first column, the others right-aligned. */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

export function formatReport(r: FleetReport): string {
  const out: string[] = [];
  out.push(`fleet benchmark ${r.quick ? '(--quick) ' : ''}${r.date}, node ${r.node}, ${r.cpus} CPUs; server = lwbs serve (own process), generator = own process, 127.0.0.1`);
  out.push(`baseline: raw UDP request/response echo, ${r.baseline.sockets} sockets, same generator: ${num(r.baseline.roundTripsPerSec)} round trips/s`);
  out.push('');
  out.push(formatTable(COLUMNS, r.scenarios.map(scenarioRow)));
  out.push('');
  for (const s of r.scenarios) {
    const f = Object.entries(s.generator.failures);
    const extra: string[] = [];
    if (s.server) {
      const split = s.server.rssEndSplit;
      extra.push(`server CPU ${num(s.server.cpuSeconds, 2)} s`, `RSS ready ${mib(s.server.rssReadyBytes)} → end ${mib(s.server.rssEndBytes)}${split ? ` (anon ${mib(split.anon)}, file ${mib(split.file)}, shmem ${mib(split.shmem)})` : ''}`, `registry ${num(s.server.registered)}`, `db ${mib(s.server.dbBytes)}`, `UDP receive-buffer drops ${num(s.server.udpRcvbufErrors)}`);
      if (s.server.dbBytesPerRegisteredDevice !== undefined) extra.push(`db B/registration ${num(s.server.dbBytesPerRegisteredDevice)}`);
      const g = s.generator;
      if (g.kind === 'updates' && g.updates.ok > 0) extra.push(`server CPU ${num((s.server.cpuSeconds * 1e6) / g.updates.ok)} µs per Update`);
      if (g.kind === 'register' && g.registrations.ok > 0) extra.push(`server CPU ${num((s.server.cpuSeconds * 1e6) / g.registrations.ok)} µs per Register`);
      if (s.server.restBytesPerRegistration !== undefined) extra.push(`registry at rest ${num(s.server.restBytesPerRegistration)} B/registration of server RSS (ready, seeded vs empty)`);
    }
    extra.push(`generator CPU ${num(s.generator.generator.cpuSeconds, 2)} s`, `${num(s.generator.durationS, 2)} s`);
    out.push(`${s.name}: ${s.description}; ${extra.join(', ')}`);
    if (f.length > 0) out.push(`  failures: ${f.map(([c, n]) => `${c} ×${n}`).join('; ')}`);
    const rt = Object.entries(s.generator.retries ?? {});
    if (rt.length > 0) out.push(`  retries (a device starting over after CoAP gave up, not failures): ${rt.map(([c, n]) => `${c} ×${n}`).join('; ')}`);
    if (s.audit) out.push(`  store audit: ${auditLine(s.audit)}`);
    if (s.generator.impairment) {
      const o = s.generator.impairment.outgoing;
      const i = s.generator.impairment.incoming;
      out.push(`  impairment: to server ${o.dropped}/${o.seen} dropped, ${o.duplicated} duplicated, ${o.delayed} reordered; from server ${i.dropped}/${i.seen} dropped, ${i.duplicated} duplicated, ${i.delayed} reordered`);
    }
    for (const x of (s.generator.stragglers ?? []).slice(0, 5)) {
      const reqs = x.requests && x.requests.length > 0 ? `; received ${x.requests.join(', ')}` : '';
      out.push(`  not completed: ${x.endpoint} in ${x.phase} (${x.cause}) after ${num(x.elapsedMs)} ms${x.requestCode ? `, /bs ${x.requestCode}` : ''}${reqs}`);
    }
  }
  return out.join('\n');
}
