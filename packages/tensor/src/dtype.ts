/**
 * Dtypes and their promotion rules.
 *
 * Fluxion has four dtypes: `float32`, `float64` (CPU backend only, for gradient checking), `int32`
 * and `bool`. Primitive kernels always see inputs of one dtype; the functional API promotes first:
 *
 * - `bool` < `int32` < float: mixing a bool or int32 tensor with a float tensor promotes to the float
 *   dtype, and `bool` with `int32` gives `int32`.
 * - `float32` with `float64` is an error: a silent change of precision would make gradient checks
 *   meaningless. Cast explicitly with `cast(x, 'float64')`.
 * - A JavaScript number is "weakly typed" (as in JAX): it takes the dtype of the tensor it meets,
 *   unless its kind is higher: a fraction (or ±∞, NaN, or an integer outside int32's range) with an
 *   int32/bool tensor computes in float32, an integer with a bool tensor in int32. So `add(x, 2)` keeps the dtype of x, while
 *   `add(int32Tensor, 0.5)` is float32 1.5, not a truncated 1.
 * - Float-only math (`exp`, `log`, `div`, …) on `int32`/`bool` computes in `float32`.
 */
import { FluxionError } from './errors.js';

/** The dtypes a tensor can have. */
export type DType = 'float32' | 'float64' | 'int32' | 'bool';

/** All dtypes, in promotion order. */
export const DTYPES: readonly DType[] = ['bool', 'int32', 'float32', 'float64'];

/** The typed array that holds each dtype's elements. `bool` is stored as one byte per element. */
export interface TypedArrayOf {
  float32: Float32Array;
  float64: Float64Array;
  int32: Int32Array;
  bool: Uint8Array;
}

/** Any typed array a tensor can be read into. */
export type TypedArray = TypedArrayOf[DType];

/**
 * Allocates a zero-filled typed array for `size` elements of `dtype`. A size the host cannot
 * allocate (past the engine's typed-array limit or its memory) is a FluxionError of `op` naming
 * the size and dtype, not a bare RangeError.
 *
 * @example
 * ```ts
 * allocArray('int32', 3); // Int32Array [0, 0, 0]
 * ```
 */
export function allocArray<D extends DType>(dtype: D, size: number, op = 'alloc'): TypedArrayOf[D] {
  try {
    switch (dtype) {
      case 'float32':
        return new Float32Array(size) as TypedArrayOf[D];
      case 'float64':
        return new Float64Array(size) as TypedArrayOf[D];
      case 'int32':
        return new Int32Array(size) as TypedArrayOf[D];
      case 'bool':
        return new Uint8Array(size) as TypedArrayOf[D];
    }
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    const gib = ((size * bytesPerElement(dtype)) / 2 ** 30).toFixed(1);
    throw new FluxionError(
      op,
      `a ${dtype} tensor of ${size} elements (${gib} GiB) cannot be allocated on the host: ${e.message}`,
    );
  }
  throw new FluxionError('dtype', `unknown dtype '${dtype}'`);
}

/** The values an int32 element can hold: [−2³¹, 2³¹ − 1]. */
export const INT32_RANGE: readonly [number, number] = [-(2 ** 31), 2 ** 31 - 1];

/**
 * `value` as an element of `dtype` is stored: bool as 0/1 (NaN is true: it is not 0), int32 truncated toward zero (as
 * PyTorch does), floats unchanged. An int32 element from NaN, ±∞ or a value outside
 * {@link INT32_RANGE} is a FluxionError naming `op` and the value (`what` says which value):
 * wrapping it modulo 2³², as an Int32Array would, is a silently wrong number.
 *
 * @example
 * ```ts
 * hostValue('full', 'int32', 2.7);  // 2
 * hostValue('full', 'int32', 1e10); // FluxionError: full: the value 10000000000 is outside int32's range …
 * ```
 */
export function hostValue(op: string, dtype: DType, value: number, what = 'the value'): number {
  // Any non-zero value is true, NaN included (NaN ≠ 0), as in PyTorch and NumPy.
  if (dtype === 'bool') return value !== 0 ? 1 : 0;
  if (dtype !== 'int32') return value;
  const truncated = Math.trunc(value);
  if (!(truncated >= INT32_RANGE[0] && truncated <= INT32_RANGE[1])) {
    const reason = Number.isNaN(value)
      ? 'int32 has no NaN'
      : `outside int32's range [${INT32_RANGE[0]}, ${INT32_RANGE[1]}]`;
    throw new FluxionError(op, `${what} ${value} cannot be stored as int32: ${reason}`);
  }
  return truncated;
}

/**
 * A new typed array of `size` elements of `dtype`, element `i` being `valueAt(i)` converted by
 * {@link hostValue} (so an int32 array refuses NaN, ±∞ and values out of range, naming `op` and
 * the element).
 *
 * @example
 * ```ts
 * hostArray('arange', 'int32', 3, (i) => 2 * i); // Int32Array [0, 2, 4]
 * ```
 */
export function hostArray(
  op: string,
  dtype: DType,
  size: number,
  valueAt: (i: number) => number,
): TypedArray {
  const out = allocArray(dtype, size, op);
  if (dtype === 'float32' || dtype === 'float64') for (let i = 0; i < size; i++) out[i] = valueAt(i);
  else for (let i = 0; i < size; i++) out[i] = hostValue(op, dtype, valueAt(i), `element ${i} =`);
  return out;
}

/** Bytes per element of `dtype` in host memory. */
export function bytesPerElement(dtype: DType): number {
  return dtype === 'float64' ? 8 : dtype === 'bool' ? 1 : 4;
}

/** Whether `dtype` is a floating-point dtype. */
export function isFloat(dtype: DType): boolean {
  return dtype === 'float32' || dtype === 'float64';
}

/** The dtype of a typed array, or undefined for arrays Fluxion does not store. */
export function dtypeOfArray(a: ArrayBufferView): DType | undefined {
  if (a instanceof Float32Array) return 'float32';
  if (a instanceof Float64Array) return 'float64';
  if (a instanceof Int32Array) return 'int32';
  if (a instanceof Uint8Array) return 'bool';
  return undefined;
}

/**
 * The dtype two operands promote to, or a FluxionError naming the op and both dtypes when the rule
 * forbids mixing them (float32 with float64).
 *
 * @example
 * ```ts
 * promoteTypes('add', 'int32', 'float32'); // 'float32'
 * ```
 */
export function promoteTypes(op: string, a: DType, b: DType): DType {
  if (a === b) return a;
  if (isFloat(a) && isFloat(b)) {
    throw new FluxionError(op, `cannot mix dtypes ${a} and ${b}; cast one explicitly`);
  }
  return DTYPES.indexOf(a) > DTYPES.indexOf(b) ? a : b;
}

/**
 * The dtype a tensor of `dtype` and a weakly typed JavaScript number or boolean compute in: the
 * tensor's, unless the value's kind (bool < int32 < float32) is higher. An integer outside
 * int32's range is of float kind: as an int32 constant it would not be representable.
 *
 * @example
 * ```ts
 * promoteWithScalar('float64', 2);   // 'float64'
 * promoteWithScalar('int32', 0.5);   // 'float32'
 * promoteWithScalar('bool', 3);      // 'int32'
 * promoteWithScalar('int32', 2 ** 31); // 'float32'
 * ```
 */
export function promoteWithScalar(dtype: DType, value: number | boolean): DType {
  const int32 = (v: number) => Number.isInteger(v) && v >= INT32_RANGE[0] && v <= INT32_RANGE[1];
  const kind: DType = typeof value === 'boolean' ? 'bool' : int32(value) ? 'int32' : 'float32';
  return DTYPES.indexOf(kind) > DTYPES.indexOf(dtype) ? kind : dtype;
}

/** Asserts that `dtype` is a known dtype; returns it. */
export function checkDType(op: string, dtype: string): DType {
  if (!(DTYPES as readonly string[]).includes(dtype)) {
    throw new FluxionError(op, `unknown dtype '${dtype}' (expected one of ${DTYPES.join(', ')})`);
  }
  return dtype as DType;
}
