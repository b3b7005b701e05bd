/**
 * Device management (registration.md §6–§7): what the admin API, the CLI and tests ask of the
 * `DeviceManager` (manager.ts), and what they get back. Values travel as JSON (`ValueJson`): the
 * same shape `lwbs decode --json` prints.
 */

import type { LooseValue, ValueJson } from '../../lwm2m/value-json.js';

/** A typed LwM2M value as JSON (lwm2m/value-json.ts): `{type, value}`, opaque as `{type: 'opaque', hex}`. */
export type { ValueJson };

/** One leaf value at an absolute path (`/3/0/0`, `/3/0/7/1`). */
export type PathValue = { readonly path: string } & ValueJson;

/**
 * A value to write. A plain string, number or boolean is converted to the resource's type from
 * the object model (`"300"` and `300` both write Integer 300 to /1/0/1; opaque takes hex; objlnk
 * takes `"3:0"`); a `ValueJson` gives the type explicitly (needed for resources the model does
 * not know).
 */
export type WriteValue = LooseValue;

export type DmOperation =
  | 'read'
  | 'discover'
  | 'write'
  | 'execute'
  | 'create'
  | 'delete'
  | 'write-attributes'
  | 'observe'
  | 'cancel-observation'
  | 'trigger-update'
  | 'trigger-bootstrap';

export type DmRequest =
  /** GET; without `accept` the client picks its format (any we decode). */
  | { readonly op: 'read'; readonly path: string; readonly accept?: number }
  /** GET with Accept 40; `depth` 0..3 (LwM2M 1.2 clients only). */
  | { readonly op: 'discover'; readonly path: string; readonly depth?: number }
  /**
   * PUT (replace) or, with `partial`, POST (partial update). `value` for a single resource or
   * resource instance path; `values` maps absolute paths at or below `path` to values (an
   * instance, or the instances of a multi-instance resource). `format` forces a Content-Format.
   */
  | {
      readonly op: 'write';
      readonly path: string;
      readonly value?: WriteValue;
      readonly values?: Readonly<Record<string, WriteValue>>;
      readonly partial?: boolean;
      readonly format?: number;
    }
  /** POST on a resource; `args` is the text/plain argument list (`0='a',1`), sent as is. */
  | { readonly op: 'execute'; readonly path: string; readonly args?: string }
  /** POST on an object; `values` keyed by absolute paths `/o/i/r`; without `i` the client picks the ID. */
  | { readonly op: 'create'; readonly path: string; readonly values?: Readonly<Record<string, WriteValue>>; readonly format?: number }
  | { readonly op: 'delete'; readonly path: string }
  /** PUT with only Uri-Query: `{pmin: "10", gt: "45.5"}`; `null` unsets an attribute. */
  | { readonly op: 'write-attributes'; readonly path: string; readonly attributes: Readonly<Record<string, string | number | null>> }
  /**
   * GET + Observe 0; the 2.05 is the first value; later notifications are stored as the device's
   * latest values. The observation is kept per endpoint: it is re-established after the device's
   * next Register, until cancelled.
   */
  | { readonly op: 'observe'; readonly path: string; readonly accept?: number; readonly attributes?: Readonly<Record<string, string | number>> }
  /** GET + Observe 1 (active cancel) and forget the observation. */
  | { readonly op: 'cancel-observation'; readonly path: string }
  /** Execute /1/x/8 (Registration Update Trigger) on the Server instance x that names this server. */
  | { readonly op: 'trigger-update' }
  /** Execute /1/x/9 (Bootstrap-Request Trigger, LwM2M 1.1+): the device bootstraps again. */
  | { readonly op: 'trigger-bootstrap' };

/**
 * Where a request stands. `queued`: waiting for a queue-mode device to wake up (its next
 * Register/Update) or for the device's previous request to finish; `sent`: on the wire.
 */
export type DmState = 'queued' | 'sent' | 'done' | 'failed';

/** Why a request produced no CoAP response (a device answer with 4.xx/5.xx is `done` with `success: false`). */
export type DmFailure =
  /** No response within the request timeout (CoAP retransmissions exhausted). */
  | 'timeout'
  /** The device answered with RST. */
  | 'reset'
  /** The registration ended (De-register, expiry, new Register) before the request was sent or answered. */
  | 'deregistered'
  /** Waited in the queue longer than the queue timeout. */
  | 'expired'
  /** The server is shutting down. */
  | 'shutdown'
  /** The device answered, but with a payload we cannot decode (the code is kept). */
  | 'bad_response'
  /** Sending failed (socket error, no listener for the device's transport). */
  | 'unreachable'
  /** The device re-registered meanwhile and the request no longer fits it (e.g. its objects or version changed). */
  | 'invalid';

export interface DmResult {
  /** Ticket id (see `DeviceManager.ticket`). */
  readonly id: string;
  readonly op: DmOperation;
  /** The endpoint, as text when printable, else `hex:…`. */
  readonly endpoint: string;
  /** The LwM2M path the request went to (`/1/0/8` for trigger-update). */
  readonly path: string;
  readonly state: DmState;
  /** The device's response code (`2.05`) once answered. */
  readonly code?: string;
  /** True for a 2.xx answer. */
  readonly success?: boolean;
  readonly failure?: DmFailure;
  /** Human-readable: the device's diagnostic payload for 4.xx/5.xx, or why it failed. */
  readonly message?: string;
  /** Content-Format of the answer (read, observe). */
  readonly contentFormat?: number;
  /** Decoded values (read, observe): leaves in path order. */
  readonly values?: readonly PathValue[];
  /** Discover: the link-format text as the device sent it. */
  readonly links?: string;
  /** Create: `/o/i` from the Location-Path when the device chose the instance ID. */
  readonly location?: string;
  /** When it was submitted, sent, and finished (ms since the epoch). */
  readonly submittedAt: number;
  readonly sentAt?: number;
  readonly finishedAt?: number;
}

/** Refusal before anything is sent: a bad path/value/attribute (`invalid`), no such registration (`not_registered`). */
export class DmError extends Error {
  override readonly name = 'DmError';
  constructor(
    readonly code: 'invalid' | 'not_registered' | 'unsupported' | 'shutdown',
    message: string,
  ) {
    super(message);
  }
}

export interface ObservationInfo {
  readonly path: string;
  /** `active` while the device holds it (token known); `pending` until re-established after a Register. */
  readonly state: 'active' | 'pending';
  readonly registrationId: string | null;
  readonly contentFormat: number | null;
  readonly attributes: Readonly<Record<string, string>>;
  readonly createdAt: number;
  readonly notifications: number;
  readonly lastNotificationAt: number | null;
}

/** The device's latest known value of one resource (from a Read, the Observe answer or a notification). */
export type LatestValue = PathValue & { readonly at: number; readonly source: 'read' | 'notify' };

/** What the admin API needs from device management. */
export interface DeviceManagement {
  /**
   * Validates and queues a request for the endpoint's registration. Rejects with `DmError` when
   * the request is invalid or the endpoint is not registered. Resolves once queued; `done`
   * resolves (never rejects) when the request is done or failed.
   */
  submit(endpoint: Uint8Array, request: DmRequest): Promise<{ readonly id: string; readonly done: Promise<DmResult> }>;
  /** A request's current state (kept for a while after it finished), or undefined. */
  ticket(id: string): DmResult | undefined;
  observations(endpoint: Uint8Array): Promise<ObservationInfo[]>;
  latestValues(endpoint: Uint8Array, pathPrefix?: string): Promise<LatestValue[]>;
}
