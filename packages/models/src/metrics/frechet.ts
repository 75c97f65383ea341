/**
 * The Fréchet distance between two Gaussians, computed on the host in float64: the distance behind
 * FID (Heusel et al. 2017), here fitted to any feature vectors.
 *
 * For N(μ₁, Σ₁) and N(μ₂, Σ₂),
 *   d² = ‖μ₁ − μ₂‖² + tr(Σ₁ + Σ₂ − 2 (Σ₁^{1/2} Σ₂ Σ₁^{1/2})^{1/2}).
 * The matrix in the last term is symmetric positive semi-definite, so both square roots come from a
 * symmetric eigendecomposition, done with the cyclic Jacobi method: plain loops, no library, and
 * accurate to rounding for the small (≤ a few hundred) dimensions of classifier features. The
 * product form Σ₁Σ₂ used by common FID code has the same trace of its square root but is not
 * symmetric, hence the symmetric form here.
 */
import { FluxionError } from '@fluxion/tensor';

/** A Gaussian fitted to feature vectors: mean `[dim]` and covariance `[dim, dim]` (row-major). */
export interface GaussianFit {
  dim: number;
  /** How many vectors it was fitted to. */
  count: number;
  mean: Float64Array;
  covariance: Float64Array;
}

/**
 * Fits a Gaussian to `count = features.length / dim` vectors stored row by row: their mean and
 * unbiased covariance (divided by count − 1, as NumPy's `cov`).
 *
 * @example
 * ```ts
 * const fit = fitGaussian([0, 0, 2, 2], 2); // two 2-d points
 * fit.mean;       // [1, 1]
 * fit.covariance; // [2, 2, 2, 2]
 * ```
 */
export function fitGaussian(features: ArrayLike<number>, dim: number): GaussianFit {
  if (!Number.isInteger(dim) || dim <= 0)
    throw new FluxionError('fitGaussian', `dim must be a positive integer, got ${dim}`);
  const count = features.length / dim;
  if (!Number.isInteger(count)) {
    throw new FluxionError(
      'fitGaussian',
      `${features.length} values are not a whole number of ${dim}-d vectors`,
    );
  }
  if (count < 2)
    throw new FluxionError('fitGaussian', `need at least 2 vectors to fit a covariance, got ${count}`);
  const mean = new Float64Array(dim);
  for (let i = 0; i < count; i++) for (let j = 0; j < dim; j++) mean[j] += features[i * dim + j];
  for (let j = 0; j < dim; j++) mean[j] /= count;
  const covariance = new Float64Array(dim * dim);
  const centred = new Float64Array(dim);
  for (let i = 0; i < count; i++) {
    for (let j = 0; j < dim; j++) centred[j] = features[i * dim + j] - mean[j];
    for (let r = 0; r < dim; r++) {
      const cr = centred[r];
      if (cr === 0) continue;
      for (let c = r; c < dim; c++) covariance[r * dim + c] += cr * centred[c];
    }
  }
  for (let r = 0; r < dim; r++) {
    for (let c = r; c < dim; c++) {
      const v = covariance[r * dim + c] / (count - 1);
      covariance[r * dim + c] = v;
      covariance[c * dim + r] = v;
    }
  }
  if (!mean.every(Number.isFinite))
    throw new FluxionError('fitGaussian', 'the features contain NaN or infinite values');
  return { dim, count, mean, covariance };
}

/** The eigenvalues of a symmetric matrix and its eigenvectors as the columns of `vectors`. */
export interface SymmetricEigen {
  /** `[n]`, in no particular order. */
  values: Float64Array;
  /** `[n, n]` row-major; column k (entries `vectors[i·n + k]`) is the unit eigenvector of `values[k]`. */
  vectors: Float64Array;
}

/**
 * Eigendecomposition A = V diag(λ) Vᵀ of a symmetric `n × n` matrix (row-major) by the cyclic
 * Jacobi method: sweep over the off-diagonal entries (p, q), zeroing each with a plane rotation
 * A ← Jᵀ A J, until they are negligible (quadratic convergence, a handful of sweeps). V is the
 * product of the rotations. Only the upper triangle's symmetry is assumed, not checked.
 *
 * @example
 * ```ts
 * const { values } = symmetricEigen([2, 1, 1, 2], 2); // eigenvalues 1 and 3 (some order)
 * ```
 */
export function symmetricEigen(matrix: ArrayLike<number>, n: number): SymmetricEigen {
  if (matrix.length !== n * n)
    throw new FluxionError('symmetricEigen', `expected ${n}×${n} = ${n * n} values, got ${matrix.length}`);
  const a = Float64Array.from(matrix);
  if (!a.every(Number.isFinite))
    throw new FluxionError('symmetricEigen', 'the matrix contains NaN or infinite values');
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  let norm2 = 0;
  for (const x of a) norm2 += x * x;
  const tolerance2 = (1e-15 * n) ** 2 * norm2;
  const maxSweeps = 60;
  for (let sweep = 0; ; sweep++) {
    let off2 = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off2 += a[p * n + q] ** 2;
    if (off2 <= tolerance2) break;
    if (sweep === maxSweeps) {
      throw new FluxionError(
        'symmetricEigen',
        `no convergence after ${maxSweeps} Jacobi sweeps (off-diagonal² = ${off2})`,
      );
    }
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = a[p * n + q];
        if (apq === 0) continue;
        // The rotation angle φ with cot 2φ = θ zeroes a[p][q]; t = tan φ is the smaller root of
        // t² + 2θt − 1 = 0 (|φ| ≤ π/4, the stable choice).
        const theta = (a[q * n + q] - a[p * n + p]) / (2 * apq);
        const t = Number.isFinite(theta * theta)
          ? (theta >= 0 ? 1 : -1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1))
          : 0.5 / theta;
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          // Columns p and q: A ← A J.
          const akp = a[k * n + p];
          const akq = a[k * n + q];
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          // Rows p and q: A ← Jᵀ A.
          const apk = a[p * n + k];
          const aqk = a[q * n + k];
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
        a[p * n + q] = 0;
        a[q * n + p] = 0;
        for (let k = 0; k < n; k++) {
          // V ← V J accumulates the eigenvectors.
          const vkp = v[k * n + p];
          const vkq = v[k * n + q];
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const values = Float64Array.from({ length: n }, (_, i) => a[i * n + i]);
  return { values, vectors: v };
}

/**
 * The symmetric square root S (S·S = A) of a symmetric positive semi-definite matrix:
 * V diag(√λ) Vᵀ. Eigenvalues that rounding made slightly negative count as 0.
 *
 * @example
 * ```ts
 * sqrtPsd([4, 0, 0, 9], 2); // [2, 0, 0, 3]
 * ```
 */
export function sqrtPsd(matrix: ArrayLike<number>, n: number): Float64Array {
  const { values, vectors } = symmetricEigen(matrix, n);
  const roots = values.map((l) => Math.sqrt(Math.max(l, 0)));
  const out = new Float64Array(n * n);
  for (let r = 0; r < n; r++) {
    for (let c = r; c < n; c++) {
      let s = 0;
      for (let k = 0; k < n; k++) s += vectors[r * n + k] * roots[k] * vectors[c * n + k];
      out[r * n + c] = s;
      out[c * n + r] = s;
    }
  }
  return out;
}

/** C = A·B for `n × n` row-major matrices. */
function matmulSquare(a: Float64Array, b: Float64Array, n: number): Float64Array {
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < n; k++) {
      const aik = a[i * n + k];
      if (aik === 0) continue;
      for (let j = 0; j < n; j++) out[i * n + j] += aik * b[k * n + j];
    }
  }
  return out;
}

/**
 * The Fréchet (2-Wasserstein) distance between two Gaussians, squared as FID reports it:
 * ‖μ₁ − μ₂‖² + tr(Σ₁ + Σ₂ − 2 (Σ₁^{1/2} Σ₂ Σ₁^{1/2})^{1/2}). It is 0 for equal Gaussians,
 * symmetric, and clamped at 0 against rounding.
 *
 * @example
 * ```ts
 * const d = frechetDistance(fitGaussian(featuresA, 64), fitGaussian(featuresB, 64));
 * ```
 */
export function frechetDistance(a: GaussianFit, b: GaussianFit): number {
  if (a.dim !== b.dim)
    throw new FluxionError('frechetDistance', `the Gaussians have dimensions ${a.dim} and ${b.dim}`);
  const n = a.dim;
  let meanTerm = 0;
  for (let i = 0; i < n; i++) meanTerm += (a.mean[i] - b.mean[i]) ** 2;
  let traces = 0;
  for (let i = 0; i < n; i++) traces += a.covariance[i * n + i] + b.covariance[i * n + i];
  const rootA = sqrtPsd(a.covariance, n);
  const middle = matmulSquare(matmulSquare(rootA, b.covariance, n), rootA, n);
  for (let r = 0; r < n; r++) {
    for (let c = r + 1; c < n; c++) {
      // Symmetrise away rounding so that Jacobi sees an exactly symmetric matrix.
      const m = (middle[r * n + c] + middle[c * n + r]) / 2;
      middle[r * n + c] = m;
      middle[c * n + r] = m;
    }
  }
  let traceOfRoot = 0;
  for (const l of symmetricEigen(middle, n).values) traceOfRoot += Math.sqrt(Math.max(l, 0));
  return Math.max(0, meanTerm + traces - 2 * traceOfRoot);
}

/**
 * The Fréchet distance between Gaussians fitted to two sets of `dim`-d feature vectors (row by row).
 *
 * @example
 * ```ts
 * featureFrechetDistance(new Float32Array([0, 1, 2]), new Float32Array([1, 2, 3]), 1); // 1 (means differ by 1)
 * ```
 */
export function featureFrechetDistance(a: ArrayLike<number>, b: ArrayLike<number>, dim: number): number {
  return frechetDistance(fitGaussian(a, dim), fitGaussian(b, dim));
}
