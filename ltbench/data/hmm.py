"""IDW's synthetic data (Mehta et al. 2023, Appendix A): a user-specific HMM over interests.

Items fall into C clusters of K items each (item id = c·K + k). Each user draws
`interests_per_user` clusters from a multinomial with power-law weights π_c ∝ (c + 1)^−a
(a = `interest_power`; cluster 0 is the most popular interest) and keeps the distinct
ones as Y_u. Their cluster sequence is a Markov chain with the user's transition matrix
(Eq. 12, `transition_matrix`), started uniformly over all clusters; each step emits an item
of the current cluster with power-law weights p_k ∝ (k + 1)^−b (b = `item_power`). Defaults
are the paper's §3.2 setting: 50 items, 10 per cluster, α = 0.6, γ = 0.3, ε = 0.1, b = 0.5;
Figure 3 sweeps a from 0 to 2.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ltbench.data import sequences


@dataclasses.dataclass(frozen=True)
class HMMConfig:
  num_users: int = 10000  # |U| (not in the paper; the official generator's default)
  num_clusters: int = 5  # C, the number of interests
  items_per_cluster: int = 10  # K = |I| / C (50 items in §3.2)
  interests_per_user: int = 3  # multinomial draws for Y_u; |Y_u| <= this (official config U3)
  seq_len: int = 20  # T, items per user (not in the paper; the official default)
  alpha: float = 0.6  # α: stay in the current interest cluster
  gamma: float = 0.3  # γ: total probability of moving to another interest cluster
  epsilon: float = 0.1  # ε: stay in a non-interest cluster
  interest_power: float = 1.0  # a: power-law exponent of π_c (Figure 3: 0 to 2)
  item_power: float = 0.5  # b: power-law exponent of p_k within a cluster
  seed: int = 0  # generator seed (fixed per data set, independent of trial seeds)


def power_law(n: int, exponent: float) -> np.ndarray:
  """float64 [n]: weights ∝ (i + 1)^−exponent, normalised to sum 1 (uniform at 0)."""
  w = np.arange(1, n + 1, dtype=np.float64) ** -float(exponent)
  return w / w.sum()


def transition_matrix(interests_C, alpha: float, gamma: float, epsilon: float) -> np.ndarray:
  """Eq. 12: a user's cluster transition matrix P[i, j] = P(next = j | current = i).

    i ∈ Y, j = i:           α
    i, j ∈ Y, j ≠ i:        γ / (|Y| − 1)
    i ∈ Y, j ∉ Y:           (1 − α − γ) / (C − |Y|)
    i ∉ Y, j = i:           ε
    i ∉ Y, j ∈ Y:           (1 − ε) / |Y|
    i ∉ Y, j ∉ Y, j ≠ i:    0

  With |Y| = 1 there is no other interest to move to, and the stay probability is α + γ
  (as in the official generator), so rows still sum to 1.

  Args:
    interests_C: bool [C] (or [U, C] for several users): which clusters are in Y_u.
      1 <= |Y_u| < C.
    alpha, gamma, epsilon: probabilities with alpha + gamma <= 1, epsilon <= 1.

  Returns:
    float64 [C, C] (or [U, C, C]); every row sums to 1.
  """
  y = np.asarray(interests_C, bool)
  if y.ndim not in (1, 2):
    raise ValueError(f"interests_C must be [C] or [U, C], got shape {y.shape}")
  if not (0 <= alpha and 0 <= gamma and alpha + gamma <= 1 and 0 <= epsilon <= 1):
    raise ValueError(f"need alpha, gamma >= 0, alpha + gamma <= 1 and 0 <= epsilon <= 1, got "
                     f"alpha={alpha}, gamma={gamma}, epsilon={epsilon}")
  num_clusters = y.shape[-1]
  n_y = y.sum(-1)
  if (n_y < 1).any() or (n_y >= num_clusters).any():
    raise ValueError(f"every interest set needs 1 <= |Y_u| < C = {num_clusters}, got sizes "
                     f"{sorted(set(n_y.reshape(-1).tolist()))}")
  n = n_y[..., None, None].astype(np.float64)
  yi = y[..., :, None]  # row i in Y
  yj = y[..., None, :]  # column j in Y
  eye = np.eye(num_clusters, dtype=bool)
  stay = np.where(n == 1, alpha + gamma, alpha)
  p = np.where(yi & eye, stay, 0.0)
  p = np.where(yi & yj & ~eye, gamma / np.maximum(n - 1, 1), p)
  p = np.where(yi & ~yj, (1 - alpha - gamma) / (num_clusters - n), p)
  p = np.where(~yi & eye, epsilon, p)
  p = np.where(~yi & yj, (1 - epsilon) / n, p)
  return p


def _draw(rng, probs_NxC) -> np.ndarray:
  """One categorical draw per row (inverse CDF)."""
  cdf = np.cumsum(probs_NxC, axis=-1)
  u = rng.random(probs_NxC.shape[0]) * cdf[:, -1]
  return np.minimum((cdf < u[:, None]).sum(-1), probs_NxC.shape[-1] - 1)


def generate_histories(cfg: HMMConfig = HMMConfig()):
  """Runs the HMM for every user.

  Returns:
    (items_UxT int32 item histories, clusters_UxT int32 hidden cluster sequences,
     interests_UxC bool Y_u, item_cluster_I int32 cluster of each item).
  """
  C, K, U, T = cfg.num_clusters, cfg.items_per_cluster, cfg.num_users, cfg.seq_len
  if not 1 <= cfg.interests_per_user < C:
    raise ValueError(f"interests_per_user must be in [1, num_clusters) = [1, {C}), got "
                     f"{cfg.interests_per_user}: Eq. 12 needs a cluster outside Y_u")
  if min(U, T, K) < 1:
    raise ValueError(f"num_users, seq_len and items_per_cluster must be >= 1, got {cfg}")
  rng = np.random.default_rng(cfg.seed)
  pi_C = power_law(C, cfg.interest_power)
  draws_UxC = rng.multinomial(cfg.interests_per_user, pi_C, size=U)
  interests_UxC = draws_UxC > 0  # Y_u: the distinct clusters drawn
  p_UxCxC = transition_matrix(interests_UxC, cfg.alpha, cfg.gamma, cfg.epsilon)
  clusters_UxT = np.empty((U, T), np.int32)
  clusters_UxT[:, 0] = rng.integers(0, C, U)  # uniform initial state
  users = np.arange(U)
  for t in range(1, T):
    clusters_UxT[:, t] = _draw(rng, p_UxCxC[users, clusters_UxT[:, t - 1]])
  p_k = power_law(K, cfg.item_power)
  within_UxT = _draw(rng, np.broadcast_to(p_k, (U * T, K))).reshape(U, T)
  items_UxT = (clusters_UxT * K + within_UxT).astype(np.int32)
  item_cluster_I = np.repeat(np.arange(C, dtype=np.int32), K)
  return items_UxT, clusters_UxT, interests_UxC, item_cluster_I


def idw_synthetic(cfg: HMMConfig = HMMConfig(),
                  seq_cfg: sequences.SequenceConfig = sequences.SequenceConfig(num_negatives=None),
                  name: str = "idw-synthetic") -> sequences.SequenceData:
  """The HMM histories cut into sequences; full ranking by default (50 items cannot give 99
  negatives; the official code also ranks all items on synthetic data)."""
  items_UxT, _, interests_UxC, item_cluster_I = generate_histories(cfg)
  indptr = np.arange(cfg.num_users + 1, dtype=np.int64) * cfg.seq_len
  meta = {"source": "synthetic HMM (IDW Appendix A)", "config": dataclasses.asdict(cfg),
          "interest_weights": power_law(cfg.num_clusters, cfg.interest_power).tolist(),
          "mean_interests_per_user": float(interests_UxC.sum(1).mean())}
  return sequences.build_sequences(indptr, items_UxT.reshape(-1),
                                   cfg.num_clusters * cfg.items_per_cluster, seq_cfg, name, meta,
                                   item_cluster=item_cluster_I)
