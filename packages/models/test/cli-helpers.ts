/**
 * What the CLI tests share: an in-process `fluxion` runner that captures what it prints, temporary
 * folders, file digests, a checkpoint-metadata editor, and the backend-start counter.
 *
 * `vi.mock` calls are hoisted, so each test file keeps its own `vi.mock('@fluxion/tensor', ...)`
 * and calls `countStarts` inside the factory (imported there with `await import`). This module
 * imports nothing from `@fluxion/tensor` at load time, so the factory can load it while the
 * module it mocks is still being resolved.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { vi } from 'vitest';

/**
 * `real` (the real `@fluxion/tensor`) with its backend starters wrapped to count each call in
 * `starts`: argument errors must come before any.
 */
export function countStarts<
  T extends {
    setBackend: (...a: never[]) => unknown;
    initWebGPU: (...a: never[]) => unknown;
    useBestBackend: (...a: never[]) => unknown;
  },
>(real: T, starts: { count: number }): T {
  const counted =
    <A extends unknown[], R>(f: (...a: A) => R) =>
    (...a: A): R => {
      starts.count++;
      return f(...a);
    };
  return {
    ...real,
    setBackend: counted(real.setBackend),
    initWebGPU: counted(real.initWebGPU),
    useBestBackend: counted(real.useBestBackend),
  };
}

/** A function making a new temporary folder named `prefix` plus random characters on each call. */
export const tempDirs = (prefix: string) => () => mkdtempSync(join(tmpdir(), prefix));

/** A file's SHA-256 (comparing megabytes with toEqual takes vitest seconds). */
export const digest = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

/** Runs the CLI in this process; returns its exit code and what it printed. */
export async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const { runCli } = await import('../src/cli.js');
  const out: string[] = [];
  const err: string[] = [];
  const log = vi.spyOn(console, 'log').mockImplementation((m: string) => out.push(m));
  const error = vi.spyOn(console, 'error').mockImplementation((m: string) => err.push(m));
  try {
    return { code: await runCli(args), out: out.join('\n'), err: err.join('\n') };
  } finally {
    log.mockRestore();
    error.mockRestore();
  }
}

/** The checkpoint file with its metadata changed by `edit` (the header rewritten, tensors kept). */
export function editMeta(
  bytes: Uint8Array,
  edit: (meta: Record<string, unknown>) => Record<string, unknown>,
): Uint8Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const length = Number(view.getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + length)));
  header.__metadata__['fluxion.checkpoint'] = JSON.stringify(
    edit(JSON.parse(header.__metadata__['fluxion.checkpoint'])),
  );
  let text = JSON.stringify(header);
  text += ' '.repeat((8 - (text.length % 8)) % 8);
  const head = new TextEncoder().encode(text);
  const out = new Uint8Array(8 + head.length + bytes.length - 8 - length);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  out.set(bytes.subarray(8 + length), 8 + head.length);
  return out;
}
