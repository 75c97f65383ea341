/**
 * The VJP table: one rule per primitive of the op registry, typed `{ [K in OpName]: … }` so that a
 * primitive without a rule is a compile error (`null` marks the non-differentiable ones:
 * comparisons, logic, argmax/argmin, random).
 *
 * A rule maps the gradient `g` of the op's output to the gradients of its inputs (the
 * vector-Jacobian product). Rules are written with the same public, differentiable ops users call,
 * so with `createGraph` the backward pass is itself recorded and gradients of gradients work.
 * Binary kernels see inputs already broadcast by `expand` views, so broadcasting is undone in one
 * place only: the `expand` rule, through {@link sumToShape}.
 *
 * Points of non-differentiability follow PyTorch: relu'(0) = 0, abs'(0) = 0, sign/floor/ceil/round
 * have zero gradients, and where several elements tie for a max/min (or `maximum(a, b)` has
 * a = b) the gradient is shared equally among them.
 */
import {
  add,
  broadcastTo,
  CONV_INPUT_ROLES,
  type ConvResult,
  cast,
  concat,
  conv,
  cos,
  div,
  equal,
  exp,
  FluxionError,
  fmtShape,
  fold,
  greater,
  greaterEqual,
  isFloat,
  layerNorm,
  layerNormGrad,
  leakyReluGrad,
  less,
  log,
  logicalAnd,
  matmul,
  mean,
  mul,
  neg,
  type OpName,
  type OpParamMap,
  pad,
  permute,
  pow,
  prod,
  reciprocal,
  reshape,
  type SliceSpec,
  scatterAdd,
  scope,
  shapesEqual,
  sigmoid,
  sign,
  sin,
  slice,
  sub,
  sum,
  type Tensor,
  take,
  transpose,
  type UnaryOp,
  variance,
  where,
  windows,
  zeros,
  zerosLike,
} from '@fluxion/tensor';
import type { InputMeta } from './graph.js';

/**
 * Whether a matrix (or batch of matrices) is laid out as the transpose of a dense one: its last two
 * axes are column-major (`transpose(w)` of a contiguous `w`). Vectors and single rows or columns
 * count as not transposed.
 */
function storedTransposed(x: Tensor): boolean {
  const r = x.shape.length;
  if (r < 2 || x.shape[r - 1] === 1 || x.shape[r - 2] === 1) return false;
  return x.strides[r - 2] === 1 && x.strides[r - 1] === x.shape[r - 2];
}

/**
 * What a VJP rule receives besides the output gradient.
 *
 * @example
 * ```ts
 * const mulRule: VjpRule<'mul'> = {
 *   saveInputs: 'all',
 *   vjp: (g, { inputs: [a, b], needs }) => [needs[0] ? mul(g, b) : null, needs[1] ? mul(g, a) : null],
 * };
 * ```
 */
export interface VjpContext<K extends OpName> {
  /** The op's parameters. */
  readonly params: OpParamMap[K];
  /** Saved input values by position: only those listed in the rule's `saveInputs`. */
  readonly inputs: readonly Tensor[];
  /** The saved output value: only when the rule sets `saveOutput`. */
  readonly output: Tensor;
  /** Shape and dtype of every input. */
  readonly meta: readonly InputMeta[];
  /** Which inputs a gradient is wanted for (a rule may skip the others and return null). */
  readonly needs: readonly boolean[];
}

/**
 * The derivative of one primitive.
 *
 * @example
 * ```ts
 * // d(eˣ) = eˣ · dx, read from the saved output
 * const expRule: VjpRule<'exp'> = { saveOutput: true, vjp: (g, { output }) => [mul(g, output)] };
 * ```
 */
export interface VjpRule<K extends OpName> {
  /** Input positions whose values the rule reads (`'all'` for every input). */
  readonly saveInputs?: readonly number[] | 'all';
  /** Whether the rule reads the op's output. */
  readonly saveOutput?: boolean;
  /** The input gradients, one per input (null: no gradient). */
  vjp(g: Tensor, ctx: VjpContext<K>): readonly (Tensor | null)[];
}

/**
 * One rule (or null: not differentiable) per primitive; a primitive missing from a table of this
 * type is a compile error.
 *
 * @example
 * ```ts
 * const table: VjpTable = { ...VJPS, exp: { saveOutput: true, vjp: (g, { output }) => [mul(g, output)] } };
 * ```
 */
export type VjpTable = { readonly [K in OpName]: VjpRule<K> | null };

/**
 * Sums a gradient over the axes that broadcasting added or stretched, back to `shape` (the one
 * place where broadcasting is undone).
 *
 * @example
 * ```ts
 * sumToShape(ones([4, 2, 3]), [2, 1]).shape; // [2, 1], every entry 12
 * ```
 */
export function sumToShape(g: Tensor, shape: readonly number[]): Tensor {
  if (shapesEqual(g.shape, shape)) return g;
  const lead = g.rank - shape.length;
  if (lead < 0 || shape.some((d, i) => d !== 1 && d !== g.shape[lead + i])) {
    throw new FluxionError('sumToShape', `cannot sum ${fmtShape(g.shape)} to ${fmtShape(shape)}`);
  }
  const axes = g.shape.flatMap((d, i) => (i < lead || (shape[i - lead] === 1 && d !== 1) ? [i] : []));
  return scope(() => reshape(sum(g, axes, true), shape));
}

/** `shape` with the reduced axes kept as size 1. */
const keptShape = (shape: readonly number[], axes: readonly number[]) =>
  shape.map((d, i) => (axes.includes(i) ? 1 : d));

/** Elements covered by `n` picks at stride `step`: from the first to the last, inclusive. */
const span = (n: number, step: number) => (n === 0 ? 0 : (n - 1) * step + 1);

/** `g`, the gradient of a slice with `params` of an array of `shape`, padded with zeros back to `shape`. */
function placeSlice(
  g: Tensor,
  { starts, steps, shape: part }: OpParamMap['slice'],
  shape: readonly number[],
): Tensor {
  return pad(
    g,
    starts.map((start, i) => [start, shape[i] - start - span(part[i], steps[i]), steps[i] - 1]),
  );
}

/** A slice of `x` along one axis only. */
function sliceAxis(x: Tensor, axis: number, start: number, stop: number, step = 1): Tensor {
  return slice(x, ...x.shape.map((_, i): SliceSpec => (i === axis ? [start, stop, step] : null)));
}

/** A unary rule reading the saved input. */
const fromInput = (f: (g: Tensor, x: Tensor) => Tensor): VjpRule<UnaryOp> => ({
  saveInputs: [0],
  vjp: (g, { inputs: [x] }) => [f(g, x)],
});

/** A unary rule reading the saved output. */
const fromOutput = (f: (g: Tensor, y: Tensor) => Tensor): VjpRule<UnaryOp> => ({
  saveOutput: true,
  vjp: (g, { output }) => [f(g, output)],
});

/** Piecewise-constant functions: zero gradient (PyTorch's convention). */
const zeroGradient: VjpRule<UnaryOp> = { vjp: (g) => [zerosLike(g)] };

/**
 * maximum/minimum of two tensors: the winner takes the gradient; on a tie each gets half (the
 * numerical derivative there).
 */
const elementwiseExtremum = (wins: (a: Tensor, b: Tensor) => Tensor): VjpRule<'maximum' | 'minimum'> => ({
  saveInputs: 'all',
  vjp: (g, { inputs: [a, b], needs }) => {
    const share = (mine: Tensor, theirs: Tensor) =>
      where(wins(mine, theirs), g, where(equal(mine, theirs), mul(g, 0.5), 0));
    return [needs[0] ? share(a, b) : null, needs[1] ? share(b, a) : null];
  },
});

/** max/min over axes: the gradient goes to the extreme elements, shared equally among ties. */
const reduceExtremum: VjpRule<'max' | 'min'> = {
  saveInputs: [0],
  saveOutput: true,
  vjp: (g, { inputs: [x], output: y, params: { axes } }) => {
    const kept = keptShape(x.shape, axes);
    const isExtreme = cast(equal(x, reshape(y, kept)), g.dtype);
    return [div(mul(reshape(g, kept), isExtreme), sum(isExtreme, axes, true))];
  },
};

/**
 * The rule of every primitive, used by `backward()`.
 *
 * @example
 * ```ts
 * VJPS.argmax;          // null: not differentiable
 * VJPS.exp?.saveOutput; // true: d(eˣ) reads the output
 * ```
 */
export const VJPS: VjpTable = {
  // d(−x) = −dx
  neg: { vjp: (g) => [neg(g)] },
  // d|x| = sign(x) · dx, so abs'(0) = 0
  abs: fromInput((g, x) => mul(g, sign(x))),
  // piecewise constant: zero gradient
  sign: zeroGradient,
  floor: zeroGradient,
  ceil: zeroGradient,
  round: zeroGradient,
  // d(eˣ) = eˣ · dx
  exp: fromOutput((g, y) => mul(g, y)),
  // d(eˣ − 1) = eˣ · dx = (y + 1) · dx
  expm1: fromOutput((g, y) => mul(g, add(y, 1))),
  // d(ln x) = dx / x
  log: fromInput((g, x) => div(g, x)),
  // d ln(1 + x) = dx / (1 + x)
  log1p: fromInput((g, x) => div(g, add(x, 1))),
  // d√x = dx / (2√x)
  sqrt: fromOutput((g, y) => div(mul(g, 0.5), y)),
  // d(x^−½) = −½ x^−³ᐟ² · dx = −½ y³ · dx
  rsqrt: fromOutput((g, y) => mul(mul(g, -0.5), mul(y, mul(y, y)))),
  // d(1/x) = −dx / x² = −y² · dx
  reciprocal: fromOutput((g, y) => neg(mul(g, mul(y, y)))),
  // d sin x = cos x · dx
  sin: fromInput((g, x) => mul(g, cos(x))),
  // d cos x = −sin x · dx
  cos: fromInput((g, x) => neg(mul(g, sin(x)))),
  // d tanh x = (1 − tanh² x) · dx
  tanh: fromOutput((g, y) => mul(g, sub(1, mul(y, y)))),
  // dσ(x) = σ(x)(1 − σ(x)) · dx, from the output: finite for any x
  sigmoid: fromOutput((g, y) => mul(g, mul(y, sub(1, y)))),
  // d relu x = [x > 0] · dx, so relu'(0) = 0
  relu: fromOutput((g, y) => leakyReluGrad(y, g, 0)),
  // d softplus(x) = σ(x) · dx (½ at 0)
  softplus: fromInput((g, x) => mul(g, sigmoid(x))),
  // d erf x = 2/√π · e^(−x²) · dx
  erf: fromInput((g, x) => mul(g, mul(exp(neg(mul(x, x))), 2 / Math.sqrt(Math.PI)))),
  logicalNot: null,

  // d(a + b) = da + db
  add: { vjp: (g) => [g, g] },
  // d(a − b) = da − db
  sub: { vjp: (g, { needs }) => [g, needs[1] ? neg(g) : null] },
  // d(a · b) = b · da + a · db
  mul: {
    saveInputs: 'all',
    vjp: (g, { inputs: [a, b], needs }) => [needs[0] ? mul(g, b) : null, needs[1] ? mul(g, a) : null],
  },
  // d(a / b) = da / b − a / b² · db
  div: {
    saveInputs: 'all',
    vjp: (g, { inputs: [a, b], needs }) => [
      needs[0] ? div(g, b) : null,
      needs[1] ? neg(div(div(mul(g, a), b), b)) : null,
    ],
  },
  // d(aᵇ) = b aᵇ⁻¹ · da + aᵇ ln a · db. At a = 0 the terms read 0 · ∞: the first is 0 where
  // b = 0 too (a⁰ is constant), the second 0 where b ≥ 0, as in PyTorch. (PyTorch masks the first
  // wherever b = 0, which loses the mixed second derivative 1/a there; this masks only a = b = 0.)
  pow: {
    saveInputs: 'all',
    saveOutput: true,
    vjp: (g, { inputs: [a, b], output: y, needs }) => [
      needs[0] ? where(logicalAnd(equal(a, 0), equal(b, 0)), 0, mul(g, mul(b, pow(a, sub(b, 1))))) : null,
      needs[1] ? where(logicalAnd(equal(a, 0), greaterEqual(b, 0)), 0, mul(g, mul(y, log(a)))) : null,
    ],
  },
  // d max(a, b) = [a > b] · da + [b > a] · db, halves on a tie
  maximum: elementwiseExtremum(greater),
  // d min(a, b) = [a < b] · da + [b < a] · db, halves on a tie
  minimum: elementwiseExtremum(less),
  equal: null,
  notEqual: null,
  less: null,
  lessEqual: null,
  greater: null,
  greaterEqual: null,
  logicalAnd: null,
  logicalOr: null,
  logicalXor: null,

  // d Σ x = Σ dx: every summed element receives the output's gradient
  sum: {
    vjp: (g, { meta: [x], params: { axes } }) => [broadcastTo(reshape(g, keptShape(x.shape, axes)), x.shape)],
  },
  // d Π x = Σᵢ (Π_{j≠i} xⱼ) · dxᵢ. The product of the others is y / xᵢ without zeros; with one zero
  // only that element gets the product of the rest; with two or more zeros every gradient is 0.
  prod: {
    saveInputs: [0],
    vjp: (g, { inputs: [x], params: { axes } }) => {
      const isZero = equal(x, 0);
      const nonZero = where(isZero, 1, x);
      const productOfNonZero = prod(nonZero, axes, true);
      const zeros = sum(cast(isZero, g.dtype), axes, true);
      const others = where(
        isZero,
        where(equal(zeros, 1), productOfNonZero, 0),
        where(equal(zeros, 0), div(productOfNonZero, nonZero), 0),
      );
      return [mul(reshape(g, keptShape(x.shape, axes)), others)];
    },
  },
  // d max x = dx at the maximum, shared equally among ties (PyTorch's amax convention)
  max: reduceExtremum,
  // d min x = dx at the minimum, shared equally among ties
  min: reduceExtremum,
  argmax: null,
  argmin: null,

  // d(c ? a : b) = c ? da : db
  where: {
    saveInputs: [0],
    vjp: (g, { inputs: [c], needs }) => [
      null,
      needs[1] ? where(c, g, 0) : null,
      needs[2] ? where(c, 0, g) : null,
    ],
  },
  // leakyRelu' is 1 for x > 0, else the slope (the slope at 0, as PyTorch); its own derivative is
  // 0 almost everywhere, so leakyReluGrad is linear in g and its VJP in g is itself
  leakyRelu: {
    saveInputs: [0],
    vjp: (g, { inputs: [x], params: { slope } }) => [leakyReluGrad(x, g, slope)],
  },
  leakyReluGrad: {
    saveInputs: [0],
    vjp: (g, { inputs: [x], needs, params: { slope } }) => [
      null,
      needs[1] ? leakyReluGrad(x, g, slope) : null,
    ],
  },
  // a cast between float dtypes is the identity: cast the gradient back (integers get none)
  cast: { vjp: (g, { meta: [x] }) => [isFloat(x.dtype) ? cast(g, x.dtype) : null] },
  // d(A · B) = dA · B + A · dB ⇒ Ā = G · Bᵀ, B̄ = Aᵀ · G (transposed views, no copies). An operand
  // stored transposed (a Linear layer's `x · transpose(w)`) gets its gradient in the same layout:
  // (Gᵀ · A)ᵀ instead of Aᵀ · G, so the transpose's own rule hands a contiguous gradient to w
  // rather than a transposed view that accumulation would have to copy (as PyTorch's mm backward).
  // A bias added to every row gets the column sums of G.
  matmul: {
    saveInputs: [0, 1],
    vjp: (g, { inputs: [a, b], needs }) => [
      needs[0] ? (storedTransposed(a) ? transpose(matmul(b, transpose(g))) : matmul(g, transpose(b))) : null,
      needs[1] ? (storedTransposed(b) ? transpose(matmul(transpose(g), a)) : matmul(transpose(a), g)) : null,
      ...(needs.length === 3 ? [needs[2] ? sumToShape(g, [g.shape[g.rank - 1]]) : null] : []),
    ],
  },
  // conv is linear in each input: the gradient with respect to either one is the conv that computes
  // that input's role from the other input and g (the output's role), with the input's size.
  conv: {
    saveInputs: [0, 1],
    vjp: (g, { inputs, meta, needs, params }) => {
      const roles = CONV_INPUT_ROLES[params.result];
      const have = { [roles[0]]: inputs[0], [roles[1]]: inputs[1], [CONV_RESULT_ROLE[params.result]]: g };
      return roles.map((role, i) => {
        if (!needs[i]) return null;
        const result = CONV_ROLE_RESULT[role];
        const [p, q] = CONV_INPUT_ROLES[result];
        return conv(have[p], have[q], { ...params, result, size: [meta[i].shape[2], meta[i].shape[3]] });
      });
    },
  },
  // y = x̂ · w + b with x̂ = (x − μ) · ρ, ρ = 1/√(σ² + ε): dx = ρ · (ĝ − mean ĝ − x̂ · mean(ĝ · x̂))
  // with ĝ = g · w (layerNormGrad's input result), dw = Σ_rows g · x̂ and db = Σ_rows g (the two
  // rows of its affine result, one pass for both)
  layerNorm: {
    saveInputs: [0, 1],
    vjp: (g, { inputs: [x, w], needs, params: { count, eps, weight, bias } }) => {
      const dx = needs[0] ? layerNormGrad(x, g, weight ? w : null, { result: 'input', count, eps }) : null;
      const affine = needs.slice(1).some(Boolean)
        ? layerNormGrad(x, g, null, { result: 'affine', count, eps })
        : null;
      const row = (i: number, need: boolean) => (need && affine ? slice(affine, i) : null);
      return [dx, ...(weight ? [row(0, needs[1])] : []), ...(bias ? [row(1, needs[weight ? 2 : 1])] : [])];
    },
  },
  // The input result is J(x) · ĝ, where J = ∂x̂/∂x = ρ · (I − 1/D − x̂ x̂ᵀ/D) per row is symmetric:
  // for a gradient v of the result, ∂/∂ĝ = J v (layerNormGrad again), so ∂/∂g = w · J v and
  // ∂/∂w = Σ_rows g · J v; ∂/∂x is the second derivative of x̂ (see layerNormInputCurvature).
  // The affine result [Σ g · x̂; Σ g] with v = [v_w; v_b]: ∂/∂g = v_w · x̂ + v_b = layerNorm(x, v_w,
  // v_b) and ∂/∂x = J (g · v_w) = layerNormGrad(x, g, v_w).
  layerNormGrad: {
    saveInputs: 'all',
    vjp: (v, { inputs: [x, g, w], needs, params: { result, count, eps, weight } }) => {
      const options = { result: 'input' as const, count, eps };
      if (result === 'affine') {
        const [vw, vb] = [slice(v, 0), slice(v, 1)];
        return [
          needs[0] ? layerNormGrad(x, g, vw, options) : null,
          needs[1] ? layerNorm(x, vw, vb, { eps }) : null,
        ];
      }
      const jv = needs[1] || needs[2] ? layerNormGrad(x, v, null, options) : null;
      return [
        needs[0] ? layerNormInputCurvature(x, weight ? mul(g, w) : g, v, count, eps) : null,
        needs[1] && jv ? (weight ? mul(jv, w) : jv) : null,
        ...(weight ? [needs[2] && jv ? sumToShape(mul(g, jv), w.shape) : null] : []),
      ];
    },
  },
  // concat copies blocks: each input's gradient is its block of g
  concat: {
    vjp: (g, { meta, needs, params: { axis } }) => {
      let start = 0;
      return meta.map((m, i) => {
        start += m.shape[axis];
        return needs[i] ? sliceAxis(g, axis, start - m.shape[axis], start) : null;
      });
    },
  },
  // take gathers; its adjoint scatters the gradient back, summing over repeated indices
  take: {
    saveInputs: [1],
    vjp: (g, { inputs: [, indices], meta: [x], params: { axis } }) => [
      scatterAdd(g, indices, axis, x.shape[axis]),
      null,
    ],
  },
  // scatterAdd sums blocks into slots; its adjoint gathers each block's slot
  scatterAdd: {
    saveInputs: [1],
    vjp: (g, { inputs: [, indices], params: { axis } }) => [take(g, indices, axis), null],
  },
  // pad places x inside a larger array: its gradient is the strided slice where x landed
  pad: {
    vjp: (g, { meta: [x], params: { widths } }) => [
      slice(
        g,
        ...widths.map(([low, , interior], i): SliceSpec => {
          const step = interior + 1;
          return [low, low + span(x.shape[i], step), step];
        }),
      ),
    ],
  },
  // d copy(x) = dx
  copy: { vjp: (g) => [g] },
  random: null,

  // a view's gradient is the same view undone
  reshape: { vjp: (g, { meta: [x] }) => [reshape(g, x.shape)] },
  permute: {
    vjp: (g, { params: { axes } }) => {
      const inverse = new Array<number>(axes.length);
      axes.forEach((a, i) => {
        inverse[a] = i;
      });
      return [permute(g, inverse)];
    },
  },
  // expand repeats elements: their gradients are summed back
  expand: { vjp: (g, { meta: [x] }) => [sumToShape(g, x.shape)] },
  // a (strided) slice's gradient is g padded with zeros back to the input's shape; backward()
  // places the gradients of all the slices of one tensor at once instead (sumSlices)
  slice: { vjp: (g, { meta: [x], params }) => [placeSlice(g, params, x.shape)] },
  // windows and fold are each other's adjoint: a window read becomes a scatter-sum, and back.
  windows: {
    vjp: (g, { meta: [x], params: { kernel, stride, dilation } }) => [
      fold(g, [x.shape[2], x.shape[3]], kernel, { stride, dilation }),
    ],
  },
  fold: { vjp: (g, { params: { kernel, stride, dilation } }) => [windows(g, kernel, { stride, dilation })] },
};

/**
 * ∂/∂x of `Σ v · J(x) a` (J = ∂x̂/∂x of layer normalisation over the last `count` axes; a and v
 * held fixed): with means m over each row and ρ² = 1/(σ² + ε),
 * `−ρ² · (x̂ · (m(va) − m(v)m(a) − 3 m(vx̂)m(ax̂)) + m(ax̂) · (v − m(v)) + m(vx̂) · (a − m(a)))`.
 * Composed of differentiable ops, so it can be differentiated again.
 */
function layerNormInputCurvature(x: Tensor, a: Tensor, v: Tensor, count: number, eps: number): Tensor {
  return scope(() => {
    const axes = Array.from({ length: count }, (_, i) => x.rank - count + i);
    const m = (t: Tensor) => mean(t, axes, true);
    const xHat = layerNorm(x, null, null, { normalizedShape: x.shape.slice(x.rank - count), eps });
    const rho2 = reciprocal(add(variance(x, axes, { correction: 0, keepDims: true }), eps));
    const [ma, mv, max, mvx] = [m(a), m(v), m(mul(a, xHat)), m(mul(v, xHat))];
    const along = sub(sub(m(mul(v, a)), mul(mv, ma)), mul(mul(mvx, max), 3));
    const total = add(add(mul(xHat, along), mul(max, sub(v, mv))), mul(mvx, sub(a, ma)));
    return neg(mul(rho2, total));
  });
}

/** The tensor each `conv` result is: output y, input (image) x, weight w; and back. */
const CONV_RESULT_ROLE = { output: 'y', input: 'x', weight: 'w' } as const;
const CONV_ROLE_RESULT: Record<'x' | 'w' | 'y', ConvResult> = { y: 'output', x: 'input', w: 'weight' };

/**
 * One slice's gradient on its way back to the sliced tensor: `g` is the gradient of
 * `slice(x, …)` recorded with `params` (see {@link sumSlices}).
 *
 * @example
 * ```ts
 * const piece: SlicePiece = { g, params: node.params as OpParamMap['slice'] };
 * ```
 */
export interface SlicePiece {
  readonly g: Tensor;
  readonly params: OpParamMap['slice'];
}

/**
 * The axis along which a slice of an array of `shape` cuts, when it takes whole, unit-step ranges
 * of every other axis (a part of `split`, a step of a time loop); null for any other slice.
 */
function bandAxis(
  { starts, steps, shape: part }: OpParamMap['slice'],
  shape: readonly number[],
): number | null {
  let axis: number | null = null;
  for (let i = 0; i < shape.length; i++) {
    if (starts[i] === 0 && part[i] === shape[i]) continue;
    if ((steps[i] !== 1 && part[i] > 1) || axis !== null) return null;
    axis = i;
  }
  return axis ?? 0;
}

/**
 * The gradient of a tensor `x` of `shape` read through several slices: the sum of the slices' VJPs,
 * `x̄ = Σᵢ pad(gᵢ)` (each `gᵢ` placed where its slice lies, zeros elsewhere), computed in
 * O(size of x + Σᵢ size of gᵢ) for the usual case instead of one full-size padded copy per slice.
 * Slices that cut along one axis only (whole on the others, unit step), like the parts of
 * `split` or the steps of a loop over `slice(x, null, t)`, are sorted along it and joined by one
 * `concat` per run of non-overlapping slices, with zero blocks in the gaps; overlapping runs are
 * summed, as are the other slices, padded one by one (the `slice` rule). Built from
 * differentiable ops, so with `createGraph` the result can be differentiated again.
 * `backward()` calls it with every slice gradient of a tensor once all of them have arrived.
 *
 * @example
 * ```ts
 * // x [2, 6] read as x[:, 0:2] and x[:, 4:6]: one concat of [g0, zeros [2, 2], g1]
 * sumSlices([{ g: g0, params: p0 }, { g: g1, params: p1 }], [2, 6]).shape; // [2, 6]
 * ```
 */
export function sumSlices(pieces: readonly SlicePiece[], shape: readonly number[]): Tensor {
  if (pieces.length === 0) throw new FluxionError('sumSlices', `no slice of ${fmtShape(shape)} to sum`);
  const { dtype, backend } = pieces[0].g;
  const padded = (p: SlicePiece) => placeSlice(p.g, p.params, shape);
  // Runs of slices along one axis, each sorted and free of overlaps (greedy interval colouring).
  const runs: { axis: number; end: number; pieces: SlicePiece[] }[] = [];
  const others: SlicePiece[] = [];
  const bands: { p: SlicePiece; axis: number; start: number }[] = [];
  for (const p of pieces) {
    const axis = bandAxis(p.params, shape);
    if (axis === null) others.push(p);
    else bands.push({ p, axis, start: p.params.starts[axis] });
  }
  bands.sort((a, b) => a.axis - b.axis || a.start - b.start);
  for (const { p, axis, start } of bands) {
    const end = start + p.params.shape[axis];
    const run = runs.find((r) => r.axis === axis && r.end <= start);
    if (run) {
      run.pieces.push(p);
      run.end = end;
    } else runs.push({ axis, end, pieces: [p] });
  }
  const joined = (axis: number, run: readonly SlicePiece[]): Tensor => {
    if (run.length === 1) return padded(run[0]);
    const parts: Tensor[] = [];
    const gap = (from: number, to: number) => {
      if (to > from)
        parts.push(
          zeros(
            shape.map((d, i) => (i === axis ? to - from : d)),
            { dtype, backend: backend.name },
          ),
        );
    };
    let at = 0;
    for (const p of run) {
      gap(at, p.params.starts[axis]);
      if (p.g.size > 0) parts.push(p.g);
      at = p.params.starts[axis] + p.params.shape[axis];
    }
    gap(at, shape[axis]);
    return concat(parts, axis);
  };
  const terms = [...runs.map((r) => () => joined(r.axis, r.pieces)), ...others.map((p) => () => padded(p))];
  // Summed one term at a time, so that at most two full-size temporaries are alive.
  let total = scope(() => terms[0]());
  for (const term of terms.slice(1)) {
    const previous = total;
    total = scope(() => add(previous, term()));
    previous.dispose();
  }
  return total;
}
