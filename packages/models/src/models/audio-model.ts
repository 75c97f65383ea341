/**
 * What the generative models of audio share (the counterpart of {@link GenerativeModel} for
 * fixed-length waveforms): a config with the clip length and sample rate, named modules and
 * optimizers (what a checkpoint saves), a noise stream, one training step on a batch of clips, and
 * sampling to waveforms in [−1, 1]; and the seeded shuffled batches of an {@link AudioSplit}.
 *
 * The image interface does not fit as it is: its batches are images in [0, 1] with a height and a
 * width, and its samples are pixels that the command line writes as PNG grids.
 */
import type { AnyModule } from '@fluxion/nn';
import { FluxionError, type Generator, type Tensor, tensor } from '@fluxion/tensor';
import type { AudioSplit } from '../data/audio.js';
import { permutation } from '../data/shuffle.js';
import type { AnyOptimizer, SampleOptions, StepLosses } from './model.js';

/** The audio model families. */
export const AUDIO_MODEL_KINDS = ['wavegan', 'specvae'] as const;
/** One of {@link AUDIO_MODEL_KINDS}. */
export type AudioModelKind = (typeof AUDIO_MODEL_KINDS)[number];

/** Options every audio model accepts. */
export interface AudioBaseConfig {
  kind: AudioModelKind;
  /** Size of the latent code z. */
  latent: number;
  /** Learning rate of every optimizer. */
  lr: number;
  /** Seed of the parameters' initialisation and of the model's noise stream. */
  seed: number;
  /** Samples per clip (FSDD: 8192). */
  length: number;
  /** Samples per second of the clips (FSDD: 8000); what generated clips are written at. */
  sampleRate: number;
  /** Number of classes for conditional models (FSDD: the 10 digits). */
  classes: number;
}

/** One batch of clips: waveforms `[b, length]` in [−1, 1] and int32 labels `[b]`. */
export interface AudioBatch {
  audio: Tensor;
  labels: Tensor;
}

/**
 * A trainable generative model of fixed-length clips.
 *
 * @example
 * ```ts
 * const model = new WaveGan(waveganConfig());
 * const losses = await model.trainStep(batch); // { d, gp, g }
 * const sevens = model.sample(4, { labels: [7, 7, 7, 7] }); // [4, 8192] in [−1, 1]
 * ```
 */
export interface AudioModel {
  readonly config: AudioBaseConfig;
  /** The stream of noise (latents, penalties, phase shuffles); its offset is checkpointed. */
  readonly noise: Generator;
  /** Whether `sample` accepts labels. */
  readonly conditional: boolean;
  /** Named networks (checkpointed as `<name>.<parameter>`). */
  modules(): Record<string, AnyModule>;
  /** Named optimizers (checkpointed under `optim.<name>.…`). */
  optimizers(): Record<string, AnyOptimizer>;
  /** One update on a batch of clips in [−1, 1] (and labels); returns the losses. */
  trainStep(batch: AudioBatch): Promise<StepLosses>;
  /**
   * `n` generated clips `[n, length]` in [−1, 1]; `labels` (one per clip) for conditional models.
   * Draws from `generator` when given, else from the model's {@link noise} stream (which training
   * then continues from: pass a generator of its own, e.g. `pictureGenerator(seed)`, to leave a
   * run's randomness untouched).
   */
  sample(n: number, options?: SampleOptions): Tensor;
}

/**
 * The batches of one epoch of an audio split in seeded shuffled order (the last partial batch is
 * dropped; the same order as the image {@link batches} for the same count, seed and epoch), each
 * uploaded to the current backend. Dispose each batch's tensors when done.
 *
 * @example
 * ```ts
 * const { train } = loadFsdd();
 * for (const { audio, labels } of audioBatches(train, 64, { seed: 0, epoch: 0 })) { … } // [64, 8192]
 * ```
 */
export function* audioBatches(
  split: AudioSplit,
  batchSize: number,
  { seed, epoch }: { seed: number; epoch: number },
): IterableIterator<AudioBatch> {
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new FluxionError('audioBatches', `batch size must be an integer ≥ 1, got ${batchSize}`);
  const { length, count } = split;
  const order = permutation(count, seed, epoch);
  for (let start = 0; start + batchSize <= count; start += batchSize) {
    const audio = new Float32Array(batchSize * length);
    const labels = new Int32Array(batchSize);
    for (let i = 0; i < batchSize; i++) {
      const src = order[start + i];
      audio.set(split.audio.subarray(src * length, (src + 1) * length), i * length);
      labels[i] = split.labels[src];
    }
    yield { audio: tensor(audio, [batchSize, length]), labels: tensor(labels, [batchSize]) };
  }
}
