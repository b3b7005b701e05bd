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
 *
 * Registration (issue 4; registration.md, cited as "reg §n"): after a successful bootstrap,
 * `register()` sends Register to the first (or the chosen) server account from the same node,
 * keeps the registration up (Update at lifetime/2, registration.ts) and answers device
 * management (dm.ts) and Observe (observe.ts) from that server. Routing of an incoming request:
 *   1. a bootstrap session runs → the bootstrap interface, as above;
 *   2. it comes from the server the device is registered (or registering) with → DM;
 *   3. otherwise → 4.01 while registered ("not a server of this device": it has no access
 *      rights, reg §7.7), else 4.00 as above.
 * DM effects (reg §6): a write of the registered server's lifetime or binding, a Create or a
 * Delete → an Update; Execute `/1/x/8` → 2.04 then an Update; `/1/x/9` (1.1+) → 2.04, then
 * De-register, a bootstrap from the BS account's URI and a Register with what it gave; `/1/x/4`
 * → De-register, Register again after `/1/x/5` s; other executions (e.g. `/3/0/4` Reboot) are
 * only recorded (`executions`). `setValue` changes a resource as the device itself would (for
 * tests and demos) and notifies observers. `close()` De-registers first (bounded wait).
 *
 * DTLS (transport.ts): a `coaps://` bootstrap server is reached over DTLS with the credentials
 * of the BS account (`bootstrapPsk`, `bootstrapRpk` or `bootstrapX509` at start: the device's
 * enrolled bootstrap credentials, kept in /0/0/2..5 and /0/0/15), a `coaps://` LwM2M server with
 * the PSK, raw public keys or certificate its Security instance was given (hand-off with mode
 * psk or rpk; security mode 2 as any bootstrap server may write it). Each such server gets its
 * own DTLS socket and session; the node above sees one endpoint, so everything else is the same
 * over coap:// and coaps://. Certificates with EST (mode 4) are refused with `DtlsNotSupportedError`.
 */
import type { AddressInfo } from 'node:net';
import { CoapNode, CoapRequestError, type CoapIncomingRequest, type CoapResponder, type TransmissionParams } from '../coap/coap-node.js';
import { UdpEndpoint } from '../coap/udp-endpoint.js';
import type { PeerInfo } from '../coap/endpoint.js';
import { Opt, peekHeader, RST, uintOption } from '../coap/message.js';
import { CodecError } from '../lwm2m/errors.js';
import { compositeCodecFor } from '../lwm2m/formats/index.js';
import { ObjectRegistry, type ObjectModel } from '../lwm2m/model.js';
import { N, recordsToObjects, type LwM2MObject, type ObjectInstance, type Resource } from '../lwm2m/node.js';
import { formatPath, MAX_ID, parsePath, validatePath, type Path } from '../lwm2m/path.js';
import { V, type Value } from '../lwm2m/value.js';
import {
  boolOf, DEFAULT_ACCEPT_FORMATS, DEFAULT_RESOURCE_FORMATS, DeviceModel, intOf, SIM_LWM2M_VERSIONS, sharedRegistry, stringOf,
  type OpResult, type SimLwM2MVersion,
} from './device-model.js';
import {
  applyAttributeChange, attributeProblem, attributeTarget, AttributeStore, coerceValue, dmCreate, dmDelete, dmDiscover, dmExecute,
  dmRead, dmWrite, dmWriteAttributes, parseAttributeQuery, type DmAnswer, type NotificationAttributes, type SimValue,
} from './dm.js';
import { Observations, type ObservationInfo } from './observe.js';
import { RegistrationClient, type RegisterOptions, type RegistrationState } from './registration.js';
import {
  extractAccounts, type BootstrapOutcome, type BootstrapReport, type RegistrationReport, type SimEvent, type SimOperation, type SimRequestLog,
} from './report.js';
import { resolveTarget, type ServerTarget, type Target } from './target.js';
import { resolveClientRpk } from '../dtls/client-rpk.js';
import { resolveClientX509 } from '../dtls/client-x509.js';
import { dtlsCredentialsOf, SimTransport, type SimDtlsOptions } from './transport.js';
import type { DtlsClientEndpoint } from '../dtls/client.js';

export type { ServerTarget } from './target.js';

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
  /** Objects beyond 0–3 and 21 the device implements (from the shipped registry or `objectModels`). */
  readonly extraObjects?: readonly number[];
  /** Object definitions to add to the shipped registry (their objects are implemented too). */
  readonly objectModels?: readonly ObjectModel[];
  /** Told about requests, bootstraps, Register/Update/De-register, notifications, executions. */
  readonly onEvent?: (e: SimEvent) => void;
  /**
   * The device's enrolled bootstrap credentials (PSK): written to the BS account /0/0 (mode
   * PSK), used for a `coaps://` bootstrap server. Text identities are sent as UTF-8.
   */
  readonly bootstrapPsk?: { readonly identity: Uint8Array | string; readonly key: Uint8Array };
  /**
   * The device's enrolled bootstrap credentials as raw public keys (not with `bootstrapPsk`):
   * written to the BS account /0/0 (mode RPK: /0/0/3 `publicKey` SPKI DER, /0/0/5 `privateKey`
   * PKCS#8 DER, /0/0/4 `serverPublicKey` SPKI DER when given - the bootstrap server's key,
   * checked in the handshake), used for a `coaps://` bootstrap server.
   */
  readonly bootstrapRpk?: { readonly publicKey: Uint8Array; readonly privateKey: Uint8Array; readonly serverPublicKey?: Uint8Array };
  /**
   * The device's enrolled bootstrap credentials as an X.509 certificate (not with `bootstrapPsk`
   * or `bootstrapRpk`): written to the BS account /0/0 (mode certificate: /0/0/3 `certificate` -
   * the chain, leaf first, concatenated DER -, /0/0/5 `privateKey` PKCS#8 DER, and /0/0/4 with
   * /0/0/15: `serverCertificate`, the bootstrap server's certificate matched exactly (usage 3,
   * domain-issued), or `trustAnchors`, concatenated, that its chain must lead to, its certificate
   * naming the host of the bootstrap URI (usage 2, trust anchor assertion); neither: any
   * certificate the server proves (usage 3, empty /0/0/4)). Used for a `coaps://` bootstrap server.
   */
  readonly bootstrapX509?: {
    readonly certificate: Uint8Array | readonly Uint8Array[];
    readonly privateKey: Uint8Array;
    readonly serverCertificate?: Uint8Array;
    readonly trustAnchors?: readonly Uint8Array[];
  };
  /** DTLS timers and suites for coaps:// servers (tests use short timers). */
  readonly dtls?: SimDtlsOptions;
}

/** An Execute the device received from its server (and answered 2.04). */
export interface ExecutionRecord {
  readonly path: string;
  /** The text/plain arguments ('' without). */
  readonly args: string;
  readonly at: number;
}

export interface CloseOptions {
  /** De-register first when registered (default true). */
  readonly deregister?: boolean;
  /** Wait at most this long for the De-register's answer (default 2000 ms). */
  readonly timeoutMs?: number;
}

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

interface Session {
  readonly target: Target;
  readonly trigger: 'call' | 'rebootstrap';
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

/** What a request from the registered server is (reg §7.1). */
function classifyDm(req: CoapIncomingRequest, path: Path | undefined, observe: number | undefined, model: DeviceModel): SimOperation {
  if (path === undefined) return 'other';
  switch (req.method) {
    case 'GET':
      if (req.accept === 40) return 'discover';
      if (observe === 0) return 'observe';
      if (observe === 1) return 'cancel-observation';
      return 'read';
    case 'PUT':
      // Write-Attributes: PUT with only Uri-Query options (reg §7.4).
      return req.contentFormat === undefined && req.payload.length === 0 ? 'write-attributes' : 'write';
    case 'POST': {
      if (path.length === 1) return 'create';
      if (path.length === 2) return 'write';
      if (path.length === 3) {
        // A POST on a multiple-instance writable resource is a partial update; else an Execute.
        const m = model.models.resource(path[0]!, path[2]!);
        return m && m.multiple && m.operations.includes('W') ? 'write' : 'execute';
      }
      return 'other';
    }
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
  private readonly transport: SimTransport;
  private readonly model: DeviceModel;
  private readonly fault: SimulatorOptions['fault'];
  private readonly log: SimRequestLog[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  private session: Session | undefined;
  private packRunning = false;
  /** Set between a bootstrap call's checks and its session start (the URI may need a DNS lookup). */
  private reserved = false;
  private closing: Promise<void> | undefined;
  private readonly onEvent: SimulatorOptions['onEvent'];
  private readonly reg: RegistrationClient;
  private readonly attrs = new AttributeStore();
  private readonly obs: Observations;
  private readonly executionLog: ExecutionRecord[] = [];
  private readonly registrationLog: RegistrationReport[] = [];
  /** Timeout of the last bootstrap, reused for the one a Bootstrap-Request Trigger starts. */
  private lastBootstrapTimeoutMs = DEFAULT_BOOTSTRAP_TIMEOUT_MS;
  private rebootstrapping: Promise<void> | undefined;

  private constructor(opts: SimulatorOptions, version: SimLwM2MVersion, model: DeviceModel, node: CoapNode, transport: SimTransport) {
    this.endpoint = opts.endpoint;
    this.lwm2mVersion = version;
    this.pct = opts.pct;
    this.model = model;
    this.node = node;
    this.transport = transport;
    this.fault = opts.fault;
    this.onEvent = opts.onEvent;
    this.reg = new RegistrationClient({
      endpoint: opts.endpoint,
      model,
      node,
      registrationReset: () => this.obs.clear(),
      report: (r) => {
        this.registrationLog.push(r);
        this.emit({ kind: 'registration', report: r });
      },
      secure: (target, creds) => this.transport.secureRoute(target, creds),
      plain: (target) => this.transport.plainRoute(target),
    });
    this.obs = new Observations({
      send: (datagram, peer) => this.node.endpoint.send(datagram, peer.port, peer.address),
      read: (path, cf) => dmRead(this.model, path, cf),
      value: (path) => this.valueAt(path),
      attributes: (path) => this.attrs.effective(path),
      defaults: () => {
        const ssid = this.reg.shortServerId;
        const srv = ssid === undefined ? undefined : [...this.model.instances(1).values()].find((i) => intOf(i, 0) === ssid);
        const pmin = intOf(srv, 2);
        const pmax = intOf(srv, 3);
        return { ...(pmin !== undefined ? { pmin } : {}), ...(pmax !== undefined ? { pmax } : {}) };
      },
      onEvent: (e) =>
        this.emit(e.kind === 'notify'
          ? { kind: 'notification', path: e.path, token: e.token, observe: e.observe, code: e.code }
          : { kind: 'observation-ended', path: e.path, token: e.token, reason: e.reason }),
    });
    // Reactive cancel (RFC 7641 §3.6): a RST answering a notification ends its observation.
    node.endpoint.on('message', (msg, peer) => {
      const h = peekHeader(msg);
      if (h !== undefined && h.type === RST && h.code === 0) this.obs.onReset(peer, h.messageId);
    });
  }

  private emit(e: SimEvent): void {
    if (!this.onEvent) return;
    try {
      this.onEvent(e);
    } catch {
      // a listener must not break the device
    }
  }

  static async start(opts: SimulatorOptions): Promise<DeviceSimulator> {
    if (typeof opts.endpoint !== 'string' || opts.endpoint === '') throw new TypeError('endpoint must be a non-empty string');
    const version = opts.lwm2mVersion ?? '1.1';
    if (!SIM_LWM2M_VERSIONS.includes(version)) throw new RangeError(`lwm2mVersion must be one of ${SIM_LWM2M_VERSIONS.join(', ')}`);
    if (opts.pct !== undefined && (!Number.isInteger(opts.pct) || opts.pct < 0 || opts.pct > 65535)) throw new RangeError(`pct ${opts.pct} is not a Content-Format number`);
    checkFormats('acceptFormats', opts.acceptFormats);
    checkFormats('resourceFormats', opts.resourceFormats);
    let bsPsk: { identity: Uint8Array; key: Uint8Array } | undefined;
    if (opts.bootstrapPsk !== undefined) {
      const { identity, key } = opts.bootstrapPsk;
      const id = typeof identity === 'string' ? new TextEncoder().encode(identity) : identity;
      if (!(id instanceof Uint8Array) || id.length === 0 || id.length > 0xffff) throw new RangeError('bootstrapPsk.identity: 1..65535 bytes');
      if (!(key instanceof Uint8Array) || key.length === 0 || key.length > 0xffff) throw new RangeError('bootstrapPsk.key: 1..65535 bytes');
      bsPsk = { identity: Uint8Array.from(id), key: Uint8Array.from(key) };
    }
    let bsRpk: { publicKey: Uint8Array; privateKey: Uint8Array; serverPublicKey: Uint8Array } | undefined;
    if (opts.bootstrapRpk !== undefined) {
      if (bsPsk) throw new RangeError('give bootstrapPsk or bootstrapRpk, not both');
      const { publicKey, privateKey, serverPublicKey } = opts.bootstrapRpk;
      // Checked here (parse, P-256, halves belong together) so a bad key fails at start, not at the handshake.
      resolveClientRpk({ publicKey, privateKey, ...(serverPublicKey ? { serverPublicKey } : {}) });
      bsRpk = { publicKey: Uint8Array.from(publicKey), privateKey: Uint8Array.from(privateKey), serverPublicKey: Uint8Array.from(serverPublicKey ?? []) };
    }
    let bsX509: { certificate: Uint8Array; privateKey: Uint8Array; serverCertificate: Uint8Array; usage: number } | undefined;
    if (opts.bootstrapX509 !== undefined) {
      if (bsPsk || bsRpk) throw new RangeError('give one of bootstrapPsk, bootstrapRpk and bootstrapX509');
      const { certificate, privateKey, serverCertificate, trustAnchors } = opts.bootstrapX509;
      if (serverCertificate !== undefined && trustAnchors !== undefined && trustAnchors.length > 0) {
        throw new RangeError('bootstrapX509: give serverCertificate or trustAnchors, not both');
      }
      // Checked here (parse, P-256, key belongs to the leaf) so bad material fails at start, not at the handshake.
      resolveClientX509({ certificate, privateKey, ...(serverCertificate ? { serverCertificate } : {}), ...(trustAnchors ? { trustAnchors } : {}) });
      const anchored = trustAnchors !== undefined && trustAnchors.length > 0;
      bsX509 = {
        certificate: Uint8Array.from(certificate instanceof Uint8Array ? certificate : Buffer.concat(certificate.map((c) => Buffer.from(c)))),
        privateKey: Uint8Array.from(privateKey),
        serverCertificate: Uint8Array.from(anchored ? Buffer.concat(trustAnchors.map((c) => Buffer.from(c))) : serverCertificate ?? []),
        usage: anchored ? 2 : 3,
      };
    }
    const shared = await sharedRegistry();
    const registry = opts.objectModels && opts.objectModels.length > 0 ? new ObjectRegistry().addAll(shared.all()).addAll(opts.objectModels) : shared;
    const extraObjects = [...(opts.extraObjects ?? []), ...(opts.objectModels ?? []).map((m) => m.id)];
    const model = DeviceModel.create(registry, {
      lwm2mVersion: version,
      aclSupport: opts.aclSupport ?? true,
      oscoreSupport: opts.oscoreSupport ?? true,
      ...(opts.objectVersions ? { objectVersions: opts.objectVersions } : {}),
      acceptFormats: opts.acceptFormats ?? DEFAULT_ACCEPT_FORMATS[version],
      resourceFormats: opts.resourceFormats ?? DEFAULT_RESOURCE_FORMATS[version],
      ...(extraObjects.length > 0 ? { extraObjects } : {}),
    });
    // Initial state: the BS account at /0/0 (nosec, PSK with bootstrapPsk, RPK with bootstrapRpk,
    // certificate with bootstrapX509) and the Device instance /3/0.
    model.set(0, N.instance(0, [
      N.resource(0, V.string(opts.bootstrapUri ?? '')),
      N.resource(1, V.boolean(true)),
      N.resource(2, V.integer(bsPsk ? 0 : bsRpk ? 1 : bsX509 ? 2 : 3)),
      N.resource(3, V.opaque(bsPsk ? bsPsk.identity : bsRpk ? bsRpk.publicKey : bsX509 ? bsX509.certificate : new Uint8Array(0))),
      N.resource(4, V.opaque(bsRpk ? bsRpk.serverPublicKey : bsX509 ? bsX509.serverCertificate : new Uint8Array(0))),
      N.resource(5, V.opaque(bsPsk ? bsPsk.key : bsRpk ? bsRpk.privateKey : bsX509 ? bsX509.privateKey : new Uint8Array(0))),
      ...(bsX509 ? [N.resource(15, V.integer(bsX509.usage))] : []),
    ]));
    model.set(3, N.instance(0, [
      N.resource(0, V.string('lwbs')),
      N.resource(1, V.string('lwbs-simulator')),
      N.resource(2, V.string(opts.endpoint)),
      N.resource(3, V.string(version)),
      N.resource(9, V.integer(100)),
      N.multi(11, [[0, V.integer(0)]]),
      N.resource(13, V.time(Math.floor(Date.now() / 1000))),
      N.resource(14, V.string('+00:00')),
      N.resource(16, V.string('U')),
    ]));
    for (const obj of opts.seed ?? []) for (const inst of obj.instances.values()) model.set(obj.id, inst);
    const holder: { sim?: DeviceSimulator } = {};
    const host = opts.host ?? '127.0.0.1';
    const udp = await UdpEndpoint.create({ host, port: opts.port ?? 0 });
    const transport = new SimTransport(udp, host, opts.dtls);
    const node = new CoapNode(transport, {
      ...(opts.transmission ? { transmission: opts.transmission } : {}),
      handler: (req, res, peer) => {
        if (holder.sim) holder.sim.handle(req, res, peer);
        else res.send('5.03');
      },
    });
    holder.sim = new DeviceSimulator(opts, version, model, node, transport);
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

  /**
   * The DTLS client endpoint the device uses for the server at `peer`, once it reached it over
   * `coaps://` (undefined otherwise): its sessions, CIDs, and `rebind()` to play a NAT rebinding.
   */
  dtlsEndpoint(peer: { readonly address: string; readonly port: number }): DtlsClientEndpoint | undefined {
    return this.transport.dtlsEndpoint(peer);
  }

  address(): AddressInfo {
    return this.node.address();
  }

  /**
   * De-registers when registered (bounded wait, see `CloseOptions`), ends a running session
   * (outcome `error`), stops answering, releases the socket.
   */
  close(opts: CloseOptions = {}): Promise<void> {
    if (this.closing) return this.closing;
    const session = this.session;
    this.closing = (async () => {
      if (session) this.endSession(session, 'error', 'simulator closed');
      for (const t of this.timers) clearTimeout(t);
      this.timers.clear();
      if (opts.deregister !== false && this.reg.status === 'registered') {
        const wait = opts.timeoutMs ?? 2000;
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          this.reg.deregister('close', wait).catch(() => undefined),
          new Promise<void>((resolve) => (timer = setTimeout(resolve, wait + 100))),
        ]);
        if (timer) clearTimeout(timer);
      }
      this.reg.stop();
      this.obs.clear();
      await this.node.close();
    })();
    return this.closing;
  }

  private assertIdle(): void {
    if (this.closing) throw new Error('the simulator is closed');
    if (this.running) throw new Error(`a bootstrap is already running on simulator ${this.endpoint}`);
    if (this.reg.status !== 'unregistered') throw new Error(`simulator ${this.endpoint} is registered with ${this.reg.state()?.server ?? 'a server'}: deregister() first`);
  }

  /**
   * Resolves the server while no other bootstrap may start; the caller starts its session right
   * after. A coaps:// server is reached over DTLS with the BS account's PSK, raw public keys or
   * certificate (see `bootstrapPsk`, `bootstrapRpk`, `bootstrapX509`).
   */
  private async reserve(server: ServerTarget): Promise<Target> {
    this.reserved = true;
    try {
      const coaps = typeof server === 'string' && /^coaps:/i.test(server);
      const bs = this.model.bootstrapAccount();
      const mode = intOf(bs, 2);
      if (coaps && (mode === undefined || mode === 3)) {
        throw new Error(`the bootstrap server is ${server} (DTLS): the device needs its bootstrap PSK credentials (bootstrapPsk, or --psk-identity/--psk-key), raw public keys (bootstrapRpk, or --rpk-key) or certificate (bootstrapX509, or --x509-cert/--x509-key)`);
      }
      const creds = coaps ? dtlsCredentialsOf(bs, server, 'bootstrap server') : undefined;
      const target = await resolveTarget(server, this.node.endpoint.type);
      if (this.closing) throw new Error('the simulator is closed');
      if (target.secure && creds) await this.transport.secureRoute(target, creds);
      else await this.transport.plainRoute(target);
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
  bootstrap(server: ServerTarget, o: BootstrapOptions = {}): Promise<BootstrapReport> {
    return this.runBootstrap(server, o, 'call');
  }

  private async runBootstrap(server: ServerTarget, o: BootstrapOptions, trigger: Session['trigger']): Promise<BootstrapReport> {
    this.assertIdle();
    const timeoutMs = o.timeoutMs ?? DEFAULT_BOOTSTRAP_TIMEOUT_MS;
    if (!(timeoutMs > 0)) throw new RangeError(`timeoutMs must be positive, got ${timeoutMs}`);
    this.lastBootstrapTimeoutMs = timeoutMs;
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
        trigger,
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
    const report = this.report('bootstrap', s.target.uri, s.started, outcome, s.requestCode, diagnostic, s.requests.slice());
    s.resolve(report);
    this.emit({ kind: 'bootstrap', report, trigger: s.trigger });
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

  // ---- registration (reg §2–§6) ---------------------------------------------------------------

  /**
   * Registers with the first (or `opts.shortServerId`'s) server account the device holds and
   * keeps the registration up (see registration.ts). Resolves with the report: `outcome`
   * `success` with `code` 2.01 and `location`, or `rejected` (the server's code and
   * diagnostic), `timeout`, `error`. Rejects for misuse: no usable account (bootstrap first), a
   * `coaps://` account without PSK, RPK or certificate credentials (certificate with EST: `DtlsNotSupportedError`), a
   * bootstrap running, the simulator closed. Registering again while registered sends a new Register.
   */
  async register(opts: RegisterOptions = {}): Promise<RegistrationReport> {
    if (this.closing) throw new Error('the simulator is closed');
    if (this.running) throw new Error(`a bootstrap is running on simulator ${this.endpoint}`);
    return this.reg.register(opts, 'call');
  }

  /** Sends an Update now (parameters and object list only when changed). Rejects when not registered. */
  update(): Promise<RegistrationReport> {
    return this.reg.update('call');
  }

  /** Sends De-register; resolves with its report, or undefined when the device was not registered. */
  deregister(opts: { readonly timeoutMs?: number } = {}): Promise<RegistrationReport | undefined> {
    return this.reg.deregister('call', opts.timeoutMs);
  }

  /** Where the registration stands; undefined before the first `register()`. */
  get registration(): RegistrationState | undefined {
    return this.reg.state();
  }

  /** Every Register, Update and De-register sent, with its answer, in order. */
  get registrations(): readonly RegistrationReport[] {
    return this.registrationLog;
  }

  /** Every Execute answered 2.04, in order. */
  get executions(): readonly ExecutionRecord[] {
    return this.executionLog;
  }

  /** The observations the registered server holds on this device. */
  get observations(): readonly ObservationInfo[] {
    return this.obs.list();
  }

  /** Attributes written with Write-Attributes at exactly `path`. */
  attributes(path: Path | string): NotificationAttributes | undefined {
    return this.attrs.get(typeof path === 'string' ? parsePath(path) : path);
  }

  /** Resolves when a Bootstrap-Request Trigger's bootstrap and Register are done (at once when none runs). */
  async settled(): Promise<void> {
    while (this.rebootstrapping) await this.rebootstrapping;
  }

  /** The value of a resource (`/o/i/r`) or resource instance (`/o/i/r/ri`), or undefined. */
  value(path: Path | string): Value | undefined {
    return this.valueAt(typeof path === 'string' ? parsePath(path) : validatePath(path));
  }

  private valueAt(path: Path): Value | undefined {
    if (path.length < 3) return undefined;
    const r = this.model.get(path[0]!, path[1]!)?.resources.get(path[2]!);
    if (!r) return undefined;
    if (path.length === 3) return r.kind === 'resource' ? r.value : undefined;
    return r.kind === 'multiResource' ? r.instances.get(path[3]!) : undefined;
  }

  /**
   * Changes a resource (`/o/i/r`) or a resource instance (`/o/i/r/ri`) as the device itself
   * would (a sensor reading, the battery level) and notifies the observers. A plain value is
   * converted to the resource's type (`setValue('/3/0/9', 42)`); throws RangeError when the
   * path or the value does not fit the object model.
   */
  setValue(path: Path | string, value: SimValue): void {
    const p = typeof path === 'string' ? parsePath(path) : validatePath(path);
    if (p.length !== 3 && p.length !== 4) throw new RangeError(`setValue needs a resource or resource instance path, got ${formatPath(p)}`);
    const [oid, iid, rid] = p as [number, number, number];
    if (!this.model.supports(oid)) throw new RangeError(`object ${oid} is not supported by this device`);
    const inst = this.model.get(oid, iid);
    if (!inst) throw new RangeError(`${formatPath([oid, iid])} does not exist`);
    const m = this.model.models.resource(oid, rid);
    if (!m || !this.model.supportsResource(oid, rid)) throw new RangeError(`${formatPath([oid, iid, rid])} is not a resource of this device`);
    const v = coerceValue(this.model, oid, rid, value);
    let r: Resource;
    if (p.length === 3) {
      if (m.multiple) throw new RangeError(`${formatPath(p)} is a multiple-instance resource: give a resource instance path`);
      r = N.resource(rid, v);
    } else {
      if (!m.multiple) throw new RangeError(`${formatPath(p.slice(0, 3))} is a single-instance resource`);
      const old = inst.resources.get(rid);
      const values = new Map(old?.kind === 'multiResource' ? old.instances : []);
      values.set(p[3]!, v);
      r = N.multi(rid, [...values].sort((a, b) => a[0] - b[0]));
    }
    const problem = this.model.valueProblem(oid, iid, r);
    if (problem !== undefined) throw new RangeError(problem);
    const resources = new Map<number, Resource>(inst.resources);
    resources.set(rid, r);
    this.model.set(oid, N.instance(iid, [...resources.values()].sort((a, b) => a.id - b.id)));
    this.obs.changed([p]);
  }

  /**
   * Bootstrap-Request Trigger (reg §6): De-register, bootstrap from the BS account's URI, then
   * Register with the (new) account. Runs in the background after the 2.04.
   */
  private rebootstrap(): void {
    if (this.rebootstrapping || this.closing) return;
    const run = (async () => {
      await this.reg.deregister('rebootstrap').catch(() => undefined);
      if (this.closing) return;
      const uri = stringOf(this.model.bootstrapAccount(), 0);
      if (!uri) return;
      try {
        await this.runBootstrap(uri, { timeoutMs: this.lastBootstrapTimeoutMs }, 'rebootstrap');
      } catch {
        return; // closed meanwhile, or the URI cannot be used
      }
      if (this.closing) return;
      // Also after a failed bootstrap: the old account may still be there (registration.ts retries).
      await this.reg.reregister('rebootstrap').catch(() => undefined);
    })();
    const tracked: Promise<void> = run.finally(() => {
      if (this.rebootstrapping === tracked) this.rebootstrapping = undefined;
    });
    this.rebootstrapping = tracked;
  }

  // ---- incoming requests ---------------------------------------------------------------------

  private handle(req: CoapIncomingRequest, res: CoapResponder, peer: PeerInfo): void {
    const path = lwm2mPathOf(req.uriPath);
    const s = this.session;
    const dm = s === undefined && this.reg.acceptsFrom(peer);
    const observe = uintOption(req.options, Opt.Observe);
    const operation = dm ? classifyDm(req, path, observe, this.model) : classify(req, path);
    const entry: SimRequestLog = {
      index: this.log.length,
      at: Date.now(),
      method: req.method ?? req.code,
      path: req.path,
      operation,
      ...(req.contentFormat !== undefined ? { contentFormat: req.contentFormat } : {}),
      ...(req.accept !== undefined ? { accept: req.accept } : {}),
      payloadLength: req.payload.length,
      ...(dm ? { dm: true } : {}),
      ...(dm && operation === 'write' ? { writeMode: req.method === 'PUT' ? ('replace' as const) : ('partial' as const) } : {}),
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
      this.emit({ kind: 'request', request: entry });
      return;
    }
    const answer = (): void => {
      if (this.closing) return;
      let result: DmAnswer;
      let after: (() => void) | undefined;
      if (fault?.code !== undefined) {
        entry.fault = 'code';
        result = fault.diagnostic !== undefined ? { code: fault.code, payload: fault.diagnostic } : { code: fault.code };
      } else if (dm) {
        ({ result, after } = this.processDm(operation, req, path, peer));
      } else if (!s && this.reg.status !== 'unregistered') {
        result = { code: '4.01', payload: 'not the LwM2M server this device is registered with' };
      } else {
        ({ result, after } = this.process(operation, req, path, peer, s));
      }
      entry.code = result.code;
      if (result.contentFormat !== undefined) entry.responseFormat = result.contentFormat;
      if (result.ignored) entry.ignored = result.ignored;
      if (!result.code.startsWith('2') && typeof result.payload === 'string') entry.diagnostic = result.payload;
      try {
        // An error answer to an Observe goes out without payload (CoapNode's Responder: RFC 7641 §4.2).
        res.send(result.code, {
          ...(result.contentFormat !== undefined ? { contentFormat: result.contentFormat } : {}),
          ...(result.payload !== undefined ? { payload: result.payload } : {}),
          ...(result.options !== undefined ? { options: result.options } : {}),
        });
      } catch {
        // the node is closing; nothing to answer any more
      }
      this.emit({ kind: 'request', request: entry });
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

  // ---- device management (reg §6, §7) --------------------------------------------------------

  private processDm(operation: SimOperation, req: CoapIncomingRequest, path: Path | undefined, peer: PeerInfo): { result: DmAnswer; after?: () => void } {
    const m = this.model;
    const fail = (code: string, text: string): { result: DmAnswer } => ({ result: { code, payload: text } });
    if (path === undefined) return fail('4.04', `${req.path} is not an LwM2M path`);
    switch (operation) {
      case 'read':
        return { result: dmRead(m, path, req.accept) };
      case 'cancel-observation':
        // Active cancel (reg §7.5): GET with Observe=1 and the token; answered like a Read.
        this.obs.cancel(peer, req.token);
        return { result: dmRead(m, path, req.accept) };
      case 'observe': {
        let own: NotificationAttributes = {};
        if (req.query.length > 0 && m.lwm2mVersion === '1.2') {
          // 1.2: attributes in the Observe request apply to this observation only (reg §7.4).
          const t = attributeTarget(m, path);
          if ('refusal' in t) return { result: t.refusal };
          const change = parseAttributeQuery(req.query, { level: path.length, lwm2mVersion: m.lwm2mVersion, ...(t.resourceType !== undefined ? { resourceType: t.resourceType } : {}) });
          if (typeof change === 'string') return fail('4.00', change);
          own = applyAttributeChange(undefined, change);
          const problem = attributeProblem(own);
          if (problem !== undefined) return fail('4.00', problem);
        }
        const result = dmRead(m, path, req.accept);
        if (!result.code.startsWith('2.') || result.contentFormat === undefined) return { result };
        const payload = typeof result.payload === 'string' ? Buffer.from(result.payload) : result.payload ?? new Uint8Array(0);
        // Always a payload (possibly empty): node-coap adds the Observe option only to one.
        return { result: { ...result, payload }, after: () => this.obs.add(peer, req.token, path, result.contentFormat!, payload, own) };
      }
      case 'discover': {
        const depth = req.query.find((q) => q.startsWith('depth='))?.slice(6);
        return { result: dmDiscover(m, this.attrs, path, depth) };
      }
      case 'write': {
        const result = dmWrite(m, path, req.method === 'PUT', req.contentFormat, req.payload);
        return { result, after: () => this.afterDmChange(result) };
      }
      case 'write-attributes': {
        const result = dmWriteAttributes(m, this.attrs, path, req.query);
        return { result, after: () => result.code.startsWith('2.') && this.obs.attributesChanged() };
      }
      case 'execute': {
        const result = dmExecute(m, path, req.payload);
        return { result, after: () => this.afterExecute(result, path, req.payload) };
      }
      case 'create': {
        const result = dmCreate(m, path, req.contentFormat, req.payload);
        return { result, after: () => this.afterDmChange(result) };
      }
      case 'delete': {
        const result = dmDelete(m, path);
        if (result.code.startsWith('2.') && path.length === 2) this.attrs.removeUnder(path);
        return { result, after: () => this.afterDmChange(result) };
      }
      default:
        return fail('4.05', `${req.method ?? req.code} ${req.path} is not a device management operation`);
    }
  }

  /** Observers, and an Update when the registration's parameters or object list changed (reg §3, §6). */
  private afterDmChange(r: DmAnswer): void {
    if (!r.code.startsWith('2.')) return;
    if (r.changed) this.obs.changed(r.changed);
    const ssid = this.reg.shortServerId;
    let update = r.objectsChanged === true;
    for (const p of r.changed ?? []) {
      if (p[0] !== 1 || p.length < 2 || ssid === undefined || intOf(this.model.get(1, p[1]!), 0) !== ssid) continue;
      if (p.length === 2 || p[2] === 1) this.reg.lifetimeWritten();
      if (p.length === 2 || p[2] === 1 || p[2] === 7) update = true;
    }
    if (update && this.reg.status === 'registered') this.reg.update('dm').catch(() => undefined);
  }

  private afterExecute(r: DmAnswer, path: Path, payload: Buffer): void {
    if (!r.code.startsWith('2.')) return;
    const args = payload.toString('utf8');
    this.executionLog.push({ path: formatPath(path), args, at: Date.now() });
    this.emit({ kind: 'execute', path: formatPath(path), args });
    const [oid, iid, rid] = path as [number, number, number];
    if (oid !== 1) return;
    const srv = this.model.get(1, iid);
    const forUs = intOf(srv, 0) === this.reg.shortServerId;
    if (rid === 8 && forUs && this.reg.status === 'registered') this.reg.update('dm').catch(() => undefined);
    else if (rid === 9) this.rebootstrap();
    else if (rid === 4 && forUs) this.reg.disable(intOf(srv, 5) ?? 86400);
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
      default:
        if (path === undefined) return fail('4.00', `${req.path} is not a bootstrap interface path`);
        return fail('4.05', `${req.method ?? req.code} is not a bootstrap operation`);
    }
  }
}
