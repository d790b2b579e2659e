/**
 * The KEYLESS_KEYS entry format (docs/configuration.md): the key names a key service serves and
 * where each private key lives. The key service parses and validates it
 * (lambdas/key-service/config.ts); the CLI and the local stack write entries of this shape.
 */

export const KEYS_ENV_VAR = 'KEYLESS_KEYS';

export interface KmsKeyConfig {
  name: string;
  custody: 'kms';
  /** KMS key id, key ARN, alias name (alias/...) or alias ARN. */
  keyId: string;
}

/**
 * `sealed` custody (docs/architecture.md, "Custody modes"): an RSA key pair from KMS GenerateDataKeyPairWithoutPlaintext whose
 * private half is unsealed with kms:Decrypt (encryption context {"keyless:key-name": name}) only in
 * the function's memory. Produced by provisionSealedKey (contract/sealed-key-envelope.ts).
 */
export interface SealedKeyConfig {
  name: string;
  custody: 'sealed';
  /** The symmetric wrapping key: key id, key ARN, alias/... or alias ARN. */
  wrappingKeyId: string;
  /** base64 PrivateKeyCiphertextBlob from GenerateDataKeyPairWithoutPlaintext. */
  sealedKey: string;
  /** base64 DER SubjectPublicKeyInfo of the key pair (PublicKey from the same call). */
  publicKey: string;
}

/**
 * `{"name": "*", "custody": "kms", "aliasPrefix": "alias/keyless/prod/keys/"}`: any other valid key
 * name N is the KMS key behind the alias `<aliasPrefix>N`. Key generations made with `keyless keys
 * create` are then served without redeploying the key service; an alias that does not exist yields
 * `unknown_key`. At most one such entry; configured names always win over it.
 */
export interface KmsAliasPrefixConfig {
  name: '*';
  custody: 'kms';
  /** `alias/...` ending in `/`; not under the AWS-managed `alias/aws/`. */
  aliasPrefix: string;
}
