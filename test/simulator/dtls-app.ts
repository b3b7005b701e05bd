/**
 * Shared by the simulator's DTLS tests (PSK and RPK): lwbs with only its `coaps` listeners on
 * 127.0.0.1 (the registration server on a port chosen first, since its public URI must name it),
 * a free UDP port, and the `lwbs` CLI run as a process with a bounded time.
 */
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { fileURLToPath } from 'node:url';
import { startApp, type App } from '../../src/app.js';
import type { Config } from '../../src/config/config.js';
import { DeviceSimulator, type SimulatorOptions } from '../../src/simulator/simulator.js';
import { TEST_KEY_HEX } from '../store/support.js';
import { FAST } from './support.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

/** A UDP port on 127.0.0.1 that was free a moment ago. */
export async function freePort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Runs `lwbs ARGS` (killed after 25 s) and resolves with its exit code and output. */
export function lwbs(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 25_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out, err });
    });
  });
}

/** Starts lwbs on `dir` with only the DTLS listeners; returns the app and both coaps URIs. */
export async function startDtlsApp(dir: string): Promise<{ app: App; bsUri: string; regsUri: string }> {
  const regsPort = await freePort();
  const regsUri = `coaps://127.0.0.1:${regsPort}`;
  const config: Config = {
    dataDir: dir,
    objectDirs: [],
    bootstrap: { coap: null, coaps: { host: '127.0.0.1', port: 0 }, requestTimeoutSeconds: 10, sessionTimeoutSeconds: 60 },
    registration: {
      coap: null,
      coaps: { host: '127.0.0.1', port: regsPort },
      publicUri: { coap: 'coap://127.0.0.1:5783', coaps: regsUri },
      requestTimeoutSeconds: 5,
      queueAwakeSeconds: 93,
    },
    log: { level: 'error' },
    admin: { listen: null },
  };
  const app = await startApp(config, { transmission: FAST, env: { LWBS_SECRET_KEY: TEST_KEY_HEX } });
  return { app, bsUri: `coaps://127.0.0.1:${app.addresses.get('bootstrap.coaps')!.port}`, regsUri };
}

/** DTLS timers for simulated devices in tests: retransmit from 200 ms, at most 1 s apart. */
export const DTLS_FAST = { retransmit: { initialMs: 200, maxMs: 1000 } } as const;

/**
 * A `sim(endpoint, options)` that starts simulated devices with the test timers (CoAP FAST, DTLS
 * DTLS_FAST merged with `dtls`), LwM2M 1.1, and pushes each onto `sims` for the after hook to close.
 */
export function simStarter(sims: DeviceSimulator[], dtls: SimulatorOptions['dtls'] = DTLS_FAST): (endpoint: string, o?: Partial<SimulatorOptions>) => Promise<DeviceSimulator> {
  return async (endpoint, o = {}) => {
    const s = await DeviceSimulator.start({ endpoint, transmission: FAST, lwm2mVersion: '1.1', dtls, ...o });
    sims.push(s);
    return s;
  };
}
