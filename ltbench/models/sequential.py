"""Sequential two-tower model of IDW (Mehta et al., 2023, §3.1 and §4.4), Flax linen.

User tower: the items of the input window, embedded and scaled by √d, a self-attention
encoder (2 layers × 4 heads, d = 16), then parametric attention: M learned queries each
attend over the encoder outputs and give one user vector (M = 1 is SUR, M > 1 is MUR).
Item tower: an item-id embedding (scaled by √d) through two Dense(d) layers. The score of
(user, item) is the largest dot product over the M user vectors (the official code's
max-over-heads, `max_over_m`).

Inputs come from `ltbench.data.sequences.example_inputs`: a right-aligned window of item
ids with PAD (-1) before the history starts and a bool mask. Padded slots never reach a
user vector: their embeddings are zeroed, they are masked as keys in every attention, and
parametric attention gives them weight 0 (a test swaps their ids and compares).
Where the paper is silent the layout follows the official code; see docs/decisions.md,
"IDW (2023): the sequential two-tower".
"""

from __future__ import annotations

import functools
import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from ltbench.models.towers import Dropout


def _masked_value(dtype):
  return jnp.finfo(dtype).min / 2  # finite, so softmax gradients stay finite


def _uniform(scale):
  """U(−scale, scale), the official code's embedding (0.1) and query (0.05) init."""
  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -scale, scale)
  return init


def max_over_m_reference(user_BxMxD, item_CxD):
  """`max_over_m` written as one einsum and `jnp.max` (its autodiff is the reference)."""
  return jnp.max(jnp.einsum("bmd,cd->bmc", user_BxMxD, item_CxD), axis=1)


@jax.custom_vjp
def max_over_m(user_BxMxD, item_CxD):
  """Scores of B users (M vectors each) against C items: max_m u_bm · v_c, [B, C].

  Same values and gradients as `max_over_m_reference` (including jnp.max's rule for ties:
  the gradient is split evenly among the maximising m), computed as M [B, d] @ [d, C]
  products with a running maximum, and a backward pass of 2M masked products. Autodiff of
  the einsum form moves a [B, M, C] tensor through transposes that took ~30 % of an MUR
  training step on a CPU (M = 5, batch 1024)."""
  return _max_over_m_fwd(user_BxMxD, item_CxD)[0]


# Reductions over the M axis are written as chains of elementwise ops over [B, C] slices:
# XLA:CPU fuses those into one loop, where its reduce and broadcast forms (and transposes of
# [B, C] gradients) took tens of ms per step.
def _max_over_m_fwd(user_BxMxD, item_CxD):
  num_m = user_BxMxD.shape[1]
  score = [user_BxMxD[:, m] @ item_CxD.T for m in range(num_m)]
  best_BxC = functools.reduce(jnp.maximum, score)
  if num_m == 1:
    return best_BxC, (user_BxMxD, item_CxD, None)
  return best_BxC, (user_BxMxD, item_CxD, tuple(s_BxC == best_BxC for s_BxC in score))


def _max_over_m_bwd(res, g_BxC):
  user_BxMxD, item_CxD, is_max = res
  num_b, num_m, dim = user_BxMxD.shape
  if is_max is None:  # M = 1: a plain product
    g_NxC, user_NxD = g_BxC, user_BxMxD[:, 0]
  else:
    count_BxC = functools.reduce(jnp.add, (x.astype(g_BxC.dtype) for x in is_max))
    share_BxC = g_BxC / count_BxC
    g_NxC = jnp.concatenate([jnp.where(x, share_BxC, 0) for x in is_max])
    user_NxD = jnp.swapaxes(user_BxMxD, 0, 1).reshape(num_m * num_b, dim)
  d_user_MxBxD = (g_NxC @ item_CxD).reshape(num_m, num_b, dim)
  # Gᵀ U as one product contracting the rows of both, with no transposed copy of G.
  d_item_CxD = jax.lax.dot_general(g_NxC, user_NxD, (((0,), (0,)), ((), ())))
  return jnp.swapaxes(d_user_MxBxD, 0, 1), d_item_CxD


max_over_m.defvjp(_max_over_m_fwd, _max_over_m_bwd)


def sinusoid_positions(length: int, dim: int) -> jnp.ndarray:
  """[length, dim] sine/cosine position codes (Vaswani et al., 2017)."""
  pos_Lx1 = jnp.arange(length, dtype=jnp.float32)[:, None]
  rate_1xH = jnp.exp(-math.log(10000.0) * jnp.arange(0, dim, 2, dtype=jnp.float32) / dim)[None, :]
  angle_LxH = pos_Lx1 * rate_1xH
  return jnp.stack([jnp.sin(angle_LxH), jnp.cos(angle_LxH)], -1).reshape(length, -1)[:, :dim]


class _DenseGeneralParams(nn.Module):
  """The parameters of `nn.DenseGeneral` (same names, shapes, initialisers and PRNG use)
  without its product: `kernel` [*in_shape, *features] drawn by lecun_normal on the
  flattened [prod(in_shape), prod(features)] shape, as DenseGeneral does, and a zero `bias`
  [*features]. SelfAttention does its own products per head."""

  in_shape: tuple[int, ...]
  features: tuple[int, ...]
  use_bias: bool = True

  @nn.compact
  def __call__(self):
    def kernel_init(key, shape, dtype=jnp.float32):
      flat = (math.prod(self.in_shape), math.prod(self.features))
      return nn.initializers.lecun_normal()(key, flat, dtype).reshape(shape)
    kernel = self.param("kernel", kernel_init, (*self.in_shape, *self.features))
    bias = self.param("bias", nn.initializers.zeros, self.features) if self.use_bias else None
    return kernel, bias


class SelfAttention(nn.Module):
  """Multi-head self-attention over a padded window; padded slots are masked as keys.

  Bidirectional: every slot sees the whole input window. That leaks nothing, because the
  window holds only items before the target (`example_inputs`), and it is what the official
  code does (a padding mask, no causal mask).

  The parameters are those of `nn.DenseGeneral` layers query/key/value ([d, H, K]) and out
  ([H, K, d]); the products are written per head on [B·W, ·] matrices and the heads stacked
  as [B, H, W, K], so the batched attention products read head-major operands without the
  [B, W, H, K] <-> [B, H, W, K] transposes that DenseGeneral's layout forces (on XLA:CPU
  those transposes were ~40 % of a layer's gradient). Same function as the DenseGeneral
  form (tests/test_idw_attention.py compares outputs and gradients).
  """

  num_heads: int = 4  # attention heads
  head_dim: int = 16  # key/value size per head (official: the model dim, as keras key_dim)
  dropout: float = 0.0  # dropout on the attention weights

  @nn.compact
  def __call__(self, x_BxWxD, mask_BxW, deterministic: bool = True):
    num_b, width, dim = x_BxWxD.shape[-3:]
    heads = (self.num_heads, self.head_dim)
    x_NxD = x_BxWxD.reshape(-1, dim)

    def project(name, use_bias):  # [B, H, W, K], one [N, d] @ [d, K] product per head
      kernel_DxHxK, bias_HxK = _DenseGeneralParams((dim,), heads, use_bias, name=name)()
      per_head = []
      for h in range(self.num_heads):
        y_NxK = x_NxD @ kernel_DxHxK[:, h]
        if bias_HxK is not None:
          y_NxK = y_NxK + bias_HxK[h][None, :]
        per_head.append(y_NxK.reshape(num_b, width, self.head_dim))
      return jnp.stack(per_head, 1)

    # No key bias: q·(k + b) shifts every logit of a query by q·b, which the softmax cancels;
    # its gradient is 0 up to rounding noise, which Adam would amplify to full-size steps.
    q_BxHxWxK = project("query", True)
    k_BxHxWxK = project("key", False)
    v_BxHxWxK = project("value", True)
    logits_BxHxWxW = jnp.einsum("bhqk,bhwk->bhqw", q_BxHxWxK, k_BxHxWxK) / math.sqrt(self.head_dim)
    keep_Bx1x1xW = mask_BxW[:, None, None, :]
    logits_BxHxWxW = jnp.where(keep_Bx1x1xW, logits_BxHxWxW, _masked_value(logits_BxHxWxW.dtype))
    attn_BxHxWxW = Dropout(self.dropout)(jax.nn.softmax(logits_BxHxWxW, -1), deterministic)
    out_BxHxWxK = jnp.einsum("bhqw,bhwk->bhqk", attn_BxHxWxW, v_BxHxWxK)
    kernel_HxKxD, bias_D = _DenseGeneralParams(heads, (dim,), True, name="out")()
    out_NxD = sum(out_BxHxWxK[:, h].reshape(-1, self.head_dim) @ kernel_HxKxD[h]
                  for h in range(self.num_heads)) + bias_D[None, :]
    return out_NxD.reshape(x_BxWxD.shape)


class ParametricAttention(nn.Module):
  """M learned queries q_m attend over the encoder outputs h (§3.1):
  z_m = Σ_i α_m^(i) h^(i), α_m = softmax_i(s · q_mᵀ h^(i)) over the unpadded slots, with a
  learned scalar s (1 at init; keras Attention(use_scale=True) in the official code)."""

  num_interests: int = 1  # M

  @nn.compact
  def __call__(self, h_BxWxD, mask_BxW):
    dim = h_BxWxD.shape[-1]
    q_MxD = self.param("queries", _uniform(0.05), (self.num_interests, dim))
    scale = self.param("scale", nn.initializers.ones, ())
    logits_BxMxW = scale * jnp.einsum("md,bwd->bmw", q_MxD, h_BxWxD)
    logits_BxMxW = jnp.where(mask_BxW[:, None, :], logits_BxMxW,
                             _masked_value(logits_BxMxW.dtype))
    alpha_BxMxW = jax.nn.softmax(logits_BxMxW, -1)
    return jnp.einsum("bmw,bwd->bmd", alpha_BxMxW, h_BxWxD)


class UserTower(nn.Module):
  """Item embeddings × √d → input projection → [self-attention, ELU, residual] × layers →
  parametric attention; returns [B, M, d]."""

  num_items: int  # catalogue size I
  dim: int = 16  # d (§4.4)
  num_layers: int = 2  # self-attention layers (§4.4)
  num_heads: int = 4  # heads per layer (§4.4)
  num_interests: int = 1  # M
  dropout: float = 0.0  # attention-weight dropout
  positional: bool = False  # add sine position codes (official default: off)

  @nn.compact
  def __call__(self, inputs_BxW, mask_BxW, deterministic: bool = True):
    table = nn.Embed(self.num_items, self.dim, embedding_init=_uniform(0.1), name="item_embed")
    keep_BxWx1 = mask_BxW[..., None].astype(jnp.float32)
    # PAD (-1) would wrap around in a gather; read row 0 and zero it instead.
    x_BxWxD = table(jnp.maximum(inputs_BxW, 0)) * keep_BxWx1 * math.sqrt(self.dim)
    x_BxWxD = nn.Dense(self.dim, name="input_proj")(x_BxWxD)
    if self.positional:
      x_BxWxD = x_BxWxD + sinusoid_positions(x_BxWxD.shape[1], self.dim)[None]
    for n in range(self.num_layers):
      attn = SelfAttention(self.num_heads, self.dim, self.dropout, name=f"attention_{n}")
      x_BxWxD = x_BxWxD + nn.elu(attn(x_BxWxD, mask_BxW, deterministic))
    return ParametricAttention(self.num_interests, name="parametric")(x_BxWxD, mask_BxW)


class ItemTower(nn.Module):
  """Item-id embedding × √d through Dense layers (ELU and dropout between them, the last
  linear); returns [N, sizes[-1]]."""

  num_items: int  # catalogue size I
  dim: int = 16  # embedding size
  sizes: Sequence[int] = (16, 16)  # Dense sizes (§4.4: two layers of 16)
  dropout: float = 0.0  # dropout after each hidden activation

  @nn.compact
  def __call__(self, item_N, deterministic: bool = True):
    table = nn.Embed(self.num_items, self.dim, embedding_init=_uniform(0.1), name="item_embed")
    x_NxD = table(item_N) * math.sqrt(self.dim)
    for n, size in enumerate(self.sizes):
      x_NxD = nn.Dense(size, name=f"dense_{n}")(x_NxD)
      if n < len(self.sizes) - 1:
        x_NxD = Dropout(self.dropout)(nn.elu(x_NxD), deterministic)
    return x_NxD


class SequentialTwoTower(nn.Module):
  """The IDW backbone: `users` gives [B, M, d] user vectors, `items` [N, d] item vectors;
  `__call__` returns both. The towers have their own item embeddings (official default)."""

  num_items: int  # catalogue size I
  dim: int = 16  # d
  num_layers: int = 2  # user-tower self-attention layers
  num_heads: int = 4  # heads per layer
  num_interests: int = 1  # M (1 = SUR)
  item_sizes: Sequence[int] = (16, 16)  # item-tower Dense sizes; the last must equal dim
  dropout: float = 0.0  # dropout in both towers
  positional: bool = False  # position codes in the user tower

  def setup(self):
    if self.item_sizes[-1] != self.dim:
      raise ValueError(f"the item tower's last size must equal dim={self.dim} (dot-product "
                       f"scores), got item_sizes={tuple(self.item_sizes)}")
    if self.num_interests < 1:
      raise ValueError(f"num_interests (M) must be >= 1, got {self.num_interests}")
    self.user_tower = UserTower(self.num_items, self.dim, self.num_layers, self.num_heads,
                                self.num_interests, self.dropout, self.positional)
    self.item_tower = ItemTower(self.num_items, self.dim, tuple(self.item_sizes), self.dropout)

  def __call__(self, inputs_BxW, mask_BxW, item_N, deterministic: bool = True):
    return (self.users(inputs_BxW, mask_BxW, deterministic),
            self.items(item_N, deterministic))

  def users(self, inputs_BxW, mask_BxW, deterministic: bool = True):
    return self.user_tower(inputs_BxW, mask_BxW, deterministic)

  def items(self, item_N, deterministic: bool = True):
    return self.item_tower(item_N, deterministic)
