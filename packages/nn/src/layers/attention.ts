/**
 * Multi-head self-attention, with all heads in one batched matrix product.
 */
import {
  causalMask,
  FluxionError,
  fmtShape,
  logicalOr,
  maskedFill,
  matmul,
  mul,
  notEqual,
  permute,
  type RandomOptions,
  reshape,
  scope,
  softmax,
  type Tensor,
  transpose,
  unsqueeze,
} from '@fluxion/tensor';
import { Module } from '../module.js';
import { layerRandom } from './common.js';
import { Dense } from './dense.js';
import { Dropout } from './dropout.js';

/** Options of {@link MultiheadSelfAttention}. */
export interface MultiheadSelfAttentionOptions extends RandomOptions {
  /** Each position attends only to itself and earlier positions (default false, as PyTorch). */
  causal?: boolean;
  /** Learnable biases in the input and output projections (default true). */
  bias?: boolean;
  /** Dropout probability on the attention weights (default 0). */
  dropout?: number;
}

/**
 * Multi-head self-attention: with `[q, k, v] = x W_qkvᵀ + b_qkv` split into `h` heads of size
 * `d = dim / h`, each head computes `softmax(q kᵀ / √d + M) v`, the heads are concatenated and
 * projected: `y = concat(heads) W_oᵀ + b_o`. With `causal`, `M[i, j] = −∞` for `j > i` (and 0
 * elsewhere), so position `i` sees only positions `≤ i`.
 *
 * The heads are a batch axis, `[B, h, T, d]`: the scores of every head and batch element come from
 * one batched matrix product, and so do their products with `v` (no launch per head). The mask is
 * −∞ (not a large negative number): the masked weights are then exactly 0, the output is exactly
 * that of the unmasked positions, and their gradient is exactly 0. A row of −∞ only would give NaN,
 * but a causal row always keeps its diagonal.
 *
 * Args:
 *   dim: the model width (input and output features); a multiple of `numHeads`.
 *   numHeads: the number of heads `h`.
 *   options.causal: mask future positions (default false).
 *   options.bias: biases in the projections (default true).
 *   options.dropout: dropout on the attention weights while training (default 0).
 *   options.seed / options.generator: the random stream of initialisation and dropout; dtype, backend.
 *
 * Shape:
 *   `[B, T, dim]` → `[B, T, dim]`. `forward(x, mask)` also masks where a bool `mask` is true
 *   (broadcast to the scores `[B, h, T, T]`: e.g. `[B, 1, T, T]` or `[T, T]`), on top of the causal
 *   mask: a packed row of several sequences attends within each one (see `segmentMask`). Every
 *   position must keep at least one key it may see, or its row of weights is NaN.
 *
 * Attributes:
 *   qkv: {@link Dense} `dim → 3·dim`, the fused projection; its weight rows are q, then k, then v
 *   (PyTorch's `in_proj_weight` layout), head `i` using rows `i·d … (i + 1)·d − 1` of each.
 *   proj: {@link Dense} `dim → dim`, the output projection.
 *   Both initialised as PyTorch's Linear.
 *
 * @example
 * ```ts
 * const attn = new MultiheadSelfAttention(64, 4, { causal: true, seed: 0 });
 * attn.forward(randn([8, 16, 64])).shape; // [8, 16, 64]
 * ```
 */
export class MultiheadSelfAttention extends Module<[Tensor, Tensor?]> {
  readonly qkv: Dense;
  readonly proj: Dense;
  readonly attnDropout: Dropout;
  readonly headDim: number;
  readonly causal: boolean;

  constructor(
    readonly dim: number,
    readonly numHeads: number,
    options: MultiheadSelfAttentionOptions = {},
  ) {
    super();
    const { causal = false, bias = true, dropout = 0 } = options;
    if (!Number.isInteger(dim) || !Number.isInteger(numHeads) || dim < 1 || numHeads < 1 || dim % numHeads) {
      throw new FluxionError(
        'MultiheadSelfAttention',
        `dim must be a positive multiple of numHeads (both integers), got dim ${dim}, numHeads ${numHeads}`,
      );
    }
    const random = layerRandom(options);
    this.causal = causal;
    this.headDim = dim / numHeads;
    this.qkv = new Dense(dim, 3 * dim, { ...random, bias });
    this.proj = new Dense(dim, dim, { ...random, bias });
    this.attnDropout = new Dropout(dropout, { generator: random.generator });
  }

  forward(x: Tensor, mask?: Tensor): Tensor {
    if (x.rank !== 3 || x.shape[2] !== this.dim) {
      throw new FluxionError(
        'MultiheadSelfAttention',
        `expected input [B, T, ${this.dim}], got ${fmtShape(x.shape)} ${x.dtype}`,
      );
    }
    const [b, t] = x.shape;
    if (mask && (mask.dtype !== 'bool' || mask.rank > 4 || mask.rank < 2)) {
      throw new FluxionError(
        'MultiheadSelfAttention',
        `the mask must be bool, broadcastable to the scores [${b}, ${this.numHeads}, ${t}, ${t}], got ${fmtShape(mask.shape)} ${mask.dtype}`,
      );
    }
    const { numHeads: h, headDim: d } = this;
    return scope(() => {
      // [B, T, 3·dim] → [3, B, h, T, d]: q, k and v of every head, as views.
      const qkv = permute(reshape(this.qkv.forward(x), [b, t, 3, h, d]), [2, 0, 3, 1, 4]);
      const [q, k, v] = [0, 1, 2].map((i) => qkv.slice(i));
      let scores = matmul(mul(q, 1 / Math.sqrt(d)), transpose(k)); // [B, h, T, T]
      if (this.causal) {
        scores = maskedFill(scores, causalMask(t, { backend: x.backend.name }), Number.NEGATIVE_INFINITY);
      }
      if (mask) scores = maskedFill(scores, mask, Number.NEGATIVE_INFINITY);
      const weights = this.attnDropout.forward(softmax(scores, -1));
      const heads = matmul(weights, v); // [B, h, T, d]
      return this.proj.forward(reshape(permute(heads, [0, 2, 1, 3]), [b, t, this.dim]));
    });
  }

  override toString(): string {
    return `MultiheadSelfAttention(${this.dim}, heads=${this.numHeads}${this.causal ? ', causal' : ''})`;
  }
}

/**
 * The attention mask of packed rows: position `i` may see position `j` only when both belong to
 * the same segment (`segments[b, i] = segments[b, j]`), and, with `causal`, `j ≤ i`. Returns a bool
 * `[B, 1, T, T]` that is true where attention is blocked, for {@link MultiheadSelfAttention}'s
 * `forward(x, mask)`. With it, a row holding several short sequences one after another computes
 * exactly what one row per sequence would (each with its own positions), without the padding.
 *
 * @example
 * ```ts
 * // two names in one row: positions 0–2 are one segment, 3–5 the next
 * const mask = segmentMask(tensor([[0, 0, 0, 1, 1, 1]], { dtype: 'int32' }), { causal: true });
 * mask.shape; // [1, 1, 6, 6]
 * ```
 */
export function segmentMask(segments: Tensor, options: { causal?: boolean } = {}): Tensor {
  if (segments.rank !== 2 || segments.dtype !== 'int32') {
    throw new FluxionError(
      'segmentMask',
      `expected int32 segment ids [B, T], got ${fmtShape(segments.shape)} ${segments.dtype}`,
    );
  }
  const t = segments.shape[1];
  return scope(() => {
    const other = notEqual(unsqueeze(segments, 2), unsqueeze(segments, 1));
    const blocked = options.causal
      ? logicalOr(other, causalMask(t, { backend: segments.backend.name }))
      : other;
    return unsqueeze(blocked, 1);
  });
}
