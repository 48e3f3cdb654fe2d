"""Parser and Bundle builder for Book-Crossing, from the original BX-CSV-Dump files.

The three files are `;`-separated, fully quoted, Latin-1 and CRLF, with backslash-escaped
quotes, `;` and bare line feeds inside quoted fields, and HTML entities in the text. A fast
pandas reader handles those; whatever it rejects or leaves in doubt goes to a record-by-record
reader, which is the reference and reports the first bad record with its line number.

Filters and features follow CDN (KDD'23) Appendix B.2 and Table 7.
"""

from __future__ import annotations

import csv
import dataclasses
import html
import io
import pathlib

import numpy as np
import pandas as pd

from ltbench.data import features, movielens, sources
from ltbench.data.bundle import Bundle, Features, FieldSpec
from ltbench.data.splits import leave_one_out
from ltbench.errors import DataError

NAME = "book-crossing"
RATINGS_FILE, USERS_FILE, BOOKS_FILE = "BX-Book-Ratings.csv", "BX-Users.csv", "BX-Books.csv"
HEADERS = {
    RATINGS_FILE: ("User-ID", "ISBN", "Book-Rating"),
    USERS_FILE: ("User-ID", "Location", "Age"),
    BOOKS_FILE: ("ISBN", "Book-Title", "Book-Author", "Year-Of-Publication", "Publisher",
                 "Image-URL-S", "Image-URL-M", "Image-URL-L"),
}
AGE_RANGE = (5, 100)
# The dump is from 2004; year 0 and later years are placeholders or typos.
YEAR_RANGE = (1000, 2006)
_RATING_RANGE = (0, 10)  # 0 is implicit feedback
_ENCODING = "latin-1"
_CSV = {"delimiter": ";", "quotechar": '"', "escapechar": "\\"}
_SHOWN = 300  # characters of a bad record quoted in an error


@dataclasses.dataclass
class BookCrossingData(movielens.RawData):
  """RawData plus how the ratings were filtered."""
  # Ratings dropped by each filter, in the order the filters ran.
  filter_report: dict[str, int] = dataclasses.field(default_factory=dict)
  explicit_only: bool = False


def _advice() -> str:
  return (f"The file is damaged or is not the original BX-CSV-Dump file (converted copies, "
          f"e.g. comma-separated ones, are not read). Replace it with an intact original, or "
          f"fix or delete that line; `ltbench data info {NAME}` shows which files are used.")


def _line_error(path, lineno: int, text: str, problem: str) -> DataError:
  text = text.rstrip("\r\n")
  if len(text) > _SHOWN:
    text = text[:_SHOWN] + "..."
  return DataError(f"{path}, line {lineno}: {problem}.\n  line {lineno} reads: {text!r}\n"
                   f"{_advice()}")


def _open(path):
  try:
    return open(path, "rb")
  except OSError as e:
    raise DataError(f"cannot read {path}: {e}. Check that the file exists and is readable."
                    ) from e


def _physical_line(path, lineno: int) -> str:
  with _open(path) as f:
    for i, raw in enumerate(f, 1):
      if i == lineno:
        return raw.decode(_ENCODING)
  return ""


class _BadValue(Exception):
  """A value that does not convert; `row` is its record's position in the frame."""

  def __init__(self, row: int, problem: str, earlier: int | None = None):
    super().__init__(problem)
    self.row, self.problem, self.earlier = row, problem, earlier


# Reading: records as a frame of str, one column per header field.

def _fast_table(path, header: tuple[str, ...]) -> pd.DataFrame | None:
  """The records as read by pandas, or None when pandas rejects the file or leaves a doubt."""
  try:
    frame = pd.read_csv(path, sep=";", quotechar='"', escapechar="\\", encoding=_ENCODING,
                        dtype=str, keep_default_na=False, engine="c")
  except (ValueError, OSError):  # pandas' ParserError is a ValueError
    return None
  if tuple(frame.columns) != header:
    return None
  # pandas pads a short record with "" instead of rejecting it, and the real dump has some:
  # a field that ends in `\"` swallows the next one. The record reader re-reads those.
  if (frame[header[-1]] == "").any():
    return None
  return frame


class _Lines:
  """The decoded lines of a binary file, split at LF only so that line numbers count LFs."""

  def __init__(self, f):
    self._f = f
    self._taken: list[str] = []
    self.count = 0

  def __iter__(self):
    return self

  def __next__(self) -> str:
    line = next(self._f).decode(_ENCODING)
    self.count += 1
    self._taken.append(line)
    return line

  def take(self) -> str:
    """The text read since the last call."""
    text, self._taken = "".join(self._taken), []
    return text


def _without_escapes(text: str, n_fields: int) -> list[str] | None:
  """Re-reads one record taking backslashes literally; None unless that gives n_fields."""
  records = [r for r in csv.reader(io.StringIO(text, newline=""), delimiter=";", quotechar='"')
             if r]
  if len(records) == 1 and len(records[0]) == n_fields:
    return records[0]
  return None


def _slow_table(path, header: tuple[str, ...]) -> tuple[pd.DataFrame, np.ndarray]:
  """Reads record by record; returns the records and the line each one starts on."""
  n = len(header)
  rows, starts = [], []
  seen_header = False
  with _open(path) as f:
    lines = _Lines(f)
    reader = csv.reader(lines, **_CSV)
    while True:
      start = lines.count + 1
      try:
        fields = next(reader)
      except StopIteration:
        break
      except csv.Error as e:
        raise _line_error(path, start, lines.take() or _physical_line(path, start),
                          f"cannot read the record that starts here ({e})") from None
      text = lines.take()
      if not text.strip():
        continue
      if len(fields) != n:
        # A field ending in a backslash is written `...\"`, which reads as an escaped quote.
        fields = _without_escapes(text, n) or fields
      if len(fields) != n:
        raise _line_error(path, start, text, f"expected {n} fields separated by ';', found "
                          f"{len(fields)}")
      if not seen_header:
        if tuple(fields) != header:
          header_text = ";".join(f'"{h}"' for h in header)
          raise _line_error(path, start, text, f"expected the header {header_text}")
        seen_header = True
        continue
      rows.append(fields)
      starts.append(start)
  frame = pd.DataFrame(rows, columns=list(header), dtype=object)
  return frame, np.asarray(starts, dtype=np.int64)


def _read(path: pathlib.Path, convert) -> pd.DataFrame:
  """Reads one file and converts its records, reporting a bad value with its line."""
  header = HEADERS[path.name]
  frame = _fast_table(path, header)
  if frame is not None:
    try:
      return _nonempty(path, convert(frame))
    except _BadValue:
      pass  # the record reader is the reference: it finds the line, or reads it differently
  frame, starts = _slow_table(path, header)
  try:
    return _nonempty(path, convert(frame))
  except _BadValue as e:
    lineno = int(starts[e.row])
    problem = e.problem
    if e.earlier is not None:
      problem += f" (first on line {int(starts[e.earlier])})"
    raise _line_error(path, lineno, _physical_line(path, lineno), problem) from None


def _nonempty(path, frame: pd.DataFrame) -> pd.DataFrame:
  if frame.empty:
    raise DataError(f"{path} holds no records after its header. {_advice()}")
  return frame


# Converting: str columns to typed ones.

def _ints(column: pd.Series, what: str) -> np.ndarray:
  text = column.str.strip()
  ok = text.str.fullmatch(r"[+-]?\d+").to_numpy(dtype=bool)
  if not ok.all():
    row = int(np.argmin(ok))
    raise _BadValue(row, f"{what} {column.iloc[row]!r} is not an integer")
  return pd.to_numeric(text).to_numpy(dtype=np.int64)


def _text(column: pd.Series) -> pd.Series:
  return column.map(html.unescape).str.strip()


def _isbn(column: pd.Series) -> pd.Series:
  return column.str.strip().str.upper()


def _ratings(frame: pd.DataFrame) -> pd.DataFrame:
  rating = _ints(frame["Book-Rating"], "Book-Rating")
  bad = (rating < _RATING_RANGE[0]) | (rating > _RATING_RANGE[1])
  if bad.any():
    row = int(np.argmax(bad))
    raise _BadValue(row, f"Book-Rating {rating[row]} is outside "
                    f"{_RATING_RANGE[0]}..{_RATING_RANGE[1]}")
  return pd.DataFrame({"user": _ints(frame["User-ID"], "User-ID"),
                       "item": _isbn(frame["ISBN"]).to_numpy(), "rating": rating})


def _users(frame: pd.DataFrame) -> pd.DataFrame:
  user = _ints(frame["User-ID"], "User-ID")
  repeated = pd.Series(user).duplicated().to_numpy()
  if repeated.any():
    row = int(np.argmax(repeated))
    raise _BadValue(row, f"User-ID {user[row]} is listed twice",
                    earlier=int(np.argmax(user == user[row])))
  age_text = frame["Age"].str.strip()
  missing = age_text.str.upper().isin(["NULL", ""]).to_numpy()
  age = pd.to_numeric(age_text.where(~missing), errors="coerce").to_numpy(dtype=np.float64)
  bad = np.isnan(age) & ~missing
  if bad.any():
    row = int(np.argmax(bad))
    raise _BadValue(row, f"Age {frame['Age'].iloc[row]!r} is neither a number nor NULL")
  location = _text(frame["Location"])
  country = location.str.rsplit(",", n=1).str[-1].str.strip().str.lower()
  return pd.DataFrame({"user": user, "location": location.to_numpy(),
                       "country": country.to_numpy(), "age": age})


def _books(frame: pd.DataFrame) -> pd.DataFrame:
  books = pd.DataFrame({
      "item": _isbn(frame["ISBN"]).to_numpy(),
      "title": _text(frame["Book-Title"]).to_numpy(),
      "author": _text(frame["Book-Author"]).to_numpy(),
      "year": _ints(frame["Year-Of-Publication"], "Year-Of-Publication"),
      "publisher": _text(frame["Publisher"]).to_numpy()})
  # ISBNs that differ only in case or spaces are one book: the first entry stands.
  return books.drop_duplicates("item").reset_index(drop=True)


def _filter(ratings: pd.DataFrame, users: pd.DataFrame, items: pd.DataFrame,
            explicit_only: bool) -> tuple[pd.DataFrame, dict[str, int]]:
  """Drops ratings whose pair has invalid or missing features; counts each filter's drops."""
  valid_age = users.loc[users["age"].between(*AGE_RANGE), "user"]
  valid_year = items.loc[items["year"].between(*YEAR_RANGE), "item"]
  named = items.loc[(items["title"] != "") & (items["author"] != ""), "item"]
  steps = (
      ("isbn_not_in_books", lambda r: r["item"].isin(items["item"])),
      ("user_not_in_users", lambda r: r["user"].isin(users["user"])),
      ("age_missing_or_out_of_range", lambda r: r["user"].isin(valid_age)),
      ("year_out_of_range", lambda r: r["item"].isin(valid_year)),
      ("title_or_author_empty", lambda r: r["item"].isin(named)),
      ("implicit", lambda r: (r["rating"] > 0) | (not explicit_only)),
      # A repeated pair keeps its highest rating, so an explicit rating beats an implicit 0.
      ("duplicate_pairs", lambda r: ~r.sort_values("rating", ascending=False, kind="stable")
       .duplicated(["user", "item"]).reindex(r.index)),
  )
  report = {}
  for key, keep in steps:
    mask = keep(ratings).to_numpy(dtype=bool)
    report[key] = int((~mask).sum())
    ratings = ratings[mask]
  return ratings.reset_index(drop=True), report


def load_bookcrossing(path, explicit_only: bool = False) -> BookCrossingData:
  """Parses and filters Book-Crossing from a folder holding the three BX-*.csv files.

  Every rating row is feedback (implicit zeros too) unless explicit_only keeps ratings 1-10.
  """
  folder = pathlib.Path(path).expanduser()
  ratings_path, users_path, books_path = movielens._require(
      folder, NAME, (RATINGS_FILE,), (USERS_FILE,), (BOOKS_FILE,))
  ratings = _read(ratings_path, _ratings)
  users = _read(users_path, _users)
  items = _read(books_path, _books)
  ratings, report = _filter(ratings, users, items, explicit_only)
  return BookCrossingData(ratings=ratings, users=users, items=items, has_timestamps=False,
                          files=[ratings_path, users_path, books_path], name=NAME,
                          filter_report=report, explicit_only=explicit_only)


def bundle_from_bookcrossing(raw: movielens.RawData, head_fraction: float = 0.001,
                             split_seed: int = 0, min_user_interactions: int = 3) -> Bundle:
  """Builds the Bundle: random leave-one-out over users with >= min_user_interactions items.

  Head is the top head_fraction of items by training frequency (CDN: 0.1 %).
  """
  ratings = raw.ratings
  per_user = ratings.groupby("user")["user"].transform("size").to_numpy()
  keep = per_user >= min_user_interactions
  if not keep.any():
    raise DataError(f"no user of {NAME} in {raw.files[0].parent} has {min_user_interactions} "
                    f"or more interactions after filtering ({len(ratings)} ratings left). "
                    f"Check the files with `ltbench data info {NAME}`.")
  ratings = ratings[keep]
  u, user_ids = pd.factorize(ratings["user"], sort=True)
  i, item_ids = pd.factorize(ratings["item"], sort=True)
  u, i = u.astype(np.int32), i.astype(np.int32)
  users = raw.users.set_index("user").loc[user_ids].reset_index()
  items = raw.items.set_index("item").loc[item_ids].reset_index()
  part, _, split_kind = leave_one_out(u, None, split_seed)

  num_users, num_items = len(user_ids), len(item_ids)
  country, n_country = features.categorical(users["country"])
  user_features = Features(
      (FieldSpec("user_id", "categorical", num_users, "mem"),
       FieldSpec("country", "categorical", n_country),
       FieldSpec("age", "continuous")),
      {"user_id": np.arange(num_users, dtype=np.int32), "country": country,
       "age": features.standardise(users["age"].to_numpy())})
  title, n_title = features.multi_hot([features.title_tokens(t) for t in items["title"]],
                                      min_count=2)
  author, n_author = features.categorical(items["author"])
  publisher, n_publisher = features.categorical(items["publisher"])
  item_features = Features(
      (FieldSpec("item_id", "categorical", num_items, "mem"),
       FieldSpec("title", "multi_hot", n_title),
       FieldSpec("author", "categorical", n_author),
       FieldSpec("publisher", "categorical", n_publisher),
       FieldSpec("year", "continuous")),
      {"item_id": np.arange(num_items, dtype=np.int32), "title": title, "author": author,
       "publisher": publisher, "year": features.standardise(items["year"].to_numpy())})
  meta = {
      "source": str(raw.files[0].parent), "files": [p.name for p in raw.files],
      "checksum": sources.digest(raw.files), "has_timestamps": False,
      "filter_report": dict(getattr(raw, "filter_report", {})),
      "explicit_only": bool(getattr(raw, "explicit_only", False)),
      "min_user_interactions": min_user_interactions,
      "users_below_min": int(raw.ratings["user"].nunique() - num_users),
      "interactions_below_min": int((~keep).sum()),
      "split": split_kind, "split_seed": split_seed,
  }
  return features.assemble(raw.name, u, i, part, num_users, num_items, user_features,
                           item_features, head_fraction, meta)
