/**
 * Activations, as functions (re-exported from `@fluxion/tensor`, where they are composites of
 * primitives, so they need no kernel and no gradient code) and as modules for `Sequential`.
 */
import {
  elu,
  FluxionError,
  gelu,
  leakyRelu,
  logSoftmax,
  relu,
  sigmoid,
  silu,
  softmax,
  softplus,
  type Tensor,
  tanh,
} from '@fluxion/tensor';
import { Module } from './module.js';

export { elu, gelu, leakyRelu, logSoftmax, relu, sigmoid, silu, softmax, softplus, tanh };

/** An activation by name, as `Dense` accepts it. `geluTanh` is GELU's tanh approximation. */
export type ActivationName =
  | 'linear'
  | 'relu'
  | 'leakyRelu'
  | 'elu'
  | 'gelu'
  | 'geluTanh'
  | 'silu'
  | 'sigmoid'
  | 'tanh'
  | 'softplus'
  | 'softmax'
  | 'logSoftmax';

/** An activation function of one tensor. */
export type ActivationFn = (x: Tensor) => Tensor;

const ACTIVATIONS: Record<ActivationName, ActivationFn | null> = {
  linear: null,
  relu,
  leakyRelu: (x) => leakyRelu(x),
  elu: (x) => elu(x),
  gelu: (x) => gelu(x),
  geluTanh: (x) => gelu(x, 'tanh'),
  silu,
  sigmoid,
  tanh,
  softplus,
  softmax: (x) => softmax(x, -1),
  logSoftmax: (x) => logSoftmax(x, -1),
};

/**
 * The function of an activation name (null for `linear`), or the function itself.
 *
 * @example
 * ```ts
 * getActivation('relu')!(x);
 * ```
 */
export function getActivation(activation: ActivationName | ActivationFn | undefined): ActivationFn | null {
  if (activation === undefined) return null;
  if (typeof activation === 'function') return activation;
  const fn = ACTIVATIONS[activation];
  if (fn === undefined) {
    throw new FluxionError(
      'activation',
      `unknown name '${activation}' (expected one of ${Object.keys(ACTIVATIONS).join(', ')})`,
    );
  }
  return fn;
}

/** `ReLU(x) = max(x, 0)`. @example `new Sequential(new Dense(4, 8), new ReLU())` */
export class ReLU extends Module {
  forward(x: Tensor): Tensor {
    return relu(x);
  }
}

/**
 * `LeakyReLU(x) = x` for x > 0, else `negativeSlope · x`.
 *
 * Args:
 *   negativeSlope: slope for negative inputs (default 0.01; the seed GAN uses 0.2).
 *
 * @example
 * ```ts
 * new LeakyReLU(0.2).forward(tensor([-1, 2])); // [-0.2, 2]
 * ```
 */
export class LeakyReLU extends Module {
  constructor(readonly negativeSlope = 0.01) {
    super();
  }
  forward(x: Tensor): Tensor {
    return leakyRelu(x, this.negativeSlope);
  }
}

/** `ELU(x) = x` for x > 0, else `α (eˣ − 1)`. @example `new ELU(1)` */
export class ELU extends Module {
  constructor(readonly alpha = 1) {
    super();
  }
  forward(x: Tensor): Tensor {
    return elu(x, this.alpha);
  }
}

/**
 * `GELU(x) = x · Φ(x)` (exact, default) or its tanh approximation.
 *
 * @example
 * ```ts
 * new GELU('tanh').forward(x);
 * ```
 */
export class GELU extends Module {
  constructor(readonly approximate: 'none' | 'tanh' = 'none') {
    super();
  }
  forward(x: Tensor): Tensor {
    return gelu(x, this.approximate);
  }
}

/** `SiLU(x) = x · σ(x)`. @example `new SiLU().forward(x)` */
export class SiLU extends Module {
  forward(x: Tensor): Tensor {
    return silu(x);
  }
}

/** `Sigmoid(x) = 1 / (1 + e⁻ˣ)`, stable for any finite x. @example `new Sigmoid().forward(x)` */
export class Sigmoid extends Module {
  forward(x: Tensor): Tensor {
    return sigmoid(x);
  }
}

/** `Tanh(x)`. @example `new Tanh().forward(x)` */
export class Tanh extends Module {
  forward(x: Tensor): Tensor {
    return tanh(x);
  }
}

/** `Softplus(x) = log(1 + eˣ)`, stable for any finite x. @example `new Softplus().forward(x)` */
export class Softplus extends Module {
  forward(x: Tensor): Tensor {
    return softplus(x);
  }
}

/**
 * `Softmax(x)ᵢ = e^{xᵢ} / Σⱼ e^{xⱼ}` along `axis` (default −1).
 *
 * @example
 * ```ts
 * new Softmax(1).forward(logits);
 * ```
 */
export class Softmax extends Module {
  constructor(readonly axis = -1) {
    super();
  }
  forward(x: Tensor): Tensor {
    return softmax(x, this.axis);
  }
}

/** `LogSoftmax(x) = x − logSumExp(x)` along `axis` (default −1). @example `new LogSoftmax(1)` */
export class LogSoftmax extends Module {
  constructor(readonly axis = -1) {
    super();
  }
  forward(x: Tensor): Tensor {
    return logSoftmax(x, this.axis);
  }
}
