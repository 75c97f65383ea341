/**
 * Text data: the character tokenizer (round trips with characters outside the BMP, its JSON, its
 * errors), the shipped names and tiny Shakespeare sets and their conventional splits, a user's own
 * file and each bad input, seeded and resumable window and line batches, and the bigram baseline.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FluxionError, setBackend } from '@fluxion/tensor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BOUNDARY_TOKEN,
  bigramBaseline,
  CHAR_TOKENIZER_FORMAT,
  CharTokenizer,
  decodeUtf8,
  disposeTextBatch,
  encodeLines,
  IGNORE_INDEX,
  type LinesDataset,
  type LongTextDataset,
  lineBatches,
  lineBatchesPerEpoch,
  loadNames,
  loadShakespeare,
  loadTextFile,
  sequentialLineBatches,
  sequentialWindowBatches,
  splitText,
  type TextBatch,
  textWindow,
  windowBatches,
  windowBatchesPerEpoch,
} from '../src/data/text.js';

let dir: string;
const file = (name: string, content: string | Uint8Array) => {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
};

/** A batch's tensors as plain arrays (then disposed). */
async function read(b: TextBatch) {
  const out = {
    shape: b.inputs.shape,
    inputs: Array.from(await b.inputs.data()),
    targets: Array.from(await b.targets.data()),
    mask: b.mask ? Array.from(await b.mask.data()) : undefined,
    lengths: b.lengths ? Array.from(b.lengths) : undefined,
  };
  disposeTextBatch(b);
  return out;
}
const readAll = async (gen: Iterable<TextBatch>) => {
  const out = [];
  for (const b of gen) out.push(await read(b));
  return out;
};

let names: LinesDataset;
let shakespeare: LongTextDataset;

beforeAll(() => {
  setBackend('cpu');
  dir = mkdtempSync(join(tmpdir(), 'fluxion-text-'));
  names = loadNames();
  shakespeare = loadShakespeare();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('CharTokenizer', () => {
  it('sorts code points, keeps specials first and round-trips text outside the BMP', () => {
    const text = 'Zoë 👋🏽 ！ a𝄞b\n';
    const tok = CharTokenizer.fromText(text, { specials: [BOUNDARY_TOKEN] });
    // One token per code point: the emoji, its skin-tone modifier and 𝄞 are one token each, sorted
    // by code point (UTF-16 order would put 𝄞, a surrogate pair, before ！ U+FF01).
    expect(tok.chars).toEqual(['\n', ' ', 'Z', 'a', 'b', 'o', 'ë', '！', '𝄞', '🏽', '👋']);
    expect(tok.vocabSize).toBe(12);
    expect(tok.boundaryId).toBe(0);
    expect(tok.specialId(BOUNDARY_TOKEN)).toBe(0);
    const ids = tok.encode(text);
    expect(ids).toBeInstanceOf(Int32Array);
    expect(ids.length).toBe([...text].length);
    expect(tok.decode(ids)).toBe(text);
    expect(tok.decode([0, ...ids, 0])).toBe(text);
    expect(tok.decode([0, 3], { specials: true })).toBe(`${BOUNDARY_TOKEN}Z`);
    expect(tok.covers('ab')).toBe(true);
    expect(tok.covers('abc')).toBe(false);
  });

  it('saves as versioned JSON and loads back the same vocabulary', () => {
    const tok = CharTokenizer.fromText(['émile', '😀 zoé'], { specials: [BOUNDARY_TOKEN] });
    const json = JSON.parse(JSON.stringify(tok));
    expect(json.format).toBe(CHAR_TOKENIZER_FORMAT);
    const back = CharTokenizer.fromJSON(json);
    expect(back.chars).toEqual(tok.chars);
    expect(back.specials).toEqual(tok.specials);
    expect(Array.from(back.encode('😀 émile'))).toEqual(Array.from(tok.encode('😀 émile')));
    expect(() => CharTokenizer.fromJSON({ ...json, format: 'fluxion-char-tokenizer/99' })).toThrow(
      /unsupported tokenizer format "fluxion-char-tokenizer\/99"/,
    );
    expect(() => CharTokenizer.fromJSON({ ...json, chars: ['ab'] })).toThrow(/must be one code point/);
    expect(() => CharTokenizer.fromJSON({ ...json, chars: ['a', 'a'] })).toThrow(/appears twice/);
    expect(() => CharTokenizer.fromJSON(null)).toThrow(FluxionError);
  });

  it('names an unknown character and its position', () => {
    const tok = CharTokenizer.fromText('abc\n');
    expect(() => tok.encode('ab\ncaé')).toThrow(FluxionError);
    expect(() => tok.encode('ab\ncaé')).toThrow(
      /character "é" \(U\+00E9\) at position 5 \(line 2, column 3\) is not in the vocabulary of 4 characters/,
    );
    // Positions count code points: the emoji before it is one.
    expect(() => tok.encode('a😀b')).toThrow(/"😀" \(U\+1F600\) at position 1 /);
    expect(() => tok.decode([4])).toThrow(/id 4 at position 0 is outside the vocabulary \[0, 4\)/);
    expect(() => tok.specialId(BOUNDARY_TOKEN)).toThrow(/no special token/);
  });
});

describe('shipped data sets', () => {
  it('names: 32,033 names, 1,000 held out by a fixed seeded shuffle, 27 tokens', () => {
    expect(names.name).toBe('names');
    expect(names.mode).toBe('lines');
    expect(names.train.length).toBe(31033);
    expect(names.test.length).toBe(1000);
    expect(names.tokenizer.vocabSize).toBe(27);
    expect(names.tokenizer.chars.join('')).toBe('abcdefghijklmnopqrstuvwxyz');
    expect(names.tokenizer.boundaryId).toBe(0);
    // The split is fixed: the same held-out names every time, a different set for another seed.
    expect(loadNames().test).toEqual(names.test);
    expect(loadNames({ splitSeed: 7 }).test).not.toEqual(names.test);
    expect(names.train[0]).toBe('emma'); // file order is kept
    expect(textWindow(names)).toBe(16); // the longest names have 15 letters
  });

  it('are found when bundled by scripts/run-ts.mjs, whatever the working directory', () => {
    const root = fileURLToPath(new URL('../../..', import.meta.url));
    const entry = file(
      'probe.ts',
      "import { loadNames, loadShakespeare } from '@fluxion/models/node';\n" +
        'console.log(loadNames().test.length, loadShakespeare().test.length);\n',
    );
    const bundle = join(
      root,
      'node_modules',
      '.cache',
      'fluxion-run',
      `${entry.replace(/[^A-Za-z0-9]+/g, '_')}.mjs`,
    );
    try {
      const out = execFileSync(process.execPath, [join(root, 'scripts', 'run-ts.mjs'), entry], {
        cwd: dir,
        encoding: 'utf8',
      });
      expect(out.trim()).toBe('1000 111540');
    } finally {
      rmSync(bundle, { force: true });
    }
  });

  it('tiny Shakespeare: first 90 % train, last 10 % validation, 65 characters', () => {
    expect(shakespeare.name).toBe('shakespeare');
    expect(shakespeare.mode).toBe('text');
    expect(shakespeare.train.length).toBe(1003854);
    expect(shakespeare.test.length).toBe(111540);
    expect(shakespeare.tokenizer.vocabSize).toBe(65);
    expect(shakespeare.train.startsWith('First Citizen:')).toBe(true);
    expect(textWindow(shakespeare, 256)).toBe(256);
  });
});

describe('loadTextFile', () => {
  it('reads a user file in both modes with the conventional splits', () => {
    const lines = Array.from({ length: 50 }, (_, i) => `item ${i} 🙂`);
    const ds = loadTextFile(file('items.txt', `${lines.join('\r\n')}\r\n\r\n`), { mode: 'lines' });
    expect(ds.mode).toBe('lines');
    expect(ds.test.length).toBe(5); // min(1000, 10 %)
    expect([...ds.train, ...ds.test].sort()).toEqual([...lines].sort());
    expect(ds.tokenizer.covers(lines.join(''))).toBe(true);

    // A byte-order mark is dropped; 'text' mode splits by code points, not UTF-16 units.
    const text = `${'😀'.repeat(9)}ab`;
    const long = loadTextFile(file('long.txt', `\ufeff${text}`), { mode: 'text' });
    expect(long.train).toBe('😀'.repeat(9));
    expect(long.test).toBe('ab');
    expect(long.tokenizer.boundaryId).toBeUndefined();
  });

  it('is a clear error for each bad input', () => {
    const missing = join(dir, 'nope.txt');
    expect(() => loadTextFile(missing, { mode: 'text' })).toThrow(`cannot read ${missing}: no such file`);
    expect(() => loadTextFile(dir, { mode: 'text' })).toThrow(/it is a folder/);
    const latin1 = file('latin1.txt', Uint8Array.from([0x61, 0x0a, 0x62, 0xe9, 0x0a]));
    expect(() => loadTextFile(latin1, { mode: 'lines' })).toThrow(
      `${latin1}: not valid UTF-8 at byte 3 (line 2); save the file as UTF-8 text`,
    );
    expect(() => loadTextFile(file('empty.txt', ''), { mode: 'text' })).toThrow(
      /no text \(the file is empty\)/,
    );
    expect(() => loadTextFile(file('blank.txt', '\n\r\n\n'), { mode: 'lines' })).toThrow(/no text/);
    expect(() => loadTextFile(file('aaa.txt', 'aaaa\naa\naaa\n'), { mode: 'lines' })).toThrow(
      /holds only one distinct character, "a" \(U\+0061\); a character model needs at least two/,
    );
    expect(() => loadTextFile(file('few.txt', 'ab\nba\n'), { mode: 'lines' })).toThrow(
      /cannot hold out 0 of 2 lines \(10 % of the lines; at least 10 lines are needed\)/,
    );
    // A literal U+FFFD in the file is text, not an error; the bad byte after it is found.
    const bytes = new Uint8Array([...new TextEncoder().encode('x\ufffdy\n'), 0xc3, 0x28]);
    expect(() => decodeUtf8(bytes, 'f')).toThrow('f: not valid UTF-8 at byte 6 (line 2)');
    expect(decodeUtf8(new TextEncoder().encode('x\ufffdy'), 'f')).toBe('x\ufffdy');
  });

  it('a window longer than every line, or shorter than an item, is an error', () => {
    expect(() => textWindow(names, 40)).toThrow(
      /names: window 40 is longer than every line: the longest of the 32033 items has 15 characters, 16 positions with its boundary token; use a window of at most 16, or read the file as one long text \(mode 'text'\)/,
    );
    expect(() => textWindow(names, 10)).toThrow(/item "\w+" has \d+ characters, more than window 10 − 1/);
    const small = splitText('abcdef', 'text', 'small');
    expect(() => textWindow(small, 5)).toThrow(/window 5 is longer than the text allows/);
    expect(() => textWindow(small)).toThrow(/needs a window length/);
  });
});

describe('window batches (one long text)', () => {
  const ids = () => shakespeare.tokenizer.encode(shakespeare.train.slice(0, 20000));

  it('are int32 [batch, window] with next-character targets, the same for a seed', async () => {
    const tokens = ids();
    const opts = { batchSize: 4, seed: 3, epoch: 0 };
    const a = await readAll(windowBatches(tokens, 32, opts));
    expect(a.length).toBe(windowBatchesPerEpoch(tokens.length, 4, 32)); // ⌊20000 / 128⌋ = 156
    expect(a.length).toBe(156);
    expect(a[0].shape).toEqual([4, 32]);
    const b = await readAll(windowBatches(tokens, 32, opts));
    expect(b).toEqual(a);
    const c = await readAll(windowBatches(tokens, 32, { ...opts, epoch: 1 }));
    expect(c[0].inputs).not.toEqual(a[0].inputs);
    const d = await readAll(windowBatches(tokens, 32, { ...opts, seed: 4 }));
    expect(d[0].inputs).not.toEqual(a[0].inputs);
    for (const { inputs, targets } of a.slice(0, 10)) {
      for (let r = 0; r < 4; r++) {
        const x = inputs.slice(r * 32, r * 32 + 32);
        const y = targets.slice(r * 32, r * 32 + 32);
        expect(y.slice(0, 31)).toEqual(x.slice(1));
        // The row is a real window of the text at some offset.
        const text = shakespeare.tokenizer.decode([...x, y[31]]);
        expect(shakespeare.train.includes(text)).toBe(true);
      }
    }
  });

  it('resume from (epoch, batch) exactly', async () => {
    const tokens = ids();
    const all = await readAll(windowBatches(tokens, 16, { batchSize: 8, seed: 1, epoch: 2, batches: 12 }));
    const resumed = await readAll(
      windowBatches(tokens, 16, { batchSize: 8, seed: 1, epoch: 2, batches: 12, start: 7 }),
    );
    expect(resumed).toEqual(all.slice(7));
  });

  it('sequential windows cover the held-out text in order', async () => {
    const tokens = shakespeare.tokenizer.encode(shakespeare.test.slice(0, 1000));
    const got = await readAll(sequentialWindowBatches(tokens, 64, 5));
    const rows = Math.floor(999 / 64); // 15
    expect(got.map((g) => g.shape)).toEqual([
      [5, 64],
      [5, 64],
      [5, 64],
    ]);
    expect(got.flatMap((g) => g.inputs)).toEqual(Array.from(tokens.slice(0, rows * 64)));
    expect(got.flatMap((g) => g.targets)).toEqual(Array.from(tokens.slice(1, rows * 64 + 1)));
  });
});

describe('line batches (one item per line)', () => {
  it('wrap items in the boundary token, pad, mask and ignore the padding', async () => {
    const tok = CharTokenizer.fromText(['emma', 'bo'], { specials: [BOUNDARY_TOKEN] });
    const items = encodeLines(tok, ['emma', 'bo']);
    const [b] = await readAll(sequentialLineBatches(items, { boundaryId: 0 }, 10));
    const [e, m, a, o] = ['e', 'm', 'a', 'o'].map((c) => tok.encode(c)[0]);
    const bo = tok.encode('b')[0];
    const I = IGNORE_INDEX;
    expect(b.shape).toEqual([2, 5]);
    expect(b.inputs).toEqual([0, e, m, m, a, 0, bo, o, 0, 0]);
    expect(b.targets).toEqual([e, m, m, a, 0, bo, o, 0, I, I]);
    expect(b.mask).toEqual([1, 1, 1, 1, 1, 1, 1, 1, 0, 0]);
    expect(b.lengths).toEqual([5, 3]);
  });

  it('come in a seeded shuffled order per epoch and resume from (epoch, batch) exactly', async () => {
    const items = encodeLines(names.tokenizer, names.train.slice(0, 2000));
    const layout = { boundaryId: 0, window: textWindow(names) };
    const opts = { batchSize: 64, seed: 5, epoch: 1 };
    const all = await readAll(lineBatches(items, layout, opts));
    expect(all.length).toBe(lineBatchesPerEpoch(2000, 64));
    expect(all.length).toBe(31);
    expect(all[0].shape).toEqual([64, 16]);
    expect(await readAll(lineBatches(items, layout, opts))).toEqual(all);
    expect(await readAll(lineBatches(items, layout, { ...opts, start: 20 }))).toEqual(all.slice(20));
    const other = await readAll(lineBatches(items, layout, { ...opts, epoch: 2 }));
    expect(other[0].inputs).not.toEqual(all[0].inputs);
    // An epoch draws each item at most once (the last partial batch is dropped): 31 × 64 items,
    // each name no more often than the data holds it (names repeat in the data).
    const drawn = all.flatMap(({ inputs, lengths }) =>
      lengths!.map((len, r) => names.tokenizer.decode(inputs.slice(r * 16 + 1, r * 16 + len))),
    );
    expect(drawn.length).toBe(31 * 64);
    const count = (list: string[]) => list.reduce((m, s) => m.set(s, (m.get(s) ?? 0) + 1), new Map());
    const available = count(names.train.slice(0, 2000));
    for (const [name, n] of count(drawn)) expect(n).toBeLessThanOrEqual(available.get(name) ?? 0);
    expect(() => lineBatches(items, layout, { ...opts, batchSize: 5000 }).next()).toThrow(
      /batch size 5000 exceeds the 2000 items/,
    );
    expect(() => lineBatches(items, { boundaryId: 0, window: 4 }, opts).next()).toThrow(
      /item \d+ has \d+ characters, more than window 4 − 1/,
    );
  });
});

describe('bigram baseline', () => {
  it('is ≈ 2.45–2.5 nats per character on held-out names', () => {
    const items = (s: string[]) => encodeLines(names.tokenizer, s);
    const { train, test, logProbs } = bigramBaseline(items(names.train), items(names.test), {
      vocabSize: names.tokenizer.vocabSize,
      boundaryId: 0,
    });
    expect(test).toBeGreaterThan(2.43);
    expect(test).toBeLessThan(2.5);
    expect(train).toBeGreaterThan(2.43);
    expect(train).toBeLessThan(2.5);
    // Each row is a distribution.
    const row = Array.from(logProbs.slice(0, 27), Math.exp).reduce((s, p) => s + p, 0);
    expect(row).toBeCloseTo(1, 12);
  });

  it('scores one long text from the previous character', () => {
    const tok = CharTokenizer.fromText('ab');
    const { test } = bigramBaseline(tok.encode('abababab'), tok.encode('abab'), { vocabSize: 2 });
    // Counts a→b 4, b→a 3; with add-one: P(b|a) = 5/6, P(a|b) = 4/5.
    expect(test).toBeCloseTo(-(2 * Math.log(5 / 6) + Math.log(4 / 5)) / 3, 12);
  });
});
