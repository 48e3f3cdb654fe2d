"""Per-epoch validation curves in trial records, the UNCONVERGED flag and the curve figure."""

import dataclasses
import json
import re

import numpy as np
import pytest

from ltbench import cli
from ltbench.harness import report
from reproductions import get_spec

SPEC = get_spec("cdn/table2").quick()
CELL = report.convergence_cell(SPEC)


def trial(row, seed, curve):
  return {"row": row, "seed": seed, "status": "ok", "config": "k",
          "test": {c: 1.0 for c in SPEC.cells}, "valid": {c: 1.0 for c in SPEC.cells},
          "valid_per_epoch": {CELL: list(curve)}}


@pytest.mark.parametrize("curve,converged", [
    (np.linspace(1.0, 20.0, 40), False),  # still rising at the end
    (np.r_[np.linspace(1.0, 20.0, 20), np.full(20, 20.0)], True),  # flat for the last half
    (np.r_[np.linspace(1.0, 20.0, 36), [20.1, 20.1, 20.15, 20.19]], True),  # +0.95 % < 1 %
    (np.r_[np.linspace(1.0, 20.0, 36), [20.1, 20.1, 20.15, 20.25]], False),  # +1.25 %
    (np.r_[np.linspace(1.0, 20.0, 30), np.linspace(19.0, 10.0, 10)], True),  # over-fitting
])
def test_unconverged_means_best_value_rose_over_last_tenth(curve, converged):
  row = SPEC.rows[0].name
  table = report.build_table(SPEC, [trial(row, 0, curve), trial(row, 1, curve)])
  result = report.convergence(table)[row]
  assert result["converged"] is converged, result
  flagged = re.search(r"\|\s*UNCONVERGED\s*\|", report.markdown(table, {})) is not None
  assert flagged is (not converged)


def test_rows_without_curves_are_not_judged():
  row = SPEC.rows[0].name
  t = trial(row, 0, [])
  del t["valid_per_epoch"]
  assert report.convergence(report.build_table(SPEC, [t])) == {}


def test_run_records_a_validation_curve_per_epoch_and_plots_it(tmp_path):
  assert cli.main(["run", "cdn/table2", "--quick", "--rows", "Two-tower", "--seeds", "0,1",
                   "--epochs", "3", "--out", str(tmp_path)]) == 0
  out = next(tmp_path.glob("cdn/table2-quick*"))
  trials = [json.loads(l) for l in (out / "trials.jsonl").read_text().splitlines()]
  assert len(trials) == 2
  for t in trials:
    curve = t["valid_per_epoch"][CELL]
    assert len(curve) == 3 and all(np.isfinite(curve))
    assert curve[-1] == pytest.approx(t["valid"][CELL], abs=1e-3)  # last epoch = final eval
  assert (out / "validation_curves.png").stat().st_size > 1000
  assert "Two-tower" in (out / "validation_curves.csv").read_text()
  assert "Two-tower" in json.loads((out / "table.json").read_text())["convergence"]


@pytest.mark.parametrize("spec_id,paper_n", [("cdn/table2", "5"), ("sml/table1", "–")])
def test_paper_row_n_is_five_only_where_the_paper_prints_standard_errors(spec_id, paper_n):
  """CDN prints mean ± SE over 5 runs; SML (like MIRec, IDW) prints single values, so its
  paper row must not claim 5 runs."""
  spec = dataclasses.replace(get_spec(spec_id), rows=get_spec(spec_id).rows[:1])
  row = spec.rows[0]
  t = {"row": row.name, "seed": 0, "status": "ok", "config": "k",
       "test": {c: 1.0 for c in spec.cells}, "valid": {c: 1.0 for c in spec.cells}}
  text = report.markdown(report.build_table(spec, [t]), {})
  paper_line = next(l for l in text.splitlines() if re.match(r"\|\s*\|\s*paper\s*\|", l))
  assert re.match(rf"\|\s*\|\s*paper\s*\|\s*{paper_n}\s*\|", paper_line), paper_line


def test_not_worse_is_level_or_better_within_two_standard_errors():
  a, b, cell = SPEC.rows[0].name, SPEC.rows[1].name, SPEC.cells[0]

  def table(values_a, values_b):
    trials = [{**trial(row, s, []), "test": {cell: v}} for row, vals in ((a, values_a),
                                                                         (b, values_b))
              for s, v in enumerate(vals)]
    return report.build_table(SPEC, trials)

  check = report.not_worse(a, b, [cell])
  assert check(table([9.9, 10.1, 10.0], [10.2, 10.0, 10.4])).holds  # a little below: level
  assert check(table([11.0, 11.2, 11.1], [10.0, 10.1, 10.2])).holds  # above
  assert check(table([8.0, 8.1, 8.2], [10.0, 10.1, 10.2])).holds is False  # z ≈ -24
  assert report.not_worse(a, "absent", [cell])(table([1.0], [1.0])).holds is None
