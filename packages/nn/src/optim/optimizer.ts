/**
 * The optimizer base class: parameter groups with their own hyper-parameters, per-parameter state
 * tensors kept out of scopes, `zeroGrad`, `step` and `stateDict` / `loadStateDict`.
 *
 * A subclass only states its update rule, as an elementwise program (`runProgram` of
 * `@fluxion/tensor`): a few lines of arithmetic over one element of the parameter, its gradient and
 * its state tensors, with the group's hyper-parameters (and step-dependent factors such as Adam's
 * bias corrections) as scalars. Each backend compiles the program once, to a JavaScript loop on the
 * CPU and to one fused WGSL kernel on WebGPU, so a step reads and writes every parameter once,
 * never visits the host, and frees every temporary. The base class runs it under `noGrad`, once
 * per bucket of parameters (see {@link Optimizer.step}), and writes the results with `assign()`.
 */
import { noGrad } from '@fluxion/autograd';
import {
  concat,
  type ElementwiseProgram,
  FluxionError,
  fmtShape,
  keep,
  reshape,
  runProgram,
  scope,
  shapesEqual,
  slice,
  type Tensor,
} from '@fluxion/tensor';

/** Hyper-parameters of an optimizer: numbers and flags, `lr` always among them. */
export type HyperParams = { lr: number } & Record<string, number | boolean>;

/** A parameter group as stored: its parameters and its hyper-parameters. */
export type ParamGroup<H extends HyperParams> = H & { params: Tensor[] };

/** A parameter group as given to a constructor: hyper-parameters missing here come from the defaults. */
export type ParamGroupSpec<H extends HyperParams> = Partial<H> & { params: Iterable<Tensor> };

/** Per-parameter state: the number of steps taken and named tensors (moments, buffers). */
export interface ParamState {
  step: number;
  tensors: Record<string, Tensor>;
}

/**
 * One step's update rule for one parameter: a program whose inputs are `param`, `grad` and then
 * state tensor names, and whose outputs are `param` and then the state tensors it changes, with the
 * scalars it reads.
 */
export interface UpdatePlan {
  program: ElementwiseProgram;
  scalars: Record<string, number>;
}

/**
 * Builds an update program once per variant (the programs of an optimizer differ by which optional
 * terms its flags switch on), so backends compile each variant once.
 *
 * @example
 * ```ts
 * const program = updateProgram('SGD', ['param', 'grad'], ['lr'], ['param = param - lr * grad']);
 * ```
 */
export function updateProgram(
  name: string,
  inputs: readonly string[],
  scalars: readonly string[],
  body: readonly string[],
): ElementwiseProgram {
  const key = JSON.stringify([name, inputs, scalars, body]);
  let program = programs.get(key);
  if (!program) {
    program = { name, inputs, scalars, body, outputs: ['param', ...inputs.slice(2)] };
    programs.set(key, program);
  }
  return program;
}

const programs = new Map<string, ElementwiseProgram>();

/**
 * An optimizer's state in the shape safetensors stores: state tensors named
 * `state.<parameter index>.<name>`, and JSON metadata (type, hyper-parameters, step counts).
 */
export interface OptimizerStateDict {
  tensors: Record<string, Tensor>;
  metadata: Record<string, string>;
}

const METADATA_KEY = 'fluxion.optimizer';

interface SavedMetadata {
  type: string;
  groups: Record<string, number | boolean | number[]>[];
  steps: Record<string, number>;
}

/**
 * Base class of the optimizers.
 *
 * @example
 * ```ts
 * const opt = new Adam(model.parameters(), { lr: 1e-3 });
 * opt.zeroGrad();
 * lossFn().backward();
 * opt.step();
 * ```
 */
export abstract class Optimizer<H extends HyperParams> {
  /** The parameter groups; hyper-parameters may be changed between steps (schedulers set `lr`). */
  readonly paramGroups: ParamGroup<H>[];
  private readonly state = new Map<Tensor, ParamState>();
  /**
   * For the first member of each bucket role (its parameters, or one state of them), the joined
   * output of the last update, whose slices the members are while nobody assigns them elsewhere.
   */
  private joins = new Map<Tensor, Tensor>();

  constructor(
    params: Iterable<Tensor> | readonly ParamGroupSpec<H>[],
    readonly defaults: H,
  ) {
    const list = [...(params as Iterable<Tensor | ParamGroupSpec<H>>)];
    const specs: ParamGroupSpec<H>[] =
      list.length > 0 && !isGroupSpec(list[0])
        ? [{ params: list as Tensor[] } as unknown as ParamGroupSpec<H>]
        : (list as ParamGroupSpec<H>[]);
    const seen = new Set<Tensor>();
    this.paramGroups = specs.map((spec) => {
      const group = { ...defaults, ...spec, params: [...spec.params] } as ParamGroup<H>;
      for (const p of group.params) {
        if (seen.has(p)) throw new FluxionError(this.name, 'a parameter appears in more than one group');
        seen.add(p);
        if (!p.dtype.startsWith('float')) {
          throw new FluxionError(this.name, `parameters must be float, got ${fmtShape(p.shape)} ${p.dtype}`);
        }
      }
      this.validate(group);
      return group;
    });
    if (seen.size === 0) throw new FluxionError(this.name, 'got an empty parameter list');
  }

  /** The optimizer's name in errors and state dicts; subclasses return a literal (minifiers rename classes). */
  get name(): string {
    return 'Optimizer';
  }

  /** Checks a group's hyper-parameters; throws a FluxionError naming the bad one. */
  protected validate(group: H): void {
    for (const [key, value] of Object.entries(group)) {
      if (typeof value === 'number' && !(value >= 0)) {
        throw new FluxionError(this.name, `${key} must be a non-negative number, got ${value}`);
      }
    }
  }

  /** Creates the state tensors of a parameter before its first step. */
  protected abstract initState(param: Tensor, group: ParamGroup<H>): Record<string, Tensor>;

  /**
   * The update rule of one step: its program and scalars. `state.step` has already been
   * incremented (it is 1 on the first step). It is called once per bucket, with the state of the
   * bucket's first parameter, for every parameter of the bucket (they share the group and the step
   * count): the program and its scalars may depend on those two only.
   */
  protected abstract plan(state: ParamState, group: ParamGroup<H>): UpdatePlan;

  /** Every parameter, in group order (the indices of the state dict). */
  private allParams(): Tensor[] {
    return this.paramGroups.flatMap((g) => g.params);
  }

  /** Drops every parameter's gradient (`grad = null`), as PyTorch's `zero_grad(set_to_none=True)`. */
  zeroGrad(): void {
    for (const p of this.allParams()) p.zeroGrad();
  }

  /**
   * Applies one update to every parameter that has a gradient.
   *
   * The update runs once per bucket, not once per parameter (PyTorch's `foreach` path): the
   * parameters of a group that share dtype, backend and step count are taken together, up to
   * {@link BUCKET_ELEMENTS} elements, and their flattened gradients, values and states are joined
   * end to end so that the program runs once over all of them. Afterwards every parameter and
   * state tensor is a view of its slice of the program's output, so on the next step the values and
   * states already lie end to end and only the gradients are copied (one launch on WebGPU for up
   * to 15 of them on lavapipe, 7 where a shader binds 8 buffers). A training step of the VAE
   * (14 parameters) thus makes 2 launches for Adam on lavapipe instead of 14.
   */
  step(): void {
    const previous = this.joins;
    this.joins = new Map();
    noGrad(() => {
      for (const group of this.paramGroups) {
        const ready: Member[] = [];
        for (const param of group.params) {
          const grad = param.grad;
          if (!grad) continue;
          if (!shapesEqual(grad.shape, param.shape) || grad.dtype !== param.dtype) {
            throw new FluxionError(
              this.name,
              `gradient ${fmtShape(grad.shape)} ${grad.dtype} does not match parameter ${fmtShape(param.shape)} ${param.dtype}`,
            );
          }
          const state = this.stateOf(param, group);
          state.step++;
          ready.push({ param, grad, state });
        }
        for (const bucket of buckets(ready)) this.update(bucket, group, previous);
      }
    });
    // The last step's joins: superseded, or of buckets that no longer exist (a parameter skipped).
    for (const t of previous.values()) t.dispose();
  }

  /** One program over a bucket's joined values, gradients and states; results written back as views. */
  private update(
    bucket: readonly Member[],
    group: ParamGroup<H>,
    previous: ReadonlyMap<Tensor, Tensor>,
  ): void {
    scope(() => {
      const { program, scalars } = this.plan(bucket[0].state, group);
      const stateNames = program.inputs.slice(2);
      const roles = [
        bucket.map((m) => m.param),
        ...stateNames.map((name) => bucket.map((m) => m.state.tensors[name])),
      ];
      const grads = flatJoin(bucket.map((m) => m.grad));
      const [first, ...states] = roles.map((members) => joined(members, previous.get(members[0])));
      const outputs = runProgram(program, [first, grads, ...states], scalars);
      roles.forEach((members, r) => {
        let start = 0;
        for (const t of members) {
          t.assign(reshape(slice(outputs[r], [start, start + t.size]), t.shape));
          start += t.size;
        }
        this.joins.set(members[0], keep(outputs[r]));
      });
    });
  }

  private stateOf(param: Tensor, group: ParamGroup<H>): ParamState {
    let state = this.state.get(param);
    if (!state) {
      const tensors = scope(() => noGrad(() => this.initState(param, group)));
      for (const t of Object.values(tensors)) keep(t);
      state = { step: 0, tensors };
      this.state.set(param, state);
    }
    return state;
  }

  /**
   * The state as safetensors stores it: tensors `state.<index>.<name>` (the live tensors, not
   * copies) and metadata with the type, each group's hyper-parameters and parameter indices, and
   * the step counts.
   *
   * @example
   * ```ts
   * const { tensors, metadata } = opt.stateDict();
   * const bytes = await saveSafetensors(tensors, metadata);
   * ```
   */
  stateDict(): OptimizerStateDict {
    const params = this.allParams();
    const tensors: Record<string, Tensor> = {};
    const steps: Record<string, number> = {};
    params.forEach((p, i) => {
      const s = this.state.get(p);
      if (!s) return;
      steps[i] = s.step;
      for (const [name, t] of Object.entries(s.tensors)) tensors[`state.${i}.${name}`] = t;
    });
    let index = 0;
    const groups = this.paramGroups.map(({ params: ps, ...hyper }) => ({
      ...(hyper as Record<string, number | boolean>),
      params: ps.map(() => index++),
    }));
    const meta: SavedMetadata = { type: this.name, groups, steps };
    return { tensors, metadata: { [METADATA_KEY]: JSON.stringify(meta) } };
  }

  /**
   * Restores a state saved by {@link Optimizer.stateDict} (possibly through safetensors) into an
   * optimizer of the same type over parameters of the same shapes: hyper-parameters, step counts
   * and state tensors (shared, not copied). Mismatches are FluxionErrors, and nothing changes then.
   */
  loadStateDict(stateDict: OptimizerStateDict): void {
    const raw = stateDict.metadata?.[METADATA_KEY];
    if (raw === undefined) throw new FluxionError('loadStateDict', `no '${METADATA_KEY}' metadata entry`);
    let meta: SavedMetadata;
    try {
      meta = JSON.parse(raw) as SavedMetadata;
    } catch {
      throw new FluxionError('loadStateDict', `the '${METADATA_KEY}' metadata is not valid JSON`);
    }
    if (meta.type !== this.name) {
      throw new FluxionError('loadStateDict', `state of a ${meta.type} cannot be loaded into a ${this.name}`);
    }
    const params = this.allParams();
    const sizes = this.paramGroups.map((g) => g.params.length);
    const savedSizes = (meta.groups ?? []).map((g) => (Array.isArray(g.params) ? g.params.length : -1));
    if (!shapesEqual(sizes, savedSizes)) {
      throw new FluxionError(
        'loadStateDict',
        `saved groups hold [${savedSizes}] parameters, this optimizer's groups hold [${sizes}]`,
      );
    }
    const loaded = new Map<Tensor, ParamState>();
    const problems: string[] = [];
    for (const [key, t] of Object.entries(stateDict.tensors)) {
      const match = /^state\.(\d+)\.(\w+)$/.exec(key);
      const p = match ? params[Number(match[1])] : undefined;
      if (!match || !p) {
        problems.push(`unexpected entry '${key}'`);
        continue;
      }
      if (!shapesEqual(t.shape, p.shape) || t.backend !== p.backend || !t.dtype.startsWith('float')) {
        problems.push(
          `'${key}' is ${fmtShape(t.shape)} ${t.dtype} on ${t.backend.name}, the parameter ${fmtShape(p.shape)} ${p.dtype} on ${p.backend.name}`,
        );
        continue;
      }
      const s = loaded.get(p) ?? { step: meta.steps?.[match[1]] ?? 0, tensors: {} };
      s.tensors[match[2]] = t;
      loaded.set(p, s);
    }
    if (problems.length) throw new FluxionError('loadStateDict', problems.join('; '));
    meta.groups.forEach(({ params: _indices, ...hyper }, i) => {
      Object.assign(this.paramGroups[i], hyper);
    });
    for (const s of this.state.values()) for (const t of Object.values(s.tensors)) t.dispose();
    this.state.clear();
    for (const t of this.joins.values()) t.dispose();
    this.joins.clear();
    for (const [p, s] of loaded) {
      // retain(): a kept handle of the saved storage; a cast is a new tensor, kept too.
      const own = (t: Tensor) => (t.dtype === p.dtype ? t.retain() : keep(t.cast(p.dtype)));
      const tensors = Object.fromEntries(Object.entries(s.tensors).map(([name, t]) => [name, own(t)]));
      this.state.set(p, { step: s.step, tensors });
    }
  }

  /** Releases the state tensors. */
  dispose(): void {
    for (const s of this.state.values()) for (const t of Object.values(s.tensors)) t.dispose();
    this.state.clear();
    for (const t of this.joins.values()) t.dispose();
    this.joins.clear();
  }
}

/**
 * The members flattened and joined end to end: `last` (the output they were assigned from at the
 * last step) when they are still its consecutive slices, so no copy is made; else a concatenation.
 */
function joined(members: readonly Tensor[], last: Tensor | undefined): Tensor {
  let start = 0;
  const intact =
    last !== undefined &&
    members.every((t) => {
      const ok = t.storage === last.storage && t.offset === last.offset + start && t.isContiguous;
      start += t.size;
      return ok;
    }) &&
    start === last.size;
  return intact ? last : flatJoin(members);
}

/** Tensors flattened and joined end to end; a single one is only flattened (a view when contiguous). */
const flatJoin = (tensors: readonly Tensor[]): Tensor =>
  tensors.length === 1 ? reshape(tensors[0], [-1]) : concat(tensors.map((t) => reshape(t, [-1])));

/** A parameter ready for its update: its gradient and its state (step already counted). */
interface Member {
  param: Tensor;
  grad: Tensor;
  state: ParamState;
}

/**
 * Elements of one bucket at most (PyTorch's distributed buckets hold 25 MB): the joined copies
 * stay small, and far below a WebGPU device's binding limit. A larger parameter is a bucket alone.
 */
const BUCKET_ELEMENTS = 1 << 22;

/** Consecutive members that share dtype, backend and step count, up to {@link BUCKET_ELEMENTS}. */
function buckets(members: readonly Member[]): Member[][] {
  const out: Member[][] = [];
  let current: Member[] = [];
  let size = 0;
  for (const m of members) {
    const head = current[0];
    const fits =
      head !== undefined &&
      head.param.dtype === m.param.dtype &&
      head.param.backend === m.param.backend &&
      head.state.step === m.state.step &&
      size + m.param.size <= BUCKET_ELEMENTS;
    if (!fits && current.length > 0) {
      out.push(current);
      current = [];
      size = 0;
    }
    current.push(m);
    size += m.param.size;
  }
  if (current.length > 0) out.push(current);
  return out;
}

function isGroupSpec(x: unknown): x is { params: Iterable<Tensor> } {
  return typeof x === 'object' && x !== null && 'params' in x && !('shape' in x);
}
