/**
 * The benchmark harness: warm-up, several timed runs, median / min / max; the one check of a result
 * against its reference; the results table with per-case ratios; and the JSON results file.
 *
 * Every suite measures through {@link timeRuns}, checks through {@link assertClose} and reports
 * {@link BenchResult}s; `main.ts` prints them with {@link formatTable} and stores them with
 * {@link writeResults} (and `chart.ts` draws them).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** One measured (or skipped) case of one engine. */
export interface BenchResult {
  suite: string;
  /** The case, e.g. `matmul 1024` or `gan step`. */
  name: string;
  /** `fluxion`, `tfjs`, `jax-js` or `pytorch`. */
  engine: string;
  /** The engine's backend: `webgpu`, `wasm`, `cpu`, `cuda`. */
  backend: string;
  /** Median time of one repetition, in milliseconds (NaN when skipped). */
  medianMs: number;
  minMs: number;
  maxMs: number;
  /** Timed runs. */
  runs: number;
  /** Repetitions inside one timed run (a run's time is divided by it). */
  reps: number;
  /** How time was taken: wall clock around the work and a sync that waits for the device. */
  timing: 'wall';
  /**
   * Device time of one repetition: the sum of its kernels' times from timestamp queries, measured
   * once after the timed runs where the engine can (Fluxion on an adapter with `timestamp-query`).
   * Wall time minus this is what the host adds: recording, submitting, waiting.
   */
  gpuMs?: number;
  /** Derived figures, e.g. `{ 'GFLOP/s': 43.1 }`; the first one is the chart's bar. */
  metrics: Record<string, number>;
  /** What the result was checked against before timing, e.g. `fluxion-cpu` or `closed form`. */
  checkedAgainst?: string;
  /** Why the case was not timed (unsupported, check failed, too slow for this engine). */
  skipped?: string;
}

/** One timing: per-repetition median / min / max over the timed runs. */
export interface Timing {
  medianMs: number;
  minMs: number;
  maxMs: number;
  runs: number;
  reps: number;
}

/** Timing options. */
export interface TimeOptions {
  /** Untimed calls first (compiles pipelines, fills pools). Default 1. */
  warmup?: number;
  /**
   * More untimed calls, until the warm-up has lasted this long. A training step's JavaScript runs
   * unoptimised for its first few dozen calls (Fluxion's VAE step on lavapipe spent 10 ms per step
   * recording its kernels in steps 1–10, 7 ms in steps 11–20 and 2.8 ms from then on), so a
   * step's steady speed, the one a training loop sees, needs a warm-up by time. Every engine gets
   * the same time. Default 0.
   */
  warmupMs?: number;
  /** Timed runs. Default 5. */
  runs?: number;
  /**
   * When > 0, repetitions per run are chosen so that one run lasts at least this long (a
   * calibration call measures one repetition), so that short operations are not dominated by the
   * final sync. Default 0: one repetition.
   */
  minRunMs?: number;
  /**
   * Fewer runs (at least one) when the calibrated run time says they would take longer; a single
   * run and no calibration when one warm-up call already took longer.
   */
  budgetMs?: number;
}

/**
 * Times `fn(reps)`, which must do `reps` repetitions of the work and return once the device has
 * finished them: `warmup` untimed calls (more while `warmupMs` has not passed), an optional
 * calibration of `reps`, then `runs` timed calls.
 * Times are reported per repetition.
 *
 * @example
 * ```ts
 * const t = await timeRuns(async (reps) => { for (let i = 0; i < reps; i++) step(); await sync(); });
 * console.log(t.medianMs);
 * ```
 */
export async function timeRuns(
  fn: (reps: number) => Promise<void> | void,
  { warmup = 1, warmupMs = 0, runs = 5, minRunMs = 0, budgetMs = Number.POSITIVE_INFINITY }: TimeOptions = {},
): Promise<Timing> {
  let lastMs = 0;
  const warmStart = performance.now();
  for (let i = 0; i < warmup || performance.now() - warmStart < warmupMs; i++) {
    const t0 = performance.now();
    await fn(1);
    lastMs = performance.now() - t0;
    if (lastMs > budgetMs) break;
  }
  let reps = 1;
  if (lastMs > budgetMs) {
    runs = 1; // one call already costs the whole budget: no calibration, one timed run
  } else if (minRunMs > 0 || (Number.isFinite(budgetMs) && runs > 1)) {
    const t0 = performance.now();
    await fn(1);
    const estimateMs = Math.max(performance.now() - t0, 1e-3);
    if (minRunMs > 0) reps = Math.min(1000, Math.max(1, Math.ceil(minRunMs / estimateMs)));
    runs = Math.max(1, Math.min(runs, Math.floor(budgetMs / (estimateMs * reps))));
  }
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await fn(reps);
    times.push((performance.now() - t0) / reps);
  }
  times.sort((a, b) => a - b);
  const mid = Math.floor(times.length / 2);
  const medianMs = times.length % 2 ? times[mid] : (times[mid - 1] + times[mid]) / 2;
  return { medianMs, minMs: times[0], maxMs: times[times.length - 1], runs, reps };
}

/** Tolerances of {@link assertClose}: `|actual − expected| ≤ atol + rtol·|expected|`. */
export interface Tolerance {
  rtol: number;
  atol: number;
}

/**
 * The one way a benchmark checks a result: element-wise closeness to a reference, throwing an
 * error that names the case, the worst element and both values.
 */
export function assertClose(
  what: string,
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  { rtol, atol }: Tolerance,
): void {
  if (actual.length !== expected.length) {
    throw new Error(`${what}: ${actual.length} values, the reference has ${expected.length}`);
  }
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < actual.length; i++) {
    const excess = Math.abs(actual[i] - expected[i]) - (atol + rtol * Math.abs(expected[i]));
    if (excess > worstExcess || Number.isNaN(excess)) {
      worst = i;
      worstExcess = Number.isNaN(excess) ? Number.POSITIVE_INFINITY : excess;
    }
  }
  if (worst >= 0) {
    throw new Error(
      `${what}: element ${worst} is ${actual[worst]}, the reference says ${expected[worst]} (rtol ${rtol}, atol ${atol})`,
    );
  }
}

/** A result for a case that was not timed, with the reason. */
export function skippedResult(
  suite: string,
  name: string,
  engine: string,
  backend: string,
  reason: string,
): BenchResult {
  const nan = Number.NaN;
  return {
    suite,
    name,
    engine,
    backend,
    medianMs: nan,
    minMs: nan,
    maxMs: nan,
    runs: 0,
    reps: 0,
    timing: 'wall',
    metrics: {},
    skipped: reason,
  };
}

/**
 * The row each case's ratios are taken against: Fluxion on WebGPU when it ran the case, else
 * Fluxion on the CPU.
 */
export function fluxionReference(results: readonly BenchResult[], r: BenchResult): BenchResult | undefined {
  const timed = results.filter(
    (x) => x.suite === r.suite && x.name === r.name && x.engine === 'fluxion' && !x.skipped,
  );
  return timed.find((x) => x.backend === 'webgpu') ?? timed.find((x) => x.backend === 'cpu');
}

/** `1.234` → `'1.23'`, with precision by magnitude so that small and large figures both read. */
export function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return '-';
  const a = Math.abs(v);
  return a >= 100 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : a >= 0.1 ? v.toFixed(2) : v.toPrecision(2);
}

/**
 * Formats results as an aligned table. The `fluxion ×` column is this row's time over the
 * Fluxion reference row's time for the same case ({@link fluxionReference}): how many times
 * faster Fluxion is than this engine (above 1: Fluxion is faster).
 */
export function formatTable(results: readonly BenchResult[]): string {
  const rows = results.map((r) => {
    const ref = fluxionReference(results, r);
    const ratio = ref && !r.skipped ? formatNumber(r.medianMs / ref.medianMs) : '';
    const metrics = Object.entries(r.metrics)
      .map(([k, v]) => `${formatNumber(v)} ${k}`)
      .join(' ');
    return [
      r.suite,
      r.name,
      `${r.engine} ${r.backend}`,
      r.skipped ? '' : formatNumber(r.medianMs),
      r.skipped ? '' : formatNumber(r.minMs),
      r.skipped ? '' : formatNumber(r.maxMs),
      r.gpuMs === undefined ? '' : formatNumber(r.gpuMs),
      r.skipped ? '' : `${r.runs}×${r.reps}`,
      r.skipped ? `skipped: ${r.skipped.length > 70 ? `${r.skipped.slice(0, 67)}...` : r.skipped}` : metrics,
      ratio,
    ];
  });
  const head = [
    'suite',
    'case',
    'engine',
    'median ms',
    'min ms',
    'max ms',
    'gpu ms',
    'runs',
    'throughput',
    'fluxion ×',
  ];
  return textTable(head, rows);
}

/**
 * Lines of text in aligned columns: a head, a rule of dashes, the rows. Columns are left-aligned
 * unless `rightAligned(column)` says otherwise (numbers read better right-aligned).
 *
 * @example
 * ```ts
 * textTable(['case', 'ms'], [['gan step', '58.4']], (c) => c > 0);
 * ```
 */
export function textTable(
  head: readonly string[],
  rows: readonly (readonly string[])[],
  rightAligned: (column: number) => boolean = () => false,
): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (rightAligned(i) ? c.padStart(widths[i]) : c.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/**
 * Where results go by default: bench/results of the repository around the working directory (the
 * nearest folder above it with pnpm-workspace.yaml), else ./bench-results (a GPU kit run elsewhere).
 */
export function defaultResultsDir(): string {
  let dir = process.cwd();
  while (!existsSync(join(dir, 'pnpm-workspace.yaml'))) {
    const up = dirname(dir);
    if (up === dir) return join(process.cwd(), 'bench-results');
    dir = up;
  }
  return join(dir, 'bench', 'results');
}

/** What a results file says about the run besides the results. */
export interface RunInfo {
  /** Short adapter name used in file names, e.g. `lavapipe` or `nvidia-h200`. */
  adapter: string;
  /** The adapter's own description, vendor and architecture. */
  adapterInfo?: Record<string, string>;
  /** The command line that produced the results. */
  command: string;
  /** Free-form remarks, e.g. `measured under load`. */
  notes?: string[];
}

/** `2026-11-29`, `lavapipe` → `2026-11-29-lavapipe`: the base name of a run's results files. */
export function resultsBaseName(adapter: string, date = new Date()): string {
  return `${date.toISOString().slice(0, 10)}-${adapter.replace(/[^A-Za-z0-9]+/g, '-').toLowerCase()}`;
}

/**
 * Writes results as JSON to `<dir>/<date>-<adapter>.json` (dir defaults to
 * {@link defaultResultsDir}) and returns the path.
 */
export function writeResults(info: RunInfo, results: readonly BenchResult[], dir?: string): string {
  const outDir = dir ?? defaultResultsDir();
  mkdirSync(outDir, { recursive: true });
  const file = join(outDir, `${resultsBaseName(info.adapter)}.json`);
  const body = { date: new Date().toISOString(), ...info, results };
  writeFileSync(file, `${JSON.stringify(body, null, 2)}\n`);
  return file;
}

/** Reads the results of a results file (this suite's or bench/pytorch_bench.py's). */
export function readResults(file: string): BenchResult[] {
  const body = JSON.parse(readFileSync(file, 'utf8')) as { results?: BenchResult[] };
  if (!Array.isArray(body.results)) throw new Error(`${file}: not a results file (no "results" list)`);
  return body.results.map((r) => ({ ...r, medianMs: r.medianMs ?? Number.NaN }));
}
