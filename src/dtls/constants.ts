/**
 * DTLS 1.2 code points (RFC 6347, RFC 5246, RFC 4279, RFC 7627, RFC 5746, RFC 9146): content
 * types, protocol versions, handshake message types, alert levels and descriptions, extension
 * types. Numbers only; no behaviour.
 */

export const ContentType = {
  changeCipherSpec: 20,
  alert: 21,
  handshake: 22,
  applicationData: 23,
  heartbeat: 24,
  /** RFC 9146 records carrying a Connection ID (not parsed by this slice). */
  tls12Cid: 25,
} as const;

/** Wire versions (one's complement): DTLS 1.2 = FE FD, DTLS 1.0 = FE FF. */
export const DTLS_1_2 = 0xfefd;
export const DTLS_1_0 = 0xfeff;

export const HandshakeType = {
  helloRequest: 0,
  clientHello: 1,
  serverHello: 2,
  helloVerifyRequest: 3,
  certificate: 11,
  serverKeyExchange: 12,
  certificateRequest: 13,
  serverHelloDone: 14,
  certificateVerify: 15,
  clientKeyExchange: 16,
  finished: 20,
} as const;

export const AlertLevel = { warning: 1, fatal: 2 } as const;

export const AlertDescription = {
  closeNotify: 0,
  unexpectedMessage: 10,
  badRecordMac: 20,
  recordOverflow: 22,
  handshakeFailure: 40,
  badCertificate: 42,
  unsupportedCertificate: 43,
  certificateExpired: 45,
  certificateUnknown: 46,
  illegalParameter: 47,
  unknownCa: 48,
  accessDenied: 49,
  decodeError: 50,
  decryptError: 51,
  protocolVersion: 70,
  insufficientSecurity: 71,
  internalError: 80,
  userCanceled: 90,
  noRenegotiation: 100,
  unsupportedExtension: 110,
  unknownPskIdentity: 115,
} as const;

export const ExtensionType = {
  serverName: 0,
  maxFragmentLength: 1,
  supportedGroups: 10,
  ecPointFormats: 11,
  signatureAlgorithms: 13,
  clientCertificateType: 19,
  serverCertificateType: 20,
  encryptThenMac: 22,
  extendedMasterSecret: 23,
  recordSizeLimit: 28,
  sessionTicket: 35,
  connectionId: 54,
  renegotiationInfo: 0xff01,
} as const;

/** RFC 7250 certificate types (client_certificate_type / server_certificate_type). */
export const CertificateType = { x509: 0, rawPublicKey: 2 } as const;

/** RFC 8422: named_curve curve type, secp256r1, the uncompressed point format. */
export const ECCurveType = { namedCurve: 3 } as const;
export const NamedGroup = { secp256r1: 0x0017 } as const;
export const ECPointFormat = { uncompressed: 0 } as const;

/** SignatureAndHashAlgorithm ecdsa_secp256r1_sha256: hash sha256 (4), signature ecdsa (3). */
export const ECDSA_SHA256 = 0x0403;

/** ClientCertificateType ecdsa_sign (RFC 8422 §5.5). */
export const ClientCertificateTypeEcdsaSign = 64;

/** TLS_EMPTY_RENEGOTIATION_INFO_SCSV (RFC 5746): a cipher-suite value that signals secure renegotiation support. */
export const EMPTY_RENEGOTIATION_INFO_SCSV = 0x00ff;

/** RFC 6347 §4.1: 2^14 bytes of plaintext per record, 2^14 + 2048 of protected fragment. */
export const MAX_PLAINTEXT_LENGTH = 1 << 14;
export const MAX_CIPHERTEXT_LENGTH = (1 << 14) + 2048;

/** RFC 6066 §4 max_fragment_length codes → record plaintext limit: 1 = 2^9 … 4 = 2^12. */
export const MAX_FRAGMENT_LENGTHS: Readonly<Record<number, number>> = { 1: 512, 2: 1024, 3: 2048, 4: 4096 };

/** RFC 8449 §4: a record_size_limit below 64 is illegal; in (D)TLS 1.2 the protocol limit is 2^14. */
export const MIN_RECORD_SIZE_LIMIT = 64;

/** Sequence numbers are 48-bit and never wrap. */
export const MAX_SEQUENCE_NUMBER = 2 ** 48 - 1;
