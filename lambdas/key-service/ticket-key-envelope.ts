/**
 * Encrypts an epoch's ticket key for the store with a dedicated symmetric KMS key (kms:Encrypt /
 * kms:Decrypt; 32 bytes fit in one KMS call, no data key needed). The encryption context names the
 * deployment and the epoch, so a ciphertext copied under another epoch's name, or into another
 * deployment's store, does not decrypt — and CloudTrail records which epoch each Decrypt was for.
 *
 * The KMS key only ever decrypts; it cannot produce a ticket key on its own. Once the store has
 * deleted an epoch's ciphertext, nothing left can bring that key back.
 */
import { DecryptCommand, EncryptCommand, type KMSClient } from '@aws-sdk/client-kms';
import { KeyServiceError } from '../../contract/key-service-errors';
import { mapKmsError } from '../../contract/kms-errors';
import { getSharedKmsClient } from './backends/kms';
import { timeKmsCall } from './observability';
import { TICKET_KEY_LENGTH } from '../../contract/key-service-protocol';

export interface TicketKeyEnvelope {
  seal(epoch: number, key: Buffer): Promise<Buffer>;
  open(epoch: number, ciphertext: Buffer): Promise<Buffer>;
}

/** The encryption context of an epoch's ciphertext. */
export function ticketKeyEncryptionContext(deployment: string, epoch: number): Record<string, string> {
  return { 'keyless:deployment': deployment, 'keyless:ticket-epoch': String(epoch) };
}

export interface KmsTicketKeyEnvelopeOptions {
  /** The symmetric ENCRYPT_DECRYPT key: key id, ARN, alias/... or alias ARN. */
  keyId: string;
  deployment: string;
  /** Injected client (tests, tools); defaults to the container's shared client. */
  client?: KMSClient;
}

export class KmsTicketKeyEnvelope implements TicketKeyEnvelope {
  constructor(private readonly options: KmsTicketKeyEnvelopeOptions) {}

  private get client(): KMSClient {
    return this.options.client ?? getSharedKmsClient();
  }

  async seal(epoch: number, key: Buffer): Promise<Buffer> {
    const { keyId, deployment } = this.options;
    // EncryptionAlgorithm is named (its default) in Encrypt and Decrypt: the key policy and the
    // role's policy condition on kms:EncryptionAlgorithm (lib/ticket-key-store.ts).
    try {
      const out = await timeKmsCall('Encrypt', () =>
        this.client.send(
          new EncryptCommand({
            KeyId: keyId,
            Plaintext: key,
            EncryptionContext: ticketKeyEncryptionContext(deployment, epoch),
            EncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
          }),
        ),
      );
      if (!out.CiphertextBlob) throw new KeyServiceError('internal', 'KMS Encrypt returned no ciphertext');
      return Buffer.from(out.CiphertextBlob);
    } catch (err) {
      throw envelopeError(err, 'Encrypt');
    }
  }

  async open(epoch: number, ciphertext: Buffer): Promise<Buffer> {
    const { keyId, deployment } = this.options;
    let plaintext: Uint8Array | undefined;
    try {
      const out = await timeKmsCall('Decrypt', () =>
        // KeyId pins the key: a ciphertext planted under another key is refused, not decrypted.
        this.client.send(
          new DecryptCommand({
            KeyId: keyId,
            CiphertextBlob: ciphertext,
            EncryptionContext: ticketKeyEncryptionContext(deployment, epoch),
            EncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
          }),
        ),
      );
      plaintext = out.Plaintext;
    } catch (err) {
      throw envelopeError(err, 'Decrypt');
    }
    if (!plaintext || plaintext.length !== TICKET_KEY_LENGTH)
      throw new KeyServiceError('internal', 'stored ticket key has the wrong length');
    return Buffer.from(plaintext);
  }
}

/** A missing ticket KMS key is a deployment error, not an unknown TLS key name. */
function envelopeError(err: unknown, operation: 'Encrypt' | 'Decrypt'): KeyServiceError {
  const e = mapKmsError(err, operation);
  return e.code === 'unknown_key'
    ? new KeyServiceError('internal', `${e.message} (the ticket key, KEYLESS_TICKET_KEY_ID)`, e.upstream)
    : e;
}
