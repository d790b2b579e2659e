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
    check: 'first-deploy',
    contains: 'no certificate parameter found',
    why: 'the sample has no certificates: every task of the first deploy exits 2, the circuit breaker rolls back, and NLB deletion protection blocks the rollback',
  },
  {
    check: 'iam-denied',
    contains: 'operator kms:Sign',
    why: '`keyless csr` and the dev CA sign with MessageType=DIGEST, but the CDK key policy lets operators sign with MessageType=RAW only',
  },
  { check: 'iam-unused', contains: 'kms:DescribeKey', why: 'the key-service role may DescribeKey, but the key service never calls it' },
  { check: 'iam-unused', contains: 'ssm:GetParameter (', why: 'the edge role may GetParameter, but the edge only lists the store with GetParametersByPath' },
  { check: 'iam-unused', contains: 'ssm:GetParameters (', why: 'the edge role may GetParameters, but the edge only lists the store with GetParametersByPath' },
  { check: 'metrics-unmatched', contains: 'MetricName="Errors"', why: 'the key-service typed-errors SEARCH has no dimensions; Powertools emits service, Deployment and Code' },
  { check: 'metrics-unmatched', contains: 'MetricName="KmsThrottles"', why: 'the KMS-throttles SEARCH has no dimensions; Powertools emits service, Deployment and Operation' },
];
