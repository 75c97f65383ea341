/**
 * Sample-quality metrics for MNIST models: the shipped classifier, the Fréchet distance,
 * classifier-FID with its baselines, and the conditional accuracy of conditional models.
 *
 * @example
 * ```ts
 * import { classifierFid, conditionalAccuracy, fidBaselines } from './metrics/index.js';
 * const fid = await classifierFid(model.sample(1000), test.images);
 * const { realVsReal, noiseVsReal } = await fidBaselines();
 * ```
 */
export * from './classifier.js';
export * from './conditional.js';
export * from './fid.js';
export * from './frechet.js';
export * from './labels.js';
