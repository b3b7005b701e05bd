/**
 * Summarises a V8 CPU profile (`node --cpu-prof`): the functions with the most self time, and
 * the self time grouped by source (node-coap, better-sqlite3, lwbs folders, node internals, GC).
 *
 *   node dist/scripts/profile-top.js FILE.cpuprofile [--top N]
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { resolve } from 'node:path';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly hitCount?: number;
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly startTime: number;
  readonly endTime: number;
  readonly samples?: readonly number[];
  readonly timeDeltas?: readonly number[];
}

export interface ProfileLine {
  readonly name: string;
  readonly ms: number;
  readonly pct: number;
}

/** Which part of the program a frame's URL belongs to. */
export function groupOf(url: string, functionName: string): string {
  if (url === '') {
    if (functionName === '(garbage collector)') return 'GC';
    if (functionName === '(idle)' || functionName === '(program)') return functionName;
    return 'native';
  }
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1]!;
  if (url.startsWith('node:')) return url.replace(/^node:(internal\/)?/, 'node:').split('/').slice(0, 2).join('/');
  const src = /\/(src|scripts)\/([^/]+)\//.exec(url);
  if (src) return `${src[1]}/${src[2]}`;
  return url.split('/').slice(-2).join('/');
}

/** Self time per function and per group (ms and % of the sampled time). */
export function summarizeProfile(p: CpuProfile): { readonly totalMs: number; readonly functions: ProfileLine[]; readonly groups: ProfileLine[] } {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  if (p.samples && p.timeDeltas) {
    for (let i = 0; i < p.samples.length; i++) selfUs.set(p.samples[i]!, (selfUs.get(p.samples[i]!) ?? 0) + (p.timeDeltas[i + 1] ?? p.timeDeltas[i] ?? 0));
  } else {
    const total = p.endTime - p.startTime;
    const hits = p.nodes.reduce((a, n) => a + (n.hitCount ?? 0), 0);
    for (const n of p.nodes) selfUs.set(n.id, ((n.hitCount ?? 0) * total) / Math.max(1, hits));
  }
  const fn = new Map<string, number>();
  const groups = new Map<string, number>();
  let total = 0;
  for (const [id, us] of selfUs) {
    const n = byId.get(id);
    if (!n) continue;
    const { functionName, url, lineNumber } = n.callFrame;
    if (functionName === '(idle)') continue;
    total += us;
    const file = url.split('/').slice(-1)[0] ?? '';
    const key = `${functionName || '(anonymous)'} ${file}${file ? `:${lineNumber + 1}` : ''}`;
    fn.set(key, (fn.get(key) ?? 0) + us);
    const g = groupOf(url, functionName);
    groups.set(g, (groups.get(g) ?? 0) + us);
  }
  const lines = (m: Map<string, number>): ProfileLine[] =>
    [...m].map(([name, us]) => ({ name, ms: us / 1000, pct: total > 0 ? (100 * us) / total : 0 })).sort((a, b) => b.ms - a.ms);
  return { totalMs: total / 1000, functions: lines(fn), groups: lines(groups) };
}

function main(): void {
  const file = process.argv[2];
  if (!file) throw new Error('usage: profile-top FILE.cpuprofile [--top N]');
  const i = process.argv.indexOf('--top');
  const top = i > 0 ? Number(process.argv[i + 1]) : 25;
  const s = summarizeProfile(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile);
  console.log(`busy (non-idle) samples: ${s.totalMs.toFixed(0)} ms`);
  console.log('\nself time by source:');
  for (const g of s.groups.slice(0, 15)) console.log(`${g.pct.toFixed(1).padStart(6)} %  ${g.ms.toFixed(0).padStart(7)} ms  ${g.name}`);
  console.log(`\ntop ${top} functions by self time:`);
  for (const f of s.functions.slice(0, top)) console.log(`${f.pct.toFixed(1).padStart(6)} %  ${f.ms.toFixed(0).padStart(7)} ms  ${f.name}`);
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === resolve(process.argv[1])) main();
