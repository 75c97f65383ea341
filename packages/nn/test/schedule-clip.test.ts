/**
 * Learning-rate schedules against their closed forms, the scheduler driving an optimizer's groups,
 * and gradient clipping by total norm and by value.
 */
import {
  chainedLR,
  clipGradNorm,
  clipGradValue,
  cosineAnnealingLR,
  exponentialLR,
  LRScheduler,
  linearWarmup,
  Parameter,
  SGD,
  sequentialLR,
  stepLR,
} from '@fluxion/nn';
import { FluxionError, type Tensor, tensor, zeros } from '@fluxion/tensor';
import { describe, expect, it } from 'vitest';
import { expectClose } from './helpers.js';

describe('schedules', () => {
  it('follow their closed forms', () => {
    const s = stepLR(3, 0.5);
    expect([0, 2, 3, 5, 6, 9].map((t) => s(1, t))).toEqual([1, 1, 0.5, 0.5, 0.25, 0.125]);
    expect(exponentialLR(0.9)(2, 3)).toBeCloseTo(2 * 0.729, 12);
    const cos = cosineAnnealingLR(10, 0.1);
    expect(cos(1, 0)).toBeCloseTo(1, 12);
    expect(cos(1, 5)).toBeCloseTo(0.55, 12);
    expect(cos(1, 10)).toBeCloseTo(0.1, 12);
    expect(cos(1, 15)).toBeCloseTo(0.1, 12);
    const warm = linearWarmup(4, 0.2);
    expect([0, 1, 2, 4, 8].map((t) => warm(1, t))).toEqual(
      [0.2, 0.4, 0.6000000000000001, 1, 1].map((v) => expect.closeTo(v, 12)),
    );
  });

  it('compose: sequential switches at milestones with a fresh count; chained multiplies', () => {
    const seq = sequentialLR([linearWarmup(2), cosineAnnealingLR(4)], [2]);
    expect([0, 1, 2, 4, 6].map((t) => seq(1, t))).toEqual(
      [0, 0.5, 1, 0.5, 0].map((v) => expect.closeTo(v, 12)),
    );
    const chain = chainedLR(linearWarmup(2, 0.5), exponentialLR(0.5));
    expect(chain(1, 1)).toBeCloseTo(0.75 * 0.5, 12);
    expect(() => sequentialLR([stepLR(1)], [3])).toThrow(FluxionError);
    expect(() => stepLR(0)).toThrow(/stepLR: stepSize must be a positive integer/);
  });

  it('LRScheduler sets every group’s lr from its own base and saves its position', () => {
    const p = new Parameter(zeros([1]));
    const q = new Parameter(zeros([1]));
    const opt = new SGD([{ params: [p] }, { params: [q], lr: 1 }], { lr: 0.1 });
    const sched = new LRScheduler(opt, stepLR(2, 0.1));
    expect(sched.lastLr()).toEqual([0.1, 1]);
    sched.step();
    sched.step();
    expect(sched.lastLr().map((v) => Number(v.toPrecision(12)))).toEqual([0.01, 0.1]);
    const state = sched.stateDict();
    const other = new LRScheduler(new SGD([{ params: [p] }, { params: [q] }], { lr: 5 }), stepLR(2, 0.1));
    other.loadStateDict(state);
    expect(other.lastLr().map((v) => Number(v.toPrecision(12)))).toEqual([0.01, 0.1]);
  });
});

describe('gradient clipping', () => {
  const withGrads = (...grads: number[][]) =>
    grads.map((g) => {
      const p = new Parameter(zeros([g.length]));
      p.grad = tensor(g);
      return p;
    });

  it('clipGradNorm rescales to the total norm and returns the norm before clipping', async () => {
    const params = withGrads([3, 4], [12]); // total norm 13
    const norm = clipGradNorm(params, 6.5);
    await expectClose(norm, [13]);
    await expectClose(params[0].grad as Tensor, [1.5, 2], { rtol: 1e-6 });
    await expectClose(params[1].grad as Tensor, [6], { rtol: 1e-6 });
    const small = withGrads([0.3, 0.4]);
    clipGradNorm(small, 1);
    await expectClose(small[0].grad as Tensor, [0.3, 0.4]);
  });

  it('clipGradNorm with the ∞-norm, skipping parameters without gradients', async () => {
    const params = [...withGrads([1, -4], [2]), new Parameter(zeros([2]))];
    await expectClose(clipGradNorm(params, 2, Number.POSITIVE_INFINITY), [4]);
    await expectClose(params[0].grad as Tensor, [0.5, -2], { rtol: 1e-6 });
  });

  it('clipGradValue clamps every element', async () => {
    const params = withGrads([-3, 0.2, 5]);
    clipGradValue(params, 1);
    await expectClose(params[0].grad as Tensor, [-1, 0.2, 1]);
    expect(() => clipGradValue(params, -1)).toThrow(/clipGradValue: clipValue must be ≥ 0/);
  });
});
