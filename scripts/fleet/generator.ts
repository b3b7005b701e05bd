/**
 * The fleet load generator: one process, one scenario (spec as JSON in argv[2], result as JSON to
 * `spec.resultFile`). Every simulated device is a DeviceSimulator (src/simulator/) with its own
 * UDP socket (and, over coaps://, its own DTLS socket per server), so the server sees thousands of
 * distinct 5-tuples as it would in the field.
 *
 *   node dist/scripts/fleet/generator.js '{"kind":"storm",...}'
 *
 * Kinds (types.ts `GeneratorSpec`): `storm` (Bootstrap-Request → Finish → Register),
 * `register` (seeded accounts: Register only), `updates` (Register unmeasured, then Updates in a
 * closed loop), `echo` (the baseline: raw UDP round trips against the echo process).
 * Loss / duplication / reordering: impairment.ts (a wrapper of this process's sockets).
 */
import { createHmac } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { setMaxListeners } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { N } from '../../src/lwm2m/node.js';
import { V } from '../../src/lwm2m/value.js';
import { DeviceSimulator } from '../../src/simulator/simulator.js';
import type { BootstrapReport, RegistrationReport } from '../../src/simulator/report.js';
import { installImpairment, LossModel } from './impairment.js';
import { summarize, Window } from './stats.js';
import type { GeneratorResult, GeneratorSpec, Straggler } from './types.js';

const now = (): number => performance.now();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The per-device bootstrap PSK key the runner enrolled (HMAC-SHA256(secret, ep), 16 bytes). */
export function devicePskKey(secretHex: string, endpoint: string): Buffer {
  return createHmac('sha256', Buffer.from(secretHex, 'hex')).update(endpoint).digest().subarray(0, 16);
}

/** The endpoint name of device `i`. */
export function endpointName(prefix: string, i: number): string {
  return `${prefix}${String(i).padStart(6, '0')}`;
}

/** When device `i` of `n` starts, ms after the phase start. */
export function arrivalOffsetMs(arrival: GeneratorSpec['arrival'], i: number, n: number): number {
  return arrival.mode === 'burst' || n <= 1 ? 0 : (arrival.seconds * 1000 * i) / n;
}

/**
 * A bootstrapping device gives up and starts over when the server sends nothing for this long.
 * The server's own give-up on one request is MAX_TRANSMIT_WAIT (93 s with CoAP's defaults); a
 * device that waits less restarts sooner, which bounds the tail under loss (the server then
 * supersedes the stale session).
 */
export const BOOTSTRAP_IDLE_MS = 30_000;

class Failures {
  readonly byCause: Record<string, number> = {};
  add(cause: string): void {
    this.byCause[cause] = (this.byCause[cause] ?? 0) + 1;
  }
}

function bootstrapCause(r: BootstrapReport): string {
  if (r.outcome === 'error' && r.diagnostic === 'aborted') return 'deadline';
  if (r.outcome === 'rejected') return `bootstrap rejected ${r.requestCode ?? ''}`.trim();
  if (r.outcome === 'error') return `bootstrap error: ${(r.diagnostic ?? '').slice(0, 60)}`;
  return `bootstrap ${r.outcome}`;
}

function registerCause(r: RegistrationReport): string {
  return r.outcome === 'rejected' ? `${r.operation} rejected ${r.code ?? ''}`.trim() : `${r.operation} ${r.outcome}`;
}

/** A Security + Server account for the registration server, as a bootstrap would have written it. */
function seededAccount(uri: string): ReturnType<typeof N.object>[] {
  return [
    N.object(0, [
      N.instance(1, [
        N.resource(0, V.string(uri)),
        N.resource(1, V.boolean(false)),
        N.resource(2, V.integer(3)),
        N.resource(3, V.opaque(new Uint8Array(0))),
        N.resource(4, V.opaque(new Uint8Array(0))),
        N.resource(5, V.opaque(new Uint8Array(0))),
        N.resource(10, V.integer(1)),
      ]),
    ]),
    N.object(1, [N.instance(0, [N.resource(0, V.integer(1)), N.resource(1, V.integer(86400)), N.resource(6, V.boolean(false)), N.resource(7, V.string('U'))])]),
  ];
}

/** Runs `fn` over 0..n-1 with at most `width` at a time. */
async function inBatches(n: number, width: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, n) }, async () => {
      while (next < n) await fn(next++);
    }),
  );
}

async function echoBaseline(spec: GeneratorSpec, failures: Failures): Promise<{ window: Window; roundTrips: number }> {
  const e = spec.echo!;
  const sockets: Socket[] = await Promise.all(
    Array.from({ length: e.sockets }, () => new Promise<Socket>((resolve) => {
      const s = createSocket('udp4');
      s.bind(0, '127.0.0.1', () => resolve(s));
    })),
  );
  const window = new Window();
  let measuring = false;
  let stop = false;
  const lane = async (s: Socket, lane: number): Promise<void> => {
    let seq = 0;
    const buf = Buffer.alloc(16);
    buf.writeUInt32BE(lane, 0);
    while (!stop) {
      seq++;
      buf.writeUInt32BE(seq, 4);
      const t0 = now();
      const got = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => {
          s.off('message', onMsg);
          resolve(false);
        }, 1000);
        const onMsg = (msg: Buffer): void => {
          if (msg.length >= 8 && msg.readUInt32BE(4) === seq) {
            clearTimeout(timer);
            s.off('message', onMsg);
            resolve(true);
          }
        };
        s.on('message', onMsg);
        s.send(buf, e.port, '127.0.0.1');
      });
      if (!measuring) continue;
      if (got) window.done(t0, now());
      else failures.add('echo timeout');
    }
  };
  const lanes = sockets.map((s, i) => lane(s, i));
  await sleep(Math.min(1000, (e.seconds * 1000) / 4)); // warm-up
  measuring = true;
  const start = now();
  window.start(start);
  await sleep(e.seconds * 1000);
  measuring = false;
  stop = true;
  await Promise.all(lanes);
  for (const s of sockets) s.close();
  return { window, roundTrips: window.count };
}

export async function runGenerator(spec: GeneratorSpec): Promise<GeneratorResult> {
  const failures = new Failures();
  const retries = new Failures();
  const cpu0 = process.cpuUsage();
  let outgoing: LossModel | undefined;
  let incoming: LossModel | undefined;
  if (spec.impairment) {
    const seed = spec.impairment.seed ?? 1;
    outgoing = new LossModel({ ...spec.impairment, seed });
    incoming = new LossModel({ ...spec.impairment, seed: seed + 1 });
    installImpairment(new Set(spec.serverPorts ?? []), outgoing, incoming);
  }
  const boot = new Window();
  let reg = new Window();
  const upd = new Window();
  const hs = new Window();
  const registeredMs: number[] = [];
  const stragglers: Straggler[] = [];
  const straggler = (x: Straggler): void => {
    if (stragglers.length < 20) stragglers.push(x);
  };
  let roundTrips = 0;
  let phaseStart = now();
  let phaseEnd = phaseStart;
  let echoMs: ReturnType<typeof summarize> | undefined;
  let registeredDevices = 0;

  if (spec.kind === 'echo') {
    const r = await echoBaseline(spec, failures);
    roundTrips = r.roundTrips;
    phaseStart = r.window.first ?? phaseStart;
    phaseEnd = r.window.last ?? phaseStart;
    echoMs = summarize(r.window.latencies);
  } else {
    const sims: DeviceSimulator[] = new Array<DeviceSimulator>(spec.devices);
    const transmission = {};
    const rpkKeys = spec.rpkKeysFile ? (JSON.parse(readFileSync(spec.rpkKeysFile, 'utf8')) as Record<string, [string, string]>) : {};
    const bsServerKey = spec.bootstrapServerKeyHex ? Buffer.from(spec.bootstrapServerKeyHex, 'hex') : undefined;
    await inBatches(spec.devices, 200, async (i) => {
      const ep = endpointName(spec.endpointPrefix, i);
      const psk = spec.security === 'psk' && spec.kind === 'storm';
      const rpk = spec.security === 'rpk' && spec.kind === 'storm' ? rpkKeys[ep] : undefined;
      if (spec.security === 'rpk' && spec.kind === 'storm' && !rpk) throw new Error(`no key pair for ${ep} in ${spec.rpkKeysFile}`);
      sims[i] = await DeviceSimulator.start({
        endpoint: ep,
        lwm2mVersion: spec.lwm2mVersion,
        ...(spec.preferredFormat !== undefined ? { pct: spec.preferredFormat } : {}),
        transmission,
        ...(psk ? { bootstrapPsk: { identity: ep, key: devicePskKey(spec.pskSecretHex!, ep) } } : {}),
        ...(rpk ? { bootstrapRpk: { publicKey: Buffer.from(rpk[0], 'base64'), privateKey: Buffer.from(rpk[1], 'base64'), ...(bsServerKey ? { serverPublicKey: bsServerKey } : {}) } } : {}),
        ...(spec.kind !== 'storm' ? { seed: seededAccount(spec.registrationUri!) } : {}),
        dtls: {
          onDiagnostic: (d) => {
            if (d.kind === 'handshake_started') hs.start(now());
            else if (d.kind === 'established') hs.done(now(), now());
            else if (d.kind === 'handshake_failed') failures.add(`dtls handshake failed: ${d.error.message.slice(0, 50)}`);
          },
        },
      });
    });
    const deadline = new AbortController();
    setMaxListeners(0, deadline.signal); // every running bootstrap listens to it
    const expired = new Promise<'deadline'>((resolve) => deadline.signal.addEventListener('abort', () => resolve('deadline'), { once: true }));
    const register = async (sim: DeviceSimulator, t0: number): Promise<boolean> => {
      const t1 = now();
      reg.start(t1);
      let r: unknown;
      // As a device would: a Register that CoAP gave up on (MAX_TRANSMIT_WAIT) is sent again.
      for (;;) {
        r = await Promise.race([sim.register({ autoUpdate: false, lifetime: 86400 }), expired]).catch((e: unknown) => e);
        if (r === 'deadline' || r instanceof Error || (r as RegistrationReport).outcome !== 'timeout') break;
        retries.add('Register timed out → sent again');
        roundTrips++;
      }
      if (r === 'deadline') {
        failures.add('deadline');
        straggler({ endpoint: sim.endpoint, phase: 'register', cause: 'deadline', elapsedMs: Math.round(now() - t0) });
        return false;
      }
      if (r instanceof Error) {
        failures.add(`register threw: ${r.message.slice(0, 60)}`);
        return false;
      }
      const rep = r as RegistrationReport;
      roundTrips++;
      if (rep.outcome !== 'success') {
        failures.add(registerCause(rep));
        return false;
      }
      const t2 = now();
      registeredDevices++;
      reg.done(t1, t2);
      registeredMs.push(t2 - t0);
      return true;
    };
    const devicesRegistered: DeviceSimulator[] = [];

    if (spec.kind === 'updates') {
      // Not measured: bring the active fleet up.
      await inBatches(spec.devices, 100, async (i) => {
        if (await register(sims[i]!, now())) devicesRegistered.push(sims[i]!);
      });
      if (devicesRegistered.length < spec.devices) failures.add(`not registered before the Updates: ${spec.devices - devicesRegistered.length}`);
      reg = new Window();
      registeredMs.length = 0;
      roundTrips = 0;
    }
    const timer = setTimeout(() => deadline.abort(), spec.deadlineMs);
    phaseStart = now();
    if (spec.kind === 'updates') {
      const end = phaseStart + spec.updates!.seconds * 1000;
      await Promise.all(
        devicesRegistered.map(async (sim) => {
          while (now() < end && !deadline.signal.aborted) {
            const t0 = now();
            const r = await Promise.race([sim.update(), expired]).catch((e: unknown) => e);
            if (r === 'deadline') break;
            if (r instanceof Error) {
              failures.add(`update threw: ${r.message.slice(0, 60)}`);
              continue;
            }
            const rep = r as RegistrationReport;
            roundTrips++;
            if (rep.outcome === 'success') upd.done(t0, now());
            else failures.add(registerCause(rep));
          }
        }),
      );
    } else {
      await Promise.all(
        sims.map(async (sim, i) => {
          const offset = arrivalOffsetMs(spec.arrival, i, spec.devices);
          if (offset > 0) await sleep(offset);
          const t0 = now();
          if (spec.kind === 'register') {
            await register(sim, t0);
            return;
          }
          boot.start(t0);
          let r: BootstrapReport;
          // As a device would: a bootstrap that timed out (no answer to /bs within CoAP's
          // retransmissions, or no request from the server for BOOTSTRAP_IDLE_MS — the server gave
          // up on one of its requests) starts over with a new Bootstrap-Request.
          for (;;) {
            try {
              r = await sim.bootstrap(spec.bootstrapUri!, { timeoutMs: BOOTSTRAP_IDLE_MS, signal: deadline.signal });
            } catch (e) {
              failures.add(`bootstrap threw: ${(e instanceof Error ? e.message : String(e)).slice(0, 60)}`);
              return;
            }
            roundTrips += r.requests.filter((q) => q.code !== undefined).length + (r.requestCode !== undefined ? 1 : 0);
            if (r.outcome !== 'timeout' || deadline.signal.aborted) break;
            retries.add(r.requestCode === undefined ? 'Bootstrap-Request timed out → bootstrap again' : 'bootstrap server went quiet → bootstrap again');
          }
          if (r.outcome !== 'success') {
            failures.add(bootstrapCause(r));
            straggler({
              endpoint: sim.endpoint,
              phase: 'bootstrap',
              cause: bootstrapCause(r),
              elapsedMs: Math.round(now() - t0),
              ...(r.requestCode !== undefined ? { requestCode: r.requestCode } : {}),
              requests: r.requests.map((q) => `${q.method} ${q.path} ${q.code ?? '-'} @${Math.round(q.at - (Date.now() - (now() - t0)))}`),
            });
            return;
          }
          boot.done(t0, now());
          await register(sim, t0);
        }),
      );
    }
    clearTimeout(timer);
    phaseEnd = now();
    // No De-register (not part of the measurement); the sockets go with the process.
  }

  const cpu = process.cpuUsage(cpu0);
  const durationS = Math.max(1e-3, (phaseEnd - phaseStart) / 1000);
  const phase = (w: Window): { ok: number; perSec: number } => ({ ok: w.count, perSec: w.perSec() });
  return {
    kind: spec.kind,
    devices: spec.devices,
    durationS,
    bootstraps: phase(boot),
    registrations: phase(reg),
    updates: spec.kind === 'updates' ? { ok: upd.count, perSec: upd.count / durationS } : phase(upd),
    handshakes: phase(hs),
    registeredDevices,
    roundTrips,
    roundTripsPerSec: roundTrips / durationS,
    latency: {
      ...(boot.count > 0 ? { finishMs: summarize(boot.latencies) } : {}),
      ...(registeredMs.length > 0 ? { registeredMs: summarize(registeredMs) } : {}),
      ...(upd.count > 0 ? { updateMs: summarize(upd.latencies) } : {}),
      ...(echoMs ? { echoMs } : {}),
    },
    failures: failures.byCause,
    retries: retries.byCause,
    ...(stragglers.length > 0 ? { stragglers } : {}),
    ...(outgoing && incoming ? { impairment: { outgoing: { ...outgoing.counts }, incoming: { ...incoming.counts } } } : {}),
    generator: { cpuSeconds: (cpu.user + cpu.system) / 1e6, peakRssBytes: process.resourceUsage().maxRSS * 1024 },
  };
}

const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (isMain) {
  const spec = JSON.parse(process.argv[2] ?? '{}') as GeneratorSpec;
  runGenerator(spec).then(
    (result) => {
      writeFileSync(spec.resultFile, JSON.stringify(result));
      process.exit(0);
    },
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
