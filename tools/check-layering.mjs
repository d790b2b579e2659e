#!/usr/bin/env node
// The layering of the repository (docs/architecture.md, "Deployables"), checked on every relative
// import (`import ... from`, `export ... from`, `import('...')`, `require('...')`) of every .ts,
// .mjs and .cjs file outside node_modules, dist and cdk.out:
//
//   - contract/ belongs to no deployable: it imports only contract/;
//   - lambdas/ (the key service) imports only itself and contract/;
//   - nothing outside lambdas/ imports it, except the local Lambda endpoint (local/lambda/) that
//     hosts the real handler, and tests;
//   - edge-proxy/ never imports lib/, bin/ or local/;
//   - lib/ (the CDK app) imports no edge or key-service runtime code, except through contract/;
//   - no import cycles among non-test modules.
//
//   node tools/check-layering.mjs [root]     (default: the repository; exit 1 on any violation)
//
// Each violation is printed as `file:line imports X — rule — fix`. The TypeScript compiler (already a
// dev dependency) parses the sources, so imports inside comments and strings are never mistaken for
// real ones, and type-only imports are recognised.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const ts = require('typescript');

const SOURCE_EXTENSIONS = ['.ts', '.mjs', '.cjs'];
const SKIPPED_DIRS = new Set(['node_modules', 'dist', 'cdk.out', '.git']);

/**
 * Imports that break a rule for a stated reason, as [from, to] repository paths. Keep it short: each
 * entry is a debt, with the reason it is tolerated.
 */
const ALLOWED_IMPORTS = [
  // The CDK validates `edge.groups` in the deployment configuration against the groups the edge's
  // TLS engine implements, so `cdk synth` refuses a group the edge would refuse at start-up. The
  // table is pure data with no runtime dependency; it belongs in contract/ once the TLS tables move.
  ['lib/config.ts', 'edge-proxy/src/tls/groups.ts'],
];

/**
 * Import cycles that exist today in code other rooms are reworking, each as its exact set of
 * modules. The lead empties this list once those changes are merged.
 */
/** Import cycles tolerated for now, each with its reason. Empty: every cycle is a lint error. */
const ALLOWED_CYCLES = [];

// ---------------------------------------------------------------------------------------------

/** The part of the repository a file belongs to. */
function areaOf(file) {
  if (/(^|\/)test\//.test(file) || /\.test\.[cm]?[jt]s$/.test(file)) return 'test';
  if (file.startsWith('contract/')) return 'contract';
  if (file.startsWith('lambdas/')) return 'lambdas';
  if (file.startsWith('edge-proxy/')) return 'edge';
  if (file.startsWith('lib/')) return 'lib';
  if (file.startsWith('bin/')) return 'bin';
  if (file.startsWith('local/lambda/')) return 'local-lambda';
  if (file.startsWith('local/')) return 'local';
  if (file.startsWith('tools/')) return 'tools';
  return 'other';
}

/** The rules, in the order they are checked; the first one an import breaks is reported. */
const RULES = [
  {
    name: 'contract/ imports only contract/',
    applies: (from) => areaOf(from) === 'contract',
    breaks: (_from, to) => areaOf(to) !== 'contract',
    fix: 'move what contract/ needs into contract/, or keep this code in the deployable that uses it',
  },
  {
    name: 'the key service (lambdas/) imports only lambdas/ and contract/',
    applies: (from) => areaOf(from) === 'lambdas',
    breaks: (_from, to) => !['lambdas', 'contract'].includes(areaOf(to)),
    fix: 'move the shared code into contract/',
  },
  {
    name: 'nothing outside lambdas/ imports lambdas/ (except local/lambda/ and tests)',
    applies: (from) => !['lambdas', 'local-lambda', 'test'].includes(areaOf(from)),
    breaks: (_from, to) => areaOf(to) === 'lambdas',
    fix: 'import it from contract/ (move it there if two deployables need it)',
  },
  {
    name: 'edge-proxy/ never imports lib/, bin/ or local/',
    applies: (from) => areaOf(from) === 'edge',
    breaks: (_from, to) => ['lib', 'bin', 'local', 'local-lambda'].includes(areaOf(to)),
    fix: 'the edge image carries edge-proxy/ and contract/ only: move the shared code into contract/',
  },
  {
    name: 'lib/ (CDK) imports no edge or key-service runtime code except through contract/',
    applies: (from) => areaOf(from) === 'lib',
    breaks: (_from, to) => ['edge', 'lambdas'].includes(areaOf(to)),
    fix: 'move what the CDK app and the runtime share into contract/',
  },
];

// ---------------------------------------------------------------------------------------------

/** Repository-relative paths of the source files: git's view when root is a repository, else a walk. */
function sourceFiles(root) {
  let files;
  try {
    const out = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
      cwd: root,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    files = out.split('\0').filter(Boolean);
  } catch {
    files = walk(root, '');
  }
  return files.filter(
    (f) =>
      SOURCE_EXTENSIONS.some((e) => f.endsWith(e)) &&
      !f.split('/').some((part) => SKIPPED_DIRS.has(part)) &&
      fs.existsSync(path.join(root, f)),
  );
}

function walk(root, dir) {
  const out = [];
  for (const entry of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
    if (SKIPPED_DIRS.has(entry.name)) continue;
    const rel = dir ? `${dir}/${entry.name}` : entry.name;
    if (entry.isDirectory()) out.push(...walk(root, rel));
    else if (entry.isFile()) out.push(rel);
  }
  return out;
}

/**
 * The relative imports of one file: { spec, line, typeOnly }. Type-only imports (`import type`,
 * `export type`, or named imports that are all `type`) are erased by the compiler, so they load
 * nothing at run time.
 */
function importsOf(root, file) {
  const text = fs.readFileSync(path.join(root, file), 'utf8');
  const source = ts.createSourceFile(
    file,
    text,
    ts.ScriptTarget.Latest,
    true,
    file.endsWith('.ts') ? ts.ScriptKind.TS : ts.ScriptKind.JS,
  );
  const found = [];
  const add = (literal, typeOnly) => {
    if (!ts.isStringLiteralLike(literal) || !literal.text.startsWith('.')) return;
    found.push({
      spec: literal.text,
      line: source.getLineAndCharacterOfPosition(literal.getStart(source)).line + 1,
      typeOnly,
    });
  };
  const visit = (node) => {
    if (ts.isImportDeclaration(node)) {
      const clause = node.importClause;
      const named =
        clause?.namedBindings && ts.isNamedImports(clause.namedBindings) ? clause.namedBindings.elements : undefined;
      const allNamedTypeOnly =
        !!clause && !clause.name && !!named && named.length > 0 && named.every((e) => e.isTypeOnly);
      add(node.moduleSpecifier, !!clause && (clause.isTypeOnly || allNamedTypeOnly));
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier) {
      const named = node.exportClause && ts.isNamedExports(node.exportClause) ? node.exportClause.elements : undefined;
      add(node.moduleSpecifier, node.isTypeOnly || (!!named && named.length > 0 && named.every((e) => e.isTypeOnly)));
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      add(node.moduleReference.expression, node.isTypeOnly);
    } else if (ts.isCallExpression(node) && node.arguments.length === 1) {
      const isDynamicImport = node.expression.kind === ts.SyntaxKind.ImportKeyword;
      const isRequire = ts.isIdentifier(node.expression) && node.expression.text === 'require';
      if (isDynamicImport || isRequire) add(node.arguments[0], false);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

/** The repository path an import names, or undefined when it names no source file. */
function resolve(root, from, spec, known) {
  const base = path.posix.normalize(path.posix.join(path.posix.dirname(from), spec));
  const stem = base.replace(/\.(c|m)?js$/, '');
  const candidates = [
    base,
    `${stem}.ts`,
    `${stem}.mjs`,
    `${stem}.cjs`,
    `${stem}.js`,
    `${base}/index.ts`,
    `${base}/index.mjs`,
    `${base}/index.cjs`,
  ];
  return candidates.find((c) => known.has(c) || (c.endsWith('.js') && fs.existsSync(path.join(root, c))));
}

/** Strongly connected components (Tarjan) of a graph given as Map<node, Array<node>>. */
function stronglyConnected(graph) {
  let index = 0;
  const indices = new Map();
  const low = new Map();
  const stack = [];
  const onStack = new Set();
  const components = [];
  const connect = (v) => {
    indices.set(v, index);
    low.set(v, index);
    index++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!indices.has(w)) {
        connect(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v), indices.get(w)));
      }
    }
    if (low.get(v) === indices.get(v)) {
      const component = [];
      let w;
      do {
        w = stack.pop();
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || (graph.get(v) ?? []).includes(v)) components.push(component.sort());
    }
  };
  for (const v of [...graph.keys()].sort()) if (!indices.has(v)) connect(v);
  return components;
}

/** One concrete cycle through `start` inside a component: the path of modules back to start. */
function cycleThrough(graph, component, start) {
  const members = new Set(component);
  const previous = new Map([[start, undefined]]);
  const queue = [start];
  while (queue.length > 0) {
    const v = queue.shift();
    for (const w of graph.get(v) ?? []) {
      if (!members.has(w)) continue;
      if (w === start) {
        const cycle = [v];
        for (let p = previous.get(v); p !== undefined; p = previous.get(p)) cycle.unshift(p);
        return [...cycle, start];
      }
      if (!previous.has(w)) {
        previous.set(w, v);
        queue.push(w);
      }
    }
  }
  return [start, start];
}

/** Every violation in the tree at `root`, as printable lines. */
export function checkLayering(root, options = {}) {
  const allowedImports = options.allowedImports ?? ALLOWED_IMPORTS;
  const allowedCycles = options.allowedCycles ?? ALLOWED_CYCLES;
  const files = sourceFiles(root);
  const known = new Set(files);
  const violations = [];
  const graph = new Map();
  const edgeLine = new Map();

  for (const from of files) {
    for (const { spec, line, typeOnly } of importsOf(root, from)) {
      const to = resolve(root, from, spec, known);
      if (to === undefined) continue;
      const allowed = allowedImports.some(([a, b]) => a === from && b === to);
      const rule = RULES.find((r) => r.applies(from) && r.breaks(from, to));
      if (rule && !allowed) violations.push(`${from}:${line} imports ${to} — ${rule.name} — ${rule.fix}`);
      // Type-only imports are erased by the compiler: they load nothing and cannot make a cycle at
      // run time (and a module's types naturally refer back to its users' types).
      if (!typeOnly && areaOf(from) !== 'test' && areaOf(to) !== 'test') {
        if (!graph.has(from)) graph.set(from, []);
        if (!graph.get(from).includes(to)) graph.get(from).push(to);
        if (!edgeLine.has(`${from}>${to}`)) edgeLine.set(`${from}>${to}`, line);
      }
    }
  }

  const allowedSets = allowedCycles.map((c) => [...c].sort().join('\n'));
  for (const component of stronglyConnected(graph)) {
    if (allowedSets.includes(component.join('\n'))) continue;
    const cycle = cycleThrough(graph, component, component[0]);
    const [from, to] = cycle;
    const others =
      component.length > cycle.length - 1 ? ` (${component.length} modules in the cycle: ${component.join(', ')})` : '';
    violations.push(
      `${from}:${edgeLine.get(`${from}>${to}`)} imports ${to} — no import cycles among non-test modules: ${cycle.join(' → ')}${others} — move what both sides need into a module neither imports, or make one of the imports type-only`,
    );
  }
  return violations;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = path.resolve(process.argv[2] ?? path.join(path.dirname(fileURLToPath(import.meta.url)), '..'));
  const violations = checkLayering(root);
  for (const v of violations) console.error(v);
  if (violations.length > 0) {
    console.error(`check-layering: ${violations.length} violation(s) (docs/architecture.md, "Deployables")`);
    process.exit(1);
  }
  console.log('check-layering: ok');
}
