import { expect } from 'chai';
import { createSocket, type Socket } from 'node:dgram';
import { installImpairment, LossModel, mulberry32 } from '../../scripts/fleet/impairment.js';

function bound(): Promise<Socket> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    s.bind(0, '127.0.0.1', () => resolve(s));
  });
}

/** Collects datagrams on `s` until one equals `marker`; resolves with the ones before it. */
function collectUntil(s: Socket, marker: string, timeoutMs = 5000): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const got: string[] = [];
    const timer = setTimeout(() => reject(new Error(`no marker; got ${got.join(',')}`)), timeoutMs);
    const on = (m: Buffer): void => {
      const t = m.toString();
      if (t === marker) {
        clearTimeout(timer);
        s.off('message', on);
        resolve(got);
      } else got.push(t);
    };
    s.on('message', on);
  });
}

describe('fleet loss model', () => {
  it('is deterministic for a seed and differs across seeds', () => {
    const a = mulberry32(42);
    const b = mulberry32(42);
    const c = mulberry32(43);
    const sa = Array.from({ length: 20 }, () => a());
    expect(Array.from({ length: 20 }, () => b())).to.deep.equal(sa);
    expect(Array.from({ length: 20 }, () => c())).not.to.deep.equal(sa);
    for (const v of sa) expect(v).to.be.within(0, 1).and.not.equal(1);
  });

  it('drops about the configured share, and counts what it did', () => {
    const m = new LossModel({ loss: 0.1, seed: 7 });
    let dropped = 0;
    for (let i = 0; i < 20_000; i++) if (m.decide().drop) dropped++;
    expect(dropped / 20_000).to.be.within(0.09, 0.11);
    expect(m.counts).to.deep.include({ seen: 20_000, dropped, duplicated: 0, delayed: 0 });
  });

  it('never drops at 0, always at 1; duplicates and delays as configured', () => {
    const none = new LossModel({ loss: 0 });
    expect(none.inert).to.equal(true);
    for (let i = 0; i < 1000; i++) expect(none.decide()).to.deep.equal({ drop: false, copies: 1, delayMs: 0 });
    const all = new LossModel({ loss: 1 });
    for (let i = 0; i < 1000; i++) expect(all.decide().drop).to.equal(true);
    const dup = new LossModel({ duplicate: 1, reorder: 1, reorderMaxDelayMs: 5 });
    for (let i = 0; i < 1000; i++) {
      const f = dup.decide();
      if (f.drop) expect.fail('dropped');
      expect(f.copies).to.equal(2);
      expect(f.delayMs).to.be.within(1, 5);
    }
  });

  it('refuses probabilities outside 0..1', () => {
    expect(() => new LossModel({ loss: 1.5 })).to.throw(RangeError, /loss/);
    expect(() => new LossModel({ duplicate: -0.1 })).to.throw(RangeError, /duplicate/);
    expect(() => new LossModel({ reorder: Number.NaN })).to.throw(RangeError, /reorder/);
  });

  it('wraps real sockets: only traffic to and from the server ports, both directions, and unwraps', async () => {
    const client = await bound();
    const server = await bound();
    const other = await bound();
    const serverPort = server.address().port;
    const out = new LossModel({ loss: 0, duplicate: 1 });
    const inc = new LossModel({ loss: 1 });
    const uninstall = installImpairment(new Set([serverPort]), out, inc);
    try {
      // client → server: duplicated (outgoing model); server's own incoming is from a non-server port: untouched.
      const atServer = collectUntil(server, 'end');
      for (const m of ['a', 'b']) client.send(m, serverPort, '127.0.0.1');
      // The marker (to the server port too, so also duplicated; the first copy ends the collection).
      other.send('end', serverPort, '127.0.0.1');
      expect((await atServer).sort()).to.deep.equal(['a', 'a', 'b', 'b']);
      // server → client: comes from a server port, so the incoming model drops it.
      const atClient = collectUntil(client, 'end');
      server.send('lost', client.address().port, '127.0.0.1');
      await new Promise((r) => setTimeout(r, 50));
      other.send('end', client.address().port, '127.0.0.1');
      expect(await atClient).to.deep.equal([]);
      expect(inc.counts.dropped).to.equal(1);
      expect(out.counts.duplicated).to.equal(3); // a, b and the marker
    } finally {
      uninstall();
    }
    // Unwrapped: server → client arrives again.
    const after = collectUntil(client, 'end');
    server.send('back', client.address().port, '127.0.0.1');
    await new Promise((r) => setTimeout(r, 20));
    other.send('end', client.address().port, '127.0.0.1');
    expect(await after).to.deep.equal(['back']);
    for (const s of [client, server, other]) s.close();
  });
});
