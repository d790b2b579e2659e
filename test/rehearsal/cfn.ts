/**
 * A CloudFormation template resolver over the intrinsics the synthesized stacks use (Ref,
 * Fn::GetAtt, Fn::Join, Fn::Sub, Fn::Select, Fn::Split, Fn::If, Fn::Equals, Fn::Or, Fn::And, Fn::Not,
 * Fn::Contains, Fn::GetAZs, Fn::GetStackOutput), with local values for the account, the region and
 * every physical id. Physical ids follow AWS's shapes (role ARNs, alias ARNs, key ids from the local
 * KMS), so IAM policies resolve to what the real stack would hold.
 */

export type Template = {
  Resources: Record<
    string,
    { Type: string; Properties?: Record<string, unknown>; DependsOn?: unknown; Condition?: string }
  >;
  Outputs?: Record<string, { Value: unknown }>;
  Conditions?: Record<string, unknown>;
  Parameters?: Record<string, unknown>;
};

export class UnresolvedError extends Error {}

export interface StackEnv {
  stackName: string;
  account: string;
  region: string;
  /** Physical ids of resources created by the emulated deploy (e.g. KMS key ids), by logical id. */
  physical: Map<string, string>;
  /** Outputs of other stacks (`Fn::GetStackOutput`), by stack name then output name. */
  stackOutputs: Map<string, Record<string, string>>;
}

/** The name CloudFormation would generate for a resource without an explicit name (deterministic here). */
export function generatedName(stackName: string, logicalId: string, max = 64): string {
  return `${stackName}-${logicalId}`.slice(0, max);
}

export class StackResolver {
  constructor(
    readonly template: Template,
    readonly env: StackEnv,
  ) {}

  resolve(value: unknown): unknown {
    if (Array.isArray(value)) return value.map((v) => this.resolve(v));
    if (!value || typeof value !== 'object') return value;
    const obj = value as Record<string, unknown>;
    const keys = Object.keys(obj);
    if (keys.length === 1 && (keys[0] === 'Ref' || keys[0].startsWith('Fn::') || keys[0] === 'Condition'))
      return this.intrinsic(keys[0], obj[keys[0]]);
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(obj)) out[k] = this.resolve(v);
    return out;
  }

  str(value: unknown): string {
    const v = this.resolve(value);
    if (typeof v !== 'string')
      throw new UnresolvedError(`${this.env.stackName}: expected a string, got ${JSON.stringify(v)}`);
    return v;
  }

  condition(name: string): boolean {
    const c = this.template.Conditions?.[name];
    if (c === undefined) throw new UnresolvedError(`${this.env.stackName}: no condition ${name}`);
    return Boolean(this.resolve(c));
  }

  private intrinsic(fn: string, arg: unknown): unknown {
    const a = (): unknown[] => {
      if (!Array.isArray(arg)) throw new UnresolvedError(`${fn} needs a list`);
      return arg;
    };
    switch (fn) {
      case 'Ref':
        return this.ref(String(arg));
      case 'Fn::GetAtt': {
        const [id, attr] = Array.isArray(arg) ? (arg as string[]) : String(arg).split('.');
        return this.getAtt(id, attr);
      }
      case 'Fn::Join': {
        const [sep, list] = a();
        return (this.resolve(list) as unknown[]).map((x) => String(x)).join(String(sep));
      }
      case 'Fn::Sub': {
        const [text, vars] = Array.isArray(arg) ? (arg as [string, Record<string, unknown>]) : [String(arg), {}];
        return text.replace(/\$\{([^}]+)\}/g, (_, name: string) => {
          if (name.startsWith('!')) return `\${${name.slice(1)}}`;
          if (vars && name in vars) return String(this.resolve(vars[name]));
          const [id, attr] = name.split('.');
          return String(attr ? this.getAtt(id, attr) : this.ref(id));
        });
      }
      case 'Fn::Select': {
        const [i, list] = a();
        return (this.resolve(list) as unknown[])[Number(this.resolve(i))];
      }
      case 'Fn::Split': {
        const [sep, s] = a();
        return String(this.resolve(s)).split(String(sep));
      }
      case 'Fn::If': {
        const [cond, yes, no] = a();
        return this.resolve(this.condition(String(cond)) ? yes : no);
      }
      case 'Fn::Equals': {
        const [x, y] = a();
        return JSON.stringify(this.resolve(x)) === JSON.stringify(this.resolve(y));
      }
      case 'Fn::Or':
        return a().some((c) => Boolean(this.resolve(c)));
      case 'Fn::And':
        return a().every((c) => Boolean(this.resolve(c)));
      case 'Fn::Not':
        return !this.resolve(a()[0]);
      case 'Fn::Contains': {
        const [list, v] = a();
        return (this.resolve(list) as unknown[]).includes(this.resolve(v));
      }
      case 'Condition':
        return this.condition(String(arg));
      case 'Fn::GetAZs':
        return ['a', 'b', 'c'].map((s) => `${this.env.region}${s}`);
      case 'Fn::GetStackOutput': {
        const { StackName, OutputName } = arg as { StackName: unknown; OutputName: unknown };
        const stack = this.str(StackName);
        const out = this.env.stackOutputs.get(stack)?.[this.str(OutputName)];
        if (out === undefined)
          throw new UnresolvedError(
            `${this.env.stackName}: Fn::GetStackOutput ${stack}.${String(OutputName)} is not deployed yet`,
          );
        return out;
      }
      default:
        throw new UnresolvedError(
          `${this.env.stackName}: intrinsic ${fn} is not supported by the rehearsal's resolver`,
        );
    }
  }

  private ref(id: string): unknown {
    const { account, region } = this.env;
    switch (id) {
      case 'AWS::AccountId':
        return account;
      case 'AWS::Region':
        return region;
      case 'AWS::Partition':
        return 'aws';
      case 'AWS::URLSuffix':
        return 'amazonaws.com';
      case 'AWS::StackName':
        return this.env.stackName;
      case 'AWS::StackId':
        return `arn:aws:cloudformation:${region}:${account}:stack/${this.env.stackName}/00000000-0000-0000-0000-000000000000`;
      case 'AWS::NoValue':
        return undefined;
    }
    const param = this.template.Parameters?.[id] as { Default?: unknown } | undefined;
    if (param) return param.Default;
    const res = this.template.Resources[id];
    if (!res) throw new UnresolvedError(`${this.env.stackName}: Ref to unknown ${id}`);
    const physical = this.env.physical.get(id);
    if (physical !== undefined) return physical;
    const p = res.Properties ?? {};
    const arnBase = `arn:aws:%s:${region}:${account}`;
    switch (res.Type) {
      case 'AWS::Lambda::Function':
        return p.FunctionName ? this.resolve(p.FunctionName) : generatedName(this.env.stackName, id);
      case 'AWS::Lambda::Alias':
        return `${arnBase.replace('%s', 'lambda')}:function:${this.str(p.FunctionName)}:${this.str(p.Name)}`;
      case 'AWS::SSM::Parameter':
        return p.Name ? this.resolve(p.Name) : generatedName(this.env.stackName, id);
      case 'AWS::SNS::Topic':
        return `${arnBase.replace('%s', 'sns')}:${generatedName(this.env.stackName, id, 256)}`;
      case 'AWS::IAM::Role':
        return p.RoleName ? this.resolve(p.RoleName) : generatedName(this.env.stackName, id);
      case 'AWS::Logs::LogGroup':
        return p.LogGroupName ? this.resolve(p.LogGroupName) : generatedName(this.env.stackName, id, 512);
      case 'AWS::EC2::VPCEndpoint':
        return `vpce-${hex(`${this.env.stackName}/${id}`)}`;
      case 'AWS::EC2::VPC':
        return `vpc-${hex(`${this.env.stackName}/${id}`)}`;
      case 'AWS::EC2::SecurityGroup':
        return `sg-${hex(`${this.env.stackName}/${id}`)}`;
      case 'AWS::EC2::Subnet':
        return `subnet-${hex(`${this.env.stackName}/${id}`)}`;
      default:
        return `${id}-physical`;
    }
  }

  private getAtt(id: string, attr: string): unknown {
    const res = this.template.Resources[id];
    if (!res) throw new UnresolvedError(`${this.env.stackName}: GetAtt of unknown ${id}`);
    const { account, region } = this.env;
    const ref = (): string => this.str({ Ref: id });
    switch (`${res.Type}.${attr}`) {
      case 'AWS::IAM::Role.Arn':
        return `arn:aws:iam::${account}:role/${ref()}`;
      case 'AWS::KMS::Key.Arn':
      case 'AWS::KMS::ReplicaKey.Arn':
        return `arn:aws:kms:${region}:${account}:key/${ref()}`;
      case 'AWS::KMS::Key.KeyId':
      case 'AWS::KMS::ReplicaKey.KeyId':
        return ref();
      case 'AWS::Lambda::Function.Arn':
        return `arn:aws:lambda:${region}:${account}:function:${ref()}`;
      case 'AWS::Lambda::Version.Version':
        return '1';
      case 'AWS::Logs::LogGroup.Arn':
        return `arn:aws:logs:${region}:${account}:log-group:${ref()}:*`;
      case 'AWS::EC2::SecurityGroup.GroupId':
        return ref();
      case 'AWS::SNS::Topic.TopicArn':
      case 'AWS::SNS::Topic.TopicName':
        return ref();
      default:
        return `${id}.${attr}`;
    }
  }
}

function hex(s: string): string {
  let h = 0x811c9dc5;
  for (const c of s) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193) >>> 0;
  return h.toString(16).padStart(8, '0') + '0123456789';
}
