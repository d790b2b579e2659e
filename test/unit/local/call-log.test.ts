/**
 * The call record of the local KMS and Lambda endpoints (local/call-log.ts): each call carries the
 * principal its SigV4 access key id maps to, the resources it resolved to, and no payloads.
 */
import { CreateAliasCommand, CreateKeyCommand, KMSClient, SignCommand } from '@aws-sdk/client-kms';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';

import { CallLog } from '../../../local/call-log';
import { startLocalKms } from '../../../local/kms';
import { startLocalLambda } from '../../../local/lambda';

const REGION = 'eu-west-1';
const credentials = (accessKeyId: string): { accessKeyId: string; secretAccessKey: string } => ({
  accessKeyId,
  secretAccessKey: 'x',
});

describe('call record of the local endpoints', () => {
  it('local KMS: principal, operation, the key an alias resolved to, no message bytes', async () => {
    const log = new CallLog({ principals: { AKIAOPS: 'operator', AKIAKS: 'key-service-role' } });
    const kms = await startLocalKms({ region: REGION, accountId: '111122223333', callLog: log });
    const ops = new KMSClient({
      region: REGION,
      endpoint: kms.url,
      credentials: credentials('AKIAOPS'),
      maxAttempts: 1,
    });
    const ks = new KMSClient({ region: REGION, endpoint: kms.url, credentials: credentials('AKIAKS'), maxAttempts: 1 });
    try {
      const key = await ops.send(new CreateKeyCommand({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' }));
      await ops.send(
        new CreateAliasCommand({ AliasName: 'alias/keyless/t/keys/a', TargetKeyId: key.KeyMetadata!.KeyId }),
      );
      const message = Buffer.alloc(32, 0x5a);
      await ks.send(
        new SignCommand({
          KeyId: 'alias/keyless/t/keys/a',
          Message: message,
          MessageType: 'DIGEST',
          SigningAlgorithm: 'ECDSA_SHA_256',
        }),
      );
      const keyArn = key.KeyMetadata!.Arn!;
      expect(kms.calls.map((c) => [c.principal, c.operation])).toEqual([
        ['operator', 'CreateKey'],
        ['operator', 'CreateAlias'],
        ['key-service-role', 'Sign'],
      ]);
      expect(kms.calls[0].resources).toEqual([keyArn]);
      expect(kms.calls[1].resources.sort()).toEqual(
        [keyArn, 'arn:aws:kms:eu-west-1:111122223333:alias/keyless/t/keys/a'].sort(),
      );
      expect(kms.calls[2]).toMatchObject({
        resources: [keyArn],
        request: { KeyId: 'alias/keyless/t/keys/a', MessageType: 'DIGEST', SigningAlgorithm: 'ECDSA_SHA_256' },
      });
      expect(kms.calls[2].request).not.toHaveProperty('Message');
      expect(JSON.stringify(kms.calls)).not.toContain(message.toString('base64'));
    } finally {
      ops.destroy();
      ks.destroy();
      await kms.close();
    }
  });

  it('local KMS without a call log records nothing', async () => {
    const kms = await startLocalKms({ region: REGION });
    const c = new KMSClient({ region: REGION, endpoint: kms.url, credentials: credentials('AKIAOPS'), maxAttempts: 1 });
    try {
      await c.send(new CreateKeyCommand({}));
      expect(kms.calls).toEqual([]);
    } finally {
      c.destroy();
      await kms.close();
    }
  });

  it('local Lambda: InvokeFunction against the qualified function ARN, never the payload', async () => {
    const log = new CallLog({ principals: { AKIAEDGE: 'edge-task-role' } });
    const lambda = await startLocalLambda({
      region: REGION,
      accountId: '111122223333',
      functions: { 'ks:live': () => ({ ok: true }) },
      callLog: log,
    });
    const c = new LambdaClient({
      region: REGION,
      endpoint: lambda.url,
      credentials: credentials('AKIAEDGE'),
      maxAttempts: 1,
    });
    try {
      await c.send(
        new InvokeCommand({ FunctionName: 'ks', Qualifier: 'live', Payload: Buffer.from('{"secret-ish":"payload"}') }),
      );
      await c.send(new InvokeCommand({ FunctionName: 'missing' })).catch(() => undefined);
      expect(lambda.calls.map((x) => [x.principal, x.operation, x.resources[0], x.error ?? null])).toEqual([
        ['edge-task-role', 'InvokeFunction', 'arn:aws:lambda:eu-west-1:111122223333:function:ks:live', null],
        [
          'edge-task-role',
          'InvokeFunction',
          'arn:aws:lambda:eu-west-1:111122223333:function:missing',
          'ResourceNotFoundException',
        ],
      ]);
      expect(JSON.stringify(lambda.calls)).not.toContain('payload');
    } finally {
      c.destroy();
      await lambda.close();
    }
  });
});
