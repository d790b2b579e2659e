/**
 * The local SSM Parameter Store endpoint (local/ssm) through the production `@aws-sdk/client-ssm`:
 * the operations the certificate store, the CLI and the ticket-key store use, their paging, the
 * exception classes the SDK raises, expiration policies, persistence and the call record.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';

import {
  DeleteParameterCommand,
  DeleteParametersCommand,
  DescribeParametersCommand,
  GetParameterCommand,
  GetParameterHistoryCommand,
  GetParametersByPathCommand,
  GetParametersCommand,
  HierarchyTypeMismatchException,
  InvalidNextToken,
  InvalidPolicyAttributeException,
  ParameterAlreadyExists,
  ParameterNotFound,
  ParameterVersionNotFound,
  PutParameterCommand,
  SSMClient,
} from '@aws-sdk/client-ssm';

import { CallLog, sigV4Credential } from '../../../../local/call-log';
import { startLocalSsm, type LocalSsm } from '../../../../local/ssm';

const REGION = 'eu-west-1';

function client(ssm: LocalSsm, accessKeyId = 'AKIATEST'): SSMClient {
  return new SSMClient({
    region: REGION,
    endpoint: ssm.url,
    credentials: { accessKeyId, secretAccessKey: 'x' },
    maxAttempts: 1,
  });
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a rejection');
}

describe('local SSM Parameter Store', () => {
  let ssm: LocalSsm;
  let sdk: SSMClient;

  beforeEach(async () => {
    ssm = await startLocalSsm({ region: REGION, accountId: '111122223333' });
    sdk = client(ssm);
  });
  afterEach(async () => {
    sdk.destroy();
    await ssm.close();
  });

  it('creates, reads, versions and overwrites a parameter', async () => {
    const put = await sdk.send(new PutParameterCommand({ Name: '/app/a', Value: 'one', Type: 'String' }));
    expect(put).toMatchObject({ Version: 1, Tier: 'Standard' });
    const again = await rejection(sdk.send(new PutParameterCommand({ Name: '/app/a', Value: 'two', Type: 'String' })));
    expect(again).toBeInstanceOf(ParameterAlreadyExists);
    expect((await sdk.send(new PutParameterCommand({ Name: '/app/a', Value: 'two', Overwrite: true }))).Version).toBe(
      2,
    );

    const got = (await sdk.send(new GetParameterCommand({ Name: '/app/a' }))).Parameter!;
    expect(got).toMatchObject({
      Name: '/app/a',
      Value: 'two',
      Type: 'String',
      Version: 2,
      ARN: 'arn:aws:ssm:eu-west-1:111122223333:parameter/app/a',
      DataType: 'text',
    });
    expect(got.LastModifiedDate).toBeInstanceOf(Date);
    expect((await sdk.send(new GetParameterCommand({ Name: '/app/a:1' }))).Parameter).toMatchObject({
      Value: 'one',
      Version: 1,
      Selector: ':1',
    });
    expect((await sdk.send(new GetParameterCommand({ Name: got.ARN! }))).Parameter!.Value).toBe('two');
    expect(await rejection(sdk.send(new GetParameterCommand({ Name: '/app/a:7' })))).toBeInstanceOf(
      ParameterVersionNotFound,
    );
    const history = await sdk.send(new GetParameterHistoryCommand({ Name: '/app/a' }));
    expect(history.Parameters!.map((p) => [p.Version, p.Value])).toEqual([
      [1, 'one'],
      [2, 'two'],
    ]);
  });

  it('raises ParameterNotFound for a missing parameter, and reports missing names in GetParameters', async () => {
    expect(await rejection(sdk.send(new GetParameterCommand({ Name: '/nope' })))).toBeInstanceOf(ParameterNotFound);
    expect(await rejection(sdk.send(new DeleteParameterCommand({ Name: '/nope' })))).toBeInstanceOf(ParameterNotFound);
    await sdk.send(new PutParameterCommand({ Name: '/x/y', Value: 'v', Type: 'String' }));
    const many = await sdk.send(new GetParametersCommand({ Names: ['/x/y', '/x/z'] }));
    expect(many.Parameters!.map((p) => p.Name)).toEqual(['/x/y']);
    expect(many.InvalidParameters).toEqual(['/x/z']);
  });

  it('pages GetParametersByPath with MaxResults and NextToken, recursively or one level', async () => {
    for (const n of ['/p/a', '/p/b', '/p/c', '/p/d/e', '/q/a'])
      await sdk.send(new PutParameterCommand({ Name: n, Value: n, Type: 'String' }));
    const seen: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const page = await sdk.send(
        new GetParametersByPathCommand({ Path: '/p/', Recursive: true, MaxResults: 2, NextToken: token }),
      );
      expect(page.Parameters!.length).toBeLessThanOrEqual(2);
      seen.push(...page.Parameters!.map((p) => p.Name!));
      token = page.NextToken;
      pages++;
    } while (token);
    expect(seen).toEqual(['/p/a', '/p/b', '/p/c', '/p/d/e']);
    expect(pages).toBe(2);
    const oneLevel = await sdk.send(new GetParametersByPathCommand({ Path: '/p' }));
    expect(oneLevel.Parameters!.map((p) => p.Name)).toEqual(['/p/a', '/p/b', '/p/c']);
    expect(
      await rejection(sdk.send(new GetParametersByPathCommand({ Path: '/p', NextToken: 'garbage!' }))),
    ).toBeInstanceOf(InvalidNextToken);
    const tooMany = await rejection(sdk.send(new GetParametersByPathCommand({ Path: '/p', MaxResults: 11 })));
    expect(tooMany.name).toBe('ValidationException');
  });

  it('keeps SecureString values sealed unless WithDecryption', async () => {
    await sdk.send(
      new PutParameterCommand({ Name: '/s/secret', Value: 'hunter2', Type: 'SecureString', KeyId: 'alias/mine' }),
    );
    const sealed = (await sdk.send(new GetParameterCommand({ Name: '/s/secret' }))).Parameter!;
    expect(sealed.Value).not.toContain('hunter2');
    expect(Buffer.from(sealed.Value!, 'base64').toString()).not.toContain('hunter2');
    expect(
      (await sdk.send(new GetParameterCommand({ Name: '/s/secret', WithDecryption: true }))).Parameter!.Value,
    ).toBe('hunter2');
    const described = await sdk.send(
      new DescribeParametersCommand({ ParameterFilters: [{ Key: 'Name', Values: ['/s/secret'] }] }),
    );
    expect(described.Parameters![0]).toMatchObject({ Type: 'SecureString', KeyId: 'alias/mine', Tier: 'Standard' });
    const retype = await rejection(
      sdk.send(new PutParameterCommand({ Name: '/s/secret', Value: 'x', Type: 'String', Overwrite: true })),
    );
    expect(retype).toBeInstanceOf(HierarchyTypeMismatchException);
  });

  it('enforces the tiers: 4 KB standard, 8 KB advanced, no downgrade, Intelligent-Tiering upgrades', async () => {
    const big = 'x'.repeat(5000);
    expect(
      (await rejection(sdk.send(new PutParameterCommand({ Name: '/t/big', Value: big, Type: 'String' })))).name,
    ).toBe('ValidationException');
    expect(
      (
        await sdk.send(
          new PutParameterCommand({ Name: '/t/big', Value: big, Type: 'String', Tier: 'Intelligent-Tiering' }),
        )
      ).Tier,
    ).toBe('Advanced');
    expect(
      (
        await rejection(
          sdk.send(new PutParameterCommand({ Name: '/t/big', Value: 'small', Overwrite: true, Tier: 'Standard' })),
        )
      ).message,
    ).toMatch(/downgrade/);
    expect(
      (
        await rejection(
          sdk.send(
            new PutParameterCommand({ Name: '/t/huge', Value: 'x'.repeat(9000), Type: 'String', Tier: 'Advanced' }),
          ),
        )
      ).name,
    ).toBe('ValidationException');
    expect(
      (
        await sdk.send(
          new PutParameterCommand({ Name: '/t/small', Value: 's', Type: 'String', Tier: 'Intelligent-Tiering' }),
        )
      ).Tier,
    ).toBe('Standard');
  });

  it('refuses bad names with the documented rules', async () => {
    for (const Name of ['aws-thing', '/ssm/x', 'a/b', '/a//b', '/a b']) {
      expect((await rejection(sdk.send(new PutParameterCommand({ Name, Value: 'v', Type: 'String' })))).name).toBe(
        'ValidationException',
      );
    }
    const deep = `/${Array.from({ length: 16 }, (_, i) => `l${i}`).join('/')}`;
    expect((await rejection(sdk.send(new PutParameterCommand({ Name: deep, Value: 'v', Type: 'String' })))).name).toBe(
      'HierarchyLevelLimitExceededException',
    );
    expect((await rejection(sdk.send(new PutParameterCommand({ Name: '/new', Value: 'v' })))).message).toMatch(
      /type is required/,
    );
  });

  it('deletes a parameter when its Expiration policy comes due', async () => {
    // Far enough ahead that a loaded machine still reads it before it expires.
    const expiresAt = Date.now() + 2500;
    const at = new Date(expiresAt).toISOString();
    const policies = JSON.stringify([{ Type: 'Expiration', Version: '1.0', Attributes: { Timestamp: at } }]);
    const standard = await rejection(
      sdk.send(new PutParameterCommand({ Name: '/e/x', Value: 'v', Type: 'String', Policies: policies })),
    );
    expect(standard.message).toMatch(/advanced/);
    const put = await sdk.send(
      new PutParameterCommand({
        Name: '/e/x',
        Value: 'v',
        Type: 'String',
        Policies: policies,
        Tier: 'Intelligent-Tiering',
      }),
    );
    expect(put.Tier).toBe('Advanced');
    const described = await sdk.send(
      new DescribeParametersCommand({ ParameterFilters: [{ Key: 'Path', Option: 'Recursive', Values: ['/e'] }] }),
    );
    expect(described.Parameters![0].Policies![0]).toMatchObject({ PolicyType: 'Expiration' });
    expect((await sdk.send(new GetParameterCommand({ Name: '/e/x' }))).Parameter!.Value).toBe('v');
    // Gone at its timestamp (a timer deletes it; reads also purge anything overdue).
    let left = 1;
    while (left > 0 && Date.now() < expiresAt + 10_000) {
      await new Promise((r) => setTimeout(r, 200));
      left = (await sdk.send(new DescribeParametersCommand({}))).Parameters!.length;
    }
    expect(left).toBe(0);
    expect(Date.now()).toBeGreaterThanOrEqual(expiresAt);
    expect(await rejection(sdk.send(new GetParameterCommand({ Name: '/e/x' })))).toBeInstanceOf(ParameterNotFound);
    // The name is free again: a conditional create succeeds.
    expect((await sdk.send(new PutParameterCommand({ Name: '/e/x', Value: 'w', Type: 'String' }))).Version).toBe(1);

    const past = JSON.stringify([
      { Type: 'Expiration', Version: '1.0', Attributes: { Timestamp: '2001-01-01T00:00:00Z' } },
    ]);
    const stale = await rejection(
      sdk.send(new PutParameterCommand({ Name: '/e/y', Value: 'v', Type: 'String', Policies: past, Tier: 'Advanced' })),
    );
    expect(stale).toBeInstanceOf(InvalidPolicyAttributeException);
    const bogus = await rejection(
      sdk.send(
        new PutParameterCommand({
          Name: '/e/y',
          Value: 'v',
          Type: 'String',
          Policies: '[{"Type":"Nope","Version":"1.0"}]',
          Tier: 'Advanced',
        }),
      ),
    );
    expect(bogus.name).toBe('InvalidPolicyTypeException');
  });

  it('DeleteParameters reports deleted and missing names', async () => {
    await sdk.send(new PutParameterCommand({ Name: '/d/a', Value: 'v', Type: 'String' }));
    const out = await sdk.send(new DeleteParametersCommand({ Names: ['/d/a', '/d/b'] }));
    expect(out.DeletedParameters).toEqual(['/d/a']);
    expect(out.InvalidParameters).toEqual(['/d/b']);
  });

  it('refuses tags together with overwrite', async () => {
    const err = await rejection(
      sdk.send(
        new PutParameterCommand({
          Name: '/g/a',
          Value: 'v',
          Type: 'String',
          Overwrite: true,
          Tags: [{ Key: 'k', Value: 'v' }],
        }),
      ),
    );
    expect(err.message).toMatch(/tags and overwrite/);
  });

  it('answers unknown operations, malformed JSON and foreign Host headers with typed errors', async () => {
    const post = (headers: Record<string, string>, body: string): Promise<{ status: number; type?: string }> =>
      new Promise((resolve, reject) => {
        const req = http.request(
          ssm.url,
          { method: 'POST', headers: { 'content-type': 'application/x-amz-json-1.1', ...headers } },
          (res) => {
            res.resume();
            res.on('end', () =>
              resolve({ status: res.statusCode!, type: res.headers['x-amzn-errortype'] as string | undefined }),
            );
          },
        );
        req.on('error', reject);
        req.end(body);
      });
    expect(await post({ 'x-amz-target': 'AmazonSSM.SendCommand' }, '{}')).toEqual({
      status: 400,
      type: 'UnknownOperationException',
    });
    expect(await post({ 'x-amz-target': 'AmazonSSM.GetParameter' }, '{not json')).toEqual({
      status: 400,
      type: 'SerializationException',
    });
    expect(await post({ 'x-amz-target': 'AmazonSSM.GetParameter', host: 'evil.example' }, '{}')).toEqual({
      status: 403,
      type: 'AccessDeniedException',
    });
  });
});

describe('local SSM persistence and call record', () => {
  it('keeps parameters in the data directory across restarts', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'local-ssm-'));
    try {
      const first = await startLocalSsm({ region: REGION, dataDir: dir });
      const c1 = client(first);
      await c1.send(new PutParameterCommand({ Name: '/keep/me', Value: 'v1', Type: 'String' }));
      c1.destroy();
      await first.close();
      expect((fs.statSync(path.join(dir, `state.${REGION}.json`)).mode & 0o777).toString(8)).toBe('600');
      const second = await startLocalSsm({ region: REGION, dataDir: dir });
      const c2 = client(second);
      expect((await c2.send(new GetParameterCommand({ Name: '/keep/me' }))).Parameter!.Value).toBe('v1');
      c2.destroy();
      await second.close();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('records each call with the principal of its access key id, without values', async () => {
    const log = new CallLog({ principals: { AKIAEDGE: 'edge-task-role', AKIAOPS: 'operator' } });
    const ssm = await startLocalSsm({ region: REGION, accountId: '111122223333', callLog: log });
    const ops = client(ssm, 'AKIAOPS');
    const edge = client(ssm, 'AKIAEDGE');
    const stranger = client(ssm, 'AKIAWHO');
    try {
      await ops.send(new PutParameterCommand({ Name: '/c/cert', Value: 'top-secret-value', Type: 'SecureString' }));
      await edge.send(new GetParametersByPathCommand({ Path: '/c/' }));
      await rejection(stranger.send(new GetParameterCommand({ Name: '/c/missing' })));
      expect(ssm.calls.map((c) => [c.principal, c.operation, c.error ?? null])).toEqual([
        ['operator', 'PutParameter', null],
        ['edge-task-role', 'GetParametersByPath', null],
        ['unknown', 'GetParameter', 'ParameterNotFound'],
      ]);
      expect(ssm.calls[0]).toMatchObject({
        accessKeyId: 'AKIAOPS',
        signingRegion: REGION,
        region: REGION,
        resources: ['arn:aws:ssm:eu-west-1:111122223333:parameter/c/cert'],
      });
      expect(JSON.stringify(ssm.calls)).not.toContain('top-secret-value');
    } finally {
      for (const c of [ops, edge, stranger]) c.destroy();
      await ssm.close();
    }
  });

  it('parses the credential scope of a SigV4 Authorization header', () => {
    expect(
      sigV4Credential(
        'AWS4-HMAC-SHA256 Credential=AKIAX/20261207/us-east-1/ssm/aws4_request, SignedHeaders=host, Signature=ab',
      ),
    ).toEqual({ accessKeyId: 'AKIAX', region: 'us-east-1', service: 'ssm' });
    expect(sigV4Credential(undefined)).toBeUndefined();
    expect(sigV4Credential('Bearer x')).toBeUndefined();
  });
});
