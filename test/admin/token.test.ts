/** The admin token file: created once with mode 0600, stable across restarts, never replaced. */
import { expect } from 'chai';
import { chmodSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ADMIN_TOKEN_FILE, AdminTokenError, loadOrCreateAdminToken, readAdminToken } from '../../src/admin/token.js';
import { removeDir, tempDir } from '../store/support.js';

const posix = process.platform !== 'win32';

describe('admin/token', () => {
  let dir: string;
  beforeEach(() => {
    dir = tempDir('lwbs-admin-token-');
  });
  afterEach(() => removeDir(dir));

  it('creates 32 random bytes as base64url in <dataDir>/admin.token, mode 0600', () => {
    const t = loadOrCreateAdminToken(dir);
    expect(t.created).to.equal(true);
    expect(t.insecure).to.equal(false);
    expect(t.file).to.equal(join(dir, ADMIN_TOKEN_FILE));
    expect(t.token).to.match(/^[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(t.token, 'base64url').length).to.equal(32);
    expect(readFileSync(t.file, 'utf8').trim()).to.equal(t.token);
    if (posix) expect(statSync(t.file).mode & 0o777).to.equal(0o600);
    // no temporary file left behind
    expect(readdirSync(dir)).to.deep.equal([ADMIN_TOKEN_FILE]);
  });

  it('keeps the same token across restarts, and the CLI reads the same one', () => {
    const first = loadOrCreateAdminToken(dir);
    const second = loadOrCreateAdminToken(dir);
    expect(second.created).to.equal(false);
    expect(second.token).to.equal(first.token);
    expect(readAdminToken(dir)).to.equal(first.token);
  });

  it('creates the data folder when it does not exist yet', () => {
    const nested = join(dir, 'a', 'b');
    const t = loadOrCreateAdminToken(nested);
    expect(readAdminToken(nested)).to.equal(t.token);
  });

  it('makes a different token in another data directory', () => {
    const other = tempDir('lwbs-admin-token-');
    try {
      expect(loadOrCreateAdminToken(other).token).not.to.equal(loadOrCreateAdminToken(dir).token);
    } finally {
      removeDir(other);
    }
  });

  it('uses a token the operator put there, and flags a file others can read (POSIX modes)', () => {
    const file = join(dir, ADMIN_TOKEN_FILE);
    writeFileSync(file, 'my-own-token-0123456789\n', { mode: 0o644 });
    chmodSync(file, 0o644);
    const t = loadOrCreateAdminToken(dir);
    expect(t).to.deep.equal({ token: 'my-own-token-0123456789', file, created: false, insecure: posix });
    chmodSync(file, 0o600);
    expect(loadOrCreateAdminToken(dir).insecure).to.equal(false);
  });

  it('refuses a malformed token file without replacing it, and without showing its content', () => {
    const file = join(dir, ADMIN_TOKEN_FILE);
    for (const content of ['', 'short', 'has spaces inside the token value', 'secret-but-with-ümlaut-0123456789']) {
      writeFileSync(file, content, { mode: 0o600 });
      let error: unknown;
      try {
        loadOrCreateAdminToken(dir);
      } catch (e) {
        error = e;
      }
      expect(error, JSON.stringify(content)).to.be.instanceOf(AdminTokenError);
      expect((error as AdminTokenError).code).to.equal('malformed');
      expect((error as Error).message).to.include(file);
      if (content.length > 0) expect((error as Error).message).not.to.include(content);
      expect(readFileSync(file, 'utf8')).to.equal(content);
    }
  });

  it('readAdminToken never creates one, and says to start `lwbs serve`', () => {
    let error: unknown;
    try {
      readAdminToken(dir);
    } catch (e) {
      error = e;
    }
    expect(error).to.be.instanceOf(AdminTokenError);
    expect((error as AdminTokenError).code).to.equal('missing');
    expect((error as Error).message).to.match(/start `lwbs serve` first/);
    expect(readdirSync(dir)).to.deep.equal([]);
  });
});
