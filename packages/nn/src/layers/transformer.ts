/**
 * The pieces of a GPT-style Transformer: learned positional embeddings, the pre-LayerNorm block
 * (causal self-attention and a GELU MLP, each in a residual branch) and weight tying between a
 * token embedding and the output layer.
 */
import {
  add,
  FluxionError,
  fmtShape,
  gelu,
  type RandomOptions,
  scope,
  type Tensor,
  take,
} from '@fluxion/tensor';
import { normal } from '../init.js';
import { Module, Parameter } from '../module.js';
import { MultiheadSelfAttention } from './attention.js';
import { layerRandom } from './common.js';
import { Dense } from './dense.js';
import { Dropout } from './dropout.js';
import type { Embedding } from './embedding.js';
import { LayerNorm } from './norm.js';

/** Options of {@link PositionalEmbedding}. */
export interface PositionalEmbeddingOptions extends RandomOptions {
  /** Standard deviation of the normal initialisation (default 0.02, as GPT-2). */
  std?: number;
}

/**
 * Learned absolute positional embeddings: `y[..., t, :] = x[..., t, :] + P[offset + t, :]`, one
 * learned vector per position (GPT-2's `wpe`). Positions `offset … offset + T − 1` must lie below
 * `maxLength`. Only the rows used receive gradient.
 *
 * Args:
 *   maxLength: the number of positions (the longest sequence).
 *   dim: the width of each vector.
 *   options.std: initialisation N(0, std²) (default 0.02).
 *   options.seed / options.generator, dtype, backend: of the table.
 *
 * Shape:
 *   `[..., T, dim]` → same shape; `forward(x, offset)` adds the rows from `offset` on;
 *   `forward(x, positions)` with int32 positions `[..., T]` adds row `positions[..., t]` at each
 *   place (packed rows whose sequences each start at position 0).
 *
 * Attributes:
 *   weight: `[maxLength, dim]`.
 *
 * @example
 * ```ts
 * const pos = new PositionalEmbedding(128, 64, { seed: 0 });
 * pos.forward(tokenEmbedding.forward(ids)).shape; // [B, T, 64] for ids [B, T], T ≤ 128
 * ```
 */
export class PositionalEmbedding extends Module<[Tensor, (number | Tensor)?]> {
  readonly weight: Parameter;

  constructor(
    readonly maxLength: number,
    readonly dim: number,
    options: PositionalEmbeddingOptions = {},
  ) {
    super();
    const { std = 0.02 } = options;
    if (![maxLength, dim].every((n) => Number.isInteger(n) && n > 0)) {
      throw new FluxionError(
        'PositionalEmbedding',
        `maxLength and dim must be positive integers, got ${maxLength}, ${dim}`,
      );
    }
    this.weight = scope(() => new Parameter(normal([maxLength, dim], { ...layerRandom(options), std })));
  }

  forward(x: Tensor, offset: number | Tensor = 0): Tensor {
    const t = x.shape[x.rank - 2];
    if (x.rank < 2 || x.shape[x.rank - 1] !== this.dim) {
      throw new FluxionError(
        'PositionalEmbedding',
        `expected input [..., T, ${this.dim}], got ${fmtShape(x.shape)} ${x.dtype}`,
      );
    }
    if (typeof offset !== 'number') {
      const positions = offset;
      if (
        positions.dtype !== 'int32' ||
        positions.rank !== x.rank - 1 ||
        positions.shape.some((d, i) => d !== x.shape[i])
      ) {
        throw new FluxionError(
          'PositionalEmbedding',
          `positions must be int32 ${fmtShape(x.shape.slice(0, -1))} for input ${fmtShape(x.shape)}, got ${fmtShape(positions.shape)} ${positions.dtype}`,
        );
      }
      return scope(() =>
        add(
          x,
          take(this.weight, positions, 0, {
            op: 'PositionalEmbedding',
            noun: 'position',
            range: `${this.maxLength} positions`,
          }),
        ),
      );
    }
    if (!Number.isInteger(offset) || offset < 0 || offset + t > this.maxLength) {
      throw new FluxionError(
        'PositionalEmbedding',
        `positions ${offset}…${offset + t - 1} of input ${fmtShape(x.shape)} exceed maxLength ${this.maxLength}`,
      );
    }
    return scope(() => add(x, this.weight.slice([offset, offset + t])));
  }

  override toString(): string {
    return `PositionalEmbedding(${this.maxLength}, ${this.dim})`;
  }
}

/** Options of {@link TransformerBlock}. */
export interface TransformerBlockOptions extends RandomOptions {
  /** Hidden width of the MLP as a multiple of `dim` (default 4). */
  mlpRatio?: number;
  /** Causal self-attention (default false, as PyTorch; a language model wants true). */
  causal?: boolean;
  /** Dropout on the attention weights and on both residual branches while training (default 0). */
  dropout?: number;
  /** Biases in the projections (default true). */
  bias?: boolean;
  /** LayerNorm's ε (default 1e-5). */
  eps?: number;
  /** GELU exact (default) or its tanh approximation (GPT-2's). */
  approximate?: 'none' | 'tanh';
}

/**
 * A pre-LayerNorm Transformer block (GPT-2's):
 * `h = x + drop(attn(LN₁(x)))`, then `y = h + drop(W₂ gelu(W₁ LN₂(h) + b₁) + b₂)`.
 *
 * Args:
 *   dim: the model width.
 *   numHeads: attention heads (`dim` must be a multiple).
 *   options.mlpRatio: the MLP's hidden width is `mlpRatio · dim` (default 4).
 *   options.causal: causal self-attention (default false).
 *   options.dropout: dropout on the attention weights and on each branch's output (default 0).
 *   options.bias (true), options.eps (1e-5), options.approximate (`'none'`).
 *   options.seed / options.generator: one stream for every initialisation and dropout mask; dtype, backend.
 *
 * Shape:
 *   `[B, T, dim]` → `[B, T, dim]`.
 *
 * Attributes:
 *   ln1, attn ({@link MultiheadSelfAttention}), ln2, fc1 (`dim → mlpRatio·dim`), fc2 (back to `dim`).
 *
 * @example
 * ```ts
 * const block = new TransformerBlock(64, 4, { causal: true, dropout: 0.1, seed: 0 });
 * block.forward(randn([8, 32, 64])).shape; // [8, 32, 64]
 * ```
 */
export class TransformerBlock extends Module<[Tensor, Tensor?]> {
  readonly ln1: LayerNorm;
  readonly attn: MultiheadSelfAttention;
  readonly ln2: LayerNorm;
  readonly fc1: Dense;
  readonly fc2: Dense;
  readonly residDropout: Dropout;
  readonly approximate: 'none' | 'tanh';

  constructor(
    readonly dim: number,
    readonly numHeads: number,
    options: TransformerBlockOptions = {},
  ) {
    super();
    const {
      mlpRatio = 4,
      causal = false,
      dropout = 0,
      bias = true,
      eps = 1e-5,
      approximate = 'none',
    } = options;
    const hidden = Math.round(mlpRatio * dim);
    if (!(mlpRatio > 0) || !Number.isFinite(mlpRatio) || hidden < 1) {
      throw new FluxionError('TransformerBlock', `mlpRatio must be positive and finite, got ${mlpRatio}`);
    }
    const random = layerRandom(options);
    const norm = { eps, dtype: options.dtype, backend: options.backend };
    this.approximate = approximate;
    this.ln1 = new LayerNorm(dim, norm);
    this.attn = new MultiheadSelfAttention(dim, numHeads, { ...random, causal, bias, dropout });
    this.ln2 = new LayerNorm(dim, norm);
    this.fc1 = new Dense(dim, hidden, { ...random, bias });
    this.fc2 = new Dense(hidden, dim, { ...random, bias });
    this.residDropout = new Dropout(dropout, { generator: random.generator });
  }

  /** `mask`: an extra bool attention mask (true = blocked), see {@link MultiheadSelfAttention}. */
  forward(x: Tensor, mask?: Tensor): Tensor {
    return scope(() => {
      const h = add(x, this.residDropout.forward(this.attn.forward(this.ln1.forward(x), mask)));
      const mlp = this.fc2.forward(gelu(this.fc1.forward(this.ln2.forward(h)), this.approximate));
      return add(h, this.residDropout.forward(mlp));
    });
  }

  override toString(): string {
    return `TransformerBlock(${this.dim}, heads=${this.numHeads}${this.attn.causal ? ', causal' : ''})`;
  }
}

/**
 * Ties an output layer to a token embedding (Press & Wolf, 2017; GPT-2): `output.weight` becomes
 * the embedding's weight itself, so the logits are `y = x Eᵀ (+ b)` with `E` the `[vocab, dim]`
 * table, which is already the `[out, in]` layout of a {@link Dense}. One {@link Parameter} then
 * serves both uses: the gradients of the lookup and of the product accumulate into its one `.grad`,
 * an optimizer updates it once, and a state dict saves it once (under the name met first). The
 * output layer's own weight is disposed; its bias stays its own.
 *
 * Args:
 *   output: a Dense `dim → vocab`.
 *   embedding: an Embedding `vocab → dim` of the same dtype and backend.
 *
 * Returns: `output`.
 *
 * @example
 * ```ts
 * const tokens = new Embedding(65, 64, { seed: 0 });
 * const head = tieWeights(new Dense(64, 65, { bias: false }), tokens);
 * head.weight === tokens.weight; // true
 * ```
 */
export function tieWeights(output: Dense, embedding: Embedding): Dense {
  const e = embedding.weight;
  const w = output.weight;
  if (
    output.outFeatures !== embedding.numEmbeddings ||
    output.inFeatures !== embedding.embeddingDim ||
    w.dtype !== e.dtype ||
    w.backend !== e.backend
  ) {
    throw new FluxionError(
      'tieWeights',
      `the output layer's weight ${fmtShape(w.shape)} ${w.dtype} on ${w.backend.name} must match the embedding's ${fmtShape(e.shape)} ${e.dtype} on ${e.backend.name}`,
    );
  }
  if (w !== e) {
    (output as { weight: Parameter }).weight = e;
    w.dispose();
  }
  return output;
}
