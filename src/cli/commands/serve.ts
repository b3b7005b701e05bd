/**
 * `lwbs serve [--config FILE]`: runs the servers until SIGINT or SIGTERM, then shuts down
 * cleanly — running bootstrap sessions are ended and recorded as `shutdown`, the sockets and the
 * database are closed. A second signal while shutting down exits at once (the database stays
 * consistent: every write is a transaction, and the next start marks cut-off sessions).
 * Logs are JSON lines on standard error.
 */
import type { Command } from 'commander';
import { startApp } from '../../app.js';
import { createLogger } from '../../util/log.js';
import type { CliContext } from '../context.js';

export function registerServeCommand(program: Command, ctx: CliContext): void {
  program
    .command('serve')
    .description('start the bootstrap server and the registration server')
    .option('-c, --config <file>', 'config file merged over config/default.json')
    .action(async (opts: { config?: string }) => {
      const config = ctx.config(opts.config);
      const log = createLogger({ level: config.log.level });
      const app = await startApp(config, { log });
      await new Promise<void>((resolve) => {
        let stopping = false;
        const stop = (signal: NodeJS.Signals): void => {
          if (stopping) {
            log.warn('second signal: exiting without waiting', { signal });
            process.exit(1);
          }
          stopping = true;
          log.info('shutting down', { signal });
          app.close().then(resolve, (e: unknown) => {
            log.error('shutdown failed', { error: e instanceof Error ? e.message : String(e) });
            resolve();
          });
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
    });
}
