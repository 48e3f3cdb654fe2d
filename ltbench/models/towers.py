"""Feature encoders, MLP towers and the two-tower dot-product model (Flax linen).

A tower maps an entity's feature row to a D-dimensional vector; the score of (user, item)
is the dot product of the two towers' outputs (Yi et al., RecSys 2019).
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from ltbench.data.bundle import FieldSpec


class FeatureEncoder(nn.Module):
  """Concatenates one embedding per categorical field, a masked mean embedding per
  multi-hot field (padding = -1) and the raw value of each continuous field."""

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
        mask_NxL = (x >= 0).astype(jnp.float32)
        emb_NxLxE = nn.Embed(max(f.vocab, 1), self.embed_dim, name=f.name)(jnp.maximum(x, 0))
        total = (emb_NxLxE * mask_NxL[..., None]).sum(-2)
        parts.append(total / jnp.maximum(mask_NxL.sum(-1, keepdims=True), 1.0))
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
        x = nn.Dropout(self.dropout, deterministic=deterministic)(x)
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
