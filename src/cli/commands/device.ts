/**
 * `lwbs device ...`: enroll devices one by one (`add`) or in bulk from CSV (`import`, all or
 * nothing), list, show and remove them.
 *
 * A device has an endpoint name (text, or bytes given as hex), a profile, and the way it
 * authenticates to the bootstrap server: nothing (plain CoAP), a PSK identity and key, a raw
 * public key, or an X.509 certificate. Secrets (bootstrap PSK keys, and the per-server keys
 * `device show` lists) are masked unless `--show-secrets`.
 */
import type { Command } from 'commander';
import { StoreError } from '../../store/errors.js';
import { endpointBytes, fingerprint, normalizeSpki, parseCertificate, pskIdentityBytes, pskKeyBytes } from '../../store/material.js';
import type { SqliteStore } from '../../store/store.js';
import type { CredentialRecord, DeviceAuth, DeviceAuthInput, DeviceRecord, NewDevice } from '../../store/types.js';
import { certificateMatchesEndpoint, certificateNames } from '../../dtls/x509.js';
import { bytesAsText, hexToBytes } from '../../util/bytes.js';
import type { CliContext } from '../context.js';
import { CsvError, parseCsv, type CsvRecord } from '../csv.js';
import { UsageError, UserError } from '../errors.js';
import {
  JSON_CONVENTIONS,
  bytesJson,
  derFromText,
  field,
  hex,
  isoTime,
  note,
  parseBytesArg,
  parseLimit,
  plural,
  printJson,
  printLines,
  readDerFile,
  readInputText,
  secretHex,
  shortTime,
  showBytes,
  table,
} from '../output.js';
import { sessionJson, sessionRow, SESSION_HEADERS } from './sessions.js';

const JSON_HELP_DEVICE = `{ "endpoint": { "text"?, "hex" }, "profile", "enrolledBy": "cli" | "import" | "zero-touch",
    "createdAt", "auth": { "kind": "none" }
      | { "kind": "psk", "identity": { "text"?, "hex" } }
      | { "kind": "rpk", "publicKey": DER hex, "fingerprint" }
      | { "kind": "x509", "certificate": DER hex, "fingerprint", "subjectCn", "subjectAltNames": [] } }`;

const JSON_HELP_LIST = `
--json prints an array of devices, sorted by endpoint bytes:
  ${JSON_HELP_DEVICE}`;

const JSON_HELP_SHOW = `
--json prints one device
  ${JSON_HELP_DEVICE}
with, for a psk device, "auth.key" ("[secret]", or hex with --show-secrets), and
  "credentials": [ { "id", "shortServerId", "serverUri", "mode", "status": "pending" | "active" | "retired",
      "pskIdentity": { "text"?, "hex" } | null, "pskKey": "[secret]" | hex | null,
      "publicKey": DER hex | null, "privateKey": "[secret]" | hex | null, "serverPublicKey": DER hex | null,
      "createdAt", "activatedAt", "retiredAt", "sessionId" } ]   (newest first, retired included)
  "sessions": the device's last bootstrap sessions, as in \`lwbs sessions list --json\`.`;

const CSV_HELP = `
The CSV file (RFC 4180, UTF-8) needs a header row naming its columns, in any order:
  endpoint          the endpoint name (text)
  endpoint_hex      the endpoint name as hex, for binary names (instead of endpoint)
  profile           the profile name (may be empty when --profile gives a default)
  psk_identity      PSK identity the device uses with the bootstrap server (text)
  psk_identity_hex  the PSK identity as hex (instead of psk_identity)
  psk_key           the PSK, as hex (with psk_identity or psk_identity_hex)
  rpk_public_key    P-256 public key: PEM (in quotes, line breaks allowed) or base64 DER
  x509_cert         certificate: PEM (in quotes) or base64 DER
Only endpoint (or endpoint_hex) is required. A row uses at most one of psk_*, rpk_public_key
and x509_cert; a row with none bootstraps over plain CoAP. Spaces around values are ignored,
empty lines are skipped, quoted fields may hold commas, line breaks and "" for a quote, and a
byte order mark is ignored.

All or nothing: when any row is bad, every bad row is reported (line and column) and no device
is stored. Example:
  endpoint,profile,psk_identity,psk_key
  urn:imei:350000000000001,meters,dev-1,000102030405060708090a0b0c0d0e0f
  urn:imei:350000000000002,meters,,`;

interface AddOpts {
  readonly profile: string;
  readonly endpointHex?: boolean;
  readonly pskIdentity?: string;
  readonly pskIdentityHex?: string;
  readonly pskKey?: string;
  readonly rpkPublicKey?: string;
  readonly x509Cert?: string;
}

export function registerDeviceCommand(program: Command, ctx: CliContext): void {
  const device = program.command('device').description('devices: enrollment for bootstrap, and management of registered ones');

  device
    .command('add')
    .description('enroll one device (without credential options it bootstraps over plain CoAP)')
    .argument('<endpoint>', 'endpoint name (hex digits with --endpoint-hex)')
    .requiredOption('--profile <name>', 'the profile the device gets')
    .option('--endpoint-hex', 'ENDPOINT is given as hex digits (binary endpoint names)')
    .option('--psk-identity <id>', 'PSK identity for the bootstrap server (text)')
    .option('--psk-identity-hex <hex>', 'PSK identity as hex digits (binary identities)')
    .option('--psk-key <hex>', 'the PSK, as hex digits')
    .option('--rpk-public-key <file>', "the device's P-256 public key: PEM or DER SubjectPublicKeyInfo")
    .option('--x509-cert <file>', "the device's certificate: PEM or DER")
    .action(async (endpointArg: string, opts: AddOpts) => {
      const endpoint = parseBytesArg(endpointArg, opts.endpointHex === true, 'ENDPOINT');
      const auth = authFromOptions(opts);
      if (auth.kind === 'x509') {
        const problem = certificateNamingProblem(auth.certificate, endpoint);
        if (problem !== undefined) throw new UsageError(problem);
      }
      await ctx.withStore(async (store) => {
        const d = await store.devices.add({ endpoint, profile: opts.profile, auth });
        console.log(`enrolled device ${showBytes(d.endpoint)} with profile ${d.profile} (bootstrap auth: ${describeAuth(d.auth)})`);
      });
    });

  device
    .command('import')
    .description('enroll devices from a CSV file, all or nothing')
    .argument('<file>', 'CSV file ("-" for standard input)')
    .option('--profile <name>', 'profile for rows that name none')
    .option('--progress', 'show progress on stderr even when it is not a terminal')
    .option('--no-progress', 'never show progress')
    .addHelpText('after', CSV_HELP)
    .action(async (file: string, opts: { profile?: string; progress?: boolean }) => {
      const text = readInputText(file);
      let records: CsvRecord[];
      try {
        records = parseCsv(text);
      } catch (e) {
        if (e instanceof CsvError) throw new UserError(`${file}: ${e.message}; nothing imported`);
        throw e;
      }
      const showProgress = opts.progress ?? process.stderr.isTTY === true;
      await ctx.withStore(async (store) => {
        const rows = await checkCsv(store, records, opts.profile);
        if (rows.issues.length > 0) {
          for (const i of rows.issues) process.stderr.write(`${file}: ${i}\n`);
          const bad = new Set(rows.issueLines).size;
          throw new UserError(`${file}: ${plural(bad, 'bad row')} (${plural(rows.issues.length, 'problem')}); nothing imported`);
        }
        if (rows.devices.length === 0) return note(`${file}: no device rows; nothing to import`);
        const progress = showProgress ? new Progress(rows.devices.length, process.stderr.isTTY === true) : undefined;
        let count: number;
        try {
          count = await store.devices.addMany(rows.devices, {
            progressEvery: progress?.every ?? rows.devices.length,
            ...(progress ? { onProgress: (done: number, total: number) => progress.update(done, total) } : {}),
          });
        } catch (e) {
          progress?.abort();
          if (e instanceof StoreError && e.index !== undefined && rows.where[e.index]) {
            const w = rows.where[e.index]!;
            throw new UserError(`${file}: ${w.at(e.field)}: ${e.message}; nothing imported`);
          }
          throw e;
        }
        progress?.done();
        console.log(`imported ${plural(count, 'device')} from ${file}`);
      });
    });

  device
    .command('list')
    .description('list enrolled devices')
    .option('--profile <name>', 'only devices with this profile')
    .option('--limit <n>', 'at most N devices')
    .option('--json', 'machine-readable output')
    .addHelpText('after', `${JSON_HELP_LIST}\n${JSON_CONVENTIONS}`)
    .action(async (opts: { profile?: string; limit?: string; json?: boolean }) => {
      const limit = parseLimit(opts.limit);
      await ctx.withStore(async (store) => {
        const filter = opts.profile !== undefined ? { profile: opts.profile } : {};
        const devices = await store.devices.list({ ...filter, ...(limit !== undefined ? { limit } : {}) });
        if (opts.json) return printJson(devices.map((d) => deviceJson(d)));
        if (devices.length === 0) return console.log(opts.profile !== undefined ? `no devices with profile ${opts.profile}` : 'no devices');
        printLines(
          table(
            ['ENDPOINT', 'PROFILE', 'AUTH', 'ENROLLED', 'BY'],
            devices.map((d) => [showBytes(d.endpoint), d.profile, describeAuth(d.auth), shortTime(d.createdAt), d.enrolledBy]),
          ),
        );
        const total = await store.devices.count(filter);
        if (total > devices.length) console.log(`(${devices.length} of ${total} devices; use --limit to see more)`);
      });
    });

  device
    .command('show')
    .description('one device: its bootstrap auth, its credentials per server, its last sessions')
    .argument('<endpoint>', 'endpoint name (hex digits with --endpoint-hex)')
    .option('--endpoint-hex', 'ENDPOINT is given as hex digits')
    .option('--sessions <n>', 'how many recent sessions to show', '5')
    .option('--show-secrets', 'show PSK keys and private keys (hex) instead of [secret]')
    .option('--json', 'machine-readable output')
    .addHelpText('after', `${JSON_HELP_SHOW}\n${JSON_CONVENTIONS}`)
    .action(async (endpointArg: string, opts: { endpointHex?: boolean; sessions: string; showSecrets?: boolean; json?: boolean }) => {
      const endpoint = parseBytesArg(endpointArg, opts.endpointHex === true, 'ENDPOINT');
      const sessionLimit = parseLimit(opts.sessions, '--sessions')!;
      const reveal = opts.showSecrets === true;
      await ctx.withStore(async (store) => {
        const d = await store.devices.get(endpoint);
        if (!d) throw new UserError(`device ${showBytes(endpoint)} is not enrolled`);
        const bootstrapKey = d.auth.kind === 'psk' ? (reveal ? await store.devices.revealPskKey(endpoint) : null) : undefined;
        const creds = await store.credentials.listForDevice(endpoint, { includeRetired: true });
        const secrets = new Map<number, { pskKey: string | null; privateKey: string | null }>();
        for (const c of creds) {
          const s = reveal && (c.hasPskKey || c.hasPrivateKey) ? await store.credentials.revealSecrets(c.id) : undefined;
          secrets.set(c.id, {
            pskKey: c.hasPskKey ? secretHex(s?.pskKey ?? new Uint8Array(0), reveal) : null,
            privateKey: c.hasPrivateKey ? secretHex(s?.privateKey ?? new Uint8Array(0), reveal) : null,
          });
        }
        const sessions = await store.sessions.list({ endpoint, limit: sessionLimit });
        const bootstrapKeyText = bootstrapKey === undefined ? undefined : secretHex(bootstrapKey ?? new Uint8Array(0), reveal)!;
        if (opts.json) {
          const base = deviceJson(d);
          return printJson({
            ...base,
            auth: bootstrapKeyText === undefined ? base.auth : { ...base.auth, key: bootstrapKeyText },
            credentials: creds.map((c) => credentialJson(c, secrets.get(c.id)!)),
            sessions: sessions.map(sessionJson),
          });
        }
        const out = [`device ${showBytes(d.endpoint)}`];
        out.push(field('profile', d.profile));
        out.push(field('enrolled', `${shortTime(d.createdAt)} (by ${d.enrolledBy})`));
        out.push(field('bootstrap auth', describeAuth(d.auth, true) + (bootstrapKeyText !== undefined ? `, key ${bootstrapKeyText}` : '')));
        if (creds.length === 0) out.push('credentials: none yet (they are generated when the device bootstraps)');
        else {
          out.push(`credentials (${creds.length}, newest first):`);
          for (const c of creds) out.push(...describeCredential(c, secrets.get(c.id)!));
        }
        if (sessions.length === 0) out.push('sessions: none');
        else {
          out.push(`last sessions (${sessions.length}):`);
          out.push(...table(SESSION_HEADERS, sessions.map(sessionRow)).map((l) => `  ${l}`));
        }
        printLines(out);
      });
    });

  device
    .command('remove')
    .description('remove a device and its credentials (its session records are kept)')
    .argument('<endpoint>', 'endpoint name (hex digits with --endpoint-hex)')
    .option('--endpoint-hex', 'ENDPOINT is given as hex digits')
    .action(async (endpointArg: string, opts: { endpointHex?: boolean }) => {
      const endpoint = parseBytesArg(endpointArg, opts.endpointHex === true, 'ENDPOINT');
      await ctx.withStore(async (store) => {
        await store.devices.remove(endpoint);
        console.log(`removed device ${showBytes(endpoint)}`);
      });
    });
}

// ---------------------------------------------------------------------------------------------
// add

function authFromOptions(o: AddOpts): DeviceAuthInput {
  const psk = o.pskIdentity !== undefined || o.pskIdentityHex !== undefined || o.pskKey !== undefined;
  const kinds = [psk && '--psk-*', o.rpkPublicKey !== undefined && '--rpk-public-key', o.x509Cert !== undefined && '--x509-cert'].filter(
    (k): k is string => typeof k === 'string',
  );
  if (kinds.length > 1) throw new UsageError(`give one way of authenticating, not ${kinds.join(' and ')}`);
  if (psk) {
    if (o.pskIdentity !== undefined && o.pskIdentityHex !== undefined) throw new UsageError('give --psk-identity or --psk-identity-hex, not both');
    if (o.pskIdentity === undefined && o.pskIdentityHex === undefined) throw new UsageError('--psk-key needs --psk-identity (or --psk-identity-hex)');
    if (o.pskKey === undefined) throw new UsageError('--psk-identity needs --psk-key');
    const identity =
      o.pskIdentityHex !== undefined ? parseBytesArg(o.pskIdentityHex, true, '--psk-identity-hex') : parseBytesArg(o.pskIdentity!, false, '--psk-identity');
    const key = hexToBytes(o.pskKey);
    // Never echo the value: it is the secret.
    if (key === undefined || key.length === 0) throw new UsageError('--psk-key must be pairs of hex digits');
    return { kind: 'psk', identity, key };
  }
  if (o.rpkPublicKey !== undefined) return { kind: 'rpk', publicKey: readDerFile(o.rpkPublicKey, ['PUBLIC KEY']) };
  if (o.x509Cert !== undefined) return { kind: 'x509', certificate: readDerFile(o.x509Cert, ['CERTIFICATE']) };
  return { kind: 'none' };
}

/**
 * LwM2M: an X.509 device's certificate names its endpoint (CN or a subjectAltName), and bootstrap
 * admission refuses one that does not; undefined when it does, else why not (for the operator).
 */
function certificateNamingProblem(der: Uint8Array, endpoint: Uint8Array): string | undefined {
  const name = bytesAsText(endpoint);
  if (name !== undefined && certificateMatchesEndpoint(der, name)) return undefined;
  const n = certificateNames(der);
  const names = [...(n.cn !== undefined ? [`CN ${JSON.stringify(n.cn)}`] : []), ...n.sans.map((x) => `subjectAltName ${JSON.stringify(x)}`)];
  return `the certificate names ${names.length > 0 ? names.join(', ') : 'nothing'}, not the endpoint ${showBytes(endpoint)}: its CN or a subjectAltName must be the endpoint (LwM2M), or bootstrap refuses it`;
}

// ---------------------------------------------------------------------------------------------
// import

const COLUMNS = ['endpoint', 'endpoint_hex', 'profile', 'psk_identity', 'psk_identity_hex', 'psk_key', 'rpk_public_key', 'x509_cert'] as const;
type Column = (typeof COLUMNS)[number];

/** Where a row came from, to name a store error's field as a line and column. */
interface RowPlace {
  at(storeField?: string): string;
}

interface CheckedCsv {
  readonly devices: NewDevice[];
  /** Per device (same index): its place in the file. */
  readonly where: RowPlace[];
  readonly issues: string[];
  readonly issueLines: number[];
}

/**
 * Parses the records into devices and checks everything that can be checked before writing:
 * syntax of every cell, key material, profiles, duplicates within the file and against the
 * store. Collects every problem rather than stopping at the first.
 */
async function checkCsv(store: SqliteStore, records: readonly CsvRecord[], defaultProfile: string | undefined): Promise<CheckedCsv> {
  const issues: string[] = [];
  const issueLines: number[] = [];
  const devices: NewDevice[] = [];
  const where: RowPlace[] = [];
  const header = records[0];
  if (!header) {
    issues.push('the file is empty: it needs a header row (see `lwbs device import --help`)');
    return { devices, where, issues, issueLines: [1] };
  }
  const colIndex = new Map<Column, number>();
  header.fields.forEach((raw, i) => {
    const name = raw.trim().toLowerCase().replace(/[\s-]+/g, '_');
    const at = `line ${header.line}, column ${i + 1}`;
    if (!(COLUMNS as readonly string[]).includes(name)) {
      issues.push(`${at}: unknown column ${JSON.stringify(raw)}; the columns are ${COLUMNS.join(', ')}`);
      issueLines.push(header.line);
    } else if (colIndex.has(name as Column)) {
      issues.push(`${at}: column ${name} appears twice`);
      issueLines.push(header.line);
    } else colIndex.set(name as Column, i);
  });
  if (!colIndex.has('endpoint') && !colIndex.has('endpoint_hex')) {
    issues.push(`line ${header.line}: the header has no endpoint (or endpoint_hex) column`);
    issueLines.push(header.line);
  }
  if (issues.length > 0) return { devices, where, issues, issueLines };

  // Per-file uniqueness: value key → first line.
  const seen = { endpoint: new Map<string, number>(), psk: new Map<string, number>(), rpk: new Map<string, number>(), cert: new Map<string, number>() };
  const profiles = new Map<string, boolean>();

  for (const rec of records.slice(1)) {
    const line = rec.line;
    if (rec.fields.every((f) => f.trim() === '')) continue; // e.g. ",,," rows spreadsheets leave behind
    const place = (c: Column | undefined, label?: string): string =>
      c !== undefined && colIndex.has(c) ? `line ${line}, column ${colIndex.get(c)! + 1} (${c})` : `line ${line} (${label ?? c ?? 'row'})`;
    const problems: string[] = [];
    const bad = (c: Column | undefined, message: string, label?: string): undefined => {
      problems.push(`${place(c, label)}: ${message}`);
      return undefined;
    };
    if (rec.fields.length !== header.fields.length) {
      issues.push(`line ${line}: has ${plural(rec.fields.length, 'field')}, the header has ${header.fields.length}`);
      issueLines.push(line);
      continue;
    }
    const cell = (c: Column): string | undefined => {
      const i = colIndex.get(c);
      const v = i === undefined ? undefined : rec.fields[i]!.trim();
      return v === '' ? undefined : v;
    };
    const hexCell = (c: Column): Uint8Array | undefined => {
      const v = cell(c);
      if (v === undefined) return undefined;
      const b = hexToBytes(v);
      // psk_key is secret: never echo it.
      if (b === undefined || b.length === 0) return bad(c, c === 'psk_key' ? 'must be pairs of hex digits' : `must be pairs of hex digits, got ${JSON.stringify(v)}`);
      return b;
    };
    const storeCheck = <T>(c: Column, f: () => T): T | undefined => {
      try {
        return f();
      } catch (e) {
        if (e instanceof StoreError) return bad(c, e.message);
        throw e;
      }
    };

    // endpoint
    let endpoint: Uint8Array | undefined;
    const epCol: Column = cell('endpoint_hex') !== undefined ? 'endpoint_hex' : 'endpoint';
    if (cell('endpoint') !== undefined && cell('endpoint_hex') !== undefined) bad('endpoint_hex', 'give endpoint or endpoint_hex, not both');
    else if (epCol === 'endpoint_hex') endpoint = hexCell('endpoint_hex');
    else if (cell('endpoint') === undefined) bad(colIndex.has('endpoint') ? 'endpoint' : 'endpoint_hex', 'the endpoint is empty');
    else endpoint = new Uint8Array(Buffer.from(cell('endpoint')!, 'utf8'));
    if (endpoint) endpoint = storeCheck(epCol, () => endpointBytes(endpoint!, epCol));

    // profile
    const profileCol: Column | undefined = cell('profile') !== undefined ? 'profile' : undefined;
    const profile = cell('profile') ?? defaultProfile;
    if (profile === undefined) bad('profile', 'no profile: fill the column or give --profile', 'profile');
    else {
      if (!profiles.has(profile)) profiles.set(profile, (await store.profiles.get(profile)) !== undefined);
      if (!profiles.get(profile)) bad(profileCol, `profile ${JSON.stringify(profile)} does not exist`, profileCol ? undefined : 'profile from --profile');
    }

    // auth
    const hasPsk = cell('psk_identity') !== undefined || cell('psk_identity_hex') !== undefined || cell('psk_key') !== undefined;
    const used = [hasPsk && 'psk_*', cell('rpk_public_key') !== undefined && 'rpk_public_key', cell('x509_cert') !== undefined && 'x509_cert'].filter(
      (x): x is string => typeof x === 'string',
    );
    let auth: DeviceAuthInput = { kind: 'none' };
    const identityCol: Column = cell('psk_identity_hex') !== undefined ? 'psk_identity_hex' : 'psk_identity';
    if (used.length > 1) {
      bad(used[1] === 'x509_cert' ? 'x509_cert' : 'rpk_public_key', `a row uses one way of authenticating, not ${used.join(' and ')}`);
    } else if (hasPsk) {
      let identity: Uint8Array | undefined;
      if (cell('psk_identity') !== undefined && cell('psk_identity_hex') !== undefined) bad('psk_identity_hex', 'give psk_identity or psk_identity_hex, not both');
      else if (identityCol === 'psk_identity_hex') identity = hexCell('psk_identity_hex');
      else if (cell('psk_identity') !== undefined) identity = new Uint8Array(Buffer.from(cell('psk_identity')!, 'utf8'));
      else bad(colIndex.has('psk_identity') ? 'psk_identity' : 'psk_identity_hex', 'psk_key needs a PSK identity', 'psk_identity');
      if (identity) identity = storeCheck(identityCol, () => pskIdentityBytes(identity!, identityCol));
      let key: Uint8Array | undefined;
      if (cell('psk_key') === undefined) bad('psk_key', 'a PSK identity needs psk_key', 'psk_key');
      else key = hexCell('psk_key');
      if (key) key = storeCheck('psk_key', () => pskKeyBytes(key, 'psk_key'));
      if (identity && key) {
        auth = { kind: 'psk', identity, key };
        const k = hex(identity);
        const first = seen.psk.get(k);
        if (first !== undefined) bad(identityCol, `PSK identity ${JSON.stringify(showBytes(identity))} is also on line ${first}`);
        else {
          seen.psk.set(k, line);
          const other = await store.devices.findByPskIdentity(identity);
          if (other) bad(identityCol, `PSK identity ${JSON.stringify(showBytes(identity))} is already used by device ${showBytes(other.device.endpoint)}`);
        }
      }
    } else if (cell('rpk_public_key') !== undefined) {
      const der = derFromText(cell('rpk_public_key')!, ['PUBLIC KEY'], true);
      if (typeof der === 'string') bad('rpk_public_key', der);
      else {
        const spki = storeCheck('rpk_public_key', () => normalizeSpki(der, 'rpk_public_key'));
        if (spki) {
          auth = { kind: 'rpk', publicKey: spki };
          const k = hex(spki);
          const first = seen.rpk.get(k);
          if (first !== undefined) bad('rpk_public_key', `the same public key (${fingerprint(spki)}) is also on line ${first}`);
          else {
            seen.rpk.set(k, line);
            const other = await store.devices.findByRpk(spki);
            if (other) bad('rpk_public_key', `the public key (${fingerprint(spki)}) is already used by device ${showBytes(other.endpoint)}`);
          }
        }
      }
    } else if (cell('x509_cert') !== undefined) {
      const der = derFromText(cell('x509_cert')!, ['CERTIFICATE'], true);
      if (typeof der === 'string') bad('x509_cert', der);
      else {
        const cert = storeCheck('x509_cert', () => parseCertificate(der, 'x509_cert'));
        if (cert) {
          auth = { kind: 'x509', certificate: cert.der };
          const k = hex(cert.der);
          const first = seen.cert.get(k);
          if (first !== undefined) bad('x509_cert', `the same certificate (${fingerprint(cert.der)}) is also on line ${first}`);
          else {
            seen.cert.set(k, line);
            const other = await store.devices.findByCertificate(cert.der);
            if (other) bad('x509_cert', `the certificate (${fingerprint(cert.der)}) is already used by device ${showBytes(other.endpoint)}`);
          }
        }
      }
    }

    if (endpoint && auth?.kind === 'x509') {
      const problem = certificateNamingProblem(auth.certificate, endpoint);
      if (problem !== undefined) bad('x509_cert', problem);
    }

    if (endpoint) {
      const k = hex(endpoint);
      const first = seen.endpoint.get(k);
      if (first !== undefined) bad(epCol, `endpoint ${JSON.stringify(showBytes(endpoint))} is also on line ${first}`);
      else {
        seen.endpoint.set(k, line);
        if (await store.devices.get(endpoint)) bad(epCol, `device ${JSON.stringify(showBytes(endpoint))} is already enrolled`);
      }
    }

    if (problems.length > 0) {
      issues.push(...problems);
      for (let i = 0; i < problems.length; i++) issueLines.push(line);
      continue;
    }
    devices.push({ endpoint: endpoint!, profile: profile!, auth, enrolledBy: 'import' });
    const storeFieldColumn: Record<string, Column | undefined> = {
      endpoint: epCol,
      profile: profileCol,
      pskIdentity: identityCol,
      pskKey: 'psk_key',
      rpkPublicKey: 'rpk_public_key',
      x509Certificate: 'x509_cert',
    };
    where.push({ at: (f) => place(f === undefined ? undefined : storeFieldColumn[f], f) });
  }
  return { devices, where, issues, issueLines };
}

/** Progress of a bulk import on stderr: a bar redrawn in place on a terminal, else one line per update. */
class Progress {
  readonly every: number;
  #drawn = false;

  constructor(
    private readonly total: number,
    private readonly tty: boolean,
  ) {
    this.every = tty ? Math.max(1, Math.floor(total / 100)) : Math.max(1, Math.ceil(total / 10));
  }

  update(done: number, total: number): void {
    const pct = total === 0 ? 100 : Math.floor((done * 100) / total);
    if (this.tty) {
      const width = 30;
      const filled = Math.round((pct / 100) * width);
      process.stderr.write(`\rimporting [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(pct).padStart(3)}%  ${done}/${total}`);
      this.#drawn = true;
    } else {
      process.stderr.write(`importing: ${done}/${total} devices (${pct}%)\n`);
    }
  }

  done(): void {
    if (this.#drawn) process.stderr.write('\n');
    this.#drawn = false;
  }

  abort(): void {
    this.done();
    if (this.total > 0) note('import failed; nothing was stored');
  }
}

// ---------------------------------------------------------------------------------------------
// display

function describeAuth(a: DeviceAuth, long = false): string {
  switch (a.kind) {
    case 'none':
      return long ? 'none (plain CoAP)' : 'none';
    case 'psk':
      return `psk, identity ${JSON.stringify(showBytes(a.identity))}`;
    case 'rpk':
      return `rpk ${fingerprint(a.publicKey)}`;
    case 'x509': {
      const name = a.subjectCn !== null ? `CN=${a.subjectCn}` : fingerprint(a.certificate);
      if (!long) return `x509 ${name}`;
      const sans = a.subjectAltNames.length > 0 ? `, SAN ${a.subjectAltNames.join(', ')}` : '';
      return `x509 ${name}${sans}, ${fingerprint(a.certificate)}`;
    }
  }
}

function authJson(a: DeviceAuth): Record<string, unknown> {
  switch (a.kind) {
    case 'none':
      return { kind: 'none' };
    case 'psk':
      return { kind: 'psk', identity: bytesJson(a.identity) };
    case 'rpk':
      return { kind: 'rpk', publicKey: hex(a.publicKey), fingerprint: fingerprint(a.publicKey) };
    case 'x509':
      return {
        kind: 'x509',
        certificate: hex(a.certificate),
        fingerprint: fingerprint(a.certificate),
        subjectCn: a.subjectCn,
        subjectAltNames: [...a.subjectAltNames],
      };
  }
}

function deviceJson(d: DeviceRecord): { auth: Record<string, unknown> } & Record<string, unknown> {
  return { endpoint: bytesJson(d.endpoint), profile: d.profile, enrolledBy: d.enrolledBy, createdAt: isoTime(d.createdAt), auth: authJson(d.auth) };
}

function credentialJson(c: CredentialRecord, s: { pskKey: string | null; privateKey: string | null }): Record<string, unknown> {
  return {
    id: c.id,
    shortServerId: c.shortServerId,
    serverUri: c.serverUri,
    mode: c.mode,
    status: c.status,
    pskIdentity: c.pskIdentity ? bytesJson(c.pskIdentity) : null,
    pskKey: s.pskKey,
    publicKey: c.publicKey ? hex(c.publicKey) : null,
    privateKey: s.privateKey,
    serverPublicKey: c.serverPublicKey ? hex(c.serverPublicKey) : null,
    createdAt: isoTime(c.createdAt),
    activatedAt: isoTime(c.activatedAt),
    retiredAt: isoTime(c.retiredAt),
    sessionId: c.sessionId,
  };
}

function describeCredential(c: CredentialRecord, s: { pskKey: string | null; privateKey: string | null }): string[] {
  const out = [`  #${c.id}  SSID ${c.shortServerId}  ${c.status.padEnd(7)}  ${c.mode.padEnd(5)}  ${c.serverUri}`];
  const material: string[] = [];
  if (c.pskIdentity) material.push(`identity ${JSON.stringify(showBytes(c.pskIdentity))}`);
  if (s.pskKey !== null) material.push(`key ${s.pskKey}`);
  if (c.publicKey) material.push(`${c.mode === 'x509' ? 'certificate' : 'public key'} ${fingerprint(c.publicKey)}`);
  if (s.privateKey !== null) material.push(`private key ${s.privateKey}`);
  if (c.serverPublicKey) material.push(`server key ${fingerprint(c.serverPublicKey)}`);
  if (material.length > 0) out.push(`      ${material.join(', ')}`);
  const times = [`created ${shortTime(c.createdAt)}`];
  if (c.activatedAt !== null) times.push(`activated ${shortTime(c.activatedAt)}`);
  if (c.retiredAt !== null) times.push(`retired ${shortTime(c.retiredAt)}`);
  if (c.sessionId !== null) times.push(`session ${c.sessionId}`);
  out.push(`      ${times.join(', ')}`);
  return out;
}
