"""SSL (CIKM'21) RQ4: random (RFM) against correlated (CFM) feature masking, head to head on
Recall@10/50 and MAP@10/50, on MovieLens (directions only). The two rows are RQ1's (the
trials are reused from ssl/rq1's results when present).

Command (paper scale, ML-1M):  ltbench run ssl/rq4 --data-dir DIR
Expected wall time: about 5.5 h per row for 5 seeds x 40 epochs on a 2-core CPU.
Run locally (synthetic data, 2 seeds, 8 epochs):  ltbench run ssl/rq4 --quick
"""

from __future__ import annotations

from ltbench.harness import report
from ltbench.harness.spec import Claim, Row, TableSpec
from reproductions.ssl.common import (CELLS, FOUR, GRID, MODEL, NOTES, PAPER_CITATION,
                                      PER_DATASET, TRAIN, quick_variant, rows_config)

ROWS = tuple(Row(name, method, params, note=note, grid=GRID)
             for name, method, params, note in rows_config() if name in ("SSL-RFM", "SSL-CFM"))

CLAIMS = (
    Claim("CFM beats RFM on all four metrics (overall Recall@10/50, MAP@10/50)",
          report.better("SSL-CFM", "SSL-RFM", [f"overall/{m}" for m in FOUR])),
    Claim("CFM beats RFM on the tail (tail Recall@50 and MAP@50)",
          report.better("SSL-CFM", "SSL-RFM", ["tail/Recall@50", "tail/MAP@50"])),
)


def get_spec() -> TableSpec:
  return TableSpec(
      id="ssl/rq4", title="RFM vs CFM (Recall / MAP @10, @50; overall / head / tail)",
      paper=f"{PAPER_CITATION}, RQ4", dataset="ml-1m", cells=CELLS, rows=ROWS,
      seeds=(0, 1, 2, 3, 4), train=TRAIN, model=MODEL, claims=CLAIMS, notes=NOTES,
      per_dataset=PER_DATASET, select_cell="overall/Recall@50",
      quick=lambda: quick_variant(get_spec()))
