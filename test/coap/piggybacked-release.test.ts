/**
 * node-coap keeps every response it sends, with its sender (a RetrySend holding a 202 s MAX_RTT
 * timer and, through it, the whole request and response) for EXCHANGE_LIFETIME. For a piggybacked
 * response nothing of the sender is used again, so the demux releases it once sent (found by the
 * fleet benchmark's profiling: ~7 KB per request kept for minutes).
 */
import { expect } from 'chai';
import { CoapNode } from '../../src/coap/coap-node.js';

const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('coap/demux: piggybacked responses release their node-coap sender', function () {
  this.timeout(20_000);

  it('answering requests piggybacked leaves no node-coap timers behind', async () => {
    const server = await CoapNode.listen({ host: '127.0.0.1', port: 0, handler: (_req, res) => res.send('2.05', { payload: Buffer.from('ok') }) });
    const client = await CoapNode.listen({ host: '127.0.0.1', port: 0, handler: (_req, res) => res.send('4.04') });
    try {
      const peer = { address: '127.0.0.1', port: server.address().port };
      await client.request(peer, { method: 'GET', path: '/warm', timeoutMs: 3000 });
      await turn();
      const before = timers();
      for (let i = 0; i < 40; i++) {
        const r = await client.request(peer, { method: 'GET', path: `/r/${i}`, timeoutMs: 3000 });
        expect(r.code).to.equal('2.05');
      }
      await turn();
      // Without the release each answer kept one 202 s timer (40 more); a few may be unrelated.
      expect(timers() - before).to.be.below(10);
    } finally {
      await client.close();
      await server.close();
    }
  });
});
