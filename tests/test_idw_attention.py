"""SelfAttention of the IDW user tower (models/sequential.py) computes what the DenseGeneral
form it replaced computed: same parameter tree and initial values, same outputs and
gradients (to float32 rounding) on padded windows, same dropout masks."""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ltbench.models.sequential import SelfAttention, _masked_value
from ltbench.models.towers import Dropout


class ReferenceSelfAttention(nn.Module):
  """The DenseGeneral form of SelfAttention before the per-head rewrite, verbatim."""

  num_heads: int = 4
  head_dim: int = 16
  dropout: float = 0.0

  @nn.compact
  def __call__(self, x_BxWxD, mask_BxW, deterministic: bool = True):
    dim = x_BxWxD.shape[-1]
    proj = lambda name, bias: nn.DenseGeneral((self.num_heads, self.head_dim), use_bias=bias,
                                              name=name)
    q_BxWxHxK = proj("query", True)(x_BxWxD)
    k_BxWxHxK = proj("key", False)(x_BxWxD)
    v_BxWxHxK = proj("value", True)(x_BxWxD)
    logits_BxHxWxW = jnp.einsum("bqhk,bwhk->bhqw", q_BxWxHxK, k_BxWxHxK) / math.sqrt(self.head_dim)
    keep_Bx1x1xW = mask_BxW[:, None, None, :]
    logits_BxHxWxW = jnp.where(keep_Bx1x1xW, logits_BxHxWxW, _masked_value(logits_BxHxWxW.dtype))
    attn_BxHxWxW = Dropout(self.dropout)(jax.nn.softmax(logits_BxHxWxW, -1), deterministic)
    out_BxWxHxK = jnp.einsum("bhqw,bwhk->bqhk", attn_BxHxWxW, v_BxWxHxK)
    return nn.DenseGeneral(dim, axis=(-2, -1), name="out")(out_BxWxHxK)


def _inputs(batch=6, width=7, dim=8):
  x_BxWxD = jax.random.normal(jax.random.PRNGKey(1), (batch, width, dim))
  start_B = jnp.array([0, 1, 3, width - 1, 2, width - 2])[:batch]  # right-aligned windows
  mask_BxW = jnp.arange(width)[None, :] >= start_B[:, None]
  return x_BxWxD, mask_BxW


@pytest.mark.parametrize("heads,head_dim", [(4, 16), (2, 3)])
def test_same_params_outputs_and_gradients(heads, head_dim):
  x_BxWxD, mask_BxW = _inputs()
  new, ref = SelfAttention(heads, head_dim), ReferenceSelfAttention(heads, head_dim)
  params = new.init(jax.random.PRNGKey(0), x_BxWxD, mask_BxW)
  ref_params = ref.init(jax.random.PRNGKey(0), x_BxWxD, mask_BxW)
  assert jax.tree.structure(params) == jax.tree.structure(ref_params)
  for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(ref_params)):
    np.testing.assert_array_equal(a, b)
  # Non-zero biases, so that every parameter's gradient is exercised.
  params = jax.tree.map(lambda p: p + 0.1 * jax.random.normal(jax.random.PRNGKey(2), p.shape),
                        params)
  np.testing.assert_allclose(new.apply(params, x_BxWxD, mask_BxW),
                             ref.apply(params, x_BxWxD, mask_BxW), rtol=1e-5, atol=1e-5)
  w_BxWxD = jax.random.normal(jax.random.PRNGKey(3), x_BxWxD.shape)
  loss = lambda m: lambda p, x: jnp.sum(w_BxWxD * jnp.tanh(m.apply(p, x, mask_BxW)))
  grads = jax.grad(loss(new), argnums=(0, 1))(params, x_BxWxD)
  ref_grads = jax.grad(loss(ref), argnums=(0, 1))(params, x_BxWxD)
  for a, b in zip(jax.tree.leaves(grads), jax.tree.leaves(ref_grads)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_same_dropout_and_vmapped_seeds():
  x_BxWxD, mask_BxW = _inputs()
  new, ref = SelfAttention(2, 4, dropout=0.3), ReferenceSelfAttention(2, 4, dropout=0.3)
  params = new.init(jax.random.PRNGKey(0), x_BxWxD, mask_BxW)

  def run(m):
    def one(key):
      return m.apply(params, x_BxWxD, mask_BxW, False, rngs={"dropout": key})
    return jax.jit(jax.vmap(one))(jax.random.split(jax.random.PRNGKey(4), 3))

  out_SxBxWxD = run(new)
  np.testing.assert_allclose(out_SxBxWxD, run(ref), rtol=1e-5, atol=1e-5)
  assert not np.allclose(out_SxBxWxD[0], new.apply(params, x_BxWxD, mask_BxW))  # dropout acts
