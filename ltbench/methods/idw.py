"""Iterative Density Weighting (Mehta et al., 2023): the sleep phase's pieces.

The sleep phase (Algorithm 2) fits a Gaussian KDE to the item tower's embeddings (Eq. 7),
normalises the density relatively (Eq. 8) and moves the item weights towards 1 − p' with
momentum (Eq. 9). kde_density is scipy.stats.gaussian_kde's estimate (Scott's factor, full
weighted covariance) in jitted JAX; update_weights is Eqs. 8-9.

The method (Algorithm 1) on the SUR/MUR backbone of `methods.sequential`:
`IDWTwoTower` is a `train.Method` whose parameters are {"model": backbone, "w_I": item
weights, "phase": a per-seed scalar}; the WAKE phase trains both towers on the weighted
loss (Eq. 10), PRETRAIN both on the unweighted loss, CALIBRATE the user tower alone on the
unweighted loss (item tower, weights and phase frozen through `update_mask`); one compiled
epoch program serves all three. `sleep_weights` is Algorithm 2 for one seed, `sleep_fn` its jitted,
seed-vmapped form, and `run_idw` the driver: a Python loop over phases and epochs, each
epoch the shared jitted epoch function of `ltbench.train`. Choices: docs/decisions.md,
"IDW (2023): the sleep/wake method".
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from typing import Any, Literal

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
import numpy as np

from ltbench import train as train_lib
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


# -- the method (Algorithm 1) ------------------------------------------------------------


def initial_weights(counts_I) -> jax.Array:
  """w^(0): the normalised item frequencies n_k / Σn (Algorithm 1, line 2)."""
  counts_I = jnp.asarray(counts_I, jnp.float32)
  return counts_I / jnp.sum(counts_I)


def example_weights(w_I, counts_I, weighting: str = "mass") -> jax.Array:
  """The per-item factor each training example of target y gets in the wake loss (Eq. 10).

  "mass" (default; the official code's `item_weight / item_count`): w_y / p(y), p(y) =
  n_y / Σn, so w is each item's share of the loss: w^(0) = p gives exactly the
  unweighted loss (Algorithm 1's θ^(0), φ^(0)) and a uniform w the frequency-balanced Eq. 5.
  "eq10" (Eq. 10 as printed): I_seen · w_y, so a uniform w over the I_seen items that are
  targets gives exactly the unweighted loss. Items never a target get 0.
  """
  counts_I = jnp.asarray(counts_I, jnp.float32)
  seen_I = counts_I > 0
  if weighting == "mass":
    p_I = counts_I / jnp.sum(counts_I)
    return jnp.where(seen_I, w_I / jnp.where(seen_I, p_I, 1.0), 0.0)
  if weighting == "eq10":
    return jnp.where(seen_I, w_I * jnp.sum(seen_I), 0.0)
  raise ValueError(f"weighting must be 'mass' or 'eq10', got {weighting!r}")


def sleep_weights(item_IxD, w_I, target_I, momentum):
  """Algorithm 2 on given item vectors: (w^(t+1), ‖w^(t+1) − w^(t)‖∞).

  The KDE (Eq. 7) is fitted on every item vector weighted by w (items never a target
  have w = 0 and add no kernel) and evaluated at the items; Eqs. 8-9 (`update_weights`)
  run over the target items only: the others get the largest target density, hence
  h = 1 − p' = 0, so they stay out of Σh and keep w = 0.

  Args:
    item_IxD: float [I, D] item-tower outputs v_k (I > D).
    w_I: float [I] current weights w^(t) (sum 1 over the targets, 0 elsewhere).
    target_I: bool [I], the items that are training targets.
    momentum: m of Eq. 9 (may be traced).
  """
  density_I = kde_density(item_IxD, item_IxD, w_I)  # Eq. 7
  top = jnp.max(jnp.where(target_I, density_I, -jnp.inf))
  density_I = jnp.where(target_I, density_I, top)
  w_next_I = jnp.where(target_I, _eqs_8_9(w_I, density_I, momentum), 0.0)  # Eqs. 8-9
  return w_next_I, jnp.max(jnp.abs(w_next_I - w_I))


@dataclasses.dataclass(frozen=True)
class IDWConfig:
  momentum: float = 0.9  # m of Eq. 9 (§4.6.2's best of {0.7, 0.8, 0.9, 0.99})
  eta: float = 4e-4  # η: stop when ‖w^(t+1) − w^(t)‖∞ < η (§4.6.2's best)
  max_iterations: int = 5  # MAX_T, sleep/wake rounds at most (official train.py: 5)
  # Unweighted epochs before the first sleep (θ^(0), φ^(0)); None = TrainConfig.epochs, the
  # same budget (and early stopping) as the plain SUR / MUR rows.
  pretrain_epochs: int | None = None
  wake_epochs: int = 5  # epochs per wake phase (official: up to 5 per iteration)
  calibration_epochs: int = 5  # user-tower calibration epochs (0 = IDW w/o calibration)
  calibration_lr: float | None = None  # Adam step size of calibration (None = training's)

  def __post_init__(self):
    if not 0.0 <= self.momentum <= 1.0:
      raise ValueError(f"momentum must be in [0, 1], got {self.momentum}")
    if self.pretrain_epochs is not None and self.pretrain_epochs < 0:
      raise ValueError(f"pretrain_epochs must be >= 0 or None, got {self.pretrain_epochs}")
    if self.eta < 0 or self.max_iterations < 0:
      raise ValueError(f"eta and max_iterations must be >= 0, got {self.eta}, "
                       f"{self.max_iterations}")


# The IDWConfig fields that pre-training never reads: rows differing only in these train
# the same θ^(0), φ^(0) (the runner shares it between them, `runner.pretrain_key`).
AFTER_PRETRAIN = ("momentum", "eta", "max_iterations", "wake_epochs", "calibration_epochs",
                  "calibration_lr")

PRETRAIN, WAKE, CALIBRATE = 0.0, 1.0, 2.0  # values of params["phase"]


@dataclasses.dataclass(frozen=True)
class IDWTwoTower:
  """SUR-IDW / MUR-IDW: a `train.Method` over {"model": backbone params, "w_I": item
  weights, "phase": PRETRAIN | WAKE | CALIBRATE}.

  WAKE trains both towers on the loss weighted per example by `example_weights` of the
  target (Eq. 10); PRETRAIN (Algorithm 1, line 3) both towers on the unweighted loss;
  CALIBRATE the user tower only, unweighted (§3.3, "User Tower Calibration"): the item
  tower is frozen through `update_mask`. The phase is a per-seed value in the state, not
  part of the program, so every phase runs the same compiled epoch function. The weights
  and the phase are never trained (masked); the sleep phase and `run_idw` set them.
  """

  name: str
  base: Any  # methods.sequential.SequentialTwoTower (objective "softmax")
  weighting: Literal["mass", "eq10"] = "mass"  # how w reaches the loss (`example_weights`)
  schedule: IDWConfig = IDWConfig()  # phases, momentum and η of `run_idw` (not compiled)

  def __post_init__(self):
    if self.weighting not in ("mass", "eq10"):
      raise ValueError(f"weighting must be 'mass' or 'eq10', got {self.weighting!r}")

  @property
  def num_items(self) -> int:
    return self.base.num_items

  @property
  def model_cfg(self):
    return self.base.model_cfg

  def program_key(self):
    return ("idw", self.base.program_key(), self.weighting)

  def serve_key(self):
    return self.base.serve_key()

  def hyper(self):
    return self.base.hyper()

  def init(self, key, data):
    return {"model": self.base.init(key, data), "w_I": initial_weights(data["item_counts"]),
            "phase": jnp.float32(PRETRAIN)}

  def sample(self, key, data, epoch, num_steps, batch_size):
    return self.base.sample(key, data, epoch, num_steps, batch_size)

  def loss(self, params, batch_idx_B, data, key, epoch):
    target_B = data["items_SxL"][data["train_row_E"][batch_idx_B],
                                 data["train_pos_E"][batch_idx_B]]
    w_I = jax.lax.stop_gradient(params["w_I"])
    weights_B = example_weights(w_I, data["item_counts"], self.weighting)[target_B]  # Eq. 10
    weights_B = jnp.where(params["phase"] == WAKE, weights_B, 1.0)  # else Eq. 3
    return self.base.loss(params["model"], batch_idx_B, data, key, epoch, weights_B)

  def update_mask(self, params, epoch):
    train_items = params["phase"] != CALIBRATE
    inner = params["model"]["params"]
    model = {"params": {**jax.tree.map(lambda _: True, inner),
                        "item_tower": jax.tree.map(lambda _: train_items, inner["item_tower"])}}
    return {"model": model, "w_I": False, "phase": False}

  def item_vectors(self, params):
    """The item tower's output for the whole catalogue, [I, d] (deterministic)."""
    model = self.base.model
    return model.apply(params["model"], jnp.arange(self.num_items), method=model.items)

  def serve(self, params, data, part="test"):
    return self.base.serve(params["model"], data, part)

  def serve_items(self, params):
    """The catalogue's item vectors as served, [I, d] (the backbone's `serve_items`)."""
    return self.base.serve_items(params["model"])


_SLEEP_FNS: dict[Any, Any] = {}


def sleep_fn(method: IDWTwoTower):
  """sleep(params_S, data, momentum) -> (params_S with new w_I, delta_S): Algorithm 2 for
  every seed as one jitted, vmapped program (cached per backbone)."""
  key = method.base.program_key()
  if key not in _SLEEP_FNS:
    def sleep(params, data, momentum):
      w_I, delta = sleep_weights(method.item_vectors(params), params["w_I"],
                                 data["item_counts"] > 0, momentum)
      return {**params, "w_I": w_I}, delta
    _SLEEP_FNS[key] = jax.jit(jax.vmap(sleep, in_axes=(0, None, None)))
  return _SLEEP_FNS[key]


@dataclasses.dataclass
class IDWResult:
  params: Any  # leading seed axis, after calibration
  phi_star: Any  # host copy of the item-tower parameters before calibration (φ*)
  deltas: np.ndarray  # [T, S] ‖Δw‖∞ of each sleep phase run
  wake_rounds: np.ndarray  # [S] wake phases each seed trained (its t at the break)
  losses: np.ndarray  # [S, epochs] mean training loss per epoch, all phases in order
  phases: list[str]  # the phase of each epoch: "pretrain", "wake1", .., "calibrate"
  seconds: float


@dataclasses.dataclass
class IDWProgress:
  """Algorithm 1 between two epochs, enough to resume it exactly (`run_idw(resume=...)`):
  `round` is -1 while pre-training (`pretrain_done` epochs run so far), else the next
  sleep/wake round t to run (0 right after pre-training)."""
  state: train_lib.TrainState
  losses: list[np.ndarray]  # [S] per epoch run, all phases in order
  phases: list[str]  # the phase of each of those epochs
  deltas: list[np.ndarray]  # [S] per sleep phase run
  active: np.ndarray  # [S] seeds still in the sleep/wake loop
  wake_rounds: np.ndarray  # [S]
  round: int = -1
  pretrain_done: int = 0

  def host_state(self) -> dict[str, np.ndarray]:
    """All but `state` as arrays (a checkpoint's host half; `from_host` inverts it)."""
    num_seeds = self.active.shape[0]
    return {"idw.losses": (np.stack(self.losses, 1) if self.losses
                           else np.zeros((num_seeds, 0), np.float32)),
            "idw.phases": np.asarray(self.phases, dtype=str),
            "idw.deltas": (np.stack(self.deltas) if self.deltas
                           else np.zeros((0, num_seeds), np.float32)),
            "idw.active": self.active, "idw.wake_rounds": self.wake_rounds,
            "idw.round": np.int64(self.round), "idw.pretrain_done": np.int64(self.pretrain_done)}

  @classmethod
  def from_host(cls, state: train_lib.TrainState, host: dict[str, np.ndarray]) -> IDWProgress:
    return cls(state, list(host["idw.losses"].T), [str(p) for p in host["idw.phases"]],
               list(host["idw.deltas"]), np.asarray(host["idw.active"], bool),
               np.asarray(host["idw.wake_rounds"], np.int64), int(host["idw.round"]),
               int(host["idw.pretrain_done"]))


# One compiled call rather than a dozen eager ones (each compiles on first use).
_adam_init = jax.jit(lambda params_S, lr: train_lib.opt_init(train_lib.ADAM, params_S, lr))


def init_state(method: IDWTwoTower, data, keys_S, learning_rate: float) -> train_lib.TrainState:
  """The S seeds' initial parameters and Adam state (also a checkpoint's restore template)."""
  # The jitted single-seed init, stacked: a vmapped Flax init compiles ~3x slower.
  params_S = jax.tree.map(lambda *x: jnp.stack(x), *(method.init(k, data) for k in keys_S))
  return train_lib.TrainState(params_S, _adam_init(params_S, jnp.float32(learning_rate)))


def keep_stopped(new, old, active_S):
  """Each leaf of `new` where the seed is active, else the seed's `old` leaf (seed axis 0)."""
  on_S = jnp.asarray(active_S)
  return jax.tree.map(lambda a, b: jnp.where(on_S.reshape((-1,) + (1,) * (a.ndim - 1)), a, b),
                      new, old)


def run_idw(method: IDWTwoTower, data, num_examples: int, keys_S, cfg: train_lib.TrainConfig,
            idw: IDWConfig | None = None, label: str = "idw", on_epoch=None,
            end_phase=None, resume: IDWProgress | None = None,
            on_progress=None) -> IDWResult:
  """Algorithm 1 for S seeds: pre-train (unweighted), then up to MAX_T rounds of sleep
  (new weights) and wake (weighted training), then user-tower calibration.

  A seed stops for good at its first sleep phase with ‖Δw‖∞ < η: the later wake phases
  still run for the others (one vmapped program), and the stopped seed's parameters and
  optimiser state are put back afterwards, so it keeps φ^(t). Adam's state is kept
  from pre-training through the wake phases (official code); calibration starts a fresh
  Adam. `cfg.epochs` is the pre-training budget unless `idw.pretrain_epochs` sets one; the
  other phases' epochs come from `idw` (default: the method's `schedule`).

  Hooks for the table runner (early stopping on validation, curves, checkpoints):
  `on_epoch(epoch, state, phase)` after each epoch, where returning True ends the phase
  early; `end_phase(state, phase) -> state` at the end of the pre-training, each wake and
  the calibration phase (e.g. to put back each seed's best epoch); `on_progress(progress)`
  with an `IDWProgress` after each pre-training epoch that does not end the phase, at the
  end of pre-training and after each wake round (the points a run can resume from:
  `resume=progress` goes on from there exactly as the uninterrupted run would).
  """
  idw = method.schedule if idw is None else idw
  t0 = time.time()
  num_seeds = keys_S.shape[0]
  num_steps = train_lib.steps_per_epoch(num_examples, cfg.batch_size)
  hyper = train_lib.hyper_values(method, cfg.weight_decay)
  if resume is None:
    resume = IDWProgress(init_state(method, data, keys_S, cfg.learning_rate), [], [], [],
                         np.ones(num_seeds, bool), np.zeros(num_seeds, np.int64))
  state, losses_S, phases, deltas = resume.state, resume.losses, resume.phases, resume.deltas
  active_S, wake_rounds_S = resume.active.copy(), resume.wake_rounds.copy()

  def report_progress(state, round_, pretrain_done=0):
    if on_progress is not None:
      on_progress(IDWProgress(state, losses_S, phases, deltas, active_S.copy(),
                              wake_rounds_S.copy(), round_, pretrain_done))

  def set_phase(state, phase):
    phase_S = jnp.full((num_seeds,), phase, jnp.float32)
    return train_lib.TrainState({**state.params, "phase": phase_S}, state.opt_state)

  def run_epochs(fn, state, n, phase, done=0, after_epoch=None):
    for i in range(done, n):
      state, loss_S = fn(state, keys_S, data, jnp.int32(len(phases)), hyper)
      losses_S.append(np.asarray(loss_S))
      phases.append(phase)
      if cfg.log_every and len(phases) % cfg.log_every == 0:
        print(f"  {label} epoch {len(phases)} ({phase})  loss {np.nanmean(losses_S[-1]):.4f}"
              f"  ({time.time() - t0:.0f}s)", file=sys.stderr, flush=True)
      if on_epoch is not None and on_epoch(len(phases) - 1, state, phase) is True:
        break
      if after_epoch is not None and i + 1 < n:
        after_epoch(state, i + 1)
    return state if end_phase is None or not n else end_phase(state, phase)

  epoch_fn = train_lib.make_epoch_fn(method, train_lib.ADAM, num_steps, cfg.batch_size)
  if resume.round < 0:
    pretrain = cfg.epochs if idw.pretrain_epochs is None else idw.pretrain_epochs
    state = run_epochs(epoch_fn, state, pretrain, "pretrain", resume.pretrain_done,
                       lambda state, done: report_progress(state, -1, done))
    state = set_phase(state, WAKE)
    report_progress(state, 0)
  sleep = sleep_fn(method)
  for t in range(max(resume.round, 0), idw.max_iterations):
    params, delta_S = sleep(state.params, data, jnp.float32(idw.momentum))  # Algorithm 2
    state = train_lib.TrainState(params, state.opt_state)
    deltas.append(np.asarray(delta_S))
    active_S &= deltas[-1] >= idw.eta  # Algorithm 1, line 6
    if not active_S.any():
      break
    kept = None if active_S.all() else jax.tree.map(jnp.copy, state)  # the loop donates
    state = run_epochs(epoch_fn, state, idw.wake_epochs, f"wake{t + 1}")  # Eqs. 10-11
    if kept is not None:
      state = keep_stopped(state, kept, active_S)
    wake_rounds_S += active_S
    if t + 1 < idw.max_iterations:
      report_progress(state, t + 1)
  phi_star = jax.tree.map(np.array, state.params["model"]["params"]["item_tower"])
  lr = cfg.learning_rate if idw.calibration_lr is None else idw.calibration_lr
  state = set_phase(state, CALIBRATE)
  state = train_lib.TrainState(state.params, _adam_init(state.params, jnp.float32(lr)))
  state = run_epochs(epoch_fn, state, idw.calibration_epochs, "calibrate")
  jax.block_until_ready(state.params)
  return IDWResult(state.params, phi_star, np.asarray(deltas).reshape(-1, num_seeds),
                   wake_rounds_S, np.stack(losses_S, 1) if losses_S else
                   np.zeros((num_seeds, 0)), phases, time.time() - t0)
