/**
 * PyTorch-style methods on Tensor, added by prototype augmentation when `@fluxion/autograd` is
 * imported (the tensor package knows nothing of gradients): `backward`, `retainGrad`, `detach`
 * and `zeroGrad`.
 */
import { Tensor } from '@fluxion/tensor';
import { type BackwardOptions, backward } from './backward.js';
import { detach, GradNode } from './graph.js';

declare module '@fluxion/tensor' {
  interface Tensor {
    /**
     * Backpropagates from this tensor into the `.grad` of the leaves that require a gradient
     * (see `backward` in `@fluxion/autograd`).
     *
     * @example
     * ```ts
     * const loss = mean(square(sub(matmul(x, w), y)));
     * loss.backward();
     * ```
     */
    backward(seed?: Tensor, options?: BackwardOptions): void;
    /**
     * Asks the next `backward()` to fill this non-leaf tensor's `.grad` too (leaves always get it).
     *
     * @example
     * ```ts
     * const h = relu(matmul(x, w));
     * h.retainGrad();
     * sum(h).backward(); // h.grad is now set
     * ```
     */
    retainGrad(): void;
    /**
     * A tensor sharing these values but cut from the graph: no gradient flows through it.
     *
     * @example
     * ```ts
     * const dFake = discriminator(fake.detach()); // the generator gets no gradient from this
     * ```
     */
    detach(): Tensor;
    /**
     * Disposes `.grad` and sets it to null (gradients accumulate until this is called).
     *
     * @example
     * ```ts
     * for (const p of params) p.zeroGrad();
     * ```
     */
    zeroGrad(): void;
  }
}

Tensor.prototype.backward = function (this: Tensor, seed?: Tensor, options?: BackwardOptions): void {
  backward(this, seed, options);
};

Tensor.prototype.retainGrad = function (this: Tensor): void {
  this.assertLive('retainGrad');
  if (this.gradFn instanceof GradNode) this.gradFn.retainedGradOf = this;
};

Tensor.prototype.detach = function (this: Tensor): Tensor {
  return detach(this);
};

Tensor.prototype.zeroGrad = function (this: Tensor): void {
  const grad = this.grad;
  this.grad = null;
  grad?.dispose();
};
