/**
 * Elementwise programs (see `program.ts`) as WGSL: the program becomes a function of one element
 * of each input returning a struct of its outputs, and the entry point applies it to four elements
 * per invocation with vec4 loads and stores when the count and every offset are multiples of 4
 * (one element otherwise).
 *
 * A shader may bind only `maxStorageBuffersPerShaderStage` storage buffers (8 unless the adapter
 * grants more). When inputs and outputs together need more, the program runs in several passes,
 * each computing everything but writing only the outputs that fit.
 *
 * Parameter words: 0 count, 1… input offsets (8 at most), 9… output offsets (8 at most), 20…
 * scalars as float32 bits.
 */
import type { KernelArg } from '../../backend.js';
import { FluxionError } from '../../errors.js';
import { type ParsedProgram, type ProgramFunction, renderExpression } from '../../program.js';
import { sizeOf } from '../../shape.js';
import { bufferOf, type KernelContext } from './context.js';
import { helpersFor, MAIN, PARAM_WORDS, PARAMS_DECL, storageDecl } from './wgsl.js';

const WORKGROUP = 256;
const MAX_OPERANDS = 8;
const SCALAR_BASE = 20;

const v = (name: string) => `v_${name}`;
/** A short id per program text, for pipeline keys. */
const programIds = new Map<string, number>();
/** The WGSL of each program function (helpers that give special values the CPU's results). */
const FUNCTION_WGSL: Record<ProgramFunction, string> = {
  sqrt: 'sqrtF',
  max: 'maxNan',
  min: 'minNan',
  abs: 'abs',
};
const fn = (f: ProgramFunction) => FUNCTION_WGSL[f];

function programSource(p: ParsedProgram, written: readonly number[], vec4: boolean): string {
  const T = vec4 ? 'vec4<f32>' : 'f32';
  const decls = p.inputs.map((_, k) => storageDecl(k + 1, `in${k}`, T, false));
  written.forEach((_, j) => {
    decls.push(storageDecl(p.inputs.length + j + 1, `out${j}`, T, true));
  });
  const body = [
    ...p.scalars.map((s, k) => `let ${v(s)} = bitcast<f32>(p(${SCALAR_BASE + k}u));`),
    ...p.locals.map((name) => `var ${v(name)}: f32;`),
    ...p.statements.map((s) => `${v(s.target)} = ${renderExpression(s.expression, v, fn)};`),
  ];
  const fields = written.map((_, j) => `o${j}: f32`).join(', ');
  const returned = written.map((o) => v(p.outputs[o])).join(', ');
  const args = p.inputs.map((name) => `${v(name)}In: f32`).join(', ');
  const rebind = p.inputs.map((name) => `var ${v(name)} = ${v(name)}In;`);
  const index = (k: number, base: number) => (vec4 ? `p(${base + k}u) / 4u + i` : `p(${base + k}u) + i`);
  const call = (c: string) => `compute(${p.inputs.map((_, k) => `x${k}${c}`).join(', ')})`;
  const loads = p.inputs.map((_, k) => `let x${k} = in${k}[${index(k, 1)}];`);
  const main = vec4
    ? [
        ...loads,
        ...[0, 1, 2, 3].map((c) => `let r${c} = ${call(`[${c}]`)};`),
        ...written.map(
          (_, j) => `out${j}[${index(j, 9)}] = vec4<f32>(r0.o${j}, r1.o${j}, r2.o${j}, r3.o${j});`,
        ),
      ]
    : [...loads, `let r = ${call('')};`, ...written.map((_, j) => `out${j}[${index(j, 9)}] = r.o${j};`)];
  return `${PARAMS_DECL}
${decls.join('\n')}
${helpersFor(body.join('\n'))}
struct Outputs { ${fields} }
fn compute(${args}) -> Outputs {
  ${rebind.join('\n  ')}
  ${body.join('\n  ')}
  return Outputs(${returned});
}
@compute @workgroup_size(${WORKGROUP})
${MAIN}
  let i = workgroupIndex(wid, nwg) * ${WORKGROUP}u + lid;
  if (i >= p(0u)${vec4 ? ' / 4u' : ''}) { return; }
  ${main.join('\n  ')}
}`;
}

/**
 * Records an elementwise program over contiguous float32 inputs.
 *
 * @example
 * ```ts
 * runProgramKernel(backend, parseProgram(lerp), [a, b], [y], [0.25]);
 * ```
 */
export function runProgramKernel(
  ctx: KernelContext,
  p: ParsedProgram,
  inputs: readonly KernelArg[],
  outputs: readonly KernelArg[],
  scalars: readonly number[],
): void {
  const op = `program ${p.name}`;
  if (inputs.length > MAX_OPERANDS || outputs.length > MAX_OPERANDS) {
    throw new FluxionError(
      op,
      `the webgpu backend runs programs of at most ${MAX_OPERANDS} inputs and outputs`,
    );
  }
  if (SCALAR_BASE + scalars.length > PARAM_WORDS) {
    throw new FluxionError(
      op,
      `the webgpu backend runs programs of at most ${PARAM_WORDS - SCALAR_BASE} scalars`,
    );
  }
  const perPass = ctx.maxStorageBuffers - inputs.length;
  if (perPass < 1) {
    throw new FluxionError(
      op,
      `${inputs.length} inputs leave no storage binding for an output (this device binds ${ctx.maxStorageBuffers})`,
    );
  }
  let id = programIds.get(p.key);
  if (id === undefined) programIds.set(p.key, (id = programIds.size));
  const count = sizeOf(outputs[0].shape);
  const vec4 = count % 4 === 0 && [...inputs, ...outputs].every((x) => x.offset % 4 === 0);
  const bits = new Float32Array(scalars);
  const scalarWords = new Uint32Array(bits.buffer);
  for (let first = 0; first < outputs.length; first += perPass) {
    const written = outputs.map((_, o) => o).slice(first, first + perPass);
    const words: number[] = new Array(SCALAR_BASE + scalars.length).fill(0);
    words[0] = count;
    inputs.forEach((x, k) => {
      words[1 + k] = x.offset;
    });
    written.forEach((o, j) => {
      words[9 + j] = outputs[o].offset;
    });
    scalarWords.forEach((w, k) => {
      words[SCALAR_BASE + k] = w;
    });
    ctx.dispatch({
      op,
      key: `program|${id}|${written.join(',')}|${vec4}`,
      source: () => programSource(p, written, vec4),
      inputs: inputs.length,
      outputs: written.length,
      buffers: [...inputs.map(bufferOf), ...written.map((o) => bufferOf(outputs[o]))],
      params: words,
      workgroups: Math.ceil((vec4 ? count / 4 : count) / WORKGROUP),
    });
  }
}
