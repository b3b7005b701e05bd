/** Shapes shared by the fleet benchmark's processes (runner ↔ generator, report). */
import type { ImpairmentOptions } from './impairment.js';
import type { LatencySummary } from './stats.js';

export type FleetSecurity = 'nosec' | 'psk' | 'rpk';
export type FleetVersion = '1.0' | '1.1' | '1.2';

/** How the devices' first requests are spread: all at once, or linearly over `seconds`. */
export type Arrival = { readonly mode: 'burst' } | { readonly mode: 'ramp'; readonly seconds: number };

/** What the generator process runs (one scenario per process), passed as JSON in argv. */
export interface GeneratorSpec {
  /**
   * `storm`: every device Bootstrap-Request → Finish → Register (→ `updates` if given).
   * `register`: devices already hold a server account (seeded): Register only.
   * `updates`: devices Register (not measured), then send Updates in a closed loop for `updates.seconds`.
   * `echo`: the baseline: raw UDP request/response round trips against `echo` for `echoSeconds`.
   */
  readonly kind: 'storm' | 'register' | 'updates' | 'echo';
  readonly devices: number;
  readonly endpointPrefix: string;
  readonly arrival: Arrival;
  readonly security: FleetSecurity;
  readonly lwm2mVersion: FleetVersion;
  /** `pct=` sent in the Bootstrap-Request (1.1+). */
  readonly preferredFormat?: number;
  /** `coap://127.0.0.1:p` or `coaps://…` (storm). */
  readonly bootstrapUri?: string;
  /** `coap://127.0.0.1:p` (register / updates: the account seeded into the devices). */
  readonly registrationUri?: string;
  /** Secret for the per-device bootstrap PSK keys (psk storm): key = HMAC-SHA256(secret, ep)[0..16]. */
  readonly pskSecretHex?: string;
  /**
   * rpk storm: a JSON file `{ "<endpoint>": ["<SPKI DER base64>", "<PKCS#8 DER base64>"] }` of
   * the devices' own P-256 key pairs (enrolled by the runner), and the bootstrap server's SPKI
   * (hex) the devices check in the handshake.
   */
  readonly rpkKeysFile?: string;
  readonly bootstrapServerKeyHex?: string;
  readonly impairment?: ImpairmentOptions;
  /** Server ports the impairment applies to. */
  readonly serverPorts?: readonly number[];
  /** Give up on devices still running after this long (they count as `deadline` failures). */
  readonly deadlineMs: number;
  readonly updates?: { readonly seconds: number };
  readonly echo?: { readonly port: number; readonly sockets: number; readonly seconds: number };
  /** Where to write the GeneratorResult JSON. */
  readonly resultFile: string;
}

export interface PhaseResult {
  readonly ok: number;
  readonly perSec: number;
}

export interface GeneratorResult {
  readonly kind: GeneratorSpec['kind'];
  readonly devices: number;
  /** From the first request of the measured phase to the last completion, s. */
  readonly durationS: number;
  readonly bootstraps: PhaseResult;
  readonly registrations: PhaseResult;
  readonly updates: PhaseResult;
  readonly handshakes: PhaseResult;
  /** Devices registered at the end (any phase, the unmeasured one of `updates` included). */
  readonly registeredDevices: number;
  /** CoAP request/response exchanges completed in the measured phase (both directions). */
  readonly roundTrips: number;
  readonly roundTripsPerSec: number;
  readonly latency: {
    /** Bootstrap-Request sent → Finish answered. */
    readonly finishMs?: LatencySummary;
    /** Bootstrap-Request sent (or Register sent, `register`) → registered. */
    readonly registeredMs?: LatencySummary;
    readonly updateMs?: LatencySummary;
    readonly echoMs?: LatencySummary;
  };
  readonly failures: Readonly<Record<string, number>>;
  /** Exchanges a device started again after CoAP gave up (by what it retried); not failures. */
  readonly retries?: Readonly<Record<string, number>>;
  readonly impairment?: { readonly outgoing: Readonly<Record<string, number>>; readonly incoming: Readonly<Record<string, number>> };
  /** Up to 20 devices that did not complete: where each one was when it gave up (for diagnosis). */
  readonly stragglers?: readonly Straggler[];
  /** Generator process: CPU seconds and peak RSS, for judging whether the generator was the bottleneck. */
  readonly generator: { readonly cpuSeconds: number; readonly peakRssBytes: number };
}

/** A device that did not complete, and where it stood. */
export interface Straggler {
  readonly endpoint: string;
  readonly phase: 'bootstrap' | 'register' | 'handshake';
  readonly cause: string;
  /** ms from the device's start to its failure. */
  readonly elapsedMs: number;
  /** The answer to /bs, when it came. */
  readonly requestCode?: string;
  /** Requests the device received from the bootstrap server: `METHOD path code @ms-after-start`. */
  readonly requests?: readonly string[];
}

export interface ServerMetrics {
  /** CPU seconds (user + system) of the server process during the measured run. */
  readonly cpuSeconds: number;
  readonly cpuSecondsPerBootstrap?: number;
  /** VmHWM of the server process at the end. */
  readonly peakRssBytes: number;
  readonly rssReadyBytes: number;
  readonly rssEndBytes: number;
  /** RSS at the end, split: anonymous (V8 heap, malloc), file-backed, shared (SQLite WAL index). */
  readonly rssEndSplit?: { readonly anon: number; readonly file: number; readonly shmem: number };
  /** Registrations in the registry at the end (seeded + live). */
  readonly registered: number;
  /**
   * (peak RSS − RSS of a ready server with an empty registry, from this run) ÷ registrations in
   * the registry. Filled in after all scenarios ran.
   */
  bytesPerRegisteredDevice?: number;
  /**
   * Seeded scenarios: (RSS of the ready server with the seeded registry − the lowest ready RSS of
   * an empty one) ÷ seeded registrations: what the registry costs in the server at rest. Filled in
   * after all scenarios ran.
   */
  restBytesPerRegistration?: number;
  /** Datagrams the kernel dropped for full UDP receive buffers during the run (whole host). */
  readonly udpRcvbufErrors: number;
  /** Database files ÷ registrations in the registry. */
  readonly dbBytesPerRegisteredDevice?: number;
  readonly dbBytes: number;
}

/** The store after a scenario (audit.ts). */
export interface StoreAudit {
  readonly devices: number;
  /** Devices of the scenario with a registration in the registry. */
  readonly registered: number;
  /** Devices with more than one pending/active credential (a duplicate hand-off). */
  readonly devicesWithSeveralCredentials: number;
  /** Bootstrap sessions of the scenario's devices: successful, and any other outcome (superseded, failed). */
  readonly bootstrapSessions?: { readonly success: number; readonly other: number };
  /** Devices with more than one successful bootstrap session. */
  readonly devicesBootstrappedTwice?: number;
}

export interface ScenarioResult {
  readonly name: string;
  readonly description: string;
  readonly params: Readonly<Record<string, unknown>>;
  readonly generator: GeneratorResult;
  readonly server?: ServerMetrics;
  readonly audit?: StoreAudit;
  /** roundTripsPerSec ÷ the baseline's round trips per second. */
  readonly ratio: number;
}

export interface FleetReport {
  readonly date: string;
  readonly node: string;
  readonly cpus: number;
  readonly quick: boolean;
  readonly baseline: { readonly roundTripsPerSec: number; readonly sockets: number; readonly latencyMs?: LatencySummary };
  readonly scenarios: readonly ScenarioResult[];
}
