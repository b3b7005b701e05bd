/**
 * `lwbs sessions ...`: the recorded bootstrap sessions — who, from where, with which security and
 * format, every request sent and its answer, how the session ended and why. Payloads are never
 * recorded (they carry keys), only their sizes.
 */
import type { Command } from 'commander';
import { linkFormatCodec } from '../../lwm2m/linkformat.js';
import { findCodec } from '../../lwm2m/formats/index.js';
import type { SessionOutcome, SessionRecord, SessionRequestRecord } from '../../store/types.js';
import type { CliContext } from '../context.js';
import { UsageError, UserError } from '../errors.js';
import { bytesJson, field, formatDuration, isoTime, JSON_CONVENTIONS, parseBytesArg, parseLimit, printJson, printLines, shortTime, showBytes, table } from '../output.js';

const OUTCOMES: readonly SessionOutcome[] = ['running', 'success', 'failure', 'cancelled'];

const JSON_SESSION = `{ "id", "endpoint": { "text"?, "hex" } | null, "peer", "security": "nosec" | "psk" | "rpk" | "x509",
    "profile", "lwm2mVersion", "preferredFormat", "contentFormat", "startedAt", "endedAt",
    "durationMs", "outcome": "running" | "success" | "failure" | "cancelled",
    "failureCause", "failureDetail", "requestCount" }`;

const JSON_HELP_LIST = `
--json prints an array, newest first, of
  ${JSON_SESSION}
(absent values are null; formats are CoAP Content-Format numbers).`;

const JSON_HELP_SHOW = `
--json prints one session
  ${JSON_SESSION}
with "requests": [ { "seq", "method", "path", "contentFormat", "payloadSize", "responseCode",
    "responseSize", "startedAt", "durationMs", "error" } ] in the order they were sent.`;

export function registerSessionsCommand(program: Command, ctx: CliContext): void {
  const sessions = program.command('sessions').description('recorded bootstrap sessions');

  sessions
    .command('list')
    .description('list bootstrap sessions, newest first')
    .option('--endpoint <ep>', 'only sessions of this endpoint')
    .option('--endpoint-hex', '--endpoint is given as hex digits')
    .option('--outcome <outcome>', `only sessions with this outcome: ${OUTCOMES.join(', ')}`)
    .option('--limit <n>', 'at most N sessions (default 100)')
    .option('--json', 'machine-readable output')
    .addHelpText('after', `${JSON_HELP_LIST}\n${JSON_CONVENTIONS}`)
    .action(async (opts: { endpoint?: string; endpointHex?: boolean; outcome?: string; limit?: string; json?: boolean }) => {
      if (opts.endpointHex && opts.endpoint === undefined) throw new UsageError('--endpoint-hex needs --endpoint');
      const endpoint = opts.endpoint === undefined ? undefined : parseBytesArg(opts.endpoint, opts.endpointHex === true, '--endpoint');
      if (opts.outcome !== undefined && !(OUTCOMES as readonly string[]).includes(opts.outcome)) {
        throw new UsageError(`--outcome must be one of ${OUTCOMES.join(', ')}, got ${JSON.stringify(opts.outcome)}`);
      }
      const limit = parseLimit(opts.limit) ?? 100;
      await ctx.withStore(async (store) => {
        const list = await store.sessions.list({
          limit,
          ...(endpoint !== undefined ? { endpoint } : {}),
          ...(opts.outcome !== undefined ? { outcome: opts.outcome as SessionOutcome } : {}),
        });
        if (opts.json) return printJson(list.map(sessionJson));
        if (list.length === 0) return console.log('no sessions');
        printLines(table(SESSION_HEADERS, list.map(sessionRow)));
        if (list.length === limit) console.log(`(the newest ${limit}; use --limit to see more)`);
      });
    });

  sessions
    .command('show')
    .description('one session: its details and every request sent, with the answer')
    .argument('<id>', 'session ID')
    .option('--json', 'machine-readable output')
    .addHelpText('after', `${JSON_HELP_SHOW}\n${JSON_CONVENTIONS}`)
    .action(async (id: string, opts: { json?: boolean }) => {
      await ctx.withStore(async (store) => {
        const s = await store.sessions.get(id);
        if (!s) throw new UserError(`session ${JSON.stringify(id)} does not exist (see \`lwbs sessions list\`)`);
        if (opts.json) return printJson({ ...sessionJson(s), requests: s.requests.map(requestJson) });
        const out = [`session ${s.id}`];
        out.push(field('endpoint', s.endpoint ? showBytes(s.endpoint) : '(none given)'));
        out.push(field('peer', s.peer));
        out.push(field('security', s.security));
        out.push(field('profile', s.profile ?? '-'));
        out.push(field('LwM2M version', s.lwm2mVersion ?? '-'));
        out.push(field('formats', `asked (pct) ${formatName(s.preferredFormat)}, used ${formatName(s.contentFormat)}`));
        out.push(field('started', shortTime(s.startedAt)));
        out.push(field('ended', s.endedAt === null ? '(still running)' : `${shortTime(s.endedAt)} (${formatDuration(s.endedAt - s.startedAt)})`));
        out.push(field('outcome', s.outcome + (s.failureCause ? `: ${s.failureCause}` : '')));
        if (s.failureDetail) out.push(field('detail', s.failureDetail));
        if (s.requests.length === 0) out.push('requests: none');
        else {
          out.push(`requests (${s.requests.length}):`);
          out.push(
            ...table(
              ['SEQ', 'METHOD', 'PATH', 'FORMAT', 'SENT', 'RECEIVED', 'CODE', 'DURATION', 'ERROR'],
              s.requests.map((r) => [
                String(r.seq),
                r.method,
                r.path,
                r.contentFormat === null ? '-' : formatName(r.contentFormat),
                `${r.payloadSize} B`,
                r.responseSize === null ? '-' : `${r.responseSize} B`,
                r.responseCode ?? '-',
                formatDuration(r.durationMs),
                r.error ?? '',
              ]),
              [0, 4, 5],
            ).map((l) => `  ${l}`),
          );
        }
        printLines(out);
      });
    });
}

/** Columns of a session row, shared with `device show`. */
export const SESSION_HEADERS: readonly string[] = ['ID', 'STARTED', 'ENDPOINT', 'PEER', 'SECURITY', 'OUTCOME', 'CAUSE', 'REQUESTS', 'DURATION'];

export function sessionRow(s: SessionRecord): string[] {
  return [
    s.id,
    shortTime(s.startedAt),
    s.endpoint ? showBytes(s.endpoint) : '-',
    s.peer,
    s.security,
    s.outcome,
    s.failureCause ?? '',
    String(s.requestCount),
    s.endedAt === null ? '-' : formatDuration(s.endedAt - s.startedAt),
  ];
}

export function sessionJson(s: SessionRecord): Record<string, unknown> {
  return {
    id: s.id,
    endpoint: s.endpoint ? bytesJson(s.endpoint) : null,
    peer: s.peer,
    security: s.security,
    profile: s.profile,
    lwm2mVersion: s.lwm2mVersion,
    preferredFormat: s.preferredFormat,
    contentFormat: s.contentFormat,
    startedAt: isoTime(s.startedAt),
    endedAt: isoTime(s.endedAt),
    durationMs: s.endedAt === null ? null : s.endedAt - s.startedAt,
    outcome: s.outcome,
    failureCause: s.failureCause,
    failureDetail: s.failureDetail,
    requestCount: s.requestCount,
  };
}

function requestJson(r: SessionRequestRecord): Record<string, unknown> {
  return {
    seq: r.seq,
    method: r.method,
    path: r.path,
    contentFormat: r.contentFormat,
    payloadSize: r.payloadSize,
    responseCode: r.responseCode,
    responseSize: r.responseSize,
    startedAt: isoTime(r.startedAt),
    durationMs: r.durationMs,
    error: r.error,
  };
}

/** `senml-cbor (112)`; `-` for none. */
function formatName(cf: number | null): string {
  if (cf === null) return '-';
  const name = cf === linkFormatCodec.contentFormat ? linkFormatCodec.name : findCodec(cf)?.name;
  return name ? `${name} (${cf})` : String(cf);
}
