"""Where the raw data sets come from, where local copies are looked for, and how to check them.

MovieLens may not be redistributed, so ltbench never ships it: each user downloads the
official archive (or unpacks a copy they already have) into one of the search roots.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.client
import json
import os
import pathlib
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from typing import Iterable

from ltbench.errors import DataError

_CHUNK = 1 << 20
_PROGRESS_STEP = 5  # percent between progress lines
_NETWORK_ERRORS = (urllib.error.URLError, OSError, http.client.HTTPException, ValueError)

_MOVIELENS_LICENCE = (
    "MovieLens data (GroupLens Research, University of Minnesota) may be used for research "
    "only and may not be redistributed without separate permission: never commit or share "
    "the files; each user downloads them. Publications must cite F. Maxwell Harper and "
    "Joseph A. Konstan. 2015. The MovieLens Datasets: History and Context. ACM TiiS 5, 4, "
    "Article 19.")


@dataclasses.dataclass(frozen=True)
class Source:
  """An official data set archive and the files that make a complete local copy."""
  name: str
  url: str
  md5: str | None  # of the official zip; None: no verified download, copies are placed by hand
  archive_root: str  # the folder inside the zip
  # Alternatives: each is a tuple of file names that together make a complete copy.
  required: tuple[tuple[str, ...], ...]
  known_sha256: dict[str, str]  # official files only
  description: str
  licence_note: str
  # Files that are not official but are known, checked copies derived from them.
  known_derived_sha256: dict[str, str] = dataclasses.field(default_factory=dict)

  @property
  def files(self) -> tuple[str, ...]:
    """Every file name this source knows about, required ones first."""
    names = [f for alt in self.required for f in alt]
    names += list(self.known_sha256) + list(self.known_derived_sha256)
    return tuple(dict.fromkeys(names))


SOURCES: dict[str, Source] = {
    "ml-1m": Source(
        name="ml-1m",
        url="https://files.grouplens.org/datasets/movielens/ml-1m.zip",
        md5="c4d9eecfca2ab87c1945afe126590906",
        archive_root="ml-1m",
        required=(("ratings.dat", "users.dat", "movies.dat"),
                  ("ratings_all_uir.csv", "users.dat", "movies.dat")),
        known_sha256={
            "users.dat": "1dc3a95300cb19f7c10e027daf29b8cdf1d908dab65b5edfb45950aa389a10a3",
            "movies.dat": "0140fc2356357c1a851d0f52e893a1e4d3696df632c4141cea8d5bc3d621f0b9",
        },
        description=(
            "MovieLens 1M: 1,000,209 ratings (1-5) of 3,706 movies by 6,040 users, with "
            "user demographics and movie genres. A copy may hold ratings_all_uir.csv "
            "(user_id,movie_id,rating; no timestamps) instead of the official ratings.dat; "
            "time-ordered splits then cannot be made."),
        licence_note=_MOVIELENS_LICENCE,
        # A known timestamp-less copy of all 1,000,209 ratings (no byte-exact ratings.dat
        # was available to the developers). The official
        # ratings.dat has no hash here for the same reason.
        known_derived_sha256={
            "ratings_all_uir.csv":
                "47e459bb38bdb76916e37e1cad911bfb15c55c3a05c355e692bfe6817e7d2064",
        },
    ),
    "ml-100k": Source(
        name="ml-100k",
        url="https://files.grouplens.org/datasets/movielens/ml-100k.zip",
        md5="0e33842e24a9c977be4e0107933c0723",
        archive_root="ml-100k",
        required=(("u.data", "u.user", "u.item"),),
        known_sha256={
            "u.data": "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490",
            "u.item": "553841ebc7de3a0fd0d6b62a204ea30c1e651aacfb2814c7a6584ac52f2c5701",
            "u.user": "f120e114da2e8cf314fd28f99417c94ae9ddf1cb6db8ce0e4b5995d40e90e62c",
            "u.genre": "9757e0d3e6b298159a80dd48eaf938114690e911e39af97a76949ef1663610bb",
        },
        description=(
            "MovieLens 100K: 100,000 ratings (1-5) of 1,682 movies by 943 users, with "
            "user demographics, movie genres and release dates."),
        licence_note=_MOVIELENS_LICENCE,
    ),
    "book-crossing": Source(
        name="book-crossing",
        # The original host is gone (404) and no checksum of the zip is known, so ltbench
        # cannot download it.
        url="http://www2.informatik.uni-freiburg.de/~cziegler/BX/BX-CSV-Dump.zip",
        md5=None,
        archive_root="",
        required=(("BX-Book-Ratings.csv", "BX-Users.csv", "BX-Books.csv"),),
        known_sha256={},
        description=(
            "Book-Crossing (BX-CSV-Dump, 2004): 1,149,780 ratings (0 implicit, 1-10 explicit) "
            "of 271,379 books by 278,858 users, with user location and age and book title, "
            "author, year and publisher. No timestamps: splits are random."),
        licence_note=(
            "Book-Crossing is free for research use when acknowledged with: Cai-Nicolas "
            "Ziegler, Sean M. McNee, Joseph A. Konstan and Georg Lausen. 2005. Improving "
            "Recommendation Lists Through Topic Diversification. WWW '05. Its terms give no "
            "right to redistribute it, so ltbench never ships it: never commit or share the "
            "files."),
    ),
}


def get_source(name: str) -> Source:
  """Returns the registered Source, or raises a DataError listing the valid names."""
  try:
    return SOURCES[name]
  except KeyError:
    raise DataError(f"unknown data set {name!r}; valid names: {', '.join(sorted(SOURCES))}"
                    ) from None


def cache_root() -> pathlib.Path:
  """The per-user download folder: $XDG_CACHE_HOME/ltbench/data or ~/.cache/ltbench/data."""
  base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
  return pathlib.Path(base).expanduser() / "ltbench" / "data"


def _labelled_roots(data_dir=None) -> list[tuple[str, pathlib.Path]]:
  roots = []
  if data_dir is not None:
    roots.append(("--data-dir", pathlib.Path(data_dir).expanduser()))
  if os.environ.get("LTBENCH_DATA"):
    roots.append(("$LTBENCH_DATA", pathlib.Path(os.environ["LTBENCH_DATA"]).expanduser()))
  roots.append(("user cache", cache_root()))
  seen, unique = set(), []
  for label, root in roots:
    if root not in seen:
      seen.add(root)
      unique.append((label, root))
  return unique


def search_roots(data_dir=None) -> list[pathlib.Path]:
  """The folders searched for data sets, in order: data_dir, $LTBENCH_DATA, the user cache."""
  return [root for _, root in _labelled_roots(data_dir)]


def _candidates(source: Source, data_dir=None) -> list[tuple[str, pathlib.Path]]:
  """(label, folder) pairs where a copy may be, in search order."""
  out = []
  for label, root in _labelled_roots(data_dir):
    out.append((label, root / source.name))
    if label in ("--data-dir", "$LTBENCH_DATA"):
      # --data-dir and $LTBENCH_DATA may also name the data set folder itself.
      out.append((f"{label} itself", root))
  return out


def _complete_alternative(source: Source, folder: pathlib.Path) -> tuple[str, ...] | None:
  for alternative in source.required:
    if all((folder / f).is_file() for f in alternative):
      return alternative
  return None


def locate(name: str, data_dir=None) -> pathlib.Path | None:
  """Returns the first folder in the search roots holding a complete copy, else None."""
  source = get_source(name)
  for _, folder in _candidates(source, data_dir):
    if _complete_alternative(source, folder):
      return folder
  return None


def _by_hand(source: Source, target: pathlib.Path) -> str:
  """How to place a copy that ltbench cannot download (a source without md5)."""
  alternatives = " or ".join("(" + ", ".join(alt) + ")" for alt in source.required)
  return (
      f"the original host is gone ({source.url} returns 404) and no verified checksum of the "
      f"archive is known, so ltbench cannot download {source.name}. Put the files "
      f"{alternatives} of an intact copy into {target}/ by hand, or into DIR/{source.name}/ "
      f"(or DIR itself) and pass --data-dir DIR or set LTBENCH_DATA=DIR.")


def _how_to_get(source: Source, target: pathlib.Path) -> str:
  if source.md5 is None:
    return "To get it: " + _by_hand(source, target)
  alternatives = " or ".join("(" + ", ".join(alt) + ")" for alt in source.required)
  return (
      f"To get it, do one of:\n"
      f"  - run `ltbench data download {source.name}` (needs network access);\n"
      f"  - download {source.url} (md5 {source.md5}) on another machine and unzip it so "
      f"that the files {alternatives} are in {target}/;\n"
      f"  - put those files in any folder DIR (or DIR/{source.name}/) and pass "
      f"--data-dir DIR, or set LTBENCH_DATA=DIR.")


def _not_found(source: Source, data_dir=None) -> str:
  looked = "\n".join(f"  - {folder}  ({label})" for label, folder in _candidates(source, data_dir))
  return f"data set {source.name} was not found. Looked in (in order):\n{looked}"


def _size(n: int) -> str:
  return f"{n / 1e6:.1f} MB"


def _reason(error: Exception) -> str:
  # URLError wraps the socket error; HTTPError's own text holds the status code.
  if isinstance(error, urllib.error.URLError) and not isinstance(error, urllib.error.HTTPError):
    return str(error.reason)
  return str(error) or type(error).__name__


def _offline_error(source: Source, url: str, md5: str, target: pathlib.Path, reason) -> DataError:
  return DataError(
      f"could not download {source.name} from {url}: {reason}.\n"
      f"If this machine has no network access, fetch the archive elsewhere:\n"
      f"  1. download {url} (md5 {md5});\n"
      f"  2. unzip it so that its {source.archive_root}/ files are in {target}/\n"
      f"     (or in DIR/{source.name}/ and pass --data-dir DIR, or set LTBENCH_DATA=DIR).")


def download(name: str, root, url: str | None = None, md5: str | None = None,
             timeout: float = 60) -> pathlib.Path:
  """Downloads and md5-checks the official zip, unpacks it to root/NAME/ and returns that folder."""
  source = get_source(name)
  url = url or source.url
  md5 = md5 or source.md5
  root = pathlib.Path(root).expanduser()
  target = root / name
  if md5 is None:
    raise DataError(f"cannot download {name}: {_by_hand(source, target)}")
  md5 = md5.lower()
  part = root / f"{name}.zip.part"
  archive = root / f"{name}.zip"
  try:
    root.mkdir(parents=True, exist_ok=True)
  except OSError as e:
    raise DataError(f"cannot create the download folder {root}: {e}. Choose a writable folder "
                    f"with --data-dir DIR or LTBENCH_DATA=DIR.") from e

  print(f"[ltbench] downloading {name} from {url} to {root}", file=sys.stderr)
  hasher = hashlib.md5()
  try:
    try:
      response = urllib.request.urlopen(url, timeout=timeout)
    except _NETWORK_ERRORS as e:
      raise _offline_error(source, url, md5, target, _reason(e)) from e
    with response, open(part, "wb") as out:
      total = int(response.headers.get("Content-Length") or 0)
      done, next_report = 0, _PROGRESS_STEP
      while True:
        try:
          chunk = response.read(_CHUNK)
        except _NETWORK_ERRORS as e:
          raise _offline_error(source, url, md5, target, _reason(e)) from e
        if not chunk:
          break
        out.write(chunk)
        hasher.update(chunk)
        done += len(chunk)
        if total:
          percent = 100 * done // total
          if percent >= next_report:
            print(f"[ltbench]   {_size(done)} / {_size(total)} ({percent}%)", file=sys.stderr)
            next_report = (percent // _PROGRESS_STEP + 1) * _PROGRESS_STEP
        elif done >= next_report * _CHUNK:  # size unknown: a line every few MB
          print(f"[ltbench]   {_size(done)}", file=sys.stderr)
          next_report += _PROGRESS_STEP
    if total and done < total:
      raise _offline_error(source, url, md5, target,
                           f"the connection closed after {done} of {total} bytes")
    actual = hasher.hexdigest()
    if actual != md5:
      raise DataError(
          f"the archive downloaded from {url} is corrupt or not the official one: expected "
          f"md5 {md5}, got {actual}. The partial file was deleted; try again, or fetch the "
          f"archive by hand and check its md5.")
    part.replace(archive)
  except OSError as e:
    raise DataError(f"could not write {part}: {e}. Free some disk space or choose another "
                    f"folder with --data-dir DIR or LTBENCH_DATA=DIR.") from e
  finally:
    part.unlink(missing_ok=True)
  _extract(source, archive, target)
  if not _complete_alternative(source, target):
    raise DataError(f"{archive} unpacked to {target}, but that folder lacks the files of a "
                    f"complete copy ({' or '.join(', '.join(a) for a in source.required)}). "
                    f"Delete {archive} and {target} and download again.")
  print(f"[ltbench] {name} is ready in {target}", file=sys.stderr)
  return target


def _extract(source: Source, archive: pathlib.Path, target: pathlib.Path) -> None:
  """Unpacks the archive_root folder of the zip into target, refusing paths that escape it."""
  root = source.archive_root.strip("/")
  prefix = root + "/" if root else ""  # "": the files are at the top of the zip
  try:
    with zipfile.ZipFile(archive) as zf:
      members = [m for m in zf.infolist() if m.filename.startswith(prefix) and not m.is_dir()
                 and not m.filename.startswith("__MACOSX/")]
      if not members:
        where = f"folder {prefix}" if prefix else "files"
        raise DataError(f"{archive} has no {where}; it is not the {source.name} "
                        f"archive. Delete it and download {source.url} again.")
      # Unpack next to the target first, so an interrupted run leaves no half-written files.
      staging = pathlib.Path(tempfile.mkdtemp(prefix=f".{source.name}-", dir=target.parent))
      try:
        for member in members:
          relative = pathlib.PurePosixPath(member.filename[len(prefix):])
          parts = relative.parts
          if not parts or relative.is_absolute() or ".." in parts:
            raise DataError(f"{archive} holds an unsafe path {member.filename!r}; refusing to "
                            f"unpack it. Delete it and download {source.url} again.")
          dest = staging.joinpath(*parts)
          dest.parent.mkdir(parents=True, exist_ok=True)
          with zf.open(member) as src, open(dest, "wb") as dst:
            shutil.copyfileobj(src, dst, _CHUNK)
        for path in sorted(p for p in staging.rglob("*") if p.is_file()):
          dest = target / path.relative_to(staging)
          dest.parent.mkdir(parents=True, exist_ok=True)
          path.replace(dest)
      finally:
        shutil.rmtree(staging, ignore_errors=True)
  except zipfile.BadZipFile as e:
    raise DataError(f"{archive} is not a valid zip file ({e}). Delete it and download "
                    f"{source.url} again.") from e
  except OSError as e:
    raise DataError(f"could not unpack {archive} into {target}: {e}. Free some disk space or "
                    f"choose another folder with --data-dir DIR.") from e


def ensure(name: str, data_dir=None, download_missing: bool = True) -> pathlib.Path:
  """Returns the folder of a complete local copy, downloading it to the user cache if allowed."""
  source = get_source(name)
  found = locate(name, data_dir)
  if found is not None:
    return found
  if not download_missing:
    raise DataError(f"{_not_found(source, data_dir)}\n"
                    f"{_how_to_get(source, cache_root() / name)}\n"
                    f"Licence: {source.licence_note}")
  try:
    return download(name, cache_root())
  except DataError as e:
    raise DataError(f"{_not_found(source, data_dir)}\nand downloading it failed: {e}") from e


def _hash_cache_path() -> pathlib.Path:
  return cache_root().parent / "file-hashes.json"


def sha256_cached(path) -> str:
  """The sha256 of a file, remembered by resolved path, size and mtime (ns) in the user cache,
  so a large data file is hashed once, not on every run."""
  path = pathlib.Path(path).resolve()
  try:
    st = path.stat()
  except OSError as e:
    raise DataError(f"cannot read {path}: {e}. Check that the file exists and is readable.") from e
  stamp = [st.st_size, st.st_mtime_ns]
  cache_file = _hash_cache_path()
  try:
    known = json.loads(cache_file.read_text())
    if not isinstance(known, dict):
      known = {}
  except (OSError, ValueError):
    known = {}
  hit = known.get(str(path))
  if isinstance(hit, dict) and hit.get("stamp") == stamp and isinstance(hit.get("sha256"), str):
    return hit["sha256"]
  digest_ = sha256_file(path)
  known[str(path)] = {"stamp": stamp, "sha256": digest_}
  try:
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache_file.with_name(f".{cache_file.name}.{os.getpid()}")
    tmp.write_text(json.dumps(known))
    tmp.replace(cache_file)
  except OSError:
    pass  # a cache only
  return digest_


def sha256_file(path) -> str:
  """The sha256 of a file, read in chunks."""
  h = hashlib.sha256()
  try:
    with open(path, "rb") as f:
      for chunk in iter(lambda: f.read(_CHUNK), b""):
        h.update(chunk)
  except OSError as e:
    raise DataError(f"cannot read {path}: {e}. Check that the file exists and is readable.") from e
  return h.hexdigest()


def verify(name: str, path) -> dict[str, str]:
  """Checks each known file present in path against its reference sha256."""
  source = get_source(name)
  path = pathlib.Path(path)
  report = {}
  for fname in source.files:
    file = path / fname
    if not file.is_file():
      continue
    actual = sha256_cached(file)
    expected = source.known_sha256.get(fname)
    derived = source.known_derived_sha256.get(fname)
    if expected is not None:
      report[fname] = "verified" if actual == expected else (
          f"MISMATCH (expected {expected}, got {actual})")
    elif derived is not None:
      report[fname] = "known derived copy" if actual == derived else (
          f"MISMATCH (expected {derived}, got {actual})")
    else:
      report[fname] = "unknown (no reference hash)"
  return report


def _folder_state(source: Source, folder: pathlib.Path) -> str:
  alternative = _complete_alternative(source, folder)
  if alternative:
    return "found (" + ", ".join(alternative) + ")"
  if not folder.is_dir():
    return "absent"
  if not any((folder / f).is_file() for alt in source.required for f in alt):
    return f"no {source.name} files"
  missing = min(([f for f in alt if not (folder / f).is_file()] for alt in source.required),
                key=len)
  return "incomplete (missing " + ", ".join(missing) + ")"


def info(name: str, data_dir=None) -> str:
  """A human-readable report: where the data set was looked for, its checks and how to get it."""
  source = get_source(name)
  lines = [f"{source.name}: {source.description}", "", "Searched (in order):"]
  for label, folder in _candidates(source, data_dir):
    lines.append(f"  {folder}  [{label}]: {_folder_state(source, folder)}")
  found = locate(name, data_dir)
  lines.append("")
  if found is not None:
    checks = verify(name, found)
    lines.append(f"Using {found}. Files:")
    for fname, status in checks.items():
      lines.append(f"  {fname}: {status}")
    if any(s.startswith("MISMATCH") for s in checks.values()):
      lines.append("A MISMATCH means the file differs from the official one: results from it "
                   f"are not comparable. Re-download with `ltbench data download {name}`.")
  else:
    lines.append(f"{name} is not available locally.")
  archive = (f"(md5 {source.md5})" if source.md5 is not None
             else "(no longer served; no verified md5)")
  lines += ["", f"Official archive: {source.url} {archive}",
            f"Licence: {source.licence_note}"]
  if found is None:
    lines += ["", _how_to_get(source, cache_root() / name)]
  return "\n".join(lines)


def digest(paths: Iterable) -> str:
  """A combined sha256 over the files' names and contents, in sorted name order."""
  h = hashlib.sha256()
  for path in sorted((pathlib.Path(p) for p in paths), key=lambda p: (p.name, str(p))):
    h.update(f"{path.name}\0{sha256_cached(path)}\n".encode())
  return h.hexdigest()


def modified_files(name: str, path) -> dict[str, str]:
  """The files in path that fail their recorded checksum: {file name: 'MISMATCH (...)'}."""
  return {f: st for f, st in verify(name, path).items() if st.startswith("MISMATCH")}
