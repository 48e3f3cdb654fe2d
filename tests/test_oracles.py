"""Public check functions named by the paper issues: MIRec's omega_k (#9), IDW's kde_density
and update_weights (#10), SSL's correlated_feature_mask (#12). Oracles: hand-worked cases,
numpy counts and scipy.stats.gaussian_kde."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from ltbench.data.samplers import omega_k, omega_k_mask, omega_r_size
from ltbench.methods.idw import kde_density, update_weights
from ltbench.methods.ssl import correlated_feature_mask

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


# ---------------------------------------------------------------- IDW KDE, Eq. 7


def _kde_case(d, n, seed):
  rng = np.random.default_rng(seed)
  mix = np.eye(d) + 0.3 * rng.normal(size=(d, d))  # correlated, well-conditioned
  x = (rng.normal(size=(n, d)) @ mix + 2.0).astype(np.float32)
  q = np.concatenate([x[:15] + 0.1 * rng.normal(size=(15, d)),
                      rng.normal(size=(15, d)) @ mix + 2.0]).astype(np.float32)
  w = rng.uniform(0.1, 3.0, size=n).astype(np.float32)
  return x, q, w


@pytest.mark.parametrize("d, n", [(1, 50), (2, 300), (16, 300)])
@pytest.mark.parametrize("weighted", [False, True])
def test_kde_density_matches_scipy(d, n, weighted):
  x, q, w = _kde_case(d, n, seed=d + n)
  weights = w if weighted else None
  want = stats.gaussian_kde(x.T.astype(np.float64), weights=weights)(q.T.astype(np.float64))
  got = kde_density(x, q, weights)
  assert got.shape == (len(q),) and got.dtype == jnp.float32
  np.testing.assert_allclose(got, want, rtol=1e-4)


def test_kde_density_weights_keyword_and_scale_free():
  x, q, w = _kde_case(2, 300, seed=0)  # the shapes of a scipy case: compiled already
  np.testing.assert_allclose(kde_density(x, q, weights_N=w), kde_density(x, q, 7.0 * w),
                             rtol=1e-5)
  np.testing.assert_allclose(kde_density(x.tolist(), q, list(w)), kde_density(x, q, w), rtol=1e-6)
  # Uniform weights are the unweighted estimate (n_eff = N).
  np.testing.assert_allclose(kde_density(x, q, np.ones(300, np.float32)), kde_density(x, q),
                             rtol=1e-5)


def test_kde_density_chunks_over_queries(monkeypatch):
  from ltbench.methods import idw
  x, q, w = _kde_case(3, 64, seed=1)
  whole = kde_density(x, q, w)
  monkeypatch.setattr(idw, "_CHUNK_PAIRS", 64 * 7)  # 7 queries per chunk, 30 = 4·7 + 2
  chunked = jax.jit(idw._kde_density.__wrapped__)(x, q, w)
  np.testing.assert_allclose(chunked, whole, rtol=1e-6)


@pytest.mark.parametrize("points, queries, weights, match", [
    (np.zeros((5,), np.float32), np.zeros((2, 1), np.float32), None, "points_NxD"),
    (np.zeros((3, 3), np.float32), np.zeros((2, 3), np.float32), None, "points_NxD"),
    (np.zeros((9, 2), np.float32), np.zeros((2, 3), np.float32), None, "queries_MxD"),
    (np.zeros((9, 2), np.float32), np.zeros((2, 2), np.float32), np.ones(8), "weights_N")])
def test_kde_density_rejects_bad_shapes(points, queries, weights, match):
  with pytest.raises(ValueError, match=match):
    kde_density(points, queries, weights)


# ---------------------------------------------------------------- IDW Eqs. 8-9


def test_update_weights_by_hand():
  # Eq. 8: p' = (p - 1) / (5 - 1) = [1, 0.5, 0, 0.25]; h = [0, 0.5, 1, 0.75], Σh = 2.25.
  w = np.array([0.4, 0.3, 0.2, 0.1], np.float32)
  density = np.array([5.0, 3.0, 1.0, 2.0], np.float32)
  target = np.array([0.0, 0.5, 1.0, 0.75]) / 2.25
  np.testing.assert_allclose(update_weights(w, density, 0.8), 0.8 * w + 0.2 * target,
                             rtol=1e-6)  # Eq. 9
  np.testing.assert_allclose(update_weights(w, density, 0.0), target, rtol=1e-6)
  np.testing.assert_array_equal(update_weights(w, density, 1.0), w)
  assert float(update_weights(w, density, 0.8).sum()) == pytest.approx(1.0)


def test_update_weights_scale_free_and_constant_density():
  rng = np.random.default_rng(0)
  w = rng.dirichlet(np.ones(20)).astype(np.float32)
  p = rng.uniform(size=20).astype(np.float32)
  # Eq. 8 is invariant to a positive affine map of the density (Eq. 7's 1/ℓ, KDE norms).
  np.testing.assert_allclose(update_weights(w, p, 0.9), update_weights(w, 3.0 * p + 2.0, 0.9),
                             rtol=1e-5)
  # max = min: p' = 0 everywhere, the target is uniform.
  np.testing.assert_allclose(update_weights(w, np.full(20, 0.3, np.float32), 0.5),
                             0.5 * w + 0.5 / 20, rtol=1e-6)
  np.testing.assert_allclose(update_weights(np.ones(1), np.ones(1), 0.5), [1.0])


def test_update_weights_traced_momentum_and_bad_input():
  w, p = np.array([0.5, 0.5], np.float32), np.array([1.0, 2.0], np.float32)
  np.testing.assert_allclose(jax.jit(update_weights)(w, p, 0.5), [0.75, 0.25])
  with pytest.raises(ValueError, match="momentum"):
    update_weights(w, p, 1.5)
  with pytest.raises(ValueError, match="density"):
    update_weights(w, p[:1], 0.5)
  with pytest.raises(ValueError, match="w must"):
    update_weights(w[None, :], p, 0.5)


# ---------------------------------------------------------------- SSL CFM, §3

_MI = np.array([[9.0, 0.2, 0.5, 0.5, 0.1],
                [0.2, 9.0, 0.3, 0.3, 0.0],
                [0.5, 0.3, 9.0, 0.7, 0.0],
                [0.5, 0.3, 0.7, 9.0, 0.0],
                [0.1, 0.0, 0.0, 0.0, 9.0]], np.float32)


@pytest.mark.parametrize("seed, n, want", [
    (0, 0, [0]),
    (0, 1, [0, 2]),        # 2 and 3 tie at 0.5: the lower index wins
    (0, 2, [0, 2, 3]),
    (0, 3, [0, 1, 2, 3]),
    (2, 1, [2, 3]),        # the diagonal (9.0) never competes
    (4, 1, [0, 4]),
    (4, 2, [0, 1, 4]),     # 1, 2, 3 tie at 0.0
    (4, 4, [0, 1, 2, 3, 4]),
    (4, 99, [0, 1, 2, 3, 4]),  # n >= F - 1: everything
    (4, 10**12, [0, 1, 2, 3, 4]),
])
def test_correlated_feature_mask_by_hand(seed, n, want):
  mask = correlated_feature_mask(_MI, seed, n)
  assert mask.shape == (5,) and mask.dtype == jnp.bool_
  np.testing.assert_array_equal(np.flatnonzero(mask), want)


def test_correlated_feature_mask_matches_sort_and_jits():
  rng = np.random.default_rng(0)
  a = rng.integers(0, 4, size=(12, 12)).astype(np.float32)  # many ties
  mi = a + a.T
  for seed in range(12):
    for n in (0, 3, 7):
      others = [j for j in range(12) if j != seed]
      best = sorted(others, key=lambda j: (-mi[seed, j], j))[:n]
      np.testing.assert_array_equal(np.flatnonzero(correlated_feature_mask(mi, seed, n)),
                                    sorted(best + [seed]))
  jitted = jax.jit(correlated_feature_mask)(mi, jnp.int32(5), jnp.int32(3))
  np.testing.assert_array_equal(jitted, correlated_feature_mask(mi, 5, 3))
  seeds_S = jnp.arange(12)
  per_seed = jax.vmap(correlated_feature_mask, in_axes=(None, 0, None))(mi, seeds_S, 3)
  np.testing.assert_array_equal(per_seed.sum(axis=1), 4)


@pytest.mark.parametrize("mi, seed, n, match", [
    (_MI[0], 0, 1, "mi_FxF"), (_MI[:, :3], 0, 1, "mi_FxF"),
    (np.where(np.eye(5) > 0, np.nan, _MI), 0, 1, "mi_FxF"),
    (_MI, 5, 1, "seed"), (_MI, -1, 1, "seed"), (_MI, 1.0, 1, "seed"),
    (_MI, 0, -1, "n"), (_MI, 0, 2.5, "n"), (_MI, 0, True, "n")])
def test_correlated_feature_mask_rejects_bad_input(mi, seed, n, match):
  with pytest.raises(ValueError, match=match):
    correlated_feature_mask(mi, seed, n)
