/**
 * RMSprop (Hinton's lecture 6e), centred or not, with momentum and L2 weight decay, as PyTorch.
 */
import { type Tensor, zerosLike } from '@fluxion/tensor';
import {
  Optimizer,
  type ParamGroup,
  type ParamGroupSpec,
  type ParamState,
  type UpdatePlan,
  updateProgram,
} from './optimizer.js';

/** Hyper-parameters of {@link RMSprop}. */
export type RMSpropOptions = {
  /** Learning rate (default 0.01). */
  lr: number;
  /** Decay α of the squared-gradient average (default 0.99). */
  alpha: number;
  /** Added to the denominator (default 1e-8). */
  eps: number;
  /** L2 penalty λ added to the gradient (default 0). */
  weightDecay: number;
  /** Momentum μ (default 0). */
  momentum: number;
  /** Normalise by the variance estimate `v − ḡ²` instead of `v` (default false). */
  centered: boolean;
};

/**
 * RMSprop: with `g = ∇f(θ) + λθ`, `v ← αv + (1 − α)g²`; centred: `ḡ ← αḡ + (1 − α)g` and
 * `s = √(v − ḡ²) + ε`, else `s = √v + ε`; with momentum `b ← μb + g/s`, `θ ← θ − lr·b`, else
 * `θ ← θ − lr·g/s`.
 *
 * Args:
 *   params: parameters, or parameter groups.
 *   options: lr (0.01), alpha (0.99), eps (1e-8), weightDecay (0), momentum (0), centered (false).
 *
 * @example
 * ```ts
 * const opt = new RMSprop(critic.parameters(), { lr: 5e-5 });
 * ```
 */
export class RMSprop extends Optimizer<RMSpropOptions> {
  override get name(): string {
    return 'RMSprop';
  }

  constructor(
    params: Iterable<Tensor> | readonly ParamGroupSpec<RMSpropOptions>[],
    options: Partial<RMSpropOptions> = {},
  ) {
    super(params, {
      lr: 0.01,
      alpha: 0.99,
      eps: 1e-8,
      weightDecay: 0,
      momentum: 0,
      centered: false,
      ...options,
    });
  }

  protected initState(param: Tensor, group: ParamGroup<RMSpropOptions>): Record<string, Tensor> {
    const state: Record<string, Tensor> = { squareAvg: zerosLike(param) };
    if (group.centered) state.gradAvg = zerosLike(param);
    if (group.momentum > 0) state.momentumBuffer = zerosLike(param);
    return state;
  }

  protected plan(_state: ParamState, group: ParamGroup<RMSpropOptions>): UpdatePlan {
    const { lr, alpha, eps, weightDecay, momentum, centered } = group;
    const withMomentum = momentum > 0;
    const body = [
      weightDecay > 0 ? 'g = grad + weightDecay * param' : 'g = grad',
      'squareAvg = alpha * squareAvg + (1.0 - alpha) * g * g',
      ...(centered
        ? ['gradAvg = alpha * gradAvg + (1.0 - alpha) * g', 'variance = squareAvg - gradAvg * gradAvg']
        : ['variance = squareAvg']),
      'scaled = g / (sqrt(variance) + eps)',
      ...(withMomentum
        ? ['momentumBuffer = momentum * momentumBuffer + scaled', 'param = param - lr * momentumBuffer']
        : ['param = param - lr * scaled']),
    ];
    const inputs = [
      'param',
      'grad',
      'squareAvg',
      ...(centered ? ['gradAvg'] : []),
      ...(withMomentum ? ['momentumBuffer'] : []),
    ];
    const scalars = ['lr', 'alpha', 'eps', 'weightDecay', 'momentum'];
    return {
      program: updateProgram(this.name, inputs, scalars, body),
      scalars: { lr, alpha, eps, weightDecay, momentum },
    };
  }
}
