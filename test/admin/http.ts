/** A raw HTTP client for the admin API tests (node:http, so Host and every header can be set). */
import { request } from 'node:http';

export interface HttpAnswer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly text: string;
  /** The body parsed as JSON (undefined when it is not JSON). */
  readonly json: unknown;
}

export interface HttpCall {
  readonly method?: string;
  readonly path: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string | Buffer;
  /** Sets `Authorization: Bearer <token>`. */
  readonly token?: string;
}

export function http(port: number, call: HttpCall): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...(call.token !== undefined ? { Authorization: `Bearer ${call.token}` } : {}), ...call.headers };
    if (call.body !== undefined && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) headers['Content-Type'] = 'application/json';
    const req = request({ host: '127.0.0.1', port, agent: false, method: call.method ?? 'GET', path: call.path, headers, timeout: 15_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('test HTTP request timed out')));
    req.on('error', reject);
    if (call.body !== undefined) req.write(call.body);
    req.end();
  });
}

/** `{error: {code}}` of an error answer. */
export function errorCode(a: HttpAnswer): string | undefined {
  return (a.json as { error?: { code?: string } } | undefined)?.error?.code;
}
