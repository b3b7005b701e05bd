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

/**
 * Sends one CoAP GET (CON, MID 1) through `ep` to 127.0.0.1:`port` and resolves with the send's
 * outcome: null once it went out, or the Error a failed handshake gave (what the client tests assert).
 */
export function sendOnce(ep: Pick<CoapEndpoint, 'send'>, port: number): Promise<Error | null> {
  return new Promise<Error | null>((resolve) => ep.send(Buffer.from([0x40, 0x01, 0x00, 0x01]), port, '127.0.0.1', resolve));
}
