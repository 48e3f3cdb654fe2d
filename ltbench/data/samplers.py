"""Training-data samplers over a Bundle's train interactions (pure JAX, jit-able).

Each returns indices into the train interactions. Shapes are static: pool sizes that
depend on the data (e.g. |Ω_r|) are computed on the host once, from the item counts.

Reads from `data` (Bundle.device_arrays()): train_item, item_counts, train_by_item (train
indices sorted by item), item_start (first position of each item in train_by_item).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def batches_from_pool(key, pool, num_steps: int, batch_size: int) -> jax.Array:
  """A permutation of `pool`, repeated as needed to fill [num_steps, batch_size]."""
  total = num_steps * batch_size
  reps = -(-total // pool.shape[0])
  order = jnp.concatenate([jax.random.permutation(k, pool) for k in jax.random.split(key, reps)])
  return order[:total].reshape(num_steps, batch_size)


def class_sampler(key, data, probs_I, num_steps: int, batch_size: int) -> jax.Array:
  """Draws an item from probs_I, then one of its train interactions uniformly.

  Class-balanced sampling (Kang et al., ICLR 2020) is probs ∝ 1 over items with data;
  BBN's reversed sampler (Zhou et al., CVPR 2020) is probs ∝ 1/n_i.
  """
  k_item, k_pick = jax.random.split(key)
  shape = (num_steps, batch_size)
  items = jax.random.choice(k_item, probs_I.shape[0], shape, p=probs_I)
  counts = data["item_counts"][items]
  offset = jnp.floor(jax.random.uniform(k_pick, shape) * counts).astype(jnp.int32)
  return data["train_by_item"][data["item_start"][items] + jnp.minimum(offset, counts - 1)]


def class_balanced_probs(counts_I) -> jax.Array:
  has = (counts_I > 0).astype(jnp.float32)
  return has / has.sum()


def reversed_probs(counts_I) -> jax.Array:
  inv = jnp.where(counts_I > 0, 1.0 / jnp.maximum(counts_I, 1).astype(jnp.float32), 0.0)
  return inv / inv.sum()


def omega_r_cap(counts: np.ndarray, head_mask: np.ndarray) -> int:
  """The count of the most popular tail item: head items are down-sampled to it."""
  tail = counts[~head_mask]
  return int(tail.max()) if tail.size else int(counts.min())


def omega_r_size(counts: np.ndarray, cap: int) -> int:
  return int(np.minimum(counts, cap).sum())


def omega_r(key, data, cap: int, size: int) -> jax.Array:
  """Indices of Ω_r (CDN §3.2): every interaction of items with at most `cap` of them, and a
  uniformly drawn `cap` interactions of every other (head) item. Redrawn per key.

  `size` must be omega_r_size(counts, cap) (static).
  """
  train_item = data["train_item"]
  n = train_item.shape[0]
  r = jax.random.uniform(key, (n,))
  order = jnp.lexsort((r, train_item))  # by item, random within item
  item_sorted = train_item[order]
  pos = jnp.arange(n) - data["item_start"][item_sorted]
  keep = pos < jnp.minimum(data["item_counts"][item_sorted], cap)
  return order[jnp.nonzero(keep, size=size)[0]]
