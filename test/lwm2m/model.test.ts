import { expect } from 'chai';
import { compareVersions, normaliseVersion, ObjectRegistry, type ObjectModel } from '../../src/lwm2m/model.js';

function model(id: number, version: string, type: 'string' | 'opaque'): ObjectModel {
  return {
    id,
    name: `o${id}`,
    description: '',
    urn: `urn:oma:lwm2m:oma:${id}:${version}`,
    version,
    lwm2mVersion: '1.1',
    multiple: true,
    mandatory: false,
    resources: new Map([[0, { id: 0, name: 'k', operations: '', multiple: false, mandatory: true, type, rangeEnumeration: '', units: '', description: '' }]]),
  };
}

describe('lwm2m/model', () => {
  it('compares versions numerically', () => {
    expect(compareVersions('1.10', '1.9')).to.be.greaterThan(0);
    expect(compareVersions('1.0', '1')).to.equal(0);
    expect(compareVersions('2.0', '1.2')).to.be.greaterThan(0);
    expect(normaliseVersion('2')).to.equal('2.0');
  });

  it('keeps versions side by side and resolves the latest by default', () => {
    const reg = new ObjectRegistry().addAll([model(21, '2.0', 'opaque'), model(21, '1.1', 'string'), model(21, '1.0', 'string')]);
    expect(reg.versions(21)).to.deep.equal(['1.0', '1.1', '2.0']);
    expect(reg.resource(21, 0)?.type).to.equal('opaque');
    expect(reg.get(21, '1.1')?.resources.get(0)?.type).to.equal('string');
    expect(reg.get(21, '1')?.version).to.equal('1.0');
    expect(reg.ids()).to.deep.equal([21]);
    expect(reg.all().map((m) => m.version)).to.deep.equal(['1.0', '1.1', '2.0']);
  });

  it('resolves the version a client announced, or the closest lower one', () => {
    const reg = new ObjectRegistry().addAll([model(21, '1.1', 'string'), model(21, '2.0', 'opaque'), model(3, '1.0', 'string')]);
    expect(reg.withVersions(new Map([[21, '1.1']])).resource(21, 0)?.type).to.equal('string');
    expect(reg.withVersions(new Map([[21, '1.5']])).object(21)?.version).to.equal('1.1');
    expect(reg.withVersions(new Map([[21, '0.9']])).object(21)?.version).to.equal('2.0');
    expect(reg.withVersions(new Map()).object(21)?.version).to.equal('2.0');
    expect(reg.withVersions(new Map()).resource(99, 0)).to.equal(undefined);
  });

  it('lets a later definition of the same version replace an earlier one', () => {
    const reg = new ObjectRegistry();
    reg.add(model(5, '1.0', 'string'));
    reg.add(model(5, '1.0', 'opaque'));
    expect(reg.resource(5, 0)?.type).to.equal('opaque');
    expect(reg.versions(5)).to.deep.equal(['1.0']);
  });
});
