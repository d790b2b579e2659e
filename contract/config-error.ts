/**
 * The error a bad configuration value or a bad stored certificate entry raises: it names the field
 * and says how to fix it (docs/architecture.md, "Invariants"). The edge reads both kinds, the CLI
 * writes certificate entries, so both recognise this one class.
 */
export class ConfigError extends Error {
  constructor(
    readonly field: string,
    problem: string,
    fix: string,
  ) {
    super(`invalid edge configuration: ${field}: ${problem}. ${fix}`);
    this.name = 'ConfigError';
  }
}

/** Refuses PEM data that contains private key material: the edge must never be given a key. */
export function assertNoPrivateKey(pem: string, where: string): void {
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem)) {
    throw new ConfigError(
      where,
      'contains a PRIVATE KEY block',
      'Remove it. The edge serves certificates only; private keys stay in the key service (KMS).',
    );
  }
}
