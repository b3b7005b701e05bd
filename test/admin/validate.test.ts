/**
 * The DmRequest shape check, the endpoint-in-URL encoding, the admin config section and the
 * client's address helpers.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { adminUrlFor, normalizeAdminUrl } from '../../src/admin/client.js';
import { endpointFromUrl, endpointToUrl } from '../../src/admin/json.js';
import { DM_OPERATIONS, parseDmRequest, RequestShapeError } from '../../src/admin/validate.js';
import { ConfigError, loadConfig, validateConfig } from '../../src/config/config.js';
import type { DmRequest } from '../../src/registration/management/types.js';

const pathArb = fc.array(fc.integer({ min: 0, max: 65534 }), { minLength: 0, maxLength: 4 }).map((ids) => (ids.length === 0 ? '/' : `/${ids.join('/')}`));
const cfArb = fc.integer({ min: 0, max: 65535 });
const valueJsonArb = fc.oneof(
  fc.record({ type: fc.constantFrom('string' as const, 'corelnk' as const, 'objlnk' as const), value: fc.string() }),
  fc.record({ type: fc.constantFrom('integer' as const, 'unsigned' as const, 'time' as const), value: fc.oneof(fc.integer(), fc.bigInt().map(String)) }),
  fc.record({ type: fc.constant('float' as const), value: fc.double({ noNaN: true, noDefaultInfinity: true }) }),
  fc.record({ type: fc.constant('boolean' as const), value: fc.boolean() }),
  fc.record({ type: fc.constant('opaque' as const), hex: fc.uint8Array({ maxLength: 16 }).map((b) => Buffer.from(b).toString('hex')) }),
);
const writeValueArb = fc.oneof(fc.string(), fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.boolean(), valueJsonArb);
const valuesArb = fc.dictionary(pathArb, writeValueArb, { maxKeys: 4 });
const attrsArb = fc.dictionary(fc.constantFrom('pmin', 'pmax', 'gt', 'lt', 'st', 'epmin'), fc.oneof(fc.string(), fc.integer(), fc.constant(null)), { maxKeys: 3 });

const requestArb: fc.Arbitrary<DmRequest> = fc.oneof(
  fc.record({ op: fc.constant('read' as const), path: pathArb, accept: cfArb }, { requiredKeys: ['op', 'path'] }),
  fc.record({ op: fc.constant('discover' as const), path: pathArb, depth: fc.integer({ min: 0, max: 3 }) }, { requiredKeys: ['op', 'path'] }),
  fc.record({ op: fc.constant('write' as const), path: pathArb, value: writeValueArb, partial: fc.boolean(), format: cfArb }, { requiredKeys: ['op', 'path', 'value'] }),
  fc.record({ op: fc.constant('write' as const), path: pathArb, values: valuesArb, partial: fc.boolean(), format: cfArb }, { requiredKeys: ['op', 'path', 'values'] }),
  fc.record({ op: fc.constant('execute' as const), path: pathArb, args: fc.string() }, { requiredKeys: ['op', 'path'] }),
  fc.record({ op: fc.constant('create' as const), path: pathArb, values: valuesArb, format: cfArb }, { requiredKeys: ['op', 'path'] }),
  fc.record({ op: fc.constant('delete' as const), path: pathArb }),
  fc.record({ op: fc.constant('write-attributes' as const), path: pathArb, attributes: attrsArb }),
  fc.record(
    { op: fc.constant('observe' as const), path: pathArb, accept: cfArb, attributes: fc.dictionary(fc.constantFrom('pmin', 'pmax'), fc.oneof(fc.string(), fc.integer()), { maxKeys: 2 }) },
    { requiredKeys: ['op', 'path'] },
  ),
  fc.record({ op: fc.constant('cancel-observation' as const), path: pathArb }),
  fc.record({ op: fc.constant('trigger-update' as const) }),
  fc.record({ op: fc.constant('trigger-bootstrap' as const) }),
);

describe('admin/validate', () => {
  it('accepts every well-formed request after a JSON round trip, unchanged', () => {
    fc.assert(
      fc.property(requestArb, (req) => {
        const wire = JSON.parse(JSON.stringify(req)) as unknown;
        expect(parseDmRequest(wire)).to.deep.equal(wire);
      }),
      { numRuns: 500 },
    );
  });

  it('throws only RequestShapeError for arbitrary JSON', () => {
    fc.assert(
      fc.property(fc.oneof(fc.jsonValue(), fc.record({ op: fc.constantFrom(...DM_OPERATIONS), path: fc.jsonValue(), value: fc.jsonValue() }, { requiredKeys: ['op'] })), (v) => {
        try {
          parseDmRequest(v);
        } catch (e) {
          expect(e).to.be.instanceOf(RequestShapeError);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('names the problem', () => {
    const msg = (body: unknown): string => {
      try {
        parseDmRequest(body);
      } catch (e) {
        return (e as Error).message;
      }
      return '';
    };
    expect(msg({ op: 'frobnicate' })).to.match(/"op" must be one of read, discover/);
    expect(msg({ op: 'read', path: '/3/0', acept: 1 })).to.equal('unknown field "acept" for op read');
    expect(msg({ op: 'delete' })).to.match(/"path" .* is required for op delete/);
    expect(msg({ op: 'write', path: '/1/0/1', value: { type: 'integer', value: '1.5' } })).to.match(/value\.value must be an integer/);
  });
});

describe('admin/json: endpoints in URLs', () => {
  it('round-trips any endpoint bytes through a URL path segment', () => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ minLength: 1, maxLength: 40 }), fc.string({ minLength: 1, maxLength: 40 }).map((s) => new Uint8Array(Buffer.from(s, 'utf8')))), (ep) => {
        const seg = endpointToUrl(ep);
        expect(seg).not.to.include('/');
        expect(seg).not.to.include('?');
        expect([...endpointFromUrl(seg)!]).to.deep.equal([...ep]);
      }),
      { numRuns: 500 },
    );
  });

  it('writes printable names as text, binary ones and names starting with hex: as hex:', () => {
    expect(endpointToUrl(Buffer.from('urn:imei:35 1/2'))).to.equal('urn%3Aimei%3A35%201%2F2');
    expect(endpointToUrl(new Uint8Array([0, 1, 0xff]))).to.equal('hex:0001ff');
    expect(endpointToUrl(Buffer.from('hex:ab'))).to.equal(`hex:${Buffer.from('hex:ab').toString('hex')}`);
    expect(endpointFromUrl('')).to.equal(undefined);
    expect(endpointFromUrl('hex:abc')).to.equal(undefined);
  });
});

describe('admin config', () => {
  const base = {
    dataDir: './data',
    bootstrap: { coap: null, coaps: null },
    registration: { coap: null, coaps: null, publicUri: { coap: 'coap://h', coaps: 'coaps://h' } },
  };

  it('defaults to 127.0.0.1:5780', () => {
    expect(loadConfig({ env: {} }).admin).to.deep.equal({ listen: { host: '127.0.0.1', port: 5780 } });
  });

  it('null (or no section) disables it; a bad address or unknown field is a ConfigError', () => {
    expect(validateConfig({ ...base, admin: { listen: null } }, '/').admin.listen).to.equal(null);
    expect(validateConfig({ ...base, admin: null }, '/').admin.listen).to.equal(null);
    expect(validateConfig(base, '/').admin.listen).to.equal(null);
    expect(validateConfig({ ...base, admin: { listen: '[::1]:6000' } }, '/').admin.listen).to.deep.equal({ host: '::1', port: 6000 });
    expect(() => validateConfig({ ...base, admin: { listen: 'nowhere' } }, '/')).to.throw(ConfigError, /admin\.listen/);
    expect(() => validateConfig({ ...base, admin: { lisen: '127.0.0.1:1' } }, '/')).to.throw(ConfigError, /admin\.lisen/);
    expect(() => validateConfig({ ...base, admin: 5 }, '/')).to.throw(ConfigError, /admin must be an object/);
  });

  it('the CLI turns a wildcard listen host into loopback, and checks --admin', () => {
    expect(adminUrlFor({ host: '0.0.0.0', port: 5780 })).to.equal('http://127.0.0.1:5780');
    expect(adminUrlFor({ host: '::', port: 5780 })).to.equal('http://[::1]:5780');
    expect(adminUrlFor({ host: '::1', port: 1 })).to.equal('http://[::1]:1');
    expect(adminUrlFor({ host: 'localhost', port: 2 })).to.equal('http://localhost:2');
    expect(normalizeAdminUrl('http://127.0.0.1:5780/')).to.equal('http://127.0.0.1:5780');
    expect(normalizeAdminUrl('https://proxy.example/lwbs/')).to.equal('https://proxy.example/lwbs');
    for (const bad of ['127.0.0.1:5780', 'ftp://x', 'http://x/?a=1', 'http://u:p@x', 'not a url']) expect(normalizeAdminUrl(bad), bad).to.equal(undefined);
  });
});
