/**
 * What every generative model of this package shares: a config, named modules and optimizers
 * (what a checkpoint saves), one training step on a batch, and sampling to pixels in [0, 1].
 */
import type { AnyModule, Optimizer } from '@fluxion/nn';
import { Generator, scope, stack, type Tensor } from '@fluxion/tensor';
import type { Batch } from '../data/images.js';

/** The model families `fluxion train` knows. */
export const MODEL_KINDS = ['gan', 'dcgan', 'cgan', 'wgan-gp', 'vae', 'convvae', 'cvae'] as const;
/** One of {@link MODEL_KINDS}. */
export type ModelKind = (typeof MODEL_KINDS)[number];

/** An optimizer of any hyper-parameter type. */
// biome-ignore lint/suspicious/noExplicitAny: optimizers differ in their hyper-parameters
export type AnyOptimizer = Optimizer<any>;

/** Options every model accepts. */
export interface BaseConfig {
  kind: ModelKind;
  /** Size of the latent code z. */
  latent: number;
  /** Learning rate of every optimizer. */
  lr: number;
  /** Seed of the parameters' initialisation and of the model's noise stream. */
  seed: number;
  /** Image height and width (MNIST: 28). */
  height: number;
  width: number;
  /** Number of classes for conditional models (MNIST: 10). */
  classes: number;
}

/** Losses of one training step, by name (`d`, `g`, `recon`, `kl`, …), in nats or loss units. */
export type StepLosses = Record<string, number>;

/**
 * Reads scalar losses with one transfer from the device (stacked into one tensor) instead of one
 * `item()` each, whose every call waits for the device on its own, and disposes them.
 *
 * @example
 * ```ts
 * const losses = await readLosses({ loss: total, recon, kl }); // { loss: 117.2, recon: …, kl: … }
 * ```
 */
export async function readLosses(named: Record<string, Tensor>): Promise<StepLosses> {
  const names = Object.keys(named);
  const joined = scope(() => stack(names.map((k) => named[k])));
  const values = await joined.data();
  joined.dispose();
  for (const t of Object.values(named)) t.dispose();
  return Object.fromEntries(names.map((k, i) => [k, Number(values[i])]));
}

/**
 * A trainable generative model.
 *
 * @example
 * ```ts
 * const model = createModel({ kind: 'vae' });
 * const losses = await model.trainStep(batch);
 * const pixels = model.sample(64); // [64, 784] in [0, 1]
 * ```
 */
export interface GenerativeModel {
  readonly config: BaseConfig;
  /** The stream of noise (latents, reparameterisation, penalties); its offset is checkpointed. */
  readonly noise: Generator;
  /** Whether `sample` accepts labels. */
  readonly conditional: boolean;
  /** Named networks (checkpointed as `<name>.<parameter>`). */
  modules(): Record<string, AnyModule>;
  /** Named optimizers (checkpointed under `optim.<name>.…`). */
  optimizers(): Record<string, AnyOptimizer>;
  /** One update on a batch of images in [0, 1] (and labels); returns the losses. */
  trainStep(batch: Batch): Promise<StepLosses>;
  /**
   * `n` generated images `[n, height·width]` in [0, 1]; `labels` (one per image) for conditional
   * models. Draws from `generator` when given, else from the model's {@link noise} stream (which
   * training then continues from: pass a generator of its own, e.g. {@link pictureGenerator}, to
   * leave a run's randomness untouched).
   */
  sample(n: number, options?: SampleOptions): Tensor;
}

/**
 * Options of {@link GenerativeModel.sample}.
 *
 * @example
 * ```ts
 * const sevens = model.sample(8, { labels: Array(8).fill(7), generator: new Generator(1) });
 * ```
 */
export interface SampleOptions {
  /** One label per image (conditional models; random digits otherwise). */
  labels?: readonly number[];
  /** The stream to draw latents (and random labels) from; the model's noise stream by default. */
  generator?: Generator;
}

/** Sets training or evaluation mode on every module of a model. */
export function setTraining(model: GenerativeModel, training: boolean): void {
  for (const m of Object.values(model.modules())) {
    if (training) m.train();
    else m.eval();
  }
}

/** A fresh noise generator for a model seed (distinct from the initialisation streams). */
export function noiseGenerator(seed: number): Generator {
  return new Generator(seed * 7919 + 104729);
}

/**
 * A fresh generator for pictures and evaluation samples of a model seed: a stream of its own
 * (never one of {@link noiseGenerator}'s, whatever the seeds), so drawing sample grids during a run
 * leaves the training noise as it was and a resumed run stays bit-exact. Each call starts the
 * stream afresh, so the grids of successive epochs show the same latents.
 *
 * @example
 * ```ts
 * const images = model.sample(64, { generator: pictureGenerator(model.config.seed) });
 * ```
 */
export function pictureGenerator(seed: number): Generator {
  return new Generator(seed * 7919 + 104730);
}
