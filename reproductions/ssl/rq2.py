"""SSL (CIKM'21) RQ2: the gain from SSL against the amount of training data. Every RQ1 row
trained on 10 %, 25 %, 50 % and 100 % of the training examples (a subset drawn per trial
seed; evaluation unchanged), on MovieLens (directions only).

Command (paper scale, ML-1M):
  ltbench run ssl/rq2 --data-dir DIR
  ltbench run ssl/rq2 --data-dir DIR --rows "Two-tower 10%,SSL-CFM 10%"
Expected wall time: 20 rows at about 5.5 h each for 5 seeds x 40 epochs on a 2-core CPU
(every fraction runs the same number of steps: an epoch is N / batch steps drawn from the
subset); the 100 % rows are RQ1's and are reused from ssl/rq1's results when present.
Measured on ML-1M, 3 seeds x 10 epochs, 2-core CPU: Two-tower about 18-19 min and SSL-CFM
about 25 min per fraction row.
Run locally (synthetic data, 2 seeds, 8 epochs):
  ltbench run ssl/rq2 --quick
"""

from __future__ import annotations

from ltbench.harness import report
from ltbench.harness.spec import Claim, Row, TableSpec
from reproductions.ssl.common import (CELLS, MODEL, NOTES, PAPER_CITATION, PER_DATASET, TRAIN,
                                      gain_grows_as_data_shrinks, quick_variant, rows_config)

FRACTIONS = (0.1, 0.25, 0.5, 1.0)


def label(name, fraction):
  return f"{name} {100 * fraction:g}%"


ROWS = tuple(
    Row(label(name, f), method, {**params, **({"train_fraction": f} if f < 1 else {})},
        note=f"{note}; trained on {100 * f:g} % of the training examples"
             + (" (a subset drawn per trial seed)" if f < 1 else ""))
    for f in FRACTIONS for name, method, params, note in rows_config())


def _pairs(row):
  return tuple((f"{100 * f:g} %", label(row, f), label("Two-tower", f)) for f in FRACTIONS)


CLAIMS = (
    Claim("The gain of SSL (CFM) over Two-tower grows as the training data shrink (overall "
          "Recall@50)", gain_grows_as_data_shrinks(_pairs("SSL-CFM"), "overall/Recall@50")),
    Claim("The gain of SSL (CFM) over Two-tower grows as the training data shrink (overall "
          "MAP@50)", gain_grows_as_data_shrinks(_pairs("SSL-CFM"), "overall/MAP@50")),
    Claim("SSL (CFM) beats Two-tower at every data fraction (overall Recall@50)",
          report.all_of(*(report.better(label("SSL-CFM", f), label("Two-tower", f),
                                        ["overall/Recall@50"]) for f in FRACTIONS))),
)

NOTES_RQ2 = NOTES + (
    "RQ2 subsets: a fraction f trains on round(f·N) training examples, positions 0.. of a "
    "seeded pseudo-random bijection of the examples (seed drawn from the trial key); each "
    "epoch still takes N // batch steps, cycling over the subset in shuffled order, so every "
    "fraction gets the same number of steps. Validation and test are the full splits.",
)


def get_spec() -> TableSpec:
  return TableSpec(
      id="ssl/rq2", title="SSL and baselines trained on 10 / 25 / 50 / 100 % of the training "
      "data", paper=f"{PAPER_CITATION}, RQ2", dataset="ml-1m", cells=CELLS, rows=ROWS,
      seeds=(0, 1, 2, 3, 4), train=TRAIN, model=MODEL, claims=CLAIMS, notes=NOTES_RQ2,
      per_dataset=PER_DATASET, select_cell="overall/Recall@50",
      quick=lambda: quick_variant(get_spec()))
