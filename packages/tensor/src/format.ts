/**
 * Printing values the way PyTorch does: `tensor([[0.1000, 2.0000], [3.0000, 4.0000]])`, integer
 * floats as `1.`, scientific notation for wide ranges, and `...` past 1000 elements.
 */
import type { DType, TypedArray } from './dtype.js';

const SUMMARIZE_OVER = 1000;
const EDGE = 3;

function floatFormatter(values: number[]): (v: number) => string {
  const finite = values.filter((v) => Number.isFinite(v));
  const allInt = finite.every((v) => Number.isInteger(v));
  const absNonZero = finite.map(Math.abs).filter((v) => v > 0);
  const maxAbs = Math.max(0, ...absNonZero);
  const minAbs = Math.min(Number.POSITIVE_INFINITY, ...absNonZero);
  const special = (v: number) => (Number.isNaN(v) ? 'nan' : v > 0 ? 'inf' : '-inf');
  if (allInt && maxAbs < 1e8) return (v) => (Number.isFinite(v) ? `${v.toFixed(0)}.` : special(v));
  if (maxAbs >= 1e8 || minAbs < 1e-4 || maxAbs / minAbs > 1000) {
    return (v) => (Number.isFinite(v) ? v.toExponential(4).replace(/e([+-])(\d)$/, 'e$10$2') : special(v));
  }
  return (v) => (Number.isFinite(v) ? v.toFixed(4) : special(v));
}

/** Formats a row-major array of `shape` and `dtype` as PyTorch's `repr` does. */
export function formatTensor(shape: readonly number[], dtype: DType, data: TypedArray): string {
  const summarize = data.length > SUMMARIZE_OVER;
  const values = Array.from(data as ArrayLike<number>);
  const fmt =
    dtype === 'bool'
      ? (v: number) => (v ? 'True' : 'False')
      : dtype === 'int32'
        ? (v: number) => String(v)
        : floatFormatter(values);
  const width = Math.max(1, ...values.map((v) => fmt(v).length));
  const cell = (v: number) => fmt(v).padStart(width);
  const strides = shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
  const indices = (n: number) =>
    summarize && n > 2 * EDGE
      ? [...Array(EDGE).keys(), -1, ...Array.from({ length: EDGE }, (_, i) => n - EDGE + i)]
      : [...Array(n).keys()];
  const render = (axis: number, start: number, indent: number): string => {
    if (axis === shape.length) return cell(data[start]);
    const parts = indices(shape[axis]).map((i) =>
      i < 0 ? '...' : render(axis + 1, start + i * strides[axis], indent + 1),
    );
    const sep =
      axis === shape.length - 1 ? ', ' : `,${'\n'.repeat(shape.length - axis - 1)}${' '.repeat(indent + 1)}`;
    return `[${parts.join(sep)}]`;
  };
  const prefix = 'tensor(';
  const body = render(0, 0, prefix.length);
  const suffix = dtype === 'float32' ? '' : `, dtype=${dtype}`;
  return `${prefix}${body}${suffix})`;
}
