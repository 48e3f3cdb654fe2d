"""End-to-end: the --quick spec through the CLI, resume, diff, list, data info, errors,
and a NaN trial that fails alone while the other seeds' results stay on disk."""

import dataclasses
import json
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ltbench import cli, methods
from ltbench.harness import runner
from ltbench.methods.baselines import TwoTowerSoftmax
from reproductions import get_spec


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
  out = tmp_path_factory.mktemp("results")
  # ClassBalance and LogQ are other objectives of the same backbone (test_train, test_cdn
  # train them); leaving them out here keeps CI short.
  code = cli.main(["run", "cdn/table2", "--quick", "--rows", "Two-tower,NDP,BBN,CDN", "--out",
                   str(out)])
  return code, out / "cdn" / "table2-quick"


def test_quick_run_writes_tables_and_trials(quick_run):
  code, out_dir = quick_run
  assert code == 0
  trials = [json.loads(l) for l in (out_dir / "trials.jsonl").read_text().splitlines()]
  assert sorted((t["row"], t["seed"]) for t in trials) == sorted(
      (r, s) for r in ("Two-tower", "NDP", "BBN", "CDN") for s in (0, 1))
  for t in trials:
    assert t["status"] == "ok" and t["split"] == "leave-one-out by timestamp"
    assert set(get_spec("cdn/table2").cells) <= set(t["test"])
    assert all(0.0 <= v <= 100.0 for v in t["test"].values())
    assert t["test"]["overall/HR@50"] > 0.0
  md = (out_dir / "table.md").read_text()
  assert md.count("| ours ") == 4 and "The paper's claims" in md
  # The random-ranking reference line, well below the trained backbone.
  chance = json.loads((out_dir / "table.json").read_text())["meta"]["chance"]
  assert "| random ranking | chance" in md
  backbone = min(t["test"]["overall/HR@50"] for t in trials if t["row"] == "Two-tower")
  assert 0 < chance["overall/HR@50"] < backbone
  payload = json.loads((out_dir / "table.json").read_text())
  assert payload["meta"]["device"].startswith("cpu") and payload["meta"]["jax"] == jax.__version__
  # Each row's trials name where they were trained (a report may be written elsewhere).
  assert payload["meta"]["trial_devices"] == {r: [payload["meta"]["device"]]
                                              for r in payload["meta"]["trial_wall_time_s"]}
  assert set(payload["meta"]["trial_git_commits"]) == set(payload["meta"]["trial_devices"])
  assert len(payload["claims"]) == 7
  # Claims about rows this run left out (ClassBalance, LogQ) stay undecided, and say so.
  for c in payload["claims"]:
    assert c["holds"] is not None or "needs rows" in c["evidence"], c
  assert sum(c["holds"] is not None for c in payload["claims"]) >= 3
  assert (out_dir / "table.csv").read_text().startswith("row,cell,mean,se,n,paper_mean")


def test_rerun_resumes_without_retraining(quick_run, capsys):
  code, out_dir = quick_run
  before = (out_dir / "trials.jsonl").read_text()
  assert cli.main(["run", "cdn/table2", "--quick", "--rows", "Two-tower,NDP,BBN,CDN", "--out",
                   str(out_dir.parent.parent)]) == 0
  assert (out_dir / "trials.jsonl").read_text() == before
  assert capsys.readouterr().err.count("already on disk, skipping") == 4


def test_report_rewrites_tables_from_finished_trials_only(quick_run, capsys):
  code, out_dir = quick_run
  before = (out_dir / "trials.jsonl").read_text()
  expected = (out_dir / "table.md").read_text()
  (out_dir / "table.md").unlink()
  assert cli.main(["report", "cdn/table2", "--quick", "--out", str(out_dir.parent.parent)]) == 0
  assert (out_dir / "trials.jsonl").read_text() == before  # nothing trained
  # The same report, but for the wall time of the invocation that wrote it.
  def timeless(text):
    return re.sub(r'"wall_time_this_invocation_s": [0-9.]+', "", text)
  assert timeless((out_dir / "table.md").read_text()) == timeless(expected)
  err = capsys.readouterr().err
  assert "4 of 6 rows have finished trials; none yet for ClassBalance, LogQ" in err
  assert "training seeds" not in err


def test_report_without_trials_says_so(tmp_path, capsys):
  assert cli.main(["report", "cdn/table2", "--quick", "--out", str(tmp_path)]) == 2
  assert "no trial of cdn/table2-quick has finished" in capsys.readouterr().err


def test_diff_lists_cells_and_claims(quick_run, capsys):
  _, out_dir = quick_run
  assert cli.main(["diff", "cdn/table2", "--quick", "--out", str(out_dir.parent.parent)]) == 0
  text = capsys.readouterr().out
  assert "tail/HR@50" in text and "Claims:" in text and "24.68 ± 0.16" in text


def test_diff_without_results_says_what_to_run(tmp_path, capsys):
  assert cli.main(["diff", "cdn/table2", "--out", str(tmp_path)]) == 2
  assert "ltbench run cdn/table2" in capsys.readouterr().err


def test_list_shows_specs_and_data_presence(tmp_path, capsys):
  assert cli.main(["list", "--data-dir", str(tmp_path)]) == 0
  out = capsys.readouterr().out
  assert "cdn/table2" in out and "ml-1m" in out and "Two-tower, ClassBalance, LogQ" in out


@pytest.mark.parametrize("argv, expected", [
    (["run", "cdn/table9"], "cdn/table2"),
    (["run", "cdn/table2", "--quick", "--rows", "Nope"], "Two-tower, ClassBalance, LogQ"),
    (["data", "info", "ml-2m"], "ml-1m"),
    (["run", "cdn/table2", "--quick", "--epochs", "0"], "--epochs"),
])
def test_bad_input_lists_valid_choices(argv, expected, capsys, tmp_path):
  assert cli.main(argv + (["--out", str(tmp_path)] if argv[0] == "run" else [])) == 2
  err = capsys.readouterr().err
  assert err.startswith("ltbench: error:") and expected in err and "Traceback" not in err


def test_missing_data_names_url_and_directory(tmp_path, monkeypatch, capsys):
  monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
  monkeypatch.delenv("LTBENCH_DATA", raising=False)
  assert cli.main(["run", "cdn/table2", "--no-download", "--data-dir", str(tmp_path),
                   "--out", str(tmp_path)]) == 2
  err = capsys.readouterr().err
  assert "ml-1m.zip" in err and str(tmp_path) in err
  assert cli.main(["data", "info", "ml-1m", "--data-dir", str(tmp_path)]) == 0
  assert "files.grouplens.org" in capsys.readouterr().out


@dataclasses.dataclass(frozen=True)
class NaNForPositiveFlag:
  """Two-tower whose loss is NaN for seeds whose frozen random flag is positive."""
  base: TwoTowerSoftmax
  name: str = "NaNRow"

  def init(self, key, data):
    k_model, k_flag = jax.random.split(key)
    return {"model": self.base.init(k_model, data), "flag": jax.random.normal(k_flag, ())}

  def sample(self, *args):
    return self.base.sample(*args)

  def loss(self, params, batch, data, key, epoch):
    loss, aux = self.base.loss(params["model"], batch, data, key, epoch)
    return jnp.where(jax.lax.stop_gradient(params["flag"]) > 0, jnp.nan, loss), aux

  def serve(self, params, data):
    return self.base.serve(params["model"], data)


def test_nan_trial_fails_alone_and_others_stay_on_disk(tmp_path, monkeypatch):
  flags = {s: float(jax.random.normal(jax.random.split(jax.random.PRNGKey(s))[1], ()))
           for s in range(8)}
  good = [s for s in flags if flags[s] <= 0][:1]
  bad = [s for s in flags if flags[s] > 0][:1]
  monkeypatch.setitem(methods.METHODS, "nan_row", lambda bundle, cfg, train_cfg, name: NaNForPositiveFlag(
      methods.METHODS["two_tower"](bundle, cfg, train_cfg, name), name))
  spec = get_spec("cdn/table2").quick()
  spec = dataclasses.replace(
      spec, rows=(dataclasses.replace(spec.rows[0], name="NaNRow", method="nan_row"),), claims=(),
      train=dataclasses.replace(spec.train, epochs=2))
  table, out_dir = runner.run_spec(spec, seeds=good + bad, out_root=tmp_path)
  trials = [json.loads(l) for l in (out_dir / "trials.jsonl").read_text().splitlines()]
  status = {t["seed"]: t for t in trials}
  assert status[good[0]]["status"] == "ok"
  assert status[bad[0]]["status"] == "failed"
  assert f"seed {bad[0]}" in status[bad[0]]["error"] and "epoch 1" in status[bad[0]]["error"]
  assert "NaNRow" in status[bad[0]]["error"]
  assert table.seeds["NaNRow"] == good


def test_identical_rows_are_reused_across_specs(tmp_path, capsys):
  common = ["--quick", "--seeds", "0", "--epochs", "1", "--out", str(tmp_path)]
  assert cli.main(["run", "cdn/table2", "--rows", "Two-tower"] + common) == 0
  capsys.readouterr()
  assert cli.main(["run", "cdn/table4", "--rows", "Two-tower"] + common) == 0
  err = capsys.readouterr().err
  assert "reused seeds [0]" in err and "seeds []" not in err
  trial = json.loads((tmp_path / "cdn" / "table4-quick-epochs1" / "trials.jsonl").read_text())
  assert trial["reused_from"] == "cdn/table2-quick-epochs1:Two-tower"


def test_spec_eta_does_not_count_rows_another_spec_already_trained(tmp_path, capsys):
  # ssl/rq2's "Two-tower 100%" is ssl/rq1's Two-tower: once rq1 has it, training
  # "Two-tower 10%" is the last row to train, so its progress lines name no spec ETA.
  common = ["--quick", "--seeds", "0", "--epochs", "2", "--out", str(tmp_path)]
  assert cli.main(["run", "ssl/rq1", "--rows", "Two-tower"] + common) == 0
  capsys.readouterr()
  assert cli.main(["run", "ssl/rq2", "--rows", "Two-tower 10%,Two-tower 100%"] + common) == 0
  err = capsys.readouterr().err
  assert "Two-tower 10% epoch   1/2" in err and "row ETA" in err
  assert "spec ETA" not in err
  assert "Two-tower 100%: reused seeds [0]" in err
  # A report written later records the seeds on disk, not the spec's default seed list.
  assert cli.main(["report", "ssl/rq2", "--quick", "--epochs", "2", "--out", str(tmp_path)]) == 0
  run = json.loads((tmp_path / "ssl" / "rq2-quick-epochs2" / "run.json").read_text())
  assert run["meta"]["seeds_requested"] == [0]


def test_interrupted_row_resumes_from_its_orbax_checkpoint(tmp_path, monkeypatch, capsys):
  spec = get_spec("cdn/table2").quick()
  spec = dataclasses.replace(spec, rows=spec.rows[:1], claims=(),
                             train=dataclasses.replace(spec.train, epochs=4, checkpoint_every=2))
  save = runner.Checkpointer.save

  def crash_after_epoch_2(self, epoch, tree, host):
    save(self, epoch, tree, host)
    if epoch == 1:
      raise KeyboardInterrupt

  monkeypatch.setattr(runner.Checkpointer, "save", crash_after_epoch_2)
  with pytest.raises(KeyboardInterrupt):
    runner.run_spec(spec, seeds=[0], out_root=tmp_path)
  assert list((tmp_path / "cdn" / "table2-quick" / "ckpt").iterdir())
  monkeypatch.setattr(runner.Checkpointer, "save", save)
  capsys.readouterr()
  table, out_dir = runner.run_spec(spec, seeds=[0], out_root=tmp_path)
  err = capsys.readouterr().err
  assert "resuming Two-tower from its checkpoint after epoch 2" in err
  assert "epoch   1/4" not in err and "epoch   3/4" in err
  assert table.seeds["Two-tower"] == [0]
  assert not (out_dir / "ckpt").exists() or not list((out_dir / "ckpt").iterdir())
  # The resumed trial is the uninterrupted one: losses and curves before the resume too.
  _, straight_dir = runner.run_spec(spec, seeds=[0], out_root=tmp_path / "straight")
  a, b = (json.loads((d / "trials.jsonl").read_text()) for d in (straight_dir, out_dir))
  assert a["loss_per_epoch"] == b["loss_per_epoch"] and None not in b["loss_per_epoch"]
  assert a["valid_per_epoch"] == b["valid_per_epoch"]
  assert a["test"] == pytest.approx(b["test"], rel=1e-5)


def test_an_unreadable_checkpoint_is_ignored_not_fatal(tmp_path, capsys):
  ckpt = runner.Checkpointer(tmp_path / "ckpt", every=1)
  ckpt.save(0, {"w": np.zeros(3, np.float32)}, {"losses": np.zeros((1, 1))})
  (tmp_path / "ckpt" / "host-0.npz").write_bytes(b"not a zip")
  assert runner.Checkpointer(tmp_path / "ckpt", every=1).restore(
      {"w": np.zeros(3, np.float32)}) is None
  assert "ignoring the unreadable checkpoint" in capsys.readouterr().err
  restored = runner.Checkpointer(tmp_path / "ckpt2", every=1)
  restored.save(4, {"w": np.arange(3, dtype=np.float32)}, {"losses": np.ones((1, 5))})
  tree, host, start = runner.Checkpointer(tmp_path / "ckpt2", every=1).restore(
      {"w": np.zeros(3, np.float32)})
  assert start == 5 and np.asarray(tree["w"]).tolist() == [0, 1, 2]
  assert host["losses"].shape == (1, 5)


def test_git_commit_falls_back_to_the_environment_without_git(monkeypatch):
  def no_git(*a, **k):
    raise OSError("git not found")
  monkeypatch.setattr(runner.subprocess, "run", no_git)
  monkeypatch.setenv("LTBENCH_GIT_COMMIT", "abc123def456")
  assert runner.git_commit() == "abc123def456"
  monkeypatch.delenv("LTBENCH_GIT_COMMIT")
  assert runner.git_commit() == "unknown"


def test_claim_result_from_numpy_comparison_serialises():
  # Figure checks compare numpy seed-mean curves: their np.bool_ must reach table.json.
  import json
  import numpy as np
  from ltbench.harness.spec import ClaimResult
  res = ClaimResult(np.float64(1.0) < np.float64(2.0), "1 < 2")
  assert json.loads(json.dumps({"holds": res.holds})) == {"holds": True}
  assert ClaimResult(None, "not run").holds is None
