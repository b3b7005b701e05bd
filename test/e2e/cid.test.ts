/**
 * RFC 9146 Connection ID through the whole app: a simulated device asking for CIDs bootstraps and
 * registers over DTLS-PSK, its socket is rebound to a new port (a NAT rebinding), and the first
 * record from there - an Update, or anything else on the same DTLS session, no new handshake -
 * moves the registration (without renewing its lifetime when it was no Update), so device
 * management reaches it at the new address.
 */
import { expect } from 'chai';
import type { App } from '../../src/app.js';
import type { DtlsClientDiagnostic, DtlsClientEndpoint } from '../../src/dtls/client.js';
import { DeviceSimulator } from '../../src/simulator/simulator.js';
import { open, removeDir, tempDir } from '../store/support.js';
import { FAST } from '../simulator/support.js';
import { startDtlsApp } from '../simulator/dtls-app.js';

const PROFILE = {
  name: 'nat-meters',
  match: ['urn:nat:*'],
  delete: ['/0', '/1'],
  servers: [{ shortServerId: 7, handOff: true, lifetime: 300, binding: 'U', security: { mode: 'psk' } }],
};
const BS_KEY = Buffer.from('a0b1c2d3e4f5061728394a5b6c7d8e9f', 'hex');

/** The simulator's DTLS endpoint for the server on 127.0.0.1:`port`. */
function dtlsEndpointOf(d: DeviceSimulator, port: number): DtlsClientEndpoint {
  const ep = d.dtlsEndpoint({ address: '127.0.0.1', port });
  if (ep === undefined) throw new Error(`no DTLS route to port ${port}`);
  return ep;
}

describe('e2e: DTLS Connection ID - a registered device behind a rebinding NAT keeps its session', function () {
  this.timeout(60_000);
  let dir: string;
  let app: App;
  let bsUri: string;
  let regsUri: string;
  let d: DeviceSimulator | undefined;
  let d2: DeviceSimulator | undefined;

  before(async () => {
    dir = tempDir('lwbs-e2e-cid-');
    const store = await open(dir);
    await store.profiles.put(PROFILE.name, JSON.stringify(PROFILE));
    await store.devices.add({ endpoint: 'urn:nat:1', profile: PROFILE.name, auth: { kind: 'psk', identity: 'nat-bs-1', key: BS_KEY } });
    await store.devices.add({ endpoint: 'urn:nat:2', profile: PROFILE.name, auth: { kind: 'psk', identity: 'nat-bs-2', key: BS_KEY } });
    await store.close();
    ({ app, bsUri, regsUri } = await startDtlsApp(dir));
  });
  after(async () => {
    await d?.close({ timeoutMs: 2000 });
    await d2?.close({ timeoutMs: 2000 });
    await app.close();
    removeDir(dir);
  });

  it('registers with CIDs, rebinds, updates from the new port without a handshake, and a DM read reaches it there', async () => {
    const diags: DtlsClientDiagnostic[] = [];
    d = await DeviceSimulator.start({
      endpoint: 'urn:nat:1', transmission: FAST, lwm2mVersion: '1.1',
      bootstrapPsk: { identity: 'nat-bs-1', key: BS_KEY },
      dtls: { retransmit: { initialMs: 200, maxMs: 1000 }, connectionIdLength: 4, onDiagnostic: (x) => diags.push(x) },
    });
    expect((await d.bootstrap(bsUri, { timeoutMs: 10_000 })).outcome).to.equal('success');
    const r = await d.register({ timeoutMs: 10_000 });
    expect(r, r.diagnostic).to.deep.include({ outcome: 'success', code: '2.01', server: regsUri });
    const regsPort = app.addresses.get('registration.coaps')!.port;
    const ep = dtlsEndpointOf(d, regsPort);
    const ids = ep.sessionConnectionIds('127.0.0.1', regsPort);
    expect(ids?.own.length).to.equal(4);
    expect(ids?.peer.length).to.equal(6); // lwbs hands out 6-byte CIDs by default
    const before = (await app.store.registry.getByEndpoint('urn:nat:1'))!;
    expect(before.port).to.equal(ep.address().port);

    const moved = await ep.rebind();
    expect(moved.port).to.not.equal(before.port);
    const u = await d.update();
    expect(u, u.diagnostic).to.deep.include({ outcome: 'success', code: '2.04' });
    const after = (await app.store.registry.getByEndpoint('urn:nat:1'))!;
    expect(after.id).to.equal(before.id);
    expect(after.port).to.equal(moved.port);
    // One handshake with the registration server: the Update went on the session it already had.
    expect(diags.filter((x) => x.kind === 'handshake_started' && x.peer.port === regsPort)).to.have.length(1);

    const read = await app.management.run(Buffer.from('urn:nat:1'), { op: 'read', path: '/3/0/0' });
    expect(read).to.deep.include({ state: 'done', code: '2.05', success: true });
    const value = read.values?.find((v) => v.path === '/3/0/0');
    expect(value && 'value' in value ? value.value : undefined).to.equal(d.value('/3/0/0')?.value);
  });

  it('the registration follows the session on the first record from the new port, before any Update, without renewing its lifetime', async () => {
    d2 = await DeviceSimulator.start({
      endpoint: 'urn:nat:2', transmission: FAST, lwm2mVersion: '1.1',
      bootstrapPsk: { identity: 'nat-bs-2', key: BS_KEY },
      dtls: { retransmit: { initialMs: 200, maxMs: 1000 }, connectionIdLength: 0 },
    });
    expect((await d2.bootstrap(bsUri, { timeoutMs: 10_000 })).outcome).to.equal('success');
    expect((await d2.register({ timeoutMs: 10_000 })).outcome).to.equal('success');
    const regsPort = app.addresses.get('registration.coaps')!.port;
    const ep = dtlsEndpointOf(d2, regsPort);
    const before = (await app.store.registry.getByEndpoint('urn:nat:2'))!;
    const moved = await ep.rebind();
    // A CoAP ping (empty CON) on the session: not an Update, but an authenticated, newest record.
    await new Promise<void>((resolve, reject) => ep.send(Buffer.from([0x40, 0x00, 0x7a, 0x01]), regsPort, '127.0.0.1', (e) => (e ? reject(e) : resolve())));
    const deadline = Date.now() + 5000;
    let after = before;
    while (after.port === before.port && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
      after = (await app.store.registry.getByEndpoint('urn:nat:2'))!;
    }
    expect(after).to.deep.include({ id: before.id, port: moved.port, updatedAt: before.updatedAt, expiresAt: before.expiresAt });
    const events = await app.store.registry.events(Buffer.from('urn:nat:2'));
    expect(events.filter((e) => e.kind === 'update').map((e) => e.detail)).to.deep.equal([`address 127.0.0.1:${before.port} → 127.0.0.1:${moved.port} (DTLS connection ID)`]);

    const read = await app.management.run(Buffer.from('urn:nat:2'), { op: 'read', path: '/3/0/0' });
    expect(read).to.deep.include({ state: 'done', code: '2.05', success: true });
  });
});
