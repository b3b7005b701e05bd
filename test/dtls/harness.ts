/** In-memory plumbing between `DtlsServer` and `PskClient` for the server tests (no sockets). */
import { DtlsServer, type DtlsDiagnostic, type DtlsServerOptions } from '../../src/dtls/server.js';
import type { DtlsPeerIdentity, PeerAddressInfo } from '../../src/dtls/connection.js';
import { PskClient, type PskClientOptions } from './psk-client.js';

export interface Delivered {
  readonly data: Buffer;
  readonly peer: PeerAddressInfo;
  readonly identity: Buffer | undefined;
  readonly peerIdentity: DtlsPeerIdentity | undefined;
}

export const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export class Harness {
  readonly server: DtlsServer;
  /** Datagrams the server sent, per peer key, not yet taken. */
  private readonly outbox = new Map<string, Buffer[]>();
  readonly delivered: Delivered[] = [];
  readonly diagnostics: DtlsDiagnostic[] = [];
  readonly lookups: Buffer[] = [];
  sentCount = 0;

  constructor(keys: Record<string, Uint8Array>, opts: Partial<DtlsServerOptions> = {}) {
    this.server = new DtlsServer(
      {
        pskLookup: async (identity) => {
          this.lookups.push(identity);
          return keys[identity.toString('latin1')];
        },
        onDiagnostic: (d) => this.diagnostics.push(d),
        ...opts,
      },
      {
        send: (datagram, peer) => {
          this.sentCount++;
          const k = `${peer.address}|${peer.port}`;
          const list = this.outbox.get(k) ?? [];
          list.push(datagram);
          this.outbox.set(k, list);
        },
        deliver: (data, conn) => this.delivered.push({ data: Buffer.from(data), peer: conn.peer, identity: conn.identity, peerIdentity: conn.peerIdentity }),
      },
    );
  }

  static peer(port: number, address = '10.0.0.1'): PeerAddressInfo {
    return { address, port, family: 'IPv4' };
  }

  /** Takes what the server sent to `peer`. */
  take(peer: PeerAddressInfo): Buffer[] {
    const k = `${peer.address}|${peer.port}`;
    const list = this.outbox.get(k) ?? [];
    this.outbox.delete(k);
    return list;
  }

  input(peer: PeerAddressInfo, datagrams: readonly Buffer[]): void {
    for (const d of datagrams) this.server.handleDatagram(d, peer);
  }

  /**
   * Runs client ↔ server until neither has anything more to say (PSK lookups resolve on ticks;
   * `ticks` per round: the resumption tests wait longer for the asynchronous identity re-check).
   */
  async pump(client: PskClient, peer: PeerAddressInfo, first: Buffer[], filter?: (d: Buffer, dir: 'up' | 'down') => boolean, ticks = 2): Promise<void> {
    let up = first;
    for (let round = 0; round < 50; round++) {
      this.input(peer, filter ? up.filter((d) => filter(d, 'up')) : up);
      for (let i = 0; i < ticks; i++) await tick();
      const down = this.take(peer);
      up = [];
      for (const d of filter ? down.filter((x) => filter(x, 'down')) : down) up.push(...client.receive(d));
      if (up.length === 0 && down.length === 0) return;
    }
    throw new Error('pump did not settle');
  }

  async connect(peer: PeerAddressInfo, opts: PskClientOptions): Promise<PskClient> {
    const c = new PskClient(opts);
    await this.pump(c, peer, c.hello());
    return c;
  }

  close(): void {
    this.server.close();
  }
}

/** Polls `pred` every 10 ms until it holds; throws after `limitMs` (timing-tolerant waits for timer-driven behaviour). */
export async function eventually(pred: () => boolean, limitMs = 3000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await sleep(10);
  }
}

/**
 * One fuzz step of the flight-5 tests: a fresh client on `peer` gets through the cookie exchange,
 * then one of its flight-5 datagrams goes in mutated (`flips`: [offset, byte]), then the genuine
 * flight. Afterwards the server's books must balance: every handshake started is running,
 * completed or failed, and there is a session per completed one.
 */
export async function mutatedThenGenuineFlight5(
  h: Harness,
  peer: PeerAddressInfo,
  client: PskClient,
  which: number,
  flips: readonly (readonly [number, number])[],
  expectStarted: number,
  maxDatagram?: number,
): Promise<void> {
  h.input(peer, client.hello());
  h.input(peer, client.receive(h.take(peer)[0]!));
  if (maxDatagram !== undefined) client.maxDatagram = maxDatagram; // several datagrams, so each message can be hit
  const flight5 = h.take(peer).flatMap((d) => client.receive(d));
  const target = Buffer.from(flight5[which % flight5.length]!);
  for (const [at, v] of flips) target[at % target.length] = v;
  h.input(peer, [target]);
  await tick();
  await tick();
  h.take(peer);
  h.input(peer, flight5);
  await tick();
  await tick();
  h.take(peer);
  const st = h.server.stats();
  if (st.handshakesStarted !== expectStarted) throw new Error(`handshakes started: ${st.handshakesStarted}, expected ${expectStarted}`);
  if (st.handshakesStarted !== st.handshaking + st.handshakesCompleted + st.handshakesFailed) throw new Error(`handshake books do not balance: ${JSON.stringify(st)}`);
  if (st.sessions !== st.handshakesCompleted) throw new Error(`sessions ${st.sessions} != completed handshakes ${st.handshakesCompleted}`);
}
