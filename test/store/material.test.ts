/**
 * Key material checks of the store (material.ts): the canonical P-256 SPKI fast path of
 * normalizeSpki must agree with node:crypto (OpenSSL) on what is a valid key, and checkPkcs8 skips
 * its parse only for the very key objects lwbs generated itself.
 */
import { expect } from 'chai';
import { createECDH, createPublicKey, generateKeyPairSync } from 'node:crypto';
import fc from 'fast-check';
import { generateRpkKeyPair } from '../../src/bootstrap/credentials.js';
import { StoreError } from '../../src/store/errors.js';
import { checkPkcs8, isCanonicalP256Spki, markGeneratedPkcs8, normalizeSpki } from '../../src/store/material.js';

/** RFC 5480 SubjectPublicKeyInfo for id-ecPublicKey / prime256v1, up to the BIT STRING contents (objects.md §2.1). */
const UNCOMPRESSED_PREFIX = Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex');
const COMPRESSED_PREFIX = Buffer.from('3039301306072a8648ce3d020106082a8648ce3d030107032200', 'hex');
/** The P-256 field prime (SEC 2 §2.4.2). */
const P = Buffer.from('ffffffff00000001000000000000000000000000ffffffffffffffffffffffff', 'hex');

function nodeSpki(): Buffer {
  return generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey.export({ format: 'der', type: 'spki' });
}

/** Whether OpenSSL accepts the bytes as a public key. */
function nodeAccepts(der: Buffer): boolean {
  try {
    createPublicKey({ key: der, format: 'der', type: 'spki' });
    return true;
  } catch {
    return false;
  }
}

function expectInvalid(f: () => unknown, field: string): void {
  let caught: unknown;
  try {
    f();
  } catch (e) {
    caught = e;
  }
  expect(caught).to.be.instanceOf(StoreError);
  expect((caught as StoreError).code).to.equal('invalid');
  expect((caught as StoreError).field).to.equal(field);
}

describe('store/material: public keys', () => {
  it('a canonical P-256 SPKI made by node:crypto is recognised and returned as an equal copy', () => {
    for (let i = 0; i < 20; i++) {
      const spki = nodeSpki();
      expect(isCanonicalP256Spki(spki)).to.equal(true);
      const out = normalizeSpki(spki);
      expect(out.equals(spki)).to.equal(true);
      out[out.length - 1] ^= 1;
      expect(out.equals(spki)).to.equal(false); // a copy
    }
  });

  it('a compressed point is not canonical and still normalizes to node:crypto\'s uncompressed SPKI', () => {
    const ecdh = createECDH('prime256v1');
    ecdh.generateKeys();
    const compressed = Buffer.concat([COMPRESSED_PREFIX, ecdh.getPublicKey(undefined, 'compressed')]);
    const expected = Buffer.concat([UNCOMPRESSED_PREFIX, ecdh.getPublicKey()]);
    expect(isCanonicalP256Spki(compressed)).to.equal(false);
    expect(normalizeSpki(compressed).equals(expected)).to.equal(true);
  });

  it('a point off the curve in the canonical layout is refused, as OpenSSL refuses it', () => {
    const spki = nodeSpki();
    const off = Buffer.from(spki);
    off[off.length - 1] ^= 1; // y changed: y² ≠ x³ - 3x + b
    expect(nodeAccepts(off)).to.equal(false);
    expect(isCanonicalP256Spki(off)).to.equal(false);
    expectInvalid(() => normalizeSpki(off, 'rpkPublicKey'), 'rpkPublicKey');
  });

  it('coordinates not below the field prime are refused', () => {
    const spki = nodeSpki();
    const x = Buffer.from(spki);
    P.copy(x, UNCOMPRESSED_PREFIX.length + 1);
    expect(isCanonicalP256Spki(x)).to.equal(false);
    expectInvalid(() => normalizeSpki(x), 'publicKey');
    const y = Buffer.from(spki);
    P.copy(y, UNCOMPRESSED_PREFIX.length + 33);
    expect(isCanonicalP256Spki(y)).to.equal(false);
    expectInvalid(() => normalizeSpki(y), 'publicKey');
  });

  it('agrees with OpenSSL on random points and on real keys with a flipped bit', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 64, maxLength: 64 }), (xy) => {
        const der = Buffer.concat([UNCOMPRESSED_PREFIX, Buffer.from([4]), xy]);
        expect(isCanonicalP256Spki(der)).to.equal(nodeAccepts(der));
      }),
      { numRuns: 200 },
    );
    const keys = Array.from({ length: 8 }, nodeSpki);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 7 }), fc.integer({ min: 0, max: 90 * 8 - 1 }), (k, bit) => {
        const der = Buffer.from(keys[k]!);
        der[1 + (bit >> 3)] ^= 1 << (bit & 7);
        if (isCanonicalP256Spki(der)) expect(nodeAccepts(der)).to.equal(true);
        // Whatever the fast path says, normalizeSpki refuses exactly what OpenSSL cannot read.
        let ok = true;
        try {
          normalizeSpki(der);
        } catch {
          ok = false;
        }
        expect(ok).to.equal(nodeAccepts(der));
      }),
      { numRuns: 300 },
    );
  });

  it('other lengths and prefixes are not canonical (a P-384 key is normalized by node:crypto)', () => {
    const spki = nodeSpki();
    expect(isCanonicalP256Spki(spki.subarray(0, 90))).to.equal(false);
    expect(isCanonicalP256Spki(Buffer.concat([spki, Buffer.from([0])]))).to.equal(false);
    const p384 = generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).publicKey.export({ format: 'der', type: 'spki' });
    expect(isCanonicalP256Spki(p384)).to.equal(false);
    expect(normalizeSpki(p384).equals(p384)).to.equal(true);
  });
});

describe('store/material: checkPkcs8 and keys lwbs generated', () => {
  it('a generated key passes (marked), and an unmarked copy of it passes the full check', () => {
    const kp = generateRpkKeyPair();
    const der = kp.pkcs8.reveal();
    expect(checkPkcs8(der).equals(Buffer.from(der))).to.equal(true);
    expect(() => checkPkcs8(Buffer.from(der))).to.not.throw(); // an unmarked copy is parsed, and valid
  });

  it('the mark is the object: a byte-equal copy of marked bytes is checked in full', () => {
    const junk = new Uint8Array(Buffer.from('not a private key at all'));
    markGeneratedPkcs8(junk);
    // Marked: not parsed (which shows the parse is skipped; real callers mark only keys they built).
    expect(checkPkcs8(junk).length).to.equal(junk.length);
    expectInvalid(() => checkPkcs8(new Uint8Array(junk)), 'privateKey');
    expectInvalid(() => checkPkcs8(Buffer.from(junk), 'res5'), 'res5');
  });

  it('a marked key changed after marking is checked in full', () => {
    const der = new Uint8Array(generateRpkKeyPair().pkcs8.reveal());
    markGeneratedPkcs8(der);
    der[0] = 0x31; // no longer a SEQUENCE
    expectInvalid(() => checkPkcs8(der), 'privateKey');
  });

  it('user-supplied garbage is refused without quoting it', () => {
    let caught: unknown;
    try {
      checkPkcs8(Buffer.from('secret-looking-bytes'));
    } catch (e) {
      caught = e;
    }
    expect(caught).to.be.instanceOf(StoreError);
    expect((caught as Error).message).to.not.include('secret-looking');
  });
});
