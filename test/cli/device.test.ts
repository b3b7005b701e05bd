/** `lwbs device ...` as a user runs it: a real process on a temp data directory. */
import { expect } from 'chai';
import { createPublicKey, X509Certificate } from 'node:crypto';
import { csvLine } from '../../src/cli/csv.js';
import { parseProfileText, profileToJson } from '../../src/bootstrap/profile.js';
import type { SqliteStore } from '../../src/store/store.js';
import { CERT_A, CERT_B } from '../store/fixtures/certs.js';
import { ecKeys, type EcKeys } from '../store/support.js';
import { CliSandbox } from './support.js';

const BOOTSTRAP_KEY = '0f1e2d3c4b5a69788796a5b4c3d2e1f0';
const CRED_KEY_1 = '11112222333344445555666677778888';
const CRED_KEY_2 = '9999aaaabbbbccccddddeeeeffff0000';

const pem = (spki: Uint8Array): string => createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' }).export({ type: 'spki', format: 'pem' }).toString();
const certPem = (der: Uint8Array): string => new X509Certificate(Buffer.from(der)).toString();

async function addProfiles(store: SqliteStore): Promise<void> {
  for (const name of ['meters', 'other']) {
    const p = parseProfileText(JSON.stringify({ name, servers: [{ shortServerId: 1, handOff: true, security: { mode: 'psk' } }] }));
    await store.profiles.put(name, JSON.stringify(profileToJson(p, { revealSecrets: true })));
  }
}

interface DeviceJson {
  endpoint: { text?: string; hex: string };
  profile: string;
  enrolledBy: string;
  createdAt: string;
  auth: Record<string, unknown>;
}

describe('cli: lwbs device', function () {
  this.timeout(60_000);
  let box: CliSandbox;
  let rpk: EcKeys;
  let rpk2: EcKeys;
  let credKeys: EcKeys;

  before(async () => {
    box = new CliSandbox();
    rpk = ecKeys();
    rpk2 = ecKeys();
    credKeys = ecKeys();
    await box.withStore(addProfiles);
  });
  after(() => box.remove());

  it('adds devices with every kind of bootstrap auth, text and binary names', async () => {
    const runs = [
      box.run(['device', 'add', 'ep-none', '--profile', 'meters']),
      box.run(['device', 'add', 'ep-psk', '--profile', 'meters', '--psk-identity', 'id-psk', '--psk-key', BOOTSTRAP_KEY]),
      box.run(['device', 'add', '00ff10', '--endpoint-hex', '--profile', 'other', '--psk-identity-hex', 'deadbeef', '--psk-key', '0102']),
      box.run(['device', 'add', 'ep-rpk', '--profile', 'meters', '--rpk-public-key', box.file('rpk.pem', pem(rpk.spki))]),
      box.run(['device', 'add', 'ep-rpk-der', '--profile', 'meters', '--rpk-public-key', box.file('rpk.der', rpk2.spki)]),
      box.run(['device', 'add', 'urn:dev:1', '--profile', 'meters', '--x509-cert', box.file('a.pem', certPem(CERT_A))]),
    ];
    for (const r of runs) {
      expect(r.code, r.err).to.equal(0);
      expect(r.out).to.match(/^enrolled device /);
      expect(r.out + r.err).not.to.include(BOOTSTRAP_KEY);
    }
    expect(runs[2]!.out).to.include('0x00ff10');
    await box.withStore(async (store) => {
      expect((await store.devices.get('ep-none'))?.auth).to.deep.equal({ kind: 'none' });
      const psk = await store.devices.get('ep-psk');
      expect(psk?.auth.kind).to.equal('psk');
      expect(psk?.enrolledBy).to.equal('cli');
      expect((await store.devices.revealPskKey('ep-psk'))?.toString('hex')).to.equal(BOOTSTRAP_KEY);
      const bin = await store.devices.get(Buffer.from('00ff10', 'hex'));
      expect(bin?.profile).to.equal('other');
      expect(bin?.auth.kind === 'psk' && bin.auth.identity.toString('hex')).to.equal('deadbeef');
      expect((await store.devices.findByRpk(rpk.spki))?.endpoint.toString()).to.equal('ep-rpk');
      expect((await store.devices.findByRpk(rpk2.spki))?.endpoint.toString()).to.equal('ep-rpk-der');
      expect((await store.devices.findByCertificate(CERT_A))?.endpoint.toString()).to.equal('urn:dev:1');
    });
  });

  it('refuses bad command lines with exit 2 and store refusals with exit 1', () => {
    const usage = [
      ['device', 'add', 'x', '--profile', 'meters', '--psk-key', '00'],
      ['device', 'add', 'x', '--profile', 'meters', '--rpk-public-key', 'f', '--x509-cert', 'g'],
      ['device', 'add', 'zz', '--endpoint-hex', '--profile', 'meters'],
    ];
    for (const args of usage) expect(box.run(args).code, args.join(' ')).to.equal(2);
    // LwM2M: an X.509 device's certificate must name its endpoint (CN or subjectAltName).
    const unnamed = box.run(['device', 'add', 'ep-other', '--profile', 'meters', '--x509-cert', box.file('named.pem', certPem(CERT_A))]);
    expect(unnamed.code).to.equal(2);
    expect(unnamed.err).to.contain('CN "urn:imei:350000000000001"').and.to.contain('not the endpoint ep-other');
    const unknown = box.run(['device', 'add', 'x', '--profile', 'nope']);
    expect(unknown.code).to.equal(1);
    expect(unknown.err).to.match(/profile "nope" does not exist/);
    const dup = box.run(['device', 'add', 'ep-psk', '--profile', 'meters']);
    expect(dup.code).to.equal(1);
    expect(dup.err).to.match(/"ep-psk" is already enrolled/);
  });

  it('lists devices as JSON (bytes as text and hex) with --profile and --limit, and as a table', () => {
    const all = box.json<DeviceJson[]>(['device', 'list', '--json']);
    // Sorted by endpoint bytes: 0x00ff10 first.
    expect(all.map((d) => d.endpoint.hex)).to.deep.equal(
      ['00ff10', ...['ep-none', 'ep-psk', 'ep-rpk', 'ep-rpk-der', 'urn:dev:1'].map((e) => Buffer.from(e).toString('hex'))].sort(),
    );
    expect(all[0]!.endpoint).to.deep.equal({ hex: '00ff10' });
    const psk = all.find((d) => d.endpoint.text === 'ep-psk')!;
    expect(psk).to.deep.include({ profile: 'meters', enrolledBy: 'cli' });
    expect(psk.auth).to.deep.equal({ kind: 'psk', identity: { text: 'id-psk', hex: Buffer.from('id-psk').toString('hex') } });
    expect(Object.keys(psk).sort()).to.deep.equal(['auth', 'createdAt', 'endpoint', 'enrolledBy', 'profile']);
    const x509 = all.find((d) => d.endpoint.text === 'urn:dev:1')!;
    expect(x509.auth).to.deep.include({ kind: 'x509', certificate: CERT_A.toString('hex'), subjectCn: 'urn:imei:350000000000001' });
    expect(x509.auth.subjectAltNames).to.deep.equal(['DNS:dev1.example', 'URI:urn:dev:1']);
    const rpkDev = all.find((d) => d.endpoint.text === 'ep-rpk')!;
    expect(rpkDev.auth).to.deep.include({ kind: 'rpk', publicKey: rpk.spki.toString('hex') });
    expect(rpkDev.auth.fingerprint).to.match(/^sha256:[0-9a-f]{16}$/);

    const filtered = box.json<DeviceJson[]>(['device', 'list', '--profile', 'meters', '--limit', '2', '--json']);
    expect(filtered.map((d) => d.endpoint.text)).to.deep.equal(['ep-none', 'ep-psk']);

    const t = box.run(['device', 'list']);
    expect(t.code).to.equal(0);
    expect(t.out).to.match(/^ENDPOINT\s+PROFILE\s+AUTH/);
    expect(t.out).to.match(/^0x00ff10\s+other\s+psk, identity "0xdeadbeef"/m);
    expect(t.out).to.match(/^urn:dev:1\s+meters\s+x509 CN=urn:imei:350000000000001/m);
    expect(t.out).not.to.include(BOOTSTRAP_KEY);
  });

  it('shows a device with its credentials per server and its sessions; secrets only with --show-secrets', async () => {
    let ids: number[] = [];
    let sessionId = '';
    await box.withStore(async (store) => {
      const uri = 'coaps://127.0.0.1:5784';
      const s1 = await store.sessions.start({ endpoint: 'ep-psk', peer: '127.0.0.1:40000', security: 'psk', profile: 'meters' });
      const c1 = await store.credentials.addPending({ endpoint: 'ep-psk', shortServerId: 1, serverUri: uri, mode: 'psk', pskIdentity: 'ep-psk', pskKey: Buffer.from(CRED_KEY_1, 'hex'), sessionId: s1.id });
      await store.credentials.activateForSession(s1.id);
      await store.sessions.finish(s1.id, 'success');
      const s2 = await store.sessions.start({ endpoint: 'ep-psk', peer: '127.0.0.1:40001', security: 'psk', profile: 'meters' });
      const c2 = await store.credentials.addPending({ endpoint: 'ep-psk', shortServerId: 1, serverUri: uri, mode: 'psk', pskIdentity: 'ep-psk-2', pskKey: Buffer.from(CRED_KEY_2, 'hex'), sessionId: s2.id });
      await store.sessions.finish(s2.id, 'success');
      await store.credentials.promote(c2.id); // c2 active, c1 retired
      const c3 = await store.credentials.addPending({
        endpoint: 'ep-psk',
        shortServerId: 2,
        serverUri: 'coaps://dm.example.com',
        mode: 'rpk',
        publicKey: credKeys.spki,
        privateKey: credKeys.pkcs8,
        serverPublicKey: rpk2.spki,
        sessionId: s2.id,
      });
      ids = [c1.id, c2.id, c3.id];
      sessionId = s2.id;
    });
    const secrets = [BOOTSTRAP_KEY, CRED_KEY_1, CRED_KEY_2, credKeys.pkcs8.toString('hex')];

    const masked = box.run(['device', 'show', 'ep-psk']);
    expect(masked.code, masked.err).to.equal(0);
    for (const s of secrets) expect(masked.out + masked.err).not.to.include(s);
    expect(masked.out).to.match(/^device ep-psk$/m);
    expect(masked.out).to.match(/bootstrap auth:\s+psk, identity "id-psk", key \[secret\]/);
    expect(masked.out).to.match(new RegExp(`#${ids[0]}\\s+SSID 1\\s+retired\\s+psk\\s+coaps://127\\.0\\.0\\.1:5784\\n\\s+identity "ep-psk", key \\[secret\\]`));
    expect(masked.out).to.match(new RegExp(`#${ids[1]}\\s+SSID 1\\s+active\\s+psk`));
    expect(masked.out).to.match(new RegExp(`#${ids[2]}\\s+SSID 2\\s+pending\\s+rpk\\s+coaps://dm\\.example\\.com\\n.*private key \\[secret\\]`));
    expect(masked.out).to.match(/last sessions \(2\):/);
    expect(masked.out).to.include(sessionId);

    type Shown = DeviceJson & { credentials: Array<Record<string, unknown>>; sessions: Array<Record<string, unknown>> };
    const mj = box.json<Shown>(['device', 'show', 'ep-psk', '--json']);
    for (const s of secrets) expect(JSON.stringify(mj)).not.to.include(s);
    expect(mj.auth.key).to.equal('[secret]');
    expect(mj.credentials.map((c) => [c.id, c.status, c.pskKey, c.privateKey])).to.deep.equal([
      [ids[2], 'pending', null, '[secret]'],
      [ids[1], 'active', '[secret]', null],
      [ids[0], 'retired', '[secret]', null],
    ]);
    expect(mj.sessions.map((s) => s.outcome)).to.deep.equal(['success', 'success']);

    const rj = box.json<Shown>(['device', 'show', 'ep-psk', '--json', '--show-secrets']);
    expect(rj.auth.key).to.equal(BOOTSTRAP_KEY);
    const byId = new Map(rj.credentials.map((c) => [c.id, c]));
    expect(byId.get(ids[0])).to.deep.include({ status: 'retired', pskKey: CRED_KEY_1, shortServerId: 1, mode: 'psk' });
    expect(byId.get(ids[0])!.pskIdentity).to.deep.equal({ text: 'ep-psk', hex: Buffer.from('ep-psk').toString('hex') });
    expect(byId.get(ids[1])).to.deep.include({ status: 'active', pskKey: CRED_KEY_2 });
    expect(byId.get(ids[2])).to.deep.include({
      status: 'pending',
      privateKey: credKeys.pkcs8.toString('hex'),
      publicKey: credKeys.spki.toString('hex'),
      serverPublicKey: rpk2.spki.toString('hex'),
      serverUri: 'coaps://dm.example.com',
      sessionId,
    });
    expect(byId.get(ids[0])!.retiredAt).to.be.a('string');

    const rt = box.run(['device', 'show', 'ep-psk', '--show-secrets']);
    expect(rt.code).to.equal(0);
    for (const s of secrets) expect(rt.out).to.include(s);
  });

  it('show and remove: binary names by hex, unknown devices exit 1', async () => {
    const show = box.run(['device', 'show', '00FF10', '--endpoint-hex']);
    expect(show.code, show.err).to.equal(0);
    expect(show.out).to.match(/^device 0x00ff10$/m);
    const rm = box.run(['device', 'remove', '00ff10', '--endpoint-hex']);
    expect(rm.code, rm.err).to.equal(0);
    expect(rm.out).to.match(/removed device 0x00ff10/);
    await box.withStore(async (store) => expect(await store.devices.get(Buffer.from('00ff10', 'hex'))).to.equal(undefined));
    const again = box.run(['device', 'remove', '00ff10', '--endpoint-hex']);
    expect(again.code).to.equal(1);
    expect(again.err).to.match(/0x00ff10 is not enrolled/);
    const unknown = box.run(['device', 'show', 'nobody']);
    expect(unknown.code).to.equal(1);
    expect(unknown.err).to.match(/nobody is not enrolled/);
  });

  describe('import', () => {
    let imp: CliSandbox;
    beforeEach(async () => {
      imp = new CliSandbox('lwbs-cli-import-');
      await imp.withStore(addProfiles);
    });
    afterEach(() => imp.remove());

    it('imports a CSV with a BOM, CRLF, empty lines, quoted PEM cells and hex columns; progress on stderr', async () => {
      const rows = [
        ['endpoint', 'endpoint_hex', 'Profile', 'psk_identity', 'psk_identity_hex', 'psk_key', 'rpk_public_key', 'x509_cert'],
        ['urn:imei:1', '', 'meters', 'id, "one"', '', BOOTSTRAP_KEY, '', ''],
        ['', 'c0ffee', '', '', '0a0b', '0102', '', ''],
        ['urn:imei:3', '', 'other', '', '', '', pem(rpk.spki), ''],
        ['urn:imei:4', '', '', '', '', '', Buffer.from(rpk2.spki).toString('base64'), ''],
        ['urn:dev:2', '', '', '', '', '', '', certPem(CERT_B)],
        ['urn:imei:6', '', '', '', '', '', '', ''],
      ];
      const text = '\ufeff' + rows.map(csvLine).join('\r\n\r\n') + '\r\n';
      const r = imp.run(['device', 'import', imp.file('devices.csv', text), '--profile', 'meters', '--progress']);
      expect(r.code, r.err).to.equal(0);
      expect(r.out).to.match(/imported 6 devices/);
      expect(r.err).to.match(/importing: 6\/6 devices \(100%\)/);
      expect(r.out + r.err).not.to.include(BOOTSTRAP_KEY);
      await imp.withStore(async (store) => {
        const list = await store.devices.list();
        expect(list.map((d) => d.endpoint.toString('hex'))).to.deep.equal(
          ['c0ffee', ...['urn:imei:1', 'urn:imei:3', 'urn:imei:4', 'urn:dev:2', 'urn:imei:6'].map((e) => Buffer.from(e).toString('hex'))].sort(),
        );
        expect(list.every((d) => d.enrolledBy === 'import')).to.equal(true);
        const one = await store.devices.get('urn:imei:1');
        expect(one?.auth.kind === 'psk' && one.auth.identity.toString()).to.equal('id, "one"');
        expect((await store.devices.revealPskKey('urn:imei:1'))?.toString('hex')).to.equal(BOOTSTRAP_KEY);
        const bin = await store.devices.get(Buffer.from('c0ffee', 'hex'));
        expect(bin?.profile).to.equal('meters');
        expect(bin?.auth.kind === 'psk' && bin.auth.identity.toString('hex')).to.equal('0a0b');
        expect((await store.devices.get('urn:imei:3'))?.profile).to.equal('other');
        expect((await store.devices.findByRpk(rpk.spki))?.endpoint.toString()).to.equal('urn:imei:3');
        expect((await store.devices.findByRpk(rpk2.spki))?.endpoint.toString()).to.equal('urn:imei:4');
        expect((await store.devices.findByCertificate(CERT_B))?.endpoint.toString()).to.equal('urn:dev:2');
        expect((await store.devices.get('urn:imei:6'))?.auth.kind).to.equal('none');
      });
    });

    it('reports every bad row with line and column, stores nothing, and device list stays empty', async () => {
      await imp.withStore(async (store) => {
        await store.devices.add({ endpoint: 'taken', profile: 'meters' });
      });
      const lines = ['endpoint,profile,psk_identity,psk_key'];
      for (let i = 1; i <= 40; i++) lines.push(csvLine([`ok-${i}`, 'meters', `id-${i}`, '00112233']));
      const bad = new Map<number, RegExp>([
        [12, /^\S+: line 12, column 4 \(psk_key\): must be pairs of hex digits$/m],
        [20, /^\S+: line 20, column 2 \(profile\): profile "nope" does not exist$/m],
        [25, /^\S+: line 25, column 1 \(endpoint\): endpoint "ok-3" is also on line 4$/m],
        [30, /^\S+: line 30, column 3 \(psk_identity\): PSK identity "id-7" is also on line 8$/m],
        [33, /^\S+: line 33, column 1 \(endpoint\): device "taken" is already enrolled$/m],
        [37, /^\S+: line 37: has 3 fields, the header has 4$/m],
      ]);
      lines[12 - 1] = csvLine(['bad-key', 'meters', 'id-bk', 'xyz-secret']);
      lines[20 - 1] = csvLine(['bad-profile', 'nope', '', '']);
      lines[25 - 1] = csvLine(['ok-3', 'meters', '', '']);
      lines[30 - 1] = csvLine(['dup-id', 'meters', 'id-7', '0011']);
      lines[33 - 1] = csvLine(['taken', 'meters', '', '']);
      lines[37 - 1] = 'short,meters,x';
      const r = imp.run(['device', 'import', imp.file('bad.csv', lines.join('\n') + '\n'), '--progress']);
      expect(r.code).to.equal(1);
      for (const [, re] of bad) expect(r.err).to.match(re);
      expect(r.err).to.match(/6 bad rows .*nothing imported/);
      expect(r.err).not.to.include('xyz-secret');
      expect(r.err).not.to.match(/importing: /);
      const list = imp.json<DeviceJson[]>(['device', 'list', '--json']);
      expect(list.map((d) => d.endpoint.text)).to.deep.equal(['taken']);
    });

    it('refuses a row whose certificate does not name its endpoint (CN or subjectAltName)', () => {
      const csv = ['endpoint,profile,x509_cert', csvLine(['ep-other', 'meters', certPem(CERT_B)])].join('\n') + '\n';
      const r = imp.run(['device', 'import', imp.file('names.csv', csv)]);
      expect(r.code).to.equal(1);
      expect(r.err).to.match(/line 2, column 3 \(x509_cert\): the certificate names CN "device-2", .*not the endpoint ep-other/);
    });

    it('refuses bad headers and broken quoting with the line, and documents the columns in --help', () => {
      const header = imp.run(['device', 'import', imp.file('h.csv', 'name,profile,colour\nx,meters,red\n')]);
      expect(header.code).to.equal(1);
      expect(header.err).to.match(/line 1, column 1: unknown column "name"/);
      expect(header.err).to.match(/line 1, column 3: unknown column "colour"/);
      expect(header.err).to.match(/line 1: the header has no endpoint/);
      const quote = imp.run(['device', 'import', imp.file('q.csv', 'endpoint,profile\na,meters\n\n"b,meters\n')]);
      expect(quote.code).to.equal(1);
      expect(quote.err).to.match(/line 4, column 1: a quoted field is not closed/);
      const help = imp.run(['device', 'import', '--help']);
      expect(help.code).to.equal(0);
      for (const c of ['endpoint', 'endpoint_hex', 'profile', 'psk_identity', 'psk_identity_hex', 'psk_key', 'rpk_public_key', 'x509_cert']) {
        expect(help.out).to.match(new RegExp(`^\\s+${c}\\s{2,}\\S`, 'm'));
      }
    });
  });
});
