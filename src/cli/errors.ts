/**
 * The CLI's two error kinds. `run` (main.ts) prints their message as one line and maps them to
 * exit codes: UsageError → 2 (the command line is wrong), UserError → 1 (the command failed).
 * Errors from the layers below that carry a user-facing message (ConfigError, StoreError,
 * ProfileError, CodecError, DdfError) are treated like UserError.
 */
export class UserError extends Error {
  override readonly name = 'UserError';
}

export class UsageError extends Error {
  override readonly name = 'UsageError';
}
