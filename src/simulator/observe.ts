/**
 * Observations held by the simulated device (registration.md §7.4–§7.5, RFC 7641): the server's
 * `GET` with Observe=0 is answered by the simulator (the 2.05 carries Observe=1, set by
 * node-coap); this module keeps the observation and sends the notifications.
 *
 * Notifications are NON 2.05 responses with the observation's token, an Observe option with a
 * 24-bit sequence number that increases by one per notification (starting after the initial
 * response's 1), and the Content-Format of the initial response. CoapNode has no API to send a
 * notification, so they go out as raw datagrams built with `encodeMessage` through the node's
 * endpoint (the same socket, so the server sees the registered 5-tuple). No CON notifications.
 *
 * When to notify (§7.4, coarsely): the observed value (its encoding) changed AND the change
 * condition holds (gt/lt crossed, or moved by ≥ st since the last notification, or the boolean
 * edge; no condition = any change) AND pmin elapsed since the last notification (else it goes
 * out when pmin expires); or pmax elapsed without one (pmax 0, or below pmin, is ignored).
 * Attributes: the observation's own (1.2 Observe query) over those written at the path and its
 * parents (deepest wins), over the Server object's default pmin/pmax (`/1/x/2`, `/1/x/3`).
 * Times are in seconds as on the wire; evaluation is on changes and timers, there is no
 * periodic sampling (epmin/epmax are accepted but not used).
 *
 * Ends: Observe=1 with the token (active cancel), a RST answering one of its notifications
 * (reactive cancel: the simulator hands every RST it receives to `onReset`), a read that fails
 * (the target was deleted: a NON error notification without Observe option, e.g. 4.04, then
 * the observation is gone), a new Register, De-register, re-bootstrap and close (`clear`).
 */
import type { PeerAddress } from '../coap/endpoint.js';
import { encodeMessage, encodeUint, NON, Opt, parseCode, type CoapOption } from '../coap/message.js';
import { formatPath, isPrefixOf, type Path } from '../lwm2m/path.js';
import type { Value } from '../lwm2m/value.js';
import type { OpResult } from './device-model.js';
import type { NotificationAttributes } from './dm.js';

/** What the observation manager needs from the simulator. */
export interface ObservationHost {
  /** Sends one datagram to the server. */
  send(datagram: Buffer, peer: PeerAddress): void;
  /** Reads `path` encoded in `contentFormat` (as a Read with that Accept). */
  read(path: Path, contentFormat: number): OpResult;
  /** The value of a resource (or resource instance) path, for gt/lt/st/edge; undefined otherwise. */
  value(path: Path): Value | undefined;
  /** Attributes written at `path` and above, deepest wins. */
  attributes(path: Path): NotificationAttributes;
  /** Default pmin/pmax of the registered server (`/1/x/2`, `/1/x/3`). */
  defaults(): { readonly pmin?: number; readonly pmax?: number };
  /** Told about each notification sent, and each observation that ended. */
  onEvent?(e: ObservationEvent): void;
}

export type ObservationEvent =
  | { readonly kind: 'notify'; readonly path: string; readonly token: string; readonly observe: number; readonly code: string; readonly messageId: number }
  | { readonly kind: 'ended'; readonly path: string; readonly token: string; readonly reason: ObservationEndReason };

export type ObservationEndReason = 'cancelled' | 'reset' | 'error' | 'replaced' | 'cleared';

/** An observation as the simulator reports it. */
export interface ObservationInfo {
  /** Hex. */
  readonly token: string;
  readonly path: string;
  readonly peer: string;
  readonly contentFormat: number;
  /** Attributes given in the Observe request itself (1.2). */
  readonly attributes: NotificationAttributes;
  /** Notifications sent (the initial response not counted). */
  readonly notifications: number;
  /** Observe sequence number of the last notification (1 = the initial response). */
  readonly sequence: number;
  readonly createdAt: number;
  readonly lastNotifiedAt: number;
}

interface Observation {
  readonly key: string;
  readonly token: Buffer;
  readonly peer: PeerAddress;
  readonly path: Path;
  readonly contentFormat: number;
  readonly own: NotificationAttributes;
  readonly createdAt: number;
  lastPayload: Buffer;
  lastAt: number;
  /** Numeric (or boolean as 0/1) value at the last notification, for st. */
  notifiedValue: number | undefined;
  /** Numeric value at the last evaluation, for gt/lt crossing and edges. */
  previousValue: number | undefined;
  seq: number;
  notifications: number;
  pminTimer?: NodeJS.Timeout;
  pmaxTimer?: NodeJS.Timeout;
}

/** Remembered notification message IDs, for matching a RST (reactive cancel). */
const MAX_REMEMBERED_MIDS = 1024;

function keyOf(peer: PeerAddress, token: Uint8Array): string {
  return `${peer.address}|${peer.port}#${Buffer.from(token).toString('hex')}`;
}

function numeric(v: Value | undefined): number | undefined {
  if (!v) return undefined;
  switch (v.type) {
    case 'integer':
    case 'unsigned':
    case 'time':
      return Number(v.value);
    case 'float':
      return v.value;
    case 'boolean':
      return v.value ? 1 : 0;
    default:
      return undefined;
  }
}

export class Observations {
  private readonly byKey = new Map<string, Observation>();
  private readonly mids = new Map<number, string>();
  private nextMid: number;

  constructor(private readonly host: ObservationHost) {
    this.nextMid = Math.floor(Math.random() * 0x10000);
  }

  get size(): number {
    return this.byKey.size;
  }

  list(): ObservationInfo[] {
    return [...this.byKey.values()].map((o) => ({
      token: o.token.toString('hex'),
      path: formatPath(o.path),
      peer: `${o.peer.address}:${o.peer.port}`,
      contentFormat: o.contentFormat,
      attributes: o.own,
      notifications: o.notifications,
      sequence: o.seq,
      createdAt: o.createdAt,
      lastNotifiedAt: o.lastAt,
    }));
  }

  /**
   * Starts an observation after the initial 2.05 (`payload`, Observe sequence 1) went out. The
   * same token from the same peer replaces the earlier observation (RFC 7641 §4.1).
   */
  add(peer: PeerAddress, token: Uint8Array, path: Path, contentFormat: number, payload: Uint8Array, own: NotificationAttributes): void {
    const key = keyOf(peer, token);
    const old = this.byKey.get(key);
    if (old) this.end(old, 'replaced');
    const now = Date.now();
    const v = numeric(this.host.value(path));
    const o: Observation = {
      key,
      token: Buffer.from(token),
      peer: { address: peer.address, port: peer.port },
      path,
      contentFormat,
      own,
      createdAt: now,
      lastPayload: Buffer.from(payload),
      lastAt: now,
      notifiedValue: v,
      previousValue: v,
      seq: 1,
      notifications: 0,
    };
    this.byKey.set(key, o);
    this.armPmax(o);
  }

  /** Observe=1 with this token (active cancel). True when there was such an observation. */
  cancel(peer: PeerAddress, token: Uint8Array): boolean {
    const o = this.byKey.get(keyOf(peer, token));
    if (!o) return false;
    this.end(o, 'cancelled');
    return true;
  }

  /** A RST from `peer`: when it answers one of our notifications, that observation ends. */
  onReset(peer: PeerAddress, messageId: number): boolean {
    const key = this.mids.get(messageId);
    if (key === undefined) return false;
    const o = this.byKey.get(key);
    if (!o || o.peer.address !== peer.address || o.peer.port !== peer.port) return false;
    this.mids.delete(messageId);
    this.end(o, 'reset');
    return true;
  }

  /** Values at these paths changed: re-evaluate the observations at, above or below them. */
  changed(paths: readonly Path[]): void {
    for (const o of [...this.byKey.values()]) {
      if (paths.some((p) => isPrefixOf(o.path, p) || isPrefixOf(p, o.path))) this.evaluate(o, 'change');
    }
  }

  /** Attributes changed: re-arm the pmax timers (the next notification follows the new ones). */
  attributesChanged(): void {
    for (const o of this.byKey.values()) this.armPmax(o);
  }

  /** Ends every observation without sending anything (new Register, De-register, close). */
  clear(): void {
    for (const o of [...this.byKey.values()]) this.end(o, 'cleared');
    this.mids.clear();
  }

  // -------------------------------------------------------------------------------------------

  private effective(o: Observation): NotificationAttributes & { pmin: number } {
    const d = this.host.defaults();
    const a: NotificationAttributes = { ...(d.pmin !== undefined ? { pmin: d.pmin } : {}), ...(d.pmax !== undefined ? { pmax: d.pmax } : {}), ...this.host.attributes(o.path), ...o.own };
    return { ...a, pmin: a.pmin ?? 0 };
  }

  private armPmax(o: Observation): void {
    if (o.pmaxTimer) clearTimeout(o.pmaxTimer);
    o.pmaxTimer = undefined;
    const a = this.effective(o);
    // §7.4: pmax 0 is ignored, and so is a pmax below pmin.
    if (a.pmax === undefined || a.pmax <= 0 || a.pmax < a.pmin) return;
    const due = Math.max(0, o.lastAt + a.pmax * 1000 - Date.now());
    o.pmaxTimer = setTimeout(() => {
      o.pmaxTimer = undefined;
      this.evaluate(o, 'pmax');
    }, due);
  }

  private conditionHolds(o: Observation, a: NotificationAttributes, v: number | undefined): boolean {
    const conditions: boolean[] = [];
    if (v !== undefined) {
      const prev = o.previousValue;
      if (a.gt !== undefined) conditions.push(prev !== undefined && (prev > a.gt) !== (v > a.gt));
      if (a.lt !== undefined) conditions.push(prev !== undefined && (prev < a.lt) !== (v < a.lt));
      if (a.st !== undefined) conditions.push(o.notifiedValue === undefined || Math.abs(v - o.notifiedValue) >= a.st);
      if (a.edge !== undefined) conditions.push(prev !== undefined && prev !== v && v === a.edge);
    }
    return conditions.length === 0 || conditions.some((c) => c);
  }

  private evaluate(o: Observation, cause: 'change' | 'pmin' | 'pmax'): void {
    if (this.byKey.get(o.key) !== o) return;
    const r = this.host.read(o.path, o.contentFormat);
    if (!r.code.startsWith('2.')) {
      // The target is gone (or no longer readable): an error notification ends the observation.
      this.sendMessage(o, r.code, undefined, typeof r.payload === 'string' ? Buffer.from(r.payload) : undefined);
      this.end(o, 'error');
      return;
    }
    const payload = r.payload === undefined ? Buffer.alloc(0) : Buffer.from(r.payload);
    const a = this.effective(o);
    const v = numeric(this.host.value(o.path));
    if (cause !== 'pmax') {
      if (payload.equals(o.lastPayload)) {
        o.previousValue = v;
        return;
      }
      if (cause === 'change' && !this.conditionHolds(o, a, v)) {
        o.previousValue = v;
        return;
      }
      o.previousValue = v;
      const wait = o.lastAt + a.pmin * 1000 - Date.now();
      if (wait > 0) {
        // §7.4: a change before pmin is sent when pmin expires (with the value then current).
        o.pminTimer ??= setTimeout(() => {
          o.pminTimer = undefined;
          this.evaluate(o, 'pmin');
        }, wait);
        return;
      }
    }
    o.previousValue = v;
    o.notifiedValue = v;
    o.lastPayload = payload;
    o.lastAt = Date.now();
    o.seq = (o.seq + 1) & 0xffffff;
    o.notifications++;
    if (o.pminTimer) clearTimeout(o.pminTimer);
    o.pminTimer = undefined;
    this.sendMessage(o, '2.05', o.seq, payload, r.contentFormat ?? o.contentFormat);
    this.armPmax(o);
  }

  private sendMessage(o: Observation, code: string, observe: number | undefined, payload: Buffer | undefined, contentFormat?: number): void {
    const messageId = this.nextMid;
    this.nextMid = (this.nextMid + 1) & 0xffff;
    const options: CoapOption[] = [];
    if (observe !== undefined) options.push({ number: Opt.Observe, value: encodeUint(observe) });
    if (contentFormat !== undefined) options.push({ number: Opt.ContentFormat, value: encodeUint(contentFormat) });
    const datagram = encodeMessage({ type: NON, code: parseCode(code), messageId, token: o.token, options, ...(payload && payload.length > 0 ? { payload } : {}) });
    this.mids.set(messageId, o.key);
    if (this.mids.size > MAX_REMEMBERED_MIDS) this.mids.delete(this.mids.keys().next().value!);
    this.host.send(datagram, o.peer);
    this.host.onEvent?.({ kind: 'notify', path: formatPath(o.path), token: o.token.toString('hex'), observe: observe ?? -1, code, messageId });
  }

  private end(o: Observation, reason: ObservationEndReason): void {
    if (this.byKey.get(o.key) !== o) return;
    this.byKey.delete(o.key);
    if (o.pminTimer) clearTimeout(o.pminTimer);
    if (o.pmaxTimer) clearTimeout(o.pmaxTimer);
    o.pminTimer = undefined;
    o.pmaxTimer = undefined;
    this.host.onEvent?.({ kind: 'ended', path: formatPath(o.path), token: o.token.toString('hex'), reason });
  }
}
