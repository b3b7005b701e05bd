/**
 * Helpers for the registration server tests: a CoAP endpoint that plays DTLS (it stamps a
 * configurable identity on datagrams by source port, so the server's DTLS code paths run over
 * plain UDP), a poll helper, and a Register request builder for FakeDevice.
 */
import { EventEmitter } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { CoapEndpoint, CoapEndpointEvents, PeerIdentity, PeerInfo, SendCallback } from '../../src/coap/endpoint.js';
import { UdpEndpoint } from '../../src/coap/udp-endpoint.js';
import type { FakeDevice } from '../bootstrap/fake-device.js';
import { sleep } from '../coap/raw-device.js';

/** A "secure" endpoint over UDP: datagrams from a port listed in `identities` arrive with that identity. */
export class IdentityEndpoint extends EventEmitter<CoapEndpointEvents> implements CoapEndpoint {
  readonly type = 'udp4' as const;
  readonly secure = true;
  readonly identities = new Map<number, PeerIdentity>();

  private constructor(private readonly inner: UdpEndpoint) {
    super();
    inner.on('message', (msg: Buffer, peer: PeerInfo) => {
      const identity = this.identities.get(peer.port);
      this.emit('message', msg, identity ? { ...peer, identity } : peer);
    });
  }

  static async create(): Promise<IdentityEndpoint> {
    return new IdentityEndpoint(await UdpEndpoint.create({ host: '127.0.0.1', port: 0 }));
  }

  send(msg: Uint8Array, port: number, address: string, callback?: SendCallback): void {
    this.inner.send(msg, port, address, callback);
  }

  address(): AddressInfo {
    return this.inner.address();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

/** Polls `check` until it returns something other than undefined/false. */
export async function until<T>(check: () => T | undefined | false | Promise<T | undefined | false>, what: string, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

export const OBJECTS = '</>;rt="oma.lwm2m";ct="60 110 112 11542",</1/0>,</3/0>,</4/0>,</5>';

/** Sends a Register (`POST /rd`) with these query parameters and a link-format object list (null: none). */
export function register(device: FakeDevice, port: number, query: string[], payload: string | null = OBJECTS, extra: { confirmable?: boolean; contentFormat?: number } = {}) {
  return device.request(port, {
    path: ['rd'],
    query,
    ...(payload !== null ? { payload, contentFormat: extra.contentFormat ?? 40 } : {}),
    ...(extra.confirmable !== undefined ? { confirmable: extra.confirmable } : {}),
  });
}

/** Location-Path segments of an answer. */
export function locationPath(packet: { options: { name: string | number; value: Buffer }[] }): string[] {
  return packet.options.filter((o) => o.name === 'Location-Path').map((o) => o.value.toString());
}

/** registration.md §2.4: Register ep=dev1, lt=300, lwm2m=1.1, b=U, payload </1/0>,</3/0>. */
export const SPEC_REGISTER = Buffer.from(
  '44 02 12 34 A1 B2 C3 D4 B2 72 64 11 28 37 65 70 3D 64 65 76 31 06 6C 74 3D 33 30 30 09 6C 77 6D 32 6D 3D 31 2E 31 03 62 3D 55 FF 3C 2F 31 2F 30 3E 2C 3C 2F 33 2F 30 3E'.replace(
    / /g,
    '',
  ),
  'hex',
);
