/**
 * Audio data: the WAV codec (a bit-exact 16-bit round trip, every supported format read from bytes
 * built here with known values, stereo to mono, skipped chunks, each malformed file), band-limited
 * resampling (a sine keeps its frequency and amplitude, a tone above the new Nyquist frequency is
 * removed), centred fixed-length clips, the shipped FSDD (checksums, the split) and a user's folder
 * of labelled WAV files with each bad input.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FluxionError } from '@fluxion/tensor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AudioDataset,
  audioDataset,
  decodeWav,
  encodeWav,
  FSDD_CLIP_LENGTH,
  fitLength,
  formatFsddIndex,
  loadAudioFolder,
  loadFsdd,
  loadFsddClips,
  packPcm16,
  parseClipName,
  parseFsddIndex,
  parseWav,
  readWavFile,
  resample,
  stratifiedHoldOut,
  unpackPcm16,
} from '../src/data/audio-files.js';

// ---- WAV bytes built by hand -------------------------------------------------------------------

const ascii = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));
const concat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};
const u32 = (v: number) => new Uint8Array(new Uint32Array([v]).buffer);
/** A RIFF chunk: id, size, body and the pad byte of an odd size. */
const chunk = (id: string, body: Uint8Array, size = body.length) =>
  concat(ascii(id), u32(size), body, new Uint8Array(body.length & 1));
/** A RIFF/WAVE file of `chunks`; `riffSize` overrides the header's size. */
const riff = (chunks: Uint8Array[], riffSize?: number) => {
  const body = concat(ascii('WAVE'), ...chunks);
  return concat(ascii('RIFF'), u32(riffSize ?? body.length), body);
};
const KS_GUID_TAIL = [0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71];
interface Fmt {
  tag: number;
  channels?: number;
  rate?: number;
  bits: number;
  blockAlign?: number;
  /** Write WAVE_FORMAT_EXTENSIBLE with this subformat tag. */
  sub?: number;
  guidTail?: number[];
}
const fmtChunk = ({
  tag,
  channels = 1,
  rate = 8000,
  bits,
  blockAlign,
  sub,
  guidTail = KS_GUID_TAIL,
}: Fmt) => {
  const ext = sub !== undefined;
  const b = new Uint8Array(ext ? 40 : 16);
  const v = new DataView(b.buffer);
  const align = blockAlign ?? (channels * bits) / 8;
  v.setUint16(0, ext ? 0xfffe : tag, true);
  v.setUint16(2, channels, true);
  v.setUint32(4, rate, true);
  v.setUint32(8, rate * align, true);
  v.setUint16(12, align, true);
  v.setUint16(14, bits, true);
  if (ext) {
    v.setUint16(16, 22, true);
    v.setUint16(18, bits, true);
    v.setUint32(20, channels === 1 ? 4 : 3, true);
    v.setUint16(24, sub, true);
    b.set(guidTail, 26);
  }
  return chunk('fmt ', b);
};
/** Little-endian samples of `bits` bits (integers as given; `float` for IEEE floats). */
const samplesLE = (bits: number, values: number[], float = false) => {
  const b = new Uint8Array((values.length * bits) / 8);
  const v = new DataView(b.buffer);
  values.forEach((x, i) => {
    const at = (i * bits) / 8;
    if (float) bits === 32 ? v.setFloat32(at, x, true) : v.setFloat64(at, x, true);
    else if (bits === 8) v.setUint8(at, x);
    else if (bits === 16) v.setInt16(at, x, true);
    else if (bits === 32) v.setInt32(at, x, true);
    else for (let k = 0; k < 3; k++) b[at + k] = (x >> (8 * k)) & 0xff;
  });
  return b;
};
const wav = (fmt: Fmt, values: number[], float = false) =>
  riff([fmtChunk(fmt), chunk('data', samplesLE(fmt.bits, values, float))]);

/** The first index where `a` and `b` differ (or the shorter length), −1 when equal (fast on long arrays). */
const firstDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (!Object.is(a[i], b[i])) return i;
  return a.length === b.length ? -1 : Math.min(a.length, b.length);
};

const throwsWith = (f: () => unknown, ...parts: (string | RegExp)[]) => {
  let error: unknown;
  try {
    f();
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(FluxionError);
  for (const p of parts) expect((error as Error).message).toMatch(p);
};

describe('WAV', () => {
  it('round-trips every 16-bit value bit-exactly', () => {
    const ints = Int16Array.from({ length: 65536 }, (_, i) => i - 32768);
    const file = wav({ tag: 1, bits: 16 }, Array.from(ints));
    const { samples, sampleRate, channels, bitsPerSample, format } = decodeWav(file);
    expect([sampleRate, channels, bitsPerSample, format]).toEqual([8000, 1, 16, 1]);
    const again = encodeWav(samples, sampleRate);
    expect(firstDiff(again, file)).toBe(-1); // the same 44-byte header and the same samples
    const data = parseWav(again).data;
    expect(firstDiff(new Int16Array(data.slice().buffer), ints)).toBe(-1);
    expect(firstDiff(decodeWav(again).samples, samples)).toBe(-1);
  });

  it('writes float32 that reads back exactly, with a fact chunk; pcm16 clamps and rounds', () => {
    const x = Float32Array.from([0, 0.1, -0.7, 1.5, -3, 1e-8]);
    const file = encodeWav(x, 16000, { encoding: 'float32' });
    expect(new TextDecoder().decode(file.subarray(38, 42))).toBe('fact');
    const back = decodeWav(file, 'f.wav');
    expect([back.format, back.bitsPerSample, back.sampleRate]).toEqual([3, 32, 16000]);
    expect(back.samples).toEqual(x); // float samples are kept as stored, even beyond ±1
    const pcm = parseWav(encodeWav(Float32Array.from([1, -1, 2, -2, 0.5, 1 / 65536, Number.NaN]), 8000)).data;
    expect(Array.from(new Int16Array(pcm.slice().buffer))).toEqual([
      32767, -32768, 32767, -32768, 16384, 1, 0,
    ]);
    expect(encodeWav(new Float32Array(3), 8000).length).toBe(44 + 6);
    expect(encodeWav(new Float32Array(3), 8000, { encoding: 'float32' }).length).toBe(58 + 12);
    throwsWith(() => encodeWav(x, 0), 'sample rate', 'positive integer');
    throwsWith(() => encodeWav(x, 8000.5), 'sample rate');
  });

  it('reads every supported format with known values', () => {
    const cases: [string, Uint8Array, number[]][] = [
      ['8-bit unsigned', wav({ tag: 1, bits: 8 }, [0, 64, 128, 255]), [-1, -0.5, 0, 127 / 128]],
      [
        '16-bit',
        wav({ tag: 1, bits: 16 }, [-32768, -1, 0, 16384, 32767]),
        [-1, -1 / 32768, 0, 0.5, 32767 / 32768],
      ],
      [
        '24-bit',
        wav({ tag: 1, bits: 24 }, [-8388608, -1, 0, 4194304, 8388607]),
        [-1, -1 / 8388608, 0, 0.5, 8388607 / 8388608],
      ],
      [
        '32-bit integer',
        wav({ tag: 1, bits: 32 }, [-2147483648, -1073741824, 0, 1 << 30]),
        [-1, -0.5, 0, 0.5],
      ],
      ['32-bit float', wav({ tag: 3, bits: 32 }, [0.25, -0.125, 1], true), [0.25, -0.125, 1]],
      ['64-bit float', wav({ tag: 3, bits: 64 }, [0.1, -0.75, 2], true), [Math.fround(0.1), -0.75, 2]],
      ['extensible 16-bit', wav({ tag: 1, bits: 16, sub: 1 }, [16384, -16384]), [0.5, -0.5]],
      ['extensible 24-bit', wav({ tag: 1, bits: 24, sub: 1 }, [-4194304, 2097152]), [-0.5, 0.25]],
      ['extensible float', wav({ tag: 3, bits: 32, sub: 3 }, [0.5, -0.25], true), [0.5, -0.25]],
    ];
    for (const [what, file, expected] of cases) {
      const { samples } = decodeWav(file, what);
      expect(Array.from(samples), what).toEqual(expected.map(Math.fround));
    }
    // Precision: a 24-bit and a 32-bit LSB are below float32's resolution near 1, not near 0.
    expect(decodeWav(wav({ tag: 1, bits: 32 }, [1])).samples[0]).toBe(Math.fround(2 ** -31));
  });

  it('averages stereo to mono', () => {
    const file = wav({ tag: 1, bits: 16, channels: 2 }, [16384, 0, 0, -32768, 8192, 8192]);
    const d = decodeWav(file);
    expect(d.channels).toBe(2);
    expect(d.frames).toBe(3);
    expect(Array.from(d.samples)).toEqual([0.25, -0.5, 0.25]);
    const f = decodeWav(wav({ tag: 3, bits: 64, channels: 2, sub: 3 }, [1, 0, -0.5, -0.5], true));
    expect(Array.from(f.samples)).toEqual([0.5, -0.5]);
  });

  it('skips unknown chunks (odd sizes padded), finds data before fmt, ignores trailing bytes and a partial frame', () => {
    const odd = chunk('LIST', ascii('INFOabc')); // 7 bytes + 1 pad byte
    const data = chunk('data', samplesLE(16, [100, -200, 300]));
    const fmt = fmtChunk({ tag: 1, bits: 16, rate: 44100 });
    for (const file of [
      riff([odd, fmt, chunk('junk', new Uint8Array(3)), data]),
      riff([data, odd, fmt]),
      concat(riff([fmt, data]), new Uint8Array([1, 2, 3])), // bytes after the RIFF size
      riff([fmt, data], 0xffffffff), // a streaming recorder's placeholder size
    ]) {
      const d = decodeWav(file);
      expect(d.sampleRate).toBe(44100);
      expect(Array.from(d.samples)).toEqual([100, -200, 300].map((v) => v / 32768));
    }
    // A data chunk of 7 bytes holds 3 whole 16-bit frames.
    const partial = riff([fmt, chunk('data', concat(samplesLE(16, [1, 2, 3]), new Uint8Array([9])))]);
    expect(decodeWav(partial).frames).toBe(3);
    // A missing pad byte after an odd last chunk is tolerated.
    const unpadded = riff([fmt, data, chunk('note', ascii('x')).subarray(0, 9)]);
    expect(decodeWav(unpadded).frames).toBe(3);
  });

  it('refuses malformed and unsupported files with errors that name the file and the problem', () => {
    const fmt16 = fmtChunk({ tag: 1, bits: 16 });
    const data = chunk('data', samplesLE(16, [1, 2]));
    const good = riff([fmt16, data]);
    const src = 'clip.wav';
    throwsWith(
      () => parseWav(ascii('OggS\0\0\0\0\0\0\0\0\0\0'), src),
      'clip.wav',
      'not a WAV file',
      "'OggS'",
    );
    throwsWith(
      () => parseWav(concat(ascii('RIFF'), u32(4), ascii('AVI ')), src),
      'clip.wav',
      'not a WAV file',
    );
    throwsWith(() => parseWav(concat(ascii('RIFX'), good.subarray(4)), src), 'big-endian');
    throwsWith(() => parseWav(concat(ascii('RF64'), good.subarray(4)), src), 'RF64');
    throwsWith(() => parseWav(good.subarray(0, 8), src), 'clip.wav', 'truncated', '8 bytes');
    throwsWith(() => parseWav(new Uint8Array(0), src), 'truncated');
    throwsWith(
      () => parseWav(good.subarray(0, good.length - 1), src),
      'truncated',
      `says ${good.length} bytes`,
    );
    throwsWith(
      () => parseWav(riff([fmt16, chunk('data', samplesLE(16, [1, 2]), 400)]), src),
      'clip.wav',
      "chunk 'data' at byte 36 declares 400 bytes but only 4 remain",
    );
    throwsWith(() => parseWav(riff([data]), src), 'clip.wav', "no 'fmt ' chunk");
    throwsWith(
      () => parseWav(riff([fmt16, chunk('LIST', ascii('INFO'))]), src),
      'clip.wav',
      "no 'data' chunk",
    );
    throwsWith(
      () => parseWav(riff([chunk('fmt ', new Uint8Array(14)), data]), src),
      "'fmt ' chunk has 14 bytes",
    );
    throwsWith(() => parseWav(wav({ tag: 2, bits: 4 }, []), src), 'clip.wav', 'unsupported format tag 2');
    throwsWith(() => parseWav(wav({ tag: 0x55, bits: 16 }, []), src), 'unsupported format tag 85 (0x55)');
    throwsWith(
      () => parseWav(wav({ tag: 1, bits: 16, sub: 1, guidTail: KS_GUID_TAIL.map((b) => b ^ 1) }, []), src),
      'unknown subformat GUID',
    );
    throwsWith(() => parseWav(wav({ tag: 1, bits: 16, sub: 2 }, []), src), 'unsupported format tag 2');
    throwsWith(
      () => parseWav(wav({ tag: 1, bits: 12, blockAlign: 2 }, []), src),
      'unsupported bit depth 12',
      '8, 16, 24, 32',
    );
    throwsWith(
      () => parseWav(wav({ tag: 3, bits: 16 }, []), src),
      'unsupported bit depth 16 for float',
      '32, 64',
    );
    throwsWith(
      () => parseWav(wav({ tag: 1, bits: 16, channels: 3 }, []), src),
      'unsupported channel count 3',
    );
    throwsWith(
      () => parseWav(wav({ tag: 1, bits: 16, channels: 0, blockAlign: 2 }, []), src),
      'channel count 0',
    );
    throwsWith(() => parseWav(wav({ tag: 1, bits: 16, rate: 0 }, [1]), src), 'clip.wav', 'sample rate is 0');
    throwsWith(() => parseWav(wav({ tag: 1, bits: 16, blockAlign: 4 }, [1]), src), 'block align 4');
    throwsWith(() => decodeWav(ascii('not a wav at all')), 'WAV data: not a WAV file');
  });
});

// ---- Resampling and fixed length ---------------------------------------------------------------

const sine = (freq: number, rate: number, n: number, amp = 0.5) =>
  Float32Array.from({ length: n }, (_, i) => amp * Math.sin((2 * Math.PI * freq * i) / rate));
/** The largest |x − reference| over the middle half (away from the zero-padded edges). */
const midError = (x: Float32Array, ref: Float32Array) => {
  let worst = 0;
  for (let i = x.length >> 2; i < (3 * x.length) >> 2; i++) worst = Math.max(worst, Math.abs(x[i] - ref[i]));
  return worst;
};
const midRms = (x: Float32Array) => {
  let s = 0;
  const [a, b] = [x.length >> 2, (3 * x.length) >> 2];
  for (let i = a; i < b; i++) s += x[i] * x[i];
  return Math.sqrt(s / (b - a));
};

describe('resample', () => {
  it('keeps a sine its frequency and amplitude, 16 kHz → 8 kHz and 8 kHz → 16 kHz', () => {
    const down = resample(sine(1000, 16000, 4000), 16000, 8000);
    expect(down.length).toBe(2000);
    expect(midError(down, sine(1000, 8000, 2000))).toBeLessThan(1e-3);
    const up = resample(sine(1000, 8000, 2000), 8000, 16000);
    expect(up.length).toBe(4000);
    expect(midError(up, sine(1000, 16000, 4000))).toBeLessThan(1e-3);
    // A tone near the top of the pass band (3 kHz of 4 kHz) too.
    expect(midError(resample(sine(3000, 16000, 4000), 16000, 8000), sine(3000, 8000, 2000))).toBeLessThan(
      2e-3,
    );
  });

  it('removes a tone above the new Nyquist frequency instead of folding it back', () => {
    // 5 kHz at 16 kHz would alias to 3 kHz at 8 kHz.
    const y = resample(sine(5000, 16000, 4000), 16000, 8000);
    expect(midRms(y) / (0.5 / Math.SQRT2)).toBeLessThan(1e-3); // −60 dB
    const tone = sine(5000, 16000, 4000);
    const naive = Float32Array.from({ length: 2000 }, (_, i) => tone[2 * i]);
    expect(midRms(naive)).toBeGreaterThan(0.3); // what dropping every other sample would keep
  });

  it('handles uneven ratios (44.1 kHz → 8 kHz, 8 kHz → 22.05 kHz), equal rates and bad rates', () => {
    const y = resample(sine(440, 44100, 44100), 44100, 8000);
    expect(y.length).toBe(8000);
    expect(midError(y, sine(440, 8000, 8000))).toBeLessThan(1e-3);
    const z = resample(sine(440, 8000, 800), 8000, 22050);
    expect(z.length).toBe(2205);
    expect(midError(z, sine(440, 22050, 2205))).toBeLessThan(1e-3);
    const x = sine(100, 8000, 10);
    const same = resample(x, 8000, 8000);
    expect(same).toEqual(x);
    expect(same).not.toBe(x);
    expect(resample(new Float32Array(0), 16000, 8000).length).toBe(0);
    throwsWith(() => resample(x, 0, 8000), 'fromRate must be a positive integer');
    throwsWith(() => resample(x, 8000, 441.5), 'toRate must be a positive integer');
    throwsWith(() => resample(x, 8000, 16000, { rolloff: 1.5 }), 'rolloff');
  });
});

describe('fixed length', () => {
  it('centres shorter clips with zeros and trims longer ones equally at both ends', () => {
    const x = Float32Array.from([1, 2, 3]);
    expect(Array.from(fitLength(x, 6))).toEqual([0, 1, 2, 3, 0, 0]);
    expect(Array.from(fitLength(x, 3))).toEqual([1, 2, 3]);
    expect(Array.from(fitLength(Float32Array.from([1, 2, 3, 4, 5]), 2))).toEqual([2, 3]);
    expect(Array.from(fitLength(Float32Array.from([1, 2, 3, 4, 5, 6]), 3))).toEqual([2, 3, 4]);
    const out = new Float32Array(4).fill(9);
    expect(fitLength(x, 4, out)).toBe(out);
    expect(Array.from(out)).toEqual([1, 2, 3, 0]);
    throwsWith(() => fitLength(x, 0), 'length must be a positive integer');
    throwsWith(() => fitLength(x, 4, new Float32Array(5)), 'out has 5 samples');
  });
});

// ---- Names, packing and the shipped FSDD -------------------------------------------------------

describe('FSDD', () => {
  let fsdd: AudioDataset;
  let clips: ReturnType<typeof loadFsddClips>;
  beforeAll(() => {
    clips = loadFsddClips();
    fsdd = loadFsdd();
  });

  it('parses clip names the FSDD way', () => {
    expect(parseClipName('7_george_3.wav')).toEqual({ label: '7', speaker: 'george', take: 3 });
    expect(parseClipName('7_mary_jane_12.WAV')).toEqual({ label: '7', speaker: 'mary_jane', take: 12 });
    expect(parseClipName('yes_0042.wav')).toEqual({ label: 'yes', speaker: '', take: -1 });
    expect(parseClipName('hello.wav')).toBeUndefined();
    expect(parseClipName('_x.wav')).toBeUndefined();
  });

  it('packs int16 samples losslessly and formats and parses the index', () => {
    const x = Int16Array.from([0, 5, 7, 4, -32768, 32767, -32768, -1, 0]);
    expect(Array.from(packPcm16(Int16Array.from([5, 7, 4])))).toEqual([5, 2, 253, 0, 0, 255]);
    expect(unpackPcm16(packPcm16(x))).toEqual(x);
    throwsWith(() => unpackPcm16(new Uint8Array(3)), 'not a whole number of samples');
    const entries = [
      { digit: 0, speaker: 'george', take: 0, samples: 3 },
      { digit: 9, speaker: 'theo', take: 49, samples: 12 },
    ];
    expect(parseFsddIndex(formatFsddIndex(entries))).toEqual(entries);
    throwsWith(() => parseFsddIndex('digit,speaker\n'), "first line is not 'digit");
    throwsWith(
      () => parseFsddIndex('digit\tspeaker\ttake\tsamples\n0\tgeorge\t0\n', 'x.tsv'),
      'x.tsv: line 2',
    );
  });

  it('ships all 3,000 recordings unchanged: checksums of the first clip and of all samples', () => {
    expect(clips.length).toBe(3000);
    expect(clips[0].source).toBe('0_george_0.wav');
    expect(clips[0].pcm.length).toBe(2384);
    const sha = (x: Int16Array) =>
      createHash('sha256')
        .update(new Uint8Array(x.buffer, x.byteOffset, x.byteLength)) // little-endian, as in the WAV
        .digest('hex');
    // SHA-256 of the data chunk of the original 0_george_0.wav in fsdd-recordings.tar.gz.
    expect(sha(clips[0].pcm)).toBe('c1b8dce038e0ee30439df98852e05f30b1423d509c70cc370a0db7dcb5744ea6');
    const all = clips[0].pcm.buffer as ArrayBuffer;
    expect(createHash('sha256').update(new Uint8Array(all)).digest('hex')).toBe(
      '801bcecb25fa3bfb54fb3c0b1d94732d8456ce5b0c1f036667852a341a3aacd4',
    );
    expect(clips.every((c) => c.sampleRate === 8000)).toBe(true);
    expect(Array.from(clips[0].samples.subarray(0, 5))).toEqual(
      Array.from(clips[0].pcm.subarray(0, 5), (v) => v / 32768),
    );
    const lengths = clips.map((c) => c.pcm.length).sort((a, b) => a - b);
    expect([lengths[0], lengths.at(-1)]).toEqual([1148, 18262]);
    expect(lengths.filter((n) => n > FSDD_CLIP_LENGTH).length).toBe(17);
  });

  it('splits takes 0–4 (300 clips) from takes 5–49 (2,700), 8192 samples at 8 kHz', () => {
    const { train, test } = fsdd;
    expect([fsdd.name, fsdd.sampleRate, fsdd.length]).toEqual(['fsdd', 8000, 8192]);
    expect([train.count, test.count]).toEqual([2700, 300]);
    expect(train.audio.length).toBe(2700 * 8192);
    expect(fsdd.classNames).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    expect(fsdd.speakerNames).toEqual(['george', 'jackson', 'lucas', 'nicolas', 'theo', 'yweweler']);
    expect(test.takes.every((t) => t >= 0 && t < 5)).toBe(true);
    expect(train.takes.every((t) => t >= 5 && t < 50)).toBe(true);
    for (let d = 0; d < 10; d++) {
      expect(train.labels.filter((l) => l === d).length).toBe(270);
      expect(test.labels.filter((l) => l === d).length).toBe(30);
    }
    for (let s = 0; s < 6; s++) expect(test.speakers.filter((v) => v === s).length).toBe(50);
    // The first test clip is 0_george_0, centred; the first training clip is 0_george_5.
    expect(firstDiff(test.audio.subarray(0, 8192), fitLength(clips[0].samples, 8192))).toBe(-1);
    expect(firstDiff(train.audio.subarray(0, 8192), fitLength(clips[5].samples, 8192))).toBe(-1);
    let peak = 0;
    for (let i = 0; i < train.audio.length; i++) peak = Math.max(peak, Math.abs(train.audio[i]));
    expect(peak).toBeLessThanOrEqual(1);
    expect(peak).toBeGreaterThan(0.5);
  });

  it('builds other rates and lengths by resampling and padding', () => {
    const some = clips.filter((c) => c.speaker === 'theo' && c.take < 7);
    const ds = audioDataset(some, (c) => c.take < 5, { sampleRate: 16000, length: 16384 });
    expect([ds.train.count, ds.test.count, ds.length, ds.sampleRate]).toEqual([20, 50, 16384, 16000]);
    const first = some.find((c) => c.take === 5)!;
    expect(
      firstDiff(ds.train.audio.subarray(0, 16384), fitLength(resample(first.samples, 8000, 16000), 16384)),
    ).toBe(-1);
    expect(ds.speakerNames).toEqual(['theo']);
  });
});

// ---- A user's folder ---------------------------------------------------------------------------

describe('loadAudioFolder', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'fluxion-audio-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const folder = (name: string, files: Record<string, Uint8Array | string>) => {
    const root = join(dir, name);
    for (const [path, bytes] of Object.entries(files)) {
      mkdirSync(join(root, path, '..'), { recursive: true });
      writeFileSync(join(root, path), bytes);
    }
    return root;
  };
  const tone = (freq: number, rate = 8000, n = 800) => encodeWav(sine(freq, rate, n), rate);

  it('labels by sub-folder, resamples, mixes formats, averages stereo, holds out 10 % of each label', () => {
    const files: Record<string, Uint8Array | string> = {};
    for (let i = 0; i < 10; i++) {
      files[`3/a${i}.wav`] = tone(300 + i);
      files[`5/deeper/b${i}.wav`] =
        i % 2 ? tone(500, 16000, 1600) : wav({ tag: 1, bits: 24, channels: 2 }, [0, 0]);
    }
    files['.DS_Store'] = 'x';
    files['5/.hidden.wav'] = 'not even a WAV';
    const root = folder('digits', files);
    const ds = loadAudioFolder(root, { length: 1024 });
    expect([ds.train.count, ds.test.count, ds.length, ds.sampleRate]).toEqual([18, 2, 1024, 8000]);
    expect(ds.classNames).toEqual(['', '', '', '3', '', '5']);
    expect(Array.from(ds.test.labels).sort()).toEqual([3, 5]);
    expect(ds.speakerNames).toEqual([]);
    expect(ds.train.speakers.every((s) => s === -1)).toBe(true);
    // A 16 kHz file comes out at 8 kHz: 800 samples of a 500 Hz tone, centred in 1024.
    const i = Array.from(ds.train.labels).findIndex(
      (l, j) => l === 5 && ds.train.audio[j * 1024 + 512] !== 0,
    );
    const row = ds.train.audio.subarray(i * 1024, (i + 1) * 1024);
    expect(midError(row.subarray(112, 912), sine(500, 8000, 800))).toBeLessThan(2e-3);
    // Same folder, same split; another seed, another split.
    expect(loadAudioFolder(root, { length: 1024 }).test.audio).toEqual(ds.test.audio);
    const other = [1, 2, 3, 4, 5].map((seed) => loadAudioFolder(root, { length: 64, seed }).test.audio);
    expect(other.some((t) => t.some((v, k) => v !== ds.test.audio.subarray(0, 64)[k]))).toBe(true);
  });

  it('labels files in the folder by their FSDD-style names and splits them by take', () => {
    const files: Record<string, Uint8Array> = {};
    for (const d of [0, 1]) for (let t = 0; t < 8; t++) files[`${d}_ann_${t}.wav`] = tone(200 + 100 * d + t);
    const ds = loadAudioFolder(folder('fsdd-like', files), { length: 800 });
    expect([ds.train.count, ds.test.count]).toEqual([6, 10]);
    expect(ds.speakerNames).toEqual(['ann']);
    expect(Array.from(ds.test.takes)).toEqual([0, 1, 2, 3, 4, 0, 1, 2, 3, 4]);
    expect(Array.from(ds.test.labels)).toEqual([0, 0, 0, 0, 0, 1, 1, 1, 1, 1]);
    expect(firstDiff(ds.test.audio.subarray(0, 800), decodeWav(files['0_ann_0.wav']).samples)).toBe(-1);
    // 'random' ignores the takes; takes 0–2 only: 'auto' falls back to 'random', 'takes' refuses.
    expect(
      loadAudioFolder(join(dir, 'fsdd-like'), { split: 'random', length: 8, testFraction: 0.25 }).test.count,
    ).toBe(4);
    const few = folder('few-takes', {
      '0_ann_0.wav': tone(200),
      '0_ann_1.wav': tone(210),
      '1_ann_0.wav': tone(220),
    });
    expect(loadAudioFolder(few, { length: 8, testFraction: 0.5 }).test.count).toBe(1);
    throwsWith(() => loadAudioFolder(few, { split: 'takes' }), "split 'takes' leaves no training clips");
  });

  it('numbers non-numeric labels in sorted order', () => {
    const root = folder('words', { 'yes/a.wav': tone(300), 'no/a.wav': tone(400), 'no/b.wav': tone(500) });
    const ds = loadAudioFolder(root, { length: 16, split: 'random', testFraction: 0.5 });
    expect(ds.classNames).toEqual(['no', 'yes']);
    expect([ds.train.count, ds.test.count]).toEqual([2, 1]);
    expect(Array.from(ds.test.labels)).toEqual([0]);
    throwsWith(
      () => loadAudioFolder(root, { split: 'takes' }),
      'needs names {label}_{speaker}_{take}.wav',
      'a.wav',
    );
  });

  it('refuses a missing or empty folder, non-WAV files, unlabelled files and broken WAV files, naming them', () => {
    throwsWith(() => loadAudioFolder(join(dir, 'nope')), 'cannot read the folder', 'nope');
    const file = join(folder('a-file', { 'x.wav': tone(100) }), 'x.wav');
    throwsWith(() => loadAudioFolder(file), 'is a file, not a folder');
    mkdirSync(join(dir, 'empty', '3'), { recursive: true });
    throwsWith(() => loadAudioFolder(join(dir, 'empty')), 'holds no WAV files');
    throwsWith(() => loadAudioFolder(folder('hidden-only', { '.x.wav': tone(100) })), 'holds no WAV files');
    throwsWith(
      () => loadAudioFolder(folder('mixed', { '1/a.wav': tone(100), '1/notes.txt': 'hi', '2/b.mp3': 'x' })),
      'notes.txt is not a .wav file (nor are 1 more)',
    );
    throwsWith(
      () => loadAudioFolder(folder('unlabelled', { 'hello.wav': tone(100) })),
      'cannot tell the label of',
      'hello.wav',
      '7_hello.wav',
    );
    throwsWith(
      () =>
        loadAudioFolder(folder('broken', { '1/ok.wav': tone(100), '1/bad.wav': tone(100).subarray(0, 30) })),
      /broken[/\\]1[/\\]bad\.wav: truncated/,
    );
    throwsWith(
      () => loadAudioFolder(dir, { split: 'odd' as 'auto' }),
      "split must be 'auto', 'takes' or 'random'",
    );
    throwsWith(() => readWavFile(join(dir, 'missing.wav')), 'cannot read', 'no such file');
    throwsWith(() => stratifiedHoldOut(['a'], 1, 0), 'fraction must be in (0, 1)');
  });
});
