/**
 * Variational autoencoders: the seed article's MLP VAE done right, a convolutional VAE and a
 * conditional VAE, as one class.
 *
 * The encoder gives a diagonal Gaussian q(z|x) = N(μ, diag σ²) (two heads: μ and log σ²). A latent
 * is drawn by reparameterisation, z = μ + σ·ε with ε ~ N(0, I), so the sample is a differentiable
 * function of μ and σ and gradients reach the encoder. Training maximises the ELBO
 *   log p(x) ≥ E_q[log p(x|z)] − KL(q(z|x) ‖ N(0, I)),
 * with a Bernoulli decoder (log p(x|z) = −Σ BCE over pixels, from logits) or a Gaussian one of
 * fixed σ, and a β weight on the KL term. The seed article's "VAE" is a plain autoencoder fed with
 * noise: its encoder ends in a sigmoid code with no μ/σ, there is no sampling (so no
 * reparameterisation) and no KL term, so its latent space is not pushed towards N(0, I) and
 * decoding z ~ N(0, I) produces nothing like the data; it is also trained to map random inputs to
 * random targets with MSE, never on digits.
 */
import { noGrad } from '@fluxion/autograd';
import { Adam, type AnyModule, bceWithLogits, Dense, gaussianKl, type Sequential } from '@fluxion/nn';
import {
  add,
  clamp,
  concat,
  exp,
  FluxionError,
  Generator,
  linspace,
  logSumExp,
  mean,
  mul,
  neg,
  oneHot,
  randint,
  randn,
  reshape,
  scope,
  sigmoid,
  slice,
  square,
  stack,
  sub,
  sum,
  type Tensor,
  tensor,
} from '@fluxion/tensor';
import type { Batch } from '../data/images.js';
import {
  type AnyOptimizer,
  type BaseConfig,
  type GenerativeModel,
  noiseGenerator,
  readLosses,
  type SampleOptions,
  type StepLosses,
} from './model.js';
import { convDecoder, convEncoderBody, mlpDecoder, mlpEncoderBody } from './networks.js';

/** Configuration of a {@link Vae}. */
export interface VaeConfig extends BaseConfig {
  kind: 'vae' | 'convvae' | 'cvae';
  architecture: 'mlp' | 'conv';
  /** Condition encoder and decoder on the digit class (one-hot appended to their inputs). */
  conditional: boolean;
  /** The decoder's likelihood: Bernoulli (BCE, default) or Gaussian with fixed `sigma`. */
  likelihood: 'bernoulli' | 'gaussian';
  sigma: number;
  /** Weight of the KL term (β-VAE; 1 is the ELBO). */
  beta: number;
}

/** Defaults per kind (what `fluxion train <kind>` uses); latent 32 as in the seed article. */
export function vaeDefaults(kind: VaeConfig['kind']): VaeConfig {
  return {
    kind,
    latent: 32,
    lr: 1e-3,
    seed: 0,
    height: 28,
    width: 28,
    classes: 10,
    architecture: kind === 'convvae' ? 'conv' : 'mlp',
    conditional: kind === 'cvae',
    likelihood: 'bernoulli',
    sigma: 0.1,
    beta: 1,
  };
}

/** q(z|x) as mean and log-variance. */
export interface Posterior {
  mu: Tensor;
  logVar: Tensor;
}

const LOG_2PI = Math.log(2 * Math.PI);

/** Options of {@link Vae.iwaeBound}. */
export interface IwaeOptions {
  /**
   * Decoder rows (images × latent samples) per pass. Each pass's intermediates are freed before
   * the next and the passes are combined by a streaming log-sum-exp, so peak memory depends on
   * this, not on k or the batch size. Default: 100 for the conv architecture (whose decoder keeps
   * large intermediates per row), 1000 for the MLP.
   */
  rowsPerPass?: number;
}

/** A block of items of {@link iwaeLogLikelihood}: their posterior and their likelihood. */
export interface IwaeBlock {
  /** q(z|x) of the block's m items: μ and log σ² `[m, latent]`. */
  q: Posterior;
  /**
   * log p(x|z) per row `[c·m]` for latents `z [c·m, latent]`: the block's items repeated c times,
   * sample-major, as `tile` repeats a tensor of m rows (the decoder's pass; called in a scope).
   */
  logLikelihood(z: Tensor, tile: (t: Tensor) => Tensor): Tensor;
  /** Frees what the block holds once its passes are done. */
  dispose(): void;
}

/** What {@link iwaeLogLikelihood} evaluates: sizes and the noise stream. */
export interface IwaeRun {
  /** Items (images, names) of the batch. */
  items: number;
  /** Importance samples per item. */
  k: number;
  /** Size of the latent code z. */
  latent: number;
  /** Decoder rows (items × samples) per pass: bounds the memory. */
  rowsPerPass: number;
  /** The stream of the latent samples (advanced by k·items·latent values). */
  generator: Generator;
}

/**
 * Σ over a batch's items of the IWAE estimate (Burda et al. 2016) of log p(x),
 *   log (1/k) Σᵢ p(x|zᵢ) p(zᵢ) / q(zᵢ|x),  zᵢ = μ + σ·εᵢ ~ q(z|x) (diagonal Gaussian, N(0, I) prior),
 * in nats, for any VAE: `blockOf(first, m)` gives the posterior of items first … first + m − 1 and
 * their decoder's log-likelihood.
 *
 * Evaluated in passes of at most `rowsPerPass` decoder rows (several samples of the whole batch,
 * or one sample of a block of items), each freed before the next, with the per-item log Σ w
 * carried from pass to pass by a streaming log-sum-exp: memory stays bounded whatever k. The noise
 * is drawn as one stream of k·items·latent values, sample-major (sample i of item j at offset
 * base + (i·items + j)·latent), whatever the passes, so the result is the same (to float
 * rounding) for every `rowsPerPass`.
 *
 * @example
 * ```ts
 * const logP = await iwaeLogLikelihood({ items: n, k: 50, latent, rowsPerPass: 1000, generator }, (first, m) => ({
 *   q, logLikelihood: (z, tile) => logPxGivenZ(tile(x), z), dispose: () => {},
 * }));
 * ```
 */
export async function iwaeLogLikelihood(
  { items: n, k, latent, rowsPerPass, generator }: IwaeRun,
  blockOf: (first: number, m: number) => IwaeBlock,
): Promise<number> {
  const base = generator.advance(k * n * latent);
  const block = Math.min(n, rowsPerPass);
  const samplesPerPass = block === n ? Math.floor(rowsPerPass / n) : 1;
  let total = 0;
  for (let first = 0; first < n; first += block) {
    const m = Math.min(block, n - first);
    const { q, logLikelihood, dispose } = blockOf(first, m);
    let logSum: Tensor | null = null; // log Σ w over the samples so far, per item [m]
    try {
      for (let s = 0; s < k; s += samplesPerPass) {
        const c = Math.min(samplesPerPass, k - s);
        const noise = new Generator(generator.seed);
        noise.offset = base + (s * n + first) * latent;
        const previous: Tensor | null = logSum;
        logSum = noGrad(() =>
          scope(() => {
            const tile = (t: Tensor) => (c === 1 ? t : concat(Array(c).fill(t), 0));
            const eps = randn([c * m, latent], { generator: noise });
            const logVar = tile(q.logVar);
            const z = add(tile(q.mu), mul(exp(mul(logVar, 0.5)), eps));
            const logPz = mul(sum(add(square(z), LOG_2PI), 1), -0.5);
            const logQz = mul(sum(add(add(square(eps), logVar), LOG_2PI), 1), -0.5);
            const logPx = logLikelihood(z, tile);
            const chunk = logSumExp(reshape(sub(add(logPx, logPz), logQz), [c, m]), 0);
            return previous ? logSumExp(stack([previous, chunk]), 0) : chunk;
          }),
        );
        previous?.dispose();
      }
      const blockSum = noGrad(() => scope(() => sum(sub(logSum as Tensor, Math.log(k)))));
      total += await blockSum.item();
      blockSum.dispose();
    } finally {
      (logSum as Tensor | null)?.dispose();
      dispose();
    }
  }
  return total;
}

/**
 * A VAE of any of the three kinds.
 *
 * @example
 * ```ts
 * const vae = new Vae(vaeDefaults('vae'));
 * await vae.trainStep(batch);                  // { loss, recon, kl }
 * const nats = await vae.negElbo(testImages);  // −ELBO per image
 * ```
 */
export class Vae implements GenerativeModel {
  readonly encoder: Sequential;
  readonly muHead: Dense;
  readonly logVarHead: Dense;
  readonly decoder: Sequential;
  readonly optimizer: Adam;
  readonly noise;

  constructor(readonly config: VaeConfig) {
    const { latent, height, width, classes, seed, conditional, architecture } = config;
    const pixels = height * width;
    const extra = conditional ? classes : 0;
    if (architecture === 'conv' && (conditional || height !== 28 || width !== 28)) {
      throw new Error('Vae: the conv architecture is unconditional and 28×28');
    }
    this.encoder = architecture === 'conv' ? convEncoderBody(seed) : mlpEncoderBody(pixels + extra, seed);
    const features = architecture === 'conv' ? 64 * 7 * 7 : 128;
    this.muHead = new Dense(features, latent, { seed: seed * 1000 + 500 });
    this.logVarHead = new Dense(features, latent, { seed: seed * 1000 + 501 });
    this.decoder =
      architecture === 'conv' ? convDecoder(latent, seed + 1) : mlpDecoder(latent + extra, pixels, seed + 1);
    const params = [this.encoder, this.muHead, this.logVarHead, this.decoder].flatMap((m) => m.parameters());
    this.optimizer = new Adam(params, { lr: config.lr });
    this.noise = noiseGenerator(seed);
  }

  get conditional(): boolean {
    return this.config.conditional;
  }

  modules(): Record<string, AnyModule> {
    return { encoder: this.encoder, muHead: this.muHead, logVarHead: this.logVarHead, decoder: this.decoder };
  }

  optimizers(): Record<string, AnyOptimizer> {
    return { vae: this.optimizer };
  }

  private condition(x: Tensor, labels: Tensor | null): Tensor {
    return labels ? concat([x, oneHot(labels, this.config.classes)], 1) : x;
  }

  private labelsFor(labels: Tensor | undefined): Tensor | null {
    if (!this.config.conditional) return null;
    if (!labels) throw new Error(`${this.config.kind}: a conditional VAE needs labels`);
    return labels;
  }

  /** q(z|x): μ and log σ² `[n, latent]` for images `[n, pixels]` in [0, 1]. */
  encode(x: Tensor, labels?: Tensor): Posterior {
    const y = this.labelsFor(labels);
    return scope(() => {
      const h = this.encoder.forward(this.condition(x, y));
      return { mu: this.muHead.forward(h), logVar: this.logVarHead.forward(h) };
    });
  }

  /** Decoder output before the mean function: Bernoulli logits or Gaussian means. */
  decodeRaw(z: Tensor, labels?: Tensor): Tensor {
    return scope(() => this.decoder.forward(this.condition(z, this.labelsFor(labels))));
  }

  /** Pixel means in [0, 1] for latents `[n, latent]`. */
  decode(z: Tensor, labels?: Tensor): Tensor {
    return scope(() => {
      const raw = this.decodeRaw(z, labels);
      return this.config.likelihood === 'bernoulli' ? sigmoid(raw) : clamp(raw, 0, 1);
    });
  }

  /** z = μ + σ·ε, ε ~ N(0, I) from the model's noise stream. */
  reparameterize({ mu, logVar }: Posterior): Tensor {
    return scope(() => add(mu, mul(exp(mul(logVar, 0.5)), randn(mu.shape, { generator: this.noise }))));
  }

  /** log p(x|z) per image `[n]`, in nats. */
  logLikelihood(x: Tensor, raw: Tensor): Tensor {
    return scope(() => {
      if (this.config.likelihood === 'bernoulli')
        return neg(sum(bceWithLogits(raw, x, { reduction: 'none' }), 1));
      const { sigma } = this.config;
      const perPixel = add(mul(square(sub(x, raw)), 1 / (sigma * sigma)), Math.log(sigma * sigma) + LOG_2PI);
      return mul(sum(perPixel, 1), -0.5);
    });
  }

  /** Mean over the batch of −log p(x|z) and of KL(q ‖ N(0, I)), for one reparameterised sample. */
  terms(x: Tensor, labels?: Tensor): { recon: Tensor; kl: Tensor } {
    return scope(() => {
      const q = this.encode(x, labels);
      const raw = this.decodeRaw(this.reparameterize(q), labels);
      return {
        recon: neg(mean(this.logLikelihood(x, raw))),
        kl: gaussianKl(q.mu, q.logVar, { reduction: 'batchmean' }),
      };
    });
  }

  /** One Adam step on −ELBO_β = recon + β·KL. Returns `{ loss, recon, kl }` per image. */
  async trainStep({ images, labels }: Batch): Promise<StepLosses> {
    const [loss, recon, kl] = scope(() => {
      const t = this.terms(images, labels);
      const total = add(t.recon, mul(t.kl, this.config.beta));
      this.optimizer.zeroGrad();
      total.backward();
      this.optimizer.step();
      return [total, t.recon, t.kl];
    });
    return readLosses({ loss, recon, kl });
  }

  /** −ELBO per image (β = 1), averaged over the batch, in nats (one latent sample per image). */
  async negElbo(x: Tensor, labels?: Tensor): Promise<number> {
    const value = noGrad(() =>
      scope(() => {
        const t = this.terms(x, labels);
        return add(t.recon, t.kl);
      }),
    );
    const v = await value.item();
    value.dispose();
    return v;
  }

  /**
   * The importance-weighted bound (Burda et al. 2016) with k samples, as −log p(x) ≤
   * −log (1/k) Σₖ p(x|zₖ) p(zₖ) / q(zₖ|x), averaged over the batch, in nats. k = 1 is −ELBO; it
   * tightens as k grows.
   *
   * Evaluated in passes of at most `rowsPerPass` decoder rows (several samples of the whole batch,
   * or one sample of a block of images), each freed before the next, with the per-image
   * log Σ w carried from pass to pass by a streaming log-sum-exp: memory stays bounded whatever k
   * (`fluxion eval --iwae-k 5000` once kept every sample's intermediates alive). The noise is
   * drawn as one stream of k·n·latent values, sample-major, whatever the passes, so the result is
   * the same (to float rounding) for every `rowsPerPass`.
   *
   * @example
   * ```ts
   * const nats = await vae.iwaeBound(testImages, 5000); // bounded memory
   * ```
   */
  async iwaeBound(x: Tensor, k: number, labels?: Tensor, options: IwaeOptions = {}): Promise<number> {
    const rows = options.rowsPerPass ?? (this.config.architecture === 'conv' ? 100 : 1000);
    if (!Number.isSafeInteger(k) || k < 1)
      throw new FluxionError('iwaeBound', `k must be a positive integer, got ${k}`);
    if (!Number.isSafeInteger(rows) || rows < 1)
      throw new FluxionError('iwaeBound', `rowsPerPass must be a positive integer, got ${rows}`);
    const n = x.shape[0];
    const { latent } = this.config;
    const total = await iwaeLogLikelihood(
      { items: n, k, latent, rowsPerPass: rows, generator: this.noise },
      (first, m) => {
        const { xb, yb, q } = noGrad(() =>
          scope(() => {
            const xb = slice(x, [first, first + m]);
            const yb = labels && slice(labels, [first, first + m]);
            return { xb, yb, q: this.encode(xb, yb) };
          }),
        );
        return {
          q,
          logLikelihood: (z, tile) => this.logLikelihood(tile(xb), this.decodeRaw(z, yb && tile(yb))),
          dispose: () => {
            q.mu.dispose();
            q.logVar.dispose();
            if (xb !== x) xb.dispose();
            if (yb && yb !== labels) yb.dispose();
          },
        };
      },
    );
    return -total / n;
  }

  /** Reconstructions (the decoder's mean at z = μ) of images in [0, 1]. */
  reconstruct(x: Tensor, labels?: Tensor): Tensor {
    return noGrad(() => scope(() => this.decode(this.encode(x, labels).mu, labels)));
  }

  /** `steps` images decoded along the line between the latent means of images a and b (`[1, pixels]` each). */
  interpolate(a: Tensor, b: Tensor, steps: number, labels?: Tensor): Tensor {
    return noGrad(() =>
      scope(() => {
        const za = this.encode(a, labels).mu;
        const zb = this.encode(b, labels).mu;
        const t = reshape(linspace(0, 1, steps), [steps, 1]);
        const z = add(mul(sub(1, t), za), mul(t, zb));
        const y = labels ? concat(Array(steps).fill(labels), 0) : undefined;
        return this.decode(z, y);
      }),
    );
  }

  /** `n` images decoded from z ~ N(0, I); conditional models take one label per image (random otherwise). */
  sample(n: number, options: SampleOptions = {}): Tensor {
    if (options.labels && options.labels.length !== n)
      throw new Error(`sample: ${options.labels.length} labels for ${n} images`);
    const generator = options.generator ?? this.noise;
    return noGrad(() =>
      scope(() => {
        const z = randn([n, this.config.latent], { generator });
        const labels = this.config.conditional
          ? options.labels
            ? tensor(Int32Array.from(options.labels))
            : randint(0, this.config.classes, [n], { generator })
          : undefined;
        return this.decode(z, labels);
      }),
    );
  }
}
