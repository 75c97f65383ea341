/**
 * Image datasets in memory, for the browser and Node alike: the dataset shape, a deterministic
 * train/test split and seeded shuffled batches. Loading them from files (MNIST, IDX) is in
 * `dataset.ts`, behind `@fluxion/models/node`.
 */
import { FluxionError, type Tensor, tensor } from '@fluxion/tensor';
import { permutation } from './shuffle.js';

export { permutation };

/** Images as rows of pixels in [0, 1] with int labels. */
export interface ImageDataset {
  /** `count × (height·width)` pixels in [0, 1], row-major. */
  images: Float32Array;
  labels: Int32Array;
  count: number;
  height: number;
  width: number;
}

/** The first `count − testCount` items for training, the rest for testing (deterministic). */
export function splitDataset(
  ds: ImageDataset,
  testCount: number,
): { train: ImageDataset; test: ImageDataset } {
  const pixels = ds.height * ds.width;
  const cut = ds.count - testCount;
  if (cut <= 0) throw new FluxionError('splitDataset', `cannot hold out ${testCount} of ${ds.count} items`);
  const part = (from: number, to: number): ImageDataset => ({
    ...ds,
    images: ds.images.subarray(from * pixels, to * pixels),
    labels: ds.labels.subarray(from, to),
    count: to - from,
  });
  return { train: part(0, cut), test: part(cut, ds.count) };
}

/** One batch: images `[b, h·w]` and int32 labels `[b]`. */
export interface Batch {
  images: Tensor;
  labels: Tensor;
}

/**
 * The batches of one epoch in seeded shuffled order (the last partial batch is dropped), each
 * uploaded to the current backend. Dispose each batch's tensors when done.
 *
 * @example
 * ```ts
 * for (const { images, labels } of batches(train, 64, { seed: 0, epoch })) { … }
 * ```
 */
export function* batches(
  ds: ImageDataset,
  batchSize: number,
  { seed, epoch, scale = (v: number) => v }: { seed: number; epoch: number; scale?: (v: number) => number },
): Generator<Batch> {
  const pixels = ds.height * ds.width;
  const order = permutation(ds.count, seed, epoch);
  for (let start = 0; start + batchSize <= ds.count; start += batchSize) {
    const img = new Float32Array(batchSize * pixels);
    const lab = new Int32Array(batchSize);
    for (let i = 0; i < batchSize; i++) {
      const src = order[start + i];
      for (let p = 0; p < pixels; p++) img[i * pixels + p] = scale(ds.images[src * pixels + p]);
      lab[i] = ds.labels[src];
    }
    yield { images: tensor(img, [batchSize, pixels]), labels: tensor(lab, [batchSize]) };
  }
}
