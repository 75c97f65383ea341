/**
 * Errors raised by Fluxion. Every message starts with the op that raised it and names the shapes
 * and dtypes involved, e.g. `matmul: inner dimensions differ: [2,3] @ [4,5]`.
 */

/**
 * The one error class Fluxion throws for bad input, misuse and backend failures.
 *
 * @example
 * ```ts
 * try { matmul(zeros([2, 3]), zeros([4, 5])); }
 * catch (e) { if (e instanceof FluxionError) console.log(e.message); }
 * ```
 */
export class FluxionError extends Error {
  /** The op (or API function) that raised the error. */
  readonly op: string;
  constructor(op: string, message: string) {
    super(`${op}: ${message}`);
    this.name = 'FluxionError';
    this.op = op;
  }
}

/** Formats a shape the way error messages show it: `[2,3]`. */
export function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(',')}]`;
}
