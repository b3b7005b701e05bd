/**
 * The admin API's bearer token: 32 random bytes, base64url, in `<dataDir>/admin.token` (mode
 * 0600). `lwbs serve` creates it on first start and keeps it across restarts; the CLI reads it
 * from the same data directory. Creation is atomic and never replaces an existing file: the
 * token is written to a temporary file which is then hard-linked to the final name (a link fails
 * when the name exists, where a rename would replace it), so a reader never sees a half-written
 * token and two servers starting at once agree on one token.
 *
 * The token is a secret: it never appears in logs or error messages.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export const ADMIN_TOKEN_FILE = 'admin.token';

/** Environment variable the CLI takes the token from instead of the data directory. */
export const ADMIN_TOKEN_ENV = 'LWBS_ADMIN_TOKEN';

/** A missing, unreadable or malformed token file. The message names the file, never the token. */
export class AdminTokenError extends Error {
  override readonly name = 'AdminTokenError';
  constructor(
    readonly code: 'missing' | 'unreadable' | 'malformed',
    message: string,
  ) {
    super(message);
  }
}

export interface AdminToken {
  readonly token: string;
  readonly file: string;
  /** True when this call created the file. */
  readonly created: boolean;
  /**
   * True when the file is readable or writable by group or others (mode & 0o077): the token
   * still works, but the caller should warn (`chmod 600 FILE`). Always false on Windows.
   */
  readonly insecure: boolean;
}

/** What a usable token looks like: 16 or more URL/base64-safe characters (ours are 43). */
const TOKEN_RE = /^[A-Za-z0-9._~+/=-]{16,512}$/;

export function adminTokenFile(dataDir: string): string {
  return join(dataDir, ADMIN_TOKEN_FILE);
}

/** A fresh token: 32 random bytes, base64url (43 characters, no padding). */
export function generateAdminToken(): string {
  return randomBytes(32).toString('base64url');
}

function isInsecure(file: string): boolean {
  if (process.platform === 'win32') return false;
  return (statSync(file).mode & 0o077) !== 0;
}

function readTokenFile(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new AdminTokenError('missing', `no admin token in ${file}`);
    throw new AdminTokenError('unreadable', `cannot read the admin token file ${file}: ${code ?? (e as Error).message}`);
  }
  const token = text.trim();
  if (!TOKEN_RE.test(token)) {
    throw new AdminTokenError('malformed', `the admin token file ${file} does not hold a token (16 or more characters of A-Z a-z 0-9 . _ ~ + / = -); delete it and restart \`lwbs serve\` to create a new one`);
  }
  return token;
}

/**
 * The server's token: read from `<dataDir>/admin.token`, or created there (mode 0600) when the
 * file does not exist. Throws AdminTokenError when the file exists but is unusable.
 */
export function loadOrCreateAdminToken(dataDir: string): AdminToken {
  const file = adminTokenFile(dataDir);
  try {
    const token = readTokenFile(file);
    return { token, file, created: false, insecure: isInsecure(file) };
  } catch (e) {
    if (!(e instanceof AdminTokenError && e.code === 'missing')) throw e;
  }
  mkdirSync(dataDir, { recursive: true });
  const token = generateAdminToken();
  const temp = join(dataDir, `.${ADMIN_TOKEN_FILE}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const fd = openSync(temp, 'wx', 0o600);
  try {
    writeSync(fd, `${token}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  let created = true;
  try {
    linkSync(temp, file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') {
      created = false; // another process won the race: use its token
    } else if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP' || code === 'ENOSYS') {
      // A file system without hard links: rename, after checking (a small race, no worse than the link's absence).
      try {
        statSync(file);
        created = false;
      } catch {
        renameSync(temp, file);
        return { token, file, created: true, insecure: isInsecure(file) };
      }
    } else {
      unlinkQuietly(temp);
      throw new AdminTokenError('unreadable', `cannot create the admin token file ${file}: ${code ?? (e as Error).message}`);
    }
  }
  unlinkQuietly(temp);
  if (!created) {
    const existing = readTokenFile(file);
    return { token: existing, file, created: false, insecure: isInsecure(file) };
  }
  return { token, file, created: true, insecure: isInsecure(file) };
}

function unlinkQuietly(file: string): void {
  try {
    unlinkSync(file);
  } catch {
    // already gone
  }
}

/** The CLI's side: the token the running server uses. Never creates one. */
export function readAdminToken(dataDir: string): string {
  const file = adminTokenFile(dataDir);
  try {
    return readTokenFile(file);
  } catch (e) {
    if (e instanceof AdminTokenError && e.code === 'missing') {
      throw new AdminTokenError('missing', `no admin token in ${file}: start \`lwbs serve\` first (it creates the token), or set ${ADMIN_TOKEN_ENV}`);
    }
    throw e;
  }
}
