import { expect } from 'chai';
import fc from 'fast-check';
import type { ParsedPacket } from 'coap-packet';
import {
  CoapNode, CoapRequestError, type CoapIncomingRequest, type CoapNodeOptions, type CoapResponse,
} from '../../src/coap/coap-node.js';
import { UdpEndpoint } from '../../src/coap/udp-endpoint.js';
import { isRequest, opt, RawDevice, sleep, type Received } from './raw-device.js';

const LOCAL = '127.0.0.1';
const bsOptions = (ep: string): { name: 'Uri-Path' | 'Uri-Query'; value: Buffer }[] => [
  { name: 'Uri-Path', value: Buffer.from('bs') },
  { name: 'Uri-Query', value: Buffer.from(`ep=${ep}`) },
];

describe('coap/CoapNode over UDP', function () {
  this.timeout(10000);
  const nodes: CoapNode[] = [];
  const devices: RawDevice[] = [];

  async function startNode(opts: Partial<CoapNodeOptions> & Pick<CoapNodeOptions, 'handler'> & { host?: string }): Promise<CoapNode> {
    const node = await CoapNode.listen({ host: LOCAL, port: 0, ...opts });
    nodes.push(node);
    return node;
  }
  async function device(): Promise<RawDevice> {
    const d = await RawDevice.open();
    devices.push(d);
    return d;
  }
  const refuse: CoapNodeOptions['handler'] = (_req, res) => res.send('4.04');

  afterEach(async () => {
    await Promise.all(nodes.splice(0).map((n) => n.close()));
    await Promise.all(devices.splice(0).map((d) => d.close()));
  });

  it('(a) answers POST /bs 2.04 piggybacked, then sends Discover and Write to the device from the same port', async () => {
    const dev = await device();
    const requests: CoapIncomingRequest[] = [];
    let session: Promise<CoapResponse[]> | undefined;
    const node = await startNode({
      handler: (req, res, peer) => {
        requests.push(req);
        res.send('2.04');
        session = (async () => {
          const discover = await node.request(peer, { method: 'GET', path: '/', accept: 40, timeoutMs: 3000 });
          const write = await node.request(peer, {
            method: 'PUT', path: [0, 1], contentFormat: 11542, payload: Buffer.from('c10065', 'hex'), timeoutMs: 3000,
          });
          return [discover, write];
        })();
      },
    });
    const port = node.address().port;
    dev.onPacket = (rx) => {
      const p = rx.packet;
      if (!p || !isRequest(rx)) return;
      if (p.code === '0.01') {
        dev.reply(rx, {
          ack: true, code: '2.05', messageId: p.messageId, token: p.token,
          options: [{ name: 'Content-Format', value: Buffer.of(40) }], payload: Buffer.from('</>;lwm2m=1.1,</0/0>;ssid=1'),
        });
      } else if (p.code === '0.03') {
        // Separate response: empty ACK now, the 2.04 as a CON of our own.
        dev.reply(rx, { ack: true, code: '0.00', messageId: p.messageId });
        setTimeout(() => dev.reply(rx, { confirmable: true, code: '2.04', messageId: 0x7001, token: p.token }), 20);
      }
    };
    dev.send({ confirmable: true, code: '0.02', messageId: 0x1234, token: Buffer.from('a1b2', 'hex'), options: bsOptions('dev1') }, port);

    const ackOfBs = await dev.waitFor((rx) => rx.packet?.messageId === 0x1234);
    await dev.waitFor((rx) => rx.packet?.ack === true && rx.packet.code === '0.00' && rx.packet.messageId === 0x7001);
    expect(session).to.not.equal(undefined);
    const [discover, write] = await session!;

    // The handler saw the request as sent.
    expect(requests).to.have.length(1);
    const req = requests[0]!;
    expect(req.method).to.equal('POST');
    expect(req.path).to.equal('/bs');
    expect(req.query).to.deep.equal(['ep=dev1']);
    expect(req.uriQuery[0]).to.deep.equal(Buffer.from('ep=dev1'));
    expect(req.confirmable).to.equal(true);
    expect(req.peer.port).to.equal(dev.port);
    expect(req.peer.identity).to.equal(undefined);

    // The 2.04 is piggybacked and came first.
    expect(dev.received[0]).to.equal(ackOfBs);
    expect(ackOfBs.packet).to.include({ ack: true, code: '2.04' });
    expect(ackOfBs.packet!.token).to.deep.equal(Buffer.from('a1b2', 'hex'));

    // Every datagram the device got came from the server's bound port.
    expect(dev.received.length).to.be.greaterThanOrEqual(4);
    for (const rx of dev.received) {
      expect(rx.rinfo.port).to.equal(port);
      expect(rx.rinfo.address).to.equal(LOCAL);
    }

    // Discover: CON GET, 8-byte token, no Uri-Path (root), Accept 40 = D1 04 28, nothing else.
    const get = dev.received.find((rx) => isRequest(rx, '0.01'))!;
    expect(get.raw[0]).to.equal(0x48);
    expect(get.raw.subarray(12).toString('hex')).to.equal('d10428');
    // Write: PUT, Uri-Path "0" and "1" as two options, Content-Format 11542 = 2D 16, payload.
    const put = dev.received.find((rx) => isRequest(rx, '0.03'))!;
    expect(put.raw[0]).to.equal(0x48);
    expect(put.raw.subarray(12).toString('hex')).to.equal('b130013112' + '2d16' + 'ff' + 'c10065');
    expect(get.packet!.token).to.not.deep.equal(put.packet!.token);

    expect(discover.code).to.equal('2.05');
    expect(discover.contentFormat).to.equal(40);
    expect(discover.payload.toString()).to.equal('</>;lwm2m=1.1,</0/0>;ssid=1');
    expect(discover.peer.port).to.equal(dev.port);
    expect(write.code).to.equal('2.04');
    expect(write.contentFormat).to.equal(undefined);
    expect(write.payload.length).to.equal(0);
    expect(node.stats().pending).to.equal(0);
  });

  it('(b) runs the handler once for a duplicated CON request and re-sends the same reply', async () => {
    const dev = await device();
    const other = await device();
    let calls = 0;
    const node = await startNode({
      handler: (_req, res) => {
        calls++;
        setTimeout(() => res.send('2.04', { payload: `call ${calls}` }), 50);
      },
    });
    const port = node.address().port;
    const bs = { confirmable: true, code: '0.02', messageId: 7, token: Buffer.of(9), options: bsOptions('dev1') };
    dev.send(bs, port);
    dev.send(bs, port); // arrives while the handler works: dropped, not run again
    const first = await dev.waitFor((rx) => rx.packet?.messageId === 7);
    await sleep(100);
    expect(dev.count((rx) => rx.packet?.messageId === 7)).to.equal(1);
    dev.send(bs, port); // after the answer: the recorded reply again, byte for byte
    await dev.waitFor((rx) => rx !== first && rx.packet?.messageId === 7);
    const replies = dev.received.filter((rx) => rx.packet?.messageId === 7);
    expect(replies).to.have.length(2);
    expect(replies[1]!.raw).to.deep.equal(first.raw);
    expect(first.packet!.payload.toString()).to.equal('call 1');
    expect(calls).to.equal(1);
    expect(node.stats().duplicates).to.equal(2);

    // The same MID from another peer is another request.
    other.send(bs, port);
    await other.waitFor((rx) => rx.packet?.messageId === 7);
    expect(calls).to.equal(2);
  });

  it('(c) a silent device: request() rejects after timeoutMs and the retransmissions stop', async () => {
    const silent = await device();
    const node = await startNode({ handler: refuse, transmission: { ackTimeoutMs: 40, maxRetransmit: 2 } });
    const started = performance.now();
    const err = await node.request(silent.address, { method: 'GET', path: [3, 0], timeoutMs: 600 }).then(
      () => { throw new Error('resolved'); },
      (e: unknown) => e,
    );
    const elapsed = performance.now() - started;
    expect(err).to.be.instanceOf(CoapRequestError);
    const e = err as CoapRequestError;
    expect(e.reason).to.equal('timeout');
    expect(e.message).to.equal(`CoAP GET /3/0 to 127.0.0.1:${silent.port} timed out after 600 ms (3 transmission(s), no response)`);
    expect(e.transmissions).to.equal(3);
    expect(elapsed).to.be.greaterThanOrEqual(590);
    // 1 transmission + MAX_RETRANSMIT (2) retransmissions of the same message, then nothing more.
    expect(silent.count()).to.equal(3);
    const mids = new Set(silent.received.map((rx) => rx.packet!.messageId));
    expect(mids.size).to.equal(1);
    await sleep(300);
    expect(silent.count()).to.equal(3);
    expect(node.stats().pending).to.equal(0);
  });

  it('(c) a timeout shorter than the retransmission schedule stops the retransmissions it cuts off', async () => {
    const silent = await device();
    const node = await startNode({ handler: refuse, transmission: { ackTimeoutMs: 150, maxRetransmit: 4 } });
    const err = (await node.request(silent.address, { method: 'DELETE', path: '/0', timeoutMs: 200 }).catch((e: unknown) => e)) as CoapRequestError;
    expect(err.reason).to.equal('timeout');
    const atRejection = silent.count();
    expect(atRejection).to.be.within(1, 2);
    // Unstopped, retransmissions would come at ~150-225, ~450-675 and ~1050-1575 ms.
    await sleep(800);
    expect(silent.count()).to.equal(atRejection);
  });

  it('(d) an AbortSignal cancels a request in flight and stops retransmissions', async () => {
    const silent = await device();
    const node = await startNode({ handler: refuse, transmission: { ackTimeoutMs: 60, maxRetransmit: 4 } });
    const ac = new AbortController();
    const p = node.request(silent.address, { method: 'POST', path: '/bs', signal: ac.signal, timeoutMs: 5000 });
    await silent.waitFor(() => true);
    const why = new Error('the device asked again');
    ac.abort(why);
    const err = (await p.catch((e: unknown) => e)) as CoapRequestError;
    expect(err).to.be.instanceOf(CoapRequestError);
    expect(err.reason).to.equal('aborted');
    expect(err.cause).to.equal(why);
    const atAbort = silent.count();
    await sleep(400);
    expect(silent.count()).to.equal(atAbort);
    expect(node.stats().pending).to.equal(0);

    // Already aborted: nothing is sent at all.
    const before = silent.count();
    const err2 = (await node.request(silent.address, { method: 'GET', path: '/', signal: AbortSignal.abort() }).catch((e: unknown) => e)) as CoapRequestError;
    expect(err2.reason).to.equal('aborted');
    expect(err2.transmissions).to.equal(0);
    await sleep(50);
    expect(silent.count()).to.equal(before);
  });

  it('(d2) one AbortSignal for many requests (a session): answered ones are done with it, aborting ends those in flight', async () => {
    const dev = await device();
    const node = await startNode({ handler: refuse, transmission: { ackTimeoutMs: 60, maxRetransmit: 4 } });
    // Answers GET, stays silent to PUT.
    dev.onPacket = (rx) => {
      const p = rx.packet;
      if (p && isRequest(rx) && p.code === '0.01') dev.reply(rx, { ack: true, code: '2.05', messageId: p.messageId, token: p.token, payload: Buffer.from('x') });
    };
    const ac = new AbortController();
    const first = await node.request(dev.address, { method: 'GET', path: [3, 0], signal: ac.signal, timeoutMs: 3000 });
    expect(first.code).to.equal('2.05');
    const silent = [
      node.request(dev.address, { method: 'PUT', path: [0, 1], payload: Buffer.of(1), signal: ac.signal, timeoutMs: 5000 }),
      node.request(dev.address, { method: 'PUT', path: [1, 0], payload: Buffer.of(2), signal: ac.signal, timeoutMs: 5000 }),
    ];
    const answered = await node.request(dev.address, { method: 'GET', path: [3, 0, 1], signal: ac.signal, timeoutMs: 3000 });
    expect(answered.code).to.equal('2.05');
    await dev.waitFor((rx) => rx.packet?.code === '0.03');
    const why = new Error('superseded');
    ac.abort(why);
    const errs = (await Promise.all(silent.map((p) => p.then(() => undefined, (e: unknown) => e)))) as CoapRequestError[];
    expect(errs.map((e) => e instanceof CoapRequestError && e.reason)).to.deep.equal(['aborted', 'aborted']);
    expect(errs.map((e) => e.cause)).to.deep.equal([why, why]);
    expect(node.stats().pending).to.equal(0);
    // The same signal, already aborted: refused before sending.
    const late = (await node.request(dev.address, { method: 'GET', path: '/', signal: ac.signal }).catch((e: unknown) => e)) as CoapRequestError;
    expect(late.reason).to.equal('aborted');
    expect(late.transmissions).to.equal(0);
  });

  it('(e) a NON request reaches the handler flagged non-confirmable and gets a NON answer', async () => {
    const dev = await device();
    const seen: boolean[] = [];
    const node = await startNode({
      handler: (req, res) => {
        seen.push(req.confirmable);
        res.send(req.confirmable ? '2.04' : '4.00', { payload: 'NON not allowed' });
      },
    });
    dev.send({ confirmable: false, code: '0.02', messageId: 0x0b0b, token: Buffer.from('beef', 'hex'), options: bsOptions('dev1') }, node.address().port);
    const rx = await dev.waitFor((r) => r.packet?.token.toString('hex') === 'beef');
    expect(seen).to.deep.equal([false]);
    expect(rx.packet).to.include({ confirmable: false, ack: false, reset: false, code: '4.00' });
    expect(rx.packet!.payload.toString()).to.equal('NON not allowed');
  });

  it('(f) malformed datagrams never crash the node nor disturb a concurrent exchange', async () => {
    const attacker = await device();
    const dev = await device();
    const bsCalls: string[] = [];
    const results: CoapResponse[] = [];
    let session: Promise<void> | undefined;
    const node = await startNode({
      transmission: { ackTimeoutMs: 100 },
      handler: (req, res, peer) => {
        if (req.path !== '/bs' || req.query[0] !== 'ep=good') {
          res.send('4.04');
          return;
        }
        bsCalls.push(req.query[0]!.slice(3));
        res.send('2.04');
        session = (async () => {
          results.push(await node.request(peer, { method: 'GET', path: [3, 0, 0], accept: 0, timeoutMs: 3000 }));
        })();
      },
    });
    const port = node.address().port;
    dev.onPacket = (rx) => {
      const p = rx.packet;
      if (!p || !isRequest(rx, '0.01')) return;
      // Answer slowly, so the garbage below lands while the exchange is open.
      setTimeout(() => dev.reply(rx, { ack: true, code: '2.05', messageId: p.messageId, token: p.token, payload: Buffer.from('lwbs-dev') }), 150);
    };
    dev.send({ confirmable: true, code: '0.02', messageId: 1, token: Buffer.of(1), options: bsOptions('good') }, port);
    await dev.waitFor((rx) => isRequest(rx, '0.01'));

    const crafted: number[][] = [
      [], [0x40], [0x40, 0x01], [0x40, 0x01, 0x00],
      [0x00, 0x01, 0x00, 0x01], [0x80, 0x01, 0x00, 0x01], [0xc0, 0x01, 0x00, 0x01], // versions 0, 2, 3
      [0x49, 0x01, 0x00, 0x02, 1, 2, 3, 4, 5, 6, 7, 8, 9], // TKL 9 (CON: RST expected)
      [0x4f, 0x01, 0x00, 0x03], // TKL 15
      [0x48, 0x01, 0x00, 0x04, 1, 2], // token truncated
      [0x40, 0x01, 0x00, 0x05, 0xf0], // option delta 15
      [0x40, 0x01, 0x00, 0x06, 0x1f], // option length 15
      [0x40, 0x01, 0x00, 0x07, 0xb5, 0x61, 0x62], // option overruns the datagram
      [0x40, 0x01, 0x00, 0x08, 0xd1], // extended delta truncated
      [0x40, 0x01, 0x00, 0x09, 0xff], // payload marker without payload
      [0x41, 0x00, 0x00, 0x0a, 0xaa], // empty message with a token
      [0x60, 0x00, 0x00, 0x0b, 0xff, 0x01], // empty ACK with payload
      [0x40, 0x45, 0x00, 0x0c, 0xff, 0x01], // CON response, unknown token (RST expected)
      [0x60, 0x45, 0x77, 0x77], // piggybacked response to nothing
      [0x60, 0x00, 0x12, 0x34], // ACK to nothing
      [0x70, 0x00, 0x12, 0x35], // RST to nothing
      [0x60, 0x02, 0x00, 0x0d], // request code in an ACK
      [0x40, 0xe1, 0x00, 0x0e], // reserved class 7
    ];
    for (const bytes of crafted) attacker.send(Buffer.from(bytes), port);
    const junk = fc.sample(
      fc.oneof(
        fc.uint8Array({ maxLength: 40 }),
        fc.uint8Array({ minLength: 4, maxLength: 40 }).map((b) => { b[0] = 0x40 | (b[0]! & 0x3f); return b; }),
      ),
      { numRuns: 300, seed: 42 },
    );
    for (const bytes of junk) attacker.send(bytes, port);

    await dev.waitFor((rx) => rx.packet?.code === '2.04');
    await session;
    expect(results).to.have.length(1);
    expect(results[0]!.code).to.equal('2.05');
    expect(results[0]!.payload.toString()).to.equal('lwbs-dev');
    expect(bsCalls).to.deep.equal(['good']);
    // The CON with a reserved token length and the CON response with an unknown token got RST.
    await attacker.waitFor((rx) => rx.packet?.reset === true && rx.packet.messageId === 2);
    await attacker.waitFor((rx) => rx.packet?.reset === true && rx.packet.messageId === 0x0c);
    expect(node.stats().malformed).to.be.greaterThanOrEqual(14);
    // Still serving.
    dev.send({ confirmable: true, code: '0.02', messageId: 2, token: Buffer.of(2), options: bsOptions('other') }, port);
    const rx = await dev.waitFor((r) => r.packet?.messageId === 2);
    expect(rx.packet!.code).to.equal('4.04');
  });

  it('(f) a response node-coap chokes on (a 4-byte Block1 option) fails that request only', async () => {
    const dev = await device();
    const node = await startNode({ handler: refuse });
    dev.onPacket = (rx) => {
      const p = rx.packet;
      if (!p || !isRequest(rx)) return;
      const block1 = p.code === '0.03' ? [{ name: 'Block1' as const, value: Buffer.of(0, 0, 0, 0x06) }] : [];
      dev.reply(rx, { ack: true, code: '2.04', messageId: p.messageId, token: p.token, options: block1 });
    };
    const err = (await node.request(dev.address, { method: 'PUT', path: '/1/0', payload: 'x', timeoutMs: 2000 }).catch((e: unknown) => e)) as CoapRequestError;
    expect(err).to.be.instanceOf(CoapRequestError);
    expect(err.reason).to.equal('protocol');
    const ok = await node.request(dev.address, { method: 'POST', path: '/1/0/8', timeoutMs: 2000 });
    expect(ok.code).to.equal('2.04');
  });

  it('(g) 200 devices at once, each bootstrapping and answering a Read', async () => {
    const count = 200;
    const devs = await Promise.all(Array.from({ length: count }, () => device()));
    const reads = new Map<string, Promise<CoapResponse>>();
    const node = await startNode({
      handler: (req, res, peer) => {
        const ep = req.query[0]!.slice(3);
        res.send('2.04');
        reads.set(ep, node.request(peer, { method: 'GET', path: [3, 0, 0], timeoutMs: 5000 }));
      },
    });
    const port = node.address().port;
    devs.forEach((d, i) => {
      d.onPacket = (rx) => {
        const p = rx.packet;
        if (p && isRequest(rx, '0.01')) dev2(d, rx, p, i);
      };
      d.send({ confirmable: true, code: '0.02', messageId: 100 + i, token: Buffer.of(i & 0xff), options: bsOptions(`dev${i}`) }, port);
    });
    function dev2(d: RawDevice, rx: Received, p: ParsedPacket, i: number): void {
      d.reply(rx, { ack: true, code: '2.05', messageId: p.messageId, token: p.token, payload: Buffer.from(`maker of dev${i}`) });
    }
    await Promise.all(devs.map((d) => d.waitFor((rx) => rx.packet?.code === '2.04', 5000)));
    expect(reads.size).to.equal(count);
    for (let i = 0; i < count; i++) {
      const r = await reads.get(`dev${i}`)!;
      expect(r.code).to.equal('2.05');
      expect(r.payload.toString()).to.equal(`maker of dev${i}`);
      expect(r.peer.port).to.equal(devs[i]!.port);
    }
    for (const d of devs) for (const rx of d.received) expect(rx.rinfo.port).to.equal(port);
    expect(node.stats().pending).to.equal(0);
  });

  it('(h) close() rejects pending requests and releases the port', async () => {
    const silent = await device();
    const node = await startNode({ handler: refuse });
    const port = node.address().port;
    const p = node.request(silent.address, { method: 'GET', path: '/', timeoutMs: 5000 });
    await silent.waitFor(() => true);
    await node.close();
    const err = (await p.catch((e: unknown) => e)) as CoapRequestError;
    expect(err).to.be.instanceOf(CoapRequestError);
    expect(err.reason).to.equal('closed');
    expect(err.message).to.equal(`CoAP GET / to 127.0.0.1:${silent.port}: node closed after 1 transmission(s)`);
    await node.close(); // idempotent
    const after = (await node.request(silent.address, { method: 'GET', path: '/' }).catch((e: unknown) => e)) as CoapRequestError;
    expect(after.reason).to.equal('closed');
    // The port is free again.
    const again = await UdpEndpoint.create({ host: LOCAL, port });
    expect(again.address().port).to.equal(port);
    await again.close();
    expect(silent.count()).to.equal(1);
  });

  it('reassembles a Block2 response and keeps the token across blocks', async () => {
    const dev = await device();
    const node = await startNode({ handler: refuse });
    const body = Buffer.from('0123456789abcdef'.repeat(2) + 'tail');
    dev.onPacket = (rx) => {
      const p = rx.packet;
      if (!p || !isRequest(rx)) return;
      const b2 = opt(p, 'Block2')[0];
      const num = b2 === undefined || b2.length === 0 ? 0 : b2[b2.length - 1]! >> 4;
      const chunk = body.subarray(num * 16, num * 16 + 16);
      const more = (num + 1) * 16 < body.length;
      dev.reply(rx, {
        ack: true, code: '2.05', messageId: p.messageId, token: p.token,
        options: [{ name: 'Content-Format', value: Buffer.of(112) }, { name: 'Block2', value: Buffer.of((num << 4) | (more ? 8 : 0)) }],
        payload: chunk,
      });
    };
    const r = await node.request(dev.address, { method: 'GET', path: [3, 0], accept: 112, timeoutMs: 3000 });
    expect(r.code).to.equal('2.05');
    expect(r.contentFormat).to.equal(112);
    expect(r.payload).to.deep.equal(body);
    expect(r.transmissions).to.equal(3);
    const reqs = dev.received.filter((rx) => isRequest(rx));
    expect(reqs).to.have.length(3);
    expect(new Set(reqs.map((rx) => rx.packet!.token.toString('hex'))).size).to.equal(1);
    expect(new Set(reqs.map((rx) => rx.packet!.messageId)).size).to.equal(3);
    expect(reqs.map((rx) => opt(rx.packet!, 'Block2')[0]?.[0] ?? 0).map((v) => v >> 4)).to.deep.equal([0, 1, 2]);
  });

  it('fails a response bigger than maxResponseBytes', async () => {
    const dev = await device();
    const node = await startNode({ handler: refuse });
    dev.onPacket = (rx) => {
      const p = rx.packet;
      if (!p || !isRequest(rx)) return;
      const b2 = opt(p, 'Block2')[0];
      const num = b2 === undefined || b2.length === 0 ? 0 : b2[b2.length - 1]! >> 4;
      dev.reply(rx, { ack: true, code: '2.05', messageId: p.messageId, token: p.token, options: [{ name: 'Block2', value: Buffer.of((num << 4) | 8) }], payload: Buffer.alloc(16, num) });
    };
    const err = (await node.request(dev.address, { method: 'GET', path: '/5', maxResponseBytes: 40, timeoutMs: 3000 }).catch((e: unknown) => e)) as CoapRequestError;
    expect(err.reason).to.equal('too_large');
    expect(err.message).to.contain('exceeds 40 bytes');
  });

  it('sends a large payload with Block1 and resolves with the final code', async () => {
    const dev = await device();
    const node = await startNode({ handler: refuse, blockSize: 256 });
    const body = Buffer.alloc(700, 0x5a);
    const parts: Buffer[] = [];
    dev.onPacket = (rx) => {
      const p = rx.packet;
      if (!p || !isRequest(rx)) return;
      const b1 = opt(p, 'Block1')[0]!;
      const more = (b1[b1.length - 1]! & 8) !== 0;
      parts.push(p.payload);
      dev.reply(rx, { ack: true, code: more ? '2.31' : '2.04', messageId: p.messageId, token: p.token, options: [{ name: 'Block1', value: b1 }] });
    };
    const r = await node.request(dev.address, { method: 'PUT', path: [0, 1], contentFormat: 11542, payload: body, timeoutMs: 3000 });
    expect(r.code).to.equal('2.04');
    expect(parts.map((p) => p.length)).to.deep.equal([256, 256, 188]);
    expect(Buffer.concat(parts)).to.deep.equal(body);
    const first = dev.received.find((rx) => isRequest(rx))!.packet!;
    expect(opt(first, 'Size1')[0]).to.deep.equal(Buffer.of(0x02, 0xbc));
    expect(opt(first, 'Content-Format')[0]).to.deep.equal(Buffer.of(0x2d, 0x16));
  });

  it('sends blocks that fit a record limit the endpoint reports for the peer (DTLS max_fragment_length 512 → 256-byte blocks)', async () => {
    const dev = await device();
    const udp = await UdpEndpoint.create({ host: LOCAL, port: 0 });
    // A UDP endpoint that reports a 512-byte record limit for this device only, as DtlsEndpoint does.
    const limited = Object.assign(udp, { recordLimit: (address: string, port: number) => (address === dev.address.address && port === dev.address.port ? 512 : undefined) });
    const node = new CoapNode(limited, { handler: refuse });
    nodes.push(node);
    const sizes: number[] = [];
    dev.onPacket = (rx) => {
      const p = rx.packet;
      if (!p || !isRequest(rx)) return;
      sizes.push(rx.raw.length);
      const b1 = opt(p, 'Block1')[0]!;
      const more = (b1[b1.length - 1]! & 8) !== 0;
      dev.reply(rx, { ack: true, code: more ? '2.31' : '2.04', messageId: p.messageId, token: p.token, options: [{ name: 'Block1', value: b1 }] });
    };
    const r = await node.request(dev.address, { method: 'PUT', path: [0, 1], contentFormat: 11542, payload: Buffer.alloc(700, 1), timeoutMs: 3000 });
    expect(r.code).to.equal('2.04');
    const first = dev.received.find((rx) => isRequest(rx))!.packet!;
    expect(opt(first, 'Block1')[0]![0]! & 7).to.equal(4); // SZX 4 = 256 bytes
    expect(sizes).to.have.length(3);
    for (const n of sizes) expect(n).to.be.at.most(512);
  });

  it('rejects with reason reset when the device answers RST', async () => {
    const dev = await device();
    const node = await startNode({ handler: refuse });
    dev.onPacket = (rx) => {
      if (rx.packet && isRequest(rx)) dev.reply(rx, { reset: true, code: '0.00', messageId: rx.packet.messageId });
    };
    const err = (await node.request(dev.address, { method: 'POST', path: '/bs', timeoutMs: 2000 }).catch((e: unknown) => e)) as CoapRequestError;
    expect(err.reason).to.equal('reset');
    expect(err.message).to.contain('RST');
  });

  it('ACKs a retransmitted CON separate response again and resolves once', async () => {
    const dev = await device();
    const node = await startNode({ handler: refuse });
    dev.onPacket = (rx) => {
      const p = rx.packet;
      if (!p || !isRequest(rx)) return;
      dev.reply(rx, { ack: true, code: '0.00', messageId: p.messageId });
      const sep = { confirmable: true, code: '2.02', messageId: 0x5151, token: p.token };
      dev.reply(rx, sep);
      setTimeout(() => dev.reply(rx, sep), 30); // as if our ACK was lost
    };
    const r = await node.request(dev.address, { method: 'DELETE', path: [1], timeoutMs: 2000 });
    expect(r.code).to.equal('2.02');
    await sleep(100);
    const acks = dev.received.filter((rx) => rx.packet?.ack === true && rx.packet.messageId === 0x5151);
    expect(acks).to.have.length(2);
    expect(dev.count((rx) => rx.packet?.reset === true)).to.equal(0);
  });

  it('works over IPv6 loopback', async () => {
    const server = await startNode({ host: '::1', handler: (req, res, peer) => res.send('2.05', { payload: `${peer.family} ${req.path}` }) });
    const client = await startNode({ host: '::1', handler: refuse });
    expect(server.endpoint.type).to.equal('udp6');
    const r = await client.request({ address: '::1', port: server.address().port }, { method: 'GET', path: '/v6', timeoutMs: 2000 });
    expect(r.payload.toString()).to.equal('IPv6 /v6');
    expect(r.peer.address).to.equal('::1');
  });

  it('ignores an empty ACK from another address: retransmissions go on', async () => {
    const silent = await device();
    const forger = await device();
    const node = await startNode({ handler: refuse, transmission: { ackTimeoutMs: 50, maxRetransmit: 3 } });
    const p = node.request(silent.address, { method: 'GET', path: '/', timeoutMs: 1000 }).catch((e: unknown) => e);
    const first = await silent.waitFor(() => true);
    forger.send({ ack: true, code: '0.00', messageId: first.packet!.messageId }, node.address().port);
    await silent.waitFor((rx) => rx !== first, 2000);
    const err = (await p) as CoapRequestError;
    expect(err.reason).to.equal('timeout');
    expect(silent.count()).to.equal(4);
  });

  it('answers a handler that throws with 5.00 and goes on serving', async () => {
    const dev = await device();
    const problems: string[] = [];
    const node = await startNode({
      handler: async (req, res) => {
        if (req.query[0] === 'ep=boom') throw new Error('boom');
        res.send('2.04');
      },
      onDiagnostic: (d) => { if (d.kind === 'handler_error') problems.push(String(d.error)); },
    });
    const port = node.address().port;
    dev.send({ confirmable: true, code: '0.02', messageId: 1, token: Buffer.of(1), options: bsOptions('boom') }, port);
    const bad = await dev.waitFor((rx) => rx.packet?.messageId === 1);
    expect(bad.packet!.code).to.equal('5.00');
    dev.send({ confirmable: true, code: '0.02', messageId: 2, token: Buffer.of(2), options: bsOptions('fine') }, port);
    const good = await dev.waitFor((rx) => rx.packet?.messageId === 2);
    expect(good.packet!.code).to.equal('2.04');
    expect(problems).to.deep.equal(['Error: boom']);
  });

  it('answers a CoAP ping with RST without involving the handler', async () => {
    const dev = await device();
    let calls = 0;
    const node = await startNode({ handler: (_q, res) => { calls++; res.send('2.04'); } });
    dev.send(Buffer.of(0x40, 0x00, 0xab, 0xcd), node.address().port);
    const rx = await dev.waitFor(() => true);
    expect(rx.raw).to.deep.equal(Buffer.of(0x70, 0x00, 0xab, 0xcd));
    await sleep(30);
    expect(dev.count()).to.equal(1);
    expect(calls).to.equal(0);
  });

  it('sends a separate response when the handler is slower than piggybackReplyMs', async () => {
    const dev = await device();
    const node = await startNode({ piggybackReplyMs: 20, handler: (_q, res) => { setTimeout(() => res.send('2.04'), 80); } });
    dev.onPacket = (rx) => {
      const p = rx.packet;
      if (p?.confirmable) dev.reply(rx, { ack: true, code: '0.00', messageId: p.messageId });
    };
    dev.send({ confirmable: true, code: '0.02', messageId: 0x0101, token: Buffer.of(7, 7), options: bsOptions('slow') }, node.address().port);
    const emptyAck = await dev.waitFor((rx) => rx.packet?.ack === true && rx.packet.messageId === 0x0101);
    expect(emptyAck.packet!.code).to.equal('0.00');
    const sep = await dev.waitFor((rx) => rx.packet?.confirmable === true && rx.packet.code === '2.04');
    expect(sep.packet!.token).to.deep.equal(Buffer.of(7, 7));
    // Our ACK reached node-coap's Server (matched, not dropped as unmatched).
    await sleep(100);
    expect(dev.count((rx) => rx.packet?.code === '2.04')).to.equal(1);
    expect(node.stats().unmatched).to.equal(0);
  });

  it('treats a remembered MID with a new token as a new request (a rebooted device), not a duplicate', async () => {
    const dev = await device();
    const tokens: string[] = [];
    const node = await startNode({ handler: (req, res) => { tokens.push(req.token.toString('hex')); res.send('2.04'); } });
    const port = node.address().port;
    dev.send({ confirmable: true, code: '0.02', messageId: 1, token: Buffer.of(0xaa), options: bsOptions('dev1') }, port);
    await dev.waitFor((rx) => rx.packet?.token.toString('hex') === 'aa');
    dev.send({ confirmable: true, code: '0.02', messageId: 1, token: Buffer.of(0xbb), options: bsOptions('dev1') }, port);
    const second = await dev.waitFor((rx) => rx.packet?.token.toString('hex') === 'bb');
    expect(second.packet!.code).to.equal('2.04');
    expect(tokens).to.deep.equal(['aa', 'bb']);
    expect(node.stats().duplicates).to.equal(0);
  });

  it('serves a large response block-wise (node-coap Block2) through the demux', async () => {
    const dev = await device();
    const body = Buffer.alloc(2500);
    for (let i = 0; i < body.length; i++) body[i] = i & 0xff;
    const node = await startNode({ handler: (_q, res) => res.send('2.05', { contentFormat: 112, payload: body }) });
    const port = node.address().port;
    const got: Buffer[] = [];
    const token = Buffer.from('0badc0de', 'hex');
    for (let num = 0, mid = 0x300; ; num++, mid++) {
      const block2 = num === 0 ? [] : [{ name: 'Block2' as const, value: Buffer.of((num >> 4) & 0xff, ((num & 15) << 4) | 6).subarray(num >> 4 === 0 ? 1 : 0) }];
      dev.send({ confirmable: true, code: '0.01', messageId: mid, token, options: [{ name: 'Uri-Path', value: Buffer.from('bspack') }, ...block2] }, port);
      const rx = await dev.waitFor((r) => r.packet?.messageId === mid);
      got.push(rx.packet!.payload);
      const b2 = opt(rx.packet!, 'Block2')[0]!;
      if ((b2[b2.length - 1]! & 8) === 0) break;
    }
    expect(got.map((g) => g.length)).to.deep.equal([1024, 1024, 452]);
    expect(Buffer.concat(got)).to.deep.equal(body);
  });

  it('answers 4.13 to a Block1 upload beyond maxRequestBodyBytes before node-coap buffers it', async () => {
    const dev = await device();
    let calls = 0;
    const node = await startNode({ maxRequestBodyBytes: 1024, handler: (_q, res) => { calls++; res.send('2.04'); } });
    // Block 4 of 256-byte blocks claims bytes 1024..1279.
    dev.send({ confirmable: true, code: '0.02', messageId: 0x44, token: Buffer.of(4), options: [{ name: 'Uri-Path', value: Buffer.from('dp') }, { name: 'Block1', value: Buffer.of(0x4c) }], payload: Buffer.alloc(256) }, node.address().port);
    const rx = await dev.waitFor((r) => r.packet?.messageId === 0x44);
    expect(rx.packet).to.include({ ack: true, code: '4.13' });
    expect(opt(rx.packet!, 'Size1')[0]).to.deep.equal(Buffer.of(0x04, 0x00));
    expect(calls).to.equal(0);
  });

  it('talks to another CoapNode: request() in both directions over one socket each', async () => {
    const a = await startNode({ handler: (req, res) => res.send('2.05', { contentFormat: 0, payload: `a:${req.path}` }) });
    const b = await startNode({ handler: (req, res) => res.send('2.05', { contentFormat: 0, payload: `b:${req.path}` }) });
    const [ra, rb] = await Promise.all([
      a.request({ address: LOCAL, port: b.address().port }, { method: 'GET', path: '/x', timeoutMs: 2000 }),
      b.request({ address: LOCAL, port: a.address().port }, { method: 'GET', path: '/y', timeoutMs: 2000 }),
    ]);
    expect(ra.payload.toString()).to.equal('b:/x');
    expect(rb.payload.toString()).to.equal('a:/y');
    expect(ra.peer.port).to.equal(b.address().port);
    expect(ra.contentFormat).to.equal(0);
  });

  it('refuses bad request options without sending anything', async () => {
    const dev = await device();
    const node = await startNode({ handler: refuse });
    const bad = [
      () => node.request(dev.address, { method: 'GET', path: [70000] }),
      () => node.request(dev.address, { method: 'GET', path: '/' + 'x'.repeat(256) }),
      () => node.request(dev.address, { method: 'BREW' as 'GET', path: '/' }),
      () => node.request(dev.address, { method: 'GET', path: '/', timeoutMs: 0 }),
    ];
    for (const f of bad) {
      const err = await f().then(() => undefined, (e: unknown) => e);
      expect(err).to.be.instanceOf(Error);
    }
    await sleep(20);
    expect(dev.count()).to.equal(0);
    expect(node.stats().pending).to.equal(0);
  });
});
