/** scripts/fleet/audit.ts on a real store: registrations and usable credentials per device. */
import { expect } from 'chai';
import { auditStore } from '../../scripts/fleet/audit.js';
import { endpointName } from '../../scripts/fleet/generator.js';
import { seedStore } from '../../scripts/fleet/seed.js';
import { openStore } from '../../src/store/store.js';
import { removeDir, tempDir, TEST_KEY_HEX } from '../store/support.js';

describe('fleet store audit', function () {
  this.timeout(20_000);
  let dir: string;
  beforeEach(() => (dir = tempDir('lwbs-fleet-audit-')));
  afterEach(() => removeDir(dir));

  it('counts registered devices and devices holding a second usable credential', async () => {
    // 4 devices with one nosec credential each; 3 registrations under the same names.
    await seedStore(dir, TEST_KEY_HEX, { credentials: { prefix: 'a-', devices: 4, serverUri: 'coap://127.0.0.1:5683' }, registrations: { prefix: 'a-', count: 3 } });
    const store = await openStore({ dataDir: dir, secretKey: Buffer.from(TEST_KEY_HEX, 'hex') });
    try {
      await store.credentials.addPending({ endpoint: endpointName('a-', 2), shortServerId: 1, serverUri: 'coap://127.0.0.1:5683', mode: 'nosec' });
    } finally {
      await store.close();
    }
    const a = await auditStore(dir, TEST_KEY_HEX, 'a-', 4, true);
    expect(a).to.deep.include({ devices: 4, registered: 3, devicesWithSeveralCredentials: 1, devicesBootstrappedTwice: 0 });
    expect(a.bootstrapSessions).to.deep.equal({ success: 0, other: 0 });
  });
});
