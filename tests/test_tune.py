"""Hyper-parameter selection: grids, per-row config overrides, the validation-only choice,
and `ltbench tune` end to end on the quick spec."""

import dataclasses
import json

import pytest

from ltbench import cli
from ltbench.errors import SpecError
from ltbench.harness import tune
from ltbench.harness.spec import Row, resolve_row
from reproductions import SPECS, get_spec


def _trial(row, seed, valid, test):
  return {"row": row, "seed": seed, "status": "ok", "valid": {"overall/NDCG@50": valid},
          "test": {"overall/NDCG@50": test}}


def test_choose_reads_only_the_validation_split():
  cands = {"a": {"gamma": 1.2}, "b": {"gamma": 5.0}}
  trials = [_trial("a", 0, 3.0, 9.0), _trial("a", 1, 3.2, 9.5),
            _trial("b", 0, 4.0, 1.0), _trial("b", 1, 4.4, 1.5)]
  best, scores = tune.choose(trials, cands, "overall/NDCG@50")
  assert best == "b"  # best on validation although worst on test
  assert scores["b"]["mean"] == pytest.approx(4.2) and scores["b"]["n"] == 2
  assert scores["a"]["se"] == pytest.approx(0.1)
  # Swapping the test values changes nothing.
  swapped = [{**t, "test": {"overall/NDCG@50": -t["test"]["overall/NDCG@50"]}} for t in trials]
  assert tune.choose(swapped, cands, "overall/NDCG@50")[0] == "b"


def test_choose_ignores_failed_trials_and_reports_missing_points():
  cands = {"a": {}, "b": {}}
  trials = [_trial("a", 0, 1.0, 0.0), {**_trial("b", 0, 9.0, 0.0), "status": "failed"}]
  best, scores = tune.choose(trials, cands, "overall/NDCG@50")
  assert best == "a" and scores["b"]["mean"] is None and scores["b"]["n"] == 0


def test_grid_points_are_the_product_in_order():
  row = Row("X", "cdn", {"gamma": 5.0}, grid={"gamma": (1.2, 5.0), "learning_rate": (0.1, 0.01)})
  assert tune.grid_points(row, ["gamma", "learning_rate"]) == [
      {"gamma": 1.2, "learning_rate": 0.1}, {"gamma": 1.2, "learning_rate": 0.01},
      {"gamma": 5.0, "learning_rate": 0.1}, {"gamma": 5.0, "learning_rate": 0.01}]
  with pytest.raises(SpecError, match="no grid for dropout"):
    tune.grid_points(row, ["dropout"])


def test_grid_edges_flag_a_choice_at_either_end_of_an_ordered_grid():
  row = Row("X", "mirec", {}, grid={"lambda_c": (0.1, 0.3, 1.0), "lambda_p": (0.1, 0.5, 0.9),
                                    "n": (1, 2), "kind": ("a", "b", "c")})
  params = ["lambda_c", "lambda_p", "n", "kind"]
  edges = tune.grid_edges(row, params, {"lambda_c": 0.1, "lambda_p": 0.9, "n": 2, "kind": "c"})
  assert len(edges) == 2  # two-value and non-numeric grids have no inside to compare with
  assert edges[0].startswith("lambda_c = 0.1 is the smallest") and "largest" in edges[1]
  assert tune.grid_edges(row, params, {"lambda_c": 0.3, "lambda_p": 0.5, "n": 1,
                                       "kind": "a"}) == []


def test_row_params_override_train_and_model_fields():
  spec = get_spec("cdn/table2")
  row = Row("X", "cdn", {"gamma": 3.0, "learning_rate": 0.01, "dropout": 0.5})
  options, train_cfg, model_cfg = resolve_row(spec, row)
  assert options == {"gamma": 3.0}
  assert train_cfg.learning_rate == 0.01 and train_cfg.epochs == spec.train.epochs
  assert model_cfg.dropout == 0.5 and model_cfg.sizes == spec.model.sizes


def test_every_cdn_row_declares_the_papers_grid():
  for spec_id in ("cdn/table2", "cdn/table3", "cdn/table4", "cdn/table5"):
    for row in get_spec(spec_id).rows:
      assert row.grid["learning_rate"] == (0.1, 0.01, 0.001, 0.0001), (spec_id, row.name)
      assert row.grid["dropout"] == (0.1, 0.3, 0.5, 0.7, 0.9)
      for key, values in row.grid.items():  # the row's own value is a grid point
        if key in row.params:
          assert row.params[key] in values, (spec_id, row.name, key)
  assert get_spec("cdn/table2").row("CDN").grid["gamma"] == (1.2, 1.5, 2.1, 3.0, 5.0, 10.0, 30.0)
  assert get_spec("cdn/table2").row("LogQ").grid["weight"] == (0.1, 1.0, 10.0)
  assert all(sid in SPECS for sid in ("cdn/table2", "cdn/figure4"))


def test_tune_cli_end_to_end(tmp_path, capsys):
  argv = ["tune", "cdn/table2", "--quick", "--rows", "Two-tower", "--params", "learning_rate",
          "--seeds", "0", "--epochs", "1", "--out", str(tmp_path)]
  assert cli.main(argv) == 0
  out_dir = tmp_path / "cdn" / "table2-quick-epochs1-tune"
  selection = json.loads((out_dir / "selection.json").read_text())
  trials = [json.loads(line) for line in (out_dir / "trials.jsonl").read_text().splitlines()]
  assert len(trials) == 4 and len({t["config"] for t in trials}) == 4
  # Each grid point trained with its own learning rate: the losses differ.
  assert len({tuple(t["loss_per_epoch"]) for t in trials}) == 4
  scores = selection["rows"]["Two-tower"]["scores"]
  best = max(scores, key=lambda n: scores[n]["mean"])
  assert selection["rows"]["Two-tower"]["chosen"] == scores[best]["point"]
  assert {s["point"]["learning_rate"] for s in scores.values()} == {0.1, 0.01, 0.001, 0.0001}
  by_row = {t["row"]: t["valid"]["overall/NDCG@50"] for t in trials}
  assert scores[best]["mean"] == pytest.approx(max(by_row.values()))
  assert "←" in (out_dir / "selection.md").read_text()
  assert (out_dir / "selection-learning_rate.md").read_text() == (out_dir / "selection.md").read_text()
  # A rerun reuses every trial.
  assert cli.main(argv) == 0
  assert len((out_dir / "trials.jsonl").read_text().splitlines()) == 4


def test_tune_without_a_matching_grid_names_the_grids(capsys):
  spec = dataclasses.replace(get_spec("cdn/table2"), rows=(Row("A", "two_tower"),))
  with pytest.raises(SpecError, match="no row of cdn/table2 has a grid for gamma"):
    tune.tune_spec(spec, None, ["gamma"])
  assert cli.main(["tune", "cdn/table2", "--quick", "--rows", "Two-tower", "--params",
                   "gamma"]) == 2
  assert "no grid for gamma" in capsys.readouterr().err
