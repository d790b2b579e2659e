/**
 * What the rehearsal finds on the code as it is, each with why. The rehearsal test fails on any
 * finding not listed here, and on any listed one that no longer occurs (then delete its entry: it
 * was fixed). An empty list means the rehearsal passes.
 */
import type { CheckName } from './rehearse';

export interface KnownFinding {
  check: CheckName;
  /** A substring of the finding's message. */
  contains: string;
  why: string;
}

export const KNOWN_FINDINGS: KnownFinding[] = [
  {
    check: 'iam-denied',
    contains: 'operator kms:Sign',
    why: '`keyless csr` has KMS sign the request with MessageType=DIGEST, but the CDK key policy lets operators sign with MessageType=RAW only (docs/deploy.md also says RAW)',
  },
  { check: 'iam-unused', contains: 'kms:DescribeKey', why: 'the key-service role may DescribeKey, but the key service never calls it' },
  { check: 'iam-unused', contains: 'ssm:GetParameter (', why: 'the edge role may GetParameter, but the edge only lists the store with GetParametersByPath' },
  { check: 'iam-unused', contains: 'ssm:GetParameters (', why: 'the edge role may GetParameters, but the edge only lists the store with GetParametersByPath' },
];
