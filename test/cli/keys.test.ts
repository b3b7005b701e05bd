/**
 * `lwbs keys` as a user runs it: a real process on a temp data folder, real exit codes and output.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { createHash, createPrivateKey, createPublicKey } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openStore } from '../../src/store/store.js';
import { TEST_KEY_HEX as KEY_HEX } from '../store/support.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

interface KeyJson {
  name: string;
  algorithm: string;
  createdAt: string;
  fingerprint: string;
  publicKey: { hex: string; pem: string };
  privateKey?: { hex: string; pem: string };
  created?: boolean;
  previousFingerprint?: string;
}

describe('cli: lwbs keys', function () {
  this.timeout(60_000);
  let dir: string;
  let data: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'lwbs-cli-keys-'));
    data = join(dir, 'data');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  function lwbs(...args: string[]): { code: number | null; out: string; err: string } {
    const r = spawnSync(process.execPath, [MAIN, '--data', data, ...args], {
      encoding: 'utf8',
      timeout: 20_000,
      env: { ...process.env, LWBS_DATA_DIR: '', LWBS_SECRET_KEY: KEY_HEX },
    });
    return { code: r.status, out: r.stdout, err: r.stderr };
  }

  /** The stored private key, read with the store API (hex), to check it never shows by default. */
  async function storedPrivateKeyHex(name: string): Promise<string> {
    const store = await openStore({ dataDir: data, env: { LWBS_SECRET_KEY: KEY_HEX } });
    try {
      const k = await store.serverKeys.revealPrivateKey(name);
      expect(k, `private key of ${name}`).to.not.equal(undefined);
      return k!.toString('hex');
    } finally {
      await store.close();
    }
  }

  const sha256 = (hex: string): string => `sha256:${createHash('sha256').update(Buffer.from(hex, 'hex')).digest('hex')}`;
  const pemToSpkiHex = (pem: string): string => createPublicKey(pem).export({ format: 'der', type: 'spki' }).toString('hex');

  let first: KeyJson;

  it('show creates the registration pair on first use and says so; JSON has hex, PEM, fingerprint, no private key', async () => {
    const r = lwbs('keys', 'show', '--json');
    expect(r.code, r.err).to.equal(0);
    expect(r.err).to.match(/created a new EC P-256 key pair "registration"/);
    first = JSON.parse(r.out) as KeyJson;
    expect(first.name).to.equal('registration');
    expect(first.created).to.equal(true);
    expect(first.algorithm).to.equal('EC P-256');
    expect(Number.isNaN(Date.parse(first.createdAt))).to.equal(false);
    expect(first.publicKey.hex).to.match(/^[0-9a-f]{182}$/); // 91-byte P-256 SubjectPublicKeyInfo
    expect(pemToSpkiHex(first.publicKey.pem)).to.equal(first.publicKey.hex);
    expect(first.fingerprint).to.equal(sha256(first.publicKey.hex));
    expect(first).to.not.have.property('privateKey');
    const priv = await storedPrivateKeyHex('registration');
    expect(r.out).to.not.include(priv);
    expect(r.err).to.not.include(priv);
  });

  it('show again (text) shows the same pair without creating one, and no private key', async () => {
    const r = lwbs('keys', 'show');
    expect(r.code, r.err).to.equal(0);
    expect(r.err).to.equal('');
    expect(r.out).to.include(first.fingerprint);
    expect(r.out).to.include(first.publicKey.hex);
    expect(r.out).to.include(first.publicKey.pem.trim());
    expect(r.out).to.not.include('PRIVATE KEY');
    expect(r.out).to.not.include(await storedPrivateKeyHex('registration'));
  });

  it('show --show-secrets reveals the private key, which belongs to the public key', async () => {
    const r = lwbs('keys', 'show', 'registration', '--show-secrets', '--json');
    expect(r.code, r.err).to.equal(0);
    const k = JSON.parse(r.out) as KeyJson;
    expect(k.created).to.equal(false);
    expect(k.privateKey?.hex).to.equal(await storedPrivateKeyHex('registration'));
    const priv = createPrivateKey(k.privateKey!.pem);
    expect(priv.export({ format: 'der', type: 'pkcs8' }).toString('hex')).to.equal(k.privateKey!.hex);
    expect(createPublicKey(priv).export({ format: 'der', type: 'spki' }).toString('hex')).to.equal(first.publicKey.hex);
    const t = lwbs('keys', 'show', '--show-secrets');
    expect(t.code).to.equal(0);
    expect(t.out).to.include(k.privateKey!.hex);
    expect(t.out).to.include('-----BEGIN PRIVATE KEY-----');
  });

  it('show NAME creates another pair; list shows both by name, without secrets', async () => {
    const r = lwbs('keys', 'show', 'bootstrap', '--json');
    expect(r.code, r.err).to.equal(0);
    const other = JSON.parse(r.out) as KeyJson;
    expect(other.created).to.equal(true);
    expect(other.fingerprint).to.not.equal(first.fingerprint);
    const l = lwbs('keys', 'list', '--json');
    expect(l.code, l.err).to.equal(0);
    const list = JSON.parse(l.out) as KeyJson[];
    expect(list.map((k) => [k.name, k.fingerprint])).to.deep.equal([
      ['bootstrap', other.fingerprint],
      ['registration', first.fingerprint],
    ]);
    expect(l.out).to.not.include(await storedPrivateKeyHex('registration'));
    const text = lwbs('keys', 'list');
    expect(text.code).to.equal(0);
    expect(text.out.trim().split('\n').map((line) => line.split(/\s+/)[0])).to.deep.equal(['bootstrap', 'registration']);
  });

  it('rotate without --yes is a usage error (exit 2) and changes nothing', () => {
    const r = lwbs('keys', 'rotate', 'registration');
    expect(r.code).to.equal(2);
    expect(r.err).to.match(/--yes/);
    expect(r.err).to.match(/bootstrapped again/);
    const s = lwbs('keys', 'show', '--json');
    expect((JSON.parse(s.out) as KeyJson).fingerprint).to.equal(first.fingerprint);
  });

  it('rotate NAME --yes replaces the pair and warns that devices must be re-bootstrapped', async () => {
    const before = await storedPrivateKeyHex('registration');
    const r = lwbs('keys', 'rotate', 'registration', '--yes', '--json');
    expect(r.code, r.err).to.equal(0);
    expect(r.err).to.match(/warning/);
    expect(r.err).to.match(/bootstrapped again/);
    expect(r.err).to.include(first.fingerprint);
    const k = JSON.parse(r.out) as KeyJson;
    expect(k.previousFingerprint).to.equal(first.fingerprint);
    expect(k.fingerprint).to.not.equal(first.fingerprint);
    expect(k.fingerprint).to.equal(sha256(k.publicKey.hex));
    expect(k).to.not.have.property('privateKey');
    const after = await storedPrivateKeyHex('registration');
    expect(after).to.not.equal(before);
    expect(r.out + r.err).to.not.include(after);
    const s = lwbs('keys', 'show', '--json');
    expect(JSON.parse(s.out) as KeyJson).to.include({ fingerprint: k.fingerprint, created: false });
  });

  it('rotate of an unknown pair fails (exit 1); bad names and arguments are refused', () => {
    const r = lwbs('keys', 'rotate', 'nope', '--yes');
    expect(r.code).to.equal(1);
    expect(r.err).to.match(/no server key pair named "nope"/);
    expect(lwbs('keys', 'rotate').code).to.equal(2);
    const bad = lwbs('keys', 'show', ' padded');
    expect(bad.code).to.equal(1);
    expect(bad.err).to.match(/surrounding spaces/);
    const l = lwbs('keys', 'list', '--json');
    expect((JSON.parse(l.out) as KeyJson[]).map((k) => k.name)).to.deep.equal(['bootstrap', 'registration']);
  });
});
