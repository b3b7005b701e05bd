/**
 * The content-format registry: one place that maps CoAP Content-Format numbers to codecs, and
 * the server's choice of format for a client.
 */
import { isComposite, type CompositeCodec, type NodeCodec } from '../codec.js';
import { CodecError } from '../errors.js';
import { linkFormatCodec } from '../linkformat.js';
import { cborValueCodec } from './cbor-value.js';
import { lwm2mCborCodec } from './lwm2m-cbor.js';
import { lwm2mJsonCodec, lwm2mJsonLegacyCodec } from './lwm2m-json.js';
import { opaqueCodec } from './opaque.js';
import { senmlCborCodec } from './senml-cbor.js';
import { senmlJsonCodec } from './senml-json.js';
import { textCodec } from './text.js';
import { tlvCodec, tlvLegacyCodec } from './tlv.js';

export const ContentFormat = {
  TEXT: 0,
  LINK_FORMAT: 40,
  OPAQUE: 42,
  CBOR: 60,
  SENML_JSON: 110,
  SENML_CBOR: 112,
  TLV: 11542,
  LWM2M_JSON: 11543,
  LWM2M_CBOR: 11544,
  TLV_LEGACY: 1542,
  LWM2M_JSON_LEGACY: 1543,
} as const;

const NODE_CODECS: readonly NodeCodec[] = [
  textCodec,
  opaqueCodec,
  cborValueCodec,
  senmlJsonCodec,
  senmlCborCodec,
  tlvCodec,
  lwm2mJsonCodec,
  lwm2mCborCodec,
  tlvLegacyCodec,
  lwm2mJsonLegacyCodec,
];

const byFormat = new Map<number, NodeCodec>(NODE_CODECS.map((c) => [c.contentFormat, c]));
const byName = new Map<string, NodeCodec>(NODE_CODECS.map((c) => [c.name, c]));

/** Every node codec we have, in Content-Format order. */
export function nodeCodecs(): readonly NodeCodec[] {
  return [...NODE_CODECS].sort((a, b) => a.contentFormat - b.contentFormat);
}

export function hasCodec(contentFormat: number): boolean {
  return byFormat.has(contentFormat) || contentFormat === linkFormatCodec.contentFormat;
}

/** The codec for a Content-Format number, or undefined. */
export function findCodec(contentFormat: number): NodeCodec | undefined {
  return byFormat.get(contentFormat);
}

/** The codec for a Content-Format number; throws `CodecError` (unsupported) when there is none. */
export function codecFor(contentFormat: number): NodeCodec {
  const c = byFormat.get(contentFormat);
  if (!c) throw new CodecError('content-format', 'unsupported', `no codec for Content-Format ${contentFormat}`);
  return c;
}

/** A composite-capable codec (SenML JSON/CBOR, LwM2M CBOR); throws when the format is not one. */
export function compositeCodecFor(contentFormat: number): CompositeCodec {
  const c = codecFor(contentFormat);
  if (!isComposite(c)) throw new CodecError(c.name, 'unsupported', `Content-Format ${contentFormat} cannot carry several objects`);
  return c;
}

/** Looks a codec up by number (`11542`) or name (`tlv`, `senml-cbor`). */
export function codecByNameOrNumber(key: string): NodeCodec | undefined {
  const t = key.trim().toLowerCase();
  return /^[0-9]+$/.test(t) ? byFormat.get(Number(t)) : byName.get(t);
}

export { linkFormatCodec };
