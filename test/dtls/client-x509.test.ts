/**
 * DtlsClientEndpoint with ECDHE_ECDSA and X.509 certificates both ways against our DtlsEndpoint
 * (serverKey + serverCertificate, trustAnchors + x509Lookup), with a test PKI made by the openssl
 * CLI: CoAP both ways with each side seeing the other's certificate; the server's chain checked
 * against trust anchors (with its name) or pinned (LwM2M /0/x/4, certificate usage 3); our chain
 * sent leaf first with an intermediate; an untrusted client CA (the server's unknown_ca reaches
 * us), a server certificate other than the pinned one, an untrusted server CA, a wrong server
 * name and an expired server certificate (our alerts); bad options refused without key bytes;
 * the helpers (DER splitting, host names, SNI) on their own.
 */
import { expect } from 'chai';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CoapNode } from '../../src/coap/coap-node.js';
import type { PeerInfo } from '../../src/coap/endpoint.js';
import { DtlsClientEndpoint, DtlsHandshakeError, type DtlsClientOptions, type DtlsClientX509 } from '../../src/dtls/client.js';
import { certificateNamesHost, serverNameExtension, splitDerCertificates } from '../../src/dtls/client-x509.js';
import { AlertDescription, ExtensionType } from '../../src/dtls/constants.js';
import { DtlsEndpoint } from '../../src/dtls/endpoint.js';
import type { DtlsDiagnostic } from '../../src/dtls/server.js';
import { TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256, TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8 } from '../../src/dtls/suites.js';
import { answeringNode, sendOnce } from './coap-support.js';
import { buildTestPki, DEVICE_EP, requireOpenssl, type TestCert, type TestPki } from './openssl-support.js';

const LOCAL = '127.0.0.1';
const FAST = { initialMs: 100, maxMs: 400 };

const pkcs8 = (c: TestCert): Buffer => c.privateKey.export({ format: 'der', type: 'pkcs8' });

describe('dtls/DtlsClientEndpoint with X.509 certificates (ECDHE_ECDSA) against DtlsEndpoint', function () {
  this.timeout(20000);
  let dir: string;
  let pki: TestPki;
  const cleanup: (() => Promise<void>)[] = [];
  before(() => {
    requireOpenssl();
    dir = mkdtempSync(join(tmpdir(), 'lwbs-client-x509-'));
    pki = buildTestPki(dir);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));
  afterEach(async () => {
    for (const f of cleanup.splice(0).reverse()) await f();
  });

  async function server(diags: DtlsDiagnostic[] = []): Promise<DtlsEndpoint> {
    const ep = await DtlsEndpoint.create({
      host: LOCAL,
      port: 0,
      serverKey: { publicKey: pki.server.spki, privateKey: pki.server.privateKey },
      serverCertificate: { chain: [pki.server.der] },
      trustAnchors: [pki.ca.der],
      x509Lookup: async () => true,
      retransmit: FAST,
      onDiagnostic: (d) => diags.push(d),
    });
    cleanup.push(() => ep.close());
    return ep;
  }

  const device = (): DtlsClientX509 => ({ certificate: pki.device.der, privateKey: pkcs8(pki.device), trustAnchors: [pki.ca.der], serverName: LOCAL });

  async function client(x509: DtlsClientX509, opts: Partial<DtlsClientOptions> = {}): Promise<DtlsClientEndpoint> {
    const ep = await DtlsClientEndpoint.create({ host: LOCAL, x509, retransmit: FAST, handshakeTimeoutMs: 5000, ...opts });
    cleanup.push(() => ep.close());
    return ep;
  }

  const node = (ep: DtlsEndpoint | DtlsClientEndpoint, handler: Parameters<typeof answeringNode>[1]): CoapNode => answeringNode(ep, handler, cleanup);


  it('trust anchors and the server name: CoAP both ways, the server sees our certificate, we see its certificate', async () => {
    const sdiags: DtlsDiagnostic[] = [];
    const sep = await server(sdiags);
    const seen: PeerInfo[] = [];
    const serverNode = node(sep, (req, peer) => {
      seen.push(peer);
      return ['2.04', `hello ${req.path}`];
    });
    const cep = await client(device());
    expect(cep.certificateChain).to.deep.equal([pki.device.der]);
    expect(cep.publicKey).to.equal(undefined);
    const fromServer: PeerInfo[] = [];
    const clientNode = node(cep, (req, peer) => {
      fromServer.push(peer);
      return ['2.05', `device ${req.path}`];
    });
    const port = sep.address().port;
    const res = await clientNode.request({ address: LOCAL, port }, { method: 'POST', path: '/bs', query: [`ep=${DEVICE_EP}`], timeoutMs: 5000 });
    expect(res.code).to.equal('2.04');
    expect(res.payload.toString()).to.equal('hello /bs');
    expect(seen).to.have.length(1);
    expect(seen[0]!.identity?.type).to.equal('x509');
    expect(seen[0]!.identity?.type === 'x509' && seen[0]!.identity.certificate.equals(pki.device.der)).to.equal(true);
    expect(cep.sessionSuite(LOCAL, port)?.id).to.equal(TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8.id);
    const id = cep.sessionPeerIdentity(LOCAL, port);
    expect(id?.type === 'x509' && id.certificate.equals(pki.server.der)).to.equal(true);
    expect(id?.type === 'x509' && id.chain).to.deep.equal([pki.server.der]);
    const sest = sdiags.find((d) => d.kind === 'established');
    expect(sest?.kind === 'established' && sest.identityType).to.equal('x509');

    const back = await serverNode.request(seen[0]!, { method: 'GET', path: [3, 0], timeoutMs: 5000 });
    expect(back.payload.toString()).to.equal('device /3/0');
    expect(fromServer[0]!.identity?.type).to.equal('x509');
  });

  it('the pinned server certificate (/0/x/4, usage 3), our chain with an intermediate in one concatenated buffer, CBC_SHA256', async () => {
    const sep = await server();
    const seen: PeerInfo[] = [];
    node(sep, (_req, peer) => {
      seen.push(peer);
      return ['2.05', 'ok'];
    });
    const cep = await client({
      certificate: Buffer.concat([pki.deviceViaIntermediate.der, pki.intermediate.der]),
      privateKey: pkcs8(pki.deviceViaIntermediate),
      serverCertificate: pki.server.der,
    }, { cipherSuites: [TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256.id] });
    const clientNode = node(cep, () => ['4.04', '']);
    const port = sep.address().port;
    const res = await clientNode.request({ address: LOCAL, port }, { method: 'GET', path: '/x', timeoutMs: 5000 });
    expect(res.payload.toString()).to.equal('ok');
    expect(cep.sessionSuite(LOCAL, port)?.name).to.equal('TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256');
    const got = seen[0]!.identity;
    expect(got?.type === 'x509' && got.chain).to.deep.equal([pki.deviceViaIntermediate.der, pki.intermediate.der]);
  });

  it('a client certificate from an unknown CA: the server answers unknown_ca (48), surfaced as DtlsHandshakeError', async () => {
    const sep = await server();
    node(sep, () => ['2.05', 'never']);
    const cep = await client({ ...device(), certificate: pki.otherDevice.der, privateKey: pkcs8(pki.otherDevice) });
    const err = await sendOnce(cep, sep.address().port);
    expect(err).to.be.instanceOf(DtlsHandshakeError);
    expect((err as DtlsHandshakeError).alert).to.deep.equal({ description: AlertDescription.unknownCa, by: 'server' });
    expect(err!.message).to.contain('unknown_ca');
    expect(cep.sessionState(LOCAL, sep.address().port)).to.equal(undefined);
  });

  const refusals: [string, (p: TestPki) => Partial<DtlsClientX509>, number, RegExp][] = [
    ['a server certificate other than the pinned one', (p) => ({ trustAnchors: undefined, serverCertificate: p.device.der }), AlertDescription.badCertificate, /other than the expected one/],
    ['a server chain that does not lead to our trust anchor', (p) => ({ trustAnchors: [p.otherCa.der] }), AlertDescription.unknownCa, /trust anchor/],
    ['a server certificate that does not name the server', () => ({ serverName: 'lwm2m.example.com' }), AlertDescription.badCertificate, /does not name "lwm2m\.example\.com"/],
    ['a server certificate outside its validity period', () => ({ certificateClock: () => Date.now() + 400 * 24 * 3600_000 }), AlertDescription.certificateExpired, /validity/],
  ];
  for (const [what, change, alert, reason] of refusals) {
    it(`${what}: we abort with alert ${alert}, the server completes nothing, no certificate bytes in the message`, async () => {
      const sdiags: DtlsDiagnostic[] = [];
      const sep = await server(sdiags);
      node(sep, () => ['2.05', 'never']);
      const cep = await client({ ...device(), ...change(pki) });
      const errors: Error[] = [];
      cep.on('error', (e) => errors.push(e));
      const err = await sendOnce(cep, sep.address().port);
      expect(err).to.be.instanceOf(DtlsHandshakeError);
      expect((err as DtlsHandshakeError).alert).to.deep.equal({ description: alert, by: 'client' });
      expect(err!.message).to.match(reason);
      for (const b of [pki.server.der, pki.device.der, pkcs8(pki.device)]) expect(err!.message).to.not.contain(b.subarray(0, 40).toString('hex'));
      expect(errors).to.deep.equal([]);
      await new Promise((r) => setTimeout(r, 100));
      expect(sdiags.some((d) => d.kind === 'established')).to.equal(false);
      expect(sep.stats().handshakesCompleted).to.equal(0);
    });
  }

  it('refuses bad options with errors that quote no key bytes', async () => {
    const key = pkcs8(pki.device);
    const cases: [Partial<DtlsClientOptions>, RegExp][] = [
      [{ x509: { certificate: pki.device.der, privateKey: pkcs8(pki.server) } }, /does not belong to the leaf certificate/],
      [{ x509: { certificate: Buffer.from('3003020101', 'hex'), privateKey: key } }, /x509\.certificate must be 1\.\.8 DER X\.509 certificates/],
      [{ x509: { certificate: pki.device.der, privateKey: Buffer.from('deadbeef', 'hex') } }, /privateKey must be a PKCS#8/],
      [{ x509: { certificate: pki.p384Device.der, privateKey: pkcs8(pki.p384Device) } }, /leaf key must be P-256/],
      [{ x509: { certificate: pki.device.der, privateKey: key, serverCertificate: Buffer.from('01', 'hex') } }, /serverCertificate/],
      [{ x509: { certificate: pki.device.der, privateKey: key, serverCertificate: pki.server.der, trustAnchors: [pki.ca.der] } }, /not both/],
      [{ x509: { certificate: pki.device.der, privateKey: key }, rpk: { publicKey: pki.device.spki, privateKey: key } }, /rpk or x509, not both/],
    ];
    for (const [opts, msg] of cases) {
      let err: unknown;
      try {
        await DtlsClientEndpoint.create({ host: LOCAL, ...opts });
      } catch (e) {
        err = e;
      }
      expect(String(err), JSON.stringify(Object.keys(opts))).to.match(msg);
      expect(String(err)).to.not.contain(key.subarray(-32).toString('hex'));
    }
  });

  it('helpers: concatenated DER certificates split, host names compare as the certificate gives them, SNI as RFC 6066 lays it out', () => {
    expect(splitDerCertificates(Buffer.concat([pki.device.der, pki.ca.der]))).to.deep.equal([pki.device.der, pki.ca.der]);
    expect(() => splitDerCertificates(pki.device.der.subarray(0, pki.device.der.length - 1))).to.throw(RangeError);
    expect(() => splitDerCertificates(Buffer.alloc(0))).to.throw(RangeError);
    // pki.server: CN localhost, subjectAltName DNS:localhost, IP:127.0.0.1 (openssl's rendering checked below).
    expect(new X509Certificate(pki.server.der).subjectAltName).to.equal('DNS:localhost, IP Address:127.0.0.1');
    expect(certificateNamesHost(pki.server.der, 'LocalHost.')).to.equal(true);
    expect(certificateNamesHost(pki.server.der, '127.0.0.1')).to.equal(true);
    expect(certificateNamesHost(pki.server.der, '127.0.0.2')).to.equal(false);
    expect(certificateNamesHost(pki.server.der, 'host.localhost')).to.equal(false);
    // RFC 6066 §3: ServerNameList length, name_type host_name (0), HostName length, the name.
    expect(serverNameExtension('lwm2m.example.com')).to.deep.equal({
      type: ExtensionType.serverName,
      data: Buffer.concat([Buffer.from([0x00, 0x14, 0x00, 0x00, 0x11]), Buffer.from('lwm2m.example.com')]),
    });
    expect(serverNameExtension('127.0.0.1')).to.equal(undefined);
    expect(serverNameExtension('[::1]')).to.equal(undefined);
  });
});
