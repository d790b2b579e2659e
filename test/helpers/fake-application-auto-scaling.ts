/**
 * A local fake of the Application Auto Scaling JSON API (AWS JSON 1.1, `X-Amz-Target:
 * AnyScaleFrontendService.<Operation>`) with the SSM `GetParameter` call beside it, for the real SDK
 * clients of `keyless fleet` (pointed here with AWS_ENDPOINT_URL_APPLICATION_AUTO_SCALING and
 * AWS_ENDPOINT_URL_SSM). It keeps scalable targets, policies and activities in memory and checks what
 * the service checks for the calls the CLI makes: required members, paging, min ≤ max.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeTarget {
  ResourceId: string;
  MinCapacity: number;
  MaxCapacity: number;
  SuspendedState?: {
    DynamicScalingInSuspended?: boolean;
    DynamicScalingOutSuspended?: boolean;
    ScheduledScalingSuspended?: boolean;
  };
}

export interface FakeAutoScaling {
  readonly url: string;
  /** Scalable targets by resource id (namespace ecs, dimension ecs:service:DesiredCount). */
  targets: Map<string, FakeTarget>;
  /** SSM parameters by name. */
  parameters: Map<string, string>;
  /** Every call: operation and request body. */
  calls: Array<{ op: string; body: Record<string, unknown> }>;
  close(): Promise<void>;
}

type Json = Record<string, unknown>;

class ApiError extends Error {
  constructor(
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

const PAGE = 2; // small pages, so the CLI's paging is exercised

export async function startFakeAutoScaling(): Promise<FakeAutoScaling> {
  const targets = new Map<string, FakeTarget>();
  const parameters = new Map<string, string>();
  const calls: FakeAutoScaling['calls'] = [];
  const required = (body: Json, name: string): string => {
    const v = body[name];
    if (typeof v !== 'string' || v.length === 0)
      throw new ApiError(
        'ValidationException',
        `1 validation error detected: Value null at '${name[0].toLowerCase()}${name.slice(1)}' failed to satisfy constraint: Member must not be null`,
      );
    return v;
  };
  const ecsOnly = (body: Json): void => {
    if (required(body, 'ServiceNamespace') !== 'ecs')
      throw new ApiError('ValidationException', 'only ecs is kept by this fake');
    if (body.ScalableDimension !== undefined && body.ScalableDimension !== 'ecs:service:DesiredCount')
      throw new ApiError('ValidationException', `Unsupported scalable dimension ${String(body.ScalableDimension)}`);
  };
  const ops: Record<string, (body: Json) => Json> = {
    'AnyScaleFrontendService.DescribeScalableTargets': (body) => {
      ecsOnly(body);
      const ids = Array.isArray(body.ResourceIds) ? (body.ResourceIds as string[]) : undefined;
      const all = [...targets.values()].filter((t) => !ids || ids.includes(t.ResourceId));
      const start = typeof body.NextToken === 'string' ? Number(Buffer.from(body.NextToken, 'base64').toString()) : 0;
      if (!Number.isInteger(start)) throw new ApiError('InvalidNextTokenException', 'Invalid token');
      const page = all.slice(start, start + PAGE);
      return {
        ScalableTargets: page.map((t) => ({
          ServiceNamespace: 'ecs',
          ScalableDimension: 'ecs:service:DesiredCount',
          RoleARN:
            'arn:aws:iam::000000000000:role/aws-service-role/ecs.application-autoscaling.amazonaws.com/AWSServiceRoleForApplicationAutoScaling_ECSService',
          CreationTime: 1_700_000_000,
          SuspendedState: {},
          ...t,
        })),
        ...(start + PAGE < all.length ? { NextToken: Buffer.from(String(start + PAGE)).toString('base64') } : {}),
      };
    },
    'AnyScaleFrontendService.RegisterScalableTarget': (body) => {
      ecsOnly(body);
      const id = required(body, 'ResourceId');
      required(body, 'ScalableDimension');
      const old = targets.get(id);
      const min = typeof body.MinCapacity === 'number' ? body.MinCapacity : old?.MinCapacity;
      const max = typeof body.MaxCapacity === 'number' ? body.MaxCapacity : old?.MaxCapacity;
      if (min === undefined || max === undefined)
        throw new ApiError(
          'ValidationException',
          'MinCapacity and MaxCapacity are required to register a new scalable target',
        );
      if (min > max)
        throw new ApiError('ValidationException', 'Minimum capacity cannot be greater than maximum capacity');
      targets.set(id, { ...(old ?? { ResourceId: id }), MinCapacity: min, MaxCapacity: max });
      return {
        ScalableTargetARN: `arn:aws:application-autoscaling:us-east-1:000000000000:scalable-target/${Buffer.from(id).toString('hex').slice(0, 20)}`,
      };
    },
    'AnyScaleFrontendService.DescribeScalingPolicies': (body) => {
      ecsOnly(body);
      const id = required(body, 'ResourceId');
      return {
        ScalingPolicies: targets.has(id)
          ? [
              {
                PolicyName: 'Cpu',
                PolicyType: 'TargetTrackingScaling',
                ResourceId: id,
                TargetTrackingScalingPolicyConfiguration: {
                  TargetValue: 60,
                  PredefinedMetricSpecification: { PredefinedMetricType: 'ECSServiceAverageCPUUtilization' },
                },
              },
            ]
          : [],
      };
    },
    'AnyScaleFrontendService.DescribeScalingActivities': (body) => {
      ecsOnly(body);
      const id = required(body, 'ResourceId');
      return {
        ScalingActivities: targets.has(id)
          ? [
              {
                ActivityId: 'a1',
                ResourceId: id,
                ServiceNamespace: 'ecs',
                ScalableDimension: 'ecs:service:DesiredCount',
                Description: 'Setting desired count to 3.',
                Cause: 'monitor alarm',
                StartTime: 1_700_000_100,
                StatusCode: 'Successful',
              },
            ]
          : [],
      };
    },
    'AmazonSSM.GetParameter': (body) => {
      const name = required(body, 'Name');
      const value = parameters.get(name);
      if (value === undefined) throw new ApiError('ParameterNotFound', '');
      return { Parameter: { Name: name, Type: 'String', Value: value, Version: 1 } };
    },
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const target = String(req.headers['x-amz-target'] ?? '');
      let status = 200;
      let out: Json;
      try {
        const op = ops[target];
        if (!op) throw new ApiError('UnknownOperationException', `unknown operation ${target}`);
        const body = JSON.parse(Buffer.concat(chunks).toString() || '{}') as Json;
        calls.push({ op: target.split('.')[1], body });
        out = op(body);
      } catch (e) {
        status = 400;
        const err = e instanceof ApiError ? e : new ApiError('SerializationException', (e as Error).message);
        out = { __type: err.type, message: err.message };
        res.setHeader('x-amzn-errortype', err.type);
      }
      const payload = JSON.stringify(out);
      res.writeHead(status, {
        'content-type': 'application/x-amz-json-1.1',
        'content-length': Buffer.byteLength(payload),
        'x-amzn-requestid': 'fake',
      });
      res.end(payload);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    targets,
    parameters,
    calls,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
