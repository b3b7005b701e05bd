import { expect } from 'chai';
import { CodecError } from '../../src/lwm2m/errors.js';
import { formatObjlnk, NULL_OBJLNK, parseObjlnk, V, valueEquals, valueToString } from '../../src/lwm2m/value.js';

function reason(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).to.be.instanceOf(CodecError);
    return (e as CodecError).reason;
  }
  throw new Error('expected a CodecError');
}

describe('lwm2m/value', () => {
  it('keeps safe integers as numbers and larger ones as bigints', () => {
    expect(V.integer(5n).value).to.equal(5);
    expect(V.integer(2n ** 60n).value).to.equal(2n ** 60n);
    expect(V.unsigned(2n ** 64n - 1n).value).to.equal(2n ** 64n - 1n);
    expect(V.time(-1).value).to.equal(-1);
  });

  it('refuses integers out of range or not integral', () => {
    expect(reason(() => V.integer(2n ** 63n))).to.equal('out_of_range');
    expect(reason(() => V.integer(-(2n ** 63n) - 1n))).to.equal('out_of_range');
    expect(reason(() => V.unsigned(-1))).to.equal('out_of_range');
    expect(reason(() => V.unsigned(2n ** 64n))).to.equal('out_of_range');
    expect(reason(() => V.integer(1.5))).to.equal('type_mismatch');
    expect(reason(() => V.objlnk(65536, 0))).to.equal('out_of_range');
  });

  it('parses and formats object links, including the null link', () => {
    expect(parseObjlnk('21:1')).to.deep.equal({ objectId: 21, instanceId: 1 });
    expect(parseObjlnk('65535:65535')).to.deep.equal(NULL_OBJLNK);
    expect(parseObjlnk('FFFF:FFFF')).to.deep.equal(NULL_OBJLNK);
    expect(formatObjlnk({ objectId: 3, instanceId: 0 })).to.equal('3:0');
    for (const bad of ['21', '21:', ':1', '21:1:2', 'a:b', '70000:1']) {
      expect(() => parseObjlnk(bad), bad).to.throw(CodecError);
    }
  });

  it('compares values by type and content', () => {
    expect(valueEquals(V.integer(5), V.integer(5n))).to.equal(true);
    expect(valueEquals(V.integer(5), V.unsigned(5))).to.equal(false);
    expect(valueEquals(V.opaque(new Uint8Array([1, 2])), V.opaque(new Uint8Array([1, 2])))).to.equal(true);
    expect(valueEquals(V.opaque(new Uint8Array([1, 2])), V.opaque(new Uint8Array([1, 3])))).to.equal(false);
    expect(valueEquals(V.float(NaN), V.float(NaN))).to.equal(true);
    expect(valueEquals(V.objlnk(1, 2), V.objlnk(1, 2))).to.equal(true);
    expect(valueEquals(V.objlnk(1, 2), V.objlnk(2, 1))).to.equal(false);
  });

  it('renders values for humans', () => {
    expect(valueToString(V.opaque(new Uint8Array([0xde, 0xad])))).to.equal('0xdead');
    expect(valueToString(V.objlnk(21, 1))).to.equal('21:1');
    expect(valueToString(V.boolean(true))).to.equal('true');
  });
});
