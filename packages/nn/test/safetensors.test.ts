/**
 * safetensors: bit-exact round trips of every dtype (NaN payloads, −0, ±∞ included), the layout
 * other readers expect, and each kind of malformed file rejected with its own error.
 */
import { Dense, loadSafetensors, saveSafetensors } from '@fluxion/nn';
import { FluxionError, type Tensor, tensor } from '@fluxion/tensor';
import { describe, expect, it } from 'vitest';
import { values } from './helpers.js';

/** Builds a file from a header object and a data section, as a hostile writer might. */
function file(header: unknown, data: Uint8Array = new Uint8Array(0), lengthOverride?: bigint): Uint8Array {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, lengthOverride ?? BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

const bytesOf = async (t: Tensor) => new Uint8Array((await t.data()).buffer.slice(0));

describe('safetensors round trip', () => {
  it('is bit-exact for F32, F64, I32 and BOOL, with metadata', async () => {
    const nanPayload = new Float32Array(new Uint32Array([0x7fc12345]).buffer)[0];
    const tensors = {
      f32: tensor(new Float32Array([1.5, -0, Number.POSITIVE_INFINITY, nanPayload, 1e-45]), [5]),
      f64: tensor(new Float64Array([Math.PI, -1e308, Number.NaN, 5e-324]), [2, 2]),
      i32: tensor(new Int32Array([-(2 ** 31), 2 ** 31 - 1, 0]), [3, 1]),
      bool: tensor([[true, false, true]]),
      empty: tensor(new Float32Array(0), [0, 3]),
    };
    const bytes = await saveSafetensors(tensors, { format: 'pt', note: 'ünïcode' });
    const { tensors: back, metadata } = loadSafetensors(bytes);
    expect(metadata).toEqual({ format: 'pt', note: 'ünïcode' });
    for (const [name, t] of Object.entries(tensors)) {
      expect(back[name].shape).toEqual(t.shape);
      expect(back[name].dtype).toBe(t.dtype);
      expect(await bytesOf(back[name])).toEqual(await bytesOf(t));
    }
  });

  it('writes the standard layout: LE u64 header length, 8-aligned JSON, sorted contiguous data', async () => {
    const bytes = await saveSafetensors({ b: tensor([1, 2]), a: tensor(new Int32Array([7])) });
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect((8 + n) % 8).toBe(0);
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
    expect(header).toEqual({
      a: { dtype: 'I32', shape: [1], data_offsets: [0, 4] },
      b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] },
    });
    expect(Array.from(new Float32Array(bytes.slice(8 + n + 4).buffer))).toEqual([1, 2]);
  });

  it('round-trips a model state dict', async () => {
    const a = new Dense(4, 3, { seed: 1 });
    const b = new Dense(4, 3, { seed: 2 });
    b.loadStateDict(loadSafetensors(await saveSafetensors(a.stateDict())).tensors);
    expect(await values(b.weight)).toEqual(await values(a.weight));
  });
});

describe('safetensors rejects malformed files', () => {
  const f32 = (n: number) => new Uint8Array(4 * n);
  const cases: [string, Uint8Array, RegExp][] = [
    ['a file shorter than 8 bytes', new Uint8Array(5), /fewer than the 8-byte header length/],
    [
      'a header longer than the file',
      file({}, undefined, 1000n),
      /header length 1000 is larger than the file/,
    ],
    ['a header length beyond 2⁶³', file({}, undefined, 2n ** 63n + 5n), /is larger than the file/],
    ['a header that is not JSON', file('{"a": '), /not valid UTF-8 JSON/],
    ['a header that is not an object', file('[1, 2]'), /not a JSON object/],
    [
      'an unknown dtype',
      file({ x: { dtype: 'BF16', shape: [1], data_offsets: [0, 2] } }, new Uint8Array(2)),
      /tensor 'x' has unknown dtype "BF16"/,
    ],
    [
      'a negative shape',
      file({ x: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, f32(1)),
      /'x' has an invalid shape \[-1\]/,
    ],
    [
      'offsets out of range',
      file({ x: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, f32(2)),
      /'x' data_offsets \[0, 16\] lie outside the 8-byte data section/,
    ],
    [
      'reversed offsets',
      file({ x: { dtype: 'F32', shape: [0], data_offsets: [4, 0] } }, f32(1)),
      /'x' has invalid data_offsets \[4,0\]/,
    ],
    [
      'shape vs byte count',
      file({ x: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 8] } }, f32(2)),
      /'x' of shape \[2,2\] F32 needs 16 bytes, its data_offsets span 8/,
    ],
    [
      'overlapping tensors',
      file(
        {
          x: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
          y: { dtype: 'F32', shape: [2], data_offsets: [4, 12] },
        },
        f32(3),
      ),
      /'y' \[4, 12\] overlaps the previous tensor/,
    ],
    [
      'a gap between tensors',
      file(
        {
          x: { dtype: 'F32', shape: [1], data_offsets: [0, 4] },
          y: { dtype: 'F32', shape: [1], data_offsets: [8, 12] },
        },
        f32(3),
      ),
      /bytes \[4, 8\) before tensor 'y' belong to no tensor/,
    ],
    [
      'trailing bytes',
      file({ x: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, f32(2)),
      /data section has 8 bytes but the tensors cover 4/,
    ],
    ['non-string metadata', file({ __metadata__: { a: 1 } }), /__metadata__ entry 'a' is not a string/],
    ['an entry that is not an object', file({ x: 3 }), /entry 'x' is not an object/],
  ];
  it.each(cases)('%s', (_name, bytes, message) => {
    let error: unknown;
    try {
      loadSafetensors(bytes);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(FluxionError);
    expect((error as Error).message).toMatch(/^loadSafetensors: /);
    expect((error as Error).message).toMatch(message);
  });
});
