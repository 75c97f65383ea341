/**
 * Text data sets for the text models: the names and tiny Shakespeare sets shipped in
 * `packages/models/data/text/` (see its README for licences and sources), and a user's own UTF-8
 * file, split the conventional way. The tokenizer, the splits, the batches and the bigram baseline
 * (no Node imports) are re-exported from here.
 */
import { FluxionError } from '@fluxion/tensor';
import { packageFilePath } from '../package-file.js';
import { readBytes } from './read-bytes.js';
import {
  type LinesDataset,
  type LongTextDataset,
  splitText,
  type TextDataset,
  type TextMode,
  type TextSplitOptions,
} from './text-batches.js';

export * from './text-batches.js';
export * from './tokenizer.js';

/**
 * Decodes UTF-8 bytes strictly (a byte-order mark is dropped): bytes that are not UTF-8 are an
 * error naming `source`, the byte offset and the line of the first bad sequence.
 *
 * @example
 * ```ts
 * decodeUtf8(new Uint8Array([0x68, 0x69]), 'greeting.txt'); // 'hi'
 * decodeUtf8(new Uint8Array([0x68, 0xff]), 'greeting.txt'); // throws: not valid UTF-8 at byte 1 (line 1)
 * ```
 */
export function decodeUtf8(bytes: Uint8Array, source: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    // Locate the first bad sequence: the first U+FFFD of a lenient decoding that is not a literal
    // U+FFFD (EF BF BD) in the file.
    const lenient = new TextDecoder('utf-8').decode(bytes);
    const encoder = new TextEncoder();
    let from = 0;
    let byte = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
    for (let i = lenient.indexOf('\ufffd'); i >= 0; i = lenient.indexOf('\ufffd', i + 1)) {
      byte += encoder.encode(lenient.slice(from, i)).length;
      from = i;
      if (!(bytes[byte] === 0xef && bytes[byte + 1] === 0xbf && bytes[byte + 2] === 0xbd)) {
        const line = lenient.slice(0, i).split('\n').length;
        throw new FluxionError(
          'decodeUtf8',
          `${source}: not valid UTF-8 at byte ${byte} (line ${line}); save the file as UTF-8 text`,
        );
      }
    }
    throw new FluxionError('decodeUtf8', `${source}: not valid UTF-8; save the file as UTF-8 text`);
  }
}

/** Options of {@link loadTextFile}. */
export interface TextFileOptions extends TextSplitOptions {
  /** `'lines'`: one item per line (names, words); `'text'`: one long text (a play, a book). */
  mode: TextMode;
}

/**
 * A user's own UTF-8 text file as a {@link TextDataset}, split the conventional way: in `'lines'`
 * mode min(1,000, 10 %) of the non-empty lines are held out by a seeded shuffle; in `'text'` mode the
 * last 10 % of the characters are. A clear error for a missing file, bytes that are not UTF-8, an
 * empty file and a file of one distinct character.
 *
 * @example
 * ```ts
 * const words = loadTextFile('words.txt', { mode: 'lines' });
 * const book = loadTextFile('book.txt', { mode: 'text' });
 * ```
 */
export function loadTextFile(path: string, options: TextFileOptions & { mode: 'lines' }): LinesDataset;
export function loadTextFile(path: string, options: TextFileOptions & { mode: 'text' }): LongTextDataset;
export function loadTextFile(path: string, options: TextFileOptions): TextDataset;
export function loadTextFile(path: string, options: TextFileOptions): TextDataset {
  const bytes = readBytes(path, 'loadTextFile');
  const { mode, ...split } = options;
  return splitText(decodeUtf8(bytes, path), mode, path, split);
}

/** A text set shipped in `data/text/` of the package. */
function shipped(file: string, op: string): string {
  return packageFilePath(
    `data/text/${file}`,
    op,
    'the package ships it in data/text/ (reinstall @fluxion/models, or restore the file from git)',
  );
}

/**
 * The names set (32,033 English given names, makemore's `names.txt`, MIT), one per line:
 * 1,000 held out by a fixed seeded shuffle (31,033 train), 26 letters plus the boundary token.
 *
 * @example
 * ```ts
 * const { train, test, tokenizer } = loadNames();
 * train.length;        // 31033
 * tokenizer.vocabSize; // 27
 * ```
 */
export function loadNames(options: Omit<TextSplitOptions, 'testFraction'> = {}): LinesDataset {
  const ds = loadTextFile(shipped('names.txt', 'loadNames'), { ...options, mode: 'lines' });
  return { ...ds, name: 'names' };
}

/**
 * Tiny Shakespeare (1,115,394 characters, 65 distinct; public domain text from char-rnn), one
 * long text: the first 90 % train (1,003,854 characters), the last 10 % are the held-out
 * validation text (111,540), as nanoGPT's `shakespeare_char`.
 *
 * @example
 * ```ts
 * const { train, test, tokenizer } = loadShakespeare();
 * const ids = tokenizer.encode(train); // Int32Array(1003854)
 * ```
 */
export function loadShakespeare(): LongTextDataset {
  const ds = loadTextFile(shipped('shakespeare.txt', 'loadShakespeare'), { mode: 'text' });
  return { ...ds, name: 'shakespeare' };
}
