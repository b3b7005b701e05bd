import { expect } from 'chai';
import fc from 'fast-check';
import { CodecError, type CodecErrorReason } from '../../src/lwm2m/errors.js';
import {
  decodeTlvValue,
  encodeTlv,
  encodeTlvValue,
  readTlv,
  readTlvChildren,
  tlvCodec,
  tlvLegacyCodec,
} from '../../src/lwm2m/formats/tlv.js';
import type { ModelLookup } from '../../src/lwm2m/model.js';
import { type LwM2MNode, type MultiResource, N, nodeEquals, nodeToRecords, type ObjectInstance } from '../../src/lwm2m/node.js';
import type { Path } from '../../src/lwm2m/path.js';
import { type Value, V, valueEquals } from '../../src/lwm2m/value.js';
import { hex, nodeAtPath, toHex, VALUE_TYPES } from '../support/arbitraries.js';
import { lookupFromRecords, testModels } from '../support/models.js';
import { expectCodecError, uniformModel, expectNode } from '../support/expect.js';
import { SPEC_DEVICE_0 as deviceInstance, PSK_SECURITY_0_1 as securityInstance } from '../support/fixtures.js';

// ---------------------------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------------------------

const enc = (path: Path, node: LwM2MNode, opts = {}): string => toHex(encodeTlv(path, node, opts));
const dec = (path: Path, h: string, models: ModelLookup | undefined = testModels): LwM2MNode => tlvCodec.decode(path, hex(h), models);
const clean = (h: string): string => h.replace(/\s+/g, '').toLowerCase();
const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);

// ---------------------------------------------------------------------------------------------
// vectors from formats.md §3.5, nodes written by hand from the digest
// ---------------------------------------------------------------------------------------------

const DEVICE_HEX = `
C8 00 14 4F 70 65 6E 20 4D 6F 62 69 6C 65 20 41 6C 6C 69 61 6E 63 65
C8 01 16 4C 69 67 68 74 77 65 69 67 68 74 20 4D 32 4D 20 43 6C 69 65 6E 74
C8 02 09 33 34 35 30 30 30 31 32 33
C3 03 31 2E 30
86 06  41 00 01  41 01 05
88 07 08  42 00 0E D8  42 01 13 88
87 08  41 00 7D  42 01 03 84
C1 09 64
C1 0A 0F
83 0B  41 00 00
C4 0D 51 82 42 8F
C6 0E 2B 30 32 3A 30 30
C1 10 55`;


const ACL_HEX = `
08 00 0E
   C1 00 01
   C1 01 00
   83 02
      41 7F 07
   C1 03 7F
08 02 12
   C1 00 03  C1 01 00
   87 02
      41 7F 07
      61 01 36 01
   C1 03 7F`;

const aclObject = N.object(2, [
  N.instance(0, [N.resource(0, V.integer(1)), N.resource(1, V.integer(0)), N.multi(2, [[127, V.integer(7)]]), N.resource(3, V.integer(127))]),
  N.instance(2, [
    N.resource(0, V.integer(3)),
    N.resource(1, V.integer(0)),
    N.multi(2, [
      [127, V.integer(7)],
      [310, V.integer(1)],
    ]),
    N.resource(3, V.integer(127)),
  ]),
]);

const SECURITY_HEX = `
C8 00 1E 63 6F 61 70 73 3A 2F 2F 6C 77 6D 32 6D 2E 65 78 61 6D 70 6C 65 2E 63 6F 6D 3A 35 36 38 34
C1 01 00
C1 02 00
C8 03 18 75 72 6E 3A 69 6D 65 69 3A 34 39 30 31 35 34 32 30 33 32 33 37 35 31 38
C0 04
C8 05 10 00 01 02 03 04 05 06 07 08 09 0A 0B 0C 0D 0E 0F
C1 0A 65`;


describe('TLV codec', () => {
  describe('codec objects', () => {
    it('describes 11542 and the legacy 1542', () => {
      expect(tlvCodec.contentFormat).to.equal(11542);
      expect(tlvCodec.name).to.equal('tlv');
      expect(tlvCodec.mediaType).to.equal('application/vnd.oma.lwm2m+tlv');
      expect(tlvCodec.composite).to.equal(false);
      expect(tlvLegacyCodec.contentFormat).to.equal(1542);
      expect(tlvLegacyCodec.name).to.equal('tlv-legacy');
      expect(tlvLegacyCodec.mediaType).to.equal('application/vnd.oma.lwm2m+tlv');
      expect(tlvLegacyCodec.composite).to.equal(false);
    });

    it('legacy codec behaves the same and names itself in errors', () => {
      expect(toHex(tlvLegacyCodec.encode([3, 0], deviceInstance))).to.equal(clean(DEVICE_HEX));
      expectNode(tlvLegacyCodec.decode([3, 0], hex(DEVICE_HEX), testModels), deviceInstance);
      const e = expectCodecError(() => tlvLegacyCodec.decode([3, 0], hex('C1'), testModels), 'truncated');
      expect(e.format).to.equal('tlv-legacy');
    });
  });

  describe('(a) Device', () => {
    it('vector is 121 bytes, /3 read is 124 with wrapper 08 00 79', () => {
      expect(hex(DEVICE_HEX).length).to.equal(121);
      expect(hex('08 00 79' + DEVICE_HEX).length).to.equal(124);
    });

    it('encodes /3/0 bare, byte for byte', () => {
      expect(toHex(tlvCodec.encode([3, 0], deviceInstance))).to.equal(clean(DEVICE_HEX));
    });

    it('encodes /3/0 with the instance wrapper and /3 as an object', () => {
      expect(enc([3, 0], deviceInstance, { wrapInstance: true })).to.equal(clean('08 00 79' + DEVICE_HEX));
      expect(toHex(tlvCodec.encode([3], N.object(3, [deviceInstance])))).to.equal(clean('08 00 79' + DEVICE_HEX));
    });

    it('decodes /3/0 bare and wrapped, and /3, in wire order', () => {
      const bare = dec([3, 0], DEVICE_HEX) as ObjectInstance;
      expectNode(bare, deviceInstance);
      expect([...bare.resources.keys()]).to.deep.equal([0, 1, 2, 3, 6, 7, 8, 9, 10, 11, 13, 14, 16]);
      expectNode(dec([3, 0], '08 00 79' + DEVICE_HEX), deviceInstance);
      expectNode(dec([3], '08 00 79' + DEVICE_HEX), N.object(3, [deviceInstance]));
    });

    it('decodes single resources and resource instances out of the vector', () => {
      expectNode(dec([3, 0, 13], 'C4 0D 51 82 42 8F'), N.resource(13, V.time(1367491215)));
      expectNode(dec([3, 0, 7], '88 07 08 42 00 0E D8 42 01 13 88'), N.multi(7, [[0, V.integer(3800)], [1, V.integer(5000)]]));
      expectNode(dec([3, 0, 7, 1], '42 01 13 88'), N.resourceInstance(1, V.integer(5000)));
      expect(enc([3, 0, 7, 1], N.resourceInstance(1, V.integer(5000)))).to.equal('42011388');
      expect(enc([3, 0, 8], deviceInstance.resources.get(8)!)).to.equal(clean('87 08 41 00 7D 42 01 03 84'));
    });
  });

  describe('(b) ACL /2', () => {
    it('is 38 bytes and encodes byte for byte', () => {
      expect(hex(ACL_HEX).length).to.equal(38);
      expect(toHex(tlvCodec.encode([2], aclObject))).to.equal(clean(ACL_HEX));
    });

    it('decodes to two instances, with the 16-bit resource instance ID 310', () => {
      const obj = dec([2], ACL_HEX);
      expectNode(obj, aclObject);
      if (obj.kind !== 'object') throw new Error('not an object');
      expect([...obj.instances.keys()]).to.deep.equal([0, 2]);
      const acl = obj.instances.get(2)!.resources.get(2) as MultiResource;
      expect([...acl.instances.keys()]).to.deep.equal([127, 310]);
    });
  });

  describe('(c) Server /1 with the corrected 0F length', () => {
    const HEX = '08 00 0F C1 00 01 C4 01 00 01 51 80 C1 06 01 C1 07 55';
    const node = N.object(1, [N.instance(0, [N.resource(0, V.integer(1)), N.resource(1, V.integer(86400)), N.resource(6, V.boolean(true)), N.resource(7, V.string('U'))])]);
    it('encodes and decodes', () => {
      expect(hex(HEX).length).to.equal(18);
      expect(toHex(tlvCodec.encode([1], node))).to.equal(clean(HEX));
      expectNode(dec([1], HEX), node);
    });
    it('refuses the spec’s misprinted 0D length (content runs past the instance)', () => {
      expectCodecError(() => dec([1], '08 00 0D C1 00 01 C4 01 00 01 51 80 C1 06 01 C1 07 55'), 'truncated');
    });
  });

  describe('(d) PSK Security instance /0/1', () => {
    it('bare form is 90 bytes and encodes byte for byte', () => {
      expect(hex(SECURITY_HEX).length).to.equal(90);
      expect(toHex(tlvCodec.encode([0, 1], securityInstance))).to.equal(clean(SECURITY_HEX));
    });
    it('wrapped form is 93 bytes with 08 01 5A', () => {
      const wrapped = encodeTlv([0, 1], securityInstance, { wrapInstance: true });
      expect(wrapped.length).to.equal(93);
      expect(toHex(wrapped)).to.equal(clean('08 01 5A' + SECURITY_HEX));
    });
    it('decodes both forms with the model', () => {
      expectNode(dec([0, 1], SECURITY_HEX), securityInstance);
      expectNode(dec([0, 1], '08 01 5A' + SECURITY_HEX), securityInstance);
    });
  });

  describe('(e) Server instance /1/0', () => {
    const HEX = '08 00 0F C1 00 65 C4 01 00 01 51 80 C1 06 01 C1 07 55';
    const inst = N.instance(0, [N.resource(0, V.integer(101)), N.resource(1, V.integer(86400)), N.resource(6, V.boolean(true)), N.resource(7, V.string('U'))]);
    it('encodes wrapped (18 bytes) and bare (15 bytes)', () => {
      expect(enc([1, 0], inst, { wrapInstance: true })).to.equal(clean(HEX));
      expect(toHex(tlvCodec.encode([1, 0], inst))).to.equal(clean(HEX).slice(6));
    });
    it('decodes wrapped and bare', () => {
      expectNode(dec([1, 0], HEX), inst);
      expectNode(dec([1, 0], HEX.slice(9)), inst);
    });
  });

  describe('(f) small cases', () => {
    it('resource 300 (16-bit ID) = integer 5 → E1 01 2C 05', () => {
      expect(enc([3, 0, 300], N.resource(300, V.integer(5)))).to.equal('e1012c05');
      expectNode(dec([3, 0, 300], 'E1 01 2C 05', uniformModel('integer')), N.resource(300, V.integer(5)));
    });

    it('resource 3 with a 300-byte value → D0 03 01 2C + 300 bytes', () => {
      const data = new Uint8Array(300).map((_, i) => (i * 7) & 0xff);
      const out = encodeTlv([0, 0, 3], N.resource(3, V.opaque(data)));
      expect(out.length).to.equal(304);
      expect(toHex(out.subarray(0, 4))).to.equal('d003012c');
      expect(toHex(out.subarray(4))).to.equal(toHex(data));
      expectNode(tlvCodec.decode([0, 0, 3], out, testModels), N.resource(3, V.opaque(data)));
    });

    const cases: [string, Path, LwM2MNode, string, ModelLookup, { float64?: boolean }?][] = [
      ['integer -750 in res 1', [3, 0, 1], N.resource(1, V.integer(-750)), 'C2 01 FD 12', uniformModel('integer')],
      ['integer 128 in res 1', [3, 0, 1], N.resource(1, V.integer(128)), 'C2 01 00 80', uniformModel('integer')],
      ['float64 1.5 in res 1', [3, 0, 1], N.resource(1, V.float(1.5)), 'C8 01 08 3F F8 00 00 00 00 00 00', uniformModel('float'), { float64: true }],
      ['float32 1.5 in res 1', [3, 0, 1], N.resource(1, V.float(1.5)), 'C4 01 3F C0 00 00', uniformModel('float')],
      ['boolean true in res 1', [3, 0, 1], N.resource(1, V.boolean(true)), 'C1 01 01', uniformModel('boolean')],
      ['objlnk 21:1 in res 17', [0, 0, 17], N.resource(17, V.objlnk(21, 1)), 'C4 11 00 15 00 01', testModels],
      ['objlnk null', [0, 0, 17], N.resource(17, V.objlnk(65535, 65535)), 'C4 11 FF FF FF FF', testModels],
      ['empty opaque res 4', [0, 0, 4], N.resource(4, V.opaque(new Uint8Array(0))), 'C0 04', testModels],
    ];
    for (const [name, path, node, h, models, opts] of cases) {
      it(`${name} → ${h}`, () => {
        expect(enc(path, node, opts ?? {})).to.equal(clean(h));
        expectNode(tlvCodec.decode(path, hex(h), models), node);
      });
    }
  });

  describe('values', () => {
    it('integers use the smallest signed width of 1/2/4/8', () => {
      const table: [number | bigint, string][] = [
        [0, '00'],
        [127, '7f'],
        [-128, '80'],
        [128, '0080'],
        [-129, 'ff7f'],
        [32767, '7fff'],
        [32768, '00008000'],
        [-32769, 'ffff7fff'],
        [2147483647, '7fffffff'],
        [-2147483648, '80000000'],
        [2147483648, '0000000080000000'],
        [-2147483649, 'ffffffff7fffffff'],
        [2 ** 53, '0020000000000000'],
        [2n ** 63n - 1n, '7fffffffffffffff'],
        [-(2n ** 63n), '8000000000000000'],
        [-1, 'ff'],
      ];
      for (const [n, h] of table) {
        expect(toHex(encodeTlvValue(V.integer(n))), String(n)).to.equal(h);
        expect(toHex(encodeTlvValue(V.time(n))), `time ${n}`).to.equal(h);
        expect(valueEquals(decodeTlvValue(hex(h), 'integer'), V.integer(n)), `decode ${h}`).to.equal(true);
      }
    });

    it('unsigned keeps the top bit clear (Leshan interop): 200 → 00 C8', () => {
      const table: [number | bigint, string][] = [
        [0, '00'],
        [127, '7f'],
        [128, '0080'],
        [200, '00c8'],
        [32767, '7fff'],
        [32768, '00008000'],
        [2 ** 31, '0000000080000000'],
        [2n ** 63n, '8000000000000000'],
        [2n ** 64n - 1n, 'ffffffffffffffff'],
      ];
      for (const [n, h] of table) {
        expect(toHex(encodeTlvValue(V.unsigned(n))), String(n)).to.equal(h);
        expect(valueEquals(decodeTlvValue(hex(h), 'unsigned'), V.unsigned(n)), `decode ${h}`).to.equal(true);
      }
      expect(enc([0, 0, 13], N.resource(13, V.unsigned(200)))).to.equal('c20d00c8');
    });

    it('a 1-byte C8 typed unsigned decodes as 200, not as a negative number', () => {
      expectNode(dec([0, 0, 13], 'C1 0D C8'), N.resource(13, V.unsigned(200)));
      expectNode(dec([0, 0, 13], 'C1 0D C8', uniformModel('integer')), N.resource(13, V.integer(-56)));
      const max = dec([0, 0, 13], 'C8 0D 08 FF FF FF FF FF FF FF FF');
      expectNode(max, N.resource(13, V.unsigned(2n ** 64n - 1n)));
      if (max.kind !== 'resource') throw new Error('not a resource');
      expect(max.value.value).to.equal(2n ** 64n - 1n);
    });

    it('accepts integers of any length 1–8 (3, 5, 6, 7 bytes)', () => {
      expect(valueEquals(decodeTlvValue(hex('FF FF FE'), 'integer'), V.integer(-2))).to.equal(true);
      expect(valueEquals(decodeTlvValue(hex('01 00 00'), 'integer'), V.integer(65536))).to.equal(true);
      expect(valueEquals(decodeTlvValue(hex('80 00 00 00 00'), 'integer'), V.integer(-(2 ** 39)))).to.equal(true);
      expect(valueEquals(decodeTlvValue(hex('7F FF FF FF FF FF'), 'integer'), V.integer(2 ** 47 - 1))).to.equal(true);
      expect(valueEquals(decodeTlvValue(hex('7F FF FF FF FF FF FF'), 'integer'), V.integer(2n ** 55n - 1n))).to.equal(true);
      expect(valueEquals(decodeTlvValue(hex('80 00 00 00 00 00 00'), 'integer'), V.integer(-(2n ** 55n)))).to.equal(true);
      expect(valueEquals(decodeTlvValue(hex('FF FF FF FF FF FF FF'), 'unsigned'), V.unsigned(2n ** 56n - 1n))).to.equal(true);
      expect(valueEquals(decodeTlvValue(hex('00 00 00 00 00 00 00 05'), 'integer'), V.integer(5))).to.equal(true);
      expect(valueEquals(decodeTlvValue(hex('C8'), 'time'), V.time(-56))).to.equal(true);
    });

    it('decodes 64-bit integers at the safe-integer boundary exactly', () => {
      const cases: bigint[] = [2n ** 53n - 1n, 2n ** 53n, -(2n ** 53n) + 1n, -(2n ** 53n), 2n ** 62n, -(2n ** 62n) - 3n];
      for (const n of cases) {
        const bytes = hex(BigInt.asUintN(64, n).toString(16).padStart(16, '0'));
        const v = decodeTlvValue(bytes, 'integer');
        expect(valueEquals(v, V.integer(n)), String(n)).to.equal(true);
        // numbers while safe, bigints beyond
        expect(typeof v.value).to.equal(n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? 'number' : 'bigint');
      }
    });

    it('floats are 4 bytes when exact in binary32, else 8', () => {
      expect(toHex(encodeTlvValue(V.float(1.5)))).to.equal('3fc00000');
      expect(toHex(encodeTlvValue(V.float(-0)))).to.equal('80000000');
      expect(toHex(encodeTlvValue(V.float(0.1)))).to.equal('3fb999999999999a');
      expect(toHex(encodeTlvValue(V.float(1.5), { float64: true }))).to.equal('3ff8000000000000');
      expect(valueEquals(decodeTlvValue(hex('3fb999999999999a'), 'float'), V.float(0.1))).to.equal(true);
    });

    it('strings and corelnks are UTF-8; opaque is raw', () => {
      expect(toHex(encodeTlvValue(V.string('é€😀')))).to.equal('c3a9e282acf09f9880');
      expect(valueEquals(decodeTlvValue(hex('c3a9e282acf09f9880'), 'string'), V.string('é€😀'))).to.equal(true);
      expect(valueEquals(decodeTlvValue(hex('efbbbf41'), 'string'), V.string('\uFEFFA')), 'BOM kept').to.equal(true);
      expect(toHex(encodeTlvValue(V.corelnk('</3/0>')))).to.equal('3c2f332f303e');
      expect(toHex(encodeTlvValue(V.opaque(hex('00ff'))))).to.equal('00ff');
      expect(toHex(encodeTlvValue(V.boolean(false)))).to.equal('00');
    });

    it('decoded opaque values do not alias the payload', () => {
      const payload = hex('C2 03 AA BB');
      const node = tlvCodec.decode([0, 0, 3], payload, testModels);
      payload[2] = 0;
      expectNode(node, N.resource(3, V.opaque(hex('AABB'))));
    });
  });

  describe('structure and leniency', () => {
    it('16-bit object instance, resource and resource instance IDs', () => {
      const obj = N.object(3, [N.instance(300, [N.multi(1000, [[4660, V.integer(1)]])])]);
      // 27 = Object Instance, 16-bit ID, inline length 7; A4 = Multiple Resource, 16-bit ID,
      // inline length 4; 61 = Resource Instance, 16-bit ID, inline length 1
      const h = '27 01 2C  A4 03 E8  61 12 34 01';
      expect(toHex(tlvCodec.encode([3], obj))).to.equal(clean(h));
      expectNode(dec([3], h, uniformModel('integer')), obj);
    });

    it('8-, 16- and 24-bit length fields', () => {
      const v8 = new Uint8Array(8).fill(1);
      expect(toHex(encodeTlv([0, 0, 3], N.resource(3, V.opaque(v8))).subarray(0, 3))).to.equal('c80308');
      const v255 = new Uint8Array(255);
      expect(toHex(encodeTlv([0, 0, 3], N.resource(3, V.opaque(v255))).subarray(0, 3))).to.equal('c803ff');
      const v256 = new Uint8Array(256);
      expect(toHex(encodeTlv([0, 0, 3], N.resource(3, V.opaque(v256))).subarray(0, 4))).to.equal('d0030100');
      const v65535 = new Uint8Array(65535);
      expect(toHex(encodeTlv([0, 0, 3], N.resource(3, V.opaque(v65535))).subarray(0, 4))).to.equal('d003ffff');
      const big = new Uint8Array(65536).map((_, i) => i & 0xff);
      const out = encodeTlv([0, 0, 3], N.resource(3, V.opaque(big)));
      expect(toHex(out.subarray(0, 5))).to.equal('d803010000');
      expectNode(tlvCodec.decode([0, 0, 3], out, testModels), N.resource(3, V.opaque(big)));
      // 16-bit ID with a 24-bit length
      const out2 = encodeTlv([0, 0, 1000], N.resource(1000, V.opaque(big)));
      expect(toHex(out2.subarray(0, 6))).to.equal('f803e8010000');
      // an object instance whose content needs a 16-bit length
      const inst = N.instance(0, [N.resource(3, V.opaque(v256))]);
      expect(toHex(encodeTlv([0, 0], inst, { wrapInstance: true }).subarray(0, 8))).to.equal('100001' + '04' + 'd0030100');
    });

    it('accepts non-minimal ID widths and length fields', () => {
      const five = N.resource(1, V.integer(5));
      const forms = [
        'C1 01 05', // minimal
        'C8 01 01 05', // 8-bit length field for 1 byte
        'D0 01 00 01 05', // 16-bit length field
        'D8 01 00 00 01 05', // 24-bit length field
        'E1 00 01 05', // 16-bit ID for ID 1
        'F8 00 01 00 00 01 05', // both
        'CF 01 01 05', // junk in bits 2–0 is ignored when a length field is present
        'C3 01 00 00 05', // 3-byte integer
        'C8 01 08 00 00 00 00 00 00 00 05', // 8-byte integer
      ];
      for (const f of forms) expectNode(dec([3, 0, 1], f, uniformModel('integer')), five);
      // non-minimal container headers
      expectNode(dec([3, 0], '10 00 00 03 C1 01 05', uniformModel('integer')), N.instance(0, [five]));
      expectNode(dec([3], '28 00 00 03 C1 01 05', uniformModel('integer')), N.object(3, [N.instance(0, [five])]));
      expectNode(dec([3, 0, 6], 'A8 00 06 03 41 00 01'), N.multi(6, [[0, V.integer(1)]]));
      expectNode(dec([3, 0, 6, 0], '48 00 01 01'), N.resourceInstance(0, V.integer(1)));
    });

    it('keeps unknown resources opaque', () => {
      expectNode(dec([3, 0], 'C1 63 05 C1 09 64'), N.instance(0, [N.resource(99, V.opaque(hex('05'))), N.resource(9, V.integer(100))]));
      expectNode(dec([3, 0, 99], 'C2 63 05 06'), N.resource(99, V.opaque(hex('0506'))));
      // unknown object
      expectNode(dec([9999, 0, 1], 'C1 01 05'), N.resource(1, V.opaque(hex('05'))));
      // executable resource (type none) carrying bytes
      expectNode(dec([3, 0, 4], 'C1 04 01'), N.resource(4, V.opaque(hex('01'))));
      // no model at all: everything opaque
      expectNode(tlvCodec.decode([3, 0], hex(DEVICE_HEX)) as ObjectInstance, deviceInstanceOpaque());
    });

    it('empty multiple resource 80 06 decodes to a multiResource with no instances', () => {
      const empty = N.multi(6, []);
      expectNode(dec([3, 0, 6], '80 06'), empty);
      expectNode(dec([3, 0], '80 06'), N.instance(0, [empty]));
      expect(enc([3, 0, 6], empty)).to.equal('8006');
      expect(enc([3, 0], N.instance(0, [empty]))).to.equal('8006');
      // empty payload at a resource the model says is multiple
      expectNode(dec([3, 0, 6], ''), empty);
    });

    it('accepts a multiple resource at /o/i/r as a 10 wrapper or as a bare list of 01 TLVs', () => {
      const m = N.multi(6, [[0, V.integer(1)], [1, V.integer(5)]]);
      expectNode(dec([3, 0, 6], '86 06 41 00 01 41 01 05'), m);
      expectNode(dec([3, 0, 6], '41 00 01 41 01 05'), m);
    });

    it('follows the wire form when it disagrees with the model’s multiplicity', () => {
      expectNode(dec([3, 0, 9], '83 09 41 00 64'), N.multi(9, [[0, V.integer(100)]]));
      expectNode(dec([3, 0, 6], 'C1 06 01'), N.resource(6, V.integer(1)));
      expectNode(dec([3, 0], '83 09 41 00 64 C1 06 01'), N.instance(0, [N.multi(9, [[0, V.integer(100)]]), N.resource(6, V.integer(1))]));
    });

    it('empty payloads at object and instance level are empty nodes', () => {
      expectNode(dec([3], ''), N.object(3, []));
      expectNode(dec([3, 0], ''), N.instance(0, []));
      expectNode(dec([3, 0], '08 00 00'), N.instance(0, []));
      expect(enc([3], N.object(3, []))).to.equal('');
      expect(enc([3, 0], N.instance(0, []))).to.equal('');
      expect(enc([3, 0], N.instance(0, []), { wrapInstance: true })).to.equal('0000');
    });
  });

  describe('raw reader', () => {
    it('reads records level by level with absolute offsets', () => {
      const recs = readTlv(hex(ACL_HEX));
      expect(recs.map((r) => [r.kind, r.id, r.offset, r.valueOffset, r.value.length])).to.deep.equal([
        ['objectInstance', 0, 0, 3, 14],
        ['objectInstance', 2, 17, 20, 18],
      ]);
      const inner = readTlvChildren(recs[1]!);
      expect(inner.map((r) => [r.kind, r.id, r.offset])).to.deep.equal([
        ['resource', 0, 20],
        ['resource', 1, 23],
        ['multipleResource', 2, 26],
        ['resource', 3, 35],
      ]);
      const ris = readTlvChildren(inner[2]!);
      expect(ris.map((r) => [r.kind, r.id, r.offset, toHex(r.value)])).to.deep.equal([
        ['resourceInstance', 127, 28, '07'],
        ['resourceInstance', 310, 31, '01'],
      ]);
      expectCodecError(() => readTlvChildren(ris[0]!), 'invalid');
    });

    it('reports truncation with the offset of the faulty record', () => {
      const e = expectCodecError(() => readTlv(hex('C1 00 01 C3 01 00')), 'truncated');
      expect(e.offset).to.equal(3);
      const e2 = expectCodecError(() => dec([3, 0], 'C1 09 64 C8 0A'), 'truncated');
      expect(e2.offset).to.equal(3);
    });
  });

  describe('malformed input', () => {
    const bad: [string, Path, string, CodecErrorReason, ModelLookup?][] = [
      // truncated
      ['lone type byte', [3, 0], 'C8', 'truncated'],
      ['header without its length byte', [3, 0], 'C8 00', 'truncated'],
      ['16-bit ID cut short', [3, 0], 'E1 01', 'truncated'],
      ['value past the end', [3, 0], 'C3 00 31 2E', 'truncated'],
      ['24-bit length past the end', [3, 0, 3], 'D8 03 01 00 00 00', 'truncated'],
      ['object instance past the end', [3], '08 00 05 C1 00 01', 'truncated'],
      ['child runs past its parent', [3], '08 00 03 C2 00 01 05', 'truncated'],
      ['resource instance runs past its multiple resource', [3, 0, 6], '83 06 42 00 01 05', 'truncated'],
      ['trailing garbage byte', [3, 0], DEVICE_HEX + ' C1', 'truncated'],
      ['trailing zero byte', [3], '08 00 79' + DEVICE_HEX + ' 00', 'truncated'],
      ['trailing byte after a resource', [3, 0, 9], 'C1 09 64 00', 'truncated'],
      // invalid values
      ['float of 3 bytes', [3, 0, 1], 'C3 01 3F C0 00', 'invalid', uniformModel('float')],
      ['float of 2 bytes', [3, 0, 1], 'C2 01 3F C0', 'invalid', uniformModel('float')],
      ['boolean of 2 bytes', [1, 0, 6], 'C2 06 00 01', 'invalid'],
      ['boolean 0 bytes', [1, 0, 6], 'C0 06', 'invalid'],
      ['boolean value 2', [1, 0, 6], 'C1 06 02', 'invalid'],
      ['objlnk of 3 bytes', [0, 0, 17], 'C3 11 00 15 00', 'invalid'],
      ['objlnk of 5 bytes', [0, 0, 17], 'C5 11 00 15 00 01 00', 'invalid'],
      ['invalid UTF-8', [3, 0, 0], 'C2 00 C3 28', 'invalid'],
      ['overlong UTF-8', [3, 0, 0], 'C2 00 C0 AF', 'invalid'],
      ['UTF-8 surrogate', [3, 0, 0], 'C3 00 ED A0 80', 'invalid'],
      ['long invalid UTF-8', [3, 0, 0], 'C8 00 28 ' + '41 '.repeat(39) + 'FF', 'invalid'],
      ['integer of 0 bytes', [3, 0, 9], 'C0 09', 'invalid'],
      ['integer of 9 bytes', [3, 0, 9], 'C8 09 09 00 00 00 00 00 00 00 00 01', 'invalid'],
      ['unsigned of 9 bytes', [0, 0, 13], 'C8 0D 09 00 FF FF FF FF FF FF FF FF', 'invalid'],
      ['time of 0 bytes', [3, 0, 13], 'C0 0D', 'invalid'],
      ['bad value inside a multiple resource', [3, 0], '84 06 42 00 00 00', 'invalid', uniformModel('boolean')],
      // invalid structure
      ['resource instance at the top of an instance', [3, 0], '41 00 01', 'invalid'],
      ['resource instance after resources', [3, 0], 'C1 09 64 41 00 01', 'invalid'],
      ['object instance nested in an object instance', [3], '08 00 03 08 01 00', 'invalid'],
      ['object instance nested in a bare instance', [3, 0], 'C1 09 64 08 00 00', 'invalid'],
      ['object instance inside a multiple resource', [3, 0, 6], '83 06 08 00 00', 'invalid'],
      ['resource inside a multiple resource', [3, 0, 6], '83 06 C1 00 01', 'invalid'],
      ['multiple resource inside a multiple resource', [3, 0], '82 06 80 01', 'invalid'],
      ['resource at the top of an object payload', [3], 'C1 00 01', 'invalid'],
      ['multiple resource at the top of an object payload', [3], '80 06', 'invalid'],
      ['object instance at a resource path', [3, 0, 9], '08 00 00', 'invalid'],
      ['resource at a resource-instance path', [3, 0, 6, 0], 'C1 00 01', 'invalid'],
      ['multiple resource at a resource-instance path', [3, 0, 6, 0], '83 06 41 00 01', 'invalid'],
      ['empty payload for a single resource', [3, 0, 9], '', 'invalid'],
      ['empty payload for an unknown resource', [3, 0, 99], '', 'invalid'],
      ['empty payload for a resource instance', [3, 0, 6, 0], '', 'invalid'],
      ['wrapper followed by a bare resource', [3, 0], '08 00 00 C1 09 64', 'invalid'],
      ['bare resource instances followed by a resource', [3, 0, 6], '41 00 01 C1 06 01', 'invalid'],
      ['resource followed by a resource instance', [3, 0, 9], 'C1 09 64 41 00 01', 'invalid'],
      // bad_path
      ['wrapper ID differs from the path', [3, 0], '08 01 03 C1 09 64', 'bad_path'],
      ['second wrapper with another ID', [3, 0], '08 00 00 08 01 00', 'bad_path'],
      ['resource ID differs from the path', [3, 0, 9], 'C1 0A 0F', 'bad_path'],
      ['multiple resource ID differs from the path', [3, 0, 6], '83 07 41 00 01', 'bad_path'],
      ['second resource with another ID', [3, 0, 9], 'C1 09 64 C1 0A 0F', 'bad_path'],
      ['resource instance ID differs from the path', [3, 0, 6, 1], '41 00 01', 'bad_path'],
      ['second resource instance with another ID', [3, 0, 6, 0], '41 00 01 41 01 05', 'bad_path'],
      ['reserved resource ID 65535', [3, 0], 'E1 FF FF 05', 'bad_path'],
      ['reserved instance ID 65535', [3], '20 FF FF', 'bad_path'],
      ['reserved resource instance ID 65535', [3, 0, 6], '84 06 61 FF FF 01', 'bad_path'],
      // duplicate
      ['resource twice in an instance', [3, 0], 'C1 09 64 C1 09 65', 'duplicate'],
      ['resource twice, once multiple', [3, 0], 'C1 06 01 80 06', 'duplicate'],
      ['instance twice in an object', [3], '08 00 00 08 00 00', 'duplicate'],
      ['wrapper twice at an instance path', [3, 0], '08 00 00 08 00 00', 'duplicate'],
      ['resource instance twice', [3, 0, 6], '86 06 41 00 01 41 00 05', 'duplicate'],
      ['resource instance twice in a bare list', [3, 0, 6], '41 00 01 41 00 05', 'duplicate'],
      ['resource twice at a resource path', [3, 0, 9], 'C1 09 64 C1 09 64', 'duplicate'],
      ['resource instance twice at its path', [3, 0, 6, 0], '41 00 01 41 00 02', 'duplicate'],
      // unsupported
      ['root path', [], 'C1 00 01', 'unsupported'],
    ];
    for (const [name, path, h, reason, models] of bad) {
      it(`${name} → ${reason}`, () => {
        expectCodecError(() => tlvCodec.decode(path, hex(h), models ?? testModels), reason);
      });
    }

    it('names the path of a bad value', () => {
      const e = expectCodecError(() => dec([3, 0], 'C1 09 64 86 06 41 00 01 41 01 05 C0 0D'), 'invalid');
      expect(e.path).to.equal('/3/0/13');
      expect(e.offset).to.equal(11);
      expect(e.message).to.contain('time');
    });

    it('refuses a malformed request path', () => {
      expectCodecError(() => tlvCodec.decode([3, 0, 1, 2, 3], hex('C1 00 01')), 'bad_path');
      expectCodecError(() => tlvCodec.decode([70000], hex('')), 'bad_path');
    });
  });

  describe('encoder errors', () => {
    it('refuses the root path', () => {
      expectCodecError(() => tlvCodec.encode([], N.object(3, [])), 'unsupported');
    });

    it('refuses a node that does not match the path', () => {
      expectCodecError(() => tlvCodec.encode([3, 0], N.resource(0, V.integer(1))), 'bad_path');
      expectCodecError(() => tlvCodec.encode([3, 1], N.instance(0, [])), 'bad_path');
      expectCodecError(() => tlvCodec.encode([3, 0, 1], N.resourceInstance(1, V.integer(1))), 'bad_path');
    });

    it('refuses IDs beyond 16 bits', () => {
      const e = expectCodecError(() => tlvCodec.encode([3, 0], N.instance(0, [N.resource(70000, V.integer(1))])), 'bad_path');
      expect(e.message).to.contain('70000');
      expectCodecError(() => tlvCodec.encode([3, 0, 6], N.multi(6, [[65535, V.integer(1)]])), 'bad_path');
      expectCodecError(() => tlvCodec.encode([3], N.object(3, [N.instance(-1, [])])), 'bad_path');
    });

    it('refuses values of 2^24 bytes or more (too_large)', () => {
      const huge = new Uint8Array(0x1000000);
      const e = expectCodecError(() => tlvCodec.encode([0, 0, 3], N.resource(3, V.opaque(huge))), 'too_large');
      expect(e.path).to.equal('/0/0/3');
      expectCodecError(() => encodeTlvValue(V.opaque(huge)), 'too_large');
      // each value fits, but the multiple resource / object instance holding both does not
      const half = new Uint8Array(0x800000);
      expectCodecError(() => tlvCodec.encode([0, 0, 3], N.multi(3, [[0, V.opaque(half)], [1, V.opaque(half)]])), 'too_large');
      expectCodecError(
        () => encodeTlv([0, 0], N.instance(0, [N.resource(3, V.opaque(half)), N.resource(4, V.opaque(half))]), { wrapInstance: true }),
        'too_large',
      );
      // the bare form has no enclosing length, so the same instance is fine
      expect(encodeTlv([0, 0], N.instance(0, [N.resource(3, V.opaque(half)), N.resource(4, V.opaque(half))])).length).to.equal(2 * (0x800000 + 5));
    });

    it('refuses values that cannot be written', () => {
      const neg = { type: 'unsigned', value: -1 } as Value;
      const e = expectCodecError(() => tlvCodec.encode([0, 0, 13], N.resource(13, neg)), 'out_of_range');
      expect(e.path).to.equal('/0/0/13');
      expectCodecError(() => tlvCodec.encode([0, 0, 13], N.resource(13, { type: 'integer', value: 2n ** 63n } as Value)), 'out_of_range');
      expectCodecError(() => tlvCodec.encode([0, 0, 13], N.resource(13, { type: 'integer', value: 1.5 } as Value)), 'type_mismatch');
      expectCodecError(() => tlvCodec.encode([0, 0, 17], N.resource(17, { type: 'objlnk', value: { objectId: 70000, instanceId: 0 } } as Value)), 'out_of_range');
      const e2 = expectCodecError(() => tlvCodec.encode([3, 0, 6], N.multi(6, [[2, V.string('a\uD800b')]])), 'invalid');
      expect(e2.path).to.equal('/3/0/6/2');
      expectCodecError(() => encodeTlvValue(V.string('\uDC00')), 'invalid');
    });

    it('writes exact doubles beyond 2^53 given as numbers', () => {
      expect(toHex(encodeTlvValue({ type: 'integer', value: 2 ** 60 }))).to.equal('1000000000000000');
      expect(toHex(encodeTlvValue({ type: 'unsigned', value: 2 ** 63 }))).to.equal('8000000000000000');
    });
  });

  describe('properties', () => {
    for (const type of VALUE_TYPES) {
      it(`round-trips nodes of ${type} values at every level`, () => {
        const models = uniformModel(type);
        fc.assert(
          fc.property(nodeAtPath({ type }), ({ path, node }) => {
            const bytes = tlvCodec.encode(path, node);
            const back = tlvCodec.decode(path, bytes, models);
            return nodeEquals(back, node);
          }),
          { numRuns: 60 },
        );
      });
    }

    it('round-trips nodes of mixed types (model built from the node)', () => {
      fc.assert(
        fc.property(nodeAtPath(), fc.boolean(), ({ path, node }, wrap) => {
          const models = lookupFromRecords(nodeToRecords(path, node));
          fc.pre(models !== undefined);
          const bytes = encodeTlv(path, node, { wrapInstance: wrap });
          expect(nodeEquals(tlvCodec.decode(path, bytes, models), node)).to.equal(true);
          expect(toHex(tlvLegacyCodec.encode(path, node))).to.equal(toHex(tlvCodec.encode(path, node)));
        }),
        { numRuns: 200 },
      );
    });

    it('round-trips floats through the 8-byte form as well', () => {
      fc.assert(
        fc.property(nodeAtPath({ type: 'float' }), ({ path, node }) => {
          const bytes = encodeTlv(path, node, { float64: true });
          return nodeEquals(tlvCodec.decode(path, bytes, uniformModel('float')), node);
        }),
        { numRuns: 60 },
      );
    });

    it('without a model, decoded values are opaque with the encoded bytes', () => {
      fc.assert(
        fc.property(nodeAtPath(), ({ path, node }) => {
          const back = tlvCodec.decode(path, tlvCodec.encode(path, node));
          const walk = (a: LwM2MNode, b: LwM2MNode): boolean => {
            if (a.kind !== b.kind || a.id !== b.id) return false;
            if (a.kind === 'resource' || a.kind === 'resourceInstance') {
              const v = (b as typeof a).value;
              return v.type === 'opaque' && toHex(v.value) === toHex(encodeTlvValue(a.value));
            }
            if (a.kind === 'multiResource') {
              const bm = (b as MultiResource).instances;
              return a.instances.size === bm.size && [...a.instances].every(([k, v]) => {
                const w = bm.get(k);
                return w !== undefined && w.type === 'opaque' && toHex(w.value) === toHex(encodeTlvValue(v));
              });
            }
            const ac = a.kind === 'object' ? a.instances : a.resources;
            const bc = (b.kind === 'object' ? b.instances : (b as ObjectInstance).resources) as ReadonlyMap<number, LwM2MNode>;
            return ac.size === bc.size && [...ac].every(([k, v]) => bc.has(k) && walk(v, bc.get(k)!));
          };
          return walk(node, back);
        }),
        { numRuns: 150 },
      );
    });

    const fuzzPaths: Path[] = [[], [0], [3], [0, 1], [3, 0], [2, 0], [3, 0, 6], [3, 0, 9], [0, 0, 13], [3, 0, 6, 0], [2, 0, 2, 127]];
    const onlyCodecErrors = (path: Path, bytes: Uint8Array, models: ModelLookup | undefined): boolean => {
      try {
        tlvCodec.decode(path, bytes, models);
      } catch (e) {
        if (!(e instanceof CodecError)) throw e;
      }
      return true;
    };

    it('fuzz: random bytes give a node or a CodecError, nothing else', () => {
      fc.assert(
        fc.property(fc.constantFrom(...fuzzPaths), fc.uint8Array({ maxLength: 64 }), fc.boolean(), (path, bytes, withModel) =>
          onlyCodecErrors(path, bytes, withModel ? testModels : undefined),
        ),
        { numRuns: 300 },
      );
    });

    it('fuzz: mutated valid payloads give a node or a CodecError, nothing else', () => {
      const seeds: [Path, Uint8Array][] = [
        [[3, 0], hex(DEVICE_HEX)],
        [[3], hex('08 00 79' + DEVICE_HEX)],
        [[2], hex(ACL_HEX)],
        [[0, 1], hex('08 01 5A' + SECURITY_HEX)],
        [[3, 0, 7], hex('88 07 08 42 00 0E D8 42 01 13 88')],
      ];
      const mutation = fc.oneof(
        fc.record({ op: fc.constant('set' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
        fc.record({ op: fc.constant('cut' as const), at: fc.nat(), byte: fc.constant(0) }),
        fc.record({ op: fc.constant('insert' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
      );
      fc.assert(
        fc.property(fc.constantFrom(...seeds), fc.array(mutation, { minLength: 1, maxLength: 4 }), fc.constantFrom(...fuzzPaths), fc.boolean(), ([seedPath, seed], muts, otherPath, samePath) => {
          let b = Array.from(seed);
          for (const m of muts) {
            const at = b.length === 0 ? 0 : m.at % b.length;
            if (m.op === 'set') b[at] = m.byte;
            else if (m.op === 'cut') b = b.slice(0, at);
            else b.splice(at, 0, m.byte);
          }
          const bytes = new Uint8Array(b);
          return onlyCodecErrors(samePath ? seedPath : otherPath, bytes, testModels) && onlyCodecErrors(seedPath, bytes, undefined);
        }),
        { numRuns: 300 },
      );
    });

    it('decoding is idempotent through re-encoding (decode → encode → decode)', () => {
      fc.assert(
        fc.property(fc.constantFrom<Path>([3, 0], [3], [3, 0, 6], [2, 0]), fc.uint8Array({ maxLength: 48 }), (path, bytes) => {
          let node: LwM2MNode;
          try {
            node = tlvCodec.decode(path, bytes, testModels);
          } catch (e) {
            expect(e).to.be.instanceOf(CodecError);
            return true;
          }
          const again = tlvCodec.decode(path, tlvCodec.encode(path, node), testModels);
          return nodeEquals(again, node);
        }),
        { numRuns: 300 },
      );
    });
  });
});

/** The Device instance as decoded without a model: every value opaque. */
function deviceInstanceOpaque(): ObjectInstance {
  const op = (h: string): Value => V.opaque(hex(h));
  const s = (t: string): Value => V.opaque(ascii(t));
  return N.instance(0, [
    N.resource(0, s('Open Mobile Alliance')),
    N.resource(1, s('Lightweight M2M Client')),
    N.resource(2, s('345000123')),
    N.resource(3, s('1.0')),
    N.multi(6, [[0, op('01')], [1, op('05')]]),
    N.multi(7, [[0, op('0ED8')], [1, op('1388')]]),
    N.multi(8, [[0, op('7D')], [1, op('0384')]]),
    N.resource(9, op('64')),
    N.resource(10, op('0F')),
    N.multi(11, [[0, op('00')]]),
    N.resource(13, op('5182428F')),
    N.resource(14, s('+02:00')),
    N.resource(16, s('U')),
  ]);
}
