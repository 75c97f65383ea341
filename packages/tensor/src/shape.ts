/**
 * Shape arithmetic: sizes, contiguous strides, broadcasting and axis normalisation. Pure functions
 * on plain arrays, shared by every op and both backends.
 */
import { FluxionError, fmtShape } from './errors.js';

/** A tensor shape: one non-negative integer per axis. `[]` is a scalar. */
export type Shape = readonly number[];

/** Number of elements of a shape (1 for a scalar). */
export function sizeOf(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Row-major strides of a contiguous tensor of `shape`, in elements. */
export function contiguousStrides(shape: Shape): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i];
  }
  return strides;
}

/**
 * Whether a view with these strides is laid out row-major without gaps (size-1 axes ignored; an
 * empty view is trivially contiguous).
 */
export function isContiguous(shape: Shape, strides: readonly number[]): boolean {
  if (shape.includes(0)) return true;
  let expected = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    if (shape[i] === 1) continue;
    if (strides[i] !== expected) return false;
    expected *= shape[i];
  }
  return true;
}

/**
 * The one validation of sizes and shapes that every creation function, `reshape` and the random
 * functions share: each size is a non-negative integer (NaN, ±∞, fractions, negatives and
 * non-numbers are refused, naming the axis and the value), and the element count is exact (at
 * most 2⁵³ − 1). `inferred` lets entries be `-1` (reshape's inferred size). Returns a copy.
 *
 * @example
 * ```ts
 * checkShape('zeros', [2, 3]);         // [2, 3]
 * checkShape('zeros', [2, Number.NaN]); // FluxionError: zeros: invalid shape [2,NaN]: … (axis 1 is NaN)
 * ```
 */
export function checkShape(op: string, shape: Shape, { inferred = false } = {}): number[] {
  if (!Array.isArray(shape))
    throw new FluxionError(op, `shape must be an array of integers, got ${String(shape)}`);
  let size = 1;
  shape.forEach((d: unknown, axis) => {
    if (inferred && d === -1) return;
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
      throw new FluxionError(
        op,
        `invalid shape ${fmtShape(shape)}: sizes must be non-negative integers (axis ${axis} is ${typeof d === 'number' ? d : JSON.stringify(d)})`,
      );
    }
    size *= d;
  });
  if (!Number.isSafeInteger(size)) {
    throw new FluxionError(
      op,
      `shape ${fmtShape(shape)} has ${size} elements, more than a tensor can hold (2^53 - 1)`,
    );
  }
  return [...shape];
}

/**
 * Checks that a count (a number of elements or values) is a non-negative integer, naming `op` and
 * what the count is; returns it.
 *
 * @example
 * ```ts
 * checkCount('linspace', 'n', 5); // 5
 * ```
 */
export function checkCount(op: string, what: string, n: number): number {
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0)
    throw new FluxionError(op, `${what} must be a non-negative integer, got ${n}`);
  return n;
}

/**
 * The NumPy broadcast of several shapes: align from the right, each axis equal or 1.
 *
 * @example
 * ```ts
 * broadcastShapes('add', [3, 1], [4]); // [3, 4]
 * ```
 */
export function broadcastShapes(op: string, ...shapes: Shape[]): number[] {
  const rank = Math.max(0, ...shapes.map((s) => s.length));
  const out = new Array<number>(rank).fill(1);
  for (const s of shapes) {
    for (let i = 0; i < s.length; i++) {
      const j = rank - s.length + i;
      const d = s[i];
      if (out[j] === 1) out[j] = d;
      else if (d !== 1 && d !== out[j]) {
        throw new FluxionError(op, `shapes cannot be broadcast: ${shapes.map(fmtShape).join(' and ')}`);
      }
    }
  }
  return out;
}

/** Normalises a possibly negative axis against `rank`, or throws naming the op. */
export function normalizeAxis(op: string, axis: number, rank: number): number {
  if (!Number.isInteger(axis) || axis < -rank || axis >= rank) {
    throw new FluxionError(op, `axis ${axis} is out of range for a tensor of rank ${rank}`);
  }
  return axis < 0 ? axis + rank : axis;
}

/**
 * Normalises an axis list (undefined means all axes): negatives resolved, sorted, duplicates an
 * error.
 */
export function normalizeAxes(
  op: string,
  axes: number | readonly number[] | undefined,
  rank: number,
): number[] {
  if (axes === undefined) return Array.from({ length: rank }, (_, i) => i);
  const list = (typeof axes === 'number' ? [axes] : [...axes]).map((a) => normalizeAxis(op, a, rank));
  const sorted = [...list].sort((a, b) => a - b);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i] === sorted[i - 1])
      throw new FluxionError(op, `axis ${sorted[i]} appears twice in [${list}]`);
  }
  return sorted;
}

/** Shape after reducing `axes` (sorted, normalised) with or without keeping them as size 1. */
export function reducedShape(shape: Shape, axes: readonly number[], keepDims: boolean): number[] {
  const out: number[] = [];
  shape.forEach((d, i) => {
    if (!axes.includes(i)) out.push(d);
    else if (keepDims) out.push(1);
  });
  return out;
}

/** Whether two shapes are equal. */
export function shapesEqual(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/**
 * Strides that let a view of (`shape`, `strides`) be read as `target` without copying, or null
 * when no such strides exist (the reshape must copy). Walks both shapes from the last axis,
 * matching runs of input axes that are contiguous with each other ("chunks") against runs of
 * output axes with the same number of elements.
 */
export function reshapeStrides(shape: Shape, strides: readonly number[], target: Shape): number[] | null {
  if (sizeOf(shape) === 0 || shape.length === 0) return contiguousStrides(target);
  const out = new Array<number>(target.length);
  let viewAxis = target.length - 1;
  let chunkStride = strides[shape.length - 1];
  let chunkSize = 1;
  let viewSize = 1;
  for (let axis = shape.length - 1; axis >= 0; axis--) {
    chunkSize *= shape[axis];
    const chunkEnds = axis === 0 || (shape[axis - 1] !== 1 && strides[axis - 1] !== chunkSize * chunkStride);
    if (!chunkEnds) continue;
    while (viewAxis >= 0 && (viewSize < chunkSize || target[viewAxis] === 1)) {
      out[viewAxis] = viewSize * chunkStride;
      viewSize *= target[viewAxis];
      viewAxis--;
    }
    if (viewSize !== chunkSize) return null;
    if (axis > 0) {
      chunkStride = strides[axis - 1];
      chunkSize = 1;
      viewSize = 1;
    }
  }
  return viewAxis === -1 ? out : null;
}
