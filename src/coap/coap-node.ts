/**
 * `CoapNode`: one CoAP endpoint that is server and client at once, on ONE socket, as LwM2M needs
 * (a device sends `POST /bs`, then our Discover/Write/Delete/Finish must come from the address
 * and port it sent to). node-coap's `Server` handles incoming requests and node-coap's `Agent`
 * sends ours; both sit on the `CoapDemux` ports, which sit on a `CoapEndpoint` (plain UDP now,
 * DTLS later: nothing here changes). Read demux.ts's header for what node-coap does on its own
 * and what the demux takes over.
 *
 * Incoming: `handler(req, res, peer)` runs once per request (duplicates are answered by the
 * demux); `res.send(code, …)` within ~`piggybackReplyMs` gives a piggybacked response, later a
 * separate one (node-coap sends the empty ACK). Both are fine for LwM2M clients.
 *
 * Outgoing: `request(peer, {…})` sends a CON (by default) with a random 8-byte token, one
 * Uri-Path option per segment, numeric Content-Format/Accept, retransmits per RFC 7252 (ACK_TIMEOUT
 * 2 s × random 1..1.5, doubling, MAX_RETRANSMIT 4; configurable per node), reassembles Block2
 * responses (node-coap), sends large payloads with Block1, and settles exactly once: response,
 * timeout, abort (AbortSignal), node closed, or failure. Every way out stops retransmissions.
 * It does not queue: LwM2M wants one request in flight per device, and that is the caller's job
 * (the session engine). `token` picks the token (1..8 bytes; refused with reason `token_in_use`
 * while an exchange or observation holds it for that peer); `CoapResponse.token` is the one sent.
 *
 * Observe (RFC 7641, client side): `observe(peer, {path, …}, onNotification)` sends GET (or FETCH)
 * with Observe=0 through the same machinery as `request()` and resolves with the response. When
 * the response is 2.xx and its (first) datagram carries an Observe option, the device accepted
 * the observation: the result also holds an `ObservationHandle`, and from then on the demux routes
 * separate responses with that (peer, token) to it (CON ones ACKed, retransmissions re-ACKed and
 * not delivered again). Each notification is checked against the newest one delivered (the
 * initial response counts as the first) with RFC 7641 §3.4's rule (`isNewerNotification`: the
 * 2^23 window, or more than 128 s later) and dropped when older. A non-2.xx notification or one
 * without an Observe option is delivered (`final: true`) and ends the observation. A
 * notification whose payload is the first of several blocks (Block2 NUM 0, M=1) is completed with
 * a plain request for Block2 NUM 1.. (RFC 7959 §2.6; the device may answer smaller blocks), then
 * delivered; if that fails, or the ETag changed, or a newer notification arrived meanwhile (then
 * it is dropped instead), or the notification ends the observation, the first block is delivered
 * with `truncated: true`. `cancel({active: true})` forgets the token and sends GET Observe=1 with
 * the same token, path and options; `cancel()` just forgets it (the device's next notification,
 * CON or NON, gets RST). `resumeObservation` registers a known token without sending anything
 * (after a restart). `movePeer` follows a device whose address changed (its Update says so).
 * `close()` ends every observation (`node_closed`).
 */
import { randomFillSync } from 'node:crypto';
import type { Socket } from 'node:dgram';
import type { AddressInfo } from 'node:net';
import { Agent, ObserveWriteStream, Server, type CoapRequestParams, type IncomingMessage, type OutgoingMessage } from 'coap';
import { formatPath, validatePath, type Path } from '../lwm2m/path.js';
import { CoapDemux, type DemuxDiagnostic, type DemuxStats, type Exchange, type ExchangeObserve, type ObservationEntry } from './demux.js';
import { formatPeer, type CoapEndpoint, type PeerAddress, type PeerInfo } from './endpoint.js';
import {
  codeToString, decodeBlock, decodeUint, encodeBlock, encodeUint, METHOD_CODES, methodName, Opt, optionValue, optionValues,
  parseCode, uintOption, type CoapMessage, type CoapMethod, type CoapOption,
} from './message.js';
import { UdpEndpoint, type UdpEndpointOptions } from './udp-endpoint.js';

// ---- public types ---------------------------------------------------------------------------

/** RFC 7252 §4.8 transmission parameters (milliseconds where it is a time). */
export interface TransmissionParams {
  readonly ackTimeoutMs: number;
  readonly ackRandomFactor: number;
  readonly maxRetransmit: number;
}

export const DEFAULT_TRANSMISSION: TransmissionParams = { ackTimeoutMs: 2000, ackRandomFactor: 1.5, maxRetransmit: 4 };

/** MAX_TRANSMIT_WAIT: first transmission to giving up on a CON (93 s with the defaults). */
export function maxTransmitWaitMs(t: TransmissionParams): number {
  return t.ackTimeoutMs * (2 ** (t.maxRetransmit + 1) - 1) * t.ackRandomFactor;
}

/** EXCHANGE_LIFETIME: how long a MID must be remembered (247 s with the defaults). */
export function exchangeLifetimeMs(t: TransmissionParams): number {
  const maxTransmitSpan = t.ackTimeoutMs * (2 ** t.maxRetransmit - 1) * t.ackRandomFactor;
  const maxLatency = 100_000;
  return maxTransmitSpan + 2 * maxLatency + t.ackTimeoutMs;
}

/** A request as the handler sees it. Byte fields are raw: identities/names may be binary. */
export interface CoapIncomingRequest {
  /** undefined for a method code this library does not name (answer 4.05). */
  readonly method: CoapMethod | undefined;
  /** `0.02` */
  readonly code: string;
  /** false for NON requests (LwM2M servers answer those 4.00). */
  readonly confirmable: boolean;
  readonly messageId: number;
  readonly token: Buffer;
  /** One entry per Uri-Path option. */
  readonly uriPath: readonly Buffer[];
  /** One entry per Uri-Query option (`ep=dev1`). */
  readonly uriQuery: readonly Buffer[];
  /** `/bs` — Uri-Path decoded as UTF-8, for routing and logs. */
  readonly path: string;
  /** Uri-Query decoded as UTF-8. */
  readonly query: readonly string[];
  readonly contentFormat: number | undefined;
  readonly accept: number | undefined;
  /** All options in wire order, raw values. */
  readonly options: readonly CoapOption[];
  /** The body (Block1 transfers already reassembled). */
  readonly payload: Buffer;
  readonly peer: PeerInfo;
}

export interface CoapResponseInit {
  readonly contentFormat?: number;
  readonly payload?: Uint8Array | string;
  /** Further options (e.g. Location-Path 8, one entry per segment). */
  readonly options?: readonly CoapOption[];
}

export interface CoapResponder {
  /** True once `send` was called. */
  readonly sent: boolean;
  /**
   * Sends the response (`'2.04'`, `204` or the code byte is not accepted: use one of the first
   * two). Call exactly once. Payloads of 1024 bytes and more go out block-wise (node-coap).
   */
  send(code: string | number, init?: CoapResponseInit): void;
}

export type RequestHandler = (req: CoapIncomingRequest, res: CoapResponder, peer: PeerInfo) => void | Promise<void>;

export interface CoapRequestOptions {
  readonly method: CoapMethod;
  /** An LwM2M path (`[0, 1]`) or a path string (`/bs`, `/` or `''` for the root). */
  readonly path: Path | string;
  /** One Uri-Query option per entry. */
  readonly query?: readonly (string | Uint8Array)[];
  readonly contentFormat?: number;
  readonly accept?: number;
  readonly payload?: Uint8Array | string;
  /** Further options, raw. */
  readonly options?: readonly CoapOption[];
  /** Default true. */
  readonly confirmable?: boolean;
  /** Give up after this long (default MAX_TRANSMIT_WAIT of the node's transmission parameters). */
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
  /** Cap on the (reassembled) response body; default the node's `maxResponseBytes`. */
  readonly maxResponseBytes?: number;
  /**
   * The token (1..8 bytes); default 8 random bytes. Refused (reason `token_in_use`) while a
   * request or observation holds it for this peer, or a request to another peer has it in flight.
   */
  readonly token?: Uint8Array;
}

export interface CoapResponse {
  /** `2.05` */
  readonly code: string;
  readonly contentFormat: number | undefined;
  /** Whole body (Block2 reassembled). */
  readonly payload: Buffer;
  /** Options of the (last) response datagram, raw, in wire order. */
  readonly options: readonly CoapOption[];
  /** Who answered (with `identity` over DTLS). */
  readonly peer: PeerInfo;
  /** Datagrams we sent for this request, retransmissions and block follow-ups included. */
  readonly transmissions: number;
  /** The request's token (the observation's token for `observe()`). */
  readonly token: Buffer;
}

export type CoapRequestFailure =
  | 'timeout' | 'aborted' | 'reset' | 'closed' | 'send_failed' | 'too_large' | 'protocol' | 'token_in_use';

/** Why a request produced no response. The message names the request, the peer and the cause. */
export class CoapRequestError extends Error {
  override readonly name = 'CoapRequestError';
  constructor(
    readonly reason: CoapRequestFailure,
    message: string,
    readonly transmissions: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export type CoapNodeDiagnostic =
  | DemuxDiagnostic
  | { readonly kind: 'handler_error'; readonly peer: PeerInfo; readonly error: unknown }
  /** A notification matched an observation but was not delivered (older than the newest, bad Observe value, superseded). */
  | { readonly kind: 'notification_dropped'; readonly peer: PeerInfo; readonly token: Buffer; readonly reason: string };

export interface CoapNodeOptions {
  readonly handler: RequestHandler;
  readonly transmission?: Partial<TransmissionParams>;
  /** How long node-coap waits for the handler before sending an empty ACK (default 500 ms). */
  readonly piggybackReplyMs?: number;
  /** Duplicate-detection window for received requests (default EXCHANGE_LIFETIME, 247 s). */
  readonly dedupLifetimeMs?: number;
  /** Remembered requests/MIDs (default 100 000; oldest forgotten first). */
  readonly maxDedupEntries?: number;
  /** Default cap on a response body we receive (default 1 MiB). */
  readonly maxResponseBytes?: number;
  /** Cap on a Block1 request body we accept (default 64 KiB; beyond: 4.13). */
  readonly maxRequestBodyBytes?: number;
  /** Payloads longer than this go out with Block1 in blocks of this size (16..1024, default 1024). */
  readonly blockSize?: number;
  readonly onDiagnostic?: (d: CoapNodeDiagnostic) => void;
  /** close() also closes the endpoint (default true). */
  readonly closeEndpoint?: boolean;
}

export interface CoapNodeStats extends DemuxStats {
  /** Our requests in flight. */
  pending: number;
  /** Open observations. */
  observations: number;
  /** Notifications delivered to `onNotification` (since the node started). */
  notifications: number;
  /** Notifications matched to an observation but dropped (older than the newest delivered, superseded, malformed Observe). */
  droppedNotifications: number;
}

// ---- Observe (RFC 7641) -----------------------------------------------------------------------

/** The request `observe()` sends (with Observe=0) and `cancel({active: true})` repeats (with Observe=1). */
export interface ObserveRequest {
  /** Default GET; FETCH for Observe-Composite (paths in `payload`). */
  readonly method?: 'GET' | 'FETCH';
  readonly path: Path | string;
  /** One Uri-Query option per entry (LwM2M 1.2 notification attributes). */
  readonly query?: readonly (string | Uint8Array)[];
  readonly accept?: number;
  /** FETCH only: the request body's format and the body. */
  readonly contentFormat?: number;
  readonly payload?: Uint8Array | string;
  /** Further options, raw. Observe and Block2 options here are ignored: the node sets them itself. */
  readonly options?: readonly CoapOption[];
  /** Cap on a (reassembled) response or notification body; default the node's `maxResponseBytes`. */
  readonly maxResponseBytes?: number;
}

export interface ObserveOptions extends ObserveRequest {
  /** The token (1..8 bytes); default 8 random bytes. Same rules as `CoapRequestOptions.token`. */
  readonly token?: Uint8Array;
  /** For the Observe request itself (default MAX_TRANSMIT_WAIT). */
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

/** One notification (not the initial response, which is `Observation.response`). */
export interface CoapNotification {
  /** `2.05`; a non-2.xx code ends the observation (`final`). */
  readonly code: string;
  readonly contentFormat: number | undefined;
  /** The body: Block2 notifications completed with the further blocks unless `truncated`. */
  readonly payload: Buffer;
  /** Options of the notification datagram, raw, in wire order. */
  readonly options: readonly CoapOption[];
  /** The Observe sequence number (0..2^24-1); undefined when the notification had none (then `final`). */
  readonly observe: number | undefined;
  /** Who sent it (with `identity` over DTLS). */
  readonly peer: PeerInfo;
  /** CON (already ACKed) or NON. */
  readonly confirmable: boolean;
  readonly token: Buffer;
  /** True when `payload` is only the first block of a larger body (see the header for when). */
  readonly truncated: boolean;
  /** True when this notification ended the observation (non-2.xx code or no Observe option). */
  readonly final: boolean;
}

/** Called once per delivered notification, in order; errors and rejections become `handler_error` diagnostics. */
export type NotificationListener = (notification: CoapNotification, observation: ObservationHandle) => void | Promise<void>;

/** Why an observation ended. */
export type ObservationEnd =
  /** `cancel()`, active or passive. */
  | 'cancelled'
  /** The device sent a notification with a non-2.xx code. */
  | 'error_response'
  /** The device sent a 2.xx notification without an Observe option. */
  | 'not_observed'
  /** `node.close()`. */
  | 'node_closed';

export interface ObservationCancelOptions {
  /** Send GET with Observe=1 (same token, path and options) and resolve with its response. Default false. */
  readonly active?: boolean;
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

/** An observation the device accepted (or one resumed by token). */
export interface ObservationHandle {
  readonly token: Buffer;
  /** The peer whose notifications are matched (changed by `movePeer`). */
  readonly peer: PeerAddress;
  readonly closed: boolean;
  /** Set once closed. */
  readonly closeReason: ObservationEnd | undefined;
  /** The newest sequence number delivered (the initial response's counts); undefined before any. */
  readonly lastSequence: number | undefined;
  /** Notifications delivered so far. */
  readonly notifications: number;
  /** Resolves (never rejects) with the reason when the observation ends. */
  readonly done: Promise<ObservationEnd>;
  /** Calls `listener` once when the observation ends (on a microtask when it already has). */
  onClose(listener: (reason: ObservationEnd) => void): void;
  /**
   * Ends the observation; later notifications get RST. Passive (default): resolves undefined.
   * Active: sends the cancel request and resolves with its response (any code), or rejects with a
   * `CoapRequestError` like `request()`; the observation is closed either way. Rejects with a
   * TypeError for an active cancel of an observation resumed without its request. On a closed
   * handle: resolves undefined, sends nothing.
   */
  cancel(options?: ObservationCancelOptions): Promise<CoapResponse | undefined>;
  /**
   * Matches notifications from `peer` from now on (the device's Update reported a new address).
   * Throws if the token is in use for that peer, or the observation is closed.
   */
  movePeer(peer: PeerAddress): void;
}

/** What `observe()` resolves with. `observation` only when the device accepted the observation. */
export interface Observation {
  /** The initial response (any code; 2.xx with an Observe option starts the observation). */
  readonly response: CoapResponse;
  /** The sequence number of the initial response, when it had one. */
  readonly sequence?: number;
  readonly observation?: ObservationHandle;
}

export interface ResumeObservationOptions {
  /** The original Observe request: needed for `cancel({active: true})` and to fetch block-wise notification bodies. */
  readonly request?: ObserveRequest;
  /** The newest sequence number delivered before; the ordering rule then applies from now on. Default: accept the first notification. */
  readonly lastSequence?: number;
}

/** RFC 7641 §3.4 freshness window: 128 s. */
export const NOTIFICATION_REORDER_WINDOW_MS = 128_000;

/**
 * RFC 7641 §3.4: is notification 2 (`next`) newer than notification 1 (`prev`)? Sequence numbers
 * are 24-bit; times in ms (any monotonic clock). True when V1 < V2 < V1 + 2^23, or V1 > V2 + 2^23
 * (wrapped), or more than 128 s passed between them.
 */
export function isNewerNotification(
  prev: { readonly sequence: number; readonly receivedAt: number },
  next: { readonly sequence: number; readonly receivedAt: number },
): boolean {
  const v1 = prev.sequence;
  const v2 = next.sequence;
  return (v1 < v2 && v2 - v1 < 2 ** 23) || (v1 > v2 && v1 - v2 > 2 ** 23) || next.receivedAt > prev.receivedAt + NOTIFICATION_REORDER_WINDOW_MS;
}

// ---- implementation -------------------------------------------------------------------------

/** Bytes a request keeps free for its CoAP header (4), token (up to 8) and options when a block must fit a record limit. */
const BLOCK_HEADROOM = 128;
const EMPTY = Buffer.alloc(0);

/** node-coap's RetrySend fields we adjust per request (its timing is otherwise process-global). */
interface RetrySendInternals {
  _currentTime?: unknown;
}

class Responder implements CoapResponder {
  sent = false;

  constructor(
    private readonly res: OutgoingMessage,
    private readonly done: (r: Responder) => void,
    private readonly nodeClosed: () => boolean,
  ) {}

  send(code: string | number, init: CoapResponseInit = {}): void {
    if (this.sent) throw new Error('CoAP response already sent');
    const c = parseCode(code);
    if (c >> 5 < 2 || c >> 5 > 5) throw new RangeError(`${codeToString(c)} is not a response code`);
    if (init.contentFormat !== undefined) checkFormat(init.contentFormat);
    this.sent = true;
    this.done(this);
    // After close() nothing goes out: node-coap would arm a 202 s timer that keeps the process up.
    if (this.nodeClosed()) return;
    const res = this.res;
    res.code = codeToString(c);
    // node-coap answers a request carrying Observe=0 through its ObserveWriteStream, which takes
    // the code from `statusCode` and puts an Observe option on every answer with a payload. An
    // error answer must not carry Observe (RFC 7641 §4.2): send it without its diagnostic payload.
    const observeStream = (res as unknown) instanceof ObserveWriteStream;
    if (observeStream) (res as unknown as ObserveWriteStream).statusCode = res.code;
    const payload = init.payload === undefined || (observeStream && c >> 5 !== 2) ? undefined : toBuffer(init.payload);
    if (init.contentFormat !== undefined && (payload !== undefined || !observeStream)) res.setOption('Content-Format', encodeUint(init.contentFormat));
    if (init.options !== undefined) {
      for (const [num, values] of groupOptions(init.options)) res.setOption(String(num), values);
    }
    res.end(payload);
  }

  /** Node closing: stop node-coap's pending empty-ACK timer for an unanswered request. */
  cancel(): void {
    const t = this.res._ackTimer;
    if (t) clearTimeout(t);
    this.res._ackTimer = null;
  }
}

function groupOptions(options: readonly CoapOption[]): Map<number, Buffer[]> {
  const m = new Map<number, Buffer[]>();
  for (const o of options) {
    const list = m.get(o.number);
    if (list) list.push(o.value);
    else m.set(o.number, [o.value]);
  }
  return m;
}

function checkFormat(cf: number): void {
  if (!Number.isInteger(cf) || cf < 0 || cf > 0xffff) throw new RangeError(`content format ${cf} is not in 0..65535`);
}

function toBuffer(v: Uint8Array | string): Buffer {
  return typeof v === 'string' ? Buffer.from(v, 'utf8') : Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.length);
}

/** Uri-Path option values, one per segment; the root path has none. */
function pathSegments(path: Path | string): { segments: Buffer[]; text: string } {
  if (typeof path === 'string') {
    const parts = path.split('/').filter((s) => s !== '');
    const segments = parts.map((s) => Buffer.from(s, 'utf8'));
    for (const s of segments) if (s.length > 255) throw new RangeError('a Uri-Path segment is longer than 255 bytes');
    return { segments, text: '/' + parts.join('/') };
  }
  validatePath(path);
  return { segments: path.map((id) => Buffer.from(String(id), 'ascii')), text: formatPath(path) };
}

/** Random tokens from a pool: one syscall per 512 tokens instead of one per request. */
class TokenSource {
  private pool = Buffer.alloc(4096);
  private offset = this.pool.length;

  next(): Buffer {
    if (this.offset + 8 > this.pool.length) {
      randomFillSync(this.pool);
      this.offset = 0;
    }
    const t = Buffer.from(this.pool.subarray(this.offset, this.offset + 8));
    this.offset += 8;
    return t;
  }
}

interface Pending {
  /** The node is closing: reject with reason 'closed'. */
  close(): void;
}

interface StartHooks {
  readonly observe?: ExchangeObserve;
  /**
   * Runs synchronously when a response settles the request, after its exchange was closed and
   * before the promise resolves (so no datagram can slip in between). Throwing rejects instead.
   */
  readonly onResponse?: (response: CoapResponse, ex: Exchange) => void;
}

/** node-coap's names for options it manipulates itself (a numeric key would end up duplicated). */
const NODE_COAP_OPTION_NAMES: ReadonlyMap<number, string> = new Map([
  [Opt.Observe, 'Observe'],
  [Opt.Block2, 'Block2'],
]);

function optionKey(num: number): string {
  return NODE_COAP_OPTION_NAMES.get(num) ?? String(num);
}

/** An Observe request as kept for the cancel and for Block2 follow-ups (Observe option removed). */
interface ObserveTemplate {
  readonly method: 'GET' | 'FETCH';
  readonly path: Path | string;
  readonly query: readonly (string | Uint8Array)[] | undefined;
  readonly accept: number | undefined;
  readonly contentFormat: number | undefined;
  readonly payload: Buffer | undefined;
  readonly options: readonly CoapOption[];
  readonly maxResponseBytes: number | undefined;
}

function observeTemplate(o: ObserveRequest): ObserveTemplate {
  const method = o.method ?? 'GET';
  if (method !== 'GET' && method !== 'FETCH') throw new TypeError(`an Observe request is GET or FETCH, not ${String(method)}`);
  if (method === 'GET' && (o.payload !== undefined || o.contentFormat !== undefined)) {
    throw new TypeError('an Observe GET has no payload or Content-Format');
  }
  pathSegments(o.path); // validates now rather than at cancel time
  return {
    method,
    path: o.path,
    query: o.query === undefined ? undefined : [...o.query],
    accept: o.accept,
    contentFormat: o.contentFormat,
    payload: o.payload === undefined ? undefined : Buffer.from(toBuffer(o.payload)),
    options: (o.options ?? []).filter((x) => x.number !== Opt.Observe && x.number !== Opt.Block2),
    maxResponseBytes: o.maxResponseBytes,
  };
}

/** The request for a template: with Observe=`observe`, or (undefined) without Observe, plus extra options. */
function requestFromTemplate(t: ObserveTemplate, observe: 0 | 1 | undefined, extra: readonly CoapOption[] = []): CoapRequestOptions {
  const options = [...t.options, ...extra];
  if (observe !== undefined) options.push({ number: Opt.Observe, value: encodeUint(observe) });
  return {
    method: t.method,
    path: t.path,
    options,
    ...(t.query !== undefined ? { query: t.query } : {}),
    ...(t.accept !== undefined ? { accept: t.accept } : {}),
    ...(t.contentFormat !== undefined ? { contentFormat: t.contentFormat } : {}),
    ...(t.payload !== undefined ? { payload: t.payload } : {}),
    ...(t.maxResponseBytes !== undefined ? { maxResponseBytes: t.maxResponseBytes } : {}),
  };
}

/** What an observation needs from its node. */
interface ObservationHost {
  readonly demux: CoapDemux;
  opened(o: ObservationImpl): void;
  closed(o: ObservationImpl): void;
  delivered(): void;
  dropped(peer: PeerInfo, token: Buffer, reason: string): void;
  diag(d: CoapNodeDiagnostic): void;
  request(peer: PeerAddress, o: CoapRequestOptions, hooks?: StartHooks): Promise<CoapResponse>;
}

class ObservationImpl implements ObservationHandle {
  readonly token: Buffer;
  private currentPeer: PeerAddress;
  private entry: ObservationEntry | undefined;
  private reason: ObservationEnd | undefined;
  private last: { sequence: number; receivedAt: number } | undefined;
  /** Bumped for every accepted notification: a Block2 completion for an older one is superseded. */
  private generation = 0;
  private delivered = 0;
  private readonly listeners: ((reason: ObservationEnd) => void)[] = [];
  private readonly fetches = new Set<AbortController>();
  private resolveDone!: (reason: ObservationEnd) => void;
  readonly done: Promise<ObservationEnd>;

  constructor(
    private readonly host: ObservationHost,
    peer: PeerAddress,
    token: Buffer,
    private readonly template: ObserveTemplate | undefined,
    private readonly listener: NotificationListener,
    initialSequence: number | undefined,
  ) {
    this.token = Buffer.from(token);
    this.currentPeer = { address: peer.address, port: peer.port };
    if (initialSequence !== undefined) this.last = { sequence: initialSequence, receivedAt: performance.now() };
    this.done = new Promise<ObservationEnd>((resolve) => {
      this.resolveDone = resolve;
    });
  }

  get peer(): PeerAddress {
    return this.currentPeer;
  }

  get closed(): boolean {
    return this.reason !== undefined;
  }

  get closeReason(): ObservationEnd | undefined {
    return this.reason;
  }

  get lastSequence(): number | undefined {
    return this.last?.sequence;
  }

  get notifications(): number {
    return this.delivered;
  }

  /** Registers the token with the demux (throws if it is in use). */
  open(): void {
    this.entry = this.host.demux.openObservation(this.currentPeer, this.token.toString('hex'), { notify: (m, peer) => this.receive(m, peer) });
    this.host.opened(this);
  }

  onClose(listener: (reason: ObservationEnd) => void): void {
    const reason = this.reason;
    if (reason !== undefined) {
      queueMicrotask(() => this.callCloseListener(listener, reason));
      return;
    }
    this.listeners.push(listener);
  }

  movePeer(peer: PeerAddress): void {
    if (this.closed || this.entry === undefined) throw new Error('the observation is closed');
    this.host.demux.moveObservation(this.entry, peer);
    this.currentPeer = { address: peer.address, port: peer.port };
  }

  async cancel(o: ObservationCancelOptions = {}): Promise<CoapResponse | undefined> {
    if (this.closed) return undefined;
    if (o.active === true && this.template === undefined) {
      throw new TypeError('an active cancel needs the Observe request (resumeObservation without `request`)');
    }
    this.close('cancelled');
    if (o.active !== true) return undefined;
    return this.host.request(
      this.currentPeer,
      {
        ...requestFromTemplate(this.template!, 1),
        token: this.token,
        ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}),
        ...(o.signal !== undefined ? { signal: o.signal } : {}),
      },
      { observe: 'cancel' },
    );
  }

  close(reason: ObservationEnd): void {
    if (this.reason !== undefined) return;
    this.reason = reason;
    if (this.entry !== undefined) this.host.demux.closeObservation(this.entry);
    for (const f of this.fetches) f.abort();
    this.fetches.clear();
    this.host.closed(this);
    this.resolveDone(reason);
    for (const l of this.listeners.splice(0)) this.callCloseListener(l, reason);
  }

  private callCloseListener(listener: (reason: ObservationEnd) => void, reason: ObservationEnd): void {
    try {
      listener(reason);
    } catch (error) {
      const { address, port } = this.currentPeer;
      this.host.diag({ kind: 'handler_error', peer: { address, port, family: address.includes(':') ? 'IPv6' : 'IPv4', size: 0 }, error });
    }
  }

  /** A separate response with our token from our peer (the demux ACKed it if CON). */
  receive(m: CoapMessage, peer: PeerInfo): void {
    if (this.closed) return;
    const raw = optionValue(m.options, Opt.Observe);
    if (raw !== undefined && raw.length > 3) {
      this.host.dropped(peer, this.token, `Observe option of ${raw.length} bytes (at most 3)`);
      return;
    }
    const sequence = raw === undefined ? undefined : decodeUint(raw)!;
    const success = m.code >> 5 === 2;
    const final = !success || sequence === undefined;
    if (!final) {
      const now = performance.now();
      const next = { sequence, receivedAt: now };
      if (this.last !== undefined && !isNewerNotification(this.last, next)) {
        this.host.dropped(peer, this.token, `notification ${sequence} is not newer than ${this.last.sequence}`);
        return;
      }
      this.last = next;
      this.generation++;
    }
    const block2Raw = optionValue(m.options, Opt.Block2);
    const block2 = block2Raw === undefined ? undefined : decodeBlock(block2Raw);
    const partial = block2 !== undefined && block2.more;
    const n: CoapNotification = {
      code: codeToString(m.code),
      contentFormat: uintOption(m.options, Opt.ContentFormat),
      payload: Buffer.from(m.payload),
      options: m.options.map((x) => ({ number: x.number, value: Buffer.from(x.value) })),
      observe: sequence,
      peer,
      confirmable: m.type === 0,
      token: this.token,
      truncated: partial,
      final,
    };
    if (partial && !final && block2.num === 0 && block2.szx < 7 && this.template !== undefined) {
      this.completeBlocks(n, block2.szx, this.generation);
      return;
    }
    this.deliver(n);
    if (final) this.close(success ? 'not_observed' : 'error_response');
  }

  /** Fetches Block2 NUM 1.. of a block-wise notification, then delivers it whole (or truncated). */
  private completeBlocks(n: CoapNotification, szx: number, generation: number): void {
    const ac = new AbortController();
    this.fetches.add(ac);
    const t = this.template!;
    const etag = optionValue(n.options, Opt.ETag);
    const done = (r: CoapResponse | undefined): void => {
      this.fetches.delete(ac);
      if (this.closed) return;
      if (generation !== this.generation) {
        this.host.dropped(n.peer, this.token, `notification ${n.observe} superseded while its blocks were fetched`);
        return;
      }
      let whole: Buffer | undefined;
      if (r !== undefined && r.code.startsWith('2.')) {
        const etag2 = optionValue(r.options, Opt.ETag);
        const sameRepresentation = etag === undefined || etag2 === undefined || etag.equals(etag2);
        if (sameRepresentation) {
          // A device that ignored Block2 sent the whole body; otherwise the blocks from NUM 1 on.
          whole = optionValue(r.options, Opt.Block2) === undefined ? r.payload : Buffer.concat([n.payload, r.payload]);
        }
      }
      this.deliver(whole === undefined ? n : { ...n, payload: whole, truncated: false });
    };
    this.host
      .request(this.currentPeer, {
        ...requestFromTemplate(t, undefined, [{ number: Opt.Block2, value: encodeBlock(1, false, szx) }]),
        signal: ac.signal,
      })
      .then(done, () => done(undefined));
  }

  private deliver(n: CoapNotification): void {
    this.delivered++;
    this.host.delivered();
    const failed = (error: unknown): void => this.host.diag({ kind: 'handler_error', peer: n.peer, error });
    try {
      const r = this.listener(n, this);
      if (r !== undefined && typeof r.then === 'function') r.then(undefined, failed);
    } catch (error) {
      failed(error);
    }
  }
}

/** The callbacks of the requests in flight per AbortSignal (watchAbort). */
const abortWatchers = new WeakMap<AbortSignal, Set<() => void>>();

/**
 * Calls `f` once when `signal` aborts, until the returned function is called. A bootstrap
 * session passes its one signal to each of its requests: an EventTarget listener added and
 * removed per request costs several µs, so the signal gets one listener, and each request an
 * entry in a Set.
 */
function watchAbort(signal: AbortSignal, f: () => void): () => void {
  let set = abortWatchers.get(signal);
  if (set === undefined) {
    const watchers = new Set<() => void>();
    set = watchers;
    abortWatchers.set(signal, watchers);
    signal.addEventListener(
      'abort',
      () => {
        abortWatchers.delete(signal);
        for (const g of [...watchers]) g();
        watchers.clear();
      },
      { once: true },
    );
  }
  const watchers = set;
  watchers.add(f);
  return () => {
    watchers.delete(f);
  };
}

export class CoapNode {
  readonly endpoint: CoapEndpoint;
  readonly transmission: TransmissionParams;
  private readonly demux: CoapDemux;
  private readonly server: Server;
  private readonly agent: Agent;
  private readonly handler: RequestHandler;
  private readonly pending = new Set<Pending>();
  private readonly observations = new Set<ObservationImpl>();
  private notificationCount = 0;
  private droppedNotificationCount = 0;
  private readonly observationHost: ObservationHost;
  private readonly openResponses = new Set<Responder>();
  private readonly tokens = new TokenSource();
  private readonly maxResponseBytes: number;
  private readonly blockSize: number;
  private readonly closeEndpoint: boolean;
  private readonly onDiagnostic: ((d: CoapNodeDiagnostic) => void) | undefined;
  private closing: Promise<void> | undefined;

  /** Binds a UDP endpoint and starts a node on it. */
  static async listen(opts: CoapNodeOptions & UdpEndpointOptions): Promise<CoapNode> {
    const endpoint = await UdpEndpoint.create(opts);
    return new CoapNode(endpoint, opts);
  }

  constructor(endpoint: CoapEndpoint, opts: CoapNodeOptions) {
    this.endpoint = endpoint;
    this.handler = opts.handler;
    const t: TransmissionParams = { ...DEFAULT_TRANSMISSION, ...opts.transmission };
    if (!(t.ackTimeoutMs > 0) || !(t.ackRandomFactor >= 1) || !Number.isInteger(t.maxRetransmit) || t.maxRetransmit < 0) {
      throw new RangeError('transmission: ackTimeoutMs > 0, ackRandomFactor ≥ 1, maxRetransmit a non-negative integer');
    }
    this.transmission = t;
    this.maxResponseBytes = opts.maxResponseBytes ?? 1 << 20;
    const blockSize = opts.blockSize ?? 1024;
    if (![16, 32, 64, 128, 256, 512, 1024].includes(blockSize)) throw new RangeError(`blockSize ${blockSize} is not a power of two in 16..1024`);
    this.blockSize = blockSize;
    this.closeEndpoint = opts.closeEndpoint ?? true;
    this.onDiagnostic = opts.onDiagnostic;

    this.demux = new CoapDemux(endpoint, {
      exchangeLifetimeMs: opts.dedupLifetimeMs ?? exchangeLifetimeMs(t),
      maxTransmitWaitMs: maxTransmitWaitMs(t),
      maxDedupEntries: opts.maxDedupEntries ?? 100_000,
      maxRequestBodyBytes: opts.maxRequestBodyBytes ?? 64 * 1024,
      agentMessageIdInUse: (mid) => this.agent._msgIdToReq.has(mid),
      onDiagnostic: (d) => this.diag(d),
    });

    // node-coap types its socket option as dgram.Socket; it only uses type/on/send/address.
    this.agent = new Agent({ type: endpoint.type, socket: this.demux.agentPort as unknown as Socket });
    this.agent.on('error', () => { /* socket errors are reported by the endpoint */ });

    this.server = new Server({
      type: endpoint.type,
      piggybackReplyMs: opts.piggybackReplyMs ?? 500,
      // Despite the name: false would make node-coap drop its responses to NON requests.
      sendAcksForNonConfirmablePackets: true,
    });
    this.server.on('request', (req: IncomingMessage, res: OutgoingMessage) => this.dispatch(req, res));
    this.server.on('error', () => { /* see agent */ });
    this.server.listen(this.demux.serverPort);

    this.observationHost = {
      demux: this.demux,
      opened: (o) => this.observations.add(o),
      closed: (o) => this.observations.delete(o),
      delivered: () => this.notificationCount++,
      dropped: (peer, token, reason) => {
        this.droppedNotificationCount++;
        this.diag({ kind: 'notification_dropped', peer, token, reason });
      },
      diag: (d) => this.diag(d),
      request: (peer, o, hooks) =>
        new Promise<CoapResponse>((resolve, reject) => {
          try {
            this.start(peer, o, resolve, reject, hooks);
          } catch (err) {
            reject(err instanceof Error ? err : new Error(String(err)));
          }
        }),
    };
  }

  address(): AddressInfo {
    return this.endpoint.address();
  }

  stats(): CoapNodeStats {
    return {
      ...this.demux.stats,
      pending: this.pending.size,
      observations: this.observations.size,
      notifications: this.notificationCount,
      droppedNotifications: this.droppedNotificationCount,
    };
  }

  get closed(): boolean {
    return this.closing !== undefined;
  }

  /** Stops serving, rejects pending requests with reason 'closed', ends observations (`node_closed`), releases the endpoint. */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closing = (async () => {
      for (const o of [...this.observations]) o.close('node_closed');
      for (const p of [...this.pending]) p.close();
      for (const r of this.openResponses) r.cancel();
      this.openResponses.clear();
      this.server.close();
      this.demux.close();
      if (this.closeEndpoint) await this.endpoint.close();
    })();
    return this.closing;
  }

  // ---- incoming -----------------------------------------------------------------------------

  private dispatch(req: IncomingMessage, res: OutgoingMessage): void {
    const peer = req.rsinfo as PeerInfo;
    res.on('error', (error: unknown) => this.diag({ kind: 'handler_error', peer, error }));
    const m = this.demux.messageFor(req.rsinfo);
    if (m === undefined) {
      // Cannot happen (every datagram node-coap sees comes from the demux); answer rather than hang.
      res.code = '5.00';
      res.end();
      return;
    }
    const uriPath = optionValues(m.options, Opt.UriPath);
    const uriQuery = optionValues(m.options, Opt.UriQuery);
    const request: CoapIncomingRequest = {
      method: methodName(m.code),
      code: codeToString(m.code),
      confirmable: m.type === 0,
      messageId: m.messageId,
      token: m.token,
      uriPath,
      uriQuery,
      path: '/' + uriPath.map((s) => s.toString('utf8')).join('/'),
      query: uriQuery.map((s) => s.toString('utf8')),
      contentFormat: uintOption(m.options, Opt.ContentFormat),
      accept: uintOption(m.options, Opt.Accept),
      options: m.options,
      payload: Buffer.isBuffer(req.payload) ? req.payload : m.payload,
      peer,
    };
    const responder = new Responder(res, (r) => this.openResponses.delete(r), () => this.closed);
    this.openResponses.add(responder);
    const failed = (error: unknown): void => {
      this.diag({ kind: 'handler_error', peer, error });
      if (!responder.sent) {
        try {
          responder.send('5.00');
        } catch {
          // node-coap could not send; nothing more to do for this request.
        }
      }
    };
    try {
      const r = this.handler(request, responder, peer);
      if (r !== undefined && typeof r.then === 'function') r.then(undefined, failed);
    } catch (err) {
      failed(err);
    }
  }

  // ---- outgoing -----------------------------------------------------------------------------

  /**
   * Sends a request to `peer` from this node's socket and resolves with the response, whatever
   * its code (4.xx and 5.xx included). Rejects with a `CoapRequestError` when there is none.
   */
  request(peer: PeerAddress, o: CoapRequestOptions): Promise<CoapResponse> {
    return new Promise<CoapResponse>((resolve, reject) => {
      try {
        this.start(peer, o, resolve, reject);
      } catch (err) {
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
  }

  private start(
    peer: PeerAddress,
    o: CoapRequestOptions,
    resolve: (r: CoapResponse) => void,
    reject: (e: Error) => void,
    hooks?: StartHooks,
  ): void {
    if (!Object.hasOwn(METHOD_CODES, o.method)) throw new TypeError(`unknown CoAP method ${String(o.method)}`);
    const { segments, text } = pathSegments(o.path);
    const what = `CoAP ${o.method} ${text} to ${formatPeer(peer)}`;
    if (this.closed) throw new CoapRequestError('closed', `${what}: node is closed`, 0);
    if (o.signal?.aborted) throw new CoapRequestError('aborted', `${what} aborted before sending`, 0, { cause: o.signal.reason });
    const timeoutMs = o.timeoutMs ?? maxTransmitWaitMs(this.transmission);
    if (!(timeoutMs > 0)) throw new RangeError(`timeoutMs must be positive, got ${timeoutMs}`);

    const options: Record<string, Buffer | Buffer[]> = {};
    if (segments.length > 0) options['Uri-Path'] = segments;
    if (o.query !== undefined && o.query.length > 0) {
      const q = o.query.map(toBuffer);
      for (const v of q) if (v.length > 255) throw new RangeError('a Uri-Query option is longer than 255 bytes');
      options['Uri-Query'] = q;
    }
    if (o.contentFormat !== undefined) {
      checkFormat(o.contentFormat);
      options['Content-Format'] = encodeUint(o.contentFormat);
    }
    if (o.accept !== undefined) {
      checkFormat(o.accept);
      options['Accept'] = encodeUint(o.accept);
    }
    if (o.options !== undefined) for (const [num, values] of groupOptions(o.options)) options[optionKey(num)] = values;
    const payload = o.payload === undefined ? EMPTY : toBuffer(o.payload);
    const blockSize = this.blockSizeFor(peer);
    if (payload.length > blockSize) {
      // node-coap's Agent sends block-wise when a Block1 option is present; its first byte is SZX.
      options['Block1'] = Buffer.of(Math.log2(blockSize) - 4);
      options['Size1'] = encodeUint(payload.length);
    }

    const token = this.pickToken(peer, o.token, what);

    let settled = false;
    let agentFinished = false; // node-coap already cleaned the request up (response or its own timeout)
    let req: OutgoingMessage | undefined;
    let timer: NodeJS.Timeout | undefined;
    let ex: Exchange | undefined;
    let unwatch: (() => void) | undefined;
    const onAbort = (): void =>
      finish(new CoapRequestError('aborted', `${what} aborted after ${sent()} transmission(s)`, sent(), { cause: o.signal?.reason }));
    const sent = (): number => ex?.transmissions ?? 0;
    const pending: Pending = {
      close: () => finish(new CoapRequestError('closed', `${what}: node closed after ${sent()} transmission(s)`, sent())),
    };

    const finish = (err: CoapRequestError | undefined, res?: IncomingMessage): void => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      unwatch?.();
      this.pending.delete(pending);
      if (req !== undefined && !agentFinished) {
        // Stops retransmissions and forgets the token/MID. Only once, and never after a
        // response: node-coap counts requests and a second clean-up corrupts that count.
        agentFinished = true;
        try {
          this.agent.abort(req);
        } catch {
          // nothing left to stop
        }
      }
      if (ex) this.demux.closeExchange(ex);
      // node-coap drops every listener of the request's sender when it cleans a request up; a send
      // error reported after that (a DTLS endpoint failing a queued datagram once its handshake
      // failed) would be an unhandled 'error' event and end the process. Keep a no-op listener.
      const sender = req?.sender as unknown as { listenerCount?(e: string): number; on?(e: string, f: () => void): unknown } | undefined;
      if (sender?.listenerCount?.('error') === 0) sender.on?.('error', () => undefined);
      if (err) {
        reject(err);
        return;
      }
      const r = res!;
      const m = this.demux.messageFor(r.rsinfo);
      const opts = m?.options ?? [];
      const response: CoapResponse = {
        code: r.code,
        contentFormat: uintOption(opts, Opt.ContentFormat),
        payload: Buffer.isBuffer(r.payload) ? r.payload : EMPTY,
        options: opts,
        peer: r.rsinfo as PeerInfo,
        transmissions: sent(),
        token,
      };
      if (hooks?.onResponse !== undefined) {
        try {
          hooks.onResponse(response, ex!);
        } catch (error) {
          reject(error instanceof Error ? error : new Error(String(error)));
          return;
        }
      }
      resolve(response);
    };

    ex = this.demux.openExchange(
      peer,
      token.toString('hex'),
      o.maxResponseBytes ?? this.maxResponseBytes,
      (error) =>
        finish(
          new CoapRequestError(
            /exceeds/.test(error.message) ? 'too_large' : 'protocol',
            `${what} failed: ${error.message}`,
            sent(),
            { cause: error },
          ),
        ),
      hooks?.observe,
    );
    this.pending.add(pending);
    if (o.signal) unwatch = watchAbort(o.signal, onAbort);
    timer = setTimeout(
      () => finish(new CoapRequestError('timeout', `${what} timed out after ${timeoutMs} ms (${sent()} transmission(s), no response)`, sent())),
      Math.min(timeoutMs, 2 ** 31 - 1),
    );

    const params: CoapRequestParams = {
      hostname: peer.address,
      port: peer.port,
      method: o.method,
      confirmable: o.confirmable ?? true,
      token,
      retrySend: this.transmission.maxRetransmit,
      options,
    };
    try {
      req = this.agent.request(params);
    } catch (error) {
      finish(new CoapRequestError('protocol', `${what} could not be built: ${String(error)}`, 0, { cause: error }));
      return;
    }
    // node-coap computes the first retransmission timeout from its global parameters; use ours.
    const sender = req.sender as unknown as RetrySendInternals;
    if (typeof sender._currentTime === 'number') {
      const t = this.transmission;
      sender._currentTime = t.ackTimeoutMs * (1 + (t.ackRandomFactor - 1) * Math.random());
    }
    req.on('response', (res: IncomingMessage) => {
      agentFinished = true;
      if (res.code === '0.00') {
        finish(new CoapRequestError('reset', `${what} was rejected with RST`, sent()));
      } else {
        finish(undefined, res);
      }
    });
    req.on('timeout', () => {
      agentFinished = true; // the Agent aborts it itself
      finish(new CoapRequestError('timeout', `${what}: no response within node-coap's EXCHANGE_LIFETIME`, sent()));
    });
    req.on('error', (error: unknown) => {
      const isRetryTimeout = error instanceof Error && 'retransmitTimeout' in error;
      finish(
        isRetryTimeout
          ? new CoapRequestError('timeout', `${what} timed out (${sent()} transmission(s), no response)`, sent(), { cause: error })
          : new CoapRequestError('send_failed', `${what} could not be sent: ${error instanceof Error ? error.message : String(error)}`, sent(), { cause: error }),
      );
    });
    if (settled) return;
    req.end(payload.length > 0 ? payload : undefined);
  }

  /** The caller's token (checked) or a fresh random one no exchange/observation/Agent request holds. */
  /**
   * Block1 size for a request to `peer`: the node's, or smaller when the endpoint says the peer
   * takes smaller datagrams (DTLS max_fragment_length / record_size_limit): the largest power of
   * two that leaves BLOCK_HEADROOM bytes for the CoAP header, token and options. 512 → 256.
   */
  private blockSizeFor(peer: PeerAddress): number {
    const limit = this.endpoint.recordLimit?.(peer.address, peer.port);
    if (limit === undefined) return this.blockSize;
    let size = this.blockSize;
    while (size > 16 && size + BLOCK_HEADROOM > limit) size /= 2;
    return size;
  }

  private pickToken(peer: PeerAddress, wanted: Uint8Array | undefined, what: string): Buffer {
    if (wanted === undefined) {
      let token = this.tokens.next();
      while (this.tokenBusy(peer, token.toString('hex'))) token = this.tokens.next();
      return token;
    }
    const token = Buffer.from(wanted);
    if (token.length < 1 || token.length > 8) throw new RangeError(`a token is 1..8 bytes, got ${token.length}`);
    const hex = token.toString('hex');
    if (this.tokenBusy(peer, hex)) {
      throw new CoapRequestError('token_in_use', `${what}: token ${hex} is in use (a request or observation holds it)`, 0);
    }
    return token;
  }

  /**
   * In use for this peer, or by any request node-coap's Agent has in flight: the Agent files
   * requests by token alone, so two in flight with one token (to different peers) would collide.
   */
  private tokenBusy(peer: PeerAddress, hex: string): boolean {
    return this.demux.tokenInUse(peer, hex) || this.agent._tkToReq.has(hex);
  }

  // ---- Observe ------------------------------------------------------------------------------

  /**
   * Sends `o` (GET by default) with Observe=0 and resolves with the response, plus an
   * `ObservationHandle` when the device accepted the observation (2.xx with an Observe option).
   * Rejects like `request()` when there is no response. `onNotification` gets every later
   * notification (not the initial response), possibly before this promise settles.
   */
  observe(peer: PeerAddress, o: ObserveOptions, onNotification: NotificationListener): Promise<Observation> {
    return new Promise<Observation>((resolve, reject) => {
      try {
        const template = observeTemplate(o);
        let result: { observation: ObservationImpl; sequence: number } | undefined;
        const req: CoapRequestOptions = {
          ...requestFromTemplate(template, 0),
          ...(o.token !== undefined ? { token: o.token } : {}),
          ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}),
          ...(o.signal !== undefined ? { signal: o.signal } : {}),
        };
        this.start(
          peer,
          req,
          (response) =>
            resolve(result === undefined ? { response } : { response, sequence: result.sequence, observation: result.observation }),
          reject,
          {
            observe: 'register',
            onResponse: (response, ex) => {
              result = this.establish(peer, response, ex, template, onNotification);
            },
          },
        );
      } catch (err) {
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
  }

  /**
   * Registers `token` as an observation of `peer` without sending anything: after a restart the
   * device keeps notifying on the token the registry remembers, and those notifications must not
   * be refused with RST. Throws `CoapRequestError` (`token_in_use`, `closed`) or RangeError.
   */
  resumeObservation(
    peer: PeerAddress,
    token: Uint8Array,
    onNotification: NotificationListener,
    opts: ResumeObservationOptions = {},
  ): ObservationHandle {
    const t = Buffer.from(token);
    if (t.length < 1 || t.length > 8) throw new RangeError(`a token is 1..8 bytes, got ${t.length}`);
    const hex = t.toString('hex');
    const what = `observation ${hex} of ${formatPeer(peer)}`;
    if (this.closed) throw new CoapRequestError('closed', `${what}: node is closed`, 0);
    if (this.demux.tokenInUse(peer, hex)) throw new CoapRequestError('token_in_use', `${what}: token is in use for this peer`, 0);
    const seq = opts.lastSequence;
    if (seq !== undefined && !(Number.isInteger(seq) && seq >= 0 && seq < 2 ** 24)) throw new RangeError(`lastSequence ${seq} is not a 24-bit uint`);
    const template = opts.request === undefined ? undefined : observeTemplate(opts.request);
    const h = new ObservationImpl(this.observationHost, peer, t, template, onNotification, seq);
    h.open();
    return h;
  }

  /** The initial response settled the Observe request: start the observation if the device accepted it. */
  private establish(
    peer: PeerAddress,
    response: CoapResponse,
    ex: Exchange,
    template: ObserveTemplate,
    onNotification: NotificationListener,
  ): { observation: ObservationImpl; sequence: number } | undefined {
    const first = ex.firstResponse;
    if (first === undefined || first.code >> 5 !== 2 || !response.code.startsWith('2.')) return undefined;
    const raw = optionValue(first.options, Opt.Observe);
    if (raw === undefined || raw.length > 3) return undefined;
    const sequence = decodeUint(raw)!;
    const h = new ObservationImpl(this.observationHost, peer, response.token, template, onNotification, sequence);
    h.open();
    for (const held of ex.held) {
      if (h.closed) break;
      h.receive(held.message, held.peer);
    }
    return { observation: h, sequence };
  }

  private diag(d: CoapNodeDiagnostic): void {
    if (this.onDiagnostic === undefined) return;
    try {
      this.onDiagnostic(d);
    } catch {
      // logging must not break the node
    }
  }
}
