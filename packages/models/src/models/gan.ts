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
import { bceWithLogits, type Sequential } from '@fluxion/nn';
import { add, clamp, fullLike, mean, mul, neg, sub, type Tensor } from '@fluxion/tensor';
import type { Batch } from '../data/images.js';
import { AdversarialModel, adversarialStep, wganGpLoss } from './adversarial.js';
import type { BaseConfig, GenerativeModel, SampleOptions, StepLosses } from './model.js';
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
export class Gan
  extends AdversarialModel<GanConfig, Sequential | ProjectionDiscriminator>
  implements GenerativeModel
{
  constructor(config: GanConfig) {
    const { latent, height, width, classes, seed, conditional, architecture } = config;
    const pixels = height * width;
    const extra = conditional ? classes : 0;
    if (architecture === 'dcgan' && (conditional || height !== 28 || width !== 28)) {
      throw new Error('Gan: the DCGAN architecture is unconditional and 28×28');
    }
    super(config, () => ({
      generator:
        architecture === 'dcgan' ? dcganGenerator(latent, seed) : mlpGenerator(latent + extra, pixels, seed),
      discriminator:
        architecture === 'dcgan'
          ? dcganDiscriminator(seed + 1)
          : conditional
            ? new ProjectionDiscriminator(pixels, classes, seed + 1)
            : mlpDiscriminator(pixels, seed + 1),
    }));
  }

  /** The discriminator's loss on a real and a generated batch. */
  private discriminatorLoss(real: Tensor, fake: Tensor, labels: Tensor | null): Tensor {
    const { objective, labelSmoothing, gpWeight } = this.config;
    if (objective === 'wgan-gp') {
      return wganGpLoss((x) => this.score(x, labels), real, fake, gpWeight, this.noise).loss;
    }
    // −[log D(x) + log(1 − D(G(z)))], from logits.
    const dReal = this.score(real, labels);
    const dFake = this.score(fake, labels);
    return add(
      bceWithLogits(dReal, fullLike(dReal, 1 - labelSmoothing)),
      bceWithLogits(dFake, fullLike(dFake, 0)),
    );
  }

  /** The generator's loss on a fresh generated batch. */
  private generatorLoss(n: number, labels: Tensor | null): Tensor {
    const dFake = this.score(this.generate(n, labels), labels);
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
        const y = this.condition(labels);
        const real = sub(mul(images, 2), 1);
        return { y, real, fake: noGrad(() => this.generate(n, y)) };
      },
      ({ y, real, fake }) => ({ d: this.discriminatorLoss(real, fake, y) }),
      updateG ? ({ y }) => this.generatorLoss(n, y) : null,
    );
  }

  /** `n` images in [0, 1]; conditional models take one label per image (random digits otherwise). */
  sample(n: number, options: SampleOptions = {}): Tensor {
    if (options.labels && options.labels.length !== n)
      throw new Error(`sample: ${options.labels.length} labels for ${n} images`);
    return this.sampleOutputs(n, options.labels, options.generator ?? this.noise, (x) =>
      clamp(mul(add(x, 1), 0.5), 0, 1),
    );
  }
}
