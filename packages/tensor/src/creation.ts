/**
 * Creating tensors: from nested arrays or typed arrays, constants, ranges and identity matrices.
 * Every function takes `{ dtype, backend }` options (defaults: float32, the current backend).
 */
import { type BackendName, getBackend } from './backend.js';
import {
  allocArray,
  checkDType,
  type DType,
  dtypeOfArray,
  hostArray,
  hostValue,
  type TypedArray,
} from './dtype.js';
import { FluxionError, fmtShape } from './errors.js';
import { allocStorage } from './memory.js';
import { checkCount, checkShape, contiguousStrides, sizeOf } from './shape.js';
import { Tensor } from './tensor.js';

/** Where and as what a new tensor is created. */
export interface CreateOptions {
  /** Element type (default `float32`, or the typed array's own dtype). */
  dtype?: DType;
  /** Backend (default: the current one, see `setBackend`). */
  backend?: BackendName;
}

/** Nested arrays of numbers or booleans, as accepted by {@link tensor}. */
export type NestedInput = number | boolean | readonly NestedInput[];

/**
 * Uploads a host array as a new contiguous tensor of `shape`, converting its elements to `dtype`
 * (int32 refuses NaN, ±∞ and values out of range; see {@link hostValue}). Errors name `op`.
 *
 * @example
 * ```ts
 * fromArray(new Float32Array([1, 2, 3, 4]), [2, 2], 'int32'); // int32 [[1, 2], [3, 4]]
 * ```
 */
export function fromArray(
  data: TypedArray,
  shape: readonly number[],
  dtype: DType,
  backend?: BackendName,
  op = 'tensor',
): Tensor {
  const b = getBackend(backend);
  if (!b.dtypes.includes(dtype)) throw new FluxionError(op, `the ${b.name} backend has no dtype ${dtype}`);
  const size = sizeOf(shape);
  // bool is stored as 0/1: a Uint8Array of other bytes is normalised, not taken as is.
  const reuse = dtype !== 'bool' && data.constructor === allocArray(dtype, 0).constructor;
  const host = reuse ? data : hostArray(op, dtype, size, (i) => data[i]);
  const storage = allocStorage(op, b, dtype, shape);
  if (size > 0) b.upload(storage.buffer, host);
  return new Tensor(storage, [...shape], contiguousStrides(shape), 0, dtype);
}

function inferShape(data: NestedInput): number[] {
  const shape: number[] = [];
  let level: NestedInput = data;
  while (Array.isArray(level)) {
    shape.push(level.length);
    level = level[0];
  }
  return shape;
}

function flattenNested(data: NestedInput, shape: readonly number[], out: number[], depth = 0): void {
  if (depth === shape.length) {
    if (typeof data !== 'number' && typeof data !== 'boolean') {
      throw new FluxionError(
        'tensor',
        `ragged or non-numeric nested array (expected shape ${fmtShape(shape)})`,
      );
    }
    out.push(Number(data));
    return;
  }
  if (!Array.isArray(data) || data.length !== shape[depth]) {
    throw new FluxionError(
      'tensor',
      `ragged nested array: expected length ${shape[depth]} at depth ${depth}`,
    );
  }
  for (const v of data) flattenNested(v, shape, out, depth + 1);
}

/**
 * A tensor from nested arrays (shape inferred) or a typed array (1-D unless `shape` is given).
 * Numbers default to float32, booleans to bool, typed arrays to their own dtype.
 *
 * @example
 * ```ts
 * tensor([[1, 2], [3, 4]]);                       // float32 [2, 2]
 * tensor(new Int32Array([1, 2, 3, 4]), [2, 2]);   // int32 [2, 2]
 * tensor([1, 2], { dtype: 'float64', backend: 'cpu' });
 * ```
 */
export function tensor(
  data: NestedInput | TypedArray,
  shapeOrOptions?: readonly number[] | CreateOptions,
  options: CreateOptions = {},
): Tensor {
  const opts = Array.isArray(shapeOrOptions)
    ? options
    : ((shapeOrOptions as CreateOptions | undefined) ?? options);
  const givenShape = Array.isArray(shapeOrOptions) ? checkShape('tensor', shapeOrOptions) : undefined;
  if (ArrayBuffer.isView(data)) {
    const own = dtypeOfArray(data);
    if (!own) throw new FluxionError('tensor', `unsupported typed array ${data.constructor.name}`);
    const shape = givenShape ?? [data.length];
    if (sizeOf(shape) !== data.length) {
      throw new FluxionError(
        'tensor',
        `shape ${fmtShape(shape)} needs ${sizeOf(shape)} elements, got ${data.length}`,
      );
    }
    return fromArray(data, shape, checkDType('tensor', opts.dtype ?? own), opts.backend);
  }
  const shape = inferShape(data as NestedInput);
  const flat: number[] = [];
  flattenNested(data as NestedInput, shape, flat);
  let leaf: NestedInput = data as NestedInput;
  while (Array.isArray(leaf)) leaf = leaf[0];
  const dtype = checkDType('tensor', opts.dtype ?? (typeof leaf === 'boolean' ? 'bool' : 'float32'));
  if (givenShape && sizeOf(givenShape) !== flat.length) {
    throw new FluxionError(
      'tensor',
      `shape ${fmtShape(givenShape)} needs ${sizeOf(givenShape)} elements, got ${flat.length}`,
    );
  }
  const host = hostArray('tensor', dtype, flat.length, (i) => flat[i]);
  return fromArray(host, givenShape ?? shape, dtype, opts.backend);
}

/**
 * A tensor of `shape` filled with `value`.
 *
 * @example
 * ```ts
 * full([2, 3], 7, { dtype: 'int32' });
 * ```
 */
export function full(shape: readonly number[], value: number, options: CreateOptions = {}): Tensor {
  return filled('full', shape, value, options);
}

/** `full` whose errors name `op`. */
function filled(op: string, shape: readonly number[], value: number, options: CreateOptions): Tensor {
  const s = checkShape(op, shape);
  const dtype = checkDType(op, options.dtype ?? 'float32');
  const host = allocArray(dtype, sizeOf(s), op);
  host.fill(hostValue(op, dtype, value));
  return fromArray(host, s, dtype, options.backend, op);
}

/** A tensor of zeros. @example `zeros([2, 3])` */
export const zeros = (shape: readonly number[], options: CreateOptions = {}) =>
  filled('zeros', shape, 0, options);
/** A tensor of ones. @example `ones([2, 3])` */
export const ones = (shape: readonly number[], options: CreateOptions = {}) =>
  filled('ones', shape, 1, options);

function likeOptions(x: Tensor, options: CreateOptions): CreateOptions {
  return { dtype: options.dtype ?? x.dtype, backend: options.backend ?? x.backend.name };
}
/** `full` with the shape, dtype and backend of `x`. */
export const fullLike = (x: Tensor, value: number, options: CreateOptions = {}) =>
  full(x.shape, value, likeOptions(x, options));
/** Zeros shaped like `x`. */
export const zerosLike = (x: Tensor, options: CreateOptions = {}) =>
  full(x.shape, 0, likeOptions(x, options));
/** Ones shaped like `x`. */
export const onesLike = (x: Tensor, options: CreateOptions = {}) => full(x.shape, 1, likeOptions(x, options));

/**
 * Evenly spaced values in [start, stop) with `step`; `arange(n)` is 0..n−1. Start, stop and step
 * must be finite (step non-zero), and the count ⌈(stop − start) / step⌉ must fit a tensor.
 *
 * @example
 * ```ts
 * arange(5);          // [0, 1, 2, 3, 4]
 * arange(1, 2, 0.25); // [1, 1.25, 1.5, 1.75]
 * ```
 */
export function arange(start: number, stop?: number, step = 1, options: CreateOptions = {}): Tensor {
  const [lo, hi] = stop === undefined ? [0, start] : [start, stop];
  if (step === 0 || !Number.isFinite(step))
    throw new FluxionError('arange', `step must be finite and non-zero, got ${step}`);
  if (!Number.isFinite(lo) || !Number.isFinite(hi))
    throw new FluxionError('arange', `start and stop must be finite, got start ${lo}, stop ${hi}`);
  const n = Math.max(0, Math.ceil((hi - lo) / step));
  if (!Number.isSafeInteger(n))
    throw new FluxionError(
      'arange',
      `[${lo}, ${hi}) in steps of ${step} has ${n} values, too many for a tensor`,
    );
  const dtype = checkDType('arange', options.dtype ?? 'float32');
  const host = hostArray('arange', dtype, n, (i) => lo + i * step);
  return fromArray(host, [n], dtype, options.backend, 'arange');
}

/** `n` evenly spaced values from `start` to `stop` inclusive. @example `linspace(0, 1, 5)` */
export function linspace(start: number, stop: number, n: number, options: CreateOptions = {}): Tensor {
  checkCount('linspace', 'n', n);
  const dtype = checkDType('linspace', options.dtype ?? 'float32');
  const step = n > 1 ? (stop - start) / (n - 1) : 0;
  const host = hostArray('linspace', dtype, n, (i) => (i === n - 1 && n > 1 ? stop : start + i * step));
  return fromArray(host, [n], dtype, options.backend, 'linspace');
}

/** The `n × m` identity matrix (m defaults to n). @example `eye(3)` */
export function eye(n: number, m = n, options: CreateOptions = {}): Tensor {
  const shape = checkShape('eye', [n, m]);
  const dtype = checkDType('eye', options.dtype ?? 'float32');
  const host = allocArray(dtype, n * m, 'eye');
  for (let i = 0; i < Math.min(n, m); i++) host[i * m + i] = 1;
  return fromArray(host, shape, dtype, options.backend, 'eye');
}
