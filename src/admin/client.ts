/**
 * A small client of the admin API (server.ts), for `lwbs device read ...`, on node:http(s).
 * Errors are `AdminClientError`: `unreachable` (nothing listens, or the connection failed),
 * `http` (an error answer: its status and `{error: {code, message}}`), `protocol` (an answer that
 * is not the API's JSON).
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { ListenAddress } from '../config/config.js';
import type { DmRequest, DmResult, LatestValue, ObservationInfo } from '../registration/management/types.js';
import { endpointToUrl } from './json.js';

export class AdminClientError extends Error {
  override readonly name = 'AdminClientError';
  constructor(
    readonly kind: 'unreachable' | 'timeout' | 'http' | 'protocol',
    message: string,
    readonly status?: number,
    readonly code?: string,
  ) {
    super(message);
  }
}

/** The URL the CLI uses for a listen address: a wildcard host becomes the loopback address. */
export function adminUrlFor(listen: ListenAddress): string {
  let host = listen.host;
  if (host === '0.0.0.0' || host === '') host = '127.0.0.1';
  else if (host === '::' || host === '[::]') host = '::1';
  return `http://${host.includes(':') ? `[${host}]` : host}:${listen.port}`;
}

/** `--admin URL`: an http(s) URL without query or fragment; the trailing slash is dropped. Undefined when malformed. */
export function normalizeAdminUrl(text: string): string | undefined {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    return undefined;
  }
  if ((u.protocol !== 'http:' && u.protocol !== 'https:') || u.search !== '' || u.hash !== '' || u.username !== '' || u.password !== '') return undefined;
  return `${u.protocol}//${u.host}${u.pathname.replace(/\/+$/, '')}`;
}

export interface SubmitAnswer {
  /** 200: done (or failed) within the wait; 202: still queued or sent. */
  readonly status: 200 | 202;
  readonly result: DmResult;
}

function codesOf(e: unknown): string[] {
  const out: string[] = [];
  const visit = (x: unknown, depth: number): void => {
    if (typeof x !== 'object' || x === null || depth > 4) return;
    const code = (x as { code?: unknown }).code;
    if (typeof code === 'string') out.push(code);
    visit((x as { cause?: unknown }).cause, depth + 1);
    const errors = (x as { errors?: unknown }).errors;
    if (Array.isArray(errors)) for (const y of errors) visit(y, depth + 1);
  };
  visit(e, 0);
  return out;
}

export class AdminClient {
  constructor(
    readonly baseUrl: string,
    private readonly token: string,
  ) {}

  private async call<T>(method: 'GET' | 'POST', path: string, body: unknown, timeoutMs: number): Promise<{ status: number; body: T }> {
    const url = new URL(`${this.baseUrl}${path}`);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body), 'utf8');
    // node:http rather than fetch: fetch gives up on an answer after 300 s, and a request may wait that long
    const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
      const req = send(
        url,
        {
          method,
          agent: false,
          headers: {
            Authorization: `Bearer ${this.token}`,
            Accept: 'application/json',
            ...(payload !== undefined ? { 'Content-Type': 'application/json', 'Content-Length': payload.length } : {}),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', reject);
        },
      );
      const timer = setTimeout(() => req.destroy(new AdminClientError('timeout', `no answer from ${this.baseUrl} within ${Math.round(timeoutMs / 1000)} s`)), timeoutMs);
      req.on('close', () => clearTimeout(timer));
      req.on('error', (e) => {
        clearTimeout(timer);
        if (e instanceof AdminClientError) return reject(e);
        const codes = codesOf(e);
        if (codes.includes('ECONNREFUSED')) return reject(new AdminClientError('unreachable', `no server at ${this.baseUrl}: is \`lwbs serve\` running?`));
        reject(new AdminClientError('unreachable', `cannot reach ${this.baseUrl}: ${codes[0] ?? e.message}`));
      });
      req.end(payload);
    });
    let parsed: unknown;
    try {
      parsed = JSON.parse(text) as unknown;
    } catch {
      throw new AdminClientError('protocol', `${this.baseUrl} answered ${status} without JSON: is it the lwbs admin API?`, status);
    }
    if (status >= 400) {
      const err = (parsed as { error?: { code?: unknown; message?: unknown } } | null)?.error;
      const code = typeof err?.code === 'string' ? err.code : 'error';
      const message = typeof err?.message === 'string' ? err.message : `HTTP ${status}`;
      throw new AdminClientError('http', message, status, code);
    }
    if (status < 200 || status >= 300) throw new AdminClientError('protocol', `${this.baseUrl} answered ${status}: is it the lwbs admin API?`, status);
    return { status, body: parsed as T };
  }

  /** Submits a request; waits up to `waitSeconds` on the server for the answer. */
  async submit(endpoint: Uint8Array, request: DmRequest, waitSeconds: number): Promise<SubmitAnswer> {
    const r = await this.call<DmResult>('POST', `/v1/devices/${endpointToUrl(endpoint)}/requests?wait=${waitSeconds}`, request, (waitSeconds + 30) * 1000);
    return { status: r.status === 202 ? 202 : 200, result: r.body };
  }

  async ticket(id: string): Promise<DmResult> {
    return (await this.call<DmResult>('GET', `/v1/requests/${encodeURIComponent(id)}`, undefined, 30_000)).body;
  }

  async observations(endpoint: Uint8Array): Promise<ObservationInfo[]> {
    return (await this.call<{ observations: ObservationInfo[] }>('GET', `/v1/devices/${endpointToUrl(endpoint)}/observations`, undefined, 30_000)).body.observations;
  }

  async values(endpoint: Uint8Array, path?: string): Promise<LatestValue[]> {
    const q = path === undefined ? '' : `?path=${encodeURIComponent(path)}`;
    return (await this.call<{ values: LatestValue[] }>('GET', `/v1/devices/${endpointToUrl(endpoint)}/values${q}`, undefined, 30_000)).body.values;
  }

  async health(): Promise<string> {
    return (await this.call<{ status: string }>('GET', '/v1/health', undefined, 30_000)).body.status;
  }
}
