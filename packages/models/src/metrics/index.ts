/**
 * Sample-quality metrics: for MNIST models the shipped classifier, classifier-FID with its
 * baselines and the conditional accuracy of conditional models; for audio models the shipped
 * spoken-digit classifier, audio conditional accuracy, Inception score and Fréchet distance with
 * their baselines; the Fréchet distance itself.
 *
 * @example
 * ```ts
 * import { audioBaselines, classifierFid, conditionalAccuracy, fidBaselines } from './metrics/index.js';
 * const fid = await classifierFid(model.sample(1000), test.images);
 * const { realVsReal, noiseVsReal } = await fidBaselines();
 * const { real, noise } = await audioBaselines();
 * ```
 */

export * from './audio.js';
export * from './audio-classifier.js';
export * from './batch-classifier.js';
export * from './classifier.js';
export * from './conditional.js';
export * from './fid.js';
export * from './frechet.js';
export * from './labels.js';
