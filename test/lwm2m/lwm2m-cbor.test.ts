import { expect } from 'chai';
import fc from 'fast-check';
import { CborFloat, type CborItem, CborMap, decodeCbor, encodeCbor } from '../../src/lwm2m/cbor.js';
import { CodecError, type CodecErrorReason } from '../../src/lwm2m/errors.js';
import { lwm2mCborCodec as codec } from '../../src/lwm2m/formats/lwm2m-cbor.js';
import { type LeafRecord, type LwM2MNode, N, type ObjectInstance, nodeEquals, nodeToRecords } from '../../src/lwm2m/node.js';
import { comparePaths, formatPath, type Path } from '../../src/lwm2m/path.js';
import { formatObjlnk, type Value, type ValueType, V, valueEquals, valueToString } from '../../src/lwm2m/value.js';
import { hex, id, instanceArb, nodeAtPath, toHex, VALUE_TYPES, valueOf } from '../support/arbitraries.js';
import { lookupFromRecords, testModels } from '../support/models.js';
import { codecError, uniformModel, expectNode } from '../support/expect.js';
import { PSK_SECURITY_0_1 as securityInstance } from '../support/fixtures.js';

function show(n: LwM2MNode): string {
  return JSON.stringify(nodeToRecords([n.id], n).map((r) => `${formatPath(r.path)}=${valueToString(r.value)}`));
}

/** Records sorted by path, as "path=value" strings with the type, for order-free comparison. */
function recordSet(recs: readonly LeafRecord[]): string[] {
  return [...recs].sort((a, b) => comparePaths(a.path, b.path)).map((r) => `${formatPath(r.path)}:${r.value.type}`);
}

function expectRecords(actual: readonly LeafRecord[], expected: readonly LeafRecord[]): void {
  expect(recordSet(actual)).to.deep.equal(recordSet(expected));
  const sorted = (rs: readonly LeafRecord[]) => [...rs].sort((a, b) => comparePaths(a.path, b.path));
  const [a, b] = [sorted(actual), sorted(expected)];
  a.forEach((r, i) => expect(valueEquals(r.value, (b[i] as LeafRecord).value), formatPath(r.path)).to.equal(true));
}

const OMA = '4F 70 65 6E 20 4D 6F 62 69 6C 65 20 41 6C 6C 69 61 6E 63 65'; // "Open Mobile Alliance"

// formats.md §6 vectors, written out by hand from the digest and the diagnostic notation
const READ_3_0_0 = `A1 83 03 00 00 74 ${OMA}`;
const READ_3_0_6 = 'A1 83 03 00 06 A2 00 01 01 05';
const READ_1 =
  'A1 01 A2' +
  ' 00 A7 00 18 65 01 1A 00 01 51 80 02 19 01 2C 03 19 17 70 05 1A 00 01 51 80 06 F5 07 61 55' +
  ' 01 A7 00 18 66 01 1A 00 01 51 80 02 19 02 58 03 19 17 70 05 1A 00 01 51 80 06 F4 07 61 55';
const COMPOSITE = `A2 82 03 00 A2 00 74 ${OMA} 09 18 64 83 01 00 01 1A 00 01 51 80`;
const BOOTSTRAP_WRITE_0_1 = `
a1 82 00 01 a7 00 78 1e 63 6f 61 70 73 3a 2f 2f 6c 77 6d 32 6d 2e 65 78 61 6d 70 6c 65 2e 63 6f
6d 3a 35 36 38 34 01 f4 02 00 03 58 18 75 72 6e 3a 69 6d 65 69 3a 34 39 30 31 35 34 32 30 33 32
33 37 35 31 38 04 40 05 50 00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f 0a 18 65`;

const serverInstance = (iid: number, ssid: number, period: number, storing: boolean) =>
  N.instance(iid, [
    N.resource(0, V.integer(ssid)),
    N.resource(1, V.integer(86400)),
    N.resource(2, V.integer(period)),
    N.resource(3, V.integer(6000)),
    N.resource(5, V.integer(86400)),
    N.resource(6, V.boolean(storing)),
    N.resource(7, V.string('U')),
  ]);
const serverObject = N.object(1, [serverInstance(0, 101, 300, true), serverInstance(1, 102, 600, false)]);


const oma = N.resource(0, V.string('Open Mobile Alliance'));
const errorCodes = N.multi(6, [
  [0, V.integer(1)],
  [1, V.integer(5)],
]);

describe('lwm2m/formats/lwm2m-cbor', () => {
  it('describes itself', () => {
    expect(codec.contentFormat).to.equal(11544);
    expect(codec.name).to.equal('lwm2m-cbor');
    expect(codec.mediaType).to.equal('application/vnd.oma.lwm2m+cbor');
    expect(codec.composite).to.equal(true);
  });

  describe('formats.md §6 vectors', () => {
    it('Read /3/0/0 (26 bytes): {[3,0,0]: "Open Mobile Alliance"}', () => {
      expect(hex(READ_3_0_0).length).to.equal(26);
      expect(toHex(codec.encode([3, 0, 0], oma))).to.equal(toHex(hex(READ_3_0_0)));
      expectNode(codec.decode([3, 0, 0], hex(READ_3_0_0), testModels), oma);
      expectNode(codec.decode([3, 0, 0], hex(READ_3_0_0)), oma);
    });

    it('Read /3/0/6 (10 bytes): {[3,0,6]: {0: 1, 1: 5}}', () => {
      expect(hex(READ_3_0_6).length).to.equal(10);
      expect(toHex(codec.encode([3, 0, 6], errorCodes))).to.equal(toHex(hex(READ_3_0_6)));
      expectNode(codec.decode([3, 0, 6], hex(READ_3_0_6), testModels), errorCodes);
    });

    it('Read /1 (63 bytes): two Server instances under an integer key', () => {
      expect(hex(READ_1).length).to.equal(63);
      expect(toHex(codec.encode([1], serverObject))).to.equal(toHex(hex(READ_1)));
      expectNode(codec.decode([1], hex(READ_1), testModels), serverObject);
    });

    it('Composite read (39 bytes): {[3,0]: {0: "…", 9: 100}, [1,0,1]: 86400}', () => {
      expect(hex(COMPOSITE).length).to.equal(39);
      const recs: LeafRecord[] = [
        { path: [3, 0, 0], value: V.string('Open Mobile Alliance') },
        { path: [3, 0, 9], value: V.integer(100) },
        { path: [1, 0, 1], value: V.integer(86400) },
      ];
      expect(toHex(codec.encodeRecords(recs))).to.equal(toHex(hex(COMPOSITE)));
      const back = codec.decodeRecords(hex(COMPOSITE), testModels);
      expect(back.map((r) => formatPath(r.path))).to.deep.equal(['/3/0/0', '/3/0/9', '/1/0/1']);
      expectRecords(back, recs);
    });

    it('Bootstrap-Write /0/1 (92 bytes), byte for byte', () => {
      const bytes = hex(BOOTSTRAP_WRITE_0_1);
      expect(bytes.length).to.equal(92);
      expect(toHex(codec.encode([0, 1], securityInstance))).to.equal(toHex(bytes));
      expectNode(codec.decode([0, 1], bytes, testModels), securityInstance);
      // every value's CBOR type already matches the model here
      expectNode(codec.decode([0, 1], bytes), securityInstance);
    });
  });

  describe('other valid forms decode to the same node', () => {
    it('{3: {0: {0: "…"}}} (nested integer keys)', () => {
      expectNode(codec.decode([3, 0, 0], hex(`A1 03 A1 00 A1 00 74 ${OMA}`), testModels), oma);
    });

    it('{[3,0]: {0: "…"}} and an indefinite-length top map', () => {
      expectNode(codec.decode([3, 0, 0], hex(`A1 82 03 00 A1 00 74 ${OMA}`)), oma);
      expectNode(codec.decode([3, 0, 0], hex(`BF 83 03 00 00 74 ${OMA} FF`)), oma);
    });

    it('{3: {0: {6: {0: 1, 1: 5}}}} and {[3,0,6,0]: 1, [3,0,6,1]: 5}', () => {
      expectNode(codec.decode([3, 0, 6], hex('A1 03 A1 00 A1 06 A2 00 01 01 05')), errorCodes);
      expectNode(codec.decode([3, 0, 6], hex('A2 84 03 00 06 00 01 84 03 00 06 01 05')), errorCodes);
    });

    it('nested indefinite maps as Anjay writes them', () => {
      // {_ [3,0]: {_ 0: "U", 6: {_ 0: 1, 1: 5}, 9: 100}}
      const bytes = hex('BF 82 03 00 BF 00 61 55 06 BF 00 01 01 05 FF 09 18 64 FF FF');
      const want = N.instance(0, [N.resource(0, V.string('U')), errorCodes, N.resource(9, V.integer(100))]);
      expectNode(codec.decode([3, 0], bytes, testModels), want);
    });

    it('split and merged maps with a mix of key forms', () => {
      // {[3,0,0]: "a", [3,0]: {9: 100}, 3: {0: {6: {0: 1}}}, [3,0,6,1]: 5}
      const bytes = hex('A4 83 03 00 00 61 61 82 03 00 A1 09 18 64 03 A1 00 A1 06 A1 00 01 84 03 00 06 01 05');
      const want = N.instance(0, [N.resource(0, V.string('a')), N.resource(9, V.integer(100)), errorCodes]);
      expectNode(codec.decode([3, 0], bytes, testModels), want);
      expectNode(codec.decode([3], bytes, testModels), N.object(3, [want]));
    });

    it('non-minimal integer heads in keys and values', () => {
      // {[3 as 18 03, 0 as 19 00 00, 9]: 5 as 1A 00 00 00 05}
      const bytes = hex('A1 83 18 03 19 00 00 09 1A 00 00 00 05');
      const got = codec.decodeRecords(bytes, testModels);
      expectRecords(got, [{ path: [3, 0, 9], value: V.integer(5) }]);
    });
  });

  describe('empty containers', () => {
    it('an empty multiple resource at the request path', () => {
      const empty = N.multi(6, []);
      expect(toHex(codec.encode([3, 0, 6], empty))).to.equal('a1830300' + '06a0');
      expectNode(codec.decode([3, 0, 6], hex('A1 83 03 00 06 A0')), empty);
    });

    it('an empty object and an object with an empty instance', () => {
      expect(toHex(codec.encode([1], N.object(1, [])))).to.equal('a101a0');
      expectNode(codec.decode([1], hex('A1 01 A0')), N.object(1, []));
      expectNode(codec.decode([1], hex('A1 01 A1 00 A0')), N.object(1, [N.instance(0, [])]));
    });

    it('an empty multiple resource inside an instance and an object', () => {
      const inst = N.instance(0, [N.multi(11, []), N.resource(9, V.integer(100))]);
      const bytes = codec.encode([3, 0], inst);
      expect(toHex(bytes)).to.equal('a1820300a20ba0091864');
      expectNode(codec.decode([3, 0], bytes, testModels), inst);
      expectNode(codec.decode([3], hex('A1 03 A1 00 A2 0B A0 09 18 64'), testModels), N.object(3, [inst]));
    });

    it('an empty top-level map gives an empty node', () => {
      expectNode(codec.decode([3, 0], hex('A0')), N.instance(0, []));
      expect(codec.decodeRecords(hex('A0'))).to.deep.equal([]);
      expect(toHex(codec.encodeRecords([]))).to.equal('a0');
    });
  });

  describe('values (formats.md §2)', () => {
    it('opaque as a byte string, objlnk as "oid:iid" text', () => {
      const links = N.multi(22, [[0, V.objlnk(21, 1)]]);
      const bytes = hex('A1 83 03 00 16 A1 00 64 32 31 3A 31');
      expect(toHex(codec.encode([3, 0, 22], links))).to.equal(toHex(bytes));
      expectNode(codec.decode([3, 0, 22], bytes, testModels), links);
      // without a model the text stays a string
      expectNode(codec.decode([3, 0, 22], bytes), N.multi(22, [[0, V.string('21:1')]]));
      const key = N.resource(5, V.opaque(hex('0102')));
      expect(toHex(codec.encode([0, 0, 5], key))).to.equal('a18300000542' + '0102');
    });

    it('time as a plain integer; tag 1 and tag 0 accepted on decode', () => {
      const t = N.resource(13, V.time(1367491215));
      expect(toHex(codec.encode([3, 0, 13], t))).to.equal('a18303000d1a5182428f');
      expectNode(codec.decode([3, 0, 13], hex('A1 83 03 00 0D 1A 51 82 42 8F'), testModels), t);
      expectNode(codec.decode([3, 0, 13], hex('A1 83 03 00 0D C1 1A 51 82 42 8F'), testModels), t);
      // 0("2013-05-02T10:40:15Z") is the same instant
      const tag0 = hex('A1 83 03 00 0D C0 74 32 30 31 33 2D 30 35 2D 30 32 54 31 30 3A 34 30 3A 31 35 5A');
      expectNode(codec.decode([3, 0, 13], tag0, testModels), t);
      // without a model a tag 1 still says "time"
      expectNode(codec.decode([3, 0, 13], hex('A1 83 03 00 0D C1 1A 51 82 42 8F')), t);
    });

    it('floats in preferred serialization', () => {
      expect(toHex(codec.encode([5, 0, 1], N.resource(1, V.float(1.5))))).to.equal('a1830500' + '01f93e00');
      expect(toHex(codec.encode([5, 0, 1], N.resource(1, V.float(0.1))))).to.equal('a1830500' + '01fb3fb999999999999a');
      expect(toHex(codec.encode([5, 0, 1], N.resource(1, V.float(100000))))).to.equal('a1830500' + '01fa47c35000');
      expectNode(codec.decode([5, 0, 1], hex('A1 83 05 00 01 F9 3E 00')), N.resource(1, V.float(1.5)));
      // a float resource also takes an integer
      expectNode(codec.decode([5, 0, 1], hex('A1 83 05 00 01 02'), uniformModel('float')), N.resource(1, V.float(2)));
    });

    it('unsigned as major type 0, up to 2^64-1', () => {
      const u = N.resource(13, V.unsigned(2n ** 64n - 1n));
      const bytes = hex('A1 83 00 00 0D 1B FF FF FF FF FF FF FF FF');
      expect(toHex(codec.encode([0, 0, 13], u))).to.equal(toHex(bytes));
      expectNode(codec.decode([0, 0, 13], bytes, testModels), u);
      expectNode(codec.decode([0, 0, 13], bytes), u); // beyond int64 only Unsigned fits
    });

    it('infers types from CBOR major types without a model', () => {
      // {[9,0]: {0: "s", 1: h'01', 2: -3, 3: 1.5, 4: true}}
      const bytes = hex('A1 82 09 00 A5 00 61 73 01 41 01 02 22 03 F9 3E 00 04 F5');
      const want = N.instance(0, [
        N.resource(0, V.string('s')),
        N.resource(1, V.opaque(hex('01'))),
        N.resource(2, V.integer(-3)),
        N.resource(3, V.float(1.5)),
        N.resource(4, V.boolean(true)),
      ]);
      expectNode(codec.decode([9, 0], bytes), want);
    });

    it('an integral float for an integer resource is accepted', () => {
      expectNode(codec.decode([3, 0, 9], hex('A1 83 03 00 09 F9 56 40'), testModels), N.resource(9, V.integer(100)));
    });
  });

  describe('relative keys in Write/Create payloads', () => {
    it('PUT /1/0 with {0: 101, 1: 86400} (first key is not the object)', () => {
      const want = N.instance(0, [N.resource(0, V.integer(101)), N.resource(1, V.integer(86400))]);
      expectNode(codec.decode([1, 0], hex('A2 00 18 65 01 1A 00 01 51 80'), testModels), want);
    });

    it('PUT /1/1 with {1: 86400, 0: 102} (first key equals the object ID, absolute reading fails)', () => {
      const want = N.instance(1, [N.resource(1, V.integer(86400)), N.resource(0, V.integer(102))]);
      expectNode(codec.decode([1, 1], hex('A2 01 1A 00 01 51 80 00 18 66'), testModels), want);
    });

    it('POST /3 with {0: {0: "x"}} and PUT /3/0/6 with {0: 1, 1: 5}', () => {
      expectNode(codec.decode([3], hex('A1 00 A1 00 61 78'), testModels), N.object(3, [N.instance(0, [N.resource(0, V.string('x'))])]));
      expectNode(codec.decode([3, 0, 6], hex('A2 00 01 01 05'), testModels), errorCodes);
    });

    it('PUT /0/1 with the worked example written relative to the URI', () => {
      const abs = hex(BOOTSTRAP_WRITE_0_1);
      // drop the key [0,1] (a1 82 00 01): what remains is the instance map itself
      const rel = abs.subarray(4);
      expectNode(codec.decode([0, 1], rel, testModels), securityInstance);
    });

    it('absolute paths win when both readings are possible', () => {
      // {3: {0: {0: "x"}}} at /3/0: absolute /3/0/0, not /3/0/3/0/0
      expectNode(codec.decode([3, 0], hex('A1 03 A1 00 A1 00 61 78')), N.instance(0, [N.resource(0, V.string('x'))]));
    });

    it('decodeRecords reads keys as absolute paths only', () => {
      expect(codecError(() => codec.decodeRecords(hex('A2 00 18 65 01 1A 00 01 51 80'))).reason).to.equal('invalid');
    });
  });

  describe('encodeRecords grouping', () => {
    it('folds single-child chains into array keys and shares common prefixes', () => {
      const recs: LeafRecord[] = [
        { path: [0, 0, 1], value: V.boolean(false) },
        { path: [0, 1, 1], value: V.boolean(true) },
        { path: [1, 0, 0], value: V.integer(101) },
        { path: [1, 0, 1], value: V.integer(86400) },
      ];
      // {0: {[0,1]: false, [1,1]: true}, [1,0]: {0: 101, 1: 86400}}
      expect(toHex(codec.encodeRecords(recs))).to.equal(toHex(hex('A2 00 A2 82 00 01 F4 82 01 01 F5 82 01 00 A2 00 18 65 01 1A 00 01 51 80')));
      expectRecords(codec.decodeRecords(codec.encodeRecords(recs), testModels), recs);
    });

    it('resource instances: {[3,0]: {6: {0: 1, 1: 5}, [7,0]: 3800}}', () => {
      const recs: LeafRecord[] = [
        { path: [3, 0, 6, 0], value: V.integer(1) },
        { path: [3, 0, 6, 1], value: V.integer(5) },
        { path: [3, 0, 7, 0], value: V.integer(3800) },
      ];
      expect(toHex(codec.encodeRecords(recs))).to.equal(toHex(hex('A1 82 03 00 A2 06 A2 00 01 01 05 82 07 00 19 0E D8')));
    });

    it('a single record carries its full path: {[3,0,6,1]: 5}', () => {
      expect(toHex(codec.encodeRecords([{ path: [3, 0, 6, 1], value: V.integer(5) }]))).to.equal('a1840300060105');
    });

    it('refuses bad records', () => {
      const s = V.string('x');
      expect(codecError(() => codec.encodeRecords([{ path: [3, 0], value: s }])).reason).to.equal('bad_path');
      expect(codecError(() => codec.encodeRecords([{ path: [3, 0, 1, 2, 3], value: s }])).reason).to.equal('bad_path');
      expect(codecError(() => codec.encodeRecords([{ path: [3, 0, 65535], value: s }])).reason).to.equal('bad_path');
      expect(codecError(() => codec.encodeRecords([{ path: [3, 0, 1], value: s }, { path: [3, 0, 1], value: s }])).reason).to.equal('duplicate');
      expect(codecError(() => codec.encodeRecords([{ path: [3, 0, 1], value: s }, { path: [3, 0, 1, 0], value: s }])).reason).to.equal('duplicate');
      expect(codecError(() => codec.encodeRecords([{ path: [3, 0, 1, 0], value: s }, { path: [3, 0, 1], value: s }])).reason).to.equal('duplicate');
    });
  });

  describe('encode errors', () => {
    it('refuses a node that does not fit the path, the root path, and IDs beyond 65534', () => {
      expect(codecError(() => codec.encode([3, 0], oma)).reason).to.equal('bad_path');
      expect(codecError(() => codec.encode([3, 0, 1], oma)).reason).to.equal('bad_path');
      expect(codecError(() => codec.encode([], oma)).reason).to.equal('bad_path');
      expect(codecError(() => codec.encode([3, 70000], N.instance(70000, []))).reason).to.equal('bad_path');
      expect(codecError(() => codec.encode([3, 0], N.instance(0, [N.resource(65535, V.integer(1))]))).reason).to.equal('bad_path');
      expect(codecError(() => codec.encode([3, 0, 6], N.multi(6, [[-1, V.integer(1)]]))).reason).to.equal('bad_path');
    });
  });

  describe('malformed input', () => {
    const cases: Array<[string, Path, string, CodecErrorReason]> = [
      ['empty payload', [3, 0], '', 'truncated'],
      ['truncated map', [3, 0], 'A1 83 03 00', 'truncated'],
      ['trailing bytes', [3, 0], 'A0 00', 'trailing'],
      ['top level is not a map', [3, 0, 0], '83 03 00 00', 'invalid'],
      ['top level is a bare value', [3, 0, 0], '61 61', 'invalid'],
      ['path longer than 4 IDs (array key)', [3], 'A1 85 03 00 06 00 01 05', 'bad_path'],
      ['map under a 4-ID key', [3], 'A1 84 03 00 06 00 A1 01 05', 'invalid'],
      ['path longer than 4 IDs (array inside a map)', [3], 'A1 83 03 00 06 A1 82 00 01 05', 'bad_path'],
      ['map at resource-instance level', [3], 'A1 03 A1 00 A1 06 A1 00 A1 01 05', 'invalid'],
      ['negative key', [3], 'A1 20 61 61', 'bad_path'],
      ['negative ID in an array key', [3], 'A1 83 03 20 00 61 61', 'bad_path'],
      ['text key', [3], 'A1 61 61 01', 'bad_path'],
      ['float key', [3], 'A1 F9 3C 00 01', 'bad_path'],
      ['key 65535', [3], 'A1 83 03 00 19 FF FF 01', 'bad_path'],
      ['key beyond 16 bits', [3], 'A1 83 03 00 1A 00 01 00 00 01', 'bad_path'],
      ['empty array key', [3], 'A1 80 01', 'bad_path'],
      ['text in an array key', [3], 'A1 82 03 61 30 01', 'bad_path'],
      ['nested array in a key', [3], 'A1 82 03 81 00 01', 'bad_path'],
      ['leaf at object level', [3], 'A1 03 01', 'invalid'],
      ['leaf at instance level', [3], 'A1 82 03 00 01', 'invalid'],
      ['duplicate resource (same key twice)', [3, 0], 'A2 83 03 00 00 61 61 83 03 00 00 61 62', 'duplicate'],
      ['duplicate resource (two key forms)', [3, 0], 'A2 82 03 00 A1 00 61 61 83 03 00 00 61 62', 'duplicate'],
      ['duplicate resource instance', [3, 0, 6], 'A2 84 03 00 06 00 01 83 03 00 06 A1 00 02', 'duplicate'],
      ['single then multiple', [3, 0, 6], 'A2 83 03 00 06 01 84 03 00 06 00 01', 'duplicate'],
      ['multiple then single', [3, 0, 6], 'A2 83 03 00 06 A1 00 01 83 03 00 06 01', 'duplicate'],
      ['empty multiple then single', [3, 0, 6], 'A2 83 03 00 06 A0 83 03 00 06 01', 'duplicate'],
      ['null value', [3, 0, 0], 'A1 83 03 00 00 F6', 'invalid'],
      ['undefined value', [3, 0, 0], 'A1 83 03 00 00 F7', 'type_mismatch'],
      ['array value', [3, 0, 0], 'A1 83 03 00 00 80', 'type_mismatch'],
      ['integer for a string resource', [3, 0, 0], 'A1 83 03 00 00 01', 'type_mismatch'],
      ['text for a boolean resource', [1, 0, 6], 'A1 83 01 00 06 61 31', 'type_mismatch'],
      ['bytes for an integer resource', [1, 0, 1], 'A1 83 01 00 01 41 01', 'type_mismatch'],
      ['fractional float for an integer resource', [1, 0, 1], 'A1 83 01 00 01 F9 3E 00', 'type_mismatch'],
      ['text for an opaque resource', [0, 0, 3], 'A1 83 00 00 03 61 61', 'type_mismatch'],
      ['tag 1 for a string resource', [3, 0, 0], 'A1 83 03 00 00 C1 01', 'type_mismatch'],
      ['integer beyond int64 for an integer resource', [1, 0, 1], 'A1 83 01 00 01 1B FF FF FF FF FF FF FF FF', 'out_of_range'],
      ['negative for an unsigned resource', [0, 0, 13], 'A1 83 00 00 0D 20', 'out_of_range'],
      ['bad object link text', [0, 0, 17], 'A1 83 00 00 11 63 32 31 31', 'invalid'],
      ['object link ID beyond 65535', [0, 0, 17], 'A1 83 00 00 11 67 37 30 30 30 30 3A 31', 'out_of_range'],
      ['tag 1 around text', [3, 0, 13], 'A1 83 03 00 0D C1 61 61', 'invalid'],
      ['tag 0 with a bad date', [3, 0, 13], 'A1 83 03 00 0D C0 6A 32 30 31 33 2D 31 33 2D 30 31', 'invalid'],
      ['unknown tag', [3, 0, 9], 'A1 83 03 00 09 C2 41 01', 'invalid'],
      ['path outside the request path', [3, 0], 'A1 83 03 01 00 61 61', 'bad_path'],
      ['another object under an instance request', [3, 0], 'A1 83 01 00 01 01', 'bad_path'],
      ['value above the requested resource instance', [3, 0, 6, 1], 'A1 83 03 00 06 01', 'bad_path'],
      ['no value for the requested resource', [3, 0, 9], 'A1 82 03 00 A0', 'invalid'],
      ['invalid UTF-8 in a value', [3, 0, 0], 'A1 83 03 00 00 61 FF', 'invalid'],
      ['reserved additional information', [3, 0, 0], 'A1 83 03 00 00 7C', 'invalid'],
      ['nesting beyond what the format needs', [3], 'A1 03 ' + 'A1 00 '.repeat(10) + '00', 'too_deep'],
    ];
    for (const [what, path, h, reason] of cases) {
      it(`${what} → ${reason}`, () => {
        const e = codecError(() => codec.decode(path, hex(h), testModels));
        expect(e.reason, e.message).to.equal(reason);
        expect(e.format).to.equal('lwm2m-cbor');
      });
    }

    it('names the path of a type mismatch', () => {
      const e = codecError(() => codec.decode([3, 0], hex('A1 82 03 00 A1 00 01'), testModels));
      expect(e.reason).to.equal('type_mismatch');
      expect(e.path).to.equal('/3/0/0');
      expect(e.message).to.contain('/3/0/0').and.contain('string');
    });

    it('refuses the root path and paths too long for decode', () => {
      expect(codecError(() => codec.decode([], hex('A0'))).reason).to.equal('bad_path');
      expect(codecError(() => codec.decode([1, 2, 3, 4, 5], hex('A0'))).reason).to.equal('bad_path');
    });

    it('decodeRecords refuses the same malformed structures', () => {
      expect(codecError(() => codec.decodeRecords(hex('A1 03 01'))).reason).to.equal('invalid');
      expect(codecError(() => codec.decodeRecords(hex('A1 20 01'))).reason).to.equal('bad_path');
      expect(codecError(() => codec.decodeRecords(hex('A2 83 03 00 00 01 83 03 00 00 02'))).reason).to.equal('duplicate');
      expect(codecError(() => codec.decodeRecords(hex('81 00'))).reason).to.equal('invalid');
    });
  });

  describe('properties', () => {
    for (const type of VALUE_TYPES) {
      it(`encode → decode is the identity for ${type} nodes at every level (typed model)`, () => {
        const models = uniformModel(type);
        fc.assert(
          fc.property(nodeAtPath({ type }), ({ path, node }) => {
            const bytes = codec.encode(path, node);
            // absolute key: the request path itself
            const top = decodeCbor(bytes) as CborMap;
            const key = top.entries[0]?.[0];
            expect(key).to.deep.equal(path.length === 1 ? path[0] : [...path]);
            const back = codec.decode(path, bytes, models);
            if (!nodeEquals(back, node)) expect.fail(`${formatPath(path)}: ${show(back)} != ${show(node)}`);
          }),
          { numRuns: 60 },
        );
      });
    }

    it('round-trips string, integer, float, boolean and opaque nodes without a model', () => {
      const type = fc.constantFrom<ValueType>('string', 'integer', 'float', 'boolean', 'opaque');
      fc.assert(
        fc.property(
          type.chain((t) => nodeAtPath({ type: t })),
          ({ path, node }) => nodeEquals(codec.decode(path, codec.encode(path, node)), node),
        ),
        { numRuns: 200 },
      );
    });

    it('decodeRecords(encode(path, node)) gives the node records', () => {
      fc.assert(
        fc.property(nodeAtPath(), ({ path, node }) => {
          const recs = nodeToRecords(path, node);
          const models = lookupFromRecords(recs);
          fc.pre(models !== undefined);
          expectRecords(codec.decodeRecords(codec.encode(path, node), models), recs);
        }),
        { numRuns: 150 },
      );
    });

    it('decodeRecords(encodeRecords(records)) gives the records back, for records of several objects', () => {
      fc.assert(
        fc.property(recordsArb, (recs) => {
          const bytes = codec.encodeRecords(recs);
          expectRecords(codec.decodeRecords(bytes, lookupFromRecords(recs)), recs);
        }),
        { numRuns: 200 },
      );
    });

    it('encodeRecords is never longer than encoding each record under its full path', () => {
      fc.assert(
        fc.property(recordsArb, (recs) => {
          // one top-level entry per record: map head + each record's entry (its own encoding minus A1)
          const flat = recs.reduce((n, r) => n + codec.encodeRecords([r]).length - 1, recs.length >= 24 ? 2 : 1);
          return codec.encodeRecords(recs).length <= flat;
        }),
        { numRuns: 100 },
      );
    });

    it('an instance payload written relative to the URI decodes to the same instance', () => {
      fc.assert(
        fc.property(
          fc.constantFrom(...VALUE_TYPES).chain((type) => fc.tuple(fc.constant(type), id(), instanceArb({ type, nonEmptyMulti: true }))),
          ([type, o, inst]) => {
            const bytes = encodeCbor(relativeInstance(inst));
            const back = codec.decode([o, inst.id], bytes, uniformModel(type));
            if (!nodeEquals(back, inst)) expect.fail(`${show(back)} != ${show(inst)}`);
          },
        ),
        { numRuns: 150 },
      );
    });

    it('random bytes never throw anything but a CodecError', () => {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 80 }), fc.constantFrom<Path>([3], [3, 0], [3, 0, 6], [0, 1], [3, 0, 6, 1]), (b, path) => {
          for (const f of [() => codec.decode(path, b, testModels), () => codec.decode(path, b), () => codec.decodeRecords(b, testModels)]) {
            try {
              f();
            } catch (e) {
              if (!(e instanceof CodecError)) throw e;
            }
          }
        }),
        { numRuns: 300 },
      );
    });

    it('mutated encodings never throw anything but a CodecError', () => {
      fc.assert(
        fc.property(nodeAtPath(), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), fc.nat(), ({ path, node }, edits, cut) => {
          const b = codec.encode(path, node).slice();
          for (const [at, byte] of edits) b[at % b.length] = byte;
          const input = cut % 3 === 0 ? b.subarray(0, cut % b.length) : b;
          for (const f of [() => codec.decode(path, input, testModels), () => codec.decodeRecords(input)]) {
            try {
              f();
            } catch (e) {
              if (!(e instanceof CodecError)) throw e;
            }
          }
        }),
        { numRuns: 300 },
      );
    });
  });
});

/** A model that gives each (object, resource) the type its records carry. */

/** The type every (object, resource) pair gets in generated records, so one model fits them all. */
const typeOf = (o: number, r: number): ValueType => VALUE_TYPES[(o * 7 + r) % VALUE_TYPES.length] as ValueType;

/** Leaf records over a few objects, unique paths, no resource both single and multiple. */
const recordsArb: fc.Arbitrary<LeafRecord[]> = fc
  .uniqueArray(fc.tuple(id(4), id(3), id(30), fc.option(id(3), { nil: undefined })), {
    selector: ([o, i, r, ri]) => `${o}/${i}/${r}/${ri}`,
    minLength: 1,
    maxLength: 30,
  })
  .map((keys) => {
    // a resource given as single and as instances cannot be encoded: keep the first form seen
    const single = new Map<string, boolean>();
    return keys.filter(([o, i, r, ri]) => {
      const k = `${o}/${i}/${r}`;
      const firstSingle = single.get(k);
      if (firstSingle === undefined) {
        single.set(k, ri === undefined);
        return true;
      }
      // later entries must use the same form: resource instances of a multiple resource
      return !firstSingle && ri !== undefined;
    });
  })
  .chain((keys) =>
    fc.tuple(...keys.map(([o, , r]) => valueOf(typeOf(o, r)))).map((values) =>
      keys.map(([o, i, r, ri], n) => ({ path: ri === undefined ? [o, i, r] : [o, i, r, ri], value: values[n] as Value })),
    ),
  );

/** The CBOR item for a value, written independently of the codec under test. */
function item(v: Value): CborItem {
  switch (v.type) {
    case 'float':
      return new CborFloat(v.value);
    case 'objlnk':
      return formatObjlnk(v.value);
    default:
      return v.value;
  }
}

/** `{r: value, r: {ri: value}}`: an instance written relative to its URI `/o/i`. */
function relativeInstance(inst: ObjectInstance): CborMap {
  return new CborMap(
    [...inst.resources.values()].map((r) => [
      r.id,
      r.kind === 'resource' ? item(r.value) : new CborMap([...r.instances].map(([ri, v]) => [ri, item(v)] as const)),
    ]),
  );
}

