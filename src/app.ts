/**
 * The composition root: from a validated configuration to running servers over one store.
 * `lwbs serve` calls `startApp` and `app.close()` on SIGINT/SIGTERM; tests and benchmarks use it
 * the same way with port 0.
 */
import { mkdirSync } from 'node:fs';
import { isIP, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { generateServerKeyPair } from './bootstrap/credentials.js';
import { ProfileCache, x509Admissible } from './bootstrap/admission.js';
import { BootstrapServer, type SessionEnd } from './bootstrap/server.js';
import { RegistrationServer, type RegistrationChange } from './registration/server.js';
import { DeviceManager } from './registration/management/manager.js';
import { loadOrCreateAdminToken } from './admin/token.js';
import { DtlsEndpoint } from './dtls/endpoint.js';
import { logDtlsDiagnostics } from './dtls/log.js';
import { loadOrCreateServerCertificate, subjectForHost, type CertificateSubject } from './dtls/x509-issue.js';
import { registrationPskKey, registrationRpkKnown, registrationX509Known } from './registration/handoff.js';
import { startAdminServer, type AdminServer } from './admin/server.js';
import type { TransmissionParams } from './coap/coap-node.js';
import { NO_X509, readX509Files, type Config, type X509Config } from './config/config.js';
import { loadObjectRegistry } from './lwm2m/ddf.js';
import { BOOTSTRAP_SERVER_KEY, REGISTRATION_SERVER_KEY } from './store/server-keys.js';
import { normalizeSpki } from './store/material.js';
import { startRetention, type Retention } from './store/retention.js';
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

/** The file in the data directory that keeps a server's self-signed certificate (`bootstrap` / `registration`). */
export function serverCertificateFile(dataDir: string, name: string): string {
  return join(dataDir, `${name}-certificate.pem`);
}

/** The names of the registration server's self-signed certificate: the host of `registration.publicUri.coaps`. */
export function registrationCertificateSubject(config: Config): CertificateSubject {
  return subjectForHost(new URL(config.registration.publicUri.coaps).hostname);
}

/**
 * The names of the bootstrap server's self-signed certificate. It has no public URI in the
 * config, so: CN `lwbs bootstrap server`, and the `bootstrap.coaps` listen host as a
 * subjectAltName when it is a specific address or name (not 0.0.0.0 / ::). Deliberately not the
 * machine's hostname: a container gets a new one on every start, and devices pin this certificate.
 */
export function bootstrapCertificateSubject(config: Config): CertificateSubject {
  const host = config.bootstrap.coaps?.host;
  const specific = host !== undefined && host !== '' && host !== '0.0.0.0' && host !== '::';
  return {
    commonName: 'lwbs bootstrap server',
    dnsNames: specific && isIP(host) === 0 ? [host.toLowerCase()] : [],
    ipAddresses: specific && isIP(host) !== 0 ? [host] : [],
  };
}

interface ServerDtlsIdentity {
  readonly serverKey: { readonly publicKey: Buffer; readonly privateKey: Buffer };
  readonly chain: readonly Buffer[];
  readonly trustAnchors: readonly Buffer[];
}

/**
 * A server's key pair (store.serverKeys `name`, created on first start) and certificate, from its
 * `x509` config (`field`). A configured certificate + key replaces the stored pair when it
 * differs (one key pair per server: RPK clients and rpk hand-offs use it too); otherwise the
 * certificate is the self-signed one in the data directory, made when missing or stale.
 *
 * The listener presents the certificate only when it accepts X.509 clients (trust anchors
 * configured): LwM2M's X.509 mode is X.509 both ways.
 */
/** The server's stored key pair `name`, created (and logged) on first start. */
async function serverKeyPair(store: SqliteStore, name: string, log: Logger): Promise<{ readonly publicKey: Buffer }> {
  const key = await store.serverKeys.getOrCreate(name, generateServerKeyPair);
  if (key.created) log.info(`created the ${name} server key pair`, { name });
  return key;
}

async function serverDtlsIdentity(
  store: SqliteStore, name: string, x509: X509Config, field: string, subject: CertificateSubject, dataDir: string, log: Logger,
): Promise<ServerDtlsIdentity> {
  const material = readX509Files(x509, field);
  if (material.own) {
    const own = material.own;
    const stored = await store.serverKeys.getOrCreate(name, () => ({ publicKey: own.publicKey, privateKey: own.privateKey }));
    if (!stored.publicKey.equals(normalizeSpki(own.publicKey))) {
      await store.serverKeys.replace(name, { publicKey: own.publicKey, privateKey: own.privateKey });
      log.warn(`the ${name} server key pair was replaced by the configured ${field}.privateKey; devices given the old public key must be bootstrapped again`, { name });
    }
    return { serverKey: { publicKey: own.publicKey, privateKey: own.privateKey }, chain: own.chain, trustAnchors: material.trustAnchors };
  }
  const key = await serverKeyPair(store, name, log);
  const privateKey = (await store.serverKeys.revealPrivateKey(name))!;
  const file = serverCertificateFile(dataDir, name);
  const cert = loadOrCreateServerCertificate({ file, publicKey: key.publicKey, privateKey, subject });
  if (cert.created) log.info(`created the ${name} server's self-signed certificate`, { file, cn: subject.commonName, reason: cert.created });
  return { serverKey: { publicKey: key.publicKey, privateKey }, chain: [cert.der], trustAnchors: material.trustAnchors };
}

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
  let retention: Retention | undefined;
  try {
    if (store.keySource === 'created') {
      log.warn('created a new secret key for the database; back it up, or set LWBS_SECRET_KEY', { file: `${config.dataDir}/secret.key` });
    }
    const interrupted = await store.sessions.markInterrupted();
    if (interrupted > 0) log.warn('bootstrap sessions cut off by the previous run marked as failed', { count: interrupted, cause: 'interrupted' });

    // The registration server's key pair: its public key goes to devices handed off with rpk. With
    // coaps, its certificate too (configured, or self-signed in the data directory).
    const regIdentity = config.registration.coaps
      ? await serverDtlsIdentity(store, REGISTRATION_SERVER_KEY, config.registration.x509 ?? NO_X509, 'registration.x509', registrationCertificateSubject(config), config.dataDir, log)
      : undefined;
    const regKey = regIdentity?.serverKey ?? (await serverKeyPair(store, REGISTRATION_SERVER_KEY, log));
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
      // DTLS with PSK (the key of the enrolled device whose PSK identity the client names), raw
      // public keys (an enrolled device's key; the server's own pair `bootstrap`, created on first
      // start: `lwbs keys show bootstrap`) and X.509 (chains to bootstrap.x509.trustAnchors whose
      // names could be admitted: admission.ts x509Admissible).
      const bs = await serverDtlsIdentity(store, BOOTSTRAP_SERVER_KEY, config.bootstrap.x509 ?? NO_X509, 'bootstrap.x509', bootstrapCertificateSubject(config), config.dataDir, log);
      const profiles = new ProfileCache(store.profiles);
      const endpoint = await DtlsEndpoint.create({
        ...config.bootstrap.coaps,
        recvBufferSize: LISTENER_RECV_BUFFER_BYTES,
        onDiagnostic: logDtlsDiagnostics(log, 'bootstrap.coaps'),
        pskLookup: async (identity) => (await store.devices.findByPskIdentity(identity))?.key,
        serverKey: bs.serverKey,
        rpkLookup: async (spki) => (await store.devices.findByRpk(spki)) !== undefined,
        ...(bs.trustAnchors.length > 0
          ? { serverCertificate: { chain: bs.chain }, trustAnchors: bs.trustAnchors, x509Lookup: (leaf: Buffer) => x509Admissible(store, profiles, leaf) }
          : {}),
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
      // Keys and certificates of the pending or active credentials provisioned for this server; the
      // server's own pair is the one rpk hand-offs gave devices (/0/x/4).
      const uris = [config.registration.publicUri.coap, config.registration.publicUri.coaps];
      const rs = regIdentity!;
      const endpoint = await DtlsEndpoint.create({
        ...config.registration.coaps,
        recvBufferSize: LISTENER_RECV_BUFFER_BYTES,
        onDiagnostic: logDtlsDiagnostics(log, 'registration.coaps'),
        pskLookup: (identity) => registrationPskKey(store, identity, uris),
        serverKey: rs.serverKey,
        rpkLookup: (spki) => registrationRpkKnown(store, spki, uris),
        ...(rs.trustAnchors.length > 0
          ? { serverCertificate: { chain: rs.chain }, trustAnchors: rs.trustAnchors, x509Lookup: (leaf: Buffer) => registrationX509Known(store, leaf, uris) }
          : {}),
      });
      const rsServer = registration;
      endpoint.onPeerMoved((peer, previous) => {
        rsServer.followPeer(peer, previous).catch((e: unknown) => log.error('could not follow a moved DTLS session', { error: e instanceof Error ? e.message : String(e) }));
      });
      const node = registration.attach(endpoint, opts.transmission ? { transmission: opts.transmission } : {});
      addresses.set('registration.coaps', node.address());
    }
    await management.start();
    retention = startRetention(store, config.history === undefined ? 90 : config.history.keepDays, log);
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
    await retention?.stop();
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
  const history = retention;
  let closing: Promise<void> | undefined;
  return {
    store,
    bootstrap: bs,
    registration: rs,
    management: dm,
    addresses,
    close: () =>
      (closing ??= (async () => {
        await history?.stop();
        await api?.close();
        await dm.close();
        await bs.close();
        await rs.close();
        await store.close();
        log.info('lwbs stopped');
      })()),
  };
}
