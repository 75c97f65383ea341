/**
 * Elementwise programs: several outputs computed element by element from several same-shaped
 * inputs in one pass over memory. A program is a few lines of arithmetic, written once, that each
 * backend compiles to its own code (a JavaScript loop on the CPU, a WGSL shader on WebGPU). Its
 * purpose is fusion where primitives would cost a pass over memory each: an Adam step is a dozen
 * primitives (a dozen reads and writes of every parameter) but one program (one read of the
 * parameter, its gradient and two moments, one write of three results).
 *
 * Programs are not differentiable: their outputs never require a gradient, and they are meant for
 * work done under `noGrad` (optimizer updates, running statistics).
 *
 * The language is the subset that JavaScript and WGSL read the same way: names, float literals
 * (with a decimal point or an exponent: `1.0`, `1e-8`), `+ - * /`, parentheses, and the functions
 * `sqrt`, `max`, `min` and `abs`. Statements are `name = expression`; a name is an input, a
 * scalar, or a local assigned by an earlier statement. The CPU evaluates in float64 and rounds when
 * it stores a float32 output; WebGPU evaluates in float32.
 */
import { FluxionError } from './errors.js';

/**
 * An elementwise program.
 *
 * @example
 * ```ts
 * const lerp: ElementwiseProgram = {
 *   name: 'lerp',
 *   inputs: ['a', 'b'],
 *   scalars: ['t'],
 *   body: ['d = b - a', 'y = a + t * d'],
 *   outputs: ['y', 'd'],
 * };
 * ```
 */
export interface ElementwiseProgram {
  /** Name in errors and shader labels. */
  readonly name: string;
  /** Names bound to the input tensors, in order. */
  readonly inputs: readonly string[];
  /** Names bound to scalar numbers, given by name to `runProgram`. */
  readonly scalars: readonly string[];
  /** Statements `name = expression`, run in order for every element. */
  readonly body: readonly string[];
  /** Names whose final values are written to the outputs, in order. */
  readonly outputs: readonly string[];
}

/** One token of an expression. */
export type ProgramToken =
  | { kind: 'name'; text: string }
  | { kind: 'number'; text: string }
  | { kind: 'function'; text: ProgramFunction }
  | { kind: 'punct'; text: string };

/** Functions a program may call. */
export type ProgramFunction = 'sqrt' | 'max' | 'min' | 'abs';
const FUNCTIONS: ReadonlySet<string> = new Set<ProgramFunction>(['sqrt', 'max', 'min', 'abs']);

/** A checked program: statements split into tokens, ready for a backend to compile. */
export interface ParsedProgram {
  readonly name: string;
  readonly inputs: readonly string[];
  readonly scalars: readonly string[];
  readonly outputs: readonly string[];
  /** Every name a statement assigns that is not an input, in first-assignment order. */
  readonly locals: readonly string[];
  readonly statements: readonly { target: string; expression: readonly ProgramToken[] }[];
  /** A string that identifies the program's text (compiled code is cached by it). */
  readonly key: string;
}

const TOKEN = /\s*(?:(\d+\.\d*(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+)|([A-Za-z_]\w*)|([-+*/(),]))/y;
const STATEMENT = /^\s*([A-Za-z_]\w*)\s*=(.*)$/s;

/**
 * Checks a program and splits it into tokens; the result is cached per program object.
 *
 * @example
 * ```ts
 * parseProgram({ name: 'twice', inputs: ['x'], scalars: [], body: ['y = 2.0 * x'], outputs: ['y'] });
 * ```
 */
export function parseProgram(program: ElementwiseProgram): ParsedProgram {
  const cached = parsed.get(program);
  if (cached) return cached;
  const fail = (message: string): never => {
    throw new FluxionError(`program ${program.name}`, message);
  };
  const known = new Set<string>();
  const declare = (name: string, role: string) => {
    if (FUNCTIONS.has(name)) fail(`${role} '${name}' shadows a function`);
    if (known.has(name)) fail(`${role} '${name}' is declared twice`);
    known.add(name);
  };
  for (const name of program.inputs) declare(name, 'input');
  for (const name of program.scalars) declare(name, 'scalar');
  const scalars = new Set(program.scalars);
  const locals: string[] = [];
  const statements = program.body.map((line) => {
    const match = STATEMENT.exec(line);
    if (!match) return fail(`'${line}' is not a statement 'name = expression'`);
    const [, target, source] = match;
    const expression = tokenize(source, line, known, fail);
    if (scalars.has(target)) fail(`'${line}' assigns to the scalar '${target}'`);
    if (FUNCTIONS.has(target)) fail(`'${line}' assigns to the function '${target}'`);
    if (!known.has(target)) {
      known.add(target);
      locals.push(target);
    }
    return { target, expression };
  });
  for (const name of program.outputs) {
    if (!known.has(name) || scalars.has(name)) fail(`output '${name}' is not an input or an assigned name`);
  }
  if (program.outputs.length === 0) fail('a program needs at least one output');
  const result: ParsedProgram = {
    name: program.name,
    inputs: [...program.inputs],
    scalars: [...program.scalars],
    outputs: [...program.outputs],
    locals,
    statements,
    key: JSON.stringify([program.inputs, program.scalars, program.body, program.outputs]),
  };
  parsed.set(program, result);
  return result;
}

const parsed = new WeakMap<ElementwiseProgram, ParsedProgram>();

function tokenize(
  source: string,
  line: string,
  known: ReadonlySet<string>,
  fail: (message: string) => never,
): ProgramToken[] {
  const tokens: ProgramToken[] = [];
  TOKEN.lastIndex = 0;
  let depth = 0;
  while (TOKEN.lastIndex < source.length) {
    if (/^\s*$/.test(source.slice(TOKEN.lastIndex))) break;
    const start = TOKEN.lastIndex;
    const m = TOKEN.exec(source);
    if (!m) {
      const rest = source.slice(start).trim();
      const hint = /^\d+\b/.test(rest) ? ' (write float literals with a point, e.g. 1.0)' : '';
      return fail(`'${line}': cannot read '${rest}'${hint}`);
    }
    const [, number, name, punct] = m;
    if (number !== undefined) tokens.push({ kind: 'number', text: number });
    else if (name !== undefined) {
      if (FUNCTIONS.has(name)) tokens.push({ kind: 'function', text: name as ProgramFunction });
      else if (known.has(name)) tokens.push({ kind: 'name', text: name });
      else fail(`'${line}': unknown name '${name}'`);
    } else {
      if (punct === '(') depth++;
      if (punct === ')' && --depth < 0) fail(`'${line}': unbalanced parentheses`);
      tokens.push({ kind: 'punct', text: punct });
    }
  }
  if (depth !== 0) fail(`'${line}': unbalanced parentheses`);
  if (tokens.length === 0) fail(`'${line}' has no expression`);
  tokens.forEach((t, i) => {
    if (t.kind === 'function' && tokens[i + 1]?.text !== '(') fail(`'${line}': ${t.text} must be called`);
  });
  checkGrammar(tokens, (message) => fail(`'${line}': ${message}`));
  return tokens;
}

const ARITY: Record<ProgramFunction, number> = { sqrt: 1, abs: 1, max: 2, min: 2 };

/**
 * Checks that tokens form one expression of the grammar
 * `sum := product (('+' | '-') product)*`, `product := unary (('*' | '/') unary)*`,
 * `unary := '-' unary | atom`, `atom := number | name | function '(' sum (',' sum)* ')' | '(' sum ')'`,
 * with each function given its number of arguments.
 */
function checkGrammar(tokens: readonly ProgramToken[], fail: (message: string) => never): void {
  let i = 0;
  const peek = () => tokens[i]?.text;
  const expect = (text: string) => {
    if (peek() !== text)
      fail(`expected '${text}' ${i < tokens.length ? `before '${peek()}'` : 'at the end'}`);
    i++;
  };
  const sum = (): void => {
    product();
    while (peek() === '+' || peek() === '-') {
      i++;
      product();
    }
  };
  const product = (): void => {
    unary();
    while (peek() === '*' || peek() === '/') {
      i++;
      unary();
    }
  };
  const unary = (): void => {
    if (peek() === '-') {
      i++;
      unary();
    } else atom();
  };
  const atom = (): void => {
    const t = tokens[i];
    if (!t) fail('the expression ends too early');
    i++;
    if (t.kind === 'name' || t.kind === 'number') return;
    if (t.kind === 'function') {
      expect('(');
      let args = 1;
      sum();
      while (peek() === ',') {
        i++;
        args++;
        sum();
      }
      expect(')');
      if (args !== ARITY[t.text]) fail(`${t.text} takes ${ARITY[t.text]} argument(s), got ${args}`);
      return;
    }
    if (t.text === '(') {
      sum();
      expect(')');
      return;
    }
    fail(`unexpected '${t.text}'`);
  };
  sum();
  if (i < tokens.length) fail(`unexpected '${peek()}'`);
}

/**
 * Writes an expression back as source text, renaming names and functions for a target language.
 *
 * @example
 * ```ts
 * renderExpression(tokens, (name) => `v_${name}`, (fn) => `Math.${fn}`);
 * ```
 */
export function renderExpression(
  tokens: readonly ProgramToken[],
  name: (n: string) => string,
  fn: (f: ProgramFunction) => string,
): string {
  // Spaces between tokens (so that `a - -b` never reads as a decrement), none between a function
  // and its parenthesis.
  return tokens
    .map((t, i) => {
      const text = t.kind === 'name' ? name(t.text) : t.kind === 'function' ? fn(t.text) : t.text;
      return i === 0 || tokens[i - 1].kind === 'function' ? text : ` ${text}`;
    })
    .join('');
}
