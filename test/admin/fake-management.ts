/**
 * A small DeviceManagement for the admin API tests: the interface's contract as the HTTP layer
 * sees it. Answers come from fixed rules below (a device "Acme" with a few resources), a
 * `sleepy` endpoint keeps its requests queued until `release(id)`, and every submission is
 * recorded so tests can check what the API or the CLI sent.
 */
import {
  DmError,
  type DeviceManagement,
  type DmRequest,
  type DmResult,
  type LatestValue,
  type ObservationInfo,
  type PathValue,
} from '../../src/registration/management/types.js';
import { bytesAsText } from '../../src/util/bytes.js';

export const DEVICE_VALUES: readonly PathValue[] = [
  { path: '/3/0/0', type: 'string', value: 'Acme' },
  { path: '/3/0/9', type: 'integer', value: 87 },
  { path: '/3/0/16', type: 'string', value: 'UQ' },
];

export const LINKS = '</3/0>,</3/0/0>,</3/0/9>;pmin=10;pmax=60,</3/0/16>';

export const BINARY_ENDPOINT = new Uint8Array([0x01, 0xff, 0x00, 0x7f]);

export function endpointLabel(ep: Uint8Array): string {
  const text = bytesAsText(ep);
  return text !== undefined && text.length > 0 ? text : `hex:${Buffer.from(ep).toString('hex')}`;
}

export interface Submission {
  readonly endpoint: Buffer;
  readonly request: DmRequest;
  readonly id: string;
}

export class FakeManagement implements DeviceManagement {
  /** Endpoints (as labels) that count as registered. */
  readonly registered = new Set<string>(['dev1', 'sleepy', 'a/b c', endpointLabel(BINARY_ENDPOINT)]);
  readonly submitted: Submission[] = [];
  private readonly results = new Map<string, DmResult>();
  private readonly waiting = new Map<string, (r: DmResult) => void>();
  private seq = 0;
  shuttingDown = false;

  async submit(endpoint: Uint8Array, request: DmRequest): Promise<{ readonly id: string; readonly done: Promise<DmResult> }> {
    const label = endpointLabel(endpoint);
    if (this.shuttingDown) throw new DmError('shutdown', 'the server is shutting down');
    if (!this.registered.has(label)) throw new DmError('not_registered', `endpoint ${JSON.stringify(label)} is not registered`);
    if (request.op === 'write' && request.value === 'oops') throw new DmError('invalid', '/1/0/1 is an integer resource: "oops" is not an integer');
    if (request.op === 'trigger-bootstrap' && label === 'dev1') throw new DmError('unsupported', 'the device registered with LwM2M 1.0');
    const id = `t${++this.seq}`;
    this.submitted.push({ endpoint: Buffer.from(endpoint), request, id });
    const path = 'path' in request ? request.path : request.op === 'trigger-update' ? '/1/0/8' : '/1/0/9';
    const base: DmResult = { id, op: request.op, endpoint: label, path, state: 'queued', submittedAt: Date.now() };
    this.results.set(id, base);
    if (label === 'sleepy') {
      const done = new Promise<DmResult>((resolve) => this.waiting.set(id, resolve));
      return { id, done };
    }
    const result = this.answer(base, request);
    this.results.set(id, result);
    return { id, done: Promise.resolve(result) };
  }

  /** Lets a `sleepy` request finish with 2.04 (or `code`). Returns the result. */
  release(id: string, code = '2.04'): DmResult {
    const cur = this.results.get(id);
    const resolve = this.waiting.get(id);
    if (!cur || !resolve) throw new Error(`no waiting request ${id}`);
    const r: DmResult = { ...cur, state: 'done', code, success: code.startsWith('2.'), sentAt: Date.now(), finishedAt: Date.now() };
    this.results.set(id, r);
    this.waiting.delete(id);
    resolve(r);
    return r;
  }

  /** Marks a `sleepy` request as on the wire (state `sent`). */
  markSent(id: string): void {
    const cur = this.results.get(id);
    if (cur) this.results.set(id, { ...cur, state: 'sent', sentAt: Date.now() });
  }

  private answer(base: DmResult, request: DmRequest): DmResult {
    const done = { ...base, state: 'done' as const, sentAt: Date.now(), finishedAt: Date.now() };
    const path = base.path;
    if (path.startsWith('/5/')) return { ...done, code: '4.04', success: false, message: 'no such instance' };
    if (path.startsWith('/4/')) return { ...base, state: 'failed', failure: 'timeout', message: 'no answer after 4 retransmissions', finishedAt: Date.now() };
    switch (request.op) {
      case 'read':
      case 'observe': {
        const values = DEVICE_VALUES.filter((v) => v.path === path || v.path.startsWith(`${path}/`));
        return { ...done, code: '2.05', success: true, contentFormat: request.accept ?? 11543, values };
      }
      case 'discover':
        return { ...done, code: '2.05', success: true, contentFormat: 40, links: LINKS };
      case 'create':
        return { ...done, code: '2.01', success: true, ...(path.split('/').length === 2 ? { location: `${path}/2` } : {}) };
      case 'delete':
        return { ...done, code: '2.02', success: true };
      default:
        return { ...done, code: '2.04', success: true };
    }
  }

  ticket(id: string): DmResult | undefined {
    return this.results.get(id);
  }

  async observations(endpoint: Uint8Array): Promise<ObservationInfo[]> {
    const label = endpointLabel(endpoint);
    if (!this.registered.has(label)) throw new DmError('not_registered', `endpoint ${JSON.stringify(label)} is not registered`);
    return [
      { path: '/3/0/9', state: 'active', registrationId: 'reg1', contentFormat: 11543, attributes: { pmin: '10' }, createdAt: 1_700_000_000_000, notifications: 4, lastNotificationAt: 1_700_000_060_000 },
      { path: '/3/0/16', state: 'pending', registrationId: null, contentFormat: null, attributes: {}, createdAt: 1_700_000_000_000, notifications: 0, lastNotificationAt: null },
    ];
  }

  async latestValues(endpoint: Uint8Array, pathPrefix?: string): Promise<LatestValue[]> {
    const label = endpointLabel(endpoint);
    if (!this.registered.has(label)) throw new DmError('not_registered', `endpoint ${JSON.stringify(label)} is not registered`);
    return DEVICE_VALUES.filter((v) => pathPrefix === undefined || pathPrefix === '/' || v.path === pathPrefix || v.path.startsWith(`${pathPrefix}/`)).map((v) => ({
      ...v,
      at: 1_700_000_000_000,
      source: 'notify' as const,
    }));
  }
}
