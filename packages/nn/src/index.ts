/**
 * `@fluxion/nn`: modules and layers, activations, losses, initialisers, optimizers, learning-rate
 * schedules, gradient clipping and safetensors serialisation, built on `@fluxion/tensor` and
 * `@fluxion/autograd`.
 *
 * @example
 * ```ts
 * import { randn } from '@fluxion/tensor';
 * import { Adam, Dense, mseLoss, Sequential, Tanh } from '@fluxion/nn';
 * const model = new Sequential(new Dense(2, 16), new Tanh(), new Dense(16, 1));
 * const opt = new Adam(model.parameters(), { lr: 1e-2 });
 * const x = randn([64, 2]);
 * const loss = mseLoss(model.forward(x), x.sum(1, true));
 * loss.backward();
 * opt.step();
 * ```
 *
 * @module
 */
import '@fluxion/autograd';

export * from './activations.js';
export * from './clip.js';
export * as init from './init.js';
export {
  calculateGain,
  computeFans,
  constant,
  glorotNormal,
  glorotUniform,
  heNormal,
  heUniform,
  kaimingNormal,
  kaimingUniform,
  type Nonlinearity,
  normal,
  orthogonal,
  uniform,
  xavierNormal,
  xavierUniform,
} from './init.js';
export * from './layers/attention.js';
export type { Size2 } from './layers/common.js';
export * from './layers/conv.js';
export * from './layers/conv1d.js';
export * from './layers/dense.js';
export * from './layers/dropout.js';
export * from './layers/embedding.js';
export * from './layers/norm.js';
export * from './layers/phase-shuffle.js';
export * from './layers/pool.js';
export * from './layers/recurrent.js';
export * from './layers/reshape.js';
export * from './layers/sequential.js';
export * from './layers/transformer.js';
export * from './losses.js';
export * from './module.js';
export * from './optim/adagrad.js';
export * from './optim/adam.js';
export * from './optim/optimizer.js';
export * from './optim/rmsprop.js';
export * from './optim/sgd.js';
export * from './safetensors.js';
export * from './schedulers.js';
export { summary } from './summary.js';
