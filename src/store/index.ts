/** The store's public API: open it with `openStore`, use its repositories (see types.ts). */
export { openStore, SqliteStore, type OpenStoreOptions } from './store.js';
export type * from './types.js';
export { StoreError, type StoreErrorCode } from './errors.js';
export { bytesAsText, describeBytes, toBytes } from '../util/bytes.js';
export { normalizeSpki, parseCertificate, fingerprint } from './material.js';
export { SECRET_KEY_ENV, SECRET_KEY_FILE } from './secrets.js';
export { DB_FILE } from './db.js';
export { SCHEMA_VERSION } from './migrations.js';
export { INTERRUPTED_CAUSE } from './sessions.js';
export { REGISTRATION_SERVER_KEY } from './server-keys.js';
export { DEFAULT_EXPIRY_BATCH, isRegistrationId, MAX_LIFETIME, newRegistrationId } from './registry.js';
export type { DeviceDataRepository, ObservationRecord, StoredValue } from './device-data.js';
