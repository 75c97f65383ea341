/**
 * What the `fluxion` commands share for every family of models (images, text, audio): strict
 * numeric options, the backend choice, the checks of `--resume` against a checkpoint, the
 * prologue of `train` (run options, output folder, resumed settings) and the training run itself —
 * the banner, the progress bar, the checkpoint after every epoch and at the end, the error that
 * names the last checkpoint kept, and freeing the model however it ends.
 */
import { join } from 'node:path';
import * as tensorApi from '@fluxion/tensor';
import { FluxionError, setBackend } from '@fluxion/tensor';
import cliProgress from 'cli-progress';
import { type CheckpointMeta, prepareOutputDir, readCheckpointMeta } from './checkpoint.js';
import type { LossHistory, StepInfo, TrainPosition } from './train.js';

/**
 * A bad command line: printed with the command's usage, exit code 2.
 *
 * @example
 * ```ts
 * throw new UsageError("--top-k must be an integer from 1 to 100000, got '0'");
 * ```
 */
export class UsageError extends Error {
  /** The usage text to print with it (the command's by default). */
  usage?: string;
}

/**
 * Runs `f`; a {@link UsageError} it throws without a usage text of its own gets `usage` (e.g. the
 * text models' `train` options rather than the image models').
 *
 * @example
 * ```ts
 * await withUsage(TEXT_USAGE.train, () => trainText(kind, values));
 * ```
 */
export async function withUsage<T>(usage: string, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (e instanceof UsageError) e.usage ??= usage;
    throw e;
  }
}

/** The accepted values of a numeric option. */
interface Limits {
  min: number;
  max: number;
  /** A real number rather than an integer. */
  real?: boolean;
  /** `min` itself is excluded. */
  aboveMin?: boolean;
}

/** Every numeric option and its limits (integers in decimal digits only: no `0x2`, `1e3` or ` 2`). */
export const LIMITS = {
  epochs: { min: 1, max: 100_000 },
  'batch-size': { min: 1, max: 1_000_000 },
  lr: { min: 0, max: 1, real: true, aboveMin: true },
  latent: { min: 1, max: 1024 },
  seed: { min: 0, max: 2 ** 32 - 1 },
  'max-steps': { min: 1, max: 1_000_000_000 },
  minutes: { min: 0, max: 1_000_000, real: true, aboveMin: true },
  n: { min: 1, max: 10_000 },
  label: { min: 0, max: 1_000_000 },
  'iwae-k': { min: 1, max: 100_000 },
  // text models
  context: { min: 1, max: 65_536 },
  dim: { min: 1, max: 65_536 },
  layers: { min: 1, max: 1000 },
  heads: { min: 1, max: 1024 },
  hidden: { min: 1, max: 65_536 },
  dropout: { min: 0, max: 0.99, real: true },
  warmup: { min: 0, max: 1_000_000_000 },
  'kl-warmup': { min: 0, max: 1_000_000_000 },
  temperature: { min: 0, max: 100, real: true },
  'top-k': { min: 1, max: 1_000_000 },
  samples: { min: 1, max: 1_000_000 },
  // text sample length (characters) and audio clip length (samples)
  length: { min: 1, max: 10_000_000 },
  // audio models
  'model-size': { min: 1, max: 1024 },
  'griffin-lim-iters': { min: 0, max: 100_000 },
} satisfies Record<string, Limits>;

/** The name of a numeric option. */
export type NumberOptionName = keyof typeof LIMITS;

const INTEGER = /^\d+$/;
const REAL = /^(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

/**
 * The value of a numeric option parsed strictly, or undefined when it was not given; a bad value
 * is a {@link UsageError} that names the option, its limits and the text typed.
 *
 * @example
 * ```ts
 * numberOption({ epochs: '3' }, 'epochs'); // 3
 * numberOption({ epochs: '0x2' }, 'epochs'); // throws "--epochs must be an integer from 1 to 100000, got '0x2'"
 * ```
 */
export function numberOption(values: Record<string, unknown>, name: NumberOptionName): number | undefined {
  const text = values[name];
  if (text === undefined) return undefined;
  const { min, max, real = false, aboveMin = false }: Limits = LIMITS[name];
  const n = Number(text);
  const ok = (real ? REAL : INTEGER).test(String(text)) && (aboveMin ? n > min : n >= min) && n <= max;
  if (!ok) {
    const range = real
      ? `a number ${aboveMin ? 'above' : 'from'} ${min} up to ${max}`
      : `an integer from ${min} to ${max}`;
    throw new UsageError(`--${name} must be ${range}, got '${text}'`);
  }
  return n;
}

/**
 * Refuses options that were given but do not apply (`--latent` for a text model, `--prompt` for
 * an image model): a {@link UsageError} naming them and what they apply to.
 *
 * @example
 * ```ts
 * refuseOptions(values, ['latent', 'label'], 'a charlm'); // "--latent does not apply to a charlm"
 * ```
 */
export function refuseOptions(values: Record<string, unknown>, names: readonly string[], what: string): void {
  const given = names.filter((n) => values[n] !== undefined);
  if (given.length > 0)
    throw new UsageError(
      `${given.map((n) => `--${n}`).join(', ')} ${given.length > 1 ? 'do' : 'does'} not apply to ${what}`,
    );
}

/**
 * Checks a `--backend` value (before anything starts).
 *
 * @example
 * ```ts
 * checkBackendName('gpu'); // throws "--backend must be webgpu or cpu, got 'gpu'"
 * ```
 */
export function checkBackendName(name: string | undefined): void {
  if (name !== undefined && name !== 'webgpu' && name !== 'cpu')
    throw new UsageError(`--backend must be webgpu or cpu, got '${name}'`);
}

/**
 * Selects the backend: the named one, or WebGPU when an adapter exists (one line otherwise).
 *
 * @example
 * ```ts
 * await chooseBackend('cpu'); // 'cpu'
 * ```
 */
export async function chooseBackend(name: string | undefined): Promise<string> {
  checkBackendName(name);
  const api = tensorApi as unknown as {
    initWebGPU?: () => Promise<unknown>;
    useBestBackend?: () => Promise<string>;
  };
  if (name === 'cpu') {
    setBackend('cpu');
    return 'cpu';
  }
  if (name === 'webgpu') {
    if (!api.initWebGPU) throw new FluxionError('fluxion', 'this build has no WebGPU backend');
    await api.initWebGPU();
    return 'webgpu';
  }
  return api.useBestBackend ? api.useBestBackend() : 'cpu';
}

/**
 * Reads the checkpoint that `--resume` continues and refuses the flags given with another value
 * than the run's own (`saved`, from the checkpoint): one {@link UsageError} listing each, with the
 * checkpoint's value (`unset[flag]` names a value the run left at its default, e.g. "the built-in
 * digits"). Also refuses a checkpoint of another kind.
 *
 * @example
 * ```ts
 * const { meta, saved } = readResume('runs/vae', 'vae', { seed: 3 }, (m) => ({ seed: m.config.seed }));
 * ```
 */
export function readResume<S extends Record<string, unknown>>(
  out: string,
  kind: string,
  given: Partial<S>,
  settings: (meta: CheckpointMeta) => S,
  unset: Partial<Record<keyof S, string>> = {},
): { meta: CheckpointMeta; saved: S } {
  const meta = readCheckpointMeta(out);
  if (meta.config.kind !== kind)
    throw new UsageError(`--resume: ${out} holds a ${meta.config.kind}, not a ${kind}`);
  const saved = settings(meta);
  const differ = (Object.keys(given) as (keyof S & string)[]).filter(
    (k) => given[k] !== undefined && given[k] !== saved[k],
  );
  if (differ.length > 0) {
    const list = differ.map(
      (k) => `--${k} ${given[k]} (the checkpoint's: ${saved[k] ?? unset[k] ?? 'the default'})`,
    );
    throw new UsageError(
      `--resume continues the run in '${out}' with its own settings, and these differ: ${list.join(', ')}; drop them, or start a new run in another --out`,
    );
  }
  return { meta, saved };
}

/**
 * The run options a checkpoint records (`run.batchSize`, `run.epochs`, `run.data`), checked: a
 * hand-edited value is a {@link FluxionError} naming it.
 *
 * @example
 * ```ts
 * savedRun(meta, 'runs/vae'); // { batchSize: 128, epochs: 5, data: 'mnist-package' }
 * ```
 */
export function savedRun(
  meta: CheckpointMeta,
  out: string,
): { batchSize: number; epochs: number | undefined; data: string } {
  const { batchSize, epochs, data } = meta.run;
  const bad = (what: string, v: unknown) =>
    new FluxionError(
      'resume',
      `the checkpoint in '${out}' is not valid: run.${what} is ${JSON.stringify(v)}`,
    );
  if (!Number.isSafeInteger(batchSize) || (batchSize as number) < 1) throw bad('batchSize', batchSize);
  if (epochs !== undefined && (!Number.isSafeInteger(epochs) || (epochs as number) < 1))
    throw bad('epochs', epochs);
  if (typeof data !== 'string') throw bad('data', data);
  return { batchSize: batchSize as number, epochs: epochs as number | undefined, data };
}

/**
 * Checks that a checkpoint's position is one this run could have reached: a batch inside an epoch
 * of `stepsPerEpoch` batches, a step count that matches it, a loss history of that many steps, and
 * epochs left to train (a hand-edited or foreign position is an error, not "trained 0 steps").
 *
 * @example
 * ```ts
 * checkResumePosition(meta, 'runs/vae', 70, 5); // throws when the checkpoint has finished 5 epochs
 * ```
 */
export function checkResumePosition(
  meta: CheckpointMeta,
  out: string,
  stepsPerEpoch: number,
  epochs: number,
): void {
  const { epoch, step, globalStep } = meta.position;
  const where = `the checkpoint in '${out}' (epoch ${epoch}, batch ${step}, step ${globalStep})`;
  if (step >= stepsPerEpoch || epoch * stepsPerEpoch + step !== globalStep) {
    throw new FluxionError(
      'resume',
      `${where} does not fit this run's ${stepsPerEpoch} batches per epoch: the checkpoint was edited, or trained on other data`,
    );
  }
  const lengths = Object.entries(meta.history).filter(([, h]) => h.length !== globalStep);
  if (lengths.length > 0) {
    const [name, h] = lengths[0];
    throw new FluxionError(
      'resume',
      `${where} has a '${name}' loss history of ${h.length} steps: the checkpoint was edited`,
    );
  }
  const metrics = Object.entries(meta.epochMetrics ?? {}).filter(([, m]) => m.length !== epoch);
  if (metrics.length > 0) {
    const [name, m] = metrics[0];
    throw new FluxionError(
      'resume',
      `${where} has ${m.length} '${name}' figures for ${epoch} epochs: the checkpoint was edited`,
    );
  }
  if (epoch >= epochs)
    throw new UsageError(
      `--resume: ${where} has finished its ${epochs} epochs; pass --epochs above ${epoch} to train further`,
    );
}

/**
 * The settings every family's `--resume` checks: batch size and epochs (what `run` of a checkpoint
 * records), learning rate and seed (every model's config has them).
 */
export interface RunSettings extends Record<string, unknown> {
  'batch-size': number;
  epochs: number | undefined;
  lr: number;
  seed: number;
}

/** What a family's `train` tells {@link trainPrologue}. */
export interface TrainPrologueSpec<S extends Record<string, unknown>> {
  /** The options given that `--resume` must find equal to the checkpoint's (parsed and checked). */
  given: Partial<S & RunSettings>;
  /** The checkpoint's values of those options (besides those of {@link RunSettings}). */
  settings: (meta: CheckpointMeta, run: ReturnType<typeof savedRun>) => S;
  /** How to name a setting the run left at its default (see {@link readResume}). */
  unset?: Partial<Record<keyof S, string>>;
  /** The batch size of a fresh run without `--batch-size`. */
  batchSize: number;
  /** More checks of the family's own, run once every option is parsed, before the output folder is made. */
  check?: () => void;
}

/** What {@link trainPrologue} settles for a family's `train`. */
export interface TrainPlan<S extends Record<string, unknown>> {
  kind: string;
  /** The output folder (made). */
  out: string;
  /** The checkpoint that `--resume` continues and its settings (undefined for a fresh run). */
  resumed?: { meta: CheckpointMeta; saved: S & RunSettings };
  saved?: S & RunSettings;
  /** Epochs in all: `--epochs`, the checkpoint's, or 5. */
  epochs: number;
  /** The checkpoint's batch size, `--batch-size`, or the family's default. */
  batchSize: number;
  maxSteps?: number;
  /** `--minutes` in seconds. */
  seconds?: number;
  /** `--backend` (checked; started by {@link startTraining}). */
  backend?: string;
}

/**
 * The prologue of `fluxion train` for every family, after the family has parsed its own options
 * into `spec.given`: the run options (`--epochs`, `--max-steps`, `--minutes`, `--backend`)
 * checked, the family's `spec.check`, the output folder made (`--out`, default `out/<kind>`), and
 * with `--resume` the checkpoint there read and checked against the options given. Nothing is
 * loaded and no backend starts here.
 *
 * @example
 * ```ts
 * const plan = trainPrologue('vae', values, { given, settings: (meta) => ({ lr: meta.config.lr }), batchSize: 128 });
 * ```
 */
export function trainPrologue<S extends Record<string, unknown>>(
  kind: string,
  values: Record<string, unknown> & { backend?: string; out?: string; resume?: boolean },
  spec: TrainPrologueSpec<S>,
): TrainPlan<S> {
  const epochsGiven = numberOption(values, 'epochs');
  const maxSteps = numberOption(values, 'max-steps');
  const minutes = numberOption(values, 'minutes');
  checkBackendName(values.backend);
  spec.check?.();
  const out = values.out ?? join('out', kind);
  prepareOutputDir(out);
  const resumed = values.resume
    ? readResume<S & RunSettings>(
        out,
        kind,
        spec.given,
        (meta) => {
          const run = savedRun(meta, out);
          const { lr, seed } = meta.config;
          return { ...spec.settings(meta, run), 'batch-size': run.batchSize, epochs: run.epochs, lr, seed };
        },
        spec.unset as Partial<Record<keyof (S & RunSettings), string>>,
      )
    : undefined;
  const saved = resumed?.saved;
  return {
    kind,
    out,
    resumed,
    saved,
    epochs: epochsGiven ?? saved?.epochs ?? 5,
    batchSize: saved?.['batch-size'] ?? spec.given['batch-size'] ?? spec.batchSize,
    maxSteps,
    seconds: minutes === undefined ? undefined : minutes * 60,
    backend: values.backend,
  };
}

/** What {@link startTraining} passes to a family's training loop (`fit`, `fitText`, `fitAudio`). */
export interface TrainLoopOptions {
  epochs: number;
  batchSize: number;
  from?: TrainPosition;
  maxSteps?: number;
  seconds?: number;
  history: LossHistory;
  onStep: (info: StepInfo) => void;
  onEpoch: (position: TrainPosition, history: LossHistory) => Promise<void>;
}

/** A model that a command frees when done (see {@link disposeModel}). */
type CommandModel = Parameters<typeof disposeModel>[0];

/** What a family's `train` tells {@link startTraining}, once its data and config are settled. */
export interface TrainingSpec<M extends CommandModel> {
  /** Batches per epoch of the training data. */
  stepsPerEpoch: number;
  /** Loads the checkpoint that `--resume` continues (the model and its metadata). */
  load: (out: string) => { model: M; meta: CheckpointMeta };
  /** A fresh model. */
  create: () => M | Promise<M>;
  /** The banner's description of the data (`9000 images`, `names`) and what to add about it. */
  data: string;
  details?: string;
  /** Runs the family's training loop. */
  fit: (model: M, options: TrainLoopOptions) => Promise<{ history: LossHistory; position: TrainPosition }>;
  /** Writes the checkpoint and the pictures, samples and curves of a position. */
  snapshot: (model: M, position: TrainPosition, history: LossHistory) => Promise<void>;
}

/**
 * The rest of `fluxion train` for every family: checks a resumed position against the data, starts
 * the backend, loads the checkpoint or creates the model, prints the banner and runs the training
 * ({@link runTraining}), then frees the model however it ends.
 *
 * @example
 * ```ts
 * await startTraining(plan, { stepsPerEpoch, load: loadCheckpoint, create: () => createModel(kind), data: '9000 images', fit, snapshot });
 * ```
 */
export async function startTraining<S extends Record<string, unknown>, M extends CommandModel>(
  plan: TrainPlan<S>,
  spec: TrainingSpec<M>,
): Promise<void> {
  const { kind, out, resumed, epochs, batchSize, maxSteps, seconds } = plan;
  const { stepsPerEpoch } = spec;
  if (resumed) checkResumePosition(resumed.meta, out, stepsPerEpoch, epochs);
  const backend = await chooseBackend(plan.backend);
  let model: M;
  let history: LossHistory = {};
  const from = resumed?.meta.position;
  if (resumed) {
    const loaded = spec.load(out);
    model = loaded.model;
    history = loaded.meta.history;
  } else model = await spec.create();
  try {
    console.log(
      `training ${kind} on ${spec.data} (${spec.details ? `${spec.details}; ` : ''}batch ${batchSize}, ${stepsPerEpoch} steps/epoch, ${epochs} epochs) on ${backend}; output in ${out}`,
    );
    await runTraining({
      out,
      from,
      total: plannedTotal(epochs, stepsPerEpoch, from, maxSteps),
      fit: (hooks) => spec.fit(model, { epochs, batchSize, from, maxSteps, seconds, history, ...hooks }),
      snapshot: (position, history) => spec.snapshot(model, position, history),
    });
  } finally {
    disposeModel(model);
  }
}

/** What {@link runTraining} runs: the loop, and what to write at a checkpoint. */
export interface TrainingRun {
  /** Where the checkpoint goes (for messages). */
  out: string;
  /** The resumed position (undefined for a fresh run). */
  from?: TrainPosition;
  /** The step at which this call stops (for the progress bar). */
  total: number;
  /**
   * Runs the training loop with these callbacks (`onEpoch` writes the checkpoint); returns the
   * history and the position reached.
   */
  fit(hooks: {
    onStep: (info: StepInfo) => void;
    onEpoch: (position: TrainPosition, history: LossHistory) => Promise<void>;
  }): Promise<{ history: LossHistory; position: TrainPosition }>;
  /** Writes the checkpoint and the pictures, samples and curves of a position. */
  snapshot(position: TrainPosition, history: LossHistory): Promise<void>;
}

/**
 * Runs a training loop under a progress bar, writing a checkpoint after every epoch and, when it
 * stops inside an epoch (`--max-steps`, `--minutes`), at the position it reached. However it ends,
 * the bar stops (its timer would keep the process alive); an error is rethrown with the step of
 * the last checkpoint kept.
 *
 * @example
 * ```ts
 * await runTraining({ out, total, fit: (hooks) => fit(model, train, { epochs, batchSize, ...hooks }), snapshot });
 * ```
 */
export async function runTraining(run: TrainingRun): Promise<void> {
  const { out, from } = run;
  const bar = new cliProgress.SingleBar(
    {
      format: '{bar} {value}/{total} | {losses} | {speed} steps/s | ETA {eta_formatted}',
      noTTYOutput: true,
      notTTYSchedule: 10_000,
      etaBuffer: 50,
    },
    cliProgress.Presets.shades_classic,
  );
  const started = performance.now();
  let stepsThisRun = 0;
  let lastSaved = from?.globalStep;
  const snapshot = async (position: TrainPosition, history: LossHistory) => {
    await run.snapshot(position, history);
    lastSaved = position.globalStep;
  };
  let result: Awaited<ReturnType<TrainingRun['fit']>>;
  // The bar redraws on a timer: it must stop however training ends, or the process never exits.
  bar.start(run.total, from?.globalStep ?? 0, { losses: '', speed: '…' });
  try {
    result = await run.fit({
      onStep: ({ globalStep, losses }) => {
        stepsThisRun++;
        const seconds = (performance.now() - started) / 1000;
        const text = Object.entries(losses)
          .map(([k, v]) => `${k} ${v.toFixed(3)}`)
          .join(' ');
        bar.update(globalStep, { losses: text, speed: (stepsThisRun / seconds).toFixed(2) });
      },
      onEpoch: snapshot,
    });
  } catch (e) {
    const kept =
      lastSaved === undefined
        ? 'no checkpoint was written'
        : `the last checkpoint in '${out}' is from step ${lastSaved}`;
    throw new FluxionError('train', `${(e as Error).message}\n${kept}`);
  } finally {
    bar.stop();
  }
  if (result.position.step > 0) await snapshot(result.position, result.history);
  const seconds = (performance.now() - started) / 1000;
  console.log(
    `trained ${stepsThisRun} steps in ${seconds.toFixed(1)} s (${(stepsThisRun / seconds).toFixed(2)} steps/s); wrote ${out}/`,
  );
}

/**
 * Moving averages of the loss history (window 20), so the curve shows the trend.
 *
 * @example
 * ```ts
 * writeFileAtomically('loss.png', lossCurve(smoothHistory(history)));
 * ```
 */
export function smoothHistory(history: Record<string, number[]>): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const [name, values] of Object.entries(history)) {
    let acc = 0;
    out[name] = values.map((v, i) => {
      acc += v - (i >= 20 ? values[i - 20] : 0);
      return acc / Math.min(i + 1, 20);
    });
  }
  return out;
}

/**
 * The planned number of steps of a run: every epoch, or up to `--max-steps` more than the
 * resumed position.
 *
 * @example
 * ```ts
 * plannedTotal(5, 70, undefined, 10); // 80
 * ```
 */
export function plannedTotal(
  epochs: number,
  stepsPerEpoch: number,
  from: TrainPosition | undefined,
  maxSteps: number | undefined,
): number {
  return Math.min(epochs * stepsPerEpoch, (from?.globalStep ?? 0) + (maxSteps ?? Number.POSITIVE_INFINITY));
}

/**
 * Frees what a command's model holds (its networks' parameters and buffers, its optimizers'
 * state) when the command is done with it, so that running commands in one process (tests, a
 * notebook) does not leave the tensors to the garbage collector.
 *
 * @example
 * ```ts
 * const { model } = loadCheckpoint(dir);
 * try { await writeSampleGrid(model, 'grid.png'); } finally { disposeModel(model); }
 * ```
 */
export function disposeModel(model: {
  modules(): Record<string, { dispose(): void }>;
  optimizers(): Record<string, { dispose(): void }>;
}): void {
  for (const optimizer of Object.values(model.optimizers())) optimizer.dispose();
  for (const module of Object.values(model.modules())) module.dispose();
}
