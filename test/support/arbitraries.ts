/**
 * fast-check generators for LwM2M values and nodes, shared by the codec property tests.
 */
import fc from 'fast-check';
import { N, type LwM2MNode, type ObjectInstance, type Resource } from '../../src/lwm2m/node.js';
import type { Path } from '../../src/lwm2m/path.js';
import { type Value, type ValueType, V } from '../../src/lwm2m/value.js';

export const id = (max = 65534): fc.Arbitrary<number> => fc.integer({ min: 0, max });

const int64 = fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n });
const uint64 = fc.bigInt({ min: 0n, max: 2n ** 64n - 1n });

/** Integers biased to the interesting widths (1/2/4/8 bytes and their sign edges). */
const edgyInt = fc.oneof(
  fc.integer({ min: -200, max: 200 }).map((n) => BigInt(n)),
  fc.constantFrom(127n, 128n, -128n, -129n, 32767n, 32768n, -32768n, -32769n, 2n ** 31n - 1n, 2n ** 31n, -(2n ** 31n), -(2n ** 31n) - 1n, 2n ** 53n, 2n ** 63n - 1n, -(2n ** 63n)),
  int64,
);
const edgyUint = fc.oneof(fc.integer({ min: 0, max: 300 }).map((n) => BigInt(n)), fc.constantFrom(255n, 256n, 65535n, 65536n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 63n, 2n ** 64n - 1n), uint64);

/** Finite doubles; NaN and infinities are not values LwM2M resources carry in every format. */
const finiteFloat = fc.oneof(
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.constantFrom(0, 1.5, -2.25, 0.1, 65504, 3.4028234663852886e38),
);

/** Printable and non-ASCII strings; no lone surrogates (not representable in UTF-8). */
const text = fc.string({ unit: 'grapheme', maxLength: 40 });

export function valueOf(type: ValueType): fc.Arbitrary<Value> {
  switch (type) {
    case 'string':
      return text.map(V.string);
    case 'corelnk':
      return text.map(V.corelnk);
    case 'integer':
      return edgyInt.map(V.integer);
    case 'unsigned':
      return edgyUint.map(V.unsigned);
    case 'time':
      return edgyInt.map(V.time);
    case 'float':
      return finiteFloat.map(V.float);
    case 'boolean':
      return fc.boolean().map(V.boolean);
    case 'opaque':
      return fc.uint8Array({ maxLength: 300 }).map(V.opaque);
    case 'objlnk':
      return fc.tuple(fc.integer({ min: 0, max: 65535 }), fc.integer({ min: 0, max: 65535 })).map(([o, i]) => V.objlnk(o, i));
  }
}

export const VALUE_TYPES: readonly ValueType[] = ['string', 'corelnk', 'integer', 'unsigned', 'time', 'float', 'boolean', 'opaque', 'objlnk'];

export const anyValue: fc.Arbitrary<Value> = fc.constantFrom(...VALUE_TYPES).chain(valueOf);

/** A resource (single or multiple) whose values are all of `type`. */
export function resourceOf(type: ValueType, rid: fc.Arbitrary<number> = id(), nonEmptyMulti = false): fc.Arbitrary<Resource> {
  return fc.oneof(
    fc.tuple(rid, valueOf(type)).map(([r, v]) => N.resource(r, v)),
    fc
      .tuple(rid, fc.uniqueArray(fc.tuple(id(), valueOf(type)), { selector: ([ri]) => ri, minLength: nonEmptyMulti ? 1 : 0, maxLength: 4 }))
      .map(([r, insts]) => N.multi(r, insts)),
  );
}

/**
 * An object instance with resources of any types, unique resource IDs. `nonEmptyMulti` keeps
 * every multiple resource non-empty: formats made of flat records (SenML, LwM2M JSON) cannot
 * express an empty one.
 */
export function instanceArb(opts: { type?: ValueType; nonEmptyMulti?: boolean } = {}): fc.Arbitrary<ObjectInstance> {
  const ne = opts.nonEmptyMulti === true;
  const res = opts.type ? resourceOf(opts.type, id(), ne) : fc.constantFrom(...VALUE_TYPES).chain((t) => resourceOf(t, id(), ne));
  return fc.tuple(id(), fc.uniqueArray(res, { selector: (r) => r.id, minLength: 1, maxLength: 6 })).map(([i, rs]) => N.instance(i, rs));
}

/** A node together with the path it sits at, at every level from object to resource instance. */
export function nodeAtPath(opts: { type?: ValueType; nonEmptyMulti?: boolean } = {}): fc.Arbitrary<{ path: Path; node: LwM2MNode }> {
  const vt = opts.type ? fc.constant(opts.type) : fc.constantFrom(...VALUE_TYPES);
  return fc.oneof(
    fc.tuple(id(), fc.uniqueArray(instanceArb(opts), { selector: (i) => i.id, minLength: 1, maxLength: 3 })).map(([o, insts]) => ({
      path: [o] as Path,
      node: N.object(o, insts) as LwM2MNode,
    })),
    fc.tuple(id(), instanceArb(opts)).map(([o, inst]) => ({ path: [o, inst.id] as Path, node: inst as LwM2MNode })),
    fc.tuple(id(), id(), vt.chain((t) => resourceOf(t, id(), opts.nonEmptyMulti === true))).map(([o, i, r]) => ({ path: [o, i, r.id] as Path, node: r as LwM2MNode })),
    fc.tuple(id(), id(), id(), id(), vt.chain(valueOf)).map(([o, i, r, ri, v]) => ({
      path: [o, i, r, ri] as Path,
      node: N.resourceInstance(ri, v) as LwM2MNode,
    })),
  );
}

/** Hex helpers for byte-vector tests: `hex('C8 00 14')` → bytes; whitespace ignored. */
export function hex(s: string): Uint8Array {
  const clean = s.replace(/\s+/g, '');
  if (clean.length % 2 !== 0 || /[^0-9a-fA-F]/.test(clean)) throw new Error(`bad hex: ${s}`);
  return new Uint8Array(Buffer.from(clean, 'hex'));
}

export function toHex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}
