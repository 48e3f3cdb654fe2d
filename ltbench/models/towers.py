"""Feature encoders, MLP towers and the two-tower dot-product model (Flax linen).

A tower maps an entity's feature row to a D-dimensional vector; the score of (user, item)
is the dot product of the two towers' outputs (Yi et al., RecSys 2019).
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from ltbench.data.bundle import FieldSpec


def lowbias32(x) -> jax.Array:
  """C. Wellons' lowbias32 integer hash of uint32 values (two multiply-xorshift rounds)."""
  x = jnp.asarray(x, jnp.uint32)
  x = x ^ (x >> 16)
  x = x * jnp.uint32(0x7FEB352D)
  x = x ^ (x >> 15)
  x = x * jnp.uint32(0x846CA68B)
  return x ^ (x >> 16)


def hash_bits(seed, shape) -> jax.Array:
  """uint32 bits for every element of `shape`, a counter-based hash of (seed, index).

  The hash is lowbias32 (C. Wellons' integer hash: two multiply-xorshift rounds) of the
  element's flat index xor a mixed seed. It costs a few integer ops per element inside the
  fused elementwise kernel, where threefry (`jax.random.bernoulli`) costs a fifth of a
  training step on a CPU. It is a different random stream, not a weaker one for dropout:
  every element of one call gets an independent-looking bit pattern, and each call draws
  its seed from the layer's own PRNG key.
  """
  mix = lowbias32
  size = 1
  for d in shape:
    size *= d
  index = jax.lax.iota(jnp.uint32, size).reshape(shape)
  return mix(index ^ mix(jnp.asarray(seed, jnp.uint32)))


class Dropout(nn.Module):
  """Inverted dropout (same semantics as `flax.linen.Dropout`: zero with probability
  `rate`, scale the rest by 1 / (1 - rate)) whose mask comes from `hash_bits` seeded by one
  draw of the module's "dropout" PRNG stream."""

  rate: float  # probability of zeroing an element

  @nn.compact
  def __call__(self, x: jnp.ndarray, deterministic: bool = True) -> jnp.ndarray:
    if deterministic or self.rate == 0.0:
      return x
    if self.rate >= 1.0:
      return jnp.zeros_like(x)
    seed = jax.random.bits(self.make_rng("dropout"), (), jnp.uint32)
    threshold = jnp.uint32(min(int(round(self.rate * 2.0 ** 32)), 2 ** 32 - 1))
    keep = hash_bits(seed, x.shape) >= threshold
    return jnp.where(keep, x * (1.0 / (1.0 - self.rate)), jnp.zeros_like(x))


class FeatureEncoder(nn.Module):
  """Concatenates one embedding per categorical field, a masked mean embedding per
  multi-hot field (padding = -1) and the raw value of each continuous field.

  The masked mean is written as a weighted sum over the (few) padded slots, one gathered
  row per slot: a vmapped reduce over a gathered [N, L, E] block lowers to a slow loop on
  CPU (nearly half of a training step), the unrolled sum to fused vector adds.
  """

  fields: tuple[FieldSpec, ...]
  embed_dim: int = 64  # embedding size of every categorical / multi-hot field

  @nn.compact
  def __call__(self, feats: dict) -> jnp.ndarray:
    parts = []
    for f in self.fields:
      x = feats[f.name]
      if f.kind == "categorical":
        parts.append(nn.Embed(f.vocab, self.embed_dim, name=f.name)(x))
      elif f.kind == "multi_hot":
        table = nn.Embed(max(f.vocab, 1), self.embed_dim, name=f.name)
        mask_NxL = (x >= 0).astype(jnp.float32)
        weight_NxL = mask_NxL / jnp.maximum(mask_NxL.sum(-1, keepdims=True), 1.0)
        pooled_NxE = 0.0
        for slot in range(x.shape[-1]):
          pooled_NxE = pooled_NxE + table(jnp.maximum(x[..., slot], 0)) * weight_NxL[..., slot, None]
        parts.append(pooled_NxE)
      else:
        parts.append(x[:, None].astype(jnp.float32))
    return jnp.concatenate(parts, axis=-1)


class MLP(nn.Module):
  """Dense layers with ReLU and dropout between them; the last layer is linear."""

  sizes: Sequence[int] = (256, 128, 64)  # hidden sizes; the last is the output size
  dropout: float = 0.0  # dropout rate after each hidden activation

  @nn.compact
  def __call__(self, x: jnp.ndarray, deterministic: bool = True) -> jnp.ndarray:
    for n, size in enumerate(self.sizes):
      x = nn.Dense(size, name=f"dense_{n}")(x)
      if n < len(self.sizes) - 1:
        x = nn.relu(x)
        x = Dropout(self.dropout)(x, deterministic)
    return x


class Tower(nn.Module):
  """Feature encoder followed by an MLP."""

  fields: tuple[FieldSpec, ...]
  embed_dim: int = 64  # per-field embedding size
  sizes: Sequence[int] = (256, 128, 64)  # MLP sizes
  dropout: float = 0.0  # dropout rate

  @nn.compact
  def __call__(self, feats: dict, deterministic: bool = True) -> jnp.ndarray:
    x = FeatureEncoder(self.fields, self.embed_dim, name="encoder")(feats)
    return MLP(self.sizes, self.dropout, name="mlp")(x, deterministic)


class TwoTower(nn.Module):
  """User tower and item tower; `__call__` returns (user_NxD, item_MxD) embeddings."""

  user_fields: tuple[FieldSpec, ...]
  item_fields: tuple[FieldSpec, ...]
  embed_dim: int = 64  # per-field embedding size
  sizes: Sequence[int] = (256, 128, 64)  # MLP sizes of both towers
  dropout: float = 0.0  # dropout rate in both towers

  def setup(self):
    self.user_tower = Tower(self.user_fields, self.embed_dim, self.sizes, self.dropout)
    self.item_tower = Tower(self.item_fields, self.embed_dim, self.sizes, self.dropout)

  def __call__(self, user_feats, item_feats, deterministic: bool = True):
    return self.users(user_feats, deterministic), self.items(item_feats, deterministic)

  def users(self, user_feats, deterministic: bool = True):
    return self.user_tower(user_feats, deterministic)

  def items(self, item_feats, deterministic: bool = True):
    return self.item_tower(item_feats, deterministic)
