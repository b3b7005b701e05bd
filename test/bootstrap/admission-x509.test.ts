/**
 * Bootstrap admission of X.509 clients (admission.ts header; bootstrap.md §2, §13; dtls.md §1.3):
 * the endpoint must be the certificate's CN or a subjectAltName value; without `ep` it is the
 * enrolled device's or the CN; x509 devices accept their enrolled or another trusted certificate
 * naming them; zero-touch enrollment records the certificate. And `x509Admissible`, the same
 * decision in the handshake before any `ep` is known. Certificates come from the openssl CLI.
 */
import { expect } from 'chai';
import { admit, certificateNamesEndpoint, ProfileCache, x509Admissible } from '../../src/bootstrap/admission.js';
import type { PeerIdentity } from '../../src/coap/endpoint.js';
import type { SqliteStore } from '../../src/store/store.js';
import { issue, makeCa, requireOpenssl, type TestCert } from '../dtls/openssl-support.js';
import { open, removeDir, tempDir } from '../store/support.js';

const servers = [{ shortServerId: 1, handOff: true, security: { mode: 'nosec' } }];
const X509_FLEET = { name: 'x509-fleet', match: ['urn:x509:*'], enroll: { allowSecurity: ['x509'] }, servers };
const RPK_ONLY = { name: 'rpk-only', match: ['urn:rpk:*'], enroll: { allowSecurity: ['rpk'] }, servers };

describe('bootstrap admission: X.509 clients', function () {
  this.timeout(30_000);
  let dir: string;
  let store: SqliteStore;
  let storeDir: string;
  let profiles: ProfileCache;
  const c: Record<string, TestCert> = {};
  const x509 = (cert: TestCert): PeerIdentity => ({ type: 'x509', certificate: cert.der });

  before(() => {
    requireOpenssl();
    dir = tempDir('lwbs-admission-x509-');
    makeCa(dir, 'ca', 'admission CA');
    c.cn = issue(dir, 'cn', 'ca', { cn: 'urn:x509:cn-1' });
    c.san = issue(dir, 'san', 'ca', { cn: 'serial 0042', san: 'URI:urn:x509:san-1,DNS:dev.example' });
    c.enrolled = issue(dir, 'enrolled', 'ca', { cn: 'urn:x509:enrolled-1' });
    c.renewed = issue(dir, 'renewed', 'ca', { cn: 'urn:x509:enrolled-1' });
    c.pinnedOther = issue(dir, 'pinned-other', 'ca', { cn: 'factory name', san: 'URI:urn:x509:pinned-1' });
    c.pskName = issue(dir, 'psk-name', 'ca', { cn: 'urn:x509:psk-1' });
    c.rpkName = issue(dir, 'rpk-name', 'ca', { cn: 'urn:rpk:1' });
    c.nobody = issue(dir, 'nobody', 'ca', { cn: 'urn:nobody:1', san: 'DNS:nobody.example' });
    c.noCn = issue(dir, 'no-cn', 'ca', { cn: 'x', san: 'URI:urn:x509:nocn-1' });
  });
  after(() => removeDir(dir));

  beforeEach(async () => {
    storeDir = tempDir('lwbs-admission-x509-store-');
    store = await open(storeDir);
    await store.profiles.put(X509_FLEET.name, JSON.stringify(X509_FLEET));
    await store.profiles.put(RPK_ONLY.name, JSON.stringify(RPK_ONLY));
    await store.devices.add({ endpoint: 'urn:x509:enrolled-1', profile: X509_FLEET.name, auth: { kind: 'x509', certificate: c.enrolled!.der } });
    await store.devices.add({ endpoint: 'urn:x509:pinned-1', profile: X509_FLEET.name, auth: { kind: 'x509', certificate: c.pinnedOther!.der } });
    await store.devices.add({ endpoint: 'urn:x509:psk-1', profile: X509_FLEET.name, auth: { kind: 'psk', identity: 'psk-1', key: Buffer.alloc(16, 1) } });
    profiles = new ProfileCache(store.profiles);
  });
  afterEach(async () => {
    await store.close();
    removeDir(storeDir);
  });

  it('certificateNamesEndpoint: CN or any subjectAltName value, exactly', () => {
    expect(certificateNamesEndpoint(c.san!.der, Buffer.from('urn:x509:san-1'))).to.equal(true);
    expect(certificateNamesEndpoint(c.san!.der, Buffer.from('dev.example'))).to.equal(true);
    expect(certificateNamesEndpoint(c.san!.der, Buffer.from('serial 0042'))).to.equal(true);
    expect(certificateNamesEndpoint(c.san!.der, Buffer.from('urn:x509:SAN-1'))).to.equal(false);
    expect(certificateNamesEndpoint(c.san!.der, Buffer.from('urn:x509:san'))).to.equal(false);
    expect(certificateNamesEndpoint(c.san!.der, Buffer.from([0xff, 0xfe]))).to.equal(false);
    expect(certificateNamesEndpoint(Buffer.from('garbage'), Buffer.from('urn:x509:san-1'))).to.equal(false);
  });

  it('an enrolled device with its certificate (CN = ep) is admitted', async () => {
    const r = await admit(store, profiles, { endpoint: Buffer.from('urn:x509:enrolled-1'), identity: x509(c.enrolled!) });
    expect(r.ok && r.admitted).to.deep.include({ enrolled: false, security: 'x509' });
  });

  it('a trusted certificate renewed by the CA naming an enrolled x509 device is admitted; the enrolled certificate stays', async () => {
    const r = await admit(store, profiles, { endpoint: Buffer.from('urn:x509:enrolled-1'), identity: x509(c.renewed!) });
    expect(r.ok).to.equal(true);
    const d = await store.devices.get('urn:x509:enrolled-1');
    expect(d!.auth.kind === 'x509' && d!.auth.certificate.equals(c.enrolled!.der)).to.equal(true);
  });

  it('ep matching a subjectAltName (URI) is admitted; the CN need not be the endpoint', async () => {
    const r = await admit(store, profiles, { endpoint: Buffer.from('urn:x509:pinned-1'), identity: x509(c.pinnedOther!) });
    expect(r.ok).to.equal(true);
  });

  it('a certificate that does not name ep is refused as unauthorized; the detail names the endpoint and the certificate names', async () => {
    for (const ep of ['urn:x509:enrolled-1', 'urn:x509:brand-new']) {
      const r = await admit(store, profiles, { endpoint: Buffer.from(ep), identity: x509(c.san!) });
      expect(r.ok).to.equal(false);
      if (r.ok) continue;
      expect(r.refusal.cause).to.equal('unauthorized');
      expect(r.refusal.detail).to.include(JSON.stringify(ep)).and.to.include('CN "serial 0042"').and.to.include('"urn:x509:san-1"');
      expect(r.refusal.diagnostic).to.not.include(ep);
    }
    expect(await store.devices.get('urn:x509:brand-new')).to.equal(undefined);
  });

  it('without ep (1.1): the endpoint is the enrolled device of that exact certificate, else the CN', async () => {
    const pinned = await admit(store, profiles, { identity: x509(c.pinnedOther!) });
    expect(pinned.ok && pinned.admitted.endpoint.toString()).to.equal('urn:x509:pinned-1');
    const renewed = await admit(store, profiles, { identity: x509(c.renewed!) });
    expect(renewed.ok && renewed.admitted.endpoint.toString()).to.equal('urn:x509:enrolled-1');
    const zeroTouch = await admit(store, profiles, { identity: x509(c.cn!) });
    expect(zeroTouch.ok && zeroTouch.admitted).to.deep.include({ enrolled: true });
    expect(zeroTouch.ok && zeroTouch.admitted.endpoint.toString()).to.equal('urn:x509:cn-1');
    // The CN "x" is no endpoint any profile takes, although a SAN would be: the CN decides without ep.
    const noCn = await admit(store, profiles, { identity: x509(c.noCn!) });
    expect(!noCn.ok && noCn.refusal.cause).to.equal('unknown_endpoint');
  });

  it('zero-touch: an unknown endpoint named by the certificate enrolls through a profile allowing x509, recorded with that certificate', async () => {
    const r = await admit(store, profiles, { endpoint: Buffer.from('urn:x509:san-1'), identity: x509(c.san!) });
    expect(r.ok && r.admitted).to.deep.include({ enrolled: true, security: 'x509' });
    const d = await store.devices.get('urn:x509:san-1');
    expect(d).to.deep.include({ profile: X509_FLEET.name, enrolledBy: 'zero-touch' });
    expect(d!.auth).to.deep.include({ kind: 'x509', subjectCn: 'serial 0042' });
    expect(d!.auth.kind === 'x509' && d!.auth.certificate.equals(c.san!.der)).to.equal(true);
  });

  it('a profile that does not allow x509 enrollment refuses; a device enrolled with psk is refused over X.509', async () => {
    const rpk = await admit(store, profiles, { endpoint: Buffer.from('urn:rpk:1'), identity: x509(c.rpkName!) });
    expect(!rpk.ok && rpk.refusal.cause).to.equal('enrollment_not_allowed');
    const psk = await admit(store, profiles, { endpoint: Buffer.from('urn:x509:psk-1'), identity: x509(c.pskName!) });
    expect(!psk.ok && psk.refusal.cause).to.equal('unauthorized');
    expect(!psk.ok && psk.refusal.detail).to.include('enrolled with psk');
  });

  it('x509Admissible (the handshake lookup): the exact enrolled certificate, or a name that an x509 device or an x509 profile takes', async () => {
    const cases: [string, TestCert, boolean][] = [
      ['the enrolled certificate', c.enrolled!, true],
      ['a renewed certificate naming an x509 device', c.renewed!, true],
      ['an enrolled certificate whose CN is nobody', c.pinnedOther!, true],
      ['a name a profile allowing x509 matches', c.cn!, true],
      ['a SAN a profile allowing x509 matches (CN matches nothing)', c.noCn!, true],
      ['only the name of a psk device', c.pskName!, false],
      ['only a name whose profile does not allow x509', c.rpkName!, false],
      ['no name anybody takes', c.nobody!, false],
    ];
    for (const [what, cert, want] of cases) expect(await x509Admissible(store, profiles, cert.der), what).to.equal(want);
    expect(await x509Admissible(store, profiles, Buffer.from('not a certificate'))).to.equal(false);
  });
});
