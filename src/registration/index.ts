/** The registration server (registration.md §2–§5): see server.ts. */
export { RegistrationServer, type RegistrationChange, type RegistrationServerOptions } from './server.js';
export { ExpiryScheduler, type ExpirySchedulerOptions } from './expiry.js';
export {
  authorizeRegistration,
  GENERIC_REFUSAL,
  normalizeServerUri,
  type HandOff,
  type HandOffRefusal,
  type HandOffRefusalCause,
  type HandOffResult,
} from './handoff.js';
export {
  checkBinding,
  DEFAULT_BINDING,
  DEFAULT_LIFETIME,
  DEFAULT_LWM2M_VERSION,
  LINK_FORMAT,
  MAX_LIFETIME,
  parseProfileIds,
  parseRegistrationPayload,
  parseRegistrationQuery,
  resolveLifetime,
  resolveRegister,
  resolveUpdate,
  resolveVersion,
  type Parsed,
  type RegisterParams,
  type RegisterPayload,
  type RegistrationQuery,
  type RegistrationRefusal,
  type RegistrationRefusalCode,
  type UpdateParams,
} from './request.js';
