/**
 * How every suite runs a case on every engine: set up (untimed), check the result once against
 * the reference (Fluxion's CPU backend, or a closed form), time it with the harness, tear down.
 * A case that an engine cannot run, or whose check fails, becomes a skipped row with the reason,
 * so that one engine's gap never stops the run.
 */
import { type Engine, engineLabel } from './engines/engine.js';
import {
  assertClose,
  type BenchResult,
  skippedResult,
  type TimeOptions,
  type Tolerance,
  timeRuns,
} from './harness.js';

/** Cases whose repetition takes longer than this (e.g. an epoch) get no device-time measurement. */
const GPU_TIME_MAX_MS = 5000;

/** Command-line settings every suite sees. */
export interface SuiteOptions {
  /** Timed runs per case (default 5). */
  runs: number;
  /** Untimed warm-up calls per case (default 1). */
  warmup: number;
  /** Fewer, smaller cases, for a quick look while developing. */
  quick: boolean;
  /** Time budget of one case's timed runs, in milliseconds. */
  budgetMs: number;
  /** e2e: at most this many steps per epoch (0: the whole epoch). */
  maxSteps: number;
  /** Only cases whose name contains this text (empty: all). */
  filter: string;
}

/** What a suite gets: the engines to time, the reference engines, options and a logger. */
export interface SuiteContext {
  engines: Engine[];
  /** Engines whose results are the reference, in order of preference (Fluxion CPU first). */
  references: Engine[];
  options: SuiteOptions;
  log(line: string): void;
}

/** A suite: a named list of cases run on every engine. */
export type Suite = (ctx: SuiteContext) => Promise<BenchResult[]>;

/** One benchmark case; `S` is the state it sets up on an engine (uploaded inputs, a model). */
export interface BenchCase<S> {
  suite: string;
  name: string;
  /** Why this engine skips the case (e.g. too slow for a plain-JavaScript engine), or null. */
  skip?(engine: Engine): string | null;
  /** Uploads inputs / builds the model on the engine (untimed). */
  setup(engine: Engine): Promise<S>;
  /** Runs the case once and reads back the values to check (untimed). */
  values(engine: Engine, state: S): Promise<ArrayLike<number>>;
  /** The expected values in closed form; without it, the reference engine's `values`. */
  expected?: () => ArrayLike<number>;
  tolerance: Tolerance;
  /** Runs `reps` repetitions and returns once the device has finished them. */
  run(engine: Engine, state: S, reps: number): Promise<void>;
  teardown(engine: Engine, state: S): void;
  /** Derived figures from the median time of one repetition. */
  metrics(ms: number): Record<string, number>;
  /** Timing settings that override the suite's (e.g. `minRunMs` for short ops, one run of an epoch). */
  timing?: Pick<TimeOptions, 'minRunMs' | 'warmup' | 'warmupMs' | 'runs'>;
}

/** Runs a case once on an engine and returns its values (set up, read, torn down). */
async function valuesOn<S>(c: BenchCase<S>, engine: Engine): Promise<ArrayLike<number>> {
  await engine.activate();
  const state = await c.setup(engine);
  try {
    return await c.values(engine, state);
  } finally {
    c.teardown(engine, state);
  }
}

/** The reference values of a case and where they came from. */
async function referenceOf<S>(
  c: BenchCase<S>,
  ctx: SuiteContext,
): Promise<{ values: ArrayLike<number>; source: string } | string> {
  if (c.expected) return { values: c.expected(), source: 'closed form' };
  const failures: string[] = [];
  for (const ref of ctx.references) {
    try {
      return { values: await valuesOn(c, ref), source: engineLabel(ref) };
    } catch (e) {
      failures.push(`${engineLabel(ref)}: ${(e as Error).message}`);
    }
  }
  return `no reference (${failures.join('; ') || 'no reference engine'})`;
}

/** Runs one case on every engine of the context and returns one row per engine. */
export async function runCase<S>(c: BenchCase<S>, ctx: SuiteContext): Promise<BenchResult[]> {
  if (!c.name.includes(ctx.options.filter)) return [];
  ctx.log(`${c.suite}: ${c.name}`);
  const reference = await referenceOf(c, ctx);
  const rows: BenchResult[] = [];
  for (const engine of ctx.engines) {
    const label = engineLabel(engine);
    const skip = (reason: string) => {
      ctx.log(`  ${c.name} on ${label}: skipped (${reason})`);
      rows.push(skippedResult(c.suite, c.name, engine.engine, engine.backend, reason));
    };
    const why = c.skip?.(engine) ?? null;
    if (why) {
      skip(why);
      continue;
    }
    if (typeof reference === 'string') {
      skip(reference);
      continue;
    }
    let state: S | undefined;
    try {
      await engine.activate();
      state = await c.setup(engine);
      const s = state;
      assertClose(`${c.name} on ${label}`, await c.values(engine, s), reference.values, c.tolerance);
      const t = await timeRuns((reps) => c.run(engine, s, reps), {
        warmup: ctx.options.warmup,
        runs: ctx.options.runs,
        budgetMs: ctx.options.budgetMs,
        ...c.timing,
      });
      // One more repetition with its kernels timed on the device, unless that would take long.
      const gpuMs =
        engine.gpuTime && t.medianMs < GPU_TIME_MAX_MS
          ? await engine.gpuTime(() => c.run(engine, s, 1))
          : undefined;
      rows.push({
        suite: c.suite,
        name: c.name,
        engine: engine.engine,
        backend: engine.backend,
        ...t,
        timing: 'wall',
        ...(gpuMs !== undefined && { gpuMs }),
        metrics: c.metrics(t.medianMs),
        checkedAgainst: reference.source,
      });
      ctx.log(`  ${c.name} on ${label}: ${t.medianMs.toFixed(3)} ms`);
    } catch (e) {
      skip((e as Error).message.split('\n')[0].slice(0, 300));
    } finally {
      if (state !== undefined) c.teardown(engine, state);
    }
  }
  return rows;
}
