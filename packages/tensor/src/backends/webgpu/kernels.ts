/**
 * The WebGPU kernel of every primitive, in one typed table: `{ [K in KernelOp]: … }`, so a
 * primitive added to the registry without a WebGPU kernel is a compile error. Each entry records
 * dispatches through the {@link KernelContext}; the kernel families live in their own modules.
 */
import type { KernelArg } from '../../backend.js';
import {
  ARG_REDUCE_OPS,
  BINARY_OPS,
  type BinaryOp,
  type KernelOp,
  type OpParamMap,
  REDUCE_OPS,
  UNARY_OPS,
  type UnaryOp,
} from '../../registry.js';
import type { KernelContext } from './context.js';
import { runConv } from './conv.js';
import {
  binaryKernel,
  castKernel,
  copyKernel,
  leakyReluGradKernel,
  leakyReluKernel,
  unaryKernel,
  whereKernel,
} from './elementwise.js';
import { concatKernel, foldKernel, padKernel, scatterAddKernel, takeKernel } from './indexing.js';
import { runMatmul } from './matmul.js';
import { layerNormGradKernel, layerNormKernel } from './norm.js';
import { randomKernel } from './random.js';
import { runReduce } from './reduce.js';

/** A WebGPU kernel: records the dispatches that compute `out` from `inputs`. */
export type WebGPUKernel<K extends KernelOp> = (
  ctx: KernelContext,
  inputs: readonly KernelArg[],
  out: KernelArg,
  params: OpParamMap[K],
) => void;

type ReduceKernels = {
  [K in (typeof REDUCE_OPS)[number] | (typeof ARG_REDUCE_OPS)[number]]: WebGPUKernel<K>;
};

/** Every primitive's WebGPU kernel. */
export const KERNELS: { [K in KernelOp]: WebGPUKernel<K> } = {
  ...(Object.fromEntries(UNARY_OPS.map((op) => [op, unaryKernel(op)])) as {
    [K in UnaryOp]: WebGPUKernel<K>;
  }),
  ...(Object.fromEntries(BINARY_OPS.map((op) => [op, binaryKernel(op)])) as {
    [K in BinaryOp]: WebGPUKernel<K>;
  }),
  ...(Object.fromEntries(
    [...REDUCE_OPS, ...ARG_REDUCE_OPS].map((op) => [
      op,
      ((ctx, [x], out, params) => runReduce(ctx, op, x, out, params)) as WebGPUKernel<typeof op>,
    ]),
  ) as ReduceKernels),
  where: whereKernel,
  leakyRelu: leakyReluKernel,
  leakyReluGrad: leakyReluGradKernel,
  cast: castKernel,
  copy: copyKernel,
  matmul: (ctx, inputs, out) => runMatmul(ctx, inputs, out),
  conv: runConv,
  layerNorm: layerNormKernel,
  layerNormGrad: layerNormGradKernel,
  take: takeKernel,
  scatterAdd: scatterAddKernel,
  concat: concatKernel,
  pad: padKernel,
  fold: foldKernel,
  random: randomKernel,
};
