import { expect } from 'chai';
import Database from 'better-sqlite3';
import { existsSync, chmodSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { DB_FILE } from '../../src/store/db.js';
import { StoreError } from '../../src/store/errors.js';
import { loadSecretKey, purpose, SecretBox, SECRET_KEY_FILE } from '../../src/store/secrets.js';
import { openStore } from '../../src/store/store.js';
import { ecKeys, expectStoreError, open, OTHER_KEY_HEX, PROFILE_DOC, removeDir, tempDir, TEST_KEY_HEX } from './support.js';

const KEY = Buffer.from(TEST_KEY_HEX, 'hex');

describe('store/secrets: AES-256-GCM box', () => {
  const box = new SecretBox(KEY);
  const aad = purpose('devices', 'psk_key', Buffer.from('ep1'));

  it('seals as 0x01 || nonce(12) || ciphertext || tag(16) and opens again', () => {
    const plain = Buffer.from('0123456789abcdef');
    const sealed = box.seal(plain, aad);
    expect(sealed[0]).to.equal(0x01);
    expect(sealed.length).to.equal(1 + 12 + plain.length + 16);
    expect(sealed.includes(plain)).to.equal(false);
    expect(box.open(sealed, aad, 'x')).to.deep.equal(plain);
    // A fresh nonce each time: the same plaintext never seals the same way twice.
    expect(box.seal(plain, aad).equals(sealed)).to.equal(false);
  });

  it('round-trips any bytes (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.uint8Array({ maxLength: 40 }), (plain, p) => {
        expect(box.open(box.seal(plain, p), p, 'x')).to.deep.equal(Buffer.from(plain));
      }),
      { numRuns: 200 },
    );
  });

  it('fails with a StoreError, not the secret, under another AAD, another key, or any altered byte', async () => {
    const sealed = box.seal(Buffer.from('top secret psk!!'), aad);
    const other = purpose('devices', 'psk_key', Buffer.from('ep2'));
    const e1 = await expectStoreError(() => box.open(sealed, other, 'the PSK of "ep2"'), 'secret', /cannot decrypt the PSK of "ep2": wrong secret key, or .* moved from another row/);
    expect(e1.message).to.not.include('top secret');
    await expectStoreError(() => new SecretBox(Buffer.from(OTHER_KEY_HEX, 'hex')).open(sealed, aad, 'x'), 'secret');
    await expectStoreError(() => box.open(purpose('credentials', 'psk_key', 'ep1'), aad, 'x'), 'secret', /too short|cannot decrypt/);
    for (let i = 0; i < sealed.length; i++) {
      const t = Buffer.from(sealed);
      t[i] = (t[i]! ^ 0x01) & 0xff;
      expect(() => box.open(t, aad, 'x'), `byte ${i}`).to.throw(StoreError);
    }
    await expectStoreError(() => box.open(sealed.subarray(0, 20), aad, 'x'), 'secret', /too short/);
    const v2 = Buffer.from(sealed);
    v2[0] = 2;
    await expectStoreError(() => box.open(v2, aad, 'x'), 'secret', /unknown ciphertext format version 2/);
  });

  it('refuses a key that is not 32 bytes', async () => {
    await expectStoreError(() => new SecretBox(Buffer.alloc(16)), 'key', /32 bytes/);
  });
});

describe('store/secrets: where the key comes from', () => {
  let dir: string;
  beforeEach(() => {
    dir = tempDir();
  });
  afterEach(() => removeDir(dir));

  it('creates <dataDir>/secret.key with mode 0600 on first open, then reuses it', async () => {
    let store = await openStore({ dataDir: dir, env: {} });
    expect(store.keySource).to.equal('created');
    const file = join(dir, SECRET_KEY_FILE);
    expect(statSync(file).mode & 0o777).to.equal(0o600);
    const text = readFileSync(file, 'utf8');
    expect(text).to.match(/^[0-9a-f]{64}\n$/);
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).to.deep.equal([]);
    await store.profiles.put('p', PROFILE_DOC);
    await store.devices.add({ endpoint: 'e', profile: 'p', auth: { kind: 'psk', identity: 'i', key: Buffer.alloc(16, 3) } });
    await store.close();
    store = await openStore({ dataDir: dir, env: {} });
    try {
      expect(store.keySource).to.equal('file');
      expect(readFileSync(file, 'utf8')).to.equal(text);
      expect((await store.devices.findByPskIdentity('i'))?.key).to.deep.equal(Buffer.alloc(16, 3));
    } finally {
      await store.close();
    }
  });

  it('takes LWBS_SECRET_KEY over the key file and creates no file then', async () => {
    const store = await open(dir);
    expect(store.keySource).to.equal('env');
    await store.close();
    expect(existsSync(join(dir, SECRET_KEY_FILE))).to.equal(false);
    expect(loadSecretKey(dir, { LWBS_SECRET_KEY: ` ${TEST_KEY_HEX.toUpperCase()}\n` }, false)?.key).to.deep.equal(KEY);
  });

  it('refuses a malformed LWBS_SECRET_KEY without echoing it', async () => {
    const e = await expectStoreError(openStore({ dataDir: dir, env: { LWBS_SECRET_KEY: 'zz' + TEST_KEY_HEX.slice(2) } }), 'key', /LWBS_SECRET_KEY must be 64 hex digits.*non-hex/);
    expect(e.message).to.not.include(TEST_KEY_HEX.slice(2));
    await expectStoreError(openStore({ dataDir: dir, env: { LWBS_SECRET_KEY: 'abcd' } }), 'key', /4 characters/);
  });

  it('refuses a key file readable by group or others, naming the fix', async () => {
    const file = join(dir, SECRET_KEY_FILE);
    writeFileSync(file, `${TEST_KEY_HEX}\n`, { mode: 0o600 });
    chmodSync(file, 0o644);
    await expectStoreError(openStore({ dataDir: dir, env: {} }), 'key', /accessible by group or others \(mode 0644\).*chmod 600/);
    chmodSync(file, 0o640);
    await expectStoreError(openStore({ dataDir: dir, env: {} }), 'key', /mode 0640/);
  });

  it('refuses a key file of the wrong length or with non-hex content', async () => {
    const file = join(dir, SECRET_KEY_FILE);
    writeFileSync(file, TEST_KEY_HEX.slice(0, 62), { mode: 0o600 });
    await expectStoreError(openStore({ dataDir: dir, env: {} }), 'key', /must hold 64 hex digits.*62 characters/);
    writeFileSync(file, `${'g'.repeat(64)}`, { mode: 0o600 });
    await expectStoreError(openStore({ dataDir: dir, env: {} }), 'key', /non-hex/);
  });

  it('refuses to open with another key than the database was sealed with', async () => {
    const store = await open(dir);
    await store.close();
    await expectStoreError(
      openStore({ dataDir: dir, env: { LWBS_SECRET_KEY: OTHER_KEY_HEX } }),
      'key',
      /the key in LWBS_SECRET_KEY does not match the database .*lwbs\.db/,
    );
  });

  it('refuses, rather than creating a new key, when the key of an existing database is missing', async () => {
    const store = await open(dir); // key from the environment, no file
    await store.close();
    await expectStoreError(openStore({ dataDir: dir, env: {} }), 'key', /holds encrypted secrets but no secret key was found: set LWBS_SECRET_KEY or restore/);
    expect(existsSync(join(dir, SECRET_KEY_FILE))).to.equal(false);
  });

  it('accepts an explicit key option', async () => {
    const store = await openStore({ dataDir: dir, secretKey: KEY, env: { LWBS_SECRET_KEY: OTHER_KEY_HEX } });
    expect(store.keySource).to.equal('option');
    await store.close();
    await (await open(dir)).close(); // same key through the environment
  });
});

describe('store/secrets: at rest in the database file', () => {
  let dir: string;
  beforeEach(() => {
    dir = tempDir();
  });
  afterEach(() => removeDir(dir));

  const PSK = Buffer.from('PSK-PLAINTEXT-42', 'ascii');
  const CRED_PSK = Buffer.from('CRED-PSK-SECRET!', 'ascii');

  function fileBytes(): Buffer {
    const parts = [DB_FILE, `${DB_FILE}-wal`].filter((f) => existsSync(join(dir, f))).map((f) => readFileSync(join(dir, f)));
    return Buffer.concat(parts);
  }

  it('no PSK key or private key appears in the database or WAL bytes', async () => {
    const keys = ecKeys();
    const store = await open(dir);
    await store.profiles.put('p', PROFILE_DOC);
    await store.devices.add({ endpoint: 'dev-1', profile: 'p', auth: { kind: 'psk', identity: 'identity-1', key: PSK } });
    await store.credentials.addPending({ endpoint: 'dev-1', shortServerId: 1, serverUri: 'coaps://r', mode: 'psk', pskIdentity: 'dev-1', pskKey: CRED_PSK });
    await store.credentials.addPending({ endpoint: 'dev-1', shortServerId: 2, serverUri: 'coaps://r2', mode: 'rpk', publicKey: keys.spki, privateKey: keys.pkcs8 });
    let raw = fileBytes();
    expect(raw.includes(Buffer.from('identity-1'))).to.equal(true); // the scan works: identities are not secret
    expect(raw.includes(PSK)).to.equal(false);
    expect(raw.includes(CRED_PSK)).to.equal(false);
    expect(raw.includes(keys.d)).to.equal(false);
    await store.close();
    raw = fileBytes();
    expect(raw.includes(Buffer.from('identity-1'))).to.equal(true);
    expect(raw.includes(PSK)).to.equal(false);
    expect(raw.includes(CRED_PSK)).to.equal(false);
    expect(raw.includes(keys.d)).to.equal(false);
  });

  it('a ciphertext swapped into another row does not decrypt', async () => {
    const store = await open(dir);
    await store.profiles.put('p', PROFILE_DOC);
    await store.devices.add({ endpoint: 'a', profile: 'p', auth: { kind: 'psk', identity: 'ia', key: Buffer.alloc(16, 0xaa) } });
    await store.devices.add({ endpoint: 'b', profile: 'p', auth: { kind: 'psk', identity: 'ib', key: Buffer.alloc(16, 0xbb) } });
    const ca = await store.credentials.addPending({ endpoint: 'a', shortServerId: 1, serverUri: 'coaps://r', mode: 'psk', pskIdentity: 'a', pskKey: Buffer.alloc(16, 1) });
    const cb = await store.credentials.addPending({ endpoint: 'b', shortServerId: 1, serverUri: 'coaps://r', mode: 'psk', pskIdentity: 'b', pskKey: Buffer.alloc(16, 2) });
    await store.close();

    const raw = new Database(join(dir, DB_FILE));
    raw.prepare("UPDATE devices SET psk_key_enc = (SELECT psk_key_enc FROM devices WHERE endpoint = CAST('a' AS BLOB)) WHERE endpoint = CAST('b' AS BLOB)").run();
    raw.prepare('UPDATE credentials SET psk_key_enc = (SELECT psk_key_enc FROM credentials WHERE id = ?) WHERE id = ?').run(ca.id, cb.id);
    raw.close();

    const again = await open(dir);
    try {
      expect((await again.devices.findByPskIdentity('ia'))?.key).to.deep.equal(Buffer.alloc(16, 0xaa));
      await expectStoreError(again.devices.findByPskIdentity('ib'), 'secret', /bootstrap PSK key of device "b"/);
      await expectStoreError(again.devices.revealPskKey('b'), 'secret');
      expect((await again.credentials.revealSecrets(ca.id)).pskKey).to.deep.equal(Buffer.alloc(16, 1));
      await expectStoreError(again.credentials.revealSecrets(cb.id), 'secret', new RegExp(`credential ${cb.id} \\(device "b"\\)`));
    } finally {
      await again.close();
    }
  });
});
