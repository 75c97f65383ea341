/**
 * Drawing on 2D canvases: a grid of grayscale digits and the loss curves (one small panel per loss,
 * the raw values faint and an exponential moving average on top).
 */

const BACKGROUND = '#111418';
const COLOURS = ['#4cc9f0', '#f72585', '#b5e48c', '#ffd166'];

/**
 * Draws `count` images of `size × size` pixels in [0, 1] (row-major rows of `pixels`) in a grid
 * of `cols` columns, each pixel `scale` canvas pixels wide, 2 canvas pixels apart.
 */
export function drawGrid(
  canvas: HTMLCanvasElement,
  pixels: ArrayLike<number>,
  count: number,
  { size = 28, cols = 8, scale = 2 } = {},
): void {
  const gap = 2;
  const cell = size * scale + gap;
  const rows = Math.ceil(count / cols);
  canvas.width = cols * cell + gap;
  canvas.height = rows * cell + gap;
  const ctx = canvas.getContext('2d');
  if (!ctx) return;
  const image = ctx.createImageData(canvas.width, canvas.height);
  for (let i = 0; i < image.data.length; i += 4) image.data.set([17, 20, 24, 255], i);
  for (let n = 0; n < count; n++) {
    const x0 = gap + (n % cols) * cell;
    const y0 = gap + Math.floor(n / cols) * cell;
    for (let y = 0; y < size * scale; y++) {
      for (let x = 0; x < size * scale; x++) {
        const v = pixels[n * size * size + Math.floor(y / scale) * size + Math.floor(x / scale)];
        const g = Math.round(255 * Math.min(1, Math.max(0, Number.isFinite(v) ? v : 0)));
        image.data.set([g, g, g, 255], ((y0 + y) * canvas.width + x0 + x) * 4);
      }
    }
  }
  ctx.putImageData(image, 0, 0);
}

/** Exponential moving average of a series (bias-corrected, so it starts at the first value). */
export function smooth(values: readonly number[], beta = 0.9): number[] {
  let avg = 0;
  return values.map((v, i) => {
    avg = beta * avg + (1 - beta) * v;
    return avg / (1 - beta ** (i + 1));
  });
}

const fmt = (v: number) =>
  Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(2) : v.toFixed(3);

/** Draws each loss series in its own panel, side by side. */
export function drawLosses(canvas: HTMLCanvasElement, history: Record<string, number[]>): void {
  const ctx = canvas.getContext('2d');
  if (!ctx) return;
  const { width, height } = canvas;
  ctx.fillStyle = BACKGROUND;
  ctx.fillRect(0, 0, width, height);
  const names = Object.keys(history).filter((k) => history[k].length > 0);
  if (names.length === 0) {
    ctx.fillStyle = '#8892a0';
    ctx.font = '13px system-ui, sans-serif';
    ctx.fillText('losses appear here once training starts', 16, height / 2);
    return;
  }
  const panel = width / names.length;
  names.forEach((name, k) => {
    const raw = history[name].filter(Number.isFinite);
    if (raw.length === 0) return;
    const avg = smooth(raw);
    const left = k * panel + 44;
    const right = (k + 1) * panel - 10;
    const top = 24;
    const bottom = height - 22;
    let lo = Math.min(...raw);
    let hi = Math.max(...raw);
    if (hi - lo < 1e-9) {
      lo -= 0.5;
      hi += 0.5;
    }
    const x = (i: number) => left + ((right - left) * i) / Math.max(1, raw.length - 1);
    const y = (v: number) => bottom - ((bottom - top) * (v - lo)) / (hi - lo);
    ctx.strokeStyle = '#39414d';
    ctx.lineWidth = 1;
    ctx.strokeRect(left, top, right - left, bottom - top);
    const colour = COLOURS[k % COLOURS.length];
    const line = (series: number[], alpha: number, lineWidth: number) => {
      ctx.globalAlpha = alpha;
      ctx.strokeStyle = colour;
      ctx.lineWidth = lineWidth;
      ctx.beginPath();
      series.forEach((v, i) => {
        if (i === 0) ctx.moveTo(x(i), y(v));
        else ctx.lineTo(x(i), y(v));
      });
      ctx.stroke();
      ctx.globalAlpha = 1;
    };
    line(raw, 0.3, 1);
    line(avg, 1, 2);
    ctx.fillStyle = '#c9d1d9';
    ctx.font = '12px system-ui, sans-serif';
    ctx.fillText(`${name}  ${fmt(avg[avg.length - 1])}`, left, top - 8);
    ctx.fillStyle = '#8892a0';
    ctx.font = '10px system-ui, sans-serif';
    ctx.fillText(fmt(hi), k * panel + 4, top + 8);
    ctx.fillText(fmt(lo), k * panel + 4, bottom);
    ctx.fillText(`step ${raw.length}`, right - 48, height - 6);
  });
}

/** Colour stops of the spectrogram palette, from quiet (dark blue) to loud (pale yellow). */
const PALETTE: readonly [number, number, number][] = [
  [13, 8, 40],
  [84, 15, 109],
  [187, 55, 84],
  [249, 142, 9],
  [252, 255, 164],
];

/** The palette's colour at `t` in [0, 1] (linear between stops). */
function paletteColour(t: number): [number, number, number] {
  const x = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (PALETTE.length - 1);
  const i = Math.min(PALETTE.length - 2, Math.floor(x));
  const f = x - i;
  const [a, b] = [PALETTE[i], PALETTE[i + 1]];
  return [0, 1, 2].map((c) => Math.round(a[c] + f * (b[c] - a[c]))) as [number, number, number];
}

/** Where and how big {@link drawHeatmaps} draws each map. */
export interface HeatmapLayout {
  /** Maps per row of the grid (default: all in one row). */
  cols?: number;
  /** Canvas pixels per value, horizontally and vertically (default 1). */
  scaleX?: number;
  scaleY?: number;
  /** Canvas pixels between maps (default 4). */
  gap?: number;
  /** Values mapped to the palette's ends (default: each map's own minimum and maximum). */
  range?: [number, number];
  /** A label drawn in the corner of each map. */
  labels?: readonly string[];
}

/**
 * Draws `count` maps of `rows × cols` values (row-major, map after map: a spectrogram's frequency
 * bins by its frames) as coloured images side by side, row 0 at the bottom (low frequencies low),
 * resizing the canvas to fit.
 *
 * @example
 * ```ts
 * drawHeatmaps(canvas, logMelValues, 1, 64, 129, { scaleX: 4, scaleY: 3 });
 * ```
 */
export function drawHeatmaps(
  canvas: HTMLCanvasElement,
  values: ArrayLike<number>,
  count: number,
  rows: number,
  cols: number,
  layout: HeatmapLayout = {},
): void {
  const { cols: perRow = count, scaleX = 1, scaleY = 1, gap = 4, range, labels } = layout;
  const width = cols * scaleX;
  const height = rows * scaleY;
  canvas.width = perRow * (width + gap) - gap;
  canvas.height = Math.ceil(count / perRow) * (height + gap) - gap;
  const ctx = canvas.getContext('2d');
  if (!ctx) return;
  const image = ctx.createImageData(canvas.width, canvas.height);
  for (let i = 0; i < image.data.length; i += 4) image.data.set([17, 20, 24, 255], i);
  const size = rows * cols;
  for (let n = 0; n < count; n++) {
    let [lo, hi] = range ?? [Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY];
    if (!range) {
      for (let i = 0; i < size; i++) {
        const v = values[n * size + i];
        if (Number.isFinite(v)) {
          lo = Math.min(lo, v);
          hi = Math.max(hi, v);
        }
      }
    }
    const span = hi - lo > 1e-9 ? hi - lo : 1;
    const x0 = (n % perRow) * (width + gap);
    const y0 = Math.floor(n / perRow) * (height + gap);
    for (let y = 0; y < height; y++) {
      const row = rows - 1 - Math.floor(y / scaleY);
      for (let x = 0; x < width; x++) {
        const v = values[n * size + row * cols + Math.floor(x / scaleX)];
        const [r, g, b] = paletteColour((v - lo) / span);
        image.data.set([r, g, b, 255], ((y0 + y) * canvas.width + x0 + x) * 4);
      }
    }
  }
  ctx.putImageData(image, 0, 0);
  if (labels) {
    ctx.font = '12px system-ui, sans-serif';
    ctx.fillStyle = '#ffffff';
    labels.slice(0, count).forEach((label, n) => {
      ctx.fillText(label, (n % perRow) * (width + gap) + 4, Math.floor(n / perRow) * (height + gap) + 14);
    });
  }
}
