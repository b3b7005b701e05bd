/**
 * RFC 9146 Connection ID through the whole app: a simulated device asking for CIDs bootstraps and
 * registers over DTLS-PSK, its socket is rebound to a new port (a NAT rebinding), and its next
 * Update - on the same DTLS session, no new handshake - moves the registration, so device
 * management reaches it at the new address.
 */
import { expect } from 'chai';
import type { App } from '../../src/app.js';
import type { DtlsClientDiagnostic, DtlsClientEndpoint } from '../../src/dtls/client.js';
import { DeviceSimulator } from '../../src/simulator/simulator.js';
import { SimTransport } from '../../src/simulator/transport.js';
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

/** The simulator's DTLS endpoint for a server (the simulator keeps its transport private; this test peeks, checked at run time). */
function dtlsEndpointOf(d: DeviceSimulator, port: number): DtlsClientEndpoint {
  const transport: unknown = Reflect.get(d, 'transport');
  if (!(transport instanceof SimTransport)) throw new Error('the simulator has no SimTransport');
  const ep = transport.dtlsEndpoint({ address: '127.0.0.1', port });
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

  before(async () => {
    dir = tempDir('lwbs-e2e-cid-');
    const store = await open(dir);
    await store.profiles.put(PROFILE.name, JSON.stringify(PROFILE));
    await store.devices.add({ endpoint: 'urn:nat:1', profile: PROFILE.name, auth: { kind: 'psk', identity: 'nat-bs-1', key: BS_KEY } });
    await store.close();
    ({ app, bsUri, regsUri } = await startDtlsApp(dir));
  });
  after(async () => {
    await d?.close({ timeoutMs: 2000 });
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
});
