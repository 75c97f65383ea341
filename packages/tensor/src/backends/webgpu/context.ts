/**
 * What a WebGPU kernel sees of the backend: a way to record dispatches, to get scratch buffers,
 * and the adapter facts that choose between kernel variants. Kernels never touch the device
 * directly, so they cannot read back or submit.
 */
import type { KernelArg } from '../../backend.js';
import type { DType } from '../../dtype.js';
import type { IndexContext } from '../../index-range.js';
import type { GpuBuffer } from './buffers.js';
import type { ElementwiseLaunch } from './elementwise.js';
import type { DispatchSpec } from './recorder.js';

/** Matmul kernel families; the backend picks one per adapter by a measured trial. */
export type MatmulVariant = 'subgroup' | 'register' | 'shared';

/** The backend services a kernel may use. */
export interface KernelContext {
  /** Records one dispatch. */
  dispatch(spec: DispatchSpec): void;
  /**
   * Records an elementwise op's launch, which writes the whole of its fresh output, or defers it
   * so that later elementwise ops can fuse it into theirs (see `fusion.ts`).
   */
  elementwise(launch: ElementwiseLaunch): void;
  /** A scratch buffer for `size` elements of a 4-byte dtype; release it after recording its use. */
  scratch(size: number): GpuBuffer;
  /** Returns a scratch buffer (safe right after recording the dispatches that use it). */
  release(buffer: GpuBuffer): void;
  /** Whether the device has the `subgroups` feature with subgroups of at least 8 invocations. */
  readonly subgroups8: boolean;
  /** The matmul family chosen for this adapter. */
  readonly matmulVariant: MatmulVariant;
  /** Storage buffers one shader may bind (`maxStorageBuffersPerShaderStage`). */
  readonly maxStorageBuffers: number;
  /**
   * Registers the index check of the next dispatch: returns the site number (1 to
   * {@link MAX_CHECK_SITE}) that its kernel writes into {@link KernelContext.errorWords} with the
   * first bad value; the backend raises `context`'s error at its next read or sync.
   */
  indexCheckSite(context: IndexContext, size: number): number;
  /** Two device words where kernels flag a bad index: site number (0: none yet) and value. */
  readonly errorWords: GpuBuffer;
}

/** Site numbers fit in 20 bits (the scatterAdd kernel packs one beside its ranks). */
export const MAX_CHECK_SITE = 0xfffff;

/** A kernel argument's buffer as the WebGPU backend stores it. */
export const bufferOf = (arg: KernelArg): GpuBuffer => arg.buffer as GpuBuffer;

/** A strided destination inside a buffer (outputs, or a window of one for concat and pad). */
export interface Destination {
  buffer: GpuBuffer;
  dtype: DType;
  offset: number;
  strides: readonly number[];
}
