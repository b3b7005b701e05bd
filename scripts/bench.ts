/**
 * `npm run bench:micro` — micro-benchmarks of the hot paths.
 *
 * Codecs: encode and decode of a bootstrap write (one PSK Security instance /0/1 and its Server
 * instance /1/0) in every format that can carry an instance, plus single-resource writes for the
 * single-value formats. Figures are operations per second and, because shared machines are noisy,
 * a ratio against a baseline measured in the same run: V8's native JSON.stringify + JSON.parse of
 * the same data as a plain object. A ratio of 1.0 means "as fast as native JSON".
 *
 * Sessions (bench-bootstrap.ts): bootstrap sessions per second end to end over UDP, against a
 * baseline of plain CoAP round trips measured in the same run.
 *
 * DTLS (bench-dtls.ts): full handshakes per second in memory (DtlsServer + the simulator's DTLS
 * client, no sockets, both sides in this process) for PSK-CCM_8 and ECDHE-ECDSA-CCM_8 with raw
 * public keys, against the same JSON baseline (`dtls` selects only these).
 *
 * Options: --quick (shorter runs), --filter TEXT (only cases whose name contains TEXT; `session`
 *          selects the session benchmark), --json FILE (also write the results as JSON).
 */
import { writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { loadObjectRegistry } from '../src/lwm2m/ddf.js';
import { benchBootstrap } from './bench-bootstrap.js';
import { benchHandshakes, ECDHE_ECDSA_CCM_8, PSK_CCM_8, sessionMemory, type DtlsBenchResult, type DtlsMemoryResult } from './bench-dtls.js';
import { codecFor, nodeCodecs } from '../src/lwm2m/formats/index.js';
import { N, type LwM2MNode } from '../src/lwm2m/node.js';
import type { Path } from '../src/lwm2m/path.js';
import { V } from '../src/lwm2m/value.js';

interface Result {
  name: string;
  opsPerSec: number;
  nsPerOp: number;
  ratio: number;
}

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const filterIdx = args.indexOf('--filter');
const filter = filterIdx >= 0 ? args[filterIdx + 1] : undefined;
const jsonIdx = args.indexOf('--json');
const jsonOut = jsonIdx >= 0 ? args[jsonIdx + 1] : undefined;
const targetMs = quick ? 150 : 600;

/** Runs `fn` in batches until `targetMs` has passed; returns operations per second. */
function measure(fn: () => unknown): number {
  // warm up: let the JIT settle
  const warmEnd = performance.now() + targetMs / 4;
  let sink: unknown;
  while (performance.now() < warmEnd) for (let i = 0; i < 100; i++) sink = fn();
  let ops = 0;
  let batch = 100;
  const start = performance.now();
  let now = start;
  while (now - start < targetMs) {
    for (let i = 0; i < batch; i++) sink = fn();
    ops += batch;
    now = performance.now();
    if (now - start < targetMs / 10) batch *= 2;
  }
  if (sink === Symbol.for('never')) console.log('');
  return (ops * 1000) / (now - start);
}

const security = N.instance(1, [
  N.resource(0, V.string('coaps://lwm2m.example.com:5684')),
  N.resource(1, V.boolean(false)),
  N.resource(2, V.integer(0)),
  N.resource(3, V.opaque(Buffer.from('urn:imei:490154203237518'))),
  N.resource(4, V.opaque(new Uint8Array(0))),
  N.resource(5, V.opaque(Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex'))),
  N.resource(10, V.integer(101)),
]);
const server = N.instance(0, [
  N.resource(0, V.integer(101)),
  N.resource(1, V.integer(86400)),
  N.resource(6, V.boolean(true)),
  N.resource(7, V.string('U')),
]);
const writes: Array<[Path, LwM2MNode]> = [
  [[0, 1], security],
  [[1, 0], server],
];

/** The same data as plain JSON-able objects, for the baseline. */
const plain = [
  { path: '/0/1', r: { 0: 'coaps://lwm2m.example.com:5684', 1: false, 2: 0, 3: 'dXJuOmltZWk6NDkwMTU0MjAzMjM3NTE4', 4: '', 5: 'AAECAwQFBgcICQoLDA0ODw', 10: 101 } },
  { path: '/1/0', r: { 0: 101, 1: 86400, 6: true, 7: 'U' } },
];

async function main(): Promise<void> {
  const models = await loadObjectRegistry();
  const results: Result[] = [];
  const baselineOps = measure(() => {
    const a = JSON.stringify(plain[0]);
    const b = JSON.stringify(plain[1]);
    return [JSON.parse(a), JSON.parse(b)];
  });
  const add = (name: string, fn: () => unknown): void => {
    if (filter && !name.includes(filter)) return;
    const ops = measure(fn);
    results.push({ name, opsPerSec: ops, nsPerOp: 1e9 / ops, ratio: ops / baselineOps });
  };

  for (const codec of nodeCodecs()) {
    // single-value formats are measured below; legacy numbers share their codec's code
    if ([0, 42, 60, 1542, 1543].includes(codec.contentFormat)) continue;
    const payloads = writes.map(([p, n]) => codec.encode(p, n));
    const size = payloads.reduce((s, b) => s + b.length, 0);
    add(`encode bootstrap write  ${codec.name.padEnd(17)} (${size} B)`, () => writes.map(([p, n]) => codec.encode(p, n)));
    add(`decode bootstrap write  ${codec.name.padEnd(17)} (${size} B)`, () => writes.map(([p], i) => codec.decode(p, payloads[i]!, models)));
  }
  const single: Array<[number, Path, LwM2MNode]> = [
    [0, [1, 0, 1], N.resource(1, V.integer(86400))],
    [60, [1, 0, 1], N.resource(1, V.integer(86400))],
    [42, [0, 1, 5], N.resource(5, V.opaque(Buffer.alloc(16, 7)))],
  ];
  for (const [cf, p, n] of single) {
    const codec = codecFor(cf);
    const payload = codec.encode(p, n);
    add(`encode single resource  ${codec.name.padEnd(17)} (${payload.length} B)`, () => codec.encode(p, n));
    add(`decode single resource  ${codec.name.padEnd(17)} (${payload.length} B)`, () => codec.decode(p, payload, models));
  }

  const width = Math.max(...results.map((r) => r.name.length), 30);
  console.log(`baseline: native JSON.stringify+parse of the same write: ${fmt(baselineOps)} ops/s`);
  console.log(`${'case'.padEnd(width)}  ${'ops/s'.padStart(12)}  ${'ns/op'.padStart(9)}  ${'× baseline'.padStart(10)}`);
  for (const r of results) {
    console.log(`${r.name.padEnd(width)}  ${fmt(r.opsPerSec).padStart(12)}  ${r.nsPerOp.toFixed(0).padStart(9)}  ${r.ratio.toFixed(2).padStart(10)}`);
  }
  const handshakes: DtlsBenchResult[] = [];
  const memory: DtlsMemoryResult[] = [];
  if (!filter || filter === 'dtls' || 'DTLS full handshake'.includes(filter)) {
    for (const suite of [PSK_CCM_8, ECDHE_ECDSA_CCM_8]) handshakes.push(await benchHandshakes(suite, { ms: quick ? 1000 : 3000, lanes: 4 }));
    console.log('');
    console.log(`DTLS 1.2 full handshakes in memory (server + client in this process, ${handshakes[0]!.lanes} at a time; cookie exchange included):`);
    for (const h of handshakes) {
      console.log(`${h.name.padEnd(Math.max(width, 44))}  ${fmt(h.perSec).padStart(12)}/s  ${(h.perSec / baselineOps).toFixed(4).padStart(7)} × baseline  (${fmt((1e6 / h.perSec))} µs per handshake, ${h.handshakes} done)`);
    }
    for (const suite of [PSK_CCM_8, ECDHE_ECDSA_CCM_8]) memory.push(await sessionMemory(suite, quick ? 500 : 2000));
    console.log('server memory per open DTLS session (sessions left open, clients dropped, after a full GC):');
    for (const m of memory) {
      console.log(`  ${m.name}: ${fmt(m.heapBytesPerSession)} B V8 heap + ${fmt(m.externalBytesPerSession)} B external (Buffers); RSS ${fmt(m.rssBytesPerSession)} B (${m.sessions} sessions)`);
    }
  }
  let sessions: Awaited<ReturnType<typeof benchBootstrap>> | undefined;
  if (!filter || 'bootstrap session'.includes(filter) || filter === 'session') {
    sessions = await benchBootstrap({ quick });
    console.log('');
    console.log(`baseline: CoAP round trips (CON GET → 2.05) over UDP on 127.0.0.1, same concurrency: ${fmt(sessions.baselinePerSec)} /s`);
    for (const r of sessions.results) {
      console.log(`${r.name.padEnd(width)}  ${fmt(r.perSec).padStart(12)}/s  ${r.ratio.toFixed(3).padStart(7)} × baseline  (${r.detail})`);
    }
  }
  if (jsonOut) {
    writeFileSync(jsonOut, JSON.stringify({ date: new Date().toISOString(), node: process.version, baselineOpsPerSec: baselineOps, results, handshakes, dtlsSessionMemory: memory, sessions }, null, 2));
  }
}

function fmt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
