/**
 * The random generator: Philox4x32-10 against Random123's known answers, reproducibility from a
 * seed, independence of generator streams from interleaving, and statistics of each distribution
 * (mean, variance, range, rates) on 100k samples with fixed seeds.
 */
import {
  bernoulli,
  Generator,
  manualSeed,
  philox4x32,
  rand,
  randint,
  randn,
  type Tensor,
  tensor,
} from '@fluxion/tensor';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { runs, valuesOf } from './helpers.js';

/** Reads and disposes. */
async function take(t: Tensor): Promise<number[]> {
  try {
    return await valuesOf(t);
  } finally {
    t.dispose();
  }
}

function mean(xs: readonly number[]): number {
  let s = 0;
  for (const x of xs) s += x;
  return s / xs.length;
}

function variance(xs: readonly number[]): number {
  const m = mean(xs);
  let s = 0;
  for (const x of xs) s += (x - m) ** 2;
  return s / (xs.length - 1);
}

/** Pearson correlation of two equally long samples. */
function correlation(a: readonly number[], b: readonly number[]): number {
  const [ma, mb] = [mean(a), mean(b)];
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < a.length; i++) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) ** 2;
    sbb += (b[i] - mb) ** 2;
  }
  return sab / Math.sqrt(saa * sbb);
}

const N = 100_000;

describe('Philox4x32-10', () => {
  // Random123's kat_vectors: counter (4 words), key (2 words) → output (4 words).
  const vectors: [number[], number[], number[]][] = [
    [
      [0, 0, 0, 0],
      [0, 0],
      [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8],
    ],
    [
      [0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff],
      [0xffffffff, 0xffffffff],
      [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd],
    ],
    [
      [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
      [0xa4093822, 0x299f31d0],
      [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1],
    ],
  ];
  test.each(vectors)('matches the known answer for counter %j, key %j', (counter, key, expected) => {
    const out = new Uint32Array(4);
    philox4x32(counter[0], counter[1], counter[2], counter[3], key[0], key[1], out);
    expect(Array.from(out)).toEqual(expected);
  });
});

describe('reproducibility', () => {
  test('the same seed gives the same numbers; different seeds differ', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 2 ** 40 }),
        fc.integer({ min: 1, max: 300 }),
        async (seed, n) => {
          const a = await take(randn([n], { seed }));
          const b = await take(randn([n], { seed }));
          const c = await take(randn([n], { seed: seed + 1 }));
          expect(a).toEqual(b);
          expect(a).not.toEqual(c);
        },
      ),
      runs(20),
    );
  });

  test('a generator continues its stream: draws of n then m equal one draw of n + m', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.nat(1000),
        fc.integer({ min: 1, max: 50 }),
        fc.integer({ min: 1, max: 50 }),
        async (seed, n, m) => {
          const g = new Generator(seed);
          const first = await take(rand([n], { generator: g }));
          const second = await take(rand([m], { generator: g }));
          const whole = await take(rand([n + m], { seed }));
          expect([...first, ...second]).toEqual(whole);
          expect(g.offset).toBe(n + m);
        },
      ),
      runs(20),
    );
  });

  test('streams do not depend on how draws of other generators interleave', async () => {
    const sizes = fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 5 });
    await fc.assert(
      fc.asyncProperty(
        sizes,
        sizes,
        fc.array(fc.boolean(), { minLength: 10, maxLength: 10 }),
        async (s1, s2, order) => {
          // Alone: g1 draws s1 in turn.
          const alone = new Generator(11);
          const expected: number[][] = [];
          for (const n of s1) expected.push(await take(randn([n], { generator: alone })));
          // Interleaved with g2 (and the default generator) in a random order.
          const g1 = new Generator(11);
          const g2 = new Generator(12);
          const got: number[][] = [];
          let [i, j] = [0, 0];
          for (let step = 0; i < s1.length; step++) {
            if ((order[step % order.length] || j >= s2.length) && i < s1.length) {
              got.push(await take(randn([s1[i++]], { generator: g1 })));
            } else {
              await take(rand([s2[j++]], { generator: g2 }));
              await take(rand([3]));
            }
          }
          expect(got).toEqual(expected);
        },
      ),
      runs(20),
    );
  });

  test('manualSeed resets the default generator', async () => {
    manualSeed(123);
    const a = await take(rand([5]));
    const b = await take(rand([5]));
    manualSeed(123);
    expect(await take(rand([10]))).toEqual([...a, ...b]);
  });

  test('uniform numbers are identical in float32 and float64 (24-bit values)', async () => {
    const a = await take(rand([1000], { seed: 3, dtype: 'float32' }));
    const b = await take(rand([1000], { seed: 3, dtype: 'float64' }));
    expect(a).toEqual(b);
    expect(a.every((v) => Number.isInteger(v * 2 ** 24))).toBe(true);
  });

  test('seeds beyond 32 bits still separate streams', async () => {
    const a = await take(rand([50], { seed: 2 ** 32 + 5 }));
    const b = await take(rand([50], { seed: 5 }));
    expect(a).not.toEqual(b);
  });
});

describe('statistics (100k samples)', () => {
  test('uniform: in [0, 1), mean 1/2, variance 1/12, flat histogram', async () => {
    const x = await take(rand([N], { seed: 1 }));
    expect(x.every((v) => v >= 0 && v < 1)).toBe(true);
    expect(Math.abs(mean(x) - 0.5)).toBeLessThan(0.005);
    expect(Math.abs(variance(x) - 1 / 12)).toBeLessThan(0.002);
    const buckets = new Array<number>(20).fill(0);
    for (const v of x) buckets[Math.floor(v * 20)]++;
    // Each bucket expects 5000 (σ ≈ 69); 5σ bounds.
    for (const count of buckets) expect(Math.abs(count - N / 20)).toBeLessThan(350);
  });

  test('normal: mean 0, variance 1, 68.3% within one σ, symmetric tails', async () => {
    const x = await take(randn([N], { seed: 2 }));
    expect(x.every(Number.isFinite)).toBe(true);
    expect(Math.abs(mean(x))).toBeLessThan(0.01);
    expect(Math.abs(variance(x) - 1)).toBeLessThan(0.02);
    const within1 = x.filter((v) => Math.abs(v) < 1).length / N;
    const beyond2 = x.filter((v) => Math.abs(v) > 2).length / N;
    expect(Math.abs(within1 - 0.6827)).toBeLessThan(0.006);
    expect(Math.abs(beyond2 - 0.0455)).toBeLessThan(0.003);
    const skew = mean(x.map((v) => v ** 3));
    expect(Math.abs(skew)).toBeLessThan(0.05);
  });

  test('consecutive samples and different seeds are uncorrelated', async () => {
    const a = await take(randn([N], { seed: 4 }));
    const b = await take(randn([N], { seed: 5 }));
    expect(Math.abs(correlation(a, b))).toBeLessThan(0.015);
    expect(Math.abs(correlation(a.slice(1), a.slice(0, -1)))).toBeLessThan(0.015);
  });

  test('randint: int32 in [low, high), every value about equally often', async () => {
    const t = randint(-3, 7, [N], { seed: 6 });
    expect(t.dtype).toBe('int32');
    const x = await take(t);
    expect(x.every((v) => Number.isInteger(v) && v >= -3 && v < 7)).toBe(true);
    const counts = new Map<number, number>();
    for (const v of x) counts.set(v, (counts.get(v) ?? 0) + 1);
    expect([...counts.keys()].sort((p, q) => p - q)).toEqual([-3, -2, -1, 0, 1, 2, 3, 4, 5, 6]);
    // Each value expects 10000 (σ ≈ 95); 5σ bounds.
    for (const count of counts.values()) expect(Math.abs(count - N / 10)).toBeLessThan(475);
  });

  test('bernoulli: bool with the requested rate, per element for a tensor of probabilities', async () => {
    const t = bernoulli(0.3, [N], { seed: 8 });
    expect(t.dtype).toBe('bool');
    expect(Math.abs(mean(await take(t)) - 0.3)).toBeLessThan(0.006);
    const p = tensor([0, 1, 0.25, 0.75]);
    const rows = p.expand([N / 4, 4]);
    const draws = await take(bernoulli(rows, undefined, { seed: 9 }));
    const rate = (column: number) => mean(draws.filter((_, i) => i % 4 === column));
    expect(rate(0)).toBe(0);
    expect(rate(1)).toBe(1);
    expect(Math.abs(rate(2) - 0.25)).toBeLessThan(0.012);
    expect(Math.abs(rate(3) - 0.75)).toBeLessThan(0.012);
    p.dispose();
    rows.dispose();
  });
});
