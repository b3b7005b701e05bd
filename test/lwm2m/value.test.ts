import { expect } from 'chai';
import { CodecError } from '../../src/lwm2m/errors.js';
import { formatObjlnk, NULL_OBJLNK, parseObjlnk, scanObjlnk, tryParseObjlnk, V, valueEquals, valueToString } from '../../src/lwm2m/value.js';
import { codecError } from '../support/expect.js';

describe('lwm2m/value', () => {
  it('keeps safe integers as numbers and larger ones as bigints', () => {
    expect(V.integer(5n).value).to.equal(5);
    expect(V.integer(2n ** 60n).value).to.equal(2n ** 60n);
    expect(V.unsigned(2n ** 64n - 1n).value).to.equal(2n ** 64n - 1n);
    expect(V.time(-1).value).to.equal(-1);
  });

  it('refuses integers out of range or not integral', () => {
    expect(codecError(() => V.integer(2n ** 63n)).reason).to.equal('out_of_range');
    expect(codecError(() => V.integer(-(2n ** 63n) - 1n)).reason).to.equal('out_of_range');
    expect(codecError(() => V.unsigned(-1)).reason).to.equal('out_of_range');
    expect(codecError(() => V.unsigned(2n ** 64n)).reason).to.equal('out_of_range');
    expect(codecError(() => V.integer(1.5)).reason).to.equal('type_mismatch');
    expect(codecError(() => V.objlnk(65536, 0)).reason).to.equal('out_of_range');
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

  it('scanObjlnk says why a text is not a link; tryParseObjlnk never throws', () => {
    expect(scanObjlnk('21:1')).to.deep.equal({ objectId: 21, instanceId: 1 });
    expect(scanObjlnk(' 21 : 1\n')).to.deep.equal({ objectId: 21, instanceId: 1 }); // clients pad
    expect(scanObjlnk('0:0')).to.deep.equal({ objectId: 0, instanceId: 0 });
    expect(scanObjlnk('65535:65535')).to.equal(NULL_OBJLNK);
    for (const nul of ['FFFF:FFFF', 'ffff:ffff', ' fFfF:FfFf ']) expect(scanObjlnk(nul), nul).to.equal(NULL_OBJLNK);
    for (const bad of ['', ':', '21', '21:', ':1', '21:1:2', 'a:b', '-1:0', '+1:0', '1.0:0', '123456:0', 'FFFF:0', 'ffff :ffff', '2 1:1']) {
      expect(scanObjlnk(bad), bad).to.equal('invalid');
      expect(tryParseObjlnk(bad), bad).to.equal(undefined);
    }
    for (const big of ['65536:0', '0:65536', '99999:1']) {
      expect(scanObjlnk(big), big).to.equal('out_of_range');
      expect(tryParseObjlnk(big), big).to.equal(undefined);
      expect(() => parseObjlnk(big)).to.throw(CodecError).with.property('reason', 'out_of_range');
    }
    expect(() => parseObjlnk('21-1')).to.throw(CodecError).with.property('reason', 'invalid');
    expect(tryParseObjlnk('3:0')).to.deep.equal({ objectId: 3, instanceId: 0 });
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
