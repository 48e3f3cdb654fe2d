"""MIRec (WWW'21) Table 6: ablation of MIRec on MovieLens-1M, HR@10 / NDCG@10, overall /
head / tail ("Default" is the two-tower backbone, the paper's Table 4 Two-tower numbers).

Command (paper scale, ML-1M):
  ltbench run mirec/table6 --data-dir DIR
  ltbench diff mirec/table6
Expected wall time: not measured yet; each MIRec-family row trains θ* (100 epochs, a two-tower
step) and then the meta stage (100 epochs, several two-tower steps each); Default and MIRec
reuse mirec/table4's trials when those have run (same configuration key).
Run locally (synthetic data, 2 seeds, 8 epochs):
  ltbench run mirec/table6 --quick
"""

from __future__ import annotations

from ltbench.harness import report
from ltbench.harness.spec import Claim, Row, TableSpec
from reproductions.mirec.common import (CELLS, LAMBDA_P_GRID, MIREC_GRID, ML1M, MODEL, NOLOGQ_GRID,
                                        NOTES, PAPER_CITATION, PER_DATASET, TRAIN, grid,
                                        quick_variant)

MIREC = {"lambda_c": 1.0, "lam": 0.1, "lambda_p": 0.5}

ROWS = (
    Row("Default", "two_tower", {}, ML1M["Two-tower"],
        note="the two-tower backbone (Table 4's Two-tower)", grid=grid()),
    Row("MIRec", "mirec", dict(MIREC), ML1M["MIRec"],
        note="as in Table 4", grid=MIREC_GRID),
    Row("MIRec_M", "mirec_m", dict(MIREC), ML1M["MIRec_M"],
        note="meta-learning only: Ω* = every example of head items, Ω(k) = k of each head item",
        grid=MIREC_GRID),
    Row("MIRec_C", "mirec_c", {"lambda_c": 1.0}, ML1M["MIRec_C"],
        note="curriculum only: θ trained on Ω* (logQ), then fine-tuned on Ω(k) by L_g, no F; "
             "serves the fine-tuned model (λ_p = 0)", grid=grid()),
    Row("MIRec - LogQ", "mirec_nologq", {"lam": 0.1, "lambda_p": 0.5}, ML1M["MIRec - LogQ"],
        note="MIRec with λ_c = 0 (plain softmax for θ*)", grid=NOLOGQ_GRID),
    Row("Two-tower_2", "two_tower2", {"lambda_p": 0.5}, ML1M["Two-tower_2"],
        note="two independently initialised two-towers (200 epochs each, own data order), "
             "mixed by λ_p = 0.5 at serving", grid=grid(lambda_p=LAMBDA_P_GRID)),
)

OVERALL = ["overall/HR@10", "overall/NDCG@10"]
TAIL = ["tail/HR@10", "tail/NDCG@10"]

CLAIMS = (
    Claim("Each ablation loses to MIRec on overall HR@10 and NDCG@10 (§5.4)",
          report.all_of(*(report.better("MIRec", r, OVERALL) for r in
                          ("MIRec_M", "MIRec_C", "MIRec - LogQ", "Two-tower_2")))),
    Claim("MIRec_M (head-only meta-learning) is below MIRec on every cell",
          report.worse("MIRec_M", "MIRec", list(CELLS))),
    Claim("MIRec_C is good on the tail but loses head HR@10 against MIRec: level or better "
          "on tail HR and NDCG, below on head HR@10",
          report.all_of(report.not_worse("MIRec_C", "MIRec", TAIL),
                        report.worse("MIRec_C", "MIRec", ["head/HR@10"]))),
    Claim("Without logQ the tail drops: MIRec - LogQ below MIRec on tail HR and NDCG",
          report.worse("MIRec - LogQ", "MIRec", TAIL)),
    Claim("Two-tower_2 is below MIRec on the tail (HR and NDCG)",
          report.worse("Two-tower_2", "MIRec", TAIL)),
)


def get_spec() -> TableSpec:
  return TableSpec(
      id="mirec/table6",
      title="MIRec ablation on MovieLens-1M (HR@10, NDCG@10; overall / head / tail)",
      paper=f"{PAPER_CITATION}, Table 6", dataset="ml-1m", cells=CELLS, rows=ROWS,
      seeds=(0, 1, 2, 3, 4), train=TRAIN, model=MODEL, claims=CLAIMS, notes=NOTES,
      select_cell="overall/NDCG@10", per_dataset=PER_DATASET,
      quick=lambda: quick_variant(get_spec()))
