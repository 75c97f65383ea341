/**
 * A Keras-style model summary: runs the model once on zeros of a given shape, records every
 * module's output shape as it is called, and prints one row per module with its own parameter
 * count, then the totals.
 */
import { noGrad } from '@fluxion/autograd';
import { type DType, fmtShape, scope, Tensor, zeros } from '@fluxion/tensor';
import type { AnyModule } from './module.js';

interface Row {
  name: string;
  type: string;
  depth: number;
  output: string;
  params: number;
}

function describeOutput(out: unknown): string {
  if (out instanceof Tensor) return fmtShape(out.shape);
  if (Array.isArray(out)) return out.map(describeOutput).join(', ');
  return typeof out;
}

/**
 * Prints (and returns) a table of the modules `model` calls on an input of `inputShape`: name,
 * type, output shape and the number of parameters each owns directly, then total, trainable and
 * non-trainable parameter counts. The model runs once in eval mode without gradients; its
 * training flags are restored afterwards.
 *
 * Args:
 *   model: the module.
 *   inputShape: shape of the (all-zero) input, batch axis included.
 *   options.dtype: input dtype (default float32).
 *
 * @example
 * ```ts
 * summary(new Sequential(new Dense(784, 256, { activation: 'relu' }), new Dense(256, 10)), [1, 784]);
 * // Layer (type)      Output shape   Param #
 * // 0 (Dense)         [1,256]         200960
 * // 1 (Dense)         [1,10]            2570
 * // Total params: 203,530 ...
 * ```
 */
export function summary(
  model: AnyModule,
  inputShape: readonly number[],
  options: { dtype?: DType; print?: boolean } = {},
): string {
  const { dtype = 'float32', print = true } = options;
  const named = model.namedModules();
  const rows: Row[] = [];
  const modes = named.map(([, m]) => m.training);
  const backend = model.parameters()[0]?.backend.name;
  const restore: (() => void)[] = [];
  for (const [name, m] of named) {
    const own = m.ownParameterCount();
    const original = m.forward;
    const depth = name === '' ? 0 : name.split('.').length;
    const hadOwn = Object.hasOwn(m, 'forward');
    restore.push(() => (hadOwn ? (m.forward = original) : delete (m as { forward?: unknown }).forward));
    if (name === '' && named.length > 1) continue;
    m.forward = (...args: unknown[]) => {
      const row: Row = { name: name || '(model)', type: m.constructor.name, depth, output: '', params: own };
      rows.push(row);
      const out = original.apply(m, args);
      row.output = describeOutput(out);
      return out;
    };
  }
  try {
    model.eval();
    scope(() => noGrad(() => model.forward(zeros(inputShape, { dtype, backend }))));
  } finally {
    for (const undo of restore) undo();
    named.forEach(([, m], i) => {
      m.training = modes[i];
    });
  }
  const total = model.parameterCount();
  const trainable = model.parameterCount(true);
  const header = ['Layer (type)', 'Output shape', 'Param #'];
  const table = rows.map((r) => [
    `${'  '.repeat(Math.max(0, r.depth - 1))}${r.name} (${r.type})`,
    r.output,
    r.params.toLocaleString('en-US'),
  ]);
  const widths = header.map((h, c) => Math.max(h.length, ...table.map((row) => row[c].length)));
  const line = (cells: string[]) =>
    cells.map((cell, c) => (c === 2 ? cell.padStart(widths[c]) : cell.padEnd(widths[c]))).join('   ');
  const rule = '─'.repeat(widths.reduce((a, b) => a + b + 3, -3));
  const text = [
    rule,
    line(header),
    rule,
    ...table.map(line),
    rule,
    `Total params: ${total.toLocaleString('en-US')}`,
    `Trainable params: ${trainable.toLocaleString('en-US')}`,
    `Non-trainable params: ${(total - trainable).toLocaleString('en-US')}`,
    rule,
  ].join('\n');
  if (print) console.log(text);
  return text;
}
