/**
 * Record protection for epochs > 0 (RFC 5246 §6.2.3, RFC 6347 §4.1.2.1):
 *
 * - AEAD (AES-128-CCM_8, AES-128-CCM per RFC 6655; AES-128-GCM per RFC 5288): nonce =
 *   fixed IV (4) ‖ nonce_explicit (8), where this server sends epoch ‖ sequence_number as
 *   nonce_explicit and the receiver takes it from the record; additional data = epoch ‖ seq ‖
 *   type ‖ version ‖ plaintext length; fragment = nonce_explicit ‖ ciphertext ‖ tag.
 * - AES-128-CBC with HMAC-SHA256, MAC-then-encrypt (no Encrypt-then-MAC): fragment = random IV ‖
 *   CBC(plaintext ‖ MAC ‖ padding). On receipt the padding is checked over a fixed 256-byte span
 *   and the MAC is computed whether or not the padding was good, so a bad padding and a bad MAC
 *   take about the same work and give the same answer (undefined). This narrows the Lucky13
 *   timing channel; it does not close it completely (HMAC cost still varies with the length).
 *
 * Connection ID records (RFC 9146 §5, tls12_cid, type 25): with a `cid` the plaintext is the
 * DTLSInnerPlaintext (content ‖ real_type ‖ zeros, record.ts builds it) and the AEAD additional
 * data / the MAC prefix is `8 × FF ‖ 25 ‖ cid_length ‖ 25 ‖ version ‖ epoch ‖ seq ‖ cid ‖
 * inner length` instead of the 13-byte pseudo-header; nonces and padding are unchanged.
 *
 * `decrypt` returns undefined for every failure (short fragment, bad tag, bad padding, bad MAC):
 * the record layer drops such records silently (RFC 6347 §4.1.2.7).
 */
import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { DirectionKeys } from './prf.js';
import type { CipherSuite } from './suites.js';

export interface RecordProtection {
  /** Largest number of bytes protection adds to a plaintext. */
  readonly maxOverhead: number;
  /** With `cid`: a tls12_cid record (`type` 25), `plaintext` being the DTLSInnerPlaintext. */
  encrypt(type: number, version: number, epoch: number, seq: number, plaintext: Buffer, cid?: Buffer): Buffer;
  /** With `cid`: a tls12_cid record with that CID in its header; returns the DTLSInnerPlaintext. */
  decrypt(type: number, version: number, epoch: number, seq: number, fragment: Buffer, cid?: Buffer): Buffer | undefined;
}

/** epoch(2) ‖ seq(6) ‖ type(1) ‖ version(2) ‖ length(2): the AEAD additional data and the CBC MAC prefix. */
export function pseudoHeader(epoch: number, seq: number, type: number, version: number, length: number): Buffer {
  const b = Buffer.allocUnsafe(13);
  b.writeUInt16BE(epoch, 0);
  b.writeUIntBE(seq, 2, 6);
  b[8] = type;
  b.writeUInt16BE(version, 9);
  b.writeUInt16BE(length, 11);
  return b;
}

/**
 * RFC 9146 §5 additional data (AEAD) and MAC prefix (CBC) of a tls12_cid record: seq_num_placeholder
 * (8 × FF) ‖ tls12_cid ‖ cid_length ‖ tls12_cid ‖ version ‖ epoch ‖ seq ‖ cid ‖ length of the DTLSInnerPlaintext.
 */
export function cidHeader(version: number, epoch: number, seq: number, cid: Buffer, innerLength: number): Buffer {
  const b = Buffer.allocUnsafe(23 + cid.length);
  b.fill(0xff, 0, 8);
  b[8] = TLS12_CID;
  b[9] = cid.length;
  b[10] = TLS12_CID;
  b.writeUInt16BE(version, 11);
  b.writeUInt16BE(epoch, 13);
  b.writeUIntBE(seq, 15, 6);
  cid.copy(b, 21);
  b.writeUInt16BE(innerLength, 21 + cid.length);
  return b;
}

const TLS12_CID = 25;

/** The additional data / MAC prefix of a record: the 13-byte pseudo-header, or the CID form when `cid` is given. */
function headerFor(type: number, version: number, epoch: number, seq: number, length: number, cid: Buffer | undefined): Buffer {
  return cid === undefined ? pseudoHeader(epoch, seq, type, version, length) : cidHeader(version, epoch, seq, cid, length);
}

/** AES-CCM / AES-GCM seal with Node's crypto: ciphertext ‖ tag. */
export function aeadSeal(
  algorithm: 'aes-128-ccm' | 'aes-128-gcm', key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array, tagLength: number,
): Buffer {
  if (algorithm === 'aes-128-ccm') {
    const c = createCipheriv('aes-128-ccm', key, nonce, { authTagLength: tagLength });
    c.setAAD(aad, { plaintextLength: plaintext.length });
    const ct = Buffer.concat([c.update(plaintext), c.final()]);
    return Buffer.concat([ct, c.getAuthTag()]);
  }
  const c = createCipheriv('aes-128-gcm', key, nonce, { authTagLength: tagLength });
  c.setAAD(aad);
  const ct = Buffer.concat([c.update(plaintext), c.final()]);
  return Buffer.concat([ct, c.getAuthTag()]);
}

/** Inverse of aeadSeal; undefined when the tag does not verify. */
export function aeadOpen(
  algorithm: 'aes-128-ccm' | 'aes-128-gcm', key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, sealed: Buffer, tagLength: number,
): Buffer | undefined {
  if (sealed.length < tagLength) return undefined;
  const ct = sealed.subarray(0, sealed.length - tagLength);
  const tag = sealed.subarray(sealed.length - tagLength);
  try {
    if (algorithm === 'aes-128-ccm') {
      const d = createDecipheriv('aes-128-ccm', key, nonce, { authTagLength: tagLength });
      d.setAuthTag(tag);
      d.setAAD(aad, { plaintextLength: ct.length });
      const pt = d.update(ct);
      d.final();
      return pt;
    }
    const d = createDecipheriv('aes-128-gcm', key, nonce, { authTagLength: tagLength });
    d.setAuthTag(tag);
    d.setAAD(aad);
    const pt = d.update(ct);
    d.final();
    return pt;
  } catch {
    return undefined;
  }
}

/**
 * The direction's keys in one ArrayBuffer of their own, for the session's life: the key block's
 * pieces are small Buffer.from() copies, slices of Node's shared 8 KiB pool, and each would keep a
 * whole slab alive.
 */
function ownedKeys(keys: DirectionKeys): DirectionKeys {
  const own = Buffer.allocUnsafeSlow(keys.macKey.length + keys.key.length + keys.iv.length);
  keys.macKey.copy(own, 0);
  keys.key.copy(own, keys.macKey.length);
  keys.iv.copy(own, keys.macKey.length + keys.key.length);
  const k = keys.macKey.length;
  const e = k + keys.key.length;
  return { macKey: own.subarray(0, k), key: own.subarray(k, e), iv: own.subarray(e) };
}

class AeadProtection implements RecordProtection {
  readonly maxOverhead: number;
  private readonly keys: DirectionKeys;

  constructor(
    private readonly algorithm: 'aes-128-ccm' | 'aes-128-gcm',
    keys: DirectionKeys,
    private readonly tagLength: number,
  ) {
    this.maxOverhead = 8 + tagLength;
    this.keys = ownedKeys(keys);
  }

  encrypt(type: number, version: number, epoch: number, seq: number, plaintext: Buffer, cid?: Buffer): Buffer {
    const explicit = Buffer.allocUnsafe(8);
    explicit.writeUInt16BE(epoch, 0);
    explicit.writeUIntBE(seq, 2, 6);
    const nonce = Buffer.concat([this.keys.iv, explicit]);
    const aad = headerFor(type, version, epoch, seq, plaintext.length, cid);
    return Buffer.concat([explicit, aeadSeal(this.algorithm, this.keys.key, nonce, aad, plaintext, this.tagLength)]);
  }

  decrypt(type: number, version: number, epoch: number, seq: number, fragment: Buffer, cid?: Buffer): Buffer | undefined {
    if (fragment.length < this.maxOverhead) return undefined;
    const nonce = Buffer.concat([this.keys.iv, fragment.subarray(0, 8)]);
    const aad = headerFor(type, version, epoch, seq, fragment.length - this.maxOverhead, cid);
    return aeadOpen(this.algorithm, this.keys.key, nonce, aad, fragment.subarray(8), this.tagLength);
  }
}

const MAC_LENGTH = 32;
const BLOCK = 16;

class CbcSha256Protection implements RecordProtection {
  /** IV + MAC + up to a full block of padding. */
  readonly maxOverhead = BLOCK + MAC_LENGTH + BLOCK;
  private readonly keys: DirectionKeys;

  constructor(keys: DirectionKeys) {
    this.keys = ownedKeys(keys);
  }

  private mac(epoch: number, seq: number, type: number, version: number, plaintext: Buffer, cid: Buffer | undefined): Buffer {
    return createHmac('sha256', this.keys.macKey).update(headerFor(type, version, epoch, seq, plaintext.length, cid)).update(plaintext).digest();
  }

  encrypt(type: number, version: number, epoch: number, seq: number, plaintext: Buffer, cid?: Buffer): Buffer {
    const mac = this.mac(epoch, seq, type, version, plaintext, cid);
    const unpadded = plaintext.length + MAC_LENGTH;
    const padLength = BLOCK - 1 - (unpadded % BLOCK); // value p, p + 1 bytes of it
    const data = Buffer.concat([plaintext, mac, Buffer.alloc(padLength + 1, padLength)]);
    const iv = randomBytes(BLOCK);
    const c = createCipheriv('aes-128-cbc', this.keys.key, iv);
    c.setAutoPadding(false);
    return Buffer.concat([iv, c.update(data), c.final()]);
  }

  decrypt(type: number, version: number, epoch: number, seq: number, fragment: Buffer, cid?: Buffer): Buffer | undefined {
    const ctLength = fragment.length - BLOCK;
    if (ctLength < MAC_LENGTH + 1 || ctLength % BLOCK !== 0) return undefined;
    let data: Buffer;
    try {
      const d = createDecipheriv('aes-128-cbc', this.keys.key, fragment.subarray(0, BLOCK));
      d.setAutoPadding(false);
      data = Buffer.concat([d.update(fragment.subarray(BLOCK)), d.final()]);
    } catch {
      return undefined;
    }
    const n = data.length;
    const pad = data[n - 1]!;
    // good = 1 when pad + 1 + MAC fits; then every one of the last pad + 1 bytes must equal pad.
    let good = pad + 1 + MAC_LENGTH <= n ? 1 : 0;
    const span = Math.min(256, n);
    for (let i = 1; i <= span; i++) {
      const inPadding = ((i - pad - 2) >>> 31) & 1; // 1 when i <= pad + 1
      const differs = ((data[n - i]! ^ pad) + 0xff) >>> 8; // 1 when the byte is not pad
      good &= ~(inPadding & differs) & 1;
    }
    const padUsed = good === 1 ? pad + 1 : 0; // on bad padding still compute a MAC, over an assumed empty padding
    const plainLength = n - padUsed - MAC_LENGTH;
    const plaintext = data.subarray(0, plainLength);
    const expected = this.mac(epoch, seq, type, version, plaintext, cid);
    const macOk = timingSafeEqual(expected, data.subarray(plainLength, plainLength + MAC_LENGTH));
    return macOk && good === 1 ? Buffer.from(plaintext) : undefined;
  }
}

/** Protection for one direction (the client's keys for reading, the server's for writing). */
export function createProtection(suite: CipherSuite, keys: DirectionKeys): RecordProtection {
  switch (suite.cipher) {
    case 'aes-128-ccm8':
      return new AeadProtection('aes-128-ccm', keys, 8);
    case 'aes-128-ccm':
      return new AeadProtection('aes-128-ccm', keys, 16);
    case 'aes-128-gcm':
      return new AeadProtection('aes-128-gcm', keys, 16);
    case 'aes-128-cbc-sha256':
      return new CbcSha256Protection(keys);
  }
}
