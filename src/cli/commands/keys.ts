/**
 * `lwbs keys`: the server's own key pairs (store.serverKeys).
 *
 *   lwbs keys show [NAME] [--json] [--show-secrets]   NAME defaults to `registration`; created on first use
 *   lwbs keys list [--json]
 *   lwbs keys rotate NAME --yes [--json]
 *
 * The public key is printed as SubjectPublicKeyInfo DER in hex (what an rpk hand-off writes into
 * the device's Security res 4) and as PEM, with its SHA-256 fingerprint. The private key is
 * printed only with `--show-secrets`.
 *
 * JSON shape of one key (show, list items, rotate):
 *   { "name", "algorithm" ("EC P-256"), "createdAt" (ISO 8601), "fingerprint" ("sha256:<64 hex>",
 *     SHA-256 of the SPKI DER), "publicKey": { "hex", "pem" },
 *     "privateKey": { "hex", "pem" } (show --show-secrets only) }
 * plus `"created": boolean` for show and `"previousFingerprint"` for rotate.
 */
import { createHash, createPrivateKey, createPublicKey } from 'node:crypto';
import type { Command } from 'commander';
import { generateServerKeyPair } from '../../bootstrap/credentials.js';
import { REGISTRATION_SERVER_KEY } from '../../store/server-keys.js';
import type { ServerKeyRecord } from '../../store/types.js';
import type { CliContext } from '../context.js';
import { UsageError, UserError } from '../errors.js';

/** A fresh P-256 pair in the form the store takes (the generator the session engine should pass too). */

/** `sha256:` and the SHA-256 of the SubjectPublicKeyInfo DER, in hex. */
export function publicKeyFingerprint(spki: Uint8Array): string {
  return `sha256:${createHash('sha256').update(spki).digest('hex')}`;
}

const CURVES: Readonly<Record<string, string>> = { prime256v1: 'P-256', secp384r1: 'P-384', secp521r1: 'P-521' };

function algorithm(spki: Buffer): string {
  const key = createPublicKey({ key: spki, format: 'der', type: 'spki' });
  const type = key.asymmetricKeyType ?? 'unknown';
  if (type !== 'ec') return type.toUpperCase();
  const curve = key.asymmetricKeyDetails?.namedCurve ?? '';
  return `EC ${CURVES[curve] ?? curve}`;
}

interface KeyJson {
  name: string;
  algorithm: string;
  createdAt: string;
  fingerprint: string;
  publicKey: { hex: string; pem: string };
  privateKey?: { hex: string; pem: string };
}

function keyJson(r: ServerKeyRecord, privateKey?: Buffer): KeyJson {
  const out: KeyJson = {
    name: r.name,
    algorithm: algorithm(r.publicKey),
    createdAt: new Date(r.createdAt).toISOString(),
    fingerprint: publicKeyFingerprint(r.publicKey),
    publicKey: { hex: r.publicKey.toString('hex'), pem: String(createPublicKey({ key: r.publicKey, format: 'der', type: 'spki' }).export({ format: 'pem', type: 'spki' })) },
  };
  if (privateKey) {
    out.privateKey = {
      hex: privateKey.toString('hex'),
      pem: String(createPrivateKey({ key: privateKey, format: 'der', type: 'pkcs8' }).export({ format: 'pem', type: 'pkcs8' })),
    };
  }
  return out;
}

function printKey(k: KeyJson): void {
  console.log(`server key pair ${JSON.stringify(k.name)}: ${k.algorithm}, created ${k.createdAt}`);
  console.log(`fingerprint  ${k.fingerprint}  (SHA-256 of the public key's SubjectPublicKeyInfo DER)`);
  console.log(`public key   ${k.publicKey.hex}`);
  process.stdout.write(k.publicKey.pem.endsWith('\n') ? k.publicKey.pem : `${k.publicKey.pem}\n`);
  if (k.privateKey) {
    console.log(`private key  ${k.privateKey.hex}  (PKCS#8 DER)`);
    process.stdout.write(k.privateKey.pem.endsWith('\n') ? k.privateKey.pem : `${k.privateKey.pem}\n`);
  }
}

export function registerKeysCommand(program: Command, ctx: CliContext): void {
  const keys = program.command('keys').description("the server's own key pairs (the registration server's public key goes to devices in rpk hand-offs)");

  keys
    .command('show')
    .description('show a server key pair, creating it on first use: public key as hex and PEM, SHA-256 fingerprint')
    .argument('[name]', 'key pair name', REGISTRATION_SERVER_KEY)
    .option('--json', 'machine-readable output')
    .option('--show-secrets', 'also print the private key (PKCS#8 DER hex and PEM)')
    .action(async (name: string, opts: { json?: boolean; showSecrets?: boolean }) => {
      await ctx.withStore(async (store) => {
        const record = await store.serverKeys.getOrCreate(name, generateServerKeyPair);
        const privateKey = opts.showSecrets ? await store.serverKeys.revealPrivateKey(name) : undefined;
        const k = keyJson(record, privateKey);
        if (record.created) console.error(`lwbs: created a new ${k.algorithm} key pair ${JSON.stringify(name)} in ${store.location}`);
        if (opts.json) console.log(JSON.stringify({ ...k, created: record.created }, null, 2));
        else printKey(k);
      });
    });

  keys
    .command('list')
    .description('list the server key pairs')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) => {
      await ctx.withStore(async (store) => {
        const all = (await store.serverKeys.list()).map((r) => keyJson(r));
        if (opts.json) return void console.log(JSON.stringify(all, null, 2));
        if (all.length === 0) return void console.log(`no server key pairs yet (\`lwbs keys show\` creates ${JSON.stringify(REGISTRATION_SERVER_KEY)})`);
        for (const k of all) console.log(`${k.name.padEnd(16)} ${k.algorithm.padEnd(9)} ${k.fingerprint}  created ${k.createdAt}`);
      });
    });

  keys
    .command('rotate')
    .description('replace a server key pair with a new one; devices bootstrapped with the old public key must be bootstrapped again')
    .argument('<name>', 'key pair name, e.g. registration')
    .option('--yes', 'confirm: devices holding the old public key will fail DTLS until bootstrapped again')
    .option('--json', 'machine-readable output')
    .action(async (name: string, opts: { yes?: boolean; json?: boolean }) => {
      if (!opts.yes) {
        throw new UsageError(
          `rotating ${JSON.stringify(name)} replaces its key pair, and devices bootstrapped with the old public key must be bootstrapped again; add --yes to confirm`,
        );
      }
      await ctx.withStore(async (store) => {
        const old = await store.serverKeys.get(name);
        if (!old) throw new UserError(`there is no server key pair named ${JSON.stringify(name)}; \`lwbs keys show ${name}\` creates one`);
        const record = await store.serverKeys.replace(name, generateServerKeyPair());
        const k = keyJson(record);
        const previousFingerprint = publicKeyFingerprint(old.publicKey);
        console.error(
          `lwbs: warning: replaced key pair ${JSON.stringify(name)} (old ${previousFingerprint}, new ${k.fingerprint}). ` +
            'Devices bootstrapped with the old key hold its public key in their Security object and will fail the DTLS handshake ' +
            'until they are bootstrapped again. Restart a running `lwbs serve` so it uses the new key.',
        );
        if (opts.json) console.log(JSON.stringify({ ...k, previousFingerprint }, null, 2));
        else printKey(k);
      });
    });
}
