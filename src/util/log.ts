/**
 * Structured logs: one JSON object per line (`{"t":"2026-11-22T10:00:00.000Z","level":"info",
 * "msg":"bootstrap finished","ep":"urn:imei:1","session":"...",...}`), so operators can feed them to
 * any log pipeline and grep them as text. Field values are what the caller passes: callers pass
 * endpoint names and identities through `describeBytes`, and never pass secrets (the `Secret`
 * class prints as `[secret]` should one slip through).
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

const RANK: Readonly<Record<LogLevel, number>> = { debug: 10, info: 20, warn: 30, error: 40 };

export type LogFields = Readonly<Record<string, string | number | boolean | null | undefined>>;

export interface Logger {
  readonly level: LogLevel;
  enabled(level: LogLevel): boolean;
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger that adds `fields` to every line. */
  child(fields: LogFields): Logger;
}

export interface LogSink {
  write(line: string): unknown;
}

class JsonLogger implements Logger {
  constructor(
    readonly level: LogLevel,
    private readonly sink: LogSink,
    private readonly base: LogFields,
    private readonly clock: () => number,
  ) {}

  enabled(level: LogLevel): boolean {
    return RANK[level] >= RANK[this.level];
  }

  private log(level: LogLevel, msg: string, fields?: LogFields): void {
    if (!this.enabled(level)) return;
    const line: Record<string, unknown> = { t: new Date(this.clock()).toISOString(), level, msg };
    for (const src of [this.base, fields]) {
      if (!src) continue;
      for (const [k, v] of Object.entries(src)) if (v !== undefined) line[k] = v;
    }
    this.sink.write(`${JSON.stringify(line)}\n`);
  }

  debug(msg: string, fields?: LogFields): void {
    this.log('debug', msg, fields);
  }
  info(msg: string, fields?: LogFields): void {
    this.log('info', msg, fields);
  }
  warn(msg: string, fields?: LogFields): void {
    this.log('warn', msg, fields);
  }
  error(msg: string, fields?: LogFields): void {
    this.log('error', msg, fields);
  }
  child(fields: LogFields): Logger {
    return new JsonLogger(this.level, this.sink, { ...this.base, ...fields }, this.clock);
  }
}

/** JSON-lines logger writing to `sink` (default: standard error). */
export function createLogger(opts: { level?: LogLevel; sink?: LogSink; clock?: () => number } = {}): Logger {
  return new JsonLogger(opts.level ?? 'info', opts.sink ?? process.stderr, {}, opts.clock ?? Date.now);
}

/** Discards everything (library default, tests). */
export const silentLogger: Logger = createLogger({ level: 'error', sink: { write: () => true } });

/** Collects lines in memory (tests): `lines` holds the parsed objects. */
export function memoryLogger(level: LogLevel = 'debug'): Logger & { readonly lines: Record<string, unknown>[]; readonly text: () => string } {
  const raw: string[] = [];
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({
    level,
    sink: {
      write: (l: string) => {
        raw.push(l);
        lines.push(JSON.parse(l) as Record<string, unknown>);
        return true;
      },
    },
  });
  return Object.assign(logger, { lines, text: () => raw.join('') });
}
