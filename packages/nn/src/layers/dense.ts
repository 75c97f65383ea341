/**
 * The fully connected layer, `y = x Wᵀ + b`, with PyTorch's weight layout and default
 * initialisation.
 */
import { FluxionError, fmtShape, linear, type RandomOptions, scope, type Tensor } from '@fluxion/tensor';
import { type ActivationFn, type ActivationName, getActivation } from '../activations.js';
import { kaimingUniform, uniform } from '../init.js';
import { Module, Parameter } from '../module.js';
import { layerRandom } from './common.js';

/** Options of {@link Dense}. */
export interface DenseOptions extends RandomOptions {
  /** Whether to add a learnable bias (default true). */
  bias?: boolean;
  /** Applied to the output (by name or as a function); none by default. */
  activation?: ActivationName | ActivationFn;
}

/**
 * Fully connected layer: `y = act(x Wᵀ + b)`.
 *
 * Args:
 *   inFeatures: size of each input sample.
 *   outFeatures: size of each output sample.
 *   options.bias: add a learnable bias (default true).
 *   options.activation: optional activation applied to the output (`'relu'`, `'tanh'`, … or a function).
 *   options.seed / options.generator: random stream of the initialisation; dtype, backend: of the parameters.
 *
 * Shape:
 *   input `[..., inFeatures]` → output `[..., outFeatures]`.
 *
 * Attributes:
 *   weight: `[outFeatures, inFeatures]`, initialised as PyTorch does: kaiming-uniform with
 *   a = √5, i.e. U(−1/√inFeatures, 1/√inFeatures).
 *   bias: `[outFeatures]`, U(−1/√inFeatures, 1/√inFeatures).
 *
 * @example
 * ```ts
 * const fc = new Dense(784, 256, { activation: 'relu', seed: 0 });
 * fc.forward(randn([64, 784])).shape; // [64, 256]
 * ```
 */
export class Dense extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter | null;
  private readonly activationFn: ActivationFn | null;

  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    options: DenseOptions = {},
  ) {
    super();
    const { bias = true, activation } = options;
    const random = layerRandom(options);
    for (const n of [inFeatures, outFeatures]) {
      if (!Number.isInteger(n) || n <= 0) {
        throw new FluxionError(
          'Dense',
          `feature sizes must be positive integers, got ${inFeatures} → ${outFeatures}`,
        );
      }
    }
    this.activationFn = getActivation(activation);
    this.weight = scope(
      () => new Parameter(kaimingUniform([outFeatures, inFeatures], { ...random, a: Math.sqrt(5) })),
    );
    const bound = 1 / Math.sqrt(inFeatures);
    this.bias = bias
      ? scope(() => new Parameter(uniform([outFeatures], { ...random, low: -bound, high: bound })))
      : null;
  }

  forward(x: Tensor): Tensor {
    if (x.rank < 1 || x.shape[x.rank - 1] !== this.inFeatures) {
      throw new FluxionError(
        'Dense',
        `expected input [..., ${this.inFeatures}], got ${fmtShape(x.shape)} ${x.dtype}`,
      );
    }
    return scope(() => {
      const y = linear(x, this.weight, this.bias ?? undefined);
      return this.activationFn ? this.activationFn(y) : y;
    });
  }

  override toString(): string {
    return `Dense(${this.inFeatures} → ${this.outFeatures})`;
  }
}

/** PyTorch's name for {@link Dense}. */
export const Linear = Dense;
/** PyTorch's name for {@link Dense}. */
export type Linear = Dense;
