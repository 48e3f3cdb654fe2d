"""IDW (2023) Figure 7: MUR-IDW's HR@20 / NDCG@20 against the stopping threshold η
(7a: η ∈ [1e-4, 7e-4]) and the weight momentum m (7b: {0.7, 0.8, 0.9, 0.99, 1}) on
MovieLens-1M (here `ml-1m-u2999-time`, as idw/table1).

Each sweep holds the other at Table 1's value (η = 4e-4, m = 0.9); the point where both are
Table 1's is one row ("η=4e-4, m=0.9"), drawn in both panels and sharing Table 1's MUR-IDW
trials. m = 1 keeps the initial weights (no density weighting): MUR plus calibration.

Paper: "We found η = 0.0004 to be the best"; "m = 0.9 yields the best results, followed by
m = 0.99 and m = 1.0"; a low m "makes the model unstable".

Command (paper scale):  ltbench run idw/figure7 --data-dir DIR
Expected wall time: as idw/table1's rows (11 rows, 1 shared with idw/table1): hours per row at 5 seeds on
a 2-core CPU, about 2 minutes on one NVIDIA H200 GPU.
Run locally:            ltbench run idw/figure7 --quick   (synthetic; η ∈ {1, 4, 7}e-4, m ∈
                        {0.7, 0.9, 1})
Writes figure7.png and figure7.csv beside the table.
"""

from __future__ import annotations

import pandas as pd

from ltbench.harness import figures
from ltbench.harness.spec import Claim, ClaimResult, Row, TableSpec
from reproductions.idw import table1
from reproductions.idw.common import (IDW_OPTIONS, MODEL, NOTES, PAPER_CITATION, SELECT,
                                      SEQUENCES, TRAIN, idw_quick)

ETAS = (1e-4, 2e-4, 3e-4, 4e-4, 5e-4, 6e-4, 7e-4)
MOMENTA = (0.7, 0.8, 0.9, 0.99, 1.0)
QUICK_ETAS, QUICK_MOMENTA = (1e-4, 4e-4, 7e-4), (0.7, 0.9, 1.0)
ETA0, M0 = IDW_OPTIONS["eta"], IDW_OPTIONS["momentum"]
CELLS = table1.CELLS
CELL = "overall/NDCG@20"


def row_name(eta: float, m: float) -> str:
  return f"η={eta:g}, m={m:g}"


def points(etas=ETAS, momenta=MOMENTA) -> list[tuple[float, float]]:
  """(η, m) of every row: the η sweep at m0, then the m sweep at η0 (the shared point once)."""
  pts = [(e, M0) for e in etas] + [(ETA0, m) for m in momenta]
  return list(dict.fromkeys(pts))


def rows(etas=ETAS, momenta=MOMENTA) -> tuple[Row, ...]:
  return tuple(Row(row_name(e, m), "mur_idw", {**IDW_OPTIONS, "eta": e, "momentum": m},
                   note=f"MUR-IDW, η = {e:g}, m = {m:g}") for e, m in points(etas, momenta))


def _points_of(table):
  out = []
  for r in table.spec.rows:
    out.append((r.params["eta"], r.params["momentum"], r.name))
  return out


def figure(table, trials, out_dir):
  recs = []
  for sweep, x_of in (("η (7a)", lambda e, m: e), ("momentum m (7b)", lambda e, m: m)):
    for e, m, name in _points_of(table):
      if (sweep.startswith("η") and m != M0) or (sweep.startswith("m") and e != ETA0):
        continue
      for cell in ("overall/HR@20", "overall/NDCG@20"):
        st = table.get(name, cell)
        if st is None or st.n == 0:
          continue
        recs.append({"grid_row": cell, "grid_col": sweep, "series": "MUR-IDW",
                     "value": x_of(e, m), "eta": e, "momentum": m, "mean": st.mean,
                     "se": st.se, "n": st.n})
  if not recs:
    return []
  df = pd.DataFrame(recs)
  return figures.grid_lines(df, "value", out_dir / "figure7",
                            "MUR-IDW vs η (at m = 0.9) and momentum m (at η = 4e-4)",
                            "η | m", "%")


def best_at(param: str, value: float, fixed: str, fixed_value: float):
  def check(table) -> ClaimResult:
    means = {}
    for e, m, name in _points_of(table):
      p = {"eta": e, "momentum": m}
      st = table.get(name, CELL)
      if p[fixed] == fixed_value and st is not None and st.n:
        means[p[param]] = st.mean
    if value not in means or len(means) < 2:
      return ClaimResult(None, f"needs {param} = {value:g} and another value")
    top = max(means, key=means.get)
    return ClaimResult(top == value, f"{CELL} by {param}: " + ", ".join(
        f"{k:g}: {v:.2f}" for k, v in sorted(means.items())) + f" (best {top:g})")
  return check


def m09_then_099_then_1(table) -> ClaimResult:
  vals = {}
  for e, m, name in _points_of(table):
    st = table.get(name, CELL)
    if e == ETA0 and m in (0.9, 0.99, 1.0) and st is not None and st.n:
      vals[m] = st.mean
  if len(vals) < 3:
    return ClaimResult(None, "needs m = 0.9, 0.99 and 1 at η = 4e-4")
  return ClaimResult(vals[0.9] > vals[0.99] > vals[1.0], f"{CELL}: m=0.9 {vals[0.9]:.2f}, "
                     f"m=0.99 {vals[0.99]:.2f}, m=1 {vals[1.0]:.2f}")


CLAIMS = (
    Claim("η = 4e-4 is the best stopping threshold (Figure 7a, overall NDCG@20)",
          best_at("eta", ETA0, "momentum", M0)),
    Claim("m = 0.9 is the best momentum (Figure 7b, overall NDCG@20)",
          best_at("momentum", M0, "eta", ETA0)),
    Claim("m = 0.9 is followed by m = 0.99 and then m = 1 (overall NDCG@20)",
          m09_then_099_then_1),
)


def make_spec(etas=ETAS, momenta=MOMENTA) -> TableSpec:
  return TableSpec(
      id="idw/figure7", title="MUR-IDW vs η and momentum m (MovieLens-1M)",
      paper=f"{PAPER_CITATION}, Figure 7", dataset="ml-1m-u2999-time", cells=CELLS,
      rows=rows(etas, momenta), train=TRAIN, model=MODEL, data_protocol="sequences",
      sequence_options=SEQUENCES, claims=CLAIMS,
      notes=("One sweep holds the other parameter at Table 1's value (η = 4e-4, m = 0.9); "
             "that point is one row, shared with idw/table1's MUR-IDW.",) + NOTES,
      figure=figure, select_cell=SELECT, extra_ks=(5, 20), quick=quick)


def get_spec() -> TableSpec:
  return make_spec()


def quick() -> TableSpec:
  return idw_quick(make_spec(QUICK_ETAS, QUICK_MOMENTA))
