/**
 * The training loop shared by every model: seeded shuffled batches, one `trainStep` per batch, a
 * callback per step and per epoch, and a position (epoch, step in epoch) from which a resumed run
 * continues exactly as an uninterrupted one would. {@link fit} trains the image models,
 * {@link fitText} the text models (and measures held-out nats per character after each epoch),
 * {@link fitAudio} the audio models; all three run one loop.
 */
import type { AnyModule } from '@fluxion/nn';
import { FluxionError } from '@fluxion/tensor';
import type { AudioSplit } from './data/audio.js';
import { type Batch, batches, type ImageDataset } from './data/images.js';
import {
  disposeTextBatch,
  encodeLines,
  lineBatches,
  lineBatchesPerEpoch,
  packedLineBatches,
  packedLineBatchesPerEpoch,
  sequentialLineBatches,
  sequentialWindowBatches,
  type TextBatch,
  type TextDataset,
  windowBatches,
  windowBatchesPerEpoch,
} from './data/text-batches.js';
import { type AudioBatch, type AudioModel, audioBatches } from './models/audio-model.js';
import type { GenerativeModel, StepLosses } from './models/model.js';
import type { TextLatentModelOf } from './models/text-gan.js';
import { TEXT_PACKING_KINDS, type TextEvaluation, type TextModel } from './models/text-lm.js';
/** Where a run is: the next batch to train on. */
export interface TrainPosition {
  epoch: number;
  /** Batches of `epoch` already trained on. */
  step: number;
  /** Steps taken over the whole run. */
  globalStep: number;
}

/** Per-step loss history, by loss name. */
export type LossHistory = Record<string, number[]>;

/** What the step callback receives. */
export interface StepInfo extends TrainPosition {
  losses: StepLosses;
  stepsPerEpoch: number;
}

/** Options of {@link fit}. */
export interface FitOptions {
  /** Epochs to train in total (a resumed run counts the epochs already done). */
  epochs: number;
  batchSize: number;
  /** Seed of the data order (default: the model's seed). */
  dataSeed?: number;
  /** Where to start (a checkpoint's position); the start by default. */
  from?: TrainPosition;
  /** Stop after this many steps in this call (for short runs and tests). */
  maxSteps?: number;
  /** Stop at the first step boundary after this many seconds of training in this call. */
  seconds?: number;
  /** History to append to (a checkpoint's). */
  history?: LossHistory;
  onStep?: (info: StepInfo) => void | Promise<void>;
  /** Called after each complete epoch with the position after it. */
  onEpoch?: (position: TrainPosition, history: LossHistory) => void | Promise<void>;
}

/** What every model trained by the loop has: a step on a batch, and modules to put in training mode. */
interface Trainable<B> {
  trainStep(batch: B): Promise<StepLosses>;
  modules(): Record<string, AnyModule>;
}

/**
 * The loop: from `options.from`, one `trainStep` per batch of `epochBatches(epoch, start)` (the
 * batches of an epoch from batch `start` on), a non-finite loss stopping it with an error that
 * names the step, `onStep` after each step and `onEpoch` after each completed epoch.
 */
async function trainLoop<B>(
  model: Trainable<B>,
  stepsPerEpoch: number,
  epochBatches: (epoch: number, start: number) => Iterable<B>,
  dispose: (batch: B) => void,
  options: Omit<FitOptions, 'batchSize' | 'dataSeed'>,
): Promise<{ history: LossHistory; position: TrainPosition }> {
  const { epochs, maxSteps = Number.POSITIVE_INFINITY } = options;
  const history: LossHistory = options.history ?? {};
  const position: TrainPosition = { ...(options.from ?? { epoch: 0, step: 0, globalStep: 0 }) };
  let taken = 0;
  const deadline = performance.now() + 1000 * (options.seconds ?? Number.POSITIVE_INFINITY);
  const done = () => taken >= maxSteps || performance.now() > deadline;
  for (const m of Object.values(model.modules())) m.train();
  while (position.epoch < epochs && !done()) {
    for (const batch of epochBatches(position.epoch, position.step)) {
      if (done()) {
        dispose(batch);
        break;
      }
      let losses: StepLosses;
      try {
        losses = await model.trainStep(batch);
      } finally {
        dispose(batch);
      }
      const bad = Object.entries(losses).filter(([, v]) => !Number.isFinite(v));
      if (bad.length > 0) {
        throw new FluxionError(
          'fit',
          `the loss is not finite at step ${position.globalStep + 1} (epoch ${position.epoch}, batch ${position.step + 1}): ${bad.map(([k, v]) => `${k} ${v}`).join(', ')}; training stopped (a lower learning rate may help)`,
        );
      }
      for (const [name, v] of Object.entries(losses)) (history[name] ??= []).push(v);
      position.step++;
      position.globalStep++;
      taken++;
      await options.onStep?.({ ...position, losses, stepsPerEpoch });
    }
    if (position.step >= stepsPerEpoch) {
      position.epoch++;
      position.step = 0;
      await options.onEpoch?.({ ...position }, history);
    }
  }
  return { history, position };
}

/** The batches of `all` from index `start` on (the ones before are made and disposed, as drawn). */
function* skipBatches<B>(all: Iterable<B>, start: number, dispose: (batch: B) => void): Generator<B> {
  let index = 0;
  for (const batch of all) {
    if (index++ < start) dispose(batch);
    else yield batch;
  }
}

/**
 * Trains `model` on `data` and returns the loss history and the final position. A step whose loss
 * is NaN or infinite stops training with an error naming the step (before `onStep`, `onEpoch` or
 * the history see it, so the last checkpoint written by `onEpoch` is the last good state).
 *
 * @example
 * ```ts
 * const { history } = await fit(createModel('vae'), train, {
 *   epochs: 5, batchSize: 128,
 *   onStep: ({ globalStep, losses }) => console.log(globalStep, losses.loss),
 * });
 * ```
 */
export async function fit(
  model: GenerativeModel,
  data: ImageDataset,
  options: FitOptions,
): Promise<{ history: LossHistory; position: TrainPosition }> {
  const { batchSize, dataSeed = model.config.seed } = options;
  const stepsPerEpoch = Math.floor(data.count / batchSize);
  if (stepsPerEpoch === 0)
    throw new Error(`fit: batch size ${batchSize} exceeds the ${data.count} training images`);
  return trainLoop(
    model,
    stepsPerEpoch,
    (epoch, start) => skipBatches(batches(data, batchSize, { seed: dataSeed, epoch }), start, disposeBatch),
    disposeBatch,
    options,
  );
}

function disposeBatch(batch: Batch): void {
  batch.images.dispose();
  batch.labels.dispose();
}

/**
 * Batches per epoch of a text data set for a model's window: the full batches of shuffled items
 * (`'lines'`; with `packed`, of rows that hold several items, see {@link packedLineBatches}), or
 * ⌊characters / (batchSize · window)⌋ random windows, at least one (`'text'`).
 *
 * @example
 * ```ts
 * textStepsPerEpoch(loadNames(), 64, 16); // 484
 * textStepsPerEpoch(loadNames(), 64, 16, { packed: true }); // 215
 * ```
 */
export function textStepsPerEpoch(
  data: TextDataset,
  batchSize: number,
  window: number,
  options: { packed?: boolean } = {},
): number {
  if (data.mode === 'text')
    return windowBatchesPerEpoch(data.tokenizer.encode(data.train).length, batchSize, window);
  if (!options.packed) return lineBatchesPerEpoch(data.train.length, batchSize);
  const layout = { boundaryId: data.tokenizer.boundaryId as number, window };
  return packedLineBatchesPerEpoch(encodeLines(data.tokenizer, data.train), layout, batchSize);
}

/**
 * Whether a model trains on packed rows of a data set: a Transformer language model
 * ({@link TEXT_PACKING_KINDS}) on one item per line. Training and the step count of a run both
 * follow it.
 *
 * @example
 * ```ts
 * packsRows('charlm', loadNames()); // true
 * ```
 */
export function packsRows(kind: string, data: Pick<TextDataset, 'mode'>): boolean {
  return data.mode === 'lines' && (TEXT_PACKING_KINDS as readonly string[]).includes(kind);
}

/**
 * The held-out batches of a text data set, in order, for {@link TextModel.evaluate}: every held-out
 * item (`'lines'`) or every non-overlapping window of the held-out text (`'text'`), `batchSize`
 * rows at a time, encoded with `tokenizer` (the model's).
 *
 * @example
 * ```ts
 * const { nats, bits } = await model.evaluate(heldOutTextBatches(ds, model.tokenizer, model.config.context));
 * ```
 */
export function heldOutTextBatches(
  data: TextDataset,
  tokenizer: TextModel['tokenizer'],
  window: number,
  batchSize = 256,
): Iterable<TextBatch> {
  if (data.mode === 'lines') {
    const boundaryId = tokenizer.boundaryId;
    if (boundaryId === undefined)
      throw new FluxionError(
        'heldOutTextBatches',
        'one-item-per-line data needs a tokenizer with a boundary token',
      );
    return sequentialLineBatches(encodeLines(tokenizer, data.test), { boundaryId, window }, batchSize);
  }
  return sequentialWindowBatches(tokenizer.encode(data.test), window, Math.max(1, Math.floor(batchSize / 4)));
}

/** Options of {@link fitText}. */
export interface FitTextOptions extends Omit<FitOptions, 'onEpoch'> {
  /** Measure held-out nats per character after every epoch (default true). */
  heldOut?: boolean;
  /** Called after each complete epoch with the position after it and the held-out figures. */
  onEpoch?: (
    position: TrainPosition,
    history: LossHistory,
    heldOut: TextEvaluation | undefined,
  ) => void | Promise<void>;
}

/**
 * Trains a text model on a {@link TextDataset}: shuffled items (`'lines'`, {@link lineBatches}) or
 * random windows (`'text'`, {@link windowBatches}) of the model's context, seeded by
 * `dataSeed` (the model's seed by default) and the epoch. A resumed run starts its epoch at the
 * checkpoint's batch without drawing the ones before it, and continues exactly as the
 * uninterrupted run. After every complete epoch the held-out nats and bits per character are
 * measured (in evaluation mode, without touching the noise stream) and passed to `onEpoch`.
 * The learning-rate schedule follows the model's config: set its `decaySteps` to the planned
 * number of steps when creating it.
 *
 * @example
 * ```ts
 * const ds = loadNames();
 * const steps = 5 * textStepsPerEpoch(ds, 64, 16);
 * const model = createTextModel(textModelConfig('charrnn', ds, { decaySteps: steps - 100 }), ds.tokenizer);
 * await fitText(model, ds, { epochs: 5, batchSize: 64, onEpoch: (p, h, e) => console.log(e?.nats) });
 * ```
 */
export async function fitText(
  model: TextModel | TextLatentModelOf,
  data: TextDataset,
  options: FitTextOptions,
): Promise<{ history: LossHistory; position: TrainPosition }> {
  const { batchSize, dataSeed = model.config.seed, heldOut = true } = options;
  const window = model.config.context;
  const tokenizer = model.tokenizer;
  const packed = packsRows(model.config.kind, data);
  const stepsPerEpoch = textStepsPerEpoch(data, batchSize, window, { packed });
  if (stepsPerEpoch === 0)
    throw new FluxionError(
      'fitText',
      `batch size ${batchSize} exceeds the ${data.train.length} training items`,
    );
  let epochBatches: (epoch: number, start: number) => Iterable<TextBatch>;
  if (data.mode === 'lines') {
    const items = encodeLines(tokenizer, data.train);
    const layout = { boundaryId: tokenizer.boundaryId as number, window };
    const batches = packed ? packedLineBatches : lineBatches;
    epochBatches = (epoch, start) => batches(items, layout, { batchSize, seed: dataSeed, epoch, start });
  } else {
    const tokens = tokenizer.encode(data.train);
    epochBatches = (epoch, start) =>
      windowBatches(tokens, window, { batchSize, seed: dataSeed, epoch, start, batches: stepsPerEpoch });
  }
  const { onEpoch } = options;
  return trainLoop(model, stepsPerEpoch, epochBatches, disposeTextBatch, {
    ...options,
    onEpoch: async (position, history) => {
      const figures = heldOut ? await model.evaluate(heldOutTextBatches(data, tokenizer, window)) : undefined;
      await onEpoch?.(position, history, figures);
    },
  });
}

/**
 * Trains an audio model on a split of clips ({@link audioBatches}: seeded shuffled full batches),
 * with the same position, resume and non-finite-loss rules as {@link fit}.
 *
 * @example
 * ```ts
 * const { train } = loadFsdd();
 * await fitAudio(new WaveGan(waveganConfig()), train, { epochs: 1, batchSize: 32, maxSteps: 10 });
 * ```
 */
export async function fitAudio(
  model: AudioModel,
  data: AudioSplit,
  options: FitOptions,
): Promise<{ history: LossHistory; position: TrainPosition }> {
  const { batchSize, dataSeed = model.config.seed } = options;
  const stepsPerEpoch = Math.floor(data.count / batchSize);
  if (stepsPerEpoch === 0)
    throw new FluxionError('fitAudio', `batch size ${batchSize} exceeds the ${data.count} training clips`);
  return trainLoop(
    model,
    stepsPerEpoch,
    (epoch, start) =>
      skipBatches(audioBatches(data, batchSize, { seed: dataSeed, epoch }), start, disposeAudioBatch),
    disposeAudioBatch,
    options,
  );
}

function disposeAudioBatch(batch: AudioBatch): void {
  batch.audio.dispose();
  batch.labels.dispose();
}
