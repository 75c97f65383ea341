/**
 * The training-step models every engine runs, written once as data: layer lists in PyTorch's
 * layouts (Dense weight `[out, in]`, Conv2d weight `[out, in, k, k]`, ConvTranspose2d weight
 * `[in, out, k, k]`, images NCHW), their seeded initial weights, and the fixed host inputs of a
 * step. Each engine interprets the layer list with its own ops (see `engines/`), so the networks,
 * initial weights, inputs and batch sizes are the same everywhere and their losses can be compared.
 *
 * - `gan`: the seed article's MLP GAN, generator z(100) → 256 → 512 → 1024 → 784 (tanh output, so
 *   pixels in [−1, 1]), discriminator 784 → 512 → 256 → 1 (a logit), LeakyReLU(0.2), batch 64,
 *   Adam(2e-4, β₁ = 0.5). One step = one discriminator update on a real and a generated batch, then
 *   one generator update with the non-saturating loss on a fresh latent batch.
 * - `dcgan`: the same step with small convolutional networks for 28×28 digits (no batch norm, so
 *   every engine runs the same definition): z → Dense 3136 → 64×7×7 → ConvT 32 → 14×14 → ConvT 1
 *   → 28×28 tanh; discriminator Conv 32 (14×14) → Conv 64 (7×7) → Dense 1; about 3 GFLOP a step.
 * - `vae`: the seed article's VAE done properly, encoder 784 → 256 → 128 → (μ, log σ²) of 20,
 *   z = μ + σ·ε, decoder 20 → 128 → 256 → 784 logits; loss = BCE-with-logits summed over pixels +
 *   KL(q ‖ N(0, I)), averaged over the batch of 128; Adam(1e-3).
 */
import { rand, randn } from '@fluxion/tensor';

/** Activation after a layer. */
export type Activation = 'relu' | 'leakyRelu' | 'tanh' | 'none';

/** The slope of every LeakyReLU in these models. */
export const LEAKY_SLOPE = 0.2;

/** One layer of a network. */
export type Layer =
  | { kind: 'dense'; inFeatures: number; outFeatures: number; act: Activation }
  | {
      kind: 'conv' | 'convTranspose';
      inChannels: number;
      outChannels: number;
      kernel: number;
      stride: number;
      padding: number;
      act: Activation;
    }
  /** Reshapes each sample (the batch dimension stays first), e.g. `[128, 7, 7]` or `[6272]`. */
  | { kind: 'reshape'; shape: number[] };

/** A network: a name (prefix of its parameter names) and its layers. */
export interface Network {
  name: string;
  layers: Layer[];
}

/** Adam's hyper-parameters. */
export interface AdamSpec {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
}

/** A GAN step: generator and discriminator networks, batch, latent size, optimizer. */
export interface GanSpec {
  kind: 'gan';
  name: string;
  batch: number;
  latent: number;
  /** Pixels per image (the discriminator's input is `[batch, pixels]`). */
  pixels: number;
  generator: Network;
  discriminator: Network;
  adam: AdamSpec;
}

/** A VAE step: encoder trunk, the two heads, decoder, batch, latent size, optimizer. */
export interface VaeSpec {
  kind: 'vae';
  name: string;
  batch: number;
  latent: number;
  pixels: number;
  encoder: Network;
  mu: Network;
  logVar: Network;
  decoder: Network;
  adam: AdamSpec;
}

/** Any training-step model. */
export type ModelSpec = GanSpec | VaeSpec;

const dense = (inFeatures: number, outFeatures: number, act: Activation): Layer => ({
  kind: 'dense',
  inFeatures,
  outFeatures,
  act,
});

const conv = (kind: 'conv' | 'convTranspose', inChannels: number, outChannels: number, act: Activation) =>
  ({ kind, inChannels, outChannels, kernel: 4, stride: 2, padding: 1, act }) as Layer;

/** The seed article's MLP GAN step at batch 64. */
export const GAN: GanSpec = {
  kind: 'gan',
  name: 'gan step',
  batch: 64,
  latent: 100,
  pixels: 784,
  generator: {
    name: 'G',
    layers: [
      dense(100, 256, 'leakyRelu'),
      dense(256, 512, 'leakyRelu'),
      dense(512, 1024, 'leakyRelu'),
      dense(1024, 784, 'tanh'),
    ],
  },
  discriminator: {
    name: 'D',
    layers: [dense(784, 512, 'leakyRelu'), dense(512, 256, 'leakyRelu'), dense(256, 1, 'none')],
  },
  adam: { lr: 2e-4, beta1: 0.5, beta2: 0.999, eps: 1e-8 },
};

/** A small DCGAN step for 28×28 digits at batch 64. */
export const DCGAN: GanSpec = {
  kind: 'gan',
  name: 'dcgan step',
  batch: 64,
  latent: 100,
  pixels: 784,
  generator: {
    name: 'G',
    layers: [
      dense(100, 64 * 7 * 7, 'relu'),
      { kind: 'reshape', shape: [64, 7, 7] },
      conv('convTranspose', 64, 32, 'relu'),
      conv('convTranspose', 32, 1, 'tanh'),
      { kind: 'reshape', shape: [784] },
    ],
  },
  discriminator: {
    name: 'D',
    layers: [
      { kind: 'reshape', shape: [1, 28, 28] },
      conv('conv', 1, 32, 'leakyRelu'),
      conv('conv', 32, 64, 'leakyRelu'),
      { kind: 'reshape', shape: [64 * 7 * 7] },
      dense(64 * 7 * 7, 1, 'none'),
    ],
  },
  adam: { lr: 2e-4, beta1: 0.5, beta2: 0.999, eps: 1e-8 },
};

/** The seed article's VAE (with reparameterisation and KL) at batch 128, latent 20. */
export const VAE: VaeSpec = {
  kind: 'vae',
  name: 'vae step',
  batch: 128,
  latent: 20,
  pixels: 784,
  encoder: { name: 'enc', layers: [dense(784, 256, 'relu'), dense(256, 128, 'relu')] },
  mu: { name: 'mu', layers: [dense(128, 20, 'none')] },
  logVar: { name: 'logVar', layers: [dense(128, 20, 'none')] },
  decoder: {
    name: 'dec',
    layers: [dense(20, 128, 'relu'), dense(128, 256, 'relu'), dense(256, 784, 'none')],
  },
  adam: { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8 },
};

/** Every training-step model, by the name used on the command line. */
export const MODELS: Record<string, ModelSpec> = { gan: GAN, vae: VAE, dcgan: DCGAN };

/** One parameter's host data and shape. */
export interface HostTensor {
  data: Float32Array;
  shape: number[];
}

/** The parameter shapes of one layer (weight then bias), or none for a reshape. */
export function layerParamShapes(layer: Layer): number[][] {
  switch (layer.kind) {
    case 'dense':
      return [[layer.outFeatures, layer.inFeatures], [layer.outFeatures]];
    case 'conv':
      return [[layer.outChannels, layer.inChannels, layer.kernel, layer.kernel], [layer.outChannels]];
    case 'convTranspose':
      return [[layer.inChannels, layer.outChannels, layer.kernel, layer.kernel], [layer.outChannels]];
    case 'reshape':
      return [];
  }
}

/** The networks of a model in a fixed order. */
export function modelNetworks(spec: ModelSpec): Network[] {
  return spec.kind === 'gan'
    ? [spec.generator, spec.discriminator]
    : [spec.encoder, spec.mu, spec.logVar, spec.decoder];
}

/**
 * Seeded initial weights of a network, PyTorch's default for Dense and Conv layers: weight and
 * bias ~ U(−1/√fanIn, 1/√fanIn), fanIn = weight.shape[1]·k·k. One array per parameter, in layer
 * order (weight, bias).
 */
export async function initialParams(net: Network, seed: number): Promise<HostTensor[]> {
  const out: HostTensor[] = [];
  let stream = 0;
  for (const layer of net.layers) {
    const shapes = layerParamShapes(layer);
    if (!shapes.length) continue;
    const [w] = shapes;
    const bound = 1 / Math.sqrt(w.slice(1).reduce((a, b) => a * b, 1));
    for (const shape of shapes) {
      const u = rand(shape, { seed: seed * 1000 + stream++, backend: 'cpu', dtype: 'float32' });
      const data = Float32Array.from(await u.data(), (v) => (2 * v - 1) * bound);
      u.dispose();
      out.push({ data, shape });
    }
  }
  return out;
}

/** A step's inputs: GAN `real`, `z1` (discriminator step), `z2` (generator step); VAE `x`, `eps`. */
export type StepInputs = Record<string, HostTensor>;

/** Host random data: `normal` ~ N(0, 1) or `uniform` in [lo, hi). */
export async function hostRandom(
  shape: number[],
  seed: number,
  dist: { normal: true } | { lo: number; hi: number },
): Promise<HostTensor> {
  const t = 'normal' in dist ? randn(shape, { seed, backend: 'cpu' }) : rand(shape, { seed, backend: 'cpu' });
  const raw = await t.data();
  t.dispose();
  const data =
    'normal' in dist
      ? Float32Array.from(raw)
      : Float32Array.from(raw, (v) => dist.lo + (dist.hi - dist.lo) * v);
  return { data, shape };
}

/**
 * The inputs of one step. `images` (rows of pixels in [0, 1]) replaces the random stand-in for
 * real data when given (the e2e suite passes MNIST batches); latent noise comes from `seed`.
 */
export async function stepInputs(spec: ModelSpec, seed: number, images?: Float32Array): Promise<StepInputs> {
  const { batch, latent, pixels } = spec;
  const pixelsIn = (lo: number, hi: number): Promise<HostTensor> =>
    images
      ? Promise.resolve({
          data: Float32Array.from(images, (v) => lo + (hi - lo) * v),
          shape: [batch, pixels],
        })
      : hostRandom([batch, pixels], seed, { lo, hi });
  if (spec.kind === 'gan') {
    return {
      real: await pixelsIn(-1, 1),
      z1: await hostRandom([batch, latent], seed + 1, { normal: true }),
      z2: await hostRandom([batch, latent], seed + 2, { normal: true }),
    };
  }
  return {
    x: await pixelsIn(0, 1),
    eps: await hostRandom([batch, latent], seed + 1, { normal: true }),
  };
}

/**
 * Floating-point operations of one step's matrix products and convolutions (forward, backward,
 * as the step is defined above), for GFLOP/s figures. Elementwise work is not counted.
 */
export function stepFlops(spec: ModelSpec): number {
  const forward = (net: Network, rows: number): number => {
    let flops = 0;
    let shape: number[] = [];
    for (const layer of net.layers) {
      if (layer.kind === 'dense') flops += 2 * rows * layer.inFeatures * layer.outFeatures;
      else if (layer.kind === 'reshape') shape = layer.shape;
      else {
        const size = shape[1];
        const out = layer.kind === 'conv' ? size / layer.stride : size * layer.stride;
        const pixelsDone = layer.kind === 'conv' ? out * out : size * size;
        flops += 2 * rows * pixelsDone * layer.inChannels * layer.outChannels * layer.kernel ** 2;
        shape = [layer.outChannels, out, out];
      }
    }
    return flops;
  };
  const b = spec.batch;
  if (spec.kind === 'gan') {
    const g = forward(spec.generator, b);
    const d = forward(spec.discriminator, b);
    // D step: G forward, D forward and backward (≈ 2× forward) on real and fake.
    // G step: G forward, D forward, D backward to its input, G backward.
    return g + 2 * d + 2 * (2 * d) + g + d + 2 * d + 2 * g;
  }
  const f =
    forward(spec.encoder, b) + forward(spec.mu, b) + forward(spec.logVar, b) + forward(spec.decoder, b);
  return 3 * f;
}
