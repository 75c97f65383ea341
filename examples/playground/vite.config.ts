/**
 * Vite config of the playground. `@fluxion/*` resolve to the packages' TypeScript sources (as in
 * vitest), and 5,000 of the MNIST digits that `@fluxion/models` ships (`packages/models/data/mnist/`,
 * gzipped IDX files) are packed at build time into one small binary asset, `mnist-digits.bin` (one
 * byte per pixel, then one byte per label).
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

function mnistAsset(): Plugin {
  let bytes: Uint8Array | null = null;
  const get = () => {
    bytes ??= packDigits();
    return bytes;
  };
  return {
    name: 'fluxion-mnist-asset',
    configureServer(server) {
      server.middlewares.use('/mnist-digits.bin', (_req, res) => {
        res.setHeader('content-type', 'application/octet-stream');
        res.end(Buffer.from(get()));
      });
    },
    generateBundle() {
      this.emitFile({ type: 'asset', fileName: 'mnist-digits.bin', source: get() });
    },
  };
}

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
  plugins: [mnistAsset()],
});
