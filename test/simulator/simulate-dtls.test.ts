/**
 * The simulator over coaps:// (DTLS with PSK) against lwbs itself (`startApp` with
 * `bootstrap.coaps` and `registration.coaps`): the device bootstraps over DTLS with its enrolled
 * PSK, is handed a coaps:// account in PSK mode, registers over DTLS with those credentials,
 * answers device management and de-registers on the same session; wrong or unknown
 * credentials fail cleanly. Then `lwbs simulate --bootstrap coaps://… --psk-identity --psk-key`.
 */
import { expect } from 'chai';
import type { App } from '../../src/app.js';
import type { DtlsClientDiagnostic } from '../../src/dtls/client.js';
import { DeviceSimulator } from '../../src/simulator/simulator.js';
import { open, removeDir, tempDir } from '../store/support.js';
import { DTLS_FAST, lwbs, simStarter, startDtlsApp } from './dtls-app.js';

const PROFILE = {
  name: 'secure-meters',
  match: ['urn:sec:*'],
  delete: ['/0', '/1'],
  servers: [{ shortServerId: 5, handOff: true, lifetime: 300, binding: 'U', security: { mode: 'psk' } }],
};
const BS_KEY = Buffer.from('0f1e2d3c4b5a69788796a5b4c3d2e1f0', 'hex');

describe('simulator over coaps:// (DTLS PSK) against lwbs', function () {
  this.timeout(60_000);
  let dir: string;
  let app: App;
  let bsUri: string;
  let regsUri: string;
  const sims: DeviceSimulator[] = [];

  const sim = simStarter(sims, DTLS_FAST);

  before(async () => {
    dir = tempDir('lwbs-sim-dtls-');
    const store = await open(dir);
    await store.profiles.put(PROFILE.name, JSON.stringify(PROFILE));
    for (const n of [1, 2, 3, 4]) {
      await store.devices.add({ endpoint: `urn:sec:${n}`, profile: PROFILE.name, auth: { kind: 'psk', identity: `bs-id-${n}`, key: BS_KEY } });
    }
    await store.close();
    ({ app, bsUri, regsUri } = await startDtlsApp(dir));
  });
  afterEach(async () => {
    await Promise.all(sims.splice(0).map((s) => s.close({ timeoutMs: 2000 })));
  });
  after(async () => {
    await app.close();
    removeDir(dir);
  });

  it('bootstraps over DTLS, registers over DTLS with the PSK it was handed, is managed and de-registers on that session', async () => {
    const diags: DtlsClientDiagnostic[] = [];
    const d = await sim('urn:sec:1', { bootstrapPsk: { identity: 'bs-id-1', key: BS_KEY }, dtls: { ...DTLS_FAST, onDiagnostic: (x) => diags.push(x) } });
    const report = await d.bootstrap(bsUri, { timeoutMs: 10_000 });
    expect(report.outcome, report.diagnostic).to.equal('success');
    expect(report.server).to.equal(bsUri);
    // The account it was handed: coaps:// to the registration server, PSK mode.
    expect(report.servers).to.have.length(1);
    const account = report.servers[0]!;
    expect(account).to.deep.include({ mode: 'psk', uri: regsUri, ssid: 5 });
    // The enrolled bootstrap credentials stay in the BS account.
    expect(report.bootstrapAccount).to.deep.include({ mode: 'psk', uri: bsUri });

    const r = await d.register({ timeoutMs: 10_000 });
    expect(r, r.diagnostic).to.deep.include({ outcome: 'success', code: '2.01', shortServerId: 5, server: regsUri });
    const reg = await app.store.registry.getByEndpoint('urn:sec:1');
    expect(reg).to.deep.include({ security: 'psk', lifetime: 300, address: '127.0.0.1' });
    // Over its DTLS socket, not the plain one.
    expect(reg!.port).to.not.equal(d.address().port);
    const [cred] = await app.store.credentials.listForDevice('urn:sec:1');
    expect(cred).to.deep.include({ id: reg!.credentialId, status: 'active', mode: 'psk' });
    // The key it registered with is the one provisioned for it (and not the bootstrap key).
    const provisioned = (await app.store.credentials.revealSecrets(cred!.id)).pskKey!;
    expect(Buffer.from(account.pskKey!.reveal()).equals(provisioned)).to.equal(true);
    expect(provisioned.equals(BS_KEY)).to.equal(false);
    // Two handshakes: one per server, each with its own credentials.
    expect(diags.filter((x) => x.kind === 'established').map((x) => x.kind === 'established' && x.peer.port)).to.deep.equal([
      app.addresses.get('bootstrap.coaps')!.port, app.addresses.get('registration.coaps')!.port,
    ]);

    // Device management from the server over the session.
    const read = await app.management.run(Buffer.from('urn:sec:1'), { op: 'read', path: '/3/0/0' });
    expect(read).to.deep.include({ state: 'done', code: '2.05', success: true });
    const value = read.values?.find((v) => v.path === '/3/0/0');
    expect(value && 'value' in value ? value.value : undefined).to.equal(d.value('/3/0/0')?.value);

    const dereg = await d.deregister({ timeoutMs: 5000 });
    expect(dereg).to.deep.include({ outcome: 'success', code: '2.02' });
    expect(await app.store.registry.getByEndpoint('urn:sec:1')).to.equal(undefined);
  });

  it('re-bootstraps through /1/x/9 over DTLS and registers again with the new PSK (a new DTLS session)', async () => {
    const diags: DtlsClientDiagnostic[] = [];
    const d = await sim('urn:sec:4', { bootstrapPsk: { identity: 'bs-id-4', key: BS_KEY }, dtls: { ...DTLS_FAST, onDiagnostic: (x) => diags.push(x) } });
    expect((await d.bootstrap(bsUri, { timeoutMs: 10_000 })).outcome).to.equal('success');
    expect((await d.register({ timeoutMs: 10_000 })).outcome).to.equal('success');
    const first = (await app.store.registry.getByEndpoint('urn:sec:4'))!;
    const r = await app.management.run(Buffer.from('urn:sec:4'), { op: 'trigger-bootstrap' });
    expect(r).to.deep.include({ state: 'done', code: '2.04' });
    await d.settled();
    const second = (await app.store.registry.getByEndpoint('urn:sec:4'))!;
    expect(second.id).to.not.equal(first.id);
    expect(second.credentialId).to.not.equal(first.credentialId);
    expect(d.registration).to.deep.include({ status: 'registered', server: regsUri });
    // Bootstrap, Register, the second bootstrap (same BS key: the session is reused), the Register with the new key.
    const regsPort = app.addresses.get('registration.coaps')!.port;
    expect(diags.filter((x) => x.kind === 'established' && x.peer.port === regsPort)).to.have.length(2);
    expect((await app.store.sessions.list({ endpoint: 'urn:sec:4' })).length).to.equal(2);
  });

  it('a wrong bootstrap key or an unknown identity fails the bootstrap cleanly (no key in the diagnostic)', async () => {
    const wrongKey = Buffer.from(BS_KEY);
    wrongKey[15]! ^= 0xff;
    const d = await sim('urn:sec:2', { bootstrapPsk: { identity: 'bs-id-2', key: wrongKey }, dtls: { ...DTLS_FAST, handshakeTimeoutMs: 1500 } });
    const r = await d.bootstrap(bsUri, { timeoutMs: 5000 });
    expect(r.outcome).to.equal('error');
    expect(r.diagnostic).to.match(/DTLS handshake with 127\.0\.0\.1:\d+ timed out .*wrong PSK key\?/);
    expect(r.diagnostic).to.not.contain(wrongKey.toString('hex'));
    // The session ended unsuccessfully: the BS account is as it was (PSK, the key it was given).
    expect(r.bootstrapAccount).to.deep.include({ mode: 'psk' });

    const u = await sim('urn:sec:2b', { bootstrapPsk: { identity: 'nobody', key: BS_KEY } });
    const r2 = await u.bootstrap(bsUri, { timeoutMs: 5000 });
    expect(r2.outcome).to.equal('error');
    expect(r2.diagnostic).to.contain('unknown_psk_identity(115)');
    expect(await app.store.sessions.list({ endpoint: 'urn:sec:2' })).to.deep.equal([]);
  });

  it('a coaps:// bootstrap without credentials is refused before anything is sent', async () => {
    const d = await sim('urn:sec:3');
    let err: unknown;
    try {
      await d.bootstrap(bsUri);
    } catch (e) {
      err = e;
    }
    expect(String(err)).to.contain('needs its bootstrap PSK credentials');
    expect(d.requests).to.deep.equal([]);
  });

  it('lwbs simulate --bootstrap coaps:// --psk-identity --psk-key: bootstraps and registers over DTLS, the key masked', async () => {
    const r = await lwbs(['simulate', '--endpoint', 'urn:sec:3', '--bootstrap', bsUri, '--psk-identity', 'bs-id-3', '--psk-key', BS_KEY.toString('hex'), '--timeout', '10', '--once']);
    expect(r.err).to.equal('');
    expect(r.code).to.equal(0);
    expect(r.out).to.match(/^bootstrap of urn:sec:3 \(LwM2M 1\.1\) from coaps:\/\/127\.0\.0\.1:\d+: success/);
    expect(r.out).to.include(`Register with ${regsUri} (SSID 5): 2.01`);
    expect(r.out).to.include(`De-register at ${regsUri} (SSID 5): 2.02`);
    expect(r.out).to.match(/psk key\s+\[secret, 16 bytes\]/);
    expect(r.out).to.not.include(BS_KEY.toString('hex'));
    const [cred] = await app.store.credentials.listForDevice('urn:sec:3');
    expect(r.out).to.not.include((await app.store.credentials.revealSecrets(cred!.id)).pskKey!.toString('hex'));
    const events = await app.store.registry.events('urn:sec:3');
    expect(events.map((e) => e.kind).sort()).to.deep.equal(['deregister', 'register']);
  });

  it('lwbs simulate: usage errors for PSK flags (exit 2), never echoing the key', async () => {
    const cases: [string[], RegExp][] = [
      [['--bootstrap', bsUri], /needs the device's bootstrap PSK/],
      [['--bootstrap', bsUri, '--psk-identity', 'x'], /needs the device's bootstrap PSK/],
      [['--bootstrap', 'coap://127.0.0.1:5683', '--psk-identity', 'x', '--psk-key', '00'], /--psk-identity, --psk-key go with a coaps:\/\/ --bootstrap URI/],
      [['--bootstrap', bsUri, '--psk-identity', 'x', '--psk-identity-hex', '00', '--psk-key', '00'], /not both/],
      [['--bootstrap', bsUri, '--psk-identity', 'x', '--psk-key', 'zz-secret-zz'], /--psk-key must be non-empty hex/],
    ];
    for (const [args, message] of cases) {
      const r = await lwbs(['simulate', '--endpoint', 'x', ...args]);
      expect(r.code, args.join(' ')).to.equal(2);
      expect(r.err, args.join(' ')).to.match(message);
      expect(r.err).to.not.contain('zz-secret-zz');
    }
  });
});
