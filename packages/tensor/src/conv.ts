/**
 * The `conv` primitive's functional entry point. The convolution layers of `@fluxion/nn`
 * (`conv2d`, `convTranspose2d`, the 1-D ones) call it; it computes the output of a grouped 2-D
 * convolution, or its adjoint in the input or in the weight (see {@link ConvParams}).
 */
import { runKernel } from './dispatch.js';
import type { ConvResult } from './registry.js';
import type { Tensor } from './tensor.js';

/** The parameters of {@link conv}: those of the `conv` primitive (`ConvParams`), pairs read-only. */
export interface ConvOptions {
  result: ConvResult;
  size: readonly [number, number];
  stride: readonly [number, number];
  padding: readonly [number, number];
  dilation: readonly [number, number];
  groups: number;
}

/**
 * One of a convolution's three tensors from the other two (the `conv` primitive):
 * - `result: 'output'`: `conv(x, w, …)` is the convolution `y [N, O, OH, OW]` of the image
 *   `x [N, C, H, W]` with the weight `w [O, C/G, KH, KW]`;
 * - `result: 'input'`: `conv(y, w, …)` is its adjoint in the image, `[N, C, H, W]` (the transposed
 *   convolution, and the gradient with respect to `x`);
 * - `result: 'weight'`: `conv(x, y, …)` is its adjoint in the weight, `[O, C/G, KH, KW]` (the
 *   weight gradient).
 *
 * `size` is the result's spatial size. Padding reads zeros outside the image; nothing is padded or
 * copied. Differentiable in both inputs (the gradients are `conv`s again).
 *
 * @example
 * ```ts
 * const geometry = { stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 1 } as const;
 * const x = randn([2, 3, 8, 8]);
 * const w = randn([4, 3, 3, 3]);
 * const y = conv(x, w, { ...geometry, result: 'output', size: [8, 8] }); // [2, 4, 8, 8]
 * conv(y, w, { ...geometry, result: 'input', size: [8, 8] }).shape; // [2, 3, 8, 8]
 * conv(x, y, { ...geometry, result: 'weight', size: [3, 3] }).shape; // [4, 3, 3, 3]
 * ```
 */
export function conv(first: Tensor, second: Tensor, params: ConvOptions): Tensor {
  return runKernel('conv', [first, second], {
    result: params.result,
    size: [params.size[0], params.size[1]],
    stride: [params.stride[0], params.stride[1]],
    padding: [params.padding[0], params.padding[1]],
    dilation: [params.dilation[0], params.dilation[1]],
    groups: params.groups,
  });
}
