/**
 * X.509 in the ECDHE_ECDSA handshake: the certificate helpers (x509.ts) and full handshakes
 * between the test client (psk-client.ts) and DtlsServer, with certificates made by the openssl
 * CLI (openssl-support.ts) in a temporary directory.
 */
import { expect } from 'chai';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AlertDescription, CertificateType, ExtensionType } from '../../src/dtls/constants.js';
import { findExtension, parseCertificateList, serializeCertificateList } from '../../src/dtls/messages.js';
import { DtlsServer, type DtlsServerOptions } from '../../src/dtls/server.js';
import {
  certificateMatchesEndpoint, certificateNames, certificateValidity, loadTrustAnchors, MAX_CHAIN_LENGTH, verifyCertificateChain,
} from '../../src/dtls/x509.js';
import { Harness } from './harness.js';
import { buildTestPki, DEVICE_EP, requireOpenssl, type TestCert, type TestPki } from './openssl-support.js';
import type { PskClientOptions } from './psk-client.js';

describe('dtls/x509', function () {
  this.timeout(20000);
  let dir: string;
  let pki: TestPki;
  before(() => {
    requireOpenssl();
    dir = mkdtempSync(join(tmpdir(), 'lwbs-x509-'));
    pki = buildTestPki(dir);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  describe('certificate helpers', () => {
    it('certificateNames gives the subject CN and every subjectAltName value', () => {
      const n = certificateNames(pki.device.der);
      expect(n.cn).to.equal(DEVICE_EP);
      expect(n.sans).to.have.members([DEVICE_EP, 'dev.example', '192.0.2.7', 'ops@dev.example']);
      // Cross-check with OpenSSL's own rendering of the names.
      const x = new X509Certificate(pki.device.der);
      expect(x.subject).to.equal(`CN=${n.cn!}`);
      for (const s of n.sans) expect(x.subjectAltName).to.include(s);
      expect(certificateNames(pki.ca.der)).to.deep.equal({ cn: 'lwbs test CA', sans: [] });
      expect(certificateNames(pki.server.der).sans).to.have.members(['localhost', '127.0.0.1']);
    });

    it('certificateMatchesEndpoint compares the endpoint with the CN and the SANs', () => {
      expect(certificateMatchesEndpoint(pki.device.der, DEVICE_EP)).to.equal(true);
      expect(certificateMatchesEndpoint(pki.device.der, 'dev.example')).to.equal(true);
      expect(certificateMatchesEndpoint(pki.device.der, 'urn:imei:490154203237519')).to.equal(false);
      expect(certificateMatchesEndpoint(pki.deviceViaIntermediate.der, 'urn:dev:via-intermediate')).to.equal(true);
    });

    it('certificateValidity reads the dates openssl was given, and agrees with X509Certificate', () => {
      expect(certificateValidity(pki.expired.der)).to.deep.equal({ notBefore: Date.UTC(2020, 0, 1), notAfter: Date.UTC(2021, 0, 1) });
      for (const c of [pki.device, pki.ca, pki.server]) {
        const x = new X509Certificate(c.der);
        expect(certificateValidity(c.der)).to.deep.equal({ notBefore: Date.parse(x.validFrom), notAfter: Date.parse(x.validTo) });
      }
    });

    it('the helpers throw RangeError on malformed DER', () => {
      for (const bad of [Buffer.alloc(0), Buffer.from('3003020101', 'hex'), pki.device.der.subarray(0, 100), Buffer.from('junk')]) {
        expect(() => certificateNames(bad)).to.throw(RangeError);
        expect(() => certificateValidity(bad)).to.throw(RangeError);
      }
      expect(() => loadTrustAnchors([Buffer.from('junk')])).to.throw(RangeError, /trustAnchors\[0\]/);
    });

    it('certificate lists round-trip through the Certificate message encoding', () => {
      const chain = [pki.device.der, pki.ca.der];
      expect(parseCertificateList(serializeCertificateList(chain))).to.deep.equal(chain);
      expect(parseCertificateList(Buffer.from([0, 0, 0]))).to.deep.equal([]);
      expect(parseCertificateList(Buffer.from([0, 0, 3, 0, 0, 0]))).to.equal(undefined); // an empty ASN.1Cert
      expect(parseCertificateList(serializeCertificateList(chain).subarray(0, 50))).to.equal(undefined);
    });

    describe('verifyCertificateChain', () => {
      const cases: [string, (p: TestPki) => Buffer[], number | 'ok'][] = [
        ['a device certificate issued by the anchor', (p) => [p.device.der], 'ok'],
        ['a chain ending with the anchor itself', (p) => [p.device.der, p.ca.der], 'ok'],
        ['a chain through an intermediate CA', (p) => [p.deviceViaIntermediate.der, p.intermediate.der], 'ok'],
        ['a chain through an intermediate, with the root', (p) => [p.deviceViaIntermediate.der, p.intermediate.der, p.ca.der], 'ok'],
        ['an intermediate-issued device without its intermediate', (p) => [p.deviceViaIntermediate.der], AlertDescription.unknownCa],
        ['a device from another CA', (p) => [p.otherDevice.der], AlertDescription.unknownCa],
        ['a device from another CA, with that CA', (p) => [p.otherDevice.der, p.otherCa.der], AlertDescription.unknownCa],
        ['an expired certificate', (p) => [p.expired.der], AlertDescription.certificateExpired],
        ['a certificate not yet valid', (p) => [p.notYetValid.der], AlertDescription.certificateExpired],
        ['an issuer without basic constraints CA', (p) => [p.deviceViaNotCa.der, p.notCa.der], AlertDescription.badCertificate],
        ['a chain out of order', (p) => [p.intermediate.der, p.deviceViaIntermediate.der], AlertDescription.badCertificate],
        ['a P-384 device key', (p) => [p.p384Device.der], AlertDescription.unsupportedCertificate],
        ['bytes that are no certificate', () => [Buffer.from('3082000130', 'hex')], AlertDescription.badCertificate],
        ['no certificate', () => [], AlertDescription.handshakeFailure],
        ['too long a chain', (p) => Array.from({ length: MAX_CHAIN_LENGTH + 1 }, () => p.device.der), AlertDescription.badCertificate],
      ];
      for (const [name, chain, expected] of cases) {
        it(`${name}: ${expected === 'ok' ? 'accepted' : `alert ${expected}`}`, () => {
          const r = verifyCertificateChain(chain(pki), loadTrustAnchors([pki.ca.der]), Date.now());
          if (expected === 'ok') expect(r.ok, JSON.stringify(r)).to.equal(true);
          else expect(r).to.deep.include({ ok: false, alert: expected });
        });
      }

      it('a tampered signature is bad_certificate, for the leaf and for an intermediate', () => {
        const anchors = loadTrustAnchors([pki.ca.der]);
        const flipLast = (d: Buffer): Buffer => {
          const b = Buffer.from(d);
          b[b.length - 1]! ^= 0x01; // inside the signature BIT STRING (last INTEGER of the ECDSA signature)
          return b;
        };
        expect(verifyCertificateChain([flipLast(pki.device.der)], anchors, Date.now())).to.deep.include({ ok: false, alert: AlertDescription.badCertificate });
        expect(verifyCertificateChain([pki.deviceViaIntermediate.der, flipLast(pki.intermediate.der)], anchors, Date.now()))
          .to.deep.include({ ok: false, alert: AlertDescription.badCertificate });
      });

      it('a device certificate configured as a trust anchor is trusted directly; validity uses the given time', () => {
        expect(verifyCertificateChain([pki.otherDevice.der], loadTrustAnchors([pki.otherDevice.der]), Date.now()).ok).to.equal(true);
        expect(verifyCertificateChain([pki.expired.der], loadTrustAnchors([pki.ca.der]), Date.UTC(2020, 6, 1)).ok).to.equal(false); // CA not valid then
        expect(verifyCertificateChain([pki.device.der], loadTrustAnchors([pki.ca.der]), Date.now() + 100 * 24 * 3600_000))
          .to.deep.include({ ok: false, alert: AlertDescription.certificateExpired });
      });
    });
  });

  describe('handshakes with the test client', () => {
    let h: Harness | undefined;
    afterEach(() => {
      h?.close();
      h = undefined;
    });

    const serverOpts = (extra: Partial<DtlsServerOptions> = {}): Partial<DtlsServerOptions> => ({
      pskLookup: undefined,
      serverKey: { publicKey: pki.server.spki, privateKey: pki.server.privateKey },
      serverCertificate: { chain: [pki.server.der] },
      trustAnchors: [pki.ca.der],
      x509Lookup: async () => true,
      ...extra,
    });
    const x509Client = (c: TestCert, extra: Partial<PskClientOptions> = {}, chain?: Buffer[]): PskClientOptions => ({
      cipherSuites: [0xc0ae], x509: { chain: chain ?? [c.der], privateKey: c.privateKey }, ...extra,
    });

    for (const suite of [0xc0ae, 0xc023, 0xc02b]) {
      it(`suite 0x${suite.toString(16)}: X.509 both ways (no certificate-type extensions), identity delivered as x509`, async () => {
        const looked: Buffer[] = [];
        h = new Harness({}, serverOpts({ x509Lookup: async (leaf) => (looked.push(leaf), true) }));
        const peer = Harness.peer(5001);
        const c = await h.connect(peer, x509Client(pki.device, { cipherSuites: [suite] }));
        expect(c.state).to.equal('established');
        expect(c.serverChain).to.deep.equal([pki.server.der]);
        expect(c.serverSignatureValid).to.equal(true);
        expect(findExtension(c.serverExtensions, ExtensionType.clientCertificateType)).to.equal(undefined);
        expect(findExtension(c.serverExtensions, ExtensionType.serverCertificateType)).to.equal(undefined);
        expect(looked).to.deep.equal([pki.device.der]);
        h.input(peer, [c.send(Buffer.from('hi'))]);
        expect(h.delivered).to.have.length(1);
        expect(h.delivered[0]!.peerIdentity).to.deep.equal({ type: 'x509', certificate: pki.device.der, chain: [pki.device.der] });
        expect(h.diagnostics.find((d) => d.kind === 'established')).to.deep.include({ identityType: 'x509', identity: pki.device.der });
      });
    }

    it('a chain with an intermediate is accepted and delivered whole', async () => {
      h = new Harness({}, serverOpts());
      const peer = Harness.peer(5002);
      const chain = [pki.deviceViaIntermediate.der, pki.intermediate.der];
      const c = await h.connect(peer, x509Client(pki.deviceViaIntermediate, {}, chain));
      expect(c.state).to.equal('established');
      h.input(peer, [c.send(Buffer.from('x'))]);
      expect(h.delivered[0]!.peerIdentity).to.deep.equal({ type: 'x509', certificate: chain[0], chain });
    });

    const refusals: [string, (p: TestPki) => PskClientOptions, number][] = [
      ['a device from another CA', (p) => x509Client(p.otherDevice), AlertDescription.unknownCa],
      ['an expired device certificate', (p) => x509Client(p.expired), AlertDescription.certificateExpired],
      ['a broken chain', (p) => x509Client(p.deviceViaNotCa, {}, [p.deviceViaNotCa.der, p.notCa.der]), AlertDescription.badCertificate],
      ['a certificate presented without its private key', (p) => x509Client(p.device, { signWith: p.otherDevice.privateKey }), AlertDescription.decryptError],
      ['an empty Certificate', (p) => x509Client(p.device, { noCertificate: true }), AlertDescription.handshakeFailure],
    ];
    for (const [name, opts, alert] of refusals) {
      it(`${name} gets alert ${alert} and no session, without asking x509Lookup`, async () => {
        let asked = 0;
        h = new Harness({}, serverOpts({ x509Lookup: async () => (asked++, true) }));
        const peer = Harness.peer(5003);
        const c = await h.connect(peer, opts(pki));
        expect(c.state).to.equal('closed');
        expect(c.alerts.map((a) => a.description)).to.deep.equal([alert]);
        expect(asked).to.equal(0);
        expect(h.server.stats()).to.deep.include({ sessions: 0, handshaking: 0, handshakesFailed: 1 });
      });
    }

    it('x509Lookup saying no gets certificate_unknown; a failing lookup internal_error', async () => {
      h = new Harness({}, serverOpts({ x509Lookup: async () => false }));
      const c = await h.connect(Harness.peer(5004), x509Client(pki.device));
      expect(c.alerts.map((a) => a.description)).to.deep.equal([AlertDescription.certificateUnknown]);
      h.close();
      h = new Harness({}, serverOpts({ x509Lookup: async () => { throw new Error('store down'); } }));
      const c2 = await h.connect(Harness.peer(5004), x509Client(pki.device));
      expect(c2.alerts.map((a) => a.description)).to.deep.equal([AlertDescription.internalError]);
    });

    it('a client wanting a server certificate when none is configured gets unsupported_certificate', async () => {
      h = new Harness({}, serverOpts({ serverCertificate: undefined }));
      const c = await h.connect(Harness.peer(5005), x509Client(pki.device));
      expect(c.alerts.map((a) => a.description)).to.deep.equal([AlertDescription.unsupportedCertificate]);
      expect(h.server.stats().handshakesStarted).to.equal(0);
    });

    it('a client offering X.509 when only raw public keys are configured gets unsupported_certificate', async () => {
      h = new Harness({}, serverOpts({ serverCertificate: undefined, x509Lookup: undefined, trustAnchors: undefined, rpkLookup: async () => true }));
      const c = await h.connect(Harness.peer(5006), x509Client(pki.device, { clientCertificateTypes: [CertificateType.x509], serverCertificateTypes: [CertificateType.rawPublicKey] }));
      expect(c.alerts.map((a) => a.description)).to.deep.equal([AlertDescription.unsupportedCertificate]);
    });

    it('mixed types: an X.509 client with a raw-public-key server; the ServerHello echoes both choices', async () => {
      h = new Harness({}, serverOpts());
      const peer = Harness.peer(5007);
      const c = await h.connect(peer, x509Client(pki.device, {
        clientCertificateTypes: [CertificateType.x509], serverCertificateTypes: [CertificateType.rawPublicKey, CertificateType.x509],
      }));
      expect(c.state).to.equal('established');
      expect(findExtension(c.serverExtensions, ExtensionType.clientCertificateType)?.data).to.deep.equal(Buffer.from([CertificateType.x509]));
      expect(findExtension(c.serverExtensions, ExtensionType.serverCertificateType)?.data).to.deep.equal(Buffer.from([CertificateType.rawPublicKey]));
      expect(c.serverSpki).to.deep.equal(pki.server.spki);
      expect(c.serverSignatureValid).to.equal(true);
    });

    it('mixed types: a raw-public-key client with an X.509 server; both lookups are configured and the right one asked', async () => {
      const asked: string[] = [];
      h = new Harness({}, serverOpts({ rpkLookup: async () => (asked.push('rpk'), true), x509Lookup: async () => (asked.push('x509'), true) }));
      const peer = Harness.peer(5008);
      const c = await h.connect(peer, {
        cipherSuites: [0xc0ae], rpk: { publicKey: pki.device.spki, privateKey: pki.device.privateKey },
        clientCertificateTypes: [CertificateType.rawPublicKey], serverCertificateTypes: [CertificateType.x509],
      });
      expect(c.state).to.equal('established');
      expect(c.serverChain).to.deep.equal([pki.server.der]);
      expect(asked).to.deep.equal(['rpk']);
      h.input(peer, [c.send(Buffer.from('x'))]);
      expect(h.delivered[0]!.peerIdentity).to.deep.equal({ type: 'rpk', publicKey: pki.device.spki });
    });

    it('a raw-public-key client listing X.509 first for the server (as GnuTLS does) gets our raw public key, not our certificate', async () => {
      h = new Harness({}, serverOpts({ rpkLookup: async () => true }));
      const c = await h.connect(Harness.peer(5010), {
        cipherSuites: [0xc0ae], rpk: { publicKey: pki.device.spki, privateKey: pki.device.privateKey },
        clientCertificateTypes: [CertificateType.rawPublicKey, CertificateType.x509], serverCertificateTypes: [CertificateType.x509, CertificateType.rawPublicKey],
      });
      expect(c.state).to.equal('established');
      expect(findExtension(c.serverExtensions, ExtensionType.clientCertificateType)?.data).to.deep.equal(Buffer.from([CertificateType.rawPublicKey]));
      expect(findExtension(c.serverExtensions, ExtensionType.serverCertificateType)?.data).to.deep.equal(Buffer.from([CertificateType.rawPublicKey]));
      expect(c.serverSpki).to.deep.equal(pki.server.spki);
    });

    it('a long server chain is fragmented and still arrives (small datagrams)', async () => {
      h = new Harness({}, serverOpts({ serverCertificate: { chain: [pki.server.der, pki.ca.der] }, maxDatagram: 256 }));
      const c = await h.connect(Harness.peer(5009), x509Client(pki.device, { maxDatagram: 256 }));
      expect(c.state).to.equal('established');
      expect(c.serverChain).to.deep.equal([pki.server.der, pki.ca.der]);
    });

    it('configuration errors are RangeErrors', () => {
      const io = { send: () => {}, deliver: () => {} };
      const key = { publicKey: pki.server.spki, privateKey: pki.server.privateKey };
      expect(() => new DtlsServer({ serverKey: key, x509Lookup: async () => true }, io)).to.throw(RangeError, /trustAnchors/);
      expect(() => new DtlsServer({ serverKey: key, x509Lookup: async () => true, trustAnchors: [Buffer.from('junk')] }, io)).to.throw(RangeError, /trustAnchors\[0\]/);
      expect(() => new DtlsServer({ serverCertificate: { chain: [pki.server.der] }, pskLookup: async () => undefined }, io)).to.throw(RangeError, /serverKey/);
      expect(() => new DtlsServer({
        serverKey: key, serverCertificate: { chain: [pki.device.der] }, x509Lookup: async () => true, trustAnchors: [pki.ca.der],
      }, io)).to.throw(RangeError, /does not certify serverKey/);
      const ok = new DtlsServer({ serverKey: key, serverCertificate: { chain: [pki.server.der] }, x509Lookup: async () => true, trustAnchors: [pki.ca.der] }, io);
      ok.close();
    });
  });
});
