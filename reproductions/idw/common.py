"""What the IDW (2023) specs share: the paper's numbers, rows, schedule and notes.

Mehta et al., "Density Weighting for Multi-Interest Personalized Recommendation" (2023):
Table 1 (HR/NDCG@20) and Table 4 (HR/NDCG@5) on MovieLens-1M, Kindle Store and Clothing,
Shoes & Jewelry. Every row is the sequential two-tower of §3.1 / §4.4 (transformer user
tower, parametric attention with M queries, MLP item tower, in-batch softmax with logQ).
"""

from __future__ import annotations

import dataclasses

from ltbench.harness import report
from ltbench.harness.spec import Claim, ClaimResult, DatasetSettings, Row, TableSpec
from ltbench.methods.sequential import SeqModelConfig
from ltbench.train import TrainConfig

PAPER_CITATION = ("Mehta et al., Density Weighting for Multi-Interest Personalized "
                  "Recommendation (2023)")

# §4.4: d = 16, 2 self-attention layers of 4 heads, item MLP Dense(16) x 2; Adam at 0.01;
# early stopping on validation for every model. Batch 1024 and the 100-epoch ceiling are
# ours (the paper gives neither); patience 5 as the official first training. Training batches
# are stratified by input length (3 strata, each run at its own window width): the same loss
# of the same examples, a different stream of batches, ~1.4-1.6x faster on a 2-core CPU
# (benchmarks/idw_step.py); `length_strata=1` restores uniform batches.
MODEL = SeqModelConfig(length_strata=3)
TRAIN = TrainConfig(epochs=100, batch_size=1024, learning_rate=0.01, patience=5,
                    checkpoint_every=5)  # pre-training; every phase end too
SEQUENCES = {"max_len": 30, "windows": "cut", "num_negatives": 99}
SELECT = "overall/NDCG@20"  # the early-stopping and tuning metric

# IDW's schedule (Algorithm 1): pre-training = the plain rows' training (TrainConfig.epochs
# with early stopping), then up to 5 sleep/wake rounds of at most 5 epochs, then 5 epochs of
# user-tower calibration; m = 0.9, η = 4e-4 (§4.6.2's best values).
IDW_OPTIONS = {"momentum": 0.9, "eta": 4e-4, "max_iterations": 5, "wake_epochs": 5,
               "calibration_epochs": 5}


def paper(cells, *vals) -> dict:
  """{cell: (mean, se)} from the paper's "mean ± se" values in the order of `cells`."""
  it = iter(vals)
  return dict(zip(cells, zip(it, it)))


ROW_SPECS = (  # (name, method, options, note)
    ("SUR", "sur", {}, "M = 1"),
    ("MUR", "mur", {}, "M = 5"),
    ("Frequency Balance", "frequency_balance", {}, "Eq. 5: examples weighted by 1/p(y)"),
    ("Focal Balance", "focal_balance", {"gamma": 2.0}, "focal loss, γ = 2 (Lin et al.'s default)"),
    ("Qmargin", "qmargin", {"max_margin": 0.5}, "LDAM margins ∝ n_y^(-1/4), largest 0.5"),
    ("Item Norm", "item_norm", {}, "unit item vectors in training and serving"),
    ("Item Norm (Post-hoc)", "item_norm_posthoc", {"tau": 1.0},
     "v / ‖v‖^τ at serving only, τ = 1"),
    ("SUR-IDW", "sur_idw", IDW_OPTIONS, "M = 1, Algorithm 1"),
    ("MUR-IDW", "mur_idw", IDW_OPTIONS, "M = 5, Algorithm 1"),
)


# The step size of user-tower calibration: the paper is silent; the default is the training
# rate, and the official code's optional fine-tune uses a tenth of it. A validation search
# over both: `ltbench tune idw/table1 --rows MUR-IDW --params calibration_lr`.
CALIBRATION_LR_GRID = (0.01, 0.001)


def rows(paper_values: dict[str, dict]) -> tuple[Row, ...]:
  return tuple(Row(name, method, dict(options), paper_values.get(name, {}), note=note,
                   grid={"calibration_lr": CALIBRATION_LR_GRID} if "eta" in options else {})
               for name, method, options, note in ROW_SPECS)


def marginal(row_a: str, row_b: str, cell: str, rel: float = 0.03) -> Claim:
  """row_a is at most `rel` (relative) better than row_b on `cell`, and not worse by more
  than 2 SE: "only marginal gains"."""
  def check(table):
    a, b = table.get(row_a, cell), table.get(row_b, cell)
    if a is None or b is None or not a.n or not b.n:
      return ClaimResult(None, f"needs {row_a} and {row_b}")
    z = report.z_score(a, b.mean, b.se)
    gain = (a.mean - b.mean) / abs(b.mean) if b.mean else float("inf")
    return ClaimResult(gain <= rel and z > -2,
                       f"{cell}: {row_a} {a.mean:.2f} vs {row_b} {b.mean:.2f} "
                       f"({100 * gain:+.1f} %, z {z:+.1f}; marginal = ≤ {100 * rel:g} % and z > −2)")
  return Claim(f"{row_a} beats {row_b} only marginally ({cell})", check)


def idw_ran(rows_, claim: Claim) -> Claim:
  """`claim` about IDW's effect, left undecided (its evidence still shown) when an IDW row
  it rests on never reached a wake phase in any seed: its first sleep phase already met the
  stopping rule, so that row is its backbone plus user-tower calibration, and the claim says
  nothing about density weighting. `rows_`: a row name, a list of them, or a function of
  the table giving them."""
  def check(table):
    result = claim.check(table)
    names = rows_(table) if callable(rows_) else [rows_] if isinstance(rows_, str) else rows_
    idle = []
    for row in names:
      trials = [t for t in table.trials if t["row"] == row and t.get("status") == "ok"]
      rounds = [t.get("extras", {}).get("idw_wake_rounds") for t in trials]
      if trials and all(r == 0 for r in rounds):
        deltas = [d[0] for t in trials if (d := t["extras"].get("idw_deltas"))]
        span = sorted({f"{d:.2e}" for d in (min(deltas), max(deltas))}) if deltas else []
        first = f" (first sleep phase ‖Δw‖∞ {'–'.join(span)}, already below η)" if span else ""
        idle.append(f"{row} ran no wake phase in any seed{first}")
    if not idle:
      return result
    why = "; ".join(idle) + (", so it is its backbone plus user-tower calibration" if
                             len(idle) == 1 else ", so each is its backbone plus user-tower "
                             "calibration") + " and this does not test density weighting"
    verdict = {True: "holds", False: "fails", None: "undecided"}[result.holds]
    return ClaimResult(None, f"NOT TESTED: {why}. As computed, it {verdict}: {result.evidence}")
  return Claim(claim.text, check)


def best_overall(row: str, cells) -> Claim:
  """`row` is the best row on every cell (no other row's mean above it)."""
  def check(table):
    ev, ok = [], True
    for c in cells:
      means = {r: s[c].mean for r, s in table.stats.items() if c in s and s[c].n}
      if row not in means or len(means) < 2:
        return ClaimResult(None, f"needs {row} and another row")
      top = max(means, key=means.get)
      ok &= top == row
      ev.append(f"{c}: best {top} {means[top]:.2f}" + ("" if top == row else
                                                        f", {row} {means[row]:.2f}"))
    return ClaimResult(ok, "; ".join(ev))
  return Claim(f"{row} is best overall ({', '.join(cells)})", check)


NOTES = (
    "Sequences (§4.1): each user's time-ordered history cut into disjoint sequences of at most "
    "30 items; in each, the last item is the test target, the second last the validation "
    "target, every earlier position a training target (its input: the items before it).",
    "Evaluation: each target against 99 negatives the user never interacted with, drawn once "
    "with a fixed seed and stored with the data (the same for every row and seed); score = max "
    "over the M user vectors; head = top 20 % of items by training-target count.",
    "Training: in-batch softmax with logQ correction for every row (official code), Adam at "
    "0.01, batch 1024 (ours; the paper gives none), early stopping per seed on validation "
    "overall NDCG@20 with patience 5 and at most 100 epochs (ours; the paper says only "
    "'early stopping'); each seed keeps its best epoch. Batches are stratified by input "
    "length (3 strata of near-equal size, each batch taking every stratum's share, each "
    "stratum's user-tower pass over its own window width): the loss of a batch is the same "
    "as over the full window; only the stream of batches differs from uniform sampling.",
    "IDW rows: pre-training = the plain rows' schedule; then up to 5 sleep/wake rounds (sleep: "
    "exact weighted Gaussian KDE of the item tower's outputs, Scott's bandwidth; wake: at most "
    "5 weighted epochs, early-stopped the same way), stop when ‖Δw‖∞ < η = 4e-4, momentum "
    "0.9; then 5 epochs of user-tower calibration (item tower frozen). See docs/decisions.md.",
)


def idw_quick(spec: TableSpec) -> TableSpec:
  """The spec's rows on the IDW synthetic HMM data: 2 seeds, a few epochs, a short IDW
  schedule."""
  quick_rows = idw_rows_quick(spec.rows)
  return dataclasses.replace(
      spec, dataset="idw-synthetic", seeds=(0, 1), is_quick=True, quick=None, rows=quick_rows,
      # Uniform batches: one user-tower program compiles in half the time of three
      # (tests/test_idw_strata.py checks the stratified path).
      model=dataclasses.replace(spec.model, length_strata=1),
      data_options={"num_users": 600}, sequence_options={}, per_dataset={},
      train=TrainConfig(epochs=4, batch_size=256, learning_rate=0.01, patience=2),
      notes=("Quick variant: the IDW synthetic HMM histories (600 users, 50 items, full "
             "ranking); the paper's numbers do not apply.",))


def extra_stat(table, row: str, key: str, index: int | None = None) -> report.Stat:
  """Mean ± SE over the row's finished seeds of a per-trial extra (e.g. "item_silhouette"),
  or of its entry `index` when the extra is a list (seeds that lack it are left out)."""
  values = []
  for t in table.trials:
    if t["row"] != row or key not in t.get("extras", {}):
      continue
    v = t["extras"][key]
    if index is not None:
      v = v[index] if -len(v) <= index < len(v) else None
    values.append(v)
  return report.summarise(values)


def idw_rows_quick(rows_: tuple[Row, ...]) -> tuple[Row, ...]:
  """The quick variant's short IDW schedule on the IDW rows among `rows_` (2 rounds of 1 wake
  epoch, 1 calibration epoch unless the row turns calibration off); paper values off."""
  def short(params):
    return {**params, "max_iterations": 2, "wake_epochs": 1,
            "calibration_epochs": min(1, params.get("calibration_epochs", 1))}
  return tuple(dataclasses.replace(r, paper={}, params=short(r.params) if
                                   r.method.endswith("_idw") else r.params) for r in rows_)
