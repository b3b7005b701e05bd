/**
 * Interop with node-dtls-client (npm, devDependency): a third DTLS 1.2 client implementation,
 * the one Node.js LwM2M/CoAP tools use. PSK only (it has no ECDHE_ECDSA), each PSK suite lwbs
 * implements and node-dtls-client offers, against a DtlsEndpoint that echoes: handshake, data
 * both ways, close_notify. Its PSK table takes keys as text (ASCII).
 */
import { expect } from 'chai';
import { dtls } from 'node-dtls-client';
import type { DtlsDiagnostic } from '../../src/dtls/server.js';
import { closedDiagnostic, LOCAL, startEchoServer, type EchoServer } from './support.js';

const IDENTITY = 'node-dtls-client-1';
const KEY = 'lwbs-interop-psk';
type Suite = NonNullable<dtls.Options['ciphers']>[number];
const SUITES: readonly Suite[] = ['TLS_PSK_WITH_AES_128_CCM_8', 'TLS_PSK_WITH_AES_128_CBC_SHA256', 'TLS_PSK_WITH_AES_128_GCM_SHA256', 'TLS_PSK_WITH_AES_128_CCM'];

interface Exchange {
  readonly received: string[];
  readonly error?: Error;
}

/** Connects, sends each message once the previous answer came, closes; bounded by `limitMs`. */
function exchange(port: number, o: { suite: Suite; identity?: string; key?: string; messages: readonly string[] }, limitMs = 8000): Promise<Exchange> {
  return new Promise((resolve) => {
    const received: string[] = [];
    let done = false;
    const socket = dtls.createSocket({ type: 'udp4', address: LOCAL, port, psk: { [o.identity ?? IDENTITY]: o.key ?? KEY }, timeout: 3000, ciphers: [o.suite] });
    const finish = (error?: Error): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(error ? { received, error } : { received });
    };
    const timer = setTimeout(() => {
      finish(new Error(`no result within ${limitMs} ms`));
      socket.close();
    }, limitMs);
    const next = (): void => {
      const m = o.messages[received.length];
      if (m === undefined) socket.close();
      else socket.send(Buffer.from(m));
    };
    socket.on('connected', next);
    socket.on('message', (msg: Buffer) => {
      received.push(msg.toString());
      next();
    });
    socket.on('error', (e: Error) => finish(e));
    socket.on('close', () => finish());
  });
}

describe('interop: node-dtls-client (PSK) against a DtlsEndpoint', function () {
  this.timeout(30_000);
  let server: EchoServer | undefined;
  afterEach(async () => {
    await server?.endpoint.close();
    server = undefined;
  });

  for (const suite of SUITES) {
    it(`${suite}: handshake, data both ways, close_notify`, async () => {
      server = await startEchoServer({ psk: { identity: IDENTITY, key: Buffer.from(KEY) } });
      const r = await exchange(server.port, { suite, messages: ['first', 'second'] });
      expect(r.error).to.equal(undefined);
      expect(r.received).to.deep.equal([`echo(${IDENTITY}): first`, `echo(${IDENTITY}): second`]);
      const est = server.diagnostics.find((d): d is Extract<DtlsDiagnostic, { kind: 'established' }> => d.kind === 'established');
      expect(est?.suite.name).to.equal(suite);
      expect(est?.identity.toString()).to.equal(IDENTITY);
      expect(await closedDiagnostic(server.diagnostics)).to.deep.include({ reason: 'close_notify', wasEstablished: true });
      expect(server.endpoint.stats()).to.deep.include({ handshakesCompleted: 1 });
    });
  }

  it('a wrong key: the handshake fails on both sides, no session', async () => {
    server = await startEchoServer({ psk: { identity: IDENTITY, key: Buffer.from(KEY) } });
    const r = await exchange(server.port, { suite: 'TLS_PSK_WITH_AES_128_CCM_8', key: 'not-the-right-key', messages: ['x'] });
    expect(r.received).to.deep.equal([]);
    expect(r.error).to.be.instanceOf(Error);
    expect(server.endpoint.stats()).to.deep.include({ sessions: 0, handshakesCompleted: 0 });
  });

  it('an unknown identity: refused with unknown_psk_identity', async () => {
    server = await startEchoServer({ psk: { identity: IDENTITY, key: Buffer.from(KEY) } });
    const r = await exchange(server.port, { suite: 'TLS_PSK_WITH_AES_128_CCM_8', identity: 'stranger', messages: ['x'] });
    expect(r.received).to.deep.equal([]);
    expect(r.error?.message).to.match(/unknown_psk_identity/);
    expect(server.endpoint.stats()).to.deep.include({ sessions: 0, handshakesCompleted: 0, handshakesFailed: 1 });
  });
});
