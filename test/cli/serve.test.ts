/**
 * `lwbs serve` as an operator runs it: a real process with a config file, a device bootstrapping
 * against it over UDP, JSON logs without secrets, and a clean shutdown on SIGTERM that records the
 * session it cut off.
 */
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FakeDevice } from '../bootstrap/fake-device.js';
import { sleep } from '../coap/raw-device.js';
import { open, removeDir, tempDir, TEST_KEY_HEX } from '../store/support.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

interface Running {
  readonly child: ChildProcess;
  readonly lines: Record<string, unknown>[];
  readonly stderr: () => string;
  readonly exited: Promise<number | null>;
}

function serve(args: string[]): Running {
  const child = spawn(process.execPath, [MAIN, ...args], { env: { ...process.env, LWBS_SECRET_KEY: TEST_KEY_HEX, LWBS_DATA_DIR: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: Record<string, unknown>[] = [];
  let err = '';
  let partial = '';
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
    partial += d.toString();
    let nl: number;
    while ((nl = partial.indexOf('\n')) >= 0) {
      const line = partial.slice(0, nl);
      partial = partial.slice(nl + 1);
      try {
        lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        lines.push({ unparsed: line });
      }
    }
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, lines, stderr: () => err, exited };
}

async function waitLine(r: Running, msg: string, timeoutMs = 10_000): Promise<Record<string, unknown>> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const l = r.lines.find((x) => x.msg === msg);
    if (l) return l;
    if (Date.now() > until) throw new Error(`no log line "${msg}"; stderr:\n${r.stderr()}`);
    await sleep(20);
  }
}

describe('lwbs serve', function () {
  this.timeout(30_000);
  let dir: string;
  let device: FakeDevice;
  let running: Running | undefined;

  beforeEach(async () => {
    dir = tempDir('lwbs-serve-');
    const store = await open(dir);
    await store.profiles.put('meters', JSON.stringify({ name: 'meters', match: ['urn:imei:35*'], servers: [{ shortServerId: 1, handOff: true, lifetime: 300, binding: 'U', security: { mode: 'nosec' } }] }));
    await store.profiles.put('trackers', JSON.stringify({ name: 'trackers', match: ['trk-*'], delete: ['/0', '/1'], servers: [{ shortServerId: 1, handOff: true, lifetime: 60, binding: 'U', security: { mode: 'psk' } }] }));
    await store.close();
    writeFileSync(
      join(dir, 'lwbs.json'),
      JSON.stringify({
        dataDir: dir,
        bootstrap: { coap: '127.0.0.1:0', coaps: null, requestTimeoutSeconds: 30 },
        registration: { coap: '127.0.0.1:0', coaps: null, publicUri: { coap: 'coap://127.0.0.1:5783', coaps: 'coaps://127.0.0.1:5784' } },
        admin: { listen: '127.0.0.1:0' },
      }),
    );
    device = await FakeDevice.open();
  });
  afterEach(async () => {
    await device.close();
    if (running && running.child.exitCode === null) {
      running.child.kill('SIGKILL');
      await running.exited;
    }
    removeDir(dir);
  });

  it('bootstraps a device, logs JSON without secrets, and shuts down cleanly on SIGTERM', async () => {
    running = serve(['serve', '--config', join(dir, 'lwbs.json')]);
    const started = await waitLine(running, 'lwbs started');
    const port = Number(String(started['bootstrap.coap']).split(':').pop());
    expect(port).to.be.greaterThan(0);

    expect((await device.bootstrapRequest(port, 'trk-1')).code).to.equal('2.04');
    const ended = await waitLine(running, 'bootstrap ended');
    expect(ended).to.include({ outcome: 'success', ep: '"trk-1"' });
    const key = device.requests.find((r) => r.path === '/0/1')!.payload;

    // A second device goes silent mid-session; SIGTERM ends that session as `shutdown`.
    device.respond = (r) => (r.method === 'DELETE' ? 'silent' : { code: '2.04' });
    expect((await device.bootstrapRequest(port, 'trk-2')).code).to.equal('2.04');
    await device.waitForRequest((r) => r.method === 'DELETE' && device.requests.indexOf(r) > 4);
    running.child.kill('SIGTERM');
    expect(await running.exited).to.equal(0);
    await waitLine(running, 'lwbs stopped');

    const store = await open(dir);
    try {
      const [cut] = await store.sessions.list({ endpoint: 'trk-2' });
      expect(cut?.outcome).to.equal('failure');
      expect(cut?.failureCause).to.equal('shutdown');
      const [cred] = await store.credentials.listForDevice('trk-1');
      const secret = (await store.credentials.revealSecrets(cred!.id)).pskKey!;
      expect(key.includes(secret)).to.equal(true); // sanity: that is the key the device got
      expect(running.stderr()).not.to.include(secret.toString('hex'));
      expect(running.lines.every((l) => !('unparsed' in l))).to.equal(true);
    } finally {
      await store.close();
    }
  });

  it('hands a bootstrapped device off to the registration server, whose registration survives a restart', async () => {
    const args = ['serve', '--config', join(dir, 'lwbs.json')];
    running = serve(args);
    let started = await waitLine(running, 'lwbs started');
    const portOf = (l: Record<string, unknown>, k: string): number => Number(String(l[k]).split(':').pop());
    expect((await device.bootstrapRequest(portOf(started, 'bootstrap.coap'), 'urn:imei:359000')).code).to.equal('2.04');
    expect(await waitLine(running, 'bootstrap ended')).to.include({ outcome: 'success' });
    // The device got coap://127.0.0.1:5783 (registration.publicUri); it registers where that listener really is.
    const register = (port: number, ep: string): ReturnType<FakeDevice['request']> =>
      device.request(port, { path: ['rd'], query: [`ep=${ep}`, 'lt=300', 'lwm2m=1.1', 'b=U'], contentFormat: 40, payload: '</1/0>,</3/0>' });
    expect((await register(portOf(started, 'registration.coap'), 'stranger')).code).to.equal('4.03');
    const reg = await register(portOf(started, 'registration.coap'), 'urn:imei:359000');
    expect(reg.code).to.equal('2.01');
    const location = reg.packet.options.filter((o) => o.name === 'Location-Path').map((o) => o.value.toString());
    expect(location[0]).to.equal('rd');

    running.child.kill('SIGTERM');
    expect(await running.exited).to.equal(0);
    running = serve(args);
    started = await waitLine(running, 'lwbs started');
    const update = await device.request(portOf(started, 'registration.coap'), { path: location });
    expect(update.code).to.equal('2.04');
    running.child.kill('SIGTERM');
    expect(await running.exited).to.equal(0);

    const store = await open(dir);
    try {
      const [cred] = await store.credentials.listForDevice('urn:imei:359000');
      expect([cred?.mode, cred?.status]).to.deep.equal(['nosec', 'active']);
      expect((await store.registry.getByEndpoint('urn:imei:359000'))?.id).to.equal(location[1]);
    } finally {
      await store.close();
    }
  });

  it('refuses a bad config with a message naming the field, exit 1', async () => {
    writeFileSync(join(dir, 'bad.json'), JSON.stringify({ bootstrap: { sessionTimeoutSeconds: -1 } }));
    running = serve(['serve', '--config', join(dir, 'bad.json'), '--data', dir]);
    expect(await running.exited).to.equal(1);
    expect(running.stderr()).to.include('bootstrap.sessionTimeoutSeconds');
  });
});
