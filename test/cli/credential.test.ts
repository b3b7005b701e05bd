/**
 * `lwbs device credential add`: a device enrolled directly with the registration server (no
 * bootstrap) registers with exactly that credential — over plain CoAP with a scripted device
 * against the real registration server on the CLI's store, and over DTLS the PSK lookup finds the
 * direct PSK. Bad options are usage errors that never echo the key.
 */
import { expect } from 'chai';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateServerKeyPair } from '../../src/bootstrap/credentials.js';
import { registrationPskKey, registrationRpkKnown, registrationX509Known } from '../../src/registration/handoff.js';
import { issue, makeCa } from '../dtls/openssl-support.js';
import { RegistrationServer } from '../../src/registration/server.js';
import { FakeDevice } from '../bootstrap/fake-device.js';
import { PROFILE_DOC } from '../store/support.js';
import { register } from '../registration/support.js';
import { CliSandbox } from './support.js';

const COAP = 'coap://127.0.0.1:5783';
const COAPS = 'coaps://127.0.0.1:5784';
const KEY = '00112233445566778899aabbccddeeff';

describe('cli: lwbs device credential add (direct enrollment)', function () {
  this.timeout(30_000);
  let box: CliSandbox;

  beforeEach(async () => {
    box = new CliSandbox();
    await box.withStore(async (store) => {
      await store.profiles.put('p', PROFILE_DOC);
      await store.devices.add({ endpoint: 'direct-1', profile: 'p' });
    });
  });
  afterEach(() => box.remove());

  it('nosec: the device registers with the registration server without ever bootstrapping', async () => {
    const r = box.run(['device', 'credential', 'add', 'direct-1', '--ssid', '4', '--mode', 'nosec']);
    expect(r.code, r.err).to.equal(0);
    expect(r.out).to.match(/enrolled "?direct-1"? directly with coap:\/\/127\.0\.0\.1:5783 \(SSID 4, nosec\): credential \d+ active/);
    await box.withStore(async (store) => {
      const [cred] = await store.credentials.listForDevice('direct-1');
      expect(cred).to.deep.include({ status: 'active', mode: 'nosec', shortServerId: 4, serverUri: COAP, sessionId: null });
      const server = new RegistrationServer({ store, serverUris: [COAP, COAPS] });
      const node = await server.listen({ host: '127.0.0.1', port: 0 });
      const device = await FakeDevice.open();
      try {
        const res = await register(device, node.address().port, ['ep=direct-1', 'lt=300', 'lwm2m=1.1', 'b=U']);
        expect(res.code).to.equal('2.01');
        expect((await store.registry.getByEndpoint('direct-1'))!.credentialId).to.equal(cred!.id);
      } finally {
        await device.close();
        await server.close();
      }
    });
  });

  it('psk: the DTLS lookup finds the direct key; a second add for the SSID retires the first', async () => {
    expect(box.run(['device', 'credential', 'add', 'direct-1', '--ssid', '1', '--mode', 'psk', '--psk-identity', 'direct-1-id', '--psk-key', KEY]).code).to.equal(0);
    const again = box.run(['device', 'credential', 'add', 'direct-1', '--ssid', '1', '--mode', 'psk', '--psk-identity', 'direct-1-id2', '--psk-key', KEY.split('').reverse().join('')]);
    expect(again.code, again.err).to.equal(0);
    expect(again.out).to.match(/1 older credential for SSID 1 retired/);
    expect(again.out + again.err).not.to.include(KEY);
    await box.withStore(async (store) => {
      expect(await registrationPskKey(store, Buffer.from('direct-1-id'), [COAP, COAPS])).to.equal(undefined);
      expect(Buffer.from((await registrationPskKey(store, Buffer.from('direct-1-id2'), [COAP, COAPS]))!).toString('hex')).to.equal(KEY.split('').reverse().join(''));
    });
  });

  it('rpk: the device key is known to the registration server, which keeps its own key pair', async () => {
    const device = generateServerKeyPair();
    const file = box.file('dev.der', device.publicKey);
    const r = box.run(['device', 'credential', 'add', 'direct-1', '--ssid', '2', '--mode', 'rpk', '--public-key', file]);
    expect(r.code, r.err).to.equal(0);
    await box.withStore(async (store) => {
      expect(await registrationRpkKnown(store, device.publicKey, [COAP, COAPS])).to.equal(true);
      const [cred] = await store.credentials.listForDevice('direct-1');
      const server = await store.serverKeys.get('registration');
      expect(cred!.serverPublicKey).to.deep.equal(server!.publicKey);
    });
  });

  it('x509: the certificate (PEM) is known to the registration server, with its self-signed certificate as the server\'s', async () => {
    makeCa(box.dir, 'ca', 'cli CA');
    const device = issue(box.dir, 'dev', 'ca', { cn: 'serial 1', san: 'URI:direct-1' });
    const r = box.run(['device', 'credential', 'add', 'direct-1', '--ssid', '3', '--mode', 'x509', '--certificate', device.certFile]);
    expect(r.code, r.err).to.equal(0);
    expect(r.out).to.match(/enrolled "?direct-1"? directly with coaps:\/\/127\.0\.0\.1:5784 \(SSID 3, x509\): credential \d+ active/);
    expect(r.err).to.match(/warning: registration\.x509\.trustAnchors is empty/);
    const serverCert = new X509Certificate(readFileSync(join(box.data, 'registration-certificate.pem')));
    expect(serverCert.subjectAltName).to.equal('IP Address:127.0.0.1');
    await box.withStore(async (store) => {
      expect(await registrationX509Known(store, device.der, [COAP, COAPS])).to.equal(true);
      const [cred] = await store.credentials.listForDevice('direct-1');
      expect(cred).to.deep.include({ status: 'active', mode: 'x509', shortServerId: 3, serverUri: COAPS });
      expect(cred!.publicKey!.equals(device.der)).to.equal(true);
      expect(cred!.serverPublicKey!.equals(serverCert.raw)).to.equal(true);
      const key = await store.serverKeys.get('registration');
      expect(serverCert.publicKey.export({ format: 'der', type: 'spki' }).equals(key!.publicKey)).to.equal(true);
    });
  });

  it('x509: a configured server certificate is recorded; a certificate that does not name the endpoint is refused (exit 2)', async () => {
    const ca = makeCa(box.dir, 'ca', 'cli CA');
    const server = issue(box.dir, 'server', 'ca', { cn: 'lwm2m.example.com', san: 'DNS:lwm2m.example.com' });
    const device = issue(box.dir, 'dev', 'ca', { cn: 'direct-1' });
    const stranger = issue(box.dir, 'stranger', 'ca', { cn: 'someone-else', san: 'DNS:someone.example' });
    const config = box.file('lwbs.json', JSON.stringify({ registration: { x509: { trustAnchors: [ca.certFile], certificate: server.certFile, privateKey: server.keyFile } } }));
    const bad = box.run(['device', 'credential', 'add', 'direct-1', '--ssid', '3', '--mode', 'x509', '--certificate', stranger.certFile, '-c', config]);
    expect(bad.code).to.equal(2);
    expect(bad.err).to.match(/does not name "?direct-1"? \(CN "someone-else", subjectAltName "someone\.example"\)/);
    const der = box.file('dev.der', device.der);
    const r = box.run(['device', 'credential', 'add', 'direct-1', '--ssid', '3', '--mode', 'x509', '--certificate', der, '-c', config]);
    expect(r.code, r.err).to.equal(0);
    expect(r.err).to.not.match(/warning/);
    expect(r.out + r.err).to.not.include(readFileSync(server.keyFile, 'utf8').split('\n')[1]!);
    await box.withStore(async (store) => {
      const [cred] = await store.credentials.listForDevice('direct-1');
      expect(cred!.publicKey!.equals(device.der)).to.equal(true);
      expect(cred!.serverPublicKey!.equals(server.der)).to.equal(true);
    });
  });

  it('refuses bad options as usage errors (exit 2), and unknown devices (exit 1), never echoing a key', async () => {
    const cases: [string[], RegExp, number][] = [
      [['--ssid', '0', '--mode', 'nosec'], /--ssid must be 1\.\.65534/, 2],
      [['--ssid', '1', '--mode', 'tls'], /--mode must be nosec, psk, rpk or x509/, 2],
      [['--ssid', '1', '--mode', 'x509'], /--mode x509 needs --certificate FILE/, 2],
      [['--ssid', '1', '--mode', 'rpk', '--certificate', 'dev.pem'], /--certificate goes with --mode x509/, 2],
      [['--ssid', '1', '--mode', 'nosec', '--psk-key', KEY], /--psk-\* options go with --mode psk/, 2],
      [['--ssid', '1', '--mode', 'psk', '--psk-identity', 'a', '--psk-key', 'zz'], /--psk-key as pairs of hex digits/, 2],
      [['--ssid', '1', '--mode', 'psk', '--psk-identity', 'a', '--psk-key', KEY, '--server-uri', 'coap://x'], /must be a coaps:\/\/ URI/, 2],
    ];
    for (const [args, pattern, code] of cases) {
      const r = box.run(['device', 'credential', 'add', 'direct-1', ...args]);
      expect(r.code, args.join(' ')).to.equal(code);
      expect(r.err).to.match(pattern);
      expect(r.err).not.to.include(KEY);
    }
    const unknown = box.run(['device', 'credential', 'add', 'nobody', '--ssid', '1', '--mode', 'nosec']);
    expect(unknown.code).to.equal(1);
    expect(unknown.err).to.match(/nobody/);
  });
});
