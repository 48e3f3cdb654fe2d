"""Tests for finding, downloading and checking data sets; they never touch the network."""

import dataclasses
import hashlib
import pathlib
import zipfile

import pytest

from ltbench.data import sources
from ltbench.errors import DataError

ML1M_FILES = ("ratings.dat", "ratings_all_uir.csv", "users.dat", "movies.dat")


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
  """Keeps the real user cache, $LTBENCH_DATA and any proxy out of every test."""
  monkeypatch.delenv("LTBENCH_DATA", raising=False)
  monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
  for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy",
              "ALL_PROXY"):
    monkeypatch.delenv(var, raising=False)


def _dataset(folder: pathlib.Path, files=("ratings.dat", "users.dat", "movies.dat")):
  folder.mkdir(parents=True, exist_ok=True)
  for name in files:
    (folder / name).write_text(f"contents of {name}\n")
  return folder


def _zip(path: pathlib.Path, members: dict[str, str]) -> tuple[str, str]:
  """Writes a zip and returns its file:// URL and md5."""
  with zipfile.ZipFile(path, "w") as zf:
    for name, text in members.items():
      zf.writestr(name, text)
  return path.as_uri(), hashlib.md5(path.read_bytes()).hexdigest()


def _ml1m_zip(tmp_path):
  return _zip(tmp_path / "upstream.zip", {
      "ml-1m/ratings.dat": "1::1::5::978300760\n",
      "ml-1m/users.dat": "1::F::1::10::48067\n",
      "ml-1m/movies.dat": "1::Toy Story (1995)::Animation\n",
      "ml-1m/README": "readme\n",
      "__MACOSX/ml-1m/._users.dat": "junk",
  })


def test_registered_sources():
  assert set(sources.SOURCES) == {"ml-1m", "ml-100k", "book-crossing"}
  ml1m = sources.SOURCES["ml-1m"]
  assert ml1m.url == "https://files.grouplens.org/datasets/movielens/ml-1m.zip"
  assert ml1m.md5 == "c4d9eecfca2ab87c1945afe126590906"
  assert ("ratings_all_uir.csv", "users.dat", "movies.dat") in ml1m.required
  assert "ratings_all_uir.csv" in ml1m.known_derived_sha256
  assert "ratings_all_uir.csv" not in ml1m.known_sha256
  for source in sources.SOURCES.values():
    for digest in {**source.known_sha256, **source.known_derived_sha256}.values():
      assert len(digest) == 64 and int(digest, 16) >= 0
    assert "redistribute" in source.licence_note


def test_search_roots_order(tmp_path, monkeypatch):
  monkeypatch.setenv("LTBENCH_DATA", str(tmp_path / "env"))
  assert sources.search_roots(tmp_path / "dir") == [
      tmp_path / "dir", tmp_path / "env", tmp_path / "xdg" / "ltbench" / "data"]
  assert sources.search_roots() == [tmp_path / "env", tmp_path / "xdg" / "ltbench" / "data"]


def test_search_roots_default_cache(tmp_path, monkeypatch):
  monkeypatch.delenv("XDG_CACHE_HOME")
  monkeypatch.setenv("HOME", str(tmp_path / "home"))
  assert sources.search_roots() == [tmp_path / "home" / ".cache" / "ltbench" / "data"]


def test_locate_follows_the_search_order(tmp_path, monkeypatch):
  monkeypatch.setenv("LTBENCH_DATA", str(tmp_path / "env"))
  in_dir = _dataset(tmp_path / "dir" / "ml-1m")
  in_env = _dataset(tmp_path / "env" / "ml-1m")
  in_cache = _dataset(tmp_path / "xdg" / "ltbench" / "data" / "ml-1m")
  assert sources.locate("ml-1m", tmp_path / "dir") == in_dir
  assert sources.locate("ml-1m") == in_env
  monkeypatch.delenv("LTBENCH_DATA")
  assert sources.locate("ml-1m", tmp_path / "dir") == in_dir
  assert sources.locate("ml-1m") == in_cache
  assert in_env.is_dir()


@pytest.mark.parametrize("alternative", sources.SOURCES["ml-1m"].required)
def test_locate_accepts_each_alternative(tmp_path, alternative):
  folder = _dataset(tmp_path / "ml-1m", alternative)
  assert sources.locate("ml-1m", tmp_path) == folder


def test_locate_ml100k_and_incomplete_copies(tmp_path):
  _dataset(tmp_path / "ml-100k", ("u.data", "u.user", "u.item"))
  assert sources.locate("ml-100k", tmp_path) == tmp_path / "ml-100k"
  _dataset(tmp_path / "ml-1m", ("users.dat", "movies.dat"))
  assert sources.locate("ml-1m", tmp_path) is None


def test_locate_data_dir_is_the_dataset_folder(tmp_path):
  folder = _dataset(tmp_path / "my-copy", ("ratings_all_uir.csv", "users.dat", "movies.dat"))
  assert sources.locate("ml-1m", folder) == folder
  assert sources.locate("ml-100k", folder) is None


def test_download_from_a_file_url(tmp_path, capsys):
  url, md5 = _ml1m_zip(tmp_path)
  root = tmp_path / "root"
  folder = sources.download("ml-1m", root, url=url, md5=md5)
  assert folder == root / "ml-1m"
  assert sorted(p.name for p in folder.iterdir()) == [
      "README", "movies.dat", "ratings.dat", "users.dat"]
  assert (folder / "users.dat").read_text() == "1::F::1::10::48067\n"
  assert not (root / "ml-1m.zip.part").exists()
  assert not (root / "__MACOSX").exists()
  assert sorted(p.name for p in root.iterdir()) == ["ml-1m", "ml-1m.zip"]
  assert "%" in capsys.readouterr().err
  assert sources.locate("ml-1m", root) == folder


def test_download_wrong_md5(tmp_path):
  url, md5 = _ml1m_zip(tmp_path)
  root = tmp_path / "root"
  wrong = "0" * 32
  with pytest.raises(DataError) as err:
    sources.download("ml-1m", root, url=url, md5=wrong)
  message = str(err.value)
  assert wrong in message and md5 in message and url in message
  assert list(root.iterdir()) == []


def test_download_unreachable(tmp_path):
  url = "http://127.0.0.1:9/x.zip"  # the discard port on loopback: nothing listens there
  root = tmp_path / "root"
  with pytest.raises(DataError) as err:
    sources.download("ml-1m", root, url=url, timeout=5)
  message = str(err.value)
  assert url in message
  assert str(root / "ml-1m") in message
  assert sources.SOURCES["ml-1m"].md5 in message
  assert "--data-dir" in message and "LTBENCH_DATA" in message
  assert list(root.iterdir()) == []


def test_download_rejects_archives_without_the_folder_or_with_unsafe_paths(tmp_path):
  url, md5 = _zip(tmp_path / "a.zip", {"other/users.dat": "x"})
  with pytest.raises(DataError, match="has no folder ml-1m/"):
    sources.download("ml-1m", tmp_path / "a", url=url, md5=md5)
  for i, member in enumerate(["ml-1m/../evil", f"ml-1m/{tmp_path}/evil"]):
    url, md5 = _zip(tmp_path / f"b{i}.zip", {member: "x"})
    with pytest.raises(DataError, match="unsafe path"):
      sources.download("ml-1m", tmp_path / f"b{i}", url=url, md5=md5)
    assert not (tmp_path / f"b{i}" / "evil").exists() and not (tmp_path / "evil").exists()


def test_ensure_finds_a_local_copy(tmp_path):
  folder = _dataset(tmp_path / "ml-1m")
  assert sources.ensure("ml-1m", tmp_path, download_missing=False) == folder


def test_ensure_missing_without_download(tmp_path, monkeypatch):
  monkeypatch.setenv("LTBENCH_DATA", str(tmp_path / "env"))
  with pytest.raises(DataError) as err:
    sources.ensure("ml-1m", tmp_path / "dir", download_missing=False)
  message = str(err.value)
  for root in sources.search_roots(tmp_path / "dir"):
    assert str(root / "ml-1m") in message
  assert "ltbench data download ml-1m" in message
  assert sources.SOURCES["ml-1m"].url in message


def test_ensure_downloads_into_the_cache(tmp_path, monkeypatch):
  url, md5 = _ml1m_zip(tmp_path)
  source = dataclasses.replace(sources.SOURCES["ml-1m"], url=url, md5=md5)
  monkeypatch.setitem(sources.SOURCES, "ml-1m", source)
  folder = sources.ensure("ml-1m")
  assert folder == tmp_path / "xdg" / "ltbench" / "data" / "ml-1m"
  assert (folder / "ratings.dat").is_file()


def test_ensure_download_failure_says_where_it_looked(tmp_path, monkeypatch):
  source = dataclasses.replace(sources.SOURCES["ml-1m"], url="http://127.0.0.1:9/ml-1m.zip")
  monkeypatch.setitem(sources.SOURCES, "ml-1m", source)
  with pytest.raises(DataError) as err:
    sources.ensure("ml-1m", tmp_path / "dir")
  message = str(err.value)
  assert str(tmp_path / "dir" / "ml-1m") in message
  assert "http://127.0.0.1:9/ml-1m.zip" in message


@pytest.mark.parametrize("call", [
    lambda: sources.locate("ml-2m"),
    lambda: sources.ensure("ml-2m", download_missing=False),
    lambda: sources.download("ml-2m", "/nonexistent"),
    lambda: sources.verify("ml-2m", "."),
    lambda: sources.info("ml-2m"),
])
def test_unknown_dataset_lists_the_valid_names(call):
  with pytest.raises(DataError, match=r"'ml-2m'; valid names: book-crossing, ml-100k, ml-1m"):
    call()


def test_verify(tmp_path, monkeypatch):
  folder = _dataset(tmp_path / "ml-1m", ML1M_FILES)
  users_hash = hashlib.sha256((folder / "users.dat").read_bytes()).hexdigest()
  csv_hash = hashlib.sha256((folder / "ratings_all_uir.csv").read_bytes()).hexdigest()
  source = dataclasses.replace(
      sources.SOURCES["ml-1m"],
      known_sha256={"users.dat": users_hash, "movies.dat": "f" * 64},
      known_derived_sha256={"ratings_all_uir.csv": csv_hash})
  monkeypatch.setitem(sources.SOURCES, "ml-1m", source)
  movies_hash = hashlib.sha256((folder / "movies.dat").read_bytes()).hexdigest()
  assert sources.verify("ml-1m", folder) == {
      "ratings.dat": "unknown (no reference hash)",
      "users.dat": "verified",
      "movies.dat": f"MISMATCH (expected {'f' * 64}, got {movies_hash})",
      "ratings_all_uir.csv": "known derived copy",
  }
  (folder / "ratings.dat").unlink()
  assert "ratings.dat" not in sources.verify("ml-1m", folder)


def test_info_when_found(tmp_path, monkeypatch):
  monkeypatch.setenv("LTBENCH_DATA", str(tmp_path / "env"))
  folder = _dataset(tmp_path / "env" / "ml-1m")
  text = sources.info("ml-1m", tmp_path / "dir")
  for root in sources.search_roots(tmp_path / "dir"):
    assert str(root / "ml-1m") in text
  assert f"Using {folder}" in text
  assert "users.dat: MISMATCH" in text
  assert sources.SOURCES["ml-1m"].url in text and sources.SOURCES["ml-1m"].md5 in text
  assert "redistribute" in text


def test_info_when_missing(tmp_path):
  _dataset(tmp_path / "ml-100k", ("u.data",))
  text = sources.info("ml-100k", tmp_path)
  assert "incomplete (missing u.user, u.item)" in text
  assert "not available locally" in text
  assert "ltbench data download ml-100k" in text and "--data-dir" in text
  assert sources.SOURCES["ml-100k"].url in text


def test_digest(tmp_path):
  a = tmp_path / "a.dat"
  b = tmp_path / "b.dat"
  a.write_text("one")
  b.write_text("two")
  first = sources.digest([a, b])
  assert first == sources.digest([str(b), str(a)])
  assert len(first) == 64
  b.write_text("three")
  assert sources.digest([a, b]) != first
  with pytest.raises(DataError, match="cannot read"):
    sources.digest([tmp_path / "missing.dat"])
