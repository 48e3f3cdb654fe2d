"""Strict parsers for the official MovieLens 1M and 100K files.

A malformed line is a DataError that names the file, the 1-based line number and the line.
Blank lines are skipped. All files are read as Latin-1, the encoding of the originals.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import pathlib
import re

import numpy as np
import pandas as pd

from ltbench.errors import DataError

# The genre order of the 19 flags in u.item, used when u.genre is absent.
ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance",
    "Sci-Fi", "Thriller", "War", "Western")

ML1M_CSV_HEADER = "user_id,movie_id,rating"
_ENCODING = "latin-1"
_MIN_RATING, _MAX_RATING = 1, 5
# "Title (1995)", also "Title(1982)" and ML-100K's "Title (1995) (V)" (a video release).
_TITLE_YEAR = re.compile(r"^(?P<title>.*?)\s*\((?P<year>\d{4})\)(?P<video>\s*\(V\))?\s*$")
_RELEASE_DATE = re.compile(r"^\d{1,2}-[A-Za-z]{3}-(?P<year>\d{4})$")


@dataclasses.dataclass
class RawData:
  """The parsed files of one data set, with the original ids."""
  ratings: pd.DataFrame  # user, item, rating (int64), and timestamp (int64) when known
  users: pd.DataFrame  # user, gender, age, occupation, zip
  items: pd.DataFrame  # item, title (without the year), genres (list of str), year (-1: unknown)
  has_timestamps: bool
  files: list[pathlib.Path]
  name: str


def _advice(name: str) -> str:
  return (f"The file is damaged or not the official {name} file: check it with "
          f"`ltbench data info {name}`, and if it does not verify, download it again with "
          f"`ltbench data download {name}`.")


def _line_error(path, lineno: int, line: str, problem: str, name: str) -> DataError:
  return DataError(f"{path}, line {lineno}: {problem}.\n  line {lineno} reads: {line!r}\n"
                   f"{_advice(name)}")


def _open(path):
  try:
    return open(path, encoding=_ENCODING)
  except OSError as e:
    raise DataError(f"cannot read {path}: {e}. Check that the file exists and is readable."
                    ) from e


def _records(path, sep: str, n_fields: int, name: str, skip: int = 0):
  """Yields (line number, line, fields) for each non-blank line after the first `skip`."""
  with _open(path) as f:
    for lineno, raw in enumerate(f, 1):
      if lineno <= skip:
        continue
      line = raw.rstrip("\r\n")
      if not line.strip():
        continue
      fields = line.split(sep)
      if len(fields) != n_fields:
        raise _line_error(path, lineno, line, f"expected {n_fields} fields separated by "
                          f"{sep!r}, found {len(fields)}", name)
      yield lineno, line, fields


def _to_int(value: str, what: str, path, lineno: int, line: str, name: str) -> int:
  try:
    return int(value)
  except ValueError:
    raise _line_error(path, lineno, line, f"{what} {value!r} is not an integer", name) from None


def _split_title(title: str) -> tuple[str, int]:
  """Splits 'Toy Story (1995)' into ('Toy Story', 1995); the year is -1 when absent."""
  title = title.strip()
  match = _TITLE_YEAR.match(title)
  if not match:
    return title, -1
  return match["title"] + (" (V)" if match["video"] else ""), int(match["year"])


def _check_unique(ids: list[int], lines: list[int], what: str, path, name: str) -> None:
  seen = {}
  for value, lineno in zip(ids, lines):
    if value in seen:
      raise DataError(f"{path}, line {lineno}: {what} {value} is listed twice (first on line "
                      f"{seen[value]}).\n{_advice(name)}")
    seen[value] = lineno


def _read_line(path, lineno: int) -> str:
  with _open(path) as f:
    for i, raw in enumerate(f, 1):
      if i == lineno:
        return raw.rstrip("\r\n")
  return ""


# Ratings: a fast pandas path for well-formed files, and a line-by-line path that is the
# reference. Any doubt in the fast path hands over to the slow one, which either finds the
# exact bad line or (e.g. for blank lines) returns the same data.

def _fast_ratings(path, sep: str, columns: tuple[str, ...], skip: int):
  n = len(columns)
  # pandas' C parser takes one-character separators only; "::" becomes ":" with an empty
  # column between fields, which must then stay empty.
  double = sep == "::"
  # Trailing blank lines are harmless; blank lines inside would shift the line numbers.
  try:
    body = pathlib.Path(path).read_bytes().rstrip(b"\r\n")
  except OSError:
    return None  # the line-by-line path reports it
  if b"\n\n" in body or b"\n\r\n" in body:
    return None
  try:
    frame = pd.read_csv(io.BytesIO(body), sep=sep[0], header=None, skiprows=skip, engine="c",
                        quoting=csv.QUOTE_NONE, skip_blank_lines=False, encoding=_ENCODING)
  except (ValueError, pd.errors.ParserError):
    return None
  if frame.shape[1] != (2 * n - 1 if double else n) or len(frame) == 0:
    return None
  if double and not frame.iloc[:, 1::2].isna().all().all():
    return None
  value_columns = frame.iloc[:, ::2] if double else frame
  data = {}
  for column, (_, series) in zip(columns, value_columns.items()):
    if series.dtype != np.int64:
      return None
    data[column] = series.to_numpy()
  rating = data["rating"]
  if ((rating < _MIN_RATING) | (rating > _MAX_RATING)).any():
    return None
  lines = np.arange(skip + 1, skip + 1 + len(frame), dtype=np.int64)
  return pd.DataFrame(data), lines


def _slow_ratings(path, sep: str, columns: tuple[str, ...], skip: int, name: str):
  values = {c: [] for c in columns}
  lines = []
  for lineno, line, fields in _records(path, sep, len(columns), name, skip):
    for column, field in zip(columns, fields):
      values[column].append(_to_int(field, column, path, lineno, line, name))
    rating = values["rating"][-1]
    if not _MIN_RATING <= rating <= _MAX_RATING:
      raise _line_error(path, lineno, line, f"rating {rating} is outside "
                        f"{_MIN_RATING}..{_MAX_RATING}", name)
    lines.append(lineno)
  frame = pd.DataFrame({c: np.asarray(v, dtype=np.int64) for c, v in values.items()})
  return frame, np.asarray(lines, dtype=np.int64)


def _parse_ratings(path, sep: str, columns: tuple[str, ...], name: str, skip: int = 0):
  """Returns the ratings frame and the line number of each row."""
  parsed = _fast_ratings(path, sep, columns, skip)
  if parsed is None:
    parsed = _slow_ratings(path, sep, columns, skip, name)
  if len(parsed[0]) == 0:
    raise DataError(f"{path} holds no ratings. {_advice(name)}")
  return parsed


def _check_known(ratings: pd.DataFrame, lines: np.ndarray, column: str, known: pd.Series,
                 path, reference: pathlib.Path, name: str) -> None:
  """Raises when a rating refers to an id missing from the reference file."""
  ids = ratings[column].to_numpy()
  unknown = ~np.isin(ids, known.to_numpy())
  if unknown.any():
    first = int(np.argmax(unknown))
    lineno = int(lines[first])
    raise DataError(
        f"{path}, line {lineno}: {column} {ids[first]} is not in {reference.name}; "
        f"{int(unknown.sum())} rating(s) refer to {len(np.unique(ids[unknown]))} {column}(s) "
        f"missing from {reference}.\n"
        f"  line {lineno} reads: {_read_line(path, lineno)!r}\n"
        f"The ratings and {reference.name} do not belong to the same copy of {name}: "
        f"put the files of one copy together (check them with `ltbench data info {name}`).")


def _check_no_repeats(ratings: pd.DataFrame, lines: np.ndarray, path, name: str) -> None:
  """Raises on the first (user, item) pair rated twice. The MovieLens READMEs describe each
  line as one user's rating of one movie and the official files hold no repeats, so a repeat
  means a damaged or concatenated file; training on it would double-count interactions."""
  repeated = pd.DataFrame({"u": ratings["user"].to_numpy(), "i": ratings["item"].to_numpy()}
                          ).duplicated().to_numpy()
  if not repeated.any():
    return
  at = int(np.argmax(repeated))
  user, item = int(ratings["user"].iloc[at]), int(ratings["item"].iloc[at])
  first = int(np.flatnonzero((ratings["user"].to_numpy() == user)
                             & (ratings["item"].to_numpy() == item))[0])
  raise DataError(
      f"{path}, line {int(lines[at])}: user {user} rated item {item} again (first on line "
      f"{int(lines[first])}); {int(repeated.sum())} line(s) repeat an earlier (user, item) "
      f"pair. {name} has one rating per (user, item), so the file is damaged or two copies "
      f"were joined. {_advice(name)}")


def _require(folder: pathlib.Path, name: str, *groups: tuple[str, ...]) -> list[pathlib.Path]:
  """Returns, for each group of alternatives, the first file present in folder."""
  if not folder.is_dir():
    raise DataError(f"{folder} is not a folder. Pass the folder holding the {name} files "
                    f"(see `ltbench data info {name}`).")
  found, missing = [], []
  for alternatives in groups:
    present = [folder / f for f in alternatives if (folder / f).is_file()]
    if present:
      found.append(present[0])
    else:
      missing.append(" or ".join(alternatives))
  if missing:
    raise DataError(f"{folder} is not a complete copy of {name}: missing {', '.join(missing)}. "
                    f"Run `ltbench data info {name}` to see where ltbench looks and how to get "
                    f"the files.")
  return found


def _frame(rows: list[tuple], columns: tuple[str, ...]) -> pd.DataFrame:
  return pd.DataFrame.from_records(rows, columns=list(columns))


# MovieLens 1M

def _ml1m_users(path, name: str) -> pd.DataFrame:
  rows, lines = [], []
  for lineno, line, (user, gender, age, occupation, zip_code) in _records(path, "::", 5, name):
    rows.append((_to_int(user, "user id", path, lineno, line, name), gender,
                 _to_int(age, "age", path, lineno, line, name),
                 _to_int(occupation, "occupation", path, lineno, line, name), zip_code))
    lines.append(lineno)
  _check_unique([r[0] for r in rows], lines, "user", path, name)
  users = _frame(rows, ("user", "gender", "age", "occupation", "zip"))
  return users.astype({"user": np.int64, "age": np.int64, "occupation": np.int64})


def _ml1m_movies(path, name: str) -> pd.DataFrame:
  rows, lines = [], []
  for lineno, line, (item, full_title, genres) in _records(path, "::", 3, name):
    title, year = _split_title(full_title)
    rows.append((_to_int(item, "movie id", path, lineno, line, name), title,
                 [g for g in genres.split("|") if g], year))
    lines.append(lineno)
  _check_unique([r[0] for r in rows], lines, "movie", path, name)
  return _frame(rows, ("item", "title", "genres", "year")).astype(
      {"item": np.int64, "year": np.int64})


def load_ml1m(path, ratings_file: str | None = None) -> RawData:
  """Parses ML-1M from a folder: ratings.dat (with timestamps) or ratings_all_uir.csv.

  ratings_file names another ratings file in the folder instead: `*.dat` files are in the
  ratings.dat format (with timestamps), `*.csv` files in the ratings_all_uir.csv format.
  """
  name = "ml-1m"
  folder = pathlib.Path(path).expanduser()
  choices = (ratings_file,) if ratings_file else ("ratings.dat", "ratings_all_uir.csv")
  ratings_path, users_path, movies_path = _require(
      folder, name, choices, ("users.dat",), ("movies.dat",))
  users = _ml1m_users(users_path, name)
  items = _ml1m_movies(movies_path, name)
  has_timestamps = ratings_path.suffix == ".dat"
  if has_timestamps:
    ratings, lines = _parse_ratings(ratings_path, "::", ("user", "item", "rating", "timestamp"),
                                    name)
  else:
    header = _read_line(ratings_path, 1)
    if header.strip() != ML1M_CSV_HEADER:
      raise _line_error(ratings_path, 1, header, f"expected the header {ML1M_CSV_HEADER!r}",
                        name)
    ratings, lines = _parse_ratings(ratings_path, ",", ("user", "item", "rating"), name, skip=1)
  _check_known(ratings, lines, "user", users["user"], ratings_path, users_path, name)
  _check_known(ratings, lines, "item", items["item"], ratings_path, movies_path, name)
  _check_no_repeats(ratings, lines, ratings_path, name)
  return RawData(ratings=ratings, users=users, items=items, has_timestamps=has_timestamps,
                 files=[ratings_path, users_path, movies_path], name=name)


# MovieLens 100K

def _ml100k_users(path, name: str) -> pd.DataFrame:
  rows, lines = [], []
  for lineno, line, (user, age, gender, occupation, zip_code) in _records(path, "|", 5, name):
    rows.append((_to_int(user, "user id", path, lineno, line, name), gender,
                 _to_int(age, "age", path, lineno, line, name), occupation, zip_code))
    lines.append(lineno)
  _check_unique([r[0] for r in rows], lines, "user", path, name)
  users = _frame(rows, ("user", "gender", "age", "occupation", "zip"))
  return users.astype({"user": np.int64, "age": np.int64})


def _ml100k_genres(path, name: str) -> list[str]:
  by_index, last = {}, 0
  for lineno, line, (genre, index) in _records(path, "|", 2, name):
    by_index[_to_int(index, "genre index", path, lineno, line, name)] = genre
    last = lineno
  if sorted(by_index) != list(range(len(ML100K_GENRES))):
    raise DataError(f"{path}, line {last}: expected genres numbered 0..{len(ML100K_GENRES) - 1} "
                    f"(one per flag in u.item), found indices {sorted(by_index)}. "
                    f"{_advice(name)}")
  return [by_index[i] for i in range(len(ML100K_GENRES))]


def _ml100k_items(path, genre_names: list[str], name: str) -> pd.DataFrame:
  rows, lines = [], []
  n_fields = 5 + len(genre_names)
  for lineno, line, fields in _records(path, "|", n_fields, name):
    item = _to_int(fields[0], "movie id", path, lineno, line, name)
    title, _ = _split_title(fields[1])
    release = fields[2].strip()
    year = -1
    if release:
      match = _RELEASE_DATE.match(release)
      if not match:
        raise _line_error(path, lineno, line, f"release date {release!r} is not like "
                          f"'01-Jan-1995'", name)
      year = int(match["year"])
    flags = fields[5:]
    bad = [f for f in flags if f not in ("0", "1")]
    if bad:
      raise _line_error(path, lineno, line, f"genre flag {bad[0]!r} is not 0 or 1", name)
    rows.append((item, title, [g for g, f in zip(genre_names, flags) if f == "1"], year))
    lines.append(lineno)
  _check_unique([r[0] for r in rows], lines, "movie", path, name)
  return _frame(rows, ("item", "title", "genres", "year")).astype(
      {"item": np.int64, "year": np.int64})


def load_ml100k(path) -> RawData:
  """Parses ML-100K from a folder: u.data, u.user, u.item (and u.genre when present)."""
  name = "ml-100k"
  folder = pathlib.Path(path).expanduser()
  data_path, users_path, items_path = _require(folder, name, ("u.data",), ("u.user",),
                                               ("u.item",))
  files = [data_path, users_path, items_path]
  genre_path = folder / "u.genre"
  if genre_path.is_file():
    genre_names = _ml100k_genres(genre_path, name)
    files.append(genre_path)
  else:
    genre_names = list(ML100K_GENRES)
  users = _ml100k_users(users_path, name)
  items = _ml100k_items(items_path, genre_names, name)
  ratings, lines = _parse_ratings(data_path, "\t", ("user", "item", "rating", "timestamp"), name)
  _check_known(ratings, lines, "user", users["user"], data_path, users_path, name)
  _check_known(ratings, lines, "item", items["item"], data_path, items_path, name)
  _check_no_repeats(ratings, lines, data_path, name)
  return RawData(ratings=ratings, users=users, items=items, has_timestamps=True, files=files,
                 name=name)
