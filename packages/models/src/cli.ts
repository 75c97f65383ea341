/**
 * The `fluxion` command: train a model on MNIST (or IDX files), sample from a checkpoint, evaluate
 * a checkpoint. `runCli(argv)` returns the exit code: 0 on success, 2 for bad arguments.
 *
 *   fluxion train <gan|dcgan|cgan|wgan-gp|vae|convvae|cvae> [--epochs N] [--batch-size N] [--lr X]
 *                 [--latent N] [--seed N] [--backend webgpu|cpu] [--data DIR] [--out DIR]
 *                 [--resume] [--max-steps N]
 *   fluxion sample --checkpoint DIR [--n 64] [--label 7] [--out grid.png]
 *   fluxion eval --checkpoint DIR [--data DIR] [--iwae-k 50]
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as tensorApi from '@fluxion/tensor';
import { concat, FluxionError, setBackend, type Tensor } from '@fluxion/tensor';
import cliProgress from 'cli-progress';
import { loadCheckpoint, saveCheckpoint } from './checkpoint.js';
import { type ImageDataset, loadIdxDataset, loadMnist, splitDataset } from './data/dataset.js';
import { imageGrid, lossCurve } from './image/grid.js';
import { classifierFid, conditionalAccuracy, fidBaselines } from './metrics/index.js';
import { createModel, isGanKind, type ModelConfig } from './models/factory.js';
import { type GenerativeModel, MODEL_KINDS, type ModelKind, setTraining } from './models/model.js';
import { Vae } from './models/vae.js';
import { fit, type TrainPosition } from './train.js';

/** A bad command line: printed with the command's usage, exit code 2. */
export class UsageError extends Error {}

const USAGE: Record<string, string> = {
  main: `usage: fluxion <command> [options]

commands:
  train <model>   train a generative model (${MODEL_KINDS.join(', ')})
  sample          write a grid of samples from a checkpoint
  eval            evaluate a checkpoint (−ELBO / IWAE for VAEs, classifier-FID, conditional accuracy)

run 'fluxion <command> --help' for its options`,
  train: `usage: fluxion train <${MODEL_KINDS.join('|')}> [options]

  --epochs N         epochs to train (default 5)
  --batch-size N     batch size (default 64 for GANs, 128 for VAEs)
  --lr X             learning rate (default: the model's)
  --latent N         latent size (default: 100 for GANs, 32 for VAEs)
  --seed N           seed of initialisation, noise and data order (default 0)
  --backend NAME     webgpu or cpu (default: webgpu when an adapter exists)
  --data DIR         folder with IDX files (train-images-idx3-ubyte[.gz], …); default: the
                     10,000 MNIST digits of the 'mnist' package (9,000 train / 1,000 test)
  --out DIR          where checkpoints and images go (default out/<model>)
  --resume           continue the run saved in --out
  --max-steps N      stop after N steps (a short run)
  --minutes X        stop after X minutes of training (at a step boundary)
  --help             this text`,
  sample: `usage: fluxion sample --checkpoint DIR [--n 64] [--label D] [--out grid.png]

  --checkpoint DIR   a folder written by 'fluxion train'
  --n N              number of images (default 64)
  --label D          digit to generate (conditional models only)
  --out FILE         PNG to write (default samples.png)
  --backend NAME     webgpu or cpu`,
  eval: `usage: fluxion eval --checkpoint DIR [--data DIR] [--iwae-k K]

  --checkpoint DIR   a folder written by 'fluxion train'
  --data DIR         IDX folder of the test digits (default: the built-in 1,000 test digits)
  --iwae-k K         importance samples of the IWAE bound (default 50)
  --backend NAME     webgpu or cpu`,
};

function intOption(name: string, value: string | undefined, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min)
    throw new UsageError(`--${name} must be an integer ≥ ${min}, got '${value}'`);
  return n;
}

function numberOption(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0)
    throw new UsageError(`--${name} must be a positive number, got '${value}'`);
  return n;
}

/** Selects the backend: the named one, or WebGPU when an adapter exists (one line otherwise). */
async function chooseBackend(name: string | undefined): Promise<string> {
  if (name !== undefined && name !== 'webgpu' && name !== 'cpu')
    throw new UsageError(`--backend must be webgpu or cpu, got '${name}'`);
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

/** The train/test split of the built-in digits or of an IDX folder. */
function loadData(dir: string | undefined): { train: ImageDataset; test: ImageDataset } {
  if (!dir) return splitDataset(loadMnist(), 1000);
  const file = (stem: string) => {
    for (const name of [stem, `${stem}.gz`]) if (existsSync(join(dir, name))) return join(dir, name);
    return null;
  };
  const trainImages = file('train-images-idx3-ubyte');
  const trainLabels = file('train-labels-idx1-ubyte');
  if (!trainImages || !trainLabels) {
    throw new UsageError(
      `--data ${dir}: expected train-images-idx3-ubyte[.gz] and train-labels-idx1-ubyte[.gz] there`,
    );
  }
  const testImages = file('t10k-images-idx3-ubyte');
  const testLabels = file('t10k-labels-idx1-ubyte');
  const train = loadIdxDataset(trainImages, trainLabels);
  if (testImages && testLabels) return { train, test: loadIdxDataset(testImages, testLabels) };
  return splitDataset(train, Math.min(1000, Math.floor(train.count / 10)));
}

async function writeSampleGrid(model: GenerativeModel, path: string, n = 64, label?: number): Promise<void> {
  const labels = model.conditional
    ? Array.from({ length: n }, (_, i) => label ?? i % model.config.classes)
    : undefined;
  const images = model.sample(n, { labels });
  const data = await images.data();
  images.dispose();
  writeFileSync(path, imageGrid(data, n, model.config.height, model.config.width, 8));
}

async function writeReconstructions(model: Vae, test: ImageDataset, path: string): Promise<void> {
  const pixels = test.height * test.width;
  const n = 32;
  const x = tensorApi.tensor(test.images.slice(0, n * pixels), [n, pixels]);
  const y = tensorApi.tensor(test.labels.slice(0, n), [n]);
  const recon = model.reconstruct(x, model.conditional ? y : undefined);
  const r = await recon.data();
  for (const t of [x, y, recon]) t.dispose();
  // Rows alternate: four rows of originals, then their reconstructions below each.
  const both = new Float32Array(2 * n * pixels);
  for (let row = 0; row < 4; row++) {
    both.set(test.images.subarray(row * 8 * pixels, (row + 1) * 8 * pixels), 2 * row * 8 * pixels);
    both.set(r.subarray(row * 8 * pixels, (row + 1) * 8 * pixels), (2 * row + 1) * 8 * pixels);
  }
  writeFileSync(path, imageGrid(both, 2 * n, test.height, test.width, 8));
}

async function train(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      epochs: { type: 'string' },
      'batch-size': { type: 'string' },
      lr: { type: 'string' },
      latent: { type: 'string' },
      seed: { type: 'string' },
      backend: { type: 'string' },
      data: { type: 'string' },
      out: { type: 'string' },
      resume: { type: 'boolean' },
      'max-steps': { type: 'string' },
      minutes: { type: 'string' },
      help: { type: 'boolean' },
    },
  });
  if (values.help) {
    console.log(USAGE.train);
    return;
  }
  const kind = positionals[0] as ModelKind | undefined;
  if (!kind || !MODEL_KINDS.includes(kind) || positionals.length > 1) {
    throw new UsageError(kind ? `unknown model '${positionals.join(' ')}'` : 'missing the model to train');
  }
  const out = values.out ?? join('out', kind);
  const backend = await chooseBackend(values.backend);
  const { train: trainData, test } = loadData(values.data);
  let model: GenerativeModel;
  let from: TrainPosition | undefined;
  let history: Record<string, number[]> = {};
  let epochs = intOption('epochs', values.epochs, 5);
  let batchSize = intOption('batch-size', values['batch-size'], isGanKind(kind) ? 64 : 128);
  if (values.resume) {
    const loaded = loadCheckpoint(out);
    if (loaded.meta.config.kind !== kind)
      throw new UsageError(`--resume: ${out} holds a ${loaded.meta.config.kind}, not a ${kind}`);
    model = loaded.model;
    from = loaded.meta.position;
    history = loaded.meta.history;
    batchSize = Number(loaded.meta.run.batchSize ?? batchSize);
    if (values.epochs === undefined) epochs = Number(loaded.meta.run.epochs ?? epochs);
  } else {
    const overrides: Partial<ModelConfig> = { seed: intOption('seed', values.seed, 0, 0) };
    const lr = numberOption('lr', values.lr);
    if (lr !== undefined) overrides.lr = lr;
    if (values.latent !== undefined) overrides.latent = intOption('latent', values.latent, 0);
    model = createModel(kind, overrides);
  }
  mkdirSync(out, { recursive: true });
  const stepsPerEpoch = Math.floor(trainData.count / batchSize);
  const maxSteps =
    values['max-steps'] === undefined ? undefined : intOption('max-steps', values['max-steps'], 0);
  const minutes = numberOption('minutes', values.minutes);
  const total = Math.min(
    epochs * stepsPerEpoch,
    (from?.globalStep ?? 0) + (maxSteps ?? Number.POSITIVE_INFINITY),
  );
  console.log(
    `training ${kind} on ${trainData.count} images (batch ${batchSize}, ${stepsPerEpoch} steps/epoch, ${epochs} epochs) on ${backend}; output in ${out}`,
  );
  const bar = new cliProgress.SingleBar(
    {
      format: '{bar} {value}/{total} | {losses} | {speed} steps/s | ETA {eta_formatted}',
      noTTYOutput: true,
      notTTYSchedule: 10_000,
      etaBuffer: 50,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, from?.globalStep ?? 0, { losses: '', speed: '…' });
  const started = performance.now();
  let stepsThisRun = 0;
  const run = { batchSize, epochs, data: values.data ?? 'mnist-package' };
  const snapshot = async (position: TrainPosition) => {
    await saveCheckpoint(out, model, position, history, run);
    setTraining(model, false);
    await writeSampleGrid(model, join(out, `samples-epoch-${position.epoch}.png`));
    if (model instanceof Vae)
      await writeReconstructions(model, test, join(out, `reconstructions-epoch-${position.epoch}.png`));
    setTraining(model, true);
    writeFileSync(join(out, 'loss.png'), lossCurve(smoothHistory(history)));
  };
  const result = await fit(model, trainData, {
    epochs,
    batchSize,
    from,
    maxSteps,
    seconds: minutes === undefined ? undefined : minutes * 60,
    history,
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
  history = result.history;
  bar.stop();
  if (result.position.step > 0) await snapshot(result.position);
  const seconds = (performance.now() - started) / 1000;
  console.log(
    `trained ${stepsThisRun} steps in ${seconds.toFixed(1)} s (${(stepsThisRun / seconds).toFixed(2)} steps/s); wrote ${out}/`,
  );
}

/** Moving averages of the loss history (window 20), so the curve shows the trend. */
function smoothHistory(history: Record<string, number[]>): Record<string, number[]> {
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

async function sample(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      checkpoint: { type: 'string' },
      n: { type: 'string' },
      label: { type: 'string' },
      out: { type: 'string' },
      backend: { type: 'string' },
      help: { type: 'boolean' },
    },
  });
  if (values.help) {
    console.log(USAGE.sample);
    return;
  }
  if (!values.checkpoint) throw new UsageError('missing --checkpoint DIR');
  await chooseBackend(values.backend);
  const { model } = loadCheckpoint(values.checkpoint);
  const n = intOption('n', values.n, 64);
  let label: number | undefined;
  if (values.label !== undefined) {
    if (!model.conditional)
      throw new UsageError(`--label needs a conditional model; ${model.config.kind} is not one`);
    label = intOption('label', values.label, 0, 0);
    if (label >= model.config.classes)
      throw new UsageError(`--label must be below ${model.config.classes}, got ${label}`);
  }
  const out = values.out ?? 'samples.png';
  setTraining(model, false);
  await writeSampleGrid(model, out, n, label);
  console.log(`wrote ${n} samples of ${values.checkpoint} to ${out}`);
}

async function evaluate(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      checkpoint: { type: 'string' },
      data: { type: 'string' },
      'iwae-k': { type: 'string' },
      backend: { type: 'string' },
      help: { type: 'boolean' },
    },
  });
  if (values.help) {
    console.log(USAGE.eval);
    return;
  }
  if (!values.checkpoint) throw new UsageError('missing --checkpoint DIR');
  await chooseBackend(values.backend);
  const { model } = loadCheckpoint(values.checkpoint);
  const { train, test } = loadData(values.data);
  const k = intOption('iwae-k', values['iwae-k'], 50);
  const report = await evaluateModel(model, test, { iwaeK: k, train });
  for (const [name, value] of Object.entries(report)) console.log(`${name}: ${value.toFixed(3)}`);
}

/** Options of {@link evaluateModel}. */
export interface EvaluateOptions {
  /** Importance samples of the IWAE bound (VAEs). */
  iwaeK?: number;
  /** Test images evaluated by the likelihood bounds (default all). */
  limit?: number;
  /** Generated images compared with the test digits by classifier-FID (default 1000; 0 skips). */
  fidSamples?: number;
  /** Training digits: with them, the real-vs-real and noise-vs-real FID baselines are reported too. */
  train?: ImageDataset;
}

/**
 * `n` samples drawn `chunk` at a time and joined: a convolutional generator's intermediates for
 * 1,000 images at once outgrow a device's storage-binding limit (128 MiB on lavapipe).
 */
function sampleInChunks(model: GenerativeModel, n: number, chunk = 100): Tensor {
  const parts: Tensor[] = [];
  try {
    for (let start = 0; start < n; start += chunk) parts.push(model.sample(Math.min(chunk, n - start)));
    return parts.length === 1 ? parts[0] : concat(parts, 0);
  } finally {
    if (parts.length > 1) for (const p of parts) p.dispose();
  }
}

/**
 * The metrics of a model on test data: for VAEs the −ELBO and the IWAE bound in nats per image;
 * for every model the classifier-FID of its samples against the test digits (with the baselines
 * when `train` is given); for conditional models the accuracy of generated digits.
 *
 * @example
 * ```ts
 * const report = await evaluateModel(model, test, { iwaeK: 50, train });
 * // { negElbo: 98.1, iwae50: 93.4, classifierFid: 12.3, fidRealVsReal: 2.3, fidNoiseVsReal: 1190 }
 * ```
 */
export async function evaluateModel(
  model: GenerativeModel,
  test: ImageDataset,
  { iwaeK = 50, limit = test.count, fidSamples = 1000, train }: EvaluateOptions = {},
): Promise<Record<string, number>> {
  setTraining(model, false);
  const report: Record<string, number> = {};
  if (fidSamples > 0) {
    const samples = sampleInChunks(model, fidSamples);
    try {
      report.classifierFid = await classifierFid(samples, test.images);
    } finally {
      samples.dispose();
    }
    if (train) {
      const baselines = await fidBaselines({ count: fidSamples, train, test });
      report.fidRealVsReal = baselines.realVsReal;
      report.fidNoiseVsReal = baselines.noiseVsReal;
    }
    if (model.conditional) report.conditionalAccuracy = await conditionalAccuracy(model, fidSamples);
  }
  if (model instanceof Vae) {
    const pixels = test.height * test.width;
    const chunk = 100;
    let elbo = 0;
    let iwae = 0;
    let seen = 0;
    for (let start = 0; start < limit; start += chunk) {
      const n = Math.min(chunk, limit - start);
      const x = tensorApi.tensor(test.images.slice(start * pixels, (start + n) * pixels), [n, pixels]);
      const y = tensorApi.tensor(test.labels.slice(start, start + n), [n]);
      const labels = model.conditional ? y : undefined;
      elbo += (await model.negElbo(x, labels)) * n;
      iwae += (await model.iwaeBound(x, iwaeK, labels)) * n;
      seen += n;
      x.dispose();
      y.dispose();
    }
    report.negElbo = elbo / seen;
    report[`iwae${iwaeK}`] = iwae / seen;
  }
  return report;
}

/**
 * Runs the `fluxion` command line and returns its exit code (2 for bad arguments).
 *
 * @example
 * ```ts
 * process.exitCode = await runCli(['train', 'vae', '--epochs', '1']);
 * ```
 */
export async function runCli(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  const commands: Record<string, (args: string[]) => Promise<void>> = { train, sample, eval: evaluate };
  try {
    if (!command || command === '--help' || command === '-h' || command === 'help') {
      console.log(USAGE.main);
      return command ? 0 : 2;
    }
    const run = commands[command];
    if (!run) throw new UsageError(`unknown command '${command}'`);
    try {
      await run(rest);
    } catch (e) {
      // node:util parseArgs reports unknown or malformed options with these codes.
      const code = (e as { code?: string }).code;
      if (code?.startsWith('ERR_PARSE_ARGS')) throw new UsageError((e as Error).message);
      throw e;
    }
    return 0;
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`fluxion: ${e.message}\n\n${USAGE[command in USAGE ? command : 'main']}`);
      return 2;
    }
    console.error(`fluxion: ${(e as Error).message}`);
    return 1;
  }
}
