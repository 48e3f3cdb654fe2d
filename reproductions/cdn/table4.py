"""CDN (KDD'23) Table 4: cross-decoupling ablation on MovieLens-1M (BDN, UDN, IDN vs CDN).

Command (paper scale):  ltbench run cdn/table4 --data-dir DIR
Expected wall time: about 5.4 h per row for 5 seeds x 40 epochs on a 2-core CPU.
Run locally:            ltbench run cdn/table4 --quick
"""

from __future__ import annotations

from ltbench.harness import report
from ltbench.harness.spec import Claim, Row, TableSpec
from reproductions.cdn.common import (PER_DATASET, CDN_GRID, CELLS, EXPERTS_GRID, GAMMA, GAMMA_GRID, ML1M,
                                      MODEL, NOTES, PAPER_CITATION, TRAIN, grid, quick_variant)

ROWS = (
    Row("Two-tower", "two_tower", {}, ML1M["Two-tower"], note="the backbone",
        grid=grid()),
    Row("BDN", "bdn", {}, ML1M["BDN"],
        note="CDN with both branches weighted 0.5 in training (α fixed) and at serving; experts "
             "sized to the item tower's budget as CDN's",
        grid=grid()),
    Row("UDN", "udn", {"gamma": GAMMA}, ML1M["UDN"],
        note="user-side decoupling only: bilateral users + γ-adapter + Ω_r, MLP item tower",
        grid=grid(gamma=GAMMA_GRID)),
    Row("IDN", "idn", {}, ML1M["IDN"],
        note="item-side decoupling only: mem/gen experts with the frequency gate (sized to the "
             "item tower's budget as CDN's), one user tower",
        grid=grid(n_mem=EXPERTS_GRID, n_gen=EXPERTS_GRID)),
    Row("CDN", "cdn", {"gamma": GAMMA}, ML1M["CDN"],
        note=f"γ = {GAMMA}; 1 + 1 experts sized to the item tower's budget (§3.3, not B.3's "
             "one layer of 64)",
        grid=CDN_GRID),
)

ALL = list(CELLS)
CLAIMS = (
    Claim("UDN, IDN and CDN each beat Two-tower on overall HR@50",
          report.all_of(*(report.better(r, "Two-tower", ["overall/HR@50"])
                          for r in ("UDN", "IDN", "CDN")))),
    Claim("CDN beats UDN and IDN on overall and head HR@50 (cross decoupling helps)",
          report.all_of(report.better("CDN", "UDN", ["overall/HR@50", "head/HR@50"]),
                        report.better("CDN", "IDN", ["overall/HR@50", "head/HR@50"]))),
    Claim("BDN improves tail HR@50 over Two-tower but its head HR@50 degrades",
          report.all_of(report.better("BDN", "Two-tower", ["tail/HR@50"]),
                        report.worse("BDN", "Two-tower", ["head/HR@50"]))),
)


def get_spec() -> TableSpec:
  return TableSpec(
      id="cdn/table4", title="Cross decoupling ablation on MovieLens-1M (BDN / UDN / IDN / CDN)",
      paper=f"{PAPER_CITATION}, Table 4", dataset="ml-1m", cells=CELLS, rows=ROWS,
      train=TRAIN, model=MODEL, claims=CLAIMS, notes=NOTES,
      per_dataset=PER_DATASET, quick=lambda: quick_variant(get_spec()))
