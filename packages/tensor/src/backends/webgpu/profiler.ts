/**
 * Kernel timing on the GPU with timestamp queries (the `timestamp-query` feature).
 *
 * While a {@link KernelProfiler} is attached to the recorder, every dispatch gets a compute pass
 * of its own whose beginning and end write a timestamp; before each submit the encoder resolves
 * its queries into a buffer and copies them to a mappable one, read once the work is done. The
 * difference of a pass's two timestamps is the time the device spent on that kernel, free of the
 * host-side costs (recording, submitting, waiting) that a wall-clock timing includes. One pass per
 * dispatch costs a little more than the recorder's single pass, so profile one representative run,
 * not the runs you time.
 *
 * Dawn quantizes timestamps (to about 65 µs) unless its `timestamp_quantization` toggle is off,
 * which `initWebGPU` does in Node; browsers keep their quantization.
 */
import { BUFFER_USAGE } from './buffers.js';

/** One timed kernel launch. */
export interface KernelTiming {
  /** The op that launched it and the op's input shapes, e.g. `matmul [64,1024] [1024,784]`. */
  label: string;
  /** The pipeline: kernel family and variant, e.g. `matmul|subgroup|f32|n4`. */
  kernel: string;
  /** Workgroups dispatched. */
  workgroups: number;
  /** Device time from the start to the end of the kernel's pass, in milliseconds. */
  ms: number;
}

/** Collects the timestamps of one profiling session (see the module comment). */
export class KernelProfiler {
  private readonly querySet: GPUQuerySet;
  private readonly resolved: GPUBuffer;
  /** Launches recorded into the current encoder. */
  private pending: Omit<KernelTiming, 'ms'>[] = [];
  private readonly batches: Promise<KernelTiming[]>[] = [];

  constructor(
    private readonly device: GPUDevice,
    /** Dispatches per encoder at most (the recorder submits before exceeding it). */
    capacity: number,
  ) {
    this.querySet = device.createQuerySet({ type: 'timestamp', count: 2 * capacity });
    this.resolved = device.createBuffer({
      size: 16 * capacity,
      usage: BUFFER_USAGE.QUERY_RESOLVE | BUFFER_USAGE.COPY_SRC,
    });
  }

  /** The timestamp writes of the next dispatch's pass. */
  next(label: string, kernel: string, workgroups: number): GPUComputePassTimestampWrites {
    const i = this.pending.length;
    this.pending.push({ label, kernel, workgroups });
    return { querySet: this.querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 };
  }

  /**
   * Adds the resolve and the copy of this encoder's timestamps to `encoder` (before it is
   * finished); `submitted` must be called once the encoder is submitted.
   */
  beforeSubmit(encoder: GPUCommandEncoder): { submitted(): void } | null {
    const launches = this.pending;
    if (launches.length === 0) return null;
    this.pending = [];
    const bytes = 16 * launches.length;
    const readback = this.device.createBuffer({
      size: bytes,
      usage: BUFFER_USAGE.MAP_READ | BUFFER_USAGE.COPY_DST,
    });
    encoder.resolveQuerySet(this.querySet, 0, 2 * launches.length, this.resolved, 0);
    encoder.copyBufferToBuffer(this.resolved, 0, readback, 0, bytes);
    return {
      submitted: () => {
        this.batches.push(
          readback.mapAsync(BUFFER_USAGE.MAP_READ).then(() => {
            const stamps = new BigUint64Array(readback.getMappedRange().slice(0));
            readback.destroy();
            return launches.map((launch, i) => ({
              ...launch,
              ms: Math.max(0, Number(stamps[2 * i + 1] - stamps[2 * i])) / 1e6,
            }));
          }),
        );
      },
    };
  }

  /** Every timing of the session, in launch order (after the last submit). */
  async results(): Promise<KernelTiming[]> {
    return (await Promise.all(this.batches)).flat();
  }

  /** Releases the query set. */
  destroy(): void {
    this.querySet.destroy();
    this.resolved.destroy();
  }
}
