"""The results store: a lock per results folder, line-safe appends to `trials.jsonl`, a
reader that skips and reports bad lines and counts a (row, configuration, seed) once, and
atomic writes of the report files.

A benchmark's standard errors are only as good as its trial count, so nothing here may
silently merge, drop or double a trial. This module imports no JAX (the lock is cheap to
take from any process).
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import socket
import sys
import tempfile
import time
from typing import Any, Iterator

from ltbench.errors import ResultsError

LOCK_NAME = ".lock"
TRIALS_NAME = "trials.jsonl"


def _say(text: str) -> None:
  print(f"[ltbench] {text}", file=sys.stderr)


# -- the folder lock ---------------------------------------------------------------------

def _pid_alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:  # alive, owned by someone else
    return True
  return True


def _read_holder(path: pathlib.Path) -> dict[str, Any] | None:
  try:
    holder = json.loads(path.read_text())
  except (OSError, ValueError):
    return None
  return holder if isinstance(holder, dict) else None


def _create_lock(lock: pathlib.Path, payload: bytes) -> None:
  """Creates `lock` holding `payload`, atomically: FileExistsError if it already exists.

  The payload goes to a private temporary file that is then hard-linked to the lock name,
  so a competing writer never sees a lock without its holder. On a file system without
  hard links it falls back to O_EXCL create-then-write.
  """
  tmp = lock.with_name(f"{lock.name}.{os.getpid()}.tmp")
  fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
  try:
    os.write(fd, payload)
    os.fsync(fd)
  finally:
    os.close(fd)
  try:
    os.link(tmp, lock)
  except FileExistsError:
    raise
  except OSError:  # no hard links here
    fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
      os.write(fd, payload)
      os.fsync(fd)
    finally:
      os.close(fd)
  finally:
    tmp.unlink(missing_ok=True)


# Re-entrant within one process: folder -> depth.
_HELD: dict[pathlib.Path, int] = {}


@contextlib.contextmanager
def folder_lock(folder: os.PathLike, option: str = "--out") -> Iterator[pathlib.Path]:
  """Holds `folder/.lock` while the block runs, so one writer at a time appends trials.

  Creates the folder and the lock file (O_EXCL) first, which also proves that the folder
  can be written before any work is done: a folder that cannot be created or written is a
  ResultsError naming it and `option`. A lock whose process is dead on this host is stale
  and is taken over; a live holder is a ResultsError naming the folder and its pid. The
  lock is removed on exit, including on exceptions and Ctrl-C.
  """
  folder = pathlib.Path(folder)
  created = not folder.exists()
  try:
    folder.mkdir(parents=True, exist_ok=True)
  except OSError as e:
    raise ResultsError(f"cannot create the results folder {folder} ({option}): {e}. Pass a "
                       f"writable folder with {option} DIR.") from None
  key = folder.resolve()
  if _HELD.get(key):
    _HELD[key] += 1
    try:
      yield folder
    finally:
      _HELD[key] -= 1
    return
  lock = folder / LOCK_NAME
  me = {"pid": os.getpid(), "host": socket.gethostname(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"), "argv": sys.argv[:6]}
  for _ in range(3):
    try:
      _create_lock(lock, json.dumps(me).encode())
    except FileExistsError:
      holder = _read_holder(lock)
      if holder is None:
        # Only a crash mid-write (or a file system without hard links) leaves an unreadable
        # lock: give a live writer a moment, then treat it as stale after a grace period.
        for _ in range(20):
          time.sleep(0.1)
          holder = _read_holder(lock)
          if holder is not None or not lock.exists():
            break
      if holder is None:
        try:
          age = time.time() - lock.stat().st_mtime
        except FileNotFoundError:
          continue
        if age < 10:
          raise ResultsError(f"{folder} is locked by another ltbench process ({lock} is being "
                             "created); wait for it to finish, or delete the lock file if no "
                             "ltbench process is running.") from None
        _say(f"removing an unreadable stale lock {lock}")
        lock.unlink(missing_ok=True)
        continue
      pid, host = holder.get("pid"), holder.get("host")
      if host == me["host"] and isinstance(pid, int) and not _pid_alive(pid):
        _say(f"removing a stale lock on {folder}: process {pid} (started "
             f"{holder.get('started')}) is no longer running")
        lock.unlink(missing_ok=True)
        continue
      raise ResultsError(
          f"{folder} is in use by another ltbench run (pid {pid} on {host}, started "
          f"{holder.get('started')}): two writers would count trials twice. Wait for it to "
          f"finish, or pass another folder with {option}. If that process is gone, delete "
          f"{lock}.") from None
    except OSError as e:
      raise ResultsError(f"cannot write to the results folder {folder} ({option}): {e}. Pass "
                         f"a writable folder with {option} DIR.") from None
    break
  else:
    raise ResultsError(f"could not lock {folder}: another process keeps re-creating {lock}.")
  _HELD[key] = 1
  try:
    yield folder
  finally:
    _HELD.pop(key, None)
    holder = _read_holder(lock)
    if holder is not None and holder.get("pid") == me["pid"] and holder.get("host") == me["host"]:
      lock.unlink(missing_ok=True)
    if created:  # a run that stopped before writing anything leaves no empty folder behind
      with contextlib.suppress(OSError):
        folder.rmdir()


# -- appending ---------------------------------------------------------------------------

def append_line(path: os.PathLike, record: dict[str, Any]) -> None:
  """Appends one JSON record as one line, safely.

  If the file does not end in a newline (a line cut by a crash), the record starts a new
  line, so it never merges with the broken one. The whole line goes out in one write on an
  O_APPEND descriptor and is fsynced before returning.
  """
  path = pathlib.Path(path)
  data = (json.dumps(record, sort_keys=True) + "\n").encode()
  fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
  try:
    size = os.fstat(fd).st_size
    if size and os.pread(fd, 1, size - 1) != b"\n":
      data = b"\n" + data
    written = os.write(fd, data)
    while written < len(data):  # rare short write (e.g. a signal): finish the same line
      written += os.write(fd, data[written:])
    os.fsync(fd)
  finally:
    os.close(fd)


def check_appendable(path: os.PathLike, option: str = "--out") -> None:
  """Raises a ResultsError unless an existing `path` can be opened for appending (a new one
  can be created: the folder lock has just written its folder)."""
  if not os.path.exists(path):
    return
  try:
    os.close(os.open(path, os.O_WRONLY | os.O_APPEND))
  except OSError as e:
    raise ResultsError(f"cannot append to {path} ({option}): {e}. Make it writable or pass "
                       f"another folder with {option} DIR.") from None


def write_text_atomic(path: os.PathLike, text: str) -> None:
  """Writes via a temporary file in the same folder and a rename: never half a file."""
  path = pathlib.Path(path)
  fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
  try:
    os.fchmod(fd, 0o644)
    with os.fdopen(fd, "w") as f:
      f.write(text)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    pathlib.Path(tmp).unlink(missing_ok=True)
    raise


# -- reading -----------------------------------------------------------------------------

def _shape_problem(rec: Any) -> str | None:
  """Why a parsed line is not a trial record, or None when it is one."""
  if not isinstance(rec, dict):
    return f"a JSON {type(rec).__name__}, not a trial record"
  missing = [k for k in ("row", "seed", "config", "status") if k not in rec]
  if missing:
    return "a trial record without " + ", ".join(missing)
  if not isinstance(rec["row"], str) or not isinstance(rec["config"], str):
    return "row and config must be strings"
  if not isinstance(rec["seed"], int) or isinstance(rec["seed"], bool) or rec["seed"] < 0:
    return f"seed {rec['seed']!r} is not a non-negative integer"
  if rec["status"] not in ("ok", "failed"):
    return f"status {rec['status']!r} is neither 'ok' nor 'failed'"
  if rec["status"] == "ok":
    for split in ("test", "valid"):
      values = rec.get(split)
      if not isinstance(values, dict) or not all(
          isinstance(v, (int, float)) or v is None for v in values.values()):
        return f"an ok trial without {split} metrics"
  return None


def read_trials(path: os.PathLike, report: bool = True) -> tuple[list[dict], list[str]]:
  """The trial records of a `trials.jsonl`, and the problems found.

  A line that is not JSON (e.g. cut by a crash) or not a trial record is skipped and
  reported as `file:line: why`; its trial counts as missing, so the next run retrains it.
  Of several ok records of the same (row, config, seed), the first is kept and the rest
  are reported: a trial is counted once, whatever the file holds.
  """
  path = pathlib.Path(path)
  if not path.exists():
    return [], []
  try:
    text = path.read_bytes().decode("utf-8", errors="replace")
  except OSError as e:
    raise ResultsError(f"cannot read {path}: {e}") from None
  out, problems, seen, dups = [], [], set(), 0
  for n, line in enumerate(text.splitlines(), 1):
    if not line.strip():
      continue
    try:
      rec = json.loads(line)
    except ValueError:
      problems.append(f"{path}:{n}: unreadable (not JSON; a line cut by a crash?): "
                      f"{line[:60]!r}")
      continue
    why = _shape_problem(rec)
    if why:
      problems.append(f"{path}:{n}: skipped, {why}")
      continue
    if rec["status"] == "ok":
      key = (rec["row"], rec["config"], rec["seed"])
      if key in seen:
        dups += 1
        continue
      seen.add(key)
    out.append(rec)
  if dups:
    problems.append(f"{path}: {dups} duplicate record(s) of a (row, configuration, seed) "
                    "already counted were ignored (each trial counts once)")
  if report and problems:
    for p in problems:
      _say(p)
    _say(f"the trials of skipped lines count as missing and a rerun retrains them; "
         f"the lines stay in {path.name} untouched")
  return out, problems


def read_json(path: os.PathLike, what: str, fix: str) -> dict[str, Any]:
  """A JSON object from `path`, or a ResultsError naming the file, what it is and `fix`."""
  path = pathlib.Path(path)
  try:
    value = json.loads(path.read_text())
  except OSError as e:
    raise ResultsError(f"cannot read {path} ({what}): {e}. {fix}") from None
  except ValueError as e:
    raise ResultsError(f"{path} ({what}) is damaged: {e}. {fix}") from None
  if not isinstance(value, dict):
    raise ResultsError(f"{path} ({what}) holds a JSON {type(value).__name__}, not an "
                       f"object. {fix}")
  return value
