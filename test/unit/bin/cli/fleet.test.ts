/**
 * `keyless fleet status` and `keyless fleet scale`: the real SDK clients (Application Auto Scaling,
 * SSM) against a local fake of the JSON API, reached through the SDK's endpoint variables as the deploy
 * rehearsal reaches its endpoints. Scaling changes the scalable target without a redeploy, and a
 * maximum that would break the fleet KMS budget is refused with what to do.
 */
import { EXIT } from '../../../../bin/cli/errors';
import { fleetBudgetParameter } from '../../../../bin/cli/fleet';
import { main } from '../../../../bin/keyless';
import { type FakeAutoScaling, startFakeAutoScaling } from '../../../helpers/fake-application-auto-scaling';

const PROD = 'service/Keyless-Prod-Edge-ClusterEB0386A7-Qw3rTy/Keyless-Prod-Edge-ServiceD69D759B-AbCdEf';
const STAGING = 'service/Keyless-Staging-Edge-Cluster11111111-aaaa/Keyless-Staging-Edge-Service22222222-bbbb';

let fake: FakeAutoScaling;
const saved: NodeJS.ProcessEnv = {};
const SDK_ENV = [
  'AWS_ENDPOINT_URL_APPLICATION_AUTO_SCALING',
  'AWS_ENDPOINT_URL_SSM',
  'AWS_REGION',
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_PROFILE',
];

beforeAll(async () => {
  fake = await startFakeAutoScaling();
  for (const k of SDK_ENV) saved[k] = process.env[k];
  Object.assign(process.env, {
    AWS_ENDPOINT_URL_APPLICATION_AUTO_SCALING: fake.url,
    AWS_ENDPOINT_URL_SSM: fake.url,
    AWS_REGION: 'eu-west-1',
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
  });
  delete process.env.AWS_PROFILE;
});

afterAll(async () => {
  for (const k of SDK_ENV) {
    if (saved[k] === undefined) delete process.env[k];
    else process.env[k] = saved[k];
  }
  await fake.close();
});

beforeEach(() => {
  fake.targets.clear();
  fake.parameters.clear();
  fake.calls.length = 0;
  // Other services in the region, so discovery has to pick (and page through them).
  fake.targets.set('service/web/frontend', { ResourceId: 'service/web/frontend', MinCapacity: 1, MaxCapacity: 100 });
  fake.targets.set(STAGING, { ResourceId: STAGING, MinCapacity: 1, MaxCapacity: 2 });
  fake.targets.set('service/batch/worker', { ResourceId: 'service/batch/worker', MinCapacity: 0, MaxCapacity: 50 });
  fake.targets.set(PROD, { ResourceId: PROD, MinCapacity: 2, MaxCapacity: 10 });
  fake.parameters.set(fleetBudgetParameter('prod'), JSON.stringify({ kmsBudget: 400, maxTasks: 20 }));
});

async function run(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string; json<T>(): T }> {
  let stdout = '';
  let stderr = '';
  const code = await main(argv, {
    env: {},
    streams: { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) } },
  });
  return { code, stdout, stderr, json: <T>() => JSON.parse(stdout) as T };
}

const registered = (): Array<Record<string, unknown>> =>
  fake.calls.filter((c) => c.op === 'RegisterScalableTarget').map((c) => c.body);

describe('keyless fleet status', () => {
  test("finds the deployment's edge service among others and shows its range, budget, policies and last activity", async () => {
    const r = await run('fleet', 'status', '--deployment', 'prod', '--json');
    expect(r.code).toBe(EXIT.ok);
    const s = r.json<Record<string, unknown>>();
    expect(s).toMatchObject({ resourceId: PROD, minTasks: 2, maxTasks: 10, suspended: [], problems: [] });
    expect(s.budget).toEqual({
      kmsBudget: 400,
      maxTasks: 20,
      maximumPercent: 100,
      perTaskShare: 20,
      largestSafeMax: 20,
      source: `ssm:${fleetBudgetParameter('prod')}`,
    });
    expect(s.policies).toEqual([{ name: 'Cpu', metric: 'ECSServiceAverageCPUUtilization', target: 60 }]);
    expect(s.lastActivity).toMatchObject({ status: 'Successful', description: 'Setting desired count to 3.' });
    // Four targets on pages of two: discovery read every page.
    expect(fake.calls.filter((c) => c.op === 'DescribeScalableTargets').length).toBe(2);

    const human = await run('fleet', 'status', '--deployment', 'prod', '--quiet');
    expect(human.stdout).toContain(`fleet of prod: ${PROD}`);
    expect(human.stdout).toContain('min 2, max 10');
    expect(human.stdout).toContain('KMS budget: 400/s for at most 20 tasks = 20/s per task');
  });

  test("lists a missing budget record and a max above the budget's as problems (--check exits 2)", async () => {
    fake.parameters.clear();
    let r = await run('fleet', 'status', '--deployment', 'prod', '--check', '--quiet');
    expect(r.code).toBe(EXIT.refused);
    expect(r.stdout).toContain('the deployment records no fleet KMS budget (/keyless/prod/fleet)');

    fake.parameters.set(fleetBudgetParameter('prod'), JSON.stringify({ kmsBudget: 400, maxTasks: 8 }));
    r = await run('fleet', 'status', '--deployment', 'prod', '--check', '--quiet');
    expect(r.code).toBe(EXIT.refused);
    expect(r.stdout).toContain('max 10 tasks exceeds the 8 the KMS budget allows (split into 8 tasks)');
    expect(r.stdout).toContain('keyless fleet scale --max 8');
    expect((await run('fleet', 'status', '--deployment', 'prod', '--quiet')).code).toBe(EXIT.ok); // without --check: a report, not a failure
  });

  test('refuses when no service of the deployment is autoscaled in the region, and when several match', async () => {
    let r = await run('fleet', 'status', '--deployment', 'qa');
    expect(r.code).toBe(EXIT.refused);
    expect(r.stderr).toContain(
      'no ECS service of deployment qa is registered with Application Auto Scaling in this region',
    );
    expect(r.stderr).toContain('--service service/<cluster>/<service>');

    const second = 'service/Keyless-Prod-Edge-ClusterEB0386A7-Qw3rTy/Keyless-Prod-Edge-Service-Blue';
    fake.targets.set(second, { ResourceId: second, MinCapacity: 1, MaxCapacity: 1 });
    r = await run('fleet', 'status', '--deployment', 'prod');
    expect(r.code).toBe(EXIT.refused);
    expect(r.stderr).toContain('several ECS services match deployment prod');
    r = await run('fleet', 'status', '--deployment', 'prod', '--service', second, '--json');
    expect(r.code).toBe(EXIT.ok);
    expect(r.json<{ resourceId: string }>().resourceId).toBe(second);
  });
});

describe('keyless fleet scale', () => {
  test("changes the scalable target's min and max through RegisterScalableTarget", async () => {
    const r = await run('fleet', 'scale', '--deployment', 'prod', '--min', '4', '--max', '20', '--json', '--quiet');
    expect(r.code).toBe(EXIT.ok);
    expect(r.json()).toMatchObject({
      resourceId: PROD,
      before: { minTasks: 2, maxTasks: 10 },
      after: { minTasks: 4, maxTasks: 20 },
      changed: true,
      dryRun: false,
    });
    expect(registered()).toEqual([
      {
        ServiceNamespace: 'ecs',
        ScalableDimension: 'ecs:service:DesiredCount',
        ResourceId: PROD,
        MinCapacity: 4,
        MaxCapacity: 20,
      },
    ]);
    expect(fake.targets.get(PROD)).toMatchObject({ MinCapacity: 4, MaxCapacity: 20 });

    // One bound alone keeps the other; the same range again changes nothing.
    const min = await run('fleet', 'scale', '--deployment', 'prod', '--min', '3', '--quiet');
    expect(min.stdout).toContain(`set ${PROD} from 4..20 to 3..20 tasks`);
    const again = await run('fleet', 'scale', '--deployment', 'prod', '--min', '3', '--quiet');
    expect(again.stdout).toContain('already 3..20 tasks; nothing to do');
    expect(registered()).toHaveLength(2);
  });

  test('refuses a max that would break the fleet KMS budget, saying what to do, and changes nothing', async () => {
    const r = await run('fleet', 'scale', '--deployment', 'prod', '--max', '40');
    expect(r.code).toBe(EXIT.refused);
    expect(r.stderr).toContain('--max 40 would break the fleet KMS budget');
    expect(r.stderr).toContain('sized for at most 20 tasks (400/s ÷ 20 = 20/s per task)');
    expect(r.stderr).toContain('Keep --max at most 20, or redeploy the edge stack with maxTasks 40');
    expect(registered()).toEqual([]);
    expect(fake.targets.get(PROD)).toMatchObject({ MinCapacity: 2, MaxCapacity: 10 });
  });

  test('without a budget record, needs --fleet-max-tasks (and refuses one that disagrees with a record)', async () => {
    fake.parameters.clear();
    let r = await run('fleet', 'scale', '--deployment', 'prod', '--max', '12');
    expect(r.code).toBe(EXIT.refused);
    expect(r.stderr).toContain('the deployment records none (/keyless/prod/fleet)');
    r = await run('fleet', 'scale', '--deployment', 'prod', '--max', '12', '--fleet-max-tasks', '12', '--quiet');
    expect(r.code).toBe(EXIT.ok);
    expect(fake.targets.get(PROD)).toMatchObject({ MaxCapacity: 12 });

    fake.parameters.set(fleetBudgetParameter('prod'), JSON.stringify({ kmsBudget: 400, maxTasks: 20 }));
    r = await run('fleet', 'scale', '--deployment', 'prod', '--max', '12', '--fleet-max-tasks', '30');
    expect(r.code).toBe(EXIT.refused);
    expect(r.stderr).toContain("--fleet-max-tasks 30 disagrees with the deployment's record (20");

    fake.parameters.set(fleetBudgetParameter('prod'), '{"kmsBudget": "lots"}');
    r = await run('fleet', 'scale', '--deployment', 'prod', '--max', '12');
    expect(r.code).toBe(EXIT.refused);
    expect(r.stderr).toContain(
      '/keyless/prod/fleet is not {"kmsBudget": N, "maxTasks": M, "maximumPercent": P ≥ 100 (optional)}',
    );
  });

  test('counts the extra tasks of a rolling deployment (maximumPercent) against the budget', async () => {
    fake.parameters.set(
      fleetBudgetParameter('prod'),
      JSON.stringify({ kmsBudget: 400, maxTasks: 20, maximumPercent: 200 }),
    );
    let r = await run('fleet', 'scale', '--deployment', 'prod', '--max', '11');
    expect(r.code).toBe(EXIT.refused);
    expect(r.stderr).toContain('a deployment at 200% runs up to 22 of them at once');
    expect(r.stderr).toContain('Keep --max at most 10');
    r = await run('fleet', 'scale', '--deployment', 'prod', '--max', '10', '--quiet');
    expect(r.code).toBe(EXIT.ok);
    expect((await run('fleet', 'status', '--deployment', 'prod', '--quiet')).stdout).toContain(
      'deployments at 200%; largest safe max 10',
    );
  });

  test('--dry-run checks and prints the change without making it', async () => {
    const r = await run('fleet', 'scale', '--deployment', 'prod', '--max', '16', '--dry-run', '--quiet');
    expect(r.code).toBe(EXIT.ok);
    expect(r.stdout).toContain(`would set ${PROD} from 2..10 to 2..16 tasks`);
    expect(registered()).toEqual([]);
  });

  test.each([
    [['--min', '12'], 'min 12 is above max 10', 'The current max is 10: give --max too.'],
    [['--min', '5', '--max', '3'], 'min 5 is above max 3', 'Give a min that is at most the max.'],
    [[], 'nothing to change', 'Give --min N, --max M or both.'],
    [['--max', 'many'], '--max many is not a whole number', ''],
    [['--local'], 'the local stack has no fleet to scale', 'AWS_ENDPOINT_URL_APPLICATION_AUTO_SCALING'],
  ])('usage errors exit 64: %j', async (argv, message, hint) => {
    const r = await run('fleet', 'scale', '--deployment', 'prod', ...argv);
    expect(r.code).toBe(EXIT.usage);
    expect(r.stderr).toContain(message);
    expect(r.stderr).toContain(hint);
    expect(registered()).toEqual([]);
  });

  test('an unreachable endpoint exits 69', async () => {
    const url = process.env.AWS_ENDPOINT_URL_APPLICATION_AUTO_SCALING;
    process.env.AWS_ENDPOINT_URL_APPLICATION_AUTO_SCALING = 'http://127.0.0.1:1';
    try {
      const r = await run('fleet', 'status', '--deployment', 'prod');
      expect(r.code).toBe(EXIT.unavailable);
      expect(r.stderr).toContain('Application Auto Scaling DescribeScalableTargets: the endpoint is unreachable');
    } finally {
      process.env.AWS_ENDPOINT_URL_APPLICATION_AUTO_SCALING = url;
    }
  });

  test('--help describes the budget rule; keyless fleet lists both commands', async () => {
    const h = await run('fleet', 'scale', '--help');
    expect(h.code).toBe(EXIT.ok);
    expect(h.stdout).toContain('usage: keyless fleet scale [options]');
    expect(h.stdout).toContain('KEYLESS_FLEET_MAX_TASKS');
    expect(h.stdout).toMatch(/--min N\s+new minimum task count/);
    const g = await run('fleet', '--help');
    expect(g.code).toBe(EXIT.ok);
    expect(g.stdout).toContain('fleet status');
    expect(g.stdout).toContain('fleet scale');
  });
});
