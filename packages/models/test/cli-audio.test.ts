/**
 * `fluxion train|sample` for the audio model (issue #17's CLI): a tiny WaveGAN (clips of 256
 * samples, model size 2) on a folder of 20 WAV files trains 2 steps, samples valid WAV files (read
 * back with decodeWav), resumes exactly (at an epoch boundary and mid-epoch), and refuses bad
 * arguments with exit code 2 before a backend starts. CPU backend.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, test, vi } from 'vitest';
import { decodeWav, encodeWav, loadAudioCheckpoint, readCheckpointMeta, type SpecVae } from '../src/node.js';
import { cli, digest, tempDirs } from './cli-helpers.js';

// Counts backend starts: argument errors must come before any.
const starts = vi.hoisted(() => ({ count: 0 }));
vi.mock('@fluxion/tensor', async (importOriginal) => {
  const { countStarts } = await import('./cli-helpers.js');
  return countStarts(await importOriginal<typeof import('@fluxion/tensor')>(), starts);
});

const tempDir = tempDirs('fluxion-cli-audio-');

/** Two digits × one speaker × ten takes: takes 0–4 test, 5–9 train (10 clips, 2 batches of 5). */
let clips: string;
beforeAll(() => {
  clips = tempDir();
  for (const digit of [0, 1])
    for (let take = 0; take < 10; take++) {
      const f = 300 + 200 * digit + 10 * take;
      const tone = Float32Array.from({ length: 300 }, (_, i) => 0.5 * Math.sin((2 * Math.PI * f * i) / 8000));
      writeFileSync(join(clips, `${digit}_ann_${take}.wav`), encodeWav(tone, 8000));
    }
});

afterEach(() => {
  vi.restoreAllMocks();
});

const trainArgs = (out: string, ...more: string[]) => [
  'train',
  'wavegan',
  '--backend',
  'cpu',
  '--data',
  clips,
  '--length',
  '256',
  '--model-size',
  '2',
  '--latent',
  '8',
  '--batch-size',
  '5',
  '--out',
  out,
  ...more,
];

describe('wavegan', () => {
  let trained: string;
  beforeAll(async () => {
    trained = tempDir();
    const r = await cli(trainArgs(trained, '--max-steps', '2'));
    expect(r.code, r.err).toBe(0);
  }, 60_000);

  test('2 steps write a one-file checkpoint, per-epoch WAV files and spectrograms', async () => {
    expect(readCheckpointMeta(trained).position).toEqual({ epoch: 1, step: 0, globalStep: 2 });
    expect(readdirSync(trained).sort()).toEqual([
      'loss.png',
      'model.safetensors',
      'samples-epoch-1',
      'spectrograms-epoch-1.png',
    ]);
    const files = readdirSync(join(trained, 'samples-epoch-1')).sort();
    expect(files).toEqual(['clip-00-label-0.wav', 'clip-01-label-1.wav']);
    const { model } = loadAudioCheckpoint(trained);
    expect(model.config).toMatchObject({ length: 256, sampleRate: 8000, classes: 2, conditional: true });
  });

  test('sample writes valid WAV files of the asked label', async () => {
    const out = join(tempDir(), 'sevens');
    const r = await cli([
      'sample',
      '--checkpoint',
      trained,
      '--backend',
      'cpu',
      '--n',
      '3',
      '--label',
      '1',
      '--out',
      out,
    ]);
    expect(r.code, r.err).toBe(0);
    const files = readdirSync(out).sort();
    expect(files).toEqual([
      'clip-00-label-1.wav',
      'clip-01-label-1.wav',
      'clip-02-label-1.wav',
      'spectrograms.png',
    ]);
    for (const f of files.filter((f) => f.endsWith('.wav'))) {
      const wav = decodeWav(readFileSync(join(out, f)), f);
      expect(wav.sampleRate).toBe(8000);
      expect(wav.samples).toHaveLength(256);
      expect(wav.samples.every((v) => v >= -1 && v <= 1)).toBe(true);
    }
  });

  test('resume at an epoch boundary and mid-epoch ends with the same checkpoint bytes', async () => {
    const straight = tempDir();
    expect((await cli(trainArgs(straight, '--epochs', '2'))).code).toBe(0);
    for (const stop of ['2', '1']) {
      const split = tempDir();
      expect((await cli(trainArgs(split, '--epochs', '2', '--max-steps', stop))).code).toBe(0);
      const r = await cli(trainArgs(split, '--epochs', '2', '--resume'));
      expect(r.code, r.err).toBe(0);
      for (const file of ['model.safetensors', 'samples-epoch-2/clip-01-label-1.wav'])
        expect(digest(join(split, file)), `stop at ${stop}: ${file}`).toBe(digest(join(straight, file)));
    }
  }, 60_000);

  test('bad arguments exit 2 before a backend starts', async () => {
    const uncond = tempDir();
    expect((await cli(trainArgs(uncond, '--max-steps', '1', '--unconditional'))).code).toBe(0);
    const notWav = tempDir();
    mkdirSync(join(notWav, '7'));
    writeFileSync(join(notWav, '7', 'a.txt'), 'x');
    for (const [args, message] of [
      [
        ['sample', '--checkpoint', uncond, '--label', '1'],
        /--label needs a conditional model; this wavegan was trained with --unconditional/,
      ],
      [['sample', '--checkpoint', trained, '--label', '2'], /--label must be below 2, got 2/],
      [
        ['sample', '--checkpoint', trained, '--temperature', '1'],
        /--temperature does not apply to an audio model/,
      ],
      [['train', 'wavegan', '--data', notWav, '--out', tempDir()], /a\.txt is not a \.wav file/],
      [['train', 'wavegan', '--data', join(notWav, 'none'), '--out', tempDir()], /cannot read the folder/],
      [
        ['train', 'wavegan', '--length', '300', '--out', tempDir()],
        /length 300 must be a multiple of 4\^blocks = 256/,
      ],
      [['train', 'wavegan', '--heads', '2', '--out', tempDir()], /--heads does not apply to an audio model/],
    ] as const) {
      starts.count = 0;
      const { code, err } = await cli([...args]);
      expect(code, args.join(' ')).toBe(2);
      expect(err, args.join(' ')).toMatch(message);
      expect(starts.count, args.join(' ')).toBe(0);
    }
  }, 60_000);
});

/** specvae's smallest geometry at its default STFT: 1024 samples, 128 bins × 16 frames. */
const specArgs = (out: string, ...more: string[]) => [
  'train',
  'specvae',
  '--backend',
  'cpu',
  '--data',
  clips,
  '--length',
  '1024',
  '--model-size',
  '2',
  '--latent',
  '4',
  '--batch-size',
  '5',
  '--out',
  out,
  ...more,
];

describe('specvae', () => {
  let trained: string;
  beforeAll(async () => {
    trained = tempDir();
    const r = await cli(specArgs(trained, '--max-steps', '2'));
    expect(r.code, r.err).toBe(0);
  }, 60_000);

  test('2 steps write a checkpoint with the codec statistics, WAV files and spectrograms', async () => {
    const meta = readCheckpointMeta(trained);
    expect(meta.position).toEqual({ epoch: 1, step: 0, globalStep: 2 });
    expect(meta.modelSteps).toBe(0);
    expect(meta.lastGeneratorLoss).toBeNull();
    expect(Object.keys(meta.history).sort()).toEqual(['kl', 'loss', 'mse', 'recon']);
    expect(readdirSync(trained).sort()).toEqual([
      'loss.png',
      'model.safetensors',
      'samples-epoch-1',
      'spectrograms-epoch-1.png',
    ]);
    expect(readdirSync(join(trained, 'samples-epoch-1')).sort()).toEqual([
      'clip-00-label-0.wav',
      'clip-01-label-1.wav',
    ]);
    const { model } = loadAudioCheckpoint(trained);
    expect(model.config).toMatchObject({
      kind: 'specvae',
      length: 1024,
      modelSize: 2,
      sampleRate: 8000,
      classes: 2,
      conditional: true,
    });
    expect(await (model as SpecVae).codec.isFitted()).toBe(true);
  });

  test('sample writes valid WAV files of the asked label; --griffin-lim-iters is specvae-only', async () => {
    const out = join(tempDir(), 'ones');
    const r = await cli([
      'sample',
      '--checkpoint',
      trained,
      '--backend',
      'cpu',
      '--n',
      '3',
      '--label',
      '1',
      '--griffin-lim-iters',
      '4',
      '--out',
      out,
    ]);
    expect(r.code, r.err).toBe(0);
    const files = readdirSync(out).sort();
    expect(files).toEqual([
      'clip-00-label-1.wav',
      'clip-01-label-1.wav',
      'clip-02-label-1.wav',
      'spectrograms.png',
    ]);
    for (const f of files.filter((f) => f.endsWith('.wav'))) {
      const wav = decodeWav(readFileSync(join(out, f)), f);
      expect(wav.sampleRate).toBe(8000);
      expect(wav.samples).toHaveLength(1024);
      expect(wav.samples.every((v) => Number.isFinite(v) && v >= -1 && v <= 1)).toBe(true);
    }
    starts.count = 0;
    const wave = tempDir();
    expect((await cli(trainArgs(wave, '--max-steps', '1'))).code).toBe(0);
    starts.count = 0;
    const bad = await cli(['sample', '--checkpoint', wave, '--griffin-lim-iters', '4']);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/--griffin-lim-iters does not apply to a wavegan/);
    expect(starts.count).toBe(0);
  }, 60_000);

  test('resume at an epoch boundary and mid-epoch ends with the same checkpoint bytes', async () => {
    const straight = tempDir();
    expect((await cli(specArgs(straight, '--epochs', '2'))).code).toBe(0);
    for (const stop of ['2', '1']) {
      const split = tempDir();
      expect((await cli(specArgs(split, '--epochs', '2', '--max-steps', stop))).code).toBe(0);
      const r = await cli(specArgs(split, '--epochs', '2', '--resume'));
      expect(r.code, r.err).toBe(0);
      for (const file of ['model.safetensors', 'samples-epoch-2/clip-01-label-1.wav'])
        expect(digest(join(split, file)), `stop at ${stop}: ${file}`).toBe(digest(join(straight, file)));
    }
  }, 60_000);

  test('bad arguments exit 2 before a backend starts', async () => {
    for (const [args, message] of [
      [
        ['train', 'specvae', '--length', '1000', '--out', tempDir()],
        /the frames\) must be an integer multiple of 2\^blocks = 16/,
      ],
      [['train', 'specvae', '--heads', '2', '--out', tempDir()], /--heads does not apply to an audio model/],
      [['train', 'specvae', '--resume', '--out', trained, '--model-size', '3'], /--model-size/],
    ] as const) {
      starts.count = 0;
      const { code, err } = await cli([...args]);
      expect(code, args.join(' ')).toBe(2);
      expect(err, args.join(' ')).toMatch(message);
      expect(starts.count, args.join(' ')).toBe(0);
    }
  }, 60_000);
});
