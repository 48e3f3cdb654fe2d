"""The sequence rows of SML's Table 1 (SIGIR'20): GRU4Rec and Caser over a period stream.

Each is a sequence model over every user's history, trained like Full-retrain (the
`ltbench.methods.sml` driver's schedule): pre-trained on D_0 … D_{first_online−1}, then at
each online period t, after the current model is tested on period t's rows, trained on
D_0 … D_t (`epochs` passes, warm-started, a fresh Adam state per period).

- Training examples: every interaction of D_0 … D_t is a target; its input is the window
  of its user's items before it in the stream (`csr_windows` over the users' histories in
  stream order; an interaction's own slot and later ones are never in it). The loss is
  `sml.log_loss`, the L_0 of every other row: log loss with one uniform sampled negative
  per positive, redrawn every pass (GRU4Rec's paper trains on TOP1/BPR over in-batch
  negatives and Caser's on log loss with 3 negatives; one shared loss keeps the rows
  comparable). Adam with L2 weight decay `l2` (PyTorch's weight_decay, Caser's setup).
- Test rows of period t: the window is the user's last items of D_0 … D_{t−1} only, one
  vector per user, so nothing from period t (the tested one) or later is ever input. Ranked
  exactly as the MF rows (`sml.evaluate_vectors`: the positive against its sampled
  negatives, or full ranking with the user's items of periods ≤ t excluded).

Hyper-parameters (the SML paper gives none for its baselines): d = 64 (the MF rows'); Caser
L = 5, n_v = 4, n_h = 16, dropout 0.5, lr 1e-3, l2 1e-6 (Caser §4.3 and its code); GRU4Rec
a window of the last 20 items (GRU4Rec trains on sessions; 20 covers most windows that
matter and keeps shapes fixed), no dropout, lr 1e-3, l2 1e-6 (the Caser values). Batch
1024 (the MF rows'). See docs/decisions.md ("SML: the sequence rows").
"""

from __future__ import annotations

import dataclasses
import functools
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ltbench.data.periods import PeriodStream
from ltbench.data.sequences import csr_windows, histories_from_interactions
from ltbench.methods import sml
from ltbench.models.seqrec import GRU4Rec, Caser

METHODS = ("gru4rec", "caser")
# Per-method defaults of the fields that differ (module docstring).
METHOD_DEFAULTS = {"gru4rec": {"window": 20, "dropout": 0.0},
                   "caser": {"window": 5, "dropout": 0.5}}


@dataclasses.dataclass(frozen=True)
class SeqPeriodConfig:
  """Options of the GRU4Rec and Caser rows (row params)."""

  method: str  # "gru4rec" or "caser"
  dim: int = 64  # d (the MF rows')
  window: int = 20  # input items (GRU4Rec 20; Caser's L = 5)
  n_v: int = 4  # Caser: vertical filters
  n_h: int = 16  # Caser: horizontal filters per height
  dropout: float = 0.0  # GRU4Rec: on input embeddings; Caser: on [o_v; o_h] (0.5)
  lr: float = 1e-3  # Adam step (Caser)
  l2: float = 1e-6  # weight decay (Caser)
  batch: int = 1024  # examples per step
  epochs: int = 1  # passes over D_0..D_t per online period
  pretrain_epochs: int = 10  # passes over D_0..D_{first_online-1}

  def __post_init__(self):
    if self.method not in METHODS:
      raise ValueError(f"unknown sequence method {self.method!r}; valid: {', '.join(METHODS)}")
    for name in ("dim", "window", "n_v", "n_h", "batch"):
      if getattr(self, name) < 1:
        raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
    for name in ("epochs", "pretrain_epochs"):
      if getattr(self, name) < 0:
        raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
    if not 0 <= self.dropout < 1:
      raise ValueError(f"dropout must lie in [0, 1), got {self.dropout}")


def make_config(method: str, options: dict[str, Any]) -> SeqPeriodConfig:
  if method not in METHODS:
    raise ValueError(f"unknown sequence method {method!r}; valid: {', '.join(METHODS)}")
  fields = {f.name for f in dataclasses.fields(SeqPeriodConfig)} - {"method"}
  unknown = set(options) - fields
  if unknown:
    raise ValueError(f"unknown options {sorted(unknown)} for {method!r}; valid: "
                     f"{', '.join(sorted(fields))}")
  return SeqPeriodConfig(method=method, **{**METHOD_DEFAULTS[method], **options})


def build_model(cfg: SeqPeriodConfig, num_users: int, num_items: int):
  if cfg.method == "gru4rec":
    return GRU4Rec(num_items, cfg.dim, cfg.dropout)
  return Caser(num_users, num_items, cfg.dim, cfg.window, cfg.n_v, cfg.n_h, cfg.dropout)


# -- histories ---------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class StreamHistories:
  """Every user's items in stream (time) order, as CSR, and where each interaction sits."""

  items_N: np.ndarray  # int32 [N], user-major, stream order within a user
  indptr_U1: np.ndarray  # int64 [U + 1]
  slot_N: np.ndarray  # int64 [N], CSR slot of stream interaction n

  def device(self, user_N):
    """(items, user, start, stop) device arrays for the training loss: example n's input
    is items[start[n]:stop[n]], its user's items before it."""
    return (jnp.asarray(self.items_N), jnp.asarray(user_N),
            jnp.asarray(self.indptr_U1[user_N]), jnp.asarray(self.slot_N))


def stream_histories(stream: PeriodStream) -> StreamHistories:
  indptr, items = histories_from_interactions(stream.user_N, stream.item_N, None,
                                              num_users=stream.num_users)
  order = np.argsort(stream.user_N, kind="stable")  # the CSR order of the interactions
  slot = np.empty_like(order)
  slot[order] = np.arange(order.size)
  return StreamHistories(items, indptr, slot.astype(np.int64))


def test_windows(hist: StreamHistories, stream: PeriodStream, t: int, width: int):
  """(inputs_UxW, mask_UxW) of every user for tested period t: their last `width` items of
  D_0 … D_{t−1} (the model tested on period t has seen nothing later)."""
  before = int(stream.period_start_P1[t])
  count_U = np.bincount(stream.user_N[:before], minlength=stream.num_users)
  start_U = hist.indptr_U1[:-1]
  return csr_windows(hist.items_N, start_U, start_U + count_U, width)


# -- one pass (jitted, vmapped over seeds) and evaluation --------------------------------

def _optimizer(cfg: SeqPeriodConfig):
  return optax.chain(optax.add_decayed_weights(cfg.l2), optax.adam(cfg.lr))


def seq_loss(model, cfg, params, batch, items_N, user_N, start_N, stop_N):
  """L_0 on a batch whose "user" field holds stream interaction indices (the examples)."""
  n_B = batch["user"]
  inputs_BxW, mask_BxW = csr_windows(items_N, start_N[n_B], stop_N[n_B], cfg.window)
  rngs = {"dropout": batch["dropout"]}
  user_BxD = model.apply(params, inputs_BxW, mask_BxW, user_N[n_B], False, rngs=rngs,
                         method="users")
  pos_BxD = model.apply(params, batch["pos"], method="items")
  neg_BxD = model.apply(params, batch["neg"], method="items")
  return sml.log_loss(jnp.sum(user_BxD * pos_BxD, -1), jnp.sum(user_BxD * neg_BxD, -1),
                      batch["mask"])


@functools.lru_cache(maxsize=None)
def seq_pass_fn(cfg: SeqPeriodConfig, num_users: int, num_items: int):
  """jit(vmap): one pass; (params_S, opt_S, keys_S, example_SxN, target_SxN, mask_SxN,
  items_N, user_N, start_N, stop_N) -> (params_S, opt_S, loss_S). The history arrays are
  shared by the seeds."""
  model, opt = build_model(cfg, num_users, num_items), _optimizer(cfg)

  def one(params, opt_state, key, example_N, target_N, mask_N, items_N, user_N, start_N,
          stop_N):
    k_batch, k_drop = jax.random.split(key)
    batches = sml._batches(k_batch, example_N, target_N, mask_N, cfg.batch, num_items)
    batches["dropout"] = jax.random.split(k_drop, batches["mask"].shape[0])
    loss_fn = lambda p, b: seq_loss(model, cfg, p, b, items_N, user_N, start_N, stop_N)
    return sml._adam_pass(loss_fn, params, opt_state, opt, batches)
  return jax.jit(jax.vmap(one, in_axes=(0,) * 6 + (None,) * 4))


@functools.lru_cache(maxsize=None)
def vectors_fn(cfg: SeqPeriodConfig, num_users: int, num_items: int):
  """jit(vmap): (params_S, inputs_UxW, mask_UxW) -> (user_SxUxD, item_SxIxD)."""
  model = build_model(cfg, num_users, num_items)

  def one(params, inputs_UxW, mask_UxW):
    users = model.apply(params, inputs_UxW, mask_UxW, jnp.arange(num_users), method="users")
    return users, model.apply(params, jnp.arange(num_items), method="items")
  return jax.jit(jax.vmap(one, in_axes=(0, None, None)))


@functools.lru_cache(maxsize=None)
def _init_fn(cfg: SeqPeriodConfig, num_users: int, num_items: int):
  model = build_model(cfg, num_users, num_items)
  inputs = jnp.zeros((1, cfg.window), jnp.int32)
  mask = jnp.ones((1, cfg.window), bool)
  zero = jnp.zeros((1,), jnp.int32)
  return jax.jit(jax.vmap(lambda key: model.init(key, inputs, mask, zero, zero)))


def init_params(keys_S, num_users: int, num_items: int, cfg: SeqPeriodConfig):
  return _init_fn(cfg, num_users, num_items)(keys_S)


def param_counts(cfg: SeqPeriodConfig, stream: PeriodStream) -> dict[str, int]:
  shapes = jax.eval_shape(lambda k: init_params(k[None], stream.num_users, stream.num_items,
                                                cfg), jax.random.PRNGKey(0))
  return {"total": int(sum(np.prod(x.shape[1:]) for x in jax.tree.leaves(shapes)))}


# -- the driver --------------------------------------------------------------------------

def run_sequence_periods(stream: PeriodStream, keys_S, cfg: SeqPeriodConfig, ks=(5, 10, 20),
                         label: str | None = None, log: bool = True) -> sml.PeriodResult:
  """Runs GRU4Rec or Caser over the stream for S seeds (keys_S [S, 2]); see the module
  docstring. Returns per-period metrics [S, P_test] like `sml.run_periods`."""
  label = label or cfg.method
  t0 = time.time()
  num_seeds = keys_S.shape[0]
  P, first = stream.num_periods, stream.first_online
  keys_S = jnp.asarray(keys_S)
  k_init = jax.vmap(lambda k: jax.random.fold_in(k, 0))(keys_S)
  k_run = jax.vmap(lambda k: jax.random.fold_in(k, 2))(keys_S)
  hist = stream_histories(stream)
  shared = hist.device(stream.user_N)
  one_pass = seq_pass_fn(cfg, stream.num_users, stream.num_items)
  vectors = vectors_fn(cfg, stream.num_users, stream.num_items)
  opt = _optimizer(cfg)
  losses: list[np.ndarray] = []
  counter = [0]

  def train_upto(params_S, t, epochs):
    """`epochs` passes over D_0 … D_t, a fresh Adam state (as a retraining run)."""
    stop = int(stream.period_start_P1[t + 1])
    examples = (np.arange(stop, dtype=np.int32), stream.item_N[:stop])
    data = sml.padded(*sml.seeded(examples, num_seeds), cfg.batch)
    opt_S = jax.vmap(opt.init)(params_S)
    for _ in range(epochs):
      counter[0] += 1
      keys = jax.vmap(lambda k: jax.random.fold_in(k, counter[0]))(k_run)
      params_S, opt_S, loss_S = one_pass(params_S, opt_S, keys, *data, *shared)
      losses.append(np.asarray(loss_S))
    return params_S

  params_S = init_params(k_init, stream.num_users, stream.num_items, cfg)
  if first > 0 and cfg.pretrain_epochs:
    params_S = train_upto(params_S, first - 1, cfg.pretrain_epochs)
    if log:
      sml._log(label, f"pre-trained on periods 0..{first - 1} ({cfg.pretrain_epochs} epochs, "
                      f"loss {np.nanmean(losses[-1]):.4f})")
  tested = [t for t in stream.test_periods if t >= first]
  per = {}
  for t in range(first, P):
    if t in stream.test_periods:
      user_SxUxD, item_SxIxD = vectors(params_S, *test_windows(hist, stream, t, cfg.window))
      m = sml.evaluate_vectors(user_SxUxD, item_SxIxD, stream, t, ks)
      for c, v in m.items():
        per.setdefault(c, []).append(v)
      if log:
        cell = f"overall/Recall@{max(ks)}"
        sml._log(label, f"period {t}/{P - 1}: tested, {cell} {np.mean(m[cell]):.2f} "
                        f"({time.time() - t0:.0f}s)")
    params_S = train_upto(params_S, t, cfg.epochs)
    if log and losses:
      sml._log(label, f"period {t}/{P - 1}: trained on {int(stream.period_start_P1[t + 1])} "
                      f"interactions (D_0..D_{t}), loss {np.nanmean(losses[-1]):.4f}")
  metrics = {c: np.stack(v, 1) for c, v in per.items()}
  loss_SxE = np.stack(losses, 1) if losses else np.zeros((num_seeds, 0))
  return sml.PeriodResult(tested, metrics, loss_SxE, time.time() - t0)
