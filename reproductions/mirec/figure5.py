"""MIRec (WWW'21) Figure 5: loss per epoch on all items, head items and tail items, training
and validation, for the curricula Head2Tail, Tail2Head and MIRec's own (LTCur: Ω* then
Ω(k)), on MovieLens-1M (§5.5, RQ3).

Each trial records, after every epoch, the mean softmax cross-entropy over all items (the
backbone's training objective) of the row's served model on the head / tail / all-item
slices of a fixed subsample of 4,096 training interactions and of the validation
interactions (`ltbench.harness.runner.SliceLosses`). The figure is one row of panels per
curriculum and one column per slice (all, head, tail), training loss red and validation
loss blue, mean ± SE over seeds. Differences from the paper's figure: the paper plots the
loss of the batches trained on (so a slice a stage does not train reads 0) and smooths the
lines; here every slice is evaluated every epoch on fixed examples (an untrained slice shows
how the stage moves it) and nothing is smoothed. MIRec's curve is the loss of its Eq. 9
serving mix (λ_p·θ* + (1 − λ_p)·F(θ; w)); before the switch its θ half is untrained.

The rows are Table 4's, with the same configuration keys: trials of mirec/table4 that have
slice losses are reused, and Table 4 reuses these.

Command (paper scale: 5 seeds, 100 + 100 epochs, ML-1M):
  ltbench run mirec/figure5 --data-dir DIR
  ltbench diff mirec/figure5
Expected wall time: not measured; as Table 4's rows (a curriculum row is a two-tower row,
~25 h for 5 seeds x 200 epochs on a 2-core CPU; MIRec's meta stage costs several two-tower
steps). The per-epoch slice losses add one serving pass and ~10k rows of full softmax.
Run locally (synthetic data, 2 seeds, 4 + 4 epochs, a few minutes on a 2-core CPU):
  ltbench run mirec/figure5 --quick
Writes figure5.png and figure5.csv beside the table.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ltbench.harness import figures
from ltbench.harness.report import summarise
from ltbench.harness.spec import Claim, ClaimResult, TableSpec
from reproductions.mirec import table4
from reproductions.mirec.common import (CELLS, MODEL, NOTES, PAPER_CITATION, PER_DATASET, TRAIN,
                                        quick_variant)

ROW_NAMES = ("Head2Tail", "Tail2Head", "MIRec")
ROWS = tuple(r for r in table4.rows() if r.name in ROW_NAMES)
SLICES = ("overall", "head", "tail")
PARTS = {"train": "tab:red", "valid": "tab:blue"}  # the paper's colours


def seed_stats(trials, row: str, key: str) -> list | None:
  """Per epoch, summarise() over the row's seeds of one slice-loss curve ("valid/tail")."""
  curves = [t["slice_loss_per_epoch"][key] for t in trials
            if t["row"] == row and "slice_loss_per_epoch" in t]
  if not curves:
    return None
  epochs = min(len(c) for c in curves)
  return [summarise(c[e] for c in curves) for e in range(epochs)]


def figure(table, trials, out_dir):
  recs = []
  for row in ROW_NAMES:
    for sl in SLICES:
      for part in PARTS:
        stats = seed_stats(trials, row, f"{part}/{sl}")
        for e, st in enumerate(stats or []):
          recs.append({"grid_row": row, "grid_col": f"{sl} items", "series": part,
                       "epoch": e + 1, "mean": st.mean, "se": st.se, "n": st.n})
  if not recs:
    return []
  return figures.grid_lines(pd.DataFrame(recs), "epoch", out_dir / "figure5",
                            "Loss per epoch by curriculum (rows) and item slice (columns)",
                            "epoch", "softmax CE", colors=PARTS)


# -- claims (seed-mean curves; a stage's change = its last epoch against the one before it)

def _means(table, row, key):
  stats = seed_stats(getattr(table, "trials", None) or [], row, key)
  return None if stats is None else np.asarray([s.mean for s in stats])


def _stages(curve):
  """(start, end of stage 1, end of stage 2) of a seed-mean curve whose stages split it in
  half (the rows switch at epochs // 2): the first epoch's value, the last of stage 1 (where
  stage 2 starts from) and the last; None with under 2 epochs in stage 1."""
  switch = len(curve) // 2
  if switch < 2 or len(curve) - switch < 1:
    return None
  return curve[0], curve[switch - 1], curve[-1]


def _fmt(name, st):
  return f"{name} {st[0]:.3f} → {st[1]:.3f} → {st[2]:.3f}"


def _needs(table, pairs):
  out = {}
  for row, key in pairs:
    curve = _means(table, row, key)
    st = None if curve is None else _stages(curve)
    if st is None or not np.isfinite(st).all():
      return None, f"needs {row}'s {key} slice losses over at least 2 + 1 epochs"
    out[(row, key)] = st
  return out, ""


def two_stage_tail_descent(table) -> ClaimResult:
  pairs = [("MIRec", "train/tail"), ("MIRec", "valid/tail")]
  st, missing = _needs(table, pairs)
  if st is None:
    return ClaimResult(None, missing)
  holds = all(s[1] < s[0] and s[2] < s[1] for s in st.values())
  return ClaimResult(holds, "; ".join(_fmt(f"MIRec {k}", s) for (_, k), s in st.items()) +
                     " (epoch 1 → end of stage 1 → end of stage 2, seed means)")


def other_slice_rises(table) -> ClaimResult:
  # (row, stage, untrained slice): Head2Tail trains head then tail; Tail2Head the reverse.
  cases = [("Head2Tail", 1, "tail"), ("Head2Tail", 2, "head"), ("Tail2Head", 1, "head"),
           ("Tail2Head", 2, "tail")]
  st, missing = _needs(table, [(r, f"valid/{sl}") for r, _, sl in cases])
  if st is None:
    return ClaimResult(None, missing)
  rises = [st[(r, f"valid/{sl}")][stage] > st[(r, f"valid/{sl}")][stage - 1]
           for r, stage, sl in cases]
  return ClaimResult(all(rises), "; ".join(
      f"{r} stage {stage} valid/{sl} {st[(r, f'valid/{sl}')][stage - 1]:.3f} → "
      f"{st[(r, f'valid/{sl}')][stage]:.3f}" for r, stage, sl in cases))


def train_falls_valid_rises(table) -> ClaimResult:
  trained = {"Head2Tail": ("head", "tail"), "Tail2Head": ("tail", "head")}
  pairs = [(r, f"train/{sl}") for r, sls in trained.items() for sl in sls]
  pairs += [(r, "valid/overall") for r in trained]
  st, missing = _needs(table, pairs)
  if st is None:
    return ClaimResult(None, missing)
  holds, text = True, []
  for r, sls in trained.items():
    v = st[(r, "valid/overall")]
    found = False
    for stage, sl in enumerate(sls, 1):
      t = st[(r, f"train/{sl}")]
      found |= t[stage] < t[stage - 1] and v[stage] > v[stage - 1]
      text.append(f"{r} stage {stage}: train/{sl} {t[stage - 1]:.3f} → {t[stage]:.3f}, "
                  f"valid/overall {v[stage - 1]:.3f} → {v[stage]:.3f}")
    holds &= found
  return ClaimResult(holds, "; ".join(text))


CLAIMS = (
    Claim("MIRec's curriculum gives the tail loss a two-stage descent, training and "
          "validation: it falls in stage 1 and again in stage 2 (Figure 5, row 3 column 3)",
          two_stage_tail_descent),
    Claim("Training on one slice only raises the validation loss of the other slice (Head2Tail "
          "and Tail2Head, both stages)", other_slice_rises),
    Claim("Trained on head or tail items only, the training loss falls while the overall "
          "validation loss rises, in at least one stage of each of Head2Tail and Tail2Head "
          "(Figure 5, column 1 of rows 1-2; here the trained slice's training loss)",
          train_falls_valid_rises),
)

FIGURE_NOTES = (
    "Figure 5's losses: mean softmax cross-entropy over all items of the served model on "
    "fixed examples (4,096 training interactions drawn once, all validation interactions), "
    "per slice, every epoch; the paper plots the trained batches' loss (0 for an untrained "
    "slice) and smooths its lines. Claims compare seed means at epoch 1, the end of stage 1 "
    "and the end of stage 2 (no significance test).",
)


def get_spec() -> TableSpec:
  return TableSpec(
      id="mirec/figure5",
      title="Loss per epoch on all / head / tail items, training and validation, for "
            "Head2Tail, Tail2Head and MIRec's curriculum (MovieLens-1M)",
      paper=f"{PAPER_CITATION}, Figure 5", dataset="ml-1m", cells=CELLS, rows=ROWS,
      seeds=(0, 1, 2, 3, 4), train=TRAIN, model=MODEL, claims=CLAIMS,
      notes=FIGURE_NOTES + NOTES, figure=figure, record_slice_losses=True,
      select_cell="overall/NDCG@10", per_dataset=PER_DATASET,
      quick=lambda: quick_variant(get_spec()))
