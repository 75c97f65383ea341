/**
 * Fuzzing the WebGPU backend against the CPU reference: every case of the shared table (each
 * primitive with its broadcasts, views and awkward sizes, and each composite) on hundreds of
 * random input sets, batched so that one read-back serves 200 cases. The parity suite
 * (`webgpu-parity.test.ts`) runs fewer inputs per case and shrinks a failure to a small
 * counterexample; this one is about volume. The total is printed and logged (see `fuzz.ts`).
 */
import { afterAll, describe, expect, test } from 'vitest';
import { COMPOSITE_CASES, OP_CASES } from './cases.js';
import { fuzzCase, fuzzRuns, recordFuzz } from './fuzz.js';
import { adapterName, skipNote, webgpuEnv } from './webgpu-env.js';

const gpu = await webgpuEnv();

/** Random input sets per case: 165 cases × 620 ≈ 1.02·10⁵ per run. */
const PER_CASE = fuzzRuns(620);

describe.skipIf(!gpu.backend)(`webgpu fuzz against the CPU backend${skipNote(gpu)}`, () => {
  let cases = 0;
  let mismatches = 0;
  afterAll(() => {
    if (gpu.backend) recordFuzz(`webgpu [${adapterName(gpu.backend)}]`, cases, mismatches);
  });

  test.each([...OP_CASES, ...COMPOSITE_CASES].map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const outcome = await fuzzCase(c, PER_CASE, { backend: 'webgpu' }, { backend: 'cpu' });
    cases += outcome.cases;
    mismatches += outcome.mismatchCount;
    expect(outcome.mismatches, `${outcome.mismatchCount} of ${outcome.cases} input sets mismatch`).toEqual(
      [],
    );
  });
});
