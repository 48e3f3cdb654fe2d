"""From raw MovieLens-style frames to a Bundle (DESIGN.md §4 features).

User: id, gender, age (continuous, standardised), occupation, zip (first 3 characters).
Item: id, title bag-of-words, genres multi-hot, year (continuous, standardised).
Ids are the memorisation features (CDN); everything else is a generalisation feature.
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np
import pandas as pd

from ltbench.data.bundle import Bundle, Features, FieldSpec
from ltbench.data.splits import head_mask_from_counts, leave_one_out


def categorical(values: Sequence) -> tuple[np.ndarray, int]:
  """Integer codes in order of first appearance of the sorted distinct values."""
  codes, uniques = pd.factorize(pd.Series(list(values)).astype(str), sort=True)
  return codes.astype(np.int32), len(uniques)


def standardise(x: np.ndarray) -> np.ndarray:
  x = x.astype(np.float64)
  sd = x.std()
  return ((x - x.mean()) / (sd if sd > 0 else 1.0)).astype(np.float32)


def pad_lists(lists: Sequence[Sequence[int]]) -> np.ndarray:
  width = max(1, max((len(l) for l in lists), default=1))
  out = np.full((len(lists), width), -1, np.int32)
  for r, l in enumerate(lists):
    out[r, :len(l)] = l
  return out


def multi_hot(lists: Sequence[Sequence[str]], min_count: int = 1) -> tuple[np.ndarray, int]:
  """Padded index lists over the vocabulary of tokens seen in >= min_count rows."""
  freq: dict[str, int] = {}
  for l in lists:
    for t in set(l):
      freq[t] = freq.get(t, 0) + 1
  vocab = {t: i for i, t in enumerate(sorted(t for t, c in freq.items() if c >= min_count))}
  return pad_lists([sorted({vocab[t] for t in l if t in vocab}) for l in lists]), len(vocab)


_TOKEN = re.compile(r"[a-z0-9]+")
_STOP = frozenset("the a an of and in on to for with at from by is it la le les de der die".split())


def title_tokens(title: str) -> list[str]:
  return [t for t in _TOKEN.findall(title.lower()) if t not in _STOP and len(t) > 1]


def bundle_from_frames(name: str, ratings: pd.DataFrame, users: pd.DataFrame,
                       items: pd.DataFrame, has_timestamps: bool, head_fraction: float,
                       split_seed: int = 0, meta: dict | None = None) -> Bundle:
  """Builds the Bundle for leave-one-out protocols from MovieLens-style frames.

  Users are those with ratings; items are those with at least one rating (ML-1M: 3,706).
  """
  user_ids = np.unique(ratings["user"].to_numpy())
  item_ids = np.unique(ratings["item"].to_numpy())
  users = users.set_index("user").loc[user_ids].reset_index()
  items = items.set_index("item").loc[item_ids].reset_index()
  u = np.searchsorted(user_ids, ratings["user"].to_numpy()).astype(np.int32)
  i = np.searchsorted(item_ids, ratings["item"].to_numpy()).astype(np.int32)
  ts = ratings["timestamp"].to_numpy() if has_timestamps else None
  part, _, split_kind = leave_one_out(u, ts, split_seed)

  num_users, num_items = len(user_ids), len(item_ids)
  gender, n_gender = categorical(users["gender"])
  occupation, n_occ = categorical(users["occupation"])
  zip3, n_zip = categorical(users["zip"].astype(str).str[:3])
  user_features = Features(
      (FieldSpec("user_id", "categorical", num_users, "mem"),
       FieldSpec("gender", "categorical", n_gender),
       FieldSpec("occupation", "categorical", n_occ),
       FieldSpec("zip3", "categorical", n_zip),
       FieldSpec("age", "continuous")),
      {"user_id": np.arange(num_users, dtype=np.int32), "gender": gender,
       "occupation": occupation, "zip3": zip3,
       "age": standardise(users["age"].to_numpy())})
  title, n_title = multi_hot([title_tokens(t) for t in items["title"]], min_count=2)
  genres, n_genres = multi_hot(list(items["genres"]))
  year = items["year"].to_numpy().astype(np.float64)
  year = np.where(year > 0, year, np.median(year[year > 0]) if (year > 0).any() else 0.0)
  item_features = Features(
      (FieldSpec("item_id", "categorical", num_items, "mem"),
       FieldSpec("title", "multi_hot", n_title),
       FieldSpec("genres", "multi_hot", n_genres),
       FieldSpec("year", "continuous")),
      {"item_id": np.arange(num_items, dtype=np.int32), "title": title, "genres": genres,
       "year": standardise(year)})
  return assemble(name, u, i, part, num_users, num_items, user_features, item_features,
                  head_fraction, {**(meta or {}), "split": split_kind, "split_seed": split_seed})


def assemble(name, u, i, part, num_users, num_items, user_features, item_features,
             head_fraction, meta) -> Bundle:
  """Splits interactions by `part` (0 train, 1 valid, 2 test) and adds counts and slices."""
  tr, va, te = part == 0, part == 1, part == 2
  counts = np.bincount(i[tr], minlength=num_items).astype(np.int32)
  head = head_mask_from_counts(counts, head_fraction)
  return Bundle(
      name=name, num_users=num_users, num_items=num_items,
      user_features=user_features, item_features=item_features,
      train_user=u[tr], train_item=i[tr], valid_user=u[va], valid_item=i[va],
      test_user=u[te], test_item=i[te], item_counts=counts, head_mask=head,
      meta={**meta, "head_fraction": head_fraction})
