/**
 * A scripted LwM2M "device" for the bootstrap server's protocol tests, on a raw UDP socket with
 * coap-packet (independent of src/coap): it sends Bootstrap-Requests byte by byte as a client
 * would and answers the server's requests with whatever the test's `respond` says, recording
 * every datagram in arrival order so tests can check what was sent, when, and in what format.
 */
import { generate, type ParsedPacket } from 'coap-packet';
import { isRequest, opt, RawDevice, type Received } from '../coap/raw-device.js';

export interface ServerRequest {
  readonly method: string; // GET PUT POST DELETE
  readonly path: string; // "/0/1", "/" for the root, "/bs"
  readonly contentFormat: number | undefined;
  readonly accept: number | undefined;
  readonly payload: Buffer;
  /** Uri-Query options as text. */
  readonly query: readonly string[];
  /** The Observe option's value (0 register, 1 deregister), undefined without one. */
  readonly observe: number | undefined;
  readonly token: Buffer;
  /** Position among all datagrams the device received. */
  readonly index: number;
}

export type Answer =
  | {
      readonly code: string;
      readonly payload?: Buffer | string;
      readonly contentFormat?: number;
      /** Adds an Observe option with this sequence number (an accepted observation). */
      readonly observe?: number;
      /** Location-Path segments (a Create where the device picked the instance). */
      readonly location?: readonly string[];
    }
  | 'silent';

const METHODS: Record<string, string> = { '0.01': 'GET', '0.02': 'POST', '0.03': 'PUT', '0.04': 'DELETE' };

function uint(b: Buffer | undefined): number | undefined {
  if (!b) return undefined;
  let n = 0;
  for (const x of b) n = n * 256 + x;
  return n;
}

export class FakeDevice {
  /** Requests from the server, in arrival order (retransmissions included only once). */
  readonly requests: ServerRequest[] = [];
  /** How to answer a server request; default: 2.02 for DELETE, 2.05 for GET, 2.04 otherwise. */
  respond: (r: ServerRequest) => Answer = defaultAnswer;
  /** Send every answer twice (a device, or a network, that duplicates datagrams). */
  duplicateAnswers = false;
  private nextMid = 1000;
  private readonly seenMids = new Map<number, Buffer | undefined>();

  private constructor(readonly raw: RawDevice) {
    raw.onPacket = (rx) => this.onPacket(rx);
  }

  static async open(): Promise<FakeDevice> {
    return new FakeDevice(await RawDevice.open());
  }

  get port(): number {
    return this.raw.port;
  }

  private onPacket(rx: Received): void {
    const p = rx.packet;
    if (!p || !isRequest(rx)) return;
    if (this.seenMids.has(p.messageId)) {
      // A retransmission: repeat the answer, if there was one (CoAP deduplication).
      const cached = this.seenMids.get(p.messageId);
      if (cached) this.raw.reply(rx, cached);
      return;
    }
    const segs = opt(p, 'Uri-Path').map((b) => b.toString('utf8'));
    const req: ServerRequest = {
      method: METHODS[p.code] ?? p.code,
      path: '/' + segs.join('/'),
      contentFormat: uint(opt(p, 'Content-Format')[0]),
      accept: uint(opt(p, 'Accept')[0]),
      payload: p.payload,
      query: opt(p, 'Uri-Query').map((b) => b.toString('utf8')),
      observe: uint(opt(p, 'Observe')[0]),
      token: p.token,
      index: this.raw.received.indexOf(rx),
    };
    this.requests.push(req);
    const a = this.respond(req);
    if (a === 'silent') {
      this.seenMids.set(p.messageId, undefined);
      return;
    }
    const options = [
      ...(a.observe !== undefined ? [{ name: 'Observe' as const, value: encodeUint(a.observe) }] : []),
      ...(a.location ?? []).map((seg) => ({ name: 'Location-Path' as const, value: Buffer.from(seg) })),
      ...(a.contentFormat !== undefined ? [{ name: 'Content-Format' as const, value: encodeUint(a.contentFormat) }] : []),
    ];
    const reply = generate({
      messageId: p.messageId,
      token: p.token,
      ack: true,
      code: a.code,
      options,
      payload: a.payload === undefined ? Buffer.alloc(0) : Buffer.from(a.payload),
    });
    this.seenMids.set(p.messageId, reply);
    this.raw.reply(rx, reply);
    if (this.duplicateAnswers) this.raw.reply(rx, reply);
  }

  /**
   * Sends `POST /bs` (or another request) to the server with the given queries and resolves with
   * the piggy-backed answer.
   */
  async request(
    serverPort: number,
    o: {
      method?: 'POST' | 'GET' | 'PUT' | 'DELETE';
      path?: string[];
      query?: (string | Buffer)[];
      confirmable?: boolean;
      accept?: number;
      messageId?: number;
      /** Request body (e.g. a Register's link-format object list). */
      payload?: Buffer | string;
      contentFormat?: number;
    } = {},
  ): Promise<{ code: string; payload: Buffer; contentFormat: number | undefined; index: number; packet: ParsedPacket }> {
    const messageId = o.messageId ?? this.nextMid++;
    const token = Buffer.from([0xb0, messageId & 0xff, messageId >> 8]);
    const options = [
      ...(o.path ?? ['bs']).map((s) => ({ name: 'Uri-Path' as const, value: Buffer.from(s) })),
      ...(o.contentFormat !== undefined ? [{ name: 'Content-Format' as const, value: encodeUint(o.contentFormat) }] : []),
      ...(o.query ?? []).map((q) => ({ name: 'Uri-Query' as const, value: Buffer.from(q) })),
      ...(o.accept !== undefined ? [{ name: 'Accept' as const, value: encodeUint(o.accept) }] : []),
    ];
    const code = o.method ?? 'POST';
    const payload = o.payload === undefined ? undefined : Buffer.from(o.payload);
    this.raw.send({ messageId, token, code, confirmable: o.confirmable ?? true, options, ...(payload ? { payload } : {}) }, serverPort);
    const rx = await this.raw.waitFor((r) => r.packet !== undefined && r.packet.token.equals(token) && !r.packet.code.startsWith('0.'));
    const p = rx.packet!;
    return { code: p.code, payload: p.payload, contentFormat: uint(opt(p, 'Content-Format')[0]), index: this.raw.received.indexOf(rx), packet: p };
  }

  /**
   * Sends a notification for an observation (a separate response with the observe token): NON by
   * default, CON with `confirmable` (the server must ACK it). Returns the message ID used.
   */
  notify(serverPort: number, token: Buffer, n: { observe: number; payload: Buffer | string; contentFormat?: number; code?: string; confirmable?: boolean }): number {
    const messageId = this.nextMid++;
    const options = [
      { name: 'Observe' as const, value: encodeUint(n.observe) },
      ...(n.contentFormat !== undefined ? [{ name: 'Content-Format' as const, value: encodeUint(n.contentFormat) }] : []),
    ];
    this.raw.send({ messageId, token, code: n.code ?? '2.05', confirmable: n.confirmable ?? false, options, payload: Buffer.from(n.payload) }, serverPort);
    return messageId;
  }

  bootstrapRequest(serverPort: number, ep: string | Buffer, extra: string[] = []): ReturnType<FakeDevice['request']> {
    return this.request(serverPort, { query: [Buffer.concat([Buffer.from('ep='), Buffer.from(ep)]), ...extra] });
  }

  /** Resolves with the first server request (already received or future) matching `pred`. */
  async waitForRequest(pred: (r: ServerRequest) => boolean, timeoutMs = 5000): Promise<ServerRequest> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = this.requests.find(pred);
      if (r) return r;
      if (Date.now() > deadline) throw new Error(`no matching server request within ${timeoutMs} ms; got ${this.requests.map((x) => `${x.method} ${x.path}`).join(', ')}`);
      await new Promise((res) => setTimeout(res, 5));
    }
  }

  close(): Promise<void> {
    return this.raw.close();
  }
}

export function defaultAnswer(r: ServerRequest): Answer {
  if (r.method === 'DELETE') return { code: '2.02' };
  if (r.method === 'GET') return { code: '2.05', contentFormat: 40, payload: '</>;lwm2m=1.1,</0/0>,</1>,</3/0>' };
  return { code: '2.04' };
}

function encodeUint(n: number): Buffer {
  if (n === 0) return Buffer.alloc(0);
  const out: number[] = [];
  while (n > 0) {
    out.unshift(n & 0xff);
    n = Math.floor(n / 256);
  }
  return Buffer.from(out);
}
