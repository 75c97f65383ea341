/**
 * Behaviour of the generative models on small real MNIST subsets (CPU backend): the VAE's −ELBO
 * falls, the GAN players' losses move as the game predicts, every kind trains a step and samples
 * valid images, checkpoints reproduce outputs exactly, and a resumed run equals an uninterrupted one.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  add,
  matmul,
  memoryStats,
  oneHot,
  randn,
  scope,
  setBackend,
  sum,
  tensor,
  transpose,
} from '@fluxion/tensor';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  createModel,
  fit,
  type ImageDataset,
  loadCheckpoint,
  loadMnist,
  MODEL_KINDS,
  ProjectionDiscriminator,
  readLosses,
  runCli,
  saveCheckpoint,
  splitDataset,
  type Vae,
} from '../src/node.js';

let train: ImageDataset;
let test_: ImageDataset;
const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'fluxion-models-'));
  dirs.push(d);
  return d;
};

beforeAll(() => {
  setBackend('cpu');
  const split = splitDataset(loadMnist(), 1000);
  // A 1,200-image training subset keeps these tests fast.
  train = {
    ...split.train,
    count: 1200,
    images: split.train.images.subarray(0, 1200 * 784),
    labels: split.train.labels.subarray(0, 1200),
  };
  test_ = split.test;
});
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function testBatch(n: number) {
  return {
    images: tensor(test_.images.slice(0, n * 784), [n, 784]),
    labels: tensor(test_.labels.slice(0, n), [n]),
  };
}

describe('readLosses', () => {
  test('returns the named scalars by name and frees them', async () => {
    const before = memoryStats().liveTensors;
    const a = scope(() => sum(tensor([1, 2, 3.5])));
    const b = tensor(-0.25);
    expect(await readLosses({ total: a, part: b })).toEqual({ total: 6.5, part: -0.25 });
    expect(a.isDisposed && b.isDisposed).toBe(true);
    expect(memoryStats().liveTensors).toBe(before);
  });
});

describe('VAE', () => {
  test('−ELBO on held-out digits falls by at least 40% within 60 steps', async () => {
    const vae = createModel('vae', { seed: 1 }) as Vae;
    const { images } = testBatch(200);
    const before = await vae.negElbo(images);
    await fit(vae, train, { epochs: 10, batchSize: 64, maxSteps: 60 });
    const after = await vae.negElbo(images);
    images.dispose();
    // An untrained Bernoulli decoder scores about 784·ln 2 ≈ 543 nats; training must cut that.
    expect(before).toBeGreaterThan(450);
    expect(after).toBeLessThan(before * 0.6);
  });

  test('the IWAE bound tightens −ELBO (k = 20 below k = 1) and reconstructions are images', async () => {
    const vae = createModel('vae', { seed: 2 }) as Vae;
    await fit(vae, train, { epochs: 10, batchSize: 64, maxSteps: 30 });
    const { images } = testBatch(100);
    const k1 = await vae.iwaeBound(images, 1);
    const k20 = await vae.iwaeBound(images, 20);
    expect(k20).toBeLessThan(k1);
    const recon = vae.reconstruct(images);
    expect(recon.shape).toEqual([100, 784]);
    const r = await recon.data();
    expect(Math.min(...r)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...r)).toBeLessThanOrEqual(1);
    const line = vae.interpolate(images.slice([0, 1]), images.slice([1, 2]), 5);
    expect(line.shape).toEqual([5, 784]);
    for (const t of [images, recon, line]) t.dispose();
  });
});

describe('GAN', () => {
  test('the discriminator learns first (its loss falls below 2·ln 2) and the generator loss moves off ln 2', async () => {
    const gan = createModel('gan', { seed: 3 });
    const { history } = await fit(gan, train, { epochs: 10, batchSize: 32, maxSteps: 15 });
    const d = history.d;
    const g = history.g;
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    // Untrained, D outputs ≈ ½ on everything: loss ≈ 2 ln 2 = 1.386, G's loss ≈ ln 2.
    expect(Math.abs(d[0] - 2 * Math.LN2)).toBeLessThan(0.15);
    expect(mean(d.slice(-5))).toBeLessThan(d[0] - 0.2);
    expect(Math.abs(g[0] - Math.LN2)).toBeLessThan(0.15);
    expect(Math.abs(mean(g.slice(-5)) - g[0])).toBeGreaterThan(0.05);
    expect(g.every(Number.isFinite)).toBe(true);
    const images = gan.sample(16);
    expect(images.shape).toEqual([16, 784]);
    const data = await images.data();
    expect(Math.min(...data)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...data)).toBeLessThanOrEqual(1);
    images.dispose();
  });

  test.each(MODEL_KINDS.filter((k) => k !== 'gan' && k !== 'vae'))(
    '%s trains two steps and samples valid images',
    async (kind) => {
      const model = createModel(kind, { seed: 4 });
      const small = { ...train, count: 16 };
      const { history } = await fit(model, small, { epochs: 1, batchSize: 8 });
      for (const values of Object.values(history)) {
        expect(values).toHaveLength(2);
        for (const v of values) expect(Number.isFinite(v) || Number.isNaN(v)).toBe(true);
      }
      expect(Object.values(history).flat().some(Number.isFinite)).toBe(true);
      const labels = model.conditional ? [0, 1, 2, 3] : undefined;
      const images = model.sample(4, { labels });
      expect(images.shape).toEqual([4, 784]);
      const data = await images.data();
      expect(data.every((v) => v >= 0 && v <= 1)).toBe(true);
      images.dispose();
    },
  );
});

test('the conditional discriminator projects the label embedding onto the features', async () => {
  const d = new ProjectionDiscriminator(12, 3, 7, [8, 5]);
  const x = randn([4, 12], { seed: 1 });
  const y = oneHot(tensor(Int32Array.from([0, 1, 2, 1])), 3);
  const features = d.trunk.forward(x);
  const embedded = matmul(y, transpose(d.embed.weight)); // E·y, [4, 5]
  const expected = add(d.head.forward(features), sum(features.mul(embedded), 1, true));
  expect(Array.from(await d.forward(x, y).data())).toEqual(Array.from(await expected.data()));
  // The same image under another label gets another logit.
  const other = oneHot(tensor(Int32Array.from([2, 2, 0, 0])), 3);
  const a = await d.forward(x, y).data();
  const b = await d.forward(x, other).data();
  expect(a.some((v, i) => v !== b[i])).toBe(true);
  expect(d.embed.bias).toBeNull();
});

describe('checkpoints', () => {
  test('a checkpoint reproduces samples exactly', async () => {
    const gan = createModel('cgan', { seed: 5 });
    await fit(gan, train, { epochs: 1, batchSize: 16, maxSteps: 2 });
    const dir = tempDir();
    await saveCheckpoint(dir, gan, { epoch: 0, step: 2, globalStep: 2 }, {});
    expect(readdirSync(dir)).toEqual(['model.safetensors']); // one file: one atomic unit
    const labels = [7, 7, 1, 1];
    const a = gan.sample(4, { labels });
    const { model } = loadCheckpoint(dir);
    const b = model.sample(4, { labels });
    expect(Array.from(await b.data())).toEqual(Array.from(await a.data()));
    a.dispose();
    b.dispose();
  });

  test('resuming from a checkpoint gives the same next losses as an uninterrupted run', async () => {
    const data = { ...train, count: 96 };
    const options = { epochs: 2, batchSize: 16 };
    const straight = createModel('vae', { seed: 6 });
    const full = await fit(straight, data, options);

    const first = createModel('vae', { seed: 6 });
    const part = await fit(first, data, { ...options, maxSteps: 8 });
    const dir = tempDir();
    await saveCheckpoint(dir, first, part.position, part.history);
    const { model, meta } = loadCheckpoint(dir);
    const rest = await fit(model, data, { ...options, from: meta.position, history: meta.history });
    expect(rest.history.loss).toEqual(full.history.loss);
  });
});

describe('fluxion CLI', () => {
  test('bad arguments exit with code 2 and a message', async () => {
    const errors: string[] = [];
    const original = console.error;
    console.error = (m: string) => errors.push(m);
    try {
      expect(await runCli(['train', 'gann'])).toBe(2);
      expect(await runCli(['train', 'vae', '--epochs', 'zero'])).toBe(2);
      expect(await runCli(['train', 'vae', '--bogus'])).toBe(2);
      expect(await runCli(['sample'])).toBe(2);
      expect(await runCli(['frobnicate'])).toBe(2);
    } finally {
      console.error = original;
    }
    expect(errors[0]).toMatch(/unknown model 'gann'/);
    expect(errors[1]).toMatch(/--epochs must be an integer/);
    expect(errors[3]).toMatch(/missing --checkpoint/);
  });

  test('train → sample writes a checkpoint and images, with memory flat across steps', async () => {
    const dir = tempDir();
    const log = console.log;
    console.log = () => {};
    try {
      expect(await runCli(['train', 'vae', '--backend', 'cpu', '--max-steps', '3', '--out', dir])).toBe(0);
      expect(await runCli(['sample', '--checkpoint', dir, '--n', '16', '--out', join(dir, 'grid.png')])).toBe(
        0,
      );
    } finally {
      console.log = log;
    }
    const files = readdirSync(dir);
    for (const f of ['model.safetensors', 'loss.png', 'samples-epoch-0.png', 'grid.png'])
      expect(files).toContain(f);
    const model = createModel('vae', { seed: 7 });
    await fit(model, train, { epochs: 1, batchSize: 32, maxSteps: 2 });
    const before = memoryStats().backends.cpu?.buffers;
    await fit(model, train, { epochs: 1, batchSize: 32, maxSteps: 5 });
    expect(memoryStats().backends.cpu?.buffers).toBe(before);
  });
});
