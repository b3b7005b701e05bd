/**
 * What a simulated device reports after a bootstrap: the accounts it was given, read back from
 * its data model (so the report shows what the device really holds, not what was sent), plus
 * renderings for `lwbs simulate` (JSON and text). Key material is wrapped in `Secret`: it prints
 * as `[secret]` everywhere unless the caller reveals it (`--show-secrets`).
 *
 * Also the registration side: one `RegistrationReport` per Register, Update and De-register the
 * device sent, and the `SimEvent`s a simulator emits while it runs (for `lwbs simulate`'s live
 * output). None of these carries key material.
 */
import { Secret } from '../bootstrap/credentials.js';
import type { LwM2MObject, ObjectInstance } from '../lwm2m/node.js';
import { bytesAsText } from '../util/bytes.js';
import { boolOf, bytesOf, intOf, objlnkOf, stringOf, type DeviceModel } from './device-model.js';

/**
 * What a request was taken for. Bootstrap interface: discover, read, write, delete, finish.
 * Device management (from the registration server, `dm: true` in the log): also execute,
 * create, write-attributes, observe, cancel-observation.
 */
export type SimOperation =
  | 'discover' | 'read' | 'write' | 'delete' | 'finish'
  | 'execute' | 'create' | 'write-attributes' | 'observe' | 'cancel-observation'
  | 'other';

/** One request the device received, and how it answered. */
export interface SimRequestLog {
  /** Position among all requests this simulator received (0-based). */
  readonly index: number;
  /** Epoch milliseconds when it arrived. */
  readonly at: number;
  readonly method: string;
  /** Uri-Path as text (`/0/1`, `/` for the root). */
  readonly path: string;
  readonly operation: SimOperation;
  readonly contentFormat?: number;
  readonly accept?: number;
  readonly payloadLength: number;
  /** The code answered; undefined while pending or when a fault kept the device silent. */
  code?: string;
  /** Content-Format of the answer, when it had one. */
  responseFormat?: number;
  /** Diagnostic text of an error answer. */
  diagnostic?: string;
  /** Resources a write ignored (not in the device's object version). */
  ignored?: readonly string[];
  /** Set when the fault hook changed the answer. */
  fault?: 'code' | 'silent' | 'delay';
  /** True for a device-management request from the server the device is registered with. */
  dm?: boolean;
  /** Write: `replace` (PUT) or `partial` (POST). */
  writeMode?: 'replace' | 'partial';
}

export type SecurityModeName = 'psk' | 'rpk' | 'x509' | 'nosec' | 'est' | 'unknown';

const MODE_NAMES: Readonly<Record<number, SecurityModeName>> = { 0: 'psk', 1: 'rpk', 2: 'x509', 3: 'nosec', 4: 'est' };

/** A Security instance as the device holds it. */
export interface SecurityAccount {
  readonly securityInstance: number;
  readonly uri?: string;
  readonly mode: SecurityModeName;
  /** psk: identity bytes (res 3). */
  readonly pskIdentity?: Uint8Array;
  /** psk: key (res 5). */
  readonly pskKey?: Secret;
  /** rpk: own public key, SubjectPublicKeyInfo DER (res 3). */
  readonly publicKey?: Uint8Array;
  /** x509: own certificate DER (res 3). */
  readonly certificate?: Uint8Array;
  /** rpk, x509: own private key (res 5). */
  readonly privateKey?: Secret;
  /** rpk: the server's public key (res 4). */
  readonly serverPublicKey?: Uint8Array;
  /** x509: the server's certificate or trust anchor (res 4). */
  readonly serverCertificate?: Uint8Array;
  readonly matchingType?: number;
  readonly sni?: string;
  readonly certificateUsage?: number;
  readonly ciphersuites?: readonly number[];
  /** /21 instance linked by res 17. */
  readonly oscoreInstance?: number;
  /** The Security instance itself. */
  readonly securityNode: ObjectInstance;
}

/** A DM server account: a Security instance and (when present) the Server instance of its SSID. */
export interface ServerAccount extends SecurityAccount {
  readonly ssid?: number;
  readonly serverInstance?: number;
  readonly lifetime?: number;
  readonly binding?: string;
  readonly notificationStoring?: boolean;
  readonly defaultMinPeriod?: number;
  readonly defaultMaxPeriod?: number;
  readonly disableTimeout?: number;
  readonly serverNode?: ObjectInstance;
}

export interface BootstrapAccountInfo extends SecurityAccount {
  /** res 11 */
  readonly clientHoldOffTime?: number;
  /** res 12 (the simulator does not purge the account; it only reports the value). */
  readonly accountTimeout?: number;
}

export interface AclInfo {
  readonly aclInstance: number;
  readonly objectId?: number;
  readonly instanceId?: number;
  /** SSID (0 = default) → rights bitmask R=1 W=2 E=4 D=8 C=16. */
  readonly rights: ReadonlyMap<number, number>;
  readonly owner?: number;
}

export type BootstrapOutcome = 'success' | 'rejected' | 'inconsistent' | 'timeout' | 'error';

export interface BootstrapReport {
  readonly endpoint: string;
  readonly lwm2mVersion: string;
  /** The bootstrap server, as a `coap://` URI. */
  readonly server: string;
  /** `bootstrap` (Bootstrap-Request) or `pack` (Bootstrap-Pack-Request). */
  readonly kind: 'bootstrap' | 'pack';
  readonly outcome: BootstrapOutcome;
  /** The code the server gave to /bs or /bspack. */
  readonly requestCode?: string;
  /** Payload text of an error answer (the server's, or the device's own 4.06 reasons), or the failure. */
  readonly diagnostic?: string;
  readonly servers: readonly ServerAccount[];
  readonly bootstrapAccount?: BootstrapAccountInfo;
  readonly acl: readonly AclInfo[];
  /** Requests received during this session. */
  readonly requests: readonly SimRequestLog[];
  /** The whole data model after the session. */
  readonly objects: ReadonlyMap<number, LwM2MObject>;
  readonly durationMs: number;
  /** When a failed Bootstrap-Pack fell back to Bootstrap-Request: the pack's result. */
  readonly packAttempt?: { readonly outcome: BootstrapOutcome; readonly requestCode?: string; readonly diagnostic?: string };
}

// ---- extraction ------------------------------------------------------------------------------

function multiInts(inst: ObjectInstance, rid: number): number[] | undefined {
  const r = inst.resources.get(rid);
  if (r?.kind !== 'multiResource') return undefined;
  return [...r.instances.values()].map((v) => (v.type === 'integer' || v.type === 'unsigned' ? Number(v.value) : NaN));
}

function nonEmpty(b: Uint8Array | undefined): Uint8Array | undefined {
  return b !== undefined && b.length > 0 ? b : undefined;
}

function securityAccount(inst: ObjectInstance): SecurityAccount {
  const modeNumber = intOf(inst, 2);
  const mode = modeNumber !== undefined ? (MODE_NAMES[modeNumber] ?? 'unknown') : 'unknown';
  const r3 = nonEmpty(bytesOf(inst, 3));
  const r4 = nonEmpty(bytesOf(inst, 4));
  const r5 = nonEmpty(bytesOf(inst, 5));
  const out: { -readonly [K in keyof SecurityAccount]: SecurityAccount[K] } = { securityInstance: inst.id, mode, securityNode: inst };
  const uri = stringOf(inst, 0);
  if (uri !== undefined) out.uri = uri;
  if (mode === 'psk') {
    if (r3) out.pskIdentity = r3;
    if (r5) out.pskKey = new Secret(r5);
  } else if (mode === 'rpk') {
    if (r3) out.publicKey = r3;
    if (r4) out.serverPublicKey = r4;
    if (r5) out.privateKey = new Secret(r5);
  } else if (mode === 'x509' || mode === 'est') {
    if (r3) out.certificate = r3;
    if (r4) out.serverCertificate = r4;
    if (r5) out.privateKey = new Secret(r5);
  }
  const mt = intOf(inst, 13);
  if (mt !== undefined) out.matchingType = mt;
  const sni = stringOf(inst, 14);
  if (sni !== undefined) out.sni = sni;
  const cu = intOf(inst, 15);
  if (cu !== undefined) out.certificateUsage = cu;
  const cs = multiInts(inst, 16);
  if (cs !== undefined) out.ciphersuites = cs;
  const osc = objlnkOf(inst, 17);
  if (osc && osc.objectId === 21) out.oscoreInstance = osc.instanceId;
  return out;
}

export interface ReportParts {
  readonly servers: ServerAccount[];
  readonly bootstrapAccount?: BootstrapAccountInfo;
  readonly acl: AclInfo[];
}

/** Reads the accounts and ACLs out of the device's current data model. */
export function extractAccounts(model: DeviceModel): ReportParts {
  const servers: ServerAccount[] = [];
  let bootstrapAccount: BootstrapAccountInfo | undefined;
  const serverInsts = [...model.instances(1).values()].sort((a, b) => a.id - b.id);
  for (const inst of [...model.instances(0).values()].sort((a, b) => a.id - b.id)) {
    const base = securityAccount(inst);
    if (boolOf(inst, 1) === true) {
      if (bootstrapAccount) continue; // a second one only exists after a failed session; the model reports it
      const b: { -readonly [K in keyof BootstrapAccountInfo]: BootstrapAccountInfo[K] } = { ...base };
      const hold = intOf(inst, 11);
      if (hold !== undefined) b.clientHoldOffTime = hold;
      const timeout = intOf(inst, 12);
      if (timeout !== undefined) b.accountTimeout = timeout;
      bootstrapAccount = b;
      continue;
    }
    const s: { -readonly [K in keyof ServerAccount]: ServerAccount[K] } = { ...base };
    const ssid = intOf(inst, 10);
    if (ssid !== undefined) {
      s.ssid = ssid;
      const srv = serverInsts.find((x) => intOf(x, 0) === ssid);
      if (srv) {
        s.serverInstance = srv.id;
        s.serverNode = srv;
        const set = <K extends keyof ServerAccount>(k: K, v: ServerAccount[K] | undefined): void => {
          if (v !== undefined) s[k] = v;
        };
        set('lifetime', intOf(srv, 1));
        set('defaultMinPeriod', intOf(srv, 2));
        set('defaultMaxPeriod', intOf(srv, 3));
        set('disableTimeout', intOf(srv, 5));
        set('notificationStoring', boolOf(srv, 6));
        set('binding', stringOf(srv, 7));
      }
    }
    servers.push(s);
  }
  const acl: AclInfo[] = [];
  for (const inst of [...model.instances(2).values()].sort((a, b) => a.id - b.id)) {
    const r = inst.resources.get(2);
    const rights = new Map<number, number>();
    if (r?.kind === 'multiResource') {
      for (const [ssid, v] of [...r.instances].sort((a, b) => a[0] - b[0])) {
        if (v.type === 'integer' || v.type === 'unsigned') rights.set(ssid, Number(v.value));
      }
    }
    const a: { -readonly [K in keyof AclInfo]: AclInfo[K] } = { aclInstance: inst.id, rights };
    const oid = intOf(inst, 0);
    if (oid !== undefined) a.objectId = oid;
    const iid = intOf(inst, 1);
    if (iid !== undefined) a.instanceId = iid;
    const owner = intOf(inst, 3);
    if (owner !== undefined) a.owner = owner;
    acl.push(a);
  }
  return bootstrapAccount ? { servers, bootstrapAccount, acl } : { servers, acl };
}

// ---- rendering -------------------------------------------------------------------------------

export type Json = string | number | boolean | null | Json[] | { [k: string]: Json };

/** Bytes for JSON: `{ text, hex }` when printable UTF-8, else `{ hex }`. */
export function bytesJson(b: Uint8Array): Json {
  const hex = Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
  const text = bytesAsText(b);
  return text !== undefined ? { text, hex } : { hex };
}

/** A secret for JSON: `{ hex }` when revealed, else `{ masked: true, length }`. */
function secretJson(s: Secret, reveal: boolean): Json {
  const b = s.reveal();
  return reveal ? { hex: Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex') } : { masked: true, length: b.length };
}

function accountJson(a: SecurityAccount, reveal: boolean): { [k: string]: Json } {
  const out: { [k: string]: Json } = { securityInstance: a.securityInstance, mode: a.mode };
  if (a.uri !== undefined) out['uri'] = a.uri;
  if (a.pskIdentity) out['pskIdentity'] = bytesJson(a.pskIdentity);
  if (a.pskKey) out['pskKey'] = secretJson(a.pskKey, reveal);
  if (a.publicKey) out['publicKey'] = bytesJson(a.publicKey);
  if (a.certificate) out['certificate'] = bytesJson(a.certificate);
  if (a.privateKey) out['privateKey'] = secretJson(a.privateKey, reveal);
  if (a.serverPublicKey) out['serverPublicKey'] = bytesJson(a.serverPublicKey);
  if (a.serverCertificate) out['serverCertificate'] = bytesJson(a.serverCertificate);
  if (a.matchingType !== undefined) out['matchingType'] = a.matchingType;
  if (a.sni !== undefined) out['sni'] = a.sni;
  if (a.certificateUsage !== undefined) out['certificateUsage'] = a.certificateUsage;
  if (a.ciphersuites !== undefined) out['ciphersuites'] = [...a.ciphersuites];
  if (a.oscoreInstance !== undefined) out['oscoreInstance'] = a.oscoreInstance;
  return out;
}

/**
 * The report as JSON (what `lwbs simulate --json` prints). Field names are stable:
 * { endpoint, lwm2mVersion, server, kind, outcome, requestCode?, diagnostic?, durationMs,
 *   servers: [{ securityInstance, serverInstance?, ssid?, uri?, mode, pskIdentity?, pskKey?,
 *     publicKey?, certificate?, privateKey?, serverPublicKey?, serverCertificate?, lifetime?,
 *     binding?, notificationStoring?, defaultMinPeriod?, defaultMaxPeriod?, disableTimeout?, ... }],
 *   bootstrapAccount?: { securityInstance, uri?, mode, ..., clientHoldOffTime?, accountTimeout? },
 *   acl: [{ aclInstance, objectId?, instanceId?, owner?, rights: { "<ssid>": mask } }],
 *   requests: [{ method, path, operation, contentFormat?, accept?, code?, fault? }], packAttempt? }
 * Bytes are `{ text?, hex }`; secrets `{ masked: true, length }` unless revealed (`{ hex }`).
 */
export function reportToJson(r: BootstrapReport, opts: { revealSecrets?: boolean } = {}): { [k: string]: Json } {
  const reveal = opts.revealSecrets === true;
  const out: { [k: string]: Json } = {
    endpoint: r.endpoint,
    lwm2mVersion: r.lwm2mVersion,
    server: r.server,
    kind: r.kind,
    outcome: r.outcome,
  };
  if (r.requestCode !== undefined) out['requestCode'] = r.requestCode;
  if (r.diagnostic !== undefined) out['diagnostic'] = r.diagnostic;
  out['durationMs'] = r.durationMs;
  out['servers'] = r.servers.map((s) => {
    const o = accountJson(s, reveal);
    if (s.ssid !== undefined) o['ssid'] = s.ssid;
    if (s.serverInstance !== undefined) o['serverInstance'] = s.serverInstance;
    if (s.lifetime !== undefined) o['lifetime'] = s.lifetime;
    if (s.binding !== undefined) o['binding'] = s.binding;
    if (s.notificationStoring !== undefined) o['notificationStoring'] = s.notificationStoring;
    if (s.defaultMinPeriod !== undefined) o['defaultMinPeriod'] = s.defaultMinPeriod;
    if (s.defaultMaxPeriod !== undefined) o['defaultMaxPeriod'] = s.defaultMaxPeriod;
    if (s.disableTimeout !== undefined) o['disableTimeout'] = s.disableTimeout;
    return o;
  });
  if (r.bootstrapAccount) {
    const b = accountJson(r.bootstrapAccount, reveal);
    if (r.bootstrapAccount.clientHoldOffTime !== undefined) b['clientHoldOffTime'] = r.bootstrapAccount.clientHoldOffTime;
    if (r.bootstrapAccount.accountTimeout !== undefined) b['accountTimeout'] = r.bootstrapAccount.accountTimeout;
    out['bootstrapAccount'] = b;
  }
  out['acl'] = r.acl.map((a) => {
    const o: { [k: string]: Json } = { aclInstance: a.aclInstance };
    if (a.objectId !== undefined) o['objectId'] = a.objectId;
    if (a.instanceId !== undefined) o['instanceId'] = a.instanceId;
    if (a.owner !== undefined) o['owner'] = a.owner;
    o['rights'] = Object.fromEntries([...a.rights].map(([k, v]) => [String(k), v]));
    return o;
  });
  out['requests'] = r.requests.map((q) => {
    const o: { [k: string]: Json } = { method: q.method, path: q.path, operation: q.operation };
    if (q.contentFormat !== undefined) o['contentFormat'] = q.contentFormat;
    if (q.accept !== undefined) o['accept'] = q.accept;
    if (q.code !== undefined) o['code'] = q.code;
    if (q.fault !== undefined) o['fault'] = q.fault;
    return o;
  });
  if (r.packAttempt) {
    const p: { [k: string]: Json } = { outcome: r.packAttempt.outcome };
    if (r.packAttempt.requestCode !== undefined) p['requestCode'] = r.packAttempt.requestCode;
    if (r.packAttempt.diagnostic !== undefined) p['diagnostic'] = r.packAttempt.diagnostic;
    out['packAttempt'] = p;
  }
  return out;
}

function bytesText(b: Uint8Array): string {
  const t = bytesAsText(b);
  return t !== undefined ? JSON.stringify(t) : `0x${Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')}`;
}

function secretText(s: Secret, reveal: boolean): string {
  const b = s.reveal();
  return reveal ? `0x${Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')}` : `[secret, ${b.length} bytes]`;
}

function keyText(b: Uint8Array): string {
  const hex = Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
  return `${b.length} bytes 0x${hex.length > 32 ? `${hex.slice(0, 32)}...` : hex}`;
}

function accountLines(a: SecurityAccount, reveal: boolean, indent: string): string[] {
  const out: string[] = [];
  if (a.pskIdentity) out.push(`${indent}psk identity  ${bytesText(a.pskIdentity)}`);
  if (a.pskKey) out.push(`${indent}psk key       ${secretText(a.pskKey, reveal)}`);
  if (a.publicKey) out.push(`${indent}public key    ${keyText(a.publicKey)}`);
  if (a.certificate) out.push(`${indent}certificate   ${keyText(a.certificate)}`);
  if (a.privateKey) out.push(`${indent}private key   ${secretText(a.privateKey, reveal)}`);
  if (a.serverPublicKey) out.push(`${indent}server key    ${keyText(a.serverPublicKey)}`);
  if (a.serverCertificate) out.push(`${indent}server cert   ${keyText(a.serverCertificate)}`);
  return out;
}

/** The report for people: one header line, then the accounts, ACLs and the requests. */
export function reportToText(r: BootstrapReport, opts: { revealSecrets?: boolean } = {}): string[] {
  const reveal = opts.revealSecrets === true;
  const lines: string[] = [];
  const what = r.kind === 'pack' ? 'Bootstrap-Pack' : 'bootstrap';
  lines.push(`${what} of ${r.endpoint} (LwM2M ${r.lwm2mVersion}) from ${r.server}: ${r.outcome}${r.requestCode ? ` (request answered ${r.requestCode})` : ''}, ${r.durationMs} ms`);
  if (r.packAttempt) lines.push(`  Bootstrap-Pack first: ${r.packAttempt.outcome}${r.packAttempt.requestCode ? ` (${r.packAttempt.requestCode})` : ''}; fell back to Bootstrap-Request`);
  if (r.diagnostic) lines.push(`  diagnostic: ${r.diagnostic}`);
  if (r.servers.length === 0) lines.push('servers: none');
  for (const s of r.servers) {
    lines.push(`server ${s.ssid ?? '(no SSID)'}: ${s.uri ?? '(no URI)'} ${s.mode}  (/0/${s.securityInstance}${s.serverInstance !== undefined ? `, /1/${s.serverInstance}` : ', no Server instance'})`);
    lines.push(...accountLines(s, reveal, '    '));
    const srv = [
      s.lifetime !== undefined ? `lifetime ${s.lifetime}` : undefined,
      s.binding !== undefined ? `binding ${s.binding}` : undefined,
      s.notificationStoring !== undefined ? `storing ${s.notificationStoring}` : undefined,
      s.defaultMinPeriod !== undefined ? `pmin ${s.defaultMinPeriod}` : undefined,
      s.defaultMaxPeriod !== undefined ? `pmax ${s.defaultMaxPeriod}` : undefined,
    ].filter((x) => x !== undefined);
    if (srv.length > 0) lines.push(`    ${srv.join(', ')}`);
  }
  if (r.bootstrapAccount) {
    const b = r.bootstrapAccount;
    lines.push(`bootstrap account: ${b.uri ?? '(no URI)'} ${b.mode}  (/0/${b.securityInstance})`);
    lines.push(...accountLines(b, reveal, '    '));
  } else lines.push('bootstrap account: none');
  for (const a of r.acl) {
    const rights = [...a.rights].map(([ssid, m]) => `${ssid}=${m}`).join(' ');
    lines.push(`acl /2/${a.aclInstance}: /${a.objectId ?? '?'}/${a.instanceId ?? '?'} owner ${a.owner ?? '?'} rights ${rights || '(none)'}`);
  }
  lines.push(`requests (${r.requests.length}):`);
  for (const q of r.requests) {
    const cf = q.contentFormat !== undefined ? ` cf=${q.contentFormat}` : q.accept !== undefined ? ` accept=${q.accept}` : '';
    lines.push(`  ${q.method.padEnd(6)} ${q.path.padEnd(10)}${cf.padEnd(12)} → ${q.code ?? '(no answer)'}${q.fault ? ` [fault: ${q.fault}]` : ''}`);
  }
  return lines;
}

// ---- registration ----------------------------------------------------------------------------

export type RegistrationOperation = 'register' | 'update' | 'deregister';

/** `rejected`: the server answered an error code; `timeout`: no answer; `error`: anything else. */
export type RegistrationOutcome = 'success' | 'rejected' | 'timeout' | 'error';

/** Why the device sent it. */
export type RegistrationTrigger =
  /** An explicit call (`register()`, `update()`, `deregister()`). */
  | 'call'
  /** The update timer (lifetime/2, or `updateIntervalMs`). */
  | 'timer'
  /** A device-management request: Registration Update Trigger, lifetime/binding written, instances created or deleted. */
  | 'dm'
  /** An Update answered 4.04 (or not at all): Register again. */
  | 'reregister'
  /** A failed Register tried again. */
  | 'retry'
  /** The Bootstrap-Request Trigger: De-register, bootstrap, Register with the new account. */
  | 'rebootstrap'
  /** Disable (`/1/x/4`): De-register, and Register again after the disable timeout. */
  | 'disable'
  /** `close()`. */
  | 'close';

/** One Register, Update or De-register and its answer. */
export interface RegistrationReport {
  readonly endpoint: string;
  readonly operation: RegistrationOperation;
  readonly outcome: RegistrationOutcome;
  readonly trigger: RegistrationTrigger;
  /** The LwM2M server, `coap://address:port`. */
  readonly server: string;
  readonly shortServerId: number;
  /** Security (`/0/x`) and Server (`/1/x`) instances of the account. */
  readonly securityInstance: number;
  readonly serverInstance: number;
  readonly lwm2mVersion: string;
  /** The server's answer (`2.01`, `2.04`, `2.02`, `4.04`, ...). */
  readonly code?: string;
  /** The registration's location (`/rd/5a3f`): from the 2.01, or the one updated / de-registered. */
  readonly location?: string;
  /** The server's diagnostic payload of an error answer, or why there was none. */
  readonly diagnostic?: string;
  /** Uri-Query options sent. */
  readonly query: readonly string[];
  /** The link-format object list sent (Register always; Update only when it changed). */
  readonly objects?: string;
  /** Lifetime, binding and queue mode in effect after this message. */
  readonly lifetime: number;
  readonly binding: string;
  readonly queueMode: boolean;
  /** Epoch milliseconds when it was sent. */
  readonly at: number;
  readonly durationMs: number;
}

/** The bootstrap was skipped or the device holds no account it can register with. */
export interface RegistrationSkipped {
  readonly operation: 'register';
  readonly outcome: 'skipped';
  readonly diagnostic: string;
}

/** What a running simulator tells its `onEvent` listener. */
export type SimEvent =
  | { readonly kind: 'request'; readonly request: SimRequestLog }
  | { readonly kind: 'bootstrap'; readonly report: BootstrapReport; readonly trigger: 'call' | 'rebootstrap' }
  | { readonly kind: 'registration'; readonly report: RegistrationReport }
  | { readonly kind: 'notification'; readonly path: string; readonly token: string; readonly observe: number; readonly code: string }
  | { readonly kind: 'observation-ended'; readonly path: string; readonly token: string; readonly reason: string }
  | { readonly kind: 'execute'; readonly path: string; readonly args: string };

/**
 * A registration report as JSON (`lwbs simulate --json`):
 * { operation, outcome, trigger, server, shortServerId, securityInstance, serverInstance,
 *   lwm2mVersion, code?, location?, diagnostic?, query, objects?, lifetime, binding, queueMode,
 *   durationMs }, or { operation: 'register', outcome: 'skipped', diagnostic }.
 */
export function registrationToJson(r: RegistrationReport | RegistrationSkipped): { [k: string]: Json } {
  if (r.outcome === 'skipped') return { operation: r.operation, outcome: r.outcome, diagnostic: r.diagnostic };
  const out: { [k: string]: Json } = {
    operation: r.operation,
    outcome: r.outcome,
    trigger: r.trigger,
    server: r.server,
    shortServerId: r.shortServerId,
    securityInstance: r.securityInstance,
    serverInstance: r.serverInstance,
    lwm2mVersion: r.lwm2mVersion,
  };
  if (r.code !== undefined) out['code'] = r.code;
  if (r.location !== undefined) out['location'] = r.location;
  if (r.diagnostic !== undefined) out['diagnostic'] = r.diagnostic;
  out['query'] = [...r.query];
  if (r.objects !== undefined) out['objects'] = r.objects;
  out['lifetime'] = r.lifetime;
  out['binding'] = r.binding;
  out['queueMode'] = r.queueMode;
  out['durationMs'] = r.durationMs;
  return out;
}

const OPERATION_NAMES: Readonly<Record<RegistrationOperation, string>> = { register: 'Register', update: 'Update', deregister: 'De-register' };

/** One line for people: `Register with coap://127.0.0.1:5783 (SSID 1): 2.01 /rd/x, lifetime 300 s, binding U`. */
export function registrationToText(r: RegistrationReport | RegistrationSkipped): string {
  if (r.outcome === 'skipped') return `registration: skipped: ${r.diagnostic}`;
  const what = OPERATION_NAMES[r.operation];
  const via = r.trigger === 'call' ? '' : ` [${r.trigger}]`;
  const head = `${what}${r.operation === 'register' ? ' with' : ' at'} ${r.server} (SSID ${r.shortServerId})${via}`;
  const answer = r.outcome === 'success'
    ? `${r.code ?? ''}${r.location ? ` ${r.location}` : ''}`
    : `${r.outcome}${r.code ? ` (${r.code})` : ''}${r.diagnostic ? `: ${r.diagnostic}` : ''}`;
  const params = r.operation === 'deregister' ? '' : `, lifetime ${r.lifetime} s, binding ${r.binding}${r.queueMode ? ', queue mode' : ''}`;
  const sent = r.operation === 'update' ? `${r.query.length > 0 ? ` ?${r.query.join('&')}` : ''}${r.objects !== undefined ? ' + object list' : ''}` : '';
  return `${head}: ${answer}${params}${sent}`;
}

/** The lines `lwbs simulate` prints for a running simulator's events (no secrets in any of them). */
export function eventToText(e: SimEvent): string | undefined {
  switch (e.kind) {
    case 'request': {
      const q = e.request;
      if (!q.dm) return undefined;
      const cf = q.contentFormat !== undefined ? ` cf=${q.contentFormat}` : q.accept !== undefined ? ` accept=${q.accept}` : '';
      return `${q.operation.padEnd(18)} ${q.method} ${q.path}${cf} → ${q.code ?? '(no answer)'}${q.diagnostic ? ` (${q.diagnostic})` : ''}`;
    }
    case 'bootstrap':
      return `bootstrap${e.trigger === 'rebootstrap' ? ' [Bootstrap-Request Trigger]' : ''} from ${e.report.server}: ${e.report.outcome}${e.report.diagnostic ? ` (${e.report.diagnostic})` : ''}`;
    case 'registration':
      return registrationToText(e.report);
    case 'notification':
      return `notify             ${e.path} observe=${e.observe < 0 ? '-' : e.observe} ${e.code}`;
    case 'observation-ended':
      return `observation ended  ${e.path} (${e.reason})`;
    case 'execute':
      return undefined;
  }
}

/** An event as one compact JSON object (`lwbs simulate --json`, after the report). */
export function eventToJson(e: SimEvent, opts: { revealSecrets?: boolean } = {}): { [k: string]: Json } | undefined {
  switch (e.kind) {
    case 'request': {
      const q = e.request;
      if (!q.dm) return undefined;
      const o: { [k: string]: Json } = { event: 'request', operation: q.operation, method: q.method, path: q.path };
      if (q.contentFormat !== undefined) o['contentFormat'] = q.contentFormat;
      if (q.accept !== undefined) o['accept'] = q.accept;
      if (q.code !== undefined) o['code'] = q.code;
      if (q.diagnostic !== undefined) o['diagnostic'] = q.diagnostic;
      return o;
    }
    case 'bootstrap':
      return { event: 'bootstrap', trigger: e.trigger, report: reportToJson(e.report, opts) };
    case 'registration':
      return { event: 'registration', ...registrationToJson(e.report) };
    case 'notification':
      return { event: 'notification', path: e.path, token: e.token, observe: e.observe, code: e.code };
    case 'observation-ended':
      return { event: 'observation-ended', path: e.path, token: e.token, reason: e.reason };
    case 'execute':
      return { event: 'execute', path: e.path, args: e.args };
  }
}
