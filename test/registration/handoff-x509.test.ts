/**
 * The registration hand-off for X.509 (handoff.ts header; registration.md §2.4 step 4): a
 * credential of mode x509 holds the client certificate; the registration listener's x509Lookup
 * (`registrationX509Known`) accepts exactly that certificate for this server's URIs, and
 * `authorizeRegistration` checks the certificate names the credential's endpoint (CN or a
 * subjectAltName) and that `ep`, when given, is that endpoint. Certificates from the openssl CLI.
 */
import { expect } from 'chai';
import type { PeerIdentity } from '../../src/coap/endpoint.js';
import { authorizeRegistration, registrationX509Known } from '../../src/registration/handoff.js';
import type { SqliteStore } from '../../src/store/store.js';
import { issue, makeCa, requireOpenssl, type TestCert } from '../dtls/openssl-support.js';
import { open, PROFILE_DOC, removeDir, tempDir } from '../store/support.js';

const COAP = 'coap://127.0.0.1:5783';
const COAPS = 'coaps://127.0.0.1:5784';
const URIS = [COAP, COAPS];

describe('registration hand-off: X.509 credentials', function () {
  this.timeout(30_000);
  let certDir: string;
  let dir: string;
  let store: SqliteStore;
  const c: Record<string, TestCert> = {};
  const x509 = (cert: TestCert): PeerIdentity => ({ type: 'x509', certificate: cert.der });

  before(() => {
    requireOpenssl();
    certDir = tempDir('lwbs-handoff-x509-certs-');
    makeCa(certDir, 'ca', 'hand-off CA');
    c.byCn = issue(certDir, 'by-cn', 'ca', { cn: 'urn:dev:cn-1' });
    c.bySan = issue(certDir, 'by-san', 'ca', { cn: 'serial 7', san: 'URI:urn:dev:san-1' });
    c.wrongName = issue(certDir, 'wrong-name', 'ca', { cn: 'urn:dev:someone-else' });
    c.elsewhere = issue(certDir, 'elsewhere', 'ca', { cn: 'urn:dev:elsewhere' });
    c.unknown = issue(certDir, 'unknown', 'ca', { cn: 'urn:dev:cn-1' });
  });
  after(() => removeDir(certDir));

  beforeEach(async () => {
    dir = tempDir('lwbs-handoff-x509-');
    store = await open(dir);
    await store.profiles.put('meters', PROFILE_DOC);
    for (const ep of ['urn:dev:cn-1', 'urn:dev:san-1', 'urn:dev:wrong', 'urn:dev:elsewhere']) await store.devices.add({ endpoint: ep, profile: 'meters' });
    const add = (endpoint: string, cert: TestCert, serverUri = COAPS): Promise<unknown> =>
      store.credentials.addPending({ endpoint, shortServerId: 1, serverUri, mode: 'x509', publicKey: cert.der });
    await add('urn:dev:cn-1', c.byCn!);
    await add('urn:dev:san-1', c.bySan!);
    await add('urn:dev:wrong', c.wrongName!);
    await add('urn:dev:elsewhere', c.elsewhere!, 'coaps://other.example.com:5684');
  });
  afterEach(async () => {
    await store.close();
    removeDir(dir);
  });

  it('registrationX509Known: exactly the certificate of an x509 credential for this server', async () => {
    expect(await registrationX509Known(store, c.byCn!.der, URIS)).to.equal(true);
    expect(await registrationX509Known(store, c.bySan!.der, URIS)).to.equal(true);
    // Same CN, another certificate: no credential holds it.
    expect(await registrationX509Known(store, c.unknown!.der, URIS)).to.equal(false);
    // A credential for another server.
    expect(await registrationX509Known(store, c.elsewhere!.der, URIS)).to.equal(false);
    expect(await registrationX509Known(store, c.elsewhere!.der, ['coaps://OTHER.example.com'])).to.equal(true);
    expect(await registrationX509Known(store, Buffer.from('junk'), URIS)).to.equal(false);
  });

  it('a certificate whose CN or subjectAltName is the endpoint registers, with or without ep', async () => {
    for (const [ep, cert] of [['urn:dev:cn-1', c.byCn!], ['urn:dev:san-1', c.bySan!]] as const) {
      for (const endpoint of [Buffer.from(ep), undefined]) {
        const r = await authorizeRegistration(store, { ...(endpoint ? { endpoint } : {}), identity: x509(cert) }, URIS);
        expect(r.ok, `${ep} ep=${String(endpoint)}`).to.equal(true);
        if (!r.ok) continue;
        expect(r.handOff.endpoint.toString()).to.equal(ep);
        expect(r.handOff.security).to.equal('x509');
        expect(r.handOff.identity!.equals(cert.der)).to.equal(true);
        expect(r.handOff.credential.mode).to.equal('x509');
      }
    }
  });

  it('a credential whose certificate does not name its endpoint is refused (4.03 identity_mismatch), the detail names both', async () => {
    const r = await authorizeRegistration(store, { identity: x509(c.wrongName!) }, URIS);
    expect(r.ok).to.equal(false);
    if (r.ok) return;
    expect(r.refusal).to.deep.include({ code: '4.03', cause: 'identity_mismatch' });
    expect(r.refusal.detail).to.include('"urn:dev:wrong"').and.to.include('CN "urn:dev:someone-else"');
    expect(r.refusal.diagnostic).to.not.include('urn:dev');
  });

  it('ep naming another endpoint than the certificate credential is refused; no credential for the certificate is not_provisioned', async () => {
    const other = await authorizeRegistration(store, { endpoint: Buffer.from('urn:dev:san-1'), identity: x509(c.byCn!) }, URIS);
    expect(!other.ok && other.refusal).to.deep.include({ code: '4.03', cause: 'identity_mismatch' });
    const unknown = await authorizeRegistration(store, { endpoint: Buffer.from('urn:dev:cn-1'), identity: x509(c.unknown!) }, URIS);
    expect(!unknown.ok && unknown.refusal.cause).to.equal('not_provisioned');
    const elsewhere = await authorizeRegistration(store, { identity: x509(c.elsewhere!) }, URIS);
    expect(!elsewhere.ok && elsewhere.refusal.cause).to.equal('not_provisioned');
  });
});
