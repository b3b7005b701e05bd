/**
 * Stateless cookies for HelloVerifyRequest (RFC 6347 §4.2.1). A cookie is
 * HMAC-SHA256(secret, client address ‖ port ‖ client_version ‖ random ‖ session_id ‖
 * cipher_suites ‖ compression_methods) truncated to 16 bytes: only a client that receives
 * datagrams at its source address can return it, and the server keeps nothing per client until it
 * does. The secret is replaced every `rotationMs`; cookies made with the previous secret are still
 * accepted, so a cookie stays valid for at least one rotation period and at most two.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { ClientHello } from './messages.js';

export const COOKIE_LENGTH = 16;

export interface CookieJarOptions {
  /** How often the secret changes (default 5 minutes). */
  readonly rotationMs?: number;
  /** Clock (default Date.now); tests inject one. */
  readonly now?: () => number;
}

export class CookieJar {
  private current = randomBytes(32);
  private previous: Buffer | undefined;
  private rotatedAt: number;
  private readonly rotationMs: number;
  private readonly now: () => number;

  constructor(opts: CookieJarOptions = {}) {
    this.rotationMs = opts.rotationMs ?? 5 * 60_000;
    if (!(this.rotationMs > 0)) throw new RangeError('cookie rotationMs must be > 0');
    this.now = opts.now ?? Date.now;
    this.rotatedAt = this.now();
  }

  private rotate(): void {
    const elapsed = this.now() - this.rotatedAt;
    if (elapsed < this.rotationMs) return;
    // After two periods without traffic the old secret is too old to honour as well.
    this.previous = elapsed < 2 * this.rotationMs ? this.current : undefined;
    this.current = randomBytes(32);
    this.rotatedAt = this.now();
  }

  private compute(secret: Buffer, address: string, port: number, ch: ClientHello): Buffer {
    const h = createHmac('sha256', secret);
    const addr = Buffer.from(address, 'utf8');
    const fixed = Buffer.alloc(6);
    fixed.writeUInt16BE(addr.length, 0);
    fixed.writeUInt16BE(port, 2);
    fixed.writeUInt16BE(ch.clientVersion, 4);
    h.update(fixed).update(addr).update(ch.random);
    h.update(Buffer.from([ch.sessionId.length])).update(ch.sessionId);
    const suites = Buffer.alloc(2 + ch.cipherSuites.length * 2);
    suites.writeUInt16BE(ch.cipherSuites.length, 0);
    ch.cipherSuites.forEach((s, i) => suites.writeUInt16BE(s, 2 + i * 2));
    h.update(suites).update(Buffer.from([ch.compressionMethods.length, ...ch.compressionMethods]));
    return h.digest().subarray(0, COOKIE_LENGTH);
  }

  /** A cookie for this ClientHello from (address, port), under the current secret. */
  create(address: string, port: number, ch: ClientHello): Buffer {
    this.rotate();
    return this.compute(this.current, address, port, ch);
  }

  /** True when `ch.cookie` was made by `create` for the same client and hello parameters, under the current or previous secret. */
  verify(address: string, port: number, ch: ClientHello): boolean {
    this.rotate();
    if (ch.cookie.length !== COOKIE_LENGTH) return false;
    if (timingSafeEqual(this.compute(this.current, address, port, ch), ch.cookie)) return true;
    return this.previous !== undefined && timingSafeEqual(this.compute(this.previous, address, port, ch), ch.cookie);
  }
}
