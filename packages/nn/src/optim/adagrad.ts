/**
 * Adagrad (Duchi et al. 2011) with learning-rate decay and L2 weight decay, as PyTorch.
 */
import { add, div, full, mul, sqrt, square, sub, type Tensor } from '@fluxion/tensor';
import {
  Optimizer,
  type ParamGroup,
  type ParamGroupSpec,
  type ParamState,
  type UpdateResult,
} from './optimizer.js';

/** Hyper-parameters of {@link Adagrad}. */
export type AdagradOptions = {
  /** Learning rate (default 0.01). */
  lr: number;
  /** Decay of the learning rate with the step count (default 0). */
  lrDecay: number;
  /** L2 penalty λ added to the gradient (default 0). */
  weightDecay: number;
  /** Starting value of the sum of squares (default 0). */
  initialAccumulatorValue: number;
  /** Added to the denominator (default 1e-10). */
  eps: number;
};

/**
 * Adagrad: with `g = ∇f(θ) + λθ` at step t, `s ← s + g²`,
 * `θ ← θ − lr / (1 + (t − 1)·lrDecay) · g / (√s + ε)`.
 *
 * Args:
 *   params: parameters, or parameter groups.
 *   options: lr (0.01), lrDecay (0), weightDecay (0), initialAccumulatorValue (0), eps (1e-10).
 *
 * @example
 * ```ts
 * const opt = new Adagrad(model.parameters(), { lr: 0.1 });
 * ```
 */
export class Adagrad extends Optimizer<AdagradOptions> {
  override get name(): string {
    return 'Adagrad';
  }

  constructor(
    params: Iterable<Tensor> | readonly ParamGroupSpec<AdagradOptions>[],
    options: Partial<AdagradOptions> = {},
  ) {
    super(params, {
      lr: 0.01,
      lrDecay: 0,
      weightDecay: 0,
      initialAccumulatorValue: 0,
      eps: 1e-10,
      ...options,
    });
  }

  protected initState(param: Tensor, group: ParamGroup<AdagradOptions>): Record<string, Tensor> {
    const options = { dtype: param.dtype, backend: param.backend.name };
    return { sum: full(param.shape, group.initialAccumulatorValue, options) };
  }

  protected update(
    param: Tensor,
    grad: Tensor,
    state: ParamState,
    group: ParamGroup<AdagradOptions>,
  ): UpdateResult {
    const { lr, lrDecay, weightDecay, eps } = group;
    const g = weightDecay ? add(grad, mul(param, weightDecay)) : grad;
    const clr = lr / (1 + (state.step - 1) * lrDecay);
    const sum = add(state.tensors.sum, square(g));
    return { param: sub(param, mul(div(g, add(sqrt(sum), eps)), clr)), state: { sum } };
  }
}
