/**
 * Printing values the way PyTorch does (`torch._tensor_str`): `tensor([[0.1000, 2.0000], …])`,
 * integer-valued floats as `1.`, scientific notation for wide ranges, rows wrapped at 80 columns,
 * and only the 3 edge items of each axis past 1000 elements (`...`).
 *
 * The number format is chosen from the non-zero finite values that are shown:
 * - all integers: `1.` — unless max/min > 1000 or max > 1e8, then scientific;
 * - otherwise `0.1000` (4 decimals) — unless max/min > 1000, max > 1e8 or min < 1e-4, then
 *   scientific (`1.0000e-05`).
 * Every element is padded to the widest formatted value.
 */
import type { DType, TypedArray } from './dtype.js';

const SUMMARIZE_OVER = 1000;
const EDGE_ITEMS = 3;
const LINE_WIDTH = 80;
const PRECISION = 4;

/** Formats one element, padded to `width`. */
interface ElementFormatter {
  width: number;
  format(v: number): string;
}

/** Python's `{:.4e}`: at least two exponent digits (`1.0000e-05`). */
function scientific(v: number): string {
  return v.toExponential(PRECISION).replace(/e([+-])(\d)$/, 'e$10$2');
}

function nonFinite(v: number): string {
  return Number.isNaN(v) ? 'nan' : v > 0 ? 'inf' : '-inf';
}

function floatFormatter(shown: readonly number[]): ElementFormatter {
  const values = shown.filter((v) => Number.isFinite(v) && v !== 0);
  let raw = (v: number) => `${v.toFixed(0)}.`;
  if (values.length > 0) {
    const magnitudes = values.map(Math.abs);
    const max = magnitudes.reduce((a, b) => Math.max(a, b));
    const min = magnitudes.reduce((a, b) => Math.min(a, b));
    const wide = max / min > 1000 || max > 1e8;
    if (values.every(Number.isInteger)) raw = wide ? scientific : raw;
    else raw = wide || min < 1e-4 ? scientific : (v) => v.toFixed(PRECISION);
  }
  const width = values.reduce((w, v) => Math.max(w, raw(v).length), 1);
  const format = (v: number) => (Number.isFinite(v) ? raw(v) : nonFinite(v)).padStart(width);
  return { width, format };
}

function exactFormatter(shown: readonly number[], dtype: DType): ElementFormatter {
  const raw = dtype === 'bool' ? (v: number) => (v ? 'True' : 'False') : (v: number) => String(v);
  const width = shown.reduce((w, v) => Math.max(w, raw(v).length), 1);
  return { width, format: (v) => raw(v).padStart(width) };
}

/** The indices shown along an axis of length n; −1 marks the ellipsis. */
function shownIndices(n: number, summarize: boolean): number[] {
  if (!summarize || n <= 2 * EDGE_ITEMS) return [...Array(n).keys()];
  return [
    ...Array(EDGE_ITEMS).keys(),
    -1,
    ...Array.from({ length: EDGE_ITEMS }, (_, i) => n - EDGE_ITEMS + i),
  ];
}

/**
 * Formats a row-major array of `shape` and `dtype` as PyTorch's `repr` does; the dtype is named
 * unless it is float32 or bool (PyTorch's defaults), and empty tensors name their size.
 *
 * @example
 * ```ts
 * formatTensor([2, 2], 'float32', new Float32Array([1, 2, 3, 4]));
 * // tensor([[1., 2.],
 * //         [3., 4.]])
 * ```
 */
export function formatTensor(shape: readonly number[], dtype: DType, data: TypedArray): string {
  const prefix = 'tensor(';
  const suffixes: string[] = [];
  const size = shape.reduce((a, b) => a * b, 1);
  if (size === 0) {
    if (shape.length !== 1) suffixes.push(`size=(${shape.join(', ')})`);
    if (dtype !== 'float32') suffixes.push(`dtype=${dtype}`);
    return `${prefix}[]${suffixes.map((s) => `, ${s}`).join('')})`;
  }
  if (dtype !== 'float32' && dtype !== 'bool') suffixes.push(`dtype=${dtype}`);

  const summarize = size > SUMMARIZE_OVER;
  const strides = shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
  const shown: number[] = [];
  const collect = (axis: number, start: number): void => {
    if (axis === shape.length) shown.push(data[start]);
    else
      for (const i of shownIndices(shape[axis], summarize))
        if (i >= 0) collect(axis + 1, start + i * strides[axis]);
  };
  collect(0, 0);
  const { width, format } =
    dtype === 'float32' || dtype === 'float64' ? floatFormatter(shown) : exactFormatter(shown, dtype);

  const render = (axis: number, start: number, indent: number): string => {
    if (axis === shape.length) return format(data[start]);
    const indices = shownIndices(shape[axis], summarize);
    if (axis === shape.length - 1) {
      // The last axis: elements wrapped to the line width, `...` padded like an element.
      const items = indices.map((i) => (i < 0 ? ' ...' : format(data[start + i * strides[axis]])));
      const perLine = Math.max(1, Math.floor((LINE_WIDTH - indent) / (width + 2)));
      const lines: string[] = [];
      for (let i = 0; i < items.length; i += perLine) lines.push(items.slice(i, i + perLine).join(', '));
      return `[${lines.join(`,\n${' '.repeat(indent + 1)}`)}]`;
    }
    const parts = indices.map((i) =>
      i < 0 ? '...' : render(axis + 1, start + i * strides[axis], indent + 1),
    );
    return `[${parts.join(`,${'\n'.repeat(shape.length - axis - 1)}${' '.repeat(indent + 1)}`)}]`;
  };
  return `${prefix}${render(0, 0, prefix.length)}${suffixes.map((s) => `, ${s}`).join('')})`;
}
