/**
 * Bootstrap sessions and the requests sent in them: who, from where, with which security and
 * format, what was sent and answered, how it ended and why. Payloads are never stored (they
 * carry keys); only their sizes.
 */
import { randomInt } from 'node:crypto';
import type { Statement } from 'better-sqlite3';
import { toBytes } from '../util/bytes.js';
import type { StoreContext } from './context.js';
import { paging } from './context.js';
import { GroupCommit } from './group-commit.js';
import { sqliteCode, StoreError } from './errors.js';
import { endpointBytes } from './material.js';
import type {
  NewSession,
  NewSessionRequest,
  SessionDetail,
  SessionListOptions,
  SessionOutcome,
  SessionRecord,
  SessionRepository,
  SessionRequestRecord,
  SessionSecurity,
  SessionUpdate,
} from './types.js';

const SECURITIES: readonly SessionSecurity[] = ['nosec', 'psk', 'rpk', 'x509'];
const END_OUTCOMES: readonly SessionOutcome[] = ['success', 'failure', 'cancelled'];
const OUTCOMES: readonly SessionOutcome[] = ['running', ...END_OUTCOMES];
/** Device-supplied text (diagnostic payloads) ends up in `detail`: keep rows bounded. */
const MAX_TEXT = 1000;
const MAX_SHORT = 64;
/** Sessions whose next request number is kept in memory, at most (see SqliteSessions.#nextSeq). */
const MAX_TRACKED = 100_000;

export const INTERRUPTED_CAUSE = 'interrupted';

let idCounter = randomInt(0x100000);

/**
 * A new session id: 16 hex digits, 11 of the clock (ms) then 5 of a counter, so ids grow with
 * time. Sessions and their request records are keyed by the id: in a storm, time-ordered ids
 * append to those B-trees where random ones dirty a page each, which halves the cost of a group
 * commit of session writes (measured). Unique within this process (the counter wraps after
 * 2^20 ids, never within one millisecond at any real rate); it starts at a random value and
 * start() takes another id on the rare clash with a session of another process.
 */
function newSessionId(): string {
  idCounter = (idCounter + 1) & 0xfffff;
  return Date.now().toString(16).padStart(11, '0').slice(-11) + idCounter.toString(16).padStart(5, '0');
}

interface SessionRow {
  id: string;
  endpoint: Buffer | null;
  peer: string;
  security: SessionSecurity;
  profile: string | null;
  lwm2m_version: string | null;
  preferred_format: number | null;
  content_format: number | null;
  started_at: number;
  ended_at: number | null;
  outcome: SessionOutcome;
  failure_cause: string | null;
  failure_detail: string | null;
  request_count: number;
}

interface RequestRow {
  seq: number;
  method: string;
  path: string;
  content_format: number | null;
  payload_size: number;
  response_code: string | null;
  response_size: number | null;
  started_at: number;
  duration_ms: number | null;
  error: string | null;
}

const SELECT = `SELECT s.id, s.endpoint, s.peer, s.security, s.profile, s.lwm2m_version, s.preferred_format, s.content_format,
       s.started_at, s.ended_at, s.outcome, s.failure_cause, s.failure_detail,
       (SELECT count(*) FROM session_requests r WHERE r.session_id = s.id) AS request_count
  FROM sessions s`;

const toSession = (r: SessionRow): SessionRecord => ({
  id: r.id,
  endpoint: r.endpoint,
  peer: r.peer,
  security: r.security,
  profile: r.profile,
  lwm2mVersion: r.lwm2m_version,
  preferredFormat: r.preferred_format,
  contentFormat: r.content_format,
  startedAt: r.started_at,
  endedAt: r.ended_at,
  outcome: r.outcome,
  failureCause: r.failure_cause,
  failureDetail: r.failure_detail,
  requestCount: r.request_count,
});

const toRequest = (r: RequestRow): SessionRequestRecord => ({
  seq: r.seq,
  method: r.method,
  path: r.path,
  contentFormat: r.content_format,
  payloadSize: r.payload_size,
  responseCode: r.response_code,
  responseSize: r.response_size,
  startedAt: r.started_at,
  durationMs: r.duration_ms,
  error: r.error,
});

function clip(v: string | undefined, max: number): string | null {
  if (v === undefined) return null;
  return v.length > max ? `${v.slice(0, max - 3)}...` : v;
}

function optInt(field: string, v: number | undefined, min = 0): number | null {
  if (v === undefined) return null;
  if (!Number.isInteger(v) || v < min) throw new StoreError('invalid', `${field} must be an integer >= ${min}, got ${String(v)}`, field);
  return v;
}

function text(field: string, v: unknown, max: number): string {
  if (typeof v !== 'string' || v === '') throw new StoreError('invalid', `${field} must be a non-empty string`, field);
  if (v.length > max) throw new StoreError('invalid', `${field} is longer than ${max} characters`, field);
  return v;
}

type InsertSession = [string, Buffer | null, string, SessionSecurity, string | null, string | null, number | null, number | null, number];
type InsertRequestSeq = [string, number, string, string, number | null, number, string | null, number | null, number, number | null, string | null];
type InsertRequest = [
  string,
  string,
  string,
  number | null,
  number,
  string | null,
  number | null,
  number,
  number | null,
  string | null,
  string,
];

export class SqliteSessions implements SessionRepository {
  readonly #ctx: StoreContext;
  readonly #insert: Statement<InsertSession>;
  readonly #update: Statement<[string | null, string | null, number | null, string]>;
  readonly #exists: Statement<[string], { outcome: SessionOutcome }>;
  readonly #addRequest: Statement<InsertRequest, { seq: number }>;
  readonly #addRequestSeq: Statement<InsertRequestSeq>;
  readonly #finish: Statement<[SessionOutcome, number, string | null, string | null, string]>;
  readonly #get: Statement<[string], SessionRow>;
  readonly #requests: Statement<[string], RequestRow>;
  readonly #markAll: Statement<[number, string]>;
  readonly #markBefore: Statement<[number, string, number]>;
  readonly #prune: Statement<[number]>;
  readonly #lists = new Map<string, Statement<unknown[], SessionRow>>();
  readonly #group: GroupCommit;
  /**
   * The next request number of the sessions this process started and has not finished yet, so a
   * request record is a plain INSERT (a sixth of the cost of computing max(seq) + 1 in SQL). Only
   * the server that runs a session writes its requests; a session not found here (started by
   * another process, or forgotten after MAX_TRACKED), or whose next number another connection
   * took, falls back to the SQL computation.
   */
  readonly #nextSeq = new Map<string, number>();

  constructor(ctx: StoreContext) {
    this.#ctx = ctx;
    const db = ctx.db;
    this.#group = GroupCommit.for(ctx);
    this.#insert = db.prepare(
      `INSERT INTO sessions (id, endpoint, peer, security, profile, lwm2m_version, preferred_format, content_format, started_at, outcome)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'running')`,
    );
    this.#update = db.prepare(
      `UPDATE sessions SET profile = coalesce(?, profile), lwm2m_version = coalesce(?, lwm2m_version),
                           content_format = coalesce(?, content_format) WHERE id = ?`,
    );
    this.#exists = db.prepare('SELECT outcome FROM sessions WHERE id = ?');
    // seq = next number within the session, computed in the same statement (no read-then-write race).
    this.#addRequest = db.prepare(
      `INSERT INTO session_requests (session_id, seq, method, path, content_format, payload_size, response_code, response_size,
                                     started_at, duration_ms, error)
       SELECT ?, coalesce(max(seq), 0) + 1, ?, ?, ?, ?, ?, ?, ?, ?, ? FROM session_requests WHERE session_id = ?
       RETURNING seq`,
    );
    this.#addRequestSeq = db.prepare(
      `INSERT INTO session_requests (session_id, seq, method, path, content_format, payload_size, response_code, response_size,
                                     started_at, duration_ms, error)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.#finish = db.prepare(
      "UPDATE sessions SET outcome = ?, ended_at = ?, failure_cause = ?, failure_detail = ? WHERE id = ? AND outcome = 'running'",
    );
    this.#get = db.prepare(`${SELECT} WHERE s.id = ?`);
    this.#requests = db.prepare(
      `SELECT seq, method, path, content_format, payload_size, response_code, response_size, started_at, duration_ms, error
         FROM session_requests WHERE session_id = ? ORDER BY seq`,
    );
    const mark = `UPDATE sessions SET outcome = 'failure', ended_at = ?, failure_cause = '${INTERRUPTED_CAUSE}', failure_detail = ?
                   WHERE outcome = 'running'`;
    this.#markAll = db.prepare(mark);
    this.#markBefore = db.prepare(`${mark} AND started_at < ?`);
    this.#prune = db.prepare("DELETE FROM sessions WHERE outcome <> 'running' AND started_at < ?");
  }

  async start(s: NewSession): Promise<SessionRecord> {
    this.#ctx.check();
    const generatedId = s.id === undefined;
    let id = generatedId ? newSessionId() : text('id', s.id, MAX_SHORT);
    const endpoint = s.endpoint === undefined ? null : endpointBytes(s.endpoint);
    const peer = text('peer', s.peer, 256);
    if (!SECURITIES.includes(s.security)) {
      throw new StoreError('invalid', `security must be one of ${SECURITIES.join(', ')}, got ${JSON.stringify(s.security)}`, 'security');
    }
    const startedAt = optInt('startedAt', s.startedAt) ?? this.#ctx.now();
    const params: InsertSession = [
      id,
      endpoint,
      peer,
      s.security,
      clip(s.profile, 256),
      clip(s.lwm2mVersion, MAX_SHORT),
      optInt('preferredFormat', s.preferredFormat),
      optInt('contentFormat', s.contentFormat),
      startedAt,
    ];
    // Group-committed (group-commit.ts): resolves once the row is written. The record is the row
    // just inserted, so it is built here rather than read back.
    id = await this.#group.run(() => {
      for (let attempt = 0; ; attempt++) {
        try {
          this.#insert.run(...params);
          return params[0];
        } catch (e) {
          if (sqliteCode(e) !== 'SQLITE_CONSTRAINT_PRIMARYKEY') throw e;
          if (!generatedId || attempt >= 3) {
            throw new StoreError('duplicate', `bootstrap session ${JSON.stringify(params[0])} already exists`, 'id', undefined, { cause: e });
          }
          params[0] = newSessionId();
        }
      }
    });
    if (this.#nextSeq.size >= MAX_TRACKED) this.#nextSeq.clear();
    this.#nextSeq.set(id, 1);
    return {
      id,
      endpoint,
      peer,
      security: s.security,
      profile: params[4],
      lwm2mVersion: params[5],
      preferredFormat: params[6],
      contentFormat: params[7],
      startedAt,
      endedAt: null,
      outcome: 'running',
      failureCause: null,
      failureDetail: null,
      requestCount: 0,
    };
  }

  async update(id: string, patch: SessionUpdate): Promise<void> {
    this.#ctx.check();
    const params = [clip(patch.profile, 256), clip(patch.lwm2mVersion, MAX_SHORT), optInt('contentFormat', patch.contentFormat), id] as const;
    const changes = await this.#group.run(() => this.#update.run(...params).changes);
    if (changes === 0) throw notFound(id);
  }

  async addRequest(sessionId: string, q: NewSessionRequest): Promise<number> {
    this.#ctx.check();
    const method = text('method', q.method, 32);
    const path = text('path', q.path, 256);
    const payloadSize = optInt('payloadSize', q.payloadSize);
    if (payloadSize === null) throw new StoreError('invalid', 'payloadSize is required', 'payloadSize');
    const contentFormat = optInt('contentFormat', q.contentFormat);
    const responseCode = clip(q.responseCode, 16);
    const responseSize = optInt('responseSize', q.responseSize);
    const startedAt = optInt('startedAt', q.startedAt) ?? this.#ctx.now();
    const durationMs = optInt('durationMs', q.durationMs);
    const error = clip(q.error, MAX_TEXT);
    // One statement: group-committed with the other request records of this turn (a storm of
    // sessions writes several each), see group-commit.ts. The number is taken now, in call order.
    const seq = this.#nextSeq.get(sessionId);
    if (seq !== undefined) this.#nextSeq.set(sessionId, seq + 1);
    return this.#group.run(() => {
      try {
        if (seq !== undefined) {
          try {
            this.#addRequestSeq.run(sessionId, seq, method, path, contentFormat, payloadSize, responseCode, responseSize, startedAt, durationMs, error);
            return seq;
          } catch (e) {
            // Another connection recorded a request of this session: number from the table from now on.
            if (sqliteCode(e) !== 'SQLITE_CONSTRAINT_PRIMARYKEY') throw e;
            this.#nextSeq.delete(sessionId);
          }
        }
        return this.#addRequest.get(sessionId, method, path, contentFormat, payloadSize, responseCode, responseSize, startedAt, durationMs, error, sessionId)!.seq;
      } catch (e) {
        if (sqliteCode(e) === 'SQLITE_CONSTRAINT_FOREIGNKEY') throw notFound(sessionId, e);
        throw e;
      }
    });
  }

  async finish(id: string, outcome: Exclude<SessionOutcome, 'running'>, cause?: string, detail?: string): Promise<boolean> {
    this.#ctx.check();
    if (!END_OUTCOMES.includes(outcome)) {
      throw new StoreError('invalid', `outcome must be one of ${END_OUTCOMES.join(', ')}, got ${JSON.stringify(outcome)}`, 'outcome');
    }
    const params = [outcome, this.#ctx.now(), clip(cause, MAX_SHORT), clip(detail, MAX_TEXT), id] as const;
    // Group-committed with the other writes of this turn (group-commit.ts).
    const changes = await this.#group.run(() => this.#finish.run(...params).changes);
    this.#nextSeq.delete(id);
    if (changes === 1) return true;
    if (!this.#exists.get(id)) throw notFound(id);
    return false;
  }

  async get(id: string): Promise<SessionDetail | undefined> {
    this.#ctx.check();
    const row = this.#get.get(id);
    if (!row) return undefined;
    return { ...toSession(row), requests: this.#requests.all(id).map(toRequest) };
  }

  async list(options: SessionListOptions = {}): Promise<SessionRecord[]> {
    this.#ctx.check();
    const { limit, offset } = paging(options.limit, options.offset, 100);
    if (options.outcome !== undefined && !OUTCOMES.includes(options.outcome)) {
      throw new StoreError('invalid', `outcome must be one of ${OUTCOMES.join(', ')}, got ${JSON.stringify(options.outcome)}`, 'outcome');
    }
    const where: string[] = [];
    const params: unknown[] = [];
    if (options.endpoint !== undefined) {
      where.push('s.endpoint = ?');
      params.push(toBytes(options.endpoint));
    }
    if (options.outcome !== undefined) {
      where.push('s.outcome = ?');
      params.push(options.outcome);
    }
    const key = where.join(' AND ');
    let stmt = this.#lists.get(key);
    if (!stmt) {
      stmt = this.#ctx.db.prepare(`${SELECT} ${where.length ? `WHERE ${key}` : ''} ORDER BY s.started_at DESC, s.id LIMIT ? OFFSET ?`);
      this.#lists.set(key, stmt);
    }
    return stmt.all(...params, limit, offset).map(toSession);
  }

  async markInterrupted(before?: number): Promise<number> {
    this.#ctx.check();
    const detail = 'the server stopped while this session was running';
    const now = this.#ctx.now();
    return (before === undefined ? this.#markAll.run(now, detail) : this.#markBefore.run(now, detail, before)).changes;
  }

  async prune(before: number): Promise<number> {
    this.#ctx.check();
    return this.#prune.run(before).changes;
  }
}

function notFound(id: string, cause?: unknown): StoreError {
  return new StoreError('not_found', `bootstrap session ${JSON.stringify(id)} does not exist`, 'sessionId', undefined, { cause });
}
