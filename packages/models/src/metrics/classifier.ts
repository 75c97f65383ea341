/**
 * The MNIST classifier behind the sample-quality metrics: a small ReLU MLP trained with Fluxion
 * itself by `packages/models/scripts/train-classifier.ts`, whose weights ship in
 * `packages/models/assets/mnist-classifier.safetensors`. Its penultimate activations are the feature
 * space of classifier-FID, and its predictions judge conditional models.
 */
import { readFileSync } from 'node:fs';
import { noGrad } from '@fluxion/autograd';
import { Dense, loadSafetensors, Module } from '@fluxion/nn';
import { argmax, FluxionError, scope, type Tensor, tensor } from '@fluxion/tensor';
import { packageFilePath } from '../package-file.js';

/** The file name of the shipped weights inside `packages/models/assets/`. */
export const CLASSIFIER_ASSET = 'mnist-classifier.safetensors';

/** The layer sizes of an {@link MnistClassifier}. */
export interface ClassifierArchitecture {
  /** Pixels per image (28·28). */
  inputs: number;
  /** Width of the first hidden layer. */
  hidden: number;
  /** Width of the second hidden layer: the feature dimension of classifier-FID. */
  features: number;
  classes: number;
}

/**
 * The shipped architecture: 784 → 64 → 64 → 10 (55,050 parameters, 220 KB as float32). A 256-wide
 * first layer measured no better on the 1,000 test digits and would ship four times the bytes.
 */
export const DEFAULT_CLASSIFIER: ClassifierArchitecture = {
  inputs: 784,
  hidden: 64,
  features: 64,
  classes: 10,
};

/** Images for the host-side helpers: a tensor `[n, 784]` or rows of pixels in [0, 1]. */
export type ImagesInput = Tensor | Float32Array;

/**
 * An MLP digit classifier: logits = W₃ relu(W₂ relu(W₁ x + b₁) + b₂) + b₃ on pixels in [0, 1].
 *
 * Args:
 *   architecture: layer sizes (default {@link DEFAULT_CLASSIFIER}).
 *   options.seed: seed of the initialisation (default 0).
 *
 * Shape:
 *   input `[n, inputs]` → logits `[n, classes]`; `features` → `[n, features]`; `predict` → int32 `[n]`.
 *
 * @example
 * ```ts
 * const classifier = loadMnistClassifier();
 * const labels = classifier.predict(images);    // int32 [n]
 * const feats = classifier.features(images);    // [n, 64]
 * ```
 */
export class MnistClassifier extends Module {
  readonly hidden: Dense;
  readonly penultimate: Dense;
  readonly output: Dense;
  /** The metadata of the file the weights came from (empty for a fresh classifier). */
  metadata: Record<string, string> = {};

  constructor(
    readonly architecture: ClassifierArchitecture = DEFAULT_CLASSIFIER,
    options: { seed?: number } = {},
  ) {
    super();
    const { inputs, hidden, features, classes } = architecture;
    const seed = options.seed ?? 0;
    this.hidden = new Dense(inputs, hidden, { activation: 'relu', seed: seed * 10 + 1 });
    this.penultimate = new Dense(hidden, features, { activation: 'relu', seed: seed * 10 + 2 });
    this.output = new Dense(features, classes, { seed: seed * 10 + 3 });
  }

  /** The penultimate (post-ReLU) activations `[n, features]` of images `[n, inputs]`. */
  features(x: Tensor): Tensor {
    return scope(() => this.penultimate.forward(this.hidden.forward(x)));
  }

  /** The logits `[n, classes]`. */
  forward(x: Tensor): Tensor {
    return scope(() => this.output.forward(this.features(x)));
  }

  /** The most likely class of each image, int32 `[n]` (no gradient recorded). */
  predict(x: Tensor): Tensor {
    return noGrad(() => scope(() => argmax(this.forward(x), 1)));
  }

  /**
   * Features of many images, read back to the host: `[n · features]` row by row. Arrays are
   * processed `batchSize` images at a time; a tensor in one pass.
   *
   * @example
   * ```ts
   * const feats = await classifier.extractFeatures(test.images); // Float32Array, 1000 × 64
   * ```
   */
  async extractFeatures(images: ImagesInput, batchSize = 500): Promise<Float32Array> {
    const parts = await this.mapBatches(images, batchSize, (x) => this.features(x));
    return concatArrays(parts as Float32Array[], Float32Array);
  }

  /**
   * Predicted classes of many images, read back to the host.
   *
   * @example
   * ```ts
   * const predicted = await classifier.classify(test.images); // Int32Array [1000]
   * ```
   */
  async classify(images: ImagesInput, batchSize = 500): Promise<Int32Array> {
    const parts = await this.mapBatches(images, batchSize, (x) => this.predict(x));
    return concatArrays(parts as Int32Array[], Int32Array);
  }

  /**
   * The fraction of images whose predicted class is their label.
   *
   * @example
   * ```ts
   * await classifier.accuracy(test.images, test.labels); // e.g. 0.967
   * ```
   */
  async accuracy(images: ImagesInput, labels: ArrayLike<number>, batchSize = 500): Promise<number> {
    const predicted = await this.classify(images, batchSize);
    if (predicted.length !== labels.length) {
      throw new FluxionError('MnistClassifier', `${predicted.length} images but ${labels.length} labels`);
    }
    let correct = 0;
    for (let i = 0; i < predicted.length; i++) if (predicted[i] === labels[i]) correct++;
    return correct / predicted.length;
  }

  /** Runs `fn` without gradients on batches of images and reads each result back. */
  private async mapBatches(images: ImagesInput, batchSize: number, fn: (x: Tensor) => Tensor) {
    const { inputs } = this.architecture;
    const run = async (x: Tensor) => {
      const y = noGrad(() => fn(x));
      try {
        return await y.data();
      } finally {
        y.dispose();
      }
    };
    if (!(images instanceof Float32Array)) return [await run(images)];
    if (images.length % inputs !== 0) {
      throw new FluxionError(
        'MnistClassifier',
        `${images.length} pixels are not a whole number of ${inputs}-pixel images`,
      );
    }
    const count = images.length / inputs;
    const parts = [];
    for (let start = 0; start < count; start += batchSize) {
      const rows = Math.min(batchSize, count - start);
      const x = tensor(images.subarray(start * inputs, (start + rows) * inputs), [rows, inputs]);
      try {
        parts.push(await run(x));
      } finally {
        x.dispose();
      }
    }
    return parts;
  }
}

function concatArrays<T extends Float32Array | Int32Array>(parts: T[], Kind: new (n: number) => T): T {
  const out = new Kind(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

/**
 * Where the shipped weights are: `assets/` of the package, found from its sources, its `dist/`, the
 * installed package or code bundled elsewhere (e.g. by `scripts/run-ts.mjs`), as
 * `packageFilePath` (`src/package-file.ts`) finds every file the package ships.
 *
 * @example
 * ```ts
 * classifierAssetPath(); // '/…/packages/models/assets/mnist-classifier.safetensors'
 * ```
 */
export function classifierAssetPath(): string {
  return packageFilePath(
    `assets/${CLASSIFIER_ASSET}`,
    'loadMnistClassifier',
    'pass { path }, or regenerate it with `node scripts/run-ts.mjs packages/models/scripts/train-classifier.ts`',
  );
}

/**
 * Loads the shipped MNIST classifier (or the one at `path`) on the current backend. The
 * architecture comes from the file's metadata; `metadata` also records the seed, the training
 * budget and the measured test accuracy. Dispose it when done.
 *
 * @example
 * ```ts
 * const classifier = loadMnistClassifier();
 * classifier.metadata.testAccuracy; // e.g. '0.962'
 * ```
 */
export function loadMnistClassifier(options: { path?: string } = {}): MnistClassifier {
  const path = options.path ?? classifierAssetPath();
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch {
    throw new FluxionError('loadMnistClassifier', `cannot read '${path}'`);
  }
  const { tensors, metadata } = loadSafetensors(bytes);
  let architecture: ClassifierArchitecture;
  try {
    architecture = JSON.parse(metadata.architecture ?? 'null') ?? DEFAULT_CLASSIFIER;
  } catch {
    throw new FluxionError('loadMnistClassifier', `${path}: the 'architecture' metadata is not JSON`);
  }
  const classifier = new MnistClassifier(architecture);
  try {
    classifier.loadStateDict(tensors);
  } catch (e) {
    classifier.dispose();
    throw e;
  } finally {
    for (const t of Object.values(tensors)) t.dispose();
  }
  classifier.metadata = metadata;
  return classifier;
}

/**
 * Runs `fn` with `classifier`, or with the shipped one loaded for the call and disposed after.
 *
 * @example
 * ```ts
 * const acc = await withClassifier(undefined, (c) => c.accuracy(test.images, test.labels));
 * ```
 */
export async function withClassifier<T>(
  classifier: MnistClassifier | undefined,
  fn: (classifier: MnistClassifier) => Promise<T>,
): Promise<T> {
  if (classifier) return fn(classifier);
  const loaded = loadMnistClassifier();
  try {
    return await fn(loaded);
  } finally {
    loaded.dispose();
  }
}
