"""Aggregating trials into a table (mean ± SE over seeds), the diff against the paper,
the paper's claims checked, and the Markdown / CSV / JSON writers."""

from __future__ import annotations

import dataclasses
import json
import math
import pathlib
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


def all_of(*checks):
  def check(table):
    results = [c(table) for c in checks]
    if any(r.holds is None for r in results):
      return ClaimResult(None, "; ".join(dict.fromkeys(r.evidence for r in results
                                                       if r.holds is None)))
    return ClaimResult(all(r.holds for r in results), " | ".join(r.evidence for r in results))
  return check


# -- rendering ---------------------------------------------------------------------------

def fmt(mean: float, se: float | None, digits: int = 2) -> str:
  if mean is None or not np.isfinite(mean):
    return "–"
  if se is None or not np.isfinite(se):
    return f"{mean:.{digits}f}"
  return f"{mean:.{digits}f} ± {se:.{digits}f}"


def markdown(table: Table, meta: dict[str, Any]) -> str:
  spec = table.spec
  head = ["row", "source", "n"] + list(spec.cells)
  body = []
  for row in spec.rows:
    if row.name in table.stats:
      st = table.stats[row.name]
      n = len(table.seeds[row.name])
      body.append([row.name, "ours", n] + [fmt(st[c].mean, st[c].se) for c in spec.cells])
    if row.paper and not spec.is_quick:
      body.append([row.name if row.name not in table.stats else "", "paper", 5] +
                  [fmt(*row.paper[c]) if c in row.paper else "–" for c in spec.cells])
  chance = meta.get("chance")
  if chance:
    body.append(["random ranking", "chance", "–"] + [fmt(chance.get(c), None) for c in spec.cells])
  lines = [f"# {spec.id}{' (quick, synthetic)' if spec.is_quick else ''}: {spec.title}", "",
           f"Paper: {spec.paper}", "",
           f"Data: {meta.get('dataset')} — {meta.get('bundle_summary', '')}", "",
           f"Metrics in percent on the test split, mean ± standard error over seeds "
           f"({meta.get('protocol_text', '')})." + (
               " The 'chance' line is the expected value of a uniformly random ranking under "
               "the same exclusions: a row at or below it has learnt nothing usable." if chance
               else ""), "",
           tabulate.tabulate(body, headers=head, tablefmt="github"), ""]
  claims = check_claims(table)
  if claims:
    lines += ["## The paper's claims, checked here", ""]
    for text, res in claims:
      mark = {True: "holds", False: "does NOT hold", None: "not checked"}[res.holds]
      lines.append(f"- **{mark}**: {text} — {res.evidence}")
    lines.append("")
  if spec.notes:
    lines += ["## Protocol notes", ""] + [f"- {n}" for n in spec.notes] + [""]
  notes = [f"- {r.name}: {r.note}" for r in spec.rows if r.note]
  if notes:
    lines += ["## Row configuration", ""] + notes + [""]
  lines += ["## Run metadata", "", "```", json.dumps(meta, indent=1, sort_keys=True), "```", ""]
  return "\n".join(lines)


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
  lines = [f"ltbench diff {spec.id}: ours vs the paper ({spec.paper})",
           "z = (ours − paper) / sqrt(SE_ours² + SE_paper²)", ""]
  lines.append(tabulate.tabulate(
      [[r["row"], r["cell"], r["ours"], r["paper"], r.get("delta", ""), r.get("rel", ""), r["z"]]
       for r in rows], headers=["row", "cell", "ours", "paper", "Δ", "Δ rel", "z"],
      tablefmt="github", disable_numparse=True))
  claims = check_claims(table)
  if claims:
    lines += ["", "Claims:"]
    for text, res in claims:
      mark = {True: "HOLDS", False: "FAILS", None: "NOT CHECKED"}[res.holds]
      lines.append(f"  [{mark}] {text}\n      {res.evidence}")
  return "\n".join(lines)


def write_reports(table: Table, meta: dict[str, Any], out_dir: pathlib.Path) -> list[pathlib.Path]:
  out_dir.mkdir(parents=True, exist_ok=True)
  paths = [out_dir / "table.md", out_dir / "table.csv", out_dir / "table.json"]
  paths[0].write_text(markdown(table, meta))
  df = frame(table)
  df.to_csv(paths[1], index=False)
  payload = {"spec": table.spec.id, "meta": meta, "cells": json.loads(df.to_json(orient="records")),
             "claims": [{"claim": t, "holds": r.holds, "evidence": r.evidence}
                        for t, r in check_claims(table)]}
  paths[2].write_text(json.dumps(payload, indent=1))
  return paths
