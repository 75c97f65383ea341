/**
 * Adam (with AMSGrad and L2 weight decay) and AdamW (decoupled weight decay), with PyTorch's
 * update rules and defaults.
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

/** Hyper-parameters of {@link Adam} and {@link AdamW}. */
export type AdamOptions = {
  /** Learning rate (default 1e-3). */
  lr: number;
  /** Decay of the first-moment average β₁ (default 0.9). */
  beta1: number;
  /** Decay of the second-moment average β₂ (default 0.999). */
  beta2: number;
  /** Added to the denominator (default 1e-8). */
  eps: number;
  /** Weight decay λ: an L2 term in Adam (default 0), decoupled in AdamW (default 0.01). */
  weightDecay: number;
  /** Use the maximum of past second moments (AMSGrad, default false). */
  amsgrad: boolean;
};

/**
 * Adam (Kingma & Ba 2015). With `g = ∇f(θ) + λθ` (L2 weight decay) at step t:
 * `m ← β₁m + (1 − β₁)g`, `v ← β₂v + (1 − β₂)g²`, `v̂ = max(v̂, v)` with AMSGrad else `v`,
 * `θ ← θ − lr/(1 − β₁ᵗ) · m / (√v̂ / √(1 − β₂ᵗ) + ε)`.
 *
 * Args:
 *   params: parameters, or parameter groups `{ params, ...hyper-parameters }`.
 *   options: lr (1e-3), beta1 (0.9), beta2 (0.999), eps (1e-8), weightDecay (0), amsgrad (false).
 *
 * @example
 * ```ts
 * const opt = new Adam(generator.parameters(), { lr: 2e-4, beta1: 0.5 });
 * ```
 */
export class Adam extends Optimizer<AdamOptions> {
  /** Whether weight decay is decoupled from the gradient (AdamW). */
  protected readonly decoupled: boolean = false;

  override get name(): string {
    return 'Adam';
  }

  constructor(
    params: Iterable<Tensor> | readonly ParamGroupSpec<AdamOptions>[],
    options: Partial<AdamOptions> = {},
  ) {
    super(params, {
      lr: 1e-3,
      beta1: 0.9,
      beta2: 0.999,
      eps: 1e-8,
      weightDecay: 0,
      amsgrad: false,
      ...options,
    });
  }

  protected override validate(group: AdamOptions): void {
    super.validate(group);
    for (const key of ['beta1', 'beta2'] as const) {
      if (!(group[key] < 1))
        throw new FluxionError(this.name, `${key} must lie in [0, 1), got ${group[key]}`);
    }
  }

  protected initState(param: Tensor, group: ParamGroup<AdamOptions>): Record<string, Tensor> {
    const state: Record<string, Tensor> = { expAvg: zerosLike(param), expAvgSq: zerosLike(param) };
    if (group.amsgrad) state.maxExpAvgSq = zerosLike(param);
    return state;
  }

  protected plan(state: ParamState, group: ParamGroup<AdamOptions>): UpdatePlan {
    const { lr, beta1, beta2, eps, weightDecay, amsgrad } = group;
    const t = state.step;
    const decay = weightDecay > 0;
    const body = [
      decay && !this.decoupled ? 'g = grad + weightDecay * param' : 'g = grad',
      decay && this.decoupled ? 'param = param * (1.0 - lr * weightDecay)' : '',
      'expAvg = beta1 * expAvg + (1.0 - beta1) * g',
      'expAvgSq = beta2 * expAvgSq + (1.0 - beta2) * g * g',
      amsgrad ? 'maxExpAvgSq = max(maxExpAvgSq, expAvgSq)' : '',
      `param = param - stepSize * (expAvg / (sqrt(${amsgrad ? 'maxExpAvgSq' : 'expAvgSq'}) / rootCorrection2 + eps))`,
    ].filter(Boolean);
    const inputs = ['param', 'grad', 'expAvg', 'expAvgSq', ...(amsgrad ? ['maxExpAvgSq'] : [])];
    const scalars = ['lr', 'beta1', 'beta2', 'eps', 'weightDecay', 'stepSize', 'rootCorrection2'];
    return {
      program: updateProgram(this.name, inputs, scalars, body),
      scalars: {
        lr,
        beta1,
        beta2,
        eps,
        weightDecay,
        stepSize: lr / (1 - beta1 ** t),
        rootCorrection2: Math.sqrt(1 - beta2 ** t),
      },
    };
  }
}

/**
 * AdamW (Loshchilov & Hutter 2019): Adam whose weight decay shrinks the parameters directly,
 * `θ ← θ(1 − lr·λ)`, before the Adam step on the plain gradient, instead of adding `λθ` to the
 * gradient (where Adam's normalisation would rescale it).
 *
 * Args:
 *   params: parameters, or parameter groups.
 *   options: as {@link Adam}, with weightDecay defaulting to 0.01.
 *
 * @example
 * ```ts
 * const opt = new AdamW(model.parameters(), { lr: 1e-3, weightDecay: 0.05 });
 * ```
 */
export class AdamW extends Adam {
  override get name(): string {
    return 'AdamW';
  }

  protected override readonly decoupled: boolean = true;

  constructor(
    params: Iterable<Tensor> | readonly ParamGroupSpec<AdamOptions>[],
    options: Partial<AdamOptions> = {},
  ) {
    super(params, { weightDecay: 0.01, ...options });
  }
}
