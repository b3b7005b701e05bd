/**
 * The `x509` section of both servers: shape validation (errors name the field), and reading the
 * files at start (`readX509Files`): PEM bundles and DER trust anchors, the server's own chain and
 * P-256 key (PEM PKCS#8 / SEC1, DER), which must match the leaf. Certificates and keys come from
 * the openssl CLI.
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig, NO_X509, readX509Files, type X509Config } from '../../src/config/config.js';
import { issue, makeCa, requireOpenssl, type TestCert } from '../dtls/openssl-support.js';

describe('config: x509 (trust anchors, server certificate and key)', function () {
  this.timeout(20_000);
  let dir: string;
  let ca: TestCert;
  let otherCa: TestCert;
  let server: TestCert;
  before(() => {
    requireOpenssl();
    dir = mkdtempSync(join(tmpdir(), 'lwbs-config-x509-'));
    ca = makeCa(dir, 'ca', 'config test CA');
    otherCa = makeCa(dir, 'other-ca', 'second CA');
    server = issue(dir, 'server', 'ca', { cn: 'lwm2m.example.com', san: 'DNS:lwm2m.example.com' });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const write = (name: string, body: string | Buffer): string => {
    const f = join(dir, name);
    writeFileSync(f, body);
    return f;
  };
  const load = (body: unknown): ReturnType<typeof loadConfig> => loadConfig({ cwd: dir, file: write('c.json', JSON.stringify(body)), env: {} });
  const x509 = (o: Partial<X509Config>): X509Config => ({ ...NO_X509, ...o });

  it('defaults to no trust anchors and no configured certificate for both servers', () => {
    const c = loadConfig({ cwd: dir, env: {} });
    expect(c.bootstrap.x509).to.deep.equal({ trustAnchors: [], certificate: null, privateKey: null });
    expect(c.registration.x509).to.deep.equal({ trustAnchors: [], certificate: null, privateKey: null });
  });

  it('resolves the file paths against the working directory', () => {
    const c = load({ registration: { x509: { trustAnchors: ['./ca.pem', '/etc/x/ca2.pem'], certificate: 'srv.pem', privateKey: 'keys/srv.key' } } });
    expect(c.registration.x509).to.deep.equal({ trustAnchors: [join(dir, 'ca.pem'), '/etc/x/ca2.pem'], certificate: join(dir, 'srv.pem'), privateKey: join(dir, 'keys/srv.key') });
    expect(c.bootstrap.x509!.trustAnchors).to.deep.equal([]);
  });

  it('refuses a bad x509 section with a message naming the field', () => {
    const cases: Array<[unknown, RegExp]> = [
      [{ bootstrap: { x509: 'ca.pem' } }, /bootstrap\.x509 must be an object/],
      [{ bootstrap: { x509: { trustAnchors: 'ca.pem' } } }, /bootstrap\.x509\.trustAnchors must be an array/],
      [{ registration: { x509: { trustAnchors: ['a.pem', 7] } } }, /registration\.x509\.trustAnchors\[1\] must be a certificate file path/],
      [{ registration: { x509: { trustAnchors: [''] } } }, /registration\.x509\.trustAnchors\[0\]/],
      [{ registration: { x509: { certificate: 'srv.pem' } } }, /registration\.x509\.certificate and registration\.x509\.privateKey go together/],
      [{ bootstrap: { x509: { privateKey: 'srv.key', certificate: null } } }, /bootstrap\.x509\.certificate and bootstrap\.x509\.privateKey go together/],
      [{ bootstrap: { x509: { certificate: 5, privateKey: 'k' } } }, /bootstrap\.x509\.certificate must be a file path or null/],
      [{ registration: { x509: { trustAnchor: [] } } }, /unknown config field "registration\.x509\.trustAnchor"/],
    ];
    for (const [body, re] of cases) expect(() => load(body), JSON.stringify(body)).to.throw(ConfigError, re);
  });

  it('reads trust anchors from PEM bundles and DER files, in order', () => {
    const bundle = write('bundle.pem', readFileSync(ca.certFile, 'utf8') + readFileSync(otherCa.certFile, 'utf8'));
    const der = write('server.der', server.der);
    const m = readX509Files(x509({ trustAnchors: [bundle, der] }), 'bootstrap.x509');
    expect(m.trustAnchors.map((d) => d.toString('hex'))).to.deep.equal([ca.der, otherCa.der, server.der].map((d) => d.toString('hex')));
    expect(m.own).to.equal(undefined);
  });

  it('reads the own chain and key (PKCS#8 PEM, SEC1 PEM, PKCS#8 DER) and checks they belong together', () => {
    const chain = write('chain.pem', readFileSync(server.certFile, 'utf8') + readFileSync(ca.certFile, 'utf8'));
    const sec1 = write('server.sec1.pem', execFileSync('openssl', ['ec', '-in', server.keyFile], { stdio: ['ignore', 'pipe', 'ignore'] }));
    expect(readFileSync(sec1, 'utf8')).to.include('BEGIN EC PRIVATE KEY');
    const pk8der = write('server.key.der', execFileSync('openssl', ['pkcs8', '-topk8', '-nocrypt', '-in', server.keyFile, '-outform', 'DER'], { stdio: ['ignore', 'pipe', 'ignore'] }));
    for (const key of [server.keyFile, sec1, pk8der]) {
      const m = readX509Files(x509({ certificate: chain, privateKey: key }), 'registration.x509');
      expect(m.own!.chain.map((d) => d.toString('hex'))).to.deep.equal([server.der.toString('hex'), ca.der.toString('hex')]);
      expect(m.own!.publicKey.equals(server.spki), key).to.equal(true);
      expect(new X509Certificate(m.own!.chain[0]!).checkPrivateKey(server.privateKey)).to.equal(true);
    }
  });

  it('refuses unreadable or mismatched files, naming the field and the file but never the key bytes', () => {
    const garbage = write('garbage.pem', '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
    const keyOnly = write('key-only.pem', readFileSync(server.keyFile));
    const p384 = issue(dir, 'p384', 'ca', { cn: 'p384 server', curve: 'secp384r1' });
    const cases: Array<[X509Config, string, RegExp]> = [
      [x509({ trustAnchors: [ca.certFile, join(dir, 'missing.pem')] }), 'bootstrap.x509', /^bootstrap\.x509\.trustAnchors\[1\]: cannot read .*missing\.pem: ENOENT/],
      [x509({ trustAnchors: [garbage] }), 'bootstrap.x509', /^bootstrap\.x509\.trustAnchors\[0\]: .*garbage\.pem: certificate 1 of the file is not an X\.509 certificate/],
      [x509({ trustAnchors: [keyOnly] }), 'bootstrap.x509', /^bootstrap\.x509\.trustAnchors\[0\]: .*key-only\.pem: no CERTIFICATE PEM block/],
      [x509({ trustAnchors: [write('empty.der', Buffer.alloc(0))] }), 'bootstrap.x509', /trustAnchors\[0\]: .*empty\.der: the file is empty/],
      [x509({ certificate: server.certFile, privateKey: ca.keyFile }), 'registration.x509', /^registration\.x509\.certificate: the first certificate in .*server\.pem does not certify the key in registration\.x509\.privateKey/],
      [x509({ certificate: ca.keyFile, privateKey: server.keyFile }), 'registration.x509', /^registration\.x509\.certificate: .*ca\.key: no CERTIFICATE PEM block/],
      [x509({ certificate: server.certFile, privateKey: server.certFile }), 'registration.x509', /^registration\.x509\.privateKey: .*server\.pem is not a private key/],
      [x509({ certificate: p384.certFile, privateKey: p384.keyFile }), 'registration.x509', /^registration\.x509\.privateKey: .*p384\.key is not a P-256/],
    ];
    const secret = readFileSync(server.keyFile, 'utf8').split('\n')[1]!;
    for (const [cfg, field, re] of cases) {
      let err: unknown;
      try {
        readX509Files(cfg, field);
      } catch (e) {
        err = e;
      }
      expect(err, re.source).to.be.instanceOf(ConfigError);
      expect((err as Error).message).to.match(re);
      expect((err as Error).message).not.to.include(secret.slice(0, 20));
    }
  });
});
