/** Shapes shared by the fleet benchmark's processes (runner ↔ generator, report). */
import type { ImpairmentOptions } from './impairment.js';
import type { LatencySummary } from './stats.js';

export type FleetSecurity = 'nosec' | 'psk';
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
  readonly impairment?: { readonly outgoing: Readonly<Record<string, number>>; readonly incoming: Readonly<Record<string, number>> };
  /** Generator process: CPU seconds and peak RSS, for judging whether the generator was the bottleneck. */
  readonly generator: { readonly cpuSeconds: number; readonly peakRssBytes: number };
}

export interface ServerMetrics {
  /** CPU seconds (user + system) of the server process during the measured run. */
  readonly cpuSeconds: number;
  readonly cpuSecondsPerBootstrap?: number;
  /** VmHWM of the server process at the end. */
  readonly peakRssBytes: number;
  readonly rssReadyBytes: number;
  readonly rssEndBytes: number;
  /** Registrations in the registry at the end (seeded + live). */
  readonly registered: number;
  /**
   * (peak RSS − RSS of a ready server with an empty registry, from this run) ÷ registrations in
   * the registry. Filled in after all scenarios ran.
   */
  bytesPerRegisteredDevice?: number;
  /** Datagrams the kernel dropped for full UDP receive buffers during the run (whole host). */
  readonly udpRcvbufErrors: number;
  /** Database files ÷ registrations in the registry. */
  readonly dbBytesPerRegisteredDevice?: number;
  readonly dbBytes: number;
}

export interface ScenarioResult {
  readonly name: string;
  readonly description: string;
  readonly params: Readonly<Record<string, unknown>>;
  readonly generator: GeneratorResult;
  readonly server?: ServerMetrics;
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
