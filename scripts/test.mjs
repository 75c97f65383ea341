#!/usr/bin/env node
// The whole test suite, as the README's second command (`pnpm test`) and CI run it:
//   1. Biome (format + lint), 2. tsc --noEmit, 3. vitest over every package.
// Ends with one plain line `N passed, N failed` (vitest's tests, plus one failure per failed
// check), and exits non-zero when anything failed. Set FLUXION_REQUIRE_WEBGPU=1 (CI does) to make
// the WebGPU suites fail instead of skip when no adapter is found.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
process.env.XDG_RUNTIME_DIR ??= '/tmp';
const bin = (name) => join(root, 'node_modules', '.bin', name);
const run = (title, cmd, args) => {
  console.log(`\n== ${title}`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env: process.env });
  return r.status === 0;
};

const checks = [
  run('biome check', bin('biome'), ['check', '.']),
  run('tsc --noEmit', bin('tsc'), ['-p', 'tsconfig.json', '--noEmit']),
];
const report = join(root, '.vitest-report.json');
rmSync(report, { force: true });
const vitestOk = run('vitest', bin('vitest'), [
  'run',
  '--reporter=default',
  '--reporter=json',
  `--outputFile.json=${report}`,
  ...process.argv.slice(2),
]);
let passed = 0;
let failed = checks.filter((ok) => !ok).length;
let skipped = 0;
if (existsSync(report)) {
  const r = JSON.parse(readFileSync(report, 'utf8'));
  passed += r.numPassedTests;
  failed += r.numFailedTests;
  skipped += r.numPendingTests + r.numTodoTests;
  // A suite that failed to load has no failed tests but must count.
  failed += r.testResults.filter(
    (f) => f.status === 'failed' && f.assertionResults.every((a) => a.status !== 'failed'),
  ).length;
} else if (!vitestOk) failed += 1;
const ok = checks.every(Boolean) && vitestOk && failed === 0;
console.log(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(ok ? 0 : 1);
