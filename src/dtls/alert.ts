/**
 * Alert and ChangeCipherSpec record bodies (RFC 5246 §7.1, §7.2): an alert is
 * `level(1) description(1)`; a ChangeCipherSpec is the single byte 1.
 */
import { AlertDescription, AlertLevel } from './constants.js';

export interface Alert {
  readonly level: number;
  readonly description: number;
}

export function parseAlert(body: Buffer): Alert | undefined {
  if (body.length !== 2) return undefined;
  return { level: body[0]!, description: body[1]! };
}

export function serializeAlert(a: Alert): Buffer {
  return Buffer.from([a.level, a.description]);
}

export function isCloseNotify(a: Alert): boolean {
  return a.description === AlertDescription.closeNotify;
}

export function isFatal(a: Alert): boolean {
  return a.level === AlertLevel.fatal;
}

export const CHANGE_CIPHER_SPEC = Buffer.from([1]);

export function isChangeCipherSpec(body: Buffer): boolean {
  return body.length === 1 && body[0] === 1;
}

const NAMES: ReadonlyMap<number, string> = new Map(
  Object.entries(AlertDescription).map(([k, v]) => [v, k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)]),
);

/** `unknown_psk_identity(115)` style name for logs. */
export function alertName(description: number): string {
  return `${NAMES.get(description) ?? 'alert'}(${description})`;
}
