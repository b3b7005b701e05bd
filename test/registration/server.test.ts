/**
 * The registration server over real UDP on 127.0.0.1, against scripted devices on raw sockets
 * (test/bootstrap/fake-device.ts, coap-packet): the spec's datagrams byte for byte, Register /
 * Update / De-register, every refusal code, replacement, the hand-off's credential checks and
 * promotion, DTLS identities (through a test endpoint that stamps them), expiry with short
 * lifetimes, and a restart on the same database.
 */
import { expect } from 'chai';
import { RegistrationServer, type RegistrationChange } from '../../src/registration/server.js';
import type { CoapNode } from '../../src/coap/coap-node.js';
import type { SqliteStore } from '../../src/store/store.js';
import { memoryLogger } from '../../src/util/log.js';
import { FakeDevice } from '../bootstrap/fake-device.js';
import { RawDevice, sleep } from '../coap/raw-device.js';
import { open, PROFILE_DOC, removeDir, tempDir } from '../store/support.js';
import { IdentityEndpoint, locationPath, OBJECTS, register, SPEC_REGISTER, until } from './support.js';

const COAP_URI = 'coap://lwbs.test:5783';
const COAPS_URI = 'coaps://lwbs.test:5784';
const T = { ackTimeoutMs: 150, ackRandomFactor: 1, maxRetransmit: 1 };
const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

describe('registration server (scripted devices over UDP)', function () {
  this.timeout(20_000);
  let dir: string;
  let store: SqliteStore;
  let server: RegistrationServer;
  let node: CoapNode;
  let port: number;
  let device: FakeDevice;
  let changes: RegistrationChange[];
  let log: ReturnType<typeof memoryLogger>;
  const extra: { close(): Promise<void> }[] = [];

  const start = async (o: { newId?: () => string; graceMs?: number } = {}): Promise<void> => {
    changes = [];
    log = memoryLogger();
    server = new RegistrationServer({
      store,
      serverUris: [COAP_URI, COAPS_URI],
      log,
      onChange: (c) => changes.push(c),
      ...(o.newId ? { newId: o.newId } : {}),
      ...(o.graceMs !== undefined ? { expiryGraceMs: o.graceMs } : {}),
    });
    node = await server.listen({ host: '127.0.0.1', port: 0, transmission: T });
    port = node.address().port;
  };
  /** Enrolls a device provisioned for this server over plain CoAP (as a nosec hand-off leaves it). */
  const provision = async (ep: string | Buffer, status: 'pending' | 'active' = 'active', serverUri = COAP_URI) => {
    await store.devices.add({ endpoint: ep, profile: 'p' });
    const c = await store.credentials.addPending({ endpoint: ep, shortServerId: 1, serverUri, mode: 'nosec' });
    if (status === 'active') await store.credentials.promote(c.id);
    return c;
  };
  const refusals = async (ep?: string) => (await store.registry.events(ep)).filter((e) => e.kind === 'refused');
  const newDevice = async (): Promise<FakeDevice> => {
    const d = await FakeDevice.open();
    extra.push(d);
    return d;
  };

  beforeEach(async () => {
    dir = tempDir('lwbs-reg-');
    store = await open(dir);
    await store.profiles.put('p', PROFILE_DOC);
    device = await FakeDevice.open();
  });
  afterEach(async () => {
    for (const x of extra.splice(0)) await x.close();
    await device.close();
    await server.close();
    await store.close();
    removeDir(dir);
  });

  describe('the spec datagrams (registration.md §2.4, §3, §4)', () => {
    it('answers Register, Update and De-register byte for byte', async () => {
      await start({ newId: () => '5a3f' });
      await provision('dev1');
      const raw = await RawDevice.open();
      extra.push(raw);
      const exchange = async (request: Buffer, mid: number): Promise<Buffer> => {
        raw.send(request, port);
        return (await raw.waitFor((rx) => rx.raw.readUInt16BE(2) === mid)).raw;
      };
      expect((await exchange(SPEC_REGISTER, 0x1234)).toString('hex')).to.equal(hex('64 41 12 34 A1 B2 C3 D4 82 72 64 04 35 61 33 66').toString('hex'));
      const reg = await store.registry.get('5a3f');
      expect(reg).to.deep.include({ lwm2mVersion: '1.1', lifetime: 300, binding: 'U', queueMode: false, address: '127.0.0.1', port: raw.port, rootPath: '/' });
      expect(reg?.endpoint.toString()).to.equal('dev1');
      expect(reg?.objects).to.deep.equal([{ id: 1, instances: [0] }, { id: 3, instances: [0] }]);

      const before = reg!.expiresAt!;
      await sleep(5);
      expect((await exchange(hex('44 02 12 35 A1 B2 C3 D5 B2 72 64 04 35 61 33 66'), 0x1235)).toString('hex')).to.equal(hex('64 44 12 35 A1 B2 C3 D5').toString('hex'));
      expect((await store.registry.get('5a3f'))!.expiresAt).to.be.greaterThan(before);

      expect((await exchange(hex('44 04 12 36 A1 B2 C3 D6 B2 72 64 04 35 61 33 66'), 0x1236)).toString('hex')).to.equal(hex('64 42 12 36 A1 B2 C3 D6').toString('hex'));
      expect(await store.registry.get('5a3f')).to.equal(undefined);
      expect((await store.registry.events('dev1')).map((e) => e.kind)).to.deep.equal(['deregister', 'update', 'register']);
      expect(changes.map((c) => c.kind)).to.deep.equal(['register', 'update', 'deregister']);
    });
  });

  describe('Register', () => {
    beforeEach(() => start());

    it('answers 2.01 with Location-Path rd/{id} and records everything the client said', async () => {
      await provision('urn:imei:1');
      const ans = await register(device, port, ['ep=urn:imei:1', 'lt=120', 'lwm2m=1.1', 'b=U', 'Q', 'sms=4915100', 'apn=iot'], '</lwm2m>;rt="oma.lwm2m";ct=110,</lwm2m/1/0>,</lwm2m/3>;ver=1.2,</lwm2m/3/0>,</lwm2m/3303/0>,</lwm2m/3303/1>');
      expect(ans.code).to.equal('2.01');
      const [rd, id] = locationPath(ans.packet);
      expect(rd).to.equal('rd');
      const reg = (await store.registry.get(id!))!;
      expect(reg).to.deep.include({
        address: '127.0.0.1',
        port: device.port,
        security: 'nosec',
        identity: null,
        lwm2mVersion: '1.1',
        lifetime: 120,
        binding: 'U',
        queueMode: true,
        sms: '4915100',
        rootPath: '/lwm2m',
        attributes: { apn: 'iot' },
      });
      expect(reg.contentFormats).to.deep.equal([110]);
      expect(reg.objects).to.deep.equal([{ id: 1, instances: [0] }, { id: 3, version: '1.2', instances: [0] }, { id: 3303, instances: [0, 1] }]);
      expect(reg.expiresAt! - reg.updatedAt).to.equal(120_000);
      expect(changes).to.have.length(1);
      expect(changes[0]).to.deep.include({ kind: 'register' });
      const line = log.lines.find((l) => l.msg === 'registered');
      expect(line).to.deep.include({ ep: '"urn:imei:1"', id, lt: 120, queue: true });
      expect(server.nextExpiryRun).to.equal(reg.expiresAt);
    });

    it('applies the documented defaults for a bare 1.0 Register', async () => {
      await provision('old');
      const ans = await register(device, port, ['ep=old'], '</1/0>,</3/0>');
      expect(ans.code).to.equal('2.01');
      const reg = (await store.registry.getByEndpoint('old'))!;
      expect(reg).to.deep.include({ lwm2mVersion: '1.0', lifetime: 86400, binding: 'U', queueMode: false });
      expect((await store.registry.events('old'))[0]!.detail).to.include('defaulted: lwm2m, lt, b');
    });

    it('a new Register of the endpoint replaces the old one: its id is gone', async () => {
      await provision('dev');
      const first = locationPath((await register(device, port, ['ep=dev', 'lt=60', 'lwm2m=1.1'])).packet)[1]!;
      const other = await newDevice();
      const second = await register(other, port, ['ep=dev', 'lt=60', 'lwm2m=1.1']);
      expect(second.code).to.equal('2.01');
      const id2 = locationPath(second.packet)[1]!;
      expect(id2).to.not.equal(first);
      expect((await store.registry.getByEndpoint('dev'))?.port).to.equal(other.port);
      expect((await device.request(port, { path: ['rd', first] })).code).to.equal('4.04');
      expect((await other.request(port, { path: ['rd', id2] })).code).to.equal('2.04');
      expect(changes.map((c) => c.kind)).to.deep.equal(['register', 'register', 'update']);
      expect(changes[1]).to.have.nested.property('replaced.id', first);
      expect((await store.registry.events('dev')).map((e) => e.kind)).to.include.members(['replace']);
    });

    it('promotes a pending credential on the first Register and retires the older one (a lost Finish)', async () => {
      const old = await provision('dev');
      const fresh = await store.credentials.addPending({ endpoint: 'dev', shortServerId: 1, serverUri: COAP_URI, mode: 'nosec' });
      expect((await register(device, port, ['ep=dev', 'lt=60', 'lwm2m=1.1'])).code).to.equal('2.01');
      expect((await store.credentials.get(fresh.id))?.status).to.equal('active');
      expect((await store.credentials.get(old.id))?.status).to.equal('retired');
      expect((await store.registry.getByEndpoint('dev'))?.credentialId).to.equal(fresh.id);
      expect(log.lines.find((l) => l.msg === 'registered')).to.deep.include({ promoted: true, retired: 1 });
    });

    it('accepts a credential written with another spelling of our URI', async () => {
      await provision('dev', 'pending', 'COAP://LWBS.test:5783/');
      expect((await register(device, port, ['ep=dev', 'lwm2m=1.1', 'lt=60'])).code).to.equal('2.01');
    });

    it('registers many devices at once', async () => {
      const n = 200;
      await store.devices.addMany(Array.from({ length: n }, (_, i) => ({ endpoint: `bulk-${i}`, profile: 'p' })));
      for (let i = 0; i < n; i++) await store.credentials.addPending({ endpoint: `bulk-${i}`, shortServerId: 1, serverUri: COAP_URI, mode: 'nosec' });
      const devices = await Promise.all(Array.from({ length: 4 }, () => newDevice()));
      const answers = await Promise.all(Array.from({ length: n }, (_, i) => register(devices[i % 4]!, port, [`ep=bulk-${i}`, 'lt=600', 'lwm2m=1.1'])));
      expect(answers.map((a) => a.code)).to.deep.equal(Array(n).fill('2.01'));
      expect(new Set(answers.map((a) => locationPath(a.packet)[1])).size).to.equal(n);
      expect(await store.registry.count()).to.equal(n);
    });
  });

  describe('Register refusals (each recorded as an event)', () => {
    beforeEach(() => start());

    it('4.03 with one generic answer for an unknown endpoint, a device not provisioned for us, or only with DTLS', async () => {
      await store.devices.add({ endpoint: 'bare', profile: 'p' });
      await provision('elsewhere', 'active', 'coap://other.example:5683');
      await store.devices.add({ endpoint: 'psk-only', profile: 'p' });
      await store.credentials.addPending({ endpoint: 'psk-only', shortServerId: 1, serverUri: COAPS_URI, mode: 'psk', pskIdentity: 'psk-only', pskKey: Buffer.alloc(16, 1) });
      const answers = [];
      for (const ep of ['stranger', 'bare', 'elsewhere', 'psk-only']) answers.push(await register(device, port, [`ep=${ep}`, 'lt=60', 'lwm2m=1.1']));
      expect(answers.map((a) => a.code)).to.deep.equal(['4.03', '4.03', '4.03', '4.03']);
      expect(new Set(answers.map((a) => a.payload.toString())).size).to.equal(1);
      expect(answers[0]!.payload.toString()).to.match(/not allowed/);
      expect(await store.registry.count()).to.equal(0);
      const causes = (await refusals()).map((e) => e.detail!.split(':')[0]).reverse();
      expect(causes).to.deep.equal(['register 4.03 unknown_endpoint', 'register 4.03 not_provisioned', 'register 4.03 not_provisioned', 'register 4.03 not_provisioned']);
      expect((await refusals('psk-only'))[0]!.detail).to.include('with psk, not plain CoAP');
      expect((await refusals('elsewhere'))[0]!.detail).to.include('other.example');
    });

    it('4.03 when the only credential is retired', async () => {
      const a = await provision('dev');
      const b = await store.credentials.addPending({ endpoint: 'dev', shortServerId: 1, serverUri: 'coap://moved.example', mode: 'nosec' });
      await store.credentials.promote(b.id); // retires a
      expect((await store.credentials.get(a.id))?.status).to.equal('retired');
      expect((await register(device, port, ['ep=dev', 'lt=60', 'lwm2m=1.1'])).code).to.equal('4.03');
    });

    it('4.00 without ep over plain CoAP', async () => {
      const ans = await register(device, port, ['lt=60', 'lwm2m=1.1']);
      expect(ans.code).to.equal('4.00');
      expect(ans.payload.toString()).to.include('ep');
      expect((await refusals())[0]!.detail).to.include('no_endpoint');
    });

    it('4.12 for an unsupported LwM2M version', async () => {
      await provision('dev');
      const ans = await register(device, port, ['ep=dev', 'lt=60', 'lwm2m=2.0']);
      expect(ans.code).to.equal('4.12');
      expect(ans.payload.toString()).to.include('lwm2m 2.0');
      expect((await refusals('dev'))[0]!.detail).to.include('unsupported_version');
    });

    it('4.00 for bad parameters, naming them', async () => {
      await provision('dev');
      const cases: [string[], string][] = [
        [['ep=dev', 'lt=60', 'lwm2m=1.1', 'Q=1'], 'Q'],
        [['ep=dev', 'lt=60', 'lwm2m=1.1', 'b=UQ'], 'b'],
        [['ep=dev', 'lt=60', 'lwm2m=1.0', 'Q'], 'Q'],
        [['ep=dev', 'lt=-5', 'lwm2m=1.1'], 'lt'],
        [['ep=dev', 'lt=60', 'lt=70', 'lwm2m=1.1'], 'lt'],
        [['ep=dev', 'lt=60', 'lwm2m=x'], 'lwm2m'],
      ];
      for (const [query, param] of cases) {
        const ans = await register(device, port, query);
        expect(ans.code, query.join('&')).to.equal('4.00');
        expect(ans.payload.toString()).to.include(param);
      }
      expect(await refusals()).to.have.length(cases.length);
      expect(await store.registry.count()).to.equal(0);
    });

    it('4.00 for a malformed object list or another Content-Format', async () => {
      await provision('dev');
      for (const payload of ['</1/0', '</3/0/1>', '<1/0>;;x=']) {
        const ans = await register(device, port, ['ep=dev', 'lt=60', 'lwm2m=1.1'], payload);
        expect(ans.code, payload).to.equal('4.00');
        expect(ans.payload.toString()).to.match(/object list/);
      }
      expect((await register(device, port, ['ep=dev', 'lt=60', 'lwm2m=1.1'], '</1/0>', { contentFormat: 50 })).code).to.equal('4.00');
    });

    it('4.09 without an object list, also with a pid it cannot resolve', async () => {
      await provision('dev');
      const none = await register(device, port, ['ep=dev', 'lt=60', 'lwm2m=1.1'], null);
      expect(none.code).to.equal('4.09');
      expect(none.payload.toString()).to.match(/object list/);
      const pid = await register(device, port, ['ep=dev', 'lt=60', 'lwm2m=1.2', 'pid=oma:basic'], null);
      expect(pid.code).to.equal('4.09');
      expect(pid.payload.toString()).to.match(/pid/);
      // With a payload the pid is recorded and the objects come from the payload.
      expect((await register(device, port, ['ep=dev', 'lt=60', 'lwm2m=1.2', 'pid=oma:basic'])).code).to.equal('2.01');
      expect((await store.registry.getByEndpoint('dev'))?.profileIds).to.deep.equal(['oma:basic']);
    });

    it('4.00 for a NON Register; 4.05 for other methods; 4.04 elsewhere', async () => {
      await provision('dev');
      expect((await register(device, port, ['ep=dev', 'lt=60', 'lwm2m=1.1'], OBJECTS, { confirmable: false })).code).to.equal('4.00');
      expect((await device.request(port, { method: 'GET', path: ['rd'] })).code).to.equal('4.05');
      expect((await device.request(port, { method: 'PUT', path: ['rd', 'abc'] })).code).to.equal('4.05');
      expect((await device.request(port, { path: ['bs'], query: ['ep=dev'] })).code).to.equal('4.04');
      expect((await device.request(port, { path: ['rd', 'a', 'b'] })).code).to.equal('4.04');
      expect((await refusals('dev'))[0]!.detail).to.include('not_confirmable');
      // Still serving after all that, and after garbage.
      device.raw.send(Buffer.from([0xff, 0x00, 0x13]), port);
      expect((await register(device, port, ['ep=dev', 'lt=60', 'lwm2m=1.1'])).code).to.equal('2.01');
    });
  });

  describe('Update and De-register', () => {
    let id: string;
    beforeEach(async () => {
      await start();
      await provision('dev');
      id = locationPath((await register(device, port, ['ep=dev', 'lt=60', 'lwm2m=1.1'])).packet)[1]!;
    });

    it('an Update refreshes the lifetime and applies what it carries', async () => {
      const before = (await store.registry.get(id))!;
      await sleep(5);
      const ans = await device.request(port, { path: ['rd', id], query: ['lt=600', 'b=UT', 'Q'], payload: '</1/0>,</3/0>,</3303/0>', contentFormat: 40 });
      expect(ans.code).to.equal('2.04');
      const after = (await store.registry.get(id))!;
      expect(after).to.deep.include({ lifetime: 600, binding: 'UT', queueMode: true, registeredAt: before.registeredAt });
      expect(after.objects.map((o) => o.id)).to.deep.equal([1, 3, 3303]);
      expect(after.updatedAt).to.be.greaterThan(before.updatedAt);
      expect(after.expiresAt).to.equal(after.updatedAt + 600_000);
      const [ev] = await store.registry.events('dev');
      expect(ev).to.deep.include({ kind: 'update', registrationId: id });
      expect(ev!.detail).to.include('lt 60 → 600').and.include('object list (3 objects)');
      const change = changes.at(-1)!;
      expect(change.kind).to.equal('update');
      if (change.kind === 'update') expect(change.previous.lifetime).to.equal(60);
    });

    it('an Update refuses bad parameters and a changed ep or lwm2m with 4.00', async () => {
      for (const query of [['lt=abc'], ['ep=other'], ['lwm2m=1.2'], ['b=UQ'], ['Q=1']]) {
        const ans = await device.request(port, { path: ['rd', id], query });
        expect(ans.code, query.join('&')).to.equal('4.00');
      }
      expect((await device.request(port, { path: ['rd', id], payload: '</1/0', contentFormat: 40 })).code).to.equal('4.00');
      expect((await store.registry.get(id))?.lifetime).to.equal(60);
      expect(await refusals('dev')).to.have.length(6);
    });

    it('4.04 for an unknown registration (Update and De-register)', async () => {
      expect((await device.request(port, { path: ['rd', 'nope'] })).code).to.equal('4.04');
      expect((await device.request(port, { method: 'DELETE', path: ['rd', 'nope'] })).code).to.equal('4.04');
      expect((await device.request(port, { path: ['rd', 'bad id!'] })).code).to.equal('4.04');
      const [ev] = await refusals();
      expect(ev!.detail).to.include('unknown_registration');
    });

    it('an Update from a new address (NAT rebinding of a nosec device) is accepted and moves the registration', async () => {
      const moved = await newDevice();
      expect((await moved.request(port, { path: ['rd', id] })).code).to.equal('2.04');
      expect((await store.registry.get(id))?.port).to.equal(moved.port);
      expect((await store.registry.events('dev'))[0]!.detail).to.include(`127.0.0.1:${device.port} → 127.0.0.1:${moved.port}`);
      expect(log.lines.some((l) => l.msg === 'registration updated from a new address')).to.equal(true);
    });

    it('De-register answers 2.02; the id is then unknown', async () => {
      expect((await device.request(port, { method: 'DELETE', path: ['rd', id] })).code).to.equal('2.02');
      expect(await store.registry.get(id)).to.equal(undefined);
      expect((await device.request(port, { path: ['rd', id] })).code).to.equal('4.04');
      expect((await device.request(port, { method: 'DELETE', path: ['rd', id] })).code).to.equal('4.04');
      expect(changes.map((c) => c.kind)).to.deep.equal(['register', 'deregister']);
    });

    it('4.00 for a NON Update', async () => {
      expect((await device.request(port, { path: ['rd', id], confirmable: false })).code).to.equal('4.00');
    });
  });

  describe('DTLS identities (through a test endpoint that stamps them)', () => {
    let secure: IdentityEndpoint;
    let securePort: number;
    beforeEach(async () => {
      await start();
      secure = await IdentityEndpoint.create();
      server.attach(secure, { transmission: T });
      securePort = secure.address().port;
      for (const ep of ['psk-dev', 'other']) {
        await store.devices.add({ endpoint: ep, profile: 'p' });
        await store.credentials.addPending({ endpoint: ep, shortServerId: 1, serverUri: COAPS_URI, mode: 'psk', pskIdentity: `${ep}-id`, pskKey: Buffer.alloc(16, 9) });
      }
    });
    const stamp = (d: FakeDevice, identity: string): void => {
      secure.identities.set(d.port, { type: 'psk', identity: Buffer.from(identity) });
    };

    it('takes the endpoint from the PSK identity when ep is absent, and stores the identity', async () => {
      stamp(device, 'psk-dev-id');
      const ans = await register(device, securePort, ['lt=60', 'lwm2m=1.1']);
      expect(ans.code).to.equal('2.01');
      const reg = (await store.registry.getByEndpoint('psk-dev'))!;
      expect(reg.security).to.equal('psk');
      expect(reg.identity?.toString()).to.equal('psk-dev-id');
      expect((await store.credentials.get(reg.credentialId!))?.status).to.equal('active');
      expect(server.nodeFor(reg)?.address().port).to.equal(securePort);
      expect(server.nodeFor({ security: 'nosec' })?.address().port).to.equal(port);
    });

    it('refuses an ep that is not the identity\'s, and an identity without a credential, with 4.03', async () => {
      stamp(device, 'psk-dev-id');
      expect((await register(device, securePort, ['ep=other', 'lt=60', 'lwm2m=1.1'])).code).to.equal('4.03');
      expect((await refusals('other'))[0]!.detail).to.include('identity_mismatch');
      stamp(device, 'nobody');
      expect((await register(device, securePort, ['ep=psk-dev', 'lt=60', 'lwm2m=1.1'])).code).to.equal('4.03');
    });

    it('refuses an Update or De-register from another identity or over plain CoAP with 4.00', async () => {
      stamp(device, 'psk-dev-id');
      const id = locationPath((await register(device, securePort, ['ep=psk-dev', 'lt=60', 'lwm2m=1.1'])).packet)[1]!;
      const intruder = await newDevice();
      stamp(intruder, 'other-id');
      expect((await intruder.request(securePort, { path: ['rd', id] })).code).to.equal('4.00');
      expect((await intruder.request(securePort, { method: 'DELETE', path: ['rd', id] })).code).to.equal('4.00');
      expect((await device.request(port, { path: ['rd', id] })).code).to.equal('4.00'); // plain CoAP
      expect((await refusals('psk-dev')).every((e) => e.detail!.includes('identity_mismatch'))).to.equal(true);
      // The same identity from a new address (a new DTLS session) is the registered client.
      const again = await newDevice();
      stamp(again, 'psk-dev-id');
      expect((await again.request(securePort, { path: ['rd', id] })).code).to.equal('2.04');
      expect((await again.request(securePort, { method: 'DELETE', path: ['rd', id] })).code).to.equal('2.02');
    });

    it('refuses a plain-CoAP registration Update arriving over DTLS', async () => {
      await provision('plain');
      const id = locationPath((await register(device, port, ['ep=plain', 'lt=60', 'lwm2m=1.1'])).packet)[1]!;
      stamp(device, 'psk-dev-id');
      expect((await device.request(securePort, { path: ['rd', id] })).code).to.equal('4.00');
    });
  });

  describe('expiry', () => {
    beforeEach(() => start());

    it('expires a registration that stops updating, records it, and answers its Update 4.04', async () => {
      await provision('short');
      await provision('long');
      const id = locationPath((await register(device, port, ['ep=short', 'lt=1', 'lwm2m=1.1'])).packet)[1]!;
      const other = await newDevice();
      const longId = locationPath((await register(other, port, ['ep=long', 'lt=60', 'lwm2m=1.1'])).packet)[1]!;
      await until(async () => (await store.registry.get(id)) === undefined, 'the expiry of the 1 s registration', 4000);
      expect(changes.filter((c) => c.kind === 'expire').map((c) => c.registration.id)).to.deep.equal([id]);
      const [ev] = await store.registry.events('short');
      expect(ev).to.deep.include({ kind: 'expire', registrationId: id });
      expect((await device.request(port, { path: ['rd', id] })).code).to.equal('4.04');
      expect(await store.registry.get(longId)).to.not.equal(undefined);
      expect(server.nextExpiryRun).to.equal((await store.registry.get(longId))!.expiresAt);
      expect(log.lines.some((l) => l.msg === 'registration expired' && l.id === id)).to.equal(true);
    });

    it('an Update in time keeps a short registration alive; lt=0 (1.2) never expires', async () => {
      await provision('kept');
      await provision('forever');
      const id = locationPath((await register(device, port, ['ep=kept', 'lt=2', 'lwm2m=1.1'])).packet)[1]!;
      const other = await newDevice();
      const forever = locationPath((await register(other, port, ['ep=forever', 'lt=0', 'lwm2m=1.2'])).packet)[1]!;
      // 2.4 s in all, longer than the 2 s lifetime; each Update comes 0.6 s after the last.
      for (let i = 0; i < 4; i++) {
        await sleep(600);
        expect((await device.request(port, { path: ['rd', id] })).code).to.equal('2.04');
      }
      expect(await store.registry.get(id)).to.not.equal(undefined);
      expect((await store.registry.get(forever))?.expiresAt).to.equal(null);
      // An Update can also lengthen it.
      expect((await device.request(port, { path: ['rd', id], query: ['lt=3600'] })).code).to.equal('2.04');
      const r = (await store.registry.get(id))!;
      expect(r.expiresAt! - r.updatedAt).to.equal(3_600_000);
      // The timer may still be armed for the earlier expiry (it then finds nothing due and re-arms).
      expect(server.nextExpiryRun).to.be.at.most(r.expiresAt!);
      expect(changes.some((c) => c.kind === 'expire')).to.equal(false);
    });

    it('an Update that arrives after the lifetime ended gets 4.04: the server\'s clock decides', async () => {
      await server.close();
      // The server's clock runs two minutes ahead of the store's.
      const ahead = new RegistrationServer({ store, serverUris: [COAP_URI], now: () => Date.now() + 120_000, onChange: (c) => changes.push(c) });
      const n = await ahead.listen({ host: '127.0.0.1', port: 0, transmission: T });
      try {
        await provision('late');
        const ans = await register(device, n.address().port, ['ep=late', 'lt=60', 'lwm2m=1.1']);
        expect(ans.code).to.equal('2.01');
        const id = locationPath(ans.packet)[1]!;
        // The store's clock says it has 60 s left; the server's clock says it is over.
        expect((await device.request(n.address().port, { path: ['rd', id] })).code).to.equal('4.04');
        expect(await store.registry.get(id)).to.equal(undefined);
        expect((await store.registry.events('late')).map((e) => e.kind)).to.include('expire');
      } finally {
        await ahead.close();
      }
    });
  });

  describe('restart', () => {
    it('expires at start what ran out while down, and serves the live registrations after a restart', async () => {
      await start();
      await provision('stays');
      await provision('lapses');
      const stays = locationPath((await register(device, port, ['ep=stays', 'lt=300', 'lwm2m=1.1'])).packet)[1]!;
      const other = await newDevice();
      const lapses = locationPath((await register(other, port, ['ep=lapses', 'lt=1', 'lwm2m=1.1'])).packet)[1]!;
      // The process goes away: server and store closed, as `lwbs serve` does on SIGTERM.
      await server.close();
      await store.close();
      await sleep(1100);
      store = await open(dir);
      expect(await store.registry.get(lapses)).to.not.equal(undefined); // nobody expired it while down
      await start();
      expect(await store.registry.get(lapses)).to.equal(undefined);
      expect((await store.registry.events('lapses'))[0]?.kind).to.equal('expire');
      expect(changes.map((c) => `${c.kind} ${c.registration.id}`)).to.deep.equal([`expire ${lapses}`]);
      // The live one is served on the new socket: Update, then De-register.
      expect((await device.request(port, { path: ['rd', stays] })).code).to.equal('2.04');
      expect((await other.request(port, { path: ['rd', lapses] })).code).to.equal('4.04');
      expect((await device.request(port, { method: 'DELETE', path: ['rd', stays] })).code).to.equal('2.02');
    });
  });
});
