/**
 * `fluxion eval` on an audio checkpoint: generated clips scored by the shipped spoken-digit
 * classifier (accuracy on the asked digit, Inception score, Fréchet distance) beside real test
 * takes and noise. A WaveGAN and a spectrogram VAE of model size 2 trained one step on WebGPU (the
 * classifier on the CPU backend would take minutes for the 600 baseline clips), the command
 * freeing the model it loaded; clips of another length than the classifier's are a clear error.
 *
 * first adapter only: a model-level check (a WaveGAN, then 620 clips through the classifier) whose
 * kernels every other WebGPU file tests on SwiftShader too; there it would take minutes.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { memoryStats } from '@fluxion/tensor';
import { afterAll, describe, expect, test } from 'vitest';
import { skipNote, webgpuEnv } from '../../tensor/test/webgpu-env.js';
import { cli } from './cli-helpers.js';

const gpu = await webgpuEnv();
const dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'fluxion-audio-eval-'));
  dirs.push(dir);
  return dir;
};
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const train = (kind: 'wavegan' | 'specvae', out: string, ...more: string[]) =>
  cli([
    'train',
    kind,
    '--backend',
    'webgpu',
    '--data',
    'fsdd',
    '--model-size',
    '2',
    '--max-steps',
    '1',
    '--out',
    out,
    ...more,
  ]);

/**
 * `fluxion eval` of a `kind` checkpoint in `dir` on 20 samples: it must succeed and print the
 * table's header and the samples' row; returns the table's lines.
 */
async function scoreTable(kind: string, dir: string): Promise<string[]> {
  const { code, out, err } = await cli([
    'eval',
    '--backend',
    'webgpu',
    '--checkpoint',
    dir,
    '--samples',
    '20',
  ]);
  expect(err).toBe('');
  expect(code).toBe(0);
  const lines = out.split('\n');
  expect(lines[0]).toMatch(/^clips +n +accuracy +inception +fréchet$/);
  expect(lines[1]).toMatch(new RegExp(`^${kind} samples +20 +\\d+\\.\\d % +\\d+\\.\\d\\d +\\d+\\.\\d$`));
  return lines;
}

describe.skipIf(!gpu.backend)(`fluxion eval for audio models${skipNote(gpu)}`, () => {
  test('scores samples beside real test takes and noise', async () => {
    const dir = tempDir();
    expect((await train('wavegan', dir)).code).toBe(0);
    const lines = await scoreTable('wavegan', dir);
    // The shipped classifier on the 300 real test takes: 99.0 % right, Inception score 9.53 (on
    // lavapipe; another adapter may round one clip differently).
    const real = lines[2].match(/^real test takes +300 +(\d+\.\d) % +(\d+\.\d\d) +(\d+\.\d)$/);
    expect(real).not.toBeNull();
    expect(Number(real?.[1])).toBeGreaterThanOrEqual(98);
    expect(Number(real?.[2])).toBeGreaterThan(9.3);
    const noise = lines[3].match(/^noise +300 +(\d+\.\d) % +(\d+\.\d\d) +(\d+\.\d)$/);
    expect(noise).not.toBeNull();
    expect(Number(noise?.[1])).toBeLessThan(30);
    expect(Number(noise?.[2])).toBeLessThan(2);
  });

  test('specvae: prints its scores and frees the model it loaded', async () => {
    const dir = tempDir();
    expect((await train('specvae', dir)).code).toBe(0);
    const live = memoryStats().liveTensors;
    const lines = await scoreTable('specvae', dir);
    expect(lines[2]).toMatch(/^real test takes +300 +\d+\.\d % +\d+\.\d\d +\d+\.\d$/);
    expect(lines[3]).toMatch(/^noise +300 +\d+\.\d % +\d+\.\d\d +\d+\.\d$/);
    expect(memoryStats().liveTensors).toBeLessThanOrEqual(live);
  });

  test('clips of another length than the classifier takes are a clear error', async () => {
    const dir = tempDir();
    expect((await train('wavegan', dir, '--length', '256')).code).toBe(0);
    const { code, err } = await cli(['eval', '--backend', 'webgpu', '--checkpoint', dir, '--samples', '10']);
    expect(code).toBe(1);
    expect(err).toMatch(
      /audioModelScores: the model gave clips \[10, 256\], the classifier takes \[n, 8192\]/,
    );
  });
});
