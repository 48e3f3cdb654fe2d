"""Aggregating trials into a table (mean ± SE over seeds), the diff against the paper,
the paper's claims checked, and the Markdown / CSV / JSON writers."""

from __future__ import annotations

import dataclasses
import json
import math
import pathlib
import warnings
from typing import Any, Iterable

import numpy as np
import pandas as pd
import tabulate

from ltbench.harness.spec import ClaimResult, TableSpec


@dataclasses.dataclass(frozen=True)
class Stat:
  mean: float
  se: float  # standard error of the mean (ddof=1); nan with one seed
  n: int
  values: tuple[float, ...]


def summarise(values: Iterable[float]) -> Stat:
  v = np.asarray([x for x in values if x is not None and np.isfinite(x)], np.float64)
  if v.size == 0:
    return Stat(math.nan, math.nan, 0, ())
  se = float(v.std(ddof=1) / np.sqrt(v.size)) if v.size > 1 else math.nan
  return Stat(float(v.mean()), se, int(v.size), tuple(float(x) for x in v))


@dataclasses.dataclass
class Table:
  """Per row and cell, the statistics of the finished trials of one spec."""

  spec: TableSpec
  stats: dict[str, dict[str, Stat]]  # row -> cell -> Stat (test split)
  valid: dict[str, dict[str, Stat]]  # row -> cell -> Stat (validation split)
  seeds: dict[str, list[int]]  # row -> seeds that finished
  trials: list[dict] = dataclasses.field(default_factory=list)  # the ok trials behind it

  def get(self, row: str, cell: str) -> Stat | None:
    return self.stats.get(row, {}).get(cell)


def build_table(spec: TableSpec, trials: list[dict]) -> Table:
  stats, valid, seeds = {}, {}, {}
  for row in spec.rows:
    recs = [t for t in trials if t["row"] == row.name and t.get("status") == "ok"]
    if not recs:
      continue
    seeds[row.name] = sorted(t["seed"] for t in recs)
    stats[row.name] = {c: summarise(t["test"].get(c) for t in recs) for c in spec.cells}
    valid[row.name] = {c: summarise(t["valid"].get(c) for t in recs) for c in spec.cells}
  return Table(spec, stats, valid, seeds, [t for t in trials if t.get("status") == "ok"])


# -- claims ------------------------------------------------------------------------------

def z_score(a: Stat, b_mean: float, b_se: float | None) -> float:
  var = (a.se if np.isfinite(a.se) else 0.0) ** 2 + ((b_se or 0.0) ** 2)
  return (a.mean - b_mean) / math.sqrt(var) if var > 0 else math.copysign(math.inf, a.mean - b_mean)


def compare(table: Table, row_a: str, row_b: str, cells: Iterable[str], direction: str
            ) -> ClaimResult:
  """Checks that row_a is above (direction '>') or below ('<') row_b on every cell.

  Evidence lists each cell's difference and its z-score (both SEs).
  """
  parts, holds = [], True
  for cell in cells:
    a, b = table.get(row_a, cell), table.get(row_b, cell)
    if a is None or b is None or a.n == 0 or b.n == 0:
      return ClaimResult(None, f"needs rows {row_a!r} and {row_b!r}")
    z = z_score(a, b.mean, b.se if np.isfinite(b.se) else None)
    ok = a.mean > b.mean if direction == ">" else a.mean < b.mean
    holds &= ok
    parts.append(f"{cell}: {a.mean:.2f} vs {b.mean:.2f} (Δ {a.mean - b.mean:+.2f}, z {z:+.1f})")
  return ClaimResult(holds, "; ".join(parts))


def better(row_a, row_b, cells):
  return lambda table: compare(table, row_a, row_b, cells, ">")


def worse(row_a, row_b, cells):
  return lambda table: compare(table, row_a, row_b, cells, "<")


def not_worse(row_a, row_b, cells, z_floor: float = -2.0):
  """row_a is not significantly below row_b on any cell (z > z_floor): "level or better"."""
  def check(table):
    parts, holds = [], True
    for c in cells:
      a, b = table.get(row_a, c), table.get(row_b, c)
      if a is None or b is None or not a.n or not b.n:
        return ClaimResult(None, f"needs rows {row_a!r} and {row_b!r}")
      z = z_score(a, b.mean, b.se if np.isfinite(b.se) else None)
      holds &= z > z_floor
      parts.append(f"{c}: {a.mean:.2f} vs {b.mean:.2f} (z {z:+.1f}; level = z > {z_floor:g})")
    return ClaimResult(holds, "; ".join(parts))
  return check


def all_of(*checks):
  def check(table):
    results = [c(table) for c in checks]
    if any(r.holds is None for r in results):
      return ClaimResult(None, "; ".join(dict.fromkeys(r.evidence for r in results
                                                       if r.holds is None)))
    return ClaimResult(all(r.holds for r in results), " | ".join(r.evidence for r in results))
  return check


# -- rendering ---------------------------------------------------------------------------

def convergence_cell(spec: TableSpec) -> str:
  """The validation metric convergence is judged on: the one `ltbench tune` selects on,
  else the spec's first cell."""
  return spec.select_cell if spec.select_cell in spec.cells else spec.cells[0]


def convergence(table: Table, tail_fraction: float = 0.1, min_gain: float = 0.01
                ) -> dict[str, dict[str, Any]]:
  """Per row, whether training had converged (DESIGN §6): UNCONVERGED when the best value of
  the seed-mean validation curve improved by more than `min_gain` (relative) over the last
  `tail_fraction` of epochs. Rows whose trials have no per-epoch curve are left out."""
  cell = convergence_cell(table.spec)
  out = {}
  for row in table.seeds:
    curves = [t.get("valid_per_epoch", {}).get(cell) for t in table.trials if t["row"] == row]
    curves = [np.asarray([np.nan if x is None else x for x in c], np.float64)
              for c in curves if c]
    if not curves or len({len(c) for c in curves}) != 1:
      continue
    with warnings.catch_warnings():  # epochs before a resume are NaN for every seed
      warnings.simplefilter("ignore", RuntimeWarning)
      mean = np.nanmean(np.stack(curves), 0)
    epochs = mean.size
    last = max(1, int(math.ceil(tail_fraction * epochs)))
    if epochs <= last or np.isnan(mean[:epochs - last]).all():
      continue
    before, best = np.nanmax(mean[:epochs - last]), np.nanmax(mean)
    gain = (best - before) / abs(before) if before else math.inf
    out[row] = {"converged": bool(gain <= min_gain), "cell": cell, "epochs": epochs,
                "gain_over_last_epochs": round(float(gain), 4),
                "best_epoch": int(np.nanargmax(mean)) + 1}
  return out


QUICK_BANNER = (
    "QUICK RUN ON SYNTHETIC DATA: this tests the pipeline (data, training, evaluation, "
    "reports), not the paper. The paper's numbers are for its own data set, so no Δ, z-score "
    "or claim verdict here says anything about the paper; run the spec without --quick for "
    "that.")


def claim_mark(holds: bool | None, quick: bool, upper: bool = False) -> str:
  """The verdict word of a claim; on synthetic data it says where it was checked."""
  if quick:
    text = {True: "holds on synthetic data", False: "does not hold on synthetic data",
            None: "not checked"}[holds]
  else:
    text = {True: "holds", False: "does NOT hold", None: "not checked"}[holds]
  return text.upper() if upper else text


def fmt(mean: float, se: float | None, digits: int = 2) -> str:
  if mean is None or not np.isfinite(mean):
    return "–"
  if se is None or not np.isfinite(se):
    return f"{mean:.{digits}f}"
  return f"{mean:.{digits}f} ± {se:.{digits}f}"


def _paper_runs(paper) -> int | str:
  """The paper row's n: 5 where the paper prints mean ± SE (CDN's tables: 5 runs), '–'
  where it prints single values and does not say over how many runs."""
  return 5 if any(se is not None for _, se in paper.values()) else "–"


def markdown(table: Table, meta: dict[str, Any]) -> str:
  spec = table.spec
  conv = convergence(table)
  head = ["row", "source", "n"] + list(spec.cells) + (["converged"] if conv else [])
  body = []
  for row in spec.rows:
    flag = []
    if conv:
      c = conv.get(row.name)
      flag = ["–" if c is None else "yes" if c["converged"] else "UNCONVERGED"]
    if row.name in table.stats:
      st = table.stats[row.name]
      n = len(table.seeds[row.name])
      body.append([row.name, "ours", n] + [fmt(st[c].mean, st[c].se) for c in spec.cells] + flag)
    if row.paper and not spec.is_quick:
      body.append([row.name if row.name not in table.stats else "", "paper",
                   _paper_runs(row.paper)] +
                  [fmt(*row.paper[c]) if c in row.paper else "–" for c in spec.cells] +
                  ([""] if conv else []))
  chance = meta.get("chance")
  if chance:
    body.append(["random ranking", "chance", "–"] + [fmt(chance.get(c), None) for c in spec.cells]
                + ([""] if conv else []))
  lines = [f"# {spec.id}{' (quick, synthetic)' if spec.is_quick else ''}: {spec.title}", ""]
  if spec.is_quick:
    lines += [f"**{QUICK_BANNER}**", ""]
  lines += [f"Paper: {spec.paper}", "",
           f"Data: {meta.get('dataset')} — {meta.get('bundle_summary', '')}", "",
           f"Metrics in percent on the test split, mean ± standard error over seeds "
           f"({meta.get('protocol_text', '')})." + (
               " The 'chance' line is the expected value of a uniformly random ranking under "
               "the same exclusions: a row at or below it has learnt nothing usable." if chance
               else ""), "",
           tabulate.tabulate(body, headers=head, tablefmt="github"), ""]
  if conv:
    cell = next(iter(conv.values()))["cell"]
    lines += [convergence_note(cell), ""]
  claims = check_claims(table)
  if claims:
    lines += ["## The paper's claims, checked on the synthetic data (a pipeline check, not a "
              "test of the paper)" if spec.is_quick else "## The paper's claims, checked here", ""]
    for text, res in claims:
      mark = claim_mark(res.holds, spec.is_quick)
      lines.append(f"- **{mark}**: {text} — {res.evidence}")
    lines.append("")
  if spec.notes:
    lines += ["## Protocol notes", ""] + [f"- {n}" for n in spec.notes] + [""]
  notes = [f"- {r.name}: {r.note}" for r in spec.rows if r.note]
  if notes:
    lines += ["## Row configuration", ""] + notes + [""]
  lines += param_count_lines(meta.get("param_counts"))
  lines += ["## Run metadata", "", "```", json.dumps(meta, indent=1, sort_keys=True), "```", ""]
  return "\n".join(lines)


def param_count_lines(counts: dict[str, dict[str, int]] | None) -> list[str]:
  """A section comparing each row's item side and total parameters with the backbone's."""
  if not counts:
    return []
  def pair(c, name):
    return f"{c[name]:,} ({c[name + '_dense']:,})" if name in c else "–"

  if not any("backbone_total" in c for c in counts.values()):  # e.g. sequence models
    body = [[row, pair(c, "item_side"), f"{c['total']:,}"] for row, c in counts.items()]
    return ["## Parameter counts", "",
            "Item tower of each row, with (in brackets) the parameters outside the embedding "
            "tables; then all parameters.", "",
            tabulate.tabulate(body, headers=["row", "item tower", "total"], tablefmt="github",
                              disable_numparse=True), ""]
  body = [[row, pair(c, "item_side"), pair(c, "backbone_item_tower"), f"{c['total']:,}",
           f"{c.get('backbone_total', 0):,}"] for row, c in counts.items()]
  return ["## Parameter counts", "",
          "Item side of each row against the backbone two-tower's item tower, with (in "
          "brackets) the parameters outside the embedding tables; then all parameters.", "",
          tabulate.tabulate(body, headers=["row", "item side", "backbone item tower", "total",
                                           "backbone total"], tablefmt="github",
                            disable_numparse=True), ""]


def check_claims(table: Table) -> list[tuple[str, ClaimResult]]:
  return [(c.text, c.check(table)) for c in table.spec.claims]


def frame(table: Table) -> pd.DataFrame:
  recs = []
  for row in table.spec.rows:
    for cell in table.spec.cells:
      st = table.get(row.name, cell)
      paper = row.paper.get(cell, (math.nan, None))
      recs.append({"row": row.name, "cell": cell,
                   "mean": st.mean if st else math.nan, "se": st.se if st else math.nan,
                   "n": st.n if st else 0,
                   "paper_mean": paper[0], "paper_se": paper[1] if paper[1] is not None else math.nan})
  return pd.DataFrame(recs)


def diff_rows(table: Table) -> list[dict[str, Any]]:
  out = []
  for row in table.spec.rows:
    for cell in table.spec.cells:
      st = table.get(row.name, cell)
      if cell not in row.paper:
        continue
      p_mean, p_se = row.paper[cell]
      rec = {"row": row.name, "cell": cell, "paper": fmt(p_mean, p_se)}
      if st is None or st.n == 0:
        rec.update(ours="not run", delta="", z="")
      else:
        rec.update(ours=fmt(st.mean, st.se), delta=f"{st.mean - p_mean:+.2f}",
                   rel=f"{100 * (st.mean - p_mean) / p_mean:+.0f}%" if p_mean else "",
                   z=f"{z_score(st, p_mean, p_se):+.1f}")
      out.append(rec)
  return out


def diff_text(table: Table) -> str:
  rows = diff_rows(table)
  spec = table.spec
  conv = convergence(table)
  lines = [f"ltbench diff {spec.id}{' --quick' if spec.is_quick else ''}: ours vs the paper "
           f"({spec.paper})"]
  if spec.is_quick:
    lines += ["", QUICK_BANNER, "z-scores against the paper are meaningless here (other data)."]
  lines += ["z = (ours − paper) / sqrt(SE_ours² + SE_paper²)", ""]
  z_head = "z (meaningless: synthetic)" if spec.is_quick else "z"

  def flag(row):
    c = conv.get(row)
    return "–" if c is None else "yes" if c["converged"] else "UNCONVERGED"

  lines.append(tabulate.tabulate(
      [[r["row"], r["cell"], r["ours"], r["paper"], r.get("delta", ""), r.get("rel", ""), r["z"]]
       + ([flag(r["row"])] if conv else []) for r in rows],
      headers=["row", "cell", "ours", "paper", "Δ", "Δ rel", z_head]
      + (["converged"] if conv else []),
      tablefmt="github", disable_numparse=True))
  if conv:
    lines.append("")
    cell = next(iter(conv.values()))["cell"]
    lines += [convergence_note(cell), ""]
  claims = check_claims(table)
  if claims:
    lines += ["", "Claims: checked on the synthetic data (a pipeline check, not a test of the "
              "paper)" if spec.is_quick
              else "Claims:"]
    for text, res in claims:
      mark = (claim_mark(res.holds, True, upper=True) if spec.is_quick
              else {True: "HOLDS", False: "FAILS", None: "NOT CHECKED"}[res.holds])
      lines.append(f"  [{mark}] {text}\n      {res.evidence}")
  return "\n".join(lines)


def convergence_note(cell: str) -> str:
  """What the 'converged' column means, for the validation cell it was judged on."""
  return (f"'converged': UNCONVERGED means the seed-mean validation {cell} still improved by "
          "more than 1 % (relative) over the last 10 % of epochs, so the row is under-trained "
          "at this budget and a claim it fails is not refuted by it. Curves: "
          "`validation_curves.png`.")


def write_reports(table: Table, meta: dict[str, Any], out_dir: pathlib.Path) -> list[pathlib.Path]:
  out_dir.mkdir(parents=True, exist_ok=True)
  paths = [out_dir / "table.md", out_dir / "table.csv", out_dir / "table.json"]
  from ltbench.harness.store import write_text_atomic
  write_text_atomic(paths[0], markdown(table, meta))
  df = frame(table)
  write_text_atomic(paths[1], df.to_csv(index=False))
  conv = convergence(table)
  payload = {"spec": table.spec.id, "meta": meta, "cells": json.loads(df.to_json(orient="records")),
             "claims": [{"claim": t, "holds": r.holds, "evidence": r.evidence}
                        for t, r in check_claims(table)],
             "convergence": conv}
  if table.spec.is_quick:
    payload["note"] = QUICK_BANNER
  write_text_atomic(paths[2], json.dumps(payload, indent=1))
  if conv:
    paths += validation_curves(table, out_dir / "validation_curves")
  return paths


def validation_curves(table: Table, out: pathlib.Path) -> list[pathlib.Path]:
  """Seed-mean validation curve (± SE) of the convergence metric per row: PNG + CSV."""
  from ltbench.harness import figures
  cell = convergence_cell(table.spec)
  recs = []
  for row in table.seeds:
    curves = [t.get("valid_per_epoch", {}).get(cell) for t in table.trials if t["row"] == row]
    curves = [c for c in curves if c]
    if not curves or len({len(c) for c in curves}) != 1:
      continue
    for epoch in range(len(curves[0])):
      st = summarise(c[epoch] for c in curves)
      recs.append({"row": row, "epoch": epoch + 1, "mean": st.mean, "se": st.se, "n": st.n})
  return figures.curves(pd.DataFrame(recs), out, f"{table.spec.id}: validation {cell}",
                        "epoch", f"validation {cell} (%)")
