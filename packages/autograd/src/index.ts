/**
 * `@fluxion/autograd`: reverse-mode automatic differentiation for `@fluxion/tensor`.
 *
 * Importing it installs the graph recorder and the Tensor methods `backward`, `retainGrad`,
 * `detach` and `zeroGrad`. PyTorch-style: set `requiresGrad` on leaves, call `loss.backward()`,
 * read `.grad`. JAX-style: `grad(f)`, `valueAndGrad(f)`, `vjp(f, ...primals)`. And `gradcheck` /
 * `gradgradcheck` to compare gradients with finite differences.
 *
 * @example
 * ```ts
 * import { tensor, sum, mul } from '@fluxion/tensor';
 * import { grad } from '@fluxion/autograd';
 * const dx = grad((x) => sum(mul(x, x)))(tensor([1, 2, 3])); // [2, 4, 6]
 * ```
 *
 * @module
 */
import './tensor-methods.js';

export { type BackwardOptions, backward, type GradientsOptions, gradients } from './backward.js';
export { grad, valueAndGrad, vjp } from './functional.js';
export {
  GradcheckError,
  type GradcheckMismatch,
  type GradcheckOptions,
  type GradcheckReport,
  gradcheck,
  gradgradcheck,
} from './gradcheck.js';
export {
  detach,
  enableGrad,
  GradNode,
  type GradTarget,
  type InputMeta,
  isGradEnabled,
  noGrad,
} from './graph.js';
export { sumToShape, VJPS, type VjpContext, type VjpRule, type VjpTable } from './vjps.js';
