"""Tests for the Book-Crossing loader, on tiny fixtures written in the BX-CSV-Dump format."""

import hashlib
import math
import pathlib
import zipfile

import numpy as np
import pytest

from ltbench.data import bookcrossing, sources
from ltbench.data.bundle import Bundle
from ltbench.errors import DataError

# Line 8 holds a bare LF inside a quoted field, as in the real BX-Users.csv, so the record
# of user 7 spans lines 8-9 and user 8 is on line 10.
USERS = [
    '"User-ID";"Location";"Age"',
    '"1";"nyc, new york, usa";NULL',
    '"2";"stockton, california, usa";"18"',
    '"3";"moscow, yukon territory, russia";"25"',
    '"4";"porto, v.n.gaia, portugal";"17"',
    '"5";"farnborough, hants, united kingdom";"4"',
    '"6";"münchen, bayern, germany";"34"',
    '"7";"santa monica,\ncalifornia, usa";"43"',
    '"8";"ottawa, ontario, canada";"150"',
    '"9";"seattle, washington, usa";"NULL"',
    '"10";"";"30"',
    '"11";"port of spain, , trinidad &amp; tobago";"40"',
    '"12";"sydney, new south wales, australia";"100"',
]

BOOK_HEADER = ('"ISBN";"Book-Title";"Book-Author";"Year-Of-Publication";"Publisher";'
               '"Image-URL-S";"Image-URL-M";"Image-URL-L"')


def _book(isbn: str, title: str, author: str, year: str, publisher: str) -> str:
  urls = [f"http://images.amazon.com/images/P/{isbn}.01.{size}.jpg"
          for size in ("THUMBZZZ", "MZZZZZZZ", "LZZZZZZZ")]
  return ";".join(f'"{v}"' for v in (isbn, title, author, year, publisher, *urls))


BOOKS = [
    BOOK_HEADER,
    _book("0195153448", "Classical Mythology", "Mark P. O. Morford", "2002",
          "Oxford University Press"),
    _book("0002005018", "Clara Callan", "Richard Bruce Wright", "2001", "HarperFlamingo Canada"),
    _book("0060973129", "Decision in Normandy", "Carlo D'Este", "1991", "HarperPerennial"),
    _book("0374157065", "Flu: The Story of the Great Influenza Pandemic of 1918",
          "Gina Bari Kolata", "1999", "Farrar Straus Giroux"),
    _book("0393045218", "The Mummies of Urumchi", "E. J. W. Barber", "1999",
          "W. W. Norton &amp; Company"),
    _book("3257224281", 'Classical \\"Greek\\" Stories', "Anonymous", "1997", "Diogenes Verlag"),
    _book("2070360024", "L'Étranger", "Albert Camus", "1971", "Éditions Gallimard; Folio"),
    _book("074322678X", "Where You'll Find Me: And Other Stories", "Ann Beattie", "2002",
          "Scribner"),
    _book("0553213105", "Pride &amp; Prejudice", "Jane Austen", "2006", "Bantam Classics"),
    _book("0735201994", "Peter Rabbit", "Beatrix Potter", "0", "Warne"),
    _book("0375000000", "Future Book", "Some Author", "2030", "Pub"),
    _book("0000000001", "No Author Book", "", "1995", "Pub"),
    _book("0000000002", "", "Titleless Author", "1995", "Pub"),
]

RATINGS = [
    '"User-ID";"ISBN";"Book-Rating"',
    '"2";"0195153448";"0"',
    '"2";"0002005018";"5"',
    '"2";"0060973129";"0"',
    '"2";"0374157065";"8"',
    '"2";"0195153448";"7"',  # line 6: a repeated pair
    '"3";"0195153448";"10"',
    '"3";"0393045218";"0"',
    '"3";"3257224281";"6"',
    '"3";"9999999999";"5"',  # not in BX-Books
    '"4";"0195153448";"0"',
    '"4";"2070360024";"9"',
    '"4";"074322678x";"3"',
    '"4";"0553213105";"0"',
    '"6";"0195153448";"4"',
    '"6";"0002005018";"0"',
    '"7";"0195153448";"1"',
    '"7";"0735201994";"8"',  # year 0
    '"7";"0002005018";"2"',
    '"7";"0060973129";"0"',
    '"10";"0195153448";"0"',
    '"10";"0393045218";"0"',
    '"10";"3257224281";"0"',
    '"10";" 9999999999 ";"0"',  # not in BX-Books
    '"10";"0000000001";"5"',  # no author
    '"11";"0195153448";"6"',
    '"11";"0002005018";"7"',
    '"11";"0375000000";"9"',  # year 2030
    '"11";"0060973129";"8"',
    '"11";"0000000002";"3"',  # no title
    '"1";"0195153448";"5"',  # age NULL
    '"5";"0195153448";"5"',  # age 4
    '"8";"0002005018";"5"',  # age 150
    '"9";"0002005018";"5"',  # age "NULL"
    '"99";"0195153448";"5"',  # not in BX-Users
    '"12";"0195153448";"5"',  # age 100, a single rating
]

DEFAULT_REPORT = {"isbn_not_in_books": 2, "user_not_in_users": 1,
                  "age_missing_or_out_of_range": 4, "year_out_of_range": 2,
                  "title_or_author_empty": 2, "implicit": 0, "duplicate_pairs": 1}


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
  monkeypatch.delenv("LTBENCH_DATA", raising=False)
  monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))


def _write(path: pathlib.Path, lines: list[str]) -> None:
  path.write_bytes("".join(line + "\r\n" for line in lines).encode("latin-1"))


def _dump(folder: pathlib.Path, ratings=RATINGS, users=USERS, books=BOOKS) -> pathlib.Path:
  folder.mkdir(parents=True, exist_ok=True)
  _write(folder / "BX-Book-Ratings.csv", ratings)
  _write(folder / "BX-Users.csv", users)
  _write(folder / "BX-Books.csv", books)
  return folder


def test_parsed_values(tmp_path):
  raw = bookcrossing.load_bookcrossing(_dump(tmp_path / "book-crossing"))
  assert raw.name == "book-crossing" and not raw.has_timestamps and not raw.explicit_only
  assert [p.name for p in raw.files] == ["BX-Book-Ratings.csv", "BX-Users.csv", "BX-Books.csv"]
  assert list(raw.ratings.columns) == ["user", "item", "rating"]
  assert raw.ratings["user"].dtype == np.int64 and raw.ratings["rating"].dtype == np.int64
  users = raw.users.set_index("user")
  assert list(raw.users.columns) == ["user", "location", "country", "age"]
  assert len(users) == 12
  assert users.loc[6, "location"] == "münchen, bayern, germany"
  assert users.loc[6, "country"] == "germany"
  assert users.loc[7, "location"] == "santa monica,\ncalifornia, usa"
  assert users.loc[7, "country"] == "usa"
  assert users.loc[10, "country"] == ""
  assert users.loc[11, "country"] == "trinidad & tobago"
  assert math.isnan(users.loc[1, "age"]) and math.isnan(users.loc[9, "age"])
  assert users.loc[2, "age"] == 18.0
  items = raw.items.set_index("item")
  assert list(raw.items.columns) == ["item", "title", "author", "year", "publisher"]
  assert items.loc["3257224281", "title"] == 'Classical "Greek" Stories'
  assert items.loc["2070360024", "title"] == "L'Étranger"
  assert items.loc["2070360024", "publisher"] == "Éditions Gallimard; Folio"
  assert items.loc["0393045218", "publisher"] == "W. W. Norton & Company"
  assert items.loc["0553213105", "title"] == "Pride & Prejudice"
  assert items.loc["0735201994", "year"] == 0 and raw.items["year"].dtype == np.int64
  # Lower-case and padded ISBNs in the ratings match BX-Books.
  assert (4, "074322678X", 3) in set(raw.ratings.itertuples(index=False, name=None))


def test_filter_counts(tmp_path):
  raw = bookcrossing.load_bookcrossing(_dump(tmp_path))
  assert raw.filter_report == DEFAULT_REPORT
  assert len(raw.ratings) == len(RATINGS) - 1 - sum(DEFAULT_REPORT.values()) == 23
  assert set(raw.ratings["user"]) == {2, 3, 4, 6, 7, 10, 11, 12}
  assert not raw.ratings.duplicated(["user", "item"]).any()
  # The repeated pair keeps its explicit rating over the implicit 0.
  assert raw.ratings.set_index(["user", "item"]).loc[(2, "0195153448"), "rating"] == 7
  assert (raw.ratings["rating"] == 0).sum() == 9


def test_explicit_only(tmp_path):
  raw = bookcrossing.load_bookcrossing(_dump(tmp_path), explicit_only=True)
  assert raw.explicit_only
  assert raw.filter_report == {**DEFAULT_REPORT, "implicit": 10, "duplicate_pairs": 0}
  assert len(raw.ratings) == 14
  assert raw.ratings["rating"].between(1, 10).all()


def test_fast_reader_handles_the_quirks_and_agrees_with_the_record_reader(tmp_path,
                                                                          monkeypatch):
  folder = _dump(tmp_path)

  def unexpected(*args):
    raise AssertionError("the fast reader should have read the fixture")

  with monkeypatch.context() as m:
    m.setattr(bookcrossing, "_slow_table", unexpected)
    fast = bookcrossing.load_bookcrossing(folder)
  monkeypatch.setattr(bookcrossing, "_fast_table", lambda *args: None)
  slow = bookcrossing.load_bookcrossing(folder)
  for part in ("ratings", "users", "items"):
    assert getattr(fast, part).equals(getattr(slow, part)), part


def test_a_field_that_ends_in_a_backslash(tmp_path):
  # From the real dump: `\"` ends the title, so read with escapes the record loses a field.
  line = ('"078946697X";"DK Readers: Creating the X-Men (Level 4: Proficient Readers)\\";'
          '"Michael Teitelbaum";"2000";"DK Publishing Inc";"s";"m";"l"')
  raw = bookcrossing.load_bookcrossing(_dump(tmp_path, books=BOOKS + [line]))
  book = raw.items.set_index("item").loc["078946697X"]
  assert book["title"] == "DK Readers: Creating the X-Men (Level 4: Proficient Readers)\\"
  assert (book["author"], book["year"], book["publisher"]) == (
      "Michael Teitelbaum", 2000, "DK Publishing Inc")


# (file, record index in its list, bad record, the line it starts on, the problem). User
# records after USERS[7], which spans two lines, start one line further down.
@pytest.mark.parametrize("file, index, line, lineno, problem", [
    ("ratings", 5, '"2";"0195153448";"7";"x"', 6, "expected 3 fields"),
    ("ratings", 6, '"3";"0195153448";"ten"', 7, "Book-Rating 'ten' is not an integer"),
    ("ratings", 6, '"3";"0195153448";"11"', 7, "Book-Rating 11 is outside 0..10"),
    ("users", 8, '"8";"ottawa, ontario, canada";"150";"x"', 10, "expected 3 fields"),
    ("users", 12, '"2";"sydney, new south wales, australia";"100"', 14,
     "User-ID 2 is listed twice (first on line 3)"),
    ("users", 11, '"11";"port of spain";"forty"', 13, "Age 'forty' is neither"),
    ("books", 3, BOOKS[3].rsplit(";", 1)[0], 4, "expected 8 fields"),
    ("books", 1, BOOKS[1].replace('"2002"', '"2002a"'), 2,
     "Year-Of-Publication '2002a' is not an integer"),
])
def test_malformed_line(tmp_path, file, index, line, lineno, problem):
  files = {"ratings": RATINGS, "users": USERS, "books": BOOKS}
  files[file] = files[file][:index] + [line] + files[file][index + 1:]
  folder = _dump(tmp_path, **files)
  with pytest.raises(DataError) as err:
    bookcrossing.load_bookcrossing(folder)
  message = str(err.value)
  name = {"ratings": "BX-Book-Ratings.csv", "users": "BX-Users.csv", "books": "BX-Books.csv"}
  assert f"{folder / name[file]}, line {lineno}: {problem}" in message
  assert repr(line[:40])[:-1] in message
  assert "ltbench data info book-crossing" in message


def test_missing_file(tmp_path):
  folder = _dump(tmp_path)
  (folder / "BX-Users.csv").unlink()
  with pytest.raises(DataError, match="missing BX-Users.csv"):
    bookcrossing.load_bookcrossing(folder)


def test_bundle(tmp_path):
  folder = _dump(tmp_path)
  raw = bookcrossing.load_bookcrossing(folder)
  bundle = bookcrossing.bundle_from_bookcrossing(raw)
  # Users 6 (2 ratings) and 12 (1 rating) are dropped; 20 interactions of 9 books remain.
  assert (bundle.num_users, bundle.num_items) == (6, 9)
  for users in (bundle.valid_user, bundle.test_user):
    assert np.bincount(users, minlength=6).tolist() == [1] * 6
  assert bundle.num_train == 20 - 12
  assert int(bundle.head_mask.sum()) == 1
  assert bundle.item_counts[bundle.head_mask][0] == bundle.item_counts.max()
  for feats in (bundle.user_features, bundle.item_features):
    assert [f.name for f in feats.fields if f.group == "mem"] == [feats.fields[0].name]
  assert [f.name for f in bundle.user_features.fields] == ["user_id", "country", "age"]
  assert [f.name for f in bundle.item_features.fields] == [
      "item_id", "title", "author", "publisher", "year"]
  assert bundle.item_features.fields[1].vocab == 2  # "classical" and "stories"
  meta = bundle.meta
  assert meta["split"] == "leave-one-out random (split seed 0)" and meta["split_seed"] == 0
  assert meta["head_fraction"] == 0.001 and meta["has_timestamps"] is False
  assert meta["filter_report"] == DEFAULT_REPORT
  assert meta["checksum"] == sources.digest(raw.files)
  assert meta["source"] == str(folder)
  assert (meta["users_below_min"], meta["interactions_below_min"]) == (2, 3)
  # Each user's train, validation and test items are their filtered ratings.
  ratings = raw.ratings[~raw.ratings["user"].isin([6, 12])]
  pairs = np.concatenate([np.stack([u, i], 1) for u, i in (
      (bundle.train_user, bundle.train_item), (bundle.valid_user, bundle.valid_item),
      (bundle.test_user, bundle.test_item))])
  assert len(pairs) == len(ratings) == len({tuple(p) for p in pairs})
  bundle.save(tmp_path / "b.npz")
  assert Bundle.load(tmp_path / "b.npz").meta == meta


def test_bundle_split_seed_changes_the_split(tmp_path):
  raw = bookcrossing.load_bookcrossing(_dump(tmp_path))
  splits = [bookcrossing.bundle_from_bookcrossing(raw, split_seed=s).test_item
            for s in (0, 0, 1, 2)]
  assert np.array_equal(splits[0], splits[1])
  assert not all(np.array_equal(splits[0], s) for s in splits[2:])


def test_locate(tmp_path):
  folder = _dump(tmp_path / "data" / "book-crossing")
  assert sources.locate("book-crossing", tmp_path / "data") == folder
  assert sources.locate("book-crossing", folder) == folder
  assert sources.locate("ml-1m", tmp_path / "data") is None


def test_info_on_a_missing_copy_explains_the_manual_placement(tmp_path):
  text = sources.info("book-crossing", tmp_path)
  assert "not available locally" in text
  assert "returns 404" in text and "by hand" in text
  assert "BX-Book-Ratings.csv, BX-Users.csv, BX-Books.csv" in text
  assert str(tmp_path / "xdg" / "ltbench" / "data" / "book-crossing") in text
  assert "--data-dir" in text and "LTBENCH_DATA" in text
  assert "md5 None" not in text


def test_info_on_a_copy(tmp_path):
  folder = _dump(tmp_path / "book-crossing")
  text = sources.info("book-crossing", tmp_path)
  assert f"Using {folder}" in text
  assert "BX-Books.csv: unknown (no reference hash)" in text
  assert "no verified md5" in text


def test_download_refuses_without_a_checksum(tmp_path):
  root = tmp_path / "root"
  with pytest.raises(DataError) as err:
    sources.download("book-crossing", root)
  message = str(err.value)
  assert sources.SOURCES["book-crossing"].url in message and "404" in message
  assert str(root / "book-crossing") in message
  assert "--data-dir" in message and "LTBENCH_DATA" in message
  assert not root.exists()


def test_download_of_a_flat_zip_with_a_given_checksum(tmp_path):
  archive = tmp_path / "BX-CSV-Dump.zip"
  with zipfile.ZipFile(archive, "w") as zf:
    for name in ("BX-Book-Ratings.csv", "BX-Users.csv", "BX-Books.csv"):
      zf.writestr(name, "x\r\n")
    zf.writestr("__MACOSX/._BX-Users.csv", "junk")
  md5 = hashlib.md5(archive.read_bytes()).hexdigest()
  folder = sources.download("book-crossing", tmp_path / "root", url=archive.as_uri(), md5=md5)
  assert sorted(p.name for p in folder.iterdir()) == [
      "BX-Book-Ratings.csv", "BX-Books.csv", "BX-Users.csv"]
