/**
 * The WebGPU adapter every engine of a run shares: `navigator.gpu` from the `webgpu` package
 * (Dawn) in Node, or the browser's own, and a short name for the adapter used in results files.
 *
 * Dawn's instance (what `create()` returns) is kept in a module-level variable for the life of the
 * process: if it were garbage-collected, Dawn would tear down the instance under live devices and
 * the process would crash a few dispatches later (see DESIGN.md).
 */
import { throttleNativePolling, withPreciseTimestamps } from '@fluxion/tensor';

/** The adapter a run uses. */
export interface AdapterSetup {
  /** Short name for file names and tables: `lavapipe`, `swiftshader`, `nvidia-h200`, … */
  name: string;
  /** Vendor, architecture, device and description as the adapter reports them. */
  info: Record<string, string>;
  /** Optional features the adapter offers (e.g. `timestamp-query`). */
  features: string[];
}

// Keeps Dawn's instances alive for the life of the process (see the module comment).
const dawnInstances: GPU[] = [];

/**
 * `llvmpipe: Mesa 25.0.7 (LLVM 15.0.6)` → `lavapipe`; `NVIDIA H200` → `nvidia-h200`: a stable short
 * name for an adapter from what it reports.
 */
export function adapterName(info: Record<string, string>): string {
  const text = `${info.vendor ?? ''} ${info.device ?? ''} ${info.description ?? ''}`.toLowerCase();
  if (text.includes('llvmpipe') || text.includes('lavapipe')) return 'lavapipe';
  if (text.includes('swiftshader')) return 'swiftshader';
  const model = (info.description || info.device || info.vendor || 'unknown-adapter').toLowerCase();
  return model
    .replace(/\(.*?\)/g, ' ')
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .split('-')
    .slice(0, 4)
    .join('-');
}

/**
 * Exposes `navigator.gpu` (with a `userAgent`, which jax-js needs) and WebGPU's global constants,
 * installs the gentle polling of Dawn's events for every engine, then asks for the default
 * adapter. Returns null, with the reason on stderr, when there is none.
 */
export async function setupWebGPU(): Promise<AdapterSetup | null> {
  process.env.XDG_RUNTIME_DIR ??= '/tmp';
  // Every engine of the process gets Dawn's gentler event polling (polling.ts), not only Fluxion,
  // which would otherwise install it when it starts: with Dawn's busy polling loop a WebGPU engine
  // on lavapipe runs about twice as slow, and engines must be compared on equal terms whether they
  // share a process or not (--isolate).
  throttleNativePolling();
  const g = globalThis as { navigator?: { gpu?: GPU; userAgent?: string } };
  if (!g.navigator?.gpu) {
    let webgpu: { create(options: string[]): GPU; globals: object };
    try {
      webgpu = (await import('webgpu')) as typeof webgpu;
    } catch (e) {
      console.error(`bench: no WebGPU (the 'webgpu' package did not load: ${(e as Error).message})`);
      return null;
    }
    Object.assign(globalThis, webgpu.globals);
    // Precise timestamps for Fluxion's kernel profiler (Dawn quantizes them to 65 µs otherwise).
    const dawnInstance = webgpu.create(withPreciseTimestamps([]));
    dawnInstances.push(dawnInstance);
    Object.defineProperty(globalThis, 'navigator', {
      value: { ...(g.navigator ?? {}), gpu: dawnInstance, userAgent: g.navigator?.userAgent ?? 'node' },
      configurable: true,
      writable: true,
    });
  }
  const adapter = await g.navigator!.gpu!.requestAdapter();
  if (!adapter) {
    console.error('bench: WebGPU has no adapter here; only the CPU engines run');
    return null;
  }
  const raw = adapter.info;
  const info: Record<string, string> = {};
  for (const key of ['vendor', 'architecture', 'device', 'description'] as const) {
    if (raw[key]) info[key] = raw[key];
  }
  return { name: adapterName(info), info, features: [...adapter.features].map(String).sort() };
}
