/**
 * `lwbs simulate`: one simulated LwM2M device bootstraps from a running bootstrap server and
 * prints what it was given (src/simulator/).
 *
 *   lwbs simulate --endpoint EP --bootstrap coap://127.0.0.1:5683 [--lwm2m 1.1] [--pct 112]
 *                 [--pack [--accept 112]] [--no-acl] [--json] [--show-secrets] [--timeout S]
 *
 * Exit 0 when the bootstrap succeeded (Finish answered 2.04, or the pack applied), 1 otherwise
 * (the report is printed either way), 2 for usage errors. PSK keys and private keys are masked
 * unless `--show-secrets`. JSON fields: see `reportToJson` in src/simulator/report.ts.
 */
import type { Command } from 'commander';
import { reportToJson, reportToText } from '../../simulator/report.js';
import { SIM_LWM2M_VERSIONS, type SimLwM2MVersion } from '../../simulator/device-model.js';
import { DeviceSimulator } from '../../simulator/simulator.js';
import type { CliContext } from '../context.js';
import { UsageError, UserError } from '../errors.js';

interface SimulateOptions {
  endpoint: string;
  bootstrap: string;
  lwm2m: string;
  pct?: string;
  pack?: boolean;
  accept?: string;
  acl: boolean;
  json?: boolean;
  showSecrets?: boolean;
  timeout: string;
}

function contentFormat(name: string, text: string): number {
  if (!/^[0-9]{1,5}$/.test(text) || Number(text) > 65535) throw new UsageError(`${name} must be a Content-Format number, got ${JSON.stringify(text)}`);
  return Number(text);
}

export function registerSimulateCommand(program: Command, _ctx: CliContext): void {
  program
    .command('simulate')
    .description('bootstrap one simulated LwM2M device from a bootstrap server and print what it got')
    .requiredOption('--endpoint <ep>', 'endpoint client name sent as ep=')
    .requiredOption('--bootstrap <uri>', 'bootstrap server, coap://host[:port]')
    .option('--lwm2m <version>', `LwM2M version of the device (${SIM_LWM2M_VERSIONS.join(', ')})`, '1.1')
    .option('--pct <cf>', 'preferred content format sent as pct= (LwM2M 1.1+)')
    .option('--pack', 'use Bootstrap-Pack-Request (GET /bspack, LwM2M 1.2), falling back to Bootstrap-Request on failure')
    .option('--accept <cf>', 'Accept of the Bootstrap-Pack-Request: 112, 110 or 11544 (default 112)')
    .option('--no-acl', 'the device has no Access Control object (2)')
    .option('--json', 'machine-readable output')
    .option('--show-secrets', 'print PSK keys and private keys')
    .option('--timeout <s>', 'seconds to wait for the server (the /bs answer, then between its requests)', '30')
    .action(async (opts: SimulateOptions) => {
      if (!(SIM_LWM2M_VERSIONS as readonly string[]).includes(opts.lwm2m)) {
        throw new UsageError(`--lwm2m must be one of ${SIM_LWM2M_VERSIONS.join(', ')}, got ${JSON.stringify(opts.lwm2m)}`);
      }
      const version = opts.lwm2m as SimLwM2MVersion;
      const timeoutS = Number(opts.timeout);
      if (!/^[0-9]+(\.[0-9]+)?$/.test(opts.timeout) || !(timeoutS > 0)) throw new UsageError(`--timeout must be a positive number of seconds, got ${JSON.stringify(opts.timeout)}`);
      if (opts.endpoint === '') throw new UsageError('--endpoint must not be empty');
      let url: URL;
      try {
        url = new URL(opts.bootstrap);
      } catch {
        throw new UsageError(`--bootstrap must be a URI like coap://127.0.0.1:5683, got ${JSON.stringify(opts.bootstrap)}`);
      }
      if (url.protocol === 'coaps:') throw new UsageError('--bootstrap: coaps:// (DTLS) is not supported by the simulator yet; use coap://');
      if (url.protocol !== 'coap:') throw new UsageError(`--bootstrap must be a coap:// URI, got ${JSON.stringify(opts.bootstrap)}`);
      if (opts.pack && version !== '1.2') throw new UsageError('--pack needs --lwm2m 1.2 (Bootstrap-Pack-Request is LwM2M 1.2)');
      if (opts.accept !== undefined && !opts.pack) throw new UsageError('--accept goes with --pack');
      const pct = opts.pct !== undefined ? contentFormat('--pct', opts.pct) : undefined;
      const accept = opts.accept !== undefined ? contentFormat('--accept', opts.accept) : undefined;

      const sim = await DeviceSimulator.start({
        endpoint: opts.endpoint,
        lwm2mVersion: version,
        aclSupport: opts.acl,
        ...(pct !== undefined ? { pct } : {}),
      });
      const stop = new AbortController();
      const onSignal = (): void => stop.abort();
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      try {
        const timeoutMs = timeoutS * 1000;
        let report;
        try {
          report = opts.pack
            ? await sim.bootstrapPack(opts.bootstrap, { timeoutMs, signal: stop.signal, fallback: true, ...(accept !== undefined ? { accept } : {}) })
            : await sim.bootstrap(opts.bootstrap, { timeoutMs, signal: stop.signal });
        } catch (e) {
          // Misuse caught by the simulator (e.g. a host name that does not resolve).
          throw new UserError(e instanceof Error ? e.message : String(e));
        }
        const reveal = opts.showSecrets === true;
        if (opts.json) console.log(JSON.stringify(reportToJson(report, { revealSecrets: reveal }), null, 2));
        else for (const line of reportToText(report, { revealSecrets: reveal })) console.log(line);
        if (report.outcome !== 'success') {
          throw new UserError(`bootstrap of ${opts.endpoint} failed: ${report.outcome}${report.diagnostic ? ` (${report.diagnostic})` : ''}`);
        }
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        await sim.close();
      }
    });
}
