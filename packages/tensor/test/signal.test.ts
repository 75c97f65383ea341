/**
 * The signal ops: `stft` against a hand-written DFT loop, a sine's peak at its bin with magnitude
 * `A · Σw / 2`, `istft(stft(x)) = x` (float64 to 1e-10, float32 to 1e-5) over several geometries,
 * Parseval's identity, the mel filterbank against values worked out by hand, float64 gradchecks of
 * stft, istft, magnitude and melSpectrogram, Griffin-Lim's spectral convergence, input errors, and
 * WebGPU parity of values and gradients.
 */
import { gradcheck } from '@fluxion/autograd';
import {
  type BackendName,
  concat,
  type DType,
  griffinLim,
  hannWindow,
  hzToMel,
  istft,
  logMel,
  magnitude,
  melFilterbank,
  melSpectrogram,
  melToHz,
  memoryStats,
  powerSpectrum,
  type Spectrum,
  type StftOptions,
  scope,
  stft,
  sum,
  type Tensor,
  tensor,
} from '@fluxion/tensor';
import { describe, expect, test } from 'vitest';
import { expectAllClose, valuesOf } from './helpers.js';
import { skipNote, webgpuEnv } from './webgpu-env.js';

const gpu = await webgpuEnv();

/** Deterministic values in [−1, 1). */
function noise(n: number, seed: number): number[] {
  let s = seed * 9301 + 49297;
  return Array.from({ length: n }, () => {
    s = (s * 9301 + 49297) % 233280;
    return (s / 233280) * 2 - 1;
  });
}

const signal = (shape: number[], seed: number, dtype: DType = 'float64', backend: BackendName = 'cpu') =>
  tensor(
    noise(
      shape.reduce((p, d) => p * d, 1),
      seed,
    ),
    shape,
    { dtype, backend },
  );

/** Reads and disposes. */
async function read(t: Tensor): Promise<number[]> {
  try {
    return await valuesOf(t);
  } finally {
    t.dispose();
  }
}

/** The STFT by hand: reflect padding, framing and the DFT sum as loops. Returns [re, im] of [F, T]. */
function stftLoop(
  x: number[],
  o: {
    nFft: number;
    hop: number;
    window: number[];
    center: boolean;
    normalized?: boolean;
    onesided?: boolean;
  },
): [number[][], number[][]] {
  const n = o.nFft;
  const p = o.center ? n >> 1 : 0;
  const len = x.length;
  const xp = Array.from({ length: len + 2 * p }, (_, j) => {
    const i = j - p;
    return x[i < 0 ? -i : i >= len ? 2 * (len - 1) - i : i];
  });
  const left = (n - o.window.length) >> 1;
  const w = Array.from({ length: n }, (_, i) => o.window[i - left] ?? 0);
  const frames = 1 + Math.floor((xp.length - n) / o.hop);
  const bins = o.onesided === false ? n : (n >> 1) + 1;
  const scale = o.normalized ? 1 / Math.sqrt(n) : 1;
  const re: number[][] = [];
  const im: number[][] = [];
  for (let k = 0; k < bins; k++) {
    re.push([]);
    im.push([]);
    for (let t = 0; t < frames; t++) {
      let a = 0;
      let b = 0;
      for (let m = 0; m < n; m++) {
        const v = w[m] * xp[t * o.hop + m];
        a += v * Math.cos((2 * Math.PI * k * m) / n);
        b -= v * Math.sin((2 * Math.PI * k * m) / n);
      }
      re[k].push(a * scale);
      im[k].push(b * scale);
    }
  }
  return [re, im];
}

const hann = (n: number) => Array.from({ length: n }, (_, i) => 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / n));
const hamming = (n: number) =>
  Array.from({ length: n }, (_, i) => 0.54 - 0.46 * Math.cos((2 * Math.PI * i) / n));

describe('stft', () => {
  test('hannWindow: periodic (the default) and symmetric', async () => {
    await expectAllClose(hannWindow(4), [0, 0.5, 1, 0.5], { atol: 1e-7, rtol: 0 });
    await expectAllClose(hannWindow(5, { periodic: false, dtype: 'float64' }), [0, 0.5, 1, 0.5, 0], {
      atol: 1e-15,
      rtol: 0,
    });
    await expectAllClose(hannWindow(1), [1]);
  });

  test('equals a hand-written DFT loop (reflect-centred, uncentred, short window, normalized, two-sided)', async () => {
    const x = noise(21, 1);
    const cases = [
      { nFft: 8, hop: 3, window: hann(8), center: true },
      { nFft: 8, hop: 2, window: hann(8), center: false },
      { nFft: 9, hop: 4, window: hann(9), center: true },
      { nFft: 10, hop: 3, window: hamming(6), center: true, normalized: true },
      { nFft: 8, hop: 5, window: hann(8), center: true, onesided: false },
    ];
    for (const c of cases) {
      const options: StftOptions = {
        nFft: c.nFft,
        hopLength: c.hop,
        winLength: c.window.length,
        center: c.center,
        normalized: c.normalized,
        onesided: c.onesided,
        ...(c.window.length === c.nFft ? {} : { window: tensor(c.window, { dtype: 'float64' }) }),
      };
      const [re, im] = stftLoop(x, c);
      const s = stft(tensor(x, { dtype: 'float64' }), options);
      expect(s.real.shape).toEqual([re.length, re[0].length]);
      await expectAllClose(s.real, re.flat(), { atol: 1e-12, rtol: 1e-12 });
      await expectAllClose(s.imag, im.flat(), { atol: 1e-12, rtol: 1e-12 });
    }
  });

  test('batch axes: [2, 3, L] gives [2, 3, F, T], each signal its own STFT', async () => {
    const x = signal([2, 3, 40], 2);
    const s = stft(x, { nFft: 16, hopLength: 4 });
    expect(s.real.shape).toEqual([2, 3, 9, 11]);
    const rows = await valuesOf(x);
    const re = await valuesOf(s.real);
    const im = await valuesOf(s.imag);
    for (const b of [0, 4]) {
      const [r, i] = stftLoop(rows.slice(b * 40, b * 40 + 40), {
        nFft: 16,
        hop: 4,
        window: hann(16),
        center: true,
      });
      await expectAllClose(re.slice(b * 99, b * 99 + 99), r.flat(), { atol: 1e-12, rtol: 1e-12 });
      await expectAllClose(im.slice(b * 99, b * 99 + 99), i.flat(), { atol: 1e-12, rtol: 1e-12 });
    }
  });

  test('a sine at an exact bin peaks there with magnitude A · Σw / 2', async () => {
    // f = k₀ · fs / nFft; the periodic Hann window's DFT is non-zero only at bins 0 and ±1, so the
    // negative-frequency image leaks nothing into bin k₀ and |X[k₀, t]| = A · W(0) / 2 = A · Σw / 2.
    const fs = 8000;
    const nFft = 256;
    const k0 = 20;
    const amp = 0.7;
    const x = Array.from(
      { length: 2048 },
      (_, i) => amp * Math.sin((2 * Math.PI * k0 * fs * i) / nFft / fs + 0.3),
    );
    const sumW = hann(nFft).reduce((a, b) => a + b, 0); // = nFft / 2
    for (const dtype of ['float64', 'float32'] as const) {
      const mag = magnitude(stft(tensor(x, { dtype }), { nFft, hopLength: 64, center: false }));
      const [bins, frames] = mag.shape;
      const m = await read(mag);
      for (let t = 0; t < frames; t++) {
        const column = Array.from({ length: bins }, (_, k) => m[k * frames + t]);
        expect(column.indexOf(Math.max(...column))).toBe(k0);
        expect(Math.abs(column[k0] - (amp * sumW) / 2)).toBeLessThan(dtype === 'float64' ? 1e-9 : 1e-4);
      }
    }
  });

  test('Parseval: rectangular window, hop = nFft: Σₖ|X[k,t]|² = nFft · Σₙ x[t·nFft + n]², one-sided doubled', async () => {
    // Over the full spectrum Σ_{k<N} |X_k|² = N Σ x². One-sided (N even): the bins 1 … N/2−1 stand
    // for their conjugates too, so |X₀|² + |X_{N/2}|² + 2 Σ_{0<k<N/2} |X_k|² = N Σ x². Normalized
    // (scaled by N^(−1/2)), Σ_{k<N} |X_k|² = Σ x².
    const nFft = 16;
    const frames = 5;
    const x = signal([nFft * frames], 3);
    const xs = await valuesOf(x);
    const energy = Array.from({ length: frames }, (_, t) =>
      xs.slice(t * nFft, (t + 1) * nFft).reduce((s, v) => s + v * v, 0),
    );
    const rect = tensor(Array(nFft).fill(1), { dtype: 'float64' });
    const base = { nFft, hopLength: nFft, window: rect, center: false };
    const full = await read(powerSpectrum(stft(x, { ...base, onesided: false })));
    const half = await read(powerSpectrum(stft(x, base)));
    const ortho = await read(powerSpectrum(stft(x, { ...base, onesided: false, normalized: true })));
    for (let t = 0; t < frames; t++) {
      const col = (p: number[], bins: number) => Array.from({ length: bins }, (_, k) => p[k * frames + t]);
      const sumFull = col(full, nFft).reduce((a, b) => a + b, 0);
      const h = col(half, nFft / 2 + 1);
      const sumHalf = h.reduce((a, v, k) => a + (k === 0 || k === nFft / 2 ? v : 2 * v), 0);
      expect(sumFull).toBeCloseTo(nFft * energy[t], 10);
      expect(sumHalf).toBeCloseTo(nFft * energy[t], 10);
      expect(col(ortho, nFft).reduce((a, b) => a + b, 0)).toBeCloseTo(energy[t], 12);
    }
  });
});

describe('istft', () => {
  const geometries: (StftOptions & { hamming?: boolean })[] = [
    { nFft: 16, hopLength: 4 },
    { nFft: 16, hopLength: 8 },
    { nFft: 15, hopLength: 5 },
    { nFft: 32, hopLength: 8, winLength: 24 },
    { nFft: 64, hopLength: 16, normalized: true },
    { nFft: 32, hopLength: 8, padMode: 'constant' },
    { nFft: 16, hopLength: 4, onesided: false },
    // Without centring the Hann window's zero at n = 0 leaves sample 0 uncovered; Hamming covers it.
    { nFft: 16, hopLength: 4, center: false, hamming: true },
    { nFft: 20, hopLength: 5, winLength: 20, center: false, hamming: true },
  ];

  for (const { hamming: ham, ...g } of geometries) {
    test(`istft(stft(x)) = x: ${JSON.stringify(g)}${ham ? ' hamming' : ''}`, async () => {
      for (const [dtype, tol] of [
        ['float64', 1e-10],
        ['float32', 1e-5],
      ] as const) {
        // Uncentred, the frames cover nFft + hop·(T−1) samples: make the signal exactly that long.
        const len = g.center === false ? g.nFft + 9 * (g.hopLength ?? 4) : 101;
        const x = signal([2, len], 5, dtype);
        const window = ham ? tensor(hamming(g.winLength ?? g.nFft), { dtype }) : undefined;
        const options = { ...g, window };
        const y = istft(stft(x, options), { ...options, length: len });
        expect(y.shape).toEqual([2, len]);
        await expectAllClose(y, x, { atol: tol, rtol: 0 });
        if (g.center !== false) {
          // Without `length`, centred output has hop·(T−1) samples, a multiple of hop ≤ len.
          const z = istft(stft(x, options), options);
          const hop = g.hopLength ?? 4;
          const t = 1 + Math.floor((len + 2 * (g.nFft >> 1) - g.nFft) / hop);
          expect(z.shape).toEqual([2, g.nFft + hop * (t - 1) - 2 * (g.nFft >> 1)]);
        }
      }
    });
  }

  test('a length beyond the frames is zero-padded; a shorter one trims', async () => {
    const x = signal([40], 6);
    const s = stft(x, { nFft: 16, hopLength: 4 });
    const long = await read(istft(s, { nFft: 16, hopLength: 4, length: 50 }));
    expect(long.length).toBe(50);
    await expectAllClose(long.slice(0, 40), x, { atol: 1e-10, rtol: 0 });
    expect(long.slice(48)).toEqual([0, 0]);
    const short = await read(istft(s, { nFft: 16, hopLength: 4, length: 25 }));
    await expectAllClose(short, (await valuesOf(x)).slice(0, 25), { atol: 1e-10, rtol: 0 });
  });

  test('a hop that leaves samples uncovered by the window raises (NOLA)', () => {
    const s = stft(signal([64], 7), { nFft: 16, hopLength: 16 });
    expect(() => istft(s, { nFft: 16, hopLength: 16 })).toThrow(
      /^istft: the window envelope Σ w² is 0 at sample/,
    );
    const u = stft(signal([64], 7), { nFft: 16, hopLength: 4, center: false });
    expect(() => istft(u, { nFft: 16, hopLength: 4, center: false })).toThrow(/NOLA fails/);
  });
});

describe('magnitude, mel filterbank, mel spectrogram', () => {
  test('magnitude = √(Re² + Im² + eps), with a finite zero gradient at 0', async () => {
    const spec = {
      real: tensor([3, 0, -1], { dtype: 'float64' }),
      imag: tensor([4, 0, 0], { dtype: 'float64' }),
    };
    await expectAllClose(magnitude(spec), [5, 1e-6, 1], { atol: 1e-12, rtol: 1e-12 });
    await expectAllClose(magnitude(spec, 0), [5, 0, 1], { atol: 0, rtol: 1e-15 });
    const re = tensor([0, 0.5], { dtype: 'float64' });
    re.requiresGrad = true;
    sum(magnitude({ real: re, imag: tensor([0, 0], { dtype: 'float64' }) })).backward();
    expect(await valuesOf(re.grad!)).toEqual([0, expect.closeTo(1, 10)]);
  });

  test('mel scales at hand-computed points', () => {
    // Slaney: 3f/200 below 1 kHz; 15 + 27·ln(f/1000)/ln 6.4 above, so 6.4 kHz is mel 42.
    expect(hzToMel(600)).toBeCloseTo(9, 12);
    expect(hzToMel(1000)).toBeCloseTo(15, 12);
    expect(hzToMel(6400)).toBeCloseTo(42, 12);
    expect(melToHz(42)).toBeCloseTo(6400, 9);
    // HTK: 2595·log₁₀(1 + f/700); f = 700 gives 2595·log₁₀ 2.
    expect(hzToMel(700, true)).toBeCloseTo(781.1728, 3); // 2595 · 0.30103
    expect(hzToMel(6300, true)).toBeCloseTo(2595, 9);
    for (const f of [0, 123, 999, 1000, 3999]) {
      expect(melToHz(hzToMel(f))).toBeCloseTo(f, 9);
      expect(melToHz(hzToMel(f, true), true)).toBeCloseTo(f, 9);
    }
  });

  test('the filterbank against hand values: Slaney area 1, peaks of 1 at the centres without norm', async () => {
    // sampleRate 1600, nFft 16: bins every 100 Hz, 0 … 800. Below 1 kHz Slaney's scale is linear,
    // so 3 mels over [0, 800] Hz put the corners at 0, 200, 400, 600, 800 Hz: triangle m rises from
    // 200m to its centre 200(m+1) and falls to 200(m+2). Sampled every 100 Hz: 0, ½, 1, ½, 0; the
    // Slaney scale 2/(400 Hz) = 1/200 makes the peak 0.005 and the area (row sum × 100 Hz) 1.
    const rows = [
      [0, 0.5, 1, 0.5, 0, 0, 0, 0, 0],
      [0, 0, 0, 0.5, 1, 0.5, 0, 0, 0],
      [0, 0, 0, 0, 0, 0.5, 1, 0.5, 0],
    ];
    const plain = melFilterbank(3, 16, 1600, { norm: null, dtype: 'float64' });
    expect(plain.shape).toEqual([3, 9]);
    await expectAllClose(plain, rows.flat(), { atol: 1e-12, rtol: 0 });
    const slaney = await read(melFilterbank(3, 16, 1600, { dtype: 'float64' }));
    await expectAllClose(
      slaney,
      rows.flat().map((v) => v / 200),
      { atol: 1e-15, rtol: 1e-12 },
    );
    for (let m = 0; m < 3; m++) {
      expect(slaney.slice(m * 9, m * 9 + 9).reduce((a, b) => a + b, 0) * 100).toBeCloseTo(1, 12);
    }
    // fMin 100, fMax 700, 2 mels: corners 100, 300, 500, 700 Hz.
    await expectAllClose(
      melFilterbank(2, 16, 1600, { fMin: 100, fMax: 700, norm: null, dtype: 'float64' }),
      [0, 0, 0.5, 1, 0.5, 0, 0, 0, 0, 0, 0, 0, 0, 0.5, 1, 0.5, 0, 0],
      { atol: 1e-12, rtol: 0 },
    );
  });

  test('every triangle rises to its centre and falls after it (Slaney and HTK, 40 mels at 8 kHz)', async () => {
    for (const htk of [false, true]) {
      const nFft = 512;
      const fb = await read(melFilterbank(40, nFft, 8000, { htk, norm: null, dtype: 'float64' }));
      const bins = nFft / 2 + 1;
      const step = hzToMel(4000, htk) / 41;
      for (let m = 0; m < 40; m++) {
        const row = fb.slice(m * bins, (m + 1) * bins);
        const centre = (melToHz(step * (m + 1), htk) * nFft) / 8000; // in bins
        const peak = row.indexOf(Math.max(...row));
        // The largest sample is one of the two bins around the centre (the nearer one unless the
        // triangle's two sides differ in slope).
        expect(Math.abs(peak - centre)).toBeLessThan(1);
        expect(row[peak]).toBeLessThanOrEqual(1);
        for (let k = 1; k < bins; k++) {
          if (k <= peak) expect(row[k]).toBeGreaterThanOrEqual(row[k - 1]);
          else expect(row[k]).toBeLessThanOrEqual(row[k - 1]);
        }
      }
    }
  });

  test('melSpectrogram = filterbank · |STFT|^power; logMel floors at eps', async () => {
    const x = signal([2, 200], 8);
    const o = { sampleRate: 8000, nFft: 64, hopLength: 16, nMels: 10 };
    const mel = melSpectrogram(x, o);
    expect(mel.shape).toEqual([2, 10, 13]);
    const fb = await valuesOf(melFilterbank(10, 64, 8000, { dtype: 'float64' }));
    const p = await valuesOf(powerSpectrum(stft(x, o)));
    const expected: number[] = [];
    for (let b = 0; b < 2; b++)
      for (let m = 0; m < 10; m++)
        for (let t = 0; t < 13; t++) {
          let acc = 0;
          for (let k = 0; k < 33; k++) acc += fb[m * 33 + k] * p[(b * 33 + k) * 13 + t];
          expected.push(acc);
        }
    await expectAllClose(mel, expected, { atol: 1e-12, rtol: 1e-12 });
    await expectAllClose(logMel(mel), expected.map(Math.log), { atol: 1e-12, rtol: 1e-12 });
    const amp = melSpectrogram(x, { ...o, power: 1 });
    const mag = await valuesOf(magnitude(stft(x, o)));
    expect((await valuesOf(amp))[0]).toBeCloseTo(
      fb.slice(0, 33).reduce((s, w, k) => s + w * mag[k * 13], 0),
      12,
    );
    await expectAllClose(logMel(tensor([0, 1e-12, 1])), [Math.log(1e-10), Math.log(1e-10), 0], {
      atol: 1e-5,
      rtol: 1e-6,
    });
  });
});

describe('gradients (float64 gradchecks)', () => {
  const both = (s: Spectrum) => concat([s.real, s.imag], -1);

  test('stft w.r.t. the signal and the window (reflect, replicate, constant, uncentred)', async () => {
    for (const padMode of ['reflect', 'replicate', 'circular', 'constant'] as const) {
      await gradcheck((x) => both(stft(x, { nFft: 6, hopLength: 2, padMode })), [signal([2, 9], 9)]);
    }
    await gradcheck(
      (x, w) => both(stft(x, { nFft: 6, hopLength: 3, winLength: 4, window: w, center: false })),
      [signal([10], 10), signal([4], 11)],
    );
  });

  test('istft w.r.t. real and imaginary parts and the window', async () => {
    await gradcheck(
      (re, im) => istft({ real: re, imag: im }, { nFft: 6, hopLength: 2, length: 9 }),
      [signal([2, 4, 5], 12), signal([2, 4, 5], 13)],
    );
    const w = tensor([0.6, 0.9, 1, 0.8, 0.7, 0.5], { dtype: 'float64' });
    await gradcheck(
      (re, im, win) => istft({ real: re, imag: im }, { nFft: 6, hopLength: 3, window: win, center: false }),
      [signal([4, 3], 14), signal([4, 3], 15), w],
    );
  });

  test('magnitude and melSpectrogram (power 2 and 1), logMel', async () => {
    await gradcheck((re, im) => magnitude({ real: re, imag: im }), [signal([3, 4], 16), signal([3, 4], 17)]);
    const o = { sampleRate: 800, nFft: 8, hopLength: 2, nMels: 3 };
    await gradcheck((x) => melSpectrogram(x, o), [signal([2, 10], 18)]);
    await gradcheck((x) => logMel(melSpectrogram(x, { ...o, power: 1, htk: true })), [signal([10], 19)]);
  });
});

describe('Griffin-Lim', () => {
  /** ‖|STFT(y)| − S‖_F / ‖S‖_F. */
  async function spectralConvergence(y: Tensor, target: Tensor, o: StftOptions): Promise<number> {
    const m = await read(magnitude(stft(y, o)));
    const s = await valuesOf(target);
    const num = m.reduce((a, v, i) => a + (v - s[i]) ** 2, 0);
    return Math.sqrt(num / s.reduce((a, v) => a + v * v, 0));
  }

  test('fast Griffin-Lim (64 iterations) brings spectral convergence below 0.1, far under the random start', async () => {
    const len = 2000;
    const fs = 8000;
    // A chirp from 300 to 1500 Hz with a second harmonic and an amplitude envelope.
    const x = tensor(
      Array.from({ length: len }, (_, i) => {
        const t = i / fs;
        const phase = 2 * Math.PI * (300 * t + (1200 / (2 * (len / fs))) * t * t);
        return Math.sin(Math.PI * (i / len)) * (Math.sin(phase) + 0.4 * Math.sin(2 * phase));
      }),
    );
    const o = { nFft: 128, hopLength: 32 };
    const target = magnitude(stft(x, o));
    const start = await spectralConvergence(griffinLim(target, { ...o, nIter: 0, length: len }), target, o);
    const plain = await spectralConvergence(
      griffinLim(target, { ...o, nIter: 64, momentum: 0, length: len }),
      target,
      o,
    );
    const fast = await spectralConvergence(griffinLim(target, { ...o, nIter: 64, length: len }), target, o);
    // Measured: start 0.61, plain Griffin-Lim 0.17, fast Griffin-Lim 0.037 (float32 on the CPU).
    expect(fast).toBeLessThan(0.1);
    expect(fast).toBeLessThan(start / 4);
    expect(fast).toBeLessThan(plain);
  });

  test('a seed fixes the result; a power spectrogram gives the same signal as its magnitude', async () => {
    const x = signal([300], 20, 'float32');
    const o = { nFft: 32, hopLength: 8 };
    const mag = magnitude(stft(x, o), 0);
    const a = await read(griffinLim(mag, { ...o, nIter: 4, seed: 3 }));
    const b = await read(griffinLim(mag, { ...o, nIter: 4, seed: 3 }));
    expect(a).toEqual(b);
    const c = await read(griffinLim(powerSpectrum(stft(x, o)), { ...o, nIter: 4, seed: 3, power: 2 }));
    await expectAllClose(c, a, { atol: 1e-4, rtol: 1e-3 });
  });
});

describe('errors', () => {
  test('name the op, the shapes and the dtypes', () => {
    const x = signal([20], 21);
    expect(() => stft(tensor([1, 2, 3], { dtype: 'int32' }), { nFft: 2 })).toThrow(
      /^stft: x must be a float tensor of rank ≥ 1, got \[3\] int32/,
    );
    expect(() => stft(x, { nFft: 0 })).toThrow(/^stft: nFft must be a positive integer, got 0/);
    expect(() => stft(x, { nFft: 8, winLength: 9 })).toThrow(
      /^stft: winLength must be an integer in \[1, nFft = 8\]/,
    );
    expect(() => stft(x, { nFft: 8, hopLength: 1.5 })).toThrow(/^stft: hopLength must be a positive integer/);
    expect(() => stft(signal([5], 1), { nFft: 16 })).toThrow(
      /^stft: reflect padding of 8 needs a signal of length ≥ 9, got 5/,
    );
    expect(() => stft(signal([5], 1), { nFft: 16, center: false })).toThrow(/is shorter than nFft = 16/);
    expect(() => stft(x, { nFft: 8, window: tensor([1, 2]) })).toThrow(
      /^stft: window must be \[winLength = 8\] float64, got \[2\] float32/,
    );
    const s = stft(x, { nFft: 8 });
    expect(() => istft(s, { nFft: 10 })).toThrow(/^istft: expected \[\.\.\., 6, T ≥ 1\] for nFft = 10/);
    expect(() => istft({ real: s.real, imag: tensor([1]) }, { nFft: 8 })).toThrow(
      /^istft: real and imag need one shape and float dtype/,
    );
    expect(() => magnitude({ real: s.real, imag: s.real.cast('float32') })).toThrow(
      /^magnitude: real and imag/,
    );
    expect(() => melFilterbank(4, 16, 8000, { fMax: 5000 })).toThrow(
      /^melFilterbank: needs 0 ≤ fMin < fMax ≤/,
    );
    expect(() => griffinLim(s.real, { momentum: 1 })).toThrow(/^griffinLim: momentum must lie in \[0, 1\)/);
    expect(() => griffinLim(s.real, { nFft: 16 })).toThrow(
      /^griffinLim: a one-sided magnitude of nFft 16 has 9 bins/,
    );
  });

  test('the ops leave no tensor behind', async () => {
    const x = signal([2, 100], 22, 'float32');
    const o = { nFft: 32, hopLength: 8 };
    const run = () => {
      const s = stft(x, o);
      const mag = magnitude(s);
      const outs = [
        istft(s, o),
        melSpectrogram(x, { ...o, sampleRate: 8000, nMels: 8 }),
        griffinLim(mag, { ...o, nIter: 2 }),
      ];
      for (const t of [s.real, s.imag, mag, ...outs]) t.dispose();
    };
    run();
    const before = memoryStats().liveTensors;
    run();
    expect(memoryStats().liveTensors).toBe(before);
    x.dispose();
  });
});

describe.skipIf(!gpu.backend)(`signal ops on WebGPU equal the CPU${skipNote(gpu)}`, () => {
  const TOL = { atol: 1e-4, rtol: 1e-4 };

  /** Value and gradient of Σ v·f(x) on a backend, float32. */
  async function valueAndGrad(f: (x: Tensor) => Tensor, shape: number[], backend: BackendName) {
    const x = signal(shape, 23, 'float32', backend);
    x.requiresGrad = true;
    const y = f(x);
    const v = tensor(noise(y.size, 24), y.shape, { backend });
    const loss = scope(() => sum(y.mul(v)));
    loss.backward();
    const out = { y: await valuesOf(y), grad: await valuesOf(x.grad!) };
    for (const t of [x, y, v, loss]) t.dispose();
    return out;
  }

  test('stft, istft, magnitude, melSpectrogram, logMel: values and gradients', async () => {
    const o = { nFft: 64, hopLength: 16 };
    const cases: [string, (x: Tensor) => Tensor, number[]][] = [
      ['stft', (x) => concat(Object.values(stft(x, o)), -1), [3, 300]],
      [
        'stft uncentred, short window',
        (x) => stft(x, { nFft: 30, hopLength: 7, winLength: 20, center: false }).imag,
        [2, 200],
      ],
      ['istft', (x) => istft({ real: x, imag: x.mul(-0.5) }, { ...o, length: 150 }), [2, 33, 10]],
      ['magnitude', (x) => magnitude(stft(x, o)), [2, 300]],
      ['log-mel', (x) => logMel(melSpectrogram(x, { ...o, sampleRate: 8000, nMels: 16 }), 1e-6), [2, 300]],
      ['round trip', (x) => istft(stft(x, o), o), [2, 300]],
    ];
    for (const [name, f, shape] of cases) {
      const cpu = await valueAndGrad(f, shape, 'cpu');
      const onGpu = await valueAndGrad(f, shape, 'webgpu');
      await expectAllClose(onGpu.y, cpu.y, TOL).catch((e) => expect.fail(`${name} values: ${e.message}`));
      await expectAllClose(onGpu.grad, cpu.grad, TOL).catch((e) =>
        expect.fail(`${name} gradients: ${e.message}`),
      );
    }
  });

  test('Griffin-Lim runs on the GPU and converges as on the CPU', async () => {
    const o = { nFft: 64, hopLength: 16 };
    const x = (backend: BackendName) =>
      tensor(
        Array.from({ length: 800 }, (_, i) => Math.sin(i * 0.3) + 0.5 * Math.sin(i * 0.71)),
        { backend },
      );
    const sc = async (backend: BackendName) => {
      const target = magnitude(stft(x(backend), o));
      const y = griffinLim(target, { ...o, nIter: 16, length: 800, seed: 1 });
      const m = await read(magnitude(stft(y, o)));
      const s = await read(target);
      return Math.sqrt(m.reduce((a, v, i) => a + (v - s[i]) ** 2, 0) / s.reduce((a, v) => a + v * v, 0));
    };
    const cpu = await sc('cpu');
    const onGpu = await sc('webgpu');
    expect(onGpu).toBeLessThan(0.2);
    expect(Math.abs(onGpu - cpu)).toBeLessThan(0.02);
  });
});
