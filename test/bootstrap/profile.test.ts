import { generateKeyPairSync } from 'node:crypto';
import { inspect } from 'node:util';
import { expect } from 'chai';
import { generateRpkKeyPair } from '../../src/bootstrap/credentials.js';
import {
  acceptsVersion,
  bindingFor,
  enrollmentAllowed,
  formatRights,
  globMatch,
  handOffServer,
  normaliseLwm2mVersion,
  parseProfile,
  parseProfileText,
  parseRights,
  patternSpecificity,
  type Profile,
  ProfileError,
  profileToJson,
  profileWarnings,
  selectProfileByMatch,
  serverUriProblem,
} from '../../src/bootstrap/profile.js';
import { toHex } from '../support/arbitraries.js';
import { CLIENT_CERT_PEM, CLIENT_KEY_PEM, SERVER_CERT_PEM } from './fixtures.js';

/** The issue's example profile, verbatim. */
const ISSUE_EXAMPLE = `{ "name": "meters", "match": ["urn:imei:35*"], "delete": ["/0", "/1"],
  "contentFormat": "auto", "discoverBootstrapAccount": false,
  "servers": [ { "shortServerId": 1, "handOff": true, "lifetime": 300, "binding": "U",
                 "defaultMinPeriod": 1, "defaultMaxPeriod": 60, "notificationStoring": true,
                 "security": { "mode": "nosec" } } ] }`;

type Json = Record<string, unknown>;

const nosecServer = (ssid = 1): Json => ({ shortServerId: ssid, uri: `coap://dm${ssid}.example.com:5683`, security: { mode: 'nosec' } });
const minimal = (over: Json = {}): Json => ({ name: 'p', servers: [nosecServer()], ...over });

function issuesOf(doc: unknown): { path: string; message: string }[] {
  try {
    parseProfile(doc);
  } catch (e) {
    expect(e).to.be.instanceOf(ProfileError);
    return [...(e as ProfileError).issues];
  }
  throw new Error('expected a ProfileError');
}

/** Expects exactly one issue at `path` whose message contains `fragment`. */
function expectIssue(doc: unknown, path: string, fragment: string): void {
  const issues = issuesOf(doc);
  const at = issues.filter((i) => i.path === path);
  expect(at, `issues: ${JSON.stringify(issues)}`).to.have.length.greaterThan(0);
  expect(at.some((i) => i.message.includes(fragment)), `want "${fragment}" in ${JSON.stringify(at)}`).to.equal(true);
}

const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');

describe('bootstrap profiles', () => {
  describe('the issue example', () => {
    it('parses, keeping what it says and filling the rest', () => {
      const p = parseProfileText(ISSUE_EXAMPLE);
      expect(p.name).to.equal('meters');
      expect(p.match).to.deep.equal(['urn:imei:35*']);
      expect(p.delete).to.deep.equal([[0], [1]]);
      expect(p.contentFormat).to.equal('auto');
      expect(p.discoverBootstrapAccount).to.equal(false);
      expect(p.lwm2mVersions).to.deep.equal(['1.0', '1.1', '1.2']);
      expect(p.bootstrapRead).to.equal(false);
      expect(p.enroll.allowSecurity).to.deep.equal(['nosec', 'psk', 'rpk', 'x509']);
      expect(p.acl).to.deep.equal([]);
      expect(p.bootstrapAccount).to.equal(undefined);
      expect(p.servers).to.deep.equal([
        {
          shortServerId: 1,
          handOff: true,
          lifetime: 300,
          binding: 'U',
          notificationStoring: true,
          defaultMinPeriod: 1,
          defaultMaxPeriod: 60,
          security: { mode: 'nosec' },
        },
      ]);
      expect(profileWarnings(p)).to.deep.equal([]);
      expect(handOffServer(p)?.shortServerId).to.equal(1);
    });
  });

  describe('defaults', () => {
    it('fills every default of a minimal profile', () => {
      const p = parseProfile(minimal());
      expect(p).to.deep.equal({
        name: 'p',
        match: [],
        enroll: { allowSecurity: ['nosec', 'psk', 'rpk', 'x509'] },
        delete: [[0], [1]],
        contentFormat: 'auto',
        discoverBootstrapAccount: false,
        lwm2mVersions: ['1.0', '1.1', '1.2'],
        bootstrapRead: false,
        servers: [{ shortServerId: 1, handOff: false, uri: 'coap://dm1.example.com:5683', lifetime: 86400, binding: 'U', notificationStoring: true, security: { mode: 'nosec' } }],
        acl: [],
      });
    });

    it('default deletes add /2 with ACLs and /21 with OSCORE', () => {
      const p = parseProfile(
        minimal({
          lwm2mVersions: ['1.1', '1.2'],
          servers: [{ ...nosecServer(), oscore: { masterSecret: '00112233445566778899aabbccddeeff', senderId: '01', recipientId: '02' } }],
          acl: [{ objectId: 3, instanceId: 0, rights: { '1': 'RW' } }],
        }),
      );
      expect(p.delete).to.deep.equal([[0], [1], [2], [21]]);
    });

    it('discoverBootstrapAccount defaults to true when a bootstrap account is written', () => {
      const p = parseProfile(minimal({ bootstrapAccount: { uri: 'coap://bs.example.com:5683', security: { mode: 'nosec' } } }));
      expect(p.discoverBootstrapAccount).to.equal(true);
      expect(parseProfile(minimal({ bootstrapAccount: { uri: 'coap://bs.example.com', security: { mode: 'nosec' } }, discoverBootstrapAccount: false })).discoverBootstrapAccount).to.equal(false);
    });

    it('psk on a hand-off server means generated, identity = endpoint', () => {
      const p = parseProfile(minimal({ servers: [{ shortServerId: 1, handOff: true, security: { mode: 'psk' } }] }));
      expect(p.servers[0]!.security).to.deep.equal({ mode: 'psk', generate: true, identityTemplate: '{endpoint}' });
      const r = parseProfile(minimal({ servers: [{ shortServerId: 1, handOff: true, security: { mode: 'rpk' } }] }));
      expect(r.servers[0]!.security).to.deep.equal({ mode: 'rpk', generate: true });
    });

    it('normalises delete paths: duplicates and covered paths go', () => {
      expect(parseProfile(minimal({ delete: ['/1', '/1', '/1/0', '/5/0', '/5'] })).delete).to.deep.equal([[1], [5, 0], [5]]);
      expect(parseProfile(minimal({ delete: ['/', '/0', '/1'] })).delete).to.deep.equal([[]]);
    });

    it('content formats by name or number', () => {
      expect(parseProfile(minimal({ contentFormat: 'tlv' })).contentFormat).to.equal(11542);
      expect(parseProfile(minimal({ contentFormat: 'senml-cbor', lwm2mVersions: ['1.1', '1.2'] })).contentFormat).to.equal(112);
      expect(parseProfile(minimal({ contentFormat: 110, lwm2mVersions: ['1.1'] })).contentFormat).to.equal(110);
      expect(parseProfile(minimal({ contentFormat: 'lwm2m-cbor', lwm2mVersions: ['1.2'] })).contentFormat).to.equal(11544);
      expect(parseProfile(minimal({ contentFormat: 'lwm2m-json', lwm2mVersions: ['1.0'] })).contentFormat).to.equal(11543);
    });

    it('lwm2mVersions are sorted and accept JSON numbers', () => {
      expect(parseProfile(minimal({ lwm2mVersions: ['1.2', 1.1] })).lwm2mVersions).to.deep.equal(['1.1', '1.2']);
      expect(parseProfile(minimal({ lwm2mVersions: [1] })).lwm2mVersions).to.deep.equal(['1.0']);
    });

    it('ACL rights as letters or bitmasks, "default" = SSID 0, owner defaults to 65535', () => {
      const p = parseProfile(
        minimal({
          servers: [nosecServer(1), nosecServer(2)],
          acl: [
            { objectId: 3, instanceId: 0, rights: { '2': 'RWE', default: 1, '1': 15 }, owner: 1 },
            { objectId: 5, instanceId: 65535, rights: { '1': 'C' } },
            { objectId: 4, instanceId: 0, owner: 'bootstrap' },
          ],
        }),
      );
      expect([...p.acl[0]!.rights]).to.deep.equal([
        [0, 1],
        [1, 15],
        [2, 7],
      ]);
      expect(p.acl[0]!.owner).to.equal(1);
      expect(p.acl[1]!.owner).to.equal(65535);
      expect([...p.acl[1]!.rights]).to.deep.equal([[1, 16]]);
      expect(p.acl[2]!.rights.size).to.equal(0);
      expect(p.acl[2]!.owner).to.equal(65535);
    });
  });

  describe('static credentials', () => {
    it('psk: text or hex identity, hex key', () => {
      const p = parseProfile(
        minimal({
          servers: [
            { shortServerId: 1, uri: 'coaps://a.example.com', security: { mode: 'psk', identity: 'dev-1', key: '00112233445566778899AABBCCDDEEFF' } },
            { shortServerId: 2, uri: 'coaps://b.example.com', security: { mode: 'psk', identityHex: '00ff', key: '00:11:22:33' } },
          ],
          acl: [{ objectId: 3, instanceId: 0, rights: { '1': 'R', '2': 'R' } }],
        }),
      );
      const a = p.servers[0]!.security;
      const b = p.servers[1]!.security;
      expect(a.mode === 'psk' && !a.generate && new TextDecoder().decode(a.identity)).to.equal('dev-1');
      expect(a.mode === 'psk' && !a.generate && toHex(a.key.reveal())).to.equal('00112233445566778899aabbccddeeff');
      expect(b.mode === 'psk' && !b.generate && toHex(b.identity)).to.equal('00ff');
      expect(profileWarnings(p)).to.include('servers[1].security.key: shorter than the recommended 16 bytes');
    });

    it('rpk: PEM (PKCS#8 or SEC1) or base64 DER, normalised to SPKI + PKCS#8', () => {
      const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const server = generateRpkKeyPair();
      const forms = [
        { publicKey: publicKey.export({ format: 'pem', type: 'spki' }) as string, privateKey: privateKey.export({ format: 'pem', type: 'pkcs8' }) as string },
        { publicKey: b64(publicKey.export({ format: 'der', type: 'spki' })), privateKey: privateKey.export({ format: 'pem', type: 'sec1' }) as string },
        { publicKey: b64(publicKey.export({ format: 'der', type: 'spki' })), privateKey: b64(privateKey.export({ format: 'der', type: 'sec1' })) },
      ];
      for (const f of forms) {
        const p = parseProfile(minimal({ servers: [{ shortServerId: 1, uri: 'coaps://a.example.com', security: { mode: 'rpk', ...f, serverPublicKey: b64(server.spki) } }] }));
        const s = p.servers[0]!.security;
        if (s.mode !== 'rpk' || s.generate) throw new Error('expected static rpk');
        expect(toHex(s.publicKey)).to.equal(toHex(publicKey.export({ format: 'der', type: 'spki' })));
        expect(toHex(s.privateKey.reveal())).to.equal(toHex(privateKey.export({ format: 'der', type: 'pkcs8' })));
        expect(toHex(s.serverPublicKey)).to.equal(toHex(server.spki));
      }
    });

    it('rpk: a public key that does not belong to the private key is refused', () => {
      const a = generateRpkKeyPair();
      const b = generateRpkKeyPair();
      expectIssue(
        minimal({ servers: [{ shortServerId: 1, uri: 'coaps://a.example.com', security: { mode: 'rpk', publicKey: b64(a.spki), privateKey: b64(b.pkcs8.reveal()), serverPublicKey: b64(a.spki) } }] }),
        'servers[0].security.publicKey',
        'does not belong',
      );
    });

    it('x509: PEM certificate and key, checked to belong together', () => {
      const p = parseProfile(
        minimal({
          servers: [{ shortServerId: 1, uri: 'coaps://a.example.com', security: { mode: 'x509', certificate: CLIENT_CERT_PEM, privateKey: CLIENT_KEY_PEM, serverCertificate: SERVER_CERT_PEM, certificateUsage: 3 } }],
        }),
      );
      const s = p.servers[0]!.security;
      expect(s.mode).to.equal('x509');
      if (s.mode === 'x509') {
        expect(s.certificate[0]).to.equal(0x30);
        expect(s.privateKey.reveal().length).to.equal(138);
        expect(s.certificateUsage).to.equal(3);
      }
      expectIssue(
        minimal({ servers: [{ shortServerId: 1, uri: 'coaps://a.example.com', security: { mode: 'x509', certificate: SERVER_CERT_PEM, privateKey: CLIENT_KEY_PEM, serverCertificate: SERVER_CERT_PEM } }] }),
        'servers[0].security.privateKey',
        'does not belong',
      );
    });
  });

  describe('errors name the field', () => {
    const cases: [string, Json, string, string][] = [
      ['document not an object', [] as unknown as Json, 'profile', 'must be an object'],
      ['missing name', { servers: [nosecServer()] }, 'name', 'required'],
      ['name not a slug', minimal({ name: 'My Profile' }), 'name', 'slug'],
      ['unknown top field with hint', minimal({ contentFromat: 'tlv' }), 'contentFromat', 'did you mean "contentFormat"'],
      ['match not an array', minimal({ match: 'urn:*' }), 'match', 'must be an array'],
      ['empty pattern', minimal({ match: [''] }), 'match[0]', 'must not be empty'],
      ['duplicate pattern', minimal({ match: ['a*', 'a*'] }), 'match[1]', 'duplicate'],
      ['trailing backslash', minimal({ match: ['abc\\'] }), 'match[0]', 'lone'],
      ['enroll unknown mode', minimal({ enroll: { allowSecurity: ['nosec', 'tls'] } }), 'enroll.allowSecurity[1]', 'must be one of nosec, psk, rpk, x509'],
      ['enroll unknown field', minimal({ enroll: { allow: [] } }), 'enroll.allow', 'unknown field'],
      ['delete deep path', minimal({ delete: ['/1/0/1'] }), 'delete[0]', 'not /1/0/1'],
      ['delete /0/x', minimal({ delete: ['/0/1'] }), 'delete[0]', 'use "/0"'],
      ['delete /21/x', minimal({ lwm2mVersions: ['1.1'], delete: ['/21/0'] }), 'delete[0]', 'use "/21"'],
      ['delete /3', minimal({ delete: ['/3'] }), 'delete[0]', 'Device object'],
      ['delete not a path', minimal({ delete: ['1'] }), 'delete[0]', 'is not a path'],
      ['delete not a string', minimal({ delete: [1] }), 'delete[0]', 'must be a path string'],
      ['content format unknown', minimal({ contentFormat: 'xml' }), 'contentFormat', 'must be one of auto, tlv'],
      ['content format vs 1.0', minimal({ contentFormat: 'senml-cbor' }), 'contentFormat', 'not a Bootstrap-Write format of LwM2M 1.0'],
      ['content format lwm2m-json vs 1.1', minimal({ contentFormat: 11543, lwm2mVersions: ['1.0', '1.1'] }), 'contentFormat', 'LwM2M 1.1'],
      ['discover not boolean', minimal({ discoverBootstrapAccount: 'yes' }), 'discoverBootstrapAccount', 'true or false'],
      ['version unknown', minimal({ lwm2mVersions: ['1.3'] }), 'lwm2mVersions[0]', 'must be one of "1.0", "1.1", "1.2"'],
      ['versions empty', minimal({ lwm2mVersions: [] }), 'lwm2mVersions', 'at least one'],
      ['version duplicate', minimal({ lwm2mVersions: ['1.1', '1.1'] }), 'lwm2mVersions[1]', 'duplicate'],
      ['bootstrapRead on 1.0 only', minimal({ bootstrapRead: true, lwm2mVersions: ['1.0'] }), 'bootstrapRead', 'from LwM2M 1.1'],
      ['no servers', { name: 'p' }, 'servers', 'required'],
      ['empty servers', minimal({ servers: [] }), 'servers', 'at least one'],
      ['server without security', minimal({ servers: [{ shortServerId: 1, uri: 'coap://a' }] }), 'servers[0].security', 'every server needs a Security instance'],
      ['ssid 0', minimal({ servers: [{ ...nosecServer(), shortServerId: 0 }] }), 'servers[0].shortServerId', 'must be in 1..65534'],
      ['ssid 65535', minimal({ servers: [{ ...nosecServer(), shortServerId: 65535 }] }), 'servers[0].shortServerId', 'must be in 1..65534'],
      ['ssid missing', minimal({ servers: [{ uri: 'coap://a', security: { mode: 'nosec' } }] }), 'servers[0].shortServerId', 'required'],
      ['duplicate ssid', minimal({ servers: [nosecServer(1), nosecServer(1)] }), 'servers[1].shortServerId', 'already used by servers[0]'],
      ['two hand-offs', minimal({ servers: [{ shortServerId: 1, handOff: true, security: { mode: 'nosec' } }, { shortServerId: 2, handOff: true, security: { mode: 'nosec' } }] }), 'servers[1].handOff', 'only one'],
      ['handOff with uri', minimal({ servers: [{ shortServerId: 1, handOff: true, uri: 'coap://a', security: { mode: 'nosec' } }] }), 'servers[0].uri', 'from the config'],
      ['no uri without handOff', minimal({ servers: [{ shortServerId: 1, security: { mode: 'nosec' } }] }), 'servers[0].uri', 'required unless handOff'],
      ['bad uri', minimal({ servers: [{ ...nosecServer(), uri: 'http://a.example.com' }] }), 'servers[0].uri', 'coap:// or coaps://'],
      ['uri without host', minimal({ servers: [{ ...nosecServer(), uri: 'coap://' }] }), 'servers[0].uri', 'coap:// or coaps://'],
      ['uri bad port', minimal({ servers: [{ ...nosecServer(), uri: 'coap://a:70000' }] }), 'servers[0].uri', 'port 70000'],
      ['coaps with nosec', minimal({ servers: [{ ...nosecServer(), uri: 'coaps://a.example.com' }] }), 'servers[0].uri', 'nosec needs a coap://'],
      ['coap with psk', minimal({ servers: [{ shortServerId: 1, uri: 'coap://a', security: { mode: 'psk', identity: 'a', key: '00' } }] }), 'servers[0].uri', 'psk needs a coaps://'],
      ['lifetime 0', minimal({ servers: [{ ...nosecServer(), lifetime: 0 }] }), 'servers[0].lifetime', 'must be in 1..2147483647'],
      ['lifetime float', minimal({ servers: [{ ...nosecServer(), lifetime: 1.5 }] }), 'servers[0].lifetime', 'must be an integer'],
      ['binding letter', minimal({ servers: [{ ...nosecServer(), binding: 'UX' }] }), 'servers[0].binding', '"X" is not a binding letter'],
      ['binding repeat', minimal({ servers: [{ ...nosecServer(), binding: 'UU' }] }), 'servers[0].binding', 'repeats'],
      ['binding nothing for 1.0', minimal({ servers: [{ ...nosecServer(), binding: 'T' }] }), 'servers[0].binding', 'LwM2M 1.0 client'],
      ['binding Q only for 1.1', minimal({ lwm2mVersions: ['1.1'], servers: [{ ...nosecServer(), binding: 'Q' }] }), 'servers[0].binding', 'LwM2M 1.1 client'],
      ['pmin > pmax', minimal({ servers: [{ ...nosecServer(), defaultMinPeriod: 60, defaultMaxPeriod: 10 }] }), 'servers[0].defaultMaxPeriod', 'below defaultMinPeriod'],
      ['pmin negative', minimal({ servers: [{ ...nosecServer(), defaultMinPeriod: -1 }] }), 'servers[0].defaultMinPeriod', 'must be in 0..'],
      ['storing not bool', minimal({ servers: [{ ...nosecServer(), notificationStoring: 1 }] }), 'servers[0].notificationStoring', 'true or false'],
      ['muteSend not bool', minimal({ servers: [{ ...nosecServer(), muteSend: 'no' }] }), 'servers[0].muteSend', 'true or false'],
      ['retry count negative', minimal({ servers: [{ ...nosecServer(), communicationRetryCount: -1 }] }), 'servers[0].communicationRetryCount', 'must be in 0..4294967295'],
      ['preferred transport', minimal({ servers: [{ ...nosecServer(), preferredTransport: 'UT' }] }), 'servers[0].preferredTransport', 'one binding letter'],
      ['notification mode', minimal({ servers: [{ ...nosecServer(), defaultNotificationMode: 'loud' }] }), 'servers[0].defaultNotificationMode', '"non", "con"'],
      ['server versions', minimal({ servers: [{ ...nosecServer(), supportedServerVersions: ['1.x'] }] }), 'servers[0].supportedServerVersions[0]', 'version like'],
      ['unknown server field', minimal({ servers: [{ ...nosecServer(), lifeTime: 5 }] }), 'servers[0].lifeTime', 'did you mean "lifetime"'],
      ['security mode', minimal({ servers: [{ shortServerId: 1, uri: 'coap://a', security: { mode: 'tls' } }] }), 'servers[0].security.mode', 'must be one of nosec, psk, rpk, x509'],
      ['security mode missing', minimal({ servers: [{ shortServerId: 1, uri: 'coap://a', security: {} }] }), 'servers[0].security.mode', 'required'],
      ['field of another mode', minimal({ servers: [{ shortServerId: 1, uri: 'coap://a', security: { mode: 'nosec', key: '00' } }] }), 'servers[0].security.key', 'not used with mode nosec'],
      ['psk without anything', minimal({ servers: [{ shortServerId: 1, uri: 'coaps://a', security: { mode: 'psk' } }] }), 'servers[0].security', 'generate: true or a static identity'],
      ['psk key missing', minimal({ servers: [{ shortServerId: 1, uri: 'coaps://a', security: { mode: 'psk', identity: 'x' } }] }), 'servers[0].security.key', 'required'],
      ['psk key not hex', minimal({ servers: [{ shortServerId: 1, uri: 'coaps://a', security: { mode: 'psk', identity: 'x', key: 'zz' } }] }), 'servers[0].security.key', 'bytes of hex'],
      ['psk key too long', minimal({ servers: [{ shortServerId: 1, uri: 'coaps://a', security: { mode: 'psk', identity: 'x', key: '00'.repeat(65) } }] }), 'servers[0].security.key', '1..64'],
      ['psk identity too long', minimal({ servers: [{ shortServerId: 1, uri: 'coaps://a', security: { mode: 'psk', identity: 'x'.repeat(129), key: '00' } }] }), 'servers[0].security.identity', 'at most 128 bytes'],
      ['psk both identities', minimal({ servers: [{ shortServerId: 1, uri: 'coaps://a', security: { mode: 'psk', identity: 'x', identityHex: '00', key: '00' } }] }), 'servers[0].security.identityHex', 'not both'],
      ['psk generate with key', minimal({ servers: [{ shortServerId: 1, uri: 'coaps://a', security: { mode: 'psk', generate: true, key: '00' } }] }), 'servers[0].security.key', 'not used with generate'],
      ['psk bad template', minimal({ servers: [{ shortServerId: 1, uri: 'coaps://a', security: { mode: 'psk', generate: true, identityTemplate: '{imei}' } }] }), 'servers[0].security.identityTemplate', 'unknown placeholder'],
      ['handOff static psk', minimal({ servers: [{ shortServerId: 1, handOff: true, security: { mode: 'psk', identity: 'x', key: '00' } }] }), 'servers[0].security.key', 'generated credentials'],
      ['handOff generate false', minimal({ servers: [{ shortServerId: 1, handOff: true, security: { mode: 'psk', generate: false } }] }), 'servers[0].security.generate', 'always get'],
      ['handOff x509', minimal({ servers: [{ shortServerId: 1, handOff: true, security: { mode: 'x509' } }] }), 'servers[0].security.mode', 'not available for hand-off'],
      ['handOff rpk server key', minimal({ servers: [{ shortServerId: 1, handOff: true, security: { mode: 'rpk', serverPublicKey: 'AAAA' } }] }), 'servers[0].security.serverPublicKey', "registration server's own key"],
      ['rpk server key missing', minimal({ servers: [{ shortServerId: 1, uri: 'coaps://a', security: { mode: 'rpk', generate: true } }] }), 'servers[0].security.serverPublicKey', 'required'],
      ['rpk key garbage', minimal({ servers: [{ shortServerId: 1, uri: 'coaps://a', security: { mode: 'rpk', generate: true, serverPublicKey: 'not base64!' } }] }), 'servers[0].security.serverPublicKey', 'PEM or base64'],
      ['rpk key not P-256', minimal({ servers: [{ shortServerId: 1, uri: 'coaps://a', security: { mode: 'rpk', generate: true, serverPublicKey: b64(generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey.export({ format: 'der', type: 'spki' })) } }] }), 'servers[0].security.serverPublicKey', 'P-256'],
      ['x509 cert missing', minimal({ servers: [{ shortServerId: 1, uri: 'coaps://a', security: { mode: 'x509', privateKey: CLIENT_KEY_PEM, serverCertificate: SERVER_CERT_PEM } }] }), 'servers[0].security.certificate', 'required'],
      ['x509 cert garbage', minimal({ servers: [{ shortServerId: 1, uri: 'coaps://a', security: { mode: 'x509', certificate: 'AAAA', privateKey: CLIENT_KEY_PEM, serverCertificate: SERVER_CERT_PEM } }] }), 'servers[0].security.certificate', 'not a valid X.509'],
      ['x509 wrong PEM label', minimal({ servers: [{ shortServerId: 1, uri: 'coaps://a', security: { mode: 'x509', certificate: CLIENT_KEY_PEM, privateKey: CLIENT_KEY_PEM, serverCertificate: SERVER_CERT_PEM } }] }), 'servers[0].security.certificate', 'PEM block "PRIVATE KEY"'],
      ['x509 generate', minimal({ servers: [{ shortServerId: 1, uri: 'coaps://a', security: { mode: 'x509', generate: true } }] }), 'servers[0].security.generate', 'not used with mode x509'],
      ['ciphersuites empty', minimal({ servers: [{ ...nosecServer(), security: { mode: 'nosec', ciphersuites: [] } }] }), 'servers[0].security.ciphersuites', 'must not be empty'],
      ['ciphersuite range', minimal({ servers: [{ ...nosecServer(), security: { mode: 'nosec', ciphersuites: [49320, 70000] } }] }), 'servers[0].security.ciphersuites[1]', 'must be in 0..65535'],
      ['matchingType on psk', minimal({ servers: [{ shortServerId: 1, uri: 'coaps://a', security: { mode: 'psk', generate: true, matchingType: 1 } }] }), 'servers[0].security.matchingType', 'not used with mode psk'],
      ['matchingType range', minimal({ servers: [{ shortServerId: 1, uri: 'coaps://a', security: { mode: 'rpk', generate: true, serverPublicKey: b64(generateRpkKeyPair().spki), matchingType: 4 } }] }), 'servers[0].security.matchingType', 'must be in 0..3'],
      ['certificateUsage on rpk', minimal({ servers: [{ shortServerId: 1, uri: 'coaps://a', security: { mode: 'rpk', generate: true, serverPublicKey: b64(generateRpkKeyPair().spki), certificateUsage: 1 } }] }), 'servers[0].security.certificateUsage', 'not used with mode rpk'],
      ['oscore with 1.0', minimal({ servers: [{ ...nosecServer(), oscore: { masterSecret: '0011', senderId: '01', recipientId: '02' } }] }), 'servers[0].oscore', 'needs LwM2M 1.1'],
      ['oscore secret missing', minimal({ lwm2mVersions: ['1.1'], servers: [{ ...nosecServer(), oscore: { senderId: '01', recipientId: '02' } }] }), 'servers[0].oscore.masterSecret', 'required'],
      ['oscore same ids', minimal({ lwm2mVersions: ['1.1'], servers: [{ ...nosecServer(), oscore: { masterSecret: '0011', senderId: '01', recipientId: '01' } }] }), 'servers[0].oscore.recipientId', 'must differ'],
      ['oscore id not hex', minimal({ lwm2mVersions: ['1.1'], servers: [{ ...nosecServer(), oscore: { masterSecret: '0011', senderId: 'x', recipientId: '01' } }] }), 'servers[0].oscore.senderId', 'as hex'],
      ['oscore unknown field', minimal({ lwm2mVersions: ['1.1'], servers: [{ ...nosecServer(), oscore: { masterSecret: '0011', senderId: '00', recipientId: '01', salt: '00' } }] }), 'servers[0].oscore.salt', 'unknown field'],
      ['acl unknown ssid', minimal({ acl: [{ objectId: 3, instanceId: 0, rights: { '7': 'R' } }] }), 'acl[0].rights.7', 'no server with shortServerId 7'],
      ['acl bad letters', minimal({ acl: [{ objectId: 3, instanceId: 0, rights: { '1': 'RX' } }] }), 'acl[0].rights.1', 'RWEDC'],
      ['acl repeated letter', minimal({ acl: [{ objectId: 3, instanceId: 0, rights: { '1': 'RR' } }] }), 'acl[0].rights.1', 'each once'],
      ['acl mask range', minimal({ acl: [{ objectId: 3, instanceId: 0, rights: { '1': 32 } }] }), 'acl[0].rights.1', 'bitmask 0..31'],
      ['acl create on instance', minimal({ acl: [{ objectId: 3, instanceId: 0, rights: { '1': 'RC' } }] }), 'acl[0].rights.1', 'object-level'],
      ['acl bad key', minimal({ acl: [{ objectId: 3, instanceId: 0, rights: { one: 'R' } }] }), 'acl[0].rights.one', 'Short Server ID'],
      ['acl objectId 0', minimal({ acl: [{ objectId: 0, instanceId: 0 }] }), 'acl[0].objectId', 'must be in 1..65534'],
      ['acl instance missing', minimal({ acl: [{ objectId: 3 }] }), 'acl[0].instanceId', 'required'],
      ['acl unknown owner', minimal({ acl: [{ objectId: 3, instanceId: 0, owner: 9 }] }), 'acl[0].owner', 'no server with shortServerId 9'],
      ['acl duplicate target', minimal({ acl: [{ objectId: 3, instanceId: 0 }, { objectId: 3, instanceId: 0 }] }), 'acl[1]', 'already covers'],
      ['bootstrap account uri', minimal({ bootstrapAccount: { security: { mode: 'nosec' } } }), 'bootstrapAccount.uri', 'required'],
      ['bootstrap account scheme', minimal({ bootstrapAccount: { uri: 'coap://bs', security: { mode: 'psk', identity: 'x', key: '00' } } }), 'bootstrapAccount.uri', 'coaps://'],
      ['bootstrap account {ssid}', minimal({ bootstrapAccount: { uri: 'coaps://bs', security: { mode: 'psk', generate: true, identityTemplate: '{ssid}' } } }), 'bootstrapAccount.security.identityTemplate', 'no Short Server ID'],
      ['bootstrap account hold off', minimal({ bootstrapAccount: { uri: 'coap://bs', security: { mode: 'nosec' }, clientHoldOffTime: -5 } }), 'bootstrapAccount.clientHoldOffTime', 'must be in 0..'],
      ['masked secret re-imported', minimal({ servers: [{ shortServerId: 1, uri: 'coaps://a', security: { mode: 'psk', identity: 'x', key: '[secret]' } }] }), 'servers[0].security.key', 'masked export'],
    ];
    for (const [what, doc, path, fragment] of cases) {
      it(`${what} → ${path}`, () => expectIssue(doc, path, fragment));
    }

    it('reports every problem of a document in one error, each with its path', () => {
      const doc = {
        name: 'Bad Name',
        delete: ['/0/2'],
        contentFormat: 'xml',
        servers: [
          { shortServerId: 1, uri: 'coap://a', security: { mode: 'tls' } },
          { shortServerId: 1, uri: 'coap://b' },
          { shortServerId: 3, uri: 'ftp://c', lifetime: -1, security: { mode: 'nosec' } },
        ],
        acl: [{ objectId: 3, instanceId: 0, rights: { '9': 'R' } }],
      };
      const issues = issuesOf(doc);
      const paths = issues.map((i) => i.path);
      for (const p of ['name', 'delete[0]', 'contentFormat', 'servers[0].security.mode', 'servers[1].security', 'servers[2].uri', 'servers[2].lifetime', 'acl[0].rights.9']) {
        expect(paths, p).to.include(p);
      }
      try {
        parseProfile(doc);
      } catch (e) {
        const msg = (e as Error).message;
        expect(msg).to.match(/^invalid profile \(\d+ problems\):\n/);
        expect(msg).to.include('  servers[0].security.mode: must be one of nosec, psk, rpk, x509');
      }
    });

    it('never echoes secret values in error messages', () => {
      const secretText = 'c0ffee-not-hex-secret';
      const issues = issuesOf(minimal({ servers: [{ shortServerId: 1, uri: 'coaps://a', security: { mode: 'psk', identity: 'x', key: secretText } }] }));
      expect(JSON.stringify(issues)).to.not.include('c0ffee');
      const issues2 = issuesOf(minimal({ lwm2mVersions: ['1.1'], servers: [{ ...nosecServer(), oscore: { masterSecret: 'deadbeefzz', senderId: '00', recipientId: '01' } }] }));
      expect(JSON.stringify(issues2)).to.not.include('deadbeef');
    });

    it('invalid JSON text is a ProfileError too', () => {
      expect(() => parseProfileText('{ "name": ')).to.throw(ProfileError, /profile: not valid JSON/);
    });
  });

  describe('export', () => {
    const full = (): Profile => {
      const server = generateRpkKeyPair();
      const client = generateRpkKeyPair();
      return parseProfile({
        name: 'full',
        description: 'every feature',
        match: ['urn:imei:35*', 'dev-??'],
        enroll: { allowSecurity: ['psk', 'x509'] },
        contentFormat: 'senml-cbor',
        lwm2mVersions: ['1.1', '1.2'],
        bootstrapRead: true,
        bootstrapAccount: { uri: 'coaps://bs.example.com:5684', security: { mode: 'psk', identity: 'bs', key: '000102030405060708090a0b0c0d0e0f' }, clientHoldOffTime: 10, accountTimeout: 0 },
        servers: [
          { shortServerId: 1, handOff: true, lifetime: 600, binding: 'UQ', security: { mode: 'psk', identityTemplate: '{endpoint}:{ssid}' }, muteSend: false, communicationRetryCount: 3, defaultNotificationMode: 'con' },
          {
            shortServerId: 2,
            uri: 'coaps://dm.example.com',
            security: { mode: 'rpk', publicKey: b64(client.spki), privateKey: b64(client.pkcs8.reveal()), serverPublicKey: b64(server.spki), matchingType: 1, ciphersuites: [49326], sni: 'dm.example.com' },
            supportedServerVersions: ['1.1', '1.2'],
          },
          { shortServerId: 3, uri: 'coaps://x.example.com', security: { mode: 'x509', certificate: CLIENT_CERT_PEM, privateKey: CLIENT_KEY_PEM, serverCertificate: SERVER_CERT_PEM } },
          { shortServerId: 4, uri: 'coap://o.example.com', security: { mode: 'nosec' }, oscore: { masterSecret: { text: 'master-secret-16' }, senderId: '00', recipientId: '01', aeadAlgorithm: 10, hmacAlgorithm: -10, masterSalt: '9e7ca92223786340', idContext: '37cbf3210017a2d3' } },
        ],
        acl: [{ objectId: 3, instanceId: 0, rights: { '1': 'RWE', default: 'R' }, owner: 1 }],
      });
    };

    it('masks secrets by default', () => {
      const text = JSON.stringify(profileToJson(full()));
      expect(text).to.include('"key":"[secret]"');
      expect(text).to.include('"privateKey":"[secret]"');
      expect(text).to.include('"masterSecret":"[secret]"');
      expect(text).to.not.include('000102030405060708090a0b0c0d0e0f');
    });

    it('a revealed export parses back to the same profile', () => {
      const p = full();
      const json = profileToJson(p, { revealSecrets: true });
      const again = parseProfile(JSON.parse(JSON.stringify(json)));
      expect(JSON.stringify(profileToJson(again, { revealSecrets: true }))).to.equal(JSON.stringify(json));
      expect(json.contentFormat).to.equal('senml-cbor');
    });

    it('a parsed profile prints no secret through inspect or JSON', () => {
      const p = full();
      const shown = inspect(p, { depth: 20 }) + JSON.stringify(p, (_k, v: unknown) => (v instanceof Map ? [...v] : v));
      expect(shown).to.not.include('0, 1, 2, 3, 4, 5');
      expect(shown).to.include('[secret]');
    });
  });

  describe('helpers', () => {
    it('globMatch: *, ?, escapes, anchoring', () => {
      expect(globMatch('urn:imei:35*', 'urn:imei:351234')).to.equal(true);
      expect(globMatch('urn:imei:35*', 'urn:imei:36')).to.equal(false);
      expect(globMatch('urn:imei:35*', 'xurn:imei:35')).to.equal(false);
      expect(globMatch('dev-??', 'dev-01')).to.equal(true);
      expect(globMatch('dev-??', 'dev-1')).to.equal(false);
      expect(globMatch('*-*-x', 'a-b-c-x')).to.equal(true);
      expect(globMatch('a\\*b', 'a*b')).to.equal(true);
      expect(globMatch('a\\*b', 'axb')).to.equal(false);
      expect(globMatch('*', '')).to.equal(true);
      expect(globMatch('', '')).to.equal(true);
      expect(globMatch('a', '')).to.equal(false);
    });

    it('globMatch stays fast on adversarial patterns', () => {
      const start = process.hrtime.bigint();
      expect(globMatch('*a*a*a*a*a*a*a*a*a*a*b', 'a'.repeat(250))).to.equal(false);
      expect(Number(process.hrtime.bigint() - start) / 1e6).to.be.below(500);
    });

    it('selectProfileByMatch picks the most specific pattern, ties by name', () => {
      const mk = (name: string, match: string[]): Profile => parseProfile({ ...minimal({ name }), match });
      const all = [mk('b-any', ['*']), mk('meters', ['urn:imei:35*']), mk('a-imei', ['urn:imei:*']), mk('z-exact', ['urn:imei:351'])];
      expect(selectProfileByMatch(all, 'urn:imei:351')?.profile.name).to.equal('z-exact');
      expect(selectProfileByMatch(all, 'urn:imei:352')?.profile.name).to.equal('meters');
      expect(selectProfileByMatch(all, 'urn:imei:99')?.profile.name).to.equal('a-imei');
      expect(selectProfileByMatch(all, 'other')?.profile.name).to.equal('b-any');
      expect(selectProfileByMatch(all.slice(1), 'other')).to.equal(undefined);
      const tie = [mk('zz', ['x*']), mk('aa', ['*x'])];
      expect(selectProfileByMatch(tie, 'xx')?.profile.name).to.equal('aa');
      expect(patternSpecificity('a\\*?*')).to.equal(2);
    });

    it('enrollmentAllowed and acceptsVersion', () => {
      const p = parseProfile(minimal({ match: ['x*'], enroll: { allowSecurity: ['x509', 'psk'] }, lwm2mVersions: ['1.1', '1.2'] }));
      expect(p.enroll.allowSecurity).to.deep.equal(['psk', 'x509']);
      expect(enrollmentAllowed(p, 'psk')).to.equal(true);
      expect(enrollmentAllowed(p, 'nosec')).to.equal(false);
      expect(acceptsVersion(p, '1.1.1')).to.equal(true);
      expect(acceptsVersion(p, '1.0')).to.equal(false);
      expect(normaliseLwm2mVersion('"1.2"')).to.equal('1.2');
      expect(normaliseLwm2mVersion('2.0')).to.equal(undefined);
    });

    it('bindingFor adapts letters per version', () => {
      expect(bindingFor('UQ', '1.0')).to.equal('UQ');
      expect(bindingFor('UQ', '1.1')).to.equal('U');
      expect(bindingFor('QSU', '1.0')).to.equal('UQS');
      expect(bindingFor('SQ', '1.0')).to.equal('SQ');
      expect(bindingFor('UT', '1.0')).to.equal('U');
      expect(bindingFor('TU', '1.1')).to.equal('UT');
      expect(bindingFor('UM', '1.1')).to.equal('U');
      expect(bindingFor('UM', '1.2')).to.equal('UM');
      expect(bindingFor('T', '1.0')).to.equal(undefined);
    });

    it('rights letters ↔ bitmask', () => {
      expect(parseRights('RWEDC')).to.equal(31);
      expect(parseRights('er')).to.equal(5);
      expect(parseRights('')).to.equal(0);
      expect(parseRights('RR')).to.equal(undefined);
      expect(formatRights(7)).to.equal('RWE');
      expect(formatRights(16)).to.equal('C');
    });

    it('serverUriProblem', () => {
      expect(serverUriProblem('coap://[::1]:5683', 'nosec')).to.equal(undefined);
      expect(serverUriProblem('coaps://lwm2m.example.com/rd', 'psk')).to.equal(undefined);
      expect(serverUriProblem('coaps+tcp://h:5684', 'x509')).to.equal(undefined);
      expect(serverUriProblem('coap://h?x=1', 'nosec')).to.include('coap://');
      expect(serverUriProblem('coap://user@h', 'nosec')).to.include('coap://');
      expect(serverUriProblem('coap://h:0', 'nosec')).to.include('port 0');
    });
  });

  describe('warnings', () => {
    it('names likely mistakes', () => {
      const p = parseProfile({
        name: 'w',
        match: ['*'],
        enroll: { allowSecurity: ['nosec'] },
        delete: ['/5'],
        bootstrapAccount: { uri: 'coap://bs', security: { mode: 'nosec' } },
        discoverBootstrapAccount: false,
        bootstrapRead: true,
        servers: [
          { shortServerId: 1, uri: 'coaps://a', binding: 'UQ', preferredTransport: 'T', muteSend: true, security: { mode: 'psk', generate: true } },
          { shortServerId: 2, uri: 'coap://b', security: { mode: 'nosec' } },
        ],
      });
      const w = profileWarnings(p).join('\n');
      for (const fragment of [
        'match: a pattern matches every endpoint',
        'enroll over plain CoAP',
        'neither "/" nor "/0"',
        'neither "/" nor "/1"',
        'bootstrapAccount without discoverBootstrapAccount',
        'several servers and no acl',
        'servers[0]: preferredTransport, muteSend: written only to clients known to be LwM2M 1.1+',
        'servers[0].binding: Q is dropped',
        'servers[0].preferredTransport: T is not in the binding UQ',
        'bootstrapRead: sent only to clients known',
      ]) {
        expect(w).to.include(fragment);
      }
    });

    it('OSCORE values that are not UTF-8 cannot reach 1.1 clients', () => {
      const p = parseProfile(minimal({ lwm2mVersions: ['1.1', '1.2'], servers: [{ ...nosecServer(), oscore: { masterSecret: 'ff00', senderId: '01', recipientId: '02' } }] }));
      expect(profileWarnings(p).join('\n')).to.include('servers[0].oscore.masterSecret: not valid UTF-8');
    });
  });
});
