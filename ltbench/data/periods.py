"""Period streams for retraining studies (SML, SIGIR'20): D_0 … D_T cut by time.

A `PeriodStream` holds the training interactions of every period, in time order, and the
test rows of the tested periods. The model of period t is trained on D_t (and, per method,
earlier data) and tested on the rows of period t + 1. Two evaluation protocols, as in
`ltbench.evaluate`:

- sampled (the official code's): each test row is (user, positive, K negatives), the
  negatives drawn once with a fixed seed, independent of the trial seed. Rank with
  `rank_sampled(..., with_ties=True)`.
- full ranking (`num_negatives=None`): the positive against the whole catalogue, the
  user's items of periods ≤ t excluded (`full_exclusion(t)`); rank with
  `rank_full(..., exclude=..., with_ties=True)`.

Sources:
- `build_stream`: any timestamped (user, item, time) interactions. The stand-ins here are
  `ml100k_stream` (ML-100K) and `ml1m_u2999_stream` (ML-1M users 1–2999), standing in for
  Yelp and Adressa, which are not available (docs/decisions.md: period length).
- `load_official`: the official release format (zyang1580/SML, data/dataset2.py):
  `information.npy` = [interactions, users, items]; `train/<p>.npy` int [n, 2] (user,
  item); `test/<p>.npy` int [n, 2 + K] (user, positive, K negatives).

Period layout: interactions of period t are rows period_start_P1[t]:period_start_P1[t+1]
of (user_N, item_N, time_N). Test rows of period t are rows
test_start_P1[t]:test_start_P1[t+1] of (test_user_M, test_item_M, negatives_MxK); an
untested period has none.
"""

from __future__ import annotations

import dataclasses
import pathlib
import re
from typing import Any, Literal

import numpy as np

from ltbench.errors import DataError

# The official code's protocol (issue #1 of zyang1580/SML): 1 positive + 999 negatives.
OFFICIAL_NUM_NEGATIVES = 999
# (first period of online training, first tested period) in the official entry points:
# main_yelp.py: 40 periods, online from 10, tested 30..39; main_news.py (Adressa): 63
# periods, online from 21, tested 48..62.
OFFICIAL_SCHEDULE = {"yelp": (10, 30), "adressa": (21, 48)}


@dataclasses.dataclass(frozen=True)
class PeriodConfig:
  num_periods: int = 20  # P = T + 1 periods D_0 .. D_T
  cut: Literal["count", "time"] = "count"  # count: equal interactions; time: equal duration
  first_online: float = 0.25  # first online-training period, as a fraction of P (Yelp 10/40)
  first_test: float = 0.75  # first tested period, as a fraction of P (Yelp 30/40)
  num_negatives: int | None = OFFICIAL_NUM_NEGATIVES  # per test row; None = full ranking
  negative_seed: int = 0  # seed of the sampled negatives (per data set, not per trial)
  negative_pool: Literal["seen", "all"] = "seen"  # seen: items that appeared by period t
  test_users: Literal["all", "returning"] = "all"  # returning: users seen before period t


@dataclasses.dataclass
class PeriodStream:
  """Interactions cut into periods, with the test rows of the tested periods (host arrays)."""

  name: str
  num_users: int
  num_items: int
  user_N: np.ndarray  # int32 [N], training interactions in time order
  item_N: np.ndarray  # int32 [N]
  time_N: np.ndarray  # int64 [N], timestamp (or period index when the source has none)
  period_start_P1: np.ndarray  # int64 [P + 1]
  first_online: int  # first period of online training (earlier periods: pre-training)
  first_test: int  # first tested period; tested periods run to the last
  test_user_M: np.ndarray  # int32 [M], rows of the tested periods, in period order
  test_item_M: np.ndarray  # int32 [M], the positive of each row
  test_start_P1: np.ndarray  # int64 [P + 1], test rows of each period
  negatives_MxK: np.ndarray | None  # int32 [M, K], or None for full ranking
  meta: dict[str, Any]

  @property
  def num_periods(self) -> int:
    return int(self.period_start_P1.shape[0] - 1)

  @property
  def test_periods(self) -> range:
    return range(self.first_test, self.num_periods)

  def period_of_N(self) -> np.ndarray:
    """int32 [N]: the period of each training interaction."""
    return np.repeat(np.arange(self.num_periods, dtype=np.int32), np.diff(self.period_start_P1))

  def period(self, t: int) -> tuple[np.ndarray, np.ndarray]:
    """(user, item) of D_t."""
    a, b = self._bounds(self.period_start_P1, t)
    return self.user_N[a:b], self.item_N[a:b]

  def upto(self, t: int) -> tuple[np.ndarray, np.ndarray]:
    """(user, item) of D_0 ∪ … ∪ D_t (full retraining)."""
    _, b = self._bounds(self.period_start_P1, t)
    return self.user_N[:b], self.item_N[:b]

  def test_rows(self, t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(user_M, positive_M, negatives_MxK or None) of tested period t."""
    if t not in self.test_periods:
      raise ValueError(f"period {t} is not tested; tested periods: {self.first_test}.."
                       f"{self.num_periods - 1}")
    a, b = self._bounds(self.test_start_P1, t)
    negatives = None if self.negatives_MxK is None else self.negatives_MxK[a:b]
    return self.test_user_M[a:b], self.test_item_M[a:b], negatives

  def full_exclusion(self, t: int) -> tuple[np.ndarray, np.ndarray]:
    """CSR (indptr, indices) of each user's items in periods ≤ t, for full ranking of the
    test rows of period t (the target is among them; `target_rank` never counts it)."""
    _, b = self._bounds(self.period_start_P1, t)
    a_test, b_test = self._bounds(self.test_start_P1, t)
    users = np.concatenate([self.user_N[:b], self.test_user_M[a_test:b_test]])
    items = np.concatenate([self.item_N[:b], self.test_item_M[a_test:b_test]])
    pairs = np.unique(users.astype(np.int64) * self.num_items + items)
    users, items = pairs // self.num_items, pairs % self.num_items
    indptr = np.concatenate([[0], np.cumsum(np.bincount(users, minlength=self.num_users))])
    return indptr.astype(np.int64), items.astype(np.int32)

  def _bounds(self, start_P1, t):
    if not 0 <= t < self.num_periods:
      raise ValueError(f"period {t} is outside 0..{self.num_periods - 1}")
    return int(start_P1[t]), int(start_P1[t + 1])

  def period_sizes(self) -> np.ndarray:
    return np.diff(self.period_start_P1)

  def summary(self) -> str:
    sizes = self.period_sizes()
    protocol = ("full ranking" if self.negatives_MxK is None
                else f"{self.negatives_MxK.shape[1]} sampled negatives")
    return (f"{self.name}: {self.num_users} users, {self.num_items} items, "
            f"{self.user_N.shape[0]} interactions in {self.num_periods} periods "
            f"(min {sizes.min()}, median {int(np.median(sizes))}, max {sizes.max()}), "
            f"online from {self.first_online}, tested {self.first_test}.."
            f"{self.num_periods - 1} ({self.test_user_M.shape[0]} rows, {protocol})")


def _check_config(cfg: PeriodConfig) -> None:
  if cfg.num_periods < 2:
    raise ValueError(f"num_periods must be >= 2 (train on one, test on the next), got "
                     f"{cfg.num_periods}")
  if cfg.cut not in ("count", "time"):
    raise ValueError(f"cut must be 'count' or 'time', got {cfg.cut!r}")
  if not 0 <= cfg.first_online <= cfg.first_test <= 1:
    raise ValueError(f"need 0 <= first_online <= first_test <= 1, got {cfg.first_online}, "
                     f"{cfg.first_test}")
  if cfg.num_negatives is not None and cfg.num_negatives < 1:
    raise ValueError(f"num_negatives must be >= 1 or None, got {cfg.num_negatives}")
  if cfg.test_users not in ("all", "returning"):
    raise ValueError(f"test_users must be 'all' or 'returning', got {cfg.test_users!r}")
  if cfg.negative_pool not in ("seen", "all"):
    raise ValueError(f"negative_pool must be 'seen' or 'all', got {cfg.negative_pool!r}")


def period_boundaries(time_N: np.ndarray, num_periods: int, cut: str) -> np.ndarray:
  """int64 [P + 1] row boundaries of sorted timestamps cut into `num_periods` periods.

  count: about N / P interactions each; time: equal spans of time. A boundary never splits
  one timestamp, so every interaction of a period is strictly later than every interaction
  of the periods before it (with count, periods differ in size by the ties at their edges).
  """
  time_N = np.asarray(time_N)
  n = time_N.shape[0]
  if np.any(np.diff(time_N) < 0):
    raise ValueError("time_N must be sorted")
  if cut == "count":
    targets = np.round(np.arange(1, num_periods) * n / num_periods).astype(np.int64)
    # Move each boundary to the first row of its timestamp.
    inner = np.searchsorted(time_N, time_N[np.minimum(targets, n - 1)], side="left")
  else:
    edges = np.linspace(time_N[0], time_N[-1], num_periods + 1)[1:-1]
    inner = np.searchsorted(time_N, edges, side="right")
  bounds = np.concatenate([[0], inner, [n]]).astype(np.int64)
  sizes = np.diff(bounds)
  if np.any(sizes == 0):
    raise ValueError(f"cutting {n} interactions into {num_periods} periods by {cut} leaves "
                     f"period(s) {np.flatnonzero(sizes == 0).tolist()} empty; use fewer periods"
                     + (" or cut='count'" if cut == "time" else ""))
  return bounds


def sample_negatives(user_N, item_N, period_start_P1, test_start_P1, test_user_M,
                     test_item_M, num_items, num_negatives, seed, pool="seen",
                     chunk_size=2048):
  """K distinct negatives per test row, never an item its user has in periods ≤ t.

  Row m of tested period t gets a uniform K-subset of the pool minus the user's items of
  D_0 … D_t (all of them, so also the user's other positives of period t; the official code
  only excludes the user's items up to that interaction). pool="seen": items that appeared
  in D_0 … D_t (the official code's catalogue-so-far); "all": the whole catalogue. Drawn
  from one `numpy.random.default_rng(seed)` in row order: same inputs, same array.

  Returns:
    int32 [M, K]. Raises ValueError naming the user and period when the pool is too small.
  """
  rng = np.random.default_rng(seed)
  num_periods = len(period_start_P1) - 1
  num_users = int(max(user_N.max(initial=-1), test_user_M.max(initial=-1))) + 1
  out = np.empty((test_user_M.shape[0], num_negatives), np.int32)
  seen_UxI = np.zeros((num_users, num_items), bool)
  in_pool_I = np.zeros(num_items, bool) if pool == "seen" else np.ones(num_items, bool)
  for t in range(num_periods):
    a, b = period_start_P1[t], period_start_P1[t + 1]
    seen_UxI[user_N[a:b], item_N[a:b]] = True
    in_pool_I[item_N[a:b]] = True
    ta, tb = test_start_P1[t], test_start_P1[t + 1]
    if ta == tb:
      continue
    users, positives = test_user_M[ta:tb], test_item_M[ta:tb]
    seen_UxI[users, positives] = True
    in_pool_I[positives] = True
    for start in range(0, tb - ta, chunk_size):
      u_C = users[start:start + chunk_size]
      allowed_CxI = ~seen_UxI[u_C] & in_pool_I[None, :]
      available_C = allowed_CxI.sum(1)
      short = np.flatnonzero(available_C < num_negatives)
      if short.size:
        u = int(u_C[short[0]])
        raise ValueError(
            f"user {u} in period {t} has only {int(available_C[short[0]])} items they never "
            f"interacted with (pool {pool!r}), fewer than num_negatives={num_negatives}; use "
            f"fewer negatives or full ranking (num_negatives=None)")
      # The K smallest of iid uniforms over the allowed items: a uniform K-subset.
      keys_CxI = np.where(allowed_CxI, rng.random(allowed_CxI.shape), np.inf)
      out[ta + start:ta + start + len(u_C)] = np.argpartition(
          keys_CxI, num_negatives - 1, axis=1)[:, :num_negatives]
  return out


def _test_layout(period_start_P1, first_test):
  """Test rows of built streams: the interactions of the tested periods themselves.

  Returns:
    (rows int64 [M] into the interactions, test_start_P1 int64 [P + 1]).
  """
  num_periods = len(period_start_P1) - 1
  sizes = [int(period_start_P1[t + 1] - period_start_P1[t]) if t >= first_test else 0
           for t in range(num_periods)]
  rows = np.arange(period_start_P1[first_test], period_start_P1[-1])
  return rows, np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)


def returning_rows(user_N, period_start_P1, test_user_M, test_start_P1) -> np.ndarray:
  """bool [M]: whether the user of each test row of period t has a training interaction
  in D_0 … D_{t−1} (some earlier period), i.e. a user the model tested on period t has
  seen. Rows of a user whose first interaction is in period t are False."""
  num_periods = len(period_start_P1) - 1
  num_users = int(max(np.max(user_N, initial=-1), np.max(test_user_M, initial=-1))) + 1
  seen_U = np.zeros(num_users, bool)
  keep_M = np.zeros(test_user_M.shape[0], bool)
  for t in range(num_periods):
    a, b = test_start_P1[t], test_start_P1[t + 1]
    keep_M[a:b] = seen_U[test_user_M[a:b]]
    seen_U[user_N[period_start_P1[t]:period_start_P1[t + 1]]] = True
  return keep_M


def returning_users(stream: PeriodStream) -> PeriodStream:
  """The stream with only the test rows of returning users (`returning_rows`); every kept
  row keeps its positive and negatives, so this variant ranks a subset of the rows of the
  test_users="all" one. meta records test_users and the rows kept per tested period."""
  keep_M = returning_rows(stream.user_N, stream.period_start_P1, stream.test_user_M,
                          stream.test_start_P1)
  if not keep_M.any():
    raise ValueError(f"{stream.name}: no test row of the tested periods {stream.first_test}.."
                     f"{stream.num_periods - 1} comes from a user seen in an earlier period "
                     f"(test_users='returning'); use test_users='all'")
  starts = stream.test_start_P1
  kept_P = np.array([keep_M[starts[t]:starts[t + 1]].sum() for t in range(len(starts) - 1)],
                    np.int64)
  negatives = None if stream.negatives_MxK is None else stream.negatives_MxK[keep_M]
  per = {t: int(kept_P[t]) for t in stream.test_periods}
  protocol = (f"{stream.meta.get('protocol')}; test users: returning only (seen in an "
              f"earlier period), {int(keep_M.sum())} of {keep_M.size} rows")
  return dataclasses.replace(
      stream, test_user_M=stream.test_user_M[keep_M], test_item_M=stream.test_item_M[keep_M],
      test_start_P1=np.concatenate([[0], np.cumsum(kept_P)]).astype(np.int64),
      negatives_MxK=negatives,
      meta={**stream.meta, "test_users": "returning", "protocol": protocol,
            "returning_rows_per_period": per, "rows_before_filter": int(keep_M.size)})


def build_stream(user_N, item_N, time_N, num_users: int, num_items: int,
                 cfg: PeriodConfig = PeriodConfig(), name: str = "periods",
                 meta: dict | None = None) -> PeriodStream:
  """Orders interactions by time (ties keep the input order) and cuts them into periods.

  The test rows of a tested period t are its own interactions (user, positive), with
  sampled negatives (`sample_negatives`) or none for full ranking. test_users="returning"
  keeps only the rows of users with an interaction before period t (`returning_users`,
  after the negatives are drawn for every row, so a kept row's negatives are those of the
  "all" variant): a MovieLens user rates
  most films on one day, so most rows of a period come from users no earlier model has seen
  (docs/decisions.md has the counts).
  """
  _check_config(cfg)
  user_N, item_N, time_N = (np.asarray(a) for a in (user_N, item_N, time_N))
  if not user_N.shape == item_N.shape == time_N.shape or user_N.ndim != 1:
    raise ValueError(f"user_N, item_N and time_N must be 1-D of one length, got "
                     f"{user_N.shape}, {item_N.shape}, {time_N.shape}")
  if user_N.size == 0:
    raise ValueError("no interactions")
  for what, ids, n in (("user", user_N, num_users), ("item", item_N, num_items)):
    if ids.min() < 0 or ids.max() >= n:
      raise ValueError(f"{what} ids must lie in [0, {n}), got [{ids.min()}, {ids.max()}]")
  order = np.argsort(time_N, kind="stable")
  user_N = user_N[order].astype(np.int32)
  item_N = item_N[order].astype(np.int32)
  time_N = time_N[order].astype(np.int64)
  bounds = period_boundaries(time_N, cfg.num_periods, cfg.cut)
  P = cfg.num_periods
  first_online = int(round(cfg.first_online * P))
  # At least one tested period, and never period 0 (no earlier model to test).
  first_test = min(max(int(round(cfg.first_test * P)), 1), P - 1)
  first_online = min(first_online, first_test)
  rows, test_start = _test_layout(bounds, first_test)
  test_user, test_item = user_N[rows], item_N[rows]
  negatives = None
  if cfg.num_negatives is not None:
    negatives = sample_negatives(user_N, item_N, bounds, test_start, test_user, test_item,
                                 num_items, cfg.num_negatives, cfg.negative_seed,
                                 cfg.negative_pool)
  meta = {**(meta or {}), "period_config": dataclasses.asdict(cfg),
          "protocol": ("full ranking" if negatives is None else
                       f"sampled: positive + {cfg.num_negatives} negatives "
                       f"(seed {cfg.negative_seed}, pool {cfg.negative_pool})")}
  stream = PeriodStream(
      name=name, num_users=num_users, num_items=num_items, user_N=user_N, item_N=item_N,
      time_N=time_N, period_start_P1=bounds, first_online=first_online,
      first_test=first_test, test_user_M=test_user, test_item_M=test_item,
      test_start_P1=test_start, negatives_MxK=negatives, meta=meta)
  return returning_users(stream) if cfg.test_users == "returning" else stream


# -- stand-ins from MovieLens -----------------------------------------------------------

# Chosen in docs/decisions.md ("SML period streams"): equal-count periods, since equal-time
# ones are empty or huge (ML-1M's ratings are front-loaded: 13 to 151,938 per week).
ML100K_PERIODS = PeriodConfig(num_periods=20, num_negatives=99)  # ~5,000 per period
ML1M_U2999_PERIODS = PeriodConfig(num_periods=40)  # ~12,190 per period, Yelp's 40


def _stream_from_raw(raw, cfg, name, source_meta):
  ratings = raw.ratings
  users, user_idx = np.unique(ratings["user"].to_numpy(), return_inverse=True)
  items, item_idx = np.unique(ratings["item"].to_numpy(), return_inverse=True)
  meta = {**source_meta, "stand_in_for": source_meta.get("stand_in_for"),
          "user_ids": "0-based index of the sorted original ids",
          "num_original_users": int(users.size), "num_original_items": int(items.size)}
  return build_stream(user_idx, item_idx, ratings["timestamp"].to_numpy(), int(users.size),
                      int(items.size), cfg, name=name, meta=meta)


def _checked_folder(folder_name, data_dir, allow_modified_data):
  from ltbench.data import sources
  path = sources.ensure(folder_name, data_dir=data_dir, download_missing=False)
  modified = sources.modified_files(folder_name, path)
  if modified and not allow_modified_data:
    raise DataError(f"{folder_name} in {path} fails its recorded checksums ({sorted(modified)}); "
                    f"restore the official files or pass allow_modified_data=True")
  return pathlib.Path(path), bool(modified)


def ml100k_stream(data_dir=None, cfg: PeriodConfig = ML100K_PERIODS,
                  allow_modified_data: bool = False) -> PeriodStream:
  """ML-100K (complete, with timestamps) as a period stream: a STAND-IN for Yelp/Adressa."""
  from ltbench.data import movielens, sources
  path, modified = _checked_folder("ml-100k", data_dir, allow_modified_data)
  raw = movielens.load_ml100k(path)
  return _stream_from_raw(raw, cfg, "ml-100k-periods", {
      "source": str(path), "checksum": sources.digest(raw.files), "data_modified": modified,
      "stand_in_for": "Yelp / Adressa (not available here)"})


def ml1m_u2999_stream(data_dir=None, cfg: PeriodConfig = ML1M_U2999_PERIODS,
                      allow_modified_data: bool = False) -> PeriodStream:
  """ML-1M users 1–2999 (the ratings with timestamps) as a period stream: a STAND-IN."""
  from ltbench.data import movielens, registry, sources
  path, modified = _checked_folder("ml-1m", data_dir, allow_modified_data)
  if not (path / registry.PART_RATINGS).exists():
    raise DataError(f"ml-1m-u2999 periods need {registry.PART_RATINGS} in {path} (ML-1M "
                    f"users 1-2999 with timestamps)")
  raw = movielens.load_ml1m(path, ratings_file=registry.PART_RATINGS)
  return _stream_from_raw(raw, cfg, "ml-1m-u2999-periods", {
      "source": str(path), "checksum": sources.digest(raw.files), "data_modified": modified,
      "subset": "ML-1M users 1-2999", "stand_in_for": "Yelp / Adressa (not available here)"})


# -- the official release format ---------------------------------------------------------


def _load_npy(path: pathlib.Path) -> np.ndarray:
  if not path.is_file():
    raise DataError(f"{path} is missing: the official SML layout is information.npy, "
                    f"train/<period>.npy and test/<period>.npy")
  try:
    array = np.load(path, allow_pickle=False)
  except (ValueError, OSError, EOFError) as e:
    raise DataError(f"{path} is not a readable .npy array: {e}") from None
  if not np.issubdtype(array.dtype, np.integer):
    raise DataError(f"{path} must hold integer ids, found dtype {array.dtype}")
  return array


def _period_files(folder: pathlib.Path) -> dict[str, pathlib.Path]:
  if not folder.is_dir():
    raise DataError(f"{folder} is missing: the official SML layout has train/ and test/ "
                    f"folders of <period>.npy files")
  files = {p.stem: p for p in folder.glob("*.npy")}
  if not files:
    raise DataError(f"{folder} holds no <period>.npy files")
  return files


def _period_key(stem: str):
  return (0, int(stem), stem) if re.fullmatch(r"\d+", stem) else (1, 0, stem)


def _check_ids(path, array, column, what, limit):
  ids = array[:, column]
  bad = np.flatnonzero((ids < 0) | (ids >= limit))
  if bad.size:
    row = int(bad[0])
    raise DataError(f"{path}, row {row}: {what} id {int(ids[row])} is outside [0, {limit}) "
                    f"(the sizes in information.npy)")


def load_official(root, first_online: int, first_test: int,
                  name: str | None = None) -> PeriodStream:
  """Reads a data set in the official SML release format into a PeriodStream.

  Periods are the train/ file names in numeric order (e.g. Yelp 0..39, Adressa 0..62).
  Every tested period (first_test onward) needs test/<period>.npy; test files of earlier
  periods are ignored (the official code keeps them for validation). OFFICIAL_SCHEDULE
  holds the official (first_online, first_test) of Yelp and Adressa.

  Raises DataError naming the file for a missing, unreadable or malformed file.
  """
  root = pathlib.Path(root).expanduser()
  info_path = root / "information.npy"
  info = _load_npy(info_path)
  if info.ndim != 1 or info.shape[0] < 3:
    raise DataError(f"{info_path} must be a 1-D array [interactions, users, items], got "
                    f"shape {info.shape}")
  num_users, num_items = int(info[1]), int(info[2])
  if num_users < 1 or num_items < 1:
    raise DataError(f"{info_path}: users {num_users} and items {num_items} must be positive")
  train_files = _period_files(root / "train")
  stems = sorted(train_files, key=_period_key)
  P = len(stems)
  if not 0 <= first_online <= first_test < P or first_test < 1:
    raise DataError(f"{root}: need 0 <= first_online <= first_test < {P} periods and "
                    f"first_test >= 1, got {first_online}, {first_test}")
  test_files = _period_files(root / "test")
  users, items, times, sizes = [], [], [], []
  for t, stem in enumerate(stems):
    path = train_files[stem]
    pairs = _load_npy(path)
    if pairs.ndim != 2 or pairs.shape[1] != 2:
      raise DataError(f"{path} must be an int array [n, 2] of (user, item), got shape "
                      f"{pairs.shape}")
    _check_ids(path, pairs, 0, "user", num_users)
    _check_ids(path, pairs, 1, "item", num_items)
    users.append(pairs[:, 0])
    items.append(pairs[:, 1])
    times.append(np.full(len(pairs), t, np.int64))
    sizes.append(len(pairs))
  test_users, test_items, negatives, test_sizes, num_k = [], [], [], [0] * P, None
  for t in range(first_test, P):
    stem = stems[t]
    path = test_files.get(stem)
    if path is None:
      raise DataError(f"{root / 'test' / (stem + '.npy')} is missing: tested period {t} "
                      f"(train/{stem}.npy) needs its test file")
    rows = _load_npy(path)
    if rows.ndim != 2 or rows.shape[1] < 3:
      raise DataError(f"{path} must be an int array [n, 2 + K] of (user, positive, K "
                      f"negatives), got shape {rows.shape}")
    if num_k is None:
      num_k = rows.shape[1] - 2
    elif rows.shape[1] - 2 != num_k:
      raise DataError(f"{path} has {rows.shape[1] - 2} negatives per row, the earlier test "
                      f"files {num_k}")
    _check_ids(path, rows, 0, "user", num_users)
    for column in range(1, rows.shape[1]):
      _check_ids(path, rows, column, "item", num_items)
    clash = np.flatnonzero((rows[:, 2:] == rows[:, 1:2]).any(1))
    if clash.size:
      raise DataError(f"{path}, row {int(clash[0])}: the positive {int(rows[clash[0], 1])} is "
                      f"also among its negatives")
    test_users.append(rows[:, 0])
    test_items.append(rows[:, 1])
    negatives.append(rows[:, 2:])
    test_sizes[t] = len(rows)
  meta = {"source": str(root), "format": "official SML release", "periods": stems,
          "information": info.tolist(), "time": "period index (the release has no timestamps)",
          "protocol": f"sampled: positive + {num_k} negatives (from the release)"}
  return PeriodStream(
      name=name or root.name, num_users=num_users, num_items=num_items,
      user_N=np.concatenate(users).astype(np.int32),
      item_N=np.concatenate(items).astype(np.int32), time_N=np.concatenate(times),
      period_start_P1=np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
      first_online=first_online, first_test=first_test,
      test_user_M=np.concatenate(test_users).astype(np.int32),
      test_item_M=np.concatenate(test_items).astype(np.int32),
      test_start_P1=np.concatenate([[0], np.cumsum(test_sizes)]).astype(np.int64),
      negatives_MxK=np.concatenate(negatives).astype(np.int32), meta=meta)


def write_official(stream: PeriodStream, root) -> None:
  """Writes a stream with sampled negatives in the official release layout (the inverse
  of `load_official`, e.g. to run the official code on our stand-ins)."""
  if stream.negatives_MxK is None:
    raise ValueError("the official format needs sampled negatives; this stream is full-ranking")
  root = pathlib.Path(root)
  (root / "train").mkdir(parents=True, exist_ok=True)
  (root / "test").mkdir(parents=True, exist_ok=True)
  np.save(root / "information.npy",
          np.array([stream.user_N.shape[0], stream.num_users, stream.num_items], np.int64))
  for t in range(stream.num_periods):
    np.save(root / "train" / f"{t}.npy", np.stack(stream.period(t), 1).astype(np.int64))
  for t in stream.test_periods:
    user, positive, negatives = stream.test_rows(t)
    np.save(root / "test" / f"{t}.npy",
            np.concatenate([user[:, None], positive[:, None], negatives], 1).astype(np.int64))


# -- a synthetic stream (tests, --quick) and the spec loader ------------------------------


def synthetic_stream(num_users: int = 120, num_items: int = 150, num_periods: int = 8,
                     per_period: int = 400, dim: int = 8, drift: float = 0.5,
                     temperature: float = 0.3, seed: int = 0,
                     cfg: PeriodConfig | None = None) -> PeriodStream:
  """A small drifting stream: users' and items' latent vectors take a random-walk step
  every period (step `drift` relative to their scale), and each period's interactions are
  users drawn uniformly picking a new item by softmax(u·v / temperature). Recent periods
  predict the next better than old ones, which is what retraining methods trade off. For
  tests and --quick runs only: it resembles no real data set."""
  rng = np.random.default_rng(seed)
  cfg = cfg or PeriodConfig(num_periods=num_periods, num_negatives=49)
  if cfg.num_periods != num_periods:
    cfg = dataclasses.replace(cfg, num_periods=num_periods)
  user_UxD = rng.normal(size=(num_users, dim)) / np.sqrt(dim)
  item_IxD = rng.normal(size=(num_items, dim)) / np.sqrt(dim)
  seen_UxI = np.zeros((num_users, num_items), bool)
  users, items, times = [], [], []
  for t in range(num_periods):
    u_B = rng.integers(0, num_users, per_period)
    logits_BxI = user_UxD[u_B] @ item_IxD.T / temperature
    logits_BxI = np.where(seen_UxI[u_B], -np.inf, logits_BxI)
    prob_BxI = np.exp(logits_BxI - logits_BxI.max(1, keepdims=True))
    prob_BxI /= prob_BxI.sum(1, keepdims=True)
    i_B = (prob_BxI.cumsum(1) > rng.random((per_period, 1))).argmax(1)
    seen_UxI[u_B, i_B] = True
    users.append(u_B)
    items.append(i_B)
    times.append(t * per_period + np.arange(per_period))
    user_UxD += drift * rng.normal(size=user_UxD.shape) / np.sqrt(dim)
    item_IxD += drift * rng.normal(size=item_IxD.shape) / np.sqrt(dim)
  # One (user, item) pair once: drop the rare repeats within a period.
  user_N, item_N, time_N = (np.concatenate(a) for a in (users, items, times))
  _, first = np.unique(user_N.astype(np.int64) * num_items + item_N, return_index=True)
  keep = np.sort(first)
  return build_stream(user_N[keep], item_N[keep], time_N[keep], num_users, num_items, cfg,
                      name="synthetic-periods",
                      meta={"source": "synthetic drifting stream", "seed": seed,
                            "checksum": f"synthetic-periods-{seed}-{num_users}-{num_items}-"
                                        f"{num_periods}-{per_period}-{drift}-{temperature}"})


PERIOD_DATASETS = ("synthetic-periods", "ml-100k-periods", "ml-1m-u2999-periods", "official")


def load_period_stream(dataset: str, options: dict | None = None, data_dir=None,
                       allow_modified_data: bool = False) -> PeriodStream:
  """The spec loader (data_protocol='periods'). options: PeriodConfig fields, plus for
  synthetic-periods the `synthetic_stream` arguments and for official `root`,
  `first_online`, `first_test`, `schedule` (a folder in the official release format; of
  the PeriodConfig fields only test_users applies to it, the release fixes the rest)."""
  options = dict(options or {})
  period_fields = {f.name for f in dataclasses.fields(PeriodConfig)}
  period_opts = {k: options.pop(k) for k in list(options) if k in period_fields}
  if dataset == "synthetic-periods":
    base = PeriodConfig(num_periods=period_opts.get("num_periods", 8), num_negatives=49)
    return synthetic_stream(**options, num_periods=base.num_periods,
                            cfg=dataclasses.replace(base, **period_opts))
  if options and dataset != "official":
    raise ValueError(f"unknown period data options {sorted(options)} for {dataset!r}")
  if dataset == "ml-100k-periods":
    return ml100k_stream(data_dir, dataclasses.replace(ML100K_PERIODS, **period_opts),
                         allow_modified_data)
  if dataset == "ml-1m-u2999-periods":
    return ml1m_u2999_stream(data_dir, dataclasses.replace(ML1M_U2999_PERIODS, **period_opts),
                             allow_modified_data)
  if dataset == "official":
    if "root" not in options:
      raise ValueError("dataset 'official' needs data option root (the release folder)")
    fixed = sorted(set(period_opts) - {"test_users"})
    unknown = sorted(set(options) - {"root", "first_online", "first_test", "schedule"})
    if fixed or unknown:
      raise ValueError(f"data options {fixed + unknown} do not apply to dataset 'official' "
                       f"(its release fixes periods and negatives); valid: root, "
                       f"first_online, first_test, schedule, test_users")
    schedule = OFFICIAL_SCHEDULE.get(options.get("schedule", ""), (None, None))
    stream = load_official(options["root"], options.get("first_online", schedule[0]),
                           options.get("first_test", schedule[1]))
    test_users = period_opts.get("test_users", "all")
    _check_config(dataclasses.replace(PeriodConfig(), test_users=test_users))
    return returning_users(stream) if test_users == "returning" else stream
  raise ValueError(f"unknown period data set {dataset!r}; valid: {', '.join(PERIOD_DATASETS)}")
