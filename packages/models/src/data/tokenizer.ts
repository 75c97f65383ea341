/**
 * The character tokenizer of the text models: one token per Unicode code point (so an emoji outside
 * the Basic Multilingual Plane is one token, not two UTF-16 halves), plus optional named special
 * tokens. It runs anywhere (no Node imports) and is saved with a checkpoint as JSON.
 */
import { FluxionError } from '@fluxion/tensor';

/** The format tag of {@link CharTokenizerJSON}; bumped when the layout changes. */
export const CHAR_TOKENIZER_FORMAT = 'fluxion-char-tokenizer/1';

/**
 * The name of the boundary token of one-item-per-line data: a dedicated id (0 when present) that
 * starts every item and ends it, as makemore's `.` does for names, except that it is not a character,
 * so a `.` in the data stays an ordinary character. A model samples an item by feeding the boundary
 * token and stopping when it produces it again.
 */
export const BOUNDARY_TOKEN = '<|boundary|>';

/** A {@link CharTokenizer} as plain JSON, e.g. inside a checkpoint's metadata. */
export interface CharTokenizerJSON {
  /** {@link CHAR_TOKENIZER_FORMAT}. */
  format: string;
  /** Names of the special tokens, ids 0…specials.length−1. */
  specials: string[];
  /** The characters, one code point each, ids specials.length onwards. */
  chars: string[];
}

/** Options of {@link CharTokenizer.fromText}. */
export interface CharTokenizerOptions {
  /** Names of special tokens, given the first ids in this order (e.g. `[BOUNDARY_TOKEN]`). */
  specials?: readonly string[];
}

/**
 * A code point as error messages show it: quoted (escaped when invisible) with its U+ number.
 *
 * @example
 * ```ts
 * describeChar(0xe9); // '"é" (U+00E9)'
 * describeChar(9);    // '"\\t" (U+0009)'
 * ```
 */
export function describeChar(codePoint: number): string {
  return `${JSON.stringify(String.fromCodePoint(codePoint))} (U+${codePoint.toString(16).toUpperCase().padStart(4, '0')})`;
}

/** The code points of `text` in order (a surrogate pair is one code point). */
function* codePoints(text: string): Generator<number> {
  for (let i = 0; i < text.length; ) {
    const cp = text.codePointAt(i)!;
    yield cp;
    i += cp > 0xffff ? 2 : 1;
  }
}

/**
 * A character-level vocabulary: special tokens first (ids 0…k−1, e.g. {@link BOUNDARY_TOKEN}),
 * then the distinct code points of a text sorted by code point. Encoding a character outside the
 * vocabulary is an error that names the character and its position.
 *
 * @example
 * ```ts
 * const tok = CharTokenizer.fromText('hello 👋', { specials: [BOUNDARY_TOKEN] });
 * tok.vocabSize;                       // 7: the boundary token and ' ', 'e', 'h', 'l', 'o', '👋'
 * const ids = tok.encode('hole 👋');   // Int32Array [3, 5, 4, 2, 1, 6]
 * tok.decode(ids);                     // 'hole 👋'
 * const same = CharTokenizer.fromJSON(JSON.parse(JSON.stringify(tok)));
 * ```
 */
export class CharTokenizer {
  /** Names of the special tokens (ids 0…specials.length−1). */
  readonly specials: readonly string[];
  /** The characters (one code point each), ids specials.length onwards. */
  readonly chars: readonly string[];
  private readonly charIds = new Map<number, number>();
  private readonly specialIds = new Map<string, number>();

  /**
   * A tokenizer with exactly these special tokens and characters, ids in this order (use
   * {@link CharTokenizer.fromText} to build one from a text, {@link CharTokenizer.fromJSON} to load
   * one).
   *
   * @example
   * ```ts
   * new CharTokenizer(['a', 'b'], [BOUNDARY_TOKEN]).encode('ba'); // Int32Array [2, 1]
   * ```
   */
  constructor(chars: readonly string[], specials: readonly string[] = []) {
    specials.forEach((name, id) => {
      if (typeof name !== 'string' || name === '')
        throw new FluxionError('CharTokenizer', `special token ${id} must be a non-empty string`);
      if (this.specialIds.has(name))
        throw new FluxionError('CharTokenizer', `special token ${JSON.stringify(name)} appears twice`);
      this.specialIds.set(name, id);
    });
    chars.forEach((c, i) => {
      const cp = typeof c === 'string' ? c.codePointAt(0) : undefined;
      if (cp === undefined || String.fromCodePoint(cp) !== c)
        throw new FluxionError(
          'CharTokenizer',
          `character ${i} must be one code point, got ${JSON.stringify(c)}`,
        );
      if (this.charIds.has(cp))
        throw new FluxionError('CharTokenizer', `character ${describeChar(cp)} appears twice`);
      this.charIds.set(cp, specials.length + i);
    });
    if (chars.length === 0) throw new FluxionError('CharTokenizer', 'the vocabulary has no characters');
    this.specials = Object.freeze([...specials]);
    this.chars = Object.freeze([...chars]);
  }

  /**
   * The vocabulary of `text` (or of several texts): its distinct code points sorted by code point
   * (not by UTF-16 unit, which would put U+1F600 before U+FF01), after the `specials`.
   *
   * @example
   * ```ts
   * CharTokenizer.fromText(['emma', 'ava']).chars; // ['a', 'e', 'm', 'v']
   * ```
   */
  static fromText(text: string | Iterable<string>, options: CharTokenizerOptions = {}): CharTokenizer {
    const seen = new Set<number>();
    for (const part of typeof text === 'string' ? [text] : text)
      for (const cp of codePoints(part)) seen.add(cp);
    const chars = [...seen].sort((a, b) => a - b).map((cp) => String.fromCodePoint(cp));
    return new CharTokenizer(chars, options.specials);
  }

  /**
   * Loads a tokenizer saved by {@link CharTokenizer.toJSON}; a clear error for another format
   * version or a malformed object.
   *
   * @example
   * ```ts
   * const tok = CharTokenizer.fromJSON(JSON.parse(metadata.tokenizer));
   * ```
   */
  static fromJSON(json: unknown): CharTokenizer {
    const o = json as Partial<CharTokenizerJSON> | null;
    if (typeof o !== 'object' || o === null)
      throw new FluxionError('CharTokenizer.fromJSON', `expected an object, got ${JSON.stringify(json)}`);
    if (o.format !== CHAR_TOKENIZER_FORMAT) {
      throw new FluxionError(
        'CharTokenizer.fromJSON',
        `unsupported tokenizer format ${JSON.stringify(o.format)} (this version reads ${CHAR_TOKENIZER_FORMAT})`,
      );
    }
    const strings = (v: unknown) => Array.isArray(v) && v.every((s) => typeof s === 'string');
    if (!strings(o.specials) || !strings(o.chars))
      throw new FluxionError('CharTokenizer.fromJSON', "'specials' and 'chars' must be arrays of strings");
    return new CharTokenizer(o.chars!, o.specials!);
  }

  /** Specials plus characters: the number of rows of an embedding and of output logits. */
  get vocabSize(): number {
    return this.specials.length + this.chars.length;
  }

  /** The id of {@link BOUNDARY_TOKEN}, or undefined when this vocabulary has none. */
  get boundaryId(): number | undefined {
    return this.specialIds.get(BOUNDARY_TOKEN);
  }

  /**
   * The id of a special token; an error naming the specials there are when it is not one.
   *
   * @example
   * ```ts
   * tok.specialId(BOUNDARY_TOKEN); // 0
   * ```
   */
  specialId(name: string): number {
    const id = this.specialIds.get(name);
    if (id === undefined) {
      throw new FluxionError(
        'CharTokenizer',
        `no special token ${JSON.stringify(name)} (specials: ${JSON.stringify(this.specials)})`,
      );
    }
    return id;
  }

  /**
   * Whether every character of `text` is in the vocabulary.
   *
   * @example
   * ```ts
   * CharTokenizer.fromText('ab').covers('abc'); // false
   * ```
   */
  covers(text: string): boolean {
    for (const cp of codePoints(text)) if (!this.charIds.has(cp)) return false;
    return true;
  }

  /**
   * The ids of the characters of `text`, one per code point. A character outside the vocabulary is
   * an error that names it and its position (in code points from 0, with line and column).
   *
   * @example
   * ```ts
   * CharTokenizer.fromText('ab').encode('abba'); // Int32Array [0, 1, 1, 0]
   * ```
   */
  encode(text: string): Int32Array {
    const out = new Int32Array(text.length);
    let n = 0;
    for (const cp of codePoints(text)) {
      const id = this.charIds.get(cp);
      if (id === undefined) {
        const before = [...text].slice(0, n);
        const line = before.filter((c) => c === '\n').length + 1;
        const column = n - before.lastIndexOf('\n');
        throw new FluxionError(
          'CharTokenizer.encode',
          `character ${describeChar(cp)} at position ${n} (line ${line}, column ${column}) is not in the vocabulary of ${this.chars.length} characters`,
        );
      }
      out[n++] = id;
    }
    return out.slice(0, n);
  }

  /**
   * The text of `ids`. Special tokens are left out, or written as their names with
   * `{ specials: true }`; an id outside the vocabulary is an error.
   *
   * @example
   * ```ts
   * tok.decode([0, 3, 5, 0]);                     // 'ho' (boundary tokens left out)
   * tok.decode([0, 3, 5, 0], { specials: true }); // '<|boundary|>ho<|boundary|>'
   * ```
   */
  decode(ids: ArrayLike<number>, options: { specials?: boolean } = {}): string {
    const k = this.specials.length;
    let out = '';
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw new FluxionError(
          'CharTokenizer.decode',
          `id ${id} at position ${i} is outside the vocabulary [0, ${this.vocabSize})`,
        );
      }
      if (id >= k) out += this.chars[id - k];
      else if (options.specials) out += this.specials[id];
    }
    return out;
  }

  /**
   * The tokenizer as plain JSON (with {@link CHAR_TOKENIZER_FORMAT}), for a checkpoint.
   *
   * @example
   * ```ts
   * const saved = JSON.stringify(tok); // calls toJSON
   * ```
   */
  toJSON(): CharTokenizerJSON {
    return { format: CHAR_TOKENIZER_FORMAT, specials: [...this.specials], chars: [...this.chars] };
  }
}
