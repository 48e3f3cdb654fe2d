"""Leave-one-out splits and head/tail slices.

Protocol (DESIGN.md §4): per user, the last interaction is the test target and the
second last the validation target, ordered by timestamp when timestamps exist and by a
seeded random draw (fixed split seed, independent of trial seeds) when they don't. Users
with fewer than 3 interactions keep everything in train.
"""

from __future__ import annotations

import numpy as np


def leave_one_out(user: np.ndarray, timestamp: np.ndarray | None, split_seed: int = 0
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
  """Assigns each interaction to train (0), validation (1) or test (2).

  Args:
    user: int [N] user of each interaction.
    timestamp: int [N] or None. With timestamps, ties are broken by the original order.
    split_seed: seed of the random order used when timestamp is None.

  Returns:
    (part [N] int8, order [N] the within-user order used, split kind string).
  """
  n = user.shape[0]
  if timestamp is not None:
    kind = "leave-one-out by timestamp"
    key = timestamp
  else:
    kind = f"leave-one-out random (split seed {split_seed})"
    key = np.random.default_rng(split_seed).permutation(n)
  order = np.lexsort((np.arange(n), key, user))  # by user, then time (or random key)
  sorted_user = user[order]
  # position from the end within each user's run
  run_end = np.r_[sorted_user[1:] != sorted_user[:-1], True]
  end_idx = np.flatnonzero(run_end)
  run_id = np.cumsum(np.r_[0, run_end[:-1]])
  from_end = end_idx[run_id] - np.arange(n)
  run_len = np.diff(np.r_[-1, end_idx])[run_id]
  part_sorted = np.zeros(n, np.int8)
  eligible = run_len >= 3
  part_sorted[eligible & (from_end == 0)] = 2
  part_sorted[eligible & (from_end == 1)] = 1
  part = np.empty(n, np.int8)
  part[order] = part_sorted
  return part, order, kind


def head_mask_from_counts(counts: np.ndarray, head_fraction: float) -> np.ndarray:
  """Head = the top `head_fraction` of items by training frequency (ties by item id).

  The number of head items is round(head_fraction * I), at least 1.
  """
  if not 0.0 < head_fraction < 1.0:
    raise ValueError(f"head_fraction must be in (0, 1), got {head_fraction}")
  num_items = counts.shape[0]
  num_head = max(1, int(round(head_fraction * num_items)))
  order = np.lexsort((np.arange(num_items), -counts))
  mask = np.zeros(num_items, bool)
  mask[order[:num_head]] = True
  return mask
