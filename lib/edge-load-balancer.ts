/**
 * The Network Load Balancer in front of the edge: TCP 443 passed straight through to the tasks'
 * 8443 (TLS is terminated by our code), PROXY protocol v2 or client-IP preservation, and the
 * load balancer's side of the health policy (docs/deploy.md, "Health checks").
 */
import { Duration } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import { Construct } from 'constructs';
import type { ClientAddressMode } from './config';
import { acknowledge } from './nag';
import { ADMIN_PORT, EDGE_PORT, LISTENER_PORT } from './naming';

/**
 * The statuses of GET /healthz that count as healthy: 200, and 503 ("no key service answers", or
 * draining). Key-service reachability is shared by every task, so it is a metric and an alarm, not a
 * health signal: failing targets for it would help no client (the NLB fails open when all targets
 * are unhealthy) and ECS would replace every task during a key-service outage. Draining needs no
 * signal either: ECS deregisters a task from the target group before it sends SIGTERM.
 */
export const HEALTHY_HTTP_CODES = '200,503';

export interface EdgeLoadBalancerProps {
  readonly vpc: ec2.IVpc;
  readonly securityGroup: ec2.ISecurityGroup;
  readonly internetFacing: boolean;
  /** Subnets of an internal load balancer (the public ones otherwise). */
  readonly internalSubnets: ec2.SubnetSelection;
  readonly deletionProtection: boolean;
  readonly clientAddress: ClientAddressMode;
  readonly deregistrationDelaySeconds: number;
  /** "http": the edge answers GET /healthz on the admin port (200 or 503); "tcp": the TLS port accepts. */
  readonly healthCheck: 'http' | 'tcp';
}

export class EdgeLoadBalancer extends Construct {
  readonly loadBalancer: elbv2.NetworkLoadBalancer;
  readonly targetGroup: elbv2.NetworkTargetGroup;

  constructor(scope: Construct, id: string, props: EdgeLoadBalancerProps) {
    super(scope, id);
    this.loadBalancer = new elbv2.NetworkLoadBalancer(this, 'LoadBalancer', {
      vpc: props.vpc,
      internetFacing: props.internetFacing,
      vpcSubnets: props.internetFacing ? { subnetType: ec2.SubnetType.PUBLIC } : props.internalSubnets,
      securityGroups: [props.securityGroup],
      crossZoneEnabled: true,
      deletionProtection: props.deletionProtection,
    });
    acknowledge(
      this.loadBalancer,
      'AwsSolutions-ELB2',
      'NLB access logs exist only for TLS listeners; this listener is TCP pass-through because TLS is terminated by the edge, which logs every connection and handshake with the client address (PROXY protocol v2 or preserved client IP).',
    );

    this.targetGroup = new elbv2.NetworkTargetGroup(this, 'TargetGroup', {
      vpc: props.vpc,
      port: EDGE_PORT,
      protocol: elbv2.Protocol.TCP,
      targetType: elbv2.TargetType.IP,
      proxyProtocolV2: props.clientAddress === 'proxy-protocol-v2',
      preserveClientIp: props.clientAddress === 'preserve-client-ip',
      deregistrationDelay: Duration.seconds(props.deregistrationDelaySeconds),
      connectionTermination: true,
      healthCheck:
        props.healthCheck === 'http'
          ? {
              protocol: elbv2.Protocol.HTTP,
              port: String(ADMIN_PORT),
              path: '/healthz',
              healthyHttpCodes: HEALTHY_HTTP_CODES,
              interval: Duration.seconds(10),
              timeout: Duration.seconds(5),
              healthyThresholdCount: 2,
              unhealthyThresholdCount: 2,
            }
          : {
              protocol: elbv2.Protocol.TCP,
              port: 'traffic-port',
              interval: Duration.seconds(10),
              timeout: Duration.seconds(5),
              healthyThresholdCount: 2,
              unhealthyThresholdCount: 2,
            },
    });
    // A target failing health checks takes no new connections, but its established ones live on
    // until they end or the task stops: an unhealthy verdict must not cut live TLS sessions.
    this.targetGroup.setAttribute('target_health_state.unhealthy.connection_termination.enabled', 'false');
    this.targetGroup.setAttribute(
      'target_health_state.unhealthy.draining_interval_seconds',
      String(Math.max(props.deregistrationDelaySeconds, 60)),
    );

    this.loadBalancer.addListener('Tls', {
      port: LISTENER_PORT,
      protocol: elbv2.Protocol.TCP,
      defaultTargetGroups: [this.targetGroup],
    });
  }
}
