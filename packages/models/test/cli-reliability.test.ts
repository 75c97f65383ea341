/**
 * Reliability of `fluxion train` and of checkpoints (issue #18, items 1–4 and 11): errors end the
 * run with a non-zero exit, resume is bit-exact from an epoch boundary, a checkpoint is one file,
 * no temporary file stays behind, and arguments are checked strictly before a backend starts.
 * Every run uses the CPU backend, a 4-latent VAE and 200 training digits written as IDX files.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { saveSafetensors } from '@fluxion/nn';
import { afterEach, beforeAll, describe, expect, test, vi } from 'vitest';
import {
  createModel,
  fit,
  type Gan,
  loadCheckpoint,
  loadMnist,
  readCheckpointMeta,
  saveCheckpoint,
  splitDataset,
} from '../src/node.js';
import { cli, digest, editMeta, tempDirs } from './cli-helpers.js';

// Counts backend starts: argument errors must come before any.
const starts = vi.hoisted(() => ({ count: 0 }));
vi.mock('@fluxion/tensor', async (importOriginal) => {
  const { countStarts } = await import('./cli-helpers.js');
  return countStarts(await importOriginal<typeof import('@fluxion/tensor')>(), starts);
});

const root = join(import.meta.dirname, '..', '..', '..');
const tempDir = tempDirs('fluxion-cli-');

/** Writes `images` (count × 28 × 28 in [0, 1]) as float32 IDX files with their labels. */
function writeIdx(dir: string, prefix: string, images: Float32Array, labels: Int32Array): void {
  const count = labels.length;
  const img = new DataView(new ArrayBuffer(16 + 4 * images.length));
  img.setUint32(0, 0x0d03);
  for (const [i, v] of [count, 28, 28].entries()) img.setUint32(4 + 4 * i, v);
  for (const [i, v] of images.entries()) img.setFloat32(16 + 4 * i, v);
  const lab = new Uint8Array(8 + count);
  new DataView(lab.buffer).setUint32(0, 0x0801);
  new DataView(lab.buffer).setUint32(4, count);
  lab.set(labels, 8);
  writeFileSync(join(dir, `${prefix}-images-idx3-ubyte`), new Uint8Array(img.buffer));
  writeFileSync(join(dir, `${prefix}-labels-idx1-ubyte`), lab);
}

/** 200 training and 40 test digits; `poison` replaces the training pixels with NaN. */
function writeDigits(dir: string, poison = false): void {
  const { train, test } = splitDataset(loadMnist(), 1000);
  const images = train.images.slice(0, 200 * 784);
  if (poison) images.fill(Number.NaN);
  writeIdx(dir, 'train', images, train.labels.slice(0, 200));
  writeIdx(dir, 't10k', test.images.slice(0, 40 * 784), test.labels.slice(0, 40));
}

let data: string;
beforeAll(() => {
  data = tempDir();
  writeDigits(data);
});

/** A tiny VAE run: 4 steps per epoch. */
const tiny = (out: string, ...more: string[]) => [
  'train',
  'vae',
  '--backend',
  'cpu',
  '--data',
  data,
  '--batch-size',
  '50',
  '--latent',
  '4',
  '--out',
  out,
  ...more,
];

/** Runs `fluxion` as a child process, killed after `seconds`. */
function spawnCli(args: string[], seconds = 60, prefix: string[] = []) {
  const [cmd, ...rest] = [...prefix, 'node', 'scripts/run-ts.mjs', 'scripts/fluxion.ts', ...args];
  const started = performance.now();
  const r = spawnSync(cmd, rest, { cwd: root, encoding: 'utf8', timeout: seconds * 1000 });
  return { ...r, seconds: (performance.now() - started) / 1000 };
}

const tempFiles = (dir: string) => readdirSync(dir).filter((f) => /\.tmp-\d+$/.test(f));

afterEach(() => {
  vi.restoreAllMocks();
});

describe('errors end the run (item 1)', () => {
  test('a failed write at the epoch checkpoint stops the bar and exits 1 with the cause', () => {
    const out = tempDir();
    mkdirSync(join(out, 'model.safetensors')); // a folder where the checkpoint file goes
    const r = spawnCli(tiny(out, '--epochs', '2'));
    expect(r.error, 'the process did not exit (a progress-bar timer left running?)').toBeUndefined();
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/cannot write '.*model\.safetensors'.*EISDIR/);
    expect(r.stderr).toMatch(/no checkpoint was written/);
    expect(tempFiles(out)).toEqual([]);
  });

  test('a batch larger than the data exits 2 at once, naming the flag', () => {
    const args = tiny(tempDir());
    args[args.indexOf('--batch-size') + 1] = '100000';
    const r = spawnCli(args);
    expect(r.error).toBeUndefined();
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--batch-size 100000 exceeds the 200 training images/);
  });
});

describe('resume (items 2 and 11)', () => {
  test('resuming from an epoch-boundary checkpoint ends with the same file, bit for bit', async () => {
    const straight = tempDir();
    const split = tempDir();
    expect((await cli(tiny(straight, '--epochs', '3'))).code).toBe(0);
    expect((await cli(tiny(split, '--epochs', '1'))).code).toBe(0);
    expect(readCheckpointMeta(split).position).toEqual({ epoch: 1, step: 0, globalStep: 4 });
    expect((await cli(tiny(split, '--epochs', '3', '--resume'))).code).toBe(0);
    // Weights, optimizer state, noise offset, position and loss history: one file, equal bytes.
    for (const file of ['model.safetensors', 'samples-epoch-3.png'])
      expect(digest(join(split, file)), file).toBe(digest(join(straight, file)));
  });

  test('--resume refuses flags that differ from the checkpoint, before a backend starts', async () => {
    const out = tempDir();
    expect((await cli(tiny(out, '--epochs', '1'))).code).toBe(0);
    for (const [flag, value] of [
      ['--lr', '0.01'],
      ['--seed', '3'],
      ['--latent', '8'],
      ['--batch-size', '40'],
    ]) {
      const args = tiny(out, '--epochs', '2', '--resume');
      const at = args.indexOf(flag);
      if (at >= 0) args[at + 1] = value;
      else args.push(flag, value);
      starts.count = 0;
      const { code, err } = await cli(args);
      expect(code, `${flag} ${value}`).toBe(2);
      expect(err).toContain(`${flag} ${value} (the checkpoint's:`);
      expect(starts.count).toBe(0);
    }
    // The same values are accepted.
    expect((await cli(tiny(out, '--epochs', '2', '--resume', '--seed', '0'))).code).toBe(0);
  });

  test('a resumed run that has nothing left to train says so and exits 2', async () => {
    const out = tempDir();
    expect((await cli(tiny(out, '--epochs', '1'))).code).toBe(0);
    const { code, err } = await cli(tiny(out, '--resume'));
    expect(code).toBe(2);
    expect(err).toMatch(/has finished its 1 epochs; pass --epochs above 1/);
  });

  test('a hand-edited position is an error naming the checkpoint, not "trained 0 steps"', async () => {
    const out = tempDir();
    expect((await cli(tiny(out, '--epochs', '1'))).code).toBe(0);
    const file = join(out, 'model.safetensors');
    const original = readFileSync(file);
    for (const [position, message] of [
      [{ epoch: 1, step: 0, globalStep: 9 }, /does not fit this run's 4 batches per epoch/],
      [{ epoch: 2, step: 0, globalStep: 8 }, /loss history of 4 steps: the checkpoint was edited/],
      [{ epoch: 1, step: -1, globalStep: 4 }, /position\.step -1 is not an integer ≥ 0/],
      [{ epoch: '1', step: 0, globalStep: 4 }, /position\.epoch "1" is not an integer ≥ 0/],
    ] as const) {
      writeFileSync(
        file,
        editMeta(original, (meta) => ({ ...meta, position })),
      );
      const { code, err } = await cli(tiny(out, '--epochs', '5', '--resume'));
      expect(code, JSON.stringify(position)).toBe(1);
      expect(err).toMatch(message);
    }
    writeFileSync(
      file,
      editMeta(original, (m) => ({ ...m, config: { ...(m.config as object), lr: 'fast' } })),
    );
    const { code, err } = await cli(tiny(out, '--epochs', '5', '--resume'));
    expect(code).toBe(1);
    expect(err).toMatch(/config\.lr "fast" is not a positive number/);
  });

  test('a non-finite loss stops the run naming the step, keeps the last checkpoint, exits 1', async () => {
    const digits = tempDir();
    writeDigits(digits);
    const out = tempDir();
    const args = tiny(out, '--epochs', '3');
    args[args.indexOf('--data') + 1] = digits;
    expect((await cli([...args, '--max-steps', '4'])).code).toBe(0);
    const saved = digest(join(out, 'model.safetensors'));
    writeDigits(digits, true); // the same folder, now with NaN pixels: step 5's loss is NaN
    const { code, err } = await cli([...args, '--resume']);
    expect(code).toBe(1);
    expect(err).toMatch(/the loss is not finite at step 5 \(epoch 1, batch 1\): loss NaN/);
    expect(err).toMatch(/the last checkpoint in '.*' is from step 4/);
    expect(digest(join(out, 'model.safetensors'))).toBe(saved);
  });
});

describe('arguments (item 11)', () => {
  test('numbers are parsed strictly and checked before a backend starts', async () => {
    for (const [flag, value] of [
      ['--epochs', '0x2'],
      ['--epochs', 'abc'],
      ['--epochs', '2.5'],
      ['--batch-size', ' 64'],
      ['--seed', '1e300'],
      ['--seed', '4294967296'],
      ['--lr', '1e308'],
      ['--lr', 'Infinity'],
      ['--latent', '1000000'],
      ['--max-steps', '0'],
      ['--minutes', 'NaN'],
    ]) {
      starts.count = 0; // no --backend: the default would start WebGPU
      const { code, err } = await cli(['train', 'vae', '--out', tempDir(), flag, value]);
      expect(code, `${flag} ${value}`).toBe(2);
      expect(err).toContain(`${flag} must be`);
      expect(err).toContain(`got '${value}'`);
      expect(starts.count).toBe(0);
    }
    for (const args of [
      ['sample', '--checkpoint', tempDir(), '--n', '0x40'],
      ['eval', '--checkpoint', tempDir(), '--iwae-k', '1e3'],
      ['train', 'vae', '--backend', 'gpu'],
    ]) {
      starts.count = 0;
      expect((await cli(args)).code, args.join(' ')).toBe(2);
      expect(starts.count).toBe(0);
    }
  });

  test('--out under a file names ENOTDIR, before a backend starts', async () => {
    const file = join(tempDir(), 'file');
    writeFileSync(file, '');
    starts.count = 0;
    const { code, err } = await cli(['train', 'vae', '--out', join(file, 'run')]);
    expect(code).toBe(1);
    expect(err).toMatch(/cannot write to '.*file\/run': ENOTDIR/);
    expect(starts.count).toBe(0);
  });

  const namespaces = spawnSync('unshare', ['-rm', 'true']).status === 0;
  test.skipIf(!namespaces)('--out on a read-only file system names EROFS, not ENOENT', () => {
    const ro = tempDir();
    const r = spawnSync(
      'unshare',
      [
        '-rm',
        'sh',
        '-c',
        `mount -t tmpfs -o ro none '${ro}' && exec node scripts/run-ts.mjs scripts/fluxion.ts "$@"`,
        'sh',
        'train',
        'vae',
        '--out',
        join(ro, 'a', 'b'),
      ],
      { cwd: root, encoding: 'utf8', timeout: 60_000 },
    );
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/cannot write to '.*a\/b': EROFS/);
    expect(r.stderr).not.toMatch(/ENOENT/);
  });
});

describe('checkpoints (items 3 and 4)', () => {
  const small = () => {
    const { train } = splitDataset(loadMnist(), 1000);
    return { ...train, count: 100 };
  };

  test('a checkpoint is one file holding weights and position together', async () => {
    const model = createModel('vae', { latent: 4, seed: 2 });
    const { position, history } = await fit(model, small(), { epochs: 1, batchSize: 25, maxSteps: 3 });
    const dir = tempDir();
    await saveCheckpoint(dir, model, position, history, { batchSize: 25 });
    expect(readdirSync(dir)).toEqual(['model.safetensors']);
    const { meta, model: loaded } = loadCheckpoint(dir);
    expect(meta.position).toEqual({ epoch: 0, step: 3, globalStep: 3 });
    expect(loaded.noise.offset).toBe(model.noise.offset);
  });

  test('a WGAN-GP checkpoint carries the last generator loss it reports between generator steps', async () => {
    const gan = createModel('wgan-gp', { latent: 4, seed: 1 }) as Gan;
    const { position, history } = await fit(gan, small(), { epochs: 1, batchSize: 10, maxSteps: 2 });
    const dir = tempDir();
    await saveCheckpoint(dir, gan, position, history);
    const { model } = loadCheckpoint(dir);
    expect(Number.isFinite(gan.lastG)).toBe(true);
    expect((model as Gan).lastG).toBe(gan.lastG);
  });

  test('a pair of files from an older Fluxion (config.json beside the weights) is refused', async () => {
    const model = createModel('vae', { latent: 4 });
    const dir = tempDir();
    const tensors = Object.fromEntries(
      Object.entries(model.modules()).flatMap(([name, m]) =>
        Object.entries(m.stateDict()).map(([k, t]) => [`${name}.${k}`, t] as const),
      ),
    );
    writeFileSync(join(dir, 'model.safetensors'), await saveSafetensors(tensors));
    const meta = { format: 1, config: model.config, position: { epoch: 1, step: 0, globalStep: 70 } };
    writeFileSync(join(dir, 'config.json'), JSON.stringify(meta));
    expect(() => loadCheckpoint(dir)).toThrow(
      /no 'fluxion\.checkpoint' metadata \(a checkpoint of an older Fluxion/,
    );
    const { code, err } = await cli(tiny(dir, '--resume'));
    expect(code).toBe(1);
    expect(err).toMatch(/is not a valid checkpoint/);
  });

  test('a failed save removes its temporary file and leaves the previous checkpoint whole', async () => {
    const model = createModel('vae', { latent: 4 });
    const dir = tempDir();
    mkdirSync(join(dir, 'model.safetensors'));
    await expect(saveCheckpoint(dir, model, { epoch: 0, step: 0, globalStep: 0 }, {})).rejects.toThrow(
      /cannot write '.*model\.safetensors': EISDIR/,
    );
    expect(tempFiles(dir)).toEqual([]);
  });

  test('temporary files of killed runs are removed by the next save and by --resume', async () => {
    const dead = deadPid();
    const dir = tempDir();
    const model = createModel('vae', { latent: 4 });
    const stale = [
      `model.safetensors.tmp-${dead}`,
      `loss.png.tmp-${dead}`,
      `model.safetensors.tmp-${process.pid}`,
    ];
    const live = `model.safetensors.tmp-${process.ppid}`; // a running writer's file stays
    for (const f of [...stale, live]) writeFileSync(join(dir, f), 'partial');
    await saveCheckpoint(dir, model, { epoch: 0, step: 0, globalStep: 0 }, {});
    expect(tempFiles(dir)).toEqual([live]);

    const out = tempDir();
    expect((await cli(tiny(out, '--epochs', '1'))).code).toBe(0);
    writeFileSync(join(out, `samples-epoch-1.png.tmp-${dead}`), 'partial');
    await cli(tiny(out, '--resume')); // nothing left to train: exits 2, but after the clean-up
    expect(tempFiles(out)).toEqual([]);
  });
});

/** A process id that no running process has. */
function deadPid(): number {
  for (let pid = 4_000_000; ; pid--) {
    try {
      process.kill(pid, 0);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ESRCH') return pid;
    }
  }
}
