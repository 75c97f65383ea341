/**
 * Gradient clipping, in place on `.grad` through `assign()` and without reading values back to
 * the host: the clip coefficient stays a tensor.
 */
import { noGrad } from '@fluxion/autograd';
import {
  abs,
  add,
  clamp,
  div,
  FluxionError,
  full,
  max,
  minimum,
  mul,
  pow,
  scope,
  stack,
  sum,
  type Tensor,
} from '@fluxion/tensor';

/**
 * Rescales the gradients of `params` so that their total norm (as if concatenated into one vector)
 * is at most `maxNorm`: every gradient is multiplied by `min(1, maxNorm / (norm + 1e-6))`.
 * Parameters without a gradient are skipped.
 *
 * Args:
 *   params: the parameters (e.g. `model.parameters()`).
 *   maxNorm: the largest allowed norm.
 *   normType: p of the p-norm (default 2; `Infinity` for the largest absolute value).
 *
 * Returns the total norm before clipping, as a scalar tensor (read it with `await norm.item()`).
 *
 * @example
 * ```ts
 * loss.backward();
 * clipGradNorm(model.parameters(), 1.0);
 * opt.step();
 * ```
 */
export function clipGradNorm(params: Iterable<Tensor>, maxNorm: number, normType = 2): Tensor {
  if (!(maxNorm >= 0)) throw new FluxionError('clipGradNorm', `maxNorm must be ≥ 0, got ${maxNorm}`);
  if (!(normType > 0)) throw new FluxionError('clipGradNorm', `normType must be > 0, got ${normType}`);
  const grads = [...params].flatMap((p) => (p.grad ? [p.grad] : []));
  return noGrad(() =>
    scope(() => {
      if (grads.length === 0) return full([], 0);
      const dtype = grads[0].dtype;
      const backend = grads[0].backend.name;
      const norms = grads.map((g) =>
        normType === Number.POSITIVE_INFINITY ? max(abs(g)) : sum(pow(abs(g), normType)),
      );
      const total =
        normType === Number.POSITIVE_INFINITY ? max(stack(norms)) : pow(sum(stack(norms)), 1 / normType);
      const coef = minimum(div(full([], maxNorm, { dtype, backend }), add(total, 1e-6)), 1);
      for (const g of grads) g.assign(mul(g, coef));
      return total;
    }),
  );
}

/**
 * Clamps every gradient element of `params` to `[−clipValue, clipValue]`.
 *
 * @example
 * ```ts
 * clipGradValue(model.parameters(), 0.5);
 * ```
 */
export function clipGradValue(params: Iterable<Tensor>, clipValue: number): void {
  if (!(clipValue >= 0)) throw new FluxionError('clipGradValue', `clipValue must be ≥ 0, got ${clipValue}`);
  noGrad(() => {
    for (const p of params) {
      const g = p.grad;
      if (g) scope(() => g.assign(clamp(g, -clipValue, clipValue)));
    }
  });
}
