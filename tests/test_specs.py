"""Every spec is well-formed, and the CDN specs not covered by test_harness run --quick."""

import json

import pytest

from ltbench import cli, methods
from reproductions import SPECS, get_spec


@pytest.mark.parametrize("spec_id", sorted(SPECS))
def test_spec_is_well_formed(spec_id):
  spec = get_spec(spec_id)
  assert spec.id == spec_id and spec.rows and spec.cells
  assert len({r.name for r in spec.rows}) == len(spec.rows)
  for row in spec.rows:
    if spec.data_protocol == "periods":  # SML's rows: the period driver's own methods
      from ltbench.methods import sml
      assert row.method in sml.METHODS, row.method
    else:
      assert row.method in methods.METHODS, row.method
    assert set(row.paper) <= set(spec.cells)
    for mean, se in row.paper.values():
      assert 0 <= mean <= 100 and (se is None or se >= 0)
  quick = spec.quick()
  assert quick.is_quick and quick.out_name.endswith("-quick")
  assert quick.dataset in ("synthetic", "bx-standin", "idw-synthetic",
                           "synthetic-periods")  # generated, runs anywhere
  assert get_spec.__module__  # the module docstring holds the exact command
  import importlib
  doc = importlib.import_module(SPECS[spec_id]).__doc__
  assert f"ltbench run {spec_id}" in doc and "--quick" in doc


# cdn/table2 --quick runs in full in test_harness; the others run here with
# two epochs and two seeds (as in test_harness), so that identical rows share compiled programs
# through the session's compilation cache (compile time dominates these runs).
@pytest.mark.parametrize("spec_id", ["cdn/table3", "cdn/table4", "cdn/table5", "cdn/figure1",
                                     "cdn/figure3", "cdn/figure4"])
def test_quick_smoke(spec_id, tmp_path):
  # Rows that another quick run already covers are left out to keep CI short: Figure 4's
  # seven γ rows differ only in γ (ends and middle run); Table 4's Two-tower and CDN and
  # Table 3's ClassBalance, LogQ and BBN are Table 2's methods (Table 3: in-batch softmax,
  # which Two-tower, NDP and CDN exercise).
  # One row each for the other tables: their methods are unit-tested in test_cdn, and one
  # row exercises the spec's data, report and (for figures) plot.
  subsets = {"cdn/figure4": "γ=1.2,γ=5,γ=30", "cdn/table4": "BDN", "cdn/table3": "NDP",
             "cdn/table5": "Head/Tail", "cdn/figure1": "H→T"}
  rows = ["--rows", subsets[spec_id]] if spec_id in subsets else []
  assert cli.main(["run", spec_id, "--quick", "--seeds", "0,1", "--epochs", "2",
                   "--out", str(tmp_path)] + rows) == 0
  out_dir = tmp_path / (spec_id + "-quick-epochs2")
  trials = [json.loads(l) for l in (out_dir / "trials.jsonl").read_text().splitlines()]
  expected = set(rows[1].split(",")) if rows else {r.name for r in get_spec(spec_id).rows}
  assert {t["row"] for t in trials} == expected
  assert all(t["status"] == "ok" and 0 < t["test"]["overall/HR@50"] <= 100 for t in trials)
  assert (out_dir / "table.md").exists()
  if "figure" in spec_id:
    name = spec_id.split("/")[1]
    assert (out_dir / f"{name}.png").stat().st_size > 1000
    assert len((out_dir / f"{name}.csv").read_text().splitlines()) >= 1 + len(expected)


def test_per_dataset_settings_apply_only_on_that_data_set():
  import dataclasses
  from ltbench.cli import resolve_spec
  from ltbench.harness.spec import DatasetSettings
  import reproductions
  base = reproductions.get_spec("cdn/table2")
  spec = dataclasses.replace(base, per_dataset={"ml-100k": DatasetSettings(
      train={"learning_rate": 0.01}, options={"gamma": 2.0}, note="from a test")})
  orig = reproductions.get_spec
  reproductions.get_spec = lambda _id: spec
  try:
    other = resolve_spec("cdn/table2", False, None, "ml-100k")
    own = resolve_spec("cdn/table2", False, None, None)
  finally:
    reproductions.get_spec = orig
  assert other.train.learning_rate == 0.01 and own.train.learning_rate == base.train.learning_rate
  assert other.row("CDN").params["gamma"] == 2.0 and "gamma" not in other.row("LogQ").params
  assert own.row("CDN").params["gamma"] == base.row("CDN").params["gamma"]
  assert any("learning_rate = 0.01" in n and "from a test" in n for n in other.notes)
  # The CDN row's note names the spec's γ; on ml-100k it says which value replaced it.
  assert other.row("CDN").note.endswith("(for ml-100k: gamma = 2.0)")
  assert own.row("CDN").note == base.row("CDN").note
  assert other.row("LogQ").note == base.row("LogQ").note


def test_per_dataset_note_without_settings_has_no_empty_list():
  from ltbench.harness.spec import for_dataset
  import reproductions
  notes = for_dataset(reproductions.get_spec("idw/table1"), "ml-100k").notes
  assert notes[0].startswith("The paper reports nothing on this data set")
  assert not any("Settings for ml-100k: ." in n for n in notes)


def test_cdn_figure4_saturation_names_its_margin_and_seed_count():
  # One seed has no SE: "flat" falls back to 2 % of γ=5, and the evidence must say so
  # rather than print a misleading 2·SE = 0. With 3 seeds a wide SE makes the same gap flat.
  from ltbench.harness.report import Table, summarise
  from reproductions.cdn import figure4
  spec = get_spec("cdn/figure4")

  def table(values_by_gamma):
    stats = {f"γ={g:g}": {"overall/NDCG@50": summarise(v)} for g, v in values_by_gamma.items()}
    return Table(spec, stats, stats, {})

  one = figure4.saturates(table({1.2: [6.0], 5.0: [8.0], 30.0: [7.7]}))
  assert one.holds is False  # 0.3 > 2 % of 8.0
  assert "1 seed, so no SE" in one.evidence and "= 0.16" in one.evidence
  assert figure4.saturates(table({1.2: [6.0], 5.0: [8.0], 30.0: [7.9]})).holds is True
  wide = figure4.saturates(table({1.2: [6.0] * 3, 5.0: [7.0, 8.0, 9.0], 30.0: [6.7, 7.7, 8.7]}))
  assert wide.holds is True and "no SE" not in wide.evidence
