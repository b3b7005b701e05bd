/**
 * The admin HTTP API over real HTTP on 127.0.0.1: authentication, the Host check, every route,
 * body limits and bad bodies, the wait / 202 / poll cycle, shutdown. Device management is the
 * in-test FakeManagement; registrations come from a real store in a temp folder.
 */
import { expect } from 'chai';
import { hostAllowed, startAdminServer, type AdminServer } from '../../src/admin/server.js';
import { loadOrCreateAdminToken } from '../../src/admin/token.js';
import type { DmResult, LatestValue, ObservationInfo } from '../../src/registration/management/types.js';
import type { SqliteStore } from '../../src/store/store.js';
import type { NewRegistration } from '../../src/store/types.js';
import { memoryLogger } from '../../src/util/log.js';
import { open, PROFILE_DOC, removeDir, tempDir } from '../store/support.js';
import { BINARY_ENDPOINT, DEVICE_VALUES, FakeManagement } from './fake-management.js';
import { errorCode, http, type HttpAnswer } from './http.js';

interface RegistrationBody {
  id: string;
  endpoint: { text?: string; hex: string };
  address: string;
  port: number;
  security: string;
  identity: { text?: string; hex: string } | null;
  lwm2mVersion: string;
  binding: string;
  queueMode: boolean;
  lifetime: number;
  objects: { id: number; version: string | null; instances: number[] }[];
  registeredAt: string;
  updatedAt: string;
  expiresAt: string | null;
  events?: { seq: number; kind: string; registrationId: string | null; at: string }[];
}

describe('admin/server', function () {
  this.timeout(20_000);
  let dir: string;
  let store: SqliteStore;
  let fake: FakeManagement;
  let server: AdminServer;
  let port: number;
  let token: string;
  const log = memoryLogger('debug');

  const reg = (endpoint: string | Uint8Array, extra: Partial<NewRegistration> = {}): NewRegistration => ({
    endpoint,
    address: '127.0.0.1',
    port: 40000,
    security: 'nosec',
    lwm2mVersion: '1.1',
    binding: 'U',
    queueMode: false,
    lifetime: 300,
    objects: [
      { id: 1, instances: [0] },
      { id: 3, version: '1.1', instances: [0] },
    ],
    ...extra,
  });

  before(async () => {
    dir = tempDir('lwbs-admin-');
    store = await open(dir);
    await store.profiles.put('p', PROFILE_DOC);
    for (const ep of ['dev1', 'dev2', 'a/b c']) await store.devices.add({ endpoint: ep, profile: 'p' });
    await store.devices.add({ endpoint: BINARY_ENDPOINT, profile: 'p' });
    await store.registry.register(reg('dev2', { address: '::1', port: 5999, lifetime: 0, queueMode: true, binding: 'UQ' }));
    await store.registry.register(reg('dev1'));
    // dev1 registers again: the first registration is replaced (event `replace`, then `register`)
    await store.registry.register(reg('dev1', { port: 40001 }));
    await store.registry.update((await store.registry.getByEndpoint('dev1'))!.id, { lifetime: 600 });
    await store.registry.register(reg('a/b c'));
    await store.registry.register(reg(BINARY_ENDPOINT, { security: 'nosec' }));
    token = loadOrCreateAdminToken(dir).token;
    fake = new FakeManagement();
    server = await startAdminServer({ host: '127.0.0.1', port: 0, token, management: fake, store, log });
    port = server.address().port;
  });

  after(async () => {
    await server?.close();
    await store?.close();
    removeDir(dir);
  });

  const get = (path: string, headers: Record<string, string> = {}): Promise<HttpAnswer> => http(port, { path, token, headers });
  const post = (path: string, body: unknown, headers: Record<string, string> = {}): Promise<HttpAnswer> =>
    http(port, { method: 'POST', path, token, headers, body: typeof body === 'string' ? body : JSON.stringify(body) });

  describe('authentication', () => {
    it('refuses a request without a token with 401, WWW-Authenticate: Bearer and no detail', async () => {
      const a = await http(port, { path: '/v1/health' });
      expect(a.status).to.equal(401);
      expect(a.headers['www-authenticate']).to.equal('Bearer');
      expect(errorCode(a)).to.equal('unauthorized');
      expect(a.text).not.to.include(token);
    });

    it('refuses a wrong token, one of the same length, a prefix, and other schemes', async () => {
      const sameLength = token.slice(0, -1) + (token.endsWith('A') ? 'B' : 'A');
      for (const headers of [
        { Authorization: 'Bearer nope' },
        { Authorization: `Bearer ${sameLength}` },
        { Authorization: `Bearer ${token.slice(0, 20)}` },
        { Authorization: `Bearer ${token}x` },
        { Authorization: `Basic ${Buffer.from(`admin:${token}`).toString('base64')}` },
        { Authorization: token },
      ]) {
        const a = await http(port, { path: '/v1/health', headers });
        expect(a.status, headers.Authorization).to.equal(401);
        expect(a.text).not.to.include(token);
      }
    });

    it('accepts the right token (scheme case-insensitive) on every route, health included', async () => {
      const a = await get('/v1/health');
      expect(a.status).to.equal(200);
      expect(a.json).to.deep.equal({ status: 'ok' });
      expect(a.headers['content-type']).to.match(/^application\/json/);
      const b = await http(port, { path: '/v1/health', headers: { Authorization: `bearer ${token}` } });
      expect(b.status).to.equal(200);
    });

    it('refuses unauthenticated requests to every route before anything else (no 404 hints)', async () => {
      for (const [method, path] of [
        ['GET', '/v1/registrations'],
        ['GET', '/v1/registrations/dev1'],
        ['POST', '/v1/devices/dev1/requests'],
        ['GET', '/v1/requests/t1'],
        ['GET', '/no/such/route'],
      ] as const) {
        const a = await http(port, { method, path, ...(method === 'POST' ? { body: '{"op":"read","path":"/3/0"}' } : {}) });
        expect(a.status, `${method} ${path}`).to.equal(401);
      }
      expect(fake.submitted.length).to.equal(0);
    });

    it('never writes the token to the log', () => {
      expect(log.lines.length).to.be.greaterThan(0);
      expect(log.text()).not.to.include(token);
    });
  });

  describe('Host check (DNS rebinding)', () => {
    it('refuses a request whose Host is a DNS name other than localhost, even with the token', async () => {
      for (const host of ['evil.example', `evil.example:${port}`, 'localhost.evil.example', '127.0.0.1.nip.io']) {
        const a = await get('/v1/health', { Host: host });
        expect(a.status, host).to.equal(400);
        expect(errorCode(a)).to.equal('bad_host');
      }
    });

    it('accepts IP literals and localhost, with or without a port', async () => {
      for (const host of [`127.0.0.1:${port}`, '127.0.0.1', `localhost:${port}`, 'LOCALHOST', '[::1]', `[::1]:${port}`]) {
        const a = await get('/v1/health', { Host: host });
        expect(a.status, host).to.equal(200);
      }
    });

    it('hostAllowed: IP literals, localhost and the configured host name only', () => {
      expect(hostAllowed(undefined, '127.0.0.1')).to.equal(false);
      expect(hostAllowed('', '127.0.0.1')).to.equal(false);
      expect(hostAllowed('10.1.2.3:5780', '0.0.0.0')).to.equal(true);
      expect(hostAllowed('[fe80::1]:5780', '::')).to.equal(true);
      expect(hostAllowed('[not-v6]:5780', '::')).to.equal(false);
      expect(hostAllowed('[::1]x', '::')).to.equal(false);
      expect(hostAllowed('admin.internal:5780', 'admin.internal')).to.equal(true);
      expect(hostAllowed('admin.internal.:5780', 'admin.internal')).to.equal(true);
      expect(hostAllowed('other.internal:5780', 'admin.internal')).to.equal(false);
      expect(hostAllowed('a:b:c', '127.0.0.1')).to.equal(false);
      expect(hostAllowed('localhost:99999999', '127.0.0.1')).to.equal(false);
    });
  });

  describe('registrations', () => {
    it('lists registrations sorted by endpoint bytes, with the total, endpoints as {text, hex} and ISO times', async () => {
      const a = await get('/v1/registrations');
      expect(a.status).to.equal(200);
      const body = a.json as { registrations: RegistrationBody[]; total: number };
      expect(body.total).to.equal(4);
      const hexes = body.registrations.map((r) => r.endpoint.hex);
      const expected = [BINARY_ENDPOINT, Buffer.from('a/b c'), Buffer.from('dev1'), Buffer.from('dev2')].map((b) => Buffer.from(b).toString('hex'));
      expect(hexes).to.deep.equal(expected);
      const bin = body.registrations[0]!;
      expect(bin.endpoint).to.deep.equal({ hex: Buffer.from(BINARY_ENDPOINT).toString('hex') });
      const dev1 = body.registrations.find((r) => r.endpoint.text === 'dev1')!;
      expect(dev1.port).to.equal(40001);
      expect(dev1.lifetime).to.equal(600);
      expect(dev1.objects).to.deep.equal([
        { id: 1, version: null, instances: [0] },
        { id: 3, version: '1.1', instances: [0] },
      ]);
      expect(new Date(dev1.registeredAt).toISOString()).to.equal(dev1.registeredAt);
      expect(Date.parse(dev1.expiresAt!) - Date.parse(dev1.updatedAt)).to.equal(600_000);
      const dev2 = body.registrations.find((r) => r.endpoint.text === 'dev2')!;
      expect(dev2).to.include({ address: '::1', port: 5999, queueMode: true, binding: 'UQ', lifetime: 0, expiresAt: null });
    });

    it('pages with limit and offset; total stays the whole count', async () => {
      const a = await get('/v1/registrations?limit=2&offset=1');
      const body = a.json as { registrations: RegistrationBody[]; total: number };
      expect(body.total).to.equal(4);
      expect(body.registrations.map((r) => r.endpoint.text)).to.deep.equal(['a/b c', 'dev1']);
      const past = (await get('/v1/registrations?offset=10')).json as { registrations: unknown[]; total: number };
      expect(past).to.deep.equal({ registrations: [], total: 4 });
    });

    it('refuses a bad limit or offset with 400', async () => {
      for (const q of ['limit=0', 'limit=-1', 'limit=abc', 'limit=1001', 'offset=-1', 'offset=1.5']) {
        const a = await get(`/v1/registrations?${q}`);
        expect(a.status, q).to.equal(400);
        expect(errorCode(a)).to.equal('invalid');
      }
    });

    it('shows one registration with its events, newest first', async () => {
      const a = await get('/v1/registrations/dev1');
      expect(a.status).to.equal(200);
      const r = a.json as RegistrationBody;
      expect(r.endpoint).to.deep.equal({ text: 'dev1', hex: Buffer.from('dev1').toString('hex') });
      expect(r.identity).to.equal(null);
      const kinds = r.events!.map((e) => e.kind);
      expect(kinds).to.deep.equal(['update', 'register', 'replace', 'register']);
      const seqs = r.events!.map((e) => e.seq);
      expect([...seqs].sort((x, y) => y - x)).to.deep.equal(seqs);
      expect(r.events![0]!.registrationId).to.equal(r.id);
    });

    it('finds endpoints given URL-encoded (with / and space) and binary ones as hex:', async () => {
      const a = await get(`/v1/registrations/${encodeURIComponent('a/b c')}`);
      expect(a.status).to.equal(200);
      expect((a.json as RegistrationBody).endpoint.text).to.equal('a/b c');
      const b = await get(`/v1/registrations/hex:${Buffer.from(BINARY_ENDPOINT).toString('hex')}`);
      expect(b.status).to.equal(200);
      expect((b.json as RegistrationBody).endpoint.hex).to.equal(Buffer.from(BINARY_ENDPOINT).toString('hex'));
      const c = await get(`/v1/registrations/HEX:${Buffer.from('dev1').toString('hex').toUpperCase()}`);
      expect((c.json as RegistrationBody).endpoint.text).to.equal('dev1');
    });

    it('answers 404 not_registered for an unknown endpoint and 400 for a malformed one', async () => {
      const a = await get('/v1/registrations/nobody');
      expect(a.status).to.equal(404);
      expect(errorCode(a)).to.equal('not_registered');
      for (const bad of ['hex:0', 'hex:zz', 'hex:', '%E0%A4%A', '%FF']) {
        const b = await get(`/v1/registrations/${bad}`);
        expect(b.status, bad).to.equal(400);
      }
    });
  });

  describe('device requests', () => {
    it('runs a read and answers 200 with the DmResult when done within the wait', async () => {
      const a = await post('/v1/devices/dev1/requests', { op: 'read', path: '/3/0' });
      expect(a.status).to.equal(200);
      const r = a.json as DmResult;
      expect(r).to.include({ op: 'read', endpoint: 'dev1', path: '/3/0', state: 'done', code: '2.05', success: true });
      expect(r.values).to.deep.equal(DEVICE_VALUES.filter((v) => v.path.startsWith('/3/0/')));
      const last = fake.submitted[fake.submitted.length - 1]!;
      expect(last.request).to.deep.equal({ op: 'read', path: '/3/0' });
      expect(last.endpoint.toString()).to.equal('dev1');
    });

    it('passes every operation through with its fields, and the endpoint bytes', async () => {
      const requests = [
        { op: 'read', path: '/3/0/0', accept: 112 },
        { op: 'discover', path: '/3', depth: 2 },
        { op: 'write', path: '/1/0/1', value: 300 },
        { op: 'write', path: '/1/0', values: { '/1/0/1': '300', '/1/0/7': { type: 'string', value: 'UQ' } }, partial: true, format: 11542 },
        { op: 'write', path: '/9/0/1', value: { type: 'opaque', hex: '00ff' } },
        { op: 'execute', path: '/3/0/4', args: "0='a',1" },
        { op: 'create', path: '/1', values: { '/1/2/0': 2 }, format: 112 },
        { op: 'delete', path: '/1/2' },
        { op: 'write-attributes', path: '/3/0/9', attributes: { pmin: '10', gt: 3.5, pmax: null } },
        { op: 'observe', path: '/3/0/9', accept: 60, attributes: { pmin: 5 } },
        { op: 'cancel-observation', path: '/3/0/9' },
        { op: 'trigger-update' },
      ];
      for (const req of requests) {
        const a = await post(`/v1/devices/hex:${Buffer.from(BINARY_ENDPOINT).toString('hex')}/requests`, req);
        expect(a.status, JSON.stringify(req)).to.equal(200);
        const last = fake.submitted[fake.submitted.length - 1]!;
        expect(last.request).to.deep.equal(req);
        expect([...last.endpoint]).to.deep.equal([...BINARY_ENDPOINT]);
        expect((a.json as DmResult).id).to.equal(last.id);
      }
    });

    it('answers a device error and a failure with 200 and the result (the HTTP request itself succeeded)', async () => {
      const a = await post('/v1/devices/dev1/requests', { op: 'read', path: '/5/0' });
      expect(a.status).to.equal(200);
      expect(a.json).to.include({ state: 'done', code: '4.04', success: false });
      const b = await post('/v1/devices/dev1/requests', { op: 'read', path: '/4/0' });
      expect(b.status).to.equal(200);
      expect(b.json).to.include({ state: 'failed', failure: 'timeout' });
    });

    it('refuses malformed requests with 400 invalid before they reach device management', async () => {
      const before = fake.submitted.length;
      const bad: unknown[] = [
        { op: 'reboot', path: '/3/0/4' },
        { path: '/3/0' },
        [],
        'read',
        null,
        { op: 'read' },
        { op: 'read', path: 3 },
        { op: 'read', path: '/3/0', acept: 112 },
        { op: 'read', path: '/3/0', accept: 70000 },
        { op: 'discover', path: '/3', depth: 4 },
        { op: 'write', path: '/1/0/1' },
        { op: 'write', path: '/1/0/1', value: 1, values: { '/1/0/1': 1 } },
        { op: 'write', path: '/1/0/1', value: null },
        { op: 'write', path: '/1/0/1', value: [1] },
        { op: 'write', path: '/1/0/1', value: { type: 'integer', value: 1.5 } },
        { op: 'write', path: '/1/0/1', value: { type: 'opaque', hex: 'abc' } },
        { op: 'write', path: '/1/0/1', value: { type: 'bytes', value: 'x' } },
        { op: 'write', path: '/1/0/1', value: { type: 'string', value: 'x', extra: 1 } },
        { op: 'write', path: '/1/0', values: ['x'] },
        { op: 'write', path: '/1/0/1', value: 1, partial: 'yes' },
        { op: 'execute', path: '/3/0/4', args: 5 },
        { op: 'write-attributes', path: '/3/0/9' },
        { op: 'write-attributes', path: '/3/0/9', attributes: { pmin: true } },
        { op: 'observe', path: '/3/0/9', attributes: { pmin: null } },
        { op: 'trigger-update', path: '/1/0/8' },
      ];
      for (const body of bad) {
        const a = await http(port, { method: 'POST', path: '/v1/devices/dev1/requests', token, body: JSON.stringify(body) });
        expect(a.status, JSON.stringify(body)).to.equal(400);
        expect(errorCode(a), JSON.stringify(body)).to.equal('invalid');
        expect((a.json as { error: { message: string } }).error.message).to.be.a('string').and.not.equal('');
      }
      expect(fake.submitted.length).to.equal(before);
    });

    it('maps DmError: invalid → 400, unsupported → 400, not_registered → 404, shutdown → 503', async () => {
      const a = await post('/v1/devices/dev1/requests', { op: 'write', path: '/1/0/1', value: 'oops' });
      expect([a.status, errorCode(a)]).to.deep.equal([400, 'invalid']);
      expect((a.json as { error: { message: string } }).error.message).to.match(/not an integer/);
      const u = await post('/v1/devices/dev1/requests', { op: 'trigger-bootstrap' });
      expect([u.status, errorCode(u)]).to.deep.equal([400, 'unsupported']);
      const b = await post('/v1/devices/ghost/requests', { op: 'read', path: '/3/0' });
      expect([b.status, errorCode(b)]).to.deep.equal([404, 'not_registered']);
      fake.shuttingDown = true;
      try {
        const c = await post('/v1/devices/dev1/requests', { op: 'read', path: '/3/0' });
        expect([c.status, errorCode(c)]).to.deep.equal([503, 'shutdown']);
      } finally {
        fake.shuttingDown = false;
      }
    });

    it('refuses bad JSON, an empty body, non-UTF-8, and other content types', async () => {
      const a = await post('/v1/devices/dev1/requests', '{"op": "read", ');
      expect([a.status, errorCode(a)]).to.deep.equal([400, 'bad_json']);
      const e = await post('/v1/devices/dev1/requests', '');
      expect([e.status, errorCode(e)]).to.deep.equal([400, 'bad_json']);
      const n = await http(port, { method: 'POST', path: '/v1/devices/dev1/requests', token, body: Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]) });
      expect([n.status, errorCode(n)]).to.deep.equal([400, 'bad_json']);
      for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
        const b = await post('/v1/devices/dev1/requests', '{"op":"read","path":"/3/0"}', { 'Content-Type': type });
        expect([b.status, errorCode(b)], type).to.deep.equal([415, 'unsupported_media_type']);
      }
      const c = await post('/v1/devices/dev1/requests', '{"op":"read","path":"/3/0"}', { 'Content-Type': 'application/json; charset=utf-8' });
      expect(c.status).to.equal(200);
    });

    it('refuses a body over 64 KiB with 413, and still accepts one just under', async () => {
      const pad = (n: number): string => {
        const base = JSON.stringify({ op: 'execute', path: '/3/0/4', args: '' });
        return JSON.stringify({ op: 'execute', path: '/3/0/4', args: 'x'.repeat(n - base.length) });
      };
      const big = pad(64 * 1024 + 1);
      expect(Buffer.byteLength(big)).to.equal(64 * 1024 + 1);
      const a = await post('/v1/devices/dev1/requests', big);
      expect([a.status, errorCode(a)]).to.deep.equal([413, 'too_large']);
      const huge = await post('/v1/devices/dev1/requests', pad(200 * 1024));
      expect(huge.status).to.equal(413);
      const ok = await post('/v1/devices/dev1/requests', pad(64 * 1024));
      expect(ok.status).to.equal(200);
    });

    it('answers 202 with Location at once for wait=0, and the ticket can be polled until done', async () => {
      const a = await post('/v1/devices/sleepy/requests?wait=0', { op: 'write', path: '/1/0/1', value: 60 });
      expect(a.status).to.equal(202);
      const r = a.json as DmResult;
      expect(r.state).to.equal('queued');
      expect(a.headers.location).to.equal(`/v1/requests/${r.id}`);
      const p1 = await get(a.headers.location as string);
      expect(p1.status).to.equal(200);
      expect((p1.json as DmResult).state).to.equal('queued');
      fake.markSent(r.id);
      expect(((await get(`/v1/requests/${r.id}`)).json as DmResult).state).to.equal('sent');
      const released = fake.release(r.id);
      const p2 = await get(`/v1/requests/${r.id}`);
      expect(p2.json).to.deep.equal(released);
    });

    it('answers 202 when the wait runs out, and 200 when the answer comes during the wait', async () => {
      const started = Date.now();
      const a = await post('/v1/devices/sleepy/requests?wait=0.3', { op: 'read', path: '/3/0' });
      expect(a.status).to.equal(202);
      expect(Date.now() - started).to.be.at.least(250);
      const pending = post('/v1/devices/sleepy/requests?wait=10', { op: 'read', path: '/3/0/0' });
      // the request is submitted once the POST is read; release it as soon as it is there
      let id: string | undefined;
      for (let i = 0; i < 200 && id === undefined; i++) {
        await new Promise((r) => setTimeout(r, 10));
        const last = fake.submitted[fake.submitted.length - 1];
        if (last && last.request.op === 'read' && (last.request as { path: string }).path === '/3/0/0') id = last.id;
      }
      expect(id).to.be.a('string');
      fake.release(id!, '2.05');
      const b = await pending;
      expect(b.status).to.equal(200);
      expect(b.json).to.include({ id, state: 'done', code: '2.05' });
    });

    it('refuses a bad wait with 400', async () => {
      for (const w of ['-1', '301', 'abc', '1e3', '']) {
        const a = await post(`/v1/devices/dev1/requests?wait=${w}`, { op: 'read', path: '/3/0' });
        expect(a.status, w).to.equal(400);
      }
    });

    it('answers 404 for an unknown ticket', async () => {
      const a = await get('/v1/requests/nope');
      expect([a.status, errorCode(a)]).to.deep.equal([404, 'unknown_request']);
    });
  });

  describe('observations and values', () => {
    it("lists the device's observations", async () => {
      const a = await get('/v1/devices/dev1/observations');
      expect(a.status).to.equal(200);
      const body = a.json as { endpoint: string; observations: ObservationInfo[] };
      expect(body.endpoint).to.equal('dev1');
      expect(body.observations).to.deep.equal(await fake.observations(Buffer.from('dev1')));
    });

    it('gives the latest values, all or below a path', async () => {
      const all = (await get('/v1/devices/dev1/values')).json as { values: LatestValue[] };
      expect(all.values.map((v) => v.path)).to.deep.equal(DEVICE_VALUES.map((v) => v.path));
      const one = (await get(`/v1/devices/dev1/values?path=${encodeURIComponent('/3/0/9')}`)).json as { values: LatestValue[] };
      expect(one.values).to.deep.equal([{ ...DEVICE_VALUES[1], at: 1_700_000_000_000, source: 'notify' }]);
    });

    it('answers 400 for a bad path and 404 for an unregistered endpoint', async () => {
      const a = await get('/v1/devices/dev1/values?path=3/0');
      expect([a.status, errorCode(a)]).to.deep.equal([400, 'invalid']);
      const b = await get('/v1/devices/ghost/observations');
      expect([b.status, errorCode(b)]).to.deep.equal([404, 'not_registered']);
      const c = await get('/v1/devices/ghost/values');
      expect(c.status).to.equal(404);
    });
  });

  describe('routing', () => {
    it('answers 404 for unknown paths', async () => {
      for (const p of ['/', '/v2/health', '/v1', '/v1/health/', '/v1/devices/dev1', '/v1/devices/dev1/nothing', '/v1/registrations/dev1/x']) {
        const a = await get(p);
        expect(a.status, p).to.equal(404);
        expect(errorCode(a)).to.equal('not_found');
      }
    });

    it('answers 405 with Allow for a wrong method', async () => {
      const cases: [string, string, string][] = [
        ['POST', '/v1/health', 'GET'],
        ['DELETE', '/v1/registrations/dev1', 'GET'],
        ['GET', '/v1/devices/dev1/requests', 'POST'],
        ['PUT', '/v1/requests/t1', 'GET'],
        ['OPTIONS', '/v1/registrations', 'GET'],
      ];
      for (const [method, path, allow] of cases) {
        const a = await http(port, { method, path, token, ...(method === 'POST' || method === 'PUT' ? { body: '{}' } : {}) });
        expect(a.status, `${method} ${path}`).to.equal(405);
        expect(a.headers.allow).to.equal(allow);
        expect(errorCode(a)).to.equal('method_not_allowed');
      }
    });

    it('sends no CORS headers', async () => {
      const a = await get('/v1/health', { Origin: 'http://evil.example' });
      expect(a.headers['access-control-allow-origin']).to.equal(undefined);
    });
  });

  describe('shutdown', () => {
    it('answers requests still waiting with 202 when closed, then stops listening', async () => {
      const dir2 = tempDir('lwbs-admin-close-');
      const store2 = await open(dir2);
      const fake2 = new FakeManagement();
      const s2 = await startAdminServer({ host: '127.0.0.1', port: 0, token: 'a-test-token-0123456789', management: fake2, store: store2 });
      const p2 = s2.address().port;
      try {
        const pending = http(p2, { method: 'POST', path: '/v1/devices/sleepy/requests?wait=60', token: 'a-test-token-0123456789', body: '{"op":"read","path":"/3/0"}' });
        for (let i = 0; i < 200 && fake2.submitted.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
        expect(fake2.submitted.length).to.equal(1);
        const started = Date.now();
        await s2.close();
        const a = await pending;
        expect(a.status).to.equal(202);
        expect(Date.now() - started).to.be.below(5000);
        let refused: unknown;
        try {
          await http(p2, { path: '/v1/health', token: 'a-test-token-0123456789' });
        } catch (e) {
          refused = e;
        }
        expect((refused as NodeJS.ErrnoException | undefined)?.code).to.equal('ECONNREFUSED');
      } finally {
        await s2.close();
        await store2.close();
        removeDir(dir2);
      }
    });

    it('fails to start on a port in use, with the error', async () => {
      let error: unknown;
      try {
        await startAdminServer({ host: '127.0.0.1', port, token, management: fake, store });
      } catch (e) {
        error = e;
      }
      expect((error as NodeJS.ErrnoException | undefined)?.code).to.equal('EADDRINUSE');
    });
  });
});

