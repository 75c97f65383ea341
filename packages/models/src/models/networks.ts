/**
 * The networks of the model families, each a function of its sizes and a seed. Images enter and
 * leave the MLPs flat (`[n, 784]`) and the convolutional nets as `[n, 1, 28, 28]`.
 */
import {
  BatchNorm1d,
  BatchNorm2d,
  Conv2d,
  ConvTranspose2d,
  Dense,
  Flatten,
  LeakyReLU,
  Module,
  ReLU,
  Sequential,
  Tanh,
  Unflatten,
} from '@fluxion/nn';
import { add, mul, sum, type Tensor } from '@fluxion/tensor';

/** Initialisation streams: layer `i` of a network seeded `seed` uses seed `seed · 1000 + i`. */
const seeder = (seed: number) => {
  let i = 0;
  return () => ({ seed: seed * 1000 + i++ });
};

/** Dense layers `sizes[0] → sizes[1] → …`, each followed by LeakyReLU(0.2) (seeded in order by `s`). */
function leakyDenseStack(sizes: readonly number[], s: () => { seed: number }): Module[] {
  return sizes.slice(1).flatMap((n, i) => [new Dense(sizes[i], n, s()), new LeakyReLU(0.2)]);
}

/**
 * The seed article's generator: z → 256 → 512 → 1024 → 784 with LeakyReLU(0.2) between layers and
 * tanh at the end (pixels in [−1, 1]: the sigmoid output of the seed collapses, see the README).
 */
export function mlpGenerator(
  inputs: number,
  pixels: number,
  seed: number,
  hidden = [256, 512, 1024],
): Sequential {
  const s = seeder(seed);
  return new Sequential(
    ...leakyDenseStack([inputs, ...hidden], s),
    new Dense(hidden[hidden.length - 1], pixels, s()),
    new Tanh(),
  );
}

/** The seed article's discriminator: 784 → 512 → 256 → 1 logit, LeakyReLU(0.2) between layers. */
export function mlpDiscriminator(inputs: number, seed: number, hidden = [512, 256]): Sequential {
  const s = seeder(seed);
  return new Sequential(
    ...leakyDenseStack([inputs, ...hidden], s),
    new Dense(hidden[hidden.length - 1], 1, s()),
  );
}

/**
 * The conditional GAN's discriminator: a projection discriminator (Miyato & Koyama 2018). The
 * seed discriminator's trunk (784 → 512 → 256, LeakyReLU) gives features φ(x); the logit is
 * `w·φ(x) + b + ⟨E·y, φ(x)⟩` with a learned embedding `E` of the one-hot label `y`. Appending the
 * ten one-hot values to the 784 pixels instead (the original cGAN) leaves the label as a faint
 * input that the discriminator can ignore for a long time; the projection makes "is this a
 * plausible 7" part of every logit.
 *
 * @example
 * ```ts
 * const d = new ProjectionDiscriminator(784, 10, 1);
 * d.forward(images, oneHot(labels, 10)).shape; // [n, 1]
 * ```
 */
export class ProjectionDiscriminator extends Module<[Tensor, Tensor], Tensor> {
  readonly trunk: Sequential;
  readonly head: Dense;
  readonly embed: Dense;

  constructor(pixels: number, classes: number, seed: number, hidden = [512, 256]) {
    super();
    const s = seeder(seed);
    const features = hidden[hidden.length - 1];
    this.trunk = new Sequential(...leakyDenseStack([pixels, ...hidden], s));
    this.head = new Dense(features, 1, s());
    this.embed = new Dense(classes, features, { ...s(), bias: false });
  }

  forward(x: Tensor, labels: Tensor): Tensor {
    const h = this.trunk.forward(x);
    return add(this.head.forward(h), sum(mul(h, this.embed.forward(labels)), 1, true));
  }
}

/**
 * DCGAN generator for 28×28: z → Dense → 128×7×7 → BN, ReLU → ConvT(4, s2, p1) → 64×14×14 → BN,
 * ReLU → ConvT(4, s2, p1) → 1×28×28 → tanh.
 */
export function dcganGenerator(latent: number, seed: number): Sequential {
  const s = seeder(seed);
  return new Sequential(
    new Dense(latent, 128 * 7 * 7, s()),
    new BatchNorm1d(128 * 7 * 7),
    new ReLU(),
    new Unflatten(1, [128, 7, 7]),
    new ConvTranspose2d(128, 64, 4, { stride: 2, padding: 1, ...s() }),
    new BatchNorm2d(64),
    new ReLU(),
    new ConvTranspose2d(64, 1, 4, { stride: 2, padding: 1, ...s() }),
    new Tanh(),
    new Flatten(1),
  );
}

/**
 * DCGAN discriminator for 28×28: Conv(4, s2, p1) → 64×14×14, LeakyReLU(0.2) → Conv(4, s2, p1) →
 * 128×7×7, BN, LeakyReLU(0.2) → Dense → 1 logit.
 */
export function dcganDiscriminator(seed: number): Sequential {
  const s = seeder(seed);
  return new Sequential(
    new Unflatten(1, [1, 28, 28]),
    new Conv2d(1, 64, 4, { stride: 2, padding: 1, ...s() }),
    new LeakyReLU(0.2),
    new Conv2d(64, 128, 4, { stride: 2, padding: 1, ...s() }),
    new BatchNorm2d(128),
    new LeakyReLU(0.2),
    new Flatten(1),
    new Dense(128 * 7 * 7, 1, s()),
  );
}

/** The seed article's VAE encoder body: inputs → 256 → 128 with ReLU (the μ and log σ² heads are separate). */
export function mlpEncoderBody(inputs: number, seed: number): Sequential {
  const s = seeder(seed);
  return new Sequential(new Dense(inputs, 256, s()), new ReLU(), new Dense(256, 128, s()), new ReLU());
}

/** The seed article's VAE decoder: z → 128 → 256 → 784 logits (Bernoulli means after a sigmoid). */
export function mlpDecoder(inputs: number, pixels: number, seed: number): Sequential {
  const s = seeder(seed);
  return new Sequential(
    new Dense(inputs, 128, s()),
    new ReLU(),
    new Dense(128, 256, s()),
    new ReLU(),
    new Dense(256, pixels, s()),
  );
}

/** Conv VAE encoder body: 1×28×28 → Conv(4, s2, p1) 32×14×14 → Conv(4, s2, p1) 64×7×7 → flat 3136. */
export function convEncoderBody(seed: number): Sequential {
  const s = seeder(seed);
  return new Sequential(
    new Unflatten(1, [1, 28, 28]),
    new Conv2d(1, 32, 4, { stride: 2, padding: 1, ...s() }),
    new ReLU(),
    new Conv2d(32, 64, 4, { stride: 2, padding: 1, ...s() }),
    new ReLU(),
    new Flatten(1),
  );
}

/** Conv VAE decoder: z → Dense 64×7×7 → ConvT(4, s2, p1) 32×14×14 → ConvT(4, s2, p1) 1×28×28 logits. */
export function convDecoder(latent: number, seed: number): Sequential {
  const s = seeder(seed);
  return new Sequential(
    new Dense(latent, 64 * 7 * 7, s()),
    new ReLU(),
    new Unflatten(1, [64, 7, 7]),
    new ConvTranspose2d(64, 32, 4, { stride: 2, padding: 1, ...s() }),
    new ReLU(),
    new ConvTranspose2d(32, 1, 4, { stride: 2, padding: 1, ...s() }),
    new Flatten(1),
  );
}
