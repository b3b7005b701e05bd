import { expect } from 'chai';
import fc from 'fast-check';
import { CodecError, type CodecErrorReason } from '../../src/lwm2m/errors.js';
import { cborValueCodec as codec, parseDateTime } from '../../src/lwm2m/formats/cbor-value.js';
import { type LwM2MNode, N, nodeEquals } from '../../src/lwm2m/node.js';
import { formatPath, type Path } from '../../src/lwm2m/path.js';
import { type Value, type ValueType, V } from '../../src/lwm2m/value.js';
import { hex, id, toHex, VALUE_TYPES, valueOf } from '../support/arbitraries.js';
import { testModels } from '../support/models.js';
import { codecError, uniformModel, expectNode } from '../support/expect.js';

const node = (path: Path, value: Value): LwM2MNode =>
  path.length === 3 ? N.resource(path[2] as number, value) : N.resourceInstance(path[3] as number, value);

describe('lwm2m/formats/cbor-value', () => {
  it('describes itself', () => {
    expect(codec.contentFormat).to.equal(60);
    expect(codec.name).to.equal('cbor');
    expect(codec.mediaType).to.equal('application/cbor');
    expect(codec.composite).to.equal(false);
  });

  describe('formats.md §4 vectors', () => {
    // [what, path (typed in testModels), value, bytes]
    const vectors: Array<[string, Path, Value, string]> = [
      ['integer 100', [3, 0, 9], V.integer(100), '18 64'],
      ['true', [1, 0, 6], V.boolean(true), 'F5'],
      ['string "U"', [1, 0, 7], V.string('U'), '61 55'],
      ['bytes 01 02', [0, 0, 3], V.opaque(hex('0102')), '42 01 02'],
      ['time 1367491215', [3, 0, 13], V.time(1367491215), '1A 51 82 42 8F'],
      ['objlnk 21:1', [0, 0, 17], V.objlnk(21, 1), '64 32 31 3A 31'],
      ['resource instance /3/0/6/1 = 5', [3, 0, 6, 1], V.integer(5), '05'],
      ['unsigned 2^64-1', [0, 0, 13], V.unsigned(2n ** 64n - 1n), '1B FF FF FF FF FF FF FF FF'],
      ['integer -750', [3, 0, 9], V.integer(-750), '39 02 ED'],
    ];
    for (const [what, path, value, h] of vectors) {
      it(`${what} at ${formatPath(path)} ↔ ${h}`, () => {
        expect(toHex(codec.encode(path, node(path, value)))).to.equal(toHex(hex(h)));
        expectNode(codec.decode(path, hex(h), testModels), node(path, value));
      });
    }

    it('float 1.5 → F9 3E 00 (half); the double form FB 3F F8 00 … decodes to the same value', () => {
      const p: Path = [5, 0, 1];
      expect(toHex(codec.encode(p, N.resource(1, V.float(1.5))))).to.equal('f93e00');
      expectNode(codec.decode(p, hex('FB 3F F8 00 00 00 00 00 00')), N.resource(1, V.float(1.5)));
      expectNode(codec.decode(p, hex('F9 3E 00'), uniformModel('float')), N.resource(1, V.float(1.5)));
      expectNode(codec.decode(p, hex('FA 3F C0 00 00'), uniformModel('float')), N.resource(1, V.float(1.5)));
    });

    it('time as tag 1 (Leshan) C1 1A 51 82 42 8F', () => {
      const want = N.resource(13, V.time(1367491215));
      expectNode(codec.decode([3, 0, 13], hex('C1 1A 51 82 42 8F'), testModels), want);
      expectNode(codec.decode([3, 0, 13], hex('C1 1A 51 82 42 8F')), want); // the tag says "time" without a model
      expectNode(codec.decode([3, 0, 13], hex('C1 FB 41 D4 60 90 A3 F0 00 00'), testModels), want); // 1367491215.75 → floor
    });

    it('time as tag 0 date-time text', () => {
      const want = N.resource(13, V.time(1367491215));
      // 0("2013-05-02T10:40:15Z")
      expectNode(codec.decode([3, 0, 13], hex('C0 74 32 30 31 33 2D 30 35 2D 30 32 54 31 30 3A 34 30 3A 31 35 5A'), testModels), want);
    });
  });

  describe('RFC 3339 date-time', () => {
    it('parses UTC, offsets and fractions', () => {
      expect(parseDateTime('2013-05-02T10:40:15Z')).to.equal(1367491215);
      expect(parseDateTime('2013-05-02T12:40:15+02:00')).to.equal(1367491215);
      expect(parseDateTime('2013-05-02T08:10:15-02:30')).to.equal(1367491215);
      expect(parseDateTime('2013-05-02t10:40:15.999z')).to.equal(1367491215);
      expect(parseDateTime('1970-01-01T00:00:00Z')).to.equal(0);
      expect(parseDateTime('1969-12-31T23:59:59.5Z')).to.equal(-1);
      expect(parseDateTime('2016-12-31T23:59:60Z')).to.equal(1483228800); // leap second rolls over
      expect(parseDateTime('2024-02-29T00:00:00Z')).to.equal(1709164800);
    });

    it('refuses malformed and impossible dates', () => {
      for (const s of ['2013-05-02', '2013-05-02T10:40:15', '2013-13-01T00:00:00Z', '2013-04-31T00:00:00Z', '2023-02-29T00:00:00Z',
        '2013-05-02T24:00:00Z', '2013-05-02T10:60:00Z', '2013-05-02T10:40:61Z', '2013-05-02T10:40:15+24:00', ' 2013-05-02T10:40:15Z', '13-05-02T10:40:15Z']) {
        expect(parseDateTime(s), s).to.equal(undefined);
      }
    });
  });

  describe('levels', () => {
    it('refuses to encode objects, instances and multiple resources', () => {
      const inst = N.instance(0, [N.resource(0, V.string('x'))]);
      expect(codecError(() => codec.encode([3, 0], inst)).reason).to.equal('unsupported');
      expect(codecError(() => codec.encode([3], N.object(3, [inst]))).reason).to.equal('unsupported');
      expect(codecError(() => codec.encode([3, 0, 6], N.multi(6, [[0, V.integer(1)]]))).reason).to.equal('unsupported');
      expect(codecError(() => codec.encode([], inst)).reason).to.equal('unsupported');
    });

    it('refuses a node that does not match its path', () => {
      expect(codecError(() => codec.encode([3, 0, 1], N.resource(0, V.string('x')))).reason).to.equal('bad_path');
      expect(codecError(() => codec.encode([3, 0, 1, 2], N.resource(2, V.string('x')))).reason).to.equal('bad_path');
      expect(codecError(() => codec.encode([3, 0, 65535], N.resource(65535, V.string('x')))).reason).to.equal('bad_path');
    });

    it('refuses to decode at object or instance level, and for a multiple resource', () => {
      expect(codecError(() => codec.decode([3, 0], hex('01'))).reason).to.equal('unsupported');
      expect(codecError(() => codec.decode([3], hex('01'))).reason).to.equal('unsupported');
      expect(codecError(() => codec.decode([], hex('01'))).reason).to.equal('unsupported');
      expect(codecError(() => codec.decode([3, 0, 6], hex('01'), testModels)).reason).to.equal('unsupported');
      // one instance of that multiple resource is fine
      expectNode(codec.decode([3, 0, 6, 0], hex('01'), testModels), N.resourceInstance(0, V.integer(1)));
    });
  });

  describe('malformed input', () => {
    const cases: Array<[string, Path, string, CodecErrorReason]> = [
      ['empty payload', [3, 0, 9], '', 'truncated'],
      ['truncated integer', [3, 0, 9], '19 01', 'truncated'],
      ['two items', [3, 0, 9], '01 02', 'trailing'],
      ['reserved info', [3, 0, 9], '1C', 'invalid'],
      ['a break', [3, 0, 9], 'FF', 'invalid'],
      ['text for an integer resource', [3, 0, 9], '61 31', 'type_mismatch'],
      ['fractional float for an integer resource', [3, 0, 9], 'F9 3E 00', 'type_mismatch'],
      ['NaN for an integer resource', [3, 0, 9], 'F9 7E 00', 'type_mismatch'],
      ['integer for a string resource', [3, 0, 0], '01', 'type_mismatch'],
      ['bytes for a string resource', [3, 0, 0], '41 61', 'type_mismatch'],
      ['text for a boolean resource', [1, 0, 6], '64 74 72 75 65', 'type_mismatch'],
      ['integer for a boolean resource', [1, 0, 6], '01', 'type_mismatch'],
      ['text for an opaque resource', [0, 0, 3], '61 61', 'type_mismatch'],
      ['a map', [3, 0, 0], 'A1 00 61 61', 'type_mismatch'],
      ['an array', [3, 0, 0], '81 61 61', 'type_mismatch'],
      ['a map without a model', [9, 0, 0], 'A1 00 61 61', 'invalid'],
      ['undefined without a model', [9, 0, 0], 'F7', 'invalid'],
      ['simple(16) without a model', [9, 0, 0], 'F0', 'invalid'],
      ['null', [3, 0, 0], 'F6', 'invalid'],
      ['null without a model', [9, 0, 0], 'F6', 'invalid'],
      ['integer beyond int64', [3, 0, 9], '1B FF FF FF FF FF FF FF FF', 'out_of_range'],
      ['integer below int64', [9, 0, 0], '3B FF FF FF FF FF FF FF FF', 'out_of_range'],
      ['negative unsigned', [0, 0, 13], '20', 'out_of_range'],
      ['tag 1 for a string resource', [3, 0, 0], 'C1 01', 'type_mismatch'],
      ['tag 0 for an integer resource', [3, 0, 9], 'C0 61 61', 'type_mismatch'],
      ['tag 1 around text', [3, 0, 13], 'C1 61 61', 'invalid'],
      ['tag 1 around infinity', [3, 0, 13], 'C1 F9 7C 00', 'invalid'],
      ['tag 0 around an integer', [3, 0, 13], 'C0 01', 'invalid'],
      ['tag 0 with a bad date', [3, 0, 13], 'C0 63 6E 6F 77', 'invalid'],
      ['unknown tag', [3, 0, 9], 'C2 41 01', 'invalid'],
      ['object link without colon', [0, 0, 17], '63 32 31 31', 'invalid'],
      ['object link ID beyond 65535', [0, 0, 17], '67 37 30 30 30 30 3A 31', 'out_of_range'],
      ['object link as bytes', [0, 0, 17], '44 00 15 00 01', 'type_mismatch'],
      ['invalid UTF-8', [3, 0, 0], '62 C3 28', 'invalid'],
      ['deep nesting', [9, 0, 0], '81 81 81 81 81 00', 'too_deep'],
    ];
    for (const [what, path, h, reason] of cases) {
      it(`${what} (${h || 'no bytes'}) at ${formatPath(path)} → ${reason}`, () => {
        const e = codecError(() => codec.decode(path, hex(h), testModels));
        expect(e.reason, e.message).to.equal(reason);
        expect(e.format).to.equal('cbor');
      });
    }

    it('names the path of a type mismatch', () => {
      const e = codecError(() => codec.decode([3, 0, 0], hex('01'), testModels));
      expect(e.path).to.equal('/3/0/0');
      expect(e.message).to.contain('string').and.contain('integer');
    });
  });

  describe('lenient decoding', () => {
    it('an integral float for an integer resource', () => {
      expectNode(codec.decode([3, 0, 9], hex('F9 56 40'), testModels), N.resource(9, V.integer(100)));
    });

    it('non-minimal integer heads and indefinite-length strings', () => {
      expectNode(codec.decode([3, 0, 9], hex('1B 00 00 00 00 00 00 00 64'), testModels), N.resource(9, V.integer(100)));
      expectNode(codec.decode([3, 0, 0], hex('7F 62 4F 70 61 65 FF'), testModels), N.resource(0, V.string('Ope')));
      expectNode(codec.decode([0, 0, 3], hex('5F 41 01 41 02 FF'), testModels), N.resource(3, V.opaque(hex('0102'))));
    });

    it('the self-described CBOR tag 55799', () => {
      expectNode(codec.decode([3, 0, 9], hex('D9 D9 F7 18 64'), testModels), N.resource(9, V.integer(100)));
    });

    it('infers the type without a model', () => {
      const p: Path = [9, 0, 0];
      expectNode(codec.decode(p, hex('61 55')), N.resource(0, V.string('U')));
      expectNode(codec.decode(p, hex('42 01 02')), N.resource(0, V.opaque(hex('0102'))));
      expectNode(codec.decode(p, hex('38 63')), N.resource(0, V.integer(-100)));
      expectNode(codec.decode(p, hex('F4')), N.resource(0, V.boolean(false)));
      expectNode(codec.decode(p, hex('FB 3F B9 99 99 99 99 99 9A')), N.resource(0, V.float(0.1)));
      expectNode(codec.decode(p, hex('1B FF FF FF FF FF FF FF FF')), N.resource(0, V.unsigned(2n ** 64n - 1n)));
    });
  });

  describe('properties', () => {
    const pathArb = fc.oneof(fc.tuple(id(), id(), id()), fc.tuple(id(), id(), id(), id())).map((p) => p as Path);

    it('encode → decode is the identity for every type (typed model)', () => {
      fc.assert(
        fc.property(
          fc.constantFrom(...VALUE_TYPES).chain((t) => fc.tuple(fc.constant(t), valueOf(t))),
          pathArb,
          ([type, value], path) => {
            const n = node(path, value);
            expectNode(codec.decode(path, codec.encode(path, n), uniformModel(type)), n);
          },
        ),
        { numRuns: 300 },
      );
    });

    it('round-trips string, integer, float, boolean and opaque without a model', () => {
      fc.assert(
        fc.property(
          fc.constantFrom<ValueType>('string', 'integer', 'float', 'boolean', 'opaque').chain(valueOf),
          pathArb,
          (value, path) => nodeEquals(codec.decode(path, codec.encode(path, node(path, value))), node(path, value)),
        ),
        { numRuns: 200 },
      );
    });

    it('random and mutated bytes never throw anything but a CodecError', () => {
      fc.assert(
        fc.property(
          fc.oneof(
            fc.uint8Array({ maxLength: 40 }),
            fc.tuple(fc.constantFrom(...VALUE_TYPES).chain(valueOf), fc.nat(), fc.nat(255)).map(([v, at, b]) => {
              const bytes = codec.encode([3, 0, 1], N.resource(1, v)).slice();
              bytes[at % bytes.length] = b;
              return bytes;
            }),
          ),
          fc.constantFrom<Path>([3, 0, 0], [3, 0, 9], [3, 0, 13], [0, 0, 17], [0, 0, 3], [9, 9, 9]),
          (b, path) => {
            try {
              codec.decode(path, b, testModels);
            } catch (e) {
              if (!(e instanceof CodecError)) throw e;
            }
          },
        ),
        { numRuns: 300 },
      );
    });
  });
});
