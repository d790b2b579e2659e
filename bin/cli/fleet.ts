/**
 * `keyless fleet status` and `keyless fleet scale --min N --max M`: the edge fleet's task range, read
 * and changed on the ECS service's scalable target through Application Auto Scaling — no redeploy
 * (docs/cli.md, "Fleet scaling").
 *
 * The one rule a new range must keep is the fleet KMS budget (docs/configuration.md, "Fleet KMS
 * budget"): every task admits `KEYLESS_KMS_BUDGET / KEYLESS_FLEET_MAX_TASKS` key operations per second,
 * so more than KEYLESS_FLEET_MAX_TASKS tasks could together exceed the region's budget. The deployment
 * records both numbers in the SSM parameter `/keyless/<deployment>/fleet` (written by the CDK edge
 * stack), and `scale` refuses a maximum above the recorded one.
 */
import {
  type ApplicationAutoScalingClient,
  DescribeScalableTargetsCommand,
  DescribeScalingActivitiesCommand,
  DescribeScalingPoliciesCommand,
  RegisterScalableTargetCommand,
  type ScalableTarget,
} from '@aws-sdk/client-application-auto-scaling';
import { GetParameterCommand, type SSMClient } from '@aws-sdk/client-ssm';
import { stackId } from '../../lib/naming';
import { opt } from './args';
import type { Command } from './commands';
import { type CliIo, GLOBAL_OPTIONS, resolveContext } from './context';
import { awsError, EXIT, refused, usageError } from './errors';
import { type Progress, silent } from './output';

const NAMESPACE = 'ecs';
const DIMENSION = 'ecs:service:DesiredCount';

/**
 * SSM parameter in which the CDK edge stack records the fleet's KMS budget:
 * `{"kmsBudget": N, "maxTasks": M, "maximumPercent": P}` — the edges' KEYLESS_KMS_BUDGET and
 * KEYLESS_FLEET_MAX_TASKS, and the service's deployment maximumPercent (optional, default 100).
 */
export function fleetBudgetParameter(deployment: string): string {
  return `/keyless/${deployment}/fleet`;
}

/** What the deployment's edges were configured with (their KEYLESS_KMS_BUDGET and KEYLESS_FLEET_MAX_TASKS). */
export interface FleetBudget {
  /** Key operations per second the region's fleet may send to KMS. */
  kmsBudget: number;
  /** The most tasks whose shares the budget was split into (KEYLESS_FLEET_MAX_TASKS). */
  maxTasks: number;
  /** The ECS service's deployment maximumPercent: a rolling deploy may run this share of the desired count. */
  maximumPercent: number;
  /** Where the numbers came from: the SSM parameter, or `--fleet-max-tasks`. */
  source: string;
}

/**
 * The largest autoscaling maximum the budget allows: with a rolling deploy at maximumPercent, M tasks
 * become up to ceil(M × maximumPercent / 100) that admit at once, and those must fit the split.
 */
export function largestSafeMax(b: Pick<FleetBudget, 'maxTasks' | 'maximumPercent'>): number {
  return Math.floor((b.maxTasks * 100) / b.maximumPercent);
}

export interface FleetDeps {
  scaling: ApplicationAutoScalingClient;
  ssm: SSMClient;
  progress?: Progress;
}

export interface FleetTarget {
  /** `service/<cluster>/<service>`. */
  resourceId: string;
  minTasks: number;
  maxTasks: number;
  /** Scale-in/out suspended (someone paused autoscaling). */
  suspended: string[];
}

export interface FleetStatus extends FleetTarget {
  deployment: string;
  region?: string;
  /** Undefined when the deployment records no budget. */
  budget?: FleetBudget & { perTaskShare: number; largestSafeMax: number };
  /** Target-tracking policies: name, metric and target value. */
  policies: Array<{ name: string; metric: string; target?: number }>;
  /** The latest scaling activity (what the autoscaler last did), if any. */
  lastActivity?: { at?: string; status?: string; description?: string };
  problems: string[];
}

/** The edge service's scalable target: `--service`, else the one whose name the CDK derived from the deployment. */
export async function findFleetTarget(
  deployment: string,
  service: string | undefined,
  deps: FleetDeps,
): Promise<FleetTarget> {
  const targets: ScalableTarget[] = [];
  let token: string | undefined;
  do {
    let page;
    try {
      page = await deps.scaling.send(
        new DescribeScalableTargetsCommand({
          ServiceNamespace: NAMESPACE,
          ScalableDimension: DIMENSION,
          ...(service ? { ResourceIds: [service] } : {}),
          NextToken: token,
        }),
      );
    } catch (e) {
      throw awsError(e, 'Application Auto Scaling DescribeScalableTargets');
    }
    targets.push(...(page.ScalableTargets ?? []));
    token = page.NextToken;
  } while (token);
  // The CDK names the service after its stack (`Keyless-<Deployment>-Edge[-<region>]-Service…`).
  const stack = stackId(deployment, 'Edge');
  const mine = service ? targets : targets.filter((t) => (t.ResourceId ?? '').split('/')[2]?.startsWith(stack));
  if (mine.length === 0) {
    throw refused(
      service
        ? `${service} has no scalable target (it is not autoscaled, or it is in another region)`
        : `no ECS service of deployment ${deployment} is registered with Application Auto Scaling in this region`,
      service
        ? "Check --region and the service's resource id (service/<cluster>/<service>)."
        : `Deploy the edge stack (${stack}) first, check --region and --deployment, or name the service with --service service/<cluster>/<service>.`,
    );
  }
  if (mine.length > 1) {
    throw refused(
      `several ECS services match deployment ${deployment}: ${mine.map((t) => t.ResourceId).join(', ')}`,
      'Say which with --service service/<cluster>/<service>.',
    );
  }
  const t = mine[0];
  const s = t.SuspendedState;
  return {
    resourceId: t.ResourceId!,
    minTasks: t.MinCapacity ?? 0,
    maxTasks: t.MaxCapacity ?? 0,
    suspended: [
      s?.DynamicScalingInSuspended && 'scale-in',
      s?.DynamicScalingOutSuspended && 'scale-out',
      s?.ScheduledScalingSuspended && 'scheduled',
    ].filter((x): x is string => typeof x === 'string'),
  };
}

/** The budget the deployment's edges run with, from its SSM parameter; undefined when it records none. */
export async function readFleetBudget(deployment: string, ssm: SSMClient): Promise<FleetBudget | undefined> {
  const name = fleetBudgetParameter(deployment);
  let value: string | undefined;
  try {
    value = (await ssm.send(new GetParameterCommand({ Name: name }))).Parameter?.Value;
  } catch (e) {
    if ((e as Error).name === 'ParameterNotFound') return undefined;
    throw awsError(e, `SSM GetParameter ${name}`);
  }
  let parsed: { kmsBudget?: unknown; maxTasks?: unknown; maximumPercent?: unknown };
  try {
    parsed = JSON.parse(value ?? '') as typeof parsed;
  } catch {
    parsed = {};
  }
  const whole = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 1;
  const percent = parsed.maximumPercent ?? 100;
  if (!whole(parsed.kmsBudget) || !whole(parsed.maxTasks) || !whole(percent) || percent < 100) {
    throw refused(
      `${name} is not {"kmsBudget": N, "maxTasks": M, "maximumPercent": P ≥ 100 (optional)}`,
      "Redeploy the edge stack (it writes the parameter), or pass --fleet-max-tasks with the edges' KEYLESS_FLEET_MAX_TASKS.",
    );
  }
  return { kmsBudget: parsed.kmsBudget, maxTasks: parsed.maxTasks, maximumPercent: percent, source: `ssm:${name}` };
}

export async function fleetStatus(
  opts: { deployment: string; service?: string; region?: string },
  deps: FleetDeps,
): Promise<FleetStatus> {
  const progress = deps.progress ?? silent;
  progress('reading the scalable target (Application Auto Scaling)');
  const target = await findFleetTarget(opts.deployment, opts.service, deps);
  const budget = await readFleetBudget(opts.deployment, deps.ssm);
  let policies: FleetStatus['policies'] = [];
  let lastActivity: FleetStatus['lastActivity'];
  try {
    const p = await deps.scaling.send(
      new DescribeScalingPoliciesCommand({
        ServiceNamespace: NAMESPACE,
        ScalableDimension: DIMENSION,
        ResourceId: target.resourceId,
      }),
    );
    policies = (p.ScalingPolicies ?? []).map((x) => {
      const c = x.TargetTrackingScalingPolicyConfiguration;
      const metric =
        c?.PredefinedMetricSpecification?.PredefinedMetricType ??
        c?.CustomizedMetricSpecification?.MetricName ??
        x.PolicyType ??
        'policy';
      return { name: x.PolicyName ?? '?', metric, ...(c?.TargetValue !== undefined ? { target: c.TargetValue } : {}) };
    });
    const a = await deps.scaling.send(
      new DescribeScalingActivitiesCommand({
        ServiceNamespace: NAMESPACE,
        ScalableDimension: DIMENSION,
        ResourceId: target.resourceId,
        MaxResults: 1,
      }),
    );
    const last = a.ScalingActivities?.[0];
    if (last)
      lastActivity = { at: last.StartTime?.toISOString(), status: last.StatusCode, description: last.Description };
  } catch (e) {
    throw awsError(e, 'Application Auto Scaling DescribeScalingPolicies/Activities');
  }
  const problems: string[] = [];
  if (!budget)
    problems.push(
      `the deployment records no fleet KMS budget (${fleetBudgetParameter(opts.deployment)}): nothing shows that ${target.maxTasks} tasks stay within the region's KMS quota`,
    );
  else if (target.maxTasks > largestSafeMax(budget)) {
    problems.push(
      `max ${target.maxTasks} tasks exceeds the ${largestSafeMax(budget)} the KMS budget allows (split into ${budget.maxTasks} tasks${budget.maximumPercent > 100 ? `, deployments at ${budget.maximumPercent}%` : ''}): the fleet may admit more than ${budget.kmsBudget}/s; lower it with keyless fleet scale --max ${largestSafeMax(budget)}`,
    );
  }
  if (target.suspended.length > 0) problems.push(`autoscaling is suspended (${target.suspended.join(', ')})`);
  return {
    deployment: opts.deployment,
    ...(opts.region ? { region: opts.region } : {}),
    ...target,
    ...(budget
      ? {
          budget: {
            ...budget,
            perTaskShare: Math.floor(budget.kmsBudget / budget.maxTasks),
            largestSafeMax: largestSafeMax(budget),
          },
        }
      : {}),
    policies,
    ...(lastActivity ? { lastActivity } : {}),
    problems,
  };
}

export interface ScaleOptions {
  deployment: string;
  service?: string;
  /** New minimum / maximum; either may be left as it is. */
  min?: number;
  max?: number;
  /** The edges' KEYLESS_FLEET_MAX_TASKS, when the deployment does not record its budget. */
  fleetMaxTasks?: number;
  dryRun?: boolean;
}

export interface ScaleResult {
  resourceId: string;
  before: { minTasks: number; maxTasks: number };
  after: { minTasks: number; maxTasks: number };
  changed: boolean;
  dryRun: boolean;
  budget: FleetBudget | { maxTasks: number; maximumPercent: number; source: string };
}

export async function scaleFleet(opts: ScaleOptions, deps: FleetDeps): Promise<ScaleResult> {
  const progress = deps.progress ?? silent;
  if (opts.min === undefined && opts.max === undefined)
    throw usageError('nothing to change', 'Give --min N, --max M or both.');
  const target = await findFleetTarget(opts.deployment, opts.service, deps);
  const recorded = await readFleetBudget(opts.deployment, deps.ssm);
  if (recorded && opts.fleetMaxTasks !== undefined && opts.fleetMaxTasks !== recorded.maxTasks) {
    throw refused(
      `--fleet-max-tasks ${opts.fleetMaxTasks} disagrees with the deployment's record (${recorded.maxTasks} in ${recorded.source})`,
      'Drop --fleet-max-tasks: the record is what the edges were deployed with.',
    );
  }
  const budget =
    recorded ??
    (opts.fleetMaxTasks !== undefined
      ? { maxTasks: opts.fleetMaxTasks, maximumPercent: 100, source: '--fleet-max-tasks' }
      : undefined);
  const after = { minTasks: opts.min ?? target.minTasks, maxTasks: opts.max ?? target.maxTasks };
  if (after.minTasks > after.maxTasks) {
    throw usageError(
      `min ${after.minTasks} is above max ${after.maxTasks}`,
      opts.max === undefined
        ? `The current max is ${target.maxTasks}: give --max too.`
        : 'Give a min that is at most the max.',
    );
  }
  if (!budget) {
    throw refused(
      `cannot check --max ${after.maxTasks} against the fleet's KMS budget: the deployment records none (${fleetBudgetParameter(opts.deployment)})`,
      "Redeploy the edge stack (it records KEYLESS_KMS_BUDGET and KEYLESS_FLEET_MAX_TASKS there), or pass --fleet-max-tasks with the task definition's KEYLESS_FLEET_MAX_TASKS.",
    );
  }
  const ceiling = largestSafeMax(budget);
  if (after.maxTasks > ceiling) {
    const perTask =
      'kmsBudget' in budget
        ? ` (${budget.kmsBudget}/s ÷ ${budget.maxTasks} = ${Math.floor(budget.kmsBudget / budget.maxTasks)}/s per task)`
        : '';
    const surge =
      budget.maximumPercent > 100
        ? `, and a deployment at ${budget.maximumPercent}% runs up to ${Math.ceil((after.maxTasks * budget.maximumPercent) / 100)} of them at once`
        : '';
    throw refused(
      `--max ${after.maxTasks} would break the fleet KMS budget: each task admits its share of the region's budget sized for at most ${budget.maxTasks} tasks${perTask}${surge}, so ${after.maxTasks} tasks could exceed it`,
      `Keep --max at most ${ceiling}, or redeploy the edge stack with maxTasks ${after.maxTasks} (each task's share shrinks; raise the KMS quota and budget first if it becomes too small): see docs/configuration.md, "Fleet KMS budget".`,
    );
  }
  const before = { minTasks: target.minTasks, maxTasks: target.maxTasks };
  const changed = before.minTasks !== after.minTasks || before.maxTasks !== after.maxTasks;
  if (changed && !opts.dryRun) {
    progress(`setting ${target.resourceId} to ${after.minTasks}..${after.maxTasks} tasks (RegisterScalableTarget)`);
    try {
      await deps.scaling.send(
        new RegisterScalableTargetCommand({
          ServiceNamespace: NAMESPACE,
          ScalableDimension: DIMENSION,
          ResourceId: target.resourceId,
          MinCapacity: after.minTasks,
          MaxCapacity: after.maxTasks,
        }),
      );
    } catch (e) {
      throw awsError(e, 'Application Auto Scaling RegisterScalableTarget');
    }
  }
  return { resourceId: target.resourceId, before, after, changed, dryRun: opts.dryRun === true, budget };
}

// ---------------------------------------------------------------------------------------------
// Command line

const FLEET_OPTIONS = [
  {
    name: 'service',
    type: 'string' as const,
    value: 'ID',
    description:
      "the ECS service as service/<cluster>/<service> (default KEYLESS_FLEET_SERVICE, else the deployment's edge service)",
  },
];

function fleetContext(args: Parameters<Command['run']>[0], io: CliIo): ReturnType<typeof resolveContext> {
  if (opt.bool(args, 'local'))
    throw usageError(
      'the local stack has no fleet to scale',
      'Run fleet commands against AWS (--profile/--region) or an Application Auto Scaling endpoint (AWS_ENDPOINT_URL_APPLICATION_AUTO_SCALING).',
    );
  return resolveContext(args, io);
}

export const fleetStatusCommand: Command = {
  spec: {
    name: 'fleet status',
    summary: "Show the edge fleet's task range, scaling policies, last scaling activity and KMS budget.",
    description: 'Exit code 0 when it could be read; with --check, 2 when there are problems to act on.',
    options: [
      ...FLEET_OPTIONS,
      { name: 'check', type: 'boolean', description: 'exit with code 2 when problems are listed (for monitoring)' },
      ...GLOBAL_OPTIONS,
    ],
    examples: [
      'keyless fleet status --deployment prod --region eu-west-1',
      'keyless fleet status --deployment prod --json',
    ],
  },
  async run(args, io) {
    const ctx = fleetContext(args, io);
    try {
      const service = opt.str(args, 'service') ?? ctx.env.KEYLESS_FLEET_SERVICE;
      const s = await fleetStatus(
        { deployment: ctx.deployment, service, region: opt.str(args, 'region') },
        { scaling: ctx.aws.applicationAutoScaling, ssm: ctx.aws.ssm, progress: ctx.out.progress },
      );
      ctx.out.result(s, () => formatFleetStatus(s));
      return opt.bool(args, 'check') && s.problems.length > 0 ? EXIT.refused : EXIT.ok;
    } finally {
      ctx.close();
    }
  },
};

export const fleetScaleCommand: Command = {
  spec: {
    name: 'fleet scale',
    summary: "Change the edge fleet's minimum and maximum task count (Application Auto Scaling), without a redeploy.",
    description:
      "The autoscaler keeps the task count within the new range. A maximum above the fleet KMS budget's\n" +
      '(KEYLESS_FLEET_MAX_TASKS, recorded in /keyless/<deployment>/fleet) is refused: that needs a redeploy.\n' +
      "The next cdk deploy sets the range back to the stack's minTasks/maxTasks.",
    options: [
      { name: 'min', type: 'string', value: 'N', description: 'new minimum task count' },
      { name: 'max', type: 'string', value: 'M', description: 'new maximum task count' },
      {
        name: 'fleet-max-tasks',
        type: 'string',
        value: 'N',
        description: "the edges' KEYLESS_FLEET_MAX_TASKS, when the deployment does not record it",
      },
      { name: 'dry-run', type: 'boolean', description: 'check and print the change; change nothing' },
      ...FLEET_OPTIONS,
      ...GLOBAL_OPTIONS,
    ],
    examples: [
      'keyless fleet scale --deployment prod --min 4 --max 20',
      'keyless fleet scale --deployment prod --min 2 --dry-run',
    ],
  },
  async run(args, io) {
    const ctx = fleetContext(args, io);
    try {
      const r = await scaleFleet(
        {
          deployment: ctx.deployment,
          service: opt.str(args, 'service') ?? ctx.env.KEYLESS_FLEET_SERVICE,
          min: opt.str(args, 'min') === undefined ? undefined : opt.int(args, 'min', 2, 0, 10_000),
          max: opt.str(args, 'max') === undefined ? undefined : opt.int(args, 'max', 20, 1, 10_000),
          fleetMaxTasks:
            opt.str(args, 'fleet-max-tasks') === undefined
              ? undefined
              : opt.int(args, 'fleet-max-tasks', 20, 1, 10_000),
          dryRun: opt.bool(args, 'dry-run'),
        },
        { scaling: ctx.aws.applicationAutoScaling, ssm: ctx.aws.ssm, progress: ctx.out.progress },
      );
      ctx.out.result(r, () => {
        const range = (x: { minTasks: number; maxTasks: number }): string => `${x.minTasks}..${x.maxTasks}`;
        if (!r.changed) return `${r.resourceId}: already ${range(r.after)} tasks; nothing to do`;
        return `${r.dryRun ? 'would set' : 'set'} ${r.resourceId} from ${range(r.before)} to ${range(r.after)} tasks (KMS budget split into ${r.budget.maxTasks} tasks, from ${r.budget.source})`;
      });
      return EXIT.ok;
    } finally {
      ctx.close();
    }
  },
};

export function formatFleetStatus(s: FleetStatus): string {
  const lines = [
    `fleet of ${s.deployment}${s.region ? ` in ${s.region}` : ''}: ${s.resourceId}`,
    `  tasks:      min ${s.minTasks}, max ${s.maxTasks}${s.suspended.length ? ` (suspended: ${s.suspended.join(', ')})` : ''}`,
  ];
  if (s.budget) {
    const surge = s.budget.maximumPercent > 100 ? `; deployments at ${s.budget.maximumPercent}%` : '';
    lines.push(
      `  KMS budget: ${s.budget.kmsBudget}/s for at most ${s.budget.maxTasks} tasks = ${s.budget.perTaskShare}/s per task${surge}; largest safe max ${largestSafeMax(s.budget)} (${s.budget.source})`,
    );
  }
  for (const p of s.policies)
    lines.push(`  policy:     ${p.name}: ${p.metric}${p.target !== undefined ? ` target ${p.target}` : ''}`);
  if (s.lastActivity)
    lines.push(
      `  last:       ${s.lastActivity.at ?? '?'} ${s.lastActivity.status ?? ''} ${s.lastActivity.description ?? ''}`.trimEnd(),
    );
  if (s.problems.length > 0) lines.push('', 'problems:', ...s.problems.map((p) => `  - ${p}`));
  return lines.join('\n');
}
