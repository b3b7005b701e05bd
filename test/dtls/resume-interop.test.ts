/**
 * Session resumption interop with real DTLS 1.2 clients against a DtlsEndpoint on 127.0.0.1:
 * `openssl s_client -dtls1_2 -sess_out f` then `-sess_in f` ("Reused") with a PSK suite and an
 * ECDHE_ECDSA suite (X.509 both ways), and `gnutls-cli --udp --resume` ("This is a resumed
 * session") with PSK and raw public keys. The resumed session must carry the cached identity to
 * the application (the echo names it). CI installs openssl and gnutls-bin; a missing binary is a
 * test failure, not a skip.
 */
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import type { PeerIdentity } from '../../src/coap/endpoint.js';
import { DtlsEndpoint, type DtlsEndpointOptions } from '../../src/dtls/endpoint.js';
import type { DtlsDiagnostic } from '../../src/dtls/server.js';
import { certificateNames } from '../../src/dtls/x509.js';
import { buildTestPki, DEVICE_EP, LOCAL, requireOpenssl, runInteractive, sClient, type TestPki } from './openssl-support.js';

const IDENTITY = 'urn:imei:490154203237518';
const KEY_HEX = '3c2f0a9be1d4475f8e2a61b0c7d93e15';

function requireGnutls(): void {
  const r = spawnSync('gnutls-cli', ['--version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) expect.fail('gnutls-cli is not installed or not runnable: install it (Debian: apt-get install gnutls-bin)');
}

function who(id: PeerIdentity | undefined): string {
  if (id?.type === 'psk') return id.identity.toString();
  if (id?.type === 'x509') return `x509 CN=${certificateNames(id.certificate).cn ?? '?'}`;
  return id?.type ?? '?';
}

const established = (diags: readonly DtlsDiagnostic[]): Extract<DtlsDiagnostic, { kind: 'established' }>[] =>
  diags.filter((d): d is Extract<DtlsDiagnostic, { kind: 'established' }> => d.kind === 'established');

describe('dtls interop: session resumption (openssl s_client -sess_out/-sess_in, gnutls-cli --resume)', function () {
  this.timeout(40_000);
  let dir: string;
  let pki: TestPki;
  let ep: DtlsEndpoint | undefined;
  const rpk = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const client = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });

  before(() => {
    requireOpenssl();
    dir = mkdtempSync(join(tmpdir(), 'lwbs-resume-interop-'));
    pki = buildTestPki(dir);
    writeFileSync(join(dir, 'rpk.key'), client.privateKey.export({ type: 'sec1', format: 'pem' }), { mode: 0o600 });
    writeFileSync(join(dir, 'rpk.pub'), client.publicKey.export({ type: 'spki', format: 'pem' }));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));
  afterEach(async () => {
    await ep?.close();
    ep = undefined;
  });

  async function start(diags: DtlsDiagnostic[], extra: Partial<DtlsEndpointOptions>): Promise<DtlsEndpoint> {
    ep = await DtlsEndpoint.create({ host: LOCAL, port: 0, onDiagnostic: (d) => diags.push(d), ...extra });
    ep.on('message', (msg, peer) => ep!.send(Buffer.from(`echo(${who(peer.identity)}): ${msg.toString()}`), peer.port, peer.address));
    return ep;
  }

  const psk: Partial<DtlsEndpointOptions> = { pskLookup: async (id) => (id.toString() === IDENTITY ? Buffer.from(KEY_HEX, 'hex') : undefined) };

  for (const [name, cipher, args, expectWho] of [
    ['PSK', 'PSK-AES128-CCM8', () => ['-psk', KEY_HEX, '-psk_identity', IDENTITY], IDENTITY],
    ['ECDHE-ECDSA X.509', 'ECDHE-ECDSA-AES128-CCM8', () => ['-cert', pki.device.certFile, '-key', pki.device.keyFile, '-CAfile', pki.ca.certFile], `x509 CN=${DEVICE_EP}`],
  ] as const) {
    it(`openssl s_client ${name} (${cipher}): -sess_out, then -sess_in reports the session reused`, async () => {
      const diags: DtlsDiagnostic[] = [];
      const server = await start(diags, name === 'PSK' ? psk : {
        serverKey: { publicKey: pki.server.spki, privateKey: pki.server.privateKey },
        serverCertificate: { chain: [pki.server.der] },
        trustAnchors: [pki.ca.der],
        x509Lookup: async (leaf) => leaf.equals(pki.device.der),
      });
      const sess = join(dir, `sess-${cipher}.pem`);
      const talk = (line: string) => async (write: (s: string) => void, waitFor: (t: string) => Promise<void>, end: () => void): Promise<void> => {
        write(`${line}\n`);
        await waitFor(`echo(${expectWho}): ${line}`);
        end();
      };
      const first = await sClient(server.address().port, [...args(), '-cipher', cipher, '-sess_out', sess], talk('first'));
      expect(first.stdout).to.match(/New, TLSv1\.2/);
      const second = await sClient(server.address().port, [...args(), '-cipher', cipher, '-sess_in', sess], talk('resumed'));
      expect(second.stdout, second.stdout + second.stderr).to.match(/Reused, TLSv1\.2/);
      const est = established(diags);
      expect(est.map((d) => d.resumed)).to.deep.equal([false, true]);
      expect(est[1]!.identity.equals(est[0]!.identity)).to.equal(true);
      expect(server.stats()).to.deep.include({ handshakesResumed: 1 });
    });
  }

  it('openssl s_client -sess_in after the PSK changed: a full handshake with the new key ("New")', async () => {
    let key = KEY_HEX;
    const diags: DtlsDiagnostic[] = [];
    const server = await start(diags, { pskLookup: async (id) => (id.toString() === IDENTITY ? Buffer.from(key, 'hex') : undefined) });
    const sess = join(dir, 'sess-revoked.pem');
    const talk = async (write: (s: string) => void, waitFor: (t: string) => Promise<void>, end: () => void): Promise<void> => {
      write('x\n');
      await waitFor(`echo(${IDENTITY}): x`);
      end();
    };
    await sClient(server.address().port, ['-psk', KEY_HEX, '-psk_identity', IDENTITY, '-cipher', 'PSK-AES128-CCM8', '-sess_out', sess], talk);
    key = 'aa'.repeat(16);
    const second = await sClient(server.address().port, ['-psk', key, '-psk_identity', IDENTITY, '-cipher', 'PSK-AES128-CCM8', '-sess_in', sess], talk);
    expect(second.stdout).to.match(/New, TLSv1\.2/);
    expect(diags.find((d) => d.kind === 'resumption_refused')).to.not.equal(undefined);
    expect(server.stats()).to.deep.include({ handshakesResumed: 0, handshakesCompleted: 2 });
  });

  for (const mode of ['PSK', 'RPK'] as const) {
    it(`gnutls-cli --udp --resume (${mode}): "This is a resumed session", the identity carried over`, async () => {
      requireGnutls();
      const diags: DtlsDiagnostic[] = [];
      const server = await start(diags, mode === 'PSK' ? psk : {
        serverKey: { publicKey: rpk.publicKey.export({ type: 'spki', format: 'der' }), privateKey: rpk.privateKey.export({ type: 'pkcs8', format: 'der' }) },
        rpkLookup: async (spki) => spki.equals(client.publicKey.export({ type: 'spki', format: 'der' })),
      });
      const base = 'NORMAL:-VERS-ALL:+VERS-DTLS1.2';
      const args = mode === 'PSK'
        ? ['--pskusername', IDENTITY, '--pskkey', KEY_HEX, '--priority', `${base}:+PSK`]
        : ['--insecure', '--rawpkkeyfile', join(dir, 'rpk.key'), '--rawpkfile', join(dir, 'rpk.pub'),
          '--priority', `${base}:-KX-ALL:+ECDHE-ECDSA:+CTYPE-CLI-RAWPK:+CTYPE-SRV-RAWPK`];
      const expectWho = mode === 'PSK' ? IDENTITY : 'rpk';
      const run = await runInteractive('gnutls-cli', ['--udp', '-p', String(server.address().port), LOCAL, '--resume', ...args], async (write, waitFor, end) => {
        await waitFor('This is a resumed session');
        write('after resumption\n');
        await waitFor(`echo(${expectWho}): after resumption`);
        end();
      }, 15_000);
      expect(run.stdout).to.include('This is a resumed session');
      const est = established(diags);
      expect(est.map((d) => d.resumed)).to.deep.equal([false, true]);
      expect(est[1]!.identityType).to.equal(mode === 'PSK' ? 'psk' : 'rpk');
      expect(est[1]!.identity.equals(est[0]!.identity)).to.equal(true);
    });
  }
});
