/**
 * The deploy rehearsal: runs what `cdk synth` produced on the local stack, as AWS would run it, and
 * walks docs/deploy.md's operator path with the real `keyless` CLI (docs/rehearsal.md).
 *
 *   synth → CloudFormation's part (keys, aliases, parameters) → key service from its Lambda asset in
 *   every region → edge tasks from the task definition and the image build → first deploy → keys
 *   present → csr → cert issue (dev CA) → cert import → served (curl, openssl) → rotate (client loop,
 *   0 failed handshakes) → failover region signs the rotated certificate → scale to a second task,
 *   each resuming the other's tickets → IAM against the observed calls → metrics against the
 *   dashboards and alarms.
 *
 * Every problem is a finding named by its check, so tests (and the closing report) can say which.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { CreateAliasCommand, CreateKeyCommand, GetKeyPolicyCommand, KMSClient } from '@aws-sdk/client-kms';

import { startDemoOrigin } from '../../local/demo-origin';
import { DEFAULT_CA_ALIAS, issueDevCa } from '../../local/dev-pki';
import type { RecordedCall } from '../../local/call-log';
import { clientLoop, handshake, runPeer } from './clients';
import { checkIam } from './iam';
import { buildImage, type BuiltImage } from './image';
import {
  alarmQueries,
  awsPublished,
  dashboardQueries,
  emittedMetrics,
  unmatchedQueries,
  type EmittedMetric,
  type MetricQuery,
} from './metrics';
import { startLocalNlb, type LocalNlb } from './nlb';
import { StackResolver } from './cfn';
import { readAssembly, synthesize, SynthError, type Assembly } from './synth';
import {
  ACCESS_KEYS,
  ACCOUNT,
  credentials,
  DEPLOYED_PHYSICAL_IDS,
  deployStack,
  freePort,
  hostScript,
  startEdgeTask,
  startKeyService,
  startWorld,
  stopProcess,
  type DeployedStack,
  type EdgeTask,
  type World,
} from './world';

export type CheckName =
  | 'synth'
  | 'deploy'
  | 'runtime'
  | 'first-deploy'
  | 'walk'
  | 'serve'
  | 'rotation'
  | 'failover'
  | 'scale'
  | 'resumption'
  | 'iam-denied'
  | 'iam-unused'
  | 'metrics-unmatched';

/** What each check would have caught in issue terms (for the report). */
export const CHECKS: Record<CheckName, string> = {
  synth: 'cdk synth fails or refuses the configuration',
  deploy: 'a resource cannot be created as the template declares it',
  runtime: 'the Lambda runtime or image does not match what runs here',
  'first-deploy': 'the documented first deploy cannot serve (tasks exit, rollback blocked)',
  walk: 'a documented operator step fails',
  serve: 'the edge does not serve the imported certificate to curl/openssl',
  rotation: 'handshakes fail while keyless rotate runs',
  failover: 'the failover region cannot sign for the rotated certificate',
  scale: 'a second task from the same task definition does not serve',
  resumption: "a task cannot resume another task's tickets",
  'iam-denied': 'AWS would deny a call the system made',
  'iam-unused': 'a permission is granted but never used',
  'metrics-unmatched': 'a dashboard or alarm metric matches nothing the code emits',
};

export interface Finding {
  check: CheckName;
  message: string;
}

export interface RehearsalOptions {
  /** Label of the run, e.g. "sample" or "two-region". */
  name: string;
  repo: string;
  /** Scratch directory (cdk.out, image build, CLI files). */
  workDir: string;
  /** Merged over the sample configuration in cdk.json (written to a file for `-c keyless:configFile`). */
  config?: Record<string, unknown>;
  /** Region of environment-agnostic stacks (the CLI's default region). */
  defaultRegion?: string;
  /** Reuse an already synthesized assembly (tests that change templates). */
  assemblyDir?: string;
  /** Test hook: change the synthesized templates before the deploy. */
  mutate?: (assembly: Assembly) => void;
  /** Skip the operator walk after the first deploy (only synth, deploy, IAM and metrics of what ran). */
  walk?: boolean;
  /**
   * Test hook: rotate as the CLI did before multi-Region rotation (no KEYLESS_REPLICA_REGIONS, no
   * replica key policies), so the new key generation exists in the primary region only.
   */
  singleRegionRotation?: boolean;
  log?: (line: string) => void;
}

export interface RehearsalResult {
  name: string;
  findings: Finding[];
  steps: string[];
  notes: string[];
  calls: RecordedCall[];
  emitted: EmittedMetric[];
  queries: MetricQuery[];
  assemblyDir?: string;
  iamEvaluated: number;
  /** Every stdout line of every process (for re-checking metrics). */
  stdout: { source: string; line: string }[];
  /** Key policies as the local KMS held them, by key ARN (for re-checking IAM). */
  keyPolicies: Map<string, unknown>;
  /** The walk reached its end (only then is a grant never used a finding). */
  walked: boolean;
}

const HOSTNAME = 'www.rehearsal.test';
const SLOT = 'www';
/** Certificate store refresh of the rehearsal's edges (the task definition leaves the 60 s default; 5 s is the edge's minimum with SSM). */
const REFRESH_SECONDS = 5;

const IMAGES = new Map<string, Promise<BuiltImage>>();

export async function rehearse(opts: RehearsalOptions): Promise<RehearsalResult> {
  const log = opts.log ?? (() => undefined);
  const result: RehearsalResult = {
    name: opts.name,
    findings: [],
    steps: [],
    notes: [],
    calls: [],
    emitted: [],
    queries: [],
    iamEvaluated: 0,
    stdout: [],
    keyPolicies: new Map(),
    walked: false,
  };
  const finding = (check: CheckName, message: string): void => {
    result.findings.push({ check, message });
    log(`  ✗ ${check}: ${message}`);
  };
  const stepTimes: { text: string; at: number }[] = [];
  const step = (text: string): void => {
    result.steps.push(text);
    stepTimes.push({ text, at: Date.now() });
    log(`  · ${text}`);
  };
  fs.mkdirSync(opts.workDir, { recursive: true });

  // 1. Synthesize.
  let assembly: Assembly;
  try {
    if (opts.assemblyDir) {
      assembly = readAssembly(opts.assemblyDir);
    } else {
      let configFile: string | undefined;
      if (opts.config) {
        configFile = path.join(opts.workDir, 'config.json');
        fs.writeFileSync(configFile, JSON.stringify(opts.config, null, 2));
      }
      assembly = await synthesize(opts.repo, path.join(opts.workDir, 'cdk.out'), configFile);
    }
    step(`synthesized ${assembly.stacks.map((s) => s.name).join(', ')}`);
  } catch (e) {
    finding(
      'synth',
      e instanceof SynthError
        ? `${e.message}: ${e.output.trim().split('\n').slice(-6).join(' | ')}`
        : (e as Error).message,
    );
    return result;
  }
  result.assemblyDir = assembly.dir;
  opts.mutate?.(assembly);

  const primaryRegion = assembly.stacks.find((s) => s.region)?.region ?? opts.defaultRegion ?? 'eu-west-1';
  const world = await startWorld(primaryRegion);
  const origin = await startDemoOrigin({ port: 0, host: '127.0.0.1' });
  const edges: EdgeTask[] = [];
  const nlbs: LocalNlb[] = [];
  try {
    // The dev CA (a fixture: the operator's CA, outside the deployment).
    const caPem = await createDevCa(world, primaryRegion, path.join(opts.workDir, 'dev'));

    // 2. CloudFormation's part, stack by stack.
    const outputs = new Map<string, Record<string, string>>();
    const deployed: DeployedStack[] = [];
    for (const s of assembly.stacks) {
      try {
        deployed.push(await deployStack(world, s.name, s.region ?? primaryRegion, s.template, outputs, result.notes));
      } catch (e) {
        finding('deploy', `${s.name}: ${(e as Error).message}`);
        return result;
      }
    }
    for (const n of result.notes) finding('deploy', n);
    step(
      `deployed ${deployed.length} stacks (KMS keys, aliases, parameters) in ${[...new Set(deployed.map((d) => d.region))].join(', ')}`,
    );

    // 3. The key service of every region, from its asset.
    for (const d of deployed) {
      for (const [id, res] of Object.entries(d.template.Resources)) {
        if (res.Type !== 'AWS::Lambda::Function') continue;
        const p = res.Properties ?? {};
        const env =
          (d.resolver.resolve(p.Environment) as { Variables?: Record<string, string> } | undefined)?.Variables ?? {};
        if (env.KEYLESS_KEYS === undefined) continue;
        const runtime = String(p.Runtime);
        const major = /^nodejs(\d+)\.x$/.exec(runtime)?.[1];
        if (major !== process.versions.node.split('.')[0])
          finding(
            'runtime',
            `${d.name}/${id}: Runtime ${runtime}, but the rehearsal runs Node ${process.versions.node}`,
          );
        const s3Key = String((p.Code as { S3Key?: string }).S3Key ?? '');
        const assetDir = assembly.fileAssets.get(s3Key.replace(/\.zip$/, ''));
        if (!assetDir) {
          finding('deploy', `${d.name}/${id}: code asset ${s3Key} is not in the cloud assembly`);
          continue;
        }
        const fnName = d.resolver.str({ Ref: id });
        const alias = Object.values(d.template.Resources).find(
          (r) =>
            r.Type === 'AWS::Lambda::Alias' &&
            JSON.stringify(r.Properties?.FunctionName) === JSON.stringify({ Ref: id }),
        );
        const qualifier = alias ? d.resolver.str(alias.Properties!.Name) : undefined;
        try {
          await startKeyService(world, {
            region: d.region,
            assetDir,
            handler: String(p.Handler),
            functionName: qualifier ? `${fnName}:${qualifier}` : fnName,
            env,
            timeoutMs: Number(p.Timeout ?? 3) * 1000,
            hostScript: hostScript(opts.repo),
          });
          step(
            `key service ${fnName}${qualifier ? `:${qualifier}` : ''} in ${d.region} from ${path.basename(assetDir)} (${String(p.Handler)}, ${runtime})`,
          );
        } catch (e) {
          finding('deploy', `${d.name}/${id}: ${(e as Error).message}`);
        }
      }
    }

    // 4. The edge as the task definition says.
    const edgeStack = deployed.find((d) =>
      Object.values(d.template.Resources).some((r) => r.Type === 'AWS::ECS::TaskDefinition'),
    );
    if (!edgeStack) {
      finding('deploy', 'no stack has an ECS task definition');
      return result;
    }
    const task = edgeTask(edgeStack);
    const imageAsset = assembly.imageAssets.get(task.imageHash);
    if (!imageAsset) {
      finding('deploy', `the task definition's image ${task.imageHash} is not an asset of the cloud assembly`);
      return result;
    }
    let image: BuiltImage;
    try {
      // One build per image asset in a process (a rehearsal on the same assembly reuses it).
      const key = `${imageAsset.context}\u0000${imageAsset.dockerfile}`;
      if (!IMAGES.has(key))
        IMAGES.set(
          key,
          buildImage(imageAsset.context, imageAsset.dockerfile, opts.repo, path.join(opts.workDir, 'image'), log),
        );
      image = await IMAGES.get(key)!;
      const nodeArg = /ARG NODE_VERSION=(\d+)/.exec(
        fs.readFileSync(path.join(imageAsset.context, imageAsset.dockerfile), 'utf8'),
      )?.[1];
      if (nodeArg && nodeArg !== process.versions.node.split('.')[0])
        finding('runtime', `the image runs Node ${nodeArg}, the rehearsal Node ${process.versions.node}`);
      step(`built the image from ${imageAsset.dockerfile} (CMD ${image.cmd.join(' ')})`);
    } catch (e) {
      finding('deploy', `image build: ${(e as Error).message}`);
      return result;
    }
    const nlb = await startLocalNlb({ proxyProtocol: task.proxyProtocol });
    nlbs.push(nlb);
    const startTask = async (label: string): Promise<EdgeTask> => {
      const env = {
        ...task.environment,
        ...image.env,
        // Deviations, each for a reason (docs/rehearsal.md): one host instead of awsvpc addresses,
        // the demo origin for the configured origin's DNS name, a short store refresh.
        KEYLESS_EDGE_HOST: '127.0.0.1',
        KEYLESS_EDGE_PORT: String(await freePort()),
        KEYLESS_ADMIN_HOST: '127.0.0.1',
        KEYLESS_ADMIN_PORT: String(await freePort()),
        KEYLESS_ORIGIN: task.environment.KEYLESS_ORIGIN?.startsWith('tcp://')
          ? `tcp://127.0.0.1:${origin.port}`
          : origin.url,
        KEYLESS_CERT_REFRESH_SECONDS: String(REFRESH_SECONDS),
        // What Fargate adds to every task's environment (the edge turns EMF on when it sees it).
        AWS_REGION: edgeStack.region,
        AWS_DEFAULT_REGION: edgeStack.region,
        AWS_EXECUTION_ENV: 'AWS_ECS_FARGATE',
        ECS_CONTAINER_METADATA_URI_V4: 'http://169.254.170.2/v4/rehearsal-task',
        AWS_ACCESS_KEY_ID: ACCESS_KEYS.edge,
        AWS_SECRET_ACCESS_KEY: 'rehearsal',
        AWS_ENDPOINT_URL_KMS: world.kms.url,
        AWS_ENDPOINT_URL_LAMBDA: world.lambdaUrl,
        AWS_ENDPOINT_URL_SSM: world.ssm.url,
      };
      const t = await startEdgeTask(world, { root: image.root, cmd: image.cmd, env, label });
      edges.push(t);
      nlb.targets.push({ port: t.tlsPort });
      return t;
    };

    // 5. First deploy: ECS starts the service's desired count.
    step(
      `first deploy: the service starts ${task.desiredCount} task(s); NLB deletion protection ${task.deletionProtection ? 'on' : 'off'}`,
    );
    for (let i = 0; i < Math.min(task.desiredCount, 2); i++) {
      try {
        await startTask(`edge task ${i + 1}`);
      } catch (e) {
        finding(
          'first-deploy',
          `${(e as Error).message}. ECS would stop and replace it until the circuit breaker${task.circuitBreakerRollback ? ' rolls the deploy back' : ' fails the service'}${task.deletionProtection ? ", and the NLB's deletion protection leaves that rollback in ROLLBACK_FAILED" : ''}`,
        );
        break;
      }
    }
    if (opts.walk === false) return result;

    // 6. The operator's path (docs/deploy.md, docs/cli.md).
    const keyServiceRegions = [...new Set(deployed.filter((d) => d.outputs.KeyServiceAliasArn).map((d) => d.region))];
    // docs/rotation.md, "Multi-region deployments": the other regions on every step, from the primary.
    const replicaRegions = opts.singleRegionRotation ? [] : keyServiceRegions.filter((r) => r !== primaryRegion);
    const cli = operatorCli(
      opts.repo,
      opts.workDir,
      world,
      primaryRegion,
      task.environment.KEYLESS_DEPLOYMENT ?? 'dev',
      replicaRegions,
    );
    const keyName = firstKmsKey(deployed);
    const must = async (what: string, args: string[]): Promise<string | undefined> => {
      const r = await cli(args);
      if (r.code !== 0) {
        finding(
          'walk',
          `keyless ${args.join(' ')} exited ${r.code}: ${r.out.trim().split('\n').slice(-2).join(' | ')}`,
        );
        return undefined;
      }
      step(what);
      return r.out;
    };
    const status = await must("keyless status: the deployment's keys are present", ['status', '--json', '--quiet']);
    if (status !== undefined && keyName && !status.includes(keyName))
      finding('walk', `keyless status does not list key ${keyName}`);
    if (!keyName) {
      finding('walk', 'the configuration has no kms key to issue a certificate for');
      return result;
    }
    const files = (n: string): string => path.join(opts.workDir, n);
    if (
      (await must(`keyless csr --key ${keyName}: signed by KMS`, [
        'csr',
        '--key',
        keyName,
        '--dns',
        HOSTNAME,
        '--out',
        files('www.csr'),
        '--quiet',
      ])) === undefined
    )
      return result;
    if (
      (await must('keyless cert issue --dev-ca', [
        'cert',
        'issue',
        '--dev-ca',
        '--csr',
        files('www.csr'),
        '--days',
        '30',
        '--out',
        files('www.chain.pem'),
        '--quiet',
      ])) === undefined
    )
      return result;
    if (
      (await must(`keyless cert import --live into ssm:${task.environment.KEYLESS_CERT_SSM_PREFIX}`, [
        'cert',
        'import',
        '--key',
        keyName,
        '--slot',
        SLOT,
        '--chain',
        files('www.chain.pem'),
        '--live',
        '--quiet',
      ])) === undefined
    )
      return result;

    // ECS keeps replacing failed tasks (or the operator raises the count from 0): the service reaches one task.
    if (!edges.some((e) => e.child.exitCode === null)) {
      try {
        await startTask('edge task (after import)');
        step('a new task starts now that a certificate exists');
      } catch (e) {
        finding('serve', `an edge task still cannot start after cert import: ${(e as Error).message}`);
        return result;
      }
    }
    let oldLeaf: string | undefined;
    const served = await waitFor(
      async () => {
        const h = await handshake(nlb.port, HOSTNAME, caPem);
        oldLeaf = h.leaf;
        return h.ok;
      },
      5 * REFRESH_SECONDS * 1000 + 15_000,
    );
    if (!served) {
      finding('serve', `no handshake for ${HOSTNAME} succeeds through the NLB after import`);
      return result;
    }
    await sleep(1500); // let the task's key-operation bucket refill after the probes above
    await realPeers(nlb.port, caPem, files('dev/ca.pem'), step, (m) => finding('serve', m));
    // A client the edge must refuse (TLS 1.2 with only a CBC suite): an alert, which the dashboards count.
    const refused = await handshake(nlb.port, HOSTNAME, caPem, undefined, 15_000, {
      maxVersion: 'TLSv1.2',
      ciphers: 'AES128-SHA',
    });
    if (refused.ok) finding('serve', 'a TLS 1.2 client offering only AES128-SHA (CBC) completed a handshake');
    else step('a client with no common cipher suite is refused with an alert');
    // A request the key service must refuse with a typed error (which its error metrics count).
    const typed = await invokeKeyService(
      world.lambdaUrl,
      task.environment.KEYLESS_KEY_SERVICES?.split(',')[0] ?? '',
      edgeStack.region,
      { v: 1, op: 'no-such-operation' },
    );
    if (typed && /"error"|bad_request|unsupported/.test(typed))
      step('a malformed key-service request gets a typed error');
    else finding('walk', `a malformed key-service request did not get a typed error: ${String(typed).slice(0, 200)}`);

    // 7. Rotation, while clients keep connecting.
    const regions = [...new Set(deployed.filter((d) => d.outputs.KeyServiceAliasArn).map((d) => d.region))];
    const policyFile = files('key-policy.json');
    const keyPolicy = await cdkKeyPolicy(world, primaryRegion, deployed, keyName);
    if (keyPolicy) fs.writeFileSync(policyFile, keyPolicy);
    // Each replica region's key policy names its own role and endpoint (--replica-key-policy).
    const replicaPolicyArgs: string[] = [];
    for (const r of regions.filter((x) => x !== primaryRegion && !opts.singleRegionRotation)) {
      const p = await cdkKeyPolicy(world, r, deployed, keyName).catch(() => undefined);
      if (!p) continue;
      fs.writeFileSync(files(`key-policy-${r}.json`), p);
      replicaPolicyArgs.push('--replica-key-policy', `${r}=${files(`key-policy-${r}.json`)}`);
    }
    await sleep(1500); // the probes above drew on the task's key-operation budget: let it refill
    const loop = clientLoop(nlb.port, HOSTNAME, caPem, loopIntervalMs(task.environment));
    const rotateArgs = (s: string, extra: string[] = []): string[] => [
      'rotate',
      SLOT,
      s,
      '--quiet',
      '--refresh-seconds',
      String(REFRESH_SECONDS),
      ...extra,
    ];
    let rotated = true;
    for (const [s, extra] of [
      ['new-key', [...(keyPolicy ? ['--key-policy', policyFile] : []), ...replicaPolicyArgs]],
      ['issue', ['--dev-ca', '--days', '30']],
      ['promote', []],
    ] as [string, string[]][]) {
      if ((await must(`keyless rotate ${SLOT} ${s}`, rotateArgs(s, extra))) === undefined) {
        rotated = false;
        break;
      }
    }
    if (rotated) {
      // Every task serves the new certificate within its refresh; then the old one may go.
      // Watched through the loop's own handshakes: an extra client would compete for the task's budget.
      const switched = await waitFor(
        async () => loop.latestLeaf() !== undefined && loop.latestLeaf() !== oldLeaf,
        5 * REFRESH_SECONDS * 1000 + 15_000,
      );
      if (!switched) finding('rotation', 'after promote the edge still serves the old certificate');
      const drainMs = (2 * REFRESH_SECONDS + 10) * 1000;
      await sleep(drainMs);
      for (let i = 0; i < 5; i++) {
        const r = await cli(rotateArgs('retire'));
        if (r.code === 0) {
          step(`keyless rotate ${SLOT} retire`);
          break;
        }
        if (i === 4)
          finding(
            'walk',
            `keyless rotate ${SLOT} retire exited ${r.code}: ${r.out.trim().split('\n').slice(-2).join(' | ')}`,
          );
        await sleep(3000);
      }
    }
    await sleep(REFRESH_SECONDS * 2000);
    const stats = await loop.stop();
    if (stats.failed > 0) {
      // Which operator step each failure followed.
      const after = (at: number): string => [...stepTimes].reverse().find((s) => s.at <= at)?.text ?? 'the start';
      const byStep = new Map<string, number>();
      for (const e of stats.errors)
        byStep.set(
          `${e.error.trim()} after "${after(e.at)}"`,
          (byStep.get(`${e.error.trim()} after "${after(e.at)}"`) ?? 0) + 1,
        );
      finding(
        'rotation',
        `${stats.failed} of ${stats.ok + stats.failed} handshakes failed during rotation: ${[...byStep].map(([k, n]) => `${n}× ${k}`).join('; ')}`,
      );
    } else
      step(`client loop during rotation: ${stats.ok} handshakes, 0 failed, ${stats.leaves.size} certificate(s) seen`);

    // 8. Failover: every other region's key service signs for the rotated certificate.
    if (regions.length > 1) {
      world.down.add(regions[0]);
      let ok = 0;
      let failed = 0;
      const errors = new Set<string>();
      for (let i = 0; i < 6; i++) {
        await sleep(1000); // one full handshake per budget refill: a refusal here must be the failover's
        const h = await handshake(nlb.port, HOSTNAME, caPem);
        if (h.ok) ok++;
        else {
          failed++;
          errors.add(String(h.error).slice(0, 120));
        }
      }
      world.down.delete(regions[0]);
      const ksErrors = world.stdout.filter((l) => l.source.startsWith('edge') && /unknown_key/i.test(l.line)).slice(-1);
      if (failed > 0)
        finding(
          'failover',
          `with the ${regions[0]} key service down, ${failed} of ${ok + failed} handshakes for the rotated certificate failed in ${regions.slice(1).join(', ')} (${[...errors].join('; ')})${ksErrors.length ? `: ${ksErrors.map((l) => l.line.slice(0, 300)).join(' | ')}` : ''}`,
        );
      else
        step(
          `failover: ${regions.slice(1).join(', ')} signs for the rotated certificate (${ok} handshakes with ${regions[0]} down)`,
        );
      // The circuit breaker lets the first region back in after its open interval.
      await sleep(5000);
    }

    // 9. Scale: a second task from the same task definition; each resumes the other's tickets.
    if (edges.filter((e) => e.child.exitCode === null).length < 2) {
      try {
        await startTask('edge task 2 (scale-out)');
      } catch (e) {
        finding('scale', `a second task does not start: ${(e as Error).message}`);
      }
    }
    const live = edges.filter((e) => e.child.exitCode === null).slice(0, 2);
    if (live.length === 2) {
      const pinned = await Promise.all(
        live.map(async (t) => {
          const n = await startLocalNlb({ proxyProtocol: task.proxyProtocol });
          n.targets.push({ port: t.tlsPort });
          nlbs.push(n);
          return n;
        }),
      );
      await sleep(1500);
      const a = await handshake(pinned[0].port, HOSTNAME, caPem);
      const b = await handshake(pinned[1].port, HOSTNAME, caPem);
      if (!a.ok || !b.ok)
        finding(
          'scale',
          `not both tasks serve: ${[a, b].map((h, i) => `task ${i + 1} ${h.ok ? 'ok' : h.error}`).join(', ')}`,
        );
      else step('scale: both tasks serve');
      for (const [from, to, label] of [
        [0, 1, "task 2 resumes task 1's ticket"],
        [1, 0, "task 1 resumes task 2's ticket"],
      ] as [number, number, string][]) {
        await sleep(1000); // one full handshake per task's budget refill
        const first = await handshake(pinned[from].port, HOSTNAME, caPem);
        const again = first.session ? await handshake(pinned[to].port, HOSTNAME, caPem, first.session) : undefined;
        if (!again?.ok || !again.reused)
          finding(
            'resumption',
            `${label}: ${!first.ok ? `the first handshake failed (${first.error})` : !first.session ? 'no ticket was issued' : !again?.ok ? `handshake failed (${again?.error})` : 'full handshake instead of resumption'}`,
          );
        else step(label);
      }
    }
    result.walked = true;
  } finally {
    for (const e of edges) await stopProcess(e.child);
    for (const n of nlbs) await n.close();
    await origin.close();
    // IAM and metrics are checked on what was recorded, whatever happened above.
    result.calls = [...world.log.calls];
    result.stdout = [...world.stdout];
    result.keyPolicies = await keyPoliciesOf(world, result.calls);
    await finalChecks(result, assembly, primaryRegion, finding, step).catch((e: Error) =>
      finding('deploy', `final checks failed: ${e.message}`),
    );
    await world.close();
  }
  return result;
}

/**
 * The checks on what was recorded, again, on changed templates (tests inject a missing permission or
 * a dashboard query that cannot match): returns the IAM and metrics findings only.
 */
export async function recheck(result: RehearsalResult, mutate: (assembly: Assembly) => void): Promise<Finding[]> {
  const assembly = readAssembly(result.assemblyDir!);
  mutate(assembly);
  const copy: RehearsalResult = { ...result, findings: [], steps: [], queries: [] };
  const region = assembly.stacks.find((s) => s.region)?.region ?? 'eu-west-1';
  await finalChecks(
    copy,
    assembly,
    region,
    (check, message) => copy.findings.push({ check, message }),
    () => undefined,
  );
  return copy.findings;
}

async function keyPoliciesOf(world: World, calls: readonly RecordedCall[]): Promise<Map<string, unknown>> {
  const out = new Map<string, unknown>();
  const arns = new Set(
    calls.filter((c) => c.service === 'kms').flatMap((c) => c.resources.filter((r) => r.includes(':key/'))),
  );
  for (const arn of arns) {
    const kms = new KMSClient({
      region: arn.split(':')[3],
      endpoint: world.kms.url,
      credentials: credentials(ACCESS_KEYS.cloudformation),
      maxAttempts: 1,
    });
    try {
      const p = await kms.send(new GetKeyPolicyCommand({ KeyId: arn, PolicyName: 'default' }));
      if (p.Policy) out.set(arn, JSON.parse(p.Policy));
    } catch {
      // a key the local KMS cannot describe is evaluated with KMS's default policy
    } finally {
      kms.destroy();
    }
  }
  return out;
}

/** IAM against the calls, metrics against the dashboards and alarms. */
async function finalChecks(
  result: RehearsalResult,
  assembly: Assembly,
  primaryRegion: string,
  finding: (c: CheckName, m: string) => void,
  step: (t: string) => void,
): Promise<void> {
  const outputs = new Map<string, Record<string, string>>();
  // Re-resolve the templates (as deployed) for their policies.
  const stacks: DeployedStack[] = [];
  for (const s of assembly.stacks) {
    const region = s.region ?? primaryRegion;
    // The ids the deployment gave its resources (a key's ARN in a policy must be the key that exists).
    const env = {
      stackName: s.name,
      account: ACCOUNT,
      region,
      physical: new Map(DEPLOYED_PHYSICAL_IDS.get(s.name) ?? []),
      stackOutputs: outputs,
    };
    const resolver = new StackResolver(s.template, env);
    const out: Record<string, string> = {};
    for (const [k, o] of Object.entries(s.template.Outputs ?? {})) {
      try {
        out[k] = String(resolver.resolve(o.Value));
      } catch {
        // outputs naming physical ids of keys are not needed for policies
      }
    }
    outputs.set(s.name, out);
    stacks.push({ name: s.name, region, template: s.template, resolver, outputs: out });
  }
  const edgeRegion =
    stacks.find((s) => Object.values(s.template.Resources).some((r) => r.Type === 'AWS::ECS::TaskDefinition'))
      ?.region ?? primaryRegion;
  const iam = await checkIam({
    stacks,
    calls: result.calls.filter((c) => c.principal !== 'cloudformation'),
    keyPolicies: result.keyPolicies as never,
    edgeRegion,
  });
  result.iamEvaluated = iam.evaluated;
  // A grant never used is only a finding when the whole walk ran (otherwise nothing had the chance).
  for (const f of iam.findings) if (f.check === 'iam-denied' || result.walked) finding(f.check, f.message);
  step(`IAM: ${iam.evaluated} calls evaluated against the synthesized policies`);

  result.emitted = emittedMetrics(result.stdout);
  for (const s of stacks) {
    for (const [id, r] of Object.entries(s.template.Resources)) {
      if (r.Type === 'AWS::CloudWatch::Dashboard') {
        const body = s.resolver.str(r.Properties!.DashboardBody);
        result.queries.push(
          ...dashboardQueries(body, r.Properties!.DashboardName ? s.resolver.str(r.Properties!.DashboardName) : id),
        );
      }
      if (r.Type === 'AWS::CloudWatch::Alarm') {
        try {
          result.queries.push(
            ...alarmQueries(s.resolver.resolve(r.Properties) as Record<string, unknown>, `${s.name}/${id}`),
          );
        } catch {
          // alarms on AWS/* metrics may name physical ids the rehearsal does not create; they are not checked anyway
        }
      }
    }
  }
  for (const q of unmatchedQueries(result.queries, result.emitted)) {
    finding(
      'metrics-unmatched',
      `${q.where}: ${q.text} matches no emitted metric (${q.namespace} ${q.name ?? '*'} with dimensions {${q.dimensionNames.join(',')}}); emitted in ${q.namespace}: ${describeEmitted(result.emitted, q)}`,
    );
  }
  step(
    `metrics: ${result.emitted.length} emitted metrics, ${result.queries.filter((q) => !awsPublished(q.namespace)).length} dashboard/alarm queries on them`,
  );
}

function describeEmitted(emitted: readonly EmittedMetric[], q: MetricQuery): string {
  const same = emitted.filter((m) => m.namespace === q.namespace && (q.name === undefined || m.name === q.name));
  return same.length === 0
    ? 'nothing'
    : [...new Set(same.map((m) => `${m.name}{${Object.keys(m.dimensions).sort().join(',')}}`))].slice(0, 4).join(', ');
}

interface TaskFacts {
  environment: Record<string, string>;
  imageHash: string;
  desiredCount: number;
  proxyProtocol: boolean;
  deletionProtection: boolean;
  circuitBreakerRollback: boolean;
}

function edgeTask(stack: DeployedStack): TaskFacts {
  const res = Object.values(stack.template.Resources);
  const td = res.find((r) => r.Type === 'AWS::ECS::TaskDefinition')!;
  const container = stack.resolver.resolve((td.Properties!.ContainerDefinitions as unknown[])[0]) as {
    Environment?: { Name: string; Value: string }[];
    Image: string;
  };
  const environment: Record<string, string> = {};
  for (const e of container.Environment ?? []) environment[e.Name] = String(e.Value);
  const service = res.find((r) => r.Type === 'AWS::ECS::Service');
  const scalable = res.find((r) => r.Type === 'AWS::ApplicationAutoScaling::ScalableTarget');
  const desired = service?.Properties?.DesiredCount ?? scalable?.Properties?.MinCapacity ?? 1;
  const tg = res.find((r) => r.Type === 'AWS::ElasticLoadBalancingV2::TargetGroup');
  const lb = res.find((r) => r.Type === 'AWS::ElasticLoadBalancingV2::LoadBalancer');
  const attr = (list: unknown, key: string): string | undefined =>
    ((list as { Key: string; Value: string }[] | undefined) ?? []).find((a) => a.Key === key)?.Value;
  const breaker = (
    service?.Properties?.DeploymentConfiguration as { DeploymentCircuitBreaker?: { Rollback?: boolean } } | undefined
  )?.DeploymentCircuitBreaker;
  return {
    environment,
    imageHash: container.Image.split(':').pop()!,
    desiredCount: Number(stack.resolver.resolve(desired)),
    proxyProtocol: attr(tg?.Properties?.TargetGroupAttributes, 'proxy_protocol_v2.enabled') === 'true',
    deletionProtection: attr(lb?.Properties?.LoadBalancerAttributes, 'deletion_protection.enabled') === 'true',
    circuitBreakerRollback: breaker?.Rollback === true,
  };
}

function firstKmsKey(deployed: readonly DeployedStack[]): string | undefined {
  for (const d of deployed) {
    for (const r of Object.values(d.template.Resources)) {
      if (r.Type !== 'AWS::KMS::Alias') continue;
      const m = /\/keys\/([A-Za-z0-9_-]+)$/.exec(d.resolver.str(r.Properties!.AliasName));
      if (m) return m[1];
    }
  }
  return undefined;
}

/** The slot's CDK key policy, as `aws kms get-key-policy` prints it (docs/rotation.md). */
async function cdkKeyPolicy(
  world: World,
  region: string,
  deployed: readonly DeployedStack[],
  keyName: string,
): Promise<string | undefined> {
  const alias = deployed
    .flatMap((d) =>
      Object.values(d.template.Resources)
        .filter((r) => r.Type === 'AWS::KMS::Alias')
        .map((r) => d.resolver.str(r.Properties!.AliasName)),
    )
    .find((a) => a.endsWith(`/keys/${keyName}`));
  if (!alias) return undefined;
  const kms = new KMSClient({
    region,
    endpoint: world.kms.url,
    credentials: credentials(ACCESS_KEYS.operator),
    maxAttempts: 1,
  });
  try {
    const { DescribeKeyCommand } = await import('@aws-sdk/client-kms');
    const key = await kms.send(new DescribeKeyCommand({ KeyId: alias }));
    return (await kms.send(new GetKeyPolicyCommand({ KeyId: key.KeyMetadata!.KeyId!, PolicyName: 'default' }))).Policy;
  } finally {
    kms.destroy();
  }
}

async function createDevCa(world: World, region: string, dir: string): Promise<string> {
  fs.mkdirSync(dir, { recursive: true });
  const kms = new KMSClient({
    region,
    endpoint: world.kms.url,
    credentials: credentials(ACCESS_KEYS.cloudformation),
    maxAttempts: 1,
  });
  try {
    const key = await kms.send(
      new CreateKeyCommand({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY', Description: 'rehearsal dev CA' }),
    );
    await kms.send(new CreateAliasCommand({ AliasName: DEFAULT_CA_ALIAS, TargetKeyId: key.KeyMetadata!.KeyId! }));
    const pem = await issueDevCa(kms, DEFAULT_CA_ALIAS, { subject: 'CN=keyless rehearsal CA' });
    fs.writeFileSync(path.join(dir, 'ca.pem'), pem);
    return pem;
  } finally {
    kms.destroy();
  }
}

function operatorCli(
  repo: string,
  cwd: string,
  world: World,
  region: string,
  deployment: string,
  replicaRegions: string[],
): (args: string[]) => Promise<{ code: number; out: string }> {
  const env = {
    ...(replicaRegions.length > 0 ? { KEYLESS_REPLICA_REGIONS: replicaRegions.join(',') } : {}),
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    AWS_REGION: region,
    AWS_ACCESS_KEY_ID: ACCESS_KEYS.operator,
    AWS_SECRET_ACCESS_KEY: 'rehearsal',
    AWS_ENDPOINT_URL_KMS: world.kms.url,
    AWS_ENDPOINT_URL_SSM: world.ssm.url,
    AWS_ENDPOINT_URL_LAMBDA: world.lambdaUrl,
    KEYLESS_DEPLOYMENT: deployment,
    KEYLESS_DEV_DIR: path.join(cwd, 'dev'),
  };
  return (args) =>
    new Promise((resolve) => {
      execFile(
        process.execPath,
        [path.join(repo, 'dist', 'bin', 'keyless.js'), ...args],
        { cwd, env, timeout: 120_000 },
        (err, stdout, stderr) => {
          resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, out: `${stdout}${stderr}` });
        },
      );
    });
}

async function realPeers(
  port: number,
  _caPem: string,
  caFile: string,
  step: (t: string) => void,
  fail: (m: string) => void,
): Promise<void> {
  const curl = await runPeer('curl', [
    '-sS',
    '--max-time',
    '20',
    '--cacert',
    caFile,
    '--resolve',
    `${HOSTNAME}:${port}:127.0.0.1`,
    `https://${HOSTNAME}:${port}/`,
  ]);
  if (curl === undefined) step('curl: not installed, skipped');
  else if (curl.code !== 0) fail(`curl failed (${curl.code}): ${curl.out.trim().slice(0, 300)}`);
  else step('curl: 200 through the NLB');
  const openssl = await runPeer(
    'openssl',
    [
      's_client',
      '-connect',
      `127.0.0.1:${port}`,
      '-servername',
      HOSTNAME,
      '-CAfile',
      caFile,
      '-verify_return_error',
      '-brief',
    ],
    'Q\n',
  );
  if (openssl === undefined) step('openssl: not installed, skipped');
  else if (!/Verification: OK|Verify return code: 0/.test(openssl.out))
    fail(`openssl s_client did not verify: ${openssl.out.trim().split('\n').slice(0, 3).join(' | ')}`);
  else step('openssl s_client: verified');
}

/** One Invoke as the edge's role makes it (the only principal allowed to invoke). */
async function invokeKeyService(
  endpoint: string,
  functionArn: string,
  region: string,
  payload: unknown,
): Promise<string | undefined> {
  const { LambdaClient, InvokeCommand } = await import('@aws-sdk/client-lambda');
  const lambda = new LambdaClient({ region, endpoint, credentials: credentials(ACCESS_KEYS.edge), maxAttempts: 1 });
  try {
    const out = await lambda.send(
      new InvokeCommand({ FunctionName: functionArn, Payload: Buffer.from(JSON.stringify(payload)) }),
    );
    return out.Payload ? Buffer.from(out.Payload).toString('utf8') : undefined;
  } catch (e) {
    return `${(e as Error).name}: ${(e as Error).message}`;
  } finally {
    lambda.destroy();
  }
}

/**
 * The client loop's pace: a third of one task's share of the fleet KMS budget
 * (KEYLESS_KMS_BUDGET / KEYLESS_FLEET_MAX_TASKS, which admission control enforces per task).
 */
function loopIntervalMs(env: Record<string, string>): number {
  const budget = Number(env.KEYLESS_KMS_BUDGET);
  const tasks = Number(env.KEYLESS_FLEET_MAX_TASKS ?? 1);
  if (!(budget > 0) || !(tasks > 0)) return 20;
  return Math.max(20, Math.ceil((3 * 1000 * tasks) / budget));
}

async function waitFor(probe: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await probe()) return true;
    await sleep(500);
  }
  return false;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
