/**
 * GPU buffer pooling. Creating and destroying GPU buffers is slow, and a training step frees and
 * allocates the same sizes over and over, so freed buffers wait in a pool keyed by size class and
 * are handed out again. Size classes are 1/8 of an octave apart (at most 12.5 % waste); the pool
 * destroys its oldest buffers when it retains more than `maxPooledBytes`.
 *
 * Which free buffer of a class is handed out matters for speed: a bind group names its buffers, and
 * creating one costs about as much as the dispatch itself on lavapipe. The pool therefore hands out
 * the free buffer with the lowest id, so that the buffer a request gets depends only on *which*
 * buffers are free, not on the order they were freed in. A training step that repeats the same ops
 * then gets the same buffers in the same roles every step, and the recorder's bind groups (cached
 * by buffer ids) are all reused; a last-in-first-out list instead permuted the buffers from step to
 * step, and most dispatches of a step made a new bind group.
 *
 * A buffer that the not-yet-submitted command encoder still uses cannot be destroyed (the submit
 * would fail validation), so the pool only destroys buffers whose last use was submitted; the
 * recorder tells it with {@link BufferPool.submitted}.
 */
import { FluxionError } from '../../errors.js';

/** GPUBufferUsage flags (numeric, so no global `GPUBufferUsage` is needed in Node). */
export const BUFFER_USAGE = {
  MAP_READ: 0x1,
  COPY_SRC: 0x4,
  COPY_DST: 0x8,
  UNIFORM: 0x40,
  STORAGE: 0x80,
  QUERY_RESOLVE: 0x200,
} as const;

/** A pooled storage buffer: the BackendBuffer handle of the WebGPU backend. */
export interface GpuBuffer {
  /** The GPU buffer (exchanged by {@link BufferPool.exchangeForIdle} before an upload). */
  gpu: GPUBuffer;
  /** A number unique to `gpu` (it moves with `gpu` in an exchange); bind groups are keyed by it. */
  id: number;
  /** Size of the GPU buffer in bytes (its size class). */
  readonly bytes: number;
  /** The recorder epoch (command-encoder generation) that last used it. */
  lastUse: number;
  /** Whether the buffer sits in the pool (freed). */
  pooled: boolean;
}

/** Rounds a byte count up to its size class (multiples of 16 bytes, 8 classes per octave). */
export function sizeClass(bytes: number): number {
  const b = Math.max(16, Math.ceil(bytes / 16) * 16);
  if (b <= 256) return b;
  const step = 2 ** (Math.floor(Math.log2(b)) - 3);
  return Math.ceil(b / step) * step;
}

/** Pool of storage buffers by size class. */
export class BufferPool {
  private readonly free = new Map<number, GpuBuffer[]>();
  /** Pooled buffers, oldest first, for trimming. */
  private readonly order = new Set<GpuBuffer>();
  private pooledBytes = 0;
  private liveBuffers = 0;
  private liveBytes = 0;
  /** Pooled buffers waiting to be destroyed once their last use is submitted. */
  private doomed: GpuBuffer[] = [];
  private nextId = 1;

  constructor(
    /** Creates a GPU buffer of exactly this many bytes (the backend adds error handling). */
    private readonly create: (bytes: number) => GPUBuffer,
    private readonly maxPooledBytes: number,
    /** Told before GPU buffers are destroyed (bind groups that reference them must go). */
    private readonly onDestroy: () => void = () => {},
  ) {}

  /** A buffer of at least `bytes` bytes, from the pool when one of its class is free. */
  acquire(bytes: number): GpuBuffer {
    const size = sizeClass(bytes);
    const list = this.free.get(size);
    let buffer: GpuBuffer | undefined;
    if (list && list.length > 0) {
      let best = 0;
      for (let i = 1; i < list.length; i++) if (list[i].id < list[best].id) best = i;
      buffer = list[best];
      list[best] = list[list.length - 1];
      list.pop();
      this.pooledBytes -= size;
      this.order.delete(buffer);
      buffer.pooled = false;
    } else {
      buffer = { gpu: this.create(size), id: this.nextId++, bytes: size, lastUse: -1, pooled: false };
    }
    this.liveBuffers++;
    this.liveBytes += size;
    return buffer;
  }

  /** Returns a buffer to the pool; trims the pool when it holds too many bytes. */
  release(buffer: GpuBuffer, currentEpoch: number): void {
    if (buffer.pooled) throw new FluxionError('free', 'a webgpu buffer was freed twice');
    this.liveBuffers--;
    this.liveBytes -= buffer.bytes;
    this.put(buffer, currentEpoch);
  }

  /**
   * Gives a handed-out buffer a GPU buffer that no unsubmitted work uses, so that a queue write
   * into it cannot overtake that work (queue writes run before the pending encoder is submitted).
   * The busy GPU buffer goes to the pool, where kernels may still reuse it in order.
   */
  exchangeForIdle(buffer: GpuBuffer, currentEpoch: number): void {
    const list = this.free.get(buffer.bytes) ?? [];
    for (let i = list.length - 1; i >= 0; i--) {
      const idle = list[i];
      if (idle.lastUse === currentEpoch) continue;
      [idle.gpu, buffer.gpu] = [buffer.gpu, idle.gpu];
      [idle.id, buffer.id] = [buffer.id, idle.id];
      [idle.lastUse, buffer.lastUse] = [buffer.lastUse, idle.lastUse];
      return;
    }
    const busy: GpuBuffer = { ...buffer };
    buffer.gpu = this.create(buffer.bytes);
    buffer.id = this.nextId++;
    buffer.lastUse = -1;
    this.put(busy, currentEpoch);
  }

  private put(buffer: GpuBuffer, currentEpoch: number): void {
    buffer.pooled = true;
    let list = this.free.get(buffer.bytes);
    if (!list) this.free.set(buffer.bytes, (list = []));
    list.push(buffer);
    this.order.add(buffer);
    this.pooledBytes += buffer.bytes;
    for (const victim of this.order) {
      if (this.pooledBytes <= this.maxPooledBytes) break;
      this.order.delete(victim);
      const vl = this.free.get(victim.bytes)!;
      vl.splice(vl.indexOf(victim), 1);
      this.pooledBytes -= victim.bytes;
      if (victim.lastUse === currentEpoch) this.doomed.push(victim);
      else this.destroy(victim);
    }
  }

  /** Called after each submit: buffers used only by submitted work may now be destroyed. */
  submitted(): void {
    for (const b of this.doomed) this.destroy(b);
    this.doomed = [];
  }

  private destroy(buffer: GpuBuffer): void {
    this.onDestroy();
    buffer.gpu.destroy();
  }

  /** Live (handed out) buffers and their bytes. */
  live(): { buffers: number; bytes: number } {
    return { buffers: this.liveBuffers, bytes: this.liveBytes };
  }

  /** Bytes waiting in the pool. */
  pooled(): number {
    return this.pooledBytes;
  }

  /** Destroys every pooled buffer. */
  clear(): void {
    for (const b of this.order) this.destroy(b);
    this.free.clear();
    this.order.clear();
    this.pooledBytes = 0;
  }
}
