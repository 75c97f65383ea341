/**
 * Trains the spoken-digit classifier of the audio metrics with Fluxion (WebGPU by default, the CPU
 * backend with `--backend cpu`) on the 2,700 FSDD training takes and writes
 * `packages/models/assets/fsdd-classifier.safetensors`, with its architecture, seed, training
 * budget, augmentation and test accuracy in the file's metadata. Deterministic on one backend: the
 * same seed gives the same weights. Run from the repository root:
 *
 *   node scripts/run-ts.mjs packages/models/scripts/train-audio-classifier.ts [--epochs 25]
 *     [--lr 2e-3] [--batch-size 50] [--seed 0] [--shift 1600] [--noise 0.5] [--backend webgpu]
 *     [--out PATH]
 *
 * Data: `loadFsdd()` (8192 samples at 8 kHz); the training takes 5–49, each clip moved by a random
 * whole-sample shift of at most `--shift` samples (zeros shifted in) and, with probability
 * `--noise`, added white Gaussian noise at a random signal-to-noise ratio of 10 to 40 dB, both
 * drawn anew every epoch by Philox from (seed, epoch, clip) — so the judge of generated clips
 * tolerates offsets and a noise floor. The gain needs no augmentation: the front end scales every
 * clip to unit RMS. Adam with a cosine learning-rate decay to 0. Accuracy is measured on the 300
 * test takes 0–4, which training never sees (same six speakers: within-speaker generalisation).
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { noGrad } from '@fluxion/autograd';
import { Adam, cosineAnnealingLR, crossEntropy, LRScheduler, saveSafetensors } from '@fluxion/nn';
import { initWebGPU, philox4x32, scope, seedToKey, setBackend } from '@fluxion/tensor';
import { type AudioSplit, loadFsdd } from '../src/data/audio-files.js';
import {
  AUDIO_CLASSIFIER_ASSET,
  DEFAULT_AUDIO_CLASSIFIER,
  logMelFeatures,
  SpokenDigitClassifier,
} from '../src/metrics/audio-classifier.js';
import { audioBatches } from '../src/models/audio-model.js';

const { values: args } = parseArgs({
  options: {
    epochs: { type: 'string', default: '25' },
    lr: { type: 'string', default: '2e-3' },
    'batch-size': { type: 'string', default: '50' },
    seed: { type: 'string', default: '0' },
    shift: { type: 'string', default: '1600' },
    noise: { type: 'string', default: '0.5' },
    backend: { type: 'string', default: 'webgpu' },
    out: { type: 'string', default: `packages/models/assets/${AUDIO_CLASSIFIER_ASSET}` },
  },
});
const epochs = Number(args.epochs);
const lr = Number(args.lr);
const batchSize = Number(args['batch-size']);
const seed = Number(args.seed);
const maxShift = Number(args.shift);
const noiseChance = Number(args.noise);
const architecture = DEFAULT_AUDIO_CLASSIFIER;

/**
 * A copy of `split` whose clip i is shifted by s ∈ [−maxShift, maxShift] samples and, with
 * probability `noiseChance`, has white noise added at an SNR of 10–40 dB (relative to the clip's
 * RMS), drawn by Philox from (seed, epoch, i).
 */
function augmentedCopy(split: AudioSplit, epoch: number): AudioSplit {
  const { length, count } = split;
  const audio = new Float32Array(split.audio.length);
  const [k0, k1] = seedToKey(seed);
  const words = new Uint32Array(4);
  const unit = (w: number) => (w + 0.5) / 2 ** 32;
  for (let i = 0; i < count; i++) {
    philox4x32(i, epoch, 0xa0d10, 0, k0, k1, words);
    const shift = (words[0] % (2 * maxShift + 1)) - maxShift;
    const noisy = unit(words[1]) < noiseChance;
    const snrDb = 10 + 30 * unit(words[2]);
    const src = split.audio.subarray(i * length, (i + 1) * length);
    const dst = audio.subarray(i * length, (i + 1) * length);
    for (let t = Math.max(0, shift); t < Math.min(length, length + shift); t++) dst[t] = src[t - shift];
    if (!noisy) continue;
    let power = 0;
    for (let t = 0; t < length; t++) power += src[t] * src[t];
    const sigma = Math.sqrt(power / length) * 10 ** (-snrDb / 20);
    for (let t = 0; t < length; t += 2) {
      philox4x32(i, epoch, 0xa0d11, t, k0, k1, words);
      const r = sigma * Math.sqrt(-2 * Math.log(unit(words[0])));
      const a = 2 * Math.PI * unit(words[1]);
      dst[t] += r * Math.cos(a);
      if (t + 1 < length) dst[t + 1] += r * Math.sin(a);
    }
  }
  return { ...split, audio };
}

let adapter = 'CPU backend';
if (args.backend === 'webgpu') {
  const backend = await initWebGPU();
  adapter = backend.adapterInfo.description || backend.adapterInfo.vendor || 'WebGPU';
  setBackend('webgpu');
} else setBackend('cpu');

const { train, test } = loadFsdd();
const classifier = new SpokenDigitClassifier(architecture, { seed });
const optimizer = new Adam(classifier.parameters(), { lr });
const stepsPerEpoch = Math.floor(train.count / batchSize);
const scheduler = new LRScheduler(optimizer, cosineAnnealingLR(epochs * stepsPerEpoch));
console.log(
  `training ${classifier} (${classifier.parameterCount()} parameters) on ${train.count} FSDD clips ` +
    `shifted by ≤ ${maxShift} samples, noisy with probability ${noiseChance}: ${epochs} epochs, ` +
    `batch ${batchSize}, Adam lr ${lr} with cosine decay, seed ${seed}, on ${adapter}`,
);

const started = performance.now();
let accuracy = 0;
for (let epoch = 0; epoch < epochs; epoch++) {
  let lossSum = 0;
  let steps = 0;
  for (const { audio, labels } of audioBatches(augmentedCopy(train, epoch), batchSize, { seed, epoch })) {
    const features = noGrad(() => logMelFeatures(audio, architecture));
    const loss = scope(() => {
      optimizer.zeroGrad();
      const l = crossEntropy(classifier.head(classifier.trunk(features)), labels);
      l.backward();
      optimizer.step();
      scheduler.step();
      return l;
    });
    lossSum += await loss.item();
    steps++;
    for (const t of [loss, features, audio, labels]) t.dispose();
  }
  accuracy = await classifier.accuracy(test.audio, test.labels, 100);
  const seconds = (performance.now() - started) / 1000;
  console.log(
    `epoch ${epoch + 1}/${epochs}  loss ${(lossSum / steps).toFixed(4)}  test accuracy ${(100 * accuracy).toFixed(1)}%  (${seconds.toFixed(0)} s)`,
  );
}
const seconds = (performance.now() - started) / 1000;

const bytes = await saveSafetensors(classifier.stateDict(), {
  format: 'fluxion-fsdd-classifier/1',
  architecture: JSON.stringify(architecture),
  testAccuracy: accuracy.toFixed(4),
  testSet:
    'the 300 FSDD test takes 0–4 (loadFsdd().test); the same six speakers as training: within-speaker generalisation',
  trainCount: String(train.count),
  seed: String(seed),
  epochs: String(epochs),
  batchSize: String(batchSize),
  optimizer: `Adam(lr=${lr}), cosine decay to 0`,
  augmentation: `random shifts of at most ${maxShift} samples; white noise at 10–40 dB SNR with probability ${noiseChance}`,
  trainedOn: adapter,
  trainingSeconds: seconds.toFixed(0),
  producedBy: 'packages/models/scripts/train-audio-classifier.ts',
});
const out = resolve(args.out);
mkdirSync(dirname(out), { recursive: true });
writeFileSync(`${out}.tmp`, bytes);
renameSync(`${out}.tmp`, out);
console.log(
  `test accuracy ${(100 * accuracy).toFixed(1)}% after ${seconds.toFixed(0)} s; wrote ${out} (${(bytes.length / 1024).toFixed(0)} KB)`,
);
classifier.dispose();
optimizer.dispose();
