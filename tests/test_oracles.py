"""Public check functions named by the paper issues: MIRec's omega_k (#9). Oracles:
hand-worked cases and numpy counts."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ltbench.data.samplers import omega_k, omega_k_mask, omega_r_size

# ---------------------------------------------------------------- MIRec Ω(k), Eq. 8


def _skewed_items(rng, n=400, num_items=30):
  p = 1.0 / np.arange(1, num_items + 1)
  return rng.choice(num_items, size=n, p=p / p.sum()).astype(np.int32)


def test_omega_k_hand_case():
  items = jnp.array([7, 7, 7, 2, -1, 7, 2])  # item 7 four times, 2 twice, -1 once
  idx = np.asarray(omega_k(items, 2, jax.random.key(0)))
  assert idx.dtype == np.int32
  assert len(idx) == 5
  assert set(idx) >= {3, 4, 6}  # items with at most k examples keep all of them
  assert len(set(idx) & {0, 1, 2, 5}) == 2


@pytest.mark.parametrize("k", [0, 1, 3, 10, 1000])
def test_omega_k_per_item_count_is_min_count_k(k):
  items = _skewed_items(np.random.default_rng(k))
  idx = np.asarray(omega_k(items, k, jax.random.key(k)))
  assert np.all(np.diff(idx) > 0)  # sorted ascending, unique
  assert idx.size == 0 or (idx[0] >= 0 and idx[-1] < len(items))
  counts = np.bincount(items, minlength=30)
  np.testing.assert_array_equal(np.bincount(items[idx], minlength=30), np.minimum(counts, k))
  assert len(idx) == omega_r_size(counts, k)


def test_omega_k_deterministic_per_key_and_keys_differ():
  items = _skewed_items(np.random.default_rng(0))
  a = omega_k(items, 3, jax.random.key(1))
  np.testing.assert_array_equal(a, omega_k(items, 3, jax.random.key(1)))
  np.testing.assert_array_equal(a, omega_k(items, 3, jax.random.PRNGKey(1)))  # raw key
  assert not np.array_equal(a, omega_k(items, 3, jax.random.key(2)))


def test_omega_k_is_uniform_within_item():
  # Item 7 has 4 examples (0, 1, 2, 5), k = 2: each of the 6 pairs is drawn with
  # probability 1/6 (1000 keys; the shapes of the hand case, so no new compile).
  items = jnp.array([7, 7, 7, 2, -1, 7, 2])
  keys = jax.random.split(jax.random.key(0), 1000)
  pairs = {}
  for i in range(1000):
    idx = np.flatnonzero(omega_k_mask(items, 2, keys[i]))
    assert {3, 4, 6} <= set(idx) and len(idx) == 5
    pair = tuple(j for j in idx if j in (0, 1, 2, 5))
    pairs[pair] = pairs.get(pair, 0) + 1
  assert len(pairs) == 6
  np.testing.assert_allclose(np.array(list(pairs.values())) / 1000, 1 / 6,
                             atol=4 * np.sqrt(5 / 36 / 1000))


def test_omega_k_mask_is_omega_k():
  items = _skewed_items(np.random.default_rng(3))
  key = jax.random.key(5)
  np.testing.assert_array_equal(np.flatnonzero(omega_k_mask(items, 4, key)),
                                omega_k(items, 4, key))


@pytest.mark.parametrize("items, k, match", [
    (np.array([[0, 1]]), 1, "items"), (np.array([0.0, 1.0]), 1, "items"),
    (np.array([0, 1]), -1, "k"), (np.array([0, 1]), 1.5, "k")])
def test_omega_k_rejects_bad_input(items, k, match):
  with pytest.raises(ValueError, match=match):
    omega_k(items, k, jax.random.key(0))


def test_omega_k_empty_and_zero():
  assert omega_k(np.zeros(0, np.int32), 3, jax.random.key(0)).shape == (0,)
  assert omega_k(np.array([4, 4]), 0, jax.random.key(0)).shape == (0,)
