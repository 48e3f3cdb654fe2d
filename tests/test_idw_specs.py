"""IDW specs through the table runner: sequence data, early stopping per seed, the IDW
driver's phases, trials shared between Tables 1 and 4, and unchanged keys of older rows."""

import dataclasses
import json
import pathlib
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ltbench import cli
from ltbench.harness import runner
from ltbench.train import TrainConfig, train
from reproductions import get_spec

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def idw_quick(tmp_path_factory):
  out = tmp_path_factory.mktemp("idw")
  # MUR-IDW alone covers the plain training (its pre-training), the sleep / wake rounds,
  # calibration and early stopping; one compiled program keeps CI short.
  code = cli.main(["run", "idw/table1", "--quick", "--rows", "MUR-IDW", "--epochs", "2",
                   "--out", str(out)])
  return code, out


def _trials(folder):
  return [json.loads(l) for l in (folder / "trials.jsonl").read_text().splitlines()]


def test_idw_quick_table1_trains_plain_and_idw_rows(idw_quick):
  code, out = idw_quick
  assert code == 0
  folder = out / "idw" / "table1-quick-epochs2"
  trials = _trials(folder)
  assert sorted((t["row"], t["seed"]) for t in trials) == [("MUR-IDW", 0), ("MUR-IDW", 1)]
  for t in trials:
    assert t["status"] == "ok"
    # Both tables' cut-offs are stored, so Table 4 can reuse these trials.
    assert {"overall/HR@20", "tail/NDCG@20", "overall/HR@5", "head/NDCG@5"} <= set(t["test"])
    assert 0 < t["test"]["overall/HR@20"] <= 100
    curve = t["valid_per_epoch"]["overall/NDCG@20"]
    assert len(curve) == len(t["loss_per_epoch"]) and None not in curve
  idw_trial = next(t for t in trials if t["row"] == "MUR-IDW")
  phases = idw_trial["extras"]["idw_phases"]
  assert phases[:2] == ["pretrain", "pretrain"] and phases[-1] == "calibrate"
  assert len(idw_trial["extras"]["idw_deltas"]) >= 1
  # Early stopping restored a best epoch per phase (pre-train, wake rounds, calibration).
  assert len(idw_trial["extras"]["best_epoch"]) >= 3
  md = (folder / "table.md").read_text()
  assert "| random ranking | chance" in md and "MUR-IDW" in md
  meta = json.loads((folder / "table.json").read_text())["meta"]
  assert meta["data_protocol"] == "sequences" and meta["param_counts"]["MUR-IDW"]["total"] > 0


def test_idw_table4_reuses_table1_trials(idw_quick, capsys):
  _, out = idw_quick
  assert cli.main(["run", "idw/table4", "--quick", "--rows", "MUR-IDW", "--epochs", "2",
                   "--out", str(out)]) == 0
  assert "reused seeds [0, 1]" in capsys.readouterr().err
  trials = _trials(out / "idw" / "table4-quick-epochs2")
  assert {t["row"] for t in trials} == {"MUR-IDW"}
  assert all(t.get("reused_from", "").startswith("idw/table1") for t in trials)


def test_best_epoch_keeps_each_seeds_best_parameters():
  best = runner.BestEpoch("overall/NDCG@20", patience=2)
  params = lambda v: {"w": jnp.asarray(v, jnp.float32)}
  assert not best.update(0, {"overall/NDCG@20": np.array([1.0, 5.0])}, params([10.0, 10.0]))
  assert not best.update(1, {"overall/NDCG@20": np.array([2.0, 4.0])}, params([11.0, 11.0]))
  assert not best.update(2, {"overall/NDCG@20": np.array([1.5, 3.0])}, params([12.0, 12.0]))
  # Seed 1 has gone 3 epochs, seed 0 two, without improving: stop.
  assert best.update(3, {"overall/NDCG@20": np.array([np.nan, 3.0])}, params([13.0, 13.0]))
  np.testing.assert_array_equal(best.finish(params([0.0, 0.0]))["w"], [11.0, 10.0])
  np.testing.assert_array_equal(best.epochs[0], [1, 0])


def _train_tiny_sur(cfg, **kwargs):
  """One seed of a tiny SUR on 200 synthetic users' sequences, trained by `train`."""
  from ltbench.data import registry
  from ltbench import methods
  from ltbench.methods.sequential import SeqModelConfig
  data = registry.load_sequences("idw-synthetic", synthetic_config={"num_users": 200})
  tiny = SeqModelConfig(dim=8, num_layers=1, num_heads=1, item_sizes=(8,))
  method = methods.build("sur", data, tiny, cfg)
  return train(method, data.device_arrays(), int(data.train_row_E.shape[0]),
               jnp.stack([jax.random.PRNGKey(0)]), cfg, **kwargs)


def test_train_stops_when_on_epoch_says_so():
  cfg = TrainConfig(epochs=5, batch_size=256, learning_rate=0.01, log_every=0)
  seen = []
  result = _train_tiny_sur(
      cfg, on_epoch=lambda epoch, state, loss: seen.append(epoch) or epoch == 1)
  assert seen == [0, 1]
  assert np.isfinite(result.losses[:, :2]).all() and np.isnan(result.losses[:, 2:]).all()


def test_progress_eta_is_an_upper_bound_under_early_stopping(capsys):
  """With patience the row usually stops early, so its ETA (to the last epoch) says "at most"."""
  for patience, expected in ((3, "row ETA at most ~"), (0, "row ETA ~")):
    _train_tiny_sur(TrainConfig(epochs=2, batch_size=256, learning_rate=0.01, patience=patience))
    assert expected in capsys.readouterr().err


def test_config_keys_of_committed_cdn_rows_are_unchanged(tmp_path):
  """Early stopping and sequence specs added fields to TrainConfig and TableSpec: the keys
  of rows that use neither must not move, or committed trials would stop counting."""
  run_file = REPO / "results" / "cdn" / "table2-ml-100k" / "run.json"
  data_dir = REPO.parent / "shared" / "data"
  if not run_file.exists() or not (data_dir / "ml-100k").exists():
    pytest.skip("needs the committed ML-100K results and ../shared/data")
  from ltbench.cli import resolve_spec
  spec = resolve_spec("cdn/table2", False, dataset="ml-100k")
  bundle = runner.load_spec_bundle(spec, str(data_dir))
  keys = json.loads(run_file.read_text())["config_keys"]
  for row in spec.rows:
    assert runner.config_key(spec, row, bundle) == keys[row.name], row.name


def test_interrupted_idw_row_resumes_to_the_uninterrupted_result(tmp_path, monkeypatch, capsys):
  """Killed mid-pre-training, then again after a wake round, a resumed IDW row ends with the
  same trial (metrics, losses, curves, deltas, best epochs) as one run straight through."""
  spec = get_spec("idw/table1").quick()
  spec = dataclasses.replace(spec, rows=tuple(r for r in spec.rows if r.name == "MUR-IDW"),
                             claims=(), train=dataclasses.replace(spec.train, checkpoint_every=2))
  straight = _trials(runner.run_spec(spec, out_root=tmp_path / "a")[1])
  save = runner.Checkpointer.save

  def crash_at(round_):
    def crash(self, epoch, tree, host):
      save(self, epoch, tree, host)
      if int(host["idw.round"]) == round_:
        raise KeyboardInterrupt
    return crash

  capsys.readouterr()
  for round_ in (-1, 1):  # after 2 pre-training epochs; after the first wake round
    monkeypatch.setattr(runner.Checkpointer, "save", crash_at(round_))
    with pytest.raises(KeyboardInterrupt):
      runner.run_spec(spec, out_root=tmp_path / "b")
  assert "resuming MUR-IDW from its checkpoint after epoch 2 (pre-training)" in \
      capsys.readouterr().err
  monkeypatch.setattr(runner.Checkpointer, "save", save)
  capsys.readouterr()
  table, out_dir = runner.run_spec(spec, out_root=tmp_path / "b")
  err = capsys.readouterr().err
  assert "resuming MUR-IDW from its checkpoint after epoch" in err
  assert "(after pre-training and 1 wake round(s))" in err
  assert not (out_dir / "ckpt").exists() or not list((out_dir / "ckpt").iterdir())
  resumed = _trials(out_dir)
  assert len(resumed) == len(straight) == 2
  for a, b in zip(straight, resumed):
    assert (a["row"], a["seed"]) == (b["row"], b["seed"])
    np.testing.assert_allclose([a["test"][c] for c in sorted(a["test"])],
                               [b["test"][c] for c in sorted(a["test"])], rtol=1e-5)
    assert a["loss_per_epoch"] == b["loss_per_epoch"]
    assert a["valid_per_epoch"] == b["valid_per_epoch"]
    assert a["extras"] == b["extras"]


def test_idw_claims_are_not_tested_when_no_wake_phase_ran():
  """A first sleep phase below η ends IDW before any wake phase: the row is then MUR plus
  calibration, and the claims about IDW's effect say so instead of passing or failing."""
  from ltbench.harness import report
  spec = get_spec("idw/table1")

  def trial(row, seed, hr, rounds=None):
    t = {"row": row, "seed": seed, "status": "ok", "config": "k",
         "test": {c: hr + 0.1 * seed for c in spec.cells},
         "valid": {c: hr for c in spec.cells}, "extras": {}}
    if rounds is not None:
      t["extras"] = {"idw_wake_rounds": rounds, "idw_deltas": [3.7e-4]}
    return t

  def verdicts(rounds):
    trials = [trial(r, s, hr, rounds if r.endswith("IDW") else None) for s in range(3)
              for r, hr in (("SUR", 80.0), ("MUR", 80.5), ("MUR-IDW", 82.0))]
    table = report.build_table(spec, trials)
    return {c.text: c.check(table) for c in spec.claims}

  ran, idle = verdicts(2), verdicts(0)
  best = next(t for t in ran if t.startswith("MUR-IDW is best overall"))
  assert ran[best].holds is True
  assert idle[best].holds is None and idle[best].evidence.startswith("NOT TESTED: MUR-IDW ran "
                                                                    "no wake phase")
  assert "3.70e-04" in idle[best].evidence and "As computed, it holds" in idle[best].evidence
  marginal = next(t for t in ran if t.startswith("MUR beats SUR"))
  assert idle[marginal].holds == ran[marginal].holds  # claims without IDW are unchanged


def test_idw_ran_over_several_rows_needs_every_one_to_wake():
  from types import SimpleNamespace
  from ltbench.harness.spec import Claim, ClaimResult
  from reproductions.idw.common import idw_ran

  def table(rounds_by_row):
    return SimpleNamespace(trials=[
        {"row": r, "status": "ok", "extras": {"idw_wake_rounds": n, "idw_deltas": [1e-4]}}
        for r, n in rounds_by_row.items()])

  claim = Claim("IDW helps at every M", lambda t: ClaimResult(False, "M=2: 1 vs 2"))
  wrapped = idw_ran(lambda t: ["MUR-IDW M=2", "MUR-IDW M=3"], claim)
  assert wrapped.check(table({"MUR-IDW M=2": 3, "MUR-IDW M=3": 1})).holds is False
  idle = wrapped.check(table({"MUR-IDW M=2": 3, "MUR-IDW M=3": 0}))
  assert idle.holds is None and "MUR-IDW M=3 ran no wake phase" in idle.evidence
  assert "M=2 ran" not in idle.evidence and "As computed, it fails: M=2: 1 vs 2" in idle.evidence


def test_idw_rows_differing_after_pretraining_share_it(tmp_path, capsys):
  """Two MUR-IDW rows that differ only in m pre-train once: the second starts from the
  snapshot the first left (resuming from it is exact: the test above), with the first's
  pre-training epochs in its losses and curves. Rows that pre-train differently never
  share."""
  from reproductions.idw import figure7
  spec = figure7.quick()
  first, second = (r for r in spec.rows if r.name in ("η=0.0004, m=0.9", "η=0.0004, m=0.7"))
  data = types.SimpleNamespace(meta={})
  assert runner.pretrain_key(spec, first, data) == runner.pretrain_key(spec, second, data)
  assert runner.config_key(spec, first, data) != runner.config_key(spec, second, data)
  for other in ({"pretrain_epochs": 1}, {"weighting": "eq10"}, {"num_interests": 2}):
    changed = dataclasses.replace(second, params={**second.params, **other})
    assert runner.pretrain_key(spec, changed, data) != runner.pretrain_key(spec, first, data)
  spec = dataclasses.replace(spec, rows=(first, second), claims=(), figure=None,
                             train=dataclasses.replace(spec.train, checkpoint_every=2))
  capsys.readouterr()
  trials = _trials(runner.run_spec(spec, out_root=tmp_path)[1])
  assert f"{second.name} starts after pre-training" in capsys.readouterr().err
  snapshots = list((tmp_path / "ckpt" / "idw-pretrain").iterdir())
  assert len(snapshots) == 1 and snapshots[0].name.endswith("-s0_1")
  by_row = {(t["row"], t["seed"]): t for t in trials}
  assert len(by_row) == 4
  for seed in (0, 1):
    a, b = by_row[first.name, seed], by_row[second.name, seed]
    n = a["extras"]["idw_phases"].count("pretrain")
    assert n >= 1 and b["extras"]["idw_phases"].count("pretrain") == n
    assert a["loss_per_epoch"][:n] == b["loss_per_epoch"][:n]
    for cell, curve in a["valid_per_epoch"].items():
      assert b["valid_per_epoch"][cell][:n] == curve[:n]
    assert b["extras"]["idw_pretrain_shared"] is True
    assert "idw_pretrain_shared" not in a["extras"]


def test_calibration_step_size_is_searchable_and_shares_pre_training():
  """`ltbench tune idw/table1 --rows MUR-IDW --params calibration_lr`: one grid point per
  step size, both pre-training like MUR-IDW itself (they differ only after it)."""
  from ltbench.harness import tune
  spec = get_spec("idw/table1")
  tuned = tune.tune_spec(spec, ["MUR-IDW"], ["calibration_lr"])
  assert [r.params["calibration_lr"] for r in tuned.rows] == [0.01, 0.001]
  data = types.SimpleNamespace(meta={})
  mur_idw = next(r for r in spec.rows if r.name == "MUR-IDW")
  assert {runner.pretrain_key(tuned, r, data) for r in tuned.rows} == {
      runner.pretrain_key(spec, mur_idw, data)}
  assert [r.name for r in spec.rows if r.grid] == ["SUR-IDW", "MUR-IDW"]
