/**
 * The op registry: every primitive of Fluxion, its parameters and its shape/dtype rule.
 *
 * A primitive is one entry here, one kernel in each backend's table (`backends/cpu.ts`,
 * `backends/webgpu/kernels.ts`) and one VJP in `@fluxion/autograd`. All of those tables are typed
 * `{ [K in OpName]: … }`, so a primitive without a kernel or a VJP is a compile error.
 *
 * Kinds of primitive:
 * - `unary`, `binary`: elementwise; binary inputs arrive already broadcast to the output shape (as
 *   stride-0 views), so kernels never broadcast themselves.
 * - `reduce` (sum, prod, max, min) and `argReduce` (argmax, argmin) over a sorted set of axes.
 * - `view` ops (reshape, permute, expand, slice, windows) are metadata over the same storage: no
 *   kernel.
 * - the rest (`where`, `cast`, `matmul`, `conv`, `concat`, `take`, `scatterAdd`, `pad`, `fold`,
 *   `copy`, `random`, `leakyRelu` and its derivative `leakyReluGrad`, `layerNorm` and its gradient
 *   `layerNormGrad`) each have their own kernel.
 *   `leakyRelu` is a primitive rather than `where(x > 0, x, slope·x)` because a GAN runs it after
 *   every layer: one kernel instead of three forward, one instead of four backward.
 *   `conv` is a primitive rather than `pad` + `windows` + `matmul` (im2col) for speed and memory:
 *   im2col copies every input element KH·KW times into a column matrix (26M floats for one
 *   WaveGAN layer) and its gradient needs `fold`; the `conv` kernels read the image through the
 *   convolution's index arithmetic instead (implicit GEMM). One primitive covers the forward pass
 *   and both gradients, and its VJPs are `conv`s again, so second derivatives work.
 *   `layerNorm` is a primitive rather than mean, variance, sub, rsqrt, mul and add for speed: a
 *   Transformer normalises every block's input twice, and the composite took eight launches
 *   forward and about twenty backward (four of them reductions) where the primitive takes one
 *   forward, and its gradient `layerNormGrad` one for the input and one or two for the weight and
 *   bias. Its kernels also compute the row statistics from values shifted by the row's first
 *   element, so rows with a large mean keep their float32 accuracy. Its VJPs are `layerNorm`,
 *   `layerNormGrad` and elementwise ops again, so second derivatives work.
 *
 * Everything else (mean, softmax, logSumExp, clamp, …) is composed from these in `composite.ts`.
 */
import { type DType, isFloat } from './dtype.js';
import { FluxionError, fmtShape } from './errors.js';
import type { IndexContext } from './index-range.js';
import type { Distribution } from './philox.js';
import { reducedShape, shapesEqual, sizeOf } from './shape.js';

/** Elementwise ops of one input. */
export const UNARY_OPS = [
  'neg',
  'abs',
  'sign',
  'exp',
  'expm1',
  'log',
  'log1p',
  'sqrt',
  'rsqrt',
  'reciprocal',
  'sin',
  'cos',
  'tanh',
  'sigmoid',
  'relu',
  'softplus',
  'erf',
  'floor',
  'ceil',
  'round',
  'logicalNot',
] as const;
/** Name of an elementwise op of one input. */
export type UnaryOp = (typeof UNARY_OPS)[number];

/** Unary ops that accept int32 as well as floats (the rest need a float input). */
export const INT_UNARY_OPS: readonly UnaryOp[] = ['neg', 'abs', 'sign'];

/** Elementwise ops of two inputs (broadcast). */
export const BINARY_OPS = [
  'add',
  'sub',
  'mul',
  'div',
  'pow',
  'maximum',
  'minimum',
  'equal',
  'notEqual',
  'less',
  'lessEqual',
  'greater',
  'greaterEqual',
  'logicalAnd',
  'logicalOr',
  'logicalXor',
] as const;
/** Name of an elementwise op of two inputs. */
export type BinaryOp = (typeof BINARY_OPS)[number];

/** Binary ops that produce `bool`. */
export const COMPARISON_OPS: readonly BinaryOp[] = [
  'equal',
  'notEqual',
  'less',
  'lessEqual',
  'greater',
  'greaterEqual',
];
/** Binary ops on `bool` inputs. */
export const LOGICAL_OPS: readonly BinaryOp[] = ['logicalAnd', 'logicalOr', 'logicalXor'];
/** Binary ops that need float inputs. */
export const FLOAT_BINARY_OPS: readonly BinaryOp[] = ['div', 'pow'];

/** Reductions producing a value of the input dtype. */
export const REDUCE_OPS = ['sum', 'prod', 'max', 'min'] as const;
/** Name of a value reduction. */
export type ReduceOp = (typeof REDUCE_OPS)[number];
/** Reductions producing int32 indices. */
export const ARG_REDUCE_OPS = ['argmax', 'argmin'] as const;
/** Name of an index reduction. */
export type ArgReduceOp = (typeof ARG_REDUCE_OPS)[number];

/** View ops: new shape/strides/offset over the same storage. */
export const VIEW_OPS = ['reshape', 'permute', 'expand', 'slice', 'windows'] as const;
/** Name of a view op. */
export type ViewOp = (typeof VIEW_OPS)[number];

/** Parameters of a reduction: sorted, normalised axes and whether to keep them as size 1. */
export interface ReduceParams {
  axes: number[];
  keepDims: boolean;
}

/** Sliding windows over the last two axes: kernel size, step and spacing of the taps, per axis. */
export interface WindowParams {
  kernel: [number, number];
  stride: [number, number];
  dilation: [number, number];
}

/** Which of a convolution's three tensors a `conv` op computes from the other two. */
export type ConvResult = 'output' | 'input' | 'weight';

/**
 * Parameters of `conv`. A grouped 2-D convolution relates an image `x [N, C, H, W]`, a weight
 * `w [O, C/G, KH, KW]` and an output `y [N, O, OH, OW]` through
 * `y[n, o, a, b] = Σ_{c, i, j} w[o, c, i, j] · x[n, g·C/G + c, a·sh + i·dh − ph, b·sw + j·dw − pw]`
 * (g = ⌊o / (O/G)⌋; taps outside the image read 0). That is linear in x and in w, and `conv`
 * computes one of the three tensors from the other two:
 * - `output`: inputs `(x, w)`, result `y` (the convolution; `size` = `[OH, OW]`);
 * - `input`: inputs `(y, w)`, result `x`, the adjoint in x (the transposed convolution and the
 *   input gradient; `size` = `[H, W]`);
 * - `weight`: inputs `(x, y)`, result `w`, the adjoint in w (the weight gradient; `size` =
 *   `[KH, KW]`).
 *
 * `size` is the result's spatial size; the other sizes are the inputs'. Every pair of sizes is
 * allowed (taps that fall outside any of the three tensors count 0), so the gradient of any `conv`
 * is a `conv` whose result has exactly the shape of the input it differentiates.
 */
export interface ConvParams {
  result: ConvResult;
  size: [number, number];
  stride: [number, number];
  padding: [number, number];
  dilation: [number, number];
  groups: number;
}

/**
 * Parameters of `layerNorm`. Each row of `x` (its last `count` axes, D elements) is normalised as
 * `x̂ = (x − μ) · ρ` with `μ` the row's mean and `ρ = 1/√(σ² + eps)`, `σ²` its biased variance
 * (PyTorch's `F.layer_norm`); then `y = x̂ · w + b` when the op has a weight and a bias.
 */
export interface LayerNormParams {
  count: number;
  eps: number;
  weight: boolean;
  bias: boolean;
}

/**
 * Parameters of `layerNormGrad`, the two halves of layerNorm's VJP for an output gradient `g`
 * (statistics recomputed from `x`; means over each row):
 * - `input`: inputs `(x, g)`, or `(x, g, w)` with `weight`, result the input gradient
 *   `dx = ρ · (ĝ − mean(ĝ) − x̂ · mean(ĝ · x̂))` with `ĝ = g · w` (or g), shaped like x;
 * - `affine`: inputs `(x, g)`, result `[2, ...normalised shape]`: the weight gradient `Σ_rows g · x̂`
 *   stacked on the bias gradient `Σ_rows g` (one pass over the rows for both).
 */
export interface LayerNormGradParams {
  result: 'input' | 'affine';
  count: number;
  eps: number;
  weight: boolean;
}

/** Output positions of windows along one axis: `⌊(size − dilation·(kernel − 1) − 1) / stride⌋ + 1`. */
export function windowCount(size: number, kernel: number, stride: number, dilation: number): number {
  return Math.floor((size - dilation * (kernel - 1) - 1) / stride) + 1;
}

/** Parameters of every primitive, by name. */
export type OpParamMap = { [K in UnaryOp]: Record<string, never> } & {
  [K in BinaryOp]: Record<string, never>;
} & { [K in ReduceOp | ArgReduceOp]: ReduceParams } & {
  /** `where(cond, a, b)`: all three already broadcast to one shape. */
  where: Record<string, never>;
  cast: { dtype: DType };
  /**
   * Batched matmul `[..., M, K] @ [..., K, N]`, batch dims already broadcast to one shape; an
   * optional third input, a bias `[N]`, is added to every row of the product as it is stored.
   */
  matmul: Record<string, never>;
  /** Convolution: the output, or the adjoint in the input or in the weight (see {@link ConvParams}). */
  conv: ConvParams;
  concat: { axis: number };
  /**
   * `take(x, idx, axis)`: out = x.shape[:axis] + idx.shape + x.shape[axis+1:] (NumPy `take`).
   * `context` names the caller in the error an index outside [0, x.shape[axis]) raises.
   */
  take: { axis: number; context?: IndexContext };
  /** The adjoint of take: `scatterAdd(src, idx, axis, size)` sums src blocks into `size` slots. */
  scatterAdd: { axis: number; size: number };
  /** Constant padding per axis: [low, high, interior] (interior = gaps between elements). */
  pad: { widths: [number, number, number][]; value: number };
  /**
   * The adjoint of `windows`: `[N, C, KH, KW, OH, OW]` windows summed back into `[N, C, H, W]`
   * (`size` = `[H, W]`), each element receiving every window tap that read it.
   */
  fold: WindowParams & { size: [number, number] };
  /** A contiguous copy. */
  copy: Record<string, never>;
  /** `x` where x > 0, else `slope · x` (NaN stays NaN). */
  leakyRelu: { slope: number };
  /**
   * The VJP of leakyRelu (and of relu, with slope 0): `leakyReluGrad(x, g)` is g where x > 0, else
   * `slope · g`, exactly 0 when the slope is 0 even for infinite g (inputs broadcast first).
   */
  leakyReluGrad: { slope: number };
  /**
   * Layer normalisation over the last `count` axes (see {@link LayerNormParams}); inputs `x`, then
   * the weight if `weight`, then the bias if `bias` (each of the normalised shape).
   */
  layerNorm: LayerNormParams;
  /** The gradients of `layerNorm` (see {@link LayerNormGradParams}). */
  layerNormGrad: LayerNormGradParams;
  /** Random numbers from Philox4x32-10 (see `philox.ts`). */
  random: {
    shape: number[];
    dtype: DType;
    key: [number, number];
    offset: number;
    distribution: Distribution;
    low: number;
    high: number;
  };
  reshape: { shape: number[] };
  permute: { axes: number[] };
  expand: { shape: number[] };
  /** Per-axis start index and positive step; `shape` is the resulting length per axis. */
  slice: { starts: number[]; steps: number[]; shape: number[] };
  /**
   * Every window of `[N, C, H, W]` as the view `[N, C, KH, KW, OH, OW]`:
   * `out[n, c, i, j, y, x] = in[n, c, y·sh + i·dh, x·sw + j·dw]` (no padding: pad first).
   */
  windows: WindowParams;
};

/** Every primitive's name. */
export type OpName = keyof OpParamMap;
/** Primitives that run a kernel (everything but the view ops). */
export type KernelOp = Exclude<OpName, ViewOp>;

/** What a shape rule sees of an input tensor. */
export interface TensorMeta {
  readonly shape: readonly number[];
  readonly dtype: DType;
}

/** The shape and dtype a primitive produces. */
export interface OutputMeta {
  shape: number[];
  dtype: DType;
}

/** Registry entry: how a primitive derives its output from its inputs, raising clear errors. */
export interface OpDef<K extends OpName> {
  kind: 'unary' | 'binary' | 'reduce' | 'argReduce' | 'view' | 'other';
  infer(inputs: readonly TensorMeta[], params: OpParamMap[K]): OutputMeta;
}

const describe = (inputs: readonly TensorMeta[]) =>
  inputs.map((t) => `${fmtShape(t.shape)} ${t.dtype}`).join(', ');

function sameDtype(op: string, inputs: readonly TensorMeta[]): DType {
  const d = inputs[0].dtype;
  for (const t of inputs) {
    if (t.dtype !== d) throw new FluxionError(op, `inputs must share one dtype, got ${describe(inputs)}`);
  }
  return d;
}

function checkSlope(op: string, slope: number): void {
  if (typeof slope !== 'number' || !Number.isFinite(slope))
    throw new FluxionError(op, `slope must be a finite number, got ${slope}`);
}

/**
 * The checks shared by `layerNorm` and `layerNormGrad`: the inputs `names` (x first, then any of g,
 * weight, bias), one float dtype, `count` trailing axes of x, weight and bias of exactly that
 * shape, and a finite eps ≥ 0.
 */
function checkLayerNorm(
  op: string,
  inputs: readonly TensorMeta[],
  names: readonly string[],
  { count, eps }: { count: number; eps: number },
): void {
  if (inputs.length !== names.length)
    throw new FluxionError(
      op,
      `expected ${names.length} input(s) (${names.join(', ')}), got ${inputs.length}`,
    );
  const named = () => inputs.map((t, i) => `${names[i]} ${fmtShape(t.shape)} ${t.dtype}`).join(', ');
  const x = inputs[0];
  if (!Number.isInteger(count) || count < 1 || count > x.shape.length) {
    throw new FluxionError(op, `cannot normalise the last ${count} axes of x ${fmtShape(x.shape)}`);
  }
  if (typeof eps !== 'number' || !Number.isFinite(eps) || eps < 0)
    throw new FluxionError(op, `eps must be a finite number ≥ 0, got ${eps}`);
  if (!isFloat(x.dtype)) throw new FluxionError(op, `needs float inputs, got ${named()}`);
  if (inputs.some((t) => t.dtype !== x.dtype))
    throw new FluxionError(op, `inputs must share one dtype, got ${named()}`);
  const normalized = x.shape.slice(x.shape.length - count);
  inputs.forEach((t, i) => {
    if ((names[i] === 'weight' || names[i] === 'bias') && !shapesEqual(t.shape, normalized)) {
      throw new FluxionError(
        op,
        `${names[i]} must have the normalised shape ${fmtShape(normalized)}, got ${named()}`,
      );
    }
  });
}

function arity(op: string, inputs: readonly TensorMeta[], n: number): void {
  if (inputs.length !== n) throw new FluxionError(op, `expected ${n} input(s), got ${inputs.length}`);
}

function unaryDef(op: UnaryOp): OpDef<UnaryOp> {
  return {
    kind: 'unary',
    infer(inputs) {
      arity(op, inputs, 1);
      const { dtype, shape } = inputs[0];
      const ok =
        op === 'logicalNot'
          ? dtype === 'bool'
          : isFloat(dtype) || (dtype === 'int32' && INT_UNARY_OPS.includes(op));
      if (!ok) throw new FluxionError(op, `unsupported dtype ${dtype} for input ${fmtShape(shape)}`);
      return { shape: [...shape], dtype };
    },
  };
}

function binaryDef(op: BinaryOp): OpDef<BinaryOp> {
  return {
    kind: 'binary',
    infer(inputs) {
      arity(op, inputs, 2);
      const dtype = sameDtype(op, inputs);
      if (!shapesEqual(inputs[0].shape, inputs[1].shape)) {
        throw new FluxionError(op, `kernel inputs must be broadcast first, got ${describe(inputs)}`);
      }
      if (LOGICAL_OPS.includes(op) ? dtype !== 'bool' : dtype === 'bool' && !COMPARISON_OPS.includes(op)) {
        throw new FluxionError(op, `unsupported dtype ${dtype}`);
      }
      if (FLOAT_BINARY_OPS.includes(op) && !isFloat(dtype))
        throw new FluxionError(op, `needs float inputs, got ${dtype}`);
      return { shape: [...inputs[0].shape], dtype: COMPARISON_OPS.includes(op) ? 'bool' : dtype };
    },
  };
}

function reduceDef(op: ReduceOp | ArgReduceOp, arg: boolean): OpDef<ReduceOp | ArgReduceOp> {
  return {
    kind: arg ? 'argReduce' : 'reduce',
    infer(inputs, { axes, keepDims }) {
      arity(op, inputs, 1);
      const { shape, dtype } = inputs[0];
      if (dtype === 'bool')
        throw new FluxionError(op, `unsupported dtype bool; cast to int32 or float first`);
      for (const a of axes) {
        if (shape[a] === 0 && (arg || op === 'max' || op === 'min')) {
          throw new FluxionError(op, `cannot reduce an empty axis ${a} of ${fmtShape(shape)}`);
        }
      }
      return { shape: reducedShape(shape, axes, keepDims), dtype: arg ? 'int32' : dtype };
    },
  };
}

const unaryDefs = Object.fromEntries(UNARY_OPS.map((op) => [op, unaryDef(op)])) as {
  [K in UnaryOp]: OpDef<K>;
};
const binaryDefs = Object.fromEntries(BINARY_OPS.map((op) => [op, binaryDef(op)])) as {
  [K in BinaryOp]: OpDef<K>;
};
const reduceDefs = Object.fromEntries([
  ...REDUCE_OPS.map((op) => [op, reduceDef(op, false)]),
  ...ARG_REDUCE_OPS.map((op) => [op, reduceDef(op, true)]),
]) as { [K in ReduceOp | ArgReduceOp]: OpDef<K> };

/** The registry: one entry per primitive. */
export const OPS: { [K in OpName]: OpDef<K> } = {
  ...unaryDefs,
  ...binaryDefs,
  ...reduceDefs,
  where: {
    kind: 'other',
    infer(inputs) {
      arity('where', inputs, 3);
      const [c, a, b] = inputs;
      if (c.dtype !== 'bool') throw new FluxionError('where', `condition must be bool, got ${c.dtype}`);
      if (a.dtype !== b.dtype)
        throw new FluxionError('where', `branches must share one dtype, got ${describe(inputs)}`);
      if (!shapesEqual(c.shape, a.shape) || !shapesEqual(a.shape, b.shape)) {
        throw new FluxionError('where', `kernel inputs must be broadcast first, got ${describe(inputs)}`);
      }
      return { shape: [...a.shape], dtype: a.dtype };
    },
  },
  leakyRelu: {
    kind: 'other',
    infer(inputs, { slope }) {
      arity('leakyRelu', inputs, 1);
      checkSlope('leakyRelu', slope);
      const { shape, dtype } = inputs[0];
      if (!isFloat(dtype))
        throw new FluxionError('leakyRelu', `needs a float input, got ${describe(inputs)}`);
      return { shape: [...shape], dtype };
    },
  },
  leakyReluGrad: {
    kind: 'other',
    infer(inputs, { slope }) {
      arity('leakyReluGrad', inputs, 2);
      checkSlope('leakyReluGrad', slope);
      const dtype = sameDtype('leakyReluGrad', inputs);
      if (!isFloat(dtype))
        throw new FluxionError('leakyReluGrad', `needs float inputs, got ${describe(inputs)}`);
      if (!shapesEqual(inputs[0].shape, inputs[1].shape)) {
        throw new FluxionError(
          'leakyReluGrad',
          `kernel inputs must be broadcast first, got ${describe(inputs)}`,
        );
      }
      return { shape: [...inputs[0].shape], dtype };
    },
  },
  layerNorm: {
    kind: 'other',
    infer(inputs, params) {
      const names = ['x', ...(params.weight ? ['weight'] : []), ...(params.bias ? ['bias'] : [])];
      checkLayerNorm('layerNorm', inputs, names, params);
      return { shape: [...inputs[0].shape], dtype: inputs[0].dtype };
    },
  },
  layerNormGrad: {
    kind: 'other',
    infer(inputs, params) {
      if (params.result !== 'input' && params.result !== 'affine')
        throw new FluxionError('layerNormGrad', `result must be 'input' or 'affine', got ${params.result}`);
      if (params.result === 'affine' && params.weight)
        throw new FluxionError('layerNormGrad', 'the affine result takes no weight');
      const names = ['x', 'g', ...(params.weight ? ['weight'] : [])];
      checkLayerNorm('layerNormGrad', inputs, names, params);
      const [x, g] = inputs;
      if (!shapesEqual(x.shape, g.shape))
        throw new FluxionError('layerNormGrad', `x and g must have one shape, got ${describe(inputs)}`);
      const { shape, dtype } = x;
      const normalized = shape.slice(shape.length - params.count);
      return { shape: params.result === 'input' ? [...shape] : [2, ...normalized], dtype };
    },
  },
  cast: {
    kind: 'other',
    infer(inputs, { dtype }) {
      arity('cast', inputs, 1);
      return { shape: [...inputs[0].shape], dtype };
    },
  },
  matmul: {
    kind: 'other',
    infer(inputs) {
      if (inputs.length !== 2 && inputs.length !== 3)
        throw new FluxionError('matmul', `expected 2 inputs (3 with a bias), got ${inputs.length}`);
      const [a, b, bias] = inputs;
      const dtype = sameDtype('matmul', inputs);
      if (dtype === 'bool') throw new FluxionError('matmul', 'unsupported dtype bool');
      if (a.shape.length < 2 || b.shape.length !== a.shape.length) {
        throw new FluxionError(
          'matmul',
          `kernel needs equal-rank inputs of rank ≥ 2, got ${describe(inputs)}`,
        );
      }
      const r = a.shape.length;
      if (a.shape[r - 1] !== b.shape[r - 2]) {
        throw new FluxionError(
          'matmul',
          `inner dimensions differ: ${fmtShape(a.shape)} @ ${fmtShape(b.shape)}`,
        );
      }
      if (!shapesEqual(a.shape.slice(0, -2), b.shape.slice(0, -2))) {
        throw new FluxionError('matmul', `batch dims must be broadcast first, got ${describe(inputs)}`);
      }
      if (bias && (bias.shape.length !== 1 || bias.shape[0] !== b.shape[r - 1])) {
        throw new FluxionError(
          'matmul',
          `bias must be [${b.shape[r - 1]}] (one per column), got ${describe(inputs)}`,
        );
      }
      return { shape: [...a.shape.slice(0, -1), b.shape[r - 1]], dtype };
    },
  },
  conv: {
    kind: 'other',
    infer(inputs, params) {
      arity('conv', inputs, 2);
      const dtype = sameDtype('conv', inputs);
      if (!isFloat(dtype)) throw new FluxionError('conv', `needs float inputs, got ${describe(inputs)}`);
      checkConvParams(params);
      const roles = CONV_INPUT_ROLES[params.result];
      const named: Partial<Record<'x' | 'w' | 'y', readonly number[]>> = {};
      inputs.forEach((t, i) => {
        if (t.shape.length !== 4) {
          throw new FluxionError(
            'conv',
            `${params.result}: expected rank-4 ${CONV_ROLE_NAMES[roles[i]]}, got ${describe(inputs)}`,
          );
        }
        named[roles[i]] = t.shape;
      });
      const { x, w, y } = named;
      const G = params.groups;
      const fail = (why: string): never => {
        throw new FluxionError('conv', `${params.result}: ${why}, got ${describe(inputs)} (groups ${G})`);
      };
      if (x && y && x[0] !== y[0]) fail('image and output batch sizes differ');
      if (x && x[1] % G !== 0) fail('image channels are not divisible by groups');
      if (y && y[1] % G !== 0) fail('output channels are not divisible by groups');
      if (w && w[0] % G !== 0) fail('weight output channels are not divisible by groups');
      if (x && w && x[1] !== w[1] * G) fail('image channels ≠ weight input channels × groups');
      if (y && w && y[1] !== w[0]) fail('output channels ≠ weight output channels');
      const [h, wd] = params.size;
      const shape =
        params.result === 'output'
          ? [x![0], w![0], h, wd]
          : params.result === 'input'
            ? [y![0], w![1] * G, h, wd]
            : [y![1], x![1] / G, h, wd];
      return { shape, dtype };
    },
  },
  concat: {
    kind: 'other',
    infer(inputs, { axis }) {
      if (inputs.length === 0) throw new FluxionError('concat', 'needs at least one tensor');
      const dtype = sameDtype('concat', inputs);
      const first = inputs[0].shape;
      let total = 0;
      for (const t of inputs) {
        const ok = t.shape.length === first.length && t.shape.every((d, i) => i === axis || d === first[i]);
        if (!ok) throw new FluxionError('concat', `shapes differ outside axis ${axis}: ${describe(inputs)}`);
        total += t.shape[axis];
      }
      const shape = [...first];
      shape[axis] = total;
      return { shape, dtype };
    },
  },
  take: {
    kind: 'other',
    infer(inputs, { axis }) {
      arity('take', inputs, 2);
      const [x, idx] = inputs;
      if (idx.dtype !== 'int32') throw new FluxionError('take', `indices must be int32, got ${idx.dtype}`);
      return { shape: [...x.shape.slice(0, axis), ...idx.shape, ...x.shape.slice(axis + 1)], dtype: x.dtype };
    },
  },
  scatterAdd: {
    kind: 'other',
    infer(inputs, { axis, size }) {
      arity('scatterAdd', inputs, 2);
      const [src, idx] = inputs;
      if (idx.dtype !== 'int32')
        throw new FluxionError('scatterAdd', `indices must be int32, got ${idx.dtype}`);
      const block = src.shape.slice(axis, axis + idx.shape.length);
      if (!shapesEqual(block, idx.shape)) {
        throw new FluxionError(
          'scatterAdd',
          `source ${fmtShape(src.shape)} does not hold indices ${fmtShape(idx.shape)} at axis ${axis}`,
        );
      }
      return {
        shape: [...src.shape.slice(0, axis), size, ...src.shape.slice(axis + idx.shape.length)],
        dtype: src.dtype,
      };
    },
  },
  pad: {
    kind: 'other',
    infer(inputs, { widths }) {
      arity('pad', inputs, 1);
      const { shape, dtype } = inputs[0];
      if (widths.length !== shape.length) {
        throw new FluxionError('pad', `needs one [low, high, interior] per axis of ${fmtShape(shape)}`);
      }
      return {
        shape: shape.map((d, i) => {
          const [lo, hi, interior] = widths[i];
          if (![lo, hi, interior].every((w) => Number.isInteger(w) && w >= 0)) {
            throw new FluxionError(
              'pad',
              `widths must be non-negative integers, got [${widths[i]}] on axis ${i}`,
            );
          }
          return lo + hi + d + Math.max(0, d - 1) * interior;
        }),
        dtype,
      };
    },
  },
  fold: {
    kind: 'other',
    infer(inputs, params) {
      arity('fold', inputs, 1);
      const { shape, dtype } = inputs[0];
      const [h, w] = params.size;
      checkWindowParams('fold', params);
      const expected = [params.kernel[0], params.kernel[1], ...windowsOf('fold', [h, w], params)];
      if (shape.length !== 6 || !shapesEqual(shape.slice(2), expected)) {
        throw new FluxionError(
          'fold',
          `expected windows [N, C, ${expected.join(', ')}] of a [${h}, ${w}] image, got ${fmtShape(shape)}`,
        );
      }
      return { shape: [shape[0], shape[1], h, w], dtype };
    },
  },
  copy: {
    kind: 'other',
    infer(inputs) {
      arity('copy', inputs, 1);
      return { shape: [...inputs[0].shape], dtype: inputs[0].dtype };
    },
  },
  random: {
    kind: 'other',
    infer(inputs, { shape, dtype, distribution }) {
      arity('random', inputs, 0);
      if (distribution === 'randint' ? dtype !== 'int32' : !isFloat(dtype)) {
        throw new FluxionError('random', `${distribution} cannot produce dtype ${dtype}`);
      }
      return { shape: [...shape], dtype };
    },
  },
  reshape: {
    kind: 'view',
    infer(inputs, { shape }) {
      const from = inputs[0].shape;
      if (sizeOf(from) !== sizeOf(shape)) {
        throw new FluxionError(
          'reshape',
          `cannot reshape ${fmtShape(from)} (${sizeOf(from)} elements) to ${fmtShape(shape)}`,
        );
      }
      return { shape: [...shape], dtype: inputs[0].dtype };
    },
  },
  permute: {
    kind: 'view',
    infer(inputs, { axes }) {
      const from = inputs[0].shape;
      const ok = axes.length === from.length && [...axes].sort((a, b) => a - b).every((a, i) => a === i);
      if (!ok)
        throw new FluxionError('permute', `[${axes}] is not a permutation of the axes of ${fmtShape(from)}`);
      return { shape: axes.map((a) => from[a]), dtype: inputs[0].dtype };
    },
  },
  expand: {
    kind: 'view',
    infer(inputs, { shape }) {
      const from = inputs[0].shape;
      const ok =
        shape.length === from.length &&
        from.every((d, i) => d === shape[i] || d === 1) &&
        shape.every((d) => d >= 0);
      if (!ok) throw new FluxionError('expand', `cannot expand ${fmtShape(from)} to ${fmtShape(shape)}`);
      return { shape: [...shape], dtype: inputs[0].dtype };
    },
  },
  slice: {
    kind: 'view',
    infer(inputs, { shape }) {
      return { shape: [...shape], dtype: inputs[0].dtype };
    },
  },
  windows: {
    kind: 'view',
    infer(inputs, params) {
      arity('windows', inputs, 1);
      const { shape, dtype } = inputs[0];
      if (shape.length !== 4)
        throw new FluxionError('windows', `expected [N, C, H, W], got ${fmtShape(shape)}`);
      checkWindowParams('windows', params);
      const [oh, ow] = windowsOf('windows', [shape[2], shape[3]], params);
      return { shape: [shape[0], shape[1], ...params.kernel, oh, ow], dtype };
    },
  },
};

/** The tensors a `conv` of each result takes, in order: image x, weight w, output y. */
export const CONV_INPUT_ROLES: Record<ConvResult, readonly ['x' | 'w' | 'y', 'x' | 'w' | 'y']> = {
  output: ['x', 'w'],
  input: ['y', 'w'],
  weight: ['x', 'y'],
};
const CONV_ROLE_NAMES = { x: 'image [N, C, H, W]', w: 'weight [O, C/G, KH, KW]', y: 'output [N, O, OH, OW]' };

function checkConvParams({ result, size, stride, padding, dilation, groups }: ConvParams): void {
  if (!(result in CONV_INPUT_ROLES))
    throw new FluxionError('conv', `result must be output, input or weight, got ${JSON.stringify(result)}`);
  for (const [name, pair, min] of [
    ['size', size, 1],
    ['stride', stride, 1],
    ['padding', padding, 0],
    ['dilation', dilation, 1],
  ] as const) {
    if (pair.length !== 2 || !pair.every((v) => Number.isInteger(v) && v >= min)) {
      throw new FluxionError('conv', `${name} must be two integers ≥ ${min}, got [${pair}]`);
    }
  }
  if (!Number.isInteger(groups) || groups < 1)
    throw new FluxionError('conv', `groups must be a positive integer, got ${groups}`);
}

function checkWindowParams(op: string, { kernel, stride, dilation }: WindowParams): void {
  for (const [name, pair] of [
    ['kernel', kernel],
    ['stride', stride],
    ['dilation', dilation],
  ] as const) {
    if (pair.length !== 2 || !pair.every((v) => Number.isInteger(v) && v >= 1)) {
      throw new FluxionError(op, `${name} must be two positive integers, got [${pair}]`);
    }
  }
}

/** `[OH, OW]` of the windows of an `[H, W]` image, or a clear error when the kernel does not fit. */
function windowsOf(
  op: string,
  [h, w]: readonly number[],
  { kernel, stride, dilation }: WindowParams,
): number[] {
  const oh = windowCount(h, kernel[0], stride[0], dilation[0]);
  const ow = windowCount(w, kernel[1], stride[1], dilation[1]);
  if (oh <= 0 || ow <= 0) {
    throw new FluxionError(
      op,
      `an image [${h}, ${w}] is smaller than the kernel [${kernel}] with dilation [${dilation}]`,
    );
  }
  return [oh, ow];
}
