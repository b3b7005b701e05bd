/**
 * Record size limits with real DTLS 1.2 clients, checked on the wire: every datagram the server
 * sends is captured (a DatagramTransport around the UDP socket) and its records measured.
 * `openssl s_client -maxfraglen 512` (RFC 6066) with an X.509 chain big enough to need fragmenting,
 * and `gnutls-cli --recordsize 512` (gnutls sends record_size_limit and max_fragment_length; RFC
 * 8449 §5: the former wins). CI installs openssl and gnutls-bin; a missing binary is a test
 * failure, not a skip.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { CoapNode, CoapRequestError } from '../../src/coap/coap-node.js';
import { UdpEndpoint } from '../../src/coap/udp-endpoint.js';
import type { PeerInfo, SendCallback } from '../../src/coap/endpoint.js';
import { ContentType } from '../../src/dtls/constants.js';
import { DtlsEndpoint, type DatagramTransport, type DtlsEndpointOptions } from '../../src/dtls/endpoint.js';
import { parseHandshakeFragments } from '../../src/dtls/handshake.js';
import { parseDatagram } from '../../src/dtls/record.js';
import type { DtlsDiagnostic } from '../../src/dtls/server.js';
import { buildTestPki, LOCAL, requireOpenssl, runInteractive, sClient, type TestPki } from './openssl-support.js';

const IDENTITY = 'urn:imei:490154203237518';
const KEY_HEX = '3c2f0a9be1d4475f8e2a61b0c7d93e15';
/** AES-128-CCM_8 record expansion: nonce_explicit 8 + tag 8. */
const CCM8_OVERHEAD = 16;

function requireGnutls(): void {
  const r = spawnSync('gnutls-cli', ['--version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) expect.fail('gnutls-cli is not installed or not runnable: install it (Debian: apt-get install gnutls-bin)');
}

/** A UDP socket whose outgoing datagrams are kept in `sent`. */
async function capturingTransport(): Promise<{ transport: DatagramTransport; sent: Buffer[] }> {
  const udp = await UdpEndpoint.create({ host: LOCAL, port: 0 });
  const sent: Buffer[] = [];
  const transport: DatagramTransport = {
    type: udp.type,
    on: ((event: 'message' | 'error', listener: ((msg: Buffer, peer: PeerInfo) => void) & ((err: Error) => void)) => udp.on(event, listener)) as DatagramTransport['on'],
    send: (msg: Uint8Array, port: number, address: string, callback?: SendCallback) => {
      sent.push(Buffer.from(msg));
      udp.send(msg, port, address, callback);
    },
    address: () => udp.address(),
    close: () => udp.close(),
  };
  return { transport, sent };
}

/** Plaintext size of every record in `datagrams` (epoch ≥ 1: the CCM_8 ciphertext minus its expansion). */
function recordPlaintextSizes(datagrams: readonly Buffer[]): number[] {
  return datagrams.flatMap((d) => parseDatagram(d).records).map((r) => (r.epoch === 0 ? r.fragment.length : r.fragment.length - CCM8_OVERHEAD));
}

describe('dtls interop: record size limits on the wire (openssl -maxfraglen, gnutls-cli --recordsize)', function () {
  this.timeout(40_000);
  let dir: string;
  let pki: TestPki;
  let ep: DtlsEndpoint | undefined;

  before(() => {
    requireOpenssl();
    dir = mkdtempSync(join(tmpdir(), 'lwbs-recsize-interop-'));
    pki = buildTestPki(dir);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));
  afterEach(async () => {
    await ep?.close();
    ep = undefined;
  });

  async function start(diags: DtlsDiagnostic[], opts: DtlsEndpointOptions): Promise<{ server: DtlsEndpoint; sent: Buffer[] }> {
    const { transport, sent } = await capturingTransport();
    ep = new DtlsEndpoint(transport, { ...opts, onDiagnostic: (d) => diags.push(d) });
    ep.on('message', (msg, peer) => {
      const limit = ep!.server.recordLimit(peer.address, peer.port);
      ep!.send(Buffer.from(`echo(limit=${limit}): ${msg.toString()}`), peer.port, peer.address, () => {});
    });
    return { server: ep, sent };
  }

  it('openssl -maxfraglen 512, ECDHE-ECDSA with a 2-certificate chain: every server record ≤ 512 bytes of plaintext, the Certificate fragmented', async () => {
    const diags: DtlsDiagnostic[] = [];
    const { server, sent } = await start(diags, {
      serverKey: { publicKey: pki.server.spki, privateKey: pki.server.privateKey },
      serverCertificate: { chain: [pki.server.der, pki.ca.der] },
      trustAnchors: [pki.ca.der],
      x509Lookup: async (leaf) => leaf.equals(pki.device.der),
    });
    const chainBytes = pki.server.der.length + pki.ca.der.length;
    expect(chainBytes).to.be.greaterThan(512); // the Certificate message cannot fit one record
    const long = 'x'.repeat(400);
    const run = await sClient(server.address().port, [
      '-cert', pki.device.certFile, '-key', pki.device.keyFile, '-CAfile', pki.ca.certFile, '-cipher', 'ECDHE-ECDSA-AES128-CCM8', '-maxfraglen', '512',
    ], async (write, waitFor, end) => {
      write(`${long}\n`);
      await waitFor(`echo(limit=512): ${long}`);
      end();
    });
    expect(run.stdout).to.match(/Verify return code: 0/);
    const sizes = recordPlaintextSizes(sent);
    expect(sizes.length).to.be.greaterThan(5);
    expect(Math.max(...sizes)).to.be.at.most(512);
    expect(Math.max(...sizes)).to.be.greaterThan(400); // the echo went as one record close to the limit
    const certFragments = sent.flatMap((d) => parseDatagram(d).records)
      .filter((r) => r.epoch === 0 && r.type === ContentType.handshake)
      .flatMap((r) => parseHandshakeFragments(r.fragment) ?? []).filter((f) => f.msgType === 11);
    expect(certFragments.length).to.be.greaterThan(1);
    expect(certFragments.every((f) => f.body.length < f.length)).to.equal(true);
  });

  it('openssl -maxfraglen 512 with PSK: an answer above the limit is not sent (record_too_large), the session goes on', async () => {
    const diags: DtlsDiagnostic[] = [];
    const { server, sent } = await start(diags, { pskLookup: async (id) => (id.toString() === IDENTITY ? Buffer.from(KEY_HEX, 'hex') : undefined) });
    const run = await sClient(server.address().port, ['-psk', KEY_HEX, '-psk_identity', IDENTITY, '-cipher', 'PSK-AES128-CCM8', '-maxfraglen', '512'], async (write, waitFor, end) => {
      write(`${'y'.repeat(500)}\n`); // its echo is over 512 bytes: dropped
      // s_client sends what it read from stdin at once: wait for the refusal before the next line.
      for (let i = 0; i < 200 && !diags.some((d) => d.kind === 'record_too_large'); i++) await new Promise((r) => setTimeout(r, 20));
      write('short\n');
      await waitFor('echo(limit=512): short');
      end();
    });
    expect(run.stdout).to.not.include('y'.repeat(500));
    expect(diags.find((d) => d.kind === 'record_too_large')).to.deep.include({ limit: 512 });
    expect(Math.max(...recordPlaintextSizes(sent))).to.be.at.most(512);
  });

  it('openssl -maxfraglen 512: a CoAP request with a 700-byte payload to that client goes out in 256-byte Block1 blocks that fit', async () => {
    const diags: DtlsDiagnostic[] = [];
    const { transport, sent } = await capturingTransport();
    ep = new DtlsEndpoint(transport, { pskLookup: async (id) => (id.toString() === IDENTITY ? Buffer.from(KEY_HEX, 'hex') : undefined), onDiagnostic: (d) => diags.push(d) });
    const node = new CoapNode(ep, { handler: (_req, res) => res.send('4.04'), closeEndpoint: false, transmission: { ackTimeoutMs: 500, ackRandomFactor: 1, maxRetransmit: 1 } });
    const payload = 'Q'.repeat(700);
    let outcome: unknown;
    let stdout = '';
    try {
      ({ stdout } = await sClient(ep.address().port, ['-psk', KEY_HEX, '-psk_identity', IDENTITY, '-cipher', 'PSK-AES128-CCM8', '-maxfraglen', '512'], async (_write, waitFor, end) => {
        for (let i = 0; i < 200 && !diags.some((d) => d.kind === 'established'); i++) await new Promise((r) => setTimeout(r, 20));
        const est = diags.find((d) => d.kind === 'established');
        if (est === undefined) throw new Error('no DTLS session');
        // s_client prints what it receives and answers nothing.
        outcome = node.request(est.peer, { method: 'PUT', path: '/0/1', payload, timeoutMs: 2000 }).catch((e: unknown) => e);
        await waitFor('Q'.repeat(256));
        end();
      }));
      outcome = await outcome;
    } finally {
      await node.close();
    }
    // The first block reached the client whole, and no more than one block's worth in one message.
    expect(stdout).to.include('Q'.repeat(256)).and.not.include('Q'.repeat(257));
    // The request then ends because the client never answers (or left): never for the record size.
    expect(outcome).to.be.instanceOf(CoapRequestError);
    expect(['timeout', 'send_failed']).to.include((outcome as CoapRequestError).reason);
    expect(diags.some((d) => d.kind === 'record_too_large')).to.equal(false);
    const appRecords = sent.flatMap((d) => parseDatagram(d).records).filter((r) => r.type === ContentType.applicationData);
    expect(appRecords.length).to.be.greaterThan(0);
    // Each carries one block: 256 bytes of payload plus the CoAP header, token and options.
    for (const r of appRecords) expect(r.fragment.length - CCM8_OVERHEAD).to.be.within(257, 512);
  });

  it('gnutls-cli --recordsize 512 (record_size_limit): server records ≤ 512 bytes of plaintext', async () => {
    requireGnutls();
    const diags: DtlsDiagnostic[] = [];
    const { server, sent } = await start(diags, { pskLookup: async (id) => (id.toString() === IDENTITY ? Buffer.from(KEY_HEX, 'hex') : undefined) });
    const long = 'z'.repeat(480);
    const run = await runInteractive('gnutls-cli', [
      '--udp', '-p', String(server.address().port), LOCAL, '--recordsize', '512', '--pskusername', IDENTITY, '--pskkey', KEY_HEX,
      '--priority', 'NORMAL:-VERS-ALL:+VERS-DTLS1.2:-CIPHER-ALL:+AES-128-CCM-8:-MAC-ALL:+AEAD:-KX-ALL:+PSK',
    ], async (write, waitFor, end) => {
      write(`${long}\n`);
      await waitFor(`echo(limit=512): ${long}`);
      end();
    }, 15_000);
    expect(run.stdout).to.include('Handshake was completed');
    const sizes = recordPlaintextSizes(sent);
    expect(Math.max(...sizes)).to.be.at.most(512);
    expect(Math.max(...sizes)).to.be.greaterThan(480);
  });
});
