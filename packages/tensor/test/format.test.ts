/**
 * Readback and printing: `format()` reproduces PyTorch's `repr` (expected strings are what
 * PyTorch 2.x prints for the same values, with `torch.` dropped from dtype names), `array()`,
 * `item()`, `data()` and `toString()`.
 */

import type { Tensor } from '@fluxion/tensor';
import * as T from '@fluxion/tensor';
import { describe, expect, test } from 'vitest';

/** Formats and disposes. */
async function formatted(t: Tensor): Promise<string> {
  try {
    return await t.format();
  } finally {
    t.dispose();
  }
}

const f = (text: TemplateStringsArray) => text[0].replace(/^\n/, '').replace(/\n$/, '');

describe('format() prints like PyTorch', () => {
  test('integer-valued floats', async () => {
    expect(
      await formatted(
        T.tensor([
          [1, 2],
          [3, 4],
        ]),
      ),
    ).toBe(f`
tensor([[1., 2.],
        [3., 4.]])
`);
    expect(await formatted(T.zeros([3]))).toBe('tensor([0., 0., 0.])');
    expect(await formatted(T.tensor([-1, 10, 100]))).toBe('tensor([ -1.,  10., 100.])');
  });

  test('fractional floats with four decimals, padded to one width', async () => {
    expect(await formatted(T.tensor([0.1, 2]))).toBe('tensor([0.1000, 2.0000])');
    expect(await formatted(T.tensor([-1.5, 2.25]))).toBe('tensor([-1.5000,  2.2500])');
    expect(await formatted(T.tensor(3.5))).toBe('tensor(3.5000)');
  });

  test('scientific notation for wide ranges, tiny or huge values', async () => {
    expect(await formatted(T.tensor([1e-5, 1]))).toBe('tensor([1.0000e-05, 1.0000e+00])');
    expect(await formatted(T.tensor([0.5, 2000]))).toBe('tensor([5.0000e-01, 2.0000e+03])');
    expect(await formatted(T.tensor([1, 2000]))).toBe('tensor([1.0000e+00, 2.0000e+03])');
    expect(await formatted(T.tensor([1e10]))).toBe('tensor([1.0000e+10])');
  });

  test('nan and inf keep the width of the numbers', async () => {
    expect(await formatted(T.tensor([1, Number.NaN, Number.POSITIVE_INFINITY]))).toBe(
      'tensor([1., nan, inf])',
    );
    expect(await formatted(T.tensor([0.5, Number.NEGATIVE_INFINITY]))).toBe('tensor([0.5000,   -inf])');
  });

  test('dtypes other than float32 and bool are named', async () => {
    expect(await formatted(T.tensor([1, -2, 30], { dtype: 'int32' }))).toBe(
      'tensor([ 1, -2, 30], dtype=int32)',
    );
    expect(await formatted(T.tensor([1.5, 2], { dtype: 'float64' }))).toBe(
      'tensor([1.5000, 2.0000], dtype=float64)',
    );
    expect(await formatted(T.tensor(7, { dtype: 'int32' }))).toBe('tensor(7, dtype=int32)');
  });

  test('bool', async () => {
    expect(await formatted(T.tensor([true, false]))).toBe('tensor([ True, False])');
    expect(
      await formatted(
        T.tensor([
          [true, false],
          [false, true],
        ]),
      ),
    ).toBe(f`
tensor([[ True, False],
        [False,  True]])
`);
  });

  test('three axes are separated by blank lines', async () => {
    expect(await formatted(T.scope(() => T.arange(8).reshape([2, 2, 2])))).toBe(f`
tensor([[[0., 1.],
         [2., 3.]],

        [[4., 5.],
         [6., 7.]]])
`);
  });

  test('long rows wrap at 80 columns', async () => {
    expect(await formatted(T.arange(20))).toBe(f`
tensor([ 0.,  1.,  2.,  3.,  4.,  5.,  6.,  7.,  8.,  9., 10., 11., 12., 13.,
        14., 15., 16., 17., 18., 19.])
`);
  });

  test('tensors over 1000 elements show three edge items per axis', async () => {
    expect(await formatted(T.arange(2000, undefined, 1, { dtype: 'int32' }))).toBe(
      'tensor([   0,    1,    2,  ..., 1997, 1998, 1999], dtype=int32)',
    );
    expect(await formatted(T.arange(2000))).toBe(f`
tensor([0.0000e+00, 1.0000e+00, 2.0000e+00,  ..., 1.9970e+03, 1.9980e+03,
        1.9990e+03])
`);
    expect(await formatted(T.zeros([100, 100]))).toBe(f`
tensor([[0., 0., 0.,  ..., 0., 0., 0.],
        [0., 0., 0.,  ..., 0., 0., 0.],
        [0., 0., 0.,  ..., 0., 0., 0.],
        ...,
        [0., 0., 0.,  ..., 0., 0., 0.],
        [0., 0., 0.,  ..., 0., 0., 0.],
        [0., 0., 0.,  ..., 0., 0., 0.]])
`);
  });

  test('empty tensors', async () => {
    expect(await formatted(T.zeros([0]))).toBe('tensor([])');
    expect(await formatted(T.zeros([2, 0]))).toBe('tensor([], size=(2, 0))');
    expect(await formatted(T.zeros([0], { dtype: 'int32' }))).toBe('tensor([], dtype=int32)');
  });

  test('views print their logical values', async () => {
    const x = T.tensor([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    const views = [x.T, T.slice(x, null, [null, null, 2])];
    expect(await views[0].format()).toBe(f`
tensor([[1., 4.],
        [2., 5.],
        [3., 6.]])
`);
    expect(await views[1].format()).toBe(f`
tensor([[1., 3.],
        [4., 6.]])
`);
    for (const t of [x, ...views]) t.dispose();
  });
});

describe('readback', () => {
  test('array() nests by shape; bool reads as booleans', async () => {
    const x = T.tensor([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    const xt = x.T;
    const b = T.greater(x, 3);
    expect(await x.array()).toEqual([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    expect(await xt.array()).toEqual([
      [1, 4],
      [2, 5],
      [3, 6],
    ]);
    expect(await b.array()).toEqual([
      [false, false, false],
      [true, true, true],
    ]);
    for (const t of [x, xt, b]) t.dispose();
  });

  test('array() of a scalar is a number; item() reads one element of any rank', async () => {
    const s = T.tensor(2.5);
    const one = T.ones([1, 1, 1], { dtype: 'int32' });
    expect(await s.array()).toBe(2.5);
    expect(await s.item()).toBe(2.5);
    expect(await one.item()).toBe(1);
    s.dispose();
    one.dispose();
  });

  test('data() returns a typed array of the dtype, in row-major order for views', async () => {
    const x = T.tensor(
      [
        [1, 2],
        [3, 4],
      ],
      { dtype: 'float64' },
    );
    const xt = x.T;
    const i = T.cast(x, 'int32');
    const b = T.cast(x, 'bool');
    const [dx, dxt, di, db] = await Promise.all([x.data(), xt.data(), i.data(), b.data()]);
    expect(dx).toBeInstanceOf(Float64Array);
    expect(Array.from(dxt)).toEqual([1, 3, 2, 4]);
    expect(di).toBeInstanceOf(Int32Array);
    expect(db).toBeInstanceOf(Uint8Array);
    // Reading returns a copy: writing to it does not change the tensor.
    dx[0] = 100;
    expect(Array.from(await x.data())).toEqual([1, 2, 3, 4]);
    for (const t of [x, xt, i, b]) t.dispose();
  });

  test('toString() shows shape, dtype and backend without reading', () => {
    const x = T.zeros([2, 3], { dtype: 'int32' });
    expect(x.toString()).toBe('Tensor(shape=[2,3], dtype=int32, backend=cpu)');
    expect(`${x}`).toBe('Tensor(shape=[2,3], dtype=int32, backend=cpu)');
    x.dispose();
  });
});
