import dataclasses

import numpy as np
import pandas as pd
import pytest

from ltbench.data import registry, synthetic
from ltbench.data.bundle import Bundle
from ltbench.data.features import bundle_from_frames, title_tokens
from ltbench.errors import SpecError

SMALL = synthetic.SyntheticConfig(num_users=120, num_items=90, mean_per_user=12.0, seed=3)


def test_synthetic_is_deterministic_and_long_tailed():
  a, b = synthetic.generate(SMALL), synthetic.generate(SMALL)
  np.testing.assert_array_equal(a.train_item, b.train_item)
  np.testing.assert_array_equal(a.item_features.arrays["genres"], b.item_features.arrays["genres"])
  c = synthetic.generate(synthetic.SyntheticConfig(**{**SMALL.__dict__, "seed": 4}))
  assert not np.array_equal(a.train_item[:50], c.train_item[:50])
  counts = a.item_counts
  assert counts[a.head_mask].sum() > 0.3 * counts.sum()  # head items take a large share
  assert a.head_mask.sum() == round(0.2 * 90)
  assert len(a.test_item) == len(a.valid_item) == 120  # every user has >= 5 interactions


def test_synthetic_imbalance_factor_is_controllable():
  flat = synthetic.generate(synthetic.SyntheticConfig(imbalance=5.0, seed=0))
  steep = synthetic.generate(synthetic.SyntheticConfig(imbalance=2000.0, seed=0))
  def gini(c):
    c = np.sort(c.astype(float))
    n = len(c)
    return (2 * np.arange(1, n + 1) - n - 1) @ c / (n * c.sum())
  assert gini(steep.item_counts) > gini(flat.item_counts) + 0.1


def test_bundle_save_load_roundtrip(tmp_path):
  b = synthetic.generate(SMALL)
  b.save(tmp_path / "b.npz")
  c = Bundle.load(tmp_path / "b.npz")
  assert c.meta == b.meta and c.num_items == b.num_items
  assert c.item_features.fields == b.item_features.fields
  for k, v in b.item_features.arrays.items():
    np.testing.assert_array_equal(c.item_features.arrays[k], v)
  np.testing.assert_array_equal(c.test_item, b.test_item)


def test_seen_csr_contains_train_and_optionally_valid():
  b = synthetic.generate(SMALL)
  indptr, indices = b.seen_csr(include_valid=False)
  u = 7
  assert set(indices[indptr[u]:indptr[u + 1]]) == set(b.train_item[b.train_user == u])
  indptr, indices = b.seen_csr(include_valid=True)
  expected = set(b.train_item[b.train_user == u]) | set(b.valid_item[b.valid_user == u])
  assert set(indices[indptr[u]:indptr[u + 1]]) == expected


def test_bundle_from_frames_features_and_split():
  ratings = pd.DataFrame({"user": [1, 1, 1, 1, 2, 2, 2, 3], "item": [10, 20, 30, 40, 10, 20, 50, 10],
                          "rating": [5] * 8, "timestamp": [4, 3, 2, 1, 1, 2, 3, 1]})
  users = pd.DataFrame({"user": [1, 2, 3, 4], "gender": ["F", "M", "M", "F"], "age": [1, 25, 35, 50],
                        "occupation": [10, 0, 3, 4], "zip": ["48067", "70072", "55117", "02460"]})
  items = pd.DataFrame({"item": [10, 20, 30, 40, 50, 60],
                        "title": ["Toy Story", "Toy Soldiers", "Heat", "Sabrina", "Heat Wave", "X"],
                        "genres": [["Animation", "Comedy"], ["Action"], ["Action", "Crime"],
                                   ["Comedy"], ["Drama"], ["Drama"]],
                        "year": [1995, 1991, 1995, 1995, -1, 1990]})
  b = bundle_from_frames("t", ratings, users, items, True, head_fraction=0.2)
  assert b.num_users == 3 and b.num_items == 5  # user 4 and item 60 have no ratings
  # user 1 (index 0): newest = item 10 (test), then item 20 (valid)
  assert list(zip(b.test_user, b.test_item)) == [(0, 0), (1, 4)]
  assert list(zip(b.valid_user, b.valid_item)) == [(0, 1), (1, 1)]
  assert b.item_counts.tolist() == [2, 0, 1, 1, 0]
  title = b.item_features.arrays["title"]  # tokens seen in >= 2 titles: "heat", "toy"
  assert b.item_features.fields[1].vocab == 2
  assert sorted(title[0][title[0] >= 0].tolist()) == [1] and sorted(title[4][title[4] >= 0]) == [0]
  g = b.item_features.arrays["genres"]
  assert (g[0] >= 0).sum() == 2 and (g[1] >= 0).sum() == 1
  year = b.item_features.arrays["year"]
  assert abs(year.mean()) < 1e-6  # standardised, the missing year imputed by the median
  assert b.meta["split"] == "leave-one-out by timestamp"
  assert [f.group for f in b.item_features.fields] == ["mem", "gen", "gen", "gen"]


def test_title_tokens_drop_stopwords():
  assert title_tokens("The Lord of the Rings: 2") == ["lord", "rings"]


def test_unknown_dataset_lists_valid_names():
  with pytest.raises(SpecError, match="ml-1m"):
    registry.load_bundle("ml-2m")


def test_sparse_standin_is_deterministic_sparse_and_long_tailed():
  cfg = synthetic.SparseConfig(num_users=600, num_items=3000, num_interactions=9000, seed=1)
  a, b = synthetic.generate_sparse(cfg), synthetic.generate_sparse(cfg)
  np.testing.assert_array_equal(a.train_item, b.train_item)
  assert a.num_items <= 3000 and a.num_users <= 600
  assert (a.item_counts[a.head_mask] >= a.item_counts[~a.head_mask].max()).all()
  assert a.head_mask.sum() == max(1, round(0.001 * a.num_items))
  assert 1 - a.num_train / (a.num_users * a.num_items) > 0.99
  assert "random" in a.meta["split"]
  assert len(a.test_item) == a.num_users  # every kept user has >= 3 interactions
  steep = synthetic.generate_sparse(dataclasses.replace(cfg, imbalance=5000.0))
  flat = synthetic.generate_sparse(dataclasses.replace(cfg, imbalance=20.0))
  assert steep.item_counts.max() > 3 * flat.item_counts.max()


def test_bx_standin_is_registered_and_labelled():
  assert "STAND-IN" in registry.DATASETS["bx-standin"].description
  b = registry.load_bundle("bx-standin", synthetic_config={"num_users": 300, "num_items": 2000,
                                                           "num_interactions": 3000})
  assert b.name == "bx-standin" and b.meta["head_fraction"] == 0.001
  with pytest.raises(SpecError, match="bad generator options"):
    registry.load_bundle("bx-standin", synthetic_config={"nope": 1})
