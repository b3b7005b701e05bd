/**
 * Where the simulated device sends to: a `coap://host[:port]` or `coaps://host[:port]` URI (or
 * an address, plain CoAP) resolved once to an address. `coaps://` targets are reached over DTLS
 * (transport.ts) with the credentials of the server's Security instance.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { PeerAddress } from '../coap/endpoint.js';

export type ServerTarget = { readonly address: string; readonly port: number } | string;

export interface Target extends PeerAddress {
  /** `coap://address:port` (or `coaps://`) of what was resolved. */
  readonly uri: string;
  /** `coaps://`: reached over DTLS. */
  readonly secure: boolean;
}

/** A DTLS mode the simulator does not implement (raw public keys, certificates), or no credentials for one. */
export class DtlsNotSupportedError extends Error {
  override readonly name = 'DtlsNotSupportedError';
}

/**
 * `coap://host[:port]` or `{ address, port }` → an address to send to (names resolved once).
 * `what` names the server in error messages ("bootstrap server", "LwM2M server").
 */
export async function resolveTarget(t: ServerTarget, family: 'udp4' | 'udp6', what = 'bootstrap server'): Promise<Target> {
  let host: string;
  let port: number;
  let secure = false;
  if (typeof t === 'string') {
    let url: URL;
    try {
      url = new URL(t);
    } catch {
      throw new Error(`not a URI: ${JSON.stringify(t)}`);
    }
    if (url.protocol !== 'coap:' && url.protocol !== 'coaps:') {
      throw new Error(`the ${what} URI must be coap://host[:port] or coaps://host[:port], got ${JSON.stringify(t)}`);
    }
    secure = url.protocol === 'coaps:';
    host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    port = url.port === '' ? (secure ? 5684 : 5683) : Number(url.port);
  } else {
    host = t.address;
    port = t.port;
  }
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`bad port ${port}`);
  const address = isIP(host) !== 0 ? host : (await lookup(host, { family: family === 'udp6' ? 6 : 4 })).address;
  const shown = address.includes(':') ? `[${address}]` : address;
  return { address, port, uri: `${secure ? 'coaps' : 'coap'}://${shown}:${port}`, secure };
}

export function samePeer(a: PeerAddress, b: PeerAddress): boolean {
  return a.address === b.address && a.port === b.port;
}
