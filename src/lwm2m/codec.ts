/**
 * The contract every content-format codec fulfils. Codecs are pure functions of their input:
 * no I/O, no state, no exceptions other than `CodecError`.
 */
import type { ModelLookup } from './model.js';
import type { LeafRecord, LwM2MNode } from './node.js';
import type { Path } from './path.js';

export interface NodeCodec {
  /** CoAP Content-Format number (e.g. 11542). */
  readonly contentFormat: number;
  /** Short stable name used in errors, logs and the CLI (e.g. `tlv`). */
  readonly name: string;
  /** Media type as registered with IANA. */
  readonly mediaType: string;
  /** True when the format can carry values of several objects at once (composite, Bootstrap-Pack). */
  readonly composite: boolean;
  /**
   * Encodes `node`, found at the request path `path` (`/0/1` → an instance node with ID 1).
   * Throws `CodecError` with reason `unsupported` when the format cannot carry the node.
   */
  encode(path: Path, node: LwM2MNode): Uint8Array;
  /**
   * Decodes a payload sent to or read from `path`. Uses `models` for resource types when given;
   * resources the model does not know are kept as `opaque` (or the type the format itself tells).
   */
  decode(path: Path, payload: Uint8Array, models?: ModelLookup): LwM2MNode;
}

/** Formats that carry flat records of several objects: SenML JSON/CBOR, LwM2M CBOR. */
export interface CompositeCodec extends NodeCodec {
  readonly composite: true;
  encodeRecords(records: readonly LeafRecord[]): Uint8Array;
  decodeRecords(payload: Uint8Array, models?: ModelLookup): LeafRecord[];
}

export function isComposite(c: NodeCodec): c is CompositeCodec {
  return c.composite;
}
