/**
 * `lwbs device credential add EP …`: enrolls a device *directly* with the registration server
 * (issue 4: "a device may register only if it is known — bootstrapped by lwbs or enrolled
 * directly"): a credential for this server that no bootstrap session produced, for devices that
 * ship with their LwM2M server account already in place (factory-provisioned, or moved from
 * another bootstrap server).
 *
 *   lwbs device credential add EP --ssid N --mode nosec
 *   lwbs device credential add EP --ssid N --mode psk --psk-identity ID --psk-key HEX
 *   lwbs device credential add EP --ssid N --mode rpk --public-key FILE
 *   lwbs device credential add EP --ssid N --mode x509 --certificate FILE
 *
 * The credential is active at once and, like a Register with a new credential, retires the
 * device's other credentials for the same Short Server ID. The server URI defaults to this
 * server's public `coap://` URI for nosec and `coaps://` URI otherwise (config
 * `registration.publicUri`); an rpk device must hold the registration server's public key
 * (`lwbs keys show`) as its /0/x/4. An x509 device's certificate (PEM or DER) must name the
 * endpoint in its subject CN or a subjectAltName (the registration server checks that at
 * Register) and chain to `registration.x509.trustAnchors` (checked in the handshake; a warning
 * when none are configured); the credential records the registration server's certificate
 * (configured, or the self-signed one in the data directory, made here if missing), which the
 * device must hold as its /0/x/5. The PSK key is never printed.
 */
import type { Command } from 'commander';
import { registrationCertificateSubject, serverCertificateFile } from '../../app.js';
import { certificateNamesEndpoint } from '../../bootstrap/admission.js';
import { generateServerKeyPair } from '../../bootstrap/credentials.js';
import { NO_X509, readX509Files, type Config } from '../../config/config.js';
import { loadOrCreateServerCertificate } from '../../dtls/x509-issue.js';
import { certificateNames } from '../../dtls/x509.js';
import type { SqliteStore } from '../../store/store.js';
import { REGISTRATION_SERVER_KEY } from '../../store/server-keys.js';
import type { NewCredential } from '../../store/types.js';
import { hexToBytes } from '../../util/bytes.js';
import type { CliContext } from '../context.js';
import { UsageError } from '../errors.js';
import { parseBytesArg, readDerFile, showBytes } from '../output.js';

interface AddOpts {
  ssid: string;
  mode: string;
  serverUri?: string;
  endpointHex?: boolean;
  pskIdentity?: string;
  pskIdentityHex?: string;
  pskKey?: string;
  publicKey?: string;
  certificate?: string;
  config?: string;
}

/** The registration server's certificate (leaf DER): the configured one, else the self-signed one in the data directory. */
async function registrationServerCertificate(store: SqliteStore, config: Config): Promise<Buffer> {
  const material = readX509Files(config.registration.x509 ?? NO_X509, 'registration.x509');
  if (material.own) return material.own.chain[0]!;
  const key = await store.serverKeys.getOrCreate(REGISTRATION_SERVER_KEY, generateServerKeyPair);
  const privateKey = (await store.serverKeys.revealPrivateKey(REGISTRATION_SERVER_KEY))!;
  const file = serverCertificateFile(config.dataDir, REGISTRATION_SERVER_KEY);
  return loadOrCreateServerCertificate({ file, publicKey: key.publicKey, privateKey, subject: registrationCertificateSubject(config) }).der;
}

export function registerCredentialCommands(program: Command, ctx: CliContext): void {
  const device = program.commands.find((c) => c.name() === 'device');
  if (!device) throw new Error('register the device command first');
  const credential = device.command('credential').description('credentials for the registration server, without a bootstrap (direct enrollment)');
  credential
    .command('add')
    .description('enroll a device directly with the registration server: an active credential, no bootstrap needed')
    .argument('<endpoint>', 'endpoint name (hex digits with --endpoint-hex); the device must be enrolled (`lwbs device add`)')
    .requiredOption('--ssid <n>', 'Short Server ID of the server account the device holds (1..65534)')
    .requiredOption('--mode <mode>', 'security mode: nosec, psk, rpk or x509')
    .option('--server-uri <uri>', 'the server URI the device holds (default: registration.publicUri for the mode)')
    .option('--endpoint-hex', 'ENDPOINT is given as hex digits')
    .option('--psk-identity <id>', 'psk: the identity (text)')
    .option('--psk-identity-hex <hex>', 'psk: the identity as hex digits')
    .option('--psk-key <hex>', 'psk: the key, as hex digits')
    .option('--public-key <file>', "rpk: the device's P-256 public key, PEM or DER SubjectPublicKeyInfo")
    .option('--certificate <file>', "x509: the device's certificate, PEM or DER (its CN or a subjectAltName must be the endpoint)")
    .option('-c, --config <file>', 'configuration file (for registration.publicUri)')
    .action(async (endpointArg: string, opts: AddOpts) => {
      const endpoint = parseBytesArg(endpointArg, opts.endpointHex === true, 'ENDPOINT');
      if (!/^[0-9]{1,5}$/.test(opts.ssid) || Number(opts.ssid) < 1 || Number(opts.ssid) > 65534) throw new UsageError(`--ssid must be 1..65534, got ${JSON.stringify(opts.ssid)}`);
      const shortServerId = Number(opts.ssid);
      const mode = opts.mode;
      if (mode !== 'nosec' && mode !== 'psk' && mode !== 'rpk' && mode !== 'x509') throw new UsageError(`--mode must be nosec, psk, rpk or x509, got ${JSON.stringify(mode)}`);
      const pskGiven = opts.pskIdentity !== undefined || opts.pskIdentityHex !== undefined || opts.pskKey !== undefined;
      if (mode !== 'psk' && pskGiven) throw new UsageError('--psk-* options go with --mode psk');
      if (mode !== 'rpk' && opts.publicKey !== undefined) throw new UsageError('--public-key goes with --mode rpk');
      if (mode !== 'x509' && opts.certificate !== undefined) throw new UsageError('--certificate goes with --mode x509');
      await ctx.withStore(async (store, config) => {
        const serverUri = opts.serverUri ?? (mode === 'nosec' ? config.registration.publicUri.coap : config.registration.publicUri.coaps);
        if (mode === 'nosec' ? !/^coap:\/\//.test(serverUri) : !/^coaps:\/\//.test(serverUri)) {
          throw new UsageError(`--server-uri must be a ${mode === 'nosec' ? 'coap' : 'coaps'}:// URI for --mode ${mode}, got ${JSON.stringify(serverUri)}`);
        }
        let input: NewCredential = { endpoint, shortServerId, serverUri, mode };
        if (mode === 'psk') {
          if ((opts.pskIdentity === undefined) === (opts.pskIdentityHex === undefined)) throw new UsageError('--mode psk needs --psk-identity or --psk-identity-hex');
          const identity = opts.pskIdentityHex !== undefined ? parseBytesArg(opts.pskIdentityHex, true, '--psk-identity-hex') : parseBytesArg(opts.pskIdentity!, false, '--psk-identity');
          const key = opts.pskKey === undefined ? undefined : hexToBytes(opts.pskKey);
          // Never echo the value: it is the secret.
          if (key === undefined || key.length === 0) throw new UsageError('--mode psk needs --psk-key as pairs of hex digits');
          input = { ...input, pskIdentity: identity, pskKey: key };
        } else if (mode === 'rpk') {
          if (opts.publicKey === undefined) throw new UsageError('--mode rpk needs --public-key FILE');
          const server = await store.serverKeys.getOrCreate(REGISTRATION_SERVER_KEY, generateServerKeyPair);
          input = { ...input, publicKey: readDerFile(opts.publicKey, ['PUBLIC KEY']), serverPublicKey: server.publicKey };
        } else if (mode === 'x509') {
          if (opts.certificate === undefined) throw new UsageError('--mode x509 needs --certificate FILE');
          const certificate = readDerFile(opts.certificate, ['CERTIFICATE']);
          let names;
          try {
            names = certificateNames(certificate);
          } catch {
            throw new UsageError(`${opts.certificate} is not an X.509 certificate`);
          }
          if (!certificateNamesEndpoint(certificate, endpoint)) {
            const shown = `CN ${names.cn === undefined ? '(none)' : JSON.stringify(names.cn)}, subjectAltName ${names.sans.length === 0 ? '(none)' : names.sans.map((n) => JSON.stringify(n)).join(', ')}`;
            throw new UsageError(`the certificate in ${opts.certificate} does not name ${showBytes(endpoint)} (${shown}): its CN or a subjectAltName must equal the endpoint, or the registration server refuses it`);
          }
          if ((config.registration.x509 ?? NO_X509).trustAnchors.length === 0) {
            console.error('lwbs: warning: registration.x509.trustAnchors is empty: the registration server accepts no X.509 client until a trust anchor the certificate chains to is configured');
          }
          input = { ...input, publicKey: certificate, serverPublicKey: await registrationServerCertificate(store, config) };
        }
        const pending = await store.credentials.addPending(input);
        const { retired } = await store.credentials.promote(pending.id);
        console.log(
          `enrolled ${showBytes(endpoint)} directly with ${serverUri} (SSID ${shortServerId}, ${mode}): credential ${pending.id} active` +
            (retired > 0 ? `, ${retired} older credential${retired === 1 ? '' : 's'} for SSID ${shortServerId} retired` : ''),
        );
      }, opts.config);
    });
}
