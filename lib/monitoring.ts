/**
 * Observability: alarm topics, the alarms that need a human, and the operator dashboard.
 *
 * AWS-published metrics (Lambda, NLB, ECS Container Insights, AWS/Usage for the KMS quota) drive
 * the alarms. The dashboard adds the figures the edge and the key service publish themselves in
 * CloudWatch embedded metric format (names in `METRICS`, see naming.ts); their per-alert and
 * per-error-code series are found with SEARCH expressions, so new alert names appear unaided. A
 * SEARCH schema matches metrics with exactly its dimension set, so each one names the full set the
 * code emits (`EMF_DIMENSIONS`) and filters on the deployment.
 *
 * Fresh stacks do not alarm: no alarm treats missing data as breaching (a metric that does not exist
 * yet is not an outage); where missing data could hide one, a second alarm on a metric that is
 * always published covers it (NoHealthyTargets / TasksBelowMinimum).
 */
import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subs from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import type { KmsKeySpec } from './config';
import { METRIC_DIMENSIONS } from '../contract/metric-names';
import { KEY_SERVICE_ALIAS, KEY_SERVICE_POWERTOOLS_SERVICE, METRICS } from './naming';

/**
 * Dimension sets of the EMF metrics, exactly as emitted: the edge's (edge-proxy/src/observability/emf.ts) carry
 * Deployment plus at most one of Alert / Reason / Kind; the key service's go through Powertools,
 * which adds its `service` dimension (POWERTOOLS_SERVICE_NAME) to Deployment and Code / Operation
 * (lambdas/key-service/observability.ts).
 */
export const EMF_DIMENSIONS = {
  edgeByAlert: [METRIC_DIMENSIONS.deployment, METRIC_DIMENSIONS.alert],
  edgeByReason: [METRIC_DIMENSIONS.deployment, METRIC_DIMENSIONS.reason],
  keyServiceByCode: [METRIC_DIMENSIONS.service, METRIC_DIMENSIONS.deployment, METRIC_DIMENSIONS.code],
  keyServiceByOperation: [METRIC_DIMENSIONS.service, METRIC_DIMENSIONS.deployment, METRIC_DIMENSIONS.operation],
} as const;

/** A CloudWatch SEARCH expression for one metric with exactly `dimensions`, in one deployment. */
export function searchExpression(
  namespace: string,
  dimensions: readonly string[],
  metricName: string,
  filters: Record<string, string>,
): string {
  const schema = [namespace, ...dimensions].map((d) => (/^[A-Za-z0-9_./#:-]+$/.test(d) ? d : `"${d}"`)).join(',');
  const terms = Object.entries(filters).map(([k, v]) => `${k}="${v}"`);
  return `{${schema}} MetricName="${metricName}" ${terms.join(' ')}`.trim();
}

const MINUTE = Duration.minutes(1);

/** An SNS topic for alarms, encrypted with its own rotating KMS key that CloudWatch may use. */
export class AlarmTopic extends Construct {
  readonly topic: sns.Topic;
  readonly action: cwActions.SnsAction;

  constructor(scope: Construct, id: string, props: { deployment: string; purpose: string; email?: string }) {
    super(scope, id);
    const key = new kms.Key(this, 'Key', {
      description: `keyless ${props.deployment}: encrypts the ${props.purpose} alarm topic`,
      enableKeyRotation: true,
      // Only alarm notifications in flight are encrypted with it: nothing to keep after teardown.
      removalPolicy: RemovalPolicy.DESTROY,
      pendingWindow: Duration.days(7),
    });
    // CloudWatch alarms cannot publish to topics under the AWS-managed SNS key; allow it on this one.
    key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'CloudWatchAlarmsPublish',
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'],
        conditions: { StringEquals: { 'aws:SourceAccount': Stack.of(this).account } },
      }),
    );
    this.topic = new sns.Topic(this, 'Topic', {
      displayName: `keyless ${props.deployment} ${props.purpose} alarms`,
      masterKey: key,
      enforceSSL: true,
    });
    if (props.email) this.topic.addSubscription(new subs.EmailSubscription(props.email));
    this.action = new cwActions.SnsAction(this.topic);
  }
}

function alarmOn(alarm: cloudwatch.Alarm, action: cwActions.SnsAction): cloudwatch.Alarm {
  alarm.addAlarmAction(action);
  alarm.addOkAction(action);
  return alarm;
}

/** Lambda metric of the live alias (dimensions FunctionName + Resource). */
function aliasMetric(functionName: string, metricName: string, statistic: string, region?: string): cloudwatch.Metric {
  return new cloudwatch.Metric({
    namespace: 'AWS/Lambda',
    metricName,
    dimensionsMap: { FunctionName: functionName, Resource: `${functionName}:${KEY_SERVICE_ALIAS}` },
    statistic,
    period: MINUTE,
    region,
  });
}

/** KMS request-rate usage (AWS/Usage) for a quota family, as a percentage of the applied quota. */
export function kmsQuotaUtilization(family: 'Rsa' | 'Ecc', region?: string): cloudwatch.MathExpression {
  const calls = new cloudwatch.Metric({
    namespace: 'AWS/Usage',
    metricName: 'CallCount',
    dimensionsMap: { Service: 'KMS', Type: 'API', Resource: `CryptographicOperations${family}`, Class: 'None' },
    statistic: 'Sum',
    period: MINUTE,
    region,
  });
  const id = `calls${family}${(region ?? '').replace(/[^a-z0-9]/g, '')}`;
  return new cloudwatch.MathExpression({
    expression: `100 * (${id} / 60) / SERVICE_QUOTA(${id})`,
    usingMetrics: { [id]: calls },
    label: `KMS ${family.toUpperCase()} requests, % of quota${region ? ` (${region})` : ''}`,
    period: MINUTE,
    searchRegion: region,
  });
}

export function kmsFamilies(specs: readonly KmsKeySpec[]): Array<'Rsa' | 'Ecc'> {
  const f = new Set<'Rsa' | 'Ecc'>();
  for (const s of specs) f.add(s.startsWith('RSA_') ? 'Rsa' : 'Ecc');
  return [...f].sort();
}

export interface KeyServiceAlarmsProps {
  readonly deployment: string;
  readonly fn: lambda.IFunction;
  readonly alias: lambda.IAlias;
  readonly timeout: Duration;
  /** Absent: no reservation, and no alarm on approaching it. */
  readonly reservedConcurrency?: number;
  readonly keySpecs: readonly KmsKeySpec[];
  readonly kmsQuotaUtilizationPercent: number;
  readonly email?: string;
}

/** Alarms of one region's key service (alarms are regional, so each key-service stack owns its own). */
export class KeyServiceAlarms extends Construct {
  readonly topic: AlarmTopic;
  readonly alarms: cloudwatch.Alarm[] = [];

  constructor(scope: Construct, id: string, props: KeyServiceAlarmsProps) {
    super(scope, id);
    this.topic = new AlarmTopic(this, 'Topic', {
      deployment: props.deployment,
      purpose: 'key-service',
      email: props.email,
    });
    const a = this.topic.action;
    const fnName = props.fn.functionName;
    const errors = aliasMetric(fnName, 'Errors', 'Sum');
    const invocations = aliasMetric(fnName, 'Invocations', 'Sum');

    this.alarms.push(
      alarmOn(
        new cloudwatch.Alarm(this, 'ErrorRate', {
          alarmDescription:
            'Key-service invocations are failing (function errors, not typed protocol errors). Full TLS handshakes fail while this lasts; resumptions continue. Check the function logs and KMS key state.',
          metric: new cloudwatch.MathExpression({
            expression: 'IF(invocations > 0, 100 * errors / invocations, 0)',
            usingMetrics: { errors, invocations },
            label: 'Key-service error rate (%)',
            period: MINUTE,
          }),
          threshold: 1,
          evaluationPeriods: 5,
          datapointsToAlarm: 3,
          comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
          treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        }),
        a,
      ),
      alarmOn(
        new cloudwatch.Alarm(this, 'Throttles', {
          alarmDescription:
            'The key service hit its reserved concurrency: edges see throttling and fail over or reject full handshakes. Raise keyService.reservedConcurrency (and the KMS quota) or add edge admission limits.',
          metric: aliasMetric(fnName, 'Throttles', 'Sum'),
          threshold: 0,
          evaluationPeriods: 3,
          datapointsToAlarm: 3,
          comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
          treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        }),
        a,
      ),
      alarmOn(
        new cloudwatch.Alarm(this, 'LatencyP99', {
          alarmDescription:
            'p99 key-service duration is above 80% of the function timeout: KMS is slow or throttling inside the SDK retries. Handshakes are about to time out.',
          metric: aliasMetric(fnName, 'Duration', 'p99'),
          threshold: Math.round(props.timeout.toMilliseconds() * 0.8),
          evaluationPeriods: 5,
          datapointsToAlarm: 3,
          comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
          treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        }),
        a,
      ),
    );
    const reserved = props.reservedConcurrency;
    if (reserved !== undefined) {
      this.alarms.push(
        alarmOn(
          new cloudwatch.Alarm(this, 'ConcurrencyNearReserved', {
            alarmDescription: 'Key-service concurrency is above 80% of its reserved concurrency; throttling is next.',
            metric: new cloudwatch.Metric({
              namespace: 'AWS/Lambda',
              metricName: 'ConcurrentExecutions',
              dimensionsMap: { FunctionName: fnName },
              statistic: 'Maximum',
              period: MINUTE,
            }),
            threshold: Math.max(1, Math.floor(reserved * 0.8)),
            evaluationPeriods: 5,
            datapointsToAlarm: 3,
            comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
          }),
          a,
        ),
      );
    }
    for (const family of kmsFamilies(props.keySpecs)) {
      this.alarms.push(
        alarmOn(
          new cloudwatch.Alarm(this, `KmsQuota${family}`, {
            alarmDescription: `KMS ${family.toUpperCase()} cryptographic requests are above ${props.kmsQuotaUtilizationPercent}% of the account's request quota in this region (shared with every other user of the account). Request a quota increase (docs/deploy.md) before KMS throttles handshakes.`,
            metric: kmsQuotaUtilization(family),
            threshold: props.kmsQuotaUtilizationPercent,
            evaluationPeriods: 5,
            datapointsToAlarm: 3,
            comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
          }),
          a,
        ),
      );
    }
  }
}

/** What the dashboard shows about one region's key service. */
export interface KeyServiceView {
  /** Explicit region, or undefined for the stack's own (environment-agnostic) region. */
  readonly region?: string;
  readonly label: string;
  readonly functionName: string;
  readonly keySpecs: readonly KmsKeySpec[];
}

export interface EdgeMonitoringProps {
  readonly deployment: string;
  readonly loadBalancerFullName: string;
  readonly targetGroupFullName: string;
  readonly clusterName: string;
  readonly serviceName: string;
  readonly minTasks: number;
  readonly keyServices: readonly KeyServiceView[];
  readonly email?: string;
}

/** Edge alarms and the deployment's dashboard (dashboards are global: they show every region). */
export class EdgeMonitoring extends Construct {
  readonly topic: AlarmTopic;
  readonly alarms: cloudwatch.Alarm[] = [];
  readonly dashboard: cloudwatch.Dashboard;

  constructor(scope: Construct, id: string, props: EdgeMonitoringProps) {
    super(scope, id);
    this.topic = new AlarmTopic(this, 'Topic', { deployment: props.deployment, purpose: 'edge', email: props.email });
    const a = this.topic.action;
    const nlbDims = { LoadBalancer: props.loadBalancerFullName, TargetGroup: props.targetGroupFullName };
    const nlb = (metricName: string, statistic: string, dims: Record<string, string> = nlbDims): cloudwatch.Metric =>
      new cloudwatch.Metric({
        namespace: 'AWS/NetworkELB',
        metricName,
        dimensionsMap: dims,
        statistic,
        period: MINUTE,
      });
    const ci = (metricName: string): cloudwatch.Metric =>
      new cloudwatch.Metric({
        namespace: 'ECS/ContainerInsights',
        metricName,
        dimensionsMap: { ClusterName: props.clusterName, ServiceName: props.serviceName },
        statistic: 'Average',
        period: MINUTE,
      });
    const edge = (metricName: string, statistic: string, label: string): cloudwatch.Metric =>
      new cloudwatch.Metric({
        namespace: METRICS.edgeNamespace,
        metricName,
        dimensionsMap: { [METRICS.deploymentDimension]: props.deployment },
        statistic,
        period: MINUTE,
        label,
      });

    const healthy = nlb('HealthyHostCount', 'Minimum');
    const unhealthy = nlb('UnHealthyHostCount', 'Maximum');
    const running = ci('RunningTaskCount');
    this.alarms.push(
      alarmOn(
        new cloudwatch.Alarm(this, 'NoHealthyTargets', {
          alarmDescription:
            'No healthy edge task behind the load balancer: the TLS endpoint is down (or the NLB fails open to unhealthy tasks). Check the ECS service events and the edge logs.',
          metric: healthy,
          threshold: 1,
          evaluationPeriods: 2,
          datapointsToAlarm: 2,
          comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
          // No data = no target registered (a fresh stack, or every task gone): TasksBelowMinimum covers that.
          treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        }),
        a,
      ),
      alarmOn(
        new cloudwatch.Alarm(this, 'UnhealthyTargets', {
          alarmDescription: 'Edge tasks have failed load-balancer health checks for 5 minutes.',
          metric: unhealthy,
          threshold: 1,
          evaluationPeriods: 5,
          datapointsToAlarm: 5,
          comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
          treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        }),
        a,
      ),
    );
    // With a minimum of 0 (before the first certificate) there is nothing to fall below.
    if (props.minTasks > 0) {
      this.alarms.push(
        alarmOn(
          new cloudwatch.Alarm(this, 'TasksBelowMinimum', {
            alarmDescription: `Fewer edge tasks are running than the configured minimum (${props.minTasks}) for 5 minutes: tasks are crashing or cannot be placed.`,
            metric: running,
            threshold: props.minTasks,
            evaluationPeriods: 5,
            datapointsToAlarm: 5,
            comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            // Container Insights publishes the count while the service exists, 0 included.
            treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
          }),
          a,
        ),
      );
    }
    const search = (expr: string, stat: string, label: string, region?: string): cloudwatch.MathExpression =>
      new cloudwatch.MathExpression({
        expression: `SEARCH('${expr}', '${stat}', 60)`,
        usingMetrics: {},
        label,
        period: MINUTE,
        searchRegion: region,
      });
    const dep = { [METRICS.deploymentDimension]: props.deployment };
    const keyServiceFilter = { ...dep, service: KEY_SERVICE_POWERTOOLS_SERVICE };

    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      dashboardName: `keyless-${props.deployment}`,
      defaultInterval: Duration.hours(3),
    });
    const w = 8;
    const h = 6;
    this.dashboard.addWidgets(
      new cloudwatch.TextWidget({
        markdown: `# keyless TLS — ${props.deployment}\nFull handshakes cost one KMS operation each; resumed ones cost none. Key services in failover order: ${props.keyServices.map((k) => k.label).join(' → ')}.`,
        width: 24,
        height: 2,
      }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'TLS handshakes: full vs resumed',
        left: [
          edge(METRICS.edge.handshakesFull, 'Sum', 'full'),
          edge(METRICS.edge.handshakesResumed, 'Sum', 'resumed'),
        ],
        width: w,
        height: h,
        stacked: true,
      }),
      new cloudwatch.GraphWidget({
        title: 'Handshake failures by alert',
        left: [
          search(
            searchExpression(METRICS.edgeNamespace, EMF_DIMENSIONS.edgeByAlert, METRICS.edge.handshakeFailures, dep),
            'Sum',
            '',
          ),
          edge(METRICS.edge.admissionRejections, 'Sum', 'admission rejections'),
        ],
        width: w,
        height: h,
      }),
      new cloudwatch.GraphWidget({
        title: 'Active connections',
        left: [
          nlb('ActiveFlowCount_TCP', 'Average', { LoadBalancer: props.loadBalancerFullName }).with({
            label: 'NLB active flows',
          }),
        ],
        right: [edge(METRICS.edge.activeConnections, 'Average', 'per task (edge)')],
        width: w,
        height: h,
      }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Key-operation latency seen by the edge (ms)',
        left: [
          edge(METRICS.edge.keyOperationLatency, 'p50', 'p50'),
          edge(METRICS.edge.keyOperationLatency, 'p99', 'p99'),
        ],
        right: [edge(METRICS.edge.keyOperationErrors, 'Sum', 'key-operation errors')],
        width: w,
        height: h,
      }),
      new cloudwatch.GraphWidget({
        title: 'Key-service duration p50 / p99 (ms)',
        left: props.keyServices.flatMap((k) => [
          aliasMetric(k.functionName, 'Duration', 'p50', k.region).with({ label: `${k.label} p50` }),
          aliasMetric(k.functionName, 'Duration', 'p99', k.region).with({ label: `${k.label} p99` }),
        ]),
        width: w,
        height: h,
      }),
      new cloudwatch.GraphWidget({
        title: 'Key-service errors and throttles',
        left: props.keyServices.flatMap((k) => [
          aliasMetric(k.functionName, 'Errors', 'Sum', k.region).with({ label: `${k.label} function errors` }),
          aliasMetric(k.functionName, 'Throttles', 'Sum', k.region).with({ label: `${k.label} throttles` }),
        ]),
        right: props.keyServices.map((k) =>
          search(
            searchExpression(
              METRICS.keyServiceNamespace,
              EMF_DIMENSIONS.keyServiceByCode,
              METRICS.keyService.errors,
              keyServiceFilter,
            ),
            'Sum',
            `${k.label} typed errors`,
            k.region,
          ),
        ),
        width: w,
        height: h,
      }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'KMS throttles (reported by the key service)',
        left: props.keyServices.map((k) =>
          search(
            searchExpression(
              METRICS.keyServiceNamespace,
              EMF_DIMENSIONS.keyServiceByOperation,
              METRICS.keyService.kmsThrottles,
              keyServiceFilter,
            ),
            'Sum',
            `${k.label}`,
            k.region,
          ),
        ),
        width: w,
        height: h,
      }),
      new cloudwatch.GraphWidget({
        title: 'KMS request rate, % of account quota',
        left: props.keyServices.flatMap((k) => kmsFamilies(k.keySpecs).map((f) => kmsQuotaUtilization(f, k.region))),
        leftYAxis: { min: 0, max: 100 },
        leftAnnotations: [{ value: 80, label: 'request a quota increase', color: '#ff7f0e' }],
        width: w,
        height: h,
      }),
      new cloudwatch.GraphWidget({
        title: 'Edge tasks',
        left: [
          running.with({ label: 'running' }),
          ci('DesiredTaskCount').with({ label: 'desired' }),
          healthy.with({ label: 'healthy targets' }),
        ],
        width: w,
        height: h,
      }),
    );
    // What resumption saves: every resumed handshake is a KMS request not made (edge-proxy/src/observability/emf.ts).
    const full = edge(METRICS.edge.handshakesFull, 'Sum', 'full handshakes (one KMS request each)');
    const avoided = edge(METRICS.edge.keyOperationsAvoided, 'Sum', 'KMS requests avoided (resumed handshakes)');
    const byKind = (kind: string, stat: string): cloudwatch.Metric =>
      new cloudwatch.Metric({
        namespace: METRICS.edgeNamespace,
        metricName: METRICS.edge.handshakeDuration,
        dimensionsMap: { [METRICS.deploymentDimension]: props.deployment, [METRIC_DIMENSIONS.kind]: kind },
        statistic: stat,
        period: MINUTE,
        label: `${kind} ${stat}`,
      });
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'KMS requests avoided by resumption',
        left: [full, avoided],
        right: [
          new cloudwatch.MathExpression({
            expression: 'IF(full + avoided > 0, 100 * avoided / (full + avoided), 0)',
            usingMetrics: { full, avoided },
            label: 'avoided, % of handshakes',
            period: MINUTE,
          }),
        ],
        rightYAxis: { min: 0, max: 100 },
        width: w,
        height: h,
      }),
      new cloudwatch.GraphWidget({
        title: 'Handshake duration at the edge (ms)',
        left: [byKind('full', 'p50'), byKind('full', 'p99'), byKind('resumed', 'p50'), byKind('resumed', 'p99')],
        width: w,
        height: h,
      }),
      new cloudwatch.GraphWidget({
        title: 'Admission rejections by reason; abandoned handshakes',
        left: [
          search(
            searchExpression(METRICS.edgeNamespace, EMF_DIMENSIONS.edgeByReason, METRICS.edge.admissionRejections, dep),
            'Sum',
            '',
          ),
        ],
        right: [edge(METRICS.edge.handshakesAbandoned, 'Sum', 'abandoned (closed without an alert)')],
        width: w,
        height: h,
      }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.AlarmStatusWidget({ title: 'Edge alarms', alarms: this.alarms, width: 24, height: 3 }),
    );
  }
}
