"""SSL (Yao et al., CIKM'21): MI table, masks, augmentation, α = 0 = the backbone's loss,
serving, per-seed training subsets, Recall/MAP, and quick runs of the ssl specs."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ltbench import evaluate, methods
from ltbench.data import synthetic
from ltbench.data.bundle import Features, FieldSpec
from ltbench.errors import SpecError
from ltbench.methods import ssl
from ltbench.methods.baselines import ModelConfig
from ltbench.methods.ssl import correlated_feature_mask, feature_mutual_information
from ltbench.train import TrainConfig, hyper_values

TINY = synthetic.SyntheticConfig(num_users=150, num_items=80, mean_per_user=15.0, seed=2)
MODEL = ModelConfig(embed_dim=8, sizes=(16, 8), dropout=0.1)
CFG = TrainConfig(epochs=1, batch_size=64, learning_rate=3e-3, log_every=0)


@pytest.fixture(scope="module")
def bundle():
  return synthetic.generate(TINY)


@pytest.fixture(scope="module")
def data(bundle):
  return bundle.device_arrays()


# -- the MI table ----------------------------------------------------------------------------

def _features(n=20000, seed=0):
  rng = np.random.default_rng(seed)
  a = rng.integers(0, 5, n).astype(np.int32)
  b = rng.integers(0, 4, n).astype(np.int32)  # independent of a
  c = a.copy()  # a copy of a
  d = (a + 0.1 * rng.normal(size=n)).astype(np.float32)  # continuous, follows a
  tags = np.where(rng.random((n, 2)) < 0.5, rng.integers(0, 3, (n, 2)), -1).astype(np.int32)
  fields = (FieldSpec("a", "categorical", 5), FieldSpec("b", "categorical", 4),
            FieldSpec("c", "categorical", 5), FieldSpec("d", "continuous"),
            FieldSpec("tags", "multi_hot", 3))
  return Features(fields, {"a": a, "b": b, "c": c, "d": d, "tags": tags})


def test_mi_table_symmetric_zero_for_independent_positive_for_copies():
  feats = _features()
  mi = feature_mutual_information(feats, num_buckets=5)
  assert mi.shape == (5, 5)
  np.testing.assert_allclose(mi, mi.T, atol=1e-12)
  assert (mi >= 0).all()
  h_a = -np.sum(np.bincount(feats.arrays["a"]) / 20000 * np.log(np.bincount(feats.arrays["a"]) / 20000))
  np.testing.assert_allclose(mi[0, 0], h_a, rtol=1e-9)  # the diagonal is the entropy
  assert mi[0, 1] < 2e-3 and mi[1, 4] < 2e-3  # independent: ~0 (plug-in bias only)
  np.testing.assert_allclose(mi[0, 2], h_a, rtol=1e-9)  # a copy shares all its information
  assert mi[0, 3] > 0.9 * h_a  # the bucketised continuous copy nearly all of it
  # Weights act like repeated rows.
  w = np.random.default_rng(1).integers(0, 3, 20000)
  rep = Features(feats.fields, {k: np.repeat(v, w, axis=0) for k, v in feats.arrays.items()})
  np.testing.assert_allclose(feature_mutual_information(feats, w, 5)[:3, :3],
                             feature_mutual_information(rep, None, 5)[:3, :3], rtol=1e-9)
  with pytest.raises(ValueError, match="weights"):
    feature_mutual_information(feats, -np.ones(20000))


def test_cfm_views_use_correlated_feature_mask(bundle):
  m = methods.build("ssl", bundle, MODEL, CFG, masking="cfm")
  f_count = len(bundle.item_features.fields)
  assert m.n == f_count // 2 - 1  # masks half the features by default
  mi = np.array([[9.0, 0.1, 0.7, 0.3], [0.1, 9.0, 0.2, 0.25], [0.7, 0.2, 9.0, 0.5],
                 [0.3, 0.25, 0.5, 9.0]])
  m = dataclasses.replace(m, mi=tuple(map(tuple, mi)), n=1)
  mask1, mask2 = (np.asarray(x) for x in m.view_masks(jax.random.PRNGKey(0), 800))
  # Seeds 0 and 2 mask {0, 2}, seed 1 masks {1, 3}, seed 3 masks {2, 3}.
  want = {}
  for s in range(4):
    mask = tuple(bool(v) for v in np.asarray(correlated_feature_mask(mi, s, 1)))
    want[mask] = want.get(mask, 0) + 0.25
  assert sorted(want.values()) == [0.25, 0.25, 0.5]
  rows = [tuple(bool(v) for v in r) for r in mask1]
  assert set(rows) == set(want)  # every row is some seed's CFM mask
  for mask, p in want.items():  # the seed is uniform over the features
    assert abs(rows.count(mask) / 800 - p) < 4 * np.sqrt(p * (1 - p) / 800)
  np.testing.assert_array_equal(mask2, ~mask1)


def test_rfm_views_mask_complementary_halves(bundle):
  m = methods.build("ssl", bundle, MODEL, CFG, masking="rfm")
  mask1, mask2 = (np.asarray(x) for x in m.view_masks(jax.random.PRNGKey(1), 300))
  f_count = len(bundle.item_features.fields)
  np.testing.assert_array_equal(mask1 ^ mask2, True)
  np.testing.assert_array_equal(mask1.sum(1), f_count // 2)
  assert len({tuple(r) for r in mask1}) == 6  # all C(4, 2) halves occur


def test_value_dropout_drops_only_multi_valued_values(data, bundle):
  fields = bundle.item_features.fields
  feats = data["item_features"]
  same = ssl.drop_values(feats, fields, jax.random.PRNGKey(0), 0.0)
  half = ssl.drop_values(feats, fields, jax.random.PRNGKey(0), 0.5)
  for f in fields:
    np.testing.assert_array_equal(same[f.name], feats[f.name])
    if f.kind != "multi_hot":
      np.testing.assert_array_equal(half[f.name], feats[f.name])
    else:
      had = np.asarray(feats[f.name]) >= 0
      kept = np.asarray(half[f.name]) >= 0
      assert not (kept & ~had).any()
      assert 0.35 < kept.sum() / had.sum() < 0.65


# -- the loss and serving ----------------------------------------------------------------------

def _hyper_data(method, data):
  return {**data, "hyper": hyper_values(method, 0.0)}


@pytest.mark.parametrize("name, options", [("ssl", {"masking": "cfm"}), ("ssl", {"masking": "rfm"}),
                                           ("spread_out", {})])
def test_alpha_zero_is_exactly_the_two_tower_loss(bundle, data, name, options):
  plain = methods.build("two_tower", bundle, MODEL, CFG)
  m = methods.build(name, bundle, MODEL, CFG, alpha=0.0, **options)
  key = jax.random.PRNGKey(3)
  params = m.init(key, data)
  batch = jnp.arange(64)
  # Eager (op by op): the ops are compiled once for the whole file, where a jitted loss
  # per case would compile a program each.
  want = plain.loss(plain.init(key, data), batch, data, jax.random.PRNGKey(4), jnp.int32(0))[0]
  loss_fn = lambda p, d: m.loss(p, batch, d, jax.random.PRNGKey(4), jnp.int32(0))
  got, aux = loss_fn(params, _hyper_data(m, data))
  assert float(got) == float(want)  # bit for bit
  assert np.isfinite(float(aux["self"])) and float(aux["self"]) > 0
  # α is a traced value: α = 1 adds L_self.
  d1 = _hyper_data(m, data)
  d1["hyper"] = {**d1["hyper"], "ssl_alpha": jnp.float32(1.0)}
  got1, aux1 = loss_fn(params, d1)
  np.testing.assert_allclose(float(got1), float(want) + float(aux1["self"]), rtol=1e-6)


def test_feature_dropout_without_dropout_is_the_two_tower_loss(bundle, data):
  plain = methods.build("two_tower", bundle, MODEL, CFG)
  fd = methods.build("feature_dropout", bundle, MODEL, CFG, value_dropout=0.0)
  key = jax.random.PRNGKey(0)
  params = fd.init(key, data)
  batch = jnp.arange(64)
  want = plain.loss(params["model"], batch, data, key, jnp.int32(0))[0]
  assert float(fd.loss(params, batch, _hyper_data(fd, data), key, jnp.int32(0))[0]) == float(want)
  fd5 = methods.build("feature_dropout", bundle, MODEL, CFG, value_dropout=0.5)
  assert float(fd5.loss(params, batch, _hyper_data(fd5, data), key, jnp.int32(0))[0]) != float(want)


def test_augmentation_leaves_serving_untouched(bundle, data):
  plain = methods.build("two_tower", bundle, MODEL, CFG)
  m = methods.build("ssl", bundle, MODEL, CFG, masking="cfm", value_dropout=0.5)
  key = jax.random.PRNGKey(5)
  params = m.init(key, data)
  assert set(params["default"]) == {f.name for f in bundle.item_features.fields}
  moved = {**params, "default": jax.tree.map(lambda v: v + 3.0, params["default"])}
  users, items = m.serve(params, data)
  users2, items2 = m.serve(moved, data)
  want_users, want_items = plain.serve(plain.init(key, data), data)  # same init key
  for got in (users, users2):
    np.testing.assert_array_equal(got, want_users)
  for got in (items, items2):
    np.testing.assert_array_equal(got, want_items)


@pytest.mark.parametrize("name, options, match", [
    ("ssl", {"masking": "xyz"}, "masking"), ("ssl", {"alpha": -1.0}, "alpha"),
    ("ssl", {"tau": 0.0}, "tau"), ("ssl", {"value_dropout": 1.0}, "value_dropout"),
    ("ssl", {"n": -1}, "n must"), ("spread_out", {"masking": "rfm"}, "masking"),
    ("spread_out", {"value_dropout": 0.2}, "augmentation"),
    ("ssl", {"train_fraction": 0.0}, "train_fraction"),
    ("two_tower", {"train_fraction": 1.5}, "train_fraction"),
    ("ssl", {"ssl_items": "all"}, "ssl_items")])
def test_bad_options_are_clear_errors(bundle, name, options, match):
  with pytest.raises(SpecError, match=match):
    methods.build(name, bundle, MODEL, CFG, **options)


# -- training on a fraction ----------------------------------------------------------------------

def test_subset_examples_is_a_bijection():
  for n in (1, 7, 64, 1000):
    got = np.asarray(ssl.subset_examples(np.uint32(11), jnp.arange(n), n))
    np.testing.assert_array_equal(np.sort(got), np.arange(n))
  a = np.asarray(ssl.subset_examples(np.uint32(1), jnp.arange(100), 1000))
  b = np.asarray(ssl.subset_examples(np.uint32(2), jnp.arange(100), 1000))
  assert len(set(a) & set(b)) < 40  # other seeds, other subsets (~10 expected)


def test_train_fraction_restricts_the_examples_per_seed(bundle, data):
  m = methods.build("ssl", bundle, MODEL, CFG, train_fraction=0.25)
  assert isinstance(m, ssl.TrainSubset) and m.size == round(0.25 * bundle.num_train)
  full = methods.build("ssl", bundle, MODEL, CFG)
  assert ssl.TrainSubset(full, 0.5, 10).program_key() == m.program_key()  # one program
  subsets = []
  for seed in (0, 1):
    params = m.init(jax.random.PRNGKey(seed), data)
    np.testing.assert_array_equal(  # the model itself is initialised as without a subset
        jax.tree.leaves(params["model"])[0],
        jax.tree.leaves(full.init(jax.random.PRNGKey(seed), data))[0])
    d = _hyper_data(m, data)
    seen = set()
    for epoch in range(2):
      batches = m.sample(jax.random.PRNGKey(10 + epoch), d, epoch, bundle.num_train // 64, 64)
      seen |= set(np.asarray(m.examples(params, batches, d)).ravel().tolist())
    assert len(seen) == m.size  # two epochs cover the 25 % subset, and nothing else
    subsets.append(seen)
    mask = m.update_mask(params, 0)
    assert not bool(mask["subset_seed"])  # frozen
  assert subsets[0] != subsets[1]


# -- Recall / MAP ----------------------------------------------------------------------------------

def test_recall_and_map_on_hand_made_ranks():
  ranks = np.array([[0, 1, 3, 10]])
  got = evaluate.metrics_from_ranks(ranks, [3], {"all": np.ones(4, bool)})
  np.testing.assert_allclose(got[("all", "Recall@3")], [50.0])
  np.testing.assert_allclose(got[("all", "MAP@3")], [100 * (1 + 1 / 2) / 4])
  np.testing.assert_allclose(got[("all", "Recall@3")], got[("all", "HR@3")])
  # Ties: rank 0 tied with one other item -> position 0 or 1, each with probability 1/2.
  tied = evaluate.metrics_from_ranks(np.array([[0]]), [1, 2], {"all": np.array([True])},
                                     ties_SxU=np.array([[1]]))
  assert tied[("all", "MAP@1")][0] == pytest.approx(50.0)
  assert tied[("all", "MAP@2")][0] == pytest.approx(75.0)
  assert tied[("all", "Recall@1")][0] == pytest.approx(50.0)
  chance = evaluate.chance_metrics(np.array([4]), [2], {"all": np.array([True])})
  assert chance[("all", "MAP@2")] == pytest.approx(100 * 1.5 / 4)
  assert chance[("all", "Recall@2")] == pytest.approx(50.0)


# -- the specs, --quick ------------------------------------------------------------------------

def test_ssl_specs_run_quick(tmp_path):
  """Each ssl spec runs --quick (one epoch, two seeds, one row each). Only rq1's row trains
  a new program: rq3's row differs from it in p alone (a traced value, same program), and
  rq2's 100 % row and rq4's row are rq1's configuration, reused rather than retrained. The
  subset rows of rq2 are covered by test_train_fraction_restricts_the_examples_per_seed."""
  import json

  from ltbench import cli
  runs = {"ssl/rq1": "SSL-CFM", "ssl/rq2": "SSL-CFM 100%", "ssl/rq3": "SSL p=0.3",
          "ssl/rq4": "SSL-CFM"}
  for spec_id, row in runs.items():
    assert cli.main(["run", spec_id, "--quick", "--seeds", "0,1", "--epochs", "1",
                     "--out", str(tmp_path), "--rows", row]) == 0
    out_dir = tmp_path / (spec_id + "-quick-epochs1")
    trials = [json.loads(l) for l in (out_dir / "trials.jsonl").read_text().splitlines()]
    assert {t["row"] for t in trials} == {row} and len(trials) == 2
    for t in trials:
      assert t["status"] == "ok"
      assert 0 < t["test"]["overall/Recall@10"] <= t["test"]["overall/Recall@50"] <= 100
      assert 0 < t["test"]["tail/MAP@50"] <= t["test"]["tail/Recall@50"]
    assert "overall/MAP@10" in (out_dir / "table.md").read_text()
  for spec_id in ("ssl/rq2", "ssl/rq4"):
    reused = [json.loads(l) for l in
              (tmp_path / f"{spec_id}-quick-epochs1/trials.jsonl").read_text().splitlines()]
    assert all(t.get("reused_from") == "ssl/rq1-quick-epochs1:SSL-CFM" for t in reused)
  for name in ("rq3-alpha", "rq3-dropout"):
    assert (tmp_path / "ssl/rq3-quick-epochs1" / f"{name}.png").stat().st_size > 1000
    assert len((tmp_path / "ssl/rq3-quick-epochs1" / f"{name}.csv").read_text().splitlines()) >= 3


def test_rq3_best_alpha_is_chosen_on_validation_not_test():
  # The test split would pick α = 3 (and SSL would win); validation picks α = 1, which
  # loses to the Two-tower on test: the claim must read α = 1's test numbers.
  from ltbench.harness.report import Table, summarise
  from reproductions import get_spec
  from reproductions.ssl import rq3
  spec = get_spec("ssl/rq3")

  def cells(recall, map_):
    return {"overall/Recall@50": summarise([recall, recall + 0.2, recall - 0.2]),
            "overall/MAP@50": summarise([map_, map_ + 0.02, map_ - 0.02])}

  test = {"Two-tower": cells(40.0, 6.0), rq3.ssl_row(1.0): cells(38.0, 5.5),
          rq3.ssl_row(3.0): cells(45.0, 7.0)}
  valid = {"Two-tower": cells(40.0, 6.0), rq3.ssl_row(1.0): cells(44.0, 6.5),
           rq3.ssl_row(3.0): cells(41.0, 6.1)}
  res = rq3._best_alpha_beats(Table(spec, test, valid, {}))
  assert res.holds is False
  assert "α = 1 chosen on validation" in res.evidence
