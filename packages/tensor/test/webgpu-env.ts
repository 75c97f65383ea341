/**
 * The WebGPU test environment: initialises the backend once per test file and says why it is
 * missing. Suites use `describe.skipIf(!gpu.backend)(`name${skipNote(gpu)}`)`; with
 * `FLUXION_REQUIRE_WEBGPU=1` (CI) a missing adapter throws here instead, so the suite fails rather
 * than skipping.
 *
 * `pnpm test` runs the WebGPU suites once per adapter (lavapipe, then SwiftShader; see
 * `scripts/test.mjs`). Each run names the adapter it means in `FLUXION_WEBGPU_EXPECT` (a word of
 * the adapter's vendor, architecture, device or description, e.g. `swiftshader`), and
 * initialisation fails when the adapter found is another one, so a misconfigured run cannot test
 * the same adapter twice. The adapter's name ends every suite name.
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
 * The words an adapter is known by (vendor, architecture, device, description), lower case.
 *
 * @example
 * ```ts
 * adapterWords(backend); // 'google swiftshader swiftshader-device-subzero- swiftshader driver 5.0.0'
 * ```
 */
export function adapterWords(backend: WebGPUBackend): string {
  const { vendor, architecture, device, description } = backend.adapterInfo;
  return [vendor, architecture, device, description].join(' ').toLowerCase();
}

/**
 * A short name of the adapter for suite names: its description, else vendor and architecture.
 *
 * @example
 * ```ts
 * adapterName(backend); // 'llvmpipe: Mesa 25.0.7-2~bpo12+1 (LLVM 15.0.6) 0.0.1'
 * ```
 */
export function adapterName(backend: WebGPUBackend): string {
  const { vendor, architecture, description } = backend.adapterInfo;
  return description || `${vendor} ${architecture}`.trim() || 'unnamed adapter';
}

/**
 * Fails when `FLUXION_WEBGPU_EXPECT` names another adapter than the one found.
 *
 * @example
 * ```ts
 * checkExpectedAdapter(backend, 'swiftshader'); // throws on lavapipe
 * ```
 */
export function checkExpectedAdapter(backend: WebGPUBackend, expected: string | undefined): void {
  if (!expected) return;
  if (!adapterWords(backend).includes(expected.toLowerCase())) {
    throw new Error(
      `FLUXION_WEBGPU_EXPECT=${expected}, but the adapter found is '${adapterName(backend)}' (${adapterWords(backend)}): check VK_ICD_FILENAMES`,
    );
  }
}

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
      checkExpectedAdapter(backend, process.env.FLUXION_WEBGPU_EXPECT);
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

/** A suffix for suite names: the adapter the suite runs on, or why it is skipped. */
export const skipNote = (gpu: WebGPUEnv): string =>
  gpu.backend ? ` [${adapterName(gpu.backend)}]` : ` (skipped: ${gpu.reason})`;
