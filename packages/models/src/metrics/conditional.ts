/**
 * Conditional accuracy: how often a conditional model's samples are recognised, by the shipped MNIST
 * classifier, as the digit they were asked to be. Chance is 10%; the classifier's own accuracy on
 * real test digits (its `metadata.testAccuracy`) is the practical ceiling.
 */
import { FluxionError, type Tensor } from '@fluxion/tensor';
import { type MnistClassifier, withClassifier } from './classifier.js';

/** What {@link conditionalAccuracy} needs of a model: sampling with requested labels. */
export interface ConditionalSampler {
  readonly conditional: boolean;
  /** `n` images `[n, 784]` in [0, 1], image i of class `labels[i]`. */
  sample(n: number, options?: { labels?: readonly number[] }): Tensor;
}

/**
 * Samples `n` digits with labels 0, 1, …, 9, 0, 1, … (balanced), classifies them and returns the
 * fraction classified as their requested label.
 *
 * Args:
 *   model: a conditional model (`conditional` true).
 *   n: how many digits to sample.
 *   options.classifier: the judge (default: the shipped classifier, loaded for the call).
 *   options.batchSize: digits sampled per call of `model.sample` (default 500).
 *
 * @example
 * ```ts
 * const cgan = createModel({ kind: 'cgan' });
 * await conditionalAccuracy(cgan, 1000); // ≈ 0.1 untrained, near 1 when it works
 * ```
 */
export async function conditionalAccuracy(
  model: ConditionalSampler,
  n: number,
  options: { classifier?: MnistClassifier; batchSize?: number } = {},
): Promise<number> {
  if (!model.conditional) {
    throw new FluxionError(
      'conditionalAccuracy',
      'the model is not conditional: it cannot be asked for a digit',
    );
  }
  if (!Number.isInteger(n) || n <= 0)
    throw new FluxionError('conditionalAccuracy', `n must be a positive integer, got ${n}`);
  const { batchSize = 500 } = options;
  return withClassifier(options.classifier, async (classifier) => {
    const classes = classifier.architecture.classes;
    let correct = 0;
    for (let start = 0; start < n; start += batchSize) {
      const labels = Array.from({ length: Math.min(batchSize, n - start) }, (_, i) => (start + i) % classes);
      const images = model.sample(labels.length, { labels });
      try {
        const predicted = await classifier.classify(images);
        for (let i = 0; i < labels.length; i++) if (predicted[i] === labels[i]) correct++;
      } finally {
        images.dispose();
      }
    }
    return correct / n;
  });
}
