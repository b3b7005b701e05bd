/**
 * X.509 through the composition root (`startApp`, what `lwbs serve` runs) over real UDP on
 * 127.0.0.1, with a test CA made by the openssl CLI in a temporary directory as both servers'
 * `x509.trustAnchors`, and libcoap's coap-client-gnutls as the device (`-c cert -j key`, and `-C`
 * with the server's self-signed certificate from the data directory, so the client verifies the
 * server too):
 *  - Bootstrap-Request whose certificate CN (or a subjectAltName) is the endpoint → 2.04 and a
 *    bootstrap session with security x509 (zero-touch enrollment records the certificate);
 *  - a certificate naming another endpoint → 4.00, the session record names both; a certificate
 *    no name of which could be admitted, or from an untrusted CA → refused in the handshake;
 *  - Register to the registration server with a credential enrolled directly by
 *    `lwbs device credential add EP --mode x509 --certificate FILE` → 2.01, registration x509;
 *    a certificate whose credential belongs to another endpoint → 4.03.
 *  - openssl s_client verifies the registration server's certificate against its IP address.
 * CI installs openssl and libcoap3-bin; a missing binary is a test failure, not a skip.
 */
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { startApp, type App } from '../../src/app.js';
import type { Config } from '../../src/config/config.js';
import { issue, makeCa, requireOpenssl, sClient, type TestCert } from '../dtls/openssl-support.js';
import { freePort, peerKey, requireBinary, runPeer, until, type PeerKey, type PeerRun } from '../interop/support.js';
import { open, removeDir, tempDir, TEST_KEY_HEX } from '../store/support.js';

const LOCAL = '127.0.0.1';
const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const PROFILE = {
  name: 'x509-fleet',
  match: ['urn:x509:*'],
  enroll: { allowSecurity: ['x509'] },
  delete: ['/0', '/1'],
  servers: [{ shortServerId: 7, handOff: true, lifetime: 300, binding: 'U', security: { mode: 'nosec' } }],
};
const OBJECTS = '</1/0>,</3/0>';

interface CoapClientRun extends PeerRun {
  readonly response: string | undefined;
}

const show = (r: PeerRun): string => `exit ${r.code}\nstdout:\n${r.stdout.slice(-3000)}\nstderr:\n${r.stderr.slice(-2000)}`;

describe('e2e: X.509 clients against lwbs (coap-client-gnutls, test CA from openssl)', function () {
  this.timeout(90_000);
  let dir: string;
  let app: App;
  let ca: TestCert;
  let otherCa: TestCert;
  const certs: Record<string, TestCert> = {};
  let bsPort: number;
  let regPort: number;
  let rpkDevice: PeerKey;

  /** coap-client-gnutls with a client certificate, verifying the server against `serverCert`. */
  async function coapClient(uri: string, cert: TestCert, serverCert: string, extra: string[] = []): Promise<CoapClientRun> {
    const run = await runPeer('coap-client-gnutls', ['-m', 'post', '-B', '6', '-v', '7', '-c', cert.certFile, '-j', cert.keyFile, '-C', serverCert, ...extra, uri], undefined, 20_000);
    const m = /^v:1 t:(?:ACK|CON|NON) c:(\d\.\d{2}) /m.exec(run.stdout);
    return { ...run, response: m?.[1] };
  }

  before(async () => {
    requireOpenssl();
    requireBinary('coap-client-gnutls', 'libcoap3-bin');
    dir = tempDir('lwbs-e2e-x509-');
    ca = makeCa(dir, 'ca', 'lwbs e2e CA');
    otherCa = makeCa(dir, 'other-ca', 'untrusted CA');
    certs.zeroTouch = issue(dir, 'zero-touch', 'ca', { cn: 'urn:x509:zt-1' });
    certs.bySan = issue(dir, 'by-san', 'ca', { cn: 'factory serial 42', san: 'URI:urn:x509:enrolled-1' });
    certs.other = issue(dir, 'other', 'ca', { cn: 'urn:x509:zt-2' });
    certs.victim = issue(dir, 'victim', 'ca', { cn: 'urn:x509:victim' });
    certs.noProfile = issue(dir, 'no-profile', 'ca', { cn: 'urn:nobody:1' });
    certs.untrusted = issue(dir, 'untrusted', 'other-ca', { cn: 'urn:x509:zt-3' });
    certs.reg = issue(dir, 'reg', 'ca', { cn: 'urn:x509:reg-1' });
    certs.regOther = issue(dir, 'reg-other', 'ca', { cn: 'urn:x509:reg-2' });

    rpkDevice = peerKey(dir, 'rpk-device');

    const data = join(dir, 'data');
    const store = await open(data);
    await store.profiles.put(PROFILE.name, JSON.stringify(PROFILE));
    await store.devices.add({ endpoint: 'urn:x509:rpk-1', profile: PROFILE.name, auth: { kind: 'rpk', publicKey: rpkDevice.spki } });
    await store.devices.add({ endpoint: 'urn:x509:enrolled-1', profile: PROFILE.name, auth: { kind: 'x509', certificate: certs.bySan.der } });
    await store.devices.add({ endpoint: 'urn:x509:victim', profile: PROFILE.name, auth: { kind: 'x509', certificate: certs.victim.der } });
    await store.devices.add({ endpoint: 'urn:x509:reg-1', profile: PROFILE.name });
    await store.devices.add({ endpoint: 'urn:x509:reg-2', profile: PROFILE.name });
    await store.close();

    regPort = await freePort();
    const registrationUri = `coaps://${LOCAL}:${regPort}`;
    const x509 = { trustAnchors: [ca.certFile], certificate: null, privateKey: null };
    // Direct enrollment through the CLI, as an operator would: it reads publicUri and trustAnchors from this file.
    const configFile = join(dir, 'lwbs.json');
    writeFileSync(configFile, JSON.stringify({ registration: { publicUri: { coap: `coap://${LOCAL}:5783`, coaps: registrationUri }, x509 } }));
    const cli = spawnSync(process.execPath, [MAIN, '--data', data, 'device', 'credential', 'add', 'urn:x509:reg-1', '--ssid', '7', '--mode', 'x509', '--certificate', certs.reg.certFile, '-c', configFile], {
      encoding: 'utf8', timeout: 20_000, env: { ...process.env, LWBS_DATA_DIR: '', LWBS_SECRET_KEY: TEST_KEY_HEX },
    });
    expect(cli.status, cli.stderr).to.equal(0);
    expect(cli.stdout).to.match(/enrolled "?urn:x509:reg-1"? directly with coaps:\/\/127\.0\.0\.1:\d+ \(SSID 7, x509\)/);

    const config: Config = {
      dataDir: data,
      objectDirs: [],
      bootstrap: { coap: null, coaps: { host: LOCAL, port: 0 }, requestTimeoutSeconds: 2, sessionTimeoutSeconds: 10, x509 },
      registration: {
        coap: null,
        coaps: { host: LOCAL, port: regPort },
        publicUri: { coap: `coap://${LOCAL}:5783`, coaps: registrationUri },
        requestTimeoutSeconds: 5,
        queueAwakeSeconds: 93,
        x509,
      },
      log: { level: 'error' },
      admin: { listen: null },
    };
    app = await startApp(config, { transmission: { ackTimeoutMs: 300, ackRandomFactor: 1, maxRetransmit: 1 }, env: { LWBS_SECRET_KEY: TEST_KEY_HEX } });
    bsPort = app.addresses.get('bootstrap.coaps')!.port;
  });
  after(async () => {
    await app?.close();
    if (dir) removeDir(dir);
  });

  const bsCert = (): string => join(dir, 'data', 'bootstrap-certificate.pem');
  const regCert = (): string => join(dir, 'data', 'registration-certificate.pem');
  const sessionsOf = async (ep: string): Promise<Awaited<ReturnType<App['store']['sessions']['list']>>> => app.store.sessions.list({ endpoint: ep });

  it('the servers made self-signed certificates over their stored key pairs, in the data directory', async () => {
    for (const [file, name] of [[bsCert(), 'bootstrap'], [regCert(), 'registration']] as const) {
      const cert = new X509Certificate(readFileSync(file));
      const key = await app.store.serverKeys.get(name);
      expect(cert.publicKey.export({ format: 'der', type: 'spki' }).equals(key!.publicKey), name).to.equal(true);
      expect(cert.verify(cert.publicKey)).to.equal(true);
    }
    expect(new X509Certificate(readFileSync(regCert())).subjectAltName).to.equal('IP Address:127.0.0.1');
  });

  it('zero-touch: a certificate whose CN is the endpoint bootstraps (2.04), the device is enrolled with that certificate', async () => {
    const r = await coapClient(`coaps://${LOCAL}:${bsPort}/bs?ep=urn:x509:zt-1`, certs.zeroTouch!, bsCert());
    expect(r.response, show(r)).to.equal('2.04');
    const [session] = await until(async () => {
      const l = await sessionsOf('urn:x509:zt-1');
      return l.length > 0 && l;
    }, 'the bootstrap session of urn:x509:zt-1');
    expect(session).to.deep.include({ security: 'x509', profile: PROFILE.name });
    const device = await app.store.devices.get('urn:x509:zt-1');
    expect(device).to.deep.include({ enrolledBy: 'zero-touch' });
    expect(device!.auth.kind === 'x509' && device!.auth.certificate.equals(certs.zeroTouch!.der)).to.equal(true);
  });

  it('an enrolled device whose certificate names it in a subjectAltName bootstraps (2.04)', async () => {
    const r = await coapClient(`coaps://${LOCAL}:${bsPort}/bs?ep=urn:x509:enrolled-1`, certs.bySan!, bsCert());
    expect(r.response, show(r)).to.equal('2.04');
    const [session] = await until(async () => {
      const l = await sessionsOf('urn:x509:enrolled-1');
      return l.length > 0 && l;
    }, 'the bootstrap session of urn:x509:enrolled-1');
    expect(session).to.deep.include({ security: 'x509', profile: PROFILE.name });
  });

  it('a raw-public-key device on the same listener still gets the raw key, not the certificate, and bootstraps (2.04)', async () => {
    // GnuTLS lists X.509 first among the server certificate types even in raw-key mode (-M).
    const run = await runPeer('coap-client-gnutls', ['-m', 'post', '-B', '6', '-v', '7', '-M', rpkDevice.privatePemFile, `coaps://${LOCAL}:${bsPort}/bs?ep=urn:x509:rpk-1`], undefined, 20_000);
    expect(/^v:1 t:(?:ACK|CON|NON) c:(\d\.\d{2}) /m.exec(run.stdout)?.[1], show(run)).to.equal('2.04');
    const [session] = await until(async () => {
      const l = await sessionsOf('urn:x509:rpk-1');
      return l.length > 0 && l;
    }, 'the bootstrap session of urn:x509:rpk-1');
    expect(session).to.deep.include({ security: 'rpk', profile: PROFILE.name });
  });

  it('a trusted certificate that names another endpoint is refused with 4.00; the record names both', async () => {
    const r = await coapClient(`coaps://${LOCAL}:${bsPort}/bs?ep=urn:x509:victim`, certs.other!, bsCert());
    expect(r.response, show(r)).to.equal('4.00');
    const [session] = await until(async () => {
      const l = await sessionsOf('urn:x509:victim');
      return l.length > 0 && l;
    }, 'the refusal record of urn:x509:victim');
    expect(session).to.deep.include({ security: 'x509', outcome: 'failure', failureCause: 'unauthorized' });
    expect(session!.failureDetail).to.include('"urn:x509:victim"').and.to.include('CN "urn:x509:zt-2"');
    expect(await app.store.devices.get('urn:x509:zt-2')).to.equal(undefined);
  });

  for (const [what, name, ep] of [
    ['no name of which any profile or device admits', 'noProfile', 'urn:nobody:1'],
    ['from a CA that is not a trust anchor', 'untrusted', 'urn:x509:zt-3'],
  ] as const) {
    it(`a certificate ${what} is refused in the handshake (no CoAP response, nothing recorded)`, async () => {
      const r = await coapClient(`coaps://${LOCAL}:${bsPort}/bs?ep=${ep}`, certs[name]!, bsCert(), []);
      expect(r.response, show(r)).to.equal(undefined);
      expect(r.stdout + r.stderr).to.match(/alert|certificate|handshake/i);
      expect(await sessionsOf(ep)).to.deep.equal([]);
      expect(await app.store.devices.get(ep)).to.equal(undefined);
    });
  }

  it('a directly enrolled x509 credential registers (2.01); the registration is x509 with the certificate as identity', async () => {
    const r = await coapClient(`coaps://${LOCAL}:${regPort}/rd?ep=urn:x509:reg-1&lt=300&lwm2m=1.1&b=U`, certs.reg!, regCert(), ['-t', '40', '-e', OBJECTS]);
    expect(r.response, show(r)).to.equal('2.01');
    const reg = await app.store.registry.getByEndpoint('urn:x509:reg-1');
    expect(reg).to.deep.include({ security: 'x509', lifetime: 300, address: LOCAL });
    expect(reg!.identity!.equals(certs.reg!.der)).to.equal(true);
    const [cred] = await app.store.credentials.listForDevice('urn:x509:reg-1');
    expect(cred).to.deep.include({ id: reg!.credentialId, status: 'active', mode: 'x509' });
    // The credential records the certificate the server presents (the device's /0/x/5).
    expect(cred!.serverPublicKey!.equals(new X509Certificate(readFileSync(regCert())).raw)).to.equal(true);
  });

  it('a certificate without a credential for this server is refused in the handshake', async () => {
    const r = await coapClient(`coaps://${LOCAL}:${regPort}/rd?ep=urn:x509:reg-2&lt=300`, certs.regOther!, regCert(), ['-t', '40', '-e', OBJECTS]);
    expect(r.response, show(r)).to.equal(undefined);
    expect(await app.store.registry.getByEndpoint('urn:x509:reg-2')).to.equal(undefined);
  });

  it('a credential whose certificate names another endpoint is refused at Register with 4.03', async () => {
    // The store takes any certificate (the CLI refuses this one); the Register check is the last line.
    await app.store.credentials.addPending({ endpoint: 'urn:x509:reg-2', shortServerId: 7, serverUri: `coaps://${LOCAL}:${regPort}`, mode: 'x509', publicKey: certs.other!.der });
    const r = await coapClient(`coaps://${LOCAL}:${regPort}/rd?lt=300`, certs.other!, regCert(), ['-t', '40', '-e', OBJECTS]);
    expect(r.response, show(r)).to.equal('4.03');
    expect(await app.store.registry.getByEndpoint('urn:x509:reg-2')).to.equal(undefined);
  });

  it('openssl s_client verifies the registration server certificate against 127.0.0.1 (and fails against another CA file)', async () => {
    const args = (caFile: string): string[] => ['-cert', certs.reg!.certFile, '-key', certs.reg!.keyFile, '-CAfile', caFile, '-verify_ip', LOCAL, '-verify_return_error'];
    const ok = await sClient(regPort, args(regCert()), async (_w, waitFor, end) => {
      await waitFor('Verify return code: 0 (ok)');
      end();
    });
    expect(ok.stdout).to.include('Verify return code: 0 (ok)');
    const bad = await sClient(regPort, args(ca.certFile), async () => {});
    expect(bad.stdout + bad.stderr).to.match(/verify error|certificate verify failed/i);
    expect(otherCa.der.length).to.be.greaterThan(0);
  });
});

describe('e2e: a configured server certificate and key (registration.x509.certificate / privateKey)', function () {
  this.timeout(60_000);
  let dir: string;
  let ca: TestCert;
  let server: TestCert;
  let device: TestCert;

  before(() => {
    requireOpenssl();
    dir = tempDir('lwbs-e2e-x509-own-');
    ca = makeCa(dir, 'ca', 'own-certificate CA');
    server = issue(dir, 'server', 'ca', { cn: 'lwm2m.example.com', san: 'DNS:lwm2m.example.com' });
    device = issue(dir, 'device', 'ca', { cn: 'urn:x509:own-1' });
  });
  after(() => removeDir(dir));

  const config = (data: string, regPort: number, x509: Config['registration']['x509']): Config => ({
    dataDir: data,
    objectDirs: [],
    bootstrap: { coap: null, coaps: null, requestTimeoutSeconds: 2, sessionTimeoutSeconds: 10 },
    registration: {
      coap: null,
      coaps: { host: LOCAL, port: regPort },
      publicUri: { coap: `coap://${LOCAL}:5783`, coaps: `coaps://${LOCAL}:${regPort}` },
      requestTimeoutSeconds: 5,
      queueAwakeSeconds: 93,
      ...(x509 ? { x509 } : {}),
    },
    log: { level: 'error' },
    admin: { listen: null },
  });

  it('the configured key replaces the stored pair, the listener presents the configured chain, and a device registers', async () => {
    const data = join(dir, 'data');
    const regPort = await freePort();
    // A first start without X.509 config creates the stored key pair the configured one replaces.
    const first = await startApp(config(data, regPort, undefined), { env: { LWBS_SECRET_KEY: TEST_KEY_HEX } });
    const generated = (await first.store.serverKeys.get('registration'))!.publicKey;
    await first.close();
    expect(generated.equals(server.spki)).to.equal(false);

    const app = await startApp(config(data, regPort, { trustAnchors: [ca.certFile], certificate: server.certFile, privateKey: server.keyFile }), {
      env: { LWBS_SECRET_KEY: TEST_KEY_HEX },
    });
    try {
      expect((await app.store.serverKeys.get('registration'))!.publicKey.equals(server.spki)).to.equal(true);
      await app.store.profiles.put('none', JSON.stringify({ name: 'none', servers: [{ shortServerId: 1, handOff: true, security: { mode: 'nosec' } }] }));
      await app.store.devices.add({ endpoint: 'urn:x509:own-1', profile: 'none' });
      await app.store.credentials.addPending({ endpoint: 'urn:x509:own-1', shortServerId: 1, serverUri: `coaps://${LOCAL}:${regPort}`, mode: 'x509', publicKey: device.der, serverPublicKey: server.der });
      const run = await sClient(regPort, ['-cert', device.certFile, '-key', device.keyFile, '-CAfile', ca.certFile, '-verify_hostname', 'lwm2m.example.com', '-verify_return_error'], async (_w, waitFor, end) => {
        await waitFor('Verify return code: 0 (ok)');
        end();
      });
      expect(run.stdout).to.match(/subject=\/?CN ?= ?lwm2m\.example\.com/);
      const r = await runPeer('coap-client-gnutls', ['-m', 'post', '-B', '6', '-v', '7', '-c', device.certFile, '-j', device.keyFile, '-C', ca.certFile, '-t', '40', '-e', OBJECTS,
        `coaps://${LOCAL}:${regPort}/rd?ep=urn:x509:own-1&lt=300`], undefined, 20_000);
      expect(/^v:1 t:ACK c:2\.01 /m.test(r.stdout), show(r)).to.equal(true);
    } finally {
      await app.close();
    }
  });

  it('a trust anchor file that cannot be read stops the start with an error naming the field', async () => {
    const data = join(dir, 'data-bad');
    const regPort = await freePort();
    let err: unknown;
    try {
      await startApp(config(data, regPort, { trustAnchors: [join(dir, 'missing-ca.pem')], certificate: null, privateKey: null }), { env: { LWBS_SECRET_KEY: TEST_KEY_HEX } });
    } catch (e) {
      err = e;
    }
    expect((err as Error | undefined)?.message).to.match(/^registration\.x509\.trustAnchors\[0\]: cannot read .*missing-ca\.pem/);
    // The port was not left bound: a start with a good config takes it.
    const app = await startApp(config(data, regPort, undefined), { env: { LWBS_SECRET_KEY: TEST_KEY_HEX } });
    expect(app.addresses.get('registration.coaps')!.port).to.equal(regPort);
    await app.close();
  });
});
