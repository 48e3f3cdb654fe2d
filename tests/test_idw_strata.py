"""Length-stratified training batches of the sequential two-tower (SeqModelConfig.length_strata):
the strata and their shares, the sampler's layout, and the loss equal to the full-window loss
of the same batch."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ltbench import methods, train
from ltbench.data import registry
from ltbench.methods import sequential

MODEL = sequential.SeqModelConfig(dim=8, num_layers=1, num_heads=2, item_sizes=(8, 8))
CFG = train.TrainConfig(batch_size=96, learning_rate=0.01, log_every=0)


@pytest.fixture(scope="module")
def seq_data():
  return registry.load_sequences("idw-synthetic", {"num_users": 200}, {"num_negatives": 20})


def test_strata_cover_every_example_once():
  pos_E = np.array([1, 1, 2, 3, 3, 3, 7, 9, 12, 29, 29])
  strata = sequential.length_strata(pos_E, 3, width=29)
  assert sum(size for _, size in strata) == pos_E.size
  highs = [high for high, _ in strata]
  assert highs == sorted(highs) and highs[-1] == 29
  assert sequential.length_strata(pos_E, 1, width=29) == ((29, pos_E.size),)
  # Repeated lengths give fewer strata, never an empty one.
  assert sequential.length_strata(np.array([4, 4, 4, 4]), 3, width=29) == ((4, 4),)


@pytest.mark.parametrize("sizes,batch", [((10, 10, 10), 96), ((1, 50, 7), 64), ((3,), 8)])
def test_stratum_counts_split_the_batch_in_proportion(sizes, batch):
  counts = sequential.stratum_counts(sizes, batch)
  assert sum(counts) == batch
  for size, count in zip(sizes, counts):
    assert abs(count - batch * size / sum(sizes)) < 1


def test_sampler_takes_each_strata_columns_from_that_stratum(seq_data):
  m = methods.build("sur", seq_data, dataclasses.replace(MODEL, length_strata=3), CFG)
  assert len(m.strata) == 3
  data = seq_data.device_arrays()
  num_steps = seq_data.train_row_E.size // CFG.batch_size
  idx_SxB = np.asarray(m.sample(jax.random.PRNGKey(0), data, 0, num_steps, CFG.batch_size))
  width = seq_data.items_SxL.shape[1] - 1
  length_E = np.minimum(seq_data.train_pos_E, width)
  counts = sequential.stratum_counts([size for _, size in m.strata], CFG.batch_size)
  start, low = 0, 0
  for (high, size), count in zip(m.strata, counts):
    cols = idx_SxB[:, start:start + count]
    assert ((length_E[cols] > low) & (length_E[cols] <= high)).all()
    if num_steps * count <= size:  # no stratum example twice in an epoch
      assert np.unique(cols).size == cols.size
    start, low = start + count, high


def test_stratified_loss_equals_the_full_window_loss(seq_data):
  plain = methods.build("mur", seq_data, MODEL, CFG, num_interests=2)
  strat = methods.build("mur", seq_data, dataclasses.replace(MODEL, length_strata=3), CFG,
                        num_interests=2)
  assert plain.strata == () and len(strat.strata) == 3
  data = seq_data.device_arrays()
  params = plain.init(jax.random.PRNGKey(0), data)
  batch_B = strat.sample(jax.random.PRNGKey(1), data, 0, 1, CFG.batch_size)[0]
  # Dropout is 0: the key only drives dropout, so both losses see the same function.
  loss_plain = jax.jit(lambda p: plain.loss(p, batch_B, data, jax.random.PRNGKey(2), 0)[0])
  loss_strat = jax.jit(lambda p: strat.loss(p, batch_B, data, jax.random.PRNGKey(2), 0)[0])
  assert float(loss_strat(params)) == pytest.approx(float(loss_plain(params)), rel=1e-5)
  g_plain, g_strat = jax.grad(loss_plain)(params), jax.grad(loss_strat)(params)
  for a, b in zip(jax.tree.leaves(g_plain), jax.tree.leaves(g_strat)):
    np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-4, atol=1e-6)
  # The shortest stratum really runs a shorter window than the data's.
  assert strat.strata[0][0] < seq_data.items_SxL.shape[1] - 1


def test_strata_refuse_positional_codes(seq_data):
  with pytest.raises(Exception, match="positional"):
    methods.build("sur", seq_data, dataclasses.replace(MODEL, length_strata=3, positional=True),
                  CFG)
