/**
 * The TLS 1.2 key schedule with the SHA-256 PRF (RFC 5246 §5, §8.1, §6.3, §7.4.9), the PSK
 * premaster secret (RFC 4279 §2) and the extended master secret (RFC 7627 §4).
 */
import { createHash, createHmac } from 'node:crypto';

/** P_SHA256(secret, label ‖ seed) truncated to `length` bytes. */
export function prf(secret: Uint8Array, label: string, seed: Uint8Array, length: number): Buffer {
  const labelSeed = Buffer.concat([Buffer.from(label, 'latin1'), seed]);
  const out: Buffer[] = [];
  let produced = 0;
  let a: Buffer = labelSeed; // A(0)
  while (produced < length) {
    a = createHmac('sha256', secret).update(a).digest();
    const block = createHmac('sha256', secret).update(a).update(labelSeed).digest();
    out.push(block);
    produced += block.length;
  }
  return Buffer.concat(out).subarray(0, length);
}

export function sha256(...parts: readonly Uint8Array[]): Buffer {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
}

/** RFC 4279 §2: uint16(N) ‖ N zero bytes ‖ uint16(N) ‖ psk. */
export function pskPremasterSecret(psk: Uint8Array): Buffer {
  const n = psk.length;
  if (n > 0xffff) throw new RangeError('PSK longer than 65535 bytes');
  const out = Buffer.alloc(4 + 2 * n);
  out.writeUInt16BE(n, 0);
  out.writeUInt16BE(n, 2 + n);
  Buffer.from(psk.buffer, psk.byteOffset, psk.byteLength).copy(out, 4 + n);
  return out;
}

export const MASTER_SECRET_LENGTH = 48;

export function masterSecret(premaster: Uint8Array, clientRandom: Uint8Array, serverRandom: Uint8Array): Buffer {
  return prf(premaster, 'master secret', Buffer.concat([clientRandom, serverRandom]), MASTER_SECRET_LENGTH);
}

/** RFC 7627: `session_hash` = SHA-256 of the transcript up to and including ClientKeyExchange. */
export function extendedMasterSecret(premaster: Uint8Array, sessionHash: Uint8Array): Buffer {
  return prf(premaster, 'extended master secret', sessionHash, MASTER_SECRET_LENGTH);
}

export interface KeyBlockSizes {
  readonly macKeyLength: number;
  readonly encKeyLength: number;
  readonly fixedIvLength: number;
}

/** One direction's keys. */
export interface DirectionKeys {
  readonly macKey: Buffer;
  readonly key: Buffer;
  readonly iv: Buffer;
}

export interface KeyBlock {
  readonly client: DirectionKeys;
  readonly server: DirectionKeys;
}

/** RFC 5246 §6.3: client MAC, server MAC, client key, server key, client IV, server IV. */
export function keyBlock(master: Uint8Array, clientRandom: Uint8Array, serverRandom: Uint8Array, s: KeyBlockSizes): KeyBlock {
  const total = 2 * (s.macKeyLength + s.encKeyLength + s.fixedIvLength);
  const kb = prf(master, 'key expansion', Buffer.concat([serverRandom, clientRandom]), total);
  let pos = 0;
  const take = (n: number): Buffer => {
    const v = Buffer.from(kb.subarray(pos, pos + n));
    pos += n;
    return v;
  };
  const clientMac = take(s.macKeyLength);
  const serverMac = take(s.macKeyLength);
  const clientKey = take(s.encKeyLength);
  const serverKey = take(s.encKeyLength);
  const clientIv = take(s.fixedIvLength);
  const serverIv = take(s.fixedIvLength);
  return {
    client: { macKey: clientMac, key: clientKey, iv: clientIv },
    server: { macKey: serverMac, key: serverKey, iv: serverIv },
  };
}

/** Finished verify_data (12 bytes) over SHA-256(handshake_messages). */
export function verifyData(master: Uint8Array, sender: 'client' | 'server', transcriptHash: Uint8Array): Buffer {
  return prf(master, `${sender} finished`, transcriptHash, 12);
}
