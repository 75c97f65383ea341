/**
 * `Sequential`: a chain of modules, each fed the previous one's output. Its layers are named
 * `0`, `1`, … in state dicts, as in PyTorch.
 */
import { scope, type Tensor } from '@fluxion/tensor';
import { type AnyModule, Module, type Slot } from '../module.js';

/** A module from one tensor to one tensor. */
export type TensorModule = Module<[Tensor], Tensor>;

/**
 * Applies its layers in order: `y = layers[n−1](… layers[0](x))`.
 *
 * Args:
 *   layers: the modules, each taking one tensor and returning one.
 *
 * Shape:
 *   whatever the first layer takes → whatever the last returns.
 *
 * @example
 * ```ts
 * const mlp = new Sequential(new Dense(2, 8), new Tanh(), new Dense(8, 1));
 * mlp.forward(randn([4, 2])).shape;                    // [4, 1]
 * mlp.namedParameters().map(([n]) => n);              // ['0.weight', '0.bias', '2.weight', '2.bias']
 * ```
 */
export class Sequential extends Module {
  readonly layers: TensorModule[];

  constructor(...layers: TensorModule[]) {
    super();
    this.layers = layers;
  }

  protected override ownSlots(): Slot[] {
    return this.layers.map((layer, i) => ({
      name: String(i),
      value: layer as AnyModule,
      set: (v) => (this.layers[i] = v as TensorModule),
    }));
  }

  /** The number of layers. */
  get length(): number {
    return this.layers.length;
  }

  /** Appends a layer. Returns this. */
  add(layer: TensorModule): this {
    this.layers.push(layer);
    return this;
  }

  forward(x: Tensor): Tensor {
    return scope(() => this.layers.reduce((h, layer) => layer.forward(h), x));
  }
}
