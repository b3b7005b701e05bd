/**
 * `lwbs registry ...`: the registration server's registry, read from the store (no server
 * needed): who is registered, from where, with which LwM2M version, binding, lifetime and
 * objects, and the registration events of one endpoint. `--json` prints the same shapes as the
 * admin API (`GET /v1/registrations`, `GET /v1/registrations/{ep}`).
 */
import type { Command } from 'commander';
import { registrationEventJson, registrationJson } from '../../admin/json.js';
import { fingerprint } from '../../store/material.js';
import type { RegistrationEventRecord, RegistrationRecord } from '../../store/types.js';
import type { CliContext } from '../context.js';
import { UsageError, UserError } from '../errors.js';
import { field, JSON_CONVENTIONS, parseBytesArg, parseLimit, printJson, printLines, shortTime, showBytes, table } from '../output.js';

const JSON_REGISTRATION = `{ "id", "endpoint": { "text"?, "hex" }, "address", "port", "security": "nosec" | "psk" | "rpk" | "x509",
    "identity": { "text"?, "hex" } | null, "credentialId", "lwm2mVersion", "binding", "queueMode", "sms",
    "lifetime" (seconds, 0 = never expires), "rootPath", "contentFormats": [] | null,
    "objects": [ { "id", "version", "instances": [] } ], "profileIds": [] | null, "attributes": {},
    "registeredAt", "updatedAt", "expiresAt" }`;

const JSON_HELP_LIST = `
--json prints an array of registrations, sorted by endpoint bytes:
  ${JSON_REGISTRATION}`;

const JSON_HELP_SHOW = `
--json prints one registration
  ${JSON_REGISTRATION}
with "events": [ { "seq", "kind": "register" | "update" | "deregister" | "expire" | "replace" | "refused",
    "endpoint", "registrationId", "peer", "detail", "at" } ] (newest first).`;

/** `127.0.0.1:5683`, `[::1]:5683`. */
export function peerText(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

function bindingText(r: RegistrationRecord): string {
  return r.queueMode ? `${r.binding} queue` : r.binding;
}

function lifetimeText(r: RegistrationRecord): string {
  return r.lifetime === 0 ? 'never expires' : `${r.lifetime} s`;
}

/** `45 s`, `4 min 5 s`, `23 h 59 min`, `3 d 2 h`: lifetimes run to days. */
export function humanDuration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

function expiresIn(r: RegistrationRecord, now: number): string {
  if (r.expiresAt === null) return 'never';
  const left = r.expiresAt - now;
  return left < 0 ? `overdue ${humanDuration(-left)}` : humanDuration(left);
}

/** `</1/0>,</3/0>,</5>`: the object instances as the client announced them. */
export function objectLinks(r: RegistrationRecord): string {
  const links: string[] = [];
  for (const o of r.objects) {
    if (o.instances.length === 0) links.push(`</${o.id}>`);
    else for (const i of o.instances) links.push(`</${o.id}/${i}>`);
  }
  return links.join(',');
}

function identityText(r: RegistrationRecord): string {
  if (r.identity === null) return '-';
  return r.security === 'psk' ? showBytes(r.identity) : `${r.security === 'rpk' ? 'public key' : 'certificate'} ${fingerprint(r.identity)}`;
}

const HEADERS = ['ENDPOINT', 'ID', 'ADDRESS', 'LWM2M', 'BINDING', 'LIFETIME', 'EXPIRES IN', 'OBJECTS'];

function row(r: RegistrationRecord, now: number): string[] {
  return [showBytes(r.endpoint), r.id, peerText(r.address, r.port), r.lwm2mVersion, bindingText(r), r.lifetime === 0 ? 'never' : `${r.lifetime} s`, expiresIn(r, now), String(r.objects.length)];
}

function eventRows(events: readonly RegistrationEventRecord[]): string[] {
  return table(
    ['TIME', 'EVENT', 'REGISTRATION', 'PEER', 'DETAIL'],
    events.map((e) => [shortTime(e.at), e.kind, e.registrationId ?? '-', e.peer ?? '-', e.detail ?? '']),
  );
}

export function registerRegistryCommand(program: Command, ctx: CliContext): void {
  const registry = program.command('registry').description('devices registered with the registration server (read from the store)');

  registry
    .command('list')
    .description('list current registrations, sorted by endpoint')
    .option('--limit <n>', 'at most N registrations (default 100)')
    .option('--offset <n>', 'skip the first N registrations')
    .option('--json', 'machine-readable output')
    .addHelpText('after', `${JSON_HELP_LIST}\n${JSON_CONVENTIONS}`)
    .action(async (opts: { limit?: string; offset?: string; json?: boolean }) => {
      const limit = parseLimit(opts.limit) ?? 100;
      let offset = 0;
      if (opts.offset !== undefined) {
        if (!/^[0-9]+$/.test(opts.offset.trim()) || !Number.isSafeInteger(Number(opts.offset))) {
          throw new UsageError(`--offset must be a non-negative integer, got ${JSON.stringify(opts.offset)}`);
        }
        offset = Number(opts.offset);
      }
      await ctx.withStore(async (store) => {
        const list = await store.registry.list({ limit, offset });
        if (opts.json) return printJson(list.map(registrationJson));
        const total = await store.registry.count();
        if (list.length === 0) return console.log(total === 0 ? 'no registrations' : `no registrations past offset ${offset} (${total} in all)`);
        const now = Date.now();
        printLines(table(HEADERS, list.map((r) => row(r, now)), [7]));
        if (total > list.length) console.log(`(${offset + 1}-${offset + list.length} of ${total} registrations; use --limit and --offset to see more)`);
      });
    });

  registry
    .command('show')
    .description('one registration: every field, the objects announced, the last events')
    .argument('<endpoint>', 'endpoint name (hex digits with --endpoint-hex)')
    .option('--endpoint-hex', 'ENDPOINT is given as hex digits')
    .option('--events <n>', 'how many recent events to show', '20')
    .option('--json', 'machine-readable output')
    .addHelpText('after', `${JSON_HELP_SHOW}\n${JSON_CONVENTIONS}`)
    .action(async (endpointArg: string, opts: { endpointHex?: boolean; events: string; json?: boolean }) => {
      const endpoint = parseBytesArg(endpointArg, opts.endpointHex === true, 'ENDPOINT');
      const eventLimit = parseLimit(opts.events, '--events')!;
      await ctx.withStore(async (store) => {
        const r = await store.registry.getByEndpoint(endpoint);
        const events = await store.registry.events(endpoint, eventLimit);
        if (!r) {
          const last = events[0];
          const hint = last ? ` (last event: ${last.kind} at ${shortTime(last.at)}${last.detail ? `: ${last.detail}` : ''})` : '';
          throw new UserError(`endpoint ${showBytes(endpoint)} is not registered${hint}`);
        }
        if (opts.json) return printJson({ ...registrationJson(r), events: events.map(registrationEventJson) });
        const now = Date.now();
        const out = [`registration ${r.id}`];
        out.push(field('endpoint', showBytes(r.endpoint)));
        out.push(field('address', peerText(r.address, r.port)));
        out.push(field('security', r.security));
        out.push(field('identity', identityText(r)));
        out.push(field('credential', r.credentialId === null ? '-' : String(r.credentialId)));
        out.push(field('LwM2M version', r.lwm2mVersion));
        out.push(field('binding', r.binding));
        out.push(field('queue mode', r.queueMode ? 'yes' : 'no'));
        if (r.sms !== null) out.push(field('SMS number', r.sms));
        out.push(field('lifetime', lifetimeText(r)));
        out.push(field('registered', shortTime(r.registeredAt)));
        out.push(field('updated', shortTime(r.updatedAt)));
        out.push(field('expires', r.expiresAt === null ? 'never' : `${shortTime(r.expiresAt)} (${expiresIn(r, now).startsWith('overdue') ? expiresIn(r, now) : `in ${expiresIn(r, now)}`})`));
        out.push(field('root path', r.rootPath));
        out.push(field('content formats', r.contentFormats === null ? '-' : r.contentFormats.join(', ')));
        out.push(field('objects', objectLinks(r) || '-'));
        const versions = r.objects.filter((o) => o.version !== undefined).map((o) => `/${o.id} ${o.version}`);
        out.push(field('object versions', versions.length > 0 ? versions.join(', ') : '-'));
        if (r.profileIds !== null) out.push(field('profile IDs', r.profileIds.join(', ')));
        const attrs = Object.entries(r.attributes);
        if (attrs.length > 0) out.push(field('other parameters', attrs.map(([k, v]) => (v === '' ? k : `${k}=${v}`)).join(' ')));
        if (events.length === 0) out.push('events: none');
        else {
          out.push(`last events (${events.length}, newest first):`);
          out.push(...eventRows(events).map((l) => `  ${l}`));
        }
        printLines(out);
      });
    });
}
