import { expect } from 'chai';
import fc from 'fast-check';
import { generate, parse } from 'coap-packet';
import {
  ACK, CON, NON, RST, codeToString, decodeBlock, decodeMessage, decodeUint, describeMessage, encodeBlock,
  encodeEmpty, encodeMessage, encodeUint, optionValues, parseCode, peekHeader, Opt, type CoapMessage, type CoapOption,
} from '../../src/coap/message.js';
import { TtlMap } from '../../src/coap/ttl-map.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const o = (number: number, value: string | Buffer): CoapOption => ({ number, value: typeof value === 'string' ? Buffer.from(value) : value });

function decoded(buf: Buffer): CoapMessage {
  const r = decodeMessage(buf);
  if (!r.ok) throw new Error(`expected a valid message: ${r.reason}`);
  return r.message;
}

describe('coap/message codec', () => {
  // Wire examples from the digest, registration.md §9.3 [verified].
  const vectors: { name: string; bytes: string; msg: Parameters<typeof encodeMessage>[0] }[] = [
    {
      name: 'Read /3/0/0, Accept 112',
      bytes: '42 01 01 01 01 02 B1 33 01 30 01 30 61 70',
      msg: { type: CON, code: 0x01, messageId: 0x0101, token: hex('0102'), options: [o(11, '3'), o(11, '0'), o(11, '0'), o(17, Buffer.of(112))] },
    },
    {
      name: 'Write PUT /1/0, CF 11542, TLV C1 00 65',
      bytes: '42 03 01 03 01 04 B1 31 01 30 12 2D 16 FF C1 00 65',
      msg: { type: CON, code: 0x03, messageId: 0x0103, token: hex('0104'), options: [o(11, '1'), o(11, '0'), o(12, hex('2d16'))], payload: hex('c10065') },
    },
    {
      name: 'Execute POST /1/0/8',
      bytes: '42 02 01 04 01 05 B1 31 01 30 01 38',
      msg: { type: CON, code: 0x02, messageId: 0x0104, token: hex('0105'), options: [o(11, '1'), o(11, '0'), o(11, '8')] },
    },
    {
      name: 'Bootstrap-Request /bs?ep=dev1&pct=112',
      bytes: '41 02 00 01 11 B2 62 73 47 65 70 3D 64 65 76 31 07 70 63 74 3D 31 31 32',
      msg: { type: CON, code: 0x02, messageId: 1, token: hex('11'), options: [o(11, 'bs'), o(15, 'ep=dev1'), o(15, 'pct=112')] },
    },
  ];

  for (const v of vectors) {
    it(`encodes the digest vector: ${v.name}`, () => {
      expect(encodeMessage(v.msg).toString('hex')).to.equal(hex(v.bytes).toString('hex'));
    });
    it(`decodes the digest vector: ${v.name}`, () => {
      const m = decoded(hex(v.bytes));
      expect(m.type).to.equal(v.msg.type);
      expect(m.code).to.equal(v.msg.code);
      expect(m.messageId).to.equal(v.msg.messageId);
      expect(m.token).to.deep.equal(Buffer.from(v.msg.token!));
      expect(m.options.map((x) => [x.number, x.value.toString('hex')])).to.deep.equal(v.msg.options!.map((x) => [x.number, x.value.toString('hex')]));
      expect(m.payload).to.deep.equal(Buffer.from(v.msg.payload ?? []));
    });
  }

  it('sorts options stably by number on encode (repeated Uri-Path keeps its order)', () => {
    const buf = encodeMessage({ type: CON, code: 1, messageId: 1, options: [o(17, Buffer.of(40)), o(11, 'a'), o(15, 'q'), o(11, 'b')] });
    expect(optionValues(decoded(buf).options, Opt.UriPath).map(String)).to.deep.equal(['a', 'b']);
    expect(buf.subarray(4).toString('hex')).to.equal('b161' + '0162' + '4171' + '2128');
  });

  it('encodes extended option deltas and lengths (13 and 269 forms)', () => {
    const long = Buffer.alloc(300, 0x61);
    const buf = encodeMessage({ type: NON, code: 1, messageId: 2, options: [o(Opt.NoResponse, Buffer.of(2)), o(Opt.ProxyUri, long)] });
    // Proxy-Uri 35: delta 35 → D + 16; length 300 → E + 00 1F. No-Response 258: delta 223 → D + D2.
    expect(buf.subarray(4, 8).toString('hex')).to.equal('de16001f');
    expect(buf.subarray(8 + 300).toString('hex')).to.equal('d1d202');
    const m = decoded(buf);
    expect(m.options.map((x) => x.number)).to.deep.equal([35, 258]);
    expect(m.options[0]!.value).to.deep.equal(long);
  });

  it('encodes and reads empty messages', () => {
    expect(encodeEmpty(RST, 0xabcd).toString('hex')).to.equal('7000abcd');
    expect(encodeEmpty(ACK, 1).toString('hex')).to.equal('60000001');
    const m = decoded(hex('40000102'));
    expect([m.type, m.code, m.messageId, m.options.length, m.payload.length]).to.deep.equal([CON, 0, 0x0102, 0, 0]);
  });

  it('codes, uints and block values', () => {
    expect(codeToString(0x45)).to.equal('2.05');
    expect(codeToString(0x8d)).to.equal('4.13');
    expect(parseCode('2.31')).to.equal(0x5f);
    expect(parseCode(404)).to.equal(0x84);
    expect(() => parseCode('2.5')).to.throw(RangeError);
    expect(() => parseCode('8.00')).to.throw(RangeError);
    expect(() => parseCode(232)).to.throw(RangeError);
    expect(encodeUint(0).length).to.equal(0);
    expect(encodeUint(40).toString('hex')).to.equal('28');
    expect(encodeUint(11542).toString('hex')).to.equal('2d16');
    expect(encodeUint(0x10000).toString('hex')).to.equal('010000');
    expect(() => encodeUint(-1)).to.throw(RangeError);
    expect(decodeUint(hex('002d16'))).to.equal(11542);
    expect(decodeUint(hex('0102030405'))).to.equal(undefined);
    expect(decodeBlock(hex('4c'))).to.deep.equal({ num: 4, more: true, szx: 4 });
    expect(decodeBlock(Buffer.alloc(0))).to.deep.equal({ num: 0, more: false, szx: 0 });
    expect(encodeBlock(20, false, 6).toString('hex')).to.equal('0146');
  });

  const malformed: [string, string, boolean][] = [
    ['', 'shorter than the 4-byte header', false],
    ['40 01 00', 'shorter than the 4-byte header', false],
    ['80 01 00 01', 'unsupported CoAP version 2', false],
    ['49 01 00 01 01 02 03 04 05 06 07 08 09', 'token length 9 is reserved', true],
    ['48 01 00 01 01 02', 'truncated', true],
    ['40 01 00 01 F0', 'option delta nibble 15', true],
    ['40 01 00 01 1F', 'option length nibble 15', true],
    ['40 01 00 01 D1', 'option delta is truncated', true],
    ['40 01 00 01 E1 00', 'option delta is truncated', true],
    ['40 01 00 01 1D', 'option length is truncated', true],
    ['40 01 00 01 B5 61 62', 'overruns the datagram', true],
    ['40 01 00 01 FF', 'payload marker without payload', true],
    ['41 00 00 01 AA', 'empty message', true],
    ['60 00 00 01 FF 00', 'empty message', true],
    ['40 01 00 01 E0 FF FF', 'out of range', true],
  ];
  for (const [bytes, reason, hasHeader] of malformed) {
    it(`refuses ${bytes || '(nothing)'}: ${reason}`, () => {
      const r = decodeMessage(hex(bytes));
      expect(r.ok).to.equal(false);
      if (r.ok) return;
      expect(r.reason).to.contain(reason);
      expect(r.header !== undefined).to.equal(hasHeader);
    });
  }

  it('property: decodeMessage never throws and agrees with coap-packet on what it accepts', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 48 }),
          fc.uint8Array({ minLength: 4, maxLength: 48 }).map((b) => { b[0] = 0x40 | (b[0]! & 0x37); return b; }),
        ),
        (bytes) => {
          const buf = Buffer.from(bytes);
          const r = decodeMessage(buf);
          if (!r.ok) return;
          // Everything we accept, coap-packet parses to the same fields.
          const p = parse(buf);
          expect(p.messageId).to.equal(r.message.messageId);
          expect(p.code).to.equal(codeToString(r.message.code));
          expect(p.token).to.deep.equal(r.message.token);
          expect(p.options.length).to.equal(r.message.options.length);
          expect(p.payload).to.deep.equal(r.message.payload);
        },
      ),
      { numRuns: 300, seed: 7 },
    );
  });

  const optionArb = fc.record({
    number: fc.oneof(fc.constantFrom(1, 4, 6, 11, 12, 15, 17, 23, 27, 60, 258, 292), fc.integer({ min: 0, max: 2000 })),
    value: fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
  });
  const messageArb = fc.record({
    type: fc.constantFrom(CON, NON, ACK, RST),
    code: fc.integer({ min: 1, max: 255 }),
    messageId: fc.integer({ min: 0, max: 0xffff }),
    token: fc.uint8Array({ maxLength: 8 }).map((b) => Buffer.from(b)),
    options: fc.array(optionArb, { maxLength: 6 }),
    payload: fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)),
  });

  it('property: encode → decode round-trips (options in stable number order)', () => {
    fc.assert(
      fc.property(messageArb, (msg) => {
        const m = decoded(encodeMessage(msg));
        const sorted = [...msg.options].sort((a, b) => a.number - b.number);
        expect([m.type, m.code, m.messageId]).to.deep.equal([msg.type, msg.code, msg.messageId]);
        expect(m.token).to.deep.equal(msg.token);
        expect(m.options.map((x) => [x.number, x.value.toString('hex')])).to.deep.equal(sorted.map((x) => [x.number, x.value.toString('hex')]));
        expect(m.payload).to.deep.equal(msg.payload);
      }),
      { numRuns: 200, seed: 11 },
    );
  });

  it('property: encodeMessage produces what coap-packet generates for the same message', () => {
    fc.assert(
      fc.property(messageArb, (msg) => {
        const ours = encodeMessage(msg);
        const theirs = generate({
          confirmable: msg.type === CON, ack: msg.type === ACK, reset: msg.type === RST,
          code: codeToString(msg.code), messageId: msg.messageId, token: msg.token,
          options: msg.options.map((x) => ({ name: String(x.number), value: x.value })), payload: msg.payload,
        }, 4096);
        expect(ours.toString('hex')).to.equal(theirs.toString('hex'));
      }),
      { numRuns: 200, seed: 13 },
    );
  });

  it('peekHeader reads type, code, MID and token of outgoing datagrams', () => {
    expect(peekHeader(hex('42 01 01 01 01 02 B1 33'))).to.deep.equal({ type: CON, code: 1, messageId: 0x0101, tokenHex: '0102' });
    expect(peekHeader(hex('40 01'))).to.equal(undefined);
    expect(peekHeader(hex('49 01 00 00'))).to.equal(undefined);
  });

  it('describeMessage gives one log line without payload bytes', () => {
    expect(describeMessage(hex('41 02 00 01 11 B2 62 73 47 65 70 3D 64 65 76 31 07 70 63 74 3D 31 31 32'))).to.equal(
      'CON 0.02 mid=1 token=11 /bs?ep=dev1&pct=112, 0 bytes payload',
    );
    expect(describeMessage(hex('42 03 01 03 01 04 B1 31 01 30 12 2D 16 FF C1 00 65'))).to.equal(
      'CON 0.03 mid=259 token=0104 /1/0 ContentFormat=11542, 3 bytes payload',
    );
    expect(describeMessage(hex('40 01 00 01 FF'))).to.equal('malformed (payload marker without payload), 5 bytes');
  });
});

describe('coap/TtlMap', () => {
  it('expires entries after ttl and evicts the oldest beyond the cap', () => {
    let now = 0;
    const m = new TtlMap<number>(100, 3, () => now);
    m.set('a', 1);
    now = 50;
    m.set('b', 2);
    expect(m.get('a')).to.equal(1);
    now = 101;
    expect(m.get('a')).to.equal(undefined);
    expect(m.get('b')).to.equal(2);
    m.set('c', 3);
    m.set('d', 4);
    m.set('e', 5); // cap 3: 'b' goes
    expect(m.size).to.equal(3);
    expect(m.get('b')).to.equal(undefined);
    expect(m.get('e')).to.equal(5);
    now = 500;
    m.set('f', 6); // everything older has expired and is pruned on insert
    expect(m.size).to.equal(1);
  });
});
