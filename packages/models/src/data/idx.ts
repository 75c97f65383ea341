/**
 * The IDX file format of MNIST and Fashion-MNIST (plain or gzip): a 4-byte magic number
 * (0, 0, element type, number of dimensions), one big-endian uint32 size per dimension, then the
 * elements in row-major order, big-endian.
 */
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { FluxionError } from '@fluxion/tensor';

/** A decoded IDX file. */
export interface IdxArray {
  shape: number[];
  data: Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;
}

const TYPES: Record<number, { bytes: number; name: string }> = {
  8: { bytes: 1, name: 'uint8' },
  9: { bytes: 1, name: 'int8' },
  11: { bytes: 2, name: 'int16' },
  12: { bytes: 4, name: 'int32' },
  13: { bytes: 4, name: 'float32' },
  14: { bytes: 8, name: 'float64' },
};

/**
 * Decodes IDX bytes (gunzipping first when they start with the gzip magic 1f 8b). Wrong magic,
 * unknown element types and truncated data are clear errors naming `what` (e.g. the file path).
 *
 * @example
 * ```ts
 * const { shape, data } = decodeIdx(readFileSync('train-images-idx3-ubyte.gz'));
 * // shape [60000, 28, 28], data Uint8Array
 * ```
 */
export function decodeIdx(bytes: Uint8Array, what = 'IDX data'): IdxArray {
  let buf = bytes;
  if (buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b) {
    try {
      buf = gunzipSync(buf);
    } catch (e) {
      throw new FluxionError('readIdx', `${what}: corrupt gzip stream (${(e as Error).message})`);
    }
  }
  if (buf.length < 4 || buf[0] !== 0 || buf[1] !== 0) {
    const magic = Array.from(buf.slice(0, 4), (b) => b.toString(16).padStart(2, '0')).join(' ');
    throw new FluxionError(
      'readIdx',
      `${what}: wrong magic number ${magic || '(empty)'}; expected 00 00 <type> <rank>`,
    );
  }
  const type = TYPES[buf[2]];
  if (!type) throw new FluxionError('readIdx', `${what}: unknown element type 0x${buf[2].toString(16)}`);
  const rank = buf[3];
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const header = 4 + 4 * rank;
  if (buf.length < header)
    throw new FluxionError('readIdx', `${what}: truncated header (${buf.length} bytes)`);
  const shape = Array.from({ length: rank }, (_, i) => view.getUint32(4 + 4 * i));
  const count = shape.reduce((a, b) => a * b, 1);
  const need = header + count * type.bytes;
  if (buf.length < need) {
    throw new FluxionError(
      'readIdx',
      `${what}: truncated data: shape [${shape}] needs ${need} bytes, file has ${buf.length}`,
    );
  }
  const read = (i: number) => header + i * type.bytes;
  switch (type.name) {
    case 'uint8':
      return { shape, data: buf.slice(header, need) };
    case 'int8':
      return { shape, data: new Int8Array(buf.slice(header, need).buffer) };
    case 'int16':
      return { shape, data: Int16Array.from({ length: count }, (_, i) => view.getInt16(read(i))) };
    case 'int32':
      return { shape, data: Int32Array.from({ length: count }, (_, i) => view.getInt32(read(i))) };
    case 'float32':
      return { shape, data: Float32Array.from({ length: count }, (_, i) => view.getFloat32(read(i))) };
    default:
      return { shape, data: Float64Array.from({ length: count }, (_, i) => view.getFloat64(read(i))) };
  }
}

/** Reads and decodes an IDX file; a missing file is a clear error. @example `readIdx('t10k-labels-idx1-ubyte')` */
export function readIdx(path: string): IdxArray {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch {
    throw new FluxionError('readIdx', `cannot read '${path}': file not found or unreadable`);
  }
  return decodeIdx(bytes, path);
}
