/**
 * The spectrogram VAE (`specvae`) on small configs (CPU backend unless named): the config checks;
 * the representation (the fitted statistics are the per-bin mean and deviation, normalising then
 * de-normalising gives the log-magnitude back inside the 3σ clip, Griffin-Lim inverts a real
 * clip's magnitude to a stated spectral convergence); the shapes of the default networks and of a
 * tiny model's samples; the loss falling on real FSDD clips; sampling determinism and its own
 * generator leaving the training noise alone; a state-dict round trip through safetensors (the
 * codec's statistics included) reproducing samples and the next step; and a WebGPU training step
 * equal to the CPU one.
 */
import {
  type BackendName,
  Generator,
  magnitude,
  setBackend,
  stft,
  type Tensor,
  tensor,
} from '@fluxion/tensor';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { expectAllClose } from '../../tensor/test/helpers.js';
import { skipNote, webgpuEnv } from '../../tensor/test/webgpu-env.js';
import { loadFsdd } from '../src/data/audio-files.js';
import {
  type AudioSplit,
  audioBatches,
  pictureGenerator,
  SpectrogramCodec,
  SpecVae,
  type SpecVaeConfig,
  specVaeConfig,
} from '../src/index.js';
import {
  batchOf,
  dispose,
  disposeBatch,
  loadState,
  middleOf,
  read,
  saveState,
} from './audio-model-helpers.js';

const gpu = await webgpuEnv();

/** A tiny conditional model: 1024 samples, nFft 64, hop 16 → 32 bins × 64 frames, two blocks, d = 4. */
const TINY: Partial<SpecVaeConfig> = {
  length: 1024,
  nFft: 64,
  hopLength: 16,
  blocks: 2,
  modelSize: 4,
  latent: 8,
  seed: 3,
  griffinLimIters: 4,
};

/** The first `count` clips of a split. */
function head(split: AudioSplit, count: number): AudioSplit {
  const { length } = split;
  return {
    ...split,
    audio: split.audio.subarray(0, count * length),
    labels: split.labels.subarray(0, count),
    count,
  };
}

let fsdd: AudioSplit;
/** 1024-sample middles of the first 400 training clips: what the tiny models train on. */
let small: AudioSplit;

beforeAll(() => {
  setBackend('cpu');
  fsdd = loadFsdd().train;
  small = middleOf(head(fsdd, 400), 1024);
});
afterAll(() => setBackend('cpu'));

/** A tiny model (TINY with `overrides`) whose codec is fitted to `small`. */
async function tinyModel(overrides: Partial<SpecVaeConfig> = {}): Promise<SpecVae> {
  const model = new SpecVae(specVaeConfig({ ...TINY, ...overrides }));
  await model.codec.fit(small);
  return model;
}

describe('specVaeConfig', () => {
  test('defaults: FSDD clips, 128 × 128 spectrograms, four blocks of d = 16, latent 32', () => {
    const c = specVaeConfig();
    expect(c).toMatchObject({
      kind: 'specvae',
      length: 8192,
      sampleRate: 8000,
      classes: 10,
      nFft: 256,
      hopLength: 64,
      floor: 1e-3,
      clip: 3,
      conditional: true,
      modelSize: 16,
      blocks: 4,
      latent: 32,
      lr: 1e-3,
      beta: 1,
      griffinLimIters: 32,
    });
    expect(specVaeConfig({ kind: 'x' as never }).kind).toBe('specvae');
  });

  test('invalid fields are refused with the field named', () => {
    expect(() => specVaeConfig({ hopLength: 48 })).toThrow(
      /length\/hopLength = 8192\/48 \(the frames\) must be an integer multiple of 2\^blocks = 16/,
    );
    expect(() => specVaeConfig({ nFft: 200 })).toThrow(
      /nFft\/2 = 100 \(the bins\) must be a multiple of 2\^blocks = 16/,
    );
    expect(() => specVaeConfig({ modelSize: 0 })).toThrow(/modelSize must be an integer ≥ 1, got 0/);
    expect(() => specVaeConfig({ lr: 0 })).toThrow(/lr must be a positive number, got 0/);
    expect(() => specVaeConfig({ floor: -1 })).toThrow(/floor must be a positive number, got -1/);
    expect(() => specVaeConfig({ beta: Number.NaN })).toThrow(/beta must be a non-negative number/);
    expect(() => new SpecVae({ ...specVaeConfig(), blocks: 1.5 })).toThrow(/blocks must be an integer ≥ 1/);
  });
});

describe('SpectrogramCodec', () => {
  test('fit sets the per-bin mean and deviation of log(|X| + ε); normalising then de-normalising is the identity inside ±3σ', async () => {
    const codec = new SpectrogramCodec({ length: 1024, nFft: 64, hopLength: 16, floor: 1e-3, clip: 3 });
    const split = head(small, 120); // two passes of fit (100 + 20 clips)
    try {
      expect(await codec.isFitted()).toBe(false);
      await codec.fit(split);
      expect(await codec.isFitted()).toBe(true);
      const clips = tensor(split.audio, [120, 1024]);
      const logMag = codec.logMagnitude(clips);
      expect(logMag.shape).toEqual([120, 32, 64]);
      const l = await read(logMag);
      const mean = await read(codec.mean);
      const std = await read(codec.std);
      // The statistics, recomputed in float64 here.
      for (const f of [0, 5, 31]) {
        let s1 = 0;
        let s2 = 0;
        for (let n = 0; n < 120; n++)
          for (let t = 0; t < 64; t++) {
            const v = l[(n * 32 + f) * 64 + t];
            s1 += v;
            s2 += v * v;
          }
        const mu = s1 / (120 * 64);
        expect(mean[f]).toBeCloseTo(mu, 4);
        expect(std[f]).toBeCloseTo(Math.sqrt(s2 / (120 * 64) - mu * mu), 4);
      }
      const spec = codec.forward(clips);
      const s = await read(spec);
      expect(s.every((v) => v >= -1 && v <= 1)).toBe(true);
      const back = await read(codec.denormalize(spec));
      let inside = 0;
      let worst = 0; // the largest error relative to 1 + |value|
      for (let i = 0; i < l.length; i++) {
        const f = Math.floor(i / 64) % 32;
        const bound = mean[f] + 3 * std[f] * Math.sign(l[i] - mean[f]);
        const want = Math.abs(l[i] - mean[f]) <= 3 * std[f] ? l[i] : bound;
        if (want === l[i]) inside++;
        worst = Math.max(worst, Math.abs(back[i] - want) / (1 + Math.abs(want)));
      }
      expect(worst).toBeLessThan(1e-5);
      expect(inside / l.length).toBeGreaterThan(0.95);
      const mag = codec.toMagnitude(spec);
      expect(mag.shape).toEqual([120, 33, 65]); // the Nyquist bin and the last frame restored
      for (const t of [clips, logMag, spec, mag]) t.dispose();
    } finally {
      codec.dispose();
    }
  });

  test('Griffin-Lim from a real clip’s normalised spectrogram: spectral convergence below 0.1 at the default geometry', async () => {
    const model = new SpecVae(specVaeConfig());
    const clips = head(fsdd, 50);
    try {
      await model.codec.fit(clips);
      const x = tensor(clips.audio.subarray(7 * 8192, 8 * 8192), [1, 8192]); // clip 7 of the training split
      const spec = model.codec.forward(x);
      expect(spec.shape).toEqual([1, 128, 128]);
      const target = model.codec.toMagnitude(spec); // [1, 129, 129]
      const y = model.codec.toAudio(spec, { iterations: 32, seed: 1 });
      expect(y.shape).toEqual([1, 8192]);
      const rebuilt = magnitude(stft(y, { nFft: 256, hopLength: 64 }));
      const a = await read(target);
      const b = await read(rebuilt);
      let num = 0;
      let den = 0;
      for (let i = 0; i < a.length; i++) {
        num += (a[i] - b[i]) ** 2;
        den += a[i] ** 2;
      }
      const sc = Math.sqrt(num / den);
      console.log(`spectral convergence after 32 Griffin-Lim iterations: ${sc.toFixed(4)}`);
      expect(sc).toBeLessThan(0.1); // measured 0.052
      for (const t of [x, spec, target, y, rebuilt]) t.dispose();
    } finally {
      dispose(model);
    }
  }, 60_000);
});

describe('SpecVae networks', () => {
  test('the default encoder goes [128, 128] → 16…128 channels → 8 × 8; the decoder mirrors it', () => {
    const vae = new SpecVae(specVaeConfig());
    try {
      const shapes = (m: { namedParameters(): [string, Tensor][] }) =>
        m.namedParameters().map(([name, p]) => `${name} ${p.shape.join('×')}`);
      expect(shapes(vae.encoder)).toEqual([
        '1.weight 16×1×4×4', // 128 × 128 → 64 × 64
        '1.bias 16',
        '3.weight 32×16×4×4', // → 32 × 32
        '3.bias 32',
        '5.weight 64×32×4×4', // → 16 × 16
        '5.bias 64',
        '7.weight 128×64×4×4', // → 8 × 8
        '7.bias 128',
      ]);
      expect(shapes(vae.muHead)).toEqual(['weight 32×8202', 'bias 32']); // 128·8·8 features + one-hot
      expect(shapes(vae.decoder)).toEqual([
        '0.weight 8192×42', // Dense (32 + 10 one-hot → 128 × 8 × 8)
        '0.bias 8192',
        '3.weight 128×64×4×4', // ConvTranspose2d [in, out, kh, kw]: → 16 × 16
        '3.bias 64',
        '5.weight 64×32×4×4', // → 32 × 32
        '5.bias 32',
        '7.weight 32×16×4×4', // → 64 × 64
        '7.bias 16',
        '9.weight 16×1×4×4', // → 128 × 128
        '9.bias 1',
      ]);
      expect(Object.keys(vae.codec.stateDict())).toEqual(['mean', 'std', 'fitted']);
      const spec = vae.sampleSpectrograms(2, { labels: [3, 9], generator: new Generator(1) });
      expect(spec.shape).toEqual([2, 128, 128]);
      spec.dispose();
    } finally {
      dispose(vae);
    }
  });

  test('a tiny model: spectrograms [n, 32, 64] in [−1, 1], clips [n, 1024] in [−1, 1]; unconditional too', async () => {
    for (const conditional of [true, false]) {
      const vae = await tinyModel({ conditional });
      try {
        const spec = vae.sampleSpectrograms(3, { generator: new Generator(2) });
        expect(spec.shape).toEqual([3, 32, 64]);
        const x = vae.sample(3, { generator: new Generator(2) });
        expect(x.shape).toEqual([3, 1024]);
        const v = await read(x);
        expect(v.every((s) => s >= -1 && s <= 1)).toBe(true);
        expect(new Set(v).size).toBeGreaterThan(100);
        expect((await read(spec)).every((s) => s >= -1 && s <= 1)).toBe(true);
        expect(vae.conditional).toBe(conditional);
        spec.dispose();
        x.dispose();
      } finally {
        dispose(vae);
      }
    }
  });
});

describe('SpecVae training', () => {
  test('a step before the statistics are fitted is refused; bad batches and sampling arguments too', async () => {
    const vae = new SpecVae(specVaeConfig(TINY));
    try {
      const batch = batchOf(small, 4, 0);
      await expect(vae.trainStep(batch)).rejects.toThrow(
        /the spectrogram statistics are not set: call `await model.codec.fit\(trainSplit\)` first/,
      );
      disposeBatch(batch);
      const wrong = { audio: tensor(new Float32Array(2 * 512), [2, 512]), labels: tensor(new Int32Array(2)) };
      await expect(vae.trainStep(wrong)).rejects.toThrow(/audio must be \[n, 1024\].*got \[2,512\]/);
      disposeBatch(wrong);
      expect(() => vae.sample(2, { labels: [1] })).toThrow(/1 labels for 2 clips/);
      expect(() => vae.sample(1, { labels: [10] })).toThrow(/label 10 is not a class in \[0, 10\)/);
      expect(() => vae.sample(0)).toThrow(/n must be an integer ≥ 1, got 0/);
      expect(() => vae.sample(1, { griffinLimIters: -1 })).toThrow(/griffinLimIters must be an integer ≥ 0/);
      await expect(vae.codec.fit(fsdd)).rejects.toThrow(/needs clips of 1024 samples, got 2700 of 8192/);
    } finally {
      dispose(vae);
    }
  });

  test('the loss falls on real FSDD clips: mean of the last 5 of 40 steps ≥ 300 nats below the first 5', async () => {
    const vae = await tinyModel();
    const losses: number[] = [];
    try {
      let i = 0;
      for (let epoch = 0; i < 40; epoch++)
        for (const batch of audioBatches(small, 16, { seed: 0, epoch })) {
          const l = await vae.trainStep(batch);
          disposeBatch(batch);
          expect(Object.keys(l)).toEqual(['loss', 'recon', 'kl', 'mse']);
          expect(l.kl).toBeGreaterThanOrEqual(0);
          losses.push(l.loss);
          if (++i === 40) break;
        }
    } finally {
      dispose(vae);
    }
    const avg = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;
    const first = avg(losses.slice(0, 5));
    const last = avg(losses.slice(-5));
    console.log(`specvae tiny: loss ${first.toFixed(0)} → ${last.toFixed(0)} nats per clip`);
    // Measured: about 1125 → 701 nats per clip (mse of the normalised values 0.18 → 0.12).
    expect(last).toBeLessThan(first - 300);
  }, 120_000);
});

describe('SpecVae.sample', () => {
  test('a seed gives the same clips; a generator of its own leaves the training noise alone', async () => {
    const vae = await tinyModel();
    try {
      const before = vae.noise.offset;
      const a = vae.sample(4, { labels: [0, 1, 2, 3], generator: pictureGenerator(3) });
      const b = vae.sample(4, { labels: [0, 1, 2, 3], generator: pictureGenerator(3) });
      expect(await read(a)).toEqual(await read(b));
      expect(vae.noise.offset).toBe(before);
      const c = vae.sample(4, { labels: [4, 5, 6, 7], generator: pictureGenerator(3) });
      expect(await read(c)).not.toEqual(await read(a));
      const d = vae.sample(4);
      expect(vae.noise.offset).toBeGreaterThan(before);
      for (const t of [a, b, c, d]) t.dispose();
    } finally {
      dispose(vae);
    }
  });
});

/** The full training state of `model` as safetensors bytes (what a checkpoint would write). */
const stateOf = (model: SpecVae): Promise<Uint8Array> =>
  saveState(model, { noise: String(model.noise.offset) });

/** A new model of `config` with the state `stateOf` wrote. */
function restore(config: SpecVaeConfig, bytes: Uint8Array): SpecVae {
  const model = new SpecVae(config);
  const metadata = loadState(model, bytes);
  model.noise.offset = Number(metadata.noise);
  return model;
}

describe('SpecVae state', () => {
  test('a safetensors round trip (statistics included) reproduces samples and the next step exactly', async () => {
    const config = specVaeConfig(TINY);
    const vae = await tinyModel();
    let copy: SpecVae | null = null;
    try {
      for (let i = 0; i < 3; i++) {
        const b = batchOf(small, 8, i);
        await vae.trainStep(b);
        disposeBatch(b);
      }
      copy = restore(config, await stateOf(vae));
      expect(await copy.codec.isFitted()).toBe(true);
      expect(await read(copy.codec.mean)).toEqual(await read(vae.codec.mean));
      expect(await read(copy.codec.std)).toEqual(await read(vae.codec.std));
      const labels = [0, 1, 2, 3, 4, 5, 6, 7];
      const a = vae.sample(8, { labels, generator: pictureGenerator(0) });
      const b = copy.sample(8, { labels, generator: pictureGenerator(0) });
      expect(await read(b)).toEqual(await read(a));
      a.dispose();
      b.dispose();
      const batch = batchOf(small, 8, 3);
      const next = await vae.trainStep(batch);
      const resumed = await copy.trainStep(batch);
      disposeBatch(batch);
      expect(resumed).toEqual(next);
      expect(copy.noise.offset).toBe(vae.noise.offset);
    } finally {
      dispose(vae);
      if (copy) dispose(copy);
    }
  });
});

describe.skipIf(!gpu.backend)(`SpecVae: a WebGPU training step equals a CPU one${skipNote(gpu)}`, () => {
  test('statistics, losses, parameters and samples after one step', async () => {
    const run = async (backend: BackendName) => {
      setBackend(backend);
      const vae = await tinyModel();
      const batch = batchOf(small, 8, 0);
      try {
        const stats = [await read(vae.codec.mean), await read(vae.codec.std)];
        const losses = await vae.trainStep(batch);
        const params: number[][] = [];
        for (const m of Object.values(vae.modules()))
          for (const p of m.parameters()) params.push(await read(p));
        const x = vae.sampleSpectrograms(4, { labels: [1, 2, 3, 4], generator: pictureGenerator(0) });
        const samples = await read(x);
        x.dispose();
        return { stats, losses, params, samples };
      } finally {
        disposeBatch(batch);
        dispose(vae);
        setBackend('cpu');
      }
    };
    const cpu = await run('cpu');
    const onGpu = await run('webgpu');
    for (let i = 0; i < 2; i++)
      await expectAllClose(onGpu.stats[i], cpu.stats[i], { atol: 1e-4, rtol: 1e-4 });
    expect(Object.keys(onGpu.losses)).toEqual(['loss', 'recon', 'kl', 'mse']);
    // recon is D/2·log(mse) with D = 2048: a relative error of 1e-5 in mse moves it by 0.01.
    for (const k of ['loss', 'recon', 'kl', 'mse'])
      await expectAllClose([onGpu.losses[k]], [cpu.losses[k]], { atol: 2e-2, rtol: 1e-4 });
    // One Adam step moves each parameter by about ±lr (1e-3): a fifth of it catches a wrong update.
    for (let i = 0; i < cpu.params.length; i++)
      await expectAllClose(onGpu.params[i], cpu.params[i], { atol: 1e-3 / 5, rtol: 1e-4 });
    await expectAllClose(onGpu.samples, cpu.samples, { atol: 1e-3, rtol: 1e-3 });
  }, 60_000);
});
