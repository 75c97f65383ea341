/**
 * `--isolate`: each engine runs in a child process of its own (this same script), and the parent
 * gathers their rows. Engines sharing one process slow each other's WebGPU work down (their
 * devices, buffers and Dawn's event polling live side by side; on lavapipe Fluxion's GAN step
 * measured 79 ms next to the peers and 56–65 ms without them), so isolated runs compare engines
 * each at its best. References are computed in every child, as in a single-process run.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BenchResult, readResults } from './harness.js';
import { type ProbeReading, speedProbe } from './probe.js';
import type { SuiteOptions } from './suite.js';

/**
 * The command line of the child that runs one engine: the same suites and options, that engine
 * only, results written to `outDir`, no speed probe of its own.
 *
 * @example
 * ```ts
 * isolatedArgs(['train'], options, 'tfjs-webgpu', '/tmp/x');
 * // ['train', '--engines', 'tfjs-webgpu', '--runs', '5', …, '--out', '/tmp/x']
 * ```
 */
export function isolatedArgs(suites: string[], o: SuiteOptions, label: string, outDir: string): string[] {
  return [
    ...suites,
    ...['--engines', label, '--runs', String(o.runs), '--warmup', String(o.warmup)],
    ...['--budget-ms', String(o.budgetMs), '--max-steps', String(o.maxSteps)],
    ...(o.quick ? ['--quick'] : []),
    ...(o.filter ? ['--filter', o.filter] : []),
    ...['--out', outDir],
    // The parent reads the speed probe around each child.
    '--no-probe',
  ];
}

/**
 * Runs each engine in a child process of its own and returns every child's rows, in order, with
 * the adapter's speed probe (`probe.ts`) read just before and just after each child.
 */
export async function runIsolated(
  suites: string[],
  options: SuiteOptions,
  engines: string[],
): Promise<{ rows: BenchResult[]; probes: ProbeReading[] }> {
  // The bundle this code runs in (run-ts.mjs's output, or the GPU kit's bench.mjs).
  const self = fileURLToPath(import.meta.url);
  const rows: BenchResult[] = [];
  const probes: ProbeReading[] = [];
  for (const label of engines) {
    const dir = mkdtempSync(join(tmpdir(), 'fluxion-bench-'));
    try {
      console.error(`bench: ${label} in a process of its own`);
      const before = await speedProbe();
      const run = spawnSync(process.execPath, [self, ...isolatedArgs(suites, options, label, dir)], {
        stdio: ['ignore', 'ignore', 'inherit'],
      });
      probes.push({ label, before, after: await speedProbe() });
      const file = readdirSync(dir).find((f) => f.endsWith('.json'));
      if (run.status !== 0 || !file)
        console.error(`bench: ${label} failed (exit ${run.status ?? run.signal})`);
      else rows.push(...readResults(join(dir, file)));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return { rows, probes };
}
