import { createPrivateKey, createPublicKey, generateKeyPairSync, sign as nodeSign, verify as nodeVerify } from 'node:crypto';
import { format, inspect } from 'node:util';
import { p256 } from '@noble/curves/nist.js';
import { expect } from 'chai';
import fc from 'fast-check';
import {
  CredentialError,
  encodeP256Pkcs8,
  encodeP256Spki,
  expandIdentityTemplate,
  generateCredentials,
  generatePsk,
  generateRpk,
  generateRpkKeyPair,
  keyPairFromScalar,
  parseIdentityTemplate,
  parseP256PrivateKey,
  parseP256PublicKey,
  pskCredential,
  rpkCredential,
  Secret,
  secretEquals,
  splitDer,
} from '../../src/bootstrap/credentials.js';
import { parseProfile } from '../../src/bootstrap/profile.js';
import { hex, toHex } from '../support/arbitraries.js';

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

function credentialError(fn: () => unknown): CredentialError {
  try {
    fn();
  } catch (e) {
    expect(e).to.be.instanceOf(CredentialError);
    return e as CredentialError;
  }
  throw new Error('expected a CredentialError');
}

// objects.md §2.1, typed from the digest (not from our encoder).
const SPKI_PREFIX = '3059301306072a8648ce3d020106082a8648ce3d03010703420004';
const PKCS8_PREFIX = '308187020100301306072a8648ce3d020106082a8648ce3d030107046d306b0201010420';
const PKCS8_MIDDLE = 'a14403420004';
const SEC1_PREFIX = '30770201010420';
const SEC1_MIDDLE = 'a00a06082a8648ce3d030107a14403420004';

describe('bootstrap credentials', () => {
  describe('Secret', () => {
    const bytes = hex('00112233445566778899aabbccddeeff');
    const s = new Secret(bytes);
    const leaks = (text: string): boolean => text.includes('00112233') || text.includes('0, 17, 34') || text.includes('ABEiM0RV');

    it('reveal() gives the value back', () => {
      expect(s.reveal()).to.equal(bytes);
    });

    it('prints [secret] in template strings, String(), concatenation and JSON', () => {
      expect(`${s}`).to.equal('[secret]');
      expect(String(s)).to.equal('[secret]');
      expect('k=' + s).to.equal('k=[secret]');
      expect(JSON.stringify({ key: s })).to.equal('{"key":"[secret]"}');
    });

    it('prints [secret] in util.inspect, util.format and nested objects', () => {
      expect(inspect(s)).to.equal('[secret]');
      const cred = pskCredential(utf8('dev'), bytes);
      const shown = [inspect(cred, { depth: 10, showHidden: true }), format('%s %o %O %j', s, cred, cred, cred), inspect({ a: [{ b: cred }] }, { depth: 10 })];
      for (const text of shown) {
        expect(leaks(text), text).to.equal(false);
        expect(text).to.include('[secret]');
      }
    });

    it('has no enumerable own property holding the value', () => {
      expect(Object.keys(s)).to.deep.equal([]);
      expect(JSON.stringify({ ...s })).to.equal('{}');
    });

    it('compares in constant time by content', () => {
      expect(secretEquals(new Secret(hex('0102')), new Secret(hex('0102')))).to.equal(true);
      expect(secretEquals(new Secret(hex('0102')), new Secret(hex('0103')))).to.equal(false);
      expect(secretEquals(new Secret(hex('0102')), new Secret(hex('010203')))).to.equal(false);
    });
  });

  describe('PSK generation and identity templates', () => {
    it('defaults to the endpoint name and a random 16-byte key', () => {
      const a = generatePsk('urn:imei:490154203237518');
      const b = generatePsk('urn:imei:490154203237518');
      expect(a.mode).to.equal('psk');
      expect(new TextDecoder().decode(a.identity)).to.equal('urn:imei:490154203237518');
      expect(a.key.reveal().length).to.equal(16);
      expect(secretEquals(a.key, b.key), 'two generated keys are equal').to.equal(false);
    });

    it('expands {endpoint}, {ssid} and escaped braces', () => {
      expect(new TextDecoder().decode(expandIdentityTemplate('{endpoint}@{ssid}', 'dev-1', 7))).to.equal('dev-1@7');
      expect(new TextDecoder().decode(expandIdentityTemplate('{{x}}-{endpoint}', 'ep'))).to.equal('{x}-ep');
      expect(new TextDecoder().decode(expandIdentityTemplate('fleet/{endpoint}', 'ep'))).to.equal('fleet/ep');
    });

    it('inserts a binary endpoint name byte for byte', () => {
      const ep = hex('00ff10');
      expect(toHex(expandIdentityTemplate('id:{endpoint}', ep))).to.equal(toHex(utf8('id:')) + '00ff10');
    });

    it('{random} gives 16 fresh hex digits', () => {
      const a = new TextDecoder().decode(expandIdentityTemplate('{endpoint}-{random}', 'ep'));
      const b = new TextDecoder().decode(expandIdentityTemplate('{endpoint}-{random}', 'ep'));
      expect(a).to.match(/^ep-[0-9a-f]{16}$/);
      expect(a).to.not.equal(b);
    });

    it('refuses unknown placeholders, unbalanced braces and empty templates', () => {
      expect(credentialError(() => parseIdentityTemplate('{imei}')).message).to.include('unknown placeholder {imei}');
      expect(credentialError(() => parseIdentityTemplate('a{endpoint')).message).to.include('unclosed');
      expect(credentialError(() => parseIdentityTemplate('a}b')).message).to.include('stray');
      expect(credentialError(() => parseIdentityTemplate('')).message).to.include('empty');
    });

    it('refuses identities that are empty or longer than 128 bytes', () => {
      expect(credentialError(() => generatePsk('')).message).to.include('empty');
      expect(credentialError(() => generatePsk('x'.repeat(129))).message).to.include('129 bytes');
      expect(generatePsk('x'.repeat(128)).identity.length).to.equal(128);
      expect(credentialError(() => expandIdentityTemplate('{ssid}', 'ep')).message).to.include('{ssid}');
    });

    it('pskCredential checks stored sizes', () => {
      expect(pskCredential(utf8('a'), new Uint8Array(64)).key.reveal().length).to.equal(64);
      credentialError(() => pskCredential(new Uint8Array(0), new Uint8Array(16)));
      credentialError(() => pskCredential(utf8('a'), new Uint8Array(65)));
    });
  });

  describe('P-256 key pairs (RPK)', () => {
    it('SubjectPublicKeyInfo is 91 bytes with the objects.md §2.1 prefix', () => {
      const kp = generateRpkKeyPair();
      expect(kp.spki.length).to.equal(91);
      expect(toHex(kp.spki.subarray(0, 27))).to.equal(SPKI_PREFIX);
      expect(toHex(kp.spki.subarray(26))).to.equal(toHex(kp.publicPoint));
      expect(kp.publicPoint.length).to.equal(65);
    });

    it('PKCS#8 is 138 bytes: prefix, scalar, public key tag, point', () => {
      const kp = generateRpkKeyPair();
      const der = kp.pkcs8.reveal();
      expect(der.length).to.equal(138);
      expect(toHex(der.subarray(0, 36))).to.equal(PKCS8_PREFIX);
      expect(toHex(der.subarray(36, 68))).to.equal(toHex(kp.scalar.reveal()));
      expect(toHex(der.subarray(68, 74))).to.equal(PKCS8_MIDDLE);
      expect(toHex(der.subarray(73))).to.equal(toHex(kp.publicPoint));
    });

    it('node:crypto accepts both encodings and sees the same key', () => {
      const kp = generateRpkKeyPair();
      const pub = createPublicKey({ key: Buffer.from(kp.spki), format: 'der', type: 'spki' });
      const priv = createPrivateKey({ key: Buffer.from(kp.pkcs8.reveal()), format: 'der', type: 'pkcs8' });
      expect(pub.asymmetricKeyType).to.equal('ec');
      expect(pub.asymmetricKeyDetails?.namedCurve).to.equal('prime256v1');
      // node derives the public key from our PKCS#8 and re-encodes it exactly as we did
      expect(toHex(createPublicKey(priv).export({ format: 'der', type: 'spki' }))).to.equal(toHex(kp.spki));
      // and its own PKCS#8 encoding of the key is byte for byte ours
      expect(toHex(priv.export({ format: 'der', type: 'pkcs8' }))).to.equal(toHex(kp.pkcs8.reveal()));
    });

    it('a signature made with noble verifies with node:crypto, and the other way round', () => {
      const kp = generateRpkKeyPair();
      const msg = utf8('bootstrap me');
      const sig = p256.sign(msg, kp.scalar.reveal()); // sha256 prehash, compact r||s
      const pub = { key: Buffer.from(kp.spki), format: 'der' as const, type: 'spki' as const, dsaEncoding: 'ieee-p1363' as const };
      expect(nodeVerify('sha256', msg, pub, sig)).to.equal(true);
      expect(nodeVerify('sha256', utf8('bootstrap you'), pub, sig)).to.equal(false);
      const priv = { key: Buffer.from(kp.pkcs8.reveal()), format: 'der' as const, type: 'pkcs8' as const, dsaEncoding: 'ieee-p1363' as const };
      const nsig = nodeSign('sha256', msg, priv);
      expect(p256.verify(nsig, msg, kp.publicPoint, { lowS: false })).to.equal(true);
    });

    it('generated pairs differ', () => {
      expect(toHex(generateRpkKeyPair().spki)).to.not.equal(toHex(generateRpkKeyPair().spki));
    });

    it('the public point is the scalar times G (checked with @noble/curves), for many generated pairs', () => {
      for (let i = 0; i < 50; i++) {
        const kp = generateRpkKeyPair();
        const scalar = kp.scalar.reveal();
        expect(scalar.length).to.equal(32);
        expect(p256.utils.isValidSecretKey(scalar)).to.equal(true);
        expect(toHex(p256.getPublicKey(scalar, false))).to.equal(toHex(kp.publicPoint));
      }
    });

    it('generateRpk gives the Security object encodings', () => {
      const c = generateRpk();
      expect(c.mode).to.equal('rpk');
      expect(c.publicKey.length).to.equal(91);
      expect(c.privateKey.reveal().length).to.equal(138);
      expect(inspect(c)).to.not.include(toHex(c.privateKey.reveal()).slice(0, 16));
    });

    it('parses node-made SEC1 (121 bytes) and PKCS#8 to the same canonical PKCS#8', () => {
      const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const sec1 = new Uint8Array(privateKey.export({ format: 'der', type: 'sec1' }));
      const pkcs8 = new Uint8Array(privateKey.export({ format: 'der', type: 'pkcs8' }));
      expect(sec1.length).to.equal(121);
      expect(toHex(sec1.subarray(0, 7))).to.equal(SEC1_PREFIX);
      expect(toHex(sec1.subarray(39, 57))).to.equal(SEC1_MIDDLE);
      const a = parseP256PrivateKey(sec1);
      const b = parseP256PrivateKey(pkcs8);
      expect(toHex(a.pkcs8.reveal())).to.equal(toHex(pkcs8));
      expect(toHex(b.pkcs8.reveal())).to.equal(toHex(pkcs8));
      expect(toHex(a.publicPoint)).to.equal(toHex(b.publicPoint));
    });

    it('parses a minimal SEC1 key without curve parameters or public key', () => {
      const kp = generateRpkKeyPair();
      const der = hex('30250201010420' + toHex(kp.scalar.reveal()));
      expect(toHex(parseP256PrivateKey(der).pkcs8.reveal())).to.equal(toHex(kp.pkcs8.reveal()));
    });

    it('reads public keys as SPKI, bare uncompressed and compressed points', () => {
      const kp = generateRpkKeyPair();
      const compressed = new Uint8Array(p256.getPublicKey(kp.scalar.reveal(), true));
      for (const form of [kp.spki, kp.publicPoint, compressed]) expect(toHex(parseP256PublicKey(form))).to.equal(toHex(kp.publicPoint));
      const compressedSpki = hex('3039301306072a8648ce3d020106082a8648ce3d030107032200' + toHex(compressed));
      expect(toHex(parseP256PublicKey(compressedSpki))).to.equal(toHex(kp.publicPoint));
    });

    it('refuses other curves, points off the curve, mismatched halves and truncation', () => {
      const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' });
      expect(credentialError(() => parseP256PublicKey(new Uint8Array(p384.publicKey.export({ format: 'der', type: 'spki' })))).message).to.include('P-256');
      expect(credentialError(() => parseP256PrivateKey(new Uint8Array(p384.privateKey.export({ format: 'der', type: 'pkcs8' })))).message).to.include('P-256');
      const kp = generateRpkKeyPair();
      const bad = kp.spki.slice();
      bad[90] = bad[90]! ^ 1;
      expect(credentialError(() => parseP256PublicKey(bad)).message).to.include('not a valid P-256 point');
      expect(credentialError(() => parseP256PublicKey(kp.spki.subarray(0, 60))).message).to.include('truncated');
      const other = generateRpkKeyPair();
      expect(credentialError(() => rpkCredential(other.spki, kp.pkcs8.reveal())).message).to.include('does not belong');
      const mixed = encodeP256Pkcs8(kp.scalar.reveal(), other.publicPoint);
      expect(credentialError(() => parseP256PrivateKey(mixed)).message).to.include('does not match');
      credentialError(() => keyPairFromScalar(new Uint8Array(32))); // zero is no scalar
      credentialError(() => encodeP256Spki(new Uint8Array(64)));
    });

    it('never leaks key bytes in error messages', () => {
      const kp = generateRpkKeyPair();
      const broken = kp.pkcs8.reveal().slice(0, 100);
      const e = credentialError(() => parseP256PrivateKey(broken));
      expect(e.message).to.not.include(toHex(kp.scalar.reveal()).slice(0, 8));
    });

    it('rpkCredential accepts stored DER', () => {
      const kp = generateRpkKeyPair();
      const c = rpkCredential(kp.spki, kp.pkcs8.reveal());
      expect(toHex(c.publicKey)).to.equal(toHex(kp.spki));
    });

    it('random and mutated DER only ever throws CredentialError', () => {
      const kp = generateRpkKeyPair();
      const seeds = [kp.spki, kp.pkcs8.reveal()];
      fc.assert(
        fc.property(fc.constantFrom(...seeds), fc.array(fc.tuple(fc.nat(200), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }), fc.nat(140), (seed, edits, cut) => {
          const b = seed.slice(0, Math.max(1, cut));
          for (const [i, v] of edits) if (i < b.length) b[i] = v;
          for (const f of [parseP256PublicKey, parseP256PrivateKey]) {
            try {
              f(b);
            } catch (e) {
              if (!(e instanceof CredentialError)) throw e;
            }
          }
        }),
        { numRuns: 300 },
      );
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 200 }), (b) => {
          for (const f of [parseP256PublicKey, parseP256PrivateKey, (x: Uint8Array) => splitDer(x, 'x')]) {
            try {
              f(b);
            } catch (e) {
              if (!(e instanceof CredentialError)) throw e;
            }
          }
        }),
        { numRuns: 300 },
      );
    });
  });

  describe('generateCredentials', () => {
    it('makes one credential per generating server and one for the bootstrap account', () => {
      const kp = generateRpkKeyPair();
      const profile = parseProfile({
        name: 'gen',
        bootstrapAccount: { uri: 'coaps://bs.example.com', security: { mode: 'psk', generate: true, identityTemplate: 'bs-{endpoint}' } },
        servers: [
          { shortServerId: 1, handOff: true, security: { mode: 'psk', identityTemplate: '{endpoint}#{ssid}' } },
          { shortServerId: 2, uri: 'coaps://dm.example.com', security: { mode: 'rpk', generate: true, serverPublicKey: Buffer.from(kp.spki).toString('base64') } },
          { shortServerId: 3, uri: 'coap://plain.example.com', security: { mode: 'nosec' } },
        ],
        lwm2mVersions: ['1.1'],
        acl: [],
      });
      const c = generateCredentials(profile, 'ep1');
      expect([...c.servers.keys()]).to.deep.equal([1, 2]);
      const s1 = c.servers.get(1)!;
      expect(s1.mode).to.equal('psk');
      if (s1.mode === 'psk') expect(new TextDecoder().decode(s1.identity)).to.equal('ep1#1');
      expect(c.servers.get(2)!.mode).to.equal('rpk');
      expect(c.bootstrap?.mode).to.equal('psk');
      if (c.bootstrap?.mode === 'psk') expect(new TextDecoder().decode(c.bootstrap.identity)).to.equal('bs-ep1');
      expect(JSON.stringify({ bs: c.bootstrap, s: [...c.servers.values()] })).to.not.match(/"key":"[0-9a-f]/);
    });
  });
});
