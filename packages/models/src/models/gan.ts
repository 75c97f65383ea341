/**
 * Generative adversarial networks: the seed article's MLP GAN done right, DCGAN, a conditional GAN
 * and WGAN-GP, as one class with an architecture, an objective and a conditional switch.
 *
 * The minimax game is min_G max_D E[log D(x)] + E[log(1 − D(G(z)))]. Each training step first
 * updates the discriminator on a real batch and a generated batch (generator frozen), then the
 * generator through the discriminator (discriminator frozen). The generator's default loss is the
 * non-saturating −log D(G(z)) (Goodfellow et al. 2014): log(1 − D(G(z))) has a vanishing gradient
 * exactly when D confidently rejects the early generator's samples, so G would barely learn. Losses
 * are computed from logits with a stable BCE. The seed article compiles D only inside the stacked
 * model and fits it on noise labelled "real": D is never trained to tell real from fake (it is in
 * fact pushed to call fakes real), no real image is ever seen, and nothing is learned.
 *
 * WGAN-GP (Gulrajani et al. 2017) replaces the log-loss by the critic difference
 * E[D(G(z))] − E[D(x)] plus λ·E[(‖∇D(x̂)‖ − 1)²] on random interpolates x̂, whose gradient needs
 * second derivatives (autograd's createGraph); the generator steps once per `criticSteps` steps.
 *
 * Pixels are scaled to [−1, 1] and the generator ends in tanh: with the seed's sigmoid output on
 * [0, 1] pixels, the MLP GAN collapsed to a single image within a few epochs in two independent
 * implementations, while tanh with [−1, 1] trained to varied digits.
 */
import { noGrad } from '@fluxion/autograd';
import { Adam, type AnyModule, bceWithLogits, type Sequential } from '@fluxion/nn';
import {
  add,
  clamp,
  concat,
  fullLike,
  mean,
  mul,
  neg,
  oneHot,
  randint,
  randn,
  scope,
  sub,
  type Tensor,
  tensor,
} from '@fluxion/tensor';
import type { Batch } from '../data/images.js';
import { adversarialStep, wganGpLoss } from './adversarial.js';
import {
  type AnyOptimizer,
  type BaseConfig,
  type GenerativeModel,
  noiseGenerator,
  type SampleOptions,
  type StepLosses,
} from './model.js';
import {
  dcganDiscriminator,
  dcganGenerator,
  mlpDiscriminator,
  mlpGenerator,
  ProjectionDiscriminator,
} from './networks.js';

/** How the two players are scored. */
export type GanObjective = 'non-saturating' | 'minimax' | 'wgan-gp';

/** Configuration of a {@link Gan}. */
export interface GanConfig extends BaseConfig {
  kind: 'gan' | 'dcgan' | 'cgan' | 'wgan-gp';
  architecture: 'mlp' | 'dcgan';
  objective: GanObjective;
  /** Condition both players on the digit class (one-hot appended to z and to D's input). */
  conditional: boolean;
  /** One-sided label smoothing: real images are labelled 1 − labelSmoothing (default 0). */
  labelSmoothing: number;
  /** Adam's β₁ and β₂ (DCGAN's 0.5 and 0.999 by default; WGAN-GP uses 0.5 and 0.9). */
  beta1: number;
  beta2: number;
  /** WGAN-GP: penalty weight λ and critic steps per generator step. */
  gpWeight: number;
  criticSteps: number;
}

/** Defaults per kind (what `fluxion train <kind>` uses). */
export function ganDefaults(kind: GanConfig['kind']): GanConfig {
  return {
    kind,
    latent: 100,
    lr: kind === 'wgan-gp' ? 1e-4 : 2e-4,
    seed: 0,
    height: 28,
    width: 28,
    classes: 10,
    architecture: kind === 'dcgan' ? 'dcgan' : 'mlp',
    objective: kind === 'wgan-gp' ? 'wgan-gp' : 'non-saturating',
    conditional: kind === 'cgan',
    labelSmoothing: 0,
    beta1: 0.5,
    beta2: kind === 'wgan-gp' ? 0.9 : 0.999,
    gpWeight: 10,
    criticSteps: 5,
  };
}

/**
 * A GAN of any of the four kinds.
 *
 * @example
 * ```ts
 * const gan = new Gan(ganDefaults('gan'));
 * for (const batch of batches(train, 64, { seed: 0, epoch: 0 })) await gan.trainStep(batch);
 * const images = gan.sample(64); // [64, 784] in [0, 1]
 * ```
 */
export class Gan implements GenerativeModel {
  readonly generator: Sequential;
  /** The discriminator (a {@link ProjectionDiscriminator} for the conditional GAN). */
  readonly discriminator: Sequential | ProjectionDiscriminator;
  readonly optG: Adam;
  readonly optD: Adam;
  readonly noise;
  /** Training steps taken (the critic schedule of WGAN-GP counts them). */
  steps = 0;
  /** The last generator loss, reported on WGAN-GP steps without a generator update (checkpointed). */
  lastG = Number.NaN;

  constructor(readonly config: GanConfig) {
    const { latent, height, width, classes, seed, conditional, architecture } = config;
    const pixels = height * width;
    const extra = conditional ? classes : 0;
    if (architecture === 'dcgan' && (conditional || height !== 28 || width !== 28)) {
      throw new Error('Gan: the DCGAN architecture is unconditional and 28×28');
    }
    this.generator =
      architecture === 'dcgan' ? dcganGenerator(latent, seed) : mlpGenerator(latent + extra, pixels, seed);
    this.discriminator =
      architecture === 'dcgan'
        ? dcganDiscriminator(seed + 1)
        : conditional
          ? new ProjectionDiscriminator(pixels, classes, seed + 1)
          : mlpDiscriminator(pixels, seed + 1);
    const betas = { beta1: config.beta1, beta2: config.beta2 };
    this.optG = new Adam(this.generator.parameters(), { lr: config.lr, ...betas });
    this.optD = new Adam(this.discriminator.parameters(), { lr: config.lr, ...betas });
    this.noise = noiseGenerator(seed);
  }

  get conditional(): boolean {
    return this.config.conditional;
  }

  modules(): Record<string, AnyModule> {
    return { generator: this.generator, discriminator: this.discriminator };
  }

  optimizers(): Record<string, AnyOptimizer> {
    return { generator: this.optG, discriminator: this.optD };
  }

  /** Generator output in [−1, 1] for `n` latents drawn from `noise` (and one-hot labels). */
  private generate(n: number, labels: Tensor | null, noise = this.noise): Tensor {
    return scope(() => {
      const z = randn([n, this.config.latent], { generator: noise });
      return this.generator.forward(labels ? concat([z, labels], 1) : z);
    });
  }

  /** Discriminator logits `[n, 1]` for images in [−1, 1]. */
  private discriminate(x: Tensor, labels: Tensor | null): Tensor {
    const d = this.discriminator;
    if (d instanceof ProjectionDiscriminator) {
      if (!labels) throw new Error('Gan: the conditional discriminator needs labels');
      return d.forward(x, labels);
    }
    return d.forward(x);
  }

  /** The discriminator's loss on a real and a generated batch. */
  private discriminatorLoss(real: Tensor, fake: Tensor, labels: Tensor | null): Tensor {
    const { objective, labelSmoothing, gpWeight } = this.config;
    if (objective === 'wgan-gp') {
      return wganGpLoss((x) => this.discriminate(x, labels), real, fake, gpWeight, this.noise).loss;
    }
    // −[log D(x) + log(1 − D(G(z)))], from logits.
    const dReal = this.discriminate(real, labels);
    const dFake = this.discriminate(fake, labels);
    return add(
      bceWithLogits(dReal, fullLike(dReal, 1 - labelSmoothing)),
      bceWithLogits(dFake, fullLike(dFake, 0)),
    );
  }

  /** The generator's loss on a fresh generated batch. */
  private generatorLoss(n: number, labels: Tensor | null): Tensor {
    const dFake = this.discriminate(this.generate(n, labels), labels);
    switch (this.config.objective) {
      case 'non-saturating': // −log D(G(z))
        return bceWithLogits(dFake, fullLike(dFake, 1));
      case 'minimax': // log(1 − D(G(z))) = −BCE(D(G(z)), 0)
        return neg(bceWithLogits(dFake, fullLike(dFake, 0)));
      default: // −E[D(G(z))]
        return neg(mean(dFake));
    }
  }

  /**
   * One discriminator update and (every step, or every `criticSteps` for WGAN-GP) one generator
   * update. Returns `{ d, g }` (g is the last generator loss for steps without a generator update).
   */
  async trainStep({ images, labels }: Batch): Promise<StepLosses> {
    const n = images.shape[0];
    const updateG = this.config.objective !== 'wgan-gp' || this.steps % this.config.criticSteps === 0;
    this.steps++;
    return adversarialStep(
      this,
      () => {
        const y = this.config.conditional ? oneHot(labels, this.config.classes) : null;
        const real = sub(mul(images, 2), 1);
        return { y, real, fake: noGrad(() => this.generate(n, y)) };
      },
      ({ y, real, fake }) => ({ d: this.discriminatorLoss(real, fake, y) }),
      updateG ? ({ y }) => this.generatorLoss(n, y) : null,
    );
  }

  /** `n` images in [0, 1]; conditional models take one label per image (random digits otherwise). */
  sample(n: number, options: SampleOptions = {}): Tensor {
    const { classes, conditional } = this.config;
    const generator = options.generator ?? this.noise;
    if (options.labels && options.labels.length !== n)
      throw new Error(`sample: ${options.labels.length} labels for ${n} images`);
    const wasTraining = this.generator.training;
    this.generator.eval();
    try {
      return noGrad(() =>
        scope(() => {
          let y: Tensor | null = null;
          if (conditional) {
            const ids = options.labels
              ? tensor(Int32Array.from(options.labels))
              : randint(0, classes, [n], { generator });
            y = oneHot(ids, classes);
          }
          return clamp(mul(add(this.generate(n, y, generator), 1), 0.5), 0, 1);
        }),
      );
    } finally {
      if (wasTraining) this.generator.train();
    }
  }
}
