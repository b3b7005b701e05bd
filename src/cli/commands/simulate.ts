/**
 * `lwbs simulate`: one simulated LwM2M device bootstraps from a running bootstrap server, then
 * registers with the LwM2M server it was given and stays registered (src/simulator/).
 *
 *   lwbs simulate --endpoint EP --bootstrap coap://127.0.0.1:5683 [--lwm2m 1.1] [--pct 112]
 *                 [--pack [--accept 112]] [--no-acl] [--json] [--show-secrets] [--timeout S]
 *                 [--no-register | [--lifetime S] [--queue] [--once]]
 *   lwbs simulate --endpoint EP --bootstrap coaps://127.0.0.1:5684 --psk-identity ID --psk-key HEX …
 *   lwbs simulate --endpoint EP --bootstrap coaps://127.0.0.1:5684 --rpk-key FILE [--server-public-key FILE] …
 *   lwbs simulate --endpoint EP --bootstrap coaps://127.0.0.1:5684 --x509-cert FILE --x509-key FILE [--server-cert FILE] …
 *
 * Over `coaps://` the device bootstraps over DTLS with its enrolled PSK (`--psk-identity` text or
 * `--psk-identity-hex`, `--psk-key` hex; the key is masked in the output like every secret) or
 * its raw public key (`--rpk-key`: a P-256 private key file, PKCS#8 or SEC1, PEM or DER; the
 * public key is derived from it; `--server-public-key`: the bootstrap server's public key, PEM
 * or DER SubjectPublicKeyInfo, checked in the handshake) or its X.509 certificate (`--x509-cert`:
 * the certificate or chain, leaf first, PEM or DER; `--x509-key`: its P-256 private key;
 * `--server-cert`: the bootstrap server's certificate, matched exactly in the handshake), and
 * registers over DTLS with the PSK, key pair or certificate it was handed (a `coaps://` account
 * in security mode PSK, RPK or certificate).
 *
 * After a successful bootstrap it prints the report, then Registers with the first server
 * account the device holds and prints the registration (server, location). It then stays
 * registered — Updates at lifetime/2, answers the server's device management (Read, Write,
 * Execute, Create, Delete, Discover, Write-Attributes, Observe), prints one line per event —
 * until SIGINT/SIGTERM, then De-registers and exits 0 (a second signal exits at once, 1).
 * `--once` De-registers and exits right after a successful Register; `--no-register` stops
 * after the bootstrap (the command's behaviour before registration existed).
 *
 * Exit 0 when the bootstrap succeeded and the device registered (or, without `--once`, when
 * its account uses a DTLS mode the simulator does not implement - certificates with EST: the
 * report says "registration: skipped"); 1 when the bootstrap or the Register failed (the report is printed
 * either way); 2 for usage errors. PSK keys and private keys are masked unless
 * `--show-secrets`. JSON: the report (`reportToJson` in src/simulator/report.ts) with a
 * `registration` member (`registrationToJson`), pretty-printed; while the device stays
 * registered, each later event follows as one compact JSON object per line (`eventToJson`).
 */
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import type { Command } from 'commander';
import { publicKeyOfPrivate } from '../../dtls/client-rpk.js';
import { resolveClientX509, splitDerCertificates } from '../../dtls/client-x509.js';
import { parseP256Spki } from '../../dtls/ecc.js';
import { hexToBytes } from '../../util/bytes.js';
import { DtlsNotSupportedError } from '../../simulator/registration.js';
import {
  eventToJson, eventToText, registrationToJson, registrationToText, reportToJson, reportToText,
  type BootstrapReport, type RegistrationReport, type RegistrationSkipped, type SimEvent,
} from '../../simulator/report.js';
import { SIM_LWM2M_VERSIONS, type SimLwM2MVersion } from '../../simulator/device-model.js';
import { DeviceSimulator } from '../../simulator/simulator.js';
import type { CliContext } from '../context.js';
import { UsageError, UserError } from '../errors.js';
import { derFromText, readDerFile, readInputBytes } from '../output.js';

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
  register: boolean;
  lifetime?: string;
  queue?: boolean;
  once?: boolean;
  pskIdentity?: string;
  pskIdentityHex?: string;
  pskKey?: string;
  rpkKey?: string;
  serverPublicKey?: string;
  x509Cert?: string;
  x509Key?: string;
  serverCert?: string;
}

function contentFormat(name: string, text: string): number {
  if (!/^[0-9]{1,5}$/.test(text) || Number(text) > 65535) throw new UsageError(`${name} must be a Content-Format number, got ${JSON.stringify(text)}`);
  return Number(text);
}

const HELP_AFTER = `
Registration (unless --no-register): after a successful bootstrap the device registers with
the first LwM2M server account it was given (coap://, or coaps:// over DTLS with the PSK, key
pair or certificate it was handed), prints the registration,
and stays registered: Updates at lifetime/2, answers the server's device management, and prints
one line per request, Update and notification. SIGINT/SIGTERM de-register and exit 0.

DTLS: --bootstrap coaps://host[:port] needs the device's bootstrap PSK: --psk-identity (text) or
--psk-identity-hex, and --psk-key (hex); or its raw public key: --rpk-key FILE (P-256 private
key, PKCS#8 or SEC1, PEM or DER; the public key is derived from it), optionally with
--server-public-key FILE (the bootstrap server's key, PEM or DER; the handshake fails when the
server presents another); or its certificate: --x509-cert FILE (the certificate, or the chain
leaf first, PEM or DER) and --x509-key FILE (its P-256 private key), optionally with
--server-cert FILE (the bootstrap server's certificate, PEM or DER, matched exactly; lwbs serve
keeps its own in the data directory as bootstrap-certificate.pem). Keys are never printed unless
--show-secrets.

Exit codes: 0 bootstrapped (and registered), 1 bootstrap or Register failed, 2 usage error.`;

interface BootstrapX509 {
  readonly certificate: Uint8Array[];
  readonly privateKey: Uint8Array;
  readonly serverCertificate?: Uint8Array;
}

/** A P-256 private key file (PKCS#8 or SEC1, PEM or DER) as PKCS#8 DER. UserError naming the file, never its bytes. */
function privateKeyFile(file: string): Uint8Array {
  const der = readDerFile(file, ['PRIVATE KEY', 'EC PRIVATE KEY']);
  try {
    // PKCS#8 first; a SEC1 "EC PRIVATE KEY" is converted.
    let key: KeyObject;
    try {
      key = createPrivateKey({ key: Buffer.from(der), format: 'der', type: 'pkcs8' });
    } catch {
      key = createPrivateKey({ key: Buffer.from(der), format: 'der', type: 'sec1' });
    }
    return key.export({ format: 'der', type: 'pkcs8' });
  } catch {
    throw new UserError(`${file}: not a private key (PKCS#8 or SEC1, PEM or DER)`);
  }
}

/** Every certificate of a file: all CERTIFICATE blocks of a PEM file (in order), or DER (one or several concatenated). */
function certificateFile(file: string): Uint8Array[] {
  const bytes = readInputBytes(file);
  const text = bytes.subarray(0, Math.min(bytes.length, 4096)).toString('latin1');
  let certs: Uint8Array[];
  if (text.includes('-----BEGIN')) {
    const blocks = bytes.toString('latin1').match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
    if (blocks.length === 0) throw new UserError(`${file}: no PEM "CERTIFICATE" block`);
    certs = blocks.map((b) => {
      const der = derFromText(b, ['CERTIFICATE'], false);
      if (typeof der === 'string') throw new UserError(`${file}: ${der}`);
      return der;
    });
  } else {
    try {
      certs = splitDerCertificates(bytes);
    } catch {
      throw new UserError(`${file}: not a certificate (PEM or DER)`);
    }
  }
  for (const c of certs) {
    try {
      void new X509Certificate(c); // throws when it does not parse
    } catch {
      throw new UserError(`${file}: not an X.509 certificate (PEM or DER)`);
    }
  }
  return certs;
}

/** `--x509-cert FILE --x509-key FILE [--server-cert FILE]`: checked here (parse, P-256, key belongs to the leaf); errors quote no key bytes. */
function x509Options(opts: SimulateOptions): BootstrapX509 {
  if (opts.x509Cert === undefined || opts.x509Key === undefined) throw new UsageError('--x509-cert and --x509-key go together');
  const certificate = certificateFile(opts.x509Cert);
  const privateKey = privateKeyFile(opts.x509Key);
  let serverCertificate: Uint8Array | undefined;
  if (opts.serverCert !== undefined) serverCertificate = certificateFile(opts.serverCert)[0];
  try {
    resolveClientX509({ certificate, privateKey, ...(serverCertificate ? { serverCertificate } : {}) });
  } catch (e) {
    throw new UserError(`${opts.x509Cert}, ${opts.x509Key}: ${e instanceof Error ? e.message : String(e)}`);
  }
  return { certificate, privateKey, ...(serverCertificate ? { serverCertificate } : {}) };
}

interface BootstrapRpk {
  readonly publicKey: Uint8Array;
  readonly privateKey: Uint8Array;
  readonly serverPublicKey?: Uint8Array;
}

/**
 * `--rpk-key FILE [--server-public-key FILE]`: the device's bootstrap key pair (the public key
 * derived from the private one). UserError naming the file, never its bytes, for keys that do
 * not parse or are not P-256.
 */
function rpkOptions(opts: SimulateOptions): BootstrapRpk {
  const file = opts.rpkKey!;
  const pkcs8 = privateKeyFile(file);
  let publicKey: Uint8Array;
  try {
    publicKey = publicKeyOfPrivate(pkcs8);
  } catch (e) {
    throw new UserError(`${file}: ${e instanceof Error ? e.message : String(e)}`);
  }
  let serverPublicKey: Uint8Array | undefined;
  if (opts.serverPublicKey !== undefined) {
    const spki = parseP256Spki(readDerFile(opts.serverPublicKey, ['PUBLIC KEY']));
    if (spki === undefined) throw new UserError(`${opts.serverPublicKey}: not a P-256 public key (SubjectPublicKeyInfo, PEM or DER)`);
    serverPublicKey = spki.spki;
  }
  return { publicKey, privateKey: pkcs8, ...(serverPublicKey ? { serverPublicKey } : {}) };
}

/**
 * The bootstrap DTLS credentials: `--psk-identity`/`--psk-identity-hex` and `--psk-key`
 * (required together), `--rpk-key` [`--server-public-key`], or `--x509-cert` and `--x509-key`
 * [`--server-cert`]; one of them for coaps://, none for coap://.
 */
function bootstrapCredentials(opts: SimulateOptions, coaps: boolean): { psk?: { identity: Uint8Array; key: Uint8Array }; rpk?: BootstrapRpk; x509?: BootstrapX509 } {
  const pskGiven = [
    opts.pskIdentity !== undefined ? '--psk-identity' : undefined,
    opts.pskIdentityHex !== undefined ? '--psk-identity-hex' : undefined,
    opts.pskKey !== undefined ? '--psk-key' : undefined,
  ].filter((x) => x !== undefined);
  const rpkGiven = [
    opts.rpkKey !== undefined ? '--rpk-key' : undefined,
    opts.serverPublicKey !== undefined ? '--server-public-key' : undefined,
  ].filter((x) => x !== undefined);
  const x509Given = [
    opts.x509Cert !== undefined ? '--x509-cert' : undefined,
    opts.x509Key !== undefined ? '--x509-key' : undefined,
    opts.serverCert !== undefined ? '--server-cert' : undefined,
  ].filter((x) => x !== undefined);
  if (!coaps) {
    const given = [...pskGiven, ...rpkGiven, ...x509Given];
    if (given.length > 0) throw new UsageError(`${given.join(', ')} go with a coaps:// --bootstrap URI`);
    return {};
  }
  const kinds = [
    pskGiven.length > 0 ? `PSK (${pskGiven.join(', ')})` : undefined,
    rpkGiven.length > 0 ? `raw public key (${rpkGiven.join(', ')})` : undefined,
    x509Given.length > 0 ? `certificate (${x509Given.join(', ')})` : undefined,
  ].filter((x) => x !== undefined);
  if (kinds.length > 1) throw new UsageError(`give ${kinds.join(' or ')} options, not both`);
  if (x509Given.length > 0) return { x509: x509Options(opts) };
  if (rpkGiven.length > 0) {
    if (opts.rpkKey === undefined) throw new UsageError('--server-public-key goes with --rpk-key');
    return { rpk: rpkOptions(opts) };
  }
  return { psk: pskOptions(opts) };
}

/** `--psk-identity`/`--psk-identity-hex` and `--psk-key` for a coaps:// bootstrap server. */
function pskOptions(opts: SimulateOptions): { identity: Uint8Array; key: Uint8Array } {
  if (opts.pskIdentity !== undefined && opts.pskIdentityHex !== undefined) throw new UsageError('give --psk-identity or --psk-identity-hex, not both');
  if ((opts.pskIdentity === undefined && opts.pskIdentityHex === undefined) || opts.pskKey === undefined) {
    throw new UsageError('--bootstrap coaps:// (DTLS) needs the device\'s bootstrap PSK: --psk-identity (or --psk-identity-hex) and --psk-key; or its raw public key: --rpk-key FILE; or its certificate: --x509-cert FILE --x509-key FILE');
  }
  let identity: Uint8Array;
  if (opts.pskIdentityHex !== undefined) {
    const b = hexToBytes(opts.pskIdentityHex);
    if (b === undefined || b.length === 0) throw new UsageError('--psk-identity-hex must be non-empty hex');
    identity = b;
  } else {
    identity = new TextEncoder().encode(opts.pskIdentity);
    if (identity.length === 0) throw new UsageError('--psk-identity must not be empty');
  }
  if (identity.length > 0xffff) throw new UsageError('the PSK identity is longer than 65535 bytes');
  const key = hexToBytes(opts.pskKey);
  // Never echo the key: it is a secret.
  if (key === undefined || key.length === 0 || key.length > 0xffff) throw new UsageError('--psk-key must be non-empty hex (the key is not shown)');
  return { identity, key };
}

export function registerSimulateCommand(program: Command, _ctx: CliContext): void {
  program
    .command('simulate')
    .description('simulate one LwM2M device: bootstrap from a bootstrap server, then register with the server it was given and stay registered')
    .requiredOption('--endpoint <ep>', 'endpoint client name sent as ep=')
    .requiredOption('--bootstrap <uri>', 'bootstrap server, coap://host[:port] or coaps://host[:port] (with --psk-identity and --psk-key, --rpk-key, or --x509-cert and --x509-key)')
    .option('--lwm2m <version>', `LwM2M version of the device (${SIM_LWM2M_VERSIONS.join(', ')})`, '1.1')
    .option('--pct <cf>', 'preferred content format sent as pct= (LwM2M 1.1+)')
    .option('--pack', 'use Bootstrap-Pack-Request (GET /bspack, LwM2M 1.2), falling back to Bootstrap-Request on failure')
    .option('--accept <cf>', 'Accept of the Bootstrap-Pack-Request: 112, 110 or 11544 (default 112)')
    .option('--no-acl', 'the device has no Access Control object (2)')
    .option('--json', 'machine-readable output')
    .option('--show-secrets', 'print PSK keys and private keys')
    .option('--timeout <s>', 'seconds to wait for a server (the /bs answer, then between its requests; each Register/Update/De-register)', '30')
    .option('--no-register', 'bootstrap only: print what the device got and exit')
    .option('--lifetime <s>', 'register with this lifetime (seconds) instead of the one written to /1/x/1')
    .option('--queue', 'register in queue mode (LwM2M 1.0: b=UQ; 1.1+: the Q flag)')
    .option('--once', 'de-register and exit right after a successful Register (for scripts)')
    .option('--psk-identity <id>', 'PSK identity for a coaps:// bootstrap server (text, sent as UTF-8)')
    .option('--psk-identity-hex <hex>', 'PSK identity for a coaps:// bootstrap server, as hex (binary identities)')
    .option('--psk-key <hex>', 'PSK key for a coaps:// bootstrap server, as hex')
    .option('--rpk-key <file>', "the device's P-256 private key for a coaps:// bootstrap server (raw public keys): PKCS#8 or SEC1, PEM or DER")
    .option('--server-public-key <file>', "with --rpk-key: the bootstrap server's public key (PEM or DER SubjectPublicKeyInfo), checked in the handshake")
    .option('--x509-cert <file>', "the device's certificate (or chain, leaf first) for a coaps:// bootstrap server: PEM or DER")
    .option('--x509-key <file>', "with --x509-cert: the certificate's P-256 private key, PKCS#8 or SEC1, PEM or DER")
    .option('--server-cert <file>', "with --x509-cert: the bootstrap server's certificate (PEM or DER), matched exactly in the handshake")
    .addHelpText('after', HELP_AFTER)
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
      if (url.protocol !== 'coap:' && url.protocol !== 'coaps:') throw new UsageError(`--bootstrap must be a coap:// or coaps:// URI, got ${JSON.stringify(opts.bootstrap)}`);
      const { psk: bootstrapPsk, rpk: bootstrapRpk, x509: bootstrapX509 } = bootstrapCredentials(opts, url.protocol === 'coaps:');
      if (opts.pack && version !== '1.2') throw new UsageError('--pack needs --lwm2m 1.2 (Bootstrap-Pack-Request is LwM2M 1.2)');
      if (opts.accept !== undefined && !opts.pack) throw new UsageError('--accept goes with --pack');
      const pct = opts.pct !== undefined ? contentFormat('--pct', opts.pct) : undefined;
      const accept = opts.accept !== undefined ? contentFormat('--accept', opts.accept) : undefined;
      if (!opts.register) {
        const extra = [opts.lifetime !== undefined ? '--lifetime' : undefined, opts.queue ? '--queue' : undefined, opts.once ? '--once' : undefined].filter((x) => x !== undefined);
        if (extra.length > 0) throw new UsageError(`${extra.join(', ')} cannot go with --no-register`);
      }
      let lifetime: number | undefined;
      if (opts.lifetime !== undefined) {
        if (!/^[0-9]{1,10}$/.test(opts.lifetime) || Number(opts.lifetime) > 0xffffffff) throw new UsageError(`--lifetime must be a number of seconds, got ${JSON.stringify(opts.lifetime)}`);
        lifetime = Number(opts.lifetime);
      }
      const reveal = opts.showSecrets === true;
      const timeoutMs = timeoutS * 1000;

      // Once the device is registered, every event is printed as it happens.
      let live = false;
      const printEvent = (e: SimEvent): void => {
        if (!live) return;
        if (opts.json) {
          const j = eventToJson(e, { revealSecrets: reveal });
          if (j) console.log(JSON.stringify(j));
        } else {
          const t = eventToText(e);
          if (t !== undefined) console.log(t);
        }
      };
      const sim = await DeviceSimulator.start({
        endpoint: opts.endpoint,
        lwm2mVersion: version,
        aclSupport: opts.acl,
        ...(pct !== undefined ? { pct } : {}),
        ...(bootstrapPsk ? { bootstrapPsk } : {}),
        ...(bootstrapRpk ? { bootstrapRpk } : {}),
        ...(bootstrapX509 ? { bootstrapX509 } : {}),
        // A handshake that cannot finish (a wrong key) is reported as such before the CoAP timeout.
        dtls: { handshakeTimeoutMs: Math.max(500, Math.floor(timeoutMs * 0.8)) },
        onEvent: printEvent,
      });
      const stop = new AbortController();
      let signals = 0;
      const onSignal = (): void => {
        signals++;
        if (signals > 1) process.exit(1);
        stop.abort();
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      const print = (report: BootstrapReport, registration?: RegistrationReport | RegistrationSkipped): void => {
        if (opts.json) {
          const j = reportToJson(report, { revealSecrets: reveal });
          if (registration) j['registration'] = registrationToJson(registration);
          console.log(JSON.stringify(j, null, 2));
        } else {
          for (const line of reportToText(report, { revealSecrets: reveal })) console.log(line);
          if (registration) console.log(registrationToText(registration));
        }
      };
      try {
        let report;
        try {
          report = opts.pack
            ? await sim.bootstrapPack(opts.bootstrap, { timeoutMs, signal: stop.signal, fallback: true, ...(accept !== undefined ? { accept } : {}) })
            : await sim.bootstrap(opts.bootstrap, { timeoutMs, signal: stop.signal });
        } catch (e) {
          // Misuse caught by the simulator (e.g. a host name that does not resolve).
          throw new UserError(e instanceof Error ? e.message : String(e));
        }
        if (report.outcome !== 'success' || !opts.register) {
          print(report);
          if (report.outcome !== 'success') {
            throw new UserError(`bootstrap of ${opts.endpoint} failed: ${report.outcome}${report.diagnostic ? ` (${report.diagnostic})` : ''}`);
          }
          return;
        }
        if (stop.signal.aborted) {
          print(report, { operation: 'register', outcome: 'skipped', diagnostic: 'interrupted' });
          return;
        }

        let registration: RegistrationReport;
        try {
          registration = await sim.register({ timeoutMs, ...(lifetime !== undefined ? { lifetime } : {}), ...(opts.queue ? { queueMode: true } : {}) });
        } catch (e) {
          const message = e instanceof Error ? e.message : String(e);
          print(report, { operation: 'register', outcome: 'skipped', diagnostic: message });
          // A device handed only coaps:// accounts got what a bootstrap can give; with --once the caller wanted a registration.
          if (e instanceof DtlsNotSupportedError && !opts.once) return;
          throw new UserError(`registration of ${opts.endpoint} failed: ${message}`);
        }
        print(report, registration);
        if (registration.outcome !== 'success') {
          throw new UserError(`registration of ${opts.endpoint} failed: ${registration.outcome}${registration.code ? ` (${registration.code})` : ''}${registration.diagnostic ? `: ${registration.diagnostic}` : ''}`);
        }
        if (opts.once) {
          const d = await sim.deregister({ timeoutMs });
          if (d) {
            if (opts.json) console.log(JSON.stringify({ event: 'registration', ...registrationToJson(d) }));
            else console.log(registrationToText(d));
          }
          if (!d || d.outcome !== 'success') throw new UserError(`de-registration of ${opts.endpoint} failed${d ? `: ${d.outcome}${d.code ? ` (${d.code})` : ''}` : ''}`);
          return;
        }
        live = true;
        if (!stop.signal.aborted) await new Promise<void>((resolve) => stop.signal.addEventListener('abort', () => resolve(), { once: true }));
        // SIGINT/SIGTERM: De-register (printed as an event) and exit 0 whatever the answer.
        await sim.deregister({ timeoutMs: Math.min(timeoutMs, 5000) });
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        await sim.close({ deregister: false });
      }
    });
}
