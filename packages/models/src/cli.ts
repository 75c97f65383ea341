/**
 * The `fluxion` command: train a model on MNIST (or IDX files), on text (names, tiny Shakespeare,
 * a file) or on audio (spoken digits, a folder of WAV files), sample from a checkpoint, evaluate a
 * checkpoint. `runCli(argv)` returns the exit code: 0 on success, 2 for bad arguments, 1 for
 * any other error (a failed write, a non-finite loss, an invalid checkpoint). This file holds the
 * image models and the dispatch; `cli-text.ts` and `cli-audio.ts` the other families, and
 * `cli-common.ts` what they share (options, backend, resume checks, the training run).
 *
 *   fluxion train <gan|dcgan|cgan|wgan-gp|vae|convvae|cvae> [--epochs N] [--batch-size N] [--lr X]
 *                 [--latent N] [--seed N] [--backend webgpu|cpu] [--data DIR] [--out DIR]
 *                 [--resume] [--max-steps N]
 *   fluxion train <charlm|charrnn|textvae|textgan> --data names|shakespeare|FILE [...]
 *   fluxion train wavegan|specvae --data fsdd|DIR [...]
 *   fluxion sample --checkpoint DIR [--n 64] [--label 7] [--out grid.png]
 *   fluxion eval --checkpoint DIR [--data DIR] [--iwae-k 50] [--judge DIR]
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as tensorApi from '@fluxion/tensor';
import { concat, type Tensor } from '@fluxion/tensor';
import {
  loadCheckpoint,
  modelFamily,
  readCheckpointMeta,
  saveCheckpoint,
  writeFileAtomically,
} from './checkpoint.js';
import { AUDIO_SAMPLE_OPTIONS, AUDIO_TRAIN_USAGE, audioEval, audioSample, trainAudio } from './cli-audio.js';
import {
  checkBackendName,
  chooseBackend,
  disposeModel,
  numberOption,
  refuseOptions,
  smoothHistory,
  startTraining,
  trainPrologue,
  UsageError,
  withUsage,
} from './cli-common.js';
import {
  TEXT_EVAL_OPTIONS,
  TEXT_SAMPLE_OPTIONS,
  TEXT_USAGE,
  textEval,
  textSample,
  trainText,
} from './cli-text.js';
import { type ImageDataset, loadIdxDataset, loadMnist, splitDataset } from './data/dataset.js';
import { imageGrid, lossCurve } from './image/grid.js';
import {
  classifierFid,
  conditionalAccuracy,
  fidBaselines,
  formatLabelHistograms,
  type LabelHistogram,
  labelHistogram,
  labelHistogramWarnings,
  withClassifier,
} from './metrics/index.js';
import { AUDIO_MODEL_KINDS } from './models/audio-model.js';
import { createModel, isGanKind, type ModelConfig } from './models/factory.js';
import {
  type GenerativeModel,
  MODEL_KINDS,
  type ModelKind,
  pictureGenerator,
  setTraining,
} from './models/model.js';
import { TEXT_MODEL_KINDS } from './models/text-lm.js';
import { TEXT_LATENT_KINDS } from './models/text-vae.js';
import { Vae } from './models/vae.js';
import { fit } from './train.js';

export { UsageError };

/** Every kind `fluxion train` knows: images, text, audio. */
const ALL_KINDS: readonly string[] = [
  ...MODEL_KINDS,
  ...TEXT_MODEL_KINDS,
  ...TEXT_LATENT_KINDS,
  ...AUDIO_MODEL_KINDS,
];

/** Every text kind: the language models and the latent models. */
const ALL_TEXT_KINDS = [...TEXT_MODEL_KINDS, ...TEXT_LATENT_KINDS];

const USAGE: Record<string, string> = {
  main: `usage: fluxion <command> [options]

commands:
  train <model>   train a generative model: of images (${MODEL_KINDS.join(', ')}),
                  of text (${ALL_TEXT_KINDS.join(', ')}) or of audio (${AUDIO_MODEL_KINDS.join(', ')})
  sample          samples from a checkpoint: a PNG grid, text, or WAV files
  eval            evaluate a checkpoint (−ELBO / IWAE for VAEs, classifier-FID, conditional
                  accuracy; held-out nats and bits per character, sample statistics and
                  fluency for text)

run 'fluxion <command> --help' for its options ('fluxion train <model> --help' for a model's)`,
  train: `usage: fluxion train <${MODEL_KINDS.join('|')}> [options]

  --epochs N         epochs to train (default 5; 1 to 100000)
  --batch-size N     batch size (default 64 for GANs, 128 for VAEs; at most the training images)
  --lr X             learning rate, above 0 up to 1 (default: the model's)
  --latent N         latent size, 1 to 1024 (default: 100 for GANs, 32 for VAEs)
  --seed N           seed of initialisation, noise and data order, 0 to 4294967295 (default 0)
  --backend NAME     webgpu or cpu (default: webgpu when an adapter exists)
  --data DIR         folder with IDX files (train-images-idx3-ubyte[.gz], …); default: the
                     10,000 MNIST digits shipped in the package (9,000 train / 1,000 test)
  --out DIR          where the checkpoint (model.safetensors) and images go (default out/<model>)
  --resume           continue the run saved in --out with its own batch size, learning rate,
                     seed, latent size and data: any of these flags given with another value is
                     refused (--epochs may be raised to train further); bit-exact with the
                     uninterrupted run
  --max-steps N      stop after N steps (a short run)
  --minutes X        stop after X minutes of training (at a step boundary)
  --help             this text

Numbers are decimal (no 0x2 or 1e3 for integers). Every argument is checked before a backend
starts. A step whose loss is NaN or infinite stops the run with exit code 1 and keeps the last
checkpoint; so does any other error.`,
  sample: `usage: fluxion sample --checkpoint DIR [--n 64] [--label D] [--out grid.png]

  --checkpoint DIR   a folder written by 'fluxion train'
  --n N              number of images (default 64)
  --label D          digit to generate (conditional models only)
  --out FILE         PNG to write (default samples.png)
  --backend NAME     webgpu or cpu

Text models (${ALL_TEXT_KINDS.join(', ')}) print their samples:
${TEXT_SAMPLE_OPTIONS}

Audio models (${AUDIO_MODEL_KINDS.join(', ')}) write WAV files:
${AUDIO_SAMPLE_OPTIONS}`,
  eval: `usage: fluxion eval --checkpoint DIR [--data DIR] [--iwae-k K] [--judge DIR]

  --checkpoint DIR   a folder written by 'fluxion train'
  --data DIR         IDX folder of the test digits (default: the built-in 1,000 test digits)
  --iwae-k K         importance samples of the IWAE bound (default 50)
  --backend NAME     webgpu or cpu

Prints which digits 1,000 samples are (the shipped classifier's predictions) beside the test
digits, their entropy and effective number of classes, and a warning when a digit is never drawn
or one is above 20 % of the samples; then classifier-FID (and −ELBO, IWAE for VAEs).

Text models (${ALL_TEXT_KINDS.join(', ')}):
${TEXT_EVAL_OPTIONS}`,
};

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

/**
 * A grid of `n` samples drawn from the model's picture stream ({@link pictureGenerator}), never
 * from its training noise: writing pictures during a run leaves the run exactly as it was.
 */
async function writeSampleGrid(model: GenerativeModel, path: string, n = 64, label?: number): Promise<void> {
  const labels = model.conditional
    ? Array.from({ length: n }, (_, i) => label ?? i % model.config.classes)
    : undefined;
  const images = model.sample(n, { labels, generator: pictureGenerator(model.config.seed) });
  const data = await images.data();
  images.dispose();
  writeFileAtomically(path, imageGrid(data, n, model.config.height, model.config.width, 8));
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
  writeFileAtomically(path, imageGrid(both, 2 * n, test.height, test.width, 8));
}

/** What `run.data` records for the built-in digits. */
const BUILT_IN_DATA = 'mnist-package';

/** The options of `fluxion train`, for every family (each family refuses the ones not its own). */
const TRAIN_OPTIONS = {
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
  // text
  mode: { type: 'string' },
  context: { type: 'string' },
  dim: { type: 'string' },
  layers: { type: 'string' },
  heads: { type: 'string' },
  hidden: { type: 'string' },
  cell: { type: 'string' },
  dropout: { type: 'string' },
  warmup: { type: 'string' },
  'kl-warmup': { type: 'string' },
  // audio
  length: { type: 'string' },
  'model-size': { type: 'string' },
  unconditional: { type: 'boolean' },
} as const;

/** The parsed options of `fluxion train`. */
export type TrainValues = ReturnType<typeof parseArgs<{ options: typeof TRAIN_OPTIONS }>>['values'];

/** Options of `fluxion train` that only text models take. */
export const TEXT_TRAIN_ONLY = [
  'mode',
  'context',
  'dim',
  'layers',
  'heads',
  'hidden',
  'cell',
  'dropout',
  'warmup',
  'kl-warmup',
];
/** Options of `fluxion train` that only audio models take. */
export const AUDIO_TRAIN_ONLY = ['length', 'model-size', 'unconditional'];

async function train(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: TRAIN_OPTIONS });
  if (values.help) {
    const kind = positionals[0];
    const family = modelFamily(kind);
    console.log(
      family === 'text'
        ? TEXT_USAGE.train
        : family === 'audio'
          ? AUDIO_TRAIN_USAGE[kind as (typeof AUDIO_MODEL_KINDS)[number]]
          : USAGE.train,
    );
    return;
  }
  const kind = positionals[0];
  if (!kind || !ALL_KINDS.includes(kind) || positionals.length > 1) {
    throw new UsageError(kind ? `unknown model '${positionals.join(' ')}'` : 'missing the model to train');
  }
  const family = modelFamily(kind);
  if (family === 'text')
    return withUsage(TEXT_USAGE.train, () => trainText(kind as (typeof ALL_TEXT_KINDS)[number], values));
  if (family === 'audio') {
    const audioKind = kind as (typeof AUDIO_MODEL_KINDS)[number];
    return withUsage(AUDIO_TRAIN_USAGE[audioKind], () => trainAudio(audioKind, values));
  }
  refuseOptions(values, [...TEXT_TRAIN_ONLY, ...AUDIO_TRAIN_ONLY], `an image model (${kind})`);
  return trainImage(kind as ModelKind, values);
}

async function trainImage(kind: ModelKind, values: TrainValues): Promise<void> {
  // Every argument is checked, against the checkpoint too, before data loads or a backend starts.
  const given = {
    'batch-size': numberOption(values, 'batch-size'),
    lr: numberOption(values, 'lr'),
    seed: numberOption(values, 'seed'),
    latent: numberOption(values, 'latent'),
    data: values.data,
  };
  const plan = trainPrologue(kind, values, {
    given,
    settings: (meta, run) => {
      const config = meta.config as ModelConfig;
      return {
        latent: config.latent,
        data: run.data === BUILT_IN_DATA ? undefined : run.data,
      };
    },
    unset: { data: 'the built-in digits' },
    batchSize: isGanKind(kind) ? 64 : 128,
  });
  const { out, batchSize, epochs } = plan;
  const dataDir = given.data ?? plan.saved?.data;
  const { train: trainData, test } = loadData(dataDir);
  if (batchSize > trainData.count)
    throw new UsageError(`--batch-size ${batchSize} exceeds the ${trainData.count} training images`);
  const run = { batchSize, epochs, data: dataDir ?? BUILT_IN_DATA };
  await startTraining(plan, {
    stepsPerEpoch: Math.floor(trainData.count / batchSize),
    load: loadCheckpoint,
    create: () => {
      const overrides: Partial<ModelConfig> = { seed: given.seed ?? 0 };
      if (given.lr !== undefined) overrides.lr = given.lr;
      if (given.latent !== undefined) overrides.latent = given.latent;
      return createModel(kind, overrides);
    },
    data: `${trainData.count} images`,
    fit: (model, options) => fit(model, trainData, options),
    snapshot: async (model, position, history) => {
      await saveCheckpoint(out, model, position, history, run);
      setTraining(model, false);
      await writeSampleGrid(model, join(out, `samples-epoch-${position.epoch}.png`));
      if (model instanceof Vae)
        await writeReconstructions(model, test, join(out, `reconstructions-epoch-${position.epoch}.png`));
      setTraining(model, true);
      writeFileAtomically(join(out, 'loss.png'), lossCurve(smoothHistory(history)));
    },
  });
}

/** The options of `fluxion sample`, for every family. */
const SAMPLE_OPTIONS = {
  checkpoint: { type: 'string' },
  n: { type: 'string' },
  label: { type: 'string' },
  out: { type: 'string' },
  backend: { type: 'string' },
  help: { type: 'boolean' },
  // text (and --seed for text and audio)
  temperature: { type: 'string' },
  'top-k': { type: 'string' },
  prompt: { type: 'string' },
  length: { type: 'string' },
  seed: { type: 'string' },
  interpolate: { type: 'string' },
  // specvae
  'griffin-lim-iters': { type: 'string' },
} as const;

/** The parsed options of `fluxion sample`. */
export type SampleValues = ReturnType<typeof parseArgs<{ options: typeof SAMPLE_OPTIONS }>>['values'];

async function sample(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: SAMPLE_OPTIONS });
  if (values.help) {
    console.log(USAGE.sample);
    return;
  }
  if (!values.checkpoint) throw new UsageError('missing --checkpoint DIR');
  checkBackendName(values.backend);
  const n = numberOption(values, 'n');
  const label = numberOption(values, 'label');
  const meta = readCheckpointMeta(values.checkpoint);
  const family = modelFamily(meta.config.kind);
  if (meta.config.kind !== 'specvae')
    refuseOptions(
      values,
      ['griffin-lim-iters'],
      `a ${meta.config.kind} (only specvae samples by Griffin-Lim)`,
    );
  if (family !== 'text')
    refuseOptions(values, ['interpolate'], `a ${meta.config.kind} (only textvae and textgan interpolate)`);
  if (family === 'text') return textSample(values, meta);
  if (family === 'audio') return audioSample(values, meta);
  refuseOptions(
    values,
    ['temperature', 'top-k', 'prompt', 'length', 'seed'],
    `an image model (${meta.config.kind})`,
  );
  const config = meta.config as ModelConfig;
  if (label !== undefined) {
    if (!config.conditional)
      throw new UsageError(`--label needs a conditional model; ${config.kind} is not one`);
    if (label >= config.classes)
      throw new UsageError(`--label must be below ${config.classes}, got ${label}`);
  }
  await chooseBackend(values.backend);
  const { model } = loadCheckpoint(values.checkpoint);
  const out = values.out ?? 'samples.png';
  setTraining(model, false);
  try {
    await writeSampleGrid(model, out, n ?? 64, label);
  } finally {
    disposeModel(model);
  }
  console.log(`wrote ${n ?? 64} samples of ${values.checkpoint} to ${out}`);
}

/** The options of `fluxion eval`, for every family. */
const EVAL_OPTIONS = {
  checkpoint: { type: 'string' },
  data: { type: 'string' },
  'iwae-k': { type: 'string' },
  backend: { type: 'string' },
  help: { type: 'boolean' },
  // text
  samples: { type: 'string' },
  temperature: { type: 'string' },
  judge: { type: 'string' },
} as const;

/** The parsed options of `fluxion eval`. */
export type EvalValues = ReturnType<typeof parseArgs<{ options: typeof EVAL_OPTIONS }>>['values'];

async function evaluate(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: EVAL_OPTIONS });
  if (values.help) {
    console.log(USAGE.eval);
    return;
  }
  if (!values.checkpoint) throw new UsageError('missing --checkpoint DIR');
  const k = numberOption(values, 'iwae-k') ?? 50;
  checkBackendName(values.backend);
  const meta = readCheckpointMeta(values.checkpoint);
  const family = modelFamily(meta.config.kind);
  if (family === 'text') return textEval(values, meta);
  if (family === 'audio') return audioEval(values, meta);
  refuseOptions(values, ['samples', 'temperature', 'judge'], `an image model (${meta.config.kind})`);
  const { train, test } = loadData(values.data);
  await chooseBackend(values.backend);
  const { model } = loadCheckpoint(values.checkpoint);
  let report: Record<string, number>;
  try {
    report = await evaluateModel(model, test, {
      iwaeK: k,
      train,
      onLabels: ({ samples, real }) => {
        console.log(`predicted digits of ${samples.counts.reduce((a, b) => a + b)} samples:`);
        console.log(formatLabelHistograms(samples, real));
        for (const warning of labelHistogramWarnings(samples)) console.log(`warning: ${warning}`);
      },
    });
  } finally {
    disposeModel(model);
  }
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
  /**
   * Called with the predicted-label histograms of the generated images and of the test digits
   * (when `fidSamples` > 0), e.g. to print them with {@link formatLabelHistograms}.
   */
  onLabels?: (histograms: { samples: LabelHistogram; real: LabelHistogram }) => void;
}

/**
 * `n` samples drawn `chunk` at a time and joined: a convolutional generator's intermediates for
 * 1,000 images at once outgrow a device's storage-binding limit (128 MiB on lavapipe).
 */
function sampleInChunks(model: GenerativeModel, n: number, chunk = 100): Tensor {
  const parts: Tensor[] = [];
  const generator = pictureGenerator(model.config.seed);
  try {
    for (let start = 0; start < n; start += chunk)
      parts.push(model.sample(Math.min(chunk, n - start), { generator }));
    return parts.length === 1 ? parts[0] : concat(parts, 0);
  } finally {
    if (parts.length > 1) for (const p of parts) p.dispose();
  }
}

/**
 * The metrics of a model on test data: for VAEs the −ELBO and the IWAE bound in nats per image;
 * for every model the classifier-FID of its samples against the test digits (with the baselines
 * when `train` is given) and which digits its samples are, as the shipped classifier sees them:
 * the effective number of classes exp(H) of the predicted labels, the share of the most frequent
 * one and the number of digits never drawn, with the test digits' effective number beside them;
 * for conditional models the accuracy of generated digits.
 *
 * @example
 * ```ts
 * const report = await evaluateModel(model, test, { iwaeK: 50, train });
 * // { classifierFid: 12.3, fidRealVsReal: 2.3, fidNoiseVsReal: 1190, sampleClasses: 9.7,
 * //   sampleTopShare: 0.14, missingClasses: 0, realClasses: 9.96, negElbo: 98.1, iwae50: 93.4 }
 * ```
 */
export async function evaluateModel(
  model: GenerativeModel,
  test: ImageDataset,
  { iwaeK = 50, limit = test.count, fidSamples = 1000, train, onLabels }: EvaluateOptions = {},
): Promise<Record<string, number>> {
  setTraining(model, false);
  const report: Record<string, number> = {};
  if (fidSamples > 0) {
    const samples = sampleInChunks(model, fidSamples);
    let labels: { samples: LabelHistogram; real: LabelHistogram };
    try {
      report.classifierFid = await classifierFid(samples, test.images);
      labels = await withClassifier(undefined, async (classifier) => ({
        samples: await labelHistogram(samples, { classifier }),
        real: await labelHistogram(test.images, { classifier }),
      }));
    } finally {
      samples.dispose();
    }
    report.sampleClasses = labels.samples.effectiveClasses;
    report.sampleTopShare = labels.samples.dominant.fraction;
    report.missingClasses = labels.samples.missing.length;
    report.realClasses = labels.real.effectiveClasses;
    onLabels?.(labels);
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
      console.error(`fluxion: ${e.message}\n\n${e.usage ?? USAGE[command in USAGE ? command : 'main']}`);
      return 2;
    }
    console.error(`fluxion: ${(e as Error).message}`);
    return 1;
  }
}
