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

export const KNOWN_FINDINGS: KnownFinding[] = [];
