"""CDN (KDD'23) Figure 1: two-stage training and forgetting. HR@50 on tail items (x) against
overall (y) for H→H, H→T, T→H, T→T (H = the original long-tail distribution Ω_m, T = the
re-sampled balanced distribution Ω_r; 20 + 20 epochs; stage 2 re-trains the item side with
the user tower frozen; item ids only, Appendix B.1), with CDN for reference.

Command (paper scale):  ltbench run cdn/figure1 --data-dir DIR
Expected wall time: about 5.4 h per row for 5 seeds x 40 epochs on a 2-core CPU.
Run locally:            ltbench run cdn/figure1 --quick
Writes figure1.png and figure1.csv beside the table.
"""

from __future__ import annotations

import pandas as pd

from ltbench.harness import figures, report
from ltbench.harness.spec import Claim, Row, TableSpec
from reproductions.cdn.common import PER_DATASET, CELLS, GAMMA, MODEL, NOTES, PAPER_CITATION, TRAIN, quick_variant

SAMPLER = {"H": "natural", "T": "omega_r"}


def two_stage(first, second):
  return Row(f"{first}→{second}", "two_stage",
             {"stage1": SAMPLER[first], "stage2": SAMPLER[second], "item_features": "ids"},
             note=f"stage 1 on {SAMPLER[first]}, stage 2 on {SAMPLER[second]} (item side only, "
                  "user tower frozen), item id as the only item feature")


ROWS = (two_stage("H", "H"), two_stage("H", "T"), two_stage("T", "H"), two_stage("T", "T"),
        Row("CDN", "cdn", {"gamma": GAMMA}, note=f"full CDN with all item features, γ = {GAMMA}, experts sized to the item "
                 "tower's budget (§3.3; see the notes)"))


def figure(table, trials, out_dir):
  recs = []
  for row in ROWS:
    t, o = table.get(row.name, "tail/HR@50"), table.get(row.name, "overall/HR@50")
    if t and o and t.n:
      recs.append({"row": row.name, "tail_HR50": t.mean, "tail_HR50_se": t.se,
                   "overall_HR50": o.mean, "overall_HR50_se": o.se})
  if not recs:
    return []
  return figures.scatter(pd.DataFrame(recs), "row", "tail_HR50", "overall_HR50",
                         out_dir / "figure1", "Two-stage decoupling: tail vs overall HR@50",
                         "tail HR@50 (%)", "overall HR@50 (%)")


CLAIMS = (
    Claim("Switching to T in stage 2 raises tail HR@50 but lowers overall HR@50 (H→T vs H→H)",
          report.all_of(report.better("H→T", "H→H", ["tail/HR@50"]),
                        report.worse("H→T", "H→H", ["overall/HR@50"]))),
    Claim("Training stage 1 on H beats stage 1 on T overall (H→H vs T→H, H→T vs T→T)",
          report.all_of(report.better("H→H", "T→H", ["overall/HR@50"]),
                        report.better("H→T", "T→T", ["overall/HR@50"]))),
    Claim("CDN beats every two-stage variant on overall HR@50",
          report.all_of(*(report.better("CDN", r.name, ["overall/HR@50"]) for r in ROWS[:4]))),
)


def get_spec() -> TableSpec:
  return TableSpec(
      id="cdn/figure1", title="Two-stage decoupling forgets: tail vs overall HR@50 (MovieLens-1M)",
      paper=f"{PAPER_CITATION}, Figure 1", dataset="ml-1m", cells=CELLS, rows=ROWS,
      train=TRAIN, model=MODEL, claims=CLAIMS, notes=NOTES, figure=figure,
      per_dataset=PER_DATASET, quick=lambda: quick_variant(get_spec()))
