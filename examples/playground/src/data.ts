/**
 * The playground's data, all of it shipped with `@fluxion/models` and served by the page itself
 * (nothing is fetched from elsewhere):
 *
 * - the MNIST digits: the packed asset that `vite.config.ts` emits, and seeded shuffled batches
 *   of it, ordered by `permutation` from `@fluxion/models` (the package's browser-safe main entry;
 *   its MNIST loader reads files and is in `@fluxion/models/node`);
 * - the names of the text tab: `names.txt`, bundled into the script by Vite's `?raw` import and
 *   split as `loadNames` of `@fluxion/models/node` splits it;
 * - the spoken digits of the audio tab: 300 FSDD recordings in the package's own format, read by
 *   `fsddClips` and cut to fixed-length clips by `audioDataset`.
 */
import {
  type AudioDataset,
  audioDataset,
  FSDD_CLIP_LENGTH,
  fsddClips,
  type LinesDataset,
  permutation,
  splitText,
} from '@fluxion/models';
import { type Tensor, tensor } from '@fluxion/tensor';
import namesText from '../../../packages/models/data/text/names.txt?raw';

/** Digits as rows of 784 pixels in [0, 1], with their labels. */
export interface Digits {
  images: Float32Array;
  labels: Int32Array;
  count: number;
}

/** Fetches and unpacks `mnist-digits.bin` (784 pixel bytes per digit, then one label byte each). */
export async function loadDigits(url: string): Promise<Digits> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`could not load ${url}: HTTP ${response.status}`);
  const bytes = new Uint8Array(await response.arrayBuffer());
  const count = bytes.length / 785;
  if (!Number.isInteger(count)) throw new Error(`${url} is not a packed digit file (${bytes.length} bytes)`);
  const images = Float32Array.from(bytes.subarray(0, count * 784), (v) => v / 255);
  const labels = Int32Array.from(bytes.subarray(count * 784));
  return { images, labels, count };
}

/** An endless stream of batches, reshuffled every epoch. Dispose each batch's tensors after use. */
export class BatchStream {
  private order: Int32Array;
  private epoch = 0;
  private next = 0;

  constructor(
    private readonly digits: Digits,
    private readonly batchSize: number,
    private readonly seed: number,
  ) {
    this.order = permutation(digits.count, seed, 0);
  }

  /** Epochs completed so far. */
  get epochs(): number {
    return this.epoch;
  }

  /** The next batch: images `[b, 784]` in [0, 1] and int32 labels `[b]`, on the current backend. */
  take(): { images: Tensor; labels: Tensor } {
    if (this.next + this.batchSize > this.digits.count) {
      this.epoch++;
      this.next = 0;
      this.order = permutation(this.digits.count, this.seed, this.epoch);
    }
    const { images, labels } = this.digits;
    const img = new Float32Array(this.batchSize * 784);
    const lab = new Int32Array(this.batchSize);
    for (let i = 0; i < this.batchSize; i++) {
      const src = this.order[this.next + i];
      img.set(images.subarray(src * 784, (src + 1) * 784), i * 784);
      lab[i] = labels[src];
    }
    this.next += this.batchSize;
    return { images: tensor(img, [this.batchSize, 784]), labels: tensor(lab, [this.batchSize]) };
  }
}

/**
 * The names data set (32,033 names, 1,000 held out), as `loadNames()` of `@fluxion/models/node`
 * gives it: the same split, the same tokenizer (26 letters and the boundary token).
 *
 * @example
 * ```ts
 * const names = namesDataset();
 * names.train.length; // 31033
 * ```
 */
export function namesDataset(): LinesDataset {
  return { ...(splitText(namesText, 'lines', 'names') as LinesDataset), name: 'names' };
}

/**
 * Fetches the spoken-digit asset (`fsdd-digits.tsv` and `fsdd-digits.bin` beside the page: takes
 * 5–9 of every FSDD speaker and digit, 300 recordings at 8 kHz) and centres every recording in
 * `length` samples. All 300 clips are in `train` (the page does not evaluate).
 *
 * @example
 * ```ts
 * const ds = await loadSpokenDigits(new URL('./', document.baseURI).href);
 * ds.train.count; // 300
 * ```
 */
export async function loadSpokenDigits(baseUrl: string, length = FSDD_CLIP_LENGTH): Promise<AudioDataset> {
  const get = async (name: string) => {
    const url = new URL(name, baseUrl).href;
    const response = await fetch(url);
    if (!response.ok) throw new Error(`could not load ${url}: HTTP ${response.status}`);
    return response;
  };
  const [index, samples] = await Promise.all([
    get('fsdd-digits.tsv').then((r) => r.text()),
    get('fsdd-digits.bin').then((r) => r.arrayBuffer()),
  ]);
  const clips = fsddClips(index, new Uint8Array(samples));
  return audioDataset(clips, () => false, { length, name: 'fsdd' });
}
