/**
 * Parsing of the Bootstrap-Request (`POST /bs?ep=NAME[&pct=CF]`, bootstrap.md §2) and the
 * Bootstrap-Pack-Request (`GET /bspack?ep=NAME`, §3) query. Pure; the server maps a refusal to
 * its CoAP code with a diagnostic payload.
 *
 * Lenient where clients differ, strict where it matters:
 *  - the endpoint is kept as raw bytes (names may be binary); it may be absent, since from 1.1 the
 *    DTLS identity can stand in for it — the server decides;
 *  - unknown parameters are kept (Leshan keeps them as "additional attributes"), parameters
 *    without `=` too (as an empty value);
 *  - `ep` or `pct` given twice, an empty `ep`, or a `pct` that is no number are 4.00: a request
 *    we would have to guess about is refused;
 *  - a numeric `pct` that is no Bootstrap-Write format is 4.15, as the spec says (Leshan sends
 *    4.00, Wakaama ignores it; 4.15 tells the client exactly what is wrong).
 */
import { isBootstrapWriteFormat, type BootstrapWriteFormat } from './profile.js';

export interface BootstrapQuery {
  /** `ep`, raw bytes; undefined when absent. */
  readonly endpoint?: Buffer;
  /** `pct`, a Bootstrap-Write format. */
  readonly pct?: BootstrapWriteFormat;
  /** Every other parameter, in order (names lower-cased are NOT assumed: CoAP queries are case-sensitive). */
  readonly extra: ReadonlyMap<string, string>;
}

export type QueryRefusal = { readonly code: '4.00' | '4.15'; readonly diagnostic: string };

export type QueryResult = { readonly ok: true; readonly query: BootstrapQuery } | { readonly ok: false; readonly refusal: QueryRefusal };

const EQ = 0x3d;
/** Longer endpoint names are refused (the CoAP option itself allows 255 bytes per segment). */
export const MAX_ENDPOINT_BYTES = 255;

function refuse(code: QueryRefusal['code'], diagnostic: string): QueryResult {
  return { ok: false, refusal: { code, diagnostic } };
}

/** Parses the Uri-Query options (raw bytes, one per parameter) of /bs or /bspack. */
export function parseBootstrapQuery(uriQuery: readonly Uint8Array[], opts: { readonly allowPct: boolean } = { allowPct: true }): QueryResult {
  let endpoint: Buffer | undefined;
  let pct: BootstrapWriteFormat | undefined;
  let pctSeen = false;
  const extra = new Map<string, string>();
  for (const raw of uriQuery) {
    const b = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
    const eq = b.indexOf(EQ);
    const name = (eq < 0 ? b : b.subarray(0, eq)).toString('latin1');
    const value = eq < 0 ? Buffer.alloc(0) : b.subarray(eq + 1);
    if (name === 'ep') {
      if (endpoint !== undefined) return refuse('4.00', 'ep given more than once');
      if (value.length === 0) return refuse('4.00', 'ep is empty');
      if (value.length > MAX_ENDPOINT_BYTES) return refuse('4.00', `ep is longer than ${MAX_ENDPOINT_BYTES} bytes`);
      endpoint = Buffer.from(value);
    } else if (name === 'pct' && opts.allowPct) {
      if (pctSeen) return refuse('4.00', 'pct given more than once');
      pctSeen = true;
      const text = value.toString('latin1');
      if (!/^[0-9]{1,5}$/.test(text) || Number(text) > 65535) return refuse('4.00', `pct must be a Content-Format number, got ${JSON.stringify(text)}`);
      const cf = Number(text);
      if (!isBootstrapWriteFormat(cf)) {
        return refuse('4.15', `pct ${cf} is not a Bootstrap-Write format (11542 TLV, 110 SenML JSON, 112 SenML CBOR, 11544 LwM2M CBOR, 11543 LwM2M JSON)`);
      }
      pct = cf;
    } else if (name.length > 0 && !extra.has(name)) {
      extra.set(name, value.toString('utf8'));
    }
  }
  return { ok: true, query: { ...(endpoint ? { endpoint } : {}), ...(pct !== undefined ? { pct } : {}), extra } };
}
