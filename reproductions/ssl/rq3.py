"""SSL (CIKM'21) RQ3: the SSL loss multiplier α ∈ {0.01, 0.1, 0.3, 1, 3} (SSL with CFM
against spread-out at the same α) and the value-dropout rate p of the augmentation, on
MovieLens (directions only). Writes rq3-alpha.png/.csv (overall Recall@50 and MAP@50 against
α) and rq3-dropout.png/.csv (against p) beside the table.

Command (paper scale, ML-1M):  ltbench run ssl/rq3 --data-dir DIR
Expected wall time: 15 rows at about 5.5 h each for 5 seeds x 40 epochs on a 2-core CPU
(rows differing only in α or p share one compiled program); the Two-tower and the
α = 0.1, p = 0.1 rows are RQ1's (reused from ssl/rq1's results when present).
Run locally (synthetic data, 2 seeds, 8 epochs):  ltbench run ssl/rq3 --quick
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from ltbench.harness import figures, report
from ltbench.harness.spec import Claim, ClaimResult, Row, TableSpec
from reproductions.ssl.common import (ALPHA, ALPHAS, CELLS, MODEL, NOTES, PAPER_CITATION,
                                      PER_DATASET, SSL_OPTIONS, TAU, TRAIN, VALUE_DROPOUT,
                                      VALUE_DROPOUTS, quick_variant)


def ssl_row(alpha=ALPHA, p=VALUE_DROPOUT):
  return f"SSL α={alpha:g}" if p == VALUE_DROPOUT else f"SSL p={p:g}"


def spread_row(alpha):
  return f"Spread-out α={alpha:g}"


ROWS = (
    (Row("Two-tower", "two_tower", {}, note="the backbone (α = 0)"),)
    + tuple(Row(ssl_row(a), "ssl", {"masking": "cfm", **SSL_OPTIONS, "alpha": a},
                note=f"CFM, α = {a:g}, τ = {TAU}, p = {VALUE_DROPOUT}") for a in ALPHAS)
    + tuple(Row(spread_row(a), "spread_out", {"alpha": a, "tau": TAU},
                note=f"spread-out, α = {a:g}, τ = {TAU}") for a in ALPHAS)
    + tuple(Row(ssl_row(p=p), "ssl", {"masking": "cfm", **SSL_OPTIONS, "value_dropout": p},
                note=f"CFM, α = {ALPHA}, τ = {TAU}, p = {p:g}")
            for p in VALUE_DROPOUTS if p != VALUE_DROPOUT))

METRICS = ("overall/Recall@50", "overall/MAP@50")


def _stat(table, row, cell):
  st = table.get(row, cell)
  return (st.mean, st.se) if st is not None and st.n else (np.nan, np.nan)


def _columns(table, series):
  """One record's columns: for each (label, row), the mean and SE of each metric."""
  rec = {}
  for label, row in series:
    for cell in METRICS:
      metric = cell.split("/")[1]
      rec[f"{label} {metric}"], rec[f"{label} {metric}_se"] = _stat(table, row, cell)
  return rec


def figure(table, trials, out_dir):
  alpha = pd.DataFrame([{"alpha": a, **_columns(table, [("SSL", ssl_row(a)),
                                                        ("Spread-out", spread_row(a)),
                                                        ("Two-tower", "Two-tower")])}
                        for a in ALPHAS])
  dropout = pd.DataFrame([{"p": p, **_columns(table, [("SSL", ssl_row(p=p)),
                                                      ("Two-tower", "Two-tower")])}
                          for p in VALUE_DROPOUTS])
  out = []
  out += figures.lines(alpha, "alpha", ["SSL Recall@50", "Spread-out Recall@50",
                                        "Two-tower Recall@50", "SSL MAP@50",
                                        "Spread-out MAP@50", "Two-tower MAP@50"],
                       out_dir / "rq3-alpha", "Overall Recall@50 / MAP@50 vs α",
                       "α, the SSL loss multiplier (log scale)", "%", logx=True)
  out += figures.lines(dropout, "p", ["SSL Recall@50", "Two-tower Recall@50", "SSL MAP@50",
                                      "Two-tower MAP@50"],
                       out_dir / "rq3-dropout", f"Overall Recall@50 / MAP@50 vs value "
                       f"dropout rate (α = {ALPHA:g})", "p, value dropout rate", "%")
  return out


CLAIMS = (
    Claim("The SSL loss beats spread-out at equal α (overall Recall@50 and MAP@50, every α)",
          report.all_of(*(report.better(ssl_row(a), spread_row(a), list(METRICS))
                          for a in ALPHAS))),
    Claim("SSL beats Two-tower at a well-chosen α (the α with the best validation overall "
          "Recall@50)", lambda table: _best_alpha_beats(table)),
)


def _best_alpha_beats(table):
  # α is chosen on the validation split, never on the test split the comparison reads.
  found = [(table.valid.get(ssl_row(a), {}).get("overall/Recall@50"), a) for a in ALPHAS]
  found = [(st.mean, a) for st, a in found if st is not None and st.n]
  if not found or table.get("Two-tower", "overall/Recall@50") is None:
    return ClaimResult(None, "needs the Two-tower row and at least one SSL α row")
  valid_recall, best = max(found)
  res = report.compare(table, ssl_row(best), "Two-tower", list(METRICS), ">")
  return ClaimResult(res.holds, f"α = {best:g} chosen on validation (overall Recall@50 "
                     f"{valid_recall:.2f}); test: {res.evidence}")


def get_spec() -> TableSpec:
  return TableSpec(
      id="ssl/rq3", title="SSL's α (vs spread-out at the same α) and value-dropout rate",
      paper=f"{PAPER_CITATION}, RQ3 (Figures)", dataset="ml-1m", cells=CELLS, rows=ROWS,
      seeds=(0, 1, 2, 3, 4), train=TRAIN, model=MODEL, claims=CLAIMS, notes=NOTES,
      figure=figure, per_dataset=PER_DATASET, select_cell="overall/Recall@50",
      quick=lambda: dataclasses.replace(quick_variant(get_spec()), figure=figure))
