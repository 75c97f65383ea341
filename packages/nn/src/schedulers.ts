/**
 * Learning-rate schedules. A {@link Schedule} is a pure function from a group's base learning rate
 * and a step count to the learning rate at that step; the factories below build the usual ones
 * and combine them (`sequentialLR` switches at milestones, `chainedLR` composes). An
 * {@link LRScheduler} applies a schedule to an optimizer: each `step()` advances the count and
 * sets every group's `lr`.
 *
 * ```ts
 * const sched = new LRScheduler(opt, sequentialLR([linearWarmup(100), cosineAnnealingLR(900)], [100]));
 * for (...) { opt.step(); sched.step(); }
 * ```
 */
import { FluxionError } from '@fluxion/tensor';

/** The learning rate at step `t` (0, 1, 2, …) for a group whose base learning rate is `base`. */
export type Schedule = (base: number, t: number) => number;

function positiveInteger(op: string, name: string, v: number): void {
  if (!Number.isInteger(v) || v <= 0)
    throw new FluxionError(op, `${name} must be a positive integer, got ${v}`);
}

/**
 * `lr = base · γ^⌊t / stepSize⌋`: decays by `gamma` every `stepSize` steps.
 *
 * @example
 * ```ts
 * stepLR(30, 0.1)(1, 65); // 0.01
 * ```
 */
export function stepLR(stepSize: number, gamma = 0.1): Schedule {
  positiveInteger('stepLR', 'stepSize', stepSize);
  return (base, t) => base * gamma ** Math.floor(t / stepSize);
}

/** `lr = base · γᵗ`. @example `exponentialLR(0.95)` */
export function exponentialLR(gamma: number): Schedule {
  return (base, t) => base * gamma ** t;
}

/**
 * Cosine annealing from `base` to `etaMin` over `tMax` steps (SGDR without restarts):
 * `lr = etaMin + (base − etaMin)(1 + cos(π t / tMax)) / 2`, then `etaMin` after `tMax`.
 *
 * @example
 * ```ts
 * cosineAnnealingLR(100)(0.1, 50); // 0.05
 * ```
 */
export function cosineAnnealingLR(tMax: number, etaMin = 0): Schedule {
  positiveInteger('cosineAnnealingLR', 'tMax', tMax);
  return (base, t) => etaMin + ((base - etaMin) * (1 + Math.cos((Math.PI * Math.min(t, tMax)) / tMax))) / 2;
}

/**
 * Linear warm-up: the factor goes linearly from `startFactor` at step 0 to `endFactor` at step
 * `totalSteps`, then stays (PyTorch's `LinearLR`).
 *
 * @example
 * ```ts
 * linearWarmup(10)(1, 5); // 0.5 (from 0 to 1 over 10 steps)
 * ```
 */
export function linearWarmup(totalSteps: number, startFactor = 0, endFactor = 1): Schedule {
  positiveInteger('linearWarmup', 'totalSteps', totalSteps);
  return (base, t) =>
    base * (startFactor + ((endFactor - startFactor) * Math.min(t, totalSteps)) / totalSteps);
}

/**
 * Runs `schedules[i]` from `milestones[i − 1]` on, each seeing its own step count starting at 0
 * (PyTorch's `SequentialLR`). Needs one milestone fewer than schedules, increasing.
 *
 * @example
 * ```ts
 * sequentialLR([linearWarmup(5), cosineAnnealingLR(95)], [5]);
 * ```
 */
export function sequentialLR(schedules: readonly Schedule[], milestones: readonly number[]): Schedule {
  if (schedules.length === 0 || milestones.length !== schedules.length - 1) {
    throw new FluxionError(
      'sequentialLR',
      `needs one milestone fewer than schedules, got ${schedules.length} schedules and ${milestones.length} milestones`,
    );
  }
  if (milestones.some((m, i) => !Number.isInteger(m) || m <= (i ? milestones[i - 1] : 0))) {
    throw new FluxionError(
      'sequentialLR',
      `milestones must be increasing positive integers, got [${milestones}]`,
    );
  }
  return (base, t) => {
    let i = 0;
    while (i < milestones.length && t >= milestones[i]) i++;
    return schedules[i](base, t - (i ? milestones[i - 1] : 0));
  };
}

/**
 * Composes schedules: each one's output is the next one's base, so multiplicative schedules
 * multiply (PyTorch's `ChainedScheduler`).
 *
 * @example
 * ```ts
 * chainedLR(linearWarmup(10), exponentialLR(0.99));
 * ```
 */
export function chainedLR(...schedules: Schedule[]): Schedule {
  return (base, t) => schedules.reduce((lr, s) => s(lr, t), base);
}

/** What a scheduler drives: anything with parameter groups that have an `lr` (every optimizer). */
export interface HasParamGroups {
  readonly paramGroups: readonly { lr: number }[];
}

/**
 * Drives an optimizer's learning rates with a {@link Schedule}: at construction every group's
 * `lr` is remembered as its base and set to `schedule(base, 0)`; each `step()` (once per epoch or
 * iteration, after `optimizer.step()`) advances the count and sets `lr = schedule(base, t)`.
 *
 * Args:
 *   optimizer: the optimizer whose groups' `lr` is set.
 *   schedule: the schedule.
 *
 * @example
 * ```ts
 * const sched = new LRScheduler(opt, stepLR(10, 0.5));
 * for (let epoch = 0; epoch < 30; epoch++) { train(); sched.step(); }
 * ```
 */
export class LRScheduler {
  /** The groups' learning rates at construction. */
  readonly baseLrs: number[];
  /** Steps taken. */
  t = 0;

  constructor(
    readonly optimizer: HasParamGroups,
    readonly schedule: Schedule,
  ) {
    this.baseLrs = optimizer.paramGroups.map((g) => g.lr);
    this.apply();
  }

  private apply(): void {
    this.optimizer.paramGroups.forEach((g, i) => {
      g.lr = this.schedule(this.baseLrs[i], this.t);
    });
  }

  /** Advances one step and updates the learning rates. */
  step(): void {
    this.t++;
    this.apply();
  }

  /** The learning rate of each group now. */
  lastLr(): number[] {
    return this.optimizer.paramGroups.map((g) => g.lr);
  }

  /** The step count and base learning rates, JSON-safe. */
  stateDict(): { t: number; baseLrs: number[] } {
    return { t: this.t, baseLrs: [...this.baseLrs] };
  }

  /** Restores a {@link LRScheduler.stateDict} and sets the learning rates accordingly. */
  loadStateDict(state: { t: number; baseLrs: number[] }): void {
    if (state.baseLrs.length !== this.baseLrs.length) {
      throw new FluxionError(
        'LRScheduler',
        `state has ${state.baseLrs.length} groups, the optimizer ${this.baseLrs.length}`,
      );
    }
    this.t = state.t;
    this.baseLrs.splice(0, this.baseLrs.length, ...state.baseLrs);
    this.apply();
  }
}
