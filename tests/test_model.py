import jax
import jax.numpy as jnp
import numpy as np

from ltbench.data.bundle import FieldSpec
from ltbench.models.towers import FeatureEncoder, TwoTower


def count(params):
  return sum(int(np.prod(p.shape)) for p in jax.tree.leaves(params))


def init(model, user_fields, item_fields):
  def feats(fields):
    return {f.name: (jnp.zeros((1, 3), jnp.int32) if f.kind == "multi_hot" else
                     jnp.zeros((1,), jnp.float32 if f.kind == "continuous" else jnp.int32))
            for f in fields}
  return model.init(jax.random.PRNGKey(0), feats(user_fields), feats(item_fields))


def test_parameter_count_small():
  # user: embeds 10*4; MLP (4+1)->8->4: 48 + 36          = 124
  # item: embeds 7*4 + 5*4; MLP (4+4+1)->8->4: 80 + 36  = 164
  user = (FieldSpec("user_id", "categorical", 10, "mem"), FieldSpec("age", "continuous"))
  item = (FieldSpec("item_id", "categorical", 7, "mem"), FieldSpec("genres", "multi_hot", 5),
          FieldSpec("year", "continuous"))
  params = init(TwoTower(user, item, embed_dim=4, sizes=(8, 4)), user, item)
  assert count(params) == 288


def test_parameter_count_ml1m_paper_config():
  # CDN Appendix B.3 sizes on the ML-1M vocabularies (zip3 678, title words 1,277).
  user = (FieldSpec("user_id", "categorical", 6040, "mem"), FieldSpec("gender", "categorical", 2),
          FieldSpec("occupation", "categorical", 21), FieldSpec("zip3", "categorical", 678),
          FieldSpec("age", "continuous"))
  item = (FieldSpec("item_id", "categorical", 3706, "mem"), FieldSpec("title", "multi_hot", 1277),
          FieldSpec("genres", "multi_hot", 18), FieldSpec("year", "continuous"))
  params = init(TwoTower(user, item, embed_dim=64, sizes=(256, 128, 64)), user, item)
  assert count(params) == 538_624 + 410_880


def test_multi_hot_is_masked_mean():
  enc = FeatureEncoder((FieldSpec("g", "multi_hot", 5),), embed_dim=3)
  x = jnp.array([[0, 2, -1], [-1, -1, -1]], jnp.int32)
  params = enc.init(jax.random.PRNGKey(1), {"g": x})
  table = params["params"]["g"]["embedding"]
  out = enc.apply(params, {"g": x})
  np.testing.assert_allclose(out[0], (table[0] + table[2]) / 2, rtol=1e-6)
  np.testing.assert_allclose(out[1], np.zeros(3), atol=0)  # no tokens: zero vector


def test_dropout_only_in_training():
  user = (FieldSpec("user_id", "categorical", 10, "mem"),)
  item = (FieldSpec("item_id", "categorical", 7, "mem"),)
  model = TwoTower(user, item, embed_dim=8, sizes=(16, 4), dropout=0.5)
  params = init(model, user, item)
  feats = {"item_id": jnp.arange(7)}
  a = model.apply(params, feats, True, method=model.items)
  b = model.apply(params, feats, True, method=model.items)
  c = model.apply(params, feats, False, method=model.items, rngs={"dropout": jax.random.PRNGKey(2)})
  np.testing.assert_array_equal(a, b)
  assert not np.allclose(a, c)
