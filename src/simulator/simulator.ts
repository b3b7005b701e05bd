/**
 * `DeviceSimulator`: an LwM2M client's bootstrap side over real UDP (issue 3 part 6), used by
 * the end-to-end tests, the bench and `lwbs simulate`. One CoapNode (one socket) per device, so
 * the server's requests reach it on the 5-tuple it used for `POST /bs` (§1). Section numbers (§n)
 * refer to /work/shared/spec/bootstrap.md; the data model and every operation's answer are in
 * device-model.ts.
 *
 * A session (`bootstrap()`):
 *  1. `POST /bs?ep=…[&pct=…]` (§2; a 1.0 device never sends `pct`). Not 2.04 → `rejected`.
 *  2. Serve the server's Discover / Read / Write / Delete until Bootstrap-Finish (§5–§9). The
 *     inactivity deadline is re-armed on every request (as Wakaama re-arms EXCHANGE_LIFETIME, §10).
 *  3. Finish: the consistency check (§9) answers 2.04 (`success`) or 4.06 (`inconsistent`); the
 *     session ends either way. On any unsuccessful end the BS account is restored as it was before
 *     the session (§9: "C keeps the BS account as it was"); other data written stays (like Leshan).
 * Requests that arrive outside a session, or from another address than the bootstrap server's,
 * are answered 4.00 (§9: "no bootstrap session pending"; §5: Leshan refuses Discover from a
 * non-bootstrap server).
 *
 * Faults: `fault(req)` runs for every incoming request. `{ silent: true }` never answers (the
 * CoAP layer still ACKs a CON after its piggyback delay, so the server waits for a separate
 * response that never comes and times out); `{ code, diagnostic? }` answers that code without
 * doing the operation (a faulted Finish does not end the session); `{ delayMs }` answers after the
 * delay (normally, or with `code`).
 */
import { lookup } from 'node:dns/promises';
import { isIP, type AddressInfo } from 'node:net';
import { CoapNode, CoapRequestError, type CoapIncomingRequest, type CoapResponder, type TransmissionParams } from '../coap/coap-node.js';
import type { PeerAddress, PeerInfo } from '../coap/endpoint.js';
import { CodecError } from '../lwm2m/errors.js';
import { compositeCodecFor } from '../lwm2m/formats/index.js';
import { N, recordsToObjects, type LwM2MObject, type ObjectInstance, type Resource } from '../lwm2m/node.js';
import { MAX_ID, type Path } from '../lwm2m/path.js';
import { V } from '../lwm2m/value.js';
import {
  boolOf, DEFAULT_ACCEPT_FORMATS, DEFAULT_RESOURCE_FORMATS, DeviceModel, SIM_LWM2M_VERSIONS, sharedRegistry, stringOf,
  type OpResult, type SimLwM2MVersion,
} from './device-model.js';
import { extractAccounts, type BootstrapOutcome, type BootstrapReport, type SimOperation, type SimRequestLog } from './report.js';

/** An incoming request as the fault hook sees it. */
export interface SimRequest {
  /** Position among all requests this simulator received (0-based). */
  readonly index: number;
  /** Position within the running session (0-based); -1 outside a session. */
  readonly sessionIndex: number;
  readonly method: string;
  /** Uri-Path as text. */
  readonly path: string;
  /** The LwM2M path, when every segment is a decimal ID. */
  readonly lwm2mPath?: Path;
  readonly operation: SimOperation;
  readonly contentFormat?: number;
  readonly accept?: number;
  readonly query: readonly string[];
  readonly payload: Buffer;
}

/** How to answer one request instead of the normal way (see the module comment). */
export interface SimFault {
  /** Never answer. Wins over everything else. */
  readonly silent?: boolean;
  /** Answer this code (e.g. `5.00`) and do not perform the operation. */
  readonly code?: string;
  /** Diagnostic payload with `code`. */
  readonly diagnostic?: string;
  /** Answer after this many milliseconds. */
  readonly delayMs?: number;
}

export interface SimulatorOptions {
  /** `ep` sent in POST /bs. */
  readonly endpoint: string;
  /** Default 1.1; drives Discover output and format support. */
  readonly lwm2mVersion?: SimLwM2MVersion;
  /** Sent as `pct=` in /bs (a 1.0 device never sends it). */
  readonly pct?: number;
  /** Instance-capable write formats the device decodes; others → 4.15 (defaults per version, §7). */
  readonly acceptFormats?: readonly number[];
  /** Formats also accepted on resource paths (default text and octet-stream, + CBOR 60 from 1.1). */
  readonly resourceFormats?: readonly number[];
  /** Has object 2 (default true); without it ACL writes → 4.04 and Discover omits /2. */
  readonly aclSupport?: boolean;
  /** Has object 21 (default true from LwM2M 1.1; a 1.0 device never has it). */
  readonly oscoreSupport?: boolean;
  /** Object versions that differ from the enabler's defaults (Discover then shows `ver=`). */
  readonly objectVersions?: Readonly<Record<number, string>>;
  /** Extra instances to start with (e.g. an old /0/1 + /1/0 account); same IDs replace the defaults. */
  readonly seed?: readonly LwM2MObject[];
  /** URI of the initial BS account /0/0; default: the server of the first bootstrap(). */
  readonly bootstrapUri?: string;
  /** Local bind, default 127.0.0.1:0. */
  readonly host?: string;
  readonly port?: number;
  /** CoAP timers (tests use short ones). */
  readonly transmission?: Partial<TransmissionParams>;
  readonly fault?: (req: SimRequest) => SimFault | undefined;
}

export type ServerTarget = { readonly address: string; readonly port: number } | string;

export interface BootstrapOptions {
  /** Give up after this long without any request from the server (and for the /bs answer). Default 30 s. */
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

export interface BootstrapPackOptions extends BootstrapOptions {
  /** Accept of GET /bspack: 112 (default, as Anjay), 110 or 11544. */
  readonly accept?: number;
  /** After a failed pack, run a Bootstrap-Request (§3: "After any error C MUST fall back"). */
  readonly fallback?: boolean;
}

export const DEFAULT_BOOTSTRAP_TIMEOUT_MS = 30_000;

interface Target extends PeerAddress {
  readonly uri: string;
}

interface Session {
  readonly target: Target;
  readonly started: number;
  readonly timeoutMs: number;
  readonly requests: SimRequestLog[];
  readonly abort: AbortController;
  /** The BS account when the session began, restored unless the session succeeds. */
  readonly bsSnapshot: ObjectInstance | undefined;
  readonly resolve: (r: BootstrapReport) => void;
  timer?: NodeJS.Timeout;
  requestCode?: string;
  cleanup?: () => void;
}

/** `coap://host[:port]` or `{ address, port }` → an address to send to (names resolved once). */
async function resolveTarget(t: ServerTarget, family: 'udp4' | 'udp6'): Promise<Target> {
  let host: string;
  let port: number;
  if (typeof t === 'string') {
    let url: URL;
    try {
      url = new URL(t);
    } catch {
      throw new Error(`not a URI: ${JSON.stringify(t)}`);
    }
    if (url.protocol === 'coaps:') throw new Error('coaps:// (DTLS) is not supported by the simulator yet; use coap://');
    if (url.protocol !== 'coap:') throw new Error(`the bootstrap server URI must be coap://host[:port], got ${JSON.stringify(t)}`);
    host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    port = url.port === '' ? 5683 : Number(url.port);
  } else {
    host = t.address;
    port = t.port;
  }
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`bad port ${port}`);
  const address = isIP(host) !== 0 ? host : (await lookup(host, { family: family === 'udp6' ? 6 : 4 })).address;
  const shown = address.includes(':') ? `[${address}]` : address;
  return { address, port, uri: `coap://${shown}:${port}` };
}

/** Uri-Path segments as an LwM2M path, when each is a decimal ID (`/bs` is not). */
function lwm2mPathOf(segments: readonly Buffer[]): Path | undefined {
  if (segments.length > 4) return undefined;
  const out: number[] = [];
  for (const s of segments) {
    const t = s.toString('latin1');
    if (!/^(0|[1-9][0-9]{0,4})$/.test(t)) return undefined;
    const id = Number(t);
    if (id > MAX_ID) return undefined;
    out.push(id);
  }
  return out;
}

function classify(req: CoapIncomingRequest, path: Path | undefined): SimOperation {
  if (req.method === 'POST' && req.path === '/bs') return 'finish';
  if (path === undefined) return 'other';
  switch (req.method) {
    case 'GET':
      // Discover carries Accept: 40 (§5); a GET of the root without Accept is taken as one too
      // (there is no Read of the root). Any other GET is a Bootstrap-Read (§6).
      return req.accept === 40 || (req.accept === undefined && path.length === 0) ? 'discover' : 'read';
    case 'PUT':
      return 'write';
    case 'DELETE':
      return 'delete';
    default:
      return 'other';
  }
}

function payloadText(p: Uint8Array): string | undefined {
  return p.length > 0 ? Buffer.from(p.buffer, p.byteOffset, p.byteLength).toString('utf8') : undefined;
}

function checkFormats(name: string, list: readonly number[] | undefined): void {
  if (list === undefined) return;
  for (const cf of list) if (!Number.isInteger(cf) || cf < 0 || cf > 65535) throw new RangeError(`${name}: ${cf} is not a Content-Format number`);
}

export class DeviceSimulator {
  readonly endpoint: string;
  readonly lwm2mVersion: SimLwM2MVersion;
  private readonly pct: number | undefined;
  private readonly node: CoapNode;
  private readonly model: DeviceModel;
  private readonly fault: SimulatorOptions['fault'];
  private readonly log: SimRequestLog[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  private session: Session | undefined;
  private packRunning = false;
  /** Set between a bootstrap call's checks and its session start (the URI may need a DNS lookup). */
  private reserved = false;
  private closing: Promise<void> | undefined;

  private constructor(opts: SimulatorOptions, version: SimLwM2MVersion, model: DeviceModel, node: CoapNode) {
    this.endpoint = opts.endpoint;
    this.lwm2mVersion = version;
    this.pct = opts.pct;
    this.model = model;
    this.node = node;
    this.fault = opts.fault;
  }

  static async start(opts: SimulatorOptions): Promise<DeviceSimulator> {
    if (typeof opts.endpoint !== 'string' || opts.endpoint === '') throw new TypeError('endpoint must be a non-empty string');
    const version = opts.lwm2mVersion ?? '1.1';
    if (!SIM_LWM2M_VERSIONS.includes(version)) throw new RangeError(`lwm2mVersion must be one of ${SIM_LWM2M_VERSIONS.join(', ')}`);
    if (opts.pct !== undefined && (!Number.isInteger(opts.pct) || opts.pct < 0 || opts.pct > 65535)) throw new RangeError(`pct ${opts.pct} is not a Content-Format number`);
    checkFormats('acceptFormats', opts.acceptFormats);
    checkFormats('resourceFormats', opts.resourceFormats);
    const registry = await sharedRegistry();
    const model = DeviceModel.create(registry, {
      lwm2mVersion: version,
      aclSupport: opts.aclSupport ?? true,
      oscoreSupport: opts.oscoreSupport ?? true,
      ...(opts.objectVersions ? { objectVersions: opts.objectVersions } : {}),
      acceptFormats: opts.acceptFormats ?? DEFAULT_ACCEPT_FORMATS[version],
      resourceFormats: opts.resourceFormats ?? DEFAULT_RESOURCE_FORMATS[version],
    });
    // Initial state: the BS account at /0/0 (nosec) and the Device instance /3/0.
    model.set(0, N.instance(0, [
      N.resource(0, V.string(opts.bootstrapUri ?? '')),
      N.resource(1, V.boolean(true)),
      N.resource(2, V.integer(3)),
      N.resource(3, V.opaque(new Uint8Array(0))),
      N.resource(4, V.opaque(new Uint8Array(0))),
      N.resource(5, V.opaque(new Uint8Array(0))),
    ]));
    model.set(3, N.instance(0, [
      N.resource(0, V.string('lwbs')),
      N.resource(1, V.string('lwbs-simulator')),
      N.resource(2, V.string(opts.endpoint)),
      N.resource(3, V.string(version)),
      N.multi(11, [[0, V.integer(0)]]),
      N.resource(16, V.string('U')),
    ]));
    for (const obj of opts.seed ?? []) for (const inst of obj.instances.values()) model.set(obj.id, inst);
    const holder: { sim?: DeviceSimulator } = {};
    const node = await CoapNode.listen({
      host: opts.host ?? '127.0.0.1',
      port: opts.port ?? 0,
      ...(opts.transmission ? { transmission: opts.transmission } : {}),
      handler: (req, res, peer) => {
        if (holder.sim) holder.sim.handle(req, res, peer);
        else res.send('5.03');
      },
    });
    holder.sim = new DeviceSimulator(opts, version, model, node);
    return holder.sim;
  }

  /** The current data model: object ID → object node with its instances. */
  get objects(): ReadonlyMap<number, LwM2MObject> {
    return this.model.snapshot();
  }

  /** One instance of the current data model. */
  instance(objectId: number, instanceId: number): ObjectInstance | undefined {
    return this.model.get(objectId, instanceId);
  }

  /** Every request received since start. */
  get requests(): readonly SimRequestLog[] {
    return this.log;
  }

  /** True while a bootstrap or Bootstrap-Pack runs. */
  get running(): boolean {
    return this.session !== undefined || this.packRunning || this.reserved;
  }

  address(): AddressInfo {
    return this.node.address();
  }

  /** Ends a running session (outcome `error`), stops answering, releases the socket. */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    if (this.session) this.endSession(this.session, 'error', 'simulator closed');
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.closing = this.node.close();
    return this.closing;
  }

  private assertIdle(): void {
    if (this.closing) throw new Error('the simulator is closed');
    if (this.running) throw new Error(`a bootstrap is already running on simulator ${this.endpoint}`);
  }

  /** Resolves the server while no other bootstrap may start; the caller starts its session right after. */
  private async reserve(server: ServerTarget): Promise<Target> {
    this.reserved = true;
    try {
      const target = await resolveTarget(server, this.node.endpoint.type);
      if (this.closing) throw new Error('the simulator is closed');
      return target;
    } finally {
      this.reserved = false;
    }
  }

  // ---- Bootstrap-Request (§2) ----------------------------------------------------------------

  /**
   * POST /bs to the server, then serve its requests until Finish or `timeoutMs` without a
   * request. Resolves with the report; rejects only for misuse (a bad URI, a bootstrap already
   * running, the simulator closed).
   */
  async bootstrap(server: ServerTarget, o: BootstrapOptions = {}): Promise<BootstrapReport> {
    this.assertIdle();
    const timeoutMs = o.timeoutMs ?? DEFAULT_BOOTSTRAP_TIMEOUT_MS;
    if (!(timeoutMs > 0)) throw new RangeError(`timeoutMs must be positive, got ${timeoutMs}`);
    const target = await this.reserve(server);
    const bs = this.model.bootstrapAccount();
    if (bs && !stringOf(bs, 0)) {
      // The BS account's URI is the server it bootstraps from (unless configured at start).
      const resources = new Map<number, Resource>(bs.resources);
      resources.set(0, N.resource(0, V.string(target.uri)));
      this.model.set(0, N.instance(bs.id, [...resources.values()].sort((a, b) => a.id - b.id)));
    }
    return new Promise<BootstrapReport>((resolve) => {
      const s: Session = {
        target,
        started: Date.now(),
        timeoutMs,
        requests: [],
        abort: new AbortController(),
        bsSnapshot: this.model.bootstrapAccount(),
        resolve,
      };
      this.session = s;
      if (o.signal) {
        const signal = o.signal;
        if (signal.aborted) {
          this.endSession(s, 'error', 'aborted');
          return;
        }
        const onAbort = (): void => this.endSession(s, 'error', 'aborted');
        signal.addEventListener('abort', onAbort, { once: true });
        s.cleanup = () => signal.removeEventListener('abort', onAbort);
      }
      const query = [`ep=${this.endpoint}`];
      // §2: pct exists from 1.1; a 1.0 device never sends it.
      if (this.pct !== undefined && this.lwm2mVersion !== '1.0') query.push(`pct=${this.pct}`);
      this.node.request(target, { method: 'POST', path: '/bs', query, timeoutMs, signal: s.abort.signal }).then(
        (res) => {
          if (this.session !== s) return;
          s.requestCode = res.code;
          if (res.code !== '2.04') {
            this.endSession(s, 'rejected', payloadText(res.payload));
            return;
          }
          this.rearm(s);
        },
        (err: unknown) => {
          if (this.session !== s) return;
          const timeout = err instanceof CoapRequestError && err.reason === 'timeout';
          this.endSession(s, timeout ? 'timeout' : 'error', err instanceof Error ? err.message : String(err));
        },
      );
    });
  }

  /** §10: the session fails when no command arrives within the deadline; re-armed on every one. */
  private rearm(s: Session): void {
    if (s.timer) clearTimeout(s.timer);
    s.timer = setTimeout(() => this.endSession(s, 'timeout', `no request from the bootstrap server within ${s.timeoutMs} ms`), s.timeoutMs);
  }

  private endSession(s: Session, outcome: BootstrapOutcome, diagnostic?: string): void {
    if (this.session !== s) return;
    this.session = undefined;
    if (s.timer) clearTimeout(s.timer);
    s.cleanup?.();
    s.abort.abort();
    if (outcome !== 'success') this.restoreBootstrapAccount(s.bsSnapshot);
    s.resolve(this.report('bootstrap', s.target.uri, s.started, outcome, s.requestCode, diagnostic, s.requests.slice()));
  }

  /** §9: after an unsuccessful bootstrap the BS account is as it was before the session. */
  private restoreBootstrapAccount(snapshot: ObjectInstance | undefined): void {
    for (const inst of [...this.model.instances(0).values()]) if (boolOf(inst, 1) === true) this.model.remove(0, inst.id);
    if (snapshot) this.model.set(0, snapshot);
  }

  private report(
    kind: 'bootstrap' | 'pack', server: string, started: number, outcome: BootstrapOutcome,
    requestCode: string | undefined, diagnostic: string | undefined, requests: SimRequestLog[],
  ): BootstrapReport {
    const parts = extractAccounts(this.model);
    return {
      endpoint: this.endpoint,
      lwm2mVersion: this.lwm2mVersion,
      server,
      kind,
      outcome,
      ...(requestCode !== undefined ? { requestCode } : {}),
      ...(diagnostic !== undefined ? { diagnostic } : {}),
      servers: parts.servers,
      ...(parts.bootstrapAccount ? { bootstrapAccount: parts.bootstrapAccount } : {}),
      acl: parts.acl,
      requests,
      objects: this.model.snapshot(),
      durationMs: Date.now() - started,
    };
  }

  // ---- Bootstrap-Pack-Request (§3) -----------------------------------------------------------

  /**
   * LwM2M 1.2 `GET /bspack?ep=` with Accept (default 112, SenML CBOR); applies the pack per §3
   * when it is consistent. With `fallback`, a failed pack is followed by a Bootstrap-Request and
   * that report is returned (with `packAttempt`).
   */
  async bootstrapPack(server: ServerTarget, o: BootstrapPackOptions = {}): Promise<BootstrapReport> {
    if (this.lwm2mVersion !== '1.2') throw new Error(`Bootstrap-Pack-Request is LwM2M 1.2; this device runs ${this.lwm2mVersion}`);
    this.assertIdle();
    const target = await this.reserve(server);
    const accept = o.accept ?? 112;
    const timeoutMs = o.timeoutMs ?? DEFAULT_BOOTSTRAP_TIMEOUT_MS;
    const started = Date.now();
    let outcome: BootstrapOutcome;
    let requestCode: string | undefined;
    let diagnostic: string | undefined;
    this.packRunning = true;
    try {
      const res = await this.node.request(target, {
        method: 'GET', path: '/bspack', query: [`ep=${this.endpoint}`], accept, timeoutMs,
        ...(o.signal ? { signal: o.signal } : {}),
      });
      requestCode = res.code;
      if (res.code !== '2.05') {
        outcome = 'rejected';
        diagnostic = payloadText(res.payload);
      } else {
        const cf = res.contentFormat ?? accept;
        const codec = compositeCodecFor(cf);
        const records = codec.decodeRecords(res.payload, this.model.models);
        const objects = recordsToObjects(codec.name, records, (oid, rid) => this.model.models.resource(oid, rid));
        const { problems } = this.model.applyPack(objects);
        // §3: "If C finds the pack inconsistent it MUST retry with Bootstrap-Request".
        outcome = problems.length > 0 ? 'inconsistent' : 'success';
        if (problems.length > 0) diagnostic = problems.join('; ');
      }
    } catch (e) {
      if (e instanceof CoapRequestError) {
        outcome = e.reason === 'timeout' ? 'timeout' : 'error';
        diagnostic = e.message;
      } else if (e instanceof CodecError) {
        outcome = 'error';
        diagnostic = e.message;
      } else throw e;
    } finally {
      this.packRunning = false;
    }
    if (outcome !== 'success' && o.fallback && !this.closing) {
      const r = await this.bootstrap(server, { timeoutMs, ...(o.signal ? { signal: o.signal } : {}) });
      const packAttempt = { outcome, ...(requestCode !== undefined ? { requestCode } : {}), ...(diagnostic !== undefined ? { diagnostic } : {}) };
      return { ...r, packAttempt, durationMs: Date.now() - started };
    }
    return this.report('pack', target.uri, started, outcome, requestCode, diagnostic, []);
  }

  // ---- incoming requests ---------------------------------------------------------------------

  private handle(req: CoapIncomingRequest, res: CoapResponder, peer: PeerInfo): void {
    const path = lwm2mPathOf(req.uriPath);
    const operation = classify(req, path);
    const s = this.session;
    const entry: SimRequestLog = {
      index: this.log.length,
      at: Date.now(),
      method: req.method ?? req.code,
      path: req.path,
      operation,
      ...(req.contentFormat !== undefined ? { contentFormat: req.contentFormat } : {}),
      ...(req.accept !== undefined ? { accept: req.accept } : {}),
      payloadLength: req.payload.length,
    };
    this.log.push(entry);
    let sessionIndex = -1;
    if (s) {
      sessionIndex = s.requests.length;
      s.requests.push(entry);
      // Only the bootstrap server's commands keep the session alive (§10).
      if (peer.address === s.target.address && peer.port === s.target.port) this.rearm(s);
    }
    const fault = this.fault?.({
      index: entry.index,
      sessionIndex,
      method: entry.method,
      path: req.path,
      ...(path !== undefined ? { lwm2mPath: path } : {}),
      operation,
      ...(req.contentFormat !== undefined ? { contentFormat: req.contentFormat } : {}),
      ...(req.accept !== undefined ? { accept: req.accept } : {}),
      query: req.query,
      payload: req.payload,
    });
    if (fault?.silent) {
      entry.fault = 'silent';
      return;
    }
    const answer = (): void => {
      if (this.closing) return;
      let result: OpResult;
      let after: (() => void) | undefined;
      if (fault?.code !== undefined) {
        entry.fault = 'code';
        result = fault.diagnostic !== undefined ? { code: fault.code, payload: fault.diagnostic } : { code: fault.code };
      } else {
        ({ result, after } = this.process(operation, req, path, peer, s));
      }
      entry.code = result.code;
      if (result.contentFormat !== undefined) entry.responseFormat = result.contentFormat;
      if (result.ignored) entry.ignored = result.ignored;
      if (!result.code.startsWith('2') && typeof result.payload === 'string') entry.diagnostic = result.payload;
      try {
        res.send(result.code, {
          ...(result.contentFormat !== undefined ? { contentFormat: result.contentFormat } : {}),
          ...(result.payload !== undefined ? { payload: result.payload } : {}),
        });
      } catch {
        // the node is closing; nothing to answer any more
      }
      after?.();
    };
    if (fault?.delayMs !== undefined && fault.delayMs > 0) {
      entry.fault = 'delay';
      const t = setTimeout(() => {
        this.timers.delete(t);
        answer();
      }, fault.delayMs);
      this.timers.add(t);
    } else answer();
  }

  private process(
    operation: SimOperation, req: CoapIncomingRequest, path: Path | undefined, peer: PeerInfo, s: Session | undefined,
  ): { result: OpResult; after?: () => void } {
    const fail = (code: string, text: string): { result: OpResult } => ({ result: { code, payload: text } });
    // §9 (Leshan): no bootstrap session pending → 4.00; §5: requests from another peer → 4.00.
    if (!s || this.session !== s) return fail('4.00', 'no bootstrap session pending');
    if (peer.address !== s.target.address || peer.port !== s.target.port) return fail('4.00', 'the request does not come from the bootstrap server');
    switch (operation) {
      case 'discover':
        return { result: this.model.discover(path!) };
      case 'read':
        return { result: this.model.read(path!, req.accept) };
      case 'write':
        return { result: this.model.write(path!, req.contentFormat, req.payload) };
      case 'delete':
        return { result: this.model.delete(path!) };
      case 'finish': {
        // §9: the consistency check decides 2.04 or 4.06; the session ends after the answer.
        const problems = this.model.consistencyProblems();
        if (problems.length === 0) return { result: { code: '2.04' }, after: () => this.endSession(s, 'success') };
        const text = problems.join('; ');
        return { result: { code: '4.06', payload: text }, after: () => this.endSession(s, 'inconsistent', text) };
      }
      case 'other':
        if (path === undefined) return fail('4.00', `${req.path} is not a bootstrap interface path`);
        return fail('4.05', `${req.method ?? req.code} is not a bootstrap operation`);
    }
  }
}
