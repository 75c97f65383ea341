/**
 * Packs the Free Spoken Digit Dataset (Jakobovski et al., CC BY-SA 4.0, Zenodo DOI
 * 10.5281/zenodo.1342401) from its release tarball of WAV files into the compact form the package
 * ships in `packages/models/data/audio/`: `fsdd-clips.tsv` (digit, speaker, take and length of
 * every clip, sorted by digit, speaker, take) and `fsdd-samples.bin.gz` (all clips' int16 samples
 * in that order, delta-coded and split into byte planes by `packPcm16`, gzipped at level 9).
 * Checks every WAV (8 kHz, mono, 16-bit PCM, a name `{digit}_{speaker}_{take}.wav`, 6 speakers ×
 * 10 digits × 50 takes), checks that the packed files decode to the same samples, and prints the
 * SHA-256 of the files and the clip-length percentiles. Run from the repository root:
 *
 *   node scripts/run-ts.mjs packages/models/scripts/pack-fsdd.ts --tar PATH/fsdd-recordings.tar.gz
 *     [--out packages/models/data/audio]
 *
 * The tarball is a gzipped ustar archive with `recordings/*.wav` and `metadata.py`; the reader below
 * handles plain ustar entries and the GNU (`L`) and pax (`x`) long-name headers.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { gunzipSync, gzipSync } from 'node:zlib';
import {
  FSDD_SAMPLE_RATE,
  type FsddEntry,
  formatFsddIndex,
  fsddClips,
  packPcm16,
  parseClipName,
} from '../src/data/audio.js';
import { parseWav } from '../src/data/wav.js';

const { values: args } = parseArgs({
  options: {
    tar: { type: 'string' },
    out: { type: 'string', default: 'packages/models/data/audio' },
  },
});
if (!args.tar) {
  console.error('usage: pack-fsdd.ts --tar PATH/fsdd-recordings.tar.gz [--out DIR]');
  process.exit(2);
}

/** The regular files of a ustar archive, by path. */
function untar(tar: Uint8Array): Map<string, Uint8Array> {
  const files = new Map<string, Uint8Array>();
  const text = (at: number, len: number) => {
    const field = tar.subarray(at, at + len);
    const end = field.indexOf(0);
    return new TextDecoder().decode(end < 0 ? field : field.subarray(0, end));
  };
  let longName: string | undefined;
  for (let at = 0; at + 512 <= tar.length; ) {
    if (tar.subarray(at, at + 512).every((b) => b === 0)) break; // end-of-archive block
    const size = Number.parseInt(text(at + 124, 12).trim() || '0', 8);
    const type = String.fromCharCode(tar[at + 156] || 0x30);
    const prefix = text(at + 257, 6) === 'ustar' ? text(at + 345, 155) : '';
    const name = longName ?? (prefix ? `${prefix}/${text(at, 100)}` : text(at, 100));
    const body = tar.subarray(at + 512, at + 512 + size);
    if (body.length < size) throw new Error(`tar: ${name} is cut short`);
    longName = undefined;
    if (type === 'L') longName = text(at + 512, size);
    else if (type === 'x') longName = /\d+ path=([^\n]*)\n/.exec(new TextDecoder().decode(body))?.[1];
    else if (type === '0') files.set(name, body);
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return files;
}

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

const tarPath = resolve(args.tar);
const files = untar(gunzipSync(readFileSync(tarPath)));
const clips: (FsddEntry & { pcm: Int16Array; wavSha: string })[] = [];
for (const [path, bytes] of files) {
  const m = /^(?:\.\/)?recordings\/([^/]+\.wav)$/.exec(path);
  if (!m) {
    console.log(`skipping ${path}`);
    continue;
  }
  const name = parseClipName(m[1]);
  if (!name || !/^\d$/.test(name.label) || name.take < 0)
    throw new Error(`${path}: not {digit}_{speaker}_{take}.wav`);
  const wav = parseWav(bytes, path);
  if (
    wav.sampleRate !== FSDD_SAMPLE_RATE ||
    wav.channels !== 1 ||
    wav.format !== 1 ||
    wav.bitsPerSample !== 16
  )
    throw new Error(`${path}: expected 8 kHz mono 16-bit PCM`);
  const view = new DataView(wav.data.buffer, wav.data.byteOffset, wav.data.byteLength);
  const pcm = Int16Array.from({ length: wav.frames }, (_, i) => view.getInt16(2 * i, true));
  clips.push({
    digit: Number(name.label),
    speaker: name.speaker,
    take: name.take,
    samples: pcm.length,
    pcm,
    wavSha: sha256(bytes),
  });
}
clips.sort(
  (a, b) =>
    a.digit - b.digit || (a.speaker < b.speaker ? -1 : a.speaker > b.speaker ? 1 : 0) || a.take - b.take,
);
const speakers = [...new Set(clips.map((c) => c.speaker))];
const keys = new Set(clips.map((c) => `${c.digit}_${c.speaker}_${c.take}`));
if (clips.length !== 3000 || speakers.length !== 6 || keys.size !== 3000 || clips.some((c) => c.take >= 50))
  throw new Error(
    `expected 6 speakers × 10 digits × takes 0–49, got ${clips.length} clips of ${speakers.length} speakers`,
  );

const all = new Int16Array(clips.reduce((s, c) => s + c.samples, 0));
let at = 0;
for (const c of clips) {
  all.set(c.pcm, at);
  at += c.samples;
}
const index = formatFsddIndex(clips);
const packed = gzipSync(packPcm16(all), { level: 9 });

// The shipped files must decode to exactly these samples.
const back = fsddClips(index, gunzipSync(packed));
if (back.some((c, i) => c.pcm.length !== clips[i].pcm.length || c.pcm.some((v, j) => v !== clips[i].pcm[j])))
  throw new Error('the packed files do not decode to the original samples');

const out = resolve(args.out);
mkdirSync(out, { recursive: true });
writeFileSync(join(out, 'fsdd-clips.tsv'), index);
writeFileSync(join(out, 'fsdd-samples.bin.gz'), packed);

const pcmBytes = new Uint8Array(all.length * 2);
const pcmView = new DataView(pcmBytes.buffer);
for (let i = 0; i < all.length; i++) pcmView.setInt16(2 * i, all[i], true);
const lengths = clips.map((c) => c.samples).sort((a, b) => a - b);
const pct = (p: number) => lengths[Math.min(lengths.length - 1, Math.ceil((p / 100) * lengths.length) - 1)];
console.log(
  `${clips.length} clips, ${all.length} samples (${pcmBytes.length} bytes of int16) → ${packed.length} bytes`,
);
console.log(
  `lengths: min ${lengths[0]}, ${[50, 75, 90, 95, 99, 99.5].map((p) => `p${p} ${pct(p)}`).join(', ')}, max ${lengths.at(-1)}`,
);
for (const n of [4096, 8192, 16384]) console.log(`  ≤ ${n}: ${lengths.filter((l) => l <= n).length} clips`);
console.log(
  `first clip ${clips[0].digit}_${clips[0].speaker}_${clips[0].take}.wav: WAV sha256 ${clips[0].wavSha}`,
);
console.log(`  its int16 LE samples sha256 ${sha256(pcmBytes.subarray(0, 2 * clips[0].samples))}`);
console.log(`all samples (int16 LE, in index order) sha256 ${sha256(pcmBytes)}`);
console.log(`tarball sha256 ${sha256(readFileSync(tarPath))}`);
console.log(`${sha256(Buffer.from(index))}  fsdd-clips.tsv`);
console.log(`${sha256(packed)}  fsdd-samples.bin.gz`);
