/**
 * Normalisation layers: `BatchNorm1d` / `BatchNorm2d` (batch statistics while training, running
 * statistics in eval mode) and `LayerNorm` (statistics over the trailing axes of each sample).
 */
import { noGrad } from '@fluxion/autograd';
import {
  add,
  type BackendName,
  type DType,
  FluxionError,
  fmtShape,
  layerNorm,
  mean,
  mul,
  ones,
  reshape,
  rsqrt,
  scope,
  sub,
  type Tensor,
  variance,
  zeros,
} from '@fluxion/tensor';
import { Buffer, Module, Parameter } from '../module.js';

/** Options of the batch-norm layers. */
export interface BatchNormOptions {
  /** Added to the variance for stability (default 1e-5). */
  eps?: number;
  /** Weight of the new batch statistic in the running averages (default 0.1). */
  momentum?: number;
  /** Learnable per-channel scale and shift (default true). */
  affine?: boolean;
  /** Keep running statistics for eval mode (default true); without them eval uses batch stats. */
  trackRunningStats?: boolean;
  dtype?: DType;
  backend?: BackendName;
}

/**
 * Shared implementation of BatchNorm1d/2d over axis 1 (channels) of inputs whose rank is one of
 * `ranks`.
 */
abstract class BatchNorm extends Module {
  readonly weight: Parameter | null;
  readonly bias: Parameter | null;
  readonly runningMean: Buffer | null;
  readonly runningVar: Buffer | null;
  readonly eps: number;
  readonly momentum: number;
  protected abstract readonly ranks: readonly number[];

  constructor(
    readonly numFeatures: number,
    options: BatchNormOptions = {},
  ) {
    super();
    const { eps = 1e-5, momentum = 0.1, affine = true, trackRunningStats = true, dtype, backend } = options;
    this.eps = eps;
    this.momentum = momentum;
    const make = (value: 0 | 1) => scope(() => (value ? ones : zeros)([numFeatures], { dtype, backend }));
    this.weight = affine ? scope(() => new Parameter(make(1))) : null;
    this.bias = affine ? scope(() => new Parameter(make(0))) : null;
    this.runningMean = trackRunningStats ? scope(() => new Buffer(make(0))) : null;
    this.runningVar = trackRunningStats ? scope(() => new Buffer(make(1))) : null;
  }

  forward(x: Tensor): Tensor {
    const name = this.constructor.name;
    if (!this.ranks.includes(x.rank) || x.shape[1] !== this.numFeatures) {
      const want = this.ranks.map((r) => `[N, ${this.numFeatures}${', …'.repeat(r - 2)}]`).join(' or ');
      throw new FluxionError(name, `expected input ${want}, got ${fmtShape(x.shape)}`);
    }
    const axes = [0, ...Array.from({ length: x.rank - 2 }, (_, i) => i + 2)];
    const count = axes.reduce((n, a) => n * x.shape[a], 1);
    const channelShape = [this.numFeatures, ...Array(x.rank - 2).fill(1)];
    const useBatchStats = this.training || !this.runningMean || !this.runningVar;
    if (useBatchStats && this.training && count < 2) {
      throw new FluxionError(
        name,
        `needs more than one value per channel when training, got ${fmtShape(x.shape)}`,
      );
    }
    return scope(() => {
      let mu: Tensor;
      let sigma2: Tensor;
      if (useBatchStats) {
        mu = mean(x, axes, true);
        sigma2 = variance(x, axes, { correction: 0, keepDims: true });
        if (this.training && this.runningMean && this.runningVar) {
          this.updateRunningStats(mu, sigma2, count);
        }
      } else {
        mu = reshape(this.runningMean as Tensor, channelShape);
        sigma2 = reshape(this.runningVar as Tensor, channelShape);
      }
      let y = mul(sub(x, mu), rsqrt(add(sigma2, this.eps)));
      if (this.weight) y = mul(y, reshape(this.weight, channelShape));
      if (this.bias) y = add(y, reshape(this.bias, channelShape));
      return y;
    });
  }

  /** `running ← (1 − momentum) · running + momentum · batch` (variance unbiased), without gradients. */
  private updateRunningStats(mu: Tensor, sigma2: Tensor, count: number): void {
    const m = this.momentum;
    noGrad(() => {
      const runningMean = this.runningMean as Buffer;
      const runningVar = this.runningVar as Buffer;
      const batchMean = reshape(mu, [this.numFeatures]);
      const batchVar = mul(reshape(sigma2, [this.numFeatures]), count / (count - 1));
      runningMean.assign(add(mul(runningMean, 1 - m), mul(batchMean, m)));
      runningVar.assign(add(mul(runningVar, 1 - m), mul(batchVar, m)));
    });
  }

  override toString(): string {
    return `${this.constructor.name}(${this.numFeatures})`;
  }
}

/**
 * Batch normalisation over the channel axis of `[N, C]` or `[N, C, L]` inputs:
 * `y = (x − E[x]) / √(Var[x] + ε) · γ + β`, statistics over every axis but C.
 *
 * In training mode the batch's statistics are used (biased variance) and the running averages
 * are updated: `running = (1 − momentum) · running + momentum · batch` (unbiased variance). In
 * eval mode the running averages are used.
 *
 * Args:
 *   numFeatures: C.
 *   options.eps (1e-5), options.momentum (0.1), options.affine (true), options.trackRunningStats (true).
 *
 * Shape:
 *   `[N, C]` or `[N, C, L]` → same shape.
 *
 * Attributes:
 *   weight γ: ones `[C]`; bias β: zeros `[C]`; runningMean: zeros; runningVar: ones (as PyTorch).
 *
 * @example
 * ```ts
 * const bn = new BatchNorm1d(256);
 * bn.forward(randn([64, 256])).shape; // [64, 256]
 * ```
 */
export class BatchNorm1d extends BatchNorm {
  protected readonly ranks = [2, 3];
}

/**
 * Batch normalisation over the channel axis of `[N, C, H, W]` inputs, statistics over N, H and W;
 * see {@link BatchNorm1d} for the formula, modes and defaults.
 *
 * Shape:
 *   `[N, C, H, W]` → same shape.
 *
 * @example
 * ```ts
 * const bn = new BatchNorm2d(64);
 * bn.forward(randn([8, 64, 16, 16])).shape; // [8, 64, 16, 16]
 * ```
 */
export class BatchNorm2d extends BatchNorm {
  protected readonly ranks = [4];
}

/** Options of {@link LayerNorm}. */
export interface LayerNormOptions {
  /** Added to the variance (default 1e-5). */
  eps?: number;
  /** Learnable elementwise scale and shift (default true). */
  elementwiseAffine?: boolean;
  /** With `elementwiseAffine`, whether to learn the shift (default true). */
  bias?: boolean;
  dtype?: DType;
  backend?: BackendName;
}

/**
 * Layer normalisation: `y = (x − E[x]) / √(Var[x] + ε) · γ + β`, statistics (biased variance) over
 * the last `normalizedShape.length` axes of each sample; the same in training and eval.
 *
 * Args:
 *   normalizedShape: the trailing shape to normalise over (a number for one axis).
 *   options.eps (1e-5), options.elementwiseAffine (true), options.bias (true).
 *
 * Shape:
 *   `[..., *normalizedShape]` → same shape.
 *
 * Attributes:
 *   weight γ: ones of `normalizedShape`; bias β: zeros.
 *
 * @example
 * ```ts
 * new LayerNorm(512).forward(randn([8, 10, 512])).shape; // [8, 10, 512]
 * ```
 */
export class LayerNorm extends Module {
  readonly normalizedShape: readonly number[];
  readonly weight: Parameter | null;
  readonly bias: Parameter | null;
  readonly eps: number;

  constructor(normalizedShape: number | readonly number[], options: LayerNormOptions = {}) {
    super();
    const { eps = 1e-5, elementwiseAffine = true, bias = true, dtype, backend } = options;
    this.normalizedShape = typeof normalizedShape === 'number' ? [normalizedShape] : [...normalizedShape];
    this.eps = eps;
    const shape = this.normalizedShape;
    this.weight = elementwiseAffine ? scope(() => new Parameter(ones(shape, { dtype, backend }))) : null;
    this.bias =
      elementwiseAffine && bias ? scope(() => new Parameter(zeros(shape, { dtype, backend }))) : null;
  }

  forward(x: Tensor): Tensor {
    const k = this.normalizedShape.length;
    const tail = x.shape.slice(x.rank - k);
    if (x.rank < k || tail.some((d, i) => d !== this.normalizedShape[i])) {
      throw new FluxionError(
        'LayerNorm',
        `expected input [..., ${this.normalizedShape.join(', ')}], got ${fmtShape(x.shape)}`,
      );
    }
    // One kernel (the `layerNorm` primitive), its gradient one for x and one or two for γ and β.
    return layerNorm(x, this.weight, this.bias, { normalizedShape: this.normalizedShape, eps: this.eps });
  }
}
