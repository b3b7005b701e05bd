/**
 * History retention: ended bootstrap sessions (with their request logs) and registration events
 * older than `keepDays` are deleted - at start and then every hour, so the database does not grow
 * without bound on a busy server. Registrations, devices, credentials, profiles and keys are never
 * touched; a running session is never pruned. `keepDays` null keeps everything.
 */
import type { Logger } from '../util/log.js';
import type { Store } from './types.js';

const DAY_MS = 86_400_000;
export const PRUNE_INTERVAL_MS = 3_600_000;

export interface Retention {
  /** Prunes now; resolves with what was deleted. */
  pruneNow(): Promise<{ sessions: number; events: number }>;
  /** Stops the timer; resolves when a prune under way has finished (call before closing the store). */
  stop(): Promise<void>;
}

export function startRetention(store: Store, keepDays: number | null, log: Logger, now: () => number = Date.now): Retention {
  let running: Promise<{ sessions: number; events: number }> | undefined;
  const pruneNow = (): Promise<{ sessions: number; events: number }> =>
    (running ??= (async () => {
      try {
        if (keepDays === null) return { sessions: 0, events: 0 };
        const before = now() - keepDays * DAY_MS;
        const sessions = await store.sessions.prune(before);
        const events = await store.registry.pruneEvents(before);
        if (sessions + events > 0) log.info('pruned history', { keepDays, sessions, events, before: new Date(before).toISOString() });
        return { sessions, events };
      } finally {
        running = undefined;
      }
    })());
  const run = (): void => {
    pruneNow().catch((e: unknown) => log.error('could not prune history', { error: e instanceof Error ? e.message : String(e) }));
  };
  const timer = keepDays === null ? undefined : setInterval(run, PRUNE_INTERVAL_MS);
  timer?.unref();
  if (keepDays !== null) run();
  return {
    pruneNow,
    stop: async () => {
      clearInterval(timer);
      await running?.catch(() => undefined);
    },
  };
}
