/**
 * The registration server: Register (`POST /rd`), Update (`POST /rd/{id}`) and De-register
 * (`DELETE /rd/{id}`) on one or more CoAP endpoints (registration.md §2–§5), over the registry in
 * the store (store/registry.ts), with lifetime expiry (expiry.ts).
 *
 * Register, in the spec's order (§2.4):
 *   route and method (other paths 4.04, other methods 4.05) → CON only (NON: 4.00, as Leshan) →
 *   query syntax and link-format payload (4.00, request.ts) → endpoint and hand-off (handoff.ts:
 *   4.00 without `ep`, 4.03 when the device is unknown or not provisioned for this server) →
 *   version (4.12) and the checks that depend on it (4.00) → object list (4.09 when there is
 *   none; `pid` is recorded but not resolved) → the registry: the endpoint's previous
 *   registration is replaced and the credential promoted, in one transaction → 2.01 with
 *   Location-Path `rd`, `{id}` → change listeners (DM may start only now).
 * Update: unknown or expired id → 4.04 (the client must Register again); a request from another
 * security or DTLS identity than the registration's → 4.00 (as Leshan); parameters and an
 * optional new object list (4.00 when malformed) → 2.04, new expiry. A new object list replaces
 * the objects and the root path (it is the complete list, §3); the `ct` formats are kept when it
 * announces none. An Update for a registration whose lifetime ran out before the timer removed
 * it expires it on the spot (event `expire`) and gets 4.04.
 * De-register: 4.04 / 4.00 as for Update → 2.02.
 * Ids: 64 random bits in 11 base64url characters (the store's `newRegistrationId`), so an id
 * cannot be guessed; a Uri-Path segment that cannot be an id is 4.04 without a lookup.
 *
 * Address changes. The registration keeps the address the last Register or Update came from,
 * and requests to the client go there (§1: "it changes when an Update arrives from a new
 * address"). A nosec client that changed address is accepted on an Update and its address
 * updated, rather than refused: over plain CoAP the source address proves nothing either way
 * (whoever can forge an Update can forge a Register), and a NAT rebinding — typical for a
 * queue-mode device that slept — changes the port without the client knowing, so it could not
 * know it "must register again" (§1 applies to a client that sees its own address change). The
 * change is logged and recorded in the event. Over DTLS the identity decides, not the address.
 *
 * Every Register/Update/De-register/expiry and every refused request under /rd is recorded as a
 * registration event; logs are structured (util/log.ts) and never carry secrets.
 */
import { CoapNode, type CoapIncomingRequest, type CoapNodeOptions, type CoapResponder } from '../coap/coap-node.js';
import { formatPeer, identityBytes, securityOf, type CoapEndpoint, type PeerAddress, type PeerInfo } from '../coap/endpoint.js';
import { Opt } from '../coap/message.js';
import type { UdpEndpointOptions } from '../coap/udp-endpoint.js';
import { StoreError } from '../store/errors.js';
import { isRegistrationId } from '../store/registry.js';
import type { RegisterResult, RegistrationPatch, RegistrationRecord, Store } from '../store/types.js';
import { bytesEqual, describeBytes } from '../util/bytes.js';
import { silentLogger, type Logger } from '../util/log.js';
import { ExpiryScheduler } from './expiry.js';
import { authorizeRegistration } from './handoff.js';
import { parseRegistrationPayload, parseRegistrationQuery, resolveRegister, resolveUpdate, type RegisterPayload } from './request.js';

export interface RegistrationServerOptions {
  readonly store: Store;
  /**
   * This server's public URIs, as the bootstrap server writes them into devices (config
   * `registration.publicUri`: `coap://…:5783`, `coaps://…:5784`; earlier URIs too, while devices
   * still use them). A device is admitted only with a credential for one of them. A function is
   * asked per Register (for servers on port 0, whose URI is known only after `listen`).
   */
  readonly serverUris: readonly string[] | (() => readonly string[]);
  readonly log?: Logger;
  /** A registration lives this long past its expiry (default 0). */
  readonly expiryGraceMs?: number;
  /** Registrations expired per transaction (default 500). */
  readonly expiryBatchSize?: number;
  /** Told about every Register, Update, De-register and expiry, after the client was answered. */
  readonly onChange?: (change: RegistrationChange) => void;
  readonly now?: () => number;
  /** Registration ids; default: the store's (64 random bits, base64url). Tests pass fixed ones. */
  readonly newId?: () => string;
}

export type RegistrationChange =
  | { readonly kind: 'register'; readonly registration: RegistrationRecord; readonly replaced?: RegistrationRecord }
  | { readonly kind: 'update'; readonly registration: RegistrationRecord; readonly previous: RegistrationRecord }
  | { readonly kind: 'deregister'; readonly registration: RegistrationRecord }
  | { readonly kind: 'expire'; readonly registration: RegistrationRecord };

type Operation = 'register' | 'update' | 'deregister';

interface RefusalInfo {
  readonly op: Operation;
  readonly cause: string;
  readonly detail: string;
  readonly endpoint?: Buffer;
  readonly registrationId?: string;
}

const RD = Buffer.from('rd');

export class RegistrationServer {
  readonly #store: Store;
  readonly #serverUris: () => readonly string[];
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #newId: (() => string) | undefined;
  readonly #expiry: ExpiryScheduler;
  readonly #listeners = new Set<(change: RegistrationChange) => void>();
  readonly #nodes = new Set<CoapNode>();
  readonly #inflight = new Set<Promise<void>>();
  #starting: Promise<void> | undefined;
  #closing: Promise<void> | undefined;

  constructor(opts: RegistrationServerOptions) {
    const uris = opts.serverUris;
    if (typeof uris !== 'function' && uris.length === 0) throw new RangeError('serverUris must name at least one URI of this registration server');
    this.#store = opts.store;
    this.#serverUris = typeof uris === 'function' ? uris : () => uris;
    this.#log = opts.log ?? silentLogger;
    this.#now = opts.now ?? Date.now;
    this.#newId = opts.newId;
    if (opts.onChange) this.#listeners.add(opts.onChange);
    this.#expiry = new ExpiryScheduler({
      registry: opts.store.registry,
      now: this.#now,
      ...(opts.expiryGraceMs !== undefined ? { graceMs: opts.expiryGraceMs } : {}),
      ...(opts.expiryBatchSize !== undefined ? { batchSize: opts.expiryBatchSize } : {}),
      onExpired: (expired) => this.#expired(expired),
      onError: (e) => this.#log.error('registration expiry failed', { error: errorText(e) }),
    });
  }

  /**
   * Expires the registrations that ran out while no server ran, and arms the expiry timer;
   * live registrations are served as they are. Called by `listen`/`attach`; idempotent.
   */
  start(): Promise<void> {
    this.#starting ??= (async () => {
      await this.#expiry.start();
      const live = await this.#store.registry.count();
      this.#log.info('registration server started', { registrations: live, expiry: this.#expiry.nextRun === undefined ? undefined : new Date(this.#expiry.nextRun).toISOString() });
    })();
    return this.#starting;
  }

  /** Serves plain CoAP on a new UDP socket (after `start`). */
  async listen(opts: UdpEndpointOptions & Omit<CoapNodeOptions, 'handler'>): Promise<CoapNode> {
    await this.start();
    const node = await CoapNode.listen({ ...opts, handler: (req, res, peer) => this.#track(this.#handle(req, res, peer)) });
    this.#nodes.add(node);
    return node;
  }

  /** Serves on an existing endpoint (the DTLS endpoint, issue 5). Starts expiry in the background. */
  attach(endpoint: CoapEndpoint, opts: Omit<CoapNodeOptions, 'handler'> = {}): CoapNode {
    void this.start().catch((e: unknown) => this.#log.error('registration server start failed', { error: errorText(e) }));
    const node = new CoapNode(endpoint, { ...opts, handler: (req, res, peer) => this.#track(this.#handle(req, res, peer)) });
    this.#nodes.add(node);
    return node;
  }

  /** Listens to registration changes (for device management); returns the unsubscribe function. */
  subscribe(listener: (change: RegistrationChange) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** The node to reach a registered client through: the DTLS one for a DTLS registration, the plain one otherwise. */
  nodeFor(registration: Pick<RegistrationRecord, 'security'>): CoapNode | undefined {
    const secure = registration.security !== 'nosec';
    for (const n of this.#nodes) if (n.endpoint.secure === secure && !n.closed) return n;
    return undefined;
  }

  /**
   * A DTLS session moved to a new address (RFC 9146 Connection ID, `DtlsEndpoint.onPeerMoved`):
   * the registration made over that session - same security and identity, registered from
   * `previous` - follows at once, so device management and observations reach the client before
   * its next Update. The lifetime is not renewed (no Update arrived); the registration event
   * `update` records the move. A registration at another address (the client registered again
   * meanwhile) is left alone. Resolves when done; never rejects for a missing registration.
   */
  followPeer(peer: PeerInfo, previous: PeerAddress): Promise<void> {
    return this.#track(this.#followPeer(peer, previous));
  }

  async #followPeer(peer: PeerInfo, previous: PeerAddress): Promise<void> {
    const identity = identityBytes(peer.identity);
    if (identity === undefined || peer.identity === undefined || this.#closing) return;
    const security = securityOf(peer.identity);
    const credentials = await this.#store.credentials.findForRegistration(peer.identity.type === 'psk' ? { pskIdentity: identity } : { publicKey: identity });
    const endpoints = new Map(credentials.map((c) => [c.endpoint.toString('hex'), c.endpoint]));
    for (const endpoint of endpoints.values()) {
      const rec = await this.#store.registry.getByEndpoint(endpoint);
      if (!rec || rec.security !== security || rec.identity === null || !bytesEqual(rec.identity, identity)) continue;
      if (rec.address !== previous.address || rec.port !== previous.port) continue;
      const detail = `address ${formatPeer(rec)} → ${formatPeer(peer)} (DTLS connection ID)`;
      const updated = await this.#store.registry.update(rec.id, { address: peer.address, port: peer.port, renew: false, detail });
      if (!updated) continue;
      this.#log.info('registration followed its DTLS session to a new address', { ep: describeBytes(updated.endpoint), id: updated.id, peer: formatPeer(peer), previous: formatPeer(rec) });
      this.#emit({ kind: 'update', registration: updated, previous: rec });
    }
  }

  /** Expires what is due now (as the timer would); resolves with what was expired. */
  expireNow(): Promise<RegistrationRecord[]> {
    return this.#expiry.sweep();
  }

  /** When the expiry timer fires next (ms since the epoch), undefined when no registration expires. */
  get nextExpiryRun(): number | undefined {
    return this.#expiry.nextRun;
  }

  /** Stops the expiry timer, answers what is in flight, closes the sockets. The store stays open. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#expiry.close();
      await Promise.all([...this.#inflight]);
      await Promise.all([...this.#nodes].map((n) => n.close()));
    })();
    return this.#closing;
  }

  // -------------------------------------------------------------------------------------------

  #track(p: Promise<void>): Promise<void> {
    this.#inflight.add(p);
    return p.finally(() => this.#inflight.delete(p));
  }

  async #handle(req: CoapIncomingRequest, res: CoapResponder, peer: PeerInfo): Promise<void> {
    const segs = req.uriPath;
    if (segs.length === 0 || segs.length > 2 || !segs[0]!.equals(RD)) return res.send('4.04');
    const id = segs.length === 2 ? segs[1]!.toString('utf8') : undefined;
    const op: Operation | undefined = id === undefined ? (req.method === 'POST' ? 'register' : undefined) : req.method === 'POST' ? 'update' : req.method === 'DELETE' ? 'deregister' : undefined;
    if (op === undefined) return res.send('4.05');
    if (this.#closing) return res.send('5.03', { payload: 'shutting down' });
    // registration.md §1: every LwM2M request is CON; Leshan answers a NON Register with 4.00.
    if (!req.confirmable) {
      // For the record: the endpoint the request names, if it parses.
      const q = op === 'register' ? parseRegistrationQuery(req.uriQuery) : undefined;
      const endpoint = q?.ok ? q.value.endpoint : undefined;
      return this.#refuse(res, peer, '4.00', 'CON request expected', {
        op,
        cause: 'not_confirmable',
        detail: `NON ${req.method} ${req.path}`,
        ...(id ? { registrationId: id } : {}),
        ...(endpoint ? { endpoint } : {}),
      });
    }
    try {
      if (op === 'register') return await this.#register(req, res, peer);
      return await this.#updateOrDeregister(op, id!, req, res, peer);
    } catch (e) {
      this.#log.error(`${op} failed`, { peer: formatPeer(peer), id, error: errorText(e) });
      if (!res.sent) res.send('5.00', { payload: 'internal error' });
    }
  }

  async #register(req: CoapIncomingRequest, res: CoapResponder, peer: PeerInfo): Promise<void> {
    const op = 'register';
    const q = parseRegistrationQuery(req.uriQuery);
    if (!q.ok) return this.#refuse(res, peer, q.refusal.code, q.refusal.diagnostic, { op, cause: 'bad_request', detail: q.refusal.diagnostic });
    const query = q.value;
    const endpoint = query.endpoint;
    const at = endpoint ? { endpoint } : {};
    const payload = parseRegistrationPayload(req.payload, req.contentFormat);
    if (!payload.ok) return this.#refuse(res, peer, '4.00', payload.refusal.diagnostic, { op, cause: 'bad_payload', detail: payload.refusal.diagnostic, ...at });

    const auth = await authorizeRegistration(this.#store, { ...at, ...(peer.identity ? { identity: peer.identity } : {}) }, this.#serverUris());
    if (!auth.ok) return this.#refuse(res, peer, auth.refusal.code, auth.refusal.diagnostic, { op, cause: auth.refusal.cause, detail: auth.refusal.detail, ...at });
    const h = auth.handOff;
    const ep = { endpoint: h.endpoint };

    const params = resolveRegister(query);
    if (!params.ok) {
      const cause = params.refusal.code === '4.12' ? 'unsupported_version' : 'bad_request';
      return this.#refuse(res, peer, params.refusal.code, params.refusal.diagnostic, { op, cause, detail: params.refusal.diagnostic, ...ep });
    }
    const p = params.value;
    const objects: RegisterPayload | undefined = payload.value;
    if (objects === undefined) {
      // §2.2/§2.3: without a payload only pid or pre-configuration could name the objects; we resolve neither.
      const diagnostic = p.profileIds ? 'profile IDs (pid) cannot be resolved by this server: send the object list' : 'the object list (link-format payload) is missing';
      return this.#refuse(res, peer, '4.09', diagnostic, { op, cause: 'no_object_list', detail: diagnostic, ...ep });
    }

    let result: RegisterResult;
    try {
      result = await this.#store.registry.register({
        ...(this.#newId ? { id: this.#newId() } : {}),
        endpoint: h.endpoint,
        credentialId: h.credential.id,
        address: peer.address,
        port: peer.port,
        security: h.security,
        ...(h.identity ? { identity: h.identity } : {}),
        lwm2mVersion: p.lwm2mVersion,
        binding: p.binding,
        queueMode: p.queueMode,
        ...(p.sms !== undefined ? { sms: p.sms } : {}),
        lifetime: p.lifetime,
        rootPath: objects.rootPath,
        ...(objects.contentFormats ? { contentFormats: objects.contentFormats } : {}),
        objects: objects.objects,
        ...(p.profileIds ? { profileIds: p.profileIds } : {}),
        attributes: p.attributes,
        detail: registerDetail(p.defaulted, objects.ignored),
      });
    } catch (e) {
      // The credential was retired or removed since it was looked up (a re-bootstrap, a device removal).
      if (e instanceof StoreError && (e.field === 'credentialId' || e.code === 'not_found')) {
        return this.#refuse(res, peer, '4.03', 'registration not allowed: unknown endpoint or not provisioned for this server', { op, cause: 'not_provisioned', detail: e.message, ...ep });
      }
      throw e;
    }
    const reg = result.registration;
    res.send('2.01', { options: [{ number: Opt.LocationPath, value: RD }, { number: Opt.LocationPath, value: Buffer.from(reg.id, 'utf8') }] });
    this.#expiry.notify(reg.expiresAt);
    this.#log.info('registered', {
      ep: describeBytes(reg.endpoint),
      id: reg.id,
      peer: formatPeer(peer),
      security: reg.security,
      lwm2m: reg.lwm2mVersion,
      lt: reg.lifetime,
      b: reg.binding,
      queue: reg.queueMode,
      objects: reg.objects.length,
      root: reg.rootPath === '/' ? undefined : reg.rootPath,
      credential: reg.credentialId,
      promoted: result.promoted?.activated === true ? true : undefined,
      retired: result.promoted && result.promoted.retired > 0 ? result.promoted.retired : undefined,
      replaced: result.replaced?.id,
      defaulted: p.defaulted.length > 0 ? p.defaulted.join(',') : undefined,
    });
    this.#emit(result.replaced ? { kind: 'register', registration: reg, replaced: result.replaced } : { kind: 'register', registration: reg });
  }

  async #updateOrDeregister(op: 'update' | 'deregister', id: string, req: CoapIncomingRequest, res: CoapResponder, peer: PeerInfo): Promise<void> {
    const unknown = (cause: string, detail: string): Promise<void> =>
      this.#refuse(res, peer, '4.04', 'unknown registration: Register again', { op, cause, detail, registrationId: id });
    const rec = isRegistrationId(id) ? await this.#store.registry.get(id) : undefined;
    if (!rec) return unknown('unknown_registration', `no registration ${JSON.stringify(id)}`);
    const ep = { endpoint: rec.endpoint, registrationId: id };
    if (this.#expiry.isExpired(rec.expiresAt)) {
      // Due but not swept yet: expire it now (event `expire`), so the client re-registers cleanly.
      await this.#expiry.sweep();
      return this.#refuse(res, peer, '4.04', 'unknown registration: Register again', { op, cause: 'expired', detail: `registration expired at ${new Date(rec.expiresAt!).toISOString()}`, ...ep });
    }
    // §3: an Update (or De-register) from another endpoint/identity than the registration's is refused.
    const security = securityOf(peer.identity);
    const identity = identityBytes(peer.identity);
    if (security !== rec.security || (identity !== undefined && (rec.identity === null || !bytesEqual(identity, rec.identity)))) {
      return this.#refuse(res, peer, '4.00', 'not the registered client', {
        op,
        cause: 'identity_mismatch',
        detail: `registered with ${rec.security}, request arrived with ${security}${identity && rec.identity ? ' and another identity' : ''}`,
        ...ep,
      });
    }
    const moved = rec.address !== peer.address || rec.port !== peer.port;
    const from = formatPeer(rec);

    if (op === 'deregister') {
      const removed = await this.#store.registry.deregister(id, { peer: formatPeer(peer), ...(moved ? { detail: `from ${formatPeer(peer)} (registered from ${from})` } : {}) });
      if (!removed) return unknown('unknown_registration', `registration ${id} vanished (expired or replaced) while handling the De-register`);
      res.send('2.02');
      this.#log.info('deregistered', { ep: describeBytes(removed.endpoint), id, peer: formatPeer(peer) });
      this.#emit({ kind: 'deregister', registration: removed });
      return;
    }

    const q = parseRegistrationQuery(req.uriQuery);
    if (!q.ok) return this.#refuse(res, peer, q.refusal.code, q.refusal.diagnostic, { op, cause: 'bad_request', detail: q.refusal.diagnostic, ...ep });
    const u = resolveUpdate(q.value, rec);
    if (!u.ok) return this.#refuse(res, peer, u.refusal.code, u.refusal.diagnostic, { op, cause: 'bad_request', detail: u.refusal.diagnostic, ...ep });
    const payload = parseRegistrationPayload(req.payload, req.contentFormat);
    if (!payload.ok) return this.#refuse(res, peer, '4.00', payload.refusal.diagnostic, { op, cause: 'bad_payload', detail: payload.refusal.diagnostic, ...ep });
    const objects = payload.value;
    const changes: string[] = [];
    const v = u.value;
    if (v.lifetime !== undefined && v.lifetime !== rec.lifetime) changes.push(`lt ${rec.lifetime} → ${v.lifetime}`);
    if (v.binding !== undefined && v.binding !== rec.binding) changes.push(`b ${rec.binding} → ${v.binding}`);
    if (v.queueMode !== undefined && v.queueMode !== rec.queueMode) changes.push(`queue mode ${v.queueMode ? 'on' : 'off'}`);
    if (v.sms !== undefined && v.sms !== rec.sms) changes.push('sms');
    if (objects) changes.push(`object list (${objects.objects.length} objects)`);
    if (moved) changes.push(`address ${from} → ${formatPeer(peer)}`);
    const patch: RegistrationPatch = {
      ...v,
      ...(moved ? { address: peer.address, port: peer.port } : {}),
      ...(objects ? { rootPath: objects.rootPath, objects: objects.objects, ...(objects.contentFormats ? { contentFormats: objects.contentFormats } : {}) } : {}),
      ...(changes.length > 0 ? { detail: changes.join('; ') } : {}),
    };
    const updated = await this.#store.registry.update(id, patch);
    if (!updated) return unknown('unknown_registration', `registration ${id} vanished (expired or replaced) while handling the Update`);
    res.send('2.04');
    this.#expiry.notify(updated.expiresAt);
    const fields = { ep: describeBytes(updated.endpoint), id, peer: formatPeer(peer), changes: changes.length > 0 ? changes.join('; ') : undefined };
    if (moved) this.#log.info('registration updated from a new address', fields);
    else this.#log.debug('registration updated', fields);
    this.#emit({ kind: 'update', registration: updated, previous: rec });
  }

  #expired(expired: readonly RegistrationRecord[]): void {
    for (const r of expired) {
      this.#log.info('registration expired', { ep: describeBytes(r.endpoint), id: r.id, lt: r.lifetime, lastUpdate: new Date(r.updatedAt).toISOString() });
      this.#emit({ kind: 'expire', registration: r });
    }
  }

  /** Answers with an error code, logs, and records a `refused` event. */
  async #refuse(res: CoapResponder, peer: PeerInfo, code: string, diagnostic: string, info: RefusalInfo): Promise<void> {
    res.send(code, { payload: diagnostic });
    const p = formatPeer(peer);
    this.#log.info(`${info.op} refused`, { peer: p, ep: info.endpoint ? describeBytes(info.endpoint) : undefined, id: info.registrationId, code, cause: info.cause, detail: info.detail });
    try {
      await this.#store.registry.recordEvent({
        kind: 'refused',
        ...(info.endpoint ? { endpoint: info.endpoint } : {}),
        ...(info.registrationId && isRegistrationId(info.registrationId) ? { registrationId: info.registrationId } : {}),
        peer: p,
        detail: `${info.op} ${code} ${info.cause}: ${info.detail}`,
      });
    } catch (e) {
      this.#log.error('could not record a refused registration request', { error: errorText(e) });
    }
  }

  #emit(change: RegistrationChange): void {
    for (const l of this.#listeners) {
      try {
        l(change);
      } catch (e) {
        this.#log.error('registration change listener failed', { kind: change.kind, error: errorText(e) });
      }
    }
  }
}

function registerDetail(defaulted: readonly string[], ignored: readonly number[]): string | undefined {
  const notes: string[] = [];
  if (defaulted.length > 0) notes.push(`defaulted: ${defaulted.join(', ')}`);
  if (ignored.length > 0) notes.push(`ignored objects the client must not list: ${ignored.map((o) => `/${o}`).join(', ')}`);
  return notes.length > 0 ? notes.join('; ') : undefined;
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
