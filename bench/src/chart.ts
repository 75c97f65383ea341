/**
 * The results chart: one block per case, one horizontal bar per engine (a fixed colour per
 * engine, legend at the top), bar length relative to the best engine of that case, the figure
 * written after each bar. The bar is the case's first metric (GFLOP/s, GB/s, steps/s: longer is
 * better; µs/op: shorter is better, said in the block's title). Written as an RGB PNG with the
 * models package's encoder and 3×5 bitmap font.
 */
import { writeFileSync } from 'node:fs';
import { encodePng, FONT } from '@fluxion/models/node';
import { type BenchResult, formatNumber, type RunInfo } from './harness.js';

type Rgb = [number, number, number];

/** Engine colours, by `engine-backend` label; unknown engines get grey. */
const ENGINE_COLOURS: Record<string, Rgb> = {
  'fluxion-webgpu': [230, 80, 40],
  'fluxion-cpu': [245, 170, 120],
  'tfjs-webgpu': [40, 110, 220],
  'tfjs-wasm': [100, 160, 240],
  'tfjs-cpu': [170, 200, 245],
  'jax-js-webgpu': [30, 150, 70],
  'jax-js-wasm': [120, 200, 120],
  'pytorch-cuda': [140, 60, 180],
};

const GREY: Rgb = [150, 150, 150];
const BLACK: Rgb = [0, 0, 0];
const GLYPH_ADVANCE = 8;

/** An RGB pixel buffer with rectangles and bitmap text. */
class Canvas {
  readonly px: Uint8Array;

  constructor(
    readonly width: number,
    readonly height: number,
  ) {
    this.px = new Uint8Array(width * height * 3).fill(255);
  }

  rect(x: number, y: number, w: number, h: number, [r, g, b]: Rgb): void {
    for (let yy = Math.max(0, y); yy < Math.min(this.height, y + h); yy++) {
      for (let xx = Math.max(0, x); xx < Math.min(this.width, x + w); xx++) {
        const i = (yy * this.width + xx) * 3;
        this.px[i] = r;
        this.px[i + 1] = g;
        this.px[i + 2] = b;
      }
    }
  }

  /** Draws text 10 px high (glyphs doubled); characters the font lacks are left blank. */
  text(s: string, x: number, y: number, colour: Rgb = BLACK): void {
    [...s.toUpperCase()].forEach((ch, k) => {
      const glyph = FONT[ch];
      if (!glyph) return;
      glyph.forEach((bits, row) => {
        for (let col = 0; col < 3; col++) {
          if (bits & (4 >> col)) this.rect(x + k * GLYPH_ADVANCE + col * 2, y + row * 2, 2, 2, colour);
        }
      });
    });
  }
}

/** Spells labels with the font's characters: `Aᵀ·B` → `AT.B`, `µs/op` → `US/OP`. */
function plain(s: string): string {
  return s.replace(/ᵀ/g, 'T').replace(/·/g, '.').replace(/µ/g, 'U').replace(/[()×]/g, ' ');
}

/** Cases in order of first appearance, each with its rows. */
function groupByCase(results: readonly BenchResult[]): { title: string; rows: BenchResult[] }[] {
  const groups = new Map<string, BenchResult[]>();
  for (const r of results) {
    const key = `${r.suite}: ${r.name}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  return [...groups].map(([title, rows]) => ({ title, rows }));
}

/** Draws the chart of a run and returns the PNG bytes. */
export function barChart(info: RunInfo, results: readonly BenchResult[]): Uint8Array {
  const groups = groupByCase(results);
  const engines = [...new Set(results.map((r) => `${r.engine}-${r.backend}`))];
  const [left, labelWidth, barMax, rowH, titleH, gap] = [10, 130, 560, 14, 18, 10];
  const legendH = 20 * Math.ceil(engines.length / 4) + 10;
  const height = 40 + legendH + groups.reduce((h, g) => h + titleH + g.rows.length * rowH + gap, 0);
  const c = new Canvas(left + labelWidth + barMax + 120, height);
  c.text(plain(`Fluxion bench - ${info.adapter} - ${new Date().toISOString().slice(0, 10)}`), left, 10);
  engines.forEach((e, i) => {
    const [x, y] = [left + (i % 4) * 200, 34 + 20 * Math.floor(i / 4)];
    c.rect(x, y, 14, 10, ENGINE_COLOURS[e] ?? GREY);
    c.text(e, x + 20, y);
  });
  let y = 40 + legendH;
  for (const { title, rows } of groups) {
    const unit = Object.keys(rows.find((r) => !r.skipped)?.metrics ?? {})[0];
    const value = (r: BenchResult) => (unit && !r.skipped ? r.metrics[unit] : Number.NaN);
    const higherIsBetter = !unit || unit.endsWith('/s');
    c.text(
      plain(`${title}${unit ? ` - ${unit}${higherIsBetter ? '' : ' - shorter is better'}` : ''}`),
      left,
      y,
    );
    y += titleH;
    const best = Math.max(...rows.map(value).filter(Number.isFinite), 0);
    for (const r of rows) {
      const label = `${r.engine}-${r.backend}`;
      c.text(label, left, y + 2, GREY);
      const v = value(r);
      if (Number.isFinite(v) && best > 0) {
        const w = Math.max(1, Math.round((barMax * v) / best));
        c.rect(left + labelWidth, y, w, rowH - 3, ENGINE_COLOURS[label] ?? GREY);
        c.text(formatNumber(v), left + labelWidth + w + 6, y + 1);
      } else {
        c.text('skipped', left + labelWidth, y + 1, GREY);
      }
      y += rowH;
    }
    y += gap;
  }
  return encodePng(c.width, c.height, 3, c.px);
}

/** Writes the chart of a run to `file` and returns the path. */
export function writeChart(file: string, info: RunInfo, results: readonly BenchResult[]): string {
  writeFileSync(file, barChart(info, results));
  return file;
}
