/**
 * Audio data that runs anywhere (no Node imports): band-limited resampling, fixed-length clips,
 * fixed-length datasets with their split, the clip-name convention of the Free Spoken Digit
 * Dataset and the compact form in which the package ships it. The Node loaders (`loadFsdd`,
 * `loadAudioFolder`) are in `audio-files.ts`.
 */
import { FluxionError } from '@fluxion/tensor';
import { permutation } from './shuffle.js';

/** The sample rate of the Free Spoken Digit Dataset's recordings (Hz). */
export const FSDD_SAMPLE_RATE = 8000;

/**
 * The default clip length in samples: 8192 samples = 1.024 s at 8 kHz. It keeps 99.4 % of the
 * FSDD recordings whole (their lengths in samples, nearest-rank percentiles: median 3,357, 95th
 * 5,299, 99th 7,361, 99.5th 8,281, longest 18,262; 17 of the 3,000 clips are longer), it is a
 * power of two (the generators up-sample by factors of 2 and 4), and it is the duration of
 * WaveGAN's 16,384 samples at 16 kHz. 4,096 samples would cut 734 clips (a quarter) short; 16,384
 * would double the cost to keep 15 more clips whole.
 */
export const FSDD_CLIP_LENGTH = 8192;

/** Takes 0 to `FSDD_TEST_TAKES − 1` of every speaker and digit are the test set (the data set's own rule). */
export const FSDD_TEST_TAKES = 5;

/** Options of {@link resample}. */
export interface ResampleOptions {
  /** Zero crossings of the sinc on each side of the centre (default 32): longer is sharper and slower. */
  zeros?: number;
  /** The cutoff as a fraction of the lower of the two Nyquist frequencies (default 0.9). */
  rolloff?: number;
  /** The Kaiser window's β (default 8.6: stop band about 90 dB down). */
  beta?: number;
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/** The zeroth-order modified Bessel function of the first kind (power series). */
function besselI0(x: number): number {
  let sum = 1;
  let term = 1;
  for (let k = 1; term > 1e-12 * sum; k++) {
    term *= (x / (2 * k)) ** 2;
    sum += term;
  }
  return sum;
}

/**
 * Resamples `x` from `fromRate` to `toRate` (positive integers, Hz) with a Kaiser-windowed sinc
 * filter (band-limited interpolation, as resampy and libsamplerate's sinc converters do): output
 * sample n sits at input position p = n·from/to and is Σₖ x[k]·s·sinc(s·(p − k))·w(p − k), where
 * s = rolloff·min(1, to/from) puts the cutoff below the lower Nyquist frequency (anti-aliasing when
 * going down, anti-imaging when going up) and w is a Kaiser window spanning `zeros` zero crossings
 * each side. With the ratio reduced to L/M, only L fractional positions occur: their filters are
 * computed once (a polyphase bank) when L ≤ 4096, and per sample otherwise. Samples outside the
 * input count as zeros. The output has ⌈len·to/from⌉ samples; equal rates return a copy.
 *
 * With the defaults (measured, in fractions of the lower Nyquist frequency): tones up to 0.8 keep
 * their amplitude within 0.05 %, 0.85 loses 0.2 dB, the cutoff 0.9 is −6 dB, 0.95 −33 dB, and
 * from 0.99 up they are about 90 dB down. At 8 kHz: flat to 3.2 kHz, nothing left above 4 kHz.
 *
 * @example
 * ```ts
 * const at8k = resample(at16k, 16000, 8000); // half as many samples, nothing above ~3.6 kHz
 * ```
 */
export function resample(
  x: Float32Array,
  fromRate: number,
  toRate: number,
  options: ResampleOptions = {},
): Float32Array {
  for (const [name, rate] of [
    ['fromRate', fromRate],
    ['toRate', toRate],
  ] as const)
    if (!Number.isInteger(rate) || rate <= 0)
      throw new FluxionError('resample', `${name} must be a positive integer (Hz), got ${rate}`);
  const { zeros = 32, rolloff = 0.9, beta = 8.6 } = options;
  if (!(zeros >= 1) || !(rolloff > 0 && rolloff <= 1) || !(beta >= 0))
    throw new FluxionError(
      'resample',
      `need zeros ≥ 1, 0 < rolloff ≤ 1 and beta ≥ 0; got zeros ${zeros}, rolloff ${rolloff}, beta ${beta}`,
    );
  const g = gcd(fromRate, toRate);
  const up = toRate / g;
  const down = fromRate / g;
  if (up === down) return x.slice();
  const scale = rolloff * Math.min(1, up / down);
  const half = Math.ceil(zeros / scale); // taps each side, in input samples
  const taps = 2 * half;
  const i0beta = besselI0(beta);
  // The filter for fractional position `phase / up`: taps[j] weights x[base − half + 1 + j].
  const filter = (phase: number, out: Float64Array) => {
    const frac = phase / up;
    for (let j = 0; j < taps; j++) {
      const t = frac + half - 1 - j;
      const u = (t * scale) / zeros;
      if (Math.abs(u) >= 1) {
        out[j] = 0;
        continue;
      }
      const a = Math.PI * scale * t;
      const sinc = a === 0 ? 1 : Math.sin(a) / a;
      out[j] = (scale * sinc * besselI0(beta * Math.sqrt(1 - u * u))) / i0beta;
    }
    return out;
  };
  const bank =
    up <= 4096 ? Array.from({ length: up }, (_, phase) => filter(phase, new Float64Array(taps))) : undefined;
  const scratch = new Float64Array(taps);
  const n = x.length;
  const y = new Float32Array(Math.ceil((n * up) / down));
  for (let i = 0; i < y.length; i++) {
    const pos = i * down;
    const base = Math.floor(pos / up);
    const phase = pos - base * up;
    const h = bank ? bank[phase] : filter(phase, scratch);
    const first = base - half + 1;
    const from = Math.max(0, first);
    const to = Math.min(n, first + taps);
    let acc = 0;
    for (let k = from; k < to; k++) acc += x[k] * h[k - first];
    y[i] = acc;
  }
  return y;
}

/**
 * `x` centred in `length` samples: a shorter clip gets ⌊(length − n)/2⌋ zeros before it and the
 * rest after; a longer one loses ⌊(n − length)/2⌋ samples at the start and the rest at the end
 * (the FSDD recordings are cut close around the word, so the middle is where the word is). Writes
 * into `out` (which must have `length` samples, and is zero-filled first) when given.
 *
 * @example
 * ```ts
 * fitLength(new Float32Array([1, 2, 3]), 6);       // [0, 1, 2, 3, 0, 0]
 * fitLength(new Float32Array([1, 2, 3, 4, 5]), 2); // [2, 3]
 * ```
 */
export function fitLength(x: Float32Array, length: number, out = new Float32Array(length)): Float32Array {
  if (!Number.isInteger(length) || length <= 0)
    throw new FluxionError('fitLength', `length must be a positive integer, got ${length}`);
  if (out.length !== length)
    throw new FluxionError('fitLength', `out has ${out.length} samples, expected ${length}`);
  out.fill(0);
  if (x.length <= length) out.set(x, (length - x.length) >> 1);
  else {
    const start = (x.length - length) >> 1;
    out.set(x.subarray(start, start + length));
  }
  return out;
}

/** One recording: mono samples with their rate and labels. */
export interface AudioClip {
  /** Mono samples, in [−1, 1] for integer WAV files. */
  samples: Float32Array;
  /** Samples per second. */
  sampleRate: number;
  /** The class name: the digit for FSDD (`'7'`), a folder or file-name prefix for a user's data. */
  label: string;
  /** The speaker from an FSDD-style name (`7_george_3.wav` → `'george'`), or `''` when unknown. */
  speaker: string;
  /** The take from an FSDD-style name (`7_george_3.wav` → 3), or −1 when unknown. */
  take: number;
  /** Where the clip came from (a path, or the FSDD file name), for messages. */
  source: string;
}

/** One part (train or test) of an {@link AudioDataset}. */
export interface AudioSplit {
  /** `count × length` samples, row-major (clip i is `audio.subarray(i·length, (i+1)·length)`). */
  audio: Float32Array;
  /** Class ids: the digit for FSDD; see {@link AudioDataset.classNames}. */
  labels: Int32Array;
  /** Index into {@link AudioDataset.speakerNames}, or −1 when the speaker is unknown. */
  speakers: Int32Array;
  /** Takes (−1 when unknown). */
  takes: Int32Array;
  count: number;
  length: number;
}

/** Fixed-length labelled clips at one sample rate, split into train and test. */
export interface AudioDataset {
  name: string;
  sampleRate: number;
  /** Samples per clip. */
  length: number;
  /** `classNames[label]` is the name of class `label` (`'0'`…`'9'` for FSDD). */
  classNames: string[];
  /** Speakers in sorted order (empty when no name carries one). */
  speakerNames: string[];
  train: AudioSplit;
  test: AudioSplit;
}

/** The parts of an FSDD-style clip name, `{label}_{speaker}_{take}.wav`. */
export interface ClipName {
  label: string;
  speaker: string;
  take: number;
}

/**
 * Splits a clip's file name (without folders) the FSDD way: `7_george_3.wav` → label `'7'`,
 * speaker `'george'`, take 3. A name of only `{label}_{anything}.wav` gives the label with speaker
 * `''` and take −1; a name without `_` (or starting with it) gives `undefined`.
 *
 * @example
 * ```ts
 * parseClipName('7_george_3.wav'); // { label: '7', speaker: 'george', take: 3 }
 * parseClipName('yes_0042.wav');   // { label: 'yes', speaker: '', take: -1 }
 * parseClipName('hello.wav');      // undefined
 * ```
 */
export function parseClipName(fileName: string): ClipName | undefined {
  const stem = fileName.replace(/\.wav$/i, '');
  const full = /^([^_]+)_(.+)_(\d+)$/.exec(stem);
  if (full) return { label: full[1], speaker: full[2], take: Number(full[3]) };
  const prefix = /^([^_]+)_/.exec(stem);
  return prefix ? { label: prefix[1], speaker: '', take: -1 } : undefined;
}

/** Options of {@link audioDataset}. */
export interface AudioDatasetOptions {
  /** Samples per clip (default {@link FSDD_CLIP_LENGTH}); clips are centred by {@link fitLength}. */
  length?: number;
  /** The rate of the dataset (default {@link FSDD_SAMPLE_RATE}); other clips are {@link resample}d. */
  sampleRate?: number;
}

/**
 * Fixed-length clips in two parts: each clip resampled to `sampleRate` if needed, centred in
 * `length` samples, and put in `test` where `isTest(clip)` holds, else in `train` (both in the
 * order of `clips`). Class names that are all whole numbers (`'0'`…`'9'`) are class ids themselves
 * (`classNames[7] === '7'`; missing numbers get empty names); other names are numbered in sorted
 * order.
 *
 * @example
 * ```ts
 * const ds = audioDataset(clips, (c) => c.take < 5, { length: 8192, sampleRate: 8000 });
 * ds.train.audio.subarray(0, ds.length); // the first training clip
 * ```
 */
export function audioDataset(
  clips: readonly AudioClip[],
  isTest: (clip: AudioClip) => boolean,
  options: AudioDatasetOptions & { name?: string } = {},
): AudioDataset {
  const { length = FSDD_CLIP_LENGTH, sampleRate = FSDD_SAMPLE_RATE, name = 'audio' } = options;
  if (!Number.isInteger(length) || length <= 0)
    throw new FluxionError('audioDataset', `length must be a positive integer, got ${length}`);
  if (!Number.isInteger(sampleRate) || sampleRate <= 0)
    throw new FluxionError('audioDataset', `sampleRate must be a positive integer (Hz), got ${sampleRate}`);
  const names = [...new Set(clips.map((c) => c.label))];
  const numeric = names.every((l) => /^\d+$/.test(l) && Number(l) < 65536);
  let classNames: string[];
  if (numeric) {
    classNames = Array.from({ length: Math.max(-1, ...names.map(Number)) + 1 }, () => '');
    for (const l of names) classNames[Number(l)] = String(Number(l));
  } else classNames = names.sort();
  const classOf = (l: string) => (numeric ? Number(l) : classNames.indexOf(l));
  const speakerNames = [...new Set(clips.map((c) => c.speaker).filter((s) => s !== ''))].sort();
  const parts = [clips.filter((c) => !isTest(c)), clips.filter(isTest)].map((part): AudioSplit => {
    const audio = new Float32Array(part.length * length);
    part.forEach((c, i) => {
      const x = c.sampleRate === sampleRate ? c.samples : resample(c.samples, c.sampleRate, sampleRate);
      fitLength(x, length, audio.subarray(i * length, (i + 1) * length));
    });
    return {
      audio,
      labels: Int32Array.from(part, (c) => classOf(c.label)),
      speakers: Int32Array.from(part, (c) => (c.speaker === '' ? -1 : speakerNames.indexOf(c.speaker))),
      takes: Int32Array.from(part, (c) => c.take),
      count: part.length,
      length,
    };
  });
  return { name, sampleRate, length, classNames, speakerNames, train: parts[0], test: parts[1] };
}

/**
 * Picks about `fraction` of each class for the test set by a seeded shuffle ({@link permutation}):
 * ⌊fraction·count⌋ clips of each class (so a class of fewer than 1/fraction clips has none held
 * out). Returns one flag per clip, true for test.
 *
 * @example
 * ```ts
 * const flags = stratifiedHoldOut(clips.map((c) => c.label), 0.1, 42);
 * const ds = audioDataset(clips, (c) => flags[clips.indexOf(c)]);
 * ```
 */
export function stratifiedHoldOut(labels: readonly string[], fraction: number, seed: number): boolean[] {
  if (!(fraction > 0 && fraction < 1))
    throw new FluxionError('stratifiedHoldOut', `fraction must be in (0, 1), got ${fraction}`);
  const total = new Map<string, number>();
  for (const l of labels) total.set(l, (total.get(l) ?? 0) + 1);
  const taken = new Map<string, number>();
  const flags = labels.map(() => false);
  for (const i of permutation(labels.length, seed, 0)) {
    const l = labels[i];
    const k = taken.get(l) ?? 0;
    if (k < Math.floor(fraction * total.get(l)!)) {
      flags[i] = true;
      taken.set(l, k + 1);
    }
  }
  return flags;
}

// ---- The compact form in which the package ships FSDD (`data/audio/`) -------------------------

/** The header line of the clip index `fsdd-clips.tsv`. */
export const FSDD_INDEX_HEADER = 'digit\tspeaker\ttake\tsamples';

/** One row of the FSDD clip index. */
export interface FsddEntry {
  digit: number;
  speaker: string;
  take: number;
  /** Samples in the clip. */
  samples: number;
}

/**
 * The clip index as text: the header {@link FSDD_INDEX_HEADER}, then one tab-separated line per
 * clip in the order of the samples file, ending with a newline.
 *
 * @example
 * ```ts
 * formatFsddIndex([{ digit: 0, speaker: 'george', take: 0, samples: 3421 }]);
 * // 'digit\tspeaker\ttake\tsamples\n0\tgeorge\t0\t3421\n'
 * ```
 */
export function formatFsddIndex(entries: readonly FsddEntry[]): string {
  return `${[FSDD_INDEX_HEADER, ...entries.map((e) => `${e.digit}\t${e.speaker}\t${e.take}\t${e.samples}`)].join('\n')}\n`;
}

/**
 * Parses the clip index written by {@link formatFsddIndex}; a {@link FluxionError} naming `source`
 * and the line for anything else.
 *
 * @example
 * ```ts
 * parseFsddIndex('digit\tspeaker\ttake\tsamples\n0\tgeorge\t0\t3421\n')[0].samples; // 3421
 * ```
 */
export function parseFsddIndex(text: string, source = 'fsdd-clips.tsv'): FsddEntry[] {
  const lines = text.split('\n');
  if (lines[0] !== FSDD_INDEX_HEADER)
    throw new FluxionError('parseFsddIndex', `${source}: the first line is not '${FSDD_INDEX_HEADER}'`);
  return lines.slice(1, lines.at(-1) === '' ? -1 : undefined).map((line, i) => {
    const m = /^(\d)\t([a-z]+)\t(\d+)\t(\d+)$/.exec(line);
    if (!m)
      throw new FluxionError(
        'parseFsddIndex',
        `${source}: line ${i + 2} is not 'digit speaker take samples'`,
      );
    return { digit: Number(m[1]), speaker: m[2], take: Number(m[3]), samples: Number(m[4]) };
  });
}

/**
 * Packs int16 samples for compression: each sample minus the one before (mod 2¹⁶, the first minus
 * 0), then the low bytes of all these differences followed by their high bytes. Speech changes
 * slowly from sample to sample, so the differences are small and the high-byte plane is mostly
 * 0x00 and 0xFF: gzip then takes FSDD from 21.0 MB to 12.7 MB (15.4 MB gzipping the raw samples).
 * {@link unpackPcm16} inverts it exactly.
 *
 * @example
 * ```ts
 * packPcm16(new Int16Array([5, 7, 4])); // [5, 2, 253, 0, 0, 255]
 * ```
 */
export function packPcm16(samples: Int16Array): Uint8Array {
  const n = samples.length;
  const out = new Uint8Array(2 * n);
  let prev = 0;
  for (let i = 0; i < n; i++) {
    const d = (samples[i] - prev) & 0xffff;
    out[i] = d & 0xff;
    out[n + i] = d >> 8;
    prev = samples[i];
  }
  return out;
}

/**
 * Inverts {@link packPcm16}; a {@link FluxionError} naming `source` for an odd number of bytes.
 *
 * @example
 * ```ts
 * unpackPcm16(packPcm16(new Int16Array([5, 7, 4]))); // Int16Array [5, 7, 4]
 * ```
 */
export function unpackPcm16(bytes: Uint8Array, source = 'packed samples'): Int16Array {
  if (bytes.length % 2)
    throw new FluxionError('unpackPcm16', `${source}: ${bytes.length} bytes, not a whole number of samples`);
  const n = bytes.length / 2;
  const out = new Int16Array(n);
  let prev = 0;
  for (let i = 0; i < n; i++) {
    prev = (prev + (bytes[i] | (bytes[n + i] << 8))) & 0xffff;
    out[i] = prev; // Int16Array wraps 32768…65535 to negative values
  }
  return out;
}

/**
 * The FSDD clips from the two shipped files (the index text and the gunzipped samples), as
 * {@link AudioClip}s at 8 kHz (int16 / 32768) with their raw int16 samples (the clips are views of
 * two arrays that hold all the samples); a
 * {@link FluxionError} when the index and the samples disagree. Runs in a browser too, given the
 * files (e.g. gunzipped with `DecompressionStream('gzip')`).
 *
 * @example
 * ```ts
 * const clips = fsddClips(indexText, gunzipSync(readFileSync(samplesPath)));
 * clips[0].source; // '0_george_0.wav'
 * ```
 */
export function fsddClips(indexText: string, packed: Uint8Array): (AudioClip & { pcm: Int16Array })[] {
  const entries = parseFsddIndex(indexText);
  const pcm = unpackPcm16(packed, 'fsdd-samples.bin.gz');
  const total = entries.reduce((s, e) => s + e.samples, 0);
  if (total !== pcm.length)
    throw new FluxionError(
      'fsddClips',
      `fsdd-clips.tsv lists ${total} samples but fsdd-samples.bin.gz holds ${pcm.length}; the two files do not belong together`,
    );
  const scaled = new Float32Array(pcm.length); // one buffer; each clip is a view of it
  for (let i = 0; i < pcm.length; i++) scaled[i] = pcm[i] / 32768;
  let at = 0;
  return entries.map((e) => {
    const clip = pcm.subarray(at, at + e.samples);
    const samples = scaled.subarray(at, (at += e.samples));
    return {
      samples,
      sampleRate: FSDD_SAMPLE_RATE,
      label: String(e.digit),
      speaker: e.speaker,
      take: e.take,
      source: `${e.digit}_${e.speaker}_${e.take}.wav`,
      pcm: clip,
    };
  });
}
