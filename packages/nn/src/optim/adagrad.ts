/**
 * Adagrad (Duchi et al. 2011) with learning-rate decay and L2 weight decay, as PyTorch.
 */
import { full, type Tensor } from '@fluxion/tensor';
import {
  Optimizer,
  type ParamGroup,
  type ParamGroupSpec,
  type ParamState,
  type UpdatePlan,
  updateProgram,
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

  protected plan(state: ParamState, group: ParamGroup<AdagradOptions>): UpdatePlan {
    const { lr, lrDecay, weightDecay, eps } = group;
    const body = [
      weightDecay > 0 ? 'g = grad + weightDecay * param' : 'g = grad',
      'sum = sum + g * g',
      'param = param - clr * (g / (sqrt(sum) + eps))',
    ];
    return {
      program: updateProgram(this.name, ['param', 'grad', 'sum'], ['clr', 'weightDecay', 'eps'], body),
      scalars: { clr: lr / (1 + (state.step - 1) * lrDecay), weightDecay, eps },
    };
  }
}
