/** For the DTLS client tests: a CoapNode over a (server or client) DTLS endpoint that answers every request as `handler` says. */
import { CoapNode, type CoapIncomingRequest } from '../../src/coap/coap-node.js';
import type { CoapEndpoint, PeerInfo } from '../../src/coap/endpoint.js';

export function answeringNode(
  ep: CoapEndpoint,
  handler: (req: CoapIncomingRequest, peer: PeerInfo) => [code: string, text: string],
  cleanup: (() => Promise<void>)[],
): CoapNode {
  const n = new CoapNode(ep, {
    handler: (req, res, peer) => {
      const [code, text] = handler(req, peer);
      res.send(code, { contentFormat: 0, payload: Buffer.from(text) });
    },
    transmission: { ackTimeoutMs: 300 },
  });
  cleanup.push(() => n.close());
  return n;
}
