/**
 * Reading a whole file (Node only) with an error that says which file and why.
 */
import { readFileSync } from 'node:fs';
import { FluxionError } from '@fluxion/tensor';

/** The bytes of the file at `path`; a missing file or a folder is a FluxionError of `op`. */
export function readBytes(path: string, op: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EISDIR'
          ? 'it is a folder, not a file'
          : (e as Error).message;
    throw new FluxionError(op, `cannot read ${path}: ${why}`);
  }
}
