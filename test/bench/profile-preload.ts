/**
 * Loaded with `node --require` (through NODE_OPTIONS, which is how it reaches the local stack's
 * child processes) when the benchmark profiles a run. Does nothing unless BENCH_CPU_PROFILE_DIR is
 * set. SIGUSR2 starts the V8 sampling profiler; the profile is written to
 * `$BENCH_CPU_PROFILE_DIR/<script>-<pid>.cpuprofile` when the process exits through process.exit()
 * (how the edge, the key service and `keyless dev` stop on SIGINT/SIGTERM).
 */
import * as fs from 'node:fs';
import * as inspector from 'node:inspector';
import * as path from 'node:path';

const dir = process.env.BENCH_CPU_PROFILE_DIR;

if (dir) {
  // Tells the benchmark this process will take SIGUSR2 (whose default action would end it).
  try {
    fs.writeFileSync(path.join(dir, `ready-${process.pid}`), '');
  } catch {
    // no marker: the benchmark will not signal this process
  }
  const session = new inspector.Session();
  let started = false;
  process.on('SIGUSR2', () => {
    if (started) return;
    started = true;
    session.connect();
    session.post('Profiler.enable', () =>
      session.post('Profiler.setSamplingInterval', { interval: 500 }, () => session.post('Profiler.start')),
    );
  });
  const exit = process.exit.bind(process);
  const script = path.relative(process.cwd(), process.argv[1] ?? 'node').replace(/[^\w.-]+/g, '_');
  process.exit = ((code?: number) => {
    if (!started) return exit(code);
    // The in-thread inspector session answers synchronously; the timer only guards an exit.
    setTimeout(() => exit(code), 2000).unref();
    session.post('Profiler.stop', (err, res) => {
      if (!err && res?.profile) {
        try {
          fs.writeFileSync(path.join(dir, `${script}-${process.pid}.cpuprofile`), JSON.stringify(res.profile));
        } catch {
          // the benchmark reports a missing profile
        }
      }
      exit(code);
    });
    return undefined as never;
  }) as typeof process.exit;
}
