import { expect } from 'chai';
import fc from 'fast-check';
import { CodecError, type CodecErrorReason } from '../../src/lwm2m/errors.js';
import { lwm2mJsonCodec, lwm2mJsonLegacyCodec } from '../../src/lwm2m/formats/lwm2m-json.js';
import type { ModelLookup } from '../../src/lwm2m/model.js';
import { type LeafRecord, type LwM2MNode, N, nodeEquals } from '../../src/lwm2m/node.js';
import type { Path } from '../../src/lwm2m/path.js';
import { NULL_OBJLNK, V, type Value, valueEquals } from '../../src/lwm2m/value.js';
import { nodeAtPath, VALUE_TYPES } from '../support/arbitraries.js';
import { testModels } from '../support/models.js';
import { codecError, uniformModel, expectNode } from '../support/expect.js';
import { SPEC_DEVICE_0 as DEVICE_0 } from '../support/fixtures.js';

const codec = lwm2mJsonCodec;
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const text = (b: Uint8Array): string => new TextDecoder().decode(b);

function decodeError(json: string, path: Path = [3, 0], models: ModelLookup | undefined = testModels): CodecError {
  return codecError(() => codec.decode(path, utf8(json), models));
}

/** A model where every resource has `type` (and the given multiplicity). */
function replacer(_k: string, v: unknown): unknown {
  if (v instanceof Map) return Object.fromEntries(v);
  if (typeof v === 'bigint') return `${v}n`;
  if (v instanceof Uint8Array) return Buffer.from(v).toString('hex');
  return v;
}

// formats.md §7, spec example "Read /3/0". The doc wraps it over three lines and indents the
// continuation lines by one space; without those line breaks and indents it is this text.
const READ_3_0 =
  '{"bn":"/3/0/","e":[{"n":"0","sv":"Open Mobile Alliance"},{"n":"1","sv":"Lightweight M2M Client"},' +
  '{"n":"2","sv":"345000123"},{"n":"3","sv":"1.0"},{"n":"6/0","v":1},{"n":"6/1","v":5},' +
  '{"n":"7/0","v":3800},{"n":"7/1","v":5000},{"n":"8/0","v":125},{"n":"8/1","v":900},' +
  '{"n":"9","v":100},{"n":"10","v":15},{"n":"11/0","v":0},{"n":"13","v":1367491215},' +
  '{"n":"14","sv":"+02:00"},{"n":"16","sv":"U"}]}';

const READ_3_0_AS_PRINTED = `{"bn":"/3/0/","e":[{"n":"0","sv":"Open Mobile Alliance"},{"n":"1","sv":"Lightweight M2M Client"},
 {"n":"2","sv":"345000123"},{"n":"3","sv":"1.0"},{"n":"6/0","v":1},{"n":"6/1","v":5},
 {"n":"7/0","v":3800},{"n":"7/1","v":5000},{"n":"8/0","v":125},{"n":"8/1","v":900},
 {"n":"9","v":100},{"n":"10","v":15},{"n":"11/0","v":0},{"n":"13","v":1367491215},
 {"n":"14","sv":"+02:00"},{"n":"16","sv":"U"}]}`;


describe('lwm2m/formats/lwm2m-json', () => {
  describe('codec identity', () => {
    it('registers 11543 and the legacy 1543 with the LwM2M JSON media type, not composite', () => {
      expect(lwm2mJsonCodec).to.include({ contentFormat: 11543, name: 'lwm2m-json', mediaType: 'application/vnd.oma.lwm2m+json', composite: false });
      expect(lwm2mJsonLegacyCodec).to.include({ contentFormat: 1543, name: 'lwm2m-json-legacy', mediaType: 'application/vnd.oma.lwm2m+json', composite: false });
    });

    it('the legacy codec reads and writes the same format and names itself in errors', () => {
      expect(text(lwm2mJsonLegacyCodec.encode([3, 0], DEVICE_0))).to.equal(READ_3_0);
      expectNode(lwm2mJsonLegacyCodec.decode([3, 0], utf8(READ_3_0), testModels), DEVICE_0);
      expect(codecError(() => lwm2mJsonLegacyCodec.decode([3, 0], utf8('[]'))).format).to.equal('lwm2m-json-legacy');
    });
  });

  describe('spec example Read /3/0', () => {
    it('encodes the Device instance to the exact spec text', () => {
      expect(text(codec.encode([3, 0], DEVICE_0))).to.equal(READ_3_0);
    });

    it('decodes the spec text (as printed, with line breaks) to the Device instance', () => {
      expectNode(codec.decode([3, 0], utf8(READ_3_0), testModels), DEVICE_0);
      expectNode(codec.decode([3, 0], utf8(READ_3_0_AS_PRINTED), testModels), DEVICE_0);
    });

    it('without a model infers string / integer from the fields (Time reads as Integer)', () => {
      const node = codec.decode([3, 0], utf8(READ_3_0));
      const expected = N.instance(0, [...DEVICE_0.resources.values()].map((r) => (r.id === 13 ? N.resource(13, V.integer(1367491215)) : r)));
      expectNode(node, expected);
    });
  });

  describe('base name and names at every level', () => {
    it('object: bn "/o/", n "i/r" and "i/r/ri"', () => {
      const acl = N.object(2, [
        N.instance(0, [N.resource(0, V.integer(1)), N.multi(2, [[127, V.integer(7)]])]),
        N.instance(2, [N.resource(3, V.integer(127))]),
      ]);
      const json = '{"bn":"/2/","e":[{"n":"0/0","v":1},{"n":"0/2/127","v":7},{"n":"2/3","v":127}]}';
      expect(text(codec.encode([2], acl))).to.equal(json);
      expectNode(codec.decode([2], utf8(json), testModels), acl);
    });

    it('multiple resource: bn "/o/i/r/", n "ri"', () => {
      const node = N.multi(6, [[0, V.integer(1)], [1, V.integer(5)]]);
      const json = '{"bn":"/3/0/6/","e":[{"n":"0","v":1},{"n":"1","v":5}]}';
      expect(text(codec.encode([3, 0, 6], node))).to.equal(json);
      expectNode(codec.decode([3, 0, 6], utf8(json), testModels), node);
    });

    it('single resource: bn "/o/i/", n "r" (the ID of the value is always in n)', () => {
      const node = N.resource(9, V.integer(100));
      const json = '{"bn":"/3/0/","e":[{"n":"9","v":100}]}';
      expect(text(codec.encode([3, 0, 9], node))).to.equal(json);
      expectNode(codec.decode([3, 0, 9], utf8(json), testModels), node);
    });

    it('resource instance: bn "/o/i/r/", n "ri"', () => {
      const node = N.resourceInstance(1, V.integer(5));
      const json = '{"bn":"/3/0/6/","e":[{"n":"1","v":5}]}';
      expect(text(codec.encode([3, 0, 6, 1], node))).to.equal(json);
      expectNode(codec.decode([3, 0, 6, 1], utf8(json), testModels), node);
    });

    it('accepts the other spellings of a single resource that clients send', () => {
      const node = N.resource(9, V.integer(100));
      for (const json of [
        '{"bn":"/3/0/9","e":[{"v":100}]}', // Leshan: the whole path in bn, no n
        '{"bn":"/3/0/9/","e":[{"v":100}]}',
        '{"bn":"/3/0","e":[{"n":"9","v":100}]}', // bn without trailing slash
        '{"bn":"/3/0/","e":[{"n":"/9","v":100}]}',
        '{"bn":"/","e":[{"n":"3/0/9","v":100}]}',
        '{"e":[{"n":"/3/0/9","v":100}]}', // no bn: an n with a leading slash is absolute
      ]) {
        expectNode(codec.decode([3, 0, 9], utf8(json), testModels), node);
      }
      // Without bn a relative n hangs under the request path.
      expectNode(codec.decode([3, 0], utf8('{"e":[{"n":"9","v":100}]}'), testModels), N.instance(0, [node]));
      expectNode(codec.decode([3, 0, 9], utf8('{"e":[{"v":100}]}'), testModels), node);
    });

    it('reads bn "/o/i/r" + n "ri" as the resource instance (Wakaama joins them with a slash)', () => {
      const node = N.multi(6, [[0, V.integer(1)], [1, V.integer(5)]]);
      expectNode(codec.decode([3, 0, 6], utf8('{"bn":"/3/0/6","e":[{"n":"0","v":1},{"n":"1","v":5}]}'), testModels), node);
    });

    it('accepts members in any order, whitespace, and skips unknown members', () => {
      const json = ' { "e" : [ { "u" : "%", "v" : 100 , "n" : "9" , "x": {"a":[1,2.5,{"b":null}],"c":true} } ] ,\n"ver":"1.0", "bn" : "/3/0/" } \n';
      expectNode(codec.decode([3, 0], utf8(json), testModels), N.instance(0, [N.resource(9, V.integer(100))]));
    });

    it('an empty entry list is an empty instance / object, or an empty multiple resource with a model', () => {
      expectNode(codec.decode([3, 0], utf8('{"bn":"/3/0/","e":[]}'), testModels), N.instance(0, []));
      expectNode(codec.decode([3], utf8('{"e":[]}'), testModels), N.object(3, []));
      const empty = N.multi(6, []);
      expect(text(codec.encode([3, 0, 6], empty))).to.equal('{"bn":"/3/0/6/","e":[]}');
      expectNode(codec.decode([3, 0, 6], utf8('{"bn":"/3/0/6/","e":[]}'), testModels), empty);
      // A single resource has no empty form.
      expect(decodeError('{"bn":"/3/0/","e":[]}', [3, 0, 9]).reason).to.equal('invalid');
    });
  });

  describe('linked instances (bn "/")', () => {
    // The digest's linked-instance form: bn "/" and object links in "ov"; the null link in the
    // spec's hex spelling.
    const LINKED =
      '{"bn":"/","e":[{"n":"65/0/0/0","ov":"66:0"},{"n":"65/0/0/1","ov":"66:1"},{"n":"65/0/1","sv":"8613800755500"},' +
      '{"n":"65/0/2","v":1},{"n":"66/0/0","sv":"myService 1"},{"n":"66/0/1","sv":"Internet.15.234"},' +
      '{"n":"66/0/2","ov":"67:0"},{"n":"66/1/0","sv":"myService 2"},{"n":"66/1/1","sv":"Internet.15.235"},' +
      '{"n":"66/1/2","ov":"FFFF:FFFF"},{"n":"67/0/0","sv":"85.76.76.84"},{"n":"67/0/1","sv":"85.76.255.255"}]}';
    const records: LeafRecord[] = [
      { path: [65, 0, 0, 0], value: V.objlnk(66, 0) },
      { path: [65, 0, 0, 1], value: V.objlnk(66, 1) },
      { path: [65, 0, 1], value: V.string('8613800755500') },
      { path: [65, 0, 2], value: V.integer(1) },
      { path: [66, 0, 0], value: V.string('myService 1') },
      { path: [66, 0, 1], value: V.string('Internet.15.234') },
      { path: [66, 0, 2], value: V.objlnk(67, 0) },
      { path: [66, 1, 0], value: V.string('myService 2') },
      { path: [66, 1, 1], value: V.string('Internet.15.235') },
      { path: [66, 1, 2], value: V.objlnk(65535, 65535) },
      { path: [67, 0, 0], value: V.string('85.76.76.84') },
      { path: [67, 0, 1], value: V.string('85.76.255.255') },
    ];

    it('decodeRecords reads every object, ov as object links, FFFF:FFFF as the null link', () => {
      const got = codec.decodeRecords(utf8(LINKED), undefined, [65, 0]);
      expect(got.map((r) => r.path)).to.deep.equal(records.map((r) => r.path));
      got.forEach((r, i) => expect(valueEquals(r.value, (records[i] as LeafRecord).value), `record ${i}`).to.equal(true));
      expect((got[9] as LeafRecord).value).to.deep.equal({ type: 'objlnk', value: NULL_OBJLNK });
    });

    it('decode at the request path refuses the records of other objects (bad_path)', () => {
      const err = codecError(() => codec.decode([65, 0], utf8(LINKED)));
      expect(err.reason).to.equal('bad_path');
      expect(err.path).to.equal('/66/0/0');
    });

    it('encodeRecords writes bn "/" with slashless names and ov links (null link as 65535:65535)', () => {
      expect(text(codec.encodeRecords(records))).to.equal(LINKED.replace('FFFF:FFFF', '65535:65535'));
    });

    it('encodeRecords refuses a record that is not at a resource', () => {
      expect(codecError(() => codec.encodeRecords([{ path: [3, 0], value: V.integer(1) }])).reason).to.equal('bad_path');
    });
  });

  describe('values', () => {
    it('object links: ov on output; ov and Leshan-style sv on input', () => {
      const node = N.resource(17, V.objlnk(21, 1));
      expect(text(codec.encode([0, 0, 17], node))).to.equal('{"bn":"/0/0/","e":[{"n":"17","ov":"21:1"}]}');
      expectNode(codec.decode([0, 0, 17], utf8('{"bn":"/0/0/","e":[{"n":"17","ov":"21:1"}]}'), testModels), node);
      expectNode(codec.decode([0, 0, 17], utf8('{"bn":"/0/0/","e":[{"n":"17","sv":"21:1"}]}'), testModels), node);
      const multi = N.multi(22, [[0, V.objlnk(21, 1)], [1, V.objlnk(65535, 65535)]]);
      expectNode(codec.decode([3, 0, 22], utf8('{"bn":"/3/0/22/","e":[{"n":"0","sv":"21:1"},{"n":"1","sv":"65535:65535"}]}'), testModels), multi);
      // Without a model an sv is a string, even if it looks like a link.
      expectNode(codec.decode([0, 0, 17], utf8('{"bn":"/0/0/","e":[{"n":"17","sv":"21:1"}]}')), N.resource(17, V.string('21:1')));
      expectNode(codec.decode([0, 0, 17], utf8('{"bn":"/0/0/","e":[{"n":"17","ov":"21:1"}]}')), node);
    });

    it('opaque: standard base64 with padding in sv; either alphabet, padded or not, on input', () => {
      const node = N.resource(3, V.opaque(Uint8Array.from([1, 2, 3, 4, 5])));
      expect(text(codec.encode([0, 0, 3], node))).to.equal('{"bn":"/0/0/","e":[{"n":"3","sv":"AQIDBAU="}]}');
      for (const b64 of ['AQIDBAU=', 'AQIDBAU']) {
        expectNode(codec.decode([0, 0, 3], utf8(`{"bn":"/0/0/","e":[{"n":"3","sv":"${b64}"}]}`), testModels), node);
      }
      const fb = N.resource(5, V.opaque(Uint8Array.from([0xfb, 0xff, 0xbf])));
      expect(text(codec.encode([0, 0, 5], fb))).to.equal('{"bn":"/0/0/","e":[{"n":"5","sv":"+/+/"}]}');
      expectNode(codec.decode([0, 0, 5], utf8('{"bn":"/0/0/","e":[{"n":"5","sv":"-_-_"}]}'), testModels), fb);
      expectNode(codec.decode([0, 0, 4], utf8('{"bn":"/0/0/","e":[{"n":"4","sv":""}]}'), testModels), N.resource(4, V.opaque(new Uint8Array())));
      expect(decodeError('{"bn":"/0/0/","e":[{"n":"3","sv":"AQ*D"}]}', [0, 0]).reason).to.equal('invalid');
    });

    it('booleans in bv', () => {
      const node = N.resource(6, V.boolean(true));
      expect(text(codec.encode([1, 0, 6], node))).to.equal('{"bn":"/1/0/","e":[{"n":"6","bv":true}]}');
      expectNode(codec.decode([1, 0, 6], utf8('{"bn":"/1/0/","e":[{"n":"6","bv":true}]}'), testModels), node);
      expectNode(codec.decode([1, 0, 6], utf8('{"bn":"/1/0/","e":[{"n":"6","bv":false}]}')), N.resource(6, V.boolean(false)));
    });

    it('strings: JSON escapes on input, escaping on output', () => {
      const s = 'a"b\\c\n\t\u0001é€😀/';
      const node = N.resource(0, V.string(s));
      const out = text(codec.encode([3, 0, 0], node));
      expect(JSON.parse(out)).to.deep.equal({ bn: '/3/0/', e: [{ n: '0', sv: s }] });
      expectNode(codec.decode([3, 0, 0], utf8(out), testModels), node);
      const escaped = '{"bn":"/3/0/","e":[{"n":"0","sv":"a\\"b\\\\c\\n\\t\\u0001\\u00e9\\u20AC\\ud83d\\ude00\\/"}]}';
      expectNode(codec.decode([3, 0, 0], utf8(escaped), testModels), node);
    });

    it('time: v as seconds; bt + t give the record time', () => {
      const json = '{"bn":"/3/0/","bt":1367491200,"e":[{"n":"13","v":1367491215,"t":-5},{"n":"9","v":100}]}';
      const recs = codec.decodeRecords(utf8(json), testModels, [3, 0]);
      expect(recs.map((r) => r.time)).to.deep.equal([1367491195, 1367491200]);
      expect(valueEquals((recs[0] as LeafRecord).value, V.time(1367491215))).to.equal(true);
      const noBase = codec.decodeRecords(utf8('{"bn":"/3/0/","e":[{"n":"9","v":1,"t":12.5},{"n":"10","v":2}]}'), testModels);
      expect(noBase.map((r) => r.time)).to.deep.equal([12.5, undefined]);
      expect(noBase[1]).to.not.have.property('time');
    });

    it('a historical payload decodes to the most recent value of each resource', () => {
      const json = '{"bn":"/3/0/","bt":1000,"e":[{"n":"9","v":90,"t":-30},{"n":"9","v":95},{"n":"9","v":80,"t":-50},{"n":"10","v":1,"t":-1}]}';
      expectNode(codec.decode([3, 0], utf8(json), testModels), N.instance(0, [N.resource(9, V.integer(95)), N.resource(10, V.integer(1))]));
      expect(decodeError('{"bn":"/3/0/","e":[{"n":"9","v":1,"t":5},{"n":"9","v":2,"t":5}]}').reason).to.equal('duplicate');
    });

    it('encodeRecords writes a record time as t', () => {
      const out = text(codec.encodeRecords([{ path: [3, 0, 9], value: V.integer(95), time: 1367491215 }]));
      expect(out).to.equal('{"bn":"/","e":[{"n":"3/0/9","v":95,"t":1367491215}]}');
      expect(codecError(() => codec.encodeRecords([{ path: [3, 0, 9], value: V.integer(95), time: NaN }])).reason).to.equal('unsupported');
    });

    it('integers beyond 2^53 are exact both ways (2^63-1, -2^63, 2^64-1)', () => {
      const max = N.resource(2, V.integer(2n ** 63n - 1n));
      const json = '{"bn":"/0/0/","e":[{"n":"2","v":9223372036854775807}]}';
      expect(text(codec.encode([0, 0, 2], max))).to.equal(json);
      const got = codec.decode([0, 0, 2], utf8(json), testModels);
      expectNode(got, max);
      expect(got.kind === 'resource' && got.value.value).to.equal(9223372036854775807n);
      const min = N.resource(2, V.integer(-(2n ** 63n)));
      expect(text(codec.encode([0, 0, 2], min))).to.equal('{"bn":"/0/0/","e":[{"n":"2","v":-9223372036854775808}]}');
      expectNode(codec.decode([0, 0, 2], utf8('{"bn":"/0/0/","e":[{"n":"2","v":-9223372036854775808}]}'), testModels), min);
      const umax = N.resource(13, V.unsigned(2n ** 64n - 1n));
      expect(text(codec.encode([0, 0, 13], umax))).to.equal('{"bn":"/0/0/","e":[{"n":"13","v":18446744073709551615}]}');
      expectNode(codec.decode([0, 0, 13], utf8('{"bn":"/0/0/","e":[{"n":"13","v":18446744073709551615}]}'), testModels), umax);
      // 2^53 + 1 is where JSON.parse would round.
      expectNode(codec.decode([0, 0, 2], utf8('{"bn":"/0/0/","e":[{"n":"2","v":9007199254740993}]}'), testModels), N.resource(2, V.integer(9007199254740993n)));
    });

    it('without a model, integer literals are Integer up to 2^63-1 and Unsigned up to 2^64-1', () => {
      expectNode(codec.decode([9, 0, 1], utf8('{"e":[{"v":9223372036854775807}]}')), N.resource(1, V.integer(2n ** 63n - 1n)));
      expectNode(codec.decode([9, 0, 1], utf8('{"e":[{"v":18446744073709551615}]}')), N.resource(1, V.unsigned(2n ** 64n - 1n)));
      expect(codecError(() => codec.decode([9, 0, 1], utf8('{"e":[{"v":18446744073709551616}]}'))).reason).to.equal('out_of_range');
    });

    it('out-of-range integers for the model type are refused', () => {
      expect(decodeError('{"bn":"/0/0/","e":[{"n":"2","v":9223372036854775808}]}', [0, 0]).reason).to.equal('out_of_range');
      expect(decodeError('{"bn":"/0/0/","e":[{"n":"13","v":18446744073709551616}]}', [0, 0]).reason).to.equal('out_of_range');
      expect(decodeError('{"bn":"/0/0/","e":[{"n":"13","v":-1}]}', [0, 0]).reason).to.equal('out_of_range');
      expect(decodeError('{"bn":"/0/0/","e":[{"n":"2","v":1' + '0'.repeat(60) + '}]}', [0, 0]).reason).to.equal('out_of_range');
      expect(decodeError('{"bn":"/0/0/","e":[{"n":"2","v":1e999}]}', [0, 0]).reason).to.equal('out_of_range');
    });

    it('floats: shortest text, integral floats keep a ".0" so they read back as floats without a model', () => {
      const cases: [number, string][] = [[1.5, '1.5'], [1, '1.0'], [-2.25, '-2.25'], [-0, '-0.0'], [1e21, '1e+21'], [6.667e-11, '6.667e-11'], [0.1, '0.1']];
      for (const [x, lit] of cases) {
        const out = text(codec.encode([3303, 0, 5700], N.resource(5700, V.float(x))));
        expect(out).to.equal(`{"bn":"/3303/0/","e":[{"n":"5700","v":${lit}}]}`);
        const back = codec.decode([3303, 0, 5700], utf8(out));
        expect(back.kind === 'resource' && back.value.type).to.equal('float');
        expect(back.kind === 'resource' && Object.is(back.value.value, x), `${x}`).to.equal(true);
      }
      // With a Float model an integer literal is a float too; without a model it is an Integer.
      expectNode(codec.decode([3303, 0, 5700], utf8('{"e":[{"v":22}]}'), uniformModel('float')), N.resource(5700, V.float(22)));
      expectNode(codec.decode([3303, 0, 5700], utf8('{"e":[{"v":22}]}')), N.resource(5700, V.integer(22)));
      expectNode(codec.decode([3303, 0, 5700], utf8('{"e":[{"v":2.5E-3}]}')), N.resource(5700, V.float(0.0025)));
      // An integral float literal is accepted for an Integer resource.
      expectNode(codec.decode([3, 0, 9], utf8('{"e":[{"v":100.0}]}'), testModels), N.resource(9, V.integer(100)));
      for (const bad of [NaN, Infinity, -Infinity]) {
        expect(codecError(() => codec.encode([3303, 0, 5700], N.resource(5700, V.float(bad)))).reason).to.equal('unsupported');
      }
    });
  });

  describe('type mismatches name the path', () => {
    const cases: [string, string][] = [
      ['{"bn":"/3/0/","e":[{"n":"9","sv":"100"}]}', '/3/0/9'], // sv for Integer
      ['{"bn":"/3/0/","e":[{"n":"9","bv":true}]}', '/3/0/9'],
      ['{"bn":"/3/0/","e":[{"n":"9","ov":"1:2"}]}', '/3/0/9'],
      ['{"bn":"/3/0/","e":[{"n":"9","v":1.5}]}', '/3/0/9'], // non-integral for Integer
      ['{"bn":"/3/0/","e":[{"n":"0","v":1}]}', '/3/0/0'], // number for String
      ['{"bn":"/3/0/","e":[{"n":"0","ov":"1:2"}]}', '/3/0/0'],
      ['{"bn":"/3/0/","e":[{"n":"6/1","sv":"x"}]}', '/3/0/6/1'],
      ['{"bn":"/3/0/","e":[{"n":"13","v":1.25}]}', '/3/0/13'], // Time must be integral
    ];
    for (const [json, where] of cases) {
      it(json, () => {
        const err = decodeError(json);
        expect(err.reason).to.equal('type_mismatch');
        expect(err.path).to.equal(where);
      });
    }
    it('boolean and opaque resources', () => {
      expect(decodeError('{"bn":"/1/0/","e":[{"n":"6","v":1}]}', [1, 0]).reason).to.equal('type_mismatch');
      expect(decodeError('{"bn":"/0/0/","e":[{"n":"3","bv":false}]}', [0, 0]).reason).to.equal('type_mismatch');
    });
  });

  describe('malformed input', () => {
    const cases: [string, string | Uint8Array, CodecErrorReason][] = [
      ['empty payload', '', 'truncated'],
      ['only whitespace', ' \n ', 'truncated'],
      ['a JSON array (SenML)', '[{"n":"0","v":1}]', 'invalid'],
      ['a JSON string', '"x"', 'invalid'],
      ['not JSON', 'hello', 'invalid'],
      ['unclosed object', '{"bn":"/3/0/"', 'truncated'],
      ['unclosed entry array', '{"e":[', 'truncated'],
      ['unclosed entry', '{"e":[{"n":"9","v":1', 'truncated'],
      ['missing e', '{}', 'invalid'],
      ['missing e with bn', '{"bn":"/3/0/"}', 'invalid'],
      ['e is an object', '{"e":{}}', 'invalid'],
      ['e is null', '{"e":null}', 'invalid'],
      ['entry is a number', '{"e":[1]}', 'invalid'],
      ['entry is an array', '{"e":[[]]}', 'invalid'],
      ['entry without value', '{"e":[{"n":"9"}]}', 'invalid'],
      ['empty entry', '{"e":[{}]}', 'invalid'],
      ['two value fields', '{"e":[{"n":"9","v":1,"sv":"1"}]}', 'invalid'],
      ['v twice', '{"e":[{"n":"9","v":1,"v":2}]}', 'duplicate'],
      ['n twice', '{"e":[{"n":"9","n":"9","v":2}]}', 'duplicate'],
      ['t twice', '{"e":[{"n":"9","t":1,"t":2,"v":2}]}', 'duplicate'],
      ['bn twice', '{"bn":"/3/0/","bn":"/3/0/","e":[]}', 'duplicate'],
      ['e twice', '{"e":[],"e":[]}', 'duplicate'],
      ['bt twice', '{"bt":1,"bt":1,"e":[]}', 'duplicate'],
      ['v is a string', '{"e":[{"n":"9","v":"1"}]}', 'invalid'],
      ['v is null', '{"e":[{"n":"9","v":null}]}', 'invalid'],
      ['bv is a number', '{"e":[{"n":"9","bv":1}]}', 'invalid'],
      ['sv is a number', '{"e":[{"n":"0","sv":1}]}', 'invalid'],
      ['ov is a number', '{"e":[{"n":"0","ov":1}]}', 'invalid'],
      ['n is a number', '{"e":[{"n":9,"v":1}]}', 'invalid'],
      ['t is a string', '{"e":[{"n":"9","v":1,"t":"5"}]}', 'invalid'],
      ['bn is a number', '{"bn":3,"e":[]}', 'invalid'],
      ['bt is a string', '{"bt":"1","e":[]}', 'invalid'],
      ['n not decimal', '{"bn":"/3/0/","e":[{"n":"9a","v":1}]}', 'bad_path'],
      ['n with leading zero', '{"bn":"/3/0/","e":[{"n":"09","v":1}]}', 'bad_path'],
      ['n with empty segment', '{"bn":"/3/0/","e":[{"n":"6//1","v":1}]}', 'bad_path'],
      ['n with reserved ID 65535', '{"bn":"/3/0/","e":[{"n":"65535","v":1}]}', 'bad_path'],
      ['n too deep', '{"bn":"/3/0/","e":[{"n":"6/1/2","v":1}]}', 'bad_path'],
      ['n negative', '{"bn":"/3/0/","e":[{"n":"-1","v":1}]}', 'bad_path'],
      ['bn not a path', '{"bn":"/3/x/","e":[{"n":"9","v":1}]}', 'bad_path'],
      ['name at instance level', '{"bn":"/3/0/","e":[{"v":1}]}', 'bad_path'],
      ['name at object level', '{"bn":"/","e":[{"n":"3","v":1}]}', 'bad_path'],
      ['record outside the request path', '{"bn":"/4/0/","e":[{"n":"0","v":1}]}', 'bad_path'],
      ['other instance than requested', '{"bn":"/3/1/","e":[{"n":"9","v":1}]}', 'bad_path'],
      ['resource given twice', '{"bn":"/3/0/","e":[{"n":"9","v":1},{"n":"9","v":2}]}', 'duplicate'],
      ['resource instance given twice', '{"bn":"/3/0/","e":[{"n":"6/0","v":1},{"n":"6/0","v":2}]}', 'duplicate'],
      ['single and multiple', '{"bn":"/3/0/","e":[{"n":"6","v":1},{"n":"6/0","v":2}]}', 'duplicate'],
      ['trailing data', '{"e":[]} {}', 'trailing'],
      ['trailing comma in e', '{"e":[{"n":"9","v":1},]}', 'invalid'],
      ['trailing comma in object', '{"e":[],}', 'invalid'],
      ['missing colon', '{"e" []}', 'invalid'],
      ['missing comma', '{"bn":"/3/0/" "e":[]}', 'invalid'],
      ['single-quoted', "{'e':[]}", 'invalid'],
      ['number with leading zero', '{"e":[{"n":"9","v":01}]}', 'invalid'],
      ['number with plus', '{"e":[{"n":"9","v":+1}]}', 'invalid'],
      ['lone minus', '{"e":[{"n":"9","v":-}]}', 'invalid'],
      ['dot without digits', '{"e":[{"n":"9","v":1.}]}', 'invalid'],
      ['exponent without digits', '{"e":[{"n":"9","v":1e}]}', 'invalid'],
      ['NaN literal', '{"e":[{"n":"9","v":NaN}]}', 'invalid'],
      ['bv misspelt', '{"e":[{"n":"9","bv":tru}]}', 'invalid'],
      ['bad escape', '{"e":[{"n":"0","sv":"\\x"}]}', 'invalid'],
      ['bad unicode escape', '{"e":[{"n":"0","sv":"\\u12G4"}]}', 'invalid'],
      ['truncated unicode escape', '{"e":[{"n":"0","sv":"\\u12', 'truncated'],
      ['raw control character', '{"e":[{"n":"0","sv":"a\u0001b"}]}', 'invalid'],
      ['unterminated string', '{"e":[{"n":"0","sv":"abc', 'truncated'],
      ['invalid UTF-8', Uint8Array.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]), 'invalid'],
      ['unknown member nested too deep', `{"x":${'['.repeat(100)}${']'.repeat(100)},"e":[]}`, 'too_deep'],
      ['unknown member malformed', '{"x":[1,,2],"e":[]}', 'invalid'],
      ['object link malformed', '{"bn":"/0/0/","e":[{"n":"17","ov":"21"}]}', 'invalid'],
      ['object link out of range', '{"bn":"/0/0/","e":[{"n":"17","ov":"70000:1"}]}', 'out_of_range'],
    ];
    for (const [what, input, reason] of cases) {
      it(`${what} → ${reason}`, () => {
        const payload = typeof input === 'string' ? utf8(input) : input;
        const path: Path = what.startsWith('object link') ? [0, 0] : [3, 0];
        const err = codecError(() => codec.decode(path, payload, testModels));
        expect(err.reason, err.message).to.equal(reason);
        expect(err.format).to.equal('lwm2m-json');
      });
    }

    it('errors say which entry and where', () => {
      const err = decodeError('{"bn":"/3/0/","e":[{"n":"9","v":1},{"n":"10","v":"x"}]}');
      expect(err.message).to.contain('e[1]').and.to.contain('"v" must be a number');
      expect(err.offset).to.equal(49); // the value of e[1].v
    });
  });

  describe('encoding refuses nodes that do not sit at the path', () => {
    it('kind or ID mismatch → bad_path', () => {
      expect(codecError(() => codec.encode([3, 0, 9], N.instance(0, []))).reason).to.equal('bad_path');
      expect(codecError(() => codec.encode([3, 0], N.instance(1, []))).reason).to.equal('bad_path');
      expect(codecError(() => codec.encode([], N.object(3, []))).reason).to.equal('bad_path');
    });
  });

  describe('round trip (property)', () => {
    const noEmptyInstances = ({ node }: { path: Path; node: LwM2MNode }): boolean =>
      node.kind !== 'object' || [...node.instances.values()].every((i) => i.resources.size > 0);

    for (const type of VALUE_TYPES) {
      it(`${type}: decode(encode(node)) equals node with a model of that type`, () => {
        fc.assert(
          fc.property(nodeAtPath({ type, nonEmptyMulti: true }).filter(noEmptyInstances), ({ path, node }) => {
            const bytes = codec.encode(path, node);
            JSON.parse(text(bytes)); // always valid JSON
            const back = codec.decode(path, bytes, uniformModel(type));
            expect(nodeEquals(back, node), JSON.stringify(node, replacer)).to.equal(true);
          }),
          { numRuns: 60 },
        );
      });
    }

    for (const type of ['string', 'boolean', 'objlnk', 'float', 'integer'] as const) {
      it(`${type}: the field alone carries the type, no model needed`, () => {
        fc.assert(
          fc.property(nodeAtPath({ type, nonEmptyMulti: true }).filter(noEmptyInstances), ({ path, node }) => {
            expect(nodeEquals(codec.decode(path, codec.encode(path, node)), node)).to.equal(true);
          }),
          { numRuns: 40 },
        );
      });
    }

    it('records round-trip through encodeRecords / decodeRecords', () => {
      const rec = fc.record({
        path: fc.tuple(fc.integer({ min: 0, max: 65534 }), fc.integer({ min: 0, max: 65534 }), fc.integer({ min: 0, max: 65534 })),
        value: fc.constantFrom<Value>(V.string('x'), V.integer(-5), V.boolean(false), V.objlnk(1, 2), V.float(0.5)),
        time: fc.option(fc.integer({ min: -1000, max: 2 ** 31 }), { nil: undefined }),
      });
      fc.assert(
        fc.property(fc.array(rec, { maxLength: 5 }), (recs) => {
          const records: LeafRecord[] = recs.map((r) => (r.time === undefined ? { path: r.path, value: r.value } : r));
          const back = codec.decodeRecords(codec.encodeRecords(records));
          expect(back.length).to.equal(records.length);
          back.forEach((b, i) => {
            const r = records[i] as LeafRecord;
            expect(b.path).to.deep.equal(r.path);
            expect(valueEquals(b.value, r.value)).to.equal(true);
            expect(b.time).to.equal(r.time);
          });
        }),
        { numRuns: 100 },
      );
    });
  });

  describe('fuzz: only CodecError or success', () => {
    const survives = (payload: Uint8Array, path: Path, models?: ModelLookup): void => {
      try {
        codec.decode(path, payload, models);
      } catch (e) {
        if (!(e instanceof CodecError)) throw e;
      }
      try {
        codec.decodeRecords(payload, models, path);
      } catch (e) {
        if (!(e instanceof CodecError)) throw e;
      }
    };
    const paths = fc.constantFrom<Path>([3], [3, 0], [3, 0, 6], [3, 0, 9], [3, 0, 6, 1], [0, 0], [65, 0]);
    const models = fc.constantFrom<ModelLookup | undefined>(undefined, testModels, uniformModel('opaque'), uniformModel('float'), uniformModel('objlnk', true));

    it('random JSON values', () => {
      fc.assert(fc.property(fc.json({ maxDepth: 4 }), paths, models, (j, p, m) => survives(utf8(j), p, m)), { numRuns: 300 });
    });

    it('random LwM2M-JSON-shaped documents', () => {
      const entry = fc.dictionary(fc.constantFrom('n', 'v', 'bv', 'sv', 'ov', 't', 'x'), fc.oneof(fc.string(), fc.integer(), fc.double(), fc.boolean(), fc.constant(null)), { maxKeys: 4 });
      const doc = fc.record({ bn: fc.oneof(fc.constantFrom('/', '/3/', '/3/0/', '/3/0/6/', '/0/0/', '3/0'), fc.string()), e: fc.array(entry, { maxLength: 5 }) }, { requiredKeys: [] });
      fc.assert(fc.property(doc, paths, models, (d, p, m) => survives(utf8(JSON.stringify(d)), p, m)), { numRuns: 300 });
    });

    it('mutated valid payloads (byte flips, truncation, insertion)', () => {
      const base = utf8(READ_3_0);
      const mutation = fc.tuple(fc.nat({ max: base.length }), fc.integer({ min: 0, max: 255 }), fc.constantFrom('flip', 'cut', 'insert', 'delete'));
      fc.assert(
        fc.property(fc.array(mutation, { minLength: 1, maxLength: 4 }), paths, models, (muts, p, m) => {
          let b = Array.from(base);
          for (const [at, byte, kind] of muts) {
            const i = Math.min(at, b.length);
            if (kind === 'flip' && i < b.length) b[i] = byte;
            else if (kind === 'cut') b = b.slice(0, i);
            else if (kind === 'insert') b.splice(i, 0, byte);
            else b.splice(i, 1);
          }
          survives(Uint8Array.from(b), p, m);
        }),
        { numRuns: 300 },
      );
    });

    it('random bytes', () => {
      fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), paths, models, (b, p, m) => survives(b, p, m)), { numRuns: 300 });
    });
  });
});
