"""SUR and MUR (Mehta et al., 2023, §3.1): the sequential two-tower trained with in-batch
softmax and logQ correction (Eqs. 1-3), on `ltbench.data.sequences.SequenceData`.

A training example is a (sequence row, target position) pair; the step gathers its input
window with `example_inputs`, scores the batch's users against the batch's target items
by max over the M user vectors, subtracts log p(y) from each column (Eq. 2; on for every
model, as in the official code) and takes the softmax cross-entropy with the diagonal as
labels. Serving gives [U, M, d] user vectors for the validation or test examples and the
catalogue's item vectors; `rank_sampled` ranks them with the same max-over-M score.
The Table 1 baselines are options of the same method (`objective`, `item_norm`); IDW's
density-weighted wake phase (Eq. 10, `methods.idw`) passes per-example weights through
`weights_B`.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np

from ltbench import evaluate, losses
from ltbench.data.sequences import PAD, example_inputs
from ltbench.methods.baselines import sampler_log_q
from ltbench.models.sequential import SequentialTwoTower as SequentialModel
from ltbench.models.sequential import max_over_m
from ltbench.train import permutation_batches

SERVE_CHUNK = 4096  # evaluation examples per user-tower call when serving


@dataclasses.dataclass(frozen=True)
class SeqModelConfig:
  dim: int = 16  # d, embedding and output size (§4.4)
  num_layers: int = 2  # self-attention layers of the user tower (§4.4)
  num_heads: int = 4  # attention heads per layer (§4.4)
  num_interests: int = 1  # M: 1 = SUR, 5 = MUR (§4.3)
  item_sizes: tuple[int, ...] = (16, 16)  # item-tower Dense sizes (§4.4)
  dropout: float = 0.0  # attention and item-MLP dropout (paper silent; official Amazon: 0.2)
  positional: bool = False  # sine position codes in the user tower (official default: off)
  # Training batches stratified by input length into this many strata of near-equal size,
  # each batch taking every stratum's share and running it at the stratum's own window
  # width (`length_strata`): the same function of the same examples (padded slots never
  # reach a user vector), a different stream of batches, ~1.4x faster on a CPU. 1 = uniform
  # random batches over the full window.
  length_strata: int = 1

  def model(self, num_items: int) -> SequentialModel:
    return SequentialModel(num_items, self.dim, self.num_layers, self.num_heads,
                           self.num_interests, tuple(self.item_sizes), self.dropout,
                           self.positional)


def in_batch_logits(user_BxMxD, item_BxD, target_B, log_q_I, temperature=1.0,
                    remove_accidental_hits=True):
  """LogQ-corrected in-batch logits [B, B] (Eq. 2) with max-over-M scores; labels = diagonal.

  Column j is the target of row j; log p(target_j) is subtracted after the temperature (as
  tfrs does). With remove_accidental_hits, a column j != b holding row b's target item is
  masked out of row b.
  """
  logits_BxB = max_over_m(user_BxMxD, item_BxD) / temperature
  labels_B = jnp.arange(target_B.shape[0], dtype=jnp.int32)
  return losses.logq_correct(logits_BxB, log_q_I[target_B],
                             target_B if remove_accidental_hits else None,
                             labels_B if remove_accidental_hits else None)


def _times(weights_B, extra_B):
  return extra_B if weights_B is None else weights_B * extra_B


def softmax_objective(logits_BxB, labels_B, target_B, counts_I, hyper, weights_B=None):
  """Eq. 3: the (weighted) softmax cross-entropy of the logQ logits (SUR, MUR)."""
  return losses.softmax_cross_entropy(logits_BxB, labels_B, weights_B)


def frequency_balance_objective(logits_BxB, labels_B, target_B, counts_I, hyper,
                                weights_B=None):
  """Eq. 5: each example weighted by 1/p(y) of its target (mean 1 over training examples)."""
  w_B = losses.frequency_balance_weights(counts_I)[target_B]
  return losses.softmax_cross_entropy(logits_BxB, labels_B, _times(weights_B, w_B))


def focal_objective(logits_BxB, labels_B, target_B, counts_I, hyper, weights_B=None):
  """Focal balance: the softmax focal loss of the logQ logits, γ = hyper["gamma"]."""
  return losses.focal_softmax_cross_entropy(logits_BxB, labels_B, hyper["gamma"], weights_B)


def qmargin_objective(logits_BxB, labels_B, target_B, counts_I, hyper, weights_B=None):
  """Qmargin (LDAM): the target's logit lowered by δ_y ∝ n_y^(−1/4) before the softmax."""
  margin_B = losses.ldam_margins(counts_I, hyper["max_margin"])[target_B]
  logits_BxB = losses.subtract_label_margin(logits_BxB, labels_B, margin_B)
  return losses.softmax_cross_entropy(logits_BxB, labels_B, weights_B)


OBJECTIVES = {"softmax": softmax_objective, "frequency_balance": frequency_balance_objective,
              "focal": focal_objective, "qmargin": qmargin_objective}
Objective = Literal["softmax", "frequency_balance", "focal", "qmargin"]
ItemNorm = Literal["none", "train", "post_hoc"]


# Jitted: an eager (or eagerly vmapped) Flax init dispatches op by op, which took seconds.
@functools.partial(jax.jit, static_argnums=(1, 2))
def _init_params(key, method, width):
  inputs_1xW = jnp.zeros((1, width), jnp.int32)
  return method.model.init(key, inputs_1xW, jnp.ones((1, width), bool),
                           jnp.zeros((1,), jnp.int32))


def length_strata(pos_E, num_strata: int, width: int) -> tuple[tuple[int, int], ...]:
  """(largest input length, example count) of each stratum when the training examples (target
  positions `pos_E`; input length min(pos, width)) are cut at the quantiles of their input
  length into at most `num_strata` strata of near-equal size (fewer when lengths repeat)."""
  length_E = np.minimum(np.asarray(pos_E), width)
  if num_strata <= 1 or length_E.size == 0:
    return ((int(length_E.max(initial=width)), int(length_E.size)),)
  cuts = np.quantile(length_E, np.arange(1, num_strata) / num_strata, method="higher")
  highs = sorted({int(c) for c in cuts} | {int(length_E.max())})
  out, low = [], 0
  for high in highs:
    count = int(np.count_nonzero((length_E > low) & (length_E <= high)))
    if count:
      out.append((high, count))
    low = high
  return tuple(out)


def stratum_counts(sizes, batch_size: int) -> list[int]:
  """Examples a batch takes from each stratum: batch_size split in proportion to the strata's
  sizes (largest remainder), summing to batch_size."""
  total = sum(sizes)
  exact = [batch_size * s / total for s in sizes]
  counts = [int(e) for e in exact]
  for i in sorted(range(len(sizes)), key=lambda i: counts[i] - exact[i])[:batch_size - sum(counts)]:
    counts[i] += 1
  return counts


@dataclasses.dataclass(frozen=True)
class SequentialTwoTower:
  """A `train.Method` on SequenceData.device_arrays(): SUR (num_interests = 1) or MUR."""

  name: str
  num_items: int  # catalogue size I
  model_cfg: SeqModelConfig = SeqModelConfig()
  temperature: float = 1.0  # divides the scores (paper silent; official ML config 0.01)
  remove_accidental_hits: bool = True  # mask in-batch duplicates of a row's target
  objective: Objective = "softmax"  # the loss on the logQ logits (Table 1 baselines)
  gamma: float = 2.0  # focal γ (objective="focal"; Lin et al.'s default)
  max_margin: float = 0.5  # Qmargin's largest margin, in logits (objective="qmargin"; LDAM's)
  item_norm: ItemNorm = "none"  # "train": unit item vectors in training and serving (Item
  # Norm); "post_hoc": v / ‖v‖^tau at serving only (Item Norm (Post-hoc))
  tau: float = 1.0  # τ of the post-hoc normalisation
  # (largest input length, example count) per stratum when model_cfg.length_strata > 1
  # (`length_strata`, from the training examples at build time); () = uniform batches.
  strata: tuple[tuple[int, int], ...] = ()

  def __post_init__(self):
    if self.strata and self.model_cfg.positional:
      raise ValueError("length_strata > 1 runs short windows whose slots sit at other "
                       "positions; it cannot be combined with positional codes")
    if not self.temperature > 0:
      raise ValueError(f"temperature must be positive, got {self.temperature}")
    if self.objective not in OBJECTIVES:
      raise ValueError(f"unknown objective {self.objective!r}; valid: {', '.join(OBJECTIVES)}")
    if self.item_norm not in ("none", "train", "post_hoc"):
      raise ValueError(f"item_norm must be 'none', 'train' or 'post_hoc', got {self.item_norm!r}")
    if not self.gamma >= 0 or not self.max_margin >= 0:
      raise ValueError(f"gamma and max_margin must be >= 0, got {self.gamma}, {self.max_margin}")

  @property
  def model(self) -> SequentialModel:
    return self.model_cfg.model(self.num_items)

  def program_key(self):
    # γ and the margin reach the loss as traced hyper values; post-hoc τ only acts at serving.
    item_norm = "none" if self.item_norm == "post_hoc" else self.item_norm
    return dataclasses.replace(self, name="", gamma=0.0, max_margin=0.0, item_norm=item_norm,
                               tau=1.0)

  def serve_key(self):
    """What serving adds to `program_key`: the post-hoc τ-normalisation."""
    return (self.item_norm, self.tau)

  def hyper(self):
    return {"gamma": self.gamma, "max_margin": self.max_margin}

  def init(self, key, data):
    return _init_params(key, self, data["items_SxL"].shape[1] - 1)

  def sample(self, key, data, epoch, num_steps, batch_size):
    """[num_steps, batch_size] example indices: a random permutation cut into batches, or
    with strata, each batch's columns taken stratum by stratum (a permutation of each
    stratum, tiled if the epoch needs more of it than it holds)."""
    if not self.strata:
      return permutation_batches(key, data["train_row_E"].shape[0], num_steps, batch_size)
    width = data["items_SxL"].shape[1] - 1
    length_E = jnp.minimum(data["train_pos_E"], width)
    counts = stratum_counts([size for _, size in self.strata], batch_size)
    columns, low = [], 0
    for k, ((high, size), count) in enumerate(zip(self.strata, counts)):
      (idx,) = jnp.nonzero((length_E > low) & (length_E <= high), size=size)
      perm = idx[jax.random.permutation(jax.random.fold_in(key, k), size)]
      need = num_steps * count
      if need > size:
        perm = jnp.tile(perm, -(-need // size))
      columns.append(perm[:need].reshape(num_steps, count))
      low = high
    return jnp.concatenate(columns, axis=1)

  def apply(self, params, inputs_BxW, mask_BxW, item_N, key=None):
    """(user_BxMxD, item_NxD); dropout iff key."""
    rngs = {"dropout": key} if key is not None else {}
    return self.model.apply(params, inputs_BxW, mask_BxW, item_N, key is None, rngs=rngs)

  def apply_strata(self, params, inputs_BxW, mask_BxW, item_N, key=None):
    """`apply` for a batch laid out stratum by stratum: the user tower runs on each
    stratum's columns over the last `largest input length` slots only (right-aligned, so
    they hold the whole input), with its own dropout key."""
    counts = stratum_counts([size for _, size in self.strata], inputs_BxW.shape[0])
    model, width = self.model, inputs_BxW.shape[1]
    users, start = [], 0
    for k, ((high, _), count) in enumerate(zip(self.strata, counts)):
      rows = slice(start, start + count)
      rngs = {"dropout": jax.random.fold_in(key, k)} if key is not None else {}
      users.append(model.apply(params, inputs_BxW[rows, width - high:],
                               mask_BxW[rows, width - high:], key is None, rngs=rngs,
                               method=model.users))
      start += count
    rngs = {"dropout": jax.random.fold_in(key, len(counts))} if key is not None else {}
    item_NxD = model.apply(params, item_N, key is None, rngs=rngs, method=model.items)
    return jnp.concatenate(users, axis=0), item_NxD

  def loss(self, params, batch_idx_B, data, key, epoch, weights_B=None):
    row_B = data["train_row_E"][batch_idx_B]
    pos_B = data["train_pos_E"][batch_idx_B]
    inputs_BxW, mask_BxW = example_inputs(data["items_SxL"], row_B, pos_B)
    target_B = data["items_SxL"][row_B, pos_B]
    if self.strata:  # the batch is stratum by stratum (`sample`): each at its own width
      user_BxMxD, item_BxD = self.apply_strata(params, inputs_BxW, mask_BxW, target_B, key)
    else:
      user_BxMxD, item_BxD = self.apply(params, inputs_BxW, mask_BxW, target_B, key)
    if self.item_norm == "train":
      item_BxD = losses.tau_normalize(item_BxD, 1.0)
    logits_BxB = in_batch_logits(user_BxMxD, item_BxD, target_B, sampler_log_q("natural", data),
                                 self.temperature, self.remove_accidental_hits)
    labels_B = jnp.arange(target_B.shape[0], dtype=jnp.int32)
    hyper = data.get("hyper", self.hyper())
    return OBJECTIVES[self.objective](logits_BxB, labels_B, target_B, data["item_counts"],
                                      hyper, weights_B), {}

  def serve(self, params, data, part: Literal["valid", "test"] = "test"):
    """(user_UxMxD for every sequence's validation or test example, item_IxD)."""
    if part not in ("valid", "test"):
      raise ValueError(f"part must be 'valid' or 'test', got {part!r}")
    items_SxL = data["items_SxL"]
    num_seq = items_SxL.shape[0]
    length_S = jnp.sum(items_SxL != PAD, axis=1)  # left-aligned: the count is the length
    pos_S = length_S - (2 if part == "valid" else 1)
    chunk = min(SERVE_CHUNK, num_seq)
    num_chunks = -(-num_seq // chunk)
    pad = num_chunks * chunk - num_seq
    row_CxK = jnp.pad(jnp.arange(num_seq), (0, pad)).reshape(num_chunks, chunk)
    pos_CxK = jnp.pad(pos_S, (0, pad), constant_values=1).reshape(num_chunks, chunk)
    model = self.model

    def users(args):
      inputs_KxW, mask_KxW = example_inputs(items_SxL, *args)
      return model.apply(params, inputs_KxW, mask_KxW, method=model.users)

    user_CxKxMxD = jax.lax.map(users, (row_CxK, pos_CxK))
    user_UxMxD = user_CxKxMxD.reshape(num_chunks * chunk, *user_CxKxMxD.shape[2:])[:num_seq]
    return user_UxMxD, self.serve_items(params)

  def serve_items(self, params):
    """The catalogue's item vectors as served, [I, d]: the item tower's output, as unit
    vectors for Item Norm, or τ-normalised (v / ‖v‖^τ) for the post-hoc variant."""
    model = self.model
    item_IxD = model.apply(params, jnp.arange(self.num_items), method=model.items)
    if self.item_norm != "none":
      item_IxD = losses.tau_normalize(item_IxD, 1.0 if self.item_norm == "train" else self.tau)
    return item_IxD


def rank_eval(user_SxUxMxD, item_SxIxD, seq_data, part: Literal["valid", "test"] = "test",
              chunk_size=1024):
  """(ranks_SxU, ties_SxU) of the validation or test targets of `seq_data` (a SequenceData)
  for S seeds: against its fixed sampled negatives with `evaluate.rank_sampled` (max over M),
  or, when it has none (full-ranking data such as idw-synthetic), against the whole
  catalogue with max-over-M scores, minus nothing (sequences hold no seen-item exclusion).
  """
  targets_U = seq_data.eval_targets(part)
  if seq_data.negatives_SxN is not None:
    return evaluate.rank_sampled(user_SxUxMxD, item_SxIxD, targets_U, seq_data.negatives_SxN,
                                 chunk_size, with_ties=True)
  # Full ranking: the "negatives" of every example are the whole catalogue but its target.
  num_items = item_SxIxD.shape[1]
  all_UxI = np.broadcast_to(np.arange(num_items, dtype=np.int32), (len(targets_U), num_items))
  others_UxN = all_UxI[all_UxI != targets_U[:, None]].reshape(len(targets_U), num_items - 1)
  return evaluate.rank_sampled(user_SxUxMxD, item_SxIxD, targets_U, others_UxN, chunk_size,
                               with_ties=True)
