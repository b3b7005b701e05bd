/**
 * A scripted "bootstrap server" for the simulator tests, built on CoapNode: it answers POST /bs
 * (2.04 by default), then runs the test's script against the device; GET /bspack answers what
 * the test set. Everything over real UDP on 127.0.0.1. Also `RawServer`, a hand-rolled LwM2M
 * server on a plain socket for the registration and device-management tests.
 */
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { CoapNode, type CoapIncomingRequest, type CoapRequestOptions, type CoapResponse } from '../../src/coap/coap-node.js';
import {
  ACK, CON, decodeMessage, encodeEmpty, encodeMessage, encodeUint, NON, Opt, optionValues, parseCode, uintOption, type CoapMessage, type CoapOption,
} from '../../src/coap/message.js';
import type { PeerInfo } from '../../src/coap/endpoint.js';
import { codecFor } from '../../src/lwm2m/formats/index.js';
import { N, type ObjectInstance, type LwM2MNode } from '../../src/lwm2m/node.js';
import type { Path } from '../../src/lwm2m/path.js';
import { V } from '../../src/lwm2m/value.js';

/** Short CoAP timers: retransmissions on a lossless loopback never matter, timeouts stay quick. */
export const FAST = { ackTimeoutMs: 300, ackRandomFactor: 1, maxRetransmit: 2 } as const;

export type Script = (dev: DeviceHandle) => Promise<void>;

/** What the script uses to talk to the device that sent /bs. */
export class DeviceHandle {
  constructor(
    private readonly node: CoapNode,
    readonly peer: PeerInfo,
    readonly bs: CoapIncomingRequest,
  ) {}

  request(o: CoapRequestOptions): Promise<CoapResponse> {
    return this.node.request(this.peer, { timeoutMs: 3000, ...o });
  }

  discover(path: Path = []): Promise<CoapResponse> {
    return this.request({ method: 'GET', path, accept: 40 });
  }

  read(path: Path, accept?: number): Promise<CoapResponse> {
    return this.request({ method: 'GET', path, ...(accept !== undefined ? { accept } : {}) });
  }

  delete(path: Path): Promise<CoapResponse> {
    return this.request({ method: 'DELETE', path });
  }

  /** PUT of `node` at `path`, encoded with the codec of `cf`. */
  write(path: Path, node: LwM2MNode, cf: number): Promise<CoapResponse> {
    return this.request({ method: 'PUT', path, contentFormat: cf, payload: codecFor(cf).encode(path, node) });
  }

  finish(): Promise<CoapResponse> {
    return this.request({ method: 'POST', path: '/bs' });
  }
}

export interface PackAnswer {
  readonly code: string;
  readonly contentFormat?: number;
  readonly payload?: Uint8Array | string;
}

export class ScriptedServer {
  /** Every POST /bs received. */
  readonly bsRequests: CoapIncomingRequest[] = [];
  /** Every GET /bspack received. */
  readonly packRequests: CoapIncomingRequest[] = [];
  /** One promise per script run (rejects when the script failed). */
  readonly runs: Promise<void>[] = [];
  script: Script | undefined;
  bsCode = '2.04';
  bsDiagnostic: string | undefined;
  pack: PackAnswer | undefined;

  private constructor(readonly node: CoapNode) {}

  static async start(script?: Script): Promise<ScriptedServer> {
    const holder: { s?: ScriptedServer } = {};
    const node = await CoapNode.listen({
      host: '127.0.0.1',
      port: 0,
      transmission: FAST,
      handler: (req, res, peer) => holder.s!.handle(req, res.send.bind(res), peer),
    });
    holder.s = new ScriptedServer(node);
    holder.s.script = script;
    return holder.s;
  }

  get port(): number {
    return this.node.address().port;
  }

  get uri(): string {
    return `coap://127.0.0.1:${this.port}`;
  }

  get target(): { address: string; port: number } {
    return { address: '127.0.0.1', port: this.port };
  }

  private handle(req: CoapIncomingRequest, send: (code: string, init?: { contentFormat?: number; payload?: Uint8Array | string }) => void, peer: PeerInfo): void {
    if (req.method === 'POST' && req.path === '/bs') {
      this.bsRequests.push(req);
      send(this.bsCode, this.bsDiagnostic !== undefined ? { payload: this.bsDiagnostic } : {});
      if (this.bsCode === '2.04' && this.script) {
        const run = this.script(new DeviceHandle(this.node, peer, req));
        run.catch(() => undefined); // awaited by the test through `runs`
        this.runs.push(run);
      }
      return;
    }
    if (req.method === 'GET' && req.path === '/bspack') {
      this.packRequests.push(req);
      const p = this.pack ?? { code: '5.01' };
      send(p.code, {
        ...(p.contentFormat !== undefined ? { contentFormat: p.contentFormat } : {}),
        ...(p.payload !== undefined ? { payload: p.payload } : {}),
      });
      return;
    }
    send('4.04');
  }

  close(): Promise<void> {
    return this.node.close();
  }
}

// ---- hand-written instances ----------------------------------------------------------------

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

/** A PSK Security instance for SSID `ssid` (objects.md §2.1 mode 0). */
export function pskSecurity(iid: number, ssid: number, uri = `coaps://dm${ssid}.example.com:5684`, identity = `id-${ssid}`, key = Uint8Array.from({ length: 16 }, (_, i) => i + ssid)): ObjectInstance {
  return N.instance(iid, [
    N.resource(0, V.string(uri)),
    N.resource(1, V.boolean(false)),
    N.resource(2, V.integer(0)),
    N.resource(3, V.opaque(bytes(identity))),
    N.resource(4, V.opaque(new Uint8Array(0))),
    N.resource(5, V.opaque(key)),
    N.resource(10, V.integer(ssid)),
  ]);
}

/** A NoSec Security instance. */
export function nosecSecurity(iid: number, ssid: number, uri = `coap://dm${ssid}.example.com:5683`): ObjectInstance {
  return N.instance(iid, [
    N.resource(0, V.string(uri)),
    N.resource(1, V.boolean(false)),
    N.resource(2, V.integer(3)),
    N.resource(3, V.opaque(new Uint8Array(0))),
    N.resource(4, V.opaque(new Uint8Array(0))),
    N.resource(5, V.opaque(new Uint8Array(0))),
    N.resource(10, V.integer(ssid)),
  ]);
}

/** A Server instance (objects.md §3): SSID, lifetime, storing, binding, plus pmin/pmax. */
export function serverInstance(iid: number, ssid: number, lifetime = 300, binding = 'U'): ObjectInstance {
  return N.instance(iid, [
    N.resource(0, V.integer(ssid)),
    N.resource(1, V.integer(lifetime)),
    N.resource(2, V.integer(1)),
    N.resource(3, V.integer(60)),
    N.resource(6, V.boolean(true)),
    N.resource(7, V.string(binding)),
  ]);
}

/** An ACL instance: rights per SSID, owner. */
export function aclInstance(iid: number, objectId: number, instanceId: number, rights: [number, number][], owner: number): ObjectInstance {
  return N.instance(iid, [
    N.resource(0, V.integer(objectId)),
    N.resource(1, V.integer(instanceId)),
    N.multi(2, rights.map(([s, m]) => [s, V.integer(m)] as const)),
    N.resource(3, V.integer(owner)),
  ]);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

// ---- a raw LwM2M server ----------------------------------------------------------------------

/** One datagram the raw server received, decoded (message.ts), with its sender. */
export interface RawReceived {
  readonly message: CoapMessage;
  readonly from: { readonly address: string; readonly port: number };
  readonly bytes: Buffer;
  readonly at: number;
}

export interface RawRequestOptions {
  readonly method: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'FETCH';
  readonly path: Path | string;
  readonly query?: readonly string[];
  readonly accept?: number;
  readonly contentFormat?: number;
  readonly payload?: Uint8Array | string;
  /** Observe option value (0 register, 1 deregister). */
  readonly observe?: number;
  readonly token?: Buffer;
  readonly timeoutMs?: number;
}

const METHOD: Readonly<Record<RawRequestOptions['method'], number>> = { GET: 1, POST: 2, PUT: 3, DELETE: 4, FETCH: 5 };

/**
 * A hand-rolled LwM2M server on a plain dgram socket (no CoapNode, no node-coap): it answers
 * Register (`POST /rd`, 2.01 with Location-Path `rd`, `location`), Update (`updateCodes`, then
 * `updateCode`) and De-register (2.02) itself, sends requests with `request` (CON, resolved by
 * token: piggybacked or separate, a CON separate response is ACKed), and records every datagram,
 * so tests see notifications and can answer them with raw RSTs.
 */
export class RawServer {
  readonly received: RawReceived[] = [];
  /** Requests under /rd: Register, Update, De-register. */
  readonly rd: { readonly method: string; readonly path: string; readonly query: string[]; readonly payload: Buffer; readonly contentFormat?: number; readonly from: { address: string; port: number } }[] = [];
  location: string[] = ['rd', 'sim1'];
  registerCode = '2.01';
  updateCode = '2.04';
  /** Codes for the next Updates, used up first. */
  updateCodes: string[] = [];
  private mid = 0x4000;
  private readonly waiting = new Map<string, (m: CoapMessage) => void>();

  private constructor(private readonly socket: Socket) {
    socket.on('message', (bytes, rinfo) => this.onMessage(bytes, { address: rinfo.address, port: rinfo.port }));
  }

  static async start(port = 0): Promise<RawServer> {
    const socket = createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(port, '127.0.0.1', resolve));
    return new RawServer(socket);
  }

  get port(): number {
    return this.socket.address().port;
  }

  get uri(): string {
    return `coap://127.0.0.1:${this.port}`;
  }

  send(bytes: Uint8Array, to: { address: string; port: number }): void {
    this.socket.send(bytes, to.port, to.address);
  }

  nextMid(): number {
    this.mid = (this.mid + 1) & 0xffff;
    return this.mid;
  }

  /** Builds a CON request (Uri-Path, Uri-Query, Observe, Content-Format, Accept). */
  encodeRequest(o: RawRequestOptions, messageId: number, token: Buffer): Buffer {
    const segments = typeof o.path === 'string' ? o.path.split('/').filter((x) => x !== '') : o.path.map(String);
    const options: CoapOption[] = [];
    if (o.observe !== undefined) options.push({ number: Opt.Observe, value: encodeUint(o.observe) });
    for (const s of segments) options.push({ number: Opt.UriPath, value: Buffer.from(s) });
    if (o.contentFormat !== undefined) options.push({ number: Opt.ContentFormat, value: encodeUint(o.contentFormat) });
    for (const q of o.query ?? []) options.push({ number: Opt.UriQuery, value: Buffer.from(q) });
    if (o.accept !== undefined) options.push({ number: Opt.Accept, value: encodeUint(o.accept) });
    const payload = o.payload === undefined ? undefined : typeof o.payload === 'string' ? Buffer.from(o.payload) : Buffer.from(o.payload);
    return encodeMessage({ type: CON, code: METHOD[o.method], messageId, token, options, ...(payload && payload.length > 0 ? { payload } : {}) });
  }

  /** Sends a CON request and resolves with the response (matched by token). */
  request(to: { address: string; port: number }, o: RawRequestOptions): Promise<CoapMessage> {
    const token = o.token ?? randomBytes(4);
    return this.exchange(to, this.encodeRequest(o, this.nextMid(), token), token, o.timeoutMs);
  }

  /** Sends prepared request bytes and resolves with the response carrying `token`. */
  exchange(to: { address: string; port: number }, bytes: Buffer, token: Buffer, timeoutMs = 3000): Promise<CoapMessage> {
    const key = token.toString('hex');
    return new Promise<CoapMessage>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(key);
        reject(new Error(`no response for token ${key} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(key, (m) => {
        clearTimeout(timer);
        this.waiting.delete(key);
        resolve(m);
      });
      this.send(bytes, to);
    });
  }

  /** Datagrams received since index `from` that satisfy `pred`. */
  matching(pred: (r: RawReceived) => boolean, from = 0): RawReceived[] {
    return this.received.slice(from).filter(pred);
  }

  /** Resolves with the first datagram (at or after index `from`) that satisfies `pred`. */
  async waitFor(pred: (r: RawReceived) => boolean, what: string, from = 0, timeoutMs = 5000): Promise<RawReceived> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.received.slice(from).find(pred);
      if (hit) return hit;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await sleep(10);
    }
  }

  /** Notifications (2.xx/4.xx responses that are not ACKs) with this token, in arrival order. */
  notifications(token: Buffer, from = 0): RawReceived[] {
    return this.matching((r) => r.message.type !== ACK && r.message.code >= 0x40 && r.message.token.equals(token), from);
  }

  private onMessage(bytes: Buffer, from: { address: string; port: number }): void {
    const d = decodeMessage(bytes);
    if (!d.ok) return;
    const m = d.message;
    this.received.push({ message: m, from, bytes, at: Date.now() });
    const cls = m.code >> 5;
    if (cls === 0 && m.code !== 0) return this.onRequest(m, from);
    if (cls >= 2) {
      if (m.type === CON) this.send(encodeEmpty(ACK, m.messageId), from);
      this.waiting.get(m.token.toString('hex'))?.(m);
    }
  }

  private onRequest(m: CoapMessage, from: { address: string; port: number }): void {
    const path = optionValues(m.options, Opt.UriPath).map((b) => b.toString());
    const query = optionValues(m.options, Opt.UriQuery).map((b) => b.toString());
    const method = m.code === 2 ? 'POST' : m.code === 4 ? 'DELETE' : m.code === 1 ? 'GET' : 'PUT';
    const answer = (code: string, options: CoapOption[] = []): void =>
      this.send(encodeMessage({ type: m.type === CON ? ACK : NON, code: parseCode(code), messageId: m.messageId, token: m.token, options }), from);
    if (path[0] !== 'rd') return answer('4.04');
    const cf = uintOption(m.options, Opt.ContentFormat);
    this.rd.push({ method, path: `/${path.join('/')}`, query, payload: m.payload, ...(cf !== undefined ? { contentFormat: cf } : {}), from });
    if (method === 'POST' && path.length === 1) {
      if (this.registerCode !== '2.01') return answer(this.registerCode);
      return answer('2.01', this.location.map((s) => ({ number: Opt.LocationPath, value: Buffer.from(s) })));
    }
    if (method === 'POST') return answer(this.updateCodes.shift() ?? this.updateCode);
    if (method === 'DELETE') return answer('2.02');
    answer('4.05');
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}
