/**
 * Numbered schema migrations. Each is applied in its own transaction together with
 * `PRAGMA user_version = version`, so a database is always exactly at one version: a crash
 * during a migration leaves it at the previous one, and the next start applies it again.
 *
 * Rules: never edit a migration that has shipped; add a new one. Versions are 1, 2, 3... in order.
 *
 * Conventions of the schema:
 * - timestamps are INTEGER milliseconds since the epoch;
 * - endpoint names and identities are BLOBs (they may be binary), compared bytewise;
 * - columns ending in `_enc` hold AES-256-GCM sealed values (see secrets.ts), never plaintext.
 */
export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

const INITIAL = `
-- Small key/value table for the store itself (e.g. the secret-key check value).
CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value BLOB NOT NULL
) WITHOUT ROWID;

CREATE TABLE profiles (
  id         INTEGER PRIMARY KEY,
  name       TEXT NOT NULL UNIQUE,
  document   TEXT NOT NULL,          -- the profile JSON, validated by the profile module
  version    INTEGER NOT NULL CHECK (version >= 1),
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);

-- Every create/update/delete of a profile; no foreign key, so history outlives the profile.
-- Versions keep counting across delete and re-create, so (name, version) is unique.
CREATE TABLE profile_history (
  id         INTEGER PRIMARY KEY,
  name       TEXT NOT NULL,
  version    INTEGER NOT NULL,
  document   TEXT NOT NULL,          -- for 'delete': the document that was deleted
  change     TEXT NOT NULL CHECK (change IN ('create', 'update', 'delete')),
  changed_at INTEGER NOT NULL,
  UNIQUE (name, version)
);

CREATE TABLE devices (
  id             INTEGER PRIMARY KEY,
  endpoint       BLOB NOT NULL UNIQUE,
  profile        TEXT NOT NULL REFERENCES profiles (name) ON UPDATE RESTRICT ON DELETE RESTRICT,
  auth           TEXT NOT NULL CHECK (auth IN ('none', 'psk', 'rpk', 'x509')),
  psk_identity   BLOB,
  psk_key_enc    BLOB,
  rpk_public_key BLOB,               -- SubjectPublicKeyInfo DER, normalized (uncompressed point)
  x509_cert      BLOB,               -- certificate DER
  x509_cn        TEXT,               -- subject CN of x509_cert, for matching
  x509_san       TEXT,               -- subjectAltName entries of x509_cert, one per line ("DNS:x")
  enrolled_by    TEXT NOT NULL CHECK (enrolled_by IN ('cli', 'import', 'zero-touch')),
  created_at     INTEGER NOT NULL,
  CHECK ((auth = 'psk') = (psk_identity IS NOT NULL AND psk_key_enc IS NOT NULL)),
  CHECK ((auth = 'rpk') = (rpk_public_key IS NOT NULL)),
  CHECK ((auth = 'x509') = (x509_cert IS NOT NULL)),
  CHECK (auth = 'psk' OR (psk_identity IS NULL AND psk_key_enc IS NULL))
);
CREATE INDEX devices_profile ON devices (profile);
CREATE UNIQUE INDEX devices_psk_identity ON devices (psk_identity) WHERE psk_identity IS NOT NULL;
CREATE UNIQUE INDEX devices_rpk_public_key ON devices (rpk_public_key) WHERE rpk_public_key IS NOT NULL;
CREATE UNIQUE INDEX devices_x509_cert ON devices (x509_cert) WHERE x509_cert IS NOT NULL;
CREATE INDEX devices_x509_cn ON devices (x509_cn) WHERE x509_cn IS NOT NULL;

-- Sessions keep the endpoint as bytes rather than a foreign key: the record of what happened
-- must survive the removal of the device (and covers refused, unknown endpoints).
CREATE TABLE sessions (
  id               TEXT PRIMARY KEY,
  endpoint         BLOB,             -- NULL when the request named none
  peer             TEXT NOT NULL,    -- "address:port" of the client
  security         TEXT NOT NULL CHECK (security IN ('nosec', 'psk', 'rpk', 'x509')),
  profile          TEXT,             -- profile name used, when resolved
  lwm2m_version    TEXT,
  preferred_format INTEGER,          -- pct= of the Bootstrap-Request
  content_format   INTEGER,          -- format actually used for the writes
  started_at       INTEGER NOT NULL,
  ended_at         INTEGER,
  outcome          TEXT NOT NULL CHECK (outcome IN ('running', 'success', 'failure', 'cancelled')),
  failure_cause    TEXT,
  failure_detail   TEXT,
  CHECK ((outcome = 'running') = (ended_at IS NULL))
);
CREATE INDEX sessions_endpoint_started ON sessions (endpoint, started_at);
CREATE INDEX sessions_started ON sessions (started_at);
CREATE INDEX sessions_outcome_started ON sessions (outcome, started_at);

-- What was sent to the device and what came back. Never the payload: it carries secrets.
CREATE TABLE session_requests (
  session_id     TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
  seq            INTEGER NOT NULL,
  method         TEXT NOT NULL,      -- operation, e.g. "DISCOVER", "WRITE", "DELETE", "FINISH"
  path           TEXT NOT NULL,
  content_format INTEGER,
  payload_size   INTEGER NOT NULL CHECK (payload_size >= 0),
  response_code  TEXT,               -- "2.04"; NULL when no answer came
  response_size  INTEGER,
  started_at     INTEGER NOT NULL,
  duration_ms    INTEGER,
  error          TEXT,               -- e.g. "timeout"
  PRIMARY KEY (session_id, seq)
) WITHOUT ROWID;

CREATE TABLE credentials (
  id                INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused: ids are bound into the AAD
  device_id         INTEGER NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
  short_server_id   INTEGER NOT NULL CHECK (short_server_id BETWEEN 1 AND 65534),
  server_uri        TEXT NOT NULL,
  mode              TEXT NOT NULL CHECK (mode IN ('psk', 'rpk', 'x509', 'nosec')),
  psk_identity      BLOB,
  psk_key_enc       BLOB,
  public_key        BLOB,            -- client SPKI DER (rpk) or certificate DER (x509)
  private_key_enc   BLOB,            -- client PKCS#8 DER, sealed
  server_public_key BLOB,            -- server SPKI DER (rpk) or certificate DER (x509)
  status            TEXT NOT NULL CHECK (status IN ('pending', 'active', 'retired')),
  created_at        INTEGER NOT NULL,
  activated_at      INTEGER,
  retired_at        INTEGER,
  session_id        TEXT REFERENCES sessions (id) ON DELETE SET NULL,
  CHECK ((mode = 'psk') = (psk_identity IS NOT NULL AND psk_key_enc IS NOT NULL)),
  CHECK (mode IN ('rpk', 'x509') OR (public_key IS NULL AND private_key_enc IS NULL AND server_public_key IS NULL)),
  CHECK (mode NOT IN ('rpk', 'x509') OR public_key IS NOT NULL),
  CHECK (mode = 'psk' OR (psk_identity IS NULL AND psk_key_enc IS NULL))
);
CREATE INDEX credentials_device_server ON credentials (device_id, short_server_id, status);
CREATE INDEX credentials_psk_identity ON credentials (psk_identity) WHERE psk_identity IS NOT NULL AND status <> 'retired';
CREATE INDEX credentials_public_key ON credentials (public_key) WHERE public_key IS NOT NULL AND status <> 'retired';
CREATE INDEX credentials_session ON credentials (session_id) WHERE session_id IS NOT NULL;
`;

/**
 * Migration 2: named server key pairs, and profile documents sealed at rest.
 *
 * Profiles may carry static secrets (PSK keys, private keys, OSCORE master secrets), so their
 * documents get the same AES-256-GCM sealing as the other `_enc` columns. A migration is pure SQL
 * and sealing needs the secret key, so this is done in two steps:
 *  1. here, `document_enc BLOB` is added to `profiles` and `profile_history`;
 *  2. `openStore` (store.ts), once the key is verified, seals every row still in plaintext in one
 *     transaction (`sealPlaintextProfiles` in profiles.ts). New rows are written sealed.
 * A row is in exactly one of two states, enforced by a CHECK on the new column:
 *   plaintext: document = the JSON, document_enc IS NULL   (only before step 2 ran)
 *   sealed:    document = '',       document_enc = the sealed JSON
 * Readers accept both, so a crash between the two steps (or in the middle of step 2, which is
 * one transaction anyway) leaves every profile readable, and the next open finishes the job.
 *
 * Why '' rather than making `document` nullable: SQLite cannot relax NOT NULL in place, and the
 * table rebuild it would take (create a copy, copy rows, drop, rename) is unsafe here: `devices`
 * references `profiles (name)` with ON DELETE RESTRICT, and a migration runs inside a transaction,
 * where foreign-key enforcement cannot be switched off for the DROP. '' is never a stored
 * document (it is not JSON, and put() refuses it), so it cannot be mistaken for one.
 */
const SEALED_PROFILES_AND_SERVER_KEYS = `
ALTER TABLE profiles ADD COLUMN document_enc BLOB CHECK ((document_enc IS NULL) = (document <> ''));
ALTER TABLE profile_history ADD COLUMN document_enc BLOB CHECK ((document_enc IS NULL) = (document <> ''));

-- The server's own key pairs by role, e.g. 'registration': its public key goes into each device's
-- Security instance (res 4) for an rpk hand-off; the DTLS server signs with the private key.
CREATE TABLE server_keys (
  id              INTEGER PRIMARY KEY,
  name            TEXT NOT NULL UNIQUE,
  public_key      BLOB NOT NULL,     -- SubjectPublicKeyInfo DER, normalized (uncompressed point)
  private_key_enc BLOB NOT NULL,     -- PKCS#8 DER, sealed; AAD binds it to the name and public key
  created_at      INTEGER NOT NULL   -- when this pair was made (a rotation sets it anew)
);
`;

/**
 * Migration 3: the registration server's registry.
 *
 * One row per registered endpoint (a new Register of an endpoint replaces its row), holding what
 * the server needs to reach and manage the client: address, identity, version, binding, queue
 * mode, lifetime, root path, formats and the object list. The object list, profile IDs and
 * unknown query parameters are JSON text: they are read and written whole, never queried into.
 * `expires_at` is indexed (NULL = never expires: lifetime 0 in LwM2M 1.2), so the expiry timer
 * finds the next due registrations without reading any other row.
 *
 * `registration_events` is the history (like profile_history and sessions, no foreign key: it
 * outlives the registration and covers refused requests of unknown endpoints).
 */
const REGISTRY = `
CREATE TABLE registrations (
  id              TEXT PRIMARY KEY,  -- random, URL-safe: the Location-Path rd/{id}
  endpoint        BLOB NOT NULL UNIQUE,
  -- The credential the client registered with; removing the device (and so its credentials)
  -- removes its registration.
  credential_id   INTEGER REFERENCES credentials (id) ON DELETE CASCADE,
  address         TEXT NOT NULL,     -- where requests to the client go
  port            INTEGER NOT NULL CHECK (port BETWEEN 0 AND 65535),
  security        TEXT NOT NULL CHECK (security IN ('nosec', 'psk', 'rpk', 'x509')),
  identity        BLOB,              -- PSK identity, SPKI DER or certificate DER; NULL for nosec
  lwm2m_version   TEXT NOT NULL,
  binding         TEXT NOT NULL,
  queue_mode      INTEGER NOT NULL CHECK (queue_mode IN (0, 1)),
  sms             TEXT,
  lifetime        INTEGER NOT NULL CHECK (lifetime >= 0),  -- seconds; 0 = never expires
  root_path       TEXT NOT NULL,     -- '/' or the alternate path ('/lwm2m')
  content_formats TEXT,              -- JSON array of numbers (ct of the root link); NULL: none announced
  objects         TEXT NOT NULL,     -- JSON: [{"id":3,"version":"1.1","instances":[0]}, ...]
  profile_ids     TEXT,              -- JSON array of pid values (1.2); NULL: none
  attributes      TEXT,              -- JSON object of unknown query parameters; NULL: none
  registered_at   INTEGER NOT NULL,
  updated_at      INTEGER NOT NULL,  -- last Register or Update
  expires_at      INTEGER,           -- updated_at + lifetime; NULL = never
  CHECK ((security = 'nosec') = (identity IS NULL)),
  CHECK ((lifetime = 0) = (expires_at IS NULL))
);
CREATE INDEX registrations_expires ON registrations (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX registrations_credential ON registrations (credential_id);

CREATE TABLE registration_events (
  id              INTEGER PRIMARY KEY,
  endpoint        BLOB,              -- NULL when a refused request named none
  registration_id TEXT,
  kind            TEXT NOT NULL CHECK (kind IN ('register', 'update', 'deregister', 'expire', 'replace', 'refused')),
  at              INTEGER NOT NULL,
  peer            TEXT,              -- "address:port" of the client
  detail          TEXT
);
CREATE INDEX registration_events_endpoint ON registration_events (endpoint, id);
CREATE INDEX registration_events_at ON registration_events (at);
`;

/**
 * Migration 4: device management data.
 *
 * `observations` holds the observations an operator asked for, per device: the intent outlives a
 * registration (a client forgets its observations when it registers again, registration.md §7.4,
 * so the server re-establishes them after every Register). `registration_id` and `token` say
 * where the device holds it now; removing the registration (De-register, expiry, a new Register)
 * sets `registration_id` to NULL — pending — in the same statement, so a crash can never leave an
 * observation pointing at a registration that is gone.
 *
 * `latest_values` is the device's last known value per resource (instance), from Reads, Observe
 * answers and notifications: JSON `{type, value}` text (lwm2m/value-json.ts). Both tables go with
 * the device.
 */
const DEVICE_DATA = `
CREATE TABLE observations (
  id              INTEGER PRIMARY KEY,
  device_id       INTEGER NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
  path            TEXT NOT NULL,     -- '/3/0/9'
  accept          INTEGER,           -- Accept asked for; NULL: the client's choice
  attributes      TEXT,              -- JSON object of Observe query attributes (1.2); NULL: none
  registration_id TEXT REFERENCES registrations (id) ON DELETE SET NULL,
  token           BLOB,              -- the CoAP token the device notifies with
  content_format  INTEGER,           -- of the last answer
  created_at      INTEGER NOT NULL,
  notifications   INTEGER NOT NULL DEFAULT 0,
  last_at         INTEGER,           -- last answer or notification
  UNIQUE (device_id, path)
);
CREATE INDEX observations_registration ON observations (registration_id) WHERE registration_id IS NOT NULL;

CREATE TABLE latest_values (
  device_id INTEGER NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
  path      TEXT NOT NULL,           -- a resource or resource instance: '/3/0/9', '/3/0/7/1'
  value     TEXT NOT NULL,           -- JSON {type, value} or {type: 'opaque', hex}
  at        INTEGER NOT NULL,
  source    TEXT NOT NULL CHECK (source IN ('read', 'notify')),
  PRIMARY KEY (device_id, path)
) WITHOUT ROWID;
`;

export const MIGRATIONS: readonly Migration[] = [
  { version: 1, name: 'initial schema', sql: INITIAL },
  { version: 2, name: 'server key pairs, sealed profile documents', sql: SEALED_PROFILES_AND_SERVER_KEYS },
  { version: 3, name: 'registration registry', sql: REGISTRY },
  { version: 4, name: 'observations and latest values', sql: DEVICE_DATA },
];

/** The schema version this code writes. */
export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;
