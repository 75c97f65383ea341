/**
 * Packed rows of names (several items per row, `packedLineBatches`): the batches hold each item
 * once per epoch with the right positions, segments and targets, resume mid-epoch exactly, and
 * fill their rows; the character Transformer gives a packed batch exactly the loss and the
 * gradients that the same items give one per row (positions restart at each item, attention stays
 * within it); a recurrent model refuses packed rows.
 */
import { crossEntropy } from '@fluxion/nn';
import { FluxionError, reshape, scope, setBackend } from '@fluxion/tensor';
import { beforeAll, describe, expect, test } from 'vitest';
import { expectAllClose } from '../../tensor/test/helpers.js';
import {
  createTextModel,
  disposeTextBatch,
  encodeLines,
  IGNORE_INDEX,
  lineBatches,
  loadNames,
  packedLineBatches,
  packedLineBatchesPerEpoch,
  sequentialLineBatches,
  type TextBatch,
  textModelConfig,
  textStepsPerEpoch,
} from '../src/node.js';

beforeAll(() => setBackend('cpu'));

const names = loadNames();
const boundaryId = names.tokenizer.boundaryId!;
const items = encodeLines(names.tokenizer, names.train);
const layout = { boundaryId, window: 16 };

/** The items of a packed batch, read back from its inputs and segments, row by row. */
async function itemsOf(batch: TextBatch): Promise<number[][]> {
  const [rows, window] = batch.inputs.shape;
  const x = await batch.inputs.data();
  const seg = await batch.segments!.data();
  const out: number[][] = [];
  for (let r = 0; r < rows; r++) {
    let current: number[] | null = null;
    for (let t = 0; t < window; t++) {
      const s = Number(seg[r * window + t]);
      if (s < 0) break;
      if (t === 0 || s !== Number(seg[r * window + t - 1])) {
        current = [];
        out.push(current);
        expect(Number(x[r * window + t])).toBe(boundaryId);
      } else current!.push(Number(x[r * window + t]));
    }
  }
  return out;
}

describe('packedLineBatches', () => {
  test('an epoch holds distinct items, each with its positions, segment and targets', async () => {
    const small = items.slice(0, 400);
    const perEpoch = packedLineBatchesPerEpoch(small, layout, 8);
    const seen = new Set<string>();
    let batches = 0;
    let filled = 0;
    for (const b of packedLineBatches(small, layout, { batchSize: 8, seed: 3, epoch: 1 })) {
      batches++;
      const [rows, window] = b.inputs.shape;
      expect([rows, window]).toEqual([8, 16]);
      const [x, y, pos, seg, m] = await Promise.all(
        [b.inputs, b.targets, b.positions!, b.segments!, b.mask!].map((t) => t.data()),
      );
      for (let i = 0; i < rows * window; i++) {
        const inItem = Number(seg[i]) >= 0;
        expect(Number(m[i])).toBe(inItem ? 1 : 0);
        if (!inItem) {
          expect(Number(y[i])).toBe(IGNORE_INDEX);
          continue;
        }
        filled++;
        // the target is the next input of the same item, or the boundary at the item's end
        const last = i % window === window - 1 || Number(seg[i + 1]) !== Number(seg[i]);
        expect(Number(y[i])).toBe(last ? boundaryId : Number(x[i + 1]));
        expect(Number(pos[i])).toBe(Number(pos[i]) === 0 ? 0 : Number(pos[i - 1]) + 1);
        if (Number(pos[i]) === 0) expect(Number(x[i])).toBe(boundaryId);
      }
      for (const item of await itemsOf(b)) {
        const key = item.join(',');
        const index = small.findIndex((s) => s.join(',') === key && !seen.has(`${small.indexOf(s)}`));
        expect(index).toBeGreaterThanOrEqual(0);
        seen.add(`${index}`);
      }
      disposeTextBatch(b);
    }
    expect(batches).toBe(perEpoch);
    expect(filled).toBeGreaterThan(0);
    expect(seen.size).toBeGreaterThan(0.85 * small.length);
  });

  test('names fill their rows: over 90 % of the characters of an epoch are trained on', async () => {
    let filled = 0;
    let batches = 0;
    for (const b of packedLineBatches(items, layout, { batchSize: 64, seed: 0, epoch: 0 })) {
      filled += Array.from(await b.segments!.data(), Number).filter((s) => s >= 0).length;
      batches++;
      disposeTextBatch(b);
    }
    const positions = items.reduce((n, l) => n + l.length + 1, 0);
    // names take 7 positions on average, so two fill most of a row of 16; the rest is padding
    expect(filled / (batches * 64 * 16)).toBeGreaterThan(0.9);
    expect(filled / positions).toBeGreaterThan(0.9);
  });

  test('a resumed epoch yields exactly the rest of the uninterrupted one', async () => {
    const opts = { batchSize: 16, seed: 5, epoch: 2 };
    const all: number[][] = [];
    for (const b of packedLineBatches(items, layout, opts)) {
      all.push(Array.from(await b.inputs.data(), Number));
      disposeTextBatch(b);
      if (all.length === 6) break;
    }
    const resumed = packedLineBatches(items, layout, { ...opts, start: 3 });
    for (let k = 3; k < 6; k++) {
      const b = resumed.next().value as TextBatch;
      expect(Array.from(await b.inputs.data(), Number)).toEqual(all[k]);
      disposeTextBatch(b);
    }
  });

  test('names: about twice the characters per batch of one name per row', () => {
    const packed = textStepsPerEpoch(names, 64, 16, { packed: true });
    const plain = textStepsPerEpoch(names, 64, 16);
    expect(plain).toBe(484);
    expect(packed).toBe(215);
    expect(plain / packed).toBeGreaterThan(2);
    expect(() => [
      ...packedLineBatches(items.slice(0, 10), layout, { batchSize: 8, seed: 0, epoch: 0 }),
    ]).toThrow(/exceeds the rows/);
  });
});

describe('the Transformer on packed rows', () => {
  const config = textModelConfig('charlm', names, {
    dim: 16,
    layers: 2,
    heads: 2,
    dropout: 0,
    tie: true,
    weightDecay: 0,
  });

  test('a packed batch gets the loss and gradients of its items one per row', async () => {
    const model = createTextModel(config, names.tokenizer);
    const [batch] = packedLineBatches(items.slice(0, 300), layout, { batchSize: 6, seed: 1, epoch: 0 });
    const packedItems = (await itemsOf(batch)).map((ids) => Int32Array.from(ids));
    const [plain] = sequentialLineBatches(packedItems, layout, packedItems.length);
    const params = Object.values(model.modules()).flatMap((m) => m.parameters());
    /** Summed cross-entropy of a batch and the gradient of every parameter. */
    const lossAndGrads = async (b: TextBatch, packing: boolean) => {
      for (const p of params) p.grad = null;
      const loss = scope(() => {
        const packs = packing ? { positions: b.positions!, segments: b.segments! } : undefined;
        const logits = model.logits(b.inputs, packs);
        const l = crossEntropy(reshape(logits, [-1, config.vocabSize]), reshape(b.targets, [-1]), {
          ignoreIndex: IGNORE_INDEX,
          reduction: 'sum',
        });
        l.backward();
        return l;
      });
      const grads = await Promise.all(params.map((p) => p.grad!.data()));
      return { loss: await loss.item(), grads };
    };
    const a = await lossAndGrads(batch, true);
    const b = await lossAndGrads(plain, false);
    expect(a.loss).toBeCloseTo(b.loss, 3);
    for (const [i, g] of a.grads.entries())
      await expectAllClose(Array.from(g, Number), Array.from(b.grads[i], Number), { atol: 2e-5, rtol: 1e-4 });
    disposeTextBatch(batch);
    disposeTextBatch(plain);
  });

  test('a recurrent model refuses packed rows', () => {
    const rnn = createTextModel(textModelConfig('charrnn', names, { hidden: 8, dim: 4 }), names.tokenizer);
    const [batch] = packedLineBatches(items.slice(0, 100), layout, { batchSize: 2, seed: 0, epoch: 0 });
    expect(() =>
      rnn.logits(batch.inputs, { positions: batch.positions!, segments: batch.segments! }),
    ).toThrow(FluxionError);
    disposeTextBatch(batch);
    expect([...lineBatches(items.slice(0, 4), layout, { batchSize: 2, seed: 0, epoch: 0 })]).toHaveLength(2);
  });
});
