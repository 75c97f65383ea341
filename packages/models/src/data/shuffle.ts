/**
 * Seeded shuffling that runs anywhere (no Node imports): the Node datasets and the browser
 * playground draw their batch order from this one function.
 */
import { philox4x32, seedToKey } from '@fluxion/tensor';

/**
 * A permutation of 0..n−1 from a seed (Fisher–Yates driven by Philox), the same on every machine.
 *
 * @example
 * ```ts
 * permutation(5, 1, 0); // e.g. [3, 0, 4, 1, 2]; epoch 1 gives another order
 * ```
 */
export function permutation(n: number, seed: number, epoch: number): Int32Array {
  const [k0, k1] = seedToKey(seed);
  const words = new Uint32Array(4);
  const p = Int32Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    philox4x32(i, epoch, 0x5eed, 0, k0, k1, words);
    const j = words[0] % (i + 1);
    [p[i], p[j]] = [p[j], p[i]];
  }
  return p;
}
