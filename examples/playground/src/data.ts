/**
 * The playground's MNIST digits: the packed asset that `vite.config.ts` emits, and seeded shuffled
 * batches of it, ordered by `permutation` from `@fluxion/models` (the package's browser-safe main
 * entry; its MNIST loader reads files and is in `@fluxion/models/node`).
 */
import { permutation } from '@fluxion/models';
import { type Tensor, tensor } from '@fluxion/tensor';

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
