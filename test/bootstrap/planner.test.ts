import { createHash } from 'node:crypto';
import { expect } from 'chai';
import fc from 'fast-check';
import { generateCredentials, generateRpkKeyPair, pskCredential, type ProfileCredentials } from '../../src/bootstrap/credentials.js';
import { parseProfile, type Profile } from '../../src/bootstrap/profile.js';
import {
  type BootstrapStep,
  chooseContentFormat,
  describeStep,
  PlanError,
  type PlanErrorCode,
  type PlanInput,
  planBootstrap,
  planBootstrapPack,
  planDiscover,
  resolveClientVersions,
  type WriteStep,
  writeFormatsFor,
} from '../../src/bootstrap/planner.js';
import { loadObjectRegistry } from '../../src/lwm2m/ddf.js';
import { codecFor, compositeCodecFor } from '../../src/lwm2m/formats/index.js';
import { parseBootstrapDiscover } from '../../src/lwm2m/linkformat.js';
import type { ObjectRegistry } from '../../src/lwm2m/model.js';
import { type LwM2MNode, nodeEquals, nodeToRecords, recordsToObjects } from '../../src/lwm2m/node.js';
import { formatPath } from '../../src/lwm2m/path.js';
import { valueEquals, type Value } from '../../src/lwm2m/value.js';
import { toHex } from '../support/arbitraries.js';
import { CLIENT_CERT_PEM, CLIENT_KEY_PEM, SERVER_CERT_PEM } from './fixtures.js';

const REG = { coap: 'coap://lwbs.example.com:5783', coaps: 'coaps://lwbs.example.com:5784' };
const EP = 'urn:imei:490154203237518';
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');

let registry: ObjectRegistry;

type Json = Record<string, unknown>;

/** A readable view of an instance: [rid, type, value] with opaque as hex and multiples nested. */
type Row = [number, string, unknown];
function rows(node: LwM2MNode): Row[] {
  if (node.kind !== 'instance') throw new Error('expected an instance');
  const show = (v: Value): unknown => {
    switch (v.type) {
      case 'opaque':
        return toHex(v.value);
      case 'objlnk':
        return `${v.value.objectId}:${v.value.instanceId}`;
      default:
        return v.value;
    }
  };
  return [...node.resources.values()].map((r): Row =>
    r.kind === 'resource' ? [r.id, r.value.type, show(r.value)] : [r.id, 'multi', [...r.instances].map(([ri, v]) => [ri, v.type, show(v)])],
  );
}

function paths(steps: readonly BootstrapStep[]): string[] {
  return steps.map((s) => {
    switch (s.kind) {
      case 'write':
        return `PUT ${formatPath(s.path)}`;
      case 'delete':
        return `DELETE ${formatPath(s.path)}`;
      case 'read':
        return `READ ${formatPath(s.path)}`;
      case 'discover':
        return 'DISCOVER';
      case 'finish':
        return 'FINISH';
    }
  });
}

const writeAt = (steps: readonly BootstrapStep[], path: string): WriteStep => {
  const w = steps.find((s): s is WriteStep => s.kind === 'write' && formatPath(s.path) === path);
  if (!w) throw new Error(`no write to ${path} in ${paths(steps).join(', ')}`);
  return w;
};

/**
 * Encodes every planned write with every format the client's version allows for an instance
 * write, and decodes it back with the shipped object model at the planned object versions: the
 * node must come back equal (so every value has the type the model gives the resource).
 */
function checkEveryCodec(input: PlanInput, steps: readonly BootstrapStep[]): number {
  const versions = resolveClientVersions(input.profile, input);
  const models = registry.withVersions(versions.objects);
  let checked = 0;
  for (const s of steps) {
    if (s.kind !== 'write') continue;
    expect(s.path).to.have.length(2);
    expect(s.node.id).to.equal(s.path[1]);
    for (const cf of writeFormatsFor(versions.lwm2mVersion)) {
      const codec = codecFor(cf);
      const bytes = codec.encode(s.path, s.node);
      const back = codec.decode(s.path, bytes, models);
      expect(nodeEquals(back, s.node), `${codec.name} ${formatPath(s.path)}: ${JSON.stringify(rows(back))} vs ${JSON.stringify(rows(s.node))}`).to.equal(true);
      // every resource we write exists in the model with the same type
      for (const r of s.node.resources.values()) {
        const m = models.resource(s.path[0]!, r.id);
        expect(m, `${formatPath(s.path)}/${r.id} in the model`).to.not.equal(undefined);
        const t = r.kind === 'resource' ? r.value.type : [...r.instances.values()][0]?.type;
        expect(t, `${formatPath(s.path)}/${r.id} type`).to.equal(m!.type);
        expect(r.kind === 'multiResource', `${formatPath(s.path)}/${r.id} multiplicity`).to.equal(m!.multiple);
      }
      checked++;
    }
  }
  return checked;
}

interface Planned {
  readonly profile: Profile;
  readonly steps: BootstrapStep[];
  readonly credentials: ProfileCredentials;
  readonly input: PlanInput;
}

function plan(doc: Json, opts: { discover?: string; pct?: number; lwm2mVersion?: string; credentials?: ProfileCredentials; registration?: PlanInput['registration'] } = {}): Planned {
  const profile = parseProfile(doc);
  const credentials = opts.credentials ?? generateCredentials(profile, EP);
  const input: PlanInput = {
    profile,
    endpoint: EP,
    registration: opts.registration ?? REG,
    credentials,
    ...(opts.discover !== undefined ? { discover: parseBootstrapDiscover(opts.discover) } : {}),
    ...(opts.pct !== undefined ? { pct: opts.pct } : {}),
    ...(opts.lwm2mVersion !== undefined ? { lwm2mVersion: opts.lwm2mVersion } : {}),
  };
  const steps = planBootstrap(input);
  expect(checkEveryCodec(input, steps)).to.be.greaterThan(0);
  // never a Security instance delete, always exactly one Finish, last
  expect(steps.filter((s) => s.kind === 'delete' && s.path[0] === 0 && s.path.length > 1)).to.deep.equal([]);
  expect(steps.filter((s) => s.kind === 'finish')).to.have.length(1);
  expect(steps[steps.length - 1]!.kind).to.equal('finish');
  return { profile, steps, credentials, input };
}

function planError(fn: () => unknown, code: PlanErrorCode): PlanError {
  try {
    fn();
  } catch (e) {
    expect(e).to.be.instanceOf(PlanError);
    expect((e as PlanError).code, (e as Error).message).to.equal(code);
    return e as PlanError;
  }
  throw new Error(`expected PlanError ${code}`);
}

const nosec = (ssid: number, host = `dm${ssid}.example.com`): Json => ({ shortServerId: ssid, uri: `coap://${host}:5683`, security: { mode: 'nosec' } });

describe('bootstrap planner', () => {
  before(async () => {
    registry = await loadObjectRegistry();
  });

  describe('planDiscover', () => {
    it('GET / when the profile asks for the bootstrap account, else nothing', () => {
      expect(planDiscover(parseProfile({ name: 'a', discoverBootstrapAccount: true, servers: [nosec(1)] }))).to.deep.equal({ kind: 'discover', path: [] });
      expect(planDiscover(parseProfile({ name: 'a', servers: [nosec(1)] }))).to.equal(undefined);
    });
  });

  describe('single server', () => {
    it('minimal nosec profile: deletes, Security /0/1, Server /1/0, Finish', () => {
      const { steps } = plan({ name: 'min', servers: [nosec(1)] });
      expect(paths(steps)).to.deep.equal(['DELETE /0', 'DELETE /1', 'PUT /0/1', 'PUT /1/0', 'FINISH']);
      expect(rows(writeAt(steps, '/0/1').node)).to.deep.equal([
        [0, 'string', 'coap://dm1.example.com:5683'],
        [1, 'boolean', false],
        [2, 'integer', 3],
        [3, 'opaque', ''],
        [4, 'opaque', ''],
        [5, 'opaque', ''],
        [10, 'integer', 1],
      ]);
      expect(rows(writeAt(steps, '/1/0').node)).to.deep.equal([
        [0, 'integer', 1],
        [1, 'integer', 86400],
        [6, 'boolean', true],
        [7, 'string', 'U'],
      ]);
      expect(writeAt(steps, '/0/1').secret).to.equal(false);
      expect(writeAt(steps, '/0/1')).to.include({ target: 'security', ssid: 1, objectVersion: '1.0' });
    });

    it('the issue example: nosec hand-off to our coap:// URI with its Server resources', () => {
      const { steps } = plan({
        name: 'meters',
        match: ['urn:imei:35*'],
        delete: ['/0', '/1'],
        contentFormat: 'auto',
        discoverBootstrapAccount: false,
        servers: [{ shortServerId: 1, handOff: true, lifetime: 300, binding: 'U', defaultMinPeriod: 1, defaultMaxPeriod: 60, notificationStoring: true, security: { mode: 'nosec' } }],
      });
      expect(rows(writeAt(steps, '/0/1').node)[0]).to.deep.equal([0, 'string', REG.coap]);
      expect(rows(writeAt(steps, '/1/0').node)).to.deep.equal([
        [0, 'integer', 1],
        [1, 'integer', 300],
        [2, 'integer', 1],
        [3, 'integer', 60],
        [6, 'boolean', true],
        [7, 'string', 'U'],
      ]);
    });

    it('psk hand-off: coaps:// URI, generated identity and key, secret flagged', () => {
      const { steps, credentials } = plan({ name: 'psk', servers: [{ shortServerId: 1, handOff: true, security: { mode: 'psk' } }] });
      const cred = credentials.servers.get(1)!;
      if (cred.mode !== 'psk') throw new Error('psk expected');
      const w = writeAt(steps, '/0/1');
      expect(w.secret).to.equal(true);
      expect(rows(w.node)).to.deep.equal([
        [0, 'string', REG.coaps],
        [1, 'boolean', false],
        [2, 'integer', 0],
        [3, 'opaque', toHex(utf8(EP))],
        [4, 'opaque', ''],
        [5, 'opaque', toHex(cred.key.reveal())],
        [10, 'integer', 1],
      ]);
      expect(describeStep(w)).to.equal('PUT /0/1 (Security, SSID 1)');
    });

    it('rpk hand-off: client SPKI, the registration server key, client PKCS#8', () => {
      const server = generateRpkKeyPair();
      const { steps, credentials } = plan({ name: 'rpk', servers: [{ shortServerId: 1, handOff: true, security: { mode: 'rpk' } }] }, { registration: { ...REG, publicKey: server.spki } });
      const cred = credentials.servers.get(1)!;
      if (cred.mode !== 'rpk') throw new Error('rpk expected');
      expect(rows(writeAt(steps, '/0/1').node)).to.deep.equal([
        [0, 'string', REG.coaps],
        [1, 'boolean', false],
        [2, 'integer', 1],
        [3, 'opaque', toHex(cred.publicKey)],
        [4, 'opaque', toHex(server.spki)],
        [5, 'opaque', toHex(cred.privateKey.reveal())],
        [10, 'integer', 1],
      ]);
      expect(cred.publicKey.length).to.equal(91);
      expect(cred.privateKey.reveal().length).to.equal(138);
    });

    it('rpk hand-off without a registration server key, or without credentials, fails the plan', () => {
      const profile = parseProfile({ name: 'rpk', servers: [{ shortServerId: 1, handOff: true, security: { mode: 'rpk' } }] });
      planError(() => planBootstrap({ profile, endpoint: EP, registration: REG, credentials: generateCredentials(profile, EP) }), 'missing_server_key');
      planError(() => planBootstrap({ profile, endpoint: EP, registration: { ...REG, publicKey: generateRpkKeyPair().spki }, credentials: { servers: new Map() } }), 'missing_credential');
      const wrongMode = { servers: new Map([[1, pskCredential(utf8('x'), new Uint8Array(16))]]) };
      planError(() => planBootstrap({ profile, endpoint: EP, registration: { ...REG, publicKey: generateRpkKeyPair().spki }, credentials: wrongMode }), 'missing_credential');
    });
  });

  describe('static servers', () => {
    it('psk, rpk and x509 with uri and static credentials', () => {
      const client = generateRpkKeyPair();
      const server = generateRpkKeyPair();
      const doc = {
        name: 'static',
        servers: [
          { shortServerId: 10, uri: 'coaps://a.example.com:5684', security: { mode: 'psk', identity: 'dev-1', key: '000102030405060708090a0b0c0d0e0f' } },
          { shortServerId: 20, uri: 'coaps://b.example.com', security: { mode: 'rpk', publicKey: b64(client.spki), privateKey: b64(client.pkcs8.reveal()), serverPublicKey: b64(server.spki) } },
          { shortServerId: 30, uri: 'coaps://c.example.com', security: { mode: 'x509', certificate: CLIENT_CERT_PEM, privateKey: CLIENT_KEY_PEM, serverCertificate: SERVER_CERT_PEM } },
        ],
        acl: [{ objectId: 3, instanceId: 0, rights: { '10': 'R', '20': 'R', '30': 'RWE' }, owner: 30 }],
      };
      const { steps, profile } = plan(doc);
      expect(paths(steps)).to.deep.equal(['DELETE /0', 'DELETE /1', 'DELETE /2', 'PUT /0/1', 'PUT /0/2', 'PUT /0/3', 'PUT /1/0', 'PUT /1/1', 'PUT /1/2', 'PUT /2/0', 'FINISH']);
      expect(rows(writeAt(steps, '/0/1').node).slice(2, 6)).to.deep.equal([
        [2, 'integer', 0],
        [3, 'opaque', toHex(utf8('dev-1'))],
        [4, 'opaque', ''],
        [5, 'opaque', '000102030405060708090a0b0c0d0e0f'],
      ]);
      expect(rows(writeAt(steps, '/0/2').node).slice(2, 6)).to.deep.equal([
        [2, 'integer', 1],
        [3, 'opaque', toHex(client.spki)],
        [4, 'opaque', toHex(server.spki)],
        [5, 'opaque', toHex(client.pkcs8.reveal())],
      ]);
      const x = profile.servers[2]!.security;
      if (x.mode !== 'x509') throw new Error('x509 expected');
      expect(rows(writeAt(steps, '/0/3').node).slice(2, 6)).to.deep.equal([
        [2, 'integer', 2],
        [3, 'opaque', toHex(x.certificate)],
        [4, 'opaque', toHex(x.serverCertificate)],
        [5, 'opaque', toHex(x.privateKey.reveal())],
      ]);
      expect(rows(writeAt(steps, '/1/2').node)[0]).to.deep.equal([0, 'integer', 30]);
    });

    it('matching type: res 4 carries the hash for 1.1+, the key itself for 1.0', () => {
      const server = generateRpkKeyPair();
      const doc = {
        name: 'hash',
        servers: [{ shortServerId: 1, uri: 'coaps://a.example.com', security: { mode: 'rpk', generate: true, serverPublicKey: b64(server.spki), matchingType: 1, sni: 'a.example.com', ciphersuites: [49326, 49320] } }],
      };
      const v11 = plan(doc, { pct: 11542 });
      expect(rows(writeAt(v11.steps, '/0/1').node).filter(([rid]) => rid >= 4 && rid !== 5 && rid !== 10)).to.deep.equal([
        [4, 'opaque', createHash('sha256').update(server.spki).digest('hex')],
        [13, 'unsigned', 1],
        [14, 'string', 'a.example.com'],
        [
          16,
          'multi',
          [
            [0, 'unsigned', 49326],
            [1, 'unsigned', 49320],
          ],
        ],
      ]);
      const v10 = plan(doc);
      expect(rows(writeAt(v10.steps, '/0/1').node).filter(([rid]) => rid === 4 || rid >= 11)).to.deep.equal([[4, 'opaque', toHex(server.spki)]]);
    });
  });

  describe('several servers and ACLs', () => {
    it('allocates Security from /0/1, Server and ACL from 0, ACL rights keyed by SSID', () => {
      const { steps } = plan({
        name: 'multi',
        servers: [nosec(101), nosec(102), { shortServerId: 1, handOff: true, security: { mode: 'psk' } }],
        acl: [
          { objectId: 1, instanceId: 0, rights: { '101': 'RWE', '102': 'R' }, owner: 101 },
          { objectId: 3, instanceId: 0, rights: { default: 'R', '1': 'RWE' } },
          { objectId: 5, instanceId: 65535, rights: { '1': 'C' } },
          { objectId: 4, instanceId: 0 },
        ],
      });
      expect(paths(steps)).to.deep.equal([
        'DELETE /0',
        'DELETE /1',
        'DELETE /2',
        'PUT /0/1',
        'PUT /0/2',
        'PUT /0/3',
        'PUT /1/0',
        'PUT /1/1',
        'PUT /1/2',
        'PUT /2/0',
        'PUT /2/1',
        'PUT /2/2',
        'PUT /2/3',
        'FINISH',
      ]);
      expect(rows(writeAt(steps, '/0/3').node)[6]).to.deep.equal([10, 'integer', 1]);
      expect(rows(writeAt(steps, '/2/0').node)).to.deep.equal([
        [0, 'integer', 1],
        [1, 'integer', 0],
        [
          2,
          'multi',
          [
            [101, 'integer', 7],
            [102, 'integer', 1],
          ],
        ],
        [3, 'integer', 101],
      ]);
      expect(rows(writeAt(steps, '/2/1').node)[2]).to.deep.equal([
        2,
        'multi',
        [
          [0, 'integer', 1],
          [1, 'integer', 7],
        ],
      ]);
      expect(rows(writeAt(steps, '/2/2').node)).to.deep.equal([
        [0, 'integer', 5],
        [1, 'integer', 65535],
        [2, 'multi', [[1, 'integer', 16]]],
        [3, 'integer', 65535],
      ]);
      // no rights: resource 2 is left out (SenML cannot carry an empty multiple resource)
      expect(rows(writeAt(steps, '/2/3').node)).to.deep.equal([
        [0, 'integer', 4],
        [1, 'integer', 0],
        [3, 'integer', 65535],
      ]);
      expect(writeAt(steps, '/2/0').target).to.equal('acl');
    });

    it('skips ACL writes and the /2 read when Discover shows no ACL object', () => {
      const { steps } = plan(
        { name: 'noacl', bootstrapRead: true, discoverBootstrapAccount: true, servers: [nosec(1), nosec(2)], acl: [{ objectId: 3, instanceId: 0, rights: { '1': 'R' } }] },
        { discover: '</>;lwm2m=1.1,</0/0>,</1>,</3/0>' },
      );
      expect(paths(steps)).to.deep.equal(['DELETE /0', 'DELETE /1', 'PUT /0/1', 'PUT /0/2', 'PUT /1/0', 'PUT /1/1', 'READ /1', 'FINISH']);
    });
  });

  describe('Discover and instance IDs', () => {
    const three = { name: 'disc', discoverBootstrapAccount: true, servers: [nosec(1), nosec(2), nosec(3), nosec(4)] };

    it('bootstrap account at /0/0: servers at /0/1 upwards', () => {
      const { steps } = plan(three, { discover: '</>;lwm2m=1.1,</0/0>,</0/1>;ssid=1;uri="coap://old",</1/0>;ssid=1,</3/0>' });
      expect(paths(steps).filter((p) => p.startsWith('PUT /0'))).to.deep.equal(['PUT /0/1', 'PUT /0/2', 'PUT /0/3', 'PUT /0/4']);
    });

    it('bootstrap account at /0/3: servers at /0/0, /0/1, /0/2, /0/4 — never /0/3', () => {
      const { steps } = plan(three, { discover: '</>;lwm2m=1.1,</0/3>,</0/0>;ssid=9,</1/0>;ssid=9,</3/0>' });
      expect(paths(steps).filter((p) => p.startsWith('PUT /0'))).to.deep.equal(['PUT /0/0', 'PUT /0/1', 'PUT /0/2', 'PUT /0/4']);
      expect(paths(steps)).to.not.include('DELETE /0/3');
    });

    it('a 1.0-style Discover is understood too', () => {
      const { steps } = plan(three, { discover: 'lwm2m="1.0",</0/2>,</0/0>;ssid=101,</1/0>;ssid=101,</3/0>' });
      expect(paths(steps).filter((p) => p.startsWith('PUT /0'))).to.deep.equal(['PUT /0/0', 'PUT /0/1', 'PUT /0/3', 'PUT /0/4']);
    });

    it('writes the bootstrap account in place of the one Discover found', () => {
      const { steps } = plan(
        { ...three, servers: [nosec(1)], bootstrapAccount: { uri: 'coaps://bs.example.com:5684', security: { mode: 'psk', identity: 'bs-id', key: '0f0e0d0c0b0a09080706050403020100' }, clientHoldOffTime: 5, accountTimeout: 0 } },
        { discover: '</>;lwm2m=1.1,</0/3>,</1>,</3/0>' },
      );
      expect(paths(steps)).to.deep.equal(['DELETE /0', 'DELETE /1', 'PUT /0/0', 'PUT /0/3', 'PUT /1/0', 'FINISH']);
      const bs = writeAt(steps, '/0/3');
      expect(bs.target).to.equal('bootstrapAccount');
      expect(bs.secret).to.equal(true);
      expect(describeStep(bs)).to.equal('PUT /0/3 (bootstrap account)');
      expect(rows(bs.node)).to.deep.equal([
        [0, 'string', 'coaps://bs.example.com:5684'],
        [1, 'boolean', true],
        [2, 'integer', 0],
        [3, 'opaque', toHex(utf8('bs-id'))],
        [4, 'opaque', ''],
        [5, 'opaque', '0f0e0d0c0b0a09080706050403020100'],
        [11, 'integer', 5],
        [12, 'integer', 0],
      ]);
    });

    it('without Discover the bootstrap account goes to /0/0 and servers follow', () => {
      const { steps } = plan({ name: 'bs', discoverBootstrapAccount: false, bootstrapAccount: { uri: 'coap://bs.example.com', security: { mode: 'nosec' } }, servers: [nosec(1), nosec(2)], acl: [{ objectId: 3, instanceId: 0, rights: { '1': 'R', '2': 'R' } }] });
      expect(paths(steps).filter((p) => p.startsWith('PUT /0'))).to.deep.equal(['PUT /0/0', 'PUT /0/1', 'PUT /0/2']);
      expect(writeAt(steps, '/0/0').target).to.equal('bootstrapAccount');
    });

    it('a generated bootstrap account credential is used', () => {
      const { steps, credentials } = plan(
        { name: 'bsgen', bootstrapAccount: { uri: 'coaps://bs.example.com', security: { mode: 'psk', generate: true } }, servers: [nosec(1)] },
        { discover: '</>;lwm2m=1.2,</0/1>,</3/0>' },
      );
      const c = credentials.bootstrap;
      if (c?.mode !== 'psk') throw new Error('psk expected');
      expect(rows(writeAt(steps, '/0/1').node)[5]).to.deep.equal([5, 'opaque', toHex(c.key.reveal())]);
      expect(writeAt(steps, '/0/0').target).to.equal('security');
    });

    it('when /0 and /1 are not deleted, instances with the same SSID are overwritten and others skipped', () => {
      const { steps } = plan(
        { name: 'keep', discoverBootstrapAccount: true, delete: ['/5'], servers: [nosec(1), nosec(2)], acl: [{ objectId: 3, instanceId: 0, rights: { '1': 'R', '2': 'R' } }] },
        { discover: '</>;lwm2m=1.1,</0/0>,</0/1>;ssid=1,</0/2>;ssid=9,</1/0>;ssid=9,</1/4>;ssid=1,</2/0>,</3/0>,</5>' },
      );
      expect(paths(steps)).to.deep.equal(['DELETE /5', 'PUT /0/1', 'PUT /0/3', 'PUT /1/1', 'PUT /1/4', 'PUT /2/1', 'FINISH']);
      expect(rows(writeAt(steps, '/0/1').node)[6]).to.deep.equal([10, 'integer', 1]);
      expect(rows(writeAt(steps, '/1/4').node)[0]).to.deep.equal([0, 'integer', 1]);
      expect(rows(writeAt(steps, '/1/1').node)[0]).to.deep.equal([0, 'integer', 2]);
    });

    it('skips deletes of objects and instances the client does not have', () => {
      const { steps } = plan(
        { name: 'del', discoverBootstrapAccount: true, lwm2mVersions: ['1.1'], delete: ['/0', '/1', '/21', '/5/0', '/4/1', '/4'], servers: [nosec(1)] },
        { discover: '</>;lwm2m=1.1,</0/0>,</1>,</3/0>,</4/0>' },
      );
      expect(paths(steps)).to.deep.equal(['DELETE /0', 'DELETE /1', 'DELETE /4', 'PUT /0/1', 'PUT /1/0', 'FINISH']);
      const root = plan({ name: 'root', discoverBootstrapAccount: true, delete: ['/'], servers: [nosec(1)] }, { discover: '</>;lwm2m=1.1,</0/0>,</3/0>' });
      expect(paths(root.steps)[0]).to.equal('DELETE /');
    });

    it('property: Security and Server IDs are unique and never take the bootstrap account, whatever Discover says', () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 0, max: 8 }),
          fc.uniqueArray(fc.integer({ min: 0, max: 8 }), { maxLength: 5 }),
          fc.integer({ min: 1, max: 5 }),
          fc.boolean(),
          fc.boolean(),
          (bsIid, others, nServers, deleteAll, writeBs) => {
            const links = ['</>;lwm2m=1.1', `</0/${bsIid}>`, ...others.filter((i) => i !== bsIid).map((i) => `</0/${i}>;ssid=${i + 1}`), '</1/0>;ssid=1', '</3/0>'];
            const doc: Json = {
              name: 'prop',
              discoverBootstrapAccount: true,
              delete: deleteAll ? ['/0', '/1'] : ['/5'],
              servers: Array.from({ length: nServers }, (_, k) => nosec(k + 1)),
              ...(writeBs ? { bootstrapAccount: { uri: 'coap://bs', security: { mode: 'nosec' } } } : {}),
            };
            const profile = parseProfile(doc);
            const steps = planBootstrap({ profile, endpoint: EP, registration: REG, credentials: { servers: new Map() }, discover: parseBootstrapDiscover(links.join(',')) });
            const sec = steps.filter((s): s is WriteStep => s.kind === 'write' && s.path[0] === 0);
            const ids = sec.map((s) => s.path[1]);
            expect(new Set(ids).size).to.equal(ids.length);
            for (const s of sec) expect(s.target === 'bootstrapAccount').to.equal(s.path[1] === bsIid);
            expect(sec.length).to.equal(nServers + (writeBs ? 1 : 0));
            const srv = steps.filter((s) => s.kind === 'write' && s.path[0] === 1).map((s) => (s as WriteStep).path[1]);
            expect(new Set(srv).size).to.equal(srv.length);
            expect(steps.some((s) => s.kind === 'delete' && s.path.length > 1 && s.path[0] === 0)).to.equal(false);
          },
        ),
        { numRuns: 200 },
      );
    });
  });

  describe('client versions', () => {
    const doc = {
      name: 'versions',
      discoverBootstrapAccount: true,
      servers: [
        {
          shortServerId: 1,
          uri: 'coap://dm.example.com',
          binding: 'UQ',
          lifetime: 600,
          disableTimeout: 3600,
          registrationPriorityOrder: 1,
          initialRegistrationDelayTimer: 0,
          registrationFailureBlock: true,
          bootstrapOnRegistrationFailure: false,
          communicationRetryCount: 3,
          communicationRetryTimer: 30,
          communicationSequenceDelayTimer: 600,
          communicationSequenceRetryCount: 2,
          trigger: false,
          preferredTransport: 'U',
          muteSend: false,
          supportedServerVersions: ['1.1', '1.2'],
          defaultNotificationMode: 'con',
          profileIdHashAlgorithm: 1,
          security: { mode: 'nosec', ciphersuites: [49320] },
        },
      ],
    };
    const server = (steps: BootstrapStep[]): Row[] => rows(writeAt(steps, '/1/0').node);

    it('1.0: only 1.0 Server resources, 1.0 binding, no Security 1.1 resources', () => {
      const { steps } = plan(doc, { discover: 'lwm2m="1.0",</0/0>,</1>,</3/0>' });
      expect(server(steps).map((r) => r[0])).to.deep.equal([0, 1, 5, 6, 7]);
      expect(server(steps)[4]).to.deep.equal([7, 'string', 'UQ']);
      expect(rows(writeAt(steps, '/0/1').node).map((r) => r[0])).to.deep.equal([0, 1, 2, 3, 4, 5, 10]);
    });

    it('1.1: adds 13–23, drops Q from the binding, unsigned types for 13/14/17–20', () => {
      const { steps } = plan(doc, { discover: '</>;lwm2m=1.1,</0/0>,</1>,</3/0>' });
      expect(server(steps)).to.deep.equal([
        [0, 'integer', 1],
        [1, 'integer', 600],
        [5, 'integer', 3600],
        [6, 'boolean', true],
        [7, 'string', 'U'],
        [13, 'unsigned', 1],
        [14, 'unsigned', 0],
        [15, 'boolean', true],
        [16, 'boolean', false],
        [17, 'unsigned', 3],
        [18, 'unsigned', 30],
        [19, 'unsigned', 600],
        [20, 'unsigned', 2],
        [21, 'boolean', false],
        [22, 'string', 'U'],
        [23, 'boolean', false],
      ]);
      expect(rows(writeAt(steps, '/0/1').node).map((r) => r[0])).to.deep.equal([0, 1, 2, 3, 4, 5, 10, 16]);
    });

    it('1.2: adds 25–27', () => {
      const { steps } = plan(doc, { discover: '</>;lwm2m=1.2,</0/0>,</1>,</3/0>' });
      expect(server(steps).slice(16)).to.deep.equal([
        [
          25,
          'multi',
          [
            [0, 'string', '1.1'],
            [1, 'string', '1.2'],
          ],
        ],
        [26, 'integer', 1],
        [27, 'unsigned', 1],
      ]);
    });

    it('a client that says lwm2m=1.0 but lists </0>;ver=1.1 (the Leshan client) is planned as 1.1', () => {
      const input = { profile: parseProfile(doc), discover: parseBootstrapDiscover('</>;lwm2m=1.0,</0>;ver=1.1,</0/0>,</1>;ver=1.1,</3/0>') };
      const v = resolveClientVersions(input.profile, input);
      expect(v.lwm2mVersion).to.equal('1.1');
      expect(v.reported).to.equal(false);
      expect(v.objects.get(0)).to.equal('1.1');
    });

    it('without evidence the oldest accepted version is assumed; pct proves 1.1+, pct 11544 proves 1.2', () => {
      const p = parseProfile(doc);
      expect(resolveClientVersions(p, {}).lwm2mVersion).to.equal('1.0');
      expect(resolveClientVersions(p, { pct: 112 }).lwm2mVersion).to.equal('1.1');
      expect(resolveClientVersions(p, { pct: 11544 }).lwm2mVersion).to.equal('1.2');
      expect(resolveClientVersions(p, { lwm2mVersion: '1.1.1' }).lwm2mVersion).to.equal('1.1');
      expect(resolveClientVersions(p, { lwm2mVersion: '1.3' }).lwm2mVersion).to.equal('1.2');
      const only12 = parseProfile({ ...doc, lwm2mVersions: ['1.2'] });
      expect(resolveClientVersions(only12, { pct: 110 }).lwm2mVersion).to.equal('1.2');
      expect([...resolveClientVersions(only12, {}).objects]).to.deep.equal([
        [0, '1.2'],
        [1, '1.2'],
        [2, '1.0'],
        [21, '2.0'],
      ]);
    });

    it('a client version the profile does not accept fails the plan', () => {
      const p11 = parseProfile({ ...doc, lwm2mVersions: ['1.1', '1.2'] });
      const e = planError(() => planBootstrap({ profile: p11, endpoint: EP, registration: REG, credentials: { servers: new Map() }, discover: parseBootstrapDiscover('lwm2m="1.0",</0/0>') }), 'version_not_accepted');
      expect(e.message).to.equal(`${EP}: the client runs LwM2M 1.0; profile versions accepts 1.1, 1.2`);
      const bin = planError(() => planBootstrap({ profile: p11, endpoint: new Uint8Array([0xff, 0x01]), registration: REG, credentials: { servers: new Map() }, lwm2mVersion: '1.0' }), 'version_not_accepted');
      expect(bin.message).to.match(/^0xff01: /);
      const p10 = parseProfile({ ...doc, lwm2mVersions: ['1.0'] });
      planError(() => resolveClientVersions(p10, { pct: 11542 }), 'version_not_accepted');
      planError(() => resolveClientVersions(p10, { lwm2mVersion: '1.2' }), 'version_not_accepted');
    });

    it('Bootstrap-Read of /1 and /2 before Finish, only for 1.1+ clients', () => {
      const withRead = { name: 'read', bootstrapRead: true, discoverBootstrapAccount: true, servers: [nosec(1)] };
      expect(paths(plan(withRead, { discover: '</>;lwm2m=1.1,</0/0>,</1>,</2>,</3/0>' }).steps).slice(-3)).to.deep.equal(['READ /1', 'READ /2', 'FINISH']);
      expect(paths(plan(withRead, { discover: 'lwm2m="1.0",</0/0>,</1>,</2>,</3/0>' }).steps).slice(-2)).to.deep.equal(['PUT /1/0', 'FINISH']);
      expect(paths(plan(withRead, { pct: 112 }).steps).slice(-3)).to.deep.equal(['READ /1', 'READ /2', 'FINISH']);
      expect(paths(plan(withRead).steps)).to.not.include('READ /1');
    });
  });

  describe('OSCORE', () => {
    const doc = {
      name: 'oscore',
      lwm2mVersions: ['1.1', '1.2'],
      servers: [
        nosec(1),
        {
          shortServerId: 2,
          uri: 'coap://oscore.example.com',
          security: { mode: 'nosec' },
          oscore: { masterSecret: { text: '0123456789abcdef' }, senderId: { text: 'c' }, recipientId: { text: 's' }, aeadAlgorithm: 10, hmacAlgorithm: -10, masterSalt: { text: 'salt' }, idContext: { text: 'ctx' } },
        },
      ],
      acl: [{ objectId: 3, instanceId: 0, rights: { '1': 'R', '2': 'R' } }],
    };

    it('1.1 client: /21/0 with String keys, linked from /0/x/17, deletes /21 by default', () => {
      const { steps } = plan(doc, { pct: 112 });
      expect(paths(steps)).to.deep.equal(['DELETE /0', 'DELETE /1', 'DELETE /2', 'DELETE /21', 'PUT /0/1', 'PUT /0/2', 'PUT /1/0', 'PUT /1/1', 'PUT /2/0', 'PUT /21/0', 'FINISH']);
      expect(rows(writeAt(steps, '/0/2').node).at(-1)).to.deep.equal([17, 'objlnk', '21:0']);
      expect(rows(writeAt(steps, '/0/1').node).map((r) => r[0])).to.not.include(17);
      const o = writeAt(steps, '/21/0');
      expect(o).to.include({ target: 'oscore', ssid: 2, objectVersion: '1.1', secret: true });
      expect(rows(o.node)).to.deep.equal([
        [0, 'string', '0123456789abcdef'],
        [1, 'string', 'c'],
        [2, 'string', 's'],
        [3, 'integer', 10],
        [4, 'integer', -10],
        [5, 'string', 'salt'],
        [6, 'string', 'ctx'],
      ]);
    });

    it('1.2 client: Opaque keys (OSCORE object 2.0)', () => {
      const { steps } = plan(doc, { pct: 11544 });
      const o = writeAt(steps, '/21/0');
      expect(o.objectVersion).to.equal('2.0');
      expect(rows(o.node).slice(0, 3)).to.deep.equal([
        [0, 'opaque', toHex(utf8('0123456789abcdef'))],
        [1, 'opaque', '63'],
        [2, 'opaque', '73'],
      ]);
    });

    it('Discover decides: ver=2.0 on /21 means Opaque, an existing OSCORE instance of the BS account is kept', () => {
      const { steps } = plan({ ...doc, discoverBootstrapAccount: true }, { discover: '</>;lwm2m=1.1,</0/0>,</21>;ver=2.0,</21/0>,</2>,</3/0>' });
      expect(paths(steps)).to.include('PUT /21/1');
      expect(writeAt(steps, '/21/1').objectVersion).to.equal('2.0');
      expect(rows(writeAt(steps, '/0/2').node).at(-1)).to.deep.equal([17, 'objlnk', '21:1']);
    });

    it('fails the plan when the client has no OSCORE object, or a key cannot be a String', () => {
      const p = parseProfile({ ...doc, discoverBootstrapAccount: true });
      planError(() => planBootstrap({ profile: p, endpoint: EP, registration: REG, credentials: { servers: new Map() }, discover: parseBootstrapDiscover('</>;lwm2m=1.1,</0/0>,</3/0>') }), 'unsupported_by_client');
      const binary = parseProfile({ ...doc, servers: [nosec(1), { ...(doc.servers[1] as Json), oscore: { masterSecret: 'ff00ff', senderId: '01', recipientId: '02' } }] });
      planError(() => planBootstrap({ profile: binary, endpoint: EP, registration: REG, credentials: { servers: new Map() }, pct: 112 }), 'unrepresentable');
      // the same keys are fine for a 1.2 client (Opaque)
      expect(planBootstrap({ profile: binary, endpoint: EP, registration: REG, credentials: { servers: new Map() }, pct: 11544 }).length).to.be.greaterThan(0);
    });
  });

  describe('content formats', () => {
    const auto = parseProfile({ name: 'a', servers: [nosec(1)] });

    it('pct first, then the ladder of the version', () => {
      expect(chooseContentFormat(auto, 112, '1.1')).to.deep.equal([112, 11542, 110]);
      expect(chooseContentFormat(auto, 11542, '1.2')).to.deep.equal([11542, 112, 110, 11544]);
      expect(chooseContentFormat(auto, 11544)).to.deep.equal([11544, 11542, 112, 110]);
      expect(chooseContentFormat(auto, 110, '1.0')).to.deep.equal([110, 11542, 112]);
    });

    it('no pct: TLV first; 1.0 falls back to LwM2M JSON, 1.1+ to SenML CBOR then SenML JSON', () => {
      expect(chooseContentFormat(auto, undefined, '1.0')).to.deep.equal([11542, 11543]);
      expect(chooseContentFormat(auto, undefined, '1.1')).to.deep.equal([11542, 112, 110]);
      expect(chooseContentFormat(auto, undefined, '1.2')).to.deep.equal([11542, 112, 110, 11544]);
      expect(chooseContentFormat(auto)).to.deep.equal([11542, 112, 110, 11544]);
    });

    it('a pct that is no Bootstrap-Write format is ignored; a forced format is the only one', () => {
      expect(chooseContentFormat(auto, 0, '1.1')).to.deep.equal([11542, 112, 110]);
      const forced = parseProfile({ name: 'f', contentFormat: 'senml-json', lwm2mVersions: ['1.1', '1.2'], servers: [nosec(1)] });
      expect(chooseContentFormat(forced, 112, '1.2')).to.deep.equal([110]);
    });

    it('writeFormatsFor lists the instance formats of each version', () => {
      expect(writeFormatsFor('1.0')).to.deep.equal([11542, 11543]);
      expect(writeFormatsFor('1.1').sort()).to.deep.equal([110, 112, 11542].sort());
      expect(writeFormatsFor('1.2').sort()).to.deep.equal([110, 112, 11542, 11544].sort());
    });
  });

  describe('Bootstrap-Pack', () => {
    it('objects 0, 1, 2, 21 in one pack, encodable with every pack format', () => {
      const profile = parseProfile({
        name: 'pack',
        lwm2mVersions: ['1.1', '1.2'],
        bootstrapAccount: { uri: 'coap://bs.example.com', security: { mode: 'nosec' } },
        servers: [
          { shortServerId: 1, handOff: true, security: { mode: 'psk' }, muteSend: false, defaultNotificationMode: 'non' },
          { shortServerId: 2, uri: 'coap://b.example.com', security: { mode: 'nosec' }, oscore: { masterSecret: 'ff00', senderId: '01', recipientId: '02' } },
        ],
        acl: [{ objectId: 3, instanceId: 0, rights: { '1': 'R', '2': 'R' } }],
      });
      const credentials = generateCredentials(profile, EP);
      const objects = planBootstrapPack({ profile, endpoint: EP, registration: REG, credentials });
      expect(objects.map((o) => [o.id, [...o.instances.keys()]])).to.deep.equal([
        [0, [0, 1, 2]],
        [1, [0, 1]],
        [2, [0]],
        [21, [0]],
      ]);
      const sec1 = objects[0]!.instances.get(1)!;
      expect(rows(sec1)[0]).to.deep.equal([0, 'string', REG.coaps]);
      expect(rows(objects[3]!.instances.get(0)!)[0]).to.deep.equal([0, 'opaque', 'ff00']);
      expect(rows(objects[1]!.instances.get(0)!).map((r) => r[0])).to.deep.equal([0, 1, 6, 7, 23, 26]);
      const models = registry.withVersions(resolveClientVersions(profile, { lwm2mVersion: '1.2' }).objects);
      const records = objects.flatMap((o) => nodeToRecords([o.id], o));
      for (const cf of [112, 110, 11544]) {
        const codec = compositeCodecFor(cf);
        const back = codec.decodeRecords(codec.encodeRecords(records), models);
        expect(back.length, codec.name).to.equal(records.length);
        back.forEach((r, i) => {
          expect(formatPath(r.path)).to.equal(formatPath(records[i]!.path));
          expect(valueEquals(r.value, records[i]!.value), `${codec.name} ${formatPath(r.path)}`).to.equal(true);
        });
        const rebuilt = recordsToObjects(codec.name, back, (o, r) => models.resource(o, r));
        rebuilt.forEach((o, i) => expect(nodeEquals(o, objects[i]!)).to.equal(true));
      }
    });

    it('a profile that does not accept 1.2 cannot make a pack', () => {
      const profile = parseProfile({ name: 'old', lwm2mVersions: ['1.0', '1.1'], servers: [nosec(1)] });
      planError(() => planBootstrapPack({ profile, endpoint: EP, registration: REG, credentials: { servers: new Map() } }), 'version_not_accepted');
    });
  });

  describe('describeStep', () => {
    it('names each request without values', () => {
      const { steps } = plan({ name: 'd', servers: [{ shortServerId: 1, uri: 'coaps://a', security: { mode: 'psk', identity: 'secret-id', key: '00112233445566778899aabbccddeeff' } }] });
      const text = steps.map(describeStep).join('\n');
      expect(text).to.equal(['DELETE /0', 'DELETE /1', 'PUT /0/1 (Security, SSID 1)', 'PUT /1/0 (Server, SSID 1)', 'POST /bs (Bootstrap-Finish)'].join('\n'));
      expect(describeStep({ kind: 'discover', path: [] })).to.equal('GET / (Bootstrap-Discover)');
      expect(describeStep({ kind: 'read', path: [2] })).to.equal('GET /2 (Bootstrap-Read)');
    });
  });
});
