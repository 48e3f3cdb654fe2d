"""IDW's method (methods/idw.py: sleep, wake, calibration, driver) and the Table 1 baseline
losses (losses.py, methods/sequential.py). Kept small: one tiny data set, one tiny
model and one driver program set (wake + calibrate epochs, sleep), reused by every test."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ltbench import losses, methods, train
from ltbench.data import registry
from ltbench.data.sequences import example_inputs
from ltbench.methods import idw, sequential
from ltbench.methods.baselines import sampler_log_q

TINY = sequential.SeqModelConfig(dim=8, num_layers=1, num_heads=2, item_sizes=(8, 8))
# One step per epoch: run_idw is told the data holds one batch (each epoch draws a new one).
CFG = train.TrainConfig(batch_size=128, learning_rate=0.01, log_every=0)
IDW = idw.IDWConfig(momentum=0.5, eta=0.0, max_iterations=2, pretrain_epochs=2,
                    wake_epochs=1, calibration_epochs=2)
KEYS = jax.vmap(jax.random.PRNGKey)(jnp.asarray([0, 1]))


@pytest.fixture(scope="module")
def seq_data():
  return registry.load_sequences("idw-synthetic", {"num_users": 200}, {"num_negatives": 20})


@pytest.fixture(scope="module")
def mur_idw(seq_data):
  return methods.build("mur_idw", seq_data, TINY, CFG, num_interests=2)


@pytest.fixture(scope="module")
def runs(seq_data, mur_idw):
  """Algorithm 1 twice with the same compiled programs (one epoch program for every phase,
  one sleep program): never stopping (η = 0, so MAX_T = 2 wake rounds) and stopping at the
  first sleep (m = 1 leaves w unchanged, η > 0)."""
  data = seq_data.device_arrays()
  run = lambda cfg: idw.run_idw(mur_idw, data, CFG.batch_size, KEYS, CFG, cfg)
  full = run(IDW)
  still = run(dataclasses.replace(IDW, momentum=1.0, eta=1e-12))
  return {"full": full, "still": still, "data": data}


def test_registry_builds_idw_and_baselines(seq_data):
  m = methods.build("sur_idw", seq_data, TINY, CFG, weighting="eq10")
  assert isinstance(m, idw.IDWTwoTower) and m.weighting == "eq10"
  assert m.model_cfg.num_interests == 1
  want = {"frequency_balance": ("frequency_balance", "none"), "focal_balance": ("focal", "none"),
          "qmargin": ("qmargin", "none"), "item_norm": ("softmax", "train"),
          "item_norm_posthoc": ("softmax", "post_hoc")}
  for name, (objective, norm) in want.items():
    b = methods.build(name, seq_data, TINY, CFG)
    assert (b.objective, b.item_norm, b.model_cfg.num_interests) == (objective, norm, 5)
  # Post-hoc norm trains exactly like MUR: one compiled program for both rows.
  mur = methods.build("mur", seq_data, TINY, CFG)
  post = methods.build("item_norm_posthoc", seq_data, TINY, CFG, tau=0.5)
  assert train.program_key(post) == train.program_key(mur)


def test_sleep_phase_weights_sum_to_one_and_favour_sparse_items():
  rng = np.random.default_rng(0)
  dense_12x2 = rng.normal(size=(12, 2)) * 0.1
  angle_4 = np.arange(4) * np.pi / 2
  sparse_4x2 = 3.0 * np.stack([np.cos(angle_4), np.sin(angle_4)], 1)
  items_18x2 = np.concatenate([dense_12x2, sparse_4x2, rng.normal(size=(2, 2))]).astype(np.float32)
  target_18 = np.arange(18) < 16  # the last two items are never targets
  w0_18 = np.where(target_18, 1 / 16, 0.0).astype(np.float32)
  w1, delta = idw.sleep_weights(items_18x2, w0_18, target_18, 0.5)
  w1 = np.asarray(w1)
  np.testing.assert_allclose(w1.sum(), 1.0, rtol=1e-6)
  assert (w1[16:] == 0).all()
  assert w1[12:16].min() > 1 / 16 > w1[:12].max()  # towards the low-density items
  # Oracle: Algorithm 2 spelled out over the target items with the public pieces.
  density = idw.kde_density(items_18x2, items_18x2, w0_18)[:16]  # the same program
  want = idw.update_weights(w0_18[:16], density, 0.5)
  np.testing.assert_allclose(w1[:16], np.asarray(want), rtol=1e-5, atol=1e-8)
  np.testing.assert_allclose(float(delta), np.abs(w1 - w0_18).max(), rtol=1e-6)
  # Repeated sleeps on fixed embeddings converge: ‖Δw‖ shrinks by the momentum at least.
  w2, delta2 = idw.sleep_weights(items_18x2, w1, target_18, 0.5)
  assert float(delta2) < float(delta)
  np.testing.assert_allclose(float(np.asarray(w2).sum()), 1.0, rtol=1e-6)


def test_stopping_rule(runs):
  full, still = runs["full"], runs["still"]
  # η = 0: ‖Δw‖ < 0 never holds, so MAX_T = 2 sleep/wake rounds, then calibration.
  assert full.deltas.shape == (2, 2) and (full.wake_rounds == 2).all()
  assert full.phases == ["pretrain"] * 2 + ["wake1", "wake2"] + ["calibrate"] * 2
  assert np.isfinite(full.losses).all()
  # m = 1 leaves w unchanged: ‖Δw‖ = 0 < η at the first sleep, so no wake phase at all.
  assert still.deltas.shape == (1, 2) and (still.deltas == 0).all()
  assert (still.wake_rounds == 0).all()
  assert still.phases == ["pretrain"] * 2 + ["calibrate"] * 2
  # Both seeds share the pre-training programme of `full` bit for bit.
  for r in (full, still):
    assert r.losses.shape == (2, len(r.phases))
  np.testing.assert_array_equal(still.losses[:, :2], full.losses[:, :2])


def test_a_stopped_seed_keeps_its_state():
  # A seed whose ‖Δw‖ fell below η keeps φ^(t) while the others wake (Algorithm 1, line 7).
  old = {"a_SxK": jnp.zeros((3, 2)), "b_S": jnp.zeros((3,))}
  new = {"a_SxK": jnp.ones((3, 2)), "b_S": jnp.ones((3,))}
  kept = idw.keep_stopped(new, old, np.array([True, False, True]))
  np.testing.assert_array_equal(kept["a_SxK"], [[1, 1], [0, 0], [1, 1]])
  np.testing.assert_array_equal(kept["b_S"], [1, 0, 1])


def test_calibration_freezes_the_item_tower(runs, mur_idw):
  full = runs["full"]
  params = full.params["model"]["params"]
  jax.tree.map(np.testing.assert_array_equal, full.phi_star,
               jax.tree.map(np.asarray, params["item_tower"]))
  # ... while the user tower trained: its parameters differ from the run that stopped
  # (whose user tower saw pre-training and calibration only).
  user = lambda r: jax.tree.leaves(r.params["model"]["params"]["user_tower"])
  assert any((np.asarray(a) != np.asarray(b)).any() for a, b in zip(user(full), user(runs["still"])))
  np.testing.assert_allclose(np.asarray(full.params["w_I"]).sum(1), 1.0, rtol=1e-5)
  np.testing.assert_array_equal(np.asarray(full.params["phase"]), idw.CALIBRATE)


def test_wake_loss_with_equal_weights_is_the_unweighted_loss(seq_data, mur_idw):
  data = seq_data.device_arrays()
  params = mur_idw.init(jax.random.PRNGKey(0), data)
  batch_B = jnp.arange(64)
  seen_I = data["item_counts"] > 0
  uniform_I = jnp.where(seen_I, 1.0 / jnp.sum(seen_I), 0.0)
  eq10 = dataclasses.replace(mur_idw, weighting="eq10")

  base = mur_idw.base
  unit = dataclasses.replace(base, item_norm="train")

  def unit_items_loss(params):  # Item Norm by hand: the backbone's loss on unit item vectors
    row_B, pos_B = data["train_row_E"][batch_B], data["train_pos_E"][batch_B]
    inputs_BxW, mask_BxW = example_inputs(data["items_SxL"], row_B, pos_B)
    target_B = data["items_SxL"][row_B, pos_B]
    user_BxMxD, item_BxD = base.apply(params, inputs_BxW, mask_BxW, target_B)
    item_BxD = item_BxD / jnp.linalg.norm(item_BxD, axis=1, keepdims=True)
    logits_BxB = sequential.in_batch_logits(user_BxMxD, item_BxD, target_B,
                                            sampler_log_q("natural", data))
    return losses.softmax_cross_entropy(logits_BxB, jnp.arange(64))

  @jax.jit
  def all_losses(params):
    plain = base.loss(params["model"], batch_B, data, None, 0)[0]
    at = lambda m, w, phase=idw.WAKE: m.loss({**params, "w_I": w, "phase": jnp.float32(phase)},
                                              batch_B, data, None, 0)[0]
    return (plain, at(eq10, uniform_I), at(eq10, 3.0 * uniform_I), at(mur_idw, params["w_I"]),
            at(mur_idw, 5.0 * uniform_I, idw.CALIBRATE),
            unit.loss(params["model"], batch_B, data, None, 0)[0],
            unit_items_loss(params["model"]))

  plain, eq10_uniform, eq10_triple, mass_w0, calib, unit, unit_want = map(
      float, all_losses(params))
  np.testing.assert_allclose(eq10_uniform, plain, rtol=1e-6)  # Eq. 10, equal weights
  np.testing.assert_allclose(eq10_triple, 3.0 * plain, rtol=1e-6)  # up to the constant
  np.testing.assert_allclose(mass_w0, plain, rtol=1e-6)  # "mass" at w^(0) = frequencies
  assert calib == plain  # calibration (and pre-training) ignore the weights
  np.testing.assert_allclose(unit, unit_want, rtol=1e-6)  # Item Norm in training
  assert unit != plain


def _np_ce(logits, labels):
  logits = np.asarray(logits, np.float64)
  lse = np.log(np.exp(logits).sum(1))
  return lse - logits[np.arange(len(labels)), labels]


LOGITS = np.array([[2.0, 0.5, -1.0], [0.0, 1.0, 0.3], [1.5, -0.5, 0.2]], np.float32)
LABELS = np.array([0, 1, 2])
TARGETS = np.array([0, 1, 3])  # item ids of the three examples
COUNTS = np.array([16.0, 1.0, 0.0, 81.0])  # item 2 is never a target
HYPER = {"gamma": 2.0, "max_margin": 0.5}


def test_frequency_balance_against_hand_computed():
  # p = (16, 1, 0, 81) / 98 over I_seen = 3 items: w = 98 / (3 n).
  want_w = np.array([98 / 48, 98 / 3, 0.0, 98 / 243])
  np.testing.assert_allclose(np.asarray(losses.frequency_balance_weights(COUNTS)), want_w,
                             rtol=1e-6)
  got = sequential.frequency_balance_objective(LOGITS, LABELS, TARGETS, COUNTS, HYPER)
  want = np.mean(want_w[TARGETS] * _np_ce(LOGITS, LABELS))
  np.testing.assert_allclose(float(got), want, rtol=1e-6)


def test_focal_balance_against_hand_computed():
  ce = _np_ce(LOGITS, LABELS)
  p = np.exp(-ce)
  got = sequential.focal_objective(LOGITS, LABELS, TARGETS, COUNTS, HYPER)
  np.testing.assert_allclose(float(got), np.mean((1 - p) ** 2 * ce), rtol=1e-6)
  # γ = 0 is the plain cross-entropy.
  got0 = sequential.focal_objective(LOGITS, LABELS, TARGETS, COUNTS, {"gamma": 0.0})
  np.testing.assert_allclose(float(got0), ce.mean(), rtol=1e-6)


def test_qmargin_against_hand_computed():
  # δ_y = 0.5 · (n_y / n_min)^(−1/4), n_min = 1: δ = (0.25, 0.5, ., 0.5/3).
  margins = np.asarray(losses.ldam_margins(COUNTS, 0.5))
  np.testing.assert_allclose(margins[[0, 1, 3]], [0.25, 0.5, 0.5 / 3], rtol=1e-6)
  shifted = LOGITS.astype(np.float64).copy()
  shifted[[0, 1, 2], LABELS] -= [0.25, 0.5, 0.5 / 3]  # the target's logit only
  got = sequential.qmargin_objective(LOGITS, LABELS, TARGETS, COUNTS, HYPER)
  np.testing.assert_allclose(float(got), _np_ce(shifted, LABELS).mean(), rtol=1e-6)


def test_item_norm_and_tau_normalisation():
  items_3x2 = np.array([[3.0, 4.0], [0.0, 0.0], [0.6, 0.8]], np.float32)
  np.testing.assert_allclose(np.asarray(losses.tau_normalize(items_3x2, 1.0)),
                             [[0.6, 0.8], [0, 0], [0.6, 0.8]], rtol=1e-6)
  np.testing.assert_allclose(np.asarray(losses.tau_normalize(items_3x2, 0.5)),
                             [[3 / 5 ** 0.5, 4 / 5 ** 0.5], [0, 0], [0.6, 0.8]], rtol=1e-6)
  np.testing.assert_array_equal(np.asarray(losses.tau_normalize(items_3x2, 0.0)), items_3x2)


def test_post_hoc_normalisation_at_serving(runs, mur_idw):
  data = runs["data"]
  params = jax.tree.map(lambda x: x[0], runs["full"].params["model"])
  base = mur_idw.base
  post = dataclasses.replace(base, item_norm="post_hoc", tau=0.5)
  raw_IxD = np.asarray(base.model.apply(params, jnp.arange(base.num_items),
                                        method=base.model.items))
  norm_Ix1 = np.linalg.norm(raw_IxD, axis=1, keepdims=True)
  user_UxMxD, item_IxD = post.serve(params, data, "valid")
  assert user_UxMxD.shape == (data["items_SxL"].shape[0], 2, 8)
  np.testing.assert_allclose(np.asarray(item_IxD), raw_IxD / norm_Ix1 ** 0.5, rtol=1e-5)
