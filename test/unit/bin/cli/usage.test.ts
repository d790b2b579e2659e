/**
 * The `keyless` command line itself: --help for every command, usage errors and their exit codes,
 * and — through the compiled binary (dist/, built by `npm test`) — real process exit codes and a
 * process that ends by itself once the command is done (no lingering sockets).
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { COMMANDS } from '../../../../bin/cli/command-table';
import { EXIT } from '../../../../bin/cli/errors';
import { main } from '../../../../bin/keyless';
import { type CliEnv, startCliEnv } from '../../cli-harness';

const BIN = path.resolve(__dirname, '../../../../dist/bin/keyless.js');

async function run(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(argv, {
    env: {},
    streams: { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) } },
  });
  return { code, stdout, stderr };
}

function spawnCli(argv: string[], cwd: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' };
    delete env.KEYLESS_DEV_DIR;
    const child = spawn(process.execPath, [BIN, ...argv], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    // Generous: a loaded 2-core machine; the point is that it ends on its own, not how fast.
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`keyless ${argv.join(' ')} did not exit within 60 s\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, 60_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('--help', () => {
  test('keyless --help lists every command and the exit codes', async () => {
    for (const argv of [[], ['--help'], ['-h'], ['help']]) {
      const r = await run(...argv);
      expect(r.code).toBe(EXIT.ok);
      for (const name of Object.keys(COMMANDS)) expect(r.stdout).toContain(`  ${name}`);
      expect(r.stdout).toContain('  dev ');
      expect(r.stdout).toMatch(
        /0 ok, 1 failed, 2 refused\s+\(a precondition does not hold\), 64 usage error, 69 service unavailable/,
      );
    }
  });

  test.each(Object.keys(COMMANDS))('keyless %s --help shows its usage, every option and examples', async (name) => {
    const r = await run(...name.split(' '), '--help');
    expect(r.code).toBe(EXIT.ok);
    expect(r.stderr).toBe('');
    expect(r.stdout.startsWith(`usage: keyless ${name} `)).toBe(true);
    for (const o of COMMANDS[name].spec.options) expect(r.stdout).toContain(`--${o.name}`);
    expect(r.stdout).toMatch(/\nexamples:\n {2}keyless /);
    // -h and `keyless help <command>` say the same.
    expect((await run(...name.split(' '), '-h')).stdout).toBe(r.stdout);
    expect((await run('help', ...name.split(' '))).stdout).toBe(r.stdout);
  });

  test('--help wins over missing required options', async () => {
    const r = await run('cert', 'import', '--help');
    expect(r.code).toBe(EXIT.ok);
  });

  test("keyless keys / keyless cert: the group's commands", async () => {
    const r = await run('cert', '--help');
    expect(r.code).toBe(EXIT.ok);
    expect(r.stdout).toMatch(/usage: keyless cert <issue\|import>/);
    const bare = await run('keys');
    expect(bare.code).toBe(EXIT.usage);
    expect(bare.stderr).toMatch(/usage: keyless keys <create>/);
  });
});

describe('usage errors → exit 64, nothing on stdout', () => {
  test.each([
    [['frobnicate'], /unknown command "frobnicate"/],
    [['keys', 'delete'], /unknown command "keys delete"/],
    [['help', 'nope'], /unknown command "nope"/],
    [['csr', '--kye', 'x'], /unknown option --kye\. Did you mean --key\?/],
    [['csr', '-k', 'x'], /unknown option -k/],
    [['csr', '--key'], /--key needs a value/],
    [['csr', '--key', '--dns', 'x'], /--key needs a value/],
    [['csr', '--key='], /--key needs a non-empty value/],
    [['csr', '--json=yes'], /--json is a flag and takes no value/],
    [['csr', '--key', 'a', '--key', 'b'], /--key given twice/],
    [['csr', 'stray'], /unexpected argument "stray"/],
    [['status', '--deployment', 'Prod!'], /deployment "Prod!" is not a deployment name/],
    [['status', '--local', '--profile', 'x'], /--local talks to the local stack/],
    [['keys', 'create', '--custody', 'hsm'], /--custody hsm is not one of kms, sealed/],
  ])('%j', async (argv, message) => {
    const r = await run(...(argv as string[]));
    expect(r.code).toBe(EXIT.usage);
    expect(r.stderr).toMatch(message as RegExp);
    expect(r.stdout).toBe('');
  });
});

describe('the compiled binary', () => {
  let env: CliEnv;
  beforeAll(async () => {
    if (!fs.existsSync(BIN)) throw new Error(`${BIN} is missing: build first (npm run build)`);
    env = await startCliEnv();
  });
  afterAll(async () => {
    await env?.close();
  });

  test('exit codes reach the shell: 0 help, 64 usage, 69 no local stack', async () => {
    expect((await spawnCli(['csr', '--help'], env.dir)).code).toBe(EXIT.ok);
    const usage = await spawnCli(['nope'], env.dir);
    expect(usage.code).toBe(EXIT.usage);
    expect(usage.stderr).toMatch(/unknown command "nope"/);
    const down = await spawnCli(['status', '--local', '--dev-dir', path.join(env.dir, 'nowhere')], env.dir);
    expect(down.code).toBe(EXIT.unavailable);
  });

  test('a command that talks to KMS ends by itself with exit 0 (and 2 when refused)', async () => {
    const made = await spawnCli(
      ['keys', 'create', '--local', '--dev-dir', env.dir, '--name', 'proc-1', '--key-spec', 'ECC_NIST_P256', '--json'],
      env.dir,
    );
    expect(made.stderr).not.toMatch(/unexpected error/);
    expect(made.code).toBe(EXIT.ok);
    expect(JSON.parse(made.stdout)).toMatchObject({ name: 'proc-1', created: true });
    const again = await spawnCli(
      ['keys', 'create', '--local', '--dev-dir', env.dir, '--name', 'proc-1', '--key-spec', 'ECC_NIST_P256'],
      env.dir,
    );
    expect(again.code).toBe(EXIT.refused);
    expect(again.stderr).toMatch(/^keyless keys create: key name proc-1 already exists/m);
  });
});
