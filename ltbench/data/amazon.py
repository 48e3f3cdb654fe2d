"""Amazon review data (2018) for IDW: Kindle Store and Clothing, Shoes and Jewelry.

Real files (Ni, Li and McAuley, EMNLP 2019; https://nijianmo.github.io/amazon/), placed by
hand; ltbench never downloads them (they are large and ltbench records no checksum):
- the 5-core reviews, JSON lines (`Kindle_Store_5.json.gz`,
  `Clothing_Shoes_and_Jewelry_5.json.gz`, gzipped or not): the fields used are
  reviewerID, asin and unixReviewTime. IDW's Table 2 sizes (Kindle: 139,769 users, 98,769
  items, 15 items per user; Clothing: 1,219,594 users, 376,438 items, 9 per user) are those
  of the 5-core files, so these are the files to use. Taken as they are (5-core already).
- the ratings-only CSV (`Kindle_Store.csv`, `Clothing_Shoes_and_Jewelry.csv`, or .csv.gz):
  lines `item,user,rating,timestamp`, no header. Every review, so ltbench keeps the 5-core
  of it (users and items with at least 5 reviews, iterated to a fixed point), the
  definition of the 5-core files.
In both, a repeated (user, item) pair keeps its earliest review, and each user's reviews
are ordered by time (days: unixReviewTime is a date), ties in file order.

Stand-ins (`standin_config`, `generate_standin`): these files are absent where ltbench is
developed, so the IDW tables also run on generated histories that keep each data set's
users:items ratio and mean history length from IDW Table 2, scaled down to 6,000 users so
a 2-core CPU trains on them. They are labelled stand-ins wherever they appear.
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import json
import pathlib

import numpy as np
import pandas as pd

from ltbench.data import hmm, sequences, sources
from ltbench.errors import DataError

URL_BASE = "https://mcauleylab.ucsd.edu/public_datasets/data/amazon_v2/categoryFilesSmall/"
# (formerly served from https://jmcauley.ucsd.edu/data/amazon_v2/categoryFilesSmall/)


@dataclasses.dataclass(frozen=True)
class Category:
  stem: str  # file name stem of the official files
  title: str
  users: int  # IDW Table 2 (the 5-core files)
  items: int
  mean_len: float  # IDW Table 2 "Avg Seq Length"

  @property
  def file_names(self) -> tuple[str, ...]:
    """The files looked for, in order of preference."""
    s = self.stem
    return (f"{s}_5.json.gz", f"{s}_5.json", f"{s}.csv", f"{s}.csv.gz")

  @property
  def urls(self) -> tuple[str, str]:
    return URL_BASE + f"{self.stem}_5.json.gz", URL_BASE + f"{self.stem}.csv"


CATEGORIES = {
    "kindle": Category("Kindle_Store", "Kindle Store", 139_769, 98_769, 15),
    "clothing": Category("Clothing_Shoes_and_Jewelry", "Clothing, Shoes and Jewelry", 1_219_594,
                         376_438, 9),
}


def _category(category: str) -> Category:
  if category not in CATEGORIES:
    raise DataError(f"unknown Amazon category {category!r}; valid: {', '.join(CATEGORIES)}")
  return CATEGORIES[category]


def find_file(category: str, data_dir=None) -> pathlib.Path:
  """The first official file of the category in DIR/amazon-<category>/ or DIR itself, for
  DIR in the search roots (--data-dir, $LTBENCH_DATA, the user cache); else a DataError."""
  cat = _category(category)
  folders = []
  for root in sources.search_roots(data_dir):
    folders += [root / f"amazon-{category}", root]
  for folder in folders:
    for name in cat.file_names:
      if (folder / name).is_file():
        return folder / name
  looked = "\n".join(f"  - {f}" for f in folders)
  json_url, csv_url = cat.urls
  raise DataError(
      f"Amazon 2018 {cat.title} was not found: none of {', '.join(cat.file_names)} is in\n"
      f"{looked}\nltbench does not download it. Get the 5-core reviews {json_url} (the files "
      f"IDW's Table 2 counts) or the ratings-only CSV {csv_url} from "
      f"https://nijianmo.github.io/amazon/ and put the file in DIR/amazon-{category}/ (or DIR) "
      f"with --data-dir DIR or LTBENCH_DATA=DIR. Without it, `amazon-{category}-standin` is a "
      f"labelled generated stand-in.")


def _open_text(path: pathlib.Path):
  """The file as text, gunzipped when it is gzip (by its magic bytes, whatever its name)."""
  try:
    with open(path, "rb") as f:
      gz = f.read(2) == b"\x1f\x8b"
    return (gzip.open(path, "rt", encoding="utf-8") if gz
            else open(path, encoding="utf-8"))
  except OSError as e:
    raise DataError(f"cannot read {path}: {e}. Check that the file exists and is readable.") from e


def _bad(path, lineno: int, line: str, problem: str) -> DataError:
  shown = line if len(line) <= 200 else line[:200] + "..."
  return DataError(f"{path}, line {lineno}: {problem}.\n  line {lineno} reads: {shown!r}\n"
                   f"The file is damaged or not an official Amazon 2018 file; download it again.")


def read_5core_json(path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(reviewerID str [N], asin str [N], unixReviewTime int64 [N]) from JSON lines."""
  path = pathlib.Path(path)
  users, items, times = [], [], []
  try:
    with _open_text(path) as f:
      for lineno, line in enumerate(f, 1):
        if not line.strip():
          continue
        try:
          rec = json.loads(line)
        except ValueError as e:
          raise _bad(path, lineno, line.rstrip("\n"), f"not a JSON object ({e})") from None
        try:
          users.append(str(rec["reviewerID"]))
          items.append(str(rec["asin"]))
          times.append(int(rec["unixReviewTime"]))
        except KeyError as e:
          raise _bad(path, lineno, line.rstrip("\n"), f"field {e} is missing") from None
        except (TypeError, ValueError):
          raise _bad(path, lineno, line.rstrip("\n"),
                     "unixReviewTime is not an integer") from None
  except (OSError, EOFError, UnicodeDecodeError) as e:  # e.g. a truncated .gz
    raise DataError(f"cannot read {path}: {e}. The file is damaged; download it again.") from e
  if not users:
    raise DataError(f"{path} holds no reviews.")
  return np.asarray(users), np.asarray(items), np.asarray(times, np.int64)


_CSV_COLUMNS = ("item", "user", "rating", "timestamp")


def _csv_bad_line(path) -> DataError:
  """Finds the first malformed line of a ratings-only CSV (the slow path, errors only)."""
  with _open_text(path) as f:
    for lineno, raw in enumerate(f, 1):
      line = raw.rstrip("\r\n")
      if not line.strip():
        continue
      fields = line.split(",")
      if len(fields) != 4:
        return _bad(path, lineno, line, f"expected 4 fields item,user,rating,timestamp, found "
                    f"{len(fields)}")
      try:
        float(fields[2])
        int(fields[3])
      except ValueError:
        if lineno == 1 and fields == list(_CSV_COLUMNS):
          continue
        return _bad(path, lineno, line, "rating is not a number or timestamp not an integer")
  return DataError(f"{path} could not be parsed as item,user,rating,timestamp lines.")


def read_ratings_csv(path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(user str [N], item str [N], timestamp int64 [N]) from a ratings-only CSV."""
  path = pathlib.Path(path)
  try:
    with _open_text(path) as f:
      text = f.read()
  except (OSError, EOFError, UnicodeDecodeError) as e:
    raise DataError(f"cannot read {path}: {e}. The file is damaged; download it again.") from e
  skip = 1 if text.split("\n", 1)[0].strip() == ",".join(_CSV_COLUMNS) else 0  # tolerate a header
  try:
    frame = pd.read_csv(io.StringIO(text), header=None, names=list(_CSV_COLUMNS), skiprows=skip,
                        dtype={"item": str, "user": str}, engine="c")
  except (ValueError, pd.errors.ParserError):
    raise _csv_bad_line(path) from None
  if (len(frame) == 0 or frame.isna().any().any() or frame["timestamp"].dtype.kind != "i"
      or frame["rating"].dtype.kind not in "if"):
    if len(frame) == 0:
      raise DataError(f"{path} holds no ratings.")
    raise _csv_bad_line(path)
  return (frame["user"].to_numpy(), frame["item"].to_numpy(),
          frame["timestamp"].to_numpy().astype(np.int64))


def k_core(user_N, item_N, k: int) -> np.ndarray:
  """bool [N]: the interactions kept when users and items with fewer than k are dropped,
  repeatedly, until every kept user and item has at least k (the k-core)."""
  _, u = np.unique(user_N, return_inverse=True)
  _, i = np.unique(item_N, return_inverse=True)
  keep = np.ones(u.shape[0], bool)
  while True:
    ok = ((np.bincount(u[keep], minlength=u.max() + 1) >= k)[u]
          & (np.bincount(i[keep], minlength=i.max() + 1) >= k)[i] & keep)
    if (ok == keep).all():
      return keep
    keep = ok


def clean(user_N, item_N, time_N, core: int | None):
  """Drops repeated (user, item) pairs (keeping the earliest; ties the first in the file),
  then keeps the `core`-core (None: no filter). Returns the kept arrays, in file order, and
  counts of what was dropped."""
  user_N, item_N, time_N = np.asarray(user_N), np.asarray(item_N), np.asarray(time_N)
  n = user_N.shape[0]
  _, u = np.unique(user_N, return_inverse=True)
  _, i = np.unique(item_N, return_inverse=True)
  order = np.lexsort((np.arange(n), time_N, i, u))
  pair = u[order].astype(np.int64) * (i.max() + 1) + i[order]
  first = np.ones(n, bool)
  first[1:] = pair[1:] != pair[:-1]
  keep = np.zeros(n, bool)
  keep[order[first]] = True
  repeats = int(n - keep.sum())
  if core is not None:
    keep[keep] = k_core(user_N[keep], item_N[keep], core)
  stats = {"raw_interactions": n, "repeated_pairs_dropped": repeats,
           "core": core, "core_dropped": int(n - repeats - keep.sum())}
  return user_N[keep], item_N[keep], time_N[keep], stats


def amazon_sequences(category: str, path, seq_cfg: sequences.SequenceConfig,
                     name: str) -> sequences.SequenceData:
  """An official Amazon 2018 file cut into IDW sequences."""
  cat = _category(category)
  path = pathlib.Path(path)
  is_json = ".json" in path.name
  if is_json:
    user_N, item_N, time_N = read_5core_json(path)
  else:
    user_N, item_N, time_N = read_ratings_csv(path)
  user_N, item_N, time_N, stats = clean(user_N, item_N, time_N, core=None if is_json else 5)
  if user_N.size == 0:
    raise DataError(f"{path}: no user and item has 5 reviews, nothing is left of the 5-core.")
  meta = {"source": str(path), "file": path.name,
          "format": "5-core JSON lines" if is_json else "ratings-only CSV, 5-core kept here",
          "checksum": sources.digest([path]), "url": cat.urls[0 if is_json else 1], **stats,
          "order": "by unixReviewTime (a day); equal times keep the file's order",
          "paper_table2": {"users": cat.users, "items": cat.items, "mean_len": cat.mean_len}}
  return sequences.sequences_from_interactions(user_N, item_N, time_N, seq_cfg, name, meta)


# -- stand-ins -----------------------------------------------------------------------------

STANDIN_USERS = 6000  # drawn users; small enough for a 2-core CPU, both data sets alike


@dataclasses.dataclass(frozen=True)
class StandinConfig:
  """Generated time-ordered histories: a user-specific Markov chain over interest clusters
  (IDW Eq. 12, as in Appendix A) emitting items by global Zipf popularity, then the 5-core."""

  standin_for: str  # the real data set's title
  target_users_per_item: float  # IDW Table 2 users / items, to match after the 5-core
  target_mean_len: float  # IDW Table 2 "Avg Seq Length", to match after the 5-core
  num_users: int = STANDIN_USERS  # users drawn
  num_items: int = 4000  # catalogue drawn (the 5-core drops rarely drawn items)
  mean_len: float = 15.0  # mean history length drawn (before repeats and the 5-core)
  len_sigma: float = 1.0  # lognormal spread of lengths above min_len (a long tail)
  min_len: int = 5  # shortest history drawn (5-core)
  max_len: int = 200  # longest history drawn
  item_power: float = 0.75  # Zipf exponent of item popularity (a choice: no number published)
  num_clusters: int = 20  # interest clusters (items assigned at random)
  interests_per_user: int = 3  # multinomial draws for a user's interest set Y_u
  interest_power: float = 1.0  # power-law exponent of cluster popularity
  alpha: float = 0.6  # Eq. 12: stay in an interest cluster
  gamma: float = 0.3  # Eq. 12: move to another interest cluster
  epsilon: float = 0.1  # Eq. 12: stay in a non-interest cluster
  core: int = 5  # k-core kept, like the official 5-core files
  seed: int = 0  # generator seed (fixed per data set, independent of trial seeds)


# Drawn sizes calibrated (by hand, seed 0) so that after the repeats and the 5-core the
# users:items ratio and the mean history length match IDW Table 2 within a few percent.
_STANDIN_DRAW = {
    "kindle": {"num_items": 7000, "mean_len": 16.1},
    "clothing": {"num_items": 2000, "mean_len": 9.1},
}


def standin_config(category: str, **overrides) -> StandinConfig:
  cat = _category(category)
  base = {"standin_for": f"Amazon 2018 {cat.title}",
          "target_users_per_item": cat.users / cat.items, "target_mean_len": cat.mean_len,
          **_STANDIN_DRAW[category]}
  return StandinConfig(**{**base, **overrides})


def generate_standin(cfg: StandinConfig):
  """Returns (user_N, item_N, time_N): every user's history in time order, before cleaning."""
  if not 1 <= cfg.interests_per_user < cfg.num_clusters:
    raise ValueError(f"interests_per_user must be in [1, num_clusters), got {cfg}")
  if not 1 <= cfg.min_len < cfg.mean_len <= cfg.max_len:
    raise ValueError(f"need 1 <= min_len < mean_len <= max_len, got {cfg}")
  rng = np.random.default_rng(cfg.seed)
  U, I, C = cfg.num_users, cfg.num_items, cfg.num_clusters
  cluster_I = rng.integers(0, C, I)
  pop_I = hmm.power_law(I, cfg.item_power)[rng.permutation(I)]
  by_cluster = np.lexsort((np.arange(I), cluster_I))  # items grouped by cluster
  start_C = np.searchsorted(cluster_I[by_cluster], np.arange(C))
  end_C = np.searchsorted(cluster_I[by_cluster], np.arange(C), side="right")
  cum = np.cumsum(pop_I[by_cluster])
  base_C = np.where(start_C > 0, cum[np.maximum(start_C - 1, 0)], 0.0)
  mass_C = np.where(end_C > start_C, cum[np.maximum(end_C - 1, 0)] - base_C, 0.0)

  interests_UxC = rng.multinomial(cfg.interests_per_user,
                                  hmm.power_law(C, cfg.interest_power), size=U) > 0
  p_UxCxC = hmm.transition_matrix(interests_UxC, cfg.alpha, cfg.gamma, cfg.epsilon)
  mu = np.log(cfg.mean_len - cfg.min_len) - cfg.len_sigma ** 2 / 2
  len_U = np.minimum(cfg.min_len + np.round(rng.lognormal(mu, cfg.len_sigma, U)).astype(int),
                     cfg.max_len)
  steps = 2 * len_U  # drawn steps; repeats are dropped and the rest cut to len_U
  T = int(steps.max())
  cluster_UxT = np.empty((U, T), np.int64)
  start_weights = mass_C / mass_C.sum()  # the first interest follows cluster popularity
  cluster_UxT[:, 0] = hmm._draw(rng, np.broadcast_to(start_weights, (U, C)))
  users = np.arange(U)
  for t in range(1, T):
    cluster_UxT[:, t] = hmm._draw(rng, p_UxCxC[users, cluster_UxT[:, t - 1]])
  live_UxT = np.arange(T)[None, :] < steps[:, None]
  user_N = np.broadcast_to(users[:, None], (U, T))[live_UxT]
  time_N = np.broadcast_to(np.arange(T)[None, :], (U, T))[live_UxT]
  c_N = cluster_UxT[live_UxT]
  # Zero-mass clusters (no items) fall back to the whole catalogue.
  empty = mass_C[c_N] == 0
  lo = np.where(empty, 0.0, base_C[c_N])
  width = np.where(empty, cum[-1], mass_C[c_N])
  pick = np.searchsorted(cum, lo + rng.random(c_N.size) * width, side="right")
  item_N = by_cluster[np.clip(pick, np.where(empty, 0, start_C[c_N]),
                              np.where(empty, I - 1, end_C[c_N] - 1))]
  # Keep each user's first len_U distinct items.
  n = item_N.size
  first = np.zeros(n, bool)
  first[np.unique(user_N.astype(np.int64) * I + item_N, return_index=True)[1]] = True
  user_N, item_N, time_N = user_N[first], item_N[first], time_N[first]
  rank = np.arange(user_N.size) - np.searchsorted(user_N, user_N)
  keep = rank < len_U[user_N]
  return user_N[keep], item_N[keep], time_N[keep]


def popularity_stats(item_counts) -> dict[str, float]:
  """Share of interactions on the top 20 % of items and the Gini coefficient."""
  c = np.sort(np.asarray(item_counts, np.float64))[::-1]
  c = c[c > 0]
  n = c.size
  top = c[:max(1, int(round(0.2 * n)))].sum() / c.sum()
  asc = c[::-1]
  gini = float((2 * np.arange(1, n + 1) - n - 1) @ asc / (n * asc.sum()))
  return {"top20_share": float(top), "gini": gini}


def standin_sequences(cfg: StandinConfig, seq_cfg: sequences.SequenceConfig,
                      name: str) -> sequences.SequenceData:
  """The stand-in's histories, cleaned like a ratings-only CSV (5-core), cut into sequences."""
  user_N, item_N, time_N, stats = clean(*generate_standin(cfg), core=cfg.core)
  num_users, num_items = np.unique(user_N).size, np.unique(item_N).size
  achieved = {"users": int(num_users), "items": int(num_items),
              "users_per_item": num_users / num_items, "mean_len": user_N.size / num_users,
              **popularity_stats(np.bincount(item_N))}
  meta = {"source": "generated stand-in (ltbench.data.amazon.generate_standin)",
          "standin_for": cfg.standin_for, "config": dataclasses.asdict(cfg), **stats,
          "matched": {"users_per_item": cfg.target_users_per_item,
                      "mean_len": cfg.target_mean_len,
                      "from": "IDW (Mehta et al. 2023) Table 2, Dataset Statistics"},
          "achieved": achieved,
          "skew_note": ("the paper gives the item distribution only as a plot (Appendix C, "
                        "Figure 9); the Zipf exponent item_power is a choice, not a matched "
                        "number"),
          "order": "generation order (one step = one time unit)"}
  return sequences.sequences_from_interactions(user_N, item_N, time_N, seq_cfg, name, meta)
