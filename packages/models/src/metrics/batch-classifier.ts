/**
 * What the metric classifiers (the MNIST digits of `classifier.ts`, the spoken digits of
 * `audio-classifier.ts`) share: rows of a fixed size in, logits and penultimate features out, and
 * host-side helpers that run them without gradients over many rows in batches and read the results
 * back (features, predicted classes, class probabilities, accuracy), plus loading a shipped
 * classifier for the duration of one call.
 */
import { readFileSync } from 'node:fs';
import { noGrad } from '@fluxion/autograd';
import { loadSafetensors, Module } from '@fluxion/nn';
import { argmax, FluxionError, scope, softmax, type Tensor, tensor } from '@fluxion/tensor';

/** Rows for the host-side helpers: a tensor `[n, rowSize]`, or rows stored one after another. */
export type RowsInput = Tensor | Float32Array;

/**
 * A classifier of fixed-size rows (images, clips) whose penultimate layer is a feature space.
 * Subclasses define {@link features}, {@link head}, {@link rowSize}, {@link featureSize} and
 * {@link classes}; the batched host-side helpers are shared.
 *
 * @example
 * ```ts
 * const classifier: BatchClassifier = loadMnistClassifier();
 * const probs = await classifier.probabilities(images); // Float32Array, n × 10
 * ```
 */
export abstract class BatchClassifier extends Module {
  /** The metadata of the file the weights came from (empty for a fresh classifier). */
  metadata: Record<string, string> = {};

  /** Values per input row (784 pixels, 8192 samples). */
  abstract get rowSize(): number;
  /** Width of the penultimate layer, {@link features}' output. */
  abstract get featureSize(): number;
  /** Number of classes, {@link forward}'s output width. */
  abstract get classes(): number;
  /** What error messages call one value and one row (`['pixel', 'image']`, `['sample', 'clip']`). */
  protected abstract get units(): [value: string, row: string];
  /** The penultimate activations `[n, featureSize]` of rows `[n, rowSize]`. */
  abstract features(x: Tensor): Tensor;
  /** The logits `[n, classes]` of penultimate activations `[n, featureSize]`. */
  abstract head(features: Tensor): Tensor;

  /**
   * The logits `[n, classes]` of rows `[n, rowSize]`: `head(features(x))`.
   *
   * @example
   * ```ts
   * classifier.forward(x).shape; // [n, 10]
   * ```
   */
  forward(x: Tensor): Tensor {
    return scope(() => this.head(this.features(x)));
  }

  /**
   * The most likely class of each row, int32 `[n]` (no gradient recorded).
   *
   * @example
   * ```ts
   * classifier.predict(x); // int32 [n]
   * ```
   */
  predict(x: Tensor): Tensor {
    return noGrad(() => scope(() => argmax(this.forward(x), 1)));
  }

  /**
   * Features of many rows, read back to the host: `[n · featureSize]` row by row. Arrays are
   * processed `batchSize` rows at a time; a tensor in one pass.
   *
   * @example
   * ```ts
   * const feats = await classifier.extractFeatures(test.images); // Float32Array, 1000 × 64
   * ```
   */
  async extractFeatures(rows: RowsInput, batchSize = 500): Promise<Float32Array> {
    const [features] = await this.mapBatches(rows, batchSize, (x) => [this.features(x)]);
    return concatArrays(features as Float32Array[], Float32Array);
  }

  /**
   * Predicted classes of many rows, read back to the host.
   *
   * @example
   * ```ts
   * const predicted = await classifier.classify(test.images); // Int32Array [1000]
   * ```
   */
  async classify(rows: RowsInput, batchSize = 500): Promise<Int32Array> {
    const [predicted] = await this.mapBatches(rows, batchSize, (x) => [this.predict(x)]);
    return concatArrays(predicted as Int32Array[], Int32Array);
  }

  /**
   * Class probabilities (the softmax of the logits) of many rows, read back to the host:
   * `[n · classes]` row by row, what an Inception score is computed from.
   *
   * @example
   * ```ts
   * const p = await classifier.probabilities(clips); // Float32Array, n × 10, rows sum to 1
   * ```
   */
  async probabilities(rows: RowsInput, batchSize = 500): Promise<Float32Array> {
    return (await this.featuresAndProbabilities(rows, batchSize)).probabilities;
  }

  /**
   * The features and the class probabilities of many rows from one forward pass, read back to the
   * host (`[n · featureSize]` and `[n · classes]`, row by row).
   *
   * @example
   * ```ts
   * const { features, probabilities } = await classifier.featuresAndProbabilities(clips);
   * ```
   */
  async featuresAndProbabilities(
    rows: RowsInput,
    batchSize = 500,
  ): Promise<{ features: Float32Array; probabilities: Float32Array }> {
    const [features, probabilities] = await this.mapBatches(rows, batchSize, (x) => {
      const f = this.features(x);
      return [f, scope(() => softmax(this.head(f), 1))];
    });
    return {
      features: concatArrays(features as Float32Array[], Float32Array),
      probabilities: concatArrays(probabilities as Float32Array[], Float32Array),
    };
  }

  /**
   * The fraction of rows whose predicted class is their label.
   *
   * @example
   * ```ts
   * await classifier.accuracy(test.images, test.labels); // e.g. 0.967
   * ```
   */
  async accuracy(rows: RowsInput, labels: ArrayLike<number>, batchSize = 500): Promise<number> {
    const predicted = await this.classify(rows, batchSize);
    if (predicted.length !== labels.length) {
      throw new FluxionError(
        this.constructor.name,
        `${predicted.length} ${this.units[1]}s but ${labels.length} labels`,
      );
    }
    let correct = 0;
    for (let i = 0; i < predicted.length; i++) if (predicted[i] === labels[i]) correct++;
    return correct / predicted.length;
  }

  /**
   * Runs `fn` without gradients on batches of rows and reads its results back: for each output of
   * `fn`, the host arrays of the batches in order.
   */
  private async mapBatches(
    rows: RowsInput,
    batchSize: number,
    fn: (x: Tensor) => Tensor[],
  ): Promise<(Float32Array | Int32Array)[][]> {
    const size = this.rowSize;
    const outputs: (Float32Array | Int32Array)[][] = [];
    const run = async (x: Tensor) => {
      const ys = noGrad(() => fn(x));
      try {
        for (const [i, y] of ys.entries()) {
          outputs[i] ??= [];
          outputs[i].push((await y.data()) as Float32Array | Int32Array);
        }
      } finally {
        for (const y of ys) y.dispose();
      }
    };
    if (!(rows instanceof Float32Array)) {
      if (rows.rank !== 2 || rows.shape[1] !== size) {
        throw new FluxionError(
          this.constructor.name,
          `expected ${this.units[1]}s [n, ${size}], got [${rows.shape.join(', ')}]`,
        );
      }
      await run(rows);
      return outputs;
    }
    if (rows.length % size !== 0) {
      throw new FluxionError(
        this.constructor.name,
        `${rows.length} ${this.units[0]}s are not a whole number of ${size}-${this.units[0]} ${this.units[1]}s`,
      );
    }
    if (!Number.isInteger(batchSize) || batchSize <= 0)
      throw new FluxionError(this.constructor.name, `batchSize must be a positive integer, got ${batchSize}`);
    const count = rows.length / size;
    for (let start = 0; start < count; start += batchSize) {
      const n = Math.min(batchSize, count - start);
      const x = tensor(rows.subarray(start * size, (start + n) * size), [n, size]);
      try {
        await run(x);
      } finally {
        x.dispose();
      }
    }
    return outputs;
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
 * Runs `fn` with `given`, or with a classifier from `load` that lives for the call only (disposed
 * after, also when `fn` throws).
 *
 * @example
 * ```ts
 * const acc = await withLoaded(undefined, loadMnistClassifier, (c) => c.accuracy(images, labels));
 * ```
 */
export async function withLoaded<C extends { dispose(): void }, T>(
  given: C | undefined,
  load: () => C,
  fn: (classifier: C) => Promise<T>,
): Promise<T> {
  if (given) return fn(given);
  const loaded = load();
  try {
    return await fn(loaded);
  } finally {
    loaded.dispose();
  }
}

/**
 * Reads a classifier's safetensors file: builds it with `make` from the JSON `architecture` in the
 * file's metadata (or `fallback` when there is none), loads its weights and keeps the metadata.
 * Errors ({@link FluxionError} from `op`, naming the file): it cannot be read, its architecture is
 * not JSON, or its tensors do not fit the architecture.
 *
 * @example
 * ```ts
 * const c = loadClassifierFile('loadMnistClassifier', path, (a) => new MnistClassifier(a), DEFAULT_CLASSIFIER);
 * ```
 */
export function loadClassifierFile<A, C extends BatchClassifier>(
  op: string,
  path: string,
  make: (architecture: A) => C,
  fallback: A,
): C {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new FluxionError(op, `cannot read '${path}'${code ? ` (${code})` : ''}`);
  }
  let file: ReturnType<typeof loadSafetensors>;
  try {
    file = loadSafetensors(bytes);
  } catch (e) {
    throw new FluxionError(op, `${path} is not a safetensors file: ${(e as Error).message}`);
  }
  const { tensors, metadata } = file;
  try {
    let architecture: A;
    try {
      architecture = JSON.parse(metadata.architecture ?? 'null') ?? fallback;
    } catch {
      throw new FluxionError(op, `${path}: the 'architecture' metadata is not JSON`);
    }
    const classifier = make(architecture);
    try {
      classifier.loadStateDict(tensors);
    } catch (e) {
      classifier.dispose();
      throw new FluxionError(op, `${path}: the weights do not fit the architecture: ${(e as Error).message}`);
    }
    classifier.metadata = metadata;
    return classifier;
  } finally {
    for (const t of Object.values(tensors)) t.dispose();
  }
}
