/**
 * The `lwbs` command as a user runs it: a real process, real exit codes and output.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../../src/util/package-root.js';

const bin = join(packageRoot(), 'bin', 'lwbs.js');

function lwbs(...args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 20_000, env: { ...process.env, LWBS_DATA_DIR: '' } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('cli', function () {
  this.timeout(30_000);
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'lwbs-cli-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('lists every content format in numeric order', () => {
    const r = lwbs('formats');
    expect(r.code).to.equal(0);
    const numbers = r.out.trim().split('\n').map((l) => Number(l.trim().split(/\s+/)[0]));
    expect(numbers).to.deep.equal([0, 40, 42, 60, 110, 112, 1542, 1543, 11542, 11543, 11544]);
  });

  it('lists the shipped objects, as text and JSON', () => {
    const r = lwbs('objects', 'list', '--json');
    expect(r.code).to.equal(0);
    const rows = JSON.parse(r.out) as Array<{ id: number; versions: string[] }>;
    expect(rows.map((x) => x.id)).to.deep.equal([0, 1, 2, 3, 4, 5, 21]);
    expect(rows.find((x) => x.id === 21)?.versions).to.deep.equal(['1.1', '2.0']);
    expect(lwbs('objects', 'show', '1').out).to.match(/\n\s+1\s+Lifetime\s+RW\s+S M integer/);
  });

  it('decodes a TLV payload with resource names from the model', () => {
    // formats.md 3.5(a), first resources of the Device instance
    const r = lwbs('decode', '-f', 'tlv', '-p', '/3/0', '--hex', 'C8 00 14 4F 70 65 6E 20 4D 6F 62 69 6C 65 20 41 6C 6C 69 61 6E 63 65 86 06 41 00 01 41 01 05');
    expect(r.code).to.equal(0);
    expect(r.out).to.match(/^\/3\/0\/0\s+Manufacturer\s+string\s+Open Mobile Alliance$/m);
    expect(r.out).to.match(/^\/3\/0\/6\/1\s+Available Power Sources\s+integer\s+5$/m);
  });

  it('decodes composite SenML at the root and link-format, and reads a payload file', () => {
    const f = join(dir, 'pack.json');
    writeFileSync(f, '[{"bn":"/0/1/","n":"0","vs":"coap://x"},{"bn":"/1/0/","n":"1","v":300}]');
    const r = lwbs('decode', '-f', '110', '--file', f, '--json');
    expect(r.code).to.equal(0);
    expect(JSON.parse(r.out)).to.deep.equal([
      { path: '/0/1/0', value: { type: 'string', value: 'coap://x' } },
      { path: '/1/0/1', value: { type: 'integer', value: 300 } },
    ]);
    const l = lwbs('decode', '-f', 'link-format', '--text', '</1/0>,</3/0>', '--json');
    expect(JSON.parse(l.out)).to.have.length(2);
  });

  it('answers bad payloads with exit 1 and a one-line reason', () => {
    const r = lwbs('decode', '-f', 'tlv', '-p', '/3/0', '--hex', 'C8 00 14 4F');
    expect(r.code).to.equal(1);
    expect(r.err.trim()).to.match(/^lwbs: tlv: .*past the end/);
  });

  it('answers usage errors with exit 2', () => {
    expect(lwbs('decode', '-f', 'nope', '--hex', '00').code).to.equal(2);
    expect(lwbs('decode', '--hex', '00').code).to.equal(2);
    expect(lwbs('decode', '-f', 'tlv', '-p', '/3/0', '--hex', 'zz').code).to.equal(2);
    expect(lwbs('objects', 'show', 'x').code).to.equal(2);
    expect(lwbs('no-such-command').code).to.equal(2);
    expect(lwbs('--help').code).to.equal(0);
  });

  it('serve checks the configuration and names a bad field', () => {
    const cfg = join(dir, 'bad.json');
    writeFileSync(cfg, JSON.stringify({ bootstrap: { coap: 'nowhere' } }));
    const r = lwbs('--data', join(dir, 'data'), 'serve', '--config', cfg);
    expect(r.code).to.equal(1);
    expect(r.err).to.match(/bootstrap\.coap must be "host:port"/);
  });
});
