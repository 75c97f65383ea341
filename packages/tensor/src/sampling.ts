/**
 * Sampling from categorical distributions, for generating text one token at a time:
 * {@link multinomial} (from weights), {@link sampleLogits} (from logits, with temperature and
 * top-k) and {@link topKLogits}. Everything is composed from primitives and stays on the tensor's
 * backend (no read-back), drawing its uniforms from a seeded {@link Generator}, so a seed gives the
 * same tokens on the CPU and on WebGPU (up to float32 rounding of the cumulative sums, which moves
 * a sample only when a uniform lands within a rounding of a class boundary).
 */
import { isFiniteTensor, maskedFill } from './composite.js';
import { arange, zeros } from './creation.js';
import { type DType, isFloat } from './dtype.js';
import { FluxionError, fmtShape } from './errors.js';
import type { IndexContext } from './index-range.js';
import { scope } from './memory.js';
import {
  add,
  argmax,
  cast,
  div,
  exp,
  greater,
  greaterEqual,
  lessEqual,
  logicalAnd,
  logicalNot,
  matmul,
  max,
  min,
  pad,
  sub,
  sum,
  take,
} from './ops.js';
import { type RandomOptions, rand } from './random.js';
import type { Tensor } from './tensor.js';
import { reshape, slice, squeeze, unsqueeze } from './views.js';

/** Options of {@link multinomial}. */
export interface MultinomialOptions extends Pick<RandomOptions, 'generator' | 'seed'> {
  /** Independent draws per row (with replacement, PyTorch's `replacement=True`); default 1. */
  numSamples?: number;
}

/** Options of {@link sampleLogits}. */
export interface SampleLogitsOptions extends Pick<RandomOptions, 'generator' | 'seed'> {
  /** Divides the logits: below 1 sharpens, above 1 flattens; 0 is argmax (default 1). */
  temperature?: number;
  /** Keep only the `topK` largest logits of each row (see {@link topKLogits}); default all. */
  topK?: number;
}

function checkFloatRows(op: string, name: string, x: Tensor): number {
  if (!isFloat(x.dtype) || x.rank < 1 || x.shape[x.rank - 1] < 1) {
    throw new FluxionError(
      op,
      `${name} must be a float tensor [..., classes] with at least one class, got ${fmtShape(x.shape)} ${x.dtype}`,
    );
  }
  return x.shape[x.rank - 1];
}

/** `[n, n]` of `dtype`: 1 where row ≤ column (`inclusive`) or row < column, else 0. */
function upperTriangle(n: number, inclusive: boolean, dtype: DType, backend: Tensor['backend']['name']) {
  const i = arange(n, undefined, 1, { dtype: 'int32', backend });
  const rows = unsqueeze(i, 1);
  const cols = unsqueeze(i, 0);
  return cast(inclusive ? lessEqual(rows, cols) : greater(cols, rows), dtype);
}

/**
 * Inclusive cumulative sum along the last axis, as two small matrix products: the axis is cut into
 * `b` blocks of `s ≈ √n` (zero-padded), each block is summed by a triangular `[s, s]` matrix and
 * the blocks' totals by a strict triangular `[b, b]` one, so memory stays O(n), not O(n²).
 */
function cumsumLast(x: Tensor): Tensor {
  const n = x.shape[x.rank - 1];
  const s = Math.ceil(Math.sqrt(n));
  const b = Math.ceil(n / s);
  const lead = x.shape.slice(0, -1);
  const backend = x.backend.name;
  const blocks = reshape(pad(x, [...lead.map(() => [0, 0]), [0, b * s - n]]), [...lead, b, s]);
  const within = matmul(blocks, upperTriangle(s, true, x.dtype, backend));
  const totals = squeeze(slice(within, ...lead.map(() => null), null, [s - 1]), -1);
  const before = matmul(totals, upperTriangle(b, false, x.dtype, backend));
  const cumulative = reshape(add(within, unsqueeze(before, -1)), [...lead, b * s]);
  return slice(cumulative, ...lead.map(() => null), [0, n]);
}

/**
 * `numSamples` class indices per row of non-negative `weights` (`[..., classes]`), by inverse CDF:
 * with `c` the cumulative weights divided by their total and `u ~ U[0, 1)`, the sample is
 * `#{j < classes − 1 : c_j ≤ u}`. A class of weight 0 is never drawn. A row that is not a
 * distribution (a NaN, infinite or negative weight, or all zero) raises the FluxionError of `invalid`
 * (on WebGPU at the next read or sync, as an index out of range does; see `take`).
 */
function drawCategorical(
  weights: Tensor,
  numSamples: number,
  random: Pick<RandomOptions, 'generator' | 'seed'>,
  invalid: IndexContext,
): Tensor {
  const n = weights.shape[weights.rank - 1];
  const lead = weights.shape.slice(0, -1);
  const all = lead.map(() => null);
  const backend = weights.backend.name;
  const cdf = cumsumLast(weights);
  const total = slice(cdf, ...all, [n - 1]);
  const c = div(slice(cdf, ...all, [0, n - 1]), total);
  const u = rand([...lead, numSamples], { ...random, dtype: weights.dtype, backend });
  const below = lessEqual(unsqueeze(c, -2), unsqueeze(u, -1)); // [..., numSamples, n − 1]
  const samples = cast(sum(below, -1), 'int32');
  // A row is a distribution when its total is finite and positive and no weight is negative (NaN
  // fails the comparisons). The count of other rows, gathered from [0, 1), must be 0: take checks it
  // on either backend and the zero it returns joins the samples, so the check always runs.
  const valid = logicalAnd(
    logicalAnd(isFiniteTensor(total), greater(total, 0)),
    greaterEqual(min(weights, -1, true), 0),
  );
  const badRows = reshape(sum(logicalNot(valid)), [1]);
  const zero = take(zeros([1], { dtype: 'int32', backend }), badRows, 0, invalid);
  return add(samples, zero);
}

/**
 * Draws class indices from the categorical distributions `p(j) = weights[..., j] / Σ weights[..., :]`
 * (PyTorch's `torch.multinomial(weights, numSamples, replacement=True)`), by inverse CDF on one
 * seeded uniform per sample: the sample is the class whose cumulative interval holds `u ~ U[0, 1)`.
 *
 * The weights need not sum to 1 but must be non-negative and finite with a positive total in every
 * row; another row raises a FluxionError naming `multinomial` (on WebGPU at the next read or sync).
 * A class of weight 0 is never drawn. Draws are independent (with replacement).
 *
 * Args:
 *   weights: float `[..., classes]`, e.g. `softmax(logits, -1)`.
 *   options.numSamples: draws per row (default 1).
 *   options.generator / options.seed: the random stream (`numSamples` uniforms per row are drawn).
 *
 * Shape:
 *   `[..., classes]` → int32 `[..., numSamples]`.
 *
 * @example
 * ```ts
 * multinomial(tensor([[0.1, 0.9], [1, 0]]), { numSamples: 3, seed: 0 }); // e.g. [[1, 1, 0], [0, 0, 0]]
 * ```
 */
export function multinomial(weights: Tensor, options: MultinomialOptions = {}): Tensor {
  const { numSamples = 1, generator, seed } = options;
  checkFloatRows('multinomial', 'weights', weights);
  if (!Number.isInteger(numSamples) || numSamples < 1)
    throw new FluxionError('multinomial', `numSamples must be a positive integer, got ${numSamples}`);
  return scope(() =>
    drawCategorical(
      weights,
      numSamples,
      { generator, seed },
      {
        op: 'multinomial',
        noun: 'count of rows that are not distributions',
        range: `weights ${fmtShape(weights.shape)} ${weights.dtype} (each row needs finite weights ≥ 0 with a positive sum)`,
      },
    ),
  );
}

/**
 * The logits with every entry below the `k`-th largest of its row set to −∞:
 * `y_i = x_i` if `#{j : x_j > x_i} < k`, else −∞. Ties at the `k`-th value are all kept, so a row
 * keeps more than `k` entries only when several equal the `k`-th largest (as nanoGPT's and Hugging
 * Face's top-k filters). Compares every pair of a row, `[..., classes, classes]` booleans: meant
 * for character and small word vocabularies.
 *
 * Args:
 *   logits: float `[..., classes]`.
 *   k: an integer in [1, classes].
 *
 * @example
 * ```ts
 * topKLogits(tensor([1, 3, 2, 3]), 2); // [−∞, 3, −∞, 3]
 * ```
 */
export function topKLogits(logits: Tensor, k: number): Tensor {
  const n = checkFloatRows('topKLogits', 'logits', logits);
  checkTopK('topKLogits', k, n, logits);
  return scope(() => {
    const greaterCount = sum(greater(unsqueeze(logits, -2), unsqueeze(logits, -1)), -1);
    return maskedFill(logits, greaterEqual(greaterCount, k), Number.NEGATIVE_INFINITY);
  });
}

function checkTopK(op: string, k: number, n: number, logits: Tensor): void {
  if (!Number.isInteger(k) || k < 1 || k > n) {
    throw new FluxionError(
      op,
      `topK must be an integer in [1, ${n}] for logits ${fmtShape(logits.shape)} ${logits.dtype}, got ${k}`,
    );
  }
}

/**
 * One token per row from `softmax(logits / temperature)`, optionally restricted to the `topK`
 * largest logits: `p(j) ∝ exp((x_j − max x) / T)` over the kept `j`, sampled by inverse CDF as in
 * {@link multinomial}. Temperature 0 is argmax decoding (the first maximum on ties) and draws no
 * random numbers (nor checks the logits: argmax takes NaN as the maximum); as T → 0 the samples
 * become the argmax (with distinct maxima). Subtracting the row maximum first keeps tiny
 * temperatures finite (`1e-30` does not overflow).
 *
 * Logits must be finite or −∞ with at least one finite entry per row; another row raises a
 * FluxionError naming `sampleLogits` (on WebGPU at the next read or sync).
 *
 * Args:
 *   logits: float `[..., classes]`.
 *   options.temperature: finite and ≥ 0 (default 1).
 *   options.topK: keep the k largest logits per row (ties at the k-th all kept; see
 *   {@link topKLogits}), an integer in [1, classes]; default all.
 *   options.generator / options.seed: the random stream (one uniform per row).
 *
 * Shape:
 *   `[..., classes]` → int32 `[...]`.
 *
 * @example
 * ```ts
 * const g = new Generator(0);
 * const next = sampleLogits(slice(logits, null, -1), { temperature: 0.8, topK: 10, generator: g }); // [B]
 * ```
 */
export function sampleLogits(logits: Tensor, options: SampleLogitsOptions = {}): Tensor {
  const { temperature = 1, topK, generator, seed } = options;
  const n = checkFloatRows('sampleLogits', 'logits', logits);
  if (typeof temperature !== 'number' || !Number.isFinite(temperature) || temperature < 0) {
    throw new FluxionError('sampleLogits', `temperature must be a finite number ≥ 0, got ${temperature}`);
  }
  if (topK !== undefined) checkTopK('sampleLogits', topK, n, logits);
  if (temperature === 0) return argmax(logits, -1);
  return scope(() => {
    const kept = topK === undefined || topK === n ? logits : topKLogits(logits, topK);
    const weights = exp(div(sub(kept, max(kept, -1, true)), temperature));
    const samples = drawCategorical(
      weights,
      1,
      { generator, seed },
      {
        op: 'sampleLogits',
        noun: 'count of rows that are not valid logits',
        range: `logits ${fmtShape(logits.shape)} ${logits.dtype} (each row needs finite or −∞ logits, not all −∞)`,
      },
    );
    return squeeze(samples, -1);
  });
}
