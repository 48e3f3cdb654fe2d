"""IDW's method (methods/idw.py: sleep, wake, calibration, driver) and the Table 1 baseline
losses (losses.py, methods/sequential.py). Kept small for CI: one tiny data set and model,
one IDW epoch program (every phase) and one sleep program, reused by the tests; each other
group of checks is one jitted call."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ltbench import losses, methods, train
from ltbench.data import registry
from ltbench.methods import idw, sequential

# No self-attention layer (parametric attention over the embeddings): the smallest program.
TINY = sequential.SeqModelConfig(dim=8, num_layers=0, num_heads=2, item_sizes=(8, 8))
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

  @jax.jit
  def sleeps():
    w1, delta = idw.sleep_weights(items_18x2, w0_18, target_18, 0.5)
    # Oracle: Algorithm 2 spelled out over the target items with the public pieces.
    density = idw.kde_density(items_18x2, items_18x2, w0_18)[:16]
    return w1, delta, idw.update_weights(w0_18[:16], density, 0.5)

  w1, delta, want = map(np.asarray, sleeps())
  np.testing.assert_allclose(w1.sum(), 1.0, rtol=1e-6)
  assert (w1[16:] == 0).all()
  assert w1[12:16].min() > 1 / 16 > w1[:12].max()  # towards the low-density items
  np.testing.assert_allclose(w1[:16], want, rtol=1e-5, atol=1e-8)
  np.testing.assert_allclose(float(delta), np.abs(w1 - w0_18).max(), rtol=1e-6)


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
  # Pre-training is the same in both runs, bit for bit.
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


def test_wake_loss_with_equal_weights_is_the_unweighted_loss(runs, mur_idw):
  # Through the compiled epoch program (one step per epoch; the epoch's loss is the loss of
  # its batch before the step): same batch, different phase and weights.
  data, params = runs["data"], runs["full"].params
  epoch_fn = train.make_epoch_fn(mur_idw, train.ADAM, 1, CFG.batch_size)  # cached
  hyper = train.hyper_values(mur_idw, 0.0)
  w0_SxI = jnp.broadcast_to(idw.initial_weights(data["item_counts"]), params["w_I"].shape)

  def loss(phase, w_SxI):
    p = jax.tree.map(jnp.copy, {**params, "w_I": w_SxI})  # copies: the epoch donates them
    p["phase"] = jnp.full((2,), phase, jnp.float32)
    state = train.TrainState(p, idw._adam_init(p, jnp.float32(0.01)))
    return np.asarray(epoch_fn(state, KEYS, data, jnp.int32(0), hyper)[1])

  plain = loss(idw.PRETRAIN, params["w_I"])
  np.testing.assert_allclose(loss(idw.WAKE, w0_SxI), plain, rtol=1e-6)  # w^(0): unweighted
  np.testing.assert_allclose(loss(idw.WAKE, 3.0 * w0_SxI), 3.0 * plain, rtol=1e-6)  # constant
  np.testing.assert_array_equal(loss(idw.CALIBRATE, 5.0 * w0_SxI), plain)  # ignores w
  assert not np.allclose(loss(idw.WAKE, params["w_I"]), plain)  # the sleep's w do weigh
  # Eq. 10 as printed ("eq10"): equal weights over the targets give every example weight 1,
  # i.e. the unweighted loss; "mass" gives frequency balance (Eq. 5) there.
  counts_I = data["item_counts"]
  seen_I = np.asarray(counts_I) > 0
  uniform_I = jnp.where(seen_I, 1.0 / seen_I.sum(), 0.0)
  ones = np.asarray(idw.example_weights(uniform_I, counts_I, "eq10"))
  np.testing.assert_allclose(ones[seen_I], 1.0, rtol=1e-6)
  np.testing.assert_allclose(np.asarray(idw.example_weights(uniform_I, counts_I, "mass")),
                             np.asarray(losses.frequency_balance_weights(counts_I)), rtol=1e-5)


def _np_ce(logits, labels):
  logits = np.asarray(logits, np.float64)
  lse = np.log(np.exp(logits).sum(1))
  return lse - logits[np.arange(len(labels)), labels]


LOGITS = np.array([[2.0, 0.5, -1.0], [0.0, 1.0, 0.3], [1.5, -0.5, 0.2]], np.float32)
LABELS = np.array([0, 1, 2])
TARGETS = np.array([0, 1, 3])  # item ids of the three examples
COUNTS = np.array([16.0, 1.0, 0.0, 81.0])  # item 2 is never a target
ITEMS_3x2 = np.array([[3.0, 4.0], [0.0, 0.0], [0.6, 0.8]], np.float32)
HYPER = {"gamma": 2.0, "max_margin": 0.5}


@pytest.fixture(scope="module")
def baseline_values():
  """Every baseline quantity of the tiny case from one jitted program (eager ops would
  compile one by one)."""
  @jax.jit
  def values():
    args = (LOGITS, LABELS, TARGETS, COUNTS)
    return {"freq_w": losses.frequency_balance_weights(COUNTS),
            "freq": sequential.frequency_balance_objective(*args, HYPER),
            "focal": sequential.focal_objective(*args, HYPER),
            "focal0": sequential.focal_objective(*args, {"gamma": 0.0}),
            "margins": losses.ldam_margins(COUNTS, 0.5),
            "qmargin": sequential.qmargin_objective(*args, HYPER),
            "tau": [losses.tau_normalize(ITEMS_3x2, t) for t in (1.0, 0.5, 0.0)]}
  return jax.tree.map(np.asarray, values())


def test_frequency_balance_against_hand_computed(baseline_values):
  # p = (16, 1, 0, 81) / 98 over I_seen = 3 items: w = 98 / (3 n).
  want_w = np.array([98 / 48, 98 / 3, 0.0, 98 / 243])
  np.testing.assert_allclose(baseline_values["freq_w"], want_w, rtol=1e-6)
  want = np.mean(want_w[TARGETS] * _np_ce(LOGITS, LABELS))
  np.testing.assert_allclose(baseline_values["freq"], want, rtol=1e-6)


def test_focal_balance_against_hand_computed(baseline_values):
  ce = _np_ce(LOGITS, LABELS)
  p = np.exp(-ce)
  np.testing.assert_allclose(baseline_values["focal"], np.mean((1 - p) ** 2 * ce), rtol=1e-6)
  np.testing.assert_allclose(baseline_values["focal0"], ce.mean(), rtol=1e-6)  # γ = 0: CE


def test_qmargin_against_hand_computed(baseline_values):
  # δ_y = 0.5 · (n_y / n_min)^(−1/4), n_min = 1: δ = (0.25, 0.5, ., 0.5/3).
  np.testing.assert_allclose(baseline_values["margins"][[0, 1, 3]], [0.25, 0.5, 0.5 / 3],
                             rtol=1e-6)
  shifted = LOGITS.astype(np.float64).copy()
  shifted[[0, 1, 2], LABELS] -= [0.25, 0.5, 0.5 / 3]  # the target's logit only
  np.testing.assert_allclose(baseline_values["qmargin"], _np_ce(shifted, LABELS).mean(),
                             rtol=1e-6)


def test_tau_normalisation(baseline_values):
  unit, half, same = baseline_values["tau"]
  np.testing.assert_allclose(unit, [[0.6, 0.8], [0, 0], [0.6, 0.8]], rtol=1e-6)
  np.testing.assert_allclose(half, [[3 / 5 ** 0.5, 4 / 5 ** 0.5], [0, 0], [0.6, 0.8]], rtol=1e-6)
  np.testing.assert_array_equal(same, ITEMS_3x2)


@pytest.fixture(scope="module")
def item_norm_values(runs, mur_idw):
  """Item Norm and post-hoc τ-normalisation on the trained seed 0, one jitted call: the
  served item vectors of MUR, post-hoc τ = 0.5 and Item Norm, and Item Norm's training loss
  with the item tower's output layer as trained and scaled by 7."""
  data = runs["data"]
  params = jax.tree.map(lambda x: x[0], runs["full"].params["model"])
  base = mur_idw.base
  last = f"dense_{len(TINY.item_sizes) - 1}"
  tower = params["params"]["item_tower"]
  scaled = {"params": {**params["params"], "item_tower": {
      **tower, last: jax.tree.map(lambda x: 7.0 * x, tower[last])}}}
  unit = dataclasses.replace(base, item_norm="train")

  @jax.jit
  def values(params, scaled):
    served = [dataclasses.replace(base, item_norm=norm, tau=tau).serve_items(params)
              for norm, tau in (("none", 1.0), ("post_hoc", 0.5), ("train", 1.0))]
    unit_loss = [unit.loss(p, jnp.arange(64), data, None, 0)[0] for p in (params, scaled)]
    return served, unit_loss

  return jax.tree.map(np.asarray, values(params, scaled))


def test_item_norm_trains_on_unit_item_vectors(item_norm_values):
  # Item Norm's loss sees only the directions of the item vectors: scaling the item tower's
  # output layer by 7 leaves it unchanged (the backbone's logits would grow 7-fold).
  as_trained, scaled = item_norm_values[1]
  np.testing.assert_allclose(scaled, as_trained, rtol=1e-5)


def test_post_hoc_normalisation_at_serving(item_norm_values):
  raw_IxD, post_IxD, unit_IxD = item_norm_values[0]
  norm_Ix1 = np.linalg.norm(raw_IxD, axis=1, keepdims=True)
  np.testing.assert_allclose(post_IxD, raw_IxD / norm_Ix1 ** 0.5, rtol=1e-5)
  np.testing.assert_allclose(unit_IxD, raw_IxD / norm_Ix1, rtol=1e-5)  # Item Norm serves units
