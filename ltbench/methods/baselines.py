"""Backbone and re-balancing baselines on the two-tower model (full or in-batch softmax).

- Two-tower (Yi et al., RecSys 2019): softmax over the whole catalogue.
- ClassBalance (Cui et al., CVPR 2019): the same loss, each example weighted by the inverse
  effective number of samples of its target item.
- LogQ (Menon et al., ICLR 2021 logit adjustment; "LogQ" in MIRec/CDN): training logits
  s + λ·log p_i, serving with raw s, which shifts the ranking towards tail items.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable

import jax
import jax.numpy as jnp

from ltbench import losses
from ltbench.data import samplers
from ltbench.data.bundle import FieldSpec
from ltbench.models.towers import TwoTower
from ltbench.train import permutation_batches


def gather_rows(feats: dict, idx) -> dict:
  """Feature rows of the given entities (works for any leading shape of idx)."""
  return {k: v[idx] for k, v in feats.items()}


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  embed_dim: int = 64  # per-field embedding size (Appendix B.3: 64)
  sizes: tuple[int, ...] = (256, 128, 64)  # tower MLP sizes (Appendix B.3)
  dropout: float = 0.1  # dropout rate in the towers

  def two_tower(self, user_fields, item_fields) -> TwoTower:
    return TwoTower(tuple(user_fields), tuple(item_fields), self.embed_dim, tuple(self.sizes),
                    self.dropout)


# An objective maps (logits_BxC, label column_B, candidate item ids_C, data) to a scalar loss.
# With full softmax the candidates are all items (C = I, labels = target items); with
# in-batch sampled softmax they are the batch's items (labels = the diagonal), and the logits
# arrive logQ-corrected (`losses.logq_correct`).
Objective = Callable[[jax.Array, jax.Array, jax.Array, dict], jax.Array]


# The objective factories are cached so that equal options give the same function object:
# rows that build equal methods then share one compiled program (see `train.program_key`).
@functools.lru_cache(maxsize=None)
def softmax_objective() -> Objective:
  def objective(logits_BxC, labels_B, cand_C, data):
    return losses.softmax_cross_entropy(logits_BxC, labels_B)
  return objective


@functools.lru_cache(maxsize=None)
def class_balanced_objective(beta: float) -> Objective:
  def objective(logits_BxC, labels_B, cand_C, data):
    weights_I = losses.class_balanced_weights(data["item_counts"], beta)
    return losses.softmax_cross_entropy(logits_BxC, labels_B, weights_I[cand_C[labels_B]])
  return objective


@functools.lru_cache(maxsize=None)
def logq_objective(weight: float) -> Objective:
  def objective(logits_BxC, labels_B, cand_C, data):
    log_p_C = losses.log_prior(data["item_counts"])[cand_C]
    return losses.softmax_cross_entropy(losses.logit_adjustment(logits_BxC, log_p_C, weight),
                                        labels_B)
  return objective


SOFTMAX = ("full", "in_batch")


def sampler_log_q(sampler: str, data, cap: int = 0):
  """log probability that an item is drawn by a sampler, per item (for the logQ correction)."""
  counts = data["item_counts"].astype(jnp.float32)
  if sampler == "natural":
    q = counts
  elif sampler == "class_balanced":
    q = (counts > 0).astype(jnp.float32)
  elif sampler == "omega_r":
    q = jnp.minimum(counts, cap)
  elif sampler == "reversed":  # BBN draws item i with probability ∝ 1/n_i
    q = jnp.where(counts > 0, 1.0 / jnp.maximum(counts, 1.0), 0.0)
  else:
    raise ValueError(f"unknown sampler {sampler!r}")
  return jnp.log(jnp.maximum(q / q.sum(), 1e-12))


@dataclasses.dataclass(frozen=True)
class TwoTowerSoftmax:
  """Two-tower model trained with a softmax objective over all items (`softmax="full"`) or
  over the batch's items with logQ correction (`softmax="in_batch"`, for large catalogues)."""

  name: str
  user_fields: tuple[FieldSpec, ...]
  item_fields: tuple[FieldSpec, ...]
  objective: Objective
  model_cfg: ModelConfig = ModelConfig()
  softmax: str = "full"  # one of SOFTMAX

  def __post_init__(self):
    if self.softmax not in SOFTMAX:
      raise ValueError(f"softmax must be one of {SOFTMAX}, got {self.softmax!r}")

  @property
  def model(self) -> TwoTower:
    return self.model_cfg.two_tower(self.user_fields, self.item_fields)

  def program_key(self):
    """This method less its row name: rows that differ only in name share a program."""
    return dataclasses.replace(self, name="")

  def init(self, key, data):
    user0 = gather_rows(data["user_features"], jnp.zeros((1,), jnp.int32))
    item0 = gather_rows(data["item_features"], jnp.zeros((1,), jnp.int32))
    return self.model.init(key, user0, item0)

  def sample(self, key, data, epoch, num_steps, batch_size):
    return permutation_batches(key, data["train_user"].shape[0], num_steps, batch_size)

  def embed(self, params, data, users, key=None, items=None):
    """(user_BxD for the given users, item vectors for `items` or the whole catalogue);
    dropout iff key."""
    train = key is not None
    rngs = {"dropout": key} if train else {}
    model = self.model
    user_BxD = model.apply(params, gather_rows(data["user_features"], users), not train,
                           method=model.users, rngs=rngs)
    item_feats = data["item_features"] if items is None else gather_rows(data["item_features"], items)
    items_xD = model.apply(params, item_feats, not train, method=model.items, rngs=rngs)
    return user_BxD, items_xD

  def candidates(self, params, data, user_B, item_B, key):
    """(user_BxD, logits_BxC, labels_B, cand_C) for the configured softmax."""
    if self.softmax == "full":
      user_BxD, items_IxD = self.embed(params, data, user_B, key)
      return user_BxD, items_IxD, item_B, jnp.arange(items_IxD.shape[0])
    user_BxD, items_BxD = self.embed(params, data, user_B, key, items=item_B)
    return user_BxD, items_BxD, jnp.arange(item_B.shape[0]), item_B

  def logits(self, user_BxD, cand_CxD, labels_B, cand_C, log_q_I):
    logits_BxC = user_BxD @ cand_CxD.T
    if self.softmax == "full":
      return logits_BxC
    return losses.logq_correct(logits_BxC, log_q_I[cand_C], cand_C, labels_B)

  def loss(self, params, batch_idx_B, data, key, epoch):
    user_B = data["train_user"][batch_idx_B]
    item_B = data["train_item"][batch_idx_B]
    log_q_I = sampler_log_q("natural", data)
    user_BxD, cand_CxD, labels_B, cand_C = self.candidates(params, data, user_B, item_B, key)
    logits_BxC = self.logits(user_BxD, cand_CxD, labels_B, cand_C, log_q_I)
    return self.objective(logits_BxC, labels_B, cand_C, data), {}

  def serve(self, params, data):
    num_users = data["user_features"]["user_id"].shape[0]
    return self.embed(params, data, jnp.arange(num_users))


class WrapsBase:
  """A method built around a backbone `self.base`: it answers to the backbone's name, and its
  compiled program is itself with the backbone's traced numbers left out."""

  @property
  def name(self):
    return self.base.name

  def program_key(self):
    return dataclasses.replace(self, base=self.base.program_key())


@dataclasses.dataclass(frozen=True)
class TwoStage(WrapsBase):
  """Two-stage decoupling (Kang et al., ICLR 2020, adapted to two towers as in CDN §4.1):
  stage 1 trains both towers on `stage1` data; stage 2 re-trains only the item side (the
  "classifier") on `stage2` data with the user tower frozen and a fresh optimiser.

  Samplers: "natural" (the original distribution, Ω_m), "class_balanced" (item uniform,
  then one of its interactions), "omega_r" (CDN's down-sampled balanced set).
  NDP = natural → class_balanced; CDN Figure 1 H/T = natural / omega_r with item ids only.
  """

  base: TwoTowerSoftmax
  stage1: str  # sampler of stage 1
  stage2: str  # sampler of stage 2
  switch_epoch: int  # first epoch of stage 2
  reinit_items: bool  # re-initialise the item tower at stage 2 (cRT) or keep it
  omega_r_cap: int = 0  # for the omega_r sampler (host-computed)
  omega_r_size: int = 0

  SAMPLERS = ("natural", "class_balanced", "omega_r")

  def __post_init__(self):
    for s in (self.stage1, self.stage2):
      if s not in self.SAMPLERS:
        raise ValueError(f"unknown two-stage sampler {s!r}; valid: {', '.join(self.SAMPLERS)}")

  @property
  def phase_starts(self):
    return (self.switch_epoch,)

  def init(self, key, data):
    return self.base.init(key, data)

  def begin_phase(self, phase, params, key, data):
    if not self.reinit_items:
      return params
    fresh = self.base.init(key, data)["params"]["item_tower"]
    return {**params, "params": {**params["params"], "item_tower": fresh}}

  def _sampler(self, which, key, data, num_steps, batch_size):
    if which == "natural":
      return permutation_batches(key, data["train_user"].shape[0], num_steps, batch_size)
    if which == "class_balanced":
      return samplers.class_sampler(key, data, samplers.class_balanced_probs(data["item_counts"]),
                                    num_steps, batch_size)
    k_pool, k_perm = jax.random.split(key)
    pool = samplers.omega_r(k_pool, data, self.omega_r_cap, self.omega_r_size)
    return samplers.batches_from_pool(k_perm, pool, num_steps, batch_size)

  def sample(self, key, data, epoch, num_steps, batch_size):
    return jax.lax.cond(
        epoch < self.switch_epoch,
        lambda k: self._sampler(self.stage1, k, data, num_steps, batch_size),
        lambda k: self._sampler(self.stage2, k, data, num_steps, batch_size), key)

  def update_mask(self, params, epoch):
    """Every leaf trains in stage 1; in stage 2 the user tower's leaves are frozen."""
    stage2 = epoch >= self.switch_epoch
    mask = jax.tree.map(lambda _: jnp.bool_(True), params)
    frozen = jax.tree.map(lambda _: ~stage2, params["params"]["user_tower"])
    return {**mask, "params": {**mask["params"], "user_tower": frozen}}

  def loss(self, params, batch_idx_B, data, key, epoch):
    user_B = data["train_user"][batch_idx_B]
    item_B = data["train_item"][batch_idx_B]
    stage2 = epoch >= self.switch_epoch
    log_q_I = jnp.where(stage2, sampler_log_q(self.stage2, data, self.omega_r_cap),
                        sampler_log_q(self.stage1, data, self.omega_r_cap))
    user_BxD, cand_CxD, labels_B, cand_C = self.base.candidates(params, data, user_B, item_B,
                                                                key)
    # Stage 2: the user tower is frozen (no gradient here; `update_mask` also keeps the L2
    # term and the optimiser from moving it).
    user_BxD = jnp.where(stage2, jax.lax.stop_gradient(user_BxD), user_BxD)
    logits_BxC = self.base.logits(user_BxD, cand_CxD, labels_B, cand_C, log_q_I)
    return self.base.objective(logits_BxC, labels_B, cand_C, data), {}

  def serve(self, params, data):
    return self.base.serve(params, data)
