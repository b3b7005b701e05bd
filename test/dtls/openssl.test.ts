/**
 * Interop with OpenSSL's DTLS client: `openssl s_client -dtls1_2 -psk … -psk_identity …` against a
 * DtlsEndpoint on 127.0.0.1, application data both ways (the endpoint echoes what it receives).
 * CI installs openssl; a missing binary is a test failure, not a skip.
 */
import { expect } from 'chai';
import { DtlsEndpoint } from '../../src/dtls/endpoint.js';
import type { DtlsDiagnostic } from '../../src/dtls/server.js';
import { LOCAL, requireOpenssl, sClient } from './openssl-support.js';

const KEY_HEX = '3c2f0a9be1d4475f8e2a61b0c7d93e15';
const IDENTITY = 'urn:imei:490154203237518';

describe('dtls interop: openssl s_client -dtls1_2 (PSK)', function () {
  this.timeout(30000);
  let ep: DtlsEndpoint | undefined;
  afterEach(async () => {
    await ep?.close();
    ep = undefined;
  });

  async function start(diags: DtlsDiagnostic[]): Promise<DtlsEndpoint> {
    ep = await DtlsEndpoint.create({
      host: LOCAL,
      port: 0,
      pskLookup: async (id) => (id.toString() === IDENTITY ? Buffer.from(KEY_HEX, 'hex') : undefined),
      onDiagnostic: (d) => diags.push(d),
    });
    ep.on('message', (msg, peer) => {
      const who = peer.identity?.type === 'psk' ? peer.identity.identity.toString() : '?';
      ep!.send(Buffer.from(`echo(${who}): ${msg.toString()}`), peer.port, peer.address);
    });
    return ep;
  }

  for (const [cipher, suiteName] of [
    ['PSK-AES128-CCM8', 'TLS_PSK_WITH_AES_128_CCM_8'],
    ['PSK-AES128-CBC-SHA256', 'TLS_PSK_WITH_AES_128_CBC_SHA256'],
    ['PSK-AES128-GCM-SHA256', 'TLS_PSK_WITH_AES_128_GCM_SHA256'],
    ['PSK-AES128-CCM', 'TLS_PSK_WITH_AES_128_CCM'],
  ] as const) {
    it(`${cipher}: handshake, data both ways, close_notify`, async () => {
      requireOpenssl();
      const diags: DtlsDiagnostic[] = [];
      const server = await start(diags);
      const run = await sClient(server.address().port, ['-psk', KEY_HEX, '-psk_identity', IDENTITY, '-cipher', cipher], async (write, waitFor, end) => {
        write('hello from openssl\n');
        await waitFor(`echo(${IDENTITY}): hello from openssl`);
        write('second line\n');
        await waitFor(`echo(${IDENTITY}): second line`);
        end(); // s_client sends close_notify on EOF
      });
      expect(run.stdout).to.include(`Cipher is ${cipher}`);
      expect(run.stdout).to.match(/Protocol\s*: DTLSv1\.2/);
      expect(run.stdout).to.match(/Extended master secret: yes/);
      const est = diags.find((d) => d.kind === 'established');
      expect(est && est.kind === 'established' && est.suite.name).to.equal(suiteName);
      expect(est && est.kind === 'established' && est.identity.toString()).to.equal(IDENTITY);
      // The close_notify may still be in flight when s_client exits.
      for (let i = 0; i < 50 && !diags.some((d) => d.kind === 'closed'); i++) await new Promise((r) => setTimeout(r, 20));
      expect(diags.find((d) => d.kind === 'closed')).to.deep.include({ reason: 'close_notify', wasEstablished: true });
      expect(server.stats()).to.deep.include({ sessions: 0, handshaking: 0, handshakesCompleted: 1 });
    });
  }

  it('an unknown identity gets alert 115 unknown_psk_identity', async () => {
    requireOpenssl();
    const diags: DtlsDiagnostic[] = [];
    const server = await start(diags);
    const run = await sClient(server.address().port, ['-psk', KEY_HEX, '-psk_identity', 'stranger', '-cipher', 'PSK-AES128-CCM8'], async () => {});
    expect(run.stdout + run.stderr).to.match(/unknown psk identity|alert number 115/i);
    expect(server.stats()).to.deep.include({ sessions: 0, handshaking: 0, handshakesFailed: 1 });
  });

  it('a client offering no common suite gets handshake_failure', async () => {
    requireOpenssl();
    const server = await start([]);
    const run = await sClient(server.address().port, ['-psk', KEY_HEX, '-psk_identity', IDENTITY, '-cipher', 'PSK-AES256-CCM8'], async () => {});
    expect(run.stdout + run.stderr).to.match(/handshake failure|alert number 40/i);
    expect(server.stats().handshakesStarted).to.equal(0);
  });
});
