/**
 * A conditional VAE of log-magnitude spectrograms (`specvae`), turned into audio by Griffin-Lim:
 * the second audio model beside {@link WaveGan}.
 *
 * Why a VAE and not SpecGAN. SpecGAN (Donahue et al. 2019) beat WaveGAN on SC09's Inception score
 * with the same WGAN-GP recipe on 128 × 128 spectrograms, but it needs the same five critic steps
 * per generator step, each with a double backward for the gradient penalty, and its progress is
 * hard to read from the losses. The budget here is 30 minutes on a CPU adapter: a VAE gets a useful
 * gradient for the generator (the decoder) from every step, one forward and backward per step, a
 * loss that falls monotonically and says when it has converged, and no mode collapse to fight;
 * the label is free information to the decoder, so conditioning is learned from the first steps.
 * The price is blur (the Gaussian decoder averages over what z does not pin down), which Griffin-Lim
 * hears as a softer, slightly buzzy voice; the digit stays intelligible, which is what the
 * conditional accuracy measures.
 *
 * Representation ({@link SpectrogramCodec}): the clip's STFT magnitude (nFft 256, hop 64, periodic
 * Hann, centred: 129 bins × 129 frames for 8192 samples at 8 kHz) without the Nyquist bin and the
 * last frame, so 128 × 128, halved cleanly by each of four stride-2 convolutions; log-compressed as
 * `log(|X| + 1e-3)` (the floor sits just below the quietest recorded noise of FSDD, |X| ≈ 1.5e-3,
 * so the zero padding of short clips reads as silence instead of spending a tenth of the range
 * between −14 and −7 on it); normalised per frequency bin by the training set's mean and standard
 * deviation, clipped at 3σ and divided by 3, so values lie in [−1, 1] (SpecGAN's recipe). The
 * statistics are buffers of the codec module, so a checkpoint restores them.
 *
 * Model ({@link SpecVae}): encoder `[1, 128, 128]` → 4 × (Conv2d k4 s2 p1, LeakyReLU 0.2), channels
 * d, 2d, 4d, 8d → `[8d, 8, 8]` → flattened, with the one-hot digit appended → μ and log σ²; decoder
 * (z, one-hot) → Dense → `[8d, 8, 8]` → 4 × ConvTranspose2d k4 s2 p1 (ReLU between) → `[1, 128, 128]`,
 * the Gaussian mean. d = 16 by default.
 *
 * Loss: the negative ELBO with a calibrated Gaussian decoder (Rybkin, Daniilidis & Levine 2021,
 * "σ-VAE"): one variance σ² shared by all values, set to its maximum-likelihood value, the batch's
 * mean squared error, so `−log p(x|z) = D/2 · (log(2π·σ²) + 1)` per clip (D = 16384 values) and the
 * balance between reconstruction and KL needs no hand-tuned σ or β.
 */
import { noGrad } from '@fluxion/autograd';
import {
  Adam,
  type AnyModule,
  Buffer,
  Conv2d,
  ConvTranspose2d,
  Dense,
  Flatten,
  gaussianKl,
  LeakyReLU,
  Module,
  ReLU,
  Sequential,
  Unflatten,
} from '@fluxion/nn';
import {
  add,
  clamp,
  concat,
  div,
  exp,
  FluxionError,
  fmtShape,
  type Generator,
  griffinLim,
  log,
  magnitude,
  mean,
  mul,
  oneHot,
  pad,
  randint,
  randn,
  relu,
  scope,
  slice,
  square,
  stft,
  sub,
  sum,
  type Tensor,
  tensor,
} from '@fluxion/tensor';
import { type AudioSplit, FSDD_CLIP_LENGTH, FSDD_SAMPLE_RATE } from '../data/audio.js';
import type { AudioBaseConfig, AudioBatch, AudioModel } from './audio-model.js';
import {
  type AnyOptimizer,
  noiseGenerator,
  readLosses,
  type SampleOptions,
  type StepLosses,
} from './model.js';

/**
 * The geometry of a {@link SpectrogramCodec}: the STFT, the log floor and the clip.
 *
 * @example
 * ```ts
 * const geometry: SpectrogramGeometry = { length: 8192, nFft: 256, hopLength: 64, floor: 1e-3, clip: 3 };
 * ```
 */
export interface SpectrogramGeometry {
  /** Samples per clip; a multiple of `hopLength`. */
  length: number;
  /** DFT size (even): the spectrogram has nFft/2 bins (the Nyquist bin is dropped). */
  nFft: number;
  /** Samples between frames: the spectrogram has length/hop frames (the last centred frame is dropped). */
  hopLength: number;
  /** ε of the log compression `log(|X| + ε)`. */
  floor: number;
  /** Normalised values are clipped at ±clip standard deviations, then divided by clip. */
  clip: number;
}

/** Rows of clips per pass when {@link SpectrogramCodec.fit} computes the statistics. */
const FIT_BATCH = 100;
/** The smallest per-bin standard deviation the codec divides by. */
const MIN_STD = 1e-3;

/**
 * Clips ↔ normalised log-magnitude spectrograms, with the training set's per-bin statistics as
 * buffers (`mean`, `std` `[bins, 1]`, `fitted` a scalar 0/1), so they travel in a state dict.
 *
 * Forward: `s = clip(((log(|STFT(x)| + ε)) − μ_f) / σ_f, −c, c) / c`, `[n, length]` →
 * `[n, nFft/2, length/hop]` in [−1, 1] (bin f, frame t; the Nyquist bin and the last centred
 * frame are dropped). Back: {@link toMagnitude} undoes the normalisation and the log (values
 * clipped on the way in stay clipped) and restores the dropped bin (as 0) and frame (a copy of
 * the last), {@link toAudio} recovers a phase by Griffin-Lim.
 *
 * Args:
 *   geometry: {@link SpectrogramGeometry}.
 *
 * @example
 * ```ts
 * const codec = new SpectrogramCodec({ length: 8192, nFft: 256, hopLength: 64, floor: 1e-3, clip: 3 });
 * await codec.fit(loadFsdd().train);
 * const spec = codec.forward(clips);      // [n, 128, 128] in [−1, 1]
 * const audio = codec.toAudio(spec);      // [n, 8192]
 * ```
 */
export class SpectrogramCodec extends Module<[Tensor], Tensor> {
  readonly mean: Buffer;
  readonly std: Buffer;
  /** 1 once {@link fit} (or a loaded state dict) has set the statistics, else 0. */
  readonly fitted: Buffer;

  constructor(readonly geometry: SpectrogramGeometry) {
    super();
    const { length, nFft, hopLength, floor, clip } = geometry;
    const fail = (why: string) => new FluxionError('SpectrogramCodec', why);
    if (!Number.isInteger(nFft) || nFft < 4 || nFft % 2)
      throw fail(`nFft must be an even integer ≥ 4, got ${nFft}`);
    if (!Number.isInteger(hopLength) || hopLength < 1 || length % hopLength)
      throw fail(`hopLength must be an integer ≥ 1 that divides length ${length}, got ${hopLength}`);
    if (!(floor > 0) || !(clip > 0)) throw fail(`floor and clip must be positive, got ${floor}, ${clip}`);
    this.mean = new Buffer(tensor(new Float32Array(this.bins), [this.bins, 1]));
    this.std = new Buffer(tensor(new Float32Array(this.bins).fill(1), [this.bins, 1]));
    this.fitted = new Buffer(tensor(0));
  }

  /** Frequency bins of a spectrogram: nFft/2. */
  get bins(): number {
    return this.geometry.nFft / 2;
  }

  /** Frames of a spectrogram: length/hop. */
  get frames(): number {
    return this.geometry.length / this.geometry.hopLength;
  }

  /** `log(|STFT(x)| + ε)` of clips `[n, length]`, without the Nyquist bin and the last frame: `[n, bins, frames]`. */
  logMagnitude(audio: Tensor): Tensor {
    const { length, nFft, hopLength, floor } = this.geometry;
    if (audio.rank !== 2 || audio.shape[1] !== length)
      throw new FluxionError(
        'SpectrogramCodec',
        `clips must be [n, ${length}], got ${fmtShape(audio.shape)}`,
      );
    return scope(() => {
      const mag = magnitude(stft(audio, { nFft, hopLength }));
      return log(add(slice(mag, null, [0, this.bins], [0, this.frames]), floor));
    });
  }

  /** Normalised spectrograms `[n, bins, frames]` in [−1, 1] of clips `[n, length]` (see the class comment). */
  forward(audio: Tensor): Tensor {
    const { clip } = this.geometry;
    return scope(() => {
      const z = div(sub(this.logMagnitude(audio), this.mean), this.std);
      return mul(clamp(z, -clip, clip), 1 / clip);
    });
  }

  /** The log-magnitudes `[n, bins, frames]` of normalised spectrograms (clamped to [−1, 1] first). */
  denormalize(spec: Tensor): Tensor {
    return scope(() => add(mul(clamp(spec, -1, 1), mul(this.std, this.geometry.clip)), this.mean));
  }

  /**
   * The STFT magnitude `[n, bins + 1, frames + 1]` (the shape Griffin-Lim takes) of normalised
   * spectrograms `[n, bins, frames]`: `max(exp(denormalize(s)) − ε, 0)`, with a Nyquist bin of 0
   * and the last frame repeated.
   *
   * @example
   * ```ts
   * codec.toMagnitude(spec).shape; // [n, 129, 129] for the default 128 × 128
   * ```
   */
  toMagnitude(spec: Tensor): Tensor {
    this.checkSpec(spec);
    return scope(() => {
      const mag = relu(sub(exp(this.denormalize(spec)), this.geometry.floor));
      const last = slice(mag, null, null, [this.frames - 1, this.frames]);
      return pad(concat([mag, last], 2), [
        [0, 0],
        [0, 1],
        [0, 0],
      ]);
    });
  }

  /**
   * Clips `[n, length]` of normalised spectrograms by Griffin-Lim (fast, momentum 0.99) from
   * random phases seeded `seed`, clamped to [−1, 1].
   *
   * Args:
   *   spec: normalised spectrograms `[n, bins, frames]`.
   *   options.iterations: Griffin-Lim iterations (default 32).
   *   options.seed: seed of the initial phases (default 0).
   *
   * @example
   * ```ts
   * const clips = codec.toAudio(codec.forward(real), { iterations: 64 }); // real clips re-phased
   * ```
   */
  toAudio(spec: Tensor, options: { iterations?: number; seed?: number } = {}): Tensor {
    const { iterations = 32, seed = 0 } = options;
    const { nFft, hopLength, length } = this.geometry;
    return noGrad(() =>
      scope(() =>
        clamp(
          griffinLim(this.toMagnitude(spec), { nFft, hopLength, length, nIter: iterations, seed }),
          -1,
          1,
        ),
      ),
    );
  }

  /**
   * Sets the per-bin mean and standard deviation of the log-magnitudes of `split`'s clips (over
   * clips and frames, on the current backend, in passes of 100 clips, summed in float64 on the
   * host), and `fitted` to 1.
   *
   * @example
   * ```ts
   * await model.codec.fit(loadFsdd().train); // once, before training (a checkpoint restores it)
   * ```
   */
  async fit(split: AudioSplit): Promise<void> {
    const { length } = this.geometry;
    if (split.length !== length || split.count < 1)
      throw new FluxionError(
        'SpectrogramCodec.fit',
        `needs clips of ${length} samples, got ${split.count} of ${split.length}`,
      );
    const s1 = new Float64Array(this.bins);
    const s2 = new Float64Array(this.bins);
    for (let start = 0; start < split.count; start += FIT_BATCH) {
      const n = Math.min(FIT_BATCH, split.count - start);
      const sums = noGrad(() =>
        scope(() => {
          const clips = tensor(split.audio.subarray(start * length, (start + n) * length), [n, length]);
          const l = this.logMagnitude(clips);
          return concat([sum(l, [0, 2]), sum(square(l), [0, 2])]);
        }),
      );
      const v = await sums.data();
      sums.dispose();
      for (let f = 0; f < this.bins; f++) {
        s1[f] += Number(v[f]);
        s2[f] += Number(v[this.bins + f]);
      }
    }
    const count = split.count * this.frames;
    const mu = s1.map((s) => s / count);
    const sd = s2.map((s, f) => Math.max(Math.sqrt(Math.max(s / count - mu[f] ** 2, 0)), MIN_STD));
    scope(() => {
      this.mean.assign(tensor(Float32Array.from(mu), [this.bins, 1]));
      this.std.assign(tensor(Float32Array.from(sd), [this.bins, 1]));
      this.fitted.assign(tensor(1));
    });
  }

  /** Whether the statistics are set (reads the `fitted` buffer). */
  async isFitted(): Promise<boolean> {
    return (await this.fitted.item()) === 1;
  }

  private checkSpec(spec: Tensor): void {
    if (spec.rank !== 3 || spec.shape[1] !== this.bins || spec.shape[2] !== this.frames)
      throw new FluxionError(
        'SpectrogramCodec',
        `spectrograms must be [n, ${this.bins}, ${this.frames}], got ${fmtShape(spec.shape)}`,
      );
  }
}

/** Configuration of a {@link SpecVae}. */
export interface SpecVaeConfig extends Omit<AudioBaseConfig, 'kind'>, Omit<SpectrogramGeometry, 'length'> {
  kind: 'specvae';
  /** Condition encoder and decoder on the class (one-hot appended to the features and to z). */
  conditional: boolean;
  /** Model size d: channels d, 2d, 4d, 8d, … of the encoder's blocks (the decoder mirrors them). */
  modelSize: number;
  /** Stride-2 blocks; bins (nFft/2) and frames (length/hop) must be multiples of 2^blocks. */
  blocks: number;
  /** Weight of the KL term (1: the ELBO). */
  beta: number;
  /** Griffin-Lim iterations of {@link SpecVae.sample} (default 32). */
  griffinLimIters: number;
}

/**
 * The default spectrogram VAE for FSDD (8192 samples at 8 kHz, ten digits), with `overrides`
 * applied and checked: nFft 256, hop 64 (128 × 128 spectrograms), floor 1e-3, clip 3σ, four
 * blocks, d = 16, latent 32, Adam lr 1e-3, β = 1, 32 Griffin-Lim iterations.
 *
 * @example
 * ```ts
 * const tiny = specVaeConfig({ length: 1024, nFft: 64, hopLength: 16, blocks: 2, modelSize: 4 }); // 32 × 64
 * ```
 */
export function specVaeConfig(overrides: Partial<SpecVaeConfig> = {}): SpecVaeConfig {
  const config: SpecVaeConfig = {
    latent: 32,
    lr: 1e-3,
    seed: 0,
    length: FSDD_CLIP_LENGTH,
    sampleRate: FSDD_SAMPLE_RATE,
    classes: 10,
    nFft: 256,
    hopLength: 64,
    floor: 1e-3,
    clip: 3,
    conditional: true,
    modelSize: 16,
    blocks: 4,
    beta: 1,
    griffinLimIters: 32,
    ...overrides,
    kind: 'specvae',
  };
  checkConfig(config);
  return config;
}

/** Throws a {@link FluxionError} naming the first invalid field of `c`. */
function checkConfig(c: SpecVaeConfig): void {
  const fail = (why: string) => new FluxionError('SpecVae', why);
  const counts: [keyof SpecVaeConfig, number][] = [
    ['latent', 1],
    ['length', 1],
    ['sampleRate', 1],
    ['classes', 1],
    ['nFft', 4],
    ['hopLength', 1],
    ['modelSize', 1],
    ['blocks', 1],
    ['griffinLimIters', 0],
    ['seed', 0],
  ];
  for (const [key, min] of counts) {
    const v = c[key];
    if (!Number.isSafeInteger(v) || (v as number) < min)
      throw fail(`${key} must be an integer ≥ ${min}, got ${JSON.stringify(v)}`);
  }
  const unit = 2 ** c.blocks;
  const bins = c.nFft / 2;
  const frames = c.length / c.hopLength;
  if (!Number.isInteger(bins) || bins % unit)
    throw fail(`nFft/2 = ${bins} (the bins) must be a multiple of 2^blocks = ${unit}`);
  if (!Number.isInteger(frames) || frames % unit)
    throw fail(
      `length/hopLength = ${c.length}/${c.hopLength} (the frames) must be an integer multiple of 2^blocks = ${unit}`,
    );
  for (const key of ['lr', 'floor', 'clip'] as const)
    if (!(c[key] > 0) || !Number.isFinite(c[key]))
      throw fail(`${key} must be a positive number, got ${c[key]}`);
  if (!(c.beta >= 0) || !Number.isFinite(c.beta))
    throw fail(`beta must be a non-negative number, got ${c.beta}`);
}

/** Channels of the encoder's block outputs: d, 2d, 4d, … (block i of `blocks`). */
const channels = (d: number, i: number) => d * 2 ** i;

/**
 * The encoder trunk: `[n, bins, frames]` → `[n, 1, bins, frames]` → `blocks` × (Conv2d k4 s2 p1,
 * LeakyReLU 0.2) with d, 2d, … channels → flattened features.
 */
function specEncoder(bins: number, d: number, blocks: number, seed: number): Sequential {
  const layers: Module[] = [new Unflatten(1, [1, bins])];
  for (let i = 0; i < blocks; i++) {
    const from = i === 0 ? 1 : channels(d, i - 1);
    layers.push(
      new Conv2d(from, channels(d, i), 4, { stride: 2, padding: 1, seed: seed * 1000 + i }),
      new LeakyReLU(0.2),
    );
  }
  return new Sequential(...layers, new Flatten(1));
}

/**
 * The decoder: inputs → Dense → `[8d, bins/2^B, frames/2^B]` (for B = 4) → ReLU → B ×
 * ConvTranspose2d k4 s2 p1 (halving the channels, ReLU between) → `[n, bins, frames]` (linear: the
 * Gaussian mean of normalised values).
 */
function specDecoder(
  inputs: number,
  bins: number,
  frames: number,
  d: number,
  blocks: number,
  seed: number,
): Sequential {
  const unit = 2 ** blocks;
  const top = channels(d, blocks - 1);
  const layers: Module[] = [
    new Dense(inputs, top * (bins / unit) * (frames / unit), { seed: seed * 1000 }),
    new Unflatten(1, [top, bins / unit, frames / unit]),
    new ReLU(),
  ];
  for (let i = blocks - 1; i >= 0; i--) {
    const to = i === 0 ? 1 : channels(d, i - 1);
    layers.push(
      new ConvTranspose2d(channels(d, i), to, 4, { stride: 2, padding: 1, seed: seed * 1000 + blocks - i }),
    );
    if (i > 0) layers.push(new ReLU());
  }
  return new Sequential(...layers, new Flatten(1, 2)); // [n, 1, bins, frames] → [n, bins, frames]
}

/** A floor under the calibrated decoder variance σ² (σ = 0.01 in normalised units). */
const MIN_VARIANCE = 1e-4;
const LOG_2PI = Math.log(2 * Math.PI);

/**
 * Options of {@link SpecVae.sample}: labels and generator as for every model, and the
 * Griffin-Lim iterations.
 *
 * @example
 * ```ts
 * vae.sample(4, { labels: [7, 7, 7, 7], generator: pictureGenerator(0), griffinLimIters: 64 });
 * ```
 */
export interface SpecSampleOptions extends SpecLatentOptions {
  /** Griffin-Lim iterations (default: the config's `griffinLimIters`). */
  griffinLimIters?: number;
}

/** Options of {@link SpecVae.sampleSpectrograms}: labels and generator, and the prior's scale. */
export interface SpecLatentOptions extends SampleOptions {
  /**
   * The standard deviation τ of the latents, z ~ N(0, τ²I) (default 1, the prior). Below 1 the
   * samples keep to the typical voice of each digit (less variety, clearer digits): the "reduced
   * temperature" sampling of Kingma & Dhariwal's Glow, the truncation trick of BigGAN.
   */
  temperature?: number;
}

/**
 * A conditional (or unconditional) VAE of normalised log-magnitude spectrograms, sampled to audio
 * by Griffin-Lim; see the module comment for the choice, the representation, the networks and the
 * loss. Call `await model.codec.fit(train)` once before training (a checkpoint restores the
 * statistics with the weights).
 *
 * @example
 * ```ts
 * const vae = new SpecVae(specVaeConfig());
 * const { train } = loadFsdd();
 * await vae.codec.fit(train);
 * for (const batch of audioBatches(train, 32, { seed: 0, epoch: 0 })) {
 *   const { loss, recon, kl, mse } = await vae.trainStep(batch);
 *   batch.audio.dispose();
 *   batch.labels.dispose();
 * }
 * const sevens = vae.sample(4, { labels: [7, 7, 7, 7], generator: pictureGenerator(0) }); // [4, 8192]
 * ```
 */
export class SpecVae implements AudioModel {
  readonly codec: SpectrogramCodec;
  readonly encoder: Sequential;
  readonly muHead: Dense;
  readonly logVarHead: Dense;
  readonly decoder: Sequential;
  readonly optimizer: Adam;
  readonly noise: Generator;
  /** Set once the codec's `fitted` buffer has been read as 1. */
  private fitChecked = false;

  constructor(readonly config: SpecVaeConfig) {
    checkConfig(config);
    const { latent, length, classes, seed, conditional, modelSize, blocks, nFft, hopLength, floor, clip } =
      config;
    this.codec = new SpectrogramCodec({ length, nFft, hopLength, floor, clip });
    const { bins, frames } = this.codec;
    const extra = conditional ? classes : 0;
    const features = channels(modelSize, blocks - 1) * (bins / 2 ** blocks) * (frames / 2 ** blocks);
    this.encoder = specEncoder(bins, modelSize, blocks, seed);
    this.muHead = new Dense(features + extra, latent, { seed: seed * 1000 + 500 });
    this.logVarHead = new Dense(features + extra, latent, { seed: seed * 1000 + 501 });
    this.decoder = specDecoder(latent + extra, bins, frames, modelSize, blocks, seed + 1);
    const params = [this.encoder, this.muHead, this.logVarHead, this.decoder].flatMap((m) => m.parameters());
    this.optimizer = new Adam(params, { lr: config.lr });
    this.noise = noiseGenerator(seed);
  }

  /** Whether `sample` takes labels (the config's `conditional`). */
  get conditional(): boolean {
    return this.config.conditional;
  }

  /** The networks and the codec (whose statistics a checkpoint must keep). */
  modules(): Record<string, AnyModule> {
    return {
      codec: this.codec,
      encoder: this.encoder,
      muHead: this.muHead,
      logVarHead: this.logVarHead,
      decoder: this.decoder,
    };
  }

  /** The one Adam over the encoder, the heads and the decoder (checkpointed as `optim.vae.…`). */
  optimizers(): Record<string, AnyOptimizer> {
    return { vae: this.optimizer };
  }

  /** `[x, y]` when conditional (one-hot `y`), else `x`. */
  private condition(x: Tensor, y: Tensor | null): Tensor {
    return y ? concat([x, y], 1) : x;
  }

  /**
   * q(z|x, y): μ and log σ² `[n, latent]` of normalised spectrograms `[n, bins, frames]`, `y` the
   * one-hot labels `[n, classes]` of a conditional model (null otherwise).
   *
   * @example
   * ```ts
   * const { mu } = vae.encode(vae.codec.forward(clips), oneHot(labels, 10)); // [n, 32]
   * ```
   */
  encode(spec: Tensor, y: Tensor | null): { mu: Tensor; logVar: Tensor } {
    return scope(() => {
      const h = this.condition(this.encoder.forward(spec), y);
      return { mu: this.muHead.forward(h), logVar: this.logVarHead.forward(h) };
    });
  }

  /** The decoder's mean `[n, bins, frames]` (normalised units, not clamped) for latents `[n, latent]`. */
  decode(z: Tensor, y: Tensor | null): Tensor {
    return scope(() => this.decoder.forward(this.condition(z, y)));
  }

  /** Checks a batch's shapes against the config and that the codec has its statistics. */
  private async checkBatch({ audio, labels }: AudioBatch): Promise<void> {
    const { length } = this.config;
    const fail = (why: string) => new FluxionError('SpecVae.trainStep', why);
    if (audio.rank !== 2 || audio.shape[1] !== length)
      throw fail(`audio must be [n, ${length}] (clips of the config's length), got ${fmtShape(audio.shape)}`);
    if (labels.rank !== 1 || labels.shape[0] !== audio.shape[0] || labels.dtype !== 'int32')
      throw fail(
        `labels must be int32 [${audio.shape[0]}] (one per clip), got ${labels.dtype} ${fmtShape(labels.shape)}`,
      );
    if (!this.fitChecked && !(await this.codec.isFitted()))
      throw fail('the spectrogram statistics are not set: call `await model.codec.fit(trainSplit)` first');
    this.fitChecked = true;
  }

  /**
   * One Adam step on the negative ELBO `recon + β·KL` of a batch (one latent draw per clip from
   * the model's noise). Returns per-clip means in nats: `loss`, `recon` (`−log p(x|z)` under the
   * calibrated Gaussian, `D/2 · (log(2π·mse) + 1)`, negative once mse < 1/(2πe)), `kl`, and
   * `mse`, the mean squared error of the normalised values (σ² of the decoder).
   *
   * @example
   * ```ts
   * const { loss, recon, kl, mse } = await vae.trainStep({ audio, labels }); // audio [n, 8192], labels int32 [n]
   * ```
   */
  async trainStep(batch: AudioBatch): Promise<StepLosses> {
    await this.checkBatch(batch);
    const { conditional, classes, beta, latent } = this.config;
    const [loss, recon, kl, mse] = scope(() => {
      const x = noGrad(() => this.codec.forward(batch.audio));
      const y = conditional ? oneHot(batch.labels, classes) : null;
      const q = this.encode(x, y);
      const eps = randn([x.shape[0], latent], { generator: this.noise });
      const z = add(q.mu, mul(exp(mul(q.logVar, 0.5)), eps));
      const err = mean(square(sub(this.decode(z, y), x)));
      const values = x.shape[1] * x.shape[2];
      const nll = mul(add(log(add(err, MIN_VARIANCE)), LOG_2PI + 1), values / 2);
      const divergence = gaussianKl(q.mu, q.logVar, { reduction: 'batchmean' });
      const total = add(nll, mul(divergence, beta));
      this.optimizer.zeroGrad();
      total.backward();
      this.optimizer.step();
      return [total, nll, divergence, err];
    });
    return readLosses({ loss, recon, kl, mse });
  }

  /** Checks `n` and the labels of a sampling call. */
  private checkSample(op: string, n: number, labels: readonly number[] | undefined): void {
    const { classes, conditional } = this.config;
    if (!Number.isInteger(n) || n < 1) throw new FluxionError(op, `n must be an integer ≥ 1, got ${n}`);
    if (labels && !conditional) throw new FluxionError(op, 'labels were given to an unconditional model');
    if (labels && labels.length !== n) throw new FluxionError(op, `${labels.length} labels for ${n} clips`);
    const bad = labels?.find((l) => !Number.isInteger(l) || l < 0 || l >= classes);
    if (bad !== undefined) throw new FluxionError(op, `label ${bad} is not a class in [0, ${classes})`);
  }

  /**
   * `n` normalised spectrograms `[n, bins, frames]` in [−1, 1] decoded from z ~ N(0, τ²I) (τ = 1:
   * the prior): the decoder's mean, clamped. A conditional model takes one label per clip (random
   * classes when none are given).
   *
   * Args:
   *   n: spectrograms to generate.
   *   options.labels: class of each (conditional models).
   *   options.temperature: τ, the latents' standard deviation (default 1).
   *   options.generator: the stream of latents (and random labels); the model's noise by default.
   *
   * @example
   * ```ts
   * const spec = vae.sampleSpectrograms(10, { labels: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], generator: pictureGenerator(0) });
   * ```
   */
  sampleSpectrograms(n: number, options: SpecLatentOptions = {}): Tensor {
    this.checkSample('SpecVae.sampleSpectrograms', n, options.labels);
    const { temperature = 1 } = options;
    if (!(temperature >= 0 && Number.isFinite(temperature)))
      throw new FluxionError(
        'SpecVae.sampleSpectrograms',
        `temperature must be ≥ 0 and finite, got ${temperature}`,
      );
    const { classes, conditional, latent } = this.config;
    const generator = options.generator ?? this.noise;
    return noGrad(() =>
      scope(() => {
        const z = mul(randn([n, latent], { generator }), temperature);
        let y: Tensor | null = null;
        if (conditional) {
          const { labels } = options;
          const ids = labels ? tensor(Int32Array.from(labels)) : randint(0, classes, [n], { generator });
          y = oneHot(ids, classes);
        }
        return clamp(this.decode(z, y), -1, 1);
      }),
    );
  }

  /**
   * `n` clips `[n, length]` in [−1, 1]: {@link sampleSpectrograms} inverted by the codec's
   * Griffin-Lim (`toAudio`), its initial phases seeded from a counter drawn from the same
   * generator (so a generator of its own, e.g. `pictureGenerator(seed)`, leaves the training noise
   * alone, and the same generator state gives the same clips).
   *
   * Args:
   *   n: clips to generate.
   *   options: {@link SpecSampleOptions} — labels, generator, griffinLimIters.
   *
   * @example
   * ```ts
   * const sevens = vae.sample(4, { labels: [7, 7, 7, 7], generator: pictureGenerator(0) }); // [4, 8192]
   * ```
   */
  sample(n: number, options: SpecSampleOptions = {}): Tensor {
    const { griffinLimIters = this.config.griffinLimIters } = options;
    if (!Number.isInteger(griffinLimIters) || griffinLimIters < 0)
      throw new FluxionError(
        'SpecVae.sample',
        `griffinLimIters must be an integer ≥ 0, got ${griffinLimIters}`,
      );
    const generator = options.generator ?? this.noise;
    const spec = this.sampleSpectrograms(n, { ...options, generator });
    // One counter of the generator names the phase stream: mixed with its seed into a 32-bit seed.
    const seed = (Math.imul(generator.seed ^ 0x9e3779b9, 0x85ebca6b) ^ generator.advance(1)) >>> 0;
    try {
      return this.codec.toAudio(spec, { iterations: griffinLimIters, seed });
    } finally {
      spec.dispose();
    }
  }
}
