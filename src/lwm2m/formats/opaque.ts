/**
 * Opaque (`application/octet-stream`, Content-Format 42): the raw bytes of one Opaque resource
 * `/o/i/r` or resource instance `/o/i/r/ri` — firmware images, certificates, keys — usually moved
 * with CoAP block-wise transfer. Nothing else can be carried.
 *
 * - Encoding returns the value's bytes as they are (no copy: firmware images can be large, and
 *   the caller only sends them). Any other value type → `unsupported`.
 * - Decoding copies the payload, so the value never aliases a receive buffer the transport may
 *   reuse. A resource the model types otherwise → `type_mismatch`; an unknown resource → opaque.
 */
import type { NodeCodec } from '../codec.js';
import { CodecError } from '../errors.js';
import type { ModelLookup } from '../model.js';
import { checkNodeAtPath, type LwM2MNode, N } from '../node.js';
import { formatPath, type Path } from '../path.js';
import { V } from '../value.js';
import { modelMultiple, modelType, typeMismatch } from './common.js';

const FORMAT = 'opaque';

function encode(path: Path, node: LwM2MNode): Uint8Array {
  checkNodeAtPath(FORMAT, path, node);
  if (node.kind !== 'resource' && node.kind !== 'resourceInstance') {
    throw new CodecError(FORMAT, 'unsupported', `octet-stream carries one Opaque value, not a ${node.kind}`, undefined, formatPath(path));
  }
  if (node.value.type !== 'opaque') {
    throw new CodecError(FORMAT, 'unsupported', `octet-stream carries only Opaque values, not ${node.value.type}`, undefined, formatPath(path));
  }
  return node.value.value;
}

function decode(path: Path, payload: Uint8Array, models?: ModelLookup): LwM2MNode {
  if (path.length !== 3 && path.length !== 4) {
    throw new CodecError(FORMAT, 'unsupported', 'octet-stream carries one resource or resource instance value', undefined, formatPath(path));
  }
  if (path.length === 3 && modelMultiple(models, path)) {
    throw new CodecError(FORMAT, 'unsupported', 'octet-stream cannot carry a multiple-instance resource', undefined, formatPath(path));
  }
  const type = modelType(models, path);
  if (type !== undefined && type !== 'opaque') throw typeMismatch(FORMAT, type, 'raw bytes (octet-stream)', path);
  const value = V.opaque(payload.slice());
  return path.length === 3 ? N.resource(path[2] as number, value) : N.resourceInstance(path[3] as number, value);
}

export const opaqueCodec: NodeCodec = {
  contentFormat: 42,
  name: FORMAT,
  mediaType: 'application/octet-stream',
  composite: false,
  encode,
  decode,
};
