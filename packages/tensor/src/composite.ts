/**
 * Composite ops: built only from primitives, so they need no kernel and no gradient code of their
 * own (autograd differentiates through the primitives they call). Each runs in a scope, so its
 * intermediates are freed before it returns.
 */
import { arange, type CreateOptions } from './creation.js';
import { isFloat } from './dtype.js';
import { FluxionError, fmtShape } from './errors.js';
import type { IndexContext } from './index-range.js';
import { scope } from './memory.js';
import {
  abs,
  add,
  cast,
  concat,
  div,
  equal,
  erf,
  exp,
  expm1,
  greater,
  less,
  log,
  max,
  mul,
  neg,
  notEqual,
  sigmoid,
  softplus,
  sqrt,
  sub,
  sum,
  type TensorOrScalar,
  take,
  tanh,
  where,
} from './ops.js';
import { broadcastShapes, normalizeAxes, normalizeAxis, shapesEqual } from './shape.js';
import type { Tensor } from './tensor.js';
import { broadcastTo, reshape, type SliceSpec, slice, unsqueeze } from './views.js';

const toFloat = (x: Tensor) => (isFloat(x.dtype) ? x : cast(x, 'float32'));

function countOf(x: Tensor, axes: readonly number[]): number {
  return axes.reduce((n, a) => n * x.shape[a], 1);
}

/** `x²`. */
export function square(x: Tensor): Tensor {
  return mul(x, x);
}

/** Mean over `axes` (all by default); integers average in float32. @example `mean(x, -1, true)` */
export function mean(x: Tensor, axes?: number | readonly number[], keepDims = false): Tensor {
  const norm = normalizeAxes('mean', axes, x.rank);
  return scope(() => div(sum(toFloat(x), norm, keepDims), countOf(x, norm)));
}

/** Options of {@link variance} and {@link std}. */
export interface VarianceOptions {
  /** Subtracted from the count in the denominator: 1 (default) is Bessel's unbiased estimate. */
  correction?: number;
  keepDims?: boolean;
}

/** Variance over `axes` (all by default), `Σ(x − mean)² / (n − correction)`, as PyTorch's `var`. */
export function variance(
  x: Tensor,
  axes?: number | readonly number[],
  options: VarianceOptions = {},
): Tensor {
  const { correction = 1, keepDims = false } = options;
  const norm = normalizeAxes('variance', axes, x.rank);
  return scope(() => {
    const xf = toFloat(x);
    const centered = sub(xf, mean(xf, norm, true));
    return div(sum(square(centered), norm, keepDims), Math.max(0, countOf(x, norm) - correction));
  });
}

/** Standard deviation: `sqrt(variance(x, axes, options))`. */
export function std(x: Tensor, axes?: number | readonly number[], options: VarianceOptions = {}): Tensor {
  return scope(() => sqrt(variance(x, axes, options)));
}

/** Whether each element is finite (not ±∞ or NaN), as bool. */
export function isFiniteTensor(x: Tensor): Tensor {
  return scope(() => less(abs(x), Number.POSITIVE_INFINITY));
}

/** Whether each element is NaN, as bool. */
export function isNaNTensor(x: Tensor): Tensor {
  return notEqual(x, x);
}

/**
 * `log Σ exp(x)` over `axes`, computed stably as `m + log Σ exp(x − m)` with `m` the maximum
 * (replaced by 0 where it is infinite, so all −∞ gives −∞ and not NaN). Finite for inputs of ±1e4.
 *
 * @example
 * ```ts
 * logSumExp(tensor([1e4, 1e4]), 0); // 1e4 + ln 2
 * ```
 */
export function logSumExp(x: Tensor, axes?: number | readonly number[], keepDims = false): Tensor {
  const norm = normalizeAxes('logSumExp', axes, x.rank);
  return scope(() => {
    const xf = toFloat(x);
    const m = max(xf, norm, true);
    const shift = where(isFiniteTensor(m), m, 0);
    const lse = add(log(sum(exp(sub(xf, shift)), norm, true)), shift);
    return keepDims ? lse : sum(lse, norm, false);
  });
}

/** Softmax along `axis` (last by default); rows sum to 1. @example `softmax(logits, -1)` */
export function softmax(x: Tensor, axis = -1): Tensor {
  const a = normalizeAxis('softmax', axis, x.rank);
  return scope(() => {
    const xf = toFloat(x);
    const e = exp(sub(xf, max(xf, a, true)));
    return div(e, sum(e, a, true));
  });
}

/** Log-softmax along `axis`: `x − logSumExp(x)`, stable. */
export function logSoftmax(x: Tensor, axis = -1): Tensor {
  const a = normalizeAxis('logSoftmax', axis, x.rank);
  return scope(() => sub(toFloat(x), logSumExp(x, a, true)));
}

/**
 * Limits values to [lo, hi] (either bound may be omitted). The gradient passes where
 * lo ≤ x ≤ hi, as in PyTorch.
 */
export function clamp(x: Tensor, lo?: TensorOrScalar, hi?: TensorOrScalar): Tensor {
  return scope(() => {
    let y = x;
    if (lo !== undefined) y = where(less(y, lo), lo, y);
    if (hi !== undefined) y = where(greater(y, hi), hi, y);
    return y === x ? mul(x, 1) : y;
  });
}

/** `log σ(x) = −softplus(−x)`, stable for any finite x. */
export function logSigmoid(x: Tensor): Tensor {
  return scope(() => neg(softplus(neg(x))));
}

/** `silu(x) = x · σ(x)` (also called swish). */
export function silu(x: Tensor): Tensor {
  return scope(() => mul(x, sigmoid(x)));
}

/**
 * GELU: exact `x · Φ(x) = x/2 · (1 + erf(x/√2))`, or the tanh approximation
 * `x/2 · (1 + tanh(√(2/π) (x + 0.044715 x³)))`.
 */
export function gelu(x: Tensor, approximate: 'none' | 'tanh' = 'none'): Tensor {
  return scope(() => {
    const inner =
      approximate === 'tanh'
        ? tanh(mul(add(x, mul(mul(mul(x, x), x), 0.044715)), Math.sqrt(2 / Math.PI)))
        : erf(mul(x, Math.SQRT1_2));
    return mul(mul(x, 0.5), add(inner, 1));
  });
}

/**
 * `elu(x) = x` for x > 0, else `α (eˣ − 1)`. The exponential only sees the non-positive inputs
 * (0 in place of the positive ones): `eˣ` overflows float32 above ≈ 88.7, and the branch `where`
 * discards would still send `0 · ∞ = NaN` into the gradient. So the gradient is exactly 1 for
 * x > 0 and `α eˣ` (→ 0) for very negative x.
 *
 * @example
 * ```ts
 * elu(tensor([-1000, -1, 0, 100])); // [-1, e⁻¹ − 1, 0, 100]
 * ```
 */
export function elu(x: Tensor, alpha = 1): Tensor {
  return scope(() => {
    const positive = greater(x, 0);
    return where(positive, x, mul(expm1(where(positive, 0, x)), alpha));
  });
}

/**
 * One-hot encoding of int32 class indices: shape `[...indices.shape, classes]`, float32.
 *
 * An index outside [0, classes) raises a FluxionError naming the op, the value and the valid range
 * (PyTorch's rule), on the CPU at once and on WebGPU at the next read or sync (see {@link take},
 * which checks them). `context` names the op in that message for callers such as the losses.
 *
 * @example
 * ```ts
 * oneHot(tensor([0, 2], { dtype: 'int32' }), 3); // [[1, 0, 0], [0, 0, 1]]
 * oneHot(tensor([3], { dtype: 'int32' }), 3); // oneHot: index 3 is out of range for 3 classes; valid: [0, 3)
 * ```
 */
export function oneHot(indices: Tensor, classes: number, context?: IndexContext): Tensor {
  if (indices.dtype !== 'int32')
    throw new FluxionError('oneHot', `indices must be int32, got ${indices.dtype}`);
  if (!Number.isInteger(classes) || classes < 0)
    throw new FluxionError('oneHot', `classes must be a non-negative integer, got ${classes}`);
  return scope(() => {
    const range = arange(classes, undefined, 1, { dtype: 'int32', backend: indices.backend.name });
    // Gathering the indices from [0, classes) gives them back, checked by take on every backend.
    const checked = take(
      range,
      indices,
      0,
      context ?? { op: 'oneHot', noun: 'index', range: `${classes} classes` },
    );
    return cast(equal(unsqueeze(checked, -1), range), 'float32');
  });
}

/** Joins tensors of one shape along a new axis. @example `stack([a, b], 0)` */
export function stack(tensors: readonly Tensor[], axis = 0): Tensor {
  if (tensors.length === 0) throw new FluxionError('stack', 'needs at least one tensor');
  const shape = tensors[0].shape;
  for (const t of tensors) {
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new FluxionError(
        'stack',
        `all tensors need one shape, got ${tensors.map((u) => fmtShape(u.shape)).join(', ')}`,
      );
    }
  }
  const a = normalizeAxis('stack', axis, shape.length + 1);
  return scope(() =>
    concat(
      tensors.map((t) => unsqueeze(t, a)),
      a,
    ),
  );
}

/** `x` sliced along `axis` only: an index drops the axis, a range keeps it. */
function sliceAlong(x: Tensor, axis: number, spec: SliceSpec): Tensor {
  return slice(x, ...x.shape.map((_, i) => (i === axis ? spec : null)));
}

/**
 * Splits along `axis` into pieces of the given sizes, or into `n` equal pieces (views):
 * `split(x, [n₀, n₁, …], a)[k] = x[…, s_k : s_k + n_k, …]` with `s_k = n₀ + … + n_{k−1}`.
 * Backward through all the pieces costs O(size of x), not O(pieces × size): autograd joins
 * their gradients in one concat.
 *
 * @example
 * ```ts
 * const [mu, logVar] = split(h, 2, -1);
 * ```
 */
export function split(x: Tensor, sizesOrCount: number | readonly number[], axis = 0): Tensor[] {
  const a = normalizeAxis('split', axis, x.rank);
  const dim = x.shape[a];
  const sizes =
    typeof sizesOrCount === 'number'
      ? dim % sizesOrCount === 0
        ? Array(sizesOrCount).fill(dim / sizesOrCount)
        : null
      : [...sizesOrCount];
  if (!sizes || sizes.reduce((s, v) => s + v, 0) !== dim) {
    throw new FluxionError(
      'split',
      `cannot split axis ${a} of ${fmtShape(x.shape)} into ${JSON.stringify(sizesOrCount)}`,
    );
  }
  let start = 0;
  return sizes.map((n) => {
    start += n;
    return sliceAlong(x, a, [start - n, start]);
  });
}

/**
 * The slices of `x` along `axis`, that axis removed (PyTorch's `unbind`), as views:
 * `unbind(x, a)[i] = x[…, i, …]`, `x.shape[a]` tensors of shape `x.shape` without axis `a`.
 * Backward through all of them costs O(size of x), not O(slices × size): autograd joins their
 * gradients in one concat (zeros for the slices that got none), so a time loop over
 * `unbind(x, 1)` is linear in the sequence length.
 *
 * @example
 * ```ts
 * const steps = unbind(projected, 1); // [B, T, G] → T tensors [B, G]
 * for (const xt of steps) h = cell.forward(xt, h);
 * ```
 */
export function unbind(x: Tensor, axis = 0): Tensor[] {
  if (!Number.isInteger(axis) || axis < -x.rank || axis >= x.rank) {
    throw new FluxionError('unbind', `axis ${axis} is out of range for ${fmtShape(x.shape)} ${x.dtype}`);
  }
  const a = normalizeAxis('unbind', axis, x.rank);
  return Array.from({ length: x.shape[a] }, (_, i) => sliceAlong(x, a, i));
}

/**
 * `y = where(mask, value, x)`: `value` wherever the bool `mask` is true, `x` elsewhere (PyTorch's
 * `masked_fill`). The mask broadcasts to `x`'s shape (never the other way); the result has `x`'s
 * shape and `where`'s dtype (a float value into an int32 `x` gives float32). The gradient with
 * respect to `x` is the incoming gradient where the mask is false and 0 where it is true, so a fill
 * of −∞ before a softmax passes no NaN back (the masked entries' gradient is exactly 0).
 *
 * Args:
 *   x: the tensor to fill.
 *   mask: bool, broadcastable to `x.shape`; true marks the entries replaced.
 *   value: a number (−∞ allowed for float `x`) or a 0-d tensor.
 *
 * @example
 * ```ts
 * maskedFill(scores, causalMask(t), Number.NEGATIVE_INFINITY); // attention scores of the past only
 * ```
 */
export function maskedFill(x: Tensor, mask: Tensor, value: TensorOrScalar): Tensor {
  if (mask.dtype !== 'bool') {
    throw new FluxionError(
      'maskedFill',
      `mask must be bool, got ${mask.dtype} ${fmtShape(mask.shape)} for x ${fmtShape(x.shape)} ${x.dtype}`,
    );
  }
  if (typeof value !== 'number' && value.rank !== 0) {
    throw new FluxionError(
      'maskedFill',
      `value must be a number or a 0-d tensor, got ${fmtShape(value.shape)}`,
    );
  }
  const shape = broadcastShapes('maskedFill', x.shape, mask.shape);
  if (!shapesEqual(shape, x.shape)) {
    throw new FluxionError(
      'maskedFill',
      `mask ${fmtShape(mask.shape)} does not broadcast to x ${fmtShape(x.shape)} ${x.dtype}`,
    );
  }
  return where(mask, value, x);
}

/**
 * The causal (look-ahead) mask of a sequence of length `t`: bool `[t, t]`, true at `[i, j]` where
 * `j > i`, i.e. where position `i` must not see position `j`. True marks what
 * {@link maskedFill} replaces (PyTorch's `generate_square_subsequent_mask` as bool; note that
 * `scaled_dot_product_attention`'s bool `attn_mask` means the opposite).
 *
 * Args:
 *   t: the sequence length (a non-negative integer).
 *   options.backend: where to create it.
 *
 * @example
 * ```ts
 * causalMask(3); // [[false, true, true], [false, false, true], [false, false, false]]
 * ```
 */
export function causalMask(t: number, options: Pick<CreateOptions, 'backend'> = {}): Tensor {
  if (!Number.isInteger(t) || t < 0)
    throw new FluxionError('causalMask', `length must be a non-negative integer, got ${t}`);
  return scope(() => {
    const positions = arange(t, undefined, 1, { dtype: 'int32', backend: options.backend });
    return greater(unsqueeze(positions, 0), unsqueeze(positions, 1));
  });
}

/**
 * Gathers along `axis` with an index per output element (NumPy's `take_along_axis`; PyTorch's
 * `gather` when the index matches `x`'s shape on the other axes):
 * `out[i₀, …, j, …] = x[i₀, …, indices[i₀, …, j, …], …]`, `j` running over `indices.shape[axis]`.
 * On the other axes `x` and `indices` broadcast (sizes equal, or one of them 1).
 *
 * Composed from {@link take}: each index becomes a flat offset into `x` (index · stride of `axis`
 * plus the offsets of the other coordinates) and one take reads them, so its gradient is take's
 * (a scatter-add into `x`; repeated indices accumulate). Every index must lie in
 * `[0, x.shape[axis])`: another value raises a FluxionError naming `takeAlongAxis` (on WebGPU at
 * the next read or sync, as for {@link take}).
 *
 * Args:
 *   x: the source, any dtype.
 *   indices: int32, of `x`'s rank.
 *   axis: the axis to gather along (negatives count from the end).
 *
 * Shape:
 *   `x [..., n, ...]`, `indices [..., m, ...]` → `[..., m, ...]` (other axes broadcast).
 *
 * @example
 * ```ts
 * // log-probability of each target: [B, T, V] and [B, T, 1] → [B, T, 1]
 * takeAlongAxis(logSoftmax(logits, -1), unsqueeze(targets, -1), -1);
 * ```
 */
export function takeAlongAxis(x: Tensor, indices: Tensor, axis: number): Tensor {
  const describe = () =>
    `x ${fmtShape(x.shape)} ${x.dtype}, indices ${fmtShape(indices.shape)} ${indices.dtype}`;
  if (indices.dtype !== 'int32')
    throw new FluxionError('takeAlongAxis', `indices must be int32, got ${describe()}`);
  if (indices.rank !== x.rank || x.rank === 0)
    throw new FluxionError('takeAlongAxis', `x and indices need the same rank (≥ 1), got ${describe()}`);
  const a = normalizeAxis('takeAlongAxis', axis, x.rank);
  const shape = x.shape.map((d, i) => {
    const e = indices.shape[i];
    if (i === a) return e;
    if (d !== e && d !== 1 && e !== 1)
      throw new FluxionError('takeAlongAxis', `axis ${i} differs and neither is 1: ${describe()}`);
    return d === 1 ? e : d;
  });
  return scope(() => {
    const backend = x.backend.name;
    const size = x.shape[a];
    // Gathering the indices from [0, size) gives them back, checked against the axis by take.
    const checked = take(arange(size, undefined, 1, { dtype: 'int32', backend }), indices, 0, {
      op: 'takeAlongAxis',
      noun: 'index',
      range: `axis ${a} of x ${fmtShape(x.shape)}`,
    });
    const strides = x.shape.map((_, i) => x.shape.slice(i + 1).reduce((p, d) => p * d, 1));
    let offsets = mul(checked, strides[a]);
    shape.forEach((n, i) => {
      if (i === a || x.shape[i] === 1) return;
      const along = mul(arange(n, undefined, 1, { dtype: 'int32', backend }), strides[i]);
      offsets = add(
        offsets,
        reshape(
          along,
          shape.map((_, j) => (j === i ? n : 1)),
        ),
      );
    });
    return take(reshape(x, [-1]), broadcastTo(offsets, shape), 0);
  });
}
