/**
 * `lwbs device read|write|execute|create|delete|discover|observe|cancel-observation|
 * write-attributes|trigger-update|trigger-bootstrap|values|observations|request`: device
 * management of registered devices, through the admin HTTP API of the running `lwbs serve`.
 *
 * The API address is the config's `admin.listen` (a wildcard host becomes 127.0.0.1), or
 * `--admin URL`; the bearer token is `<dataDir>/admin.token` (written by `lwbs serve`), or the
 * environment variable LWBS_ADMIN_TOKEN. A request waits up to `--wait` seconds (default 30) for
 * the device's answer; a queue-mode device that is asleep gets it when it next wakes up, and the
 * command prints the ticket ID to look it up later with `lwbs device request ID`.
 *
 * Exit codes: 0 for a 2.xx answer (and for a request still queued or on its way), 1 for a device
 * error (4.xx/5.xx), a failure (timeout, ...), an endpoint that is not registered, or no server;
 * 2 for a usage error (also when the server finds the path, value or attribute invalid).
 */
import type { Command } from 'commander';
import { AdminClient, AdminClientError, adminUrlFor, normalizeAdminUrl } from '../../admin/client.js';
import { ADMIN_TOKEN_ENV, AdminTokenError, readAdminToken } from '../../admin/token.js';
import { CodecError } from '../../lwm2m/errors.js';
import { loadObjectRegistry } from '../../lwm2m/ddf.js';
import { codecByNameOrNumber } from '../../lwm2m/formats/index.js';
import type { ModelLookup } from '../../lwm2m/model.js';
import { parsePath } from '../../lwm2m/path.js';
import type { DmRequest, DmResult, ObservationInfo, PathValue, ValueJson, WriteValue } from '../../registration/management/types.js';
import type { CliContext } from '../context.js';
import { UsageError, UserError } from '../errors.js';
import { parseBytesArg, printJson, printLines, shortTime, table } from '../output.js';

/** CoAP response codes by name (RFC 7252 §12.1.2, RFC 7959, RFC 8132). */
const CODE_NAMES: Readonly<Record<string, string>> = {
  '2.01': 'Created',
  '2.02': 'Deleted',
  '2.03': 'Valid',
  '2.04': 'Changed',
  '2.05': 'Content',
  '2.31': 'Continue',
  '4.00': 'Bad Request',
  '4.01': 'Unauthorized',
  '4.02': 'Bad Option',
  '4.03': 'Forbidden',
  '4.04': 'Not Found',
  '4.05': 'Method Not Allowed',
  '4.06': 'Not Acceptable',
  '4.08': 'Request Entity Incomplete',
  '4.09': 'Conflict',
  '4.12': 'Precondition Failed',
  '4.13': 'Request Entity Too Large',
  '4.15': 'Unsupported Content-Format',
  '4.22': 'Unprocessable Entity',
  '5.00': 'Internal Server Error',
  '5.01': 'Not Implemented',
  '5.02': 'Bad Gateway',
  '5.03': 'Service Unavailable',
  '5.04': 'Gateway Timeout',
  '5.05': 'Proxying Not Supported',
};

export function codeText(code: string): string {
  const name = CODE_NAMES[code];
  return name ? `${code} ${name}` : code;
}

const WAIT_MAX = 300;

const JSON_HELP = `
--json prints the request's result as the admin API returns it (README, "Admin API"):
  { "id", "op", "endpoint", "path", "state": "queued" | "sent" | "done" | "failed", "code", "success",
    "failure", "message", "contentFormat", "values": [ { "path", "type", "value" | "hex" } ], "links",
    "location", "submittedAt", "sentAt", "finishedAt" }   (times in ms since the epoch; absent fields left out)

The server is found through the config's admin.listen, or --admin URL; the token is DATA/admin.token
(created by \`lwbs serve\`) or ${ADMIN_TOKEN_ENV}. Exit codes: 0 on a 2.xx answer or a request still queued,
1 on a device error, a failure or an endpoint that is not registered, 2 on a usage error.`;

interface ConnOpts {
  readonly admin?: string;
  readonly config?: string;
  readonly endpointHex?: boolean;
  readonly json?: boolean;
}

interface OpOpts extends ConnOpts {
  readonly wait: string;
}

interface Connection {
  readonly client: AdminClient;
  readonly objectDirs: readonly string[];
}

function connect(ctx: CliContext, opts: ConnOpts): Connection {
  const config = ctx.config(opts.config);
  let url: string;
  if (opts.admin !== undefined) {
    const u = normalizeAdminUrl(opts.admin);
    if (u === undefined) throw new UsageError(`--admin must be an http:// URL such as http://127.0.0.1:5780, got ${JSON.stringify(opts.admin)}`);
    url = u;
  } else {
    if (config.admin.listen === null) throw new UserError('the admin API is disabled in the configuration (admin.listen is null); give --admin URL');
    url = adminUrlFor(config.admin.listen);
  }
  let token = process.env[ADMIN_TOKEN_ENV]?.trim();
  if (!token) {
    try {
      token = readAdminToken(config.dataDir);
    } catch (e) {
      if (e instanceof AdminTokenError) throw new UserError(e.message);
      throw e;
    }
  }
  return { client: new AdminClient(url, token), objectDirs: config.objectDirs };
}

/** Maps the client's errors to the CLI's: refused input → usage (2), everything else → failure (1). */
async function api<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (!(e instanceof AdminClientError)) throw e;
    if (e.kind !== 'http') throw new UserError(e.message);
    if (e.status === 400 && e.code === 'invalid') throw new UsageError(e.message);
    if (e.status === 401) throw new UserError(`the admin API refused the token (is the data directory the server's? set --data or ${ADMIN_TOKEN_ENV})`);
    if (e.status === 404 && e.code === 'not_registered') throw new UserError(e.message);
    if (e.status === 404 && e.code === 'unknown_request') throw new UserError(e.message);
    if (e.status === 503) throw new UserError(`the server is shutting down: ${e.message}`);
    throw new UserError(`admin API: ${e.status} ${e.code}: ${e.message}`);
  }
}

function endpointOf(arg: string, opts: ConnOpts): Uint8Array {
  return parseBytesArg(arg, opts.endpointHex === true, 'ENDPOINT');
}

function checkPath(text: string): string {
  try {
    parsePath(text);
  } catch (e) {
    if (e instanceof CodecError) throw new UsageError(`PATH: ${e.message}`);
    throw e;
  }
  return text;
}

function parseWait(text: string): number {
  const t = text.trim();
  if (!/^[0-9]+(\.[0-9]+)?$/.test(t) || Number(t) > WAIT_MAX) throw new UsageError(`--wait must be a number of seconds 0..${WAIT_MAX}, got ${JSON.stringify(text)}`);
  return Number(t);
}

function parseFormat(text: string, option: string): number {
  const t = text.trim().toLowerCase();
  if (t === '40' || t === 'link-format') return 40;
  const codec = codecByNameOrNumber(t);
  if (!codec) throw new UsageError(`${option}: unknown content format ${JSON.stringify(text)}; see \`lwbs formats\``);
  return codec.contentFormat;
}

const TYPES = ['string', 'integer', 'unsigned', 'float', 'boolean', 'opaque', 'time', 'objlnk', 'corelnk'] as const;

/** A VALUE argument: as text (the server converts it to the resource's type), or typed with `--type`. */
export function parseTypedValue(text: string, type: string | undefined): WriteValue {
  if (type === undefined) return text;
  switch (type) {
    case 'string':
    case 'corelnk':
    case 'objlnk':
      return { type, value: text };
    case 'integer':
    case 'unsigned':
    case 'time': {
      if (!/^-?[0-9]+$/.test(text.trim())) throw new UsageError(`VALUE must be an integer for --type ${type}, got ${JSON.stringify(text)}`);
      const n = Number(text);
      return { type, value: Number.isSafeInteger(n) ? n : text.trim() };
    }
    case 'float': {
      const n = Number(text);
      if (text.trim() === '' || !Number.isFinite(n)) throw new UsageError(`VALUE must be a number for --type float, got ${JSON.stringify(text)}`);
      return { type, value: n };
    }
    case 'boolean':
      if (/^(true|1)$/i.test(text)) return { type, value: true };
      if (/^(false|0)$/i.test(text)) return { type, value: false };
      throw new UsageError(`VALUE must be true or false for --type boolean, got ${JSON.stringify(text)}`);
    case 'opaque': {
      const hex = text.replace(/^0x/i, '').replace(/[\s:]/g, '');
      if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) throw new UsageError(`VALUE must be hex digits for --type opaque, got ${JSON.stringify(text)}`);
      return { type, hex: hex.toLowerCase() };
    }
    default:
      throw new UsageError(`--type must be one of ${TYPES.join(', ')}, got ${JSON.stringify(type)}`);
  }
}

/** `{"/1/0/1": 300, ...}`: paths to values (plain JSON values, or `{"type", "value"}` objects). */
export function parseValuesJson(text: string, what: string): Record<string, WriteValue> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`${what} is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new UsageError(`${what} must be a JSON object of paths to values, e.g. {"/1/0/1": 300}`);
  return Object.fromEntries(
    Object.entries(parsed as Record<string, unknown>).map(([k, v]): [string, WriteValue] => {
      if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return [k, v];
      if (typeof v === 'object' && v !== null && !Array.isArray(v) && typeof (v as { type?: unknown }).type === 'string') return [k, v as ValueJson];
      throw new UsageError(`${what}: the value of ${JSON.stringify(k)} must be a string, number, boolean or {"type", "value"} object`);
    }),
  );
}

/** `pmin=10 gt=3.5 pmax=` → `{pmin: "10", gt: "3.5", pmax: null}` (`name=` unsets, where allowed). */
export function parseAttributes(args: readonly string[], allowUnset: boolean): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  for (const a of args) {
    const m = /^([A-Za-z][A-Za-z0-9_-]*)=(.*)$/.exec(a);
    if (!m) throw new UsageError(`attributes are NAME=VALUE (e.g. pmin=10${allowUnset ? ', or pmin= to unset' : ''}), got ${JSON.stringify(a)}`);
    const [, name, value] = m as unknown as [string, string, string];
    if (value === '' && !allowUnset) throw new UsageError(`attribute ${name} needs a value`);
    if (name in out) throw new UsageError(`attribute ${name} given twice`);
    out[name] = value === '' ? null : value;
  }
  return out;
}

function valueText(v: ValueJson): string {
  return v.type === 'opaque' ? `0x${v.hex}` : String(v.value);
}

function resourceName(path: string, models: ModelLookup): string {
  const ids = path.split('/').slice(1).map(Number);
  if (ids.length < 3) return '';
  return models.resource(ids[0]!, ids[2]!)?.name ?? '';
}

/** `/3/0/0         Manufacturer                 string   Acme` (the look of `lwbs decode`). */
export function valueLines(values: readonly PathValue[], models: ModelLookup): string[] {
  return values.map((v) => `${v.path.padEnd(14)} ${resourceName(v.path, models).padEnd(28)} ${v.type.padEnd(8)} ${valueText(v)}`);
}

function pendingText(r: DmResult): string {
  const see = `see \`lwbs device request ${r.id}\``;
  return r.state === 'queued'
    ? `queued (id ${r.id}): the device is asleep or busy; it gets the request when it next wakes up; ${see}`
    : `sent (id ${r.id}): no answer yet; ${see}`;
}

/**
 * Prints a result (text or JSON) and throws UserError for a device error or a failure, so the
 * exit code is 1; a request still pending prints its ticket (exit 0).
 */
async function report(r: DmResult, json: boolean, objectDirs: readonly string[], endpointArg: string): Promise<void> {
  if (json) printJson(r);
  if (r.state === 'queued' || r.state === 'sent') {
    if (!json) console.log(pendingText(r));
    return;
  }
  if (r.state === 'failed') throw new UserError(`${r.op} ${r.path} failed: ${r.failure ?? 'unknown'}${r.message ? `: ${r.message}` : ''}${r.code ? ` (${codeText(r.code)})` : ''}`);
  if (r.success !== true) throw new UserError(`${r.op} ${r.path}: ${r.code ? codeText(r.code) : 'error'}${r.message ? `: ${r.message}` : ''}`);
  if (json) return;
  const out = [r.code ? codeText(r.code) : 'done'];
  if (r.location !== undefined) out[0] += ` ${r.location}`;
  if (r.values !== undefined && r.values.length > 0) out.push(...valueLines(r.values, await loadObjectRegistry([...objectDirs])));
  if (r.links !== undefined) out.push(...splitLinks(r.links));
  if (r.op === 'observe') out.push(`observing ${r.path}: notifications are kept as the latest values (\`lwbs device values ${endpointArg} ${r.path}\`)`);
  printLines(out);
}

/** Link-format text, one link per line (commas inside quoted values kept). */
export function splitLinks(links: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (const ch of links) {
    if (ch === '"') quoted = !quoted;
    if (ch === ',' && !quoted) {
      out.push(cur.trim());
      cur = '';
    } else cur += ch;
  }
  if (cur.trim() !== '') out.push(cur.trim());
  return out;
}

export function registerDeviceOpsCommands(program: Command, ctx: CliContext): void {
  const device = program.commands.find((c) => c.name() === 'device');
  if (!device) throw new Error('registerDeviceOpsCommands: call registerDeviceCommand first');

  /** Adds the options every operation shares, and the action that sends `build(...)`. */
  const op = <A extends unknown[], O extends OpOpts>(
    name: string,
    description: string,
    configure: (c: Command) => Command,
    build: (args: A, opts: O) => DmRequest,
  ): void => {
    const cmd = device.command(name).description(description);
    configure(cmd)
      .option('--endpoint-hex', 'ENDPOINT is given as hex digits')
      .option('--wait <seconds>', `wait this long for the answer (0..${WAIT_MAX}; 0 = just queue it)`, '30')
      .option('--admin <url>', 'the admin API (default: from the config, admin.listen)')
      .option('-c, --config <file>', 'config file merged over config/default.json (for admin.listen)')
      .option('--json', 'machine-readable output')
      .addHelpText('after', JSON_HELP)
      .action(async (...all: unknown[]) => {
        // commander passes the arguments, then the options, then the command
        const opts = all[all.length - 2] as O;
        const args = all.slice(0, -2) as A;
        const endpointArg = args[0] as string;
        const endpoint = endpointOf(endpointArg, opts);
        const wait = parseWait(opts.wait);
        const request = build(args, opts);
        const conn = connect(ctx, opts);
        const answer = await api(() => conn.client.submit(endpoint, request, wait));
        await report(answer.result, opts.json === true, conn.objectDirs, endpointArg);
      });
  };
  const ep = (c: Command): Command => c.argument('<endpoint>', 'endpoint name (hex digits with --endpoint-hex)');
  const epPath = (c: Command): Command => ep(c).argument('<path>', 'LwM2M path, e.g. /3/0 or /3/0/0');

  op<[string, string], OpOpts & { accept?: string }>(
    'read',
    'read an object, instance, resource or resource instance',
    (c) => epPath(c).option('--accept <format>', 'ask for this content format (number or name; default: the device picks)'),
    ([, path], o) => ({ op: 'read', path: checkPath(path), ...(o.accept !== undefined ? { accept: parseFormat(o.accept, '--accept') } : {}) }),
  );

  op<[string, string], OpOpts & { depth?: string }>(
    'discover',
    'list the objects, instances and resources below a path, with their attributes',
    (c) => epPath(c).option('--depth <n>', 'how deep to list, 0..3 (LwM2M 1.2 clients)'),
    ([, path], o) => {
      let depth: number | undefined;
      if (o.depth !== undefined) {
        if (!/^[0-3]$/.test(o.depth.trim())) throw new UsageError(`--depth must be 0..3, got ${JSON.stringify(o.depth)}`);
        depth = Number(o.depth);
      }
      return { op: 'discover', path: checkPath(path), ...(depth !== undefined ? { depth } : {}) };
    },
  );

  op<[string, string, string], OpOpts & { partial?: boolean; format?: string; type?: string }>(
    'write',
    'write a resource (VALUE), or several (VALUE a JSON object of paths to values); replaces, or updates with --partial',
    (c) =>
      epPath(c)
        .argument('<value>', 'a value for a resource path, or a JSON object {"/1/0/1": 300, ...} for an instance')
        .option('--partial', 'partial update (POST) instead of replace (PUT)')
        .option('--format <format>', 'send in this content format (number or name)')
        .option('--type <type>', `the value's type when the object model does not know the resource: ${TYPES.join(', ')}`),
    ([, path, value], o) => {
      const isJson = value.trimStart().startsWith('{');
      if (isJson && o.type !== undefined) throw new UsageError('--type is for a single VALUE, not a JSON object (give {"type", "value"} objects in it)');
      return {
        op: 'write',
        path: checkPath(path),
        ...(isJson ? { values: parseValuesJson(value, 'VALUE') } : { value: parseTypedValue(value, o.type) }),
        ...(o.partial ? { partial: true } : {}),
        ...(o.format !== undefined ? { format: parseFormat(o.format, '--format') } : {}),
      };
    },
  );

  op<[string, string, string | undefined], OpOpts>(
    'execute',
    'execute a resource (e.g. /3/0/4 reboot)',
    (c) => epPath(c).argument('[args]', "the argument list, as text (e.g. \"0='a',1\")"),
    ([, path, args]) => ({ op: 'execute', path: checkPath(path), ...(args !== undefined ? { args } : {}) }),
  );

  op<[string, string, string | undefined], OpOpts & { format?: string }>(
    'create',
    'create an object instance (PATH /o lets the device pick the ID, /o/i asks for one)',
    (c) =>
      epPath(c)
        .argument('[values]', 'a JSON object of the new instance\'s resources, keyed by path: {"/1/2/0": 2, "/1/2/1": 300}')
        .option('--format <format>', 'send in this content format (number or name)'),
    ([, path, values], o) => ({
      op: 'create',
      path: checkPath(path),
      ...(values !== undefined ? { values: parseValuesJson(values, 'VALUES') } : {}),
      ...(o.format !== undefined ? { format: parseFormat(o.format, '--format') } : {}),
    }),
  );

  op<[string, string], OpOpts>('delete', 'delete an object instance', epPath, ([, path]) => ({ op: 'delete', path: checkPath(path) }));

  op<[string, string, string[]], OpOpts>(
    'write-attributes',
    'set notification attributes (pmin=10 pmax=60 gt=3 lt=1 st=0.5 ...; NAME= unsets one)',
    (c) => epPath(c).argument('<attributes...>', 'NAME=VALUE, or NAME= to unset'),
    ([, path, attrs]) => ({ op: 'write-attributes', path: checkPath(path), attributes: parseAttributes(attrs, true) }),
  );

  op<[string, string, string[]], OpOpts & { accept?: string }>(
    'observe',
    "observe a path: the answer is the first value, later notifications are kept as the device's latest values",
    (c) =>
      epPath(c)
        .argument('[attributes...]', 'notification attributes NAME=VALUE sent with the request (pmin=10 ...)')
        .option('--accept <format>', 'ask for this content format (number or name)'),
    ([, path, attrs], o) => {
      const attributes = parseAttributes(attrs, false) as Record<string, string>;
      return {
        op: 'observe',
        path: checkPath(path),
        ...(o.accept !== undefined ? { accept: parseFormat(o.accept, '--accept') } : {}),
        ...(Object.keys(attributes).length > 0 ? { attributes } : {}),
      };
    },
  );

  op<[string, string], OpOpts>('cancel-observation', 'cancel an observation (and forget it)', epPath, ([, path]) => ({ op: 'cancel-observation', path: checkPath(path) }));

  op<[string], OpOpts>('trigger-update', 'Registration Update Trigger: the device sends an Update now (executes /1/x/8)', ep, () => ({ op: 'trigger-update' }));

  op<[string], OpOpts>('trigger-bootstrap', 'Bootstrap-Request Trigger: the device bootstraps again (executes /1/x/9, LwM2M 1.1+)', ep, () => ({ op: 'trigger-bootstrap' }));

  const conn = (c: Command): Command =>
    c
      .option('--admin <url>', 'the admin API (default: from the config, admin.listen)')
      .option('-c, --config <file>', 'config file merged over config/default.json (for admin.listen)')
      .option('--json', 'machine-readable output');

  conn(
    device
      .command('request')
      .description('look up a device-management request by its ID (as printed for a queued request)')
      .argument('<id>', 'the request ID'),
  )
    .addHelpText('after', JSON_HELP)
    .action(async (id: string, opts: ConnOpts) => {
      const c = connect(ctx, opts);
      const r = await api(() => c.client.ticket(id));
      await report(r, opts.json === true, c.objectDirs, r.endpoint);
    });

  conn(
    device
      .command('values')
      .description("the device's latest known values (from reads, observe answers and notifications)")
      .argument('<endpoint>', 'endpoint name (hex digits with --endpoint-hex)')
      .argument('[path]', 'only values at or below this path')
      .option('--endpoint-hex', 'ENDPOINT is given as hex digits'),
  )
    .addHelpText(
      'after',
      `
--json prints [ { "path", "type", "value" | "hex", "at" (ms since the epoch), "source": "read" | "notify" } ].`,
    )
    .action(async (endpointArg: string, path: string | undefined, opts: ConnOpts) => {
      const endpoint = endpointOf(endpointArg, opts);
      if (path !== undefined) checkPath(path);
      const c = connect(ctx, opts);
      const values = await api(() => c.client.values(endpoint, path));
      if (opts.json) return printJson(values);
      if (values.length === 0) return console.log(`no values known for ${endpointArg}${path !== undefined ? ` at ${path}` : ''}`);
      const models = await loadObjectRegistry([...c.objectDirs]);
      printLines(
        table(
          ['PATH', 'NAME', 'TYPE', 'AT', 'SOURCE', 'VALUE'],
          values.map((v) => [v.path, resourceName(v.path, models), v.type, shortTime(v.at), v.source, valueText(v)]),
        ),
      );
    });

  conn(
    device
      .command('observations')
      .description("the device's observations (kept per endpoint, re-established after a Register)")
      .argument('<endpoint>', 'endpoint name (hex digits with --endpoint-hex)')
      .option('--endpoint-hex', 'ENDPOINT is given as hex digits'),
  )
    .addHelpText(
      'after',
      `
--json prints [ { "path", "state": "active" | "pending", "registrationId", "contentFormat", "attributes",
    "createdAt", "notifications", "lastNotificationAt" } ] (times in ms since the epoch).`,
    )
    .action(async (endpointArg: string, opts: ConnOpts) => {
      const endpoint = endpointOf(endpointArg, opts);
      const c = connect(ctx, opts);
      const list = await api(() => c.client.observations(endpoint));
      if (opts.json) return printJson(list);
      if (list.length === 0) return console.log(`no observations for ${endpointArg}`);
      printLines(table(['PATH', 'STATE', 'FORMAT', 'ATTRIBUTES', 'NOTIFICATIONS', 'LAST', 'SINCE'], list.map(observationRow), [4]));
    });
}

function observationRow(o: ObservationInfo): string[] {
  const attrs = Object.entries(o.attributes)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  return [o.path, o.state, o.contentFormat === null ? '-' : String(o.contentFormat), attrs || '-', String(o.notifications), shortTime(o.lastNotificationAt), shortTime(o.createdAt)];
}
