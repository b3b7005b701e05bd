/** `lwbs profile ...` as a user runs it: a real process on a temp data directory. */
import { expect } from 'chai';
import { existsSync } from 'node:fs';
import { parseProfileText, profileToJson, profileWarnings, ProfileError, type Profile } from '../../src/bootstrap/profile.js';
import { CLIENT_CERT_PEM, CLIENT_KEY_PEM, SERVER_CERT_PEM } from '../bootstrap/fixtures.js';
import { CliSandbox } from './support.js';

const PSK_SECRET = 'a1b2c3d4e5f60718293a4b5c6d7e8f90';

const METERS = {
  name: 'meters',
  description: 'electricity meters',
  match: ['urn:imei:35*'],
  delete: ['/0', '/1', '/2'],
  contentFormat: 'auto',
  servers: [
    { shortServerId: 1, handOff: true, lifetime: 300, binding: 'U', defaultMinPeriod: 1, defaultMaxPeriod: 60, security: { mode: 'psk' } },
    { shortServerId: 2, uri: 'coaps://dm.example.com:5684', lifetime: 600, binding: 'UQ', security: { mode: 'psk', identity: 'meters-dm', key: PSK_SECRET } },
    {
      shortServerId: 3,
      uri: 'coaps://x509.example.com',
      security: { mode: 'x509', certificate: CLIENT_CERT_PEM, privateKey: CLIENT_KEY_PEM, serverCertificate: SERVER_CERT_PEM },
    },
  ],
  acl: [{ objectId: 3, instanceId: 0, rights: { '1': 'RWE', default: 'R' }, owner: 1 }],
};

/** Every form a secret of METERS may take in output: the PSK, the private key as hex and as base64. */
function secretsOf(p: Profile): string[] {
  const x509 = p.servers[2]!.security;
  if (x509.mode !== 'x509') throw new Error('fixture: server 3 must be x509');
  const pkcs8 = Buffer.from(x509.privateKey.reveal());
  return [PSK_SECRET, pkcs8.toString('hex'), pkcs8.toString('base64')];
}

function expectNoSecret(text: string, secrets: readonly string[]): void {
  for (const s of secrets) expect(text, 'a secret leaked').not.to.include(s);
}

describe('cli: lwbs profile', function () {
  this.timeout(60_000);
  let box: CliSandbox;
  let text: string;
  let file: string;
  let parsed: Profile;
  let secrets: string[];

  before(() => {
    box = new CliSandbox();
    text = JSON.stringify(METERS, null, 2);
    file = box.file('meters.json', text);
    parsed = parseProfileText(text);
    secrets = secretsOf(parsed);
  });
  after(() => box.remove());

  it('imports: created, unchanged, updated to version 2; warnings on stderr; stored form re-parses to an equal profile', async () => {
    const warnings = profileWarnings(parsed);
    expect(warnings, 'fixture should trigger warnings').to.not.be.empty;

    const first = box.run(['profile', 'import', file]);
    expect(first.code, first.err).to.equal(0);
    expect(first.out).to.match(/created profile meters \(version 1\)/);
    for (const w of warnings) expect(first.err).to.include(w);

    const again = box.run(['profile', 'import', file]);
    expect(again.code, again.err).to.equal(0);
    expect(again.out).to.match(/profile meters unchanged \(version 1\)/);

    const changed = { ...METERS, servers: [{ ...METERS.servers[0]!, lifetime: 301 }, ...METERS.servers.slice(1)] };
    const changedText = JSON.stringify(changed);
    const third = box.run(['profile', 'import', box.file('meters-2.json', changedText)]);
    expect(third.code, third.err).to.equal(0);
    expect(third.out).to.match(/updated profile meters to version 2/);

    for (const r of [first, again, third]) expectNoSecret(r.out + r.err, secrets);

    await box.withStore(async (store) => {
      const rec = await store.profiles.get('meters');
      expect(rec?.version).to.equal(2);
      const stored = parseProfileText(rec!.document);
      const want = parseProfileText(changedText);
      expect(stored).to.deep.equal(want);
      // Secrets are private fields that deep-equal cannot see: compare the revealed forms too.
      expect(profileToJson(stored, { revealSecrets: true })).to.deep.equal(profileToJson(want, { revealSecrets: true }));
      expect(stored.servers[0]!.lifetime).to.equal(301);
    });
  });

  it('imports from standard input under another --name', async () => {
    const r = box.run(['profile', 'import', '-', '--name', 'meters-copy'], { input: text });
    expect(r.code, r.err).to.equal(0);
    expect(r.out).to.match(/created profile meters-copy \(version 1\)/);
    await box.withStore(async (store) => {
      const rec = await store.profiles.get('meters-copy');
      expect(parseProfileText(rec!.document).name).to.equal('meters-copy');
      expect(profileToJson(parseProfileText(rec!.document), { revealSecrets: true })).to.deep.equal({
        ...profileToJson(parsed, { revealSecrets: true }),
        name: 'meters-copy',
      });
    });
  });

  it('validate lists every problem with its field and exits 1; a good file exits 0; no store is touched', () => {
    const v = new CliSandbox();
    try {
      const bad = {
        name: 'Bad Name',
        contentFormat: 'xml',
        delete: ['/3'],
        servers: [
          { shortServerId: 0, uri: 'http://x', security: { mode: 'nosec' } },
          { shortServerId: 2, handOff: true, lifetiem: 5, security: { mode: 'nosec' } },
          { shortServerId: 3, uri: 'coaps://a', security: { mode: 'psk', identity: 'i', key: 'zz' } },
        ],
      };
      const badText = JSON.stringify(bad);
      let issues: readonly { path: string; message: string }[] = [];
      try {
        parseProfileText(badText);
      } catch (e) {
        issues = (e as ProfileError).issues;
      }
      expect(issues.length, 'fixture should have many problems').to.be.greaterThan(4);
      const r = v.run(['profile', 'validate', v.file('bad.json', badText)]);
      expect(r.code).to.equal(1);
      for (const i of issues) expect(r.err).to.include(`${i.path}: ${i.message}`);
      for (const f of ['name', 'contentFormat', 'delete[0]', 'servers[0].shortServerId', 'servers[0].uri', 'servers[2].security.key', 'servers[1].lifetiem']) {
        expect(r.err).to.match(new RegExp(`^\\S*bad\\.json: ${f.replace(/[.[\]]/g, '\\$&')}: `, 'm'));
      }
      expect(r.err).to.include(`invalid profile (${issues.length} problems)`);

      const syntax = v.run(['profile', 'validate', v.file('syntax.json', '{"name": "x",')]);
      expect(syntax.code).to.equal(1);
      expect(syntax.err).to.match(/profile: not valid JSON/);

      const good = v.run(['profile', 'validate', v.file('good.json', text)]);
      expect(good.code, good.err).to.equal(0);
      expect(good.out).to.match(/profile meters is valid/);
      expectNoSecret(good.out + good.err, secrets);

      const missing = v.run(['profile', 'validate', `${v.dir}/nope.json`]);
      expect(missing.code).to.equal(1);
      expect(missing.err).to.match(/cannot read .*nope\.json/);
      expect(existsSync(v.data), 'validate must not create a store').to.equal(false);
    } finally {
      v.remove();
    }
  });

  it('lists profiles as JSON and as a table', async () => {
    await box.withStore(async (store) => {
      await store.devices.add({ endpoint: 'urn:imei:350000000000001', profile: 'meters' });
    });
    const rows = box.json<Array<Record<string, unknown>>>(['profile', 'list', '--json']);
    expect(rows.map((r) => r.name)).to.deep.equal(['meters', 'meters-copy']);
    const meters = rows[0]!;
    expect(meters).to.include({ name: 'meters', version: 2, devices: 1 });
    expect(meters.match).to.deep.equal(['urn:imei:35*']);
    expect(meters.shortServerIds).to.deep.equal([1, 2, 3]);
    expect(Date.parse(meters.createdAt as string)).to.be.a('number').and.not.NaN;
    expect(Object.keys(meters).sort()).to.deep.equal(['createdAt', 'devices', 'match', 'name', 'shortServerIds', 'updatedAt', 'version']);

    const t = box.run(['profile', 'list']);
    expect(t.code).to.equal(0);
    expect(t.out).to.match(/^NAME\s+VERSION\s+DEVICES/);
    expect(t.out).to.match(/^meters\s+2\s+1\s/m);
    expect(t.out).to.match(/^meters-copy\s+1\s+0\s/m);
  });

  it('shows a readable summary with secrets masked, and reveals them only with --show-secrets', () => {
    const r = box.run(['profile', 'show', 'meters']);
    expect(r.code, r.err).to.equal(0);
    expectNoSecret(r.out + r.err, secrets);
    expect(r.out).to.match(/^profile meters$/m);
    expect(r.out).to.match(/match:\s+urn:imei:35\*/);
    expect(r.out).to.match(/delete:\s+\/0, \/1, \/2/);
    expect(r.out).to.match(/content format:\s+auto/);
    expect(r.out).to.match(/version:\s+2 /);
    expect(r.out).to.match(/SSID 1: hand-off/);
    expect(r.out).to.match(/SSID 2: coaps:\/\/dm\.example\.com:5684/);
    expect(r.out).to.match(/security:\s+psk, identity "meters-dm", key \[secret\]/);
    expect(r.out).to.match(/SSID 3: coaps:\/\/x509\.example\.com\n\s+security:\s+x509, .*private key \[secret\]/);
    expect(r.out).to.match(/lifetime:\s+301 s/);
    expect(r.out).to.match(/binding:\s+UQ/);
    expect(r.out).to.match(/\/3\/0: owner SSID 1; rights default=R 1=RWE/);

    const j = box.json<{ name: string; version: number; devices: number; warnings: string[]; profile: { servers: Array<{ security: Record<string, unknown> }> } }>([
      'profile',
      'show',
      'meters',
      '--json',
    ]);
    expect(j).to.include({ name: 'meters', version: 2, devices: 1 });
    expect(j.warnings).to.be.an('array').that.is.not.empty;
    expect(j.profile.servers[1]!.security.key).to.equal('[secret]');
    expect(j.profile.servers[2]!.security.privateKey).to.equal('[secret]');
    expectNoSecret(JSON.stringify(j), secrets);

    const s = box.run(['profile', 'show', 'meters', '--show-secrets']);
    expect(s.code).to.equal(0);
    expect(s.out).to.include(`key ${PSK_SECRET}`);
    expect(s.out).to.include(`private key ${secrets[1]}`);
  });

  it('exports importable JSON: masked with a note on stderr, or complete with --show-secrets', () => {
    const masked = box.run(['profile', 'export', 'meters']);
    expect(masked.code, masked.err).to.equal(0);
    expectNoSecret(masked.out, secrets);
    expect(masked.err).to.match(/cannot be imported again as is/);
    const doc = JSON.parse(masked.out) as typeof METERS;
    expect(doc.servers[1]!.security.key).to.equal('[secret]');

    const full = box.run(['profile', 'export', 'meters', '--show-secrets']);
    expect(full.code).to.equal(0);
    expect(full.err).to.equal('');
    expect(full.out).to.include(PSK_SECRET);
    const back = box.run(['profile', 'import', box.file('export.json', full.out)]);
    expect(back.code, back.err).to.equal(0);
    expect(back.out).to.match(/profile meters unchanged \(version 2\)/);
  });

  it('shows the history of a profile; an unknown one exits 1', () => {
    const h = box.json<Array<Record<string, unknown>>>(['profile', 'history', 'meters', '--json']);
    expect(h.map((e) => [e.name, e.version, e.change])).to.deep.equal([
      ['meters', 1, 'create'],
      ['meters', 2, 'update'],
    ]);
    expect(Object.keys(h[0]!).sort()).to.deep.equal(['change', 'changedAt', 'name', 'version']);
    const t = box.run(['profile', 'history', 'meters']);
    expect(t.out).to.match(/^\s*1\s+create\s/m);
    expect(t.out).to.match(/^\s*2\s+update\s/m);
    const none = box.run(['profile', 'history', 'never']);
    expect(none.code).to.equal(1);
    expect(none.err).to.match(/never.*was never stored/);
  });

  it('delete is refused while devices use the profile (exit 1, the store message), then works', async () => {
    const refused = box.run(['profile', 'delete', 'meters']);
    expect(refused.code).to.equal(1);
    expect(refused.err).to.match(/^lwbs: profile "meters" is used by 1 device/);
    await box.withStore(async (store) => {
      expect(await store.profiles.get('meters')).to.not.equal(undefined);
      await store.devices.remove('urn:imei:350000000000001');
    });
    const ok = box.run(['profile', 'delete', 'meters']);
    expect(ok.code, ok.err).to.equal(0);
    expect(ok.out).to.match(/deleted profile meters \(history version 3\)/);
    const gone = box.run(['profile', 'show', 'meters']);
    expect(gone.code).to.equal(1);
    expect(gone.err).to.match(/profile "meters" does not exist/);
  });

  it('answers usage errors with exit 2', () => {
    expect(box.run(['profile', 'import']).code).to.equal(2);
    expect(box.run(['profile', 'list', '--bogus']).code).to.equal(2);
  });
});
