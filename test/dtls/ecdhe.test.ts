import { expect } from 'chai';
import fc from 'fast-check';
import { createPublicKey, generateKeyPairSync, verify, type KeyObject } from 'node:crypto';
import { generateServerKeyPair } from '../../src/bootstrap/credentials.js';
import type { PeerInfo } from '../../src/coap/endpoint.js';
import { AlertDescription, AlertLevel, CertificateType, ExtensionType, NamedGroup } from '../../src/dtls/constants.js';
import { ecdsaSign, ecdsaVerify, EphemeralEcdh, loadServerKey, parseP256Spki } from '../../src/dtls/ecc.js';
import { DtlsEndpoint } from '../../src/dtls/endpoint.js';
import {
  findExtension, parseCertificateRequest, parseCertificateVerify, parseEcdhClientKeyExchange, parseEcdheServerKeyExchange,
  parseRawPublicKeyCertificate, parseU16List, parseU8List, serializeCertificateRequest, serializeCertificateVerify,
  serializeEcdhClientKeyExchange, serializeEcdheServerKeyExchange, serializeRawPublicKeyCertificate,
} from '../../src/dtls/messages.js';
import { DtlsServer, type DtlsServerOptions } from '../../src/dtls/server.js';
import { Harness, tick, mutatedThenGenuineFlight5 } from './harness.js';
import { PskClient, UdpPskClient, type PskClientOptions, type RpkClientKey } from './psk-client.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

function clientKey(): RpkClientKey & { spkiKey: KeyObject } {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return { publicKey: publicKey.export({ format: 'der', type: 'spki' }), privateKey, spkiKey: publicKey };
}

describe('dtls/ecc primitives', () => {
  it('ECDH reproduces RFC 5903 §8.1 (P-256): both public values and the shared x coordinate', () => {
    // dtls.md §9.4
    const i = new EphemeralEcdh(hex('C88F01F510D9AC3F70A292DAA2316DE544E9AAB8AFE84049C62A9C57862D1433'));
    const r = new EphemeralEcdh(hex('C6EF9C5D78AE012A011164ACB397CE2088685D8F06BF9BE0B283AB46476BEE53'));
    const gi = hex('04 DAD0B65394221CF9B051E1FECA5787D098DFE637FC90B9EF945D0C3772581180 5271A0461CDB8252D61F1C456FA3E59AB1F45B33ACCF5F58389E0577B8990BB3');
    const gr = hex('04 D12DFB5289C8D4F81208B70270398C342296970A0BCCB74C736FC7554494BF63 56FBF3CA366CC23E8157854C13C58D6AAC23F046ADA30F8353E74F33039872AB');
    expect(i.publicPoint).to.deep.equal(gi);
    expect(r.publicPoint).to.deep.equal(gr);
    const shared = hex('D6840F6B42F6EDAFD13116E0E12565202FEF8E9ECE7DCE03812464D04B9442DE');
    expect(i.sharedSecret(gr)).to.deep.equal(shared);
    expect(r.sharedSecret(gi)).to.deep.equal(shared);
  });

  it('ECDH refuses compressed, truncated and off-curve points', () => {
    const e = new EphemeralEcdh();
    const other = new EphemeralEcdh().publicPoint;
    expect(e.sharedSecret(other.subarray(0, 64))).to.equal(undefined);
    expect(e.sharedSecret(Buffer.concat([Buffer.from([2]), other.subarray(1, 33)]))).to.equal(undefined);
    const off = Buffer.from(other);
    off[64]! ^= 1;
    expect(e.sharedSecret(off)).to.equal(undefined);
    expect(e.sharedSecret(Buffer.concat([Buffer.from([4]), Buffer.alloc(64)]))).to.equal(undefined);
  });

  it('loadServerKey takes the pair lwbs stores (SPKI + PKCS#8) and refuses mismatched or non-P-256 pairs', () => {
    const pair = generateServerKeyPair();
    const k = loadServerKey(pair);
    expect(k.spki).to.have.length(91);
    expect(k.spki.equals(Buffer.from(pair.publicKey))).to.equal(true);
    const sig = ecdsaSign(k.privateKey, Buffer.from('a'), Buffer.from('b'));
    expect(ecdsaVerify(parseP256Spki(k.spki)!.key, sig, Buffer.from('ab'))).to.equal(true);
    expect(ecdsaVerify(parseP256Spki(k.spki)!.key, sig, Buffer.from('ba'))).to.equal(false);
    const other = generateServerKeyPair();
    expect(() => loadServerKey({ publicKey: pair.publicKey, privateKey: other.privateKey })).to.throw(RangeError, /does not belong/);
    const p384 = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
    expect(() => loadServerKey({
      publicKey: p384.publicKey.export({ format: 'der', type: 'spki' }), privateKey: p384.privateKey,
    })).to.throw(RangeError, /P-256/);
    expect(() => loadServerKey({ publicKey: Buffer.from('junk'), privateKey: pair.privateKey })).to.throw(RangeError);
    expect(parseP256Spki(p384.publicKey.export({ format: 'der', type: 'spki' }))).to.equal(undefined);
    expect(parseP256Spki(Buffer.from('3000', 'hex'))).to.equal(undefined);
    const offCurve = Buffer.from(k.spki);
    offCurve[90]! ^= 1;
    expect(parseP256Spki(offCurve)).to.equal(undefined);
  });

  it('parseP256Spki canonicalizes a compressed-point SPKI to the uncompressed form', () => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const uncompressed = publicKey.export({ format: 'der', type: 'spki' });
    const jwk = publicKey.export({ format: 'jwk' });
    const x = Buffer.from(jwk.x!, 'base64url');
    const y = Buffer.from(jwk.y!, 'base64url');
    // SPKI prefix of a compressed P-256 point: SEQUENCE(57) { algId, BIT STRING(34) }.
    const algId = uncompressed.subarray(2, 2 + 21);
    const compressed = Buffer.concat([Buffer.from([0x30, 0x39]), algId, Buffer.from([0x03, 0x22, 0x00, 2 + (y[31]! & 1)]), x]);
    expect(parseP256Spki(compressed)!.spki).to.deep.equal(uncompressed);
  });
});

describe('dtls/messages (ECDHE_ECDSA, RPK)', () => {
  it('CertificateRequest for ecdsa_sign + ecdsa_secp256r1_sha256 is the bytes of dtls.md §3.4', () => {
    const body = serializeCertificateRequest({ certificateTypes: [64], signatureAlgorithms: [0x0403], certificateAuthorities: Buffer.alloc(0) });
    expect(body).to.deep.equal(hex('01 40 0002 0403 0000'));
    expect(parseCertificateRequest(body)).to.deep.equal({ certificateTypes: [64], signatureAlgorithms: [0x0403], certificateAuthorities: Buffer.alloc(0) });
    expect(parseCertificateRequest(hex('00 0002 0403 0000'))).to.equal(undefined);
  });

  it('RPK Certificate is one 3-byte-length SPKI (00 00 5B + 91 bytes for P-256)', () => {
    const spki = Buffer.from(generateServerKeyPair().publicKey);
    const body = serializeRawPublicKeyCertificate(spki);
    expect(body.subarray(0, 3)).to.deep.equal(hex('00005B'));
    expect(parseRawPublicKeyCertificate(body)).to.deep.equal(spki);
    expect(parseRawPublicKeyCertificate(hex('000000'))).to.deep.equal(Buffer.alloc(0));
    expect(parseRawPublicKeyCertificate(body.subarray(0, 50))).to.equal(undefined);
  });

  it('ServerKeyExchange, ClientKeyExchange and CertificateVerify round-trip; malformed ones parse to undefined', () => {
    const point = new EphemeralEcdh().publicPoint;
    const ske = { namedCurve: NamedGroup.secp256r1, publicPoint: point, signatureAlgorithm: 0x0403, signature: Buffer.alloc(70, 9) };
    const skeBody = serializeEcdheServerKeyExchange(ske);
    expect(skeBody.subarray(0, 5)).to.deep.equal(hex('03 0017 41 04'));
    expect(parseEcdheServerKeyExchange(skeBody)).to.deep.equal(ske);
    expect(parseEcdheServerKeyExchange(Buffer.concat([hex('01'), skeBody.subarray(1)]))).to.equal(undefined);
    expect(parseEcdheServerKeyExchange(skeBody.subarray(0, skeBody.length - 1))).to.equal(undefined);
    expect(parseEcdhClientKeyExchange(serializeEcdhClientKeyExchange(point))).to.deep.equal(point);
    expect(parseEcdhClientKeyExchange(hex('00'))).to.equal(undefined);
    const cv = { signatureAlgorithm: 0x0403, signature: Buffer.alloc(71, 1) };
    expect(parseCertificateVerify(serializeCertificateVerify(cv))).to.deep.equal(cv);
    expect(parseCertificateVerify(hex('0403 0010 00'))).to.equal(undefined);
    expect(parseU16List(hex('0004 0017 0018'))).to.deep.equal([23, 24]);
    expect(parseU16List(hex('0003 001700'))).to.equal(undefined);
    expect(parseU8List(hex('02 00 02'))).to.deep.equal([0, 2]);
    expect(parseU8List(hex('00'))).to.equal(undefined);
  });
});

describe('dtls/server ECDHE_ECDSA with raw public keys (in memory)', function () {
  this.timeout(15000);
  const serverPair = generateServerKeyPair();
  const dev = clientKey();
  const harnesses: Harness[] = [];
  const looked: Buffer[] = [];
  afterEach(() => {
    harnesses.splice(0).forEach((h) => h.close());
    looked.length = 0;
  });
  const make = (opts: Partial<DtlsServerOptions> = {}, accept: (spki: Buffer) => boolean = (s) => s.equals(Buffer.from(dev.publicKey))): Harness => {
    const h = new Harness({ 'dev-1': Buffer.alloc(16, 7) }, {
      serverKey: serverPair,
      rpkLookup: async (spki) => {
        looked.push(spki);
        return accept(spki);
      },
      ...opts,
    });
    harnesses.push(h);
    return h;
  };
  const rpkOpts: PskClientOptions = { rpk: dev, cipherSuites: [0xc0ae] };

  for (const [suite, name] of [[0xc0ae, 'CCM_8'], [0xc023, 'CBC_SHA256'], [0xc02b, 'GCM'], [0xc0ac, 'CCM']] as const) {
    for (const ems of [true, false]) {
      it(`completes an ECDHE_ECDSA handshake with ${name} (${ems ? 'with' : 'without'} EMS), RPK both ways, data both ways`, async () => {
        const h = make();
        const peer = Harness.peer(6000);
        const c = await h.connect(peer, { ...rpkOpts, cipherSuites: [suite], extendedMasterSecret: ems });
        expect(c.alerts).to.deep.equal([]);
        expect(c.state).to.equal('established');
        expect(c.suite!.id).to.equal(suite);
        expect(c.ems).to.equal(ems);
        expect(c.serverSpki).to.deep.equal(Buffer.from(serverPair.publicKey));
        expect(c.serverSignatureValid).to.equal(true);
        // The signed data laid out by hand (dtls.md §3.4), not by the serializer under test.
        const ske = c.serverKeyExchange!;
        expect(ske.namedCurve).to.equal(0x0017);
        expect(ske.signatureAlgorithm).to.equal(0x0403);
        const signed = Buffer.concat([c.clientHello().random, c.serverRandomBytes, hex('03 0017 41'), ske.publicPoint]);
        expect(verify('sha256', signed, { key: createPublicKey({ key: Buffer.from(serverPair.publicKey), format: 'der', type: 'spki' }), dsaEncoding: 'der' }, ske.signature)).to.equal(true);
        expect(c.certificateRequest).to.deep.equal({ certificateTypes: [64], signatureAlgorithms: [0x0403], certificateAuthorities: Buffer.alloc(0) });
        expect(findExtension(c.serverExtensions, ExtensionType.clientCertificateType)?.data).to.deep.equal(Buffer.from([CertificateType.rawPublicKey]));
        expect(findExtension(c.serverExtensions, ExtensionType.serverCertificateType)?.data).to.deep.equal(Buffer.from([CertificateType.rawPublicKey]));
        expect(findExtension(c.serverExtensions, ExtensionType.ecPointFormats)?.data).to.deep.equal(hex('0100'));
        expect(looked).to.deep.equal([Buffer.from(dev.publicKey)]);
        h.input(peer, [c.send(Buffer.from('ping'))]);
        expect(h.delivered.map((d) => d.data.toString())).to.deep.equal(['ping']);
        expect(h.delivered[0]!.peerIdentity).to.deep.equal({ type: 'rpk', publicKey: Buffer.from(dev.publicKey) });
        expect(h.server.send(Buffer.from('pong'), peer.address, peer.port)).to.equal(true);
        for (const d of h.take(peer)) c.receive(d);
        expect(c.received.map((b) => b.toString())).to.deep.equal(['pong']);
        const est = h.diagnostics.find((d) => d.kind === 'established');
        expect(est).to.deep.include({ identityType: 'rpk', identity: Buffer.from(dev.publicKey) });
        expect(h.server.stats()).to.deep.include({ sessions: 1, handshaking: 0, handshakesCompleted: 1 });
      });
    }
  }

  it('the same server still does PSK, and prefers the suite order it is configured with', async () => {
    const h = make();
    const psk = await h.connect(Harness.peer(6001), { identity: Buffer.from('dev-1'), psk: Buffer.alloc(16, 7), cipherSuites: [0xc0a8] });
    expect(psk.state).to.equal('established');
    expect(h.delivered).to.deep.equal([]);
    const h2 = make({ cipherSuites: [0xc0ae, 0xc0a8] });
    const both = await h2.connect(Harness.peer(6002), { ...rpkOpts, identity: Buffer.from('dev-1'), psk: Buffer.alloc(16, 7), cipherSuites: [0xc0a8, 0xc0ae] });
    expect(both.suite!.id).to.equal(0xc0ae);
  });

  it('an unenrolled raw public key → fatal certificate_unknown after the lookup, state freed', async () => {
    const h = make({}, () => false);
    const stranger = clientKey();
    const c = await h.connect(Harness.peer(6003), { ...rpkOpts, rpk: stranger });
    expect(c.alerts).to.deep.equal([{ level: AlertLevel.fatal, description: AlertDescription.certificateUnknown }]);
    expect(looked).to.deep.equal([Buffer.from(stranger.publicKey)]);
    expect(h.server.stats()).to.deep.include({ handshaking: 0, sessions: 0, handshakesFailed: 1 });
  });

  it('a lookup that throws ends the handshake with internal_error', async () => {
    const h = make({}, () => {
      throw new Error('store down');
    });
    const c = await h.connect(Harness.peer(6004), rpkOpts);
    expect(c.alerts).to.deep.equal([{ level: AlertLevel.fatal, description: AlertDescription.internalError }]);
    expect(h.diagnostics.find((d) => d.kind === 'closed')).to.deep.include({ reason: 'alert_sent' });
  });

  it('a CertificateVerify that does not verify, or a stolen public key signed with another key → decrypt_error, no lookup', async () => {
    for (const bad of [{ badCertificateVerify: true }, { signWith: clientKey().privateKey }]) {
      const h = make();
      const c = await h.connect(Harness.peer(6005), { ...rpkOpts, ...bad });
      expect(c.alerts).to.deep.equal([{ level: AlertLevel.fatal, description: AlertDescription.decryptError }]);
      expect(looked).to.deep.equal([]);
      expect(h.server.stats()).to.deep.include({ handshaking: 0, sessions: 0 });
    }
  });

  it('no client certificate → handshake_failure; a bad ECDH point → illegal_parameter; a non-P-256 key → bad_certificate', async () => {
    const p384 = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
    const offCurve = Buffer.concat([Buffer.from([4]), Buffer.alloc(64, 1)]);
    const cases: [Partial<PskClientOptions>, number][] = [
      [{ noCertificate: true }, AlertDescription.handshakeFailure],
      [{ ecdhPoint: offCurve }, AlertDescription.illegalParameter],
      [{ rpk: { publicKey: p384.publicKey.export({ format: 'der', type: 'spki' }), privateKey: p384.privateKey } }, AlertDescription.badCertificate],
    ];
    for (const [opts, alert] of cases) {
      const h = make();
      const c = await h.connect(Harness.peer(6006), { ...rpkOpts, ...opts });
      expect(c.alerts, JSON.stringify(Object.keys(opts))).to.deep.equal([{ level: AlertLevel.fatal, description: alert }]);
      expect(looked).to.deep.equal([]);
      expect(h.server.stats()).to.deep.include({ handshaking: 0, sessions: 0 });
    }
  });

  it('refuses statelessly what it cannot do: X.509 (unsupported_certificate), other curves, point formats, signature algorithms', async () => {
    const cases: [Partial<PskClientOptions>, number][] = [
      [{ clientCertificateTypes: null }, AlertDescription.unsupportedCertificate],
      [{ serverCertificateTypes: null }, AlertDescription.unsupportedCertificate],
      [{ serverCertificateTypes: [CertificateType.x509] }, AlertDescription.unsupportedCertificate],
      [{ clientCertificateTypes: [CertificateType.x509] }, AlertDescription.unsupportedCertificate],
      [{ groups: [0x0018, 0x001d] }, AlertDescription.handshakeFailure],
      [{ pointFormats: [1] }, AlertDescription.handshakeFailure],
      [{ signatureAlgorithms: [0x0401, 0x0503] }, AlertDescription.handshakeFailure],
    ];
    for (const [opts, alert] of cases) {
      const h = make();
      const c = await h.connect(Harness.peer(6007), { ...rpkOpts, ...opts });
      expect(c.alerts, JSON.stringify(opts)).to.deep.equal([{ level: AlertLevel.fatal, description: alert }]);
      expect(h.server.stats()).to.deep.include({ handshaking: 0, sessions: 0, handshakesStarted: 0, handshakesRefused: 1 });
    }
  });

  it('without ec_point_formats, supported_groups and signature_algorithms from the client it still negotiates (RFC 8422 defaults) and echoes no point formats', async () => {
    const h = make();
    const c = await h.connect(Harness.peer(6008), { ...rpkOpts, groups: null, pointFormats: null, signatureAlgorithms: null });
    expect(c.state).to.equal('established');
    expect(findExtension(c.serverExtensions, ExtensionType.ecPointFormats)).to.equal(undefined);
  });

  it('completes with a fragmented and reordered flight 5 (Finished and CertificateVerify before Certificate)', async () => {
    const h = make();
    const peer = Harness.peer(6009);
    const c = new PskClient(rpkOpts);
    let up = c.hello();
    let reversed = 0;
    for (let round = 0; round < 20 && c.state !== 'established'; round++) {
      if (c.state === 'key_exchange_sent' && reversed === 0) {
        reversed = up.length;
        up = [...up].reverse();
      }
      h.input(peer, up);
      await tick();
      await tick();
      up = h.take(peer).flatMap((d) => c.receive(d));
      if (c.helloVerifyRequests === 1) c.maxDatagram = 120; // flight 5 in many small fragments (the ClientHellos stay whole)
    }
    expect(reversed).to.be.greaterThan(3);
    expect(c.state).to.equal('established');
    expect(h.server.stats()).to.deep.include({ sessions: 1, handshaking: 0 });
  });

  it('fuzz: mutated ECDHE flight-5 datagrams (Certificate, ClientKeyExchange, CertificateVerify) never throw; the books balance', async () => {
    const h = make();
    let port = 9000;
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), fc.nat(), async (flips, which) => {
        const peer = Harness.peer(port++);
        await mutatedThenGenuineFlight5(h, peer, new PskClient(rpkOpts), which, flips, port - 9000, 160);
      }),
      { numRuns: 150 },
    );
    expect(h.server.stats().handshakesCompleted).to.be.greaterThan(0);
  });

  it('configuration: serverKey without rpkLookup, an ECDHE suite without a key, a PSK suite without pskLookup → RangeError', () => {
    const io = { send: (): void => undefined, deliver: (): void => undefined };
    const rpkLookup = async (): Promise<boolean> => true;
    expect(() => new DtlsServer({ serverKey: serverPair }, io)).to.throw(RangeError, /rpkLookup/);
    expect(() => new DtlsServer({ pskLookup: async () => undefined, cipherSuites: [0xc0ae] }, io)).to.throw(RangeError, /serverKey/);
    expect(() => new DtlsServer({ serverKey: serverPair, rpkLookup, cipherSuites: [0xc0a8] }, io)).to.throw(RangeError, /pskLookup/);
    expect(() => new DtlsServer({}, io)).to.throw(RangeError, /no cipher suites/);
    const onlyRpk = new DtlsServer({ serverKey: serverPair, rpkLookup }, io);
    onlyRpk.close();
  });

  it('an RPK-only server refuses a PSK-only client with handshake_failure', async () => {
    const h = new Harness({}, { serverKey: serverPair, rpkLookup: async () => true, pskLookup: undefined });
    harnesses.push(h);
    const c = await h.connect(Harness.peer(6011), { identity: Buffer.from('dev-1'), psk: Buffer.alloc(16, 7), cipherSuites: [0xc0a8] });
    expect(c.alerts).to.deep.equal([{ level: AlertLevel.fatal, description: AlertDescription.handshakeFailure }]);
  });
});

describe('dtls/DtlsEndpoint with raw public keys over UDP', function () {
  this.timeout(15000);
  it('delivers { type: rpk, publicKey } to message listeners and encrypts replies', async () => {
    const serverPair = generateServerKeyPair();
    const dev = clientKey();
    const ep = await DtlsEndpoint.create({
      host: '127.0.0.1', port: 0, serverKey: serverPair, rpkLookup: async (spki) => spki.equals(Buffer.from(dev.publicKey)),
      retransmit: { initialMs: 200, maxMs: 1000 },
    });
    const c = await UdpPskClient.open(ep.address().port, { rpk: dev, cipherSuites: [0xc0ae] });
    try {
      const got: [string, PeerInfo][] = [];
      ep.on('message', (m, p) => got.push([m.toString(), p]));
      await c.handshake();
      c.send(Buffer.from('hello'));
      await c.until(() => got.length === 1);
      expect(got[0]![0]).to.equal('hello');
      expect(got[0]![1].identity).to.deep.equal({ type: 'rpk', publicKey: Buffer.from(dev.publicKey) });
      const err = await new Promise<Error | null>((resolve) => ep.send(Buffer.from('world'), c.localPort, '127.0.0.1', resolve));
      expect(err).to.equal(null);
      await c.until(() => c.client.received.length === 1);
      expect(c.client.received[0]!.toString()).to.equal('world');
    } finally {
      await c.close();
      await ep.close();
    }
  });
});
