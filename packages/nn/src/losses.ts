/**
 * Loss functions. Each takes a `reduction`: `'mean'` (default) averages the per-element (or
 * per-sample) losses, `'sum'` adds them, `'none'` returns them unreduced. All are composites of
 * differentiable primitives and written in numerically stable forms.
 */
import { detach } from '@fluxion/autograd';
import {
  abs,
  add,
  cast,
  clamp,
  div,
  exp,
  FluxionError,
  fmtShape,
  greaterEqual,
  log,
  logSoftmax,
  mean,
  mul,
  neg,
  notEqual,
  oneHot,
  permute,
  scope,
  shapesEqual,
  softplus,
  square,
  sub,
  sum,
  type Tensor,
  where,
} from '@fluxion/tensor';

/** How a loss reduces its per-element (or per-sample) values. */
export type Reduction = 'mean' | 'sum' | 'none';

/** Options shared by the losses. */
export interface LossOptions {
  /** `'mean'` (default), `'sum'` or `'none'`. */
  reduction?: Reduction;
}

function reduce(op: string, loss: Tensor, reduction: Reduction = 'mean'): Tensor {
  switch (reduction) {
    case 'mean':
      return mean(loss);
    case 'sum':
      return sum(loss);
    case 'none':
      return loss;
  }
  throw new FluxionError(op, `unknown reduction '${reduction}' (expected 'mean', 'sum' or 'none')`);
}

function sameShape(op: string, input: Tensor, target: Tensor): void {
  if (!shapesEqual(input.shape, target.shape)) {
    throw new FluxionError(
      op,
      `input ${fmtShape(input.shape)} ${input.dtype} and target ${fmtShape(target.shape)} ${target.dtype} must have one shape`,
    );
  }
}

/**
 * Mean squared error: `ℓᵢ = (xᵢ − yᵢ)²`.
 *
 * Args:
 *   input, target: tensors of one shape.
 *   options.reduction: 'mean' (default) | 'sum' | 'none'.
 *
 * @example
 * ```ts
 * mseLoss(tensor([1, 2]), tensor([1, 4])); // 2
 * ```
 */
export function mseLoss(input: Tensor, target: Tensor, options: LossOptions = {}): Tensor {
  sameShape('mseLoss', input, target);
  return scope(() => reduce('mseLoss', square(sub(input, target)), options.reduction));
}

/**
 * Mean absolute error: `ℓᵢ = |xᵢ − yᵢ|`.
 *
 * @example
 * ```ts
 * l1Loss(tensor([1, 2]), tensor([1, 4])); // 1
 * ```
 */
export function l1Loss(input: Tensor, target: Tensor, options: LossOptions = {}): Tensor {
  sameShape('l1Loss', input, target);
  return scope(() => reduce('l1Loss', abs(sub(input, target)), options.reduction));
}

/** Options of {@link binaryCrossEntropy}. */
export interface BceOptions extends LossOptions {
  /** Per-element rescaling weight (broadcast against the loss). */
  weight?: Tensor;
}

/** PyTorch's floor of `p (1 − p)` in the gradient of {@link binaryCrossEntropy}. */
const BCE_EPS = 1e-12;

/**
 * Binary cross-entropy on probabilities: `ℓᵢ = −wᵢ [yᵢ log pᵢ + (1 − yᵢ) log(1 − pᵢ)]`, each log
 * clamped at −100 as in PyTorch, so p = 0 or 1 gives a finite loss. The gradient with respect to p
 * is PyTorch's, finite everywhere: `wᵢ (pᵢ − yᵢ) / max(pᵢ (1 − pᵢ), 10⁻¹²)`, which is the exact
 * derivative wherever `p (1 − p) ≥ 10⁻¹²` (there no log is clamped, and gradients of gradients
 * work too) and a bounded push towards the target within 10⁻¹² of 0 and 1, where the clamped loss
 * is flat. Prefer {@link bceWithLogits} on logits: it is exact where the sigmoid saturates.
 *
 * Args:
 *   input: probabilities p in [0, 1].
 *   target: y in [0, 1], same shape.
 *   options.weight, options.reduction.
 *
 * @example
 * ```ts
 * binaryCrossEntropy(tensor([0.9, 0.2]), tensor([1, 0])); // (−ln 0.9 − ln 0.8) / 2
 * ```
 */
export function binaryCrossEntropy(input: Tensor, target: Tensor, options: BceOptions = {}): Tensor {
  sameShape('binaryCrossEntropy', input, target);
  return scope(() => {
    // p's value without its graph: where p (1 − p) < ε, the logs (clamped or infinite) would give
    // NaN or 0 as p's gradient, so p reaches them through `q` only where p (1 − p) ≥ ε, and gets
    // (p − y) / ε from a term that is 0 in value, elsewhere.
    const p = detach(input);
    const smooth = greaterEqual(mul(p, sub(1, p)), BCE_EPS);
    const q = where(smooth, input, p);
    const logP = clamp(log(q), -100);
    const log1mP = clamp(log(sub(1, q)), -100);
    const edge = where(smooth, 0, mul(sub(input, p), div(sub(p, target), BCE_EPS)));
    let loss = add(neg(add(mul(target, logP), mul(sub(1, target), log1mP))), edge);
    if (options.weight) loss = mul(loss, options.weight);
    return reduce('binaryCrossEntropy', loss, options.reduction);
  });
}

/** Options of {@link bceWithLogits}. */
export interface BceWithLogitsOptions extends BceOptions {
  /** Weight of the positive term per class (broadcast), as PyTorch's `pos_weight`. */
  posWeight?: Tensor;
}

/**
 * Binary cross-entropy on logits, `BCE(σ(x), y)` computed stably as
 * `ℓᵢ = (1 − yᵢ) xᵢ + softplus(−xᵢ)` (with `posWeight`: `(1 − yᵢ) xᵢ + (1 + (pw − 1) yᵢ) softplus(−xᵢ)`),
 * finite with finite gradients for logits of ±100 and beyond.
 *
 * Args:
 *   input: logits x.
 *   target: y in [0, 1], same shape.
 *   options.weight, options.posWeight, options.reduction.
 *
 * @example
 * ```ts
 * bceWithLogits(tensor([100, -100]), tensor([1, 0])); // 0
 * ```
 */
export function bceWithLogits(input: Tensor, target: Tensor, options: BceWithLogitsOptions = {}): Tensor {
  sameShape('bceWithLogits', input, target);
  return scope(() => {
    const negTerm = softplus(neg(input));
    const posScale = options.posWeight ? add(mul(sub(options.posWeight, 1), target), 1) : null;
    let loss = add(mul(sub(1, target), input), posScale ? mul(posScale, negTerm) : negTerm);
    if (options.weight) loss = mul(loss, options.weight);
    return reduce('bceWithLogits', loss, options.reduction);
  });
}

/** The class axis of class scores: 1 for `[N, C, ...]`, 0 for an unbatched `[C]`. */
const classAxisOf = (x: Tensor) => (x.rank === 1 ? 0 : 1);

/** Options of the losses of class indices ({@link nllLoss}, {@link crossEntropy}). */
export interface ClassIndexOptions extends LossOptions {
  /**
   * A label that contributes neither loss nor gradient (PyTorch's `ignore_index`, e.g. padding);
   * `'mean'` then averages over the other samples (NaN when every sample is ignored, as in
   * PyTorch). Unset by default, so every label must be a class: PyTorch's default of −100 would
   * let a label of −100 pass silently.
   */
  ignoreIndex?: number;
}

/**
 * One-hot targets shaped like the scores (classes on `axis`), in the scores' float dtype, and the
 * samples that count (null: all). Every label that is not `ignoreIndex` must lie in [0, C): any
 * other raises a FluxionError naming `op`, the label and the classes (on WebGPU at the next read
 * or sync; see `take`).
 */
function classTargets(
  op: string,
  target: Tensor,
  scores: Tensor,
  axis: number,
  ignoreIndex: number | undefined,
): { hot: Tensor; kept: Tensor | null } {
  const expected = scores.shape.filter((_, i) => i !== axis);
  if (target.dtype !== 'int32' || !shapesEqual(target.shape, expected)) {
    throw new FluxionError(
      op,
      `class-index target must be int32 of shape ${fmtShape(expected)} for scores ${fmtShape(scores.shape)}, ` +
        `got ${fmtShape(target.shape)} ${target.dtype}`,
    );
  }
  if (ignoreIndex !== undefined && !Number.isInteger(ignoreIndex)) {
    throw new FluxionError(op, `ignoreIndex must be an integer, got ${ignoreIndex}`);
  }
  const classes = scores.shape[axis];
  const range =
    `scores ${fmtShape(scores.shape)} with ${classes} classes` +
    (ignoreIndex === undefined ? '' : ` (and ignoreIndex ${ignoreIndex})`);
  return scope(() => {
    const kept = ignoreIndex === undefined ? null : notEqual(target, ignoreIndex);
    // An ignored label becomes class 0 here (its row is masked out), so only real labels are checked.
    const labels = kept ? where(kept, target, 0) : target;
    const hot = cast(oneHot(labels, classes, { op, noun: 'class label', range }), scores.dtype); // classes last
    const r = hot.rank;
    const moved =
      axis === r - 1
        ? hot
        : permute(hot, [
            ...Array(axis).keys(),
            r - 1,
            ...Array.from({ length: r - 1 - axis }, (_, i) => axis + i),
          ]);
    return { hot: moved, kept };
  });
}

/** Reduces per-sample losses over the samples that count (`kept`; null: all). */
function reduceKept(op: string, loss: Tensor, kept: Tensor | null, reduction: Reduction = 'mean'): Tensor {
  if (!kept) return reduce(op, loss, reduction);
  const masked = where(kept, loss, 0);
  if (reduction !== 'mean') return reduce(op, masked, reduction);
  return div(sum(masked), sum(cast(kept, loss.dtype)));
}

/**
 * Negative log-likelihood of class indices given log-probabilities: `ℓₙ = −logp[n, yₙ]`.
 *
 * Labels follow PyTorch's rule: each must lie in [0, C) (or equal `ignoreIndex`); any other raises
 * a FluxionError naming `nllLoss`, the label and the classes, on the CPU at once and on WebGPU at
 * the next read or sync (the labels live on the device there).
 *
 * Args:
 *   logProbs: `[N, C, ...]` (or `[C]`) log-probabilities, e.g. from `logSoftmax(x, 1)`.
 *   target: int32 class indices `[N, ...]` (or `[]`).
 *   options.reduction: 'mean' (over samples) | 'sum' | 'none' (shape of target).
 *   options.ignoreIndex: a label that counts for nothing (none by default).
 *
 * @example
 * ```ts
 * nllLoss(logSoftmax(logits, 1), labels);
 * nllLoss(logSoftmax(tensor([[2, 1, 0]]), 1), tensor([3], { dtype: 'int32' }));
 * // nllLoss: class label 3 is out of range for scores [1,3] with 3 classes; valid: [0, 3)
 * ```
 */
export function nllLoss(logProbs: Tensor, target: Tensor, options: ClassIndexOptions = {}): Tensor {
  const axis = classAxisOf(logProbs);
  return scope(() => {
    const { hot, kept } = classTargets('nllLoss', target, logProbs, axis, options.ignoreIndex);
    return reduceKept('nllLoss', neg(sum(mul(logProbs, hot), axis)), kept, options.reduction);
  });
}

/** Options of {@link crossEntropy}. */
export interface CrossEntropyOptions extends ClassIndexOptions {
  /** ε in [0, 1]: the target becomes `(1 − ε) · target + ε / C` (default 0). */
  labelSmoothing?: number;
}

/**
 * Cross-entropy between logits and a target: `ℓₙ = −Σ_c qₙ,c · logSoftmax(xₙ)_c`, where q is the
 * one-hot of int32 class indices or a float tensor of class probabilities (same shape as the
 * logits), smoothed as `(1 − ε) q + ε / C` with label smoothing ε. Classes lie on axis 1 (or 0 for
 * unbatched `[C]` logits), as in PyTorch.
 *
 * Class indices follow PyTorch's rule: each must lie in [0, C) (or equal `ignoreIndex`); any
 * other raises a FluxionError naming `crossEntropy`, the label and the classes, on the CPU at once
 * and on WebGPU at the next read or sync (the labels live on the device there).
 *
 * Args:
 *   logits: `[N, C, ...]` or `[C]`.
 *   target: int32 indices `[N, ...]`, or probabilities of the logits' shape.
 *   options.labelSmoothing (0), options.reduction ('mean' over samples), options.ignoreIndex
 *   (class indices only; none by default).
 *
 * @example
 * ```ts
 * crossEntropy(logits, tensor([0, 2], { dtype: 'int32' }), { labelSmoothing: 0.1 });
 * crossEntropy(logits, tensor([0, -100], { dtype: 'int32' }), { ignoreIndex: -100 }); // sample 0 only
 * crossEntropy(tensor([[2, 1, 0]]), tensor([3], { dtype: 'int32' }));
 * // crossEntropy: class label 3 is out of range for scores [1,3] with 3 classes; valid: [0, 3)
 * ```
 */
export function crossEntropy(logits: Tensor, target: Tensor, options: CrossEntropyOptions = {}): Tensor {
  const { labelSmoothing = 0, reduction, ignoreIndex } = options;
  if (!(labelSmoothing >= 0 && labelSmoothing <= 1)) {
    throw new FluxionError('crossEntropy', `labelSmoothing must lie in [0, 1], got ${labelSmoothing}`);
  }
  const axis = classAxisOf(logits);
  const classes = logits.shape[axis];
  return scope(() => {
    let q: Tensor;
    let kept: Tensor | null = null;
    if (target.dtype === 'int32')
      ({ hot: q, kept } = classTargets('crossEntropy', target, logits, axis, ignoreIndex));
    else {
      sameShape('crossEntropy', logits, target);
      if (ignoreIndex !== undefined) {
        throw new FluxionError(
          'crossEntropy',
          'ignoreIndex applies to int32 class indices, not to probabilities',
        );
      }
      q = target;
    }
    if (labelSmoothing > 0) q = add(mul(q, 1 - labelSmoothing), labelSmoothing / classes);
    const loss = neg(sum(mul(q, logSoftmax(logits, axis)), axis));
    return reduceKept('crossEntropy', loss, kept, reduction);
  });
}

/** A diagonal Gaussian given by its mean and log-variance. */
export interface DiagonalGaussian {
  mu: Tensor;
  logVar: Tensor;
}

/** Options of {@link gaussianKl}. */
export interface GaussianKlOptions {
  /** The second distribution; the standard normal N(0, I) by default. */
  prior?: DiagonalGaussian;
  /**
   * `'sum'` (default) adds every term, `'batchmean'` divides that sum by the batch size
   * (`mu.shape[0]`, the usual VAE term), `'mean'` averages over elements, `'none'` returns
   * per-element terms.
   */
  reduction?: Reduction | 'batchmean';
}

/**
 * KL divergence between diagonal Gaussians, `KL(N(μ, σ²) ‖ N(μ₂, σ₂²))`, per element
 * `½ [log σ₂² − log σ² + (σ² + (μ − μ₂)²) / σ₂² − 1]`; against N(0, I) (the default prior) this is
 * `½ (σ² + μ² − 1 − log σ²)`, the VAE regulariser. Variances are given as log-variances.
 *
 * Args:
 *   mu, logVar: the first distribution (one shape).
 *   options.prior: `{ mu, logVar }` of the second one (broadcast), N(0, I) by default.
 *   options.reduction: 'sum' (default) | 'batchmean' | 'mean' | 'none'.
 *
 * @example
 * ```ts
 * const kl = gaussianKl(mu, logVar, { reduction: 'batchmean' }); // VAE: Σ over latents, mean over batch
 * ```
 */
export function gaussianKl(mu: Tensor, logVar: Tensor, options: GaussianKlOptions = {}): Tensor {
  sameShape('gaussianKl', mu, logVar);
  const { prior, reduction = 'sum' } = options;
  return scope(() => {
    let terms: Tensor;
    if (!prior) {
      terms = mul(sub(add(exp(logVar), square(mu)), add(logVar, 1)), 0.5);
    } else {
      const ratio = exp(sub(logVar, prior.logVar));
      const dist = mul(square(sub(mu, prior.mu)), exp(neg(prior.logVar)));
      terms = mul(sub(add(ratio, dist), add(sub(logVar, prior.logVar), 1)), 0.5);
    }
    if (reduction === 'batchmean') {
      if (mu.rank === 0) throw new FluxionError('gaussianKl', `'batchmean' needs a batch axis, got shape []`);
      return mul(sum(terms), 1 / mu.shape[0]);
    }
    return reduce('gaussianKl', terms, reduction);
  });
}
