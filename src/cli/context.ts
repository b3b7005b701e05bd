/**
 * What every command shares: the global options (`--data`), the loaded configuration, and the
 * store opened on the configured data directory. Commands call `ctx.withStore(fn)` so the store
 * is always closed, even when the command fails.
 */
import type { Command } from 'commander';
import { loadConfig, type Config } from '../config/config.js';
import { openStore, type SqliteStore } from '../store/store.js';

export interface GlobalOptions {
  readonly data?: string;
}

export class CliContext {
  constructor(private readonly program: Command) {}

  get globals(): GlobalOptions {
    return this.program.opts<GlobalOptions>();
  }

  /** The configuration: defaults, then `file`, then the environment, then `--data`. */
  config(file?: string): Config {
    return loadConfig({ file, dataDir: this.globals.data });
  }

  /** Opens the store under the configured data directory, runs `fn`, and closes the store. */
  async withStore<T>(fn: (store: SqliteStore, config: Config) => Promise<T>, configFile?: string): Promise<T> {
    const config = this.config(configFile);
    const store = await openStore({ dataDir: config.dataDir });
    try {
      return await fn(store, config);
    } finally {
      await store.close();
    }
  }
}
