/**
 * The admin HTTP API that `lwbs serve` listens on (127.0.0.1:5780 by default): the registry, and
 * device management through `DeviceManagement`. `lwbs device read ...` is its client.
 *
 * Security:
 * - every request, `/v1/health` included, needs `Authorization: Bearer <token>` (the token in
 *   `<dataDir>/admin.token`); compared in constant time; a missing or wrong token gets 401 with
 *   `WWW-Authenticate: Bearer` and no detail;
 * - the Host header must be an IP literal, `localhost`, or the configured listen host: a web page
 *   that rebinds its DNS name to 127.0.0.1 (DNS rebinding) sends its own name and is refused
 *   (IP literals cannot be rebound);
 * - no CORS headers, so browsers never let other origins read an answer;
 * - request bodies: `application/json` only (415), at most 64 KiB (413).
 *
 * Routes (endpoint names URL-encoded in the path; binary ones as `hex:<hex>`):
 *   GET  /v1/health                            {"status": "ok"}
 *   GET  /v1/registrations?limit=&offset=      {"registrations": [...], "total"}
 *   GET  /v1/registrations/{ep}                one registration + "events" (newest first, 20)
 *   POST /v1/devices/{ep}/requests?wait=S      a DmRequest → 200 DmResult (done within S
 *                                              seconds, default 30, max 300, 0 = no wait) or
 *                                              202 DmResult so far + Location: /v1/requests/{id}
 *   GET  /v1/requests/{id}                     the DmResult of a ticket
 *   GET  /v1/devices/{ep}/observations         {"endpoint", "observations": [...]}
 *   GET  /v1/devices/{ep}/values?path=/3/0     {"endpoint", "values": [...]}
 * Errors: `{"error": {"code", "message"}}` with 400/401/404/405/413/415/500/503.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { isIP, type AddressInfo } from 'node:net';
import { parsePath } from '../lwm2m/path.js';
import { DmError, type DeviceManagement, type DmRequest, type DmResult } from '../registration/management/types.js';
import { StoreError } from '../store/errors.js';
import type { Store } from '../store/types.js';
import { bytesAsText, describeBytes } from '../util/bytes.js';
import { silentLogger, type Logger } from '../util/log.js';
import { endpointFromUrl, registrationEventJson, registrationJson } from './json.js';
import { parseDmRequest, RequestShapeError } from './validate.js';

export interface AdminServerOptions {
  readonly host: string;
  readonly port: number;
  readonly token: string;
  readonly management: DeviceManagement;
  readonly store: Store;
  readonly log?: Logger;
  /** Largest request body accepted (default 64 KiB). */
  readonly maxBodyBytes?: number;
}

export interface AdminServer {
  address(): AddressInfo;
  /** Stops listening; requests still waiting for a device are answered 202 (their ticket) first. */
  close(): Promise<void>;
}

export const DEFAULT_MAX_BODY_BYTES = 64 * 1024;
export const DEFAULT_WAIT_SECONDS = 30;
export const MAX_WAIT_SECONDS = 300;
export const DEFAULT_LIST_LIMIT = 100;
export const MAX_LIST_LIMIT = 1000;
export const SHOW_EVENTS = 20;

/** An answer other than 2xx: status, a stable `code`, and a message for people. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
  }
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

/** True when the Authorization header carries the token (compared in constant time, whatever the lengths). */
export function bearerMatches(header: string | undefined, expected: Buffer): boolean {
  if (header === undefined) return false;
  const m = /^Bearer[ ]+([^ ]+)[ ]*$/i.exec(header);
  if (!m) return false;
  return timingSafeEqual(digest(m[1]!), expected);
}

/**
 * True when the Host header names an IP literal, `localhost`, or `listenHost` (any port): names
 * a DNS-rebinding page could use are refused.
 */
export function hostAllowed(header: string | undefined, listenHost: string): boolean {
  if (header === undefined) return false;
  let name: string;
  const h = header.trim().toLowerCase();
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    if (end < 0) return false;
    name = h.slice(1, end);
    const rest = h.slice(end + 1);
    if (rest !== '' && !/^:[0-9]{1,5}$/.test(rest)) return false;
    return isIP(name) === 6;
  }
  const m = /^([^:]+)(?::[0-9]{1,5})?$/.exec(h);
  if (!m) return false;
  name = m[1]!.replace(/\.$/, '');
  if (name === 'localhost') return true;
  if (isIP(name) === 4) return true;
  const listen = listenHost.toLowerCase().replace(/\.$/, '');
  return name === listen && isIP(listen) === 0 && listen !== '';
}

interface Waiter {
  readonly stop: () => void;
}

export async function startAdminServer(opts: AdminServerOptions): Promise<AdminServer> {
  const log = opts.log ?? silentLogger;
  const expected = digest(opts.token);
  const maxBody = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const waiters = new Set<Waiter>();
  let closing = false;

  const server: Server = createServer((req, res) => {
    const started = Date.now();
    res.on('finish', () => {
      log.debug('admin request', { method: req.method, path: (req.url ?? '').split('?')[0], status: res.statusCode, ms: Date.now() - started });
    });
    handle(req, res).catch((e: unknown) => {
      if (e instanceof ApiError) return sendError(res, e);
      if (e instanceof StoreError && e.code === 'closed') return sendError(res, new ApiError(503, 'shutdown', 'the server is shutting down'));
      log.error('admin request failed', { method: req.method, path: (req.url ?? '').split('?')[0], error: e instanceof Error ? e.message : String(e) });
      sendError(res, new ApiError(500, 'internal', 'internal error (see the server log)'));
    });
  });
  server.requestTimeout = 60_000;
  server.headersTimeout = 30_000;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (closing) throw new ApiError(503, 'shutdown', 'the server is shutting down', { Connection: 'close' });
    if (!hostAllowed(req.headers.host, opts.host)) throw new ApiError(400, 'bad_host', 'the Host header must name an IP address or localhost');
    if (!bearerMatches(req.headers.authorization, expected)) {
      throw new ApiError(401, 'unauthorized', 'a valid bearer token is required', { 'WWW-Authenticate': 'Bearer' });
    }
    const raw = req.url ?? '';
    if (!raw.startsWith('/')) throw new ApiError(400, 'bad_request', 'the request target must be a path');
    const q = raw.indexOf('?');
    const pathname = q < 0 ? raw : raw.slice(0, q);
    const query = new URLSearchParams(q < 0 ? '' : raw.slice(q + 1));
    const seg = pathname.split('/').slice(1);
    const method = req.method ?? 'GET';
    const only = (allowed: string): void => {
      if (method !== allowed) throw new ApiError(405, 'method_not_allowed', `${method} is not allowed here; use ${allowed}`, { Allow: allowed });
    };

    if (seg[0] !== 'v1') throw notFound();
    if (seg.length === 2 && seg[1] === 'health') {
      only('GET');
      return sendJson(res, 200, { status: 'ok' });
    }
    if (seg[1] === 'registrations' && seg.length === 2) {
      only('GET');
      const limit = intParam(query, 'limit', 1, MAX_LIST_LIMIT) ?? DEFAULT_LIST_LIMIT;
      const offset = intParam(query, 'offset', 0, Number.MAX_SAFE_INTEGER) ?? 0;
      const [list, total] = await Promise.all([opts.store.registry.list({ limit, offset }), opts.store.registry.count()]);
      return sendJson(res, 200, { registrations: list.map(registrationJson), total });
    }
    if (seg[1] === 'registrations' && seg.length === 3) {
      only('GET');
      const ep = endpointParam(seg[2]!);
      const r = await opts.store.registry.getByEndpoint(ep);
      if (!r) throw new ApiError(404, 'not_registered', `endpoint ${describeBytes(ep)} is not registered`);
      const events = await opts.store.registry.events(ep, SHOW_EVENTS);
      return sendJson(res, 200, { ...registrationJson(r), events: events.map(registrationEventJson) });
    }
    if (seg[1] === 'requests' && seg.length === 3) {
      only('GET');
      const id = decodeSegment(seg[2]!);
      const t = opts.management.ticket(id);
      if (!t) throw new ApiError(404, 'unknown_request', `no request ${JSON.stringify(id)} (finished requests are kept for a while only)`);
      return sendJson(res, 200, t);
    }
    if (seg[1] === 'devices' && seg.length === 4) {
      const ep = endpointParam(seg[2]!);
      switch (seg[3]) {
        case 'requests':
          only('POST');
          return submit(req, res, ep, query);
        case 'observations': {
          only('GET');
          const observations = await dm(() => opts.management.observations(ep));
          return sendJson(res, 200, { endpoint: endpointText(ep), observations });
        }
        case 'values': {
          only('GET');
          const path = query.get('path');
          if (path !== null) {
            try {
              parsePath(path);
            } catch (e) {
              throw new ApiError(400, 'invalid', `path: ${(e as Error).message}`);
            }
          }
          const values = await dm(() => opts.management.latestValues(ep, path ?? undefined));
          return sendJson(res, 200, { endpoint: endpointText(ep), values });
        }
      }
    }
    throw notFound();
  }

  async function submit(req: IncomingMessage, res: ServerResponse, ep: Uint8Array, query: URLSearchParams): Promise<void> {
    const waitText = query.get('wait');
    let waitSeconds = DEFAULT_WAIT_SECONDS;
    if (waitText !== null) {
      if (!/^[0-9]+(\.[0-9]+)?$/.test(waitText) || Number(waitText) > MAX_WAIT_SECONDS) {
        throw new ApiError(400, 'invalid', `wait must be a number of seconds 0..${MAX_WAIT_SECONDS}, got ${JSON.stringify(waitText)}`);
      }
      waitSeconds = Number(waitText);
    }
    const body = await readJsonBody(req, maxBody);
    let request: DmRequest;
    try {
      request = parseDmRequest(body);
    } catch (e) {
      if (e instanceof RequestShapeError) throw new ApiError(400, 'invalid', e.message);
      throw e;
    }
    const { id, done } = await dm(() => opts.management.submit(ep, request));
    const safeDone = done.then(
      (r) => r,
      () => undefined,
    );
    const result = waitSeconds > 0 && !closing ? await waitFor(safeDone, waitSeconds * 1000, res) : undefined;
    if (res.destroyed || res.writableEnded) return;
    if (result) return sendJson(res, 200, result);
    const now: DmResult = opts.management.ticket(id) ?? {
      id,
      op: request.op,
      endpoint: endpointText(ep),
      path: 'path' in request ? request.path : '',
      state: 'queued',
      submittedAt: Date.now(),
    };
    if (now.state === 'done' || now.state === 'failed') return sendJson(res, 200, now);
    sendJson(res, 202, now, { Location: `/v1/requests/${encodeURIComponent(id)}` });
  }

  /** Resolves with the result, or undefined when `ms` pass, the client goes away, or the server closes. */
  function waitFor(done: Promise<DmResult | undefined>, ms: number, res: ServerResponse): Promise<DmResult | undefined> {
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const waiter: Waiter = { stop: () => finish(undefined) };
      const onClose = (): void => finish(undefined);
      const finish = (r: DmResult | undefined): void => {
        if (!waiters.delete(waiter)) return;
        clearTimeout(timer);
        res.off('close', onClose);
        resolve(r);
      };
      waiters.add(waiter);
      timer = setTimeout(() => finish(undefined), ms);
      res.on('close', onClose);
      void done.then(finish);
    });
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: opts.host, port: opts.port }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (e) => log.error('admin server error', { error: e.message }));
  const addr = server.address() as AddressInfo;
  log.info('admin API listening', { listen: addr.family === 'IPv6' ? `[${addr.address}]:${addr.port}` : `${addr.address}:${addr.port}` });
  if (!isLoopback(opts.host)) log.warn('the admin API listens on a non-loopback address: anyone who can reach it and holds the token controls devices', { host: opts.host });

  let closed: Promise<void> | undefined;
  return {
    address: () => addr,
    close: () =>
      (closed ??= (async () => {
        closing = true;
        for (const w of [...waiters]) w.stop();
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeIdleConnections();
          // Connections still busy (a slow upload) get a moment, then are cut.
          setTimeout(() => server.closeAllConnections(), 1000).unref();
        });
      })()),
  };
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

function notFound(): ApiError {
  return new ApiError(404, 'not_found', 'no such resource; see the admin API in the README');
}

function decodeSegment(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new ApiError(400, 'bad_request', 'malformed percent-encoding in the path');
  }
}

function endpointParam(segment: string): Uint8Array {
  const ep = endpointFromUrl(segment);
  if (ep === undefined) throw new ApiError(400, 'invalid', 'the endpoint in the path must be URL-encoded UTF-8 text or hex:<hex digits>');
  return ep;
}

/** As `DmResult.endpoint`: the text when printable, else `hex:…`. */
function endpointText(ep: Uint8Array): string {
  const text = bytesAsText(ep);
  return text !== undefined && text.length > 0 ? text : `hex:${Buffer.from(ep.buffer, ep.byteOffset, ep.byteLength).toString('hex')}`;
}

function intParam(query: URLSearchParams, name: string, min: number, max: number): number | undefined {
  const v = query.get(name);
  if (v === null) return undefined;
  if (!/^[0-9]{1,16}$/.test(v) || Number(v) < min || Number(v) > max) {
    throw new ApiError(400, 'invalid', `${name} must be an integer ${min}..${max}, got ${JSON.stringify(v)}`);
  }
  return Number(v);
}

/** Runs a DeviceManagement call, mapping DmError to an API error. */
async function dm<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof DmError) {
      switch (e.code) {
        case 'invalid':
          throw new ApiError(400, 'invalid', e.message);
        case 'unsupported':
          throw new ApiError(400, 'unsupported', e.message);
        case 'not_registered':
          throw new ApiError(404, 'not_registered', e.message);
        case 'shutdown':
          throw new ApiError(503, 'shutdown', e.message);
      }
    }
    throw e;
  }
}

/**
 * Reads the body: `application/json` (else 415), at most `limit` bytes (else 413), valid UTF-8
 * JSON (else 400). A refused body is still read to its end (up to `hardCap` bytes) before the
 * answer, so the client reliably gets it; past `hardCap` the connection is closed after it.
 */
function readJsonBody(req: IncomingMessage, limit: number): Promise<unknown> {
  const hardCap = Math.max(limit * 16, 1024 * 1024);
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  const tooLarge = (): ApiError => new ApiError(413, 'too_large', `the body is larger than ${limit} bytes`);
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > hardCap) {
    req.resume();
    return Promise.reject(new ApiError(413, 'too_large', `the body is larger than ${limit} bytes`, { Connection: 'close' }));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const settle = (e: ApiError | Error | undefined, value?: unknown): void => {
      if (settled) return;
      settled = true;
      if (e) reject(e);
      else resolve(value);
    };
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > hardCap) {
        settle(new ApiError(413, 'too_large', `the body is larger than ${limit} bytes`, { Connection: 'close' }));
        return;
      }
      if (size <= limit && type === 'application/json') chunks.push(c);
    });
    req.on('error', (e) => settle(e));
    req.on('end', () => {
      if (type !== 'application/json') return settle(new ApiError(415, 'unsupported_media_type', 'the body must be application/json'));
      if (size > limit) return settle(tooLarge());
      const buf = Buffer.concat(chunks);
      if (buf.length === 0) return settle(new ApiError(400, 'bad_json', 'the body is empty; send a JSON request object'));
      let text: string;
      try {
        text = new TextDecoder('utf-8', { fatal: true }).decode(buf);
      } catch {
        return settle(new ApiError(400, 'bad_json', 'the body is not UTF-8'));
      }
      try {
        settle(undefined, JSON.parse(text) as unknown);
      } catch (e) {
        settle(new ApiError(400, 'bad_json', `the body is not valid JSON: ${(e as Error).message}`));
      }
    });
  });
}

const COMMON_HEADERS = {
  'Content-Type': 'application/json; charset=utf-8',
  'Cache-Control': 'no-store',
  'X-Content-Type-Options': 'nosniff',
};

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Readonly<Record<string, string>> = {}): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { ...COMMON_HEADERS, 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function sendError(res: ServerResponse, e: ApiError): void {
  sendJson(res, e.status, { error: { code: e.code, message: e.message } }, e.headers);
}
