/**
 * One bootstrap session, after the Bootstrap-Request was admitted and answered 2.04: Discover
 * (when the profile asks), plan, then every request one at a time, then Finish
 * (bootstrap.md §5–§11; the call order is documented at the top of planner.ts).
 *
 * Error policy (the digest's §10 compares Leshan, which carries on after error answers, with
 * Wakaama, which stops). lwbs carries on where an error is harmless and stops where going on
 * would hand the device a broken configuration:
 *  - Discover refused or unparsable → plan without it (the bootstrap account is assumed at /0/0);
 *  - Delete answered with an error → recorded, go on (clients answer 4.04/4.00 for things they
 *    do not have);
 *  - Write answered 4.15 → the same write again in the next format of the ladder, and that
 *    format for the rest of the session; any other error → failure `write_refused`, no Finish
 *    (the client then keeps its bootstrap account and retries later, spec §10);
 *  - Bootstrap-Read errors → recorded, go on (it is informational);
 *  - Finish 2.04 → success; 4.06 → failure `inconsistent_configuration`; other → `finish_refused`;
 *  - no answer (CoAP gave up, or the per-request timeout) → failure `timeout`; a Reset → `reset`.
 * The session's AbortSignal ends it early: `superseded` (the device sent a new Bootstrap-Request),
 * `deadline` (the whole session took too long) or `shutdown`.
 *
 * Secrets: request payloads are never stored or logged; the session record holds sizes and codes.
 */
import { CoapRequestError, type CoapNode, type CoapResponse } from '../coap/coap-node.js';
import type { PeerInfo } from '../coap/endpoint.js';
import { CodecError } from '../lwm2m/errors.js';
import { codecFor } from '../lwm2m/formats/index.js';
import { parseBootstrapDiscover, type BootstrapDiscover } from '../lwm2m/linkformat.js';
import { formatPath, type Path } from '../lwm2m/path.js';
import type { Store } from '../store/types.js';
import type { Logger } from '../util/log.js';
import type { ProfileCredentials } from './credentials.js';
import { chooseContentFormat, describeStep, PlanError, planBootstrap, type BootstrapStep, type RegistrationTarget } from './planner.js';
import type { BootstrapWriteFormat, Profile } from './profile.js';

/** Why a session's signal was aborted. */
export type AbortCause = 'superseded' | 'deadline' | 'shutdown';

export class SessionAbort extends Error {
  override readonly name = 'SessionAbort';
  constructor(readonly abortCause: AbortCause) {
    super(`session ${abortCause}`);
  }
}

export type SessionOutcome = 'success' | 'failure' | 'cancelled';

export interface SessionResult {
  readonly outcome: SessionOutcome;
  /** Failure or cancellation cause (`timeout`, `write_refused`, `inconsistent_configuration`, `superseded`...). */
  readonly cause?: string;
  readonly detail?: string;
  /** Whether a write handing over a server account (its Security instance) was sent: the device may hold it. */
  readonly credentialsSent: boolean;
}

export interface SessionContext {
  readonly id: string;
  readonly node: CoapNode;
  readonly peer: PeerInfo;
  readonly store: Store;
  readonly log: Logger;
  readonly profile: Profile;
  readonly endpoint: Buffer;
  readonly pct?: BootstrapWriteFormat;
  readonly registration: RegistrationTarget;
  readonly credentials: ProfileCredentials;
  /** Steps already planned before the 2.04 (profiles without Discover). */
  readonly planned?: readonly BootstrapStep[];
  /** The content format the session record was started with (planned sessions): not updated again when it is the first one used. */
  readonly recordedContentFormat?: number;
  readonly requestTimeoutMs: number;
  readonly signal: AbortSignal;
  readonly now: () => number;
}

interface Exchange {
  readonly method: 'GET' | 'PUT' | 'DELETE' | 'POST';
  /** Name recorded in the session (`DISCOVER`, `WRITE`...). */
  readonly op: string;
  /** An LwM2M path, or `/bs` for Finish. */
  readonly path: Path | '/bs';
  readonly accept?: number;
  readonly contentFormat?: number;
  readonly payload?: Uint8Array;
}

type Sent = { readonly ok: true; readonly response: CoapResponse } | { readonly ok: false; readonly result: SessionResult };

/** Runs the session to its end; never throws for protocol or device faults (store faults do). */
export async function runSession(ctx: SessionContext): Promise<SessionResult> {
  const { result, recorded } = await runSessionDeferred(ctx);
  await recorded;
  return result;
}

/**
 * runSession, except that the session's request records (one per request, group-committed,
 * store/group-commit.ts) may still be on their way when it resolves: `recorded` settles once
 * they are written, and rejects with the store's fault if one was not. The session does not wait
 * for each record before its next request, and the caller can queue the session's end into the
 * same group commit as its last record.
 */
export async function runSessionDeferred(ctx: SessionContext): Promise<{ result: SessionResult; recorded: Promise<void> }> {
  const records: Promise<unknown>[] = [];
  const record = (p: Promise<unknown>): void => {
    p.catch(() => undefined); // handled: `recorded` reports it
    records.push(p);
  };
  const result = await runSteps(ctx, record);
  return { result, recorded: Promise.all(records).then(() => undefined) };
}

async function runSteps(ctx: SessionContext, record: (p: Promise<unknown>) => void): Promise<SessionResult> {
  let credentialsSent = false;
  const end = (outcome: SessionOutcome, cause?: string, detail?: string): SessionResult => ({
    outcome,
    ...(cause !== undefined ? { cause } : {}),
    ...(detail !== undefined ? { detail } : {}),
    credentialsSent,
  });

  /** One request, recorded; a transport failure or abort becomes the session's result. */
  const send = async (ex: Exchange, handsOver: boolean): Promise<Sent> => {
    const startedAt = ctx.now();
    const payloadSize = ex.payload?.length ?? 0;
    const pathText = typeof ex.path === 'string' ? ex.path : formatPath(ex.path);
    const what = `${ex.method} ${pathText}`;
    if (handsOver) credentialsSent = true;
    try {
      const response = await ctx.node.request(ctx.peer, {
        method: ex.method,
        path: ex.path,
        ...(ex.accept !== undefined ? { accept: ex.accept } : {}),
        ...(ex.contentFormat !== undefined ? { contentFormat: ex.contentFormat } : {}),
        ...(ex.payload !== undefined ? { payload: ex.payload } : {}),
        timeoutMs: ctx.requestTimeoutMs,
        signal: ctx.signal,
      });
      const durationMs = ctx.now() - startedAt;
      record(ctx.store.sessions.addRequest(ctx.id, {
        method: ex.op,
        path: pathText,
        ...(ex.contentFormat !== undefined ? { contentFormat: ex.contentFormat } : {}),
        payloadSize,
        responseCode: response.code,
        responseSize: response.payload.length,
        startedAt,
        durationMs,
      }));
      ctx.log.debug('bootstrap request answered', { session: ctx.id, request: what, code: response.code, ms: durationMs });
      return { ok: true, response };
    } catch (e) {
      if (!(e instanceof CoapRequestError)) throw e;
      const durationMs = ctx.now() - startedAt;
      const aborted = ctx.signal.aborted ? abortCauseOf(ctx.signal) : undefined;
      const error = aborted ?? e.reason;
      record(ctx.store.sessions.addRequest(ctx.id, { method: ex.op, path: pathText, ...(ex.contentFormat !== undefined ? { contentFormat: ex.contentFormat } : {}), payloadSize, startedAt, durationMs, error }));
      if (aborted === 'superseded') return { ok: false, result: end('cancelled', 'superseded', `a new Bootstrap-Request from the device during ${what}`) };
      if (aborted !== undefined) return { ok: false, result: end('failure', aborted, `${aborted} during ${what}`) };
      const cause = e.reason === 'timeout' ? 'timeout' : e.reason === 'reset' ? 'reset' : e.reason === 'closed' ? 'shutdown' : 'transport';
      return { ok: false, result: end('failure', cause, `${what}: ${e.message}`) };
    }
  };

  // Discover and plan (unless planned before the 2.04).
  let steps = ctx.planned;
  let discover: BootstrapDiscover | undefined;
  if (!steps) {
    const d = await send({ method: 'GET', op: 'DISCOVER', path: [], accept: 40 }, false);
    if (!d.ok) return d.result;
    if (d.response.code === '2.05') {
      try {
        discover = parseBootstrapDiscover(d.response.payload);
      } catch (e) {
        ctx.log.warn('Bootstrap-Discover answer not understood; planning without it', { session: ctx.id, error: e instanceof Error ? e.message : String(e) });
      }
    } else {
      ctx.log.info('Bootstrap-Discover refused; planning without it', { session: ctx.id, code: d.response.code });
    }
    try {
      steps = planBootstrap({
        profile: ctx.profile,
        endpoint: ctx.endpoint,
        ...(ctx.pct !== undefined ? { pct: ctx.pct } : {}),
        ...(discover ? { discover } : {}),
        registration: ctx.registration,
        credentials: ctx.credentials,
      });
    } catch (e) {
      if (e instanceof PlanError) return end('failure', e.code, e.message);
      throw e;
    }
  }

  const formats = chooseContentFormat(ctx.profile, ctx.pct, discover?.lwm2mVersion);
  let formatIndex = 0;
  if (discover?.lwm2mVersion !== undefined || ctx.recordedContentFormat !== formats[0]) {
    await ctx.store.sessions.update(ctx.id, { contentFormat: formats[0]!, ...(discover?.lwm2mVersion ? { lwm2mVersion: discover.lwm2mVersion } : {}) });
  }

  for (const step of steps) {
    if (ctx.signal.aborted) {
      const cause = abortCauseOf(ctx.signal);
      return cause === 'superseded' ? end('cancelled', cause, 'a new Bootstrap-Request from the device') : end('failure', cause, `${cause} before ${describeStep(step)}`);
    }
    switch (step.kind) {
      case 'discover': {
        // The planner emits Discover only through planDiscover; kept for completeness.
        const r = await send({ method: 'GET', op: 'DISCOVER', path: step.path, accept: 40 }, false);
        if (!r.ok) return r.result;
        break;
      }
      case 'delete': {
        const r = await send({ method: 'DELETE', op: 'DELETE', path: step.path }, false);
        if (!r.ok) return r.result;
        if (r.response.code !== '2.02') ctx.log.info('Bootstrap-Delete answered with an error; continuing', { session: ctx.id, request: describeStep(step), code: r.response.code });
        break;
      }
      case 'read': {
        const r = await send({ method: 'GET', op: 'READ', path: step.path, accept: formats[formatIndex]! }, false);
        if (!r.ok) return r.result;
        break;
      }
      case 'write': {
        for (;;) {
          const cf = formats[formatIndex]!;
          let payload: Uint8Array;
          try {
            payload = codecFor(cf).encode(step.path, step.node);
          } catch (e) {
            if (!(e instanceof CodecError)) throw e;
            // Not representable in this format: try the next one as if the client had refused it.
            ctx.log.warn('write cannot be encoded in this format; trying the next', { session: ctx.id, request: describeStep(step), contentFormat: cf, error: e.message });
            if (++formatIndex >= formats.length) return end('failure', 'no_common_format', `${describeStep(step)} cannot be encoded in any format the client may accept`);
            continue;
          }
          // A Security write hands a server account over even without key material (nosec): once
          // sent, the device may hold it, and its credential must stay usable.
          const handsOver = step.secret || step.target === 'security' || step.target === 'bootstrapAccount';
          const r = await send({ method: 'PUT', op: 'WRITE', path: step.path, contentFormat: cf, payload }, handsOver);
          if (!r.ok) return r.result;
          const code = r.response.code;
          if (code === '2.04') break;
          if (code === '4.15') {
            if (++formatIndex >= formats.length) {
              return end('failure', 'no_common_format', `${describeStep(step)}: the client refused every format tried (${formats.join(', ')})`);
            }
            ctx.log.info('client refused the content format; retrying in the next', { session: ctx.id, request: describeStep(step), refused: cf, next: formats[formatIndex] });
            await ctx.store.sessions.update(ctx.id, { contentFormat: formats[formatIndex]! });
            continue;
          }
          return end('failure', 'write_refused', `${describeStep(step)} answered ${code}${diagnosticOf(r.response)}`);
        }
        break;
      }
      case 'finish': {
        const r = await send({ method: 'POST', op: 'FINISH', path: '/bs' }, false);
        if (!r.ok) return r.result;
        const code = r.response.code;
        if (code === '2.04') return end('success');
        if (code === '4.06') return end('failure', 'inconsistent_configuration', `Bootstrap-Finish answered 4.06: the client found the configuration inconsistent${diagnosticOf(r.response)}`);
        return end('failure', 'finish_refused', `Bootstrap-Finish answered ${code}${diagnosticOf(r.response)}`);
      }
    }
  }
  return end('failure', 'internal', 'the plan had no Finish');
}

function abortCauseOf(signal: AbortSignal): AbortCause {
  const r: unknown = signal.reason;
  return r instanceof SessionAbort ? r.abortCause : 'shutdown';
}

/** `: "text"` from a diagnostic payload (printable, shortened), or nothing. */
function diagnosticOf(r: CoapResponse): string {
  if (r.payload.length === 0 || r.payload.length > 200) return '';
  const text = r.payload.toString('utf8');
  return /^[\x20-\x7e]+$/.test(text) ? ` (${JSON.stringify(text)})` : '';
}
