/**
 * The simulator over coaps:// with X.509 certificates (DTLS ECDHE_ECDSA, security mode 2) against
 * lwbs itself (`startApp` with `bootstrap.coaps` / `registration.coaps` and a test CA made by the
 * openssl CLI as both servers' `x509.trustAnchors`):
 *  - zero-touch: a device whose certificate CN is its endpoint bootstraps over X.509, pinning the
 *    bootstrap server's certificate (/0/0/4, usage 3), is enrolled with that certificate and
 *    handed a coaps:// PSK account, and registers over DTLS-PSK;
 *  - trust anchor mode (/0/0/4 = anchor, /0/0/15 = 2, name checked against the URI host), then a
 *    Register through a security-mode-2 account the bootstrap server wrote (a static x509 server
 *    in the profile: certificate, key, the registration server's certificate in /0/x/4) with a
 *    directly enrolled x509 credential: the registry row is x509 with the certificate as identity;
 *  - a pinned certificate the server does not present, a trust anchor that did not issue the
 *    server's certificate, a device certificate from another CA: the bootstrap fails in the
 *    handshake (bad_certificate / unknown_ca from us, unknown_ca from lwbs);
 *  - `lwbs simulate --x509-cert --x509-key --server-cert`, and its usage errors;
 *  - and on its own, how a security-mode-2 instance (/0/x/3, 4, 5, 14, 15) becomes DTLS options.
 */
import { expect } from 'chai';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startApp, type App } from '../../src/app.js';
import type { Config } from '../../src/config/config.js';
import type { DtlsClientDiagnostic } from '../../src/dtls/client.js';
import { N, type ObjectInstance } from '../../src/lwm2m/node.js';
import { V } from '../../src/lwm2m/value.js';
import { DeviceSimulator, type SimulatorOptions } from '../../src/simulator/simulator.js';
import { DtlsNotSupportedError } from '../../src/simulator/target.js';
import { clientX509Of, dtlsCredentialsOf, type X509Credentials } from '../../src/simulator/transport.js';
import { issue, makeCa, requireOpenssl, type TestCert } from '../dtls/openssl-support.js';
import { open, removeDir, tempDir, TEST_KEY_HEX } from '../store/support.js';
import { until } from '../registration/support.js';
import { freePort, lwbs, simStarter } from './dtls-app.js';
import { FAST } from './support.js';

const LOCAL = '127.0.0.1';
const DTLS_FAST = { retransmit: { initialMs: 200, maxMs: 1000 }, handshakeTimeoutMs: 8000 } as const;
const ZERO_TOUCH = {
  name: 'x509-zero-touch',
  match: ['urn:simx:zt-*'],
  enroll: { allowSecurity: ['x509'] },
  delete: ['/0', '/1'],
  servers: [{ shortServerId: 7, handOff: true, lifetime: 300, binding: 'U', security: { mode: 'psk', generate: true } }],
};

const pkcs8 = (c: TestCert): Buffer => c.privateKey.export({ format: 'der', type: 'pkcs8' });

describe('simulator over coaps:// with X.509 certificates against lwbs', function () {
  this.timeout(60_000);
  let dir: string;
  let app: App;
  let ca: TestCert;
  const certs: Record<string, TestCert> = {};
  let bsUri: string;
  let regsUri: string;
  let bsCert: Buffer;
  let regCert: Buffer;
  const sims: DeviceSimulator[] = [];

  const sim = simStarter(sims, DTLS_FAST);

  before(async () => {
    requireOpenssl();
    dir = tempDir('lwbs-sim-x509-');
    ca = makeCa(dir, 'ca', 'lwbs simulator CA');
    makeCa(dir, 'other-ca', 'untrusted CA');
    certs.zt1 = issue(dir, 'zt-1', 'ca', { cn: 'urn:simx:zt-1' });
    certs.zt2 = issue(dir, 'zt-2', 'ca', { cn: 'urn:simx:zt-2' });
    certs.zt3 = issue(dir, 'zt-3', 'ca', { cn: 'urn:simx:zt-3' });
    certs.zt4 = issue(dir, 'zt-4', 'ca', { cn: 'urn:simx:zt-4' });
    certs.untrusted = issue(dir, 'untrusted', 'other-ca', { cn: 'urn:simx:zt-5' });
    certs.anchored = issue(dir, 'anchored', 'ca', { cn: 'urn:simx:direct-1' });
    certs.direct = issue(dir, 'direct', 'ca', { cn: 'urn:simx:direct-1' });

    const data = join(dir, 'data');
    const store = await open(data);
    await store.profiles.put(ZERO_TOUCH.name, JSON.stringify(ZERO_TOUCH));
    await store.close();
    const regsPort = await freePort();
    regsUri = `coaps://${LOCAL}:${regsPort}`;
    const x509 = { trustAnchors: [ca.certFile], certificate: null, privateKey: null };
    const config: Config = {
      dataDir: data,
      objectDirs: [],
      bootstrap: { coap: null, coaps: { host: LOCAL, port: 0 }, requestTimeoutSeconds: 10, sessionTimeoutSeconds: 60, x509 },
      registration: {
        coap: null,
        coaps: { host: LOCAL, port: regsPort },
        publicUri: { coap: `coap://${LOCAL}:5783`, coaps: regsUri },
        requestTimeoutSeconds: 5,
        queueAwakeSeconds: 93,
        x509,
      },
      log: { level: 'error' },
      admin: { listen: null },
    };
    app = await startApp(config, { transmission: FAST, env: { LWBS_SECRET_KEY: TEST_KEY_HEX } });
    bsUri = `coaps://${LOCAL}:${app.addresses.get('bootstrap.coaps')!.port}`;
    bsCert = new X509Certificate(readFileSync(join(data, 'bootstrap-certificate.pem'))).raw;
    regCert = new X509Certificate(readFileSync(join(data, 'registration-certificate.pem'))).raw;

    // A device enrolled directly: its profile writes a static security-mode-2 account for the
    // registration server (this lwbs, not a hand-off), whose credential the operator added.
    const direct = {
      name: 'x509-direct',
      match: ['urn:simx:direct-*'],
      enroll: { allowSecurity: ['x509'] },
      delete: ['/0', '/1'],
      servers: [{
        shortServerId: 9, handOff: false, uri: regsUri, lifetime: 300, binding: 'U',
        security: {
          mode: 'x509',
          certificate: readFileSync(certs.direct.certFile, 'utf8'),
          privateKey: readFileSync(certs.direct.keyFile, 'utf8'),
          serverCertificate: readFileSync(join(data, 'registration-certificate.pem'), 'utf8'),
        },
      }],
    };
    await app.store.profiles.put(direct.name, JSON.stringify(direct));
    await app.store.devices.add({ endpoint: 'urn:simx:direct-1', profile: direct.name, auth: { kind: 'x509', certificate: certs.anchored.der } });
    await app.store.credentials.addPending({ endpoint: 'urn:simx:direct-1', shortServerId: 9, serverUri: regsUri, mode: 'x509', publicKey: certs.direct.der, serverPublicKey: regCert });
  });
  afterEach(async () => {
    await Promise.all(sims.splice(0).map((s) => s.close({ timeoutMs: 2000 })));
  });
  after(async () => {
    await app?.close();
    if (dir) removeDir(dir);
  });

  it('zero-touch: bootstraps over X.509 pinning the server certificate, is enrolled, registers over DTLS-PSK', async () => {
    const diags: DtlsClientDiagnostic[] = [];
    const d = await sim('urn:simx:zt-1', {
      bootstrapX509: { certificate: certs.zt1!.der, privateKey: pkcs8(certs.zt1!), serverCertificate: bsCert },
      dtls: { ...DTLS_FAST, onDiagnostic: (x) => diags.push(x) },
    });
    const report = await d.bootstrap(bsUri, { timeoutMs: 10_000 });
    expect(report.outcome, report.diagnostic).to.equal('success');
    expect(report.bootstrapAccount).to.deep.include({ mode: 'x509', uri: bsUri });
    expect(Buffer.from(report.bootstrapAccount!.certificate!).equals(certs.zt1!.der)).to.equal(true);
    expect(report.servers).to.have.length(1);
    expect(report.servers[0]).to.deep.include({ mode: 'psk', uri: regsUri, ssid: 7 });

    const [session] = await until(async () => {
      const l = await app.store.sessions.list({ endpoint: 'urn:simx:zt-1' });
      return l.length > 0 && l;
    }, 'the bootstrap session of urn:simx:zt-1');
    expect(session).to.deep.include({ security: 'x509', profile: ZERO_TOUCH.name });
    const device = await app.store.devices.get('urn:simx:zt-1');
    expect(device).to.deep.include({ enrolledBy: 'zero-touch' });
    expect(device!.auth.kind === 'x509' && device!.auth.certificate.equals(certs.zt1!.der)).to.equal(true);
    // The bootstrap server proved the certificate we pinned.
    const bsPeer = { address: LOCAL, port: app.addresses.get('bootstrap.coaps')!.port };
    const est = diags.find((x) => x.kind === 'established' && x.peer.port === bsPeer.port);
    expect(est?.kind === 'established' && est.suite.keyExchange).to.equal('ecdhe_ecdsa');

    const r = await d.register({ timeoutMs: 10_000 });
    expect(r, r.diagnostic).to.deep.include({ outcome: 'success', code: '2.01', shortServerId: 7, server: regsUri });
    expect(await app.store.registry.getByEndpoint('urn:simx:zt-1')).to.deep.include({ security: 'psk', lifetime: 300 });
    const dereg = await d.deregister({ timeoutMs: 5000 });
    expect(dereg).to.deep.include({ outcome: 'success', code: '2.02' });
  });

  it('trust anchor mode for the bootstrap server, then a Register through the security-mode-2 account it wrote (registry x509)', async () => {
    const d = await sim('urn:simx:direct-1', {
      // lwbs's certificate is self-signed: it is its own trust anchor, and names 127.0.0.1 (the URI host).
      bootstrapX509: { certificate: certs.anchored!.der, privateKey: pkcs8(certs.anchored!), trustAnchors: [bsCert] },
    });
    const report = await d.bootstrap(bsUri, { timeoutMs: 10_000 });
    expect(report.outcome, report.diagnostic).to.equal('success');
    expect(report.bootstrapAccount).to.deep.include({ mode: 'x509', certificateUsage: 2 });
    const account = report.servers[0]!;
    expect(account).to.deep.include({ mode: 'x509', uri: regsUri, ssid: 9 });
    expect(Buffer.from(account.certificate!).equals(certs.direct!.der)).to.equal(true);
    expect(Buffer.from(account.serverCertificate!).equals(regCert)).to.equal(true);

    const r = await d.register({ timeoutMs: 10_000 });
    expect(r, r.diagnostic).to.deep.include({ outcome: 'success', code: '2.01', shortServerId: 9, server: regsUri });
    const reg = await app.store.registry.getByEndpoint('urn:simx:direct-1');
    expect(reg).to.deep.include({ security: 'x509', lifetime: 300, address: LOCAL });
    expect(reg!.identity!.equals(certs.direct!.der)).to.equal(true);
    const peer = d.dtlsEndpoint({ address: LOCAL, port: Number(new URL(regsUri).port) });
    const id = peer?.sessionPeerIdentity(LOCAL, Number(new URL(regsUri).port));
    expect(id?.type === 'x509' && id.certificate.equals(regCert)).to.equal(true);
    const read = await app.management.run(Buffer.from('urn:simx:direct-1'), { op: 'read', path: '/3/0/0' });
    expect(read).to.deep.include({ state: 'done', code: '2.05', success: true });
    expect((await d.deregister({ timeoutMs: 5000 }))?.outcome).to.equal('success');
  });

  it('a pinned certificate the server does not present, and a device certificate from an untrusted CA: the handshake fails, nothing is enrolled', async () => {
    const pinnedWrong = await sim('urn:simx:zt-2', { bootstrapX509: { certificate: certs.zt2!.der, privateKey: pkcs8(certs.zt2!), serverCertificate: regCert } });
    const r1 = await pinnedWrong.bootstrap(bsUri, { timeoutMs: 10_000 });
    expect(r1.outcome).to.not.equal('success');
    expect(r1.diagnostic).to.match(/bad_certificate/);
    expect(await app.store.devices.get('urn:simx:zt-2')).to.equal(undefined);

    // Trust anchor mode with an anchor that did not issue the server certificate (the registration server's own).
    const wrongAnchor = await sim('urn:simx:zt-2', { bootstrapX509: { certificate: certs.zt2!.der, privateKey: pkcs8(certs.zt2!), trustAnchors: [regCert] } });
    const r3 = await wrongAnchor.bootstrap(bsUri, { timeoutMs: 10_000 });
    expect(r3.outcome).to.not.equal('success');
    expect(r3.diagnostic).to.match(/unknown_ca/);

    const untrusted = await sim('urn:simx:zt-5', { bootstrapX509: { certificate: certs.untrusted!.der, privateKey: pkcs8(certs.untrusted!), serverCertificate: bsCert } });
    const r2 = await untrusted.bootstrap(bsUri, { timeoutMs: 10_000 });
    expect(r2.outcome).to.not.equal('success');
    expect(r2.diagnostic).to.match(/unknown_ca/);
    expect(await app.store.devices.get('urn:simx:zt-5')).to.equal(undefined);
    expect(await app.store.sessions.list({ endpoint: 'urn:simx:zt-5' })).to.deep.equal([]);
  });

  it('refuses bad bootstrapX509 material at start, quoting no key bytes', async () => {
    const cases: [SimulatorOptions['bootstrapX509'], RegExp][] = [
      [{ certificate: certs.zt3!.der, privateKey: pkcs8(certs.zt4!) }, /does not belong/],
      [{ certificate: Buffer.from('30020500', 'hex'), privateKey: pkcs8(certs.zt3!) }, /x509\.certificate/],
      [{ certificate: certs.zt3!.der, privateKey: pkcs8(certs.zt3!), serverCertificate: bsCert, trustAnchors: [bsCert] }, /not both/],
    ];
    for (const [bootstrapX509, message] of cases) {
      let err: unknown;
      try {
        await sim('x', { bootstrapX509 });
      } catch (e) {
        err = e;
      }
      expect(String(err)).to.match(message);
      expect(String(err)).to.not.contain(pkcs8(certs.zt3!).toString('hex').slice(-64));
    }
  });

  it('lwbs simulate --x509-cert --x509-key --server-cert: bootstraps over X.509 and registers; the private key is masked', async () => {
    const r = await lwbs(['simulate', '--endpoint', 'urn:simx:zt-3', '--bootstrap', bsUri, '--x509-cert', certs.zt3!.certFile, '--x509-key', certs.zt3!.keyFile,
      '--server-cert', join(dir, 'data', 'bootstrap-certificate.pem'), '--timeout', '10', '--once']);
    expect(r.err).to.equal('');
    expect(r.code).to.equal(0);
    expect(r.out).to.match(/^bootstrap of urn:simx:zt-3 \(LwM2M 1\.1\) from coaps:\/\/127\.0\.0\.1:\d+: success/);
    expect(r.out).to.include(`Register with ${regsUri} (SSID 7): 2.01`);
    expect(r.out).to.include(`De-register at ${regsUri} (SSID 7): 2.02`);
    expect(r.out).to.not.include(pkcs8(certs.zt3!).toString('hex').slice(-64));
    expect(await app.store.devices.get('urn:simx:zt-3')).to.deep.include({ enrolledBy: 'zero-touch' });
  });

  it('lwbs simulate: usage and file errors for --x509-cert, never echoing key bytes', async () => {
    const zt4 = certs.zt4!;
    const cases: [string[], number, RegExp][] = [
      [['--bootstrap', 'coap://127.0.0.1:5683', '--x509-cert', zt4.certFile, '--x509-key', zt4.keyFile], 2, /--x509-cert, --x509-key go with a coaps:\/\/ --bootstrap URI/],
      [['--bootstrap', bsUri, '--x509-cert', zt4.certFile], 2, /--x509-cert and --x509-key go together/],
      [['--bootstrap', bsUri, '--x509-cert', zt4.certFile, '--x509-key', zt4.keyFile, '--psk-identity', 'x', '--psk-key', '00'], 2, /not both/],
      [['--bootstrap', bsUri, '--x509-cert', zt4.keyFile, '--x509-key', zt4.keyFile], 1, /zt-4\.key: no PEM "CERTIFICATE" block/],
      [['--bootstrap', bsUri, '--x509-cert', zt4.certFile, '--x509-key', certs.zt3!.keyFile], 1, /does not belong to the leaf certificate/],
    ];
    for (const [args, code, message] of cases) {
      const r = await lwbs(['simulate', '--endpoint', 'urn:simx:zt-4', ...args]);
      expect(r.code, args.join(' ')).to.equal(code);
      expect(r.err, args.join(' ')).to.match(message);
      expect(r.err).to.not.contain(pkcs8(zt4).toString('hex').slice(-64));
    }
  });
});

describe('simulator/transport: security mode 2 credentials from a Security instance', () => {
  const cert = Buffer.from('3003020101', 'hex');
  const key = Buffer.from('3003020102', 'hex');
  const other = Buffer.from('3003020103', 'hex');
  const sec = (extra: ReturnType<typeof N.resource>[], mode = 2): ObjectInstance => N.instance(1, [
    N.resource(0, V.string('coaps://lwm2m.example.com:5684')), N.resource(1, V.boolean(false)), N.resource(2, V.integer(mode)), ...extra,
  ]);
  const what = 'LwM2M server (SSID 3)';

  it('usage 3 (default) pins /0/x/4; usage 2 makes it the trust anchor and checks the URI host, or /0/x/14 SNI', () => {
    const pinned = dtlsCredentialsOf(sec([N.resource(3, V.opaque(cert)), N.resource(4, V.opaque(other)), N.resource(5, V.opaque(key))]), 'coaps://lwm2m.example.com:5684', what);
    expect(pinned).to.deep.include({ kind: 'x509', certificateUsage: 3, serverName: 'lwm2m.example.com' });
    expect(clientX509Of(pinned as X509Credentials)).to.deep.equal({ certificate: Uint8Array.from(cert), privateKey: Uint8Array.from(key), serverCertificate: Uint8Array.from(other) });
    const anchored = dtlsCredentialsOf(sec([N.resource(3, V.opaque(cert)), N.resource(4, V.opaque(Buffer.concat([other, cert]))), N.resource(5, V.opaque(key)), N.resource(15, V.integer(2))]),
      'coaps://[::1]:5684', what) as X509Credentials;
    expect(clientX509Of(anchored)).to.deep.equal({ certificate: Uint8Array.from(cert), privateKey: Uint8Array.from(key), trustAnchors: [other, cert], serverName: '::1' });
    const sni = dtlsCredentialsOf(sec([N.resource(3, V.opaque(cert)), N.resource(4, V.opaque(other)), N.resource(5, V.opaque(key)), N.resource(14, V.string('dm.example.net')), N.resource(15, V.integer(0))]),
      'coaps://192.0.2.1:5684', what) as X509Credentials;
    expect(clientX509Of(sni)).to.deep.include({ serverName: 'dm.example.net' });
  });

  it('missing certificate, key or trust anchor: an Error naming the resource; certificates with EST: DtlsNotSupportedError', () => {
    const uri = 'coaps://lwm2m.example.com:5684';
    expect(() => dtlsCredentialsOf(sec([N.resource(5, V.opaque(key))]), uri, what)).to.throw(/no certificate \(\/0\/x\/3\)/);
    expect(() => dtlsCredentialsOf(sec([N.resource(3, V.opaque(cert))]), uri, what)).to.throw(/no private key \(\/0\/x\/5\)/);
    expect(() => dtlsCredentialsOf(sec([N.resource(3, V.opaque(cert)), N.resource(5, V.opaque(key)), N.resource(15, V.integer(2))]), uri, what)).to.throw(/no trust anchor certificate \(\/0\/x\/4\)/);
    expect(() => dtlsCredentialsOf(sec([N.resource(3, V.opaque(cert)), N.resource(5, V.opaque(key)), N.resource(15, V.integer(7))]), uri, what)).to.throw(/certificate usage 7/);
    expect(() => dtlsCredentialsOf(sec([], 4), uri, what)).to.throw(DtlsNotSupportedError, /certificate with EST is not supported by the simulator/);
  });
});
