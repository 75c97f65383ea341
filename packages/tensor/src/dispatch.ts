/**
 * Running a primitive: check its inputs against the registry's rule, allocate the output on the
 * inputs' backend, run the backend's kernel (or build a view), and tell the observer (autograd
 * installs one) what happened. Every primitive call in Fluxion goes through {@link runKernel} or
 * {@link runView}.
 */
import { type Backend, getBackend } from './backend.js';
import { FluxionError, fmtShape } from './errors.js';
import { allocStorage } from './memory.js';
import { type ElementwiseProgram, parseProgram } from './program.js';
import { type KernelOp, OPS, type OpName, type OpParamMap, type ViewOp } from './registry.js';
import { contiguousStrides, reshapeStrides, shapesEqual, sizeOf } from './shape.js';
import { Tensor } from './tensor.js';

/** One primitive application, as seen by an observer. */
export interface OpRecord<K extends OpName = OpName> {
  op: K;
  inputs: readonly Tensor[];
  params: OpParamMap[K];
  output: Tensor;
}

/** A function told about every primitive application (autograd records the graph with it). */
export type OpObserver = (record: OpRecord) => void;

let observer: OpObserver | null = null;

/** Installs the op observer (one at a time; `@fluxion/autograd` installs its recorder). */
export function setOpObserver(fn: OpObserver | null): void {
  observer = fn;
}

function checkInputs(op: string, inputs: readonly Tensor[]): void {
  for (const t of inputs) {
    if (t.isDisposed) throw new FluxionError(op, `input ${fmtShape(t.shape)} ${t.dtype} was disposed`);
  }
  for (const t of inputs) {
    if (t.backend !== inputs[0].backend) {
      throw new FluxionError(
        op,
        `inputs live on different backends (${inputs.map((x) => x.backend.name).join(', ')}); move them with \`to()\``,
      );
    }
  }
}

/**
 * Runs kernel primitive `op` on `inputs` and returns its fresh, contiguous output.
 * `backend` is only needed by ops without inputs (`random`).
 */
export function runKernel<K extends KernelOp>(
  op: K,
  inputs: readonly Tensor[],
  params: OpParamMap[K],
  backend: Backend = inputs[0]?.backend ?? getBackend(),
): Tensor {
  checkInputs(op, inputs);
  const { shape, dtype } = OPS[op].infer(inputs, params);
  if (!backend.dtypes.includes(dtype)) {
    throw new FluxionError(op, `the ${backend.name} backend has no dtype ${dtype}`);
  }
  const size = sizeOf(shape);
  const storage = allocStorage(op, backend, dtype, shape);
  const output = new Tensor(storage, shape, contiguousStrides(shape), 0, dtype);
  if (size > 0) backend.run(op, inputs, output, params);
  observer?.({ op, inputs, params, output });
  return output;
}

type Layout = { strides: number[]; offset: number };

/** How each view op maps the input's strides and offset (shapes come from the registry). */
const VIEW_LAYOUT: { [K in ViewOp]: (x: Tensor, params: OpParamMap[K]) => Layout } = {
  reshape: (x, { shape }) => {
    const strides = reshapeStrides(x.shape, x.strides, shape);
    if (!strides)
      throw new FluxionError(
        'reshape',
        `${fmtShape(x.shape)} is not viewable as ${fmtShape(shape)}; copy first`,
      );
    return { strides, offset: x.offset };
  },
  permute: (x, { axes }) => ({ strides: axes.map((a) => x.strides[a]), offset: x.offset }),
  expand: (x, { shape }) => ({
    strides: shape.map((d, i) => (x.shape[i] === d ? x.strides[i] : 0)),
    offset: x.offset,
  }),
  slice: (x, { starts, steps }) => ({
    strides: x.strides.map((s, i) => s * steps[i]),
    offset: x.offset + starts.reduce((o, start, i) => o + start * x.strides[i], 0),
  }),
  // Tap (i, j) and position (y, x) read row y·sh + i·dh and column x·sw + j·dw.
  windows: (x, { stride, dilation }) => {
    const [sn, sc, sh, sw] = x.strides;
    return {
      strides: [sn, sc, sh * dilation[0], sw * dilation[1], sh * stride[0], sw * stride[1]],
      offset: x.offset,
    };
  },
};

/** Applies view primitive `op`: a new tensor over the same storage. */
export function runView<K extends ViewOp>(op: K, input: Tensor, params: OpParamMap[K]): Tensor {
  checkInputs(op, [input]);
  const { shape, dtype } = OPS[op].infer([input], params);
  const { strides, offset } = VIEW_LAYOUT[op](input, params);
  const output = new Tensor(input.storage.retain(), shape, strides, offset, dtype);
  observer?.({ op, inputs: [input], params, output });
  return output;
}

/**
 * Runs an elementwise program: every input must have the same shape, dtype (float32 or float64)
 * and backend; the outputs are fresh contiguous tensors of that shape, in `program.outputs` order.
 * Not differentiable (see the module comment).
 *
 * Args:
 *   program: the program.
 *   inputs: one tensor per `program.inputs` name.
 *   scalars: one number per `program.scalars` name.
 *
 * @example
 * ```ts
 * const lerp: ElementwiseProgram = {
 *   name: 'lerp', inputs: ['a', 'b'], scalars: ['t'], body: ['y = a + t * (b - a)'], outputs: ['y'],
 * };
 * const [y] = runProgram(lerp, [tensor([0, 1]), tensor([2, 3])], { t: 0.25 });
 * ```
 */
export function runProgram(
  program: ElementwiseProgram,
  inputs: readonly Tensor[],
  scalars: Readonly<Record<string, number>>,
): Tensor[] {
  const p = parseProgram(program);
  const op = `program ${p.name}`;
  if (inputs.length !== p.inputs.length) {
    throw new FluxionError(
      op,
      `expects ${p.inputs.length} inputs (${p.inputs.join(', ')}), got ${inputs.length}`,
    );
  }
  const [first] = inputs;
  for (const [i, t] of inputs.entries()) {
    if (t.isDisposed) throw new FluxionError(op, `input '${p.inputs[i]}' was disposed`);
    if (!shapesEqual(t.shape, first.shape) || t.dtype !== first.dtype || t.backend !== first.backend) {
      throw new FluxionError(
        op,
        `inputs must share shape, dtype and backend: '${p.inputs[0]}' is ${fmtShape(first.shape)} ${first.dtype} on ${first.backend.name}, '${p.inputs[i]}' is ${fmtShape(t.shape)} ${t.dtype} on ${t.backend.name}`,
      );
    }
  }
  if (first.dtype !== 'float32' && first.dtype !== 'float64') {
    throw new FluxionError(op, `inputs must be float32 or float64, got ${first.dtype}`);
  }
  const values = p.scalars.map((name) => {
    const v = scalars[name];
    if (typeof v !== 'number') throw new FluxionError(op, `scalar '${name}' is missing`);
    return v;
  });
  const extra = Object.keys(scalars).filter((k) => !p.scalars.includes(k));
  if (extra.length > 0)
    throw new FluxionError(op, `unknown scalars ${extra.map((k) => `'${k}'`).join(', ')}`);
  const { backend, dtype, shape } = first;
  const size = sizeOf(shape);
  const outputs = p.outputs.map(() => {
    const storage = allocStorage(op, backend, dtype, shape);
    return new Tensor(storage, [...shape], contiguousStrides(shape), 0, dtype);
  });
  if (size > 0) {
    const dense = inputs.map((t) => (t.isContiguous ? t : runKernel('copy', [t], {})));
    try {
      backend.runProgram(p, dense, outputs, values);
    } finally {
      dense.forEach((t, i) => {
        if (t !== inputs[i]) t.dispose();
      });
    }
  }
  return outputs;
}
