/**
 * What a DTLS listener tells the operator: its diagnostics (server.ts `DtlsDiagnostic`) as log
 * lines. Refused handshakes are `info` (an operator looking for a device that cannot connect
 * finds the alert and why); reaching the handshake/session caps is `warn`, at most once a minute
 * per listener with a count; the rest (cookies, handshakes, sessions, moves) is `debug`. No key
 * material is in a diagnostic; PSK identities are not secret and are shown as text or hex.
 */
import { describeBytes } from '../util/bytes.js';
import type { Logger } from '../util/log.js';
import { alertName } from './alert.js';
import type { PeerAddressInfo } from './connection.js';
import type { DtlsDiagnostic } from './server.js';

const LIMIT_WARN_INTERVAL_MS = 60_000;

const at = (p: PeerAddressInfo): string => (p.address.includes(':') ? `[${p.address}]:${p.port}` : `${p.address}:${p.port}`);

/** An `onDiagnostic` for the listener named `listener` (e.g. `bootstrap.coaps`). */
export function logDtlsDiagnostics(log: Logger, listener: string, now: () => number = Date.now): (d: DtlsDiagnostic) => void {
  let lastLimitWarn = -Infinity;
  let limitedSinceWarn = 0;
  return (d) => {
    switch (d.kind) {
      case 'handshake_refused':
        log.info('DTLS handshake refused', { listener, peer: at(d.peer), alert: alertName(d.alert), reason: d.reason });
        return;
      case 'limit': {
        limitedSinceWarn++;
        const t = now();
        if (t - lastLimitWarn < LIMIT_WARN_INTERVAL_MS) return;
        log.warn(`DTLS ${d.what} limit reached: new handshakes are dropped until some end`, { listener, dropped: limitedSinceWarn });
        lastLimitWarn = t;
        limitedSinceWarn = 0;
        return;
      }
      case 'closed':
        if (log.level !== 'debug') return;
        log.debug('DTLS association closed', { listener, peer: at(d.peer), reason: d.reason, established: d.wasEstablished, detail: d.detail });
        return;
      case 'established':
        if (log.level !== 'debug') return;
        log.debug('DTLS session established', {
          listener, peer: at(d.peer), suite: d.suite.name, identityType: d.identityType, resumed: d.resumed,
          ...(d.identityType === 'psk' ? { identity: describeBytes(d.identity) } : {}),
        });
        return;
      case 'peer_moved':
        log.debug('DTLS session moved to a new address (connection ID)', { listener, peer: at(d.peer), previous: at(d.previous) });
        return;
      case 'record_too_large':
        log.info('DTLS record above the client\'s record size limit not sent', { listener, peer: at(d.peer), length: d.length, limit: d.limit });
        return;
      case 'resumption_refused':
        if (log.level !== 'debug') return;
        log.debug('DTLS session not resumed: full handshake', { listener, peer: at(d.peer), reason: d.reason });
        return;
      case 'hello_verify_request':
      case 'handshake_started':
        return; // one per handshake attempt: too many lines even for debug
    }
  };
}
