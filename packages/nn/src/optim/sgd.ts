/**
 * Stochastic gradient descent with momentum, dampening, Nesterov momentum and L2 weight decay,
 * with PyTorch's update rule.
 */
import { FluxionError, type Tensor, zerosLike } from '@fluxion/tensor';
import {
  Optimizer,
  type ParamGroup,
  type ParamGroupSpec,
  type ParamState,
  type UpdatePlan,
  updateProgram,
} from './optimizer.js';

/** Hyper-parameters of {@link SGD}. */
export type SGDOptions = {
  /** Learning rate. */
  lr: number;
  /** Momentum factor μ (default 0). */
  momentum: number;
  /** Dampening of the momentum's gradient term τ (default 0). */
  dampening: number;
  /** Nesterov momentum (default false; needs momentum > 0 and dampening 0). */
  nesterov: boolean;
  /** L2 penalty λ added to the gradient (default 0). */
  weightDecay: number;
};

/**
 * SGD: with `g = ∇f(θ) + λθ`,
 * `b ← μb + (1 − τ)g` (`b = g` on the first step), `d = g + μb` (Nesterov) or `d = b`
 * (with momentum) or `d = g`, then `θ ← θ − lr·d`.
 *
 * Args:
 *   params: parameters, or parameter groups `{ params, ...hyper-parameters }`.
 *   options: lr (required), momentum (0), dampening (0), nesterov (false), weightDecay (0).
 *
 * @example
 * ```ts
 * const opt = new SGD(model.parameters(), { lr: 0.1, momentum: 0.9, nesterov: true });
 * ```
 */
export class SGD extends Optimizer<SGDOptions> {
  override get name(): string {
    return 'SGD';
  }

  constructor(
    params: Iterable<Tensor> | readonly ParamGroupSpec<SGDOptions>[],
    options: Partial<SGDOptions> & { lr: number },
  ) {
    super(params, { momentum: 0, dampening: 0, nesterov: false, weightDecay: 0, ...options });
  }

  protected override validate(group: SGDOptions): void {
    super.validate(group);
    if (group.nesterov && (group.momentum <= 0 || group.dampening !== 0)) {
      throw new FluxionError('SGD', 'Nesterov momentum needs momentum > 0 and dampening 0');
    }
  }

  protected initState(param: Tensor, group: ParamGroup<SGDOptions>): Record<string, Tensor> {
    return group.momentum > 0 ? { momentumBuffer: zerosLike(param) } : {};
  }

  protected plan(state: ParamState, group: ParamGroup<SGDOptions>): UpdatePlan {
    const { lr, momentum, dampening, nesterov, weightDecay } = group;
    const g = weightDecay > 0 ? 'g = grad + weightDecay * param' : 'g = grad';
    if (!(momentum > 0)) {
      return {
        program: updateProgram(
          this.name,
          ['param', 'grad'],
          ['lr', 'weightDecay'],
          [g, 'param = param - lr * g'],
        ),
        scalars: { lr, weightDecay },
      };
    }
    // The first step starts the buffer at the gradient itself (PyTorch), later ones average into it.
    const first = state.step === 1;
    const scalars = {
      lr,
      weightDecay,
      momentum,
      bufferScale: first ? 0 : momentum,
      gradScale: first ? 1 : 1 - dampening,
    };
    const body = [
      g,
      'momentumBuffer = bufferScale * momentumBuffer + gradScale * g',
      `param = param - lr * ${nesterov ? '(g + momentum * momentumBuffer)' : 'momentumBuffer'}`,
    ];
    const names = Object.keys(scalars);
    return { program: updateProgram(this.name, ['param', 'grad', 'momentumBuffer'], names, body), scalars };
  }
}
