/**
 * Audio data sets from files: the Free Spoken Digit Dataset shipped in
 * `packages/models/data/audio/` (see its README for the licence, CC BY-SA 4.0, and the format) and
 * a folder of a user's own labelled WAV files, as fixed-length {@link AudioDataset}s. The WAV codec,
 * resampling and fixed-length clips (no Node imports) are re-exported from here.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { FluxionError } from '@fluxion/tensor';
import { packageFilePath } from '../package-file.js';
import {
  type AudioClip,
  type AudioDataset,
  type AudioDatasetOptions,
  audioDataset,
  FSDD_TEST_TAKES,
  fsddClips,
  parseClipName,
  stratifiedHoldOut,
} from './audio.js';
import { readBytes } from './read-bytes.js';
import { type DecodedWav, decodeWav } from './wav.js';

export * from './audio.js';
export * from './wav.js';

/** The shipped FSDD clip index, relative to the package root. */
export const FSDD_INDEX_FILE = 'data/audio/fsdd-clips.tsv';
/** The shipped FSDD samples (see {@link packPcm16}), gzipped, relative to the package root. */
export const FSDD_SAMPLES_FILE = 'data/audio/fsdd-samples.bin.gz';

/**
 * Reads and decodes a WAV file (see {@link decodeWav}); errors name the file.
 *
 * @example
 * ```ts
 * const { samples, sampleRate } = readWavFile('recordings/7_george_0.wav');
 * ```
 */
export function readWavFile(path: string): DecodedWav {
  return decodeWav(readBytes(path, 'readWavFile'), path);
}

/**
 * The 3,000 FSDD recordings as shipped, each at its own length (1,148 to 18,262 samples at
 * 8 kHz), in the order digit, speaker, take, with their raw int16 samples in `pcm`.
 *
 * @example
 * ```ts
 * const clips = loadFsddClips();
 * clips.length;    // 3000
 * clips[0].source; // '0_george_0.wav'
 * ```
 */
export function loadFsddClips(): (AudioClip & { pcm: Int16Array })[] {
  const hint =
    'the package ships it in data/audio/ (reinstall @fluxion/models, or restore the file from git)';
  const index = readFileSync(packageFilePath(FSDD_INDEX_FILE, 'loadFsdd', hint), 'utf8');
  const samplesPath = packageFilePath(FSDD_SAMPLES_FILE, 'loadFsdd', hint);
  let packed: Uint8Array;
  try {
    packed = gunzipSync(readBytes(samplesPath, 'loadFsdd'));
  } catch (e) {
    if (e instanceof FluxionError) throw e;
    throw new FluxionError('loadFsdd', `${samplesPath} is not a valid gzip file: ${(e as Error).message}`);
  }
  return fsddClips(index, packed);
}

/**
 * The Free Spoken Digit Dataset (Jakobovski et al., CC BY-SA 4.0): 3,000 recordings of the digits
 * 0–9 by 6 speakers, 50 takes each, at 8 kHz, centred in {@link FSDD_CLIP_LENGTH} = 8192 samples
 * (why that length: see its doc) and split the data set's own way: takes 0–4 are the test set
 * (300 clips), takes 5–49 train (2,700). Labels are the digits; `speakers` index `speakerNames`
 * (george, jackson, lucas, nicolas, theo, yweweler). Another `sampleRate` resamples every clip
 * (band-limited, {@link resample}); another `length` pads or trims to it.
 *
 * @example
 * ```ts
 * const { train, test } = loadFsdd();
 * train.count;                              // 2700
 * train.audio.subarray(0, train.length);    // the first training clip, 8192 samples in [−1, 1]
 * const wavegan = loadFsdd({ sampleRate: 16000, length: 16384 }); // WaveGAN's 1.024 s at 16 kHz
 * ```
 */
export function loadFsdd(options: AudioDatasetOptions = {}): AudioDataset {
  return audioDataset(loadFsddClips(), (c) => c.take < FSDD_TEST_TAKES, { ...options, name: 'fsdd' });
}

/** Options of {@link loadAudioFolder}. */
export interface AudioFolderOptions extends AudioDatasetOptions {
  /**
   * How the test set is chosen. `'takes'`: FSDD's rule, takes 0–4 test, for files named
   * `{label}_{speaker}_{take}.wav`; `'random'`: a seeded ⌊`testFraction`⌋ of each label
   * ({@link stratifiedHoldOut}); `'auto'` (default): `'takes'` when every name has a take and
   * both parts come out non-empty, else `'random'`.
   */
  split?: 'auto' | 'takes' | 'random';
  /** The share of each label held out by the `'random'` split (default 0.1). */
  testFraction?: number;
  /** The seed of the `'random'` split (default 42). */
  seed?: number;
}

/**
 * A folder of a user's own labelled WAV files as an {@link AudioDataset} (resampled to
 * `sampleRate`, default 8 kHz, and centred in `length` samples, default 8192, as FSDD). A file's
 * label is the name of the sub-folder of `dir` it is in (`dir/7/take1.wav` is a 7, at any depth
 * below `7/`); a file directly in `dir` is labelled by its name up to the first `_`, FSDD's
 * convention (`dir/7_george_0.wav` is a 7), so an extracted FSDD `recordings/` folder loads as it
 * is. Labels that are all whole numbers are the class ids; other labels (`yes/`, `no/`) are
 * numbered in sorted order (`classNames`). Files and folders whose names start with `.` are
 * skipped. Any WAV format {@link decodeWav} reads is accepted, stereo is averaged to mono. Clips
 * are in the sorted order of their paths within each part. (The 3,000 FSDD WAV files loaded this
 * way give exactly the clips and split of {@link loadFsdd}, in another order.)
 *
 * Errors ({@link FluxionError}, naming the file): the folder is missing or holds no WAV files, a
 * file that is not `.wav`, a file in `dir` itself whose name carries no label, a WAV file that
 * cannot be read, and a `'takes'` split for names without takes.
 *
 * @example
 * ```ts
 * // my-digits/0/a.wav, my-digits/0/b.wav, …, my-digits/9/z.wav
 * const ds = loadAudioFolder('my-digits', { length: 8192, sampleRate: 8000 });
 * ds.classNames; // ['0', '1', …, '9']
 * ```
 */
export function loadAudioFolder(dir: string, options: AudioFolderOptions = {}): AudioDataset {
  const op = 'loadAudioFolder';
  const { split = 'auto', testFraction = 0.1, seed = 42, ...rest } = options;
  if (split !== 'auto' && split !== 'takes' && split !== 'random')
    throw new FluxionError(op, `split must be 'auto', 'takes' or 'random', got ${String(split)}`);
  let isDir = false;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    throw new FluxionError(op, `cannot read the folder ${dir}: no such file or folder`);
  }
  if (!isDir) throw new FluxionError(op, `${dir} is a file, not a folder of WAV files`);
  const files: string[] = [];
  const walk = (at: string) => {
    for (const entry of readdirSync(at, { withFileTypes: true })) {
      if (entry.name.startsWith('.')) continue;
      const path = join(at, entry.name);
      if (entry.isDirectory()) walk(path);
      else files.push(path);
    }
  };
  walk(dir);
  files.sort();
  const notWav = files.filter((f) => !/\.wav$/i.test(f));
  if (notWav.length)
    throw new FluxionError(
      op,
      `${notWav[0]} is not a .wav file${notWav.length > 1 ? ` (nor are ${notWav.length - 1} more)` : ''}; the folder must hold only WAV files, labelled by sub-folder (7/a.wav) or by name (7_a.wav)`,
    );
  if (!files.length)
    throw new FluxionError(
      op,
      `${dir} holds no WAV files; put them in sub-folders named by label (7/a.wav) or name them by label (7_a.wav)`,
    );
  const clips = files.map((path): AudioClip => {
    const parts = relative(dir, path).split(sep);
    const fileName = parts.at(-1)!;
    const named = parseClipName(fileName);
    const label = parts.length > 1 ? parts[0] : named?.label;
    if (label === undefined)
      throw new FluxionError(
        op,
        `cannot tell the label of ${path}: name it {label}_….wav (e.g. 7_${fileName}) or put it in a sub-folder named by its label (7/${fileName})`,
      );
    const { samples, sampleRate } = readWavFile(path);
    return {
      samples,
      sampleRate,
      label,
      speaker: named?.speaker ?? '',
      take: named?.take ?? -1,
      source: path,
    };
  });
  const byTakes = (c: AudioClip) => c.take < FSDD_TEST_TAKES;
  const takesWork = clips.every((c) => c.take >= 0) && clips.some(byTakes) && !clips.every(byTakes);
  if (split === 'takes' && !takesWork) {
    const bad = clips.find((c) => c.take < 0);
    throw new FluxionError(
      op,
      bad
        ? `split 'takes' needs names {label}_{speaker}_{take}.wav; ${bad.source} has no take`
        : `split 'takes' leaves ${clips.some(byTakes) ? 'no training clips' : 'no test clips'} (test: takes 0–${FSDD_TEST_TAKES - 1})`,
    );
  }
  if (split === 'takes' || (split === 'auto' && takesWork))
    return audioDataset(clips, byTakes, { ...rest, name: dir });
  const flags = stratifiedHoldOut(
    clips.map((c) => c.label),
    testFraction,
    seed,
  );
  const test = new Set(clips.filter((_, i) => flags[i]));
  return audioDataset(clips, (c) => test.has(c), { ...rest, name: dir });
}
