/**
 * Pieces of WGSL shared by every kernel family: the dtype mapping, the parameter block, the
 * workgroup-grid linearisation and the scalar helper functions that make special values (NaN, ±∞)
 * behave like the CPU reference backend.
 *
 * Parameters (shapes, strides, offsets, counts) travel in one 256-byte uniform slot per dispatch,
 * read with `p(i)`, so a new shape never compiles a new pipeline. The slot is bind group 0 and the
 * storage buffers are bind group 1, so the two are bound separately (see `recorder.ts`). Large grids are split over the
 * x, y and z dimensions of the dispatch (at most 65,535 workgroups each); `workgroupIndex()`
 * linearises them again.
 */
import type { DType } from '../../dtype.js';
import { FluxionError } from '../../errors.js';

/** u32 words in one dispatch's parameter slot (256 bytes). */
export const PARAM_WORDS = 64;

/** The most axes a kernel addresses after adjacent axes have been merged. */
export const MAX_RANK = 8;

/** The WGSL scalar type that stores each dtype (`bool` is one u32 per element). */
export function wgslType(op: string, dtype: DType): 'f32' | 'i32' | 'u32' {
  switch (dtype) {
    case 'float32':
      return 'f32';
    case 'int32':
      return 'i32';
    case 'bool':
      return 'u32';
    default:
      throw new FluxionError(op, `the webgpu backend has no dtype ${dtype}`);
  }
}

/** The uniform parameter block, its accessor and the builtins every kernel's entry point takes. */
export const PARAMS_DECL = /* wgsl */ `
@group(0) @binding(0) var<uniform> params: array<vec4<u32>, ${PARAM_WORDS / 4}>;
fn p(i: u32) -> u32 { return params[i >> 2u][i & 3u]; }
fn workgroupIndex(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return wid.x + nwg.x * (wid.y + nwg.y * wid.z);
}`;

/**
 * Entry-point builtins, used with `workgroupIndex(wid, nwg)`. Every workgroup is one-dimensional,
 * so the invocation's index is `local_invocation_id.x` (bound to `lid` by {@link MAIN}): lavapipe
 * turns `local_invocation_index` into arithmetic that hides the lanes' consecutive addresses and
 * moved half the bytes per second in a vec4 add.
 */
export const ENTRY_ARGS =
  '@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lidv: vec3<u32>';

/** The head of every kernel's entry point, with `lid` (the invocation's index in its workgroup). */
export const MAIN = `fn main(${ENTRY_ARGS}) {
  let lid = lidv.x;`;

/** Invocations per workgroup of the contiguous vec4 shaders ({@link gridStrideMain}). */
const VEC4_WORKGROUP = 128;
/** Vec4s each invocation of those shaders moves. */
const VEC4S_PER_INVOCATION = 2;

/**
 * The entry point of a shader that walks `count` items (vec4s) contiguously: each invocation
 * handles {@link VEC4S_PER_INVOCATION} of them, one grid-width apart, so neighbouring lanes always
 * touch neighbouring items (and a launch needs fewer workgroups). `body(i)` is the code for item
 * `i`. Unrolled: a loop ran about 4% slower on lavapipe. Measured there against one vec4 per
 * invocation: a 4M-element add 26% faster, exp 20%; four vec4s per invocation gained a little
 * more on large tensors but lost on mid-sized ones (softplus on 128×784: 356 µs against 286 with
 * two, 277 with one), as fewer workgroups balance worse over the CPU's threads. Launch it with
 * {@link gridStrideWorkgroups}.
 *
 * @example
 * ```ts
 * const main = gridStrideMain('p(0u) / 4u', (i) => `out[${i}] = a[${i}] + b[${i}];`);
 * ```
 */
export function gridStrideMain(count: string, body: (i: string) => string): string {
  const steps = Array.from({ length: VEC4S_PER_INVOCATION }, (_, v) => {
    const i = `first + ${v}u * stride`;
    return `  if (${i} < ${count}) {\n    let i = ${i};\n    ${body('i')}\n  }`;
  });
  return `@compute @workgroup_size(${VEC4_WORKGROUP})
${MAIN}
  let first = workgroupIndex(wid, nwg) * ${VEC4_WORKGROUP}u + lid;
  let stride = nwg.x * nwg.y * nwg.z * ${VEC4_WORKGROUP}u;
${steps.join('\n')}
}`;
}

/** Workgroups of a {@link gridStrideMain} shader over `items` items. */
export const gridStrideWorkgroups = (items: number): number =>
  Math.ceil(items / (VEC4_WORKGROUP * VEC4S_PER_INVOCATION));

/** A storage binding declaration (bind group 1; binding 0 is unused, bindings count from 1). */
export function storageDecl(binding: number, name: string, type: string, write: boolean): string {
  return `@group(1) @binding(${binding}) var<storage, ${write ? 'read_write' : 'read'}> ${name}: array<${type}>;`;
}

/**
 * Scalar helpers, included into a shader only when its source mentions them. Each one gives the
 * result the CPU backend gives, including at special values, without trusting the platform's
 * NaN/∞ behaviour of built-ins (WGSL leaves much of it implementation-defined): every helper that
 * calls a built-in tests for NaN first and returns it. SwiftShader, for one, computes exp(NaN) = ∞
 * and log(NaN) = 89.1 (its log reads the exponent bits), where lavapipe returns NaN.
 */
const HELPERS: Record<string, string> = {
  // NaN test on the bits: compilers may fold `x != x` away.
  isNan: `fn isNan(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u; }`,
  isInf: `fn isInf(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) == 0x7f800000u; }`,
  // Private variables, not constants: WGSL rejects ∞ and NaN in constant expressions.
  nanF32: `var<private> nanBits: u32 = 0x7fc00000u;
fn nanF32() -> f32 { return bitcast<f32>(nanBits); }`,
  infF32: `var<private> infBits: u32 = 0x7f800000u;
fn infF32() -> f32 { return bitcast<f32>(infBits); }`,
  // max/min that propagate NaN (Math.max semantics); WGSL's max/min may drop it.
  maxNan: `fn maxNan(a: f32, b: f32) -> f32 { return select(select(b, a, a > b), select(b, a, isNan(a)), isNan(a) || isNan(b)); }`,
  minNan: `fn minNan(a: f32, b: f32) -> f32 { return select(select(b, a, a < b), select(b, a, isNan(a)), isNan(a) || isNan(b)); }`,
  // ln(1 + x): a short series where 1 + x would lose digits, the built-in log elsewhere.
  log1pF: `fn log1pF(x: f32) -> f32 {
  if (isNan(x)) { return x; }
  if (abs(x) < 0.0625) {
    var s = 0.0;
    var t = 1.0;
    for (var n = 1; n <= 8; n++) { t = t * -x; s = s - t / f32(n); }
    return s;
  }
  if (x == -1.0) { return -infF32(); }
  if (x < -1.0) { return nanF32(); }
  if (isInf(x)) { return x; }
  return log(1.0 + x);
}`,
  // e^x − 1: a series near 0, the built-in exp elsewhere.
  expm1F: `fn expm1F(x: f32) -> f32 {
  if (isNan(x)) { return x; }
  if (abs(x) < 0.0625) {
    var s = 0.0;
    var t = 1.0;
    for (var n = 1; n <= 8; n++) { t = t * x / f32(n); s = s + t; }
    return s;
  }
  if (x > 88.8) { return infF32(); }
  return exp(x) - 1.0;
}`,
  logF: `fn logF(x: f32) -> f32 {
  if (isNan(x)) { return x; }
  if (x == 0.0) { return -infF32(); }
  if (x < 0.0) { return nanF32(); }
  if (isInf(x)) { return x; }
  return log(x);
}`,
  expF: `fn expF(x: f32) -> f32 {
  if (isNan(x)) { return x; }
  if (x > 88.8) { return infF32(); }
  if (x < -104.0) { return 0.0; }
  return exp(x);
}`,
  sqrtF: `fn sqrtF(x: f32) -> f32 { return select(select(sqrt(x), nanF32(), x < 0.0), x, isNan(x)); }`,
  // sin and cos with the argument reduced to [−π, π] first (x − 2π·round(x / 2π), 2π split in two
  // parts so the product is nearly exact for |x| up to about 10⁵), because WGSL bounds the
  // built-ins' error (absolute, 2⁻¹¹) only inside [−π, π]. NaN and ±∞ give NaN explicitly.
  sinF: `fn sinF(x: f32) -> f32 { return select(sin(reduceAngle(x)), nanF32(), isNan(x) || isInf(x)); }`,
  cosF: `fn cosF(x: f32) -> f32 { return select(cos(reduceAngle(x)), nanF32(), isNan(x) || isInf(x)); }`,
  reduceAngle: `fn reduceAngle(x: f32) -> f32 {
  let k = round(x * 0.15915494309189535);
  return (x - k * 6.28125) - k * 0.0019353071795864769;
}`,
  // cos(2π t) for t in [−½, ½], to a few ulps without the built-in cos: t is split into a quarter
  // turn q and a rest r in [−⅛, ⅛] (exact), then Taylor polynomials of cos and sin of 2πr (the
  // first omitted terms are below 3·10⁻⁸). The normal sampler uses it so that randn gives the same
  // values on every adapter (WGSL lets the built-in cos be off by 2⁻¹¹).
  cos2piF: `fn cos2piF(t: f32) -> f32 {
  let q = round(4.0 * t);
  let a = 6.283185307179586 * (t - 0.25 * q);
  let a2 = a * a;
  let c = 1.0 + a2 * (-0.5 + a2 * (0.041666666666666664 + a2 * (-0.001388888888888889 + a2 * 0.0000248015873015873)));
  let s = a * (1.0 + a2 * (-0.16666666666666666 + a2 * (0.008333333333333333 + a2 * (-0.0001984126984126984 + a2 * 0.0000027557319223985893))));
  let quarter = i32(q) & 3;
  return select(select(select(s, -c, quarter == 2), -s, quarter == 1), c, quarter == 0);
}`,
  signF: `fn signF(x: f32) -> f32 { return select(select(select(0.0, -1.0, x < 0.0), 1.0, x > 0.0), x, isNan(x) || x == 0.0); }`,
  // Logistic function that never exponentiates a positive number.
  sigmoidF: `fn sigmoidF(x: f32) -> f32 {
  let e = expF(-abs(x));
  let r = 1.0 / (1.0 + e);
  return select(select(e * r, r, x >= 0.0), x, isNan(x));
}`,
  // log(1 + eˣ) as max(x, 0) + log1p(e^−|x|): never exponentiates a positive number.
  softplusF: `fn softplusF(x: f32) -> f32 { return maxNan(x, 0.0) + log1pF(expF(-abs(x))); }`,
  // tanh saturates to ±1 well before |x| = 10 in f32; the clamp avoids ∞/∞ in naive formulas.
  tanhF: `fn tanhF(x: f32) -> f32 { return select(tanh(clamp(x, -10.0, 10.0)), x, isNan(x)); }`,
  // erf: the Taylor series 2/√π Σ (−1)ⁿ x^(2n+1) / (n! (2n+1)) for |x| < 1.2 (little cancellation
  // there), else 1 − erfc(x) with erfc(x) = e^(−x²)/√π / (x + (1/2)/(x + (2/2)/(x + (3/2)/(x + …))))
  // evaluated from 40 terms backwards; |x| ≥ 4 rounds to ±1 in f32. A few ulps everywhere.
  erfF: `fn erfF(x: f32) -> f32 {
  if (isNan(x)) { return x; }
  let ax = abs(x);
  if (ax >= 4.0) { return sign(x); }
  let x2 = ax * ax;
  if (ax < 1.2) {
    var power = ax;
    var sum = ax;
    for (var n = 1; n < 30; n++) {
      power = -power * x2 / f32(n);
      let term = power / f32(2 * n + 1);
      sum = sum + term;
      if (abs(term) < sum * 1e-8) { break; }
    }
    return sign(x) * 1.1283791670955126 * sum;
  }
  var t = ax;
  for (var n = 40; n >= 1; n--) { t = ax + (0.5 * f32(n)) / t; }
  return sign(x) * (1.0 - exp(-x2) * 0.5641895835477563 / t);
}`,
  // Math.pow semantics: integer powers of negative bases, x^0 = 1, NaN for 1^±∞ as in JavaScript.
  powF: `fn powF(x: f32, y: f32) -> f32 {
  if (y == 0.0) { return 1.0; }
  if (isNan(x) || isNan(y)) { return nanF32(); }
  let ax = abs(x);
  if (isInf(y)) {
    if (ax == 1.0) { return nanF32(); }
    return select(0.0, infF32(), (ax > 1.0) == (y > 0.0));
  }
  let yIsInt = floor(y) == y;
  // The sign bit, so that (−0)^3 = −0 and (−0)^−1 = −∞ as in JavaScript.
  let negative = (bitcast<u32>(x) >> 31u) == 1u;
  let odd = yIsInt && abs(y) < 16777216.0 && (i32(y) & 1) == 1;
  var r: f32;
  if (ax == 0.0) { r = select(infF32(), 0.0, y > 0.0); }
  else if (isInf(ax)) { r = select(0.0, infF32(), y > 0.0); }
  else if (negative && !yIsInt) { return nanF32(); }
  else if (yIsInt && abs(y) <= 64.0) {
    // exact-ish repeated squaring for small integer powers
    var base = select(ax, 1.0 / ax, y < 0.0);
    var n = u32(abs(y));
    r = 1.0;
    loop {
      if ((n & 1u) == 1u) { r = r * base; }
      n = n >> 1u;
      if (n == 0u) { break; }
      base = base * base;
    }
  } else { r = exp2(y * log2(ax)); }
  return select(r, -r, negative && odd);
}`,
  // ⌊a / b⌋ for a < 2²⁵ and b ≥ 1, from the f32 reciprocal rb ≈ 1/b: the first estimate is within
  // a few units; one f32 step on the exact remainder and a final ±1 make it exact. CPUs have no
  // vector integer division, so CPU adapters run an integer a / b one lane at a time.
  fastDiv: `fn fastDiv(a: u32, b: u32, rb: f32) -> u32 {
  var q = u32(f32(a) * rb);
  let r = bitcast<i32>(a - q * b);
  q = u32(i32(q) + i32(floor(f32(r) * rb)));
  let r2 = bitcast<i32>(a - q * b);
  q = select(q, q - 1u, r2 < 0);
  return select(q, q + 1u, r2 >= i32(b));
}`,
  // float → int32: truncate toward zero, saturate, NaN → 0 (the cast rule of the CPU backend).
  f32ToI32: `fn f32ToI32(x: f32) -> i32 {
  if (isNan(x)) { return 0; }
  if (x >= 2147483648.0) { return 2147483647; }
  if (x <= -2147483648.0) { return -2147483647 - 1; }
  return i32(trunc(x));
}`,
};

/** Helper names each helper itself calls. */
const HELPER_DEPS: Record<string, string[]> = {
  maxNan: ['isNan'],
  minNan: ['isNan'],
  log1pF: ['infF32', 'nanF32', 'isInf', 'isNan'],
  expm1F: ['infF32', 'isNan'],
  logF: ['infF32', 'nanF32', 'isInf', 'isNan'],
  expF: ['infF32', 'isNan'],
  sqrtF: ['nanF32', 'isNan'],
  sinF: ['reduceAngle', 'nanF32', 'isNan', 'isInf'],
  cosF: ['reduceAngle', 'nanF32', 'isNan', 'isInf'],
  signF: ['isNan'],
  sigmoidF: ['expF', 'isNan'],
  softplusF: ['maxNan', 'log1pF', 'expF'],
  tanhF: ['isNan'],
  erfF: ['isNan'],
  powF: ['isNan', 'isInf', 'nanF32', 'infF32'],
  f32ToI32: ['isNan'],
};

/** The helper functions `code` calls (and their own dependencies), as WGSL source. */
export function helpersFor(code: string): string {
  const needed = new Set<string>();
  const visit = (name: string) => {
    if (needed.has(name)) return;
    needed.add(name);
    for (const dep of HELPER_DEPS[name] ?? []) visit(dep);
  };
  for (const name of Object.keys(HELPERS)) if (new RegExp(`\\b${name}\\(`).test(code)) visit(name);
  return Object.keys(HELPERS)
    .filter((n) => needed.has(n))
    .map((n) => HELPERS[n])
    .join('\n');
}

/** One operand walked by {@link stridedOffsetCode}. */
export interface StridedOperand {
  /** Name of the `var` that receives the offset. */
  name: string;
  /** Parameter word holding the start offset, or a WGSL expression for it. */
  offsetWord: number | string;
  /** First parameter word of the operand's strides. */
  strideBase: number;
}

/** Where {@link stridedOffsetCode} finds the iteration space. */
export interface StridedSpace {
  /** WGSL expression of the flat, row-major element number. */
  flat: string;
  /** The rank: a number bakes it into the shader (unrolled, constant parameter words), or a WGSL expression. */
  rank: number | string;
  /** First parameter word of the shape. */
  shapeBase: number;
  /** First parameter word of the f32 reciprocals of the shape: divides by multiplying. */
  reciprocalBase?: number;
}

/**
 * WGSL that turns the flat element number of a strided iteration space into one storage offset
 * per operand (declaring `var <name>: u32` for each). The outermost axis needs no division; the
 * others divide the flat number by their size, either with the integer division (which CPU
 * adapters run one lane at a time) or, given reciprocals, with the `fastDiv` helper.
 */
export function stridedOffsetCode(space: StridedSpace, operands: readonly StridedOperand[]): string {
  const { flat, rank, shapeBase, reciprocalBase } = space;
  const init = operands
    .map(
      (o) =>
        `var ${o.name}: u32 = ${typeof o.offsetWord === 'number' ? `p(${o.offsetWord}u)` : o.offsetWord};`,
    )
    .join('\n  ');
  const step = (d: string) => {
    const quotient =
      reciprocalBase === undefined
        ? `rem / size`
        : `fastDiv(rem, size, bitcast<f32>(p(${reciprocalBase}u + ${d})))`;
    return `{
      let size = p(${shapeBase}u + ${d});
      let q = ${quotient};
      let c = rem - q * size;
      rem = q;
      ${operands.map((o) => `${o.name} += c * p(${o.strideBase}u + ${d});`).join(' ')}
    }`;
  };
  const last = operands.map((o) => `${o.name} += rem * p(${o.strideBase}u);`).join(' ');
  const steps =
    typeof rank === 'number'
      ? Array.from({ length: Math.max(0, rank - 1) }, (_, i) => step(`${rank - 1 - i}u`)).join('\n    ')
      : `for (var d = ${rank}; d > 1u; ) {
      d -= 1u;
      ${step('d')}
    }`;
  return `${init}
  {
    var rem = ${flat};
    ${steps}
    ${last}
  }`;
}

const f32Bits = new Float32Array(1);
const u32OfF32 = new Uint32Array(f32Bits.buffer);

/** The u32 bit pattern of the f32 nearest to `value`. */
export function f32ToBits(value: number): number {
  f32Bits[0] = value;
  return u32OfF32[0];
}

/** Writes the f32 reciprocals of `shape` (as bits) at `base`, for `fastDiv`. */
export function putReciprocals(words: number[], base: number, shape: readonly number[]): void {
  for (let i = 0; i < MAX_RANK; i++) words[base + i] = f32ToBits(1 / (shape[i] ?? 1));
}
