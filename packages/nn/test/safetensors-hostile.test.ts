/**
 * safetensors against hostile headers (issue #18, item 9): names that are special to JavaScript
 * objects (`__proto__`, `constructor`) round-trip as plain names, a name given twice in one header
 * object is rejected instead of silently keeping the last, and dtypes are looked up as own keys.
 */
import { loadSafetensors, saveSafetensors } from '@fluxion/nn';
import { FluxionError, tensor } from '@fluxion/tensor';
import { describe, expect, it } from 'vitest';

/** A file from a header written as raw JSON text (so it can hold what JSON.stringify never writes). */
function file(header: string, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  const json = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

/** Held in a variable so that indexing with it reads an own property, never the accessor. */
const PROTO = '__proto__';
const f32Bytes = (...xs: number[]) => new Uint8Array(new Float32Array(xs).buffer);
const entry = (dtype: string, offsets: [number, number] = [0, 4]) =>
  `{"dtype":"${dtype}","shape":[1],"data_offsets":[${offsets[0]},${offsets[1]}]}`;

function loadError(bytes: Uint8Array): Error {
  try {
    loadSafetensors(bytes);
  } catch (e) {
    expect(e).toBeInstanceOf(FluxionError);
    expect((e as Error).message).toMatch(/^loadSafetensors: /);
    return e as Error;
  }
  throw new Error('loadSafetensors accepted a hostile file');
}

describe('safetensors: names special to JavaScript objects', () => {
  it('reads a tensor named __proto__ as an own entry, leaving the prototype alone', async () => {
    const { tensors } = loadSafetensors(file(`{"__proto__":${entry('F32')}}`, f32Bytes(2.5)));
    expect(Object.keys(tensors)).toEqual(['__proto__']);
    expect(Object.hasOwn(tensors, '__proto__')).toBe(true);
    expect(Array.from(await tensors[PROTO].data())).toEqual([2.5]);
    expect(Object.getPrototypeOf(tensors)).toBeNull(); // no prototype was substituted
  });

  it('round-trips tensors named __proto__, constructor and toString', async () => {
    const input = { [PROTO]: tensor([1, 2]), constructor: tensor([3]), toString: tensor([4]) };
    expect(Object.keys(input)).toContain('__proto__');
    const { tensors } = loadSafetensors(await saveSafetensors(input as never));
    expect(Object.keys(tensors).sort()).toEqual(['__proto__', 'constructor', 'toString']);
    for (const [name, expected] of [
      [PROTO, [1, 2]],
      ['constructor', [3]],
      ['toString', [4]],
    ] as const) {
      expect(Array.from(await tensors[name].data())).toEqual(expected);
    }
  });

  it('keeps a __proto__ key in __metadata__, reading and writing', async () => {
    const read = loadSafetensors(file('{"__metadata__":{"__proto__":"x","a":"b"}}'));
    expect(Object.hasOwn(read.metadata, '__proto__')).toBe(true);
    expect(read.metadata[PROTO]).toBe('x');
    expect(read.metadata.a).toBe('b');

    const written = await saveSafetensors({ t: tensor([1]) }, { [PROTO]: 'y', epoch: '3' });
    const back = loadSafetensors(written).metadata;
    expect(Object.keys(back).sort()).toEqual(['__proto__', 'epoch']);
    expect(back[PROTO]).toBe('y');
  });
});

describe('safetensors: duplicate names', () => {
  it('rejects a tensor named twice (the last would win: F32 bits read as I32)', () => {
    const e = loadError(file(`{"x":${entry('F32')},"x":${entry('I32')}}`, f32Bytes(1)));
    expect(e.message).toMatch(/names tensor 'x' twice/);
  });

  it('compares names decoded: "x" and "\\u0078" are the same name', () => {
    const e = loadError(file(`{"x":${entry('F32')},"\\u0078":${entry('I32')}}`, f32Bytes(1)));
    expect(e.message).toMatch(/names tensor 'x' twice/);
  });

  it('rejects __proto__ twice and __metadata__ twice', () => {
    expect(
      loadError(file(`{"__proto__":${entry('F32')},"__proto__":${entry('F32')}}`, f32Bytes(1))).message,
    ).toMatch(/names tensor '__proto__' twice/);
    expect(loadError(file('{"__metadata__":{"a":"1"},"__metadata__":{"a":"2"}}')).message).toMatch(
      /'__metadata__' twice/,
    );
  });

  it('rejects a key repeated inside an entry or inside __metadata__', () => {
    const dtypeTwice = '{"x":{"dtype":"F32","dtype":"I32","shape":[1],"data_offsets":[0,4]}}';
    expect(loadError(file(dtypeTwice, f32Bytes(1))).message).toMatch(/repeats the key 'dtype'/);
    expect(loadError(file('{"__metadata__":{"a":"1","a":"2"}}')).message).toMatch(/repeats the key 'a'/);
  });

  it('is not fooled by quotes, braces and commas inside strings', () => {
    const tricky = String.raw`{"__metadata__":{"k":"{\"a\":1,\"a\":2}","k\"2":"[,\\"},"x":${entry('F32')}}`;
    const { metadata, tensors } = loadSafetensors(file(tricky, f32Bytes(7)));
    expect(metadata.k).toBe('{"a":1,"a":2}');
    expect(metadata['k"2']).toBe('[,\\');
    expect(Object.keys(tensors)).toEqual(['x']);
  });
});

describe('safetensors: dtypes are own keys of the format table', () => {
  it.each(['toString', 'constructor', '__proto__', 'hasOwnProperty', 'valueOf'])(
    'rejects dtype %s',
    (dtype) => {
      expect(loadError(file(`{"x":${entry(dtype)}}`, f32Bytes(1))).message).toMatch(
        new RegExp(`tensor 'x' has unknown dtype "${dtype}"`),
      );
    },
  );
});
