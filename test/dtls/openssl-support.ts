/**
 * Shared helpers for the interop tests: the `openssl s_client -dtls1_2` runner, and a small test
 * PKI made with the openssl CLI (EC P-256 keys, a CA, certificates signed by it, an expired one).
 * CI installs openssl; a missing binary is a test failure, not a skip.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createPrivateKey, createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';

export const LOCAL = '127.0.0.1';

export function requireOpenssl(): void {
  const r = spawnSync('openssl', ['version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    expect.fail('openssl is not installed or not runnable: install it (Debian: apt-get install openssl) - CI installs it for these interop tests');
  }
}

export interface SClientRun {
  stdout: string;
  stderr: string;
  code: number | null;
}

export type ClientScript = (write: (s: string) => void, waitFor: (text: string) => Promise<void>, end: () => void) => Promise<void>;

/** Runs `command args`; `script(write, waitFor, end)` drives stdin; resolves when the process exits (killed after `limitMs`). */
export function runInteractive(command: string, args: string[], script: ClientScript, limitMs = 10000): Promise<SClientRun> {
  const p = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const waiters: { text: string; resolve: () => void }[] = [];
  p.stdout.on('data', (b: Buffer) => {
    stdout += b.toString();
    for (const w of waiters.filter((x) => stdout.includes(x.text))) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
  });
  p.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  p.stdin.on('error', () => { /* the process may exit before reading all of stdin */ });
  const killer = setTimeout(() => p.kill('SIGKILL'), limitMs);
  const exited = new Promise<SClientRun>((resolve) => p.on('close', (code) => {
    clearTimeout(killer);
    resolve({ stdout, stderr, code });
  }));
  const waitFor = (text: string): Promise<void> =>
    stdout.includes(text) ? Promise.resolve() : Promise.race([
      new Promise<void>((resolve) => waiters.push({ text, resolve })),
      exited.then(() => {
        if (!stdout.includes(text)) throw new Error(`${command} exited before printing ${JSON.stringify(text)}\nstdout:\n${stdout}\nstderr:\n${stderr}`);
      }),
    ]);
  return script((s) => p.stdin.write(s), waitFor, () => p.stdin.end()).then(
    () => exited,
    (err: unknown) => {
      p.kill('SIGKILL');
      throw err;
    },
  );
}

/** Runs `openssl s_client -dtls1_2 -connect 127.0.0.1:port …args`. */
export function sClient(port: number, args: string[], script: ClientScript, limitMs = 10000): Promise<SClientRun> {
  return runInteractive('openssl', ['s_client', '-dtls1_2', '-connect', `${LOCAL}:${port}`, ...args], script, limitMs);
}

// ---- a test PKI ------------------------------------------------------------------------------------

export interface TestCert {
  /** PEM files for command-line clients. */
  readonly certFile: string;
  readonly keyFile: string;
  readonly der: Buffer;
  readonly privateKey: KeyObject;
  /** SubjectPublicKeyInfo DER. */
  readonly spki: Buffer;
}

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

function load(dir: string, name: string): TestCert {
  const certFile = join(dir, `${name}.pem`);
  const keyFile = join(dir, `${name}.key`);
  const der = new X509Certificate(readFileSync(certFile)).raw;
  const privateKey = createPrivateKey(readFileSync(keyFile));
  return { certFile, keyFile, der, privateKey, spki: createPublicKey(privateKey).export({ format: 'der', type: 'spki' }) };
}

/** An EC key (`curve`, default P-256) in `<name>.key` (PKCS#8 PEM). */
function newKey(dir: string, name: string, curve = 'prime256v1'): void {
  openssl(dir, ['genpkey', '-algorithm', 'EC', '-pkeyopt', `ec_paramgen_curve:${curve}`, '-out', `${name}.key`]);
}

/** A self-signed CA certificate `<name>.pem` (basicConstraints CA:TRUE). */
export function makeCa(dir: string, name: string, cn: string): TestCert {
  newKey(dir, name);
  writeFileSync(join(dir, `${name}.cnf`), [
    '[req]', 'distinguished_name=dn', 'x509_extensions=e', '[dn]', '[e]',
    'basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign,cRLSign', 'subjectKeyIdentifier=hash', '',
  ].join('\n'));
  openssl(dir, ['req', '-x509', '-new', '-config', `${name}.cnf`, '-key', `${name}.key`, '-subj', `/CN=${cn}`, '-days', '30', '-sha256',
    '-out', `${name}.pem`]);
  return load(dir, name);
}

export interface IssueOptions {
  readonly cn: string;
  /** subjectAltName value, e.g. `URI:urn:imei:1,DNS:dev.example`. */
  readonly san?: string;
  /** Make it a CA (an intermediate). */
  readonly ca?: boolean;
  /** Validity as `openssl ca` dates (YYYYMMDDHHMMSSZ); default: now for 10 days. */
  readonly startDate?: string;
  readonly endDate?: string;
  readonly curve?: string;
  /** Leave out keyUsage (a non-CA certificate without it can pass OpenSSL's issuer check). */
  readonly noKeyUsage?: boolean;
}

/** A certificate `<name>.pem` for a new key `<name>.key`, issued by `issuer` (`openssl ca`, which takes explicit dates). */
export function issue(dir: string, name: string, issuer: string, o: IssueOptions): TestCert {
  newKey(dir, name, o.curve);
  openssl(dir, ['req', '-new', '-key', `${name}.key`, '-subj', `/CN=${o.cn}`, '-out', `${name}.csr`]);
  const db = join(dir, `db-${name}`);
  mkdirSync(db, { recursive: true });
  writeFileSync(join(db, 'index.txt'), '');
  writeFileSync(join(db, 'serial'), `${Math.floor(Math.random() * 0xffffff).toString(16).padStart(6, '0')}\n`);
  const ext = [
    o.ca ? 'basicConstraints=critical,CA:TRUE' : 'basicConstraints=CA:FALSE',
    ...(o.noKeyUsage ? [] : [o.ca ? 'keyUsage=critical,keyCertSign,cRLSign' : 'keyUsage=critical,digitalSignature']),
    'subjectKeyIdentifier=hash',
    'authorityKeyIdentifier=keyid',
    ...(o.san !== undefined ? [`subjectAltName=${o.san}`] : []),
  ];
  writeFileSync(join(dir, `${name}.cnf`), [
    '[ca]', 'default_ca=t', '[t]', `database=${db}/index.txt`, `new_certs_dir=${db}`, `serial=${db}/serial`, 'default_md=sha256',
    'policy=p', 'unique_subject=no', 'copy_extensions=none', 'x509_extensions=e', 'default_days=10', '[p]', 'commonName=supplied', '[e]', ...ext, '',
  ].join('\n'));
  const dates = [...(o.startDate ? ['-startdate', o.startDate] : []), ...(o.endDate ? ['-enddate', o.endDate] : [])];
  openssl(dir, ['ca', '-batch', '-notext', '-config', `${name}.cnf`, '-cert', `${issuer}.pem`, '-keyfile', `${issuer}.key`,
    '-in', `${name}.csr`, '-out', `${name}.pem`, ...dates]);
  return load(dir, name);
}

export const DEVICE_EP = 'urn:imei:490154203237518';

/** The certificates the X.509 tests use, all made by the openssl CLI in `dir`. */
export interface TestPki {
  readonly ca: TestCert;
  /** A second, unrelated CA and a device certificate from it. */
  readonly otherCa: TestCert;
  readonly otherDevice: TestCert;
  /** Issued by `ca`: the server (CN localhost), a device (CN and SAN URI = DEVICE_EP), an expired device. */
  readonly server: TestCert;
  readonly device: TestCert;
  readonly expired: TestCert;
  readonly notYetValid: TestCert;
  /** An intermediate CA under `ca` and a device under it; a non-CA certificate that issued another. */
  readonly intermediate: TestCert;
  readonly deviceViaIntermediate: TestCert;
  readonly notCa: TestCert;
  readonly deviceViaNotCa: TestCert;
  /** A device with a P-384 key. */
  readonly p384Device: TestCert;
}

export function buildTestPki(dir: string): TestPki {
  const ca = makeCa(dir, 'ca', 'lwbs test CA');
  const otherCa = makeCa(dir, 'other-ca', 'some other CA');
  const fmt = (d: Date): string => `${d.toISOString().replace(/[-:T]/g, '').slice(0, 14)}Z`;
  const year = 365 * 24 * 3600_000;
  return {
    ca,
    otherCa,
    otherDevice: issue(dir, 'other-device', 'other-ca', { cn: DEVICE_EP }),
    server: issue(dir, 'server', 'ca', { cn: 'localhost', san: 'DNS:localhost,IP:127.0.0.1' }),
    device: issue(dir, 'device', 'ca', { cn: DEVICE_EP, san: `URI:${DEVICE_EP},DNS:dev.example,IP:192.0.2.7,email:ops@dev.example` }),
    expired: issue(dir, 'expired', 'ca', { cn: DEVICE_EP, startDate: '20200101000000Z', endDate: '20210101000000Z' }),
    notYetValid: issue(dir, 'not-yet-valid', 'ca', { cn: DEVICE_EP, startDate: fmt(new Date(Date.now() + year)), endDate: fmt(new Date(Date.now() + 2 * year)) }),
    intermediate: issue(dir, 'intermediate', 'ca', { cn: 'lwbs test intermediate', ca: true }),
    deviceViaIntermediate: issue(dir, 'device-i', 'intermediate', { cn: 'urn:dev:via-intermediate' }),
    notCa: issue(dir, 'not-ca', 'ca', { cn: 'not a CA', noKeyUsage: true }),
    deviceViaNotCa: issue(dir, 'device-n', 'not-ca', { cn: 'urn:dev:via-not-ca' }),
    p384Device: issue(dir, 'p384', 'ca', { cn: 'urn:dev:p384', curve: 'secp384r1' }),
  };
}
