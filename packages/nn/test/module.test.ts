/**
 * The module system: automatic discovery of parameters, buffers and submodules (fields, arrays,
 * Sequential), dotted names, state dicts and their errors, train/eval, apply, freezing, moving
 * dtypes, the printed summary, and memory (parameters survive scopes, dispose frees them).
 */
import {
  BatchNorm1d,
  Buffer,
  Conv2d,
  Dense,
  Dropout,
  Flatten,
  MaxPool2d,
  Module,
  Parameter,
  ReLU,
  Sequential,
  summary,
} from '@fluxion/nn';
import {
  add,
  FluxionError,
  memoryStats,
  ones,
  randn,
  scope,
  type Tensor,
  tensor,
  zeros,
} from '@fluxion/tensor';
import { describe, expect, it } from 'vitest';
import { values } from './helpers.js';

class Encoder extends Module {
  fc1 = new Dense(4, 8, { seed: 1 });
  norm = new BatchNorm1d(8);
  fc2 = new Dense(8, 2, { seed: 2 });
  forward(x: Tensor): Tensor {
    return this.fc2.forward(this.norm.forward(this.fc1.forward(x)));
  }
}

class Model extends Module {
  enc = new Encoder();
  heads = [new Dense(2, 1, { seed: 3 }), new Dense(2, 3, { seed: 4 })];
  scale = new Parameter(ones([1]));
  steps = new Buffer(zeros([]));
  _notAChild = new Dense(1, 1);
  forward(x: Tensor): Tensor {
    return add(this.heads[0].forward(this.enc.forward(x)), this.scale);
  }
}

describe('Module discovery', () => {
  it('finds parameters, buffers and submodules in field order with dotted names', () => {
    const m = new Model();
    expect(m.namedParameters().map(([n]) => n)).toEqual([
      'enc.fc1.weight',
      'enc.fc1.bias',
      'enc.norm.weight',
      'enc.norm.bias',
      'enc.fc2.weight',
      'enc.fc2.bias',
      'heads.0.weight',
      'heads.0.bias',
      'heads.1.weight',
      'heads.1.bias',
      'scale',
    ]);
    expect(m.namedBuffers().map(([n]) => n)).toEqual([
      'enc.norm.runningMean',
      'enc.norm.runningVar',
      'steps',
    ]);
    expect(m.namedChildren().map(([n]) => n)).toEqual(['enc', 'heads.0', 'heads.1']);
    expect(m.namedModules().map(([n]) => n)).toEqual([
      '',
      'enc',
      'enc.fc1',
      'enc.norm',
      'enc.fc2',
      'heads.0',
      'heads.1',
    ]);
    expect(m.parameterCount()).toBe(40 + 16 + 18 + 3 + 9 + 1);
    expect(m.parameters().every((p) => p.requiresGrad)).toBe(true);
  });

  it('names Sequential layers by index and lists a shared layer once', () => {
    const shared = new Dense(3, 3, { seed: 0 });
    const seq = new Sequential(shared, new ReLU(), shared, new Dense(3, 1));
    expect(seq.namedParameters().map(([n]) => n)).toEqual(['0.weight', '0.bias', '3.weight', '3.bias']);
    expect(Object.keys(seq.stateDict())).toEqual(['0.weight', '0.bias', '3.weight', '3.bias']);
  });

  it('keeps parameters and buffers out of scopes; dispose releases them', () => {
    const before = memoryStats().liveTensors;
    const m = scope(() => new Model());
    expect(m.parameters().every((p) => !p.isDisposed)).toBe(true);
    expect(m.buffers().every((b) => !b.isDisposed)).toBe(true);
    scope(() => {
      m.forward(randn([3, 4]));
    });
    m.dispose();
    m._notAChild.dispose();
    expect(m.parameters().every((p) => p.isDisposed)).toBe(true);
    expect(memoryStats().liveTensors).toBe(before);
  });
});

describe('state dicts', () => {
  it('round-trip parameters and buffers into a fresh model', async () => {
    const a = new Model();
    a.enc.norm.forward(randn([5, 8], { seed: 1 })); // moves the running statistics
    const b = new Model();
    const sd = a.stateDict();
    expect(Object.keys(sd)).toContain('enc.norm.runningVar');
    const result = b.loadStateDict(sd);
    expect(result).toEqual({ missingKeys: [], unexpectedKeys: [] });
    for (const [name, t] of Object.entries(b.stateDict()))
      expect(await values(t)).toEqual(await values(sd[name]));
    const x = randn([3, 4], { seed: 2 });
    a.eval();
    b.eval();
    expect(await values(b.forward(x))).toEqual(await values(a.forward(x)));
  });

  it('report missing, unexpected and mis-shaped entries together and change nothing', async () => {
    const m = new Dense(2, 3, { seed: 0 });
    const original = await values(m.weight);
    const bad = { weight: zeros([3, 3]), extra: zeros([1]) };
    let error: unknown;
    try {
      m.loadStateDict(bad);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(FluxionError);
    const message = (error as Error).message;
    expect(message).toMatch(/^loadStateDict: /);
    expect(message).toContain('missing keys: bias');
    expect(message).toContain('unexpected keys: extra');
    expect(message).toContain("'weight' has shape [3,3], the module expects [3,2]");
    expect(await values(m.weight)).toEqual(original);
  });

  it('non-strict loading fills what matches and reports the rest', async () => {
    const m = new Dense(2, 3, { seed: 0 });
    const w = ones([3, 2]);
    const result = m.loadStateDict({ weight: w, other: zeros([1]) }, { strict: false });
    expect(result).toEqual({ missingKeys: ['bias'], unexpectedKeys: ['other'] });
    expect(await values(m.weight)).toEqual(Array(6).fill(1));
    expect(() => m.loadStateDict({ weight: ones([2, 2]) }, { strict: false })).toThrow(
      /'weight' has shape \[2,2\]/,
    );
    expect(() => m.loadStateDict({ weight: ones([3, 2], { dtype: 'bool' }), bias: zeros([3]) })).toThrow(
      /'weight' has dtype bool, the module expects float32/,
    );
  });

  it('converts float dtypes while loading', async () => {
    const m = new Dense(1, 1);
    m.loadStateDict({
      weight: tensor([[0.5]], { dtype: 'float64' }),
      bias: tensor([2], { dtype: 'float64' }),
    });
    expect(m.weight.dtype).toBe('float32');
    expect(await values(m.forward(tensor([[2]])))).toEqual([3]);
  });
});

describe('modes and traversal', () => {
  it('train() / eval() reach every descendant', () => {
    const m = new Sequential(new Dense(2, 2), new Dropout(0.5), new Sequential(new BatchNorm1d(2)));
    m.eval();
    expect(m.modules().every((x) => !x.training)).toBe(true);
    m.train();
    expect(m.modules().every((x) => x.training)).toBe(true);
  });

  it('apply visits children before parents; setRequiresGrad freezes', () => {
    const m = new Model();
    const order: string[] = [];
    m.apply((x) => order.push(x.constructor.name));
    expect(order.at(-1)).toBe('Model');
    expect(order.indexOf('Dense')).toBeLessThan(order.indexOf('Encoder'));
    m.enc.setRequiresGrad(false);
    expect(m.parameterCount(true)).toBe(3 + 9 + 1);
  });

  it('toDtype casts parameters and buffers; to() to the same backend is a no-op', async () => {
    const m = new Model();
    const w = m.enc.fc1.weight;
    await m.to('cpu');
    expect(m.enc.fc1.weight).toBe(w);
    m.toDtype('float64');
    expect(m.parameters().every((p) => p.dtype === 'float64' && p.requiresGrad)).toBe(true);
    expect(m.buffers().every((b) => b.dtype === 'float64')).toBe(true);
    expect(w.isDisposed).toBe(true);
    expect(m.forward(randn([2, 4], { dtype: 'float64' })).dtype).toBe('float64');
  });
});

describe('summary', () => {
  it('prints layers, output shapes and parameter counts, and restores training mode', () => {
    const model = new Sequential(
      new Conv2d(1, 4, 3, { padding: 1 }),
      new ReLU(),
      new MaxPool2d(2),
      new Flatten(),
      new Dense(64, 10),
    );
    const text = summary(model, [2, 1, 8, 8], { print: false });
    const lines = text.split('\n');
    const row = (name: string) => lines.find((l) => l.startsWith(name)) ?? '';
    expect(row('0 (Conv2d)')).toMatch(/\[2,4,8,8\]\s+40$/);
    expect(row('2 (MaxPool2d)')).toMatch(/\[2,4,4,4\]\s+0$/);
    expect(row('3 (Flatten)')).toMatch(/\[2,64\]\s+0$/);
    expect(row('4 (Dense)')).toMatch(/\[2,10\]\s+650$/);
    expect(text).toContain('Total params: 690');
    expect(text).toContain('Trainable params: 690');
    expect(model.training).toBe(true);
    expect(Object.hasOwn(model.layers[0], 'forward')).toBe(false);
  });

  it('indents nested modules and counts non-trainable parameters', () => {
    const m = new Model();
    m.scale.requiresGrad = false;
    const text = m.summary([3, 4], { print: false });
    expect(text).toMatch(/enc \(Encoder\)\s+\[3,2\]\s+0/);
    expect(text).toMatch(/ {2}enc\.fc1 \(Dense\)\s+\[3,8\]\s+40/);
    expect(text).toContain('Non-trainable params: 1');
  });
});
