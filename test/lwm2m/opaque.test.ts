import { expect } from 'chai';
import fc from 'fast-check';
import { CodecError } from '../../src/lwm2m/errors.js';
import { opaqueCodec } from '../../src/lwm2m/formats/opaque.js';
import type { ModelLookup } from '../../src/lwm2m/model.js';
import { type LwM2MNode, N, nodeEquals } from '../../src/lwm2m/node.js';
import type { Path } from '../../src/lwm2m/path.js';
import { V, valueEquals } from '../../src/lwm2m/value.js';
import { hex, id, VALUE_TYPES, valueOf } from '../support/arbitraries.js';
import { testModels } from '../support/models.js';
import { codecError, uniformModel } from '../support/expect.js';

const codec = opaqueCodec;

describe('lwm2m/formats/opaque', () => {
  it('is Content-Format 42, application/octet-stream, not composite', () => {
    expect(codec).to.include({ contentFormat: 42, name: 'opaque', mediaType: 'application/octet-stream', composite: false });
  });

  it('encodes an Opaque resource or resource instance as its raw bytes', () => {
    const bytes = hex('00 01 02 03 04 05 06 07 08 09 0A 0B 0C 0D 0E 0F');
    expect(codec.encode([0, 0, 5], N.resource(5, V.opaque(bytes)))).to.deep.equal(hex('00 01 02 03 04 05 06 07 08 09 0A 0B 0C 0D 0E 0F'));
    expect(codec.encode([5, 0, 0, 3], N.resourceInstance(3, V.opaque(hex('CA FE'))))).to.deep.equal(hex('CA FE'));
    expect(codec.encode([0, 0, 4], N.resource(4, V.opaque(new Uint8Array())))).to.deep.equal(new Uint8Array());
  });

  it('decodes raw bytes into an Opaque resource (model says opaque) as a copy', () => {
    const payload = hex('01 02 03 04 05');
    const node = codec.decode([0, 0, 3], payload, testModels);
    expect(nodeEquals(node, N.resource(3, V.opaque(hex('01 02 03 04 05'))))).to.equal(true);
    payload[0] = 0xff;
    expect(nodeEquals(node, N.resource(3, V.opaque(hex('01 02 03 04 05')))), 'decoded value must not alias the payload').to.equal(true);
    expect(nodeEquals(codec.decode([5, 0, 0, 7], hex('AA'), uniformModel('opaque', true)), N.resourceInstance(7, V.opaque(hex('AA'))))).to.equal(true);
  });

  it('an unknown resource (no model, or not in the model) decodes to opaque', () => {
    expect(nodeEquals(codec.decode([5, 0, 0], hex('DE AD BE EF')), N.resource(0, V.opaque(hex('DE AD BE EF'))))).to.equal(true);
    expect(nodeEquals(codec.decode([3442, 0, 1], hex('00'), testModels), N.resource(1, V.opaque(hex('00'))))).to.equal(true);
  });

  it('a resource the model types otherwise → type_mismatch naming the path', () => {
    for (const [path, type] of [[[3, 0, 0], 'string'], [[3, 0, 9], 'integer'], [[0, 0, 17], 'objlnk'], [[1, 0, 6], 'boolean']] as const) {
      const err = codecError(() => codec.decode(path, hex('01'), testModels));
      expect(err.reason, type).to.equal('type_mismatch');
      expect(err.path).to.equal('/' + path.join('/'));
    }
    expect(codecError(() => codec.decode([3, 0, 6, 0], hex('01'), testModels)).reason).to.equal('type_mismatch');
  });

  it('encoding a non-opaque value → unsupported', () => {
    for (const type of VALUE_TYPES.filter((t) => t !== 'opaque')) {
      const v = fc.sample(valueOf(type), { numRuns: 1, seed: 1 })[0];
      if (!v) throw new Error('no sample');
      expect(codecError(() => codec.encode([3, 0, 1], N.resource(1, v))).reason, type).to.equal('unsupported');
    }
  });

  it('objects, instances and multiple resources → unsupported; mismatched node → bad_path', () => {
    expect(codecError(() => codec.encode([0, 0], N.instance(0, [N.resource(3, V.opaque(hex('01')))]))).reason).to.equal('unsupported');
    expect(codecError(() => codec.encode([5, 0, 0], N.multi(0, [[0, V.opaque(hex('01'))]]))).reason).to.equal('unsupported');
    expect(codecError(() => codec.encode([0, 0, 3], N.resource(4, V.opaque(hex('01'))))).reason).to.equal('bad_path');
    expect(codecError(() => codec.decode([0, 0], hex('01'), testModels)).reason).to.equal('unsupported');
    expect(codecError(() => codec.decode([0], hex('01'))).reason).to.equal('unsupported');
    expect(codecError(() => codec.decode([5, 0, 0], hex('01'), uniformModel('opaque', true))).reason).to.equal('unsupported');
  });

  it('round trip (property): any bytes at a resource or resource instance', () => {
    const leaf = fc.oneof(
      fc.tuple(id(), id(), id(), valueOf('opaque')).map(([o, i, r, v]) => ({ path: [o, i, r] as Path, node: N.resource(r, v) as LwM2MNode })),
      fc.tuple(id(), id(), id(), id(), valueOf('opaque')).map(([o, i, r, ri, v]) => ({ path: [o, i, r, ri] as Path, node: N.resourceInstance(ri, v) as LwM2MNode })),
    );
    fc.assert(
      fc.property(leaf, fc.constantFrom<ModelLookup | undefined>(undefined, uniformModel('opaque')), ({ path, node }, models) => {
        expect(nodeEquals(codec.decode(path, codec.encode(path, node), models), node)).to.equal(true);
      }),
      { numRuns: 200 },
    );
  });

  it('fuzz: random bytes, paths and models give only CodecError or an opaque value equal to the bytes', () => {
    const models = fc.constantFrom<ModelLookup | undefined>(undefined, testModels, ...VALUE_TYPES.map((t) => uniformModel(t)), uniformModel('opaque', true));
    const paths = fc.constantFrom<Path>([], [0], [0, 0], [0, 0, 3], [0, 0, 0], [3, 0, 6], [3, 0, 6, 1], [9, 9, 9]);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), models, paths, (bytes, m, path) => {
        try {
          const node = codec.decode(path, bytes, m);
          expect(node.kind === 'resource' || node.kind === 'resourceInstance').to.equal(true);
          if (node.kind === 'resource' || node.kind === 'resourceInstance') expect(valueEquals(node.value, V.opaque(bytes))).to.equal(true);
        } catch (e) {
          if (!(e instanceof CodecError)) throw e;
        }
      }),
      { numRuns: 300 },
    );
  });
});
