"""CDN modules (Zhang et al., KDD 2023): item-side experts with a frequency gate (Eq. 3),
the bilateral user tower with a shared sub-network and two branch heads (Eq. 4), and one
item tower per branch (BBN's separate classifiers, adapted to two towers)."""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from ltbench.data.bundle import FieldSpec
from ltbench.models.towers import MLP, Dropout, FeatureEncoder, Tower

# Expert designs of CDN Table 5. Each has the same number and size of experts.
#   mem_gen: memorisation experts on ids, generalisation experts on content, frequency gate.
#   head_tail: experts on all features; a 0-1 gate sends head items to expert 0, tail to 1.
#   unbalanced_balanced: experts on all features; expert 0 serves the main (original-
#     distribution) branch and expert 1 the regulariser (balanced) branch; no gate.
DESIGNS = ("mem_gen", "head_tail", "unbalanced_balanced")


def encoded_dim(fields: Sequence[FieldSpec], embed_dim: int) -> int:
  """Width of `FeatureEncoder`'s output for these fields."""
  return sum(1 if f.kind == "continuous" else embed_dim for f in fields)


def mlp_param_count(in_dim: int, sizes: Sequence[int]) -> int:
  """Weights and biases of `towers.MLP(sizes)` on inputs of width in_dim."""
  count, prev = 0, in_dim
  for size in sizes:
    count, prev = count + prev * size + size, size
  return count


def gate_param_count(design: str, num_experts: int, gate_input: str, num_buckets: int = 10
                     ) -> int:
  """Parameters of `ItemExperts.gate` (none for the fixed head/tail gate; unbalanced/balanced
  builds the gate although it does not use it)."""
  if design == "head_tail":
    return 0
  if gate_input == "bucket":
    return num_buckets * 8 + 9 * num_experts
  return 2 * num_experts


def expert_sizes_for_budget(budget: int, in_dims: Sequence[int], template: Sequence[int],
                            fixed: int = 0) -> tuple[int, ...]:
  """Expert MLP sizes whose experts (one per entry of in_dims) plus `fixed` extra parameters
  (the gate) come closest to `budget` parameters.

  Every expert has the template's depth and output size; its hidden widths are the
  template's scaled by one common factor (so [256, 128, 64] becomes [w, w/2, 64]). A
  template of one layer has no width to choose and is returned as it is.

  Example: the ML-1M backbone item tower's MLP (193 inputs, [256, 128, 64]) has 90,816
  parameters; 1 + 1 mem/gen experts on 64 and 129 inputs get [198, 99, 64] (90,812 + a
  4-parameter gate), 2 + 2 get [119, 60, 64].
  """
  template = tuple(int(s) for s in template)
  if len(template) < 2:
    return template
  def sizes(w):
    return tuple(max(1, round(w * s / template[0])) for s in template[:-1]) + template[-1:]
  def cost(w):
    return abs(sum(mlp_param_count(d, sizes(w)) for d in in_dims) + fixed - budget)
  return sizes(min(range(1, 4 * template[0] + 1), key=cost))


class ItemExperts(nn.Module):
  """Returns (experts_IxKxD, gate_IxK) for the given item rows."""

  fields: tuple[FieldSpec, ...]
  design: str = "mem_gen"  # one of DESIGNS
  n_mem: int = 1  # memorisation experts (mem_gen); other designs use n_mem + n_gen experts
  n_gen: int = 1  # generalisation experts
  embed_dim: int = 64  # per-field embedding size
  expert_sizes: Sequence[int] = (64,)  # MLP sizes of every expert; the last is the item vector
  gate_input: str = "log"  # "log": log item frequency; "bucket": bucketised + embedded
  num_buckets: int = 10  # buckets of log frequency for gate_input="bucket"
  dropout: float = 0.0  # dropout on the encoded features and between expert layers

  @nn.compact
  def __call__(self, feats: dict, counts: jax.Array, head: jax.Array, log_max: jax.Array,
               deterministic: bool = True):
    """counts/head: train count and head flag of each row; log_max: log(1 + the catalogue's
    largest count), so the gate input is scaled the same for any subset of items."""
    if self.design not in DESIGNS:
      raise ValueError(f"unknown expert design {self.design!r}; valid: {DESIGNS}")
    drop = Dropout(self.dropout)  # one mask per call (each call draws its own seed)
    num_experts = self.n_mem + self.n_gen
    if self.design == "mem_gen":
      mem = tuple(f for f in self.fields if f.group == "mem")
      gen = tuple(f for f in self.fields if f.group == "gen")
      x_mem = drop(FeatureEncoder(mem, self.embed_dim, name="mem_encoder")(feats), deterministic)
      x_gen = drop(FeatureEncoder(gen, self.embed_dim, name="gen_encoder")(feats), deterministic)
      inputs = [x_mem] * self.n_mem + [x_gen] * self.n_gen
    else:
      x = drop(FeatureEncoder(self.fields, self.embed_dim, name="encoder")(feats), deterministic)
      inputs = [x] * num_experts
    experts_IxKxD = jnp.stack(
        [MLP(tuple(self.expert_sizes), self.dropout, name=f"expert_{k}")(x, deterministic)
         for k, x in enumerate(inputs)], axis=1)
    gate_IxK = self.gate(counts, head, log_max, num_experts)
    return experts_IxKxD, gate_IxK

  def gate(self, counts, head, log_max, num_experts):
    """G(i) of Eq. 3: softmax(W · f(freq_i)); rows sum to 1."""
    if self.design == "head_tail":
      half = num_experts // 2
      head_gate = jnp.concatenate([jnp.full(half, 1.0 / half), jnp.zeros(num_experts - half)])
      tail_gate = jnp.concatenate([jnp.zeros(half), jnp.full(num_experts - half,
                                                             1.0 / (num_experts - half))])
      return jnp.where(head[:, None], head_gate[None, :], tail_gate[None, :])
    log_freq = jnp.log1p(counts.astype(jnp.float32))
    if self.gate_input == "log":
      z = log_freq[:, None] / jnp.maximum(log_max, 1.0)  # scale to [0, 1]
    elif self.gate_input == "bucket":
      edges = jnp.linspace(0.0, jnp.maximum(log_max, 1e-6), self.num_buckets + 1)[1:-1]
      z = nn.Embed(self.num_buckets, 8, name="gate_buckets")(jnp.searchsorted(edges, log_freq))
    else:
      raise ValueError(f"gate_input must be 'log' or 'bucket', got {self.gate_input!r}")
    return jax.nn.softmax(nn.Dense(num_experts, name="gate")(z), axis=-1)


class BilateralUserTower(nn.Module):
  """x_m = h_m(f(u)), x_r = h_r(f(u)) (Eq. 4): f is shared, h_m / h_r are branch heads."""

  fields: tuple[FieldSpec, ...]
  embed_dim: int = 64  # per-field embedding size
  shared: Sequence[int] = (256, 128)  # hidden sizes of the shared sub-network f
  out_dim: int = 64  # output size of each branch head
  dropout: float = 0.0  # dropout rate

  def setup(self):
    self.encoder = FeatureEncoder(self.fields, self.embed_dim)
    self.f = MLP(tuple(self.shared), self.dropout)
    self.h_m = nn.Dense(self.out_dim)
    self.h_r = nn.Dense(self.out_dim)
    self.drop = Dropout(self.dropout)

  def hidden(self, feats, deterministic=True):
    h = nn.relu(self.f(self.encoder(feats), deterministic))
    return self.drop(h, deterministic)

  def main(self, feats, deterministic=True):
    return self.h_m(self.hidden(feats, deterministic))

  def regulariser(self, feats, deterministic=True):
    return self.h_r(self.hidden(feats, deterministic))

  def __call__(self, feats, deterministic=True):
    h = self.hidden(feats, deterministic)
    return self.h_m(h), self.h_r(h)


class BranchItemTowers(nn.Module):
  """One complete item tower per branch: `__call__` returns (y_m, y_r). BBN keeps a separate
  classifier per branch; in a two-tower model the item vectors are the classifier."""

  fields: tuple[FieldSpec, ...]
  embed_dim: int = 64  # per-field embedding size
  sizes: Sequence[int] = (256, 128, 64)  # MLP sizes of each tower
  dropout: float = 0.0  # dropout rate

  def setup(self):
    self.main = Tower(self.fields, self.embed_dim, tuple(self.sizes), self.dropout)
    self.regulariser = Tower(self.fields, self.embed_dim, tuple(self.sizes), self.dropout)

  def __call__(self, feats, deterministic=True):
    return self.main(feats, deterministic), self.regulariser(feats, deterministic)
