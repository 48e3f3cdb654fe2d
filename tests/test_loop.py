"""The training loop's program cache, traced hyper-parameters, frozen leaves and the
hash dropout."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax._src import dispatch, monitoring

from ltbench import methods, train as train_lib
from ltbench.data import synthetic
from ltbench.methods.baselines import ModelConfig
from ltbench.models.towers import Dropout, hash_bits
from ltbench.train import TrainConfig, train

TINY = synthetic.SyntheticConfig(num_users=150, num_items=80, mean_per_user=15.0, seed=3)
MODEL = ModelConfig(embed_dim=8, sizes=(16, 8), dropout=0.1)
CFG = TrainConfig(epochs=2, batch_size=64, learning_rate=3e-3, log_every=0)


@pytest.fixture(scope="module")
def bundle():
  return synthetic.generate(TINY)


class CompileCounter:
  """Counts jaxpr traces and backend compilations while active."""

  def __init__(self):
    self.traces = self.compiles = 0

  def __call__(self, event, duration, **kwargs):
    self.traces += event == dispatch.JAXPR_TRACE_EVENT
    self.compiles += event == dispatch.BACKEND_COMPILE_EVENT

  def __enter__(self):
    monitoring.register_event_duration_secs_listener(self)
    return self

  def __exit__(self, *exc):
    monitoring.unregister_event_duration_listener(self)


def fit(bundle, method_name, cfg=CFG, seeds=(0, 1), **options):
  method = methods.build(method_name, bundle, MODEL, cfg, **options)
  keys = jnp.stack([jax.random.PRNGKey(s) for s in seeds])
  return train(method, bundle.device_arrays(), bundle.num_train, keys, cfg, label=method_name)


@pytest.mark.parametrize("method,first,second,cfg_change", [
    ("cdn", {"gamma": 3.0}, {"gamma": 10.0}, {}),  # a γ sweep (Figure 4)
    ("cdn", {}, {}, {"epochs": 3}),  # another horizon T
    ("two_tower", {}, {}, {"learning_rate": 1e-2, "weight_decay": 1e-3}),  # a tuning grid
])
def test_rows_differing_only_in_numbers_share_one_program(bundle, method, first, second,
                                                          cfg_change):
  fit(bundle, method, **first)  # compiles
  cfg2 = dataclasses.replace(CFG, **cfg_change)
  with CompileCounter() as counter:
    cached = fit(bundle, method, cfg2, **second)
  assert counter.compiles == 0 and counter.traces == 0, (counter.compiles, counter.traces)
  # The numbers did take effect: a fresh program (empty cache) gives the same result.
  train_lib._EPOCH_FNS.clear()
  fresh = fit(bundle, method, cfg2, **second)
  np.testing.assert_array_equal(cached.losses, fresh.losses)
  baseline = fit(bundle, method, **first)
  if first != second or cfg_change.get("learning_rate"):
    assert not np.array_equal(baseline.losses[:, -1], cached.losses[:, -1])


@pytest.mark.parametrize("weight_decay", [0.0, 0.05])
def test_ndp_user_tower_stays_frozen_in_stage_2_under_l2(bundle, weight_decay):
  cfg = dataclasses.replace(CFG, epochs=4, weight_decay=weight_decay)
  method = methods.build("ndp", bundle, MODEL, cfg)  # switch at epoch 2
  keys = jnp.stack([jax.random.PRNGKey(0)])
  data = bundle.device_arrays()
  stage1 = train(method, data, bundle.num_train, keys, dataclasses.replace(cfg, epochs=2))
  both = train(method, data, bundle.num_train, keys, cfg)
  u1, u2 = (r.params["params"]["user_tower"] for r in (stage1, both))
  jax.tree.map(np.testing.assert_array_equal, u1, u2)
  i1, i2 = (r.params["params"]["item_tower"] for r in (stage1, both))
  assert not all(jax.tree.leaves(jax.tree.map(np.allclose, i1, i2)))


def test_hash_bits_are_uniform_and_seeded():
  a = np.asarray(hash_bits(jnp.uint32(1), (256, 512)), np.uint64)
  b = np.asarray(hash_bits(jnp.uint32(2), (256, 512)), np.uint64)
  np.testing.assert_array_equal(a, np.asarray(hash_bits(jnp.uint32(1), (256, 512)), np.uint64))
  assert (a != b).mean() > 0.999
  # Each of the 32 bits is set about half the time; a 10% threshold keeps about 90%.
  for bit in (0, 7, 16, 31):
    assert abs(((a >> bit) & 1).mean() - 0.5) < 0.01, bit
  assert abs((a >= 0.1 * 2 ** 32).mean() - 0.9) < 0.005
  # Neighbouring elements are not correlated.
  lo = (a < 2 ** 31).astype(float).ravel()
  assert abs(np.corrcoef(lo[:-1], lo[1:])[0, 1]) < 0.02


@pytest.mark.parametrize("rate", [0.0, 0.1, 0.5])
def test_dropout_keeps_1_minus_rate_and_rescales(rate):
  x = jnp.ones((512, 256))
  layer = Dropout(rate)
  y = np.asarray(layer.apply({}, x, False, rngs={"dropout": jax.random.PRNGKey(0)}))
  kept = y != 0
  assert abs(kept.mean() - (1 - rate)) < 0.01
  np.testing.assert_allclose(y[kept], 1.0 / (1.0 - rate), rtol=1e-6)
  np.testing.assert_array_equal(layer.apply({}, x, True), x)  # deterministic = identity
  y2 = layer.apply({}, x, False, rngs={"dropout": jax.random.PRNGKey(1)})
  if rate:
    assert (np.asarray(y2) != y).mean() > 0.05


@pytest.mark.parametrize("learning_rate", [1e-1, 1e-4])
def test_opt_init_sets_the_step_size_adam_uses(learning_rate):
  params_S = {"w": jnp.ones((2, 3, 4))}
  opt_S = train_lib.opt_init(train_lib.ADAM, params_S, learning_rate)
  opt = jax.tree.map(lambda x: x[0], opt_S)
  grads = {"w": jnp.ones((3, 4))}
  updates, _ = train_lib.ADAM.update(grads, opt, {"w": jnp.ones((3, 4))})
  # Adam's first step moves every weight by -lr (bias-corrected m/sqrt(v) = 1).
  np.testing.assert_allclose(updates["w"], -learning_rate, rtol=1e-4)
