import { expect } from 'chai';
import fc from 'fast-check';
import { CodecError, type CodecErrorReason } from '../../src/lwm2m/errors.js';
import { formatFloatText, textCodec } from '../../src/lwm2m/formats/text.js';
import type { ModelLookup } from '../../src/lwm2m/model.js';
import { type LwM2MNode, N, nodeEquals } from '../../src/lwm2m/node.js';
import type { Path } from '../../src/lwm2m/path.js';
import { NULL_OBJLNK, V, type Value, type ValueType, valueEquals } from '../../src/lwm2m/value.js';
import { hex, id, VALUE_TYPES, valueOf } from '../support/arbitraries.js';
import { testModels } from '../support/models.js';
import { codecError, uniformModel } from '../support/expect.js';

const codec = textCodec;
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const text = (b: Uint8Array): string => new TextDecoder().decode(b);

/** Decodes `payload` at `path` and returns the single value. */
function valueAt(path: Path, payload: string | Uint8Array, models: ModelLookup | undefined = testModels): Value {
  const node = codec.decode(path, typeof payload === 'string' ? utf8(payload) : payload, models);
  if (node.kind !== 'resource' && node.kind !== 'resourceInstance') throw new Error(`unexpected ${node.kind}`);
  return node.value;
}

function expectValue(actual: Value, expected: Value): void {
  expect(valueEquals(actual, expected), `${String(actual.value)} (${actual.type}) != ${String(expected.value)} (${expected.type})`).to.equal(true);
}

const FLOAT = uniformModel('float');

describe('lwm2m/formats/text', () => {
  it('is Content-Format 0, text/plain;charset=utf-8, not composite', () => {
    expect(codec).to.include({ contentFormat: 0, name: 'text', mediaType: 'text/plain;charset=utf-8', composite: false });
  });

  describe('formats.md §2 / §4 examples', () => {
    it('Integer -750 ↔ "-750"', () => {
      expect(text(codec.encode([3, 0, 9], N.resource(9, V.integer(-750))))).to.equal('-750');
      expectValue(valueAt([3, 0, 9], '-750'), V.integer(-750));
    });

    it('Float 6.667e-11 ↔ "0.00000000006667" (plain decimal, no exponent)', () => {
      expect(text(codec.encode([3303, 0, 5700], N.resource(5700, V.float(6.667e-11))))).to.equal('0.00000000006667');
      expectValue(valueAt([3303, 0, 5700], '0.00000000006667', FLOAT), V.float(6.667e-11));
      expectValue(valueAt([3303, 0, 5700], '6.667e-11', FLOAT), V.float(6.667e-11));
    });

    it('Opaque 01 02 03 04 05 ↔ "AQIDBAU="', () => {
      const v = V.opaque(hex('01 02 03 04 05'));
      expect(text(codec.encode([0, 0, 3], N.resource(3, v)))).to.equal('AQIDBAU=');
      expectValue(valueAt([0, 0, 3], 'AQIDBAU='), v);
      expectValue(valueAt([0, 0, 3], 'AQIDBAU'), v); // unpadded
      expectValue(valueAt([0, 0, 3], '-_-_'), V.opaque(hex('FB FF BF'))); // url-safe alphabet
      expect(text(codec.encode([0, 0, 3], N.resource(3, V.opaque(hex('FB FF BF')))))).to.equal('+/+/');
      expectValue(valueAt([0, 0, 3], ''), V.opaque(new Uint8Array()));
    });

    it('Objlnk 21:1 and the null link 65535:65535 (also FFFF:FFFF on input)', () => {
      expect(text(codec.encode([0, 0, 17], N.resource(17, V.objlnk(21, 1))))).to.equal('21:1');
      expect(text(codec.encode([0, 0, 17], N.resource(17, V.objlnk(65535, 65535))))).to.equal('65535:65535');
      expectValue(valueAt([0, 0, 17], '21:1'), V.objlnk(21, 1));
      expectValue(valueAt([0, 0, 17], '65535:65535'), V.objlnk(65535, 65535));
      expect(valueAt([0, 0, 17], 'FFFF:FFFF').value).to.deep.equal(NULL_OBJLNK);
      expectValue(valueAt([3, 0, 22, 1], '66:0'), V.objlnk(66, 0)); // a resource instance of a multiple objlnk
    });

    it('Time 1476186613 ↔ "1476186613"', () => {
      expect(text(codec.encode([3, 0, 13], N.resource(13, V.time(1476186613))))).to.equal('1476186613');
      expectValue(valueAt([3, 0, 13], '1476186613'), V.time(1476186613));
      expectValue(valueAt([1, 0, 12], '1476186613'), V.time(1476186613));
    });

    it('Boolean 0 / 1', () => {
      expect(text(codec.encode([1, 0, 6], N.resource(6, V.boolean(true))))).to.equal('1');
      expect(text(codec.encode([1, 0, 6], N.resource(6, V.boolean(false))))).to.equal('0');
      expectValue(valueAt([1, 0, 6], '1'), V.boolean(true));
      expectValue(valueAt([1, 0, 6], '0'), V.boolean(false));
    });

    it('String as UTF-8 bytes, no trailing newline', () => {
      expect(codec.encode([3, 0, 0], N.resource(0, V.string('Open Mobile Alliance')))).to.deep.equal(utf8('Open Mobile Alliance'));
      expect(codec.encode([3, 0, 14], N.resource(14, V.string('é€')))).to.deep.equal(hex('C3 A9 E2 82 AC'));
      expectValue(valueAt([3, 0, 14], hex('C3 A9 E2 82 AC')), V.string('é€'));
      expectValue(valueAt([3, 0, 14], '+02:00'), V.string('+02:00'));
      // Strings are byte-exact: whitespace and a BOM stay.
      expectValue(valueAt([3, 0, 0], ' a \n'), V.string(' a \n'));
      expectValue(valueAt([3, 0, 0], hex('EF BB BF 61')), V.string('\uFEFFa'));
    });

    it('a resource instance /o/i/r/ri carries one value', () => {
      expect(text(codec.encode([3, 0, 7, 1], N.resourceInstance(1, V.integer(5000))))).to.equal('5000');
      const node = codec.decode([3, 0, 7, 1], utf8('5000'), testModels);
      expect(nodeEquals(node, N.resourceInstance(1, V.integer(5000)))).to.equal(true);
    });
  });

  describe('integers', () => {
    it('are exact to 64 bits', () => {
      expect(text(codec.encode([3, 0, 9], N.resource(9, V.integer(2n ** 63n - 1n))))).to.equal('9223372036854775807');
      expect(text(codec.encode([3, 0, 9], N.resource(9, V.integer(-(2n ** 63n)))))).to.equal('-9223372036854775808');
      expect(text(codec.encode([0, 0, 13], N.resource(13, V.unsigned(2n ** 64n - 1n))))).to.equal('18446744073709551615');
      expectValue(valueAt([3, 0, 9], '9223372036854775807'), V.integer(2n ** 63n - 1n));
      expectValue(valueAt([3, 0, 9], '-9223372036854775808'), V.integer(-(2n ** 63n)));
      expectValue(valueAt([3, 0, 9], '9007199254740993'), V.integer(9007199254740993n));
      expectValue(valueAt([0, 0, 13], '18446744073709551615'), V.unsigned(2n ** 64n - 1n));
    });

    it('tolerate surrounding whitespace and leading zeros', () => {
      expectValue(valueAt([3, 0, 9], ' 42\r\n'), V.integer(42));
      expectValue(valueAt([3, 0, 9], '007'), V.integer(7));
      expectValue(valueAt([3, 0, 9], '-0'), V.integer(0));
      expectValue(valueAt([3, 0, 9], '000000000000000000000000000000001'), V.integer(1));
    });

    const bad: [string, Path, CodecErrorReason][] = [
      ['9223372036854775808', [3, 0, 9], 'out_of_range'],
      ['-9223372036854775809', [3, 0, 9], 'out_of_range'],
      ['18446744073709551616', [0, 0, 13], 'out_of_range'],
      ['-1', [0, 0, 13], 'out_of_range'],
      ['1' + '0'.repeat(5000), [3, 0, 9], 'out_of_range'],
      ['+5', [3, 0, 9], 'invalid'],
      ['4 2', [3, 0, 9], 'invalid'],
      ['', [3, 0, 9], 'invalid'],
      ['  ', [3, 0, 9], 'invalid'],
      ['-', [3, 0, 9], 'invalid'],
      ['1.5', [3, 0, 9], 'invalid'],
      ['1e3', [3, 0, 9], 'invalid'],
      ['0x10', [3, 0, 9], 'invalid'],
      ['１２', [3, 0, 9], 'invalid'], // full-width digits
      ['1476186613.5', [3, 0, 13], 'invalid'],
    ];
    for (const [input, path, reason] of bad) {
      it(`${JSON.stringify(input.length > 30 ? input.slice(0, 30) + '…' : input)} → ${reason}`, () => {
        const err = codecError(() => codec.decode(path, utf8(input), testModels));
        expect(err.reason).to.equal(reason);
        expect(err.path).to.equal('/' + path.join('/'));
      });
    }
  });

  describe('floats', () => {
    it('are written as plain decimals when the exponent is within ±30, exponent form beyond', () => {
      const cases: [number, string][] = [
        [1.5, '1.5'],
        [-2.25, '-2.25'],
        [5, '5'],
        [0, '0'],
        [-0, '-0'],
        [0.1, '0.1'],
        [1e-7, '0.0000001'],
        [-1.5e-10, '-0.00000000015'],
        [1e21, '1000000000000000000000'],
        [1.2345e25, '12345000000000000000000000'],
        [1e-30, '0.000000000000000000000000000001'],
        [1e-31, '1e-31'],
        [1e31, '1e+31'],
        [5e-324, '5e-324'],
        [1.7976931348623157e308, '1.7976931348623157e+308'],
        [123456.789, '123456.789'],
      ];
      for (const [x, s] of cases) {
        expect(formatFloatText(x), String(x)).to.equal(s);
        expect(text(codec.encode([3303, 0, 5700], N.resource(5700, V.float(x))))).to.equal(s);
        expect(Object.is(Number(s), x), s).to.equal(true);
      }
    });

    it('NaN and infinities cannot be written', () => {
      for (const x of [NaN, Infinity, -Infinity]) {
        expect(codecError(() => codec.encode([3303, 0, 5700], N.resource(5700, V.float(x)))).reason).to.equal('unsupported');
      }
    });

    it('accept exponents, either case, "5." and ".5", surrounding whitespace, and -0', () => {
      const cases: [string, number][] = [['1.0E5', 1e5], ['2.5e+3', 2500], ['.5', 0.5], ['5.', 5], ['-3', -3], [' 22.4\n', 22.4], ['-0', -0], ['1e-400', 0]];
      for (const [s, x] of cases) expect(Object.is(valueAt([3303, 0, 5700], s, FLOAT).value, x), s).to.equal(true);
    });

    for (const [input, reason] of [
      ['NaN', 'invalid'], ['Infinity', 'invalid'], ['-Infinity', 'invalid'], ['0x10', 'invalid'], ['1e', 'invalid'],
      ['1e+', 'invalid'], ['', 'invalid'], ['.', 'invalid'], ['-', 'invalid'], ['1.2.3', 'invalid'], ['+1', 'invalid'],
      ['1,5', 'invalid'], ['1 000', 'invalid'], ['1e999', 'out_of_range'], ['-1e999', 'out_of_range'],
    ] as const) {
      it(`${JSON.stringify(input)} → ${reason}`, () => {
        expect(codecError(() => codec.decode([3303, 0, 5700], utf8(input), FLOAT)).reason).to.equal(reason);
      });
    }
  });

  describe('booleans, links, opaque, strings: lenient and strict parts', () => {
    it('booleans also accept true / false and surrounding whitespace', () => {
      expectValue(valueAt([1, 0, 6], 'true'), V.boolean(true));
      expectValue(valueAt([1, 0, 6], 'false'), V.boolean(false));
      expectValue(valueAt([1, 0, 6], ' 1\n'), V.boolean(true));
      for (const bad of ['2', 'yes', 'TRUE', '', '01', '-1']) {
        expect(codecError(() => codec.decode([1, 0, 6], utf8(bad), testModels)).reason, bad).to.equal('invalid');
      }
    });

    it('object links: malformed → invalid, IDs beyond 65535 → out_of_range, with the path', () => {
      for (const bad of ['21', '21:', ':1', '21:1:2', 'a:b', '', '21;1']) {
        const err = codecError(() => codec.decode([0, 0, 17], utf8(bad), testModels));
        expect(err.reason, bad).to.equal('invalid');
        expect(err.path).to.equal('/0/0/17');
        expect(err.format).to.equal('text');
      }
      expect(codecError(() => codec.decode([0, 0, 17], utf8('70000:1'), testModels)).reason).to.equal('out_of_range');
      expectValue(valueAt([0, 0, 17], ' 21:1\n'), V.objlnk(21, 1));
    });

    it('opaque: malformed base64 → invalid', () => {
      for (const bad of ['AQ*D', 'A', 'AQIDBAU==', '=AQI', 'é']) {
        expect(codecError(() => codec.decode([0, 0, 3], utf8(bad), testModels)).reason, bad).to.equal('invalid');
      }
    });

    it('strings and core links: invalid UTF-8 → invalid', () => {
      for (const bytes of ['FF', 'C3', 'ED A0 80', 'C0 AF']) {
        expect(codecError(() => codec.decode([3, 0, 0], hex(bytes), testModels)).reason, bytes).to.equal('invalid');
        expect(codecError(() => codec.decode([1, 0, 9], hex(bytes), uniformModel('corelnk'))).reason, bytes).to.equal('invalid');
      }
      expectValue(valueAt([9, 0, 1], '</3303/0/5700>;gt=23', uniformModel('corelnk')), V.corelnk('</3303/0/5700>;gt=23'));
    });
  });

  describe('without a type', () => {
    it('an unknown resource decodes to opaque holding the raw bytes (a copy)', () => {
      const payload = utf8('hello');
      const v = valueAt([3442, 0, 1], payload);
      expectValue(v, V.opaque(utf8('hello')));
      payload[0] = 0x4a;
      expectValue(v, V.opaque(utf8('hello')));
      // No model at all (a default parameter would turn an explicit undefined into testModels).
      expect(nodeEquals(codec.decode([3, 0, 9], utf8('100')), N.resource(9, V.opaque(utf8('100'))))).to.equal(true);
      expect(nodeEquals(codec.decode([3, 0, 9, 2], hex('FF 00')), N.resourceInstance(2, V.opaque(hex('FF 00'))))).to.equal(true);
    });

    it('an executable resource (type none) also decodes to opaque', () => {
      expectValue(valueAt([3, 0, 4], '0'), V.opaque(utf8('0')));
    });
  });

  describe('what text cannot carry', () => {
    it('encoding an instance, an object or a multiple resource → unsupported', () => {
      expect(codecError(() => codec.encode([3, 0], N.instance(0, [N.resource(9, V.integer(1))]))).reason).to.equal('unsupported');
      expect(codecError(() => codec.encode([3], N.object(3, []))).reason).to.equal('unsupported');
      expect(codecError(() => codec.encode([3, 0, 6], N.multi(6, [[0, V.integer(1)]]))).reason).to.equal('unsupported');
    });

    it('decoding at an object or instance path, or a multiple resource → unsupported', () => {
      expect(codecError(() => codec.decode([3, 0], utf8('1'), testModels)).reason).to.equal('unsupported');
      expect(codecError(() => codec.decode([3], utf8('1'), testModels)).reason).to.equal('unsupported');
      expect(codecError(() => codec.decode([], utf8('1'), testModels)).reason).to.equal('unsupported');
      expect(codecError(() => codec.decode([3, 0, 6], utf8('1'), testModels)).reason).to.equal('unsupported');
    });

    it('a node that does not sit at the path → bad_path', () => {
      expect(codecError(() => codec.encode([3, 0, 9], N.resource(10, V.integer(1)))).reason).to.equal('bad_path');
      expect(codecError(() => codec.encode([3, 0, 9], N.resourceInstance(9, V.integer(1)))).reason).to.equal('bad_path');
    });
  });

  describe('round trip (property)', () => {
    const leaf = (type: ValueType): fc.Arbitrary<{ path: Path; node: LwM2MNode }> =>
      fc.oneof(
        fc.tuple(id(), id(), id(), valueOf(type)).map(([o, i, r, v]) => ({ path: [o, i, r] as Path, node: N.resource(r, v) as LwM2MNode })),
        fc.tuple(id(), id(), id(), id(), valueOf(type)).map(([o, i, r, ri, v]) => ({ path: [o, i, r, ri] as Path, node: N.resourceInstance(ri, v) as LwM2MNode })),
      );

    for (const type of VALUE_TYPES) {
      it(`${type}: decode(encode(value)) equals the value with a model of that type`, () => {
        fc.assert(
          fc.property(leaf(type), ({ path, node }) => {
            const back = codec.decode(path, codec.encode(path, node), uniformModel(type));
            expect(nodeEquals(back, node)).to.equal(true);
          }),
          { numRuns: 150 },
        );
      });
    }

    it('without a model, decode returns exactly the encoded bytes', () => {
      fc.assert(
        fc.property(fc.constantFrom(...VALUE_TYPES).chain(leaf), ({ path, node }) => {
          const bytes = codec.encode(path, node);
          const back = codec.decode(path, bytes);
          expect(back.kind !== 'object' && back.kind !== 'instance' && back.kind !== 'multiResource' && valueEquals(back.value, V.opaque(bytes))).to.equal(true);
        }),
        { numRuns: 100 },
      );
    });
  });

  describe('fuzz: only CodecError or success', () => {
    it('random bytes and random text for every type', () => {
      const payload = fc.oneof(
        fc.uint8Array({ maxLength: 48 }),
        fc.string({ maxLength: 30 }).map(utf8),
        fc.stringMatching(/^[-+ 0-9.eE:A-Fa-f=_/x]{0,25}$/).map(utf8),
      );
      const models = fc.constantFrom<ModelLookup | undefined>(undefined, testModels, ...VALUE_TYPES.map((t) => uniformModel(t)), uniformModel('integer', true));
      const paths = fc.constantFrom<Path>([3, 0, 9], [3, 0, 6], [3, 0, 6, 0], [0, 0, 3], [0, 0, 17], [3, 0], [1, 0, 6]);
      fc.assert(
        fc.property(payload, models, paths, (p, m, path) => {
          try {
            codec.decode(path, p, m);
          } catch (e) {
            if (!(e instanceof CodecError)) throw e;
          }
        }),
        { numRuns: 300 },
      );
    });
  });
});
