/**
 * One rule for index values (PyTorch's): an index, class label or id outside `[0, size)` raises
 * a FluxionError naming the op the user called, the value and the valid range. It is never read as
 * 0 or skipped.
 *
 * Where the check happens: the CPU backend checks while its kernel runs, so the op itself throws.
 * The WebGPU backend never reads back inside an op, so its kernels flag a bad value in a small
 * device buffer (one of the first kernel's that met any; later ones are not reported) and the
 * backend throws at its next read or sync (any `data()`, `item()`, `array()`, `to()` or `sync()`,
 * whichever tensor it reads), as CUDA's device-side asserts do, but with the message below. The
 * op's output (where the bad index read 0) is not to be used.
 */
import { FluxionError } from './errors.js';

/**
 * Who reads the indices, for the error an out-of-range value raises: the op named in the message,
 * what an index is called there and what it indexes.
 *
 * @example
 * ```ts
 * const context = { op: 'crossEntropy', noun: 'class label', range: 'logits [2,3] with 3 classes' };
 * // crossEntropy: class label 3 is out of range for logits [2,3] with 3 classes; valid: [0, 3)
 * ```
 */
export interface IndexContext {
  /** The op the error names (`take`, `oneHot`, `crossEntropy`, `Embedding`, …). */
  op: string;
  /** What one index is called: `index`, `class label`, `id`. */
  noun: string;
  /** What the indices select from, e.g. `axis 0 of size 10` or `10 classes`. */
  range: string;
}

/**
 * The context of `take` or `scatterAdd` along `axis` of size `size`, when the caller gave none.
 *
 * @example
 * ```ts
 * axisContext('take', 0, 10); // { op: 'take', noun: 'index', range: 'axis 0 of size 10' }
 * ```
 */
export function axisContext(op: string, axis: number, size: number): IndexContext {
  return { op, noun: 'index', range: `axis ${axis} of size ${size}` };
}

/**
 * The error for index `value` outside `[0, size)`; `note` (e.g. where it was found) ends it.
 *
 * @example
 * ```ts
 * indexRangeError(axisContext('take', 0, 3), 5, 3).message;
 * // "take: index 5 is out of range for axis 0 of size 3; valid: [0, 3)"
 * ```
 */
export function indexRangeError(context: IndexContext, value: number, size: number, note = ''): FluxionError {
  const valid = size > 0 ? `valid: [0, ${size})` : 'there is none to select';
  return new FluxionError(
    context.op,
    `${context.noun} ${value} is out of range for ${context.range}; ${valid}${note}`,
  );
}
