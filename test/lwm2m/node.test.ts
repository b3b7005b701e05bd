import { expect } from 'chai';
import fc from 'fast-check';
import { checkNodeAtPath, N, nodeEquals, nodeToRecords, recordsToNode, recordsToObjects } from '../../src/lwm2m/node.js';
import { formatPath } from '../../src/lwm2m/path.js';
import { V } from '../../src/lwm2m/value.js';
import { nodeAtPath } from '../support/arbitraries.js';
import { testModels } from '../support/models.js';
import { codecError } from '../support/expect.js';

const lookup = (o: number, r: number) => testModels.resource(o, r);

describe('lwm2m/node', () => {
  const device = N.instance(0, [
    N.resource(0, V.string('Open Mobile Alliance')),
    N.multi(6, [[0, V.integer(1)], [1, V.integer(5)]]),
    N.resource(9, V.integer(100)),
  ]);

  it('flattens a node into leaf records in tree order', () => {
    const recs = nodeToRecords([3, 0], device);
    expect(recs.map((r) => formatPath(r.path))).to.deep.equal(['/3/0/0', '/3/0/6/0', '/3/0/6/1', '/3/0/9']);
    expect(nodeToRecords([3, 0, 6, 1], N.resourceInstance(1, V.integer(5))).map((r) => formatPath(r.path))).to.deep.equal(['/3/0/6/1']);
  });

  it('rebuilds the node at every level from records', () => {
    const recs = nodeToRecords([3, 0], device);
    expect(nodeEquals(recordsToNode('t', [3, 0], recs), device)).to.equal(true);
    expect(nodeEquals(recordsToNode('t', [3], recs), N.object(3, [device]))).to.equal(true);
    expect(nodeEquals(recordsToNode('t', [3, 0, 6], recs.filter((r) => r.path[2] === 6)), N.multi(6, [[0, V.integer(1)], [1, V.integer(5)]]))).to.equal(true);
  });

  it('uses the model for an empty multiple resource', () => {
    const n = recordsToNode('t', [3, 0, 6], [], lookup);
    expect(n.kind).to.equal('multiResource');
  });

  it('refuses duplicates, mixed forms and values outside the path', () => {
    const r = (p: number[], v = V.integer(1)) => ({ path: p, value: v });
    expect(codecError(() => recordsToNode('t', [3, 0], [r([3, 0, 9]), r([3, 0, 9])])).reason).to.equal('duplicate');
    expect(codecError(() => recordsToNode('t', [3, 0], [r([3, 0, 6]), r([3, 0, 6, 0])])).reason).to.equal('duplicate');
    expect(codecError(() => recordsToNode('t', [3, 0], [r([3, 0, 6, 0]), r([3, 0, 6])])).reason).to.equal('duplicate');
    expect(codecError(() => recordsToNode('t', [3, 0], [r([3, 0, 6, 0]), r([3, 0, 6, 0])])).reason).to.equal('duplicate');
    expect(codecError(() => recordsToNode('t', [3, 0], [r([3, 1, 9])])).reason).to.equal('bad_path');
    expect(codecError(() => recordsToNode('t', [3, 0], [r([3, 0])])).reason).to.equal('bad_path');
    expect(codecError(() => recordsToNode('t', [3, 0, 9], [])).reason).to.equal('invalid');
    expect(codecError(() => recordsToNode('t', [], [])).reason).to.equal('bad_path');
  });

  it('groups records of several objects', () => {
    const recs = [
      { path: [0, 1, 0], value: V.string('coap://x') },
      { path: [1, 0, 0], value: V.integer(1) },
      { path: [0, 1, 10], value: V.integer(1) },
    ];
    const objs = recordsToObjects('t', recs);
    expect(objs.map((o) => o.id)).to.deep.equal([0, 1]);
    expect(objs[0]!.instances.get(1)!.resources.size).to.equal(2);
  });

  it('checks that a node fits the request path', () => {
    expect(() => checkNodeAtPath('t', [3, 0], device)).not.to.throw();
    expect(codecError(() => checkNodeAtPath('t', [3, 1], device)).reason).to.equal('bad_path');
    expect(codecError(() => checkNodeAtPath('t', [3], device)).reason).to.equal('bad_path');
    expect(() => checkNodeAtPath('t', [3, 0, 6], N.multi(6, []))).not.to.throw();
  });

  it('round-trips node → records → node at every level', () => {
    fc.assert(
      fc.property(nodeAtPath({ nonEmptyMulti: true }), ({ path, node }) => {
        const back = recordsToNode('t', path, nodeToRecords(path, node));
        expect(nodeEquals(back, node)).to.equal(true);
      }),
      { numRuns: 200 },
    );
  });
});
