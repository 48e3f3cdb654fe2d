"""MIRec (WWW'21) Table 5: MIRec versus baselines on Book-Crossing, HR@100 / NDCG@100,
overall / head (top 0.1 % items) / tail.

THE REAL BOOK-CROSSING RATINGS ARE NOT DOWNLOADABLE (their original host is gone), so this
spec runs on the Book-Crossing-like synthetic STAND-IN (`bx-standin`: IF ~2,000, 99.98 %
sparse, head = top 0.1 % of items, random leave-one-out as for BX). Its numbers are not
comparable with the paper's; only the claims (directions between rows) are checked. With
the real files, `--dataset book-crossing --data-dir DIR` runs the same rows on them
(`ltbench data info book-crossing`).

The catalogue (~114k items) is too large for a full softmax per step, so the rows that take
a `softmax` option train with in-batch sampled softmax and logQ correction (as CDN Table 3);
MeLU keeps its full softmax (its task loss needs the whole catalogue). Evaluation is full
ranking.

Command:       ltbench run mirec/table5
Expected wall time: not measured; MeLU's full softmax over ~114k items dominates.
Run locally:   ltbench run mirec/table5 --quick
"""

from __future__ import annotations

from ltbench.harness.spec import TableSpec
from reproductions.cdn.common import bx_standin_quick
from reproductions.mirec.common import BX, CELLS_100, MODEL, NOTES, PAPER_CITATION, TRAIN
from reproductions.mirec.table4 import claims, rows

SAMPLED = {"softmax": "in_batch"}


def get_spec() -> TableSpec:
  return TableSpec(
      id="mirec/table5",
      title="MIRec vs baselines on Book-Crossing (STAND-IN data; HR@100, NDCG@100; head = top "
            "0.1%)",
      paper=f"{PAPER_CITATION}, Table 5", dataset="bx-standin", cells=CELLS_100, rows=rows(BX, SAMPLED),
      train=TRAIN, model=MODEL, head_fraction=0.001, claims=claims(CELLS_100),
      notes=("Data: the bx-standin generator, NOT Book-Crossing (see the docstring).",
             "Rows other than MeLU train with in-batch softmax + logQ correction.") + NOTES[2:],
      select_cell="overall/NDCG@100", quick=quick)


def quick() -> TableSpec:
  """A small stand-in: 2,000 users, ~4,000 items; 2 seeds, 8 epochs, batch 256."""
  return bx_standin_quick(get_spec())
