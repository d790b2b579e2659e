/**
 * tools/check-layering.mjs (run by `npm run lint`): the layering rules of docs/architecture.md,
 * "Deployables", on a small fake tree with known violations, and on the repository itself.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '../..');
const SCRIPT = path.join(ROOT, 'tools/check-layering.mjs');

function run(root?: string) {
  const r = spawnSync(process.execPath, root ? [SCRIPT, root] : [SCRIPT], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { status: r.status, lines: r.stderr.split('\n').filter(Boolean), stdout: r.stdout };
}

describe('on a fake tree', () => {
  let tmp: string;
  const write = (file: string, text: string) => {
    fs.mkdirSync(path.dirname(path.join(tmp, file)), { recursive: true });
    fs.writeFileSync(path.join(tmp, file), text);
  };

  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'keyless-layering-'));
    // Forbidden imports.
    write(
      'contract/protocol.ts',
      "import { secret } from '../lambdas/key-service/secret';\nexport const v = secret;\n",
    );
    write('lambdas/key-service/secret.ts', 'export const secret = 1;\n');
    write(
      'edge-proxy/src/keyless/client.ts',
      "// import { x } from '../../../lib/stack'; (a comment, not an import)\nimport { secret } from '../../../lambdas/key-service/secret';\nexport const c = secret;\n",
    );
    write('edge-proxy/src/edge.ts', "import { stack } from '../../lib/stack';\nexport const e = stack;\n");
    write('lib/stack.ts', "export const stack = require('../lambdas/key-service/secret');\n");
    // A value cycle, and a cycle through type-only imports (erased at run time, so allowed).
    write('lambdas/key-service/a.ts', "import { b } from './b';\nexport const a = () => b;\n");
    write('lambdas/key-service/b.ts', "export { a as b } from './a';\n");
    write('contract/t1.ts', "import type { T2 } from './t2';\nexport interface T1 { t2?: T2 }\n");
    write('contract/t2.ts', "import { type T1 } from './t1';\nexport interface T2 { t1?: T1 }\n");
    // Allowed: the local Lambda endpoint hosts the real handler; tests reach anywhere, cycles included.
    write(
      'local/lambda/main.ts',
      "import { secret } from '../../lambdas/key-service/secret';\nexport const m = secret;\n",
    );
    write(
      'test/unit/x.test.ts',
      "import { secret } from '../../lambdas/key-service/secret';\nimport { y } from './y';\nexport const x = [secret, y];\n",
    );
    write('test/unit/y.ts', "import { x } from './x.test';\nexport const y = () => x;\n");
  });
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  test('reports each forbidden import and the cycle as file:line imports X — rule — fix, and exits 1', () => {
    const r = run(tmp);
    expect(r.status).toBe(1);
    const violations = r.lines.filter((l) => l.includes(' imports '));
    expect(violations).toEqual(
      expect.arrayContaining([
        expect.stringMatching(
          /^contract\/protocol\.ts:1 imports lambdas\/key-service\/secret\.ts — contract\/ imports only contract\/ — .+/,
        ),
        expect.stringMatching(
          /^edge-proxy\/src\/keyless\/client\.ts:2 imports lambdas\/key-service\/secret\.ts — nothing outside lambdas\/ imports lambdas\/ .+ — import it from contract\//,
        ),
        expect.stringMatching(
          /^edge-proxy\/src\/edge\.ts:1 imports lib\/stack\.ts — edge-proxy\/ never imports lib\/, bin\/ or local\/ — .+/,
        ),
        expect.stringMatching(/^lib\/stack\.ts:1 imports lambdas\/key-service\/secret\.ts — /),
        expect.stringMatching(
          /^lambdas\/key-service\/a\.ts:1 imports lambdas\/key-service\/b\.ts — no import cycles among non-test modules: lambdas\/key-service\/a\.ts → lambdas\/key-service\/b\.ts → lambdas\/key-service\/a\.ts — .+/,
        ),
      ]),
    );
    expect(violations).toHaveLength(5);
    // Not reported: the commented-out import, the type-only cycle, local/lambda/ and the tests.
    expect(r.lines.join('\n')).not.toMatch(/client\.ts:1 |contract\/t[12]\.ts|^local\/lambda|^test\/unit/m);
    expect(r.lines.at(-1)).toMatch(/check-layering: 5 violation\(s\)/);
  });
});

test('the repository follows its layering', () => {
  const r = run();
  expect(r.lines).toEqual([]);
  expect(r.status).toBe(0);
  expect(r.stdout).toContain('check-layering: ok');
});
