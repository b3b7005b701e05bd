/**
 * Bootstrap sessions per second, end to end on 127.0.0.1: simulated devices (src/simulator/)
 * re-bootstrap in a loop against the bootstrap server on a real SQLite store (WAL, in a temp
 * folder). Baseline, measured in the same run with the same concurrency: plain CoAP round trips
 * (CON GET → piggy-backed 2.05) between two CoapNodes — the transport alone. A session of the
 * `meters` profile is 6 round trips (/bs, 2 Deletes, 2 Writes, Finish), so 1/6 ≈ 0.17 × baseline
 * is the ceiling; the gap to it is the cost of admission, planning, encoding and the store.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { generateServerKeyPair } from '../src/bootstrap/credentials.js';
import { BootstrapServer } from '../src/bootstrap/server.js';
import { CoapNode } from '../src/coap/coap-node.js';
import { DeviceSimulator } from '../src/simulator/simulator.js';
import { openStore } from '../src/store/store.js';

export interface SessionBenchResult {
  readonly name: string;
  readonly perSec: number;
  readonly ratio: number;
  readonly detail: string;
}

const PROFILES = [
  { name: 'meters', match: ['nosec-*'], delete: ['/0', '/1'], servers: [{ shortServerId: 1, handOff: true, lifetime: 300, binding: 'U', security: { mode: 'nosec' } }] },
  { name: 'keys', match: ['psk-*'], delete: ['/0', '/1'], servers: [{ shortServerId: 1, handOff: true, lifetime: 300, binding: 'U', security: { mode: 'psk' } }] },
];

/** Runs `worker` on `concurrency` lanes until `ms` have passed; returns completed operations per second. */
async function lanes(concurrency: number, ms: number, worker: (lane: number) => Promise<void>): Promise<number> {
  let done = 0;
  const end = performance.now() + ms;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async (_, lane) => {
      while (performance.now() < end) {
        await worker(lane);
        done++;
      }
    }),
  );
  return (done * 1000) / (performance.now() - start);
}

export async function benchBootstrap(opts: { quick: boolean }): Promise<{ baselinePerSec: number; results: SessionBenchResult[] }> {
  const concurrency = opts.quick ? 16 : 50;
  const ms = opts.quick ? 1000 : 4000;
  const transmission = { ackTimeoutMs: 1000, ackRandomFactor: 1, maxRetransmit: 2 };

  // Baseline: the transport alone.
  const echo = await CoapNode.listen({ host: '127.0.0.1', port: 0, handler: (_req, res) => res.send('2.05', { contentFormat: 0, payload: 'ok' }), transmission });
  const client = await CoapNode.listen({ host: '127.0.0.1', port: 0, handler: (_req, res) => res.send('4.04'), transmission });
  const peer = { address: '127.0.0.1', port: echo.address().port };
  await lanes(concurrency, ms / 4, async () => void (await client.request(peer, { method: 'GET', path: [3, 0, 0] })));
  const baselinePerSec = await lanes(concurrency, ms, async () => void (await client.request(peer, { method: 'GET', path: [3, 0, 0] })));
  await client.close();
  await echo.close();

  const dir = mkdtempSync(join(tmpdir(), 'lwbs-bench-'));
  const store = await openStore({ dataDir: dir, secretKey: randomBytes(32) });
  const results: SessionBenchResult[] = [];
  try {
    for (const p of PROFILES) await store.profiles.put(p.name, JSON.stringify(p));
    const server = new BootstrapServer({ store, registration: { coap: 'coap://127.0.0.1:5783', coaps: 'coaps://127.0.0.1:5784', publicKey: generateServerKeyPair().publicKey } });
    const port = (await server.listen({ host: '127.0.0.1', port: 0, transmission })).address().port;
    const target = { address: '127.0.0.1', port };
    for (const [label, prefix, detail] of [
      ['bootstrap session, nosec hand-off', 'nosec', '6 round trips, session + request records'],
      ['bootstrap session, generated PSK  ', 'psk', '+ 16-byte key generated, sealed, stored pending, activated'],
    ] as const) {
      const sims = await Promise.all(Array.from({ length: concurrency }, (_, i) => DeviceSimulator.start({ endpoint: `${prefix}-${i}`, transmission })));
      try {
        let failures = 0;
        const run = async (lane: number): Promise<void> => {
          const r = await sims[lane]!.bootstrap(target, { timeoutMs: 10_000 });
          if (r.outcome !== 'success') failures++;
        };
        await lanes(concurrency, ms / 4, run);
        const perSec = await lanes(concurrency, ms, run);
        await server.idle();
        if (failures > 0) throw new Error(`${failures} bootstrap sessions failed during the benchmark`);
        results.push({ name: label, perSec, ratio: perSec / baselinePerSec, detail });
      } finally {
        await Promise.all(sims.map((s) => s.close()));
      }
    }
    await server.close();
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return { baselinePerSec, results };
}
