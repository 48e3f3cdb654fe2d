"""Sequences for next-item protocols (IDW §4.1): cut histories, fixed sampled negatives.

Each user's time-ordered history is cut into sequences of at most `max_len` (30) items. In
every sequence the last item is the test target, the second last the validation target and
the earlier ones (from the second item on) are training targets; a target's input is the
items before it in its own sequence, never the target or anything after it.

Layout (fixed shapes, for a jitted, scanned, seed-vmapped loop):
- `items_SxL`: the S sequences, left-aligned, padded with -1 (`length_S` items each).
- An example is a (row, pos) pair: target `items_SxL[row, pos]`, input `items_SxL[row, :pos]`.
  Training examples are `train_row_E`, `train_pos_E`; each sequence gives one validation
  example (pos = length − 2) and one test example (pos = length − 1).
- `example_inputs` gathers a batch's inputs inside the jitted step as a right-aligned
  `[B, max_len − 1]` window (most recent item last, -1 before it) plus its mask, so the
  target position and everything after it are absent from the array, not only masked.
- `negatives_SxN`: N (99) sampled negatives per sequence, drawn once with a fixed seed
  from the items the user never interacted with (whole history); the same array serves the
  validation and the test example of that sequence, every row and every seed. Ranking them
  is `ltbench.evaluate.rank_sampled(..., with_ties=True)`.
"""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Any, Literal

import numpy as np

from ltbench.data.bundle import read_header, write_npz
from ltbench.data.splits import head_mask_from_counts

PAD = -1  # padding id in items_SxL and in gathered inputs


@dataclasses.dataclass(frozen=True)
class SequenceConfig:
  max_len: int = 30  # items per sequence, targets included (§4.1)
  windows: Literal["cut", "slide"] = "cut"  # cut: disjoint chunks; slide: official code's windows
  stride: int = 5  # slide only: step between window starts (official code: 5)
  split: Literal["all", "step"] = "all"  # all: every earlier item is a target; step: 3rd last only
  min_len: int = 3  # shorter sequences are dropped (validation and test need an input item)
  num_negatives: int | None = 99  # sampled negatives per sequence; None = full ranking
  negative_seed: int = 0  # seed of the negatives (fixed per data set, not per trial)
  head_fraction: float = 0.2  # head = top fraction of items by training-target count


@dataclasses.dataclass
class SequenceData:
  """One data set cut into sequences, with its fixed evaluation negatives (host arrays)."""

  name: str
  num_users: int
  num_items: int
  items_SxL: np.ndarray  # int32 [S, L], left-aligned, PAD after length_S items
  length_S: np.ndarray  # int32 [S], in [min_len, L]
  user_S: np.ndarray  # int32 [S], the user each sequence comes from
  train_row_E: np.ndarray  # int32 [E], sequence of each training example
  train_pos_E: np.ndarray  # int32 [E], target position (>= 1) of each training example
  negatives_SxN: np.ndarray | None  # int32 [S, N], or None for full ranking
  item_counts: np.ndarray  # int32 [I], training-target count of each item
  head_mask: np.ndarray  # bool [I]
  meta: dict[str, Any]  # config, source, how the windows and split were made
  item_cluster: np.ndarray | None = None  # int32 [I], ground-truth cluster (synthetic only)

  @property
  def num_sequences(self) -> int:
    return int(self.items_SxL.shape[0])

  @property
  def max_len(self) -> int:
    return int(self.items_SxL.shape[1])

  def eval_pos(self, part: Literal["valid", "test"]) -> np.ndarray:
    """int32 [S]: the target position of each sequence's validation or test example."""
    if part not in ("valid", "test"):
      raise ValueError(f"part must be 'valid' or 'test', got {part!r}")
    return self.length_S - (2 if part == "valid" else 1)

  def eval_targets(self, part: Literal["valid", "test"]) -> np.ndarray:
    return self.items_SxL[np.arange(self.num_sequences), self.eval_pos(part)]

  def eval_inputs(self, part: Literal["valid", "test"]) -> tuple[np.ndarray, np.ndarray]:
    """(inputs_SxW, mask_SxW) of the validation or test examples, W = max_len − 1."""
    inputs, mask = example_inputs(self.items_SxL, np.arange(self.num_sequences),
                                  self.eval_pos(part))
    return np.asarray(inputs), np.asarray(mask)

  def slices(self, part: Literal["valid", "test"]) -> dict[str, np.ndarray]:
    """overall / head / tail bool masks over the evaluation examples, by target item."""
    head_S = self.head_mask[self.eval_targets(part)]
    return {"overall": np.ones_like(head_S), "head": head_S, "tail": ~head_S}

  def device_arrays(self) -> dict[str, Any]:
    """The pytree a training step reads."""
    import jax.numpy as jnp
    return {"items_SxL": jnp.asarray(self.items_SxL), "train_row_E": jnp.asarray(self.train_row_E),
            "train_pos_E": jnp.asarray(self.train_pos_E),
            "item_counts": jnp.asarray(self.item_counts),
            "head_mask": jnp.asarray(self.head_mask)}

  def summary(self) -> str:
    n_neg = "full ranking" if self.negatives_SxN is None else f"{self.negatives_SxN.shape[1]} negatives"
    label = f" [STAND-IN for {self.meta['standin_for']}, not the real data]" if self.meta.get(
        "standin_for") else ""
    subset = f" [{self.meta['subset']}]" if self.meta.get("subset") else ""
    return (f"{self.name}{label}{subset}: {self.num_users} users, {self.num_items} items, "
            f"{self.num_sequences} sequences (max {self.max_len}), "
            f"{self.train_row_E.shape[0]} train examples, {n_neg}, "
            f"head items {int(self.head_mask.sum())}, {self.meta.get('windows')}")

  # -- on-disk cache -------------------------------------------------------------------

  _ARRAYS = ("items_SxL", "length_S", "user_S", "train_row_E", "train_pos_E", "item_counts",
             "head_mask")

  def save(self, path: pathlib.Path) -> None:
    arrays = {k: getattr(self, k) for k in self._ARRAYS}
    for k in ("negatives_SxN", "item_cluster"):
      if getattr(self, k) is not None:
        arrays[k] = getattr(self, k)
    header = {"name": self.name, "num_users": self.num_users, "num_items": self.num_items,
              "meta": self.meta}
    write_npz(path, arrays, header)

  @classmethod
  def load(cls, path: pathlib.Path) -> "SequenceData":
    with np.load(path) as z:
      header = read_header(z)
      optional = {k: (z[k] if k in z.files else None) for k in ("negatives_SxN", "item_cluster")}
      return cls(name=header["name"], num_users=header["num_users"],
                 num_items=header["num_items"], meta=header["meta"],
                 **{k: z[k] for k in cls._ARRAYS}, **optional)


def example_inputs(items_SxL, row_B, pos_B):
  """The inputs of a batch of (row, pos) examples: the items before `pos` in sequence `row`.

  Right-aligned in a window of W = L − 1 slots (the most recent item in the last slot) and
  padded with PAD, so the target and any later item of the sequence are never in the
  array. Works on numpy or JAX arrays, under jit and vmap.

  Args:
    items_SxL: int [S, L] sequences (left-aligned, PAD after their length).
    row_B: int [B] sequence of each example.
    pos_B: int [B] target position of each example, 1 <= pos < L.

  Returns:
    (inputs_BxW int32, mask_BxW bool): item ids (PAD where masked) and which slots hold one.
  """
  import jax.numpy as jnp
  items_SxL, row_B, pos_B = jnp.asarray(items_SxL), jnp.asarray(row_B), jnp.asarray(pos_B)
  width = items_SxL.shape[1] - 1
  src_BxW = pos_B[:, None] - width + jnp.arange(width)[None, :]  # column of items_SxL
  mask_BxW = src_BxW >= 0
  seq_BxL = items_SxL[row_B]
  gathered_BxW = jnp.take_along_axis(seq_BxL, jnp.maximum(src_BxW, 0), axis=1)
  return jnp.where(mask_BxW, gathered_BxW, PAD).astype(jnp.int32), mask_BxW


def csr_windows(items_N, start_B, stop_B, width: int):
  """The last `width` items of items_N[start_B[b]:stop_B[b]] for each b: `example_inputs`'
  layout (right-aligned, most recent item last, PAD before) over flat CSR histories (e.g.
  `histories_from_interactions`' items, an example's input ending before its own slot).
  Works on numpy or JAX arrays, under jit and vmap.

  Returns:
    (inputs_BxW int32, mask_BxW bool).
  """
  import jax.numpy as jnp
  items_N, start_B, stop_B = jnp.asarray(items_N), jnp.asarray(start_B), jnp.asarray(stop_B)
  src_BxW = stop_B[:, None] - width + jnp.arange(width)[None, :]  # index into items_N
  mask_BxW = src_BxW >= start_B[:, None]
  gathered_BxW = items_N[jnp.clip(src_BxW, 0, items_N.shape[0] - 1)]
  return jnp.where(mask_BxW, gathered_BxW, PAD).astype(jnp.int32), mask_BxW


def histories_from_interactions(user_N, item_N, time_N=None, num_users=None):
  """Groups interactions into time-ordered histories (ties keep the input order).

  Returns:
    (indptr [U + 1] int64, items [N] int32): user u's history is items[indptr[u]:indptr[u+1]].
  """
  user_N, item_N = np.asarray(user_N), np.asarray(item_N)
  if user_N.shape != item_N.shape or user_N.ndim != 1:
    raise ValueError(f"user_N and item_N must be 1-D of one length, got {user_N.shape} and "
                     f"{item_N.shape}")
  n = user_N.shape[0]
  time_key = np.zeros(n) if time_N is None else np.asarray(time_N)
  order = np.lexsort((np.arange(n), time_key, user_N))
  num_users = int(user_N.max()) + 1 if num_users is None else num_users
  counts = np.bincount(user_N, minlength=num_users)
  indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
  return indptr, item_N[order].astype(np.int32)


def sequences_from_interactions(user_N, item_N, time_N, cfg: SequenceConfig = SequenceConfig(),
                                name: str = "sequences", meta: dict | None = None) -> SequenceData:
  """Interactions with original (any sortable) user and item ids, ordered by time within
  each user (ties keep the input order), cut into sequences by `build_sequences`.

  Users and items are renumbered 0.. in sorted order of their original ids; only ids that
  occur are kept. meta records the counts before cutting (users, items, interactions).
  """
  user_ids, user_N = np.unique(np.asarray(user_N), return_inverse=True)
  item_ids, item_N = np.unique(np.asarray(item_N), return_inverse=True)
  indptr, items = histories_from_interactions(user_N.reshape(-1), item_N.reshape(-1), time_N,
                                              num_users=len(user_ids))
  meta = {**(meta or {}), "num_interactions": int(items.size),
          "mean_history_length": float(items.size / max(len(user_ids), 1))}
  return build_sequences(indptr, items, len(item_ids), cfg, name, meta)


def _windows(n: int, cfg: SequenceConfig) -> list[tuple[int, int]]:
  """(start, stop) of the sequences cut from a history of n items."""
  L = cfg.max_len
  if n <= L:
    return [(0, n)]
  if cfg.windows == "cut":  # from the end: every sequence but the oldest is full
    stops = range(n, 0, -L)
    return [(max(0, s - L), s) for s in reversed(stops)]
  starts = list(range(0, n - L, cfg.stride)) + [n - L]  # official: last window ends at n
  return [(s, s + L) for s in starts]


def _check_config(cfg: SequenceConfig) -> None:
  if cfg.max_len < 3:
    raise ValueError(f"max_len must be >= 3 (input, validation, test), got {cfg.max_len}")
  if not 3 <= cfg.min_len <= cfg.max_len:
    raise ValueError(f"min_len must be in [3, max_len={cfg.max_len}], got {cfg.min_len}")
  if cfg.windows not in ("cut", "slide"):
    raise ValueError(f"windows must be 'cut' or 'slide', got {cfg.windows!r}")
  if cfg.split not in ("all", "step"):
    raise ValueError(f"split must be 'all' or 'step', got {cfg.split!r}")
  if cfg.stride < 1:
    raise ValueError(f"stride must be >= 1, got {cfg.stride}")
  if cfg.num_negatives is not None and cfg.num_negatives < 1:
    raise ValueError(f"num_negatives must be >= 1 or None, got {cfg.num_negatives}")


def sample_negatives(indptr, items, user_S, num_items, num_negatives, seed):
  """`num_negatives` distinct items per sequence that its user never interacted with.

  Uniform without replacement over the complement of the user's whole history, in sequence
  order from one `numpy.random.default_rng(seed)`: the same inputs and seed give the same
  array. Per sequence: a uniform ordered sample of |seen| + num_negatives distinct items
  (numpy's choice without replacement; cheap on large catalogues such as Amazon Clothing's
  376k items), of which the first num_negatives unseen ones are kept; by symmetry they are
  a uniform sample of the unseen items.

  Returns:
    int32 [S, num_negatives].
  """
  rng = np.random.default_rng(seed)
  out = np.empty((len(user_S), num_negatives), np.int32)
  last_user, seen = -1, np.empty(0, np.int32)
  for s, u in enumerate(user_S):
    if u != last_user:  # a user's sequences are adjacent
      last_user, seen = u, np.unique(items[indptr[u]:indptr[u + 1]])
    if num_items - seen.size < num_negatives:
      raise ValueError(
          f"user {int(u)} has only {num_items - seen.size} items they never interacted with, "
          f"fewer than num_negatives={num_negatives}; use a smaller num_negatives or full "
          f"ranking (num_negatives=None)")
    cand = rng.choice(num_items, seen.size + num_negatives, replace=False)
    if seen.size:
      cand = cand[seen[np.minimum(np.searchsorted(seen, cand), seen.size - 1)] != cand]
    out[s] = cand[:num_negatives]
  return out


def build_sequences(indptr, items, num_items: int, cfg: SequenceConfig = SequenceConfig(),
                    name: str = "sequences", meta: dict | None = None,
                    item_cluster: np.ndarray | None = None) -> SequenceData:
  """Cuts time-ordered histories (CSR, see `histories_from_interactions`) into sequences.

  windows="cut" (the paper, §4.1): disjoint chunks of max_len counted from the end of the
  history, so every sequence but the oldest is full; an oldest chunk shorter than min_len
  is dropped. windows="slide" (the official code): if the history is longer than max_len,
  windows of max_len starting every `stride` items while they end before the last item,
  plus one window ending at the last item. split="all": training targets are positions
  1 .. length − 3 of each sequence; split="step" (the official code): only length − 3.
  """
  _check_config(cfg)
  indptr, items = np.asarray(indptr, np.int64), np.asarray(items, np.int32)
  num_users = len(indptr) - 1
  if items.size and (items.min() < 0 or items.max() >= num_items):
    raise ValueError(f"item ids must lie in [0, {num_items}), got [{items.min()}, {items.max()}]")
  starts, lengths, users = [], [], []
  for u in range(num_users):
    for a, b in _windows(int(indptr[u + 1] - indptr[u]), cfg):
      if b - a >= cfg.min_len:
        starts.append(indptr[u] + a)
        lengths.append(b - a)
        users.append(u)
  start_S = np.asarray(starts, np.int64)
  length_S = np.asarray(lengths, np.int32)
  user_S = np.asarray(users, np.int32)
  L = cfg.max_len
  col_1xL = np.arange(L)[None, :]
  filled_SxL = col_1xL < length_S[:, None]
  src_SxL = np.where(filled_SxL, start_S[:, None] + col_1xL, 0)
  items_SxL = np.where(filled_SxL, items[src_SxL] if items.size else PAD, PAD).astype(np.int32)

  if cfg.split == "all":
    is_target_SxL = (col_1xL >= 1) & (col_1xL <= length_S[:, None] - 3)
  else:
    is_target_SxL = (col_1xL >= 1) & (col_1xL == length_S[:, None] - 3)
  train_row_E, train_pos_E = (a.astype(np.int32) for a in np.nonzero(is_target_SxL))
  counts = np.bincount(items_SxL[train_row_E, train_pos_E], minlength=num_items).astype(np.int32)
  negatives = None
  if cfg.num_negatives is not None:
    negatives = sample_negatives(indptr, items, user_S, num_items, cfg.num_negatives,
                                 cfg.negative_seed)
  windows = ("disjoint chunks counted from the end" if cfg.windows == "cut"
             else f"sliding windows, stride {cfg.stride}")
  meta = {**(meta or {}), "sequence_config": dataclasses.asdict(cfg),
          "windows": f"max {L} items, {windows}, split {cfg.split}",
          "protocol": ("sampled: target + "
                       f"{cfg.num_negatives} negatives (seed {cfg.negative_seed})"
                       if negatives is not None else "full ranking")}
  return SequenceData(
      name=name, num_users=num_users, num_items=num_items, items_SxL=items_SxL,
      length_S=length_S, user_S=user_S, train_row_E=train_row_E, train_pos_E=train_pos_E,
      negatives_SxN=negatives, item_counts=counts,
      head_mask=head_mask_from_counts(counts, cfg.head_fraction), meta=meta,
      item_cluster=None if item_cluster is None else np.asarray(item_cluster, np.int32))
