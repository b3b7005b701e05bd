/**
 * Register/Update query and payload parsing (src/registration/request.ts): the digest's example
 * datagram (registration.md §2.4) decoded with an independent CoAP parser (coap-packet), every
 * row of the leniency table, binding letters per version, Update rules, and properties.
 */
import { expect } from 'chai';
import { parse } from 'coap-packet';
import fc from 'fast-check';
import {
  checkBinding,
  DEFAULT_LIFETIME,
  parseProfileIds,
  parseRegistrationPayload,
  parseRegistrationQuery,
  resolveRegister,
  resolveUpdate,
  resolveVersion,
  type Parsed,
  type RegistrationQuery,
} from '../../src/registration/request.js';
import { SPEC_REGISTER } from './support.js';

const q = (...params: string[]): Buffer[] => params.map((p) => Buffer.from(p));

function ok<T>(r: Parsed<T>): T {
  if (!r.ok) throw new Error(`refused: ${r.refusal.code} ${r.refusal.diagnostic}`);
  return r.value;
}

function refused<T>(r: Parsed<T>, code: string, parameter?: string): string {
  expect(r.ok, 'expected a refusal').to.equal(false);
  if (r.ok) throw new Error('unreachable');
  expect(r.refusal.code).to.equal(code);
  if (parameter !== undefined) {
    expect(r.refusal.parameter).to.equal(parameter);
    expect(r.refusal.diagnostic).to.include(parameter);
  }
  return r.refusal.diagnostic;
}

const query = (...params: string[]): RegistrationQuery => ok(parseRegistrationQuery(q(...params)));

describe('registration/request', () => {
  describe('the spec example (registration.md §2.4)', () => {
    it('reads the Register datagram: query, Content-Format and payload', () => {
      const packet = parse(SPEC_REGISTER);
      expect(packet.code).to.equal('0.02');
      const uriQuery = packet.options.filter((o) => o.name === 'Uri-Query').map((o) => o.value);
      const cf = packet.options.find((o) => o.name === 'Content-Format')!.value;
      const parsed = ok(parseRegistrationQuery(uriQuery));
      expect(parsed.endpoint?.toString()).to.equal('dev1');
      expect(parsed).to.deep.include({ lifetime: 300, lwm2mVersion: '1.1', binding: 'U', queueMode: false });
      expect(parsed.extra.size).to.equal(0);
      expect(ok(resolveRegister(parsed))).to.deep.equal({ lwm2mVersion: '1.1', lifetime: 300, binding: 'U', queueMode: false, attributes: {}, defaulted: [] });
      const payload = ok(parseRegistrationPayload(packet.payload, cf[0]));
      expect(payload).to.deep.equal({ rootPath: '/', objects: [{ id: 1, instances: [0] }, { id: 3, instances: [0] }], ignored: [] });
    });
  });

  describe('the leniency table', () => {
    it('defaults lwm2m to 1.0, lt to 86400, b to U, and says so', () => {
      const p = ok(resolveRegister(query('ep=a')));
      expect(p).to.deep.equal({ lwm2mVersion: '1.0', lifetime: 86400, binding: 'U', queueMode: false, attributes: {}, defaulted: ['lwm2m', 'lt', 'b'] });
      expect(DEFAULT_LIFETIME).to.equal(86400);
    });

    it('accepts a patch release as its minor version, refuses other versions with 4.12 and non-versions with 4.00', () => {
      expect(ok(resolveRegister(query('lwm2m=1.1.1'))).lwm2mVersion).to.equal('1.1');
      expect(ok(resolveRegister(query('lwm2m=1.2'))).lwm2mVersion).to.equal('1.2');
      for (const v of ['2.0', '1.3', '0.9', '1.10']) refused(resolveRegister(query(`lwm2m=${v}`)), '4.12', 'lwm2m');
      expect(ok(resolveRegister(query('lwm2m="1.1"'))).lwm2mVersion).to.equal('1.1');
      for (const v of ['abc', '1', '1.', '.1', '1.1.1.1', '"1.1', '""']) refused(parseRegistrationQuery(q(`lwm2m=${v}`)), '4.00', 'lwm2m');
      refused(parseRegistrationQuery(q('lwm2m=')), '4.00', 'lwm2m');
      refused(parseRegistrationQuery(q('lwm2m')), '4.00', 'lwm2m');
      expect(ok(resolveVersion(undefined))).to.equal('1.0');
    });

    it('lt=0: never expires in 1.2, 86400 before', () => {
      expect(ok(resolveRegister(query('lwm2m=1.2', 'lt=0'))).lifetime).to.equal(0);
      const p11 = ok(resolveRegister(query('lwm2m=1.1', 'lt=0')));
      expect(p11.lifetime).to.equal(86400);
      expect(p11.defaulted).to.deep.equal(['lt', 'b']);
      expect(ok(resolveRegister(query('lwm2m=1.0', 'lt=0'))).lifetime).to.equal(86400);
    });

    it('refuses a lifetime that is no decimal integer, negative or beyond 2^32-1', () => {
      for (const lt of ['-1', '1.5', '1e3', 'abc', ' 30', '4294967296', '99999999999']) refused(parseRegistrationQuery(q(`lt=${lt}`)), '4.00', 'lt');
      expect(query('lt=4294967295').lifetime).to.equal(4294967295);
      expect(query('lt=0030').lifetime).to.equal(30);
    });

    it('Q is a flag: Q=1 and Q= are 4.00; Q in 1.0 is 4.00; b=UQ in 1.0 is queue mode', () => {
      refused(parseRegistrationQuery(q('Q=1')), '4.00', 'Q');
      refused(parseRegistrationQuery(q('Q=')), '4.00', 'Q');
      expect(ok(resolveRegister(query('lwm2m=1.1', 'Q'))).queueMode).to.equal(true);
      expect(ok(resolveRegister(query('lwm2m=1.1'))).queueMode).to.equal(false);
      refused(resolveRegister(query('lwm2m=1.0', 'Q')), '4.00', 'Q');
      refused(resolveRegister(query('Q')), '4.00', 'Q'); // no lwm2m: a 1.0 client
      expect(ok(resolveRegister(query('lwm2m=1.0', 'b=UQ'))).queueMode).to.equal(true);
      expect(ok(resolveRegister(query('lwm2m=1.0', 'b=QU'))).queueMode).to.equal(true);
    });

    it('refuses an empty, repeated or too long ep, and any known parameter given twice', () => {
      refused(parseRegistrationQuery(q('ep=')), '4.00', 'ep');
      refused(parseRegistrationQuery(q('ep')), '4.00', 'ep');
      refused(parseRegistrationQuery(q('ep=a', 'ep=a')), '4.00', 'ep');
      refused(parseRegistrationQuery(q(`ep=${'x'.repeat(256)}`)), '4.00', 'ep');
      expect(query(`ep=${'x'.repeat(255)}`).endpoint).to.have.length(255);
      for (const p of ['lt=1', 'lwm2m=1.1', 'b=U', 'Q', 'sms=1', 'pid=oma:x']) refused(parseRegistrationQuery(q(p, p)), '4.00', p.split('=')[0]);
    });

    it('keeps endpoint names as bytes', () => {
      const raw = Buffer.concat([Buffer.from('ep='), Buffer.from([0x00, 0xff, 0xfe])]);
      expect(ok(parseRegistrationQuery([raw])).endpoint).to.deep.equal(Buffer.from([0x00, 0xff, 0xfe]));
    });

    it('checks sms as an MSISDN', () => {
      expect(query('sms=4915112345678').sms).to.equal('4915112345678');
      expect(query('sms=+4915112345678').sms).to.equal('+4915112345678');
      for (const v of ['abc', '49 151', '']) refused(parseRegistrationQuery(q(`sms=${v}`)), '4.00', 'sms');
    });

    it('parses pid lists and refuses malformed ones', () => {
      expect(parseProfileIds('6:1234abcd')).to.deep.equal(['6:1234abcd']);
      expect(parseProfileIds('"oma:lwm2m-basic,v:acme-1,6:ff"')).to.deep.equal(['oma:lwm2m-basic', 'v:acme-1', '6:ff']);
      for (const v of ['"oma:x', 'x:y', '6:XYZ', 'oma:', '"a,b"', '""']) expect(parseProfileIds(v), v).to.equal(undefined);
      expect(query('pid="oma:a,oma:b"').profileIds).to.deep.equal(['oma:a', 'oma:b']);
      refused(parseRegistrationQuery(q('pid=nonsense')), '4.00', 'pid');
    });

    it('keeps unknown parameters as attributes (first value wins), flags too', () => {
      const p = query('ep=a', 'apn=internet', 'vendor', 'apn=second', '=x');
      expect([...p.extra]).to.deep.equal([
        ['apn', 'internet'],
        ['vendor', ''],
      ]);
      expect(ok(resolveRegister(p)).attributes).to.deep.equal({ apn: 'internet', vendor: '' });
    });
  });

  describe('binding letters per version (objects.md §3.1)', () => {
    const good: [string, '1.0' | '1.1' | '1.2'][] = [
      ['U', '1.0'], ['UQ', '1.0'], ['S', '1.0'], ['SQ', '1.0'], ['US', '1.0'], ['UQS', '1.0'], ['SUQ', '1.0'],
      ['U', '1.1'], ['T', '1.1'], ['UTSN', '1.1'], ['NU', '1.1'],
      ['UM', '1.2'], ['H', '1.2'], ['UTSNMH', '1.2'],
    ];
    const bad: [string, '1.0' | '1.1' | '1.2'][] = [
      ['T', '1.0'], ['Q', '1.0'], ['UN', '1.0'], ['UU', '1.0'],
      ['UQ', '1.1'], ['M', '1.1'], ['UTT', '1.1'], ['u', '1.1'],
      ['UQ', '1.2'], ['X', '1.2'],
    ];
    for (const [b, v] of good) it(`accepts b=${b} for ${v}`, () => expect(ok(checkBinding(b, v))).to.equal(b));
    for (const [b, v] of bad) it(`refuses b=${b} for ${v}`, () => refused(checkBinding(b, v), '4.00', 'b'));

    it('explains Q in a 1.1 binding', () => {
      expect(refused(resolveRegister(query('lwm2m=1.1', 'b=UQ')), '4.00', 'b')).to.include('Q parameter');
      refused(parseRegistrationQuery(q('b=U-Q')), '4.00', 'b');
    });
  });

  describe('Update (registration.md §3)', () => {
    const current = { endpoint: Buffer.from('dev'), lwm2mVersion: '1.1' };

    it('takes only what is sent', () => {
      expect(ok(resolveUpdate(query(), current))).to.deep.equal({});
      expect(ok(resolveUpdate(query('lt=60', 'b=UT', 'Q', 'sms=1', 'x=y'), current))).to.deep.equal({
        lifetime: 60,
        binding: 'UT',
        queueMode: true,
        sms: '1',
        attributes: { x: 'y' },
      });
      expect(ok(resolveUpdate(query('lt=0'), current)).lifetime).to.equal(86400);
      expect(ok(resolveUpdate(query('lt=0'), { ...current, lwm2mVersion: '1.2' })).lifetime).to.equal(0);
    });

    it('ignores ep and lwm2m when unchanged, refuses them otherwise', () => {
      expect(ok(resolveUpdate(query('ep=dev', 'lwm2m=1.1.1'), current))).to.deep.equal({});
      refused(resolveUpdate(query('ep=other'), current), '4.00', 'ep');
      refused(resolveUpdate(query('lwm2m=1.2'), current), '4.00', 'lwm2m');
    });

    it('checks the binding against the registered version; 1.0 queue mode follows b', () => {
      refused(resolveUpdate(query('b=UQ'), current), '4.00', 'b');
      const v10 = { ...current, lwm2mVersion: '1.0' };
      expect(ok(resolveUpdate(query('b=UQ'), v10))).to.deep.equal({ binding: 'UQ', queueMode: true });
      expect(ok(resolveUpdate(query('b=U'), v10))).to.deep.equal({ binding: 'U', queueMode: false });
      refused(resolveUpdate(query('Q'), v10), '4.00', 'Q');
    });
  });

  describe('payload', () => {
    it('reads root path, formats, versions; leaves out Security and OSCORE', () => {
      const p = ok(parseRegistrationPayload(Buffer.from('</lwm2m>;rt="oma.lwm2m";ct="60 110 112",</lwm2m/0/0>,</lwm2m/1>;ver=1.1,</lwm2m/1/0>,</lwm2m/21/0>,</lwm2m/3/0>,</lwm2m/5>'), 40));
      expect(p).to.deep.equal({
        rootPath: '/lwm2m',
        contentFormats: [60, 110, 112],
        objects: [
          { id: 1, version: '1.1', instances: [0] },
          { id: 3, instances: [0] },
          { id: 5, instances: [] },
        ],
        ignored: [0, 21],
      });
    });

    it('tolerates the spec 1.2 spacing and no Content-Format option', () => {
      const p = ok(parseRegistrationPayload(Buffer.from('</>;ct="110 112 60", </1/0>,</1/1>,</2/0>,</3/0>,</4/0>,</5>'), undefined));
      expect(p?.contentFormats).to.deep.equal([110, 112, 60]);
      expect(p?.objects.map((o) => o.id)).to.deep.equal([1, 2, 3, 4, 5]);
    });

    it('is undefined (no object list) for an empty payload or one naming no object', () => {
      expect(ok(parseRegistrationPayload(Buffer.alloc(0), 40))).to.equal(undefined);
      expect(ok(parseRegistrationPayload(Buffer.from('</>;rt="oma.lwm2m";ct=110'), 40))).to.equal(undefined);
      expect(ok(parseRegistrationPayload(Buffer.from('</0/0>'), 40))).to.equal(undefined);
    });

    it('refuses malformed link-format, resource-level links and other formats with 4.00', () => {
      expect(refused(parseRegistrationPayload(Buffer.from('</1/0'), 40), '4.00')).to.match(/malformed object list/);
      refused(parseRegistrationPayload(Buffer.from('</3/0/1>'), 40), '4.00');
      refused(parseRegistrationPayload(Buffer.from('</70000/0>'), 40), '4.00');
      refused(parseRegistrationPayload(Buffer.from('</1>;rt="oma.lwm2m",</2>;rt="oma.lwm2m"'), 40), '4.00');
      expect(refused(parseRegistrationPayload(Buffer.from('</1/0>'), 0), '4.00')).to.include('Content-Format 40');
    });
  });

  describe('properties', () => {
    it('never throws on arbitrary query options; refusals always explain themselves', () => {
      fc.assert(
        fc.property(fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 8 }), (opts) => {
          const r = parseRegistrationQuery(opts);
          if (!r.ok) {
            expect(r.refusal.diagnostic.length).to.be.greaterThan(0);
            return;
          }
          const reg = resolveRegister(r.value);
          if (!reg.ok) expect(['4.00', '4.12']).to.include(reg.refusal.code);
          else expect(reg.value.lifetime).to.be.at.least(0);
        }),
        { numRuns: 500 },
      );
    });

    it('reads back any valid combination of parameters in any order', () => {
      const arb = fc.record({
        ep: fc.string({ unit: fc.constantFrom(...'abcxyz0123:-_.'.split('')), minLength: 1, maxLength: 30 }),
        lt: fc.integer({ min: 0, max: 0xffffffff }),
        v: fc.constantFrom('1.1', '1.2'),
        b: fc.subarray(['U', 'T', 'S', 'N'], { minLength: 1 }).chain((letters) => fc.shuffledSubarray(letters, { minLength: letters.length })),
        queue: fc.boolean(),
        extra: fc.dictionary(fc.constantFrom('apn', 'imei', 'x1', 'vendor'), fc.string({ unit: fc.constantFrom(...'abc123'.split('')), maxLength: 5 })),
        seed: fc.integer(),
      });
      fc.assert(
        fc.property(arb, ({ ep, lt, v, b, queue, extra, seed }) => {
          const params = [`ep=${ep}`, `lt=${lt}`, `lwm2m=${v}`, `b=${b.join('')}`, ...(queue ? ['Q'] : []), ...Object.entries(extra).map(([k, val]) => `${k}=${val}`)];
          // A deterministic shuffle: parameter order is free (§2.1).
          const shuffled = params.map((p, i) => [(i * 7919 + seed) % 101, p] as const).sort((a, c) => a[0] - c[0]).map(([, p]) => p);
          const parsed = ok(parseRegistrationQuery(q(...shuffled)));
          const r = ok(resolveRegister(parsed));
          expect(parsed.endpoint?.toString()).to.equal(ep);
          expect(r).to.deep.include({ lwm2mVersion: v, binding: b.join(''), queueMode: queue, lifetime: lt === 0 && v !== '1.2' ? 86400 : lt });
          expect(r.attributes).to.deep.equal(extra);
        }),
        { numRuns: 300 },
      );
    });
  });
});
