/**
 * Philox4x32-10, the counter-based random generator of Salmon et al. (SC'11, "Parallel random
 * numbers: as easy as 1, 2, 3"), also used by JAX, PyTorch's CUDA backend and cuRAND.
 *
 * A counter-based generator is a pure function `bits = philox(key, counter)`: element `i` of a
 * random tensor depends only on the key and `i`, so the CPU loop and a WGSL kernel (one invocation
 * per element) produce the same bits, and streams of different generators never interact.
 *
 * Each round multiplies two 32-bit words by fixed constants, keeping the high and low halves of the
 * 64-bit products, and mixes them with the other two words and the key; the key is bumped by the
 * Weyl constants between rounds. 32×32→64 products are computed from 16-bit halves, the same
 * arithmetic the WGSL version uses (WGSL has no 64-bit integers).
 */
import { FluxionError } from './errors.js';

const M0 = 0xd2511f53;
const M1 = 0xcd9e8d57;
const W0 = 0x9e3779b9;
const W1 = 0xbb67ae85;

/** High 32 bits of the 64-bit product of two unsigned 32-bit integers. */
export function mulhi32(a: number, b: number): number {
  const al = a & 0xffff;
  const ah = a >>> 16;
  const bl = b & 0xffff;
  const bh = b >>> 16;
  const ll = al * bl;
  const lh = al * bh;
  const hl = ah * bl;
  const mid = (ll >>> 16) + (lh & 0xffff) + (hl & 0xffff);
  return (ah * bh + (lh >>> 16) + (hl >>> 16) + (mid >>> 16)) >>> 0;
}

/**
 * Ten Philox rounds on the counter (c0..c3) with key (k0, k1); writes four uint32 words to `out`.
 *
 * @example
 * ```ts
 * const out = new Uint32Array(4);
 * philox4x32(0, 0, 0, 0, 0, 0, out); // 6627e8d5 e169c58d bc57ac4c 9b00dbd8 (Random123's test vector)
 * ```
 */
export function philox4x32(
  c0: number,
  c1: number,
  c2: number,
  c3: number,
  k0: number,
  k1: number,
  out: Uint32Array,
): void {
  for (let round = 0; round < 10; round++) {
    const hi0 = mulhi32(M0, c0);
    const lo0 = Math.imul(M0, c0) >>> 0;
    const hi1 = mulhi32(M1, c2);
    const lo1 = Math.imul(M1, c2) >>> 0;
    c0 = (hi1 ^ c1 ^ k0) >>> 0;
    c1 = lo1;
    c2 = (hi0 ^ c3 ^ k1) >>> 0;
    c3 = lo0;
    k0 = (k0 + W0) >>> 0;
    k1 = (k1 + W1) >>> 0;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
}

/** 2^-24: maps the top 24 bits of a word to a float32-exact value in [0, 1). */
export const TWO_POW_M24 = 1 / 16777216;

/**
 * The distributions the `random` primitive draws. Element `i` of a draw at stream offset `o` uses
 * the Philox block with counter `(o + i)` (low word, high word, 0, 0):
 *
 * - `uniform`: `(w0 >>> 8) · 2⁻²⁴`, in [0, 1), bit-identical on every backend;
 * - `normal`: Box–Muller, `sqrt(−2 ln u1) · cos(2π u2)` with `u1 = ((w0 >>> 8) + 1) · 2⁻²⁴` in (0, 1]
 *   and `u2 = (w1 >>> 8) · 2⁻²⁴` (GPU and CPU agree to float32 rounding of log and cos);
 * - `randint`: `low + (w0 mod (high − low))`, bit-identical on every backend.
 */
export type Distribution = 'uniform' | 'normal' | 'randint';

/** Turns a seed (any safe integer) into a Philox key. */
export function seedToKey(seed: number): [number, number] {
  if (!Number.isSafeInteger(seed)) throw new FluxionError('seed', `seed must be a safe integer, got ${seed}`);
  const lo = seed >>> 0;
  const hi = Math.floor(seed / 4294967296) >>> 0;
  return [lo, (hi ^ 0x5eed5eed) >>> 0];
}
