/**
 * Interop with GnuTLS's client (Debian gnutls-bin): `gnutls-cli --udp` against a DtlsEndpoint on
 * 127.0.0.1 that echoes application data. The priority string forces DTLS 1.2 and one suite at a
 * time: every PSK suite lwbs implements, and every ECDHE_ECDSA suite with raw public keys on both
 * sides (RFC 7250: --rawpkkeyfile / --rawpkfile, +CTYPE-CLI-RAWPK:+CTYPE-SRV-RAWPK). Checks the
 * handshake (suite, extended master secret), data both ways, close_notify on EOF, the server's
 * raw public key as the client received it, and refusals of unknown credentials.
 */
import { expect } from 'chai';
import { createPublicKey } from 'node:crypto';
import type { DtlsDiagnostic } from '../../src/dtls/server.js';
import { removeDir, tempDir } from '../store/support.js';
import { closedDiagnostic, LOCAL, peerKey, requireBinary, runPeer, serverKeyPair, startEchoServer, type EchoServer, type PeerKey } from './support.js';

const IDENTITY = 'urn:imei:490154203237518';
const KEY_HEX = '5ac0ffee0123456789abcdef0badc0de';
const BASE = 'NORMAL:-VERS-ALL:+VERS-DTLS1.2:-CIPHER-ALL:-MAC-ALL:-KX-ALL';
/** [gnutls cipher, gnutls MAC, IANA suite name suffix] */
const CIPHERS = [
  ['AES-128-CCM-8', 'AEAD', 'AES_128_CCM_8'],
  ['AES-128-CBC', 'SHA256', 'AES_128_CBC_SHA256'],
  ['AES-128-GCM', 'AEAD', 'AES_128_GCM_SHA256'],
  ['AES-128-CCM', 'AEAD', 'AES_128_CCM'],
] as const;

function gnutlsCli(port: number, args: string[], script: Parameters<typeof runPeer>[2]) {
  return runPeer('gnutls-cli', ['--udp', '--port', String(port), LOCAL, ...args], script, 15_000);
}

function established(diags: readonly DtlsDiagnostic[]): Extract<DtlsDiagnostic, { kind: 'established' }> {
  const est = diags.find((d) => d.kind === 'established');
  expect(est, JSON.stringify(diags.map((d) => d.kind))).to.not.equal(undefined);
  return est as Extract<DtlsDiagnostic, { kind: 'established' }>;
}

describe('interop: gnutls-cli --udp (DTLS 1.2) against a DtlsEndpoint', function () {
  this.timeout(40_000);
  let dir: string;
  let server: EchoServer | undefined;
  let clientKey: PeerKey;
  const serverKey = serverKeyPair();

  before(() => {
    dir = tempDir('lwbs-interop-gnutls-');
    clientKey = peerKey(dir, 'client');
  });
  afterEach(async () => {
    await server?.endpoint.close();
    server = undefined;
  });
  after(() => removeDir(dir));

  for (const [cipher, mac, suite] of CIPHERS) {
    it(`PSK ${cipher}${mac === 'AEAD' ? '' : `-${mac}`}: handshake, data both ways, close_notify`, async () => {
      requireBinary('gnutls-cli', 'gnutls-bin');
      server = await startEchoServer({ psk: { identity: IDENTITY, key: Buffer.from(KEY_HEX, 'hex') } });
      const run = await gnutlsCli(server.port, ['--pskusername', IDENTITY, '--pskkey', KEY_HEX, '--priority', `${BASE}:+PSK:+${cipher}:+${mac}`], async (c) => {
        c.write('hello from gnutls\n');
        await c.waitFor(`echo(${IDENTITY}): hello from gnutls`);
        c.write('second line\n');
        await c.waitFor(`echo(${IDENTITY}): second line`);
        c.end();
      });
      expect(run.stdout).to.include('Handshake was completed');
      expect(run.stdout).to.match(/extended master secret/);
      const est = established(server.diagnostics);
      expect(est.suite.name).to.equal(`TLS_PSK_WITH_${suite}`);
      expect(est.identityType).to.equal('psk');
      expect(est.identity.toString()).to.equal(IDENTITY);
      expect(est.extendedMasterSecret).to.equal(true);
      expect(await closedDiagnostic(server.diagnostics)).to.deep.include({ reason: 'close_notify', wasEstablished: true });
    });
  }

  for (const [cipher, mac, suite] of CIPHERS) {
    it(`RPK ECDHE-ECDSA ${cipher}${mac === 'AEAD' ? '' : `-${mac}`}: handshake with raw public keys both ways, data both ways`, async () => {
      requireBinary('gnutls-cli', 'gnutls-bin');
      server = await startEchoServer({ serverKey, rpkAllowed: [clientKey.spki] });
      const run = await gnutlsCli(server.port, [
        // --insecure: a raw public key has no chain to verify; the test compares the key itself below.
        '--insecure', '--print-cert', '--rawpkkeyfile', clientKey.privatePemFile, '--rawpkfile', clientKey.publicPemFile,
        '--priority', `${BASE}:+ECDHE-ECDSA:+${cipher}:+${mac}:-GROUP-ALL:+GROUP-SECP256R1:+CTYPE-CLI-RAWPK:+CTYPE-SRV-RAWPK`,
      ], async (c) => {
        c.write('hello with raw keys\n');
        await c.waitFor('echo(rpk): hello with raw keys');
        c.end();
      });
      expect(run.stdout).to.include('Certificate type: Raw Public Key');
      expect(run.stdout).to.include('Handshake was completed');
      // The server's raw public key, as gnutls received it, is the configured one.
      const pem = /-----BEGIN PUBLIC KEY-----[\s\S]+?-----END PUBLIC KEY-----/.exec(run.stdout)?.[0];
      expect(pem, run.stdout).to.be.a('string');
      expect(createPublicKey(pem!).export({ type: 'spki', format: 'der' }).equals(serverKey.publicKey)).to.equal(true);
      const est = established(server.diagnostics);
      expect(est.suite.name).to.equal(`TLS_ECDHE_ECDSA_WITH_${suite}`);
      expect(est.identityType).to.equal('rpk');
      expect(est.identity.equals(clientKey.spki)).to.equal(true);
      expect(est.extendedMasterSecret).to.equal(true);
      expect(await closedDiagnostic(server.diagnostics)).to.deep.include({ reason: 'close_notify', wasEstablished: true });
    });
  }

  it('PSK with an unknown identity: the handshake fails, no session', async () => {
    requireBinary('gnutls-cli', 'gnutls-bin');
    server = await startEchoServer({ psk: { identity: IDENTITY, key: Buffer.from(KEY_HEX, 'hex') } });
    const run = await gnutlsCli(server.port, ['--pskusername', 'stranger', '--pskkey', KEY_HEX, '--priority', `${BASE}:+PSK:+AES-128-CCM-8:+AEAD`], async (c) => c.end());
    expect(run.stdout).to.not.include('Handshake was completed');
    expect(run.stdout + run.stderr).to.match(/unknown psk identity|alert/i);
    expect(server.endpoint.stats()).to.deep.include({ sessions: 0, handshakesCompleted: 0 });
    expect(server.endpoint.stats().handshakesFailed).to.equal(1);
  });

  it('RPK with a key the server does not know: the handshake fails, no session', async () => {
    requireBinary('gnutls-cli', 'gnutls-bin');
    server = await startEchoServer({ serverKey, rpkAllowed: [clientKey.spki] });
    const stranger = peerKey(dir, 'stranger');
    const run = await gnutlsCli(server.port, [
      '--insecure', '--rawpkkeyfile', stranger.privatePemFile, '--rawpkfile', stranger.publicPemFile,
      '--priority', `${BASE}:+ECDHE-ECDSA:+AES-128-CCM-8:+AEAD:+CTYPE-CLI-RAWPK:+CTYPE-SRV-RAWPK`,
    ], async (c) => c.end());
    expect(run.stdout).to.not.include('Handshake was completed');
    expect(run.stdout + run.stderr).to.match(/certificate|alert/i);
    expect(server.endpoint.stats()).to.deep.include({ sessions: 0, handshakesCompleted: 0 });
  });
});
