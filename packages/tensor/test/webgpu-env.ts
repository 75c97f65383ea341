/**
 * The WebGPU test environment: initialises the backend once per test file and says why it is
 * missing. Suites use `describe.skipIf(!gpu.backend)`; with `FLUXION_REQUIRE_WEBGPU=1` (CI) a
 * missing adapter throws here instead, so the suite fails rather than skipping.
 *
 * The CPU backend stays current after initialisation: tests name the backend they create on.
 */
import { FluxionError, initWebGPU, setBackend, type WebGPUBackend } from '@fluxion/tensor';

/** The backend, or the reason there is none. */
export interface WebGPUEnv {
  backend?: WebGPUBackend;
  reason?: string;
}

let env: Promise<WebGPUEnv> | null = null;

/**
 * Initialises WebGPU (once) and switches back to the CPU backend.
 *
 * @example
 * ```ts
 * const gpu = await webgpuEnv();
 * describe.skipIf(!gpu.backend)(`webgpu${skipNote(gpu)}`, () => { … });
 * ```
 */
export function webgpuEnv(): Promise<WebGPUEnv> {
  env ??= initWebGPU()
    .then((backend): WebGPUEnv => {
      setBackend('cpu');
      return { backend };
    })
    .catch((e: Error): WebGPUEnv => {
      // Only "no WebGPU here" skips; any other failure of initialisation is a bug and fails.
      const unavailable = e instanceof FluxionError && e.op === 'initWebGPU';
      if (!unavailable || process.env.FLUXION_REQUIRE_WEBGPU === '1') throw e;
      return { reason: e.message.split('\n')[0] };
    });
  return env;
}

/** A suffix for suite names explaining a skip. */
export const skipNote = (gpu: WebGPUEnv): string => (gpu.backend ? '' : ` (skipped: ${gpu.reason})`);
