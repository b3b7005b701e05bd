/**
 * The composition root: from a validated configuration to running servers over one store.
 * `lwbs serve` calls `startApp` and `app.close()` on SIGINT/SIGTERM; tests and benchmarks use it
 * the same way with port 0.
 */
import { mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { generateServerKeyPair } from './bootstrap/credentials.js';
import { BootstrapServer, type SessionEnd } from './bootstrap/server.js';
import { RegistrationServer, type RegistrationChange } from './registration/server.js';
import { DeviceManager } from './registration/management/manager.js';
import { loadOrCreateAdminToken } from './admin/token.js';
import { DtlsEndpoint } from './dtls/endpoint.js';
import { registrationPskKey, registrationRpkKnown } from './registration/handoff.js';
import { startAdminServer, type AdminServer } from './admin/server.js';
import type { TransmissionParams } from './coap/coap-node.js';
import type { Config } from './config/config.js';
import { loadObjectRegistry } from './lwm2m/ddf.js';
import { BOOTSTRAP_SERVER_KEY, REGISTRATION_SERVER_KEY } from './store/server-keys.js';
import { openStore, type SqliteStore } from './store/store.js';
import { silentLogger, type Logger } from './util/log.js';

export interface AppOptions {
  readonly log?: Logger;
  /** CoAP timers (tests use short ones). */
  readonly transmission?: Partial<TransmissionParams>;
  /** Store environment (LWBS_SECRET_KEY); default process.env. */
  readonly env?: NodeJS.ProcessEnv;
  readonly onSessionEnd?: (e: SessionEnd) => void;
  readonly onRegistrationChange?: (c: RegistrationChange) => void;
  /** How long a queue-mode client counts as awake after it spoke (default: config `registration.queueAwakeSeconds`). */
  readonly awakeMs?: number;
}

export interface App {
  readonly store: SqliteStore;
  readonly bootstrap: BootstrapServer;
  readonly registration: RegistrationServer;
  /** Device management to registered clients (the admin API's backend). */
  readonly management: DeviceManager;
  /** Bound addresses, by listener name (`bootstrap.coap`, `registration.coap`, `admin`). */
  readonly addresses: ReadonlyMap<string, AddressInfo>;
  close(): Promise<void>;
}

/**
 * Socket receive buffer of the CoAP listeners. Linux's default (208 KiB, about 250 datagrams)
 * overflows in a bootstrap storm and the device retransmissions that follow cost seconds of
 * latency (measured by the fleet bench); the kernel caps this at net.core.rmem_max.
 */
const LISTENER_RECV_BUFFER_BYTES = 4 * 1024 * 1024;

export async function startApp(config: Config, opts: AppOptions = {}): Promise<App> {
  const log = opts.log ?? silentLogger;
  // Fails early on a broken objects folder (device management will decode with it).
  const registry = await loadObjectRegistry([...config.objectDirs]);
  mkdirSync(config.dataDir, { recursive: true });
  const store = await openStore({ dataDir: config.dataDir, ...(opts.env ? { env: opts.env } : {}) });
  const addresses = new Map<string, AddressInfo>();
  let bootstrap: BootstrapServer | undefined;
  let registration: RegistrationServer | undefined;
  let management: DeviceManager | undefined;
  let admin: AdminServer | undefined;
  try {
    if (store.keySource === 'created') {
      log.warn('created a new secret key for the database; back it up, or set LWBS_SECRET_KEY', { file: `${config.dataDir}/secret.key` });
    }
    const interrupted = await store.sessions.markInterrupted();
    if (interrupted > 0) log.warn('bootstrap sessions cut off by the previous run marked as failed', { count: interrupted, cause: 'interrupted' });

    // The registration server's key pair: its public key goes to devices handed off with rpk.
    const regKey = await store.serverKeys.getOrCreate(REGISTRATION_SERVER_KEY, generateServerKeyPair);
    if (regKey.created) log.info('created the registration server key pair', { name: REGISTRATION_SERVER_KEY });
    bootstrap = new BootstrapServer({
      store,
      registration: { coap: config.registration.publicUri.coap, coaps: config.registration.publicUri.coaps, publicKey: regKey.publicKey },
      log,
      requestTimeoutMs: config.bootstrap.requestTimeoutSeconds * 1000,
      sessionTimeoutMs: config.bootstrap.sessionTimeoutSeconds * 1000,
      ...(opts.onSessionEnd ? { onSessionEnd: opts.onSessionEnd } : {}),
    });
    if (config.bootstrap.coap) {
      const node = await bootstrap.listen({ ...config.bootstrap.coap, recvBufferSize: LISTENER_RECV_BUFFER_BYTES, ...(opts.transmission ? { transmission: opts.transmission } : {}) });
      addresses.set('bootstrap.coap', node.address());
    }
    if (config.bootstrap.coaps) {
      // DTLS with PSK (the key of the enrolled device whose PSK identity the client names) and raw
      // public keys (an enrolled device's key; the server's own pair `bootstrap`, created on first
      // start: `lwbs keys show bootstrap`). X.509 comes with the next DTLS slice.
      const bsKey = await store.serverKeys.getOrCreate(BOOTSTRAP_SERVER_KEY, generateServerKeyPair);
      if (bsKey.created) log.info('created the bootstrap server key pair', { name: BOOTSTRAP_SERVER_KEY });
      const endpoint = await DtlsEndpoint.create({
        ...config.bootstrap.coaps,
        recvBufferSize: LISTENER_RECV_BUFFER_BYTES,
        pskLookup: async (identity) => (await store.devices.findByPskIdentity(identity))?.key,
        serverKey: { publicKey: bsKey.publicKey, privateKey: (await store.serverKeys.revealPrivateKey(BOOTSTRAP_SERVER_KEY))! },
        rpkLookup: async (spki) => (await store.devices.findByRpk(spki)) !== undefined,
      });
      const node = bootstrap.attach(endpoint, opts.transmission ? { transmission: opts.transmission } : {});
      addresses.set('bootstrap.coaps', node.address());
    }
    registration = new RegistrationServer({
      store,
      serverUris: [config.registration.publicUri.coap, config.registration.publicUri.coaps],
      log,
      ...(opts.onRegistrationChange ? { onChange: opts.onRegistrationChange } : {}),
    });
    management = new DeviceManager({
      store,
      server: registration,
      objects: registry,
      log,
      awakeMs: opts.awakeMs ?? config.registration.queueAwakeSeconds * 1000,
      requestTimeoutMs: config.registration.requestTimeoutSeconds * 1000,
    });
    if (config.registration.coap) {
      const node = await registration.listen({ ...config.registration.coap, recvBufferSize: LISTENER_RECV_BUFFER_BYTES, ...(opts.transmission ? { transmission: opts.transmission } : {}) });
      addresses.set('registration.coap', node.address());
    }
    if (config.registration.coaps) {
      // Keys of the pending or active credentials provisioned for this server; the server's own
      // pair is the one rpk hand-offs gave devices (/0/x/4).
      const uris = [config.registration.publicUri.coap, config.registration.publicUri.coaps];
      const endpoint = await DtlsEndpoint.create({
        ...config.registration.coaps,
        recvBufferSize: LISTENER_RECV_BUFFER_BYTES,
        pskLookup: (identity) => registrationPskKey(store, identity, uris),
        serverKey: { publicKey: regKey.publicKey, privateKey: (await store.serverKeys.revealPrivateKey(REGISTRATION_SERVER_KEY))! },
        rpkLookup: (spki) => registrationRpkKnown(store, spki, uris),
      });
      const node = registration.attach(endpoint, opts.transmission ? { transmission: opts.transmission } : {});
      addresses.set('registration.coaps', node.address());
    }
    await management.start();
    if (config.admin.listen) {
      const token = loadOrCreateAdminToken(config.dataDir);
      if (token.created) log.info('created the admin API token', { file: token.file });
      if (token.insecure) log.warn('the admin API token file is readable by others: chmod 600 it', { file: token.file });
      admin = await startAdminServer({ ...config.admin.listen, token: token.token, management, store, log });
      addresses.set('admin', admin.address());
    }
    log.info('lwbs started', {
      dataDir: config.dataDir,
      objects: registry.all().length,
      ...Object.fromEntries([...addresses].map(([k, a]) => [k, a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`])),
    });
  } catch (e) {
    await admin?.close();
    await management?.close();
    await bootstrap?.close();
    await registration?.close();
    await store.close();
    throw e;
  }
  const bs = bootstrap;
  const rs = registration;
  const dm = management;
  const api = admin;
  let closing: Promise<void> | undefined;
  return {
    store,
    bootstrap: bs,
    registration: rs,
    management: dm,
    addresses,
    close: () =>
      (closing ??= (async () => {
        await api?.close();
        await dm.close();
        await bs.close();
        await rs.close();
        await store.close();
        log.info('lwbs stopped');
      })()),
  };
}
