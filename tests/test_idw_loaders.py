"""IDW sequence loaders: MovieLens from disk, Amazon 2018 files (fixtures), Amazon stand-ins."""

import os
import pathlib

import numpy as np
import pandas as pd
import pytest

from ltbench.data import registry, sequences
from ltbench.errors import DataError, SpecError

REPO = pathlib.Path(__file__).resolve().parents[1]


def _shared_data() -> pathlib.Path | None:
  """The data folder: $LTBENCH_DATA, else ../shared/data beside the clone (as on CI)."""
  for root in (os.environ.get("LTBENCH_DATA"), REPO.parent / "shared" / "data"):
    if root and (pathlib.Path(root) / "ml-100k" / "u.data").is_file():
      return pathlib.Path(root)
  return None


DATA = _shared_data()
needs_ml100k = pytest.mark.skipif(DATA is None, reason="ML-100K not found (../shared/data)")


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
  monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def _seen_matrix(d: sequences.SequenceData, user_N, item_N) -> np.ndarray:
  seen = np.zeros((d.num_users, d.num_items), bool)
  seen[user_N, item_N] = True
  return seen


def _assert_negatives_unseen(d, seen_UxI):
  neg = d.negatives_SxN
  assert neg.shape == (d.num_sequences, 99)
  assert not seen_UxI[d.user_S[:, None], neg].any()
  assert (np.sort(neg, 1)[:, 1:] != np.sort(neg, 1)[:, :-1]).all()  # distinct in a row


@needs_ml100k
def test_ml100k_sequences_follow_time_and_never_leak(tmp_path):
  d = registry.load_sequences("ml-100k", data_dir=str(DATA), download=False)
  assert (d.num_users, d.num_items, d.meta["num_interactions"]) == (943, 1682, 100000)
  raw = pd.read_csv(DATA / "ml-100k" / "u.data", sep="\t", header=None,
                    names=["user", "item", "rating", "time"])
  raw["u"], raw["i"] = raw["user"] - 1, raw["item"] - 1  # ids 1..N, all present
  order = np.lexsort((np.arange(len(raw)), raw["time"].to_numpy(), raw["u"].to_numpy()))
  hist = raw.iloc[order]
  # Each user's sequences, concatenated, are the tail of their time-ordered history whose
  # cut-off head is shorter than min_len; the newest sequence ends with the last item.
  for u in (0, 12, 404, 942):
    items_u = hist["i"].to_numpy()[hist["u"].to_numpy() == u]
    rows = np.flatnonzero(d.user_S == u)
    got = np.concatenate([d.items_SxL[r, :d.length_S[r]] for r in rows])
    np.testing.assert_array_equal(got, items_u[len(items_u) - len(got):])
    assert len(items_u) - len(got) < 3 and d.eval_targets("test")[rows[-1]] == items_u[-1]
  assert d.length_S.max() == 30 and (d.items_SxL[d.length_S[:, None] <= np.arange(30)] == -1).all()
  # Inputs hold exactly the items before the target: no target leaks into its own input.
  rows = np.concatenate([d.train_row_E[::97], np.arange(d.num_sequences)])
  pos = np.concatenate([d.train_pos_E[::97], d.eval_pos("test")])
  inputs, mask = (np.asarray(a) for a in sequences.example_inputs(d.items_SxL, rows, pos))
  for b in range(0, len(rows), 7):
    np.testing.assert_array_equal(inputs[b][mask[b]], d.items_SxL[rows[b], :pos[b]])
    assert mask[b].sum() == pos[b]
  _assert_negatives_unseen(d, _seen_matrix(d, raw["u"], raw["i"]))
  # Cached: a second call reads the .npz, the same arrays and negatives.
  again = registry.load_sequences("ml-100k", data_dir=str(DATA), download=False)
  np.testing.assert_array_equal(again.negatives_SxN, d.negatives_SxN)
  assert list((tmp_path / "cache" / "ltbench" / "sequences").glob("ml-100k-*.npz"))
  # Options reach the builder and the cache key.
  slide = registry.load_sequences("ml-100k", data_dir=str(DATA), download=False,
                                  sequence_config={"windows": "slide", "split": "step"},
                                  head_fraction=0.1)
  assert slide.num_sequences > d.num_sequences and slide.head_mask.sum() == 168


def test_sequence_options_and_names_are_checked():
  with pytest.raises(SpecError, match="ml-1m-u2999-time"):
    registry.load_sequences("ml-1m-u2999-random")
  with pytest.raises(SpecError, match="sequence data sets"):
    registry.load_sequences("synthetic")
  with pytest.raises(SpecError, match="bad sequence_config"):
    registry.load_sequences("idw-synthetic", sequence_config={"max_length": 30})
  with pytest.raises(SpecError, match="generated data sets only"):
    registry.load_sequences("ml-100k", synthetic_config={"num_users": 3})
  assert {"ml-100k", "ml-1m-u2999-time", "amazon-kindle", "amazon-clothing-standin",
          "idw-synthetic"} <= set(registry.sequence_datasets())


def test_ml_sequences_missing_folder_is_a_data_error(tmp_path, monkeypatch):
  monkeypatch.delenv("LTBENCH_DATA", raising=False)
  with pytest.raises(DataError, match="ml-100k was not found"):
    registry.load_sequences("ml-100k", data_dir=str(tmp_path / "nowhere"), download=False)


@needs_ml100k
def test_ml100k_modified_copy_is_refused_unless_allowed(tmp_path):
  copy = tmp_path / "data" / "ml-100k"
  copy.mkdir(parents=True)
  for f in ("u.user", "u.item", "u.genre"):
    (copy / f).write_bytes((DATA / "ml-100k" / f).read_bytes())
  lines = (DATA / "ml-100k" / "u.data").read_bytes().splitlines(keepends=True)
  (copy / "u.data").write_bytes(b"".join(lines[:-1]))  # one rating fewer
  with pytest.raises(DataError, match="u.data: MISMATCH"):
    registry.load_sequences("ml-100k", data_dir=str(tmp_path / "data"), download=False)
  d = registry.load_sequences("ml-100k", data_dir=str(tmp_path / "data"), download=False,
                              allow_modified_data=True)
  assert d.meta["data_modified"] and d.meta["num_interactions"] == 99999


@pytest.mark.skipif(DATA is None or not (DATA / "ml-1m" / registry.PART_RATINGS).is_file(),
                    reason="ML-1M users 1-2999 with timestamps not found")
def test_ml1m_timed_users_only_and_said_so():
  d = registry.load_sequences("ml-1m-u2999-time", data_dir=str(DATA), download=False)
  assert d.num_users == 2999 and d.meta["num_interactions"] == 487650
  assert "users 1-2999 only" in d.summary() and "users 1-2999" in d.meta["subset"]
