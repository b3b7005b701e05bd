/**
 * Shared runner for the interop tests (issue 5, Deliver 6): real DTLS peers - gnutls-cli,
 * coap-client-gnutls / coap-client-openssl (libcoap3-bin) - against lwbs on
 * 127.0.0.1. Every peer process is killed after a bounded time; a missing binary is a test
 * failure with an install hint (CI installs the Debian packages through .ci/run), never a skip.
 */
import { expect } from 'chai';
import { spawn, spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startApp, type App } from '../../src/app.js';
import type { Config } from '../../src/config/config.js';
import { DtlsEndpoint } from '../../src/dtls/endpoint.js';
import type { DtlsDiagnostic } from '../../src/dtls/server.js';
import type { SqliteStore } from '../../src/store/store.js';
import { open, TEST_KEY_HEX } from '../store/support.js';
import { until } from '../registration/support.js';
import { freePort } from '../simulator/dtls-app.js';

export { freePort, until };

export const LOCAL = '127.0.0.1';

/** Fails the test (with the Debian package to install) when `bin` cannot be started. */
export function requireBinary(bin: string, debianPackage: string): void {
  const r = spawnSync(bin, ['--version'], { encoding: 'utf8', timeout: 5000 });
  const err = r.error as NodeJS.ErrnoException | undefined;
  if (err?.code === 'ENOENT') {
    expect.fail(`${bin} is not installed: install it (Debian: apt-get install ${debianPackage}) - CI installs it through .ci/run for the interop tests`);
  }
  if (err) expect.fail(`${bin} could not be run: ${err.message}`);
}

export interface PeerRun {
  readonly stdout: string;
  readonly stderr: string;
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface PeerControl {
  write(s: string): void;
  /** Resolves when stdout contains `text`; rejects (with both outputs) if the process exits first. */
  waitFor(text: string): Promise<void>;
  /** Closes stdin (gnutls-cli sends close_notify on EOF). */
  end(): void;
}

/**
 * Runs `bin args`, lets `script` drive stdin, resolves with the outputs when the process exits.
 * The process is killed (SIGKILL) after `limitMs` or when the script throws.
 */
export function runPeer(bin: string, args: readonly string[], script: (c: PeerControl) => Promise<void> = async () => {}, limitMs = 15_000): Promise<PeerRun> {
  const p = spawn(bin, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const waiters: { text: string; resolve: () => void }[] = [];
  p.stdout.on('data', (b: Buffer) => {
    stdout += b.toString();
    for (const w of waiters.filter((x) => stdout.includes(x.text))) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
  });
  p.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  p.stdin.on('error', () => {}); // EPIPE when the peer exits early: its output says why
  const killer = setTimeout(() => p.kill('SIGKILL'), limitMs);
  const exited = new Promise<PeerRun>((resolve, reject) => {
    p.on('error', (e) => {
      clearTimeout(killer);
      reject(e);
    });
    p.on('close', (code, signal) => {
      clearTimeout(killer);
      resolve({ stdout, stderr, code, signal });
    });
  });
  const control: PeerControl = {
    write: (s) => p.stdin.write(s),
    end: () => p.stdin.end(),
    waitFor: (text) =>
      stdout.includes(text) ? Promise.resolve() : Promise.race([
        new Promise<void>((resolve) => waiters.push({ text, resolve })),
        exited.then(() => {
          if (!stdout.includes(text)) throw new Error(`${bin} exited before printing ${JSON.stringify(text)}\nstdout:\n${stdout}\nstderr:\n${stderr}`);
        }),
      ]),
  };
  return script(control).then(
    () => exited,
    (err: unknown) => {
      p.kill('SIGKILL');
      throw err;
    },
  );
}

/** A fresh P-256 key pair as the peers read it: SPKI DER (what lwbs enrolls) and PEM files. */
export interface PeerKey {
  readonly spki: Buffer;
  /** `-----BEGIN EC PRIVATE KEY-----` (SEC1): coap-client's `-M`, gnutls-cli's `--rawpkkeyfile`. */
  readonly privatePemFile: string;
  /** `-----BEGIN PUBLIC KEY-----`: gnutls-cli's `--rawpkfile`. */
  readonly publicPemFile: string;
}

export function peerKey(dir: string, name: string): PeerKey {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const privatePemFile = join(dir, `${name}.key.pem`);
  const publicPemFile = join(dir, `${name}.pub.pem`);
  writeFileSync(privatePemFile, privateKey.export({ type: 'sec1', format: 'pem' }), { mode: 0o600 });
  writeFileSync(publicPemFile, publicKey.export({ type: 'spki', format: 'pem' }));
  return { spki: publicKey.export({ type: 'spki', format: 'der' }), privatePemFile, publicPemFile };
}

/** A server P-256 key pair in the form lwbs stores it (SPKI DER + PKCS#8 DER). */
export function serverKeyPair(): { publicKey: Buffer; privateKey: Buffer } {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return { publicKey: publicKey.export({ type: 'spki', format: 'der' }), privateKey: privateKey.export({ type: 'pkcs8', format: 'der' }) };
}

export interface EchoServer {
  readonly endpoint: DtlsEndpoint;
  readonly port: number;
  readonly diagnostics: DtlsDiagnostic[];
}

/**
 * A bare DtlsEndpoint that answers every application record with `echo(<who>): <data>`, `<who>`
 * being the PSK identity or `rpk` - so a peer sees data both ways over the session.
 */
export async function startEchoServer(o: {
  readonly psk?: { readonly identity: string; readonly key: Buffer };
  readonly serverKey?: { readonly publicKey: Buffer; readonly privateKey: Buffer };
  readonly rpkAllowed?: readonly Buffer[];
  readonly cipherSuites?: readonly number[];
}): Promise<EchoServer> {
  const diagnostics: DtlsDiagnostic[] = [];
  const endpoint = await DtlsEndpoint.create({
    host: LOCAL,
    port: 0,
    retransmit: { initialMs: 300, maxMs: 2000 },
    ...(o.psk ? { pskLookup: async (id: Buffer) => (id.toString() === o.psk!.identity ? o.psk!.key : undefined) } : {}),
    ...(o.serverKey ? { serverKey: o.serverKey, rpkLookup: async (spki: Buffer) => (o.rpkAllowed ?? []).some((k) => k.equals(spki)) } : {}),
    ...(o.cipherSuites ? { cipherSuites: o.cipherSuites } : {}),
    onDiagnostic: (d) => diagnostics.push(d),
  });
  endpoint.on('message', (msg, peer) => {
    const who = peer.identity?.type === 'psk' ? peer.identity.identity.toString() : peer.identity?.type ?? '?';
    endpoint.send(Buffer.from(`echo(${who}): ${msg.toString()}`), peer.port, peer.address);
  });
  return { endpoint, port: endpoint.address().port, diagnostics };
}

/** Waits for the server to see the session end (a close_notify may still be in flight when the peer exits). */
export function closedDiagnostic(diags: readonly DtlsDiagnostic[]): Promise<DtlsDiagnostic> {
  return until(() => diags.find((d) => d.kind === 'closed'), 'the server to see the session close', 3000);
}

export interface InteropApp {
  readonly app: App;
  readonly store: SqliteStore;
  readonly bootstrapPort: number;
  readonly registrationPort: number;
  /** The registration server's coaps public URI (what credentials are provisioned for). */
  readonly registrationUri: string;
}

/**
 * `startApp` with only the DTLS listeners (bootstrap.coaps, registration.coaps), after `seed`
 * enrolled what the test needs. Bootstrap sessions give up quickly: the CoAP peers used here
 * answer none of the server's requests.
 */
export async function startInteropApp(dir: string, seed: (store: SqliteStore) => Promise<void>): Promise<InteropApp> {
  const store = await open(dir);
  await seed(store);
  await store.close();
  const registrationPort = await freePort();
  const registrationUri = `coaps://${LOCAL}:${registrationPort}`;
  const config: Config = {
    dataDir: dir,
    objectDirs: [],
    bootstrap: { coap: null, coaps: { host: LOCAL, port: 0 }, requestTimeoutSeconds: 2, sessionTimeoutSeconds: 10 },
    registration: {
      coap: null,
      coaps: { host: LOCAL, port: registrationPort },
      publicUri: { coap: `coap://${LOCAL}:5783`, coaps: registrationUri },
      requestTimeoutSeconds: 5,
      queueAwakeSeconds: 93,
    },
    log: { level: 'error' },
    admin: { listen: null },
  };
  const app = await startApp(config, { transmission: { ackTimeoutMs: 300, ackRandomFactor: 1, maxRetransmit: 1 }, env: { LWBS_SECRET_KEY: TEST_KEY_HEX } });
  return { app, store: app.store, bootstrapPort: app.addresses.get('bootstrap.coaps')!.port, registrationPort, registrationUri };
}
