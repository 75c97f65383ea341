/**
 * Text data that runs anywhere (no Node imports, so the browser playground can use it too): the
 * conventional splits of a text, seeded batches of token ids for the text models — fixed-length
 * windows of one long text, or one-item-per-line data wrapped in boundary tokens and padded — and
 * the add-one bigram baseline. `text.ts` adds the files.
 */
import { FluxionError, philox4x32, seedToKey, type Tensor, tensor } from '@fluxion/tensor';
import { permutation } from './shuffle.js';
import { BOUNDARY_TOKEN, CharTokenizer, describeChar } from './tokenizer.js';

/** How a text file is read: one item per line (names), or one long text (Shakespeare). */
export type TextMode = 'lines' | 'text';

/** What every {@link TextDataset} carries. */
export interface TextDatasetBase {
  /** Where it came from, for messages and checkpoints (`'names'`, `'shakespeare'`, a file path). */
  name: string;
  /**
   * The character vocabulary of the whole data set (train and test, as makemore and nanoGPT build
   * theirs), with {@link BOUNDARY_TOKEN} as id 0 in `'lines'` mode and no special token in `'text'`.
   */
  tokenizer: CharTokenizer;
}

/** One item per line: `train` and the held-out `test` items. */
export interface LinesDataset extends TextDatasetBase {
  mode: 'lines';
  train: string[];
  test: string[];
}

/** One long text: the first part trains, the rest (`test`, nanoGPT's validation split) is held out. */
export interface LongTextDataset extends TextDatasetBase {
  mode: 'text';
  train: string;
  test: string;
}

/** A text data set split for training and held-out evaluation. */
export type TextDataset = LinesDataset | LongTextDataset;

/** Options of {@link splitText} and of the loaders. */
export interface TextSplitOptions {
  /**
   * `'lines'`: held-out items, min(1,000, 10 %) of the lines by default (makemore's rule).
   * Not allowed in `'text'` mode.
   */
  testCount?: number;
  /** `'lines'`: the seed of the shuffle that picks the held-out items (default 42). */
  splitSeed?: number;
  /** `'text'`: the share of characters at the end that is held out (default 0.1, nanoGPT's). */
  testFraction?: number;
}

/** The default seed of the held-out shuffle of `'lines'` data. */
export const SPLIT_SEED = 42;

/**
 * Splits a decoded text into a {@link TextDataset}. `'lines'`: the non-empty lines (`\n` or
 * `\r\n`), min(1,000, 10 %) of them held out by a seeded shuffle, both parts kept in file order.
 * `'text'`: the first 90 % of the code points train, the last 10 % are held out. Errors name
 * `name`: no content, a single distinct character, too few lines to hold any out.
 *
 * @example
 * ```ts
 * const ds = splitText('emma\nolivia\n…', 'lines', 'my-names');
 * ds.tokenizer.encode(ds.train[0]);
 * ```
 */
export function splitText(
  text: string,
  mode: TextMode,
  name: string,
  options: TextSplitOptions = {},
): TextDataset {
  const op = 'splitText';
  if (mode !== 'lines' && mode !== 'text')
    throw new FluxionError(op, `mode must be 'lines' or 'text', got ${JSON.stringify(mode)}`);
  if (mode === 'lines') {
    const lines = text.split(/\r?\n/).filter((l) => l !== '');
    if (lines.length === 0)
      throw new FluxionError(op, `${name}: no text (the file is empty or holds only newlines)`);
    checkDistinct(op, name, lines);
    const n = lines.length;
    const testCount = options.testCount ?? Math.min(1000, Math.floor(n / 10));
    if (!Number.isInteger(testCount) || testCount < 1 || testCount >= n) {
      throw new FluxionError(
        op,
        `${name}: cannot hold out ${testCount} of ${n} lines` +
          (options.testCount === undefined ? ' (10 % of the lines; at least 10 lines are needed)' : ''),
      );
    }
    const held = new Uint8Array(n);
    const order = permutation(n, options.splitSeed ?? SPLIT_SEED, 0);
    for (let i = 0; i < testCount; i++) held[order[i]] = 1;
    return {
      name,
      mode,
      train: lines.filter((_, i) => !held[i]),
      test: lines.filter((_, i) => held[i]),
      tokenizer: CharTokenizer.fromText(lines, { specials: [BOUNDARY_TOKEN] }),
    };
  }
  if (options.testCount !== undefined)
    throw new FluxionError(op, `${name}: testCount applies to 'lines' mode; use testFraction`);
  if (text === '') throw new FluxionError(op, `${name}: no text (the file is empty)`);
  checkDistinct(op, name, [text]);
  const fraction = options.testFraction ?? 0.1;
  const tokenizer = CharTokenizer.fromText(text);
  const count = tokenizer.encode(text).length;
  const cut = Math.floor(count * (1 - fraction));
  if (!(fraction > 0 && fraction < 1) || cut < 1 || cut >= count) {
    throw new FluxionError(
      op,
      `${name}: cannot hold out ${fraction} of ${count} characters (testFraction must leave both parts non-empty)`,
    );
  }
  const at = codePointOffset(text, cut);
  return { name, mode, train: text.slice(0, at), test: text.slice(at), tokenizer };
}

/** A data set of one distinct character teaches nothing: an error that says so. */
function checkDistinct(op: string, name: string, parts: readonly string[]): void {
  const first = parts[0].codePointAt(0)!;
  const c = String.fromCodePoint(first);
  for (const part of parts) for (const ch of part) if (ch !== c) return;
  throw new FluxionError(
    op,
    `${name}: the text holds only one distinct character, ${describeChar(first)}; a character model needs at least two`,
  );
}

/** The UTF-16 offset of code point `index` of `text` (its length past the end). */
function codePointOffset(text: string, index: number): number {
  let at = 0;
  for (let k = 0; k < index && at < text.length; k++) at += text.codePointAt(at)! > 0xffff ? 2 : 1;
  return at;
}

/**
 * The ids of each item (e.g. each name), without boundary tokens.
 *
 * @example
 * ```ts
 * const items = encodeLines(ds.tokenizer, ds.train); // Int32Array per name
 * ```
 */
export function encodeLines(tokenizer: CharTokenizer, lines: readonly string[]): Int32Array[] {
  return lines.map((l) => tokenizer.encode(l));
}

/** The target id of padded positions in line batches: pass it as crossEntropy's `ignoreIndex`. */
export const IGNORE_INDEX = -100;

/** A batch of token ids for a language model. */
export interface TextBatch {
  /** int32 `[batch, window]` input ids. */
  inputs: Tensor;
  /** int32 `[batch, window]` next-token ids ({@link IGNORE_INDEX} at padding). */
  targets: Tensor;
  /** float32 `[batch, window]`, 1 where a target counts and 0 at padding (line batches only). */
  mask?: Tensor;
  /** Per row, the positions whose target counts: characters + 1 (line batches only). */
  lengths?: Int32Array;
  /**
   * int32 `[batch, window]`: each position's place within its item, from 0 (packed line batches
   * only, see {@link packedLineBatches}).
   */
  positions?: Tensor;
  /**
   * int32 `[batch, window]`: which item of its row each position belongs to (0, 1, …; −1 at the
   * padding after the last one); attention stays within an item (packed line batches only).
   */
  segments?: Tensor;
}

/**
 * Disposes a batch's tensors.
 *
 * @example
 * ```ts
 * for (const b of lineBatches(items, { boundaryId: 0 }, opts)) { trainOn(b); disposeTextBatch(b); }
 * ```
 */
export function disposeTextBatch(batch: TextBatch): void {
  batch.inputs.dispose();
  batch.targets.dispose();
  batch.mask?.dispose();
  batch.positions?.dispose();
  batch.segments?.dispose();
}

/** Where seeded batches start and how they are drawn. */
export interface SeededBatchOptions {
  batchSize: number;
  /** The training seed (the batch order depends on it and on `epoch` only). */
  seed: number;
  epoch: number;
  /**
   * The batch of the epoch to start at (a checkpoint's step): a resumed run yields exactly the
   * batches that the uninterrupted run yields from there. 0 by default.
   */
  start?: number;
}

function checkBatchOptions(op: string, o: SeededBatchOptions, perEpoch: number): void {
  const { batchSize, epoch, start = 0 } = o;
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new FluxionError(op, `batchSize must be a positive integer, got ${batchSize}`);
  if (!Number.isInteger(epoch) || epoch < 0)
    throw new FluxionError(op, `epoch must be an integer ≥ 0, got ${epoch}`);
  if (!Number.isInteger(start) || start < 0 || start > perEpoch)
    throw new FluxionError(op, `start must be an integer in [0, ${perEpoch}], got ${start}`);
}

// ——— one long text: fixed-length windows ———

function checkWindow(op: string, tokens: Int32Array, window: number): void {
  if (!Number.isInteger(window) || window < 1)
    throw new FluxionError(op, `window must be a positive integer, got ${window}`);
  if (tokens.length < window + 1) {
    throw new FluxionError(
      op,
      `window ${window} is longer than the text allows: ${tokens.length} characters hold windows of at most ${tokens.length - 1} (inputs and their next-character targets)`,
    );
  }
}

/**
 * Batches per epoch of {@link windowBatches}: enough that an epoch predicts about as many
 * characters as the text has, ⌊n / (batchSize·window)⌋, and at least one.
 *
 * @example
 * ```ts
 * windowBatchesPerEpoch(1003854, 64, 256); // 61
 * ```
 */
export function windowBatchesPerEpoch(tokenCount: number, batchSize: number, window: number): number {
  return Math.max(1, Math.floor(tokenCount / (batchSize * window)));
}

/** Options of {@link windowBatches}. */
export interface WindowBatchOptions extends SeededBatchOptions {
  /** Batches per epoch ({@link windowBatchesPerEpoch} by default). */
  batches?: number;
}

/**
 * Seeded batches of windows of one long text (nanoGPT's sampling): row r of batch b in `epoch`
 * starts at a uniformly random offset drawn by Philox from (seed, epoch, b, r), with inputs
 * `tokens[o, o + window)` and targets `tokens[o + 1, o + window + 1)`. The same seed gives the same
 * batches on every machine, and `start` resumes mid-epoch without drawing the batches before it.
 *
 * @example
 * ```ts
 * const ids = ds.tokenizer.encode(ds.train);
 * for (const { inputs, targets } of windowBatches(ids, 64, { batchSize: 32, seed: 0, epoch })) {
 *   // inputs, targets: int32 [32, 64]
 * }
 * ```
 */
export function* windowBatches(
  tokens: Int32Array,
  window: number,
  options: WindowBatchOptions,
): Generator<TextBatch> {
  const op = 'windowBatches';
  checkWindow(op, tokens, window);
  const { batchSize, epoch, start = 0 } = options;
  const perEpoch = options.batches ?? windowBatchesPerEpoch(tokens.length, batchSize, window);
  if (!Number.isInteger(perEpoch) || perEpoch < 1)
    throw new FluxionError(op, `batches must be a positive integer, got ${perEpoch}`);
  checkBatchOptions(op, options, perEpoch);
  const [k0, k1] = seedToKey(options.seed);
  const words = new Uint32Array(4);
  const offsets = tokens.length - window; // offsets 0 … n − window − 1
  for (let b = start; b < perEpoch; b++) {
    const x = new Int32Array(batchSize * window);
    const y = new Int32Array(batchSize * window);
    for (let r = 0; r < batchSize; r++) {
      philox4x32(b, epoch, 0x7e47, r, k0, k1, words);
      // 53 random bits, so the offset is uniform to within 2⁻²¹ even for a 4-billion-character text.
      const o = Math.floor(((words[0] * 2 ** 21 + (words[1] >>> 11)) / 2 ** 53) * offsets);
      x.set(tokens.subarray(o, o + window), r * window);
      y.set(tokens.subarray(o + 1, o + window + 1), r * window);
    }
    yield { inputs: tensor(x, [batchSize, window]), targets: tensor(y, [batchSize, window]) };
  }
}

/**
 * Every window of a held-out text in order, non-overlapping (offsets 0, window, 2·window, …), in
 * batches of up to `batchSize` rows, so that a mean over all targets is the text's loss per
 * character (the last ⌊(n − 1) mod window⌋ targets are left out).
 *
 * @example
 * ```ts
 * for (const { inputs, targets } of sequentialWindowBatches(ds.tokenizer.encode(ds.test), 64, 32)) { … }
 * ```
 */
export function* sequentialWindowBatches(
  tokens: Int32Array,
  window: number,
  batchSize: number,
): Generator<TextBatch> {
  checkWindow('sequentialWindowBatches', tokens, window);
  const rows = Math.floor((tokens.length - 1) / window);
  for (let first = 0; first < rows; first += batchSize) {
    const n = Math.min(batchSize, rows - first);
    const x = tokens.slice(first * window, (first + n) * window);
    const y = tokens.slice(first * window + 1, (first + n) * window + 1);
    yield { inputs: tensor(x, [n, window]), targets: tensor(y, [n, window]) };
  }
}

// ——— one item per line: boundary-wrapped, padded ———

/** Options of {@link lineBatches} and {@link sequentialLineBatches}. */
export interface LineBatchOptions {
  /** The id that starts and ends every item (the tokenizer's `boundaryId`); also pads the inputs. */
  boundaryId: number;
  /**
   * Positions per row, at least the longest item + 1 (see {@link textWindow}); the longest item
   * of these lines + 1 by default.
   */
  window?: number;
  /** The target id at padding ({@link IGNORE_INDEX} by default). */
  ignoreIndex?: number;
}

/** The longest item's length + 1: the positions it takes with its boundary token. */
function longestLine(lines: readonly Int32Array[]): { index: number; positions: number } {
  let index = 0;
  lines.forEach((l, i) => {
    if (l.length > lines[index].length) index = i;
  });
  return { index, positions: lines[index].length + 1 };
}

/** `window`, or the longest + 1, checked to hold every item: an error naming one that does not fit. */
function fitLines(op: string, lines: readonly Int32Array[], window?: number): number {
  if (lines.length === 0) throw new FluxionError(op, 'no items');
  if (window === undefined) return longestLine(lines).positions;
  if (!Number.isInteger(window) || window < 1)
    throw new FluxionError(op, `window must be a positive integer, got ${window}`);
  const tooLong = lines.findIndex((l) => l.length + 1 > window);
  if (tooLong >= 0) {
    throw new FluxionError(
      op,
      `item ${tooLong} has ${lines[tooLong].length} characters, more than window ${window} − 1 (one position goes to the boundary token); use a window of ${longestLine(lines).positions}`,
    );
  }
  return window;
}

/**
 * The window (positions per row) of a data set, checked against both splits, so that training and
 * held-out batches share it. `'lines'`: the longest item + 1 by default; a window that cuts an item
 * is an error naming the item, and so is one longer than every line (it would be almost all
 * padding: one long text wants `'text'` mode). `'text'`: `window` is required and must leave at
 * least one target after it in each split.
 *
 * @example
 * ```ts
 * textWindow(loadNames());            // 16: the longest names have 15 letters
 * textWindow(loadShakespeare(), 256); // 256
 * ```
 */
export function textWindow(ds: TextDataset, window?: number): number {
  const op = 'textWindow';
  if (ds.mode === 'text') {
    if (window === undefined) throw new FluxionError(op, `${ds.name}: one long text needs a window length`);
    for (const part of [ds.train, ds.test]) checkWindow(op, ds.tokenizer.encode(part), window);
    return window;
  }
  const items = encodeLines(ds.tokenizer, [...ds.train, ...ds.test]);
  const longest = longestLine(items);
  if (window !== undefined && window > longest.positions) {
    throw new FluxionError(
      op,
      `${ds.name}: window ${window} is longer than every line: the longest of the ${items.length} items has ${longest.positions - 1} characters, ${longest.positions} positions with its boundary token; use a window of at most ${longest.positions}, or read the file as one long text (mode 'text')`,
    );
  }
  if (window === undefined) return longest.positions;
  if (!Number.isInteger(window) || window < 1)
    throw new FluxionError(op, `window must be a positive integer, got ${window}`);
  const tooLong = items.findIndex((l) => l.length + 1 > window);
  if (tooLong >= 0) {
    const inTrain = tooLong < ds.train.length;
    const item = inTrain ? ds.train[tooLong] : ds.test[tooLong - ds.train.length];
    throw new FluxionError(
      op,
      `${ds.name}: the ${inTrain ? 'training' : 'held-out'} item ${JSON.stringify(item)} has ${items[tooLong].length} characters, more than window ${window} − 1 (one position goes to the boundary token); use a window of ${longest.positions}`,
    );
  }
  return window;
}

/**
 * Batches per epoch of {@link lineBatches}: the last partial batch is dropped, as for images.
 *
 * @example
 * ```ts
 * lineBatchesPerEpoch(31033, 32); // 969
 * ```
 */
export function lineBatchesPerEpoch(itemCount: number, batchSize: number): number {
  return Math.floor(itemCount / batchSize);
}

/**
 * Lays one item out from position `at` of a batch's flat arrays: inputs `[B, c₁ … c_L]`, targets
 * `[c₁ … c_L, B]` (B the boundary id), mask 1 over those positions. Returns the positions taken,
 * the item's length + 1.
 */
function placeItem(
  ids: Int32Array,
  at: number,
  boundaryId: number,
  x: Int32Array,
  y: Int32Array,
  m: Float32Array,
): number {
  x.set(ids, at + 1);
  y.set(ids, at);
  y[at + ids.length] = boundaryId;
  m.fill(1, at, at + ids.length + 1);
  return ids.length + 1;
}

/** Rows `[B, c₁ … c_L, pad…]` → targets `[c₁ … c_L, B, ignore…]`, with mask and lengths. */
function lineBatch(
  lines: readonly Int32Array[],
  rows: ArrayLike<number>,
  window: number,
  boundaryId: number,
  ignoreIndex: number,
): TextBatch {
  const n = rows.length;
  const x = new Int32Array(n * window).fill(boundaryId);
  const y = new Int32Array(n * window).fill(ignoreIndex);
  const m = new Float32Array(n * window);
  const lengths = new Int32Array(n);
  for (let r = 0; r < n; r++) {
    lengths[r] = placeItem(lines[rows[r]], r * window, boundaryId, x, y, m);
  }
  return {
    inputs: tensor(x, [n, window]),
    targets: tensor(y, [n, window]),
    mask: tensor(m, [n, window]),
    lengths,
  };
}

/**
 * Seeded shuffled batches of items (names): each row is the boundary token, the item's ids, then
 * the boundary token as padding; its targets are the ids, the boundary token (end of item), then
 * `ignoreIndex`. The order is {@link permutation}(n, seed, epoch), as for the image datasets, the
 * last partial batch is dropped, and `start` resumes mid-epoch exactly.
 *
 * @example
 * ```ts
 * const items = encodeLines(ds.tokenizer, ds.train);
 * const boundaryId = ds.tokenizer.boundaryId!;
 * for (const b of lineBatches(items, { boundaryId }, { batchSize: 32, seed: 0, epoch })) {
 *   const loss = crossEntropy(logits2d, reshape(b.targets, [-1]), { ignoreIndex: IGNORE_INDEX });
 *   disposeTextBatch(b);
 * }
 * ```
 */
export function* lineBatches(
  lines: readonly Int32Array[],
  layout: LineBatchOptions,
  options: SeededBatchOptions,
): Generator<TextBatch> {
  const window = fitLines('lineBatches', lines, layout.window);
  const { batchSize, start = 0 } = options;
  const perEpoch = lineBatchesPerEpoch(lines.length, batchSize);
  checkBatchOptions('lineBatches', options, perEpoch);
  if (perEpoch === 0)
    throw new FluxionError('lineBatches', `batch size ${batchSize} exceeds the ${lines.length} items`);
  const order = permutation(lines.length, options.seed, options.epoch);
  for (let b = start; b < perEpoch; b++) {
    const rows = order.subarray(b * batchSize, (b + 1) * batchSize);
    yield lineBatch(lines, rows, window, layout.boundaryId, layout.ignoreIndex ?? IGNORE_INDEX);
  }
}

/**
 * Every item in order, in batches of up to `batchSize` (the last one may be smaller), laid out as
 * in {@link lineBatches}: for held-out evaluation, where the mean over the kept targets is the loss
 * per character (each item's end counts as one character, as in makemore).
 *
 * @example
 * ```ts
 * for (const b of sequentialLineBatches(encodeLines(tok, ds.test), { boundaryId: 0 }, 500)) { … }
 * ```
 */
export function* sequentialLineBatches(
  lines: readonly Int32Array[],
  layout: LineBatchOptions,
  batchSize: number,
): Generator<TextBatch> {
  const window = fitLines('sequentialLineBatches', lines, layout.window);
  for (let first = 0; first < lines.length; first += batchSize) {
    const rows = Array.from({ length: Math.min(batchSize, lines.length - first) }, (_, i) => first + i);
    yield lineBatch(lines, rows, window, layout.boundaryId, layout.ignoreIndex ?? IGNORE_INDEX);
  }
}

// ——— one item per line, packed: several items per row ———

/** Rows that stay open for more items while packing (see {@link packRows}). */
const OPEN_ROWS = 32;

/**
 * The rows of one epoch of {@link packedLineBatches}: the items taken in the order
 * {@link permutation}(n, seed, epoch), each placed into the fullest of the last few open rows (32)
 * that has room for it (an item takes its length + 1 positions: the boundary token, then its
 * characters), or else into a new row; a row closes when it is full or when too many are open.
 * This "best fit" keeps the order shuffled and fills rows of 16 with names (7 positions on
 * average, so mostly two to a row) to about 92 %. Each row lists its items.
 */
function packRows(lines: readonly Int32Array[], window: number, seed: number, epoch: number): number[][] {
  const order = permutation(lines.length, seed, epoch);
  const rows: number[][] = [];
  const open: { items: number[]; used: number }[] = [];
  for (const item of order) {
    const need = lines[item].length + 1;
    let row: { items: number[]; used: number } | undefined;
    for (const r of open) if (r.used + need <= window && (!row || r.used > row.used)) row = r;
    if (!row) {
      row = { items: [], used: 0 };
      open.push(row);
    }
    row.items.push(item);
    row.used += need;
    if (row.used === window) {
      open.splice(open.indexOf(row), 1);
      rows.push(row.items);
    } else if (open.length > OPEN_ROWS) {
      rows.push((open.shift() as { items: number[] }).items);
    }
  }
  for (const row of open) rows.push(row.items);
  return rows;
}

/**
 * Batches per epoch of {@link packedLineBatches}: the full batches of the fewest rows that could
 * hold every item, ⌊⌈Σ(length + 1) / window⌉ / batchSize⌋. An epoch's packing never needs fewer
 * rows, so every epoch has this many batches; the rows past them (the packing's few gaps) wait for
 * a later epoch's shuffle, as the last partial batch does.
 *
 * @example
 * ```ts
 * packedLineBatchesPerEpoch(encodeLines(tok, loadNames().train), { boundaryId: 0, window: 16 }, 64); // 215
 * ```
 */
export function packedLineBatchesPerEpoch(
  lines: readonly Int32Array[],
  layout: LineBatchOptions,
  batchSize: number,
): number {
  const window = fitLines('packedLineBatches', lines, layout.window);
  const positions = lines.reduce((sum, l) => sum + l.length + 1, 0);
  return Math.floor(Math.ceil(positions / window) / batchSize);
}

/**
 * Seeded shuffled batches of items packed several to a row: the same items and targets as
 * {@link lineBatches}, but a row of `window` positions holds as many whole items as fit one after
 * another (best fit over a few open rows), instead of one item and its padding. For names (7
 * positions on average in rows of 16) a batch holds about twice the characters for the same work.
 * Each position also gets its place within its item (`positions`, from 0) and the item's index in
 * the row (`segments`), so that a Transformer given both (positional embeddings at `positions`, attention
 * only within a segment: `segmentMask`) computes exactly what it computes on unpacked rows.
 * `batchSize` counts rows; an epoch has {@link packedLineBatchesPerEpoch} batches. `start` resumes
 * mid-epoch exactly.
 *
 * @example
 * ```ts
 * const items = encodeLines(ds.tokenizer, ds.train);
 * for (const b of packedLineBatches(items, { boundaryId: 0, window: 16 }, { batchSize: 64, seed: 0, epoch: 0 })) {
 *   model.trainStep(b); // b.positions, b.segments: int32 [64, 16]
 * }
 * ```
 */
export function* packedLineBatches(
  lines: readonly Int32Array[],
  layout: LineBatchOptions,
  options: SeededBatchOptions,
): Generator<TextBatch> {
  const window = fitLines('packedLineBatches', lines, layout.window);
  const { batchSize, start = 0 } = options;
  const perEpoch = packedLineBatchesPerEpoch(lines, { ...layout, window }, batchSize);
  checkBatchOptions('packedLineBatches', options, perEpoch);
  if (perEpoch === 0)
    throw new FluxionError(
      'packedLineBatches',
      `batch size ${batchSize} exceeds the rows that ${lines.length} items fill (window ${window})`,
    );
  const rows = packRows(lines, window, options.seed, options.epoch);
  const { boundaryId, ignoreIndex = IGNORE_INDEX } = layout;
  for (let b = start; b < perEpoch; b++) {
    const n = batchSize * window;
    const x = new Int32Array(n).fill(boundaryId);
    const y = new Int32Array(n).fill(ignoreIndex);
    const m = new Float32Array(n);
    const pos = new Int32Array(n);
    const seg = new Int32Array(n).fill(-1);
    for (let r = 0; r < batchSize; r++) {
      let at = r * window;
      rows[b * batchSize + r].forEach((item, k) => {
        const taken = placeItem(lines[item], at, boundaryId, x, y, m);
        seg.fill(k, at, at + taken);
        for (let i = 0; i < taken; i++) pos[at + i] = i;
        at += taken;
      });
    }
    yield {
      inputs: tensor(x, [batchSize, window]),
      targets: tensor(y, [batchSize, window]),
      mask: tensor(m, [batchSize, window]),
      positions: tensor(pos, [batchSize, window]),
      segments: tensor(seg, [batchSize, window]),
    };
  }
}

// ——— the bigram baseline ———

/** What {@link bigramBaseline} measures. */
export interface BigramBaseline {
  /** Mean negative log-likelihood per predicted character on the training data, in nats. */
  train: number;
  /** The same on the held-out data. */
  test: number;
  /** `[vocab, vocab]` row-major: ln P(next = j | current = i), add-`smoothing` estimates. */
  logProbs: Float64Array;
}

/** Calls `pair(current, next)` for every prediction of the data, as the batches make them. */
function forEachPair(
  data: Int32Array | readonly Int32Array[],
  boundaryId: number | undefined,
  pair: (a: number, b: number) => void,
): void {
  if (data instanceof Int32Array) {
    for (let i = 0; i + 1 < data.length; i++) pair(data[i], data[i + 1]);
    return;
  }
  if (boundaryId === undefined)
    throw new FluxionError('bigramBaseline', 'one-item-per-line data needs the boundaryId');
  for (const ids of data) {
    let prev = boundaryId;
    for (const id of ids) {
      pair(prev, id);
      prev = id;
    }
    pair(prev, boundaryId);
  }
}

/**
 * The bigram baseline of a text data set: next-character counts on `train` with add-one smoothing
 * (add-`smoothing`), scored in nats per character on both splits. Items of one-per-line data are
 * wrapped in the boundary token (the end counts as a character, as in makemore); a long text
 * predicts each character from the one before. On names it is ≈ 2.45 nats/char held out: a text
 * model that does not beat it has learnt nothing beyond pairs.
 *
 * @example
 * ```ts
 * const ds = loadNames();
 * const items = (s: string[]) => encodeLines(ds.tokenizer, s);
 * const { test } = bigramBaseline(items(ds.train), items(ds.test), { vocabSize: 27, boundaryId: 0 });
 * ```
 */
export function bigramBaseline<T extends Int32Array | readonly Int32Array[]>(
  train: T,
  test: T,
  options: { vocabSize: number; boundaryId?: number; smoothing?: number },
): BigramBaseline {
  const { vocabSize: v, boundaryId, smoothing = 1 } = options;
  if (!(smoothing > 0)) throw new FluxionError('bigramBaseline', `smoothing must be > 0, got ${smoothing}`);
  const counts = new Float64Array(v * v).fill(smoothing);
  const check = (id: number) => {
    if (!(id >= 0 && id < v)) throw new FluxionError('bigramBaseline', `id ${id} is outside [0, ${v})`);
  };
  forEachPair(train, boundaryId, (a, b) => {
    check(a);
    check(b);
    counts[a * v + b]++;
  });
  const logProbs = new Float64Array(v * v);
  for (let a = 0; a < v; a++) {
    let total = 0;
    for (let b = 0; b < v; b++) total += counts[a * v + b];
    for (let b = 0; b < v; b++) logProbs[a * v + b] = Math.log(counts[a * v + b] / total);
  }
  const nats = (data: T) => {
    let sum = 0;
    let n = 0;
    forEachPair(data, boundaryId, (a, b) => {
      check(a);
      check(b);
      sum -= logProbs[a * v + b];
      n++;
    });
    return sum / n;
  };
  return { train: nats(train), test: nats(test), logProbs };
}
