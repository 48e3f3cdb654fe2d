import numpy as np
import pytest

from ltbench.data.splits import head_mask_from_counts, leave_one_out


def oracle_parts(user, key):
  """Per user: sort by (key, original index); last = test (2), second last = valid (1)."""
  part = np.zeros(len(user), np.int8)
  for u in np.unique(user):
    idx = np.flatnonzero(user == u)
    if len(idx) < 3:
      continue
    order = sorted(idx, key=lambda j: (key[j], j))
    part[order[-1]] = 2
    part[order[-2]] = 1
  return part


def test_leave_one_out_by_timestamp_matches_oracle():
  rng = np.random.default_rng(0)
  user = rng.integers(0, 30, 500)
  ts = rng.integers(0, 50, 500)  # many ties: broken by the original order
  part, _, kind = leave_one_out(user, ts)
  np.testing.assert_array_equal(part, oracle_parts(user, ts))
  assert "timestamp" in kind


def test_leave_one_out_random_is_seeded_and_one_per_user():
  rng = np.random.default_rng(1)
  user = np.sort(rng.integers(0, 40, 600))
  part_a, _, kind = leave_one_out(user, None, split_seed=0)
  part_b, _, _ = leave_one_out(user, None, split_seed=0)
  part_c, _, _ = leave_one_out(user, None, split_seed=1)
  np.testing.assert_array_equal(part_a, part_b)
  assert (part_a != part_c).any()
  assert "random" in kind and "seed 0" in kind
  key = np.random.default_rng(0).permutation(len(user))
  np.testing.assert_array_equal(part_a, oracle_parts(user, key))
  for u in np.unique(user):
    n = (user == u).sum()
    expected = 1 if n >= 3 else 0
    assert (part_a[user == u] == 2).sum() == expected
    assert (part_a[user == u] == 1).sum() == expected


def test_short_histories_stay_in_train():
  user = np.array([0, 0, 1, 1, 1])
  part, _, _ = leave_one_out(user, np.array([5, 1, 3, 2, 1]))
  np.testing.assert_array_equal(part, [0, 0, 2, 1, 0])


def test_head_mask_top_fraction_with_ties_by_id():
  counts = np.array([5, 9, 9, 1, 0, 3, 7, 2, 2, 4])
  mask = head_mask_from_counts(counts, 0.3)
  np.testing.assert_array_equal(np.flatnonzero(mask), [1, 2, 6])
  assert head_mask_from_counts(counts, 0.01).sum() == 1
  with pytest.raises(ValueError, match="head_fraction"):
    head_mask_from_counts(counts, 1.5)
