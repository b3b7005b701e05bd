/**
 * The fleet benchmark's chart as a standalone SVG (pure): per scenario, throughput as a multiple
 * of the same-run UDP echo baseline (left), and latency to registered p50 / p95 / p99 (right;
 * updates: per Update).
 */
import type { FleetReport } from './types.js';

export function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);
}

function fmt(n: number): string {
  if (!Number.isFinite(n)) return '-';
  return n >= 100 ? Math.round(n).toLocaleString('en-US') : n >= 1 ? n.toFixed(1) : n.toFixed(3);
}

export function renderSvg(r: FleetReport): string {
  const rows = r.scenarios;
  const rowH = 44;
  const top = 70;
  const labelW = 190;
  const panelW = 330;
  const gap = 40;
  const width = labelW + panelW * 2 + gap + 30;
  const height = top + Math.max(1, rows.length) * rowH + 40;
  const maxRatio = Math.max(1e-9, ...rows.map((s) => (Number.isFinite(s.ratio) ? s.ratio : 0)));
  const lat = (s: (typeof rows)[number]) => s.generator.latency.registeredMs ?? s.generator.latency.updateMs;
  const maxLat = Math.max(1e-9, ...rows.map((s) => lat(s)?.p99 ?? 0).filter(Number.isFinite));
  const x0 = labelW;
  const x1 = labelW + panelW + gap;
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`);
  parts.push(`<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`);
  parts.push(`<text x="10" y="20" font-size="15" font-weight="bold">${escapeXml(`lwbs fleet benchmark${r.quick ? ' (quick)' : ''}`)}</text>`);
  parts.push(`<text x="10" y="38" fill="#555">${escapeXml(`${r.date} · node ${r.node} · ${r.cpus} CPUs · baseline ${fmt(r.baseline.roundTripsPerSec)} UDP round trips/s`)}</text>`);
  parts.push(`<text x="${x0}" y="${top - 10}" font-weight="bold">throughput, × baseline (round trips/s)</text>`);
  parts.push(`<text x="${x1}" y="${top - 10}" font-weight="bold">latency to registered, ms (p50 / p95 / p99)</text>`);
  rows.forEach((s, i) => {
    const y = top + i * rowH;
    parts.push(`<text x="10" y="${y + 22}">${escapeXml(s.name)}</text>`);
    const ratio = Number.isFinite(s.ratio) ? s.ratio : 0;
    const w = Math.max(1, (ratio / maxRatio) * (panelW - 60));
    parts.push(`<rect x="${x0}" y="${y + 8}" width="${w.toFixed(1)}" height="20" fill="#4c78a8"><title>${escapeXml(`${s.name}: ${fmt(s.generator.roundTripsPerSec)} round trips/s`)}</title></rect>`);
    parts.push(`<text x="${(x0 + w + 4).toFixed(1)}" y="${y + 22}">${escapeXml(fmt(ratio))}</text>`);
    const l = lat(s);
    if (l) {
      const bars: Array<[string, number, string]> = [['p99', l.p99, '#e45756'], ['p95', l.p95, '#f58518'], ['p50', l.p50, '#54a24b']];
      for (const [name, v, color] of bars) {
        const bw = Math.max(1, (v / maxLat) * (panelW - 70));
        parts.push(`<rect x="${x1}" y="${y + 8}" width="${bw.toFixed(1)}" height="20" fill="${color}"><title>${escapeXml(`${name} ${fmt(v)} ms`)}</title></rect>`);
      }
      parts.push(`<text x="${(x1 + Math.max(1, (l.p99 / maxLat) * (panelW - 70)) + 4).toFixed(1)}" y="${y + 22}">${escapeXml(`${fmt(l.p50)} / ${fmt(l.p95)} / ${fmt(l.p99)}`)}</text>`);
    } else {
      parts.push(`<text x="${x1}" y="${y + 22}" fill="#999">no latency</text>`);
    }
  });
  parts.push(`<text x="10" y="${height - 12}" fill="#555">${escapeXml('legend: p50 green, p95 orange, p99 red')}</text>`);
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
