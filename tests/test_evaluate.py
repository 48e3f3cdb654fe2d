"""Tests for ltbench.evaluate against plain numpy oracles."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ltbench import evaluate

jax.config.update("jax_numpy_rank_promotion", "raise")

_target_rank = jax.jit(evaluate.target_rank)


def _np_target_rank(scores_BxI, target_B, exclude_BxI=None):
  """Loop oracle: items other than the target, not excluded, scored strictly higher."""
  ranks = []
  for b, target in enumerate(target_B):
    count = 0
    for i, score in enumerate(scores_BxI[b]):
      excluded = exclude_BxI is not None and exclude_BxI[b, i]
      if i != target and not excluded and score > scores_BxI[b, target]:
        count += 1
    ranks.append(count)
  return np.array(ranks, np.int32)


def _np_csr(lists):
  lengths = [len(items) for items in lists]
  indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
  indices = np.array([i for items in lists for i in items], np.int32)
  return indptr, indices


def test_target_rank_hand_made_ties_and_exclusion():
  scores_BxI = np.array([[0.5, 0.9, 0.5, 0.1, 0.7],
                         [0.5, 0.9, 0.5, 0.1, 0.7],
                         [3.0, 1.0, 2.0, 2.0, 0.0]], np.float32)
  target_B = np.array([0, 0, 3])
  exclude_BxI = np.zeros((3, 5), bool)
  exclude_BxI[1, 1] = True  # A higher-scored item that is excluded does not count.
  exclude_BxI[2, 3] = True  # Excluding the target itself changes nothing.
  # Row 0: 0.9 and 0.7 beat 0.5; the tie at item 2 does not count.
  np.testing.assert_array_equal(_target_rank(scores_BxI, target_B), [2, 2, 1])
  np.testing.assert_array_equal(_target_rank(scores_BxI, target_B, exclude_BxI), [2, 1, 1])


def test_target_rank_matches_numpy_with_ties():
  rng = np.random.default_rng(0)
  # Small integers make ties frequent.
  scores_BxI = rng.integers(0, 4, size=(16, 12)).astype(np.float32)
  target_B = rng.integers(0, 12, size=16)
  exclude_BxI = rng.random((16, 12)) < 0.3
  got = _target_rank(scores_BxI, target_B, exclude_BxI)
  assert got.dtype == jnp.int32
  np.testing.assert_array_equal(got, _np_target_rank(scores_BxI, target_B, exclude_BxI))
  np.testing.assert_array_equal(_target_rank(scores_BxI, target_B),
                                _np_target_rank(scores_BxI, target_B))


def test_target_rank_vmaps_over_seeds():
  rng = np.random.default_rng(1)
  scores_SxBxI = rng.normal(size=(3, 5, 8)).astype(np.float32)
  target_B = rng.integers(0, 8, size=5)
  got_SxB = jax.jit(jax.vmap(evaluate.target_rank, in_axes=(0, None)))(scores_SxBxI, target_B)
  want_SxB = np.stack([_np_target_rank(s, target_B) for s in scores_SxBxI])
  np.testing.assert_array_equal(got_SxB, want_SxB)


def test_target_rank_nan_target_gets_worst_rank():
  scores_BxI = np.array([[np.nan, 1.0, 2.0, 3.0], [0.0, 1.0, np.nan, 3.0]], np.float32)
  exclude_BxI = np.array([[False, False, True, False], [False] * 4])
  # Row 0: the NaN target loses to every other non-excluded item; row 1: the NaN item and
  # 3.0 both count against the target 1.0.
  np.testing.assert_array_equal(_target_rank(scores_BxI, np.array([0, 1]), exclude_BxI), [2, 2])


def test_target_rank_rejects_bad_shapes():
  with pytest.raises(ValueError, match=r"target must have shape \(2,\), got \(3,\)"):
    evaluate.target_rank(np.zeros((2, 4)), np.zeros(3, np.int32))
  with pytest.raises(ValueError, match=r"exclude must have shape \(2, 4\), got \(2, 3\)"):
    evaluate.target_rank(np.zeros((2, 4)), np.zeros(2, np.int32), np.zeros((2, 3), bool))


def test_hit_ratio_and_ndcg_exact_values():
  k = 5
  rank_R = jnp.array([0, 1, k - 1, k, 100], jnp.int32)
  hr_R = evaluate.hit_ratio(rank_R, k)
  ndcg_R = evaluate.ndcg(rank_R, k)
  assert hr_R.dtype == jnp.float32 and ndcg_R.dtype == jnp.float32
  np.testing.assert_array_equal(hr_R, [1.0, 1.0, 1.0, 0.0, 0.0])
  np.testing.assert_allclose(ndcg_R, [1.0, 1 / math.log2(3), 1 / math.log2(6), 0.0, 0.0],
                             rtol=1e-6)
  with pytest.raises(ValueError, match="k must be a positive integer, got 0"):
    evaluate.hit_ratio(rank_R, 0)


def test_sampled_target_rank_matches_numpy():
  rng = np.random.default_rng(2)
  target_score_B = rng.integers(0, 5, size=10).astype(np.float32)
  negative_scores_BxN = rng.integers(0, 5, size=(10, 7)).astype(np.float32)
  got = jax.jit(evaluate.sampled_target_rank)(target_score_B, negative_scores_BxN)
  want = (negative_scores_BxN > target_score_B[:, None]).sum(axis=1)
  assert got.dtype == jnp.int32
  np.testing.assert_array_equal(got, want)


def test_exclusion_mask_matches_loop():
  lists = [[1, 4], [], [0, 2, 3, 5], [5], [2]]
  indptr, indices = _np_csr(lists)
  rows = np.array([2, 1, 0, 2, 4])
  want = np.zeros((len(rows), 6), bool)
  for r, user in enumerate(rows):
    for item in lists[user]:
      want[r, item] = True
  got = evaluate.exclusion_mask(indptr, indices, rows, 6)
  assert got.dtype == np.bool_
  np.testing.assert_array_equal(got, want)
  assert evaluate.exclusion_mask(indptr, indices, np.array([], np.int64), 6).shape == (0, 6)
  with pytest.raises(ValueError, match=r"rows must lie in \[0, 5\)"):
    evaluate.exclusion_mask(indptr, indices, np.array([5]), 6)
  with pytest.raises(ValueError, match=r"indices must lie in \[0, 5\)"):
    evaluate.exclusion_mask(indptr, indices, rows, 5)


def _full_inputs():
  rng = np.random.default_rng(3)
  # Integer embeddings keep the dot products exact in float32 and make ties common.
  user_SxUxD = rng.integers(-2, 3, size=(2, 7, 4)).astype(np.float32)
  item_SxIxD = rng.integers(-2, 3, size=(2, 11, 4)).astype(np.float32)
  target_U = rng.integers(0, 11, size=7)
  return user_SxUxD, item_SxIxD, target_U


def _np_rank_full(user_SxUxD, item_SxIxD, target_U, exclude_UxI=None):
  return np.stack([
      _np_target_rank(user_UxD @ item_IxD.T, target_U, exclude_UxI)
      for user_UxD, item_IxD in zip(user_SxUxD, item_SxIxD)])


def _exclusion_inputs():
  """Per-user exclusion lists for _full_inputs' 7 examples: CSR form and dense mask."""
  lists = [[0, 1, 2], [], [3, 7, 10], [5]]
  indptr, indices = _np_csr(lists)
  users_U = np.array([0, 2, 1, 3, 2, 0, 3])
  exclude_UxI = np.zeros((7, 11), bool)
  for u, user in enumerate(users_U):
    exclude_UxI[u, lists[user]] = True
  return indptr, indices, users_U, exclude_UxI


@pytest.mark.parametrize("chunk_size", [3, 7, 1024])
def test_rank_full_matches_numpy_with_exclusion(chunk_size):
  user_SxUxD, item_SxIxD, target_U = _full_inputs()
  indptr, indices, users_U, exclude_UxI = _exclusion_inputs()
  got = evaluate.rank_full(user_SxUxD, item_SxIxD, target_U, (indptr, indices, users_U),
                           chunk_size=chunk_size)
  want = _np_rank_full(user_SxUxD, item_SxIxD, target_U, exclude_UxI)
  assert got.dtype == np.int32 and got.shape == (2, 7)
  np.testing.assert_array_equal(got, want)
  # Exclusion must matter on these inputs, or the comparison above proves little.
  assert np.any(want != _np_rank_full(user_SxUxD, item_SxIxD, target_U))


def test_rank_full_without_exclusion():
  user_SxUxD, item_SxIxD, target_U = _full_inputs()
  got = evaluate.rank_full(user_SxUxD, item_SxIxD, target_U, chunk_size=3)
  np.testing.assert_array_equal(got, _np_rank_full(user_SxUxD, item_SxIxD, target_U))


def test_rank_full_rejects_out_of_range_target():
  user_SxUxD, item_SxIxD, target_U = _full_inputs()
  with pytest.raises(ValueError, match=r"target_U must lie in \[0, 11\)"):
    evaluate.rank_full(user_SxUxD, item_SxIxD, target_U + 11)
  with pytest.raises(ValueError, match=r"item_SxIxD must have shape \(2, \?, 4\)"):
    evaluate.rank_full(user_SxUxD, item_SxIxD[:1], target_U)


@pytest.mark.parametrize("chunk_size", [3, 1024])
def test_rank_sampled_matches_numpy(chunk_size):
  user_SxUxD, item_SxIxD, target_U = _full_inputs()
  rng = np.random.default_rng(4)
  negatives_UxN = rng.integers(0, 11, size=(7, 5))
  got = evaluate.rank_sampled(user_SxUxD, item_SxIxD, target_U, negatives_UxN,
                              chunk_size=chunk_size)
  want = np.zeros((2, 7), np.int32)
  for s in range(2):
    for u in range(7):
      target_score = user_SxUxD[s, u] @ item_SxIxD[s, target_U[u]]
      negative_scores_N = item_SxIxD[s, negatives_UxN[u]] @ user_SxUxD[s, u]
      want[s, u] = np.sum(negative_scores_N > target_score)
  assert got.dtype == np.int32 and got.shape == (2, 7)
  np.testing.assert_array_equal(got, want)


def test_metrics_from_ranks_exact_percentages():
  ranks_SxU = np.array([[0, 1, 3, 10],
                        [2, 0, 0, 5]])
  slices = {"overall": np.ones(4, bool),
            "head": np.array([True, True, False, False]),
            "tail": np.array([False, False, True, True]),
            "empty": np.zeros(4, bool)}
  got = evaluate.metrics_from_ranks(ranks_SxU, [1, 3], slices)
  inv_log3 = 1 / math.log2(3)
  want = {
      ("overall", "HR@1"): [25.0, 50.0],
      ("overall", "NDCG@1"): [25.0, 50.0],
      ("overall", "HR@3"): [50.0, 75.0],
      ("overall", "NDCG@3"): [(1 + inv_log3) / 4 * 100, (0.5 + 1 + 1) / 4 * 100],
      ("head", "HR@1"): [50.0, 50.0],
      ("head", "NDCG@1"): [50.0, 50.0],
      ("head", "HR@3"): [100.0, 100.0],
      ("head", "NDCG@3"): [(1 + inv_log3) / 2 * 100, (0.5 + 1) / 2 * 100],
      ("tail", "HR@1"): [0.0, 50.0],
      ("tail", "NDCG@1"): [0.0, 50.0],
      ("tail", "HR@3"): [0.0, 50.0],
      ("tail", "NDCG@3"): [0.0, 50.0],
  }
  metrics = [f"{m}@{k}" for k in (1, 3) for m in ("HR", "NDCG", "Recall", "MAP")]
  assert set(got) == {(s, m) for s in slices for m in metrics}
  for key, value in want.items():
    assert got[key].dtype == np.float64 and got[key].shape == (2,)
    np.testing.assert_allclose(got[key], value, rtol=1e-12, err_msg=str(key))
  for metric in ["HR@1", "NDCG@1", "HR@3", "NDCG@3"]:
    assert got[("empty", metric)].shape == (2,)
    assert np.all(np.isnan(got[("empty", metric)]))


def test_metrics_from_ranks_rejects_non_bool_slice():
  with pytest.raises(ValueError, match="slice 'head' must be a bool mask"):
    evaluate.metrics_from_ranks(np.zeros((1, 3), np.int32), [1], {"head": np.array([0, 2, 1])})


def test_chance_metrics_match_enumerating_every_rank():
  cands = np.array([1, 3, 10, 60, 200])
  slices = {"overall": np.ones(5, bool), "head": np.array([1, 0, 0, 1, 0], bool),
            "none": np.zeros(5, bool)}
  got = evaluate.chance_metrics(cands, (5, 50), slices)
  for k in (5, 50):
    hr = np.array([np.mean([r <= k for r in range(1, c + 1)]) for c in cands])
    ndcg = np.array([np.mean([(r <= k) / np.log2(r + 1) for r in range(1, c + 1)]) for c in cands])
    for name in ("overall", "head"):
      m = slices[name]
      np.testing.assert_allclose(got[(name, f"HR@{k}")], 100 * hr[m].mean(), rtol=1e-12)
      np.testing.assert_allclose(got[(name, f"NDCG@{k}")], 100 * ndcg[m].mean(), rtol=1e-12)
    assert np.isnan(got[("none", f"HR@{k}")])
  with pytest.raises(ValueError, match="num_candidates_U"):
    evaluate.chance_metrics(np.array([0, 4]), (5,), {"overall": np.ones(2, bool)})


def test_tied_count_counts_equal_non_excluded_others():
  scores = jnp.array([[1.0, 2.0, 1.0, 1.0, jnp.nan]])
  exclude = jnp.array([[False, False, False, True, False]])
  np.testing.assert_array_equal(evaluate.tied_count(scores, jnp.array([0])), [2])
  np.testing.assert_array_equal(evaluate.tied_count(scores, jnp.array([0]), exclude), [1])
  np.testing.assert_array_equal(evaluate.tied_count(scores, jnp.array([4])), [0])


def test_ties_are_broken_at_random_in_expectation():
  # Target at rank 0 tied with one other item: position 0 or 1 with probability 1/2 each.
  m = evaluate.metrics_from_ranks(np.array([[0]]), [1, 2], {"all": np.array([True])},
                                  ties_SxU=np.array([[1]]))
  assert m[("all", "HR@1")][0] == pytest.approx(50.0)
  assert m[("all", "NDCG@1")][0] == pytest.approx(50.0)
  assert m[("all", "HR@2")][0] == pytest.approx(100.0)
  assert m[("all", "NDCG@2")][0] == pytest.approx(50.0 * (1.0 + 1.0 / np.log2(3.0)))
  # Without ties the metrics are unchanged.
  ranks = np.array([[0, 3, 7]])
  slices = {"all": np.ones(3, bool)}
  tied = evaluate.metrics_from_ranks(ranks, [5], slices, np.zeros_like(ranks))
  plain = evaluate.metrics_from_ranks(ranks, [5], slices)
  for key, value in plain.items():
    np.testing.assert_allclose(tied[key], value, rtol=1e-12)


def test_a_model_scoring_every_item_alike_gets_the_chance_level():
  num_items, k = 40, 5
  user_SxUxD = np.zeros((1, 6, 4), np.float32)
  item_SxIxD = np.ones((1, num_items, 4), np.float32)
  target_U = np.arange(6)
  ranks, ties = evaluate.rank_full(user_SxUxD, item_SxIxD, target_U, with_ties=True)
  np.testing.assert_array_equal(ranks, 0)  # "strictly higher": nothing beats the target
  slices = {"all": np.ones(6, bool)}
  got = evaluate.metrics_from_ranks(ranks, [k], slices, ties)
  want = evaluate.chance_metrics(np.full(6, num_items), [k], slices)
  assert got[("all", "HR@5")][0] == pytest.approx(want[("all", "HR@5")])
  assert got[("all", "NDCG@5")][0] == pytest.approx(want[("all", "NDCG@5")])


@pytest.mark.parametrize("chunk_size", [3, 1024])
def test_rank_full_ranks_and_ties_match_target_rank_and_tied_count(chunk_size):
  # rank_full counts both in one fused reduction: it must agree with the public
  # per-example functions, ties, NaN scores and exclusions included.
  user_SxUxD, item_SxIxD, target_U = _full_inputs()
  item_SxIxD[1, 4] = np.nan  # a NaN item: beats every target of model 1, ties none
  user_SxUxD[0, 2] = np.nan  # a NaN user: every score NaN, its target ranks last
  indptr, indices, users_U, exclude_UxI = _exclusion_inputs()
  ranks, ties = evaluate.rank_full(user_SxUxD, item_SxIxD, target_U,
                                   (indptr, indices, users_U), chunk_size=chunk_size,
                                   with_ties=True)
  scores_SxUxI = np.einsum("sud,sid->sui", user_SxUxD, item_SxIxD)
  for s in range(2):
    np.testing.assert_array_equal(
        ranks[s], evaluate.target_rank(scores_SxUxI[s], target_U, exclude_UxI))
    np.testing.assert_array_equal(
        ties[s], evaluate.tied_count(scores_SxUxI[s], target_U, exclude_UxI))
  assert ties.sum() > 0 and ranks[0, 2] == 10 - exclude_UxI[2].sum() + exclude_UxI[2, target_U[2]]
