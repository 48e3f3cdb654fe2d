"""SSL (CIKM'21) RQ1: does SSL improve the two-tower model? Two-tower, Feature Dropout,
spread-out, SSL with random (RFM) and correlated (CFM) feature masking; Recall@10/50,
MAP@10/50 and HR/NDCG@50 on overall / head / tail, mean ± SE over 5 seeds, on MovieLens
(the paper's Wikipedia and app-to-app data are not available: directions only).

Command (paper scale, ML-1M; data from --data-dir, $LTBENCH_DATA or the user cache):
  ltbench run ssl/rq1 --data-dir DIR
  ltbench run ssl/rq1 --data-dir DIR --dataset ml-100k
Expected wall time: about 5.5 h per row for 5 seeds x 40 epochs on a 2-core CPU (the
Two-tower row of cdn/table2; the SSL rows add two item-tower passes over the batch per
step); minutes per row on a GPU. Measured for 3 seeds x 10 epochs on ML-1M (2-core CPU):
Two-tower 18 min, FD 19, Spread-out 24, SSL-RFM and SSL-CFM 26 each.
Run locally (synthetic data, 2 seeds, 8 epochs, a few minutes on a 2-core CPU):
  ltbench run ssl/rq1 --quick
"""

from __future__ import annotations

from ltbench.harness import report
from ltbench.harness.spec import Claim, Row, TableSpec
from reproductions.ssl.common import (CELLS, FOUR, GRID, MODEL, NOTES, PAPER_CITATION,
                                      PER_DATASET, TRAIN, quick_variant, rows_config,
                                      tail_gain_exceeds_head)

ROWS = tuple(Row(name, method, params, note=note, grid=GRID if method != "two_tower" else {})
             for name, method, params, note in rows_config())

OVERALL = [f"overall/{m}" for m in FOUR]

CLAIMS = (
    Claim("SSL (CFM) improves over Two-tower on the four overall metrics",
          report.better("SSL-CFM", "Two-tower", OVERALL)),
    Claim("SSL (RFM) improves over Two-tower on the four overall metrics",
          report.better("SSL-RFM", "Two-tower", OVERALL)),
    Claim("SSL improves tail more than head (relative Recall@50 gain of CFM over Two-tower)",
          tail_gain_exceeds_head("SSL-CFM", "Two-tower", "Recall@50")),
    Claim("SSL improves tail more than head (relative MAP@50 gain of CFM over Two-tower)",
          tail_gain_exceeds_head("SSL-CFM", "Two-tower", "MAP@50")),
    Claim("SSL (CFM) beats the regularisation baselines FD and spread-out on overall "
          "Recall@50 and MAP@50",
          report.all_of(report.better("SSL-CFM", "FD", ["overall/Recall@50", "overall/MAP@50"]),
                        report.better("SSL-CFM", "Spread-out",
                                      ["overall/Recall@50", "overall/MAP@50"]))),
)


def get_spec() -> TableSpec:
  return TableSpec(
      id="ssl/rq1", title="SSL vs Two-tower, FD and spread-out (Recall / MAP @10, @50; "
      "overall / head / tail)", paper=f"{PAPER_CITATION}, RQ1 (Table 2)", dataset="ml-1m",
      cells=CELLS, rows=ROWS, seeds=(0, 1, 2, 3, 4), train=TRAIN, model=MODEL, claims=CLAIMS,
      notes=NOTES, per_dataset=PER_DATASET, select_cell="overall/Recall@50",
      quick=lambda: quick_variant(get_spec()))
