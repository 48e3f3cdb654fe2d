"""Tests for the MovieLens parsers, on tiny fixtures written in the official formats."""

import pathlib

import numpy as np
import pytest

from ltbench.data import movielens
from ltbench.errors import DataError

# The real data, when a checkout sits beside a `shared/data` folder (else the test skips).
REAL_ML1M = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-1m"

ML1M_USERS = "1::F::1::10::48067\n2::M::56::16::70072\n3::M::25::15::55117\n"
ML1M_MOVIES = ("1::Toy Story (1995)::Animation|Children's|Comedy\n"
               "73::Misérables, Les (1995)::Drama|Musical\n"
               "1001::Associate, The (L'Associe)(1982)::Comedy\n"
               "2000::Untitled::Drama\n")
ML1M_RATINGS_DAT = ("1::1::5::978300760\n"
                    "1::73::3::978302109\n"
                    "2::1001::4::978301968\n"
                    "3::2000::1::978300275\n")
ML1M_RATINGS_CSV = "user_id,movie_id,rating\n1,1,5\n1,73,3\n2,1001,4\n3,2000,1\n"


def _write(path: pathlib.Path, text: str) -> pathlib.Path:
  path.write_bytes(text.encode("latin-1"))
  return path


def _ml1m(folder: pathlib.Path, dat: str | None = ML1M_RATINGS_DAT,
          csv: str | None = None) -> pathlib.Path:
  folder.mkdir(parents=True, exist_ok=True)
  _write(folder / "users.dat", ML1M_USERS)
  _write(folder / "movies.dat", ML1M_MOVIES)
  if dat is not None:
    _write(folder / "ratings.dat", dat)
  if csv is not None:
    _write(folder / "ratings_all_uir.csv", csv)
  return folder


def test_ml1m_ratings_dat_has_timestamps(tmp_path):
  raw = movielens.load_ml1m(_ml1m(tmp_path))
  assert raw.name == "ml-1m"
  assert raw.has_timestamps
  assert list(raw.ratings.columns) == ["user", "item", "rating", "timestamp"]
  assert all(raw.ratings[c].dtype == np.int64 for c in raw.ratings.columns)
  assert raw.ratings["item"].tolist() == [1, 73, 1001, 2000]
  assert raw.ratings["timestamp"].tolist()[:2] == [978300760, 978302109]
  assert [p.name for p in raw.files] == ["ratings.dat", "users.dat", "movies.dat"]


def test_ml1m_csv_has_no_timestamps(tmp_path):
  raw = movielens.load_ml1m(_ml1m(tmp_path, dat=None, csv=ML1M_RATINGS_CSV))
  assert not raw.has_timestamps
  assert list(raw.ratings.columns) == ["user", "item", "rating"]
  assert raw.ratings.values.tolist() == [[1, 1, 5], [1, 73, 3], [2, 1001, 4], [3, 2000, 1]]
  assert raw.files[0].name == "ratings_all_uir.csv"


def test_ml1m_prefers_ratings_dat(tmp_path):
  raw = movielens.load_ml1m(_ml1m(tmp_path, csv=ML1M_RATINGS_CSV))
  assert raw.has_timestamps
  assert raw.files[0].name == "ratings.dat"


def test_ml1m_both_formats_give_the_same_ratings(tmp_path):
  dat = movielens.load_ml1m(_ml1m(tmp_path / "a"))
  csv = movielens.load_ml1m(_ml1m(tmp_path / "b", dat=None, csv=ML1M_RATINGS_CSV))
  assert dat.ratings.drop(columns="timestamp").equals(csv.ratings)


def test_ml1m_titles_years_genres_and_latin1(tmp_path):
  items = movielens.load_ml1m(_ml1m(tmp_path)).items.set_index("item")
  assert items.loc[1, "title"] == "Toy Story"
  assert items.loc[1, "year"] == 1995
  assert items.loc[1, "genres"] == ["Animation", "Children's", "Comedy"]
  assert items.loc[73, "title"] == "Misérables, Les"
  assert items.loc[1001, "title"] == "Associate, The (L'Associe)"
  assert items.loc[1001, "year"] == 1982
  assert items.loc[2000, "title"] == "Untitled"
  assert items.loc[2000, "year"] == -1
  assert items["year"].dtype == np.int64


def test_ml1m_users(tmp_path):
  users = movielens.load_ml1m(_ml1m(tmp_path)).users
  assert list(users.columns) == ["user", "gender", "age", "occupation", "zip"]
  assert users.iloc[0].tolist() == [1, "F", 1, 10, "48067"]
  assert users["age"].dtype == np.int64 and users["occupation"].dtype == np.int64


def test_blank_and_crlf_lines_are_accepted(tmp_path):
  lines = ML1M_RATINGS_DAT.splitlines()
  dat = "\r\n".join(lines[:2] + [""] + lines[2:]) + "\r\n\r\n"
  raw = movielens.load_ml1m(_ml1m(tmp_path, dat=dat))
  assert raw.ratings["rating"].tolist() == [5, 3, 4, 1]
  assert raw.ratings["timestamp"].dtype == np.int64


@pytest.mark.parametrize("bad_line, problem", [
    ("2::1001::4", "expected 4 fields"),
    ("2::1001::x::978301968", "'x' is not an integer"),
    ("2::1001::7::978301968", "rating 7 is outside 1..5"),
])
def test_ml1m_malformed_ratings_dat(tmp_path, bad_line, problem):
  lines = ML1M_RATINGS_DAT.splitlines()
  lines[2] = bad_line
  folder = _ml1m(tmp_path, dat="\n".join(lines) + "\n")
  with pytest.raises(DataError) as err:
    movielens.load_ml1m(folder)
  message = str(err.value)
  assert str(folder / "ratings.dat") in message
  assert "line 3:" in message
  assert problem in message
  assert repr(bad_line) in message
  assert "ltbench data download ml-1m" in message


@pytest.mark.parametrize("bad_line, problem", [
    ("2,1001", "expected 3 fields"),
    ("2,1001,four", "'four' is not an integer"),
    ("2,1001,7", "rating 7 is outside 1..5"),
])
def test_ml1m_malformed_csv_counts_the_header(tmp_path, bad_line, problem):
  lines = ML1M_RATINGS_CSV.splitlines()
  lines[3] = bad_line
  folder = _ml1m(tmp_path, dat=None, csv="\n".join(lines) + "\n")
  with pytest.raises(DataError, match=r"ratings_all_uir\.csv, line 4: ") as err:
    movielens.load_ml1m(folder)
  assert problem in str(err.value)


def test_ml1m_line_numbers_after_a_blank_line(tmp_path):
  lines = ML1M_RATINGS_DAT.splitlines()
  lines[3] = "3::2000::0::978300275"
  folder = _ml1m(tmp_path, dat="\n".join(lines[:1] + [""] + lines[1:]) + "\n")
  with pytest.raises(DataError, match=r"ratings\.dat, line 5: rating 0 is outside"):
    movielens.load_ml1m(folder)


def test_ml1m_wrong_csv_header(tmp_path):
  folder = _ml1m(tmp_path, dat=None, csv=ML1M_RATINGS_CSV.replace("user_id", "uid"))
  with pytest.raises(DataError, match=r"ratings_all_uir\.csv, line 1: expected the header"):
    movielens.load_ml1m(folder)


def test_ml1m_malformed_users_and_movies(tmp_path):
  folder = _ml1m(tmp_path)
  _write(folder / "users.dat", ML1M_USERS + "4::M::old::15::55117\n")
  with pytest.raises(DataError, match=r"users\.dat, line 4: age 'old' is not an integer"):
    movielens.load_ml1m(folder)
  _write(folder / "users.dat", ML1M_USERS)
  _write(folder / "movies.dat", ML1M_MOVIES + "5::Father of the Bride Part II (1995)\n")
  with pytest.raises(DataError, match=r"movies\.dat, line 5: expected 3 fields"):
    movielens.load_ml1m(folder)


def test_ml1m_duplicate_user(tmp_path):
  folder = _ml1m(tmp_path)
  _write(folder / "users.dat", ML1M_USERS + "2::F::18::3::12345\n")
  with pytest.raises(DataError, match=r"users\.dat, line 4: user 2 is listed twice"):
    movielens.load_ml1m(folder)


def test_ml1m_unknown_user_in_ratings(tmp_path):
  folder = _ml1m(tmp_path, dat=ML1M_RATINGS_DAT + "99::1::3::978300275\n")
  with pytest.raises(DataError) as err:
    movielens.load_ml1m(folder)
  message = str(err.value)
  assert "ratings.dat, line 5: user 99 is not in users.dat" in message


def test_ml1m_unknown_item_in_ratings(tmp_path):
  folder = _ml1m(tmp_path, dat=None, csv=ML1M_RATINGS_CSV + "2,4242,3\n")
  with pytest.raises(DataError, match=r"line 6: item 4242 is not in movies\.dat"):
    movielens.load_ml1m(folder)


def test_ml1m_missing_files(tmp_path):
  folder = _ml1m(tmp_path, dat=None)
  with pytest.raises(DataError, match=r"missing ratings\.dat or ratings_all_uir\.csv"):
    movielens.load_ml1m(folder)
  with pytest.raises(DataError, match="is not a folder"):
    movielens.load_ml1m(tmp_path / "nowhere")


def test_empty_ratings(tmp_path):
  with pytest.raises(DataError, match="holds no ratings"):
    movielens.load_ml1m(_ml1m(tmp_path, dat=""))


def test_fast_and_line_by_line_ratings_parsers_agree(tmp_path):
  # The fast path must not silently differ from the reference parser it stands in for.
  path = _write(tmp_path / "ratings.dat", ML1M_RATINGS_DAT)
  columns = ("user", "item", "rating", "timestamp")
  fast = movielens._fast_ratings(path, "::", columns, 0)
  assert fast is not None
  slow = movielens._slow_ratings(path, "::", columns, 0, "ml-1m")
  assert fast[0].equals(slow[0])
  assert fast[1].tolist() == slow[1].tolist() == [1, 2, 3, 4]


# MovieLens 100K

ML100K_DATA = "196\t242\t3\t881250949\n186\t302\t3\t891717742\n22\t377\t1\t878887116\n"
ML100K_USERS = ("22|25|M|writer|40206\n186|39|F|executive|00000\n"
                "196|49|M|writer|55105\n")
ML100K_GENRE = "".join(f"{g}|{i}\n" for i, g in enumerate(movielens.ML100K_GENRES)) + "\n"


def _flags(*indices):
  return "|".join("1" if i in indices else "0" for i in range(19))


ML100K_ITEMS = (
    f"242|Kolya (1996)|24-Jan-1997||http://us.imdb.com/M/title-exact?Kolya%20(1996)|{_flags(5)}\n"
    f"302|L.A. Confidential (1997)|01-Jan-1997||http://x|{_flags(6, 10, 13, 16)}\n"
    f"377|Héavyweights (1994) |4-Feb-1971||http://x|{_flags(4, 5)}\n"
    f"267|unknown||||{_flags(0)}\n")


def _ml100k(folder: pathlib.Path, genre: bool = True) -> pathlib.Path:
  folder.mkdir(parents=True, exist_ok=True)
  _write(folder / "u.data", ML100K_DATA)
  _write(folder / "u.user", ML100K_USERS)
  _write(folder / "u.item", ML100K_ITEMS)
  if genre:
    _write(folder / "u.genre", ML100K_GENRE)
  return folder


def test_ml100k(tmp_path):
  raw = movielens.load_ml100k(_ml100k(tmp_path))
  assert raw.name == "ml-100k" and raw.has_timestamps
  assert raw.ratings.values.tolist()[0] == [196, 242, 3, 881250949]
  assert [p.name for p in raw.files] == ["u.data", "u.user", "u.item", "u.genre"]
  users = raw.users.set_index("user")
  assert users.loc[186].tolist() == ["F", 39, "executive", "00000"]
  items = raw.items.set_index("item")
  assert items.loc[242, "title"] == "Kolya" and items.loc[242, "year"] == 1997
  assert items.loc[302, "genres"] == ["Crime", "Film-Noir", "Mystery", "Thriller"]
  assert items.loc[377, "title"] == "Héavyweights" and items.loc[377, "year"] == 1971
  assert items.loc[267, "year"] == -1 and items.loc[267, "genres"] == ["unknown"]


def test_ml100k_genre_names_from_u_genre(tmp_path):
  folder = _ml100k(tmp_path)
  _write(folder / "u.genre", ML100K_GENRE.replace("Comedy|5", "Funny|5"))
  items = movielens.load_ml100k(folder).items.set_index("item")
  assert items.loc[242, "genres"] == ["Funny"]


def test_ml100k_without_u_genre_uses_the_standard_names(tmp_path):
  raw = movielens.load_ml100k(_ml100k(tmp_path, genre=False))
  assert raw.items.set_index("item").loc[242, "genres"] == ["Comedy"]
  assert [p.name for p in raw.files] == ["u.data", "u.user", "u.item"]


@pytest.mark.parametrize("bad_line, problem", [
    ("186\t302\t3", "expected 4 fields"),
    ("186\t302\tthree\t891717742", "'three' is not an integer"),
    ("186\t302\t7\t891717742", "rating 7 is outside 1..5"),
])
def test_ml100k_malformed_u_data(tmp_path, bad_line, problem):
  folder = _ml100k(tmp_path)
  lines = ML100K_DATA.splitlines()
  lines[1] = bad_line
  _write(folder / "u.data", "\n".join(lines) + "\n")
  with pytest.raises(DataError, match=r"u\.data, line 2: ") as err:
    movielens.load_ml100k(folder)
  assert problem in str(err.value)
  assert "ltbench data download ml-100k" in str(err.value)


def test_ml100k_malformed_u_item(tmp_path):
  folder = _ml100k(tmp_path)
  _write(folder / "u.item", ML100K_ITEMS.replace("24-Jan-1997", "1997-01-24"))
  with pytest.raises(DataError, match=r"u\.item, line 1: release date '1997-01-24'"):
    movielens.load_ml100k(folder)
  _write(folder / "u.item", ML100K_ITEMS.replace("|0|0|0\n267", "|0|0|2\n267"))
  with pytest.raises(DataError, match=r"u\.item, line 3: genre flag '2' is not 0 or 1"):
    movielens.load_ml100k(folder)


def test_ml100k_unknown_item(tmp_path):
  folder = _ml100k(tmp_path)
  _write(folder / "u.data", ML100K_DATA + "22\t9999\t4\t878887116\n")
  with pytest.raises(DataError, match=r"u\.data, line 4: item 9999 is not in u\.item"):
    movielens.load_ml100k(folder)


@pytest.mark.skipif(not REAL_ML1M.is_dir(), reason="real ML-1M not available here")
def test_real_ml1m():
  raw = movielens.load_ml1m(REAL_ML1M)
  assert len(raw.ratings) == 1_000_209
  assert raw.ratings["user"].nunique() == 6_040
  assert raw.ratings["item"].nunique() == 3_706
  assert len(raw.users) == 6_040
  assert not raw.has_timestamps

