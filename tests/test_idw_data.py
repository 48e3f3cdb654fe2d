"""IDW data: sequence builder, fixed sampled negatives, the Appendix A HMM generator."""

import jax
import numpy as np
import pytest

from ltbench import evaluate
from ltbench.data import hmm, registry, sequences
from ltbench.data.sequences import PAD, SequenceConfig, build_sequences, example_inputs
from ltbench.errors import SpecError


def histories(lengths, num_items=200, seed=0):
  """CSR histories whose items are distinct within a user (so positions are identifiable)."""
  rng = np.random.default_rng(seed)
  items = [rng.permutation(num_items)[:n] for n in lengths]
  indptr = np.concatenate([[0], np.cumsum(lengths)])
  return indptr, np.concatenate(items).astype(np.int32)


def test_cut_pads_masks_and_keeps_order():
  indptr, items = histories([65, 4, 2, 30])
  d = build_sequences(indptr, items, 200, SequenceConfig(num_negatives=None))
  # 65 -> 5, 30, 30 counted from the end; 2 is too short; 30 is one full sequence.
  np.testing.assert_array_equal(d.length_S, [5, 30, 30, 4, 30])
  np.testing.assert_array_equal(d.user_S, [0, 0, 0, 1, 3])
  hist0 = items[:65]
  np.testing.assert_array_equal(d.items_SxL[0, :5], hist0[:5])
  np.testing.assert_array_equal(d.items_SxL[2], hist0[35:])
  assert (d.items_SxL[0, 5:] == PAD).all() and (d.items_SxL[3, 4:] == PAD).all()
  # Validation = second last, test = last item of each sequence (the user's last for the
  # newest sequence).
  np.testing.assert_array_equal(d.eval_targets("test")[:3], hist0[[4, 34, 64]])
  np.testing.assert_array_equal(d.eval_targets("valid")[:3], hist0[[3, 33, 63]])
  # Training targets: positions 1 .. length-3 of every sequence.
  want = [(s, p) for s, n in enumerate(d.length_S) for p in range(1, n - 2)]
  assert list(zip(d.train_row_E.tolist(), d.train_pos_E.tolist())) == want
  np.testing.assert_array_equal(
      d.item_counts, np.bincount(d.items_SxL[d.train_row_E, d.train_pos_E], minlength=200))


def test_no_target_leaks_into_its_own_input():
  indptr, items = histories([65, 4, 12])
  d = build_sequences(indptr, items, 200, SequenceConfig(num_negatives=None))
  rows = np.concatenate([d.train_row_E, np.arange(d.num_sequences), np.arange(d.num_sequences)])
  pos = np.concatenate([d.train_pos_E, d.eval_pos("valid"), d.eval_pos("test")])
  inputs, mask = (np.asarray(a) for a in jax.jit(example_inputs)(d.items_SxL, rows, pos))
  assert inputs.shape == mask.shape == (len(rows), 29)
  for b, (r, p) in enumerate(zip(rows, pos)):
    # Exactly the items before the target, right-aligned; PAD exactly where masked.
    np.testing.assert_array_equal(inputs[b][mask[b]], d.items_SxL[r, :p])
    assert (inputs[b][~mask[b]] == PAD).all() and mask[b].sum() == p
    assert d.items_SxL[r, p] not in inputs[b]  # items are distinct within a user
  # The test input holds the validation target, the validation input does not.
  x_test, _ = d.eval_inputs("test")
  x_valid, _ = d.eval_inputs("valid")
  np.testing.assert_array_equal(x_test[:, -1], d.eval_targets("valid"))
  assert not (x_valid == d.eval_targets("valid")[:, None]).any()


def test_sliding_windows_and_step_split():
  indptr, items = histories([42, 10])
  d = build_sequences(indptr, items, 200,
                      SequenceConfig(windows="slide", stride=5, split="step", num_negatives=None))
  # Official windows: starts 0, 5, 10 (while start + 30 < 42), then the last 30 items.
  hist0 = items[:42]
  np.testing.assert_array_equal(d.length_S, [30, 30, 30, 30, 10])
  for s, start in enumerate([0, 5, 10, 12]):
    np.testing.assert_array_equal(d.items_SxL[s], hist0[start:start + 30])
  # "step": one training target per sequence, the third from last.
  np.testing.assert_array_equal(d.train_row_E, [0, 1, 2, 3, 4])
  np.testing.assert_array_equal(d.train_pos_E, d.length_S - 3)
  assert "sliding windows, stride 5" in d.meta["windows"]


def test_negatives_unseen_distinct_fixed_and_ranked_by_evaluate():
  num_items = 150
  indptr, items = histories([40, 50, 8, 3], num_items=num_items, seed=1)
  cfg = SequenceConfig(num_negatives=99, negative_seed=7)
  d = build_sequences(indptr, items, num_items, cfg)
  neg = d.negatives_SxN
  assert neg.shape == (d.num_sequences, 99) and neg.dtype == np.int32
  for s, u in enumerate(d.user_S):
    seen = set(items[indptr[u]:indptr[u + 1]].tolist())
    assert len(set(neg[s].tolist())) == 99 and not seen & set(neg[s].tolist())
  again = build_sequences(indptr, items, num_items, cfg).negatives_SxN
  np.testing.assert_array_equal(neg, again)
  other = build_sequences(indptr, items, num_items, SequenceConfig(negative_seed=8)).negatives_SxN
  assert (neg != other).any()
  # The ranking is evaluate.rank_sampled with ties: a constant scorer ties the target with
  # all 99 negatives, so HR@20 is 20 % exactly.
  user_SxUxD = np.ones((2, d.num_sequences, 4), np.float32)
  item_SxIxD = np.ones((2, num_items, 4), np.float32)
  ranks, ties = evaluate.rank_sampled(user_SxUxD, item_SxIxD, d.eval_targets("test"), neg,
                                      with_ties=True)
  m = evaluate.metrics_from_ranks(ranks, [20], d.slices("test"), ties_SxU=ties)
  np.testing.assert_allclose(m[("overall", "HR@20")], [20.0, 20.0])


def test_save_load_round_trip(tmp_path):
  indptr, items = histories([40, 9], num_items=150)
  d = build_sequences(indptr, items, 150, SequenceConfig())
  d.save(tmp_path / "seq.npz")
  e = sequences.SequenceData.load(tmp_path / "seq.npz")
  for k in ("items_SxL", "length_S", "user_S", "train_row_E", "train_pos_E", "negatives_SxN",
            "item_counts", "head_mask"):
    np.testing.assert_array_equal(getattr(d, k), getattr(e, k))
  assert e.meta == d.meta and e.item_cluster is None


def test_too_few_unseen_items_and_bad_config_are_errors():
  indptr, items = histories([40], num_items=120)
  with pytest.raises(ValueError, match="num_negatives=None"):
    build_sequences(indptr, items, 120, SequenceConfig(num_negatives=99))
  with pytest.raises(ValueError, match="min_len"):
    build_sequences(indptr, items, 120, SequenceConfig(min_len=2))
  with pytest.raises(ValueError, match="windows"):
    build_sequences(indptr, items, 120, SequenceConfig(windows="tumble"))


def test_histories_from_interactions_orders_by_time():
  indptr, items = sequences.histories_from_interactions(
      user_N=[1, 0, 1, 1, 0], item_N=[10, 20, 11, 12, 21], time_N=[5, 2, 3, 5, 1])
  np.testing.assert_array_equal(indptr, [0, 2, 5])
  np.testing.assert_array_equal(items, [21, 20, 11, 10, 12])  # ties keep the input order


def test_transition_matrix_matches_eq12_by_hand():
  p = hmm.transition_matrix([True, False, True, False], alpha=0.6, gamma=0.3, epsilon=0.1)
  np.testing.assert_allclose(p, [[0.60, 0.05, 0.30, 0.05],
                                 [0.45, 0.10, 0.45, 0.00],
                                 [0.30, 0.05, 0.60, 0.05],
                                 [0.45, 0.00, 0.45, 0.10]])
  # |Y| = 1: no other interest to move to, the stay probability is α + γ.
  np.testing.assert_allclose(hmm.transition_matrix([False, True, False], 0.6, 0.3, 0.1),
                             [[0.1, 0.9, 0.0], [0.05, 0.9, 0.05], [0.0, 0.9, 0.1]])
  rng = np.random.default_rng(0)
  y = rng.random((50, 6)) < 0.4
  y[:, 0], y[:, 5] = True, False  # 1 <= |Y| < C
  np.testing.assert_allclose(hmm.transition_matrix(y, 0.5, 0.2, 0.3).sum(-1), 1.0)
  with pytest.raises(ValueError, match="alpha"):
    hmm.transition_matrix([True, False], 0.8, 0.3, 0.1)
  with pytest.raises(ValueError, match="Y_u"):
    hmm.transition_matrix([True, True], 0.6, 0.3, 0.1)


def test_generator_is_deterministic_and_follows_the_hmm():
  cfg = hmm.HMMConfig(num_users=200, seq_len=15)
  a = hmm.generate_histories(cfg)
  b = hmm.generate_histories(cfg)
  c = hmm.generate_histories(hmm.HMMConfig(num_users=200, seq_len=15, seed=1))
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x, y)
  assert (a[0] != c[0]).any()
  items_UxT, clusters_UxT, interests_UxC, item_cluster_I = a
  assert items_UxT.shape == (200, 15) and items_UxT.max() < 50
  np.testing.assert_array_equal(item_cluster_I[items_UxT], clusters_UxT)
  assert (interests_UxC.sum(1) >= 1).all() and (interests_UxC.sum(1) <= 3).all()
  # Eq. 12's zeros: never from one non-interest cluster to another.
  src, dst = clusters_UxT[:, :-1], clusters_UxT[:, 1:]
  outside = ~np.take_along_axis(interests_UxC, src, 1) & ~np.take_along_axis(interests_UxC, dst, 1)
  assert (src[outside] == dst[outside]).all()


def test_interest_skew_rises_with_the_power_law_exponent():
  top_share = []
  for power in (0.0, 1.0, 2.0):
    _, clusters_UxT, _, _ = hmm.generate_histories(
        hmm.HMMConfig(num_users=400, interest_power=power))
    freq = np.bincount(clusters_UxT.ravel(), minlength=5) / clusters_UxT.size
    top_share.append(freq[0])
  assert top_share[0] < 0.3 and top_share[0] < top_share[1] < top_share[2]


def test_idw_synthetic_is_registered_and_builds_sequences():
  d = registry.load_sequences("idw-synthetic", synthetic_config={"num_users": 50})
  assert d.name == "idw-synthetic" and d.num_items == 50 and d.negatives_SxN is None
  np.testing.assert_array_equal(d.length_S, np.full(50, 20))  # T = 20 <= 30: one per user
  np.testing.assert_array_equal(d.item_cluster, np.repeat(np.arange(5), 10))
  assert d.head_mask.sum() == 10
  with pytest.raises(SpecError, match="load_sequences"):
    registry.load_bundle("idw-synthetic")
  with pytest.raises(SpecError, match="bad options"):
    registry.load_sequences("idw-synthetic", synthetic_config={"nope": 1})
