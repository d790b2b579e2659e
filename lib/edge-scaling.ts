/**
 * Autoscaling of the edge service: target tracking on CPU and on active client connections per
 * healthy task (NLB flows / healthy targets). The scalable target owns the task count: the service
 * carries no DesiredCount (aws-cdk#13130), so a deploy never resets the fleet, and `keyless fleet
 * scale` changes the bounds without one.
 */
import { Duration, Stack } from 'aws-cdk-lib';
import * as appscaling from 'aws-cdk-lib/aws-applicationautoscaling';
import type * as ecs from 'aws-cdk-lib/aws-ecs';
import { Construct } from 'constructs';

export interface EdgeScalingProps {
  readonly service: ecs.FargateService;
  readonly loadBalancerFullName: string;
  readonly targetGroupFullName: string;
  readonly minTasks: number;
  readonly maxTasks: number;
  readonly targetCpuUtilization: number;
  /** Keep well under the edge's connection cap, so tasks are added before any refuses connections. */
  readonly targetConnectionsPerTask: number;
}

export class EdgeScaling extends Construct {
  readonly scalableTarget: appscaling.ScalableTarget;

  constructor(scope: Construct, id: string, props: EdgeScalingProps) {
    super(scope, id);
    const scaling = props.service.autoScaleTaskCount({ minCapacity: props.minTasks, maxCapacity: props.maxTasks });
    scaling.scaleOnCpuUtilization('Cpu', {
      targetUtilizationPercent: props.targetCpuUtilization,
      scaleOutCooldown: Duration.seconds(60),
      scaleInCooldown: Duration.seconds(300),
    });
    this.scalableTarget = scaling.node.findChild('Target') as appscaling.ScalableTarget;
    new appscaling.CfnScalingPolicy(this, 'ConnectionsPerTask', {
      policyName: `${Stack.of(this).stackName}-connections-per-task`.slice(0, 256),
      policyType: 'TargetTrackingScaling',
      scalingTargetId: this.scalableTarget.scalableTargetId,
      targetTrackingScalingPolicyConfiguration: {
        targetValue: props.targetConnectionsPerTask,
        scaleOutCooldown: 60,
        scaleInCooldown: 300,
        customizedMetricSpecification: {
          metrics: [
            {
              id: 'flows',
              label: 'NLB active TCP flows',
              returnData: false,
              metricStat: {
                stat: 'Average',
                metric: {
                  namespace: 'AWS/NetworkELB',
                  metricName: 'ActiveFlowCount_TCP',
                  dimensions: [{ name: 'LoadBalancer', value: props.loadBalancerFullName }],
                },
              },
            },
            {
              id: 'tasks',
              label: 'Healthy edge tasks',
              returnData: false,
              metricStat: {
                stat: 'Average',
                metric: {
                  namespace: 'AWS/NetworkELB',
                  metricName: 'HealthyHostCount',
                  dimensions: [
                    { name: 'LoadBalancer', value: props.loadBalancerFullName },
                    { name: 'TargetGroup', value: props.targetGroupFullName },
                  ],
                },
              },
            },
            {
              id: 'perTask',
              label: 'Active client connections per edge task',
              expression: 'flows / tasks',
              returnData: true,
            },
          ],
        },
      },
    });
  }
}
