import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ltbench import methods
from ltbench.data import samplers, synthetic
from ltbench.errors import SpecError
from ltbench.methods.baselines import ModelConfig
from ltbench.methods.cdn import gamma_adapter
from ltbench.train import TrainConfig, train

TINY = synthetic.SyntheticConfig(num_users=150, num_items=80, mean_per_user=15.0, seed=2)
MODEL = ModelConfig(embed_dim=8, sizes=(16, 8), dropout=0.0)
CFG = TrainConfig(epochs=4, batch_size=64, learning_rate=3e-3, log_every=0)


@pytest.fixture(scope="module")
def bundle():
  return synthetic.generate(TINY)


def test_gamma_adapter_matches_eq6():
  T, gamma = 40, 5.0
  assert gamma_adapter(0, T, gamma) == 1.0
  np.testing.assert_allclose(gamma_adapter(T, T, gamma), 1 - 1 / gamma ** 2)
  np.testing.assert_allclose(gamma_adapter(10, T, 2.0), 1 - (10 / 80) ** 2)
  alphas = [gamma_adapter(t, T, gamma) for t in range(T)]
  assert all(a > b for a, b in zip(alphas, alphas[1:]))  # decays
  assert min(alphas) > 0.9  # γ = 5 keeps the focus on the main branch
  assert gamma_adapter(T, T, 1.0) == 0.0  # BBN's cumulative schedule ends at 0


def test_omega_r_counts_per_item_and_redraw(bundle):
  data = bundle.device_arrays()
  counts = bundle.item_counts
  cap = samplers.omega_r_cap(counts, bundle.head_mask)
  assert cap == counts[~bundle.head_mask].max()
  size = samplers.omega_r_size(counts, cap)
  idx_a = np.asarray(samplers.omega_r(jax.random.PRNGKey(0), data, cap, size))
  idx_b = np.asarray(samplers.omega_r(jax.random.PRNGKey(1), data, cap, size))
  for idx in (idx_a, idx_b):
    assert len(np.unique(idx)) == size  # no duplicates
    per_item = np.bincount(bundle.train_item[idx], minlength=bundle.num_items)
    np.testing.assert_array_equal(per_item, np.minimum(counts, cap))
  assert set(idx_a) != set(idx_b)  # head feedback is redrawn
  tail = ~bundle.head_mask[bundle.train_item]
  all_tail = set(np.flatnonzero(tail))
  assert all_tail <= set(idx_a) and all_tail <= set(idx_b)  # all tail feedback is kept


def test_class_sampler_draws_interactions_of_the_drawn_items(bundle):
  data = bundle.device_arrays()
  probs = samplers.class_balanced_probs(data["item_counts"])
  idx = np.asarray(samplers.class_sampler(jax.random.PRNGKey(0), data, probs, 200, 64)).ravel()
  items = bundle.train_item[idx]
  freq = np.bincount(items, minlength=bundle.num_items)[bundle.item_counts > 0]
  # item-uniform: every item with data drawn about 12800 / n_items times
  expected = idx.size / (bundle.item_counts > 0).sum()
  assert abs(freq.mean() - expected) < 1e-9 and freq.std() < 0.2 * expected
  rev = samplers.reversed_probs(data["item_counts"])
  np.testing.assert_allclose(np.asarray(rev).sum(), 1.0, rtol=1e-6)
  i, j = np.argmax(bundle.item_counts), np.argmin(np.where(bundle.item_counts > 0, bundle.item_counts, 10**9))
  np.testing.assert_allclose(rev[j] / rev[i], bundle.item_counts[i] / bundle.item_counts[j], rtol=1e-5)


@pytest.mark.parametrize("options", [{"design": "mem_gen"}, {"design": "mem_gen", "gate_input": "bucket"},
                                     {"design": "head_tail"}, {"n_mem": 2, "n_gen": 3}])
def test_gate_rows_sum_to_one(bundle, options):
  data = bundle.device_arrays()
  m = methods.build("cdn", bundle, MODEL, CFG, **options)
  gate = np.asarray(m.gate_values(m.init(jax.random.PRNGKey(0), data), data))
  assert gate.shape == (bundle.num_items, options.get("n_mem", 1) + options.get("n_gen", 1))
  np.testing.assert_allclose(gate.sum(1), 1.0, rtol=1e-5)
  assert (gate >= 0).all()
  if options.get("design") == "head_tail":
    np.testing.assert_array_equal(gate[:, 0], bundle.head_mask.astype(float))


def test_serving_ignores_the_regulariser_branch(bundle):
  data = bundle.device_arrays()
  for method, changes in (("cdn", False), ("bdn", True)):
    m = methods.build(method, bundle, MODEL, CFG)
    params = m.init(jax.random.PRNGKey(0), data)
    noisy = jax.tree_util.tree_map_with_path(
        lambda path, x: x + 1.0 if "h_r" in jax.tree_util.keystr(path) else x, params)
    u0, i0 = m.serve(params, data)
    u1, i1 = m.serve(noisy, data)
    scores0, scores1 = np.asarray(u0 @ i0.T), np.asarray(u1 @ i1.T)
    assert (not np.allclose(scores0, scores1)) == changes, method


# Variants that no quick spec run trains end to end. The others (CDN, UDN, IDN, BDN, BBN,
# the Table 5 designs, NDP, Figure 1's two-stage rows, and Two-tower / NDP / CDN with
# in-batch softmax) run in test_harness's and test_specs' quick runs (CI budget).
@pytest.mark.parametrize("method, options", [
    ("class_balance", {"softmax": "in_batch", "beta": 0.99}), ("logq", {"softmax": "in_batch", "weight": 1.0}),
    ("idn", {"softmax": "in_batch"}), ("bbn", {"softmax": "in_batch"}),
])
def test_every_variant_trains(bundle, method, options):
  data = bundle.device_arrays()
  cfg = dataclasses.replace(CFG, epochs=2)
  m = methods.build(method, bundle, MODEL, cfg, **options)
  result = train(m, data, bundle.num_train, jnp.stack([jax.random.PRNGKey(0)]), cfg, label=method)
  assert not result.failed and np.isfinite(result.losses).all()
  u, i = m.serve(jax.tree.map(lambda x: x[0], result.params), data)
  assert u.shape[0] == bundle.num_users and i.shape[0] == bundle.num_items


def test_two_stage_freezes_the_user_tower_in_stage_2(bundle):
  data = bundle.device_arrays()
  keys = jnp.stack([jax.random.PRNGKey(0)])
  for reinit in (False, True):
    m = methods.build("ndp", bundle, MODEL, CFG, reinit_items=reinit)
    stage1 = train(m, data, bundle.num_train, keys, dataclasses.replace(CFG, epochs=2))
    both = train(m, data, bundle.num_train, keys, CFG)
    u1, u2 = (r.params["params"]["user_tower"] for r in (stage1, both))
    jax.tree.map(np.testing.assert_array_equal, u1, u2)  # stage 2 left the users alone
    i1, i2 = (r.params["params"]["item_tower"] for r in (stage1, both))
    assert not all(jax.tree.leaves(jax.tree.map(np.allclose, i1, i2)))


def test_bad_cdn_options_are_spec_errors(bundle):
  with pytest.raises(SpecError, match="gamma > 1"):
    methods.build("cdn", bundle, MODEL, CFG, gamma=0.5)
  with pytest.raises(SpecError, match="design"):
    methods.build("cdn", bundle, MODEL, CFG, design="big")
  with pytest.raises(SpecError, match="valid: .*bbn"):
    methods.build("cdnn", bundle, MODEL, CFG)


def test_sampler_log_q_matches_each_sampler(bundle):
  from ltbench.methods.baselines import sampler_log_q
  data = bundle.device_arrays()
  counts = bundle.item_counts.astype(float)
  cap = samplers.omega_r_cap(bundle.item_counts, bundle.head_mask)
  has = counts > 0
  for sampler, q in [("natural", counts), ("class_balanced", has * 1.0),
                     ("omega_r", np.minimum(counts, cap)),
                     ("reversed", np.where(has, 1.0 / np.maximum(counts, 1), 0.0))]:
    got = np.exp(np.asarray(sampler_log_q(sampler, data, cap)))
    np.testing.assert_allclose(got[has], (q / q.sum())[has], rtol=1e-5, err_msg=sampler)


def _log_softmax(z):
  z = z - z.max(-1, keepdims=True)
  return z - np.log(np.exp(z).sum(-1, keepdims=True))


@pytest.mark.parametrize("design", ["mem_gen", "unbalanced_balanced"])
def test_loss_is_eq5_mixed_logit_under_eq8(bundle, design):
  """The loss equals α·CE(s, i_m) + (1 − α)·CE(s, i_r) with s = α·x_m·y_m + (1 − α)·x_r·y_r,
  computed here from the towers' outputs with two separate products (dropout off)."""
  data = bundle.device_arrays()
  method = methods.build("cdn", bundle, MODEL, CFG, gamma=1.5, design=design)
  key = jax.random.PRNGKey(3)
  params = method.init(key, data)
  epoch = jnp.int32(3)
  batches = method.sample(key, data, epoch, 1, 32)
  batch = jax.tree_util.tree_map(lambda b: b[0], batches)
  loss, _ = method.loss(params, batch, data, key, epoch)
  y_m, y_r, _ = (np.asarray(a) if a is not None else None
                 for a in method.item_embeddings(params, data))
  users, items = np.asarray(data["train_user"]), np.asarray(data["train_item"])
  u_m, i_m = users[np.asarray(batch["m"])], items[np.asarray(batch["m"])]
  u_r, i_r = users[np.asarray(batch["r"])], items[np.asarray(batch["r"])]
  tower = method.user_tower
  x_m = np.asarray(tower.apply(params["user"], {k: v[u_m] for k, v in
                                                data["user_features"].items()})[0])
  x_r = np.asarray(tower.apply(params["user"], {k: v[u_r] for k, v in
                                                data["user_features"].items()})[1])
  alpha = float(gamma_adapter(3, CFG.epochs, 1.5))
  s = alpha * x_m @ y_m.T + (1 - alpha) * x_r @ y_r.T
  rows = np.arange(32)
  ref = (alpha * -_log_softmax(s)[rows, i_m].mean()
         + (1 - alpha) * -_log_softmax(s)[rows, i_r].mean())
  np.testing.assert_allclose(float(loss), ref, rtol=2e-5)


PAPER_MODEL = ModelConfig(embed_dim=64, sizes=(256, 128, 64), dropout=0.1)


@pytest.mark.parametrize("n_mem, n_gen, design", [(1, 1, "mem_gen"), (2, 2, "mem_gen"),
                                                   (1, 1, "head_tail")])
def test_default_experts_match_the_backbone_item_tower_budget(bundle, n_mem, n_gen, design):
  """§3.3: the item side keeps the two-tower's parameters. Tolerance: 2 % of the item
  tower's MLP (the embedding tables are the same on both sides)."""
  data = bundle.device_arrays()
  m = methods.build("cdn", bundle, PAPER_MODEL, CFG, n_mem=n_mem, n_gen=n_gen, design=design)
  counts = methods.param_counts(m, bundle, data)
  assert len(m.expert_sizes) == 3 and m.expert_sizes[-1] == 64  # the backbone's depth
  budget = counts["backbone_item_tower_dense"]
  assert abs(counts["item_side_dense"] - budget) <= 0.02 * budget, counts
  assert abs(counts["item_side"] - counts["backbone_item_tower"]) <= 0.02 * budget
  # Appendix B.3's one layer of 64 per expert stays selectable, and is far smaller.
  small = methods.build("cdn", bundle, PAPER_MODEL, CFG, n_mem=n_mem, n_gen=n_gen,
                        design=design, expert_sizes=(64,))
  assert methods.param_counts(small, bundle, data)["item_side_dense"] < 0.3 * budget
  with pytest.raises(SpecError, match="item vector size"):
    methods.build("cdn", bundle, PAPER_MODEL, CFG, expert_sizes=(64, 32))


def test_bbn_has_one_item_tower_per_branch(bundle):
  data = bundle.device_arrays()
  m = methods.build("bbn", bundle, MODEL, CFG)
  item = m.init(jax.random.PRNGKey(0), data)["item"]["params"]
  assert set(item) == {"main", "regulariser"}
  assert jax.tree.structure(item["main"]) == jax.tree.structure(item["regulariser"])
  weights = lambda tree: [x for path, x in jax.tree_util.tree_flatten_with_path(tree)[0]
                          if path[-1].key != "bias"]  # biases start at zero in both
  assert not any(np.array_equal(a, b) for a, b in zip(weights(item["main"]),
                                                      weights(item["regulariser"])))
  y_m, y_r, _ = m.item_embeddings(m.init(jax.random.PRNGKey(0), data), data)
  assert not np.allclose(y_m, y_r)
  shared = methods.build("bbn", bundle, MODEL, CFG, item_side="mlp")
  counts = methods.param_counts(m, bundle, data)
  assert counts["item_side"] == 2 * methods.param_counts(shared, bundle, data)["item_side"]
  assert methods.resolved_options("bbn", {})["item_side"] == "mlp_per_branch"
  assert methods.resolved_options("two_tower", {}) is None  # its config key is unchanged


def test_cdn_training_with_dropout_is_deterministic_per_seed(bundle):
  """CDN's dropout is the counter-hash `towers.Dropout`: reproducible for a seed, and the
  seed changes the masks."""
  from ltbench.models import cdn as cdn_models
  assert "nn.Dropout" not in open(cdn_models.__file__).read()
  data = bundle.device_arrays()
  cfg = dataclasses.replace(CFG, epochs=1)
  m = methods.build("cdn", bundle, dataclasses.replace(MODEL, dropout=0.3), cfg)
  def run(seed):
    r = train(m, data, bundle.num_train, jnp.stack([jax.random.PRNGKey(seed)]), cfg)
    return r.losses, jax.tree.leaves(r.params)
  (loss_a, params_a), (loss_b, params_b) = run(0), run(0)
  np.testing.assert_array_equal(loss_a, loss_b)
  for a, b in zip(params_a, params_b):
    np.testing.assert_array_equal(a, b)
  params = m.init(jax.random.PRNGKey(0), data)
  y0 = m.item_embeddings(params, data, jax.random.PRNGKey(1))[0]
  y1 = m.item_embeddings(params, data, jax.random.PRNGKey(2))[0]
  y_eval = m.item_embeddings(params, data)[0]
  assert not np.allclose(y0, y1) and not np.allclose(y0, y_eval)


def test_runner_records_param_counts_per_row(bundle):
  from ltbench.harness import report, runner
  from reproductions import get_spec
  spec = get_spec("cdn/table2").quick()
  data = bundle.device_arrays()
  counts = {r.name: runner.row_param_counts(spec, r, bundle, data) for r in spec.rows}
  assert counts["BBN"]["item_side"] == 2 * counts["Two-tower"]["item_side"]
  assert counts["Two-tower"]["item_side"] == counts["CDN"]["backbone_item_tower"]
  lines = report.param_count_lines(counts)
  assert lines[0] == "## Parameter counts" and sum("| CDN " in l for l in lines) == 1
