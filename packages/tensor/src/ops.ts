/**
 * The functional API of the primitives: dtype promotion, broadcasting and scalar lifting happen
 * here, then {@link runKernel} runs the primitive. Temporaries (casts, broadcast views, scalar
 * tensors) live in a scope and are freed before the function returns.
 */
import { getBackend } from './backend.js';
import { full } from './creation.js';
import { runKernel } from './dispatch.js';
import { type DType, isFloat, promoteTypes, promoteWithScalar } from './dtype.js';
import { FluxionError, fmtShape } from './errors.js';
import type { IndexContext } from './index-range.js';
import { keep, registerConstant, scope, unregisterConstant } from './memory.js';
import {
  type ArgReduceOp,
  type BinaryOp,
  FLOAT_BINARY_OPS,
  INT_UNARY_OPS,
  LOGICAL_OPS,
  type ReduceOp,
  type UnaryOp,
} from './registry.js';
import { broadcastShapes, normalizeAxes, normalizeAxis, reshapeStrides, sizeOf } from './shape.js';
import { Tensor } from './tensor.js';
import { broadcastTo, reshape, squeeze, transpose, unsqueeze } from './views.js';

/** A tensor or a JavaScript number (which takes the dtype of the tensor it meets). */
export type TensorOrScalar = Tensor | number;

function checkTensor(op: string, x: unknown): Tensor {
  if (!(x instanceof Tensor)) throw new FluxionError(op, `expected a Tensor, got ${typeof x}`);
  x.assertLive(op);
  return x;
}

/**
 * Converts to `dtype` (`bool` is `x ≠ 0`; float→int32 truncates toward zero). Returns the input
 * itself when it already has that dtype.
 */
export function cast(x: Tensor, dtype: DType): Tensor {
  checkTensor('cast', x);
  return x.dtype === dtype ? x : runKernel('cast', [x], { dtype });
}

/** Applies elementwise primitive `op`; int32/bool inputs of float-only math compute in float32. */
export function unary(op: UnaryOp, x: Tensor): Tensor {
  checkTensor(op, x);
  return scope(() => {
    let input = x;
    if (op === 'logicalNot') input = cast(x, 'bool');
    else if (!isFloat(x.dtype) && !(x.dtype === 'int32' && INT_UNARY_OPS.includes(op)))
      input = cast(x, 'float32');
    return runKernel(op, [input], {});
  });
}

function lift(op: string, v: TensorOrScalar, dtype: DType, like: Tensor): Tensor {
  if (v instanceof Tensor) return cast(checkTensor(op, v), dtype);
  if (typeof v !== 'number' && typeof v !== 'boolean')
    throw new FluxionError(op, `expected a Tensor or a number, got ${typeof v}`);
  const backend = like.backend.name;
  if (backend === 'cpu') return full([], Number(v), { dtype, backend });
  return scalarConstant(Number(v), dtype, backend);
}

/** Most scalar constants kept per process; the least recently used one goes first. */
const MAX_CONSTANTS = 512;
const constants = new Map<string, Tensor>();

/**
 * The 0-d tensor of a JavaScript number on a device backend, made once and reused (kept out of
 * every scope; never handed to the caller). On WebGPU a fresh constant would cost an upload per
 * use (`x * 0.5` in a training step), and its buffer, swapped for an idle one when the upload has
 * to wait, would shuffle the buffer pool so that cached bind groups stop matching.
 */
function scalarConstant(value: number, dtype: DType, backend: Tensor['backend']['name']): Tensor {
  const key = `${backend}|${dtype}|${Object.is(value, -0) ? '-0' : value}`;
  const device = getBackend(backend);
  let t = constants.get(key);
  if (t) {
    constants.delete(key); // re-inserted below: most recently used last
    if (t.isDisposed || t.backend !== device) {
      // The backend was replaced (a new device after initWebGPU again): drop the stale constant.
      unregisterConstant(t);
      t.dispose();
      t = undefined;
    }
  }
  if (!t) {
    const before = device.memory();
    t = keep(full([], value, { dtype, backend }));
    const after = device.memory();
    registerConstant(t, backend, {
      buffers: after.buffers - before.buffers,
      bytes: after.bytes - before.bytes,
    });
    if (constants.size >= MAX_CONSTANTS) {
      const [oldest, old] = constants.entries().next().value as [string, Tensor];
      constants.delete(oldest);
      unregisterConstant(old);
      old.dispose();
    }
  }
  constants.set(key, t);
  return t;
}

/** The dtype a binary op computes in, after the promotion rules of `dtype.ts`. */
function binaryDtype(op: BinaryOp, a: TensorOrScalar, b: TensorOrScalar, ref: Tensor): DType {
  if (LOGICAL_OPS.includes(op)) return 'bool';
  const dtype =
    a instanceof Tensor && b instanceof Tensor
      ? promoteTypes(op, a.dtype, b.dtype)
      : promoteWithScalar(ref.dtype, (a instanceof Tensor ? b : a) as number);
  if (FLOAT_BINARY_OPS.includes(op) && !isFloat(dtype)) return 'float32';
  if (dtype === 'bool' && ['add', 'sub', 'mul', 'maximum', 'minimum'].includes(op)) return 'int32';
  return dtype;
}

/** Applies elementwise binary primitive `op` with broadcasting and promotion. */
export function binary(op: BinaryOp, a: TensorOrScalar, b: TensorOrScalar): Tensor {
  const ref = a instanceof Tensor ? a : b instanceof Tensor ? b : null;
  if (!ref) throw new FluxionError(op, 'needs at least one Tensor operand');
  return scope(() => {
    const dtype = binaryDtype(op, a, b, ref);
    const ta = lift(op, a, dtype, ref);
    const tb = lift(op, b, dtype, ref);
    const shape = broadcastShapes(op, ta.shape, tb.shape);
    return runKernel(op, [broadcastTo(ta, shape), broadcastTo(tb, shape)], {});
  });
}

/** `neg(x) = −x`. */
export const neg = (x: Tensor) => unary('neg', x);
/** `abs(x) = |x|`. */
export const abs = (x: Tensor) => unary('abs', x);
/** `sign(x)` ∈ {−1, 0, 1} (NaN stays NaN). */
export const sign = (x: Tensor) => unary('sign', x);
/** `exp(x) = eˣ`. */
export const exp = (x: Tensor) => unary('exp', x);
/** `expm1(x) = eˣ − 1`, accurate near 0. */
export const expm1 = (x: Tensor) => unary('expm1', x);
/** Natural logarithm. */
export const log = (x: Tensor) => unary('log', x);
/** `log1p(x) = ln(1 + x)`, accurate near 0. */
export const log1p = (x: Tensor) => unary('log1p', x);
/** Square root. */
export const sqrt = (x: Tensor) => unary('sqrt', x);
/** `rsqrt(x) = 1/√x`. */
export const rsqrt = (x: Tensor) => unary('rsqrt', x);
/** `reciprocal(x) = 1/x`. */
export const reciprocal = (x: Tensor) => unary('reciprocal', x);
/** Sine. */
export const sin = (x: Tensor) => unary('sin', x);
/** Cosine. */
export const cos = (x: Tensor) => unary('cos', x);
/** Hyperbolic tangent. */
export const tanh = (x: Tensor) => unary('tanh', x);
/** Logistic sigmoid `1/(1 + e⁻ˣ)`, computed without overflow for any finite x. */
export const sigmoid = (x: Tensor) => unary('sigmoid', x);
/** `relu(x) = max(x, 0)` (NaN stays NaN). */
export const relu = (x: Tensor) => unary('relu', x);
/**
 * `softplus(x) = log(1 + eˣ)`, computed as `max(x, 0) + log1p(e^−|x|)`: exact and finite for any
 * x, one kernel (its gradient is `sigmoid(x)`, ½ at 0).
 *
 * @example
 * ```ts
 * softplus(tensor([-100, 0, 100])); // [3.7e-44 → 0 in float32, 0.693…, 100]
 * ```
 */
export const softplus = (x: Tensor) => unary('softplus', x);
/** The error function. */
export const erf = (x: Tensor) => unary('erf', x);
/** Rounds toward −∞. */
export const floor = (x: Tensor) => unary('floor', x);
/** Rounds toward +∞. */
export const ceil = (x: Tensor) => unary('ceil', x);
/** Rounds half to even (as PyTorch and WGSL do). */
export const round = (x: Tensor) => unary('round', x);
/** Logical not (inputs are cast to bool: non-zero is true). */
export const logicalNot = (x: Tensor) => unary('logicalNot', x);

/** `a + b` (broadcast). @example `add(tensor([1, 2]), 1)` */
export const add = (a: TensorOrScalar, b: TensorOrScalar) => binary('add', a, b);
/** `a − b` (broadcast). */
export const sub = (a: TensorOrScalar, b: TensorOrScalar) => binary('sub', a, b);
/** `a · b` (broadcast). */
export const mul = (a: TensorOrScalar, b: TensorOrScalar) => binary('mul', a, b);
/** `a / b` (broadcast, true division: integers divide in float32). */
export const div = (a: TensorOrScalar, b: TensorOrScalar) => binary('div', a, b);
/** `a ** b` (broadcast, float). */
export const pow = (a: TensorOrScalar, b: TensorOrScalar) => binary('pow', a, b);
/** Elementwise maximum (NaN propagates). */
export const maximum = (a: TensorOrScalar, b: TensorOrScalar) => binary('maximum', a, b);
/** Elementwise minimum (NaN propagates). */
export const minimum = (a: TensorOrScalar, b: TensorOrScalar) => binary('minimum', a, b);
/** `a == b` as bool. */
export const equal = (a: TensorOrScalar, b: TensorOrScalar) => binary('equal', a, b);
/** `a != b` as bool. */
export const notEqual = (a: TensorOrScalar, b: TensorOrScalar) => binary('notEqual', a, b);
/** `a < b` as bool. */
export const less = (a: TensorOrScalar, b: TensorOrScalar) => binary('less', a, b);
/** `a <= b` as bool. */
export const lessEqual = (a: TensorOrScalar, b: TensorOrScalar) => binary('lessEqual', a, b);
/** `a > b` as bool. */
export const greater = (a: TensorOrScalar, b: TensorOrScalar) => binary('greater', a, b);
/** `a >= b` as bool. */
export const greaterEqual = (a: TensorOrScalar, b: TensorOrScalar) => binary('greaterEqual', a, b);
/** Logical and (inputs cast to bool). */
export const logicalAnd = (a: TensorOrScalar, b: TensorOrScalar) => binary('logicalAnd', a, b);
/** Logical or (inputs cast to bool). */
export const logicalOr = (a: TensorOrScalar, b: TensorOrScalar) => binary('logicalOr', a, b);
/** Logical exclusive or (inputs cast to bool). */
export const logicalXor = (a: TensorOrScalar, b: TensorOrScalar) => binary('logicalXor', a, b);

/**
 * `cond ? a : b` elementwise, all three broadcast together.
 *
 * @example
 * ```ts
 * where(greater(x, 0), x, 0); // relu
 * ```
 */
export function where(cond: Tensor, a: TensorOrScalar, b: TensorOrScalar): Tensor {
  checkTensor('where', cond);
  return scope(() => {
    const ref = a instanceof Tensor ? a : b instanceof Tensor ? b : cond;
    const dtype =
      a instanceof Tensor && b instanceof Tensor
        ? promoteTypes('where', a.dtype, b.dtype)
        : ref === cond
          ? 'float32'
          : promoteWithScalar(ref.dtype, (a instanceof Tensor ? b : a) as number);
    const c = cast(cond, 'bool');
    const ta = lift('where', a, dtype, cond);
    const tb = lift('where', b, dtype, cond);
    const shape = broadcastShapes('where', c.shape, ta.shape, tb.shape);
    return runKernel('where', [broadcastTo(c, shape), broadcastTo(ta, shape), broadcastTo(tb, shape)], {});
  });
}

/**
 * `leakyRelu(x) = x` for x > 0, else `slope · x` (one kernel; NaN stays NaN). Integer inputs
 * compute in float32.
 *
 * @example
 * ```ts
 * leakyRelu(tensor([-2, 0, 3]), 0.2); // [-0.4, 0, 3]
 * ```
 */
export function leakyRelu(x: Tensor, slope = 0.01): Tensor {
  checkTensor('leakyRelu', x);
  return scope(() => runKernel('leakyRelu', [isFloat(x.dtype) ? x : cast(x, 'float32')], { slope }));
}

/**
 * The derivative of {@link leakyRelu} applied to a gradient: `g` where x > 0, else `slope · g`
 * (x and g broadcast). At x = 0 the slope applies, as in PyTorch. With slope 0 it is relu's
 * derivative: 0 where x ≤ 0, even where g is infinite or NaN.
 *
 * @example
 * ```ts
 * leakyReluGrad(tensor([-2, 0, 3]), tensor([1, 1, 1]), 0.2); // [0.2, 0.2, 1]
 * ```
 */
export function leakyReluGrad(x: Tensor, g: Tensor, slope = 0.01): Tensor {
  checkTensor('leakyReluGrad', x);
  checkTensor('leakyReluGrad', g);
  return scope(() => {
    const dtype = promoteTypes('leakyReluGrad', x.dtype, g.dtype);
    const float = isFloat(dtype) ? dtype : 'float32';
    const shape = broadcastShapes('leakyReluGrad', x.shape, g.shape);
    return runKernel(
      'leakyReluGrad',
      [broadcastTo(cast(x, float), shape), broadcastTo(cast(g, float), shape)],
      {
        slope,
      },
    );
  });
}

/** Applies a value reduction; `bool` sums and products count in int32. */
export function reduce(op: ReduceOp, x: Tensor, axes?: number | readonly number[], keepDims = false): Tensor {
  checkTensor(op, x);
  const norm = normalizeAxes(op, axes, x.rank);
  return scope(() => {
    const input = x.dtype === 'bool' && (op === 'sum' || op === 'prod') ? cast(x, 'int32') : x;
    return runKernel(op, [input], { axes: norm, keepDims });
  });
}

/** Sum over `axes` (all axes by default). @example `sum(ones([2, 3]), 1) // [3, 3]` */
export const sum = (x: Tensor, axes?: number | readonly number[], keepDims = false) =>
  reduce('sum', x, axes, keepDims);
/** Product over `axes` (all axes by default). */
export const prod = (x: Tensor, axes?: number | readonly number[], keepDims = false) =>
  reduce('prod', x, axes, keepDims);
/** Maximum over `axes` (all by default); NaN propagates. */
export const max = (x: Tensor, axes?: number | readonly number[], keepDims = false) =>
  reduce('max', x, axes, keepDims);
/** Minimum over `axes` (all by default); NaN propagates. */
export const min = (x: Tensor, axes?: number | readonly number[], keepDims = false) =>
  reduce('min', x, axes, keepDims);

function argReduce(op: ArgReduceOp, x: Tensor, axis: number | undefined, keepDims: boolean): Tensor {
  checkTensor(op, x);
  const axes = axis === undefined ? normalizeAxes(op, undefined, x.rank) : [normalizeAxis(op, axis, x.rank)];
  return runKernel(op, [x], { axes, keepDims });
}

/**
 * Index of the maximum along `axis` (int32; the first one on ties; of the flattened tensor when
 * `axis` is omitted). NaN counts as the maximum, as in PyTorch.
 */
export const argmax = (x: Tensor, axis?: number, keepDims = false) => argReduce('argmax', x, axis, keepDims);
/** Index of the minimum along `axis` (see {@link argmax}). */
export const argmin = (x: Tensor, axis?: number, keepDims = false) => argReduce('argmin', x, axis, keepDims);

/**
 * The product kernel behind `matmul` and `linear`, after their checks: dtypes promoted (bool
 * counted as int32), 1-D operands promoted to a row (left) or column (right) and the added axis
 * removed after, batch axes broadcast; `bias` (already `[N]`) is added by the kernel.
 */
function product(op: string, a: Tensor, b: Tensor, bias?: Tensor): Tensor {
  return scope(() => {
    const promoted = [b, ...(bias ? [bias] : [])].reduce((d, t) => promoteTypes(op, d, t.dtype), a.dtype);
    const dtype = promoted === 'bool' ? 'int32' : promoted;
    const a2 = a.rank === 1 ? unsqueeze(cast(a, dtype), 0) : cast(a, dtype);
    const b2 = b.rank === 1 ? unsqueeze(cast(b, dtype), -1) : cast(b, dtype);
    // A batch of rows times one matrix (a Linear layer on [batch, time, in]) is one 2-D product
    // over every row: broadcasting the matrix instead would make its gradient a product per batch
    // entry and a sum over them (64 × the work and memory for a [64, 16, 64] input).
    const rows = sizeOf(a2.shape.slice(0, -1));
    const k = a2.shape[a2.rank - 1];
    if (a2.rank > 2 && b2.rank === 2 && reshapeStrides(a2.shape, a2.strides, [rows, k])) {
      const flat = runKernel(
        'matmul',
        [reshape(a2, [rows, k]), b2, ...(bias ? [cast(bias, dtype)] : [])],
        {},
      );
      const out = reshape(flat, [...a2.shape.slice(0, -1), b2.shape[1]]);
      return b.rank === 1 ? squeeze(out, [out.rank - 1]) : out;
    }
    const batch = broadcastShapes(op, a2.shape.slice(0, -2), b2.shape.slice(0, -2));
    const out = runKernel(
      'matmul',
      [
        broadcastTo(a2, [...batch, ...a2.shape.slice(-2)]),
        broadcastTo(b2, [...batch, ...b2.shape.slice(-2)]),
        ...(bias ? [cast(bias, dtype)] : []),
      ],
      {},
    );
    const drop = [...(a.rank === 1 ? [out.rank - 2] : []), ...(b.rank === 1 ? [out.rank - 1] : [])];
    return drop.length ? squeeze(out, drop) : out;
  });
}

/**
 * Matrix product with NumPy/PyTorch semantics: 1-D operands are promoted to a row (left) or column
 * (right) and the added axis removed after; batch axes broadcast.
 *
 * @example
 * ```ts
 * matmul(randn([8, 2, 3]), randn([3, 4])).shape; // [8, 2, 4]
 * ```
 */
export function matmul(a: Tensor, b: Tensor): Tensor {
  checkTensor('matmul', a);
  checkTensor('matmul', b);
  if (a.rank === 0 || b.rank === 0) {
    throw new FluxionError(
      'matmul',
      `both operands need at least one axis, got ${fmtShape(a.shape)} @ ${fmtShape(b.shape)}`,
    );
  }
  const k1 = a.shape[a.rank - 1];
  const k2 = b.shape[b.rank === 1 ? 0 : b.rank - 2];
  if (k1 !== k2)
    throw new FluxionError('matmul', `inner dimensions differ: ${fmtShape(a.shape)} @ ${fmtShape(b.shape)}`);
  return product('matmul', a, b);
}

/**
 * The affine map of a Linear layer, PyTorch's `F.linear`: `x · weightᵀ + bias` for x
 * `[..., in]`, weight `[out, in]` and an optional bias `[out]`, giving `[..., out]`. The weight is
 * read in place through a transposed view and the bias is added by the product's kernel as it
 * stores each value: one kernel, where `add(matmul(x, transpose(weight)), bias)` takes two and an
 * extra pass over the output.
 *
 * @example
 * ```ts
 * const y = linear(randn([64, 784]), randn([256, 784]), zeros([256])); // [64, 256]
 * ```
 */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor): Tensor {
  checkTensor('linear', x);
  checkTensor('linear', weight);
  if (bias !== undefined) checkTensor('linear', bias);
  const describe = () =>
    [x, weight, ...(bias ? [bias] : [])].map((t) => `${fmtShape(t.shape)} ${t.dtype}`).join(', ');
  if (x.rank < 1 || weight.rank !== 2 || x.shape[x.rank - 1] !== weight.shape[1]) {
    throw new FluxionError('linear', `expected x [..., in] and weight [out, in], got ${describe()}`);
  }
  if (bias && (bias.rank !== 1 || bias.shape[0] !== weight.shape[0])) {
    throw new FluxionError('linear', `expected bias [${weight.shape[0]}], got ${describe()}`);
  }
  return product('linear', x, transpose(weight), bias);
}

/** Joins tensors along an existing axis (dtypes promoted). */
export function concat(tensors: readonly Tensor[], axis = 0): Tensor {
  if (tensors.length === 0) throw new FluxionError('concat', 'needs at least one tensor');
  for (const t of tensors) checkTensor('concat', t);
  const ax = normalizeAxis('concat', axis, tensors[0].rank);
  return scope(() => {
    const dtype = tensors.map((t) => t.dtype).reduce((p, d) => promoteTypes('concat', p, d));
    return runKernel(
      'concat',
      tensors.map((t) => cast(t, dtype)),
      { axis: ax },
    );
  });
}

/**
 * Selects entries along `axis` by an int32 index tensor of any shape (NumPy's `take`; PyTorch's
 * `index_select` for 1-D indices).
 *
 * Indices must lie in [0, size), as in PyTorch: any other value raises a FluxionError naming the
 * op, the value and the valid range. The CPU backend throws from `take` itself; the WebGPU backend,
 * which never reads back inside an op, flags the value on the device and throws at its next read
 * or sync (`data()`, `item()`, `sync()`…), and meanwhile reads the bad index as 0. `context`
 * names the op in that message for callers built on take (`Embedding`, `oneHot`, the losses).
 *
 * @example
 * ```ts
 * take(embeddings, tokenIds, 0); // [...tokenIds.shape, dim]
 * take(tensor([1, 2, 3]), tensor([3], { dtype: 'int32' })); // take: index 3 is out of range for axis 0 of size 3; valid: [0, 3)
 * ```
 */
export function take(x: Tensor, indices: Tensor, axis = 0, context?: IndexContext): Tensor {
  checkTensor('take', x);
  checkTensor('take', indices);
  const params = { axis: normalizeAxis('take', axis, x.rank), ...(context ? { context } : {}) };
  return runKernel('take', [x, indices], params);
}

/**
 * The adjoint of {@link take}: sums the blocks of `src` into `size` slots along `axis`, slot
 * `indices[i]` receiving block `i`. Duplicated indices accumulate.
 */
export function scatterAdd(src: Tensor, indices: Tensor, axis: number, size: number): Tensor {
  checkTensor('scatterAdd', src);
  checkTensor('scatterAdd', indices);
  if (!Number.isInteger(size) || size < 0)
    throw new FluxionError('scatterAdd', `size must be a non-negative integer, got ${size}`);
  if (indices.rank > src.rank) {
    throw new FluxionError(
      'scatterAdd',
      `indices ${fmtShape(indices.shape)} have more axes than the source ${fmtShape(src.shape)}`,
    );
  }
  // `axis` is an axis of the output (as in the `take` this inverts), whose rank is src − idx + 1.
  const outRank = src.rank - indices.rank + 1;
  return runKernel('scatterAdd', [src, indices], { axis: normalizeAxis('scatterAdd', axis, outRank), size });
}

/**
 * Pads each axis with `value`: `widths[i] = [low, high]` or `[low, high, interior]` (interior puts
 * that many values between neighbours, as XLA's pad does; it is the adjoint of a strided slice).
 * Missing trailing axes are not padded.
 *
 * @example
 * ```ts
 * pad(ones([2, 2]), [[1, 1], [0, 2]]).shape; // [4, 4]
 * ```
 */
export function pad(x: Tensor, widths: readonly (readonly number[])[], value = 0): Tensor {
  checkTensor('pad', x);
  if (widths.length > x.rank)
    throw new FluxionError('pad', `${widths.length} widths for a tensor of shape ${fmtShape(x.shape)}`);
  const full3 = x.shape.map((_, i): [number, number, number] => {
    const [lo = 0, hi = 0, interior = 0] = widths[i] ?? [];
    return [lo, hi, interior];
  });
  return runKernel('pad', [x], { widths: full3, value });
}

/** The input if it is contiguous, else a contiguous copy. */
export function contiguous(x: Tensor): Tensor {
  checkTensor('contiguous', x);
  return x.isContiguous ? x : runKernel('copy', [x], {});
}

/** A contiguous copy (always a new tensor). */
export function clone(x: Tensor): Tensor {
  checkTensor('clone', x);
  return runKernel('copy', [x], {});
}
