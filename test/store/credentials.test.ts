import { expect } from 'chai';
import type { SqliteStore } from '../../src/store/store.js';
import type { NewCredential } from '../../src/store/types.js';
import { CERT_B, CERT_C } from './fixtures/certs.js';
import { Clock, ecKeys, expectStoreError, open, PROFILE_DOC, removeDir, tempDir } from './support.js';

const REG = 'coaps://127.0.0.1:5784';

describe('store/credentials', () => {
  let dir: string;
  let store: SqliteStore;
  const clock = new Clock();
  beforeEach(async () => {
    dir = tempDir();
    store = await open(dir, { now: clock.now });
    await store.profiles.put('p', PROFILE_DOC);
    await store.devices.add({ endpoint: 'dev', profile: 'p' });
    await store.devices.add({ endpoint: 'other', profile: 'p' });
  });
  afterEach(async () => {
    await store.close();
    removeDir(dir);
  });

  const psk = (key: number, extra: Partial<NewCredential> = {}): NewCredential => ({
    endpoint: 'dev',
    shortServerId: 1,
    serverUri: REG,
    mode: 'psk',
    pskIdentity: 'dev',
    pskKey: Buffer.alloc(16, key),
    ...extra,
  });

  it('addPending stores a pending credential; listing shows no secret; revealSecrets decrypts', async () => {
    const session = await store.sessions.start({ endpoint: 'dev', peer: '127.0.0.1:9', security: 'nosec' });
    const t = clock.tick();
    const c = await store.credentials.addPending(psk(7, { sessionId: session.id }));
    expect(c).to.deep.include({
      endpoint: Buffer.from('dev'),
      shortServerId: 1,
      serverUri: REG,
      mode: 'psk',
      pskIdentity: Buffer.from('dev'),
      hasPskKey: true,
      publicKey: null,
      hasPrivateKey: false,
      serverPublicKey: null,
      status: 'pending',
      createdAt: t,
      activatedAt: null,
      retiredAt: null,
      sessionId: session.id,
    });
    expect(JSON.stringify(await store.credentials.listForDevice('dev'))).to.not.include('0707');
    expect(await store.credentials.revealSecrets(c.id)).to.deep.equal({ pskKey: Buffer.alloc(16, 7), privateKey: null });
    expect(await store.credentials.get(c.id)).to.deep.equal(c);
    expect(await store.credentials.get(999)).to.equal(undefined);
    await expectStoreError(store.credentials.revealSecrets(999), 'not_found', /credential 999 does not exist/, 'credentialId');
  });

  it('stores rpk and x509 credentials, normalizing keys and sealing the private key', async () => {
    const client = ecKeys();
    const server = ecKeys();
    const r = await store.credentials.addPending({ endpoint: 'dev', shortServerId: 2, serverUri: REG, mode: 'rpk', publicKey: client.spki, privateKey: client.pkcs8, serverPublicKey: server.spki });
    expect(r).to.deep.include({ mode: 'rpk', publicKey: client.spki, hasPrivateKey: true, serverPublicKey: server.spki, pskIdentity: null, hasPskKey: false });
    expect((await store.credentials.revealSecrets(r.id)).privateKey).to.deep.equal(client.pkcs8);
    const x = await store.credentials.addPending({ endpoint: 'dev', shortServerId: 3, serverUri: REG, mode: 'x509', publicKey: CERT_B, serverPublicKey: CERT_C });
    expect(x).to.deep.include({ mode: 'x509', publicKey: CERT_B, serverPublicKey: CERT_C, hasPrivateKey: false });
    const n = await store.credentials.addPending({ endpoint: 'dev', shortServerId: 4, serverUri: 'coap://127.0.0.1:5783', mode: 'nosec' });
    expect(await store.credentials.revealSecrets(n.id)).to.deep.equal({ pskKey: null, privateKey: null });
  });

  it('refuses wrong field/mode combinations, naming the field', async () => {
    const k = ecKeys();
    const cases: Array<[NewCredential, RegExp, string]> = [
      [psk(1, { shortServerId: 0 }), /shortServerId must be an integer in 1..65534, got 0/, 'shortServerId'],
      [psk(1, { shortServerId: 65535 }), /65535/, 'shortServerId'],
      [psk(1, { serverUri: ' ' }), /serverUri/, 'serverUri'],
      [psk(1, { mode: 'oscore' as 'psk' }), /mode must be one of/, 'mode'],
      [psk(1, { pskIdentity: undefined }), /pskIdentity is required with security mode psk/, 'pskIdentity'],
      [psk(1, { pskKey: undefined }), /pskKey is required/, 'pskKey'],
      [psk(1, { publicKey: k.spki }), /publicKey is not used with security mode psk/, 'publicKey'],
      [{ endpoint: 'dev', shortServerId: 1, serverUri: REG, mode: 'nosec', pskKey: Buffer.alloc(4) }, /pskKey is not used with security mode nosec/, 'pskKey'],
      [{ endpoint: 'dev', shortServerId: 1, serverUri: REG, mode: 'rpk' }, /publicKey is required with security mode rpk/, 'publicKey'],
      [{ endpoint: 'dev', shortServerId: 1, serverUri: REG, mode: 'rpk', publicKey: k.spki, privateKey: Buffer.from('junk') }, /privateKey is not a PKCS#8/, 'privateKey'],
      [{ endpoint: 'dev', shortServerId: 1, serverUri: REG, mode: 'rpk', publicKey: k.spki, serverPublicKey: Buffer.from('junk') }, /serverPublicKey is not a SubjectPublicKeyInfo/, 'serverPublicKey'],
      [{ endpoint: 'dev', shortServerId: 1, serverUri: REG, mode: 'x509', publicKey: k.spki }, /publicKey is not a DER X.509 certificate/, 'publicKey'],
      [{ endpoint: 'dev', shortServerId: 1, serverUri: REG, mode: 'x509' }, /client certificate\) is required/, 'publicKey'],
      [psk(1, { sessionId: '' }), /sessionId must be a non-empty string/, 'sessionId'],
    ];
    for (const [c, re, field] of cases) await expectStoreError(store.credentials.addPending(c), 'invalid', re, field);
    expect(await store.credentials.listForDevice('dev', { includeRetired: true })).to.deep.equal([]);
  });

  it('refuses an unknown device or session (foreign keys) naming the value', async () => {
    await expectStoreError(store.credentials.addPending(psk(1, { endpoint: 'ghost' })), 'not_found', /device "ghost" is not enrolled/, 'endpoint');
    await expectStoreError(store.credentials.addPending(psk(1, { sessionId: 'nope' })), 'not_found', /bootstrap session "nope" does not exist/, 'sessionId');
    await expectStoreError(store.credentials.listForDevice('ghost'), 'not_found', /device "ghost"/, 'endpoint');
  });

  it('an identity or public key held by one device cannot be given to another for the same server', async () => {
    const k = ecKeys();
    await store.credentials.addPending(psk(1, { pskIdentity: 'shared' }));
    await expectStoreError(
      store.credentials.addPending(psk(2, { endpoint: 'other', pskIdentity: 'shared' })),
      'duplicate',
      /PSK identity "shared" for coaps:\/\/127.0.0.1:5784 is already held by device "dev"/,
      'pskIdentity',
    );
    // The same device may hold it twice (a re-bootstrap), another server is another namespace.
    await store.credentials.addPending(psk(3, { pskIdentity: 'shared' }));
    await store.credentials.addPending(psk(4, { endpoint: 'other', pskIdentity: 'shared', serverUri: 'coaps://elsewhere' }));
    await store.credentials.addPending({ endpoint: 'dev', shortServerId: 2, serverUri: REG, mode: 'rpk', publicKey: k.spki });
    await expectStoreError(
      store.credentials.addPending({ endpoint: 'other', shortServerId: 2, serverUri: REG, mode: 'rpk', publicKey: k.spki }),
      'duplicate',
      /public key sha256:[0-9a-f]{16} for .* already held by device "dev"/,
      'publicKey',
    );
  });

  it('lifecycle: pending → active on Finish → promote on Register retires the others', async () => {
    // An earlier bootstrap left an active credential.
    const s1 = await store.sessions.start({ endpoint: 'dev', peer: 'p', security: 'nosec' });
    const old = await store.credentials.addPending(psk(1, { sessionId: s1.id }));
    const ta = clock.tick();
    expect(await store.credentials.activateForSession(s1.id)).to.equal(1);
    expect(await store.credentials.get(old.id)).to.deep.include({ status: 'active', activatedAt: ta });

    // A new bootstrap: pending for server 1 (and one for server 2, which must be left alone).
    const s2 = await store.sessions.start({ endpoint: 'dev', peer: 'p', security: 'nosec' });
    const fresh = await store.credentials.addPending(psk(2, { sessionId: s2.id }));
    const second = await store.credentials.addPending(psk(3, { shortServerId: 2, serverUri: 'coaps://two', sessionId: s2.id }));

    // The Finish response was lost: registration must accept both old (active) and new (pending).
    const byEp = await store.credentials.findForRegistration({ endpoint: 'dev' }, { shortServerId: 1 });
    expect(byEp.map((c) => [c.id, c.status])).to.deep.equal([
      [old.id, 'active'],
      [fresh.id, 'pending'],
    ]);
    const byId = await store.credentials.findForRegistration({ pskIdentity: 'dev' }, { serverUris: [REG] });
    expect(byId.map((c) => c.id)).to.deep.equal([old.id, fresh.id]);

    // The device registers with the new one.
    const tp = clock.tick();
    const res = await store.credentials.promote(fresh.id);
    expect(res.retired).to.equal(1);
    expect(res.credential).to.deep.include({ id: fresh.id, status: 'active', activatedAt: tp });
    expect(await store.credentials.get(old.id)).to.deep.include({ status: 'retired', retiredAt: tp });
    expect((await store.credentials.get(second.id))?.status).to.equal('pending');
    expect((await store.credentials.findForRegistration({ endpoint: 'dev' }, { shortServerId: 1 })).map((c) => c.id)).to.deep.equal([fresh.id]);

    // activateForSession now has nothing left to do for s2's server-1 credential, but still activates server 2's.
    expect(await store.credentials.activateForSession(s2.id)).to.equal(1);
    expect(await store.credentials.activateForSession('unknown-session')).to.equal(0);

    // Promote again: idempotent, keeps the first activation time.
    clock.tick();
    const again = await store.credentials.promote(fresh.id);
    expect(again.retired).to.equal(0);
    expect(again.credential.activatedAt).to.equal(tp);

    await expectStoreError(store.credentials.promote(old.id), 'invalid', /is retired and cannot be promoted/, 'credentialId');
    await expectStoreError(store.credentials.promote(12345), 'not_found', /credential 12345 does not exist/);

    // Listing: newest first; retired only on request.
    expect((await store.credentials.listForDevice('dev')).map((c) => c.id)).to.deep.equal([second.id, fresh.id]);
    expect((await store.credentials.listForDevice('dev', { includeRetired: true })).map((c) => c.id)).to.deep.equal([second.id, fresh.id, old.id]);
  });

  it('registering with the old credential retires the never-used new one', async () => {
    const old = await store.credentials.addPending(psk(1));
    await store.credentials.promote(old.id);
    const fresh = await store.credentials.addPending(psk(2));
    const r = await store.credentials.promote(old.id);
    expect(r.retired).to.equal(1);
    expect((await store.credentials.get(fresh.id))?.status).to.equal('retired');
  });

  it('retirePendingForSession retires only that session\'s pending credentials', async () => {
    const s1 = await store.sessions.start({ endpoint: 'dev', peer: 'p', security: 'nosec' });
    const s2 = await store.sessions.start({ endpoint: 'dev', peer: 'p', security: 'nosec' });
    const active = await store.credentials.addPending(psk(1, { sessionId: s1.id, shortServerId: 2 }));
    await store.credentials.activateForSession(s1.id);
    const abandoned = await store.credentials.addPending(psk(2, { sessionId: s1.id }));
    const kept = await store.credentials.addPending(psk(3, { sessionId: s2.id }));
    const t = clock.tick();
    expect(await store.credentials.retirePendingForSession(s1.id)).to.equal(1);
    expect(await store.credentials.get(abandoned.id)).to.deep.include({ status: 'retired', retiredAt: t });
    expect((await store.credentials.get(active.id))?.status).to.equal('active');
    expect((await store.credentials.get(kept.id))?.status).to.equal('pending');
    expect(await store.credentials.retirePendingForSession(s1.id)).to.equal(0);
  });

  it('findForRegistration by public key (any encoding) and filters by server', async () => {
    const k = ecKeys();
    const c = await store.credentials.addPending({ endpoint: 'dev', shortServerId: 1, serverUri: REG, mode: 'rpk', publicKey: k.spki });
    const x = await store.credentials.addPending({ endpoint: 'other', shortServerId: 1, serverUri: REG, mode: 'x509', publicKey: CERT_B });
    expect((await store.credentials.findForRegistration({ publicKey: k.spki })).map((r) => r.id)).to.deep.equal([c.id]);
    expect((await store.credentials.findForRegistration({ publicKey: CERT_B })).map((r) => r.id)).to.deep.equal([x.id]);
    expect(await store.credentials.findForRegistration({ publicKey: k.spki }, { serverUris: ['coaps://other'] })).to.deep.equal([]);
    expect(await store.credentials.findForRegistration({ publicKey: ecKeys().spki })).to.deep.equal([]);
    expect(await store.credentials.findForRegistration({ pskIdentity: 'nobody' })).to.deep.equal([]);
  });

  it('ids are never reused, even after the newest credential is deleted', async () => {
    const a = await store.credentials.addPending(psk(1, { endpoint: 'other', pskIdentity: 'o' }));
    await store.devices.remove('other');
    const b = await store.credentials.addPending(psk(2));
    expect(b.id).to.be.greaterThan(a.id);
    expect((await store.credentials.revealSecrets(b.id)).pskKey).to.deep.equal(Buffer.alloc(16, 2));
  });
});
