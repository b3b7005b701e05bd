/**
 * The client side of the LwM2M registration interface for the simulated device
 * (registration.md §2–§6; § numbers below): Register, Update at lifetime/2, De-register, with
 * one message in flight at a time, from the simulator's single CoapNode (the server's DM
 * requests come back to that 5-tuple, §1).
 *
 * The account (`findRegistrationAccount`): the first non-bootstrap Security instance (lowest
 * instance ID) that has an SSID and a Server instance with the same SSID — or the one with
 * `shortServerId`. Its Server URI (`/0/x/0`) is `coap://`, or `coaps://` with security mode PSK
 * (`/0/x/2` = 0, identity `/0/x/3`, key `/0/x/5`) or RPK (1: own SPKI `/0/x/3`, PKCS#8 private
 * key `/0/x/5`, the server's SPKI `/0/x/4`): the messages to that server then go over a DTLS
 * session (the host's `secure`, transport.ts) kept while the credentials stay the same; or
 * X.509 (2: own certificate `/0/x/3`, key `/0/x/5`, the server's certificate or trust anchors
 * `/0/x/4` per Certificate Usage `/0/x/15`). Certificates with EST (4) → `DtlsNotSupportedError`.
 *
 * Register (§2): `POST /rd?ep=…&lt=…&lwm2m=…&b=…[&Q]`, Content-Format 40, the object list:
 *  - `lt` = `/1/x/1` (or the `lifetime` option, until the server writes `/1/x/1`; 86400 when
 *    the resource is absent);
 *  - `b` = `/1/x/7` (default `U`). 1.0 has queue mode in the binding (`UQ`): with `queueMode`
 *    a `Q` is added; 1.1+ sends the `Q` flag instead and never a `Q` letter in `b` (a 1.0-style
 *    `UQ` in `/1/x/7` of a 1.1 device is sent as `b=U&Q`);
 *  - payload: 1.1+ starts with `</>;rt="oma.lwm2m";ct="…"` (the device's formats, text and
 *    octet-stream left out as always supported); then every object but Security (0) and OSCORE
 *    (21) (§2.2): `</o/i>` per instance, `</o>` for an object without instances, `</o>;ver=x.y`
 *    before its instances when the version differs from the enabler's default (core objects)
 *    or is not 1.0 (others).
 * 2.01: the Location-Path is kept; anything else is a failure (the report says why).
 *
 * Update (§3) at lifetime/2 (`updateIntervalMs` overrides; lifetime 0 = no Updates), or when
 * triggered: `lt`/`b`/`Q` only when changed since the last Register/Update, the object list
 * only when instances were created or deleted. 4.04 → Register again (§3: "Update is not
 * sufficient"). No answer → Register again; if that fails too, it is retried at the update
 * interval until it works (a server restart does not strand the device). Other error codes are
 * reported and the next Update goes out on schedule.
 *
 * De-register (§4): `DELETE` of the location; the registration is over locally before the
 * answer (DM requests arriving meanwhile are refused).
 *
 * A new Register, a De-register and the end of the registration clear the observations (§7.4:
 * "a new Register means all observations are gone"); the host is told (`registrationReset`).
 */
import { CoapRequestError, type CoapNode } from '../coap/coap-node.js';
import type { PeerAddress } from '../coap/endpoint.js';
import { Opt, optionValues } from '../coap/message.js';
import { formatRegisterLinks } from '../lwm2m/linkformat.js';
import type { ObjectInstance } from '../lwm2m/node.js';
import { boolOf, intOf, stringOf, type DeviceModel } from './device-model.js';
import { announcedFormats } from './dm.js';
import type { RegistrationOperation, RegistrationReport, RegistrationTrigger } from './report.js';
import { resolveTarget, samePeer, type Target } from './target.js';
import { dtlsCredentialsOf, type DtlsCredentials } from './transport.js';

export { DtlsNotSupportedError } from './target.js';

export interface RegisterOptions {
  /** The account to register with (its SSID); default: the first one (see the module comment). */
  readonly shortServerId?: number;
  /** `lt` to send instead of `/1/x/1` (until the server writes `/1/x/1`). */
  readonly lifetime?: number;
  /** Register in queue mode (1.0: `b=UQ`; 1.1+: the `Q` flag). */
  readonly queueMode?: boolean;
  /** Update this often instead of at lifetime/2 (tests use short intervals). */
  readonly updateIntervalMs?: number;
  /** Send Updates on the timer (default true). */
  readonly autoUpdate?: boolean;
  /** Per message: give up after this long (default: the node's MAX_TRANSMIT_WAIT). */
  readonly timeoutMs?: number;
}

/** A server account the device can register with. */
export interface RegistrationAccount {
  readonly shortServerId: number;
  readonly securityInstance: number;
  readonly serverInstance: number;
  /** `/0/x/0` as stored. */
  readonly uri: string;
}

export type RegistrationStatus = 'unregistered' | 'registering' | 'registered';

/** Where the device's registration stands. */
export interface RegistrationState {
  readonly status: RegistrationStatus;
  readonly server: string;
  readonly shortServerId: number;
  readonly securityInstance: number;
  readonly serverInstance: number;
  /** `/rd/{id}` while registered. */
  readonly location?: string;
  readonly lifetime?: number;
  readonly binding?: string;
  readonly queueMode?: boolean;
  readonly registeredAt?: number;
  readonly updatedAt?: number;
  /** When the next Update (or retried Register) is due, epoch ms. */
  readonly nextUpdateAt?: number;
}

/**
 * The account to register with: the Security instance with `shortServerId` (or the first
 * non-bootstrap one with an SSID and a matching Server instance). Throws when there is none.
 */
export function findRegistrationAccount(model: DeviceModel, shortServerId?: number): RegistrationAccount {
  const servers = [...model.instances(1).values()].sort((a, b) => a.id - b.id);
  const candidates = [...model.instances(0).values()]
    .filter((i) => boolOf(i, 1) !== true && intOf(i, 10) !== undefined)
    .sort((a, b) => a.id - b.id);
  for (const sec of candidates) {
    const ssid = intOf(sec, 10)!;
    if (shortServerId !== undefined && ssid !== shortServerId) continue;
    const srv = servers.find((s) => intOf(s, 0) === ssid);
    if (!srv) {
      if (shortServerId !== undefined) throw new Error(`the account with SSID ${ssid} (/0/${sec.id}) has no Server instance`);
      continue;
    }
    const uri = stringOf(sec, 0);
    if (!uri) throw new Error(`the account with SSID ${ssid} (/0/${sec.id}) has no server URI`);
    return { shortServerId: ssid, securityInstance: sec.id, serverInstance: srv.id, uri };
  }
  throw new Error(
    shortServerId !== undefined
      ? `the device holds no LwM2M server account with SSID ${shortServerId}`
      : 'the device holds no LwM2M server account (a Security instance with an SSID and its Server instance): bootstrap first',
  );
}

/** The Register payload (§2.2) for the device's current objects and instances. */
export function registrationPayload(model: DeviceModel): string {
  const objects: [number, { version?: string; instances: number[] }][] = [];
  for (const oid of model.supportedObjects) {
    if (oid === 0 || oid === 21) continue; // §2.2: Security and OSCORE MUST NOT be listed
    const version = model.announcedVersion(oid);
    const instances = [...model.instances(oid).keys()].sort((a, b) => a - b);
    objects.push([oid, { ...(version !== undefined ? { version } : {}), instances }]);
  }
  const cts = model.lwm2mVersion === '1.0' ? undefined : announcedFormats(model);
  return formatRegisterLinks({ ...(cts !== undefined ? { contentFormats: cts } : {}), objects });
}

interface Params {
  readonly lifetime: number;
  readonly binding: string;
  readonly queueMode: boolean;
}

interface Sent extends Params {
  readonly objects: string;
}

interface Active extends RegistrationAccount {
  readonly target: Target;
}

/** What the registration client needs from the simulator. */
export interface RegistrationHost {
  readonly endpoint: string;
  readonly model: DeviceModel;
  readonly node: CoapNode;
  /** A new Register goes out, or the registration ended: the observations are gone (§7.4). */
  registrationReset(): void;
  /** Every Register/Update/De-register, when answered (or failed). */
  report(r: RegistrationReport): void;
  /** Messages to `target` go over DTLS with these credentials from now on (coaps://). */
  secure(target: Target, credentials: DtlsCredentials): Promise<void>;
  /** Messages to `target` go plain (coap://). */
  plain(target: Target): Promise<void>;
}

const DEFAULT_LIFETIME = 86400;
/** Cap on retry delays when the interval comes from a long lifetime. */
const MAX_RETRY_MS = 30_000;

export class RegistrationClient {
  private statusValue: RegistrationStatus = 'unregistered';
  private active: Active | undefined;
  private location: string | undefined;
  private sent: Sent | undefined;
  private opts: RegisterOptions = {};
  private lifetimeOverride: number | undefined;
  private chain: Promise<unknown> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private nextUpdateAt: number | undefined;
  private registeredAt: number | undefined;
  private updatedAt: number | undefined;
  private stopped = false;

  constructor(private readonly host: RegistrationHost) {}

  get status(): RegistrationStatus {
    return this.statusValue;
  }

  /** The SSID of the server the device is registered (or registering) with. */
  get shortServerId(): number | undefined {
    return this.statusValue === 'unregistered' ? undefined : this.active?.shortServerId;
  }

  /** The options of the last `register` call (kept for re-registrations). */
  get options(): RegisterOptions {
    return this.opts;
  }

  state(): RegistrationState | undefined {
    const a = this.active;
    if (!a) return undefined;
    return {
      status: this.statusValue,
      server: a.target.uri,
      shortServerId: a.shortServerId,
      securityInstance: a.securityInstance,
      serverInstance: a.serverInstance,
      ...(this.location !== undefined ? { location: this.location } : {}),
      ...(this.sent ? { lifetime: this.sent.lifetime, binding: this.sent.binding, queueMode: this.sent.queueMode } : {}),
      ...(this.registeredAt !== undefined ? { registeredAt: this.registeredAt } : {}),
      ...(this.updatedAt !== undefined ? { updatedAt: this.updatedAt } : {}),
      ...(this.nextUpdateAt !== undefined && this.timer !== undefined ? { nextUpdateAt: this.nextUpdateAt } : {}),
    };
  }

  /**
   * DM requests are served from the server the device registered (or is registering) with:
   * answering while the 2.01 is still under way is harmless and keeps a request that overtook
   * a lost 2.01 from failing (the spec lets a client ignore them until then).
   */
  acceptsFrom(peer: PeerAddress): boolean {
    return this.statusValue !== 'unregistered' && this.active !== undefined && samePeer(this.active.target, peer);
  }

  register(opts: RegisterOptions, trigger: RegistrationTrigger): Promise<RegistrationReport> {
    this.checkOptions(opts);
    this.opts = { ...opts };
    this.lifetimeOverride = opts.lifetime;
    return this.enqueue(() => this.doRegister(trigger, false));
  }

  /** Registers again with the options of the last `register` call (after a re-bootstrap). */
  reregister(trigger: RegistrationTrigger): Promise<RegistrationReport> {
    return this.enqueue(() => this.doRegister(trigger, trigger !== 'call'));
  }

  update(trigger: RegistrationTrigger): Promise<RegistrationReport> {
    if (trigger === 'call' && this.statusValue !== 'registered') return Promise.reject(new Error(`${this.host.endpoint} is not registered`));
    return this.enqueue(() => this.doUpdate(trigger));
  }

  /** Resolves with the De-register's report, or undefined when the device was not registered. */
  deregister(trigger: RegistrationTrigger, timeoutMs?: number): Promise<RegistrationReport | undefined> {
    return this.enqueue(() => this.doDeregister(trigger, timeoutMs));
  }

  /**
   * Disable (`/1/x/4`, §6): De-register now, Register again after `seconds` (the server's
   * `/1/x/5`, default 86400).
   */
  disable(seconds: number): void {
    void this.enqueue(async () => {
      await this.doDeregister('disable');
      this.clearTimer();
      if (this.stopped) return;
      this.nextUpdateAt = Date.now() + seconds * 1000;
      this.timer = setTimeout(() => {
        this.timer = undefined;
        void this.enqueue(() => this.doRegister('disable', true));
      }, Math.min(seconds * 1000, 2 ** 31 - 1));
    }).catch(() => undefined);
  }

  /** The server wrote `/1/x/1`: its value is sent from now on, not the `lifetime` option. */
  lifetimeWritten(): void {
    this.lifetimeOverride = undefined;
  }

  /** No more timers or messages (the simulator closes). */
  stop(): void {
    this.stopped = true;
    this.clearTimer();
  }

  // -------------------------------------------------------------------------------------------

  private checkOptions(o: RegisterOptions): void {
    if (o.lifetime !== undefined && (!Number.isInteger(o.lifetime) || o.lifetime < 0 || o.lifetime > 0xffffffff)) throw new RangeError(`lifetime must be an integer number of seconds, got ${o.lifetime}`);
    if (o.updateIntervalMs !== undefined && !(o.updateIntervalMs > 0)) throw new RangeError(`updateIntervalMs must be positive, got ${o.updateIntervalMs}`);
    if (o.timeoutMs !== undefined && !(o.timeoutMs > 0)) throw new RangeError(`timeoutMs must be positive, got ${o.timeoutMs}`);
  }

  private enqueue<T>(f: () => Promise<T>): Promise<T> {
    const p = this.chain.then(f);
    this.chain = p.catch(() => undefined);
    return p;
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private serverInstance(a: RegistrationAccount): ObjectInstance | undefined {
    const byId = this.host.model.get(1, a.serverInstance);
    if (byId && intOf(byId, 0) === a.shortServerId) return byId;
    return [...this.host.model.instances(1).values()].find((s) => intOf(s, 0) === a.shortServerId);
  }

  /** Lifetime, binding and queue mode as they stand (see the module comment). */
  private params(a: RegistrationAccount): Params {
    const srv = this.serverInstance(a);
    const lifetime = this.lifetimeOverride ?? intOf(srv, 1) ?? this.sent?.lifetime ?? DEFAULT_LIFETIME;
    let binding = stringOf(srv, 7) ?? this.sent?.binding ?? 'U';
    let queueMode = this.opts.queueMode === true;
    if (this.host.model.lwm2mVersion === '1.0') {
      if (queueMode && !binding.includes('Q')) binding = binding.includes('U') ? binding.replace('U', 'UQ') : `${binding}Q`;
      queueMode = binding.includes('Q');
    } else if (binding.includes('Q')) {
      queueMode = true;
      binding = binding.replace(/Q/g, '') || 'U';
    }
    return { lifetime, binding, queueMode };
  }

  private interval(lifetime: number): number | undefined {
    if (this.opts.updateIntervalMs !== undefined) return this.opts.updateIntervalMs;
    return lifetime > 0 ? Math.max(1000, lifetime * 500) : undefined;
  }

  private schedule(ms: number | undefined, what: 'update' | 'retry'): void {
    this.clearTimer();
    if (this.stopped || ms === undefined || this.opts.autoUpdate === false) return;
    this.nextUpdateAt = Date.now() + ms;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.enqueue(() => (what === 'update' && this.statusValue === 'registered' ? this.doUpdate('timer') : this.doRegister('retry', true))).catch(() => undefined);
    }, Math.min(ms, 2 ** 31 - 1));
  }

  private scheduleRetry(): void {
    const base = this.interval(this.sent?.lifetime ?? this.lifetimeOverride ?? DEFAULT_LIFETIME) ?? MAX_RETRY_MS;
    this.schedule(this.opts.updateIntervalMs ?? Math.min(base, MAX_RETRY_MS), 'retry');
  }

  private report(
    operation: RegistrationOperation, trigger: RegistrationTrigger, a: Active, started: number, p: Params,
    result: { outcome: RegistrationReport['outcome']; code?: string; diagnostic?: string; location?: string },
    query: readonly string[], objects: string | undefined,
  ): RegistrationReport {
    const r: RegistrationReport = {
      endpoint: this.host.endpoint,
      operation,
      outcome: result.outcome,
      trigger,
      server: a.target.uri,
      shortServerId: a.shortServerId,
      securityInstance: a.securityInstance,
      serverInstance: a.serverInstance,
      lwm2mVersion: this.host.model.lwm2mVersion,
      ...(result.code !== undefined ? { code: result.code } : {}),
      ...(result.location !== undefined ? { location: result.location } : {}),
      ...(result.diagnostic !== undefined ? { diagnostic: result.diagnostic } : {}),
      query,
      ...(objects !== undefined ? { objects } : {}),
      lifetime: p.lifetime,
      binding: p.binding,
      queueMode: p.queueMode,
      at: started,
      durationMs: Date.now() - started,
    };
    this.host.report(r);
    return r;
  }

  private failure(e: unknown): { outcome: 'timeout' | 'error'; diagnostic: string } {
    if (e instanceof CoapRequestError) return { outcome: e.reason === 'timeout' ? 'timeout' : 'error', diagnostic: e.message };
    return { outcome: 'error', diagnostic: e instanceof Error ? e.message : String(e) };
  }

  private async doRegister(trigger: RegistrationTrigger, retryOnFailure: boolean): Promise<RegistrationReport> {
    if (this.stopped) throw new Error('the simulator is closed');
    const model = this.host.model;
    const account = findRegistrationAccount(model, this.opts.shortServerId);
    const what = `LwM2M server (SSID ${account.shortServerId})`;
    // Credentials first: an unusable coaps:// account fails before any name lookup.
    const creds = /^coaps:/i.test(account.uri) ? dtlsCredentialsOf(model.get(0, account.securityInstance), account.uri, what) : undefined;
    const target = await resolveTarget(account.uri, this.host.node.endpoint.type, what);
    if (target.secure && creds) await this.host.secure(target, creds);
    else await this.host.plain(target);
    const a: Active = { ...account, target };
    const p = this.params(account);
    const version = model.lwm2mVersion;
    const query = [`ep=${this.host.endpoint}`, `lt=${p.lifetime}`, `lwm2m=${version}`, `b=${p.binding}`, ...(p.queueMode && version !== '1.0' ? ['Q'] : [])];
    const objects = registrationPayload(model);
    this.clearTimer();
    this.host.registrationReset();
    this.statusValue = 'registering';
    this.active = a;
    this.location = undefined;
    this.sent = undefined;
    const started = Date.now();
    let result: { outcome: RegistrationReport['outcome']; code?: string; diagnostic?: string; location?: string };
    try {
      const res = await this.host.node.request(target, {
        method: 'POST', path: '/rd', query, contentFormat: 40, payload: objects,
        ...(this.opts.timeoutMs !== undefined ? { timeoutMs: this.opts.timeoutMs } : {}),
      });
      const segments = optionValues(res.options, Opt.LocationPath).map((b) => b.toString('utf8'));
      if (res.code === '2.01' && segments.length > 0) {
        this.location = `/${segments.join('/')}`;
        this.statusValue = 'registered';
        this.sent = { ...p, objects };
        this.registeredAt = this.updatedAt = Date.now();
        this.schedule(this.interval(p.lifetime), 'update');
        return this.report('register', trigger, a, started, p, { outcome: 'success', code: res.code, location: this.location }, query, objects);
      }
      result = res.code === '2.01'
        ? { outcome: 'error', code: res.code, diagnostic: 'the 2.01 has no Location-Path' }
        : { outcome: 'rejected', code: res.code, ...(res.payload.length > 0 ? { diagnostic: res.payload.toString('utf8') } : {}) };
    } catch (e) {
      result = this.failure(e);
    }
    this.statusValue = 'unregistered';
    if (retryOnFailure) this.scheduleRetry();
    return this.report('register', trigger, a, started, p, result, query, objects);
  }

  private async doUpdate(trigger: RegistrationTrigger): Promise<RegistrationReport> {
    const a = this.active;
    const sent = this.sent;
    const location = this.location;
    if (this.statusValue !== 'registered' || !a || !sent || location === undefined) return this.doRegister(trigger, true);
    const p = this.params(a);
    const objects = registrationPayload(this.host.model);
    const query: string[] = [];
    if (p.lifetime !== sent.lifetime) query.push(`lt=${p.lifetime}`);
    if (p.binding !== sent.binding) query.push(`b=${p.binding}`);
    if (p.queueMode && !sent.queueMode && this.host.model.lwm2mVersion !== '1.0') query.push('Q');
    const payload = objects !== sent.objects ? objects : undefined;
    this.clearTimer();
    const started = Date.now();
    try {
      const res = await this.host.node.request(a.target, {
        method: 'POST', path: location, ...(query.length > 0 ? { query } : {}),
        ...(payload !== undefined ? { contentFormat: 40, payload } : {}),
        ...(this.opts.timeoutMs !== undefined ? { timeoutMs: this.opts.timeoutMs } : {}),
      });
      if (res.code === '2.04') {
        this.sent = { ...p, objects };
        this.updatedAt = Date.now();
        this.schedule(this.interval(p.lifetime), 'update');
        return this.report('update', trigger, a, started, p, { outcome: 'success', code: res.code, location }, query, payload);
      }
      const diagnostic = res.payload.length > 0 ? { diagnostic: res.payload.toString('utf8') } : {};
      const r = this.report('update', trigger, a, started, sent, { outcome: 'rejected', code: res.code, location, ...diagnostic }, query, payload);
      if (res.code === '4.04') {
        // §3: the registration is gone at the server; an Update is not sufficient.
        this.statusValue = 'unregistered';
        this.location = undefined;
        await this.doRegister('reregister', true);
      } else {
        this.schedule(this.interval(sent.lifetime), 'update');
      }
      return r;
    } catch (e) {
      if (this.stopped) return this.report('update', trigger, a, started, sent, { ...this.failure(e), location }, query, payload);
      const r = this.report('update', trigger, a, started, sent, { ...this.failure(e), location }, query, payload);
      this.statusValue = 'unregistered';
      this.location = undefined;
      await this.doRegister('reregister', true);
      return r;
    }
  }

  private async doDeregister(trigger: RegistrationTrigger, timeoutMs?: number): Promise<RegistrationReport | undefined> {
    this.clearTimer();
    const a = this.active;
    const location = this.location;
    const sent = this.sent;
    if (this.statusValue !== 'registered' || !a || location === undefined || !sent) {
      if (this.statusValue !== 'unregistered') this.host.registrationReset();
      this.statusValue = 'unregistered';
      return undefined;
    }
    this.statusValue = 'unregistered';
    this.location = undefined;
    this.host.registrationReset();
    const started = Date.now();
    let result: { outcome: RegistrationReport['outcome']; code?: string; diagnostic?: string; location?: string };
    try {
      const t = timeoutMs ?? this.opts.timeoutMs;
      const res = await this.host.node.request(a.target, { method: 'DELETE', path: location, ...(t !== undefined ? { timeoutMs: t } : {}) });
      result = res.code === '2.02'
        ? { outcome: 'success', code: res.code, location }
        : { outcome: 'rejected', code: res.code, location, ...(res.payload.length > 0 ? { diagnostic: res.payload.toString('utf8') } : {}) };
    } catch (e) {
      result = { ...this.failure(e), location };
    }
    return this.report('deregister', trigger, a, started, sent, result, [], undefined);
  }
}
