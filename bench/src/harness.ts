/**
 * The benchmark harness: warm-up, several timed runs, median / min / max, and a results file.
 * Each case checks its result once before timing (against the CPU backend or a closed form).
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** One measured case. */
export interface BenchResult {
  suite: string;
  name: string;
  engine: string;
  backend: string;
  /** Median wall time of one run, in milliseconds. */
  medianMs: number;
  minMs: number;
  maxMs: number;
  runs: number;
  /** Derived throughput, e.g. { gflops: 12.3 } or { gbps: 4.5 }. */
  metrics: Record<string, number>;
}

/** Timing options. */
export interface TimeOptions {
  warmup?: number;
  runs?: number;
}

/**
 * Times an async function: `warmup` untimed calls, then `runs` timed ones.
 *
 * @example
 * ```ts
 * const t = await timeRuns(async () => { await step(); }, { runs: 5 });
 * console.log(t.medianMs);
 * ```
 */
export async function timeRuns(
  fn: () => Promise<void> | void,
  { warmup = 1, runs = 5 }: TimeOptions = {},
): Promise<{ medianMs: number; minMs: number; maxMs: number; runs: number }> {
  for (let i = 0; i < warmup; i++) await fn();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  const mid = Math.floor(times.length / 2);
  const medianMs = times.length % 2 ? times[mid] : (times[mid - 1] + times[mid]) / 2;
  return { medianMs, minMs: times[0], maxMs: times[times.length - 1], runs };
}

/** Formats results as an aligned table. */
export function formatTable(results: readonly BenchResult[]): string {
  const rows = results.map((r) => [
    r.suite,
    r.name,
    r.engine,
    r.backend,
    r.medianMs.toFixed(3),
    r.minMs.toFixed(3),
    r.maxMs.toFixed(3),
    Object.entries(r.metrics)
      .map(([k, v]) => `${v.toFixed(2)} ${k}`)
      .join(' '),
  ]);
  const head = ['suite', 'case', 'engine', 'backend', 'median ms', 'min ms', 'max ms', 'throughput'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join('  ');
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/** The repository root: the nearest folder above the working directory with pnpm-workspace.yaml. */
export function repoRoot(): string {
  let dir = process.cwd();
  while (!existsSync(join(dir, 'pnpm-workspace.yaml'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('bench: run inside the Fluxion repository');
    dir = up;
  }
  return dir;
}

/** Writes results as JSON to bench/results/<date>-<adapter>.json and returns the path. */
export function writeResults(adapter: string, results: readonly BenchResult[]): string {
  const dir = join(repoRoot(), 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const date = new Date().toISOString().slice(0, 10);
  const file = join(dir, `${date}-${adapter.replace(/[^A-Za-z0-9]+/g, '-').toLowerCase()}.json`);
  writeFileSync(file, `${JSON.stringify({ date: new Date().toISOString(), adapter, results }, null, 2)}\n`);
  return file;
}
