/**
 * The registration server's DTLS lookups (`registrationPskKey`, `registrationRpkKnown`, handoff.ts) on a real store:
 * the key of the newest pending or active psk credential provisioned for one of this server's
 * URIs with that identity — nothing for other servers, other modes, retired credentials or
 * unknown identities, so such handshakes fail before any CoAP is read.
 */
import { expect } from 'chai';
import { generateServerKeyPair } from '../../src/bootstrap/credentials.js';
import { registrationPskKey, registrationRpkKnown } from '../../src/registration/handoff.js';
import type { SqliteStore } from '../../src/store/store.js';
import { open, PROFILE_DOC, removeDir, tempDir } from '../store/support.js';

const OURS = ['coap://lwbs.test:5783', 'coaps://lwbs.test'];
const key = (b: number): Uint8Array => new Uint8Array(16).fill(b);

describe('registration: PSK and RPK lookups for the DTLS handshake', () => {
  let dir: string;
  let store: SqliteStore;

  beforeEach(async () => {
    dir = tempDir('lwbs-psklookup-');
    store = await open(dir);
    await store.profiles.put('p', PROFILE_DOC);
    await store.devices.add({ endpoint: 'dev', profile: 'p' });
  });
  afterEach(async () => {
    await store.close();
    removeDir(dir);
  });

  const psk = (identity: string, k: Uint8Array, serverUri = 'coaps://lwbs.test:5684') =>
    store.credentials.addPending({ endpoint: 'dev', shortServerId: 1, serverUri, mode: 'psk', pskIdentity: identity, pskKey: k });

  it('finds the key of a pending credential for this server (default port spelled or not)', async () => {
    await psk('dev-1', key(1), 'coaps://LWBS.test');
    expect(await registrationPskKey(store, Buffer.from('dev-1'), OURS)).to.deep.equal(Buffer.from(key(1)));
  });

  it('takes the newest of several, and never a retired one', async () => {
    const old = await psk('dev-1', key(1));
    await store.credentials.promote(old.id);
    const fresh = await psk('dev-1', key(2));
    expect(await registrationPskKey(store, Buffer.from('dev-1'), OURS)).to.deep.equal(Buffer.from(key(2)));
    // Registering with the fresh one retires the old one; the fresh one stays the answer.
    await store.credentials.promote(fresh.id);
    expect(await registrationPskKey(store, Buffer.from('dev-1'), OURS)).to.deep.equal(Buffer.from(key(2)));
  });

  it('finds nothing for another server, an unknown identity, or another mode', async () => {
    await psk('dev-1', key(1), 'coaps://elsewhere.example:5684');
    await store.credentials.addPending({ endpoint: 'dev', shortServerId: 2, serverUri: OURS[0]!, mode: 'nosec' });
    expect(await registrationPskKey(store, Buffer.from('dev-1'), OURS)).to.equal(undefined);
    expect(await registrationPskKey(store, Buffer.from('nobody'), OURS)).to.equal(undefined);
  });

  it('knows a raw public key only when an rpk credential for this server holds it', async () => {
    const mine = generateServerKeyPair();
    const other = generateServerKeyPair();
    await store.credentials.addPending({ endpoint: 'dev', shortServerId: 1, serverUri: 'coaps://lwbs.test:5684', mode: 'rpk', publicKey: mine.publicKey, serverPublicKey: other.publicKey });
    await store.credentials.addPending({ endpoint: 'dev', shortServerId: 2, serverUri: 'coaps://elsewhere.example:5684', mode: 'rpk', publicKey: other.publicKey, serverPublicKey: mine.publicKey });
    expect(await registrationRpkKnown(store, mine.publicKey, OURS)).to.equal(true);
    expect(await registrationRpkKnown(store, other.publicKey, OURS)).to.equal(false);
    expect(await registrationRpkKnown(store, generateServerKeyPair().publicKey, OURS)).to.equal(false);
  });
});
