/**
 * Activation modules agree with their functions, and `Dense` resolves activation names.
 */
import {
  ELU,
  GELU,
  getActivation,
  LeakyReLU,
  LogSoftmax,
  ReLU,
  Sigmoid,
  SiLU,
  Softmax,
  Softplus,
  Tanh,
} from '@fluxion/nn';
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
  tanh,
} from '@fluxion/tensor';
import { describe, expect, it } from 'vitest';
import { seeded, values } from './helpers.js';

describe('activation modules', () => {
  const x = seeded([3, 4], 1);
  it.each([
    ['ReLU', new ReLU(), relu(x)],
    ['LeakyReLU(0.2)', new LeakyReLU(0.2), leakyRelu(x, 0.2)],
    ['ELU(0.5)', new ELU(0.5), elu(x, 0.5)],
    ['GELU', new GELU(), gelu(x)],
    ['GELU(tanh)', new GELU('tanh'), gelu(x, 'tanh')],
    ['SiLU', new SiLU(), silu(x)],
    ['Sigmoid', new Sigmoid(), sigmoid(x)],
    ['Tanh', new Tanh(), tanh(x)],
    ['Softplus', new Softplus(), softplus(x)],
    ['Softmax(0)', new Softmax(0), softmax(x, 0)],
    ['LogSoftmax', new LogSoftmax(), logSoftmax(x, -1)],
  ] as const)('%s equals its function', async (_name, module, expected) => {
    expect(await values(module.forward(x))).toEqual(await values(expected));
    expect(module.parameters()).toEqual([]);
  });

  it('getActivation resolves names and functions', async () => {
    expect(getActivation(undefined)).toBeNull();
    expect(getActivation('linear')).toBeNull();
    expect(getActivation(relu)).toBe(relu);
    expect(await values((getActivation('geluTanh') as (t: typeof x) => typeof x)(x))).toEqual(
      await values(gelu(x, 'tanh')),
    );
    // biome-ignore lint/suspicious/noExplicitAny: testing a bad name
    expect(() => getActivation('swish' as any)).toThrow(FluxionError);
  });
});
