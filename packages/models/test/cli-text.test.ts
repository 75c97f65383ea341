/**
 * `fluxion train|sample|eval` for the text models (issue #16's CLI) with the reliability of the
 * image CLI: a train → sample → eval round trip on names for charlm and charrnn, exact resume
 * (uninterrupted vs split at an epoch boundary and mid-epoch: the same checkpoint bytes), one-file
 * checkpoints that refuse mismatches, and bad arguments refused with exit code 2 before a backend
 * starts. CPU backend, tiny models, and a file of 120 names for the runs that cross epochs.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, test, vi } from 'vitest';
import { textSampleStats } from '../src/cli-text.js';
import {
  loadCheckpoint,
  loadNames,
  loadTextCheckpoint,
  loadTextFile,
  readCheckpointMeta,
  textStepsPerEpoch,
} from '../src/node.js';
import { cli, digest, editMeta, tempDirs } from './cli-helpers.js';

// Counts backend starts: argument errors must come before any.
const starts = vi.hoisted(() => ({ count: 0 }));
vi.mock('@fluxion/tensor', async (importOriginal) => {
  const { countStarts } = await import('./cli-helpers.js');
  return countStarts(await importOriginal<typeof import('@fluxion/tensor')>(), starts);
});

const tempDir = tempDirs('fluxion-cli-text-');
/** Tiny sizes of each kind. */
const TINY = {
  charlm: ['--dim', '16', '--layers', '1', '--heads', '2', '--warmup', '2'],
  charrnn: ['--dim', '8', '--hidden', '16', '--warmup', '2'],
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

const trainArgs = (kind: 'charlm' | 'charrnn', out: string, ...more: string[]) => [
  'train',
  kind,
  '--backend',
  'cpu',
  ...TINY[kind],
  '--out',
  out,
  ...more,
];

describe('round trip on names', () => {
  for (const kind of ['charlm', 'charrnn'] as const) {
    test(`${kind}: train → sample → eval`, async () => {
      const out = tempDir();
      const trained = await cli(
        trainArgs(kind, out, '--data', 'names', '--batch-size', '32', '--max-steps', '3'),
      );
      expect(trained.code, trained.err).toBe(0);
      // One checkpoint file (with the tokenizer), the samples drawn at the stop, the loss curve.
      expect(readdirSync(out).sort()).toEqual(['loss.png', 'model.safetensors', 'samples-epoch-0.txt']);
      const meta = readCheckpointMeta(out);
      expect(meta.position).toEqual({ epoch: 0, step: 3, globalStep: 3 });
      expect(meta.tokenizer?.chars).toHaveLength(26);
      expect(meta.run).toEqual({ batchSize: 32, epochs: 5, data: 'names' });
      expect(meta.modelSteps).toBe(3);
      expect(readFileSync(join(out, 'samples-epoch-0.txt'), 'utf8').trimEnd().split('\n')).toHaveLength(20);

      const file = join(tempDir(), 'samples.txt');
      const args = ['sample', '--checkpoint', out, '--backend', 'cpu', '--n', '6', '--temperature', '0.8'];
      const sampled = await cli([...args, '--top-k', '5', '--prompt', 'ma', '--length', '6', '--out', file]);
      expect(sampled.code, sampled.err).toBe(0);
      const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
      expect(lines).toHaveLength(6);
      for (const line of lines) {
        expect(line.startsWith('ma')).toBe(true);
        expect(line.length).toBeLessThanOrEqual(8);
        expect(line).toMatch(/^[a-z]+$/);
      }
      expect(sampled.out.trimEnd().split('\n')).toEqual(lines);
      // The same command draws the same samples (a stream of its own, not the training noise).
      expect((await cli([...args, '--top-k', '5', '--prompt', 'ma', '--length', '6'])).out).toBe(sampled.out);

      const evaluated = await cli(['eval', '--checkpoint', out, '--backend', 'cpu', '--samples', '40']);
      expect(evaluated.code, evaluated.err).toBe(0);
      const nats = Number(/held-out nats\/char: ([\d.]+)/.exec(evaluated.out)?.[1]);
      const bits = Number(/held-out bits\/char: ([\d.]+)/.exec(evaluated.out)?.[1]);
      expect(nats).toBeGreaterThan(1);
      expect(bits).toBeCloseTo(nats / Math.LN2, 3);
      expect(evaluated.out).toMatch(/samples \(40\):\n {2}share new: [\d.]+\n {2}share distinct: [\d.]+/);
      expect(evaluated.out).toMatch(
        /real held-out \(40\):\n {2}share new: [\d.]+\n {2}share distinct: 1\.000/,
      );
    }, 60_000);
  }

  test('sample statistics: new = not a training item, distinct = unique', () => {
    const ds = loadNames();
    const stats = textSampleStats([ds.train[0], 'zzqx', 'zzqx', ds.train[1]], ds);
    expect(stats).toEqual({ shareNew: 0.5, shareDistinct: 0.75, items: 4 });
  });
});

describe('resume', () => {
  test('split at an epoch boundary and mid-epoch ends with the same checkpoint bytes', async () => {
    const run = (out: string, ...more: string[]) =>
      cli(
        trainArgs(
          'charlm',
          out,
          '--data',
          namesFile,
          '--batch-size',
          '4',
          '--dropout',
          '0.1',
          '--epochs',
          '2',
          ...more,
        ),
      );
    const straight = tempDir();
    expect((await run(straight)).code).toBe(0);
    const meta = readCheckpointMeta(straight);
    // charlm packs about two names per row: 108 names make about 13 batches of 4 rows per epoch
    // (27 of one name per row)
    const ds = loadTextFile(namesFile, { mode: 'lines' });
    const perEpoch = textStepsPerEpoch(ds, 4, (meta.config as { context: number }).context, {
      packed: true,
    });
    expect(perEpoch).toBeGreaterThan(5);
    expect(perEpoch).toBeLessThan(27);
    expect(meta.position).toEqual({ epoch: 2, step: 0, globalStep: 2 * perEpoch });
    expect(meta.epochMetrics?.heldOutNats).toHaveLength(2);
    expect(meta.run).toEqual({ batchSize: 4, epochs: 2, data: namesFile, mode: 'lines' });
    // The cosine decay spans the planned steps after the warm-up of 2.
    expect((meta.config as { decaySteps: number }).decaySteps).toBe(2 * perEpoch - 2);
    for (const stop of [String(perEpoch), String(perEpoch - 2)]) {
      const split = tempDir();
      expect((await run(split, '--max-steps', stop)).code).toBe(0);
      expect(readCheckpointMeta(split).position.globalStep).toBe(Number(stop));
      const resumed = await run(split, '--resume');
      expect(resumed.code, resumed.err).toBe(0);
      for (const file of ['model.safetensors', 'samples-epoch-2.txt'])
        expect(digest(join(split, file)), `stop at ${stop}: ${file}`).toBe(digest(join(straight, file)));
    }
  }, 120_000);

  test('--resume refuses changed settings before a backend starts', async () => {
    const out = tempDir();
    const args = trainArgs('charrnn', out, '--data', namesFile, '--batch-size', '16', '--epochs', '2');
    expect((await cli([...args, '--max-steps', '2'])).code).toBe(0);
    for (const [flag, value] of [
      ['--hidden', '32'],
      ['--lr', '0.01'],
      ['--data', 'names'],
      ['--cell', 'lstm'],
    ]) {
      const changed = [...args, '--resume'];
      const at = changed.indexOf(flag);
      if (at >= 0) changed[at + 1] = value;
      else changed.push(flag, value);
      starts.count = 0;
      const { code, err } = await cli(changed);
      expect(code, `${flag} ${value}`).toBe(2);
      expect(err).toContain(`${flag} ${value} (the checkpoint's:`);
      expect(starts.count).toBe(0);
    }
  }, 60_000);
});

describe('checkpoints', () => {
  let dir: string;
  beforeAll(async () => {
    dir = tempDir();
    const { code } = await cli(
      trainArgs('charrnn', dir, '--data', namesFile, '--batch-size', '16', '--max-steps', '1'),
    );
    expect(code).toBe(0);
  }, 60_000);

  test('one file that restores the model, its steps and its noise offset', () => {
    expect(readdirSync(dir).filter((f) => f.includes('safetensors'))).toEqual(['model.safetensors']);
    const { model, meta } = loadTextCheckpoint(dir);
    expect(model.config.kind).toBe('charrnn');
    expect(model.steps).toBe(1);
    expect(model.noise.offset).toBe(meta.noiseOffset);
    expect(model.tokenizer.vocabSize).toBe(meta.config.vocabSize);
  });

  test('refuses another family, a mismatched tokenizer, a missing tokenizer', () => {
    expect(() => loadCheckpoint(dir)).toThrow(
      /holds a charrnn \(a text model\), not an image model; load it with loadTextCheckpoint/,
    );
    const file = join(dir, 'model.safetensors');
    const original = readFileSync(file);
    try {
      writeFileSync(
        file,
        editMeta(original, (m) => {
          const tokenizer = m.tokenizer as { chars: string[] };
          return { ...m, tokenizer: { ...tokenizer, chars: tokenizer.chars.slice(1) } };
        }),
      );
      expect(() => loadTextCheckpoint(dir)).toThrow(
        /is not a valid checkpoint: .*vocabSize \d+ differs from the tokenizer's/,
      );
      writeFileSync(
        file,
        editMeta(original, ({ tokenizer: _, ...m }) => m),
      );
      expect(() => readCheckpointMeta(dir)).toThrow(/a charrnn checkpoint needs its tokenizer/);
    } finally {
      writeFileSync(file, original);
    }
  });
});

describe('arguments', () => {
  let dir: string;
  beforeAll(async () => {
    dir = tempDir();
    const { code } = await cli(
      trainArgs('charlm', dir, '--data', namesFile, '--batch-size', '16', '--max-steps', '1'),
    );
    expect(code).toBe(0);
  }, 60_000);

  test('bad arguments exit 2 with a clear message before a backend starts', async () => {
    const bad = join(tempDir(), 'latin1.txt');
    writeFileSync(bad, new Uint8Array([0x61, 0x62, 0x0a, 0xe9, 0x0a]));
    const empty = join(tempDir(), 'empty.txt');
    writeFileSync(empty, '\n\n');
    const sample = ['sample', '--checkpoint', dir];
    for (const [args, message] of [
      [
        ['train', 'charlm', '--data', 'nmes'],
        /--data must be names, shakespeare or a UTF-8 text file; 'nmes' is none/,
      ],
      [['train', 'charlm', '--data', bad], /not valid UTF-8 at byte 3 \(line 2\)/],
      [['train', 'charrnn', '--data', empty], /no text/],
      [['train', 'charlm', '--data', 'names', '--mode', 'text'], /--mode applies to --data FILE/],
      [['train', 'charlm', '--data', namesFile, '--context', '40'], /window 40 is longer than every line/],
      [['train', 'charlm', '--dim', '10', '--heads', '4'], /--dim 10 must be a multiple of --heads 4/],
      [['train', 'charlm', '--latent', '8'], /--latent does not apply to a text model \(charlm\)/],
      [['train', 'charrnn', '--heads', '2'], /--heads does not apply to a charrnn/],
      [['train', 'charrnn', '--cell', 'rnn'], /--cell must be gru or lstm, got 'rnn'/],
      [['train', 'vae', '--prompt', 'x'], /Unknown option '--prompt'/],
      [['train', 'vae', '--dim', '8'], /--dim does not apply to an image model \(vae\)/],
      [[...sample, '--temperature=-1'], /--temperature must be a number from 0 up to 100, got '-1'/],
      [[...sample, '--temperature', '-1'], /--temperature/],
      [[...sample, '--top-k', '0'], /--top-k must be an integer from 1 to 1000000, got '0'/],
      [[...sample, '--top-k', '99'], /--top-k must be at most the vocabulary's \d+ tokens, got 99/],
      [
        [...sample, '--prompt', 'ROMEO:'],
        /--prompt holds a character outside the model's vocabulary: .*"R" \(U\+0052\)/,
      ],
      [
        [...sample, '--label', '7'],
        /--label applies to conditional image and audio models; a charlm has no labels/,
      ],
      [['eval', '--checkpoint', dir, '--iwae-k', '5'], /--iwae-k does not apply to a text model/],
    ] as const) {
      starts.count = 0;
      const { code, err } = await cli(args[0] === 'train' ? [...args, '--out', tempDir()] : [...args]);
      expect(code, args.join(' ')).toBe(2);
      expect(err, args.join(' ')).toMatch(message);
      expect(starts.count, args.join(' ')).toBe(0);
    }
  });
});
