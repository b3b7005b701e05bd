import { expect } from 'chai';
import fc from 'fast-check';
import { CodecError } from '../../src/lwm2m/errors.js';
import { decodeSenmlCborPaths, encodeSenmlCborPaths, senmlCborCodec } from '../../src/lwm2m/formats/senml-cbor.js';
import { decodeSenmlJsonPaths, encodeSenmlJsonPaths, senmlJsonCodec } from '../../src/lwm2m/formats/senml-json.js';
import type { SenmlCodec } from '../../src/lwm2m/formats/senml.js';
import type { ModelLookup } from '../../src/lwm2m/model.js';
import { type LeafRecord, type LwM2MNode, N, nodeEquals } from '../../src/lwm2m/node.js';
import { formatPath, type Path } from '../../src/lwm2m/path.js';
import { NULL_OBJLNK, V, type Value, type ValueType, valueEquals } from '../../src/lwm2m/value.js';
import { anyValue, hex, id, nodeAtPath, toHex, VALUE_TYPES, valueOf } from '../support/arbitraries.js';
import { testModels } from '../support/models.js';
import { codecError, uniformModel } from '../support/expect.js';
import { SPEC_DEVICE_0 as device, PSK_SECURITY_0_1 as security } from '../support/fixtures.js';

const utf8 = new TextEncoder();
const text = (b: Uint8Array): string => Buffer.from(b).toString('utf8');
const json = (s: string): Uint8Array => utf8.encode(s);

const reason = (fn: () => unknown): string => codecError(fn).reason;

/** A model that gives every resource the same type (for round trips of generated nodes). */
/** A model built from explicit `o/r` → type entries. */
function mapModel(types: ReadonlyMap<string, ValueType>): ModelLookup {
  return {
    object: () => undefined,
    resource: (o, r) => {
      const type = types.get(`${o}/${r}`);
      return type === undefined
        ? undefined
        : { id: r, name: 'r', operations: 'RW', multiple: false, mandatory: false, type, rangeEnumeration: '', units: '', description: '' };
    },
  };
}

function recordsEqual(a: readonly LeafRecord[], b: readonly LeafRecord[]): boolean {
  return (
    a.length === b.length &&
    a.every((r, i) => {
      const s = b[i] as LeafRecord;
      return formatPath(r.path) === formatPath(s.path) && valueEquals(r.value, s.value) && (r.time === s.time || Object.is(r.time, s.time));
    })
  );
}

/** An object node whose instances all have resources (an empty instance has no SenML record). */
function representable(node: LwM2MNode): boolean {
  if (node.kind === 'object') return [...node.instances.values()].every((i) => i.resources.size > 0);
  return true;
}

// ---------------------------------------------------------------------------------------------
// The device instance of formats.md §5.3 (Read /3/0)


// As printed in the digest; line breaks fall only between records.
const READ_3_0_JSON = `[{"bn":"/3/0/","n":"0","vs":"Open Mobile Alliance"},
 {"n":"1","vs":"Lightweight M2M Client"},{"n":"2","vs":"345000123"},{"n":"3","vs":"1.0"},
 {"n":"6/0","v":1},{"n":"6/1","v":5},{"n":"7/0","v":3800},{"n":"7/1","v":5000},
 {"n":"8/0","v":125},{"n":"8/1","v":900},{"n":"9","v":100},{"n":"10","v":15},
 {"n":"11/0","v":0},{"n":"13","v":1367491215},{"n":"14","vs":"+02:00"},{"n":"16","vs":"U"}]`.replace(/\n\s*/g, '');

const READ_3_0_CBOR = hex(`
90 a3 21 65 2f 33 2f 30 2f 00 61 30 03 74 4f 70 65 6e 20 4d 6f 62 69 6c 65 20 41 6c 6c 69 61 6e
63 65 a2 00 61 31 03 76 4c 69 67 68 74 77 65 69 67 68 74 20 4d 32 4d 20 43 6c 69 65 6e 74 a2 00
61 32 03 69 33 34 35 30 30 30 31 32 33 a2 00 61 33 03 63 31 2e 30 a2 00 63 36 2f 30 02 01 a2 00
63 36 2f 31 02 05 a2 00 63 37 2f 30 02 19 0e d8 a2 00 63 37 2f 31 02 19 13 88 a2 00 63 38 2f 30
02 18 7d a2 00 63 38 2f 31 02 19 03 84 a2 00 61 39 02 18 64 a2 00 62 31 30 02 0f a2 00 64 31 31
2f 30 02 00 a2 00 62 31 33 02 1a 51 82 42 8f a2 00 62 31 34 03 66 2b 30 32 3a 30 30 a2 00 62 31
36 03 61 55`);

// Bootstrap-Write PUT /0/1 (formats.md §5.3, same values as TLV 3.5(d))

const BS_WRITE_JSON =
  '[{"bn":"/0/1/","n":"0","vs":"coaps://lwm2m.example.com:5684"},{"n":"1","vb":false},{"n":"2","v":0},' +
  '{"n":"3","vd":"dXJuOmltZWk6NDkwMTU0MjAzMjM3NTE4"},{"n":"4","vd":""},{"n":"5","vd":"AAECAwQFBgcICQoLDA0ODw"},{"n":"10","v":101}]';

const BS_WRITE_CBOR = hex(`
87 a3 21 65 2f 30 2f 31 2f 00 61 30 03 78 1e 63 6f 61 70 73 3a 2f 2f 6c 77 6d 32 6d 2e 65 78 61
6d 70 6c 65 2e 63 6f 6d 3a 35 36 38 34 a2 00 61 31 04 f4 a2 00 61 32 02 00 a2 00 61 33 08 58 18
75 72 6e 3a 69 6d 65 69 3a 34 39 30 31 35 34 32 30 33 32 33 37 35 31 38 a2 00 61 34 08 40 a2 00
61 35 08 50 00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f a2 00 62 31 30 02 18 65`);

const CODECS: ReadonlyArray<readonly [string, SenmlCodec]> = [
  ['senml-json', senmlJsonCodec],
  ['senml-cbor', senmlCborCodec],
];

describe('lwm2m/formats/senml', () => {
  it('identifies both codecs', () => {
    expect([senmlJsonCodec.contentFormat, senmlJsonCodec.name, senmlJsonCodec.mediaType, senmlJsonCodec.composite]).to.deep.equal([110, 'senml-json', 'application/senml+json', true]);
    expect([senmlCborCodec.contentFormat, senmlCborCodec.name, senmlCborCodec.mediaType, senmlCborCodec.composite]).to.deep.equal([112, 'senml-cbor', 'application/senml+cbor', true]);
  });

  describe('spec vectors (formats.md §5.3)', () => {
    it('Read /3/0 in SenML JSON: encodes to the spec text and decodes back', () => {
      expect(text(senmlJsonCodec.encode([3, 0], device))).to.equal(READ_3_0_JSON);
      expect(nodeEquals(senmlJsonCodec.decode([3, 0], json(READ_3_0_JSON), testModels), device)).to.equal(true);
      // the line-broken form as printed decodes the same (whitespace between tokens)
      expect(nodeEquals(senmlJsonCodec.decode([3, 0], json(READ_3_0_JSON.replace(/\},\{/g, '},\n {')), testModels), device)).to.equal(true);
    });

    it('Read /3/0 in SenML CBOR: byte for byte, and back', () => {
      expect(toHex(senmlCborCodec.encode([3, 0], device))).to.equal(toHex(READ_3_0_CBOR));
      expect(nodeEquals(senmlCborCodec.decode([3, 0], READ_3_0_CBOR, testModels), device)).to.equal(true);
    });

    it('Read /3/0 without a model keeps SenML types (time reads as integer)', () => {
      const node = senmlCborCodec.decode([3, 0], READ_3_0_CBOR);
      expect(node.kind).to.equal('instance');
      const r13 = node.kind === 'instance' ? node.resources.get(13) : undefined;
      expect(r13).to.deep.equal(N.resource(13, V.integer(1367491215)));
    });

    it('Bootstrap-Write /0/1 in SenML JSON: exact text', () => {
      expect(text(senmlJsonCodec.encode([0, 1], security))).to.equal(BS_WRITE_JSON);
      expect(nodeEquals(senmlJsonCodec.decode([0, 1], json(BS_WRITE_JSON), testModels), security)).to.equal(true);
    });

    it('Bootstrap-Write /0/1 in SenML CBOR: exact 124 bytes', () => {
      expect(BS_WRITE_CBOR.length).to.equal(124);
      expect(toHex(senmlCborCodec.encode([0, 1], security))).to.equal(toHex(BS_WRITE_CBOR));
      expect(nodeEquals(senmlCborCodec.decode([0, 1], BS_WRITE_CBOR, testModels), security)).to.equal(true);
    });

    it('objlnk record uses "vlo" in JSON and the text key "vlo" in CBOR', () => {
      const inst = N.instance(1, [N.resource(17, V.objlnk(21, 1))]);
      expect(text(senmlJsonCodec.encode([0, 1], inst))).to.equal('[{"bn":"/0/1/","n":"17","vlo":"21:1"}]');
      const cbor = hex('81 a3 21 65 2f 30 2f 31 2f 00 62 31 37 63 76 6c 6f 64 32 31 3a 31');
      expect(toHex(senmlCborCodec.encode([0, 1], inst))).to.equal(toHex(cbor));
      expect(nodeEquals(senmlCborCodec.decode([0, 1], cbor), inst)).to.equal(true);
      expect(nodeEquals(senmlJsonCodec.decode([0, 1], json('[{"bn":"/0/1/","n":"17","vlo":"21:1"}]')), inst)).to.equal(true);
    });

    it('historical notification: bt stays in force, times resolve to bt + t', () => {
      const body = '[{"bn":"/72/","bt":25462634,"n":"1/2","v":22.4,"t":-5},{"n":"1/2","v":22.9,"t":-30},{"n":"1/2","v":24.1,"t":-50}]';
      const recs = senmlJsonCodec.decodeRecords(json(body));
      expect(recs).to.deep.equal([
        { path: [72, 1, 2], value: V.float(22.4), time: 25462629 },
        { path: [72, 1, 2], value: V.float(22.9), time: 25462604 },
        { path: [72, 1, 2], value: V.float(24.1), time: 25462584 },
      ]);
      // a node cannot hold three values for one resource
      expect(reason(() => senmlJsonCodec.decode([72], json(body)))).to.equal('duplicate');
    });

    it('Read-Composite request bodies', () => {
      const body = '[{"n":"/3/0/0"},{"n":"/3/0/9"},{"n":"/1/0/1"}]';
      const paths = decodeSenmlJsonPaths(json(body));
      expect(paths).to.deep.equal([[3, 0, 0], [3, 0, 9], [1, 0, 1]]);
      expect(text(encodeSenmlJsonPaths(paths))).to.equal(body);
      expect(decodeSenmlJsonPaths(json('[{"n":"/"}]'))).to.deep.equal([[]]);
      expect(decodeSenmlJsonPaths(json('[{"n":"/1"}]'))).to.deep.equal([[1]]);
      expect(decodeSenmlJsonPaths(json('[{"n":"/1/0"},{"n":"/1/2"}]'))).to.deep.equal([[1, 0], [1, 2]]);
      expect(decodeSenmlJsonPaths(json('[{"bn":"/4/0/","n":"0"},{"n":"1"},{"n":"2"},{"bn":"/6/","n":"0"}]'))).to.deep.equal([
        [4, 0, 0], [4, 0, 1], [4, 0, 2], [6, 0],
      ]);
      expect(text(encodeSenmlJsonPaths([[]]))).to.equal('[{"n":"/"}]');
      // the same through the codec objects
      expect(senmlJsonCodec.decodePaths(senmlJsonCodec.encodePaths([[1], [3, 0, 0]]))).to.deep.equal([[1], [3, 0, 0]]);
    });

    it('Read-Composite request bodies in SenML CBOR', () => {
      // [{0: "/3/0/0"}, {0: "/"}]
      const cbor = hex('82 a1 00 66 2f 33 2f 30 2f 30 a1 00 61 2f');
      expect(toHex(encodeSenmlCborPaths([[3, 0, 0], []]))).to.equal(toHex(cbor));
      expect(decodeSenmlCborPaths(cbor)).to.deep.equal([[3, 0, 0], []]);
      expect(senmlCborCodec.decodePaths(senmlCborCodec.encodePaths([[1, 0], [6]]))).to.deep.equal([[1, 0], [6]]);
    });

    it('Read-Composite response: decodes with the model, and our encodeRecords writes the same text', () => {
      const body = '[{"n":"/3/0/0","vs":"Open Mobile Alliance"},{"n":"/3/0/9","v":95},{"n":"/1/0/1","v":86400}]';
      const recs = senmlJsonCodec.decodeRecords(json(body), testModels);
      expect(recs).to.deep.equal([
        { path: [3, 0, 0], value: V.string('Open Mobile Alliance') },
        { path: [3, 0, 9], value: V.integer(95) },
        { path: [1, 0, 1], value: V.integer(86400) },
      ]);
      expect(text(senmlJsonCodec.encodeRecords(recs))).to.equal(body);
    });

    it('Write-Composite body decodes via decodeRecords and re-encodes to the same text', () => {
      const body = '[{"n":"/3311/0/5850","vb":false},{"n":"/3311/1/5850","vb":false},{"n":"/3311/2/5851","v":20},{"n":"/3308/0/5900","v":18}]';
      const recs = senmlJsonCodec.decodeRecords(json(body));
      expect(recs).to.deep.equal([
        { path: [3311, 0, 5850], value: V.boolean(false) },
        { path: [3311, 1, 5850], value: V.boolean(false) },
        { path: [3311, 2, 5851], value: V.integer(20) },
        { path: [3308, 0, 5900], value: V.integer(18) },
      ]);
      expect(text(senmlJsonCodec.encodeRecords(recs))).to.equal(body);
      const viaCbor = senmlCborCodec.decodeRecords(senmlCborCodec.encodeRecords(recs));
      expect(recordsEqual(viaCbor, recs)).to.equal(true);
    });

    it('Send body decodes via decodeRecords (floats and a negative integer)', () => {
      const body = '[{"n":"/6/0/0","v":43.61092},{"n":"/6/0/1","v":3.87723},{"n":"/4/0/2","v":-49}]';
      const recs = senmlJsonCodec.decodeRecords(json(body));
      expect(recs).to.deep.equal([
        { path: [6, 0, 0], value: V.float(43.61092) },
        { path: [6, 0, 1], value: V.float(3.87723) },
        { path: [4, 0, 2], value: V.integer(-49) },
      ]);
      expect(text(senmlJsonCodec.encodeRecords(recs))).to.equal(body);
    });

    it('Bootstrap-Pack style body with bn changes (bootstrap.md §3)', () => {
      const body = `[{"bn":"/0/1/","n":"0","vs":"coaps://dm.example.com:5684"},
 {"n":"1","vb":false},{"n":"2","v":0},
 {"n":"3","vd":"Y2xpZW50LTE"},{"n":"5","vd":"AAECAwQFBgcICQoLDA0ODw"},
 {"n":"10","v":101},
 {"bn":"/1/0/","n":"0","v":101},{"n":"1","v":86400},{"n":"6","vb":true},{"n":"7","vs":"U"}]`;
      const recs = senmlJsonCodec.decodeRecords(json(body), testModels);
      expect(recs.map((r) => formatPath(r.path))).to.deep.equal(['/0/1/0', '/0/1/1', '/0/1/2', '/0/1/3', '/0/1/5', '/0/1/10', '/1/0/0', '/1/0/1', '/1/0/6', '/1/0/7']);
      expect(recs[3]?.value).to.deep.equal(V.opaque(utf8.encode('client-1')));
      expect(recs[9]?.value).to.deep.equal(V.string('U'));
    });
  });

  describe('record plan at every level', () => {
    for (const [name, codec] of CODECS) {
      it(`${name}: decodes its own output at each level`, () => {
        const cases: Array<[Path, LwM2MNode]> = [
          [[3], N.object(3, [device])],
          [[3, 0], device],
          [[3, 0, 9], N.resource(9, V.integer(100))],
          [[3, 0, 6], N.multi(6, [[0, V.integer(1)], [1, V.integer(5)]])],
          [[3, 0, 6, 1], N.resourceInstance(1, V.integer(5))],
        ];
        for (const [p, node] of cases) expect(nodeEquals(codec.decode(p, codec.encode(p, node), testModels), node), formatPath(p)).to.equal(true);
      });
    }

    it('bn is the request path; a trailing slash only when relative names follow', () => {
      expect(text(senmlJsonCodec.encode([3, 0, 9], N.resource(9, V.integer(100))))).to.equal('[{"bn":"/3/0/9","v":100}]');
      expect(text(senmlJsonCodec.encode([3, 0, 6, 1], N.resourceInstance(1, V.integer(5))))).to.equal('[{"bn":"/3/0/6/1","v":5}]');
      expect(text(senmlJsonCodec.encode([3, 0, 6], N.multi(6, [[0, V.integer(1)], [1, V.integer(5)]])))).to.equal('[{"bn":"/3/0/6/","n":"0","v":1},{"n":"1","v":5}]');
      expect(text(senmlJsonCodec.encode([3], N.object(3, [N.instance(0, [N.resource(9, V.integer(100)), N.multi(6, [[0, V.integer(1)]])])])))).to.equal(
        '[{"bn":"/3/","n":"0/9","v":100},{"n":"0/6/0","v":1}]',
      );
      expect(text(senmlJsonCodec.encode([3, 0], N.instance(0, [])))).to.equal('[]');
      // the CBOR single resource: [{-2: "/3/0/9", 2: 100}]
      expect(toHex(senmlCborCodec.encode([3, 0, 9], N.resource(9, V.integer(100))))).to.equal('81a221662f332f302f39021864');
    });

    it('reads every way of naming a single resource', () => {
      const want = N.resource(9, V.integer(100));
      for (const body of [
        '[{"bn":"/3/0/9","v":100}]',
        '[{"n":"/3/0/9","v":100}]',
        '[{"bn":"/3/0/","n":"9","v":100}]',
        '[{"bn":"/3/0","n":"/9","v":100}]',
        '[{"bn":"/3/","n":"0/9","v":100}]',
        '[{"n":"3/0/9","v":100}]', // no leading slash
        '[{"n":"/3/0/9/","v":100}]', // trailing slash
        ' [ { "n" : "/3/0/9" , "v" : 100 } ] ',
      ]) {
        expect(nodeEquals(senmlJsonCodec.decode([3, 0, 9], json(body), testModels), want), body).to.equal(true);
      }
    });

    it('empty multiple resource at its path needs the model to say it is multiple', () => {
      expect(nodeEquals(senmlJsonCodec.decode([3, 0, 6], json('[]'), testModels), N.multi(6, []))).to.equal(true);
      expect(reason(() => senmlJsonCodec.decode([3, 0, 9], json('[]'), testModels))).to.equal('invalid');
    });

    it('encodeRecords: absolute names, no bn, time as t', () => {
      const recs: LeafRecord[] = [
        { path: [3303, 0, 5700], value: V.float(21.5), time: 1700000000 },
        { path: [3, 0, 6, 1], value: V.integer(5) },
      ];
      expect(text(senmlJsonCodec.encodeRecords(recs))).to.equal('[{"n":"/3303/0/5700","v":21.5,"t":1700000000},{"n":"/3/0/6/1","v":5}]');
      // [{0: "/3303/0/5700", 2: 21.5 (half f9 4d60), 6: 1700000000}, ...]
      expect(toHex(senmlCborCodec.encodeRecords(recs))).to.equal(
        '82' + 'a3' + '00' + '6c' + toHex(utf8.encode('/3303/0/5700')) + '02' + 'f94d60' + '06' + '1a6553f100' + 'a2' + '00' + '68' + toHex(utf8.encode('/3/0/6/1')) + '02' + '05',
      );
      for (const [, codec] of CODECS) expect(recordsEqual(codec.decodeRecords(codec.encodeRecords(recs)), recs)).to.equal(true);
    });
  });

  describe('values', () => {
    it('keeps 64-bit integers exact in JSON (2^63-1, -2^63, 2^64-1)', () => {
      const recs: LeafRecord[] = [
        { path: [0, 0, 2], value: V.integer(2n ** 63n - 1n) },
        { path: [0, 0, 6], value: V.integer(-(2n ** 63n)) },
        { path: [0, 0, 13], value: V.unsigned(2n ** 64n - 1n) },
      ];
      const out = text(senmlJsonCodec.encodeRecords(recs));
      expect(out).to.equal('[{"n":"/0/0/2","v":9223372036854775807},{"n":"/0/0/6","v":-9223372036854775808},{"n":"/0/0/13","v":18446744073709551615}]');
      expect(recordsEqual(senmlJsonCodec.decodeRecords(json(out), testModels), recs)).to.equal(true);
      // without a model the sizes decide: int64 range → integer, above → unsigned
      expect(senmlJsonCodec.decodeRecords(json(out)).map((r) => r.value)).to.deep.equal([V.integer(2n ** 63n - 1n), V.integer(-(2n ** 63n)), V.unsigned(2n ** 64n - 1n)]);
      for (const [, codec] of CODECS) expect(recordsEqual(codec.decodeRecords(codec.encodeRecords(recs), testModels), recs)).to.equal(true);
    });

    it('writes floats so that they read back as floats (2.0, -0.0, exponents)', () => {
      const cases: Array<[number, string]> = [
        [2, '2.0'],
        [-0, '-0.0'],
        [1.5, '1.5'],
        [1e21, '1e+21'],
        [1e-7, '1e-7'],
        [-123456789012, '-123456789012.0'],
      ];
      for (const [x, t] of cases) {
        const out = text(senmlJsonCodec.encodeRecords([{ path: [1, 2, 3], value: V.float(x) }]));
        expect(out).to.equal(`[{"n":"/1/2/3","v":${t}}]`);
        const back = senmlJsonCodec.decodeRecords(json(out))[0]?.value;
        expect(back?.type).to.equal('float');
        expect(Object.is(back?.value, x)).to.equal(true);
      }
      const nanErr = codecError(() => senmlJsonCodec.encodeRecords([{ path: [1, 2, 3], value: V.float(NaN) }]));
      expect([nanErr.reason, nanErr.path]).to.deep.equal(['unsupported', '/1/2/3']);
      expect(reason(() => senmlJsonCodec.encodeRecords([{ path: [1, 2, 3], value: V.float(Infinity) }]))).to.equal('unsupported');
      // CBOR has NaN and infinities
      const nan = senmlCborCodec.decodeRecords(senmlCborCodec.encodeRecords([{ path: [1, 2, 3], value: V.float(NaN) }]))[0]?.value;
      expect(nan?.type === 'float' && Number.isNaN(nan.value)).to.equal(true);
    });

    it('types v by the model: integer, unsigned, float, time', () => {
      const model = mapModel(new Map<string, ValueType>([['9/0', 'integer'], ['9/1', 'unsigned'], ['9/2', 'float'], ['9/3', 'time']]));
      const recs = senmlJsonCodec.decodeRecords(json('[{"bn":"/9/0/","n":"0","v":-7},{"n":"1","v":7},{"n":"2","v":7},{"n":"3","v":1367491215.0}]'), model);
      expect(recs.map((r) => r.value)).to.deep.equal([V.integer(-7), V.unsigned(7), V.float(7), V.time(1367491215)]);
      // CBOR: an integral float for an integer resource is accepted, a fraction is not
      const viaCbor = senmlCborCodec.decodeRecords(hex('81 a2 00 66 2f 39 2f 30 2f 30 02 f9 40 00'), model); // {0:"/9/0/0", 2: 2.0}
      expect(viaCbor[0]?.value).to.deep.equal(V.integer(2));
      expect(reason(() => senmlJsonCodec.decodeRecords(json('[{"n":"/9/0/0","v":1.5}]'), model))).to.equal('type_mismatch');
      expect(reason(() => senmlJsonCodec.decodeRecords(json('[{"n":"/9/0/1","v":-1}]'), model))).to.equal('out_of_range');
      expect(reason(() => senmlJsonCodec.decodeRecords(json('[{"n":"/9/0/0","v":9223372036854775808}]'), model))).to.equal('out_of_range');
    });

    it('applies a base value bv to v', () => {
      const recs = senmlJsonCodec.decodeRecords(json('[{"bn":"/3/0/","bv":10,"n":"9","v":5},{"n":"10","v":-3}]'), testModels);
      expect(recs.map((r) => r.value)).to.deep.equal([V.integer(15), V.integer(7)]);
    });

    it('vs is string, corelnk or (leniently) objlnk per model; string without', () => {
      const model = mapModel(new Map<string, ValueType>([['9/0', 'string'], ['9/1', 'corelnk'], ['9/2', 'objlnk']]));
      const body = '[{"bn":"/9/0/","n":"0","vs":"a"},{"n":"1","vs":"</3303/0/5700>;gt=23"},{"n":"2","vs":"21:1"},{"n":"3","vs":"x"}]';
      expect(senmlJsonCodec.decodeRecords(json(body), model).map((r) => r.value)).to.deep.equal([
        V.string('a'),
        V.corelnk('</3303/0/5700>;gt=23'),
        V.objlnk(21, 1),
        V.string('x'),
      ]);
      expect(text(senmlJsonCodec.encodeRecords([{ path: [9, 0, 1], value: V.corelnk('</1>') }]))).to.equal('[{"n":"/9/0/1","vs":"</1>"}]');
    });

    it('accepts the null object link in both spellings', () => {
      for (const v of ['65535:65535', 'FFFF:FFFF', 'ffff:ffff']) {
        const rec = senmlJsonCodec.decodeRecords(json(`[{"n":"/0/0/17","vlo":"${v}"}]`), testModels)[0];
        expect(rec?.value).to.deep.equal({ type: 'objlnk', value: NULL_OBJLNK });
      }
      expect(reason(() => senmlJsonCodec.decodeRecords(json('[{"n":"/0/0/17","vlo":"21-1"}]')))).to.equal('invalid');
      expect(reason(() => senmlJsonCodec.decodeRecords(json('[{"n":"/0/0/17","vlo":"65536:0"}]')))).to.equal('invalid');
    });

    it('opaque: emits base64url without padding, reads any base64', () => {
      const bytes = Uint8Array.from([0xfb, 0xff, 0xbf, 0x01]);
      expect(text(senmlJsonCodec.encodeRecords([{ path: [0, 0, 3], value: V.opaque(bytes) }]))).to.equal('[{"n":"/0/0/3","vd":"-_-_AQ"}]');
      for (const b64 of ['-_-_AQ', '+/+/AQ==', '+/+/AQ', '-_-_AQ==']) {
        expect(senmlJsonCodec.decodeRecords(json(`[{"n":"/0/0/3","vd":"${b64}"}]`), testModels)[0]?.value).to.deep.equal(V.opaque(bytes));
      }
      // CBOR vd is a byte string: {0: "/0/0/3", 8: h'fbffbf01'}
      expect(toHex(senmlCborCodec.encodeRecords([{ path: [0, 0, 3], value: V.opaque(bytes) }]))).to.equal('81a200662f302f302f330844fbffbf01');
    });

    it('JSON strings: escapes and non-ASCII survive', () => {
      const s = 'quote " backslash \\ tab \t nl \n ctl \u0001 é 漢 😀 /';
      const out = senmlJsonCodec.encodeRecords([{ path: [3, 0, 0], value: V.string(s) }]);
      expect(senmlJsonCodec.decodeRecords(out)[0]?.value).to.deep.equal(V.string(s));
      expect(senmlJsonCodec.decodeRecords(json('[{"n":"\\/3\\/0\\/0","vs":"\\u00e9\\ud83d\\ude00\\/\\b\\f\\r"}]'))[0]).to.deep.equal({
        path: [3, 0, 0],
        value: V.string('é😀/\b\f\r'),
      });
    });

    it('ignores unknown and unused fields, including nested ones', () => {
      const body = '[{"bver":10,"bu":"Cel","n":"/3/0/9","u":"%","v":100,"ut":5,"x":{"a":[1,2,{"b":null}],"c":true}}]';
      expect(senmlJsonCodec.decodeRecords(json(body))).to.deep.equal([{ path: [3, 0, 9], value: V.integer(100) }]);
      // CBOR: bu (-4) and an unknown text key are ignored
      const cbor = hex('81 a4 23 63 43 65 6c 00 66 2f 33 2f 30 2f 39 02 18 64 61 78 f6');
      expect(senmlCborCodec.decodeRecords(cbor)).to.deep.equal([{ path: [3, 0, 9], value: V.integer(100) }]);
    });
  });

  describe('malformed input', () => {
    const J = (s: string) => () => senmlJsonCodec.decodeRecords(json(s));
    const Jm = (s: string) => () => senmlJsonCodec.decodeRecords(json(s), testModels);
    const C = (h: string) => () => senmlCborCodec.decodeRecords(hex(h));

    it('not JSON', () => {
      expect(reason(J('hello'))).to.equal('invalid');
      expect(reason(J(''))).to.equal('truncated');
      expect(reason(J('['))).to.equal('truncated');
      expect(reason(J('[{"n":"/3/0/9","v":1}'))).to.equal('truncated');
      expect(reason(J('[{"n":"/3/0/9","v":1},]'))).to.equal('invalid');
      expect(reason(J('[{"n":"/3/0/9","v":01}]'))).to.equal('invalid');
      expect(reason(J('[{"n":"/3/0/9","v":1.}]'))).to.equal('invalid');
      expect(reason(J('[{"n":"/3/0/9","v":-}]'))).to.equal('invalid');
      expect(reason(J('[{"n":"/3/0/9\u0001","v":1}]'))).to.equal('invalid');
      expect(reason(J('[{"n":"/3/0/9\\x","v":1}]'))).to.equal('invalid');
      expect(reason(J('[{"n":"/3/0/9","v":1}] x'))).to.equal('trailing');
      expect(reason(() => senmlJsonCodec.decodeRecords(Uint8Array.of(0x5b, 0xff, 0x5d)))).to.equal('invalid');
      const e = codecError(J('[{"n":"/3/0/9" "v":1}]'));
      expect(e.offset).to.equal(15);
    });

    it('JSON that is not an array of objects', () => {
      expect(reason(J('{"n":"/3/0/9","v":1}'))).to.equal('invalid');
      expect(reason(J('"x"'))).to.equal('invalid');
      expect(reason(J('[1]'))).to.equal('invalid');
      expect(reason(J('[[]]'))).to.equal('invalid');
      expect(reason(J('[null]'))).to.equal('invalid');
    });

    it('fields of the wrong JSON type', () => {
      expect(reason(J('[{"bn":5,"v":1}]'))).to.equal('invalid');
      expect(reason(J('[{"n":"/3/0/9","v":"1"}]'))).to.equal('invalid');
      expect(reason(J('[{"n":"/3/0/9","vb":1}]'))).to.equal('invalid');
      expect(reason(J('[{"n":"/3/0/9","vs":null}]'))).to.equal('invalid');
      expect(reason(J('[{"n":"/3/0/9","vd":[]}]'))).to.equal('invalid');
      expect(reason(J('[{"n":"/3/0/9","v":1,"t":"now"}]'))).to.equal('invalid');
    });

    it('no value or two values', () => {
      expect(reason(J('[{"n":"/3/0/9"}]'))).to.equal('invalid');
      expect(reason(J('[{"n":"/3/0/9","v":1,"vs":"1"}]'))).to.equal('invalid');
      expect(reason(C('81 a3 00 66 2f 33 2f 30 2f 39 02 01 04 f5'))).to.equal('invalid');
      expect(reason(C('81 a1 00 66 2f 33 2f 30 2f 39'))).to.equal('invalid');
    });

    it('bad names, and bn+n that is not a resource path', () => {
      const e = codecError(J('[{"n":"/3/x/9","v":1}]'));
      expect(e.reason).to.equal('bad_path');
      expect(e.message).to.contain('/3/x/9');
      for (const n of ['/3/0/9/1/2', '/3/00/9', '/3//9', '/3/0/65535', '/3/0/99999999999', '/-3/0/9', '/3/0/9a', '//3/0/9', '']) {
        expect(reason(J(`[{"n":"${n}","v":1}]`)), n).to.equal('bad_path');
      }
      expect(reason(J('[{"v":1}]'))).to.equal('bad_path');
      expect(reason(J('[{"n":"/3","v":1}]'))).to.equal('bad_path');
      expect(reason(J('[{"bn":"/3/0/","n":"","v":1}]'))).to.equal('bad_path');
      expect(reason(J('[{"n":"/","v":1}]'))).to.equal('bad_path');
      // pure concatenation: "/3/0" + "9" is "/3/09", not "/3/0/9"
      expect(reason(J('[{"bn":"/3/0","n":"9","v":1}]'))).to.equal('bad_path');
      expect(reason(() => decodeSenmlJsonPaths(json('[{"n":"/3/a"}]')))).to.equal('bad_path');
    });

    it('records outside the request path', () => {
      const e = codecError(() => senmlJsonCodec.decode([3, 0], json('[{"n":"/3/0/9","v":1},{"n":"/3/1/9","v":1}]')));
      expect(e.reason).to.equal('bad_path');
      expect(e.path).to.equal('/3/1/9');
      expect(reason(() => senmlCborCodec.decode([3, 0, 9], hex('81 a2 00 66 2f 33 2f 30 2f 38 02 01')))).to.equal('bad_path');
      expect(reason(() => senmlJsonCodec.decode([], json('[]')))).to.equal('bad_path');
    });

    it('values that do not fit the model name the path', () => {
      const cases = [
        '[{"n":"/3/0/9","vs":"100"}]',
        '[{"n":"/3/0/0","v":1}]',
        '[{"n":"/3/0/0","vb":true}]',
        '[{"n":"/3/0/0","vd":"AA"}]',
        '[{"n":"/3/0/0","vlo":"1:1"}]',
        '[{"n":"/0/0/3","vs":"AA=="}]',
        '[{"n":"/0/0/1","v":1}]',
      ];
      for (const body of cases) {
        const e = codecError(Jm(body));
        expect(e.reason, body).to.equal('type_mismatch');
        expect(e.path, body).to.equal(body.slice(7, body.indexOf('"', 7)));
      }
    });

    it('invalid base64', () => {
      for (const b of ['abc$', 'A', 'AB=C', 'AAAA=']) {
        const e = codecError(J(`[{"n":"/0/0/3","vd":"${b}"}]`));
        expect(e.reason, b).to.equal('invalid');
        expect(e.path).to.equal('/0/0/3');
      }
    });

    it('numbers out of range for a double', () => {
      expect(reason(J('[{"n":"/3/0/9","v":1e400}]'))).to.equal('out_of_range');
      expect(reason(J(`[{"n":"/3/0/9","v":${'9'.repeat(400)}}]`))).to.equal('out_of_range');
    });

    it('invalid CBOR', () => {
      expect(reason(C(''))).to.equal('truncated');
      expect(reason(C('a1'))).to.equal('truncated');
      expect(reason(C('81'))).to.equal('truncated');
      expect(reason(C('ff'))).to.equal('invalid');
      expect(reason(C('1c'))).to.equal('invalid');
      expect(reason(C('80 00'))).to.equal('trailing');
      expect(reason(C('a0'))).to.equal('invalid'); // a map, not an array
      expect(reason(C('81 01'))).to.equal('invalid'); // record not a map
      expect(reason(C('81 a2 00 63 2f 33 ff 02 01'))).to.equal('invalid'); // bad UTF-8 in n
    });

    it('CBOR fields of the wrong type', () => {
      expect(reason(C('81 a2 00 01 02 01'))).to.equal('invalid'); // n is an integer
      expect(reason(C('81 a2 00 66 2f 33 2f 30 2f 39 02 61 31'))).to.equal('invalid'); // v is text
      expect(reason(C('81 a2 00 66 2f 33 2f 30 2f 39 08 61 31'))).to.equal('invalid'); // vd is text
      expect(reason(C('81 a2 00 66 2f 33 2f 30 2f 39 04 01'))).to.equal('invalid'); // vb is an integer
    });

    it('CBOR map with keys that are neither labels nor text', () => {
      expect(reason(C('81 a2 00 66 2f 33 2f 30 2f 39 41 02 01'))).to.equal('invalid'); // byte-string key
      expect(reason(C('81 a2 00 66 2f 33 2f 30 2f 39 f9 40 00 01'))).to.equal('invalid'); // float key
      expect(reason(C('81 a2 00 66 2f 33 2f 30 2f 39 80 01'))).to.equal('invalid'); // array key
    });

    it('too deep nesting', () => {
      const deep = '['.repeat(40) + ']'.repeat(40);
      expect(reason(J(`[{"n":"/3/0/9","v":1,"x":${deep}}]`))).to.equal('too_deep');
      expect(reason(J(deep))).to.equal('invalid');
      expect(reason(() => senmlCborCodec.decodeRecords(Uint8Array.from([...Array(40).fill(0x81), 0x00])))).to.equal('too_deep');
    });

    it('duplicates', () => {
      expect(reason(J('[{"n":"/3/0/9","n":"/3/0/10","v":1}]'))).to.equal('duplicate');
      expect(reason(J('[{"n":"/3/0/9","v":1,"v":2}]'))).to.equal('duplicate');
      expect(reason(C('81 a3 00 66 2f 33 2f 30 2f 39 02 01 02 02'))).to.equal('duplicate');
      expect(reason(J('[{"n":"/3/0/9","v":1},{"n":"/3/0/9","v":2}]'))).to.equal('duplicate');
      expect(reason(() => senmlJsonCodec.decode([3, 0], json('[{"n":"/3/0/6/0","v":1},{"bn":"/3/0/6/","n":"0","v":2}]')))).to.equal('duplicate');
      expect(reason(() => senmlJsonCodec.decode([3, 0], json('[{"n":"/3/0/6","v":1},{"n":"/3/0/6/0","v":2}]')))).to.equal('duplicate');
      // the same path at different times is historical data, not a duplicate
      expect(senmlJsonCodec.decodeRecords(json('[{"n":"/3/0/9","v":1,"t":1},{"n":"/3/0/9","v":2,"t":2}]'))).to.have.length(2);
    });

    it('must-understand fields are refused', () => {
      expect(reason(J('[{"n":"/3/0/9","v":1,"foo_":1}]'))).to.equal('invalid');
      expect(reason(C('81 a3 00 66 2f 33 2f 30 2f 39 02 01 64 66 6f 6f 5f 01'))).to.equal('invalid');
    });

    it('values in a composite request body are refused', () => {
      expect(reason(() => decodeSenmlJsonPaths(json('[{"n":"/3/0/9","v":1}]')))).to.equal('invalid');
      expect(reason(() => decodeSenmlCborPaths(hex('81 a2 00 66 2f 33 2f 30 2f 39 02 01')))).to.equal('invalid');
    });

    it('encoding refuses nodes at the wrong path and records that are not leaves', () => {
      expect(reason(() => senmlJsonCodec.encode([3, 0], N.resource(9, V.integer(1))))).to.equal('bad_path');
      expect(reason(() => senmlCborCodec.encode([3, 1], device))).to.equal('bad_path');
      expect(reason(() => senmlJsonCodec.encodeRecords([{ path: [3, 0], value: V.integer(1) }]))).to.equal('bad_path');
      expect(reason(() => senmlCborCodec.encodeRecords([{ path: [3, 0, 70000], value: V.integer(1) }]))).to.equal('bad_path');
      expect(reason(() => encodeSenmlJsonPaths([[1, 2, 3, 4, 5]]))).to.equal('bad_path');
      expect(reason(() => senmlJsonCodec.encode([3, 0], N.instance(0, [N.resource(-1, V.integer(1))])))).to.equal('bad_path');
    });
  });

  describe('properties', () => {
    for (const [name, codec] of CODECS) {
      it(`${name}: encode → decode gives an equal node (model gives the type)`, () => {
        fc.assert(
          fc.property(
            fc.constantFrom(...VALUE_TYPES).chain((type) => nodeAtPath({ type, nonEmptyMulti: true }).map((x) => ({ ...x, type }))),
            ({ path, node, type }) => {
              fc.pre(representable(node));
              const back = codec.decode(path, codec.encode(path, node), uniformModel(type));
              return nodeEquals(back, node);
            },
          ),
          { numRuns: 300 },
        );
      });

      it(`${name}: without a model, the types SenML tells apart come back as they were`, () => {
        const told: ValueType[] = ['string', 'boolean', 'opaque', 'objlnk', 'integer', 'float'];
        fc.assert(
          fc.property(
            fc.constantFrom(...told).chain((type) => nodeAtPath({ type, nonEmptyMulti: true })),
            ({ path, node }) => {
              fc.pre(representable(node));
              return nodeEquals(codec.decode(path, codec.encode(path, node)), node);
            },
          ),
          { numRuns: 200 },
        );
      });

      it(`${name}: encodeRecords → decodeRecords round-trips records of any objects, with times`, () => {
        const rec = fc.record({
          o: id(),
          i: id(),
          r: id(),
          ri: fc.option(id(), { nil: undefined }),
          type: fc.constantFrom(...VALUE_TYPES),
          time: fc.option(fc.oneof(fc.integer({ min: -(2 ** 40), max: 2 ** 40 }), fc.double({ noNaN: true, noDefaultInfinity: true })), { nil: undefined }),
        });
        fc.assert(
          fc.property(
            fc.uniqueArray(rec, { selector: (x) => `${x.o}/${x.r}`, maxLength: 8 }).chain((xs) =>
              fc.tuple(fc.constant(xs), fc.tuple(...xs.map((x) => valueOf(x.type)))),
            ),
            ([xs, values]) => {
              const records: LeafRecord[] = xs.map((x, k) => {
                const path = x.ri === undefined ? [x.o, x.i, x.r] : [x.o, x.i, x.r, x.ri];
                const value = values[k] as Value;
                return x.time === undefined ? { path, value } : { path, value, time: x.time };
              });
              const model = mapModel(new Map(xs.map((x) => [`${x.o}/${x.r}`, x.type] as const)));
              return recordsEqual(codec.decodeRecords(codec.encodeRecords(records), model), records);
            },
          ),
          { numRuns: 200 },
        );
      });

      it(`${name}: Read-Composite paths round-trip`, () => {
        fc.assert(
          fc.property(fc.array(fc.array(id(), { maxLength: 4 }), { maxLength: 6 }), (paths) => {
            expect(codec.decodePaths(codec.encodePaths(paths))).to.deep.equal(paths);
          }),
          { numRuns: 100 },
        );
      });
    }

    /** Runs every decoder entry point; anything but success or CodecError fails the property. */
    function onlyCodecErrors(codec: SenmlCodec, bytes: Uint8Array): boolean {
      const attempts: Array<() => unknown> = [
        () => codec.decodeRecords(bytes),
        () => codec.decodeRecords(bytes, testModels),
        () => codec.decode([3, 0], bytes, testModels),
        () => codec.decode([0], bytes),
        () => codec.decodePaths(bytes),
      ];
      for (const f of attempts) {
        try {
          f();
        } catch (e) {
          if (!(e instanceof CodecError)) throw e;
        }
      }
      return true;
    }

    const mutate = (seed: Uint8Array) =>
      fc
        .array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.constantFrom('set', 'insert', 'delete', 'truncate')), { minLength: 1, maxLength: 6 })
        .map((ops) => {
          const b = [...seed];
          for (const [at, v, op] of ops) {
            const k = b.length === 0 ? 0 : at % b.length;
            if (op === 'set' && b.length > 0) b[k] = v;
            else if (op === 'insert') b.splice(k, 0, v);
            else if (op === 'delete') b.splice(k, 1);
            else b.length = k;
          }
          return Uint8Array.from(b);
        });

    it('fuzz: random and mutated SenML JSON never throws anything but CodecError', () => {
      const jsonish = fc
        .array(fc.constantFrom(...'[]{}",:0123456789-.eE+/ nvbstdlo_ruefalsFAQ=\\'.split(''), '"n":"/3/0/9"', '"v":', '"vs":"', '"bn":"/3/0/"', 'true', 'null'), { maxLength: 60 })
        .map((parts) => json(parts.join('')));
      const seeds = [json(READ_3_0_JSON), json(BS_WRITE_JSON), json('[{"n":"/3/0/9","v":1e3,"x":[{"a":"\\u0041"}]}]')];
      fc.assert(
        fc.property(fc.oneof(fc.uint8Array({ maxLength: 200 }), jsonish, fc.constantFrom(...seeds).chain(mutate)), (bytes) => onlyCodecErrors(senmlJsonCodec, bytes)),
        { numRuns: 300 },
      );
    });

    it('fuzz: random and mutated SenML CBOR never throws anything but CodecError', () => {
      const seeds = [READ_3_0_CBOR, BS_WRITE_CBOR, hex('81 a3 21 65 2f 30 2f 31 2f 00 62 31 37 63 76 6c 6f 64 32 31 3a 31')];
      fc.assert(
        fc.property(fc.oneof(fc.uint8Array({ maxLength: 200 }), fc.constantFrom(...seeds).chain(mutate)), (bytes) => onlyCodecErrors(senmlCborCodec, bytes)),
        { numRuns: 300 },
      );
    });

    it('fuzz: arbitrary values encode in both formats without non-CodecError failures', () => {
      fc.assert(
        fc.property(anyValue, (value) => {
          for (const [, codec] of CODECS) {
            try {
              codec.encodeRecords([{ path: [1, 2, 3], value }]);
            } catch (e) {
              if (!(e instanceof CodecError)) throw e;
            }
          }
          return true;
        }),
        { numRuns: 100 },
      );
    });
  });
});
