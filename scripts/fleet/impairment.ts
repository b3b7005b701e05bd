/**
 * Packet loss, duplication and reordering between the fleet generator and the server.
 *
 * Where it sits: inside the generator process, as a wrapper around every UDP socket of that
 * process (`dgram.Socket.prototype.send` for what the devices send, the socket's `message`
 * event for what they receive). Each direction has its own model, so 10 % loss means 10 % of the
 * datagrams to the server and 10 % of those from it are lost, as on a lossy radio link. Why not a
 * UDP proxy process: a proxy adds a hop and a third busy process on the same cores (it would be
 * measured as server slowness), it needs one upstream socket per device to keep the 5-tuples
 * apart (the registration server keys on the client's address), and the server would see the
 * proxy's addresses, not the devices'. The wrapper costs nothing when off and the server sees
 * exactly what it sees without impairment. The simulator has no transport hook (src/), hence the
 * prototype wrapper; it is installed only in the generator process and only for datagrams
 * to or from the server's ports.
 *
 * `LossModel` is pure (seeded PRNG): for each datagram it decides drop / deliver n copies after a
 * delay. Reordering = holding a datagram back for a random delay so the ones behind it overtake it.
 */
import { Socket } from 'node:dgram';

export interface ImpairmentOptions {
  /** Probability a datagram is lost (0..1). */
  readonly loss?: number;
  /** Probability a delivered datagram is delivered twice (0..1). */
  readonly duplicate?: number;
  /** Probability a delivered datagram is held back (0..1), so later ones overtake it. */
  readonly reorder?: number;
  /** Longest hold-back of a reordered datagram, ms (default 20); the delay is uniform in 1..this. */
  readonly reorderMaxDelayMs?: number;
  /** PRNG seed (default 1). */
  readonly seed?: number;
}

export type Fate = { readonly drop: true } | { readonly drop: false; readonly copies: 1 | 2; readonly delayMs: number };

export interface ImpairmentCounts {
  seen: number;
  dropped: number;
  duplicated: number;
  delayed: number;
}

/** A small fast seeded PRNG (mulberry32): uniform floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function probability(name: string, v: number | undefined): number {
  const p = v ?? 0;
  if (!(p >= 0 && p <= 1)) throw new RangeError(`${name} must be a probability in 0..1, got ${v}`);
  return p;
}

export class LossModel {
  readonly loss: number;
  readonly duplicate: number;
  readonly reorder: number;
  readonly reorderMaxDelayMs: number;
  readonly counts: ImpairmentCounts = { seen: 0, dropped: 0, duplicated: 0, delayed: 0 };
  private readonly random: () => number;

  constructor(opts: ImpairmentOptions = {}) {
    this.loss = probability('loss', opts.loss);
    this.duplicate = probability('duplicate', opts.duplicate);
    this.reorder = probability('reorder', opts.reorder);
    this.reorderMaxDelayMs = opts.reorderMaxDelayMs ?? 20;
    if (!(this.reorderMaxDelayMs >= 1)) throw new RangeError(`reorderMaxDelayMs must be ≥ 1, got ${opts.reorderMaxDelayMs}`);
    this.random = mulberry32(opts.seed ?? 1);
  }

  /** True when the model changes nothing. */
  get inert(): boolean {
    return this.loss === 0 && this.duplicate === 0 && this.reorder === 0;
  }

  /** The fate of the next datagram. */
  decide(): Fate {
    this.counts.seen++;
    if (this.loss > 0 && this.random() < this.loss) {
      this.counts.dropped++;
      return { drop: true };
    }
    let copies: 1 | 2 = 1;
    if (this.duplicate > 0 && this.random() < this.duplicate) {
      copies = 2;
      this.counts.duplicated++;
    }
    let delayMs = 0;
    if (this.reorder > 0 && this.random() < this.reorder) {
      delayMs = 1 + Math.floor(this.random() * this.reorderMaxDelayMs);
      this.counts.delayed++;
    }
    return { drop: false, copies, delayMs };
  }
}

type SendFn = (this: Socket, ...args: unknown[]) => void;
type EmitFn = (this: Socket, event: string | symbol, ...args: unknown[]) => boolean;

/**
 * Wraps every dgram socket of this process: datagrams sent to, or received from, a port in
 * `serverPorts` go through `outgoing` / `incoming`. Returns the function that removes the wrapper.
 */
export function installImpairment(serverPorts: ReadonlySet<number>, outgoing: LossModel, incoming: LossModel): () => void {
  const proto = Socket.prototype as unknown as { send: SendFn; emit: EmitFn };
  const origSend = proto.send;
  const origEmit = proto.emit;
  proto.send = function (this: Socket, ...args: unknown[]): void {
    // Only the (msg, port, address, callback?) form is impaired: the one the CoAP and DTLS endpoints use.
    const port = args[1];
    if (outgoing.inert || typeof port !== 'number' || typeof args[2] !== 'string' || !serverPorts.has(port)) {
      origSend.apply(this, args);
      return;
    }
    const fate = outgoing.decide();
    const cb = typeof args[3] === 'function' ? (args[3] as (err: Error | null, bytes?: number) => void) : undefined;
    if (fate.drop) {
      if (cb) queueMicrotask(() => cb(null, 0));
      return;
    }
    const copy = [args[0], port, args[2]];
    const send = (): void => {
      try {
        origSend.apply(this, cb ? [...copy, cb] : copy);
        if (fate.copies === 2) origSend.apply(this, copy);
      } catch {
        // the socket closed while the datagram was held back: it is lost
      }
    };
    if (fate.delayMs > 0) setTimeout(send, fate.delayMs);
    else send();
  };
  proto.emit = function (this: Socket, event: string | symbol, ...args: unknown[]): boolean {
    if (event !== 'message' || incoming.inert) return origEmit.call(this, event, ...args);
    const rinfo = args[1] as { port?: number } | undefined;
    if (!rinfo || typeof rinfo.port !== 'number' || !serverPorts.has(rinfo.port)) return origEmit.call(this, event, ...args);
    const fate = incoming.decide();
    if (fate.drop) return true;
    const deliver = (): void => {
      origEmit.call(this, event, ...args);
      if (fate.copies === 2) origEmit.call(this, event, ...args);
    };
    if (fate.delayMs > 0) setTimeout(deliver, fate.delayMs);
    else deliver();
    return true;
  };
  return () => {
    proto.send = origSend;
    proto.emit = origEmit;
  };
}
