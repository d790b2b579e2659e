/**
 * The CLI's key-service probe (bin/cli/key-service.ts) reads answers with the protocol's own strict
 * decoder (contract/key-service-codec.ts; docs/key-service-protocol.md, "Responses"): a good answer is
 * returned as sent, unknown_key is a refusal, and anything malformed or of another protocol version is
 * a failure that says what to do — never a half-read result.
 */
import { keyServiceProbe } from '../../../../bin/cli/key-service';
import { CliError, EXIT } from '../../../../bin/cli/errors';
import { PROTOCOL_VERSION, type KeyServiceRequest } from '../../../../contract/key-service-protocol';

const SPKI = Buffer.alloc(91, 7).toString('base64');

function probeAnswering(answer: (req: KeyServiceRequest & { id: string }) => unknown) {
  return keyServiceProbe('key service test', async (req) => answer(req as KeyServiceRequest & { id: string }));
}

async function failure(p: Promise<unknown>): Promise<CliError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(CliError);
    return e as CliError;
  }
  throw new Error('expected a CliError');
}

describe('the CLI key-service probe', () => {
  it('returns a well-formed public_key answer as sent', async () => {
    const probe = probeAnswering((req) => ({
      v: PROTOCOL_VERSION,
      id: req.id,
      ok: true,
      result: { spki: SPKI, keySpec: 'RSA_2048' },
    }));
    await expect(probe.publicKey('example.com')).resolves.toEqual({ spki: SPKI, keySpec: 'RSA_2048' });
  });

  it('turns unknown_key into a refusal naming the key', async () => {
    const probe = probeAnswering((req) => ({
      v: PROTOCOL_VERSION,
      id: req.id,
      ok: false,
      error: { code: 'unknown_key', message: 'no such key' },
    }));
    const e = await failure(probe.publicKey('missing.example'));
    expect(e.exitCode).toBe(EXIT.refused);
    expect(e.message).toContain('does not serve key missing.example (unknown_key)');
  });

  it.each([
    ['not an object', () => 'hello'],
    [
      'another protocol version',
      (req: { id: string }) => ({
        v: PROTOCOL_VERSION + 1,
        id: req.id,
        ok: true,
        result: { spki: SPKI, keySpec: 'RSA_2048' },
      }),
    ],
    [
      'another request id',
      () => ({ v: PROTOCOL_VERSION, id: 'someone-else', ok: true, result: { spki: SPKI, keySpec: 'RSA_2048' } }),
    ],
    [
      'spki that is not canonical base64',
      (req: { id: string }) => ({
        v: PROTOCOL_VERSION,
        id: req.id,
        ok: true,
        result: { spki: '!!!!', keySpec: 'RSA_2048' },
      }),
    ],
    [
      'an unknown error code',
      (req: { id: string }) => ({
        v: PROTOCOL_VERSION,
        id: req.id,
        ok: false,
        error: { code: 'teapot', message: 'x' },
      }),
    ],
  ])('fails clearly on %s', async (_label, answer) => {
    const e = await failure(probeAnswering(answer as never).publicKey('example.com'));
    expect(e.exitCode).toBe(EXIT.failed);
    expect(e.message).toMatch(/^key service test answered public_key with something this CLI cannot read \(.+\)$/);
    expect(e.hint).toBe('Deploy the key service and use the CLI of the same release.');
  });
});
