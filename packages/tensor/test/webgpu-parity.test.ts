/**
 * WebGPU ⇔ CPU parity over the shared case table: every case of `OP_CASES` (every primitive of
 * the registry, with broadcasts, transposed/strided/expanded views, sizes 1, primes and 17) and
 * of `COMPOSITE_CASES` runs on both backends on the same random inputs, and the float32 results
 * must agree within the case's tolerance. A primitive without a parity case fails the suite.
 */
import { type BackendName, OPS, type OpName, scope, setBackend } from '@fluxion/tensor';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { COMPOSITE_CASES, type CompositeCase, DEFAULT_TOL, type HostTensor, OP_CASES } from './cases.js';
import { isClose, materialize, runs } from './helpers.js';
import { skipNote, webgpuEnv } from './webgpu-env.js';

const gpu = await webgpuEnv();

/** Cases not run here, with the reason (none today). */
const PARITY_SKIPS: Record<string, string> = {};

interface Result {
  shape: number[];
  dtype: string;
  values: number[];
}

async function runOn(backend: BackendName, c: CompositeCase, hosts: HostTensor[]): Promise<Result> {
  setBackend(backend);
  try {
    const out = scope(() => c.run(hosts.map((h) => materialize(h, { backend }))));
    try {
      return { shape: [...out.shape], dtype: out.dtype, values: Array.from(await out.data(), Number) };
    } finally {
      out.dispose();
    }
  } finally {
    setBackend('cpu');
  }
}

/** Runs case `c` on both backends for `numRuns` random inputs and compares. */
async function checkParity(c: CompositeCase, numRuns: number): Promise<void> {
  const tol = c.tol ?? DEFAULT_TOL;
  await fc.assert(
    fc.asyncProperty(c.inputs, async (hosts) => {
      const expected = await runOn('cpu', c, hosts);
      const actual = await runOn('webgpu', c, hosts);
      expect(actual.shape).toEqual(expected.shape);
      expect(actual.dtype).toEqual(expected.dtype);
      const bad = actual.values.flatMap((v, i) =>
        isClose(v, expected.values[i], tol) ? [] : [`[${i}] webgpu ${v} cpu ${expected.values[i]}`],
      );
      expect(bad.slice(0, 5), `${bad.length} mismatches`).toEqual([]);
    }),
    runs(numRuns),
  );
}

describe.skipIf(!gpu.backend)(`webgpu parity with the CPU backend${skipNote(gpu)}`, () => {
  test.each(Object.keys(OPS) as OpName[])('primitive %s has a parity case', (op) => {
    const covered = OP_CASES.filter((c) => c.op === op && !(c.name in PARITY_SKIPS));
    expect(covered.map((c) => c.name)).not.toEqual([]);
  });

  test.each(OP_CASES.filter((c) => !(c.name in PARITY_SKIPS)).map((c) => [c.name, c] as const))(
    'primitive case %s',
    async (_name, c) => checkParity(c, 20),
  );

  test.each(COMPOSITE_CASES.filter((c) => !(c.name in PARITY_SKIPS)).map((c) => [c.name, c] as const))(
    'composite case %s',
    async (_name, c) => checkParity(c, 10),
  );

  // Matmul's kernel family is chosen per adapter (by features and a timed trial); every family the
  // adapter can run is forced in turn, so the one another adapter would choose is tested here too.
  // The conv kernel follows the same choice (its subgroup form, or per-lane loads otherwise).
  const families = (['subgroup', 'register', 'shared'] as const).filter(
    (v) => v !== 'subgroup' || gpu.backend?.subgroups8,
  );
  const matmulCases = OP_CASES.filter((c) => c.op === 'matmul' || c.op === 'conv');
  test.each(families.flatMap((v) => matmulCases.map((c) => [c.name, v, c] as const)))(
    'primitive case %s with the %s matmul kernels forced',
    async (_name, variant, c) => {
      const backend = gpu.backend!;
      const previous = backend.matmulVariant;
      backend.matmulVariant = variant;
      try {
        await checkParity(c, 10);
      } finally {
        backend.matmulVariant = previous;
      }
    },
  );
});
