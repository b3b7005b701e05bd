import { expect } from 'chai';
import fc from 'fast-check';
import { ContentType, MAX_CIPHERTEXT_LENGTH, MAX_PLAINTEXT_LENGTH } from '../../src/dtls/constants.js';
import { parseDatagram, serializeRecord, type DtlsRecord } from '../../src/dtls/record.js';
import { ReplayWindow } from '../../src/dtls/replay.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

const recordArb: fc.Arbitrary<DtlsRecord> = fc.record({
  type: fc.constantFrom(20, 21, 22, 23),
  version: fc.constantFrom(0xfefd, 0xfeff),
  epoch: fc.integer({ min: 0, max: 0xffff }),
  seq: fc.integer({ min: 0, max: 2 ** 48 - 1 }),
  fragment: fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
});

describe('dtls/record', () => {
  it('serializes the 13-byte header exactly (type, version, epoch, 48-bit seq, length)', () => {
    const rec = serializeRecord({ type: 23, version: 0xfefd, epoch: 1, seq: 0x0102030405, fragment: hex('aabbcc') });
    expect(rec.toString('hex')).to.equal('17' + 'fefd' + '0001' + '000102030405' + '0003' + 'aabbcc');
  });

  it('parses the §9.5 application-data record header', () => {
    const bytes = hex(`17 fe fd 00 01 00 00 00 00 00 01 00 1f ${'00'.repeat(31)}`);
    const { records, dropped } = parseDatagram(bytes);
    expect(dropped).to.equal(0);
    expect(records).to.have.length(1);
    expect(records[0]!.type).to.equal(ContentType.applicationData);
    expect(records[0]!.version).to.equal(0xfefd);
    expect(records[0]!.epoch).to.equal(1);
    expect(records[0]!.seq).to.equal(1);
    expect(records[0]!.fragment.length).to.equal(31);
  });

  it('reads the largest 48-bit sequence number', () => {
    const { records } = parseDatagram(hex('16 fefd 0000 ffffffffffff 0000'));
    expect(records[0]!.seq).to.equal(2 ** 48 - 1);
  });

  it('splits several records in one datagram', () => {
    const a = serializeRecord({ type: 22, version: 0xfefd, epoch: 0, seq: 5, fragment: hex('01') });
    const b = serializeRecord({ type: 20, version: 0xfefd, epoch: 0, seq: 6, fragment: hex('01') });
    const c = serializeRecord({ type: 22, version: 0xfefd, epoch: 1, seq: 0, fragment: hex('0203') });
    const { records, dropped } = parseDatagram(Buffer.concat([a, b, c]));
    expect(dropped).to.equal(0);
    expect(records.map((r) => [r.type, r.epoch, r.seq, r.fragment.toString('hex')])).to.deep.equal([
      [22, 0, 5, '01'], [20, 0, 6, '01'], [22, 1, 0, '0203'],
    ]);
  });

  it('drops a truncated trailing record but keeps the complete ones before it', () => {
    const a = serializeRecord({ type: 22, version: 0xfefd, epoch: 0, seq: 1, fragment: hex('0102') });
    const b = serializeRecord({ type: 22, version: 0xfefd, epoch: 0, seq: 2, fragment: hex('01020304') });
    const { records, dropped } = parseDatagram(Buffer.concat([a, b.subarray(0, b.length - 1)]));
    expect(records).to.have.length(1);
    expect(dropped).to.equal(1);
    const headerOnly = parseDatagram(Buffer.concat([a, b.subarray(0, 7)]));
    expect(headerOnly.records).to.have.length(1);
    expect(headerOnly.dropped).to.equal(1);
  });

  it('drops records of unknown type, non-DTLS version, tls12_cid and oversized length, and continues', () => {
    const good = serializeRecord({ type: 23, version: 0xfefd, epoch: 1, seq: 9, fragment: hex('00') });
    const badType = Buffer.from(good);
    badType[0] = 99;
    const tlsVersion = Buffer.from(good);
    tlsVersion.writeUInt16BE(0x0303, 1);
    const cid = Buffer.from(good);
    cid[0] = 25;
    const big = Buffer.alloc(13 + MAX_PLAINTEXT_LENGTH + 1);
    big[0] = 22;
    big.writeUInt16BE(0xfefd, 1);
    big.writeUInt16BE(MAX_PLAINTEXT_LENGTH + 1, 11); // epoch 0: plaintext limit
    const { records, dropped } = parseDatagram(Buffer.concat([badType, tlsVersion, cid, big, good]));
    expect(dropped).to.equal(4);
    expect(records).to.have.length(1);
    expect(records[0]!.seq).to.equal(9);
  });

  it('accepts protected records up to 2^14 + 2048 bytes in epochs > 0', () => {
    const ok = serializeRecord({ type: 23, version: 0xfefd, epoch: 1, seq: 0, fragment: Buffer.alloc(MAX_CIPHERTEXT_LENGTH) });
    expect(parseDatagram(ok).records).to.have.length(1);
    const over = Buffer.concat([ok.subarray(0, 13), Buffer.alloc(MAX_CIPHERTEXT_LENGTH + 1)]);
    over.writeUInt16BE(MAX_CIPHERTEXT_LENGTH + 1, 11);
    expect(parseDatagram(over).records).to.have.length(0);
  });

  it('refuses to serialize an out-of-range sequence number', () => {
    expect(() => serializeRecord({ type: 23, version: 0xfefd, epoch: 1, seq: 2 ** 48, fragment: Buffer.alloc(0) })).to.throw(RangeError);
  });

  it('round-trips any list of records through one datagram (property)', () => {
    fc.assert(
      fc.property(fc.array(recordArb, { minLength: 0, maxLength: 6 }), (recs) => {
        const { records, dropped } = parseDatagram(Buffer.concat(recs.map(serializeRecord)));
        expect(dropped).to.equal(0);
        expect(records.map((r) => ({ ...r, fragment: r.fragment.toString('hex') }))).to.deep.equal(
          recs.map((r) => ({ ...r, fragment: r.fragment.toString('hex') })),
        );
      }),
    );
  });

  it('fuzz: random and mutated datagrams only ever yield well-formed records (bounded)', () => {
    const check = (d: Buffer): void => {
      const { records } = parseDatagram(d);
      let total = 0;
      for (const r of records) {
        expect([20, 21, 22, 23]).to.include(r.type);
        expect(r.version >> 8).to.equal(0xfe);
        expect(r.seq).to.be.within(0, 2 ** 48 - 1);
        total += 13 + r.fragment.length;
      }
      expect(total).to.be.at.most(d.length);
    };
    fc.assert(fc.property(fc.uint8Array({ maxLength: 400 }), (a) => check(Buffer.from(a))), { numRuns: 2000 });
    fc.assert(
      fc.property(
        fc.array(recordArb, { minLength: 1, maxLength: 4 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }),
        fc.nat(),
        (recs, flips, cut) => {
          const d = Buffer.concat(recs.map(serializeRecord));
          for (const [at, v] of flips) d[at % d.length] = v;
          check(d);
          check(d.subarray(0, cut % (d.length + 1)));
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('dtls/replay window', () => {
  it('accepts new numbers, rejects repeats and numbers left of the 64-wide window', () => {
    const w = new ReplayWindow();
    expect(w.check(0)).to.equal(true);
    w.accept(0);
    expect(w.check(0)).to.equal(false);
    w.accept(100);
    expect(w.check(36)).to.equal(false); // 100 - 36 = 64: outside
    expect(w.check(37)).to.equal(true); // inside, unseen
    w.accept(37);
    expect(w.check(37)).to.equal(false);
    expect(w.check(99)).to.equal(true);
    expect(w.check(101)).to.equal(true);
    expect(w.highest).to.equal(100);
  });

  it('only moves on accept(): checking alone marks nothing', () => {
    const w = new ReplayWindow(32);
    expect(w.check(5)).to.equal(true);
    expect(w.check(5)).to.equal(true);
    expect(w.highest).to.equal(-1);
  });

  it('handles 48-bit sequence numbers and jumps larger than the window', () => {
    const w = new ReplayWindow(64);
    w.accept(3);
    w.accept(2 ** 48 - 2);
    expect(w.check(3)).to.equal(false);
    expect(w.check(2 ** 48 - 1)).to.equal(true);
    expect(w.check(2 ** 48 - 2)).to.equal(false);
    expect(w.check(2 ** 48 - 3)).to.equal(true);
  });

  it('rejects sizes that are not a multiple of 32 or below the RFC minimum', () => {
    expect(() => new ReplayWindow(16)).to.throw(RangeError);
    expect(() => new ReplayWindow(48)).to.throw(RangeError);
  });

  it('agrees with a set-based model (property)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(32, 64, 128),
        fc.array(fc.oneof(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 0, max: 2 ** 48 - 1 })), { maxLength: 200 }),
        (size, seqs) => {
          const w = new ReplayWindow(size);
          const seen = new Set<number>();
          let top = -1;
          for (const s of seqs) {
            const expected = !seen.has(s) && (s > top || top - s < size);
            expect(w.check(s), `seq ${s} top ${top}`).to.equal(expected);
            if (expected) {
              w.accept(s);
              seen.add(s);
              top = Math.max(top, s);
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
