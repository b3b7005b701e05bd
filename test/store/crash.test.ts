import { expect } from 'chai';
import Database from 'better-sqlite3';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DB_FILE } from '../../src/store/db.js';
import { open, removeDir, tempDir, TEST_KEY_HEX } from './support.js';

const CHILD = fileURLToPath(new URL('./fixtures/crash-child.js', import.meta.url));
const BATCH = 50;
const STORE_MODULE = fileURLToPath(new URL('../../src/store/index.js', import.meta.url));

interface ChildResult {
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the writer, kills it with SIGKILL `afterMs` after it reports its first commit. */
function runAndKill(dataDir: string, afterMs: number): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, STORE_MODULE, dataDir, String(BATCH)], {
      env: { ...process.env, LWBS_SECRET_KEY: TEST_KEY_HEX },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let timer: NodeJS.Timeout | undefined;
    const guard = setTimeout(() => child.kill('SIGKILL'), 8000); // never outlive the test
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      if (timer === undefined && stdout.includes('ready')) timer = setTimeout(() => child.kill('SIGKILL'), afterMs);
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('exit', (_code, signal) => {
      clearTimeout(guard);
      if (timer) clearTimeout(timer);
      resolve({ signal, stdout, stderr });
    });
  });
}

describe('store: crash consistency (kill -9 while writing)', function () {
  this.timeout(20_000);
  let dir: string;
  beforeEach(() => {
    dir = tempDir('lwbs-crash-');
  });
  afterEach(() => removeDir(dir));

  it('leaves a database that passes integrity_check with only complete rows and batches', async () => {
    const r = await runAndKill(dir, 200);
    expect(r.stderr).to.equal('');
    expect(r.stdout).to.include('ready');
    expect(r.signal, r.stdout).to.equal('SIGKILL');

    // Raw checks first (opening recovers the WAL).
    const raw = new Database(join(dir, DB_FILE));
    try {
      expect(raw.pragma('integrity_check', { simple: true })).to.equal('ok');
      expect(raw.pragma('foreign_key_check')).to.deep.equal([]);
    } finally {
      raw.close();
    }

    const store = await open(dir);
    try {
      const devices = await store.devices.list();
      const batches = new Map<number, number>();
      let singles = 0;
      for (const d of devices) {
        const ep = d.endpoint.toString();
        expect(d.profile).to.equal('crash');
        expect(d.auth.kind).to.equal('psk');
        const m = /^crash-b(\d+)-(\d+)$/.exec(ep);
        let b: number;
        let i: number;
        let identity: string;
        if (m) {
          b = Number(m[1]);
          i = Number(m[2]);
          identity = `crash-id-b${b}-${i}`;
          batches.set(b, (batches.get(b) ?? 0) + 1);
        } else {
          const s = /^single-(\d+)$/.exec(ep);
          expect(s, ep).to.not.equal(null);
          b = Number(s![1]);
          i = 99;
          identity = `single-id-${b}`;
          singles++;
        }
        // Every row complete: its identity is there and its sealed key decrypts to the right bytes.
        const found = await store.devices.findByPskIdentity(identity);
        expect(found?.device.endpoint.toString()).to.equal(ep);
        expect(found?.key).to.deep.equal(Buffer.alloc(16, (b * 7 + i) & 0xff));
      }
      // addMany is all or nothing even when killed mid-transaction; batches are contiguous.
      expect(batches.size).to.be.greaterThan(0);
      for (const [b, n] of batches) expect(n, `batch ${b}`).to.equal(BATCH);
      expect([...batches.keys()].sort((x, y) => x - y)).to.deep.equal([...Array(batches.size).keys()]);
      expect(singles).to.be.within(batches.size - 1, batches.size);
      // Every committed credential decrypts too.
      for (const d of devices.filter((x) => x.endpoint.toString().startsWith('single-'))) {
        for (const c of await store.credentials.listForDevice(d.endpoint)) {
          expect((await store.credentials.revealSecrets(c.id)).pskKey?.length).to.equal(16);
        }
      }
      // The session the killed process left running is recognised as interrupted.
      expect(await store.sessions.markInterrupted()).to.be.at.least(1);
      expect((await store.sessions.get('left-running'))?.failureCause).to.equal('interrupted');
    } finally {
      await store.close();
    }
  });
});
