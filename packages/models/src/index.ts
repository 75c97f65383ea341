/**
 * `@fluxion/models`: the generative models of Fluxion on MNIST — the seed article's MLP GAN and
 * VAE done correctly, DCGAN, conditional GAN, WGAN-GP, conv VAE and conditional VAE — with the
 * datasets, the training loop, checkpoints, pictures and the `fluxion` command line.
 *
 * @example
 * ```ts
 * import { createModel, fit, loadMnist, splitDataset } from '@fluxion/models';
 * const { train } = splitDataset(loadMnist(), 1000);
 * const vae = createModel('vae');
 * await fit(vae, train, { epochs: 1, batchSize: 128 });
 * const images = vae.sample(64); // [64, 784] in [0, 1]
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
export * from './metrics/index.js';
export * from './models/adversarial.js';
export * from './models/audio-model.js';
export * from './models/factory.js';
export * from './models/gan.js';
export * from './models/model.js';
export * from './models/networks.js';
export * from './models/spec-vae.js';
export * from './models/text-gan.js';
export * from './models/text-lm.js';
export * from './models/text-vae.js';
export * from './models/vae.js';
export * from './models/wavegan.js';
export * from './train.js';
