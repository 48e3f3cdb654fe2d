"""MIRec (WWW'21) methods: the meta-learner starts as the identity, Eq. 9 serving, MeLU's
masked local step, re-sampling masses, curriculum stages, Ω(k) once per trial, and quick
smoke runs of the MIRec specs."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ltbench import cli, methods
from ltbench.data import registry
from ltbench.methods.baselines import ModelConfig
from ltbench.train import TrainConfig

MODEL = ModelConfig(embed_dim=8, sizes=(16, 8), dropout=0.0)
CFG = TrainConfig(epochs=4, batch_size=128, learning_rate=2e-3, log_every=0)


@pytest.fixture(scope="module")
def bundle():
  return registry.load_bundle("synthetic", synthetic_config={"num_users": 200, "num_items": 150})


@pytest.fixture(scope="module")
def data(bundle):
  return bundle.device_arrays()


def _leaves_equal(a, b):
  return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


@pytest.fixture(scope="module")
def mirec_method(bundle):
  return methods.build("mirec", bundle, MODEL, CFG, lambda_p=1.0)


@pytest.fixture(scope="module")
def mirec_params(mirec_method, data):
  return jax.jit(mirec_method.init)(jax.random.PRNGKey(1), data)


def test_identity_initialised_meta_learner_reproduces_theta(bundle, mirec_method, mirec_params):
  mapped = mirec_method.mapped(mirec_params["theta"], mirec_params["w"])
  assert jax.tree.structure(mapped) == jax.tree.structure(mirec_params["theta"])
  assert _leaves_equal(mapped, mirec_params["theta"])
  # F's size: one (H+1)² map plus a bias per tower (H = 16 here, group 1)
  assert mirec_params["w"]["user"]["params"]["delta"].shape == (17, 17)
  # Blocks of two output units: identity too, and a (2·(H+1))² map.
  from ltbench.methods.mirec import MetaMap
  kernel, bias = jax.random.normal(jax.random.PRNGKey(0), (16, 8)), jnp.arange(8.0)
  w = MetaMap(2).init(jax.random.PRNGKey(0), kernel, bias)
  assert w["params"]["delta"].shape == (34, 34)
  k2, b2 = MetaMap(2).apply(w, kernel, bias)
  assert np.array_equal(k2, kernel) and np.array_equal(b2, bias)
  with pytest.raises(Exception, match="meta_group"):
    methods.build("mirec", bundle, MODEL, CFG, meta_group=3)


def test_serving_eq9_at_lambda_p_one_is_the_many_shot_model(bundle, data, mirec_method,
                                                            mirec_params):
  m = mirec_method
  # A meta-learner away from the identity: Eq. 9 at λ_p = 1 must not see it.
  params = {**mirec_params, "w": jax.tree.map(lambda x: x + 0.3, mirec_params["w"])}

  @jax.jit
  def scores(params):
    user, item = m.serve(params, data)
    user_s, item_s = m.base.serve(params["theta_star"], data)
    mixed_half = methods.build("mirec", bundle, MODEL, CFG, lambda_p=0.5).serve(params, data)
    user_f, item_f = m.base.serve(m.mapped(params["theta"], params["w"]), data)
    return (user @ item.T, user_s @ item_s.T, mixed_half[0] @ mixed_half[1].T,
            0.5 * user_s @ item_s.T + 0.5 * user_f @ item_f.T)

  mixed, many_shot, half, half_ref = scores(params)
  np.testing.assert_allclose(mixed, many_shot, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(half, half_ref, rtol=1e-5, atol=1e-5)


def test_melu_local_step_moves_only_the_user_mlp(bundle, data):
  m = methods.build("melu", bundle, MODEL, CFG, local_lr=0.5)
  params = jax.jit(m.init)(jax.random.PRNGKey(2), data)

  @jax.jit
  def adapt(params):
    model = m.base.model
    items_IxD = model.apply(params, data["item_features"], True, method=model.items)
    target_UxD, counts_U = m.history_targets(data, items_IxD)
    return m.adapted_tower(params, data, jnp.int32(3), target_UxD[3], counts_U[3], items_IxD)

  before = params["params"]["user_tower"]
  after = adapt(params)
  assert _leaves_equal(after["encoder"], before["encoder"])
  moved = [not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(after["mlp"]),
                                                     jax.tree.leaves(before["mlp"]))]
  assert all(moved)


def test_melu_tasks_are_one_users_examples(bundle, data):
  m = methods.build("melu", bundle, MODEL, CFG, support=3, query=2)
  batch = jax.jit(lambda k: m.sample(k, data, jnp.int32(0), 4, 50))(jax.random.PRNGKey(3))
  assert batch["user"].shape == (4, 10) and batch["item"].shape == (4, 10, 5)
  seen = {}
  for u, i in zip(np.asarray(bundle.train_user), np.asarray(bundle.train_item)):
    seen.setdefault(int(u), set()).add(int(i))
  for u, items in zip(np.asarray(batch["user"]).ravel(), np.asarray(batch["item"]).reshape(-1, 5)):
    assert set(items.tolist()) <= seen[int(u)]


def test_resampling_masses(bundle, data):
  head_N = np.asarray(bundle.head_mask[bundle.train_item])
  for mode in ("over", "under"):
    m = methods.build(f"{mode}sample", bundle, MODEL, CFG)
    heavy_N = head_N if m.heavy == "head" else ~head_N
    key = jax.random.PRNGKey(4)
    extra = jax.jit(m.trial_data)(key, data)
    pool = np.asarray(jax.jit(lambda k: m.pool(k, {**data, **extra}))(key))
    counts = np.bincount(pool, minlength=bundle.num_train)
    heavy, light = counts[heavy_N], counts[~heavy_N]
    assert heavy.sum() == light.sum()  # head and tail have equal mass
    if mode == "over":
      assert (heavy == 1).all()  # the heavier slice unchanged
      assert light.max() - light.min() <= 1 and light.min() >= 1  # the lighter repeated evenly
    else:
      assert (light == 1).all()  # the lighter slice unchanged
      assert set(np.unique(heavy)) <= {0, 1} and heavy.sum() == (~heavy_N).sum()
      again = np.asarray(jax.jit(m.trial_data)(key, data)["under_kept"])
      np.testing.assert_array_equal(again, np.asarray(extra["under_kept"]))  # once per trial


def test_curriculum_stages_and_lr_decay(bundle, data):
  m = methods.build("head2tail", bundle, MODEL, CFG, lr_decay=0.01)
  assert m.phase_starts == (2,) and m.phase_lr_scale(1) == 0.01
  sample = jax.jit(lambda k, e: m.sample(k, data, e, 3, 64))
  head_I = np.asarray(bundle.head_mask)
  for epoch, want_head in ((0, True), (1, True), (2, False), (3, False)):
    idx = np.asarray(sample(jax.random.PRNGKey(epoch), jnp.int32(epoch))).ravel()
    assert (head_I[np.asarray(bundle.train_item)[idx]] == want_head).all()
  with pytest.raises(Exception, match="lr_decay"):
    methods.build("tail2head", bundle, MODEL, CFG, lr_decay=0.0)


@pytest.mark.parametrize("method", ["mirec", "mirec_m"])
def test_omega_k_is_drawn_once_per_trial(bundle, data, method):
  m = methods.build(method, bundle, MODEL, CFG)
  k = int(bundle.item_counts[bundle.head_mask].min())
  assert m.k == k
  trial = jax.jit(m.trial_data)
  keep = np.asarray(trial(jax.random.PRNGKey(5), data)["omega_k"])
  kept = np.bincount(np.asarray(bundle.train_item)[keep], minlength=bundle.num_items)
  want = np.minimum(bundle.item_counts, k)
  if method == "mirec_m":
    want = want * bundle.head_mask
  np.testing.assert_array_equal(kept, want)
  assert keep.sum() == m.omega_size
  np.testing.assert_array_equal(np.asarray(trial(jax.random.PRNGKey(5), data)["omega_k"]), keep)
  assert not np.array_equal(np.asarray(trial(jax.random.PRNGKey(6), data)["omega_k"]), keep)


def test_mirec_stages_freeze_and_warm_start(bundle, data):
  m = methods.build("mirec", bundle, MODEL, CFG)
  params = jax.jit(m.init)(jax.random.PRNGKey(7), data)
  for epoch, star in ((0, True), (m.switch_epoch, False)):
    mask = m.update_mask(params, jnp.int32(epoch))
    assert all(bool(x) == star for x in jax.tree.leaves(mask["theta_star"]))
    assert all(bool(x) != star for x in jax.tree.leaves(mask["theta"]) + jax.tree.leaves(mask["w"]))
  started = m.begin_phase(1, params, jax.random.PRNGKey(0), data)
  assert _leaves_equal(started["theta"], params["theta_star"])
  # At the switch F(θ; w) = θ = θ*: Eq. 5's distance term is zero.
  assert float(m.distance(m.mapped(started["theta"], started["w"]), started["theta_star"])) == 0.0
  with pytest.raises(Exception, match="items"):
    methods.build("mirec", bundle, MODEL, CFG, items="tail")


# Table 4's rows are unit-tested above (re-sampling masses, curriculum, MeLU); its spec
# is checked for well-formedness in test_specs. One smoke run keeps CI short.
@pytest.mark.parametrize("spec_id,rows,epochs", [("mirec/table6", "MIRec", "2")])
def test_quick_smoke(spec_id, rows, epochs, tmp_path):
  # One seed, one row per spec, and as few epochs as cover the row's stages (MIRec: one of
  # θ* on Ω*, one meta epoch on Ω(k)): the compile dominates. The other rows' pieces are
  # tested above; the full quick specs run with `ltbench run mirec/table4 --quick`.
  assert cli.main(["run", spec_id, "--quick", "--seeds", "0", "--epochs", epochs, "--rows",
                   rows, "--out", str(tmp_path)]) == 0
  out_dir = tmp_path / (spec_id + f"-quick-epochs{epochs}")
  trials = [json.loads(l) for l in (out_dir / "trials.jsonl").read_text().splitlines()]
  assert {t["row"] for t in trials} == set(rows.split(","))
  assert all(t["status"] == "ok" and 0 <= t["test"]["overall/HR@10"] <= 100 for t in trials)
  assert all(np.isfinite(t["loss_per_epoch"]).all() for t in trials)
  assert all("slice_loss_per_epoch" not in t for t in trials)  # only specs that ask for them
  assert (out_dir / "table.md").exists()


def test_slice_cross_entropy_matches_numpy():
  from ltbench.harness.runner import slice_cross_entropy
  rng = np.random.default_rng(0)
  user_SxUxD, item_SxIxD = rng.normal(size=(2, 5, 3)), rng.normal(size=(2, 7, 3))
  users_N, items_N = rng.integers(0, 5, 11), rng.integers(0, 7, 11)
  head_N = np.arange(11) % 3 == 0
  out = slice_cross_entropy(jnp.asarray(user_SxUxD, jnp.float32),
                            jnp.asarray(item_SxIxD, jnp.float32), jnp.asarray(users_N),
                            jnp.asarray(items_N), jnp.asarray(head_N), chunk=4)
  logits_SxNxI = np.einsum("snd,sid->sni", user_SxUxD[:, users_N], item_SxIxD)
  lse_SxN = np.log(np.exp(logits_SxNxI).sum(-1))
  ce_SxN = lse_SxN - np.take_along_axis(logits_SxNxI, items_N[None, :, None], 2)[..., 0]
  for name, mask in (("overall", np.ones(11, bool)), ("head", head_N), ("tail", ~head_N)):
    np.testing.assert_allclose(out[name], ce_SxN[:, mask].mean(1), rtol=1e-5)
  empty = slice_cross_entropy(jnp.asarray(user_SxUxD, jnp.float32),
                              jnp.asarray(item_SxIxD, jnp.float32), jnp.asarray(users_N),
                              jnp.asarray(items_N), jnp.zeros(11, bool), chunk=4)
  assert np.isnan(empty["head"]).all()


def test_trials_without_slice_losses_are_not_reused(tmp_path):
  from ltbench.harness.runner import TrialStore, reuse_trials
  other = TrialStore(tmp_path / "mirec" / "table4" / "trials.jsonl")
  t = {"spec": "mirec/table4", "row": "Head2Tail", "seed": 0, "config": "abc", "status": "ok",
       "test": {"overall/HR@10": 1.0}, "valid": {}}
  other.append(t)
  other.append({**t, "seed": 1, "slice_loss_per_epoch": {"train/head": [1.0]}})
  target = TrialStore(tmp_path / "mirec" / "figure5" / "trials.jsonl")
  assert reuse_trials(tmp_path, target, "Head2Tail", "abc", [0, 1], ["overall/HR@10"],
                      ("slice_loss_per_epoch",)) == [1]
  assert reuse_trials(tmp_path, TrialStore(tmp_path / "x" / "trials.jsonl"), "Head2Tail",
                      "abc", [0, 1], ["overall/HR@10"]) == [0, 1]


def test_figure5_quick_records_slice_losses(tmp_path):
  # One curriculum row, one seed, one epoch per stage: the compile dominates.
  assert cli.main(["run", "mirec/figure5", "--quick", "--seeds", "0", "--epochs", "2", "--rows",
                   "Head2Tail", "--out", str(tmp_path)]) == 0
  out_dir = tmp_path / "mirec" / "figure5-quick-epochs2"
  (trial,) = [json.loads(l) for l in (out_dir / "trials.jsonl").read_text().splitlines()]
  curves = trial["slice_loss_per_epoch"]
  assert set(curves) == {f"{p}/{s}" for p in ("train", "valid")
                         for s in ("overall", "head", "tail")}
  assert all(len(v) == 2 and np.isfinite(v).all() and min(v) > 0 for v in curves.values())
  assert (out_dir / "figure5.png").stat().st_size > 1000
  assert len((out_dir / "figure5.csv").read_text().splitlines()) == 1 + 6 * 2


def test_figure4_quick_runs_a_dimension_override(tmp_path):
  from reproductions import get_spec
  spec = get_spec("mirec/figure4").quick()
  assert spec.row("Two-tower d=16").params == {}  # the spec's own dimension: no override
  assert spec.row("MIRec d=8").params["sizes"] == (32, 16, 8)
  assert cli.main(["run", "mirec/figure4", "--quick", "--seeds", "0", "--epochs", "1", "--rows",
                   "Two-tower d=8", "--out", str(tmp_path)]) == 0
  out_dir = tmp_path / "mirec" / "figure4-quick-epochs1"
  (trial,) = [json.loads(l) for l in (out_dir / "trials.jsonl").read_text().splitlines()]
  assert trial["status"] == "ok" and "slice_loss_per_epoch" not in trial
  assert (out_dir / "figure4.png").stat().st_size > 1000
  assert len((out_dir / "figure4.csv").read_text().splitlines()) == 1 + 2 * 3  # metric x slice


def test_melu_trains_and_serves(bundle, data):
  from ltbench.train import train
  cfg = TrainConfig(epochs=1, batch_size=128, learning_rate=2e-3, log_every=0)
  m = methods.build("melu", bundle, MODEL, cfg)
  result = train(m, data, bundle.num_train, jax.random.PRNGKey(0)[None], cfg)
  assert np.isfinite(result.losses).all() and not result.failed
  user, item = jax.jit(m.serve)(jax.tree.map(lambda x: x[0], result.params), data)
  assert np.isfinite(np.asarray(user)).all() and user.shape[0] == bundle.num_users


def test_rows_differing_only_in_serving_train_once(tmp_path):
  # λ_p (Eq. 9) changes only serving: the five grid points of a λ_p search train once and
  # each is served with its own λ_p; the record of each is what a separate run writes.
  assert cli.main(["tune", "mirec/table6", "--quick", "--rows", "Two-tower_2", "--params",
                   "lambda_p", "--seeds", "0", "--epochs", "1", "--out",
                   str(tmp_path / "a")]) == 0
  tuned = [json.loads(l) for l in (tmp_path / "a" / "mirec" / "table6-quick-epochs1-tune" /
                                   "trials.jsonl").read_text().splitlines()]
  assert len(tuned) == 5 and len({t["config"] for t in tuned}) == 5
  (first,) = [t for t in tuned if "trained_with" not in t]
  assert all(t["trained_with"] == first["row"] for t in tuned if t is not first)
  assert len({tuple(t["loss_per_epoch"]) for t in tuned}) == 1  # one training run
  assert len({t["test"]["overall/HR@10"] for t in tuned}) > 1  # served differently
  assert cli.main(["run", "mirec/table6", "--quick", "--rows", "Two-tower_2", "--seeds", "0",
                   "--epochs", "1", "--out", str(tmp_path / "b")]) == 0
  (alone,) = [json.loads(l) for l in (tmp_path / "b" / "mirec" / "table6-quick-epochs1" /
                                      "trials.jsonl").read_text().splitlines()]
  (same,) = [t for t in tuned if t["row"] == "Two-tower_2 [lambda_p=0.5]"]
  assert same["config"] == alone["config"]
  for part in ("test", "valid"):
    for cell, value in alone[part].items():
      assert same[part][cell] == pytest.approx(value, rel=1e-6, abs=1e-6), (part, cell)
  assert same["loss_per_epoch"] == alone["loss_per_epoch"]
