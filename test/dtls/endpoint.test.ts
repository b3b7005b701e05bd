import { expect } from 'chai';
import { generate, parse } from 'coap-packet';
import { CoapNode, type CoapIncomingRequest } from '../../src/coap/coap-node.js';
import type { PeerInfo } from '../../src/coap/endpoint.js';
import { AlertDescription, AlertLevel } from '../../src/dtls/constants.js';
import { DtlsEndpoint, DtlsNoSessionError } from '../../src/dtls/endpoint.js';
import type { DtlsDiagnostic } from '../../src/dtls/server.js';
import { UdpPskClient } from './psk-client.js';

const LOCAL = '127.0.0.1';
const KEY = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
const BINARY_ID = Buffer.from([0x00, 0xff, 0x10, 0x80]);

describe('dtls/DtlsEndpoint over UDP', function () {
  this.timeout(15000);
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const f of cleanup.splice(0).reverse()) await f();
  });

  async function endpoint(diags: DtlsDiagnostic[] = []): Promise<DtlsEndpoint> {
    const ep = await DtlsEndpoint.create({
      host: LOCAL,
      port: 0,
      pskLookup: async (id) => (id.equals(Buffer.from('dev-1')) || id.equals(BINARY_ID) ? KEY : undefined),
      retransmit: { initialMs: 200, maxMs: 1000 },
      onDiagnostic: (d) => diags.push(d),
    });
    cleanup.push(() => ep.close());
    return ep;
  }
  async function client(ep: DtlsEndpoint, identity: Buffer = Buffer.from('dev-1')): Promise<UdpPskClient> {
    const c = await UdpPskClient.open(ep.address().port, { identity, psk: KEY });
    cleanup.push(() => c.close());
    return c;
  }

  it('emits decrypted data with the PSK identity, and encrypts send() to the session', async () => {
    const ep = await endpoint();
    expect(ep.secure).to.equal(true);
    expect(ep.type).to.equal('udp4');
    const got: [string, PeerInfo][] = [];
    ep.on('message', (m, p) => got.push([m.toString(), p]));
    const c = await client(ep, BINARY_ID);
    await c.handshake();
    c.send(Buffer.from('hello'));
    await c.until(() => got.length === 1);
    const [text, peer] = got[0]!;
    expect(text).to.equal('hello');
    expect(peer.port).to.equal(c.localPort);
    expect(peer.size).to.equal(5);
    expect(peer.identity).to.deep.equal({ type: 'psk', identity: BINARY_ID });
    const err = await new Promise<Error | null>((resolve) => ep.send(Buffer.from('world'), peer.port, peer.address, resolve));
    expect(err).to.equal(null);
    await c.until(() => c.client.received.length === 1);
    expect(c.client.received[0]!.toString()).to.equal('world');
  });

  it('send() to a peer without a session is dropped with DtlsNoSessionError', async () => {
    const ep = await endpoint();
    const err = await new Promise<Error | null>((resolve) => ep.send(Buffer.from('x'), 5999, LOCAL, resolve));
    expect(err).to.be.instanceOf(DtlsNoSessionError);
    expect(err!.message).to.equal('no DTLS session with 127.0.0.1:5999');
  });

  it('close() sends close_notify to the sessions and releases the port', async () => {
    const diags: DtlsDiagnostic[] = [];
    const ep = await endpoint(diags);
    const c = await client(ep);
    await c.handshake();
    await ep.close();
    await c.until(() => c.client.alerts.length > 0, 2000);
    expect(c.client.alerts).to.deep.equal([{ level: AlertLevel.warning, description: AlertDescription.closeNotify }]);
    expect(diags.filter((d) => d.kind === 'closed').map((d) => d.kind === 'closed' && d.reason)).to.deep.equal(['shutdown']);
  });

  it('CoapNode runs over it: a request from the device reaches the handler with the identity; the server requests back on the same session', async () => {
    const ep = await endpoint();
    const seen: { req: CoapIncomingRequest; peer: PeerInfo }[] = [];
    const node = new CoapNode(ep, {
      handler: (req, res, peer) => {
        seen.push({ req, peer });
        res.send('2.04', { contentFormat: 0, payload: Buffer.from(`hi ${peer.identity?.type}`) });
      },
    });
    cleanup.push(() => node.close());
    const c = await client(ep);
    await c.handshake();
    // Device → server: POST /bs?ep=dev-1 (CON) through the DTLS session.
    c.send(generate({
      messageId: 0x1234, token: Buffer.from('a1b2', 'hex'), code: '0.02', confirmable: true,
      options: [{ name: 'Uri-Path', value: Buffer.from('bs') }, { name: 'Uri-Query', value: Buffer.from('ep=dev-1') }],
    }));
    await c.until(() => c.client.received.length === 1);
    const ack = parse(c.client.received[0]!);
    expect(ack.ack).to.equal(true);
    expect(ack.code).to.equal('2.04');
    expect(ack.messageId).to.equal(0x1234);
    expect(ack.payload.toString()).to.equal('hi psk');
    expect(seen).to.have.length(1);
    expect(seen[0]!.req.path).to.equal('/bs');
    expect(seen[0]!.peer.identity).to.deep.equal({ type: 'psk', identity: Buffer.from('dev-1') });
    // Server → device: GET /3/0 on the same session; the device answers piggybacked.
    const pending = node.request(seen[0]!.peer, { method: 'GET', path: [3, 0], accept: 0, timeoutMs: 5000 });
    await c.until(() => c.client.received.length === 2);
    const req = parse(c.client.received[1]!);
    expect(req.code).to.equal('0.01');
    expect(req.options.filter((o) => o.name === 'Uri-Path').map((o) => o.value.toString())).to.deep.equal(['3', '0']);
    c.send(generate({ messageId: req.messageId, token: req.token, code: '2.05', ack: true, payload: Buffer.from('device says hi') }));
    const res = await pending;
    expect(res.code).to.equal('2.05');
    expect(Buffer.from(res.payload).toString()).to.equal('device says hi');
  });

  it('a CoapNode request to a peer without a session fails fast instead of timing out', async () => {
    const ep = await endpoint();
    const node = new CoapNode(ep, { handler: (_req, res) => res.send('4.04') });
    cleanup.push(() => node.close());
    const started = Date.now();
    const err = await node.request({ address: LOCAL, port: 5998 }, { method: 'GET', path: '/', timeoutMs: 8000 }).then(() => undefined, (e: unknown) => e);
    expect(err).to.be.instanceOf(Error);
    expect(Date.now() - started).to.be.below(5000);
  });
});
