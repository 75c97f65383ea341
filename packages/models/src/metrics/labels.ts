/**
 * The predicted-label histogram of generated digits: which digits a model draws, as the shipped
 * MNIST classifier sees them. It is the first thing to look at for a GAN, whose typical failure
 * (mode collapse) is drawing a few digits well and the others never; classifier-FID notices it only
 * as one number among others.
 *
 * The summary figures:
 *   - `entropy` H = −Σ pᵢ ln pᵢ of the predicted-label distribution, in nats (ln 10 ≈ 2.303 for ten
 *     equally frequent digits, 0 for one digit);
 *   - `effectiveClasses` = exp(H), the perplexity: the number of equally frequent classes with the
 *     same entropy (10 for balanced digits, about 2 for a model that draws only 1s and 7s);
 *   - `missing`: classes that no image was given;
 *   - `dominant`: the most frequent class and its share.
 */
import { FluxionError } from '@fluxion/tensor';
import { type ImagesInput, type MnistClassifier, withClassifier } from './classifier.js';

/** The predicted-label histogram of a set of images and its summary figures. */
export interface LabelHistogram {
  /** Images per predicted class, `classes` entries. */
  counts: number[];
  /** `counts` divided by their total. */
  fractions: number[];
  /** Entropy of `fractions` in nats. */
  entropy: number;
  /** exp(entropy): how many equally frequent classes would give the same entropy. */
  effectiveClasses: number;
  /** Classes no image was predicted as, in increasing order. */
  missing: number[];
  /** The most frequent class (the lowest on ties) and its fraction. */
  dominant: { label: number; fraction: number };
}

/** Thresholds of {@link labelHistogramWarnings}. */
export interface LabelWarningOptions {
  /** A class above this fraction dominates (default 0.2: twice the 10 % of balanced digits). */
  dominantFraction?: number;
}

/**
 * The histogram of predicted labels `labels` over `classes` classes, with its entropy, effective
 * number of classes, missing classes and dominant class.
 *
 * @example
 * ```ts
 * const h = histogramOfLabels([1, 1, 7, 1], 10);
 * h.counts;           // [0, 3, 0, 0, 0, 0, 0, 1, 0, 0]
 * h.effectiveClasses; // ≈ 1.75
 * h.missing;          // [0, 2, 3, 4, 5, 6, 8, 9]
 * ```
 */
export function histogramOfLabels(labels: ArrayLike<number>, classes: number): LabelHistogram {
  if (!Number.isInteger(classes) || classes <= 0)
    throw new FluxionError('histogramOfLabels', `classes must be a positive integer, got ${classes}`);
  if (labels.length === 0) throw new FluxionError('histogramOfLabels', 'no labels to count');
  const counts = new Array<number>(classes).fill(0);
  for (let i = 0; i < labels.length; i++) {
    const label = labels[i];
    if (!Number.isInteger(label) || label < 0 || label >= classes)
      throw new FluxionError(
        'histogramOfLabels',
        `label ${label} at index ${i} is outside [0, ${classes - 1}]`,
      );
    counts[label]++;
  }
  const fractions = counts.map((c) => c / labels.length);
  // 0 · ln 0 = 0: an absent class adds nothing to the entropy.
  const entropy = -fractions.reduce((h, p) => (p > 0 ? h + p * Math.log(p) : h), 0);
  const missing = counts.flatMap((c, label) => (c === 0 ? [label] : []));
  let top = 0;
  for (let label = 1; label < classes; label++) if (counts[label] > counts[top]) top = label;
  return {
    counts,
    fractions,
    entropy,
    effectiveClasses: Math.exp(entropy),
    missing,
    dominant: { label: top, fraction: fractions[top] },
  };
}

/**
 * Classifies images with the shipped MNIST classifier (or `options.classifier`) and returns the
 * histogram of the predicted labels.
 *
 * Args:
 *   images: `[n, 784]` pixels in [0, 1], as a tensor or a Float32Array of rows.
 *   options.classifier: the judge (default: the shipped classifier, loaded for the call).
 *
 * @example
 * ```ts
 * const samples = gan.sample(1000);
 * const h = await labelHistogram(samples);
 * console.log(h.effectiveClasses, labelHistogramWarnings(h));
 * ```
 */
export async function labelHistogram(
  images: ImagesInput,
  options: { classifier?: MnistClassifier } = {},
): Promise<LabelHistogram> {
  return withClassifier(options.classifier, async (classifier) =>
    histogramOfLabels(await classifier.classify(images), classifier.architecture.classes),
  );
}

/**
 * Warnings a user should see about a histogram: every missing class, and a class whose share is
 * above `dominantFraction`. Empty when neither happens.
 *
 * @example
 * ```ts
 * labelHistogramWarnings(histogramOfLabels([1, 1, 7, 1], 10));
 * // ['classes never drawn: 0, 2, 3, 4, 5, 6, 8, 9', 'class 1 dominates: 75.0 % of samples (limit 20 %)']
 * ```
 */
export function labelHistogramWarnings(
  histogram: LabelHistogram,
  { dominantFraction = 0.2 }: LabelWarningOptions = {},
): string[] {
  const warnings: string[] = [];
  if (histogram.missing.length > 0) warnings.push(`classes never drawn: ${histogram.missing.join(', ')}`);
  const { label, fraction } = histogram.dominant;
  if (fraction > dominantFraction) {
    warnings.push(
      `class ${label} dominates: ${(fraction * 100).toFixed(1)} % of samples (limit ${dominantFraction * 100} %)`,
    );
  }
  return warnings;
}

/**
 * A plain-text table of a sample histogram beside a reference one (e.g. the real test digits'),
 * one row per class, then the entropy and the effective number of classes of each.
 *
 * @example
 * ```ts
 * console.log(formatLabelHistograms(await labelHistogram(samples), await labelHistogram(test.images)));
 * // class  samples    real
 * //     0    9.8 %   9.8 %
 * // …
 * // entropy (nats)  2.298   2.301
 * // effective classes  9.95   9.98
 * ```
 */
export function formatLabelHistograms(samples: LabelHistogram, real: LabelHistogram): string {
  if (samples.counts.length !== real.counts.length) {
    throw new FluxionError(
      'formatLabelHistograms',
      `${samples.counts.length} sample classes but ${real.counts.length} real ones`,
    );
  }
  const percent = (p: number) => `${(p * 100).toFixed(1)} %`.padStart(8);
  const lines = ['class  samples    real'];
  for (let label = 0; label < samples.counts.length; label++) {
    lines.push(
      `${String(label).padStart(5)} ${percent(samples.fractions[label])}${percent(real.fractions[label])}`,
    );
  }
  lines.push(`entropy (nats)     ${samples.entropy.toFixed(3)}   ${real.entropy.toFixed(3)}`);
  lines.push(
    `effective classes  ${samples.effectiveClasses.toFixed(2)}    ${real.effectiveClasses.toFixed(2)}`,
  );
  return lines.join('\n');
}
