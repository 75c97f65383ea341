/**
 * Running a primitive: check its inputs against the registry's rule, allocate the output on the
 * inputs' backend, run the backend's kernel (or build a view), and tell the observer (autograd
 * installs one) what happened. Every primitive call in Fluxion goes through {@link runKernel} or
 * {@link runView}.
 */
import { type Backend, getBackend } from './backend.js';
import { FluxionError, fmtShape } from './errors.js';
import { Storage } from './memory.js';
import { type KernelOp, OPS, type OpName, type OpParamMap, type ViewOp } from './registry.js';
import { contiguousStrides, reshapeStrides, sizeOf } from './shape.js';
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
  const storage = new Storage(backend, backend.alloc(dtype, size), dtype, size);
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
