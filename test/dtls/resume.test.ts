/**
 * Session resumption (RFC 5246 §7.3, RFC 6347 §4.2.4, RFC 7627 §5.3) against DtlsServer, with the
 * scripted client (psk-client.ts) that computes the master secret itself: the abbreviated
 * flight's exact contents, the fall-backs to a full handshake (EMS mismatch, unknown id, revoked
 * identity, suite not offered, expiry, eviction), retransmission, and the cache's lifecycle.
 */
import { expect } from 'chai';
import { AlertDescription, AlertLevel, ContentType, ExtensionType, HandshakeType } from '../../src/dtls/constants.js';
import { fullMessage, parseHandshakeFragments } from '../../src/dtls/handshake.js';
import { findExtension, parseServerHello } from '../../src/dtls/messages.js';
import { sha256, verifyData } from '../../src/dtls/prf.js';
import { parseDatagram } from '../../src/dtls/record.js';
import type { DtlsServerOptions } from '../../src/dtls/server.js';
import { SessionCache } from '../../src/dtls/session-cache.js';
import { TLS_PSK_WITH_AES_128_CCM_8 } from '../../src/dtls/suites.js';
import { Harness, tick, eventually } from './harness.js';
import { PskClient, type PskClientOptions } from './psk-client.js';
import type { PeerAddressInfo } from '../../src/dtls/connection.js';

const IDENTITY = Buffer.from('urn:imei:490154203237518');
const KEY = Buffer.from('0102030405060708090a0b0c0d0e0f10', 'hex');
const OTHER_KEY = Buffer.from('f0e0d0c0b0a090807060504030201000', 'hex');

/** Runs client ↔ server until both are quiet (4 ticks a round: the identity re-check is asynchronous). */
const pump = (h: Harness, client: PskClient, peer: PeerAddressInfo, first: Buffer[]): Promise<void> => h.pump(client, peer, first, undefined, 4);

async function connect(h: Harness, peer: PeerAddressInfo, opts: PskClientOptions = {}): Promise<PskClient> {
  const c = new PskClient({ identity: IDENTITY, psk: KEY, ...opts });
  await pump(h, c, peer, c.hello());
  return c;
}

/** The handshake message types in what the server sent (epoch-0 handshake records only). */
function handshakeTypes(c: PskClient): number[] {
  return c.seen.filter((r) => r.type === ContentType.handshake && r.epoch === 0).flatMap((r) => (parseHandshakeFragments(r.payload) ?? []).map((f) => f.msgType));
}

describe('dtls/resumption (abbreviated handshake)', () => {
  let h: Harness;
  let keys: Record<string, Uint8Array>;
  const make = (opts: Partial<DtlsServerOptions> = {}): Harness => {
    keys = { [IDENTITY.toString('latin1')]: KEY };
    h = new Harness(keys, opts);
    return h;
  };
  afterEach(() => h?.close());

  it('a full handshake gives a fresh 32-byte session_id and caches the session', async () => {
    make();
    const a = await connect(h, Harness.peer(5000));
    const b = await connect(h, Harness.peer(5001));
    expect(a.state).to.equal('established');
    expect(a.session!.id).to.have.length(32);
    expect(b.session!.id).to.have.length(32);
    expect(a.session!.id.equals(b.session!.id)).to.equal(false);
    expect(h.server.stats()).to.deep.include({ cachedSessions: 2, handshakesResumed: 0 });
  });

  it('a cached session_id with the same suite and EMS gets ServerHello(same id) + CCS + Finished, verifying with the cached master secret', async () => {
    make();
    const first = await connect(h, Harness.peer(5000));
    const { id, master } = first.session!;
    const c = new PskClient({ identity: IDENTITY, psk: KEY, session: { id, master } });
    const peer = Harness.peer(5002);
    // Cookie exchange first, as for any ClientHello.
    h.input(peer, c.hello());
    const hvr = h.take(peer);
    expect(hvr).to.have.length(1);
    h.input(peer, c.receive(hvr[0]!));
    for (let i = 0; i < 4; i++) await tick(); // the identity re-check is asynchronous
    const flight = h.take(peer);
    // Exactly three records: ServerHello (epoch 0), ChangeCipherSpec (epoch 0), Finished (epoch 1, protected).
    const records = flight.flatMap((d) => parseDatagram(d).records);
    expect(records.map((r) => [r.type, r.epoch])).to.deep.equal([[ContentType.handshake, 0], [ContentType.changeCipherSpec, 0], [ContentType.handshake, 1]]);
    const frags = parseHandshakeFragments(records[0]!.fragment)!;
    expect(frags.map((f) => [f.msgType, f.messageSeq])).to.deep.equal([[HandshakeType.serverHello, 1]]);
    const sh = parseServerHello(frags[0]!.body)!;
    expect(sh.sessionId.equals(id)).to.equal(true);
    expect(sh.cipherSuite).to.equal(TLS_PSK_WITH_AES_128_CCM_8.id);
    expect(findExtension(sh.extensions, ExtensionType.extendedMasterSecret)).to.not.equal(undefined);
    expect(records[1]!.fragment.equals(Buffer.from([1]))).to.equal(true);
    // The client derives the keys from the master secret it computed in the first handshake and checks verify_data.
    const answer = flight.flatMap((d) => c.receive(d));
    expect(c.abbreviated).to.equal(true);
    expect(c.serverFinishedValid).to.equal(true);
    const fin = c.seen.find((r) => r.epoch === 1 && r.type === ContentType.handshake)!;
    const finFrag = parseHandshakeFragments(fin.payload)![0]!;
    expect([finFrag.msgType, finFrag.messageSeq]).to.deep.equal([HandshakeType.finished, 2]);
    // verify_data = PRF(master, "server finished", SHA-256(ClientHello with cookie ‖ ServerHello))[0..11]
    const expected = verifyData(master, 'server', sha256(c.helloMessage!, fullMessage(HandshakeType.serverHello, 1, frags[0]!.body)));
    expect(finFrag.body.equals(expected)).to.equal(true);
    // The client's CCS + Finished complete it; the session carries the cached identity.
    h.input(peer, answer);
    await tick();
    expect(h.take(peer)).to.deep.equal([]); // the server sends nothing more (the client sent the last flight)
    h.input(peer, [c.send(Buffer.from('resumed data'))]);
    await tick();
    const got = h.delivered.at(-1)!;
    expect(got.data.toString()).to.equal('resumed data');
    expect(got.peerIdentity).to.deep.equal({ type: 'psk', identity: IDENTITY });
    const est = h.diagnostics.filter((d) => d.kind === 'established');
    expect(est.map((d) => d.kind === 'established' && d.resumed)).to.deep.equal([false, true]);
    expect(h.server.stats()).to.deep.include({ handshakesResumed: 1, handshakesCompleted: 2, sessions: 2, cachedSessions: 1 });
    // The server answers on the resumed session.
    expect(h.server.send(Buffer.from('back'), peer.address, peer.port)).to.equal(true);
    for (const d of h.take(peer)) c.receive(d);
    expect(c.received.map((b) => b.toString())).to.deep.equal(['back']);
  });

  it('resumes again and again with the same id; each resumption re-checks the PSK', async () => {
    make();
    const first = await connect(h, Harness.peer(5000));
    for (let i = 0; i < 3; i++) {
      const lookups = h.lookups.length;
      const c = await connect(h, Harness.peer(5010 + i), { session: first.session! });
      expect(c.abbreviated).to.equal(true);
      expect(c.state).to.equal('established');
      expect(h.lookups.length).to.equal(lookups + 1);
    }
    expect(h.server.stats().handshakesResumed).to.equal(3);
  });

  it('EMS mismatch → a full handshake with a new session id (both directions, RFC 7627 §5.3)', async () => {
    make();
    const withEms = await connect(h, Harness.peer(5000));
    const c1 = await connect(h, Harness.peer(5001), { session: withEms.session!, extendedMasterSecret: false });
    expect(c1.abbreviated).to.equal(false);
    expect(c1.state).to.equal('established');
    expect(handshakeTypes(c1)).to.include(HandshakeType.serverHelloDone);
    expect(c1.session!.id.equals(withEms.session!.id)).to.equal(false);
    const withoutEms = await connect(h, Harness.peer(5002), { extendedMasterSecret: false });
    const c2 = await connect(h, Harness.peer(5003), { session: withoutEms.session! });
    expect(c2.abbreviated).to.equal(false);
    expect(c2.state).to.equal('established');
    const reasons = h.diagnostics.flatMap((d) => (d.kind === 'resumption_refused' ? [d.reason] : []));
    expect(reasons).to.have.length(2);
    expect(reasons[0]).to.match(/extended_master_secret/);
    expect(h.server.stats()).to.deep.include({ handshakesResumed: 0, resumptionsRefused: 2 });
  });

  it('an unknown session id → a full handshake', async () => {
    make();
    const c = await connect(h, Harness.peer(5000), { session: { id: Buffer.alloc(32, 7), master: Buffer.alloc(48, 1) } });
    expect(c.abbreviated).to.equal(false);
    expect(c.state).to.equal('established');
    expect(c.serverHello!.sessionId).to.have.length(32);
    expect(c.serverHello!.sessionId.equals(Buffer.alloc(32, 7))).to.equal(false);
    expect(h.diagnostics.find((d) => d.kind === 'resumption_refused')).to.deep.include({ reason: 'unknown or expired session' });
  });

  it("the session's suite not offered → a full handshake with the offered one", async () => {
    make();
    const first = await connect(h, Harness.peer(5000)); // CCM_8
    const c = await connect(h, Harness.peer(5001), { session: first.session!, cipherSuites: [0x00ae] });
    expect(c.abbreviated).to.equal(false);
    expect(c.serverHello!.cipherSuite).to.equal(0x00ae);
    expect(c.state).to.equal('established');
  });

  it('a revoked identity (pskLookup now gives another key, or none) → a full handshake, and the entry is gone', async () => {
    make();
    const first = await connect(h, Harness.peer(5000));
    keys[IDENTITY.toString('latin1')] = OTHER_KEY;
    const c = await connect(h, Harness.peer(5001), { session: first.session!, psk: OTHER_KEY });
    expect(c.abbreviated).to.equal(false);
    expect(c.state).to.equal('established'); // with the new key
    expect(h.diagnostics.find((d) => d.kind === 'resumption_refused')).to.deep.include({ reason: "the session's identity is no longer accepted" });
    // The old id is not resumable any more, even with the key back.
    keys[IDENTITY.toString('latin1')] = KEY;
    const again = await connect(h, Harness.peer(5002), { session: first.session! });
    expect(again.abbreviated).to.equal(false);
    // Unknown identity now: the full handshake then fails with unknown_psk_identity.
    const second = await connect(h, Harness.peer(5003));
    delete keys[IDENTITY.toString('latin1')];
    const refused = await connect(h, Harness.peer(5004), { session: second.session! });
    expect(refused.abbreviated).to.equal(false);
    expect(refused.alerts).to.deep.include({ level: AlertLevel.fatal, description: AlertDescription.unknownPskIdentity });
  });

  it('retransmits the abbreviated flight until the client Finished arrives, then keeps nothing', async () => {
    make({ retransmit: { initialMs: 40, maxMs: 200 } });
    const first = await connect(h, Harness.peer(5000));
    const c = new PskClient({ identity: IDENTITY, psk: KEY, session: first.session! });
    const peer = Harness.peer(5005);
    h.input(peer, c.hello());
    h.input(peer, c.receive(h.take(peer)[0]!));
    for (let i = 0; i < 4; i++) await tick();
    const lost = h.take(peer); // the first abbreviated flight is lost
    expect(lost.length).to.be.greaterThan(0);
    const again: Buffer[] = [];
    await eventually(() => {
      again.push(...h.take(peer));
      return again.length > 0;
    });
    // The timer re-sent it: same messages, new record numbers.
    const firstRecs = lost.flatMap((d) => parseDatagram(d).records);
    const againRecs = again.flatMap((d) => parseDatagram(d).records);
    expect(againRecs.map((r) => [r.type, r.epoch])).to.deep.equal(firstRecs.map((r) => [r.type, r.epoch]));
    expect(againRecs[0]!.seq).to.be.greaterThan(firstRecs[0]!.seq);
    expect(parseHandshakeFragments(againRecs[0]!.fragment)![0]!.body.equals(parseHandshakeFragments(firstRecs[0]!.fragment)![0]!.body)).to.equal(true);
    const answer = again.flatMap((d) => c.receive(d));
    expect(c.state).to.equal('established');
    h.input(peer, answer);
    await tick();
    h.take(peer);
    const sent = h.sentCount;
    await new Promise((r) => setTimeout(r, 150)); // several timer periods
    expect(h.sentCount).to.equal(sent);
    expect(h.server.session(peer.address, peer.port)?.resumed).to.equal(true);
  });

  it('a repeated ClientHello (the abbreviated flight was lost) makes the server resend it', async () => {
    make({ minResendGapMs: 0 });
    const first = await connect(h, Harness.peer(5000));
    const c = new PskClient({ identity: IDENTITY, psk: KEY, session: first.session! });
    const peer = Harness.peer(5006);
    h.input(peer, c.hello());
    const cookieHello = c.receive(h.take(peer)[0]!);
    h.input(peer, cookieHello);
    for (let i = 0; i < 4; i++) await tick();
    expect(h.take(peer).length).to.be.greaterThan(0); // lost
    h.input(peer, cookieHello);
    for (let i = 0; i < 4; i++) await tick();
    const again = h.take(peer);
    expect(again.flatMap((d) => parseDatagram(d).records).map((r) => r.type)).to.deep.equal([ContentType.handshake, ContentType.changeCipherSpec, ContentType.handshake]);
    await pump(h, c, peer, again.flatMap((d) => c.receive(d)));
    expect(c.state).to.equal('established');
    expect(h.server.stats()).to.deep.include({ handshakesResumed: 1, handshakesStarted: 2 });
  });

  it('a new ClientHello from the same address while the identity check runs supersedes the resumption', async () => {
    let release: (() => void) | undefined;
    let gate = false;
    make({
      pskLookup: async (id) => {
        if (gate) await new Promise<void>((r) => (release = r));
        return keys[id.toString('latin1')];
      },
    });
    const first = await connect(h, Harness.peer(5000));
    gate = true;
    const peer = Harness.peer(5007);
    const resuming = new PskClient({ identity: IDENTITY, psk: KEY, session: first.session! });
    h.input(peer, resuming.hello());
    h.input(peer, resuming.receive(h.take(peer)[0]!));
    for (let i = 0; i < 4; i++) await tick();
    expect(h.take(peer)).to.deep.equal([]); // the check is waiting
    gate = false;
    const fresh = await connect(h, peer); // a full handshake from the same address and port
    expect(fresh.state).to.equal('established');
    release!();
    for (let i = 0; i < 4; i++) await tick();
    expect(h.take(peer)).to.deep.equal([]); // the stale check's verdict is dropped
    expect(h.server.session(peer.address, peer.port)?.resumed).to.equal(false);
    expect(h.server.stats()).to.deep.include({ handshakesResumed: 0, sessions: 2 });
  });

  it('a client Finished that does not verify → decrypt_error, and the session is no longer resumable', async () => {
    make();
    const first = await connect(h, Harness.peer(5000));
    const bad = await connect(h, Harness.peer(5001), { session: first.session!, badFinished: true });
    expect(bad.abbreviated).to.equal(true);
    expect(h.diagnostics.find((d) => d.kind === 'closed' && d.reason === 'alert_sent')).to.not.equal(undefined);
    expect(h.server.stats().cachedSessions).to.equal(0);
    const c = await connect(h, Harness.peer(5002), { session: first.session! });
    expect(c.abbreviated).to.equal(false);
  });

  it('a fatal alert from the client removes its session from the cache; close_notify does not', async () => {
    make();
    const a = await connect(h, Harness.peer(5000));
    const b = await connect(h, Harness.peer(5001));
    h.input(Harness.peer(5000), [a.alert(AlertLevel.warning, AlertDescription.closeNotify)]);
    h.input(Harness.peer(5001), [b.alert(AlertLevel.fatal, AlertDescription.internalError)]);
    await tick();
    expect(h.server.stats()).to.deep.include({ sessions: 0, cachedSessions: 1 });
    expect((await connect(h, Harness.peer(5002), { session: a.session! })).abbreviated).to.equal(true);
    expect((await connect(h, Harness.peer(5003), { session: b.session! })).abbreviated).to.equal(false);
  });

  it('expired sessions are not resumed (lifetime counts from the full handshake)', async () => {
    let now = 1_000_000;
    make({ now: () => now, sessionCache: { lifetimeMs: 60_000 } });
    const first = await connect(h, Harness.peer(5000));
    now += 30_000;
    expect((await connect(h, Harness.peer(5001), { session: first.session! })).abbreviated).to.equal(true);
    now += 30_000;
    const late = await connect(h, Harness.peer(5002), { session: first.session! });
    expect(late.abbreviated).to.equal(false);
    expect(h.diagnostics.find((d) => d.kind === 'resumption_refused')).to.deep.include({ reason: 'unknown or expired session' });
  });

  it('the cache is bounded: the oldest session is evicted', async () => {
    make({ sessionCache: { entries: 2 } });
    const s1 = await connect(h, Harness.peer(5000));
    const s2 = await connect(h, Harness.peer(5001));
    const s3 = await connect(h, Harness.peer(5002));
    expect(h.server.stats().cachedSessions).to.equal(2);
    expect((await connect(h, Harness.peer(5003), { session: s1.session! })).abbreviated).to.equal(false);
    expect((await connect(h, Harness.peer(5004), { session: s3.session! })).abbreviated).to.equal(true);
    void s2;
  });

  it('sessionCache: false → empty session ids and no resumption', async () => {
    make({ sessionCache: false });
    const first = await connect(h, Harness.peer(5000));
    expect(first.serverHello!.sessionId).to.have.length(0);
    const c = await connect(h, Harness.peer(5001), { session: { id: Buffer.alloc(32, 1), master: Buffer.alloc(48) } });
    expect(c.abbreviated).to.equal(false);
    expect(c.state).to.equal('established');
    expect(h.server.stats().cachedSessions).to.equal(0);
  });

  it('close() empties the cache', async () => {
    make();
    await connect(h, Harness.peer(5000));
    expect(h.server.stats().cachedSessions).to.equal(1);
    h.server.close();
    expect(h.server.stats().cachedSessions).to.equal(0);
  });
});

describe('dtls/session-cache', () => {
  const entry = (id: Buffer, master = Buffer.alloc(48, 0xaa)) => ({
    id, suite: TLS_PSK_WITH_AES_128_CCM_8, masterSecret: master, extendedMasterSecret: true, clientCertificateType: 2, serverCertificateType: 2,
    identity: Buffer.from('dev'), chain: undefined, pskCheck: undefined,
  });

  it('zeroes the master secret of evicted, expired, removed and cleared sessions', () => {
    let now = 0;
    const cache = new SessionCache({ entries: 2, lifetimeMs: 100 }, () => now);
    const ids = [1, 2, 3, 4, 5].map((n) => Buffer.alloc(32, n));
    cache.store(entry(ids[0]!));
    const evicted = cache.get(ids[0]!)!;
    cache.store(entry(ids[1]!));
    cache.store(entry(ids[2]!)); // evicts ids[0]
    expect(cache.get(ids[0]!)).to.equal(undefined);
    expect(evicted.masterSecret.equals(Buffer.alloc(48))).to.equal(true);
    const removed = cache.get(ids[1]!)!;
    cache.remove(ids[1]!);
    expect(removed.masterSecret.equals(Buffer.alloc(48))).to.equal(true);
    const expired = cache.get(ids[2]!)!;
    now = 100;
    expect(cache.get(ids[2]!)).to.equal(undefined);
    expect(expired.masterSecret.equals(Buffer.alloc(48))).to.equal(true);
    cache.store(entry(ids[3]!));
    const swept = cache.get(ids[3]!)!;
    now = 250;
    cache.sweep();
    expect(cache.size).to.equal(0);
    expect(swept.masterSecret.equals(Buffer.alloc(48))).to.equal(true);
    cache.store(entry(ids[4]!));
    const cleared = cache.get(ids[4]!)!;
    cache.clear();
    expect(cleared.masterSecret.equals(Buffer.alloc(48))).to.equal(true);
  });

  it('keeps its own copy of the master secret, and no PSK - only a keyed check value', () => {
    const cache = new SessionCache({}, Date.now);
    const master = Buffer.alloc(48, 0x11);
    const psk = Buffer.from('0102030405060708', 'hex');
    cache.store({ ...entry(Buffer.alloc(32, 9), master), pskCheck: cache.pskCheck(psk) });
    master.fill(0);
    const s = cache.get(Buffer.alloc(32, 9))!;
    expect(s.masterSecret.equals(Buffer.alloc(48, 0x11))).to.equal(true);
    expect(s.pskCheck!.includes(psk)).to.equal(false);
    expect(cache.samePsk(s, psk)).to.equal(true);
    expect(cache.samePsk(s, Buffer.from('0102030405060709', 'hex'))).to.equal(false);
    expect(new SessionCache({}, Date.now).pskCheck(psk).equals(cache.pskCheck(psk))).to.equal(false); // keyed per cache
  });

  it('rejects bad options', () => {
    expect(() => new SessionCache({ entries: 0 }, Date.now)).to.throw(RangeError);
    expect(() => new SessionCache({ lifetimeMs: 0 }, Date.now)).to.throw(RangeError);
  });
});
