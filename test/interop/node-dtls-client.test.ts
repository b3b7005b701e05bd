/**
 * Interop with node-dtls-client (npm; an independent DTLS 1.2 client in JavaScript, PSK only)
 * against lwbs's coaps listeners (`startApp`), once per PSK cipher suite lwbs implements:
 *  - Bootstrap-Request `POST /bs?ep=…` with the device's enrolled PSK → 2.04, and the bootstrap
 *    server started a psk session for that endpoint;
 *  - Register `POST /rd?ep=…` with a PSK provisioned for the registration server → 2.01 with a
 *    Location-Path, and the registry row is psk with that identity.
 * The CoAP messages are built and read with coap-packet; the client answers none of the bootstrap
 * server's own requests (that session then fails, which is not what is tested here).
 */
import { generate, parse, type ParsedPacket } from 'coap-packet';
import { expect } from 'chai';
import { dtls } from 'node-dtls-client';
import type { SqliteStore } from '../../src/store/store.js';
import { removeDir, tempDir } from '../store/support.js';
import { LOCAL, startInteropApp, until, type InteropApp } from './support.js';

const PROFILE = {
  name: 'interop-ndc',
  match: ['urn:ndc:*'],
  delete: ['/0', '/1'],
  servers: [{ shortServerId: 5, handOff: true, lifetime: 300, binding: 'U', security: { mode: 'psk' } }],
};
const SUITES = ['TLS_PSK_WITH_AES_128_CCM_8', 'TLS_PSK_WITH_AES_128_CBC_SHA256', 'TLS_PSK_WITH_AES_128_GCM_SHA256', 'TLS_PSK_WITH_AES_128_CCM'] as const;
type Suite = (typeof SUITES)[number];
const BS_KEY = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
const REG_KEY = Buffer.from('ffeeddccbbaa99887766554433221100', 'hex');

/** Connects with one cipher suite, sends one CON request, resolves with the response to it. */
async function exchange(port: number, identity: string, key: Buffer, suite: Suite, request: Parameters<typeof generate>[0]): Promise<ParsedPacket> {
  const socket = dtls.createSocket({ type: 'udp4', address: LOCAL, port, psk: { [identity]: key }, timeout: 10_000, ciphers: [suite] });
  try {
    return await new Promise<ParsedPacket>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no response within 15 s (${suite})`)), 15_000);
      socket.on('error', (e: Error) => {
        clearTimeout(timer);
        reject(e);
      });
      socket.on('connected', () => socket.send(generate(request)));
      socket.on('message', (msg: Buffer) => {
        const p = parse(msg);
        // The response to our request; the server's own requests (bootstrap) are ignored.
        if (p.messageId === request.messageId || (p.token.length > 0 && p.token.equals(request.token ?? Buffer.alloc(0)) && !p.code.startsWith('0.'))) {
          clearTimeout(timer);
          resolve(p);
        }
      });
    });
  } finally {
    await new Promise<void>((r) => socket.close(() => r()));
  }
}

describe('interop: node-dtls-client (npm) over DTLS-PSK against lwbs', function () {
  this.timeout(60_000);
  let dir: string;
  let ia: InteropApp;
  let store: SqliteStore;

  before(async () => {
    dir = tempDir('lwbs-interop-ndc-');
    ia = await startInteropApp(dir, async (s) => {
      await s.profiles.put(PROFILE.name, JSON.stringify(PROFILE));
      for (const [i] of SUITES.entries()) {
        await s.devices.add({ endpoint: `urn:ndc:bs-${i}`, profile: PROFILE.name, auth: { kind: 'psk', identity: `ndc-bs-${i}`, key: BS_KEY } });
        await s.devices.add({ endpoint: `urn:ndc:reg-${i}`, profile: PROFILE.name });
      }
    });
    store = ia.store;
    for (const [i] of SUITES.entries()) {
      await store.credentials.addPending({ endpoint: `urn:ndc:reg-${i}`, shortServerId: 5, serverUri: ia.registrationUri, mode: 'psk', pskIdentity: `ndc-reg-${i}`, pskKey: REG_KEY });
    }
  });
  after(async () => {
    await ia?.app.close();
    if (dir) removeDir(dir);
  });

  for (const [i, suite] of SUITES.entries()) {
    it(`${suite}: Bootstrap-Request with the enrolled PSK gets 2.04 and starts a psk session`, async () => {
      const ep = `urn:ndc:bs-${i}`;
      const res = await exchange(ia.bootstrapPort, `ndc-bs-${i}`, BS_KEY, suite, {
        confirmable: true, code: '0.02', messageId: 0x1000 + i, token: Buffer.of(0xb0, i),
        options: [{ name: 'Uri-Path', value: Buffer.from('bs') }, { name: 'Uri-Query', value: Buffer.from(`ep=${ep}`) }],
      });
      expect(res.code).to.equal('2.04');
      const [session] = await until(async () => {
        const l = await store.sessions.list({ endpoint: ep });
        return l.length > 0 && l;
      }, `the bootstrap session of ${ep}`);
      expect(session).to.deep.include({ security: 'psk', profile: PROFILE.name });
    });

    it(`${suite}: Register with a PSK provisioned for the registration server gets 2.01, the registration is psk`, async () => {
      const ep = `urn:ndc:reg-${i}`;
      const res = await exchange(ia.registrationPort, `ndc-reg-${i}`, REG_KEY, suite, {
        confirmable: true, code: '0.02', messageId: 0x2000 + i, token: Buffer.of(0xc0, i),
        options: [
          { name: 'Uri-Path', value: Buffer.from('rd') },
          { name: 'Content-Format', value: Buffer.of(40) },
          { name: 'Uri-Query', value: Buffer.from(`ep=${ep}`) },
          { name: 'Uri-Query', value: Buffer.from('lt=300') },
          { name: 'Uri-Query', value: Buffer.from('lwm2m=1.1') },
        ],
        payload: Buffer.from('</1/0>,</3/0>'),
      });
      expect(res.code).to.equal('2.01');
      const location = res.options.filter((o) => o.name === 'Location-Path').map((o) => o.value.toString());
      const reg = await store.registry.getByEndpoint(ep);
      expect(reg).to.deep.include({ security: 'psk', lifetime: 300, address: LOCAL });
      expect(location).to.deep.equal(['rd', reg!.id]);
      expect(reg!.identity?.toString()).to.equal(`ndc-reg-${i}`);
    });
  }
});
