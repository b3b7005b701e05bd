import { expect } from 'chai';
import Database from 'better-sqlite3';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeP256Spki, generateRpkKeyPair } from '../../src/bootstrap/credentials.js';
import { DB_FILE } from '../../src/store/db.js';
import { REGISTRATION_SERVER_KEY } from '../../src/store/server-keys.js';
import type { SqliteStore } from '../../src/store/store.js';
import type { ServerKeyPairInput } from '../../src/store/types.js';
import { Clock, ecKeys, expectStoreError, open, removeDir, tempDir } from './support.js';

/** A pair from the generator the CLI and the session engine use (@noble, P-256). */
function noblePair(): ServerKeyPairInput & { readonly scalar: Buffer } {
  const kp = generateRpkKeyPair();
  return { publicKey: kp.spki, privateKey: kp.pkcs8.reveal(), scalar: Buffer.from(kp.scalar.reveal()) };
}

/** A generator that counts its calls. */
function counting(make: () => ServerKeyPairInput = noblePair): { (): ServerKeyPairInput; calls: number } {
  const f = Object.assign(() => {
    f.calls++;
    return make();
  }, { calls: 0 });
  return f;
}

/** The compressed SEC1 form of an uncompressed P-256 point. */
function compressed(point: Uint8Array): Uint8Array {
  const out = new Uint8Array(33);
  out[0] = (point[64]! & 1) === 1 ? 0x03 : 0x02;
  out.set(point.subarray(1, 33), 1);
  return out;
}

describe('store/serverKeys', () => {
  let dir: string;
  let store: SqliteStore;
  const clock = new Clock();
  beforeEach(async () => {
    dir = tempDir('lwbs-serverkeys-');
    store = await open(dir, { now: clock.now });
  });
  afterEach(async () => {
    await store.close();
    removeDir(dir);
  });

  it('getOrCreate generates once, then returns the stored pair without calling the generator', async () => {
    const gen = counting();
    const t = clock.tick();
    const first = await store.serverKeys.getOrCreate(REGISTRATION_SERVER_KEY, gen);
    expect(first.created).to.equal(true);
    expect(first.name).to.equal('registration');
    expect(first.createdAt).to.equal(t);
    expect(gen.calls).to.equal(1);
    clock.tick(100);
    const again = await store.serverKeys.getOrCreate(REGISTRATION_SERVER_KEY, gen);
    expect(gen.calls).to.equal(1);
    expect(again).to.deep.equal({ ...first, created: false });
    expect(await store.serverKeys.get('registration')).to.deep.equal({ name: 'registration', publicKey: first.publicKey, createdAt: t });
  });

  it('stores the public key as given SPKI and reveals exactly the private key given', async () => {
    const pair = noblePair();
    const r = await store.serverKeys.getOrCreate('registration', () => pair);
    expect(r.publicKey).to.deep.equal(Buffer.from(pair.publicKey));
    const priv = await store.serverKeys.revealPrivateKey('registration');
    expect(priv).to.deep.equal(Buffer.from(pair.privateKey));
    // The revealed key is usable and belongs to the public key.
    const derived = createPublicKey(createPrivateKey({ key: priv!, format: 'der', type: 'pkcs8' })).export({ format: 'der', type: 'spki' });
    expect(derived).to.deep.equal(r.publicKey);
    expect(await store.serverKeys.revealPrivateKey('nope')).to.equal(undefined);
    expect(await store.serverKeys.get('nope')).to.equal(undefined);
  });

  it('normalizes the public key (a compressed point is stored uncompressed)', async () => {
    const node = ecKeys();
    const jwk = createPublicKey({ key: node.spki, format: 'der', type: 'spki' }).export({ format: 'jwk' });
    const point = Buffer.concat([Buffer.of(4), Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url')]);
    const compressedSpki = Buffer.concat([Buffer.from('3039301306072a8648ce3d020106082a8648ce3d030107032200', 'hex'), compressed(point)]);
    const r = await store.serverKeys.getOrCreate('c', () => ({ publicKey: compressedSpki, privateKey: node.pkcs8 }));
    expect(r.publicKey).to.deep.equal(Buffer.from(encodeP256Spki(point)));
  });

  it('lists by name, never with private keys', async () => {
    await store.serverKeys.getOrCreate('zeta', noblePair);
    await store.serverKeys.getOrCreate('alpha', noblePair);
    const list = await store.serverKeys.list();
    expect(list.map((k) => k.name)).to.deep.equal(['alpha', 'zeta']);
    for (const k of list) expect(Object.keys(k).sort()).to.deep.equal(['createdAt', 'name', 'publicKey']);
  });

  it('replace rotates an existing pair (new key, new time) and refuses an unknown name', async () => {
    const old = await store.serverKeys.getOrCreate('registration', noblePair);
    const next = noblePair();
    const t = clock.tick(1000);
    const r = await store.serverKeys.replace('registration', next);
    expect(r).to.deep.equal({ name: 'registration', publicKey: Buffer.from(next.publicKey), createdAt: t });
    expect(r.publicKey.equals(old.publicKey)).to.equal(false);
    expect(await store.serverKeys.get('registration')).to.deep.equal(r);
    expect(await store.serverKeys.revealPrivateKey('registration')).to.deep.equal(Buffer.from(next.privateKey));
    await expectStoreError(store.serverKeys.replace('other', noblePair()), 'not_found', /no server key pair named "other"/, 'name');
    expect((await store.serverKeys.list()).map((k) => k.name)).to.deep.equal(['registration']);
  });

  it('refuses a private key that does not belong to the public key, and garbage, without storing anything', async () => {
    const a = noblePair();
    const b = noblePair();
    const e = await expectStoreError(store.serverKeys.getOrCreate('x', () => ({ publicKey: a.publicKey, privateKey: b.privateKey })), 'invalid', /does not belong/, 'privateKey');
    expect(e.message).to.not.include(Buffer.from(b.privateKey).toString('hex'));
    expect(e.message).to.not.include(b.scalar.toString('hex'));
    await expectStoreError(store.serverKeys.getOrCreate('x', () => ({ publicKey: Buffer.from('not a key'), privateKey: a.privateKey })), 'invalid', /SubjectPublicKeyInfo/, 'publicKey');
    await expectStoreError(store.serverKeys.getOrCreate('x', () => ({ publicKey: a.publicKey, privateKey: b.scalar })), 'invalid', /PKCS#8/, 'privateKey');
    expect(await store.serverKeys.list()).to.deep.equal([]);
    await store.serverKeys.getOrCreate('x', () => a);
    await expectStoreError(store.serverKeys.replace('x', { publicKey: b.publicKey, privateKey: a.privateKey }), 'invalid', /does not belong/);
    expect(await store.serverKeys.revealPrivateKey('x')).to.deep.equal(Buffer.from(a.privateKey));
  });

  it('refuses bad names', async () => {
    await expectStoreError(store.serverKeys.getOrCreate('', noblePair), 'invalid', /non-empty/, 'name');
    await expectStoreError(store.serverKeys.getOrCreate(' reg', noblePair), 'invalid', /surrounding spaces/, 'name');
    await expectStoreError(store.serverKeys.getOrCreate('a\u0000b', noblePair), 'invalid', /control characters/, 'name');
    await expectStoreError(store.serverKeys.replace('x'.repeat(65), noblePair()), 'invalid', /65 characters/, 'name');
    expect(await store.serverKeys.list()).to.deep.equal([]);
  });

  it('is race-safe: when another connection stores a pair first, both get that one', async () => {
    const other = await open(dir, { now: clock.now });
    try {
      let theirs: { readonly publicKey: Buffer; readonly created: boolean } | undefined;
      const mine = noblePair();
      // Our generator runs between our read and our insert; the other connection inserts right then.
      const r = await store.serverKeys.getOrCreate('registration', () => {
        void other.serverKeys.getOrCreate('registration', noblePair).then((x) => (theirs = x));
        return mine;
      });
      await Promise.resolve();
      expect(theirs?.created).to.equal(true);
      expect(r.created).to.equal(false);
      expect(r.publicKey).to.deep.equal(theirs?.publicKey);
      expect(r.publicKey.equals(Buffer.from(mine.publicKey))).to.equal(false);
      // The private key stored is the winner's, matching the stored public key.
      const priv = await store.serverKeys.revealPrivateKey('registration');
      expect(createPublicKey(createPrivateKey({ key: priv!, format: 'der', type: 'pkcs8' })).export({ format: 'der', type: 'spki' })).to.deep.equal(r.publicKey);
    } finally {
      await other.close();
    }
  });

  it('keeps the private key sealed: not in the database file, and bound to its name and public key', async () => {
    const a = noblePair();
    const b = noblePair();
    await store.serverKeys.getOrCreate('a', () => a);
    await store.serverKeys.getOrCreate('b', () => b);
    const files = (): Buffer => Buffer.concat([DB_FILE, `${DB_FILE}-wal`].filter((f) => existsSync(join(dir, f))).map((f) => readFileSync(join(dir, f))));
    let raw = files();
    expect(raw.includes(Buffer.from(a.publicKey))).to.equal(true); // the scan works: public keys are not secret
    expect(raw.includes(a.scalar)).to.equal(false);
    expect(raw.includes(b.scalar)).to.equal(false);
    await store.close();
    raw = files();
    expect(raw.includes(a.scalar)).to.equal(false);

    const db = new Database(join(dir, DB_FILE));
    // b's ciphertext under a's name; then a's public key column swapped for b's.
    db.prepare("UPDATE server_keys SET private_key_enc = (SELECT private_key_enc FROM server_keys WHERE name = 'a') WHERE name = 'b'").run();
    db.close();
    store = await open(dir, { now: clock.now });
    expect(await store.serverKeys.revealPrivateKey('a')).to.deep.equal(Buffer.from(a.privateKey));
    await expectStoreError(store.serverKeys.revealPrivateKey('b'), 'secret', /private key of server key pair "b"/);
    await store.close();
    const db2 = new Database(join(dir, DB_FILE));
    db2.prepare("UPDATE server_keys SET public_key = ? WHERE name = 'a'").run(Buffer.from(b.publicKey));
    db2.close();
    store = await open(dir, { now: clock.now });
    await expectStoreError(store.serverKeys.revealPrivateKey('a'), 'secret');
  });
});
