"""The Bundle: everything a method and an evaluator need about one data set + protocol.

A Bundle holds host (numpy) arrays; `device_arrays()` turns the parts a training step
reads into one pytree of device arrays. It is built once per (data set, protocol) and
cached on disk as a single `.npz` so a second run does not re-parse the raw files.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
from typing import Any, Literal

import numpy as np

FieldKind = Literal["categorical", "multi_hot", "continuous"]



def write_npz(path: pathlib.Path, arrays: dict[str, np.ndarray], header: dict[str, Any]) -> None:
  """Arrays plus a JSON header in one .npz, written atomically (temporary file + rename)."""
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  arrays = {**arrays, "__header__": np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)}
  # A per-process temporary name: two runs parsing the same data set at once each write a
  # whole file, and the last rename wins.
  tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
  np.savez(tmp, **arrays)
  tmp.replace(path)


def read_header(z) -> dict[str, Any]:
  """The JSON header `write_npz` stored in an open .npz."""
  return json.loads(z["__header__"].tobytes().decode())

@dataclasses.dataclass(frozen=True)
class FieldSpec:
  name: str
  kind: FieldKind
  vocab: int = 0  # number of distinct values (categorical / multi_hot); 0 for continuous
  group: Literal["mem", "gen"] = "gen"  # CDN: memorisation (ids) or generalisation feature


@dataclasses.dataclass
class Features:
  """Per-entity feature arrays, one row per user (or item).

  categorical: int32 [N]; multi_hot: int32 [N, L] padded with -1; continuous: float32 [N].
  """

  fields: tuple[FieldSpec, ...]
  arrays: dict[str, np.ndarray]

  def __post_init__(self):
    n = {a.shape[0] for a in self.arrays.values()}
    if len(n) > 1:
      raise ValueError(f"feature arrays disagree on the number of rows: {n}")
    missing = {f.name for f in self.fields} - set(self.arrays)
    if missing:
      raise ValueError(f"features declared without arrays: {sorted(missing)}")

  @property
  def num_rows(self) -> int:
    return next(iter(self.arrays.values())).shape[0]

  def select(self, group: str) -> "Features":
    fields = tuple(f for f in self.fields if f.group == group)
    return Features(fields, {f.name: self.arrays[f.name] for f in fields})


@dataclasses.dataclass
class Bundle:
  """One data set under one protocol (split, head fraction), as host arrays."""

  name: str
  num_users: int
  num_items: int
  user_features: Features
  item_features: Features
  train_user: np.ndarray  # int32 [N]
  train_item: np.ndarray  # int32 [N]
  valid_user: np.ndarray  # int32 [V]
  valid_item: np.ndarray  # int32 [V]
  test_user: np.ndarray  # int32 [T]
  test_item: np.ndarray  # int32 [T]
  item_counts: np.ndarray  # int32 [I], interactions per item in train
  head_mask: np.ndarray  # bool [I], True for head items
  meta: dict[str, Any]  # split kind and seed, head fraction, source files, checksum

  @property
  def num_train(self) -> int:
    return int(self.train_user.shape[0])

  def seen_csr(self, include_valid: bool) -> tuple[np.ndarray, np.ndarray]:
    """CSR (indptr, indices) of each user's train (and optionally validation) items."""
    users, items = self.train_user, self.train_item
    if include_valid:
      users = np.concatenate([users, self.valid_user])
      items = np.concatenate([items, self.valid_item])
    order = np.lexsort((items, users))
    counts = np.bincount(users, minlength=self.num_users)
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return indptr, items[order].astype(np.int32)

  def device_arrays(self) -> dict[str, Any]:
    """The pytree a training step reads: features, interactions (also grouped by item, for
    the samplers), item counts and the head mask."""
    import jax.numpy as jnp

    by_item = np.argsort(self.train_item, kind="stable").astype(np.int32)
    item_start = np.concatenate([[0], np.cumsum(self.item_counts)[:-1]]).astype(np.int32)
    return {
        "train_by_item": jnp.asarray(by_item),
        "item_start": jnp.asarray(item_start),
        "user_features": {k: jnp.asarray(v) for k, v in self.user_features.arrays.items()},
        "item_features": {k: jnp.asarray(v) for k, v in self.item_features.arrays.items()},
        "train_user": jnp.asarray(self.train_user),
        "train_item": jnp.asarray(self.train_item),
        "item_counts": jnp.asarray(self.item_counts),
        "head_mask": jnp.asarray(self.head_mask),
    }

  def summary(self) -> str:
    counts = self.item_counts
    positive = counts[counts > 0]
    imbalance = positive.max() / positive.min() if positive.size else float("nan")
    return (f"{self.name}: {self.num_users} users, {self.num_items} items, "
            f"{self.num_train} train / {len(self.valid_item)} valid / {len(self.test_item)} test, "
            f"head items {int(self.head_mask.sum())}, IF {imbalance:.0f}, "
            f"split {self.meta.get('split')}")

  # -- on-disk cache -------------------------------------------------------------------

  def save(self, path: pathlib.Path) -> None:
    arrays = {}
    for prefix, feats in (("uf", self.user_features), ("if", self.item_features)):
      for k, v in feats.arrays.items():
        arrays[f"{prefix}/{k}"] = v
    for k in ("train_user", "train_item", "valid_user", "valid_item", "test_user", "test_item",
              "item_counts", "head_mask"):
      arrays[k] = getattr(self, k)
    header = {
        "name": self.name, "num_users": self.num_users, "num_items": self.num_items,
        "user_fields": [dataclasses.asdict(f) for f in self.user_features.fields],
        "item_fields": [dataclasses.asdict(f) for f in self.item_features.fields],
        "meta": self.meta,
    }
    write_npz(path, arrays, header)

  @classmethod
  def load(cls, path: pathlib.Path) -> "Bundle":
    with np.load(path) as z:
      header = read_header(z)
      def feats(prefix, specs):
        fields = tuple(FieldSpec(**s) for s in specs)
        return Features(fields, {f.name: z[f"{prefix}/{f.name}"] for f in fields})
      return cls(
          name=header["name"], num_users=header["num_users"], num_items=header["num_items"],
          user_features=feats("uf", header["user_fields"]),
          item_features=feats("if", header["item_fields"]),
          **{k: z[k] for k in ("train_user", "train_item", "valid_user", "valid_item",
                               "test_user", "test_item", "item_counts", "head_mask")},
          meta=header["meta"])
