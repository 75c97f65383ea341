/**
 * Signal ops for audio: the short-time Fourier transform and its inverse, magnitude, power and mel
 * spectrograms, and Griffin-Lim phase recovery. They are composites: framing is a `windows` view
 * (over chunks of hop samples, so that its gradient folds few taps), the DFT is one matrix product
 * with a `[2F, nFft]` matrix of cosines and sines (computed on the host in float64, scaled by the
 * window on the device), overlap-add is the `fold` op. So they run on any backend, and autograd
 * differentiates them through those primitives; there is no kernel and no gradient code here.
 *
 * Conventions are PyTorch's (`torch.stft(..., return_complex=True)`, `torch.istft`) and, for the
 * mel filterbank, librosa's defaults. Fluxion has no complex dtype, so a spectrum is a pair of
 * real tensors, {@link Spectrum} `{ real, imag }`, each `[..., freq, frames]`.
 */
import type { BackendName } from './backend.js';
import { clamp, split, square } from './composite.js';
import { tensor } from './creation.js';
import { type DType, isFloat } from './dtype.js';
import { FluxionError, fmtShape } from './errors.js';
import { scope } from './memory.js';
import { add, concat, cos, div, log, matmul, mul, pad, pow, sin, sqrt, sub, take } from './ops.js';
import { rand } from './random.js';
import { sizeOf } from './shape.js';
import type { Tensor } from './tensor.js';
import { expand, fold, permute, reshape, slice, windows } from './views.js';

/**
 * A complex spectrum as two real tensors of one shape `[..., freq, frames]`.
 *
 * @example
 * ```ts
 * const { real, imag }: Spectrum = stft(wave, { nFft: 256 });
 * ```
 */
export interface Spectrum {
  /** Real part. */
  real: Tensor;
  /** Imaginary part. */
  imag: Tensor;
}

/**
 * How {@link stft} extends the signal by `⌊nFft/2⌋` at each end when `center` is true (PyTorch's
 * `pad_mode`): `reflect` mirrors without repeating the end sample (`x[2], x[1] | x[0], x[1], …`),
 * `replicate` repeats it, `circular` wraps around, `constant` pads zeros.
 *
 * @example
 * ```ts
 * stft(wave, { nFft: 256, padMode: 'constant' });
 * ```
 */
export type PadMode = 'reflect' | 'constant' | 'replicate' | 'circular';

/**
 * The frame geometry shared by {@link stft}, {@link istft}, {@link melSpectrogram} and
 * {@link griffinLim}: pass the same options to stft and istft for a round trip.
 *
 * @example
 * ```ts
 * const frame: FrameOptions = { nFft: 256, hopLength: 64, window: hannWindow(256, { backend: 'webgpu' }) };
 * ```
 */
export interface FrameOptions {
  /** DFT size, the length of a frame (a positive integer). */
  nFft: number;
  /** Samples between the starts of neighbouring frames (default `⌊nFft/4⌋`). */
  hopLength?: number;
  /** Length of the window, ≤ nFft; it is zero-padded on both sides to nFft (default nFft). */
  winLength?: number;
  /**
   * The window `[winLength]`, of the signal's dtype and backend (default: the periodic Hann window
   * of `winLength`, {@link hannWindow}).
   */
  window?: Tensor;
  /** Frame `t` is centred on sample `t·hop` (the signal padded by `⌊nFft/2⌋` each side); default true. */
  center?: boolean;
  /** Scale the DFT by `nFft^(−1/2)` (PyTorch's `normalized`, an orthonormal DFT); default false. */
  normalized?: boolean;
  /** Keep only the `⌊nFft/2⌋ + 1` non-negative frequencies (default true) or all `nFft`. */
  onesided?: boolean;
}

/**
 * Options of {@link stft}.
 *
 * @example
 * ```ts
 * const options: StftOptions = { nFft: 512, hopLength: 128, center: true, padMode: 'reflect' };
 * ```
 */
export interface StftOptions extends FrameOptions {
  /** How the signal is extended when `center` is true (default `'reflect'`). */
  padMode?: PadMode;
}

/**
 * Options of {@link istft}.
 *
 * @example
 * ```ts
 * istft(spectrum, { nFft: 256, hopLength: 64, length: 8000 });
 * ```
 */
export interface IstftOptions extends FrameOptions {
  /** Length of the output signal: trimmed, or zero-padded at the end (default: all the frames give). */
  length?: number;
}

/** Below this the window envelope counts as zero (PyTorch's NOLA threshold). */
const NOLA_EPS = 1e-11;

interface Geometry {
  nFft: number;
  hop: number;
  winLength: number;
  center: boolean;
  normalized: boolean;
  onesided: boolean;
  /** Rows of the spectrum: ⌊nFft/2⌋ + 1 one-sided, else nFft. */
  bins: number;
}

const positiveInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 1;

function geometry(op: string, o: FrameOptions): Geometry {
  if (!o || !positiveInt(o.nFft))
    throw new FluxionError(op, `nFft must be a positive integer, got ${o?.nFft}`);
  const { nFft, center = true, normalized = false, onesided = true } = o;
  const hop = o.hopLength ?? Math.max(1, Math.floor(nFft / 4));
  const winLength = o.winLength ?? nFft;
  if (!positiveInt(hop)) throw new FluxionError(op, `hopLength must be a positive integer, got ${hop}`);
  if (!positiveInt(winLength) || winLength > nFft) {
    throw new FluxionError(op, `winLength must be an integer in [1, nFft = ${nFft}], got ${winLength}`);
  }
  return { nFft, hop, winLength, center, normalized, onesided, bins: onesided ? (nFft >> 1) + 1 : nFft };
}

function checkFloat(op: string, name: string, x: Tensor, minRank: number): void {
  if (!isFloat(x.dtype) || x.rank < minRank) {
    throw new FluxionError(
      op,
      `${name} must be a float tensor of rank ≥ ${minRank}, got ${fmtShape(x.shape)} ${x.dtype}`,
    );
  }
}

/**
 * The Hann window `w[n] = ½ − ½ cos(2πn / D)`, `n = 0 … length−1`, with `D = length` (periodic,
 * the default, as for spectral analysis: PyTorch's `hann_window(length)`) or `D = length − 1`
 * (symmetric, for filter design). A length of 1 gives `[1]`.
 *
 * Args:
 *   length: the number of samples (a non-negative integer).
 *   options.periodic: periodic (default true) or symmetric.
 *   options.dtype, options.backend: where to create it (default float32 on the current backend).
 *
 * Shape: `[length]`.
 *
 * @example
 * ```ts
 * await hannWindow(4).data(); // [0, 0.5, 1, 0.5]
 * ```
 */
export function hannWindow(
  length: number,
  options: { periodic?: boolean; dtype?: DType; backend?: BackendName } = {},
): Tensor {
  if (!Number.isInteger(length) || length < 0)
    throw new FluxionError('hannWindow', `length must be a non-negative integer, got ${length}`);
  const { periodic = true, dtype = 'float32', backend } = options;
  return tensor(hannHost(length, periodic), [length], { dtype, backend });
}

function hannHost(length: number, periodic = true): Float64Array {
  const d = periodic ? length : length - 1;
  return Float64Array.from({ length }, (_, n) =>
    length === 1 ? 1 : 0.5 - 0.5 * Math.cos((2 * Math.PI * n) / d),
  );
}

/**
 * The window zero-padded to nFft (centred, left ⌊(nFft − winLength)/2⌋ as PyTorch), as a tensor
 * like `like`; with the host values too when it is the default window (for the NOLA check).
 */
function frameWindow(op: string, g: Geometry, window: Tensor | undefined, like: Tensor) {
  const left = (g.nFft - g.winLength) >> 1;
  const right = g.nFft - g.winLength - left;
  const opts = { dtype: like.dtype, backend: like.backend.name };
  if (window === undefined) {
    const host = new Float64Array(g.nFft);
    host.set(hannHost(g.winLength), left);
    return { w: tensor(host, [g.nFft], opts), host };
  }
  if (window.rank !== 1 || window.shape[0] !== g.winLength || window.dtype !== like.dtype) {
    throw new FluxionError(
      op,
      `window must be [winLength = ${g.winLength}] ${like.dtype}, got ${fmtShape(window.shape)} ${window.dtype}`,
    );
  }
  if (window.backend.name !== like.backend.name) {
    throw new FluxionError(op, `window is on ${window.backend.name}, the signal on ${like.backend.name}`);
  }
  return { w: left || right ? pad(window, [[left, right]]) : window, host: null };
}

const bases = new Map<string, Float64Array>();

/**
 * The DFT as a matrix, in float64 on the host (angles reduced mod nFft first, so exact at any size).
 * Analysis `[2F, N]`: rows `k` hold `cos(2πkn/N)`, rows `F + k` hold `−sin(2πkn/N)`, times
 * `N^(−1/2)` when normalized. Synthesis `[N, 2F]`: the real part of the inverse DFT,
 * `x[n] = Σₖ cₖ (Re Xₖ cos(2πkn/N) − Im Xₖ sin(2πkn/N)) / N` with `cₖ = 2` for the one-sided
 * bins that stand for a conjugate pair and 1 for DC, Nyquist or a full spectrum (times `√N`
 * when normalized).
 */
function dftBasis(g: Geometry, inverse: boolean): Float64Array {
  const { nFft: n, bins: f, normalized, onesided } = g;
  const key = `${n}:${f}:${normalized}:${inverse}`;
  let b = bases.get(key);
  if (b) return b;
  b = new Float64Array(2 * f * n);
  for (let k = 0; k < f; k++) {
    const pair = onesided && k !== 0 && 2 * k !== n ? 2 : 1;
    const scale = inverse ? (pair / n) * (normalized ? Math.sqrt(n) : 1) : normalized ? 1 / Math.sqrt(n) : 1;
    for (let t = 0; t < n; t++) {
      const angle = (2 * Math.PI * ((k * t) % n)) / n;
      const c = scale * Math.cos(angle);
      const s = -scale * Math.sin(angle);
      if (inverse) {
        b[t * 2 * f + k] = c;
        b[t * 2 * f + f + k] = s;
      } else {
        b[k * n + t] = c;
        b[(f + k) * n + t] = s;
      }
    }
  }
  bases.set(key, b);
  return b;
}

/**
 * `[B, L]` extended by `p` samples at each end by `mode`, from slices of the signal joined by one
 * concat: reflect reverses `x[1 … p]` and `x[L−1−p … L−2]` (a take of `p` indices within each
 * slice, so its gradient, a scatter-add, touches only those `p` samples), replicate broadcasts the
 * end samples, circular wraps the other end around.
 */
function padSignal(x: Tensor, p: number, mode: PadMode): Tensor {
  const [b, len] = x.shape;
  if (!['reflect', 'replicate', 'circular', 'constant'].includes(mode))
    throw new FluxionError('stft', `padMode must be reflect, constant, replicate or circular, got ${mode}`);
  const need = mode === 'reflect' ? p + 1 : mode === 'circular' ? p : 1;
  if (len < need) {
    throw new FluxionError(
      'stft',
      `${mode} padding of ${p} needs a signal of length ≥ ${need}, got ${len} (use center: false or padMode 'constant')`,
    );
  }
  if (mode === 'constant' || p === 0)
    return pad(x, [
      [0, 0],
      [p, p],
    ]);
  const part = (lo: number, hi: number) => slice(x, null, [lo, hi]);
  let ends: [Tensor, Tensor];
  if (mode === 'circular') ends = [part(len - p, len), part(0, p)];
  else if (mode === 'replicate') ends = [expand(part(0, 1), [b, p]), expand(part(len - 1, len), [b, p])];
  else {
    const reverse = tensor(
      Int32Array.from({ length: p }, (_, i) => p - 1 - i),
      [p],
      { dtype: 'int32', backend: x.backend.name },
    );
    ends = [take(part(1, p + 1), reverse, 1), take(part(len - 1 - p, len - 1), reverse, 1)];
  }
  return concat([ends[0], x, ends[1]], 1);
}

/**
 * The frames `[B, N, T]` of signals `[B, L]`, `frames[b, n, t] = x[b, t·hop + n]`, as a view.
 * Built, like {@link overlapAdd}, from chunks of hop samples: the signal as `[B, hop, 1, L/hop]`
 * (hop samples as channels) gives windows of `R = ⌈N/hop⌉` chunks, which merge back into frames
 * without a copy. The view is the one `windows` of the samples would give, but its gradient, a
 * fold, sums R taps per sample instead of N.
 */
function frame(x: Tensor, n: number, hop: number): Tensor {
  const [b, len] = x.shape;
  const t = 1 + Math.floor((len - n) / hop);
  const r = Math.ceil(n / hop);
  const need = (t + r - 1) * hop; // the last frame's chunks may run up to hop − 1 samples past the end
  const whole =
    need <= len
      ? slice(x, null, [0, need])
      : pad(x, [
          [0, 0],
          [0, need - len],
        ]);
  const chunks = reshape(permute(reshape(whole, [b, t + r - 1, hop]), [0, 2, 1]), [b, hop, 1, t + r - 1]);
  const framed = permute(windows(chunks, [1, r]), [0, 3, 1, 2, 4, 5]); // [b, r, hop, 1, 1, t]
  return slice(reshape(framed, [b, r * hop, t]), null, [0, n]);
}

/**
 * Overlap-add of frames `[B, N, T]` hop apart into `[B, N + hop·(T−1)]` (the adjoint of framing).
 * Each frame, zero-padded to `R = ⌈N/hop⌉` chunks of hop samples, is folded with the chunk
 * position as the window axis and the hop samples as channels, so the fold sums R taps per output
 * sample (not N, as a fold of the frames along the samples would).
 */
function overlapAdd(frames: Tensor, hop: number): Tensor {
  const [b, n, t] = frames.shape;
  const r = Math.ceil(n / hop);
  const whole =
    r * hop === n
      ? frames
      : pad(frames, [
          [0, 0],
          [0, r * hop - n],
        ]);
  const chunks = reshape(permute(reshape(whole, [b, r, hop, t]), [0, 2, 1, 3]), [b, hop, 1, r, 1, t]);
  const summed = reshape(fold(chunks, [1, t + r - 1], [1, r]), [b, hop, t + r - 1]);
  return slice(reshape(permute(summed, [0, 2, 1]), [b, (t + r - 1) * hop]), null, [0, n + hop * (t - 1)]);
}

/**
 * Short-time Fourier transform (PyTorch's `torch.stft` with `return_complex=True`):
 *
 * `X[..., k, t] = s · Σₙ w[n] · x̃[..., t·hop + n] · e^(−2πi·k·n/nFft)`,
 *
 * with `x̃` the signal padded by `⌊nFft/2⌋` at each end when `center` (so frame `t` is centred on
 * sample `t·hop`), `w` the window zero-padded to nFft, and `s = nFft^(−1/2)` when `normalized`,
 * else 1. Frames: `T = 1 + ⌊(L̃ − nFft) / hop⌋`. Computed as one product of a `[2F, nFft]` matrix
 * of `w·cos` and `−w·sin` with the `[nFft, T]` frames of each signal (the `windows` view), so it
 * runs on the GPU and is differentiable w.r.t. the signal and a window tensor.
 *
 * Args:
 *   x: real signals `[..., L]`, float32 or float64.
 *   options: {@link StftOptions} — `nFft` (required), `hopLength = ⌊nFft/4⌋`, `winLength = nFft`,
 *     `window` (periodic Hann), `center = true`, `padMode = 'reflect'`, `normalized = false`,
 *     `onesided = true`.
 *
 * Shape: `[..., L]` → real and imaginary parts `[..., F, T]`, `F = ⌊nFft/2⌋ + 1` one-sided, else nFft.
 *
 * @example
 * ```ts
 * const { real, imag } = stft(wave, { nFft: 256, hopLength: 64 }); // wave [16, 8000] → [16, 129, 126]
 * ```
 */
export function stft(x: Tensor, options: StftOptions): Spectrum {
  checkFloat('stft', 'x', x, 1);
  const g = geometry('stft', options);
  const { padMode = 'reflect' } = options;
  const lead = x.shape.slice(0, -1);
  const len = x.shape[x.rank - 1];
  const padded = len + (g.center ? 2 * (g.nFft >> 1) : 0);
  if (padded < g.nFft) {
    throw new FluxionError(
      'stft',
      `signal ${fmtShape(x.shape)} (length ${padded} after centring) is shorter than nFft = ${g.nFft}`,
    );
  }
  return scope(() => {
    const flat = reshape(x, [sizeOf(lead), len]);
    const signal = g.center ? padSignal(flat, g.nFft >> 1, padMode) : flat;
    const frames = frame(signal, g.nFft, g.hop);
    const { w } = frameWindow('stft', g, options.window, x);
    const basis = mul(
      tensor(dftBasis(g, false), [2 * g.bins, g.nFft], { dtype: x.dtype, backend: x.backend.name }),
      w,
    );
    const both = reshape(matmul(basis, frames), [...lead, 2 * g.bins, frames.shape[2]]);
    const [real, imag] = split(both, 2, -2);
    return { real, imag };
  });
}

/**
 * Inverse short-time Fourier transform (PyTorch's `torch.istft`): each frame's inverse DFT, times
 * the window, overlap-added and divided by the window envelope:
 *
 * `y[j] = Σₜ w[j − t·hop] · fₜ[j − t·hop] / Σₜ w²[j − t·hop]`, `fₜ = IDFT(X[..., :, t])` (real part;
 * one-sided spectra count their conjugate bins twice),
 *
 * then trimmed by `⌊nFft/2⌋` at the start (and, without `length`, at the end) when `center`, and
 * cut or zero-padded to `length`. So `istft(stft(x)) = x` whenever the envelope is non-zero
 * (NOLA). With the default window a zero envelope inside the output raises a FluxionError; with
 * a window tensor it is not checked (those samples come out ±∞ or NaN). The imaginary parts of the
 * DC and Nyquist bins are ignored, as by `irfft`.
 *
 * Args:
 *   spectrum: {@link Spectrum} `{ real, imag }`, each `[..., F, T]`.
 *   options: {@link IstftOptions} — the {@link stft} geometry (same defaults) and `length`.
 *
 * Shape: `[..., F, T]` → `[..., length]` (default `nFft + hop·(T−1)`, minus `2·⌊nFft/2⌋` when centred).
 *
 * @example
 * ```ts
 * const y = istft(stft(x, { nFft: 256, hopLength: 64 }), { nFft: 256, hopLength: 64, length: x.shape[1] });
 * ```
 */
export function istft(spectrum: Spectrum, options: IstftOptions): Tensor {
  checkSpectrum('istft', spectrum, 2);
  const { real, imag } = spectrum;
  const g = geometry('istft', options);
  const describe = () =>
    `real ${fmtShape(real.shape)} ${real.dtype}, imag ${fmtShape(imag.shape)} ${imag.dtype}`;
  const [bins, frames] = real.shape.slice(-2);
  if (bins !== g.bins || frames < 1) {
    throw new FluxionError(
      'istft',
      `expected [..., ${g.bins}, T ≥ 1] for nFft = ${g.nFft}${g.onesided ? ' (one-sided)' : ''}, got ${describe()}`,
    );
  }
  const { length } = options;
  if (length !== undefined && (!Number.isInteger(length) || length < 0))
    throw new FluxionError('istft', `length must be a non-negative integer, got ${length}`);
  const lead = real.shape.slice(0, -2);
  const full = g.nFft + g.hop * (frames - 1);
  const start = g.center ? g.nFft >> 1 : 0;
  const end = length !== undefined ? start + length : g.center ? full - (g.nFft >> 1) : full;
  const stop = Math.min(end, full);
  if (end < start) throw new FluxionError('istft', `${frames} frames of nFft ${g.nFft} give no samples`);
  return scope(() => {
    const { w, host } = frameWindow('istft', g, options.window, real);
    if (host) checkNola(g, host, frames, start, stop);
    const b = sizeOf(lead);
    const opts = { dtype: real.dtype, backend: real.backend.name };
    const both = concat([reshape(real, [b, bins, frames]), reshape(imag, [b, bins, frames])], 1);
    // The window scales the rows of the [nFft, 2F] synthesis matrix, not the [B, nFft, T] frames.
    const column = reshape(w, [g.nFft, 1]);
    const basis = mul(tensor(dftBasis(g, true), [g.nFft, 2 * bins], opts), column);
    const y = overlapAdd(matmul(basis, both), g.hop);
    const envelope = overlapAdd(expand(reshape(square(column), [1, g.nFft, 1]), [1, g.nFft, frames]), g.hop);
    const out = div(slice(y, null, [start, stop]), slice(envelope, null, [start, stop]));
    const padded =
      end > stop
        ? pad(out, [
            [0, 0],
            [0, end - stop],
          ])
        : out;
    return reshape(padded, [...lead, end - start]);
  });
}

function checkNola(g: Geometry, w: Float64Array, frames: number, start: number, stop: number): void {
  for (let j = start; j < stop; j++) {
    let env = 0;
    for (let t = Math.max(0, Math.ceil((j - g.nFft + 1) / g.hop)); t < frames && t * g.hop <= j; t++)
      env += w[j - t * g.hop] ** 2;
    if (env < NOLA_EPS) {
      throw new FluxionError(
        'istft',
        `the window envelope Σ w² is ${env} at sample ${j} (nFft ${g.nFft}, hop ${g.hop}, winLength ${g.winLength}): the frames do not cover it (NOLA fails); use a smaller hop`,
      );
    }
  }
}

/** `f` applied to the real and the imaginary part. */
const parts = (f: (part: Tensor, key: keyof Spectrum) => Tensor, s: Spectrum): Spectrum => ({
  real: f(s.real, 'real'),
  imag: f(s.imag, 'imag'),
});

/** A {@link Spectrum} of two float tensors of one shape and dtype, of rank ≥ `minRank`. */
function checkSpectrum(op: string, s: Spectrum, minRank = 0): void {
  if (!s?.real || !s.imag) throw new FluxionError(op, 'expected a spectrum { real, imag }');
  const { real, imag } = s;
  if (real.dtype !== imag.dtype || real.shape.join() !== imag.shape.join() || !isFloat(real.dtype)) {
    throw new FluxionError(
      op,
      `real and imag need one shape and float dtype, got ${fmtShape(real.shape)} ${real.dtype}, ${fmtShape(imag.shape)} ${imag.dtype}`,
    );
  }
  checkFloat(op, 'real', real, minRank);
}

/**
 * The power spectrum `|X|² = Re² + Im²` (smooth everywhere).
 *
 * Shape: `[..., F, T]` → `[..., F, T]`.
 *
 * @example
 * ```ts
 * const p = powerSpectrum(stft(wave, { nFft: 256 }));
 * ```
 */
export function powerSpectrum(spectrum: Spectrum): Tensor {
  checkSpectrum('powerSpectrum', spectrum);
  return scope(() => add(square(spectrum.real), square(spectrum.imag)));
}

/**
 * The magnitude `|X| ≈ √(Re² + Im² + eps)`. The eps inside the root keeps the gradient finite
 * where the spectrum is 0 (`∂|X|/∂Re = Re / √(Re² + Im² + eps)`, which is 0 there instead of 0/0);
 * it adds at most `√eps` (1e-6 for the default 1e-12) to the value.
 *
 * Args:
 *   spectrum: {@link Spectrum}.
 *   eps: added under the root (default 1e-12; 0 gives the exact magnitude and a NaN gradient at 0).
 *
 * Shape: `[..., F, T]` → `[..., F, T]`.
 *
 * @example
 * ```ts
 * const mag = magnitude(stft(wave, { nFft: 256, hopLength: 64 })); // [..., 129, T]
 * ```
 */
export function magnitude(spectrum: Spectrum, eps = 1e-12): Tensor {
  checkSpectrum('magnitude', spectrum);
  if (!(eps >= 0)) throw new FluxionError('magnitude', `eps must be ≥ 0, got ${eps}`);
  return scope(() => sqrt(add(powerSpectrum(spectrum), eps)));
}

/**
 * Hertz to mels. Slaney's scale (default, librosa's `htk=False`): linear below 1 kHz,
 * `m = 3f/200`, logarithmic above, `m = 15 + 27 · ln(f/1000) / ln 6.4`. HTK's: `m = 2595 · log₁₀(1 + f/700)`.
 *
 * @example
 * ```ts
 * hzToMel(1000); // 15
 * hzToMel(6400); // 42
 * hzToMel(700, true); // 2595 · log₁₀ 2 ≈ 781.17
 * ```
 */
export function hzToMel(hz: number, htk = false): number {
  if (htk) return 2595 * Math.log10(1 + hz / 700);
  return hz < 1000 ? (3 * hz) / 200 : 15 + (27 * Math.log(hz / 1000)) / Math.log(6.4);
}

/**
 * Mels to hertz, the inverse of {@link hzToMel}.
 *
 * @example
 * ```ts
 * melToHz(15); // 1000
 * ```
 */
export function melToHz(mel: number, htk = false): number {
  if (htk) return 700 * (10 ** (mel / 2595) - 1);
  return mel < 15 ? (200 * mel) / 3 : 1000 * Math.exp((Math.log(6.4) * (mel - 15)) / 27);
}

/**
 * Options of {@link melFilterbank}.
 *
 * @example
 * ```ts
 * melFilterbank(40, 512, 16000, { fMin: 20, fMax: 7600, htk: true, norm: null });
 * ```
 */
export interface MelOptions {
  /** Lowest frequency in Hz (default 0). */
  fMin?: number;
  /** Highest frequency in Hz (default sampleRate / 2). */
  fMax?: number;
  /** HTK's mel scale instead of Slaney's (default false, as librosa). */
  htk?: boolean;
  /** `'slaney'` (default): each triangle divided by its width in Hz / 2, so its area is 1; `null`: peaks of 1. */
  norm?: 'slaney' | null;
  dtype?: DType;
  backend?: BackendName;
}

/**
 * The mel filterbank of librosa's `filters.mel` (its defaults: Slaney's mel scale, Slaney area
 * normalisation). `nMels + 2` points equally spaced in mels from fMin to fMax, back in Hz, give
 * `f₀ < f₁ < … < f_{M+1}`; filter `m` is the triangle rising from `f_m` to 1 at its centre
 * `f_{m+1}` and falling to 0 at `f_{m+2}`, sampled at the FFT bin frequencies `k · sampleRate / nFft`:
 *
 * `H[m, k] = max(0, min((f − f_m) / (f_{m+1} − f_m), (f_{m+2} − f) / (f_{m+2} − f_{m+1})))`,
 *
 * times `2 / (f_{m+2} − f_m)` with `norm: 'slaney'`, so that each triangle's area in Hz is 1 (its
 * row sums to `nFft / sampleRate`, one over the bin spacing, when its corners fall on bins).
 *
 * Args:
 *   nMels: the number of filters.
 *   nFft: the DFT size (rows have `⌊nFft/2⌋ + 1` bins).
 *   sampleRate: in Hz.
 *   options: {@link MelOptions}.
 *
 * Shape: `[nMels, ⌊nFft/2⌋ + 1]`, so `matmul(fb, power)` maps `[..., F, T]` to `[..., nMels, T]`.
 *
 * @example
 * ```ts
 * const fb = melFilterbank(64, 256, 8000); // [64, 129], rows of area 1
 * ```
 */
export function melFilterbank(
  nMels: number,
  nFft: number,
  sampleRate: number,
  options: MelOptions = {},
): Tensor {
  const {
    fMin = 0,
    fMax = sampleRate / 2,
    htk = false,
    norm = 'slaney',
    dtype = 'float32',
    backend,
  } = options;
  if (!positiveInt(nMels) || !positiveInt(nFft) || !(sampleRate > 0)) {
    throw new FluxionError(
      'melFilterbank',
      `needs positive integers nMels and nFft and a positive sampleRate, got ${nMels}, ${nFft}, ${sampleRate}`,
    );
  }
  if (!(fMin >= 0 && fMin < fMax && fMax <= sampleRate / 2)) {
    throw new FluxionError(
      'melFilterbank',
      `needs 0 ≤ fMin < fMax ≤ sampleRate/2 = ${sampleRate / 2}, got fMin ${fMin}, fMax ${fMax}`,
    );
  }
  if (norm !== 'slaney' && norm !== null)
    throw new FluxionError('melFilterbank', `norm must be 'slaney' or null, got ${String(norm)}`);
  const bins = (nFft >> 1) + 1;
  const lo = hzToMel(fMin, htk);
  const hi = hzToMel(fMax, htk);
  const f = Array.from({ length: nMels + 2 }, (_, i) => melToHz(lo + ((hi - lo) * i) / (nMels + 1), htk));
  const out = new Float64Array(nMels * bins);
  for (let m = 0; m < nMels; m++) {
    const scale = norm === 'slaney' ? 2 / (f[m + 2] - f[m]) : 1;
    for (let k = 0; k < bins; k++) {
      const hz = (k * sampleRate) / nFft;
      const rise = (hz - f[m]) / (f[m + 1] - f[m]);
      const fall = (f[m + 2] - hz) / (f[m + 2] - f[m + 1]);
      out[m * bins + k] = Math.max(0, Math.min(rise, fall)) * scale;
    }
  }
  return tensor(out, [nMels, bins], { dtype, backend });
}

/**
 * Options of {@link melSpectrogram}: the STFT's, the filterbank's, and the power.
 *
 * @example
 * ```ts
 * const options: MelSpectrogramOptions = { sampleRate: 8000, nFft: 256, hopLength: 64, nMels: 64, power: 1 };
 * ```
 */
export interface MelSpectrogramOptions extends StftOptions, Omit<MelOptions, 'dtype' | 'backend'> {
  /** Sample rate of the signal in Hz. */
  sampleRate: number;
  /** Number of mel bands (default 128, as librosa and torchaudio). */
  nMels?: number;
  /** 2 (default): the power spectrum `|X|²`; 1: the {@link magnitude}; any p > 0: `|X|^p`. */
  power?: number;
}

/**
 * The mel spectrogram `M = H · |STFT(x)|^p`: the {@link stft} of the signal, its power (`p = 2`,
 * default) or magnitude, and the {@link melFilterbank} `H` applied to each frame (librosa's
 * `feature.melspectrogram` with the same options).
 *
 * Args:
 *   x: real signals `[..., L]`.
 *   options: {@link MelSpectrogramOptions} (`sampleRate` and `nFft` required).
 *
 * Shape: `[..., L]` → `[..., nMels, T]`.
 *
 * @example
 * ```ts
 * const mel = melSpectrogram(wave, { sampleRate: 8000, nFft: 256, hopLength: 64, nMels: 64 });
 * const features = logMel(mel); // [..., 64, T]
 * ```
 */
export function melSpectrogram(x: Tensor, options: MelSpectrogramOptions): Tensor {
  const {
    sampleRate,
    nMels = 128,
    power = 2,
    fMin,
    fMax,
    htk,
    norm,
  } = options ?? ({} as MelSpectrogramOptions);
  if (!(power > 0)) throw new FluxionError('melSpectrogram', `power must be > 0, got ${power}`);
  checkFloat('melSpectrogram', 'x', x, 1);
  return scope(() => {
    const fb = melFilterbank(nMels, options.nFft, sampleRate, {
      ...{ fMin, fMax, htk, norm },
      ...{ dtype: x.dtype, backend: x.backend.name },
    });
    const spec = stft(x, options);
    const s = power === 2 ? powerSpectrum(spec) : power === 1 ? magnitude(spec) : pow(magnitude(spec), power);
    return matmul(fb, s);
  });
}

/**
 * Log compression of a (mel) spectrogram, `log(max(x, eps))` (natural log). The floor keeps
 * silence finite (`log eps`, ≈ −23 for the default 1e-10, librosa's `amin`); the gradient is that
 * of log above the floor and 0 below it. For decibels multiply by `10 / ln 10`.
 *
 * Args:
 *   x: non-negative values, e.g. {@link melSpectrogram}'s.
 *   eps: the floor (default 1e-10).
 *
 * Shape: any, unchanged.
 *
 * @example
 * ```ts
 * const lm = logMel(melSpectrogram(wave, { sampleRate: 8000, nFft: 256, nMels: 64 }));
 * ```
 */
export function logMel(x: Tensor, eps = 1e-10): Tensor {
  checkFloat('logMel', 'x', x, 0);
  if (!(eps > 0)) throw new FluxionError('logMel', `eps must be > 0, got ${eps}`);
  return scope(() => log(clamp(x, eps)));
}

/**
 * Options of {@link griffinLim}; the frame geometry must be the one the magnitude was made with.
 *
 * @example
 * ```ts
 * griffinLim(mag, { hopLength: 64, nIter: 64, momentum: 0.99, seed: 1, length: 8000 });
 * ```
 */
export interface GriffinLimOptions extends Omit<FrameOptions, 'nFft' | 'center' | 'onesided'> {
  /** DFT size (default `2·(F − 1)`, from the one-sided magnitude's F). */
  nFft?: number;
  /** Iterations (default 32, as torchaudio). */
  nIter?: number;
  /** Fast Griffin-Lim's α (Perraudin et al. 2013) in [0, 1) (default 0.99, as torchaudio); 0 is plain Griffin-Lim. */
  momentum?: number;
  /** Length of the output signal (default: all the frames give). */
  length?: number;
  /** The input is `|X|^power` (default 1, a magnitude; 2 for a power spectrogram). */
  power?: number;
  /** Seed of the random initial phases (default 0). */
  seed?: number;
  /** Start from random phases (default true) or from phase 0. */
  randInit?: boolean;
}

/**
 * Griffin-Lim phase recovery with fast Griffin-Lim's momentum (Perraudin, Balazs, Søndergaard
 * 2013; torchaudio's `griffinlim`): a signal whose STFT magnitude approaches `S`. From phases
 * `P₀` (uniform random angles), each iteration
 *
 * `Cₙ = STFT(iSTFT(S · Pₙ))`, `Tₙ = Cₙ + α (Cₙ − Cₙ₋₁)`, `Pₙ₊₁ = Tₙ / (|Tₙ| + 1e-16)`,
 *
 * and the result is `iSTFT(S · P_N)` (torchaudio writes `Cₙ − α/(1+α) Cₙ₋₁`, the same phase).
 * Frames are centred with reflect padding, as {@link stft}'s default. The first phases differ from
 * torchaudio's (which draws complex numbers uniform in the unit square), so samples do not match it.
 * It records an autograd graph only if `S` requires a gradient: wrap it in `noGrad` then.
 *
 * Args:
 *   magnitude: `|X|^power`, one-sided, `[..., F, T]`.
 *   options: {@link GriffinLimOptions}.
 *
 * Shape: `[..., F, T]` → `[..., length]`.
 *
 * @example
 * ```ts
 * const wave = griffinLim(magnitude(stft(x, { nFft: 256, hopLength: 64 })), { hopLength: 64, nIter: 64 });
 * ```
 */
export function griffinLim(magnitude: Tensor, options: GriffinLimOptions = {}): Tensor {
  checkFloat('griffinLim', 'magnitude', magnitude, 2);
  const bins = magnitude.shape[magnitude.rank - 2];
  const { nIter = 32, momentum = 0.99, power = 1, seed = 0, randInit = true } = options;
  const nFft = options.nFft ?? 2 * (bins - 1);
  if (!Number.isInteger(nIter) || nIter < 0)
    throw new FluxionError('griffinLim', `nIter must be a non-negative integer, got ${nIter}`);
  if (!(momentum >= 0 && momentum < 1))
    throw new FluxionError('griffinLim', `momentum must lie in [0, 1), got ${momentum}`);
  if (!(power > 0)) throw new FluxionError('griffinLim', `power must be > 0, got ${power}`);
  const frame: IstftOptions = { ...options, nFft, center: true, onesided: true };
  geometry('griffinLim', frame);
  if ((nFft >> 1) + 1 !== bins) {
    throw new FluxionError(
      'griffinLim',
      `a one-sided magnitude of nFft ${nFft} has ${(nFft >> 1) + 1} bins, got ${fmtShape(magnitude.shape)}`,
    );
  }
  const opts = { dtype: magnitude.dtype, backend: magnitude.backend.name };
  return scope(() => {
    const s = power === 1 ? magnitude : pow(magnitude, 1 / power);
    const synth = (phase: Spectrum) =>
      istft(
        parts((c) => mul(s, c), phase),
        frame,
      );
    const angle = mul(randInit ? rand(s.shape, { ...opts, seed }) : tensor(0, [], opts), 2 * Math.PI);
    let phase: Spectrum = { real: cos(angle), imag: sin(angle) };
    let prev: Spectrum | null = null;
    for (let i = 0; i < nIter; i++) {
      const step = scope(() => {
        const rebuilt = stft(synth(phase), frame);
        const last = prev;
        const t =
          last && momentum > 0 ? parts((c, k) => add(c, mul(sub(c, last[k]), momentum)), rebuilt) : rebuilt;
        const norm = add(sqrt(powerSpectrum(t)), 1e-16);
        return { phase: parts((c) => div(c, norm), t), rebuilt };
      });
      for (const old of [phase, prev]) {
        old?.real.dispose();
        old?.imag.dispose();
      }
      phase = step.phase;
      prev = step.rebuilt;
    }
    return synth(phase);
  });
}
