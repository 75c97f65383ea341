/**
 * The spoken-digit classifier behind the audio metrics: a log-mel front end and a small 1-D
 * convolutional net over the frames (mel bands as channels), trained with Fluxion itself by
 * `packages/models/scripts/train-audio-classifier.ts` on the FSDD training takes, whose weights ship
 * in `packages/models/assets/fsdd-classifier.safetensors`. Its penultimate activations are the
 * feature space of the audio Fréchet distance; its predictions judge conditional audio models and
 * give the Inception score.
 *
 * The shipped weights classify 99.0 % (297 of 300) of FSDD's test takes (seed 0, 25 epochs of the
 * 2,700 training takes with shift and noise augmentation; 876 s on lavapipe, Mesa's CPU WebGPU
 * driver, on a machine of 2 shared cores). FSDD's test takes (0–4) come from the same six speakers
 * as its training takes (5–49), so this measures generalisation to new takes of known speakers
 * (within-speaker generalisation), not to new speakers.
 */
import { Conv1d, Dense } from '@fluxion/nn';
import {
  add,
  concat,
  div,
  logMel,
  max,
  mean,
  melSpectrogram,
  mul,
  relu,
  scope,
  sqrt,
  type Tensor,
} from '@fluxion/tensor';
import { packageFilePath } from '../package-file.js';
import { BatchClassifier, loadClassifierFile, type RowsInput, withLoaded } from './batch-classifier.js';

/** The file name of the shipped weights inside `packages/models/assets/`. */
export const AUDIO_CLASSIFIER_ASSET = 'fsdd-classifier.safetensors';

/** The front end and layer sizes of a {@link SpokenDigitClassifier}. */
export interface AudioClassifierArchitecture {
  /** Samples per clip (FSDD: 8192). */
  length: number;
  /** Samples per second (FSDD: 8000). */
  sampleRate: number;
  /** DFT size of the STFT. */
  nFft: number;
  /** Samples between frames. */
  hopLength: number;
  /** Mel bands: the input channels of the first convolution. */
  nMels: number;
  /** Channels of the three convolutions. */
  channels: [number, number, number];
  /** Kernel size of the convolutions. */
  kernel: number;
  /** Width of the penultimate dense layer: the feature dimension of the Fréchet distance. */
  features: number;
  classes: number;
}

/**
 * The shipped architecture: 8192 samples at 8 kHz → log-mel `[40, 65]` (nFft 256, hop 128) →
 * Conv1d 40→64 → Conv1d 64→64 stride 2 → Conv1d 64→96 stride 2 (kernel 5, ReLU) → mean and max over
 * the frames → Dense 192→64 (ReLU, the features) → Dense 64→10: 77,226 parameters, 303 KB as
 * float32.
 */
export const DEFAULT_AUDIO_CLASSIFIER: AudioClassifierArchitecture = {
  length: 8192,
  sampleRate: 8000,
  nFft: 256,
  hopLength: 128,
  nMels: 40,
  channels: [64, 64, 96],
  kernel: 5,
  features: 64,
  classes: 10,
};

/** The floor of the mel power, relative to a clip of unit RMS (−60 dB): silence reads as it. */
const MEL_FLOOR = 1e-6;
/** Centre and scale of the log-mel values (about their mean and spread over FSDD's clips). */
const LOG_MEL_CENTRE = -8;
const LOG_MEL_SCALE = 6;

/**
 * The classifier's front end on its own: clips `[n, length]` scaled to unit RMS (so the gain of a
 * clip does not matter), their log-mel spectrogram `log(max(mel, 1e-6))` of the power spectrum,
 * centred and scaled by fixed constants: `[n, nMels, frames]`, `frames = ⌊length / hop⌋ + 1`.
 * A silent clip stays silent (all values at the floor).
 *
 * @example
 * ```ts
 * logMelFeatures(clips, DEFAULT_AUDIO_CLASSIFIER).shape; // [n, 40, 65]
 * ```
 */
export function logMelFeatures(clips: Tensor, architecture: AudioClassifierArchitecture): Tensor {
  const { sampleRate, nFft, hopLength, nMels } = architecture;
  return scope(() => {
    const rms = sqrt(add(mean(mul(clips, clips), 1, true), 1e-10));
    const mel = melSpectrogram(div(clips, rms), { sampleRate, nFft, hopLength, nMels });
    return div(add(logMel(mel, MEL_FLOOR), -LOG_MEL_CENTRE), LOG_MEL_SCALE);
  });
}

/**
 * A spoken-digit classifier: {@link logMelFeatures} → three 1-D convolutions over the frames with
 * the mel bands as channels (ReLU; the second and third of stride 2) → the mean and the maximum of
 * each channel over the frames (so where the digit sits in the clip matters little) → a ReLU dense
 * layer, the features → the logits.
 *
 * Args:
 *   architecture: front end and layer sizes (default {@link DEFAULT_AUDIO_CLASSIFIER}).
 *   options.seed: seed of the initialisation (default 0).
 *
 * Shape:
 *   clips `[n, length]` (samples, any gain) → logits `[n, classes]`; `features` → `[n, features]`;
 *   `predict` → int32 `[n]`. The batched host-side helpers (`extractFeatures`, `classify`,
 *   `probabilities`, `accuracy`) come from {@link BatchClassifier}.
 *
 * @example
 * ```ts
 * const classifier = loadSpokenDigitClassifier();
 * const { test } = loadFsdd();
 * await classifier.accuracy(test.audio, test.labels); // 0.99 for the shipped weights
 * const feats = await classifier.extractFeatures(test.audio); // Float32Array, 300 × 64
 * ```
 */
export class SpokenDigitClassifier extends BatchClassifier {
  readonly conv1: Conv1d;
  readonly conv2: Conv1d;
  readonly conv3: Conv1d;
  readonly penultimate: Dense;
  readonly output: Dense;

  constructor(
    readonly architecture: AudioClassifierArchitecture = DEFAULT_AUDIO_CLASSIFIER,
    options: { seed?: number } = {},
  ) {
    super();
    const { nMels, channels, kernel, features, classes } = architecture;
    const seed = options.seed ?? 0;
    const padding = kernel >> 1;
    this.conv1 = new Conv1d(nMels, channels[0], kernel, { padding, seed: seed * 10 + 1 });
    this.conv2 = new Conv1d(channels[0], channels[1], kernel, { padding, stride: 2, seed: seed * 10 + 2 });
    this.conv3 = new Conv1d(channels[1], channels[2], kernel, { padding, stride: 2, seed: seed * 10 + 3 });
    this.penultimate = new Dense(2 * channels[2], features, { activation: 'relu', seed: seed * 10 + 4 });
    this.output = new Dense(features, classes, { seed: seed * 10 + 5 });
  }

  get rowSize(): number {
    return this.architecture.length;
  }

  get featureSize(): number {
    return this.architecture.features;
  }

  get classes(): number {
    return this.architecture.classes;
  }

  protected get units(): [string, string] {
    return ['sample', 'clip'];
  }

  /**
   * The penultimate (post-ReLU) activations `[n, features]` of clips `[n, length]`.
   *
   * @example
   * ```ts
   * classifier.features(clips).shape; // [n, 64]
   * ```
   */
  features(clips: Tensor): Tensor {
    return scope(() => this.trunk(logMelFeatures(clips, this.architecture)));
  }

  /**
   * The network after the front end: log-mel features `[n, nMels, frames]` → `[n, features]`
   * (the training script computes the front end once per batch without gradients).
   *
   * @example
   * ```ts
   * classifier.trunk(logMelFeatures(clips, classifier.architecture)).shape; // [n, 64]
   * ```
   */
  trunk(logMel: Tensor): Tensor {
    return scope(() => {
      const h = relu(this.conv3.forward(relu(this.conv2.forward(relu(this.conv1.forward(logMel))))));
      return this.penultimate.forward(concat([mean(h, 2), max(h, 2)], 1));
    });
  }

  /**
   * The logits `[n, classes]` of features `[n, features]` (`forward(clips)` is
   * `head(features(clips))`).
   *
   * @example
   * ```ts
   * classifier.head(classifier.features(clips)).shape; // [n, 10]
   * ```
   */
  head(features: Tensor): Tensor {
    return this.output.forward(features);
  }
}

/** Clips for the host-side helpers: a tensor `[n, length]` or clips stored one after another. */
export type ClipsInput = RowsInput;

/**
 * Where the shipped weights are (`assets/` of the package, found as `packageFilePath` finds every
 * file the package ships).
 *
 * @example
 * ```ts
 * audioClassifierAssetPath(); // '/…/packages/models/assets/fsdd-classifier.safetensors'
 * ```
 */
export function audioClassifierAssetPath(): string {
  return packageFilePath(
    `assets/${AUDIO_CLASSIFIER_ASSET}`,
    'loadSpokenDigitClassifier',
    'pass { path }, or regenerate it with `node scripts/run-ts.mjs packages/models/scripts/train-audio-classifier.ts`',
  );
}

/**
 * Loads the shipped spoken-digit classifier (or the one at `path`) on the current backend. The
 * architecture comes from the file's metadata; `metadata` also records the seed, the training
 * budget, the augmentation and the measured test accuracy. Dispose it when done.
 *
 * @example
 * ```ts
 * const classifier = loadSpokenDigitClassifier();
 * classifier.metadata.testAccuracy; // '0.9900'
 * ```
 */
export function loadSpokenDigitClassifier(options: { path?: string } = {}): SpokenDigitClassifier {
  return loadClassifierFile(
    'loadSpokenDigitClassifier',
    options.path ?? audioClassifierAssetPath(),
    (a: AudioClassifierArchitecture) => new SpokenDigitClassifier(a),
    DEFAULT_AUDIO_CLASSIFIER,
  );
}

/**
 * Runs `fn` with `classifier`, or with the shipped spoken-digit classifier loaded for the call and
 * disposed after.
 *
 * @example
 * ```ts
 * const acc = await withAudioClassifier(undefined, (c) => c.accuracy(test.audio, test.labels));
 * ```
 */
export async function withAudioClassifier<T>(
  classifier: SpokenDigitClassifier | undefined,
  fn: (classifier: SpokenDigitClassifier) => Promise<T>,
): Promise<T> {
  return withLoaded(classifier, loadSpokenDigitClassifier, fn);
}
