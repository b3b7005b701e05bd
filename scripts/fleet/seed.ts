/**
 * Seeds a fresh store before `lwbs serve` starts (the server then finds what a long-running
 * deployment would have): the fleet's bootstrap profiles, PSK-enrolled devices for the psk
 * storm, devices with a nosec credential for the registration server (registration storm, and
 * the active devices of the updates scenario), and registrations written straight into the
 * registry (the updates scenario's "large registered fleet": inserted through the store's own
 * `registry.register`, as a Register would, but without the CoAP exchange).
 */
import { generateServerKeyPair } from '../../src/bootstrap/credentials.js';
import { BOOTSTRAP_SERVER_KEY } from '../../src/store/server-keys.js';
import { openStore } from '../../src/store/store.js';
import { devicePskKey, endpointName } from './generator.js';

export const PROFILE_NOSEC = 'fleet-nosec';
export const PROFILE_PSK = 'fleet-psk';
export const PROFILE_REG = 'fleet-reg';
export const PROFILE_RPK = 'fleet-rpk';

export interface SeedPlan {
  /** Zero-touch nosec profile matching `${prefix}*`. */
  readonly nosecPrefix?: string;
  /** PSK-enrolled devices (bootstrap over DTLS) with a psk hand-off. */
  readonly psk?: { readonly prefix: string; readonly devices: number; readonly secretHex: string };
  /** RPK-enrolled devices (bootstrap over DTLS ECDHE_ECDSA with their own keys) with an rpk hand-off. */
  readonly rpk?: { readonly prefix: string; readonly publicKeys: readonly Uint8Array[] };
  /** Devices holding a nosec credential for `serverUri` (they may Register without bootstrapping). */
  readonly credentials?: { readonly prefix: string; readonly devices: number; readonly serverUri: string };
  /** Registrations inserted into the registry. */
  readonly registrations?: { readonly prefix: string; readonly count: number };
}

function profile(name: string, match: string[], mode: 'nosec' | 'psk' | 'rpk'): string {
  return JSON.stringify({
    name,
    ...(match.length > 0 ? { match } : {}),
    delete: ['/0', '/1'],
    servers: [{ shortServerId: 1, handOff: true, lifetime: 86400, binding: 'U', security: { mode } }],
  });
}

export async function seedStore(dataDir: string, secretKeyHex: string, plan: SeedPlan): Promise<{ seededRegistrations: number; ms: number; bootstrapServerKey?: Uint8Array }> {
  const t0 = Date.now();
  const store = await openStore({ dataDir, secretKey: Buffer.from(secretKeyHex, 'hex') });
  let seededRegistrations = 0;
  let bootstrapServerKey: Uint8Array | undefined;
  try {
    await store.profiles.put(PROFILE_NOSEC, profile(PROFILE_NOSEC, plan.nosecPrefix ? [`${plan.nosecPrefix}*`] : [], 'nosec'));
    await store.profiles.put(PROFILE_PSK, profile(PROFILE_PSK, [], 'psk'));
    await store.profiles.put(PROFILE_REG, profile(PROFILE_REG, [], 'nosec'));
    await store.profiles.put(PROFILE_RPK, profile(PROFILE_RPK, [], 'rpk'));
    if (plan.rpk) {
      const { prefix, publicKeys } = plan.rpk;
      await store.devices.addMany(publicKeys.map((publicKey, i) => ({ endpoint: endpointName(prefix, i), profile: PROFILE_RPK, auth: { kind: 'rpk' as const, publicKey } })));
      // The bootstrap server's key pair, created now (lwbs serve finds it) so the devices can check it.
      bootstrapServerKey = (await store.serverKeys.getOrCreate(BOOTSTRAP_SERVER_KEY, generateServerKeyPair)).publicKey;
    }
    if (plan.psk) {
      const { prefix, devices, secretHex } = plan.psk;
      await store.devices.addMany(Array.from({ length: devices }, (_, i) => {
        const ep = endpointName(prefix, i);
        return { endpoint: ep, profile: PROFILE_PSK, auth: { kind: 'psk' as const, identity: ep, key: devicePskKey(secretHex, ep) } };
      }));
    }
    if (plan.credentials) {
      const { prefix, devices, serverUri } = plan.credentials;
      await store.devices.addMany(Array.from({ length: devices }, (_, i) => ({ endpoint: endpointName(prefix, i), profile: PROFILE_REG })));
      for (let i = 0; i < devices; i++) {
        await store.credentials.addPending({ endpoint: endpointName(prefix, i), shortServerId: 1, serverUri, mode: 'nosec' });
      }
    }
    if (plan.registrations) {
      const { prefix, count } = plan.registrations;
      // 500 at a time: the store group-commits the Registers of one turn into one transaction.
      const one = async (i: number): Promise<void> => {
        await store.registry.register({
          endpoint: endpointName(prefix, i),
          address: '127.0.0.1',
          port: 1024 + (i % 60000),
          security: 'nosec',
          lwm2mVersion: '1.1',
          binding: 'U',
          queueMode: false,
          lifetime: 86400,
          contentFormats: [60, 112, 11543],
          objects: [{ id: 1, instances: [0] }, { id: 2, instances: [] }, { id: 3, instances: [0] }, { id: 4, instances: [0] }, { id: 5, instances: [0] }],
        });
        seededRegistrations++;
      };
      for (let from = 0; from < count; from += 500) {
        await Promise.all(Array.from({ length: Math.min(500, count - from) }, (_, k) => one(from + k)));
      }
    }
  } finally {
    await store.close();
  }
  return { seededRegistrations, ms: Date.now() - t0, ...(bootstrapServerKey ? { bootstrapServerKey } : {}) };
}
