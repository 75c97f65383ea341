/**
 * The safetensors format (https://github.com/huggingface/safetensors), for state dicts and
 * optimizer state:
 *
 * ```
 * [8 bytes: header length n, unsigned little-endian]
 * [n bytes: JSON header, padded with spaces to a multiple of 8]
 * [data: each tensor's bytes, little-endian, row-major]
 * ```
 *
 * The header maps each tensor name to `{ dtype, shape, data_offsets: [begin, end] }` (offsets
 * relative to the data section) and may hold `__metadata__`, a map of strings. Fluxion writes
 * F32, F64, I32 and BOOL. Values are copied byte for byte, so a round trip is bit-exact (NaN
 * payloads and −0 included).
 *
 * Reading trusts nothing: a header longer than the file, invalid JSON, unknown dtypes, shapes that
 * disagree with the byte count, offsets out of range, overlapping or leaving gaps are all
 * FluxionErrors naming the tensor; no read goes out of bounds. Names are data, never object
 * keys with meaning: a tensor or metadata entry named `__proto__` (or `constructor`, …) round-trips
 * like any other (both directions use null-prototype maps), a name that occurs twice in one header
 * object is rejected (JSON.parse would silently keep the last), and dtypes are looked up as own keys
 * only (`"toString"` is not a dtype).
 */
import {
  allocArray,
  type BackendName,
  type DType,
  FluxionError,
  fmtShape,
  fromArray,
  type Tensor,
  type TypedArray,
} from '@fluxion/tensor';

const TO_FORMAT: Record<DType, string> = { float32: 'F32', float64: 'F64', int32: 'I32', bool: 'BOOL' };
const FROM_FORMAT: Readonly<Record<string, DType>> = Object.freeze(
  Object.assign(Object.create(null), { F32: 'float32', F64: 'float64', I32: 'int32', BOOL: 'bool' }),
);
const ITEM_BYTES: Record<DType, number> = { float32: 4, float64: 8, int32: 4, bool: 1 };
/** Header size limit (as the reference implementation: 100 MB). */
const MAX_HEADER_BYTES = 100_000_000;

const littleEndianHost = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** The bytes of a typed array in little-endian order (a copy). */
function littleEndianBytes(data: TypedArray): Uint8Array {
  const bytes = new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
  if (!littleEndianHost) swapBytes(bytes, data.BYTES_PER_ELEMENT);
  return bytes;
}

/** Reverses the byte order of each `width`-byte element, in place. */
function swapBytes(bytes: Uint8Array, width: number): void {
  if (width === 1) return;
  for (let i = 0; i < bytes.length; i += width) bytes.subarray(i, i + width).reverse();
}

/** Tensors and string metadata, what a safetensors file holds. */
export interface SafetensorsContent {
  /** name → tensor; a null-prototype object, so any name (`__proto__` included) is an own key. */
  tensors: Record<string, Tensor>;
  /** key → string; a null-prototype object like `tensors`. */
  metadata: Record<string, string>;
}

/** An empty object without a prototype: assigning any key (`__proto__` included) makes an own property. */
function nullMap<T>(): Record<string, T> {
  return Object.create(null) as Record<string, T>;
}

/**
 * Throws if any JSON object in `json` (already known to be valid JSON) names a key twice: JSON.parse
 * keeps the last silently, so a second entry could replace a tensor's dtype or offsets unseen. Keys
 * are compared decoded (`"a"` and `"\u0061"` are the same key).
 */
function rejectDuplicateKeys(json: string): void {
  const stack: { keys: Set<string> | null; expectKey: boolean }[] = [];
  for (let i = 0; i < json.length; i++) {
    const c = json[i];
    if (c === '{') stack.push({ keys: new Set(), expectKey: true });
    else if (c === '[') stack.push({ keys: null, expectKey: false });
    else if (c === '}' || c === ']') stack.pop();
    else if (c === ',') {
      const top = stack[stack.length - 1];
      if (top?.keys) top.expectKey = true;
    } else if (c === '"') {
      const start = i;
      for (i++; json[i] !== '"'; i++) if (json[i] === '\\') i++;
      const top = stack[stack.length - 1];
      if (top?.keys && top.expectKey) {
        const key = JSON.parse(json.slice(start, i + 1)) as string;
        if (top.keys.has(key)) {
          fail(
            stack.length === 1
              ? `the header names tensor '${key}' twice`
              : `the header repeats the key '${key}' inside an entry`,
          );
        }
        top.keys.add(key);
        top.expectKey = false;
      }
    }
  }
}

/**
 * Serialises named tensors (and optional string metadata) to safetensors bytes. Reads every
 * tensor back from its backend, hence async. Tensors are written in name order.
 *
 * Args:
 *   tensors: name → tensor (float32, float64, int32 or bool).
 *   metadata: extra strings stored under `__metadata__`.
 *
 * @example
 * ```ts
 * const bytes = await saveSafetensors(model.stateDict(), { epoch: '3' });
 * await fs.writeFile('model.safetensors', bytes);
 * ```
 */
export async function saveSafetensors(
  tensors: Record<string, Tensor>,
  metadata: Record<string, string> = {},
): Promise<Uint8Array> {
  const header = nullMap<unknown>();
  if (Object.keys(metadata).length > 0) {
    const meta = nullMap<string>();
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string')
        throw new FluxionError('saveSafetensors', `metadata '${k}' must be a string`);
      meta[k] = v;
    }
    header.__metadata__ = meta;
  }
  const names = Object.keys(tensors).sort();
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const name of names) {
    if (name === '__metadata__')
      throw new FluxionError('saveSafetensors', `'__metadata__' cannot name a tensor`);
    const t = tensors[name];
    const bytes = littleEndianBytes(await t.data());
    header[name] = {
      dtype: TO_FORMAT[t.dtype],
      shape: [...t.shape],
      data_offsets: [offset, offset + bytes.length],
    };
    chunks.push(bytes);
    offset += bytes.length;
  }
  let json = JSON.stringify(header);
  const headerBytes0 = new TextEncoder().encode(json);
  json += ' '.repeat((8 - (headerBytes0.length % 8)) % 8);
  const headerBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let pos = 8 + headerBytes.length;
  for (const chunk of chunks) {
    out.set(chunk, pos);
    pos += chunk.length;
  }
  return out;
}

interface Entry {
  name: string;
  dtype: DType;
  shape: number[];
  begin: number;
  end: number;
}

const fail = (message: string): never => {
  throw new FluxionError('loadSafetensors', message);
};

function parseEntry(name: string, value: unknown, dataBytes: number): Entry {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return fail(`entry '${name}' is not an object`);
  }
  const { dtype, shape, data_offsets: offsets } = value as Record<string, unknown>;
  if (typeof dtype !== 'string' || !Object.hasOwn(FROM_FORMAT, dtype)) {
    return fail(
      `tensor '${name}' has unknown dtype ${JSON.stringify(dtype)} (supported: F32, F64, I32, BOOL)`,
    );
  }
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    return fail(`tensor '${name}' has an invalid shape ${JSON.stringify(shape)}`);
  }
  if (
    !Array.isArray(offsets) ||
    offsets.length !== 2 ||
    !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) ||
    offsets[0] > offsets[1]
  ) {
    return fail(`tensor '${name}' has invalid data_offsets ${JSON.stringify(offsets)}`);
  }
  const [begin, end] = offsets as [number, number];
  if (end > dataBytes) {
    return fail(
      `tensor '${name}' data_offsets [${begin}, ${end}] lie outside the ${dataBytes}-byte data section`,
    );
  }
  const type = FROM_FORMAT[dtype];
  const expected = shape.reduce((n: number, d: number) => n * d, 1) * ITEM_BYTES[type];
  if (expected !== end - begin) {
    return fail(
      `tensor '${name}' of shape ${fmtShape(shape)} ${dtype} needs ${expected} bytes, its data_offsets span ${end - begin}`,
    );
  }
  return { name, dtype: type, shape, begin, end };
}

/**
 * Parses safetensors bytes into tensors on `backend` (default: the current one) and the string
 * metadata. Every structural problem is a FluxionError naming what is wrong.
 *
 * Args:
 *   bytes: the file's contents.
 *   options.backend: where to create the tensors.
 *
 * @example
 * ```ts
 * const { tensors } = loadSafetensors(await fs.readFile('model.safetensors'));
 * model.loadStateDict(tensors);
 * ```
 */
export function loadSafetensors(
  bytes: Uint8Array,
  options: { backend?: BackendName } = {},
): SafetensorsContent {
  if (!(bytes instanceof Uint8Array)) fail('expected a Uint8Array');
  if (bytes.length < 8) fail(`the file has ${bytes.length} bytes, fewer than the 8-byte header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getBigUint64(0, true);
  if (headerLength > BigInt(bytes.length - 8)) {
    fail(`the header length ${headerLength} is larger than the file (${bytes.length} bytes)`);
  }
  const n = Number(headerLength);
  if (n > MAX_HEADER_BYTES) fail(`the header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  let header: unknown;
  let json = '';
  try {
    json = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n));
    header = JSON.parse(json);
  } catch {
    fail('the header is not valid UTF-8 JSON');
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header))
    fail('the header is not a JSON object');
  rejectDuplicateKeys(json);
  const dataStart = 8 + n;
  const dataBytes = bytes.length - dataStart;
  const metadata = nullMap<string>();
  const entries: Entry[] = [];
  for (const [name, value] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof value !== 'object' || value === null || Array.isArray(value))
        fail('__metadata__ is not an object');
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(`__metadata__ entry '${k}' is not a string`);
        metadata[k] = v as string;
      }
    } else entries.push(parseEntry(name, value, dataBytes));
  }
  // The data section must be covered exactly: sorted by offset, each tensor starts where the last ended.
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  for (const e of sorted) {
    if (e.begin < cursor)
      fail(`tensor '${e.name}' [${e.begin}, ${e.end}] overlaps the previous tensor (ends at ${cursor})`);
    if (e.begin > cursor)
      fail(`the bytes [${cursor}, ${e.begin}) before tensor '${e.name}' belong to no tensor`);
    cursor = e.end;
  }
  if (cursor !== dataBytes) fail(`the data section has ${dataBytes} bytes but the tensors cover ${cursor}`);
  const tensors = nullMap<Tensor>();
  for (const e of entries) {
    const raw = bytes.slice(dataStart + e.begin, dataStart + e.end); // a copy, aligned at 0
    swapBytes(raw, littleEndianHost ? 1 : ITEM_BYTES[e.dtype]);
    const size = e.shape.reduce((a, b) => a * b, 1);
    const typed = allocArray(e.dtype, size);
    new Uint8Array(typed.buffer).set(raw);
    if (e.dtype === 'bool') for (let i = 0; i < size; i++) typed[i] = typed[i] ? 1 : 0;
    tensors[e.name] = fromArray(typed, e.shape, e.dtype, options.backend);
  }
  return { tensors, metadata };
}
