/**
 * Vite config of the playground. `@fluxion/*` resolve to the packages' TypeScript sources (as in
 * vitest), and two small binary assets are packed at build time from the data `@fluxion/models`
 * ships:
 *
 * - `mnist-digits.bin`: 5,000 of the MNIST digits (`packages/models/data/mnist/`, gzipped IDX
 *   files), one byte per pixel, then one byte per label;
 * - `fsdd-digits.tsv` and `fsdd-digits.bin`: 300 recordings of the Free Spoken Digit Dataset
 *   (`packages/models/data/audio/`), its clip index and its delta-coded samples in the package's
 *   own format (unzipped), which `fsddClips` of `@fluxion/models` reads in the page.
 *
 * The names of the text tab are bundled into the page's script (`names.txt?raw`).
 *
 *   pnpm playground          # dev server
 *   pnpm playground:build    # static site in examples/playground/dist
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { defineConfig, type Plugin } from 'vite';

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '..', '..');
const source = (pkg: string) => join(repo, 'packages', pkg, 'src', 'index.ts');

/** Digits per class in the asset (5,000 in all: 3.9 MB). */
const PER_CLASS = 500;

/** The elements of a gzipped uint8 IDX file shipped in `packages/models/data/mnist/`. */
function shippedIdx(name: string, rank: number): Uint8Array {
  const bytes = gunzipSync(readFileSync(join(repo, 'packages', 'models', 'data', 'mnist', name)));
  if (bytes[2] !== 8 || bytes[3] !== rank) throw new Error(`${name}: not a uint8 IDX file of rank ${rank}`);
  return bytes.subarray(4 + 4 * rank);
}

/**
 * The first `perClass` digits of each class, interleaved by class (sample i of 0, of 1, … of 9):
 * `count·784` pixel bytes (0–255), then `count` label bytes.
 */
export function packDigits(perClass = PER_CLASS): Uint8Array {
  const pixels = 784;
  const images = shippedIdx('mnist-10k-images-idx3-ubyte.gz', 3);
  const labels = shippedIdx('mnist-10k-labels-idx1-ubyte.gz', 1);
  const byClass: number[][] = Array.from({ length: 10 }, () => []);
  labels.forEach((d, n) => {
    byClass[d].push(n);
  });
  const count = 10 * perClass;
  const out = new Uint8Array(count * (pixels + 1));
  for (let i = 0; i < perClass; i++) {
    for (let d = 0; d < 10; d++) {
      const n = i * 10 + d;
      const from = byClass[d][i] * pixels;
      out.set(images.subarray(from, from + pixels), n * pixels);
      out[count * pixels + n] = d;
    }
  }
  return out;
}

/** Takes of every speaker and digit in the audio asset: 5–9, the first of FSDD's training takes. */
const FSDD_TAKES = [5, 6, 7, 8, 9];
const FSDD_HEADER = 'digit\tspeaker\ttake\tsamples';

/**
 * A subset of the shipped Free Spoken Digit Dataset in its own format (see
 * `packages/models/data/audio/README.md`): the clip index of the takes in `takes` (every speaker
 * and digit: 300 clips for five takes) and their int16 samples, delta-coded in two byte planes as
 * `packPcm16` writes them, not gzipped (a static server may label `.gz` files as compressed).
 */
export function packSpokenDigits(takes = FSDD_TAKES): { index: string; samples: Uint8Array } {
  const folder = join(repo, 'packages', 'models', 'data', 'audio');
  const lines = readFileSync(join(folder, 'fsdd-clips.tsv'), 'utf8').trimEnd().split('\n');
  if (lines[0] !== FSDD_HEADER) throw new Error('fsdd-clips.tsv: unexpected header');
  const planes = gunzipSync(readFileSync(join(folder, 'fsdd-samples.bin.gz')));
  const total = planes.length / 2;
  // Undo the delta coding: sample i is the running sum of the differences (mod 2^16).
  const pcm = new Int16Array(total);
  for (let i = 0, prev = 0; i < total; i++) {
    prev = (prev + (planes[i] | (planes[total + i] << 8))) & 0xffff;
    pcm[i] = prev;
  }
  const kept: string[] = [];
  const parts: Int16Array[] = [];
  let at = 0;
  for (const line of lines.slice(1)) {
    const [, , take, samples] = line.split('\t');
    const n = Number(samples);
    if (takes.includes(Number(take))) {
      kept.push(line);
      parts.push(pcm.subarray(at, at + n));
    }
    at += n;
  }
  if (at !== total) throw new Error('fsdd-clips.tsv and fsdd-samples.bin.gz disagree');
  const count = parts.reduce((s, p) => s + p.length, 0);
  const out = new Uint8Array(2 * count);
  let i = 0;
  let prev = 0;
  for (const part of parts) {
    for (const v of part) {
      const d = (v - prev) & 0xffff;
      out[i] = d & 0xff;
      out[count + i] = d >> 8;
      prev = v;
      i++;
    }
  }
  return { index: `${[FSDD_HEADER, ...kept].join('\n')}\n`, samples: out };
}

/** Serves `fileName` from the dev server and emits it into the build, made once on first use. */
function packedAsset(fileName: string, make: () => Uint8Array | string): Plugin {
  let source: Uint8Array | string | null = null;
  const get = () => {
    source ??= make();
    return source;
  };
  return {
    name: `fluxion-asset-${fileName}`,
    configureServer(server) {
      server.middlewares.use(`/${fileName}`, (_req, res) => {
        const body = get();
        res.setHeader('content-type', typeof body === 'string' ? 'text/plain' : 'application/octet-stream');
        res.end(typeof body === 'string' ? body : Buffer.from(body));
      });
    },
    generateBundle() {
      this.emitFile({ type: 'asset', fileName, source: get() });
    },
  };
}

let spokenDigits: ReturnType<typeof packSpokenDigits> | null = null;
const getSpokenDigits = () => {
  spokenDigits ??= packSpokenDigits();
  return spokenDigits;
};

export default defineConfig({
  root: here,
  base: './',
  resolve: {
    alias: {
      '@fluxion/tensor': source('tensor'),
      '@fluxion/autograd': source('autograd'),
      '@fluxion/nn': source('nn'),
      '@fluxion/models': source('models'),
    },
  },
  server: { fs: { allow: [repo] } },
  build: { outDir: 'dist', emptyOutDir: true, target: 'es2022', chunkSizeWarningLimit: 1024 },
  plugins: [
    packedAsset('mnist-digits.bin', () => packDigits()),
    packedAsset('fsdd-digits.tsv', () => getSpokenDigits().index),
    packedAsset('fsdd-digits.bin', () => getSpokenDigits().samples),
  ],
});
