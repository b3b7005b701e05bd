import { expect } from 'chai';
import fc from 'fast-check';
import { comparePaths, formatPath, isPrefixOf, parsePath, pathLevel, validatePath } from '../../src/lwm2m/path.js';
import { codecError } from '../support/expect.js';

describe('lwm2m/path', () => {
  it('parses every level', () => {
    expect(parsePath('/')).to.deep.equal([]);
    expect(parsePath('/3')).to.deep.equal([3]);
    expect(parsePath('/3/0')).to.deep.equal([3, 0]);
    expect(parsePath('/3/0/7')).to.deep.equal([3, 0, 7]);
    expect(parsePath('/3/0/7/1')).to.deep.equal([3, 0, 7, 1]);
    expect(parsePath('/65534/65534')).to.deep.equal([65534, 65534]);
  });

  it('names the level of a path', () => {
    expect([[], [1], [1, 2], [1, 2, 3], [1, 2, 3, 4]].map(pathLevel)).to.deep.equal(['root', 'object', 'instance', 'resource', 'resourceInstance']);
    expect(codecError(() => pathLevel([1, 2, 3, 4, 5])).reason).to.equal('bad_path');
  });

  it('refuses malformed paths with bad_path', () => {
    for (const bad of ['', '3/0', '/3//0', '/3/0/', '/a', '/-1', '/01', '/+1', '/1.5', '/65535', '/99999', '/1/2/3/4/5', '/ 3', '//']) {
      expect(codecError(() => parsePath(bad)).reason, bad).to.equal('bad_path');
    }
  });

  it('is lenient on request: no leading slash, trailing slash, whitespace', () => {
    expect(parsePath('3/0/', { lenient: true })).to.deep.equal([3, 0]);
    expect(parsePath(' /0/1/ ', { lenient: true })).to.deep.equal([0, 1]);
    expect(parsePath('/', { lenient: true })).to.deep.equal([]);
    expect(codecError(() => parsePath('/0//1', { lenient: true })).reason).to.equal('bad_path');
  });

  it('validates IDs', () => {
    expect(validatePath([0, 65534])).to.deep.equal([0, 65534]);
    expect(codecError(() => validatePath([65535])).reason).to.equal('bad_path');
    expect(codecError(() => validatePath([1.5])).reason).to.equal('bad_path');
    expect(codecError(() => validatePath([-1])).reason).to.equal('bad_path');
  });

  it('orders and compares paths', () => {
    expect(isPrefixOf([3], [3, 0, 1])).to.equal(true);
    expect(isPrefixOf([], [3])).to.equal(true);
    expect(isPrefixOf([3, 1], [3, 0, 1])).to.equal(false);
    const sorted = [[3, 0, 1], [1], [3], [1, 0, 7], [3, 0]].sort(comparePaths).map(formatPath);
    expect(sorted).to.deep.equal(['/1', '/1/0/7', '/3', '/3/0', '/3/0/1']);
  });

  it('round-trips format → parse for every valid path', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 65534 }), { maxLength: 4 }), (p) => {
        expect(parsePath(formatPath(p))).to.deep.equal(p);
      }),
      { numRuns: 300 },
    );
  });
});
