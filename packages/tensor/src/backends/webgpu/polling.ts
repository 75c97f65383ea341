/**
 * Gentler event polling for Dawn's Node binding (the `webgpu` package).
 *
 * While any GPU promise is pending (`mapAsync`, `onSubmittedWorkDone`, `popErrorScope`), the
 * binding calls `wgpuInstanceProcessEvents` from a `setImmediate` loop, which keeps one CPU core
 * busy for as long as the GPU works. On a software adapter such as lavapipe, whose "GPU" is the
 * same CPU, that core is taken from the shader threads: on a 2-core machine the seed GAN's
 * training step ran about 1.5× slower with the busy loop than without it.
 *
 * {@link throttleNativePolling} wraps the global `setImmediate` so that native callbacks (the
 * binding's; JavaScript callbacks are never touched) run at once for the first few polls of a
 * wait, which keeps short waits short, and then once a millisecond.
 */

/** Polls of one wait that run immediately before polling slows down. */
const FAST_POLLS = 16;
/** A gap between native polls longer than this (ms) starts a new wait. */
const NEW_WAIT_GAP_MS = 2;
/** The interval (ms) of the slowed-down polls. */
const SLOW_POLL_MS = 1;

type Scheduler = (callback: (...args: unknown[]) => void, ...args: unknown[]) => unknown;

let installed = false;

const isNative = (f: unknown): boolean =>
  typeof f === 'function' && Function.prototype.toString.call(f).includes('[native code]');

/**
 * Installs the throttle once per process (Node only; a no-op elsewhere). Returns whether it is
 * installed.
 *
 * @example
 * ```ts
 * throttleNativePolling(); // initWebGPU() calls this in Node unless `gentlePolling: false`
 * ```
 */
export function throttleNativePolling(): boolean {
  const g = globalThis as unknown as { setImmediate?: Scheduler; setTimeout: Scheduler };
  const original = g.setImmediate;
  if (installed || !original) return installed;
  let streak = 0;
  let last = Number.NEGATIVE_INFINITY;
  const throttled: Scheduler = (callback, ...args) => {
    if (isNative(callback)) {
      const now = performance.now();
      streak = now - last > NEW_WAIT_GAP_MS ? 1 : streak + 1;
      last = now;
      if (streak > FAST_POLLS) return g.setTimeout(callback, SLOW_POLL_MS, ...args);
    }
    return original(callback, ...args);
  };
  // Keep the original's properties (Node's util.promisify.custom, for one).
  Object.defineProperties(throttled, Object.getOwnPropertyDescriptors(original));
  g.setImmediate = throttled;
  installed = true;
  return true;
}
