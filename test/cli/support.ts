/**
 * Spawning the real `lwbs` process for the admin-command tests. The main module is found relative
 * to this compiled file, so the tests run the same from dist/ and from any other output folder.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openStore, type OpenStoreOptions, type SqliteStore } from '../../src/store/store.js';
import { TEST_KEY_HEX } from '../store/support.js';

export { TEST_KEY_HEX };

export const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

export interface RunResult {
  readonly code: number | null;
  readonly out: string;
  readonly err: string;
}

/** A temp folder with a data directory; `run` spawns `lwbs --data <data> ...args`. */
export class CliSandbox {
  readonly dir: string;
  readonly data: string;

  constructor(prefix = 'lwbs-cli-') {
    this.dir = mkdtempSync(join(tmpdir(), prefix));
    this.data = join(this.dir, 'data');
  }

  run(args: readonly string[], options: { input?: string; env?: NodeJS.ProcessEnv } = {}): RunResult {
    const r = spawnSync(process.execPath, [MAIN, '--data', this.data, ...args], {
      encoding: 'utf8',
      timeout: 20_000,
      input: options.input ?? '',
      env: { ...process.env, LWBS_DATA_DIR: '', LWBS_SECRET_KEY: TEST_KEY_HEX, ...options.env },
    });
    if (r.error) throw r.error;
    return { code: r.status, out: r.stdout, err: r.stderr };
  }

  /** Runs and parses standard output as JSON, failing loudly with stderr when the exit code is not 0. */
  json<T>(args: readonly string[]): T {
    const r = this.run(args);
    if (r.code !== 0) throw new Error(`lwbs ${args.join(' ')} exited ${r.code}: ${r.err}`);
    return JSON.parse(r.out) as T;
  }

  /** Writes a file in the sandbox and returns its path. */
  file(name: string, content: string | Uint8Array): string {
    const path = join(this.dir, name);
    writeFileSync(path, content);
    return path;
  }

  /** The same store the CLI uses (same folder, same key). Close it before spawning. */
  open(extra: Partial<OpenStoreOptions> = {}): Promise<SqliteStore> {
    return openStore({ dataDir: this.data, env: { LWBS_SECRET_KEY: TEST_KEY_HEX }, ...extra });
  }

  async withStore<T>(fn: (store: SqliteStore) => Promise<T>, extra: Partial<OpenStoreOptions> = {}): Promise<T> {
    const store = await this.open(extra);
    try {
      return await fn(store);
    } finally {
      await store.close();
    }
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
