/**
 * Cipher suites this server implements. All use the SHA-256 PRF. Key exchange: PSK (RFC 4279)
 * or ECDHE_ECDSA on secp256r1 (RFC 8422, authenticated with raw public keys, RFC 7250).
 */
import type { KeyBlockSizes } from './prf.js';

export type BulkCipher = 'aes-128-ccm8' | 'aes-128-ccm' | 'aes-128-gcm' | 'aes-128-cbc-sha256';

export type KeyExchange = 'psk' | 'ecdhe_ecdsa';

export interface CipherSuite extends KeyBlockSizes {
  readonly id: number;
  readonly name: string;
  readonly keyExchange: KeyExchange;
  readonly cipher: BulkCipher;
}

const aead = (id: number, name: string, cipher: BulkCipher, keyExchange: KeyExchange = 'psk'): CipherSuite => ({
  id, name, keyExchange, cipher, macKeyLength: 0, encKeyLength: 16, fixedIvLength: 4,
});

export const TLS_PSK_WITH_AES_128_CCM_8 = aead(0xc0a8, 'TLS_PSK_WITH_AES_128_CCM_8', 'aes-128-ccm8');
export const TLS_PSK_WITH_AES_128_CCM = aead(0xc0a4, 'TLS_PSK_WITH_AES_128_CCM', 'aes-128-ccm');
export const TLS_PSK_WITH_AES_128_GCM_SHA256 = aead(0x00a8, 'TLS_PSK_WITH_AES_128_GCM_SHA256', 'aes-128-gcm');
export const TLS_PSK_WITH_AES_128_CBC_SHA256: CipherSuite = {
  id: 0x00ae, name: 'TLS_PSK_WITH_AES_128_CBC_SHA256', keyExchange: 'psk', cipher: 'aes-128-cbc-sha256',
  macKeyLength: 32, encKeyLength: 16, fixedIvLength: 0,
};

export const TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8 = aead(0xc0ae, 'TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8', 'aes-128-ccm8', 'ecdhe_ecdsa');
export const TLS_ECDHE_ECDSA_WITH_AES_128_CCM = aead(0xc0ac, 'TLS_ECDHE_ECDSA_WITH_AES_128_CCM', 'aes-128-ccm', 'ecdhe_ecdsa');
export const TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 = aead(0xc02b, 'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256', 'aes-128-gcm', 'ecdhe_ecdsa');
export const TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256: CipherSuite = {
  id: 0xc023, name: 'TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256', keyExchange: 'ecdhe_ecdsa', cipher: 'aes-128-cbc-sha256',
  macKeyLength: 32, encKeyLength: 16, fixedIvLength: 0,
};

/** Every suite implemented, in the server's default order of preference (CCM_8 first: LwM2M's mandatory suite). */
export const ALL_SUITES: readonly CipherSuite[] = [
  TLS_PSK_WITH_AES_128_CCM_8,
  TLS_PSK_WITH_AES_128_GCM_SHA256,
  TLS_PSK_WITH_AES_128_CCM,
  TLS_PSK_WITH_AES_128_CBC_SHA256,
  TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8,
  TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
  TLS_ECDHE_ECDSA_WITH_AES_128_CCM,
  TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256,
];

const BY_ID: ReadonlyMap<number, CipherSuite> = new Map(ALL_SUITES.map((s) => [s.id, s]));

export function suiteById(id: number): CipherSuite | undefined {
  return BY_ID.get(id);
}

/** `0xC0A8` style for logs and errors. */
export function suiteHex(id: number): string {
  return `0x${id.toString(16).toUpperCase().padStart(4, '0')}`;
}
