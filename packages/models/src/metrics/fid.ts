/**
 * Classifier-FID: the Fréchet distance between Gaussians fitted to the features of two image sets
 * in the feature space of the shipped MNIST classifier (its 64-d penultimate layer), in the spirit
 * of FID, which uses an Inception network on natural images. Lower is closer; the value depends on
 * the number of images (fewer images, larger distance), so compare runs at equal counts and report
 * the baselines of {@link fidBaselines} alongside: real-vs-real (train digits against test digits,
 * the best a model can hope for) and noise-vs-real (uniform noise against test digits). With the
 * shipped classifier and 1,000 images per set they are about 2.3 and 1,190.
 */
import { Generator, rand } from '@fluxion/tensor';
import { type ImageDataset, loadMnist, splitDataset } from '../data/dataset.js';
import { type ImagesInput, type MnistClassifier, withClassifier } from './classifier.js';
import { featureFrechetDistance } from './frechet.js';

/** Options of {@link classifierFid} and {@link fidBaselines}. */
export interface ClassifierFidOptions {
  /** The classifier whose features are compared (default: the shipped one, loaded for the call). */
  classifier?: MnistClassifier;
  /** Images per forward pass for pixel arrays (default 500). */
  batchSize?: number;
}

/**
 * Classifier-FID between two image sets (tensors `[n, 784]` or pixel rows in [0, 1]).
 *
 * @example
 * ```ts
 * const { test } = splitDataset(loadMnist(), 1000);
 * const fid = await classifierFid(gan.sample(1000), test.images);
 * ```
 */
export async function classifierFid(
  images1: ImagesInput,
  images2: ImagesInput,
  options: ClassifierFidOptions = {},
): Promise<number> {
  return withClassifier(options.classifier, async (classifier) => {
    const a = await classifier.extractFeatures(images1, options.batchSize);
    const b = await classifier.extractFeatures(images2, options.batchSize);
    return featureFrechetDistance(a, b, classifier.architecture.features);
  });
}

/** Reference values of classifier-FID against the test digits, at `count` images per set. */
export interface FidBaselines {
  /** The first `count` training digits against the test digits. */
  realVsReal: number;
  /** `count` images of uniform noise in [0, 1) against the test digits. */
  noiseVsReal: number;
  count: number;
}

/**
 * The classifier-FID baselines for a model evaluated with `count` samples against `test`
 * (default: the 1,000 test digits of `splitDataset(loadMnist(), 1000)`, and its train split).
 *
 * @example
 * ```ts
 * const { realVsReal, noiseVsReal } = await fidBaselines({ count: 1000 });
 * ```
 */
export async function fidBaselines(
  options: ClassifierFidOptions & {
    count?: number;
    seed?: number;
    train?: ImageDataset;
    test?: ImageDataset;
  } = {},
): Promise<FidBaselines> {
  const { count = 1000, seed = 0 } = options;
  const split = options.train && options.test ? null : splitDataset(loadMnist(), 1000);
  const train = options.train ?? split!.train;
  const test = options.test ?? split!.test;
  const pixels = train.height * train.width;
  const realCount = Math.min(count, train.count);
  return withClassifier(options.classifier, async (classifier) => {
    const fid = { ...options, classifier };
    const realVsReal = await classifierFid(train.images.subarray(0, realCount * pixels), test.images, fid);
    const noise = rand([count, pixels], { generator: new Generator(seed) });
    try {
      const noiseVsReal = await classifierFid(noise, test.images, fid);
      return { realVsReal, noiseVsReal, count };
    } finally {
      noise.dispose();
    }
  });
}
