/**
 * `DeviceManager`: device management requests to registered clients (registration.md §5–§7),
 * over the socket each client registered on (`RegistrationServer.nodeFor`).
 *
 * Per device, one lane: requests run one at a time in submission order (NSTART = 1; LwM2M clients
 * handle one request at a time). A request is a ticket (`submit` → id): queued, sent, then done
 * (the client answered, any code) or failed (no answer, see `DmFailure`). Tickets are kept in
 * memory for `ticketRetentionMs` after they end, for `ticket(id)` (the admin API polls them).
 *
 * Queue mode (§5): a queue-mode client is reachable only for a while after it sent something. Its
 * lane runs only while it is awake: for `awakeMs` (93 s, MAX_TRANSMIT_WAIT, as Leshan) after its
 * Register, Update, a notification or an answer. Otherwise requests wait for its next Update (or
 * fail `expired` after `queueTimeoutMs`). A request that gets no answer marks it asleep. After a
 * restart every queue-mode client counts as asleep until it speaks.
 *
 * Observations (§7.4–§7.5): the operator's intent is stored per device (store/device-data.ts);
 * the CoAP observation (token) lives under one registration. A client forgets its observations
 * when it registers again, so after every Register the lane re-establishes each stored
 * observation (an `observe` ticket per path). Notifications update the device's latest values;
 * one with an error code ends the CoAP observation (the intent stays, pending). On De-register or
 * expiry the tokens are forgotten (the next CON notification gets RST). After a restart the
 * tokens of live registrations are listened for again without asking the client anything.
 *
 * Triggers (§6): `trigger-update` and `trigger-bootstrap` execute /1/x/8 and /1/x/9 on the
 * Server instance x whose Short Server ID (/1/x/0) is the one of the credential the client
 * registered with; x is taken from the object list when /1 has a single instance, else read.
 */
import { randomBytes } from 'node:crypto';
import { CoapRequestError, type CoapNode, type CoapNotification, type CoapRequestOptions, type CoapResponse, type Observation, type ObservationHandle } from '../../coap/coap-node.js';
import type { PeerAddress } from '../../coap/endpoint.js';
import { Opt } from '../../coap/message.js';
import { CodecError } from '../../lwm2m/errors.js';
import type { ModelLookup, ObjectRegistry } from '../../lwm2m/model.js';
import { formatPath, type Path } from '../../lwm2m/path.js';
import type { ObservationRecord } from '../../store/device-data.js';
import type { RegistrationRecord, Store } from '../../store/types.js';
import { bytesAsText, describeBytes } from '../../util/bytes.js';
import { silentLogger, type Logger } from '../../util/log.js';
import type { RegistrationChange, RegistrationServer } from '../server.js';
import { decodeValues, prepareRequest, triggerRequest, type ClientInfo, type PreparedRequest } from './requests.js';
import {
  DmError,
  type DeviceManagement,
  type DmFailure,
  type DmRequest,
  type DmResult,
  type DmState,
  type LatestValue,
  type ObservationInfo,
  type PathValue,
  type ValueJson,
} from './types.js';

export interface DeviceManagerOptions {
  readonly store: Store;
  readonly server: RegistrationServer;
  readonly objects: ObjectRegistry;
  readonly log?: Logger;
  /** A queue-mode client counts as awake this long after it last spoke (default 93 s). */
  readonly awakeMs?: number;
  /** Give up on one request after this long (default: the node's MAX_TRANSMIT_WAIT). */
  readonly requestTimeoutMs?: number;
  /** A request still queued after this long fails `expired` (default 24 h). */
  readonly queueTimeoutMs?: number;
  /** Ended tickets stay readable this long (default 10 min). */
  readonly ticketRetentionMs?: number;
  /** At most this many requests queued per device (default 100). */
  readonly maxQueuePerDevice?: number;
  readonly now?: () => number;
}

export const DEFAULT_AWAKE_MS = 93_000;
const DEFAULT_QUEUE_TIMEOUT_MS = 24 * 3600_000;
const DEFAULT_RETENTION_MS = 10 * 60_000;
const MAX_ENDED_TICKETS = 10_000;

interface Ticket {
  readonly id: string;
  readonly op: DmRequest['op'];
  readonly request: DmRequest;
  readonly endpoint: Buffer;
  readonly endpointLabel: string;
  /** The path shown in the result (for triggers: set once x is known). */
  path: string;
  state: DmState;
  result: Partial<DmResult>;
  readonly submittedAt: number;
  sentAt?: number;
  finishedAt?: number;
  /** Internal tickets (re-established observations) are not counted against the queue limit. */
  readonly internal: boolean;
  queueTimer?: NodeJS.Timeout;
  readonly done: Promise<DmResult>;
  resolve(r: DmResult): void;
}

interface Lane {
  readonly key: string;
  readonly endpoint: Buffer;
  readonly queue: Ticket[];
  running: boolean;
  /** Queue mode: awake until then (ms); 0 = asleep/unknown. */
  awakeUntil: number;
  wakeTimer?: NodeJS.Timeout;
}

interface LiveObservation {
  readonly observationId: number;
  readonly registrationId: string;
  readonly endpoint: Buffer;
  readonly path: string;
  readonly handle: ObservationHandle;
}

/** `text` when printable, else `hex:…` (as the admin API takes endpoints). */
export function endpointLabel(b: Uint8Array): string {
  return bytesAsText(b) ?? `hex:${Buffer.from(b).toString('hex')}`;
}

const keyOf = (endpoint: Uint8Array): string => Buffer.from(endpoint).toString('hex');

export class DeviceManager implements DeviceManagement {
  readonly #store: Store;
  readonly #server: RegistrationServer;
  readonly #objects: ObjectRegistry;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #awakeMs: number;
  readonly #requestTimeoutMs: number | undefined;
  readonly #queueTimeoutMs: number;
  readonly #retentionMs: number;
  readonly #maxQueue: number;
  readonly #lanes = new Map<string, Lane>();
  readonly #tickets = new Map<string, Ticket>();
  readonly #ended: string[] = [];
  /** Live CoAP observations by store observation id. */
  readonly #live = new Map<number, LiveObservation>();
  #unsubscribe: (() => void) | undefined;
  #started: Promise<void> | undefined;
  #closed = false;

  constructor(opts: DeviceManagerOptions) {
    this.#store = opts.store;
    this.#server = opts.server;
    this.#objects = opts.objects;
    this.#log = opts.log ?? silentLogger;
    this.#now = opts.now ?? Date.now;
    this.#awakeMs = opts.awakeMs ?? DEFAULT_AWAKE_MS;
    this.#requestTimeoutMs = opts.requestTimeoutMs;
    this.#queueTimeoutMs = opts.queueTimeoutMs ?? DEFAULT_QUEUE_TIMEOUT_MS;
    this.#retentionMs = opts.ticketRetentionMs ?? DEFAULT_RETENTION_MS;
    this.#maxQueue = opts.maxQueuePerDevice ?? 100;
    // From construction on, so no Register is missed between the server's listen and start().
    this.#unsubscribe = this.#server.subscribe((c) => this.#onChange(c));
  }

  /** Listens again for the notifications of observations held by live registrations (call after the server listens). */
  start(): Promise<void> {
    this.#started ??= (async () => {
      let resumed = 0;
      for (const o of await this.#store.deviceData.activeObservations()) {
        const reg = o.registrationId ? await this.#store.registry.get(o.registrationId) : undefined;
        if (!reg || !o.token) {
          await this.#store.deviceData.deactivateObservation(o.id);
          continue;
        }
        if (this.#resume(reg, o)) resumed++;
      }
      if (resumed > 0) this.#log.info('listening again for notifications of observations made before the restart', { observations: resumed });
    })();
    return this.#started;
  }

  // ---- the DeviceManagement API -------------------------------------------------------------

  async submit(endpoint: Uint8Array, request: DmRequest): Promise<{ readonly id: string; readonly done: Promise<DmResult> }> {
    if (this.#closed) throw new DmError('shutdown', 'the server is shutting down');
    const reg = await this.#store.registry.getByEndpoint(endpoint);
    if (!reg) throw new DmError('not_registered', `${describeBytes(endpoint)} is not registered`);
    if (typeof request !== 'object' || request === null || typeof (request as { op?: unknown }).op !== 'string') throw new DmError('invalid', 'a request needs an op');
    // Validate now: an operator's mistake is refused at once, not when the device wakes up.
    let path = '';
    if (request.op === 'trigger-update' || request.op === 'trigger-bootstrap') {
      if (request.op === 'trigger-bootstrap' && reg.lwm2mVersion === '1.0') throw new DmError('unsupported', 'the Bootstrap-Request Trigger (/1/x/9) exists from LwM2M 1.1; this client registered with 1.0');
      path = '/1';
    } else {
      path = formatPath(prepareRequest(request, this.#client(reg)).path);
    }
    const lane = this.#lane(reg.endpoint);
    if (lane.queue.filter((t) => !t.internal).length >= this.#maxQueue) throw new DmError('invalid', `${this.#maxQueue} requests are already queued for ${describeBytes(reg.endpoint)}`);
    if (request.op === 'observe') {
      await this.#store.deviceData.saveObservation(reg.endpoint, path, {
        ...(request.accept !== undefined ? { accept: request.accept } : {}),
        ...(request.attributes ? { attributes: stringRecord(request.attributes) } : {}),
      });
    }
    const t = this.#newTicket(reg.endpoint, request, path, false);
    this.#enqueue(lane, t);
    return { id: t.id, done: t.done };
  }

  ticket(id: string): DmResult | undefined {
    const t = this.#tickets.get(id);
    return t ? this.#result(t) : undefined;
  }

  async observations(endpoint: Uint8Array): Promise<ObservationInfo[]> {
    return (await this.#store.deviceData.observations(endpoint)).map((o) => ({
      path: o.path,
      state: o.registrationId !== null && this.#live.has(o.id) ? 'active' : 'pending',
      registrationId: o.registrationId,
      contentFormat: o.contentFormat,
      attributes: o.attributes,
      createdAt: o.createdAt,
      notifications: o.notifications,
      lastNotificationAt: o.lastAt,
    }));
  }

  async latestValues(endpoint: Uint8Array, pathPrefix?: string): Promise<LatestValue[]> {
    return (await this.#store.deviceData.latestValues(endpoint, pathPrefix)).map((v) => ({ path: v.path, ...v.value, at: v.at, source: v.source }));
  }

  /** Submits and waits: the result (never rejects once queued). */
  async run(endpoint: Uint8Array, request: DmRequest): Promise<DmResult> {
    return (await this.submit(endpoint, request)).done;
  }

  /** Whether a queue-mode client counts as awake now (tests, the admin API). */
  isAwake(endpoint: Uint8Array): boolean {
    const lane = this.#lanes.get(keyOf(endpoint));
    return lane !== undefined && lane.awakeUntil > this.#now();
  }

  /** Fails what is queued (`shutdown`), forgets observations' tokens (the store keeps them for the restart). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsubscribe?.();
    for (const lane of this.#lanes.values()) {
      if (lane.wakeTimer) clearTimeout(lane.wakeTimer);
      for (const t of lane.queue.splice(0)) this.#fail(t, 'shutdown', 'the server is shutting down');
    }
    for (const live of this.#live.values()) void live.handle.cancel({ active: false }).catch(() => undefined);
    this.#live.clear();
  }

  // ---- lanes and tickets --------------------------------------------------------------------

  #lane(endpoint: Uint8Array): Lane {
    const key = keyOf(endpoint);
    let lane = this.#lanes.get(key);
    if (!lane) this.#lanes.set(key, (lane = { key, endpoint: Buffer.from(endpoint), queue: [], running: false, awakeUntil: 0 }));
    return lane;
  }

  #newTicket(endpoint: Buffer, request: DmRequest, path: string, internal: boolean): Ticket {
    let resolve!: (r: DmResult) => void;
    const done = new Promise<DmResult>((r) => (resolve = r));
    const t: Ticket = {
      id: randomBytes(9).toString('base64url'),
      op: request.op,
      request,
      endpoint,
      endpointLabel: endpointLabel(endpoint),
      path,
      state: 'queued',
      result: {},
      submittedAt: this.#now(),
      internal,
      done,
      resolve,
    };
    this.#tickets.set(t.id, t);
    return t;
  }

  #enqueue(lane: Lane, t: Ticket): void {
    lane.queue.push(t);
    t.queueTimer = setTimeout(() => {
      const i = lane.queue.indexOf(t);
      if (i >= 0) {
        lane.queue.splice(i, 1);
        this.#fail(t, 'expired', `still queued after ${Math.round(this.#queueTimeoutMs / 1000)} s: the device did not wake up`);
      }
    }, Math.min(this.#queueTimeoutMs, 2 ** 31 - 1));
    t.queueTimer.unref();
    this.#pump(lane);
  }

  #result(t: Ticket): DmResult {
    return {
      id: t.id,
      op: t.op,
      endpoint: t.endpointLabel,
      path: t.path,
      state: t.state,
      ...t.result,
      submittedAt: t.submittedAt,
      ...(t.sentAt !== undefined ? { sentAt: t.sentAt } : {}),
      ...(t.finishedAt !== undefined ? { finishedAt: t.finishedAt } : {}),
    };
  }

  #end(t: Ticket, state: 'done' | 'failed', result: Partial<DmResult>): void {
    if (t.state === 'done' || t.state === 'failed') return;
    if (t.queueTimer) clearTimeout(t.queueTimer);
    t.state = state;
    t.result = { ...t.result, ...result };
    t.finishedAt = this.#now();
    this.#ended.push(t.id);
    this.#sweepTickets();
    t.resolve(this.#result(t));
  }

  #fail(t: Ticket, failure: DmFailure, message: string, extra: Partial<DmResult> = {}): void {
    this.#end(t, 'failed', { failure, message, ...extra });
  }

  #sweepTickets(): void {
    const cutoff = this.#now() - this.#retentionMs;
    while (this.#ended.length > 0) {
      const t = this.#tickets.get(this.#ended[0]!);
      if (t && this.#ended.length <= MAX_ENDED_TICKETS && (t.finishedAt ?? 0) > cutoff) break;
      this.#tickets.delete(this.#ended.shift()!);
    }
  }

  /** Runs the lane's next request if the device can take it now. */
  #pump(lane: Lane): void {
    if (lane.running || lane.queue.length === 0 || this.#closed) return;
    lane.running = true;
    let progressed = false;
    void this.#next(lane)
      .then((ran) => (progressed = ran))
      .catch((e: unknown) => this.#log.error('device management lane failed', { ep: describeBytes(lane.endpoint), error: errorText(e) }))
      .finally(() => {
        lane.running = false;
        // A sleeping client's lane waits for #awake; otherwise go on with the next request.
        if (progressed && lane.queue.length > 0) setImmediate(() => this.#pump(lane));
      });
  }

  /** Runs the next request; false when the lane must wait (the client sleeps, or is gone). */
  async #next(lane: Lane): Promise<boolean> {
    const reg = await this.#store.registry.getByEndpoint(lane.endpoint);
    if (!reg) {
      for (const t of lane.queue.splice(0)) this.#fail(t, 'deregistered', 'the device is no longer registered');
      return false;
    }
    if (reg.queueMode && lane.awakeUntil <= this.#now()) return false;
    const t = lane.queue.shift();
    if (!t) return false;
    await this.#execute(lane, reg, t);
    return true;
  }

  #awake(lane: Lane): void {
    lane.awakeUntil = this.#now() + this.#awakeMs;
    this.#pump(lane);
  }

  // ---- executing one request ----------------------------------------------------------------

  #client(reg: RegistrationRecord): ClientInfo {
    return { lwm2mVersion: reg.lwm2mVersion, contentFormats: reg.contentFormats, models: this.#models(reg) };
  }

  #models(reg: RegistrationRecord): ModelLookup {
    const versions = new Map<number, string>();
    for (const o of reg.objects) if (o.version !== undefined) versions.set(o.id, o.version);
    return versions.size === 0 ? this.#objects : this.#objects.withVersions(versions);
  }

  async #execute(lane: Lane, reg: RegistrationRecord, t: Ticket): Promise<void> {
    const node = this.#server.nodeFor(reg);
    if (!node) return this.#fail(t, 'unreachable', `no ${reg.security === 'nosec' ? 'CoAP' : 'DTLS'} listener to reach the device through`);
    const peer: PeerAddress = { address: reg.address, port: reg.port };
    let prepared: PreparedRequest;
    try {
      if (t.request.op === 'trigger-update' || t.request.op === 'trigger-bootstrap') {
        const x = await this.#serverInstance(node, peer, reg, t);
        if (x === undefined) return;
        prepared = triggerRequest(t.request.op, x);
        t.path = formatPath(prepared.path);
      } else {
        // Prepared again: the client may have re-registered with other objects or formats meanwhile.
        prepared = prepareRequest(t.request, this.#client(reg));
      }
    } catch (e) {
      if (e instanceof DmError) return this.#fail(t, 'invalid', `no longer valid for the device's registration: ${e.message}`);
      throw e;
    }
    if (t.request.op === 'observe') return this.#observe(lane, node, peer, reg, t, prepared);
    if (t.request.op === 'cancel-observation') return this.#cancelObservation(lane, reg, t);

    const res = await this.#send(lane, node, peer, reg, t, prepared);
    if (!res) return;
    this.#answered(reg, t, prepared, res);
  }

  /** Sends, walking the bodies on 4.15. Undefined when the ticket failed (already ended). */
  async #send(lane: Lane, node: CoapNode, peer: PeerAddress, reg: RegistrationRecord, t: Ticket, p: PreparedRequest, extra: Partial<CoapRequestOptions> = {}): Promise<CoapResponse | undefined> {
    const bodies = p.bodies.length > 0 ? p.bodies : [undefined];
    t.state = 'sent';
    t.sentAt = this.#now();
    let res: CoapResponse | undefined;
    for (const body of bodies) {
      try {
        res = await node.request(peer, {
          method: p.method,
          path: this.#wirePath(reg, p.path),
          ...(p.query.length > 0 ? { query: p.query } : {}),
          ...(p.accept !== undefined ? { accept: p.accept } : {}),
          ...(body ? { contentFormat: body.contentFormat, payload: body.payload } : {}),
          ...(this.#requestTimeoutMs !== undefined ? { timeoutMs: this.#requestTimeoutMs } : {}),
          ...extra,
        });
      } catch (e) {
        this.#noAnswer(lane, reg, t, e);
        return undefined;
      }
      lane.awakeUntil = this.#now() + this.#awakeMs; // it answered: it is awake
      if (res.code !== '4.15') break;
    }
    return res;
  }

  #noAnswer(lane: Lane, reg: RegistrationRecord, t: Ticket, e: unknown): void {
    if (!(e instanceof CoapRequestError)) throw e;
    if (e.reason === 'timeout' && reg.queueMode) lane.awakeUntil = 0; // §5: failed delivery → asleep
    const failure: DmFailure = e.reason === 'timeout' ? 'timeout' : e.reason === 'reset' ? 'reset' : e.reason === 'closed' ? 'shutdown' : 'unreachable';
    this.#log.info('device management request got no answer', { ep: describeBytes(reg.endpoint), op: t.op, path: t.path, failure });
    this.#fail(t, failure, e.message);
  }

  /** The request path on the wire: under the client's alternate root path, if it has one. */
  #wirePath(reg: RegistrationRecord, path: Path): string {
    const root = reg.rootPath === '/' ? '' : reg.rootPath.replace(/\/+$/, '');
    return `${root}${formatPath(path)}`;
  }

  #answered(reg: RegistrationRecord, t: Ticket, p: PreparedRequest, res: CoapResponse): void {
    const success = res.code.startsWith('2.');
    const base: Partial<DmResult> = { code: res.code, success, ...(res.contentFormat !== undefined ? { contentFormat: res.contentFormat } : {}) };
    if (!success) {
      const text = res.payload.length > 0 ? bytesAsText(res.payload) : undefined;
      return this.#end(t, 'done', { ...base, ...(text ? { message: text.slice(0, 500) } : {}) });
    }
    switch (t.op) {
      case 'read': {
        let values;
        try {
          values = decodeValues(p.path, res.contentFormat, res.payload, this.#models(reg));
        } catch (e) {
          if (e instanceof CodecError) return this.#fail(t, 'bad_response', `the answer does not decode: ${e.message}`, base);
          throw e;
        }
        this.#storeValues(reg.endpoint, t.path, values, 'read');
        return this.#end(t, 'done', { ...base, values });
      }
      case 'discover':
        return this.#end(t, 'done', { ...base, links: res.payload.toString('utf8') });
      case 'create': {
        const loc = res.options.filter((o) => o.number === Opt.LocationPath).map((o) => Buffer.from(o.value).toString('utf8'));
        return this.#end(t, 'done', { ...base, ...(loc.length > 0 ? { location: `/${loc.join('/')}` } : {}) });
      }
      default:
        return this.#end(t, 'done', base);
    }
  }

  #storeValues(endpoint: Buffer, path: string, values: readonly PathValue[], source: 'read' | 'notify', observationId?: number, contentFormat?: number): void {
    const rows = values.map((v) => {
      const { path: p, ...value } = v;
      return { path: p, value: value as ValueJson };
    });
    void this.#store.deviceData
      .storeValues(endpoint, path, rows, source, { ...(observationId !== undefined ? { observationId } : {}), ...(contentFormat !== undefined ? { contentFormat } : {}) })
      .catch((e: unknown) => this.#log.error('could not store device values', { ep: describeBytes(endpoint), path, error: errorText(e) }));
  }

  /** The Server instance x whose /1/x/0 is the SSID of the client's credential. */
  async #serverInstance(node: CoapNode, peer: PeerAddress, reg: RegistrationRecord, t: Ticket): Promise<number | undefined> {
    const instances = reg.objects.find((o) => o.id === 1)?.instances ?? [];
    if (instances.length === 1) return instances[0];
    const cred = reg.credentialId !== null ? await this.#store.credentials.get(reg.credentialId) : undefined;
    const ssid = cred?.shortServerId;
    let res: CoapResponse;
    try {
      res = await node.request(peer, { method: 'GET', path: this.#wirePath(reg, [1]), ...(this.#requestTimeoutMs !== undefined ? { timeoutMs: this.#requestTimeoutMs } : {}) });
    } catch (e) {
      this.#noAnswer(this.#lane(reg.endpoint), reg, t, e);
      return undefined;
    }
    if (!res.code.startsWith('2.')) {
      this.#end(t, 'done', { code: res.code, success: false, message: `reading /1 to find this server's instance failed with ${res.code}` });
      return undefined;
    }
    let values;
    try {
      values = decodeValues([1], res.contentFormat, res.payload, this.#models(reg));
    } catch (e) {
      if (e instanceof CodecError) this.#fail(t, 'bad_response', `reading /1 to find this server's instance: ${e.message}`);
      else throw e;
      return undefined;
    }
    const match = values.find((v) => /^\/1\/[0-9]+\/0$/.test(v.path) && 'value' in v && Number(v.value) === ssid);
    if (!match) {
      this.#fail(t, 'bad_response', `no Server instance on the device has Short Server ID ${ssid ?? '(unknown)'}`);
      return undefined;
    }
    return Number(match.path.split('/')[2]);
  }

  // ---- observations -------------------------------------------------------------------------

  async #observe(lane: Lane, node: CoapNode, peer: PeerAddress, reg: RegistrationRecord, t: Ticket, p: PreparedRequest): Promise<void> {
    const stored = await this.#store.deviceData.observation(reg.endpoint, t.path);
    if (!stored) return this.#end(t, 'done', { code: undefined, message: 'the observation was cancelled before it was established' });
    // An observation of the same path still held under this registration: forget it first.
    this.#forget(stored.id);
    t.state = 'sent';
    t.sentAt = this.#now();
    let obs: Observation;
    try {
      obs = await node.observe(
        peer,
        {
          method: 'GET',
          path: this.#wirePath(reg, p.path),
          ...(p.query.length > 0 ? { query: p.query } : {}),
          ...(p.accept !== undefined ? { accept: p.accept } : {}),
          ...(this.#requestTimeoutMs !== undefined ? { timeoutMs: this.#requestTimeoutMs } : {}),
        },
        (n: CoapNotification) => this.#notified(stored.id, reg.endpoint, t.path, n),
      );
    } catch (e) {
      // No answer: the intent stays pending (re-tried after the next Register).
      return this.#noAnswer(lane, reg, t, e);
    }
    lane.awakeUntil = this.#now() + this.#awakeMs;
    const res = obs.response;
    const base: Partial<DmResult> = { code: res.code, success: res.code.startsWith('2.'), ...(res.contentFormat !== undefined ? { contentFormat: res.contentFormat } : {}) };
    if (!res.code.startsWith('2.')) {
      // The client refused (4.04: no such path, 4.05, 4.01 …): the intent goes.
      await this.#store.deviceData.removeObservation(reg.endpoint, t.path);
      const text = res.payload.length > 0 ? bytesAsText(res.payload) : undefined;
      return this.#end(t, 'done', { ...base, ...(text ? { message: text.slice(0, 500) } : {}) });
    }
    let values;
    try {
      values = decodeValues(p.path, res.contentFormat, res.payload, this.#models(reg));
    } catch (e) {
      if (!(e instanceof CodecError)) throw e;
      void obs.observation?.cancel({ active: false }).catch(() => undefined);
      return this.#fail(t, 'bad_response', `the answer does not decode: ${e.message}`, base);
    }
    if (!obs.observation) {
      // A plain 2.05: the client does not notify this path (RFC 7641 §3.1); keeping the intent would only repeat it.
      await this.#store.deviceData.removeObservation(reg.endpoint, t.path);
    } else {
      this.#hold({ observationId: stored.id, registrationId: reg.id, endpoint: reg.endpoint, path: t.path, handle: obs.observation });
      await this.#store.deviceData.activateObservation(stored.id, reg.id, obs.observation.token, res.contentFormat);
    }
    this.#storeValues(reg.endpoint, t.path, values, 'notify', undefined, res.contentFormat);
    this.#end(t, 'done', obs.observation ? { ...base, values } : { ...base, values, message: 'the device answered without Observe: it does not notify this path' });
  }

  async #cancelObservation(lane: Lane, reg: RegistrationRecord, t: Ticket): Promise<void> {
    const removed = await this.#store.deviceData.removeObservation(reg.endpoint, t.path);
    const live = removed ? this.#live.get(removed.id) : undefined;
    if (!removed) return this.#end(t, 'done', { success: false, message: `${t.path} is not observed` });
    if (!live || live.handle.closed) {
      if (live) this.#live.delete(removed.id);
      return this.#end(t, 'done', { success: true, message: 'the observation was not established on the device; removed' });
    }
    this.#live.delete(removed.id);
    t.state = 'sent';
    t.sentAt = this.#now();
    try {
      const res = await live.handle.cancel({ active: true, ...(this.#requestTimeoutMs !== undefined ? { timeoutMs: this.#requestTimeoutMs } : {}) });
      lane.awakeUntil = this.#now() + this.#awakeMs;
      this.#end(t, 'done', res ? { code: res.code, success: res.code.startsWith('2.') } : { success: true });
    } catch (e) {
      // Forgotten anyway: the next notification gets RST (passive cancel).
      this.#noAnswer(lane, reg, t, e);
    }
  }

  #notified(observationId: number, endpoint: Buffer, path: string, n: CoapNotification): void {
    const lane = this.#lanes.get(keyOf(endpoint));
    if (lane) this.#awake(lane);
    if (!n.code.startsWith('2.')) {
      // The handle closes itself (final notification); #hold's listener makes the intent pending.
      this.#log.info('observation ended by the device', { ep: describeBytes(endpoint), path, code: n.code });
      return;
    }
    void (async () => {
      const reg = await this.#store.registry.getByEndpoint(endpoint);
      if (!reg) return;
      let values;
      try {
        values = decodeValues(pathOf(path), n.contentFormat, n.payload, this.#models(reg));
      } catch (e) {
        this.#log.info('notification does not decode; ignored', { ep: describeBytes(endpoint), path, error: errorText(e) });
        return;
      }
      this.#storeValues(endpoint, path, values, 'notify', observationId, n.contentFormat);
    })().catch((e: unknown) => this.#log.error('could not handle a notification', { error: errorText(e) }));
  }

  #resume(reg: RegistrationRecord, o: ObservationRecord): boolean {
    const node = this.#server.nodeFor(reg);
    if (!node || !o.token) return false;
    const request = { method: 'GET' as const, path: this.#wirePath(reg, pathOf(o.path)), ...(o.accept !== null ? { accept: o.accept } : {}) };
    let handle: ObservationHandle;
    try {
      handle = node.resumeObservation({ address: reg.address, port: reg.port }, o.token, (n: CoapNotification) => this.#notified(o.id, reg.endpoint, o.path, n), { request });
    } catch (e) {
      this.#log.warn('could not listen again for an observation', { ep: describeBytes(reg.endpoint), path: o.path, error: errorText(e) });
      return false;
    }
    this.#hold({ observationId: o.id, registrationId: reg.id, endpoint: reg.endpoint, path: o.path, handle });
    return true;
  }

  /** Keeps a live observation; when the device ends it (an error or a plain 2.05 notification) the intent goes back to pending. */
  #hold(live: LiveObservation): void {
    this.#live.set(live.observationId, live);
    live.handle.onClose((reason) => {
      if (this.#live.get(live.observationId) !== live) return;
      this.#live.delete(live.observationId);
      if (reason === 'error_response' || reason === 'not_observed') {
        void this.#store.deviceData.deactivateObservation(live.observationId).catch(() => undefined);
      }
    });
  }

  /** Stops listening for an observation's notifications (passive: the next CON one gets RST). */
  #forget(observationId: number): void {
    const live = this.#live.get(observationId);
    if (!live) return;
    this.#live.delete(observationId);
    if (!live.handle.closed) void live.handle.cancel({ active: false }).catch(() => undefined);
  }

  // ---- registration changes -----------------------------------------------------------------

  #onChange(c: RegistrationChange): void {
    const reg = c.registration;
    const lane = this.#lane(reg.endpoint);
    switch (c.kind) {
      case 'register': {
        // The client dropped its observations: forget the tokens and re-establish each intent.
        for (const live of [...this.#live.values()]) if (live.endpoint.equals(reg.endpoint)) this.#forget(live.observationId);
        lane.awakeUntil = this.#now() + this.#awakeMs;
        void this.#reestablish(lane, reg).catch((e: unknown) => this.#log.error('could not re-establish observations', { ep: describeBytes(reg.endpoint), error: errorText(e) }));
        this.#pump(lane);
        return;
      }
      case 'update': {
        if (c.previous.address !== reg.address || c.previous.port !== reg.port) {
          for (const live of this.#live.values()) {
            if (live.registrationId !== reg.id) continue;
            try {
              live.handle.movePeer({ address: reg.address, port: reg.port });
            } catch (e) {
              this.#log.warn('could not follow an observation to the new address', { ep: describeBytes(reg.endpoint), path: live.path, error: errorText(e) });
            }
          }
        }
        this.#awake(lane);
        return;
      }
      case 'deregister':
      case 'expire': {
        for (const live of [...this.#live.values()]) if (live.registrationId === reg.id) this.#forget(live.observationId);
        lane.awakeUntil = 0;
        for (const t of lane.queue.splice(0)) this.#fail(t, 'deregistered', c.kind === 'expire' ? 'the registration expired' : 'the device de-registered');
        return;
      }
    }
  }

  async #reestablish(lane: Lane, reg: RegistrationRecord): Promise<void> {
    const wanted = await this.#store.deviceData.observations(reg.endpoint);
    for (const o of wanted) {
      const request: DmRequest = {
        op: 'observe',
        path: o.path,
        ...(o.accept !== null ? { accept: o.accept } : {}),
        ...(Object.keys(o.attributes).length > 0 ? { attributes: o.attributes } : {}),
      };
      const t = this.#newTicket(reg.endpoint, request, o.path, true);
      this.#enqueue(lane, t);
      void t.done.then((r) => {
        if (r.state === 'failed' || r.success === false) this.#log.info('could not re-establish an observation', { ep: describeBytes(reg.endpoint), path: o.path, code: r.code, failure: r.failure });
      });
    }
  }
}

function pathOf(text: string): Path {
  return text.split('/').filter((s) => s !== '').map(Number);
}

function stringRecord(r: Readonly<Record<string, string | number>>): Record<string, string> {
  return Object.fromEntries(Object.entries(r).map(([k, v]) => [k, String(v)]));
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
