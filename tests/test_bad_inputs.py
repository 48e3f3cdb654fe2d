"""Bad input, end to end: every case gives the right exit code, a message that names the
file, option or line, and loses or doubles no finished trial. Plus two writers on one
results folder, a crash mid-write, and what is reproducible.

One small trained results folder (Two-tower, seeds 0 and 1, 2 epochs, synthetic data) is
shared by the module and copied per case; only the crash, concurrency and reproducibility
tests train again (with the same program, so nothing recompiles in this process).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys

import pytest

import ltbench
from ltbench import cli
from ltbench.data import registry, sources
from ltbench.harness import runner, store
from ltbench.harness.spec import MAX_SEED, check_seeds

REPO = pathlib.Path(__file__).resolve().parents[1]
RUN = ("run", "cdn/table2", "--quick", "--rows", "Two-tower", "--seeds", "0,1", "--epochs", "2")
FOLDER = pathlib.PurePath("cdn", "table2-quick-epochs2")
PAIRS = [("Two-tower", 0), ("Two-tower", 1)]


def ltbench_cli(argv, capsys) -> tuple[int, str]:
  """(exit code, stdout + stderr) of `ltbench argv`, argparse's own exits included."""
  try:
    code = cli.main([str(a) for a in argv])
  except SystemExit as e:
    code = e.code
  captured = capsys.readouterr()
  return code, captured.out + captured.err


@pytest.fixture(autouse=True)
def isolated_data(tmp_path, monkeypatch):
  monkeypatch.delenv("LTBENCH_DATA", raising=False)
  monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  """A results root holding one finished quick run, and that run's stderr."""
  root = tmp_path_factory.mktemp("trained")
  err = io.StringIO()  # the progress lines (capsys is function-scoped)
  with contextlib.redirect_stderr(err):
    code = cli.main(list(RUN) + ["--out", str(root)])
  err = err.getvalue()
  assert code == 0, err
  return root, err


@pytest.fixture
def results(trained, tmp_path):
  root = tmp_path / "results"
  shutil.copytree(trained[0], root)
  return root


def ok_lines(folder: pathlib.Path) -> dict[tuple[str, int], int]:
  """How many well-formed ok records of each (row, seed) the file holds, raw."""
  counts: dict[tuple[str, int], int] = {}
  path = folder / "trials.jsonl"
  for line in path.read_text().splitlines() if path.exists() else []:
    try:
      t = json.loads(line)
    except ValueError:
      continue
    if isinstance(t, dict) and t.get("status") == "ok" and "row" in t and "seed" in t:
      counts[(t["row"], t["seed"])] = counts.get((t["row"], t["seed"]), 0) + 1
  return counts


def counted(folder: pathlib.Path) -> list[tuple[str, int]]:
  trials, _ = store.read_trials(folder / "trials.jsonl", report=False)
  return sorted((t["row"], t["seed"]) for t in trials if t["status"] == "ok")


def same_fields(root: pathlib.Path) -> list[dict]:
  """The trial records without their wall time and finishing time."""
  return [{k: v for k, v in t.items() if k not in ("wall_time_s", "finished", "git_commit")}
          for t in store.read_trials(root / FOLDER / "trials.jsonl", report=False)[0]]


# -- ML-100K fixtures in the official format ---------------------------------------------

def ml100k(folder: pathlib.Path, ratings: list[str] | None = None) -> pathlib.Path:
  """A tiny ML-100K copy: 12 users, 30 movies, 8 ratings per user."""
  folder.mkdir(parents=True, exist_ok=True)
  (folder / "u.user").write_text("".join(
      f"{u}|{20 + u}|{'MF'[u % 2]}|student|{10000 + u}\n" for u in range(1, 13)))
  flags = "|".join("0" * 19)
  (folder / "u.item").write_text("".join(
      f"{i}|Movie {i} (1995)|01-Jan-1995||http://x|{flags}\n" for i in range(1, 31)))
  if ratings is None:
    ratings = base_ratings()
  (folder / "u.data").write_text("\n".join(ratings) + "\n")
  return folder


def base_ratings() -> list[str]:
  """u.data lines: user, item (8 distinct per user), rating, timestamp."""
  return [f"{u}\t{(u * 7 + k * 3) % 30 + 1}\t{1 + (u + k) % 5}\t{880000000 + 100 * u + k}"
          for u in range(1, 13) for k in range(8)]


def _edit(lines_fn):
  def setup(root, data):
    ml100k(data / "ml-100k", lines_fn(base_ratings()))
  return setup


def _no_setup(root, data):
  pass


def _dead_pid() -> int:
  p = subprocess.Popen(["true"])
  p.wait()
  return p.pid


def _lock(pid_fn):
  def setup(root, data):
    (root / FOLDER / ".lock").write_text(json.dumps(
        {"pid": pid_fn(), "host": socket.gethostname(), "started": "2026-01-01T00:00:00"}))
  return setup


def _append(text):
  def setup(root, data):
    with open(root / FOLDER / "trials.jsonl", "a") as f:
      f.write(text)
  return setup


def _double_every_trial(root, data):
  path = root / FOLDER / "trials.jsonl"
  path.write_text(path.read_text() * 2)  # what two concurrent writers used to leave


def _truncate_run_json(root, data):
  path = root / FOLDER / "run.json"
  path.write_text(path.read_text()[:40])


def _file_at(name):
  def setup(root, data):
    (root.parent / name).write_text("not a folder\n")
  return setup


def _ml1m_without_part(root, data):
  folder = data / "ml-1m"
  folder.mkdir(parents=True)
  (folder / "users.dat").write_text("1::F::1::10::48067\n")
  (folder / "movies.dat").write_text("1::Toy Story (1995)::Comedy\n")
  (folder / "ratings.dat").write_text("1::1::5::978300760\n")


@dataclasses.dataclass(frozen=True)
class Case:
  name: str
  argv: tuple  # "{out}" and "{data}" are replaced by the case's folders
  code: int
  says: tuple  # substrings the output must hold ("{...}" replaced as in argv)
  setup: object = _no_setup


QUICK = ("run", "cdn/table2", "--quick", "--rows", "Two-tower", "--epochs", "2")
CASES = [
    # Seeds and rows: checked before any work.
    Case("duplicate seed", QUICK + ("--seeds", "0,0", "--out", "{out}"), 2,
         ("--seeds lists seed 0 twice",)),
    Case("seed wraps modulo 2^32", QUICK + ("--seeds", "4294967296,0", "--out", "{out}"), 2,
         ("--seeds: seed 4294967296 is outside 0..4294967295",)),
    Case("negative seed", QUICK + ("--seeds", "-1", "--out", "{out}"), 2,
         ("--seeds: seed -1 is outside",)),
    Case("empty seed list", QUICK + ("--seeds", ",", "--out", "{out}"), 2,
         ("--seeds is empty",)),
    Case("seed not an integer", QUICK + ("--seeds", "a,b", "--out", "{out}"), 2,
         ("argument --seeds", "'a,b'")),
    Case("empty row list", ("run", "cdn/table2", "--quick", "--rows", ",", "--out", "{out}"), 2,
         ("--rows is empty", "Two-tower, ClassBalance")),
    Case("unknown row", ("run", "cdn/table2", "--quick", "--rows", "Nope", "--out", "{out}"), 2,
         ("unknown row 'Nope'", "Two-tower, ClassBalance")),
    Case("repeated row", ("run", "cdn/table2", "--quick", "--rows", "CDN,CDN", "--out", "{out}"),
         2, ("--rows lists row 'CDN' twice",)),
    Case("unknown spec", ("run", "cdn/table9", "--out", "{out}"), 2, ("cdn/table9", "cdn/table2")),
    Case("unknown data set", ("run", "cdn/table2", "--dataset", "ml-2m", "--out", "{out}"), 2,
         ("'ml-2m'", "ml-100k")),
    Case("zero epochs", QUICK[:-1] + ("0", "--out", "{out}"), 2, ("--epochs must be >= 1",)),
    Case("tune: empty row list", ("tune", "cdn/table2", "--quick", "--params", "gamma", "--rows",
                                  ",", "--out", "{out}"), 2, ("--rows is empty",)),
    Case("tune: empty parameter list", ("tune", "cdn/table2", "--quick", "--params", ",",
                                        "--out", "{out}"), 2, ("--params",)),
    Case("tune: duplicate seed", ("tune", "cdn/table2", "--quick", "--params", "gamma",
                                  "--seeds", "1,1", "--out", "{out}"), 2, ("seed 1 twice",)),
    # The results folder: checked (created, locked, probed) before any work.
    Case("--out is a file", QUICK + ("--seeds", "0", "--out", "{out}.file"), 2,
         ("{out}.file", "--out"), setup=_file_at("results.file")),
    Case("--out under a file", QUICK + ("--seeds", "0", "--out", "{out}.file/sub"), 2,
         ("{out}.file/sub", "--out"), setup=_file_at("results.file")),
    Case("folder locked by a live run", RUN[:-2] + ("--epochs", "2", "--out", "{out}"), 2,
         (f"{FOLDER} is in use by another ltbench run (pid {os.getppid()}", ".lock"),
         setup=_lock(os.getppid)),
    Case("stale lock of a dead run", RUN + ("--out", "{out}"), 0,
         ("removing a stale lock", "is no longer running", "already on disk, skipping"),
         setup=_lock(_dead_pid)),
    # Damaged trial stores: reported by file and line, never merged, each trial once.
    Case("a {} line", RUN + ("--out", "{out}"), 0,
         (f"{FOLDER / 'trials.jsonl'}:3: skipped, a trial record without row, seed, config",),
         setup=_append("{}\n")),
    Case("a JSON list line", ("diff", "cdn/table2", "--quick", "--epochs", "2", "--out", "{out}"),
         0, (f"{FOLDER / 'trials.jsonl'}:3: skipped, a JSON list",), setup=_append("[1, 2]\n")),
    Case("every trial written twice", RUN + ("--out", "{out}"), 0,
         ("2 duplicate record(s)", "each trial counts once"), setup=_double_every_trial),
    Case("truncated run.json: diff", ("diff", "cdn/table2", "--quick", "--epochs", "2", "--out",
                                      "{out}"), 2,
         (f"{FOLDER / 'run.json'}", "is damaged", "Rerun `ltbench run cdn/table2 --quick`"),
         setup=_truncate_run_json),
    Case("truncated run.json: run rewrites it", RUN + ("--out", "{out}"), 0,
         ("already on disk, skipping",), setup=_truncate_run_json),
    Case("diff without the default folder", ("diff", "cdn/table2", "--out", "{out}"), 2,
         ("ltbench run cdn/table2", f"{FOLDER}/",
          "ltbench diff cdn/table2 --quick --epochs 2")),
    # Data files, checked at run time.
    Case("data file fails its checksum", ("data", "prepare", "ml-100k", "--data-dir", "{data}"),
         2, ("{data}/ml-100k/u.data: MISMATCH", "--allow-modified-data",
             sources.SOURCES["ml-100k"].url), setup=_edit(lambda l: l)),
    Case("modified data allowed", ("data", "prepare", "ml-100k", "--data-dir", "{data}",
                                   "--allow-modified-data"), 0,
         ("running on MODIFIED data", '"data_modified": true'), setup=_edit(lambda l: l)),
    Case("repeated (user, item) lines", ("data", "prepare", "ml-100k", "--data-dir", "{data}",
                                         "--allow-modified-data"), 2,
         ("u.data, line 97: user 1 rated item 8 again (first on line 1)",
          "2 line(s) repeat"), setup=_edit(lambda l: l + l[:2])),
    Case("too few fields", ("data", "prepare", "ml-100k", "--data-dir", "{data}",
                            "--allow-modified-data"), 2,
         ("u.data, line 5: expected 4 fields",), setup=_edit(lambda l: l[:4] + ["1\t2\t3"] + l[4:])),
    Case("rating out of range", ("data", "prepare", "ml-100k", "--data-dir", "{data}",
                                 "--allow-modified-data"), 2,
         ("u.data, line 2: rating 9 is outside 1..5",),
         setup=_edit(lambda l: l[:1] + ["1\t9\t9\t880000001"] + l[2:])),
    Case("not an integer", ("data", "prepare", "ml-100k", "--data-dir", "{data}",
                            "--allow-modified-data"), 2,
         ("u.data, line 3: item 'x1' is not an integer",),
         setup=_edit(lambda l: l[:2] + ["1\tx1\t3\t880000002"] + l[3:])),
    Case("rating of an unknown user", ("data", "prepare", "ml-100k", "--data-dir", "{data}",
                                       "--allow-modified-data"), 2,
         ("u.data, line 97: user 99 is not in u.user",),
         setup=_edit(lambda l: l + ["99\t1\t3\t880000002"])),
    Case("incomplete copy", ("data", "prepare", "ml-100k", "--data-dir", "{data}",
                             "--no-download"), 2,
         ("{data}/ml-100k", "ml-100k.zip", "u.item"),
         setup=lambda root, data: ((data / "ml-100k").mkdir(parents=True),
                                   (data / "ml-100k" / "u.data").write_text("1\t1\t1\t1\n"))),
    Case("missing data, no download", ("run", "cdn/table2", "--no-download", "--data-dir",
                                       "{data}", "--out", "{out}"), 2,
         ("{data}/ml-1m", "https://files.grouplens.org/datasets/movielens/ml-1m.zip")),
    Case("diagnostic data set without its file", ("data", "prepare", "ml-1m-u2999-time",
                                                  "--data-dir", "{data}"), 2,
         ("ratings.part_users0001-2999.dat", "https://files.grouplens.org"),
         setup=_ml1m_without_part),
    Case("unknown data set (data info)", ("data", "info", "ml-2m"), 2, ("'ml-2m'", "ml-1m")),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input(case, results, tmp_path, capsys):
  data = tmp_path / "data"
  data.mkdir()
  case.setup(results, data)
  folder = results / FOLDER
  before_bytes = (folder / "trials.jsonl").read_bytes()
  before = ok_lines(folder)
  fill = lambda s: str(s).replace("{out}", str(results)).replace("{data}", str(data))
  code, text = ltbench_cli([fill(a) for a in case.argv], capsys)
  assert code == case.code, text
  for expected in case.says:
    assert fill(expected) in text, text
  assert "Traceback" not in text and "PROVENANCE" not in text
  # No finished trial lost or doubled: the file gained no record, and every trial counts once.
  if code != 0:  # refused before any work: nothing trained, nothing written
    assert "training seeds" not in text and "parsing" not in text or case.argv[0] == "data"
    assert (folder / "trials.jsonl").read_bytes() == before_bytes
  assert ok_lines(folder) == before
  assert counted(folder) == PAIRS
  assert not (folder / ".lock").exists() or case.name == "folder locked by a live run"


def test_at_least_25_distinct_bad_inputs():
  assert len({c.name for c in CASES}) == len(CASES) >= 25


def test_duplicates_are_counted_once_in_the_table(results, capsys):
  _double_every_trial(results, None)
  code, _ = ltbench_cli(RUN + ("--out", results), capsys)
  assert code == 0
  cells = json.loads((results / FOLDER / "table.json").read_text())["cells"]
  assert {c["n"] for c in cells if c["row"] == "Two-tower"} == {2}


def test_version(capsys):
  code, text = ltbench_cli(["--version"], capsys)
  assert code == 0 and f"ltbench {ltbench.__version__}" in text


def test_progress_shows_the_row_eta(trained):
  _, err = trained
  assert "epoch   1/2" in err and "row ETA ~" in err


def test_quick_reports_say_they_test_the_pipeline(results, capsys):
  md = (results / FOLDER / "table.md").read_text()
  assert "QUICK RUN ON SYNTHETIC DATA" in md and "does NOT hold" not in md
  code, text = ltbench_cli(["diff", "cdn/table2", "--quick", "--epochs", "2", "--out", results],
                           capsys)
  assert code == 0
  assert "tests the pipeline" in text and "z (meaningless: synthetic)" in text
  assert "FAILS" not in text and "[HOLDS]" not in text


# -- crashes, concurrency, reproducibility -------------------------------------------------

def test_crash_mid_write_then_rerun_has_every_seed_once(results, trained, capsys):
  # A crash while the first record was written: half a line, no newline, both seeds missing.
  path = results / FOLDER / "trials.jsonl"
  first = path.read_text().splitlines()[0]
  path.write_text(first[:len(first) // 2])
  code, text = ltbench_cli(RUN + ("--out", results), capsys)
  assert code == 0
  assert f"{path}:1: unreadable" in text and "training seeds [0, 1]" in text
  assert counted(results / FOLDER) == PAIRS
  assert ok_lines(results / FOLDER) == {p: 1 for p in PAIRS}
  # The new records start their own line; the broken line stays as it was.
  assert path.read_text().splitlines()[0] == first[:len(first) // 2]
  cells = json.loads((results / FOLDER / "table.json").read_text())["cells"]
  assert {c["n"] for c in cells if c["row"] == "Two-tower"} == {2}
  # The same seed set retrained: the same numbers as before the crash.
  assert same_fields(results) == same_fields(trained[0])


def test_two_writers_on_one_folder_exactly_one_proceeds(tmp_path, trained):
  env = {**os.environ, "PYTHONPATH": str(REPO)}
  argv = [sys.executable, "-m", "ltbench.cli", *RUN, "--out", str(tmp_path)]
  procs = [subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True) for _ in range(2)]
  outs = [p.communicate(timeout=900) for p in procs]
  codes = sorted(p.returncode for p in procs)
  refused = [err for p, (_, err) in zip(procs, outs) if p.returncode == 2]
  assert codes == [0, 2], outs
  assert "is in use by another ltbench run (pid" in refused[0] and str(FOLDER) in refused[0]
  assert ok_lines(tmp_path / FOLDER) == {p: 1 for p in PAIRS}
  assert not (tmp_path / FOLDER / ".lock").exists()
  # README's reproducibility claim across processes: same seed set, same device.
  assert same_fields(tmp_path) == same_fields(trained[0])


def test_lock_is_released_after_an_exception(tmp_path):
  with pytest.raises(RuntimeError):
    with store.folder_lock(tmp_path / "r"):
      assert (tmp_path / "r" / ".lock").exists()
      raise RuntimeError
  assert not (tmp_path / "r" / ".lock").exists()


def test_same_seed_set_same_device_gives_identical_trials(trained, tmp_path, capsys):
  """README: same seeds, same device and versions -> bitwise identical trial records."""
  code, _ = ltbench_cli(RUN + ("--out", tmp_path), capsys)
  assert code == 0
  assert same_fields(tmp_path) == same_fields(trained[0])


# -- data checks that need no CLI ----------------------------------------------------------

def test_bundle_cache_is_keyed_by_folder_and_content(tmp_path):
  a = ml100k(tmp_path / "a" / "ml-100k")
  lines = base_ratings()
  fields = lines[0].split("\t")
  fields[2] = "5" if fields[2] != "5" else "4"  # another rating: same sizes, other data
  lines[0] = "\t".join(fields)
  b = ml100k(tmp_path / "b" / "ml-100k", lines)
  for f in ("u.data", "u.user", "u.item"):
    assert (a / f).stat().st_size == (b / f).stat().st_size
    os.utime(b / f, ns=((a / f).stat().st_atime_ns, (a / f).stat().st_mtime_ns))
  load = lambda root: registry.load_bundle("ml-100k", data_dir=str(root), download=False,
                                           allow_modified_data=True)
  first, second = load(tmp_path / "a"), load(tmp_path / "b")
  assert first.meta["checksum"] != second.meta["checksum"]
  assert first.meta["source"] != second.meta["source"]
  assert first.meta["data_modified"] and second.meta["data_modified"]


def test_ltbench_data_may_hold_the_files_directly(tmp_path, monkeypatch, capsys):
  ml100k(tmp_path / "flat")
  monkeypatch.setenv("LTBENCH_DATA", str(tmp_path / "flat"))
  assert sources.locate("ml-100k") == tmp_path / "flat"
  code, text = ltbench_cli(["data", "info", "ml-100k"], capsys)
  assert code == 0 and f"Using {tmp_path / 'flat'}" in text


def test_catalogue_smaller_than_k_warns():
  small = registry.load_bundle("synthetic", synthetic_config={
      "num_users": 40, "num_items": 30, "mean_per_user": 8.0})
  warnings = runner.catalogue_warnings(small, (50,))
  assert small.num_items <= 30 and "HR@50 is 100 %" in warnings[0]
  assert runner.catalogue_warnings(small, (10,)) == []


def test_seed_bounds():
  assert check_seeds([0, MAX_SEED]) == [0, MAX_SEED]


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write to a read-only folder")
def test_read_only_out_is_refused_before_training(tmp_path, capsys):
  read_only = tmp_path / "ro"
  read_only.mkdir()
  read_only.chmod(0o555)
  try:
    code, text = ltbench_cli(QUICK + ("--seeds", "0", "--out", read_only), capsys)
  finally:
    read_only.chmod(0o755)
  assert code == 2 and str(read_only) in text and "--out" in text
  assert "training seeds" not in text
