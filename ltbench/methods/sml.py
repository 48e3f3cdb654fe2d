"""Period-by-period retraining of MF (SML, SIGIR'20, Table 1): Full-retrain, Fine-tune,
SPMF and SML, each one jitted, seed-vmapped program per period and phase. The sequence
rows GRU4Rec and Caser run through the same entry points (`make_config`, `run_periods`)
and live in `ltbench.methods.sml_seq`.

Zhang, Feng, Wang, He, Wang, Li, Zhang, "How to Retrain Recommender System? A Sequential
Meta-Learning Method", SIGIR 2020, and its official code (github.com/zyang1580/SML).

Schedule over a `PeriodStream` (ltbench.data.periods) of periods D_0 … D_{P-1}:
- pre-training: MF on D_0 ∪ … ∪ D_{first_online−1} (`pretrain_epochs`), shared by every
  row of a seed (the official code starts from an undocumented pretrained MF, BCE_init.pkl);
- online, t = first_online … P−1: when period t is tested, the current recommender
  (W_{t−1}) is first evaluated on its test rows, then it is updated with D_t:
  * Full-retrain: MF on D_0 ∪ … ∪ D_t, warm-started from W_{t−1} (`mf_epochs` passes);
  * Fine-tune: MF from W_{t−1} on D_t only;
  * SPMF: MF from W_{t−1} on D_t plus a reservoir sample of the earlier interactions
    (`reservoir_size`, reservoir sampling over the stream, a reservoir per seed);
  * SML: Algorithm 1 / 2. With Θ the user and item transfer networks (models/sml.py),
    Step 1 updates only Ŵ by L_r(Ŵ | D) = L_0(f_Θ(W_prev, Ŵ) | D) + λ₁‖Ŵ_batch‖² and Step 2
    only Θ by L_s(Θ | D') = L_0(f_Θ(W_prev, Ŵ) | D') + λ₂‖Θ‖². When D_t arrives
    (Algorithm 2): `outer` rounds of {Step 2 on D_t, Step 1 on D_{t−1}} for Ŵ_{t−1}, then
    W_{t−1} ← f_Θ(W_{t−2}, Ŵ_{t−1}); Ŵ_t ← W_{t−1} and `mf_epochs` of Step 1 on D_t; W_t =
    f_Θ(W_{t−1}, Ŵ_t). At t = first_online there is no Ŵ_{t−1}: Θ keeps its random
    initialisation until D_{t+1} arrives (so put ≥ 2 periods between first_online and
    first_test, as the official schedules do).
- L_0 is the log loss with one sampled negative per positive (uniform over the catalogue,
  redrawn every pass), averaged over the batch. Step 2's gradient is the slides' ∂L_0/∂x ·
  ∂f_Θ/∂Θ at the current Ŵ (no unrolled inner step): in `meta` terms a global update with
  zero local steps, so it uses `meta.global_grad(..., steps=0)` with Ŵ frozen.
- Evaluation per tested period: each row's positive against its sampled negatives (the
  official protocol; `rank_sampled`, ties split), or full ranking with the user's items of
  periods ≤ t excluded when the stream has no negatives. Recall@k = HR@k (one positive).

Shapes change between periods; each period's data are padded to a power-of-two number of
batches with a mask, so a row compiles a handful of programs, not one per period.
"""

from __future__ import annotations

import dataclasses
import functools
import sys
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ltbench import evaluate, meta
from ltbench.data.periods import PeriodStream
from ltbench.models.sml import SMLTransfer, init_mf, mf_score, transfer_param_count

SEQUENCE_METHODS = ("gru4rec", "caser")  # ltbench.methods.sml_seq
METHODS = ("full_retrain", "fine_tune", "spmf", "sml") + SEQUENCE_METHODS


@dataclasses.dataclass(frozen=True)
class PeriodTrainConfig:
  """Options of the period rows (row params); defaults are the official code's."""

  dim: int = 64  # latent size (official 64)
  mf_lr: float = 0.01  # Adam step of MF / Ŵ (official 0.01)
  mf_l2: float = 1e-6  # L2 on the batch's embeddings (official 1e-6; λ₁ for SML)
  mf_batch: int = 1024  # (official 1024)
  mf_epochs: int = 1  # passes over each period's data (official MF_epochs 1; Adressa 2)
  pretrain_epochs: int = 10  # MF passes over D_0..D_{first_online-1}
  tr_lr: float = 1e-3  # Adam step of Θ (official 1e-3)
  tr_l2: float = 1e-4  # λ₂ (official 1e-4)
  tr_batch: int = 256  # (official 256)
  tr_epochs: int = 1  # Step-2 passes per round (official TR_epochs 1)
  outer: int = 10  # rounds of {Step 2, Step 1} per period (official multi_num 10, Yelp)
  hidden: int = 512  # transfer FC width (official 512)
  reservoir_size: int = 0  # SPMF: past interactions kept (0: one period's mean size)
  init_scale: float = 0.1  # N(0, scale²) MF init

  def __post_init__(self):
    for name in ("dim", "mf_batch", "tr_batch", "hidden"):
      if getattr(self, name) < 1:
        raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
    for name in ("mf_epochs", "pretrain_epochs", "tr_epochs", "outer", "reservoir_size"):
      if getattr(self, name) < 0:
        raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")


def make_config(method: str, options: dict[str, Any]):
  """The row's config: PeriodTrainConfig, or sml_seq.SeqPeriodConfig for GRU4Rec / Caser."""
  if method not in METHODS:
    raise ValueError(f"unknown period method {method!r}; valid: {', '.join(METHODS)}")
  if method in SEQUENCE_METHODS:
    from ltbench.methods import sml_seq
    return sml_seq.make_config(method, options)
  fields = {f.name for f in dataclasses.fields(PeriodTrainConfig)}
  unknown = set(options) - fields
  if unknown:
    raise ValueError(f"unknown options {sorted(unknown)} for {method!r}; valid: "
                     f"{', '.join(sorted(fields))}")
  return PeriodTrainConfig(**options)


# -- losses ------------------------------------------------------------------------------

def log_loss(pos_B, neg_B, mask_B):
  """L_0: −log σ(ŷ_ui) − log(1 − σ(ŷ_uj)), masked mean over the batch."""
  per_B = -jax.nn.log_sigmoid(pos_B) - jax.nn.log_sigmoid(-neg_B)
  return jnp.sum(per_B * mask_B) / jnp.maximum(mask_B.sum(), 1.0)


def mf_loss(mf, batch, l2):
  """MF log loss plus l2 · ‖batch embeddings‖² (mean per example, as the official code)."""
  p_BxD = mf["P"][batch["user"]]
  q_BxD, n_BxD = mf["Q"][batch["pos"]], mf["Q"][batch["neg"]]
  loss = log_loss(mf_score(p_BxD, q_BxD), mf_score(p_BxD, n_BxD), batch["mask"])
  reg_B = (p_BxD ** 2).sum(-1) + (q_BxD ** 2).sum(-1) + (n_BxD ** 2).sum(-1)
  return loss + l2 * jnp.sum(reg_B * batch["mask"]) / jnp.maximum(batch["mask"].sum(), 1.0)


def transferred_rows(net: SMLTransfer, theta, w_prev, w_hat, batch):
  """f_Θ(W_prev, Ŵ) on the rows a batch touches: (user, positive, negative) [B, D] each."""
  user = net.apply(theta, w_prev["P"][batch["user"]], w_hat["P"][batch["user"]],
                   method=SMLTransfer.users)
  items = jnp.concatenate([batch["pos"], batch["neg"]])
  item = net.apply(theta, w_prev["Q"][items], w_hat["Q"][items], method=SMLTransfer.items)
  b = batch["user"].shape[0]
  return user, item[:b], item[b:]


def sml_l0(net, theta, w_prev, w_hat, batch):
  u, q, n = transferred_rows(net, theta, w_prev, w_hat, batch)
  return log_loss(mf_score(u, q), mf_score(u, n), batch["mask"])


def step1_loss(net, l1, w_hat, theta, w_prev, batch):
  """L_r(Ŵ | D): as a function of Ŵ (Θ, W_prev fixed). λ₁ on the batch's Ŵ rows."""
  reg = sum(jnp.sum(w_hat[k][batch[c]] ** 2, -1) for k, c in
            (("P", "user"), ("Q", "pos"), ("Q", "neg")))
  reg = jnp.sum(reg * batch["mask"]) / jnp.maximum(batch["mask"].sum(), 1.0)
  return sml_l0(net, theta, w_prev, w_hat, batch) + l1 * reg


def step2_loss(net, l2, theta, w_hat, w_prev, batch):
  """L_s(Θ | D'): as a function of Θ (Ŵ, W_prev fixed)."""
  reg = sum(jnp.sum(x ** 2) for x in jax.tree.leaves(theta))
  return sml_l0(net, theta, w_prev, w_hat, batch) + l2 * reg


def transfer_all(net, theta, w_prev, w_hat, chunk=4096):
  """W = f_Θ(W_prev, Ŵ) for every user and item."""
  def side(fn, prev, hat):
    n = prev.shape[0]
    pad = -n % chunk
    prev_p, hat_p = jnp.pad(prev, ((0, pad), (0, 0))), jnp.pad(hat, ((0, pad), (0, 0)))
    out = jax.lax.map(lambda xs: net.apply(theta, xs[0], xs[1], method=fn),
                      (prev_p.reshape(-1, chunk, prev.shape[1]),
                       hat_p.reshape(-1, chunk, hat.shape[1])))
    return out.reshape(-1, prev.shape[1])[:n]
  return {"P": side(SMLTransfer.users, w_prev["P"], w_hat["P"]),
          "Q": side(SMLTransfer.items, w_prev["Q"], w_hat["Q"])}


# -- one pass over a period's data (jitted, vmapped over seeds) --------------------------

def _batches(key, user_N, item_N, mask_N, batch, num_items):
  """Shuffled [steps, batch] arrays with one uniform negative per positive."""
  k_perm, k_neg = jax.random.split(key)
  n = user_N.shape[0]
  # Valid rows first in random order, padding last (the mask keeps padding inert).
  order = jnp.argsort(jnp.where(mask_N > 0, jax.random.uniform(k_perm, (n,)), 2.0))
  neg_N = jax.random.randint(k_neg, (n,), 0, num_items)
  shape = (n // batch, batch)
  return {"user": user_N[order].reshape(shape), "pos": item_N[order].reshape(shape),
          "neg": neg_N.reshape(shape), "mask": mask_N[order].reshape(shape)}


def _adam_pass(loss_fn, params, opt_state, opt, batches):
  def step(state, batch):
    params, opt_state = state
    loss, grads = jax.value_and_grad(loss_fn)(params, batch)
    updates, opt_state = opt.update(grads, opt_state, params)
    return (optax.apply_updates(params, updates), opt_state), loss * batch["mask"].any()
  (params, opt_state), loss_T = jax.lax.scan(step, (params, opt_state), batches)
  steps = jnp.maximum(jnp.sum(batches["mask"].any(1)), 1)
  return params, opt_state, loss_T.sum() / steps


@functools.lru_cache(maxsize=None)
def mf_pass_fn(lr: float, l2: float, batch: int, num_items: int):
  """jit(vmap): one MF pass; (mf_S, opt_S, keys_S, user_SxN, item_SxN, mask_SxN) ->
  (mf_S, opt_S, loss_S). Data lead with the seed axis (SPMF's reservoirs differ per seed)."""
  opt = optax.adam(lr)

  def one(mf, opt_state, key, user_N, item_N, mask_N):
    batches = _batches(key, user_N, item_N, mask_N, batch, num_items)
    return _adam_pass(lambda p, b: mf_loss(p, b, l2), mf, opt_state, opt, batches)
  return jax.jit(jax.vmap(one))


@functools.lru_cache(maxsize=None)
def sml_step1_fn(cfg: PeriodTrainConfig, num_items: int):
  """jit(vmap): one Step-1 pass, updating Ŵ only; (w_hat, opt, theta, w_prev, key, data)."""
  net, opt = SMLTransfer(hidden=cfg.hidden), optax.adam(cfg.mf_lr)

  def one(w_hat, opt_state, theta, w_prev, key, user_N, item_N, mask_N):
    batches = _batches(key, user_N, item_N, mask_N, cfg.mf_batch, num_items)
    loss_fn = lambda w, b: step1_loss(net, cfg.mf_l2, w, theta, w_prev, b)
    return _adam_pass(loss_fn, w_hat, opt_state, opt, batches)
  return jax.jit(jax.vmap(one))


@functools.lru_cache(maxsize=None)
def sml_step2_fn(cfg: PeriodTrainConfig, num_items: int):
  """jit(vmap): one Step-2 pass, updating Θ only; (theta, opt, w_hat, w_prev, key, data).

  The gradient is `meta.global_grad` with zero local steps: Ŵ is the (frozen) input of
  the transfer, and L_s is differentiated in Θ at it (slides: Step 2)."""
  net, opt = SMLTransfer(hidden=cfg.hidden), optax.adam(cfg.tr_lr)

  def one(theta, opt_state, w_hat, w_prev, key, user_N, item_N, mask_N):
    batches = _batches(key, user_N, item_N, mask_N, cfg.tr_batch, num_items)

    def step(state, batch):
      theta, opt_state = state
      (loss, _), grads = meta.global_grad(
          lambda th, b: (step2_loss(net, cfg.tr_l2, th, w_hat, w_prev, b), {}),
          theta, batch, batch, 0.0, steps=0)
      updates, opt_state = opt.update(grads, opt_state, theta)
      return (optax.apply_updates(theta, updates), opt_state), loss * batch["mask"].any()
    (theta, opt_state), loss_T = jax.lax.scan(step, (theta, opt_state), batches)
    return theta, opt_state, loss_T.sum() / jnp.maximum(jnp.sum(batches["mask"].any(1)), 1)
  return jax.jit(jax.vmap(one))


@functools.lru_cache(maxsize=None)
def transfer_all_fn(hidden: int):
  net = SMLTransfer(hidden=hidden)
  return jax.jit(jax.vmap(lambda theta, w_prev, w_hat: transfer_all(net, theta, w_prev, w_hat)))


def init_transfer(key, dim: int, hidden: int):
  x = jnp.zeros((1, dim))
  return SMLTransfer(hidden=hidden).init(key, x, x, x, x)


@functools.lru_cache(maxsize=None)
def _init_fn(num_users: int, num_items: int, dim: int, scale: float, hidden: int):
  def one(key):
    k_mf, k_theta = jax.random.split(key)
    return init_mf(k_mf, num_users, num_items, dim, scale), init_transfer(k_theta, dim, hidden)
  return jax.jit(jax.vmap(one))


def init_params(keys_S, num_users: int, num_items: int, cfg: PeriodTrainConfig):
  """(MF {"P", "Q"}, Θ) per seed, one compiled program (not op-by-op)."""
  return _init_fn(num_users, num_items, cfg.dim, cfg.init_scale, cfg.hidden)(keys_S)


# -- host-side data -----------------------------------------------------------------------

def padded(user_SxN, item_SxN, batch: int):
  """Pads [S, N] data to a power-of-two number of batches: (user, item, mask) [S, N']."""
  s, n = user_SxN.shape
  steps = max(1, -(-n // batch))
  size = batch * (1 << (steps - 1).bit_length())
  pad = size - n
  mask = np.concatenate([np.ones((s, n), np.float32), np.zeros((s, pad), np.float32)], 1)
  return (jnp.asarray(np.pad(user_SxN, ((0, 0), (0, pad)))),
          jnp.asarray(np.pad(item_SxN, ((0, 0), (0, pad)))), jnp.asarray(mask))


def seeded(arrays, num_seeds: int):
  """Shared (user_N, item_N) broadcast to [S, N]."""
  return tuple(np.broadcast_to(a, (num_seeds, a.shape[0])) for a in arrays)


class Reservoir:
  """SPMF's per-seed reservoirs of past interactions (Vitter's algorithm R)."""

  def __init__(self, size: int, seeds):
    self.size = size
    self.rngs = [np.random.default_rng([int(s), 0x5350]) for s in seeds]
    self.user = [np.zeros(0, np.int32) for _ in seeds]
    self.item = [np.zeros(0, np.int32) for _ in seeds]
    self.seen = 0

  def sample(self):
    """[S, R] reservoirs (R = the current fill, equal across seeds)."""
    return np.stack(self.user), np.stack(self.item)

  def add(self, user_N, item_N):
    for s, rng in enumerate(self.rngs):
      u, i = list(self.user[s]), list(self.item[s])
      for k in range(user_N.shape[0]):
        n = self.seen + k
        if n < self.size:
          u.append(user_N[k]); i.append(item_N[k])
        else:
          j = rng.integers(0, n + 1)
          if j < self.size:
            u[j], i[j] = user_N[k], item_N[k]
      self.user[s], self.item[s] = np.asarray(u, np.int32), np.asarray(i, np.int32)
    self.seen += user_N.shape[0]


# -- evaluation --------------------------------------------------------------------------

def evaluate_period(mf_S, stream: PeriodStream, t: int, ks) -> dict[str, np.ndarray]:
  """Per-seed Recall@k / NDCG@k (percent) of MF models on the test rows of period t."""
  return evaluate_vectors(mf_S["P"], mf_S["Q"], stream, t, ks)


def evaluate_vectors(user_SxUxD, item_SxIxD, stream: PeriodStream, t: int,
                     ks) -> dict[str, np.ndarray]:
  """Per-seed Recall@k / NDCG@k (percent) on the test rows of period t, a row's score
  being user_u · item_i (MF's P, Q; the sequence rows' user and item vectors)."""
  user_M, pos_M, neg_MxK = stream.test_rows(t)
  user_SxMxD = user_SxUxD[:, jnp.asarray(user_M)]
  if neg_MxK is None:
    indptr, indices = stream.full_exclusion(t)
    ranks, ties = evaluate.rank_full(user_SxMxD, item_SxIxD, pos_M,
                                     exclude=(indptr, indices, user_M), with_ties=True)
  else:
    ranks, ties = evaluate.rank_sampled(user_SxMxD, item_SxIxD, pos_M, neg_MxK,
                                        with_ties=True)
  metrics = evaluate.metrics_from_ranks(ranks, ks, {"overall": np.ones(len(user_M), bool)},
                                        ties)
  return {f"{s}/{m}": v for (s, m), v in metrics.items()
          if m.startswith(("Recall@", "NDCG@"))}


# -- the driver --------------------------------------------------------------------------

@dataclasses.dataclass
class PeriodResult:
  periods: list[int]  # tested periods, in order
  metrics: dict[str, np.ndarray]  # cell -> [S, P_test] per-period values (percent)
  losses: np.ndarray  # [S, passes] mean training loss of every pass, in order
  wall_s: float


def _log(label, text):
  print(f"[ltbench]   {label}: {text}", file=sys.stderr, flush=True)


def run_periods(method: str, stream: PeriodStream, keys_S, cfg: PeriodTrainConfig,
                ks=(5, 10, 20), seeds=None, label: str | None = None,
                log: bool = True) -> PeriodResult:
  """Runs one row over the stream for S seeds (keys_S [S, 2]); see the module docstring.

  Returns per-period metrics [S, P_test] for every cell "overall/Recall@k", "overall/NDCG@k".
  """
  if method not in METHODS:
    raise ValueError(f"unknown period method {method!r}; valid: {', '.join(METHODS)}")
  if method in SEQUENCE_METHODS:
    from ltbench.methods import sml_seq
    return sml_seq.run_sequence_periods(stream, keys_S, cfg, ks, label or method, log)
  label = label or method
  t0 = time.time()
  num_seeds = keys_S.shape[0]
  seeds = list(range(num_seeds)) if seeds is None else list(seeds)
  P, first = stream.num_periods, stream.first_online
  keys_S = jnp.asarray(keys_S)
  k_init = jax.vmap(lambda k: jax.random.fold_in(k, 0))(keys_S)
  k_run = jax.vmap(lambda k: jax.random.fold_in(k, 2))(keys_S)
  counter = [0]

  def next_keys():
    counter[0] += 1
    return jax.vmap(lambda k: jax.random.fold_in(k, counter[0]))(k_run)

  losses: list[np.ndarray] = []
  mf_pass = mf_pass_fn(cfg.mf_lr, cfg.mf_l2, cfg.mf_batch, stream.num_items)
  opt_mf = optax.adam(cfg.mf_lr)

  def mf_train(mf_S, user_SxN, item_SxN, epochs):
    opt_S = jax.vmap(opt_mf.init)(mf_S)  # a fresh Adam per period, as a retraining run
    data = padded(user_SxN, item_SxN, cfg.mf_batch)
    for _ in range(epochs):
      mf_S, opt_S, loss_S = mf_pass(mf_S, opt_S, next_keys(), *data)
      losses.append(np.asarray(loss_S))
    return mf_S

  mf_S, theta_S = init_params(k_init, stream.num_users, stream.num_items, cfg)
  if first > 0 and cfg.pretrain_epochs:
    mf_S = mf_train(mf_S, *seeded(stream.upto(first - 1), num_seeds), cfg.pretrain_epochs)
    if log:
      _log(label, f"pre-trained on periods 0..{first - 1} ({cfg.pretrain_epochs} epochs, "
                  f"loss {np.nanmean(losses[-1]):.4f})")

  reservoir = None
  if method == "spmf":
    size = cfg.reservoir_size or int(np.mean(stream.period_sizes()))
    reservoir = Reservoir(size, seeds)
    if first > 0:
      reservoir.add(*stream.upto(first - 1))
  if method == "sml":
    net_cfg = cfg
    opt_tr, opt_hat = optax.adam(cfg.tr_lr), optax.adam(cfg.mf_lr)
    step1, step2 = sml_step1_fn(net_cfg, stream.num_items), sml_step2_fn(net_cfg,
                                                                          stream.num_items)
    apply_all = transfer_all_fn(cfg.hidden)
    theta_opt_S = jax.vmap(opt_tr.init)(theta_S)
    prev = None  # (W_{t-2}, Ŵ_{t-1}, D_{t-1} padded) for Algorithm 2's update

  tested = [t for t in stream.test_periods if t >= first]
  per = {}
  for t in range(first, P):
    if t in stream.test_periods:
      m = evaluate_period(mf_S, stream, t, ks)
      for c, v in m.items():
        per.setdefault(c, []).append(v)
      if log:
        cell = f"overall/Recall@{max(ks)}"
        _log(label, f"period {t}/{P - 1}: tested, {cell} {np.mean(m[cell]):.2f} "
                    f"({time.time() - t0:.0f}s)")
    d_t = stream.period(t)
    if method == "fine_tune":
      mf_S = mf_train(mf_S, *seeded(d_t, num_seeds), cfg.mf_epochs)
    elif method == "full_retrain":
      mf_S = mf_train(mf_S, *seeded(stream.upto(t), num_seeds), cfg.mf_epochs)
    elif method == "spmf":
      past_u, past_i = reservoir.sample()
      user = np.concatenate([np.broadcast_to(d_t[0], (num_seeds, d_t[0].size)), past_u], 1)
      item = np.concatenate([np.broadcast_to(d_t[1], (num_seeds, d_t[1].size)), past_i], 1)
      mf_S = mf_train(mf_S, user, item, cfg.mf_epochs)
      reservoir.add(*d_t)
    else:
      data_t = padded(*seeded(d_t, num_seeds), cfg.tr_batch)
      data_t_mf = padded(*seeded(d_t, num_seeds), cfg.mf_batch)
      if prev is not None:  # Algorithm 2, lines 3-7: D_t has arrived
        w_prev2, w_hat1, hat_opt, data_prev = prev
        for _ in range(cfg.outer):
          for _ in range(cfg.tr_epochs):
            theta_S, theta_opt_S, loss_S = step2(theta_S, theta_opt_S, w_hat1, w_prev2,
                                                 next_keys(), *data_t)
            losses.append(np.asarray(loss_S))
          w_hat1, hat_opt, _ = step1(w_hat1, hat_opt, theta_S, w_prev2, next_keys(),
                                     *data_prev)
        mf_S = apply_all(theta_S, w_prev2, w_hat1)  # W_{t-1} ← f_Θ(W_{t-2}, Ŵ_{t-1})
      # Algorithm 2, line 8 (Algorithm 1, Step 1): Ŵ_t from W_{t-1} on D_t.
      w_hat, hat_opt = mf_S, jax.vmap(opt_hat.init)(mf_S)
      for _ in range(cfg.mf_epochs):
        w_hat, hat_opt, loss_S = step1(w_hat, hat_opt, theta_S, mf_S, next_keys(), *data_t_mf)
        losses.append(np.asarray(loss_S))
      prev = (mf_S, w_hat, hat_opt, data_t_mf)
      mf_S = apply_all(theta_S, mf_S, w_hat)  # W_t = f_Θ(W_{t-1}, Ŵ_t)
    if log and losses:
      _log(label, f"period {t}/{P - 1}: trained on {d_t[0].size} interactions, loss "
                  f"{np.nanmean(losses[-1]):.4f}")
  metrics = {c: np.stack(v, 1) for c, v in per.items()}
  loss_SxE = np.stack(losses, 1) if losses else np.zeros((num_seeds, 0))
  return PeriodResult(tested, metrics, loss_SxE, time.time() - t0)


def param_counts(method: str, cfg, stream: PeriodStream) -> dict[str, int]:
  if method in SEQUENCE_METHODS:
    from ltbench.methods import sml_seq
    return sml_seq.param_counts(cfg, stream)
  mf = (stream.num_users + stream.num_items) * cfg.dim
  out = {"total": mf}
  if method == "sml":
    out["transfer"] = 2 * transfer_param_count(cfg.dim, hidden=cfg.hidden)
    out["total"] = 2 * mf + out["transfer"]  # W and Ŵ
  return out


def relative_improvement(sml_values, baseline_values) -> float:
  """The paper's RI (Table 1), in percent: the mean over the three cut-offs of
  (SML − baseline) / baseline. E.g. Adressa Full-retrain recall@{5,10,20} 0.0495, 0.0915,
  0.1631 vs SML 0.2815, 0.3794, 0.4498 gives 319.7 %, as printed (a ratio of the means
  would give 265 %)."""
  sml_values = np.asarray(sml_values, np.float64)
  baseline_values = np.asarray(baseline_values, np.float64)
  return float(np.mean(100.0 * (sml_values - baseline_values) / baseline_values))
