/**
 * `lwbs registry list | show` as a user runs them: a real process reading a real store that the
 * test filled through `store.registry.register(...)`.
 */
import { expect } from 'chai';
import type { NewRegistration } from '../../src/store/types.js';
import { PROFILE_DOC } from '../store/support.js';
import { CliSandbox } from './support.js';

interface RegistrationOut {
  id: string;
  endpoint: { text?: string; hex: string };
  address: string;
  port: number;
  security: string;
  lwm2mVersion: string;
  binding: string;
  queueMode: boolean;
  lifetime: number;
  objects: { id: number; version: string | null; instances: number[] }[];
  attributes: Record<string, string>;
  registeredAt: string;
  expiresAt: string | null;
  events?: { kind: string; registrationId: string | null; peer: string | null; at: string }[];
}

const BINARY = new Uint8Array([0xde, 0xad, 0x00, 0x01]);

describe('cli registry', function () {
  this.timeout(60_000);
  let box: CliSandbox;
  const ids = new Map<string, string>();

  const reg = (endpoint: string | Uint8Array, extra: Partial<NewRegistration> = {}): NewRegistration => ({
    endpoint,
    address: '192.0.2.10',
    port: 56830,
    security: 'nosec',
    lwm2mVersion: '1.1',
    binding: 'U',
    queueMode: false,
    lifetime: 86400,
    objects: [
      { id: 1, instances: [0] },
      { id: 3, version: '1.1', instances: [0] },
      { id: 5, instances: [] },
      { id: 3303, version: '1.1', instances: [0, 1] },
    ],
    ...extra,
  });

  before(async () => {
    box = new CliSandbox('lwbs-cli-registry-');
    await box.withStore(async (store) => {
      await store.profiles.put('p', PROFILE_DOC);
      for (const ep of ['meter-1', 'meter-2', 'meter-3']) await store.devices.add({ endpoint: ep, profile: 'p' });
      await store.devices.add({ endpoint: BINARY, profile: 'p' });
      await store.devices.add({ endpoint: 'gone', profile: 'p' });
      ids.set('meter-1', (await store.registry.register(reg('meter-1', { attributes: { foo: 'bar' } }))).registration.id);
      const r2 = (await store.registry.register(reg('meter-2', { address: '2001:db8::7', port: 5683, queueMode: true, lifetime: 0, lwm2mVersion: '1.2', objects: [{ id: 1, instances: [0] }] }))).registration;
      ids.set('meter-2', r2.id);
      await store.registry.update(r2.id, { detail: 'moved' });
      ids.set('meter-3', (await store.registry.register(reg('meter-3'))).registration.id);
      ids.set('binary', (await store.registry.register(reg(BINARY))).registration.id);
      const g = (await store.registry.register(reg('gone'))).registration;
      await store.registry.deregister(g.id, { peer: '192.0.2.10:56830' });
    });
  });
  after(() => box.remove());

  it('lists registrations as JSON, sorted by endpoint bytes, in the admin API shape', () => {
    const list = box.json<RegistrationOut[]>(['registry', 'list', '--json']);
    expect(list.map((r) => r.endpoint.hex)).to.deep.equal([Buffer.from('meter-1'), Buffer.from('meter-2'), Buffer.from('meter-3'), Buffer.from(BINARY)].map((b) => b.toString('hex')));
    const m1 = list[0]!;
    expect(m1.id).to.equal(ids.get('meter-1'));
    expect(m1.endpoint.text).to.equal('meter-1');
    expect(m1).to.include({ address: '192.0.2.10', port: 56830, security: 'nosec', lwm2mVersion: '1.1', binding: 'U', queueMode: false, lifetime: 86400 });
    expect(m1.objects[1]).to.deep.equal({ id: 3, version: '1.1', instances: [0] });
    expect(m1.objects[0]).to.deep.equal({ id: 1, version: null, instances: [0] });
    expect(m1.attributes).to.deep.equal({ foo: 'bar' });
    expect(new Date(m1.registeredAt).toISOString()).to.equal(m1.registeredAt);
    expect(list[3]!.endpoint).to.deep.equal({ hex: Buffer.from(BINARY).toString('hex') });
    expect(list[1]!.expiresAt).to.equal(null);
  });

  it('lists as a table with endpoint, id, address, version, binding, lifetime, expiry and object count', () => {
    const r = box.run(['registry', 'list']);
    expect(r.code).to.equal(0);
    const lines = r.out.trimEnd().split('\n');
    expect(lines[0]).to.match(/^ENDPOINT\s+ID\s+ADDRESS\s+LWM2M\s+BINDING\s+LIFETIME\s+EXPIRES IN\s+OBJECTS$/);
    expect(lines).to.have.length(5);
    const m1 = lines.find((l) => l.startsWith('meter-1 '))!;
    expect(m1).to.include(ids.get('meter-1')!);
    // expires a day after registering, a few seconds ago at most
    expect(m1).to.match(/192\.0\.2\.10:56830\s+1\.1\s+U\s+86400 s\s+23 h 5[89] min\s+4$/);
    const m2 = lines.find((l) => l.startsWith('meter-2 '))!;
    expect(m2).to.include('[2001:db8::7]:5683');
    expect(m2).to.match(/U queue\s+never\s+never\s+1$/);
    expect(lines.some((l) => l.startsWith(`0x${Buffer.from(BINARY).toString('hex')} `))).to.equal(true);
    expect(r.out).not.to.include('gone');
  });

  it('pages with --limit and --offset and says how many there are', () => {
    const r = box.run(['registry', 'list', '--limit', '2', '--offset', '1']);
    expect(r.code).to.equal(0);
    const lines = r.out.trimEnd().split('\n');
    expect(lines[1]!.startsWith('meter-2 ')).to.equal(true);
    expect(lines[2]!.startsWith('meter-3 ')).to.equal(true);
    expect(lines[3]).to.equal('(2-3 of 4 registrations; use --limit and --offset to see more)');
    expect(box.json<unknown[]>(['registry', 'list', '--json', '--limit', '1'])).to.have.length(1);
  });

  it('shows every field, the objects as links, their versions and the last events', () => {
    const r = box.run(['registry', 'show', 'meter-1']);
    expect(r.code).to.equal(0);
    expect(r.out).to.match(new RegExp(`^registration ${ids.get('meter-1')}$`, 'm'));
    expect(r.out).to.match(/^\s+endpoint:\s+meter-1$/m);
    expect(r.out).to.match(/^\s+address:\s+192\.0\.2\.10:56830$/m);
    expect(r.out).to.match(/^\s+LwM2M version:\s+1\.1$/m);
    expect(r.out).to.match(/^\s+queue mode:\s+no$/m);
    expect(r.out).to.match(/^\s+lifetime:\s+86400 s$/m);
    expect(r.out).to.match(/^\s+objects:\s+<\/1\/0>,<\/3\/0>,<\/5>,<\/3303\/0>,<\/3303\/1>$/m);
    expect(r.out).to.match(/^\s+object versions:\s+\/3 1\.1, \/3303 1\.1$/m);
    expect(r.out).to.match(/^\s+other parameters:\s+foo=bar$/m);
    expect(r.out).to.match(/^last events \(1, newest first\):$/m);
    expect(r.out).to.match(new RegExp(`^\\s+\\S+ \\S+\\s+register\\s+${ids.get('meter-1')}`, 'm'));
  });

  it('shows events newest first as JSON, limited by --events', () => {
    const full = box.json<RegistrationOut>(['registry', 'show', 'meter-2', '--json']);
    expect(full.events!.map((e) => e.kind)).to.deep.equal(['update', 'register']);
    expect(full).to.include({ address: '2001:db8::7', queueMode: true, lifetime: 0, expiresAt: null });
    const one = box.json<RegistrationOut>(['registry', 'show', 'meter-2', '--json', '--events', '1']);
    expect(one.events!.map((e) => e.kind)).to.deep.equal(['update']);
  });

  it('shows a binary endpoint given with --endpoint-hex', () => {
    const r = box.json<RegistrationOut>(['registry', 'show', '--endpoint-hex', Buffer.from(BINARY).toString('hex'), '--json']);
    expect(r.id).to.equal(ids.get('binary'));
  });

  it('fails with exit 1 for an endpoint that is not registered, naming its last event', () => {
    const r = box.run(['registry', 'show', 'gone']);
    expect(r.code).to.equal(1);
    expect(r.err).to.match(/endpoint gone is not registered \(last event: deregister at /);
    const n = box.run(['registry', 'show', 'never-seen']);
    expect(n.code).to.equal(1);
    expect(n.err.trim()).to.equal('lwbs: endpoint never-seen is not registered');
  });

  it('answers usage errors with exit 2', () => {
    expect(box.run(['registry', 'list', '--limit', '0']).code).to.equal(2);
    expect(box.run(['registry', 'list', '--offset', '-3']).code).to.equal(2);
    expect(box.run(['registry', 'show']).code).to.equal(2);
    expect(box.run(['registry', 'show', '--endpoint-hex', 'xyz']).code).to.equal(2);
    expect(box.run(['registry', 'show', 'meter-1', '--events', 'many']).code).to.equal(2);
  });

  it('says so when nothing is registered', () => {
    const empty = new CliSandbox('lwbs-cli-registry-empty-');
    try {
      const r = empty.run(['registry', 'list']);
      expect(r.code).to.equal(0);
      expect(r.out.trim()).to.equal('no registrations');
      expect(empty.json<unknown[]>(['registry', 'list', '--json'])).to.deep.equal([]);
    } finally {
      empty.remove();
    }
  });
});
