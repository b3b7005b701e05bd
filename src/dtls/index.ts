/** DTLS 1.2 server side (RFC 6347): PSK and ECDHE_ECDSA (raw public key or X.509) cipher suites, the CoapEndpoint over it, and the building blocks. */
export { DtlsEndpoint, DtlsNoSessionError, type DatagramTransport, type DtlsEndpointOptions, type PeerMovedListener } from './endpoint.js';
export { DtlsServer, type DtlsDiagnostic, type DtlsServerIo, type DtlsServerOptions, type DtlsServerStats } from './server.js';
export type { CloseReason, DtlsPeerIdentity, PeerAddressInfo, PskLookup, RecordLimitRequest, RpkLookup, ServerConnection, X509Lookup } from './connection.js';
export { RecordSizeLimitError } from './connection.js';
export { SessionCache, DEFAULT_SESSION_CACHE, type SessionCacheOptions } from './session-cache.js';
export { logDtlsDiagnostics } from './log.js';
export { loadServerKey, type ServerKeyInput, type ServerKeyMaterial } from './ecc.js';
export {
  ALL_SUITES, suiteById, suiteHex, TLS_PSK_WITH_AES_128_CBC_SHA256, TLS_PSK_WITH_AES_128_CCM, TLS_PSK_WITH_AES_128_CCM_8,
  TLS_PSK_WITH_AES_128_GCM_SHA256, TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256, TLS_ECDHE_ECDSA_WITH_AES_128_CCM,
  TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8, TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, type CipherSuite, type KeyExchange,
} from './suites.js';
export { AlertDescription, AlertLevel, CertificateType, ContentType, HandshakeType, ExtensionType } from './constants.js';
export {
  certificateMatchesEndpoint, certificateNames, certificateValidity, loadTrustAnchors, verifyCertificateChain, MAX_CHAIN_LENGTH,
  type CertificateNames, type ChainVerification, type TrustAnchors, type Validity,
} from './x509.js';
export { alertName } from './alert.js';
