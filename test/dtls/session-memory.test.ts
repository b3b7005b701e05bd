/**
 * What an open DTLS session keeps (the "≤ 8 KB per open session" target of the fleet bench): once
 * the handshake completed, nothing only the handshake needed (randoms, transcript, reassembler,
 * master secret, ECDHE state), and no Buffer that is a slice of Node's shared 8 KiB pool - one
 * small slice kept for the session's life keeps the whole slab alive.
 */
import { expect } from 'chai';
import { generateKeyPairSync } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { PeerInfo, SendCallback } from '../../src/coap/endpoint.js';
import { DtlsClientEndpoint } from '../../src/dtls/client.js';
import { ownedCopy, type PeerAddressInfo, type ServerConnection } from '../../src/dtls/connection.js';
import type { DatagramTransport } from '../../src/dtls/endpoint.js';
import { DtlsServer, type DtlsServerOptions } from '../../src/dtls/server.js';
import { SessionCache } from '../../src/dtls/session-cache.js';
import { TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8, TLS_PSK_WITH_AES_128_CBC_SHA256, TLS_PSK_WITH_AES_128_CCM_8 } from '../../src/dtls/suites.js';
import { tick } from './harness.js';
import { PskClient, type PskClientOptions } from './psk-client.js';

const IDENTITY = Buffer.from('memory-device');
const KEY = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
const PEER: PeerAddressInfo = { address: '10.9.0.1', port: 40001, family: 'IPv4' };

/** A Buffer is a pool slice when its ArrayBuffer is a whole pool slab and it is not all of it. */
function isPoolSlice(b: Uint8Array): boolean {
  return b.buffer.byteLength === Buffer.poolSize && b.byteLength < Buffer.poolSize;
}

/** Every Uint8Array reachable from `root` (own properties, arrays, maps), not following the `skip` paths (shared objects). */
function reachableBytes(root: object, skip: ReadonlySet<string>): { path: string; bytes: Uint8Array }[] {
  const out: { path: string; bytes: Uint8Array }[] = [];
  const seen = new Set<object>();
  const walk = (v: unknown, path: string): void => {
    if (v === null || typeof v !== 'object' || seen.has(v)) return;
    seen.add(v);
    if (v instanceof Uint8Array) {
      out.push({ path, bytes: v });
      return;
    }
    if (v instanceof Map) {
      for (const [k, x] of v) walk(x, `${path}.get(${String(k)})`);
      return;
    }
    for (const [k, x] of Object.entries(v)) if (!skip.has(`${path}.${k}`)) walk(x, `${path}.${k}`);
  };
  walk(root, 'conn');
  return out;
}

/** A DtlsServer with in-memory I/O that hands out the established connections, driven by the scripted client. */
class Rig {
  readonly server: DtlsServer;
  readonly conns: ServerConnection[] = [];
  private outbox: Buffer[] = [];
  /** When set, what the server sends goes here at once (connectEndpoint) instead of into `outbox`. */
  private sink: ((d: Buffer) => void) | undefined;

  constructor(opts: Partial<DtlsServerOptions>) {
    this.server = new DtlsServer(
      { pskLookup: async (id) => (id.equals(IDENTITY) ? new Uint8Array(KEY) : undefined), ...opts },
      {
        send: (d) => (this.sink ? this.sink(d) : this.outbox.push(d)),
        deliver: (_data, conn) => {
          if (!this.conns.includes(conn)) this.conns.push(conn);
        },
      },
    );
  }

  /** The same with the simulator's client (it speaks RFC 9146 CIDs), over an in-memory transport. */
  async connectEndpoint(connectionIdLength: number): Promise<ServerConnection> {
    const server = this.server;
    const transport = new (class extends EventEmitter implements DatagramTransport {
      readonly type = 'udp4' as const;
      send(msg: Uint8Array, _port: number, _address: string, callback?: SendCallback): void {
        const copy = Buffer.from(msg);
        setImmediate(() => {
          server.handleDatagram(copy, PEER);
          callback?.(null);
        });
      }
      receive(d: Buffer): void {
        const from: PeerInfo = { address: '10.9.9.9', port: 5684, family: 'IPv4', size: d.length };
        setImmediate(() => this.emit('message', d, from));
      }
      address(): AddressInfo {
        return { address: PEER.address, port: PEER.port, family: 'IPv4' };
      }
      close(): Promise<void> {
        return Promise.resolve();
      }
    })();
    this.sink = (d) => transport.receive(d);
    const client = new DtlsClientEndpoint(transport, { psk: { identity: IDENTITY, key: KEY }, connectionIdLength });
    const sent = new Promise<void>((resolve, reject) => client.send(Buffer.from('ping'), 5684, '10.9.9.9', (err) => (err ? reject(err) : resolve())));
    await sent;
    for (let i = 0; i < 50 && this.conns.length === 0; i++) await tick();
    const conn = this.conns.at(-1);
    if (conn === undefined || !conn.established) throw new Error('no established session');
    return conn;
  }

  /** Handshake, then one application record (so the server drops its kept flight 6). */
  async connect(opts: PskClientOptions): Promise<{ client: PskClient; conn: ServerConnection }> {
    const client = new PskClient(opts);
    let up = client.hello();
    for (let round = 0; round < 50 && up.length > 0; round++) {
      // Datagrams from a pool-backed copy, as the socket layer may hand them over.
      for (const d of up) this.server.handleDatagram(Buffer.from(d), PEER);
      for (let i = 0; i < 3; i++) await tick();
      const down = this.outbox;
      this.outbox = [];
      up = down.flatMap((d) => client.receive(d));
    }
    this.server.handleDatagram(client.send(Buffer.from('ping')), PEER);
    for (let i = 0; i < 3; i++) await tick();
    const conn = this.conns.at(-1);
    if (conn === undefined || !conn.established) throw new Error('no established session');
    return { client, conn };
  }
}

/** The server's configuration and host are shared by all sessions; `peer` holds strings only. */
const SHARED = new Set(['conn.config', 'conn.host', 'conn.peer']);

/** The handshake-only fields of ServerConnection (private): all gone once established. */
const HANDSHAKE_ONLY = ['clientRandom', 'serverRandom', 'master', 'reassembler', 'clientHelloMessage', 'ecdh', 'clientKey', 'pskCheck', 'pendingRead', 'pendingWrite', 'recordLimitExtension'];

function expectLean(conn: ServerConnection): void {
  const fields = conn as unknown as Record<string, unknown>;
  for (const f of HANDSHAKE_ONLY) expect(fields[f], f).to.equal(undefined);
  expect(fields['transcript']).to.deep.equal([]);
  const bytes = reachableBytes(conn, SHARED);
  const slices = bytes.filter((b) => isPoolSlice(b.bytes)).map((b) => b.path);
  expect(slices).to.deep.equal([]);
  // The walk did reach what a session keeps: its identity and its record keys.
  expect(bytes.some((b) => b.path === 'conn.identity')).to.equal(true);
  expect(bytes.filter((b) => /^conn\.writeProtections\.1\.keys\./.test(b.path)).length).to.be.greaterThan(0);
  expect(bytes.filter((b) => /^conn\.readProtection\.keys\./.test(b.path)).length).to.be.greaterThan(0);
}

describe('dtls: memory an open session keeps', () => {
  let rig: Rig | undefined;
  afterEach(() => {
    rig?.server.close();
    rig = undefined;
  });

  it('ownedCopy gives an equal copy in an ArrayBuffer of its own, even for small inputs', () => {
    const slice = Buffer.from([1, 2, 3, 4, 5]);
    expect(isPoolSlice(slice)).to.equal(true); // the premise: small Buffer.from copies are pool slices
    const own = ownedCopy(slice);
    expect(own.equals(slice)).to.equal(true);
    expect(own.buffer.byteLength).to.equal(5);
    own[0] = 9;
    expect(slice[0]).to.equal(1);
    expect(ownedCopy(new Uint8Array(0)).length).to.equal(0);
  });

  it('PSK (CCM_8): no handshake state and no pool slices once established', async () => {
    rig = new Rig({ cipherSuites: [TLS_PSK_WITH_AES_128_CCM_8.id] });
    const { conn } = await rig.connect({ identity: IDENTITY, psk: KEY, cipherSuites: [TLS_PSK_WITH_AES_128_CCM_8.id] });
    expect(conn.identity!.equals(IDENTITY)).to.equal(true);
    expect(conn.sessionId.length).to.equal(32);
    expectLean(conn);
  });

  it('PSK with Connection IDs both ways (the simulator client): the CIDs are owned too', async () => {
    rig = new Rig({});
    const conn = await rig.connectEndpoint(4);
    expect(conn.connectionId!.peer.length).to.equal(4);
    expect(conn.connectionId!.own.length).to.equal(6);
    expectLean(conn);
    const paths = reachableBytes(conn, SHARED).map((b) => b.path);
    expect(paths).to.include.members(['conn.connectionId.own', 'conn.connectionId.peer']);
  });

  it('PSK (AES-CBC-SHA256): the MAC keys are owned too', async () => {
    rig = new Rig({ cipherSuites: [TLS_PSK_WITH_AES_128_CBC_SHA256.id] });
    const { conn } = await rig.connect({ identity: IDENTITY, psk: KEY, cipherSuites: [TLS_PSK_WITH_AES_128_CBC_SHA256.id] });
    expectLean(conn);
    const macKeys = reachableBytes(conn, SHARED).filter((b) => b.path.endsWith('.keys.macKey'));
    expect(macKeys.map((b) => b.bytes.length)).to.deep.equal([32, 32]);
  });

  it('RPK (ECDHE_ECDSA): the client SPKI is kept in a buffer of its own, the ECDHE state is gone', async () => {
    const server = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const client = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const clientSpki = client.publicKey.export({ format: 'der', type: 'spki' });
    rig = new Rig({
      serverKey: { publicKey: server.publicKey.export({ format: 'der', type: 'spki' }), privateKey: server.privateKey },
      rpkLookup: async (spki) => spki.equals(clientSpki),
      cipherSuites: [TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8.id],
    });
    const { conn } = await rig.connect({ rpk: { publicKey: clientSpki, privateKey: client.privateKey }, cipherSuites: [TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8.id] });
    expect(conn.identity!.equals(clientSpki)).to.equal(true);
    expectLean(conn);
  });

  it('the session cache keeps its entry in one buffer of its own, and still wipes the master secret', () => {
    const cache = new SessionCache({}, () => 0);
    const id = Buffer.from(Buffer.alloc(32, 1)); // pool slices, as a connection would pass them
    const master = Buffer.from(Buffer.alloc(48, 2));
    const identity = Buffer.from('dev-9');
    const check = Buffer.from(Buffer.alloc(32, 3));
    const chainCert = Buffer.from(Buffer.alloc(300, 4));
    cache.store({
      id, suite: TLS_PSK_WITH_AES_128_CCM_8, masterSecret: master, extendedMasterSecret: true, clientCertificateType: 2, serverCertificateType: 2,
      identity, chain: [chainCert], pskCheck: check,
    });
    const s = cache.get(id)!;
    expect(s.id.equals(id) && s.masterSecret.equals(master) && s.identity.equals(identity) && s.pskCheck!.equals(check)).to.equal(true);
    expect(s.chain![0]!.equals(chainCert)).to.equal(true);
    for (const b of [s.id, s.masterSecret, s.identity, s.pskCheck!, s.chain![0]!]) expect(isPoolSlice(b)).to.equal(false);
    expect(s.id.buffer).to.equal(s.masterSecret.buffer);
    expect(s.id.buffer.byteLength).to.equal(32 + 48 + 5 + 32);
    // Copies, not views of the caller's buffers.
    master.fill(0);
    expect(s.masterSecret.equals(Buffer.alloc(48, 2))).to.equal(true);
    const kept = s.masterSecret;
    cache.remove(id);
    expect(kept.equals(Buffer.alloc(48))).to.equal(true);
    expect(s.pskCheck!.equals(Buffer.alloc(32))).to.equal(true);
  });
});
