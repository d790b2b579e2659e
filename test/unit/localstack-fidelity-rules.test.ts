/**
 * The LocalStack suite's fidelity rules against its real list of deviations
 * (test/localstack/kms-known-deviations.json): LocalStack 4.14.0's predicted KMS deviations are all
 * listed, a run in which they occur passes, a run in which a prediction does not occur passes with a
 * note, and a failing behaviour that is not listed fails the run.
 */
import {
  classifyFidelity,
  fidelityFailed,
  loadKnownDeviations,
  renderFidelityReport,
  type TestOutcome,
} from '../localstack/fidelity';

const known = loadKnownDeviations();
const outcome = (fullName: string, status: 'passed' | 'failed'): TestOutcome => ({
  fullName,
  status,
  failureMessages: status === 'failed' ? ['Expected: "ValidationException"\nReceived: resolved'] : [],
});

/** The fidelity suite's behaviours as a LocalStack run would report them: the listed ones fail, ten others pass. */
function run(overrides: Record<string, 'passed' | 'failed'> = {}): TestOutcome[] {
  const fine = Array.from({ length: 10 }, (_, i) => outcome(`Sign / Verify behaviour ${i} as in AWS`, 'passed'));
  return [
    ...known.map((k) => outcome(k.test, overrides[k.test] ?? 'failed')),
    ...fine,
    ...Object.entries(overrides)
      .filter(([t]) => !known.some((k) => k.test === t))
      .map(([t, s]) => outcome(t, s)),
  ];
}

describe('LocalStack 4.14.0 KMS deviations', () => {
  test.each([
    ['GetPublicKey on a symmetric key succeeds', 'GetPublicKey of a symmetric key is an UnsupportedOperationException'],
    ['key-usage/spec combinations are not checked', 'rejects key usages the key spec cannot have'],
    [
      'EncryptionAlgorithm is absent from Encrypt',
      'symmetric: the ciphertext names its key and is bound to the encryption context',
    ],
    ['NumberOfBytes is ignored', 'GenerateDataKey returns a key and its sealed copy'],
    ['alias/aws/ names are accepted', 'alias names: unique, prefixed alias/, alias/aws/ reserved'],
    ['unknown operations return 500 InternalError', 'an unknown operation is an UnknownOperationException'],
    ['malformed JSON returns 500 InternalError', 'malformed JSON is a SerializationException'],
  ])('lists "%s" as a predicted deviation', (_what, title) => {
    const entry = known.find((k) => k.test.endsWith(title));
    expect(entry).toBeDefined();
    expect(entry!.evidence).toBe('predicted');
  });

  test('no entry cites design sections or tracker numbers', () => {
    for (const k of known) expect(`${k.test} ${k.why}`).not.toMatch(/DESIGN|§|issue \d/);
  });
});

describe("the fidelity phase's rules", () => {
  test('a run in which every listed deviation occurs passes', () => {
    const r = classifyFidelity(run(), known);
    expect(r.known).toHaveLength(known.length);
    expect(r.unexpected).toEqual([]);
    expect(fidelityFailed(r)).toBe(false);
    expect(renderFidelityReport(r, 'http://localhost:4566')).toContain(
      `fidelity: passed by the suite's rules (${known.length} listed deviation(s) occurred, 0 listed did not; nothing unlisted)`,
    );
  });

  test('a predicted deviation that does not occur is a note, not a failure', () => {
    const predicted = known.filter((k) => k.evidence === 'predicted').slice(0, 2);
    const r = classifyFidelity(run(Object.fromEntries(predicted.map((k) => [k.test, 'passed']))), known);
    expect(r.nowPassing.map((k) => k.test)).toEqual(predicted.map((k) => k.test));
    expect(fidelityFailed(r)).toBe(false);
    const text = renderFidelityReport(r, 'http://localhost:4566');
    expect(text).toContain(
      'note: predicted deviations that did not occur (behave as in AWS; drop them from the list): 2',
    );
    expect(text).toContain(`✓ ${predicted[0].test} [predicted]`);
    expect(text).not.toContain('NEW deviations');
  });

  test('a failing behaviour that is not listed fails the run', () => {
    const r = classifyFidelity(
      run({ 'Sign / Verify Verify of a bad signature throws KMSInvalidSignatureException': 'failed' }),
      known,
    );
    expect(r.unexpected.map((u) => u.fullName)).toEqual([
      'Sign / Verify Verify of a bad signature throws KMSInvalidSignatureException',
    ]);
    expect(fidelityFailed(r)).toBe(true);
    const text = renderFidelityReport(r, 'http://localhost:4566');
    expect(text).toContain('NEW deviations (not in the known list; the run fails): 1');
    expect(text).toContain('fidelity: FAILED (1 deviation(s) not in the list)');
  });
});
