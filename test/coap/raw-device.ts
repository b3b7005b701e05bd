/**
 * A "device" for transport tests: a plain dgram socket speaking raw CoAP through coap-packet (an
 * implementation independent of src/coap/message.ts), recording every datagram it receives.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { generate, parse, type Packet, type ParsedPacket } from 'coap-packet';

export interface Received {
  readonly raw: Buffer;
  /** undefined if coap-packet could not parse it. */
  readonly packet: ParsedPacket | undefined;
  readonly rinfo: RemoteInfo;
}

export class RawDevice {
  readonly received: Received[] = [];
  /** Called for every datagram received (after recording it): an auto-responder. */
  onPacket: ((rx: Received) => void) | undefined;
  private closed = false;
  private waiters: { pred: (rx: Received) => boolean; resolve: (rx: Received) => void }[] = [];

  private constructor(readonly socket: Socket) {
    socket.on('message', (raw: Buffer, rinfo: RemoteInfo) => {
      let packet: ParsedPacket | undefined;
      try {
        packet = parse(raw);
      } catch {
        packet = undefined;
      }
      const rx: Received = { raw, packet, rinfo };
      this.received.push(rx);
      this.waiters = this.waiters.filter((w) => {
        if (!w.pred(rx)) return true;
        w.resolve(rx);
        return false;
      });
      this.onPacket?.(rx);
    });
  }

  static open(): Promise<RawDevice> {
    const socket = createSocket('udp4');
    return new Promise((resolve) => socket.bind(0, '127.0.0.1', () => resolve(new RawDevice(socket))));
  }

  get port(): number {
    return this.socket.address().port;
  }

  get address(): { address: string; port: number } {
    return { address: '127.0.0.1', port: this.port };
  }

  send(msg: Packet | Uint8Array, port: number, address = '127.0.0.1'): void {
    if (this.closed) return; // a late timer in a finished test
    const buf = msg instanceof Uint8Array ? msg : generate(msg);
    this.socket.send(buf, port, address);
  }

  /** Replies to a received datagram's sender. */
  reply(to: Received, msg: Packet | Uint8Array): void {
    this.send(msg, to.rinfo.port, to.rinfo.address);
  }

  /** First datagram (already received or future) matching `pred`. */
  waitFor(pred: (rx: Received) => boolean, timeoutMs = 3000): Promise<Received> {
    const have = this.received.find(pred);
    if (have) return Promise.resolve(have);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`device ${this.port}: nothing matching within ${timeoutMs} ms (got ${this.received.length} datagrams)`));
      }, timeoutMs);
      const waiter = { pred, resolve: (rx: Received) => { clearTimeout(timer); resolve(rx); } };
      this.waiters.push(waiter);
    });
  }

  count(pred: (rx: Received) => boolean = () => true): number {
    return this.received.filter(pred).length;
  }

  close(): Promise<void> {
    this.closed = true;
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}

export function opt(p: ParsedPacket, name: string): Buffer[] {
  return p.options.filter((o) => o.name === name).map((o) => o.value);
}

export function isRequest(rx: Received, code?: string): boolean {
  const p = rx.packet;
  return p !== undefined && p.code.startsWith('0.') && p.code !== '0.00' && (code === undefined || p.code === code);
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
