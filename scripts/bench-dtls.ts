/**
 * Full DTLS 1.2 handshakes per second in memory (no sockets): `DtlsServer` (src/dtls/server.ts)
 * and the simulator's client (`DtlsClientEndpoint`, src/dtls/client.ts) in one process, joined by
 * an in-memory datagram transport (each datagram handed over on the next macrotask, as a socket
 * would). A handshake: ClientHello → HelloVerifyRequest → ClientHello with cookie → the server's
 * flight → the client's flight → the server's CCS + Finished, then one application record reaches
 * the server; the client then closes (close_notify), so the server does not accumulate sessions.
 *
 * Suites: TLS_PSK_WITH_AES_128_CCM_8 (0xC0A8) and TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8 (0xC0AE) with
 * raw public keys (client and server P-256 keys; the server checks the client's key through its
 * lookup). Both sides' work is counted (the client's ECDH, signature and verification too), so the
 * server alone does more than this; `lanes` handshakes run at a time. Building the client
 * endpoints (a device does that once, not per handshake) and closing them are not timed.
 */
import { generateKeyPairSync } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { PeerInfo } from '../src/coap/endpoint.js';
import { DtlsClientEndpoint, type DtlsClientOptions } from '../src/dtls/client.js';
import type { PeerAddressInfo } from '../src/dtls/connection.js';
import type { DatagramTransport } from '../src/dtls/endpoint.js';
import { DtlsServer } from '../src/dtls/server.js';

export const PSK_CCM_8 = 0xc0a8;
export const ECDHE_ECDSA_CCM_8 = 0xc0ae;

const SERVER: PeerAddressInfo = { address: '10.255.0.1', port: 5684, family: 'IPv4' };

/** A client's side of the in-memory wire: what it sends goes to the server on the next macrotask. */
class MemoryTransport extends EventEmitter implements DatagramTransport {
  readonly type = 'udp4' as const;
  constructor(private readonly self: PeerAddressInfo, private readonly server: DtlsServer) {
    super();
  }
  send(msg: Uint8Array, _port: number, _address: string, callback?: (err: Error | null, bytes?: number) => void): void {
    const copy = Buffer.from(msg);
    setImmediate(() => {
      this.server.handleDatagram(copy, this.self);
      callback?.(null, copy.length);
    });
  }
  /** A datagram from the server. */
  receive(datagram: Buffer): void {
    const from: PeerInfo = { address: SERVER.address, port: SERVER.port, family: 'IPv4', size: datagram.length };
    setImmediate(() => this.emit('message', datagram, from));
  }
  address(): AddressInfo {
    return { address: this.self.address, port: this.self.port, family: 'IPv4' };
  }
  close(): Promise<void> {
    this.removeAllListeners();
    return Promise.resolve();
  }
}

export interface DtlsBenchResult {
  readonly name: string;
  readonly suite: number;
  readonly handshakes: number;
  readonly perSec: number;
  readonly lanes: number;
}

function p256(): { publicKey: Buffer; privateKey: Buffer } {
  const kp = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return { publicKey: kp.publicKey.export({ format: 'der', type: 'spki' }), privateKey: kp.privateKey.export({ format: 'der', type: 'pkcs8' }) };
}

interface Prepared {
  readonly key: string;
  readonly client: DtlsClientEndpoint;
  readonly done: Promise<void>;
  failed?: Error;
}

interface Rig {
  readonly server: DtlsServer;
  prepare(): Prepared;
  handshake(p: Prepared): Promise<void>;
  finish(batch: readonly Prepared[]): Promise<void>;
  /** Forgets clients without a close_notify: their server sessions stay open. */
  abandon(batch: readonly Prepared[]): void;
  delivered(): number;
}

/** A DtlsServer and a factory of in-memory clients for `suite`. */
function rig(suite: number): Rig {
  const serverKey = p256();
  const clientKey = p256();
  const pskKey = Buffer.alloc(16, 0x5a);
  const transports = new Map<string, MemoryTransport>();
  let delivered = 0;
  const waiters = new Map<string, () => void>();
  const server = new DtlsServer(
    {
      pskLookup: (identity) => Promise.resolve(identity.length > 0 ? pskKey : undefined),
      serverKey,
      rpkLookup: (spki) => Promise.resolve(spki.equals(clientKey.publicKey)),
      cipherSuites: [suite],
    },
    {
      send: (datagram, peer) => transports.get(`${peer.address}|${peer.port}`)?.receive(datagram),
      deliver: (_plaintext, conn) => {
        delivered++;
        const k = `${conn.peer.address}|${conn.peer.port}`;
        waiters.get(k)?.();
      },
    },
  );
  const clientOptions: DtlsClientOptions =
    suite === PSK_CCM_8
      ? { psk: { identity: 'bench-device', key: pskKey }, cipherSuites: [suite] }
      : { rpk: { publicKey: clientKey.publicKey, privateKey: clientKey.privateKey, serverPublicKey: serverKey.publicKey }, cipherSuites: [suite] };
  let nextPort = 1;
  // A device builds its DTLS endpoint once (parsing its keys); that is not part of a handshake,
  // so clients are built before the timed part and closed after it.
  const prepare = (): Prepared => {
    const port = nextPort++;
    const self: PeerAddressInfo = { address: `10.${(port >> 16) & 255}.${(port >> 8) & 255}.${port & 255}`, port: 40000 + (port % 20000), family: 'IPv4' };
    const key = `${self.address}|${self.port}`;
    const transport = new MemoryTransport(self, server);
    transports.set(key, transport);
    const client = new DtlsClientEndpoint(transport, clientOptions);
    const done = new Promise<void>((resolve) => waiters.set(key, resolve));
    const p: Prepared = { key, client, done };
    client.on('error', (e) => (p.failed = e));
    return p;
  };
  const handshake = async (p: Prepared): Promise<void> => {
    p.client.send(Buffer.from('ping'), SERVER.port, SERVER.address, (err) => {
      if (err) p.failed = err;
    });
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([p.done, new Promise((r) => (timer = setTimeout(r, 10_000)))]);
    clearTimeout(timer);
    if (p.failed) throw p.failed;
  };
  const finish = async (batch: readonly Prepared[]): Promise<void> => {
    await Promise.all(batch.map((p) => p.client.close()));
    for (const p of batch) {
      waiters.delete(p.key);
      transports.delete(p.key);
    }
  };
  const abandon = (batch: readonly Prepared[]): void => {
    for (const p of batch) {
      waiters.delete(p.key);
      transports.get(p.key)?.removeAllListeners();
      transports.delete(p.key);
    }
  };
  return { server, prepare, handshake, finish, abandon, delivered: () => delivered };
}

/** Full handshakes per second with `suite` for `ms` on `lanes` concurrent clients. */
export async function benchHandshakes(suite: number, opts: { readonly ms: number; readonly lanes: number }): Promise<DtlsBenchResult> {
  const { server, prepare, handshake, finish, delivered } = rig(suite);
  /** One round: `n` prepared clients, handshaking `lanes` at a time; returns the timed ms. */
  const round = async (n: number): Promise<number> => {
    const batch = Array.from({ length: n }, prepare);
    let next = 0;
    const t0 = performance.now();
    await Promise.all(Array.from({ length: opts.lanes }, async () => {
      while (next < batch.length) await handshake(batch[next++]!);
    }));
    const ms = performance.now() - t0;
    await finish(batch);
    return ms;
  };
  try {
    await round(20); // warm-up
    const delivered0 = delivered();
    let count = 0;
    let timed = 0;
    while (timed < opts.ms) {
      timed += await round(64);
      count += 64;
    }
    const elapsed = timed;
    if (delivered() - delivered0 < count) throw new Error(`only ${delivered() - delivered0} of ${count} handshakes delivered their record`);
    return { name: suite === PSK_CCM_8 ? 'DTLS full handshake PSK-CCM_8' : 'DTLS full handshake ECDHE-ECDSA-CCM_8 (RPK)', suite, handshakes: count, perSec: (count * 1000) / elapsed, lanes: opts.lanes };
  } finally {
    server.close();
  }
}

/** `gc()`, turned on at run time when node did not start with --expose-gc. */
function exposeGc(): () => void {
  const existing = (globalThis as { gc?: () => void }).gc;
  if (existing) return existing;
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

export interface DtlsMemoryResult {
  readonly name: string;
  readonly sessions: number;
  /** V8 heap (after a full GC) and RSS growth per open server session. */
  readonly heapBytesPerSession: number;
  readonly rssBytesPerSession: number;
  readonly externalBytesPerSession: number;
}

/**
 * Server memory per open DTLS session: `n` clients complete a handshake and are then forgotten
 * without a close_notify (their client state is dropped), so only the server's sessions remain;
 * heap, external memory and RSS after a full GC, before and after, divided by `n`.
 */
export async function sessionMemory(suite: number, n: number): Promise<DtlsMemoryResult> {
  const gc = exposeGc();
  const { server, prepare, handshake, abandon } = rig(suite);
  const settle = async (): Promise<NodeJS.MemoryUsage> => {
    for (let i = 0; i < 3; i++) {
      await new Promise((r) => setImmediate(r));
      gc();
    }
    return process.memoryUsage();
  };
  try {
    const warm = Array.from({ length: 20 }, prepare);
    for (const p of warm) await handshake(p);
    abandon(warm);
    const before = await settle();
    for (let done = 0; done < n; done += 50) {
      const batch = Array.from({ length: Math.min(50, n - done) }, prepare);
      await Promise.all(batch.map((p) => handshake(p)));
      abandon(batch);
    }
    const after = await settle();
    const open = server.stats().sessions;
    return {
      name: suite === PSK_CCM_8 ? 'PSK-CCM_8' : 'ECDHE-ECDSA-CCM_8 (RPK)',
      sessions: open,
      heapBytesPerSession: (after.heapUsed - before.heapUsed) / n,
      rssBytesPerSession: (after.rss - before.rss) / n,
      // `external` already includes `arrayBuffers` (Node's process.memoryUsage): counted once.
      externalBytesPerSession: (after.external - before.external) / n,
    };
  } finally {
    server.close();
  }
}
