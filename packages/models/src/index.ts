/**
 * `@fluxion/models`: the generative models of Fluxion — the seed article's MLP GAN and VAE done
 * correctly, DCGAN, conditional GAN, WGAN-GP, conv VAE and conditional VAE on MNIST, text models
 * on names and Shakespeare, WaveGAN on spoken digits — with in-memory datasets and the training
 * loop.
 *
 * This main entry is browser-safe: nothing it reaches imports `node:*` or another Node-only
 * package, so a bundler (Vite, esbuild, webpack) can put it in a page. What reads or writes files
 * — the MNIST/IDX, text and audio loaders, checkpoints, PNG pictures, the metrics' classifiers and
 * the `fluxion` command line — is in the Node entry, `@fluxion/models/node`, which re-exports
 * everything here as well.
 *
 * @example
 * ```ts
 * import { createModel, fit, splitDataset } from '@fluxion/models';
 * import { loadMnist } from '@fluxion/models/node'; // in a page: fetch the digits instead
 * const { train } = splitDataset(loadMnist(), 1000);
 * const vae = createModel('vae');
 * await fit(vae, train, { epochs: 1, batchSize: 128 });
 * const images = vae.sample(64); // [64, 784] in [0, 1]
 * ```
 *
 * @module
 */
export * from './data/audio.js';
export * from './data/images.js';
export * from './data/text-batches.js';
export * from './data/tokenizer.js';
export * from './data/wav.js';
export * from './metrics/frechet.js';
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
