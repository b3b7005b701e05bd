import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig, mergeJson, parseListen } from '../../src/config/config.js';

describe('config', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'lwbs-config-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const write = (name: string, body: unknown): string => {
    const f = join(dir, name);
    writeFileSync(f, typeof body === 'string' ? body : JSON.stringify(body));
    return f;
  };

  it('loads the shipped defaults (design.md ports, ./data)', () => {
    const c = loadConfig({ cwd: dir, env: {} });
    expect(c.dataDir).to.equal(join(dir, 'data'));
    expect(c.bootstrap.coap).to.deep.equal({ host: '0.0.0.0', port: 5683 });
    expect(c.bootstrap.coaps).to.deep.equal({ host: '0.0.0.0', port: 5684 });
    expect(c.registration.coap).to.deep.equal({ host: '0.0.0.0', port: 5783 });
    expect(c.registration.coaps).to.deep.equal({ host: '0.0.0.0', port: 5784 });
    expect(c.history).to.deep.equal({ keepDays: 90 });
  });

  it('history.keepDays: whole days, or null to keep everything', () => {
    expect(loadConfig({ cwd: dir, file: write('h1.json', { history: { keepDays: 7 } }), env: {} }).history).to.deep.equal({ keepDays: 7 });
    expect(loadConfig({ cwd: dir, file: write('h2.json', { history: { keepDays: null } }), env: {} }).history).to.deep.equal({ keepDays: null });
    for (const bad of [0, 1.5, -3, '30', 40_000]) {
      expect(() => loadConfig({ cwd: dir, file: write('h3.json', { history: { keepDays: bad } }), env: {} }), String(bad)).to.throw(ConfigError, /history\.keepDays/);
    }
    expect(() => loadConfig({ cwd: dir, file: write('h4.json', { history: { keep: 3 } }), env: {} })).to.throw(ConfigError, /unknown config field "history\.keep"/);
  });

  it('merges a user file, then the environment, then --data', () => {
    const f = write('a.json', { dataDir: '/srv/lwbs', bootstrap: { coap: '127.0.0.1:15683', coaps: null } });
    const c = loadConfig({ cwd: dir, file: f, env: {} });
    expect(c.dataDir).to.equal('/srv/lwbs');
    expect(c.bootstrap.coap).to.deep.equal({ host: '127.0.0.1', port: 15683 });
    expect(c.bootstrap.coaps).to.equal(null);
    expect(c.registration.coap?.port).to.equal(5783);
    expect(loadConfig({ cwd: dir, file: f, env: { LWBS_DATA_DIR: '/env' } }).dataDir).to.equal('/env');
    expect(loadConfig({ cwd: dir, file: f, env: { LWBS_DATA_DIR: '/env' }, dataDir: 'rel' }).dataDir).to.equal(join(dir, 'rel'));
  });

  it('refuses bad files with a message naming the field', () => {
    const cases: Array<[unknown, RegExp]> = [
      [{ bootstrap: { coap: 'localhost' } }, /bootstrap\.coap/],
      [{ bootstrap: { coap: '1.2.3.4:70000' } }, /bootstrap\.coap: port 70000/],
      [{ registration: { publicUri: { coap: 'http://x' } } }, /registration\.publicUri\.coap/],
      [{ dataDir: 5 }, /dataDir/],
      [{ log: { level: 'loud' } }, /log\.level/],
      [{ dataDri: 'x' }, /unknown config field "dataDri"/],
      [{ objectDirs: 'x' }, /objectDirs/],
    ];
    for (const [body, re] of cases) {
      const f = write('bad.json', body);
      expect(() => loadConfig({ cwd: dir, file: f, env: {} }), JSON.stringify(body)).to.throw(ConfigError, re);
    }
    expect(() => loadConfig({ cwd: dir, file: write('x.json', '{nope'), env: {} })).to.throw(ConfigError, /not valid JSON/);
    expect(() => loadConfig({ cwd: dir, file: join(dir, 'missing.json'), env: {} })).to.throw(ConfigError, /cannot read/);
  });

  it('parses listen addresses incl. IPv6 and disabled listeners', () => {
    expect(parseListen('x', '[::1]:5683')).to.deep.equal({ host: '::1', port: 5683 });
    expect(parseListen('x', null)).to.equal(null);
    expect(parseListen('x', '')).to.equal(null);
    expect(() => parseListen('x', 5683)).to.throw(ConfigError, /^x must be/);
  });

  it('deep-merges objects and replaces arrays', () => {
    expect(mergeJson({ a: { b: 1, c: 2 }, l: [1, 2] }, { a: { c: 3 }, l: [9] })).to.deep.equal({ a: { b: 1, c: 3 }, l: [9] });
  });
});
