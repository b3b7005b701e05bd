import { expect } from 'chai';
import { ECDH } from 'node:crypto';
import { splitAltNames } from '../../src/store/material.js';
import type { SqliteStore } from '../../src/store/store.js';
import type { NewDevice } from '../../src/store/types.js';
import { CERT_A, CERT_B } from './fixtures/certs.js';
import { Clock, ecKeys, expectStoreError, open, PROFILE_DOC, removeDir, tempDir } from './support.js';

/** The same P-256 public key as SubjectPublicKeyInfo with a compressed point (RFC 5480 allows both). */
function compressedSpki(spki: Buffer): Buffer {
  const point = spki.subarray(spki.length - 65);
  const compressed = ECDH.convertKey(point, 'prime256v1', undefined, undefined, 'compressed') as Buffer;
  const head = Buffer.from('3039301306072a8648ce3d020106082a8648ce3d030107032200', 'hex');
  return Buffer.concat([head, compressed]);
}

describe('store/devices', () => {
  let dir: string;
  let store: SqliteStore;
  const clock = new Clock();
  beforeEach(async () => {
    dir = tempDir();
    store = await open(dir, { now: clock.now });
    await store.profiles.put('meters', PROFILE_DOC);
    await store.profiles.put('lights', PROFILE_DOC);
  });
  afterEach(async () => {
    await store.close();
    removeDir(dir);
  });

  it('adds a device of each kind and reads it back, without any secret', async () => {
    const keys = ecKeys();
    const t = clock.tick();
    const none = await store.devices.add({ endpoint: 'urn:imei:350000000000009', profile: 'meters' });
    expect(none).to.deep.equal({ endpoint: Buffer.from('urn:imei:350000000000009'), profile: 'meters', auth: { kind: 'none' }, enrolledBy: 'cli', createdAt: t });
    const psk = await store.devices.add({ endpoint: 'p1', profile: 'meters', auth: { kind: 'psk', identity: Buffer.from([0, 1, 2]), key: Buffer.alloc(16, 0x5a) }, enrolledBy: 'zero-touch' });
    expect(psk.auth).to.deep.equal({ kind: 'psk', identity: Buffer.from([0, 1, 2]) });
    expect(psk.enrolledBy).to.equal('zero-touch');
    expect(JSON.stringify(psk)).to.not.include('5a5a');
    const rpk = await store.devices.add({ endpoint: 'r1', profile: 'meters', auth: { kind: 'rpk', publicKey: keys.spki } });
    expect(rpk.auth).to.deep.equal({ kind: 'rpk', publicKey: keys.spki });
    const x = await store.devices.add({ endpoint: 'x1', profile: 'lights', auth: { kind: 'x509', certificate: CERT_A } });
    expect(x.auth).to.deep.equal({
      kind: 'x509',
      certificate: CERT_A,
      subjectCn: 'urn:imei:350000000000001',
      subjectAltNames: ['DNS:dev1.example', 'URI:urn:dev:1'],
    });
    expect(await store.devices.get('x1')).to.deep.equal(x);
    expect(await store.devices.get('nope')).to.equal(undefined);
  });

  it('stores binary endpoints as bytes', async () => {
    const ep = Buffer.from([0xff, 0x00, 0x10]);
    await store.devices.add({ endpoint: ep, profile: 'meters' });
    expect((await store.devices.get(ep))?.endpoint).to.deep.equal(ep);
    await expectStoreError(store.devices.add({ endpoint: ep, profile: 'meters' }), 'duplicate', /device 0xff0010 is already enrolled/, 'endpoint');
  });

  it('names the duplicate: endpoint, PSK identity, RPK key (however encoded), certificate', async () => {
    const keys = ecKeys();
    await store.devices.add({ endpoint: 'a', profile: 'meters', auth: { kind: 'psk', identity: 'id-a', key: Buffer.alloc(16) } });
    await store.devices.add({ endpoint: 'b', profile: 'meters', auth: { kind: 'rpk', publicKey: keys.spki } });
    await store.devices.add({ endpoint: 'c', profile: 'meters', auth: { kind: 'x509', certificate: CERT_A } });
    await expectStoreError(store.devices.add({ endpoint: 'a', profile: 'lights' }), 'duplicate', /device "a" is already enrolled/, 'endpoint');
    await expectStoreError(
      store.devices.add({ endpoint: 'z', profile: 'meters', auth: { kind: 'psk', identity: 'id-a', key: Buffer.alloc(16) } }),
      'duplicate',
      /PSK identity "id-a" of device "z" is already used by device "a"/,
      'pskIdentity',
    );
    await expectStoreError(
      store.devices.add({ endpoint: 'z', profile: 'meters', auth: { kind: 'rpk', publicKey: compressedSpki(keys.spki) } }),
      'duplicate',
      /RPK public key \(sha256:[0-9a-f]{16}\) of device "z" is already used by device "b"/,
      'rpkPublicKey',
    );
    await expectStoreError(
      store.devices.add({ endpoint: 'z', profile: 'meters', auth: { kind: 'x509', certificate: CERT_A } }),
      'duplicate',
      /certificate .* already used by device "c"/,
      'x509Certificate',
    );
    expect(await store.devices.get('z')).to.equal(undefined);
  });

  it('refuses an unknown profile naming it', async () => {
    await expectStoreError(store.devices.add({ endpoint: 'a', profile: 'ghost' }), 'not_found', /profile "ghost" does not exist \(device "a"\)/, 'profile');
  });

  it('refuses malformed input naming the field, never echoing a key', async () => {
    const cases: Array<[NewDevice, RegExp, string]> = [
      [{ endpoint: '', profile: 'meters' }, /endpoint must not be empty/, 'endpoint'],
      [{ endpoint: 'x'.repeat(1025), profile: 'meters' }, /1025 bytes/, 'endpoint'],
      [{ endpoint: 'a', profile: 'meters', auth: { kind: 'psk', identity: '', key: Buffer.alloc(16) } }, /pskIdentity must not be empty/, 'pskIdentity'],
      [{ endpoint: 'a', profile: 'meters', auth: { kind: 'psk', identity: 'i', key: Buffer.alloc(0) } }, /pskKey is required/, 'pskKey'],
      [{ endpoint: 'a', profile: 'meters', auth: { kind: 'psk', identity: 'i', key: Buffer.alloc(65, 0x77) } }, /pskKey is 65 bytes long/, 'pskKey'],
      [{ endpoint: 'a', profile: 'meters', auth: { kind: 'rpk', publicKey: Buffer.from('3000', 'hex') } }, /rpkPublicKey is not a SubjectPublicKeyInfo/, 'rpkPublicKey'],
      [{ endpoint: 'a', profile: 'meters', auth: { kind: 'x509', certificate: Buffer.from('nope') } }, /x509Certificate is not a DER X.509 certificate/, 'x509Certificate'],
      [{ endpoint: 'a', profile: 'meters', enrolledBy: 'magic' as 'cli' }, /enrolledBy must be one of/, 'enrolledBy'],
      [{ endpoint: 'a', profile: 'meters', auth: { kind: 'token' } as unknown as NewDevice['auth'] }, /auth.kind must be/, 'auth'],
    ];
    for (const [d, re, field] of cases) {
      const e = await expectStoreError(store.devices.add(d), 'invalid', re, field);
      expect(e.message).to.not.include('7777');
    }
    expect(await store.devices.count()).to.equal(0);
  });

  it('finds devices by PSK identity (with the decrypted key), RPK, certificate and certificate names', async () => {
    const keys = ecKeys();
    await store.devices.add({ endpoint: 'p', profile: 'meters', auth: { kind: 'psk', identity: 'id-p', key: Buffer.from('00112233445566778899aabbccddeeff', 'hex') } });
    await store.devices.add({ endpoint: 'r', profile: 'meters', auth: { kind: 'rpk', publicKey: compressedSpki(keys.spki) } });
    await store.devices.add({ endpoint: 'x', profile: 'meters', auth: { kind: 'x509', certificate: CERT_A } });
    await store.devices.add({ endpoint: 'y', profile: 'meters', auth: { kind: 'x509', certificate: CERT_B } });

    const found = await store.devices.findByPskIdentity('id-p');
    expect(found?.device.endpoint.toString()).to.equal('p');
    expect(found?.key.toString('hex')).to.equal('00112233445566778899aabbccddeeff');
    expect(await store.devices.findByPskIdentity('id-x')).to.equal(undefined);

    // Stored normalized: found by the uncompressed and by the compressed encoding.
    expect((await store.devices.get('r'))?.auth).to.deep.equal({ kind: 'rpk', publicKey: keys.spki });
    expect((await store.devices.findByRpk(keys.spki))?.endpoint.toString()).to.equal('r');
    expect((await store.devices.findByRpk(compressedSpki(keys.spki)))?.endpoint.toString()).to.equal('r');
    expect(await store.devices.findByRpk(ecKeys().spki)).to.equal(undefined);
    expect(await store.devices.findByRpk(Buffer.from('garbage'))).to.equal(undefined);

    expect((await store.devices.findByCertificate(CERT_B))?.endpoint.toString()).to.equal('y');
    expect(await store.devices.findByCertificate(Buffer.from('x'))).to.equal(undefined);
    const names = async (n: string): Promise<string[]> => (await store.devices.findByCertificateName(n)).map((d) => d.endpoint.toString());
    expect(await names('urn:imei:350000000000001')).to.deep.equal(['x']);
    expect(await names('device-2')).to.deep.equal(['y']);
    expect(await names('DNS:dev1.example')).to.deep.equal(['x']);
    expect(await names('dev2.example')).to.deep.equal(['y']);
    expect(await names('urn:dev:1')).to.deep.equal(['x']);
    expect(await names('dev')).to.deep.equal([]); // substrings do not match
    expect(await names('')).to.deep.equal([]);
  });

  it('splits subjectAltName text including JSON-quoted values', () => {
    expect(splitAltNames('DNS:a.example, URI:urn:x')).to.deep.equal(['DNS:a.example', 'URI:urn:x']);
    expect(splitAltNames('DNS:a, URI:"urn:x, with comma", IP Address:127.0.0.1')).to.deep.equal(['DNS:a', 'URI:urn:x, with comma', 'IP Address:127.0.0.1']);
    expect(splitAltNames('')).to.deep.equal([]);
  });

  it('lists by endpoint bytes with profile filter and paging; counts', async () => {
    for (const ep of ['d', 'b', 'a', 'c', 'e']) await store.devices.add({ endpoint: ep, profile: ep < 'c' ? 'lights' : 'meters' });
    const eps = (list: { endpoint: Buffer }[]): string[] => list.map((d) => d.endpoint.toString());
    expect(eps(await store.devices.list())).to.deep.equal(['a', 'b', 'c', 'd', 'e']);
    expect(eps(await store.devices.list({ limit: 2, offset: 1 }))).to.deep.equal(['b', 'c']);
    expect(eps(await store.devices.list({ profile: 'meters' }))).to.deep.equal(['c', 'd', 'e']);
    expect(eps(await store.devices.list({ profile: 'meters', limit: 1, offset: 2 }))).to.deep.equal(['e']);
    expect(eps(await store.devices.list({ profile: 'none' }))).to.deep.equal([]);
    expect(await store.devices.count()).to.equal(5);
    expect(await store.devices.count({ profile: 'lights' })).to.equal(2);
    await expectStoreError(store.devices.list({ limit: -5 }), 'invalid', /limit/, 'limit');
    await expectStoreError(store.devices.list({ offset: 1.5 }), 'invalid', /offset/, 'offset');
  });

  it('reveals a PSK key only when asked', async () => {
    await store.devices.add({ endpoint: 'p', profile: 'meters', auth: { kind: 'psk', identity: 'i', key: Buffer.alloc(8, 1) } });
    await store.devices.add({ endpoint: 'n', profile: 'meters' });
    expect(await store.devices.revealPskKey('p')).to.deep.equal(Buffer.alloc(8, 1));
    expect(await store.devices.revealPskKey('n')).to.equal(undefined);
    await expectStoreError(store.devices.revealPskKey('zz'), 'not_found', /device "zz" is not enrolled/, 'endpoint');
  });

  it('remove deletes the device and its credentials but keeps its sessions', async () => {
    await store.devices.add({ endpoint: 'a', profile: 'meters' });
    const s = await store.sessions.start({ endpoint: 'a', peer: '127.0.0.1:1', security: 'nosec' });
    const c = await store.credentials.addPending({ endpoint: 'a', shortServerId: 1, serverUri: 'coap://r', mode: 'nosec', sessionId: s.id });
    await store.devices.remove('a');
    expect(await store.devices.get('a')).to.equal(undefined);
    expect(await store.credentials.get(c.id)).to.equal(undefined);
    expect((await store.sessions.get(s.id))?.endpoint?.toString()).to.equal('a');
    await expectStoreError(store.devices.remove('a'), 'not_found', /device "a" is not enrolled/, 'endpoint');
    // Re-enrolling the same endpoint works and starts without credentials.
    await store.devices.add({ endpoint: 'a', profile: 'meters' });
    expect(await store.credentials.listForDevice('a', { includeRetired: true })).to.deep.equal([]);
  });

  describe('addMany', () => {
    const batch = (n: number, prefix = 'ep'): NewDevice[] =>
      Array.from({ length: n }, (_, i) => ({ endpoint: `${prefix}-${i}`, profile: 'meters', auth: { kind: 'psk', identity: `${prefix}-id-${i}`, key: Buffer.alloc(16, i) } }));

    it('inserts all in one go, defaulting enrolledBy to import, reporting progress', async () => {
      const seen: Array<[number, number]> = [];
      expect(await store.devices.addMany(batch(12), { onProgress: (d, t) => seen.push([d, t]), progressEvery: 5 })).to.equal(12);
      expect(seen).to.deep.equal([
        [5, 12],
        [10, 12],
        [12, 12],
      ]);
      expect(await store.devices.count()).to.equal(12);
      expect((await store.devices.get('ep-3'))?.enrolledBy).to.equal('import');
      expect((await store.devices.findByPskIdentity('ep-id-11'))?.key).to.deep.equal(Buffer.alloc(16, 11));
      expect(await store.devices.addMany([])).to.equal(0);
    });

    it('is all or nothing: one bad row and nothing is inserted, the error names the row', async () => {
      await store.devices.add({ endpoint: 'existing', profile: 'meters' });
      const dupInBatch = [...batch(5), { endpoint: 'ep-2', profile: 'meters' }];
      const e1 = await expectStoreError(store.devices.addMany(dupInBatch), 'duplicate', /device "ep-2" is already enrolled/, 'endpoint');
      expect(e1.index).to.equal(5);
      const e2 = await expectStoreError(store.devices.addMany([...batch(3), { endpoint: 'existing', profile: 'meters' }]), 'duplicate', /"existing"/);
      expect(e2.index).to.equal(3);
      const rows = batch(4);
      rows[2] = { ...rows[2]!, profile: 'ghost' };
      const e3 = await expectStoreError(store.devices.addMany(rows), 'not_found', /profile "ghost"/, 'profile');
      expect(e3.index).to.equal(2);
      const e4 = await expectStoreError(store.devices.addMany([...batch(2), ...batch(1, 'other').map((d) => ({ ...d, auth: { kind: 'psk' as const, identity: 'ep-id-0', key: Buffer.alloc(1) } }))]), 'duplicate', /PSK identity "ep-id-0"/);
      expect(e4.index).to.equal(2);
      expect(await store.devices.count()).to.equal(1);
      expect(await store.devices.get('ep-0')).to.equal(undefined);
    });
  });
});
