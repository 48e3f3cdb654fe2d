"""SML's transfer network and MF scorer (Zhang et al., "How to Retrain Recommender
System? A Sequential Meta-Learning Method", SIGIR 2020; slides "Transfer Design").

The transfer f_Θ maps one embedding pair (w_{t−1}, ŵ_t) to w_t (Eq. 3), applied to each
user (or item) embedding on its own, so Θ is shared by every row. Layers, as the official
ConvTransfer_com (zyang1580/SML, model/conv_transfer.py), see docs/decisions.md:

  H⁰ = [w_{t−1}; ŵ_t; w_{t−1} ⊙ ŵ_t / (‖w_{t−1}‖ + ε)]    stack, 3 × d
  H¹ = GELU(conv(H⁰)), n₁ = 10 filters F⁽¹⁾ ∈ R^{n₁×3}      each spans the 3 rows of one
  H² = GELU(conv(H¹)), n₂ = 5 filters F⁽²⁾ ∈ R^{n₂×n₁}      column m, so column-wise
  z  = GELU(W_fᵀ flatten(H²) + b₁), hidden 512
  w_t = W_oᵀ z + b₂

Users and items get separate networks (`SMLTransfer`).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp


def gelu_sigmoid(x):
  """x·σ(1.702x): the GELU approximation of the official code (Hendrycks & Gimpel 2016)."""
  return x * jax.nn.sigmoid(1.702 * x)


GELUS = {"sigmoid": gelu_sigmoid, "tanh": lambda x: jax.nn.gelu(x, approximate=True),
         "exact": lambda x: jax.nn.gelu(x, approximate=False)}


def stack_inputs(w_prev_BxD, w_hat_BxD, eps=1e-8, detach_dot=True):
  """The stack layer H⁰, [B, 3, D].

  eps: the ε of ‖w_{t−1}‖ + ε (the official code has none; without it w_{t−1} = 0 is NaN).
  detach_dot: no gradient flows into ŵ_t through the third row, as in the official code
  (ŵ_t is detached there).
  """
  w_dot_hat = jax.lax.stop_gradient(w_hat_BxD) if detach_dot else w_hat_BxD
  norm_Bx1 = jnp.linalg.norm(w_prev_BxD, axis=-1, keepdims=True)
  w_dot_BxD = w_prev_BxD * w_dot_hat / (norm_Bx1 + eps)
  return jnp.stack([w_prev_BxD, w_hat_BxD, w_dot_BxD], axis=1)


class TransferNet(nn.Module):
  """f_Θ for one side (users or items): (w_{t−1}, ŵ_t) rows → w_t rows."""

  n1: int = 10  # filters of the first convolution (official: 10)
  n2: int = 5  # filters of the second convolution (official: 5)
  hidden: int = 512  # width of the fully connected layer (official: 512)
  gelu: str = "sigmoid"  # GELU form: sigmoid (official), tanh or exact
  eps: float = 1e-8  # ε in ‖w_{t−1}‖ + ε (paper; the official code has none: NaN at 0)
  detach_dot: bool = True  # stop the gradient into ŵ_t through the third row (official)

  @nn.compact
  def __call__(self, w_prev_BxD, w_hat_BxD):
    if w_prev_BxD.shape != w_hat_BxD.shape or w_prev_BxD.ndim != 2:
      raise ValueError(f"w_prev and w_hat must both be [B, D], got {w_prev_BxD.shape} and "
                       f"{w_hat_BxD.shape}")
    if self.gelu not in GELUS:
      raise ValueError(f"gelu must be one of {sorted(GELUS)}, got {self.gelu!r}")
    act = GELUS[self.gelu]
    dim = w_prev_BxD.shape[-1]
    h0_BxDx3 = stack_inputs(w_prev_BxD, w_hat_BxD, self.eps, self.detach_dot).swapaxes(1, 2)
    # A (3, 1) kernel over [3, D] is a dense map of the 3 rows at each column m.
    h1_BxDxN1 = act(nn.Dense(self.n1, name="conv1")(h0_BxDx3))
    h2_BxDxN2 = act(nn.Dense(self.n2, name="conv2")(h1_BxDxN1))
    # Flatten channel-major (H²'s rows one after another), as PyTorch's view does.
    flat_Bx = h2_BxDxN2.swapaxes(1, 2).reshape(h2_BxDxN2.shape[0], self.n2 * dim)
    z_BxH = act(nn.Dense(self.hidden, name="fc")(flat_Bx))
    return nn.Dense(dim, name="out")(z_BxH)


def transfer_param_count(dim: int, n1: int = 10, n2: int = 5, hidden: int = 512) -> int:
  """Weights and biases of one TransferNet on embeddings of width dim."""
  return (3 * n1 + n1) + (n1 * n2 + n2) + (n2 * dim * hidden + hidden) + (hidden * dim + dim)


class SMLTransfer(nn.Module):
  """Separate transfer networks for users and items (slides: Instantiation on MF)."""

  n1: int = 10  # as TransferNet
  n2: int = 5  # as TransferNet
  hidden: int = 512  # as TransferNet
  gelu: str = "sigmoid"  # as TransferNet
  eps: float = 1e-8  # as TransferNet
  detach_dot: bool = True  # as TransferNet

  def setup(self):
    kw = dict(n1=self.n1, n2=self.n2, hidden=self.hidden, gelu=self.gelu, eps=self.eps,
              detach_dot=self.detach_dot)
    self.user = TransferNet(**kw)
    self.item = TransferNet(**kw)

  def __call__(self, user_prev_BxD, user_hat_BxD, item_prev_CxD, item_hat_CxD):
    return self.user(user_prev_BxD, user_hat_BxD), self.item(item_prev_CxD, item_hat_CxD)

  def users(self, user_prev_BxD, user_hat_BxD):
    return self.user(user_prev_BxD, user_hat_BxD)

  def items(self, item_prev_BxD, item_hat_BxD):
    return self.item(item_prev_BxD, item_hat_BxD)


def init_mf(key, num_users: int, num_items: int, dim: int, scale: float = 0.1):
  """MF parameters {"P": [U, D], "Q": [I, D]} drawn from N(0, scale²)."""
  key_p, key_q = jax.random.split(key)
  return {"P": scale * jax.random.normal(key_p, (num_users, dim)),
          "Q": scale * jax.random.normal(key_q, (num_items, dim))}


def mf_score(user_BxD, item_BxD):
  """ŷ_ui = p_uᵀ q_i for aligned rows (slides: Instantiation on MF)."""
  return jnp.sum(user_BxD * item_BxD, axis=-1)


def mf_score_all(user_BxD, items_IxD):
  """ŷ_ui for every item: [B, I]."""
  return user_BxD @ items_IxD.T
