/**
 * Runs `lwbs serve` as its own process for one scenario: a fresh data directory, a config file
 * with the scenario's ports (chosen free beforehand, because the registration server's public
 * URI — which the bootstrap server writes into devices — must name the real port), the store
 * seeded before the server starts (profiles, enrolled devices, credentials, registrations), logs
 * to `<dataDir>/serve.log`. CPU time and RSS of the server are read from /proc (Linux; elsewhere
 * the figures are 0).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** dist/src/cli/main.js (or .build/<x>/src/cli/main.js), relative to this compiled file. */
export const LWBS_MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

export interface ServerPorts {
  readonly bsCoap: number;
  readonly bsCoaps: number;
  readonly regCoap: number;
  readonly regCoaps: number;
}

/** `n` distinct UDP ports that were free a moment ago on 127.0.0.1. */
export async function freeUdpPorts(n: number): Promise<number[]> {
  const sockets = await Promise.all(
    Array.from({ length: n }, () => new Promise<Socket>((resolve, reject) => {
      const s = createSocket('udp4');
      s.once('error', reject);
      s.bind(0, '127.0.0.1', () => resolve(s));
    })),
  );
  const ports = sockets.map((s) => s.address().port);
  await Promise.all(sockets.map((s) => new Promise<void>((r) => s.close(() => r()))));
  return ports;
}

export async function allocatePorts(): Promise<ServerPorts> {
  const [bsCoap, bsCoaps, regCoap, regCoaps] = (await freeUdpPorts(4)) as [number, number, number, number];
  return { bsCoap, bsCoaps, regCoap, regCoaps };
}

export function publicUris(p: ServerPorts): { coap: string; coaps: string } {
  return { coap: `coap://127.0.0.1:${p.regCoap}`, coaps: `coaps://127.0.0.1:${p.regCoaps}` };
}

export interface ProcSample {
  /** user + system CPU seconds so far. */
  readonly cpuSeconds: number;
  readonly rssBytes: number;
  /** Peak RSS (VmHWM). */
  readonly peakRssBytes: number;
  /** The current RSS split: anonymous (heaps), file-backed, shared memory (SQLite's WAL index). */
  readonly rssAnonBytes: number;
  readonly rssFileBytes: number;
  readonly rssShmemBytes: number;
}

/** CPU and memory of a process from /proc; zeros when unavailable. */
export function sampleProcess(pid: number): ProcSample {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces) start after the last ')'.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(f[11]) + Number(f[12]); // utime (14), stime (15) counted from field 3
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0);
    return {
      cpuSeconds: ticks / 100, rssBytes: kb('VmRSS') * 1024, peakRssBytes: kb('VmHWM') * 1024,
      rssAnonBytes: kb('RssAnon') * 1024, rssFileBytes: kb('RssFile') * 1024, rssShmemBytes: kb('RssShmem') * 1024,
    };
  } catch {
    return { cpuSeconds: 0, rssBytes: 0, peakRssBytes: 0, rssAnonBytes: 0, rssFileBytes: 0, rssShmemBytes: 0 };
  }
}

/** Total size of the database files in `dir` (not the log). */
export function dbBytes(dir: string): number {
  let total = 0;
  for (const f of readdirSync(dir)) if (/\.(db|sqlite)(-wal|-shm)?$/.test(f)) total += statSync(join(dir, f)).size;
  return total;
}

/** UDP datagrams the kernel dropped because a socket's receive buffer was full (all sockets of the host; Linux). */
export function udpReceiveBufferErrors(): number {
  try {
    const lines = readFileSync('/proc/net/snmp', 'utf8').split('\n').filter((l) => l.startsWith('Udp:'));
    const names = lines[0]!.split(/\s+/);
    const values = lines[1]!.split(/\s+/);
    return Number(values[names.indexOf('RcvbufErrors')] ?? 0);
  } catch {
    return 0;
  }
}

export interface RunningServer {
  readonly pid: number;
  readonly ports: ServerPorts;
  readonly logFile: string;
  sample(): ProcSample;
  /**
   * Writes a V8 heap snapshot of the server into `dir` (the server must have been started with
   * `--heapsnapshot-signal=SIGUSR2` in `nodeArgs`); resolves with its path.
   */
  heapSnapshot(dir: string, timeoutMs?: number): Promise<string>;
  /** SIGTERM, then SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

function tail(file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

export async function startServer(opts: {
  readonly dataDir: string;
  readonly ports: ServerPorts;
  readonly secretKeyHex: string;
  readonly logLevel?: string;
  readonly readyTimeoutMs?: number;
  /** Extra node flags for the server process (e.g. `--cpu-prof`). */
  readonly nodeArgs?: readonly string[];
  /** Working directory of the server process (default: ours). */
  readonly cwd?: string;
}): Promise<RunningServer> {
  const { dataDir, ports } = opts;
  const configFile = join(dataDir, 'lwbs.json');
  writeFileSync(
    configFile,
    JSON.stringify({
      dataDir,
      bootstrap: { coap: `127.0.0.1:${ports.bsCoap}`, coaps: `127.0.0.1:${ports.bsCoaps}` },
      registration: { coap: `127.0.0.1:${ports.regCoap}`, coaps: `127.0.0.1:${ports.regCoaps}`, publicUri: publicUris(ports) },
      log: { level: opts.logLevel ?? 'info' },
      admin: { listen: null },
    }),
  );
  const logFile = join(dataDir, 'serve.log');
  const fd = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(process.execPath, [...(opts.nodeArgs ?? []), LWBS_MAIN, 'serve', '--config', configFile], {
      env: { ...process.env, LWBS_SECRET_KEY: opts.secretKeyHex, LWBS_DATA_DIR: '' },
      ...(opts.cwd ? { cwd: opts.cwd } : {}),
      stdio: ['ignore', 'ignore', fd],
    });
  } finally {
    closeSync(fd);
  }
  let exited: number | null | undefined;
  const exit = new Promise<void>((resolve) => child.once('exit', (code) => {
    exited = code;
    resolve();
  }));
  const until = Date.now() + (opts.readyTimeoutMs ?? 30_000);
  for (;;) {
    if (existsSync(logFile) && readFileSync(logFile, 'utf8').includes('"msg":"lwbs started"')) break;
    if (exited !== undefined) throw new Error(`lwbs serve exited (${exited}) before it was ready:\n${tail(logFile)}`);
    if (Date.now() > until) {
      child.kill('SIGKILL');
      throw new Error(`lwbs serve was not ready within ${opts.readyTimeoutMs ?? 30_000} ms:\n${tail(logFile)}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  const pid = child.pid!;
  return {
    pid,
    ports,
    logFile,
    sample: () => sampleProcess(pid),
    heapSnapshot: async (dir, timeoutMs = 120_000) => {
      // node writes Heap.<date>.<pid>.<tid>.<seq>.heapsnapshot into its working directory.
      const before = new Set(readdirSync(dir));
      child.kill('SIGUSR2');
      const until = Date.now() + timeoutMs;
      for (;;) {
        const fresh = readdirSync(dir).filter((f) => !before.has(f) && f.endsWith('.heapsnapshot') && f.includes(`.${pid}.`));
        if (fresh.length > 0) {
          const file = join(dir, fresh[0]!);
          // Written when its size stops changing.
          let size = -1;
          for (;;) {
            await new Promise((r) => setTimeout(r, 500));
            const now = statSync(file).size;
            if (now === size && now > 0) return file;
            size = now;
          }
        }
        if (Date.now() > until) throw new Error('no heap snapshot appeared');
        await new Promise((r) => setTimeout(r, 200));
      }
    },
    stop: async (graceMs = 10_000) => {
      if (exited !== undefined) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exit;
      clearTimeout(timer);
    },
  };
}
