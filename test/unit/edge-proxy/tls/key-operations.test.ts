/**
 * The engine's key-operations port: every failure code has exactly one alert (RFC 8446 §6.2), a
 * refusal by admission control is `handshake_failure`, everything else `internal_error`.
 */
import { AlertDescription } from '../../../../edge-proxy/src/tls/alerts';
import {
  isConnectionScoped,
  KEY_OPERATION_ALERTS,
  type KeyOperations,
} from '../../../../edge-proxy/src/tls/key-operations';

describe('KEY_OPERATION_ALERTS', () => {
  it('answers a refusal with handshake_failure', () => {
    expect(KEY_OPERATION_ALERTS.refused).toBe(AlertDescription.handshake_failure);
  });

  it('answers every other failure with internal_error', () => {
    const others = Object.entries(KEY_OPERATION_ALERTS).filter(([code]) => code !== 'refused');
    expect(others.map(([code]) => code).sort()).toEqual(
      [
        'bad_request',
        'bad_signature',
        'function_error',
        'internal',
        'overloaded',
        'throttled',
        'timeout',
        'unavailable',
        'unknown_key',
        'unsupported',
      ].sort(),
    );
    for (const [, alert] of others) expect(alert).toBe(AlertDescription.internal_error);
  });
});

describe('isConnectionScoped', () => {
  it('recognises key operations that can be narrowed to one connection', () => {
    const plain = {} as KeyOperations;
    expect(isConnectionScoped(plain)).toBe(false);
    const scoped = Object.assign({}, plain, { forConnection: () => plain });
    expect(isConnectionScoped(scoped)).toBe(true);
  });
});
