/**
 * Recurrent layers: `GRUCell` and `LSTMCell` (one time step) and the batch-first sequence layers
 * `GRU` and `LSTM` (stacked cells over a whole sequence), with PyTorch's parameter names, layouts,
 * gate order and initialisation, so that a PyTorch `state_dict` saved as safetensors loads by name.
 *
 * The cells and the sequence layers share one step function per kind (`gruStep`, `lstmStep`),
 * and GRU and LSTM share one layer-stacking time loop ({@link RecurrentLayer}).
 */
import {
  add,
  FluxionError,
  fmtShape,
  isFloat,
  linear,
  mul,
  type RandomOptions,
  scope,
  sigmoid,
  slice,
  split,
  stack,
  sub,
  type Tensor,
  tanh,
  unbind,
  zeros,
} from '@fluxion/tensor';
import { uniform } from '../init.js';
import { Module, Parameter } from '../module.js';
import { layerRandom } from './common.js';
import { Dropout } from './dropout.js';

/** Options of {@link GRUCell} and {@link LSTMCell}. */
export interface RecurrentCellOptions extends RandomOptions {
  /** Whether to add the learnable biases `bias_ih` and `bias_hh` (default true). */
  bias?: boolean;
}

/** Options of {@link GRU} and {@link LSTM}. */
export interface RecurrentOptions extends RecurrentCellOptions {
  /** Number of stacked recurrent layers (default 1); layer k > 0 reads layer k − 1's outputs. */
  numLayers?: number;
  /** Dropout probability on the outputs of every layer but the last, in training (default 0). */
  dropout?: number;
}

/** The four tensors of one recurrent layer (biases are undefined without bias). */
interface CellWeights {
  weightIh: Tensor;
  weightHh: Tensor;
  biasIh: Tensor | undefined;
  biasHh: Tensor | undefined;
}

/**
 * One time step from the input projection `xp = x W_ihᵀ + b_ih` (`[B, gates·H]`) and the state
 * (`[h]` for a GRU, `[h, c]` for an LSTM); returns the new state, `h'` first.
 */
type Step = (xp: Tensor, state: readonly Tensor[], w: CellWeights) => Tensor[];

/** GRU step, PyTorch's gate order r, z, n. */
const gruStep: Step = (xp, [h], { weightHh, biasHh }) => {
  const hp = linear(h, weightHh, biasHh);
  const [xRz, xN] = split(xp, [(2 * xp.shape[1]) / 3, xp.shape[1] / 3], 1);
  const [hRz, hN] = split(hp, [(2 * hp.shape[1]) / 3, hp.shape[1] / 3], 1);
  const [r, z] = split(sigmoid(add(xRz, hRz)), 2, 1);
  const n = tanh(add(xN, mul(r, hN)));
  // (1 − z) ⊙ n + z ⊙ h = n + z ⊙ (h − n)
  return [add(n, mul(z, sub(h, n)))];
};

/** LSTM step, PyTorch's gate order i, f, g, o. */
const lstmStep: Step = (xp, [h, c], { weightHh, biasHh }) => {
  const gates = add(xp, linear(h, weightHh, biasHh));
  const [i, f, , o] = split(sigmoid(gates), 4, 1);
  const g = tanh(split(gates, 4, 1)[2]);
  const c2 = add(mul(f, c), mul(i, g));
  return [mul(o, tanh(c2)), c2];
};

/** The recurrence a layer runs: its name, gate count, state count and step. */
interface Kind {
  name: string;
  gates: number;
  states: number;
  step: Step;
}

const GRU_KIND: Kind = { name: 'GRU', gates: 3, states: 1, step: gruStep };
const LSTM_KIND: Kind = { name: 'LSTM', gates: 4, states: 2, step: lstmStep };

function checkSizes(op: string, sizes: Record<string, number>): void {
  for (const [name, n] of Object.entries(sizes)) {
    if (!Number.isInteger(n) || n <= 0) {
      throw new FluxionError(op, `${name} must be a positive integer, got ${n}`);
    }
  }
}

/**
 * The parameters of one layer, each U(−1/√H, 1/√H) as PyTorch initialises them, drawn in the
 * order weight_ih, weight_hh, bias_ih, bias_hh from the layer's stream.
 */
function makeWeights(
  kind: Kind,
  inputSize: number,
  hiddenSize: number,
  bias: boolean,
  random: RandomOptions,
): Parameter[] {
  const bound = 1 / Math.sqrt(hiddenSize);
  const rows = kind.gates * hiddenSize;
  const shapes = [[rows, inputSize], [rows, hiddenSize], ...(bias ? [[rows], [rows]] : [])];
  return shapes.map((shape) =>
    scope(() => new Parameter(uniform(shape, { ...random, low: -bound, high: bound }))),
  );
}

function describe(t: Tensor): string {
  return `${fmtShape(t.shape)} ${t.dtype}`;
}

/** Checks a state tensor's shape (and that it is a float tensor). */
function checkState(op: string, what: string, t: Tensor, shape: readonly number[]): void {
  if (!isFloat(t.dtype) || t.rank !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new FluxionError(op, `expected ${what} ${fmtShape(shape)} (float), got ${describe(t)}`);
  }
}

/** Zeros of `[batch, hidden]` on the input's backend and dtype. */
const zeroState = (x: Tensor, batch: number, hidden: number): Tensor =>
  zeros([batch, hidden], { dtype: x.dtype, backend: x.backend.name });

/** Shared by GRUCell and LSTMCell: the parameters and one step of the recurrence. */
abstract class RecurrentCell<In extends unknown[], Out> extends Module<In, Out> {
  /** `[gates·H, inputSize]`: the input-to-hidden weights of the gates, stacked in gate order. */
  readonly weight_ih: Parameter;
  /** `[gates·H, hiddenSize]`: the hidden-to-hidden weights of the gates, stacked in gate order. */
  readonly weight_hh: Parameter;
  /** `[gates·H]`: the input-to-hidden biases (null without bias). */
  readonly bias_ih: Parameter | null;
  /** `[gates·H]`: the hidden-to-hidden biases (null without bias). */
  readonly bias_hh: Parameter | null;

  protected constructor(
    private readonly _kind: Kind,
    readonly inputSize: number,
    readonly hiddenSize: number,
    options: RecurrentCellOptions,
  ) {
    super();
    const op = `${_kind.name}Cell`;
    checkSizes(op, { inputSize, hiddenSize });
    const { bias = true } = options;
    const [wIh, wHh, bIh, bHh] = makeWeights(_kind, inputSize, hiddenSize, bias, layerRandom(options));
    this.weight_ih = wIh;
    this.weight_hh = wHh;
    this.bias_ih = bIh ?? null;
    this.bias_hh = bHh ?? null;
  }

  /** One step from `x [B, inputSize]` and the states (`[B, hiddenSize]` each, zeros if absent). */
  protected cellStep(x: Tensor, state: readonly Tensor[] | undefined): Tensor[] {
    const op = `${this._kind.name}Cell`;
    if (!isFloat(x.dtype) || x.rank !== 2 || x.shape[1] !== this.inputSize) {
      throw new FluxionError(op, `expected input [batch, ${this.inputSize}] (float), got ${describe(x)}`);
    }
    const batch = x.shape[0];
    const names = this._kind.states === 1 ? ['h'] : ['h', 'c'];
    if (state) {
      if (state.length !== this._kind.states) {
        throw new FluxionError(op, `expected the state [${names.join(', ')}], got ${state.length} tensors`);
      }
      for (const [i, s] of state.entries()) checkState(op, names[i], s, [batch, this.hiddenSize]);
    }
    const w: CellWeights = {
      weightIh: this.weight_ih,
      weightHh: this.weight_hh,
      biasIh: this.bias_ih ?? undefined,
      biasHh: this.bias_hh ?? undefined,
    };
    return scope(() =>
      this._kind.step(
        linear(x, w.weightIh, w.biasIh),
        state ?? names.map(() => zeroState(x, batch, this.hiddenSize)),
        w,
      ),
    );
  }

  override toString(): string {
    return `${this._kind.name}Cell(${this.inputSize} → ${this.hiddenSize})`;
  }
}

/**
 * Gated recurrent unit, one time step (PyTorch's `GRUCell`):
 *
 *   r = σ(W_ir x + b_ir + W_hr h + b_hr)
 *   z = σ(W_iz x + b_iz + W_hz h + b_hz)
 *   n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))
 *   h' = (1 − z) ⊙ n + z ⊙ h
 *
 * Args:
 *   inputSize: size of each input vector.
 *   hiddenSize: size of the hidden state.
 *   options.bias: add the biases `bias_ih`, `bias_hh` (default true).
 *   options.seed / options.generator: random stream of the initialisation; dtype, backend: of the parameters.
 *
 * Shape:
 *   input `[B, inputSize]`, optional h `[B, hiddenSize]` (zeros if omitted) → h' `[B, hiddenSize]`.
 *
 * Attributes (PyTorch's names and layouts):
 *   weight_ih: `[3·hiddenSize, inputSize]`, rows (W_ir | W_iz | W_in).
 *   weight_hh: `[3·hiddenSize, hiddenSize]`, rows (W_hr | W_hz | W_hn).
 *   bias_ih, bias_hh: `[3·hiddenSize]` in the same order (null without bias).
 *   Every parameter starts U(−1/√hiddenSize, 1/√hiddenSize).
 *
 * @example
 * ```ts
 * const cell = new GRUCell(10, 20, { seed: 0 });
 * let h = zeros([3, 20]);
 * for (const x of inputs) h = cell.forward(x, h); // x: [3, 10]
 * ```
 */
export class GRUCell extends RecurrentCell<[x: Tensor, h?: Tensor], Tensor> {
  constructor(inputSize: number, hiddenSize: number, options: RecurrentCellOptions = {}) {
    super(GRU_KIND, inputSize, hiddenSize, options);
  }

  forward(x: Tensor, h?: Tensor): Tensor {
    return this.cellStep(x, h ? [h] : undefined)[0];
  }
}

/**
 * Long short-term memory, one time step (PyTorch's `LSTMCell`):
 *
 *   i = σ(W_ii x + b_ii + W_hi h + b_hi)
 *   f = σ(W_if x + b_if + W_hf h + b_hf)
 *   g = tanh(W_ig x + b_ig + W_hg h + b_hg)
 *   o = σ(W_io x + b_io + W_ho h + b_ho)
 *   c' = f ⊙ c + i ⊙ g
 *   h' = o ⊙ tanh(c')
 *
 * Args:
 *   inputSize: size of each input vector.
 *   hiddenSize: size of the hidden and cell states.
 *   options.bias: add the biases `bias_ih`, `bias_hh` (default true).
 *   options.seed / options.generator: random stream of the initialisation; dtype, backend: of the parameters.
 *
 * Shape:
 *   input `[B, inputSize]`, optional state `[h, c]`, each `[B, hiddenSize]` (zeros if omitted) →
 *   `[h', c']`, each `[B, hiddenSize]`.
 *
 * Attributes (PyTorch's names and layouts):
 *   weight_ih: `[4·hiddenSize, inputSize]`, rows (W_ii | W_if | W_ig | W_io).
 *   weight_hh: `[4·hiddenSize, hiddenSize]`, rows (W_hi | W_hf | W_hg | W_ho).
 *   bias_ih, bias_hh: `[4·hiddenSize]` in the same order (null without bias).
 *   Every parameter starts U(−1/√hiddenSize, 1/√hiddenSize).
 *
 * @example
 * ```ts
 * const cell = new LSTMCell(10, 20, { seed: 0 });
 * let state: [Tensor, Tensor] = [zeros([3, 20]), zeros([3, 20])];
 * for (const x of inputs) state = cell.forward(x, state); // x: [3, 10]
 * ```
 */
export class LSTMCell extends RecurrentCell<
  [x: Tensor, state?: readonly [Tensor, Tensor]],
  [Tensor, Tensor]
> {
  constructor(inputSize: number, hiddenSize: number, options: RecurrentCellOptions = {}) {
    super(LSTM_KIND, inputSize, hiddenSize, options);
  }

  forward(x: Tensor, state?: readonly [Tensor, Tensor]): [Tensor, Tensor] {
    const [h, c] = this.cellStep(x, state);
    return [h, c];
  }
}

/**
 * Shared by GRU and LSTM: the per-layer parameters, named as PyTorch names them
 * (`weight_ih_l0`, `weight_hh_l0`, `bias_ih_l0`, `bias_hh_l0`, `weight_ih_l1`, …), and the time
 * loop over stacked layers.
 */
abstract class RecurrentLayer<In extends unknown[], Out> extends Module<In, Out> {
  readonly numLayers: number;
  /** The dropout probability between layers. */
  readonly dropout: number;
  readonly bias: boolean;
  /**
   * Applied to the outputs of every layer but the last, in training mode. Not a child module (the
   * `_` keeps it out of the module tree), so that the layer stays one leaf in `summary`; it
   * follows this layer's training flag.
   */
  private readonly _dropout: Dropout;

  protected constructor(
    private readonly _kind: Kind,
    readonly inputSize: number,
    readonly hiddenSize: number,
    options: RecurrentOptions,
  ) {
    super();
    const { bias = true, numLayers = 1, dropout = 0 } = options;
    checkSizes(_kind.name, { inputSize, hiddenSize, numLayers });
    if (!(dropout >= 0 && dropout <= 1)) {
      throw new FluxionError(_kind.name, `dropout must lie in [0, 1], got ${dropout}`);
    }
    this.numLayers = numLayers;
    this.dropout = dropout;
    this.bias = bias;
    const random = layerRandom(options);
    this._dropout = new Dropout(dropout, { generator: random.generator });
    const fields = this as unknown as Record<string, Parameter>;
    for (let l = 0; l < numLayers; l++) {
      const params = makeWeights(_kind, l === 0 ? inputSize : hiddenSize, hiddenSize, bias, random);
      ['weight_ih', 'weight_hh', 'bias_ih', 'bias_hh'].slice(0, params.length).forEach((name, i) => {
        fields[`${name}_l${l}`] = params[i];
      });
    }
  }

  /** The current parameters of layer `l` (looked up by name, so replacements by `to()` count). */
  protected layerWeights(l: number): CellWeights {
    const fields = this as unknown as Record<string, Tensor | undefined>;
    return {
      weightIh: fields[`weight_ih_l${l}`]!,
      weightHh: fields[`weight_hh_l${l}`]!,
      biasIh: fields[`bias_ih_l${l}`],
      biasHh: fields[`bias_hh_l${l}`],
    };
  }

  /**
   * Runs the stacked recurrence over `x [B, T, inputSize]` from the initial states (each
   * `[numLayers, B, H]`, zeros if absent). Returns the last layer's outputs `[B, T, H]` and the
   * final states, each `[numLayers, B, H]`.
   */
  protected run(x: Tensor, initial: readonly Tensor[] | undefined): [Tensor, Tensor[]] {
    const { name, states, step } = this._kind;
    if (!isFloat(x.dtype) || x.rank !== 3 || x.shape[2] !== this.inputSize) {
      throw new FluxionError(
        name,
        `expected input [batch, time, ${this.inputSize}] (batch first, float), got ${describe(x)}`,
      );
    }
    const [batch, steps] = x.shape;
    if (steps === 0) throw new FluxionError(name, `the sequence is empty: input ${describe(x)}`);
    const names = states === 1 ? ['h0'] : ['h0', 'c0'];
    const stateShape = [this.numLayers, batch, this.hiddenSize];
    if (initial) {
      if (initial.length !== states) {
        throw new FluxionError(
          name,
          `expected the state [${names.join(', ')}], got ${initial.length} tensors`,
        );
      }
      for (const [i, s] of initial.entries()) checkState(name, names[i], s, stateShape);
    }
    return scope(() => {
      let input = x;
      const finals: Tensor[][] = [];
      for (let l = 0; l < this.numLayers; l++) {
        const w = this.layerWeights(l);
        // The input projection of every time step in one product, [B, T, gates·H], read step by
        // step (unbind: its backward joins the steps' gradients in one concat, linear in T).
        const projected = unbind(linear(input, w.weightIh, w.biasIh), 1);
        let state = initial
          ? initial.map((s) => slice(s, l))
          : names.map(() => zeroState(x, batch, this.hiddenSize));
        const outputs: Tensor[] = [];
        for (let t = 0; t < steps; t++) {
          const prev = state;
          state = scope(() => step(projected[t], prev, w));
          outputs.push(state[0]);
        }
        finals.push(state);
        input = stack(outputs, 1);
        if (l < this.numLayers - 1) {
          this._dropout.training = this.training;
          input = this._dropout.forward(input);
        }
      }
      const last = Array.from({ length: states }, (_, k) =>
        stack(
          finals.map((f) => f[k]),
          0,
        ),
      );
      return [input, last];
    });
  }

  override toString(): string {
    const layers = this.numLayers > 1 ? `, ${this.numLayers} layers` : '';
    return `${this._kind.name}(${this.inputSize} → ${this.hiddenSize}${layers})`;
  }
}

/**
 * Multi-layer gated recurrent unit over a batch-first sequence (PyTorch's `GRU` with
 * `batch_first=True`). Every layer runs, for t = 1 … T,
 *
 *   r_t = σ(W_ir x_t + b_ir + W_hr h_{t−1} + b_hr)
 *   z_t = σ(W_iz x_t + b_iz + W_hz h_{t−1} + b_hz)
 *   n_t = tanh(W_in x_t + b_in + r_t ⊙ (W_hn h_{t−1} + b_hn))
 *   h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t−1}
 *
 * and layer k > 0 reads the outputs h_t of layer k − 1 (after dropout in training, if set). The
 * input projections of all time steps are one matrix product per layer; only the hidden
 * projection runs per step. Not supported: bidirectional layers, unbatched `[T, I]` input.
 *
 * Args:
 *   inputSize: size of each input vector.
 *   hiddenSize: size of the hidden state.
 *   options.numLayers: stacked layers (default 1).
 *   options.bias: add the biases (default true).
 *   options.dropout: dropout on each layer's outputs but the last, in training (default 0).
 *   options.seed / options.generator: random stream of the initialisation (and of the dropout);
 *   dtype, backend: of the parameters.
 *
 * Shape:
 *   input `[B, T, inputSize]`, optional h0 `[numLayers, B, hiddenSize]` (zeros if omitted) →
 *   `[output, hN]`: output `[B, T, hiddenSize]` (the last layer's h_t), hN
 *   `[numLayers, B, hiddenSize]` (every layer's h_T).
 *
 * Attributes (PyTorch's state-dict names and layouts, for k = 0 … numLayers − 1):
 *   weight_ih_lk: `[3·hiddenSize, inputSize]` for k = 0, `[3·hiddenSize, hiddenSize]` after;
 *   rows (W_ir | W_iz | W_in).
 *   weight_hh_lk: `[3·hiddenSize, hiddenSize]`, rows (W_hr | W_hz | W_hn).
 *   bias_ih_lk, bias_hh_lk: `[3·hiddenSize]` (absent without bias).
 *   Every parameter starts U(−1/√hiddenSize, 1/√hiddenSize).
 *
 * @example
 * ```ts
 * const gru = new GRU(10, 20, { numLayers: 2, seed: 0 });
 * const [output, hN] = gru.forward(randn([3, 5, 10])); // [3, 5, 20], [2, 3, 20]
 * // Weights from PyTorch, saved with safetensors.torch.save_file(torch_gru.state_dict(), path):
 * gru.loadStateDict(loadSafetensors(await fs.readFile(path)).tensors);
 * ```
 */
export class GRU extends RecurrentLayer<[x: Tensor, h0?: Tensor], [Tensor, Tensor]> {
  constructor(inputSize: number, hiddenSize: number, options: RecurrentOptions = {}) {
    super(GRU_KIND, inputSize, hiddenSize, options);
  }

  forward(x: Tensor, h0?: Tensor): [Tensor, Tensor] {
    const [output, [hN]] = this.run(x, h0 ? [h0] : undefined);
    return [output, hN];
  }
}

/**
 * Multi-layer long short-term memory over a batch-first sequence (PyTorch's `LSTM` with
 * `batch_first=True`). Every layer runs, for t = 1 … T,
 *
 *   i_t = σ(W_ii x_t + b_ii + W_hi h_{t−1} + b_hi)
 *   f_t = σ(W_if x_t + b_if + W_hf h_{t−1} + b_hf)
 *   g_t = tanh(W_ig x_t + b_ig + W_hg h_{t−1} + b_hg)
 *   o_t = σ(W_io x_t + b_io + W_ho h_{t−1} + b_ho)
 *   c_t = f_t ⊙ c_{t−1} + i_t ⊙ g_t
 *   h_t = o_t ⊙ tanh(c_t)
 *
 * and layer k > 0 reads the outputs h_t of layer k − 1 (after dropout in training, if set). The
 * input projections of all time steps are one matrix product per layer; only the hidden
 * projection runs per step. Not supported: bidirectional layers, `proj_size`, unbatched input.
 *
 * Args:
 *   inputSize: size of each input vector.
 *   hiddenSize: size of the hidden and cell states.
 *   options.numLayers: stacked layers (default 1).
 *   options.bias: add the biases (default true).
 *   options.dropout: dropout on each layer's outputs but the last, in training (default 0).
 *   options.seed / options.generator: random stream of the initialisation (and of the dropout);
 *   dtype, backend: of the parameters.
 *
 * Shape:
 *   input `[B, T, inputSize]`, optional state `[h0, c0]`, each `[numLayers, B, hiddenSize]`
 *   (zeros if omitted) → `[output, [hN, cN]]`: output `[B, T, hiddenSize]` (the last layer's
 *   h_t), hN and cN `[numLayers, B, hiddenSize]` (every layer's h_T and c_T).
 *
 * Attributes (PyTorch's state-dict names and layouts, for k = 0 … numLayers − 1):
 *   weight_ih_lk: `[4·hiddenSize, inputSize]` for k = 0, `[4·hiddenSize, hiddenSize]` after;
 *   rows (W_ii | W_if | W_ig | W_io).
 *   weight_hh_lk: `[4·hiddenSize, hiddenSize]`, rows (W_hi | W_hf | W_hg | W_ho).
 *   bias_ih_lk, bias_hh_lk: `[4·hiddenSize]` (absent without bias).
 *   Every parameter starts U(−1/√hiddenSize, 1/√hiddenSize).
 *
 * @example
 * ```ts
 * const lstm = new LSTM(10, 20, { numLayers: 2, seed: 0 });
 * const [output, [hN, cN]] = lstm.forward(randn([3, 5, 10])); // [3, 5, 20], [2, 3, 20] twice
 * lstm.forward(randn([3, 5, 10]), [hN, cN]); // continue from the final state
 * ```
 */
export class LSTM extends RecurrentLayer<
  [x: Tensor, state?: readonly [Tensor, Tensor]],
  [Tensor, [Tensor, Tensor]]
> {
  constructor(inputSize: number, hiddenSize: number, options: RecurrentOptions = {}) {
    super(LSTM_KIND, inputSize, hiddenSize, options);
  }

  forward(x: Tensor, state?: readonly [Tensor, Tensor]): [Tensor, [Tensor, Tensor]] {
    const [output, [hN, cN]] = this.run(x, state);
    return [output, [hN, cN]];
  }
}
