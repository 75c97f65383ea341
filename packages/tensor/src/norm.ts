/**
 * The `layerNorm` primitive's functional entry points: layer normalisation itself (what
 * `LayerNorm` in `@fluxion/nn` calls) and its gradient `layerNormGrad` (what its VJP calls).
 */
import { runKernel } from './dispatch.js';
import { FluxionError, fmtShape } from './errors.js';
import type { LayerNormGradParams } from './registry.js';
import { Tensor } from './tensor.js';

/** Options of {@link layerNorm}. */
export interface LayerNormOpOptions {
  /**
   * The trailing shape to normalise over (a number for one axis). Default: the weight's shape, else
   * the bias's, else the last axis.
   */
  normalizedShape?: number | readonly number[];
  /** Added to the variance inside the square root (default 1e-5). */
  eps?: number;
}

function checkTensor(op: string, name: string, t: unknown): void {
  if (!(t instanceof Tensor))
    throw new FluxionError(op, `${name} must be a Tensor, got ${t === null ? 'null' : typeof t}`);
  t.assertLive(op);
}

/**
 * The number of trailing axes of `x` that `normalizedShape` names, or a clear error when they
 * differ from x's.
 */
function countOf(op: string, x: Tensor, normalizedShape: number | readonly number[]): number {
  const shape = typeof normalizedShape === 'number' ? [normalizedShape] : [...normalizedShape];
  const tail = x.shape.slice(x.rank - shape.length);
  if (shape.length === 0 || shape.length > x.rank || tail.some((d, i) => d !== shape[i])) {
    throw new FluxionError(
      op,
      `cannot normalise x ${fmtShape(x.shape)} over the trailing shape ${fmtShape(shape)}`,
    );
  }
  return shape.length;
}

/**
 * Layer normalisation (PyTorch's `F.layer_norm`): each row of `x` over its trailing
 * `normalizedShape` is normalised to mean 0 and variance 1, then scaled and shifted:
 *
 * `y = (x − E[x]) / √(Var[x] + eps) · weight + bias`
 *
 * with the biased variance (divided by the row's size). One kernel, differentiable in x, weight and
 * bias (to any order). The statistics are computed from values shifted by each row's first
 * element, so rows with a large mean (`1e4 + noise`) keep their float32 accuracy.
 *
 * Args:
 *   x: a float tensor `[..., *normalizedShape]`.
 *   weight: optional scale of the normalised shape (null or undefined: 1).
 *   bias: optional shift of the normalised shape (null or undefined: 0).
 *   options.normalizedShape: see {@link LayerNormOpOptions}; options.eps (1e-5).
 *
 * Shape:
 *   x `[..., *normalizedShape]` → the same shape.
 *
 * @example
 * ```ts
 * const x = randn([8, 10, 64]);
 * const y = layerNorm(x, ones([64]), zeros([64])); // [8, 10, 64], each row mean 0, variance ≈ 1
 * layerNorm(x, null, null, { normalizedShape: [10, 64] }); // over the last two axes
 * ```
 */
export function layerNorm(
  x: Tensor,
  weight?: Tensor | null,
  bias?: Tensor | null,
  options: LayerNormOpOptions = {},
): Tensor {
  checkTensor('layerNorm', 'x', x);
  if (weight != null) checkTensor('layerNorm', 'weight', weight);
  if (bias != null) checkTensor('layerNorm', 'bias', bias);
  const normalizedShape = options.normalizedShape ?? weight?.shape ?? bias?.shape ?? [x.shape[x.rank - 1]];
  if (x.rank === 0)
    throw new FluxionError('layerNorm', `x must have at least one axis, got ${fmtShape(x.shape)}`);
  const count = countOf('layerNorm', x, normalizedShape);
  const affine = [...(weight != null ? [weight] : []), ...(bias != null ? [bias] : [])];
  return runKernel('layerNorm', [x, ...affine], {
    count,
    eps: options.eps ?? 1e-5,
    weight: weight != null,
    bias: bias != null,
  });
}

/** Options of {@link layerNormGrad}: which gradient, and the forward op's axes count and eps. */
export type LayerNormGradOptions = Pick<LayerNormGradParams, 'result' | 'count' | 'eps'>;

/**
 * The gradients of {@link layerNorm} for an output gradient `g` (the `layerNormGrad` primitive; the
 * row statistics are recomputed from x), with `x̂` the normalised x, `ρ = 1/√(Var[x] + eps)` and
 * means over each row's last `count` axes:
 *
 * - `result: 'input'`: the gradient of x, `ρ · (ĝ − mean(ĝ) − x̂ · mean(ĝ · x̂))` with `ĝ = g · weight`
 *   (or g without a weight), shaped like x;
 * - `result: 'affine'`: `[2, ...normalised shape]`, the weight's gradient `Σ_rows g · x̂` stacked on
 *   the bias's `Σ_rows g` (no weight allowed).
 *
 * Differentiable (its VJPs are `layerNorm`, `layerNormGrad` and elementwise ops).
 *
 * @example
 * ```ts
 * const x = randn([4, 8]);
 * const g = randn([4, 8]);
 * layerNormGrad(x, g, ones([8]), { result: 'input', count: 1, eps: 1e-5 }).shape; // [4, 8]
 * layerNormGrad(x, g, null, { result: 'affine', count: 1, eps: 1e-5 }).shape; // [2, 8]
 * ```
 */
export function layerNormGrad(
  x: Tensor,
  g: Tensor,
  weight: Tensor | null,
  { result, count, eps }: LayerNormGradOptions,
): Tensor {
  checkTensor('layerNormGrad', 'x', x);
  checkTensor('layerNormGrad', 'g', g);
  if (weight != null) checkTensor('layerNormGrad', 'weight', weight);
  return runKernel('layerNormGrad', weight != null ? [x, g, weight] : [x, g], {
    result,
    count,
    eps,
    weight: weight != null,
  });
}
