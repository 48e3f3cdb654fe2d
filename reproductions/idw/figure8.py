"""IDW (2023) Figure 8: MUR-IDW with and without user-tower calibration (§3.3, §4.6.3), with
MUR for reference, on each data set (`--dataset` as idw/table1).

"IDW w/o user calib" ends after the last wake phase (calibration_epochs = 0); the other two
rows are Table 1's MUR and MUR-IDW and share its trials. The paper draws the figure as bars
without printed values.

Command (paper scale):  ltbench run idw/figure8 --data-dir DIR
Other data sets:        ltbench run idw/figure8 --dataset amazon-kindle --data-dir ...
Expected wall time: as idw/table1's rows (3 rows, 2 shared with idw/table1): hours per row at 5 seeds on
a 2-core CPU, about 2 minutes on one NVIDIA H200 GPU.
Run locally:            ltbench run idw/figure8 --quick
Writes figure8.png and figure8.csv beside the table.
"""

from __future__ import annotations

import pandas as pd

from ltbench.harness import figures, report
from ltbench.harness.spec import Claim, Row, TableSpec
from reproductions.idw import table1
from reproductions.idw.common import (IDW_OPTIONS, MODEL, NOTES, PAPER_CITATION, SELECT,
                                      SEQUENCES, TRAIN, idw_quick)

CELLS = table1.CELLS
ROWS = (
    Row("MUR", "mur", {}, note="M = 5"),
    Row("MUR-IDW", "mur_idw", dict(IDW_OPTIONS), note="M = 5, Algorithm 1 (with calibration)"),
    Row("MUR-IDW w/o user calib", "mur_idw", {**IDW_OPTIONS, "calibration_epochs": 0},
        note="M = 5, Algorithm 1 without the user-tower calibration"),
)


def figure(table, trials, out_dir):
  recs = []
  for r in ROWS:
    if r.name not in table.stats:
      continue
    rec = {"row": r.name}
    for cell in ("overall/HR@20", "overall/NDCG@20", "head/NDCG@20", "tail/NDCG@20"):
      st = table.get(r.name, cell)
      rec[cell], rec[f"{cell}_se"] = st.mean, st.se
    recs.append(rec)
  if not recs:
    return []
  df = pd.DataFrame(recs)
  return figures.bars(df, "row", ["overall/HR@20", "overall/NDCG@20", "head/NDCG@20",
                                  "tail/NDCG@20"], out_dir / "figure8",
                      f"User-tower calibration ({table.spec.dataset})", "%")


CLAIMS = (
    Claim("User-tower calibration boosts overall performance (MUR-IDW above MUR-IDW w/o user "
          "calib on HR@20 and NDCG@20)",
          report.better("MUR-IDW", "MUR-IDW w/o user calib", ["overall/HR@20",
                                                               "overall/NDCG@20"])),
)


def get_spec() -> TableSpec:
  return TableSpec(
      id="idw/figure8", title="MUR-IDW with and without user-tower calibration",
      paper=f"{PAPER_CITATION}, Figure 8", dataset="ml-1m-u2999-time", cells=CELLS, rows=ROWS,
      train=TRAIN, model=MODEL, data_protocol="sequences", sequence_options=SEQUENCES,
      claims=CLAIMS, notes=NOTES, figure=figure, select_cell=SELECT, extra_ks=(5, 20),
      quick=lambda: idw_quick(get_spec()))
