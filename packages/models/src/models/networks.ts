/**
 * The networks of the model families, each a function of its sizes and a seed. Images enter and
 * leave the MLPs flat (`[n, 784]`) and the convolutional nets as `[n, 1, 28, 28]`; waveforms
 * enter and leave the WaveGAN nets flat (`[n, length]`).
 */
import {
  BatchNorm1d,
  BatchNorm2d,
  Conv1d,
  Conv2d,
  ConvTranspose1d,
  ConvTranspose2d,
  Dense,
  Flatten,
  LeakyReLU,
  Module,
  PhaseShuffle,
  ReLU,
  Sequential,
  Tanh,
  Unflatten,
} from '@fluxion/nn';
import { add, type Generator, mul, sum, type Tensor } from '@fluxion/tensor';

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
 * A projection critic (Miyato & Koyama 2018) over any feature trunk: with features
 * `φ(x) = trunk(x)` of width F, the score is `w·φ(x) + b + ⟨E·y, φ(x)⟩` with a learned embedding
 * `E` (a bias-free Dense) of the one-hot label `y`. The label enters every score as the agreement
 * of the features with the class's direction, rather than as a faint extra input that the critic
 * can ignore for a long time.
 *
 * Args:
 *   trunk: features `[n, F]` of an input batch.
 *   features: F.
 *   classes: length of the one-hot labels.
 *   seeds: initialisation seeds of the score layer `w, b` and of the embedding `E`.
 *
 * @example
 * ```ts
 * const critic = new ProjectionCritic(new Sequential(new Dense(784, 256, { seed: 0 })), 256, 10, { head: 1, embed: 2 });
 * critic.forward(x, oneHot(labels, 10)).shape; // [n, 1]
 * ```
 */
export class ProjectionCritic extends Module<[Tensor, Tensor], Tensor> {
  readonly head: Dense;
  readonly embed: Dense;

  constructor(
    readonly trunk: Sequential,
    features: number,
    classes: number,
    seeds: { head: number; embed: number },
  ) {
    super();
    this.head = new Dense(features, 1, { seed: seeds.head });
    this.embed = new Dense(classes, features, { seed: seeds.embed, bias: false });
  }

  forward(x: Tensor, labels: Tensor): Tensor {
    const h = this.trunk.forward(x);
    return add(this.head.forward(h), sum(mul(h, this.embed.forward(labels)), 1, true));
  }
}

/**
 * The conditional GAN's discriminator: a {@link ProjectionCritic} on the seed discriminator's
 * trunk (784 → 512 → 256, LeakyReLU). Appending the ten one-hot values to the 784 pixels instead
 * (the original cGAN) leaves the label as a faint input that the discriminator can ignore for a
 * long time; the projection makes "is this a plausible 7" part of every logit.
 *
 * @example
 * ```ts
 * const d = new ProjectionDiscriminator(784, 10, 1);
 * d.forward(images, oneHot(labels, 10)).shape; // [n, 1]
 * ```
 */
export class ProjectionDiscriminator extends ProjectionCritic {
  constructor(pixels: number, classes: number, seed: number, hidden = [512, 256]) {
    const s = seeder(seed);
    const trunk = new Sequential(...leakyDenseStack([pixels, ...hidden], s));
    super(trunk, hidden[hidden.length - 1], classes, { head: s().seed, embed: s().seed });
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

/** WaveGAN's convolution geometry: kernel 25, stride 4, padding 11 (×4 or ÷4 in length per block). */
const WAVE = { kernel: 25, stride: 4, padding: 11 } as const;

/** Channels of the WaveGAN nets at depth `i` of `blocks` (`i = blocks`: the waveform's one channel). */
function waveChannels(modelSize: number, blocks: number, i: number): number {
  return i === blocks ? 1 : modelSize * 2 ** (blocks - 1 - i);
}

/**
 * WaveGAN's generator (Donahue et al. 2019) with `blocks` upsampling blocks: the input (z, with the
 * one-hot label appended for a conditional model) → Dense → `[d·2^(B−1), length/4^B]` → ReLU →
 * B × (ConvTranspose1d kernel 25, stride 4, padding 11, outputPadding 1, halving the channels and
 * multiplying the length by 4; ReLU between blocks) → one channel → tanh → `[n, length]`. The
 * paper's net is B = 5, d = 64 for 16384 samples; `length` must be a multiple of 4^B.
 *
 * @example
 * ```ts
 * waveganGenerator(110, 8192, 16, 4, 0).forward(randn([2, 110])).shape; // [2, 8192], via [2, 128, 32]
 * ```
 */
export function waveganGenerator(
  inputs: number,
  length: number,
  modelSize: number,
  blocks: number,
  seed: number,
): Sequential {
  const s = seeder(seed);
  const ch = (i: number) => waveChannels(modelSize, blocks, i);
  const start = length / 4 ** blocks;
  const layers: Module[] = [
    new Dense(inputs, ch(0) * start, s()),
    new Unflatten(1, [ch(0), start]),
    new ReLU(),
  ];
  for (let i = 0; i < blocks; i++) {
    layers.push(
      new ConvTranspose1d(ch(i), ch(i + 1), WAVE.kernel, {
        stride: WAVE.stride,
        padding: WAVE.padding,
        outputPadding: 1,
        ...s(),
      }),
      i < blocks - 1 ? new ReLU() : new Tanh(),
    );
  }
  return new Sequential(...layers, new Flatten(1));
}

/**
 * WaveGAN's critic (Donahue et al. 2019) with `blocks` downsampling blocks: `[n, length]` →
 * `[n, 1, length]` → B × (Conv1d kernel 25, stride 4, padding 11, doubling the channels from d and
 * dividing the length by 4; LeakyReLU(0.2); phase shuffle by up to `shuffle` samples after every
 * block but the last) → flattened features (`d·2^(B−1) · length/4^B`) → one score; for
 * `classes > 0` the score is a {@link ProjectionCritic}'s, conditioned on one-hot labels. The phase
 * shuffles draw from `noise` (the model's stream, so that a resumed run draws the same shifts).
 *
 * @example
 * ```ts
 * const critic = waveganCritic(8192, 16, 4, 2, 10, model.noise, 1) as ProjectionCritic;
 * critic.forward(audio, oneHot(labels, 10)).shape; // [n, 1]
 * ```
 */
export function waveganCritic(
  length: number,
  modelSize: number,
  blocks: number,
  shuffle: number,
  classes: number,
  noise: Generator,
  seed: number,
): Sequential | ProjectionCritic {
  const s = seeder(seed);
  const ch = (i: number) => waveChannels(modelSize, blocks, blocks - i);
  const layers: Module[] = [new Unflatten(1, [1, length])];
  for (let i = 0; i < blocks; i++) {
    layers.push(
      new Conv1d(ch(i), ch(i + 1), WAVE.kernel, { stride: WAVE.stride, padding: WAVE.padding, ...s() }),
      new LeakyReLU(0.2),
    );
    if (i < blocks - 1 && shuffle > 0) layers.push(new PhaseShuffle(shuffle, { generator: noise }));
  }
  const features = ch(blocks) * (length / 4 ** blocks);
  layers.push(new Flatten(1));
  if (classes === 0) return new Sequential(...layers, new Dense(features, 1, s()));
  return new ProjectionCritic(new Sequential(...layers), features, classes, {
    head: s().seed,
    embed: s().seed,
  });
}
