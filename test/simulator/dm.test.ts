/**
 * The simulated device as an LwM2M client under device management (registration.md §6–§7,
 * cited as §n), over real UDP against `RawServer` (support.ts): a hand-rolled server on a plain
 * socket that answers Register/Update/De-register itself, sends DM requests and sees every
 * datagram (so notifications and RSTs are checked on the wire). The device is seeded with a
 * nosec account pointing at that server, so no bootstrap is needed. Payloads are checked by
 * decoding with our codecs, and by exact bytes where the spec gives a wire example (§7.5, §9.3).
 */
import { expect } from 'chai';
import { ACK, codeToString, encodeEmpty, NON, Opt, RST, uintOption, type CoapMessage } from '../../src/coap/message.js';
import { codecFor } from '../../src/lwm2m/formats/index.js';
import { parseLinkFormat, parseRegisterLinks } from '../../src/lwm2m/linkformat.js';
import { ObjectRegistry, type ModelLookup, type ObjectModel, type ResourceModel } from '../../src/lwm2m/model.js';
import { N, type LwM2MNode, type ObjectInstance } from '../../src/lwm2m/node.js';
import type { Path } from '../../src/lwm2m/path.js';
import { V } from '../../src/lwm2m/value.js';
import { sharedRegistry } from '../../src/simulator/device-model.js';
import type { RegisterOptions } from '../../src/simulator/registration.js';
import { DeviceSimulator, type SimulatorOptions } from '../../src/simulator/simulator.js';
import { aclInstance, FAST, nosecSecurity, RawServer, sleep, type RawReceived } from './support.js';

const res = (id: number, name: string, operations: ResourceModel['operations'], type: ResourceModel['type'], mandatory: boolean): ResourceModel => ({
  id, name, operations, multiple: false, mandatory, type, rangeEnumeration: '', units: '', description: '',
});

/** IPSO Temperature, trimmed (and with Application Type made mandatory, to test Create's check). */
const TEMPERATURE: ObjectModel = {
  id: 3303,
  name: 'Temperature',
  description: '',
  urn: 'urn:oma:lwm2m:ext:3303:1.1',
  version: '1.1',
  lwm2mVersion: '1.0',
  multiple: true,
  mandatory: false,
  resources: new Map([
    [5605, res(5605, 'Reset Min and Max Measured Values', 'E', 'none', false)],
    [5700, res(5700, 'Sensor Value', 'R', 'float', true)],
    [5701, res(5701, 'Sensor Units', 'R', 'string', false)],
    [5750, res(5750, 'Application Type', 'RW', 'string', true)],
  ]),
};

/** A Server instance without default pmin/pmax (notifications are not held back by /1/x/2). */
function server(ssid: number, lifetime: number, binding = 'U'): ObjectInstance {
  return N.instance(0, [N.resource(0, V.integer(ssid)), N.resource(1, V.integer(lifetime)), N.resource(6, V.boolean(false)), N.resource(7, V.string(binding))]);
}

const code = (m: CoapMessage): string => codeToString(m.code);
const cf = (m: CoapMessage): number | undefined => uintOption(m.options, Opt.ContentFormat);
const observeOf = (m: CoapMessage): number | undefined => uintOption(m.options, Opt.Observe);
const text = (m: CoapMessage): string => m.payload.toString('utf8');

describe('simulator: device management from the registered server', function () {
  this.timeout(20_000);
  let srv: RawServer;
  let models: ModelLookup;
  const sims: DeviceSimulator[] = [];

  before(async () => {
    models = new ObjectRegistry().addAll((await sharedRegistry()).all()).addAll([TEMPERATURE]);
  });
  beforeEach(async () => {
    srv = await RawServer.start();
  });
  afterEach(async () => {
    await Promise.all(sims.splice(0).map((s) => s.close({ timeoutMs: 500 })));
    await srv.close();
  });

  async function device(o: Partial<SimulatorOptions> = {}, reg: RegisterOptions = {}): Promise<{ sim: DeviceSimulator; peer: { address: string; port: number } }> {
    const sim = await DeviceSimulator.start({
      endpoint: 'dm-1',
      transmission: FAST,
      seed: [N.object(0, [nosecSecurity(1, 1, srv.uri)]), N.object(1, [server(1, 300)]), N.object(2, [aclInstance(0, 3, 0, [[0, 1], [1, 2]], 1)])],
      objectModels: [TEMPERATURE],
      ...o,
    });
    sims.push(sim);
    const r = await sim.register({ autoUpdate: false, timeoutMs: 2000, ...reg });
    expect(r.outcome, r.diagnostic).to.equal('success');
    return { sim, peer: { address: '127.0.0.1', port: sim.address().port } };
  }

  const decode = (path: Path, m: CoapMessage): LwM2MNode => codecFor(cf(m)!).decode(path, m.payload, models);

  describe('Read (§7.1)', () => {
    it('answers every path level, in the first of its formats by default and in the Accept it is given', async () => {
      const { sim, peer } = await device();
      const inst = await srv.request(peer, { method: 'GET', path: [3, 0] });
      expect([code(inst), cf(inst)]).to.deep.equal(['2.05', 11542]); // a 1.1 device's first format: TLV
      const node = decode([3, 0], inst);
      expect(node.kind === 'instance' && [...node.resources.keys()]).to.deep.equal([...sim.instance(3, 0)!.resources.keys()]);

      const obj = await srv.request(peer, { method: 'GET', path: [3], accept: 112 });
      expect([code(obj), cf(obj)]).to.deep.equal(['2.05', 112]);
      const o = decode([3], obj);
      expect(o.kind === 'object' && [...o.instances.keys()]).to.deep.equal([0]);

      const manufacturer = await srv.request(peer, { method: 'GET', path: [3, 0, 0], accept: 0 });
      expect([code(manufacturer), cf(manufacturer), text(manufacturer)]).to.deep.equal(['2.05', 0, 'lwbs']);

      const ri = await srv.request(peer, { method: 'GET', path: [2, 0, 2, 1], accept: 0 });
      expect([code(ri), text(ri)]).to.deep.equal(['2.05', '2']);

      // An object without instances: 2.05 with an empty object.
      const empty = await srv.request(peer, { method: 'GET', path: [3303], accept: 110 });
      expect(code(empty)).to.equal('2.05');
      const e = decode([3303], empty);
      expect(e.kind === 'object' && e.instances.size).to.equal(0);
    });

    it('refuses per §7.1: Security and OSCORE 4.01, non-readable 4.05, missing 4.04, unacceptable Accept 4.06', async () => {
      const { peer } = await device();
      const answers = await Promise.all([
        srv.request(peer, { method: 'GET', path: [0, 1] }),
        srv.request(peer, { method: 'GET', path: [21] }),
        srv.request(peer, { method: 'GET', path: [3, 0, 4] }), // Reboot: executable
        srv.request(peer, { method: 'GET', path: [3, 0, 15] }), // Timezone: not instantiated
        srv.request(peer, { method: 'GET', path: [3, 1] }),
        srv.request(peer, { method: 'GET', path: [5] }), // not implemented
        srv.request(peer, { method: 'GET', path: [3, 0], accept: 0 }), // text cannot carry an instance
        srv.request(peer, { method: 'GET', path: [3, 0, 0], accept: 11543 }), // LwM2M JSON: not a format of this 1.1 device
        srv.request(peer, { method: 'GET', path: [3, 0, 0, 0] }), // a resource instance under a single resource
      ]);
      expect(answers.map(code)).to.deep.equal(['4.01', '4.01', '4.05', '4.04', '4.04', '4.04', '4.06', '4.06', '4.00']);
      // Errors are piggybacked ACKs with a diagnostic.
      expect(answers.every((a) => a.type === ACK && a.payload.length > 0)).to.equal(true);
    });

    it('answers the spec’s wire example Read /3/0/0 with Accept 112 (§9.3) in SenML CBOR, MID and token echoed', async () => {
      const { peer } = await device();
      const request = Buffer.from('42 01 01 01 01 02 B1 33 01 30 01 30 61 70'.replace(/ /g, ''), 'hex');
      const m = await srv.exchange(peer, request, Buffer.from([0x01, 0x02]));
      expect([m.type, m.messageId, m.token.toString('hex'), code(m), cf(m)]).to.deep.equal([ACK, 0x0101, '0102', '2.05', 112]);
      const node = decode([3, 0, 0], m);
      expect(node.kind === 'resource' && node.value).to.deep.equal(V.string('lwbs'));
    });
  });

  describe('Write (§7.1)', () => {
    it('PUT replaces, POST updates partially; a multiple-instance resource follows the spec’s example', async () => {
      const { sim, peer } = await device();
      const tz = await srv.request(peer, { method: 'PUT', path: [3, 0, 14], contentFormat: 0, payload: '+02:00' });
      expect(code(tz)).to.equal('2.04');
      expect(sim.value('/3/0/14')).to.deep.equal(V.string('+02:00'));

      // Partial update of /3/0: 14 changes, 13 (Current Time) stays.
      const before13 = sim.value('/3/0/13');
      const partial = N.instance(0, [N.resource(14, V.string('+03:00'))]);
      const post = await srv.request(peer, { method: 'POST', path: [3, 0], contentFormat: 11542, payload: codecFor(11542).encode([3, 0], partial) });
      expect(code(post)).to.equal('2.04');
      expect([sim.value('/3/0/14'), sim.value('/3/0/13')]).to.deep.equal([V.string('+03:00'), before13]);

      // Replace of /3/0: every writable resource comes from the payload (13 goes), read-only ones stay.
      const put = await srv.request(peer, { method: 'PUT', path: [3, 0], contentFormat: 112, payload: codecFor(112).encode([3, 0], N.instance(0, [N.resource(14, V.string('-01:00'))])) });
      expect(code(put)).to.equal('2.04');
      expect([sim.value('/3/0/14'), sim.value('/3/0/13'), sim.value('/3/0/0')]).to.deep.equal([V.string('-01:00'), undefined, V.string('lwbs')]);

      // §7.1: with {0: 1, 1: 2}, writing {1: 7, 3: 15} gives {1: 7, 3: 15} for PUT and {0: 1, 1: 7, 3: 15} for POST.
      const given = N.multi(2, [[1, V.integer(7)], [3, V.integer(15)]]);
      const body = codecFor(11542).encode([2, 0, 2], given);
      expect(code(await srv.request(peer, { method: 'POST', path: [2, 0, 2], contentFormat: 11542, payload: body }))).to.equal('2.04');
      const merged = sim.instance(2, 0)!.resources.get(2)!;
      expect(merged.kind === 'multiResource' && [...merged.instances]).to.deep.equal([[0, V.integer(1)], [1, V.integer(7)], [3, V.integer(15)]]);
      expect(code(await srv.request(peer, { method: 'PUT', path: [2, 0, 2], contentFormat: 11542, payload: body }))).to.equal('2.04');
      const replaced = sim.instance(2, 0)!.resources.get(2)!;
      expect(replaced.kind === 'multiResource' && [...replaced.instances]).to.deep.equal([[1, V.integer(7)], [3, V.integer(15)]]);
    });

    it('refuses: read-only 4.05, bad value 4.00, unsupported format 4.15, no Content-Format 4.00, missing instance 4.04, /0 4.01, an object 4.05', async () => {
      const { sim, peer } = await device();
      const answers = await Promise.all([
        srv.request(peer, { method: 'PUT', path: [3, 0, 0], contentFormat: 0, payload: 'acme' }),
        srv.request(peer, { method: 'PUT', path: [3, 0, 13], contentFormat: 0, payload: 'noon' }),
        srv.request(peer, { method: 'PUT', path: [3, 0], contentFormat: 11543, payload: '{}' }),
        srv.request(peer, { method: 'PUT', path: [3, 0, 14], payload: '+01:00' }),
        srv.request(peer, { method: 'PUT', path: [1, 5, 1], contentFormat: 0, payload: '60' }),
        srv.request(peer, { method: 'PUT', path: [0, 1, 0], contentFormat: 0, payload: 'coap://evil' }),
        srv.request(peer, { method: 'PUT', path: [3], contentFormat: 11542, payload: Buffer.alloc(0) }),
        srv.request(peer, { method: 'POST', path: [3, 0, 14], contentFormat: 0, payload: '+01:00' }), // single resource: not executable
      ]);
      expect(answers.map(code)).to.deep.equal(['4.05', '4.00', '4.15', '4.00', '4.04', '4.01', '4.05', '4.05']);
      expect(sim.value('/3/0/0')).to.deep.equal(V.string('lwbs'));
      expect(sim.value('/0/1/0')).to.deep.equal(V.string(srv.uri));
    });

    it('a new lifetime written to its server’s /1/x/1 is sent in an Update right away (§6)', async () => {
      const { sim, peer } = await device({}, { lifetime: 500 });
      expect(srv.rd[0]!.query).to.include('lt=500');
      const from = srv.rd.length;
      expect(code(await srv.request(peer, { method: 'PUT', path: [1, 0, 1], contentFormat: 0, payload: '120' }))).to.equal('2.04');
      await until(() => srv.rd.length > from, 'the Update');
      expect(srv.rd[from]).to.deep.include({ method: 'POST', path: '/rd/sim1', query: ['lt=120'] });
      expect(sim.registration?.lifetime).to.equal(120);
    });
  });

  describe('Execute (§7.1, §7.3)', () => {
    it('records executions; the spec’s wire example /1/0/8 (§9.3) is 2.04 and then an Update', async () => {
      const { sim, peer } = await device();
      const from = srv.rd.length;
      const m = await srv.exchange(peer, Buffer.from('42 02 01 04 01 05 B1 31 01 30 01 38'.replace(/ /g, ''), 'hex'), Buffer.from([0x01, 0x05]));
      expect([m.type, m.messageId, code(m)]).to.deep.equal([ACK, 0x0104, '2.04']);
      await until(() => srv.rd.length > from, 'the Update');
      expect(srv.rd[from]).to.deep.include({ method: 'POST', path: '/rd/sim1', query: [] });
      expect(sim.registrations.at(-1)).to.include({ operation: 'update', trigger: 'dm', outcome: 'success' });

      expect(code(await srv.request(peer, { method: 'POST', path: [3, 0, 4] }))).to.equal('2.04');
      expect(code(await srv.request(peer, { method: 'POST', path: [3, 0, 4], contentFormat: 0, payload: "0='now',1" }))).to.equal('2.04');
      const refused = await Promise.all([
        srv.request(peer, { method: 'POST', path: [3, 0, 4], contentFormat: 0, payload: 'reboot please' }),
        srv.request(peer, { method: 'POST', path: [3, 0, 99] }),
        srv.request(peer, { method: 'POST', path: [0, 1, 0] }),
      ]);
      expect(refused.map(code)).to.deep.equal(['4.00', '4.04', '4.01']);
      expect(sim.executions.map((e) => [e.path, e.args])).to.deep.equal([['/1/0/8', ''], ['/3/0/4', ''], ['/3/0/4', "0='now',1"]]);
    });
  });

  describe('Create and Delete (§7.1)', () => {
    it('creates with the ID it picks (Location-Path) or the one given, checks mandatory resources, deletes; each change is an Update with the new object list', async () => {
      const { sim, peer } = await device();
      const from = srv.rd.length;
      const bare = codecFor(11542).encode([3303, 0], N.instance(0, [N.resource(5750, V.string('kitchen'))]));
      const picked = await srv.request(peer, { method: 'POST', path: [3303], contentFormat: 11542, payload: bare });
      expect(code(picked)).to.equal('2.01');
      expect(picked.options.filter((o) => o.number === Opt.LocationPath).map((o) => o.value.toString())).to.deep.equal(['3303', '0']);
      // Read-only mandatory Sensor Value gets a neutral value; the given Application Type is kept.
      expect([sim.value('/3303/0/5750'), sim.value('/3303/0/5700')]).to.deep.equal([V.string('kitchen'), V.float(0)]);

      const withId = codecFor(112).encode([3303], N.object(3303, [N.instance(5, [N.resource(5750, V.string('cellar')), N.resource(5700, V.float(99))])]));
      const given = await srv.request(peer, { method: 'POST', path: [3303], contentFormat: 112, payload: withId });
      expect(code(given)).to.equal('2.01');
      expect(given.options.some((o) => o.number === Opt.LocationPath)).to.equal(false);
      expect(sim.value('/3303/5/5700')).to.deep.equal(V.float(0)); // §7.1: read-only resources in a Create are ignored

      const refused = await Promise.all([
        srv.request(peer, { method: 'POST', path: [3303], contentFormat: 112, payload: withId }), // instance exists
        srv.request(peer, { method: 'POST', path: [3303], contentFormat: 11542, payload: codecFor(11542).encode([3303, 0], N.instance(0, [N.resource(5701, V.string('Cel'))])) }), // no 5750
        srv.request(peer, { method: 'POST', path: [3], contentFormat: 11542, payload: codecFor(11542).encode([3, 0], N.instance(0, [N.resource(14, V.string('x'))])) }), // single, exists
        srv.request(peer, { method: 'POST', path: [0], contentFormat: 11542, payload: bare }),
        srv.request(peer, { method: 'POST', path: [3303], contentFormat: 0, payload: 'kitchen' }),
      ]);
      expect(refused.map(code)).to.deep.equal(['4.00', '4.00', '4.00', '4.01', '4.15']);

      await until(() => srv.rd.length >= from + 2, 'two Updates');
      const lists = srv.rd.slice(from).filter((r) => r.contentFormat === 40).map((r) => parseRegisterLinks(r.payload).objects.get(3303)?.instances);
      expect(lists.at(-1)).to.deep.equal([0, 5]);

      const deleted = await Promise.all([
        srv.request(peer, { method: 'DELETE', path: [3303, 0] }),
        srv.request(peer, { method: 'DELETE', path: [3303, 0] }),
        srv.request(peer, { method: 'DELETE', path: [3, 0] }),
        srv.request(peer, { method: 'DELETE', path: [3303] }),
        srv.request(peer, { method: 'DELETE', path: [2, 0, 2, 1] }),
      ]);
      expect(deleted.map(code)).to.deep.equal(['2.02', '4.04', '4.05', '4.05', '2.02']);
      expect([...sim.objects.get(3303)!.instances.keys()]).to.deep.equal([5]);
      const acl = sim.instance(2, 0)!.resources.get(2)!;
      expect(acl.kind === 'multiResource' && [...acl.instances.keys()]).to.deep.equal([0]);
      await until(() => srv.rd.some((r, i) => i >= from && r.contentFormat === 40 && JSON.stringify(parseRegisterLinks(r.payload).objects.get(3303)?.instances) === '[5]'), 'the Update after the Delete');
    });
  });

  describe('Discover (§7.2) and Write-Attributes (§7.4)', () => {
    it('lists object, instances and resources with dim, ver and the attributes written', async () => {
      const { sim, peer } = await device();
      expect(code(await srv.request(peer, { method: 'PUT', path: [3, 0, 9], query: ['pmin=10', 'pmax=60'] }))).to.equal('2.04');
      expect(code(await srv.request(peer, { method: 'PUT', path: [3], query: ['pmax=300'] }))).to.equal('2.04');
      expect(sim.attributes('/3/0/9')).to.deep.equal({ pmin: 10, pmax: 60 });
      const d = await srv.request(peer, { method: 'GET', path: [3], accept: 40 });
      expect([code(d), cf(d)]).to.deep.equal(['2.05', 40]);
      const links = parseLinkFormat(d.payload);
      expect(links.slice(0, 2).map((l) => l.uri)).to.deep.equal(['/3', '/3/0']);
      expect(links[0]!.params).to.deep.equal([{ name: 'pmax', value: '300' }]);
      // Instantiated resources plus the executable ones of the object (Reboot, Factory Reset, Reset Error Code).
      const inst = sim.instance(3, 0)!;
      const executables = [4, 5, 12];
      const expected = [...new Set([...inst.resources.keys(), ...executables])].sort((a, b) => a - b).map((r) => `/3/0/${r}`);
      expect(links.slice(2).map((l) => l.uri)).to.deep.equal(expected);
      expect(links.find((l) => l.uri === '/3/0/9')!.params).to.deep.equal([{ name: 'pmin', value: '10' }, { name: 'pmax', value: '60' }]);
      expect(links.find((l) => l.uri === '/3/0/11')!.params).to.deep.equal([{ name: 'dim', value: '1' }]);

      // A non-core object announces its version when it is not 1.0 (as in Register).
      const t = parseLinkFormat((await srv.request(peer, { method: 'GET', path: [3303], accept: 40 })).payload);
      expect(t).to.deep.equal([{ uri: '/3303', params: [{ name: 'ver', value: '1.1' }] }]);

      const res = parseLinkFormat((await srv.request(peer, { method: 'GET', path: [3, 0, 9], accept: 40 })).payload);
      expect(res.map((l) => l.uri)).to.deep.equal(['/3/0/9']);
      const refused = await Promise.all([
        srv.request(peer, { method: 'GET', path: [0], accept: 40 }),
        srv.request(peer, { method: 'GET', path: [3, 7], accept: 40 }),
        srv.request(peer, { method: 'GET', path: [], accept: 40 }),
      ]);
      expect(refused.map(code)).to.deep.equal(['4.01', '4.04', '4.05']);
    });

    it('1.2: honours depth (0..3)', async () => {
      const { peer } = await device({ lwm2mVersion: '1.2' });
      const uris = async (path: Path, depth?: number): Promise<string[]> =>
        parseLinkFormat((await srv.request(peer, { method: 'GET', path, accept: 40, ...(depth !== undefined ? { query: [`depth=${depth}`] } : {}) })).payload).map((l) => l.uri);
      expect(await uris([3], 0)).to.deep.equal(['/3']);
      expect(await uris([3], 1)).to.deep.equal(['/3', '/3/0']);
      expect(await uris([3, 0, 11])).to.deep.equal(['/3/0/11', '/3/0/11/0']); // default depth 1 below an object
      expect(await uris([3, 0, 11], 0)).to.deep.equal(['/3/0/11']);
      expect(await uris([3, 0], 3)).to.include('/3/0/11/0');
      expect(code(await srv.request(peer, { method: 'GET', path: [3], accept: 40, query: ['depth=4'] }))).to.equal('4.00');
    });

    it('refuses invalid attribute sets with 4.00 (§7.4) and unsets an attribute given without value', async () => {
      const { sim, peer } = await device();
      const bad = [
        ['pmin=x'], ['gt=50', 'lt=60'], ['lt=10', 'gt=50', 'st=20'], ['foo=1'], ['st=-1'], ['pmin=1', 'pmin=2'], ['edge=1'], ['epmin=5', 'epmax=5'],
      ];
      for (const query of bad) {
        expect(code(await srv.request(peer, { method: 'PUT', path: [3, 0, 9], query })), query.join('&')).to.equal('4.00');
      }
      expect(code(await srv.request(peer, { method: 'PUT', path: [3, 0], query: ['gt=5'] }))).to.equal('4.00'); // gt on an instance
      expect(code(await srv.request(peer, { method: 'PUT', path: [3, 0, 0], query: ['gt=5'] }))).to.equal('4.00'); // on a string
      expect(code(await srv.request(peer, { method: 'PUT', path: [3, 0, 9], query: ['lt=10', 'gt=50', 'st=5'] }))).to.equal('2.04');
      expect(code(await srv.request(peer, { method: 'PUT', path: [3, 0, 9], query: ['st'] }))).to.equal('2.04');
      expect(sim.attributes('/3/0/9')).to.deep.equal({ lt: 10, gt: 50 });
      expect(code(await srv.request(peer, { method: 'PUT', path: [0, 1], query: ['pmin=1'] }))).to.equal('4.01');
    });
  });

  describe('Observe (§7.4, §7.5)', () => {
    const notes = (token: Buffer, from: number): RawReceived[] => srv.notifications(token, from);

    it('answers the spec’s Observe wire example with Observe, then notifies changes as NON 2.05 with the token and rising sequence numbers', async () => {
      const { sim, peer } = await device();
      // §7.5: Observe GET /3/0/9 = 42 01 01 02 01 03 60 51 33 01 30 01 39 (MID 0x0102, token 0103).
      const token = Buffer.from([0x01, 0x03]);
      const first = await srv.exchange(peer, Buffer.from('42 01 01 02 01 03 60 51 33 01 30 01 39'.replace(/ /g, ''), 'hex'), token);
      expect([first.type, first.messageId, code(first)]).to.deep.equal([ACK, 0x0102, '2.05']);
      expect(observeOf(first)).to.be.a('number');
      const from = srv.received.length;
      expect(sim.observations.map((o) => [o.path, o.token])).to.deep.equal([['/3/0/9', '0103']]);

      sim.setValue('/3/0/9', 80);
      sim.setValue('/3/0/9', 80); // no change: no notification
      sim.setValue('/3/0/9', 70);
      await until(() => notes(token, from).length >= 2, 'two notifications');
      const got = notes(token, from).map((r) => r.message);
      expect(got.map((m) => m.type)).to.deep.equal([NON, NON]);
      expect(got.map(code)).to.deep.equal(['2.05', '2.05']);
      expect(got.map(cf)).to.deep.equal([cf(first), cf(first)]);
      const seqs = [observeOf(first)!, ...got.map((m) => observeOf(m)!)];
      expect(seqs[1]! > seqs[0]! && seqs[2]! > seqs[1]!).to.equal(true);
      expect(got.map((m) => { const n = decode([3, 0, 9], m); return n.kind === 'resource' ? n.value : undefined; })).to.deep.equal([V.integer(80), V.integer(70)]);
      expect(new Set(got.map((m) => m.messageId)).size).to.equal(2);

      // Active cancel: GET with Observe=1 and the same token, answered like a Read; no more notifications.
      const cancel = await srv.request(peer, { method: 'GET', path: [3, 0, 9], observe: 1, token });
      expect(code(cancel)).to.equal('2.05');
      expect(sim.observations).to.deep.equal([]);
      const after = srv.received.length;
      sim.setValue('/3/0/9', 60);
      await sleep(200);
      expect(notes(token, after)).to.deep.equal([]);
    });

    it('a RST answering a notification cancels the observation (RFC 7641 reactive cancel)', async () => {
      const { sim, peer } = await device();
      const token = Buffer.from('0a0b0c', 'hex');
      expect(code(await srv.request(peer, { method: 'GET', path: [3, 0, 9], observe: 0, token }))).to.equal('2.05');
      const from = srv.received.length;
      sim.setValue('/3/0/9', 50);
      const n = await srv.waitFor((r) => r.message.token.equals(token) && r.message.type === NON, 'a notification', from);
      srv.send(encodeEmpty(RST, n.message.messageId), peer);
      await until(() => sim.observations.length === 0, 'the observation to end');
      const after = srv.received.length;
      sim.setValue('/3/0/9', 51);
      await sleep(200);
      expect(notes(token, after)).to.deep.equal([]);
    });

    it('honours pmin (a change waits, the latest value goes out) and pmax (a notification without change)', async () => {
      const { sim, peer } = await device();
      expect(code(await srv.request(peer, { method: 'PUT', path: [3, 0, 9], query: ['pmin=1'] }))).to.equal('2.04');
      const token = Buffer.from('1111', 'hex');
      expect(code(await srv.request(peer, { method: 'GET', path: [3, 0, 9], observe: 0, token }))).to.equal('2.05');
      const from = srv.received.length;
      const changedAt = Date.now();
      sim.setValue('/3/0/9', 41);
      sim.setValue('/3/0/9', 42);
      const n = await srv.waitFor((r) => r.message.token.equals(token) && r.message.type === NON, 'the held-back notification', from);
      expect(n.at - changedAt).to.be.greaterThanOrEqual(900);
      const v = decode([3, 0, 9], n.message);
      expect(v.kind === 'resource' && v.value).to.deep.equal(V.integer(42));
      expect(notes(token, from)).to.have.length(1);

      expect(code(await srv.request(peer, { method: 'PUT', path: [3, 0, 13], query: ['pmax=1'] }))).to.equal('2.04');
      const t2 = Buffer.from('2222', 'hex');
      const first = await srv.request(peer, { method: 'GET', path: [3, 0, 13], observe: 0, token: t2 });
      const p = await srv.waitFor((r) => r.message.token.equals(t2) && r.message.type === NON, 'the pmax notification', srv.received.length, 4000);
      expect(p.message.payload.equals(first.payload)).to.equal(true);
    });

    it('gt/lt: notifies only when a threshold is crossed', async () => {
      const { sim, peer } = await device();
      expect(code(await srv.request(peer, { method: 'PUT', path: [3, 0, 9], query: ['lt=20', 'gt=80'] }))).to.equal('2.04');
      const token = Buffer.from('3333', 'hex');
      expect(code(await srv.request(peer, { method: 'GET', path: [3, 0, 9], observe: 0, accept: 0, token }))).to.equal('2.05');
      const from = srv.received.length;
      // From 100: 90 and 85 stay above gt, 50 crosses it, 30 crosses nothing, 10 crosses lt.
      for (const v of [90, 85, 50, 30, 10]) sim.setValue('/3/0/9', v);
      await until(() => notes(token, from).length >= 2, 'the crossings');
      await sleep(100);
      expect(notes(token, from).map((r) => text(r.message))).to.deep.equal(['50', '10']);
    });

    it('refuses what it cannot observe without an Observe option; a deleted target ends the observation with 4.04', async () => {
      const { sim, peer } = await device();
      const missing = await srv.request(peer, { method: 'GET', path: [3, 0, 99], observe: 0 });
      expect([code(missing), observeOf(missing)]).to.deep.equal(['4.04', undefined]);
      const security = await srv.request(peer, { method: 'GET', path: [0, 1], observe: 0 });
      expect([code(security), observeOf(security)]).to.deep.equal(['4.01', undefined]);

      sim.setValue('/3/0/9', 100);
      const create = codecFor(11542).encode([3303, 0], N.instance(0, [N.resource(5750, V.string('attic'))]));
      expect(code(await srv.request(peer, { method: 'POST', path: [3303], contentFormat: 11542, payload: create }))).to.equal('2.01');
      const token = Buffer.from('4444', 'hex');
      expect(code(await srv.request(peer, { method: 'GET', path: [3303, 0], observe: 0, token }))).to.equal('2.05');
      const from = srv.received.length;
      expect(code(await srv.request(peer, { method: 'DELETE', path: [3303, 0] }))).to.equal('2.02');
      const n = await srv.waitFor((r) => r.message.token.equals(token) && r.message.type === NON, 'the error notification', from);
      expect([code(n.message), observeOf(n.message)]).to.deep.equal(['4.04', undefined]);
      expect(sim.observations).to.deep.equal([]);
    });

    it('1.2: attributes in the Observe request apply to that observation only; invalid ones are 4.00', async () => {
      const { sim, peer } = await device({ lwm2mVersion: '1.2' });
      const token = Buffer.from('5555', 'hex');
      const first = await srv.request(peer, { method: 'GET', path: [3, 0, 13], observe: 0, query: ['pmax=1'], token });
      expect(code(first)).to.equal('2.05');
      expect(sim.observations.map((o) => o.attributes)).to.deep.equal([{ pmax: 1 }]);
      expect(sim.attributes('/3/0/13')).to.equal(undefined);
      const p = await srv.waitFor((r) => r.message.token.equals(token) && r.message.type === NON, 'the pmax notification', srv.received.length, 4000);
      expect(p.message.payload.equals(first.payload)).to.equal(true);
      const bad = await srv.request(peer, { method: 'GET', path: [3, 0], observe: 0, query: ['gt=1'] });
      expect([code(bad), observeOf(bad)]).to.deep.equal(['4.00', undefined]);
    });

    it('a new Register ends the observations (§7.4)', async () => {
      const { sim, peer } = await device();
      expect(code(await srv.request(peer, { method: 'GET', path: [3, 0, 9], observe: 0 }))).to.equal('2.05');
      expect(sim.observations).to.have.length(1);
      expect((await sim.register({ autoUpdate: false })).outcome).to.equal('success');
      expect(sim.observations).to.deep.equal([]);
    });
  });

  it('Disable (/1/x/4): 2.04, De-register, and Register again after the disable timeout /1/x/5 (§6)', async () => {
    const withTimeout = N.instance(0, [...server(1, 300).resources.values(), N.resource(5, V.integer(1))].sort((a, b) => a.id - b.id));
    const { sim, peer } = await device({ seed: [N.object(0, [nosecSecurity(1, 1, srv.uri)]), N.object(1, [withTimeout])] });
    const from = srv.rd.length;
    const disabledAt = Date.now();
    expect(code(await srv.request(peer, { method: 'POST', path: [1, 0, 4] }))).to.equal('2.04');
    await until(() => srv.rd.slice(from).some((r) => r.method === 'DELETE'), 'the De-register');
    await until(() => srv.rd.slice(from).some((r) => r.method === 'POST' && r.path === '/rd'), 'the Register after the disable timeout');
    const again = srv.rd.slice(from).find((r) => r.method === 'POST' && r.path === '/rd')!;
    expect(again.query).to.include('ep=dm-1');
    expect(Date.now() - disabledAt).to.be.greaterThanOrEqual(900);
    await until(() => sim.registration?.status === 'registered', 'the registration');
    expect(sim.registrations.slice(-2).map((r) => [r.operation, r.trigger])).to.deep.equal([['deregister', 'disable'], ['register', 'disable']]);
  });

  it('setValue converts plain values to the resource type and refuses what the model does not allow', async () => {
    const { sim } = await device();
    sim.setValue('/3/0/9', '55');
    sim.setValue([3, 0, 14], '+05:00');
    sim.setValue('/2/0/2/4', 3);
    expect([sim.value('/3/0/9'), sim.value('/3/0/14'), sim.value('/2/0/2/4')]).to.deep.equal([V.integer(55), V.string('+05:00'), V.integer(3)]);
    for (const [path, value] of [['/3/0/9', 101], ['/3/0/9', 'lots'], ['/3/0', 1], ['/3/0/11', 1], ['/3/7/9', 1], ['/3/0/4', 1], ['/9/0/1', 1]] as const) {
      expect(() => sim.setValue(path, value), `${path} = ${value}`).to.throw(RangeError);
    }
  });

  describe('who may ask', () => {
    it('answers only its registration server: another peer gets 4.01 while registered, 4.00 when not', async () => {
      const { sim } = await device();
      const other = await RawServer.start();
      try {
        const peer = { address: '127.0.0.1', port: sim.address().port };
        const m = await other.request(peer, { method: 'GET', path: [3, 0, 0] });
        expect(code(m)).to.equal('4.01');
        expect((await sim.deregister())?.code).to.equal('2.02');
        expect(code(await other.request(peer, { method: 'GET', path: [3, 0, 0] }))).to.equal('4.00');
        // Nor does the old server get answers after the De-register.
        expect(code(await srv.request(peer, { method: 'GET', path: [3, 0, 0] }))).to.equal('4.00');
        expect(sim.requests.filter((r) => r.dm).map((r) => r.code)).to.deep.equal([]);
      } finally {
        await other.close();
      }
    });
  });

  it('the request log marks device-management requests, with the write mode', async () => {
    const { sim, peer } = await device();
    await srv.request(peer, { method: 'PUT', path: [3, 0, 14], contentFormat: 0, payload: 'Z' });
    await srv.request(peer, { method: 'GET', path: [3, 0, 14], accept: 0 });
    const log = sim.requests.filter((r) => r.dm);
    expect(log.map((r) => [r.operation, r.method, r.path, r.code, r.writeMode])).to.deep.equal([
      ['write', 'PUT', '/3/0/14', '2.04', 'replace'],
      ['read', 'GET', '/3/0/14', '2.05', undefined],
    ]);
  });
});

async function until(check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}
