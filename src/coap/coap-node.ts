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
 * (the session engine).
 */
import { randomFillSync } from 'node:crypto';
import type { Socket } from 'node:dgram';
import type { AddressInfo } from 'node:net';
import { Agent, Server, type CoapRequestParams, type IncomingMessage, type OutgoingMessage } from 'coap';
import { formatPath, validatePath, type Path } from '../lwm2m/path.js';
import { CoapDemux, type DemuxDiagnostic, type DemuxStats, type Exchange } from './demux.js';
import { formatPeer, type CoapEndpoint, type PeerAddress, type PeerInfo } from './endpoint.js';
import {
  codeToString, encodeUint, METHOD_CODES, methodName, Opt, optionValues, parseCode, uintOption,
  type CoapMethod, type CoapOption,
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
}

export type CoapRequestFailure = 'timeout' | 'aborted' | 'reset' | 'closed' | 'send_failed' | 'too_large' | 'protocol';

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

export type CoapNodeDiagnostic = DemuxDiagnostic | { readonly kind: 'handler_error'; readonly peer: PeerInfo; readonly error: unknown };

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
}

// ---- implementation -------------------------------------------------------------------------

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
    if (init.contentFormat !== undefined) res.setOption('Content-Format', encodeUint(init.contentFormat));
    if (init.options !== undefined) {
      for (const [num, values] of groupOptions(init.options)) res.setOption(String(num), values);
    }
    res.end(init.payload === undefined ? undefined : toBuffer(init.payload));
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

export class CoapNode {
  readonly endpoint: CoapEndpoint;
  readonly transmission: TransmissionParams;
  private readonly demux: CoapDemux;
  private readonly server: Server;
  private readonly agent: Agent;
  private readonly handler: RequestHandler;
  private readonly pending = new Set<Pending>();
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
  }

  address(): AddressInfo {
    return this.endpoint.address();
  }

  stats(): CoapNodeStats {
    return { ...this.demux.stats, pending: this.pending.size };
  }

  get closed(): boolean {
    return this.closing !== undefined;
  }

  /** Stops serving, rejects pending requests with reason 'closed', releases the endpoint. */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closing = (async () => {
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

  private start(peer: PeerAddress, o: CoapRequestOptions, resolve: (r: CoapResponse) => void, reject: (e: Error) => void): void {
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
    if (o.options !== undefined) for (const [num, values] of groupOptions(o.options)) options[String(num)] = values;
    const payload = o.payload === undefined ? EMPTY : toBuffer(o.payload);
    if (payload.length > this.blockSize) {
      // node-coap's Agent sends block-wise when a Block1 option is present; its first byte is SZX.
      options['Block1'] = Buffer.of(Math.log2(this.blockSize) - 4);
      options['Size1'] = encodeUint(payload.length);
    }

    let token = this.tokens.next();
    while (this.demux.hasExchange(peer, token.toString('hex'))) token = this.tokens.next();

    let settled = false;
    let agentFinished = false; // node-coap already cleaned the request up (response or its own timeout)
    let req: OutgoingMessage | undefined;
    let timer: NodeJS.Timeout | undefined;
    let ex: Exchange | undefined;
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
      o.signal?.removeEventListener('abort', onAbort);
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
      if (err) {
        reject(err);
        return;
      }
      const r = res!;
      const m = this.demux.messageFor(r.rsinfo);
      const opts = m?.options ?? [];
      resolve({
        code: r.code,
        contentFormat: uintOption(opts, Opt.ContentFormat),
        payload: Buffer.isBuffer(r.payload) ? r.payload : EMPTY,
        options: opts,
        peer: r.rsinfo as PeerInfo,
        transmissions: sent(),
      });
    };

    ex = this.demux.openExchange(peer, token.toString('hex'), o.maxResponseBytes ?? this.maxResponseBytes, (error) =>
      finish(
        new CoapRequestError(
          /exceeds/.test(error.message) ? 'too_large' : 'protocol',
          `${what} failed: ${error.message}`,
          sent(),
          { cause: error },
        ),
      ),
    );
    this.pending.add(pending);
    o.signal?.addEventListener('abort', onAbort, { once: true });
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

  private diag(d: CoapNodeDiagnostic): void {
    if (this.onDiagnostic === undefined) return;
    try {
      this.onDiagnostic(d);
    } catch {
      // logging must not break the node
    }
  }
}
