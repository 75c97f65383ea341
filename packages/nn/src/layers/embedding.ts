/**
 * `Embedding`: a lookup table of vectors indexed by int32 ids, built on the `take` primitive.
 */
import {
  arange,
  equal,
  FluxionError,
  type RandomOptions,
  scope,
  type Tensor,
  take,
  unsqueeze,
  where,
} from '@fluxion/tensor';
import { normal } from '../init.js';
import { Module, Parameter } from '../module.js';
import { layerRandom } from './common.js';

/** Options of {@link Embedding}. */
export interface EmbeddingOptions extends RandomOptions {
  /** An id whose vector is zero and gets no gradient (e.g. padding). */
  paddingIdx?: number;
}

/**
 * `y[..., :] = weight[ids[...], :]`.
 *
 * Every id must lie in [0, numEmbeddings), as in PyTorch: any other raises a FluxionError naming
 * `Embedding`, the id and the table size, on the CPU at once and on WebGPU at the next read or
 * sync (the ids live on the device there; see `take`).
 *
 * Args:
 *   numEmbeddings: size of the table (ids lie in [0, numEmbeddings)).
 *   embeddingDim: size of each vector.
 *   options.paddingIdx: an id that maps to zeros and receives no gradient.
 *
 * Shape:
 *   int32 ids of any shape `[...]` → `[..., embeddingDim]`.
 *
 * Attributes:
 *   weight: `[numEmbeddings, embeddingDim]`, initialised N(0, 1) as in PyTorch.
 *
 * @example
 * ```ts
 * const emb = new Embedding(10, 4, { seed: 0 });
 * emb.forward(tensor([[1, 2], [3, 9]], { dtype: 'int32' })).shape; // [2, 2, 4]
 * emb.forward(tensor([10], { dtype: 'int32' })); // Embedding: id 10 is out of range for a table of 10 embeddings; valid: [0, 10)
 * ```
 */
export class Embedding extends Module {
  readonly weight: Parameter;
  readonly paddingIdx: number | undefined;

  constructor(
    readonly numEmbeddings: number,
    readonly embeddingDim: number,
    options: EmbeddingOptions = {},
  ) {
    super();
    const { paddingIdx } = options;
    if (
      paddingIdx !== undefined &&
      !(Number.isInteger(paddingIdx) && paddingIdx >= 0 && paddingIdx < numEmbeddings)
    ) {
      throw new FluxionError('Embedding', `paddingIdx ${paddingIdx} is not an id in [0, ${numEmbeddings})`);
    }
    this.paddingIdx = paddingIdx;
    this.weight = scope(() => {
      let w = normal([numEmbeddings, embeddingDim], layerRandom(options));
      if (paddingIdx !== undefined) {
        const rows = arange(numEmbeddings, undefined, 1, { dtype: 'int32', backend: w.backend.name });
        w = where(unsqueeze(equal(rows, paddingIdx), -1), 0, w);
      }
      return new Parameter(w);
    });
  }

  forward(ids: Tensor): Tensor {
    if (ids.dtype !== 'int32') throw new FluxionError('Embedding', `ids must be int32, got ${ids.dtype}`);
    return scope(() => {
      const out = take(this.weight, ids, 0, {
        op: 'Embedding',
        noun: 'id',
        range: `a table of ${this.numEmbeddings} embeddings`,
      });
      if (this.paddingIdx === undefined) return out;
      return where(unsqueeze(equal(ids, this.paddingIdx), -1), 0, out);
    });
  }
}
