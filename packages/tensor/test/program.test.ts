/**
 * Elementwise programs on the CPU backend: the language is checked before anything runs (each
 * mistake a clear error naming the program), results equal the same arithmetic written with
 * primitives (bit for bit in float64), float32 outputs are rounded once, and views are read
 * through their strides.
 */
import * as T from '@fluxion/tensor';
import { type ElementwiseProgram, FluxionError, parseProgram, runProgram, tensor } from '@fluxion/tensor';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { runs } from './helpers.js';

const program = (body: string[], extra: Partial<ElementwiseProgram> = {}): ElementwiseProgram => ({
  name: 'test',
  inputs: ['a', 'b'],
  scalars: ['s'],
  body,
  outputs: ['y'],
  ...extra,
});

describe('the language', () => {
  test.each([
    [['y = a + 2 * b'], /cannot read '2 \* b' \(write float literals with a point, e\.g\. 1\.0\)/],
    [['y = a + c'], /unknown name 'c'/],
    [['y = a ** b'], /unexpected '\*'/],
    [['y = max(a)'], /max takes 2 argument\(s\), got 1/],
    [['y = a b'], /unexpected 'b'/],
    [['y = a +'], /the expression ends too early/],
    [['y = (a + b'], /unbalanced parentheses/],
    [['y = a + b)'], /unbalanced parentheses/],
    [['s = a'], /assigns to the scalar 's'/],
    [['y a + b'], /is not a statement 'name = expression'/],
    [['y = '], /has no expression/],
    [['y = sqrt + a'], /sqrt must be called/],
    [['y = Math.exp(a)'], /unknown name 'Math'/],
    [['z = a'], /output 'y' is not an input or an assigned name/],
  ])('%j is rejected', (body, message) => {
    expect(() => parseProgram(program(body))).toThrow(FluxionError);
    expect(() => parseProgram(program(body))).toThrow(message);
    expect(() => parseProgram(program(body))).toThrow(/^program test: /);
  });

  test('names may not repeat or shadow functions', () => {
    expect(() => parseProgram(program(['y = a'], { scalars: ['a'] }))).toThrow(
      /scalar 'a' is declared twice/,
    );
    expect(() => parseProgram(program(['y = a'], { inputs: ['a', 'max'] }))).toThrow(
      /input 'max' shadows a function/,
    );
  });

  test('locals, reassignment, unary minus and every function', async () => {
    const p = program(['d = b - a', 'y = max(abs(d), sqrt(b)) - -min(a, s)', 'y = y * 0.5'], {
      outputs: ['y', 'd', 'a'],
    });
    const [y, d, a] = runProgram(
      p,
      [tensor([1, -2, 9], { dtype: 'float64' }), tensor([4, 1, 4], { dtype: 'float64' })],
      {
        s: 0,
      },
    );
    expect(await d.array()).toEqual([3, 3, -5]);
    expect(await y.array()).toEqual([1.5, 0.5, 2.5]);
    expect(await a.array()).toEqual([1, -2, 9]);
  });
});

describe('running', () => {
  const lerp = program(['d = b - a', 'y = a + s * d'], { outputs: ['y', 'd'] });

  test('equals the same arithmetic written with primitives, bit for bit in float64', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.double({ noNaN: true, min: -1e6, max: 1e6 }), { minLength: 1, maxLength: 40 }),
        fc.double({ noNaN: true, min: -10, max: 10 }),
        async (xs, s) => {
          const a = tensor(xs, { dtype: 'float64' });
          const b = tensor(
            xs.map((x) => x * 0.5 + 1),
            { dtype: 'float64' },
          );
          const [y, d] = runProgram(lerp, [a, b], { s });
          const dRef = T.sub(b, a);
          const yRef = T.add(a, T.mul(dRef, s));
          expect(await y.data()).toEqual(await yRef.data());
          expect(await d.data()).toEqual(await dRef.data());
        },
      ),
      runs(50),
    );
  });

  test('float32 outputs are the float64 result rounded once', async () => {
    const a = tensor([0.1, 1e-8, 3], { dtype: 'float32' });
    const b = tensor([0.2, 1, 7], { dtype: 'float32' });
    const [y] = runProgram(lerp, [a, b], { s: 1 / 3 });
    const av = Float64Array.from(await a.data());
    const bv = Float64Array.from(await b.data());
    const expected = [...av].map((x, i) => Math.fround(x + (1 / 3) * (bv[i] - x)));
    expect([...(await y.data())]).toEqual(expected);
  });

  test('views are read through their strides; outputs are fresh and contiguous', async () => {
    const m = tensor(
      [
        [1, 2, 3],
        [4, 5, 6],
      ],
      { dtype: 'float64' },
    );
    const [y, d] = runProgram(lerp, [m.T, T.ones([3, 2], { dtype: 'float64' })], { s: 0.5 });
    expect(y.shape).toEqual([3, 2]);
    expect(y.isContiguous).toBe(true);
    expect(await d.array()).toEqual([
      [0, -3],
      [-1, -4],
      [-2, -5],
    ]);
  });

  test('bad inputs name the program, the shapes and the dtypes', () => {
    const a = T.zeros([2, 3]);
    expect(() => runProgram(lerp, [a], { s: 1 })).toThrow(/program test: expects 2 inputs \(a, b\), got 1/);
    expect(() => runProgram(lerp, [a, T.zeros([3, 2])], { s: 1 })).toThrow(
      "program test: inputs must share shape, dtype and backend: 'a' is [2,3] float32 on cpu, 'b' is [3,2] float32 on cpu",
    );
    expect(() => runProgram(lerp, [a, T.zeros([2, 3], { dtype: 'float64' })], { s: 1 })).toThrow(
      /'b' is \[2,3\] float64 on cpu/,
    );
    const ints = T.zeros([2], { dtype: 'int32' });
    expect(() => runProgram(lerp, [ints, ints], { s: 1 })).toThrow(/must be float32 or float64, got int32/);
    expect(() => runProgram(lerp, [a, a], {})).toThrow(/scalar 's' is missing/);
    expect(() => runProgram(lerp, [a, a], { s: 1, t: 2 })).toThrow(/unknown scalars 't'/);
  });
});
