/**
 * A scripted "bootstrap server" for the simulator tests, built on CoapNode: it answers POST /bs
 * (2.04 by default), then runs the test's script against the device; GET /bspack answers what
 * the test set. Everything over real UDP on 127.0.0.1.
 */
import { CoapNode, type CoapIncomingRequest, type CoapRequestOptions, type CoapResponse } from '../../src/coap/coap-node.js';
import type { PeerInfo } from '../../src/coap/endpoint.js';
import { codecFor } from '../../src/lwm2m/formats/index.js';
import { N, type ObjectInstance, type LwM2MNode } from '../../src/lwm2m/node.js';
import type { Path } from '../../src/lwm2m/path.js';
import { V } from '../../src/lwm2m/value.js';

/** Short CoAP timers: retransmissions on a lossless loopback never matter, timeouts stay quick. */
export const FAST = { ackTimeoutMs: 300, ackRandomFactor: 1, maxRetransmit: 2 } as const;

export type Script = (dev: DeviceHandle) => Promise<void>;

/** What the script uses to talk to the device that sent /bs. */
export class DeviceHandle {
  constructor(
    private readonly node: CoapNode,
    readonly peer: PeerInfo,
    readonly bs: CoapIncomingRequest,
  ) {}

  request(o: CoapRequestOptions): Promise<CoapResponse> {
    return this.node.request(this.peer, { timeoutMs: 3000, ...o });
  }

  discover(path: Path = []): Promise<CoapResponse> {
    return this.request({ method: 'GET', path, accept: 40 });
  }

  read(path: Path, accept?: number): Promise<CoapResponse> {
    return this.request({ method: 'GET', path, ...(accept !== undefined ? { accept } : {}) });
  }

  delete(path: Path): Promise<CoapResponse> {
    return this.request({ method: 'DELETE', path });
  }

  /** PUT of `node` at `path`, encoded with the codec of `cf`. */
  write(path: Path, node: LwM2MNode, cf: number): Promise<CoapResponse> {
    return this.request({ method: 'PUT', path, contentFormat: cf, payload: codecFor(cf).encode(path, node) });
  }

  finish(): Promise<CoapResponse> {
    return this.request({ method: 'POST', path: '/bs' });
  }
}

export interface PackAnswer {
  readonly code: string;
  readonly contentFormat?: number;
  readonly payload?: Uint8Array | string;
}

export class ScriptedServer {
  /** Every POST /bs received. */
  readonly bsRequests: CoapIncomingRequest[] = [];
  /** Every GET /bspack received. */
  readonly packRequests: CoapIncomingRequest[] = [];
  /** One promise per script run (rejects when the script failed). */
  readonly runs: Promise<void>[] = [];
  script: Script | undefined;
  bsCode = '2.04';
  bsDiagnostic: string | undefined;
  pack: PackAnswer | undefined;

  private constructor(readonly node: CoapNode) {}

  static async start(script?: Script): Promise<ScriptedServer> {
    const holder: { s?: ScriptedServer } = {};
    const node = await CoapNode.listen({
      host: '127.0.0.1',
      port: 0,
      transmission: FAST,
      handler: (req, res, peer) => holder.s!.handle(req, res.send.bind(res), peer),
    });
    holder.s = new ScriptedServer(node);
    holder.s.script = script;
    return holder.s;
  }

  get port(): number {
    return this.node.address().port;
  }

  get uri(): string {
    return `coap://127.0.0.1:${this.port}`;
  }

  get target(): { address: string; port: number } {
    return { address: '127.0.0.1', port: this.port };
  }

  private handle(req: CoapIncomingRequest, send: (code: string, init?: { contentFormat?: number; payload?: Uint8Array | string }) => void, peer: PeerInfo): void {
    if (req.method === 'POST' && req.path === '/bs') {
      this.bsRequests.push(req);
      send(this.bsCode, this.bsDiagnostic !== undefined ? { payload: this.bsDiagnostic } : {});
      if (this.bsCode === '2.04' && this.script) {
        const run = this.script(new DeviceHandle(this.node, peer, req));
        run.catch(() => undefined); // awaited by the test through `runs`
        this.runs.push(run);
      }
      return;
    }
    if (req.method === 'GET' && req.path === '/bspack') {
      this.packRequests.push(req);
      const p = this.pack ?? { code: '5.01' };
      send(p.code, {
        ...(p.contentFormat !== undefined ? { contentFormat: p.contentFormat } : {}),
        ...(p.payload !== undefined ? { payload: p.payload } : {}),
      });
      return;
    }
    send('4.04');
  }

  close(): Promise<void> {
    return this.node.close();
  }
}

// ---- hand-written instances ----------------------------------------------------------------

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

/** A PSK Security instance for SSID `ssid` (objects.md §2.1 mode 0). */
export function pskSecurity(iid: number, ssid: number, uri = `coaps://dm${ssid}.example.com:5684`, identity = `id-${ssid}`, key = Uint8Array.from({ length: 16 }, (_, i) => i + ssid)): ObjectInstance {
  return N.instance(iid, [
    N.resource(0, V.string(uri)),
    N.resource(1, V.boolean(false)),
    N.resource(2, V.integer(0)),
    N.resource(3, V.opaque(bytes(identity))),
    N.resource(4, V.opaque(new Uint8Array(0))),
    N.resource(5, V.opaque(key)),
    N.resource(10, V.integer(ssid)),
  ]);
}

/** A NoSec Security instance. */
export function nosecSecurity(iid: number, ssid: number, uri = `coap://dm${ssid}.example.com:5683`): ObjectInstance {
  return N.instance(iid, [
    N.resource(0, V.string(uri)),
    N.resource(1, V.boolean(false)),
    N.resource(2, V.integer(3)),
    N.resource(3, V.opaque(new Uint8Array(0))),
    N.resource(4, V.opaque(new Uint8Array(0))),
    N.resource(5, V.opaque(new Uint8Array(0))),
    N.resource(10, V.integer(ssid)),
  ]);
}

/** A Server instance (objects.md §3): SSID, lifetime, storing, binding, plus pmin/pmax. */
export function serverInstance(iid: number, ssid: number, lifetime = 300, binding = 'U'): ObjectInstance {
  return N.instance(iid, [
    N.resource(0, V.integer(ssid)),
    N.resource(1, V.integer(lifetime)),
    N.resource(2, V.integer(1)),
    N.resource(3, V.integer(60)),
    N.resource(6, V.boolean(true)),
    N.resource(7, V.string(binding)),
  ]);
}

/** An ACL instance: rights per SSID, owner. */
export function aclInstance(iid: number, objectId: number, instanceId: number, rights: [number, number][], owner: number): ObjectInstance {
  return N.instance(iid, [
    N.resource(0, V.integer(objectId)),
    N.resource(1, V.integer(instanceId)),
    N.multi(2, rights.map(([s, m]) => [s, V.integer(m)] as const)),
    N.resource(3, V.integer(owner)),
  ]);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
