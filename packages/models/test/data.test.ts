/**
 * Data: the IDX reader on small files written here (uint8 images and labels, plain and gzip, other
 * element types, and the broken cases), IDX datasets, the MNIST split, seeded permutations and
 * batches.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { FluxionError, setBackend } from '@fluxion/tensor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  batches,
  type ImageDataset,
  loadIdxDataset,
  loadMnist,
  permutation,
  splitDataset,
} from '../src/data/dataset.js';
import { decodeIdx, readIdx } from '../src/data/idx.js';

/** IDX bytes: magic 00 00 <type> <rank>, big-endian uint32 dimensions, then the element bytes. */
function idxBytes(type: number, shape: number[], body: Uint8Array): Uint8Array {
  const header = new Uint8Array(4 + 4 * shape.length);
  const view = new DataView(header.buffer);
  header.set([0, 0, type, shape.length]);
  for (const [i, d] of shape.entries()) view.setUint32(4 + 4 * i, d);
  const out = new Uint8Array(header.length + body.length);
  out.set(header);
  out.set(body, header.length);
  return out;
}

// Three 2×3 "images" and their labels.
const pixels = Uint8Array.from({ length: 18 }, (_, i) => (i * 15) % 256);
const labelValues = Uint8Array.from([7, 0, 9]);

let dir: string;
const file = (name: string, bytes: Uint8Array) => {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return path;
};

beforeAll(() => {
  setBackend('cpu');
  dir = mkdtempSync(join(tmpdir(), 'fluxion-idx-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('readIdx', () => {
  it('reads uint8 images and labels, plain and gzip', () => {
    const images = idxBytes(0x08, [3, 2, 3], pixels);
    const labels = idxBytes(0x08, [3], labelValues);
    for (const [name, bytes] of [
      ['images-idx3-ubyte', images],
      ['images-idx3-ubyte.gz', gzipSync(images)],
    ] as const) {
      const read = readIdx(file(name, bytes));
      expect(read.shape).toEqual([3, 2, 3]);
      expect(read.data).toBeInstanceOf(Uint8Array);
      expect(Array.from(read.data)).toEqual(Array.from(pixels));
    }
    const read = readIdx(file('labels-idx1-ubyte.gz', gzipSync(labels)));
    expect(read.shape).toEqual([3]);
    expect(Array.from(read.data)).toEqual([7, 0, 9]);
  });

  it('decodes big-endian int32, float32 and int8 elements', () => {
    const body = new Uint8Array(8);
    new DataView(body.buffer).setInt32(0, -123456);
    new DataView(body.buffer).setInt32(4, 42);
    expect(Array.from(decodeIdx(idxBytes(0x0c, [2], body)).data)).toEqual([-123456, 42]);
    new DataView(body.buffer).setFloat32(0, 1.5);
    new DataView(body.buffer).setFloat32(4, -0.25);
    const floats = decodeIdx(idxBytes(0x0d, [1, 2], body));
    expect(floats.data).toBeInstanceOf(Float32Array);
    expect(Array.from(floats.data)).toEqual([1.5, -0.25]);
    expect(Array.from(decodeIdx(idxBytes(0x09, [2], Uint8Array.from([0xff, 0x05]))).data)).toEqual([-1, 5]);
  });

  it('rejects a wrong magic number, naming the file', () => {
    const path = file('bad-magic', Uint8Array.from([0x50, 0x4b, 0x03, 0x04, 0, 0, 0, 1, 9]));
    expect(() => readIdx(path)).toThrow(FluxionError);
    expect(() => readIdx(path)).toThrow(/bad-magic.*wrong magic number 50 4b 03 04/);
    expect(() => decodeIdx(new Uint8Array(0))).toThrow(/wrong magic number \(empty\)/);
  });

  it('rejects unknown element types and corrupt gzip streams', () => {
    expect(() => decodeIdx(idxBytes(0x0a, [1], new Uint8Array(1)))).toThrow(/unknown element type 0xa/);
    expect(() => decodeIdx(Uint8Array.from([0x1f, 0x8b, 1, 2, 3, 4]))).toThrow(/corrupt gzip/);
  });

  it('rejects truncated headers and data, plain and gzip', () => {
    const full = idxBytes(0x08, [3, 2, 3], pixels);
    const shortData = full.subarray(0, full.length - 5);
    expect(() => readIdx(file('short', shortData))).toThrow(
      /short: truncated data: shape \[3,2,3\] needs 34 bytes, file has 29/,
    );
    expect(() => readIdx(file('short.gz', gzipSync(shortData)))).toThrow(/truncated data/);
    expect(() => decodeIdx(full.subarray(0, 10))).toThrow(/truncated header/);
  });

  it('reports a missing file clearly', () => {
    const missing = join(dir, 'no-such-file-idx3-ubyte');
    expect(() => readIdx(missing)).toThrow(FluxionError);
    expect(() => readIdx(missing)).toThrow(/cannot read '.*no-such-file-idx3-ubyte'/);
  });
});

describe('loadIdxDataset', () => {
  it('scales uint8 pixels to [0, 1] and pairs them with labels', () => {
    const images = file('ds-images.gz', gzipSync(idxBytes(0x08, [3, 2, 3], pixels)));
    const labels = file('ds-labels', idxBytes(0x08, [3], labelValues));
    const ds = loadIdxDataset(images, labels);
    expect([ds.count, ds.height, ds.width]).toEqual([3, 2, 3]);
    expect(ds.images).toBeInstanceOf(Float32Array);
    expect(ds.images[1]).toBeCloseTo(15 / 255, 6);
    expect(Math.max(...ds.images)).toBeLessThanOrEqual(1);
    expect(Array.from(ds.labels)).toEqual([7, 0, 9]);
  });

  it('rejects label files that do not match the images', () => {
    const images = file('m-images', idxBytes(0x08, [3, 2, 3], pixels));
    const twoLabels = file('m-labels', idxBytes(0x08, [2], labelValues.subarray(0, 2)));
    expect(() => loadIdxDataset(images, twoLabels)).toThrow(/expected 3 labels, got shape \[2\]/);
    const flat = file('m-flat', idxBytes(0x08, [3, 6], pixels));
    expect(() => loadIdxDataset(flat, twoLabels)).toThrow(/expected \[n, h, w\]/);
  });
});

/** `count` 2×2 images whose pixels all equal i/100 and whose label is i mod 10. */
function numbered(count: number): ImageDataset {
  const images = new Float32Array(count * 4);
  for (let i = 0; i < count; i++) images.fill(i / 100, i * 4, i * 4 + 4);
  return { images, labels: Int32Array.from({ length: count }, (_, i) => i % 10), count, height: 2, width: 2 };
}

describe('MNIST and splits', () => {
  it('loads 10,000 digits spread by class, so that the 1,000 test digits hold every class in proportion', () => {
    const all = loadMnist();
    expect([all.count, all.height, all.width]).toEqual([10_000, 28, 28]);
    expect(all.images.length).toBe(10_000 * 784);
    let lo = Number.POSITIVE_INFINITY;
    let hi = Number.NEGATIVE_INFINITY;
    for (const v of all.images) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    expect([lo, hi]).toEqual([0, 1]);
    const { train, test } = splitDataset(all, 1000);
    expect([train.count, test.count]).toEqual([9000, 1000]);
    expect(train.images.length).toBe(9000 * 784);
    expect(test.images.length).toBe(1000 * 784);
    expect(test.labels[0]).toBe(all.labels[9000]);
    expect(test.images[783]).toBe(all.images[9000 * 784 + 783]);
    const histogram = (labels: Int32Array) => {
      const h = new Array(10).fill(0);
      for (const l of labels) h[l]++;
      return h;
    };
    const overall = histogram(all.labels);
    const inTest = histogram(test.labels);
    for (let d = 0; d < 10; d++) expect(Math.abs(inTest[d] - overall[d] / 10)).toBeLessThanOrEqual(1);
    expect(Math.min(...histogram(all.labels.subarray(0, 100)))).toBeGreaterThanOrEqual(8);
  });

  it('splits any dataset at count − testCount and refuses to hold out everything', () => {
    const { train, test } = splitDataset(numbered(10), 3);
    expect([train.count, test.count]).toEqual([7, 3]);
    expect(Array.from(test.labels)).toEqual([7, 8, 9]);
    expect(test.images[0]).toBeCloseTo(0.07, 6);
    expect(() => splitDataset(numbered(10), 10)).toThrow(/cannot hold out 10 of 10/);
  });
});

describe('permutation', () => {
  it('is a permutation of 0..n−1, reproducible from (seed, epoch)', () => {
    for (const n of [0, 1, 2, 17, 1000]) {
      const p = permutation(n, 3, 0);
      expect(Array.from(p).sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i));
    }
    expect(permutation(1000, 3, 5)).toEqual(permutation(1000, 3, 5));
    expect(permutation(1000, 3, 5)).not.toEqual(permutation(1000, 3, 6));
    expect(permutation(1000, 3, 5)).not.toEqual(permutation(1000, 4, 5));
    const identity = Int32Array.from({ length: 1000 }, (_, i) => i);
    expect(permutation(1000, 0, 0)).not.toEqual(identity);
  });
});

describe('batches', () => {
  it('yields full [b, h·w] batches with matching int32 labels, each item at most once', async () => {
    const ds = numbered(23);
    const seen: number[] = [];
    let count = 0;
    for (const { images, labels } of batches(ds, 5, { seed: 1, epoch: 0 })) {
      expect(images.shape).toEqual([5, 4]);
      expect(labels.shape).toEqual([5]);
      expect(labels.dtype).toBe('int32');
      const px = await images.data();
      const lab = await labels.data();
      for (let i = 0; i < 5; i++) {
        const item = Math.round(px[i * 4] * 100);
        expect(px[i * 4 + 3]).toBe(px[i * 4]);
        expect(lab[i]).toBe(item % 10);
        seen.push(item);
      }
      images.dispose();
      labels.dispose();
      count++;
    }
    expect(count).toBe(4); // 23 items: four batches of 5, the last 3 dropped
    expect(new Set(seen).size).toBe(20);
    expect(seen.every((i) => i >= 0 && i < 23)).toBe(true);
  });

  it('follows the seeded order and applies `scale`', async () => {
    const ds = numbered(12);
    const order = permutation(12, 9, 2);
    const [first] = batches(ds, 4, { seed: 9, epoch: 2, scale: (v) => 2 * v - 1 });
    const px = await first.images.data();
    for (let i = 0; i < 4; i++) expect(px[i * 4]).toBeCloseTo(2 * (order[i] / 100) - 1, 6);
    expect(Array.from(await first.labels.data())).toEqual(Array.from(order.subarray(0, 4), (i) => i % 10));
  });
});
