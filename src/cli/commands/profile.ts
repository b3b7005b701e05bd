/**
 * `lwbs profile ...`: import, validate, list, show, export, history and delete bootstrap profiles.
 *
 * A profile is stored as its normalised JSON (`profileToJson` with secrets, defaults filled in),
 * so what `export --show-secrets` prints is exactly what the bootstrap server uses and re-imports
 * to an equal profile. Static secrets in a profile are masked in every output unless
 * `--show-secrets`.
 */
import type { Command } from 'commander';
import type { Secret } from '../../bootstrap/credentials.js';
import {
  ACL_OBJECT_LEVEL,
  ACL_OWNER_BOOTSTRAP,
  FORMAT_NAMES,
  formatRights,
  parseProfile,
  parseProfileText,
  profileToJson,
  profileWarnings,
  ProfileError,
  SERVER_RESOURCES,
  type Profile,
  type SecuritySpec,
  type ServerSpec,
} from '../../bootstrap/profile.js';
import { formatPath } from '../../lwm2m/path.js';
import { fingerprint } from '../../store/material.js';
import type { ProfileRecord } from '../../store/types.js';
import type { CliContext } from '../context.js';
import { UserError } from '../errors.js';
import { field, hex, isoTime, JSON_CONVENTIONS, note, plural, printJson, printLines, readInputText, SECRET_MASK, shortTime, showBytes, table } from '../output.js';

const JSON_HELP_LIST = `
--json prints an array of
  { "name", "version", "devices", "createdAt", "updatedAt",
    "match": [patterns] | null, "shortServerIds": [numbers] | null }
(match and shortServerIds are null when the stored document no longer parses).`;

const JSON_HELP_SHOW = `
--json prints
  { "name", "version", "devices", "createdAt", "updatedAt",
    "warnings": [strings], "profile": { the normalised profile document } }
Secrets in "profile" are "[secret]" unless --show-secrets.`;

const JSON_HELP_HISTORY = `
--json prints an array, oldest first, of
  { "name", "version", "change": "create" | "update" | "delete", "changedAt" }`;

interface ProfileOpts {
  readonly json?: boolean;
  readonly showSecrets?: boolean;
}

export function registerProfileCommand(program: Command, ctx: CliContext): void {
  const profile = program.command('profile').description('bootstrap profiles: which servers and credentials a device gets');

  profile
    .command('import')
    .description('validate a profile file and store it (creates it, or a new version of it)')
    .argument('<file>', 'profile JSON file ("-" for standard input)')
    .option('--name <name>', 'store it under this name (replaces "name" in the file)')
    .action(async (file: string, opts: { name?: string }) => {
      const p = loadProfile(file, opts.name);
      for (const w of profileWarnings(p)) note(`warning: ${w}`);
      const document = JSON.stringify(profileToJson(p, { revealSecrets: true }));
      await ctx.withStore(async (store) => {
        const r = await store.profiles.put(p.name, document);
        if (r.change === 'create') console.log(`created profile ${p.name} (version ${r.version})`);
        else if (r.change === 'update') console.log(`updated profile ${p.name} to version ${r.version}`);
        else console.log(`profile ${p.name} unchanged (version ${r.version})`);
      });
    });

  profile
    .command('validate')
    .description('check a profile file without storing it (every problem is listed with its field)')
    .argument('<file>', 'profile JSON file ("-" for standard input)')
    .action((file: string) => {
      const p = loadProfile(file);
      const warnings = profileWarnings(p);
      for (const w of warnings) note(`warning: ${w}`);
      console.log(`${file}: profile ${p.name} is valid${warnings.length > 0 ? ` (${plural(warnings.length, 'warning')})` : ''}`);
    });

  profile
    .command('list')
    .description('list the stored profiles')
    .option('--json', 'machine-readable output')
    .addHelpText('after', `${JSON_HELP_LIST}\n${JSON_CONVENTIONS}`)
    .action(async (opts: ProfileOpts) => {
      await ctx.withStore(async (store) => {
        const rows = await store.profiles.list();
        const parsed = rows.map((r) => ({ r, p: tryParse(r.document) }));
        if (opts.json) {
          return printJson(
            parsed.map(({ r, p }) => ({
              name: r.name,
              version: r.version,
              devices: r.devices,
              createdAt: isoTime(r.createdAt),
              updatedAt: isoTime(r.updatedAt),
              match: p ? [...p.match] : null,
              shortServerIds: p ? p.servers.map((s) => s.shortServerId) : null,
            })),
          );
        }
        if (rows.length === 0) return console.log('no profiles; add one with `lwbs profile import FILE`');
        printLines(
          table(
            ['NAME', 'VERSION', 'DEVICES', 'SERVERS', 'UPDATED', 'MATCH'],
            parsed.map(({ r, p }) => [
              r.name,
              String(r.version),
              String(r.devices),
              p ? p.servers.map((s) => (s.handOff ? `${s.shortServerId}*` : String(s.shortServerId))).join(',') : '?',
              shortTime(r.updatedAt),
              p ? p.match.join(' ') || '-' : '(stored document does not parse)',
            ]),
            [1, 2],
          ),
        );
      });
    });

  profile
    .command('show')
    .description('a readable summary of one profile (secrets masked)')
    .argument('<name>', 'profile name')
    .option('--json', 'machine-readable output')
    .option('--show-secrets', 'show static keys instead of [secret]')
    .addHelpText('after', `${JSON_HELP_SHOW}\n${JSON_CONVENTIONS}`)
    .action(async (name: string, opts: ProfileOpts) => {
      await ctx.withStore(async (store) => {
        const rec = await getProfile(store.profiles.get(name), name);
        const p = parseStored(rec);
        const devices = await store.devices.count({ profile: name });
        const reveal = opts.showSecrets === true;
        if (opts.json) {
          return printJson({
            name: rec.name,
            version: rec.version,
            devices,
            createdAt: isoTime(rec.createdAt),
            updatedAt: isoTime(rec.updatedAt),
            warnings: profileWarnings(p),
            profile: profileToJson(p, { revealSecrets: reveal }),
          });
        }
        printLines(describeProfile(p, rec, devices, reveal));
      });
    });

  profile
    .command('export')
    .description('print a profile as importable JSON (secrets masked unless --show-secrets)')
    .argument('<name>', 'profile name')
    .option('--show-secrets', 'include static keys, so the output can be imported again')
    .action(async (name: string, opts: ProfileOpts) => {
      await ctx.withStore(async (store) => {
        const p = parseStored(await getProfile(store.profiles.get(name), name));
        const reveal = opts.showSecrets === true;
        const out = profileToJson(p, { revealSecrets: reveal });
        printJson(out);
        if (!reveal && JSON.stringify(out) !== JSON.stringify(profileToJson(p, { revealSecrets: true }))) {
          note(`the profile's secrets are masked as "${SECRET_MASK}": this export cannot be imported again as is (export with --show-secrets for that)`);
        }
      });
    });

  profile
    .command('history')
    .description('every version of a profile: when it was created, changed and deleted')
    .argument('<name>', 'profile name')
    .option('--json', 'machine-readable output')
    .addHelpText('after', `${JSON_HELP_HISTORY}\n${JSON_CONVENTIONS}`)
    .action(async (name: string, opts: ProfileOpts) => {
      await ctx.withStore(async (store) => {
        const entries = await store.profiles.history(name);
        if (entries.length === 0) throw new UserError(`profile ${JSON.stringify(name)} was never stored`);
        if (opts.json) {
          return printJson(entries.map((e) => ({ name: e.name, version: e.version, change: e.change, changedAt: isoTime(e.changedAt) })));
        }
        printLines(
          table(
            ['VERSION', 'CHANGE', 'CHANGED', 'SUMMARY'],
            entries.map((e) => [String(e.version), e.change, shortTime(e.changedAt), e.change === 'delete' ? '' : summaryLine(tryParse(e.document))]),
            [0],
          ),
        );
      });
    });

  profile
    .command('delete')
    .description('delete a profile (refused while devices use it; its history is kept)')
    .argument('<name>', 'profile name')
    .action(async (name: string) => {
      await ctx.withStore(async (store) => {
        const version = await store.profiles.delete(name);
        console.log(`deleted profile ${name} (history version ${version})`);
      });
    });
}

// ---------------------------------------------------------------------------------------------

/** Reads and validates a profile file; every issue goes to stderr with its field, then exit 1. */
function loadProfile(file: string, name?: string): Profile {
  const text = readInputText(file);
  try {
    if (name === undefined) return parseProfileText(text);
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      return parseProfileText(text); // reports the syntax error the usual way
    }
    if (typeof json === 'object' && json !== null && !Array.isArray(json)) json = { ...json, name };
    return parseProfile(json);
  } catch (e) {
    if (!(e instanceof ProfileError)) throw e;
    for (const i of e.issues) process.stderr.write(`${file}: ${i.path}: ${i.message}\n`);
    throw new UserError(`${file}: invalid profile (${plural(e.issues.length, 'problem')}); nothing stored`);
  }
}

async function getProfile(p: Promise<ProfileRecord | undefined>, name: string): Promise<ProfileRecord> {
  const rec = await p;
  if (!rec) throw new UserError(`profile ${JSON.stringify(name)} does not exist (see \`lwbs profile list\`)`);
  return rec;
}

function parseStored(rec: ProfileRecord): Profile {
  try {
    return parseProfileText(rec.document);
  } catch (e) {
    if (e instanceof ProfileError) throw new UserError(`the stored profile ${rec.name} (version ${rec.version}) no longer validates: ${e.message}`);
    throw e;
  }
}

function tryParse(document: string): Profile | undefined {
  try {
    return parseProfileText(document);
  } catch {
    return undefined;
  }
}

function summaryLine(p: Profile | undefined): string {
  if (!p) return '(document does not parse)';
  const servers = p.servers.map((s) => `${s.shortServerId} ${s.handOff ? 'hand-off' : s.uri} ${s.security.mode}`).join('; ');
  return `servers: ${servers}${p.match.length > 0 ? `; match ${p.match.join(' ')}` : ''}`;
}

// ---------------------------------------------------------------------------------------------
// The readable summary

function formatName(p: Profile): string {
  if (p.contentFormat === 'auto') return 'auto (the client\'s pct, else TLV)';
  const name = Object.entries(FORMAT_NAMES).find(([, n]) => n === p.contentFormat)?.[0];
  return `${name} (${p.contentFormat})`;
}

const yesNo = (b: boolean): string => (b ? 'yes' : 'no');

function secret(s: Secret, reveal: boolean): string {
  return reveal ? hex(s.reveal()) : SECRET_MASK;
}

function describeSecurity(s: SecuritySpec, reveal: boolean): string {
  const parts: string[] = [s.mode];
  switch (s.mode) {
    case 'psk':
      if (s.generate) parts.push(`generated per device, identity template ${JSON.stringify(s.identityTemplate)}`);
      else parts.push(`identity ${JSON.stringify(showBytes(s.identity))}`, `key ${secret(s.key, reveal)}`);
      break;
    case 'rpk':
      if (s.generate) parts.push('key pair generated per device');
      else parts.push(`public key ${fingerprint(s.publicKey)}`, `private key ${secret(s.privateKey, reveal)}`);
      parts.push(s.serverPublicKey ? `server key ${fingerprint(s.serverPublicKey)}` : "server key: the registration server's own");
      break;
    case 'x509':
      parts.push(`certificate ${fingerprint(s.certificate)}`, `private key ${secret(s.privateKey, reveal)}`, `server certificate ${fingerprint(s.serverCertificate)}`);
      break;
    case 'nosec':
      break;
  }
  if (s.ciphersuites) parts.push(`cipher suites ${s.ciphersuites.join(', ')}`);
  if (s.sni !== undefined) parts.push(`SNI ${s.sni}`);
  if (s.matchingType !== undefined) parts.push(`matching type ${s.matchingType}`);
  if (s.certificateUsage !== undefined) parts.push(`certificate usage ${s.certificateUsage}`);
  return parts.join(', ');
}

function describeServer(s: ServerSpec, reveal: boolean): string[] {
  const out = [`  SSID ${s.shortServerId}: ${s.handOff ? "hand-off (this lwbs's registration server; URI from the config)" : s.uri}`];
  out.push(field('security', describeSecurity(s.security, reveal), 14, '    '));
  out.push(field('lifetime', `${s.lifetime} s`, 14, '    '));
  out.push(field('binding', s.binding, 14, '    '));
  out.push(field('storing', `notification storing ${s.notificationStoring ? 'on' : 'off'}`, 14, '    '));
  const extra = SERVER_RESOURCES.filter((d) => s[d.field] !== undefined).map((d) => `${d.field} ${String(s[d.field])}`);
  if (s.supportedServerVersions) extra.push(`supportedServerVersions ${s.supportedServerVersions.join(', ')}`);
  if (extra.length > 0) out.push(field('resources', extra.join(', '), 14, '    '));
  if (s.oscore) {
    const o = s.oscore;
    const parts = [`sender ID ${hex(o.senderId)}`, `recipient ID ${hex(o.recipientId)}`, `master secret ${secret(o.masterSecret, reveal)}`];
    if (o.aeadAlgorithm !== undefined) parts.push(`AEAD ${o.aeadAlgorithm}`);
    if (o.hmacAlgorithm !== undefined) parts.push(`HKDF ${o.hmacAlgorithm}`);
    if (o.masterSalt) parts.push(`salt ${hex(o.masterSalt)}`);
    if (o.idContext) parts.push(`ID context ${hex(o.idContext)}`);
    out.push(field('oscore', parts.join(', '), 14, '    '));
  }
  return out;
}

function describeProfile(p: Profile, rec: ProfileRecord, devices: number, reveal: boolean): string[] {
  const out: string[] = [`profile ${p.name}`];
  if (p.description) out.push(field('description', p.description));
  out.push(field('version', `${rec.version} (created ${shortTime(rec.createdAt)}, updated ${shortTime(rec.updatedAt)})`));
  out.push(field('devices', String(devices)));
  out.push(field('match', p.match.length > 0 ? p.match.join('  ') : '(none: only enrolled devices)'));
  if (p.match.length > 0) out.push(field('enroll security', p.enroll.allowSecurity.join(', ')));
  out.push(field('delete', p.delete.length > 0 ? p.delete.map(formatPath).join(', ') : '(nothing)'));
  out.push(field('content format', formatName(p)));
  out.push(field('LwM2M versions', p.lwm2mVersions.join(', ')));
  out.push(field('discover account', yesNo(p.discoverBootstrapAccount)));
  out.push(field('bootstrap read', yesNo(p.bootstrapRead)));
  if (p.bootstrapAccount) {
    const b = p.bootstrapAccount;
    const extra = [
      ...(b.clientHoldOffTime !== undefined ? [`client hold-off ${b.clientHoldOffTime} s`] : []),
      ...(b.accountTimeout !== undefined ? [`account timeout ${b.accountTimeout} s`] : []),
    ];
    out.push(field('bootstrap account', `${b.uri}, ${describeSecurity(b.security, reveal)}${extra.length > 0 ? `, ${extra.join(', ')}` : ''}`));
  }
  out.push(`servers (${p.servers.length}):`);
  for (const s of p.servers) out.push(...describeServer(s, reveal));
  if (p.acl.length > 0) {
    out.push(`access control (${p.acl.length}):`);
    for (const a of p.acl) {
      const target = a.instanceId === ACL_OBJECT_LEVEL ? `object ${a.objectId} (object level)` : `/${a.objectId}/${a.instanceId}`;
      const rights = [...a.rights].map(([ssid, m]) => `${ssid === 0 ? 'default' : ssid}=${formatRights(m) || '-'}`).join(' ');
      out.push(`  ${target}: owner ${a.owner === ACL_OWNER_BOOTSTRAP ? 'bootstrap server' : `SSID ${a.owner}`}; rights ${rights || '(none)'}`);
    }
  }
  const warnings = profileWarnings(p);
  if (warnings.length > 0) {
    out.push('warnings:');
    for (const w of warnings) out.push(`  - ${w}`);
  }
  return out;
}
