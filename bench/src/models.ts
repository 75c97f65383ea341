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
 * - `wavegan`: the default WaveGAN of `@fluxion/models` (d = 8, four blocks, 8192 samples), one
 *   WGAN-GP critic update (penalty weight 10, which differentiates the critic's input gradient
 *   again) and one generator update, Adam(1e-4, β = (0.5, 0.9)), batch 32. Unconditional and
 *   without phase shuffle, so that every engine runs the same deterministic networks.
 * - `charlm`: the names character Transformer of `@fluxion/models` (vocabulary 27 with the
 *   boundary token, context 16, width 64, 4 pre-LayerNorm blocks of 4 heads, GELU MLP, tied output
 *   layer; 202,816 parameters), cross-entropy, gradient clipping at norm 1 and AdamW, batch 64.
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
  /** 1-D convolutions over `[C, L]` samples, PyTorch's `Conv1d` / `ConvTranspose1d`. */
  | {
      kind: 'conv1d' | 'convTranspose1d';
      inChannels: number;
      outChannels: number;
      kernel: number;
      stride: number;
      padding: number;
      /** Extra samples at the end of a transposed convolution's output (0 for `conv1d`). */
      outputPadding: number;
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

/**
 * A WGAN-GP step (Gulrajani et al. 2017): the critic minimises
 * `E[D(G(z))] − E[D(x)] + λ·E[(‖∇ₓ̂ D(x̂)‖₂ − 1)²]` with `x̂ = εx + (1 − ε)G(z)` (one ε per
 * example, a step input), then the generator minimises `−E[D(G(z'))]`.
 */
export interface WganGpSpec extends Omit<GanSpec, 'kind'> {
  kind: 'wgan-gp';
  /** The penalty weight λ. */
  gpWeight: number;
}

/** AdamW: Adam with decoupled weight decay on the matrices (rank ≥ 2) only, as `@fluxion/models`. */
export interface AdamWSpec extends AdamSpec {
  weightDecay: number;
}

/**
 * A GPT-style character Transformer step: token embedding E `[vocab, dim]` plus learned positions,
 * `layers` pre-LayerNorm blocks (causal multi-head attention, GELU MLP of `mlpRatio · dim`), a final
 * LayerNorm and logits `x Eᵀ` (tied), mean cross-entropy over every position, global gradient-norm
 * clipping, AdamW.
 */
export interface CharLmSpec {
  kind: 'charlm';
  name: string;
  batch: number;
  vocab: number;
  context: number;
  dim: number;
  layers: number;
  heads: number;
  mlpRatio: number;
  /** LayerNorm's ε. */
  lnEps: number;
  /** Largest global gradient norm. */
  clip: number;
  adamw: AdamWSpec;
}

/** Any training-step model. */
export type ModelSpec = GanSpec | VaeSpec | WganGpSpec | CharLmSpec;

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

const wave = (kind: 'conv1d' | 'convTranspose1d', inChannels: number, outChannels: number, act: Activation) =>
  ({
    kind,
    inChannels,
    outChannels,
    kernel: 25,
    stride: 4,
    padding: 11,
    outputPadding: kind === 'convTranspose1d' ? 1 : 0,
    act,
  }) as Layer;

/**
 * The default WaveGAN of `@fluxion/models` (`waveganConfig()`: d = 8, four blocks of kernel 25,
 * stride 4, 8192 samples), unconditional and without phase shuffle, one WGAN-GP step at batch 32.
 * Generator z(100) → Dense 64·32 → `[64, 32]` → ConvT 32 → 16 → 8 → 1 (tanh) → 8192 samples;
 * critic `[1, 8192]` → Conv 8 → 16 → 32 → 64 (LeakyReLU 0.2) → 2048 features → Dense 1.
 */
export const WAVEGAN: WganGpSpec = {
  kind: 'wgan-gp',
  name: 'wavegan step',
  batch: 32,
  latent: 100,
  pixels: 8192,
  gpWeight: 10,
  generator: {
    name: 'G',
    layers: [
      dense(100, 64 * 32, 'relu'),
      { kind: 'reshape', shape: [64, 32] },
      wave('convTranspose1d', 64, 32, 'relu'),
      wave('convTranspose1d', 32, 16, 'relu'),
      wave('convTranspose1d', 16, 8, 'relu'),
      wave('convTranspose1d', 8, 1, 'tanh'),
      { kind: 'reshape', shape: [8192] },
    ],
  },
  discriminator: {
    name: 'D',
    layers: [
      { kind: 'reshape', shape: [1, 8192] },
      wave('conv1d', 1, 8, 'leakyRelu'),
      wave('conv1d', 8, 16, 'leakyRelu'),
      wave('conv1d', 16, 32, 'leakyRelu'),
      wave('conv1d', 32, 64, 'leakyRelu'),
      { kind: 'reshape', shape: [64 * 32] },
      dense(64 * 32, 1, 'none'),
    ],
  },
  adam: { lr: 1e-4, beta1: 0.5, beta2: 0.9, eps: 1e-8 },
};

/**
 * The names character Transformer of `@fluxion/models` (`textModelDefaults('charlm', 'lines')`
 * on the names data: 26 letters and the boundary token), at its training batch of 64 and its
 * learning rate after warm-up (constant here: the schedule only changes a scalar).
 */
export const CHARLM: CharLmSpec = {
  kind: 'charlm',
  name: 'charlm step',
  batch: 64,
  vocab: 27,
  context: 16,
  dim: 64,
  layers: 4,
  heads: 4,
  mlpRatio: 4,
  lnEps: 1e-5,
  clip: 1,
  adamw: { lr: 2e-3, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.1 },
};

/** Every training-step model, by the name used on the command line. */
export const MODELS: Record<string, ModelSpec> = {
  gan: GAN,
  vae: VAE,
  dcgan: DCGAN,
  wavegan: WAVEGAN,
  charlm: CHARLM,
};

/** One parameter's host data and shape; `int32` data (token ids) holds exact integers. */
export interface HostTensor {
  data: Float32Array;
  shape: number[];
  dtype?: 'int32';
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
    case 'conv1d':
      return [[layer.outChannels, layer.inChannels, layer.kernel], [layer.outChannels]];
    case 'convTranspose1d':
      return [[layer.inChannels, layer.outChannels, layer.kernel], [layer.outChannels]];
    case 'reshape':
      return [];
  }
}

/** The networks of a model in a fixed order (none for the Transformer, see {@link charLmParamDefs}). */
export function modelNetworks(spec: ModelSpec): Network[] {
  switch (spec.kind) {
    case 'gan':
    case 'wgan-gp':
      return [spec.generator, spec.discriminator];
    case 'vae':
      return [spec.encoder, spec.mu, spec.logVar, spec.decoder];
    case 'charlm':
      return [];
  }
}

/** How a Transformer parameter starts: N(0, std²), U(±1/√fanIn), ones or zeros. */
export type ParamInit = { normal: number } | { fanIn: number } | 'ones' | 'zeros';

/** One parameter of the character Transformer: its `@fluxion/models` name, PyTorch shape and start. */
export interface ParamDef {
  name: string;
  shape: number[];
  init: ParamInit;
}

/**
 * The character Transformer's parameters in the order of `CharTransformer.namedParameters()`
 * (the tied output layer adds none): token and position tables, then per block LayerNorm,
 * attention `qkv` `[3·dim, dim]` and `proj`, LayerNorm, MLP `fc1` and `fc2` (Dense weights
 * `[out, in]`), then the final LayerNorm.
 */
export function charLmParamDefs(spec: CharLmSpec): ParamDef[] {
  const { vocab, context, dim, mlpRatio } = spec;
  const hidden = mlpRatio * dim;
  const norm = (name: string): ParamDef[] => [
    { name: `${name}.weight`, shape: [dim], init: 'ones' },
    { name: `${name}.bias`, shape: [dim], init: 'zeros' },
  ];
  const linear = (name: string, inF: number, outF: number): ParamDef[] => [
    { name: `${name}.weight`, shape: [outF, inF], init: { fanIn: inF } },
    { name: `${name}.bias`, shape: [outF], init: { fanIn: inF } },
  ];
  const defs: ParamDef[] = [
    { name: 'tokens.weight', shape: [vocab, dim], init: { normal: 0.02 } },
    { name: 'positions.weight', shape: [context, dim], init: { normal: 0.02 } },
  ];
  for (let i = 0; i < spec.layers; i++) {
    const b = `blocks.${i}`;
    defs.push(
      ...norm(`${b}.ln1`),
      ...linear(`${b}.attn.qkv`, dim, 3 * dim),
      ...linear(`${b}.attn.proj`, dim, dim),
      ...norm(`${b}.ln2`),
      ...linear(`${b}.fc1`, dim, hidden),
      ...linear(`${b}.fc2`, hidden, dim),
    );
  }
  defs.push(...norm('lnF'));
  return defs;
}

/** Seeded initial parameters of the character Transformer, in {@link charLmParamDefs} order. */
export async function charLmParams(spec: CharLmSpec, seed: number): Promise<HostTensor[]> {
  const out: HostTensor[] = [];
  for (const [i, { shape, init }] of charLmParamDefs(spec).entries()) {
    const size = shape.reduce((a, b) => a * b, 1);
    if (init === 'ones' || init === 'zeros') {
      out.push({ data: new Float32Array(size).fill(init === 'ones' ? 1 : 0), shape });
      continue;
    }
    const stream = seed * 1000 + i;
    const h = await hostRandom(shape, stream, 'normal' in init ? { normal: true } : { lo: 0, hi: 1 });
    const bound = 'fanIn' in init ? 1 / Math.sqrt(init.fanIn) : 0;
    const data =
      'normal' in init ? h.data.map((v) => v * init.normal) : h.data.map((v) => (2 * v - 1) * bound);
    out.push({ data, shape });
  }
  return out;
}

/** Every parameter's host data of a model, one list per network (one list for the Transformer). */
export async function modelParams(spec: ModelSpec): Promise<HostTensor[][]> {
  if (spec.kind === 'charlm') return [await charLmParams(spec, 100)];
  return Promise.all(modelNetworks(spec).map((net, i) => initialParams(net, 100 + i)));
}

/** The parameter shapes of a model in PyTorch's layouts, one list per network. */
export function modelParamShapes(spec: ModelSpec): number[][][] {
  if (spec.kind === 'charlm') return [charLmParamDefs(spec).map((d) => d.shape)];
  return modelNetworks(spec).map((net) => net.layers.flatMap(layerParamShapes));
}

/** The number of parameters of a model. */
export function parameterCount(spec: ModelSpec): number {
  return modelParamShapes(spec)
    .flat()
    .reduce((total, shape) => total + shape.reduce((a, b) => a * b, 1), 0);
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

/**
 * A step's inputs: GAN `real`, `z1` (discriminator step), `z2` (generator step), and for WGAN-GP
 * `eps` (interpolation weights `[batch, 1]`); VAE `x`, `eps`; Transformer `ids`, `targets` (int32).
 */
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
  if (spec.kind === 'charlm') {
    const ints = async (s: number): Promise<HostTensor> => {
      const u = await hostRandom([spec.batch, spec.context], s, { lo: 0, hi: 1 });
      return {
        ...u,
        data: u.data.map((v) => Math.min(spec.vocab - 1, Math.floor(v * spec.vocab))),
        dtype: 'int32',
      };
    };
    return { ids: await ints(seed), targets: await ints(seed + 1) };
  }
  const { batch, latent, pixels } = spec;
  const pixelsIn = (lo: number, hi: number): Promise<HostTensor> =>
    images
      ? Promise.resolve({
          data: Float32Array.from(images, (v) => lo + (hi - lo) * v),
          shape: [batch, pixels],
        })
      : hostRandom([batch, pixels], seed, { lo, hi });
  if (spec.kind === 'gan' || spec.kind === 'wgan-gp') {
    return {
      real: await pixelsIn(-1, 1),
      z1: await hostRandom([batch, latent], seed + 1, { normal: true }),
      z2: await hostRandom([batch, latent], seed + 2, { normal: true }),
      ...(spec.kind === 'wgan-gp' && { eps: await hostRandom([batch, 1], seed + 3, { lo: 0, hi: 1 }) }),
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
      else if (layer.kind === 'conv1d' || layer.kind === 'convTranspose1d') {
        // A product per kernel tap at each output position (conv) or input position (transposed).
        const length = shape[1];
        const conv = layer.kind === 'conv1d';
        const out = conv ? length / layer.stride : length * layer.stride;
        flops += 2 * rows * (conv ? out : length) * layer.inChannels * layer.outChannels * layer.kernel;
        shape = [layer.outChannels, out];
      } else {
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
  if (spec.kind === 'charlm') {
    // Per position and block: qkv, proj and the MLP's two products, scores and weighted sum over
    // all T keys; then the tied output layer. Backward ≈ twice the forward.
    const { dim: d, context: t, mlpRatio: r, vocab: v } = spec;
    const perToken = spec.layers * 2 * (3 * d * d + d * d + 2 * r * d * d + 2 * t * d) + 2 * d * v;
    return 3 * b * t * perToken;
  }
  if (spec.kind === 'wgan-gp') {
    const g = forward(spec.generator, b);
    const d = forward(spec.discriminator, b);
    // Critic step: G forward; D forward on real, fake and x̂; the input gradient at x̂ (≈ 1× more);
    // backward of all that to D's weights (≈ 2× of D's four passes). Generator step: G forward,
    // D forward and backward to its input, G backward.
    const critic = g + 4 * d + 2 * 4 * d;
    return critic + g + d + d + 2 * g;
  }
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
