/**
 * Typed errors for the LwM2M data layer. Every codec reports bad input with one of these, never
 * with a bare TypeError/RangeError, so callers can answer 4.00 and log a precise cause.
 */

/** Why a payload or value was refused. Stable strings: tests and logs match on them. */
export type CodecErrorReason =
  | 'truncated' // the input ends before a declared length or structure
  | 'trailing' // bytes left after a complete item where none are allowed
  | 'invalid' // structurally wrong (bad type bits, bad syntax, wrong JSON shape, ...)
  | 'too_deep' // nesting beyond the allowed depth
  | 'too_large' // a length or count beyond what we accept
  | 'type_mismatch' // value does not fit the resource type from the model
  | 'out_of_range' // number outside the type's range
  | 'bad_path' // path malformed, or not consistent with the request path
  | 'duplicate' // the same path given twice
  | 'unsupported'; // the format cannot carry this node or level

export class CodecError extends Error {
  override readonly name = 'CodecError';
  constructor(
    /** Short name of the content format, e.g. `tlv`, `senml-json`, or `value`/`path`. */
    readonly format: string,
    readonly reason: CodecErrorReason,
    detail: string,
    /** Byte offset (binary formats) or character offset (text formats) where the fault is. */
    readonly offset?: number,
    /** LwM2M path the fault concerns, as text (`/3/0/7/1`). */
    readonly path?: string,
  ) {
    super(
      `${format}: ${detail}` +
        (path !== undefined ? ` (path ${path})` : '') +
        (offset !== undefined ? ` (at offset ${offset})` : ''),
    );
  }
}
