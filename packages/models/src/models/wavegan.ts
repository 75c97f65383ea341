/**
 * A conditional WaveGAN (Donahue, McAuley & Puckette 2019, "Adversarial audio synthesis"): a
 * generator of raw waveforms from noise and a class label, trained against a critic by WGAN-GP
 * (Gulrajani et al. 2017), scaled down to train on a CPU adapter.
 *
 * The generator is DCGAN flattened to one dimension with longer kernels: z (100 values, with the
 * one-hot digit appended) → Dense → `[8d, 32]` → four transposed convolutions (kernel 25, stride 4)
 * → `[1, 8192]` → tanh, i.e. 1.02 s at 8 kHz (see {@link waveganGenerator}). The critic mirrors it
 * with strided convolutions, LeakyReLU(0.2) and phase shuffle (see {@link waveganCritic}): each
 * block's features are shifted by a random −2…2 samples, so the critic cannot reject generated
 * audio by the periodic artefacts ("checkerboard" in 1-D) that the transposed convolutions leave at
 * their stride. The paper's net has five blocks of d = 64 for 16384 samples at 16 kHz; here FSDD's
 * clips are 8192 samples at 8 kHz (four blocks, the same 256·d features before the critic's score)
 * and d = 8 by default. Measured on lavapipe (2 CPU cores shared with other work, load average
 * about 12), one training step at batch 32 took about 2–5 s at d = 8, 8–15 s at d = 16 and
 * 21–33 s at d = 32 (a step with a generator update costs about 1.5 critic steps); d = 4 took
 * 0.5–1.5 s.
 *
 * Conditioning. The generator gets the one-hot label appended to z (so the label acts as a learned
 * per-class bias of the first feature map, like an embedding). The critic is a projection critic
 * (Miyato & Koyama 2018, as the image cGAN's {@link ProjectionDiscriminator}): the score is
 * `w·φ(x) + b + ⟨E·y, φ(x)⟩` over the critic's features φ(x). Appending the label as ten constant
 * input channels instead would make the first convolution (the one over 8192 samples) eleven
 * times as wide and leave the label as a faint input the critic can ignore; the projection makes
 * "does this sound like a seven" part of every score at the cost of one 256·d × 10 matrix.
 *
 * Loss (WGAN-GP, the paper's settings): the critic minimises
 * `E[D(G(z))] − E[D(x)] + λ·E[(‖∇ₓ̂ D(x̂)‖₂ − 1)²]` with λ = 10, five critic steps per generator
 * step, and both players use Adam with lr 1e-4, β = (0.5, 0.9); the generator minimises
 * `−E[D(G(z))]`. The critic's loss is shared with the image WGAN-GP ({@link wganGpLoss}).
 */
import { noGrad } from '@fluxion/autograd';
import type { Sequential } from '@fluxion/nn';
import { FluxionError, fmtShape, mean, neg, type Tensor } from '@fluxion/tensor';
import { FSDD_CLIP_LENGTH, FSDD_SAMPLE_RATE } from '../data/audio.js';
import { AdversarialModel, adversarialStep, wganGpLoss } from './adversarial.js';
import type { AudioBaseConfig, AudioBatch, AudioModel } from './audio-model.js';
import type { SampleOptions, StepLosses } from './model.js';
import { type ProjectionCritic, waveganCritic, waveganGenerator } from './networks.js';

/** Configuration of a {@link WaveGan}. */
export interface WaveGanConfig extends AudioBaseConfig {
  kind: 'wavegan';
  /** Condition both players on the class (one-hot appended to z; projection critic). */
  conditional: boolean;
  /** Model size d: the critic's first block has d channels, each later block twice as many. */
  modelSize: number;
  /** Up/downsampling blocks (each ×4 in length); `length` must be a multiple of 4^blocks. */
  blocks: number;
  /** Largest phase shift of the critic's phase shuffle, in samples (0: none). */
  phaseShuffle: number;
  /** Adam's β₁ and β₂. */
  beta1: number;
  beta2: number;
  /** WGAN-GP penalty weight λ. */
  gpWeight: number;
  /** Critic steps per generator step. */
  criticSteps: number;
}

/**
 * The default WaveGAN for FSDD (8192 samples at 8 kHz, ten digits), with `overrides` applied and
 * checked: the paper's loss settings (λ 10, 5 critic steps, Adam 1e-4, β (0.5, 0.9)), four blocks
 * and model size d = 8 (the paper's d = 64 is roughly 60 times the arithmetic per step; see the
 * module comment for the measured step times).
 *
 * @example
 * ```ts
 * const tiny = waveganConfig({ length: 256, modelSize: 2, blocks: 2 }); // for tests
 * ```
 */
export function waveganConfig(overrides: Partial<WaveGanConfig> = {}): WaveGanConfig {
  const config: WaveGanConfig = {
    latent: 100,
    lr: 1e-4,
    seed: 0,
    length: FSDD_CLIP_LENGTH,
    sampleRate: FSDD_SAMPLE_RATE,
    classes: 10,
    conditional: true,
    modelSize: 8,
    blocks: 4,
    phaseShuffle: 2,
    beta1: 0.5,
    beta2: 0.9,
    gpWeight: 10,
    criticSteps: 5,
    ...overrides,
    kind: 'wavegan',
  };
  checkConfig(config);
  return config;
}

/** Throws a {@link FluxionError} naming the first invalid field of `c`. */
function checkConfig(c: WaveGanConfig): void {
  const fail = (why: string) => new FluxionError('WaveGan', why);
  const counts: [keyof WaveGanConfig, number][] = [
    ['latent', 1],
    ['length', 1],
    ['sampleRate', 1],
    ['classes', 1],
    ['modelSize', 1],
    ['blocks', 1],
    ['phaseShuffle', 0],
    ['criticSteps', 1],
    ['seed', 0],
  ];
  for (const [key, min] of counts) {
    const v = c[key];
    if (!Number.isSafeInteger(v) || (v as number) < min)
      throw fail(`${key} must be an integer ≥ ${min}, got ${JSON.stringify(v)}`);
  }
  const unit = 4 ** c.blocks;
  if (c.length % unit !== 0)
    throw fail(
      `length ${c.length} must be a multiple of 4^blocks = ${unit} (${c.blocks} blocks of stride 4)`,
    );
  const shortest = c.length / 4 ** (c.blocks - 1); // the last shuffled block's length
  if (c.blocks > 1 && c.phaseShuffle >= shortest)
    throw fail(
      `phaseShuffle ${c.phaseShuffle} must be below ${shortest}, the shortest shuffled block's length`,
    );
  for (const key of ['lr', 'gpWeight'] as const)
    if (!(c[key] >= 0) || !Number.isFinite(c[key]) || (key === 'lr' && c[key] === 0))
      throw fail(`${key} must be a ${key === 'lr' ? 'positive' : 'non-negative'} number, got ${c[key]}`);
  for (const key of ['beta1', 'beta2'] as const)
    if (!(c[key] >= 0 && c[key] < 1)) throw fail(`${key} must be in [0, 1), got ${c[key]}`);
}

/**
 * A conditional (or unconditional) WaveGAN trained by WGAN-GP; see the module comment for the
 * architecture and the choice of conditioning.
 *
 * @example
 * ```ts
 * const gan = new WaveGan(waveganConfig());
 * const { train } = loadFsdd();
 * for (const batch of audioBatches(train, 32, { seed: 0, epoch: 0 })) {
 *   const { d, gp, g } = await gan.trainStep(batch);
 *   batch.audio.dispose();
 *   batch.labels.dispose();
 * }
 * const sevens = gan.sample(4, { labels: [7, 7, 7, 7], generator: pictureGenerator(0) }); // [4, 8192]
 * ```
 */
export class WaveGan
  extends AdversarialModel<WaveGanConfig, Sequential | ProjectionCritic>
  implements AudioModel
{
  constructor(config: WaveGanConfig) {
    checkConfig(config);
    const { latent, length, classes, seed, conditional, modelSize, blocks, phaseShuffle } = config;
    super(config, (noise) => ({
      generator: waveganGenerator(latent + (conditional ? classes : 0), length, modelSize, blocks, seed),
      discriminator: waveganCritic(
        length,
        modelSize,
        blocks,
        phaseShuffle,
        conditional ? classes : 0,
        noise,
        seed + 1,
      ),
    }));
  }

  /** Checks a batch's shapes against the config. */
  private checkBatch({ audio, labels }: AudioBatch): void {
    const { length } = this.config;
    if (audio.rank !== 2 || audio.shape[1] !== length)
      throw new FluxionError(
        'WaveGan.trainStep',
        `audio must be [n, ${length}] (clips of the config's length), got ${fmtShape(audio.shape)}`,
      );
    if (labels.rank !== 1 || labels.shape[0] !== audio.shape[0] || labels.dtype !== 'int32')
      throw new FluxionError(
        'WaveGan.trainStep',
        `labels must be int32 [${audio.shape[0]}] (one per clip), got ${labels.dtype} ${fmtShape(labels.shape)}`,
      );
  }

  /**
   * One critic update and, every `criticSteps` steps (the first included), one generator update.
   * Returns `{ d, gp, g }`: the critic's loss (its negative, plus λ·gp, estimates the Wasserstein
   * distance), the gradient penalty before λ, and the generator loss `−E[D(G(z))]` (the last one
   * on steps without a generator update).
   */
  async trainStep(batch: AudioBatch): Promise<StepLosses> {
    this.checkBatch(batch);
    const { audio, labels } = batch;
    const { gpWeight, criticSteps } = this.config;
    const n = audio.shape[0];
    const updateG = this.steps % criticSteps === 0;
    this.steps++;
    return adversarialStep(
      this,
      () => {
        const y = this.condition(labels);
        return { y, fake: noGrad(() => this.generate(n, y)) };
      },
      ({ y, fake }) => {
        const critic = (x: Tensor) => this.score(x, y);
        const { loss, penalty } = wganGpLoss(critic, audio, fake, gpWeight, this.noise);
        return { d: loss, gp: penalty };
      },
      updateG ? ({ y }) => neg(mean(this.score(this.generate(n, y), y))) : null,
    );
  }

  /**
   * `n` clips `[n, length]` in [−1, 1]. A conditional model takes one label per clip (random
   * classes when none are given); an unconditional one takes none.
   *
   * Args:
   *   n: clips to generate.
   *   options.labels: class of each clip (conditional models).
   *   options.generator: the stream of latents (and random labels); the model's noise by default.
   */
  sample(n: number, options: SampleOptions = {}): Tensor {
    const { classes, conditional } = this.config;
    if (!Number.isInteger(n) || n < 1)
      throw new FluxionError('WaveGan.sample', `n must be an integer ≥ 1, got ${n}`);
    const { labels } = options;
    if (labels && !conditional)
      throw new FluxionError('WaveGan.sample', 'labels were given to an unconditional model');
    if (labels && labels.length !== n)
      throw new FluxionError('WaveGan.sample', `${labels.length} labels for ${n} clips`);
    const bad = labels?.find((l) => !Number.isInteger(l) || l < 0 || l >= classes);
    if (bad !== undefined)
      throw new FluxionError('WaveGan.sample', `label ${bad} is not a class in [0, ${classes})`);
    return this.sampleOutputs(n, labels, options.generator ?? this.noise);
  }
}
