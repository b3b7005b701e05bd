/** The CoAP transport: endpoints, the demultiplexer, the node (server + client on one socket). */
export * from './endpoint.js';
export * from './udp-endpoint.js';
export * from './message.js';
export * from './coap-node.js';
export { CoapDemux, DemuxPort, type DemuxDiagnostic, type DemuxStats } from './demux.js';
