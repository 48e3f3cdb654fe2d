"""The IDW sequential two-tower (models/sequential.py) and SUR/MUR (methods/sequential.py)."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ltbench import evaluate, losses, methods, train
from ltbench.data import registry
from ltbench.data.sequences import PAD, example_inputs
from ltbench.methods import sequential
from ltbench.methods.baselines import sampler_log_q
from ltbench.models.sequential import max_over_m, max_over_m_reference

TINY = sequential.SeqModelConfig(dim=8, num_layers=1, num_heads=2, item_sizes=(8, 8))


@pytest.fixture(scope="module")
def seq_data():
  # 300 users × 20 items over 50 items; 20 negatives (a user never sees more than 20 items).
  return registry.load_sequences("idw-synthetic", {"num_users": 300}, {"num_negatives": 20})


def test_build_sur_and_mur(seq_data):
  sur = methods.build("sur", seq_data, None, train.TrainConfig())
  mur = methods.build("mur", seq_data, TINY, train.TrainConfig(), temperature=0.5)
  assert sur.model_cfg == sequential.SeqModelConfig(num_interests=1)
  assert mur.model_cfg == dataclasses.replace(TINY, num_interests=5)
  assert mur.temperature == 0.5 and mur.num_items == 50


def test_param_count_at_paper_size(seq_data):
  m = methods.build("mur", seq_data, None, train.TrainConfig())
  params = jax.eval_shape(m.init, jax.random.PRNGKey(0), seq_data.device_arrays())
  d, items, heads, interests = 16, 50, 4, 5
  item_tower = items * d + 2 * (d * d + d)
  attention = 3 * d * heads * d + 2 * heads * d + (heads * d * d + d)  # q, k, v (no bias), out
  user_tower = items * d + (d * d + d) + 2 * attention + (interests * d + 1)
  assert sum(x.size for x in jax.tree.leaves(params)) == item_tower + user_tower


def test_max_over_m_scores():
  rng = np.random.default_rng(0)
  user_BxMxD = rng.normal(size=(4, 3, 5)).astype(np.float32)
  item_CxD = rng.normal(size=(6, 5)).astype(np.float32)
  want = np.array([[max(user_BxMxD[b, m] @ item_CxD[c] for m in range(3)) for c in range(6)]
                   for b in range(4)])
  np.testing.assert_allclose(np.asarray(max_over_m(user_BxMxD, item_CxD)), want, rtol=1e-5,
                             atol=1e-6)
  # M = 1 is the plain dot product (SUR).
  np.testing.assert_allclose(np.asarray(max_over_m(user_BxMxD[:, :1], item_CxD)),
                             user_BxMxD[:, 0] @ item_CxD.T, rtol=1e-6)


@pytest.mark.parametrize("num_m", [1, 3])
def test_max_over_m_gradients_match_autodiff_of_the_einsum_form(num_m):
  rng = np.random.default_rng(2)
  user_BxMxD = rng.normal(size=(6, num_m, 4)).astype(np.float32)
  user_BxMxD[0, 1 % num_m] = user_BxMxD[0, 0]  # an exact tie: the gradient is split evenly
  item_CxD = rng.normal(size=(5, 4)).astype(np.float32)
  w_BxC = jnp.asarray(rng.normal(size=(6, 5)).astype(np.float32))

  def objective(fn):
    return lambda u, v: jnp.sum(jnp.tanh(fn(u, v)) * w_BxC)

  got = jax.grad(objective(max_over_m), (0, 1))(user_BxMxD, item_CxD)
  want = jax.grad(objective(max_over_m_reference), (0, 1))(user_BxMxD, item_CxD)
  for g, w in zip(got, want):
    np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-5, atol=1e-6)
  if num_m > 1:  # the tied row's two vectors got the same half
    np.testing.assert_allclose(np.asarray(got[0][0, 0]), np.asarray(got[0][0, 1]), rtol=1e-6)
  # Under vmap over seeds (the training step's layout) as well.
  batched = jax.vmap(jax.grad(objective(max_over_m), (0, 1)))(
      np.stack([user_BxMxD, -user_BxMxD]), np.stack([item_CxD, item_CxD]))
  ref = jax.vmap(jax.grad(objective(max_over_m_reference), (0, 1)))(
      np.stack([user_BxMxD, -user_BxMxD]), np.stack([item_CxD, item_CxD]))
  for g, w in zip(batched, ref):
    np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-5, atol=1e-6)


def test_rank_sampled_max_over_m_against_numpy():
  rng = np.random.default_rng(1)
  S, U, M, D, I, N = 2, 7, 3, 4, 12, 5
  user = rng.normal(size=(S, U, M, D)).astype(np.float32)
  item = rng.normal(size=(S, I, D)).astype(np.float32)
  item[:, 11] = item[:, 10]  # a tie with the target for examples whose target is 10
  target = rng.integers(0, 10, U)
  target[0] = 10
  negatives = np.stack([rng.choice(np.setdiff1d(np.arange(I), [t]), N, replace=False)
                        for t in target])
  negatives[0, 0] = 11
  ranks, ties = evaluate.rank_sampled(user, item, target, negatives, chunk_size=3,
                                      with_ties=True)
  score = np.einsum("sumd,sid->sumi", user, item).max(2)
  t_score = np.take_along_axis(score, np.broadcast_to(target[None, :, None], (S, U, 1)), 2)
  n_score = score[:, np.arange(U)[:, None], negatives]
  np.testing.assert_array_equal(ranks, (n_score > t_score).sum(-1))
  np.testing.assert_array_equal(ties, (n_score == t_score).sum(-1))
  assert ties[:, 0].min() >= 1
  # M = 1 (4-D) ranks exactly like the 3-D users.
  one = evaluate.rank_sampled(user[:, :, :1], item, target, negatives, with_ties=True)
  three_d = evaluate.rank_sampled(user[:, :, 0], item, target, negatives, with_ties=True)
  np.testing.assert_array_equal(one[0], three_d[0])
  np.testing.assert_array_equal(one[1], three_d[1])


MUR2 = dataclasses.replace(TINY, num_interests=2, dropout=0.1)
# One step per "epoch" (train.train is told the data holds one batch; each epoch draws a
# fresh one), so epoch 1 is exactly one step and a single compiled program serves both the
# training run and the one-step vmap check.
TRAIN = train.TrainConfig(epochs=60, batch_size=256, learning_rate=0.01, log_every=0)


@pytest.fixture(scope="module")
def trained(seq_data):
  """Two seeds of a tiny MUR trained as one vmapped program; the initial state and the
  parameters after the first step kept (host copies: the loop donates its state)."""
  m = methods.build("mur", seq_data, MUR2, TRAIN, num_interests=2)
  data = seq_data.device_arrays()
  keys_S = jax.vmap(jax.random.PRNGKey)(jnp.asarray([3, 7]))
  # train.init_state vmaps the init, whose threefry-heavy program compiles slowly; the
  # jitted single-seed init, stacked, gives the same parameters for a third of the time.
  params_S = jax.tree.map(lambda *x: jnp.stack(x), *(m.init(k, data) for k in keys_S))
  state0 = train.TrainState(params_S, train.opt_init(train.ADAM, params_S, TRAIN.learning_rate))
  kept = {"init": jax.tree.map(np.array, state0)}

  def on_epoch(epoch, state, loss_S):
    if epoch == 0:
      kept["epoch1"] = jax.tree.map(np.array, state.params)

  result = train.train(m, data, TRAIN.batch_size, keys_S, TRAIN, label="mur",
                       on_epoch=on_epoch, state=state0)
  return m, data, result, kept


def test_training_lowers_the_loss(trained):
  _, _, result, _ = trained
  assert not result.failed
  first, last = result.losses[:, :5].mean(1), result.losses[:, -5:].mean(1)
  assert (last < first - 0.1).all(), result.losses


def test_seed_vmapped_step_equals_a_loop_of_seeds(trained):
  m, data, _, kept = trained
  epoch_fn = train.make_epoch_fn(m, train.ADAM, 1, TRAIN.batch_size)
  for s, seed in enumerate([3, 7]):
    state_1 = jax.tree.map(lambda x: jnp.asarray(x[s:s + 1]), kept["init"])
    state_1, _ = epoch_fn(state_1, jax.random.PRNGKey(seed)[None], data, jnp.int32(0),
                          train.hyper_values(m, 0.0))
    # Not bitwise (batched and unbatched matmuls may round differently); after one step the
    # two agree to float32 rounding, while a wrong key or batch moves parameters by ~lr.
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a[s], np.asarray(b[0]), rtol=1e-5,
                                                         atol=1e-6),
                 kept["epoch1"], state_1.params)


def _seed0(params_SxP):
  return jax.tree.map(lambda x: jnp.asarray(x[0]), params_SxP)


def test_padded_slots_do_not_change_user_vectors(trained):
  m, data, result, _ = trained
  params, model = _seed0(result.params), m.model
  row_B = jnp.arange(8)
  pos_B = jnp.asarray([1, 2, 3, 5, 8, 13, 17, 18], jnp.int32)  # mostly padding
  inputs_BxW, mask_BxW = example_inputs(data["items_SxL"], row_B, pos_B)
  junk_BxW = jax.random.randint(jax.random.PRNGKey(1), inputs_BxW.shape, 0, 50)
  swapped_BxW = jnp.where(mask_BxW, inputs_BxW, junk_BxW)
  users = jax.jit(lambda x, mask: model.apply(params, x, mask, method=model.users))
  user, user_swapped = users(inputs_BxW, mask_BxW), users(swapped_BxW, mask_BxW)
  assert bool((inputs_BxW[~mask_BxW] == PAD).all())
  np.testing.assert_array_equal(np.asarray(user), np.asarray(user_swapped))
  assert user.shape == (8, 2, 8)
  # The unpadded slots do matter.
  changed = users(jnp.where(mask_BxW, (inputs_BxW + 1) % 50, PAD), mask_BxW)
  assert not np.allclose(np.asarray(changed), np.asarray(user))


def test_m1_loss_is_the_sur_in_batch_logq_loss(trained):
  _, data, result, _ = trained
  m = sequential.SequentialTwoTower("sur", 50, dataclasses.replace(MUR2, num_interests=1))
  # A SUR model's parameters: the trained MUR's with its first query only.
  params = _seed0(result.params)
  parametric = params["params"]["user_tower"]["parametric"]
  parametric = {**parametric, "queries": parametric["queries"][:1]}
  params["params"]["user_tower"] = {**params["params"]["user_tower"], "parametric": parametric}

  @jax.jit
  def both(params, idx_B):
    loss, _ = m.loss(params, idx_B, data, None, 0)
    row_B, pos_B = data["train_row_E"][idx_B], data["train_pos_E"][idx_B]
    target_B = data["items_SxL"][row_B, pos_B]
    user_BxMxD, item_BxD = m.apply(params, *example_inputs(data["items_SxL"], row_B, pos_B),
                                   target_B)
    sur = losses.in_batch_softmax_logq(user_BxMxD[:, 0], item_BxD,
                                       sampler_log_q("natural", data)[target_B], target_B)
    return loss, sur, user_BxMxD.shape

  loss, want, shape = both(params, jnp.arange(32))
  assert shape == (32, 1, 8)
  np.testing.assert_allclose(float(loss), float(want), rtol=1e-6)


def test_serving_shapes_and_ranking(trained, seq_data):
  m, data, result, _ = trained
  serve = jax.jit(jax.vmap(m.serve, in_axes=(0, None, None)), static_argnums=2)
  user_SxUxMxD, item_SxIxD = serve(result.params, data, "test")
  num_seq = seq_data.num_sequences
  assert user_SxUxMxD.shape == (2, num_seq, 2, 8) and item_SxIxD.shape == (2, 50, 8)
  valid_SxUxMxD, _ = serve(result.params, data, "valid")
  assert valid_SxUxMxD.shape == user_SxUxMxD.shape
  assert not np.allclose(np.asarray(valid_SxUxMxD), np.asarray(user_SxUxMxD))
  ranks, ties = sequential.rank_eval(user_SxUxMxD, item_SxIxD, seq_data, "test")
  assert ranks.shape == ties.shape == (2, num_seq)
  assert ranks.min() >= 0 and ranks.max() <= 20
  hr5 = evaluate.metrics_from_ranks(ranks, [5], seq_data.slices("test"), ties)[("overall", "HR@5")]
  assert (hr5 > 100 * 5 / 21 + 10).all(), hr5  # chance: 5 of 21 candidates
  # Full ranking (no stored negatives): every other item is a candidate.
  full = dataclasses.replace(seq_data, negatives_SxN=None)
  ranks_full, _ = sequential.rank_eval(user_SxUxMxD, item_SxIxD, full, "test")
  assert ranks_full.shape == (2, num_seq) and 0 <= ranks_full.min() and ranks_full.max() <= 49
