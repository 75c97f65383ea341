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
