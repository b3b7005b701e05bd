/**
 * `lwbs simulate` with registration, as a user runs it: a real process against lwbs' bootstrap
 * and registration servers running in this process on one store (so the test sees the registry),
 * spawned asynchronously because the servers must keep answering.
 */
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { BootstrapServer } from '../../src/bootstrap/server.js';
import { RegistrationServer } from '../../src/registration/server.js';
import type { SqliteStore } from '../../src/store/store.js';
import { open, removeDir, tempDir } from '../store/support.js';
import { FAST, RawServer, sleep } from './support.js';

// The CLI entry next to this compiled test (dist/ or .build/<name>/), not bin/lwbs.js (needs dist).
const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

interface Running {
  readonly child: ChildProcess;
  readonly out: () => string;
  readonly err: () => string;
  readonly exited: Promise<number | null>;
}

function simulate(args: string[]): Running {
  const child = spawn(process.execPath, [MAIN, 'simulate', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 25_000);
  const exited = new Promise<number | null>((resolve) =>
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve(code);
    }),
  );
  return { child, out: () => out, err: () => err, exited };
}

async function until<T>(check: () => T | undefined | false | Promise<T | undefined | false>, what: string, r?: Running, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${r ? `\nstdout:\n${r.out()}\nstderr:\n${r.err()}` : ''}`);
    await sleep(20);
  }
}

describe('cli: lwbs simulate registers and stays registered', function () {
  this.timeout(40_000);
  let dir: string;
  let store: SqliteStore;
  let reg: RegistrationServer;
  let bs: BootstrapServer;
  let regPort: number;
  let bsUri: string;
  let dm: RawServer;
  let running: Running | undefined;

  before(async () => {
    dir = tempDir('lwbs-simcli-');
    store = await open(dir);
    dm = await RawServer.start();
    dm.registerCode = '4.03';
    const profiles = [
      { name: 'meters', match: ['urn:imei:*'], delete: ['/0', '/1'], servers: [{ shortServerId: 7, handOff: true, lifetime: 90, binding: 'U', security: { mode: 'nosec' } }] },
      { name: 'trackers', match: ['trk-*'], delete: ['/0', '/1'], servers: [{ shortServerId: 3, handOff: true, lifetime: 60, binding: 'U', security: { mode: 'psk' } }] },
      // A server that is not lwbs (the raw one, refusing every Register with 4.03).
      { name: 'elsewhere', match: ['ext-*'], delete: ['/0', '/1'], servers: [{ shortServerId: 9, uri: dm.uri, lifetime: 60, binding: 'U', security: { mode: 'nosec' } }] },
    ];
    for (const p of profiles) await store.profiles.put(p.name, JSON.stringify(p));
    reg = new RegistrationServer({ store, serverUris: () => [`coap://127.0.0.1:${regPort}`] });
    regPort = (await reg.listen({ host: '127.0.0.1', port: 0, transmission: FAST })).address().port;
    bs = new BootstrapServer({ store, registration: { coap: `coap://127.0.0.1:${regPort}`, coaps: 'coaps://127.0.0.1:5784' }, requestTimeoutMs: 2000 });
    bsUri = `coap://127.0.0.1:${(await bs.listen({ host: '127.0.0.1', port: 0, transmission: FAST })).address().port}`;
  });
  afterEach(async () => {
    if (running && running.child.exitCode === null) {
      running.child.kill('SIGKILL');
      await running.exited;
    }
    running = undefined;
  });
  after(async () => {
    await bs.close();
    await reg.close();
    await dm.close();
    await store.close();
    removeDir(dir);
  });

  it('bootstraps, registers, answers the server, and de-registers on SIGTERM (exit 0)', async () => {
    const r = (running = simulate(['--endpoint', 'urn:imei:cli-1', '--bootstrap', bsUri, '--timeout', '5']));
    const row = await until(() => store.registry.getByEndpoint('urn:imei:cli-1'), 'the registration in the registry', r);
    await until(() => r.out().includes(`/rd/${row.id}`), 'the registration line', r);
    expect(r.out()).to.match(/^bootstrap of urn:imei:cli-1 \(LwM2M 1\.1\) from coap:\/\/127\.0\.0\.1:\d+: success/);
    expect(r.out()).to.include(`Register with coap://127.0.0.1:${regPort} (SSID 7): 2.01 /rd/${row.id}, lifetime 90 s, binding U`);

    // It answers device management while it stays, and says so.
    const read = await reg.nodeFor(row)!.request({ address: row.address, port: row.port }, { method: 'GET', path: [3, 0, 0], accept: 0, timeoutMs: 3000 });
    expect([read.code, read.payload.toString()]).to.deep.equal(['2.05', 'lwbs']);
    await until(() => /read\s+GET \/3\/0\/0 accept=0 → 2\.05/.test(r.out()), 'the request line', r);

    r.child.kill('SIGTERM');
    expect(await r.exited).to.equal(0);
    expect(r.err()).to.equal('');
    expect(await store.registry.getByEndpoint('urn:imei:cli-1')).to.equal(undefined);
    expect(r.out()).to.include(`De-register at coap://127.0.0.1:${regPort} (SSID 7): 2.02 /rd/${row.id}`);
  });

  it('--once --json --lifetime --queue: one report with the registration, then the De-register; exit 0', async () => {
    const r = (running = simulate(['--endpoint', 'urn:imei:cli-2', '--bootstrap', bsUri, '--timeout', '5', '--once', '--json', '--lifetime', '120', '--queue']));
    expect(await r.exited).to.equal(0);
    expect(r.err()).to.equal('');
    const lines = r.out().trimEnd().split('\n');
    const last = JSON.parse(lines.at(-1)!) as Record<string, unknown>;
    const doc = JSON.parse(lines.slice(0, -1).join('\n')) as { outcome: string; registration: Record<string, unknown> };
    expect(doc.outcome).to.equal('success');
    expect(doc.registration).to.include({ operation: 'register', outcome: 'success', code: '2.01', lifetime: 120, queueMode: true, shortServerId: 7 });
    expect(doc.registration['query']).to.deep.equal(['ep=urn:imei:cli-2', 'lt=120', 'lwm2m=1.1', 'b=U', 'Q']);
    expect(last).to.include({ event: 'registration', operation: 'deregister', outcome: 'success', code: '2.02', location: doc.registration['location'] });
    expect(await store.registry.getByEndpoint('urn:imei:cli-2')).to.equal(undefined);
    const events = await store.registry.events('urn:imei:cli-2');
    expect(events.map((e) => e.kind).sort()).to.deep.equal(['deregister', 'register']);
  });

  it('--no-register stops after the bootstrap', async () => {
    const r = (running = simulate(['--endpoint', 'urn:imei:cli-3', '--bootstrap', bsUri, '--timeout', '5', '--no-register']));
    expect(await r.exited).to.equal(0);
    expect(r.out()).to.match(/: success/);
    expect(r.out()).to.not.match(/Register|registration/);
    expect(await store.registry.events('urn:imei:cli-3')).to.deep.equal([]);
  });

  it('a coaps:// hand-off is registered over DTLS: with no DTLS server there, the Register fails (exit 1); keys stay masked', async () => {
    // This test's bootstrap server hands out coaps://127.0.0.1:5784, where nothing listens
    // (test/simulator/simulate-dtls.test.ts runs the whole path against a DTLS server).
    const r = (running = simulate(['--endpoint', 'trk-1', '--bootstrap', bsUri, '--timeout', '2']));
    expect(await r.exited).to.equal(1);
    expect(r.out()).to.match(/psk key\s+\[secret, 16 bytes\]/);
    expect(r.out()).to.match(/Register with coaps:\/\/127\.0\.0\.1:5784 \(SSID 3\): (timeout|error)/);
    expect(r.err()).to.match(/lwbs: registration of trk-1 failed: (timeout|error)/);
    const [cred] = await store.credentials.listForDevice('trk-1');
    const key = (await store.credentials.revealSecrets(cred!.id)).pskKey!;
    expect(r.out()).to.not.include(key.toString('hex'));
    expect(r.err()).to.not.include(key.toString('hex'));
  });

  it('exits 1 when the server refuses the Register, and 2 for bad registration flags', async () => {
    const r = (running = simulate(['--endpoint', 'ext-1', '--bootstrap', bsUri, '--timeout', '5']));
    expect(await r.exited).to.equal(1);
    expect(r.out()).to.include(`Register with ${dm.uri} (SSID 9): rejected (4.03)`);
    expect(r.err()).to.match(/lwbs: registration of ext-1 failed: rejected \(4\.03\)/);
    expect(dm.rd.map((x) => x.query[0])).to.deep.equal(['ep=ext-1']);

    for (const bad of [['--no-register', '--once'], ['--lifetime', 'soon'], ['--no-register', '--queue']]) {
      const u = (running = simulate(['--endpoint', 'x', '--bootstrap', bsUri, ...bad]));
      expect(await u.exited, bad.join(' ')).to.equal(2);
    }
  });
});
