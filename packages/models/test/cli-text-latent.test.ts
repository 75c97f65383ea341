/**
 * `fluxion train|sample|eval` for the latent text models (textvae, textgan; issue #16's CLI): a
 * train → sample → eval round trip on names for each, exact resume of textgan (uninterrupted vs
 * split mid-epoch: the same checkpoint bytes), the options they refuse (a prompt, one long text)
 * with exit code 2 before a backend starts, and `fluxion eval --judge` (the fluency of samples and
 * of real held-out names under a charlm; a judge of another vocabulary refused). CPU backend, tiny
 * models, a file of 120 names.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, test, vi } from 'vitest';
import { loadTextLatentCheckpoint, readCheckpointMeta } from '../src/checkpoint.js';
import { loadNames } from '../src/data/text.js';
import { cli, digest, tempDirs } from './cli-helpers.js';

// Counts backend starts: argument errors must come before any.
const starts = vi.hoisted(() => ({ count: 0 }));
vi.mock('@fluxion/tensor', async (importOriginal) => {
  const { countStarts } = await import('./cli-helpers.js');
  return countStarts(await importOriginal<typeof import('@fluxion/tensor')>(), starts);
});

const tempDir = tempDirs('fluxion-cli-latent-');
const TINY = {
  textvae: ['--dim', '8', '--hidden', '16', '--latent', '4', '--warmup', '2', '--kl-warmup', '5'],
  textgan: ['--dim', '8', '--hidden', '16', '--latent', '8', '--warmup', '2'],
  charlm: ['--dim', '16', '--layers', '1', '--heads', '2', '--warmup', '2'],
} as const;

/** 120 names in a file: 108 train (6 batches of 16 per epoch), 12 held out. */
let namesFile: string;
beforeAll(() => {
  namesFile = join(tempDir(), 'names.txt');
  writeFileSync(namesFile, `${loadNames().train.slice(0, 120).join('\n')}\n`);
});

afterEach(() => {
  vi.restoreAllMocks();
});

const trainArgs = (kind: keyof typeof TINY, out: string, ...more: string[]) => [
  'train',
  kind,
  '--backend',
  'cpu',
  ...TINY[kind],
  '--data',
  namesFile,
  '--batch-size',
  '16',
  '--out',
  out,
  ...more,
];

describe('round trip on names', () => {
  const dirs: Record<string, string> = {};
  let judge: string;
  beforeAll(async () => {
    judge = tempDir();
    const { code, err } = await cli(trainArgs('charlm', judge, '--max-steps', '6'));
    expect(err).toBe('');
    expect(code).toBe(0);
  }, 60_000);

  for (const kind of ['textvae', 'textgan'] as const) {
    test(`${kind}: train, sample, eval with a judge`, async () => {
      const dir = tempDir();
      dirs[kind] = dir;
      const trained = await cli(trainArgs(kind, dir, '--max-steps', '6'));
      expect(trained.code).toBe(0);
      expect(trained.out).toMatch(
        kind === 'textvae'
          ? /epoch 1: held-out −ELBO \d/
          : /epoch 1: held-out reconstruction loss .*not a likelihood/,
      );
      expect(existsSync(join(dir, 'samples-epoch-1.txt'))).toBe(true);
      const { model, meta } = loadTextLatentCheckpoint(dir);
      expect(model.config.kind).toBe(kind);
      expect(model.steps).toBe(6);
      expect(meta.position).toEqual({ epoch: 1, step: 0, globalStep: 6 });

      const sampled = await cli(['sample', '--checkpoint', dir, '--backend', 'cpu', '--n', '5']);
      expect(sampled.code).toBe(0);
      expect(sampled.out.split('\n')).toHaveLength(5);

      const evalArgs = ['eval', '--checkpoint', dir, '--backend', 'cpu', '--samples', '20', '--judge', judge];
      if (kind === 'textvae') evalArgs.push('--iwae-k', '2');
      const evaluated = await cli(evalArgs);
      expect(evaluated.code).toBe(0);
      if (kind === 'textvae') {
        expect(evaluated.out).toMatch(/held-out −ELBO nats\/char: \d+\.\d{4}/);
        expect(evaluated.out).toMatch(/held-out IWAE nats\/char \(k = 2\): \d+\.\d{4}/);
        expect(evaluated.out).toMatch(/held-out KL nats\/item: \d/);
      } else {
        expect(evaluated.out).toMatch(
          /held-out reconstruction nats\/char \(teacher-forced autoencoder; not a likelihood\): \d/,
        );
      }
      const fluency = [...evaluated.out.matchAll(/fluency \(judge nats\/char\): (\d+\.\d{4})/g)].map((m) =>
        Number(m[1]),
      );
      expect(fluency).toHaveLength(2); // samples, then real held-out names
      for (const f of fluency) expect(f).toBeGreaterThan(0);
      expect(evaluated.out).toMatch(
        /samples \(20\):\n {2}share new: [\d.]+\n {2}share distinct: [\d.]+\n {2}fluency/,
      );
    }, 120_000);
  }

  test('--interpolate decodes the line between two names; bad uses exit 2 before a backend starts', async () => {
    const line = await cli([
      'sample',
      '--checkpoint',
      dirs.textvae,
      '--backend',
      'cpu',
      '--interpolate',
      'emma,olivia',
      '--n',
      '5',
    ]);
    expect(line.code, line.err).toBe(0);
    const items = line.out.trimEnd().split('\n');
    expect(items).toHaveLength(5);
    // the ends are the greedy reconstructions of emma and olivia, as the API gives them
    const { model } = loadTextLatentCheckpoint(dirs.textvae);
    expect(items).toEqual(await model.interpolate('emma', 'olivia', 5));
    starts.count = 0;
    for (const [dir, args, message] of [
      [dirs.textvae, ['--interpolate', 'emma'], /two items separated by a comma/],
      [
        dirs.textvae,
        ['--interpolate', 'emma,olivia', '--temperature', '0.5'],
        /--temperature does not apply/,
      ],
      [dirs.textvae, ['--interpolate', 'emma,ol1via'], /outside the model's vocabulary/],
      [dirs.textvae, ['--interpolate', 'emma,olivia', '--n', '1'], /at least 2/],
      [judge, ['--interpolate', 'emma,olivia'], /needs a latent model/],
    ] as const) {
      const r = await cli(['sample', '--checkpoint', dir, '--backend', 'cpu', ...args]);
      expect(r.code, r.err).toBe(2);
      expect(r.err).toMatch(message);
    }
    expect(starts.count).toBe(0);
  }, 60_000);

  test('refuses a prompt, --iwae-k for textgan, and a judge of another vocabulary, before a backend starts', async () => {
    const other = tempDir();
    const otherFile = join(tempDir(), 'other.txt');
    writeFileSync(
      otherFile,
      `${Array.from({ length: 40 }, (_, i) => ['abc', 'bca', 'cab', 'acb'][i % 4]).join('\n')}\n`,
    );
    expect(
      (
        await cli([
          'train',
          'charlm',
          '--backend',
          'cpu',
          ...TINY.charlm,
          '--data',
          otherFile,
          '--batch-size',
          '8',
          '--out',
          other,
          '--max-steps',
          '1',
        ])
      ).code,
    ).toBe(0);
    starts.count = 0;
    const prompt = await cli(['sample', '--checkpoint', dirs.textvae, '--backend', 'cpu', '--prompt', 'em']);
    expect(prompt.code).toBe(2);
    expect(prompt.err).toMatch(/--prompt: a textvae .* takes no prompt/);
    const iwae = await cli(['eval', '--checkpoint', dirs.textgan, '--backend', 'cpu', '--iwae-k', '2']);
    expect(iwae.code).toBe(2);
    const wrong = await cli(['eval', '--checkpoint', dirs.textvae, '--backend', 'cpu', '--judge', other]);
    expect(wrong.code).toBe(2);
    expect(wrong.err).toMatch(/--judge .*its tokenizer \(\d+ tokens\) differs from the checkpoint's/);
    const notCharlm = await cli([
      'eval',
      '--checkpoint',
      dirs.textvae,
      '--backend',
      'cpu',
      '--judge',
      dirs.textgan,
    ]);
    expect(notCharlm.code).toBe(2);
    expect(notCharlm.err).toMatch(/holds a textgan; the judge of fluency is a charlm/);
    expect(starts.count).toBe(0);
  }, 60_000);
});

describe('arguments refused before a backend starts', () => {
  test.each([
    [['--data', 'shakespeare'], /--data shakespeare is one long text; a textvae models one item per line/],
    [['--mode', 'text'], /--mode text: a textvae models one item per line/],
    [['--heads', '2'], /--heads/],
    [['--prompt', 'x'], /prompt/],
  ])('train textvae %j', async (args, message) => {
    starts.count = 0;
    const { code, err } = await cli(['train', 'textvae', '--backend', 'cpu', '--out', tempDir(), ...args]);
    expect(code).toBe(2);
    expect(err).toMatch(message);
    expect(starts.count).toBe(0);
  });

  test('textgan --kl-warmup', async () => {
    starts.count = 0;
    const { code, err } = await cli(['train', 'textgan', '--kl-warmup', '3', '--out', tempDir()]);
    expect(code).toBe(2);
    expect(err).toMatch(/kl-warmup/);
    expect(starts.count).toBe(0);
  });
});

describe('exact resume (textgan)', () => {
  test('interrupted mid-epoch and resumed: the same checkpoint bytes as the uninterrupted run', async () => {
    const whole = tempDir();
    const split = tempDir();
    expect((await cli(trainArgs('textgan', whole, '--epochs', '2'))).code).toBe(0);
    expect((await cli(trainArgs('textgan', split, '--epochs', '2', '--max-steps', '4'))).code).toBe(0);
    expect(readCheckpointMeta(split).position).toEqual({ epoch: 0, step: 4, globalStep: 4 });
    const resumed = await cli(['train', 'textgan', '--backend', 'cpu', '--out', split, '--resume']);
    expect(resumed.code).toBe(0);
    expect(readCheckpointMeta(split).position).toEqual({ epoch: 2, step: 0, globalStep: 12 });
    expect(digest(join(split, 'model.safetensors'))).toBe(digest(join(whole, 'model.safetensors')));
  }, 180_000);
});
