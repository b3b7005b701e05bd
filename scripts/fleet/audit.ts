/**
 * After a storm (server stopped): what the store says about the fleet's devices, to show that
 * loss, retransmissions and restarted exchanges left no duplicate side effects — one
 * registration per registered device, one usable (pending/active) credential per device, and
 * how many bootstrap sessions each device needed (a device that started over has a superseded or
 * failed session next to its successful one; two successful ones would be a duplicate).
 */
import { openStore } from '../../src/store/store.js';
import { endpointName } from './generator.js';
import type { StoreAudit } from './types.js';

export async function auditStore(dataDir: string, secretKeyHex: string, prefix: string, devices: number, bootstrapped: boolean): Promise<StoreAudit> {
  const store = await openStore({ dataDir, secretKey: Buffer.from(secretKeyHex, 'hex') });
  let registered = 0;
  let severalCredentials = 0;
  let twiceBootstrapped = 0;
  let sessionsOk = 0;
  let sessionsOther = 0;
  try {
    for (let i = 0; i < devices; i++) {
      const ep = Buffer.from(endpointName(prefix, i));
      if (await store.registry.getByEndpoint(ep)) registered++;
      const creds = await store.credentials.listForDevice(ep);
      if (creds.length > 1) severalCredentials++;
      if (bootstrapped) {
        const sessions = await store.sessions.list({ endpoint: ep });
        const ok = sessions.filter((s) => s.outcome === 'success').length;
        sessionsOk += ok;
        sessionsOther += sessions.length - ok;
        if (ok > 1) twiceBootstrapped++;
      }
    }
  } finally {
    await store.close();
  }
  return {
    devices,
    registered,
    devicesWithSeveralCredentials: severalCredentials,
    ...(bootstrapped ? { bootstrapSessions: { success: sessionsOk, other: sessionsOther }, devicesBootstrappedTwice: twiceBootstrapped } : {}),
  };
}
