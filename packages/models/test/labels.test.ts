/**
 * The predicted-label histogram: its arithmetic on hand-made labels, and on the CPU backend with the
 * shipped classifier that real test digits cover every class without a warning while a
 * deliberately collapsed generator (every sample the same digit) triggers both warnings.
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Dense } from '@fluxion/nn';
import { setBackend, tensor, zeros } from '@fluxion/tensor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evaluateModel, runCli } from '../src/cli.js';
import { type ImageDataset, loadMnist, splitDataset } from '../src/data/dataset.js';
import {
  formatLabelHistograms,
  histogramOfLabels,
  labelHistogram,
  labelHistogramWarnings,
  loadMnistClassifier,
  type MnistClassifier,
} from '../src/metrics/index.js';
import { createModel } from '../src/models/factory.js';
import type { Gan } from '../src/models/gan.js';

describe('histogramOfLabels', () => {
  it('counts, normalises and summarises', () => {
    const h = histogramOfLabels([1, 1, 7, 1], 10);
    expect(h.counts).toEqual([0, 3, 0, 0, 0, 0, 0, 1, 0, 0]);
    expect(h.fractions[1]).toBe(0.75);
    const entropy = -(0.75 * Math.log(0.75) + 0.25 * Math.log(0.25));
    expect(h.entropy).toBeCloseTo(entropy, 12);
    expect(h.effectiveClasses).toBeCloseTo(Math.exp(entropy), 12);
    expect(h.missing).toEqual([0, 2, 3, 4, 5, 6, 8, 9]);
    expect(h.dominant).toEqual({ label: 1, fraction: 0.75 });
  });

  it('gives ln(classes) and all classes for a balanced set', () => {
    const h = histogramOfLabels(
      Array.from({ length: 50 }, (_, i) => i % 10),
      10,
    );
    expect(h.entropy).toBeCloseTo(Math.log(10), 12);
    expect(h.effectiveClasses).toBeCloseTo(10, 10);
    expect(h.missing).toEqual([]);
    expect(labelHistogramWarnings(h)).toEqual([]);
  });

  it('rejects labels outside the classes and empty input', () => {
    expect(() => histogramOfLabels([0, 10], 10)).toThrow(
      /histogramOfLabels: label 10 at index 1 is outside \[0, 9\]/,
    );
    expect(() => histogramOfLabels([-1], 10)).toThrow(/label -1/);
    expect(() => histogramOfLabels([0.5], 10)).toThrow(/label 0.5/);
    expect(() => histogramOfLabels([], 10)).toThrow(/no labels/);
  });

  it('warns on a missing class and on a dominant one, at a settable threshold', () => {
    const nine = histogramOfLabels(
      Array.from({ length: 90 }, (_, i) => i % 9),
      10,
    );
    expect(labelHistogramWarnings(nine)).toEqual(['classes never drawn: 9']);
    const skewed = histogramOfLabels([...Array.from({ length: 75 }, (_, i) => i % 10), 3, 3, 3, 3, 3], 10);
    expect(skewed.dominant.label).toBe(3);
    expect(labelHistogramWarnings(skewed)).toEqual([]);
    expect(labelHistogramWarnings(skewed, { dominantFraction: 0.1 })).toEqual([
      'class 3 dominates: 16.3 % of samples (limit 10 %)',
    ]);
  });
});

describe('labelHistogram with the shipped classifier (cpu)', () => {
  let test: ImageDataset;
  let classifier: MnistClassifier;
  beforeAll(() => {
    setBackend('cpu');
    ({ test } = splitDataset(loadMnist(), 1000));
    classifier = loadMnistClassifier();
  });
  afterAll(() => classifier.dispose());

  it('finds every class in the real test digits, with no warning', async () => {
    const real = await labelHistogram(test.images, { classifier });
    expect(real.missing).toEqual([]);
    expect(real.dominant.fraction).toBeLessThan(0.15);
    expect(real.effectiveClasses).toBeGreaterThan(9.5);
    expect(labelHistogramWarnings(real)).toEqual([]);
    const table = formatLabelHistograms(real, real);
    expect(table.split('\n')).toHaveLength(13);
    expect(table).toMatch(/^effective classes +\d/m);
  });

  /**
   * A GAN whose generator ignores its input: the last layer's weights are 0 and its bias is a real
   * digit `digit` in tanh space, so every sample is that digit.
   */
  function collapsedGan(digit: number): Gan {
    const gan = createModel('gan', { latent: 8, seed: 1 }) as Gan;
    const index = test.labels.indexOf(digit);
    const pixels = test.images.subarray(index * 784, (index + 1) * 784);
    const last = gan.generator.layers.filter((l): l is Dense => l instanceof Dense).at(-1);
    if (!last?.bias) throw new Error('the generator has no last Dense layer with a bias');
    last.weight.assign(zeros(last.weight.shape));
    last.bias.assign(
      tensor(Array.from(pixels, (p) => Math.atanh(2 * Math.min(Math.max(p, 0.01), 0.99) - 1))),
    );
    return gan;
  }

  it('evaluateModel reports the effective classes of samples and real digits', async () => {
    const gan = collapsedGan(1);
    let seen: { samples: { missing: number[] }; real: { missing: number[] } } | undefined;
    const report = await evaluateModel(gan, test, { fidSamples: 100, onLabels: (h) => (seen = h) });
    for (const m of Object.values(gan.modules())) m.dispose();
    expect(report.sampleClasses).toBe(1);
    expect(report.sampleTopShare).toBe(1);
    expect(report.missingClasses).toBe(9);
    expect(report.realClasses).toBeGreaterThan(9.5);
    expect(seen?.samples.missing).toEqual([0, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(seen?.real.missing).toEqual([]);
  });

  it('fluxion eval prints the histogram beside the real digits', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fluxion-labels-'));
    const lines: string[] = [];
    const log = console.log;
    console.log = (...args: unknown[]) => lines.push(args.join(' '));
    try {
      const train = ['train', 'gan', '--backend', 'cpu', '--max-steps', '2', '--out', dir];
      expect(await runCli(train)).toBe(0);
      lines.length = 0;
      expect(await runCli(['eval', '--backend', 'cpu', '--checkpoint', dir])).toBe(0);
    } finally {
      console.log = log;
      rmSync(dir, { recursive: true, force: true });
    }
    const text = lines.join('\n');
    expect(text).toMatch(/^predicted digits of 1000 samples:$/m);
    expect(text).toMatch(/^class {2}samples {4}real$/m);
    expect(text).toMatch(/^effective classes +\d+\.\d\d +\d+\.\d\d$/m);
    expect(text).toMatch(/^sampleClasses: \d/m);
    expect(text).toMatch(/^realClasses: 9\.\d/m);
  });

  it('warns about a collapsed generator that draws one digit', async () => {
    const gan = collapsedGan(1);
    const samples = gan.sample(200);
    const h = await labelHistogram(samples, { classifier });
    samples.dispose();
    for (const m of Object.values(gan.modules())) m.dispose();
    expect(h.counts[1]).toBe(200);
    expect(h.effectiveClasses).toBe(1);
    expect(labelHistogramWarnings(h)).toEqual([
      'classes never drawn: 0, 2, 3, 4, 5, 6, 7, 8, 9',
      'class 1 dominates: 100.0 % of samples (limit 20 %)',
    ]);
  });
});
