/**
 * Interop with libcoap's coap-client (Debian libcoap3-bin), built on GnuTLS and on OpenSSL,
 * against lwbs's coaps listeners (`startApp`):
 *  - Bootstrap-Request `POST /bs?ep=…` with the device's enrolled PSK (both builds) and raw
 *    public key (GnuTLS build: `-M`; libcoap supports RPK only with GnuTLS and TinyDTLS) → 2.04,
 *    and the bootstrap server started a session for that endpoint with that security. coap-client
 *    exits after the response (close_notify) and answers none of the server's requests, so the
 *    session itself then fails - that part is not what is tested here.
 *  - Register `POST /rd?ep=…` with a credential provisioned for the registration server's coaps
 *    URI (PSK; RPK with the GnuTLS build) → 2.01, the registry row has that security.
 * coap-client prints the PDUs it sends and receives at verbosity 7 (`v:1 t:ACK c:2.04 …`).
 */
import { expect } from 'chai';
import type { SqliteStore } from '../../src/store/store.js';
import { removeDir, tempDir } from '../store/support.js';
import { LOCAL, peerKey, requireBinary, runPeer, startInteropApp, until, type InteropApp, type PeerKey, type PeerRun } from './support.js';

const PROFILE = {
  name: 'interop',
  match: ['urn:interop:*'],
  delete: ['/0', '/1'],
  servers: [{ shortServerId: 5, handOff: true, lifetime: 300, binding: 'U', security: { mode: 'psk' } }],
};
/** coap-client's `-k` takes the key as text. */
const BS_KEY = 'lwbs-bs-psk-0001';
const REG_KEY = 'lwbs-reg-psk-0002';
const OBJECTS = '</1/0>,</3/0>';

interface CoapClientRun extends PeerRun {
  /** The response code coap-client received (`2.04`), undefined if none. */
  readonly response: string | undefined;
}

/** One request with coap-client (`-B` bounds its wait), PDUs logged to stdout. */
async function coapClient(bin: string, uri: string, auth: string[], extra: string[] = []): Promise<CoapClientRun> {
  const run = await runPeer(bin, ['-m', 'post', '-B', '8', '-v', '7', ...auth, ...extra, uri], undefined, 20_000);
  const m = /^v:1 t:(?:ACK|CON|NON) c:(\d\.\d{2}) /m.exec(run.stdout);
  return { ...run, response: m?.[1] };
}

const show = (r: PeerRun): string => `exit ${r.code}\nstdout:\n${r.stdout.slice(-3000)}\nstderr:\n${r.stderr.slice(-2000)}`;

describe('interop: coap-client (libcoap3) over DTLS against lwbs', function () {
  this.timeout(60_000);
  let dir: string;
  let ia: InteropApp;
  let store: SqliteStore;
  let rpk: PeerKey;
  let regRpk: PeerKey;

  const builds = [
    ['coap-client-gnutls', 'gnutls'],
    ['coap-client-openssl', 'openssl'],
  ] as const;

  before(async () => {
    dir = tempDir('lwbs-interop-coap-');
    rpk = peerKey(dir, 'bs-device');
    regRpk = peerKey(dir, 'reg-device');
    ia = await startInteropApp(dir, async (s) => {
      await s.profiles.put(PROFILE.name, JSON.stringify(PROFILE));
      for (const [, lib] of builds) {
        await s.devices.add({ endpoint: `urn:interop:bs-psk-${lib}`, profile: PROFILE.name, auth: { kind: 'psk', identity: `bs-id-${lib}`, key: Buffer.from(BS_KEY) } });
        await s.devices.add({ endpoint: `urn:interop:reg-psk-${lib}`, profile: PROFILE.name });
      }
      await s.devices.add({ endpoint: 'urn:interop:bs-rpk', profile: PROFILE.name, auth: { kind: 'rpk', publicKey: rpk.spki } });
      await s.devices.add({ endpoint: 'urn:interop:reg-rpk', profile: PROFILE.name });
    });
    store = ia.store;
    // Credentials as a bootstrap session would have provisioned them for the registration server.
    for (const [, lib] of builds) {
      await store.credentials.addPending({
        endpoint: `urn:interop:reg-psk-${lib}`, shortServerId: 5, serverUri: ia.registrationUri, mode: 'psk',
        pskIdentity: `reg-id-${lib}`, pskKey: Buffer.from(REG_KEY),
      });
    }
    await store.credentials.addPending({ endpoint: 'urn:interop:reg-rpk', shortServerId: 5, serverUri: ia.registrationUri, mode: 'rpk', publicKey: regRpk.spki });
  });
  after(async () => {
    await ia?.app.close();
    removeDir(dir);
  });

  for (const [bin, lib] of builds) {
    it(`${bin}: Bootstrap-Request with the enrolled PSK gets 2.04 and starts a psk session for the endpoint`, async () => {
      requireBinary(bin, 'libcoap3-bin');
      const ep = `urn:interop:bs-psk-${lib}`;
      const r = await coapClient(bin, `coaps://${LOCAL}:${ia.bootstrapPort}/bs?ep=${ep}`, ['-u', `bs-id-${lib}`, '-k', BS_KEY]);
      expect(r.response, show(r)).to.equal('2.04');
      const [session] = await until(async () => {
        const l = await store.sessions.list({ endpoint: ep });
        return l.length > 0 && l;
      }, `the bootstrap session of ${ep}`);
      expect(session).to.deep.include({ security: 'psk', profile: PROFILE.name });
      expect(session!.peer).to.match(/^127\.0\.0\.1:\d+$/);
    });

    it(`${bin}: Register with a PSK provisioned for the registration server gets 2.01, the registration is psk`, async () => {
      requireBinary(bin, 'libcoap3-bin');
      const ep = `urn:interop:reg-psk-${lib}`;
      const r = await coapClient(bin, `coaps://${LOCAL}:${ia.registrationPort}/rd?ep=${ep}&lt=300&lwm2m=1.1&b=U`, ['-u', `reg-id-${lib}`, '-k', REG_KEY], ['-t', '40', '-e', OBJECTS]);
      expect(r.response, show(r)).to.equal('2.01');
      expect(r.stdout).to.match(/c:2\.01 .*Location-Path:rd/);
      const reg = await store.registry.getByEndpoint(ep);
      expect(reg).to.deep.include({ security: 'psk', lifetime: 300, lwm2mVersion: '1.1', address: '127.0.0.1' });
      expect(reg!.identity!.toString()).to.equal(`reg-id-${lib}`);
      expect(reg!.objects.map((o) => [o.id, [...o.instances]])).to.deep.equal([[1, [0]], [3, [0]]]);
      const [cred] = await store.credentials.listForDevice(ep);
      expect(cred).to.deep.include({ id: reg!.credentialId, status: 'active', mode: 'psk' });
    });

    it(`${bin}: an unknown PSK identity gets no response (the handshake is refused)`, async () => {
      requireBinary(bin, 'libcoap3-bin');
      const r = await runPeer(bin, ['-m', 'post', '-B', '3', '-v', '7', '-u', `nobody-${lib}`, '-k', BS_KEY, `coaps://${LOCAL}:${ia.bootstrapPort}/bs?ep=urn:interop:nobody`], undefined, 20_000);
      expect(/^v:1 t:(?:ACK|CON|NON) c:\d\.\d{2} /m.test(r.stdout), show(r)).to.equal(false);
      expect(r.stdout + r.stderr).to.match(/alert|unknown psk identity|handshake/i);
      expect(await store.sessions.list({ endpoint: 'urn:interop:nobody' })).to.deep.equal([]);
    });
  }

  it('coap-client-gnutls: Bootstrap-Request with the enrolled raw public key (-M) gets 2.04 and starts an rpk session', async () => {
    requireBinary('coap-client-gnutls', 'libcoap3-bin');
    const ep = 'urn:interop:bs-rpk';
    const r = await coapClient('coap-client-gnutls', `coaps://${LOCAL}:${ia.bootstrapPort}/bs?ep=${ep}`, ['-M', rpk.privatePemFile]);
    expect(r.response, show(r)).to.equal('2.04');
    const [session] = await until(async () => {
      const l = await store.sessions.list({ endpoint: ep });
      return l.length > 0 && l;
    }, `the bootstrap session of ${ep}`);
    expect(session).to.deep.include({ security: 'rpk', profile: PROFILE.name });
  });

  it('coap-client-gnutls: Register with a raw public key provisioned for the registration server gets 2.01, the registration is rpk', async () => {
    requireBinary('coap-client-gnutls', 'libcoap3-bin');
    const ep = 'urn:interop:reg-rpk';
    const r = await coapClient('coap-client-gnutls', `coaps://${LOCAL}:${ia.registrationPort}/rd?ep=${ep}&lt=300&lwm2m=1.1&b=U`, ['-M', regRpk.privatePemFile], ['-t', '40', '-e', OBJECTS]);
    expect(r.response, show(r)).to.equal('2.01');
    const reg = await store.registry.getByEndpoint(ep);
    expect(reg).to.deep.include({ security: 'rpk', lifetime: 300, address: '127.0.0.1' });
    expect(reg!.identity!.equals(regRpk.spki)).to.equal(true);
    const [cred] = await store.credentials.listForDevice(ep);
    expect(cred).to.deep.include({ id: reg!.credentialId, status: 'active', mode: 'rpk' });
  });

  it('coap-client-gnutls: a raw public key that is not enrolled is refused (no response, no session)', async () => {
    requireBinary('coap-client-gnutls', 'libcoap3-bin');
    const stranger = peerKey(dir, 'stranger');
    const before = (await store.sessions.list({ endpoint: 'urn:interop:bs-rpk' })).length;
    const r = await runPeer('coap-client-gnutls', ['-m', 'post', '-B', '3', '-v', '7', '-M', stranger.privatePemFile, `coaps://${LOCAL}:${ia.bootstrapPort}/bs?ep=urn:interop:bs-rpk`], undefined, 20_000);
    expect(/^v:1 t:(?:ACK|CON|NON) c:\d\.\d{2} /m.test(r.stdout), show(r)).to.equal(false);
    expect(r.stdout + r.stderr).to.match(/alert|certificate|handshake/i);
    expect((await store.sessions.list({ endpoint: 'urn:interop:bs-rpk' })).length).to.equal(before);
  });
});
