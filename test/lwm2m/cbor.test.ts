import { expect } from 'chai';
import fc from 'fast-check';
import {
  CborFloat,
  type CborItem,
  CborMap,
  CborSimple,
  CborTag,
  CborWriter,
  cborKind,
  decodeCbor,
  encodeCbor,
  fromHalf,
  toHalf,
} from '../../src/lwm2m/cbor.js';
import { CodecError, type CodecErrorReason } from '../../src/lwm2m/errors.js';
import { hex, toHex } from '../support/arbitraries.js';
import { codecError } from '../support/expect.js';

/** Runs `fn`, expects a CodecError, returns it. */
const m = (...entries: Array<[CborItem, CborItem]>): CborMap => new CborMap(entries);
const f = (v: number): CborFloat => new CborFloat(v);
const range = (a: number, b: number): number[] => Array.from({ length: b - a + 1 }, (_, i) => a + i);

interface Vector {
  diag: string;
  hex: string;
  value: CborItem;
  /** Our encoder (preferred serialization, definite lengths) produces exactly these bytes. */
  encodes: boolean;
}

const v = (diag: string, h: string, value: CborItem, encodes = true): Vector => ({ diag, hex: h, value, encodes });

// RFC 8949 Appendix A, Table 6 (expected values written by hand from the diagnostic notation)
const APPENDIX_A: Vector[] = [
  v('0', '00', 0),
  v('1', '01', 1),
  v('10', '0a', 10),
  v('23', '17', 23),
  v('24', '1818', 24),
  v('25', '1819', 25),
  v('100', '1864', 100),
  v('1000', '1903e8', 1000),
  v('1000000', '1a000f4240', 1000000),
  v('1000000000000', '1b000000e8d4a51000', 1000000000000),
  v('18446744073709551615', '1bffffffffffffffff', 18446744073709551615n),
  v('18446744073709551616 (bignum, kept as tag 2)', 'c249010000000000000000', new CborTag(2, hex('010000000000000000'))),
  v('-18446744073709551616', '3bffffffffffffffff', -18446744073709551616n),
  v('-18446744073709551617 (bignum, kept as tag 3)', 'c349010000000000000000', new CborTag(3, hex('010000000000000000'))),
  v('-1', '20', -1),
  v('-10', '29', -10),
  v('-100', '3863', -100),
  v('-1000', '3903e7', -1000),
  v('0.0', 'f90000', f(0)),
  v('-0.0', 'f98000', f(-0)),
  v('1.0', 'f93c00', f(1)),
  v('1.1', 'fb3ff199999999999a', f(1.1)),
  v('1.5', 'f93e00', f(1.5)),
  v('65504.0', 'f97bff', f(65504)),
  v('100000.0', 'fa47c35000', f(100000)),
  v('3.4028234663852886e+38', 'fa7f7fffff', f(3.4028234663852886e38)),
  v('1.0e+300', 'fb7e37e43c8800759c', f(1.0e300)),
  v('5.960464477539063e-8', 'f90001', f(5.960464477539063e-8)),
  v('0.00006103515625', 'f90400', f(0.00006103515625)),
  v('-4.0', 'f9c400', f(-4)),
  v('-4.1', 'fbc010666666666666', f(-4.1)),
  v('Infinity', 'f97c00', f(Infinity)),
  v('NaN', 'f97e00', f(NaN)),
  v('-Infinity', 'f9fc00', f(-Infinity)),
  v('Infinity (single)', 'fa7f800000', f(Infinity), false),
  v('NaN (single)', 'fa7fc00000', f(NaN), false),
  v('-Infinity (single)', 'faff800000', f(-Infinity), false),
  v('Infinity (double)', 'fb7ff0000000000000', f(Infinity), false),
  v('NaN (double)', 'fb7ff8000000000000', f(NaN), false),
  v('-Infinity (double)', 'fbfff0000000000000', f(-Infinity), false),
  v('false', 'f4', false),
  v('true', 'f5', true),
  v('null', 'f6', null),
  v('undefined', 'f7', undefined),
  v('simple(16)', 'f0', new CborSimple(16)),
  v('simple(255)', 'f8ff', new CborSimple(255)),
  v('0("2013-03-21T20:04:00Z")', 'c074323031332d30332d32315432303a30343a30305a', new CborTag(0, '2013-03-21T20:04:00Z')),
  v('1(1363896240)', 'c11a514b67b0', new CborTag(1, 1363896240)),
  v('1(1363896240.5)', 'c1fb41d452d9ec200000', new CborTag(1, f(1363896240.5))),
  v("23(h'01020304')", 'd74401020304', new CborTag(23, hex('01020304'))),
  v("24(h'6449455446')", 'd818456449455446', new CborTag(24, hex('6449455446'))),
  v('32("http://www.example.com")', 'd82076687474703a2f2f7777772e6578616d706c652e636f6d', new CborTag(32, 'http://www.example.com')),
  v("h''", '40', new Uint8Array(0)),
  v("h'01020304'", '4401020304', hex('01020304')),
  v('""', '60', ''),
  v('"a"', '6161', 'a'),
  v('"IETF"', '6449455446', 'IETF'),
  v('"\\"\\\\"', '62225c', '"\\'),
  v('"\\u00fc"', '62c3bc', '\u00fc'),
  v('"\\u6c34"', '63e6b0b4', '\u6c34'),
  v('"\\ud800\\udd51"', '64f0908591', '\ud800\udd51'),
  v('[]', '80', []),
  v('[1, 2, 3]', '83010203', [1, 2, 3]),
  v('[1, [2, 3], [4, 5]]', '8301820203820405', [1, [2, 3], [4, 5]]),
  v('[1, 2, ..., 25]', '98190102030405060708090a0b0c0d0e0f101112131415161718181819', range(1, 25)),
  v('{}', 'a0', m()),
  v('{1: 2, 3: 4}', 'a201020304', m([1, 2], [3, 4])),
  v('{"a": 1, "b": [2, 3]}', 'a26161016162820203', m(['a', 1], ['b', [2, 3]])),
  v('["a", {"b": "c"}]', '826161a161626163', ['a', m(['b', 'c'])]),
  v(
    '{"a": "A", "b": "B", "c": "C", "d": "D", "e": "E"}',
    'a56161614161626142616361436164614461656145',
    m(['a', 'A'], ['b', 'B'], ['c', 'C'], ['d', 'D'], ['e', 'E']),
  ),
  v("(_ h'0102', h'030405')", '5f42010243030405ff', hex('0102030405'), false),
  v('(_ "strea", "ming")', '7f657374726561646d696e67ff', 'streaming', false),
  v('[_ ]', '9fff', [], false),
  v('[_ 1, [2, 3], [_ 4, 5]]', '9f018202039f0405ffff', [1, [2, 3], [4, 5]], false),
  v('[_ 1, [2, 3], [4, 5]]', '9f01820203820405ff', [1, [2, 3], [4, 5]], false),
  v('[1, [2, 3], [_ 4, 5]]', '83018202039f0405ff', [1, [2, 3], [4, 5]], false),
  v('[1, [_ 2, 3], [4, 5]]', '83019f0203ff820405', [1, [2, 3], [4, 5]], false),
  v('[_ 1, 2, ..., 25]', '9f0102030405060708090a0b0c0d0e0f101112131415161718181819ff', range(1, 25), false),
  v('{_ "a": 1, "b": [_ 2, 3]}', 'bf61610161629f0203ffff', m(['a', 1], ['b', [2, 3]]), false),
  v('["a", {_ "b": "c"}]', '826161bf61626163ff', ['a', m(['b', 'c'])], false),
  v('{_ "Fun": true, "Amt": -2}', 'bf6346756ef563416d7421ff', m(['Fun', true], ['Amt', -2]), false),
];

describe('lwm2m/cbor', () => {
  describe('RFC 8949 Appendix A', () => {
    for (const t of APPENDIX_A) {
      it(`decodes ${t.diag} from ${t.hex}`, () => {
        expect(decodeCbor(hex(t.hex))).to.deep.equal(t.value);
      });
      if (t.encodes) {
        it(`encodes ${t.diag} as ${t.hex}`, () => {
          expect(toHex(encodeCbor(t.value))).to.equal(t.hex);
        });
      }
    }

    it('writes JavaScript numbers: safe integers as integers, others as floats', () => {
      expect(toHex(encodeCbor(1))).to.equal('01');
      expect(toHex(encodeCbor(-0))).to.equal('f98000');
      expect(toHex(encodeCbor(1.5))).to.equal('f93e00');
      expect(toHex(encodeCbor(2 ** 60))).to.equal('fa5d800000'); // beyond 2^53 a number is a float
    });
  });

  describe('half precision', () => {
    it('every half bit pattern converts to a double and back to the same bits (NaN → 7e00)', () => {
      for (let h = 0; h <= 0xffff; h++) {
        const d = fromHalf(h);
        const back = toHalf(d);
        if (Number.isNaN(d)) expect(back).to.equal(0x7e00);
        else if (back !== h) expect.fail(`half ${h.toString(16)} → ${d} → ${back?.toString(16)}`);
      }
    });

    it('known values', () => {
      expect(fromHalf(0x3c00)).to.equal(1);
      expect(fromHalf(0x7bff)).to.equal(65504);
      expect(fromHalf(0x0001)).to.equal(2 ** -24);
      expect(fromHalf(0x03ff)).to.equal(1023 * 2 ** -24);
      expect(fromHalf(0x0400)).to.equal(2 ** -14);
      expect(Object.is(fromHalf(0x8000), -0)).to.equal(true);
      expect(toHalf(65520)).to.equal(undefined); // rounds to infinity in half, not exact
      expect(toHalf(65536)).to.equal(undefined);
      expect(toHalf(2 ** -25)).to.equal(undefined);
      expect(toHalf(1 + 2 ** -11)).to.equal(undefined); // needs 11 mantissa bits
      expect(toHalf(1 + 2 ** -10)).to.equal(0x3c01);
      expect(toHalf(0.1)).to.equal(undefined);
    });

    it('any double toHalf accepts converts back exactly, and toHalf accepts every exact half', () => {
      const halves = new Set<number>();
      for (let h = 0; h <= 0xffff; h++) halves.add(fromHalf(h));
      const doubles = fc.oneof(
        fc.double(),
        fc.integer({ min: 0, max: 0xffff }).map(fromHalf),
        fc.integer({ min: 0, max: 0xffff }).map((h) => fromHalf(h) * (1 + 2 ** -12)),
        fc.float().map((x) => x),
      );
      fc.assert(
        fc.property(doubles, (d) => {
          const h = toHalf(d);
          if (h === undefined) return !halves.has(d) || Number.isNaN(d);
          const back = fromHalf(h);
          return Number.isNaN(d) ? Number.isNaN(back) : Object.is(back, d);
        }),
        { numRuns: 300 },
      );
    });

    it('floats use the smallest exact width', () => {
      expect(toHex(encodeCbor(f(0.5)))).to.equal('f93800');
      expect(toHex(encodeCbor(f(2 ** -126)))).to.equal('fa00800000'); // single-precision only
      expect(toHex(encodeCbor(f(0.1)))).to.equal('fb3fb999999999999a');
    });
  });

  describe('encoder limits', () => {
    it('refuses integers beyond 64 bits with out_of_range', () => {
      expect(codecError(() => encodeCbor(2n ** 64n)).reason).to.equal('out_of_range');
      expect(codecError(() => encodeCbor(-(2n ** 64n) - 1n)).reason).to.equal('out_of_range');
      expect(codecError(() => new CborWriter().integer(1e20)).reason).to.equal('out_of_range');
      expect(codecError(() => new CborWriter().integer(-1e20)).reason).to.equal('out_of_range');
    });

    it('writes unsafe but 64-bit integral numbers exactly and refuses fractions', () => {
      const w = new CborWriter();
      w.integer(2 ** 63);
      expect(toHex(w.finish())).to.equal('1b8000000000000000');
      expect(codecError(() => new CborWriter().integer(1.5)).reason).to.equal('invalid');
      expect(codecError(() => new CborWriter().integer(NaN)).reason).to.equal('invalid');
    });

    it('grows its buffer for large items', () => {
      const big = new Uint8Array(100_000).map((_, i) => i & 0xff);
      const out = encodeCbor([big, 'x'.repeat(70_000)]);
      expect(toHex(out.subarray(0, 6))).to.equal('825a000186a0');
      const back = decodeCbor(out) as readonly CborItem[];
      expect(back[0]).to.deep.equal(big);
      expect(back[1]).to.equal('x'.repeat(70_000));
    });

    it('keeps a leading U+FEFF in text strings', () => {
      expect(toHex(encodeCbor('\ufeffa'))).to.equal('64efbbbf61');
      expect(decodeCbor(hex('64efbbbf61'))).to.equal('\ufeffa');
    });
  });

  describe('malformed input', () => {
    const cases: Array<[string, string, CodecErrorReason]> = [
      ['empty input', '', 'truncated'],
      ['uint8 head without its byte', '18', 'truncated'],
      ['uint16 head with one byte', '1901', 'truncated'],
      ['uint32 head with three bytes', '1a000000', 'truncated'],
      ['uint64 head with seven bytes', '1b00000000000000', 'truncated'],
      ['negative int head without its byte', '38', 'truncated'],
      ['half float with one byte', 'f900', 'truncated'],
      ['single float with two bytes', 'fa0000', 'truncated'],
      ['double float with one byte', 'fb00', 'truncated'],
      ['simple value head without its byte', 'f8', 'truncated'],
      ['tag without content', 'c1', 'truncated'],
      ['array missing an element', '8200', 'truncated'],
      ['map missing a value', 'a101', 'truncated'],
      ['unterminated indefinite array', '9f0102', 'truncated'],
      ['unterminated indefinite byte string', '5f4101', 'truncated'],
      ['byte string longer than the input', '44010203', 'truncated'],
      ['text string longer than the input', '6261', 'truncated'],
      ['byte string with a 64-bit length', '5b0000000100000000', 'truncated'],
      ['array with a huge count', '9bffffffffffffffff', 'truncated'],
      ['map with a huge count', 'ba7fffffff', 'truncated'],
      ['chunk longer than the input', '5f4401ff', 'truncated'],
      ['reserved info 28 (uint)', '1c', 'invalid'],
      ['reserved info 29 (negative)', '3d', 'invalid'],
      ['reserved info 30 (bytes)', '5e', 'invalid'],
      ['reserved info 28 (text)', '7c', 'invalid'],
      ['reserved info 29 (array)', '9d', 'invalid'],
      ['reserved info 30 (map)', 'be', 'invalid'],
      ['reserved info 28 (tag)', 'dc', 'invalid'],
      ['reserved info 28 (major 7)', 'fc', 'invalid'],
      ['reserved info 29 (major 7)', 'fd', 'invalid'],
      ['reserved info 30 (major 7)', 'fe', 'invalid'],
      ['reserved info in an array element', '82001c', 'invalid'],
      ['indefinite-length unsigned', '1f', 'invalid'],
      ['indefinite-length negative', '3f', 'invalid'],
      ['indefinite-length tag', 'df', 'invalid'],
      ['break on its own', 'ff', 'invalid'],
      ['break in a definite array', '81ff', 'invalid'],
      ['break as a definite map key', 'a1ff', 'invalid'],
      ['break as a map value', 'a101ff', 'invalid'],
      ['break as an indefinite map value', 'bf01ffff', 'invalid'],
      ['break as tag content', 'c1ff', 'invalid'],
      ['text chunk in an indefinite byte string', '5f6161ff', 'invalid'],
      ['byte chunk in an indefinite text string', '7f4161ff', 'invalid'],
      ['nested indefinite byte string chunk', '5f5f4101ffff', 'invalid'],
      ['integer chunk in an indefinite byte string', '5f01ff', 'invalid'],
      ['chunk with reserved info', '5f5cff', 'invalid'],
      ['invalid UTF-8 (bad continuation)', '62c328', 'invalid'],
      ['invalid UTF-8 (lone continuation byte)', '6180', 'invalid'],
      ['invalid UTF-8 (0xff)', '61ff', 'invalid'],
      ['invalid UTF-8 (encoded surrogate)', '63eda080', 'invalid'],
      ['invalid UTF-8 (overlong)', '62c0af', 'invalid'],
      ['invalid UTF-8 (truncated sequence)', '62e6b0', 'invalid'],
      ['invalid UTF-8 in an indefinite text', '7f61c3ff', 'invalid'],
      ['two-byte simple value below 32', 'f818', 'invalid'],
      ['two-byte simple value 0', 'f800', 'invalid'],
      ['trailing byte after an integer', '0000', 'trailing'],
      ['trailing byte after a map', 'a0f5', 'trailing'],
      ['trailing break', '80ff', 'trailing'],
      ['33 nested arrays', '81'.repeat(33) + '00', 'too_deep'],
      ['33 nested maps', 'a100'.repeat(33) + '00', 'too_deep'],
      ['33 nested tags', 'c1'.repeat(33) + '00', 'too_deep'],
      ['deep indefinite arrays', '9f'.repeat(1000), 'too_deep'],
    ];
    for (const [what, h, reason] of cases) {
      it(`${what} (${h.length > 40 ? h.slice(0, 40) + '…' : h || 'no bytes'}) → ${reason}`, () => {
        const e = codecError(() => decodeCbor(hex(h)));
        expect(e.reason).to.equal(reason);
        expect(e.format).to.equal('cbor');
        expect(e.message).to.match(/^cbor: /);
      });
    }

    it('accepts 32 levels of nesting by default and honours maxDepth', () => {
      expect(() => decodeCbor(hex('81'.repeat(32) + '00'))).not.to.throw();
      expect(decodeCbor(hex('818100'), { maxDepth: 2 })).to.deep.equal([[0]]);
      expect(codecError(() => decodeCbor(hex('81818100'), { maxDepth: 2 })).reason).to.equal('too_deep');
    });

    it('names the format and the offset of the fault', () => {
      const e = codecError(() => decodeCbor(hex('83 00 01 1c'), { format: 'senml-cbor' }));
      expect(e.format).to.equal('senml-cbor');
      expect(e.offset).to.equal(3);
      expect(e.message).to.contain('senml-cbor').and.contain('28');
      expect(codecError(() => decodeCbor(hex('01 02'))).offset).to.equal(1);
    });

    it('accepts non-minimal heads', () => {
      expect(decodeCbor(hex('1800'))).to.equal(0);
      expect(decodeCbor(hex('1b0000000000000001'))).to.equal(1);
      expect(decodeCbor(hex('3b0000000000000000'))).to.equal(-1);
      expect(decodeCbor(hex('5a000000024142'))).to.deep.equal(hex('4142'));
      expect(decodeCbor(hex('b90001 0102'))).to.deep.equal(m([1, 2]));
    });

    it('returns bytes that do not alias the input', () => {
      const input = hex('43010203');
      const out = decodeCbor(input) as Uint8Array;
      input[1] = 0xee;
      expect(toHex(out)).to.equal('010203');
    });
  });

  describe('helpers', () => {
    it('CborMap.get finds integer and text keys', () => {
      const map = decodeCbor(hex('a2 01 02 61 61 03')) as CborMap;
      expect(map.get(1)).to.equal(2);
      expect(map.get('a')).to.equal(3);
      expect(map.get(2)).to.equal(undefined);
    });

    it('cborKind names every kind', () => {
      const kinds = [0, 1n, 'x', hex('00'), true, null, undefined, [], m(), new CborTag(1, 0), f(1), new CborSimple(0)].map(cborKind);
      expect(kinds).to.deep.equal(['integer', 'integer', 'text string', 'byte string', 'boolean', 'null', 'undefined', 'array', 'map', 'tag 1', 'float', 'simple(0)']);
    });
  });

  describe('properties', () => {
    const safeOrBig = (b: bigint): number | bigint => (b >= BigInt(Number.MIN_SAFE_INTEGER) && b <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b);
    const leaf: fc.Arbitrary<CborItem> = fc.oneof(
      fc.integer(),
      fc.maxSafeInteger(),
      fc.bigInt({ min: -(2n ** 64n), max: 2n ** 64n - 1n }).map(safeOrBig),
      fc.string({ unit: 'grapheme', maxLength: 20 }),
      fc.constantFrom('\ufeff', '\ufeffBOM', '水', '\ud800\udd51'),
      fc.uint8Array({ maxLength: 40 }),
      fc.boolean(),
      fc.constantFrom(null, undefined),
      fc.double().map(f),
      fc.oneof(fc.integer({ min: 0, max: 19 }), fc.integer({ min: 32, max: 255 })).map((x) => new CborSimple(x)),
    );
    const { item } = fc.letrec<{ item: CborItem }>((tie) => ({
      item: fc.oneof(
        { depthSize: 'small', withCrossShrink: true },
        leaf,
        fc.array(tie('item'), { maxLength: 5 }),
        fc.array(fc.tuple(tie('item'), tie('item')), { maxLength: 4 }).map((es) => new CborMap(es)),
        fc.tuple(fc.nat(), tie('item')).map(([t, x]) => new CborTag(t, x)),
      ),
    }));

    it('decode(encode(x)) is x for generated items', () => {
      fc.assert(
        fc.property(item, (x) => {
          expect(decodeCbor(encodeCbor(x))).to.deep.equal(x);
        }),
        { numRuns: 300 },
      );
    });

    it('random bytes either decode or throw a CodecError', () => {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 64 }), (b) => {
          try {
            decodeCbor(b);
          } catch (e) {
            if (!(e instanceof CodecError)) throw e;
          }
        }),
        { numRuns: 300 },
      );
    });

    it('mutated and truncated encodings either decode or throw a CodecError', () => {
      fc.assert(
        fc.property(item, fc.nat(), fc.integer({ min: 0, max: 255 }), fc.boolean(), (x, at, byte, cut) => {
          const input = encodeCbor(x).slice();
          const i = at % input.length;
          if (!cut) input[i] = byte;
          try {
            decodeCbor(cut ? input.subarray(0, i) : input);
          } catch (e) {
            if (!(e instanceof CodecError)) throw e;
          }
        }),
        { numRuns: 300 },
      );
    });
  });
});
