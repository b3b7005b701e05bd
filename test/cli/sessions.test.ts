/** `lwbs sessions ...` as a user runs it, over sessions recorded with the store API. */
import { expect } from 'chai';
import type { NewSessionRequest } from '../../src/store/types.js';
import { Clock } from '../store/support.js';
import { CliSandbox } from './support.js';

const T0 = 1_700_000_000_000;

const OK_REQUESTS: NewSessionRequest[] = [
  { method: 'DISCOVER', path: '/0', payloadSize: 0, responseCode: '2.05', responseSize: 57, startedAt: T0 + 5, durationMs: 10 },
  { method: 'DELETE', path: '/0', payloadSize: 0, responseCode: '2.02', responseSize: 0, startedAt: T0 + 20, durationMs: 8 },
  { method: 'WRITE', path: '/0/1', contentFormat: 112, payloadSize: 130, responseCode: '2.04', responseSize: 0, startedAt: T0 + 30, durationMs: 12 },
  { method: 'WRITE', path: '/1/0', contentFormat: 112, payloadSize: 42, responseCode: '2.04', responseSize: 0, startedAt: T0 + 50, durationMs: 9 },
  { method: 'FINISH', path: '/bs', payloadSize: 0, responseCode: '2.04', responseSize: 0, startedAt: T0 + 70, durationMs: 7 },
];

const TIMEOUT_REQUEST: NewSessionRequest = { method: 'WRITE', path: '/0/1', contentFormat: 11542, payloadSize: 80, startedAt: T0 + 10_010, durationMs: 2000, error: 'timeout' };

interface SessionJson {
  id: string;
  endpoint: { text?: string; hex: string } | null;
  peer: string;
  security: string;
  profile: string | null;
  lwm2mVersion: string | null;
  preferredFormat: number | null;
  contentFormat: number | null;
  startedAt: string;
  endedAt: string | null;
  durationMs: number | null;
  outcome: string;
  failureCause: string | null;
  failureDetail: string | null;
  requestCount: number;
  requests?: Array<Record<string, unknown>>;
}

describe('cli: lwbs sessions', function () {
  this.timeout(60_000);
  let box: CliSandbox;

  before(async () => {
    box = new CliSandbox();
    const clock = new Clock();
    await box.withStore(
      async (store) => {
        const ok = await store.sessions.start({
          id: 'sess-ok',
          endpoint: 'ep1',
          peer: '127.0.0.1:40001',
          security: 'nosec',
          profile: 'meters',
          lwm2mVersion: '1.1',
          preferredFormat: 112,
          contentFormat: 112,
          startedAt: T0,
        });
        for (const r of OK_REQUESTS) await store.sessions.addRequest(ok.id, r);
        clock.t = T0 + 1500;
        await store.sessions.finish(ok.id, 'success');

        await store.sessions.start({ id: 'sess-timeout', endpoint: 'ep1', peer: '127.0.0.1:40002', security: 'nosec', profile: 'meters', startedAt: T0 + 10_000 });
        await store.sessions.addRequest('sess-timeout', TIMEOUT_REQUEST);
        clock.t = T0 + 12_000;
        await store.sessions.finish('sess-timeout', 'failure', 'timeout', 'no answer to Write /0/1');

        await store.sessions.start({ id: 'sess-bin', endpoint: Buffer.from([0x01, 0xfe]), peer: '[::1]:5000', security: 'psk', startedAt: T0 + 20_000 });

        await store.sessions.start({ id: 'sess-anon', peer: '10.0.0.9:6000', security: 'nosec', startedAt: T0 + 30_000 });
        clock.t = T0 + 30_001;
        await store.sessions.finish('sess-anon', 'failure', 'bad_request', 'no endpoint name');

        await store.sessions.start({ id: 'sess-cancel', endpoint: 'ep2', peer: '127.0.0.1:40003', security: 'nosec', startedAt: T0 + 40_000 });
        clock.t = T0 + 40_500;
        await store.sessions.finish('sess-cancel', 'cancelled', 'superseded');
      },
      { now: clock.now },
    );
  });
  after(() => box.remove());

  it('lists every session newest first as JSON, with stable fields', () => {
    const all = box.json<SessionJson[]>(['sessions', 'list', '--json']);
    expect(all.map((s) => s.id)).to.deep.equal(['sess-cancel', 'sess-anon', 'sess-bin', 'sess-timeout', 'sess-ok']);
    const ok = all.find((s) => s.id === 'sess-ok')!;
    expect(ok).to.deep.equal({
      id: 'sess-ok',
      endpoint: { text: 'ep1', hex: Buffer.from('ep1').toString('hex') },
      peer: '127.0.0.1:40001',
      security: 'nosec',
      profile: 'meters',
      lwm2mVersion: '1.1',
      preferredFormat: 112,
      contentFormat: 112,
      startedAt: new Date(T0).toISOString(),
      endedAt: new Date(T0 + 1500).toISOString(),
      durationMs: 1500,
      outcome: 'success',
      failureCause: null,
      failureDetail: null,
      requestCount: OK_REQUESTS.length,
    });
    const bin = all.find((s) => s.id === 'sess-bin')!;
    expect(bin.endpoint).to.deep.equal({ hex: '01fe' });
    expect([bin.outcome, bin.endedAt, bin.durationMs]).to.deep.equal(['running', null, null]);
    expect(all.find((s) => s.id === 'sess-anon')!.endpoint).to.equal(null);
  });

  it('filters by endpoint (text or hex), outcome, and limit', () => {
    const ids = (args: string[]): string[] => box.json<SessionJson[]>(['sessions', 'list', '--json', ...args]).map((s) => s.id);
    expect(ids(['--endpoint', 'ep1'])).to.deep.equal(['sess-timeout', 'sess-ok']);
    expect(ids(['--endpoint', '01FE', '--endpoint-hex'])).to.deep.equal(['sess-bin']);
    expect(ids(['--outcome', 'failure'])).to.deep.equal(['sess-anon', 'sess-timeout']);
    expect(ids(['--endpoint', 'ep1', '--outcome', 'success', '--limit', '1'])).to.deep.equal(['sess-ok']);
  });

  it('lists sessions as a table, binary endpoints in hex', () => {
    const r = box.run(['sessions', 'list']);
    expect(r.code, r.err).to.equal(0);
    const lines = r.out.trim().split('\n');
    expect(lines[0]).to.match(/^ID\s+STARTED\s+ENDPOINT\s+PEER\s+SECURITY\s+OUTCOME\s+CAUSE\s+REQUESTS\s+DURATION$/);
    expect(lines.slice(1).map((l) => l.split(/\s+/)[0])).to.deep.equal(['sess-cancel', 'sess-anon', 'sess-bin', 'sess-timeout', 'sess-ok']);
    expect(r.out).to.match(/^sess-bin\s+\S+ \S+\s+0x01fe\s+\[::1\]:5000\s+psk\s+running\s/m);
    expect(r.out).to.match(/^sess-timeout\s.*\sep1\s.*failure\s+timeout\s+1\s+2\.00 s$/m);
  });

  it('shows one session: a header, then one line per request', () => {
    const r = box.run(['sessions', 'show', 'sess-ok']);
    expect(r.code, r.err).to.equal(0);
    expect(r.out).to.match(/^session sess-ok$/m);
    expect(r.out).to.match(/endpoint:\s+ep1$/m);
    expect(r.out).to.match(/peer:\s+127\.0\.0\.1:40001$/m);
    expect(r.out).to.match(/profile:\s+meters$/m);
    expect(r.out).to.match(/LwM2M version:\s+1\.1$/m);
    expect(r.out).to.match(/outcome:\s+success$/m);
    expect(r.out).to.match(/^requests \(5\):$/m);
    expect(r.out).to.match(/^\s+SEQ\s+METHOD\s+PATH\s+FORMAT\s+SENT\s+RECEIVED\s+CODE\s+DURATION\s+ERROR$/m);
    const rows = r.out.split('\n').filter((l) => /^\s+\d+\s/.test(l));
    expect(rows).to.have.length(OK_REQUESTS.length);
    OK_REQUESTS.forEach((q, i) => {
      const row = rows[i]!;
      expect(row).to.match(new RegExp(`^\\s+${i + 1}\\s+${q.method}\\s+${q.path}\\s`));
      expect(row).to.include(`${q.payloadSize} B`);
      expect(row).to.include(q.responseCode!);
      expect(row).to.include(`${q.durationMs} ms`);
      if (q.contentFormat === 112) expect(row).to.include('senml-cbor (112)');
    });

    const t = box.run(['sessions', 'show', 'sess-timeout']);
    expect(t.out).to.match(/outcome:\s+failure: timeout$/m);
    expect(t.out).to.match(/detail:\s+no answer to Write \/0\/1$/m);
    expect(t.out).to.match(/^\s+1\s+WRITE\s+\/0\/1\s+tlv \(11542\)\s+80 B\s+-\s+-\s+2\.00 s\s+timeout$/m);
  });

  it('shows one session as JSON with its requests', () => {
    const s = box.json<SessionJson>(['sessions', 'show', 'sess-timeout', '--json']);
    expect(s).to.deep.include({ id: 'sess-timeout', outcome: 'failure', failureCause: 'timeout', failureDetail: 'no answer to Write /0/1', requestCount: 1, durationMs: 2000 });
    expect(s.requests).to.deep.equal([
      {
        seq: 1,
        method: 'WRITE',
        path: '/0/1',
        contentFormat: 11542,
        payloadSize: 80,
        responseCode: null,
        responseSize: null,
        startedAt: new Date(TIMEOUT_REQUEST.startedAt!).toISOString(),
        durationMs: 2000,
        error: 'timeout',
      },
    ]);
  });

  it('exits 1 for an unknown session and 2 for bad options', () => {
    const unknown = box.run(['sessions', 'show', 'nope']);
    expect(unknown.code).to.equal(1);
    expect(unknown.err).to.match(/session "nope" does not exist/);
    expect(box.run(['sessions', 'list', '--outcome', 'great']).code).to.equal(2);
    expect(box.run(['sessions', 'list', '--limit', '0']).code).to.equal(2);
  });
});
