/**
 * A hand-written model of the resources the codec tests touch (objects 0, 1, 2, 3), independent
 * of the DDF loader so codec tests do not depend on it. The DDF tests check that the shipped XML
 * files agree with these types.
 */
import { type ModelLookup, ObjectRegistry, type ObjectModel, type ResourceModel } from '../../src/lwm2m/model.js';
import type { LeafRecord } from '../../src/lwm2m/node.js';
import type { ResourceType, ValueType } from '../../src/lwm2m/value.js';

type Row = [id: number, type: ResourceType, multiple: boolean];

function obj(id: number, multiple: boolean, rows: Row[]): ObjectModel {
  const resources = new Map<number, ResourceModel>(
    rows.map(([rid, type, m]) => [
      rid,
      { id: rid, name: `r${rid}`, operations: type === 'none' ? 'E' : 'RW', multiple: m, mandatory: false, type, rangeEnumeration: '', units: '', description: '' },
    ]),
  );
  return { id, name: `o${id}`, description: '', urn: `urn:oma:lwm2m:oma:${id}`, version: '1.0', lwm2mVersion: '1.0', multiple, mandatory: false, resources };
}

export const testModels = new ObjectRegistry().addAll([
  obj(0, true, [
    [0, 'string', false], [1, 'boolean', false], [2, 'integer', false], [3, 'opaque', false], [4, 'opaque', false],
    [5, 'opaque', false], [6, 'integer', false], [10, 'integer', false], [11, 'integer', false], [12, 'integer', false],
    [13, 'unsigned', false], [14, 'string', false], [15, 'unsigned', false], [16, 'unsigned', true], [17, 'objlnk', false],
  ]),
  obj(1, true, [
    [0, 'integer', false], [1, 'integer', false], [2, 'integer', false], [3, 'integer', false], [4, 'none', false],
    [5, 'integer', false], [6, 'boolean', false], [7, 'string', false], [8, 'none', false], [9, 'none', false],
    [12, 'time', false], [13, 'unsigned', false], [22, 'string', false], [23, 'boolean', false], [25, 'string', true],
  ]),
  obj(2, true, [[0, 'integer', false], [1, 'integer', false], [2, 'integer', true], [3, 'integer', false]]),
  obj(3, false, [
    [0, 'string', false], [1, 'string', false], [2, 'string', false], [3, 'string', false], [4, 'none', false],
    [6, 'integer', true], [7, 'integer', true], [8, 'integer', true], [9, 'integer', false], [10, 'integer', false],
    [11, 'integer', true], [13, 'time', false], [14, 'string', false], [15, 'string', false], [16, 'string', false],
    [22, 'objlnk', true],
  ]),
]);

/**
 * A lookup built from the types generated records carry, keyed like a real model by (object,
 * resource). Undefined when two records of one resource carry different types: no model can
 * describe those, so a property test skips them (`fc.pre`).
 */
export function lookupFromRecords(recs: readonly LeafRecord[]): ModelLookup | undefined {
  const types = new Map<string, ValueType>();
  for (const r of recs) {
    const k = `${r.path[0]}/${r.path[2]}`;
    const t = types.get(k);
    if (t !== undefined && t !== r.value.type) return undefined;
    types.set(k, r.value.type);
  }
  return {
    object: () => undefined,
    resource: (o, rid) => {
      const type = types.get(`${o}/${rid}`);
      return type === undefined
        ? undefined
        : { id: rid, name: `r${rid}`, operations: 'RW', multiple: false, mandatory: false, type, rangeEnumeration: '', units: '', description: '' };
    },
  };
}
