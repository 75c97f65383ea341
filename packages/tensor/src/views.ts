/**
 * View ops: reshape, permute/transpose, expand/broadcastTo, slice, squeeze, unsqueeze, flatten.
 * Each returns a tensor sharing the input's storage (only `reshape` of a non-contiguous tensor
 * copies first). The four primitives are `reshape`, `permute`, `expand` and `slice`; the rest are
 * built from them.
 */
import { runKernel, runView } from './dispatch.js';
import { FluxionError, fmtShape } from './errors.js';
import { scope } from './memory.js';
import type { WindowParams } from './registry.js';
import { checkShape, normalizeAxes, normalizeAxis, reshapeStrides, shapesEqual, sizeOf } from './shape.js';
import type { Tensor } from './tensor.js';

/**
 * Reshapes to `shape`; one entry may be `-1` (inferred). A view whenever the strides allow it
 * (always for contiguous input), else a contiguous copy first (like PyTorch's `reshape`).
 *
 * @example
 * ```ts
 * arange(6).reshape([2, -1]).shape; // [2, 3]
 * ```
 */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  checkShape('reshape', shape, { inferred: true });
  const known = shape.filter((d) => d !== -1);
  const inferred = shape.length - known.length;
  const rest = sizeOf(known);
  if (inferred > 1 || (inferred === 1 && (rest === 0 || x.size % rest !== 0))) {
    throw new FluxionError(
      'reshape',
      `cannot reshape ${fmtShape(x.shape)} (${x.size} elements) to ${fmtShape(shape)}`,
    );
  }
  const target = shape.map((d) => (d === -1 ? x.size / rest : d));
  if (shapesEqual(target, x.shape)) return x;
  if (reshapeStrides(x.shape, x.strides, target)) return runView('reshape', x, { shape: target });
  return scope(() => runView('reshape', runKernel('copy', [x], {}), { shape: target }));
}

/** Reorders the axes: output axis `i` is input axis `axes[i]`. */
export function permute(x: Tensor, axes: readonly number[]): Tensor {
  const norm = axes.map((a) => normalizeAxis('permute', a, x.rank));
  return runView('permute', x, { axes: norm });
}

/** Swaps axes `a` and `b`. */
export function transpose(x: Tensor, a = -2, b = -1): Tensor {
  const axes = [...Array(x.rank).keys()];
  const i = normalizeAxis('transpose', a, x.rank);
  const j = normalizeAxis('transpose', b, x.rank);
  [axes[i], axes[j]] = [axes[j], axes[i]];
  return runView('permute', x, { axes });
}

/**
 * Broadcasts to `shape` without copying: size-1 axes repeat (stride 0), new leading axes are
 * added, `-1` keeps the input's size.
 */
export function expand(x: Tensor, shape: readonly number[]): Tensor {
  if (shape.length < x.rank)
    throw new FluxionError('expand', `cannot expand ${fmtShape(x.shape)} to ${fmtShape(shape)}`);
  const lead = shape.length - x.rank;
  const target = shape.map((d, i) => (d === -1 && i >= lead ? x.shape[i - lead] : d));
  return broadcastTo(x, target);
}

/** Broadcasts to exactly `shape` (NumPy rules); the input itself when already of that shape. */
export function broadcastTo(x: Tensor, shape: readonly number[]): Tensor {
  if (shapesEqual(x.shape, shape)) return x;
  if (shape.length < x.rank) {
    throw new FluxionError('broadcastTo', `cannot broadcast ${fmtShape(x.shape)} to ${fmtShape(shape)}`);
  }
  return scope(() => {
    const lead = shape.length - x.rank;
    const ranked = lead > 0 ? reshape(x, [...Array(lead).fill(1), ...x.shape]) : x;
    return runView('expand', ranked, { shape: [...shape] });
  });
}

/**
 * One axis of a {@link slice}: a number picks one index and drops the axis; `[start, stop, step]`
 * (each optional, negatives count from the end, Python clamping) keeps it; `null` keeps it whole.
 */
export type SliceSpec =
  | number
  | null
  | undefined
  | [(number | null)?, (number | null)?, (number | null)?]
  | readonly (number | null | undefined)[];

/**
 * Python-style slicing, one spec per leading axis (missing trailing specs keep their axes).
 *
 * @example
 * ```ts
 * const x = arange(10).reshape([2, 5]);
 * slice(x, 1, [null, null, 2]); // row 1, every other column: [5, 7, 9]
 * slice(x, null, [-2]);         // the last two columns of each row
 * ```
 */
export function slice(x: Tensor, ...specs: SliceSpec[]): Tensor {
  if (specs.length > x.rank) {
    throw new FluxionError('slice', `${specs.length} specs for a tensor of shape ${fmtShape(x.shape)}`);
  }
  const starts: number[] = [];
  const steps: number[] = [];
  const shape: number[] = [];
  const drop: number[] = [];
  x.shape.forEach((dim, axis) => {
    const spec = specs[axis];
    if (typeof spec === 'number') {
      if (!Number.isInteger(spec)) {
        throw new FluxionError('slice', `index ${spec} on axis ${axis} is not an integer`);
      }
      if (spec < -dim || spec >= dim) {
        throw new FluxionError(
          'slice',
          `index ${spec} is out of range for axis ${axis} of ${fmtShape(x.shape)}`,
        );
      }
      starts.push(spec < 0 ? spec + dim : spec);
      steps.push(1);
      shape.push(1);
      drop.push(axis);
      return;
    }
    if (spec !== null && spec !== undefined && !Array.isArray(spec)) {
      throw new FluxionError(
        'slice',
        `spec ${String(spec)} on axis ${axis} is not an index, a range or null`,
      );
    }
    const [start, stop, stepOrNull] = spec ?? [];
    const step = stepOrNull ?? 1;
    if (!Number.isInteger(step) || step <= 0) {
      throw new FluxionError('slice', `step must be a positive integer, got ${step} on axis ${axis}`);
    }
    for (const [name, bound] of [
      ['start', start],
      ['stop', stop],
    ] as const) {
      if (bound !== null && bound !== undefined && !Number.isInteger(bound)) {
        throw new FluxionError(
          'slice',
          `${name} ${String(bound)} on axis ${axis} of ${fmtShape(x.shape)} is not an integer (or null)`,
        );
      }
    }
    const clamp = (v: number | null | undefined, dflt: number) =>
      v === undefined || v === null ? dflt : Math.min(dim, Math.max(0, v < 0 ? v + dim : v));
    const lo = clamp(start, 0);
    const hi = clamp(stop, dim);
    starts.push(lo);
    steps.push(step);
    shape.push(Math.max(0, Math.ceil((hi - lo) / step)));
  });
  return scope(() => {
    const untouched = shape.every((d, i) => d === x.shape[i] && starts[i] === 0);
    const view = untouched ? x : runView('slice', x, { starts, steps, shape });
    return drop.length
      ? reshape(
          view,
          shape.filter((_, i) => !drop.includes(i)),
        )
      : view;
  });
}

/** Removes the given size-1 axes, or all size-1 axes. */
export function squeeze(x: Tensor, axes?: number | readonly number[]): Tensor {
  const list =
    axes === undefined
      ? x.shape.flatMap((d, i) => (d === 1 ? [i] : []))
      : normalizeAxes('squeeze', axes, x.rank);
  for (const a of list) {
    if (x.shape[a] !== 1)
      throw new FluxionError('squeeze', `axis ${a} of ${fmtShape(x.shape)} has size ${x.shape[a]}, not 1`);
  }
  return reshape(
    x,
    x.shape.filter((_, i) => !list.includes(i)),
  );
}

/** Inserts a size-1 axis at `axis` (in the output's numbering; negatives count from the end). */
export function unsqueeze(x: Tensor, axis: number): Tensor {
  const a = normalizeAxis('unsqueeze', axis, x.rank + 1);
  return reshape(x, [...x.shape.slice(0, a), 1, ...x.shape.slice(a)]);
}

/** Merges axes `start..end` (inclusive) into one. */
export function flatten(x: Tensor, start = 0, end = -1): Tensor {
  if (x.rank === 0) return reshape(x, [1]);
  const s = normalizeAxis('flatten', start, x.rank);
  const e = normalizeAxis('flatten', end, x.rank);
  if (e < s) throw new FluxionError('flatten', `end axis ${end} comes before start axis ${start}`);
  return reshape(x, [...x.shape.slice(0, s), sizeOf(x.shape.slice(s, e + 1)), ...x.shape.slice(e + 1)]);
}

/** Options of {@link windows} and {@link fold}: step and tap spacing, a number or `[h, w]` (default 1). */
export interface WindowOptions {
  stride?: number | readonly [number, number];
  dilation?: number | readonly [number, number];
}

function windowParams(kernel: number | readonly [number, number], options: WindowOptions): WindowParams {
  const pair = (v: number | readonly [number, number]): [number, number] =>
    typeof v === 'number' ? [v, v] : [v[0], v[1]];
  return { kernel: pair(kernel), stride: pair(options.stride ?? 1), dilation: pair(options.dilation ?? 1) };
}

/**
 * Every sliding window of an image batch, as a view (no copy): `[N, C, H, W]` becomes
 * `[N, C, KH, KW, OH, OW]` with `out[n, c, i, j, y, x] = x[n, c, y·sh + i·dh, x·sw + j·dw]` and
 * `OH = ⌊(H − dh·(KH − 1) − 1) / sh⌋ + 1`. Pad first for padded windows. Convolutions reshape it
 * into the im2col matrix; pooling reduces over axes 2 and 3. Its gradient is {@link fold}.
 *
 * @example
 * ```ts
 * windows(arange(16).reshape([1, 1, 4, 4]), 2, { stride: 2 }).shape; // [1, 1, 2, 2, 2, 2]
 * ```
 */
export function windows(
  x: Tensor,
  kernel: number | readonly [number, number],
  options: WindowOptions = {},
): Tensor {
  return runView('windows', x, windowParams(kernel, options));
}

/**
 * The adjoint of {@link windows}: sums `[N, C, KH, KW, OH, OW]` window values back into the
 * `[N, C, H, W]` image they were read from (`size` = `[H, W]`); an element read by several windows
 * receives the sum. `fold(windows(x, k), size)` multiplies each element by its number of windows.
 *
 * @example
 * ```ts
 * fold(ones([1, 1, 2, 2, 3, 3]), [4, 4], 2).shape; // [1, 1, 4, 4]
 * ```
 */
export function fold(
  x: Tensor,
  size: readonly [number, number],
  kernel: number | readonly [number, number],
  options: WindowOptions = {},
): Tensor {
  return runKernel('fold', [x], { ...windowParams(kernel, options), size: [size[0], size[1]] });
}
