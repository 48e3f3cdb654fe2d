"""Hyper-parameter selection on the validation split (`ltbench tune`).

A spec row declares the paper's search space in `Row.grid`. Tuning runs every point of the
grid (the Cartesian product over the chosen parameters; the others keep the row's values) as
a row of a derived spec, so the trials are stored, resumable and shared with identical rows
of other specs like any other trial. The choice maximises the mean over seeds of the spec's
`select_cell` on the VALIDATION split; the test split is never read. The choice is written to
`selection.json` and `selection.md` and is then recorded by hand in the spec, with where it
came from.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import pathlib
import sys
from typing import Any

from ltbench.errors import SpecError
from ltbench.harness import report, store
from ltbench.harness.spec import Row, TableSpec, check_seeds


def grid_points(row: Row, params: list[str]) -> list[dict[str, Any]]:
  """The Cartesian product of the row's grid over `params`, in grid order."""
  missing = [p for p in params if p not in row.grid]
  if missing:
    raise SpecError(f"row {row.name!r} has no grid for {', '.join(missing)}; its grid covers: "
                    f"{', '.join(row.grid) or 'nothing'}")
  values = [tuple(row.grid[p]) for p in params]
  return [dict(zip(params, combo)) for combo in itertools.product(*values)]


def point_name(row: Row, point: dict[str, Any]) -> str:
  return f"{row.name} [" + " ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                                    for k, v in point.items()) + "]"


def tuned_rows(spec: TableSpec, rows: list[str] | None, params: list[str]) -> tuple[Row, ...]:
  """The rows to tune: those named, else every row with a grid for all of `params`."""
  if not params:
    raise SpecError("name the parameters to search with --params (e.g. --params gamma)")
  chosen = spec.select_rows(rows) if rows is not None else tuple(r for r in spec.rows
                                                     if all(p in r.grid for p in params))
  if not chosen:
    raise SpecError(f"no row of {spec.id} has a grid for {', '.join(params)}; grids: " +
                    "; ".join(f"{r.name}: {', '.join(r.grid) or '-'}" for r in spec.rows))
  return chosen


def tune_spec(spec: TableSpec, rows: list[str] | None, params: list[str]) -> TableSpec:
  """A spec whose rows are the grid points of the rows to tune."""
  out = []
  for row in tuned_rows(spec, rows, params):
    for point in grid_points(row, params):
      out.append(Row(point_name(row, point), row.method, {**row.params, **point},
                     note=f"grid point of {row.name}"))
  return dataclasses.replace(
      spec, rows=tuple(out), claims=(), figure=None, quick=None, variant=spec.variant + "-tune",
      notes=(f"HYPER-PARAMETER SEARCH over {', '.join(params)}: each row is a grid point; the "
             f"choice maximises validation {spec.select_cell} (the test split is not used).",)
      + spec.notes)


def choose(trials: list[dict], candidates: dict[str, dict[str, Any]], cell: str
           ) -> tuple[str | None, dict[str, dict]]:
  """The candidate (row name -> point) with the best mean validation `cell` over its ok trials.

  Returns (best row name or None, {row name: {"mean", "se", "n", "point"}}). Only the trials'
  "valid" metrics are read. Ties go to the first candidate in order.
  """
  scores = {}
  for name, point in candidates.items():
    st = report.summarise(t["valid"].get(cell) for t in trials
                          if t["row"] == name and t.get("status") == "ok")
    scores[name] = {"point": point, "n": st.n, "mean": st.mean if st.n else None,
                    "se": st.se if st.n > 1 else None}
  ranked = [n for n in candidates if scores[n]["mean"] is not None]
  best = max(ranked, key=lambda n: scores[n]["mean"]) if ranked else None
  return best, scores


def grid_edges(row: Row, params: list[str], point: dict[str, Any]) -> list[str]:
  """For each parameter of `point` at the smallest or largest value of an ordered grid of at
  least three values, a line saying so: the optimum may lie outside the searched range."""
  lines = []
  for p in params:
    values = row.grid[p]
    if len(values) < 3 or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                  for v in values):
      continue
    if point[p] in (min(values), max(values)):
      side = "smallest" if point[p] == min(values) else "largest"
      lines.append(f"{p} = {point[p]:g} is the {side} value of its grid "
                   f"({', '.join(f'{v:g}' for v in values)}): the optimum may lie beyond it")
  return lines


def run_tune(spec: TableSpec, rows: list[str] | None, params: list[str],
             seeds: list[int] | None = None, data_dir: str | None = None,
             out_root: str | os.PathLike = "results", download: bool = True,
             allow_modified_data: bool = False) -> dict:
  """Runs the grid's missing trials, chooses per row on validation, writes the selection."""
  from ltbench.harness import runner
  tspec = tune_spec(spec, rows, params)
  check_seeds(spec.seeds if seeds is None else seeds)  # before the folder is created
  with store.folder_lock(pathlib.Path(out_root) / tspec.out_name):
    return _tune_locked(spec, tspec, rows, params, seeds, data_dir, out_root, download,
                        allow_modified_data)


def _tune_locked(spec, tspec, rows, params, seeds, data_dir, out_root, download,
                 allow_modified_data) -> dict:
  from ltbench.harness import runner
  _, out_dir = runner.run_spec(tspec, seeds=seeds, data_dir=data_dir, out_root=out_root,
                               download=download, allow_modified_data=allow_modified_data)
  keys = store.read_json(out_dir / "run.json", "the run's configuration keys",
                         "Rerun the same `ltbench tune` command.")["config_keys"]
  trials = [t for t in runner.TrialStore(out_dir / "trials.jsonl").load()
            if keys.get(t["row"]) == t["config"]]
  selection = {"spec": spec.id, "variant": tspec.variant, "cell": f"valid {spec.select_cell}",
               "params": params, "seeds": sorted({t["seed"] for t in trials}),
               "epochs": spec.train.epochs, "dataset": spec.dataset, "rows": {}}
  lines = [f"# Validation selection for {spec.id} ({', '.join(params)})", "",
           f"Chosen by the mean over seeds of validation {spec.select_cell}; the test split was "
           f"not read. Scale: {spec.dataset}, {spec.train.epochs} epochs, seeds "
           f"{selection['seeds']}.", ""]
  for row in tuned_rows(spec, rows, params):
    cands = {point_name(row, p): p for p in grid_points(row, params)}
    best, scores = choose(trials, cands, spec.select_cell)
    edges = grid_edges(row, params, cands[best]) if best else []
    selection["rows"][row.name] = {"chosen": cands[best] if best else None, "scores": scores,
                                   "grid_edges": edges}
    lines += [f"## {row.name}: " + (f"chosen {best}" if best else "no finished trials"), ""]
    lines += [f"**On the grid's edge**: {e}." for e in edges] + ([""] if edges else [])
    lines += [f"| grid point | valid {spec.select_cell} | SE | seeds |", "|---|---|---|---|"]
    for name, s in scores.items():
      mean = f"{s['mean']:.2f}" if s["mean"] is not None else "–"
      se = f"{s['se']:.2f}" if s["se"] is not None else "–"
      lines.append(f"| {name}{' ←' if name == best else ''} | {mean} | {se} | {s['n']} |")
    lines.append("")
  # selection.* is the latest search; selection-<params>.* keeps each search of a folder
  # that several searches share (e.g. the learning rate of one row, γ of another).
  tag = "+".join(params)
  for name in ("selection", f"selection-{tag}"):
    store.write_text_atomic(out_dir / f"{name}.json", json.dumps(selection, indent=1))
    store.write_text_atomic(out_dir / f"{name}.md", "\n".join(lines))
  print("\n".join(lines))
  print(f"[ltbench] wrote {out_dir / f'selection-{tag}.json'} (and selection.json); record the "
        "chosen values in the spec with where they came from", file=sys.stderr)
  return selection
