/**
 * Test helpers shared by every test suite: {@link expectAllClose} (tensor/array comparison with a
 * tolerance, NaN equal to NaN, infinities exact) and {@link materialize} (re-exported from the case
 * table), plus small readers.
 */
import { fmtShape, scope, type Tensor } from '@fluxion/tensor';
import { materialize, unravel } from './cases.js';

export { type HostTensor, type MaterializeOptions, materialize } from './cases.js';

/**
 * fast-check options running `numRuns` cases, scaled by the `FLUXION_FC_SCALE` environment variable
 * (e.g. `FLUXION_FC_SCALE=20` for a deep bug hunt; the default 1 keeps the suite fast).
 *
 * @example
 * ```ts
 * await fc.assert(property, runs(30));
 * ```
 */
export function runs(numRuns: number): { numRuns: number } {
  const scale = Number(process.env.FLUXION_FC_SCALE ?? 1);
  return { numRuns: Math.max(1, Math.round(numRuns * (Number.isFinite(scale) && scale > 0 ? scale : 1))) };
}

/** Absolute and relative tolerance: `|actual − expected| ≤ atol + rtol · |expected|`. */
export interface Tolerance {
  atol: number;
  rtol: number;
}

/** Things {@link expectAllClose} compares: a tensor, or numbers (typed arrays, plain arrays). */
export type Comparable = Tensor | ArrayLike<number | boolean>;

const isTensor = (x: Comparable): x is Tensor =>
  typeof (x as Tensor).data === 'function' && Array.isArray((x as Tensor).shape);

/** The elements of a tensor or array as plain numbers (booleans as 0/1). @example `await valuesOf(x) // [1, 2]` */
export async function valuesOf(x: Comparable): Promise<number[]> {
  const raw = isTensor(x) ? await x.data() : x;
  return Array.from(raw as ArrayLike<number | boolean>, Number);
}

/**
 * Whether `actual` is close to `expected` (NaN matches NaN; ±Inf must match exactly).
 *
 * @example
 * ```ts
 * isClose(1.0000001, 1, { atol: 0, rtol: 1e-6 }); // true
 * ```
 */
export function isClose(actual: number, expected: number, { atol, rtol }: Tolerance): boolean {
  if (Number.isNaN(expected) || Number.isNaN(actual)) return Number.isNaN(expected) && Number.isNaN(actual);
  if (!Number.isFinite(expected) || !Number.isFinite(actual)) return actual === expected;
  return Math.abs(actual - expected) <= atol + rtol * Math.abs(expected);
}

/**
 * Asserts that `actual` and `expected` hold the same number of elements and that each pair is
 * close. When both are tensors their shapes must match too. Throws with the first mismatches.
 *
 * @example
 * ```ts
 * await expectAllClose(exp(tensor([0, 1])), [1, Math.E], { atol: 1e-6, rtol: 1e-6 });
 * ```
 */
export async function expectAllClose(
  actual: Comparable,
  expected: Comparable,
  tol: Tolerance = { atol: 1e-6, rtol: 1e-5 },
): Promise<void> {
  if (isTensor(actual) && isTensor(expected) && fmtShape(actual.shape) !== fmtShape(expected.shape)) {
    throw new Error(`shapes differ: actual ${fmtShape(actual.shape)}, expected ${fmtShape(expected.shape)}`);
  }
  const [a, e] = await Promise.all([valuesOf(actual), valuesOf(expected)]);
  if (a.length !== e.length) {
    throw new Error(`sizes differ: actual has ${a.length} elements, expected ${e.length}`);
  }
  const shape = isTensor(actual) ? actual.shape : isTensor(expected) ? expected.shape : [a.length];
  const bad: string[] = [];
  let count = 0;
  for (let i = 0; i < a.length; i++) {
    if (isClose(a[i], e[i], tol)) continue;
    count++;
    if (bad.length < 5) bad.push(`  at ${fmtShape(unravel(i, shape))}: actual ${a[i]}, expected ${e[i]}`);
  }
  if (count > 0) {
    throw new Error(
      `${count} of ${a.length} elements differ (atol ${tol.atol}, rtol ${tol.rtol}):\n${bad.join('\n')}`,
    );
  }
}

/**
 * Materializes host tensors, runs `fn` in a scope and reads its result back, releasing everything.
 *
 * @example
 * ```ts
 * const { shape, dtype, values } = await runOnHost(hs, (xs) => add(xs[0], xs[1]), { floatDtype: 'float64' });
 * ```
 */
export async function runOnHost(
  hosts: Parameters<typeof materialize>[0][],
  fn: (xs: Tensor[]) => Tensor,
  options: Parameters<typeof materialize>[1] = {},
): Promise<{ shape: number[]; dtype: string; values: number[] }> {
  const xs = hosts.map((h) => materialize(h, options));
  try {
    const out = scope(() => fn(xs));
    try {
      return { shape: [...out.shape], dtype: out.dtype, values: await valuesOf(out) };
    } finally {
      out.dispose();
    }
  } finally {
    for (const x of xs) x.dispose();
  }
}
