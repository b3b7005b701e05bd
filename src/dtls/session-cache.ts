/**
 * Server-side session cache for DTLS 1.2 session resumption (RFC 5246 §7.3, §7.4.1.2; RFC 6347).
 *
 * A full handshake gives the ServerHello a fresh random 32-byte session_id; once that handshake
 * completes, the session's resumable state - id, cipher suite, master secret, whether the extended
 * master secret was used (RFC 7627 §5.3), the certificate types, and the identity the client proved
 * (PSK identity, raw public key SPKI, or X.509 chain) - is kept here. A later ClientHello carrying
 * the id can then be answered with the abbreviated handshake (connection.ts).
 *
 * Bounded: at most `entries` sessions (the oldest is evicted first) and each lives `lifetimeMs`
 * from its full handshake (resumptions do not extend it). A master secret that leaves the cache -
 * evicted, expired, removed (a fatal alert or failed handshake, RFC 5246 §7.2.2) or at clear() - is
 * overwritten with zeros. For PSK sessions the cache keeps no key, only an HMAC of it under a
 * random per-cache key, so a resumption can check that the identity still maps to the same PSK.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { CipherSuite } from './suites.js';

export interface SessionCacheOptions {
  /** Sessions kept at most (default 10 000). */
  readonly entries?: number;
  /** How long a session can be resumed after its full handshake, ms (default 24 h). */
  readonly lifetimeMs?: number;
}

export const DEFAULT_SESSION_CACHE: Required<SessionCacheOptions> = { entries: 10_000, lifetimeMs: 24 * 3600_000 };

/** What a resumption needs from the original session. Fields are the cache's own copies: do not modify them. */
export interface CachedSession {
  readonly id: Buffer;
  readonly suite: CipherSuite;
  /** 48 bytes; zeroed when the entry leaves the cache. Copy it before use across an await. */
  readonly masterSecret: Buffer;
  readonly extendedMasterSecret: boolean;
  /** CertificateType per direction (ECDHE_ECDSA sessions; unused for PSK). */
  readonly clientCertificateType: number;
  readonly serverCertificateType: number;
  /** PSK identity, canonical SPKI DER (raw public key) or leaf certificate DER (X.509). */
  readonly identity: Buffer;
  /** X.509: the chain the client sent (leaf first). */
  readonly chain: readonly Buffer[] | undefined;
  /** PSK: `SessionCache.pskCheck(psk)` at the full handshake. */
  readonly pskCheck: Buffer | undefined;
  /** When the full handshake completed (the `now` clock). */
  readonly createdAt: number;
}

export type NewCachedSession = Omit<CachedSession, 'createdAt'>;

export class SessionCache {
  private readonly sessions = new Map<string, CachedSession>();
  private readonly maxEntries: number;
  private readonly lifetimeMs: number;
  private readonly checkKey = randomBytes(32);

  constructor(opts: SessionCacheOptions, private readonly now: () => number) {
    this.maxEntries = opts.entries ?? DEFAULT_SESSION_CACHE.entries;
    this.lifetimeMs = opts.lifetimeMs ?? DEFAULT_SESSION_CACHE.lifetimeMs;
    if (!Number.isInteger(this.maxEntries) || this.maxEntries < 1) throw new RangeError('sessionCache.entries must be an integer >= 1');
    if (!(this.lifetimeMs > 0)) throw new RangeError('sessionCache.lifetimeMs must be > 0');
  }

  get size(): number {
    return this.sessions.size;
  }

  /** A fresh session_id for a ServerHello (32 random bytes). */
  newId(): Buffer {
    return randomBytes(32);
  }

  /** HMAC of a PSK under this cache's random key: lets a resumption check "same key" without keeping the key. */
  pskCheck(psk: Uint8Array): Buffer {
    return createHmac('sha256', this.checkKey).update(psk).digest();
  }

  /** True when `psk` is the key `session` was established with. */
  samePsk(session: CachedSession, psk: Uint8Array): boolean {
    return session.pskCheck !== undefined && timingSafeEqual(session.pskCheck, this.pskCheck(psk));
  }

  /** Keeps a completed session (copies everything); evicts the oldest when full. An empty id is not stored. */
  store(s: NewCachedSession): void {
    if (s.id.length === 0) return;
    const key = s.id.toString('hex');
    this.remove(s.id);
    while (this.sessions.size >= this.maxEntries) {
      const oldest = this.sessions.keys().next().value;
      if (oldest === undefined) break;
      this.drop(oldest);
    }
    // One ArrayBuffer of the entry's own holds id ‖ master secret ‖ identity ‖ PSK check: small
    // Buffer.from() copies would be slices of Node's shared 8 KiB pool, each keeping a whole slab alive.
    const checkLength = s.pskCheck?.length ?? 0;
    const own = Buffer.allocUnsafeSlow(s.id.length + s.masterSecret.length + s.identity.length + checkLength);
    let at = 0;
    const put = (b: Uint8Array): Buffer => {
      own.set(b, at);
      at += b.length;
      return own.subarray(at - b.length, at);
    };
    this.sessions.set(key, {
      id: put(s.id),
      suite: s.suite,
      masterSecret: put(s.masterSecret),
      extendedMasterSecret: s.extendedMasterSecret,
      clientCertificateType: s.clientCertificateType,
      serverCertificateType: s.serverCertificateType,
      identity: put(s.identity),
      chain: s.chain?.map((c) => {
        const copy = Buffer.allocUnsafeSlow(c.length);
        copy.set(c);
        return copy;
      }),
      pskCheck: s.pskCheck === undefined ? undefined : put(s.pskCheck),
      createdAt: this.now(),
    });
  }

  /** The live session with this id; an expired one is removed (and zeroed) instead. */
  get(id: Uint8Array): CachedSession | undefined {
    if (id.length === 0) return undefined;
    const key = Buffer.from(id.buffer, id.byteOffset, id.byteLength).toString('hex');
    const s = this.sessions.get(key);
    if (s === undefined) return undefined;
    if (this.now() - s.createdAt >= this.lifetimeMs) {
      this.drop(key);
      return undefined;
    }
    return s;
  }

  /** Forgets a session (fatal alert, failed handshake, revoked identity). */
  remove(id: Uint8Array): void {
    if (id.length === 0) return;
    this.drop(Buffer.from(id.buffer, id.byteOffset, id.byteLength).toString('hex'));
  }

  /** Removes expired sessions; the server's periodic sweep calls it. */
  sweep(): void {
    const now = this.now();
    // Insertion order is creation order: stop at the first live one.
    for (const [key, s] of this.sessions) {
      if (now - s.createdAt < this.lifetimeMs) break;
      this.drop(key);
    }
  }

  clear(): void {
    for (const key of [...this.sessions.keys()]) this.drop(key);
  }

  private drop(key: string): void {
    const s = this.sessions.get(key);
    if (s === undefined) return;
    s.masterSecret.fill(0);
    s.pskCheck?.fill(0);
    this.sessions.delete(key);
  }
}
