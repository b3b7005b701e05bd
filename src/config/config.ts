/**
 * Configuration: `config/default.json`, then a user file (deep-merged), then environment
 * (`LWBS_DATA_DIR`), then command-line flags (`--data`). Validated with errors that name the
 * field, so a typo in a config file is caught at start, not at the first device.
 */
import { createPrivateKey, createPublicKey, type KeyObject, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { parseCertificateFile } from '../dtls/x509-issue.js';
import { packageRoot } from '../util/package-root.js';

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

/**
 * X.509 for one server's coaps listener. Paths are absolute after validation; the files are read
 * by `readX509Files` when the server starts.
 */
export interface X509Config {
  /** Files (PEM bundles or DER) with the certificates client chains must lead to; empty: no X.509 clients. */
  readonly trustAnchors: readonly string[];
  /** The server's own chain (PEM, leaf first, or DER) and its P-256 private key; both null: a self-signed certificate over the stored key pair. */
  readonly certificate: string | null;
  readonly privateKey: string | null;
}

export const NO_X509: X509Config = { trustAnchors: [], certificate: null, privateKey: null };

export interface Config {
  readonly dataDir: string;
  readonly objectDirs: readonly string[];
  readonly bootstrap: {
    readonly coap: ListenAddress | null;
    readonly coaps: ListenAddress | null;
    /** Give up on one request to a device after this many seconds (CoAP's MAX_TRANSMIT_WAIT is 93). */
    readonly requestTimeoutSeconds: number;
    /** Give up on a whole bootstrap session after this many seconds. */
    readonly sessionTimeoutSeconds: number;
    /** X.509 on `coaps` (absent: as NO_X509). */
    readonly x509?: X509Config;
  };
  readonly registration: {
    readonly coap: ListenAddress | null;
    readonly coaps: ListenAddress | null;
    readonly publicUri: { readonly coap: string; readonly coaps: string };
    /** Give up on one device-management request after this many seconds (93: MAX_TRANSMIT_WAIT). */
    readonly requestTimeoutSeconds: number;
    /** A queue-mode client counts as awake this many seconds after it last spoke (93, as Leshan). */
    readonly queueAwakeSeconds: number;
    /** X.509 on `coaps` (absent: as NO_X509). */
    readonly x509?: X509Config;
  };
  readonly log: { readonly level: LogLevel };
  /** The admin HTTP API (`lwbs device read ...`); `listen` null disables it. Its bearer token is `<dataDir>/admin.token`. */
  readonly admin: { readonly listen: ListenAddress | null };
  /** Ended bootstrap sessions and registration events older than `keepDays` are pruned (null: kept forever). Default 90. */
  readonly history?: { readonly keepDays: number | null };
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function isObject(v: unknown): v is Record<string, Json> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Deep merge: objects merge key by key, everything else (arrays included) is replaced. */
export function mergeJson(base: Json, over: Json): Json {
  if (!isObject(base) || !isObject(over)) return over;
  const out: Record<string, Json> = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = k in base ? mergeJson(base[k] as Json, v) : v;
  return out;
}

function readJson(file: string, what: string): Json {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(`cannot read ${what} ${file}: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text) as Json;
  } catch (e) {
    throw new ConfigError(`${what} ${file} is not valid JSON: ${(e as Error).message}`);
  }
}

/** `host:port`, `[::1]:port`, or null/"" to disable a listener. */
export function parseListen(field: string, v: Json | undefined): ListenAddress | null {
  if (v === null || v === '' || v === false) return null;
  if (typeof v !== 'string') throw new ConfigError(`${field} must be "host:port" or null, got ${JSON.stringify(v)}`);
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]+)):([0-9]{1,5})$/.exec(v.trim());
  if (!m) throw new ConfigError(`${field} must be "host:port" (IPv6 as "[::1]:port"), got ${JSON.stringify(v)}`);
  const port = Number(m[3]);
  if (port > 65535) throw new ConfigError(`${field}: port ${port} is not in 0..65535`);
  return { host: (m[1] ?? m[2]) as string, port };
}

function str(field: string, v: Json | undefined, check?: (s: string) => boolean, expect?: string): string {
  if (typeof v !== 'string' || v === '' || (check && !check(v))) {
    throw new ConfigError(`${field} must be ${expect ?? 'a non-empty string'}, got ${JSON.stringify(v)}`);
  }
  return v;
}

/** A positive number of seconds (fractions allowed), at most a day. */
function seconds(field: string, v: Json | undefined): number {
  if (typeof v !== 'number' || !(v > 0) || v > 86_400) throw new ConfigError(`${field} must be a number of seconds in (0, 86400], got ${JSON.stringify(v)}`);
  return v;
}

function obj(field: string, v: Json | undefined): Record<string, Json> {
  if (!isObject(v)) throw new ConfigError(`${field} must be an object, got ${JSON.stringify(v)}`);
  return v;
}

/** `{ trustAnchors: [files], certificate: file|null, privateKey: file|null }`; absent or null: NO_X509. */
function x509Config(field: string, v: Json | undefined, abs: (p: string) => string): X509Config {
  if (v === undefined || v === null) return NO_X509;
  const o = obj(field, v);
  for (const k of Object.keys(o)) if (!['trustAnchors', 'certificate', 'privateKey'].includes(k)) throw new ConfigError(`unknown config field "${field}.${k}"`);
  const anchors = o.trustAnchors ?? [];
  if (!Array.isArray(anchors)) throw new ConfigError(`${field}.trustAnchors must be an array of certificate files, got ${JSON.stringify(anchors)}`);
  anchors.forEach((a, i) => str(`${field}.trustAnchors[${i}]`, a, undefined, 'a certificate file path'));
  const file = (k: 'certificate' | 'privateKey'): string | null =>
    o[k] === undefined || o[k] === null ? null : abs(str(`${field}.${k}`, o[k], undefined, 'a file path or null'));
  const certificate = file('certificate');
  const privateKey = file('privateKey');
  if ((certificate === null) !== (privateKey === null)) {
    throw new ConfigError(`${field}.certificate and ${field}.privateKey go together: give both files, or neither for a self-signed certificate over the stored key pair`);
  }
  return { trustAnchors: (anchors as string[]).map(abs), certificate, privateKey };
}

const KNOWN_TOP = new Set(['dataDir', 'objectDirs', 'bootstrap', 'registration', 'log', 'admin', 'history']);

/** Validates merged JSON into a Config; relative paths resolve against `baseDir`. */
export function validateConfig(raw: Json, baseDir: string): Config {
  const root = obj('config', raw);
  for (const k of Object.keys(root)) if (!KNOWN_TOP.has(k)) throw new ConfigError(`unknown config field "${k}"`);
  const dataDir = str('dataDir', root.dataDir);
  const objectDirsRaw = root.objectDirs ?? [];
  if (!Array.isArray(objectDirsRaw) || objectDirsRaw.some((d) => typeof d !== 'string')) {
    throw new ConfigError(`objectDirs must be an array of folder paths, got ${JSON.stringify(objectDirsRaw)}`);
  }
  const bs = obj('bootstrap', root.bootstrap);
  const rs = obj('registration', root.registration);
  const pub = obj('registration.publicUri', rs.publicUri);
  const log = obj('log', root.log ?? { level: 'info' });
  const admin = root.admin === undefined || root.admin === null ? { listen: null } : obj('admin', root.admin);
  for (const k of Object.keys(admin)) if (k !== 'listen') throw new ConfigError(`unknown config field "admin.${k}"`);
  const history = root.history === undefined ? {} : obj('history', root.history);
  for (const k of Object.keys(history)) if (k !== 'keepDays') throw new ConfigError(`unknown config field "history.${k}"`);
  const keepDays = history.keepDays === undefined ? 90 : history.keepDays;
  if (keepDays !== null && (typeof keepDays !== 'number' || !Number.isInteger(keepDays) || keepDays < 1 || keepDays > 36_500)) {
    throw new ConfigError(`history.keepDays must be a whole number of days in 1..36500, or null to keep everything, got ${JSON.stringify(keepDays)}`);
  }
  const level = str('log.level', log.level, (s) => ['debug', 'info', 'warn', 'error'].includes(s), 'one of debug, info, warn, error');
  const abs = (p: string): string => (isAbsolute(p) ? p : resolve(baseDir, p));
  return {
    dataDir: abs(dataDir),
    objectDirs: (objectDirsRaw as string[]).map(abs),
    bootstrap: {
      coap: parseListen('bootstrap.coap', bs.coap),
      coaps: parseListen('bootstrap.coaps', bs.coaps),
      requestTimeoutSeconds: seconds('bootstrap.requestTimeoutSeconds', bs.requestTimeoutSeconds ?? 93),
      sessionTimeoutSeconds: seconds('bootstrap.sessionTimeoutSeconds', bs.sessionTimeoutSeconds ?? 300),
      x509: x509Config('bootstrap.x509', bs.x509, abs),
    },
    registration: {
      coap: parseListen('registration.coap', rs.coap),
      coaps: parseListen('registration.coaps', rs.coaps),
      publicUri: {
        coap: str('registration.publicUri.coap', pub.coap, (s) => /^coap:\/\/[^/\s]+/.test(s), 'a coap:// URI'),
        coaps: str('registration.publicUri.coaps', pub.coaps, (s) => /^coaps:\/\/[^/\s]+/.test(s), 'a coaps:// URI'),
      },
      requestTimeoutSeconds: seconds('registration.requestTimeoutSeconds', rs.requestTimeoutSeconds ?? 93),
      queueAwakeSeconds: seconds('registration.queueAwakeSeconds', rs.queueAwakeSeconds ?? 93),
      x509: x509Config('registration.x509', rs.x509, abs),
    },
    log: { level: level as LogLevel },
    admin: { listen: parseListen('admin.listen', admin.listen ?? null) },
    history: { keepDays },
  };
}

export interface LoadOptions {
  /** A user config file merged over the defaults. */
  file?: string;
  /** `--data DIR`: overrides dataDir. */
  dataDir?: string;
  /** Environment to read `LWBS_DATA_DIR` from (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Folder relative paths resolve against (default: the current directory). */
  cwd?: string;
}

export function loadConfig(opts: LoadOptions = {}): Config {
  const cwd = opts.cwd ?? process.cwd();
  let raw = readJson(join(packageRoot(), 'config', 'default.json'), 'default config');
  if (opts.file) raw = mergeJson(raw, readJson(resolve(cwd, opts.file), 'config file'));
  const envData = (opts.env ?? process.env).LWBS_DATA_DIR;
  if (envData) raw = mergeJson(raw, { dataDir: envData });
  if (opts.dataDir) raw = mergeJson(raw, { dataDir: opts.dataDir });
  return validateConfig(raw, cwd);
}

/** The X.509 files of one server, read and checked. */
export interface X509Material {
  /** Trust anchor certificates (DER), from all files in order. */
  readonly trustAnchors: readonly Buffer[];
  /** The configured chain (leaf first, DER) and key pair (SPKI DER, PKCS#8 DER); undefined: self-signed. */
  readonly own?: { readonly chain: readonly Buffer[]; readonly publicKey: Buffer; readonly privateKey: Buffer };
}

function readFileField(field: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (e) {
    throw new ConfigError(`${field}: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

/** A private key file: PEM (PKCS#8 or SEC1 "EC PRIVATE KEY") or DER. Errors never quote the file's bytes. */
function privateKeyOf(field: string, file: string, bytes: Buffer): KeyObject {
  const attempts: (() => KeyObject)[] = bytes.includes('-----BEGIN')
    ? [() => createPrivateKey({ key: bytes, format: 'pem' })]
    : [() => createPrivateKey({ key: bytes, format: 'der', type: 'pkcs8' }), () => createPrivateKey({ key: bytes, format: 'der', type: 'sec1' })];
  for (const attempt of attempts) {
    try {
      return attempt();
    } catch {
      // next form
    }
  }
  throw new ConfigError(`${field}: ${file} is not a private key (PEM, or PKCS#8 / SEC1 DER)`);
}

/**
 * Reads a server's X.509 files (`field` is `bootstrap.x509` or `registration.x509`): every trust
 * anchor file must hold at least one certificate; the own certificate's leaf must certify the
 * private key, a P-256 key. Throws ConfigError naming the field and the file.
 */
export function readX509Files(x509: X509Config, field: string): X509Material {
  const trustAnchors: Buffer[] = [];
  x509.trustAnchors.forEach((file, i) => {
    const f = `${field}.trustAnchors[${i}]`;
    try {
      trustAnchors.push(...parseCertificateFile(readFileField(f, file)));
    } catch (e) {
      if (e instanceof ConfigError) throw e;
      throw new ConfigError(`${f}: ${file}: ${(e as Error).message}`);
    }
  });
  if (x509.certificate === null || x509.privateKey === null) return { trustAnchors };
  let chain: Buffer[];
  try {
    chain = parseCertificateFile(readFileField(`${field}.certificate`, x509.certificate));
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    throw new ConfigError(`${field}.certificate: ${x509.certificate}: ${(e as Error).message}`);
  }
  const key = privateKeyOf(`${field}.privateKey`, x509.privateKey, readFileField(`${field}.privateKey`, x509.privateKey));
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new ConfigError(`${field}.privateKey: ${x509.privateKey} is not a P-256 (secp256r1) key, the only curve the DTLS suites use`);
  }
  // Compared as JWK coordinates: the same key in any point encoding.
  const jwk = createPublicKey(key).export({ format: 'jwk' });
  const leafJwk = new X509Certificate(chain[0]!).publicKey.export({ format: 'jwk' });
  if (leafJwk.crv !== jwk.crv || leafJwk.x !== jwk.x || leafJwk.y !== jwk.y) {
    throw new ConfigError(`${field}.certificate: the first certificate in ${x509.certificate} does not certify the key in ${field}.privateKey`);
  }
  return {
    trustAnchors,
    own: {
      chain,
      publicKey: createPublicKey({ key: jwk, format: 'jwk' }).export({ format: 'der', type: 'spki' }),
      privateKey: key.export({ format: 'der', type: 'pkcs8' }),
    },
  };
}
