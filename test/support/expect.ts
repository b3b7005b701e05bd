/**
 * Assertions shared by the codec tests.
 */
import { expect } from 'chai';
import { CodecError, type CodecErrorReason } from '../../src/lwm2m/errors.js';
import type { ModelLookup, ResourceModel } from '../../src/lwm2m/model.js';
import { nodeEquals, type LwM2MNode } from '../../src/lwm2m/node.js';
import type { ResourceType } from '../../src/lwm2m/value.js';

/** Runs `fn`, asserts it throws a CodecError, and returns that error. */
export function codecError(fn: () => unknown): CodecError {
  try {
    fn();
  } catch (e) {
    expect(e, String(e)).to.be.instanceOf(CodecError);
    return e as CodecError;
  }
  return expect.fail('expected a CodecError, nothing was thrown');
}

/** Asserts `fn` throws a CodecError with `reason`; returns the error for further checks. */
export function expectCodecError(fn: () => unknown, reason: CodecErrorReason): CodecError {
  const e = codecError(fn);
  expect(e.reason, e.message).to.equal(reason);
  return e;
}

/** A model in which every resource of every object has `type` (and the given multiplicity). */
export function uniformModel(type: ResourceType, multiple = false): ModelLookup {
  return {
    object: () => undefined,
    resource: (_o: number, r: number): ResourceModel => ({
      id: r,
      name: `r${r}`,
      operations: type === 'none' ? 'E' : 'RW',
      multiple,
      mandatory: false,
      type,
      rangeEnumeration: '',
      units: '',
      description: '',
    }),
  };
}

function show(n: LwM2MNode): string {
  return JSON.stringify(n, (_k, v: unknown) =>
    typeof v === 'bigint' ? `${v}n` : v instanceof Map ? Object.fromEntries(v) : v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v,
  );
}

/** Asserts two nodes are equal (nodeEquals), printing both when they differ. */
export function expectNode(actual: LwM2MNode, expected: LwM2MNode): void {
  if (!nodeEquals(actual, expected)) expect.fail(`nodes differ:\n  got      ${show(actual)}\n  expected ${show(expected)}`);
}
