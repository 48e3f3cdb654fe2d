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


@jax.jit
def omega_k_mask(items_N, k, key) -> jax.Array:
  """Boolean [N] form of Ω(k) (MIRec Eq. 8): True for the examples omega_k keeps.

  Fixed shape, so it is jittable and vmappable (e.g. over keys); `k` may be traced. The
  draw is the one omega_k makes: omega_k(items, k, key) == jnp.nonzero(omega_k_mask(...)).
  """
  n = items_N.shape[0]
  # A uniform permutation, then a stable sort by item: examples grouped by item, in a
  # uniformly random order within each item, so each item's first min(count, k) are a
  # uniform draw without replacement.
  perm_N = jax.random.permutation(key, n)
  order_N = perm_N[jnp.argsort(items_N[perm_N], stable=True)]
  item_sorted_N = items_N[order_N]
  pos_N = jnp.arange(n) - jnp.searchsorted(item_sorted_N, item_sorted_N, side="left")
  return jnp.zeros(n, bool).at[order_N].set(pos_N < k)


def omega_k(items, k, key) -> jax.Array:
  """Ω(k) of MIRec (Eq. 8): at most k training examples per item, drawn uniformly.

  Every item with more than k examples (a head item, I_h(k)) keeps k of them, drawn
  uniformly without replacement; every other item keeps all of its examples. So per item
  the kept count is min(count, k). It is Ω_r's construction (omega_r, CDN) with cap = k,
  but over raw item ids and drawn from a permutation, so the draw is exactly uniform (no
  ties between random floats).

  The number kept depends on the data, so omega_k is not jittable: it makes one jitted
  device call (omega_k_mask, the fixed-shape and jittable form of the same draw) and
  takes the nonzero indices on the host.

  Args:
    items: int [N], the item id of each training example (any integer ids, not
      necessarily 0..I-1 or sorted).
    k: int >= 0, the per-item cap (MIRec: the smallest training count among head items).
    key: a JAX PRNG key (typed or raw uint32); the same key gives the same draw.

  Returns:
    The indices into `items` of the kept examples, sorted ascending, unique, as a JAX int
    array of the default integer dtype (int32 unless jax_enable_x64). Its length is
    Σ_i min(count_i, k) (= omega_r_size(counts, k)).

  Example:
    >>> idx = omega_k(jnp.array([7, 7, 7, 2]), 2, jax.random.key(0))
    >>> len(idx)  # two of item 7's three examples and item 2's only one
    3

  References:
    Zhang et al., A Model of Two Tales: Dual Transfer Learning Framework for Improved
    Long-tail Item Recommendation, WWW 2021, §3.2, Eq. 8.
  """
  items_N = jnp.asarray(items)
  if items_N.ndim != 1 or not jnp.issubdtype(items_N.dtype, jnp.integer):
    raise ValueError(f"items must be a 1-D integer array of item ids, got shape "
                     f"{tuple(items_N.shape)} and dtype {items_N.dtype}")
  if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
    raise ValueError(f"k must be an integer >= 0, got {k!r}")
  keep_N = omega_k_mask(items_N, min(int(k), items_N.shape[0]), key)
  # Host-side nonzero: the device one would compile once per output size.
  idx = np.flatnonzero(np.asarray(keep_N))  # Eq. 8
  return jnp.asarray(idx.astype(jax.dtypes.canonicalize_dtype(np.int64)))
