/**
 * The training loop shared by every model: seeded shuffled batches, one `trainStep` per batch, a
 * callback per step and per epoch, and a position (epoch, step in epoch) from which a resumed run
 * continues exactly as an uninterrupted one would.
 */
import { FluxionError } from '@fluxion/tensor';
import { type Batch, batches, type ImageDataset } from './data/dataset.js';
import { type GenerativeModel, type StepLosses, setTraining } from './models/model.js';

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
  const { epochs, batchSize, dataSeed = model.config.seed, maxSteps = Number.POSITIVE_INFINITY } = options;
  const history: LossHistory = options.history ?? {};
  const position: TrainPosition = { ...(options.from ?? { epoch: 0, step: 0, globalStep: 0 }) };
  const stepsPerEpoch = Math.floor(data.count / batchSize);
  if (stepsPerEpoch === 0)
    throw new Error(`fit: batch size ${batchSize} exceeds the ${data.count} training images`);
  let taken = 0;
  const deadline = performance.now() + 1000 * (options.seconds ?? Number.POSITIVE_INFINITY);
  const done = () => taken >= maxSteps || performance.now() > deadline;
  setTraining(model, true);
  while (position.epoch < epochs && !done()) {
    let index = 0;
    for (const batch of batches(data, batchSize, { seed: dataSeed, epoch: position.epoch })) {
      if (index++ < position.step) {
        disposeBatch(batch);
        continue;
      }
      if (done()) {
        disposeBatch(batch);
        break;
      }
      let losses: StepLosses;
      try {
        losses = await model.trainStep(batch);
      } finally {
        disposeBatch(batch);
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

function disposeBatch(batch: Batch): void {
  batch.images.dispose();
  batch.labels.dispose();
}
