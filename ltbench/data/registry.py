"""Registry of data sets: name -> how to find, parse and turn it into a cached Bundle."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pathlib
import sys
from typing import Callable

from ltbench.data import sources
from ltbench.data.bundle import Bundle
from ltbench.errors import DataError, SpecError

# Bump when feature/split code changes, so cached bundles are rebuilt.
BUNDLE_FORMAT = 1


@dataclasses.dataclass(frozen=True)
class Dataset:
  name: str
  description: str
  head_fraction: float  # default head slice: top fraction of items by train frequency
  downloadable: bool  # has an official URL + checksum in ltbench.data.sources
  protocol: str = "interactions"  # "sequences": loaded with load_sequences, not load_bundle;
  # "periods": a period stream, loaded with periods.load_period_stream (SML)


def _synthetic(_path, head_fraction, split_seed, **config):
  from ltbench.data import synthetic
  return synthetic.generate(synthetic.SyntheticConfig(head_fraction=head_fraction, **config))


# The Book-Crossing stand-in at the size used for CDN Table 3 here (the real BX after the
# paper's filtering: 50k users, 222k items, 1.03M feedback; this one is smaller so that a
# CPU can run it): about 30k users, 114k items, 632k train interactions, IF ~2,600.
BX_STANDIN = {"num_users": 30000, "num_items": 120000, "num_interactions": 700000}


def _bx_standin(_path, head_fraction, split_seed, **config):
  from ltbench.data import synthetic
  cfg = synthetic.SparseConfig(**{**BX_STANDIN, "head_fraction": head_fraction, **config})
  return synthetic.generate_sparse(cfg, name="bx-standin")


def _movielens(loader_name):
  def build(path, head_fraction, split_seed):
    from ltbench.data import features, movielens
    raw = getattr(movielens, loader_name)(path)
    meta = {"source": str(path), "files": [p.name for p in raw.files],
            "checksum": sources.digest(raw.files), "has_timestamps": raw.has_timestamps}
    return features.bundle_from_frames(raw.name, raw.ratings, raw.users, raw.items,
                                       raw.has_timestamps, head_fraction, split_seed, meta)
  return build


def _ml1m_timed_part(force_random):
  """The users of ML-1M with timestamps in the copy that lacks them for users 3000-6040 (a split diagnostic)."""
  def build(path, head_fraction, split_seed):
    from ltbench.data import features, movielens
    raw = movielens.load_ml1m(path, ratings_file=PART_RATINGS)
    meta = {"source": str(path), "files": [p.name for p in raw.files],
            "checksum": sources.digest(raw.files), "has_timestamps": True,
            "subset": "ML-1M users 1-2999 (the ratings with timestamps in a copy that lacks them for 3000-6040)"}
    return features.bundle_from_frames(
        "ml-1m-u2999-" + ("random" if force_random else "time"), raw.ratings, raw.users,
        raw.items, not force_random, head_fraction, split_seed, meta)
  return build


PART_RATINGS = "ratings.part_users0001-2999.dat"


def _bookcrossing(path, head_fraction, split_seed):
  from ltbench.data import bookcrossing
  return bookcrossing.bundle_from_bookcrossing(bookcrossing.load_bookcrossing(path),
                                               head_fraction, split_seed)


DATASETS: dict[str, Dataset] = {
    "synthetic": Dataset("synthetic", "embedded seeded generator (no download)", 0.2, False),
    "bx-standin": Dataset("bx-standin", "STAND-IN for Book-Crossing: embedded sparse generator "
                          "(IF ~2,000, 99.98% sparse, head = top 0.1%); not the real data", 0.001,
                          False),
    "ml-100k": Dataset("ml-100k", "MovieLens 100K (GroupLens)", 0.2, True),
    "ml-1m": Dataset("ml-1m", "MovieLens 1M (GroupLens)", 0.2, True),
    "ml-1m-u2999-time": Dataset("ml-1m-u2999-time", "diagnostic: ML-1M users 1-2999 (ratings with "
                                "timestamps), leave-one-out by time", 0.2, False),
    "ml-1m-u2999-random": Dataset("ml-1m-u2999-random", "diagnostic: the same interactions, "
                                  "leave-one-out at random", 0.2, False),
    "book-crossing": Dataset("book-crossing", "Book-Crossing (Ziegler et al. 2005; files placed "
                             "by hand, the original host is gone)", 0.001, False),
    "idw-synthetic": Dataset("idw-synthetic", "IDW Appendix A synthetic HMM histories, cut into "
                             "sequences (no download)", 0.2, False, protocol="sequences"),
    "amazon-kindle": Dataset("amazon-kindle", "Amazon 2018 Kindle Store (Ni et al. 2019): 5-core "
                             "JSON lines or ratings-only CSV, placed by hand", 0.2, False,
                             protocol="sequences"),
    "amazon-clothing": Dataset("amazon-clothing", "Amazon 2018 Clothing, Shoes and Jewelry (Ni et "
                               "al. 2019): 5-core JSON lines or ratings-only CSV, placed by hand",
                               0.2, False, protocol="sequences"),
    "amazon-kindle-standin": Dataset("amazon-kindle-standin", "STAND-IN for Amazon Kindle Store: "
                                     "generated time-ordered histories with its users:items ratio "
                                     "and mean history length (IDW Table 2); not the real data",
                                     0.2, False, protocol="sequences"),
    "amazon-clothing-standin": Dataset("amazon-clothing-standin", "STAND-IN for Amazon Clothing, "
                                       "Shoes and Jewelry: generated time-ordered histories with "
                                       "its users:items ratio and mean history length (IDW Table "
                                       "2); not the real data", 0.2, False, protocol="sequences"),
    "synthetic-periods": Dataset("synthetic-periods", "small generated drifting period stream "
                                 "(tests and --quick of sml/table1; no download)", 0.2, False,
                                 protocol="periods"),
    "ml-100k-periods": Dataset("ml-100k-periods", "STAND-IN for Yelp / Adressa: ML-100K in 20 "
                               "equal-count periods (SML protocol)", 0.2, False,
                               protocol="periods"),
    "ml-1m-u2999-periods": Dataset("ml-1m-u2999-periods", "STAND-IN for Yelp / Adressa: ML-1M "
                                   "users 1-2999 in 40 equal-count periods (SML protocol)", 0.2,
                                   False, protocol="periods"),
}
_BUILDERS: dict[str, Callable] = {
    "synthetic": _synthetic,
    "bx-standin": _bx_standin,
    "ml-100k": _movielens("load_ml100k"),
    "ml-1m": _movielens("load_ml1m"),
    "book-crossing": _bookcrossing,
    "ml-1m-u2999-time": _ml1m_timed_part(force_random=False),
    "ml-1m-u2999-random": _ml1m_timed_part(force_random=True),
}
# data sets read from another's folder
_FOLDER = {"ml-1m-u2999-time": "ml-1m", "ml-1m-u2999-random": "ml-1m"}
_PERIOD_FOLDER = {"ml-100k-periods": "ml-100k", "ml-1m-u2999-periods": "ml-1m"}


def get(name: str) -> Dataset:
  if name not in DATASETS:
    raise SpecError(f"unknown data set {name!r}; valid: {', '.join(sorted(DATASETS))}")
  return DATASETS[name]


def cache_root() -> pathlib.Path:
  base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
  return pathlib.Path(base) / "ltbench"


def _find_movielens(name: str, data_dir, download: bool) -> pathlib.Path:
  """The folder of a MovieLens copy for `name` (found or downloaded), or a DataError."""
  path = sources.ensure(_FOLDER.get(name, name), data_dir=data_dir, download_missing=download)
  if name in _FOLDER and not (pathlib.Path(path) / PART_RATINGS).exists():
    raise DataError(
        f"{name} needs {PART_RATINGS} in {path}: the ratings of ML-1M users 1-2999 with their "
        f"timestamps, a diagnostic file of one particular ML-1M copy that is not part of the "
        f"official release. With the official ML-1M "
        f"({sources.SOURCES['ml-1m'].url}), whose ratings.dat has every timestamp, run "
        f"`--dataset ml-1m` instead: its split is already by time.")
  return path


def _check_modified(folder_name: str, path, allow_modified_data: bool) -> dict[str, str]:
  """The files of the copy that fail their recorded checksum; a DataError unless allowed."""
  modified = sources.modified_files(folder_name, path)
  if modified:
    lines = "\n".join(f"  {pathlib.Path(path) / f}: {st}" for f, st in modified.items())
    if not allow_modified_data:
      source = sources.SOURCES[folder_name]
      raise DataError(
          f"{folder_name} in {path} differs from the official release; these files fail the "
          f"checksum ltbench records for them:\n{lines}\nResults from modified data are not "
          f"comparable with anyone else's. Restore the official files (`ltbench data download "
          f"{folder_name}`, or {source.url}), or pass --allow-modified-data to run on them "
          f"anyway (the results then record data_modified: true).")
    print(f"[ltbench] WARNING: running on MODIFIED data (--allow-modified-data):\n{lines}",
          file=sys.stderr)
  return modified


def _cache_file(kind: str, name: str, key_src: dict) -> pathlib.Path:
  key = hashlib.sha256(json.dumps(key_src).encode()).hexdigest()[:16]
  return cache_root() / kind / f"{name}-{key}.npz"


def _write_cache(obj, cached, what: str) -> None:
  """Saves a parsed data set to its cache file; a failure only costs the next run a parse."""
  try:
    obj.save(cached)
  except OSError as e:
    print(f"[ltbench] could not write {what} cache {cached}: {e}", file=sys.stderr)


def _mark_modified(obj, modified):
  """Records in `obj.meta` the files that failed their checksum (--allow-modified-data)."""
  if modified:
    obj.meta["data_modified"] = True
    obj.meta["data_modified_files"] = sorted(modified)
  return obj


def load_bundle(name: str, data_dir: str | None = None, head_fraction: float | None = None,
                split_seed: int = 0, download: bool = True, use_cache: bool = True,
                synthetic_config: dict | None = None, allow_modified_data: bool = False) -> Bundle:
  """Finds (or downloads) the data set, checks it, parses it and returns its Bundle, cached
  on disk.

  A file that fails its recorded checksum stops here with a DataError, unless
  allow_modified_data, in which case the bundle's meta records `data_modified`. The cache
  is keyed by the folder's resolved path and the content hash of its files, so another
  folder (or an edited file) never receives a bundle parsed from different data.
  """
  ds = get(name)
  if ds.protocol == "sequences":
    raise SpecError(f"{name} is a sequence data set: load it with "
                    f"ltbench.data.registry.load_sequences({name!r})")
  head_fraction = ds.head_fraction if head_fraction is None else head_fraction
  if name in ("synthetic", "bx-standin"):  # generated, nothing to find on disk
    try:
      return _BUILDERS[name](None, head_fraction, split_seed, **(synthetic_config or {}))
    except TypeError as e:
      raise SpecError(f"bad generator options {synthetic_config} for {name}: {e}") from None
  folder_name = _FOLDER.get(name, name)
  path = _find_movielens(name, data_dir, download)
  modified = _check_modified(folder_name, path, allow_modified_data)
  files = sorted(p for p in pathlib.Path(path).iterdir() if p.is_file())
  key_src = {"format": BUNDLE_FORMAT, "name": name, "head": head_fraction, "split": split_seed,
             "folder": str(pathlib.Path(path).resolve()), "content": sources.digest(files)}
  cached = _cache_file("bundles", name, key_src)
  bundle = None
  if use_cache and cached.exists():
    try:
      bundle = Bundle.load(cached)
    except Exception as e:  # a corrupt cache entry is rebuilt, never fatal
      print(f"[ltbench] ignoring unreadable bundle cache {cached}: {e}", file=sys.stderr)
  if bundle is None:
    print(f"[ltbench] parsing {name} from {path} ...", file=sys.stderr)
    bundle = _BUILDERS[name](path, head_fraction, split_seed)
    if use_cache:
      _write_cache(bundle, cached, "bundle")
  return _mark_modified(bundle, modified)


# Bump when the sequence builder or an Amazon parser changes, so cached SequenceData are rebuilt.
SEQUENCE_FORMAT = 1


def _ml_sequences(name: str, path, seq_cfg, meta: dict):
  """MovieLens ratings (with timestamps) as time-ordered histories cut into sequences."""
  from ltbench.data import movielens, sequences
  if name == "ml-100k":
    raw = movielens.load_ml100k(path)
  else:
    raw = movielens.load_ml1m(path, ratings_file=PART_RATINGS if name in _FOLDER else None)
  if not raw.has_timestamps:
    raise DataError(
        f"{name} sequences need the order of each user's ratings, but the copy in {path} has "
        f"no timestamps ({raw.files[0].name}). Put the official ratings.dat "
        f"({sources.SOURCES['ml-1m'].url}) there, or use `ml-1m-u2999-time` (the users 1-2999 "
        f"whose timestamps exist in the partial copy) and say so.")
  r = raw.ratings
  meta = {**meta, "files": [p.name for p in raw.files], "checksum": sources.digest(raw.files),
          "order": "by timestamp (seconds); equal timestamps keep the file's line order"}
  return sequences.sequences_from_interactions(
      r["user"].to_numpy(), r["item"].to_numpy(), r["timestamp"].to_numpy(), seq_cfg, name, meta)


_ML_SUBSET = ("ML-1M users 1-2999 only: the ratings with timestamps in the partial copy "
              "(487,650 of 1,000,209 ratings; users 3000-6040 have no timestamps here)")


def _amazon_real(category: str):
  def build(path, seq_cfg, name):
    from ltbench.data import amazon
    return amazon.amazon_sequences(category, path, seq_cfg, name)
  return build


def _amazon_standin(category: str):
  def build(synthetic_config, seq_cfg, name):
    from ltbench.data import amazon
    cfg = amazon.standin_config(category, **synthetic_config)
    return amazon.standin_sequences(cfg, seq_cfg, name)
  return build


def _idw_synthetic(synthetic_config, seq_cfg, name):
  from ltbench.data import hmm
  return hmm.idw_synthetic(hmm.HMMConfig(**synthetic_config), seq_cfg, name=name)


# Sequence protocols (IDW). Generated: built from synthetic_config, cheap, not cached.
_GENERATED_SEQUENCES: dict[str, Callable] = {
    "idw-synthetic": _idw_synthetic,
    "amazon-kindle-standin": _amazon_standin("kindle"),
    "amazon-clothing-standin": _amazon_standin("clothing"),
}
# From files on disk: MovieLens copies (found like load_bundle finds them) and Amazon files.
_MOVIELENS_SEQUENCES = ("ml-100k", "ml-1m", "ml-1m-u2999-time")
_AMAZON_SEQUENCES: dict[str, Callable] = {
    "amazon-kindle": _amazon_real("kindle"),
    "amazon-clothing": _amazon_real("clothing"),
}


def sequence_datasets() -> list[str]:
  """The names `load_sequences` accepts."""
  return sorted([*_GENERATED_SEQUENCES, *_MOVIELENS_SEQUENCES, *_AMAZON_SEQUENCES])


def load_sequences(name: str, synthetic_config: dict | None = None,
                   sequence_config: dict | None = None, head_fraction: float | None = None, *,
                   data_dir: str | None = None, download: bool = True,
                   allow_modified_data: bool = False, use_cache: bool = True):
  """The SequenceData of a data set under the IDW sequence protocol (ltbench.data.sequences).

  - `idw-synthetic` (Appendix A HMM; full ranking by default) and the Amazon stand-ins
    `amazon-kindle-standin` / `amazon-clothing-standin` are generated from
    `synthetic_config` (their generator's options); cheap, so not cached.
  - `ml-100k`, `ml-1m` (needs the official ratings.dat with timestamps) and
    `ml-1m-u2999-time` (ML-1M users 1-2999, the only ones whose timestamps exist in the
    partial copy) are found, downloaded and checksum-checked exactly as `load_bundle` does
    (`data_dir`, `download`, `allow_modified_data`), then each user's ratings are ordered by
    timestamp.
  - `amazon-kindle` / `amazon-clothing`: the official Amazon 2018 5-core JSON lines or
    ratings-only CSV placed by hand (see ltbench.data.amazon); never downloaded.

  `sequence_config` holds SequenceConfig fields; the default is 99 sampled negatives
  (seed 0) on real data and stand-ins, full ranking on idw-synthetic. `head_fraction`,
  when given, overrides both the data set's default and sequence_config's. Data read from
  disk is cached as one .npz keyed by the sequence options and the content hash of the
  files, like the bundle cache.
  """
  from ltbench.data import sequences
  get(name)
  if name not in sequence_datasets():
    why = (" (its ratings are ordered at random, so it has no sequences; use "
           "ml-1m-u2999-time)" if name == "ml-1m-u2999-random" else "")
    raise SpecError(f"{name} has no sequence loader{why}; sequence data sets: "
                    f"{', '.join(sequence_datasets())}")
  cfg = {"num_negatives": None if name == "idw-synthetic" else 99, **(sequence_config or {})}
  if head_fraction is not None:
    cfg["head_fraction"] = head_fraction
  cfg.setdefault("head_fraction", DATASETS[name].head_fraction)
  try:
    seq_cfg = sequences.SequenceConfig(**cfg)
  except TypeError as e:
    raise SpecError(f"bad sequence_config {sequence_config} for {name}: {e}") from None

  if name in _GENERATED_SEQUENCES:
    try:
      return _GENERATED_SEQUENCES[name](dict(synthetic_config or {}), seq_cfg, name)
    except (TypeError, ValueError) as e:
      raise SpecError(f"bad options for {name}: {e}") from None
  if synthetic_config:
    raise SpecError(f"synthetic_config {synthetic_config} applies to generated data sets only, "
                    f"not to {name}")
  modified: dict[str, str] = {}
  if name in _MOVIELENS_SEQUENCES:
    path = _find_movielens(name, data_dir, download)
    folder_name = _FOLDER.get(name, name)
    modified = _check_modified(folder_name, path, allow_modified_data)
    files = sorted(p for p in pathlib.Path(path).iterdir() if p.is_file())
    meta = {"source": str(path), "has_timestamps": True}
    if name in _FOLDER:
      meta["subset"] = _ML_SUBSET
    build = lambda: _ml_sequences(name, path, seq_cfg, meta)
  else:
    from ltbench.data import amazon
    path = amazon.find_file(name.split("-")[1], data_dir)
    files = [path]
    build = lambda: _AMAZON_SEQUENCES[name](path, seq_cfg, name)
  key_src = {"format": SEQUENCE_FORMAT, "name": name,
             "sequence_config": dataclasses.asdict(seq_cfg),
             "source": str(pathlib.Path(path).resolve()), "content": sources.digest(files)}
  cached = _cache_file("sequences", name, key_src)
  data = None
  if use_cache and cached.exists():
    try:
      data = sequences.SequenceData.load(cached)
    except Exception as e:  # a corrupt cache entry is rebuilt, never fatal
      print(f"[ltbench] ignoring unreadable sequence cache {cached}: {e}", file=sys.stderr)
  if data is None:
    print(f"[ltbench] building {name} sequences from {path} ...", file=sys.stderr)
    try:
      data = build()
    except ValueError as e:  # options the data cannot meet, e.g. too many negatives
      raise SpecError(f"cannot build {name} sequences with {seq_cfg}: {e}") from None
    if use_cache:
      _write_cache(data, cached, "sequence")
  return _mark_modified(data, modified)


def locate(name: str, data_dir=None) -> str | None:
  """Where the data set's files are ("generated" when it is generated), or None if absent."""
  get(name)
  if name in ("synthetic", "bx-standin", "synthetic-periods") or name in _GENERATED_SEQUENCES:
    return "generated"
  if name in _PERIOD_FOLDER:
    found = sources.locate(_PERIOD_FOLDER[name], data_dir)
    if found is not None and name == "ml-1m-u2999-periods" and not (found / PART_RATINGS).exists():
      return None
    return None if found is None else str(found)
  if name in _AMAZON_SEQUENCES:
    from ltbench.data import amazon
    try:
      return str(amazon.find_file(name.split("-")[1], data_dir))
    except DataError:
      return None
  found = sources.locate(_FOLDER.get(name, name), data_dir)
  if found is not None and name in _FOLDER and not (found / PART_RATINGS).exists():
    return None
  return None if found is None else str(found)


def ensure_known(name: str) -> None:
  get(name)
  if name != "synthetic" and name not in sources.SOURCES:
    raise DataError(f"data set {name!r} has no registered source")
