/**
 * The profiles the README shows are real: every JSON example in its bootstrap-server section (and
 * the one in the quick start's heredoc) parses and validates, so the documentation cannot drift
 * from the parser. (JSON blocks elsewhere — the admin API's — are not profiles.)
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseProfileText, profileWarnings } from '../../src/bootstrap/profile.js';
import { packageRoot } from '../../src/util/package-root.js';

describe('README profile examples', () => {
  const readme = readFileSync(join(packageRoot(), 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## The bootstrap server'), readme.indexOf('## The registration server'));
  const blocks = [...section.matchAll(/```json\n([\s\S]*?)```/g), ...readme.matchAll(/<<'JSON'\n([\s\S]*?)\nJSON\n/g)].map((m) => m[1]!);

  it('has examples to check', () => {
    expect(blocks.length).to.be.greaterThanOrEqual(3);
  });

  for (const [i, text] of blocks.entries()) {
    it(`example ${i + 1} is a valid profile`, () => {
      const p = parseProfileText(text);
      expect(p.name).to.match(/^[a-z]/);
      expect(p.servers.length).to.be.greaterThan(0);
      // Examples should show good practice, not something the validator warns about.
      expect(profileWarnings(p)).to.deep.equal([]);
    });
  }
});
