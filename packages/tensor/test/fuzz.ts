/**
 * Batched fuzzing of the shared case table (`cases.ts`): many random input sets per case, checked
 * against a reference run, with every subject run of a batch recorded before any is read back (on
 * WebGPU, one batch costs one round trip instead of one per case). Used by `webgpu-fuzz.test.ts`
 * (WebGPU against the CPU backend) and `properties.test.ts` (the CPU backend in float32 against
 * float64).
 *
 * Every run adds its count of cases and mismatches to the file named by `FLUXION_FUZZ_LOG` (one
 * JSON line per suite), which `scripts/test.mjs` sums into the figure it prints per backend.
 * `FLUXION_FUZZ_SCALE` multiplies the cases per table entry; `FLUXION_FUZZ_SEED` replays a run.
 */
import { appendFileSync } from 'node:fs';
import {
  type BackendName,
  concat,
  type DType,
  reshape,
  scope,
  setBackend,
  type Tensor,
} from '@fluxion/tensor';
import fc from 'fast-check';
import { type CompositeCase, DEFAULT_TOL, type HostTensor, materialize } from './cases.js';
import { isClose } from './helpers.js';

/** Where a fuzz run executes: a backend, and the dtype float inputs are created as. */
export interface FuzzSide {
  backend: BackendName;
  floatDtype?: DType;
}

/** One result read back. */
interface Result {
  shape: number[];
  dtype: string;
  values: number[];
}

/** The outcome of fuzzing one case. */
export interface FuzzOutcome {
  /** Input sets checked. */
  cases: number;
  /** Descriptions of the first mismatching input sets (at most 3), with the seed to replay them. */
  mismatches: string[];
  /** Input sets that mismatched. */
  mismatchCount: number;
}

/**
 * Random input sets per table entry: `perCase` scaled by `FLUXION_FUZZ_SCALE` (default 1).
 *
 * @example
 * ```ts
 * fuzzRuns(600); // 600, or 6000 with FLUXION_FUZZ_SCALE=10
 * ```
 */
export function fuzzRuns(perCase: number): number {
  const scale = Number(process.env.FLUXION_FUZZ_SCALE ?? 1);
  return Math.max(1, Math.round(perCase * (Number.isFinite(scale) && scale > 0 ? scale : 1)));
}

/** The seed of this process's fuzz runs: `FLUXION_FUZZ_SEED`, else drawn once. */
export const fuzzSeed: number = process.env.FLUXION_FUZZ_SEED
  ? Number(process.env.FLUXION_FUZZ_SEED)
  : Math.floor(Math.random() * 2 ** 31);

/** A stable 31-bit hash of a case name, so that each case draws its own inputs from the seed. */
const hashName = (name: string): number => {
  let h = 0;
  for (let i = 0; i < name.length; i++) h = (Math.imul(h, 31) + name.charCodeAt(i)) | 0;
  return h >>> 1;
};

/**
 * Runs case `c` on every input set of `batch` on one side and reads all results back with one
 * transfer per dtype: the results are flattened and concatenated on the device (so `concat` is
 * exercised too; a fault there shows up as mismatches of whole batches).
 */
async function runBatch(c: CompositeCase, batch: HostTensor[][], side: FuzzSide): Promise<Result[]> {
  setBackend(side.backend);
  const outs: Tensor[] = [];
  const inputs: Tensor[] = [];
  try {
    for (const hosts of batch) {
      const xs = hosts.map((h) => materialize(h, { backend: side.backend, floatDtype: side.floatDtype }));
      inputs.push(...xs);
      outs.push(scope(() => c.run(xs)));
    }
    const values: number[][] = new Array(outs.length);
    for (const dtype of new Set(outs.map((o) => o.dtype))) {
      const group = outs.flatMap((o, i) => (o.dtype === dtype ? [i] : []));
      const flat = scope(() =>
        concat(
          group.map((i) => reshape(outs[i], [outs[i].size])),
          0,
        ),
      );
      try {
        const data = await flat.data();
        let at = 0;
        for (const i of group) {
          values[i] = Array.from(data.subarray(at, at + outs[i].size), Number);
          at += outs[i].size;
        }
      } finally {
        flat.dispose();
      }
    }
    return outs.map((o, i) => ({ shape: [...o.shape], dtype: o.dtype, values: values[i] }));
  } finally {
    for (const t of new Set([...outs, ...inputs])) t.dispose();
    setBackend('cpu');
  }
}

/** Why `actual` does not match `expected` within `tol`, or null when it does. */
function difference(actual: Result, expected: Result, tol: { atol: number; rtol: number }): string | null {
  if (actual.shape.join() !== expected.shape.join()) return `shape ${actual.shape} ≠ ${expected.shape}`;
  const dtype = expected.dtype === 'float64' ? 'float32' : expected.dtype;
  if (actual.dtype !== dtype) return `dtype ${actual.dtype} ≠ ${dtype}`;
  const bad = actual.values.flatMap((v, i) =>
    isClose(v, expected.values[i], tol) ? [] : [`[${i}] ${v} vs ${expected.values[i]}`],
  );
  return bad.length ? `${bad.length} values differ: ${bad.slice(0, 3).join(', ')}` : null;
}

/**
 * Checks `count` random input sets of case `c` (drawn from the case's generator with a seed
 * derived from {@link fuzzSeed} and the case's name), `batch` at a time, on `subject` against
 * `reference`, within the case's tolerance.
 *
 * @example
 * ```ts
 * const out = await fuzzCase(c, 600, { backend: 'webgpu' }, { backend: 'cpu' });
 * expect(out.mismatches).toEqual([]);
 * ```
 */
export async function fuzzCase(
  c: CompositeCase,
  count: number,
  subject: FuzzSide,
  reference: FuzzSide,
  batch = 200,
): Promise<FuzzOutcome> {
  const seed = (fuzzSeed + hashName(c.name)) % 2 ** 31;
  const samples = fc.sample(c.inputs, { numRuns: count, seed });
  const tol = c.tol ?? DEFAULT_TOL;
  const outcome: FuzzOutcome = { cases: 0, mismatches: [], mismatchCount: 0 };
  for (let start = 0; start < samples.length; start += batch) {
    const inputs = samples.slice(start, start + batch);
    const expected = await runBatch(c, inputs, reference);
    const actual = await runBatch(c, inputs, subject);
    actual.forEach((a, i) => {
      const why = difference(a, expected[i], tol);
      if (!why) return;
      outcome.mismatchCount++;
      if (outcome.mismatches.length < 3) {
        outcome.mismatches.push(
          `${c.name} (FLUXION_FUZZ_SEED=${fuzzSeed}, sample ${start + i}): ${why}; inputs ${JSON.stringify(inputs[i])}`,
        );
      }
    });
    outcome.cases += inputs.length;
  }
  return outcome;
}

/**
 * Adds a suite's totals to the `FLUXION_FUZZ_LOG` file (nothing when it is unset) and prints them.
 *
 * @example
 * ```ts
 * recordFuzz('webgpu [SwiftShader driver 5.0.0]', 105000, 0);
 * ```
 */
export function recordFuzz(label: string, cases: number, mismatches: number): void {
  console.log(`fuzz: ${label}: ${cases} random cases against the reference, ${mismatches} mismatches`);
  const file = process.env.FLUXION_FUZZ_LOG;
  if (file) appendFileSync(file, `${JSON.stringify({ label, cases, mismatches })}\n`);
}
