import { expect } from 'chai';
import { AlertDescription } from '../../src/dtls/constants.js';
import { logDtlsDiagnostics } from '../../src/dtls/log.js';
import { TLS_PSK_WITH_AES_128_CCM_8 } from '../../src/dtls/suites.js';
import { memoryLogger } from '../../src/util/log.js';

const peer = { address: '127.0.0.1', port: 40000, family: 'IPv4' };

describe('dtls/log: diagnostics as log lines', () => {
  it('a refused handshake is one info line with the listener, the peer, the alert name and the reason', () => {
    const log = memoryLogger('info');
    logDtlsDiagnostics(log, 'bootstrap.coaps')({ kind: 'handshake_refused', peer, alert: AlertDescription.unknownPskIdentity, reason: 'no such identity' });
    expect(log.lines).to.have.length(1);
    expect(log.lines[0]).to.deep.include({ level: 'info', listener: 'bootstrap.coaps', peer: '127.0.0.1:40000', alert: 'unknown_psk_identity(115)', reason: 'no such identity' });
  });

  it('the handshake cap warns at most once a minute, counting what it dropped meanwhile', () => {
    const log = memoryLogger('info');
    let t = 0;
    const on = logDtlsDiagnostics(log, 'registration.coaps', () => t);
    for (let i = 0; i < 5; i++) on({ kind: 'limit', peer, what: 'handshakes' });
    t = 59_999;
    on({ kind: 'limit', peer, what: 'handshakes' });
    expect(log.lines.filter((l) => l.level === 'warn')).to.have.length(1);
    t = 60_000;
    on({ kind: 'limit', peer, what: 'handshakes' });
    const warns = log.lines.filter((l) => l.level === 'warn');
    expect(warns.map((w) => w.dropped)).to.deep.equal([1, 6]);
  });

  it('sessions are debug lines (none at info); a PSK identity is shown, never a key', () => {
    const quiet = memoryLogger('info');
    const d = {
      kind: 'established', peer, identity: Buffer.from('dev-1'), identityType: 'psk', suite: TLS_PSK_WITH_AES_128_CCM_8, extendedMasterSecret: true, resumed: false,
    } as const;
    logDtlsDiagnostics(quiet, 'bootstrap.coaps')(d);
    expect(quiet.lines).to.have.length(0);
    const verbose = memoryLogger('debug');
    logDtlsDiagnostics(verbose, 'bootstrap.coaps')(d);
    expect(verbose.lines[0]).to.deep.include({ level: 'debug', identity: '"dev-1"', identityType: 'psk', suite: 'TLS_PSK_WITH_AES_128_CCM_8', resumed: false });
  });
});
