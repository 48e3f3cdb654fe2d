"""Self-supervised item tower (Yao et al., CIKM 2021): feature masking for the two views.

So far only Correlated Feature Masking's choice of features (§3); the augmentations, the
auxiliary contrastive loss and the specs are still to come (issue #12).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def correlated_feature_mask(mi_FxF, seed, n) -> jax.Array:
  """The features CFM masks: the seed feature and the n features of highest MI with it.

  Features are ranked by mi_FxF[seed, j], highest first, ties to the lower index j; the
  seed itself never competes (a feature's MI with itself is its entropy, the diagonal is
  ignored), so the mask holds min(n, F − 1) + 1 features: n ≥ F − 1 masks every feature,
  n = 0 only the seed. Only row `seed` is read (MI is symmetric; the table is not checked
  for it). The paper picks the seed at random per view and masks the seed's k/2 most
  correlated features with it (n = k/2).

  Pure jnp, so jittable and vmappable over seeds; `seed` and `n` may be traced. Values
  are checked only when concrete: under jit an out-of-range seed or a NaN in the table
  gives an unspecified mask.

  Args:
    mi_FxF: float [F, F], pairwise mutual information between the F item features (F ≥ 1),
      finite.
    seed: int in [0, F), the seed feature.
    n: int ≥ 0, how many features to mask besides the seed.

  Returns:
    bool [F], True for the masked features.

  Example:
    >>> mi = jnp.array([[1.0, 0.2, 0.5], [0.2, 1.0, 0.2], [0.5, 0.2, 1.0]])
    >>> correlated_feature_mask(mi, 1, 1)  # features 0 and 2 tie at 0.2: 0 wins
    Array([ True,  True, False], dtype=bool)

  References:
    Yao et al., Self-supervised Learning for Large-scale Item Recommendations, CIKM 2021,
    §3 (Correlated Feature Masking).
  """
  mi_FxF = jnp.asarray(mi_FxF)
  if mi_FxF.ndim != 2 or mi_FxF.shape[0] != mi_FxF.shape[1] or mi_FxF.shape[0] == 0:
    raise ValueError(f"mi_FxF must be a square [F, F] matrix with F >= 1, got shape "
                     f"{tuple(mi_FxF.shape)}")
  if not jnp.issubdtype(mi_FxF.dtype, jnp.floating):
    mi_FxF = mi_FxF.astype(jnp.float32)
  f = mi_FxF.shape[0]
  seed = _index_arg("seed", seed, f)
  n = _index_arg("n", n, None)
  if not isinstance(n, jax.core.Tracer):
    n = min(n, f)  # n >= F - 1 masks everything; keeps a huge n inside int32
  if not isinstance(mi_FxF, jax.core.Tracer) and not np.isfinite(np.asarray(mi_FxF)).all():
    raise ValueError("mi_FxF must be finite (no NaN or inf)")

  return _cfm_mask(mi_FxF, seed, n)


@jax.jit
def _cfm_mask(mi_FxF, seed, n):
  row_F = mi_FxF[seed]
  idx_F = jnp.arange(mi_FxF.shape[0])
  is_seed_F = idx_F == seed
  # ahead_FxF[j, i]: feature i ranks ahead of feature j (higher MI, or equal and lower
  # index); the seed is ahead of nobody. == treats -0.0 and 0.0 as the tie they are.
  ahead_FxF = ((row_F[None, :] > row_F[:, None])
               | ((row_F[None, :] == row_F[:, None]) & (idx_F[None, :] < idx_F[:, None])))
  rank_F = jnp.sum(ahead_FxF & ~is_seed_F[None, :], axis=1)
  return is_seed_F | (rank_F < n)


def _index_arg(name, value, upper):
  """A scalar integer argument; checked against [0, upper) (or >= 0) when concrete."""
  if isinstance(value, jax.core.Tracer):
    if value.ndim != 0 or not jnp.issubdtype(value.dtype, jnp.integer):
      raise ValueError(f"{name} must be a scalar integer, got {value.dtype}{list(value.shape)}")
    return value
  arr = np.asarray(value)
  if arr.ndim != 0 or not np.issubdtype(arr.dtype, np.integer):
    raise ValueError(f"{name} must be a scalar integer, got {value!r}")
  value = int(arr)
  if value < 0 or (upper is not None and value >= upper):
    bound = f"in [0, {upper})" if upper is not None else ">= 0"
    raise ValueError(f"{name} must be {bound}, got {value}")
  return value
