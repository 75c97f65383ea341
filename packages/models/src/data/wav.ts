/**
 * A WAV (RIFF/WAVE) reader and writer with no Node imports, so the same code runs in Node and in a
 * browser. Reads integer PCM of 8 (unsigned), 16, 24 and 32 bits and IEEE float of 32 and 64 bits
 * (format tags 1 and 3, and `WAVE_FORMAT_EXTENSIBLE` with either subformat), mono or stereo;
 * writes mono 16-bit PCM or 32-bit float.
 */
import { FluxionError } from '@fluxion/tensor';

/** `WAVE_FORMAT_PCM`: integer samples. */
export const WAVE_FORMAT_PCM = 1;
/** `WAVE_FORMAT_IEEE_FLOAT`: float samples. */
export const WAVE_FORMAT_IEEE_FLOAT = 3;
/** `WAVE_FORMAT_EXTENSIBLE`: the real format is the first two bytes of the subformat GUID. */
export const WAVE_FORMAT_EXTENSIBLE = 0xfffe;

/** The bytes 2–15 of the KSDATAFORMAT_SUBTYPE_PCM / _IEEE_FLOAT GUIDs (after the format tag). */
const SUBFORMAT_TAIL = [0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71];

/** The layout of a WAV file's samples, as its `fmt ` and `data` chunks give it. */
export interface WavInfo {
  /** 1 (integer PCM) or 3 (IEEE float), after resolving `WAVE_FORMAT_EXTENSIBLE`. */
  format: 1 | 3;
  /** Bits per sample: 8, 16, 24 or 32 for PCM; 32 or 64 for float. */
  bitsPerSample: 8 | 16 | 24 | 32 | 64;
  /** 1 or 2. */
  channels: number;
  /** Frames per second (positive). */
  sampleRate: number;
  /** Frames in the file (a trailing partial frame of the data chunk is ignored). */
  frames: number;
  /** The whole frames of the `data` chunk, interleaved, little-endian. */
  data: Uint8Array;
}

/** A decoded WAV file: mono samples and their rate. */
export interface DecodedWav extends Omit<WavInfo, 'data'> {
  /** Mono samples: integers scaled to [−1, 1), floats as stored; stereo averaged (see {@link decodeWav}). */
  samples: Float32Array;
}

/** Options of {@link encodeWav}. */
export interface EncodeWavOptions {
  /** `'pcm16'` (default): 16-bit integer PCM; `'float32'`: 32-bit IEEE float. */
  encoding?: 'pcm16' | 'float32';
}

function ascii(bytes: Uint8Array, at: number): string {
  return String.fromCharCode(bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]);
}

/** A chunk id for messages: printable ids quoted, others as hex. */
function chunkName(bytes: Uint8Array, at: number): string {
  const id = ascii(bytes, at);
  return /^[\x20-\x7e]{4}$/.test(id)
    ? `'${id}'`
    : `0x${Array.from(bytes.subarray(at, at + 4), (b) => b.toString(16).padStart(2, '0')).join('')}`;
}

/**
 * Parses the RIFF/WAVE structure of `bytes` without converting samples: the format of the `fmt `
 * chunk and the bytes of the first `data` chunk. Chunks other than `fmt ` and `data` (`LIST`,
 * `fact`, `cue `, …) are skipped; odd-sized chunks are followed by a pad byte, as RIFF requires (a
 * missing pad byte at the very end is tolerated). A RIFF size of 0 or 0xFFFFFFFF (written by
 * streaming recorders that never went back to fill it in) is taken to mean "up to the end of the
 * file", as is a `data` size of 0xFFFFFFFF; bytes after the RIFF size are ignored. `source` names the file in errors.
 *
 * Errors ({@link FluxionError} naming `source`): not a RIFF/WAVE file (RIFX and RF64 included),
 * truncated (shorter than its header or its RIFF size), a chunk running past the end, no `fmt `
 * or no `data` chunk, an unsupported format, bit depth or channel count, a zero sample rate.
 *
 * @example
 * ```ts
 * const info = parseWav(bytes, 'clip.wav');
 * info.bitsPerSample; // 16
 * new Int16Array(info.data.slice().buffer); // the raw samples (on a little-endian machine)
 * ```
 */
export function parseWav(bytes: Uint8Array, source = 'WAV data'): WavInfo {
  const op = 'parseWav';
  const fail = (what: string): never => {
    throw new FluxionError(op, `${source}: ${what}`);
  };
  if (bytes.length < 12) {
    if (bytes.length >= 4 && ascii(bytes, 0) !== 'RIFF') fail('not a WAV file (it does not start with RIFF)');
    fail(`truncated: ${bytes.length} bytes, shorter than the 12-byte RIFF/WAVE header`);
  }
  const head = ascii(bytes, 0);
  if (head === 'RIFX') fail('big-endian RIFX files are not supported; convert it to a little-endian WAV');
  if (head === 'RF64') fail('RF64 (64-bit WAV) files are not supported; convert it to a standard WAV');
  if (head !== 'RIFF' || ascii(bytes, 8) !== 'WAVE')
    fail(`not a WAV file (it starts with ${chunkName(bytes, 0)}, not RIFF…WAVE)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const riffSize = view.getUint32(4, true);
  let end = bytes.length;
  if (riffSize !== 0 && riffSize !== 0xffffffff) {
    if (riffSize + 8 > bytes.length)
      fail(`truncated: the RIFF header says ${riffSize + 8} bytes, the file has ${bytes.length}`);
    end = riffSize + 8;
  }
  let fmtAt = -1;
  let fmtSize = 0;
  let dataAt = -1;
  let dataSize = 0;
  for (let at = 12; at + 8 <= end; ) {
    const id = ascii(bytes, at);
    let size = view.getUint32(at + 4, true);
    // A streaming recorder's placeholder: the samples run to the end.
    if (id === 'data' && size === 0xffffffff) size = end - at - 8;
    if (size > end - at - 8)
      fail(
        `chunk ${chunkName(bytes, at)} at byte ${at} declares ${size} bytes but only ${end - at - 8} remain (truncated file?)`,
      );
    if (id === 'fmt ' && fmtAt < 0) [fmtAt, fmtSize] = [at + 8, size];
    else if (id === 'data' && dataAt < 0) [dataAt, dataSize] = [at + 8, size];
    at += 8 + size + (size & 1);
  }
  if (fmtAt < 0) fail("no 'fmt ' chunk (the format of the samples is unknown)");
  if (dataAt < 0) fail("no 'data' chunk (the file holds no samples)");
  if (fmtSize < 16) fail(`the 'fmt ' chunk has ${fmtSize} bytes, fewer than the 16 it needs`);
  let tag = view.getUint16(fmtAt, true);
  const channels = view.getUint16(fmtAt + 2, true);
  const sampleRate = view.getUint32(fmtAt + 4, true);
  const blockAlign = view.getUint16(fmtAt + 12, true);
  const bits = view.getUint16(fmtAt + 14, true);
  if (tag === WAVE_FORMAT_EXTENSIBLE) {
    if (fmtSize < 40 || view.getUint16(fmtAt + 16, true) < 22)
      fail("WAVE_FORMAT_EXTENSIBLE with a 'fmt ' chunk too short for its subformat");
    tag = view.getUint16(fmtAt + 24, true);
    if (SUBFORMAT_TAIL.some((b, i) => bytes[fmtAt + 26 + i] !== b))
      fail('WAVE_FORMAT_EXTENSIBLE with an unknown subformat GUID (only PCM and IEEE float are supported)');
  }
  if (tag !== WAVE_FORMAT_PCM && tag !== WAVE_FORMAT_IEEE_FLOAT)
    fail(
      `unsupported format tag ${tag} (0x${tag.toString(16)}); only PCM (1), IEEE float (3) and WAVE_FORMAT_EXTENSIBLE with either are supported`,
    );
  const okBits = tag === WAVE_FORMAT_PCM ? [8, 16, 24, 32] : [32, 64];
  if (!okBits.includes(bits))
    fail(
      `unsupported bit depth ${bits} for ${tag === 1 ? 'integer PCM' : 'float'} samples (supported: ${okBits.join(', ')})`,
    );
  if (channels !== 1 && channels !== 2)
    fail(`unsupported channel count ${channels} (only mono and stereo are supported)`);
  if (sampleRate === 0) fail('the sample rate is 0');
  const frameBytes = (channels * bits) / 8;
  if (blockAlign !== frameBytes)
    fail(
      `block align ${blockAlign} does not match ${channels} channel(s) × ${bits} bits (${frameBytes} bytes)`,
    );
  const frames = Math.floor(dataSize / frameBytes);
  return {
    format: tag as 1 | 3,
    bitsPerSample: bits as WavInfo['bitsPerSample'],
    channels,
    sampleRate,
    frames,
    data: bytes.subarray(dataAt, dataAt + frames * frameBytes),
  };
}

/**
 * Decodes a WAV file to mono float samples. Integers are scaled to [−1, 1): 8-bit (unsigned)
 * `(v − 128) / 128`, 16-bit `v / 32768`, 24-bit `v / 2²³`, 32-bit `v / 2³¹` (so 16-bit values
 * survive {@link encodeWav} bit-exactly); float samples are kept as stored (they may exceed ±1).
 * Stereo becomes mono by averaging the two channels, `(left + right) / 2` (no gain correction,
 * so a signal on one channel only comes out at half its level). See {@link parseWav} for what is
 * accepted and the errors.
 *
 * @example
 * ```ts
 * const { samples, sampleRate } = decodeWav(new Uint8Array(await (await fetch('seven.wav')).arrayBuffer()));
 * ```
 */
export function decodeWav(bytes: Uint8Array, source = 'WAV data'): DecodedWav {
  const { data, ...info } = parseWav(bytes, source);
  const { channels, frames, format, bitsPerSample: bits } = info;
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const bytesPer = bits / 8;
  const read: (at: number) => number =
    format === WAVE_FORMAT_IEEE_FLOAT
      ? bits === 32
        ? (at) => view.getFloat32(at, true)
        : (at) => view.getFloat64(at, true)
      : bits === 8
        ? (at) => (data[at] - 128) / 128
        : bits === 16
          ? (at) => view.getInt16(at, true) / 32768
          : bits === 24
            ? (at) => (((data[at] | (data[at + 1] << 8) | (data[at + 2] << 16)) << 8) >> 8) / 8388608
            : (at) => view.getInt32(at, true) / 2147483648;
  const samples = new Float32Array(frames);
  if (channels === 1) for (let i = 0; i < frames; i++) samples[i] = read(i * bytesPer);
  else
    for (let i = 0; i < frames; i++) samples[i] = (read(2 * i * bytesPer) + read((2 * i + 1) * bytesPer)) / 2;
  return { ...info, samples };
}

/**
 * Encodes mono samples as a WAV file: 16-bit PCM (default; each sample clamped to [−1, 1],
 * scaled by 32768, rounded and clamped to [−32768, 32767]; NaN is written as 0) or 32-bit IEEE
 * float (samples as they are, with the `fact` chunk non-PCM files carry).
 *
 * @example
 * ```ts
 * const tone = Float32Array.from({ length: 8000 }, (_, i) => 0.5 * Math.sin((2 * Math.PI * 440 * i) / 8000));
 * const bytes = encodeWav(tone, 8000); // 16,044 bytes: a one-second 440 Hz tone
 * ```
 */
export function encodeWav(
  samples: Float32Array,
  sampleRate: number,
  options: EncodeWavOptions = {},
): Uint8Array {
  const encoding = options.encoding ?? 'pcm16';
  if (!Number.isInteger(sampleRate) || sampleRate <= 0 || sampleRate > 0xffffffff)
    throw new FluxionError('encodeWav', `the sample rate must be a positive integer, got ${sampleRate}`);
  if (encoding !== 'pcm16' && encoding !== 'float32')
    throw new FluxionError('encodeWav', `encoding must be 'pcm16' or 'float32', got ${String(encoding)}`);
  const float = encoding === 'float32';
  const bytesPer = float ? 4 : 2;
  const fmtSize = float ? 18 : 16;
  const dataSize = samples.length * bytesPer;
  const header = 12 + 8 + fmtSize + (float ? 12 : 0) + 8;
  const out = new Uint8Array(header + dataSize + (dataSize & 1));
  const view = new DataView(out.buffer);
  const tag = (at: number, id: string) => {
    for (let i = 0; i < 4; i++) out[at + i] = id.charCodeAt(i);
  };
  tag(0, 'RIFF');
  view.setUint32(4, out.length - 8, true);
  tag(8, 'WAVE');
  tag(12, 'fmt ');
  view.setUint32(16, fmtSize, true);
  view.setUint16(20, float ? WAVE_FORMAT_IEEE_FLOAT : WAVE_FORMAT_PCM, true);
  view.setUint16(22, 1, true);
  view.setUint32(24, sampleRate, true);
  view.setUint32(28, sampleRate * bytesPer, true);
  view.setUint16(32, bytesPer, true);
  view.setUint16(34, bytesPer * 8, true);
  let at = 20 + fmtSize; // cbSize (float) is already 0
  if (float) {
    tag(at, 'fact');
    view.setUint32(at + 4, 4, true);
    view.setUint32(at + 8, samples.length, true);
    at += 12;
  }
  tag(at, 'data');
  view.setUint32(at + 4, dataSize, true);
  at += 8;
  if (float) for (let i = 0; i < samples.length; i++) view.setFloat32(at + 4 * i, samples[i], true);
  else
    for (let i = 0; i < samples.length; i++) {
      const v = Math.round(Math.min(1, Math.max(-1, samples[i])) * 32768);
      view.setInt16(at + 2 * i, Number.isNaN(v) ? 0 : Math.min(32767, v), true);
    }
  return out;
}
