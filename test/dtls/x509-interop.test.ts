/**
 * X.509 (and one RPK) interop with real DTLS clients against a DtlsEndpoint on 127.0.0.1: OpenSSL's
 * `s_client -dtls1_2 -cert -key` with both mandatory ECDHE_ECDSA suites, and GnuTLS's
 * `gnutls-cli --udp`. Certificates come from the openssl CLI in a temporary directory. CI
 * installs openssl and gnutls-bin; a missing binary is a test failure, not a skip.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import type { PeerIdentity } from '../../src/coap/endpoint.js';
import { DtlsEndpoint, type DtlsEndpointOptions } from '../../src/dtls/endpoint.js';
import type { DtlsDiagnostic } from '../../src/dtls/server.js';
import { certificateNames } from '../../src/dtls/x509.js';
import { buildTestPki, DEVICE_EP, LOCAL, requireOpenssl, runInteractive, sClient, type TestPki } from './openssl-support.js';

function requireGnutls(): void {
  const r = spawnSync('gnutls-cli', ['--version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    expect.fail('gnutls-cli is not installed or not runnable: install it (Debian: apt-get install gnutls-bin) - CI installs it for these interop tests');
  }
}

function describeIdentity(id: PeerIdentity | undefined): string {
  if (id?.type === 'x509') return `x509 CN=${certificateNames(id.certificate).cn ?? '?'}`;
  if (id?.type === 'rpk') return `rpk ${id.publicKey.length}`;
  return '?';
}

describe('dtls interop: X.509 with openssl s_client and gnutls-cli', function () {
  this.timeout(30000);
  let dir: string;
  let pki: TestPki;
  let ep: DtlsEndpoint | undefined;
  before(() => {
    requireOpenssl();
    dir = mkdtempSync(join(tmpdir(), 'lwbs-x509-interop-'));
    pki = buildTestPki(dir);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));
  afterEach(async () => {
    await ep?.close();
    ep = undefined;
  });

  async function start(diags: DtlsDiagnostic[], extra: Partial<DtlsEndpointOptions> = {}): Promise<DtlsEndpoint> {
    ep = await DtlsEndpoint.create({
      host: LOCAL,
      port: 0,
      serverKey: { publicKey: pki.server.spki, privateKey: pki.server.privateKey },
      serverCertificate: { chain: [pki.server.der] },
      trustAnchors: [pki.ca.der],
      x509Lookup: async (leaf) => leaf.equals(pki.device.der),
      onDiagnostic: (d) => diags.push(d),
      ...extra,
    });
    ep.on('message', (msg, peer) => {
      ep!.send(Buffer.from(`echo(${describeIdentity(peer.identity)}): ${msg.toString()}`), peer.port, peer.address);
    });
    return ep;
  }

  const certArgs = (name: 'device' | 'otherDevice' | 'expired'): string[] =>
    ['-cert', pki[name].certFile, '-key', pki[name].keyFile, '-CAfile', pki.ca.certFile];

  for (const [cipher, suiteName] of [
    ['ECDHE-ECDSA-AES128-CCM8', 'TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8'],
    ['ECDHE-ECDSA-AES128-SHA256', 'TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256'],
  ] as const) {
    it(`s_client ${cipher}: mutual X.509, the server chain verifies, data both ways`, async () => {
      const diags: DtlsDiagnostic[] = [];
      const server = await start(diags);
      const run = await sClient(server.address().port, [...certArgs('device'), '-cipher', cipher], async (write, waitFor, end) => {
        write('hello over x509\n');
        await waitFor(`echo(x509 CN=${DEVICE_EP}): hello over x509`);
        write('again\n');
        await waitFor(`echo(x509 CN=${DEVICE_EP}): again`);
        end();
      });
      expect(run.stdout).to.include(`Cipher is ${cipher}`);
      expect(run.stdout).to.include('Verify return code: 0 (ok)');
      expect(run.stdout).to.match(/Extended master secret: yes/);
      const est = diags.find((d) => d.kind === 'established');
      expect(est).to.deep.include({ identityType: 'x509', identity: pki.device.der });
      expect(est && est.kind === 'established' && est.suite.name).to.equal(suiteName);
    });
  }

  it('s_client with a certificate from another CA gets alert 48 unknown_ca', async () => {
    const diags: DtlsDiagnostic[] = [];
    const server = await start(diags);
    const run = await sClient(server.address().port, [...certArgs('otherDevice'), '-cipher', 'ECDHE-ECDSA-AES128-CCM8'], async () => {});
    expect(run.stdout + run.stderr).to.match(/unknown ca|alert number 48/i);
    expect(diags.find((d) => d.kind === 'closed')).to.deep.include({ reason: 'alert_sent', wasEstablished: false });
    expect(server.stats()).to.deep.include({ sessions: 0, handshaking: 0, handshakesFailed: 1 });
  });

  it('s_client with an expired certificate gets alert 45 certificate_expired', async () => {
    const server = await start([]);
    const run = await sClient(server.address().port, [...certArgs('expired'), '-cipher', 'ECDHE-ECDSA-AES128-SHA256'], async () => {});
    expect(run.stdout + run.stderr).to.match(/certificate expired|alert number 45/i);
    expect(server.stats()).to.deep.include({ sessions: 0, handshakesFailed: 1 });
  });

  it('s_client with a valid but unenrolled certificate gets alert 46 certificate_unknown', async () => {
    const server = await start([], { x509Lookup: async () => false });
    const run = await sClient(server.address().port, [...certArgs('device'), '-cipher', 'ECDHE-ECDSA-AES128-CCM8'], async () => {});
    expect(run.stdout + run.stderr).to.match(/certificate unknown|alert number 46/i);
    expect(server.stats()).to.deep.include({ sessions: 0, handshakesFailed: 1 });
  });

  for (const [mode, cipher] of [['x509', 'AES-128-CCM-8'], ['rpk', 'AES-128-CCM']] as const) {
    it(`gnutls-cli --udp, ${mode === 'x509' ? 'X.509 (server verified against the CA)' : 'raw public keys'}, ${cipher}: handshake, data both ways`, async () => {
      requireGnutls();
      const diags: DtlsDiagnostic[] = [];
      const rpkSeen: Buffer[] = [];
      const server = await start(diags, { rpkLookup: async (spki) => (rpkSeen.push(spki), spki.equals(pki.device.spki)) });
      const priority = `NORMAL:-VERS-ALL:+VERS-DTLS1.2:-CIPHER-ALL:+${cipher}:-KX-ALL:+ECDHE-ECDSA`;
      let args: string[];
      if (mode === 'x509') {
        args = ['--priority', priority, '--x509cafile', pki.ca.certFile, '--x509certfile', pki.device.certFile, '--x509keyfile', pki.device.keyFile];
      } else {
        const pub = join(dir, 'device.pub.pem');
        execFileSync('openssl', ['pkey', '-in', pki.device.keyFile, '-pubout', '-out', pub]);
        // The server's raw key cannot be checked against a CA: --insecure (the test checks it below instead).
        args = ['--priority', `${priority}:+CTYPE-CLI-RAWPK:+CTYPE-SRV-RAWPK:-CTYPE-CLI-X509:-CTYPE-SRV-X509`,
          '--rawpkkeyfile', pki.device.keyFile, '--rawpkfile', pub, '--insecure'];
      }
      const who = mode === 'x509' ? `x509 CN=${DEVICE_EP}` : `rpk ${pki.device.spki.length}`;
      const run = await runInteractive('gnutls-cli', ['--udp', '-p', String(server.address().port), LOCAL, ...args], async (write, waitFor, end) => {
        await waitFor('Handshake was completed');
        write('hello from gnutls\n');
        await waitFor(`echo(${who}): hello from gnutls`);
        end(); // gnutls-cli sends close_notify on EOF
      });
      expect(run.stdout).to.include(`-(AES-128-${cipher === 'AES-128-CCM-8' ? 'CCM-8' : 'CCM'})`);
      const est = diags.find((d) => d.kind === 'established');
      if (mode === 'x509') {
        expect(run.stdout).to.include('The certificate is trusted');
        expect(run.stdout).to.include('DTLS1.2-X.509');
        expect(est).to.deep.include({ identityType: 'x509', identity: pki.device.der });
      } else {
        expect(run.stdout).to.include('DTLS1.2-Raw Public Key');
        expect(est).to.deep.include({ identityType: 'rpk', identity: pki.device.spki });
        expect(rpkSeen).to.deep.equal([pki.device.spki]);
      }
    });
  }
});
