/**
 * Counts datagrams handed to a transport whose send callback has not run yet, so an endpoint's
 * close() can let its last records (close_notify alerts) leave before the socket goes — bounded,
 * since a callback that never comes must not hang close().
 */
import type { SendCallback } from '../coap/endpoint.js';
import type { DatagramTransport } from './endpoint.js';

export class SendTracker {
  private inFlight = 0;
  private waiters: (() => void)[] = [];

  constructor(private transport: DatagramTransport) {}

  /** Sends from now on go to `transport` (the client's rebind); those in flight still count. */
  use(transport: DatagramTransport): void {
    this.transport = transport;
  }

  send(datagram: Uint8Array, port: number, address: string, callback?: SendCallback): void {
    this.inFlight++;
    this.transport.send(datagram, port, address, (err) => {
      if (--this.inFlight === 0) for (const f of this.waiters.splice(0)) f();
      callback?.(err);
    });
  }

  /** Resolves when every send so far has called back, or after `limitMs`. */
  drained(limitMs = 500): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const t = setTimeout(resolve, limitMs);
      this.waiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }
}
