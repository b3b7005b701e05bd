/**
 * The transport seam under the CoAP layer. A `CoapEndpoint` is a socket-like object: it emits
 * `message` with `(plaintext, peer)` for every datagram it receives and sends plaintext datagrams
 * with `send(buf, port, address, cb)` (the argument order of `dgram.Socket#send`). The plain UDP
 * endpoint (udp-endpoint.ts) passes datagrams straight through; the DTLS endpoint (issue 5) will
 * decrypt records, emit the plaintext with the authenticated identity in `peer.identity`, and
 * encrypt on `send` for the session bound to (address, port). Everything above (demux.ts,
 * coap-node.ts, node-coap) sees only this interface, so it runs unchanged over either.
 */
import type { EventEmitter } from 'node:events';
import type { AddressInfo } from 'node:net';

/** How a DTLS peer authenticated. Bytes are kept raw: identities may be text or binary. */
export type PeerIdentity =
  | { readonly type: 'psk'; readonly identity: Buffer }
  | { readonly type: 'rpk'; readonly publicKey: Buffer /* SubjectPublicKeyInfo, DER */ }
  | { readonly type: 'x509'; readonly certificate: Buffer /* leaf, DER */; readonly chain?: readonly Buffer[] };

/** How a request arrived: `nosec` over plain UDP, else the DTLS authentication type. */
export function securityOf(identity: PeerIdentity | undefined): 'nosec' | PeerIdentity['type'] {
  return identity === undefined ? 'nosec' : identity.type;
}

/** The bytes that identify a DTLS peer (PSK identity, SPKI DER, certificate DER); undefined over plain UDP. */
export function identityBytes(identity: PeerIdentity | undefined): Buffer | undefined {
  if (!identity) return undefined;
  switch (identity.type) {
    case 'psk':
      return identity.identity;
    case 'rpk':
      return identity.publicKey;
    case 'x509':
      return identity.certificate;
  }
}

/** Where a datagram came from (a dgram `RemoteInfo`) plus, over DTLS, who the peer proved to be. */
export interface PeerInfo {
  readonly address: string;
  readonly family: string; // 'IPv4' | 'IPv6'
  readonly port: number;
  readonly size: number;
  /** Authenticated identity; undefined over plain UDP. */
  readonly identity?: PeerIdentity;
}

/** Enough to address a datagram to a peer (a `PeerInfo` is one). */
export interface PeerAddress {
  readonly address: string;
  readonly port: number;
}

export interface CoapEndpointEvents {
  message: [msg: Buffer, peer: PeerInfo];
  error: [err: Error];
  close: [];
}

export type SendCallback = (err: Error | null) => void;

export interface CoapEndpoint extends Pick<EventEmitter<CoapEndpointEvents>, 'on' | 'off' | 'once' | 'emit' | 'listenerCount'> {
  /** Socket family, as node-coap's Agent wants it. */
  readonly type: 'udp4' | 'udp6';
  /** True for DTLS (coaps://): lets upper layers pick the URI scheme and refuse nosec on it. */
  readonly secure: boolean;
  /**
   * Sends one datagram of plaintext to (address, port). Never throws for network reasons; errors
   * go to the callback (and are dropped silently after close()).
   */
  send(msg: Uint8Array, port: number, address: string, callback?: SendCallback): void;
  /** The bound local address. */
  address(): AddressInfo;
  /** Stops receiving, releases the port. Idempotent. */
  close(): Promise<void>;
  /**
   * The largest datagram `send` delivers to (address, port), when the transport knows one below
   * the usual (DTLS: the client's max_fragment_length / record_size_limit); undefined: no limit.
   */
  recordLimit?(address: string, port: number): number | undefined;
}

/**
 * The key that identifies a peer for message-layer matching (dedup, ACK routing, tokens).
 * Over DTLS with Connection IDs the address may change under a session: the DTLS endpoint then
 * delivers and accepts the new address only (`DtlsEndpoint.onPeerMoved` tells upper layers).
 */
export function peerKey(peer: PeerAddress): string {
  return `${peer.address}|${peer.port}`;
}

export function formatPeer(peer: PeerAddress): string {
  return peer.address.includes(':') ? `[${peer.address}]:${peer.port}` : `${peer.address}:${peer.port}`;
}
