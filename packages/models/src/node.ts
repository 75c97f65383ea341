/**
 * `@fluxion/models/node`: everything of the browser-safe main entry (`@fluxion/models`) plus what
 * needs Node — files and `node:*` modules: the MNIST and IDX loaders, the text and audio file
 * loaders, checkpoints, PNG pictures, the metrics and their classifiers (which read shipped
 * weights), and the `fluxion` command line.
 *
 * @example
 * ```ts
 * import { createModel, fit, loadMnist, saveCheckpoint, splitDataset } from '@fluxion/models/node';
 * const { train } = splitDataset(loadMnist(), 1000);
 * const vae = createModel('vae');
 * await fit(vae, train, { epochs: 1, batchSize: 128 });
 * ```
 *
 * @module
 */
export * from './checkpoint.js';
export { type EvaluateOptions, evaluateModel, runCli, UsageError } from './cli.js';
export * from './data/audio-files.js';
export * from './data/dataset.js';
export * from './data/idx.js';
export * from './data/text.js';
export * from './image/grid.js';
export * from './image/png.js';
export * from './index.js';
export * from './metrics/index.js';
