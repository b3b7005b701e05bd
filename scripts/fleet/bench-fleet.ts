/**
 * The fleet benchmark (issue 6): `lwbs serve` in its own process (fresh data directory per
 * scenario), the load generator (generator.ts) in another, both on 127.0.0.1.
 *
 *   node dist/scripts/fleet/bench-fleet.js [--quick] [--filter TEXT] [--out DIR]
 *        [--devices N] [--arrival burst|ramp:SECONDS] [--lwm2m 1.0|1.1|1.2] [--pct CF]
 *        [--loss P] [--dup P] [--reorder P] [--server-log LEVEL] [--keep] [--server-prof DIR] [--server-heap DIR]
 *
 * Scenarios (quick / full sizes in SCENARIOS): nosec bootstrap storm, psk bootstrap storm (full
 * DTLS handshakes), registration storm (seeded credentials), steady-state Updates of active
 * devices over a registry seeded with ≥100,000 registrations (10,000 with --quick), and the nosec
 * storm under 10 % loss each way. Baseline, same run: raw UDP request/response echo (its own
 * process) driven by the same generator; each scenario's round trips/s ÷ that = "× base".
 *
 * Output: table on stdout; JSON and SVG in DIR (default bench-results/, which gets a
 * `.gitignore` of `*` so it stays out of git).
 */
import { spawn } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { auditStore } from './audit.js';
import { formatReport } from './report.js';
import { endpointName } from './generator.js';
import { seedStore, type SeedPlan } from './seed.js';
import { allocatePorts, dbBytes, publicUris, startServer, udpReceiveBufferErrors, type ServerPorts } from './server-runner.js';
import { renderSvg } from './svg.js';
import type { Arrival, FleetReport, FleetVersion, GeneratorResult, GeneratorSpec, ScenarioResult, ServerMetrics } from './types.js';
import type { ImpairmentOptions } from './impairment.js';

const GENERATOR = fileURLToPath(new URL('./generator.js', import.meta.url));
const ECHO = fileURLToPath(new URL('./echo-server.js', import.meta.url));

export interface FleetOptions {
  readonly quick: boolean;
  readonly filter?: string;
  readonly outDir?: string;
  readonly devices?: number;
  readonly arrival: Arrival;
  readonly lwm2mVersion: FleetVersion;
  readonly pct?: number;
  readonly impairment: ImpairmentOptions;
  readonly serverLog: string;
  readonly keep: boolean;
  /** Write a V8 CPU profile of each scenario's server process into this folder (`node --cpu-prof`). */
  readonly serverProfileDir?: string;
  /** Write a V8 heap snapshot of each scenario's server, at the end of its run, into this folder. */
  readonly serverHeapDir?: string;
  /** Print progress to stderr. */
  readonly verbose: boolean;
}

interface Scenario {
  readonly name: string;
  readonly description: string;
  /** Sizes: [quick, full]. */
  readonly devices: readonly [number, number];
  readonly deadlineMs: readonly [number, number];
  readonly kind: GeneratorSpec['kind'];
  readonly security: 'nosec' | 'psk' | 'rpk';
  readonly seededRegistrations?: readonly [number, number];
  readonly updateSeconds?: readonly [number, number];
  readonly impaired?: boolean;
}

export const SCENARIOS: readonly Scenario[] = [
  { name: 'nosec-storm', description: 'Bootstrap-Request → Finish → Register, plain CoAP, zero-touch', devices: [500, 5000], deadlineMs: [30_000, 120_000], kind: 'storm', security: 'nosec' },
  { name: 'psk-storm', description: 'the same over DTLS PSK (enrolled devices): a full handshake to the bootstrap and one to the registration server per device', devices: [200, 2000], deadlineMs: [30_000, 150_000], kind: 'storm', security: 'psk' },
  { name: 'rpk-storm', description: 'the same over DTLS ECDHE_ECDSA with raw public keys (enrolled devices, each its own P-256 key pair; the hand-off gives each a fresh pair): a full handshake to each server per device', devices: [100, 1000], deadlineMs: [30_000, 150_000], kind: 'storm', security: 'rpk' },
  { name: 'register-storm', description: 'Register only (accounts and nosec credentials seeded)', devices: [500, 5000], deadlineMs: [30_000, 120_000], kind: 'register', security: 'nosec' },
  { name: 'updates', description: 'Updates in a closed loop from the active devices, registry seeded', devices: [200, 2000], deadlineMs: [30_000, 90_000], kind: 'updates', security: 'nosec', seededRegistrations: [10_000, 100_000], updateSeconds: [5, 20] },
  // Under loss the tail is CoAP's backoff (ACK_TIMEOUT 2-3 s doubling, up to MAX_TRANSMIT_WAIT
  // 93 s; devices start over when CoAP gives up): with 10 % loss each way ~1.5 % of devices need
  // more than 25 s and ~0.01 % more than 60 s (7 exchanges; Monte Carlo). The full run waits
  // 180 s, enough for every device; --quick stops at 30 s, where about 1 in 100 may still be
  // retransmitting (counted under "deadline").
  { name: 'loss-storm', description: 'nosec storm with 10 % loss each way (server timers: CoAP defaults; devices start over when CoAP gives up)', devices: [100, 1000], deadlineMs: [30_000, 180_000], kind: 'storm', security: 'nosec', impaired: true },
];

function log(o: FleetOptions, msg: string): void {
  if (o.verbose) process.stderr.write(`[fleet] ${msg}\n`);
}

async function runGeneratorProcess(spec: Omit<GeneratorSpec, 'resultFile'>, workDir: string): Promise<GeneratorResult> {
  const resultFile = join(workDir, `result-${process.pid}-${Date.now()}.json`);
  const child = spawn(process.execPath, ['--max-old-space-size=4096', GENERATOR, JSON.stringify({ ...spec, resultFile })], { stdio: ['ignore', 'inherit', 'inherit'] });
  const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  if (code !== 0) throw new Error(`the generator exited with ${code}`);
  return JSON.parse(readFileSync(resultFile, 'utf8')) as GeneratorResult;
}

export async function runBaseline(o: FleetOptions, workDir: string): Promise<GeneratorResult> {
  const child = spawn(process.execPath, [ECHO], { stdio: ['pipe', 'pipe', 'inherit'] });
  try {
    const port = await new Promise<number>((resolvePort, reject) => {
      let buf = '';
      child.stdout!.on('data', (d: Buffer) => {
        buf += d.toString();
        const nl = buf.indexOf('\n');
        if (nl >= 0) resolvePort((JSON.parse(buf.slice(0, nl)) as { port: number }).port);
      });
      child.once('exit', (c) => reject(new Error(`echo server exited with ${c}`)));
    });
    const sockets = o.quick ? 128 : 256;
    return await runGeneratorProcess(
      { kind: 'echo', devices: sockets, endpointPrefix: 'echo-', arrival: { mode: 'burst' }, security: 'nosec', lwm2mVersion: o.lwm2mVersion, deadlineMs: 60_000, echo: { port, sockets, seconds: o.quick ? 2 : 5 } },
      workDir,
    );
  } finally {
    child.kill('SIGTERM');
  }
}

/** Waits until the process used < 5 % of a core for `quietMs` (at most `maxMs`). */
export async function waitIdle(sample: () => { cpuSeconds: number }, quietMs: number, maxMs: number): Promise<void> {
  const until = Date.now() + maxMs;
  let last = sample().cpuSeconds;
  while (Date.now() < until) {
    await new Promise((r) => setTimeout(r, quietMs));
    const now = sample().cpuSeconds;
    if (now - last < (0.05 * quietMs) / 1000) return;
    last = now;
  }
}

export async function runScenario(o: FleetOptions, sc: Scenario, baselinePerSec: number): Promise<ScenarioResult> {
  const q = o.quick ? 0 : 1;
  const devices = o.devices ?? sc.devices[q];
  const dataDir = mkdtempSync(join(tmpdir(), `lwbs-fleet-${sc.name}-`));
  const secretKeyHex = randomBytes(32).toString('hex');
  const pskSecretHex = randomBytes(16).toString('hex');
  const prefix = `fleet-${sc.security}-${sc.name}-`;
  try {
    const ports: ServerPorts = await allocatePorts();
    const regUri = publicUris(ports).coap;
    // rpk: every device its own P-256 key pair, enrolled; the generator reads the pairs from a file.
    const rpkKeys = sc.security === 'rpk' ? Array.from({ length: devices }, () => generateKeyPairSync('ec', { namedCurve: 'prime256v1' })) : [];
    const rpkKeysFile = join(dataDir, 'device-keys.json');
    if (sc.security === 'rpk') {
      const entries = rpkKeys.map((kp, i) => [endpointName(prefix, i), [kp.publicKey.export({ format: 'der', type: 'spki' }).toString('base64'), kp.privateKey.export({ format: 'der', type: 'pkcs8' }).toString('base64')]]);
      writeFileSync(rpkKeysFile, JSON.stringify(Object.fromEntries(entries)));
    }
    const plan: SeedPlan = {
      ...(sc.kind === 'storm' && sc.security === 'nosec' ? { nosecPrefix: prefix } : {}),
      ...(sc.kind === 'storm' && sc.security === 'psk' ? { psk: { prefix, devices, secretHex: pskSecretHex } } : {}),
      ...(sc.kind === 'storm' && sc.security === 'rpk' ? { rpk: { prefix, publicKeys: rpkKeys.map((kp) => kp.publicKey.export({ format: 'der', type: 'spki' })) } } : {}),
      ...(sc.kind !== 'storm' ? { credentials: { prefix, devices, serverUri: regUri } } : {}),
      ...(sc.seededRegistrations ? { registrations: { prefix: 'seeded-', count: sc.seededRegistrations[q] } } : {}),
    };
    log(o, `${sc.name}: seeding`);
    const seeded = await seedStore(dataDir, secretKeyHex, plan);
    log(o, `${sc.name}: seeded in ${seeded.ms} ms (${seeded.seededRegistrations} registrations); starting lwbs serve`);
    const server = await startServer({
      dataDir, ports, secretKeyHex, logLevel: o.serverLog,
      nodeArgs: [
        ...(o.serverProfileDir ? ['--cpu-prof', `--cpu-prof-dir=${resolve(o.serverProfileDir)}`, `--cpu-prof-name=${sc.name}-${Date.now()}.cpuprofile`] : []),
        ...(o.serverHeapDir ? ['--heapsnapshot-signal=SIGUSR2'] : []),
      ],
      ...(o.serverHeapDir ? { cwd: resolve(o.serverHeapDir) } : {}),
    });
    let generator: GeneratorResult;
    let metrics: ServerMetrics;
    try {
      await new Promise((r) => setTimeout(r, 300)); // let start-up work settle before the CPU reading
      const ready = server.sample();
      const drops0 = udpReceiveBufferErrors();
      const bootstrapUri = sc.security !== 'nosec' ? `coaps://127.0.0.1:${ports.bsCoaps}` : `coap://127.0.0.1:${ports.bsCoap}`;
      log(o, `${sc.name}: ${devices} devices`);
      generator = await runGeneratorProcess(
        {
          kind: sc.kind,
          devices,
          endpointPrefix: prefix,
          arrival: o.arrival,
          security: sc.security,
          lwm2mVersion: o.lwm2mVersion,
          ...(o.pct !== undefined ? { preferredFormat: o.pct } : {}),
          bootstrapUri,
          registrationUri: regUri,
          pskSecretHex,
          ...(sc.security === 'rpk' ? { rpkKeysFile, ...(seeded.bootstrapServerKey ? { bootstrapServerKeyHex: Buffer.from(seeded.bootstrapServerKey).toString('hex') } : {}) } : {}),
          ...(sc.impaired ? { impairment: o.impairment, serverPorts: [ports.bsCoap, ports.bsCoaps, ports.regCoap, ports.regCoaps] } : {}),
          deadlineMs: sc.deadlineMs[q],
          ...(sc.updateSeconds ? { updates: { seconds: sc.updateSeconds[q] } } : {}),
        },
        dataDir,
      );
      // The server may still be working through its sockets' backlog when the last device is
      // done (a Finish ACK queued at the bootstrap socket while the device's Register, on the
      // registration socket, was already answered): let it finish before reading and stopping it.
      await waitIdle(server.sample, 300, 15_000);
      const end = server.sample();
      if (o.serverHeapDir) log(o, `${sc.name}: heap snapshot ${await server.heapSnapshot(resolve(o.serverHeapDir))}`);
      const udpRcvbufErrors = udpReceiveBufferErrors() - drops0;
      const registered = seeded.seededRegistrations + generator.registeredDevices;
      const db = dbBytes(dataDir);
      const cpuSeconds = end.cpuSeconds - ready.cpuSeconds;
      metrics = {
        cpuSeconds,
        ...(generator.bootstraps.ok > 0 ? { cpuSecondsPerBootstrap: cpuSeconds / generator.bootstraps.ok } : {}),
        peakRssBytes: end.peakRssBytes,
        rssReadyBytes: ready.rssBytes,
        rssEndBytes: end.rssBytes,
        rssEndSplit: { anon: end.rssAnonBytes, file: end.rssFileBytes, shmem: end.rssShmemBytes },
        registered,
        udpRcvbufErrors,
        ...(registered > 0 ? { dbBytesPerRegisteredDevice: db / registered } : {}),
        dbBytes: db,
      };
    } finally {
      await server.stop();
    }
    const audit = sc.kind === 'storm' || sc.kind === 'register' ? await auditStore(dataDir, secretKeyHex, prefix, devices, sc.kind === 'storm') : undefined;
    return {
      name: sc.name,
      description: sc.description,
      params: {
        devices,
        arrival: o.arrival,
        security: sc.security,
        lwm2mVersion: o.lwm2mVersion,
        ...(o.pct !== undefined ? { pct: o.pct } : {}),
        ...(sc.impaired ? { impairment: o.impairment } : {}),
        ...(sc.seededRegistrations ? { seededRegistrations: seeded.seededRegistrations, seedMs: seeded.ms } : {}),
        ...(sc.updateSeconds ? { updateSeconds: sc.updateSeconds[q] } : {}),
        deadlineMs: sc.deadlineMs[q],
        serverLog: o.serverLog,
      },
      generator,
      server: metrics,
      ...(audit ? { audit } : {}),
      ratio: baselinePerSec > 0 ? generator.roundTripsPerSec / baselinePerSec : Number.NaN,
    };
  } finally {
    if (!o.keep) rmSync(dataDir, { recursive: true, force: true });
    else log(o, `${sc.name}: data kept in ${dataDir}`);
  }
}

export async function runFleet(o: FleetOptions): Promise<FleetReport> {
  const workDir = mkdtempSync(join(tmpdir(), 'lwbs-fleet-'));
  try {
    log(o, 'baseline: UDP echo');
    const base = await runBaseline(o, workDir);
    const scenarios: ScenarioResult[] = [];
    for (const sc of SCENARIOS) {
      if (o.filter && !sc.name.includes(o.filter)) continue;
      scenarios.push(await runScenario(o, sc, base.roundTripsPerSec));
    }
    // Bytes per registered device: peak RSS above an empty server's (the lowest ready RSS of a
    // scenario that started with an empty registry), per registration in the registry.
    const empty = scenarios.filter((s) => s.params.seededRegistrations === undefined && s.server && s.server.rssReadyBytes > 0).map((s) => s.server!.rssReadyBytes);
    if (empty.length > 0) {
      const baseRss = Math.min(...empty);
      for (const s of scenarios) {
        if (s.server && s.server.registered > 0 && s.server.peakRssBytes > 0) s.server.bytesPerRegisteredDevice = Math.max(0, s.server.peakRssBytes - baseRss) / s.server.registered;
        const seeded = s.params.seededRegistrations;
        if (s.server && typeof seeded === 'number' && seeded > 0) s.server.restBytesPerRegistration = (s.server.rssReadyBytes - baseRss) / seeded;
      }
    }
    return {
      date: new Date().toISOString(),
      node: process.version,
      cpus: availableParallelism(),
      quick: o.quick,
      baseline: { roundTripsPerSec: base.roundTripsPerSec, sockets: base.devices, ...(base.latency.echoMs ? { latencyMs: base.latency.echoMs } : {}) },
      scenarios,
    };
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
}

/** Writes `<dir>/fleet-<stamp>.json|.svg` and `fleet-latest.*`; the folder ignores itself in git. */
export function writeResults(dir: string, report: FleetReport): { json: string; svg: string } {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, '.gitignore'), '*\n');
  const stamp = report.date.replace(/[:.]/g, '-');
  const json = join(dir, `fleet-${stamp}.json`);
  const svg = join(dir, `fleet-${stamp}.svg`);
  const text = JSON.stringify(report, null, 2);
  const chart = renderSvg(report);
  writeFileSync(json, text);
  writeFileSync(svg, chart);
  writeFileSync(join(dir, 'fleet-latest.json'), text);
  writeFileSync(join(dir, 'fleet-latest.svg'), chart);
  return { json, svg };
}

export function parseArgs(args: readonly string[]): FleetOptions {
  const value = (name: string): string | undefined => {
    const i = args.indexOf(name);
    if (i < 0) return undefined;
    const v = args[i + 1];
    if (v === undefined || v.startsWith('--')) throw new Error(`${name} needs a value`);
    return v;
  };
  const prob = (name: string, dflt: number): number => {
    const v = value(name);
    const n = v === undefined ? dflt : Number(v);
    if (!(n >= 0 && n <= 1)) throw new Error(`${name} must be a probability 0..1, got ${v}`);
    return n;
  };
  let arrival: Arrival = { mode: 'burst' };
  const a = value('--arrival');
  if (a !== undefined && a !== 'burst') {
    const m = /^ramp:(\d+(?:\.\d+)?)$/.exec(a);
    if (!m) throw new Error(`--arrival must be burst or ramp:SECONDS, got ${a}`);
    arrival = { mode: 'ramp', seconds: Number(m[1]) };
  }
  const version = value('--lwm2m') ?? '1.1';
  if (!['1.0', '1.1', '1.2'].includes(version)) throw new Error(`--lwm2m must be 1.0, 1.1 or 1.2, got ${version}`);
  const devices = value('--devices');
  if (devices !== undefined && !(Number.isInteger(Number(devices)) && Number(devices) > 0)) throw new Error(`--devices must be a positive integer, got ${devices}`);
  const pct = value('--pct');
  if (pct !== undefined && !(Number.isInteger(Number(pct)) && Number(pct) >= 0 && Number(pct) <= 65535)) throw new Error(`--pct must be a Content-Format number, got ${pct}`);
  const filter = value('--filter');
  const prof = value('--server-prof');
  const heap = value('--server-heap');
  if (heap !== undefined) mkdirSync(heap, { recursive: true });
  return {
    ...(heap !== undefined ? { serverHeapDir: heap } : {}),
    ...(prof !== undefined ? { serverProfileDir: prof } : {}),
    quick: args.includes('--quick'),
    ...(filter !== undefined ? { filter } : {}),
    outDir: value('--out') ?? 'bench-results',
    ...(devices !== undefined ? { devices: Number(devices) } : {}),
    arrival,
    lwm2mVersion: version as FleetVersion,
    ...(pct !== undefined ? { pct: Number(pct) } : {}),
    impairment: { loss: prob('--loss', 0.1), duplicate: prob('--dup', 0), reorder: prob('--reorder', 0), seed: 6 },
    serverLog: value('--server-log') ?? 'info',
    keep: args.includes('--keep'),
    verbose: !args.includes('--silent'),
  };
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const started = Date.now();
  const report = await runFleet(o);
  console.log(formatReport(report));
  const files = writeResults(resolve(o.outDir ?? 'bench-results'), report);
  console.log(`\nwrote ${files.json} and ${files.svg} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
}

const isMain = process.argv[1] !== undefined && fileURLToPath(import.meta.url) === resolve(process.argv[1]);
if (isMain) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
