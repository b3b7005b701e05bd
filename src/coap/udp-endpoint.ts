/**
 * Plain CoAP over UDP: a `CoapEndpoint` that owns one dgram socket. Datagrams pass through
 * untouched; `peer.identity` is always undefined. One socket serves both directions (incoming
 * requests and our requests to devices), which is what LwM2M needs: see demux.ts.
 */
import { createSocket, type Socket } from 'node:dgram';
import { EventEmitter } from 'node:events';
import { isIPv6, type AddressInfo } from 'node:net';
import type { CoapEndpoint, CoapEndpointEvents, PeerInfo, SendCallback } from './endpoint.js';

export interface UdpEndpointOptions {
  /** Address to bind; default '0.0.0.0' (or '::' when `type` is 'udp6'). */
  readonly host?: string;
  /** Port to bind; 0 (the default) lets the OS choose. */
  readonly port?: number;
  /** Socket family; default from `host` ('udp6' for an IPv6 literal). */
  readonly type?: 'udp4' | 'udp6';
  /** Kernel buffer sizes, for servers that take bursts (thousands of datagrams at once). */
  readonly recvBufferSize?: number;
  readonly sendBufferSize?: number;
}

export class UdpEndpoint extends EventEmitter<CoapEndpointEvents> implements CoapEndpoint {
  readonly type: 'udp4' | 'udp6';
  readonly secure = false;
  private readonly socket: Socket;
  private closed = false;
  private closing: Promise<void> | undefined;

  private constructor(socket: Socket, type: 'udp4' | 'udp6') {
    super();
    this.socket = socket;
    this.type = type;
    socket.on('message', (msg: Buffer, rinfo: PeerInfo) => {
      // dgram gives a fresh RemoteInfo per datagram; it is a valid PeerInfo without identity.
      this.emit('message', msg, rinfo);
    });
    socket.on('error', (err: Error) => {
      // An 'error' with no listener would throw out of the event loop: only forward if heard.
      if (this.listenerCount('error') > 0) this.emit('error', err);
    });
  }

  /** Creates the socket and binds it; rejects (e.g. EADDRINUSE) without leaking the socket. */
  static create(opts: UdpEndpointOptions = {}): Promise<UdpEndpoint> {
    const type = opts.type ?? (opts.host !== undefined && isIPv6(opts.host) ? 'udp6' : 'udp4');
    const host = opts.host ?? (type === 'udp6' ? '::' : '0.0.0.0');
    const socket = createSocket({ type, reuseAddr: false });
    return new Promise<UdpEndpoint>((resolve, reject) => {
      const onError = (err: Error): void => {
        socket.close();
        reject(err);
      };
      socket.once('error', onError);
      socket.bind(opts.port ?? 0, host, () => {
        socket.off('error', onError);
        try {
          if (opts.recvBufferSize !== undefined) socket.setRecvBufferSize(opts.recvBufferSize);
          if (opts.sendBufferSize !== undefined) socket.setSendBufferSize(opts.sendBufferSize);
        } catch (err) {
          socket.close();
          reject(err instanceof Error ? err : new Error(String(err)));
          return;
        }
        resolve(new UdpEndpoint(socket, type));
      });
    });
  }

  send(msg: Uint8Array, port: number, address: string, callback?: SendCallback): void {
    if (this.closed) {
      if (callback) process.nextTick(callback, null);
      return;
    }
    try {
      this.socket.send(msg, port, address, (err) => callback?.(err ?? null));
    } catch (err) {
      // dgram throws synchronously for bad arguments (e.g. port out of range) or a closed socket.
      const e = err instanceof Error ? err : new Error(String(err));
      if (callback) process.nextTick(callback, e);
    }
  }

  address(): AddressInfo {
    return this.socket.address();
  }

  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closed = true;
    this.closing = new Promise<void>((resolve) => {
      this.socket.close(() => {
        this.emit('close');
        resolve();
      });
    });
    return this.closing;
  }
}
