"""Sequence baselines of SML's Table 1 (SIGIR'20): GRU4Rec and Caser, Flax linen.

Both read a right-aligned window of a user's most recent items (PAD = -1 before the
history starts, a bool mask; `ltbench.data.sequences.csr_windows`) and give one user
vector per example; `items` gives the vectors it is scored against by a dot product, so
`ltbench.evaluate.rank_sampled` / `rank_full` rank them like MF's P and Q.

- GRU4Rec (Hidasi et al., ICLR'16): item embedding -> GRU (one layer, hidden = d) -> the
  last hidden state, scored against the same item embeddings (tied, as RecBole's GRU4Rec).
  Padded slots leave the hidden state unchanged (h₀ = 0), so an empty history gives h = 0.
- Caser (Tang & Wang, WSDM'18, §3): the L × d matrix E of the last L item embeddings
  (padded slots zero); n_v vertical filters (L × 1: o_v = weighted sums of E's rows) and,
  for every height h = 1..L, n_h horizontal filters (h × d) with ReLU and max-pooling over
  positions; dropout on the concatenation [o_v; o_h], z = ReLU(W [o_v; o_h] + b); the user
  vector is [z; P_u], scored against the item's output embedding W'_i plus its bias b'_i
  (returned as [z; P_u; 1] and [W'_i; b'_i] so that the score is one dot product).
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from ltbench.models.sequential import _uniform
from ltbench.models.towers import Dropout


class _MaskedGRUStep(nn.Module):
  """One GRU step that keeps the hidden state where the slot is padding."""

  dim: int  # hidden size

  @nn.compact
  def __call__(self, h_BxD, x_and_mask):
    x_BxD, keep_B = x_and_mask
    new_BxD, _ = nn.GRUCell(self.dim, name="cell")(h_BxD, x_BxD)
    return jnp.where(keep_B[:, None], new_BxD, h_BxD), None


class GRU4Rec(nn.Module):
  """Item embedding -> GRU -> last hidden state; items scored by the tied embeddings."""

  num_items: int  # catalogue size I
  dim: int = 64  # embedding size = GRU hidden size
  dropout: float = 0.0  # dropout on the input embeddings (RecBole's emb_dropout)

  def setup(self):
    self.item_embed = nn.Embed(self.num_items, self.dim, embedding_init=_uniform(0.1))
    self.gru = nn.scan(_MaskedGRUStep, variable_broadcast="params",
                       split_rngs={"params": False}, in_axes=1)(self.dim)
    self.drop = Dropout(self.dropout)

  def users(self, inputs_BxW, mask_BxW, user_B, deterministic: bool = True):
    del user_B  # GRU4Rec has no user embedding
    x_BxWxD = self.item_embed(jnp.maximum(inputs_BxW, 0)) * mask_BxW[..., None]
    x_BxWxD = self.drop(x_BxWxD, deterministic)
    h_BxD = jnp.zeros((inputs_BxW.shape[0], self.dim), x_BxWxD.dtype)
    h_BxD, _ = self.gru(h_BxD, (x_BxWxD, mask_BxW))
    return h_BxD

  def items(self, item_N):
    return self.item_embed(item_N)

  def __call__(self, inputs_BxW, mask_BxW, user_B, item_N, deterministic: bool = True):
    return self.users(inputs_BxW, mask_BxW, user_B, deterministic), self.items(item_N)


def _normal(std):
  return nn.initializers.normal(std)


class Caser(nn.Module):
  """Convolutional sequence embedding (Caser); see the module docstring."""

  num_users: int  # U
  num_items: int  # I
  dim: int = 64  # d
  window: int = 5  # L, the last L items (Caser §4.3: L = 5)
  n_v: int = 4  # vertical filters (Caser: 4)
  n_h: int = 16  # horizontal filters per height (Caser: 16)
  dropout: float = 0.5  # on [o_v; o_h] (Caser: 0.5)

  def setup(self):
    d = self.dim
    # Caser's code: embeddings N(0, 1/d), output embeddings N(0, 1/(2d)), bias 0.
    self.item_embed = nn.Embed(self.num_items, d, embedding_init=_normal(1 / math.sqrt(d)))
    self.user_embed = nn.Embed(self.num_users, d, embedding_init=_normal(1 / math.sqrt(d)))
    self.out_embed = nn.Embed(self.num_items, 2 * d,
                              embedding_init=_normal(1 / math.sqrt(2 * d)))
    self.out_bias = nn.Embed(self.num_items, 1, embedding_init=nn.initializers.zeros)
    self.vertical_VxL = self.param("vertical", nn.initializers.lecun_normal(),
                                   (self.n_v, self.window))
    self.horizontal = [nn.Conv(self.n_h, (h,), padding="VALID", name=f"horizontal_{h}")
                       for h in range(1, self.window + 1)]
    self.fc = nn.Dense(d)
    self.drop = Dropout(self.dropout)

  def users(self, inputs_BxL, mask_BxL, user_B, deterministic: bool = True):
    if inputs_BxL.shape[1] != self.window:
      raise ValueError(f"Caser needs windows of L={self.window} items, got "
                       f"{inputs_BxL.shape[1]}")
    e_BxLxD = self.item_embed(jnp.maximum(inputs_BxL, 0)) * mask_BxL[..., None]
    o_v_BxVD = jnp.einsum("bld,vl->bvd", e_BxLxD, self.vertical_VxL).reshape(
        inputs_BxL.shape[0], -1)
    # Each height h: [B, L - h + 1, n_h] conv outputs, ReLU, max over positions.
    o_h = [jnp.max(nn.relu(conv(e_BxLxD)), axis=1) for conv in self.horizontal]
    o_BxO = self.drop(jnp.concatenate([o_v_BxVD] + o_h, -1), deterministic)
    z_BxD = nn.relu(self.fc(o_BxO))
    ones_Bx1 = jnp.ones((inputs_BxL.shape[0], 1), z_BxD.dtype)
    return jnp.concatenate([z_BxD, self.user_embed(user_B), ones_Bx1], -1)

  def items(self, item_N):
    return jnp.concatenate([self.out_embed(item_N), self.out_bias(item_N)], -1)

  def __call__(self, inputs_BxL, mask_BxL, user_B, item_N, deterministic: bool = True):
    return self.users(inputs_BxL, mask_BxL, user_B, deterministic), self.items(item_N)
