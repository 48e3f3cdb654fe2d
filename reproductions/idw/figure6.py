"""IDW (2023) Figure 6: HR@20 / NDCG@20 against the number of user representations M for
MUR and MUR-IDW on MovieLens-1M (here `ml-1m-u2999-time`, as idw/table1).

M = 1 is SUR (and SUR-IDW), M = 5 is Table 1's MUR (and MUR-IDW): those rows are configured
exactly as Table 1's and share its trials. The figure's axis values are not in the text;
M ∈ {1, 2, 3, 5, 8} is our choice around the paper's 5.

Command (paper scale):  ltbench run idw/figure6 --data-dir DIR
Expected wall time: as idw/table1's rows (10 rows, 4 shared with idw/table1): hours per row at 5 seeds on
a 2-core CPU, about 2 minutes on one NVIDIA H200 GPU.
Run locally:            ltbench run idw/figure6 --quick   (synthetic data, M ∈ {1, 2, 5})
Writes figure6.png and figure6.csv beside the table.
"""

from __future__ import annotations

import dataclasses

import pandas as pd

from ltbench.harness import figures
from ltbench.harness.spec import Claim, ClaimResult, Row, TableSpec
from reproductions.idw import table1
from reproductions.idw.common import (IDW_OPTIONS, MODEL, NOTES, PAPER_CITATION, SELECT,
                                      SEQUENCES, TRAIN, idw_quick, idw_ran)

MS = (1, 2, 3, 5, 8)
QUICK_MS = (1, 2, 5)
SERIES = ("MUR", "MUR-IDW")
CELLS = table1.CELLS


def row_name(series: str, m: int) -> str:
  return f"{series} M={m}"


def row(series: str, m: int) -> Row:
  """M = 1: Table 1's SUR / SUR-IDW; M = 5: its MUR / MUR-IDW; else MUR with num_interests."""
  idw = series == "MUR-IDW"
  options = dict(IDW_OPTIONS) if idw else {}
  if m == 1:
    method = "sur_idw" if idw else "sur"
  else:
    method = "mur_idw" if idw else "mur"
    if m != 5:
      options["num_interests"] = m
  return Row(row_name(series, m), method, options, note=f"M = {m}" + (
      ", Algorithm 1" if idw else ""))


def rows(ms=MS) -> tuple[Row, ...]:
  return tuple(row(s, m) for s in SERIES for m in ms)


def ms_of(table) -> list[int]:
  return sorted({int(r.name.rsplit("=", 1)[1]) for r in table.spec.rows})


def figure(table, trials, out_dir):
  recs = []
  for cell in ("overall/HR@20", "overall/NDCG@20", "tail/NDCG@20"):
    for s in SERIES:
      for m in ms_of(table):
        st = table.get(row_name(s, m), cell)
        if st is None or st.n == 0:
          continue
        recs.append({"grid_row": table.spec.dataset, "grid_col": cell, "series": s, "M": m,
                     "mean": st.mean, "se": st.se, "n": st.n})
  if not recs:
    return []
  return figures.grid_lines(pd.DataFrame(recs), "M", out_dir / "figure6",
                            "HR@20 / NDCG@20 vs number of user representations M", "M", "%")


def idw_better_at_every_m(table) -> ClaimResult:
  parts, holds = [], True
  for m in ms_of(table):
    a, b = table.get(row_name("MUR-IDW", m), "overall/NDCG@20"), table.get(
        row_name("MUR", m), "overall/NDCG@20")
    if a is None or b is None or not a.n or not b.n:
      return ClaimResult(None, f"needs MUR and MUR-IDW at M = {m}")
    holds &= a.mean > b.mean
    parts.append(f"M={m}: {a.mean:.2f} vs {b.mean:.2f}")
  return ClaimResult(holds, "overall NDCG@20 MUR-IDW vs MUR: " + "; ".join(parts))


def idw_gains_with_m(table) -> ClaimResult:
  ms = ms_of(table)
  lo, hi = table.get(row_name("MUR-IDW", ms[0]), "overall/NDCG@20"), table.get(
      row_name("MUR-IDW", ms[-1]), "overall/NDCG@20")
  if lo is None or hi is None or not lo.n or not hi.n:
    return ClaimResult(None, f"needs MUR-IDW at M = {ms[0]} and M = {ms[-1]}")
  return ClaimResult(hi.mean > lo.mean, f"MUR-IDW overall NDCG@20: {lo.mean:.2f} at M = "
                     f"{ms[0]}, {hi.mean:.2f} at M = {ms[-1]}")


def _idw_rows(table) -> list[str]:
  return [row_name("MUR-IDW", m) for m in ms_of(table)]


CLAIMS = (
    idw_ran(_idw_rows, Claim("IDW performs better than MUR for the same M (overall NDCG@20)",
                             idw_better_at_every_m)),
    idw_ran(_idw_rows, Claim("IDW gains with increasing M (largest M above M = 1, overall "
                             "NDCG@20)", idw_gains_with_m)),
)


def make_spec(ms=MS) -> TableSpec:
  return TableSpec(
      id="idw/figure6", title="HR@20 / NDCG@20 vs the number of user representations M "
      "(MUR, MUR-IDW; MovieLens-1M)", paper=f"{PAPER_CITATION}, Figure 6",
      dataset="ml-1m-u2999-time", cells=CELLS, rows=rows(ms), train=TRAIN, model=MODEL,
      data_protocol="sequences", sequence_options=SEQUENCES, claims=CLAIMS,
      notes=(f"M ∈ {{{', '.join(map(str, ms))}}}: our choice (Figure 6's axis values are not "
             "in the text); M = 1 rows are SUR / SUR-IDW and M = 5 rows Table 1's MUR / "
             "MUR-IDW (their trials are shared).",) + NOTES,
      figure=figure, select_cell=SELECT, extra_ks=(5, 20), quick=quick)


def get_spec() -> TableSpec:
  return make_spec()


def quick() -> TableSpec:
  return idw_quick(make_spec(QUICK_MS))
