"""Iterative Density Weighting (Mehta et al., 2023): the sleep phase's pieces.

The sleep phase (Algorithm 2) fits a Gaussian KDE to the item tower's embeddings (Eq. 7),
normalises the density relatively (Eq. 8) and moves the item weights towards 1 − p' with
momentum (Eq. 9). kde_density is scipy.stats.gaussian_kde's estimate (Scott's factor, full
weighted covariance) in jitted JAX; update_weights is Eqs. 8-9. The sequential backbone,
the wake phase and the calibration step are still to come (issue #10).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
import numpy as np

from ltbench.checks import expect_shape

_CHUNK_PAIRS = 1 << 24  # query-point pairs per chunk: a [C, N] float32 block of 64 MiB
_HI = jax.lax.Precision.HIGHEST  # no reduced-precision matmuls on GPU/TPU (1e-4 budget)


def kde_density(points_NxD, queries_MxD, weights_N=None) -> jax.Array:
  """Gaussian KDE of `points` evaluated at `queries`, as scipy.stats.gaussian_kde does it.

  Equal to `scipy.stats.gaussian_kde(points_NxD.T, weights=weights_N)(queries_MxD.T)`:
  weights normalised to sum 1; effective sample size n_eff = 1 / Σ w_i²; Scott's factor
  f = n_eff^(−1/(D+4)); kernel covariance f²·Σ̂ with Σ̂ the weighted sample covariance
  (np.cov with aweights, bias=False: divided by 1 − Σ w_i²); each kernel a normalised
  Gaussian. Computed in float32 (float64 with jax_enable_x64): a Cholesky factor of Σ̂
  from a QR of the weighted centred points (Σ̂ itself is never formed, which keeps
  float32 accurate on correlated data), triangular solves to whitened coordinates,
  squared distances from one matmul, then a weighted logsumexp, so nothing underflows
  before the final exp. Queries run in chunks of about 2^24 / N when M·N is larger than
  that. Against scipy (float64) the relative error in float32 is about |log density| ×
  √cond(Σ̂) × 1e-7: ≤ 1e-4 for queries among the data in up to 16 dimensions; far-tail
  densities below ~1e-38 underflow to 0 in float32. Inputs may be arrays or nested
  lists; the work is one jitted program per shape, and the function vmaps.

  Args:
    points_NxD: float [N, D], the data (e.g. item embeddings); N > D.
    queries_MxD: float [M, D], where to evaluate the density.
    weights_N: optional non-negative float [N] point weights (any scale); None = uniform.

  Returns:
    float [M], the density at each query. A singular Σ̂ (e.g. points in a subspace, or too
    few points with non-zero weight) gives NaN where scipy raises LinAlgError.

  Example:
    >>> x = jax.random.normal(jax.random.key(0), (200, 2))
    >>> kde_density(x, x[:3]).shape
    (3,)

  References:
    Mehta et al., Density Weighting for Multi-Interest Personalized Recommendation, 2023,
    §3.3, Eq. 7; Scott, Multivariate Density Estimation, 1992.
  """
  points_NxD, queries_MxD = jnp.asarray(points_NxD), jnp.asarray(queries_MxD)
  weights_N = None if weights_N is None else jnp.asarray(weights_N)
  return _kde_density(points_NxD, queries_MxD, weights_N)


@jax.jit
def _kde_density(points_NxD, queries_MxD, weights_N):
  if points_NxD.ndim != 2:
    raise ValueError(f"points_NxD must be 2-D [N, D], got shape {tuple(points_NxD.shape)}")
  n, d = points_NxD.shape
  if n <= d:
    raise ValueError(f"points_NxD needs more points than dimensions (N > D) for a "
                     f"non-singular covariance, got shape {(n, d)}")
  expect_shape("queries_MxD", queries_MxD, (None, d))
  dtype = jnp.promote_types(jnp.result_type(points_NxD, queries_MxD), jnp.float32)
  x_NxD = points_NxD.astype(dtype)
  q_MxD = queries_MxD.astype(dtype)
  if weights_N is None:
    w_N = jnp.full((n,), 1.0 / n, dtype)
  else:
    expect_shape("weights_N", weights_N, (n,))
    w_N = weights_N.astype(dtype) / jnp.sum(weights_N.astype(dtype))
  n_eff = 1.0 / jnp.sum(w_N * w_N)

  mean_1xD = jnp.matmul(w_N[None, :], x_NxD, precision=_HI)
  xc_NxD = x_NxD - mean_1xD
  # Σ̂ = Σ_i w_i (x_i − x̄)(x_i − x̄)ᵀ / (1 − Σ_i w_i²) = RᵀR / (1 − 1/n_eff), with R from a QR
  # of the √w-scaled centred data: Rᵀ is a Cholesky factor of Σ̂ (up to column signs),
  # found without forming Σ̂, which in float32 would square its condition number.
  r_DxD = jnp.linalg.qr(xc_NxD * jnp.sqrt(w_N)[:, None], mode="r")
  factor = n_eff ** (-1.0 / (d + 4))  # Scott's rule
  chol_DxD = r_DxD.T * (factor / jnp.sqrt(1.0 - 1.0 / n_eff))  # L·Lᵀ = f²·Σ̂
  # Whitened coordinates z = L⁻¹(x − mean): the kernel exponent is −‖z_q − z_i‖²/2.
  zp_NxD = jsl.solve_triangular(chol_DxD, xc_NxD.T, lower=True).T
  zq_MxD = jsl.solve_triangular(chol_DxD, (q_MxD - mean_1xD).T, lower=True).T
  log_norm = -jnp.sum(jnp.log(jnp.abs(jnp.diag(chol_DxD)))) - 0.5 * d * math.log(2 * math.pi)
  zp_sq_1xN = jnp.sum(zp_NxD * zp_NxD, axis=1)[None, :]

  def chunk_log_density(zq_CxD):
    sq_CxN = (jnp.sum(zq_CxD * zq_CxD, axis=1)[:, None] + zp_sq_1xN
              - 2.0 * jnp.matmul(zq_CxD, zp_NxD.T, precision=_HI))
    sq_CxN = jnp.maximum(sq_CxN, 0.0)  # rounding can make a tiny distance negative
    return jax.nn.logsumexp(-0.5 * sq_CxN, axis=1, b=w_N[None, :]) + log_norm

  m = q_MxD.shape[0]
  chunk = max(1, min(m, _CHUNK_PAIRS // n))
  if chunk >= m:
    return jnp.exp(chunk_log_density(zq_MxD))
  num_chunks = -(-m // chunk)
  zq_padded = jnp.pad(zq_MxD, ((0, num_chunks * chunk - m), (0, 0)))
  log_density = jax.lax.map(chunk_log_density, zq_padded.reshape(num_chunks, chunk, d))
  return jnp.exp(log_density.reshape(-1)[:m])


def update_weights(w, density, momentum) -> jax.Array:
  """One sleep-phase weight update of IDW: Eq. 8 (relative density), then Eq. 9.

    p'_k = (p̃_k − min p̃) / (max p̃ − min p̃)        (Eq. 8)
    h_k  = 1 − p'_k
    w'_k = m·w_k + (1 − m)·h_k / Σ_k' h_k'          (Eq. 9)

  Choices where the paper is silent (docs/decisions.md, "IDW"):
  - Constant density (max = min, including a single item): p' = 0 for every item, so the
    target h/Σh is uniform; Eq. 8 itself is 0/0 there.
  - Min and max, and Σ h, run over every entry given. Pass the items the weights apply
    to: the official code evaluates the density only on items that are training targets.
  - `w` is used as given, not renormalised: if w sums to 1 (Algorithm 1 starts from
    normalised frequencies), so does the result.
  - The density's scale is irrelevant (Eq. 8 is invariant to a positive affine map), so
    Eq. 7's 1/ℓ and kde_density's Gaussian normalisation give the same update.
  - The paper's formula, not the official code's: that code's target is
    1/(density + 1e-4) normalised, which Eq. 8-9 do not say; the wake phase decides how
    weights reach the loss.

  Args:
    w: float [I], the current item weights w^(t).
    density: float [I], the kernel-smoothed density p̃(y = k | φ^(t)) of each item (e.g.
      kde_density of the item embeddings at themselves, weighted by w).
    momentum: m in [0, 1]; m = 1 keeps w unchanged. May be traced (checked only when
      concrete).

  Returns:
    float [I], w^(t+1).

  Example:
    >>> update_weights(jnp.array([0.5, 0.25, 0.25]), jnp.array([3.0, 3.0, 1.0]), 0.5)
    Array([0.25 , 0.125, 0.625], dtype=float32)

  References:
    Mehta et al., Density Weighting for Multi-Interest Personalized Recommendation, 2023,
    §3.3, Eqs. 8-9 and Algorithm 2.
  """
  w_I = jnp.asarray(w)
  density_I = jnp.asarray(density)
  if w_I.ndim != 1 or w_I.shape[0] == 0:
    raise ValueError(f"w must be a non-empty 1-D array [I], got shape {tuple(w_I.shape)}")
  expect_shape("density", density_I, w_I.shape)
  if jnp.ndim(momentum) != 0:
    raise ValueError(f"momentum must be a scalar, got shape {jnp.shape(momentum)}")
  if not isinstance(momentum, jax.core.Tracer) and not 0.0 <= float(momentum) <= 1.0:
    raise ValueError(f"momentum must be in [0, 1], got {float(momentum)}")
  return _eqs_8_9(w_I, density_I, momentum)


@jax.jit
def _eqs_8_9(w_I, density_I, momentum):
  dtype = jnp.promote_types(jnp.result_type(w_I, density_I), jnp.float32)
  w_I, density_I = w_I.astype(dtype), density_I.astype(dtype)
  lo, hi = jnp.min(density_I), jnp.max(density_I)
  span = hi - lo
  p_rel_I = jnp.where(span > 0, (density_I - lo) / jnp.where(span > 0, span, 1.0), 0.0)  # Eq. 8
  h_I = 1.0 - p_rel_I
  return momentum * w_I + (1.0 - momentum) * h_I / jnp.sum(h_I)  # Eq. 9
