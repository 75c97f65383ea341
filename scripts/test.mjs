#!/usr/bin/env node
// The whole test suite, as the README's second command (`pnpm test`) and CI run it:
//   1. Biome (format + lint), 2. tsc --noEmit, 3. vitest over every package on the default
//   WebGPU adapter (lavapipe on a machine without a GPU), 4. vitest again over the suites that
//   use WebGPU, on SwiftShader (Chromium's Vulkan driver, selected with VK_ICD_FILENAMES): another
//   shader compiler, other features and subgroup size, so kernels are held to more than one
//   implementation. FLUXION_WEBGPU_EXPECT names the adapter each run means, and the suites fail
//   when another one answers (see packages/tensor/test/webgpu-env.ts).
// Ends with the random cases each backend was fuzzed with (packages/tensor/test/fuzz.ts), then one
// plain line `N passed, N failed` (the tests of both vitest runs, plus one failure per failed
// check), and exits non-zero when anything failed. Set FLUXION_REQUIRE_WEBGPU=1 (CI does) to make
// the WebGPU suites fail instead of skip when no adapter is found (and a missing SwiftShader a
// failure). FLUXION_SWIFTSHADER=0 leaves the SwiftShader run out.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
process.env.XDG_RUNTIME_DIR ??= '/tmp';
const required = process.env.FLUXION_REQUIRE_WEBGPU === '1';
const bin = (name) => join(root, 'node_modules', '.bin', name);
const run = (title, cmd, args, env = {}) => {
  console.log(`\n== ${title}`);
  const start = Date.now();
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } });
  console.log(`== ${title}: ${((Date.now() - start) / 1000).toFixed(1)} s`);
  return r.status === 0;
};

/** SwiftShader's Vulkan driver as Debian's chromium package installs it. */
const SWIFTSHADER_ICD = process.env.FLUXION_SWIFTSHADER_ICD ?? '/usr/lib/chromium/vk_swiftshader_icd.json';

/**
 * Test files that initialise WebGPU (through webgpu-env.ts), relative to the root. A file whose
 * text holds the marker `first adapter only:` followed by its reason (a model-level check whose
 * kernels the other files already cover on every adapter, too slow for SwiftShader) runs on the
 * first adapter alone.
 */
function webgpuTestFiles() {
  const files = [];
  for (const pkg of readdirSync(join(root, 'packages'))) {
    const dir = join(root, 'packages', pkg, 'test');
    if (!existsSync(dir)) continue;
    for (const name of readdirSync(dir)) {
      if (!name.endsWith('.test.ts')) continue;
      const path = join('packages', pkg, 'test', name);
      const text = readFileSync(join(root, path), 'utf8');
      if (text.includes('webgpuEnv(') && !/first adapter only: \S/.test(text)) files.push(path);
    }
  }
  return files;
}

const checks = [
  run('biome check', bin('biome'), ['check', '.']),
  run('tsc --noEmit', bin('tsc'), ['-p', 'tsconfig.json', '--noEmit']),
];
// Reports and the fuzz log go to a fresh temporary folder, removed at the end.
const scratch = mkdtempSync(join(tmpdir(), 'fluxion-test-'));
const fuzzLog = join(scratch, 'fuzz.jsonl');
const userArgs = process.argv.slice(2);

/** One vitest run with its JSON report; returns [passed, failed, skipped]. */
function vitest(title, files, env) {
  const report = join(scratch, `${title.replace(/\W+/g, '-')}.json`);
  const ok = run(
    title,
    bin('vitest'),
    ['run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`, ...files],
    { FLUXION_FUZZ_LOG: fuzzLog, ...env },
  );
  if (!existsSync(report)) return [0, ok ? 0 : 1, 0];
  const r = JSON.parse(readFileSync(report, 'utf8'));
  rmSync(report, { force: true });
  let failed = r.numFailedTests;
  // A suite that failed to load has no failed tests but must count.
  failed += r.testResults.filter(
    (f) => f.status === 'failed' && f.assertionResults.every((a) => a.status !== 'failed'),
  ).length;
  if (!ok && failed === 0) failed = 1;
  return [r.numPassedTests, failed, r.numPendingTests + r.numTodoTests];
}

const totals = [vitest('vitest', userArgs, {})];
if (process.env.FLUXION_SWIFTSHADER !== '0') {
  // With file arguments, only those among the WebGPU suites run again.
  const all = webgpuTestFiles();
  const files = userArgs.length ? all.filter((f) => userArgs.some((a) => f.includes(a))) : all;
  if (files.length && !existsSync(SWIFTSHADER_ICD)) {
    console.log(`\n== vitest on SwiftShader: ${SWIFTSHADER_ICD} not found (install chromium)`);
    if (required) totals.push([0, 1, 0]);
  } else if (files.length) {
    totals.push(
      vitest('vitest on SwiftShader', files, {
        VK_ICD_FILENAMES: SWIFTSHADER_ICD,
        FLUXION_WEBGPU_EXPECT: 'swiftshader',
      }),
    );
  }
}

let passed = 0;
let failed = checks.filter((ok) => !ok).length;
let skipped = 0;
for (const [p, f, s] of totals) {
  passed += p;
  failed += f;
  skipped += s;
}
if (existsSync(fuzzLog)) {
  const byLabel = new Map();
  for (const line of readFileSync(fuzzLog, 'utf8').split('\n').filter(Boolean)) {
    const { label, cases, mismatches } = JSON.parse(line);
    const sum = byLabel.get(label) ?? { cases: 0, mismatches: 0 };
    byLabel.set(label, { cases: sum.cases + cases, mismatches: sum.mismatches + mismatches });
  }
  console.log('');
  for (const [label, { cases, mismatches }] of byLabel) {
    console.log(`fuzzed ${label}: ${cases} random cases against the reference, ${mismatches} mismatches`);
  }
}
rmSync(scratch, { recursive: true, force: true });
console.log(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(checks.every(Boolean) && failed === 0 ? 0 : 1);
