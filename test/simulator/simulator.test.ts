/**
 * The device simulator over real UDP on 127.0.0.1, driven by a scripted bootstrap server built on
 * CoapNode (support.ts). Payloads are encoded from hand-written nodes with the codecs; what the
 * device holds afterwards is compared with those nodes. § numbers: /work/shared/spec/bootstrap.md.
 */
import { expect } from 'chai';
import { CoapNode, CoapRequestError, type CoapResponse } from '../../src/coap/coap-node.js';
import { codecFor, compositeCodecFor } from '../../src/lwm2m/formats/index.js';
import { parseBootstrapDiscover } from '../../src/lwm2m/linkformat.js';
import { N, nodeEquals, nodeToRecords, type LwM2MObject, type ObjectInstance } from '../../src/lwm2m/node.js';
import { V } from '../../src/lwm2m/value.js';
import { DEFAULT_ACCEPT_FORMATS, type SimLwM2MVersion } from '../../src/simulator/device-model.js';
import { DeviceSimulator, type SimulatorOptions } from '../../src/simulator/simulator.js';
import {
  aclInstance, FAST, nosecSecurity, pskSecurity, ScriptedServer, serverInstance, sleep, type DeviceHandle, type Script,
} from './support.js';

const codes = (rs: CoapResponse[]): string[] => rs.map((r) => r.code);

describe('simulator/DeviceSimulator over UDP', function () {
  this.timeout(20_000);
  const sims: DeviceSimulator[] = [];
  const servers: ScriptedServer[] = [];

  async function sim(opts: Partial<SimulatorOptions> = {}): Promise<DeviceSimulator> {
    const s = await DeviceSimulator.start({ endpoint: 'dev-1', transmission: FAST, ...opts });
    sims.push(s);
    return s;
  }
  async function server(script?: Script): Promise<ScriptedServer> {
    const s = await ScriptedServer.start(script);
    servers.push(s);
    return s;
  }
  afterEach(async () => {
    await Promise.all(sims.splice(0).map((s) => s.close()));
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });

  it('runs a whole session: /bs with ep and pct, Discover, Delete, Writes, Read, Finish 2.04, and reports what it got', async () => {
    const answers: CoapResponse[] = [];
    let discovered = '';
    const key = Uint8Array.from({ length: 16 }, (_, i) => 0xa0 + i);
    const srv = await server(async (d) => {
      const disc = await d.discover();
      discovered = disc.payload.toString();
      answers.push(disc);
      answers.push(await d.delete([0]));
      answers.push(await d.delete([1]));
      answers.push(await d.write([0, 1], pskSecurity(1, 101, 'coaps://dm.example.com:5684', 'urn:imei:490154203237518', key), 112));
      answers.push(await d.write([1, 0], serverInstance(0, 101, 86400), 112));
      answers.push(await d.write([2, 0], aclInstance(0, 1, 0, [[101, 15]], 101), 112));
      answers.push(await d.read([1], 112));
      answers.push(await d.finish());
    });
    const dev = await sim({ pct: 112, seed: [N.object(0, [nosecSecurity(1, 7)]), N.object(1, [serverInstance(0, 7)])] });
    const report = await dev.bootstrap(srv.uri, { timeoutMs: 5000 });
    await Promise.all(srv.runs);

    expect(codes(answers)).to.deep.equal(['2.05', '2.02', '2.02', '2.04', '2.04', '2.04', '2.05', '2.04']);
    expect(srv.bsRequests[0]!.query).to.deep.equal(['ep=dev-1', 'pct=112']);
    // §5.1: the seeded account shows up with ssid and uri; the BS account is the /0 link without ssid.
    const d = parseBootstrapDiscover(discovered);
    expect(d.lwm2mVersion).to.equal('1.1');
    expect(d.instances.map((i) => [i.path.join('/'), i.ssid, i.uri])).to.deep.equal([
      ['0/0', undefined, undefined], ['0/1', 7, 'coap://dm7.example.com:5683'], ['1/0', 7, undefined], ['3/0', undefined, undefined],
    ]);
    // Bootstrap-Read answered the Server object as it stands (§6).
    const read = codecFor(112).decode([1], answers[6]!.payload, undefined);
    expect(read.kind === 'object' && [...read.instances.keys()]).to.deep.equal([0]);

    expect(report.outcome).to.equal('success');
    expect(report.requestCode).to.equal('2.04');
    expect(report.server).to.equal(srv.uri);
    expect(report.servers).to.have.length(1);
    const acc = report.servers[0]!;
    expect(acc.ssid).to.equal(101);
    expect(acc.uri).to.equal('coaps://dm.example.com:5684');
    expect(acc.mode).to.equal('psk');
    expect(Buffer.from(acc.pskIdentity!).toString()).to.equal('urn:imei:490154203237518');
    expect(Buffer.from(acc.pskKey!.reveal()).equals(Buffer.from(key))).to.equal(true);
    expect([acc.securityInstance, acc.serverInstance, acc.lifetime, acc.binding, acc.notificationStoring]).to.deep.equal([1, 0, 86400, 'U', true]);
    expect(report.bootstrapAccount?.uri).to.equal(srv.uri);
    expect(report.bootstrapAccount?.securityInstance).to.equal(0);
    expect(report.acl.map((a) => [a.objectId, a.instanceId, a.owner, [...a.rights]])).to.deep.equal([[1, 0, 101, [[101, 15]]]]);
    expect(report.requests.map((r) => `${r.method} ${r.path} ${r.code}`)).to.deep.equal([
      'GET / 2.05', 'DELETE /0 2.02', 'DELETE /1 2.02', 'PUT /0/1 2.04', 'PUT /1/0 2.04', 'PUT /2/0 2.04', 'GET /1 2.05', 'POST /bs 2.04',
    ]);
    expect(report.requests.map((r) => r.operation)).to.deep.equal(['discover', 'delete', 'delete', 'write', 'write', 'write', 'read', 'finish']);
    expect(dev.requests).to.have.length(8);
    expect(nodeEquals(dev.instance(1, 0)!, serverInstance(0, 101, 86400))).to.equal(true);
    expect(dev.running).to.equal(false);
  });

  describe('accepts every write format of its version (§7) and refuses the others with 4.15', () => {
    const security = pskSecurity(1, 101);
    const srvInst = serverInstance(0, 101);
    const acl = aclInstance(0, 1, 0, [[0, 1], [101, 31]], 101);
    for (const version of ['1.0', '1.1', '1.2'] as SimLwM2MVersion[]) {
      for (const cf of DEFAULT_ACCEPT_FORMATS[version]) {
        it(`LwM2M ${version}, Content-Format ${cf}`, async () => {
          const answers: CoapResponse[] = [];
          const srv = await server(async (d) => {
            answers.push(await d.write([0, 1], security, cf));
            answers.push(await d.write([1], N.object(1, [srvInst]), cf));
            answers.push(await d.write([2, 0], acl, cf));
            answers.push(await d.finish());
          });
          const dev = await sim({ lwm2mVersion: version });
          const report = await dev.bootstrap(srv.target, { timeoutMs: 5000 });
          await Promise.all(srv.runs);
          expect(codes(answers)).to.deep.equal(['2.04', '2.04', '2.04', '2.04']);
          expect(report.outcome).to.equal('success');
          expect(nodeEquals(dev.instance(0, 1)!, security)).to.equal(true);
          expect(nodeEquals(dev.instance(1, 0)!, srvInst)).to.equal(true);
          expect(nodeEquals(dev.instance(2, 0)!, acl)).to.equal(true);
        });
      }
    }

    it('4.15 for formats outside its list, so a server can retry in the next one', async () => {
      const answers: CoapResponse[] = [];
      const srv = await server(async (d) => {
        answers.push(await d.write([0, 1], security, 11542)); // not accepted by this device
        answers.push(await d.write([0, 1], security, 11544)); // 1.2 only
        answers.push(await d.write([0, 1], security, 110));
        answers.push(await d.write([1, 0], srvInst, 110));
        answers.push(await d.finish());
      });
      const dev = await sim({ lwm2mVersion: '1.1', acceptFormats: [110] });
      const report = await dev.bootstrap(srv.uri, { timeoutMs: 5000 });
      await Promise.all(srv.runs);
      expect(codes(answers)).to.deep.equal(['4.15', '4.15', '2.04', '2.04', '2.04']);
      expect(report.outcome).to.equal('success');
      expect(report.requests[0]!.diagnostic).to.match(/Content-Format 11542 is not supported/);
    });

    it('a 1.0 device refuses SenML and never sends pct', async () => {
      const answers: CoapResponse[] = [];
      const srv = await server(async (d) => {
        answers.push(await d.write([0, 1], security, 112));
        answers.push(await d.write([0, 1], security, 110));
        answers.push(await d.read([1], 11542)); // no Bootstrap-Read in 1.0
        answers.push(await d.discover());
      });
      const dev = await sim({ lwm2mVersion: '1.0', pct: 112 });
      const report = await dev.bootstrap(srv.uri, { timeoutMs: 600 });
      await Promise.all(srv.runs);
      expect(codes(answers)).to.deep.equal(['4.15', '4.15', '4.00', '2.05']);
      expect(answers[3]!.payload.toString()).to.equal('lwm2m="1.0",</0/0>,</1>,</2>,</3/0>');
      expect(srv.bsRequests[0]!.query).to.deep.equal(['ep=dev-1']);
      expect(report.outcome).to.equal('timeout'); // the script sent no Finish
    });
  });

  describe('Finish (§9)', () => {
    const inconsistent: [string, (d: DeviceHandle) => Promise<unknown>, RegExp][] = [
      ['a Security instance without its Server instance', (d) => d.write([0, 1], pskSecurity(1, 101), 11542), /\(SSID 101\) has no Server instance/],
      ['duplicate SSIDs', async (d) => {
        await d.write([0], N.object(0, [pskSecurity(1, 5), nosecSecurity(2, 5)]), 11542);
        await d.write([1, 0], serverInstance(0, 5), 11542);
      }, /SSID 5 is used by Security \/0\/1 and \/0\/2/],
      ['a PSK account with an empty key', async (d) => {
        await d.write([0, 1], pskSecurity(1, 5, 'coaps://x', 'id', new Uint8Array(0)), 11542);
        await d.write([1, 0], serverInstance(0, 5), 11542);
      }, /PSK account with an empty identity or key/],
      ['no server account', (d) => d.delete([]), /no usable LwM2M Server account/],
    ];
    for (const [what, writes, reason] of inconsistent) {
      it(`answers 4.06 for ${what}`, async () => {
        let finish: CoapResponse | undefined;
        const srv = await server(async (d) => {
          await writes(d);
          finish = await d.finish();
        });
        const dev = await sim();
        const report = await dev.bootstrap(srv.uri, { timeoutMs: 5000 });
        await Promise.all(srv.runs);
        expect(finish?.code).to.equal('4.06');
        expect(finish?.payload.toString()).to.match(reason);
        expect(report.outcome).to.equal('inconsistent');
        expect(report.diagnostic).to.match(reason);
      });
    }

    it('keeps the BS account as it was when the session fails, after the server replaced it', async () => {
      const replaced = N.instance(0, [
        N.resource(0, V.string('coap://other-bs:5683')), N.resource(1, V.boolean(true)), N.resource(2, V.integer(3)),
        N.resource(3, V.opaque(new Uint8Array())), N.resource(4, V.opaque(new Uint8Array())), N.resource(5, V.opaque(new Uint8Array())),
      ]);
      const srv = await server(async (d) => {
        await d.write([0, 0], replaced, 11542);
        await d.finish(); // 4.06: no server account
      });
      const dev = await sim({ bootstrapUri: 'coap://original-bs:5683' });
      const report = await dev.bootstrap(srv.uri, { timeoutMs: 5000 });
      await Promise.all(srv.runs);
      expect(report.outcome).to.equal('inconsistent');
      expect(report.bootstrapAccount?.uri).to.equal('coap://original-bs:5683');
    });
  });

  it('answers Delete per §8: protected instances refused or skipped, missing ones 4.04, resource paths 4.00', async () => {
    const answers: CoapResponse[] = [];
    const srv = await server(async (d) => {
      answers.push(await d.delete([0, 0]));
      answers.push(await d.delete([3, 0]));
      answers.push(await d.delete([0, 9]));
      answers.push(await d.delete([0, 1, 0]));
      answers.push(await d.delete([]));
      answers.push(await d.request({ method: 'PUT', path: [1], contentFormat: 11542 })); // an empty object: nothing to write
      answers.push(await d.write([4, 0], N.instance(0, [N.resource(0, V.integer(1))]), 11542));
      answers.push(await d.request({ method: 'PUT', path: '/', contentFormat: 11542, payload: Buffer.alloc(0) }));
      answers.push(await d.request({ method: 'POST', path: [1, 0, 8] }));
      answers.push(await d.request({ method: 'GET', path: '/x', accept: 40 }));
    });
    const dev = await sim({ seed: [N.object(0, [nosecSecurity(1, 7)]), N.object(1, [serverInstance(0, 7)])] });
    await dev.bootstrap(srv.uri, { timeoutMs: 800 });
    await Promise.all(srv.runs);
    expect(codes(answers)).to.deep.equal(['4.00', '4.00', '4.04', '4.00', '2.02', '2.04', '4.04', '4.05', '4.05', '4.00']);
    expect([...dev.objects.get(0)!.instances.keys()]).to.deep.equal([0]);
    expect([...dev.objects.get(3)!.instances.keys()]).to.deep.equal([0]);
    expect(dev.objects.get(1)!.instances.size).to.equal(0);
  });

  describe('faults', () => {
    it('silent: the server times out and the device logs the request unanswered; the session goes on', async () => {
      let err: unknown;
      let finish: CoapResponse | undefined;
      const srv = await server(async (d) => {
        try {
          await d.request({ method: 'PUT', path: [0, 1], contentFormat: 11542, payload: codecFor(11542).encode([0, 1], pskSecurity(1, 9)), timeoutMs: 1200 });
        } catch (e) {
          err = e;
        }
        await d.write([0, 1], pskSecurity(1, 9), 11542);
        await d.write([1, 0], serverInstance(0, 9), 11542);
        finish = await d.finish();
      });
      const dev = await sim({ fault: (r) => (r.index === 0 ? { silent: true } : undefined) });
      const report = await dev.bootstrap(srv.uri, { timeoutMs: 5000 });
      await Promise.all(srv.runs);
      expect(err).to.be.instanceOf(CoapRequestError);
      expect((err as CoapRequestError).reason).to.equal('timeout');
      expect(report.requests[0]!.fault).to.equal('silent');
      expect(report.requests[0]!.code).to.equal(undefined);
      expect(finish?.code).to.equal('2.04');
      expect(report.outcome).to.equal('success');
    });

    it('5.00: the server gets the error, the operation is not applied, a faulted Finish does not end the session', async () => {
      const answers: CoapResponse[] = [];
      const srv = await server(async (d) => {
        answers.push(await d.write([0, 1], pskSecurity(1, 9), 11542));
        answers.push(await d.finish());
        answers.push(await d.finish());
      });
      const dev = await sim({
        fault: (r) => (r.operation === 'write' ? { code: '5.00', diagnostic: 'flash full' } : r.operation === 'finish' && r.sessionIndex === 1 ? { code: '5.03' } : undefined),
      });
      const report = await dev.bootstrap(srv.uri, { timeoutMs: 5000 });
      await Promise.all(srv.runs);
      expect(codes(answers)).to.deep.equal(['5.00', '5.03', '4.06']);
      expect(answers[0]!.payload.toString()).to.equal('flash full');
      expect(dev.instance(0, 1)).to.equal(undefined);
      expect(report.outcome).to.equal('inconsistent');
      expect(report.requests.map((r) => r.fault)).to.deep.equal(['code', 'code', undefined]);
    });

    it('delay: the answer comes late (a separate response) and is the normal one', async () => {
      let disc: CoapResponse | undefined;
      let t = 0;
      const srv = await server(async (d) => {
        const t0 = Date.now();
        disc = await d.discover();
        t = Date.now() - t0;
      });
      const dev = await sim({ fault: (r) => (r.operation === 'discover' ? { delayMs: 700 } : undefined) });
      const report = await dev.bootstrap(srv.uri, { timeoutMs: 1500 });
      await Promise.all(srv.runs);
      expect(disc?.code).to.equal('2.05');
      expect(t).to.be.at.least(650);
      expect(report.requests[0]!.fault).to.equal('delay');
      expect(report.requests[0]!.code).to.equal('2.05');
    });
  });

  it('times out when the server goes quiet after 2.04, restoring nothing but reporting what was written', async () => {
    const srv = await server(async (d) => {
      await d.write([0, 1], pskSecurity(1, 9), 11542);
    });
    const dev = await sim();
    const t0 = Date.now();
    const report = await dev.bootstrap(srv.uri, { timeoutMs: 400 });
    expect(Date.now() - t0).to.be.lessThan(3000);
    expect(report.outcome).to.equal('timeout');
    expect(report.diagnostic).to.match(/no request from the bootstrap server within 400 ms/);
    expect(report.servers.map((s) => s.ssid)).to.deep.equal([9]);
  });

  it('reports a refused Bootstrap-Request with the server’s code and diagnostic', async () => {
    const srv = await server();
    srv.bsCode = '4.00';
    srv.bsDiagnostic = 'no bootstrap config';
    const dev = await sim();
    const report = await dev.bootstrap(srv.uri, { timeoutMs: 2000 });
    expect(report.outcome).to.equal('rejected');
    expect(report.requestCode).to.equal('4.00');
    expect(report.diagnostic).to.equal('no bootstrap config');
  });

  it('times out when nobody answers /bs, and ends with error when aborted', async () => {
    const quiet = await CoapNode.listen({ host: '127.0.0.1', port: 0, handler: () => undefined });
    try {
      const dev = await sim();
      const r1 = await dev.bootstrap({ address: '127.0.0.1', port: quiet.address().port }, { timeoutMs: 300 });
      expect(r1.outcome).to.equal('timeout');
      const ac = new AbortController();
      const p = dev.bootstrap({ address: '127.0.0.1', port: quiet.address().port }, { timeoutMs: 5000, signal: ac.signal });
      await sleep(50);
      ac.abort();
      const r2 = await p;
      expect(r2.outcome).to.equal('error');
      expect(r2.diagnostic).to.equal('aborted');
    } finally {
      await quiet.close();
    }
  });

  it('refuses a second bootstrap while one runs, and requests outside a session or from another peer get 4.00', async () => {
    let fromStranger: CoapResponse | undefined;
    const stranger = await CoapNode.listen({ host: '127.0.0.1', port: 0, handler: (_q, res) => res.send('4.04') });
    try {
      const srv = await server(async (d) => {
        fromStranger = await stranger.request(d.peer, { method: 'GET', path: '/', accept: 40, timeoutMs: 2000 });
        await d.write([0, 1], nosecSecurity(1, 3), 11542);
        await d.write([1, 0], serverInstance(0, 3), 11542);
        await d.finish();
      });
      const dev = await sim();
      const p = dev.bootstrap(srv.uri, { timeoutMs: 5000 });
      let again: unknown;
      try {
        await dev.bootstrap(srv.uri);
      } catch (e) {
        again = e;
      }
      expect(String(again)).to.match(/already running/);
      expect((await p).outcome).to.equal('success');
      await Promise.all(srv.runs);
      expect(fromStranger?.code).to.equal('4.00');
      const after = await stranger.request({ address: '127.0.0.1', port: dev.address().port }, { method: 'POST', path: '/bs', timeoutMs: 2000 });
      expect(after.code).to.equal('4.00');
      expect(after.payload.toString()).to.equal('no bootstrap session pending');
    } finally {
      await stranger.close();
    }
  });

  it('bootstraps again on the same simulator: the second server sees the first one’s accounts', async () => {
    const discovered: string[] = [];
    const srv = await server(async (d) => {
      discovered.push((await d.discover()).payload.toString());
      await d.delete([0]);
      await d.delete([1]);
      const ssid = discovered.length === 1 ? 11 : 22;
      await d.write([0, 1], nosecSecurity(1, ssid), 11542);
      await d.write([1, 0], serverInstance(0, ssid), 11542);
      await d.finish();
    });
    const dev = await sim({ lwm2mVersion: '1.2' });
    const r1 = await dev.bootstrap(srv.uri, { timeoutMs: 5000 });
    const r2 = await dev.bootstrap(srv.uri, { timeoutMs: 5000 });
    await Promise.all(srv.runs);
    expect([r1.outcome, r2.outcome]).to.deep.equal(['success', 'success']);
    expect(parseBootstrapDiscover(discovered[1]!).instances.find((i) => i.path[0] === 1)?.ssid).to.equal(11);
    expect(r1.servers.map((s) => s.ssid)).to.deep.equal([11]);
    expect(r2.servers.map((s) => s.ssid)).to.deep.equal([22]);
    expect(r2.requests).to.have.length(6);
    expect(dev.requests).to.have.length(12);
  });

  describe('Bootstrap-Pack (§3)', () => {
    const pack: LwM2MObject[] = [
      N.object(0, [pskSecurity(1, 101, 'coaps://dm.example.com:5684', 'client-1')]),
      N.object(1, [serverInstance(0, 101, 86400)]),
      N.object(2, [aclInstance(0, 3, 0, [[101, 1]], 101)]),
    ];
    const encodePack = (cf: number, objects: LwM2MObject[]): Uint8Array =>
      compositeCodecFor(cf).encodeRecords(objects.flatMap((o) => nodeToRecords([o.id], o)));

    for (const cf of [112, 110, 11544]) {
      it(`applies a pack in ${cf === 112 ? 'SenML CBOR' : cf === 110 ? 'SenML JSON' : 'LwM2M CBOR'} with Accept ${cf}`, async () => {
        const srv = await server();
        srv.pack = { code: '2.05', contentFormat: cf, payload: encodePack(cf, pack) };
        const dev = await sim({ lwm2mVersion: '1.2', seed: [N.object(0, [nosecSecurity(5, 9)]), N.object(1, [serverInstance(3, 9)])] });
        const report = await dev.bootstrapPack(srv.uri, { accept: cf, timeoutMs: 3000 });
        expect(srv.packRequests).to.have.length(1);
        expect(srv.packRequests[0]!.accept).to.equal(cf);
        expect(srv.packRequests[0]!.query).to.deep.equal(['ep=dev-1']);
        expect(report.kind).to.equal('pack');
        expect(report.outcome).to.equal('success');
        expect(report.requestCode).to.equal('2.05');
        // The old /0/5 and /1/3 are gone (their objects are in the pack); the BS account and /3/0 stay.
        expect([...dev.objects.get(0)!.instances.keys()]).to.deep.equal([0, 1]);
        expect(nodeEquals(dev.instance(0, 1)!, pack[0]!.instances.get(1)!)).to.equal(true);
        expect(nodeEquals(dev.objects.get(1)!, pack[1]!)).to.equal(true);
        expect(nodeEquals(dev.objects.get(2)!, pack[2]!)).to.equal(true);
        expect(dev.instance(3, 0)).to.not.equal(undefined);
        expect(report.servers.map((s) => [s.ssid, s.uri, s.lifetime])).to.deep.equal([[101, 'coaps://dm.example.com:5684', 86400]]);
      });
    }

    it('reports an inconsistent pack and keeps the old configuration', async () => {
      const srv = await server();
      srv.pack = { code: '2.05', contentFormat: 112, payload: encodePack(112, [pack[0]!]) };
      const seedSec: ObjectInstance = nosecSecurity(5, 9);
      const dev = await sim({ lwm2mVersion: '1.2', seed: [N.object(0, [seedSec]), N.object(1, [serverInstance(3, 9)])] });
      const report = await dev.bootstrapPack(srv.uri, { timeoutMs: 3000 });
      expect(report.outcome).to.equal('inconsistent');
      expect(report.diagnostic).to.match(/SSID 101\) has no Server instance/);
      expect(nodeEquals(dev.instance(0, 5)!, seedSec)).to.equal(true);
    });

    it('falls back to Bootstrap-Request after 5.01 when asked to (§3: "After any error C MUST fall back")', async () => {
      const srv = await server(async (d) => {
        await d.write([0, 1], nosecSecurity(1, 4), 11542);
        await d.write([1, 0], serverInstance(0, 4), 11542);
        await d.finish();
      });
      const dev = await sim({ lwm2mVersion: '1.2' });
      const plain = await dev.bootstrapPack(srv.uri, { timeoutMs: 3000 });
      expect(plain.outcome).to.equal('rejected');
      expect(plain.requestCode).to.equal('5.01');
      const report = await dev.bootstrapPack(srv.uri, { timeoutMs: 3000, fallback: true });
      await Promise.all(srv.runs);
      expect(report.kind).to.equal('bootstrap');
      expect(report.outcome).to.equal('success');
      expect(report.packAttempt).to.deep.equal({ outcome: 'rejected', requestCode: '5.01' });
    });

    it('is refused for devices older than 1.2', async () => {
      const dev = await sim({ lwm2mVersion: '1.1' });
      let err: unknown;
      try {
        await dev.bootstrapPack('coap://127.0.0.1:9');
      } catch (e) {
        err = e;
      }
      expect(String(err)).to.match(/LwM2M 1\.2/);
    });
  });

  it('runs 200 simulators at once against one server', async function () {
    this.timeout(30_000);
    const srv = await server(async (d) => {
      const ep = d.bs.query[0]!.slice(3);
      const ssid = Number(ep.split('-')[1]) + 1;
      const r = [
        await d.discover(),
        await d.delete([0]),
        await d.write([0, 1], pskSecurity(1, ssid, 'coaps://dm.example.com:5684', ep), 112),
        await d.write([1, 0], serverInstance(0, ssid), 112),
        await d.finish(),
      ];
      if (codes(r).join() !== '2.05,2.02,2.04,2.04,2.04') throw new Error(`${ep}: ${codes(r).join()}`);
    });
    const devs = await Promise.all(Array.from({ length: 200 }, (_, i) => sim({ endpoint: `ep-${i}`, pct: 112 })));
    const reports = await Promise.all(devs.map((d) => d.bootstrap(srv.uri, { timeoutMs: 15_000 })));
    await Promise.all(srv.runs);
    expect(reports.filter((r) => r.outcome === 'success')).to.have.length(200);
    reports.forEach((r, i) => {
      expect(r.servers.map((s) => s.ssid)).to.deep.equal([i + 1]);
      expect(Buffer.from(r.servers[0]!.pskIdentity!).toString()).to.equal(`ep-${i}`);
    });
  });
});
