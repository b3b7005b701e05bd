import { expect } from 'chai';
import { startRetention } from '../../src/store/retention.js';
import type { SqliteStore } from '../../src/store/store.js';
import { memoryLogger } from '../../src/util/log.js';
import { Clock, open, removeDir, tempDir } from './support.js';

const DAY = 86_400_000;

describe('store/retention: history pruning', () => {
  let dir: string;
  let store: SqliteStore;
  const clock = new Clock();
  beforeEach(async () => {
    dir = tempDir('lwbs-retention-');
    clock.t = 100 * DAY;
    store = await open(dir, { now: clock.now });
  });
  afterEach(async () => {
    await store.close();
    removeDir(dir);
  });

  async function seed(): Promise<void> {
    const old = await store.sessions.start({ id: 'old', peer: 'p', security: 'nosec', startedAt: clock.t - 40 * DAY });
    await store.sessions.finish(old.id, 'success');
    await store.sessions.start({ id: 'old-running', peer: 'p', security: 'nosec', startedAt: clock.t - 40 * DAY });
    const recent = await store.sessions.start({ id: 'recent', peer: 'p', security: 'nosec', startedAt: clock.t - 2 * DAY });
    await store.sessions.finish(recent.id, 'failure', 'timeout');
    clock.t -= 40 * DAY;
    await store.registry.recordEvent({ kind: 'refused', peer: '10.0.0.1:5683', detail: 'old' });
    clock.t += 38 * DAY;
    await store.registry.recordEvent({ kind: 'refused', peer: '10.0.0.1:5683', detail: 'recent' });
    clock.t += 2 * DAY;
  }

  it('deletes ended sessions and registration events older than keepDays, keeps running sessions and newer history', async () => {
    await seed();
    const log = memoryLogger('info');
    const r = startRetention(store, 30, log, clock.now);
    expect(await r.pruneNow()).to.deep.equal({ sessions: 1, events: 1 });
    await r.stop();
    expect((await store.sessions.list()).map((s) => s.id).sort()).to.deep.equal(['old-running', 'recent']);
    expect((await store.registry.events()).map((e) => e.detail)).to.deep.equal(['recent']);
    expect(log.lines.some((l) => l.msg === 'pruned history' && l.sessions === 1 && l.events === 1)).to.equal(true);
  });

  it('keepDays null keeps everything', async () => {
    await seed();
    const r = startRetention(store, null, memoryLogger('info'), clock.now);
    expect(await r.pruneNow()).to.deep.equal({ sessions: 0, events: 0 });
    await r.stop();
    expect(await store.sessions.list()).to.have.length(3);
    expect(await store.registry.events()).to.have.length(2);
  });
});
