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
  {
    check: 'iam-denied',
    contains: 'edge-task-role ssm:GetParametersByPath on arn:aws:ssm:eu-west-1:111122223333:parameter/keyless/demo/certs/ via vpce-',
    why: 'the SSM endpoint policy of the edge VPC does not cover the path as the edge asks for it (with its trailing slash)',
  },
  { check: 'iam-unused', contains: 'edge-task-role is granted ssm:GetParametersByPath', why: 'follows from the denial above: no listing of the store is allowed' },
  { check: 'iam-denied', contains: 'key-service-role kms:Encrypt', why: 'the ticket-key envelope (kms:Encrypt) is granted to the role but not allowed by the KMS endpoint policy or the key policy' },
  { check: 'iam-unused', contains: 'is granted kms:Encrypt', why: 'follows from the denial above' },
];
