/**
 * `lwbs device read|write|...` as a user runs them: a real `lwbs` process talking HTTP to an
 * admin server started in this test process (port 0) over the in-test DeviceManagement, with the
 * token in the sandbox's data directory. The CLI runs asynchronously (spawn, not spawnSync) so
 * the server in this process can answer it.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { startAdminServer, type AdminServer } from '../../src/admin/server.js';
import { loadOrCreateAdminToken } from '../../src/admin/token.js';
import type { DmResult, LatestValue, ObservationInfo } from '../../src/registration/management/types.js';
import type { SqliteStore } from '../../src/store/store.js';
import { BINARY_ENDPOINT, DEVICE_VALUES, FakeManagement, LINKS } from '../admin/fake-management.js';
import { CliSandbox, MAIN, TEST_KEY_HEX, type RunResult } from './support.js';

function lwbs(box: CliSandbox, args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const base: NodeJS.ProcessEnv = { ...process.env, LWBS_DATA_DIR: '', LWBS_SECRET_KEY: TEST_KEY_HEX };
    delete base.LWBS_ADMIN_TOKEN;
    const child = spawn(process.execPath, [MAIN, '--data', box.data, ...args], { env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out, err });
    });
  });
}

describe('cli device operations (through the admin API)', function () {
  this.timeout(60_000);
  let box: CliSandbox;
  let store: SqliteStore;
  let fake: FakeManagement;
  let server: AdminServer;
  let admin: string;

  before(async () => {
    box = new CliSandbox('lwbs-cli-devops-');
    store = await box.open();
    loadOrCreateAdminToken(box.data);
    fake = new FakeManagement();
    server = await startAdminServer({ host: '127.0.0.1', port: 0, token: loadOrCreateAdminToken(box.data).token, management: fake, store });
    admin = `http://127.0.0.1:${server.address().port}`;
  });
  after(async () => {
    await server?.close();
    await store?.close();
    box?.remove();
  });

  /** Runs `lwbs device <args> --admin <url>`. */
  const dev = (args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<RunResult> => lwbs(box, ['device', ...args, '--admin', admin], env);
  const lastRequest = (): unknown => fake.submitted[fake.submitted.length - 1]?.request;

  it('reads and prints the code and the values with resource names from the object model', async () => {
    const r = await dev(['read', 'dev1', '/3/0']);
    expect(r.code, r.err).to.equal(0);
    const lines = r.out.trimEnd().split('\n');
    expect(lines[0]).to.equal('2.05 Content');
    // /3/0/0 is "Manufacturer", /3/0/9 "Battery Level", /3/0/16 "Supported Binding and Modes" (OMA object 3)
    expect(lines[1]).to.match(/^\/3\/0\/0\s+Manufacturer\s+string\s+Acme$/);
    expect(lines[2]).to.match(/^\/3\/0\/9\s+Battery Level\s+integer\s+87$/);
    expect(lines[3]).to.match(/^\/3\/0\/16\s+Supported Binding and Modes\s+string\s+UQ$/);
    expect(lastRequest()).to.deep.equal({ op: 'read', path: '/3/0' });
  });

  it('prints the DmResult with --json, and sends --accept by name or number', async () => {
    const r = await dev(['read', 'dev1', '/3/0/0', '--json', '--accept', 'senml-json']);
    expect(r.code, r.err).to.equal(0);
    const result = JSON.parse(r.out) as DmResult;
    expect(result).to.deep.equal(fake.ticket(result.id));
    expect(lastRequest()).to.deep.equal({ op: 'read', path: '/3/0/0', accept: 110 });
    const n = await dev(['read', 'dev1', '/3/0/0', '--accept', '11542']);
    expect(n.code).to.equal(0);
    expect(lastRequest()).to.deep.equal({ op: 'read', path: '/3/0/0', accept: 11542 });
  });

  it('writes a text value, a JSON object of values, typed values, partial and with a format', async () => {
    const cases: [string[], unknown][] = [
      [['write', 'dev1', '/1/0/1', '300'], { op: 'write', path: '/1/0/1', value: '300' }],
      [['write', 'dev1', '/1/0', '{"/1/0/1": 300, "/1/0/7": "UQ"}', '--partial'], { op: 'write', path: '/1/0', values: { '/1/0/1': 300, '/1/0/7': 'UQ' }, partial: true }],
      [['write', 'dev1', '/1/0/1', '300', '--format', 'tlv'], { op: 'write', path: '/1/0/1', value: '300', format: 11542 }],
      [['write', 'dev1', '/9/0/1', '0x00ff', '--type', 'opaque'], { op: 'write', path: '/9/0/1', value: { type: 'opaque', hex: '00ff' } }],
      [['write', 'dev1', '/9/0/2', '12345678901234567890', '--type', 'unsigned'], { op: 'write', path: '/9/0/2', value: { type: 'unsigned', value: '12345678901234567890' } }],
      [['write', 'dev1', '/9/0/3', 'true', '--type', 'boolean'], { op: 'write', path: '/9/0/3', value: { type: 'boolean', value: true } }],
    ];
    for (const [args, expected] of cases) {
      const r = await dev(args);
      expect(r.code, `${args.join(' ')}: ${r.err}`).to.equal(0);
      expect(r.out.trim()).to.equal('2.04 Changed');
      expect(lastRequest(), args.join(' ')).to.deep.equal(expected);
    }
  });

  it('executes with arguments, creates, deletes, and cancels', async () => {
    const e = await dev(['execute', 'dev1', '/3/0/4', "0='a',1"]);
    expect([e.code, e.out.trim()]).to.deep.equal([0, '2.04 Changed']);
    expect(lastRequest()).to.deep.equal({ op: 'execute', path: '/3/0/4', args: "0='a',1" });
    const c = await dev(['create', 'dev1', '/1', '{"/1/2/0": 2, "/1/2/1": 300}', '--format', '112']);
    expect(c.code).to.equal(0);
    expect(c.out.trim()).to.equal('2.01 Created /1/2');
    expect(lastRequest()).to.deep.equal({ op: 'create', path: '/1', values: { '/1/2/0': 2, '/1/2/1': 300 }, format: 112 });
    const d = await dev(['delete', 'dev1', '/1/2']);
    expect([d.code, d.out.trim()]).to.deep.equal([0, '2.02 Deleted']);
    expect(lastRequest()).to.deep.equal({ op: 'delete', path: '/1/2' });
    const x = await dev(['cancel-observation', 'dev1', '/3/0/9']);
    expect(x.code).to.equal(0);
    expect(lastRequest()).to.deep.equal({ op: 'cancel-observation', path: '/3/0/9' });
  });

  it('discovers and prints one link per line', async () => {
    const r = await dev(['discover', 'dev1', '/3/0', '--depth', '2']);
    expect(r.code, r.err).to.equal(0);
    const lines = r.out.trimEnd().split('\n');
    expect(lines[0]).to.equal('2.05 Content');
    expect(lines.slice(1)).to.deep.equal(LINKS.split(','));
    expect(lastRequest()).to.deep.equal({ op: 'discover', path: '/3/0', depth: 2 });
  });

  it('writes attributes (NAME= unsets) and observes with attributes', async () => {
    const w = await dev(['write-attributes', 'dev1', '/3/0/9', 'pmin=10', 'gt=3.5', 'pmax=']);
    expect(w.code, w.err).to.equal(0);
    expect(lastRequest()).to.deep.equal({ op: 'write-attributes', path: '/3/0/9', attributes: { pmin: '10', gt: '3.5', pmax: null } });
    const o = await dev(['observe', 'dev1', '/3/0/9', 'pmin=5', '--accept', 'senml-cbor']);
    expect(o.code, o.err).to.equal(0);
    expect(o.out).to.match(/^2\.05 Content$/m);
    expect(o.out).to.match(/^\/3\/0\/9\s+Battery Level\s+integer\s+87$/m);
    expect(o.out).to.match(/^observing \/3\/0\/9/m);
    expect(lastRequest()).to.deep.equal({ op: 'observe', path: '/3/0/9', accept: 112, attributes: { pmin: '5' } });
  });

  it('sends the triggers', async () => {
    const u = await dev(['trigger-update', 'sleepy', '--wait', '0']);
    expect(u.code, u.err).to.equal(0);
    expect(lastRequest()).to.deep.equal({ op: 'trigger-update' });
    const b = await dev(['trigger-bootstrap', 'a/b c']);
    expect(b.code, b.err).to.equal(0);
    expect(lastRequest()).to.deep.equal({ op: 'trigger-bootstrap' });
    expect(fake.submitted[fake.submitted.length - 1]!.endpoint.toString()).to.equal('a/b c');
  });

  it('reaches a binary endpoint given with --endpoint-hex', async () => {
    const r = await dev(['read', '--endpoint-hex', Buffer.from(BINARY_ENDPOINT).toString('hex'), '/3/0/0']);
    expect(r.code, r.err).to.equal(0);
    expect([...fake.submitted[fake.submitted.length - 1]!.endpoint]).to.deep.equal([...BINARY_ENDPOINT]);
  });

  it('exits 1 on a device error, a failure, and an endpoint that is not registered', async () => {
    const e = await dev(['read', 'dev1', '/5/0']);
    expect(e.code).to.equal(1);
    expect(e.err.trim()).to.equal('lwbs: read /5/0: 4.04 Not Found: no such instance');
    const j = await dev(['read', 'dev1', '/5/0', '--json']);
    expect(j.code).to.equal(1);
    expect((JSON.parse(j.out) as DmResult).code).to.equal('4.04');
    const f = await dev(['read', 'dev1', '/4/0']);
    expect(f.code).to.equal(1);
    expect(f.err).to.match(/read \/4\/0 failed: timeout: no answer after 4 retransmissions/);
    const n = await dev(['read', 'ghost', '/3/0']);
    expect(n.code).to.equal(1);
    expect(n.err).to.match(/"ghost" is not registered/);
    const u = await dev(['trigger-bootstrap', 'dev1']);
    expect(u.code).to.equal(1);
    expect(u.err).to.match(/LwM2M 1\.0/);
  });

  it('exits 2 on usage errors, including a value the server finds invalid', async () => {
    const before = fake.submitted.length;
    const bad: string[][] = [
      ['read', 'dev1', '3/0'],
      ['read', 'dev1', '/3/0/0/0/0'],
      ['read', 'dev1', '/3/0', '--wait', '301'],
      ['read', 'dev1', '/3/0', '--wait', 'soon'],
      ['read', 'dev1', '/3/0', '--accept', 'pdf'],
      ['read', 'dev1'],
      ['write', 'dev1', '/1/0', '{"/1/0/1": }'],
      ['write', 'dev1', '/1/0', '{"/1/0/1": [1]}'],
      ['write', 'dev1', '/1/0/1', 'x', '--type', 'integer'],
      ['write', 'dev1', '/1/0', '{"/1/0/1": 1}', '--type', 'integer'],
      ['write-attributes', 'dev1', '/3/0/9'],
      ['write-attributes', 'dev1', '/3/0/9', 'pmin'],
      ['write-attributes', 'dev1', '/3/0/9', 'pmin=1', 'pmin=2'],
      ['observe', 'dev1', '/3/0/9', 'pmin='],
      ['discover', 'dev1', '/3', '--depth', '7'],
      ['read', '--endpoint-hex', 'zz', '/3/0'],
    ];
    for (const args of bad) {
      const r = await dev(args);
      expect(r.code, `${args.join(' ')}: ${r.err}`).to.equal(2);
    }
    expect(fake.submitted.length).to.equal(before);
    const invalid = await dev(['write', 'dev1', '/1/0/1', 'oops']);
    expect(invalid.code).to.equal(2);
    expect(invalid.err).to.match(/not an integer/);
    const badUrl = await lwbs(box, ['device', 'read', 'dev1', '/3/0', '--admin', 'localhost:1']);
    expect(badUrl.code).to.equal(2);
  });

  it('prints the ticket of a queued request, and `device request ID` follows it to the answer', async () => {
    const q = await dev(['write', 'sleepy', '/1/0/1', '60', '--wait', '0']);
    expect(q.code, q.err).to.equal(0);
    const id = fake.submitted[fake.submitted.length - 1]!.id;
    expect(q.out.trim()).to.match(new RegExp(`^queued \\(id ${id}\\): the device is asleep .*see \`lwbs device request ${id}\`$`));
    const still = await dev(['request', id]);
    expect(still.code).to.equal(0);
    expect(still.out).to.match(new RegExp(`^queued \\(id ${id}\\)`));
    const asJson = await dev(['request', id, '--json']);
    expect((JSON.parse(asJson.out) as DmResult).state).to.equal('queued');
    fake.markSent(id);
    expect((await dev(['request', id])).out).to.match(new RegExp(`^sent \\(id ${id}\\): no answer yet`));
    fake.release(id);
    const done = await dev(['request', id]);
    expect([done.code, done.out.trim()]).to.deep.equal([0, '2.04 Changed']);
    const missing = await dev(['request', 'no-such-ticket']);
    expect(missing.code).to.equal(1);
    expect(missing.err).to.match(/no request "no-such-ticket"/);
  });

  it('waits for a queued request up to --wait and prints the answer when it comes', async () => {
    const pending = dev(['read', 'sleepy', '/3/0/9', '--wait', '15']);
    let id: string | undefined;
    for (let i = 0; i < 1000 && id === undefined; i++) {
      await new Promise((r) => setTimeout(r, 10));
      const last = fake.submitted[fake.submitted.length - 1];
      if (last && last.request.op === 'read' && (last.request as { path: string }).path === '/3/0/9' && last.endpoint.toString() === 'sleepy') id = last.id;
    }
    expect(id).to.be.a('string');
    fake.release(id!, '2.05');
    const r = await pending;
    expect([r.code, r.out.trim()]).to.deep.equal([0, '2.05 Content']);
  });

  it('lists the latest values and the observations', async () => {
    const v = await dev(['values', 'dev1', '/3/0']);
    expect(v.code, v.err).to.equal(0);
    const lines = v.out.trimEnd().split('\n');
    expect(lines[0]).to.match(/^PATH\s+NAME\s+TYPE\s+AT\s+SOURCE\s+VALUE$/);
    expect(lines[1]).to.match(/^\/3\/0\/0\s+Manufacturer\s+string\s+2023-11-14 22:13:20Z\s+notify\s+Acme$/);
    const vj = JSON.parse((await dev(['values', 'dev1', '--json'])).out) as LatestValue[];
    expect(vj.map((x) => x.path)).to.deep.equal(DEVICE_VALUES.map((x) => x.path));
    const none = await dev(['values', 'dev1', '/6']);
    expect(none.out.trim()).to.equal('no values known for dev1 at /6');
    const o = await dev(['observations', 'dev1']);
    expect(o.code, o.err).to.equal(0);
    expect(o.out).to.match(/^\/3\/0\/9\s+active\s+11543\s+pmin=10\s+4\s+2023-11-14 22:14:20Z\s+2023-11-14 22:13:20Z$/m);
    expect(o.out).to.match(/^\/3\/0\/16\s+pending\s+-\s+-\s+0\s+-\s+/m);
    const oj = JSON.parse((await dev(['observations', 'dev1', '--json'])).out) as ObservationInfo[];
    expect(oj).to.deep.equal(await fake.observations(Buffer.from('dev1')));
    expect((await dev(['observations', 'ghost'])).code).to.equal(1);
  });

  it('finds the server through admin.listen in the config (a wildcard host means loopback)', async () => {
    const cfg = box.file('admin.json', JSON.stringify({ admin: { listen: `0.0.0.0:${server.address().port}` } }));
    const r = await lwbs(box, ['device', 'read', 'dev1', '/3/0/0', '--config', cfg]);
    expect(r.code, r.err).to.equal(0);
    expect(r.out).to.match(/^2\.05 Content$/m);
    const off = box.file('admin-off.json', JSON.stringify({ admin: { listen: null } }));
    const d = await lwbs(box, ['device', 'read', 'dev1', '/3/0/0', '--config', off]);
    expect(d.code).to.equal(1);
    expect(d.err).to.match(/admin API is disabled/);
  });

  it('says when no server listens, when the token is missing, and when it is wrong', async () => {
    // a port nothing listens on: start a server, note its port, close it
    const tmp = await startAdminServer({ host: '127.0.0.1', port: 0, token: 'a-throwaway-token-000000', management: fake, store });
    const deadPort = tmp.address().port;
    await tmp.close();
    const r = await lwbs(box, ['device', 'read', 'dev1', '/3/0', '--admin', `http://127.0.0.1:${deadPort}`]);
    expect(r.code).to.equal(1);
    expect(r.err.trim()).to.equal(`lwbs: no server at http://127.0.0.1:${deadPort}: is \`lwbs serve\` running?`);

    const other = new CliSandbox('lwbs-cli-devops-notoken-');
    try {
      const n = await lwbs(other, ['device', 'read', 'dev1', '/3/0', '--admin', admin]);
      expect(n.code).to.equal(1);
      expect(n.err).to.match(/no admin token in .*admin\.token: start `lwbs serve` first/);
      const withEnv = await lwbs(other, ['device', 'read', 'dev1', '/3/0/0', '--admin', admin], { LWBS_ADMIN_TOKEN: loadOrCreateAdminToken(box.data).token });
      expect(withEnv.code, withEnv.err).to.equal(0);
    } finally {
      other.remove();
    }

    const wrong = await dev(['read', 'dev1', '/3/0'], { LWBS_ADMIN_TOKEN: 'not-the-right-token-at-all' });
    expect(wrong.code).to.equal(1);
    expect(wrong.err).to.match(/the admin API refused the token/);
    expect(wrong.err).not.to.include('not-the-right-token-at-all');
  });
});
