/**
 * Registrations and their events as JSON, shared by the admin API and `lwbs registry ... --json`
 * so both print the same shape. Conventions as in the CLI (src/cli/output.ts): bytes as
 * `{ text?, hex }` (`text` only when printable UTF-8), times ISO 8601 (UTC), absent values null.
 * Registrations hold no secrets (the identity is a PSK identity, a public key or a certificate).
 *
 * Endpoint names in URLs: the URL-encoded text, or `hex:` and the bytes as hex (binary names,
 * and text names that themselves start with `hex:`). `endpointFromUrl` / `endpointToUrl`.
 */
import type { RegisteredObjectEntry, RegistrationEventRecord, RegistrationRecord } from '../store/types.js';
import { bytesAsText } from '../util/bytes.js';

export interface BytesJson {
  readonly text?: string;
  readonly hex: string;
}

function hexOf(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

export function bytesJson(b: Uint8Array): BytesJson {
  const text = bytesAsText(b);
  return text !== undefined && text.length > 0 ? { text, hex: hexOf(b) } : { hex: hexOf(b) };
}

function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

export interface RegisteredObjectJson {
  readonly id: number;
  readonly version: string | null;
  readonly instances: readonly number[];
}

export interface RegistrationJson {
  readonly id: string;
  readonly endpoint: BytesJson;
  readonly address: string;
  readonly port: number;
  readonly security: string;
  readonly identity: BytesJson | null;
  readonly credentialId: number | null;
  readonly lwm2mVersion: string;
  readonly binding: string;
  readonly queueMode: boolean;
  readonly sms: string | null;
  readonly lifetime: number;
  readonly rootPath: string;
  readonly contentFormats: readonly number[] | null;
  readonly objects: readonly RegisteredObjectJson[];
  readonly profileIds: readonly string[] | null;
  readonly attributes: Readonly<Record<string, string>>;
  readonly registeredAt: string | null;
  readonly updatedAt: string | null;
  readonly expiresAt: string | null;
}

export interface RegistrationEventJson {
  readonly seq: number;
  readonly kind: string;
  readonly endpoint: BytesJson | null;
  readonly registrationId: string | null;
  readonly peer: string | null;
  readonly detail: string | null;
  readonly at: string | null;
}

export function registrationJson(r: RegistrationRecord): RegistrationJson {
  return {
    id: r.id,
    endpoint: bytesJson(r.endpoint),
    address: r.address,
    port: r.port,
    security: r.security,
    identity: r.identity === null ? null : bytesJson(r.identity),
    credentialId: r.credentialId,
    lwm2mVersion: r.lwm2mVersion,
    binding: r.binding,
    queueMode: r.queueMode,
    sms: r.sms,
    lifetime: r.lifetime,
    rootPath: r.rootPath,
    contentFormats: r.contentFormats,
    objects: r.objects.map(objectJson),
    profileIds: r.profileIds,
    attributes: r.attributes,
    registeredAt: iso(r.registeredAt),
    updatedAt: iso(r.updatedAt),
    expiresAt: iso(r.expiresAt),
  };
}

function objectJson(o: RegisteredObjectEntry): RegisteredObjectJson {
  return { id: o.id, version: o.version ?? null, instances: [...o.instances] };
}

export function registrationEventJson(e: RegistrationEventRecord): RegistrationEventJson {
  return {
    seq: e.seq,
    kind: e.kind,
    endpoint: e.endpoint === null ? null : bytesJson(e.endpoint),
    registrationId: e.registrationId,
    peer: e.peer,
    detail: e.detail,
    at: iso(e.at),
  };
}

/**
 * An endpoint from a URL path segment (already split at `/`, still percent-encoded): `hex:…` is
 * hex, anything else percent-decoded UTF-8. Undefined when malformed or empty.
 */
export function endpointFromUrl(segment: string): Uint8Array | undefined {
  let text: string;
  try {
    text = decodeURIComponent(segment);
  } catch {
    return undefined;
  }
  if (text.toLowerCase().startsWith('hex:')) {
    const hex = text.slice(4);
    if (hex.length === 0 || hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) return undefined;
    return new Uint8Array(Buffer.from(hex, 'hex'));
  }
  if (text.length === 0) return undefined;
  return new Uint8Array(Buffer.from(text, 'utf8'));
}

/** The URL path segment for an endpoint: encoded text when printable (and not `hex:…`), else `hex:` + hex. */
export function endpointToUrl(endpoint: Uint8Array): string {
  const text = bytesAsText(endpoint);
  if (text !== undefined && text.length > 0 && !text.toLowerCase().startsWith('hex:')) return encodeURIComponent(text);
  return `hex:${hexOf(endpoint)}`;
}
