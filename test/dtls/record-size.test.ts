/**
 * Record size limits against DtlsServer: max_fragment_length (RFC 6066 §4; codes 1..4 = 2^9..2^12)
 * and record_size_limit (RFC 8449; wins over max_fragment_length, §5). Checks the ServerHello's
 * answer, that every record the server sends - handshake fragments included - stays within the
 * client's limit, the refusal of application data above it, our own limit on what we accept, and
 * the refusal of invalid values.
 */
import { expect } from 'chai';
import { AlertDescription, AlertLevel, ContentType, ExtensionType } from '../../src/dtls/constants.js';
import { RecordSizeLimitError, type PeerAddressInfo } from '../../src/dtls/connection.js';
import { Flight } from '../../src/dtls/flight.js';
import { parseHandshakeFragments } from '../../src/dtls/handshake.js';
import { findExtension, type Extension } from '../../src/dtls/messages.js';
import { parseDatagram, RECORD_HEADER_LENGTH } from '../../src/dtls/record.js';
import type { DtlsServerOptions } from '../../src/dtls/server.js';
import { Harness, tick } from './harness.js';
import { PskClient, type PskClientOptions } from './psk-client.js';

const IDENTITY = Buffer.from('device-1');
const KEY = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
/** CCM_8 adds nonce_explicit (8) and tag (8). */
const CCM8_OVERHEAD = 16;

const mfl = (code: number): Extension => ({ type: ExtensionType.maxFragmentLength, data: Buffer.from([code]) });
const rsl = (limit: number): Extension => {
  const data = Buffer.alloc(2);
  data.writeUInt16BE(limit);
  return { type: ExtensionType.recordSizeLimit, data };
};

interface Run {
  readonly h: Harness;
  readonly client: PskClient;
  readonly peer: PeerAddressInfo;
  /** Every datagram the server sent during the handshake. */
  readonly down: Buffer[];
}

async function handshake(h: Harness, port: number, extraExtensions: Extension[], opts: Partial<PskClientOptions> = {}): Promise<Run> {
  const peer = Harness.peer(port);
  const client = new PskClient({ identity: IDENTITY, psk: KEY, extraExtensions, ...opts });
  const down: Buffer[] = [];
  await h.pump(client, peer, client.hello(), (d, dir) => {
    if (dir === 'down') down.push(d);
    return true;
  });
  return { h, client, peer, down };
}

/** The largest record payload (epoch 0: plaintext; epoch 1: ciphertext minus CCM_8's overhead) in `datagrams`. */
function largestRecordPlaintext(datagrams: readonly Buffer[]): number {
  const sizes = datagrams.flatMap((d) => parseDatagram(d).records).map((r) => (r.epoch === 0 ? r.fragment.length : r.fragment.length - CCM8_OVERHEAD));
  return Math.max(...sizes);
}

describe('dtls/record size limits (max_fragment_length, record_size_limit)', () => {
  let h: Harness;
  const make = (opts: Partial<DtlsServerOptions> = {}): Harness => {
    // A 1500-byte identity hint makes flight 4 big enough to need fragmenting under a small limit.
    h = new Harness({ [IDENTITY.toString('latin1')]: KEY }, { pskIdentityHint: Buffer.alloc(1500, 0x61), ...opts });
    return h;
  };
  afterEach(() => h?.close());

  it('max_fragment_length 2^9: echoed, every record ≤ 512 bytes of plaintext (the hint fragmented), datagrams of one record', async () => {
    make();
    const run = await handshake(h, 6000, [mfl(1)]);
    expect(run.client.state).to.equal('established');
    expect(findExtension(run.client.serverExtensions, ExtensionType.maxFragmentLength)?.data).to.deep.equal(Buffer.from([1]));
    expect(run.client.serverHint?.length).to.equal(1500);
    expect(largestRecordPlaintext(run.down)).to.be.at.most(512);
    // The ServerKeyExchange came in several fragments.
    const skeFragments = run.down.flatMap((d) => parseDatagram(d).records)
      .filter((r) => r.epoch === 0 && r.type === ContentType.handshake)
      .flatMap((r) => parseHandshakeFragments(r.fragment) ?? []).filter((f) => f.msgType === 12);
    expect(skeFragments.length).to.be.greaterThan(3);
    for (const d of run.down) expect(d.length).to.be.at.most(512 + RECORD_HEADER_LENGTH + 64);
    expect(h.server.recordLimit(run.peer.address, run.peer.port)).to.equal(512);
  });

  it('application data: up to the limit is sent, above it is refused with RecordSizeLimitError and a diagnostic', async () => {
    make();
    const run = await handshake(h, 6001, [mfl(1)]);
    expect(h.server.send(Buffer.alloc(512, 1), run.peer.address, run.peer.port)).to.equal(true);
    for (const d of h.take(run.peer)) run.client.receive(d);
    expect(run.client.received.map((b) => b.length)).to.deep.equal([512]);
    expect(() => h.server.send(Buffer.alloc(513, 1), run.peer.address, run.peer.port)).to.throw(RecordSizeLimitError, /513 bytes exceeds the record limit of 512/);
    expect(h.take(run.peer)).to.deep.equal([]);
    expect(h.diagnostics.find((d) => d.kind === 'record_too_large')).to.deep.include({ length: 513, limit: 512 });
    expect(h.server.session(run.peer.address, run.peer.port)).to.not.equal(undefined); // the session goes on
  });

  it('each max_fragment_length code gives its limit (RFC 6066 §4: 1..4 = 512..4096); without the extension 2^14', async () => {
    make();
    for (const [code, limit] of [[1, 512], [2, 1024], [3, 2048], [4, 4096]] as const) {
      const run = await handshake(h, 6010 + code, [mfl(code)]);
      expect(h.server.recordLimit(run.peer.address, run.peer.port)).to.equal(limit);
    }
    const plain = await handshake(h, 6019, []);
    expect(findExtension(plain.client.serverExtensions, ExtensionType.maxFragmentLength)).to.equal(undefined);
    expect(findExtension(plain.client.serverExtensions, ExtensionType.recordSizeLimit)).to.equal(undefined);
    expect(h.server.recordLimit(plain.peer.address, plain.peer.port)).to.equal(16384);
  });

  it('record_size_limit: answered with our limit (default 16384), the client\'s limit bounds what we send', async () => {
    make();
    const run = await handshake(h, 6020, [rsl(256)]);
    expect(run.client.state).to.equal('established');
    expect(findExtension(run.client.serverExtensions, ExtensionType.recordSizeLimit)?.data.readUInt16BE(0)).to.equal(16384);
    expect(largestRecordPlaintext(run.down)).to.be.at.most(256);
    expect(h.server.recordLimit(run.peer.address, run.peer.port)).to.equal(256);
    // Above the DTLS 1.2 protocol limit: 2^14 applies.
    const big = await handshake(h, 6021, [rsl(20000)]);
    expect(h.server.recordLimit(big.peer.address, big.peer.port)).to.equal(16384);
  });

  it('with both extensions record_size_limit wins and max_fragment_length is not echoed (RFC 8449 §5)', async () => {
    make({ recordSizeLimit: 1200 });
    const run = await handshake(h, 6030, [mfl(1), rsl(1024)]);
    expect(findExtension(run.client.serverExtensions, ExtensionType.maxFragmentLength)).to.equal(undefined);
    expect(findExtension(run.client.serverExtensions, ExtensionType.recordSizeLimit)?.data.readUInt16BE(0)).to.equal(1200);
    expect(h.server.recordLimit(run.peer.address, run.peer.port)).to.equal(1024);
    // An invalid max_fragment_length is ignored too when record_size_limit is there.
    const run2 = await handshake(h, 6031, [mfl(9), rsl(600)]);
    expect(run2.client.state).to.equal('established');
    expect(h.server.recordLimit(run2.peer.address, run2.peer.port)).to.equal(600);
  });

  it('our record_size_limit bounds what we accept: a bigger record gets record_overflow', async () => {
    make({ recordSizeLimit: 512 });
    const run = await handshake(h, 6040, [rsl(16384)]);
    h.input(run.peer, [run.client.send(Buffer.alloc(512, 2))]);
    await tick();
    expect(h.delivered.map((d) => d.data.length)).to.deep.equal([512]);
    h.input(run.peer, [run.client.send(Buffer.alloc(513, 2))]);
    await tick();
    for (const d of h.take(run.peer)) run.client.receive(d);
    expect(run.client.alerts).to.deep.include({ level: AlertLevel.fatal, description: AlertDescription.recordOverflow });
    expect(h.delivered).to.have.length(1);
    expect(h.server.session(run.peer.address, run.peer.port)).to.equal(undefined);
    // Without record_size_limit from the client, our limit is not in force (max_fragment_length only limits what we send).
    const other = await handshake(h, 6041, []);
    h.input(other.peer, [other.client.send(Buffer.alloc(2000, 3))]);
    await tick();
    expect(h.delivered.map((d) => d.data.length)).to.deep.equal([512, 2000]);
  });

  for (const [what, ext, alert] of [
    ['max_fragment_length code 0', mfl(0), AlertDescription.illegalParameter],
    ['max_fragment_length code 5', mfl(5), AlertDescription.illegalParameter],
    ['max_fragment_length of two bytes', { type: ExtensionType.maxFragmentLength, data: Buffer.from([1, 1]) }, AlertDescription.decodeError],
    ['record_size_limit 63', rsl(63), AlertDescription.illegalParameter],
    ['record_size_limit 0', rsl(0), AlertDescription.illegalParameter],
    ['record_size_limit of three bytes', { type: ExtensionType.recordSizeLimit, data: Buffer.from([0, 1, 0]) }, AlertDescription.decodeError],
  ] as const) {
    it(`${what} → fatal alert ${alert}, no handshake`, async () => {
      make();
      const run = await handshake(h, 6050, [ext]);
      expect(run.client.alerts).to.deep.equal([{ level: AlertLevel.fatal, description: alert }]);
      expect(h.server.stats()).to.deep.include({ handshakesStarted: 0, handshakesRefused: 1 });
    });
  }

  it('rejects a recordSizeLimit option outside 64..16384', () => {
    expect(() => make({ recordSizeLimit: 63 })).to.throw(RangeError);
    expect(() => make({ recordSizeLimit: 16385 })).to.throw(RangeError);
    h = undefined as unknown as Harness;
  });
});

describe('dtls/flight with a record plaintext limit', () => {
  const writer = {
    overhead: () => 0,
    record: (type: number, epoch: number, payload: Buffer): Buffer => {
      const h = Buffer.alloc(RECORD_HEADER_LENGTH);
      h[0] = type;
      h.writeUInt16BE(0xfefd, 1);
      h.writeUInt16BE(epoch, 3);
      h.writeUInt16BE(payload.length, 11);
      return Buffer.concat([h, payload]);
    },
  };

  it('fragments handshake messages so that no record payload exceeds the limit', () => {
    const body = Buffer.alloc(300, 7);
    const limited = new Flight([{ kind: 'handshake', epoch: 0, msgType: 11, messageSeq: 3, body }], 1232, 100);
    const records = limited.datagrams(writer).flatMap((d) => parseDatagram(d).records);
    expect(Math.max(...records.map((r) => r.fragment.length))).to.be.at.most(100);
    const frags = records.flatMap((r) => parseHandshakeFragments(r.fragment)!);
    expect(Buffer.concat(frags.map((f) => f.body)).equals(body)).to.equal(true);
    expect(new Set(frags.map((f) => f.messageSeq))).to.deep.equal(new Set([3]));
    const unlimited = new Flight([{ kind: 'handshake', epoch: 0, msgType: 11, messageSeq: 3, body }], 1232);
    expect(unlimited.datagrams(writer).flatMap((d) => parseDatagram(d).records)).to.have.length(1);
  });
});
