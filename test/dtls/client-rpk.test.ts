/**
 * DtlsClientEndpoint with ECDHE_ECDSA and raw public keys against our DtlsEndpoint (serverKey +
 * rpkLookup): CoAP both ways with each side seeing the other's proven key, both suites, the
 * expected server key (LwM2M /0/x/4) enforced, an unenrolled client key refused by the server
 * (certificate_unknown surfaces as DtlsHandshakeError), bad options refused without key bytes.
 */
import { expect } from 'chai';
import { generateKeyPairSync } from 'node:crypto';
import type { CoapNode } from '../../src/coap/coap-node.js';
import type { PeerInfo } from '../../src/coap/endpoint.js';
import { publicKeyOfPrivate } from '../../src/dtls/client-rpk.js';
import { DtlsClientEndpoint, DtlsHandshakeError, type DtlsClientDiagnostic, type DtlsClientOptions } from '../../src/dtls/client.js';
import { AlertDescription } from '../../src/dtls/constants.js';
import { DtlsEndpoint } from '../../src/dtls/endpoint.js';
import type { DtlsDiagnostic } from '../../src/dtls/server.js';
import {
  TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256, TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8, TLS_PSK_WITH_AES_128_CCM_8,
} from '../../src/dtls/suites.js';
import { answeringNode, sendOnce } from './coap-support.js';

const LOCAL = '127.0.0.1';
const FAST = { initialMs: 100, maxMs: 400 };
const PSK = Buffer.from('00112233445566778899aabbccddeeff', 'hex');

interface Pair {
  readonly publicKey: Buffer;
  readonly privateKey: Buffer;
}

function pair(): Pair {
  const kp = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return {
    publicKey: kp.publicKey.export({ format: 'der', type: 'spki' }),
    privateKey: kp.privateKey.export({ format: 'der', type: 'pkcs8' }),
  };
}

describe('dtls/DtlsClientEndpoint with raw public keys (ECDHE_ECDSA) against DtlsEndpoint', function () {
  this.timeout(15000);
  const serverPair = pair();
  const device = pair();
  const stranger = pair();
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const f of cleanup.splice(0).reverse()) await f();
  });

  async function server(diags: DtlsDiagnostic[] = [], enrolled: Buffer[] = [device.publicKey]): Promise<DtlsEndpoint> {
    const ep = await DtlsEndpoint.create({
      host: LOCAL,
      port: 0,
      serverKey: serverPair,
      rpkLookup: async (spki) => enrolled.some((k) => k.equals(spki)),
      pskLookup: async (id) => (id.toString() === 'dev-psk' ? PSK : undefined),
      retransmit: FAST,
      onDiagnostic: (d) => diags.push(d),
    });
    cleanup.push(() => ep.close());
    return ep;
  }

  async function client(opts: Partial<DtlsClientOptions> = {}, diags: DtlsClientDiagnostic[] = []): Promise<DtlsClientEndpoint> {
    const ep = await DtlsClientEndpoint.create({
      host: LOCAL,
      rpk: { publicKey: device.publicKey, privateKey: device.privateKey },
      retransmit: FAST,
      handshakeTimeoutMs: 5000,
      onDiagnostic: (d) => diags.push(d),
      ...opts,
    });
    cleanup.push(() => ep.close());
    return ep;
  }

  const node = (ep: DtlsEndpoint | DtlsClientEndpoint, handler: Parameters<typeof answeringNode>[1]): CoapNode => answeringNode(ep, handler, cleanup);


  it('CCM_8 by default: CoAP both ways, the server sees our key, we see the server key', async () => {
    const sdiags: DtlsDiagnostic[] = [];
    const sep = await server(sdiags);
    const seen: PeerInfo[] = [];
    const serverNode = node(sep, (req, peer) => {
      seen.push(peer);
      return ['2.04', `hello ${req.path}`];
    });
    const cdiags: DtlsClientDiagnostic[] = [];
    const cep = await client({}, cdiags);
    expect(cep.publicKey!.equals(device.publicKey)).to.equal(true);
    expect(cep.identity).to.equal(undefined);
    const fromServer: PeerInfo[] = [];
    const clientNode = node(cep, (req, peer) => {
      fromServer.push(peer);
      return ['2.05', `device ${req.path}`];
    });
    const port = sep.address().port;
    const res = await clientNode.request({ address: LOCAL, port }, { method: 'POST', path: '/rd', query: ['ep=dev-rpk'], timeoutMs: 5000 });
    expect(res.code).to.equal('2.04');
    expect(res.payload.toString()).to.equal('hello /rd');
    expect(seen).to.have.length(1);
    expect(seen[0]!.identity).to.deep.equal({ type: 'rpk', publicKey: device.publicKey });
    expect(cep.sessionSuite(LOCAL, port)?.id).to.equal(TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8.id);
    expect(cep.sessionPeerIdentity(LOCAL, port)).to.deep.equal({ type: 'rpk', publicKey: serverPair.publicKey });
    const est = cdiags.find((d) => d.kind === 'established');
    expect(est?.kind === 'established' && est.extendedMasterSecret).to.equal(true);
    const sest = sdiags.find((d) => d.kind === 'established');
    expect(sest?.kind === 'established' && sest.identityType).to.equal('rpk');

    const back = await serverNode.request(seen[0]!, { method: 'GET', path: [3, 0], timeoutMs: 5000 });
    expect(back.payload.toString()).to.equal('device /3/0');
    expect(fromServer[0]!.identity).to.deep.equal({ type: 'rpk', publicKey: serverPair.publicKey });
  });

  it('CBC_SHA256, with the expected server key given (as /0/x/4 holds it)', async () => {
    const sep = await server();
    node(sep, () => ['2.05', 'ok']);
    const cep = await client({
      rpk: { publicKey: device.publicKey, privateKey: device.privateKey, serverPublicKey: serverPair.publicKey },
      cipherSuites: [TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256.id],
    });
    const clientNode = node(cep, () => ['4.04', '']);
    const port = sep.address().port;
    const res = await clientNode.request({ address: LOCAL, port }, { method: 'GET', path: '/x', timeoutMs: 5000 });
    expect(res.payload.toString()).to.equal('ok');
    expect(cep.sessionSuite(LOCAL, port)?.name).to.equal('TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256');
  });

  it('with psk and rpk, the server picks among both; PSK then identifies by the PSK identity', async () => {
    const sep = await server();
    node(sep, () => ['2.05', 'ok']);
    const cep = await client({
      psk: { identity: 'dev-psk', key: PSK },
      cipherSuites: [TLS_PSK_WITH_AES_128_CCM_8.id, TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8.id],
    });
    const clientNode = node(cep, () => ['4.04', '']);
    const port = sep.address().port;
    const res = await clientNode.request({ address: LOCAL, port }, { method: 'GET', path: '/x', timeoutMs: 5000 });
    expect(res.payload.toString()).to.equal('ok');
    const suite = cep.sessionSuite(LOCAL, port)!;
    expect([TLS_PSK_WITH_AES_128_CCM_8.id, TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8.id]).to.include(suite.id);
    const id = cep.sessionPeerIdentity(LOCAL, port);
    expect(id).to.deep.equal(suite.keyExchange === 'psk'
      ? { type: 'psk', identity: Buffer.from('dev-psk') }
      : { type: 'rpk', publicKey: serverPair.publicKey });
  });

  it('a server presenting another key than serverPublicKey: bad_certificate from us, a clean failure, no key bytes in the message', async () => {
    const sdiags: DtlsDiagnostic[] = [];
    const sep = await server(sdiags);
    node(sep, () => ['2.05', 'never']);
    const cdiags: DtlsClientDiagnostic[] = [];
    const cep = await client({ rpk: { publicKey: device.publicKey, privateKey: device.privateKey, serverPublicKey: stranger.publicKey } }, cdiags);
    const errors: Error[] = [];
    cep.on('error', (e) => errors.push(e));
    const port = sep.address().port;
    const err = await sendOnce(cep, port);
    expect(err).to.be.instanceOf(DtlsHandshakeError);
    expect((err as DtlsHandshakeError).alert).to.deep.equal({ description: AlertDescription.badCertificate, by: 'client' });
    expect(err!.message).to.contain('expected');
    for (const k of [stranger.publicKey, serverPair.publicKey, device.privateKey]) expect(err!.message).to.not.contain(k.toString('hex'));
    expect(cep.sessionState(LOCAL, port)).to.equal(undefined);
    expect(cdiags.map((d) => d.kind)).to.include('handshake_failed');
    expect(errors).to.deep.equal([]);
    // The server received our alert and dropped the half-done handshake.
    await new Promise((r) => setTimeout(r, 100));
    expect(sdiags.some((d) => d.kind === 'established')).to.equal(false);
    expect(sep.stats().handshakesCompleted).to.equal(0);
  });

  it('an unenrolled client key: the server answers certificate_unknown (46), surfaced as DtlsHandshakeError', async () => {
    const sep = await server();
    node(sep, () => ['2.05', 'never']);
    const cep = await client({ rpk: { publicKey: stranger.publicKey, privateKey: stranger.privateKey } });
    const clientNode = node(cep, () => ['4.04', '']);
    const err = await sendOnce(cep, sep.address().port);
    expect(err).to.be.instanceOf(DtlsHandshakeError);
    expect((err as DtlsHandshakeError).alert).to.deep.equal({ description: AlertDescription.certificateUnknown, by: 'server' });
    expect(err!.message).to.contain('certificate_unknown');
    // A CoAP request fails the same way (not a timeout).
    let reqErr: unknown;
    try {
      await clientNode.request({ address: LOCAL, port: sep.address().port }, { method: 'GET', path: '/x', timeoutMs: 4000 });
    } catch (e) {
      reqErr = e;
    }
    expect(String(reqErr)).to.contain('certificate_unknown');
  });

  it('refuses bad options with errors that quote no key bytes', async () => {
    const cases: [Partial<DtlsClientOptions>, RegExp][] = [
      [{ rpk: { publicKey: device.publicKey, privateKey: stranger.privateKey } }, /does not belong/],
      [{ rpk: { publicKey: Buffer.from('3000', 'hex'), privateKey: device.privateKey } }, /publicKey must be a P-256/],
      [{ rpk: { publicKey: device.publicKey, privateKey: Buffer.from('deadbeef', 'hex') } }, /privateKey must be a PKCS#8/],
      [{ rpk: { publicKey: device.publicKey, privateKey: device.privateKey, serverPublicKey: Buffer.from('01', 'hex') } }, /serverPublicKey/],
      [{ rpk: undefined, psk: { identity: 'a', key: PSK }, cipherSuites: [TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8.id] }, /needs rpk/],
      [{ cipherSuites: [TLS_PSK_WITH_AES_128_CCM_8.id] }, /needs psk/],
      [{ rpk: undefined }, /psk: \{ identity, key \} or rpk/],
    ];
    for (const [opts, message] of cases) {
      let err: unknown;
      try {
        await DtlsClientEndpoint.create({ host: LOCAL, rpk: { publicKey: device.publicKey, privateKey: device.privateKey }, ...opts });
      } catch (e) {
        err = e;
      }
      expect(String(err), String(message)).to.match(message);
      expect(String(err)).to.not.contain(device.privateKey.toString('hex').slice(-40));
    }
  });

  it('publicKeyOfPrivate derives the SPKI of a PKCS#8 key, and refuses anything else', () => {
    expect(publicKeyOfPrivate(device.privateKey).equals(device.publicKey)).to.equal(true);
    expect(() => publicKeyOfPrivate(Buffer.from('00', 'hex'))).to.throw(RangeError);
    const p384 = generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey.export({ format: 'der', type: 'pkcs8' });
    expect(() => publicKeyOfPrivate(p384)).to.throw(/P-256/);
  });
});
