/**
 * The MNIST classifier behind the sample-quality metrics: a small ReLU MLP trained with Fluxion
 * itself by `packages/models/scripts/train-classifier.ts`, whose weights ship in
 * `packages/models/assets/mnist-classifier.safetensors`. Its penultimate activations are the feature
 * space of classifier-FID, and its predictions judge conditional models.
 */
import { Dense } from '@fluxion/nn';
import { scope, type Tensor } from '@fluxion/tensor';
import { packageFilePath } from '../package-file.js';
import { BatchClassifier, loadClassifierFile, type RowsInput, withLoaded } from './batch-classifier.js';

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
export type ImagesInput = RowsInput;

/**
 * An MLP digit classifier: logits = W₃ relu(W₂ relu(W₁ x + b₁) + b₂) + b₃ on pixels in [0, 1].
 *
 * Args:
 *   architecture: layer sizes (default {@link DEFAULT_CLASSIFIER}).
 *   options.seed: seed of the initialisation (default 0).
 *
 * Shape:
 *   input `[n, inputs]` → logits `[n, classes]`; `features` → `[n, features]`; `predict` → int32 `[n]`.
 *   The batched host-side helpers (`extractFeatures`, `classify`, `probabilities`, `accuracy`)
 *   come from {@link BatchClassifier}.
 *
 * @example
 * ```ts
 * const classifier = loadMnistClassifier();
 * const labels = classifier.predict(images);    // int32 [n]
 * const feats = classifier.features(images);    // [n, 64]
 * ```
 */
export class MnistClassifier extends BatchClassifier {
  readonly hidden: Dense;
  readonly penultimate: Dense;
  readonly output: Dense;

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

  get rowSize(): number {
    return this.architecture.inputs;
  }

  get featureSize(): number {
    return this.architecture.features;
  }

  get classes(): number {
    return this.architecture.classes;
  }

  protected get units(): [string, string] {
    return ['pixel', 'image'];
  }

  /** The penultimate (post-ReLU) activations `[n, features]` of images `[n, inputs]`. */
  features(x: Tensor): Tensor {
    return scope(() => this.penultimate.forward(this.hidden.forward(x)));
  }

  /** The logits `[n, classes]` of features `[n, features]`. */
  head(features: Tensor): Tensor {
    return this.output.forward(features);
  }
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
  return loadClassifierFile(
    'loadMnistClassifier',
    path,
    (a: ClassifierArchitecture) => new MnistClassifier(a),
    DEFAULT_CLASSIFIER,
  );
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
  return withLoaded(classifier, loadMnistClassifier, fn);
}
