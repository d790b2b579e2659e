/**
 * The edge image without Docker: the staged build context of the synthesized image asset, replayed
 * through edge-proxy/Dockerfile's own instructions. COPY from the context and between stages, WORKDIR,
 * ENV and CMD are followed; RUN steps run in the stage's directory, except package installation
 * (`npm ci`, `npm install`, `npm prune`), which the rehearsal replaces by the repository's installed
 * node_modules, and the runtime stage's system clean-up. What the final stage holds is what the task runs.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface BuiltImage {
  /** The final stage's WORKDIR, as a local directory. */
  root: string;
  /** CMD (exec form). */
  cmd: string[];
  /** ENV of the final stage. */
  env: Record<string, string>;
  /** Instructions not replayed, with why (for the report). */
  skipped: string[];
}

interface Instruction {
  op: string;
  args: string;
}

interface Stage {
  name?: string;
  instructions: Instruction[];
}

export function parseDockerfile(text: string): { args: Record<string, string>; stages: Stage[] } {
  const lines = text.replace(/\\\r?\n/g, ' ').split(/\r?\n/);
  const args: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const raw of lines) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^(\w+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const op = m[1].toUpperCase();
    if (op === 'FROM') {
      stages.push({ name: /\bAS\s+(\S+)/i.exec(m[2])?.[1], instructions: [] });
    } else if (stages.length === 0 && op === 'ARG') {
      const [k, v] = m[2].split('=');
      args[k] = v ?? '';
    } else if (stages.length > 0) {
      stages[stages.length - 1].instructions.push({ op, args: m[2] });
    }
  }
  return { args, stages };
}

const INSTALL = /^(npm\s+(ci|install|i|prune)\b|.*--mount=type=cache.*\bnpm\s+(ci|install)\b)/;

/** Replays the Dockerfile into `outDir` (one sub-directory per stage); node_modules come from `repo`. */
export async function buildImage(
  contextDir: string,
  dockerfile: string,
  repo: string,
  outDir: string,
  log: (line: string) => void,
): Promise<BuiltImage> {
  const { stages } = parseDockerfile(fs.readFileSync(path.join(contextDir, dockerfile), 'utf8'));
  const stageDirs = new Map<string, string>();
  const skipped: string[] = [];
  let result: BuiltImage | undefined;
  for (const [i, stage] of stages.entries()) {
    const base = path.join(outDir, `stage-${i}${stage.name ? `-${stage.name}` : ''}`);
    let workdir = '/';
    const env: Record<string, string> = {};
    let cmd: string[] = [];
    const dir = (): string => path.join(base, workdir);
    fs.mkdirSync(base, { recursive: true });
    const last = i === stages.length - 1;
    for (const ins of stage.instructions) {
      switch (ins.op) {
        case 'WORKDIR':
          workdir = path.posix.resolve(workdir, ins.args.trim());
          fs.mkdirSync(dir(), { recursive: true });
          break;
        case 'ENV':
          for (const m of ins.args.matchAll(/(\w+)=("[^"]*"|\S+)/g)) env[m[1]] = m[2].replace(/^"|"$/g, '');
          break;
        case 'COPY': {
          const words = ins.args.split(/\s+/).filter(Boolean);
          const from = words.find((w) => w.startsWith('--from='))?.slice('--from='.length);
          const paths = words.filter((w) => !w.startsWith('--'));
          const dest = paths.pop()!;
          const srcRoot = from !== undefined ? stageDirs.get(from) : contextDir;
          if (srcRoot === undefined) throw new Error(`COPY --from=${from}: no such stage`);
          const absDest = path.join(base, path.posix.resolve(workdir, dest));
          for (const src of paths) {
            const s = path.join(srcRoot, src);
            if (!fs.existsSync(s))
              throw new Error(
                `COPY ${src}: not in the ${from !== undefined ? `stage ${from}` : 'build context'} (${s})`,
              );
            // A directory's contents go to dest; a file goes into dest when dest is a directory.
            const intoDir = !fs.statSync(s).isDirectory() && (dest.endsWith('/') || dest === '.' || paths.length > 1);
            copy(s, intoDir ? path.join(absDest, path.basename(src)) : absDest);
          }
          break;
        }
        case 'RUN': {
          const command = ins.args.replace(/--mount=\S+\s*/g, '').trim();
          if (INSTALL.test(command) || command.includes('npm prune')) {
            // Installation: the repository's node_modules stand in for it (never modified).
            if (!fs.existsSync(path.join(dir(), 'node_modules')))
              fs.symlinkSync(path.join(repo, 'node_modules'), path.join(dir(), 'node_modules'));
            skipped.push(`RUN ${command.slice(0, 60)}… (package installation: the repository's node_modules are used)`);
            break;
          }
          if (last) {
            skipped.push(`RUN ${command.slice(0, 60)}… (runtime-stage system step)`);
            break;
          }
          log(`image: RUN ${command}`);
          // Paths inside the image (the WORKDIR, e.g. /src/bundle) live under the stage's directory here.
          const local =
            workdir === '/'
              ? command
              : command.replace(
                  new RegExp(`(^|[\\s=:'"])${workdir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?=/|\\s|$)`, 'g'),
                  `$1${dir()}`,
                );
          await sh(local, dir(), {
            ...env,
            PATH: `${path.join(repo, 'node_modules', '.bin')}:${process.env.PATH ?? ''}`,
          });
          break;
        }
        case 'CMD':
          cmd = JSON.parse(ins.args) as string[];
          break;
        default:
          break;
      }
    }
    if (stage.name) stageDirs.set(stage.name, base);
    stageDirs.set(String(i), base);
    result = { root: dir(), cmd, env, skipped };
  }
  if (!result || result.cmd.length === 0) throw new Error(`${dockerfile}: no CMD in the final stage`);
  return result;
}

function copy(src: string, dest: string): void {
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  const st = fs.lstatSync(src);
  if (st.isSymbolicLink() && path.basename(src) === 'node_modules') {
    fs.symlinkSync(fs.realpathSync(src), dest);
    return;
  }
  fs.cpSync(src, dest, { recursive: true, dereference: false, verbatimSymlinks: true });
}

function sh(command: string, cwd: string, env: Record<string, string>): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', command], {
      cwd,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`RUN ${command} exited ${code}:\n${out.slice(-2000)}`)),
    );
  });
}
