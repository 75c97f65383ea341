/**
 * The documentation cannot rot: every TypeScript block of the guided tour (`docs/tour/*.md`) and of
 * the READMEs runs here on the CPU backend, its console output is compared with the `text output`
 * block that follows it, every block is type-checked against the current sources, relative links
 * must point at files that exist, and the tour's worked example (adding a `softsign` primitive) is
 * applied to a copy of the sources, compiled, and run on every backend available. The block
 * conventions are in `test/docs-blocks.ts`.
 */
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { format } from 'node:util';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import {
  applyPatch,
  type CodeBlock,
  isExcerpt,
  isRunnable,
  isTypeScript,
  missingExcerptParts,
  noRunReason,
  parseBlocks,
  parsePatch,
  relativeLinks,
} from './docs-blocks.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const tourDir = join(root, 'docs', 'tour');

/** The documents whose blocks run: the tour's chapters in order, its index, and the READMEs. */
const documents = [
  ...readdirSync(tourDir)
    .filter((f) => /^\d\d-.*\.md$/.test(f))
    .sort()
    .map((f) => join('docs', 'tour', f)),
  join('docs', 'tour', 'README.md'),
  'README.md',
  join('examples', 'playground', 'README.md'),
  ...readdirSync(join(root, 'packages'))
    .map((p) => join('packages', p, 'README.md'))
    .filter((f) => existsSync(join(root, f))),
];
const blocksOf = new Map(documents.map((f) => [f, parseBlocks(f, readFileSync(join(root, f), 'utf8'))]));
const allBlocks = [...blocksOf.values()].flat();
const slug = (b: CodeBlock) => `${b.file.replace(/[^A-Za-z0-9]+/g, '_')}_L${b.line}`;
const label = (b: CodeBlock) => `block at line ${b.line}${b.output !== undefined ? ' (output checked)' : ''}`;
const isPatched = (b: CodeBlock) => b.flags.includes('patched');

/**
 * Where the sources are copied, patched and type-checked: under node_modules, so that packages
 * resolve from there, and one folder per process, so that concurrent runs do not collide.
 */
const work = join(root, 'node_modules', '.cache', 'fluxion-docs', String(process.pid));

// ---------------------------------------------------------------------------------------------
// The copy: tensor and autograd with the tour's diff blocks applied, every block as a module, and
// one tsc run over all of it, started at once so it overlaps with running the blocks.
// ---------------------------------------------------------------------------------------------

const PATCHED_PACKAGES = ['tensor', 'autograd'];
const patches = allBlocks.filter((b) => b.lang === 'diff').map(parsePatch);

function prepareCopy(): void {
  rmSync(work, { recursive: true, force: true });
  for (const p of PATCHED_PACKAGES)
    cpSync(join(root, 'packages', p, 'src'), join(work, 'packages', p, 'src'), { recursive: true });
  mkdirSync(join(work, 'packages', 'tensor', 'test'), { recursive: true });
  cpSync(
    join(root, 'packages', 'tensor', 'test', 'cases.ts'),
    join(work, 'packages', 'tensor', 'test', 'cases.ts'),
  );
  for (const patch of patches) {
    const file = join(work, patch.path);
    if (!existsSync(file))
      throw new Error(`a diff block patches ${patch.path}, which is not in the patched copy`);
    writeFileSync(file, applyPatch(readFileSync(file, 'utf8'), patch));
  }
  mkdirSync(join(work, 'blocks'), { recursive: true });
  for (const b of allBlocks.filter((x) => isTypeScript(x) && !isExcerpt(x))) {
    writeFileSync(join(work, 'blocks', `${slug(b)}.ts`), `${b.code}\nexport {};\n`);
  }
  writeFileSync(join(work, 'check-softsign.ts'), SOFTSIGN_CHECK);
  const source = (p: string) => relative(work, join(root, 'packages', p, 'src', 'index.ts'));
  const tsconfig = {
    extends: relative(work, join(root, 'tsconfig.base.json')),
    compilerOptions: {
      paths: {
        '@fluxion/tensor': ['./packages/tensor/src/index.ts'],
        '@fluxion/autograd': ['./packages/autograd/src/index.ts'],
        '@fluxion/nn': [source('nn')],
        '@fluxion/models': [source('models')],
        '@fluxion/models/node': [source('models').replace(/index\.ts$/, 'node.ts')],
      },
    },
    include: ['packages', 'blocks', 'check-softsign.ts'],
  };
  writeFileSync(join(work, 'tsconfig.json'), JSON.stringify(tsconfig, null, 2));
}

/** Runs a command; `output` is its stdout, `log` its stdout and stderr. */
function run(cmd: string, args: string[]): Promise<{ code: number; output: string; log: string }> {
  const env = { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' };
  return new Promise((done) => {
    execFile(cmd, args, { cwd: root, maxBuffer: 16 * 2 ** 20, env }, (error, stdout, stderr) =>
      done({ code: error ? Number(error.code ?? 1) : 0, output: stdout, log: `${stdout}${stderr}` }),
    );
  });
}

let typecheck: Promise<{ code: number; output: string; log: string }>;
beforeAll(() => {
  prepareCopy();
  typecheck = run(process.execPath, [
    join(root, 'node_modules', 'typescript', 'bin', 'tsc'),
    '-p',
    join(work, 'tsconfig.json'),
    '--noEmit',
  ]);
});

/** Bundles a module of the patched copy (its `@fluxion/*` imports resolved to the copy) and runs it. */
async function runPatched(entry: string): Promise<{ code: number; output: string; log: string }> {
  const outfile = entry.replace(/\.ts$/, '.mjs');
  await build({
    entryPoints: [entry],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    outfile,
    logLevel: 'silent',
    alias: Object.fromEntries(
      PATCHED_PACKAGES.map((p) => [`@fluxion/${p}`, join(work, 'packages', p, 'src', 'index.ts')]),
    ),
    plugins: [
      {
        name: 'external-packages',
        setup(b) {
          b.onResolve({ filter: /^[^./]/ }, (args) =>
            args.path.startsWith('@fluxion/') ? undefined : { external: true },
          );
        },
      },
    ],
  });
  return run(process.execPath, [outfile]);
}

// ---------------------------------------------------------------------------------------------
// Running the blocks in this process, capturing what they print.
// ---------------------------------------------------------------------------------------------

const scratch = join(tmpdir(), `fluxion-docs-${process.pid}`);
mkdirSync(scratch, { recursive: true });
afterAll(() => {
  rmSync(scratch, { recursive: true, force: true });
  rmSync(work, { recursive: true, force: true });
});

/**
 * Runs a block as a module in a fresh module graph (so it gets fresh packages: a block that uses
 * `backward()` without importing `@fluxion/autograd` fails, as it would for a reader), returning
 * what it printed and the backend it left current.
 */
async function runBlock(b: CodeBlock): Promise<{ printed: string; backend: string }> {
  const file = join(scratch, `${slug(b)}.ts`);
  writeFileSync(file, `${b.code}\nexport {};\n`);
  const printed: string[] = [];
  const log = console.log;
  console.log = (...args: unknown[]) => {
    printed.push(format(...args));
  };
  vi.resetModules();
  try {
    await import(/* @vite-ignore */ file);
  } finally {
    console.log = log;
  }
  const tensorApi = await import('@fluxion/tensor');
  return { printed: printed.join('\n'), backend: tensorApi.currentBackend() };
}

const tidy = (text: string) =>
  text
    .split('\n')
    .map((l) => l.trimEnd())
    .join('\n')
    .trim();

for (const file of documents) {
  const blocks = blocksOf.get(file) ?? [];
  describe(file, () => {
    const runnable = blocks.filter((b) => isRunnable(b) && !isPatched(b));
    if (runnable.length > 0) {
      test.each(runnable.map((b) => [label(b), b] as const))('%s runs', async (_name, b) => {
        const { printed, backend } = await runBlock(b);
        if (b.output !== undefined) expect(tidy(printed)).toBe(tidy(b.output));
        expect(backend, 'a block must leave the CPU backend current').toBe('cpu');
      });
    }

    test('no-run blocks say why they do not run', () => {
      const silent = blocks.filter((b) => b.flags.includes('no-run') && noRunReason(b) === '');
      expect(silent.map((b) => `line ${b.line}`)).toEqual([]);
    });

    const excerpts = blocks.filter(isExcerpt);
    if (excerpts.length > 0) {
      test.each(excerpts.map((b) => [`excerpt at line ${b.line} (${b.flags[1]})`, b] as const))(
        '%s is in its source file',
        (_name, b) => {
          const path = join(root, b.flags[1] ?? '');
          expect(existsSync(path), `${b.flags[1]} does not exist`).toBe(true);
          expect(missingExcerptParts(b, readFileSync(path, 'utf8'))).toEqual([]);
        },
      );
    }

    test('relative links point at files that exist', () => {
      const base = dirname(join(root, file));
      const missing = relativeLinks(readFileSync(join(root, file), 'utf8')).filter(
        (t) => !existsSync(resolve(base, t)),
      );
      expect(missing).toEqual([]);
    });
  });
}

test('the tour has chapters in order, each with a runnable block', () => {
  const chapters = documents.filter((f) => /docs\/tour\/\d\d-/.test(f));
  expect(chapters.length).toBeGreaterThanOrEqual(8);
  const numbers = chapters.map((f) => Number(/(\d\d)-/.exec(f)?.[1]));
  expect(numbers).toEqual(numbers.map((_, i) => i + 1));
  for (const f of chapters) expect(blocksOf.get(f)?.some(isRunnable), f).toBe(true);
});

test('the API reference (pnpm docs:api) documents every package from its entry point', () => {
  const config = JSON.parse(readFileSync(join(root, 'typedoc.json'), 'utf8')) as { entryPoints: string[] };
  const packages = readdirSync(join(root, 'packages')).filter((p) =>
    existsSync(join(root, 'packages', p, 'src', 'index.ts')),
  );
  expect([...config.entryPoints].sort()).toEqual(packages.map((p) => `packages/${p}/src/index.ts`).sort());
});

test('every block type-checks against the current sources (and the worked example compiles)', async () => {
  const { code, log: output } = await typecheck;
  // Name the Markdown file and line for errors inside a block.
  const bySlug = new Map(allBlocks.map((b) => [slug(b), b]));
  const located = output.replace(/\S*blocks\/(\w+)\.ts\((\d+),(\d+)\)/g, (m, s: string, row, col) => {
    const b = bySlug.get(s);
    return b ? `${b.file}, block at line ${b.line}, its line ${row}:${col}` : m;
  });
  expect(located).toBe('');
  expect(code).toBe(0);
});

// ---------------------------------------------------------------------------------------------
// The worked example of chapter 4: softsign as a new primitive.
// ---------------------------------------------------------------------------------------------

/**
 * Checks the patched copy the way the real suites would check a new primitive: the case-table row
 * exists and matches the formula in float64 on every layout it draws, its gradient passes
 * gradcheck, and the WGSL snippet agrees with the CPU kernel on WebGPU when an adapter exists.
 */
const SOFTSIGN_CHECK = `
import { gradcheck, gradgradcheck, VJPS } from '@fluxion/autograd';
import * as T from '@fluxion/tensor';
import fc from 'fast-check';
import { materialize, OP_CASES } from './packages/tensor/test/cases.js';

const report: Record<string, unknown> = {};
const rows = OP_CASES.filter((c) => c.op === 'softsign');
report.caseRows = rows.length;
report.vjp = VJPS.softsign !== null && VJPS.softsign !== undefined;
let worst = 0;
for (const c of rows) {
  for (const hosts of fc.sample(c.inputs, { numRuns: 25, seed: 7 })) {
    const [x] = hosts.map((h) => materialize(h, { floatDtype: 'float64' }));
    const got = await c.run([x]).data();
    hosts[0].data.forEach((v, i) => {
      worst = Math.max(worst, Math.abs(got[i] - v / (1 + Math.abs(v))));
    });
  }
}
report.caseTableError = worst;
const x = T.tensor([[-7, -1.5, -0.25], [0.5, 2, 30]], { dtype: 'float64' });
report.gradcheck = (await gradcheck((t: T.Tensor) => T.softsign(t), [x])).ok;
report.gradgradcheck = (await gradgradcheck((t: T.Tensor) => T.softsign(t), [x])).ok;
try {
  await T.initWebGPU();
  const values = [-100, -3, -1, -1e-3, 0, 1e-3, 0.5, 1, 3, 100];
  const gpu = await T.softsign(T.tensor(values)).data();
  const cpu = await T.softsign(T.tensor(values, [values.length], { backend: 'cpu' })).data();
  report.webgpuError = Math.max(...Array.from(gpu, (v, i) => Math.abs(v - cpu[i])));
  T.setBackend('cpu');
} catch (e) {
  if (process.env.FLUXION_REQUIRE_WEBGPU === '1') throw e;
  report.webgpuError = 'skipped: ' + String((e as Error).message).split('\\n')[0];
}
console.log(JSON.stringify(report));
process.exit(0);
`;

describe('worked example: adding softsign (docs/tour/04)', () => {
  const patchedBlocks = allBlocks.filter((b) => isRunnable(b) && isPatched(b));

  test('the diff blocks apply to the current sources', () => {
    expect(patches.map((p) => p.path).sort()).toEqual(
      [
        'packages/autograd/src/vjps.ts',
        'packages/tensor/src/backends/cpu.ts',
        'packages/tensor/src/backends/webgpu/elementwise.ts',
        'packages/tensor/src/ops.ts',
        'packages/tensor/src/registry.ts',
        'packages/tensor/test/cases.ts',
      ].sort(),
    );
    // prepareCopy (beforeAll) applied them; a hunk that does not apply has thrown there.
    expect(readFileSync(join(work, 'packages/tensor/src/registry.ts'), 'utf8')).toContain("'softsign'");
  });

  test.each(patchedBlocks.map((b) => [label(b), b] as const))('patched %s runs', async (_name, b) => {
    const { code, output, log } = await runPatched(join(work, 'blocks', `${slug(b)}.ts`));
    expect(code, log).toBe(0);
    if (b.output !== undefined) expect(tidy(output)).toBe(tidy(b.output));
  });

  test('the new primitive passes the checks of the real suites (case row, float64, gradcheck, WebGPU)', async () => {
    const { code, output, log } = await runPatched(join(work, 'check-softsign.ts'));
    expect(code, log).toBe(0);
    const report = JSON.parse(output.trim().split('\n').pop() ?? '{}');
    expect(report.caseRows).toBeGreaterThanOrEqual(1);
    expect(report.vjp).toBe(true);
    expect(report.caseTableError).toBeLessThan(1e-12);
    expect(report.gradcheck).toBe(true);
    expect(report.gradgradcheck).toBe(true);
    if (typeof report.webgpuError === 'number') expect(report.webgpuError).toBeLessThan(1e-6);
    else console.log(`softsign on WebGPU: ${report.webgpuError}`);
  });
});
