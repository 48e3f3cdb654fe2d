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


# -- Amazon 2018 files, on fixtures written here ---------------------------------------------

def _reviews(num_users=8, num_items=12, per_user=6, seed=0):
  """(user, item, time) rows: each user reviews per_user distinct items on distinct days."""
  rng = np.random.default_rng(seed)
  rows = []
  for u in range(num_users):
    items = rng.permutation(num_items)[:per_user]
    days = rng.permutation(50)[:per_user]
    rows += [(f"A{u:03d}X", f"B{i:04d}", 1_400_000_000 + 86400 * int(d)) for i, d in zip(items, days)]
  order = rng.permutation(len(rows))  # the file is not in time order
  return [rows[k] for k in order]


def _json_lines(rows) -> str:
  import json
  return "".join(json.dumps({"overall": 5.0, "verified": True, "reviewTime": "01 1, 2015",
                             "reviewerID": u, "asin": i, "reviewText": "fine, \"really\"",
                             "unixReviewTime": t}) + "\n" for u, i, t in rows)


def _histories(d):
  """Each sequence's items, as original-id-free lists per user (single sequence per user)."""
  return [d.items_SxL[s, :d.length_S[s]].tolist() for s in range(d.num_sequences)]


def _expected(rows):
  users = sorted({u for u, _, _ in rows})
  items = sorted({i for _, i, _ in rows})
  out = []
  for u in users:
    mine = sorted((t, k, items.index(i)) for k, (uu, i, t) in enumerate(rows) if uu == u)
    out.append([i for _, _, i in mine])
  return out


@pytest.mark.parametrize("gz", [False, True])
def test_amazon_5core_json_lines(tmp_path, gz):
  import gzip
  rows = _reviews()
  dup = rows[0][:2] + (rows[0][2] + 86400,)  # the same pair again, a day later: dropped
  text = _json_lines(rows + [dup]) + "\n"
  folder = tmp_path / "data" / "amazon-kindle"
  folder.mkdir(parents=True)
  if gz:
    (folder / "Kindle_Store_5.json.gz").write_bytes(gzip.compress(text.encode()))
  else:
    (folder / "Kindle_Store_5.json").write_text(text)
  d = registry.load_sequences("amazon-kindle", data_dir=str(tmp_path / "data"),
                              sequence_config={"num_negatives": 5})
  assert (d.num_users, d.num_items) == (8, 12)
  assert _histories(d) == _expected(rows)  # time order, ties none, duplicate dropped
  assert d.meta["repeated_pairs_dropped"] == 1 and d.meta["format"] == "5-core JSON lines"
  assert d.meta["file"].startswith("Kindle_Store_5.json")
  # Negatives: never an item the user reviewed.
  users = {u: k for k, u in enumerate(sorted({u for u, _, _ in rows}))}
  items = {i: k for k, i in enumerate(sorted({i for _, i, _ in rows}))}
  seen = np.zeros((8, 12), bool)
  for u, i, _ in rows:
    seen[users[u], items[i]] = True
  assert not seen[d.user_S[:, None], d.negatives_SxN].any()


@pytest.mark.parametrize("gz", [False, True])
def test_amazon_ratings_csv_keeps_the_5_core(tmp_path, gz):
  import gzip
  rows = _reviews(num_users=6, num_items=6, per_user=6)  # dense: a 5-core
  extra = [("LONELY", "B0000", 1_500_000_000), ("LONELY", "B0001", 1_500_000_001),
           ("A000X", "RARE", 1_500_000_002)]  # a user with 2 reviews, an item with 1
  text = "".join(f"{i},{u},{r}.0,{t}\n" for (u, i, t), r in zip(rows + extra, range(100)))
  name = "Clothing_Shoes_and_Jewelry.csv" + (".gz" if gz else "")
  (tmp_path / name).write_bytes(gzip.compress(text.encode()) if gz else text.encode())
  d = registry.load_sequences("amazon-clothing", data_dir=str(tmp_path),
                              sequence_config={"num_negatives": None})
  assert (d.num_users, d.num_items) == (6, 6)
  assert _histories(d) == _expected(rows)
  assert d.meta["core"] == 5 and d.meta["core_dropped"] == 3


def test_amazon_bad_or_absent_files_name_the_file(tmp_path, monkeypatch):
  monkeypatch.delenv("LTBENCH_DATA", raising=False)
  with pytest.raises(DataError, match=r"Kindle_Store_5\.json\.gz.*Kindle_Store\.csv"):
    registry.load_sequences("amazon-kindle", data_dir=str(tmp_path))
  with pytest.raises(DataError, match="categoryFilesSmall/Clothing_Shoes_and_Jewelry_5.json.gz"):
    registry.load_sequences("amazon-clothing", data_dir=str(tmp_path))
  (tmp_path / "Kindle_Store_5.json").write_text(_json_lines(_reviews())
                                                + '{"reviewerID": "A1", "asin": "B1"}\n')
  with pytest.raises(DataError, match=r"Kindle_Store_5\.json, line 49: field 'unixReviewTime'"):
    registry.load_sequences("amazon-kindle", data_dir=str(tmp_path))
  (tmp_path / "Kindle_Store_5.json").unlink()
  (tmp_path / "Kindle_Store.csv").write_text("B1,A1,5.0,1400000000\nB2,A1,5.0\n")
  with pytest.raises(DataError, match=r"Kindle_Store\.csv, line 2: expected 4 fields"):
    registry.load_sequences("amazon-kindle", data_dir=str(tmp_path))


# -- stand-ins ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name,ratio,mean_len", [("amazon-kindle-standin", 139769 / 98769, 15),
                                                 ("amazon-clothing-standin", 1219594 / 376438, 9)])
def test_standins_match_table2_and_are_labelled(name, ratio, mean_len):
  d = registry.load_sequences(name)
  got = d.meta["achieved"]
  # IDW Table 2: users / items and the mean history length, within 5 % after the 5-core.
  assert got["users_per_item"] == pytest.approx(ratio, rel=0.05)
  assert got["mean_len"] == pytest.approx(mean_len, rel=0.05)
  assert 0.5 < got["top20_share"] < 0.8  # a long tail, though not a published number
  assert d.num_users == got["users"] <= 6000 and d.num_items == got["items"]
  assert "STAND-IN" in d.summary() and d.meta["standin_for"].startswith("Amazon 2018")
  assert "Table 2" in d.meta["matched"]["from"]
  assert d.meta["mean_history_length"] == pytest.approx(got["mean_len"])
  # Negatives never seen by the user, across all of the user's sequences.
  user_SxL = np.broadcast_to(d.user_S[:, None], d.items_SxL.shape)
  filled = d.items_SxL != sequences.PAD
  seen = _seen_matrix(d, user_SxL[filled], d.items_SxL[filled])
  _assert_negatives_unseen(d, seen)


def test_standin_is_deterministic_and_configurable():
  a = registry.load_sequences("amazon-kindle-standin", synthetic_config={"num_users": 300},
                              sequence_config={"num_negatives": 20})
  b = registry.load_sequences("amazon-kindle-standin", synthetic_config={"num_users": 300},
                              sequence_config={"num_negatives": 20})
  np.testing.assert_array_equal(a.items_SxL, b.items_SxL)
  np.testing.assert_array_equal(a.negatives_SxN, b.negatives_SxN)
  assert a.num_users <= 300 and a.meta["config"]["num_users"] == 300
  with pytest.raises(SpecError, match="bad options"):
    registry.load_sequences("amazon-kindle-standin", synthetic_config={"users": 3})
  with pytest.raises(SpecError, match="num_negatives"):  # 300 users leave too few items
    registry.load_sequences("amazon-kindle-standin", synthetic_config={"num_users": 300})


def test_negatives_are_uniform_over_unseen_items_on_both_paths():
  # 3 seen of 10 items: 2 negatives (rejection path) or 5 (explicit complement path), each
  # unseen item equally likely.
  n = 4000
  indptr = np.arange(n + 1) * 3
  items = np.tile(np.array([0, 4, 7], np.int32), n)
  for k in (2, 5):
    neg = sequences.sample_negatives(indptr, items, np.arange(n), 10, k, seed=3)
    assert not np.isin(neg, [0, 4, 7]).any()
    assert (np.sort(neg, 1)[:, 1:] != np.sort(neg, 1)[:, :-1]).all()
    freq = np.bincount(neg.ravel(), minlength=10)[[1, 2, 3, 5, 6, 8, 9]] / neg.size
    np.testing.assert_allclose(freq, 1 / 7, atol=0.012)
