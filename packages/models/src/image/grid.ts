/**
 * Pictures of what a model does: a grid of images (samples, reconstructions) and a loss-curve
 * chart, both as PNG bytes.
 */
import { encodePng } from './png.js';

/**
 * Tiles `count` grayscale images (row-major rows of `height·width` values in [0, 1]) into a grid
 * with `cols` columns and a 2-pixel gap.
 *
 * @example
 * ```ts
 * writeFileSync('samples.png', imageGrid(pixels, 64, 28, 28, 8));
 * ```
 */
export function imageGrid(
  images: ArrayLike<number>,
  count: number,
  height: number,
  width: number,
  cols = 8,
): Uint8Array {
  const gap = 2;
  const rows = Math.ceil(count / cols);
  const W = cols * (width + gap) + gap;
  const H = rows * (height + gap) + gap;
  const out = new Uint8Array(W * H).fill(40);
  for (let n = 0; n < count; n++) {
    const x0 = gap + (n % cols) * (width + gap);
    const y0 = gap + Math.floor(n / cols) * (height + gap);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const v = images[n * height * width + y * width + x];
        out[(y0 + y) * W + x0 + x] = Math.round(255 * Math.min(1, Math.max(0, Number.isFinite(v) ? v : 0)));
      }
    }
  }
  return encodePng(W, H, 1, out);
}

/** A 3×5 bitmap font for chart labels (bench/ draws with it too): each glyph is 5 rows of 3 bits. */
export const FONT: Record<string, number[]> = {
  '0': [7, 5, 5, 5, 7],
  '1': [2, 6, 2, 2, 7],
  '2': [7, 1, 7, 4, 7],
  '3': [7, 1, 7, 1, 7],
  '4': [5, 5, 7, 1, 1],
  '5': [7, 4, 7, 1, 7],
  '6': [7, 4, 7, 5, 7],
  '7': [7, 1, 1, 2, 2],
  '8': [7, 5, 7, 5, 7],
  '9': [7, 5, 7, 1, 7],
  '.': [0, 0, 0, 0, 2],
  '-': [0, 0, 7, 0, 0],
  ' ': [0, 0, 0, 0, 0],
  e: [0, 7, 7, 4, 7],
  ':': [0, 2, 0, 2, 0],
  A: [2, 5, 7, 5, 5],
  B: [6, 5, 6, 5, 6],
  C: [7, 4, 4, 4, 7],
  D: [6, 5, 5, 5, 6],
  E: [7, 4, 6, 4, 7],
  F: [7, 4, 6, 4, 4],
  G: [7, 4, 5, 5, 7],
  H: [5, 5, 7, 5, 5],
  I: [7, 2, 2, 2, 7],
  J: [1, 1, 1, 5, 7],
  K: [5, 5, 6, 5, 5],
  L: [4, 4, 4, 4, 7],
  M: [5, 7, 7, 5, 5],
  N: [6, 5, 5, 5, 5],
  O: [7, 5, 5, 5, 7],
  P: [7, 5, 7, 4, 4],
  Q: [7, 5, 5, 7, 1],
  R: [6, 5, 6, 5, 5],
  S: [7, 4, 7, 1, 7],
  T: [7, 2, 2, 2, 2],
  U: [5, 5, 5, 5, 7],
  V: [5, 5, 5, 5, 2],
  W: [5, 5, 7, 7, 5],
  X: [5, 5, 2, 5, 5],
  Y: [5, 5, 2, 2, 2],
  Z: [7, 1, 2, 4, 7],
  _: [0, 0, 0, 0, 7],
  '/': [1, 1, 2, 4, 4],
};

const COLORS: [number, number, number][] = [
  [230, 80, 60],
  [60, 130, 230],
  [60, 180, 90],
  [200, 150, 30],
  [150, 80, 200],
  [40, 170, 180],
];

/**
 * A line chart of one or more series against step (y autoscaled, labelled with its range; a
 * legend with each series' name and colour), as an RGB PNG.
 *
 * @example
 * ```ts
 * writeFileSync('loss.png', lossCurve({ D: dLosses, G: gLosses }));
 * ```
 */
export function lossCurve(series: Record<string, readonly number[]>, width = 480, height = 280): Uint8Array {
  const px = new Uint8Array(width * height * 3).fill(255);
  const set = (x: number, y: number, [r, g, b]: [number, number, number]) => {
    if (x < 0 || y < 0 || x >= width || y >= height) return;
    const i = (Math.round(y) * width + Math.round(x)) * 3;
    px[i] = r;
    px[i + 1] = g;
    px[i + 2] = b;
  };
  const text = (s: string, x: number, y: number, color: [number, number, number] = [0, 0, 0]) => {
    [...s.toUpperCase().replace(/E(?=[+-]?\d)/g, 'e')].forEach((ch, k) => {
      const glyph = FONT[ch] ?? FONT[' '];
      glyph.forEach((bits, row) => {
        for (let col = 0; col < 3; col++) {
          if (bits & (4 >> col))
            for (let s2 = 0; s2 < 4; s2++)
              set(x + k * 8 + col * 2 + (s2 & 1), y + row * 2 + (s2 >> 1), color);
        }
      });
    });
  };
  const left = 60;
  const right = width - 10;
  const top = 30;
  const bottom = height - 25;
  const values = Object.values(series).flat().filter(Number.isFinite);
  const lo = values.length ? Math.min(...values) : 0;
  const hi = values.length ? Math.max(...values) : 1;
  const span = hi - lo || 1;
  const steps = Math.max(1, ...Object.values(series).map((s) => s.length - 1));
  for (let x = left; x <= right; x++) set(x, bottom, [0, 0, 0]);
  for (let y = top; y <= bottom; y++) set(left, y, [0, 0, 0]);
  for (let k = 1; k < 4; k++)
    for (let x = left + 1; x <= right; x += 3) set(x, top + ((bottom - top) * k) / 4, [200, 200, 200]);
  const fmt = (v: number) =>
    Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-2 && v !== 0) ? v.toExponential(1) : v.toFixed(2);
  text(fmt(hi), 2, top - 4);
  text(fmt(lo), 2, bottom - 6);
  text('0', left, bottom + 6);
  text(`STEP ${steps}`, right - 8 * `STEP ${steps}`.length, bottom + 6);
  Object.entries(series).forEach(([name, ys], s) => {
    const color = COLORS[s % COLORS.length];
    text(name, left + 10 + s * 90, 8, color);
    let prev: [number, number] | null = null;
    ys.forEach((v, i) => {
      if (!Number.isFinite(v)) return;
      const x = left + ((right - left) * i) / steps;
      const y = bottom - ((bottom - top) * (v - lo)) / span;
      if (prev) {
        const n = Math.max(Math.abs(x - prev[0]), Math.abs(y - prev[1]), 1);
        for (let t = 0; t <= n; t++)
          set(prev[0] + ((x - prev[0]) * t) / n, prev[1] + ((y - prev[1]) * t) / n, color);
      }
      prev = [x, y];
    });
  });
  return encodePng(width, height, 3, px);
}
