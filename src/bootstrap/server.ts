/**
 * The bootstrap server: answers `POST /bs` (Bootstrap-Request) and `GET /bspack`
 * (Bootstrap-Pack-Request) on one or more CoAP endpoints, and runs one session per device.
 *
 * Per request (bootstrap.md §2, §14):
 *   route and method (else 4.04 / 4.05) → CON only (a NON request gets 4.00) → query (`ep`, `pct`;
 *   4.00 / 4.15) → admission (admission.ts; 4.00) → session record → per-device credentials
 *   generated and stored *pending* → the plan when no Discover is needed (so a profile that cannot
 *   serve this client is refused at once instead of after the 2.04) → 2.04 → the session
 *   (session.ts), after the device's previous session, if one still runs, was cancelled and has
 *   wound down: there is never more than one request in flight to a device.
 * Every refusal is recorded as a failed session with its cause, so `lwbs sessions list` explains
 * why a device did not get its configuration.
 *
 * Retransmissions of a /bs (same message ID) are answered from the CoAP layer's cache and never
 * reach this module; a new /bs (new message ID) from a device with a running session is a restart
 * by the device, and cancels the old session (its still-pending credentials are retired).
 */
import { randomBytes } from 'node:crypto';
import { CoapNode, maxTransmitWaitMs, type CoapIncomingRequest, type CoapNodeOptions, type CoapResponder } from '../coap/coap-node.js';
import { formatPeer, securityOf, type CoapEndpoint, type PeerInfo } from '../coap/endpoint.js';
import type { UdpEndpointOptions } from '../coap/udp-endpoint.js';
import { compositeCodecFor } from '../lwm2m/formats/index.js';
import { nodeToRecords } from '../lwm2m/node.js';
import { StoreError } from '../store/errors.js';
import type { DeviceAuthInput, NewCredential, Store } from '../store/types.js';
import { describeBytes } from '../util/bytes.js';
import { silentLogger, type Logger } from '../util/log.js';
import { admit, ProfileCache, type Admitted } from './admission.js';
import { CredentialError, generateCredentials, type GeneratedCredential, type ProfileCredentials } from './credentials.js';
import { chooseContentFormat, PlanError, planBootstrap, planBootstrapPack, planDiscover, type BootstrapStep, type RegistrationTarget } from './planner.js';
import type { BootstrapWriteFormat, SecurityMode } from './profile.js';
import { parseBootstrapQuery } from './request.js';
import { runSessionDeferred, SessionAbort, type SessionResult } from './session.js';

export interface BootstrapServerOptions {
  readonly store: Store;
  /** This lwbs's registration server (hand-off URIs and its public key); a function is asked per session. */
  readonly registration: RegistrationTarget | (() => RegistrationTarget);
  readonly log?: Logger;
  /** Give up on one request after this long; default: CoAP's MAX_TRANSMIT_WAIT for the node's timers (93 s). */
  readonly requestTimeoutMs?: number;
  /** Give up on a whole session after this long; default 5 minutes. */
  readonly sessionTimeoutMs?: number;
  /** How long the zero-touch profile list is cached; default 1 s. */
  readonly profileListTtlMs?: number;
  readonly now?: () => number;
  /** Called when a session has ended and its outcome is recorded. */
  readonly onSessionEnd?: (e: SessionEnd) => void;
}

export interface SessionEnd extends SessionResult {
  readonly sessionId: string;
  readonly endpoint: Buffer;
  readonly profile: string;
  readonly durationMs: number;
}

/** Formats a Bootstrap-Pack can be sent in (bootstrap.md §3). */
export const PACK_FORMATS: readonly number[] = [112, 110, 11544];

interface Running {
  readonly id: string;
  readonly controller: AbortController;
  readonly done: Promise<void>;
}

export class BootstrapServer {
  readonly #store: Store;
  readonly #registration: () => RegistrationTarget;
  readonly #log: Logger;
  readonly #requestTimeoutMs: number | undefined;
  readonly #sessionTimeoutMs: number;
  readonly #now: () => number;
  readonly #onSessionEnd: ((e: SessionEnd) => void) | undefined;
  readonly #profiles: ProfileCache;
  readonly #nodes = new Set<CoapNode>();
  /** Running sessions by endpoint (hex). */
  readonly #running = new Map<string, Running>();
  #closing: Promise<void> | undefined;

  constructor(opts: BootstrapServerOptions) {
    this.#store = opts.store;
    const reg = opts.registration;
    this.#registration = typeof reg === 'function' ? reg : () => reg;
    this.#log = opts.log ?? silentLogger;
    this.#requestTimeoutMs = opts.requestTimeoutMs;
    this.#sessionTimeoutMs = opts.sessionTimeoutMs ?? 300_000;
    this.#now = opts.now ?? Date.now;
    this.#onSessionEnd = opts.onSessionEnd;
    this.#profiles = new ProfileCache(opts.store.profiles, { listTtlMs: opts.profileListTtlMs ?? 1000, now: this.#now });
  }

  /** Serves plain CoAP on a new UDP socket. */
  async listen(opts: UdpEndpointOptions & Omit<CoapNodeOptions, 'handler'>): Promise<CoapNode> {
    let node: CoapNode | undefined;
    node = await CoapNode.listen({ ...opts, handler: (req, res, peer) => this.#handle(node!, req, res, peer) });
    this.#nodes.add(node);
    return node;
  }

  /** Serves on an existing endpoint (the DTLS endpoint, issue 5). */
  attach(endpoint: CoapEndpoint, opts: Omit<CoapNodeOptions, 'handler'> = {}): CoapNode {
    let node: CoapNode | undefined;
    node = new CoapNode(endpoint, { ...opts, handler: (req, res, peer) => this.#handle(node!, req, res, peer) });
    this.#nodes.add(node);
    return node;
  }

  /** Sessions running now. */
  get running(): number {
    return this.#running.size;
  }

  /** Resolves when no session runs (tests, benchmarks). */
  async idle(): Promise<void> {
    while (this.#running.size > 0) await Promise.all([...this.#running.values()].map((r) => r.done));
  }

  /** Stops accepting requests, ends running sessions as `shutdown` (recorded), closes the sockets. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      for (const r of this.#running.values()) r.controller.abort(new SessionAbort('shutdown'));
      await this.idle();
      await Promise.all([...this.#nodes].map((n) => n.close()));
    })();
    return this.#closing;
  }

  // -------------------------------------------------------------------------------------------

  async #handle(node: CoapNode, req: CoapIncomingRequest, res: CoapResponder, peer: PeerInfo): Promise<void> {
    const route = req.path === '/bs' ? 'bs' : req.path === '/bspack' ? 'pack' : undefined;
    if (route === undefined) return res.send('4.04');
    if (route === 'bs' && req.method !== 'POST') return res.send('4.05');
    if (route === 'pack' && req.method !== 'GET') return res.send('4.05');
    if (this.#closing) return res.send('5.03', { payload: 'shutting down' });
    const security = securityOf(peer.identity);
    // bootstrap.md §1: every LwM2M request is CON; Leshan refuses a NON one the same way.
    if (!req.confirmable) return res.send('4.00', { payload: 'CON request expected' });

    const q = parseBootstrapQuery(req.uriQuery, { allowPct: route === 'bs' });
    if (!q.ok) {
      await this.#recordRefusal(peer, security, undefined, undefined, q.refusal.code === '4.15' ? 'unsupported_format' : 'bad_request', q.refusal.diagnostic);
      return res.send(q.refusal.code, { payload: q.refusal.diagnostic });
    }
    let admission;
    try {
      admission = await admit(this.#store, this.#profiles, { ...(q.query.endpoint ? { endpoint: q.query.endpoint } : {}), ...(peer.identity ? { identity: peer.identity } : {}) });
    } catch (e) {
      this.#log.error('admission failed', { peer: formatPeer(peer), error: errorText(e) });
      return res.send('5.00', { payload: 'internal error' });
    }
    if (!admission.ok) {
      await this.#recordRefusal(peer, security, q.query.endpoint, undefined, admission.refusal.cause, admission.refusal.detail);
      return res.send('4.00', { payload: admission.refusal.diagnostic });
    }
    const a = admission.admitted;
    if (a.enrolled) this.#log.info('device enrolled (zero-touch)', { ep: describeBytes(a.endpoint), profile: a.profile.name, security });
    if (route === 'bs') return this.#bootstrap(node, res, peer, a, q.query.pct);
    return this.#pack(res, peer, a, req.accept);
  }

  /**
   * Records a refused request as a failed session (start and end in one group commit,
   * store/group-commit.ts), and logs it. Callers answer once it is recorded.
   */
  async #recordRefusal(peer: PeerInfo, security: SecurityMode, endpoint: Buffer | undefined, profile: string | undefined, cause: string, detail: string): Promise<void> {
    this.#log.info('bootstrap refused', { peer: formatPeer(peer), ep: endpoint ? describeBytes(endpoint) : undefined, cause, detail });
    try {
      const id = randomBytes(8).toString('hex');
      await Promise.all([
        this.#store.sessions.start({ id, ...(endpoint ? { endpoint } : {}), peer: formatPeer(peer), security, ...(profile ? { profile } : {}) }),
        this.#store.sessions.finish(id, 'failure', cause, detail),
      ]);
    } catch (e) {
      this.#log.error('could not record a refused bootstrap request', { error: errorText(e) });
    }
  }

  /**
   * Stores, as pending, what the session will give the device for this lwbs's registration
   * server and for other servers with generated credentials, before anything carrying them is sent.
   */
  async #storePending(sessionId: string, a: Admitted, credentials: ProfileCredentials, reg: RegistrationTarget): Promise<void> {
    for (const server of a.profile.servers) {
      const c = credentials.servers.get(server.shortServerId);
      // Hand-off over plain CoAP generates nothing, but the registration server still admits only
      // devices provisioned for it: record that with a `nosec` credential.
      if (!c && !(server.handOff && server.security.mode === 'nosec')) continue;
      const serverUri = server.handOff ? (server.security.mode === 'nosec' ? reg.coap : reg.coaps) : server.uri!;
      const serverPublicKey = server.security.mode === 'rpk' ? (server.handOff ? reg.publicKey : server.security.serverPublicKey) : undefined;
      const rec: NewCredential = {
        endpoint: a.endpoint,
        shortServerId: server.shortServerId,
        serverUri,
        sessionId,
        ...(c ? credentialFields(c) : { mode: 'nosec' as const }),
        ...(serverPublicKey ? { serverPublicKey } : {}),
      };
      await this.#store.credentials.addPending(rec);
    }
  }

  /**
   * Everything that can fail before the 2.04: session record, credentials, and the plan when it
   * needs no Discover. Returns undefined after answering the request itself with an error.
   */
  async #prepare(
    res: CoapResponder,
    peer: PeerInfo,
    a: Admitted,
    sessionInit: { pct?: BootstrapWriteFormat; contentFormat?: number; lwm2mVersion?: string },
    plan: (credentials: ProfileCredentials, reg: RegistrationTarget) => BootstrapStep[] | undefined,
  ): Promise<{ id: string; credentials: ProfileCredentials; planned: BootstrapStep[] | undefined; reg: RegistrationTarget } | undefined> {
    const reg = this.#registration();
    let id: string;
    try {
      const s = await this.#store.sessions.start({
        endpoint: a.endpoint,
        peer: formatPeer(peer),
        security: a.security,
        profile: a.profile.name,
        ...(sessionInit.pct !== undefined ? { preferredFormat: sessionInit.pct } : {}),
        ...(sessionInit.contentFormat !== undefined ? { contentFormat: sessionInit.contentFormat } : {}),
        ...(sessionInit.lwm2mVersion !== undefined ? { lwm2mVersion: sessionInit.lwm2mVersion } : {}),
      });
      id = s.id;
    } catch (e) {
      this.#log.error('could not record a bootstrap session', { ep: describeBytes(a.endpoint), error: errorText(e) });
      res.send('5.00', { payload: 'internal error' });
      return undefined;
    }
    const fail = async (code: string, diagnostic: string, cause: string, detail: string): Promise<undefined> => {
      res.send(code, { payload: diagnostic });
      this.#log.warn('bootstrap refused', { session: id, ep: describeBytes(a.endpoint), profile: a.profile.name, cause, detail });
      await this.#store.credentials.retirePendingForSession(id);
      await this.#store.sessions.finish(id, 'failure', cause, detail);
      return undefined;
    };
    try {
      const credentials = generateCredentials(a.profile, a.endpoint);
      await this.#storePending(id, a, credentials, reg);
      return { id, credentials, planned: plan(credentials, reg), reg };
    } catch (e) {
      if (e instanceof PlanError) {
        // Our configuration (no server key for rpk hand-off) is a server fault; the rest is about this client.
        if (e.code === 'missing_server_key' || e.code === 'missing_credential') return fail('5.00', 'bootstrap server configuration error', e.code, e.message);
        return fail('4.00', 'no bootstrap configuration for this client (LwM2M version or capabilities)', e.code, e.message);
      }
      if (e instanceof StoreError && e.code === 'duplicate') return fail('5.00', 'bootstrap server configuration error', 'credential_conflict', e.message);
      if (e instanceof CredentialError) return fail('5.00', 'bootstrap server configuration error', 'credential_error', e.message);
      this.#log.error('bootstrap preparation failed', { session: id, error: errorText(e) });
      return fail('5.00', 'internal error', 'internal', errorText(e));
    }
  }

  /** Ends the device's running session (a restart by the device) and returns it, to be awaited. */
  #supersede(endpoint: Buffer): Running | undefined {
    const prev = this.#running.get(endpoint.toString('hex'));
    prev?.controller.abort(new SessionAbort('superseded'));
    return prev;
  }

  async #bootstrap(node: CoapNode, res: CoapResponder, peer: PeerInfo, a: Admitted, pct: BootstrapWriteFormat | undefined): Promise<void> {
    const needsDiscover = planDiscover(a.profile) !== undefined;
    // Without Discover the session's first write format is known now: recorded with the session
    // row rather than by an update once it runs.
    const contentFormat = needsDiscover ? undefined : chooseContentFormat(a.profile, pct, undefined)[0];
    const sessionInit = { ...(pct !== undefined ? { pct } : {}), ...(contentFormat !== undefined ? { contentFormat } : {}) };
    const prepared = await this.#prepare(res, peer, a, sessionInit, (credentials, registration) =>
      needsDiscover ? undefined : planBootstrap({ profile: a.profile, endpoint: a.endpoint, ...(pct !== undefined ? { pct } : {}), registration, credentials }),
    );
    if (!prepared) return;
    const prev = this.#supersede(a.endpoint);
    // bootstrap.md §2 step 5: the 2.04 goes out before any request to the device.
    res.send('2.04');

    const { id, credentials, planned, reg } = prepared;
    const key = a.endpoint.toString('hex');
    const controller = new AbortController();
    const startedAt = this.#now();
    const deadline = setTimeout(() => controller.abort(new SessionAbort('deadline')), this.#sessionTimeoutMs);
    const log = this.#log.child({ session: id, ep: describeBytes(a.endpoint) });
    // One info line per session (at its end) keeps a storm's log cheap; the start is debug.
    log.debug('bootstrap started', { peer: formatPeer(peer), profile: a.profile.name, security: a.security, pct });

    const run = async (): Promise<void> => {
      if (prev) await prev.done;
      let result: SessionResult;
      let recorded: Promise<void> | undefined;
      try {
        ({ result, recorded } = await runSessionDeferred({
          id,
          node,
          peer,
          store: this.#store,
          log,
          profile: a.profile,
          endpoint: a.endpoint,
          ...(pct !== undefined ? { pct } : {}),
          registration: reg,
          credentials,
          ...(planned ? { planned } : {}),
          ...(planned && contentFormat !== undefined ? { recordedContentFormat: contentFormat } : {}),
          requestTimeoutMs: this.#requestTimeoutMs ?? maxTransmitWaitMs(node.transmission),
          signal: controller.signal,
          now: this.#now,
        }));
      } catch (e) {
        log.error('bootstrap session failed', { error: errorText(e) });
        result = { outcome: 'failure', cause: 'internal', detail: errorText(e), credentialsSent: true };
      }
      clearTimeout(deadline);
      // The outcome is queued in this same turn, right behind the last request record (so both
      // usually go in one group commit); then the records are awaited.
      await this.#conclude(id, a, credentials, result, log).catch((e: unknown) => log.error('could not record the session outcome', { error: errorText(e) }));
      await recorded?.catch((e: unknown) => log.error('could not record the requests of the session', { error: errorText(e) }));
      const durationMs = this.#now() - startedAt;
      log.info('bootstrap ended', {
        outcome: result.outcome, cause: result.cause, detail: result.detail, ms: durationMs,
        peer: formatPeer(peer), profile: a.profile.name, security: a.security,
      });
      this.#onSessionEnd?.({ ...result, sessionId: id, endpoint: a.endpoint, profile: a.profile.name, durationMs });
    };
    const done = run().finally(() => {
      if (this.#running.get(key)?.id === id) this.#running.delete(key);
    });
    this.#running.set(key, { id, controller, done });
    await done;
  }

  /** Records the outcome and moves the session's credentials on (design.md, "The hand-off"). */
  async #conclude(id: string, a: Admitted, credentials: ProfileCredentials, result: SessionResult, log: Logger): Promise<void> {
    const store = this.#store;
    if (result.outcome === 'success') {
      await store.credentials.activateForSession(id);
      if (credentials.bootstrap) {
        // The device now authenticates to us with the bootstrap account it was just given.
        await store.devices.setAuth(a.endpoint, deviceAuthOf(credentials.bootstrap));
        log.info('bootstrap credentials of the device replaced', { mode: credentials.bootstrap.mode });
      }
      await store.sessions.finish(id, 'success');
      return;
    }
    // Retire what the device cannot have: nothing carrying credentials was sent, or the device
    // itself restarted. Credentials of a session cut off after writes stay pending: the device may
    // have applied them (a lost Finish answer), and the registration server accepts them.
    if (result.outcome === 'cancelled' || !result.credentialsSent) await store.credentials.retirePendingForSession(id);
    await store.sessions.finish(id, result.outcome, result.cause, result.detail);
  }

  async #pack(res: CoapResponder, peer: PeerInfo, a: Admitted, accept: number | undefined): Promise<void> {
    // Anjay asks in SenML CBOR by default; without Accept we answer in it too (bootstrap.md §3).
    const cf = accept ?? 112;
    if (!PACK_FORMATS.includes(cf)) {
      await this.#recordRefusal(peer, a.security, a.endpoint, a.profile.name, 'unsupported_format', `Bootstrap-Pack-Request with Accept ${cf}`);
      return res.send('4.06', { payload: 'Accept must be 112 (SenML CBOR), 110 (SenML JSON) or 11544 (LwM2M CBOR)' });
    }
    let payload: Uint8Array | undefined;
    const prepared = await this.#prepare(res, peer, a, { contentFormat: cf, lwm2mVersion: '1.2' }, (credentials, registration) => {
      const objects = planBootstrapPack({ profile: a.profile, endpoint: a.endpoint, registration, credentials });
      payload = compositeCodecFor(cf).encodeRecords(objects.flatMap((o) => nodeToRecords([o.id], o)));
      return [];
    });
    if (!prepared || !payload) return;
    this.#supersede(a.endpoint);
    const startedAt = this.#now();
    // No Finish follows a pack: its credentials stay pending until the device registers with them.
    // Recorded (one group commit) before the answer goes out.
    try {
      await Promise.all([
        this.#store.sessions.addRequest(prepared.id, { method: 'PACK', path: '/bspack', contentFormat: cf, payloadSize: payload.length, responseCode: '2.05', startedAt, durationMs: 0 }),
        this.#store.sessions.finish(prepared.id, 'success', undefined, 'Bootstrap-Pack sent'),
      ]);
    } finally {
      res.send('2.05', { contentFormat: cf, payload });
    }
    this.#log.info('bootstrap pack sent', { session: prepared.id, ep: describeBytes(a.endpoint), profile: a.profile.name, contentFormat: cf, bytes: payload.length });
  }
}

function credentialFields(c: GeneratedCredential): Pick<NewCredential, 'mode' | 'pskIdentity' | 'pskKey' | 'publicKey' | 'privateKey'> {
  return c.mode === 'psk'
    ? { mode: 'psk', pskIdentity: c.identity, pskKey: c.key.reveal() }
    : { mode: 'rpk', publicKey: c.publicKey, privateKey: c.privateKey.reveal() };
}

function deviceAuthOf(c: GeneratedCredential): DeviceAuthInput {
  return c.mode === 'psk' ? { kind: 'psk', identity: c.identity, key: c.key.reveal() } : { kind: 'rpk', publicKey: c.publicKey };
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
