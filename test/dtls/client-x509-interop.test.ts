/**
 * Interop: DtlsClientEndpoint with X.509 certificates against `openssl s_server -dtls1_2` (a test
 * PKI from the openssl CLI): both ECDHE_ECDSA suites with our certificate verified by OpenSSL
 * (-Verify, -verify_return_error) and OpenSSL's verified by us (trust anchor and server name),
 * data both ways; OpenSSL refusing our certificate (its CA file lacks our CA) reaches us as a
 * fatal alert; our bad_certificate for an unexpected server certificate reaches OpenSSL.
 * CI installs openssl; a missing binary is a test failure, not a skip.
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DtlsClientEndpoint, DtlsHandshakeError, type DtlsClientDiagnostic, type DtlsClientX509 } from '../../src/dtls/client.js';
import { AlertDescription } from '../../src/dtls/constants.js';
import { TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256, TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8, type CipherSuite } from '../../src/dtls/suites.js';
import { freePort, runPeer, type PeerControl, type PeerRun } from '../interop/support.js';
import { buildTestPki, DEVICE_EP, requireOpenssl, type TestPki } from './openssl-support.js';

const LOCAL = '127.0.0.1';
const OPENSSL_CIPHERS = 'ECDHE-ECDSA-AES128-CCM8:ECDHE-ECDSA-AES128-SHA256';

describe('interop: DtlsClientEndpoint with X.509 against openssl s_server -dtls1_2', function () {
  this.timeout(30000);
  let dir: string;
  let pki: TestPki;
  before(() => {
    requireOpenssl();
    dir = mkdtempSync(join(tmpdir(), 'lwbs-client-x509-interop-'));
    pki = buildTestPki(dir);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const device = (): DtlsClientX509 => ({
    certificate: pki.device.der, privateKey: pki.device.privateKey.export({ format: 'der', type: 'pkcs8' }), trustAnchors: [pki.ca.der], serverName: LOCAL,
  });

  /** s_server on a free port (one connection), verifying client certificates against `caFile`; `script` runs once it listens. */
  async function sServer(caFile: string, script: (c: PeerControl, port: number) => Promise<void>): Promise<PeerRun> {
    const port = await freePort();
    return runPeer('openssl', [
      's_server', '-dtls1_2', '-accept', `${LOCAL}:${port}`, '-cert', pki.server.certFile, '-key', pki.server.keyFile,
      '-CAfile', caFile, '-Verify', '1', '-verify_return_error', '-cipher', OPENSSL_CIPHERS, '-naccept', '1',
    ], async (c) => {
      await c.waitFor('ACCEPT');
      await script(c, port);
    }, 20_000);
  }

  for (const suite of [TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8, TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256] as CipherSuite[]) {
    it(`${suite.name}: both certificates verified, data both ways, close_notify ends it`, async () => {
      const diags: DtlsClientDiagnostic[] = [];
      const received: string[] = [];
      let suiteSeen: string | undefined;
      let serverCert: Buffer | undefined;
      const run = await sServer(pki.ca.certFile, async (c, port) => {
        const cep = await DtlsClientEndpoint.create({ host: LOCAL, x509: device(), cipherSuites: [suite.id], handshakeTimeoutMs: 8000, onDiagnostic: (d) => diags.push(d) });
        try {
          const gotPong = new Promise<void>((resolve) => cep.on('message', (m) => {
            received.push(m.toString());
            resolve();
          }));
          const sent = await new Promise<Error | null>((resolve) => cep.send(Buffer.from('hello from lwbs\n'), port, LOCAL, resolve));
          expect(sent).to.equal(null);
          await c.waitFor('hello from lwbs');
          c.write('pong\n');
          await gotPong;
          suiteSeen = cep.sessionSuite(LOCAL, port)?.name;
          const id = cep.sessionPeerIdentity(LOCAL, port);
          serverCert = id?.type === 'x509' ? id.certificate : undefined;
        } finally {
          await cep.close();
        }
      });
      expect(received).to.deep.equal(['pong\n']);
      expect(suiteSeen).to.equal(suite.name);
      expect(serverCert?.equals(pki.server.der)).to.equal(true);
      // OpenSSL verified our chain (depth 0 is our leaf) and saw our close_notify.
      expect(run.stdout + run.stderr).to.include(`depth=0 CN = ${DEVICE_EP}`);
      expect(run.stdout).to.include('Client certificate');
      expect(run.stdout + run.stderr).to.match(/CONNECTION CLOSED|shutting down SSL/);
      expect(diags.map((d) => d.kind)).to.include('established');
    });
  }

  it('OpenSSL refuses our certificate (not from its CA): its fatal alert reaches us as DtlsHandshakeError', async () => {
    let err: Error | null = null;
    const run = await sServer(pki.otherCa.certFile, async (_c, port) => {
      const cep = await DtlsClientEndpoint.create({ host: LOCAL, x509: device(), handshakeTimeoutMs: 8000 });
      try {
        err = await new Promise<Error | null>((resolve) => cep.send(Buffer.from('never\n'), port, LOCAL, resolve));
      } finally {
        await cep.close();
      }
    });
    expect(err).to.be.instanceOf(DtlsHandshakeError);
    const alert = (err as unknown as DtlsHandshakeError).alert;
    expect(alert?.by).to.equal('server');
    expect(alert?.description).to.equal(AlertDescription.unknownCa);
    expect(run.stdout + run.stderr).to.match(/unable to get local issuer certificate|verify error/i);
  });

  it('a server certificate other than the pinned one: OpenSSL receives our bad_certificate alert (42)', async () => {
    let err: Error | null = null;
    const run = await sServer(pki.ca.certFile, async (_c, port) => {
      const cep = await DtlsClientEndpoint.create({ host: LOCAL, x509: { ...device(), trustAnchors: undefined, serverCertificate: pki.otherDevice.der }, handshakeTimeoutMs: 8000 });
      try {
        err = await new Promise<Error | null>((resolve) => cep.send(Buffer.from('never\n'), port, LOCAL, resolve));
      } finally {
        await cep.close();
      }
    });
    expect((err as unknown as DtlsHandshakeError | null)?.alert).to.deep.equal({ description: AlertDescription.badCertificate, by: 'client' });
    expect(run.stdout + run.stderr).to.match(/alert bad certificate|alert number 42/i);
  });
});
