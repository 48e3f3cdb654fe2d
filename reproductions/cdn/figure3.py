"""CDN (KDD'23) Figure 3: the mean gate value of the memorisation and the generalisation
expert for head and for tail items (CDN on MovieLens-1M).

Command (paper scale):  ltbench run cdn/figure3 --data-dir DIR
Expected wall time: about 5.4 h for 5 seeds x 40 epochs on a 2-core CPU.
Run locally:            ltbench run cdn/figure3 --quick
Writes figure3.png and figure3.csv beside the table.
"""

from __future__ import annotations


import numpy as np
import pandas as pd

from ltbench.harness import figures
from ltbench.harness.report import summarise
from ltbench.harness.spec import Claim, ClaimResult, Row, TableSpec
from reproductions.cdn.common import (PER_DATASET, CELLS, GAMMA, ML1M, MODEL, NOTES, PAPER_CITATION, TRAIN,
                                      quick_variant)

ROWS = (Row("CDN", "cdn", {"gamma": GAMMA}, ML1M["CDN"], note=f"γ = {GAMMA}, 1 + 1 experts sized to the item "
              "tower's budget (§3.3, not B.3's one layer of 64; see the notes)"),)
EXPERTS = ("memorisation", "generalisation")


def gate_stats(trials):
  """{(slice, expert): Stat over seeds} from the trials' recorded gate means."""
  out = {}
  for sl in ("head", "tail"):
    values = np.asarray([t["extras"][f"gate_{sl}"] for t in trials if t.get("extras")])
    for k, name in enumerate(EXPERTS):
      out[(sl, name)] = summarise(values[:, k]) if values.size else None
  return out


def figure(table, trials, out_dir):
  stats = gate_stats(trials)
  if any(v is None for v in stats.values()):
    return []
  df = pd.DataFrame([{"expert": name, **{f"{sl}": stats[(sl, name)].mean for sl in ("head", "tail")},
                      **{f"{sl}_se": stats[(sl, name)].se for sl in ("head", "tail")}}
                     for name in EXPERTS])
  return figures.bars(df, "expert", ["head", "tail"], out_dir / "figure3",
                      "CDN gate values: head vs tail items", "mean gate value")


def _claim(check, text_fn):
  def run(table):
    trials = getattr(table, "trials", None)
    if not trials:
      return ClaimResult(None, "needs the CDN trials' gate values")
    stats = gate_stats(trials)
    if any(v is None for v in stats.values()):
      return ClaimResult(None, "no gate values recorded")
    return ClaimResult(check(stats), text_fn(stats))
  return run


def _fmt(stats):
  return "; ".join(f"{sl} {name} {stats[(sl, name)].mean:.3f} ± {stats[(sl, name)].se:.3f}"
                   for sl in ("head", "tail") for name in EXPERTS) + " (mean ± SE over seeds)"


CLAIMS = (
    Claim("Head items put more weight on the memorisation expert than tail items do",
          _claim(lambda s: s[("head", "memorisation")].mean > s[("tail", "memorisation")].mean, _fmt)),
    Claim("Both head and tail items weight the generalisation expert above the memorisation one",
          _claim(lambda s: all(s[(sl, "generalisation")].mean > s[(sl, "memorisation")].mean
                               for sl in ("head", "tail")), _fmt)),
)


def get_spec() -> TableSpec:
  return TableSpec(
      id="cdn/figure3", title="CDN gate values of the two experts, head vs tail items (MovieLens-1M)",
      paper=f"{PAPER_CITATION}, Figure 3", dataset="ml-1m", cells=CELLS, rows=ROWS,
      train=TRAIN, model=MODEL, claims=CLAIMS, notes=NOTES, figure=figure,
      per_dataset=PER_DATASET, quick=lambda: quick_variant(get_spec()))
