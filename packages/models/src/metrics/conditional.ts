/**
 * Conditional accuracy: how often a conditional model's samples are recognised, by the shipped MNIST
 * classifier, as the digit they were asked to be. Chance is 10%; the classifier's own accuracy on
 * real test digits (its `metadata.testAccuracy`) is the practical ceiling.
 */
import { FluxionError, type Tensor } from '@fluxion/tensor';
import type { BatchClassifier } from './batch-classifier.js';
import { type MnistClassifier, withClassifier } from './classifier.js';

/** What {@link conditionalAccuracy} needs of a model: sampling with requested labels. */
export interface ConditionalSampler {
  readonly conditional: boolean;
  /** `n` inputs of the judge (images `[n, 784]` in [0, 1], clips `[n, 8192]`), input i of class `labels[i]`. */
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
  return withClassifier(options.classifier, (classifier) =>
    conditionalAccuracyWith('conditionalAccuracy', model, n, classifier, options.batchSize),
  );
}

/**
 * The loop behind {@link conditionalAccuracy} and `audioConditionalAccuracy` for any judge:
 * samples `n` inputs with balanced labels ({@link sampleBalanced}), classifies them and returns the
 * fraction classified as asked. Errors name `op`.
 *
 * @example
 * ```ts
 * await conditionalAccuracyWith('myMetric', model, 1000, loadSpokenDigitClassifier());
 * ```
 */
export async function conditionalAccuracyWith(
  op: string,
  model: ConditionalSampler,
  n: number,
  classifier: BatchClassifier,
  batchSize = 500,
): Promise<number> {
  let correct = 0;
  await sampleBalanced(op, model, n, classifier.classes, batchSize, async (samples, labels) => {
    const predicted = await classifier.classify(samples);
    for (let i = 0; i < labels.length; i++) if (predicted[i] === labels[i]) correct++;
  });
  return correct / n;
}

/**
 * Asks a conditional model for `n` samples with the labels 0, 1, …, classes − 1, 0, 1, …
 * (balanced), `batchSize` per call of `model.sample` (default 500), and hands each batch with its
 * labels to `each` (the batch is disposed after). Errors ({@link FluxionError} from `op`): the model
 * is not conditional, `n` or `batchSize` is not a positive integer.
 *
 * @example
 * ```ts
 * await sampleBalanced('mine', cgan, 1000, 10, 500, async (images, labels) => { … });
 * ```
 */
export async function sampleBalanced(
  op: string,
  model: ConditionalSampler,
  n: number,
  classes: number,
  batchSize: number,
  each: (samples: Tensor, labels: number[]) => Promise<void>,
): Promise<void> {
  if (!model.conditional)
    throw new FluxionError(op, 'the model is not conditional: it cannot be asked for a digit');
  if (!Number.isInteger(n) || n <= 0) throw new FluxionError(op, `n must be a positive integer, got ${n}`);
  if (!Number.isInteger(batchSize) || batchSize <= 0)
    throw new FluxionError(op, `batchSize must be a positive integer, got ${batchSize}`);
  for (let start = 0; start < n; start += batchSize) {
    const labels = Array.from({ length: Math.min(batchSize, n - start) }, (_, i) => (start + i) % classes);
    const samples = model.sample(labels.length, { labels });
    try {
      await each(samples, labels);
    } finally {
      samples.dispose();
    }
  }
}
