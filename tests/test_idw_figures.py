"""IDW figure specs: the mean silhouette against a hand computation, per-row data options,
the item-embedding MS recorded per trial and per IDW phase, and rows shared with Table 1."""

import dataclasses
import json
import types

import jax.numpy as jnp
import numpy as np
import pytest

from ltbench.evaluate import mean_silhouette
from ltbench.harness import report, runner
from reproductions import get_spec
from reproductions.idw import figure3, figure4


def test_mean_silhouette_hand_computed():
  # Clusters {0, 1} and {10, 11} on a line: a = 1 for every point; b = 10.5 for 0 and 11,
  # 9.5 for 1 and 10, so s = 9.5/10.5 twice and 8.5/9.5 twice.
  x = jnp.array([[0.0], [1.0], [10.0], [11.0]])
  want = (2 * 9.5 / 10.5 + 2 * 8.5 / 9.5) / 4
  np.testing.assert_allclose(mean_silhouette(x, jnp.array([0, 0, 1, 1]), 2), want, rtol=1e-6)
  # Three clusters in 2-D, one a singleton (its s = 0, as sklearn), label 3 unused.
  pts = np.array([[0, 0], [0, 1], [4, 0], [4, 1], [0, 5]], np.float64)
  lab = np.array([0, 0, 1, 1, 2])
  d = np.linalg.norm(pts[:, None] - pts[None], axis=-1)
  s = []
  for p in range(5):
    own = lab == lab[p]
    if own.sum() == 1:
      s.append(0.0)
      continue
    a = d[p, own].sum() / (own.sum() - 1)
    b = min(d[p, lab == c].mean() for c in set(lab.tolist()) - {lab[p]})
    s.append((b - a) / max(a, b))
  np.testing.assert_allclose(mean_silhouette(pts.astype(np.float32), lab, 4), np.mean(s),
                             rtol=1e-5)
  # Swapping the labels of two points of different clusters lowers the score.
  assert mean_silhouette(x, jnp.array([0, 1, 0, 1]), 2) < 0
  assert np.isnan(mean_silhouette(x, jnp.zeros(4, jnp.int32), 2))  # one cluster: undefined
  with pytest.raises(ValueError, match="labels_N"):
    mean_silhouette(x, jnp.zeros(3, jnp.int32), 2)


def _meta_bundle(spec):
  return types.SimpleNamespace(meta={})


def test_figure_rows_share_table1_trials():
  t1 = get_spec("idw/table1")
  key = lambda spec, name: runner.config_key(spec, spec.row(name), _meta_bundle(spec))
  f6, f7, f8 = get_spec("idw/figure6"), get_spec("idw/figure7"), get_spec("idw/figure8")
  assert key(f6, "MUR M=5") == key(t1, "MUR") and key(f6, "MUR M=1") == key(t1, "SUR")
  assert key(f6, "MUR-IDW M=5") == key(t1, "MUR-IDW")
  assert key(f6, "MUR-IDW M=1") == key(t1, "SUR-IDW")
  assert key(f7, "η=0.0004, m=0.9") == key(t1, "MUR-IDW")
  assert key(f8, "MUR-IDW") == key(t1, "MUR-IDW") and key(f8, "MUR") == key(t1, "MUR")
  assert key(f8, "MUR-IDW w/o user calib") != key(t1, "MUR-IDW")
  # Quick variants keep "without calibration" off and the sweeps' values.
  q8 = get_spec("idw/figure8").quick()
  assert q8.row("MUR-IDW w/o user calib").params["calibration_epochs"] == 0
  assert q8.row("MUR-IDW").params["calibration_epochs"] == 1
  assert {r.params["momentum"] for r in get_spec("idw/figure7").quick().rows} == {0.7, 0.9, 1.0}
  # Each skew of Figure 3 is its own data set and its own configuration.
  f3 = get_spec("idw/figure3")
  keys = {runner.config_key(runner.row_spec(f3, r), r, _meta_bundle(f3)) for r in f3.rows}
  assert len(keys) == len(f3.rows)


def test_figure3_quick_row_records_silhouettes(tmp_path):
  # One IDW row of Figure 3 on its own skew: covers Row.data_options, the final MS
  # ("item_silhouette") and the per-phase MS of Figure 4 ("item_silhouette_per_phase").
  # Kept cheap for CI: 1 seed, 1 epoch per phase, one sleep/wake round, a 1-layer user tower.
  spec = figure3.quick()
  row = spec.row("MUR-IDW a=2")
  spec = dataclasses.replace(
      spec, rows=(dataclasses.replace(row, params={**row.params, "max_iterations": 1}),),
      seeds=(0,), train=dataclasses.replace(spec.train, epochs=1),
      model=dataclasses.replace(spec.model, num_layers=1))
  runner.run_spec(spec, out_root=tmp_path)
  folder = tmp_path / "idw" / "figure3-quick"
  (trial,) = [json.loads(l) for l in (folder / "trials.jsonl").read_text().splitlines()]
  assert trial["status"] == "ok" and trial["row"] == "MUR-IDW a=2"
  ex = trial["extras"]
  assert -1 <= ex["item_silhouette"] <= 1
  phases = ex["item_silhouette_phases"]
  assert phases[0] == "pretrain" and phases[1] == "wake1"
  assert len(ex["item_silhouette_per_phase"]) == len(phases)
  # Calibration freezes the item tower: its MS is the last wake round's.
  if phases[-1] == "calibrate":
    assert ex["item_silhouette_per_phase"][-1] == pytest.approx(ex["item_silhouette_per_phase"][-2])
  assert ex["item_silhouette"] == pytest.approx(ex["item_silhouette_per_phase"][-1], abs=1e-5)
  assert (folder / "figure3.png").exists()
  csv = (folder / "figure3.csv").read_text()
  assert "MS" in csv and "MUR-IDW" in csv
  run = json.loads((folder / "run.json").read_text())
  assert run["config_keys"]["MUR-IDW a=2"] == trial["config"]

  # Figure 4 from the same trial (as its MUR-IDW row): the MS per iteration and its claim.
  spec4 = figure4.quick()
  table = report.build_table(spec4, [{**trial, "row": "MUR-IDW"}])
  written = figure4.figure(table, table.trials, tmp_path)
  assert [p.suffix for p in written] == [".csv", ".png"]
  lines = (tmp_path / "figure4.csv").read_text().splitlines()
  assert lines[0].startswith("iteration,MUR-IDW") and lines[1].startswith("0,")
  assert figure4.ms_rises(table).holds is not None
  # A Figure 4 run does not count a trial recorded without the per-phase MS.
  assert "item_silhouette_per_phase" in spec4.needs_extras
  assert figure3.ms_mur_above_sur(report.build_table(figure3.quick(), [trial])).holds is None
