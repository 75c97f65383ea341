/**
 * Bad input gets a clear error, never a wrong answer: each error names the op and the shapes or
 * dtypes involved, and is a FluxionError.
 */
import * as T from '@fluxion/tensor';
import { FluxionError, type Tensor } from '@fluxion/tensor';
import { describe, expect, test } from 'vitest';

/** Asserts that `fn` throws a FluxionError from `op` whose message matches `message`. */
function expectError(fn: () => unknown, op: string, message: string | RegExp): void {
  let error: unknown;
  try {
    T.scope(() => {
      fn();
    });
  } catch (e) {
    error = e;
  }
  expect(error, 'expected an error').toBeInstanceOf(FluxionError);
  const e = error as FluxionError;
  expect(e.op).toBe(op);
  expect(e.message.startsWith(`${op}: `)).toBe(true);
  if (typeof message === 'string') expect(e.message).toBe(message);
  else expect(e.message).toMatch(message);
}

const z = (shape: number[], dtype: T.DType = 'float32') => T.zeros(shape, { dtype });

describe('shape errors', () => {
  test('matmul inner dimensions', () => {
    expectError(
      () => T.matmul(z([2, 3]), z([4, 5])),
      'matmul',
      'matmul: inner dimensions differ: [2,3] @ [4,5]',
    );
    expectError(() => T.matmul(z([3]), z([4])), 'matmul', 'matmul: inner dimensions differ: [3] @ [4]');
    expectError(
      () => T.matmul(z([2, 2, 3]), z([3, 3, 4])),
      'matmul',
      /shapes cannot be broadcast: \[2\] and \[3\]/,
    );
    expectError(() => T.matmul(z([]), z([3])), 'matmul', /need at least one axis, got \[\] @ \[3\]/);
  });

  test('linear: the weight, input and bias shapes', () => {
    expectError(
      () => T.linear(z([4, 3]), z([2, 5])),
      'linear',
      'linear: expected x [..., in] and weight [out, in], got [4,3] float32, [2,5] float32',
    );
    expectError(
      () => T.linear(z([4, 3]), z([2, 3]), z([3])),
      'linear',
      'linear: expected bias [2], got [4,3] float32, [2,3] float32, [3] float32',
    );
    expectError(
      () => T.linear(z([4, 3]), z([3])),
      'linear',
      /weight \[out, in\], got \[4,3\] float32, \[3\]/,
    );
    // The kernel's own check, for callers of runKernel.
    expectError(
      () => T.runKernel('matmul', [z([4, 3]), z([3, 2]), z([3])], {}),
      'matmul',
      /bias must be \[2\] \(one per column\), got \[4,3\] float32, \[3,2\] float32, \[3\] float32/,
    );
    expectError(
      () => T.runKernel('matmul', [z([4, 3])], {}),
      'matmul',
      'matmul: expected 2 inputs (3 with a bias), got 1',
    );
  });

  test('broadcast failures name both shapes', () => {
    expectError(() => T.add(z([2, 3]), z([4])), 'add', 'add: shapes cannot be broadcast: [2,3] and [4]');
    expectError(() => T.less(z([2]), z([3, 1, 5])), 'less', /\[2\] and \[3,1,5\]/);
    expectError(() => T.where(z([2], 'bool'), z([3]), z([2])), 'where', /shapes cannot be broadcast/);
    expectError(
      () => T.broadcastTo(z([2, 3]), [3]),
      'broadcastTo',
      'broadcastTo: cannot broadcast [2,3] to [3]',
    );
    expectError(() => T.expand(z([2, 3]), [4, 3]), 'expand', 'expand: cannot expand [2,3] to [4,3]');
    expectError(
      () => T.leakyReluGrad(z([2, 3]), z([4])),
      'leakyReluGrad',
      'leakyReluGrad: shapes cannot be broadcast: [2,3] and [4]',
    );
  });

  test('leakyRelu slopes must be finite numbers', () => {
    expectError(
      () => T.leakyRelu(z([2]), Number.NaN),
      'leakyRelu',
      'leakyRelu: slope must be a finite number, got NaN',
    );
    expectError(
      () => T.leakyReluGrad(z([2]), z([2]), Number.POSITIVE_INFINITY),
      'leakyReluGrad',
      /slope must be a finite number, got Infinity/,
    );
  });

  test('layerNorm: the normalised shape, weight and bias, eps', () => {
    expectError(
      () => T.layerNorm(z([4, 3]), z([4])),
      'layerNorm',
      'layerNorm: cannot normalise x [4,3] over the trailing shape [4]',
    );
    expectError(
      () => T.layerNorm(z([4, 3]), null, null, { normalizedShape: [4, 4, 3] }),
      'layerNorm',
      /cannot normalise x \[4,3\] over the trailing shape \[4,4,3\]/,
    );
    expectError(
      () => T.layerNorm(z([4, 3]), z([3]), z([2])),
      'layerNorm',
      'layerNorm: bias must have the normalised shape [3], got x [4,3] float32, weight [3] float32, bias [2] float32',
    );
    expectError(
      () => T.layerNorm(z([2, 4, 3]), null, z([3]), { normalizedShape: [4, 3] }),
      'layerNorm',
      /bias must have the normalised shape \[4,3\], got x \[2,4,3\] float32, bias \[3\] float32/,
    );
    expectError(() => T.layerNorm(z([])), 'layerNorm', /at least one axis, got \[\]/);
    expectError(
      () => T.layerNorm(z([4, 3]), null, null, { eps: -1 }),
      'layerNorm',
      /eps must be a finite number ≥ 0, got -1/,
    );
    expectError(
      () => T.layerNormGrad(z([4, 3]), z([4, 2]), null, { result: 'input', count: 1, eps: 1e-5 }),
      'layerNormGrad',
      'layerNormGrad: x and g must have one shape, got [4,3] float32, [4,2] float32',
    );
    expectError(
      () => T.layerNormGrad(z([4, 3]), z([4, 3]), z([3]), { result: 'affine', count: 1, eps: 1e-5 }),
      'layerNormGrad',
      /the affine result takes no weight/,
    );
    expectError(
      () => T.layerNormGrad(z([4, 3]), z([4, 3]), null, { result: 'input', count: 3, eps: 1e-5 }),
      'layerNormGrad',
      /cannot normalise the last 3 axes of x \[4,3\]/,
    );
  });

  test('axis out of range', () => {
    expectError(() => T.sum(z([2, 3]), 2), 'sum', 'sum: axis 2 is out of range for a tensor of rank 2');
    expectError(() => T.max(z([2, 3]), -3), 'max', /axis -3 is out of range for a tensor of rank 2/);
    expectError(() => T.argmax(z([2]), 1), 'argmax', /axis 1 is out of range/);
    expectError(() => T.softmax(z([2, 3]), 5), 'softmax', /axis 5 is out of range/);
    expectError(() => T.concat([z([2])], 1), 'concat', /axis 1 is out of range/);
    expectError(() => T.unsqueeze(z([2]), 3), 'unsqueeze', /axis 3 is out of range for a tensor of rank 2/);
    expectError(() => T.sum(z([2, 3]), [1, -1]), 'sum', 'sum: axis 1 appears twice in [1,1]');
    expectError(() => T.sum(z([2, 3]), 0.5), 'sum', /axis 0.5 is out of range/);
  });

  test('bad reshape sizes', () => {
    expectError(
      () => T.reshape(z([2, 3]), [4]),
      'reshape',
      'reshape: cannot reshape [2,3] (6 elements) to [4]',
    );
    expectError(
      () => T.reshape(z([2, 3]), [-1, -1]),
      'reshape',
      /cannot reshape \[2,3\] \(6 elements\) to \[-1,-1\]/,
    );
    expectError(() => T.reshape(z([2, 3]), [4, -1]), 'reshape', /to \[4,-1\]/);
    expectError(() => T.reshape(z([2, 3]), [2.5, 2]), 'reshape', /invalid shape \[2.5,2\]/);
    expectError(() => T.flatten(z([2, 3]), 1, 0), 'flatten', /end axis 0 comes before start axis 1/);
    expectError(() => T.squeeze(z([2, 1]), 0), 'squeeze', 'squeeze: axis 0 of [2,1] has size 2, not 1');
  });

  test('bad permutations', () => {
    expectError(
      () => T.permute(z([2, 3]), [0, 0]),
      'permute',
      'permute: [0,0] is not a permutation of the axes of [2,3]',
    );
    expectError(() => T.permute(z([2, 3]), [0]), 'permute', /\[0\] is not a permutation/);
  });

  test('bad slices', () => {
    expectError(
      () => T.slice(z([4]), [0, 4, 0]),
      'slice',
      'slice: step must be a positive integer, got 0 on axis 0',
    );
    expectError(() => T.slice(z([4]), [0, 4, -1]), 'slice', /step must be a positive integer, got -1/);
    expectError(
      () => T.slice(z([4, 2]), null, 2),
      'slice',
      'slice: index 2 is out of range for axis 1 of [4,2]',
    );
    expectError(() => T.slice(z([4]), -5), 'slice', /index -5 is out of range for axis 0/);
    expectError(() => T.slice(z([4]), 0, 0), 'slice', 'slice: 2 specs for a tensor of shape [4]');
  });

  test('concat, stack, split, unbind and take shapes', () => {
    expectError(
      () => T.concat([z([2, 3]), z([2, 4])], 0),
      'concat',
      /shapes differ outside axis 0: \[2,3\] float32, \[2,4\] float32/,
    );
    expectError(() => T.concat([]), 'concat', 'concat: needs at least one tensor');
    expectError(() => T.stack([z([2]), z([3])]), 'stack', 'stack: all tensors need one shape, got [2], [3]');
    expectError(() => T.split(z([5]), 2), 'split', 'split: cannot split axis 0 of [5] into 2');
    expectError(() => T.split(z([5]), [2, 2]), 'split', /cannot split axis 0 of \[5\] into \[2,2\]/);
    expectError(() => T.unbind(z([2, 3]), 2), 'unbind', 'unbind: axis 2 is out of range for [2,3] float32');
    expectError(() => T.unbind(z([])), 'unbind', 'unbind: axis 0 is out of range for [] float32');
    const idx = T.tensor([0, 3], { dtype: 'int32' });
    expectError(
      () => T.take(z([3]), idx),
      'take',
      'take: index 3 is out of range for axis 0 of size 3; valid: [0, 3)',
    );
    expectError(
      () => T.scatterAdd(z([2]), idx, 0, 3),
      'scatterAdd',
      /index 3 is out of range for axis 0 of size 3/,
    );
    expectError(
      () => T.scatterAdd(z([3]), idx, 0, 3),
      'scatterAdd',
      /source \[3\] does not hold indices \[2\] at axis 0/,
    );
    expectError(
      () => T.scatterAdd(z([2]), T.zeros([2, 1], { dtype: 'int32' }), 0, 3),
      'scatterAdd',
      /more axes than the source/,
    );
    expectError(
      () => T.scatterAdd(z([2]), idx, 0, -1),
      'scatterAdd',
      /size must be a non-negative integer, got -1/,
    );
    idx.dispose();
  });

  test('pad widths', () => {
    expectError(
      () => T.pad(z([2]), [[-1, 0]]),
      'pad',
      'pad: widths must be non-negative integers, got [-1,0,0] on axis 0',
    );
    expectError(
      () =>
        T.pad(z([2]), [
          [0, 0],
          [1, 1],
        ]),
      'pad',
      'pad: 2 widths for a tensor of shape [2]',
    );
  });

  test('creation shapes', () => {
    expectError(() => T.tensor([[1, 2], [3]]), 'tensor', /ragged nested array: expected length 2 at depth 1/);
    expectError(() => T.tensor([1, 2, 3], [2, 2]), 'tensor', 'tensor: shape [2,2] needs 4 elements, got 3');
    expectError(
      () => T.tensor(new Float32Array(3), [2]),
      'tensor',
      'tensor: shape [2] needs 2 elements, got 3',
    );
    expectError(
      () => T.zeros([2, -1]),
      'zeros',
      'zeros: invalid shape [2,-1]: sizes must be non-negative integers (axis 1 is -1)',
    );
    expectError(() => T.ones([1.5]), 'ones', /invalid shape \[1.5\]/);
    expectError(() => T.arange(0, 5, 0), 'arange', 'arange: step must be finite and non-zero, got 0');
    expectError(() => T.linspace(0, 1, -2), 'linspace', 'linspace: n must be a non-negative integer, got -2');
    expectError(
      () => T.tensor(new Uint16Array(2) as never),
      'tensor',
      'tensor: unsupported typed array Uint16Array',
    );
  });
});

describe('dtype errors', () => {
  test('float32 with float64 is refused, naming both', () => {
    const message = 'cannot mix dtypes float32 and float64; cast one explicitly';
    expectError(() => T.add(z([2]), z([2], 'float64')), 'add', `add: ${message}`);
    expectError(() => T.matmul(z([2, 2]), z([2, 2], 'float64')), 'matmul', `matmul: ${message}`);
    expectError(() => T.where(z([2], 'bool'), z([2]), z([2], 'float64')), 'where', `where: ${message}`);
    expectError(
      () => T.concat([z([2], 'float64'), z([2])]),
      'concat',
      /cannot mix dtypes float64 and float32/,
    );
  });

  test('unknown dtypes are named', () => {
    const known = 'expected one of bool, int32, float32, float64';
    expectError(
      () => T.zeros([2], { dtype: 'float16' as T.DType }),
      'zeros',
      `zeros: unknown dtype 'float16' (${known})`,
    );
    expectError(() => T.tensor([1], { dtype: 'int8' as T.DType }), 'tensor', /unknown dtype 'int8'/);
    expectError(() => T.rand([2], { dtype: 'half' as T.DType }), 'rand', /unknown dtype 'half'/);
  });

  test('ops that do not support a dtype say so', () => {
    expectError(
      () => T.max(z([2], 'bool')),
      'max',
      'max: unsupported dtype bool; cast to int32 or float first',
    );
    expectError(() => T.argmax(z([2], 'bool')), 'argmax', /unsupported dtype bool/);
    expectError(() => T.take(z([3]), z([1])), 'take', 'take: indices must be int32, got float32');
    expectError(() => T.oneHot(z([2]), 3), 'oneHot', 'oneHot: indices must be int32, got float32');
    expectError(
      () => T.rand([2], { dtype: 'int32' }),
      'random',
      'random: uniform cannot produce dtype int32',
    );
  });

  test('layerNorm needs one float dtype, naming every input', () => {
    expectError(
      () => T.layerNorm(z([2, 3], 'int32')),
      'layerNorm',
      'layerNorm: needs float inputs, got x [2,3] int32',
    );
    expectError(
      () => T.layerNorm(z([2, 3], 'float64'), z([3]), z([3], 'float64')),
      'layerNorm',
      'layerNorm: inputs must share one dtype, got x [2,3] float64, weight [3] float32, bias [3] float64',
    );
    expectError(
      () => T.layerNormGrad(z([2, 3]), z([2, 3], 'float64'), null, { result: 'input', count: 1, eps: 0 }),
      'layerNormGrad',
      'layerNormGrad: inputs must share one dtype, got x [2,3] float32, g [2,3] float64',
    );
  });

  test('kernel-level rules catch inputs that skipped the functional API', () => {
    const [a, b] = [z([2]), z([3])];
    expectError(
      () => T.runKernel('add', [a, b], {}),
      'add',
      /kernel inputs must be broadcast first, got \[2\] float32, \[3\] float32/,
    );
    expectError(
      () => T.runKernel('exp', [z([2], 'int32')], {}),
      'exp',
      'exp: unsupported dtype int32 for input [2]',
    );
    expectError(
      () => T.runKernel('add', [a, z([2], 'int32')], {}),
      'add',
      /inputs must share one dtype, got \[2\] float32, \[2\] int32/,
    );
    a.dispose();
    b.dispose();
  });
});

describe('misuse errors', () => {
  test('using a disposed tensor names the op, shape and dtype', async () => {
    const x = T.ones([2, 3]);
    x.dispose();
    expectError(() => T.exp(x), 'exp', 'exp: tensor [2,3] float32 was disposed');
    expectError(() => T.add(x, 1), 'add', /tensor \[2,3\] float32 was disposed/);
    expectError(() => T.matmul(x, x), 'matmul', /was disposed/);
    expectError(() => T.reshape(x, [6]), 'reshape', /was disposed/);
    expectError(() => x.retain(), 'retain', /was disposed/);
    await expect(x.data()).rejects.toThrow('data: tensor [2,3] float32 was disposed');
    await expect(x.array()).rejects.toThrow(/was disposed/);
  });

  test('item() needs one element', async () => {
    const x = T.ones([2]);
    await expect(x.item()).rejects.toThrow('item: needs exactly one element, got shape [2]');
    x.dispose();
  });

  test('random arguments', () => {
    expectError(
      () => T.randint(5, 5, [2]),
      'randint',
      "randint: needs integers low < high with [low, high) inside int32's range [-2147483648, 2147483647], got [5, 5)",
    );
    expectError(() => T.bernoulli(1.5, [2]), 'bernoulli', 'bernoulli: p must lie in [0, 1], got 1.5');
    expectError(() => T.bernoulli(0.5), 'bernoulli', 'bernoulli: needs a shape when p is a number');
    expectError(() => T.rand([2], { seed: 0.5 }), 'seed', /seed must be a safe integer, got 0.5/);
  });

  test('scope refuses async functions and disposes what they created', async () => {
    const before = T.memoryStats().liveTensors;
    expectError(
      () =>
        T.scope(() => {
          T.ones([2]);
          return Promise.resolve(1) as unknown as Tensor;
        }),
      'scope',
      /must be synchronous/,
    );
    expect(T.memoryStats().liveTensors).toBe(before);
  });

  test('an unknown backend is named', () => {
    expectError(() => T.setBackend('tpu' as T.BackendName), 'backend', "backend: unknown backend 'tpu'");
  });
});
