/**
 * Audio metrics: the shipped spoken-digit classifier's test accuracy and front end, the Inception
 * score's identities, the Fréchet distance of real clips against real clips and against noise (the
 * baselines), and conditional accuracy with stand-in models that return real clips. On the CPU
 * backend, with subsets of the 300 test takes where a full pass is not the point.
 */
import { memoryStats, mul, setBackend, type Tensor, tensor } from '@fluxion/tensor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AudioDataset, type AudioSplit, loadFsdd } from '../src/data/audio-files.js';
import {
  AUDIO_CLASSIFIER_ASSET,
  audioBaselines,
  audioClassifierAssetPath,
  audioConditionalAccuracy,
  audioFrechetDistance,
  audioModelScores,
  DEFAULT_AUDIO_CLASSIFIER,
  inceptionScore,
  loadSpokenDigitClassifier,
  logMelFeatures,
  type SpokenDigitClassifier,
} from '../src/metrics/index.js';

const LENGTH = 8192;

/** Every `step`-th clip of a split (FSDD's splits are ordered digit, speaker, take: this keeps the balance). */
function everyNth(split: AudioSplit, step: number): AudioSplit {
  const picks = Array.from({ length: Math.floor(split.count / step) }, (_, i) => i * step);
  const audio = new Float32Array(picks.length * split.length);
  for (const [i, p] of picks.entries()) {
    audio.set(split.audio.subarray(p * split.length, (p + 1) * split.length), i * split.length);
  }
  const pick = (a: Int32Array) => Int32Array.from(picks, (p) => a[p]);
  return {
    audio,
    labels: pick(split.labels),
    speakers: pick(split.speakers),
    takes: pick(split.takes),
    count: picks.length,
    length: split.length,
  };
}

describe('inceptionScore', () => {
  it('is 1 for uniform predictions and for one class predicted everywhere', () => {
    expect(inceptionScore(new Float32Array(50 * 10).fill(0.1)).mean).toBeCloseTo(1, 12);
    const allSevens = new Float32Array(40 * 10);
    for (let i = 0; i < 40; i++) allSevens[i * 10 + 7] = 1;
    const sevens = inceptionScore(allSevens);
    expect(sevens.mean).toBeCloseTo(1, 12);
    expect([sevens.std, sevens.splits]).toEqual([0, 1]);
  });

  it('is the number of classes for confident predictions balanced over them', () => {
    const confident = new Float32Array(100 * 10);
    for (let i = 0; i < 100; i++) confident[i * 10 + (i % 10)] = 1;
    expect(inceptionScore(confident).mean).toBeCloseTo(10, 12);
    // Ten parts of a seeded shuffle of 2,000 such rows: each near-balanced, so near 10.
    const many = new Float32Array(2000 * 10);
    for (let i = 0; i < 2000; i++) many[i * 10 + (i % 10)] = 1;
    const split = inceptionScore(many, { splits: 10 });
    expect(split.splits).toBe(10);
    expect(split.mean).toBeGreaterThan(9.8);
    expect(split.mean).toBeLessThanOrEqual(10);
    expect(split.std).toBeGreaterThan(0);
    expect(split.std).toBeLessThan(0.25);
    const twoClasses = Float32Array.from({ length: 6 * 2 }, (_, i) => ((i >> 1) % 2 === i % 2 ? 1 : 0));
    expect(inceptionScore(twoClasses, { classes: 2 }).mean).toBeCloseTo(2, 12);
  });

  it('matches the closed form exp(H(mean p) − mean H(p)) on soft predictions, and spreads over splits', () => {
    const p = [0.7, 0.2, 0.1, 0.1, 0.6, 0.3, 0.2, 0.2, 0.6, 0.5, 0.4, 0.1];
    const entropy = (q: number[]) => -q.reduce((s, v) => s + (v > 0 ? v * Math.log(v) : 0), 0);
    const rows = [0, 1, 2, 3].map((i) => p.slice(i * 3, i * 3 + 3));
    const marginal = [0, 1, 2].map((c) => rows.reduce((s, r) => s + r[c], 0) / 4);
    const expected = Math.exp(entropy(marginal) - rows.reduce((s, r) => s + entropy(r), 0) / 4);
    expect(inceptionScore(p, { classes: 3 }).mean).toBeCloseTo(expected, 12);
    const halves = inceptionScore(p, { classes: 3, splits: 2 });
    expect(halves.std).toBeGreaterThan(0);
    // Rows sorted by class still split into alike parts (a seeded shuffle deals them).
    const sorted = new Float32Array(100 * 10);
    for (let i = 0; i < 100; i++) sorted[i * 10 + Math.floor(i / 10)] = 1;
    expect(inceptionScore(sorted, { splits: 5 }).mean).toBeGreaterThan(7);
  });

  it('rejects ragged rows, rows that are not distributions and bad splits', () => {
    expect(() => inceptionScore(new Float32Array(15).fill(0.1))).toThrow(
      /not a whole, non-zero number of rows/,
    );
    expect(() => inceptionScore(new Float32Array(10).fill(0.2))).toThrow(/row 0 sums to 2/);
    expect(() => inceptionScore([1.5, -0.5], { classes: 2 })).toThrow(/negative or NaN/);
    expect(() => inceptionScore(new Float32Array(20).fill(0.1), { splits: 3 })).toThrow(
      /splits must be an integer in \[1, 2\]/,
    );
  });
});

describe('the shipped spoken-digit classifier', () => {
  let classifier: SpokenDigitClassifier;
  let fsdd: AudioDataset;

  beforeAll(() => {
    setBackend('cpu');
    fsdd = loadFsdd();
    classifier = loadSpokenDigitClassifier();
  });
  afterAll(() => classifier.dispose());

  it('is found in the package assets, small, and describes itself', () => {
    expect(audioClassifierAssetPath().endsWith(AUDIO_CLASSIFIER_ASSET)).toBe(true);
    expect(classifier.architecture).toEqual(DEFAULT_AUDIO_CLASSIFIER);
    expect(classifier.parameterCount() * 4).toBeLessThan(1 << 20);
    expect(classifier.metadata.format).toBe('fluxion-fsdd-classifier/1');
    expect(classifier.metadata.seed).toBe('0');
    expect(Number(classifier.metadata.testAccuracy)).toBeGreaterThanOrEqual(0.95);
  });

  it('classifies at least 95% of the 300 FSDD test takes, as its metadata records', async () => {
    const accuracy = await classifier.accuracy(fsdd.test.audio, fsdd.test.labels, 100);
    expect(accuracy).toBeGreaterThanOrEqual(0.95);
    // Trained on WebGPU, measured here on the CPU backend: at most one clip may flip.
    expect(Math.abs(accuracy - Number(classifier.metadata.testAccuracy))).toBeLessThanOrEqual(1 / 300 + 1e-9);
  });

  it('has a front end that ignores the gain and gives [n, 40, 65] log-mels', async () => {
    const x = tensor(fsdd.test.audio.subarray(0, 2 * LENGTH), [2, LENGTH]);
    const quiet = mul(x, 0.05);
    const a = logMelFeatures(x, classifier.architecture);
    const b = logMelFeatures(quiet, classifier.architecture);
    expect(a.shape).toEqual([2, 40, 65]);
    const [da, db] = [await a.data(), await b.data()];
    expect(Math.max(...da.map((v, i) => Math.abs(v - db[i])))).toBeLessThan(1e-3);
    for (const t of [x, quiet, a, b]) t.dispose();
  });

  it('rejects a missing weights file and clips of the wrong length clearly', async () => {
    expect(() => loadSpokenDigitClassifier({ path: '/no/such/fsdd.safetensors' })).toThrow(
      /loadSpokenDigitClassifier.*cannot read '\/no\/such\/fsdd\.safetensors'/,
    );
    await expect(classifier.classify(new Float32Array(8000))).rejects.toThrow(
      /8000 samples are not a whole number of 8192-sample clips/,
    );
    const wrong = tensor(new Float32Array(2 * 100), [2, 100]);
    await expect(classifier.extractFeatures(wrong)).rejects.toThrow(
      /expected clips \[n, 8192\], got \[2, 100\]/,
    );
    wrong.dispose();
  });

  it('puts real clips near real clips and noise far away, with the baselines', async () => {
    const before = memoryStats().liveTensors;
    // 60 test takes (6 per digit) and 60 training takes, to keep the CPU pass short.
    const small: AudioDataset = { ...fsdd, test: everyNth(fsdd.test, 5), train: everyNth(fsdd.train, 45) };
    const { real, noise } = await audioBaselines({ classifier, dataset: small });
    expect(memoryStats().liveTensors).toBe(before);
    expect(real.count).toBe(60);
    expect(real.accuracy).toBeGreaterThanOrEqual(0.93);
    expect(real.inceptionScore.mean).toBeGreaterThan(7);
    expect(noise.accuracy).toBeLessThan(0.3);
    expect(noise.inceptionScore.mean).toBeLessThan(3);
    expect(noise.frechetDistance).toBeGreaterThan(10 * real.frechetDistance);
    // The stand-alone distance: a set against itself is 0.
    const few = small.test.audio.subarray(0, 30 * LENGTH);
    expect(await audioFrechetDistance(few, few, { classifier })).toBeLessThan(1e-6);
  });

  /** A stand-in conditional model that returns real test takes of the asked digit + `offset`. */
  function clipsOf(offset: number, calls: number[][] = []) {
    const { test } = fsdd;
    const byDigit: number[][] = Array.from({ length: 10 }, () => []);
    for (let i = 0; i < test.count; i++) byDigit[test.labels[i]].push(i);
    return {
      conditional: true,
      sample(n: number, options: { labels?: readonly number[] } = {}): Tensor {
        const labels = options.labels ?? [];
        calls.push([...labels]);
        const out = new Float32Array(n * LENGTH);
        labels.forEach((l, i) => {
          const pool = byDigit[(l + offset) % 10];
          const src = pool[(i * 7) % pool.length];
          out.set(test.audio.subarray(src * LENGTH, (src + 1) * LENGTH), i * LENGTH);
        });
        return tensor(out, [n, LENGTH]);
      },
    };
  }

  it('measures conditional accuracy: high for the asked digits, near zero for others', async () => {
    const calls: number[][] = [];
    const right = await audioConditionalAccuracy(clipsOf(0, calls), 60, { classifier, batchSize: 25 });
    expect(right).toBeGreaterThanOrEqual(0.9);
    expect(calls.map((c) => c.length)).toEqual([25, 25, 10]);
    expect(calls[1].slice(0, 3)).toEqual([5, 6, 7]);
    const wrong = await audioConditionalAccuracy(clipsOf(1), 40, { classifier });
    expect(wrong).toBeLessThan(0.1);
    await expect(
      audioConditionalAccuracy({ ...clipsOf(0), conditional: false }, 10, { classifier }),
    ).rejects.toThrow(/audioConditionalAccuracy.*not conditional/);
  });

  it('scores a model in one pass: accuracy, Inception score and distance to the reference', async () => {
    const reference = everyNth(fsdd.test, 6).audio; // 50 test takes
    const scores = await audioModelScores(clipsOf(0), 50, { classifier, reference });
    expect(scores.count).toBe(50);
    expect(scores.accuracy).toBeGreaterThanOrEqual(0.9);
    expect(scores.inceptionScore.mean).toBeGreaterThan(6);
    expect(scores.frechetDistance).toBeGreaterThanOrEqual(0);
    const short = { conditional: true, sample: (n: number) => tensor(new Float32Array(n * 10), [n, 10]) };
    await expect(audioModelScores(short, 4, { classifier, reference })).rejects.toThrow(
      /the model gave clips \[4, 10\], the classifier takes \[n, 8192\]/,
    );
  });
});
