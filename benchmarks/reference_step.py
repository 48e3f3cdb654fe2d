"""A minimal pure-JAX two-tower training step, the benchmark's yardstick for framework cost.

Same model, shapes and work as ltbench's Two-tower row: per-field embeddings (64), masked
mean over multi-hot slots, MLP [256, 128, 64] with ReLU and dropout 0.1 after each hidden
layer in both towers, the item tower over the whole catalogue every step, full softmax
cross-entropy, Adam 1e-3, one `lax.scan` per epoch, `vmap` over seeds. Dropout masks come
from the same counter hash as ltbench (`ltbench.models.towers.hash_bits`), so both do the
same arithmetic; only the code around it (Flax modules, method objects, the loop) differs.
Written for speed, with no options: plain dicts of arrays and one function per piece.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ltbench.models.towers import hash_bits

EMBED = 64
SIZES = (256, 128, 64)
DROPOUT = 0.1


def init_tower(key, fields, in_dim):
  keys = iter(jax.random.split(key, len(fields) + len(SIZES)))
  params = {}
  for f in fields:
    k = next(keys)
    if f.kind != "continuous":
      params[f.name] = jax.random.normal(k, (max(f.vocab, 1), EMBED)) * 0.05
  dims = (in_dim,) + SIZES
  for layer in range(len(SIZES)):
    params[f"w{layer}"] = (jax.random.normal(next(keys), (dims[layer], dims[layer + 1]))
                           / np.sqrt(dims[layer]))
    params[f"b{layer}"] = jnp.zeros(dims[layer + 1])
  return params


def input_width(fields):
  return sum(1 if f.kind == "continuous" else EMBED for f in fields)


def encode(params, fields, feats_by_name):
  parts = []
  for f in fields:
    x = feats_by_name[f.name]
    if f.kind == "categorical":
      parts.append(params[f.name][x])
    elif f.kind == "multi_hot":
      mask = (x >= 0).astype(jnp.float32)
      weight = mask / jnp.maximum(mask.sum(-1, keepdims=True), 1.0)
      pooled = 0.0
      for slot in range(x.shape[1]):
        pooled = pooled + params[f.name][jnp.maximum(x[:, slot], 0)] * weight[:, slot, None]
      parts.append(pooled)
    else:
      parts.append(x[:, None].astype(jnp.float32))
  return jnp.concatenate(parts, -1)


def dropout(key, x):
  seed = jax.random.bits(key, (), jnp.uint32)
  keep = hash_bits(seed, x.shape) >= jnp.uint32(int(DROPOUT * 2 ** 32))
  return jnp.where(keep, x * (1.0 / (1.0 - DROPOUT)), 0.0)


def mlp(params, x, key):
  keys = jax.random.split(key, len(SIZES))
  for layer in range(len(SIZES)):
    x = x @ params[f"w{layer}"] + params[f"b{layer}"]
    if layer < len(SIZES) - 1:
      x = dropout(keys[layer], jax.nn.relu(x))
  return x


def build(bundle, data, num_seeds: int, num_steps: int, batch_size: int = 1024):
  """(state_S, epoch(state_S, key_S) -> (state_S, loss_S), keys_S) for `num_seeds` seeds."""
  user_fields, item_fields = bundle.user_features.fields, bundle.item_features.fields
  tx = optax.adam(1e-3)
  num_train = data["train_user"].shape[0]

  def loss_fn(params, users, items, key):
    k_user, k_item = jax.random.split(key)
    user_feats = {k: v[users] for k, v in data["user_features"].items()}
    user_BxD = mlp(params["user"], encode(params["user"], user_fields, user_feats), k_user)
    items_IxD = mlp(params["item"], encode(params["item"], item_fields, data["item_features"]),
                    k_item)
    logits_BxI = user_BxD @ items_IxD.T
    target = jnp.take_along_axis(logits_BxI, items[:, None], 1)[:, 0]
    return (jax.nn.logsumexp(logits_BxI, -1) - target).mean()

  def epoch(state, key):
    k_perm, k_steps = jax.random.split(key)
    batches = jax.random.permutation(k_perm, num_train)[:num_steps * batch_size].reshape(
        num_steps, batch_size)

    def step(state, inputs):
      params, opt = state
      idx, k = inputs
      loss, grads = jax.value_and_grad(loss_fn)(params, data["train_user"][idx],
                                                data["train_item"][idx], k)
      updates, opt = tx.update(grads, opt, params)
      return (optax.apply_updates(params, updates), opt), loss

    state, losses = jax.lax.scan(step, state, (batches, jax.random.split(k_steps, num_steps)))
    return state, losses.mean()

  def init(key):
    k_user, k_item = jax.random.split(key)
    params = {"user": init_tower(k_user, user_fields, input_width(user_fields)),
              "item": init_tower(k_item, item_fields, input_width(item_fields))}
    return params, tx.init(params)

  def sample(key):  # the per-epoch part of `epoch`, timed on its own
    return jax.random.permutation(jax.random.split(key)[0], num_train)

  keys_S = jax.random.split(jax.random.PRNGKey(0), num_seeds)
  return (jax.vmap(init)(keys_S), jax.jit(jax.vmap(epoch), donate_argnums=0),
          jax.jit(jax.vmap(sample)), keys_S)
