/**
 * The simulated device's data model without the network: every bootstrap operation's answer and
 * effect per /work/shared/spec/bootstrap.md (§ numbers below). Expected link-format payloads are
 * written from the spec's rules (§5.1), expected write payloads are encoded from hand-written
 * nodes with the codecs.
 */
import { expect } from 'chai';
import { codecFor } from '../../src/lwm2m/formats/index.js';
import { parseBootstrapDiscover } from '../../src/lwm2m/linkformat.js';
import type { ObjectRegistry } from '../../src/lwm2m/model.js';
import { N, nodeEquals, type ObjectInstance } from '../../src/lwm2m/node.js';
import { V } from '../../src/lwm2m/value.js';
import {
  DEFAULT_ACCEPT_FORMATS, DEFAULT_RESOURCE_FORMATS, DeviceModel, sharedRegistry, type DeviceModelOptions, type SimLwM2MVersion,
} from '../../src/simulator/device-model.js';
import { extractAccounts, reportToJson, type BootstrapReport } from '../../src/simulator/report.js';
import { aclInstance, nosecSecurity, pskSecurity, serverInstance } from './support.js';

const BS = N.instance(0, [
  N.resource(0, V.string('coap://bs.example.com:5683')),
  N.resource(1, V.boolean(true)),
  N.resource(2, V.integer(3)),
  N.resource(3, V.opaque(new Uint8Array(0))),
  N.resource(4, V.opaque(new Uint8Array(0))),
  N.resource(5, V.opaque(new Uint8Array(0))),
]);
const DEVICE = N.instance(0, [N.resource(0, V.string('acme')), N.multi(11, [[0, V.integer(0)]]), N.resource(16, V.string('U'))]);

describe('simulator/DeviceModel', () => {
  let registry: ObjectRegistry;
  before(async () => {
    registry = await sharedRegistry();
  });

  function model(version: SimLwM2MVersion = '1.1', extra: Partial<DeviceModelOptions> = {}): DeviceModel {
    const m = DeviceModel.create(registry, {
      lwm2mVersion: version,
      aclSupport: true,
      oscoreSupport: true,
      acceptFormats: DEFAULT_ACCEPT_FORMATS[version],
      resourceFormats: DEFAULT_RESOURCE_FORMATS[version],
      ...extra,
    });
    m.set(0, BS);
    m.set(3, DEVICE);
    return m;
  }

  const text = (p: Uint8Array | string | undefined): string => (typeof p === 'string' ? p : Buffer.from(p ?? new Uint8Array()).toString('utf8'));
  const put = (m: DeviceModel, path: number[], node: Parameters<ReturnType<typeof codecFor>['encode']>[1], cf: number) =>
    m.write(path, cf, codecFor(cf).encode(path, node));

  it('shares one object registry between devices', async () => {
    expect(await sharedRegistry()).to.equal(registry);
  });

  describe('Bootstrap-Discover (§5)', () => {
    it('1.1: `</>;lwm2m=1.1` first, ssid and quoted uri on DM Security, ssid on Server, empty objects as links', () => {
      const m = model('1.1');
      m.set(0, pskSecurity(1, 101, 'coaps://dm.example.com:5684'));
      m.set(1, serverInstance(0, 101));
      const r = m.discover([]);
      expect(r.code).to.equal('2.05');
      expect(r.contentFormat).to.equal(40);
      // §5.1: BS instance bare; objects without instances listed as </o>; no ver= for default versions.
      expect(text(r.payload)).to.equal('</>;lwm2m=1.1,</0/0>,</0/1>;ssid=101;uri="coaps://dm.example.com:5684",</1/0>;ssid=101,</2>,</3/0>,</21>');
    });

    it('1.0: bare lwm2m="1.0" header, ssid without uri, no OSCORE object', () => {
      const m = model('1.0');
      m.set(0, pskSecurity(1, 101));
      m.set(1, serverInstance(0, 101));
      expect(text(m.discover([]).payload)).to.equal('lwm2m="1.0",</0/0>,</0/1>;ssid=101,</1/0>;ssid=101,</2>,</3/0>');
    });

    it('1.2 with a non-default object version shows ver= on the object link; the parser the server uses agrees', () => {
      const m = model('1.2', { objectVersions: { 3: '1.2' } });
      const r = text(m.discover([]).payload);
      expect(r).to.equal('</>;lwm2m=1.2,</0/0>,</1>,</2>,</3>;ver=1.2,</3/0>,</21>');
      const parsed = parseBootstrapDiscover(r);
      expect(parsed.lwm2mVersion).to.equal('1.2');
      expect(parsed.objects.get(3)?.version).to.equal('1.2');
    });

    it('without ACL support omits /2; OSCORE instances carry the SSID of the Security instance linking to them', () => {
      const m = model('1.1', { aclSupport: false });
      const sec = N.instance(1, [...pskSecurity(1, 7).resources.values(), N.resource(17, V.objlnk(21, 4))]);
      m.set(0, sec);
      m.set(21, N.instance(4, [N.resource(0, V.string('secret')), N.resource(1, V.string('s')), N.resource(2, V.string('r'))]));
      expect(text(m.discover([]).payload)).to.equal('</>;lwm2m=1.1,</0/0>,</0/1>;ssid=7;uri="coaps://dm7.example.com:5684",</1>,</3/0>,</21/4>;ssid=7');
    });

    it('an object path lists that object; instance paths → 4.00; unknown object → 4.04', () => {
      const m = model('1.1');
      m.set(1, serverInstance(3, 9));
      expect(text(m.discover([1]).payload)).to.equal('</>;lwm2m=1.1,</1/3>;ssid=9');
      expect(m.discover([1, 3]).code).to.equal('4.00');
      expect(m.discover([3, 0, 1]).code).to.equal('4.00');
      expect(m.discover([4]).code).to.equal('4.04');
      expect(model('1.1', { aclSupport: false }).discover([2]).code).to.equal('4.04');
    });
  });

  describe('Bootstrap-Read (§6)', () => {
    it('reads /1, /1/x, /2/x in the Accept format or the first accepted one', () => {
      const m = model('1.1');
      const srv = serverInstance(0, 101);
      m.set(1, srv);
      const acl = aclInstance(0, 1, 0, [[101, 15]], 101);
      m.set(2, acl);
      const all = m.read([1], 110);
      expect(all.code).to.equal('2.05');
      expect(all.contentFormat).to.equal(110);
      const decoded = codecFor(110).decode([1], all.payload as Uint8Array, m.models);
      expect(nodeEquals(decoded, N.object(1, [srv]))).to.equal(true);
      const one = m.read([2, 0], undefined);
      expect(one.contentFormat).to.equal(11542); // first of the 1.1 defaults
      expect(nodeEquals(codecFor(11542).decode([2, 0], one.payload as Uint8Array, m.models), acl)).to.equal(true);
    });

    it('refuses other targets with 4.00, missing ones with 4.04, unacceptable formats with 4.06, and 1.0 devices with 4.00', () => {
      const m = model('1.1');
      m.set(1, serverInstance(0, 101));
      expect(m.read([0], 11542).code).to.equal('4.00');
      expect(m.read([3, 0], 11542).code).to.equal('4.00');
      expect(m.read([1, 0, 1], 11542).code).to.equal('4.00');
      expect(m.read([1, 5], 11542).code).to.equal('4.04');
      expect(m.read([1], 11544).code).to.equal('4.06'); // LwM2M CBOR is 1.2
      expect(m.read([1], 0).code).to.equal('4.06');
      expect(model('1.1', { aclSupport: false }).read([2], 11542).code).to.equal('4.04');
      expect(model('1.0').read([1], 11542).code).to.equal('4.00');
    });
  });

  describe('Bootstrap-Write (§7)', () => {
    it('replaces a whole instance (resources absent from the payload disappear)', () => {
      const m = model('1.1');
      m.set(1, serverInstance(0, 101));
      const smaller = N.instance(0, [N.resource(0, V.integer(101)), N.resource(1, V.integer(60)), N.resource(6, V.boolean(false)), N.resource(7, V.string('UQ'))]);
      expect(put(m, [1, 0], smaller, 11542).code).to.equal('2.04');
      expect(nodeEquals(m.get(1, 0)!, smaller)).to.equal(true);
    });

    it('an object write creates or replaces the instances it carries and keeps the others', () => {
      const m = model('1.1');
      m.set(0, pskSecurity(1, 101));
      m.set(0, pskSecurity(2, 102));
      const a = nosecSecurity(1, 201);
      const b = nosecSecurity(5, 205);
      expect(put(m, [0], N.object(0, [a, b]), 112).code).to.equal('2.04');
      expect(nodeEquals(m.get(0, 1)!, a)).to.equal(true);
      expect(nodeEquals(m.get(0, 5)!, b)).to.equal(true);
      expect(nodeEquals(m.get(0, 2)!, pskSecurity(2, 102))).to.equal(true);
      expect(nodeEquals(m.get(0, 0)!, BS)).to.equal(true);
    });

    it('a resource write creates a missing instance; text/plain and CBOR 60 work on resource paths only', () => {
      const m = model('1.1');
      expect(m.write([1, 4, 1], 0, Buffer.from('86400')).code).to.equal('2.04');
      expect(m.write([1, 4, 7], 60, codecFor(60).encode([1, 4, 7], N.resource(7, V.string('U')))).code).to.equal('2.04');
      expect(nodeEquals(m.get(1, 4)!, N.instance(4, [N.resource(1, V.integer(86400)), N.resource(7, V.string('U'))]))).to.equal(true);
      expect(m.write([1, 4], 0, Buffer.from('1')).code).to.equal('4.15');
      expect(model('1.0').write([1, 4, 7], 60, codecFor(60).encode([1, 4, 7], N.resource(7, V.string('U')))).code).to.equal('4.15');
    });

    it('ignores resources its object version lacks and reports them', () => {
      const m = model('1.0');
      const sec = N.instance(1, [...pskSecurity(1, 101).resources.values(), N.resource(13, V.unsigned(1)), N.resource(14, V.string('sni'))]);
      const r = put(m, [0, 1], sec, 11542);
      expect(r.code).to.equal('2.04');
      expect(r.ignored).to.deep.equal(['/0/1/13', '/0/1/14']);
      expect(nodeEquals(m.get(0, 1)!, pskSecurity(1, 101))).to.equal(true);
      // A 1.1 device keeps them.
      const m11 = model('1.1');
      expect(put(m11, [0, 1], sec, 11542).ignored).to.equal(undefined);
      expect(m11.get(0, 1)!.resources.has(14)).to.equal(true);
    });

    it('answers 4.05 for / and resource-instance paths, 4.04 for unknown objects and resources, 4.15 for formats it does not take', () => {
      const m = model('1.1', { aclSupport: false });
      expect(m.write([], 11542, new Uint8Array()).code).to.equal('4.05');
      expect(m.write([2, 0, 2, 1], 0, Buffer.from('3')).code).to.equal('4.05');
      expect(put(m, [2, 0], aclInstance(0, 1, 0, [[1, 1]], 1), 11542).code).to.equal('4.04');
      expect(put(m, [4, 0], N.instance(0, [N.resource(0, V.integer(1))]), 11542).code).to.equal('4.04');
      expect(m.write([1, 0, 99], 0, Buffer.from('1')).code).to.equal('4.04');
      expect(put(m, [1, 0], serverInstance(0, 1), 11544).code).to.equal('4.15');
      expect(put(m, [1, 0], serverInstance(0, 1), 11543).code).to.equal('4.15');
      expect(model('1.0').write([1, 0], 112, codecFor(112).encode([1, 0], serverInstance(0, 1))).code).to.equal('4.15');
      expect(m.write([1, 0], undefined, new Uint8Array()).code).to.equal('4.00');
    });

    it('answers 4.00 for payloads that do not decode, wrong types and out-of-range values, and changes nothing', () => {
      const m = model('1.1');
      m.set(1, serverInstance(0, 101));
      expect(m.write([1, 0], 11542, Buffer.from('c8 00 14 4f', 'hex')).code).to.equal('4.00');
      expect(m.write([1, 0], 110, Buffer.from('[{"bn":"/1/0/","n":"1","vs":"three hundred"}]')).code).to.equal('4.00');
      const r = put(m, [1], N.object(1, [serverInstance(1, 5), serverInstance(2, 0)]), 110);
      expect(r.code).to.equal('4.00');
      expect(text(r.payload)).to.match(/\/1\/2\/0: 0 is outside 1\.\.65534/);
      expect(m.get(1, 1)).to.equal(undefined);
      expect(nodeEquals(m.get(1, 0)!, serverInstance(0, 101))).to.equal(true);
      expect(put(m, [3, 1], N.instance(1, [...DEVICE.resources.values()]), 11542).code).to.equal('4.00'); // Device is single-instance
    });
  });

  describe('Bootstrap-Delete (§8)', () => {
    it('DELETE / keeps the BS account and /3/0; DELETE /0 keeps the BS account', () => {
      const m = model('1.1');
      m.set(0, pskSecurity(1, 101));
      m.set(1, serverInstance(0, 101));
      m.set(2, aclInstance(0, 1, 0, [[101, 1]], 101));
      expect(m.delete([0]).code).to.equal('2.02');
      expect([...m.instances(0).keys()]).to.deep.equal([0]);
      expect(m.instances(1).size).to.equal(1); // no un-bootstrapping before 1.2
      expect(m.delete([]).code).to.equal('2.02');
      expect([...m.instances(0).keys()]).to.deep.equal([0]);
      expect([...m.instances(3).keys()]).to.deep.equal([0]);
      expect(m.instances(1).size + m.instances(2).size).to.equal(0);
      expect(m.delete([3]).code).to.equal('2.02');
      expect(m.get(3, 0)).to.not.equal(undefined);
    });

    it('explicit deletes of protected instances → 4.00, missing ones → 4.04, resource paths → 4.00', () => {
      const m = model('1.1');
      const bsWithOscore = N.instance(0, [...BS.resources.values(), N.resource(17, V.objlnk(21, 0))]);
      m.set(0, bsWithOscore);
      m.set(21, N.instance(0, [N.resource(0, V.string('k')), N.resource(1, V.string('s')), N.resource(2, V.string('r'))]));
      expect(m.delete([0, 0]).code).to.equal('4.00');
      expect(m.delete([3, 0]).code).to.equal('4.00');
      expect(m.delete([21, 0]).code).to.equal('4.00'); // the BS account's OSCORE instance (1.1+)
      expect(m.delete([21]).code).to.equal('2.02');
      expect(m.get(21, 0)).to.not.equal(undefined);
      expect(m.delete([1, 7]).code).to.equal('4.04');
      expect(m.delete([0, 0, 1]).code).to.equal('4.00');
      expect(m.delete([4]).code).to.equal('4.04');
    });

    it('1.2 un-bootstrapping: deleting a Security instance removes its Server instance, its own ACL’d instances, and moves ownership', () => {
      const m = model('1.2');
      m.set(0, pskSecurity(1, 101));
      m.set(0, pskSecurity(2, 102));
      m.set(1, serverInstance(0, 101));
      m.set(1, serverInstance(1, 102));
      m.set(1, serverInstance(2, 103));
      // /1/2 is accessible by 101 only (owner 101, no other entries): it goes with its ACL.
      m.set(2, aclInstance(0, 1, 2, [[101, 31]], 101));
      // shared: 101 owns, 102 has R (score 0) and 5 has W+D (score 2) → 5 becomes owner.
      m.set(2, aclInstance(1, 3, 0, [[5, 10], [101, 31], [102, 1]], 101));
      // 101 only has an entry on /1/1: the entry is removed.
      m.set(2, aclInstance(2, 1, 1, [[101, 1], [102, 31]], 102));
      expect(m.delete([0, 1]).code).to.equal('2.02');
      // /1/0 (SSID 101's own Server instance) and /1/2 are gone, /1/1 stays.
      expect([...m.instances(1).keys()]).to.deep.equal([1]);
      expect(m.get(2, 0)).to.equal(undefined);
      const info = extractAccounts(m).acl;
      expect(info.map((a) => [a.aclInstance, a.owner, [...a.rights]])).to.deep.equal([
        [1, 5, [[5, 10], [102, 1]]],
        [2, 102, [[102, 31]]],
      ]);
    });
  });

  describe('Bootstrap-Finish consistency (§9)', () => {
    function consistent(): DeviceModel {
      const m = model('1.1');
      m.set(0, pskSecurity(1, 101));
      m.set(1, serverInstance(0, 101));
      return m;
    }

    it('accepts a complete account', () => {
      expect(consistent().consistencyProblems()).to.deep.equal([]);
    });

    const cases: [string, (m: DeviceModel) => void, RegExp][] = [
      ['a Security instance without Server instance', (m) => m.remove(1, 0), /Security \/0\/1 \(SSID 101\) has no Server instance/],
      ['a Server instance without Security instance', (m) => m.set(1, serverInstance(1, 7)), /Server \/1\/1 \(SSID 7\) has no Security instance/],
      ['duplicate SSIDs', (m) => m.set(0, nosecSecurity(2, 101)), /SSID 101 is used by Security \/0\/1 and \/0\/2/],
      ['no server account at all', (m) => { m.remove(0, 1); m.remove(1, 0); }, /no usable LwM2M Server account/],
      ['two BS accounts', (m) => m.set(0, N.instance(4, [...BS.resources.values()])), /more than one Bootstrap-Server account \(\/0\/0, \/0\/4\)/],
      ['a PSK account with an empty key', (m) => m.set(0, pskSecurity(1, 101, 'coaps://x', 'id', new Uint8Array(0))), /PSK account with an empty identity or key/],
      ['a PSK account with an empty identity', (m) => m.set(0, pskSecurity(1, 101, 'coaps://x', '')), /PSK account with an empty identity or key/],
      ['a missing mandatory resource', (m) => m.set(1, N.instance(0, [N.resource(0, V.integer(101)), N.resource(1, V.integer(60))])), /\/1\/0 lacks mandatory resource\(s\) 6, 7/],
      ['an OSCORE link to nothing', (m) => m.set(0, N.instance(1, [...pskSecurity(1, 101).resources.values(), N.resource(17, V.objlnk(21, 3))])), /links to OSCORE 21:3/],
    ];
    for (const [what, change, reason] of cases) {
      it(`refuses ${what}`, () => {
        const m = consistent();
        change(m);
        const problems = m.consistencyProblems();
        expect(problems.join('; ')).to.match(reason);
      });
    }
  });

  describe('Bootstrap-Pack (§3)', () => {
    it('replaces the instances of the objects in the pack, keeps the BS account, /3/0 and other objects', () => {
      const m = model('1.2');
      m.set(0, pskSecurity(1, 1));
      m.set(1, serverInstance(0, 1));
      m.set(2, aclInstance(0, 1, 0, [[1, 1]], 1));
      const sec = nosecSecurity(3, 9);
      const srv = serverInstance(3, 9);
      const r = m.applyPack([N.object(0, [sec]), N.object(1, [srv])]);
      expect(r.problems).to.deep.equal([]);
      expect([...m.instances(0).keys()].sort()).to.deep.equal([0, 3]);
      expect(nodeEquals(m.get(0, 3)!, sec)).to.equal(true);
      expect([...m.instances(1).keys()]).to.deep.equal([3]);
      expect(m.instances(2).size).to.equal(1); // object 2 was not in the pack
      expect(m.get(3, 0)).to.not.equal(undefined);
    });

    it('leaves the device unchanged when the pack is inconsistent (ACLs without ACL support, lonely Security)', () => {
      const m = model('1.2', { aclSupport: false });
      m.set(0, pskSecurity(1, 1));
      m.set(1, serverInstance(0, 1));
      const before = m.snapshot();
      const r = m.applyPack([N.object(0, [nosecSecurity(1, 2)]), N.object(1, [serverInstance(0, 2)]), N.object(2, [aclInstance(0, 1, 0, [[2, 1]], 2)])]);
      expect(r.problems.join('; ')).to.match(/ACL instances on a device without access control/);
      const r2 = m.applyPack([N.object(0, [nosecSecurity(1, 2)])]);
      expect(r2.problems.join('; ')).to.match(/Security \/0\/1 \(SSID 2\) has no Server instance/);
      for (const [oid, obj] of before) expect(nodeEquals(m.snapshot().get(oid)!, obj), `object ${oid}`).to.equal(true);
    });
  });

  describe('report', () => {
    it('reads accounts back from the model and masks secrets in JSON unless revealed', () => {
      const m = model('1.1');
      const key = Uint8Array.from([0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
      m.set(0, pskSecurity(2, 101, 'coaps://dm.example.com:5684', 'urn:imei:1', key));
      m.set(1, serverInstance(4, 101, 86400, 'UQ'));
      m.set(2, aclInstance(0, 1, 4, [[0, 1], [101, 31]], 101));
      const parts = extractAccounts(m);
      expect(parts.servers).to.have.length(1);
      const s = parts.servers[0]!;
      expect([s.securityInstance, s.serverInstance, s.ssid, s.uri, s.mode, s.lifetime, s.binding, s.notificationStoring, s.defaultMinPeriod, s.defaultMaxPeriod])
        .to.deep.equal([2, 4, 101, 'coaps://dm.example.com:5684', 'psk', 86400, 'UQ', true, 1, 60]);
      expect(Buffer.from(s.pskIdentity!).toString()).to.equal('urn:imei:1');
      expect([...s.pskKey!.reveal()]).to.deep.equal([...key]);
      expect(String(s.pskKey)).to.equal('[secret]');
      expect(parts.bootstrapAccount?.securityInstance).to.equal(0);
      expect(parts.bootstrapAccount?.mode).to.equal('nosec');
      expect(parts.acl).to.deep.equal([{ aclInstance: 0, objectId: 1, instanceId: 4, owner: 101, rights: new Map([[0, 1], [101, 31]]) }]);
      const report: BootstrapReport = {
        endpoint: 'e', lwm2mVersion: '1.1', server: 'coap://127.0.0.1:1', kind: 'bootstrap', outcome: 'success',
        ...parts, requests: [], objects: m.snapshot(), durationMs: 1,
      };
      const masked = JSON.stringify(reportToJson(report));
      expect(masked).to.not.contain('deadbeef');
      expect(masked).to.contain('"pskKey":{"masked":true,"length":16}');
      expect(masked).to.contain('"pskIdentity":{"text":"urn:imei:1","hex":"75726e3a696d65693a31"}');
      expect(JSON.stringify(reportToJson(report, { revealSecrets: true }))).to.contain('"pskKey":{"hex":"deadbeef0102030405060708090a0b0c"}');
    });
  });

  it('keeps instances immutable between clones', () => {
    const m = model('1.1');
    const c = m.clone();
    c.set(1, serverInstance(0, 1));
    expect(m.instances(1).size).to.equal(0);
    const inst: ObjectInstance | undefined = c.get(1, 0);
    expect(inst).to.not.equal(undefined);
  });
});
