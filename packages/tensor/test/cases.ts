/**
 * The shared op-case table: one or more cases per primitive of the registry (`OP_CASES`) and per
 * composite op (`COMPOSITE_CASES`). Each case pairs a backend-neutral input generator (fast-check,
 * producing {@link HostTensor}s) with a call of the public functional API, a float32 tolerance and a
 * gradient flag. The CPU property tests, the WebGPU parity tests and the autograd gradchecks all
 * iterate over this table, so adding a primitive means adding a row here (and `registry.test.ts`
 * fails until one exists).
 *
 * Inputs are float32-exact numbers (grid points and rounded doubles), so a float32 run and a float64
 * run of a case see the same values and differ only by the op's own rounding. Generators include
 * the awkward points on purpose: 0 for relu/abs/sign, exact ties for max/argmax/round, sizes 1,
 * small primes and 17. Cases whose inputs sit on a kink carry a skip reason in `grad`; a smooth
 * sibling case (`*-smooth`, `*-distinct`) covers the gradient.
 */

import type { BackendName, DType, OpName, Tensor, UnaryOp } from '@fluxion/tensor';
import * as T from '@fluxion/tensor';
import fc from 'fast-check';

/** How a generated input is laid out in storage (its logical values never depend on this). */
export type ViewKind = 'contiguous' | 'transposed' | 'strided' | 'expanded';

/** Every view kind. */
export const VIEW_KINDS: readonly ViewKind[] = ['contiguous', 'transposed', 'strided', 'expanded'];

/**
 * A backend-neutral tensor description: logical shape, row-major values and dtype. `float32` means
 * "a float input": {@link materialize} may create it as float64. `bool` values are 0/1.
 */
export interface HostTensor {
  shape: number[];
  data: number[];
  dtype: DType;
  /** Storage layout to create (default contiguous); see {@link materialize}. */
  view?: ViewKind;
}

/** One case of a primitive. */
export interface OpCase {
  /** Unique name, e.g. `exp`, `add-broadcast`, `matmul-batched`. */
  name: string;
  /** The registry primitive this case covers. */
  op: OpName;
  /** Backend-neutral inputs. */
  inputs: fc.Arbitrary<HostTensor[]>;
  /** Calls the public functional API on the materialized inputs. */
  run(xs: Tensor[]): Tensor;
  /** float32 tolerance against the reference (CPU, or float64); {@link DEFAULT_TOL} when absent. */
  tol?: { atol: number; rtol: number };
  /**
   * `true`: differentiable w.r.t. its float inputs; `false`: no gradient (int/bool output, random,
   * argmax…); a string: the reason a gradient check is skipped.
   */
  grad?: boolean | string;
  /** Which inputs are differentiable (default: all float inputs). */
  gradInputs?: number[];
}

/** One case of a composite op; `op` is the composite's name (`softmax`, `gelu`, …). */
export type CompositeCase = Omit<OpCase, 'op'> & { op: string };

/** Options of {@link materialize}. */
export interface MaterializeOptions {
  /** Backend to create on (default: the current one). */
  backend?: BackendName;
  /** Dtype that float inputs are created as (default: their own, float32). */
  floatDtype?: DType;
}

// ---------------------------------------------------------------------------------------------
// Tolerances
// ---------------------------------------------------------------------------------------------

/** Ops rounded once per element (add, mul, div, views, casts, comparisons…). */
export const DEFAULT_TOL = { atol: 1e-6, rtol: 1e-5 };
/**
 * exp, log, tanh, erf, sigmoid…: a few ulps on CPU, more through GPU builtins. The WGSL spec's
 * accuracy table allows exp 3 + 2·|x| ulp (at most 43 ulp ≈ 5e-6 relative for the |x| ≤ 20 drawn
 * here), log 3 ulp outside [0.5, 2] and 2⁻²¹ absolute inside, inverseSqrt 2 ulp, division 2.5 ulp.
 */
export const TRANSCENDENTAL_TOL = { atol: 1e-5, rtol: 1e-4 };
/**
 * sin/cos: WGSL only promises an absolute error of 2⁻¹¹ (4.9e-4) on [−π, π]; the WebGPU kernels
 * reduce any argument into that range first.
 */
export const TRIG_TOL = { atol: 5e-4, rtol: 1e-4 };
/** pow is exp2(y · log2 x) on GPUs: errors grow with |y log x|. */
export const POW_TOL = { atol: 1e-4, rtol: 1e-3 };
/** Sums, products and matrix products accumulate one rounding per term in float32. */
export const ACCUMULATE_TOL = { atol: 1e-4, rtol: 1e-4 };

const KINK = 'inputs include the kink at 0, where finite differences disagree with any subgradient';
const TIES = 'inputs include exact ties, where the gradient is not unique';
const PIECEWISE = 'piecewise constant: zero gradient, and inputs sit on the jumps (integers, halves)';

// ---------------------------------------------------------------------------------------------
// Index arithmetic
// ---------------------------------------------------------------------------------------------

/** Number of elements of a shape. @example `sizeOfShape([2, 3]) // 6` */
export function sizeOfShape(shape: readonly number[]): number {
  return shape.reduce((n, d) => n * d, 1);
}

/** Row-major strides of `shape`. @example `rowMajorStrides([2, 3, 4]) // [12, 4, 1]` */
export function rowMajorStrides(shape: readonly number[]): number[] {
  const strides = shape.map(() => 1);
  for (let i = shape.length - 2; i >= 0; i--) strides[i] = strides[i + 1] * shape[i + 1];
  return strides;
}

/** The multi-index of flat (row-major) position `flat` in `shape`. @example `unravel(5, [2, 3]) // [1, 2]` */
export function unravel(flat: number, shape: readonly number[]): number[] {
  const index = shape.map(() => 0);
  for (let i = shape.length - 1; i >= 0; i--) {
    index[i] = flat % shape[i];
    flat = Math.floor(flat / shape[i]);
  }
  return index;
}

/** The flat position of a multi-index under `strides`. @example `ravel([1, 2], [3, 1]) // 5` */
export function ravel(index: readonly number[], strides: readonly number[]): number {
  return index.reduce((o, i, a) => o + i * strides[a], 0);
}

// ---------------------------------------------------------------------------------------------
// Materializing host tensors
// ---------------------------------------------------------------------------------------------

function upload(shape: number[], data: readonly number[], dtype: DType, backend?: BackendName): Tensor {
  const host = T.allocArray(dtype, data.length);
  host.set(data);
  return T.tensor(host, shape, { dtype, backend });
}

/** Value stored in the gaps of a strided layout: it must never show up in a result. */
function garbage(dtype: DType): number {
  return dtype === 'bool' ? 1 : dtype === 'int32' ? -77777 : Number.NaN;
}

/** First axis of size > 1 along which every value repeats, or −1. */
function constantAxis(h: HostTensor): number {
  const strides = rowMajorStrides(h.shape);
  return h.shape.findIndex(
    (d, axis) =>
      d > 1 &&
      h.data.every((v, flat) => {
        const i = unravel(flat, h.shape)[axis];
        return i === 0 || Object.is(v, h.data[flat - i * strides[axis]]);
      }),
  );
}

/**
 * Creates a tensor with the logical shape and values of `h`, stored as `h.view` asks:
 *
 * - `contiguous`: one row-major buffer;
 * - `transposed`: stored with the last two axes swapped, then permuted back (rank ≥ 2);
 * - `strided`: stored in a buffer of size 2d+1 per axis (gaps hold NaN/garbage) and sliced with
 *   start 1 and step 2, so the view has a non-zero offset and doubled strides;
 * - `expanded`: a size-1 copy of an axis along which the values repeat, expanded (stride 0).
 *
 * Layouts the shape does not allow (a transposed vector, an expanded tensor without a repeating
 * axis) fall back to contiguous. The storage buffers are released with the returned view.
 *
 * @example
 * ```ts
 * const x = materialize({ shape: [2, 3], data: [1, 2, 3, 4, 5, 6], dtype: 'float32', view: 'transposed' },
 *   { floatDtype: 'float64' });
 * x.isContiguous; // false
 * ```
 */
export function materialize(h: HostTensor, options: MaterializeOptions = {}): Tensor {
  const isFloatInput = h.dtype === 'float32' || h.dtype === 'float64';
  const dtype = isFloatInput ? (options.floatDtype ?? h.dtype) : h.dtype;
  const { backend } = options;
  const { shape, data } = h;
  const rank = shape.length;
  const view = h.view ?? 'contiguous';

  if (view === 'transposed' && rank >= 2) {
    const [m, n] = [shape[rank - 2], shape[rank - 1]];
    const stored = [...shape.slice(0, -2), n, m];
    const values = new Array<number>(data.length);
    for (let flat = 0; flat < data.length; flat++) {
      const block = Math.floor(flat / (m * n)) * m * n;
      const i = Math.floor((flat % (m * n)) / n);
      const j = flat % n;
      values[block + j * m + i] = data[flat];
    }
    return viewOf(upload(stored, values, dtype, backend), (base) => T.transpose(base, -2, -1));
  }
  if (view === 'strided' && rank >= 1) {
    const stored = shape.map((d) => 2 * d + 1);
    const storedStrides = rowMajorStrides(stored);
    const values = new Array<number>(sizeOfShape(stored)).fill(garbage(dtype));
    for (let flat = 0; flat < data.length; flat++) {
      const index = unravel(flat, shape).map((i) => 1 + 2 * i);
      values[ravel(index, storedStrides)] = data[flat];
    }
    return viewOf(upload(stored, values, dtype, backend), (base) =>
      T.slice(base, ...shape.map((d): [number, number, number] => [1, 1 + 2 * d, 2])),
    );
  }
  const axis = view === 'expanded' ? constantAxis(h) : -1;
  if (axis >= 0) {
    const stored = shape.map((d, i) => (i === axis ? 1 : d));
    const values = data.filter((_, flat) => unravel(flat, shape)[axis] === 0);
    return viewOf(upload(stored, values, dtype, backend), (base) => T.expand(base, shape));
  }
  return upload(shape, data, dtype, backend);
}

/** The view `make(base)`, with `base`'s own handle released (the view keeps the storage alive). */
function viewOf(base: Tensor, make: (base: Tensor) => Tensor): Tensor {
  const view = make(base);
  if (view !== base) base.dispose();
  return view;
}

// ---------------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------------

/**
 * Axis sizes: 1, small primes and 17 (odd sizes catch tiling and vectorisation bugs).
 *
 * @example
 * ```ts
 * fc.sample(dimArb(2), 3); // e.g. [2, 17, 5]
 * ```
 */
export function dimArb(minDim = 1): fc.Arbitrary<number> {
  const pick = (sizes: number[]) => fc.constantFrom(...sizes.filter((d) => d >= minDim));
  const options = [
    { weight: 3, sizes: [1, 2, 3] },
    { weight: 2, sizes: [5, 7] },
    { weight: 1, sizes: [17] },
  ].filter((o) => o.sizes.some((d) => d >= minDim));
  return fc.oneof(...options.map((o) => ({ weight: o.weight, arbitrary: pick(o.sizes) })));
}

/** Options of {@link shapeArb}. */
export interface ShapeOptions {
  minRank?: number;
  maxRank?: number;
  /** Largest element count; larger draws have their biggest axes cut to 3 (then 1). */
  maxSize?: number;
  /** Smallest axis size. */
  minDim?: number;
}

/**
 * Shapes with axes drawn by {@link dimArb}.
 *
 * @example
 * ```ts
 * fc.sample(shapeArb({ minRank: 2, maxRank: 2 }), 1); // e.g. [[17, 3]]
 * ```
 */
export function shapeArb(options: ShapeOptions = {}): fc.Arbitrary<number[]> {
  const { minRank = 0, maxRank = 3, maxSize = 400, minDim = 1 } = options;
  return fc.array(dimArb(minDim), { minLength: minRank, maxLength: maxRank }).map((shape) => {
    const s = [...shape];
    while (sizeOfShape(s) > maxSize) {
      const i = s.indexOf(Math.max(...s));
      s[i] = s[i] > 3 ? 3 : Math.max(1, minDim);
      if (s.every((d) => d <= Math.max(1, minDim))) break;
    }
    return s;
  });
}

/** Multiples of `step` in [lo, hi]: exact in float32, with 0, halves and frequent ties. @example `gridValues(-2, 2, 0.5)` */
export function gridValues(lo: number, hi: number, step = 0.25): fc.Arbitrary<number> {
  return fc.integer({ min: Math.ceil(lo / step), max: Math.floor(hi / step) }).map((i) => i * step + 0);
}

/**
 * float32-exact values spread uniformly over [lo, hi] (bounds must be float32-exact); ties are
 * rare. (Not `fc.double`: it is uniform over representable doubles, so almost all its draws in
 * [−3, 3] are tiny, and it favours the bounds.)
 *
 * @example
 * ```ts
 * smoothValues(1 / 16, 8); // positive values for log/sqrt
 * ```
 */
export function smoothValues(lo: number, hi: number): fc.Arbitrary<number> {
  const steps = 2 ** 24;
  return fc.noBias(fc.integer({ min: 0, max: steps })).map((i) => Math.fround(lo + ((hi - lo) * i) / steps));
}

/** Grid values (awkward points) mixed with smooth values, in [lo, hi]. @example `mixedValues(-3, 3)` */
export function mixedValues(lo: number, hi: number): fc.Arbitrary<number> {
  return fc.oneof(gridValues(lo, hi), smoothValues(lo, hi));
}

/** Values with |v| in [lo, hi], either sign (denominators, kinks avoided). @example `awayFromZero(0.25, 4)` */
export function awayFromZero(lo: number, hi: number): fc.Arbitrary<number> {
  return fc.tuple(smoothValues(lo, hi), fc.boolean()).map(([v, negative]) => (negative ? -v : v));
}

/** int32 values in [lo, hi]. @example `intValues(0, 4)` */
export const intValues = (lo = -9, hi = 9): fc.Arbitrary<number> => fc.integer({ min: lo, max: hi });
/** bool values as 0/1. @example `hostArb([3], boolValues, { dtype: 'bool' })` */
export const boolValues: fc.Arbitrary<number> = fc.constantFrom(0, 1);

/** Options of {@link hostArb}. */
export interface HostOptions {
  /** Default `float32`. */
  dtype?: DType;
  /** View kinds to draw from (default: all). */
  views?: readonly ViewKind[];
}

/**
 * A {@link HostTensor} of `shape` with values from `values` and a random storage layout. For the
 * `expanded` layout the values repeat along one axis of size > 1.
 *
 * @example
 * ```ts
 * hostArb([3, 5], mixedValues(-3, 3), { views: ['transposed'] });
 * ```
 */
export function hostArb(
  shape: number[],
  values: fc.Arbitrary<number>,
  options: HostOptions = {},
): fc.Arbitrary<HostTensor> {
  const { dtype = 'float32', views = VIEW_KINDS } = options;
  const n = sizeOfShape(shape);
  const array = (length: number) => fc.array(values, { minLength: length, maxLength: length });
  const repeatable = shape.flatMap((d, i) => (d > 1 ? [i] : []));
  return fc.constantFrom(...views).chain((wanted): fc.Arbitrary<HostTensor> => {
    const view: ViewKind =
      (wanted === 'transposed' && shape.length < 2) ||
      (wanted === 'strided' && shape.length < 1) ||
      (wanted === 'expanded' && repeatable.length === 0)
        ? 'contiguous'
        : wanted;
    if (view !== 'expanded') return array(n).map((data) => ({ shape, data, dtype, view }));
    return fc.constantFrom(...repeatable).chain((axis) => {
      const reduced = shape.map((d, i) => (i === axis ? 1 : d));
      const reducedStrides = rowMajorStrides(reduced);
      return array(sizeOfShape(reduced)).map((small) => {
        const data = Array.from({ length: n }, (_, flat) => {
          const index = unravel(flat, shape);
          index[axis] = 0;
          return small[ravel(index, reducedStrides)];
        });
        return { shape, data, dtype, view };
      });
    });
  });
}

/**
 * A {@link HostTensor} of `shape` whose values all differ (no ties for max/min gradients): a
 * shuffled grid with spacing 2⁻⁵ centred on 0. `offset` 1 shifts the grid by half a step, so
 * tensors drawn with offsets 0 and 1 never share a value. The `expanded` layout (which repeats
 * values) is not drawn.
 *
 * @example
 * ```ts
 * fc.tuple(distinctHostArb([3, 5], 0), distinctHostArb([5], 1)); // maximum() never ties
 * ```
 */
export function distinctHostArb(shape: number[], offset: 0 | 1 = 0): fc.Arbitrary<HostTensor> {
  const n = sizeOfShape(shape);
  const indices = [...Array(n).keys()];
  return fc
    .tuple(
      fc.shuffledSubarray(indices, { minLength: n, maxLength: n }),
      fc.constantFrom<ViewKind>('contiguous', 'transposed', 'strided'),
    )
    .chain(([order, view]) =>
      hostArb(shape, fc.constant(0), { views: [view] }).map((h) => ({
        ...h,
        // Odd numerators for offset 1, even ones for offset 0, whatever n is.
        data: order.map((i) => (2 * (i - Math.floor(n / 2)) + offset) / 64),
      })),
    );
}

/**
 * Shapes of `count` operands that broadcast together: each operand drops some leading axes of a
 * common shape and sets some of its axes to 1.
 *
 * @example
 * ```ts
 * fc.sample(broadcastShapesArb(2), 1); // e.g. [[[5, 1, 3], [7, 3]]]
 * ```
 */
export function broadcastShapesArb(count: number, options: ShapeOptions = {}): fc.Arbitrary<number[][]> {
  return shapeArb({ maxRank: 4, maxSize: 300, ...options }).chain((out) =>
    fc
      .array(
        fc.tuple(
          fc.nat(out.length),
          fc.array(fc.boolean(), { minLength: out.length, maxLength: out.length }),
        ),
        { minLength: count, maxLength: count },
      )
      .map((specs) => specs.map(([drop, ones]) => out.slice(drop).map((d, i) => (ones[i + drop] ? 1 : d)))),
  );
}

type Values = fc.Arbitrary<number>;

/** One input of a shape drawn from `shape`. */
function single(shape: fc.Arbitrary<number[]>, values: Values, options?: HostOptions) {
  return shape.chain((s) => hostArb(s, values, options)).map((h) => [h]);
}

/** Two or more broadcasting inputs, with values and dtypes per input. */
function broadcasting(inputs: { values: Values; dtype?: DType }[], options?: ShapeOptions) {
  return broadcastShapesArb(inputs.length, options).chain((shapes) =>
    fc.tuple(...shapes.map((s, i) => hostArb(s, inputs[i].values, { dtype: inputs[i].dtype }))),
  );
}

/** Inputs of identical shape. */
function sameShape(count: number, values: Values, options?: ShapeOptions & HostOptions) {
  return shapeArb(options).chain((s) =>
    fc.tuple(...Array.from({ length: count }, () => hostArb(s, values, options))),
  );
}

const general = mixedValues(-3, 3);
const positive = smoothValues(1 / 16, 8);
const ints = intValues();

// ---------------------------------------------------------------------------------------------
// Primitive cases
// ---------------------------------------------------------------------------------------------

const UNARY_FNS: { [K in UnaryOp]: (x: Tensor) => Tensor } = {
  neg: T.neg,
  abs: T.abs,
  sign: T.sign,
  exp: T.exp,
  expm1: T.expm1,
  log: T.log,
  log1p: T.log1p,
  sqrt: T.sqrt,
  rsqrt: T.rsqrt,
  reciprocal: T.reciprocal,
  sin: T.sin,
  cos: T.cos,
  tanh: T.tanh,
  sigmoid: T.sigmoid,
  relu: T.relu,
  softplus: T.softplus,
  erf: T.erf,
  floor: T.floor,
  ceil: T.ceil,
  round: T.round,
  logicalNot: T.logicalNot,
};

function unaryCase(op: UnaryOp, values: Values, extra: Partial<OpCase> = {}): OpCase {
  return {
    name: op,
    op,
    inputs: single(shapeArb(), values),
    run: ([x]) => UNARY_FNS[op](x),
    tol: DEFAULT_TOL,
    grad: true,
    ...extra,
  };
}

const UNARY_CASES: OpCase[] = [
  unaryCase('neg', general),
  unaryCase('neg', ints, {
    name: 'neg-int32',
    inputs: single(shapeArb(), ints, { dtype: 'int32' }),
    grad: false,
  }),
  unaryCase('abs', general, { grad: KINK }),
  unaryCase('abs', awayFromZero(1 / 16, 3), { name: 'abs-smooth' }),
  unaryCase('abs', ints, {
    name: 'abs-int32',
    inputs: single(shapeArb(), ints, { dtype: 'int32' }),
    grad: false,
  }),
  unaryCase('sign', general, { grad: PIECEWISE }),
  unaryCase('sign', ints, {
    name: 'sign-int32',
    inputs: single(shapeArb(), ints, { dtype: 'int32' }),
    grad: false,
  }),
  unaryCase('exp', mixedValues(-5, 5), { tol: TRANSCENDENTAL_TOL }),
  unaryCase('expm1', fc.oneof(mixedValues(-3, 3), smoothValues(-(2 ** -10), 2 ** -10)), {
    tol: TRANSCENDENTAL_TOL,
  }),
  unaryCase('log', positive, { tol: TRANSCENDENTAL_TOL }),
  unaryCase('log1p', fc.oneof(mixedValues(-0.75, 8), smoothValues(-(2 ** -10), 2 ** -10)), {
    tol: TRANSCENDENTAL_TOL,
  }),
  unaryCase('sqrt', positive, { tol: TRANSCENDENTAL_TOL }),
  unaryCase('rsqrt', positive, { tol: TRANSCENDENTAL_TOL }),
  unaryCase('reciprocal', awayFromZero(1 / 4, 4)),
  unaryCase('sin', mixedValues(-4, 4), { tol: TRIG_TOL }),
  unaryCase('cos', mixedValues(-4, 4), { tol: TRIG_TOL }),
  unaryCase('tanh', mixedValues(-6, 6), { tol: TRANSCENDENTAL_TOL }),
  unaryCase('sigmoid', mixedValues(-8, 8), { tol: TRANSCENDENTAL_TOL }),
  unaryCase('sigmoid', fc.oneof(gridValues(-100, -20, 4), gridValues(20, 100, 4)), {
    name: 'sigmoid-extreme',
    tol: TRANSCENDENTAL_TOL,
  }),
  unaryCase('relu', general, { grad: KINK }),
  unaryCase('relu', awayFromZero(1 / 16, 3), { name: 'relu-smooth' }),
  unaryCase('softplus', mixedValues(-20, 20), { tol: TRANSCENDENTAL_TOL }),
  unaryCase('softplus', gridValues(-100, 100, 4), { name: 'softplus-extreme', tol: TRANSCENDENTAL_TOL }),
  unaryCase('erf', mixedValues(-4, 4), { tol: TRANSCENDENTAL_TOL }),
  unaryCase('floor', general, { grad: PIECEWISE }),
  unaryCase('ceil', general, { grad: PIECEWISE }),
  unaryCase('round', general, { grad: PIECEWISE }),
  unaryCase('logicalNot', boolValues, {
    inputs: single(shapeArb(), boolValues, { dtype: 'bool' }),
    grad: false,
  }),
  unaryCase('logicalNot', gridValues(-1, 1, 0.5), { name: 'logicalNot-float', grad: false }),
];

type BinaryFn = (a: Tensor | number, b: Tensor | number) => Tensor;

function binaryCase(
  name: string,
  op: OpName,
  fn: BinaryFn,
  a: { values: Values; dtype?: DType },
  b: { values: Values; dtype?: DType },
  extra: Partial<OpCase> = {},
): OpCase {
  const isFloat = (d?: DType) => d === undefined || d === 'float32' || d === 'float64';
  return {
    name,
    op,
    inputs: broadcasting([a, b]),
    run: ([x, y]) => fn(x, y),
    tol: DEFAULT_TOL,
    grad: isFloat(a.dtype) || isFloat(b.dtype),
    ...extra,
  };
}

/** A binary case whose operands broadcast and never tie (for gradients of maximum/minimum). */
function distinctPairCase(name: string, op: OpName, fn: BinaryFn): OpCase {
  return {
    name,
    op,
    inputs: broadcastShapesArb(2).chain(([sa, sb]) =>
      fc.tuple(distinctHostArb(sa, 0), distinctHostArb(sb, 1)),
    ),
    run: ([x, y]) => fn(x, y),
    tol: DEFAULT_TOL,
    grad: true,
  };
}

const F = (values: Values) => ({ values });
const I = (values: Values = ints) => ({ values, dtype: 'int32' as const });
const B = { values: boolValues, dtype: 'bool' as const };
const nonZeroInts = intValues(1, 9).chain((v) => fc.constantFrom(v, -v));

const COMPARISONS = ['equal', 'notEqual', 'less', 'lessEqual', 'greater', 'greaterEqual'] as const;
const LOGICAL = ['logicalAnd', 'logicalOr', 'logicalXor'] as const;

const BINARY_CASES: OpCase[] = [
  binaryCase('add-broadcast', 'add', T.add, F(general), F(general)),
  {
    name: 'add-same-shape',
    op: 'add',
    inputs: sameShape(2, general),
    run: ([x, y]) => T.add(x, y),
    tol: DEFAULT_TOL,
    grad: true,
  },
  {
    name: 'add-scalar',
    op: 'add',
    inputs: single(shapeArb(), general),
    run: ([x]) => T.add(x, 1.5),
    tol: DEFAULT_TOL,
    grad: true,
  },
  binaryCase('add-int32', 'add', T.add, I(), I()),
  binaryCase('add-int-float', 'add', T.add, I(), F(general)),
  binaryCase('sub-broadcast', 'sub', T.sub, F(general), F(general)),
  {
    name: 'sub-scalar-left',
    op: 'sub',
    inputs: single(shapeArb(), general),
    run: ([x]) => T.sub(2, x),
    tol: DEFAULT_TOL,
    grad: true,
  },
  binaryCase('mul-broadcast', 'mul', T.mul, F(general), F(general)),
  binaryCase('mul-int32', 'mul', T.mul, I(), I()),
  binaryCase('div-broadcast', 'div', T.div, F(general), F(awayFromZero(1 / 4, 4))),
  binaryCase('div-int32', 'div', T.div, I(), I(nonZeroInts)),
  binaryCase('pow-broadcast', 'pow', T.pow, F(smoothValues(1 / 4, 4)), F(mixedValues(-2, 2)), {
    tol: POW_TOL,
  }),
  {
    name: 'pow-scalar',
    op: 'pow',
    inputs: single(shapeArb(), positive),
    run: ([x]) => T.pow(x, 3),
    tol: POW_TOL,
    grad: true,
  },
  binaryCase('maximum', 'maximum', T.maximum, F(gridValues(-2, 2)), F(gridValues(-2, 2)), { grad: TIES }),
  distinctPairCase('maximum-distinct', 'maximum', T.maximum),
  binaryCase('maximum-int32', 'maximum', T.maximum, I(), I()),
  binaryCase('minimum', 'minimum', T.minimum, F(gridValues(-2, 2)), F(gridValues(-2, 2)), { grad: TIES }),
  distinctPairCase('minimum-distinct', 'minimum', T.minimum),
  ...COMPARISONS.map((op) =>
    binaryCase(op, op, (x, y) => T.binary(op, x, y), F(gridValues(-1, 1, 0.5)), F(gridValues(-1, 1, 0.5)), {
      grad: false,
    }),
  ),
  binaryCase('less-int32', 'less', T.less, I(intValues(-2, 2)), I(intValues(-2, 2)), { grad: false }),
  binaryCase('equal-bool', 'equal', T.equal, B, B, { grad: false }),
  ...LOGICAL.map((op) => binaryCase(op, op, (x, y) => T.binary(op, x, y), B, B, { grad: false })),
  binaryCase('logicalOr-float', 'logicalOr', T.logicalOr, F(gridValues(-1, 1, 0.5)), B, { grad: false }),
];

type ReduceFn = (x: Tensor, axes?: number | number[], keepDims?: boolean) => Tensor;

function reduceCase(
  name: string,
  op: OpName,
  fn: ReduceFn,
  values: Values,
  axes: number | number[] | undefined,
  keepDims: boolean,
  extra: Partial<OpCase> & { shape?: ShapeOptions; dtype?: DType; distinct?: boolean } = {},
): OpCase {
  const { shape, dtype, distinct, ...rest } = extra;
  // The smallest rank for which every axis exists (axis a needs a + 1 axes, axis −a needs a).
  const minRank = Math.max(0, ...[axes ?? []].flat().map((a) => (a < 0 ? -a : a + 1)));
  return {
    name,
    op,
    inputs: distinct
      ? shapeArb({ minRank, maxRank: 3, ...shape }).chain((s) => distinctHostArb(s).map((h) => [h]))
      : single(shapeArb({ minRank, maxRank: 3, ...shape }), values, { dtype }),
    run: ([x]) => fn(x, axes, keepDims),
    tol: ACCUMULATE_TOL,
    grad: dtype === undefined,
    ...rest,
  };
}

const argmax: ReduceFn = (x, axes, keepDims) => T.argmax(x, axes as number | undefined, keepDims);
const argmin: ReduceFn = (x, axes, keepDims) => T.argmin(x, axes as number | undefined, keepDims);
const ties = gridValues(-2, 2, 0.5);
const smallProduct = { shape: { maxSize: 30 } };

const REDUCE_CASES: OpCase[] = [
  reduceCase('sum-all', 'sum', T.sum, general, undefined, false),
  reduceCase('sum-last-keep', 'sum', T.sum, general, -1, true),
  reduceCase('sum-axes', 'sum', T.sum, general, [0, 2], false),
  reduceCase('sum-axes-keep', 'sum', T.sum, general, [0, -1], true, { shape: { minRank: 2 } }),
  reduceCase('sum-int32', 'sum', T.sum, ints, 0, false, { dtype: 'int32' }),
  reduceCase('sum-bool', 'sum', T.sum, boolValues, undefined, false, { dtype: 'bool' }),
  reduceCase('prod-all', 'prod', T.prod, awayFromZero(0.5, 1.5), undefined, false, smallProduct),
  reduceCase('prod-axis-keep', 'prod', T.prod, awayFromZero(0.5, 1.5), -1, true, smallProduct),
  reduceCase('prod-int32', 'prod', T.prod, intValues(-3, 3), 0, false, { dtype: 'int32', ...smallProduct }),
  reduceCase('max', 'max', T.max, ties, -1, false, { grad: TIES }),
  reduceCase('max-distinct', 'max', T.max, smoothValues(-3, 3), [0, 1], true, { distinct: true }),
  reduceCase('max-all', 'max', T.max, smoothValues(-3, 3), undefined, false, { distinct: true }),
  reduceCase('max-int32', 'max', T.max, ints, 0, true, { dtype: 'int32' }),
  reduceCase('min', 'min', T.min, ties, 0, true, { grad: TIES }),
  reduceCase('min-distinct', 'min', T.min, smoothValues(-3, 3), -1, false, { distinct: true }),
  reduceCase('argmax', 'argmax', argmax, ties, -1, false, { grad: false, tol: DEFAULT_TOL }),
  reduceCase('argmax-all', 'argmax', argmax, ties, undefined, false, { grad: false, tol: DEFAULT_TOL }),
  reduceCase('argmax-int32', 'argmax', argmax, intValues(-2, 2), 0, true, {
    dtype: 'int32',
    grad: false,
    tol: DEFAULT_TOL,
  }),
  reduceCase('argmin', 'argmin', argmin, ties, 0, true, { grad: false, tol: DEFAULT_TOL }),
  reduceCase('argmin-all', 'argmin', argmin, ties, undefined, false, { grad: false, tol: DEFAULT_TOL }),
];

/** `[..., M, K]` and `[..., K, N]` operands with broadcasting batch shapes (up to 2 batch axes). */
function matmulInputs(options: {
  batch?: boolean;
  views?: readonly ViewKind[];
  values?: Values;
  dtype?: DType;
}) {
  const { batch = false, views, values = mixedValues(-2, 2), dtype } = options;
  const batches = batch ? broadcastShapesArb(2, { maxRank: 2, maxSize: 12 }) : fc.constant([[], []]);
  return fc
    .tuple(batches, dimArb(), dimArb(), dimArb())
    .chain(([[ba, bb], m, k, n]) =>
      fc.tuple(
        hostArb([...ba, m, k], values, { views, dtype }),
        hostArb([...bb, k, n], values, { views, dtype }),
      ),
    );
}

/** Linear-layer operands: x `[..., M, K]` (0–1 batch axes), weight `[N, K]`, bias `[N]`, any layouts. */
function linearInputs(options: { batch?: boolean; values?: Values; dtype?: DType }) {
  const { batch = false, values = mixedValues(-2, 2), dtype } = options;
  const batches = batch ? shapeArb({ minRank: 1, maxRank: 1, maxSize: 4 }) : fc.constant([]);
  return fc
    .tuple(batches, dimArb(), dimArb(), dimArb())
    .chain(([b, m, k, n]) =>
      fc.tuple(
        hostArb([...b, m, k], values, { dtype }),
        hostArb([n, k], values, { dtype }),
        hostArb([n], values, { dtype }),
      ),
    );
}

const MATMUL_CASES: OpCase[] = [
  {
    name: 'matmul',
    op: 'matmul',
    inputs: matmulInputs({}),
    run: ([a, b]) => T.matmul(a, b),
    tol: ACCUMULATE_TOL,
    grad: true,
  },
  {
    name: 'matmul-batched',
    op: 'matmul',
    inputs: matmulInputs({ batch: true }),
    run: ([a, b]) => T.matmul(a, b),
    tol: ACCUMULATE_TOL,
    grad: true,
  },
  {
    name: 'matmul-transposed',
    op: 'matmul',
    inputs: matmulInputs({ batch: true, views: ['transposed'] }),
    run: ([a, b]) => T.matmul(a, b),
    tol: ACCUMULATE_TOL,
    grad: true,
  },
  {
    name: 'matmul-17',
    op: 'matmul',
    inputs: fc.tuple(hostArb([17, 17], general), hostArb([17, 17], general)),
    run: ([a, b]) => T.matmul(a, b),
    tol: ACCUMULATE_TOL,
    grad: true,
  },
  {
    name: 'matmul-vector-matrix',
    op: 'matmul',
    inputs: fc
      .tuple(dimArb(), dimArb())
      .chain(([k, n]) => fc.tuple(hostArb([k], general), hostArb([k, n], general))),
    run: ([a, b]) => T.matmul(a, b),
    tol: ACCUMULATE_TOL,
    grad: true,
  },
  {
    name: 'matmul-matrix-vector',
    op: 'matmul',
    inputs: fc
      .tuple(shapeArb({ minRank: 0, maxRank: 1, maxSize: 5 }), dimArb(), dimArb())
      .chain(([batch, m, k]) => fc.tuple(hostArb([...batch, m, k], general), hostArb([k], general))),
    run: ([a, b]) => T.matmul(a, b),
    tol: ACCUMULATE_TOL,
    grad: true,
  },
  {
    name: 'matmul-dot',
    op: 'matmul',
    inputs: dimArb().chain((k) => fc.tuple(hostArb([k], general), hostArb([k], general))),
    run: ([a, b]) => T.matmul(a, b),
    tol: ACCUMULATE_TOL,
    grad: true,
  },
  {
    name: 'matmul-bias',
    op: 'matmul',
    inputs: linearInputs({}),
    run: ([x, w, b]) => T.linear(x, w, b),
    tol: ACCUMULATE_TOL,
    grad: true,
  },
  {
    name: 'matmul-bias-batched',
    op: 'matmul',
    inputs: linearInputs({ batch: true }),
    run: ([x, w, b]) => T.linear(x, w, b),
    tol: ACCUMULATE_TOL,
    grad: true,
  },
  {
    name: 'matmul-bias-vector',
    op: 'matmul',
    inputs: fc
      .tuple(dimArb(), dimArb())
      .chain(([k, n]) => fc.tuple(hostArb([k], general), hostArb([n, k], general), hostArb([n], general))),
    run: ([x, w, b]) => T.linear(x, w, b),
    tol: ACCUMULATE_TOL,
    grad: true,
  },
  {
    name: 'matmul-bias-int32',
    op: 'matmul',
    inputs: linearInputs({ values: ints, dtype: 'int32' }),
    run: ([x, w, b]) => T.linear(x, w, b),
    tol: DEFAULT_TOL,
    grad: false,
  },
  {
    name: 'matmul-int32',
    op: 'matmul',
    inputs: matmulInputs({ batch: true, values: ints, dtype: 'int32' }),
    run: ([a, b]) => T.matmul(a, b),
    tol: DEFAULT_TOL,
    grad: false,
  },
];

/** `count` tensors that agree except along `axis` (of a tensor of rank ≥ `minRank`). */
function concatInputs(count: number, axis: number, minRank: number, dtype?: DType) {
  return fc
    .tuple(
      shapeArb({ minRank, maxRank: 3, maxSize: 60 }),
      fc.array(dimArb(), { minLength: count, maxLength: count }),
    )
    .chain(([shape, sizes]) => {
      const a = axis < 0 ? shape.length + axis : axis;
      return fc.tuple(
        ...sizes.map((d) =>
          hostArb(
            shape.map((s, i) => (i === a ? d : s)),
            dtype === 'int32' ? ints : general,
            { dtype },
          ),
        ),
      );
    });
}

/** `x` of rank ≥ 1 and int32 indices of `indexShape` into its axis `axis`. */
function takeInputs(axis: number, indexShape: fc.Arbitrary<number[]>) {
  return fc
    .tuple(shapeArb({ minRank: axis < 0 ? -axis : axis + 1, maxRank: 3, maxSize: 60 }), indexShape)
    .chain(([shape, idxShape]) => {
      const dim = shape[axis < 0 ? shape.length + axis : axis];
      return fc.tuple(
        hostArb(shape, general),
        hostArb(idxShape, intValues(0, dim - 1), { dtype: 'int32', views: ['contiguous', 'strided'] }),
      );
    });
}

/** Source blocks and int32 indices (duplicates likely) into `size` slots at axis `axis`. */
function scatterInputs(axis: number, size: number, indexRank: number) {
  return fc
    .tuple(
      shapeArb({ minRank: axis, maxRank: axis, maxSize: 6 }),
      shapeArb({ minRank: indexRank, maxRank: indexRank, maxSize: 20 }),
      shapeArb({ maxRank: 1, maxSize: 7 }),
    )
    .chain(([before, idxShape, after]) =>
      fc.tuple(
        hostArb([...before, ...idxShape, ...after], general),
        hostArb(idxShape, intValues(0, size - 1), { dtype: 'int32', views: ['contiguous', 'strided'] }),
      ),
    );
}

/** A leakyRelu case: the slope, the inputs, and whether they include the kink at 0. */
const leakyReluCase = (name: string, slope: number, values: Values, grad: true | string): OpCase => ({
  name,
  op: 'leakyRelu',
  inputs: single(shapeArb(), values),
  run: ([x]) => T.leakyRelu(x, slope),
  tol: DEFAULT_TOL,
  grad,
});

const OTHER_CASES: OpCase[] = [
  leakyReluCase('leakyRelu', 0.2, general, KINK),
  leakyReluCase('leakyRelu-smooth', 0.2, awayFromZero(1 / 16, 3), true),
  leakyReluCase('leakyRelu-steep', -1.5, awayFromZero(1 / 16, 3), true),
  {
    name: 'leakyReluGrad',
    op: 'leakyReluGrad',
    inputs: broadcasting([F(general), F(general)]),
    run: ([x, g]) => T.leakyReluGrad(x, g, 0.2),
    tol: DEFAULT_TOL,
    grad: true,
    gradInputs: [1],
  },
  {
    name: 'where',
    op: 'where',
    inputs: broadcasting([B, F(general), F(general)]),
    run: ([c, a, b]) => T.where(c, a, b),
    tol: DEFAULT_TOL,
    grad: true,
    gradInputs: [1, 2],
  },
  {
    name: 'where-scalar',
    op: 'where',
    inputs: broadcasting([B, F(general)]),
    run: ([c, a]) => T.where(c, a, 0),
    tol: DEFAULT_TOL,
    grad: true,
    gradInputs: [1],
  },
  {
    name: 'where-int32',
    op: 'where',
    inputs: broadcasting([B, I(), I()]),
    run: ([c, a, b]) => T.where(c, a, b),
    tol: DEFAULT_TOL,
    grad: false,
  },
  {
    name: 'cast-float-int32',
    op: 'cast',
    inputs: single(shapeArb(), mixedValues(-5, 5)),
    run: ([x]) => T.cast(x, 'int32'),
    tol: DEFAULT_TOL,
    grad: false,
  },
  {
    name: 'cast-int32-float',
    op: 'cast',
    inputs: single(shapeArb(), ints, { dtype: 'int32' }),
    run: ([x]) => T.cast(x, 'float32'),
    tol: DEFAULT_TOL,
    grad: false,
  },
  {
    name: 'cast-float-bool',
    op: 'cast',
    inputs: single(shapeArb(), gridValues(-1, 1, 0.5)),
    run: ([x]) => T.cast(x, 'bool'),
    tol: DEFAULT_TOL,
    grad: false,
  },
  {
    name: 'cast-bool-int32',
    op: 'cast',
    inputs: single(shapeArb(), boolValues, { dtype: 'bool' }),
    run: ([x]) => T.cast(x, 'int32'),
    tol: DEFAULT_TOL,
    grad: false,
  },
  {
    name: 'copy',
    op: 'copy',
    inputs: single(shapeArb(), general),
    run: ([x]) => T.clone(x),
    tol: DEFAULT_TOL,
    grad: true,
  },
  {
    name: 'copy-bool',
    op: 'copy',
    inputs: single(shapeArb(), boolValues, { dtype: 'bool' }),
    run: ([x]) => T.clone(x),
    tol: DEFAULT_TOL,
    grad: false,
  },
  {
    name: 'concat',
    op: 'concat',
    inputs: concatInputs(3, 0, 1),
    run: (xs) => T.concat(xs, 0),
    tol: DEFAULT_TOL,
    grad: true,
  },
  {
    // More inputs than one gather launch binds (15 on lavapipe): two launches, some views copied apart.
    name: 'concat-many',
    op: 'concat',
    inputs: concatInputs(20, 0, 1),
    run: (xs) => T.concat(xs, 0),
    tol: DEFAULT_TOL,
    grad: false,
  },
  {
    name: 'concat-last',
    op: 'concat',
    inputs: concatInputs(2, -1, 1),
    run: (xs) => T.concat(xs, -1),
    tol: DEFAULT_TOL,
    grad: true,
  },
  {
    name: 'concat-middle',
    op: 'concat',
    inputs: concatInputs(3, 1, 3),
    run: (xs) => T.concat(xs, 1),
    tol: DEFAULT_TOL,
    grad: true,
  },
  {
    name: 'concat-single-int32',
    op: 'concat',
    inputs: concatInputs(1, 0, 1, 'int32'),
    run: (xs) => T.concat(xs, 0),
    tol: DEFAULT_TOL,
    grad: false,
  },
  {
    name: 'take',
    op: 'take',
    inputs: takeInputs(0, shapeArb({ minRank: 1, maxRank: 1 })),
    run: ([x, idx]) => T.take(x, idx, 0),
    tol: DEFAULT_TOL,
    grad: true,
    gradInputs: [0],
  },
  {
    name: 'take-last-2d-indices',
    op: 'take',
    inputs: takeInputs(-1, shapeArb({ minRank: 2, maxRank: 2, maxSize: 20 })),
    run: ([x, idx]) => T.take(x, idx, -1),
    tol: DEFAULT_TOL,
    grad: true,
    gradInputs: [0],
  },
  {
    name: 'scatterAdd',
    op: 'scatterAdd',
    inputs: scatterInputs(0, 5, 1),
    run: ([src, idx]) => T.scatterAdd(src, idx, 0, 5),
    tol: ACCUMULATE_TOL,
    grad: true,
    gradInputs: [0],
  },
  {
    name: 'scatterAdd-middle-2d-indices',
    op: 'scatterAdd',
    inputs: scatterInputs(1, 3, 2),
    run: ([src, idx]) => T.scatterAdd(src, idx, 1, 3),
    tol: ACCUMULATE_TOL,
    grad: true,
    gradInputs: [0],
  },
  {
    name: 'pad',
    op: 'pad',
    inputs: single(shapeArb({ minRank: 2, maxRank: 2 }), general),
    run: ([x]) =>
      T.pad(x, [
        [1, 2],
        [0, 1],
      ]),
    tol: DEFAULT_TOL,
    grad: true,
  },
  {
    name: 'pad-interior',
    op: 'pad',
    inputs: single(shapeArb({ minRank: 2, maxRank: 2 }), general),
    run: ([x]) =>
      T.pad(
        x,
        [
          [0, 1, 2],
          [2, 0, 1],
        ],
        -1.5,
      ),
    tol: DEFAULT_TOL,
    grad: true,
  },
  {
    name: 'pad-leading-axis',
    op: 'pad',
    inputs: single(shapeArb({ minRank: 1, maxRank: 3 }), general),
    run: ([x]) => T.pad(x, [[2, 1, 1]]),
    tol: DEFAULT_TOL,
    grad: true,
  },
];

const like = single(shapeArb({ minRank: 1 }), general, { views: ['contiguous'] });
const randomOptions = (x: Tensor, seed: number) => ({
  seed,
  dtype: x.dtype,
  backend: x.backend.name,
});

const RANDOM_CASES: OpCase[] = [
  {
    name: 'random-uniform',
    op: 'random',
    inputs: like,
    run: ([x]) => T.rand(x.shape, randomOptions(x, 1234)),
    tol: DEFAULT_TOL,
    grad: false,
  },
  {
    name: 'random-normal',
    op: 'random',
    inputs: like,
    run: ([x]) => T.randn(x.shape, randomOptions(x, 99)),
    tol: TRANSCENDENTAL_TOL,
    grad: false,
  },
  {
    name: 'random-randint',
    op: 'random',
    inputs: like,
    run: ([x]) => T.randint(-3, 9, x.shape, { seed: 5, backend: x.backend.name }),
    tol: DEFAULT_TOL,
    grad: false,
  },
  {
    name: 'random-bernoulli',
    op: 'random',
    inputs: like,
    run: ([x]) => T.bernoulli(0.3, x.shape, { seed: 7, backend: x.backend.name }),
    tol: DEFAULT_TOL,
    grad: false,
  },
  {
    name: 'random-generator-stream',
    op: 'random',
    inputs: like,
    run: ([x]) => {
      const generator = new T.Generator(2024);
      const options = { generator, dtype: x.dtype, backend: x.backend.name };
      return T.concat([T.rand(x.shape, options), T.randn(x.shape, options)], 0);
    },
    tol: TRANSCENDENTAL_TOL,
    grad: false,
  },
];

/** Image batches `[N, C, H, W]` with H, W ≥ 3 (every window case fits). */
const imageShape = fc.tuple(int(1, 2), int(1, 2), int(3, 7), int(3, 7));

/** Window tensors `[N, C, KH, KW, OH, OW]` for a kernel. */
function windowShape(kernel: [number, number]) {
  return fc
    .tuple(int(1, 2), int(1, 2), int(1, 4), int(1, 4))
    .map(([n, c, oh, ow]) => [n, c, ...kernel, oh, ow]);
}

function int(min: number, max: number): fc.Arbitrary<number> {
  return fc.integer({ min, max });
}

/** The smallest `[H, W]` whose windows have the shape of `g`. */
function imageSize(
  shape: readonly number[],
  kernel: [number, number],
  stride: [number, number],
  dilation: [number, number],
): [number, number] {
  const size = (axis: number) =>
    (shape[4 + axis] - 1) * stride[axis] + dilation[axis] * (kernel[axis] - 1) + 1;
  return [size(0), size(1)];
}

const VIEW_CASES: OpCase[] = [
  {
    name: 'reshape-flatten',
    op: 'reshape',
    inputs: single(shapeArb({ minRank: 2 }), general),
    run: ([x]) => T.reshape(x, [-1]),
    tol: DEFAULT_TOL,
    grad: true,
  },
  {
    name: 'reshape-merge',
    op: 'reshape',
    inputs: single(shapeArb({ minRank: 3 }), general),
    run: ([x]) => T.reshape(x, [x.shape[0], -1]),
    tol: DEFAULT_TOL,
    grad: true,
  },
  {
    name: 'reshape-split',
    op: 'reshape',
    inputs: single(
      dimArb().map((d) => [d, 6]),
      general,
    ),
    run: ([x]) => T.reshape(x, [x.shape[0], 2, 3]),
    tol: DEFAULT_TOL,
    grad: true,
  },
  {
    name: 'permute-reverse',
    op: 'permute',
    inputs: single(shapeArb(), general),
    run: ([x]) => T.permute(x, [...x.shape.keys()].reverse()),
    tol: DEFAULT_TOL,
    grad: true,
  },
  {
    name: 'permute-rank4',
    op: 'permute',
    inputs: single(shapeArb({ minRank: 4, maxRank: 4, maxSize: 200 }), general),
    run: ([x]) => T.permute(x, [2, 0, -1, 1]),
    tol: DEFAULT_TOL,
    grad: true,
  },
  {
    name: 'transpose',
    op: 'permute',
    inputs: single(shapeArb({ minRank: 2 }), general),
    run: ([x]) => T.transpose(x, 0, -1),
    tol: DEFAULT_TOL,
    grad: true,
  },
  {
    name: 'expand',
    op: 'expand',
    inputs: single(
      shapeArb({ minRank: 1, maxSize: 60 }).chain((s) =>
        fc
          .array(fc.boolean(), { minLength: s.length, maxLength: s.length })
          .map((ones) => s.map((d, i) => (ones[i] ? 1 : d))),
      ),
      general,
    ),
    run: ([x]) => T.expand(x, [2, ...x.shape.map((d) => (d === 1 ? 3 : d))]),
    tol: DEFAULT_TOL,
    grad: true,
  },
  {
    name: 'broadcastTo',
    op: 'expand',
    inputs: single(shapeArb({ maxSize: 60 }), general),
    run: ([x]) => T.broadcastTo(x, [5, ...x.shape]),
    tol: DEFAULT_TOL,
    grad: true,
  },
  {
    name: 'slice-step',
    op: 'slice',
    inputs: single(shapeArb({ minRank: 2 }), general),
    run: ([x]) => T.slice(x, [1, null, 2], [-3, null]),
    tol: DEFAULT_TOL,
    grad: true,
  },
  {
    name: 'slice-negative',
    op: 'slice',
    inputs: single(shapeArb({ minRank: 1, minDim: 2 }), general),
    run: ([x]) => T.slice(x, [-4, -1, 3]),
    tol: DEFAULT_TOL,
    grad: true,
  },
  {
    name: 'slice-index',
    op: 'slice',
    inputs: single(shapeArb({ minRank: 2, minDim: 2 }), general),
    run: ([x]) => T.slice(x, null, -1),
    tol: DEFAULT_TOL,
    grad: true,
  },
  {
    name: 'windows-strided-dilated',
    op: 'windows',
    inputs: single(imageShape, general),
    run: ([x]) => T.windows(x, [2, 3], { stride: [1, 2], dilation: [2, 1] }),
    tol: DEFAULT_TOL,
    grad: true,
  },
  {
    name: 'windows-pool',
    op: 'windows',
    inputs: single(imageShape, general),
    run: ([x]) => T.windows(x, 3, { stride: 2 }),
    tol: DEFAULT_TOL,
    grad: true,
  },
  {
    name: 'fold',
    op: 'fold',
    inputs: single(windowShape([2, 3]), general),
    // The smallest image these windows fit, and one a column wider that no window reads (stride 2).
    run: ([g]) => {
      const [h, w] = imageSize(g.shape, [2, 3], [1, 2], [2, 1]);
      const opts = { stride: [1, 2], dilation: [2, 1] } as const;
      return T.add(T.sum(T.fold(g, [h, w], [2, 3], opts)), T.fold(g, [h, w + 1], [2, 3], opts));
    },
    tol: ACCUMULATE_TOL,
    grad: true,
  },
  {
    name: 'fold-overlapping',
    op: 'fold',
    inputs: single(windowShape([3, 3]), general),
    run: ([g]) => T.fold(g, imageSize(g.shape, [3, 3], [1, 1], [1, 1]), 3),
    tol: ACCUMULATE_TOL,
    grad: true,
  },
];

/** A `conv` case's fixed geometry (`size` comes from the shapes). */
interface ConvCaseGeometry {
  stride: [number, number];
  padding: [number, number];
  dilation: [number, number];
  groups: number;
}

/** Output size of a convolution along one axis. */
const convOut = (n: number, k: number, s: number, p: number, d: number) =>
  Math.floor((n + 2 * p - d * (k - 1) - 1) / s) + 1;

/**
 * Inputs of a `conv` case: image x [N, C, H, W], weight w [O, C/G, KH, KW] and output
 * y [N, O, OH, OW] shapes drawn together (OH, OW from the forward formula), then the two the
 * result needs, in that result's order, in any storage layout.
 */
function convInputs(result: T.ConvResult, g: ConvCaseGeometry): fc.Arbitrary<HostTensor[]> {
  return fc
    .tuple(int(1, 2), int(1, 2), int(1, 3), int(1, 3), int(1, 3), int(3, 7), int(3, 9))
    .filter(([, , , kh, kw, h, w]) => {
      const oh = convOut(h, kh, g.stride[0], g.padding[0], g.dilation[0]);
      return oh >= 1 && convOut(w, kw, g.stride[1], g.padding[1], g.dilation[1]) >= 1;
    })
    .chain(([n, cg, og, kh, kw, h, w]) => {
      const oh = convOut(h, kh, g.stride[0], g.padding[0], g.dilation[0]);
      const ow = convOut(w, kw, g.stride[1], g.padding[1], g.dilation[1]);
      const shapes = {
        x: [n, cg * g.groups, h, w],
        w: [og * g.groups, cg, kh, kw],
        y: [n, og * g.groups, oh, ow],
      };
      const [a, b] = T.CONV_INPUT_ROLES[result];
      return fc.tuple(hostArb(shapes[a], general), hostArb(shapes[b], general));
    });
}

/** A `conv` case: the result's size is the one the forward formula pairs with the inputs. */
function convCase(name: string, result: T.ConvResult, g: ConvCaseGeometry): OpCase {
  return {
    name,
    op: 'conv',
    inputs: convInputs(result, g),
    run: ([a, b]) => {
      let size: [number, number];
      if (result === 'output') {
        size = [0, 1].map((i) =>
          convOut(a.shape[2 + i], b.shape[2 + i], g.stride[i], g.padding[i], g.dilation[i]),
        ) as [number, number];
      } else if (result === 'weight') {
        // The largest kernel whose output has y's size, capped at 3 (what convInputs draws).
        size = [0, 1].map((i) => {
          let k = 3;
          while (convOut(a.shape[2 + i], k, g.stride[i], g.padding[i], g.dilation[i]) < b.shape[2 + i]) k--;
          return k;
        }) as [number, number];
      } else {
        // The transposed convolution's size (no output padding): the smallest image for y.
        size = [0, 1].map((i) =>
          Math.max(
            1,
            (a.shape[2 + i] - 1) * g.stride[i] - 2 * g.padding[i] + g.dilation[i] * (b.shape[2 + i] - 1) + 1,
          ),
        ) as [number, number];
      }
      return T.conv(a, b, { ...g, result, size });
    },
    tol: ACCUMULATE_TOL,
    grad: true,
  };
}

const CONV_CASES: OpCase[] = [
  convCase('conv-output', 'output', { stride: [2, 1], padding: [1, 2], dilation: [1, 2], groups: 1 }),
  convCase('conv-output-grouped', 'output', { stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 2 }),
  convCase('conv-input', 'input', { stride: [2, 3], padding: [1, 0], dilation: [1, 2], groups: 1 }),
  convCase('conv-input-grouped', 'input', { stride: [2, 2], padding: [1, 1], dilation: [2, 1], groups: 2 }),
  convCase('conv-weight', 'weight', { stride: [1, 2], padding: [0, 1], dilation: [2, 1], groups: 1 }),
  convCase('conv-weight-grouped', 'weight', { stride: [3, 1], padding: [2, 0], dilation: [1, 1], groups: 3 }),
];

/**
 * Inputs of a `layerNorm` case: `full` tensors `[...rows, ...normalized]` (x, and g for the
 * gradient) then `vectors` of the normalised shape (`count` axes; weight, bias). Up to 120 rows,
 * so that the affine gradient's kernel sees more than one chunk of 64 rows.
 */
function layerNormInputs(count: number, full: number, vectors: number, values: Values = general) {
  return fc
    .tuple(shapeArb({ maxRank: 2, maxSize: 120 }), shapeArb({ minRank: count, maxRank: count, maxSize: 24 }))
    .chain(([rows, normalized]) =>
      fc.tuple(
        ...Array.from({ length: full }, () => hostArb([...rows, ...normalized], values)),
        ...Array.from({ length: vectors }, () => hostArb(normalized, values)),
      ),
    );
}

/** Rows of 10⁴ plus noise in [−1, 1]: a float32 sum of x loses the noise, a shifted one does not. */
const largeMean = fc.oneof(gridValues(9999, 10001, 1 / 64), smoothValues(9999, 10001));

// eps ≥ 0.01 keeps ρ = 1/√(σ² + ε) ≤ 10: float32 results on near-constant rows (two close values)
// are off by about ρ · 2⁻²⁴ · |x| whatever the algorithm, beyond the tolerances when ρ is 300.
const LARGE_MEAN =
  'values near 1e4: central differences in float64 lose about 8 digits to cancellation there, ' +
  'more on constant rows (ρ = 1/√ε); the other layerNorm cases check the gradient';

const LAYER_NORM_CASES: OpCase[] = [
  {
    name: 'layerNorm',
    op: 'layerNorm',
    inputs: layerNormInputs(1, 1, 2),
    run: ([x, w, b]) => T.layerNorm(x, w, b, { eps: 0.01 }),
    tol: TRANSCENDENTAL_TOL,
    grad: true,
  },
  {
    name: 'layerNorm-2-axes',
    op: 'layerNorm',
    inputs: layerNormInputs(2, 1, 0),
    run: ([x]) => T.layerNorm(x, null, null, { normalizedShape: x.shape.slice(-2), eps: 0.1 }),
    tol: TRANSCENDENTAL_TOL,
    grad: true,
  },
  {
    name: 'layerNorm-bias-only',
    op: 'layerNorm',
    inputs: layerNormInputs(2, 1, 1),
    run: ([x, b]) => T.layerNorm(x, null, b, { eps: 0.01 }),
    tol: TRANSCENDENTAL_TOL,
    grad: true,
  },
  {
    name: 'layerNorm-large-mean',
    op: 'layerNorm',
    inputs: layerNormInputs(1, 1, 1, largeMean),
    run: ([x, w]) => T.layerNorm(x, T.sub(w, 1e4), null, { eps: 0.01 }),
    tol: TRANSCENDENTAL_TOL,
    grad: LARGE_MEAN,
  },
  {
    name: 'layerNormGrad',
    op: 'layerNormGrad',
    inputs: layerNormInputs(1, 2, 1),
    run: ([x, g, w]) => T.layerNormGrad(x, g, w, { result: 'input', count: 1, eps: 0.01 }),
    tol: ACCUMULATE_TOL,
    grad: true,
  },
  {
    name: 'layerNormGrad-2-axes',
    op: 'layerNormGrad',
    inputs: layerNormInputs(2, 2, 0),
    run: ([x, g]) => T.layerNormGrad(x, g, null, { result: 'input', count: 2, eps: 0.1 }),
    tol: ACCUMULATE_TOL,
    grad: true,
  },
  {
    name: 'layerNormGrad-large-mean',
    op: 'layerNormGrad',
    inputs: layerNormInputs(1, 2, 0, largeMean),
    run: ([x, g]) => T.layerNormGrad(x, T.sub(g, 1e4), null, { result: 'input', count: 1, eps: 0.01 }),
    tol: ACCUMULATE_TOL,
    grad: LARGE_MEAN,
  },
  {
    name: 'layerNormGrad-affine',
    op: 'layerNormGrad',
    inputs: layerNormInputs(1, 2, 0),
    run: ([x, g]) => T.layerNormGrad(x, g, null, { result: 'affine', count: 1, eps: 0.01 }),
    tol: ACCUMULATE_TOL,
    grad: true,
  },
  {
    name: 'layerNormGrad-affine-2-axes',
    op: 'layerNormGrad',
    inputs: layerNormInputs(2, 2, 0),
    run: ([x, g]) => T.layerNormGrad(x, g, null, { result: 'affine', count: 2, eps: 0.1 }),
    tol: ACCUMULATE_TOL,
    grad: true,
  },
];

/**
 * Every primitive of the registry, at least once. A test fails when an op of `OPS` has no case.
 *
 * @example
 * ```ts
 * for (const c of OP_CASES) fc.assert(fc.property(c.inputs, (hs) => { c.run(hs.map((h) => materialize(h))); }));
 * ```
 */
export const OP_CASES: OpCase[] = [
  ...UNARY_CASES,
  ...BINARY_CASES,
  ...REDUCE_CASES,
  ...MATMUL_CASES,
  ...CONV_CASES,
  ...LAYER_NORM_CASES,
  ...OTHER_CASES,
  ...RANDOM_CASES,
  ...VIEW_CASES,
];

// ---------------------------------------------------------------------------------------------
// Composite cases
// ---------------------------------------------------------------------------------------------

function compositeCase(
  name: string,
  op: string,
  inputs: fc.Arbitrary<HostTensor[]>,
  run: (xs: Tensor[]) => Tensor,
  extra: Partial<CompositeCase> = {},
): CompositeCase {
  return { name, op, inputs, run, tol: TRANSCENDENTAL_TOL, grad: true, ...extra };
}

const any = single(shapeArb(), general);
const atLeast1d = single(shapeArb({ minRank: 1 }), general);
const atLeast2d = single(shapeArb({ minRank: 2 }), general);
const huge = fc.oneof(gridValues(9990, 10000), gridValues(-10000, -9990));

/**
 * Every composite op (built from primitives in `composite.ts`), in the shape of {@link OP_CASES}.
 *
 * @example
 * ```ts
 * COMPOSITE_CASES.find((c) => c.op === 'softmax');
 * ```
 */
export const COMPOSITE_CASES: CompositeCase[] = [
  compositeCase('mean', 'mean', atLeast1d, ([x]) => T.mean(x, -1, true), { tol: ACCUMULATE_TOL }),
  compositeCase('mean-all', 'mean', any, ([x]) => T.mean(x), { tol: ACCUMULATE_TOL }),
  compositeCase('variance', 'variance', single(shapeArb({ minRank: 1, minDim: 2 }), general), ([x]) =>
    T.variance(x, 0),
  ),
  compositeCase('variance-biased-keep', 'variance', single(shapeArb({ minRank: 1 }), general), ([x]) =>
    T.variance(x, undefined, { correction: 0, keepDims: true }),
  ),
  // Smooth values and no repeating layout: std's gradient is infinite where a row is constant.
  compositeCase(
    'std',
    'std',
    single(shapeArb({ minRank: 1, minDim: 2 }), smoothValues(-3, 3), {
      views: ['contiguous', 'transposed', 'strided'],
    }),
    ([x]) => T.std(x, -1),
  ),
  compositeCase('logSumExp', 'logSumExp', atLeast1d, ([x]) => T.logSumExp(x, -1)),
  compositeCase('logSumExp-large', 'logSumExp', single(shapeArb({ minRank: 1 }), huge), ([x]) =>
    T.logSumExp(x, 0, true),
  ),
  compositeCase('softmax', 'softmax', atLeast1d, ([x]) => T.softmax(x, -1)),
  compositeCase('softmax-axis0', 'softmax', atLeast2d, ([x]) => T.softmax(x, 0)),
  compositeCase('logSoftmax', 'logSoftmax', atLeast1d, ([x]) => T.logSoftmax(x, -1)),
  compositeCase('clamp', 'clamp', single(shapeArb(), smoothValues(-3, 3)), ([x]) => T.clamp(x, -1, 1.5)),
  compositeCase('clamp-low', 'clamp', single(shapeArb(), smoothValues(-3, 3)), ([x]) => T.clamp(x, 0.5)),
  compositeCase(
    'clamp-int32',
    'clamp',
    single(shapeArb(), ints, { dtype: 'int32' }),
    ([x]) => T.clamp(x, -2, 3),
    {
      grad: false,
      tol: DEFAULT_TOL,
    },
  ),
  compositeCase('logSigmoid', 'logSigmoid', single(shapeArb(), mixedValues(-20, 20)), ([x]) =>
    T.logSigmoid(x),
  ),
  compositeCase('logSigmoid-extreme', 'logSigmoid', single(shapeArb(), gridValues(-100, 100, 4)), ([x]) =>
    T.logSigmoid(x),
  ),
  compositeCase('silu', 'silu', single(shapeArb(), mixedValues(-6, 6)), ([x]) => T.silu(x)),
  compositeCase('gelu', 'gelu', single(shapeArb(), mixedValues(-5, 5)), ([x]) => T.gelu(x)),
  compositeCase('gelu-tanh', 'gelu', single(shapeArb(), mixedValues(-5, 5)), ([x]) => T.gelu(x, 'tanh')),
  compositeCase('elu', 'elu', single(shapeArb(), awayFromZero(1 / 16, 3)), ([x]) => T.elu(x, 1.5)),
  compositeCase('square', 'square', any, ([x]) => T.square(x), { tol: DEFAULT_TOL }),
  compositeCase('stack', 'stack', sameShape(3, general, { maxSize: 60 }), (xs) => T.stack(xs, -1), {
    tol: DEFAULT_TOL,
  }),
  compositeCase(
    'stack-first',
    'stack',
    sameShape(2, general, { minRank: 1, maxSize: 60 }),
    (xs) => T.stack(xs, 0),
    { tol: DEFAULT_TOL },
  ),
  compositeCase(
    'split',
    'split',
    single(shapeArb({ minRank: 1, minDim: 2 }), general),
    ([x]) => T.concat(T.split(x, [1, x.shape[0] - 1], 0).reverse(), 0),
    { tol: DEFAULT_TOL },
  ),
  compositeCase(
    'split-equal',
    'split',
    single(
      shapeArb({ minRank: 1 }).map((s) => [...s.slice(0, -1), 2 * s[s.length - 1]]),
      general,
    ),
    ([x]) => T.concat(T.split(x, 2, -1).reverse(), -1),
    { tol: DEFAULT_TOL },
  ),
  compositeCase(
    'unbind',
    'unbind',
    single(shapeArb({ minRank: 1 }), general),
    ([x]) => T.stack(T.unbind(x, -1).reverse(), -1),
    { tol: DEFAULT_TOL },
  ),
  compositeCase(
    'oneHot',
    'oneHot',
    single(shapeArb({ maxRank: 2 }), intValues(0, 4), { dtype: 'int32' }),
    ([x]) => T.oneHot(x, 5),
    { grad: false, tol: DEFAULT_TOL },
  ),
  compositeCase(
    'squeeze',
    'squeeze',
    single(
      shapeArb().map((s) => [1, ...s, 1]),
      general,
    ),
    ([x]) => T.squeeze(x),
    { tol: DEFAULT_TOL },
  ),
  compositeCase('unsqueeze', 'unsqueeze', any, ([x]) => T.unsqueeze(x, -1), { tol: DEFAULT_TOL }),
  compositeCase('flatten', 'flatten', single(shapeArb({ minRank: 3, maxRank: 3 }), general), ([x]) =>
    T.flatten(x, 1),
  ),
  compositeCase('contiguous', 'contiguous', any, ([x]) => T.contiguous(x), { tol: DEFAULT_TOL }),
];
