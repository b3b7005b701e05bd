/**
 * The server's self-signed certificate (src/dtls/x509-issue.ts), checked by independent parsers:
 * `openssl x509 -text -noout` (every field of the structure), `openssl verify` (signature and
 * chain with the certificate as its own trust anchor, purpose sslserver, host/IP name checks),
 * `openssl asn1parse` (the DER is well formed) and node's X509Certificate. The DER writer's
 * primitives are checked against encodings from X.690 / RFC 5280 / RFC 5758. The data-directory
 * file is kept while it fits and made again when the key, the names or the clock say so.
 */
import { expect } from 'chai';
import { execFileSync, spawnSync } from 'node:child_process';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  certificatePem, derOid, derTime, derUnsigned, ipBytes, issueSelfSignedCertificate, loadOrCreateServerCertificate, parseCertificateFile,
  RENEW_BEFORE_MS, SELF_SIGNED_VALIDITY_MS, subjectForHost,
} from '../../src/dtls/x509-issue.js';
import { certificateNames, certificateValidity } from '../../src/dtls/x509.js';
import { requireOpenssl } from '../dtls/openssl-support.js';

function keyPair(): { publicKey: Buffer; privateKey: Buffer } {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return { publicKey: publicKey.export({ format: 'der', type: 'spki' }), privateKey: privateKey.export({ format: 'der', type: 'pkcs8' }) };
}

function openssl(args: string[]): { code: number | null; out: string } {
  const r = spawnSync('openssl', args, { encoding: 'utf8' });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

describe('x509-issue: the server self-signed certificate', function () {
  this.timeout(20_000);
  let dir: string;
  before(() => {
    requireOpenssl();
    dir = mkdtempSync(join(tmpdir(), 'lwbs-x509-issue-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  describe('DER primitives', () => {
    it('OIDs as in RFC 5758 / RFC 5280 (ecdsa-with-SHA256, commonName, subjectAltName)', () => {
      expect(derOid('1.2.840.10045.4.3.2').toString('hex')).to.equal('06082a8648ce3d040302');
      expect(derOid('2.5.4.3').toString('hex')).to.equal('0603550403');
      expect(derOid('2.5.29.17').toString('hex')).to.equal('0603551d11');
      expect(derOid('1.3.6.1.5.5.7.3.1').toString('hex')).to.equal('06082b06010505070301');
    });
    it('INTEGERs minimal, with a 0x00 pad when the top bit is set (X.690 §8.3)', () => {
      expect(derUnsigned(Buffer.from([2])).toString('hex')).to.equal('020102');
      expect(derUnsigned(Buffer.from([0x00, 0x00, 0x7f])).toString('hex')).to.equal('02017f');
      expect(derUnsigned(Buffer.from([0x80])).toString('hex')).to.equal('02020080');
      expect(derUnsigned(Buffer.from([0])).toString('hex')).to.equal('020100');
    });
    it('UTCTime through 2049, GeneralizedTime from 2050 (RFC 5280 §4.1.2.5)', () => {
      expect(derTime(Date.UTC(2049, 11, 31, 23, 59, 59)).toString('latin1').slice(2)).to.equal('491231235959Z');
      expect(derTime(Date.UTC(2049, 11, 31, 23, 59, 59))[0]).to.equal(0x17);
      expect(derTime(Date.UTC(2050, 0, 1, 0, 0, 0)).toString('latin1').slice(2)).to.equal('20500101000000Z');
      expect(derTime(Date.UTC(2050, 0, 1, 0, 0, 0))[0]).to.equal(0x18);
    });
    it('iPAddress bytes for IPv4, IPv6 and IPv4-mapped IPv6', () => {
      expect(ipBytes('192.0.2.7').toString('hex')).to.equal('c0000207');
      expect(ipBytes('::1').toString('hex')).to.equal(`${'0'.repeat(30)}01`);
      expect(ipBytes('2001:db8::8:800:200c:417a').toString('hex')).to.equal('20010db80000000000080800200c417a'); // RFC 4291 §2.2
      expect(ipBytes('::ffff:10.1.2.3').toString('hex')).to.equal('00000000000000000000ffff0a010203');
      expect(() => ipBytes('lwm2m.example.com')).to.throw(RangeError);
    });
  });

  it('has the exact structure: openssl x509 -text shows every field; the DER parses strictly', () => {
    const k = keyPair();
    const notBefore = Date.UTC(2026, 0, 2, 3, 4, 5);
    const notAfter = Date.UTC(2055, 6, 8, 9, 10, 11);
    const der = issueSelfSignedCertificate({
      ...k, notBefore, notAfter, serialNumber: Buffer.from('7fa0b1c2d3e4f5061728394a5b6c7d8e', 'hex'),
      subject: { commonName: 'lwm2m.example.com', dnsNames: ['lwm2m.example.com'], ipAddresses: ['192.0.2.7', '2001:db8::1'] },
    });
    const file = join(dir, 'structure.pem');
    writeFileSync(file, certificatePem([der]));
    const text = execFileSync('openssl', ['x509', '-in', file, '-text', '-noout'], { encoding: 'utf8' });
    expect(text).to.match(/Version: 3 \(0x2\)/);
    expect(text.replace(/\s+/g, '')).to.include('SerialNumber:7f:a0:b1:c2:d3:e4:f5:06:17:28:39:4a:5b:6c:7d:8e');
    expect(text.match(/Signature Algorithm: ecdsa-with-SHA256/g)).to.have.length(2);
    expect(text).to.match(/Issuer: CN ?= ?lwm2m\.example\.com/);
    expect(text).to.match(/Subject: CN ?= ?lwm2m\.example\.com/);
    expect(text).to.match(/Not Before: Jan {1,2}2 03:04:05 2026 GMT/);
    expect(text).to.match(/Not After : Jul {1,2}8 09:10:11 2055 GMT/);
    expect(text).to.match(/ASN1 OID: prime256v1/);
    expect(text).to.match(/X509v3 Basic Constraints: critical\s+CA:FALSE/);
    expect(text).to.match(/X509v3 Key Usage: critical\s+Digital Signature\n/);
    expect(text).to.match(/X509v3 Extended Key Usage:\s*\n\s+TLS Web Server Authentication/);
    expect(text).to.match(/X509v3 Subject Alternative Name:\s*\n\s+DNS:lwm2m\.example\.com, IP Address:192\.0\.2\.7, IP Address:2001:DB8:0:0:0:0:0:1\n/);
    expect(text).to.match(/X509v3 Subject Key Identifier/);
    // The public key in the certificate is the stored one.
    const pub = execFileSync('openssl', ['x509', '-in', file, '-pubkey', '-noout'], { encoding: 'utf8' });
    expect(pub.replace(/-----[A-Z ]+-----|\s/g, '')).to.equal(k.publicKey.toString('base64'));
    // asn1parse walks all of it.
    expect(openssl(['asn1parse', '-in', file, '-strictpem']).code).to.equal(0);
    const node = new X509Certificate(der);
    expect(node.verify(node.publicKey)).to.equal(true);
    expect(node.subject).to.equal('CN=lwm2m.example.com');
    expect(node.issuer).to.equal('CN=lwm2m.example.com');
    expect(node.serialNumber.toLowerCase()).to.equal('7fa0b1c2d3e4f5061728394a5b6c7d8e');
    expect(certificateValidity(der)).to.deep.equal({ notBefore, notAfter });
    expect(certificateNames(der)).to.deep.equal({ cn: 'lwm2m.example.com', sans: ['lwm2m.example.com', '192.0.2.7', '2001:db8:0:0:0:0:0:1'] });
  });

  it('openssl verify accepts it as its own trust anchor for a TLS server with that name / IP, and rejects other names', () => {
    const k = keyPair();
    const now = Date.now();
    const der = issueSelfSignedCertificate({ ...k, notBefore: now - 3600_000, notAfter: now + 3600_000 * 24, subject: { commonName: 'lwm2m.example.com', dnsNames: ['lwm2m.example.com'], ipAddresses: ['127.0.0.1'] } });
    const file = join(dir, 'verify.pem');
    writeFileSync(file, certificatePem([der]));
    const base = ['verify', '-x509_strict', '-purpose', 'sslserver', '-CAfile', file];
    expect(openssl([...base, file]).out).to.match(/: OK/);
    expect(openssl([...base, '-verify_hostname', 'lwm2m.example.com', file]).out).to.match(/: OK/);
    expect(openssl([...base, '-verify_ip', '127.0.0.1', file]).out).to.match(/: OK/);
    const wrongHost = openssl([...base, '-verify_hostname', 'other.example.com', file]);
    expect(wrongHost.code).to.not.equal(0);
    expect(wrongHost.out).to.match(/hostname mismatch/i);
    // Another key's certificate does not verify against this one.
    const other = issueSelfSignedCertificate({ ...keyPair(), notBefore: now - 3600_000, notAfter: now + 3600_000, subject: { commonName: 'lwm2m.example.com', dnsNames: [], ipAddresses: [] } });
    const otherFile = join(dir, 'other.pem');
    writeFileSync(otherFile, certificatePem([other]));
    expect(openssl([...base, otherFile]).code).to.not.equal(0);
  });

  it('refuses a key that is not P-256, a private key of another pair, and an empty name', () => {
    const k = keyPair();
    const subject = { commonName: 'x', dnsNames: [], ipAddresses: [] };
    const p384 = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
    expect(() => issueSelfSignedCertificate({ publicKey: p384.publicKey.export({ format: 'der', type: 'spki' }), privateKey: p384.privateKey.export({ format: 'der', type: 'pkcs8' }), subject, notBefore: 0, notAfter: 1000 })).to.throw(RangeError, /P-256/);
    expect(() => issueSelfSignedCertificate({ publicKey: k.publicKey, privateKey: keyPair().privateKey, subject, notBefore: 0, notAfter: 1000 })).to.throw(RangeError, /does not belong/);
    expect(() => issueSelfSignedCertificate({ ...k, subject: { ...subject, commonName: '' }, notBefore: 0, notAfter: 1000 })).to.throw(RangeError, /common name/);
  });

  it('subjectForHost: a DNS host or an IP literal (IPv6 with brackets) as CN and subjectAltName', () => {
    expect(subjectForHost('LwM2M.Example.com')).to.deep.equal({ commonName: 'LwM2M.Example.com', dnsNames: ['lwm2m.example.com'], ipAddresses: [] });
    expect(subjectForHost('[2001:db8::1]')).to.deep.equal({ commonName: '2001:db8::1', dnsNames: [], ipAddresses: ['2001:db8::1'] });
    expect(subjectForHost('127.0.0.1')).to.deep.equal({ commonName: '127.0.0.1', dnsNames: [], ipAddresses: ['127.0.0.1'] });
  });

  it('the data-directory file: made when missing, kept while it fits, made again for another key, other names, near expiry or garbage', () => {
    const file = join(dir, 'registration-certificate.pem');
    const k = keyPair();
    const subject = subjectForHost('127.0.0.1');
    const now = Date.UTC(2026, 5, 1);
    const first = loadOrCreateServerCertificate({ file, ...k, subject, now });
    expect(first.created).to.equal('missing');
    expect(parseCertificateFile(readFileSync(file))[0]!.equals(first.der)).to.equal(true);
    const v = certificateValidity(first.der);
    expect(v.notBefore).to.be.at.most(now);
    expect(v.notAfter - v.notBefore).to.equal(SELF_SIGNED_VALIDITY_MS);

    const again = loadOrCreateServerCertificate({ file, ...k, subject, now: now + 1000 });
    expect(again.created).to.equal(undefined);
    expect(again.der.equals(first.der)).to.equal(true);

    const renamed = loadOrCreateServerCertificate({ file, ...k, subject: subjectForHost('lwm2m.example.com'), now });
    expect(renamed.created).to.equal('other names');
    expect(certificateNames(renamed.der).cn).to.equal('lwm2m.example.com');

    const k2 = keyPair();
    const rekeyed = loadOrCreateServerCertificate({ file, ...k2, subject: subjectForHost('lwm2m.example.com'), now });
    expect(rekeyed.created).to.equal('other key');
    expect(new X509Certificate(rekeyed.der).publicKey.export({ format: 'der', type: 'spki' }).equals(k2.publicKey)).to.equal(true);

    const late = certificateValidity(rekeyed.der).notAfter - RENEW_BEFORE_MS + 1000;
    const renewed = loadOrCreateServerCertificate({ file, ...k2, subject: subjectForHost('lwm2m.example.com'), now: late });
    expect(renewed.created).to.equal('expiring');
    expect(certificateValidity(renewed.der).notAfter).to.be.greaterThan(late + RENEW_BEFORE_MS);

    writeFileSync(file, 'not a certificate');
    expect(loadOrCreateServerCertificate({ file, ...k2, subject, now }).created).to.equal('unreadable');
    expect(new X509Certificate(readFileSync(file)).verify(new X509Certificate(readFileSync(file)).publicKey)).to.equal(true);
  });
});
