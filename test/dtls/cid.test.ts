/**
 * RFC 9146 Connection IDs: the tls12_cid record format and its protection (the spec digest's §9.5
 * CID vector), record parse/serialize round trips, and the negotiation in the server (ServerHello
 * echo, zero-length and disabled CIDs, non-CID records refused once a CID is expected).
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { ContentType, ExtensionType } from '../../src/dtls/constants.js';
import { findExtension, parseConnectionId, serializeConnectionId } from '../../src/dtls/messages.js';
import { cidHeader, createProtection } from '../../src/dtls/protection.js';
import { innerPlaintext, parseDatagram, parseInnerPlaintext, serializeRecord, type DtlsRecord } from '../../src/dtls/record.js';
import { TLS_PSK_WITH_AES_128_CBC_SHA256, TLS_PSK_WITH_AES_128_CCM_8 } from '../../src/dtls/suites.js';
import { Harness } from './harness.js';
import { PskClient } from './psk-client.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

describe('dtls/Connection ID (RFC 9146): records and protection', () => {
  // Spec digest §9.5: client_write_key / client_write_IV of the PSK + CCM_8 example, and its CID record.
  const clientKeys = { key: hex('04379f48b525ab8b1216a048b400ef16'), iv: hex('e043d6a0'), macKey: Buffer.alloc(0) };
  const plaintext = hex('48021a2b0102030405060708b27264');
  const cid = hex('c0ffee');

  it('§9.5: the CID additional data, and the tls12_cid record byte for byte', () => {
    const inner = innerPlaintext(ContentType.applicationData, plaintext);
    expect(inner.toString('hex')).to.equal('48021a2b0102030405060708b27264' + '17');
    expect(cidHeader(0xfefd, 1, 1, cid, inner.length).toString('hex')).to.equal(
      'ffffffffffffffff' + '19' + '03' + '19' + 'fefd' + '0001' + '000000000001' + 'c0ffee' + '0010',
    );
    const p = createProtection(TLS_PSK_WITH_AES_128_CCM_8, clientKeys);
    const fragment = p.encrypt(ContentType.tls12Cid, 0xfefd, 1, 1, inner, cid);
    const record = serializeRecord({ type: ContentType.tls12Cid, version: 0xfefd, epoch: 1, seq: 1, cid, fragment });
    expect(record.toString('hex')).to.equal(
      '19fefd0001000000000001c0ffee0020' + '0001000000000001' + 'c3b7022aae906ef82e165d9525e1baf2' + 'f58847246022125a',
    );
  });

  it('§9.5: parses and decrypts the CID record back to the application data', () => {
    const wire = hex('19fefd0001000000000001c0ffee0020 0001000000000001 c3b7022aae906ef82e165d9525e1baf2 f58847246022125a');
    const { records, dropped } = parseDatagram(wire, 3);
    expect(dropped).to.equal(0);
    const r = records[0]!;
    expect([r.type, r.epoch, r.seq, r.cid!.toString('hex'), r.fragment.length]).to.deep.equal([25, 1, 1, 'c0ffee', 32]);
    const p = createProtection(TLS_PSK_WITH_AES_128_CCM_8, clientKeys);
    const inner = p.decrypt(r.type, r.version, r.epoch, r.seq, r.fragment, r.cid)!;
    expect(parseInnerPlaintext(inner)).to.deep.equal({ type: ContentType.applicationData, content: plaintext });
    // The CID is authenticated: another CID, or none, does not verify.
    expect(p.decrypt(r.type, r.version, r.epoch, r.seq, r.fragment, hex('c0ffef'))).to.equal(undefined);
    expect(p.decrypt(r.type, r.version, r.epoch, r.seq, r.fragment)).to.equal(undefined);
  });

  it('CBC-SHA256 with a CID: round trip, and the MAC covers the CID', () => {
    const keys = { key: Buffer.alloc(16, 7), iv: Buffer.alloc(0), macKey: Buffer.alloc(32, 9) };
    const p = createProtection(TLS_PSK_WITH_AES_128_CBC_SHA256, keys);
    const inner = innerPlaintext(ContentType.alert, hex('0100'));
    const fragment = p.encrypt(ContentType.tls12Cid, 0xfefd, 1, 42, inner, cid);
    expect(p.decrypt(ContentType.tls12Cid, 0xfefd, 1, 42, fragment, cid)!.equals(inner)).to.equal(true);
    expect(p.decrypt(ContentType.tls12Cid, 0xfefd, 1, 42, fragment, hex('000000'))).to.equal(undefined);
    expect(p.decrypt(ContentType.tls12Cid, 0xfefd, 1, 42, fragment)).to.equal(undefined);
    expect(p.decrypt(ContentType.tls12Cid, 0xfefd, 1, 43, fragment, cid)).to.equal(undefined);
  });

  it('inner plaintext: the last non-zero byte is the type, zeros after it are padding; all zeros is invalid', () => {
    expect(parseInnerPlaintext(hex('aabb 17 000000'))).to.deep.equal({ type: 23, content: hex('aabb') });
    expect(parseInnerPlaintext(hex('15'))).to.deep.equal({ type: 21, content: Buffer.alloc(0) });
    expect(parseInnerPlaintext(hex('000000'))).to.equal(undefined);
    expect(parseInnerPlaintext(Buffer.alloc(0))).to.equal(undefined);
  });

  it('type-25 records: dropped without a CID length of ours and in epoch 0; a short CID header ends the parse', () => {
    const rec = serializeRecord({ type: 25, version: 0xfefd, epoch: 1, seq: 3, cid: hex('01020304'), fragment: hex('aa') });
    expect(parseDatagram(rec, 4).records).to.have.length(1);
    expect(parseDatagram(rec).records).to.have.length(0);
    const epoch0 = Buffer.from(rec);
    epoch0.writeUInt16BE(0, 3);
    const plain = serializeRecord({ type: 23, version: 0xfefd, epoch: 1, seq: 4, fragment: hex('bb') });
    const r = parseDatagram(Buffer.concat([epoch0, plain]), 4);
    expect(r.records.map((x) => x.seq)).to.deep.equal([4]);
    expect(r.dropped).to.equal(1);
    const cut = parseDatagram(rec.subarray(0, 15), 4);
    expect(cut.records).to.have.length(0);
    expect(cut.dropped).to.equal(1);
  });

  it('serializeRecord refuses a CID on another type, and type 25 without one', () => {
    expect(() => serializeRecord({ type: 23, version: 0xfefd, epoch: 1, seq: 0, cid: hex('01'), fragment: hex('00') })).to.throw(RangeError);
    expect(() => serializeRecord({ type: 25, version: 0xfefd, epoch: 1, seq: 0, fragment: hex('00') })).to.throw(RangeError);
  });

  it('fast-check: datagrams mixing CID and plain records parse back to what was serialized', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 16 }).chain((cidLength) =>
          fc.tuple(
            fc.constant(cidLength),
            fc.array(
              fc.record({
                withCid: fc.boolean(),
                type: fc.constantFrom(20, 21, 22, 23),
                epoch: fc.integer({ min: 1, max: 0xffff }),
                seq: fc.integer({ min: 0, max: 2 ** 48 - 1 }),
                cid: fc.uint8Array({ minLength: cidLength, maxLength: cidLength }),
                fragment: fc.uint8Array({ maxLength: 200 }),
              }),
              { minLength: 1, maxLength: 6 },
            ),
          ),
        ),
        ([cidLength, specs]) => {
          const records: DtlsRecord[] = specs.map((s) => (s.withCid
            ? { type: 25, version: 0xfefd, epoch: s.epoch, seq: s.seq, cid: Buffer.from(s.cid), fragment: Buffer.from(s.fragment) }
            : { type: s.type, version: 0xfefd, epoch: s.epoch, seq: s.seq, fragment: Buffer.from(s.fragment) }));
          const parsed = parseDatagram(Buffer.concat(records.map(serializeRecord)), cidLength);
          expect(parsed.dropped).to.equal(0);
          expect(parsed.records.map((r) => ({ ...r, fragment: r.fragment.toString('hex'), cid: r.cid?.toString('hex') }))).to.deep.equal(
            records.map((r) => ({ ...r, fragment: r.fragment.toString('hex'), cid: r.cid?.toString('hex') })),
          );
        },
      ),
      { numRuns: 300 },
    );
  });

  it('fast-check: parseDatagram never throws on arbitrary bytes, whatever the CID length', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.integer({ min: 0, max: 255 }), (bytes, cidLength) => {
        const b = Buffer.from(bytes);
        if (b.length > 0) b[0] = 25; // make type-25 parsing likely
        const { records } = parseDatagram(b, cidLength);
        for (const r of records) expect(r.cid?.length ?? cidLength).to.equal(cidLength);
      }),
      { numRuns: 500 },
    );
  });

  it('the connection_id extension body: cid<0..255>', () => {
    expect(serializeConnectionId(hex('0a0b')).toString('hex')).to.equal('020a0b');
    expect(parseConnectionId(hex('00'))!.length).to.equal(0);
    expect(parseConnectionId(hex('020a0b'))!.toString('hex')).to.equal('0a0b');
    expect(parseConnectionId(hex('030a0b'))).to.equal(undefined);
    expect(parseConnectionId(hex('010a0b'))).to.equal(undefined);
  });
});

describe('dtls/Connection ID (RFC 9146): negotiation in the server', () => {
  const KEY = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
  const keys = { 'dev-1': KEY };
  const cidExt = (cid: Buffer): { type: number; data: Buffer } => ({ type: ExtensionType.connectionId, data: serializeConnectionId(cid) });
  let h: Harness | undefined;
  afterEach(() => h?.close());

  it('a client without connection_id gets no connection_id in the ServerHello', async () => {
    h = new Harness(keys);
    const c = await h.connect(Harness.peer(5000), { identity: Buffer.from('dev-1'), psk: KEY });
    expect(c.state).to.equal('established');
    expect(findExtension(c.serverExtensions, ExtensionType.connectionId)).to.equal(undefined);
  });

  it('echoes a fresh 6-byte CID by default; a client that then sends plain records in epoch 1 is not accepted', async () => {
    h = new Harness(keys);
    // A zero-length client CID: the server writes plain records to us (this test client reads them), but expects its CID from us.
    const c = await h.connect(Harness.peer(5001), { identity: Buffer.from('dev-1'), psk: KEY, extraExtensions: [cidExt(Buffer.alloc(0))] });
    const ext = findExtension(c.serverExtensions, ExtensionType.connectionId);
    expect(ext).to.not.equal(undefined);
    expect(parseConnectionId(ext!.data)!.length).to.equal(6);
    // Our Finished went as a plain epoch-1 handshake record: dropped, so the handshake never completes.
    expect(c.state).to.not.equal('established');
    expect(h.server.stats().handshakesCompleted).to.equal(0);
  });

  it('two handshakes get different CIDs; connectionIdLength sets the length', async () => {
    h = new Harness(keys, { connectionIdLength: 9 });
    const a = await h.connect(Harness.peer(5002), { identity: Buffer.from('dev-1'), psk: KEY, extraExtensions: [cidExt(Buffer.alloc(0))] });
    const b = await h.connect(Harness.peer(5003), { identity: Buffer.from('dev-1'), psk: KEY, extraExtensions: [cidExt(Buffer.alloc(0))] });
    const ca = parseConnectionId(findExtension(a.serverExtensions, ExtensionType.connectionId)!.data)!;
    const cb = parseConnectionId(findExtension(b.serverExtensions, ExtensionType.connectionId)!.data)!;
    expect([ca.length, cb.length]).to.deep.equal([9, 9]);
    expect(ca.equals(cb)).to.equal(false);
  });

  it('connectionIdLength 0: a zero-length CID is echoed and plain records are accepted', async () => {
    h = new Harness(keys, { connectionIdLength: 0 });
    const c = await h.connect(Harness.peer(5004), { identity: Buffer.from('dev-1'), psk: KEY, extraExtensions: [cidExt(Buffer.alloc(0))] });
    expect(c.state).to.equal('established');
    expect(findExtension(c.serverExtensions, ExtensionType.connectionId)!.data.toString('hex')).to.equal('00');
  });

  it('connectionIdLength false: the extension is ignored', async () => {
    h = new Harness(keys, { connectionIdLength: false });
    const c = await h.connect(Harness.peer(5005), { identity: Buffer.from('dev-1'), psk: KEY, extraExtensions: [cidExt(hex('0102'))] });
    expect(c.state).to.equal('established');
    expect(findExtension(c.serverExtensions, ExtensionType.connectionId)).to.equal(undefined);
  });

  it('a malformed connection_id is refused with decode_error, statelessly', async () => {
    h = new Harness(keys);
    const c = new PskClient({ identity: Buffer.from('dev-1'), psk: KEY, extraExtensions: [{ type: ExtensionType.connectionId, data: hex('05aa') }] });
    await h.pump(c, Harness.peer(5006), c.hello());
    expect(c.alerts.map((a) => a.description)).to.deep.equal([50]);
    expect(h.server.stats().handshakesStarted).to.equal(0);
  });

  it('refuses a bad connectionIdLength', () => {
    expect(() => new Harness(keys, { connectionIdLength: 256 })).to.throw(RangeError);
    expect(() => new Harness(keys, { connectionIdLength: -1 })).to.throw(RangeError);
  });
});
