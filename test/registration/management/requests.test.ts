/**
 * Device-management request building (src/registration/management/requests.ts): methods, paths,
 * queries and payload bytes per operation, the format ladder per client version, and refusals.
 * Expected bytes are written out by hand from formats.md §3 (TLV) and §4 (text/opaque).
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { loadObjectRegistry } from '../../../src/lwm2m/ddf.js';
import { ContentFormat } from '../../../src/lwm2m/formats/index.js';
import type { ObjectRegistry } from '../../../src/lwm2m/model.js';
import { decodeValues, prepareRequest, triggerRequest, type ClientInfo } from '../../../src/registration/management/requests.js';
import { DmError, type DmRequest } from '../../../src/registration/management/types.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

describe('device management: request building', () => {
  let objects: ObjectRegistry;
  let v10: ClientInfo;
  let v11: ClientInfo;
  let v12: ClientInfo;

  before(async () => {
    objects = await loadObjectRegistry();
    v10 = { lwm2mVersion: '1.0', contentFormats: null, models: objects };
    v11 = { lwm2mVersion: '1.1', contentFormats: null, models: objects };
    v12 = { lwm2mVersion: '1.2', contentFormats: [11544, 112], models: objects };
  });

  function refused(req: DmRequest, client: ClientInfo, pattern: RegExp): void {
    let error: unknown;
    try {
      prepareRequest(req, client);
    } catch (e) {
      error = e;
    }
    expect(error, JSON.stringify(req)).to.be.instanceOf(DmError);
    expect((error as DmError).code).to.equal('invalid');
    expect((error as DmError).message).to.match(pattern);
  }

  it('read is a GET at the path, with Accept only when asked', () => {
    const p = prepareRequest({ op: 'read', path: '/3/0/9' }, v11);
    expect(p).to.deep.include({ method: 'GET', path: [3, 0, 9], query: [], bodies: [] });
    expect(p.accept).to.equal(undefined);
    expect(prepareRequest({ op: 'read', path: '/3/0', accept: 112 }, v11).accept).to.equal(112);
    refused({ op: 'read', path: '/3/0', accept: 9999 }, v11, /accept 9999/);
  });

  it('discover asks for link-format, with depth only for 1.2 clients', () => {
    const p = prepareRequest({ op: 'discover', path: '/3' }, v11);
    expect(p).to.deep.include({ method: 'GET', accept: 40, query: [] });
    expect(prepareRequest({ op: 'discover', path: '/3', depth: 1 }, v12).query).to.deep.equal(['depth=1']);
    refused({ op: 'discover', path: '/3', depth: 1 }, v11, /depth needs LwM2M 1\.2/);
    refused({ op: 'discover', path: '/3/0/7/0' }, v11, /discover targets/);
  });

  it('writes one Integer as text/plain "300" to a 1.1 client, then the rich formats', () => {
    const p = prepareRequest({ op: 'write', path: '/1/0/1', value: 300 }, v11);
    expect(p.method).to.equal('PUT');
    expect(p.bodies.map((b) => b.contentFormat)).to.deep.equal([ContentFormat.TEXT, 112, 110, 11542]);
    expect(Buffer.from(p.bodies[0]!.payload).toString()).to.equal('300');
    // The text value "300" converts with the model's type (Integer) too.
    expect(hex(prepareRequest({ op: 'write', path: '/1/0/1', value: '300' }, v11).bodies[0]!.payload)).to.equal(hex(Buffer.from('300')));
  });

  it('writes one Integer to a 1.0 client as TLV: C2 01 01 2C (resource 1, 2-byte value 300)', () => {
    const p = prepareRequest({ op: 'write', path: '/1/0/1', value: 300 }, v10);
    expect(p.bodies[0]!.contentFormat).to.equal(ContentFormat.TLV);
    expect(hex(p.bodies[0]!.payload)).to.equal('c201012c');
  });

  it('writes an Opaque value as application/octet-stream to 1.1+ clients', () => {
    const p = prepareRequest({ op: 'write', path: '/5/0/0', value: '0xCAFE' }, v11);
    expect(p.bodies[0]!.contentFormat).to.equal(ContentFormat.OPAQUE);
    expect(hex(p.bodies[0]!.payload)).to.equal('cafe');
  });

  it('puts the formats a client announced (ct=) first', () => {
    const p = prepareRequest({ op: 'write', path: '/1/0', values: { '/1/0/1': 60, '/1/0/7': 'U' }, partial: true }, v12);
    expect(p.method).to.equal('POST');
    expect(p.bodies.map((b) => b.contentFormat)).to.deep.equal([11544, 112, 110, 11542]);
  });

  it('a forced format is the only one tried', () => {
    const p = prepareRequest({ op: 'write', path: '/1/0/1', value: 60, format: 11542 }, v12);
    expect(p.bodies.map((b) => b.contentFormat)).to.deep.equal([11542]);
    refused({ op: 'write', path: '/1/0/1', value: 60, format: 7 }, v12, /format 7/);
  });

  it('refuses writes that the model or the spec rules out, naming the problem', () => {
    refused({ op: 'write', path: '/3/0/0', value: 'x' }, v11, /not writable/);
    refused({ op: 'write', path: '/1/0/8', value: 'x' }, v11, /executable/);
    refused({ op: 'write', path: '/3/0/7', value: 1 }, v11, /multiple-instance resource/);
    refused({ op: 'write', path: '/1/0/1', value: 'abc' }, v11, /not an integer/);
    refused({ op: 'write', path: '/1/0/6', value: 'maybe' }, v11, /not a boolean/);
    refused({ op: 'write', path: '/1', values: { '/1/0/1': 1 } }, v11, /write targets/);
    refused({ op: 'write', path: '/1/0', values: { '/1/1/1': 1 } }, v11, /not at or below \/1\/0/);
    refused({ op: 'write', path: '/1/0/1', value: 1, values: { '/1/0/1': 1 } }, v11, /exactly one of value/);
    refused({ op: 'write', path: '/1/0/1', value: 1, partial: true }, v11, /partial update/);
    refused({ op: 'write', path: '/0/1/3', value: '0x00' }, v11, /Security object.*4\.01/);
    refused({ op: 'read', path: '/21/0' }, v11, /OSCORE object/);
    refused({ op: 'read', path: '/3/x' }, v11, /not an LwM2M path/);
  });

  it('executes with no payload, or the arguments as text/plain; only executable resources', () => {
    const p = prepareRequest({ op: 'execute', path: '/3/0/4' }, v11);
    expect(p).to.deep.include({ method: 'POST', bodies: [] });
    const a = prepareRequest({ op: 'execute', path: '/3/0/4', args: "0='10.3',1" }, v11);
    expect(a.bodies[0]!.contentFormat).to.equal(0);
    expect(Buffer.from(a.bodies[0]!.payload).toString()).to.equal("0='10.3',1");
    refused({ op: 'execute', path: '/3/0/0' }, v11, /not executable/);
    refused({ op: 'execute', path: '/3/0' }, v11, /execute targets a resource/);
    refused({ op: 'execute', path: '/3/0/4', args: 'é' }, v11, /printable ASCII/);
  });

  it('creates one instance at an object: TLV 07 01 E4 16 44 41 AC 00 00 for /3303/1/5700 = 21.5 (1.0)', () => {
    const p = prepareRequest({ op: 'create', path: '/3303', values: { '/3303/1/5700': { type: 'float', value: 21.5 } } }, v10);
    expect(p.method).to.equal('POST');
    expect(p.bodies[0]!.contentFormat).to.equal(ContentFormat.TLV);
    // Object Instance 1 holding 7 bytes: resource 5700 (16-bit ID) = float32 21.5.
    expect(hex(p.bodies[0]!.payload)).to.equal('0701e4164441ac0000');
    refused({ op: 'create', path: '/3303', values: { '/3303/1/5700': 1, '/3303/2/5700': 2 } }, v10, /one instance/);
    // /o/i picks the instance: the same bytes; the request still goes to /o.
    const picked = prepareRequest({ op: 'create', path: '/3303/1', values: { '/3303/1/5700': { type: 'float', value: 21.5 } } }, v10);
    expect(picked.path).to.deep.equal([3303]);
    expect(hex(picked.bodies[0]!.payload)).to.equal('0701e4164441ac0000');
    // No values: /o lets the client pick the ID (no payload); /o/i sends the empty instance (07 01 → 00 01).
    expect(prepareRequest({ op: 'create', path: '/3303' }, v10).bodies).to.deep.equal([]);
    expect(hex(prepareRequest({ op: 'create', path: '/3303/2' }, v10).bodies[0]!.payload)).to.equal('0002');
    refused({ op: 'create', path: '/3303/1/5700', values: {} }, v10, /create targets an object/);
    refused({ op: 'create', path: '/3303/1', values: { '/3303/2/5700': 1 } }, v10, /not at or below/);
  });

  it('deletes instances (and resource instances from 1.1), never /3/0', () => {
    expect(prepareRequest({ op: 'delete', path: '/1/1' }, v10).method).to.equal('DELETE');
    expect(prepareRequest({ op: 'delete', path: '/3/0/7/1' }, v11).path).to.deep.equal([3, 0, 7, 1]);
    refused({ op: 'delete', path: '/3/0/7/1' }, v10, /delete targets an instance, not/);
    refused({ op: 'delete', path: '/3/0' }, v11, /can never be deleted/);
  });

  it('write-attributes is a PUT with only Uri-Query; a null unsets', () => {
    const p = prepareRequest({ op: 'write-attributes', path: '/3/0/9', attributes: { pmin: 10, gt: '45.5', st: null } }, v11);
    expect(p).to.deep.include({ method: 'PUT', bodies: [], query: ['pmin=10', 'gt=45.5', 'st'] });
    refused({ op: 'write-attributes', path: '/3/0/9', attributes: { lt: 50, gt: 40 } }, v11, /lt < gt/);
    refused({ op: 'write-attributes', path: '/3/0/9', attributes: { lt: 10, gt: 20, st: 5 } }, v11, /lt \+ 2\*st < gt/);
    refused({ op: 'write-attributes', path: '/3/0/9', attributes: { edge: 1 } }, v11, /needs LwM2M 1\.2/);
    refused({ op: 'write-attributes', path: '/3/0', attributes: { gt: 1 } }, v11, /resources only/);
    refused({ op: 'write-attributes', path: '/3/0/9', attributes: { pmin: -1 } }, v11, /non-negative integer/);
    refused({ op: 'write-attributes', path: '/3/0/9', attributes: { foo: 1 } }, v11, /unknown attribute "foo"/);
    refused({ op: 'write-attributes', path: '/3/0/9', attributes: {} }, v11, /at least one/);
  });

  it('observe is a GET with Observe 0; attributes in it only for 1.2 clients; cancel is Observe 1', () => {
    const o = prepareRequest({ op: 'observe', path: '/3/0/9' }, v11);
    expect(o).to.deep.include({ method: 'GET', observe: 0, query: [] });
    expect(prepareRequest({ op: 'observe', path: '/3/0/9', attributes: { pmax: 60 } }, v12).query).to.deep.equal(['pmax=60']);
    refused({ op: 'observe', path: '/3/0/9', attributes: { pmax: 60 } }, v11, /use write-attributes/);
    expect(prepareRequest({ op: 'cancel-observation', path: '/3/0/9' }, v11)).to.deep.include({ method: 'GET', observe: 1 });
  });

  it('triggers execute /1/x/8 and /1/x/9', () => {
    expect(triggerRequest('trigger-update', 2)).to.deep.include({ method: 'POST', path: [1, 2, 8], bodies: [] });
    expect(triggerRequest('trigger-bootstrap', 0).path).to.deep.equal([1, 0, 9]);
  });

  it('decodes answers into typed values at absolute paths', () => {
    // TLV of /3/0: resource 0 "Acme" (C4 00 41 63 6D 65), resource 9 = 95 (C1 09 5F).
    const tlv = Buffer.from('c40041636d65c1095f', 'hex');
    expect(decodeValues([3, 0], 11542, tlv, objects)).to.deep.equal([
      { path: '/3/0/0', type: 'string', value: 'Acme' },
      { path: '/3/0/9', type: 'integer', value: 95 },
    ]);
    // No Content-Format on a resource: text/plain.
    expect(decodeValues([3, 0, 9], undefined, Buffer.from('42'), objects)).to.deep.equal([{ path: '/3/0/9', type: 'integer', value: 42 }]);
    expect(decodeValues([3, 0], 11542, Buffer.alloc(0), objects)).to.deep.equal([]);
    expect(() => decodeValues([3, 0], 11542, Buffer.from('c4', 'hex'), objects)).to.throw();
  });

  it('a written value reads back the same through every format tried (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), fc.constantFrom(v10, v11, v12), (lt, client) => {
        const p = prepareRequest({ op: 'write', path: '/1/0', values: { '/1/0/1': lt, '/1/0/7': 'UQ' } }, client);
        for (const b of p.bodies) {
          const back = decodeValues([1, 0], b.contentFormat, b.payload, objects);
          expect(back.find((v) => v.path === '/1/0/1')).to.deep.include({ value: lt });
          expect(back.find((v) => v.path === '/1/0/7')).to.deep.include({ value: 'UQ' });
        }
      }),
      { numRuns: 50 },
    );
  });
});
