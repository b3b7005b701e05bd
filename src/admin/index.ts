/** The admin HTTP API: server, token, client, and the JSON shapes it shares with the CLI. */
export { startAdminServer, ApiError, DEFAULT_MAX_BODY_BYTES, DEFAULT_WAIT_SECONDS, MAX_WAIT_SECONDS, type AdminServer, type AdminServerOptions } from './server.js';
export { loadOrCreateAdminToken, readAdminToken, adminTokenFile, AdminTokenError, ADMIN_TOKEN_ENV, ADMIN_TOKEN_FILE, type AdminToken } from './token.js';
export { AdminClient, AdminClientError, adminUrlFor, normalizeAdminUrl, type SubmitAnswer } from './client.js';
export { registrationJson, registrationEventJson, endpointFromUrl, endpointToUrl, type RegistrationJson, type RegistrationEventJson } from './json.js';
export { parseDmRequest, RequestShapeError, DM_OPERATIONS } from './validate.js';
