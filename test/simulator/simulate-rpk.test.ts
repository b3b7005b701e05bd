/**
 * The simulator over coaps:// with raw public keys (DTLS ECDHE_ECDSA + RPK) against lwbs itself
 * (`startApp` with `bootstrap.coaps` and `registration.coaps`): a device enrolled with
 * `auth: { kind: 'rpk', publicKey }` bootstraps over DTLS with its key pair (checking the
 * bootstrap server's key, /0/0/4), is handed a coaps:// account in RPK mode with a generated key
 * pair and the registration server's key, registers over DTLS with that pair; the registry row
 * says rpk and its identity is the public key the device holds. A wrong expected server key
 * and an unenrolled key fail cleanly. Then `lwbs simulate --rpk-key [--server-public-key]`.
 */
import { expect } from 'chai';
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { App } from '../../src/app.js';
import type { DtlsClientDiagnostic } from '../../src/dtls/client.js';
import { DeviceSimulator } from '../../src/simulator/simulator.js';
import { open, removeDir, tempDir } from '../store/support.js';
import { DTLS_FAST, lwbs, simStarter, startDtlsApp } from './dtls-app.js';

const PROFILE = {
  name: 'rpk-meters',
  match: ['urn:rpk:*'],
  delete: ['/0', '/1'],
  servers: [{ shortServerId: 7, handOff: true, lifetime: 300, binding: 'U', security: { mode: 'rpk' } }],
};

interface Pair {
  readonly publicKey: Buffer;
  readonly privateKey: Buffer;
  readonly privatePem: string;
  readonly sec1Der: Buffer;
}

function pair(): Pair {
  const kp = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return {
    publicKey: kp.publicKey.export({ format: 'der', type: 'spki' }),
    privateKey: kp.privateKey.export({ format: 'der', type: 'pkcs8' }),
    privatePem: kp.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    sec1Der: kp.privateKey.export({ format: 'der', type: 'sec1' }),
  };
}

describe('simulator over coaps:// with raw public keys (DTLS RPK) against lwbs', function () {
  this.timeout(60_000);
  let dir: string;
  let app: App;
  let bsUri: string;
  let regsUri: string;
  let bsServerKey: Buffer;
  const devices = [pair(), pair(), pair(), pair()];
  const sims: DeviceSimulator[] = [];

  const sim = simStarter(sims, DTLS_FAST);

  before(async () => {
    dir = tempDir('lwbs-sim-rpk-');
    const store = await open(dir);
    await store.profiles.put(PROFILE.name, JSON.stringify(PROFILE));
    for (const [i, d] of devices.entries()) {
      await store.devices.add({ endpoint: `urn:rpk:${i + 1}`, profile: PROFILE.name, auth: { kind: 'rpk', publicKey: d.publicKey } });
    }
    await store.close();
    ({ app, bsUri, regsUri } = await startDtlsApp(dir));
    bsServerKey = (await app.store.serverKeys.get('bootstrap'))!.publicKey;
  });
  afterEach(async () => {
    await Promise.all(sims.splice(0).map((s) => s.close({ timeoutMs: 2000 })));
  });
  after(async () => {
    await app.close();
    removeDir(dir);
  });

  it('bootstraps over DTLS-RPK, registers over DTLS-RPK with the generated key pair, is managed and de-registers', async () => {
    const diags: DtlsClientDiagnostic[] = [];
    const dev = devices[0]!;
    const d = await sim('urn:rpk:1', {
      bootstrapRpk: { publicKey: dev.publicKey, privateKey: dev.privateKey, serverPublicKey: bsServerKey },
      dtls: { ...DTLS_FAST, onDiagnostic: (x) => diags.push(x) },
    });
    const report = await d.bootstrap(bsUri, { timeoutMs: 10_000 });
    expect(report.outcome, report.diagnostic).to.equal('success');
    expect(report.bootstrapAccount).to.deep.include({ mode: 'rpk', uri: bsUri });
    expect(report.servers).to.have.length(1);
    const account = report.servers[0]!;
    expect(account).to.deep.include({ mode: 'rpk', uri: regsUri, ssid: 7 });
    // A fresh key pair (not the bootstrap one), and the registration server's public key in /0/x/4.
    const held = Buffer.from(account.publicKey!);
    expect(held.equals(dev.publicKey)).to.equal(false);
    expect(Buffer.from(account.serverPublicKey!).equals((await app.store.serverKeys.get('registration'))!.publicKey)).to.equal(true);

    const r = await d.register({ timeoutMs: 10_000 });
    expect(r, r.diagnostic).to.deep.include({ outcome: 'success', code: '2.01', shortServerId: 7, server: regsUri });
    const reg = await app.store.registry.getByEndpoint('urn:rpk:1');
    expect(reg).to.deep.include({ security: 'rpk', lifetime: 300, address: '127.0.0.1' });
    expect(reg!.identity!.equals(held)).to.equal(true);
    expect(reg!.port).to.not.equal(d.address().port);
    const [cred] = await app.store.credentials.listForDevice('urn:rpk:1');
    expect(cred).to.deep.include({ id: reg!.credentialId, status: 'active', mode: 'rpk' });

    // Two ECDHE_ECDSA handshakes, one per server, each proving the server's stored key.
    const est = diags.filter((x) => x.kind === 'established');
    expect(est.map((x) => x.kind === 'established' && x.peer.port)).to.deep.equal([
      app.addresses.get('bootstrap.coaps')!.port, app.addresses.get('registration.coaps')!.port,
    ]);
    for (const x of est) expect(x.kind === 'established' && x.suite.keyExchange).to.equal('ecdhe_ecdsa');

    const read = await app.management.run(Buffer.from('urn:rpk:1'), { op: 'read', path: '/3/0/0' });
    expect(read).to.deep.include({ state: 'done', code: '2.05', success: true });

    const dereg = await d.deregister({ timeoutMs: 5000 });
    expect(dereg).to.deep.include({ outcome: 'success', code: '2.02' });
    expect(await app.store.registry.getByEndpoint('urn:rpk:1')).to.equal(undefined);
  });

  it('without an expected server key it accepts the server that proves its key; a wrong expected key fails with bad_certificate', async () => {
    const dev = devices[1]!;
    const ok = await sim('urn:rpk:2', { bootstrapRpk: { publicKey: dev.publicKey, privateKey: dev.privateKey } });
    const r = await ok.bootstrap(bsUri, { timeoutMs: 10_000 });
    expect(r.outcome, r.diagnostic).to.equal('success');

    const other = pair();
    const bad = await sim('urn:rpk:2', { bootstrapRpk: { publicKey: dev.publicKey, privateKey: dev.privateKey, serverPublicKey: other.publicKey } });
    const r2 = await bad.bootstrap(bsUri, { timeoutMs: 5000 });
    expect(r2.outcome).to.equal('error');
    expect(r2.diagnostic, r2.diagnostic).to.contain('bad_certificate');
    expect(r2.diagnostic).to.not.contain(dev.privateKey.toString('hex').slice(-64));
  });

  it('an unenrolled key: the bootstrap server refuses it (certificate_unknown), the bootstrap fails cleanly', async () => {
    const stranger = pair();
    const d = await sim('urn:rpk:3', { bootstrapRpk: { publicKey: stranger.publicKey, privateKey: stranger.privateKey } });
    const r = await d.bootstrap(bsUri, { timeoutMs: 5000 });
    expect(r.outcome).to.equal('error');
    expect(r.diagnostic).to.contain('certificate_unknown(46)');
    expect(await app.store.sessions.list({ endpoint: 'urn:rpk:3' })).to.deep.equal([]);
  });

  it('refuses bootstrapRpk keys that do not belong together, and bootstrapPsk with bootstrapRpk', async () => {
    const [a, b] = [devices[0]!, devices[1]!];
    let e1: unknown;
    try {
      await sim('x', { bootstrapRpk: { publicKey: a.publicKey, privateKey: b.privateKey } });
    } catch (e) {
      e1 = e;
    }
    expect(String(e1)).to.contain('does not belong');
    let e2: unknown;
    try {
      await sim('x', { bootstrapRpk: { publicKey: a.publicKey, privateKey: a.privateKey }, bootstrapPsk: { identity: 'i', key: Buffer.from([1]) } });
    } catch (e) {
      e2 = e;
    }
    expect(String(e2)).to.contain('not both');
  });

  it('lwbs simulate --rpk-key (PEM) --server-public-key: bootstraps and registers over DTLS-RPK, keys masked', async () => {
    const dev = devices[3]!;
    const keyFile = join(dir, 'dev4.pem');
    writeFileSync(keyFile, dev.privatePem);
    const serverKeyFile = join(dir, 'bs.der');
    writeFileSync(serverKeyFile, bsServerKey);
    const r = await lwbs(['simulate', '--endpoint', 'urn:rpk:4', '--bootstrap', bsUri, '--rpk-key', keyFile, '--server-public-key', serverKeyFile, '--timeout', '10', '--once']);
    expect(r.err).to.equal('');
    expect(r.code).to.equal(0);
    expect(r.out).to.match(/^bootstrap of urn:rpk:4 \(LwM2M 1\.1\) from coaps:\/\/127\.0\.0\.1:\d+: success/);
    expect(r.out).to.include(`Register with ${regsUri} (SSID 7): 2.01`);
    expect(r.out).to.include(`De-register at ${regsUri} (SSID 7): 2.02`);
    expect(r.out).to.not.include(dev.privateKey.toString('hex').slice(-64));
    expect(r.out).to.not.include(dev.privatePem.split('\n')[1]!);
    const [cred] = await app.store.credentials.listForDevice('urn:rpk:4');
    expect(cred).to.deep.include({ mode: 'rpk' });
    const provisioned = (await app.store.credentials.revealSecrets(cred!.id)).privateKey!;
    expect(r.out).to.not.include(Buffer.from(provisioned).toString('hex').slice(-64));
    const events = await app.store.registry.events('urn:rpk:4');
    expect(events.map((e) => e.kind).sort()).to.deep.equal(['deregister', 'register']);

    // --show-secrets reveals the private keys (the SEC1 DER form is accepted too).
    const sec1File = join(dir, 'dev4.sec1.der');
    writeFileSync(sec1File, dev.sec1Der);
    const shown = await lwbs(['simulate', '--endpoint', 'urn:rpk:4', '--bootstrap', bsUri, '--rpk-key', sec1File, '--timeout', '10', '--no-register', '--show-secrets', '--json']);
    expect(shown.code, shown.err).to.equal(0);
    expect(shown.out).to.include(dev.privateKey.toString('hex').slice(-64));
  });

  it('lwbs simulate: usage and key-file errors for --rpk-key, never echoing key bytes', async () => {
    const dev = devices[2]!;
    const keyFile = join(dir, 'dev3.der');
    writeFileSync(keyFile, dev.privateKey);
    const junk = join(dir, 'junk.der');
    writeFileSync(junk, Buffer.from('not a key at all'));
    const cases: [string[], number, RegExp][] = [
      [['--bootstrap', 'coap://127.0.0.1:5683', '--rpk-key', keyFile], 2, /--rpk-key go with a coaps:\/\/ --bootstrap URI/],
      [['--bootstrap', bsUri, '--server-public-key', keyFile], 2, /--server-public-key goes with --rpk-key/],
      [['--bootstrap', bsUri, '--rpk-key', keyFile, '--psk-identity', 'x', '--psk-key', '00'], 2, /not both/],
      [['--bootstrap', bsUri, '--rpk-key', junk], 1, /junk\.der: not a private key/],
      [['--bootstrap', bsUri, '--rpk-key', keyFile, '--server-public-key', keyFile], 1, /dev3\.der: not a P-256 public key/],
    ];
    for (const [args, code, message] of cases) {
      const r = await lwbs(['simulate', '--endpoint', 'x', ...args]);
      expect(r.code, args.join(' ')).to.equal(code);
      expect(r.err, args.join(' ')).to.match(message);
      expect(r.err).to.not.contain(dev.privateKey.toString('hex').slice(-64));
    }
  });
});
