"""IDW (2023) Table 4 (Appendix B): HR@5 / NDCG@5 of the Table 1 rows on the same data.

The rows and trials are Table 1's (same configuration): running both trains once.

Command (paper scale):  ltbench run idw/table4 --data-dir DIR
Other data sets:        ltbench run idw/table4 --dataset ml-100k --data-dir DIR
Run locally:            ltbench run idw/table4 --quick
"""

from __future__ import annotations

import dataclasses

from ltbench.harness import report
from ltbench.harness.spec import Claim, DatasetSettings, TableSpec
from reproductions.idw import table1
from reproductions.idw.common import (PAPER_CITATION, best_overall, idw_quick, idw_ran,
                                      marginal, paper)

CELLS = ("overall/HR@5", "overall/NDCG@5", "head/HR@5", "head/NDCG@5", "tail/HR@5",
         "tail/NDCG@5")
OVERALL = CELLS[:2]
NAMES = ("SUR", "MUR", "Frequency Balance", "Focal Balance", "Qmargin", "Item Norm",
         "Item Norm (Post-hoc)", "SUR-IDW", "MUR-IDW")


def _table(*vals):
  """Rows in NAMES order, four values each (HR@5 mean, se, NDCG@5 mean, se)."""
  return {n: paper(OVERALL, *vals[4 * i:4 * i + 4]) for i, n in enumerate(NAMES)}


ML1M = _table(54.69, 0.20, 39.72, 0.14, 55.21, 0.29, 40.25, 0.24, 46.07, 0.34, 31.72, 0.25,
              53.27, 0.48, 37.42, 0.43, 52.80, 0.63, 37.40, 0.53, 54.93, 0.67, 39.48, 0.54,
              53.09, 0.92, 37.98, 0.77, 56.88, 0.69, 41.57, 0.59, 57.79, 0.16, 42.42, 0.15)
KINDLE = _table(32.98, 0.85, 22.13, 0.66, 33.44, 0.58, 22.35, 0.44, 23.10, 0.31, 14.46, 0.22,
                30.93, 1.21, 19.65, 0.90, 32.03, 0.64, 20.82, 0.47, 35.02, 0.44, 23.55, 0.37,
                32.38, 0.37, 21.66, 0.32, 34.29, 0.31, 23.01, 0.28, 35.07, 0.51, 23.62, 0.39)
CLOTHING = _table(11.87, 0.67, 7.76, 0.55, 13.13, 0.63, 9.15, 0.43, 5.34, 0.31, 3.16, 0.19,
                  11.49, 0.73, 7.42, 0.49, 12.32, 0.53, 7.94, 0.42, 12.68, 0.79, 8.55, 0.75,
                  11.94, 0.61, 7.64, 0.50, 13.79, 0.18, 9.62, 0.10, 14.67, 0.16, 10.43, 0.20)

PER_DATASET = {**table1.PER_DATASET,
               "ml-1m-u2999-time": DatasetSettings(paper=ML1M),
               "amazon-kindle": DatasetSettings(paper=KINDLE),
               "amazon-clothing": DatasetSettings(paper=CLOTHING)}

CLAIMS = (
    marginal("MUR", "SUR", "overall/HR@5", rel=0.05),
    Claim("Frequency Balance hurts overall (below MUR on HR@5 and NDCG@5)",
          report.worse("Frequency Balance", "MUR", list(OVERALL))),
    idw_ran("MUR-IDW", best_overall("MUR-IDW", OVERALL)),
)


def get_spec() -> TableSpec:
  base = table1.get_spec()
  return dataclasses.replace(
      base, id="idw/table4", title="HR@5 / NDCG@5 of the Table 1 rows",
      paper=f"{PAPER_CITATION}, Table 4 (Appendix B)",
      cells=CELLS, rows=tuple(dataclasses.replace(r, paper=ML1M.get(r.name, {}))
                              for r in base.rows),
      claims=CLAIMS, per_dataset=PER_DATASET, quick=lambda: idw_quick(get_spec()))
