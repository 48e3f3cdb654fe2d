"""SML's sequence rows (GRU4Rec, Caser): shapes, parameter counts, no future items in the
inputs of a tested period, training lowers the loss, and the seed-vmapped pass equals a
loop over seeds. Small configs: each compiled pass costs ~10 s on a busy 2-core CPU."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ltbench.data.periods import synthetic_stream
from ltbench.data.sequences import PAD, csr_windows
from ltbench.methods import sml, sml_seq
from ltbench.models.seqrec import Caser, GRU4Rec

SMALL = {"dim": 8, "batch": 128}


@pytest.fixture(scope="module")
def stream():
  return synthetic_stream()


def test_shapes_and_param_counts(stream):
  U, I, d = stream.num_users, stream.num_items, 8
  inputs = jnp.array([[PAD, PAD, 3, 4, 5], [1, 2, 3, 4, 5]])
  mask = inputs != PAD
  user, items = jnp.array([0, 7]), jnp.arange(6)
  gru = GRU4Rec(I, d)
  params = jax.jit(gru.init)(jax.random.PRNGKey(0), inputs, mask, user, items)
  apply = jax.jit(gru.apply)  # one compile for the three calls below (eager scans are slow)
  u, v = apply(params, inputs, mask, user, items)
  assert u.shape == (2, d) and v.shape == (6, d)
  # Embeddings I·d; GRU: input and hidden kernels of 3 gates (6·d·d), flax's GRUCell
  # biases on the 3 input maps and on the candidate's hidden map (4·d).
  n_gru = sum(x.size for x in jax.tree.leaves(params))
  assert n_gru == I * d + 6 * d * d + 4 * d
  cfg = sml.make_config("gru4rec", SMALL)
  assert sml.param_counts("gru4rec", cfg, stream) == {"total": n_gru}
  # Empty history: h = 0; padded slots do not change h (other ids, same vector).
  empty = jnp.full((1, 5), PAD)
  np.testing.assert_array_equal(
      apply(params, jnp.concatenate([empty, inputs[1:]]), jnp.concatenate([empty, inputs[1:]])
            != PAD, user, items)[0][0], 0)
  swapped = inputs.at[0, :2].set(9)
  np.testing.assert_allclose(apply(params, swapped, mask, user, items)[0], u, rtol=1e-6)

  # Caser: shapes only (traced, not compiled: its programs take ~20 s to compile here).
  caser = Caser(U, I, d, window=5, n_v=4, n_h=16)
  params = jax.eval_shape(caser.init, jax.random.PRNGKey(0), inputs, mask, user, items)
  u, v = jax.eval_shape(caser.apply, params, inputs, mask, user, items)
  assert u.shape == (2, 2 * d + 1) and v.shape == (6, 2 * d + 1)  # [z; P_u; 1], [W'_i; b'_i]
  conv = sum(h * d * 16 + 16 for h in range(1, 6))
  fc = (4 * d + 5 * 16) * d + d
  expected = I * d + U * d + I * 2 * d + I + 4 * 5 + conv + fc
  assert sum(np.prod(x.shape) for x in jax.tree.leaves(params)) == expected
  assert sml.param_counts("caser", sml.make_config("caser", SMALL), stream) == {
      "total": expected}
  with pytest.raises(ValueError, match="L=5"):
    jax.eval_shape(caser.apply, params, inputs[:, 1:], mask[:, 1:], user, items)


def test_no_future_items_in_test_inputs(stream):
  hist = sml_seq.stream_histories(stream)
  width = 6
  for t in stream.test_periods:
    inputs_UxW, mask_UxW = map(np.asarray, sml_seq.test_windows(hist, stream, t, width))
    before_u, before_i = stream.upto(t - 1)
    for u in range(stream.num_users):
      mine = before_i[before_u == u]  # the user's items of D_0..D_{t-1}, in time order
      expected = mine[-width:]
      got = inputs_UxW[u][mask_UxW[u]]
      np.testing.assert_array_equal(got, expected)
      assert (inputs_UxW[u][~mask_UxW[u]] == PAD).all()
  # Training examples: the input of interaction n is its user's items strictly before n.
  items, user, start, stop = hist.device(stream.user_N)
  n = np.arange(0, stream.user_N.size, 37)
  inputs, mask = map(np.asarray, csr_windows(items, start[n], stop[n], width))
  for row, k in enumerate(n):
    earlier = stream.item_N[:k][stream.user_N[:k] == stream.user_N[k]]
    np.testing.assert_array_equal(inputs[row][mask[row]], earlier[-width:])


def _period_data(stream, cfg, t, num_seeds):
  stop = int(stream.period_start_P1[t + 1])
  return sml.padded(*sml.seeded((np.arange(stop, dtype=np.int32), stream.item_N[:stop]),
                                num_seeds), cfg.batch)


def _passes(stream, cfg, keys_S, epochs):
  hist = sml_seq.stream_histories(stream)
  shared = hist.device(stream.user_N)
  params = sml_seq.init_params(keys_S, stream.num_users, stream.num_items, cfg)
  opt = jax.vmap(sml_seq._optimizer(cfg).init)(params)
  data = _period_data(stream, cfg, 2, keys_S.shape[0])
  one_pass = sml_seq.seq_pass_fn(cfg, stream.num_users, stream.num_items)
  losses = []
  for e in range(epochs):
    keys = jax.vmap(lambda k: jax.random.fold_in(k, e))(keys_S)
    params, opt, loss = one_pass(params, opt, keys, *data, *shared)
    losses.append(np.asarray(loss))
  return params, np.stack(losses, 1)


@pytest.mark.parametrize("method", ["gru4rec", "caser"])
def test_training_lowers_the_loss(stream, method):
  cfg = sml.make_config(method, {**SMALL, "lr": 1e-2, "window": 5})
  _, loss_SxE = _passes(stream, cfg, jnp.stack([jax.random.PRNGKey(0)]), 8)
  assert np.isfinite(loss_SxE).all()
  assert loss_SxE[0, -1] < loss_SxE[0, 0] - 0.1, loss_SxE


def test_vmapped_pass_equals_a_loop_over_seeds(stream):
  # GRU4Rec (its one-seed pass is the one compiled above); Caser's pass is the same code.
  cfg = sml.make_config("gru4rec", {**SMALL, "lr": 1e-2, "window": 5})
  keys = jnp.stack([jax.random.PRNGKey(3), jax.random.PRNGKey(4)])
  both, loss_both = _passes(stream, cfg, keys, 1)
  for s in range(2):
    one, loss_one = _passes(stream, cfg, keys[s:s + 1], 1)
    np.testing.assert_allclose(loss_both[s], loss_one[0], rtol=1e-5)
    for a, b in zip(jax.tree.leaves(both), jax.tree.leaves(one)):
      np.testing.assert_allclose(a[s], b[0], rtol=1e-4, atol=1e-6)


def test_bad_options_are_clear():
  with pytest.raises(ValueError, match="unknown options"):
    sml.make_config("caser", {"mf_lr": 0.1})
  with pytest.raises(ValueError, match="dropout"):
    sml.make_config("gru4rec", {"dropout": 1.0})
  assert sml.make_config("caser", {}).window == 5
  assert sml.make_config("gru4rec", {}).window == 20
  assert dataclasses.asdict(sml.make_config("caser", {}))["dropout"] == 0.5
