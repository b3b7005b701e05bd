/**
 * `lwbs simulate` as a user runs it: a real process against a scripted bootstrap server in this
 * process (so the process is spawned asynchronously: the server must keep answering).
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { compositeCodecFor } from '../../src/lwm2m/formats/index.js';
import { N, nodeToRecords } from '../../src/lwm2m/node.js';
import { V } from '../../src/lwm2m/value.js';
import { aclInstance, pskSecurity, ScriptedServer, serverInstance } from './support.js';

// The CLI entry next to this compiled test (dist/ or .build/<name>/), not bin/lwbs.js (needs dist).
const main = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

function lwbs(...args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [main, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out, err });
    });
  });
}

describe('cli: lwbs simulate', function () {
  this.timeout(30_000);
  const KEY = Uint8Array.from([0x5e, 0xc7, 0xe7, 0x00, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  const KEY_HEX = Buffer.from(KEY).toString('hex');
  let srv: ScriptedServer;

  before(async () => {
    srv = await ScriptedServer.start(async (d) => {
      const ep = d.bs.query.find((q) => q.startsWith('ep='))!.slice(3);
      await d.discover();
      await d.delete([0]);
      await d.write([0, 1], pskSecurity(1, 101, 'coaps://dm.example.com:5684', ep, KEY), 112);
      if (ep !== 'broken') await d.write([1, 0], serverInstance(0, 101, 3600, 'UQ'), 112);
      await d.write([2, 0], aclInstance(0, 3, 0, [[101, 1]], 101), 112);
      await d.finish();
    });
  });
  after(() => srv.close());

  it('prints what the device got as JSON, with the key masked unless --show-secrets', async () => {
    // --no-register: the coaps:// account it gets names a host that does not exist (the bootstrap output is under test).
    const r = await lwbs('simulate', '--endpoint', 'urn:imei:1', '--bootstrap', srv.uri, '--pct', '112', '--json', '--timeout', '5', '--no-register');
    expect(r.err).to.equal('');
    expect(r.code).to.equal(0);
    const j = JSON.parse(r.out) as Record<string, unknown>;
    expect(j['outcome']).to.equal('success');
    expect(j['endpoint']).to.equal('urn:imei:1');
    expect(j['requestCode']).to.equal('2.04');
    expect(j['servers']).to.deep.equal([
      {
        securityInstance: 1, mode: 'psk', uri: 'coaps://dm.example.com:5684',
        pskIdentity: { text: 'urn:imei:1', hex: Buffer.from('urn:imei:1').toString('hex') },
        pskKey: { masked: true, length: 16 },
        ssid: 101, serverInstance: 0, lifetime: 3600, binding: 'UQ', notificationStoring: true, defaultMinPeriod: 1, defaultMaxPeriod: 60,
      },
    ]);
    expect(j['acl']).to.deep.equal([{ aclInstance: 0, objectId: 3, instanceId: 0, owner: 101, rights: { '101': 1 } }]);
    expect((j['bootstrapAccount'] as Record<string, unknown>)['uri']).to.equal(srv.uri);
    expect((j['requests'] as { method: string; path: string; code: string }[]).map((q) => `${q.method} ${q.path} ${q.code}`))
      .to.deep.equal(['GET / 2.05', 'DELETE /0 2.02', 'PUT /0/1 2.04', 'PUT /1/0 2.04', 'PUT /2/0 2.04', 'POST /bs 2.04']);
    expect(r.out).to.not.contain(KEY_HEX);
    expect(srv.bsRequests.at(-1)!.query).to.deep.equal(['ep=urn:imei:1', 'pct=112']);

    const shown = await lwbs('simulate', '--endpoint', 'urn:imei:2', '--bootstrap', srv.uri, '--json', '--show-secrets', '--timeout', '5', '--no-register');
    expect(shown.code).to.equal(0);
    expect((JSON.parse(shown.out) as { servers: { pskKey: unknown }[] }).servers[0]!.pskKey).to.deep.equal({ hex: KEY_HEX });
  });

  it('prints text, exits 1 when Finish is refused (4.06), and 2 for usage errors', async () => {
    const r = await lwbs('simulate', '--endpoint', 'broken', '--bootstrap', srv.uri, '--timeout', '5');
    expect(r.code).to.equal(1);
    expect(r.out).to.match(/^bootstrap of broken \(LwM2M 1\.1\) from coap:\/\/127\.0\.0\.1:\d+: inconsistent/);
    expect(r.out).to.match(/psk key\s+\[secret, 16 bytes\]/);
    expect(r.out).to.not.contain(KEY_HEX);
    expect(r.err).to.match(/lwbs: bootstrap of broken failed: inconsistent \(.*has no Server instance/);
    expect(srv.bsRequests.at(-1)!.query).to.deep.equal(['ep=broken']);

    expect((await lwbs('simulate', '--endpoint', 'x', '--bootstrap', 'coaps://127.0.0.1:5684')).code).to.equal(2);
    expect((await lwbs('simulate', '--endpoint', 'x', '--bootstrap', srv.uri, '--pack')).code).to.equal(2);
    expect((await lwbs('simulate', '--bootstrap', srv.uri)).code).to.equal(2);
  });

  it('--pack applies a Bootstrap-Pack from /bspack', async () => {
    const objects = [N.object(0, [pskSecurity(2, 7, 'coaps://p.example.com', 'pack-id', KEY)]), N.object(1, [N.instance(0, [N.resource(0, V.integer(7)), N.resource(1, V.integer(60)), N.resource(6, V.boolean(false)), N.resource(7, V.string('U'))])])];
    srv.pack = { code: '2.05', contentFormat: 110, payload: compositeCodecFor(110).encodeRecords(objects.flatMap((o) => nodeToRecords([o.id], o))) };
    const r = await lwbs('simulate', '--endpoint', 'packed', '--bootstrap', srv.uri, '--lwm2m', '1.2', '--pack', '--accept', '110', '--json', '--timeout', '5', '--no-register');
    expect(r.code).to.equal(0);
    const j = JSON.parse(r.out) as { kind: string; outcome: string; servers: { ssid: number; uri: string }[] };
    expect([j.kind, j.outcome]).to.deep.equal(['pack', 'success']);
    expect(j.servers.map((s) => [s.ssid, s.uri])).to.deep.equal([[7, 'coaps://p.example.com']]);
    expect(srv.packRequests.at(-1)!.accept).to.equal(110);
  });
});
