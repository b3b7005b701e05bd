/**
 * One socket, two node-coap roles: the message-layer demultiplexer between a `CoapEndpoint` and
 * node-coap's `Server` (requests from devices) and `Agent` (our requests to devices).
 *
 * What node-coap 1.5 does (read from node_modules/coap/dist/lib), and why this shim exists:
 * - `new Agent({ socket })` and `server.listen(emitter)` both accept an outside socket, but each
 *   then listens to *every* datagram on it. The Agent ignores requests and the Server ignores
 *   responses, yet both act on empty messages: a CoAP ping (CON 0.00) reaches both (the Agent
 *   answers RST, the Server emits a bogus 'request'), and empty ACK/RSTs reach both.
 * - The Agent matches ACKs and responses by message ID alone (`_msgIdToReq`, no peer check):
 *   any host can stop our retransmissions with a forged empty ACK, and a device's separate
 *   response (its own MID) that happens to equal one of our outstanding MIDs to another peer is
 *   matched to the wrong request and dropped on the token check, for every retransmission.
 *   Duplicate CON separate responses (our ACK lost) are answered with RST instead of an ACK.
 * - The Server's duplicate detection resends cached replies only `if (sock instanceof
 *   dgram.Socket)`; with any other socket-like object a retransmitted request falls through and
 *   runs the handler again. Even over a real dgram socket it misses duplicates that arrive while
 *   the handler is still working, and duplicates after a separate response (different cache key).
 *   `_sendError` (used when the handler throws) sends to `rsinfo.port` without the address
 *   (i.e. to localhost), and again only for real dgram sockets.
 * - Parse failures: coap-packet accepts option values that overrun the datagram (it truncates),
 *   reserved token lengths 9..12 and bad empty messages; the Agent's Block1 handling throws on a
 *   0- or 4-byte Block1 value from inside the socket's 'message' listener (an uncaught
 *   exception), the Server's Block1 reassembly allocates whatever total size a client claims.
 * - `coap.parameters` (ACK_TIMEOUT etc.) are process-global; per-request only `retrySend`
 *   (MAX_RETRANSMIT) can be set, and after the last retransmission the Agent waits
 *   EXCHANGE_LIFETIME (247 s) before giving up. coap-node.ts sets the per-request timeout itself.
 *
 * So this layer owns the message layer's routing and duplicate handling:
 * - every datagram is validated (message.ts); malformed ones are dropped (a CON one gets RST);
 * - requests (code 0.01..0.31) are deduplicated by (peer, MID) for EXCHANGE_LIFETIME: a
 *   duplicate gets the recorded reply re-sent (or is dropped while the handler works) and never
 *   reaches node-coap's Server twice. Leniency: a duplicate must also repeat the token, so a
 *   rebooted device that restarts its MIDs is not answered from the old session. CoAP pings
 *   get RST here;
 * - empty ACK/RST and piggybacked responses go to whichever side sent the CON with that MID to
 *   that peer (learned by watching both sides' outgoing datagrams);
 * - separate responses go to the Agent only when (peer, token) is an exchange coap-node.ts opened;
 *   a CON one is ACKed here (and re-ACKed if it is retransmitted) and handed to the Agent as NON
 *   with a message ID the Agent has no request under, so its MID lookup cannot misfire;
 * - Observe (RFC 7641): the Agent never sees notifications. coap-node.ts sends the Observe=0
 *   request as a plain request (node-coap's own `observe` mode is not used) and, once the first
 *   2.xx carrying an Observe option settled it, registers (peer, token) here as an *observation*
 *   (`openObservation`). Separate responses with that (peer, token) go to the observation's sink,
 *   CON ones ACKed here first (and re-ACKed, not re-delivered, when retransmitted). Exchanges and
 *   observations share one token space per peer. Notifications nobody observes are refused with
 *   RST, CON and NON alike (RFC 7641 §3.6: that is how a device learns an observation is gone);
 *   a NON separate response *without* an Observe option and an unknown token is still ignored.
 *   Two corners of the exchange that carries the Observe request: when its response comes
 *   block-wise, node-coap fetches the further blocks re-sending the request with Block2 num 1..;
 *   this layer strips the Observe option from those follow-ups (RFC 7959 §2.6: the rest is a
 *   plain GET) and holds notifications that arrive meanwhile (`Exchange.held`) instead of letting
 *   the Agent mistake them for a block. While an Observe=1 (cancel) request is in flight, separate
 *   responses with that token that carry an Observe option are late notifications: RST, never
 *   the cancel's response (RFC 7641 §3.6: the answer to a cancel is a plain response);
 * - response bodies (Block2) are counted per exchange against a cap; exceptions thrown by
 *   node-coap while handling a datagram are caught and fail that exchange instead of the process.
 */
import { EventEmitter } from 'node:events';
import type { AddressInfo } from 'node:net';
import { peerKey, type CoapEndpoint, type PeerAddress, type PeerInfo } from './endpoint.js';
import {
  ACK, CON, NON, RST,
  decodeBlock, decodeMessage, encodeEmpty, encodeMessage, encodeUint, optionValue, peekHeader,
  Opt, type CoapMessage,
} from './message.js';
import { TtlMap } from './ttl-map.js';

export type Side = 'server' | 'agent';

export type DemuxDiagnostic =
  | { readonly kind: 'malformed'; readonly peer: PeerInfo; readonly reason: string }
  | { readonly kind: 'duplicate'; readonly peer: PeerInfo; readonly messageId: number; readonly answered: boolean }
  | { readonly kind: 'unmatched'; readonly peer: PeerInfo; readonly what: string }
  | { readonly kind: 'rejected'; readonly peer: PeerInfo; readonly reason: string }
  | { readonly kind: 'internal'; readonly side: Side; readonly error: unknown }
  | { readonly kind: 'send_error'; readonly error: Error };

export interface DemuxStats {
  received: number;
  malformed: number;
  duplicates: number;
  unmatched: number;
  pings: number;
  rejected: number;
}

export interface DemuxOptions {
  /** How long a received request's (peer, MID) is remembered for duplicate detection. */
  readonly exchangeLifetimeMs: number;
  /** How long a CON we sent stays matchable by its MID (RFC 7252 MAX_TRANSMIT_WAIT). */
  readonly maxTransmitWaitMs: number;
  /** Cap on remembered requests (oldest forgotten first). */
  readonly maxDedupEntries: number;
  /** Block1 transfers claiming more than this are answered 4.13 before node-coap buffers them. */
  readonly maxRequestBodyBytes: number;
  /** True if the Agent has a request filed under this MID (`agent._msgIdToReq`). */
  readonly agentMessageIdInUse: (mid: number) => boolean;
  readonly onDiagnostic?: (d: DemuxDiagnostic) => void;
}

/** What an exchange is, as far as Observe matters (see the header). */
export type ExchangeObserve = 'register' | 'cancel' | undefined;

/** An outgoing request opened by coap-node.ts: responses with this (peer, token) are ours. */
export interface Exchange {
  readonly key: string;
  readonly peerKey: string;
  readonly tokenHex: string;
  /** MIDs of the CONs sent for it (retransmissions share one; Block2/Block1 follow-ups add more). */
  readonly mids: number[];
  /** Datagrams sent for it, retransmissions included. */
  transmissions: number;
  /** Response payload bytes received so far (all blocks). */
  received: number;
  readonly maxResponseBytes: number;
  /** Called at most once, when this layer must fail the exchange (too large, node-coap threw). */
  readonly fail: (err: Error) => void;
  closed: boolean;
  /** `register` for an Observe=0 request, `cancel` for Observe=1, else undefined. */
  readonly observe: ExchangeObserve;
  /** The first response datagram handed to the Agent (its Observe option tells whether an observation began). */
  firstResponse: CoapMessage | undefined;
  /** `register` only: notifications that arrived while node-coap was still fetching Block2 blocks (at most 16, newest kept). */
  readonly held: { readonly message: CoapMessage; readonly peer: PeerInfo }[];
}

/** Receives the notifications of one observation (see `openObservation`). */
export interface ObservationSink {
  /**
   * A separate response (CON: already ACKed; NON) with the observation's token from its peer.
   * Called synchronously from the endpoint's 'message' event; exceptions are caught (diagnostic
   * `internal`). Values in `message` are views of the datagram.
   */
  notify(message: CoapMessage, peer: PeerInfo): void;
}

/** A registered observation: (peer, token) whose separate responses are notifications. */
export interface ObservationEntry {
  key: string;
  peerKey: string;
  readonly tokenHex: string;
  readonly sink: ObservationSink;
  closed: boolean;
}

const MAX_HELD = 16;

interface InboundEntry {
  readonly type: number;
  readonly code: number;
  /**
   * A retransmission repeats the token; a different token under a remembered MID is a new request
   * (a rebooted device restarting its MIDs), not a duplicate. Also confirms node-coap's NON reply,
   * which reuses the request's MID.
   */
  readonly tokenHex: string;
  /** The last ACK/RST (or NON response) the Server sent for this request. */
  reply: Buffer | undefined;
}

interface OutboundCon {
  readonly side: Side;
  readonly exchange: Exchange | undefined;
}

type SendCb = (err: Error | null, bytes?: number) => void;

/**
 * The socket-like object node-coap is given. node-coap calls `send(buf, offset, length, port,
 * address, cb)`, `address()`, reads `type`, and listens to 'message' and 'error'.
 */
export class DemuxPort extends EventEmitter {
  constructor(
    private readonly demux: CoapDemux,
    private readonly side: Side,
    readonly type: 'udp4' | 'udp6',
  ) {
    super();
  }

  send(msg: Buffer, offset: number, length: number, port: number, address: string, cb?: SendCb): void {
    const buf = offset === 0 && length === msg.length ? msg : msg.subarray(offset, offset + length);
    this.demux.sendFrom(this.side, buf, port, address, cb);
  }

  private cachedAddress: AddressInfo | undefined;

  /** Cached: the Agent asks for it on every response it handles. */
  address(): AddressInfo {
    this.cachedAddress ??= this.demux.endpoint.address();
    return this.cachedAddress;
  }
}

/**
 * node-coap's Server keeps every response it sends in an LRU (for EXCHANGE_LIFETIME, 247 s, sized
 * by packet bytes only) with `buf.sender` attached: its RetrySend, which holds a MAX_RTT (202 s)
 * timer and, through its 'error' listener, the whole OutgoingMessage and request. For a
 * piggybacked response none of that is ever used again (duplicates are answered here, from
 * `inbound`; only CON separate responses need their sender, to stop retransmitting on the ACK),
 * yet it kept several KB per request alive for minutes (measured: ~7 KB per Update, 238 MiB after
 * 30 000 Updates). Once node-coap is done sending it (a microtask later, after RetrySend armed its
 * timer), the timer is cleared and the sender dropped; the buffer itself stays, for resends.
 */
function releasePiggybacked(buf: Buffer): void {
  queueMicrotask(() => {
    const b = buf as Buffer & { sender?: { reset?: () => void } };
    if (b.sender === undefined) return;
    if (typeof b.sender.reset === 'function') b.sender.reset();
    b.sender = undefined;
  });
}

export class CoapDemux {
  readonly serverPort: DemuxPort;
  readonly agentPort: DemuxPort;
  readonly stats: DemuxStats = { received: 0, malformed: 0, duplicates: 0, unmatched: 0, pings: 0, rejected: 0 };

  private readonly inbound: TtlMap<InboundEntry>;
  private readonly outboundCon: TtlMap<OutboundCon>;
  /** ACKs we sent for CON separate responses (and their tokens), to re-ACK retransmissions. */
  private readonly acked: TtlMap<{ readonly ack: Buffer; readonly tokenHex: string }>;
  private readonly exchanges = new Map<string, Exchange>();
  private readonly observations = new Map<string, ObservationEntry>();
  /** The decoded message behind each rinfo handed to node-coap (see `messageFor`). */
  private readonly decoded = new WeakMap<object, CoapMessage>();
  private readonly onMessage = (msg: Buffer, peer: PeerInfo): void => this.receive(msg, peer);
  private closed = false;

  constructor(
    readonly endpoint: CoapEndpoint,
    private readonly opts: DemuxOptions,
  ) {
    this.serverPort = new DemuxPort(this, 'server', endpoint.type);
    this.agentPort = new DemuxPort(this, 'agent', endpoint.type);
    this.inbound = new TtlMap(opts.exchangeLifetimeMs, opts.maxDedupEntries);
    this.outboundCon = new TtlMap(opts.maxTransmitWaitMs, opts.maxDedupEntries);
    this.acked = new TtlMap(opts.exchangeLifetimeMs, opts.maxDedupEntries);
    endpoint.on('message', this.onMessage);
  }

  /**
   * The validated message behind a node-coap IncomingMessage, looked up by its `rsinfo` (each
   * datagram is handed to node-coap with its own copy of the peer info).
   */
  messageFor(rinfo: object): CoapMessage | undefined {
    return this.decoded.get(rinfo);
  }

  /** Registers an outgoing request's token before node-coap sends it. Throws if the token is in use for that peer. */
  openExchange(
    peer: PeerAddress,
    tokenHex: string,
    maxResponseBytes: number,
    fail: (err: Error) => void,
    observe: ExchangeObserve = undefined,
  ): Exchange {
    const pk = peerKey(peer);
    const key = `${pk}#${tokenHex}`;
    if (this.exchanges.has(key) || this.observations.has(key)) throw new Error('token already in use for this peer');
    const ex: Exchange = {
      key, peerKey: pk, tokenHex, mids: [], transmissions: 0, received: 0, maxResponseBytes, fail, closed: false,
      observe, firstResponse: undefined, held: [],
    };
    this.exchanges.set(key, ex);
    return ex;
  }

  hasExchange(peer: PeerAddress, tokenHex: string): boolean {
    return this.exchanges.has(`${peerKey(peer)}#${tokenHex}`);
  }

  /** True if an exchange or an observation holds this token for this peer. */
  tokenInUse(peer: PeerAddress, tokenHex: string): boolean {
    const key = `${peerKey(peer)}#${tokenHex}`;
    return this.exchanges.has(key) || this.observations.has(key);
  }

  /**
   * Registers (peer, token) as an observation: its separate responses go to `sink`. Throws if the
   * token is in use for that peer (by an exchange or another observation).
   */
  openObservation(peer: PeerAddress, tokenHex: string, sink: ObservationSink): ObservationEntry {
    const pk = peerKey(peer);
    const key = `${pk}#${tokenHex}`;
    if (this.closed) throw new Error('the demultiplexer is closed');
    if (this.exchanges.has(key) || this.observations.has(key)) throw new Error('token already in use for this peer');
    const entry: ObservationEntry = { key, peerKey: pk, tokenHex, sink, closed: false };
    this.observations.set(key, entry);
    return entry;
  }

  /** Matches an observation's notifications from `peer` from now on. Throws if the token is in use there. */
  moveObservation(entry: ObservationEntry, peer: PeerAddress): void {
    if (entry.closed) throw new Error('the observation is closed');
    const pk = peerKey(peer);
    const key = `${pk}#${entry.tokenHex}`;
    if (key === entry.key) return;
    if (this.exchanges.has(key) || this.observations.has(key)) throw new Error('token already in use for that peer');
    this.observations.delete(entry.key);
    entry.key = key;
    entry.peerKey = pk;
    this.observations.set(key, entry);
  }

  /** Forgets an observation: its next notification gets RST. */
  closeObservation(entry: ObservationEntry): void {
    if (entry.closed) return;
    entry.closed = true;
    if (this.observations.get(entry.key) === entry) this.observations.delete(entry.key);
  }

  /** Forgets an exchange: later datagrams for it are unmatched (RST if CON). */
  closeExchange(ex: Exchange): void {
    if (ex.closed) return;
    ex.closed = true;
    this.exchanges.delete(ex.key);
    for (const mid of ex.mids) {
      const k = `${ex.peerKey}#${mid}`;
      if (this.outboundCon.get(k)?.exchange === ex) this.outboundCon.delete(k);
    }
  }

  /** Detaches from the endpoint; later sends are dropped. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.endpoint.off('message', this.onMessage);
    this.exchanges.clear();
    for (const o of this.observations.values()) o.closed = true;
    this.observations.clear();
    this.inbound.clear();
    this.outboundCon.clear();
    this.acked.clear();
  }

  // ---- outgoing ---------------------------------------------------------------------------

  /** Every datagram node-coap sends passes here: learn MIDs and replies, then send. */
  sendFrom(side: Side, buf: Buffer, port: number, address: string, cb?: SendCb): void {
    if (this.closed) {
      if (cb) process.nextTick(cb, null, 0);
      return;
    }
    const h = peekHeader(buf);
    if (h !== undefined) {
      const pk = peerKey({ address, port });
      const midKey = `${pk}#${h.messageId}`;
      if (side === 'agent') {
        if (h.code !== 0 && h.code < 32) {
          const ex = this.exchanges.get(`${pk}#${h.tokenHex}`);
          if (ex !== undefined) {
            ex.transmissions++;
            if (!ex.mids.includes(h.messageId)) ex.mids.push(h.messageId);
            if (ex.observe === 'register' && ex.firstResponse !== undefined) buf = stripObserveFromFollowUp(buf);
          }
          if (h.type === CON) this.outboundCon.set(midKey, { side, exchange: ex });
        }
      } else if (h.type === ACK || h.type === RST) {
        // A piggybacked response, an empty ACK, or a RST answering request MID: the reply to resend.
        const entry = this.inbound.get(midKey);
        if (entry !== undefined) entry.reply = buf;
        if (h.type === ACK && h.code !== 0) releasePiggybacked(buf);
      } else if (h.type === NON) {
        const entry = this.inbound.get(midKey);
        if (entry !== undefined && entry.type === NON && entry.tokenHex === h.tokenHex && entry.reply === undefined) entry.reply = buf;
      } else {
        // A CON from the Server: a separate response (or notification) whose ACK must reach it.
        this.outboundCon.set(midKey, { side, exchange: undefined });
      }
    }
    this.endpoint.send(buf, port, address, (err) => {
      if (err) this.diag({ kind: 'send_error', error: err });
      cb?.(err, buf.length);
    });
  }

  /** A message this layer answers itself (RST, ACK, 4.13). */
  private reply(buf: Buffer, peer: PeerInfo): void {
    this.endpoint.send(buf, peer.port, peer.address, (err) => {
      if (err) this.diag({ kind: 'send_error', error: err });
    });
  }

  // ---- incoming ---------------------------------------------------------------------------

  private receive(buf: Buffer, peer: PeerInfo): void {
    this.stats.received++;
    const r = decodeMessage(buf);
    if (!r.ok) {
      this.stats.malformed++;
      this.diag({ kind: 'malformed', peer, reason: r.reason });
      // RFC 7252 §4.2: a CON that cannot be processed is rejected with RST; anything else ignored.
      if (r.header !== undefined && r.header.type === CON) this.reply(encodeEmpty(RST, r.header.messageId), peer);
      return;
    }
    const m = r.message;
    const pk = peerKey(peer);
    if (m.code === 0) return this.receiveEmpty(buf, m, peer, pk);
    const cls = m.code >> 5;
    if (cls === 0) return this.receiveRequest(buf, m, peer, pk);
    if (cls >= 2 && cls <= 5) return this.receiveResponse(buf, m, peer, pk);
    if (m.type === CON) this.reply(encodeEmpty(RST, m.messageId), peer);
    this.unmatched(peer, `reserved code class ${cls}`);
  }

  private receiveEmpty(buf: Buffer, m: CoapMessage, peer: PeerInfo, pk: string): void {
    if (m.type === CON) {
      // CoAP ping (RFC 7252 §4.3): answered with RST. node-coap would answer it twice, wrongly.
      this.stats.pings++;
      this.reply(encodeEmpty(RST, m.messageId), peer);
      return;
    }
    if (m.type === NON) return this.unmatched(peer, 'empty NON');
    const k = `${pk}#${m.messageId}`;
    const out = this.outboundCon.get(k);
    if (out === undefined) return this.unmatched(peer, m.type === ACK ? 'ACK for no CON of ours' : 'RST for no CON of ours');
    this.outboundCon.delete(k);
    this.deliver(out.side, m, buf, peer, out.exchange);
  }

  private receiveRequest(buf: Buffer, m: CoapMessage, peer: PeerInfo, pk: string): void {
    if (m.type === ACK || m.type === RST) return this.unmatched(peer, 'request code in an ACK/RST');
    const k = `${pk}#${m.messageId}`;
    const tokenHex = m.token.toString('hex');
    const seen = this.inbound.get(k);
    if (seen !== undefined && seen.tokenHex === tokenHex && seen.code === m.code && seen.type === m.type) {
      this.stats.duplicates++;
      this.diag({ kind: 'duplicate', peer, messageId: m.messageId, answered: seen.reply !== undefined });
      if (seen.reply !== undefined) this.reply(seen.reply, peer);
      return;
    }
    const entry: InboundEntry = { type: m.type, code: m.code, tokenHex, reply: undefined };
    this.inbound.set(k, entry);
    const refusal = this.checkBlock1(m);
    if (refusal !== undefined) {
      this.stats.rejected++;
      this.diag({ kind: 'rejected', peer, reason: refusal.reason });
      entry.reply = encodeMessage({
        type: m.type === CON ? ACK : NON,
        code: refusal.code,
        messageId: m.messageId,
        token: m.token,
        options: refusal.code === 0x8d ? [{ number: Opt.Size1, value: encodeUint(this.opts.maxRequestBodyBytes) }] : [],
      });
      this.reply(entry.reply, peer);
      return;
    }
    this.deliver('server', m, buf, peer, undefined);
  }

  /** Refuses Block1 transfers node-coap would mishandle: bad option, BERT, or too large in total. */
  private checkBlock1(m: CoapMessage): { code: number; reason: string } | undefined {
    const raw = optionValue(m.options, Opt.Block1);
    if (raw === undefined) return undefined;
    const b = decodeBlock(raw);
    if (b === undefined || b.szx === 7) return { code: 0x82, reason: 'Block1 option is invalid or BERT' };
    if ((b.num + 1) * (16 << b.szx) > this.opts.maxRequestBodyBytes) {
      return { code: 0x8d, reason: `Block1 body beyond ${this.opts.maxRequestBodyBytes} bytes` };
    }
    return undefined;
  }

  private receiveResponse(buf: Buffer, m: CoapMessage, peer: PeerInfo, pk: string): void {
    if (m.type === ACK) {
      // Piggybacked: must answer a CON the Agent sent to this very peer with this MID.
      const k = `${pk}#${m.messageId}`;
      const out = this.outboundCon.get(k);
      if (out === undefined || out.side !== 'agent') return this.unmatched(peer, 'piggybacked response for no request of ours');
      const ex = out.exchange;
      if (ex !== undefined && m.token.toString('hex') !== ex.tokenHex) {
        return this.unmatched(peer, 'piggybacked response with a foreign token');
      }
      this.outboundCon.delete(k);
      if (ex !== undefined) {
        if (!this.account(ex, m)) return;
        ex.firstResponse ??= m;
      }
      this.deliver('agent', m, buf, peer, ex);
      return;
    }
    if (m.type === RST) return this.unmatched(peer, 'RST with a response code');
    // Separate response (CON or NON), matched by token.
    const midKey = `${pk}#${m.messageId}`;
    const tokenHex = m.token.toString('hex');
    if (m.type === CON) {
      const acked = this.acked.get(midKey);
      if (acked !== undefined && acked.tokenHex === tokenHex) {
        // Our ACK was lost and the device retransmits: ACK again, deliver nothing.
        this.stats.duplicates++;
        this.diag({ kind: 'duplicate', peer, messageId: m.messageId, answered: true });
        this.reply(acked.ack, peer);
        return;
      }
    }
    const key = `${pk}#${tokenHex}`;
    const isNotification = optionValue(m.options, Opt.Observe) !== undefined;
    const ex = this.exchanges.get(key);
    if (ex === undefined) {
      const obs = this.observations.get(key);
      if (obs !== undefined) {
        if (m.type === CON) this.ack(m, midKey, tokenHex, peer);
        try {
          obs.sink.notify(m, peer);
        } catch (error) {
          this.diag({ kind: 'internal', side: 'agent', error });
        }
        return;
      }
      // RFC 7641 §3.6: a notification nobody observes is rejected, CON or NON.
      if (m.type === CON || isNotification) this.reply(encodeEmpty(RST, m.messageId), peer);
      return this.unmatched(peer, isNotification ? 'notification with an unknown token' : 'separate response with an unknown token');
    }
    if (isNotification && ex.observe === 'cancel') {
      // The observation is being cancelled; this is a late notification, not the cancel's answer.
      this.reply(encodeEmpty(RST, m.messageId), peer);
      return this.unmatched(peer, 'notification while the observation is being cancelled');
    }
    if (isNotification && ex.observe === 'register' && ex.firstResponse !== undefined && !isBlockFollowUp(m)) {
      // A notification while node-coap fetches the initial response's further blocks: hold it.
      if (m.type === CON) this.ack(m, midKey, tokenHex, peer);
      if (ex.held.length >= MAX_HELD) ex.held.shift();
      ex.held.push({ message: m, peer });
      return;
    }
    if (m.type === CON) this.ack(m, midKey, tokenHex, peer);
    if (!this.account(ex, m)) return;
    ex.firstResponse ??= m;
    // Hand it to the Agent as NON under a MID it has nothing filed under (see the header).
    const copy = Buffer.from(buf);
    copy[0] = (copy[0]! & 0xcf) | (NON << 4);
    const mid = this.freeAgentMid(m.messageId);
    copy[2] = mid >> 8;
    copy[3] = mid & 0xff;
    this.deliver('agent', m, copy, peer, ex);
  }

  /** ACKs a CON separate response and remembers the ACK for its retransmissions. */
  private ack(m: CoapMessage, midKey: string, tokenHex: string, peer: PeerInfo): void {
    const ack = encodeEmpty(ACK, m.messageId);
    this.acked.set(midKey, { ack, tokenHex });
    this.reply(ack, peer);
  }

  /** Counts response payload against the exchange's cap; fails the exchange when exceeded. */
  private account(ex: Exchange, m: CoapMessage): boolean {
    ex.received += m.payload.length;
    if (ex.received > ex.maxResponseBytes) {
      ex.fail(new Error(`response body exceeds ${ex.maxResponseBytes} bytes`));
      return false;
    }
    return true;
  }

  private freeAgentMid(start: number): number {
    let mid = start;
    for (let i = 0; i < 0x10000 && this.opts.agentMessageIdInUse(mid); i++) mid = (mid + 1) & 0xffff;
    return mid;
  }

  private deliver(side: Side, m: CoapMessage, buf: Buffer, peer: PeerInfo, ex: Exchange | undefined): void {
    // A fresh rinfo per datagram: node-coap keeps it as `rsinfo`, and it keys `messageFor`.
    const rinfo: PeerInfo = { ...peer };
    this.decoded.set(rinfo, m);
    const port = side === 'server' ? this.serverPort : this.agentPort;
    try {
      port.emit('message', buf, rinfo);
    } catch (error) {
      this.diag({ kind: 'internal', side, error });
      if (ex !== undefined && !ex.closed) ex.fail(error instanceof Error ? error : new Error(String(error)));
    }
  }

  private unmatched(peer: PeerInfo, what: string): void {
    this.stats.unmatched++;
    this.diag({ kind: 'unmatched', peer, what });
  }

  private diag(d: DemuxDiagnostic): void {
    const f = this.opts.onDiagnostic;
    if (f === undefined) return;
    try {
      f(d);
    } catch {
      // A logging hook must not break the message layer.
    }
  }
}

/** A response carrying Block2 with NUM ≥ 1: a further block of a block-wise transfer, not a new notification. */
function isBlockFollowUp(m: CoapMessage): boolean {
  const raw = optionValue(m.options, Opt.Block2);
  if (raw === undefined) return false;
  const b = decodeBlock(raw);
  return b !== undefined && b.num > 0;
}

/**
 * node-coap fetches a block-wise response's further blocks by re-sending the request with Block2
 * NUM 1.., Observe option included. RFC 7959 §2.6: those follow-ups are plain GETs. Returns the
 * datagram without its Observe option when it is such a follow-up, else unchanged.
 */
function stripObserveFromFollowUp(buf: Buffer): Buffer {
  const r = decodeMessage(buf);
  if (!r.ok) return buf;
  const m = r.message;
  if (optionValue(m.options, Opt.Observe) === undefined) return buf;
  const raw = optionValue(m.options, Opt.Block2);
  const b = raw === undefined ? undefined : decodeBlock(raw);
  if (b === undefined || b.num === 0) return buf;
  return encodeMessage({
    type: m.type, code: m.code, messageId: m.messageId, token: m.token,
    options: m.options.filter((o) => o.number !== Opt.Observe), payload: m.payload,
  });
}
