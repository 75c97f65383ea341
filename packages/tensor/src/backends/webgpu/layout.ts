/**
 * Host-side layout arithmetic for kernels: merging adjacent axes that every operand walks with
 * the same step, so most views reach a shader as rank 0 or 1 (one multiply-add per element instead
 * of a division per axis), and packing shapes and strides into parameter words.
 */
import { FluxionError, fmtShape } from '../../errors.js';
import { f32ToBits, MAX_RANK } from './wgsl.js';

/** A shape with one stride list per operand, after merging axes. */
export interface MergedLayout {
  shape: number[];
  strides: number[][];
}

/**
 * Drops size-1 axes and merges axis d into d+1 whenever, for every operand,
 * `strides[d] = strides[d+1] · shape[d+1]` (the two axes form one run of memory).
 *
 * @example
 * ```ts
 * mergeAxes([2, 3, 4], [[12, 4, 1]]); // { shape: [24], strides: [[1]] }
 * ```
 */
export function mergeAxes(shape: readonly number[], strides: readonly (readonly number[])[]): MergedLayout {
  const outShape: number[] = [];
  const outStrides: number[][] = strides.map(() => []);
  for (let d = 0; d < shape.length; d++) {
    if (shape[d] === 1) continue;
    const last = outShape.length - 1;
    const mergeable = last >= 0 && strides.every((s, k) => outStrides[k][last] === s[d] * shape[d]);
    if (mergeable) {
      outShape[last] *= shape[d];
      strides.forEach((s, k) => {
        outStrides[k][last] = s[d];
      });
    } else {
      outShape.push(shape[d]);
      strides.forEach((s, k) => {
        outStrides[k].push(s[d]);
      });
    }
  }
  return { shape: outShape, strides: outStrides };
}

/** Throws a clear error when a merged layout still has more axes than kernels address. */
export function checkRank(op: string, merged: MergedLayout, shape: readonly number[]): void {
  if (merged.shape.length > MAX_RANK) {
    throw new FluxionError(
      op,
      `the webgpu backend supports views of at most ${MAX_RANK} non-mergeable axes, got ${fmtShape(shape)}; call contiguous() first`,
    );
  }
}

/** Writes `values` into `words` at `base`, padding with `fill` up to MAX_RANK entries. */
export function putList(words: number[], base: number, values: readonly number[], fill = 0): void {
  for (let i = 0; i < MAX_RANK; i++) words[base + i] = i < values.length ? values[i] : fill;
}

/** The u32 word holding `value` as a kernel of `type` reads it. */
export function scalarBits(value: number, type: 'f32' | 'i32' | 'u32'): number {
  if (type === 'f32') return f32ToBits(value);
  if (type === 'u32') return value ? 1 : 0;
  return (value | 0) >>> 0;
}
