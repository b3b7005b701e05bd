import { expect } from 'chai';
import fc from 'fast-check';
import { parseAlert, serializeAlert, alertName, isChangeCipherSpec } from '../../src/dtls/alert.js';
import { ExtensionType, HandshakeType } from '../../src/dtls/constants.js';
import { fragmentMessage, fullMessage, isWhole, parseHandshakeFragments } from '../../src/dtls/handshake.js';
import {
  findExtension, parseClientHello, parseFinished, parseHelloVerifyRequest, parsePskClientKeyExchange, parseServerHello,
  serializeClientHello, serializeHelloVerifyRequest, serializePskClientKeyExchange, serializeServerHello,
  type ClientHello,
} from '../../src/dtls/messages.js';
import { HandshakeReassembler } from '../../src/dtls/reassembly.js';
import { parseDatagram } from '../../src/dtls/record.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

/** A ClientHello datagram captured from `openssl s_client -dtls1_2 -psk … -cipher PSK-AES128-CCM8` (OpenSSL 3.0). */
const OPENSSL_CLIENT_HELLO = hex(
  '16feff00000000000000000074010000680000000000000068fefda7be9fbd02de756fcdd2fdd0f7d1a01b5355739137d4864e9787eb463a' +
    '6744d100000004c0a800ff0100003a002300000016000000170000000d002a0028040305030603080708080809080a080b0804080508060401' +
    '05010601030303010302040205020602',
);

describe('dtls/handshake framing', () => {
  it('writes the 12-byte header: type, length(3), message_seq(2), offset(3), fragment_length(3)', () => {
    expect(fullMessage(14, 3, Buffer.alloc(0)).toString('hex')).to.equal('0e' + '000000' + '0003' + '000000' + '000000');
    expect(fullMessage(20, 0x0102, hex('aabb')).toString('hex')).to.equal('14' + '000002' + '0102' + '000000' + '000002' + 'aabb');
  });

  it('fragments a message with the same seq and length, increasing offsets', () => {
    const body = Buffer.from(Array.from({ length: 10 }, (_, i) => i));
    const frags = fragmentMessage(11, 2, body, 4).map((f) => f.toString('hex'));
    expect(frags).to.deep.equal([
      '0b' + '00000a' + '0002' + '000000' + '000004' + '00010203',
      '0b' + '00000a' + '0002' + '000004' + '000004' + '04050607',
      '0b' + '00000a' + '0002' + '000008' + '000002' + '0809',
    ]);
  });

  it('parses several fragments in one record and rejects fragments overrunning their message', () => {
    const two = Buffer.concat([fullMessage(16, 2, hex('0001aa')), fullMessage(20, 3, Buffer.alloc(12))]);
    const frags = parseHandshakeFragments(two)!;
    expect(frags.map((f) => [f.msgType, f.messageSeq, f.body.length, isWhole(f)])).to.deep.equal([[16, 2, 3, true], [20, 3, 12, true]]);
    const over = hex('0b 000004 0000 000003 000002 aabb'); // offset 3 + 2 > length 4
    expect(parseHandshakeFragments(over)).to.equal(undefined);
    expect(parseHandshakeFragments(hex('0b 000004 0000 0000'))).to.equal(undefined);
    expect(parseHandshakeFragments(Buffer.alloc(0))).to.equal(undefined);
  });

  it('parses the captured OpenSSL ClientHello: version, suites with SCSV, no cookie, extensions', () => {
    const { records } = parseDatagram(OPENSSL_CLIENT_HELLO);
    expect(records).to.have.length(1);
    expect(records[0]!.version).to.equal(0xfeff);
    const [f] = parseHandshakeFragments(records[0]!.fragment)!;
    expect(f!.msgType).to.equal(HandshakeType.clientHello);
    expect(isWhole(f!)).to.equal(true);
    const ch = parseClientHello(f!.body)!;
    expect(ch.clientVersion).to.equal(0xfefd);
    expect(ch.cookie.length).to.equal(0);
    expect(ch.sessionId.length).to.equal(0);
    expect(ch.cipherSuites).to.deep.equal([0xc0a8, 0x00ff]);
    expect(ch.compressionMethods).to.deep.equal([0]);
    expect(ch.extensions!.map((e) => e.type)).to.deep.equal([35, 22, 23, 13]);
    expect(findExtension(ch.extensions, ExtensionType.extendedMasterSecret)!.data.length).to.equal(0);
    expect(serializeClientHello(ch).equals(f!.body)).to.equal(true);
  });

  it('rejects malformed ClientHellos: duplicate extensions, odd suites, trailing bytes, long session id', () => {
    const base: ClientHello = {
      clientVersion: 0xfefd, random: Buffer.alloc(32, 1), sessionId: Buffer.alloc(0), cookie: hex('0102'),
      cipherSuites: [0xc0a8], compressionMethods: [0], extensions: [{ type: 23, data: Buffer.alloc(0) }],
    };
    const ok = serializeClientHello(base);
    expect(parseClientHello(ok)!.cookie.toString('hex')).to.equal('0102');
    const dup = serializeClientHello({ ...base, extensions: [{ type: 23, data: Buffer.alloc(0) }, { type: 23, data: Buffer.alloc(0) }] });
    expect(parseClientHello(dup)).to.equal(undefined);
    expect(parseClientHello(Buffer.concat([ok, hex('00')]))).to.equal(undefined);
    const odd = Buffer.from(ok);
    odd.writeUInt16BE(3, 2 + 32 + 1 + 3); // cipher_suites length
    expect(parseClientHello(odd)).to.equal(undefined);
    const longSid = serializeClientHello({ ...base, sessionId: Buffer.alloc(33) });
    expect(parseClientHello(longSid)).to.equal(undefined);
    const noExt = serializeClientHello({ ...base, extensions: undefined });
    expect(parseClientHello(noExt)!.extensions).to.equal(undefined);
  });

  it('HelloVerifyRequest, ServerHello, PSK ClientKeyExchange, Finished, Alert encodings', () => {
    expect(serializeHelloVerifyRequest({ serverVersion: 0xfeff, cookie: hex('aabbcc') }).toString('hex')).to.equal('feff03aabbcc');
    expect(parseHelloVerifyRequest(hex('feff03aabbcc'))!.cookie.toString('hex')).to.equal('aabbcc');
    expect(parseHelloVerifyRequest(hex('feff04aabbcc'))).to.equal(undefined);
    const sh = serializeServerHello({
      serverVersion: 0xfefd, random: Buffer.alloc(32, 0x22), sessionId: Buffer.alloc(0), cipherSuite: 0xc0a8, compressionMethod: 0,
      extensions: [{ type: 0xff01, data: hex('00') }],
    });
    expect(sh.toString('hex')).to.equal('fefd' + '22'.repeat(32) + '00' + 'c0a8' + '00' + '0005' + 'ff01' + '0001' + '00');
    expect(parseServerHello(sh)!.cipherSuite).to.equal(0xc0a8);
    expect(serializePskClientKeyExchange(Buffer.from('id')).toString('hex')).to.equal('00026964');
    expect(parsePskClientKeyExchange(hex('00026964'))!.toString()).to.equal('id');
    expect(parsePskClientKeyExchange(hex('000369'))).to.equal(undefined);
    expect(parseFinished(Buffer.alloc(12))).to.not.equal(undefined);
    expect(parseFinished(Buffer.alloc(11))).to.equal(undefined);
    expect(serializeAlert({ level: 2, description: 115 }).toString('hex')).to.equal('0273');
    expect(parseAlert(hex('0100'))).to.deep.equal({ level: 1, description: 0 });
    expect(parseAlert(hex('01'))).to.equal(undefined);
    expect(alertName(115)).to.equal('unknown_psk_identity(115)');
    expect(isChangeCipherSpec(hex('01'))).to.equal(true);
    expect(isChangeCipherSpec(hex('0101'))).to.equal(false);
  });

  it('fuzz: message parsers never throw on random or mutated input (bounded)', () => {
    const seed = parseHandshakeFragments(parseDatagram(OPENSSL_CLIENT_HELLO).records[0]!.fragment)![0]!.body;
    const all = (b: Buffer): void => {
      parseClientHello(b);
      parseServerHello(b);
      parseHelloVerifyRequest(b);
      parsePskClientKeyExchange(b);
      parseHandshakeFragments(b);
      parseAlert(b);
    };
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (a) => all(Buffer.from(a))), { numRuns: 2000 });
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }), fc.nat(), (flips, cut) => {
        const b = Buffer.from(seed);
        for (const [at, v] of flips) b[at % b.length] = v;
        all(b);
        all(b.subarray(0, cut % (b.length + 1)));
        const ch = parseClientHello(b);
        if (ch) expect(ch.random.length).to.equal(32);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('dtls/reassembly', () => {
  const frag = (seq: number, type: number, body: Buffer, off: number, len: number) =>
    parseHandshakeFragments(Buffer.concat([fullMessage(type, seq, body).subarray(0, 6), Buffer.from([off >> 16, (off >> 8) & 255, off & 255, len >> 16, (len >> 8) & 255, len & 255]), body.subarray(off, off + len)]))![0]!;

  it('delivers messages in message_seq order, buffering future ones', () => {
    const r = new HandshakeReassembler(1);
    expect(r.add(frag(2, 20, Buffer.alloc(12, 7), 0, 12))).to.equal('buffered');
    expect(r.take()).to.equal(undefined);
    expect(r.add(frag(1, 16, hex('0001aa'), 0, 3))).to.equal('buffered');
    expect(r.take()!.msgType).to.equal(16);
    expect(r.take()!.msgType).to.equal(20);
    expect(r.take()).to.equal(undefined);
    expect(r.next).to.equal(3);
    expect(r.add(frag(1, 16, hex('0001aa'), 0, 3))).to.equal('old');
    expect(r.bufferedBytes).to.equal(0);
  });

  it('reassembles shuffled, duplicated and overlapping fragments (property)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 600 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 200 })), { maxLength: 10 }),
        fc.integer({ min: 1, max: 100 }),
        fc.infiniteStream(fc.nat()),
        (bodyArr, extra, size, rnd) => {
          const body = Buffer.from(bodyArr);
          const pieces: [number, number][] = [];
          for (let o = 0; o < body.length; o += size) pieces.push([o, Math.min(size, body.length - o)]);
          for (const [o, l] of extra) {
            const off = o % body.length;
            pieces.push([off, Math.min(l, body.length - off)]);
          }
          const it = rnd[Symbol.iterator]();
          for (let i = pieces.length - 1; i > 0; i--) {
            const j = (it.next().value as number) % (i + 1);
            [pieces[i], pieces[j]] = [pieces[j]!, pieces[i]!];
          }
          const r = new HandshakeReassembler(5);
          let got: Buffer | undefined;
          for (const [o, l] of pieces) {
            expect(r.add(frag(5, 11, body, o, l))).to.equal(got === undefined ? 'buffered' : 'old');
            const m = r.take();
            if (m) {
              expect(got).to.equal(undefined);
              got = m.body;
            }
          }
          expect(got?.toString('hex')).to.equal(body.toString('hex'));
          expect(r.bufferedBytes).to.equal(0);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('is not complete until every byte arrived', () => {
    const body = Buffer.alloc(10, 3);
    const r = new HandshakeReassembler(0);
    r.add(frag(0, 11, body, 0, 4));
    r.add(frag(0, 11, body, 6, 4));
    expect(r.take()).to.equal(undefined);
    r.add(frag(0, 11, body, 3, 3));
    expect(r.take()!.body.equals(body)).to.equal(true);
  });

  it('drops fragments that disagree on type or length, are too long, too far ahead, or exceed the buffer cap', () => {
    const r = new HandshakeReassembler(0, { maxMessageLength: 100, maxBufferedBytes: 150, maxAhead: 2 });
    expect(r.add(frag(0, 11, Buffer.alloc(50), 0, 10))).to.equal('buffered');
    expect(r.add(frag(0, 12, Buffer.alloc(50), 10, 10))).to.equal('dropped');
    expect(r.add(frag(0, 11, Buffer.alloc(60), 10, 10))).to.equal('dropped');
    expect(r.add(frag(1, 11, Buffer.alloc(101), 0, 10))).to.equal('dropped');
    expect(r.add(frag(3, 11, Buffer.alloc(10), 0, 10))).to.equal('dropped');
    expect(r.add(frag(1, 11, Buffer.alloc(100), 0, 10))).to.equal('buffered');
    expect(r.add(frag(2, 11, Buffer.alloc(10), 0, 10))).to.equal('dropped'); // 50 + 100 + 10 > 150
    expect(r.bufferedBytes).to.equal(150);
    r.clear();
    expect(r.bufferedBytes).to.equal(0);
  });

  it('delivers an empty message (ServerHelloDone-like) from one fragment', () => {
    const r = new HandshakeReassembler(0);
    r.add(parseHandshakeFragments(fullMessage(14, 0, Buffer.alloc(0)))![0]!);
    expect(r.take()).to.deep.include({ msgType: 14, messageSeq: 0 });
  });
});
