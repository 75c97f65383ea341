/**
 * Input checks (issue #18, item 10): NaN, infinite, fractional and out-of-range arguments to the
 * creation functions, `reshape`, `slice` and the random functions are FluxionErrors naming the op
 * and the value, never a tensor of shape `[NaN]`, a view at offset 0.5 or an int32 wrapped modulo
 * 2³²; and an allocation past the WebGPU binding limit is an error of the op that asked for it.
 */
import * as T from '@fluxion/tensor';
import { FluxionError } from '@fluxion/tensor';
import { describe, expect, test } from 'vitest';
import { skipNote, webgpuEnv } from './webgpu-env.js';

const gpu = await webgpuEnv();

/** Asserts that `fn` throws a FluxionError of `op` whose message matches `message`. */
function expectError(fn: () => unknown, op: string, message: RegExp): void {
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
  expect(e.message).toMatch(message);
}

describe('arange', () => {
  test('NaN or infinite start and stop are refused', () => {
    expectError(
      () => T.arange(0, Number.NaN),
      'arange',
      /start and stop must be finite, got start 0, stop NaN/,
    );
    expectError(() => T.arange(Number.NaN), 'arange', /stop NaN/);
    expectError(() => T.arange(0, Number.POSITIVE_INFINITY), 'arange', /stop Infinity/);
    expectError(() => T.arange(Number.NEGATIVE_INFINITY, 0), 'arange', /start -Infinity/);
    expectError(() => T.arange(0, 10, Number.NaN), 'arange', /step must be finite and non-zero, got NaN/);
  });

  test('a count too large for a tensor is refused before allocating', () => {
    expectError(() => T.arange(-1e308, 1e308, 1e-300), 'arange', /has Infinity values/);
    expectError(() => T.arange(0, 2 ** 60), 'arange', /has 1152921504606847000 values/);
  });

  test('fractional bounds still work as in NumPy', async () => {
    expect(Array.from(await T.arange(2.5).data())).toEqual([0, 1, 2]);
    expect(Array.from(await T.arange(0, -1, -0.5).data())).toEqual([0, -0.5]);
  });
});

describe('shapes: one validation for every creation function', () => {
  const bad: [string, number[], string][] = [
    ['NaN', [2, Number.NaN], 'axis 1 is NaN'],
    ['negative', [-2], 'axis 0 is -2'],
    ['fractional', [2.5, 2], 'axis 0 is 2.5'],
    ['infinite', [Number.POSITIVE_INFINITY], 'axis 0 is Infinity'],
  ];
  const creators: [string, (shape: number[]) => unknown][] = [
    ['zeros', (s) => T.zeros(s)],
    ['ones', (s) => T.ones(s)],
    ['full', (s) => T.full(s, 3)],
    ['rand', (s) => T.rand(s, { seed: 1 })],
    ['randn', (s) => T.randn(s, { seed: 1 })],
    ['reshape', (s) => T.reshape(T.zeros([4]), s)],
    ['tensor', (s) => T.tensor(new Float32Array(4), s)],
  ];
  for (const [op, create] of creators) {
    test.each(bad)(`${op} refuses a %s size`, (_kind, shape, detail) => {
      expectError(() => create(shape), op, new RegExp(`invalid shape .*\\(${detail}\\)`));
    });
  }

  test('eye and linspace refuse NaN, negative and fractional counts', () => {
    expectError(() => T.eye(Number.NaN), 'eye', /axis 0 is NaN/);
    expectError(() => T.eye(2, 2.5), 'eye', /axis 1 is 2.5/);
    expectError(() => T.linspace(0, 1, Number.NaN), 'linspace', /n must be a non-negative integer, got NaN/);
    expectError(() => T.linspace(0, 1, 2.5), 'linspace', /got 2.5/);
  });

  test('a shape with more than 2^53 elements is refused, not a RangeError from the host', () => {
    expectError(() => T.zeros([2 ** 30, 2 ** 30, 2 ** 30]), 'zeros', /more than a tensor can hold/);
    expectError(() => T.randn([2 ** 30, 2 ** 30, 2 ** 30]), 'randn', /more than a tensor can hold/);
  });

  test('reshape keeps its own message for sizes that do not fit, and -1 still infers', () => {
    expectError(() => T.reshape(T.zeros([2, 3]), [4, -1]), 'reshape', /cannot reshape \[2,3\]/);
    expect(T.reshape(T.zeros([2, 3]), [-1]).shape).toEqual([6]);
  });
});

describe('slice', () => {
  const x = () => T.arange(10);
  test('fractional and NaN bounds are refused, naming the value', () => {
    expectError(() => T.slice(x(), [0.5, 3]), 'slice', /start 0.5 on axis 0 of \[10\] is not an integer/);
    expectError(() => T.slice(x(), [0, 2.5]), 'slice', /stop 2.5 on axis 0/);
    expectError(() => T.slice(x(), [Number.NaN]), 'slice', /start NaN on axis 0/);
    expectError(() => T.slice(x(), [0, Number.POSITIVE_INFINITY]), 'slice', /stop Infinity/);
    expectError(() => T.slice(x(), 1.5), 'slice', /index 1.5 on axis 0 is not an integer/);
    expectError(() => T.slice(x(), Number.NaN), 'slice', /index NaN on axis 0 is not an integer/);
    expectError(() => T.slice(x(), 'a' as never), 'slice', /spec a on axis 0 is not an index/);
  });

  test('integer and null bounds work as before', async () => {
    expect(Array.from(await T.slice(x(), [2, -3]).data())).toEqual([2, 3, 4, 5, 6]);
    expect(Array.from(await T.slice(x(), [null, 100, 4]).data())).toEqual([0, 4, 8]);
  });
});

describe('int32 values', () => {
  test('values outside the int32 range are refused, not wrapped', () => {
    expectError(
      () => T.tensor([1, 1e10], { dtype: 'int32' }),
      'tensor',
      /element 1 = 10000000000 cannot be stored as int32: outside int32's range \[-2147483648, 2147483647\]/,
    );
    expectError(
      () => T.tensor(new Float32Array([-3e9]), { dtype: 'int32' }),
      'tensor',
      /element 0 = -3000000000/,
    );
    expectError(() => T.tensor(new Float64Array([2 ** 31]), { dtype: 'int32' }), 'tensor', /2147483648/);
    expectError(
      () => T.full([2], 1e10, { dtype: 'int32' }),
      'full',
      /the value 10000000000 cannot be stored/,
    );
    expectError(() => T.arange(0, 4e9, 1.5e9, { dtype: 'int32' }), 'arange', /element 2 = 3000000000 cannot/);
    expectError(() => T.linspace(0, 1e10, 2, { dtype: 'int32' }), 'linspace', /element 1 = 10000000000/);
  });

  test('NaN and infinities are refused', () => {
    expectError(() => T.tensor([Number.NaN], { dtype: 'int32' }), 'tensor', /int32 has no NaN/);
    expectError(() => T.tensor([Number.POSITIVE_INFINITY], { dtype: 'int32' }), 'tensor', /Infinity cannot/);
    expectError(() => T.full([1], Number.NEGATIVE_INFINITY, { dtype: 'int32' }), 'full', /-Infinity/);
  });

  test('fractions truncate toward zero (as PyTorch), the extremes are kept', async () => {
    expect(Array.from(await T.tensor([2.7, -2.7, 0.5], { dtype: 'int32' }).data())).toEqual([2, -2, 0]);
    const extremes = T.tensor([2 ** 31 - 1, -(2 ** 31), 2 ** 31 - 0.5], { dtype: 'int32' });
    expect(Array.from(await extremes.data())).toEqual([2 ** 31 - 1, -(2 ** 31), 2 ** 31 - 1]);
    expect(Array.from(await T.full([2], -1.9, { dtype: 'int32' }).data())).toEqual([-1, -1]);
  });

  test('an integer scalar outside int32 range meets an int32 tensor in float32, not wrapped', async () => {
    const x = T.tensor([5, -5], { dtype: 'int32' });
    expect(T.promoteWithScalar('int32', 2 ** 31)).toBe('float32');
    expect(T.promoteWithScalar('int32', 2 ** 31 - 1)).toBe('int32');
    const sum = T.add(x, 2 ** 31);
    expect(sum.dtype).toBe('float32');
    expect(Array.from(await sum.data())).toEqual([2 ** 31, 2 ** 31]); // float32 rounding of 2^31 ± 5
    expect(Array.from(await T.less(x, 2 ** 31).data())).toEqual([1, 1]);
    expect(Array.from(await T.greater(x, -(2 ** 32)).data())).toEqual([1, 1]);
  });

  test('float dtypes keep what they are given', async () => {
    expect(Array.from(await T.tensor([1e10, Number.NaN]).data())).toEqual([1e10, Number.NaN]);
  });
});

describe('allocations the host cannot make', () => {
  test('are errors of the creating op or the op whose output it is, not a bare RangeError', () => {
    const n = 2 ** 52; // a valid shape, past every engine's typed-array limit
    expectError(() => T.zeros([n]), 'zeros', /a float32 tensor of 4503599627370496 elements .* on the host/);
    expectError(() => T.eye(2 ** 26, 2 ** 26, { dtype: 'int32' }), 'eye', /int32 tensor of \d+ elements/);
    const wide = T.expand(T.zeros([1]), [n]);
    expectError(
      () => T.exp(wide),
      'exp',
      /cannot allocate a float32 tensor of shape \[4503599627370496\]: .*on the host/,
    );
    wide.dispose();
  });

  test('leave the CPU memory counters as they were', () => {
    const one = T.zeros([1]);
    const wide = T.expand(one, [2 ** 52]);
    const before = T.memoryStats().backends.cpu;
    expect(() => T.exp(wide)).toThrow(FluxionError);
    expect(T.memoryStats().backends.cpu).toEqual(before);
    wide.dispose();
    one.dispose();
  });
});

describe.skipIf(!gpu.backend)(`allocations past the WebGPU binding limit${skipNote(gpu)}`, () => {
  const limit = () => gpu.backend!.device.limits.maxStorageBufferBindingSize;
  const limitText = /over this device's storage-buffer binding limit of [\d.]+ MiB/;

  test('creation: the error names the creating op, the shape and the dtype', () => {
    const n = Math.floor(limit() / 4) + 1;
    for (const [op, create] of [
      ['zeros', () => T.zeros([n], { backend: 'webgpu' })],
      ['full', () => T.full([n], 2, { backend: 'webgpu' })],
      ['arange', () => T.arange(n, undefined, 1, { backend: 'webgpu' })],
    ] as const) {
      expectError(
        create,
        op,
        new RegExp(`cannot allocate a float32 tensor of shape \\[${n}\\]: .*${limitText.source}`),
      );
    }
  });

  test('an op output: the error names the op, not alloc', () => {
    const side = Math.ceil(Math.sqrt(limit() / 4)) + 1;
    const a = T.zeros([side, 1], { backend: 'webgpu' });
    const b = T.zeros([1, side], { backend: 'webgpu' });
    try {
      expectError(
        () => T.matmul(a, b),
        'matmul',
        new RegExp(`shape \\[${side},${side}\\]: .*${limitText.source}`),
      );
      const wide = T.expand(T.zeros([1], { backend: 'webgpu' }), [Math.floor(limit() / 4) + 1]);
      expectError(() => T.exp(wide), 'exp', /cannot allocate a float32 tensor of shape/);
      expectError(() => T.cast(wide, 'int32'), 'cast', /cannot allocate a int32 tensor/);
    } finally {
      a.dispose();
      b.dispose();
    }
  });

  test('reading a view back: the error names data', async () => {
    const wide = T.expand(T.zeros([1], { backend: 'webgpu' }), [Math.floor(limit() / 4) + 1]);
    await expect(wide.data()).rejects.toThrow(/^data: cannot allocate a float32 tensor of shape/);
    wide.dispose();
  });
});

describe('randint and bool', () => {
  test('randint refuses ranges that leave int32', async () => {
    expectError(
      () => T.randint(2 ** 31, 2 ** 31 + 5, [2]),
      'randint',
      /inside int32's range .*got \[2147483648, 2147483653\)/,
    );
    expectError(() => T.randint(-(2 ** 31) - 1, 0, [2]), 'randint', /got \[-2147483649, 0\)/);
    expectError(() => T.randint(-(2 ** 31), 2 ** 31, [2]), 'randint', /wider than 2\^31/);
    expectError(() => T.randint(0.5, 3, [2]), 'randint', /needs integers/);
    const top = T.randint(2 ** 31 - 3, 2 ** 31, [64], { seed: 1 });
    for (const v of await top.data()) expect(v).toBeGreaterThanOrEqual(2 ** 31 - 3);
  });

  test('a bool from NaN is true, as any non-zero value (PyTorch, NumPy)', async () => {
    expect(Array.from(await T.tensor([Number.NaN, 0, -0, 2], { dtype: 'bool' }).data())).toEqual([
      1, 0, 0, 1,
    ]);
    expect(Array.from(await T.full([1], Number.NaN, { dtype: 'bool' }).data())).toEqual([1]);
  });
});
