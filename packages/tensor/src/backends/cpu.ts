/**
 * The CPU reference backend: plain loops over typed arrays, in float32, float64, int32 and bool.
 * It is the specification the WebGPU backend is tested against, so clarity wins over speed here;
 * the only concession is matmul's packed i-k-j loop.
 *
 * Every kernel reads its inputs through their strides (views are never copied first) and writes a
 * fresh contiguous output. Math is done in float64 and rounded once on store.
 */
import type { Backend, BackendBuffer, BackendMemory, KernelArg } from '../backend.js';
import { registerBackend } from '../backend.js';
import { allocArray, bytesPerElement, type DType, type TypedArray } from '../dtype.js';
import { axisContext, type IndexContext, indexRangeError } from '../index-range.js';
import { philox4x32, TWO_POW_M24 } from '../philox.js';
import { type ParsedProgram, type ProgramFunction, renderExpression } from '../program.js';
import {
  type ArgReduceOp,
  type BinaryOp,
  CONV_INPUT_ROLES,
  type KernelOp,
  type OpParamMap,
  type ReduceOp,
  type UnaryOp,
} from '../registry.js';
import { isContiguous, sizeOf } from '../shape.js';

/** A CPU buffer: just a typed array. */
interface CpuBuffer {
  data: TypedArray;
}

const dataOf = (arg: KernelArg): TypedArray => (arg.buffer as CpuBuffer).data;

/**
 * Storage offsets of every element of a strided view, in row-major order (an odometer over the
 * multi-index). Contiguous views skip the table: element i is at `offset + i`.
 */
export function stridedOffsets(
  shape: readonly number[],
  strides: readonly number[],
  offset: number,
): Int32Array {
  const n = sizeOf(shape);
  const out = new Int32Array(n);
  if (isContiguous(shape, strides)) {
    for (let i = 0; i < n; i++) out[i] = offset + i;
    return out;
  }
  const rank = shape.length;
  const index = new Array<number>(rank).fill(0);
  let off = offset;
  for (let i = 0; i < n; i++) {
    out[i] = off;
    for (let d = rank - 1; d >= 0; d--) {
      index[d]++;
      off += strides[d];
      if (index[d] < shape[d]) break;
      off -= strides[d] * shape[d];
      index[d] = 0;
    }
  }
  return out;
}

/** Offsets of a kernel argument's elements. */
const offsetsOf = (a: KernelArg) => stridedOffsets(a.shape, a.strides, a.offset);

/**
 * erf(x) = 2/√π · e^(−x²) · Σₙ 2ⁿ x^(2n+1) / (1·3·…·(2n+1)). Every term is positive, so the sum
 * has no cancellation and is accurate to a few ulps in float64; |x| ≥ 6 gives ±1 (erfc(6) < 3e-17).
 */
export function erf(x: number): number {
  if (Number.isNaN(x)) return x;
  const ax = Math.abs(x);
  if (ax >= 6) return Math.sign(x);
  const x2 = ax * ax;
  let term = ax;
  let sum = ax;
  for (let n = 1; n < 500 && term > sum * 1e-17; n++) {
    term *= (2 * x2) / (2 * n + 1);
    sum += term;
  }
  return Math.sign(x) * Math.min(1, (2 / Math.sqrt(Math.PI)) * Math.exp(-x2) * sum);
}

/** Rounds half to even (PyTorch's and WGSL's `round`). */
function roundHalfEven(x: number): number {
  if (!Number.isFinite(x)) return x;
  const f = Math.floor(x);
  const d = x - f;
  if (d !== 0.5) return d < 0.5 ? f : f + 1;
  return f % 2 === 0 ? f : f + 1;
}

/** The scalar function of every unary primitive. */
export const UNARY_CPU: { [K in UnaryOp]: (x: number) => number } = {
  neg: (x) => -x,
  abs: Math.abs,
  sign: Math.sign,
  exp: Math.exp,
  expm1: Math.expm1,
  log: Math.log,
  log1p: Math.log1p,
  sqrt: Math.sqrt,
  rsqrt: (x) => 1 / Math.sqrt(x),
  reciprocal: (x) => 1 / x,
  sin: Math.sin,
  cos: Math.cos,
  tanh: Math.tanh,
  // Never exponentiates a positive number, so it cannot overflow.
  sigmoid: (x) => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x))),
  relu: (x) => (x > 0 || Number.isNaN(x) ? x : 0),
  // max(x, 0) + log1p(e^−|x|): exact for large |x|, never overflows.
  softplus: (x) => Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x))),
  erf,
  floor: Math.floor,
  ceil: Math.ceil,
  round: roundHalfEven,
  logicalNot: (x) => (x ? 0 : 1),
};

/** The scalar function of every binary primitive (comparisons and logic give 1/0). */
export const BINARY_CPU: { [K in BinaryOp]: (a: number, b: number) => number } = {
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: (a, b) => a * b,
  div: (a, b) => a / b,
  pow: Math.pow,
  maximum: Math.max,
  minimum: Math.min,
  equal: (a, b) => +(a === b),
  notEqual: (a, b) => +(a !== b),
  less: (a, b) => +(a < b),
  lessEqual: (a, b) => +(a <= b),
  greater: (a, b) => +(a > b),
  greaterEqual: (a, b) => +(a >= b),
  logicalAnd: (a, b) => +(!!a && !!b),
  logicalOr: (a, b) => +(!!a || !!b),
  logicalXor: (a, b) => +(!!a !== !!b),
};

/** Converts one value to `dtype` as `cast` defines it (float→int truncates and saturates; NaN→0). */
function castValue(v: number, dtype: DType): number {
  if (dtype === 'bool') return v !== 0 ? 1 : 0;
  if (dtype === 'int32')
    return Number.isNaN(v) ? 0 : Math.trunc(Math.min(2147483647, Math.max(-2147483648, v)));
  return v;
}

type Kernel<K extends KernelOp> = (
  inputs: readonly KernelArg[],
  out: TypedArray,
  params: OpParamMap[K],
) => void;

function unaryKernel(op: UnaryOp): Kernel<UnaryOp> {
  const f = UNARY_CPU[op];
  return ([x], out) => {
    const xs = dataOf(x);
    const xo = offsetsOf(x);
    for (let i = 0; i < out.length; i++) out[i] = f(xs[xo[i]]);
  };
}

function binaryKernel(op: BinaryOp): Kernel<BinaryOp> {
  return ([a, b], out) => {
    // int32 products must wrap like 32-bit hardware, not round like float64.
    const f = op === 'mul' && a.dtype === 'int32' ? Math.imul : BINARY_CPU[op];
    const as = dataOf(a);
    const bs = dataOf(b);
    const ao = offsetsOf(a);
    const bo = offsetsOf(b);
    for (let i = 0; i < out.length; i++) out[i] = f(as[ao[i]], bs[bo[i]]);
  };
}

/** Splits a reduction into the offsets of kept positions and of reduced positions. */
function reductionPlan(x: KernelArg, axes: readonly number[]) {
  const kept = x.shape.map((_, i) => i).filter((i) => !axes.includes(i));
  const outer = stridedOffsets(
    kept.map((i) => x.shape[i]),
    kept.map((i) => x.strides[i]),
    x.offset,
  );
  const inner = stridedOffsets(
    axes.map((i) => x.shape[i]),
    axes.map((i) => x.strides[i]),
    0,
  );
  return { outer, inner };
}

type Reducer = { init: number; step: (acc: number, v: number) => number };
const REDUCERS: Record<'sum' | 'prod' | 'max' | 'min', Reducer> = {
  sum: { init: 0, step: (acc, v) => acc + v },
  prod: { init: 1, step: (acc, v) => acc * v },
  // NaN propagates: once acc is NaN it stays NaN; a NaN v replaces acc.
  max: {
    init: Number.NEGATIVE_INFINITY,
    step: (acc, v) => (v > acc || Number.isNaN(v) ? (Number.isNaN(acc) ? acc : v) : acc),
  },
  min: {
    init: Number.POSITIVE_INFINITY,
    step: (acc, v) => (v < acc || Number.isNaN(v) ? (Number.isNaN(acc) ? acc : v) : acc),
  },
};

function reduceKernel(op: keyof typeof REDUCERS): Kernel<ReduceOp> {
  const { init, step } = REDUCERS[op];
  return ([x], out, { axes }) => {
    const xs = dataOf(x);
    const { outer, inner } = reductionPlan(x, axes);
    const wrapProd = op === 'prod' && x.dtype === 'int32';
    for (let o = 0; o < outer.length; o++) {
      const base = outer[o];
      if (wrapProd) {
        out[o] = intProd(xs, base, inner);
        continue;
      }
      let acc = init;
      for (let i = 0; i < inner.length; i++) acc = step(acc, xs[base + inner[i]]);
      out[o] = acc;
    }
  };
}

/** int32 products wrap like 32-bit hardware. */
function intProd(xs: TypedArray, base: number, inner: Int32Array): number {
  let acc = 1;
  for (let i = 0; i < inner.length; i++) acc = Math.imul(acc, xs[base + inner[i]]);
  return acc;
}

function argReduceKernel(better: (v: number, best: number) => boolean): Kernel<ArgReduceOp> {
  return ([x], out, { axes }) => {
    const xs = dataOf(x);
    const { outer, inner } = reductionPlan(x, axes);
    for (let o = 0; o < outer.length; o++) {
      let best = xs[outer[o] + inner[0]];
      let bestIndex = 0;
      for (let i = 1; i < inner.length && !Number.isNaN(best); i++) {
        const v = xs[outer[o] + inner[i]];
        if (better(v, best) || Number.isNaN(v)) {
          best = v;
          bestIndex = i;
        }
      }
      out[o] = bestIndex;
    }
  };
}

/**
 * Batched matmul. Each batch's operands are packed into contiguous float64 rows (so transposed
 * views cost one pass), then C = A·B by the i-k-j loop over blocks of four rows of A: the
 * innermost loop streams one row of B into four rows of C, so each B element loaded serves four
 * multiply-adds. With a bias, every row of C starts from it instead of zeros.
 */
const matmulKernel: Kernel<'matmul'> = ([a, b, bias], out) => {
  const r = a.shape.length;
  const [M, K, N] = [a.shape[r - 2], a.shape[r - 1], b.shape[r - 1]];
  const batchShape = a.shape.slice(0, -2);
  const aBatch = stridedOffsets(batchShape, a.strides.slice(0, -2), a.offset);
  const bBatch = stridedOffsets(batchShape, b.strides.slice(0, -2), b.offset);
  const as = dataOf(a);
  const bs = dataOf(b);
  const [sam, sak, sbk, sbn] = [a.strides[r - 2], a.strides[r - 1], b.strides[r - 2], b.strides[r - 1]];
  const A = new Float64Array(M * K);
  const B = new Float64Array(K * N);
  const C = new Float64Array(4 * N);
  // The bias (or zeros) every row of C starts from.
  const start = new Float64Array(N);
  if (bias) {
    const data = dataOf(bias);
    for (let j = 0; j < N; j++) start[j] = data[bias.offset + j * bias.strides[0]];
  }
  const wrap = a.dtype === 'int32';
  for (let batch = 0; batch < aBatch.length; batch++) {
    for (let i = 0; i < M; i++)
      for (let k = 0; k < K; k++) A[i * K + k] = as[aBatch[batch] + i * sam + k * sak];
    for (let k = 0; k < K; k++)
      for (let j = 0; j < N; j++) B[k * N + j] = bs[bBatch[batch] + k * sbk + j * sbn];
    const base = batch * M * N;
    for (let i0 = 0; i0 < M; i0 += 4) {
      const rows = Math.min(4, M - i0);
      for (let r4 = 0; r4 < 4; r4++) C.set(start, r4 * N);
      for (let k = 0; k < K; k++) {
        // Rows past M multiply by 0 and are never stored.
        const a0 = A[i0 * K + k];
        const a1 = rows > 1 ? A[(i0 + 1) * K + k] : 0;
        const a2 = rows > 2 ? A[(i0 + 2) * K + k] : 0;
        const a3 = rows > 3 ? A[(i0 + 3) * K + k] : 0;
        const bRow = k * N;
        for (let j = 0; j < N; j++) {
          const bkj = B[bRow + j];
          C[j] += a0 * bkj;
          C[N + j] += a1 * bkj;
          C[2 * N + j] += a2 * bkj;
          C[3 * N + j] += a3 * bkj;
        }
      }
      for (let r4 = 0; r4 < rows; r4++) {
        for (let j = 0; j < N; j++) {
          const v = C[r4 * N + j];
          out[base + (i0 + r4) * N + j] = wrap ? Number(BigInt.asIntN(32, BigInt(v))) : v;
        }
      }
    }
  }
};

/**
 * `conv`, all three results from one loop nest over the convolution's terms
 * `w[o, c, i, j] · x[n, g·C/G + c, h, w] · y[n, o, a, b]` with `h = a·sh + i·dh − ph` (and the same
 * for w) inside the image: the result tensor accumulates the product of the other two. So the
 * output, the input adjoint and the weight adjoint are the same sum, by construction.
 */
const convKernel: Kernel<'conv'> = ([first, second], out, params) => {
  const { result, size, stride, padding, dilation, groups } = params;
  const [r0, r1] = CONV_INPUT_ROLES[result];
  const given = { [r0]: first, [r1]: second } as Partial<Record<'x' | 'w' | 'y', KernelArg>>;
  const resultShape = (role: 'x' | 'w' | 'y'): number[] => {
    const { x, w, y } = given;
    if (role === 'y') return [x!.shape[0], w!.shape[0], ...size];
    if (role === 'x') return [y!.shape[0], w!.shape[1] * groups, ...size];
    return [y!.shape[1], x!.shape[1] / groups, ...size];
  };
  const role = result === 'output' ? 'y' : result === 'input' ? 'x' : 'w';
  const acc = new Float64Array(out.length);
  // [data, offset, strides] of x, w and y; the result is `acc`, contiguous.
  const layout = (r: 'x' | 'w' | 'y') => {
    const t = given[r];
    if (t) return { data: dataOf(t), offset: t.offset, strides: t.strides, shape: t.shape };
    const shape = resultShape(r);
    return {
      data: acc,
      offset: 0,
      strides: [shape[1] * shape[2] * shape[3], shape[2] * shape[3], shape[3], 1],
      shape,
    };
  };
  const X = layout('x');
  const Wt = layout('w');
  const Y = layout('y');
  const [N, , H, W] = X.shape;
  const [O, Cg, KH, KW] = Wt.shape;
  const [OH, OW] = Y.shape.slice(2);
  const Og = O / groups;
  const [xs, ws, ys] = [X.strides, Wt.strides, Y.strides];
  const target = role === 'y' ? 0 : role === 'x' ? 1 : 2;
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < O; o++) {
      const g = Math.floor(o / Og);
      for (let c = 0; c < Cg; c++) {
        const xc = X.offset + n * xs[0] + (g * Cg + c) * xs[1];
        for (let i = 0; i < KH; i++) {
          for (let j = 0; j < KW; j++) {
            const wi = Wt.offset + o * ws[0] + c * ws[1] + i * ws[2] + j * ws[3];
            for (let a = 0; a < OH; a++) {
              const h = a * stride[0] + i * dilation[0] - padding[0];
              if (h < 0 || h >= H) continue;
              for (let b = 0; b < OW; b++) {
                const v = b * stride[1] + j * dilation[1] - padding[1];
                if (v < 0 || v >= W) continue;
                const xi = xc + h * xs[2] + v * xs[3];
                const yi = Y.offset + n * ys[0] + o * ys[1] + a * ys[2] + b * ys[3];
                if (target === 0) Y.data[yi] += Wt.data[wi] * X.data[xi];
                else if (target === 1) X.data[xi] += Wt.data[wi] * Y.data[yi];
                else Wt.data[wi] += X.data[xi] * Y.data[yi];
              }
            }
          }
        }
      }
    }
  }
  out.set(acc);
};

/**
 * A `layerNorm` operand as rows: the row count, the row length D (the last `count` axes) and the
 * storage offset of every element, row after row.
 */
function rowsOf(x: KernelArg, count: number) {
  const length = sizeOf(x.shape.slice(x.shape.length - count));
  const offsets = offsetsOf(x);
  return { rows: length === 0 ? 0 : offsets.length / length, length, offsets };
}

/**
 * Each row's mean μ and ρ = 1/√(σ² + eps), σ² the biased variance, by two passes (the mean, then
 * the mean square deviation from it), in float64.
 */
function rowStatistics(xs: TypedArray, xo: Int32Array, rows: number, length: number, eps: number) {
  const mean = new Float64Array(rows);
  const rstd = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let total = 0;
    for (let j = 0; j < length; j++) total += xs[xo[r * length + j]];
    const mu = total / length;
    let squares = 0;
    for (let j = 0; j < length; j++) squares += (xs[xo[r * length + j]] - mu) ** 2;
    mean[r] = mu;
    rstd[r] = 1 / Math.sqrt(squares / length + eps);
  }
  return { mean, rstd };
}

/** Element j of a weight or bias vector, or `otherwise` when the op has none. */
function vectorReader(arg: KernelArg | undefined, otherwise: number): (j: number) => number {
  if (!arg) return () => otherwise;
  const data = dataOf(arg);
  const offsets = offsetsOf(arg);
  return (j) => data[offsets[j]];
}

/** `y = x̂ · w + b` per row, with `x̂ = (x − μ) · ρ`. */
const layerNormKernel: Kernel<'layerNorm'> = (inputs, out, { count, eps, weight, bias }) => {
  const [x] = inputs;
  const { rows, length, offsets } = rowsOf(x, count);
  const xs = dataOf(x);
  const { mean, rstd } = rowStatistics(xs, offsets, rows, length, eps);
  const w = vectorReader(weight ? inputs[1] : undefined, 1);
  const b = vectorReader(bias ? inputs[weight ? 2 : 1] : undefined, 0);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < length; j++) {
      const i = r * length + j;
      out[i] = (xs[offsets[i]] - mean[r]) * rstd[r] * w(j) + b(j);
    }
  }
};

/**
 * The input gradient `ρ · (ĝ − mean(ĝ) − x̂ · mean(ĝ · x̂))` with `ĝ = g · w` per row, or the weight
 * and bias gradients `Σ_rows g · x̂` and `Σ_rows g` as the two rows of a `[2, D]` result.
 */
const layerNormGradKernel: Kernel<'layerNormGrad'> = (inputs, out, { result, count, eps, weight }) => {
  const [x, g] = inputs;
  const { rows, length, offsets } = rowsOf(x, count);
  const xs = dataOf(x);
  const gs = dataOf(g);
  const go = offsetsOf(g);
  const { mean, rstd } = rowStatistics(xs, offsets, rows, length, eps);
  const xHat = (i: number, r: number) => (xs[offsets[i]] - mean[r]) * rstd[r];
  if (result === 'affine') {
    out.fill(0);
    for (let r = 0; r < rows; r++) {
      for (let j = 0; j < length; j++) {
        const i = r * length + j;
        out[j] += gs[go[i]] * xHat(i, r);
        out[length + j] += gs[go[i]];
      }
    }
    return;
  }
  const w = vectorReader(weight ? inputs[2] : undefined, 1);
  for (let r = 0; r < rows; r++) {
    let sumG = 0;
    let sumGX = 0;
    for (let j = 0; j < length; j++) {
      const i = r * length + j;
      const gw = gs[go[i]] * w(j);
      sumG += gw;
      sumGX += gw * xHat(i, r);
    }
    for (let j = 0; j < length; j++) {
      const i = r * length + j;
      out[i] = rstd[r] * (gs[go[i]] * w(j) - sumG / length - (xHat(i, r) * sumGX) / length);
    }
  }
};

function random(out: TypedArray, p: OpParamMap['random']): void {
  const words = new Uint32Array(4);
  const [k0, k1] = p.key;
  const range = p.high - p.low;
  for (let i = 0; i < out.length; i++) {
    const counter = p.offset + i;
    philox4x32(counter >>> 0, Math.floor(counter / 4294967296) >>> 0, 0, 0, k0, k1, words);
    if (p.distribution === 'uniform') out[i] = (words[0] >>> 8) * TWO_POW_M24;
    else if (p.distribution === 'randint') out[i] = p.low + (words[0] % range);
    else {
      const u1 = ((words[0] >>> 8) + 1) * TWO_POW_M24;
      const u2 = (words[1] >>> 8) * TWO_POW_M24;
      out[i] = Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
    }
  }
}

/** Throws the error of the first index outside [0, size) (see `index-range.ts`). */
function checkIndices(context: IndexContext, values: TypedArray, offsets: Int32Array, size: number): void {
  for (let i = 0; i < offsets.length; i++) {
    const index = values[offsets[i]];
    if (!(index >= 0 && index < size)) throw indexRangeError(context, index, size);
  }
}

/** Sizes before, at and after `axis`. */
function around(shape: readonly number[], axis: number, width = 1) {
  return { before: sizeOf(shape.slice(0, axis)), after: sizeOf(shape.slice(axis + width)) };
}

/** The kernel of every primitive. */
const KERNELS: { [K in KernelOp]: Kernel<K> } = {
  ...(Object.fromEntries(Object.keys(UNARY_CPU).map((op) => [op, unaryKernel(op as UnaryOp)])) as {
    [K in UnaryOp]: Kernel<K>;
  }),
  ...(Object.fromEntries(Object.keys(BINARY_CPU).map((op) => [op, binaryKernel(op as BinaryOp)])) as {
    [K in BinaryOp]: Kernel<K>;
  }),
  sum: reduceKernel('sum'),
  prod: reduceKernel('prod'),
  max: reduceKernel('max'),
  min: reduceKernel('min'),
  argmax: argReduceKernel((v, best) => v > best),
  argmin: argReduceKernel((v, best) => v < best),
  where: ([c, a, b], out) => {
    const [cs, as, bs] = [dataOf(c), dataOf(a), dataOf(b)];
    const [co, ao, bo] = [offsetsOf(c), offsetsOf(a), offsetsOf(b)];
    for (let i = 0; i < out.length; i++) out[i] = cs[co[i]] ? as[ao[i]] : bs[bo[i]];
  },
  leakyRelu: ([x], out, { slope }) => {
    const xs = dataOf(x);
    const xo = offsetsOf(x);
    for (let i = 0; i < out.length; i++) {
      const v = xs[xo[i]];
      out[i] = v > 0 ? v : v * slope;
    }
  },
  leakyReluGrad: ([x, g], out, { slope }) => {
    const [xs, gs] = [dataOf(x), dataOf(g)];
    const [xo, go] = [offsetsOf(x), offsetsOf(g)];
    for (let i = 0; i < out.length; i++)
      out[i] = xs[xo[i]] > 0 ? gs[go[i]] : slope === 0 ? 0 : gs[go[i]] * slope;
  },
  cast: ([x], out, { dtype }) => {
    const xs = dataOf(x);
    const xo = offsetsOf(x);
    for (let i = 0; i < out.length; i++) out[i] = castValue(xs[xo[i]], dtype);
  },
  copy: ([x], out) => {
    const xs = dataOf(x);
    const xo = offsetsOf(x);
    for (let i = 0; i < out.length; i++) out[i] = xs[xo[i]];
  },
  matmul: matmulKernel,
  conv: convKernel,
  layerNorm: layerNormKernel,
  layerNormGrad: layerNormGradKernel,
  concat: (inputs, out, { axis }) => {
    const total = inputs.reduce((n, t) => n + t.shape[axis], 0);
    let position = 0;
    for (const t of inputs) {
      const { before, after } = around(t.shape, axis);
      const block = t.shape[axis] * after;
      const ts = dataOf(t);
      const to = offsetsOf(t);
      for (let o = 0; o < before; o++) {
        for (let j = 0; j < block; j++) out[o * total * after + position * after + j] = ts[to[o * block + j]];
      }
      position += t.shape[axis];
    }
  },
  take: ([x, idx], out, { axis, context }) => {
    const { before, after } = around(x.shape, axis);
    const dim = x.shape[axis];
    const xs = dataOf(x);
    const xo = offsetsOf(x);
    const is = dataOf(idx);
    const io = offsetsOf(idx);
    checkIndices(context ?? axisContext('take', axis, dim), is, io, dim);
    for (let o = 0; o < before; o++) {
      for (let i = 0; i < io.length; i++) {
        const src = (o * dim + is[io[i]]) * after;
        const dst = (o * io.length + i) * after;
        for (let j = 0; j < after; j++) out[dst + j] = xs[xo[src + j]];
      }
    }
  },
  scatterAdd: ([src, idx], out, { axis, size }) => {
    const { before, after } = around(src.shape, axis, idx.shape.length);
    const ss = dataOf(src);
    const so = offsetsOf(src);
    const is = dataOf(idx);
    const io = offsetsOf(idx);
    checkIndices(axisContext('scatterAdd', axis, size), is, io, size);
    out.fill(0);
    for (let o = 0; o < before; o++) {
      for (let i = 0; i < io.length; i++) {
        const dst = (o * size + is[io[i]]) * after;
        const from = (o * io.length + i) * after;
        for (let j = 0; j < after; j++) out[dst + j] += ss[so[from + j]];
      }
    }
  },
  // Each output element gathers the window taps that read it: tap (i, j) of position (y, x) read
  // row y·sh + i·dh, so row r receives taps with (r − i·dh) divisible by sh and in range.
  fold: ([g], out, { stride, dilation, size }) => {
    const [n, c, kh, kw, oh, ow] = g.shape;
    const [s0, s1, s2, s3, s4, s5] = g.strides;
    const gs = dataOf(g);
    const [h, w] = size;
    let k = 0;
    for (let b = 0; b < n; b++) {
      for (let ch = 0; ch < c; ch++) {
        const base = g.offset + b * s0 + ch * s1;
        for (let r = 0; r < h; r++) {
          for (let col = 0; col < w; col++) {
            let total = 0;
            for (let i = 0; i < kh; i++) {
              const dy = r - i * dilation[0];
              if (dy < 0 || dy % stride[0] !== 0 || dy / stride[0] >= oh) continue;
              for (let j = 0; j < kw; j++) {
                const dx = col - j * dilation[1];
                if (dx < 0 || dx % stride[1] !== 0 || dx / stride[1] >= ow) continue;
                total += gs[base + i * s2 + j * s3 + (dy / stride[0]) * s4 + (dx / stride[1]) * s5];
              }
            }
            out[k++] = total;
          }
        }
      }
    }
  },
  pad: ([x], out, { widths, value }) => {
    out.fill(value);
    const xs = dataOf(x);
    const xo = offsetsOf(x);
    const outShape = x.shape.map(
      (d, i) => widths[i][0] + widths[i][1] + d + Math.max(0, d - 1) * widths[i][2],
    );
    const outStrides = outShape.map((_, i) => sizeOf(outShape.slice(i + 1)));
    const rank = x.shape.length;
    const index = new Array<number>(rank).fill(0);
    for (let i = 0; i < xo.length; i++) {
      let dst = 0;
      for (let d = 0; d < rank; d++) dst += (widths[d][0] + index[d] * (widths[d][2] + 1)) * outStrides[d];
      out[dst] = xs[xo[i]];
      for (let d = rank - 1; d >= 0; d--) {
        if (++index[d] < x.shape[d]) break;
        index[d] = 0;
      }
    }
  },
  random: (_inputs, out, params) => random(out, params),
};

/** A compiled elementwise program: inputs, their offsets, outputs, element count, scalars. */
type ProgramLoop = (
  inputs: TypedArray[],
  offsets: number[],
  outputs: TypedArray[],
  count: number,
  scalars: readonly number[],
) => void;

const compiledPrograms = new Map<string, ProgramLoop>();

/**
 * Compiles an elementwise program to one JavaScript loop (the program's tokens were checked by
 * `parseProgram`: names, float literals, operators and four functions, so the generated source
 * holds nothing else). Values are float64 while the loop runs.
 */
function compileProgram(program: ParsedProgram): ProgramLoop {
  const v = (name: string) => `v_${name}`;
  // Math.max and Math.min return NaN for a NaN argument, as the `maximum`/`minimum` kernels do.
  const fn = (f: ProgramFunction) => `Math.${f}`;
  const lines = [
    ...program.scalars.map((s, k) => `const ${v(s)} = scalars[${k}];`),
    ...program.inputs.map((_, k) => `const in${k} = inputs[${k}], off${k} = offsets[${k}];`),
    ...program.outputs.map((_, k) => `const out${k} = outputs[${k}];`),
    'for (let i = 0; i < count; i++) {',
    ...program.inputs.map((name, k) => `  let ${v(name)} = in${k}[off${k} + i];`),
    ...program.locals.map((name) => `  let ${v(name)};`),
    ...program.statements.map((s) => `  ${v(s.target)} = ${renderExpression(s.expression, v, fn)};`),
    ...program.outputs.map((name, k) => `  out${k}[i] = ${v(name)};`),
    '}',
  ];
  return new Function('inputs', 'offsets', 'outputs', 'count', 'scalars', lines.join('\n')) as ProgramLoop;
}

/**
 * Creates the CPU backend (registered at import time as `'cpu'`).
 *
 * @example
 * ```ts
 * setBackend('cpu');
 * ```
 */
export function createCpuBackend(): Backend {
  let buffers = 0;
  let bytes = 0;
  return {
    name: 'cpu',
    dtypes: ['float32', 'float64', 'int32', 'bool'],
    alloc(dtype: DType, size: number): BackendBuffer {
      const data = allocArray(dtype, size);
      buffers++;
      bytes += size * bytesPerElement(dtype);
      return { data } satisfies CpuBuffer;
    },
    upload(buffer, data) {
      (buffer as CpuBuffer).data.set(data);
    },
    async read(buffer, _dtype, size) {
      return (buffer as CpuBuffer).data.slice(0, size);
    },
    free(buffer) {
      const { data } = buffer as CpuBuffer;
      buffers--;
      bytes -= data.byteLength;
    },
    run(op, inputs, out, params) {
      (KERNELS[op] as Kernel<typeof op>)(inputs, dataOf(out), params);
    },
    runProgram(program, inputs, outputs, scalars) {
      let fn = compiledPrograms.get(program.key);
      if (!fn) compiledPrograms.set(program.key, (fn = compileProgram(program)));
      fn(
        inputs.map(dataOf),
        inputs.map((x) => x.offset),
        outputs.map(dataOf),
        sizeOf(outputs[0].shape),
        scalars,
      );
    },
    memory(): BackendMemory {
      return { buffers, bytes };
    },
    async sync() {},
  };
}

registerBackend(createCpuBackend());
